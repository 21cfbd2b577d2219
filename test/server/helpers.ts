/** Shared by the server tests: a server on the tiny model in temporary folders, requests, and an SSE reader. */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, type RunningServer, type ServeOptions } from '../../src/server/server.js';
import { repoRoot, sd1TinyModelDir } from '../helpers/paths.js';

export const EXAMPLES = join(repoRoot, 'examples');
export const b64 = (name: string): string => readFileSync(join(EXAMPLES, name)).toString('base64');
/** The tiny model's fast settings (a transfer takes a few seconds). */
export const FAST = { domain: 'bird', size: 128, numSteps: 6, skip: 2, featRange: [1, 5], adainRange: [2, 6] };

export interface TestServer extends RunningServer {
  outDir: string;
  cleanup: () => Promise<void>;
}

export async function testServer(extra: Partial<ServeOptions> = {}): Promise<TestServer> {
  const root = mkdtempSync(join(tmpdir(), 'e4e-serve-'));
  const outDir = join(root, 'out');
  const server = await startServer({ model: sd1TinyModelDir, outDir, cacheDir: join(root, 'cache'), port: 0, threads: 2, ...extra });
  return {
    ...server,
    outDir,
    cleanup: async () => {
      await server.close();
      rmSync(root, { recursive: true, force: true });
    },
  };
}

export interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- parsed JSON; the assertions are the type check
  json: any;
}

/** A raw HTTP request (so that Host, Origin and Sec-Fetch-Site can be set freely). */
export function call(server: RunningServer, method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Reply> {
  const data = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
  const h: Record<string, string> = { Host: `127.0.0.1:${server.port}`, ...headers };
  if (data !== undefined && h['Content-Type'] === undefined) h['Content-Type'] = 'application/json';
  if (data !== undefined) h['Content-Length'] = String(Buffer.byteLength(data));
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: server.port, method, path, headers: h }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json: unknown;
        try {
          json = JSON.parse(text);
        } catch {
          json = undefined;
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
      });
    });
    req.on('error', reject);
    if (data !== undefined) req.write(data);
    req.end();
  });
}

export interface SseEvent {
  event: string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- parsed JSON; the assertions are the type check
  data: any;
}

/** Follow a job's event stream until it ends; `onEvent` may act on events as they come (e.g. cancel). */
export async function readEvents(server: RunningServer, id: string, onEvent: (e: SseEvent) => void = () => {}): Promise<SseEvent[]> {
  const res = await fetch(`http://127.0.0.1:${server.port}/api/jobs/${id}/events`);
  if (res.headers.get('content-type')?.startsWith('text/event-stream') !== true) throw new Error(`not an event stream: ${res.status}`);
  const events: SseEvent[] = [];
  let buffer = '';
  const decoder = new TextDecoder();
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    buffer += decoder.decode(chunk, { stream: true });
    let end: number;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const event = /^event: (.*)$/m.exec(block)?.[1];
      const data = /^data: (.*)$/m.exec(block)?.[1];
      if (event === undefined || data === undefined) continue;
      const e = { event, data: JSON.parse(data) };
      events.push(e);
      onEvent(e);
    }
  }
  return events;
}
