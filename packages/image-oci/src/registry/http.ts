/**
 * HTTP for the registry client, on undici (Node's own HTTP/1.1 client
 * library: keep-alive pools per origin, per-origin TLS options, and header and
 * body timeouts that catch a registry that stalls). Redirects are followed
 * here, bounded, dropping `Authorization` when they leave the registry's
 * host (blob storage behind a redirect must not see the registry token).
 */
import type { Readable } from 'node:stream';
import type { Agent, Dispatcher } from 'undici';

/**
 * undici is loaded on the first registry request, not at daemon start: a
 * daemon that never pulls or pushes does not pay for it (~5 MB of heap and
 * its parse time at every start).
 */
let undici: typeof import('undici') | undefined;
async function loadUndici(): Promise<typeof import('undici')> {
  undici ??= await import('undici');
  return undici;
}
import { IsulaError } from '@isula/core';
import type { Endpoint } from './endpoints.js';

export const MAX_REDIRECTS = 5;

export interface HttpRequest {
  method: 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  url: string;
  headers?: Record<string, string>;
  body?: Buffer | Readable;
  /** Overrides the stall timeout for the reply's headers. */
  headersTimeoutMs?: number;
}

export interface HttpReply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Readable & { dump?(): Promise<void> };
  /** The URL that answered (after redirects). */
  url: string;
}

export function header(reply: HttpReply, name: string): string | undefined {
  const v = reply.headers[name.toLowerCase()];
  return Array.isArray(v) ? v[0] : v;
}

/**
 * Drops a reply's body without reading it. undici reports a destroyed body as
 * an 'error' a tick later: a listener keeps that from becoming an uncaught
 * exception that would take the daemon down.
 */
export function discard(reply: HttpReply): void {
  reply.body.on('error', () => undefined);
  reply.body.destroy();
}

/** The URL without its query: presigned blob URLs carry signatures that must not reach messages or logs. */
export function redact(url: string): string {
  try {
    const u = new URL(url);
    return `${u.origin}${u.pathname}`;
  } catch {
    return url.split('?')[0] ?? url;
  }
}

/** Reads and discards a reply's body (keeps the connection reusable). */
export async function drain(reply: HttpReply): Promise<void> {
  try {
    if (reply.body.dump !== undefined) await reply.body.dump();
    else reply.body.resume();
  } catch {
    // a body that fails while discarded does not matter
  }
}

/** A registry error reply's message: `{"errors":[{code,message,detail}]}`, or the text. */
export async function errorMessage(reply: HttpReply, limit = 64 * 1024): Promise<{ code?: string; message: string }> {
  let text = '';
  try {
    text = (await readLimited(reply, limit, 'error reply')).toString('utf8');
  } catch {
    // keep what we have
  }
  try {
    const doc = JSON.parse(text) as { errors?: { code?: string; message?: string; detail?: unknown }[]; details?: string; message?: string };
    const first = doc.errors?.[0];
    if (first !== undefined) {
      const code = typeof first.code === 'string' ? first.code : undefined;
      const message = `${code !== undefined ? `${code.toLowerCase().replace(/_/g, ' ')}: ` : ''}${first.message ?? ''}`.trim();
      return { ...(code !== undefined && { code }), message: message || `HTTP ${reply.status}` };
    }
    if (typeof doc.details === 'string') return { message: doc.details };
    if (typeof doc.message === 'string') return { message: doc.message };
  } catch {
    // not JSON
  }
  const line = text.trim().split('\n')[0]?.slice(0, 200) ?? '';
  return { message: line !== '' ? `HTTP ${reply.status}: ${line}` : `HTTP ${reply.status}` };
}

/** The whole body, refusing more than `limit` bytes (Content-Length first, then as it streams). */
export async function readLimited(reply: HttpReply, limit: number, what: string): Promise<Buffer> {
  const declared = Number(header(reply, 'content-length') ?? NaN);
  if (Number.isFinite(declared) && declared > limit) {
    discard(reply);
    throw new IsulaError('REGISTRY_REPLY_INVALID', `the registry's ${what} is ${declared} bytes, over the ${limit}-byte limit`);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of reply.body as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > limit) {
        discard(reply);
        throw new IsulaError('REGISTRY_REPLY_INVALID', `the registry's ${what} is over the ${limit}-byte limit`);
      }
      chunks.push(chunk);
    }
  } catch (err) {
    throw transportError(err, reply.url);
  }
  return Buffer.concat(chunks);
}

/** Maps undici's and the socket's errors to the engine's. */
export function transportError(err: unknown, rawUrl: string, stallMs?: number): IsulaError {
  if (err instanceof IsulaError) return err;
  const url = redact(rawUrl);
  const e = err as Error & { code?: string; cause?: { code?: string; message?: string } };
  // Before undici is loaded no error can be one of its own.
  const undiciErrors = undici?.errors;
  if (e.name === 'AbortError' || e.code === 'ABORT_ERR' || (undiciErrors !== undefined && e instanceof undiciErrors.RequestAbortedError)) {
    return new IsulaError('CANCELED', `request to ${url} canceled`, { cause: err });
  }
  if (undiciErrors !== undefined && (e instanceof undiciErrors.HeadersTimeoutError || e instanceof undiciErrors.BodyTimeoutError || e instanceof undiciErrors.ConnectTimeoutError)) {
    return new IsulaError('REGISTRY_TIMEOUT', `${url}: the registry stalled${stallMs !== undefined ? ` (nothing for ${stallMs / 1000} s)` : ''}: ${e.message}`, { cause: err });
  }
  const code = e.code ?? e.cause?.code;
  const why = e.cause?.message ?? e.message;
  // A TLS failure (wrong protocol, untrusted certificate) will not pass on a retry.
  const tls = code !== undefined && /^(?:ERR_SSL|ERR_TLS|CERT_|UNABLE_TO_|DEPTH_ZERO|SELF_SIGNED|ERR_OSSL)/.test(code);
  return new IsulaError('REGISTRY_UNAVAILABLE', `${url}: ${why}${code !== undefined && !why.includes(code) ? ` (${code})` : ''}`, { cause: err, details: { ...(code !== undefined && { errno: code }), permanent: tls || code === 'ECONNREFUSED' } });
}

/** undici agents, one per TLS configuration, with the stall timeout. */
export class Transport {
  readonly stallMs: number;
  readonly #agents = new Map<string, Agent>();

  constructor(stallMs: number) {
    this.stallMs = stallMs;
  }

  async #agent(ep: Endpoint | undefined): Promise<Dispatcher> {
    const tls = ep?.tls;
    const key = tls === undefined ? 'default' : `${ep?.host ?? ''}|${tls.verify}`;
    let agent = this.#agents.get(key);
    if (agent === undefined) {
      const { Agent } = await loadUndici();
      // Another request may have made it while undici loaded.
      const made = this.#agents.get(key);
      if (made !== undefined) return made;
      agent = new Agent({
        headersTimeout: this.stallMs,
        bodyTimeout: this.stallMs,
        connectTimeout: Math.min(this.stallMs, 30_000),
        keepAliveTimeout: 10_000,
        connections: 16,
        connect: tls === undefined ? {} : {
          rejectUnauthorized: tls.verify,
          ...(tls.ca !== undefined && { ca: tls.ca }),
          ...(tls.cert !== undefined && { cert: tls.cert }),
          ...(tls.key !== undefined && { key: tls.key }),
        },
      });
      this.#agents.set(key, agent);
    }
    return agent;
  }

  /**
   * One request, following up to MAX_REDIRECTS redirects. Throws on transport
   * failures (REGISTRY_UNAVAILABLE, REGISTRY_TIMEOUT, CANCELED); any HTTP
   * status is returned.
   */
  async send(ep: Endpoint, req: HttpRequest, signal: AbortSignal | undefined): Promise<HttpReply> {
    let url = req.url;
    let headers = { ...(req.headers ?? {}) };
    const origin = new URL(ep.base).origin;
    for (let hop = 0; ; hop += 1) {
      const sameOrigin = new URL(url).origin === origin;
      let res: Dispatcher.ResponseData;
      try {
        res = await (await this.#agent(sameOrigin ? ep : undefined)).request({
          origin: new URL(url).origin,
          path: `${new URL(url).pathname}${new URL(url).search}`,
          method: req.method,
          headers,
          ...(req.body !== undefined && hop === 0 && { body: req.body }),
          ...(req.headersTimeoutMs !== undefined && { headersTimeout: req.headersTimeoutMs }),
          ...(signal !== undefined && { signal }),
        });
      } catch (err) {
        throw transportError(err, url, this.stallMs);
      }
      const reply: HttpReply = { status: res.statusCode, headers: res.headers, body: res.body as unknown as HttpReply['body'], url };
      const location = header(reply, 'location');
      if (![301, 302, 303, 307, 308].includes(res.statusCode) || location === undefined || req.body !== undefined) return reply;
      await drain(reply);
      if (hop >= MAX_REDIRECTS) throw new IsulaError('REGISTRY_REPLY_INVALID', `${redact(req.url)}: more than ${MAX_REDIRECTS} redirects`);
      const next = new URL(location, url).toString();
      if (new URL(next).origin !== origin) {
        const { authorization: _dropped, Authorization: _dropped2, ...rest } = headers;
        headers = rest;
      }
      url = next;
    }
  }

  /** Closes the pools; a connection still busy after 2 s (a stuck transfer) is cut. */
  async close(): Promise<void> {
    const agents = [...this.#agents.values()];
    this.#agents.clear();
    await Promise.all(agents.map(async (a) => {
      let timer: NodeJS.Timeout | undefined;
      const grace = new Promise<'late'>((resolve) => { timer = setTimeout(() => resolve('late'), 2000); });
      const closed = await Promise.race([a.close().then(() => 'closed' as const, () => 'closed' as const), grace]);
      clearTimeout(timer);
      if (closed === 'late') await a.destroy().catch(() => undefined);
    }));
  }
}
