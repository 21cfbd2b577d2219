/**
 * A Stable Diffusion model folder (diffusers layout) with RANDOM weights of the real shapes, for benchmarks.
 *
 * Values: uniform in [-0.02, 0.02] from xorshift32 (norm weights 1, biases 0), so activations stay finite.
 * Each safetensors file is streamed (header first, then every tensor generated in chunks), so a 3.4 GB UNet is never
 * held in memory. Files are written under temporary names and renamed; a sentinel file written LAST marks the folder
 * complete, and a folder without it (an interrupted generation) is wiped and regenerated.
 */
import { closeSync, copyFileSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { loadClipTextConfig, loadUNetConfig, loadVaeConfig } from '../src/config/index.js';
import { clipTextWeights, countParameters, unetWeights, vaeWeights, type WeightSpec } from './weight-list.js';

export const SENTINEL = '.bench-complete.json';
/** Bump when the generated content changes (names, values, layout): older folders are regenerated. */
const GENERATOR_VERSION = 1;
const SCALE = 0.02;
const CHUNK_ELEMENTS = 1 << 22; // 16 MB of float32 per write

class XorShift32 {
  constructor(private state: number) {
    if (this.state === 0) this.state = 0x9e3779b9;
  }

  /** Fill with uniform values in [-scale, scale). */
  fill(out: Float32Array, n: number, scale: number): void {
    let s = this.state | 0;
    const k = (2 * scale) / 4294967296;
    for (let i = 0; i < n; i++) {
      s ^= s << 13;
      s ^= s >>> 17;
      s ^= s << 5;
      out[i] = (s >>> 0) * k - scale;
    }
    this.state = s;
  }
}

function writeAll(fd: number, bytes: Uint8Array): void {
  let done = 0;
  while (done < bytes.length) done += writeSync(fd, bytes, done, bytes.length - done);
}

function numel(dims: readonly number[]): number {
  return dims.reduce((a, b) => a * b, 1);
}

/** Stream a safetensors file: header (sorted names, contiguous offsets, padded to 8), then each tensor's bytes. */
export function writeRandomSafetensors(path: string, specs: readonly WeightSpec[], seed: number): void {
  const sorted = [...specs].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const entries: string[] = [];
  let offset = 0;
  for (const s of sorted) {
    const bytes = numel(s.dims) * (s.dtype === 'int64' ? 8 : 4);
    entries.push(
      `${JSON.stringify(s.name)}:${JSON.stringify({ dtype: s.dtype === 'int64' ? 'I64' : 'F32', shape: s.dims, data_offsets: [offset, offset + bytes] })}`,
    );
    offset += bytes;
  }
  entries.push(`"__metadata__":${JSON.stringify({ format: 'pt', generator: 'eye4eye-bench-random' })}`);
  const json = Buffer.from(`{${entries.join(',')}}`, 'utf8');
  const padded = Math.ceil(json.length / 8) * 8;
  const head = Buffer.alloc(8 + padded, 0x20);
  head.writeBigUInt64LE(BigInt(padded), 0);
  json.copy(head, 8);

  const tmp = `${path}.tmp-${process.pid}`;
  const fd = openSync(tmp, 'w');
  const rng = new XorShift32(seed);
  const chunk = new Float32Array(CHUNK_ELEMENTS);
  const chunkBytes = new Uint8Array(chunk.buffer);
  try {
    writeAll(fd, head);
    for (const s of sorted) {
      const n = numel(s.dims);
      if (s.dtype === 'int64') {
        writeAll(fd, new Uint8Array(BigInt64Array.from({ length: n }, (_, i) => BigInt(i % s.dims[s.dims.length - 1]!)).buffer));
        continue;
      }
      for (let done = 0; done < n; done += CHUNK_ELEMENTS) {
        const m = Math.min(CHUNK_ELEMENTS, n - done);
        if (s.kind === 'weight') rng.fill(chunk, m, SCALE);
        else chunk.fill(s.kind === 'norm-weight' ? 1 : 0, 0, m);
        writeAll(fd, chunkBytes.subarray(0, m * 4));
      }
    }
    closeSync(fd);
    renameSync(tmp, path);
  } catch (err) {
    closeSync(fd);
    rmSync(tmp, { force: true });
    throw err;
  }
}

export interface GeneratedModel {
  dir: string;
  generated: boolean;
  seconds: number;
  parameters: { unet: number; vae: number; text_encoder: number };
}

/**
 * Make sure `dir` holds a complete random model for the configs in `configDir` (the diffusers layout of
 * test/fixtures/configs/sd-1.5) and the tokenizer in `tokenizerDir`; generate it when absent or incomplete.
 */
export function ensureRandomModel(dir: string, configDir: string, tokenizerDir: string, log: (msg: string) => void = () => {}): GeneratedModel {
  const unetCfg = loadUNetConfig(join(configDir, 'unet', 'config.json'));
  const vaeCfg = loadVaeConfig(join(configDir, 'vae', 'config.json'));
  const textCfg = loadClipTextConfig(join(configDir, 'text_encoder', 'config.json'));
  const components = [
    { name: 'unet', file: 'diffusion_pytorch_model.safetensors', specs: unetWeights(unetCfg), seed: 0x1234567 },
    { name: 'vae', file: 'diffusion_pytorch_model.safetensors', specs: vaeWeights(vaeCfg), seed: 0x2345678 },
    { name: 'text_encoder', file: 'model.safetensors', specs: clipTextWeights(textCfg), seed: 0x3456789 },
  ] as const;
  const parameters = {
    unet: countParameters(components[0].specs),
    vae: countParameters(components[1].specs),
    text_encoder: countParameters(components[2].specs),
  };
  const sentinel = join(dir, SENTINEL);
  if (existsSync(sentinel)) {
    try {
      const s = JSON.parse(readFileSync(sentinel, 'utf8')) as { version?: number };
      if (s.version === GENERATOR_VERSION) return { dir, generated: false, seconds: 0, parameters };
    } catch {
      // unreadable sentinel: regenerate
    }
  }
  const started = performance.now();
  if (existsSync(dir)) rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const copy = (from: string, to: string): void => {
    mkdirSync(join(dir, to), { recursive: true });
    for (const f of readdirSync(from)) copyFileSync(join(from, f), join(dir, to, f));
  };
  for (const c of ['unet', 'vae', 'text_encoder']) copyFileSync(join(configDir, c, 'config.json'), join(mkdirp(join(dir, c)), 'config.json'));
  copy(join(configDir, 'scheduler'), 'scheduler');
  copy(tokenizerDir, 'tokenizer');
  if (existsSync(join(configDir, 'model_index.json'))) copyFileSync(join(configDir, 'model_index.json'), join(dir, 'model_index.json'));
  for (const c of components) {
    const t0 = performance.now();
    const count = countParameters(c.specs);
    log(`generating ${c.name}: ${c.specs.length} tensors, ${(count / 1e6).toFixed(1)} M parameters (${((count * 4) / 2 ** 30).toFixed(2)} GiB)`);
    writeRandomSafetensors(join(dir, c.name, c.file), c.specs, c.seed);
    log(`  ${c.name} written in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  }
  writeFileSync(sentinel, JSON.stringify({ version: GENERATOR_VERSION, parameters, date: new Date().toISOString() }, null, 2));
  return { dir, generated: true, seconds: (performance.now() - started) / 1000, parameters };
}

function mkdirp(path: string): string {
  mkdirSync(path, { recursive: true });
  return path;
}
