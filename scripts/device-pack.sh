#!/usr/bin/env bash
# Prepare .device/ (ignored) with what scripts/device-check.sh needs on the lent GPU machine, which receives the git
# working tree but neither dist/ nor node_modules/ (both ignored) and may have no Node:
#   .device/pack.tar.xz   dist/src + dist/bench (.js only) and the production node_modules, linux-x64 binaries only
#   .device/pack.sha256   its checksum (device-check.sh re-unpacks when it changes)
#   .device/node.xz       this machine's Node binary, stripped and xz-compressed (unpacked there only if node is missing)
#   .gl/*.deb             the Vulkan/GL loader packages (device README), downloaded once
# then checks the packed copy from a scratch folder (NODE_PATH unset, the unpacked Node binary) and prints the sizes
# against the 64 MiB limit on what travels (working tree + carried paths).
#
# Run it in the checkout the device tool sends (the session's own checkout), after `npm ci`:
#   bash scripts/device-pack.sh            (DEVICE_PACK_NO_BUILD=1: use dist/ as it is; DEVICE_PACK_NO_GL=1: no .gl)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
LIMIT=$((64 * 1024 * 1024))
XZ_LEVEL=${DEVICE_PACK_XZ:--9}
say() { echo "device-pack: $*"; }
bytes() { if [ -e "$1" ]; then du -sb "$1" | cut -f1; else echo 0; fi; }

[ "$(uname -m)" = x86_64 ] || { say "this machine is $(uname -m); the device is x86_64: pack on an x86_64 machine"; exit 1; }
[ -d node_modules/onnxruntime-node/bin/napi-v6/linux/x64 ] || { say "node_modules is missing or lacks onnxruntime-node's linux/x64 binaries: run 'ONNXRUNTIME_NODE_INSTALL=skip npm ci' first"; exit 1; }

if [ "${DEVICE_PACK_NO_BUILD:-0}" != 1 ]; then
  say "building dist/ (tsc)"
  npm run -s build
fi
[ -f dist/src/index.js ] && [ -f dist/bench/bench.js ] || { say "dist/ is incomplete"; exit 1; }

mkdir -p .device
STAGE=$(mktemp -d /tmp/e4e-device-pack.XXXXXX)
VERIFY=""
cleanup() { rm -rf "$STAGE" ${VERIFY:+"$VERIFY"}; }
trap cleanup EXIT

# ---- dist: the library and the bench, JavaScript only (no maps, no declarations, no tests)
mkdir -p "$STAGE/dist"
cp -a dist/src dist/bench "$STAGE/dist/"
find "$STAGE/dist" \( -name '*.map' -o -name '*.d.ts' \) -delete

# ---- node_modules: the production dependency tree (npm's own answer), linux-x64 parts only
mkdir -p "$STAGE/node_modules"
npm ls --omit=dev --all --parseable 2>/dev/null | sed "s|^$ROOT/||" | grep '^node_modules/' | sort -u >"$STAGE/deps.txt"
while read -r dep; do
  mkdir -p "$STAGE/$(dirname "$dep")"
  cp -a "$dep" "$STAGE/$dep"
done <"$STAGE/deps.txt"
ORT="$STAGE/node_modules/onnxruntime-node"
for d in "$ORT"/bin/napi-v6/*; do [ "$(basename "$d")" = linux ] || rm -rf "$d"; done
for d in "$ORT"/bin/napi-v6/linux/*; do [ "$(basename "$d")" = x64 ] || rm -rf "$d"; done
rm -rf "$ORT/lib" # TypeScript sources of dist/
for d in "$STAGE"/node_modules/@img/*; do
  case "$(basename "$d")" in sharp-linux-x64 | sharp-libvips-linux-x64 | colour) ;; *) rm -rf "$d" ;; esac
done
find "$STAGE/node_modules" \( -name '*.map' -o -name '*.d.ts' -o -name '*.d.mts' -o -name '*.d.cts' -o -iname 'README*' -o -iname 'CHANGELOG*' \) -type f -delete
rm -f "$STAGE/deps.txt"
say "staged: dist $(bytes "$STAGE/dist") B, node_modules $(bytes "$STAGE/node_modules") B (uncompressed)"

# ---- the archive
tar -C "$STAGE" --owner=0 --group=0 --sort=name -cf - dist node_modules | xz -T0 "$XZ_LEVEL" -c >.device/pack.tar.xz.tmp
mv .device/pack.tar.xz.tmp .device/pack.tar.xz
sha256sum .device/pack.tar.xz | cut -d' ' -f1 >.device/pack.sha256
say "pack.tar.xz $(bytes .device/pack.tar.xz) B (sha256 $(cut -c1-12 .device/pack.sha256))"

# ---- Node binary (only remade when this machine's node changes)
NODE_BIN=$(readlink -f "$(command -v node)")
NODE_VER=$(node --version)
if [ ! -f .device/node.xz ] || [ "$(cat .device/node.version 2>/dev/null)" != "$NODE_VER" ]; then
  say "compressing $NODE_BIN ($NODE_VER), stripped; this takes a few minutes"
  strip -o "$STAGE/node" "$NODE_BIN" 2>/dev/null || cp "$NODE_BIN" "$STAGE/node"
  xz -T0 "$XZ_LEVEL" -c "$STAGE/node" >.device/node.xz.tmp
  mv .device/node.xz.tmp .device/node.xz
  echo "$NODE_VER" >.device/node.version
fi
say "node.xz $(bytes .device/node.xz) B ($(cat .device/node.version))"

# ---- Vulkan / GL loaders (device README: brought once, carried as .gl)
if [ "${DEVICE_PACK_NO_GL:-0}" != 1 ] && ! ls .gl/*.deb >/dev/null 2>&1; then
  say "downloading the loader packages into .gl/ (apt-get download, amd64)"
  mkdir -p .gl /tmp/amd64/partial
  o='-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64'
  # shellcheck disable=SC2086
  apt-get $o update >/dev/null
  # shellcheck disable=SC2086
  (cd .gl && apt-get $o download libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2 >/dev/null)
fi
say ".gl $(bytes .gl) B: $(ls .gl 2>/dev/null | tr '\n' ' ')"

# ---- check the packed copy from a scratch folder: nothing of this checkout's node_modules, NODE_PATH unset,
#      the unpacked Node binary, the tracked files that the device gets
VERIFY=$(mktemp -d /tmp/e4e-device-verify.XXXXXX)
git ls-files -z | xargs -0 cp --parents -t "$VERIFY" 2>/dev/null || true
tar -C "$VERIFY" -xJf .device/pack.tar.xz
xz -dc .device/node.xz >"$VERIFY/node" && chmod +x "$VERIFY/node"
(
  cd "$VERIFY"
  export PATH="$VERIFY:/usr/bin:/bin"
  unset NODE_PATH
  [ "$(./node --version)" = "$NODE_VER" ]
  ./node -e "import('./dist/src/index.js').then(m => console.log('device-pack: verify: dist/src/index.js loads,', Object.keys(m).length, 'exports'))"
  ./node -e "import('./dist/bench/phases.js').then(() => import('./dist/bench/e2e.js')).then(() => console.log('device-pack: verify: dist/bench loads'))"
  ./node -e "const o = require('onnxruntime-node'); const b = o.listSupportedBackends().map(x => x.name); if (!b.includes('webgpu')) throw new Error('no webgpu: ' + b); console.log('device-pack: verify: onnxruntime-node', o.env.versions.node, 'backends', b.join(','))"
  ./node -e "const s = require('sharp'); s({ create: { width: 4, height: 4, channels: 3, background: '#f00' } }).png().toBuffer().then(b => console.log('device-pack: verify: sharp', s.versions.sharp, 'vips', s.versions.vips, 'png', b.length, 'B'))"
  ./node bin/eye4eye.js --version | sed 's/^/device-pack: verify: eye4eye /'
  ./node bin/eye4eye.js golden test/fixtures/golden/sd1-tiny --only scheduler --cache-dir "$VERIFY/.cache" | tail -1 | sed 's/^/device-pack: verify: golden scheduler (cpu): /'
) || { say "VERIFY FAILED: the packed copy does not run on its own"; exit 1; }

# ---- sizes against the limit on what travels
TREE=$( (git ls-files -z; git ls-files -z -o --exclude-standard) | xargs -0 stat -c %s 2>/dev/null | awk '{s+=$1} END {print s+0}')
SHARED=$(bytes shared)
PACK=$(bytes .device)
GL=$(bytes .gl)
TOTAL=$((TREE + SHARED + PACK + GL))
say "sizes (bytes): working tree $TREE (tracked + untracked not ignored), shared/ $SHARED, .device $PACK, .gl $GL"
say "total that travels: $TOTAL of $LIMIT ($((TOTAL * 100 / LIMIT)) %)"
if [ "$TOTAL" -gt "$LIMIT" ]; then
  say "OVER the 64 MiB limit: the device tool will refuse the call"
  exit 1
fi
say "ready: call the device tool with carry [\".device\", \".gl\"] (bench/README.md, 'Device check')"
