/**
 * CLIPTokenizer settings from tokenizer/tokenizer_config.json, overridden by special_tokens_map.json where that
 * file names a token (as transformers' from_pretrained does). Tokens are plain strings or AddedToken objects
 * ({content, lstrip, ...}); only the strings are kept. SD-1 pads with "<|endoftext|>", SD-2 with "!".
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { FileError } from '../errors.js';
import { ConfigReader, deepFreeze, isBoolean, isPositiveInt, isRecord, isString, loadJsonConfig } from './config-reader.js';

export interface TokenizerConfig {
  readonly className: string | null;
  readonly modelMaxLength: number;
  readonly doLowerCase: boolean;
  readonly bosToken: string;
  readonly eosToken: string;
  readonly unkToken: string;
  readonly padToken: string;
  /** tokenizer/vocab.json and tokenizer/merges.txt next to the config file. */
  readonly vocabPath: string;
  readonly mergesPath: string;
}

type TokenField = 'bos_token' | 'eos_token' | 'unk_token' | 'pad_token';
const TOKEN_DEFAULTS: Readonly<Record<TokenField, string>> = {
  bos_token: '<|startoftext|>',
  eos_token: '<|endoftext|>',
  unk_token: '<|endoftext|>',
  pad_token: '<|endoftext|>',
};

const isToken = (v: unknown): v is string | { content: string } => isString(v) || (isRecord(v) && isString(v['content']));

function token(readers: ConfigReader[], field: TokenField): string {
  // Later readers win (special_tokens_map.json over tokenizer_config.json).
  let value: string = TOKEN_DEFAULTS[field];
  for (const r of readers) {
    if (!r.has(field)) continue;
    const t = r.get(field, isToken, "a token string or an object with a string 'content'", value);
    value = typeof t === 'string' ? t : t.content;
  }
  return value;
}

/**
 * Parse tokenizer_config.json (`json` at `path`) and, when given, special_tokens_map.json.
 * The vocab/merges paths are derived from `path`; loadTokenizerConfig checks that they exist.
 */
export function parseTokenizerConfig(json: unknown, path: string, specialTokensMap?: { json: unknown; path: string }): TokenizerConfig {
  const r = ConfigReader.from(json, path);
  const readers = [r];
  if (specialTokensMap !== undefined) readers.push(ConfigReader.from(specialTokensMap.json, specialTokensMap.path));
  const dir = dirname(path);
  const config: TokenizerConfig = {
    className: r.nullable('tokenizer_class', isString, 'a string', null),
    modelMaxLength: r.get('model_max_length', isPositiveInt, 'a positive integer', 77),
    doLowerCase: r.get('do_lower_case', isBoolean, 'a boolean', true),
    bosToken: token(readers, 'bos_token'),
    eosToken: token(readers, 'eos_token'),
    unkToken: token(readers, 'unk_token'),
    padToken: token(readers, 'pad_token'),
    vocabPath: join(dir, 'vocab.json'),
    mergesPath: join(dir, 'merges.txt'),
  };
  return deepFreeze(config);
}

/** Read tokenizer_config.json (+ special_tokens_map.json when present) of a tokenizer folder. */
export function loadTokenizerConfig(tokenizerDir: string): TokenizerConfig {
  const path = join(tokenizerDir, 'tokenizer_config.json');
  const mapPath = join(tokenizerDir, 'special_tokens_map.json');
  const special = existsSync(mapPath) ? { json: loadJsonConfig(mapPath), path: mapPath } : undefined;
  const config = parseTokenizerConfig(loadJsonConfig(path), path, special);
  for (const file of [config.vocabPath, config.mergesPath]) {
    if (!existsSync(file)) {
      throw new FileError(`${file}: tokenizer file not found`, { hint: 'a CLIP tokenizer folder needs vocab.json and merges.txt' });
    }
  }
  return config;
}
