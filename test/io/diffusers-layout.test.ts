import { loadModelIndex } from '../../src/config/model-index.js';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findWeights, resolveDiffusersLayout } from '../../src/io/diffusers-layout.js';
import { FileError } from '../../src/errors.js';
import { sd1TinyModelDir } from '../helpers/paths.js';

const tmp = mkdtempSync(join(tmpdir(), 'e4e-layout-'));
process.on('exit', () => rmSync(tmp, { recursive: true, force: true }));
let counter = 0;
const HINT =
  '\n  hint: a diffusers model folder has unet/, vae/, text_encoder/, tokenizer/ and scheduler/ (as written by save_pretrained or downloaded from the Hugging Face Hub)';

function throwsFile(fn: () => unknown, message: string): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof FileError, `expected FileError, got ${String(error)}`);
    assert.equal(error.code, 'E_FILE');
    assert.equal(error.message, message);
    return true;
  });
}

/** A component folder holding the given (empty) files. */
function folder(files: string[]): string {
  const dir = join(tmp, `c${counter++}`);
  mkdirSync(dir);
  for (const f of files) writeFileSync(join(dir, f), '');
  return dir;
}

test('the fixture model folder resolves with all components and its weights', () => {
  const layout = resolveDiffusersLayout(sd1TinyModelDir);
  assert.equal(layout.root, sd1TinyModelDir);
  assert.equal(layout.unet, join(sd1TinyModelDir, 'unet'));
  assert.equal(layout.vae, join(sd1TinyModelDir, 'vae'));
  assert.equal(layout.textEncoder, join(sd1TinyModelDir, 'text_encoder'));
  assert.equal(layout.tokenizer, join(sd1TinyModelDir, 'tokenizer'));
  assert.equal(layout.scheduler, join(sd1TinyModelDir, 'scheduler'));
  assert.equal(loadModelIndex(layout.modelIndexPath!).components['vae']?.className, 'AutoencoderKL');
  assert.equal(findWeights(layout.unet), join(sd1TinyModelDir, 'unet', 'diffusion_pytorch_model.safetensors'));
  assert.equal(findWeights(layout.textEncoder), join(sd1TinyModelDir, 'text_encoder', 'model.safetensors'));
});

test('missing model folder, component folder or component file', () => {
  const root = join(tmp, 'model');
  throwsFile(() => resolveDiffusersLayout(root), `${root}: model folder not found${HINT}`);
  mkdirSync(root);
  throwsFile(
    () => resolveDiffusersLayout(root),
    `${join(root, 'unet')}: component folder 'unet' not found (expected the UNet2DConditionModel config.json and weights)${HINT}`,
  );
  mkdirSync(join(root, 'unet'));
  throwsFile(
    () => resolveDiffusersLayout(root, ['unet']),
    `${join(root, 'unet', 'config.json')}: file not found (component 'unet' needs the UNet2DConditionModel config.json and weights)${HINT}`,
  );
  writeFileSync(join(root, 'unet', 'config.json'), '{}');
  const layout = resolveDiffusersLayout(root, ['unet']);
  assert.equal(layout.modelIndexPath, undefined);
  mkdirSync(join(root, 'tokenizer'));
  writeFileSync(join(root, 'tokenizer', 'vocab.json'), '{}');
  throwsFile(
    () => resolveDiffusersLayout(root, ['unet', 'tokenizer']),
    `${join(root, 'tokenizer', 'merges.txt')}: file not found (component 'tokenizer' needs the CLIPTokenizer files vocab.json, merges.txt and tokenizer_config.json)${HINT}`,
  );
  const file = join(tmp, 'file.txt');
  writeFileSync(file, '');
  throwsFile(() => resolveDiffusersLayout(file), `${file}: expected a model folder, found a file${HINT}`);
});

test('findWeights prefers plain, then sharded, then fp16 files', () => {
  assert.equal(
    findWeights(folder(['model.fp16.safetensors', 'diffusion_pytorch_model.safetensors.index.json', 'model.safetensors'])).endsWith('/model.safetensors'),
    true,
  );
  const sharded = folder(['diffusion_pytorch_model.fp16.safetensors', 'diffusion_pytorch_model.safetensors.index.json', 'diffusion_pytorch_model.bin']);
  assert.equal(findWeights(sharded), join(sharded, 'diffusion_pytorch_model.safetensors.index.json'));
  const fp16 = folder(['diffusion_pytorch_model.fp16.safetensors', 'diffusion_pytorch_model.bin']);
  assert.equal(findWeights(fp16), join(fp16, 'diffusion_pytorch_model.fp16.safetensors'));
  const fp16Sharded = folder(['model.safetensors.index.fp16.json']);
  assert.equal(findWeights(fp16Sharded), join(fp16Sharded, 'model.safetensors.index.fp16.json'));
});

test('findWeights: pickle-only folders, empty folders and missing folders', () => {
  const pickles = folder(['diffusion_pytorch_model.bin', 'config.json', 'model.ckpt']);
  throwsFile(
    () => findWeights(pickles),
    `${pickles}: only PyTorch pickle weights found (diffusion_pytorch_model.bin, model.ckpt); eye4eye requires safetensors weights` +
      '\n  hint: convert them, e.g. load the model with diffusers and call save_pretrained(folder, safe_serialization=True)',
  );
  const empty = folder(['config.json']);
  throwsFile(
    () => findWeights(empty),
    `${empty}: no weights found; expected one of diffusion_pytorch_model.safetensors, model.safetensors, diffusion_pytorch_model.safetensors.index.json, ` +
      'model.safetensors.index.json, diffusion_pytorch_model.fp16.safetensors, model.fp16.safetensors, diffusion_pytorch_model.safetensors.index.fp16.json, ' +
      `model.safetensors.index.fp16.json${HINT}`,
  );
  const missing = join(tmp, 'nothing-here');
  throwsFile(() => findWeights(missing), `${missing}: component folder not found (expected safetensors weights in it)${HINT}`);
});
