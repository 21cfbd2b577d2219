import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadTokenizerConfig, parseTokenizerConfig } from '../../src/config/tokenizer-config.js';
import { ConfigError, FileError } from '../../src/errors.js';
import { sd1TinyModelDir } from '../helpers/paths.js';

const P = '/m/tokenizer/tokenizer_config.json';
const added = (content: string): unknown => ({ __type: 'AddedToken', content, lstrip: false, normalized: true, rstrip: false, single_word: false });

test('fixture sd1-tiny tokenizer: SD-1 pads with <|endoftext|>', () => {
  const dir = join(sd1TinyModelDir, 'tokenizer');
  const config = loadTokenizerConfig(dir);
  assert.equal(config.modelMaxLength, 77);
  assert.equal(config.doLowerCase, true);
  assert.equal(config.bosToken, '<|startoftext|>');
  assert.equal(config.eosToken, '<|endoftext|>');
  assert.equal(config.unkToken, '<|endoftext|>');
  assert.equal(config.padToken, '<|endoftext|>');
  assert.equal(config.className, 'CLIPTokenizer');
  assert.equal(config.vocabPath, join(dir, 'vocab.json'));
  assert.equal(config.mergesPath, join(dir, 'merges.txt'));
  assert.ok(Object.isFrozen(config));
});

test('SD-2 tokenizer: special_tokens_map.json overrides the pad token with "!"', () => {
  const config = parseTokenizerConfig(
    {
      bos_token: added('<|startoftext|>'),
      eos_token: added('<|endoftext|>'),
      pad_token: '<|endoftext|>',
      unk_token: added('<|endoftext|>'),
      model_max_length: 77,
      do_lower_case: true,
      tokenizer_class: 'CLIPTokenizer',
    },
    P,
    { json: { bos_token: added('<|startoftext|>'), pad_token: '!' }, path: '/m/tokenizer/special_tokens_map.json' },
  );
  assert.equal(config.padToken, '!');
  assert.equal(config.bosToken, '<|startoftext|>');
  assert.equal(config.eosToken, '<|endoftext|>');
  assert.equal(config.vocabPath, '/m/tokenizer/vocab.json');
  assert.equal(config.mergesPath, '/m/tokenizer/merges.txt');
});

test('CLIPTokenizer defaults when the config names nothing', () => {
  const config = parseTokenizerConfig({}, P);
  assert.deepEqual(
    [config.bosToken, config.eosToken, config.unkToken, config.padToken, config.modelMaxLength, config.doLowerCase, config.className],
    ['<|startoftext|>', '<|endoftext|>', '<|endoftext|>', '<|endoftext|>', 77, true, null],
  );
});

test('tokenizer config errors', () => {
  const expectConfigError = (fn: () => unknown, message: string): void => {
    assert.throws(fn, (error: unknown) => {
      assert.ok(error instanceof ConfigError, String(error));
      assert.equal(error.message, message);
      return true;
    });
  };
  expectConfigError(
    () => parseTokenizerConfig({ pad_token: { text: '!' } }, P),
    `${P}: field 'pad_token' must be a token string or an object with a string 'content', got {"text":"!"}`,
  );
  expectConfigError(
    () => parseTokenizerConfig({}, P, { json: { eos_token: 5 }, path: '/m/tokenizer/special_tokens_map.json' }),
    "/m/tokenizer/special_tokens_map.json: field 'eos_token' must be a token string or an object with a string 'content', got 5",
  );
  expectConfigError(() => parseTokenizerConfig({ model_max_length: 0 }, P), `${P}: field 'model_max_length' must be a positive integer, got 0`);
});

test('loadTokenizerConfig needs vocab.json and merges.txt', () => {
  const dir = mkdtempSync(join(tmpdir(), 'e4e-tokenizer-'));
  try {
    writeFileSync(join(dir, 'tokenizer_config.json'), '{}');
    writeFileSync(join(dir, 'vocab.json'), '{}');
    assert.throws(
      () => loadTokenizerConfig(dir),
      (error: unknown) => {
        assert.ok(error instanceof FileError);
        assert.equal(error.message, `${join(dir, 'merges.txt')}: tokenizer file not found\n  hint: a CLIP tokenizer folder needs vocab.json and merges.txt`);
        return true;
      },
    );
    writeFileSync(join(dir, 'merges.txt'), '#version: 0.2\n');
    assert.equal(loadTokenizerConfig(dir).padToken, '<|endoftext|>');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
