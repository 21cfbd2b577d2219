// Makes `npx eye4eye ...` work from the repository root after `npm install`: npm links the bins of
// dependencies into node_modules/.bin, but not the bin of the project itself.
import { chmodSync, mkdirSync, rmSync, symlinkSync } from 'node:fs';
import { join, relative } from 'node:path';

const root = process.cwd();
const binDir = join(root, 'node_modules', '.bin');
const target = join(root, 'bin', 'eye4eye.js');
mkdirSync(binDir, { recursive: true });
const link = join(binDir, 'eye4eye');
rmSync(link, { force: true });
symlinkSync(relative(binDir, target), link);
chmodSync(target, 0o755);
