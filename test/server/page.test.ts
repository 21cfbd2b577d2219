/**
 * The page in Debian's Chromium (playwright-core, headless) on the tiny models: both images uploaded, the structure
 * mask from a dragged box and a negative click (SAM-HQ, samhq-tiny) shown as an overlay, the appearance mask from a
 * file, an option error with the library's message,
 * a run with progress, the result, and a hover on the correspondence view. Screenshots go to test-artifacts/ and
 * must not be blank.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import sharp from 'sharp';
import { fixturesDir, repoRoot } from '../helpers/paths.js';
import { EXAMPLES, testServer, type TestServer } from './helpers.js';

// The callbacks below run in the page; the test's own program has no DOM types (tsconfig lib: ES2023).
/* eslint-disable @typescript-eslint/no-explicit-any */
declare const document: any;
type HTMLCanvasElement = any;
type HTMLImageElement = any;
declare const DataTransfer: any;
declare const ClipboardEvent: any;
/* eslint-enable @typescript-eslint/no-explicit-any */

const CHROMIUM = '/usr/bin/chromium';
const ARGS = ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'];
const ARTIFACTS = join(repoRoot, 'test-artifacts', 'page');

let server: TestServer;
let browser: Browser;

/** A screenshot saved as an artifact; its pixels must vary (not a blank page). */
async function shot(page: Page, name: string, selector?: string): Promise<number> {
  const path = join(ARTIFACTS, `${name}.png`);
  if (selector === undefined) await page.screenshot({ path, fullPage: true });
  else await page.locator(selector).screenshot({ path });
  const stats = await sharp(path).greyscale().stats();
  const stdev = stats.channels[0]!.stdev;
  assert.ok(stdev > 8, `${name}.png looks blank (grey standard deviation ${stdev.toFixed(2)})`);
  return stdev;
}

before(async () => {
  if (!existsSync(CHROMIUM)) return;
  mkdirSync(ARTIFACTS, { recursive: true });
  server = await testServer({ samModel: join(fixturesDir, 'golden', 'samhq-tiny', 'model') });
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ARGS });
});

after(async () => {
  await browser?.close();
  await server?.cleanup();
});

test(
  'the page: images, masks, options, run, progress, result, correspondence',
  { skip: !existsSync(CHROMIUM) && `${CHROMIUM} not installed (apt-get install chromium)`, timeout: 90_000 },
  async () => {
    // Reduced motion: the page scrolls to the result at once (no smooth scroll under the mouse).
    const page = await browser.newPage({ viewport: { width: 1360, height: 900 }, reducedMotion: 'reduce' });
    const problems: string[] = [];
    page.on('pageerror', (e) => problems.push(e.message));
    await page.goto(server.url);
    await page.locator('#opt-domain').waitFor();
    assert.match((await page.locator('#model-info').textContent()) ?? '', /sd1-tiny/);

    // Both images. The structure mask from SAM-HQ: a dragged box, then a negative shift-click; the overlay changes
    // the canvas.
    await page.setInputFiles('[data-testid=structure-file]', join(EXAMPLES, 'bird-blue.png'));
    // The appearance image pasted (the panel under the mouse takes it).
    await page.hover('#panel-appearance');
    await page.evaluate(
      (b64: string) => {
        const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
        const data = new DataTransfer();
        data.items.add(new File([bytes], 'pasted.png', { type: 'image/png' }));
        document.dispatchEvent(new ClipboardEvent('paste', { clipboardData: data }));
      },
      readFileSync(join(EXAMPLES, 'bird-red.png')).toString('base64'),
    );
    await page.locator('[data-testid=appearance-canvas]').waitFor({ state: 'visible' });
    const pixels = (role: string): Promise<number[]> =>
      page.evaluate((r: string) => {
        const c: HTMLCanvasElement = document.querySelector(`[data-testid=${r}-canvas]`);
        return [...c.getContext('2d').getImageData(0, 0, c.width, c.height).data];
      }, role);
    const changed = (a: number[], b: number[]): number => a.reduce((n, v, i) => n + (Math.abs(v - b[i]!) > 20 ? 1 : 0), 0) / a.length;
    const structureStatus = page.locator('[data-testid=structure-mask-status]');
    const plain = await pixels('structure');
    await page.check('[data-testid=structure-mode-sam]');
    await page.waitForFunction(() => /^embedding ready/.test(document.querySelector('[data-testid=structure-mask-status]')?.textContent ?? ''));
    const box = (await page.locator('[data-testid=structure-canvas]').boundingBox())!;
    await page.mouse.move(box.x + box.width * 0.15, box.y + box.height * 0.2);
    await page.mouse.down();
    await page.mouse.move(box.x + box.width * 0.5, box.y + box.height * 0.5, { steps: 5 });
    await page.mouse.move(box.x + box.width * 0.85, box.y + box.height * 0.8, { steps: 5 });
    await page.mouse.up();
    await page.waitForFunction(() => /^mask in \d+\.\d+ s \(score/.test(document.querySelector('[data-testid=structure-mask-status]')?.textContent ?? ''));
    const seconds = Number(/^mask in (\d+\.\d+) s/.exec((await structureStatus.textContent()) ?? '')?.[1]);
    assert.ok(seconds < 1, `the mask comes within a second once the embedding exists (${seconds} s)`);
    const boxed = await pixels('structure');
    assert.ok(changed(plain, boxed) > 0.2, `the mask overlay and box are drawn (${(100 * changed(plain, boxed)).toFixed(1)} % of the canvas changed)`);
    await structureStatus.evaluate((e: { textContent: string }) => (e.textContent = ''));
    await page.keyboard.down('Shift');
    await page.mouse.click(box.x + box.width * 0.3, box.y + box.height * 0.7);
    await page.keyboard.up('Shift');
    await page.waitForFunction(() => /^mask in/.test(document.querySelector('[data-testid=structure-mask-status]')?.textContent ?? ''));
    await shot(page, 'sam-mask', '[data-testid=structure-canvas]');

    // The appearance mask from a file: the overlay darkens the background and tints the object blue.
    const sample = (): Promise<{ inside: number[]; corner: number[] }> =>
      page.evaluate(() => {
        const c: HTMLCanvasElement = document.querySelector('[data-testid=appearance-canvas]');
        const ctx = c.getContext('2d');
        const px = (x: number, y: number): number[] => [...ctx.getImageData(Math.round(x * c.width), Math.round(y * c.height), 1, 1).data];
        return { inside: px(0.5, 0.55), corner: px(0.02, 0.02) };
      });
    const before = await sample();
    await page.check('[data-testid=appearance-mode-file]');
    await page.setInputFiles('[data-testid=appearance-mask-file]', join(EXAMPLES, 'bird-red-mask.png'));
    await page.waitForFunction(() => document.querySelector('[data-testid=appearance-mask-status]')?.textContent === 'mask from file');
    const masked = await sample();
    const sum = (p: number[]): number => p[0]! + p[1]! + p[2]!;
    assert.ok(sum(masked.corner) < sum(before.corner) - 60, `background darkened: ${before.corner.join(',')} -> ${masked.corner.join(',')}`);
    assert.ok(masked.inside[2]! > before.inside[2]! + 20, `object tinted: ${before.inside.join(',')} -> ${masked.inside.join(',')}`);
    await shot(page, 'inputs', '.inputs');

    // The library's message for a bad option, by its field; then the fast settings of the tiny model.
    await page.fill('#opt-domain', 'bird');
    await page.fill('#opt-steps', 'abc');
    await page.waitForFunction(() => /--steps: expected a number/.test(document.querySelector('[data-error-for=steps]')?.textContent ?? ''));
    for (const [flag, value] of [
      ['steps', '6'],
      ['skip', '2'],
      ['feat-range', '1,5'],
      ['adain-range', '2,6'],
      ['size', '128'],
    ] as const)
      await page.fill(`#opt-${flag}`, value);
    await page.waitForFunction(() => document.querySelector('[data-error-for=steps]')?.textContent === '');

    // Run: progress seen, then the result and the correspondence view.
    await page.click('#run');
    await page.waitForFunction(() => /step \d+ of \d+/.test(document.getElementById('progress-numbers')?.textContent ?? ''), undefined, { timeout: 30_000 });
    const phase = (await page.locator('#phase').textContent()) ?? '';
    assert.match(phase, /^(inversion-app|inversion-struct|transfer|decode|done)/);
    await page.locator('#result').waitFor({ state: 'visible', timeout: 45_000 });
    await page.waitForFunction(() => {
      const img: HTMLImageElement = document.getElementById('result-image');
      return img.complete && img.naturalWidth === 128 && /matches of up_blocks/.test(document.getElementById('correspondence-info')?.textContent ?? '');
    });
    assert.match((await page.locator('#run-message').textContent()) ?? '', /^done in/);
    assert.equal(await page.locator('#result-masks img').count(), 2);
    assert.ok((await page.locator('#downloads a').allTextContents()).includes('run.json'));

    const canvas = (await page.locator('#correspondence').boundingBox())!;
    const side = (canvas.width - 16 * (canvas.width / (await page.locator('#correspondence').evaluate((c: HTMLCanvasElement) => c.width)))) / 2;
    await page.mouse.move(canvas.x + side * 0.5, canvas.y + canvas.height * 0.5);
    const forward = (await page.locator('#correspondence-info').textContent()) ?? '';
    assert.match(forward, /^result token \d+ (took its features from appearance token \d+|kept its own features)/);
    await shot(page, 'correspondence-hover', '#correspondence');
    await page.mouse.move(canvas.x + canvas.width - side * 0.5, canvas.y + canvas.height * 0.5);
    assert.match((await page.locator('#correspondence-info').textContent()) ?? '', /^appearance token \d+ gave its features to \d+ result tokens?/);

    // Past runs list the finished run; the whole page with a hovered token.
    // (A viewport as tall as the page, so that the capture does not resize it and drop the hover.)
    await page.waitForFunction(() => document.querySelectorAll('#runs li.run').length === 1);
    await page.setViewportSize({ width: 1360, height: await page.evaluate(() => document.documentElement.scrollHeight) });
    await page.evaluate(() => document.defaultView.scrollTo(0, 0));
    const still = (await page.locator('#correspondence').boundingBox())!;
    // Hover a matched token near the centre (its line to the appearance image is drawn).
    const id = (await page.locator('#result-id').textContent()) ?? '';
    const matches = await (await page.request.get(`${server.url}api/runs/${id}/files/matches.json`)).json();
    const centre = (matches.height / 2) * matches.width + matches.width / 2;
    const token = matches.indices
      .map((v: number, i: number) => (v >= 0 ? i : -1))
      .filter((i: number) => i >= 0)
      .sort((a: number, b: number) => Math.abs(a - centre) - Math.abs(b - centre))[0];
    await page.mouse.move(
      still.x + (((token % matches.width) + 0.5) / matches.width) * side,
      still.y + ((Math.floor(token / matches.width) + 0.5) / matches.height) * still.height,
    );
    assert.match(
      (await page.locator('#correspondence-info').textContent()) ?? '',
      new RegExp(`^result token ${token} took its features from appearance token \\d+$`),
    );
    await shot(page, 'finished-run');

    // Another run, cancelled from the page once it is under way: no new past run.
    await page.fill('#opt-seed', '5');
    await page.click('#run');
    // (Cancel is enabled while the page follows a job; the step line is the new job's once it is.)
    await page.waitForFunction(
      () => document.getElementById('cancel')?.disabled === false && /^step \d+ of/.test(document.getElementById('progress-numbers')?.textContent ?? ''),
    );
    await page.click('#cancel');
    await page.waitForFunction(() => document.getElementById('run-message')?.textContent === 'cancelled');
    assert.equal((await (await page.request.get(`${server.url}api/runs`)).json()).runs.length, 1);
    assert.deepEqual(problems, []);
  },
);
