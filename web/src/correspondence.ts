/**
 * The interactive correspondence view: the result (left) and the appearance image as the model saw it (right),
 * both drawn on one canvas. Hovering a point of the result marks its token and the appearance token it took its
 * features from (the run's recorded match indices); hovering the appearance image marks every result token that
 * took this one.
 */
import type { Matches } from './api.js';

const SIDE = 320;

export class CorrespondenceView {
  private result: HTMLImageElement | undefined;
  private appearance: HTMLImageElement | undefined;
  private matches: Matches | undefined;
  private w = SIDE;
  private h = SIDE;

  constructor(
    private readonly canvas: HTMLCanvasElement,
    private readonly info: HTMLElement,
  ) {
    canvas.addEventListener('pointermove', (e) => this.hover(e));
    canvas.addEventListener('pointerleave', () => this.draw());
  }

  set(result: HTMLImageElement, appearance: HTMLImageElement | undefined, matches: Matches | undefined): void {
    this.result = result;
    this.appearance = appearance;
    this.matches = appearance === undefined ? undefined : matches;
    const s = SIDE / Math.max(result.naturalWidth, result.naturalHeight);
    this.w = Math.round(result.naturalWidth * s);
    this.h = Math.round(result.naturalHeight * s);
    this.canvas.width = 2 * this.w + 16;
    this.canvas.height = this.h;
    const m = this.matches;
    this.info.textContent =
      m === undefined
        ? 'this run has no match indices (matches.json and appearance.png are written by eye4eye serve)'
        : `matches of ${m.site} at transfer iteration ${m.iteration} (${m.width}x${m.height} tokens)`;
    this.draw();
  }

  private draw(): void {
    const ctx = this.canvas.getContext('2d');
    if (ctx === null || this.result === undefined) return;
    ctx.clearRect(0, 0, this.canvas.width, this.canvas.height);
    ctx.drawImage(this.result, 0, 0, this.w, this.h);
    if (this.appearance !== undefined) ctx.drawImage(this.appearance, this.w + 16, 0, this.w, this.h);
  }

  /** Token rectangle (in canvas pixels) of token `i`, on the left (result) or right (appearance) image. */
  private cell(i: number, right: boolean): { x: number; y: number; cw: number; ch: number } {
    const m = this.matches!;
    const cw = this.w / m.width;
    const ch = this.h / m.height;
    return { x: (i % m.width) * cw + (right ? this.w + 16 : 0), y: Math.floor(i / m.width) * ch, cw, ch };
  }

  private mark(ctx: CanvasRenderingContext2D, i: number, right: boolean, colour: string): { cx: number; cy: number } {
    const c = this.cell(i, right);
    ctx.strokeStyle = colour;
    ctx.lineWidth = 2;
    ctx.strokeRect(c.x, c.y, c.cw, c.ch);
    return { cx: c.x + c.cw / 2, cy: c.y + c.ch / 2 };
  }

  private hover(e: PointerEvent): void {
    const m = this.matches;
    if (m === undefined) return;
    const r = this.canvas.getBoundingClientRect();
    const x = ((e.clientX - r.left) * this.canvas.width) / r.width;
    const y = ((e.clientY - r.top) * this.canvas.height) / r.height;
    const right = x >= this.w + 16;
    const lx = right ? x - this.w - 16 : x;
    if (lx < 0 || lx >= this.w || y < 0 || y >= this.h) return;
    const token = Math.floor((y / this.h) * m.height) * m.width + Math.floor((lx / this.w) * m.width);
    this.draw();
    const ctx = this.canvas.getContext('2d')!;
    if (!right) {
      const target = m.indices[token] ?? -1;
      const from = this.mark(ctx, token, false, '#ffd400');
      if (target < 0) {
        this.info.textContent = `result token ${token}: kept its own features (no match)`;
        return;
      }
      const to = this.mark(ctx, target, true, '#ffd400');
      this.line(ctx, from, to, '#ffd400');
      this.info.textContent = `result token ${token} took its features from appearance token ${target}`;
    } else {
      const sources: number[] = [];
      m.indices.forEach((v, i) => {
        if (v === token) sources.push(i);
      });
      const to = this.mark(ctx, token, true, '#38bdf8');
      for (const i of sources) this.line(ctx, this.mark(ctx, i, false, '#38bdf8'), to, 'rgba(56, 189, 248, 0.5)');
      this.info.textContent = `appearance token ${token} gave its features to ${sources.length} result token${sources.length === 1 ? '' : 's'}`;
    }
  }

  private line(ctx: CanvasRenderingContext2D, a: { cx: number; cy: number }, b: { cx: number; cy: number }, colour: string): void {
    ctx.beginPath();
    ctx.moveTo(a.cx, a.cy);
    ctx.lineTo(b.cx, b.cy);
    ctx.strokeStyle = colour;
    ctx.lineWidth = 1.5;
    ctx.stroke();
  }
}
