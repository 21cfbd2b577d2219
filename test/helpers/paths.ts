/** Paths used by tests. Tests run from the repository root (npm test, node scripts/run-tests.mjs). */
import { join, resolve } from 'node:path';

export const repoRoot = resolve(process.env['E4E_REPO_ROOT'] ?? process.cwd());
export const fixturesDir = join(repoRoot, 'test', 'fixtures');
export const sd1TinyDir = join(fixturesDir, 'golden', 'sd1-tiny');
export const sd1TinyModelDir = join(sd1TinyDir, 'model');
export const samTinyDir = join(fixturesDir, 'golden', 'samhq-tiny');
export const samTinyModelDir = join(samTinyDir, 'model');
