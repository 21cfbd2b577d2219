/**
 * The CLIP byte-level BPE tokenizer, giving the ids of HF transformers' slow `CLIPTokenizer` as diffusers calls it
 * (`padding="max_length", max_length=77, truncation=True`), in the configuration without `ftfy` installed.
 *
 * Pipeline for one prompt (each step mirrors a step of the reference, named after it):
 *   1. special-token split: occurrences of the special tokens (bos, eos, pad, unk) are cut out of the raw text and
 *      kept whole, as HF's added-token trie does. SD-2's pad token is `!`, so there every `!` becomes id 0.
 *   2. BasicTokenizer(strip_accents=False, do_split_on_punc=False) on each remaining chunk: drop NUL, U+FFFD and
 *      control chars (category C except \t \n \r), map whitespace (\t \n \r, Zs) to ' ', pad CJK ideographs with
 *      spaces, NFC, split on whitespace, lower-case each word (no accent stripping), join with single spaces.
 *   3. pre-tokenize with the CLIP regex; map each piece's UTF-8 bytes through bytes_to_unicode.
 *   4. BPE with `</w>` on the last symbol, lowest merge rank first; unknown tokens map to the unk id.
 */
import { readFileSync } from 'node:fs';
import { ConfigError, FileError, invalidParameterError } from '../../errors.js';

export interface ClipSpecialTokens {
  bosToken: string;
  eosToken: string;
  padToken: string;
  unkToken: string;
  /** Sequence length of the text encoder (77). */
  modelMaxLength: number;
}

export interface ClipTokenizerOptions extends ClipSpecialTokens {
  /** vocab.json: token -> id. */
  vocab: Record<string, number>;
  /** Lines of merges.txt after the `#version` header, each `first second`. */
  merges: string[];
  /** Lower-case words before BPE. Default true (the reference always does). */
  doLowerCase?: boolean;
}

/** A batch of encoded prompts as the text encoder's int64 `input_ids` [n, modelMaxLength]. */
export interface ClipEncodedBatch {
  ids: BigInt64Array;
  dims: [number, number];
}

/** HF keeps only merges.txt lines 1 .. 49152-256-2 (the BPE vocab size minus bytes and the two specials). */
export const CLIP_MAX_MERGES = 49152 - 256 - 2;

const END_OF_WORD = '</w>';
const BPE_CACHE_LIMIT = 50_000;

/** The CLIP pre-tokenizer (case-insensitive, as in the reference). */
const CLIP_PATTERN = /<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|\p{L}+|\p{N}|[^\s\p{L}\p{N}]+/giu;
/** BERT `_is_control`: category C*, except \t \n \r which count as whitespace. */
const CONTROL = /^\p{C}$/u;
/** BERT `_is_whitespace`: \t \n \r, space, or category Zs. */
const BASIC_WHITESPACE = /^[\t\n\r\p{Zs}]$/u;
/** Python `str.split()` separators that can survive the cleaning step (Zs became ' '; Cc chars were dropped). */
const SPLIT_WHITESPACE = /[\s\u2028\u2029]+/u;

/** GPT-2 / CLIP bytes_to_unicode: printable bytes map to themselves, the other 68 to U+0100 onwards. */
function buildByteEncoder(): string[] {
  const table = new Array<string>(256);
  const printable = (b: number): boolean => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  let next = 256;
  for (let b = 0; b < 256; b++) table[b] = String.fromCodePoint(printable(b) ? b : next++);
  return table;
}

const BYTE_ENCODER = buildByteEncoder();

/** BERT `_is_chinese_char`: the CJK Unified Ideographs blocks (not Hangul, Hiragana or Katakana). */
function isCjkIdeograph(cp: number): boolean {
  return (
    (cp >= 0x4e00 && cp <= 0x9fff) ||
    (cp >= 0x3400 && cp <= 0x4dbf) ||
    (cp >= 0x20000 && cp <= 0x2a6df) ||
    (cp >= 0x2a700 && cp <= 0x2b73f) ||
    (cp >= 0x2b740 && cp <= 0x2b81f) ||
    (cp >= 0x2b820 && cp <= 0x2ceaf) ||
    (cp >= 0xf900 && cp <= 0xfaff) ||
    (cp >= 0x2f800 && cp <= 0x2fa1f)
  );
}

/** Step 2: the BasicTokenizer text clean-up; returns the words joined by single spaces. */
export function basicClean(text: string, lowerCase = true): string {
  let cleaned = '';
  for (const char of text) {
    const cp = char.codePointAt(0) ?? 0;
    if (cp === 0 || cp === 0xfffd) continue;
    if (BASIC_WHITESPACE.test(char)) cleaned += ' ';
    else if (CONTROL.test(char)) continue;
    else if (isCjkIdeograph(cp)) cleaned += ` ${char} `;
    else cleaned += char;
  }
  const words = cleaned
    .normalize('NFC')
    .split(SPLIT_WHITESPACE)
    .filter((w) => w.length > 0);
  return (lowerCase ? words.map((w) => w.toLowerCase()) : words).join(' ');
}

function readText(path: string, what: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (cause) {
    throw new FileError(`Cannot read CLIP tokenizer ${what} file ${path}`, {
      cause,
      hint: 'point to the tokenizer/ folder of a diffusers model (vocab.json and merges.txt)',
    });
  }
}

function parseVocabJson(path: string): Record<string, number> {
  let json: unknown;
  try {
    json = JSON.parse(readText(path, 'vocab'));
  } catch (cause) {
    if (cause instanceof FileError) throw cause;
    throw new ConfigError(`CLIP tokenizer vocab file ${path} is not valid JSON`, { cause });
  }
  if (json === null || typeof json !== 'object' || Array.isArray(json)) {
    throw new ConfigError(`CLIP tokenizer vocab file ${path} must hold a JSON object of token -> id`);
  }
  return json as Record<string, number>;
}

function parseMergesTxt(path: string): string[] {
  const lines = readText(path, 'merges').trim().split(/\r?\n/);
  if (!(lines[0] ?? '').startsWith('#version')) {
    throw new ConfigError(`CLIP tokenizer merges file ${path} does not start with a '#version' header line`);
  }
  return lines.slice(1);
}

export class ClipTokenizer {
  readonly modelMaxLength: number;
  readonly bosTokenId: number;
  readonly eosTokenId: number;
  readonly padTokenId: number;
  readonly unkTokenId: number;
  readonly doLowerCase: boolean;

  private readonly vocab: Map<string, number>;
  /** `first + ' ' + second` -> rank (symbols never hold a space: byte 0x20 maps to 'Ġ'). */
  private readonly bpeRanks: Map<string, number>;
  /** Special tokens, longest first, cut out of the text before anything else. */
  private readonly specialTokens: string[];
  private readonly bpeCache = new Map<string, readonly string[]>();

  constructor(options: ClipTokenizerOptions) {
    const { modelMaxLength } = options;
    if (!Number.isInteger(modelMaxLength) || modelMaxLength < 2) {
      throw invalidParameterError('modelMaxLength', 'integer of at least 2', modelMaxLength);
    }
    this.modelMaxLength = modelMaxLength;
    this.doLowerCase = options.doLowerCase ?? true;

    this.vocab = new Map();
    for (const [token, id] of Object.entries(options.vocab)) {
      if (!Number.isInteger(id) || id < 0) {
        throw new ConfigError(`CLIP vocab entry '${token}' has id ${String(id)}, expected a non-negative integer`);
      }
      this.vocab.set(token, id);
    }

    this.bpeRanks = new Map();
    const merges = options.merges.slice(0, CLIP_MAX_MERGES);
    for (let i = 0; i < merges.length; i++) {
      const line = (merges[i] ?? '').trim();
      if (line.length === 0) continue;
      const parts = line.split(/\s+/);
      if (parts.length !== 2) {
        throw new ConfigError(`CLIP merges line ${i + 1} ('${line}') must hold exactly two symbols`);
      }
      this.bpeRanks.set(`${parts[0]} ${parts[1]}`, i); // a repeated pair keeps its last rank, as HF's dict(zip(...))
    }

    this.bosTokenId = this.specialId('bosToken', options.bosToken);
    this.eosTokenId = this.specialId('eosToken', options.eosToken);
    this.padTokenId = this.specialId('padToken', options.padToken);
    this.unkTokenId = this.specialId('unkToken', options.unkToken);
    const specials = new Set([options.bosToken, options.eosToken, options.padToken, options.unkToken]);
    this.specialTokens = [...specials].sort((a, b) => b.length - a.length);
  }

  /** Reads `vocab.json` and `merges.txt` (the tokenizer/ folder of a diffusers model). */
  static fromFiles(vocabJsonPath: string, mergesTxtPath: string, special: ClipSpecialTokens): ClipTokenizer {
    const vocab = parseVocabJson(vocabJsonPath);
    const merges = parseMergesTxt(mergesTxtPath);
    try {
      return new ClipTokenizer({ ...special, vocab, merges });
    } catch (cause) {
      if (cause instanceof ConfigError) {
        throw new ConfigError(`Invalid CLIP tokenizer files ${vocabJsonPath} / ${mergesTxtPath}: ${cause.message}`, {
          cause,
        });
      }
      throw cause;
    }
  }

  get vocabSize(): number {
    return this.vocab.size;
  }

  /** BPE tokens of `text`, without bos/eos; special tokens found in the text are kept whole. */
  tokenize(text: string): string[] {
    const out: string[] = [];
    let rest = text;
    for (;;) {
      const hit = this.findSpecial(rest);
      if (hit === undefined) break;
      this.tokenizeChunk(rest.slice(0, hit.index), out);
      out.push(hit.token);
      rest = rest.slice(hit.index + hit.token.length);
    }
    this.tokenizeChunk(rest, out);
    return out;
  }

  /** `[bos, ...first modelMaxLength-2 token ids, eos, pad, pad, ...]`, exactly modelMaxLength long. */
  encode(text: string): number[] {
    const ids = [this.bosTokenId];
    const tokens = this.tokenize(text);
    const kept = Math.min(tokens.length, this.modelMaxLength - 2);
    for (let i = 0; i < kept; i++) ids.push(this.tokenToId(tokens[i] ?? ''));
    ids.push(this.eosTokenId);
    while (ids.length < this.modelMaxLength) ids.push(this.padTokenId);
    return ids;
  }

  /** Encodes each prompt; the result is the int64 `input_ids` tensor [n, modelMaxLength] of the text encoder. */
  encodeBatch(texts: string[]): ClipEncodedBatch {
    const length = this.modelMaxLength;
    const ids = new BigInt64Array(texts.length * length);
    texts.forEach((text, row) => {
      const rowIds = this.encode(text);
      for (let j = 0; j < length; j++) ids[row * length + j] = BigInt(rowIds[j] ?? this.padTokenId);
    });
    return { ids, dims: [texts.length, length] };
  }

  /** Vocabulary id of a token, or the unk id (as HF's `_convert_token_to_id`). */
  tokenToId(token: string): number {
    return this.vocab.get(token) ?? this.unkTokenId;
  }

  private specialId(name: string, token: string): number {
    if (typeof token !== 'string' || token.length === 0) throw invalidParameterError(name, 'non-empty string', token);
    const id = this.vocab.get(token);
    if (id === undefined) {
      throw new ConfigError(`CLIP special token ${name} '${token}' is not in the vocabulary`, {
        hint: 'check special_tokens_map.json / tokenizer_config.json against vocab.json',
      });
    }
    return id;
  }

  /** Earliest special token in `text`; at one position the longest wins (HF's trie split). */
  private findSpecial(text: string): { index: number; token: string } | undefined {
    let best: { index: number; token: string } | undefined;
    for (const token of this.specialTokens) {
      const index = text.indexOf(token);
      if (index >= 0 && (best === undefined || index < best.index)) best = { index, token };
    }
    return best;
  }

  /** Steps 2-4 on a chunk that holds no special token; appends the BPE tokens to `out`. */
  private tokenizeChunk(chunk: string, out: string[]): void {
    if (chunk.length === 0) return;
    const text = basicClean(chunk, this.doLowerCase);
    for (const match of text.matchAll(CLIP_PATTERN)) {
      const piece = match[0];
      if (piece === '<|startoftext|>' || piece === '<|endoftext|>') {
        out.push(piece); // the reference's bpe cache maps these to themselves
        continue;
      }
      for (const symbol of this.bpe(piece)) out.push(symbol);
    }
  }

  /** Byte-encodes one pre-token and applies the merges; cached per pre-token. */
  private bpe(piece: string): readonly string[] {
    const cached = this.bpeCache.get(piece);
    if (cached !== undefined) return cached;

    let word: string[] = [];
    for (const byte of Buffer.from(piece, 'utf8')) word.push(BYTE_ENCODER[byte] ?? '');
    word[word.length - 1] += END_OF_WORD;

    while (word.length > 1) {
      let bestRank = Infinity;
      let first = '';
      let second = '';
      for (let i = 0; i + 1 < word.length; i++) {
        const rank = this.bpeRanks.get(`${word[i]} ${word[i + 1]}`);
        if (rank !== undefined && rank < bestRank) {
          bestRank = rank;
          first = word[i] ?? '';
          second = word[i + 1] ?? '';
        }
      }
      if (bestRank === Infinity) break;
      // Merge every non-overlapping (first, second), scanning left to right.
      const merged: string[] = [];
      for (let i = 0; i < word.length; i++) {
        if (word[i] === first && word[i + 1] === second && i + 1 < word.length) {
          merged.push(first + second);
          i++;
        } else {
          merged.push(word[i] ?? '');
        }
      }
      word = merged;
    }

    if (this.bpeCache.size >= BPE_CACHE_LIMIT) this.bpeCache.clear();
    this.bpeCache.set(piece, word);
    return word;
  }
}
