#!/usr/bin/env bash
# The GPU device check, in ONE run on the lent machine (NVIDIA H200, NVIDIA driver, no internet, maybe no Node):
# WebGPU through onnxruntime-node's bundled provider over the NVIDIA Vulkan driver. See bench/README.md,
# "Device check", for the exact device call. Prepare first, here: bash scripts/device-pack.sh (fills .device/, .gl/).
#
# Steps, in order of value, each under its own timeout inside one overall budget (DEVICE_CHECK_BUDGET_S):
#   setup     environment, Node (carried one if none), dist/ + node_modules from .device/pack.tar.xz, the Vulkan
#             loader from .gl/*.deb when missing, a WebGPU probe (adapter + MatMul throughput + parity with the CPU);
#             stops cleanly (exit 3) when no WebGPU adapter can be had
#   golden    eye4eye golden test/fixtures/golden/sd1-tiny --device webgpu (fp32 parity, every group)
#   unet      bench UNet 512x512 batch 1 / 2 / 6 (+ e4e match) on WebGPU, fp32 (random SD-1.5 weights, generated
#             in the background from the start)
#   unet16    the same in fp16, only when `eye4eye transfer --help` lists --precision
#   transfer  one whole transfer, official settings (100 steps, skip 32, 512x512, the example birds and masks), on
#             WebGPU with run.json's per-phase timings; fewer steps when the UNet timings say 100 cannot finish
#   vae       bench VAE encode / decode 512x512 on WebGPU
# What comes back ($OUT, at most 8 files): summary.json, device-check.log, golden.log, logs.txt (every step's own
# log), bench.jsonl (the bench JSON lines), run.json and grid.png (transfer), gpu.csv (nvidia-smi every second).
#
# Knobs (environment): DEVICE_CHECK_BUDGET_S (default 310), DEVICE_CHECK_STEPS (default
# "golden unet unet16 transfer vae"), DEVICE_CHECK_TRANSFER_STEPS (force N), DEVICE_CHECK_GOLDEN_ONLY (groups),
# DEVICE_CHECK_NODE=carried (use .device/node.xz even if node exists), DEVICE_CHECK_FORCE_GL=1 (unpack .gl even if
# a libvulkan is there), DEVICE_CHECK_WORK (default /tmp/e4e-device-check; its cache/ survives a rerun on a warm
# machine), DEVICE_CHECK_SIM=1 (simulation on a machine without a GPU: SwiftShader, tiny sizes; see bench/README.md).
set -u -o pipefail
T_START=$(date +%s)
cd "$(dirname "$0")/.."
ROOT=$PWD
SIM=${DEVICE_CHECK_SIM:-0}
OUT=${OUT:-$ROOT/.device-out}
WORK=${DEVICE_CHECK_WORK:-/tmp/e4e-device-check}
mkdir -p "$OUT" "$WORK"
rm -rf "$WORK/transfer" "$WORK"/*.log "$WORK"/*.json "$WORK"/*.tsv "$WORK/gpu.csv" "$WORK/bench.jsonl"
LOG="$OUT/device-check.log"
: >"$LOG"
: >"$WORK/steps.tsv"
: >"$WORK/env.tsv"
: >"$WORK/bench.jsonl"
: >"$WORK/logs.txt"

if [ "$SIM" = 1 ]; then
  BUDGET=${DEVICE_CHECK_BUDGET_S:-900}
  STEPS=${DEVICE_CHECK_STEPS:-golden unet unet16 transfer vae}
  GOLDEN_ONLY=${DEVICE_CHECK_GOLDEN_ONLY:-text,scheduler}
  # SwiftShader needs minutes per SD-1.5 call: the bench steps run on the CPU unless asked (webgpu: the text
  # encoder, ~65 s a call here, 4 calls)
  SIM_BENCH_DEVICE=${DEVICE_CHECK_SIM_BENCH_DEVICE:-cpu}
  [ -n "${VK_ICD_FILENAMES:-}${VK_DRIVER_FILES:-}" ] || export VK_ICD_FILENAMES=/usr/lib/chromium/vk_swiftshader_icd.json
else
  BUDGET=${DEVICE_CHECK_BUDGET_S:-310}
  STEPS=${DEVICE_CHECK_STEPS:-golden unet unet16 transfer vae}
  GOLDEN_ONLY=${DEVICE_CHECK_GOLDEN_ONLY:-}
fi
RESERVE=8 # seconds kept at the end for the summary and the copies to $OUT

say() { echo "[device-check $(($(date +%s) - T_START))s] $*" | tee -a "$LOG"; }
env_kv() { printf '%s\t%s\n' "$1" "$2" >>"$WORK/env.tsv"; }
left() { echo $((T_START + BUDGET - RESERVE - $(date +%s))); }
has_step() { case " $STEPS " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }
# Keep Dawn's and the loader's chatter out of the logs' tails.
quiet() { grep -v -e 'XDG_RUNTIME_DIR' -e '^$' "$@" || true; }
# xz -dc, or Python's lzma where the machine has no xz
unxz_to() { if command -v xz >/dev/null; then xz -dc "$1"; else python3 -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), sys.stdout.buffer)' "$1"; fi; }

summarize() {
  [ -n "${NODE:-}" ] || return 0
  "$NODE" scripts/device-summary.mjs "$WORK" "$OUT/summary.json" "$@" 2>>"$LOG" | tee -a "$LOG"
}

finish() {
  local code=$1
  [ -n "${SAMPLER_PID:-}" ] && kill "$SAMPLER_PID" 2>/dev/null
  [ -n "${GEN_PID:-}" ] && kill "$GEN_PID" 2>/dev/null
  cp -f "$WORK/gpu.csv" "$OUT/gpu.csv" 2>/dev/null
  cp -f "$WORK/bench.jsonl" "$OUT/bench.jsonl" 2>/dev/null
  tail -c 15000000 "$WORK/logs.txt" >"$OUT/logs.txt" 2>/dev/null
  [ -f "$WORK/transfer/run.json" ] && cp -f "$WORK/transfer/run.json" "$OUT/run.json"
  [ -f "$WORK/transfer/grid.png" ] && cp -f "$WORK/transfer/grid.png" "$OUT/grid.png"
  summarize --print
  say "done (exit $code) in $(($(date +%s) - T_START)) s; files in \$OUT: $(ls "$OUT" | tr '\n' ' ')"
  exit "$code"
}

skip_step() {
  say "== $1: SKIPPED ($2)"
  printf '%s\tskipped\t-1\t0\t0\t0\t0\t%s\n' "$1" "$2" >>"$WORK/steps.tsv"
}

# run_step NAME CAP_S MIN_S -- CMD...: run CMD under min(CAP_S, what is left of the budget), its output in
# $WORK/NAME.log; skipped when less than MIN_S is left. Records the step in steps.tsv.
run_step() {
  local name=$1 cap=$2 min=$3
  shift 4
  local t
  t=$(left)
  [ "$cap" -lt "$t" ] && t=$cap
  if [ "$t" -lt "$min" ]; then
    say "== $name: SKIPPED (only ${t} s of the budget left, needs ${min} s)"
    printf '%s\tskipped\t-1\t0\t%s\t0\t0\tbudget: %s s left\n' "$name" "$t" "$t" >>"$WORK/steps.tsv"
    return 99
  fi
  say "== $name (timeout ${t} s): $*"
  local t0 t1 rc status
  t0=$(date +%s.%N)
  timeout -k 10 "$t" "$@" >"$WORK/$name.log" 2>&1
  rc=$?
  t1=$(date +%s.%N)
  case $rc in 0) status=ok ;; 124 | 137) status=timeout ;; *) status=failed ;; esac
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$status" "$rc" "$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.2f", b - a}')" "$t" "$t0" "$t1" "${STEP_NOTE:-}" >>"$WORK/steps.tsv"
  STEP_NOTE=""
  { echo "=============== $name ($status, rc $rc)"; quiet "$WORK/$name.log" | tail -c 2000000; } >>"$WORK/logs.txt"
  quiet "$WORK/$name.log" | tail -n "${TAIL_LINES:-25}" | sed "s/^/  $name| /" | tee -a "$LOG"
  say "== $name: $status (rc $rc) in $(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.1f", b - a}') s"
  return $rc
}

# ------------------------------------------------------------------------------------------------ setup: environment
say "eye4eye device check; budget ${BUDGET} s; steps: $STEPS; sim $SIM; work $WORK; out $OUT"
env_kv uname_m "$(uname -m)"
env_kv nproc "$(nproc)"
env_kv started "$(date -u +%FT%TZ)"
say "uname -m: $(uname -m); $(nproc) cores; $(free -g | awk '/^Mem/ {print $2 " GiB memory"}'); disk $(df -h "$WORK" | awk 'NR==2 {print $4 " free"}')"
if command -v nvidia-smi >/dev/null; then
  nvidia-smi -L 2>&1 | tee -a "$LOG"
  env_kv gpu "$(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null | head -1)"
  (while :; do
    echo "$(date +%s.%N),$(nvidia-smi --query-gpu=utilization.gpu,memory.used,power.draw,clocks.sm --format=csv,noheader,nounits 2>/dev/null | head -1)"
    sleep 1
  done >"$WORK/gpu.csv") &
  SAMPLER_PID=$!
else
  say "no nvidia-smi on this machine"
fi

# ------------------------------------------------------------------------------------------------ setup: Node
if command -v node >/dev/null; then say "node here: $(command -v node) $(node --version 2>&1)"; else say "node here: none"; fi
env_kv node_here "$(command -v node >/dev/null && node --version 2>&1 || echo none)"
NODE=""
if [ "${DEVICE_CHECK_NODE:-}" != carried ] && command -v node >/dev/null && [ "$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)" -ge 20 ]; then
  NODE=$(command -v node)
  env_kv node_source system
elif [ -f .device/node.xz ]; then
  mkdir -p "$WORK/node/bin"
  unxz_to .device/node.xz >"$WORK/node/bin/node" && chmod +x "$WORK/node/bin/node"
  export PATH="$WORK/node/bin:$PATH"
  NODE="$WORK/node/bin/node"
  env_kv node_source "carried (.device/node.xz)"
else
  say "node: none >= 20 here and no .device/node.xz: run scripts/device-pack.sh and carry .device"
  finish 2
fi
env_kv node "$("$NODE" --version)"
say "node $("$NODE" --version) at $NODE"
unset NODE_PATH

# ------------------------------------------------------------------------------------------------ setup: dist + node_modules
if [ -f .device/pack.tar.xz ]; then
  want=$(cat .device/pack.sha256 2>/dev/null || sha256sum .device/pack.tar.xz | cut -d' ' -f1)
  have=$(cat dist/.device-pack 2>/dev/null || true)
  if [ "$have" = "$want" ] && [ -d node_modules ]; then
    say "dist/ and node_modules/ already unpacked from this pack"
  elif { [ -e dist ] || [ -e node_modules ]; } && [ -z "$have" ]; then
    say "dist/ or node_modules/ exist and did not come from a pack (a developer checkout?): using them as they are"
  else
    rm -rf dist node_modules
    unxz_to .device/pack.tar.xz | tar -xf - && echo "$want" >dist/.device-pack || {
      say "cannot unpack .device/pack.tar.xz"
      finish 2
    }
    say "unpacked .device/pack.tar.xz (sha256 ${want:0:12})"
  fi
elif [ ! -f dist/src/index.js ]; then
  say "no dist/ and no .device/pack.tar.xz: run scripts/device-pack.sh and carry .device"
  finish 2
fi
env_kv eye4eye "$("$NODE" bin/eye4eye.js --version 2>&1)"

# ------------------------------------------------------------------------------------------------ setup: Vulkan loader
if [ "${DEVICE_CHECK_FORCE_GL:-0}" = 1 ] || ! ldconfig -p 2>/dev/null | grep -q 'libvulkan\.so\.1'; then
  if ls .gl/*.deb >/dev/null 2>&1; then
    for f in .gl/*.deb; do dpkg -x "$f" /; done
    ldconfig
    say "unpacked the loaders of .gl/: $(ls .gl | tr '\n' ' ')"
  else
    say "no libvulkan.so.1 here and no .gl/*.deb: WebGPU will find no Vulkan (carry .gl)"
  fi
fi
say "loaders: $(ldconfig -p 2>/dev/null | grep -o -E '(libvulkan|libEGL|libGLX_nvidia|libnvidia-gpucomp)[^ ]*' | sort -u | tr '\n' ' ')"
for d in /usr/share/vulkan/icd.d /etc/vulkan/icd.d /usr/local/nvidia/share/vulkan/icd.d /usr/local/share/vulkan/icd.d; do
  [ -d "$d" ] && say "Vulkan ICDs in $d: $(ls "$d" | tr '\n' ' ')"
done
NV_ICD=${DEVICE_CHECK_NV_ICD:-/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json}
export XDG_RUNTIME_DIR="$WORK/xdg"
mkdir -p "$XDG_RUNTIME_DIR" && chmod 700 "$XDG_RUNTIME_DIR"

# ------------------------------------------------------------------------------------------------ setup: WebGPU probe
probe() {
  local n=2048 chain=8
  [ "$SIM" = 1 ] && n=256 chain=2
  n=${DEVICE_CHECK_PROBE_N:-$n}
  VK_LOADER_DEBUG=driver timeout -k 5 90 "$NODE" scripts/device-probe.mjs --n $n --chain $chain --json "$WORK/probe.json" >"$WORK/probe.log" 2>&1
  local rc=$?
  { echo "=============== probe (rc $rc)"; quiet "$WORK/probe.log" | grep -v -e 'Searching' -e 'In following' -e 'Found the following'; } >>"$WORK/logs.txt"
  grep -E 'Found ICD manifest|\[[0-9]+\] ' "$WORK/probe.log" | sed 's/^[A-Z |]*DRIVER: *//' | sort -u | sed 's/^/  vulkan| /' | tee -a "$LOG"
  grep -v -e 'DRIVER' -e 'XDG_RUNTIME_DIR' -e '^ *||' -e '^ *<' "$WORK/probe.log" | tail -n 15 | sed 's/^/  probe| /' | tee -a "$LOG"
  return $rc
}
probe
PROBE_RC=$?
if [ $PROBE_RC -eq 4 ] && [ -z "${VK_DRIVER_FILES:-}${VK_ICD_FILENAMES:-}" ] && [ -f "$NV_ICD" ]; then
  say "no WebGPU adapter: again with VK_DRIVER_FILES=$NV_ICD (device README)"
  export VK_DRIVER_FILES=$NV_ICD __EGL_VENDOR_LIBRARY_FILENAMES=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
  probe
  PROBE_RC=$?
elif [ $PROBE_RC -eq 0 ] && [ "$SIM" != 1 ] && grep -q '"looks_like_gpu":false' "$WORK/probe.json" && [ -z "${VK_DRIVER_FILES:-}" ] && [ -f "$NV_ICD" ]; then
  say "the WebGPU adapter looks like a software one: again with only the NVIDIA ICD (VK_DRIVER_FILES=$NV_ICD)"
  export VK_DRIVER_FILES=$NV_ICD __EGL_VENDOR_LIBRARY_FILENAMES=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
  probe || { say "the NVIDIA ICD alone gives no adapter: back to the default drivers"; unset VK_DRIVER_FILES __EGL_VENDOR_LIBRARY_FILENAMES; probe; }
  PROBE_RC=$?
fi
env_kv vk_driver_files "${VK_DRIVER_FILES:-${VK_ICD_FILENAMES:-(loader default)}}"
if [ $PROBE_RC -ne 0 ]; then
  say "WebGPU is not usable here (probe exit $PROBE_RC; 3 no webgpu backend, 4 no adapter, 5 run failed, 6 wrong result): stopping"
  finish 3
fi
say "WebGPU works: $(grep -o '"webgpu_gflops":[0-9.]*\|"looks_like_gpu":[a-z]*' "$WORK/probe.json" | tr '\n' ' ')"
if [ "$SIM" != 1 ] && grep -q '"looks_like_gpu":false' "$WORK/probe.json"; then
  say "WARNING: the WebGPU adapter is no faster than the CPU (a software Vulkan driver?): the timings below are not the GPU's"
fi
summarize

# ------------------------------------------------------------------------------------------------ the random SD-1.5 model
export E4E_CACHE_DIR="$WORK/cache" HF_HUB_OFFLINE=1
GRAPHS="$WORK/cache/bench-graphs"
MODEL=${DEVICE_CHECK_MODEL_DIR:-$WORK/cache/bench-models/sd15-random}
if [ "$SIM" = 1 ] && [ -z "${DEVICE_CHECK_MODEL_DIR:-}" ]; then MODEL=$HOME/.cache/eye4eye/bench-models/sd15-random; fi
MODEL_OK=1
if has_step unet || has_step unet16 || has_step vae || { has_step transfer && [ "$SIM" != 1 ]; }; then
  if [ "$SIM" = 1 ] && [ -z "${DEVICE_CHECK_MODEL_DIR:-}" ] && [ ! -f "$MODEL/.bench-complete.json" ]; then
    say "sim: no random SD-1.5 model at $MODEL (npm run bench makes one; or set DEVICE_CHECK_MODEL_DIR): the bench steps are skipped"
    MODEL_OK=0
  else
    say "random SD-1.5 model: $MODEL (generated in the background if absent)"
    "$NODE" scripts/device-gen-model.mjs "$MODEL" >"$WORK/gen.json" 2>"$WORK/gen.log" &
    GEN_PID=$!
  fi
fi
wait_model() {
  [ -n "${GEN_PID:-}" ] || return $((1 - MODEL_OK))
  local t
  t=$(left)
  say "waiting for the model generation (at most ${t} s)"
  while kill -0 "$GEN_PID" 2>/dev/null && [ "$(left)" -gt 0 ]; do sleep 1; done
  if kill -0 "$GEN_PID" 2>/dev/null; then
    say "model generation still running at the end of the budget"
    return 1
  fi
  wait "$GEN_PID"
  local rc=$?
  GEN_PID=""
  { echo "=============== model generation (rc $rc)"; cat "$WORK/gen.log"; } >>"$WORK/logs.txt"
  tail -n 5 "$WORK/gen.log" | sed 's/^/  gen| /' | tee -a "$LOG"
  [ $rc -eq 0 ] && [ -f "$MODEL/.bench-complete.json" ] && MODEL_OK=1 || MODEL_OK=0
  say "model: $(cat "$WORK/gen.json" 2>/dev/null | head -c 300)"
  return $((1 - MODEL_OK))
}

# bench_step NAME CAP MIN ARGS...: one `bench` run, its last JSON line kept as bench-NAME.json and in bench.jsonl
bench_step() {
  local name=$1 cap=$2 min=$3
  shift 3
  TAIL_LINES=12 run_step "$name" "$cap" "$min" -- "$NODE" --expose-gc dist/bench/bench.js --model-dir "$MODEL" --graph-dir "$GRAPHS" "$@"
  local rc=$?
  grep '^{' "$WORK/$name.log" | tail -n 1 >"$WORK/bench-$name.json"
  if [ -s "$WORK/bench-$name.json" ]; then
    "$NODE" -e 'const [n, f] = process.argv.slice(1); process.stdout.write(JSON.stringify({ step: n, ...JSON.parse(require("fs").readFileSync(f, "utf8")) }) + "\n")' "$name" "$WORK/bench-$name.json" >>"$WORK/bench.jsonl"
  else
    rm -f "$WORK/bench-$name.json"
  fi
  summarize
  return $rc
}

# ------------------------------------------------------------------------------------------------ golden (fp32 parity)
if has_step golden; then
  TAIL_LINES=40 run_step golden 150 20 -- "$NODE" bin/eye4eye.js golden test/fixtures/golden/sd1-tiny --device webgpu --cache-dir "$WORK/cache/golden" ${GOLDEN_ONLY:+--only "$GOLDEN_ONLY"}
  quiet "$WORK/golden.log" >"$OUT/golden.log"
  cp -f "$OUT/golden.log" "$WORK/golden.log"
  summarize
fi

# ------------------------------------------------------------------------------------------------ UNet timings
HAS_PRECISION=0
"$NODE" bin/eye4eye.js transfer --help 2>&1 | grep -q -- '--precision' && HAS_PRECISION=1
env_kv cli_precision_flag "$HAS_PRECISION"
if has_step unet; then
  if wait_model; then
    if [ "$SIM" = 1 ]; then
      # SwiftShader cannot run the SD-1.5 UNet in minutes: the bench's flow on the text encoder.
      bench_step unet 300 20 --only text --device "$SIM_BENCH_DEVICE" --calls 1
    else
      bench_step unet 150 40 --only unet --device webgpu --calls 2
    fi
  else
    skip_step unet "no model"
  fi
fi
if has_step unet16; then
  if [ $HAS_PRECISION = 0 ]; then
    skip_step unet16 "eye4eye transfer --help lists no --precision: the library has no fp16 path yet"
  elif ! wait_model; then
    skip_step unet16 "no model"
  else
    if [ "$SIM" = 1 ]; then
      bench_step unet16 300 20 --only text --device "$SIM_BENCH_DEVICE" --precision fp16 --calls 1
    else
      bench_step unet16 100 40 --only unet --device webgpu --precision fp16 --calls 2
    fi
  fi
fi

# ------------------------------------------------------------------------------------------------ the whole transfer
if has_step transfer; then
  if [ "$SIM" = 1 ]; then
    T_MODEL=test/fixtures/golden/sd1-tiny/model T_SIZE=64 T_N=${DEVICE_CHECK_TRANSFER_STEPS:-4}
  else
    T_MODEL=$MODEL T_SIZE=512 T_N=${DEVICE_CHECK_TRANSFER_STEPS:-}
    wait_model || T_MODEL=""
  fi
  # All that is left: the VAE step after it is worth less (run.json times the encode and decode too).
  avail=$(left)
  if [ -z "$T_N" ]; then
    # From the UNet timings: can 100 steps (200 inversion calls at batch 2, 68 transfer calls at batch 6) finish?
    T_N=$("$NODE" -e '
      const [file, avail] = [process.argv[1], Number(process.argv[2])];
      let b = {};
      try { b = JSON.parse(require("fs").readFileSync(file, "utf8")); } catch {}
      const b2 = b.unet_b2_min_s, b6 = b.unet_b6_match_min_s ?? b.unet_b6_min_s;
      if (!(b2 > 0) || !(b6 > 0)) { console.log(100); process.exit(0); }
      const est = (n) => 1.25 * (2 * n * b2 + (n - Math.round(0.32 * n)) * b6) + 45; // + sessions, encode, decode
      console.log([100, 50, 25, 10].find((n) => est(n) <= avail) ?? 10);
    ' "$WORK/bench-unet.json" "$avail")
    [ "$T_N" != 100 ] && STEP_NOTE="$T_N steps instead of 100: the UNet timings say 100 cannot finish in ${avail} s"
  fi
  if [ -n "$T_MODEL" ]; then
    T_SKIP=$(((32 * T_N + 50) / 100))
    T_ARGS=(--steps "$T_N" --skip "$T_SKIP")
    if [ "$T_N" != 100 ]; then
      T_ARGS+=(--feat-range "$(((10 * T_N + 50) / 100)),$(((70 * T_N + 50) / 100))" --adain-range "$(((50 * T_N + 50) / 100)),$T_N")
    fi
    rm -rf "$GRAPHS/inversions" # both inversions are computed and timed, also on a rerun
    run_step transfer "$((avail > 590 ? 590 : avail))" 45 -- "$NODE" bin/eye4eye.js transfer \
      --structure examples/bird-blue.png --appearance examples/bird-red.png \
      --structure-mask examples/bird-blue-mask.png --appearance-mask examples/bird-red-mask.png \
      --domain bird --model "$T_MODEL" --size "$T_SIZE" "${T_ARGS[@]}" --device webgpu --cache-dir "$GRAPHS" --out "$WORK/transfer"
    [ -f "$WORK/transfer/run.json" ] && cp -f "$WORK/transfer/run.json" "$OUT/run.json"
    [ -f "$WORK/transfer/grid.png" ] && cp -f "$WORK/transfer/grid.png" "$OUT/grid.png"
    summarize
  else
    skip_step transfer "no model"
  fi
fi

# ------------------------------------------------------------------------------------------------ VAE timings
if has_step vae; then
  if ! wait_model; then
    skip_step vae "no model"
  else
    if [ "$SIM" = 1 ]; then
      bench_step vae 300 20 --only vae --device "$SIM_BENCH_DEVICE" --calls 1
    else
      bench_step vae 60 20 --only vae --device webgpu --calls 2
    fi
  fi
fi

finish 0
