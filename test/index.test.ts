import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as eye4eye from '../src/index.js';

test('the public surface exports the library entry points and the error classes', () => {
  for (const name of [
    'loadPipeline',
    'validateTransferOptions',
    'DEFAULT_TRANSFER_OPTIONS',
    'StableDiffusionModel',
    'runGolden',
    'compareTensors',
    'openTensorSource',
    'writeSafetensors',
    'loadImage',
    'loadSamInput',
    'pilResize',
    'cv2ResizeLinear',
    'E4EError',
    'InvalidParameterError',
    'VERSION',
  ]) {
    assert.ok(name in eye4eye, `${name} is exported`);
  }
  assert.equal(eye4eye.DEFAULT_TRANSFER_OPTIONS.numSteps, 100);
  assert.throws(
    () => eye4eye.validateTransferOptions({ domain: 'bird', numSteps: 0 }),
    /Expected integer between 1 and 1000 for numSteps but received 0 of type number/,
  );
});
