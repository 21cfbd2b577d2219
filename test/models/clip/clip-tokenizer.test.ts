import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';

import { ConfigError, FileError } from '../../../src/errors.js';
import { basicClean, ClipTokenizer, type ClipSpecialTokens } from '../../../src/models/clip/clip-tokenizer.js';
import { sd1TinyDir, sd1TinyModelDir } from '../../helpers/paths.js';

const tokenizerDir = join(sd1TinyModelDir, 'tokenizer');
const vocabPath = join(tokenizerDir, 'vocab.json');
const mergesPath = join(tokenizerDir, 'merges.txt');

const SD1_SPECIAL: ClipSpecialTokens = {
  bosToken: '<|startoftext|>',
  eosToken: '<|endoftext|>',
  padToken: '<|endoftext|>',
  unkToken: '<|endoftext|>',
  modelMaxLength: 77,
};
const SD2_SPECIAL: ClipSpecialTokens = { ...SD1_SPECIAL, padToken: '!' };
const BOS = 49406;
const EOS = 49407;

const sd1 = ClipTokenizer.fromFiles(vocabPath, mergesPath, SD1_SPECIAL);
const sd2 = ClipTokenizer.fromFiles(vocabPath, mergesPath, SD2_SPECIAL);

/** Reads one int64 tensor from a .safetensors file (kept local so this test does not depend on src/io). */
function readInt64Tensor(path: string, name: string): { dims: number[]; values: number[] } {
  const bytes = readFileSync(path);
  const headerLength = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + headerLength).toString('utf8')) as Record<
    string,
    { dtype: string; shape: number[]; data_offsets: [number, number] }
  >;
  const entry = header[name];
  assert.ok(entry !== undefined, `tensor ${name} missing from ${path}`);
  assert.equal(entry.dtype, 'I64');
  const [begin, end] = entry.data_offsets;
  const data = bytes.subarray(8 + headerLength + begin, 8 + headerLength + end);
  const values: number[] = [];
  for (let offset = 0; offset < data.length; offset += 8) values.push(Number(data.readBigInt64LE(offset)));
  return { dims: entry.shape, values };
}

/** The ids up to and including the first eos, then checks that the rest is padding. */
function idsBeforePadding(ids: number[], padId: number): number[] {
  const eos = ids.indexOf(EOS, 1);
  assert.ok(eos > 0, 'no eos');
  assert.deepEqual(ids.slice(eos + 1), new Array<number>(ids.length - eos - 1).fill(padId));
  return ids.slice(0, eos + 1);
}

describe('ClipTokenizer: golden parity (sd1-tiny, HF CLIPTokenizer without ftfy)', () => {
  const io = JSON.parse(readFileSync(join(sd1TinyDir, 'io.json'), 'utf8')) as { prompts: string[] };
  const golden = readInt64Tensor(join(sd1TinyDir, 'io.safetensors'), 'text.input_ids');

  it('has three prompts and a [3, 77] tensor', () => {
    assert.equal(io.prompts.length, 3);
    assert.deepEqual(golden.dims, [3, 77]);
  });

  io.prompts.forEach((prompt, i) => {
    it(`encode(prompts[${i}]) gives exactly the golden ids`, () => {
      assert.deepEqual(sd1.encode(prompt), golden.values.slice(i * 77, (i + 1) * 77));
    });
  });

  it('the long prompt is truncated: 107 BPE tokens -> bos + 75 + eos, no padding', () => {
    const long = io.prompts[2] ?? '';
    assert.equal(sd1.tokenize(long).length + 2, 109); // io.json: long_prompt_untruncated_length_with_bos_eos
    const ids = sd1.encode(long);
    assert.equal(ids.length, 77);
    assert.equal(ids[0], BOS);
    assert.equal(ids[76], EOS);
    assert.ok(!ids.slice(1, 76).includes(EOS));
  });

  it('encodeBatch gives the golden int64 tensor', () => {
    const batch = sd1.encodeBatch(io.prompts);
    assert.deepEqual(batch.dims, [3, 77]);
    assert.ok(batch.ids instanceof BigInt64Array);
    assert.deepEqual(Array.from(batch.ids, Number), golden.values);
  });
});

/*
 * Table cases. The reference (transformers) is not installed here, so the expected tokens/ids were derived from the
 * algorithm: by hand for the ASCII rows, and for all rows cross-checked against an independent Python transcription
 * of HF's CLIPTokenizer._tokenize / BasicTokenizer (Python's `regex` module, `unicodedata`, str.lower/split), which
 * reproduces the three golden rows above. The `! !! !!!` SD-2 row is HF's real output quoted in diffusers issue #4153.
 */
interface TableCase {
  name: string;
  text: string;
  tokens: string[];
  ids: number[]; // bos .. eos, before padding
}

const SD1_TABLE: TableCase[] = [
  { name: 'plain', text: 'A photo of a bird', tokens: ['a</w>', 'photo</w>', 'of</w>', 'a</w>', 'bird</w>'], ids: [BOS, 320, 1125, 539, 320, 3329, EOS] },
  {
    name: 'lower-casing',
    text: 'a PHOTO of A Bird',
    tokens: ['a</w>', 'photo</w>', 'of</w>', 'a</w>', 'bird</w>'],
    ids: [BOS, 320, 1125, 539, 320, 3329, EOS],
  },
  { name: 'punctuation is its own word', text: 'hello, world!', tokens: ['hello</w>', ',</w>', 'world</w>', '!</w>'], ids: [BOS, 3306, 267, 1002, 256, EOS] },
  {
    name: 'punctuation runs and weights syntax',
    text: 'a...b (masterpiece:1.2)',
    tokens: ['a</w>', '...</w>', 'b</w>', '(</w>', 'masterpiece</w>', ':</w>', '1</w>', '.</w>', '2</w>', ')</w>'],
    ids: [BOS, 320, 678, 321, 263, 12066, 281, 272, 269, 273, 264, EOS],
  },
  { name: 'consecutive punctuation merges', text: 'wow!! ok', tokens: ['wow</w>', '!!</w>', 'ok</w>'], ids: [BOS, 2781, 748, 2481, EOS] },
  {
    name: 'numbers split into single digits',
    text: '400mm 8k 2024',
    tokens: ['4</w>', '0</w>', '0</w>', 'mm</w>', '8</w>', 'k</w>', '2</w>', '0</w>', '2</w>', '4</w>'],
    ids: [BOS, 275, 271, 271, 2848, 279, 330, 273, 271, 273, 275, EOS],
  },
  {
    name: "apostrophes 's 't",
    text: "the bird's feathers, don't",
    tokens: ['the</w>', 'bird</w>', "'s</w>", 'feathers</w>', ',</w>', 'don</w>', "'t</w>"],
    ids: [BOS, 518, 3329, 568, 21138, 267, 847, 713, EOS],
  },
  {
    name: "apostrophes 'm 're 've 'll 'd (after lower-casing)",
    text: "I'M sure they're here, we've i'll he'd",
    tokens: ['i</w>', "'m</w>", 'sure</w>', 'they</w>', "'re</w>", 'here</w>', ',</w>', 'we</w>', "'ve</w>", 'i</w>', "'ll</w>", 'he</w>', "'d</w>"],
    ids: [BOS, 328, 880, 1650, 889, 982, 763, 267, 649, 1200, 328, 1342, 797, 1896, EOS],
  },
  {
    name: 'spaces, newlines, tabs collapse',
    text: '  a  photo\n\tof\r\na   bird  ',
    tokens: ['a</w>', 'photo</w>', 'of</w>', 'a</w>', 'bird</w>'],
    ids: [BOS, 320, 1125, 539, 320, 3329, EOS],
  },
  {
    name: 'Unicode spaces (NBSP, ideographic, line separator)',
    text: 'a\u00a0b\u3000c\u2028d',
    tokens: ['a</w>', 'b</w>', 'c</w>', 'd</w>'],
    ids: [BOS, 320, 321, 322, 323, EOS],
  },
  {
    name: 'accents kept (no stripping), bytes mapped',
    text: 'café naïve',
    tokens: ['cafÃ©</w>', 'na', 'Ã¯', 've</w>'],
    ids: [BOS, 15304, 1097, 35689, 563, EOS],
  },
  { name: 'NFC: e + combining acute == é', text: 'cafe\u0301', tokens: ['cafÃ©</w>'], ids: [BOS, 15304, EOS] },
  { name: 'emoji', text: '🐦 bird', tokens: ['ðŁĲ¦</w>', 'bird</w>'], ids: [BOS, 37260, 3329, EOS] },
  {
    name: 'CJK ideographs become one word each',
    text: '鸟的照片',
    tokens: ['é', '¸', 'Ł</w>', 'ç', 'ļ', 'Ħ</w>', 'ç', 'ħ', '§</w>', 'ç', 'ī', 'ĩ</w>'],
    ids: [BOS, 165, 116, 509, 163, 248, 482, 163, 227, 356, 163, 231, 485, EOS],
  },
  { name: 'kana are not CJK-spaced', text: 'ねこ', tokens: ['ãģ', 'Ń', 'ãģ', 'ĵ</w>'], ids: [BOS, 4813, 255, 4813, 497, EOS] },
  {
    name: 'Cyrillic and Greek letters',
    text: 'кот Ωmega',
    tokens: ['Ðº', 'Ð¾', 'Ñ', 'Ĥ</w>', 'Ï', 'ī', 'mega</w>'],
    ids: [BOS, 27152, 13506, 141, 480, 139, 231, 9068, EOS],
  },
  { name: 'NUL, zero-width space (Cf) and U+FFFD are dropped', text: 'a\u0000b\u200bc\ufffd d', tokens: ['abc</w>', 'd</w>'], ids: [BOS, 5334, 323, EOS] },
  { name: 'empty string', text: '', tokens: [], ids: [BOS, EOS] },
  { name: 'whitespace only', text: ' \n\t ', tokens: [], ids: [BOS, EOS] },
  {
    name: 'special token in the text',
    text: 'a!<|startoftext|>b',
    tokens: ['a</w>', '!</w>', '<|startoftext|>', 'b</w>'],
    ids: [BOS, 320, 256, BOS, 321, EOS],
  },
  {
    name: 'upper-case special is lower-cased then matched by the regex',
    text: 'A <|ENDOFTEXT|> b',
    tokens: ['a</w>', '<|endoftext|>', 'b</w>'],
    ids: [BOS, 320, EOS, 321, EOS],
  },
];

describe('ClipTokenizer: table (SD-1, pad <|endoftext|>)', () => {
  for (const c of SD1_TABLE) {
    it(c.name, () => {
      assert.deepEqual(sd1.tokenize(c.text), c.tokens);
      const ids = sd1.encode(c.text);
      assert.equal(ids.length, 77);
      assert.deepEqual(ids.slice(0, c.ids.length), c.ids);
      assert.deepEqual(ids.slice(c.ids.length), new Array<number>(77 - c.ids.length).fill(EOS));
    });
  }

  it('a prompt of exactly 75 tokens fills the 77 slots; 76 tokens are cut to 75', () => {
    const words = (n: number): string => new Array<string>(n).fill('a').join(' ');
    assert.deepEqual(sd1.encode(words(74)), [BOS, ...new Array<number>(74).fill(320), EOS, EOS]);
    assert.deepEqual(sd1.encode(words(75)), [BOS, ...new Array<number>(75).fill(320), EOS]);
    assert.deepEqual(sd1.encode(words(76)), [BOS, ...new Array<number>(75).fill(320), EOS]);
    assert.deepEqual(sd1.encode(words(300)), sd1.encode(words(75)));
  });

  it('basicClean: control chars, CJK spacing, whitespace collapse, lower-case', () => {
    assert.equal(basicClean(' Ab\u0007c\t\tD鸟E \n'), 'abc d 鸟 e');
    assert.equal(basicClean('ÀB', false), 'ÀB');
  });
});

describe('ClipTokenizer: SD-2 pad token "!"', () => {
  it('pads with the id of "!" (0)', () => {
    const ids = sd2.encode('a bird');
    assert.equal(sd2.padTokenId, 0);
    assert.deepEqual(idsBeforePadding(ids, 0), [BOS, 320, 3329, EOS]);
  });

  it('"!" is a special token, cut out before BPE (HF output in diffusers#4153)', () => {
    assert.deepEqual(idsBeforePadding(sd2.encode('! !! !!!'), 0), [BOS, 0, 0, 0, 0, 0, 0, EOS]);
    assert.deepEqual(sd2.tokenize('wow!! ok'), ['wow</w>', '!', '!', 'ok</w>']);
  });

  it('encodeBatch pads with 0n', () => {
    const { ids, dims } = sd2.encodeBatch(['a bird', '']);
    assert.deepEqual(dims, [2, 77]);
    assert.deepEqual(Array.from(ids.subarray(77, 81), Number), [BOS, EOS, 0, 0]);
  });
});

describe('ClipTokenizer: errors', () => {
  const dir = mkdtempSync(join(tmpdir(), 'clip-tok-'));

  it('missing files are FileErrors naming the file', () => {
    const missing = join(dir, 'nope.json');
    assert.throws(
      () => ClipTokenizer.fromFiles(missing, mergesPath, SD1_SPECIAL),
      (e: unknown) => e instanceof FileError && e.message.includes(missing),
    );
    assert.throws(
      () => ClipTokenizer.fromFiles(vocabPath, join(dir, 'merges.txt'), SD1_SPECIAL),
      (e: unknown) => e instanceof FileError && e.message.includes('merges.txt'),
    );
  });

  it('invalid files are ConfigErrors naming the file', () => {
    const badJson = join(dir, 'bad.json');
    writeFileSync(badJson, '{ not json');
    assert.throws(
      () => ClipTokenizer.fromFiles(badJson, mergesPath, SD1_SPECIAL),
      (e: unknown) => e instanceof ConfigError && e.message.includes(badJson),
    );
    const badMerges = join(dir, 'bad-merges.txt');
    writeFileSync(badMerges, 'i n\nt h\n');
    assert.throws(
      () => ClipTokenizer.fromFiles(vocabPath, badMerges, SD1_SPECIAL),
      (e: unknown) => e instanceof ConfigError && e.message.includes(badMerges),
    );
  });

  it('a special token missing from the vocab is a ConfigError naming the token', () => {
    const vocab = { a: 0, '<|endoftext|>': 1 };
    assert.throws(
      () => new ClipTokenizer({ ...SD1_SPECIAL, vocab, merges: [] }),
      (e: unknown) => e instanceof ConfigError && e.message.includes('<|startoftext|>'),
    );
  });
});

describe('ClipTokenizer: speed', () => {
  it('tokenizes 1000 distinct prompts in well under a second', () => {
    const fresh = ClipTokenizer.fromFiles(vocabPath, mergesPath, SD1_SPECIAL);
    const prompts = Array.from(
      { length: 1000 },
      (_, i) => `A highly detailed photograph number ${i} of a colorful bird perched on branch ${i * 7}, golden light, bokeh, 8k`,
    );
    const start = performance.now();
    fresh.encodeBatch(prompts);
    const ms = performance.now() - start;
    assert.ok(ms < 1000, `took ${ms.toFixed(0)} ms`);
  });
});
