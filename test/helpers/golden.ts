/** Golden cases for tests, loaded once per process from test/fixtures/golden/. */
import { existsSync } from 'node:fs';
import { loadGoldenCase, type GoldenCase } from '../../src/golden/golden-case.js';
import { sd1TinyDir } from './paths.js';

let cached: GoldenCase | undefined;

/** The sd1-tiny golden case (test/fixtures/golden/sd1-tiny). */
export function sd1Tiny(): GoldenCase {
  if (cached === undefined) {
    if (!existsSync(sd1TinyDir)) {
      throw new Error(`golden case missing: ${sd1TinyDir}\n  hint: copy it from the shared goldens: cp -r ../shared/golden/sd1-tiny test/fixtures/golden/`);
    }
    cached = loadGoldenCase(sd1TinyDir);
  }
  return cached;
}
