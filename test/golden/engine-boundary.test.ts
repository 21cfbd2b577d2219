import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { repoRoot } from '../helpers/paths.js';

/** src/golden reaches the model / UNet / method API only through src/golden/engine.ts and its SAM sibling sam-engine.ts (the files to port). */
test('only src/golden/engine.ts and sam-engine.ts import runtime/, diffusion/, models/, methods/ or pipeline/', () => {
  const dir = join(repoRoot, 'src', 'golden');
  const files = readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.ts'))
    .map((f) => join(dir, f));
  assert.ok(files.some((f) => f.endsWith('engine.ts')));
  const offenders = files
    .filter((f) => !f.endsWith(join('golden', 'engine.ts')) && !f.endsWith(join('golden', 'sam-engine.ts')))
    .flatMap((f) => {
      const specs = [...readFileSync(f, 'utf8').matchAll(/^\s*(?:import|export)\s[^'"]*?from\s+['"]([^'"]+)['"]/gm)].map((m) => m[1]!);
      return specs.filter((s) => /(^|\/)(runtime|diffusion|models|methods|pipeline)\//.test(s)).map((s) => `${relative(repoRoot, f)} imports ${s}`);
    });
  assert.deepEqual(offenders, []);
});
