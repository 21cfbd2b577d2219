#!/usr/bin/env node
/**
 * Generate (or find complete) the bench's random SD-1.5 model in DIR, as `npm run bench` does
 * (bench/random-model.ts), so scripts/device-check.sh can do it in the background while other steps run.
 * Needs the built dist/. Prints one JSON line: { dir, generated, seconds, parameters }.
 *
 * Usage: node scripts/device-gen-model.mjs DIR
 */
import { resolve } from 'node:path';
import { ensureRandomModel } from '../dist/bench/random-model.js';
import { CONFIG_DIR, TOKENIZER_DIR, log } from '../dist/bench/common.js';

const dir = process.argv[2];
if (dir === undefined) {
  console.error('usage: node scripts/device-gen-model.mjs DIR');
  process.exit(2);
}
const r = ensureRandomModel(resolve(dir), CONFIG_DIR, TOKENIZER_DIR, log);
console.log(JSON.stringify({ ...r, seconds: Number(r.seconds.toFixed(1)) }));
