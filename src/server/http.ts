/**
 * HTTP plumbing of the server: JSON replies and errors, request bodies with a size limit, and the same-origin
 * checks every /api request passes (Host is the server's own, Origin and Sec-Fetch-Site same-origin when sent,
 * application/json bodies only).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { E4EError, InvalidParameterError } from '../errors.js';

/** An error with an HTTP status and a stable code, answered as `{ error: { status, code, message, ... } }`. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly extra: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

export const SECURITY_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
  'Cross-Origin-Resource-Policy': 'same-origin',
  'X-Frame-Options': 'DENY',
  'Content-Security-Policy': "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'",
});

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    ...SECURITY_HEADERS,
    'Content-Type': 'application/json; charset=utf-8',
    'Cache-Control': 'no-store',
    'Content-Length': Buffer.byteLength(text),
  });
  res.end(text);
}

/** The JSON error body of any thrown value: HttpError as is, parameter errors as 400, other E4EErrors as 422. */
export function errorBody(e: unknown): { status: number; body: { error: Record<string, unknown> } } {
  if (e instanceof HttpError) return { status: e.status, body: { error: { status: e.status, code: e.code, message: e.message, ...e.extra } } };
  if (e instanceof InvalidParameterError) {
    const error: Record<string, unknown> = { status: 400, code: e.code, message: e.message };
    if (e.parameter !== undefined) error['parameter'] = e.parameter;
    return { status: 400, body: { error } };
  }
  if (e instanceof E4EError) return { status: 422, body: { error: { status: 422, code: e.code, message: e.message } } };
  return { status: 500, body: { error: { status: 500, code: 'E_INTERNAL', message: e instanceof Error ? e.message : String(e) } } };
}

export function sendError(res: ServerResponse, e: unknown): void {
  const { status, body } = errorBody(e);
  if (res.headersSent) {
    res.end();
    return;
  }
  // A refused body may still be arriving: close the connection after the answer instead of reading it.
  if (status === 413) res.setHeader('Connection', 'close');
  sendJson(res, status, body);
}

/** The request body (at most `limit` bytes) parsed as a JSON object; the content type must be application/json. */
export async function readJson(req: IncomingMessage, limit: number): Promise<Record<string, unknown>> {
  const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if (type !== 'application/json') throw new HttpError(415, 'E_CONTENT_TYPE', `expected Content-Type application/json but received '${type || '(none)'}'`);
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit)
    throw new HttpError(413, 'E_TOO_LARGE', `request body of ${declared} bytes is larger than the limit of ${limit} bytes`);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) {
      req.resume(); // discard the rest, so that the 413 reaches the client
      throw new HttpError(413, 'E_TOO_LARGE', `request body larger than the limit of ${limit} bytes`);
    }
    chunks.push(chunk);
  }
  let value: unknown;
  try {
    value = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch (cause) {
    throw new HttpError(400, 'E_JSON', `request body is not valid JSON (${(cause as Error).message})`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new HttpError(400, 'E_JSON', 'request body must be a JSON object');
  return value as Record<string, unknown>;
}

/** The Host header must name this server (no DNS rebinding); checked on every request. */
export function checkHost(req: IncomingMessage, allowedHosts: ReadonlySet<string>): void {
  const host = req.headers.host ?? '';
  if (!allowedHosts.has(host.toLowerCase()))
    throw new HttpError(403, 'E_HOST', `Host '${host}' is not this server (expected one of ${[...allowedHosts].join(', ')})`);
}

/**
 * Same-origin only (every /api request): a sent Origin must be this server's origin, and a sent Sec-Fetch-Site must be
 * same-origin (or none: typed into the address bar, or a script). The page itself may be opened from a link.
 */
export function checkSameOrigin(req: IncomingMessage): void {
  const host = req.headers.host ?? '';
  const origin = req.headers.origin;
  if (origin !== undefined && origin !== `http://${host}`) throw new HttpError(403, 'E_ORIGIN', `cross-origin request from '${origin}' refused`);
  const site = req.headers['sec-fetch-site'];
  if (site !== undefined && site !== 'same-origin' && site !== 'none')
    throw new HttpError(403, 'E_ORIGIN', `cross-site request (Sec-Fetch-Site: ${String(site)}) refused`);
}
