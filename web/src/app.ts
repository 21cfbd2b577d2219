/**
 * The eye4eye page: two image panels with masks, the transfer options rendered from the library's option table,
 * Run / Cancel with live progress over Server-Sent Events, the result with its grid, masks, correspondence view and
 * downloads, the queue and the past runs of the output folder. All through the JSON API (docs/api.md).
 */
import { api, ApiError, el, fileUrl, loadImage, type FormField, type JobSummary, type ServerInfo } from './api.js';
import { CorrespondenceView } from './correspondence.js';
import { ImagePanel } from './image-panel.js';

const $ = <T extends HTMLElement>(id: string): T => {
  const e = document.getElementById(id);
  if (e === null) throw new Error(`page element #${id} missing`);
  return e as T;
};

/** The pipeline's phases in order (ProgressEvent.phase). */
const PHASES = ['inversion-app', 'inversion-struct', 'transfer', 'decode'];

let info: ServerInfo;
let panels: ImagePanel[] = [];
let lastPanel: ImagePanel | undefined;
let current: { id: string; source: EventSource } | undefined;
let view: CorrespondenceView;

function formatSeconds(s: unknown): string {
  if (typeof s !== 'number' || !Number.isFinite(s)) return '–:––';
  const r = Math.round(s);
  return `${Math.floor(r / 60)}:${String(r % 60).padStart(2, '0')}`;
}

function message(text: string, error = false): void {
  const m = $('run-message');
  m.textContent = text;
  m.classList.toggle('error', error);
}

function renderForm(fields: FormField[]): void {
  const form = $<HTMLFormElement>('options-form');
  for (const f of fields) {
    const id = `opt-${f.flag}`;
    let input: HTMLInputElement | HTMLSelectElement;
    if (f.choices !== null) {
      input = el('select', { id, name: f.flag });
      for (const c of f.choices) input.append(el('option', { value: c }, c));
      input.value = f.default;
    } else if (f.type === 'boolean') {
      input = el('input', { id, name: f.flag, type: 'checkbox' });
    } else {
      input = el('input', { id, name: f.flag, type: 'text', placeholder: f.default || (f.valueName ?? ''), autocomplete: 'off' });
      if (f.required) input.required = true;
    }
    const wide = f.key === 'prompt' || f.key === 'hookSites';
    form.append(
      el(
        'div',
        { class: `field${f.type === 'boolean' ? ' check' : ''}${wide ? ' wide' : ''}`, 'data-flag': f.flag },
        el('label', { for: id, title: f.description }, f.flag, f.required ? el('span', { class: 'req' }, ' *') : ''),
        input,
        el('small', { class: 'muted' }, f.description),
        el('small', { class: 'field-error', 'data-error-for': f.flag }),
      ),
    );
    input.addEventListener('input', () => scheduleCheck());
  }
}

function formValues(): Record<string, string | boolean> {
  const values: Record<string, string | boolean> = {};
  for (const f of info.fields) {
    const input = document.getElementById(`opt-${f.flag}`) as HTMLInputElement | HTMLSelectElement;
    values[f.flag] = input instanceof HTMLInputElement && input.type === 'checkbox' ? input.checked : input.value;
  }
  return values;
}

function showFieldError(flag: string | null | undefined, text: string): void {
  for (const e of document.querySelectorAll<HTMLElement>('[data-error-for]')) e.textContent = '';
  for (const e of document.querySelectorAll('.field.invalid')) e.classList.remove('invalid');
  if (flag === null || flag === undefined) return;
  const target = document.querySelector<HTMLElement>(`[data-error-for="${flag}"]`);
  if (target !== null) target.textContent = text;
  document.querySelector(`.field[data-flag="${flag}"]`)?.classList.add('invalid');
}

let checkTimer: number | undefined;
function scheduleCheck(): void {
  window.clearTimeout(checkTimer);
  checkTimer = window.setTimeout(() => void checkOptions(), 300);
}

/** The options as the library validates them, or undefined (the message is shown by its field). */
async function checkOptions(): Promise<Record<string, unknown> | undefined> {
  try {
    const { options } = await api.checkOptions(formValues());
    showFieldError(null, '');
    return options;
  } catch (e) {
    if (!(e instanceof ApiError)) throw e;
    showFieldError(e.body.flag ?? null, e.body.message);
    if (e.body.flag === null || e.body.flag === undefined) message(e.body.message, true);
    return undefined;
  }
}

async function run(): Promise<void> {
  const [structure, appearance] = panels;
  if (structure?.dataUrl === undefined || appearance?.dataUrl === undefined) {
    message('choose both images first', true);
    return;
  }
  for (const p of panels) {
    if (p.mode !== 'auto' && p.maskUrl === undefined) {
      message(`the ${p.role} mask is not made yet (or choose Automatic)`, true);
      return;
    }
  }
  const options = await checkOptions();
  if (options === undefined) {
    message('fix the marked option first', true);
    return;
  }
  const body: Record<string, unknown> = { structure: structure.dataUrl, appearance: appearance.dataUrl, options };
  if (structure.maskUrl !== undefined) body['structureMask'] = structure.maskUrl;
  if (appearance.maskUrl !== undefined) body['appearanceMask'] = appearance.maskUrl;
  try {
    const { job } = await api.createJob(body);
    follow(job);
  } catch (e) {
    if (!(e instanceof ApiError)) throw e;
    showFieldError(e.body.flag ?? null, e.body.message);
    message(e.body.message, true);
  }
}

function follow(job: JobSummary): void {
  current?.source.close();
  const source = new EventSource(`/api/jobs/${encodeURIComponent(job.id)}/events`);
  current = { id: job.id, source };
  $('progress').hidden = false;
  $<HTMLButtonElement>('cancel').disabled = false;
  $('phase').textContent = 'queued';
  $('bar-fill').style.width = '0%';
  $('progress-numbers').textContent = '';
  $<HTMLImageElement>('preview').removeAttribute('src');
  message(`job ${job.id} queued`);
  const data = (e: Event): Record<string, unknown> => JSON.parse((e as MessageEvent<string>).data) as Record<string, unknown>;
  source.addEventListener('queued', (e) => {
    const pos = Number(data(e)['position']);
    $('phase').textContent = pos > 0 ? `waiting: ${pos} job${pos === 1 ? '' : 's'} ahead` : 'starting';
  });
  source.addEventListener('started', () => ($('phase').textContent = 'starting'));
  source.addEventListener('status', (e) => ($('phase').textContent = String(data(e)['message'])));
  source.addEventListener('progress', (e) => {
    const d = data(e);
    const step = Number(d['step']);
    const total = Number(d['total']);
    const index = PHASES.indexOf(String(d['phase'])) + 1;
    $('phase').textContent = `${String(d['phase'])} (phase ${index} of ${PHASES.length})${d['cached'] === true ? ', from the inversion cache' : ''}`;
    $('bar-fill').style.width = `${(100 * step) / Math.max(total, 1)}%`;
    $('progress-numbers').textContent =
      `step ${step} of ${total} · elapsed ${formatSeconds(d['elapsedSeconds'])} · ETA ${formatSeconds(d['etaSeconds'])} (this phase)`;
  });
  source.addEventListener('preview', (e) => {
    $<HTMLImageElement>('preview').src = String(data(e)['image']);
  });
  const finish = (text: string, error: boolean): void => {
    source.close();
    if (current?.id === job.id) current = undefined;
    $<HTMLButtonElement>('cancel').disabled = true;
    message(text, error);
    void refreshRuns();
    void refreshQueue();
  };
  source.addEventListener('done', (e) => {
    const d = data(e);
    $('phase').textContent = 'done';
    $('bar-fill').style.width = '100%';
    finish(`done in ${formatSeconds(d['elapsedSeconds'])}`, false);
    void showRun(job.id, d['files'] as string[]);
  });
  source.addEventListener('failed', (e) => {
    const err = data(e)['error'] as { message: string; parameter?: string };
    $('phase').textContent = 'failed';
    finish(`failed: ${err.message}`, true);
  });
  source.onerror = () => {
    // The stream ends after the last event (the source is closed then); an error before means the server is gone.
    if (current?.id === job.id && source.readyState === EventSource.CLOSED) finish('lost the connection to the server', true);
  };
  source.addEventListener('cancelled', () => {
    $('phase').textContent = 'cancelled';
    finish('cancelled', false);
  });
}

async function showRun(id: string, files: string[]): Promise<void> {
  $('result').hidden = false;
  $('result-id').textContent = id;
  $<HTMLImageElement>('result-image').src = fileUrl(id, 'result.png');
  $<HTMLImageElement>('grid-image').src = fileUrl(id, 'grid.png');
  const masks = $('result-masks');
  masks.replaceChildren();
  for (const name of files.filter((f) => f.startsWith('mask-'))) {
    masks.append(
      el('figure', {}, el('img', { src: fileUrl(id, name), alt: name, class: 'mask' }), el('figcaption', {}, name.replace(/^mask-|\.png$/g, '') + ' mask')),
    );
  }
  $('downloads').replaceChildren(...files.map((f) => el('li', {}, el('a', { href: fileUrl(id, f), download: `${id}-${f}` }, f))));
  // Runs of `eye4eye transfer` have no appearance.png / matches.json: the view says so.
  const result = await loadImage(fileUrl(id, 'result.png'));
  const appearance = files.includes('appearance.png') ? await loadImage(fileUrl(id, 'appearance.png')) : undefined;
  const matches = files.includes('matches.json') ? await api.matches(id) : undefined;
  view.set(result, appearance, matches);
  const smooth = !window.matchMedia('(prefers-reduced-motion: reduce)').matches;
  $('result').scrollIntoView({ behavior: smooth ? 'smooth' : 'auto', block: 'start' });
}

async function refreshQueue(): Promise<void> {
  const { jobs } = await api.jobs();
  const active = jobs.filter((j) => j.status === 'queued' || j.status === 'running').sort((a, b) => (a.position ?? 0) - (b.position ?? 0));
  const list = $('queue');
  if (active.length === 0) {
    list.replaceChildren(el('li', { class: 'muted' }, 'empty'));
    return;
  }
  list.replaceChildren(
    ...active.map((j) => {
      const cancel = el('button', { type: 'button', class: 'small-button' }, 'Cancel');
      cancel.addEventListener('click', () => void api.cancel(j.id).catch((e: Error) => message(e.message, true)));
      const where = j.status === 'running' ? 'running' : `#${j.position} waiting`;
      return el('li', {}, el('span', {}, `${j.domain} · ${where}`), el('span', { class: 'muted small' }, j.id), cancel);
    }),
  );
}

async function refreshRuns(): Promise<void> {
  const { runs } = await api.runs();
  const list = $('runs');
  if (runs.length === 0) {
    list.replaceChildren(el('li', { class: 'muted' }, 'none yet'));
    return;
  }
  list.replaceChildren(
    ...runs.slice(0, 30).map((r) => {
      const open = el(
        'button',
        { type: 'button', class: 'link' },
        `${r.domain ?? '?'} · ${r.createdAt === null ? r.id : new Date(r.createdAt).toLocaleString()}`,
      );
      open.addEventListener('click', () => void showRun(r.id, r.files));
      const thumb = r.files.includes('result.png') ? el('img', { src: fileUrl(r.id, 'result.png'), alt: '', class: 'thumb' }) : '';
      return el('li', { class: 'run' }, thumb, open);
    }),
  );
}

async function start(): Promise<void> {
  info = await api.info();
  const model = String(info.model.id ?? info.model.path ?? 'model');
  $('model-info').textContent = `model ${model} · SAM-HQ ${info.sam ? 'on' : 'off (start with --sam-model for box / click masks)'} · output ${info.outDir}`;
  renderForm(info.fields);
  panels = (['structure', 'appearance'] as const).map((role) => {
    const panel = new ImagePanel($(`panel-${role}`), role, () => (lastPanel = panel));
    panel.root.addEventListener('pointerenter', () => (lastPanel = panel));
    return panel;
  });
  document.addEventListener('paste', (e) => {
    const file = [...(e.clipboardData?.files ?? [])].find((f) => f.type.startsWith('image/'));
    if (file === undefined) return;
    const target = lastPanel ?? panels.find((p) => p.dataUrl === undefined) ?? panels[0]!;
    void target.setFile(file);
  });
  view = new CorrespondenceView($<HTMLCanvasElement>('correspondence'), $('correspondence-info'));
  $('run').addEventListener('click', () => void run());
  $('cancel').addEventListener('click', () => {
    if (current !== undefined) void api.cancel(current.id).catch((e: Error) => message(e.message, true));
  });
  await Promise.all([refreshQueue(), refreshRuns()]);
  // A job started before this page was (re)loaded: follow it.
  const active = (await api.jobs()).jobs.filter((j) => j.status === 'running' || j.status === 'queued');
  if (active.length > 0) follow(active[active.length - 1]!);
  window.setInterval(() => void refreshQueue().catch(() => {}), 1500);
}

start().catch((e: Error) => {
  document.body.prepend(el('p', { class: 'fatal' }, `eye4eye: ${e.message}`));
});
