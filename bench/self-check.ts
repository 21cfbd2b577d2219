/**
 * `npm run bench -- --self-check`: the weight lists against the tiny golden model's files, the SD-1.5 parameter
 * counts against the real checkpoints, and a random tiny model that must build and run. No big model needed.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadClipTextConfig, loadUNetConfig, loadVaeConfig } from '../src/config/index.js';
import { SafetensorsFile } from '../src/io/safetensors.js';
import { e4eFeeds, injectionSlots } from '../src/methods/eye-for-an-eye/controls.js';
import { e4eUNetVariant } from '../src/methods/eye-for-an-eye/index.js';
import { StableDiffusionModel } from '../src/runtime/stable-diffusion.js';
import { allFinite, CONFIG_DIR, randn, TINY_DIR, TOKENIZER_DIR } from './common.js';
import { ensureRandomModel } from './random-model.js';
import { clipTextWeights, countParameters, unetWeights, vaeWeights, type WeightSpec } from './weight-list.js';

function compareWithFile(label: string, specs: readonly WeightSpec[], file: string): string[] {
  const st = SafetensorsFile.open(file);
  const problems: string[] = [];
  try {
    const want = new Map(specs.map((s) => [s.name, s]));
    for (const name of st.names()) {
      const s = want.get(name);
      const info = st.info(name);
      if (s === undefined) problems.push(`${label}: ${name} ${JSON.stringify(info.dims)} is in the file but not listed`);
      else if (JSON.stringify(s.dims) !== JSON.stringify(info.dims) || s.dtype !== info.dtype) {
        problems.push(`${label}: ${name}: listed ${s.dtype}${JSON.stringify(s.dims)}, file ${info.dtype}${JSON.stringify(info.dims)}`);
      }
      want.delete(name);
    }
    for (const name of want.keys()) problems.push(`${label}: ${name} is listed but not in the file`);
  } finally {
    st.close();
  }
  return problems;
}

export async function selfCheck(): Promise<void> {
  const problems = [
    ...compareWithFile(
      'unet',
      unetWeights(loadUNetConfig(join(TINY_DIR, 'unet', 'config.json'))),
      join(TINY_DIR, 'unet', 'diffusion_pytorch_model.safetensors'),
    ),
    ...compareWithFile('vae', vaeWeights(loadVaeConfig(join(TINY_DIR, 'vae', 'config.json'))), join(TINY_DIR, 'vae', 'diffusion_pytorch_model.safetensors')),
    ...compareWithFile(
      'text_encoder',
      clipTextWeights(loadClipTextConfig(join(TINY_DIR, 'text_encoder', 'config.json'))),
      join(TINY_DIR, 'text_encoder', 'model.safetensors'),
    ),
  ];
  for (const p of problems) console.log(`  MISMATCH ${p}`);
  console.log(`tiny golden model vs weight list: ${problems.length === 0 ? 'names, shapes and dtypes identical' : `${problems.length} mismatches`}`);

  const sd = {
    unet: countParameters(unetWeights(loadUNetConfig(join(CONFIG_DIR, 'unet', 'config.json')))),
    vae: countParameters(vaeWeights(loadVaeConfig(join(CONFIG_DIR, 'vae', 'config.json')))),
    text_encoder: countParameters(clipTextWeights(loadClipTextConfig(join(CONFIG_DIR, 'text_encoder', 'config.json')))),
  };
  // Parameter counts of the real SD-1.5 checkpoints (diffusers num_parameters()).
  const known = { unet: 859_520_964, vae: 83_653_863, text_encoder: 123_060_480 };
  let countsOk = true;
  for (const k of ['unet', 'vae', 'text_encoder'] as const) {
    const ok = sd[k] === known[k];
    countsOk &&= ok;
    console.log(`SD-1.5 ${k}: ${sd[k].toLocaleString('en-US')} parameters (real checkpoint: ${known[k].toLocaleString('en-US')}) ${ok ? 'ok' : 'MISMATCH'}`);
  }

  // A random tiny model from the list must build through our graph builders (which check every weight both ways).
  const tmp = mkdtempSync(join(tmpdir(), 'e4e-bench-selfcheck-'));
  let buildsOk = false;
  try {
    ensureRandomModel(join(tmp, 'model'), TINY_DIR, TOKENIZER_DIR);
    const model = StableDiffusionModel.open(join(tmp, 'model'), { cacheDir: join(tmp, 'graphs') });
    const text = await model.encodeText(['a cat']);
    const latent = await model.encodeImage(randn([1, 3, 128, 128], 3));
    const image = await model.decodeLatent(latent);
    const runner = await model.unet(e4eUNetVariant(model.unetConfig));
    const b = 6;
    const r = await runner.call({
      sample: randn([b, 4, 16, 16], 4),
      timestep: 10,
      encoderHiddenStates: randn([b, 77, model.textConfig.hiddenSize], 5),
      feeds: e4eFeeds({ mode: 'match', slots: injectionSlots(true) }, runner.info.processed, b),
    });
    await model.dispose();
    buildsOk = [text, latent, image, r.noise].every(allFinite);
    console.log(`random tiny model builds and runs (text, vae encode/decode, unet e4e match): ${buildsOk ? 'ok' : 'NON-FINITE OUTPUT'}`);
  } catch (err) {
    console.log(`random tiny model FAILED to build/run: ${err instanceof Error ? err.message : String(err)}`);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  if (problems.length > 0 || !countsOk || !buildsOk) process.exitCode = 1;
}
