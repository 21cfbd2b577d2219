import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { loadModelIndex, parseModelIndex } from '../../src/config/model-index.js';
import { ConfigError } from '../../src/errors.js';
import { fixturesDir, sd1TinyModelDir } from '../helpers/paths.js';

test('model_index.json of the fixture and of SD-1.5', () => {
  const tiny = loadModelIndex(join(sd1TinyModelDir, 'model_index.json'));
  assert.equal(tiny.className, 'StableDiffusionPipeline');
  assert.equal(tiny.diffusersVersion, '0.19.3');
  assert.deepEqual(tiny.components['unet'], { library: 'diffusers', className: 'UNet2DConditionModel' });
  assert.deepEqual(tiny.components['scheduler'], { library: 'diffusers', className: 'DDIMScheduler' });
  assert.deepEqual(tiny.components['safety_checker'], { library: null, className: null });
  assert.equal(tiny.components['requires_safety_checker'], undefined);
  assert.ok(Object.isFrozen(tiny.components));
  const sd15 = loadModelIndex(join(fixturesDir, 'configs', 'sd-1.5', 'model_index.json'));
  assert.deepEqual(Object.keys(sd15.components).sort(), ['scheduler', 'text_encoder', 'tokenizer', 'unet', 'vae']);
  assert.deepEqual(sd15.components['text_encoder'], { library: 'transformers', className: 'CLIPTextModel' });
});

test('model_index.json errors', () => {
  assert.throws(
    () => parseModelIndex({ unet: ['diffusers'] }, 'model_index.json'),
    (error: unknown) => {
      assert.ok(error instanceof ConfigError);
      assert.equal(error.message, `model_index.json: field 'unet' must be a [library, class name] pair, got ["diffusers"]`);
      return true;
    },
  );
  assert.throws(
    () => parseModelIndex({ _class_name: 3 }, 'model_index.json'),
    (error: unknown) => {
      assert.ok(error instanceof ConfigError);
      assert.equal(error.message, `model_index.json: field '_class_name' must be a string or null, got 3`);
      return true;
    },
  );
});
