/**
 * The engine API: HTTP/1.1 + JSON on unix sockets, shaped after Docker Engine
 * API v1.41. Paths are accepted with and without a `/vX.Y` prefix.
 * Errors are `{ "message", "code" }` with the status the error's kind maps to.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { PassThrough, type Readable } from 'node:stream';
import findMyWay, { type HTTPMethod } from 'find-my-way';
import type { Logger } from 'pino';
import { IsulaError, toIsulaError } from '../errors.js';

export const API_VERSION = '1.41';
export const MIN_API_VERSION = '1.12';
/** Largest JSON body accepted (Docker's own requests are far smaller). */
export const MAX_JSON_BODY_BYTES = 1024 * 1024;
/** How long a JSON request body may take to arrive. */
const BODY_TIMEOUT_MS = 60_000;
/** Longest unix socket path the kernel keeps (sun_path is 108 bytes with the NUL). */
const MAX_SOCKET_PATH_BYTES = 107;

export interface RequestContext {
  req: http.IncomingMessage;
  res: http.ServerResponse;
  params: Record<string, string | undefined>;
  query: URLSearchParams;
  log: Logger;
  /** Aborted when the client goes away or the daemon shuts down. */
  signal: AbortSignal;
  /** Reads and parses the JSON body (bounded by MAX_JSON_BODY_BYTES). */
  json(): Promise<unknown>;
  /**
   * Takes over the connection for a raw stream (Docker's attach): answers
   * `101 UPGRADED` to an `Upgrade: tcp` request (`200` with the raw-stream
   * type otherwise) and returns the socket. The handler owns it from then on;
   * `signal` aborts when it closes.
   */
  hijack(): net.Socket;
}

/** A handler returns the JSON body to send, or undefined when it wrote the response itself. */
export type Handler = (ctx: RequestContext) => Promise<unknown>;

export class ApiServer {
  readonly #router = findMyWay({ ignoreTrailingSlash: true, maxParamLength: 500 });
  readonly #servers: http.Server[] = [];
  readonly #sockets: string[] = [];
  /** Hijacked connections (attach, exec): node:http no longer tracks them, close() cuts them. */
  readonly #hijacked = new Set<net.Socket>();
  readonly #shutdown = new AbortController();
  readonly #log: Logger;

  constructor(log: Logger) {
    this.#log = log;
  }

  route(method: HTTPMethod, pattern: string, handler: Handler): void {
    // find-my-way only selects the route; #handle awaits the handler kept in the route's store.
    this.#router.on(method, pattern, () => {}, { handler });
  }

  /** Aborted when the daemon starts shutting down: long-lived streams end themselves. */
  get shutdownSignal(): AbortSignal {
    return this.#shutdown.signal;
  }

  /**
   * Listens on each `unix://` host: mode 0660, group `gid` when given; and on
   * the sockets systemd passed for `fd://` (socket activation: their path,
   * mode and group are the socket unit's, and they are not removed at close).
   */
  async listen(hosts: readonly string[], options: { gid?: number } = {}): Promise<void> {
    for (const host of hosts) {
      if (host === FD_HOST) {
        for (const fd of takeListenFds()) await this.#serve({ fd }, `fd://${fd}`);
        continue;
      }
      const socketPath = host.slice('unix://'.length);
      if (Buffer.byteLength(socketPath) > MAX_SOCKET_PATH_BYTES) {
        throw new IsulaError('CONFIG_INVALID', `socket path ${socketPath} is longer than ${MAX_SOCKET_PATH_BYTES} bytes`);
      }
      await fs.mkdir(path.dirname(socketPath), { recursive: true, mode: 0o711 });
      await removeStaleSocket(socketPath);
      await this.#serve({ path: socketPath }, socketPath);
      await fs.chmod(socketPath, 0o660);
      if (options.gid !== undefined) await fs.chown(socketPath, 0, options.gid);
      this.#sockets.push(socketPath);
    }
  }

  /** One HTTP server on a socket path or an inherited listening fd. */
  async #serve(at: { path: string } | { fd: number }, name: string): Promise<void> {
    // No whole-request timeout: an archive upload (cp, load) may stream for long. JSON bodies
    // have their own bound in time (readJsonBody), headers theirs (headersTimeout).
    const server = http.createServer({ requestTimeout: 0, headersTimeout: 60_000, keepAliveTimeout: 5_000 }, (req, res) => {
      void this.#handle(req, res);
    });
    server.on('upgrade', (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => {
      if (head.length > 0) socket.unshift(head);
      // node:http no longer tracks an upgraded socket: close() must cut it itself.
      this.#hijacked.add(socket);
      socket.once('close', () => this.#hijacked.delete(socket));
      const res = new http.ServerResponse(req);
      // An error answer to an upgrade must not say `Connection: close`: Docker's client then
      // skips its status check and reads the JSON error as a stream (httputil.ErrPersistEOF).
      // The socket is closed after the answer all the same (see #handle's finally).
      res.shouldKeepAlive = true;
      res.assignSocket(socket);
      void this.#handle(req, res, socket);
    });
    server.on('clientError', (err, socket) => {
      if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n{"message":"malformed HTTP request"}');
      else socket.destroy(err);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(at, () => resolve());
    });
    this.#servers.push(server);
    this.#log.info({ socket: name }, 'engine API listening');
  }

  /** Stops accepting, ends streams, waits up to `graceMs` for in-flight requests, then cuts the rest. */
  async close(graceMs = 5000): Promise<void> {
    this.#shutdown.abort();
    const closed = this.#servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve())));
    // Streams ended by the abort leave keep-alive connections idle a moment later: keep closing idle ones.
    const sweep = setInterval(() => { for (const s of this.#servers) s.closeIdleConnections(); }, 20);
    for (const s of this.#servers) s.closeIdleConnections();
    const timer = setTimeout(() => {
      for (const s of this.#servers) s.closeAllConnections();
      for (const socket of this.#hijacked) socket.destroy();
    }, graceMs);
    await Promise.all(closed);
    clearTimeout(timer);
    clearInterval(sweep);
    await Promise.all(this.#sockets.map((p) => fs.rm(p, { force: true })));
  }

  async #handle(req: http.IncomingMessage, res: http.ServerResponse, upgraded?: net.Socket): Promise<void> {
    const reqId = randomBytes(6).toString('hex');
    const log = this.#log.child({ req: reqId });
    const started = performance.now();
    const controller = new AbortController();
    const onGone = () => controller.abort();
    let hijacked = false;
    res.on('close', onGone);
    // Moby's version middleware sets these on every answer; Docker's client reads OSType (e.g. for --device).
    res.setHeader('Api-Version', API_VERSION);
    res.setHeader('OSType', 'linux');
    res.setHeader('Docker-Experimental', 'false');
    res.setHeader('Server', 'isulad');
    const onShutdown = () => controller.abort();
    this.#shutdown.signal.addEventListener('abort', onShutdown, { once: true });
    try {
      let url: URL;
      try {
        url = new URL(req.url ?? '/', 'http://isulad');
      } catch (err) {
        throw new IsulaError('API_BAD_REQUEST', `invalid request target ${JSON.stringify(req.url)}`, { cause: err });
      }
      const method = (req.method ?? 'GET') as HTTPMethod;
      const pathname = encodeImageName(method, stripVersion(url.pathname));
      const found = this.#router.find(method, pathname);
      if (found === null) {
        const other = (['GET', 'POST', 'PUT', 'DELETE', 'HEAD'] as HTTPMethod[]).some((m) => m !== method && this.#router.find(m, pathname) !== null);
        if (other) throw new IsulaError('API_METHOD_NOT_ALLOWED', `method ${method} not allowed for ${pathname}`, { httpStatus: 405 });
        throw new IsulaError('API_ROUTE_NOT_FOUND', 'page not found');
      }
      const { handler } = found.store as { handler: Handler };
      const ctx: RequestContext = {
        req, res, params: found.params, query: url.searchParams, log, signal: controller.signal,
        // An upgrade request's body is not parsed by node:http: it is the first bytes on the socket.
        json: () => (upgraded !== undefined ? readUpgradeBody(req, upgraded, controller.signal) : readJsonBody(req)),
        hijack: () => {
          const socket = upgraded ?? (req.socket as net.Socket);
          hijacked = true;
          socket.on('close', onGone);
          if (upgraded === undefined) {
            this.#hijacked.add(socket);
            socket.once('close', () => this.#hijacked.delete(socket));
          }
          if (upgraded !== undefined) {
            res.detachSocket(socket);
            socket.write('HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.raw-stream\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nApi-Version: ' + API_VERSION + '\r\n\r\n');
          } else {
            // Without an upgrade the stream is output only: anything the client sends goes to the HTTP parser.
            socket.write('HTTP/1.1 200 OK\r\nContent-Type: application/vnd.docker.raw-stream\r\nConnection: close\r\nApi-Version: ' + API_VERSION + '\r\n\r\n');
          }
          return socket;
        },
      };
      const body = await handler(ctx);
      if (hijacked) return;
      if (!res.headersSent && body !== undefined) sendJson(res, 200, body);
      else if (!res.headersSent) { res.writeHead(204); res.end(); }
      log.debug({ method, path: pathname, status: res.statusCode, durationMs: Math.round(performance.now() - started) }, 'request');
    } catch (err) {
      const e = toIsulaError(err);
      if (e.kind === 'internal') log.error({ err }, 'request failed');
      else log.debug({ code: e.code, msg: e.message }, 'request rejected');
      if (hijacked) {
        (upgraded ?? req.socket).destroy();
      } else if (!res.headersSent) {
        // Drain what the client is still sending (bounded) so it can read the answer.
        await drainBody(req);
        if (!res.destroyed) sendJson(res, e.httpStatus, { message: e.message, code: e.code });
      } else {
        res.destroy();
      }
    } finally {
      res.off('close', onGone);
      this.#shutdown.signal.removeEventListener('abort', onShutdown);
      // An upgrade request answered without a hijack: the server does not close that socket itself.
      if (upgraded !== undefined && !hijacked) {
        if (res.writableFinished) upgraded.destroySoon();
        else res.once('finish', () => upgraded.destroySoon());
      }
    }
  }
}

/**
 * Image names hold slashes (`127.0.0.1:5000/team/app`), which Docker's CLI
 * sends unescaped in `/images/{name}/…` (its router matches `{name:.*}`):
 * the name becomes one escaped segment before routing.
 */
export function encodeImageName(method: string, pathname: string): string {
  // DELETE /images/{name}: all of the rest is the name (a repository may end in /json).
  const m = method === 'DELETE' ? /^\/images\/(.+)()$/.exec(pathname) : /^\/images\/(.+?)\/(json|tag|push|get|history)$/.exec(pathname);
  if (m === null || m[1] === undefined || !m[1].includes('/')) return pathname;
  let name: string;
  try {
    name = decodeURIComponent(m[1]);
  } catch {
    return pathname;
  }
  return `/images/${encodeURIComponent(name)}${m[2] ? `/${m[2]}` : ''}`;
}

function stripVersion(pathname: string): string {
  const m = /^\/v(\d+)\.(\d+)(\/.*)$/.exec(pathname);
  if (m === null) return pathname;
  const [, major = '0', minor = '0', rest = '/'] = m;
  const [maxMajor, maxMinor] = API_VERSION.split('.').map(Number) as [number, number];
  const [minMajor, minMinor] = MIN_API_VERSION.split('.').map(Number) as [number, number];
  const v = Number(major) * 1000 + Number(minor);
  if (v > maxMajor * 1000 + maxMinor) {
    throw new IsulaError('API_VERSION_UNSUPPORTED', `client version ${major}.${minor} is too new. Maximum supported API version is ${API_VERSION}`);
  }
  if (v < minMajor * 1000 + minMinor) {
    throw new IsulaError('API_VERSION_UNSUPPORTED', `client version ${major}.${minor} is too old. Minimum supported API version is ${MIN_API_VERSION}, please upgrade your client to a newer version`);
  }
  return rest;
}

export function sendJson(res: http.ServerResponse, status: number, body: unknown): void {
  const data = JSON.stringify(body);
  res.writeHead(status, {
    'Content-Type': 'application/json',
    'Content-Length': Buffer.byteLength(data),
    'Api-Version': API_VERSION,
    Server: 'isulad',
  });
  res.end(data);
}

/**
 * A streamed request body (an image archive, a tarball for cp) as a stream of
 * its own, for a driver to read. Node destroys the connection with an
 * IncomingMessage destroyed before its end, which a failed pipeline does: the
 * client then never reads the error answer (it saw `write EPIPE`). Destroying
 * this stream leaves `req` paused and the connection up; the client going
 * away still fails it.
 */
export function uploadBody(req: http.IncomingMessage): Readable {
  const body = new PassThrough();
  req.pipe(body);
  req.once('error', (err) => body.destroy(err));
  req.once('aborted', () => body.destroy(new IsulaError('API_BAD_REQUEST', 'the client closed the connection before the request body ended')));
  return body;
}

/** How much of an unread request body is read and dropped before an error answer (Go's net/http reads 256 KiB). */
const DRAIN_MAX_BYTES = 4 * 1024 * 1024;
const DRAIN_MAX_MS = 2000;

/**
 * Reads and drops what is left of a request body, up to DRAIN_MAX_BYTES or
 * DRAIN_MAX_MS: a client still sending a refused archive can then finish and
 * read the answer, instead of its next write failing on a closed socket.
 */
async function drainBody(req: http.IncomingMessage): Promise<void> {
  if (req.complete || req.destroyed) return;
  await new Promise<void>((resolve) => {
    let size = 0;
    const done = () => { clearTimeout(timer); req.off('data', onData); req.off('end', done); req.off('close', done); resolve(); };
    const onData = (chunk: Buffer) => { size += chunk.length; if (size > DRAIN_MAX_BYTES) done(); };
    const timer = setTimeout(done, DRAIN_MAX_MS);
    req.on('data', onData);
    req.once('end', done);
    req.once('close', done);
    req.resume();
  });
}

export async function readJsonBody(req: http.IncomingMessage, limit = MAX_JSON_BODY_BYTES): Promise<unknown> {
  const type = req.headers['content-type'];
  if (type !== undefined && !/^application\/json\b/i.test(type)) {
    throw new IsulaError('API_UNSUPPORTED_MEDIA_TYPE', `Content-Type specified (${type}) must be 'application/json'`);
  }
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > limit) throw new IsulaError('API_BODY_TOO_LARGE', `request body of ${declared} bytes exceeds the limit of ${limit} bytes`, { httpStatus: 413 });
  const chunks: Buffer[] = [];
  let size = 0;
  // A client that sends its JSON body slower than this is cut (the server has no whole-request timeout).
  const timer = setTimeout(() => req.destroy(new IsulaError('API_BAD_REQUEST', `request body not received within ${BODY_TIMEOUT_MS / 1000} s`)), BODY_TIMEOUT_MS);
  try {
    for await (const chunk of req as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > limit) throw new IsulaError('API_BODY_TOO_LARGE', `request body exceeds the limit of ${limit} bytes`, { httpStatus: 413 });
      chunks.push(chunk);
    }
  } finally {
    clearTimeout(timer);
  }
  if (size === 0) return undefined;
  return parseJsonBody(Buffer.concat(chunks).toString('utf8'));
}

/** No engine request nests this deep; deeper bodies are refused before any code walks them. */
const MAX_JSON_DEPTH = 64;

/** JSON.parse, with a clear 400 for bad JSON and for nesting past MAX_JSON_DEPTH. */
export function parseJsonBody(text: string): unknown {
  let value: unknown;
  try {
    value = JSON.parse(text) as unknown;
  } catch (err) {
    throw new IsulaError('API_BAD_REQUEST', `invalid JSON in request body: ${(err as Error).message}`, { cause: err });
  }
  // Iterative: a recursive walk is what a deep body would break.
  const stack: [unknown, number][] = [[value, 1]];
  while (stack.length > 0) {
    const [v, depth] = stack.pop()!;
    if (v === null || typeof v !== 'object') continue;
    if (depth > MAX_JSON_DEPTH) throw new IsulaError('API_BAD_REQUEST', `request body nests deeper than ${MAX_JSON_DEPTH} levels`);
    for (const child of Object.values(v)) if (child !== null && typeof child === 'object') stack.push([child, depth + 1]);
  }
  return value;
}

/**
 * The JSON body of an upgrade request (Docker's exec start with `Upgrade:
 * tcp`): `Content-Length` bytes read off the socket before it becomes the
 * raw stream; what follows them is put back for the stream.
 */
async function readUpgradeBody(req: http.IncomingMessage, socket: net.Socket, signal: AbortSignal, limit = MAX_JSON_BODY_BYTES): Promise<unknown> {
  const declared = Number(req.headers['content-length'] ?? 0);
  if (!Number.isSafeInteger(declared) || declared <= 0) return undefined;
  if (declared > limit) throw new IsulaError('API_BODY_TOO_LARGE', `request body of ${declared} bytes exceeds the limit of ${limit} bytes`, { httpStatus: 413 });
  const body = await new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      chunks.push(chunk);
      size += chunk.length;
      if (size < declared) return;
      done();
      const all = Buffer.concat(chunks);
      if (all.length > declared) socket.unshift(all.subarray(declared));
      resolve(all.subarray(0, declared));
    };
    const onEnd = () => { done(); reject(new IsulaError('API_BAD_REQUEST', `request body ended after ${size} of ${declared} bytes`)); };
    const onTimeout = () => { done(); reject(new IsulaError('API_BAD_REQUEST', `request body not received within ${BODY_TIMEOUT_MS / 1000} s (${size} of ${declared} bytes)`)); };
    const timer = setTimeout(onTimeout, BODY_TIMEOUT_MS);
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', onEnd);
      socket.off('data', onData); socket.off('end', onEnd); socket.off('close', onEnd); socket.pause();
    };
    signal.addEventListener('abort', onEnd, { once: true });
    socket.on('data', onData);
    socket.once('end', onEnd);
    socket.once('close', onEnd);
    socket.resume();
  });
  return parseJsonBody(body.toString('utf8'));
}

/** Docker's host for the sockets systemd passes (`-H fd://`, `"hosts": ["fd://"]`). */
export const FD_HOST = 'fd://';
/** sd_listen_fds(3): the first passed fd. */
const SD_LISTEN_FDS_START = 3;

/**
 * The listening sockets systemd passed this process (sd_listen_fds(3)):
 * LISTEN_FDS of them from fd 3, when LISTEN_PID is ours. The variables are
 * then removed so no child process (conmon, runc) takes them for its own.
 * Throws CONFIG_INVALID when none were passed.
 */
export function takeListenFds(env: NodeJS.ProcessEnv = process.env): number[] {
  const pid = Number(env['LISTEN_PID']);
  const count = Number(env['LISTEN_FDS']);
  delete env['LISTEN_PID'];
  delete env['LISTEN_FDS'];
  delete env['LISTEN_FDNAMES'];
  if (pid !== process.pid || !Number.isSafeInteger(count) || count < 1) {
    throw new IsulaError('CONFIG_INVALID', 'host fd:// needs the sockets of a systemd socket unit (isulad.socket), but none were passed (LISTEN_FDS/LISTEN_PID unset or not for this process)');
  }
  return Array.from({ length: count }, (_, i) => SD_LISTEN_FDS_START + i);
}

/** Removes a socket file left by a dead daemon; refuses when something still answers on it. */
async function removeStaleSocket(socketPath: string): Promise<void> {
  const stat = await fs.lstat(socketPath).catch(() => undefined);
  if (stat === undefined) return;
  if (!stat.isSocket()) throw new IsulaError('CONFIG_INVALID', `${socketPath} exists and is not a socket`);
  const alive = await new Promise<boolean>((resolve) => {
    const s = net.connect(socketPath);
    s.once('connect', () => { s.destroy(); resolve(true); });
    s.once('error', () => resolve(false));
  });
  if (alive) throw new IsulaError('DAEMON_ALREADY_RUNNING', `another daemon is already listening on ${socketPath}`);
  await fs.rm(socketPath, { force: true });
}
