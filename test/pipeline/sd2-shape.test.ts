/**
 * An SD-2-shaped tiny model (linear projections in the transformers, per-block head list, upcast_attention,
 * a GELU text encoder of another width, `!` as the pad token) through the whole pipeline. There is no reference
 * output for it here: this proves the SD-2 shapes go through every builder and the loop end to end.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureRandomModel } from '../../bench/random-model.js';
import { loadPipeline, type TransferPipeline } from '../../src/pipeline/pipeline.js';
import { repoRoot, sd1TinyModelDir } from '../helpers/paths.js';

let root: string;
let pipeline: TransferPipeline;

function writeJson(path: string, value: unknown): void {
  writeFileSync(path, JSON.stringify(value, null, 2));
}

before(async () => {
  root = mkdtempSync(join(tmpdir(), 'e4e-sd2-'));
  const configs = join(root, 'configs');
  for (const c of ['unet', 'vae', 'text_encoder', 'scheduler']) mkdirSync(join(configs, c), { recursive: true });
  const read = (rel: string): Record<string, unknown> => JSON.parse(readFileSync(join(sd1TinyModelDir, rel), 'utf8')) as Record<string, unknown>;
  writeJson(join(configs, 'unet', 'config.json'), {
    ...read('unet/config.json'),
    use_linear_projection: true,
    attention_head_dim: [2, 2, 4, 4],
    upcast_attention: true,
    cross_attention_dim: 48,
  });
  writeJson(join(configs, 'vae', 'config.json'), read('vae/config.json'));
  writeJson(join(configs, 'text_encoder', 'config.json'), {
    ...read('text_encoder/config.json'),
    hidden_size: 48,
    intermediate_size: 96,
    hidden_act: 'gelu',
    projection_dim: 48,
  });
  writeJson(join(configs, 'scheduler', 'scheduler_config.json'), read('scheduler/scheduler_config.json'));
  writeJson(join(configs, 'model_index.json'), read('model_index.json'));
  const tokenizer = join(root, 'tokenizer');
  mkdirSync(tokenizer);
  for (const f of ['vocab.json', 'merges.txt', 'tokenizer_config.json']) copyFileSync(join(sd1TinyModelDir, 'tokenizer', f), join(tokenizer, f));
  writeJson(join(tokenizer, 'special_tokens_map.json'), {
    ...(JSON.parse(readFileSync(join(sd1TinyModelDir, 'tokenizer', 'special_tokens_map.json'), 'utf8')) as object),
    pad_token: '!',
  });
  const model = join(root, 'model');
  ensureRandomModel(model, configs, tokenizer);
  pipeline = await loadPipeline(model, { cacheDir: join(root, 'cache') });
});

after(async () => {
  await pipeline.dispose();
  rmSync(root, { recursive: true, force: true });
});

test('an SD-2-shaped model runs the whole transfer (masks, matching, structure copy, AdaIN) and gives a finite image', async () => {
  const examples = join(repoRoot, 'examples');
  const result = await pipeline.transfer(
    { structure: join(examples, 'bird-blue.png'), appearance: join(examples, 'bird-red.png') },
    {
      domain: 'bird',
      size: 128,
      numSteps: 8,
      skip: 1,
      featRange: [1, 7],
      adainRange: [4, 8],
      structureMask: join(examples, 'bird-blue-mask.png'),
      appearanceMask: join(examples, 'bird-red-mask.png'),
    },
  );
  assert.deepEqual(result.image.dims, [1, 3, 128, 128]);
  assert.ok(result.image.data.every(Number.isFinite));
  assert.equal(result.matches?.site, 'up_blocks.3.attentions.2.transformer_blocks.0.attn1');
  assert.ok(
    Array.from(result.matches.indices, Number).some((v) => v >= 0),
    'some tokens were matched',
  );
});
