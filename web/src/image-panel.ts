/**
 * One input image (structure or appearance) and its mask: drop, paste or pick the image; the mask is automatic
 * (none: the method's unmasked matching), from a dragged box and clicked points (SAM-HQ on the server, shown as an
 * overlay), or from an uploaded mask file (white = object).
 */
import { api, ApiError, el, loadImage, readAsDataUrl } from './api.js';

export type MaskMode = 'auto' | 'sam' | 'file';

const VIEW_W = 420;
const VIEW_H = 320;

export class ImagePanel {
  dataUrl: string | undefined;
  private image: HTMLImageElement | undefined;
  mode: MaskMode = 'auto';
  maskUrl: string | undefined;
  private overlay: HTMLCanvasElement | undefined;
  private box: [number, number, number, number] | undefined;
  private points: { x: number; y: number; label: 0 | 1 }[] = [];
  private drag: { x0: number; y0: number; x1: number; y1: number; moved: boolean } | undefined;
  private pending: AbortController | undefined;
  private readonly canvas: HTMLCanvasElement;
  private readonly drop: HTMLElement;
  private readonly status: HTMLElement;
  private readonly maskFile: HTMLInputElement;
  private readonly samHelp: HTMLElement;
  private scale = 1;

  constructor(
    readonly root: HTMLElement,
    readonly role: 'structure' | 'appearance',
    private readonly onChange: () => void,
  ) {
    const title = role === 'structure' ? 'Structure image' : 'Appearance image';
    const what = role === 'structure' ? 'the layout of the result' : 'the look of the result';
    const picker = el('input', { type: 'file', accept: 'image/png,image/jpeg,image/webp', 'data-testid': `${role}-file`, hidden: '' });
    this.drop = el(
      'div',
      { class: 'drop', tabindex: '0', role: 'button' },
      el('strong', {}, 'Drop, paste or click'),
      el('span', { class: 'muted' }, ` to choose ${what}`),
    );
    this.canvas = el('canvas', { class: 'view', width: '0', height: '0', 'data-testid': `${role}-canvas` });
    this.canvas.hidden = true;
    const modes = el('div', { class: 'modes', role: 'radiogroup' });
    for (const [value, label] of [
      ['auto', 'Automatic'],
      ['sam', 'Box / clicks (SAM-HQ)'],
      ['file', 'Mask file'],
    ] as const) {
      const input = el('input', { type: 'radio', name: `${role}-mask-mode`, value, 'data-testid': `${role}-mode-${value}` });
      if (value === 'auto') input.checked = true;
      input.addEventListener('change', () => this.setMode(value));
      modes.append(el('label', {}, input, ` ${label}`));
    }
    this.maskFile = el('input', { type: 'file', accept: 'image/png,image/jpeg,image/webp', 'data-testid': `${role}-mask-file` });
    this.maskFile.hidden = true;
    this.samHelp = el(
      'p',
      { class: 'muted small' },
      'Drag a box around the object; click to add a point on it, shift-click (or right-click) for a point on the background.',
    );
    this.samHelp.hidden = true;
    const clear = el('button', { type: 'button', class: 'small-button' }, 'Clear mask');
    clear.addEventListener('click', () => this.clearMask());
    this.status = el('p', { class: 'status small', 'data-testid': `${role}-mask-status`, role: 'status' });
    root.append(
      el('h2', {}, title),
      this.drop,
      picker,
      this.canvas,
      el('h3', {}, 'Mask'),
      modes,
      this.samHelp,
      this.maskFile,
      el('div', { class: 'row' }, clear, this.status),
    );

    this.drop.addEventListener('click', () => picker.click());
    this.drop.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' || e.key === ' ') picker.click();
    });
    picker.addEventListener('change', () => {
      const f = picker.files?.[0];
      if (f !== undefined) void this.setFile(f);
    });
    for (const target of [this.drop, this.canvas]) {
      target.addEventListener('dragover', (e) => {
        e.preventDefault();
        this.drop.classList.add('over');
      });
      target.addEventListener('dragleave', () => this.drop.classList.remove('over'));
      target.addEventListener('drop', (e) => {
        e.preventDefault();
        this.drop.classList.remove('over');
        const f = e.dataTransfer?.files[0];
        if (f !== undefined) void this.setFile(f);
      });
    }
    this.maskFile.addEventListener('change', () => {
      const f = this.maskFile.files?.[0];
      if (f !== undefined) void this.setMaskFile(f);
    });
    this.canvas.addEventListener('contextmenu', (e) => e.preventDefault());
    this.canvas.addEventListener('pointerdown', (e) => this.pointerDown(e));
    this.canvas.addEventListener('pointermove', (e) => this.pointerMove(e));
    this.canvas.addEventListener('pointerup', (e) => this.pointerUp(e));
  }

  /** A new image (from the picker, a drop or a paste): the mask starts over. */
  async setFile(file: Blob): Promise<void> {
    if (!/^image\/(png|jpeg|webp)$/.test(file.type)) {
      this.say(`not a PNG, JPEG or WebP image (${file.type || 'unknown type'})`, true);
      return;
    }
    const url = await readAsDataUrl(file);
    try {
      this.image = await loadImage(url);
    } catch (e) {
      this.say((e as Error).message, true);
      return;
    }
    this.dataUrl = url;
    const s = Math.min(VIEW_W / this.image.naturalWidth, VIEW_H / this.image.naturalHeight);
    this.scale = s;
    this.canvas.width = Math.round(this.image.naturalWidth * s);
    this.canvas.height = Math.round(this.image.naturalHeight * s);
    this.canvas.hidden = false;
    this.drop.classList.add('compact');
    this.clearMask();
    if (this.mode === 'sam') void this.embed();
    this.onChange();
  }

  private setMode(mode: MaskMode): void {
    this.mode = mode;
    this.maskFile.hidden = mode !== 'file';
    this.samHelp.hidden = mode !== 'sam';
    this.canvas.classList.toggle('drawing', mode === 'sam');
    this.clearMask();
    if (mode === 'sam') void this.embed();
  }

  /** Ask the server for this image's SAM-HQ embedding now, so that a box or click answers within a second. */
  private async embed(): Promise<void> {
    const url = this.dataUrl;
    if (url === undefined) return;
    this.say('computing the image embedding…');
    try {
      const r = await api.embed(url);
      if (this.dataUrl === url && this.mode === 'sam' && this.maskUrl === undefined)
        this.say(`embedding ready (${r.seconds.toFixed(2)} s): drag a box or click the object`);
    } catch (e) {
      if (this.dataUrl === url && this.mode === 'sam') this.say(e instanceof ApiError ? e.body.message : (e as Error).message, true);
    }
  }

  clearMask(): void {
    this.pending?.abort();
    this.maskUrl = undefined;
    this.overlay = undefined;
    this.box = undefined;
    this.points = [];
    this.say(this.mode === 'auto' ? 'automatic: no mask (the whole image is matched)' : '');
    this.draw();
  }

  private say(text: string, error = false): void {
    this.status.textContent = text;
    this.status.classList.toggle('error', error);
  }

  private async setMaskFile(file: Blob): Promise<void> {
    const url = await readAsDataUrl(file);
    try {
      await this.showMask(url);
      this.say('mask from file');
    } catch (e) {
      this.say(`mask file: ${(e as Error).message}`, true);
    }
  }

  /** The mask as a tinted overlay at the image's size (gray > 127 = object, as the library reads masks). */
  private async showMask(url: string): Promise<void> {
    const mask = await loadImage(url);
    if (this.image === undefined) throw new Error('choose the image first');
    const w = this.image.naturalWidth;
    const h = this.image.naturalHeight;
    const c = document.createElement('canvas');
    c.width = w;
    c.height = h;
    const ctx = c.getContext('2d')!;
    ctx.drawImage(mask, 0, 0, w, h);
    const px = ctx.getImageData(0, 0, w, h);
    let inside = 0;
    for (let i = 0; i < px.data.length; i += 4) {
      const on = (px.data[i]! + px.data[i + 1]! + px.data[i + 2]!) / 3 > 127;
      if (on) inside++;
      px.data.set(on ? [40, 150, 255, 120] : [0, 0, 0, 90], i);
    }
    if (inside === 0) throw new Error('the mask selects no pixel (white = object)');
    ctx.putImageData(px, 0, 0);
    this.overlay = c;
    this.maskUrl = url;
    this.draw();
  }

  private draw(): void {
    const ctx = this.canvas.getContext('2d');
    if (ctx === null || this.image === undefined) return;
    const { width, height } = this.canvas;
    ctx.clearRect(0, 0, width, height);
    ctx.drawImage(this.image, 0, 0, width, height);
    if (this.overlay !== undefined) ctx.drawImage(this.overlay, 0, 0, width, height);
    const s = this.scale;
    const box = this.drag?.moved === true ? [this.drag.x0, this.drag.y0, this.drag.x1, this.drag.y1].map((v) => v / s) : this.box;
    if (box !== undefined) {
      ctx.strokeStyle = '#ffd400';
      ctx.lineWidth = 2;
      ctx.setLineDash([6, 4]);
      ctx.strokeRect(Math.min(box[0]!, box[2]!) * s, Math.min(box[1]!, box[3]!) * s, Math.abs(box[2]! - box[0]!) * s, Math.abs(box[3]! - box[1]!) * s);
      ctx.setLineDash([]);
    }
    for (const p of this.points) {
      ctx.beginPath();
      ctx.arc(p.x * s, p.y * s, 5, 0, 2 * Math.PI);
      ctx.fillStyle = p.label === 1 ? '#22c55e' : '#ef4444';
      ctx.fill();
      ctx.strokeStyle = '#fff';
      ctx.lineWidth = 1.5;
      ctx.stroke();
    }
  }

  private at(e: PointerEvent): { x: number; y: number } {
    const r = this.canvas.getBoundingClientRect();
    return { x: ((e.clientX - r.left) * this.canvas.width) / r.width, y: ((e.clientY - r.top) * this.canvas.height) / r.height };
  }

  private pointerDown(e: PointerEvent): void {
    if (this.mode !== 'sam' || this.image === undefined) return;
    const p = this.at(e);
    this.drag = { x0: p.x, y0: p.y, x1: p.x, y1: p.y, moved: false };
    this.canvas.setPointerCapture(e.pointerId);
  }

  private pointerMove(e: PointerEvent): void {
    if (this.drag === undefined) return;
    const p = this.at(e);
    this.drag.x1 = p.x;
    this.drag.y1 = p.y;
    if (Math.hypot(p.x - this.drag.x0, p.y - this.drag.y0) > 4) this.drag.moved = true;
    if (this.drag.moved) this.draw();
  }

  private pointerUp(e: PointerEvent): void {
    const d = this.drag;
    this.drag = undefined;
    if (d === undefined || this.image === undefined) return;
    const s = this.scale;
    const clamp = (v: number, max: number): number => Math.min(Math.max(v / s, 0), max);
    const [w, h] = [this.image.naturalWidth, this.image.naturalHeight];
    if (d.moved) {
      this.box = [clamp(Math.min(d.x0, d.x1), w), clamp(Math.min(d.y0, d.y1), h), clamp(Math.max(d.x0, d.x1), w), clamp(Math.max(d.y0, d.y1), h)];
    } else {
      this.points.push({ x: clamp(d.x0, w - 1), y: clamp(d.y0, h - 1), label: e.shiftKey || e.button === 2 ? 0 : 1 });
    }
    this.draw();
    void this.segment();
  }

  private async segment(): Promise<void> {
    if (this.dataUrl === undefined) return;
    this.pending?.abort();
    const mine = new AbortController();
    this.pending = mine;
    const start = performance.now();
    this.say('segmenting…');
    try {
      const body: Parameters<typeof api.segment>[0] = { image: this.dataUrl };
      if (this.box !== undefined) body.box = this.box.map((v) => Math.round(v * 100) / 100);
      if (this.points.length > 0) body.points = this.points;
      const r = await api.segment(body);
      if (mine.signal.aborted) return;
      await this.showMask(r.mask);
      this.say(`mask in ${((performance.now() - start) / 1000).toFixed(2)} s (score ${r.score.toFixed(2)})`);
    } catch (e) {
      if (mine.signal.aborted) return;
      this.say(e instanceof ApiError ? e.body.message : (e as Error).message, true);
    }
  }
}
