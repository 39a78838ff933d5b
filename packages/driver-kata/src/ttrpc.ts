/**
 * ttrpc (containerd's "gRPC for low-memory environments") over unix sockets:
 * the client the driver uses to talk to a shim, and the server the shim's
 * events reach the daemon through.
 *
 * Wire format (verified against containerd-shim-runc-v2 1.6.20, PLATFORM.md §5):
 * every message is a frame, a 10-byte header then a protobuf body:
 *
 *   uint32 BE  body length (at most 4 MiB)
 *   uint32 BE  stream id (a client's are odd: 1, 3, 5 ...)
 *   uint8      type: 1 request, 2 response (3 = data, streaming; not used by shims v2)
 *   uint8      flags (0 for unary calls)
 *
 * A request body is `ttrpc.Request{service, method, payload, timeout_nano,
 * metadata}`, a response `ttrpc.Response{status: google.rpc.Status, payload}`.
 * Replies may come in any order: they are matched by stream id.
 *
 * Errors: a non-zero status becomes an IsulaError whose code follows the
 * gRPC code (see `statusToError`), with `details.grpcCode` and the method.
 * A lost connection fails every pending call with RUNTIME_UNAVAILABLE.
 */
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { ERROR_KINDS, IsulaError, type ErrorCode } from '@isula/core';
import { decode, encode } from './protos.js';

export const HEADER_BYTES = 10;
/** ttrpc's message limit (both directions). */
export const MAX_MESSAGE_BYTES = 4 << 20;
export const TYPE_REQUEST = 1;
export const TYPE_RESPONSE = 2;
/** Metadata key that carries the containerd namespace of a call. */
export const NAMESPACE_KEY = 'containerd-namespace-ttrpc';
/** sun_path holds 108 bytes with the NUL; longer paths are silently truncated (PLATFORM.md §9). */
const MAX_SOCKET_PATH = 107;

/** gRPC status codes used here (google.rpc.Code). */
export const GrpcCode = {
  OK: 0, CANCELLED: 1, UNKNOWN: 2, INVALID_ARGUMENT: 3, DEADLINE_EXCEEDED: 4, NOT_FOUND: 5, ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7, RESOURCE_EXHAUSTED: 8, FAILED_PRECONDITION: 9, ABORTED: 10, OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12, INTERNAL: 13, UNAVAILABLE: 14, DATA_LOSS: 15, UNAUTHENTICATED: 16,
} as const;

export interface Frame {
  streamId: number;
  type: number;
  flags: number;
  payload: Buffer;
  /** Set (and payload empty) when the peer sent a body over the limit: it was skipped. */
  oversizeBytes?: number;
}

/** Encodes one frame; a body over the limit is refused (the peer would drop it). */
export function encodeFrame(streamId: number, type: number, payload: Uint8Array, flags = 0, maxBytes = MAX_MESSAGE_BYTES): Buffer {
  if (payload.length > maxBytes) {
    throw new IsulaError('RUNTIME_FAILED', `ttrpc message of ${payload.length} bytes exceeds the maximum of ${maxBytes}`, { details: { grpcCode: GrpcCode.RESOURCE_EXHAUSTED } });
  }
  const buf = Buffer.allocUnsafe(HEADER_BYTES + payload.length);
  buf.writeUInt32BE(payload.length, 0);
  buf.writeUInt32BE(streamId >>> 0, 4);
  buf.writeUInt8(type, 8);
  buf.writeUInt8(flags, 9);
  buf.set(payload, HEADER_BYTES);
  return buf;
}

/**
 * Cuts a byte stream into frames, whatever the chunking (a frame split over
 * many reads, many frames in one). A body over the limit is skipped without
 * being buffered and reported as an `oversizeBytes` frame, as ttrpc does, so
 * the connection stays usable.
 */
export class FrameDecoder {
  readonly #maxBytes: number;
  #chunks: Buffer[] = [];
  #buffered = 0;
  /** Bytes of an oversize body still to skip. */
  #skip = 0;

  constructor(maxBytes = MAX_MESSAGE_BYTES) {
    this.#maxBytes = maxBytes;
  }

  push(chunk: Buffer): Frame[] {
    const out: Frame[] = [];
    if (this.#skip > 0) {
      const n = Math.min(this.#skip, chunk.length);
      this.#skip -= n;
      chunk = chunk.subarray(n);
    }
    if (chunk.length > 0) {
      this.#chunks.push(chunk);
      this.#buffered += chunk.length;
    }
    for (;;) {
      if (this.#buffered < HEADER_BYTES) break;
      const head = this.#peek(HEADER_BYTES);
      const length = head.readUInt32BE(0);
      const streamId = head.readUInt32BE(4);
      const type = head.readUInt8(8);
      const flags = head.readUInt8(9);
      if (length > this.#maxBytes) {
        this.#consume(HEADER_BYTES);
        const n = Math.min(length, this.#buffered);
        this.#consume(n);
        this.#skip = length - n;
        out.push({ streamId, type, flags, payload: Buffer.alloc(0), oversizeBytes: length });
        if (this.#skip > 0) break;
        continue;
      }
      if (this.#buffered < HEADER_BYTES + length) break;
      this.#consume(HEADER_BYTES);
      const payload = this.#take(length);
      out.push({ streamId, type, flags, payload });
    }
    return out;
  }

  /** Bytes held for an incomplete frame. */
  get bufferedBytes(): number {
    return this.#buffered;
  }

  #peek(n: number): Buffer {
    const first = this.#chunks[0];
    if (first !== undefined && first.length >= n) return first.subarray(0, n);
    const all = Buffer.concat(this.#chunks);
    this.#chunks = [all];
    return all.subarray(0, n);
  }

  #take(n: number): Buffer {
    const first = this.#chunks[0];
    let out: Buffer;
    if (first !== undefined && first.length >= n) {
      out = Buffer.from(first.subarray(0, n));
    } else {
      out = Buffer.concat(this.#chunks).subarray(0, n);
    }
    this.#consume(n);
    return out;
  }

  #consume(n: number): void {
    this.#buffered -= n;
    while (n > 0) {
      const first = this.#chunks[0];
      if (first === undefined) return;
      if (first.length <= n) {
        n -= first.length;
        this.#chunks.shift();
      } else {
        this.#chunks[0] = first.subarray(n);
        n = 0;
      }
    }
  }
}

// ---- status <-> error --------------------------------------------------------

const CODE_FOR_GRPC: Record<number, ErrorCode> = {
  [GrpcCode.CANCELLED]: 'CANCELED',
  [GrpcCode.INVALID_ARGUMENT]: 'CONTAINER_CONFIG_INVALID',
  [GrpcCode.DEADLINE_EXCEEDED]: 'TIMEOUT',
  [GrpcCode.NOT_FOUND]: 'CONTAINER_NOT_FOUND',
  [GrpcCode.ALREADY_EXISTS]: 'CONTAINER_STATE_CONFLICT',
  [GrpcCode.FAILED_PRECONDITION]: 'CONTAINER_STATE_CONFLICT',
  [GrpcCode.UNIMPLEMENTED]: 'NOT_IMPLEMENTED',
  [GrpcCode.UNAVAILABLE]: 'RUNTIME_UNAVAILABLE',
};

/**
 * A google.rpc.Status from a peer → IsulaError. The kind follows the gRPC code
 * (NOT_FOUND → notFound, FAILED_PRECONDITION/ALREADY_EXISTS → conflict, ...);
 * anything else is RUNTIME_FAILED. The peer's code stays in `details.grpcCode`.
 */
export function statusToError(status: { code: number; message: string }, what: string): IsulaError {
  const code = CODE_FOR_GRPC[status.code] ?? 'RUNTIME_FAILED';
  return new IsulaError(code, `${what}: ${status.message || `ttrpc status ${status.code}`}`, { details: { grpcCode: status.code, method: what } });
}

/** An error thrown by a server handler → the status sent back (IsulaError kinds have their gRPC code). */
export function errorToStatus(err: unknown): { code: number; message: string } {
  if (err instanceof IsulaError) {
    const grpc = typeof err.details?.['grpcCode'] === 'number' ? err.details['grpcCode'] : ERROR_KINDS[err.kind].grpc;
    return { code: grpc, message: err.message };
  }
  return { code: GrpcCode.UNKNOWN, message: err instanceof Error ? err.message : String(err) };
}

// ---- client ------------------------------------------------------------------

export interface CallOptions {
  /** Deadline of the call; sent as timeout_nano and enforced locally. */
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Extra metadata (the client's namespace is always sent). */
  metadata?: Record<string, string>;
}

interface Pending {
  resolve: (payload: Buffer) => void;
  reject: (err: unknown) => void;
  what: string;
}

/** Connects to a unix socket path, reaching long paths through /proc/self/fd (PLATFORM.md §9). */
export function connectUnix(socketPath: string, timeoutMs: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    let dirFd: number | undefined;
    let target = socketPath;
    if (Buffer.byteLength(socketPath) > MAX_SOCKET_PATH) {
      try {
        dirFd = fs.openSync(path.dirname(socketPath), 'r');
      } catch (err) {
        reject(new IsulaError('RUNTIME_UNAVAILABLE', `cannot reach ttrpc socket ${socketPath}: ${(err as Error).message}`, { cause: err }));
        return;
      }
      target = `/proc/self/fd/${dirFd}/${path.basename(socketPath)}`;
    }
    let sock: net.Socket;
    try {
      sock = net.connect(target);
    } catch (err) {
      // A path Node refuses outright (a NUL byte in it): as unreachable as a missing socket.
      if (dirFd !== undefined) fs.closeSync(dirFd);
      reject(new IsulaError('RUNTIME_UNAVAILABLE', `cannot connect to ttrpc socket ${JSON.stringify(socketPath)}: ${(err as Error).message}`, { cause: err }));
      return;
    }
    const done = (err?: Error) => {
      clearTimeout(timer);
      if (dirFd !== undefined) fs.closeSync(dirFd);
      dirFd = undefined;
      sock.off('error', onError);
      if (err) {
        sock.destroy();
        reject(new IsulaError('RUNTIME_UNAVAILABLE', `cannot connect to ttrpc socket ${socketPath}: ${err.message}`, { cause: err }));
      } else {
        resolve(sock);
      }
    };
    const onError = (err: Error) => done(err);
    const timer = setTimeout(() => done(new Error(`no connection within ${timeoutMs} ms`)), timeoutMs);
    sock.once('error', onError);
    sock.once('connect', () => done());
  });
}

export class TtrpcClient {
  readonly #sock: net.Socket;
  readonly #address: string;
  readonly #namespace: string;
  readonly #maxBytes: number;
  readonly #pending = new Map<number, Pending>();
  readonly #closeListeners: ((err?: Error) => void)[] = [];
  #nextId = 1;
  #closed = false;

  /** `address` is a path or a `unix://` URI. */
  static async connect(address: string, opts: { namespace?: string; connectTimeoutMs?: number; maxBytes?: number } = {}): Promise<TtrpcClient> {
    const socketPath = address.replace(/^unix:\/\//, '');
    const sock = await connectUnix(socketPath, opts.connectTimeoutMs ?? 5000);
    return new TtrpcClient(sock, socketPath, opts.namespace ?? '', opts.maxBytes ?? MAX_MESSAGE_BYTES);
  }

  constructor(sock: net.Socket, address: string, namespace: string, maxBytes = MAX_MESSAGE_BYTES) {
    this.#sock = sock;
    this.#address = address;
    this.#namespace = namespace;
    this.#maxBytes = maxBytes;
    const decoder = new FrameDecoder(maxBytes);
    sock.on('data', (chunk: Buffer) => {
      for (const frame of decoder.push(chunk)) this.#onFrame(frame);
    });
    sock.on('error', (err) => this.#shutdown(err));
    sock.on('close', () => this.#shutdown());
  }

  get address(): string {
    return this.#address;
  }

  get isClosed(): boolean {
    return this.#closed;
  }

  /** Calls `service/method` with an encoded request; resolves with the encoded response payload. */
  call(service: string, method: string, payload: Uint8Array, opts: CallOptions = {}): Promise<Buffer> {
    const what = `${service}/${method}`;
    if (this.#closed) return Promise.reject(new IsulaError('RUNTIME_UNAVAILABLE', `${what}: ttrpc connection to ${this.#address} is closed`, { details: { method: what } }));
    if (opts.signal?.aborted) return Promise.reject(new IsulaError('CANCELED', `${what}: canceled`, { details: { method: what } }));
    const streamId = this.#nextId;
    // Odd ids only; wrap before 2^32.
    this.#nextId = this.#nextId >= 0xfffffffd ? 1 : this.#nextId + 2;
    const metadata = Object.entries({ ...(this.#namespace !== '' ? { [NAMESPACE_KEY]: this.#namespace } : {}), ...opts.metadata })
      .map(([key, value]) => ({ key, value }));
    let frame: Buffer;
    try {
      const body = encode('ttrpc.Request', {
        service, method, payload,
        timeout_nano: opts.timeoutMs !== undefined ? Math.max(1, Math.round(opts.timeoutMs)) * 1_000_000 : 0,
        metadata,
      });
      frame = encodeFrame(streamId, TYPE_REQUEST, body, 0, this.#maxBytes);
    } catch (err) {
      return Promise.reject(err instanceof IsulaError ? err : new IsulaError('RUNTIME_FAILED', `${what}: ${(err as Error).message}`, { cause: err }));
    }
    return new Promise<Buffer>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const cleanup = () => {
        if (timer) clearTimeout(timer);
        opts.signal?.removeEventListener('abort', onAbort);
        this.#pending.delete(streamId);
      };
      const onAbort = () => {
        cleanup();
        reject(new IsulaError('CANCELED', `${what}: canceled`, { details: { method: what } }));
      };
      if (opts.timeoutMs !== undefined) {
        timer = setTimeout(() => {
          cleanup();
          reject(new IsulaError('TIMEOUT', `${what}: no reply within ${opts.timeoutMs} ms`, { details: { method: what, grpcCode: GrpcCode.DEADLINE_EXCEEDED } }));
        }, opts.timeoutMs);
      }
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      this.#pending.set(streamId, {
        what,
        resolve: (p) => { cleanup(); resolve(p); },
        reject: (e) => { cleanup(); reject(e); },
      });
      this.#sock.write(frame);
    });
  }

  /** Called once when the connection ends (peer closed, error, or close()). */
  onClose(listener: (err?: Error) => void): void {
    if (this.#closed) queueMicrotask(() => listener());
    else this.#closeListeners.push(listener);
  }

  close(): void {
    this.#sock.destroy();
    this.#shutdown();
  }

  #onFrame(frame: Frame): void {
    const p = this.#pending.get(frame.streamId);
    // A late reply (the call timed out or was canceled) or a stray frame: dropped.
    if (!p || frame.type !== TYPE_RESPONSE) return;
    if (frame.oversizeBytes !== undefined) {
      p.reject(new IsulaError('RUNTIME_FAILED', `${p.what}: reply of ${frame.oversizeBytes} bytes exceeds the maximum of ${this.#maxBytes}`, { details: { method: p.what, grpcCode: GrpcCode.RESOURCE_EXHAUSTED } }));
      return;
    }
    let res: { status?: { code: number; message: string } | null; payload: Buffer };
    try {
      res = decode('ttrpc.Response', frame.payload);
    } catch (err) {
      p.reject(new IsulaError('RUNTIME_FAILED', `${p.what}: undecodable ttrpc response: ${(err as Error).message}`, { cause: err }));
      return;
    }
    if (res.status && res.status.code !== 0) p.reject(statusToError(res.status, p.what));
    else p.resolve(res.payload);
  }

  #shutdown(err?: Error): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#sock.destroy();
    for (const p of [...this.#pending.values()]) {
      p.reject(new IsulaError('RUNTIME_UNAVAILABLE', `${p.what}: ttrpc connection to ${this.#address} lost${err ? `: ${err.message}` : ''}`, { ...(err && { cause: err }), details: { method: p.what } }));
    }
    this.#pending.clear();
    for (const l of this.#closeListeners.splice(0)) l(err);
  }
}

// ---- server ------------------------------------------------------------------

export interface ServerCall {
  payload: Buffer;
  /** Request metadata; a key may repeat. */
  metadata: Map<string, string[]>;
  /** The namespace the caller named (metadata `containerd-namespace-ttrpc`), '' when none. */
  namespace: string;
  /** Aborted when the caller's deadline passes or its connection closes. */
  signal: AbortSignal;
}

export type Handler = (call: ServerCall) => Promise<Uint8Array>;

/**
 * A ttrpc server on a unix socket. Handlers run concurrently; each reply goes
 * back on the request's stream id. An unknown method gets UNIMPLEMENTED, an
 * oversize request RESOURCE_EXHAUSTED, a handler past the caller's deadline
 * DEADLINE_EXCEEDED.
 */
export class TtrpcServer {
  readonly #handlers = new Map<string, Handler>();
  readonly #conns = new Set<net.Socket>();
  readonly #maxBytes: number;
  #server: net.Server | undefined;
  #path: string | undefined;

  constructor(opts: { maxBytes?: number } = {}) {
    this.#maxBytes = opts.maxBytes ?? MAX_MESSAGE_BYTES;
  }

  register(service: string, method: string, handler: Handler): this {
    this.#handlers.set(`/${service}/${method}`, handler);
    return this;
  }

  /** Listens on `socketPath` (an old socket file there is replaced). */
  async listen(socketPath: string, mode = 0o600): Promise<void> {
    if (Buffer.byteLength(socketPath) > MAX_SOCKET_PATH) {
      throw new IsulaError('INTERNAL', `ttrpc socket path ${socketPath} is longer than ${MAX_SOCKET_PATH} bytes`);
    }
    await fs.promises.rm(socketPath, { force: true });
    const server = net.createServer((sock) => this.#serve(sock));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(socketPath, () => { server.off('error', reject); resolve(); });
    });
    await fs.promises.chmod(socketPath, mode);
    this.#server = server;
    this.#path = socketPath;
  }

  get connections(): number {
    return this.#conns.size;
  }

  /** Stops listening, drops every connection, removes the socket file. */
  async close(): Promise<void> {
    for (const c of this.#conns) c.destroy();
    this.#conns.clear();
    const server = this.#server;
    this.#server = undefined;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
    if (this.#path) await fs.promises.rm(this.#path, { force: true });
  }

  #serve(sock: net.Socket): void {
    this.#conns.add(sock);
    const decoder = new FrameDecoder(this.#maxBytes);
    const inflight = new Set<AbortController>();
    sock.on('data', (chunk: Buffer) => {
      let frames: Frame[];
      try {
        frames = decoder.push(chunk);
      } catch {
        sock.destroy();
        return;
      }
      for (const f of frames) this.#onRequest(sock, f, inflight);
    });
    sock.on('error', () => sock.destroy());
    sock.on('close', () => {
      this.#conns.delete(sock);
      for (const ac of inflight) ac.abort();
    });
  }

  #reply(sock: net.Socket, streamId: number, status: { code: number; message: string } | undefined, payload: Uint8Array): void {
    if (sock.destroyed) return;
    let frame: Buffer;
    try {
      frame = encodeFrame(streamId, TYPE_RESPONSE, encode('ttrpc.Response', { ...(status && { status }), payload }), 0, this.#maxBytes);
    } catch (err) {
      frame = encodeFrame(streamId, TYPE_RESPONSE, encode('ttrpc.Response', { status: { code: GrpcCode.RESOURCE_EXHAUSTED, message: (err as Error).message } }));
    }
    sock.write(frame);
  }

  #onRequest(sock: net.Socket, frame: Frame, inflight: Set<AbortController>): void {
    if (frame.type !== TYPE_REQUEST) return;
    if (frame.oversizeBytes !== undefined) {
      this.#reply(sock, frame.streamId, { code: GrpcCode.RESOURCE_EXHAUSTED, message: `message length ${frame.oversizeBytes} exceeds maximum message size of ${this.#maxBytes}` }, new Uint8Array());
      return;
    }
    let req: { service: string; method: string; payload: Buffer; timeout_nano: number; metadata: { key: string; value: string }[] };
    try {
      req = decode('ttrpc.Request', frame.payload);
    } catch (err) {
      this.#reply(sock, frame.streamId, { code: GrpcCode.INVALID_ARGUMENT, message: `undecodable request: ${(err as Error).message}` }, new Uint8Array());
      return;
    }
    const handler = this.#handlers.get(`/${req.service}/${req.method}`);
    if (!handler) {
      this.#reply(sock, frame.streamId, { code: GrpcCode.UNIMPLEMENTED, message: `/${req.service}/${req.method} not implemented` }, new Uint8Array());
      return;
    }
    const metadata = new Map<string, string[]>();
    for (const kv of req.metadata) metadata.set(kv.key, [...(metadata.get(kv.key) ?? []), kv.value]);
    const ac = new AbortController();
    inflight.add(ac);
    let timer: NodeJS.Timeout | undefined;
    let answered = false;
    const finish = (status: { code: number; message: string } | undefined, payload: Uint8Array) => {
      if (answered) return;
      answered = true;
      if (timer) clearTimeout(timer);
      inflight.delete(ac);
      this.#reply(sock, frame.streamId, status, payload);
    };
    if (req.timeout_nano > 0) {
      timer = setTimeout(() => {
        ac.abort();
        finish({ code: GrpcCode.DEADLINE_EXCEEDED, message: 'deadline exceeded' }, new Uint8Array());
      }, Math.max(1, Math.ceil(req.timeout_nano / 1e6)));
    }
    Promise.resolve()
      .then(() => handler({ payload: req.payload, metadata, namespace: metadata.get(NAMESPACE_KEY)?.[0] ?? '', signal: ac.signal }))
      .then((out) => finish(undefined, out), (err: unknown) => finish(errorToStatus(err), new Uint8Array()));
  }
}
