/**
 * A small HTTP/1.1 client for the engine socket over `node:net`.
 * `node:http` is kept off the CLI's start-up path on purpose: its import alone
 * costs 12-35 ms on every `isula` call (see DESIGN.md, "Runtime").
 * One request per connection (`Connection: close`); fixed-length and chunked bodies.
 */
import net from 'node:net';
import { PassThrough, type Readable } from 'node:stream';
import fs from 'node:fs';
import { goPathError } from './cp-archive.js';

/** A file opened before anything is asked of the daemon: a bad path is worded as docker does (`open x: no such file or directory`). */
export async function openUpload(file: string): Promise<NodeJS.ReadableStream> {
  try {
    const handle = await fs.promises.open(file, 'r');
    if ((await handle.stat()).isDirectory()) {
      await handle.close();
      throw Object.assign(new Error('is a directory'), { code: 'EISDIR', syscall: 'read', path: file });
    }
    return handle.createReadStream();
  } catch (err) {
    throw goPathError(err);
  }
}

export const API_PREFIX = '/v1.41';
export const DEFAULT_HOST = 'unix:///run/isulad/isulad.sock';

export class DaemonUnreachableError extends Error {
  override readonly name = 'DaemonUnreachableError';
  constructor(readonly host: string, cause: unknown) {
    // As docker's client: a refused permission is not a daemon that is down.
    super((cause as { code?: unknown } | undefined)?.code === 'EACCES'
      ? `Got permission denied while trying to connect to the iSulad daemon socket at ${host}: use root, or a user in the socket's group (daemon.json "group", default "isula")`
      : `Cannot connect to the iSulad daemon at ${host}. Is the daemon running?`, { cause });
  }
}

/** An error answer from the daemon: `{ message, code }` and the HTTP status. */
export class DaemonError extends Error {
  override readonly name = 'DaemonError';
  constructor(readonly status: number, message: string, readonly code: string | undefined) {
    super(message);
  }
}

export interface Response {
  status: number;
  headers: Map<string, string>;
  body: Buffer;
}

export interface RequestOptions {
  method?: string;
  /** JSON-encoded when not a Buffer. */
  body?: unknown;
  /** A streamed body (chunked transfer encoding), e.g. an image archive. */
  bodyStream?: NodeJS.ReadableStream;
  contentType?: string;
  query?: Record<string, string | undefined>;
  /** Repeated query parameters (`names=a&names=b`). */
  queryList?: Record<string, string[]>;
  /** Called with each body chunk as it arrives (streaming endpoints); `body` then stays empty. */
  onData?: (chunk: Buffer) => void;
  /**
   * Called once the status line and headers have arrived, before the body: a
   * long-polling endpoint (`/containers/{id}/wait`) answers with its headers
   * as soon as it is armed, so the caller can go on (e.g. start the container).
   */
  onHeaders?: (status: number, headers: Map<string, string>) => void;
  /**
   * Body chunks are written here, with backpressure: reading from the daemon
   * pauses while the stream is full (`body` then stays empty). Not ended.
   */
  output?: NodeJS.WritableStream;
  signal?: AbortSignal;
}

/** A response whose headers have arrived: its body streams on (`client.stream`). */
export interface StreamResponse {
  status: number;
  headers: Map<string, string>;
  /** The body; it ends with the response, or errors if the daemon cut it short. */
  body: Readable;
}

export class EngineClient {
  readonly host: string;
  readonly #socketPath: string;

  constructor(host: string = DEFAULT_HOST) {
    if (!host.startsWith('unix://')) throw new Error(`unsupported host ${host}: only unix://PATH is supported`);
    this.host = host;
    this.#socketPath = host.slice('unix://'.length);
  }

  /** Sends a request; throws DaemonUnreachableError, or DaemonError for a 4xx/5xx answer. */
  async request(path: string, options: RequestOptions = {}): Promise<Response> {
    const res = await this.raw(path, options);
    if (res.status >= 400) throw daemonError(res);
    return res;
  }

  /**
   * Resolves once the status line and headers are in, with the body as a
   * stream (export, logs, archives: read at the consumer's pace). A 4xx/5xx
   * answer rejects with DaemonError.
   */
  async stream(path: string, options: Omit<RequestOptions, 'output' | 'onData' | 'onHeaders'> = {}): Promise<StreamResponse> {
    const body = new PassThrough();
    let onHeaders: (status: number, headers: Map<string, string>) => void = () => {};
    const headers = new Promise<{ status: number; headers: Map<string, string> }>((resolve) => { onHeaders = (status, h) => resolve({ status, headers: h }); });
    const done = this.raw(path, { ...options, output: body, onHeaders });
    done.then(() => body.end(), (err: unknown) => body.destroy(err as Error));
    const first = await Promise.race([headers, done]);
    if (first.status >= 400) throw daemonError(await done);
    return { status: first.status, headers: first.headers, body };
  }

  async json<T>(path: string, options: RequestOptions = {}): Promise<T> {
    const res = await this.request(path, options);
    return JSON.parse(res.body.toString('utf8')) as T;
  }

  /** The raw exchange: any status is returned, not thrown. */
  raw(path: string, options: RequestOptions = {}): Promise<Response> {
    const method = options.method ?? 'GET';
    let target = `${API_PREFIX}${path}`;
    const params = Object.entries(options.query ?? {}).filter((e): e is [string, string] => e[1] !== undefined);
    for (const [key, values] of Object.entries(options.queryList ?? {})) for (const v of values) params.push([key, v]);
    if (params.length > 0) target += `?${new URLSearchParams(params).toString()}`;
    const payload = options.body === undefined ? undefined : Buffer.isBuffer(options.body) ? options.body : Buffer.from(JSON.stringify(options.body));
    let head = `${method} ${target} HTTP/1.1\r\nHost: isulad\r\nUser-Agent: isula-cli\r\nConnection: close\r\n`;
    if (payload !== undefined) head += `Content-Type: ${options.contentType ?? 'application/json'}\r\nContent-Length: ${payload.length}\r\n`;
    else if (options.bodyStream !== undefined) head += `Content-Type: ${options.contentType ?? 'application/octet-stream'}\r\nTransfer-Encoding: chunked\r\n`;
    head += '\r\n';

    return new Promise<Response>((resolve, reject) => {
      const socket = net.connect(this.#socketPath);
      const output = options.output;
      let full = false;
      const onData = output === undefined ? options.onData : (chunk: Buffer) => { if (!output.write(chunk)) full = true; };
      const parser = new ResponseParser(onData, options.onHeaders, method === 'HEAD');
      let connected = false;
      const onAbort = () => socket.destroy();
      options.signal?.addEventListener('abort', onAbort, { once: true });
      // Listened to at once: a file that cannot be read fails even when the daemon is down.
      options.bodyStream?.on('error', (err: Error) => {
        socket.destroy();
        reject(goPathError(err));
      });
      socket.on('connect', () => {
        connected = true;
        socket.write(head);
        if (payload !== undefined) socket.write(payload);
        const upload = options.bodyStream;
        if (upload !== undefined) {
          upload.on('data', (chunk: Buffer) => {
            if (chunk.length === 0) return;
            socket.write(`${chunk.length.toString(16)}\r\n`);
            socket.write(chunk);
            if (!socket.write('\r\n')) {
              upload.pause();
              socket.once('drain', () => upload.resume());
            }
          });
          upload.on('end', () => socket.write('0\r\n\r\n'));
        }
      });
      socket.on('data', (chunk: Buffer) => {
        try {
          parser.push(chunk);
          if (parser.done) socket.end();
          if (full && output !== undefined) {
            socket.pause();
            output.once('drain', () => { full = false; socket.resume(); });
          }
        } catch (err) {
          socket.destroy();
          reject(err);
        }
      });
      socket.on('error', (err: NodeJS.ErrnoException) => {
        if (!connected) reject(new DaemonUnreachableError(this.host, err));
        else if (parser.done || options.signal?.aborted) return;
        // The daemon answers a refused upload once it has read a few MiB more of it, then closes:
        // a write after that fails before its answer is read (a large refused archive).
        else if (options.bodyStream !== undefined && (err.code === 'EPIPE' || err.code === 'ECONNRESET')) {
          reject(new Error(`the daemon closed the connection before the upload ended (${err.code}): the daemon stopped reading it, having refused it`, { cause: err }));
        } else reject(err);
      });
      socket.on('close', () => {
        options.signal?.removeEventListener('abort', onAbort);
        if (!connected) return;
        const res = parser.finish();
        if (res === undefined) reject(new Error('the daemon closed the connection before answering'));
        else if (parser.truncated) reject(new Error('the daemon closed the connection in the middle of its answer'));
        else resolve(res);
      });
    });
  }

  /**
   * An upgraded connection (`/containers/{id}/attach`): sends the request with
   * `Connection: Upgrade` / `Upgrade: tcp` and resolves once the daemon answers
   * `101` (or docker's older `200`), with the socket and any stream bytes that
   * came with the answer. From then on the socket carries raw stream bytes both
   * ways; `socket.end()` half-closes it (stdin EOF), reading goes on. A 4xx/5xx
   * answer rejects with DaemonError.
   */
  hijack(path: string, query: Record<string, string | undefined> = {}, body?: unknown): Promise<{ socket: net.Socket; head: Buffer }> {
    const params = Object.entries(query).filter((e): e is [string, string] => e[1] !== undefined);
    const target = `${API_PREFIX}${path}${params.length > 0 ? `?${new URLSearchParams(params).toString()}` : ''}`;
    // `/exec/{id}/start` carries its options as a JSON body; attach has none.
    const payload = body === undefined ? Buffer.alloc(0) : Buffer.from(JSON.stringify(body));
    const type = body === undefined ? '' : 'Content-Type: application/json\r\n';
    const head = `POST ${target} HTTP/1.1\r\nHost: isulad\r\nUser-Agent: isula-cli\r\n${type}Content-Length: ${payload.length}\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n`;
    return new Promise((resolve, reject) => {
      const socket = net.connect({ path: this.#socketPath, allowHalfOpen: true });
      let connected = false;
      let buf = Buffer.alloc(0);
      let errorAnswer: ResponseParser | undefined;
      const onData = (chunk: Buffer) => {
        if (errorAnswer !== undefined) { errorAnswer.push(chunk); return; }
        buf = Buffer.concat([buf, chunk]);
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(buf.subarray(0, end).toString('latin1'))?.[1] ?? 0);
        if (status === 101 || status === 200) {
          socket.off('data', onData);
          socket.off('close', onClose);
          socket.pause();
          resolve({ socket, head: buf.subarray(end + 4) });
          return;
        }
        errorAnswer = new ResponseParser();
        errorAnswer.push(buf);
        if (errorAnswer.done) socket.end();
      };
      const onClose = () => {
        if (!connected) return;
        const res = errorAnswer?.finish();
        if (res !== undefined) reject(daemonError(res.status >= 400 ? res : { ...res, status: 500 }));
        else reject(new Error('the daemon closed the connection before answering'));
      };
      socket.on('connect', () => { connected = true; socket.write(head); if (payload.length > 0) socket.write(payload); });
      socket.on('data', onData);
      socket.on('error', (err) => reject(connected ? err : new DaemonUnreachableError(this.host, err)));
      socket.on('close', onClose);
    });
  }
}

/** A 4xx/5xx answer as a DaemonError: the `{ message, code }` body, or its text. */
function daemonError(res: Response): DaemonError {
  let message = res.body.toString('utf8').trim();
  let code: string | undefined;
  try {
    const parsed = JSON.parse(message) as { message?: unknown; code?: unknown };
    if (typeof parsed.message === 'string') message = parsed.message;
    if (typeof parsed.code === 'string') code = parsed.code;
  } catch { /* not JSON: keep the text */ }
  return new DaemonError(res.status, message || `HTTP ${res.status}`, code);
}

/** Incremental HTTP/1.1 response parser: status line, headers, then a fixed, chunked or until-close body. */
class ResponseParser {
  done = false;
  #buf: Buffer = Buffer.alloc(0);
  #status = 0;
  #headers: Map<string, string> | undefined;
  #remaining = -1; // bytes left of a fixed-length body; -1: until close
  #chunked = false;
  #chunkLeft = -1; // bytes left in the current chunk (+2 for its CRLF); -1: expecting a size line
  readonly #body: Buffer[] = [];
  readonly #onData: ((chunk: Buffer) => void) | undefined;
  readonly #onHeaders: ((status: number, headers: Map<string, string>) => void) | undefined;
  /** The answer to a HEAD request has no body, whatever its Content-Length says. */
  readonly #isHead: boolean;

  constructor(onData?: (chunk: Buffer) => void, onHeaders?: (status: number, headers: Map<string, string>) => void, isHead = false) {
    this.#onData = onData;
    this.#onHeaders = onHeaders;
    this.#isHead = isHead;
  }

  push(chunk: Buffer): void {
    this.#buf = this.#buf.length === 0 ? chunk : Buffer.concat([this.#buf, chunk]);
    if (this.#headers === undefined) {
      const end = this.#buf.indexOf('\r\n\r\n');
      if (end < 0) {
        if (this.#buf.length > 64 * 1024) throw new Error('response headers too large');
        return;
      }
      const lines = this.#buf.subarray(0, end).toString('latin1').split('\r\n');
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? '');
      if (m === null) throw new Error(`malformed response from the daemon: ${JSON.stringify(lines[0])}`);
      this.#status = Number(m[1]);
      this.#headers = new Map();
      for (const line of lines.slice(1)) {
        const colon = line.indexOf(':');
        if (colon > 0) this.#headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
      }
      this.#buf = this.#buf.subarray(end + 4);
      this.#chunked = /chunked/i.test(this.#headers.get('transfer-encoding') ?? '');
      const length = this.#headers.get('content-length');
      if (!this.#chunked && length !== undefined) this.#remaining = Number(length);
      if (this.#status === 204 || this.#status === 304 || this.#isHead) { this.#remaining = 0; this.#chunked = false; }
      this.#onHeaders?.(this.#status, this.#headers);
    }
    this.#consumeBody();
  }

  #emit(data: Buffer): void {
    if (data.length === 0) return;
    // Error answers are buffered whole so the caller can read their message.
    if (this.#onData && this.#status < 400) this.#onData(data);
    else this.#body.push(data);
  }

  #consumeBody(): void {
    if (!this.#chunked) {
      if (this.#remaining < 0) { this.#emit(this.#buf); this.#buf = Buffer.alloc(0); return; }
      const take = this.#buf.subarray(0, this.#remaining);
      this.#emit(take);
      this.#remaining -= take.length;
      this.#buf = this.#buf.subarray(take.length);
      if (this.#remaining === 0) this.done = true;
      return;
    }
    for (;;) {
      if (this.#chunkLeft < 0) {
        const eol = this.#buf.indexOf('\r\n');
        if (eol < 0) return;
        const size = parseInt(this.#buf.subarray(0, eol).toString('latin1'), 16);
        if (Number.isNaN(size)) throw new Error('malformed chunked response from the daemon');
        this.#buf = this.#buf.subarray(eol + 2);
        if (size === 0) { this.done = true; return; }
        this.#chunkLeft = size + 2;
      }
      if (this.#buf.length === 0) return;
      const take = Math.min(this.#chunkLeft, this.#buf.length);
      const dataEnd = Math.min(take, Math.max(0, this.#chunkLeft - 2));
      this.#emit(this.#buf.subarray(0, dataEnd));
      this.#buf = this.#buf.subarray(take);
      this.#chunkLeft -= take;
      if (this.#chunkLeft === 0) this.#chunkLeft = -1;
    }
  }

  /** A chunked or fixed-length body that ended before its end. */
  get truncated(): boolean {
    return !this.done && (this.#chunked || this.#remaining > 0);
  }

  finish(): Response | undefined {
    if (this.#headers === undefined) return undefined;
    return { status: this.#status, headers: this.#headers, body: Buffer.concat(this.#body) };
  }
}

/** An `onData` handler for JSON-lines streams (events, load progress): calls `onLine` with each non-empty line. */
export function jsonLines(onLine: (line: string) => void): (chunk: Buffer) => void {
  let pending = '';
  return (chunk) => {
    pending += chunk.toString('utf8');
    let nl: number;
    while ((nl = pending.indexOf('\n')) >= 0) {
      const line = pending.slice(0, nl).trim();
      pending = pending.slice(nl + 1);
      if (line !== '') onLine(line);
    }
  };
}
