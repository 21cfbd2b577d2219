/** The page's calls to the server's JSON API (docs/api.md). Every error is the server's `{ error: { message } }`. */

export interface ApiErrorBody {
  status: number;
  code: string;
  message: string;
  parameter?: string | null;
  flag?: string | null;
}

export class ApiError extends Error {
  constructor(readonly body: ApiErrorBody) {
    super(body.message);
  }
}

export interface FormField {
  key: string;
  flag: string;
  type: 'string' | 'boolean';
  valueName: string | null;
  description: string;
  default: string;
  choices: string[] | null;
  required: boolean;
}

export interface ServerInfo {
  version: string;
  model: { id?: string; path?: string; [k: string]: unknown };
  sam: boolean;
  outDir: string;
  sizeMultiple: number;
  limits: { maxBytes: number; maxSide: number };
  fields: FormField[];
}

export interface JobSummary {
  id: string;
  status: 'queued' | 'running' | 'done' | 'failed' | 'cancelled';
  position: number | null;
  createdAt: string;
  domain: string;
  elapsedSeconds: number | null;
  files: string[];
}

export interface RunSummary {
  id: string;
  createdAt: string | null;
  domain: string | null;
  files: string[];
  hasMatches: boolean;
}

export interface Matches {
  site: string;
  iteration: number;
  width: number;
  height: number;
  indices: number[];
}

async function call<T>(method: 'GET' | 'POST', path: string, body?: unknown): Promise<T> {
  const init: RequestInit = { method, headers: { Accept: 'application/json' } };
  if (body !== undefined) {
    init.headers = { Accept: 'application/json', 'Content-Type': 'application/json' };
    init.body = JSON.stringify(body);
  }
  const res = await fetch(path, init);
  const text = await res.text();
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new ApiError({ status: res.status, code: 'E_HTTP', message: `${method} ${path}: HTTP ${res.status} (${text.slice(0, 200)})` });
  }
  if (!res.ok) throw new ApiError((parsed as { error: ApiErrorBody }).error);
  return parsed as T;
}

export const api = {
  info: () => call<ServerInfo>('GET', '/api/info'),
  checkOptions: (form: Record<string, string | boolean>) => call<{ options: Record<string, unknown> }>('POST', '/api/options', { form }),
  createJob: (body: Record<string, unknown>) => call<{ job: JobSummary; events: string }>('POST', '/api/jobs', body),
  jobs: () => call<{ jobs: JobSummary[] }>('GET', '/api/jobs'),
  cancel: (id: string) => call<{ job: JobSummary }>('POST', `/api/jobs/${encodeURIComponent(id)}/cancel`, {}),
  runs: () => call<{ runs: RunSummary[] }>('GET', '/api/runs'),
  matches: (id: string) => call<Matches>('GET', fileUrl(id, 'matches.json')),
  embed: (image: string) => call<{ width: number; height: number; seconds: number }>('POST', '/api/embed', { image }),
  segment: (body: { image: string; box?: number[]; points?: { x: number; y: number; label: 0 | 1 }[] }) =>
    call<{ mask: string; width: number; height: number; score: number }>('POST', '/api/segment', body),
};

export function fileUrl(runId: string, name: string): string {
  return `/api/runs/${encodeURIComponent(runId)}/files/${encodeURIComponent(name)}`;
}

/** A File as a data URL (what the API takes for images). */
export function readAsDataUrl(file: Blob): Promise<string> {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(typeof reader.result === 'string' ? reader.result : '');
    reader.onerror = () => reject(reader.error ?? new Error('cannot read the file'));
    reader.readAsDataURL(file);
  });
}

export function loadImage(src: string): Promise<HTMLImageElement> {
  return new Promise((resolve, reject) => {
    const img = new Image();
    img.onload = () => resolve(img);
    img.onerror = () => reject(new Error('the browser cannot decode this image'));
    img.src = src;
  });
}

/** An element with attributes and children. */
export function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, string> = {},
  ...children: (Node | string)[]
): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  e.append(...children);
  return e;
}
