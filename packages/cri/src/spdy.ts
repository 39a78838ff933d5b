/**
 * SPDY/3.1 framing, as the Kubernetes streaming protocols use it
 * (`v4.channel.k8s.io`, `portforward.k8s.io` over an HTTP upgrade to
 * `SPDY/3.1`): the frame codec, the name/value header blocks with their zlib
 * compression (one stream per direction, SPDY/3's dictionary), and a session
 * of multiplexed streams with flow-control windows.
 *
 * Written from the SPDY/3 draft (draft-mbelshe-httpbis-spdy-00) and the
 * SPDY/3.1 changes (session-level WINDOW_UPDATE on stream 0). No server push,
 * no priorities (accepted, ignored), no CREDENTIAL frames.
 */
import { EventEmitter } from 'node:events';
import { Duplex } from 'node:stream';
import zlib from 'node:zlib';

export const SPDY_VERSION = 3;

export const FrameType = {
  SYN_STREAM: 1,
  SYN_REPLY: 2,
  RST_STREAM: 3,
  SETTINGS: 4,
  PING: 6,
  GOAWAY: 7,
  HEADERS: 8,
  WINDOW_UPDATE: 9,
} as const;

export const FLAG_FIN = 0x01;
export const FLAG_UNIDIRECTIONAL = 0x02;
export const FLAG_SETTINGS_CLEAR = 0x01;

/** RST_STREAM status codes. */
export const RstStatus = {
  PROTOCOL_ERROR: 1,
  INVALID_STREAM: 2,
  REFUSED_STREAM: 3,
  UNSUPPORTED_VERSION: 4,
  CANCEL: 5,
  INTERNAL_ERROR: 6,
  FLOW_CONTROL_ERROR: 7,
  STREAM_IN_USE: 8,
  STREAM_ALREADY_CLOSED: 9,
  FRAME_TOO_LARGE: 11,
} as const;

/** GOAWAY status codes. */
export const GoawayStatus = { OK: 0, PROTOCOL_ERROR: 1, INTERNAL_ERROR: 2 } as const;

export const SETTINGS_INITIAL_WINDOW_SIZE = 7;
/** The window every stream (and, in 3.1, the session) starts with. */
export const DEFAULT_WINDOW = 64 * 1024;
const MAX_WINDOW = 0x7fffffff;
/** Frame lengths are 24 bits. */
const MAX_FRAME_PAYLOAD = 0xffffff;

/**
 * The SPDY/3 header compression dictionary (draft section 2.6.10.1): the
 * length-prefixed header names and values below, then a run of common
 * status codes and value fragments; 1423 bytes.
 */
export const HEADER_DICTIONARY: Buffer = (() => {
  const words = [
    'options', 'head', 'post', 'put', 'delete', 'trace', 'accept', 'accept-charset', 'accept-encoding', 'accept-language',
    'accept-ranges', 'age', 'allow', 'authorization', 'cache-control', 'connection', 'content-base', 'content-encoding',
    'content-language', 'content-length', 'content-location', 'content-md5', 'content-range', 'content-type', 'date', 'etag',
    'expect', 'expires', 'from', 'host', 'if-match', 'if-modified-since', 'if-none-match', 'if-range', 'if-unmodified-since',
    'last-modified', 'location', 'max-forwards', 'pragma', 'proxy-authenticate', 'proxy-authorization', 'range', 'referer',
    'retry-after', 'server', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'user-agent', 'vary', 'via', 'warning',
    'www-authenticate', 'method', 'get', 'status', '200 OK', 'version', 'HTTP/1.1', 'url', 'public', 'set-cookie', 'keep-alive',
    'origin',
  ];
  const tail = '100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505'
    + '203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request401 Unauthorized'
    + '403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented503 Service Unavailable'
    + 'Jan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMT'
    + 'chunked,text/html,image/png,image/jpg,image/gif,application/xml,application/xhtml+xml,text/plain,'
    + 'text/javascript,publicprivatemax-age=gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0.';
  const parts: Buffer[] = [];
  for (const w of words) {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(w.length);
    parts.push(len, Buffer.from(w, 'latin1'));
  }
  parts.push(Buffer.from(tail, 'latin1'));
  return Buffer.concat(parts);
})();

// ---- frames ------------------------------------------------------------------

export type Frame =
  | { type: 'data'; streamId: number; fin: boolean; data: Buffer }
  | { type: 'syn_stream'; streamId: number; associatedId: number; priority: number; fin: boolean; unidirectional: boolean; headerBlock: Buffer }
  | { type: 'syn_reply'; streamId: number; fin: boolean; headerBlock: Buffer }
  | { type: 'rst_stream'; streamId: number; status: number }
  | { type: 'settings'; clear: boolean; entries: { id: number; flags: number; value: number }[] }
  | { type: 'ping'; id: number }
  | { type: 'goaway'; lastStreamId: number; status: number }
  | { type: 'headers'; streamId: number; fin: boolean; headerBlock: Buffer }
  | { type: 'window_update'; streamId: number; delta: number }
  /** A control frame type this version does not know: the spec says ignore it. */
  | { type: 'unknown'; controlType: number; flags: number; payload: Buffer };

/** A malformed frame or a protocol violation; `streamId` set when only that stream is at fault (RST_STREAM, not GOAWAY). */
export class SpdyProtocolError extends Error {
  readonly streamId: number | undefined;
  readonly status: number;
  constructor(message: string, opts: { streamId?: number; status?: number } = {}) {
    super(message);
    this.name = 'SpdyProtocolError';
    this.streamId = opts.streamId;
    this.status = opts.status ?? RstStatus.PROTOCOL_ERROR;
  }
}

function controlHeader(type: number, flags: number, length: number): Buffer {
  if (length > MAX_FRAME_PAYLOAD) throw new SpdyProtocolError(`frame payload of ${length} bytes is over the 24-bit limit`, { status: RstStatus.FRAME_TOO_LARGE });
  const h = Buffer.alloc(8);
  h.writeUInt16BE(0x8000 | SPDY_VERSION, 0);
  h.writeUInt16BE(type, 2);
  h.writeUInt32BE(((flags & 0xff) << 24 | length) >>> 0, 4);
  return h;
}

function streamIdOk(id: number): void {
  if (!Number.isInteger(id) || id < 0 || id > MAX_WINDOW) throw new RangeError(`stream id ${id} out of range`);
}

/** One frame on the wire. Header blocks must be compressed already. */
export function encodeFrame(f: Frame): Buffer {
  switch (f.type) {
    case 'data': {
      streamIdOk(f.streamId);
      if (f.data.length > MAX_FRAME_PAYLOAD) throw new SpdyProtocolError('data frame over the 24-bit limit', { status: RstStatus.FRAME_TOO_LARGE });
      const h = Buffer.alloc(8);
      h.writeUInt32BE(f.streamId & MAX_WINDOW, 0);
      h.writeUInt32BE(((f.fin ? FLAG_FIN : 0) << 24 | f.data.length) >>> 0, 4);
      return Buffer.concat([h, f.data]);
    }
    case 'syn_stream': {
      const p = Buffer.alloc(10);
      p.writeUInt32BE(f.streamId & MAX_WINDOW, 0);
      p.writeUInt32BE(f.associatedId & MAX_WINDOW, 4);
      p[8] = (f.priority & 0x7) << 5;
      p[9] = 0; // slot
      const flags = (f.fin ? FLAG_FIN : 0) | (f.unidirectional ? FLAG_UNIDIRECTIONAL : 0);
      return Buffer.concat([controlHeader(FrameType.SYN_STREAM, flags, 10 + f.headerBlock.length), p, f.headerBlock]);
    }
    case 'syn_reply':
    case 'headers': {
      const p = Buffer.alloc(4);
      p.writeUInt32BE(f.streamId & MAX_WINDOW, 0);
      const type = f.type === 'syn_reply' ? FrameType.SYN_REPLY : FrameType.HEADERS;
      return Buffer.concat([controlHeader(type, f.fin ? FLAG_FIN : 0, 4 + f.headerBlock.length), p, f.headerBlock]);
    }
    case 'rst_stream': {
      const p = Buffer.alloc(8);
      p.writeUInt32BE(f.streamId & MAX_WINDOW, 0);
      p.writeUInt32BE(f.status >>> 0, 4);
      return Buffer.concat([controlHeader(FrameType.RST_STREAM, 0, 8), p]);
    }
    case 'settings': {
      const p = Buffer.alloc(4 + 8 * f.entries.length);
      p.writeUInt32BE(f.entries.length, 0);
      f.entries.forEach((e, i) => {
        p.writeUInt32BE(((e.flags & 0xff) << 24 | (e.id & 0xffffff)) >>> 0, 4 + 8 * i);
        p.writeUInt32BE(e.value >>> 0, 8 + 8 * i);
      });
      return Buffer.concat([controlHeader(FrameType.SETTINGS, f.clear ? FLAG_SETTINGS_CLEAR : 0, p.length), p]);
    }
    case 'ping': {
      const p = Buffer.alloc(4);
      p.writeUInt32BE(f.id >>> 0, 0);
      return Buffer.concat([controlHeader(FrameType.PING, 0, 4), p]);
    }
    case 'goaway': {
      const p = Buffer.alloc(8);
      p.writeUInt32BE(f.lastStreamId & MAX_WINDOW, 0);
      p.writeUInt32BE(f.status >>> 0, 4);
      return Buffer.concat([controlHeader(FrameType.GOAWAY, 0, 8), p]);
    }
    case 'window_update': {
      if (f.delta < 1 || f.delta > MAX_WINDOW) throw new RangeError(`window delta ${f.delta} out of range`);
      const p = Buffer.alloc(8);
      p.writeUInt32BE(f.streamId & MAX_WINDOW, 0);
      p.writeUInt32BE(f.delta & MAX_WINDOW, 4);
      return Buffer.concat([controlHeader(FrameType.WINDOW_UPDATE, 0, 8), p]);
    }
    case 'unknown':
      return Buffer.concat([controlHeader(f.controlType, f.flags, f.payload.length), f.payload]);
  }
}

/**
 * Splits a byte stream into frames, whatever the chunking: a frame split
 * across reads waits for its rest; several in one read come out together.
 * Throws SpdyProtocolError on a malformed frame (the session then sends
 * GOAWAY, or RST_STREAM when `streamId` is set), and past `maxFrame` bytes.
 */
export class FrameParser {
  #buf: Buffer = Buffer.alloc(0);
  readonly #maxFrame: number;
  constructor(opts: { maxFrame?: number } = {}) {
    this.#maxFrame = opts.maxFrame ?? MAX_FRAME_PAYLOAD;
  }

  /** Bytes held for an incomplete frame. */
  get pending(): number { return this.#buf.length; }

  push(chunk: Buffer): Frame[] {
    this.#buf = this.#buf.length === 0 ? chunk : Buffer.concat([this.#buf, chunk]);
    const out: Frame[] = [];
    while (this.#buf.length >= 8) {
      const length = this.#buf.readUInt32BE(4) & 0xffffff;
      if (length > this.#maxFrame) throw new SpdyProtocolError(`frame of ${length} bytes is over the ${this.#maxFrame}-byte limit`, { status: RstStatus.FRAME_TOO_LARGE });
      if (this.#buf.length < 8 + length) break;
      const frame = this.#buf.subarray(0, 8 + length);
      this.#buf = this.#buf.subarray(8 + length);
      out.push(parseFrame(frame));
    }
    return out;
  }
}

function parseFrame(b: Buffer): Frame {
  const flags = b[4] as number;
  const payload = b.subarray(8);
  if (((b[0] as number) & 0x80) === 0) {
    return { type: 'data', streamId: b.readUInt32BE(0) & MAX_WINDOW, fin: (flags & FLAG_FIN) !== 0, data: Buffer.from(payload) };
  }
  const version = b.readUInt16BE(0) & 0x7fff;
  if (version !== SPDY_VERSION) throw new SpdyProtocolError(`SPDY version ${version} is not supported (only 3)`, { status: RstStatus.UNSUPPORTED_VERSION });
  const type = b.readUInt16BE(2);
  const need = (n: number, what: string) => {
    if (payload.length < n) throw new SpdyProtocolError(`${what} frame of ${payload.length} bytes is too short (needs ${n})`);
  };
  const exact = (n: number, what: string) => {
    if (payload.length !== n) throw new SpdyProtocolError(`${what} frame must be ${n} bytes, got ${payload.length}`);
  };
  const fin = (flags & FLAG_FIN) !== 0;
  switch (type) {
    case FrameType.SYN_STREAM: {
      need(10, 'SYN_STREAM');
      const streamId = payload.readUInt32BE(0) & MAX_WINDOW;
      if (streamId === 0) throw new SpdyProtocolError('SYN_STREAM with stream id 0');
      return { type: 'syn_stream', streamId, associatedId: payload.readUInt32BE(4) & MAX_WINDOW, priority: (payload[8] as number) >> 5, fin, unidirectional: (flags & FLAG_UNIDIRECTIONAL) !== 0, headerBlock: Buffer.from(payload.subarray(10)) };
    }
    case FrameType.SYN_REPLY:
    case FrameType.HEADERS: {
      const what = type === FrameType.SYN_REPLY ? 'SYN_REPLY' : 'HEADERS';
      need(4, what);
      const streamId = payload.readUInt32BE(0) & MAX_WINDOW;
      if (streamId === 0) throw new SpdyProtocolError(`${what} with stream id 0`);
      return { type: type === FrameType.SYN_REPLY ? 'syn_reply' : 'headers', streamId, fin, headerBlock: Buffer.from(payload.subarray(4)) };
    }
    case FrameType.RST_STREAM: {
      exact(8, 'RST_STREAM');
      return { type: 'rst_stream', streamId: payload.readUInt32BE(0) & MAX_WINDOW, status: payload.readUInt32BE(4) };
    }
    case FrameType.SETTINGS: {
      need(4, 'SETTINGS');
      const n = payload.readUInt32BE(0);
      if (payload.length !== 4 + 8 * n) throw new SpdyProtocolError(`SETTINGS frame says ${n} entries but holds ${payload.length - 4} bytes`);
      const entries = [];
      for (let i = 0; i < n; i++) {
        const idf = payload.readUInt32BE(4 + 8 * i);
        entries.push({ flags: idf >>> 24, id: idf & 0xffffff, value: payload.readUInt32BE(8 + 8 * i) });
      }
      return { type: 'settings', clear: (flags & FLAG_SETTINGS_CLEAR) !== 0, entries };
    }
    case FrameType.PING:
      exact(4, 'PING');
      return { type: 'ping', id: payload.readUInt32BE(0) };
    case FrameType.GOAWAY:
      exact(8, 'GOAWAY');
      return { type: 'goaway', lastStreamId: payload.readUInt32BE(0) & MAX_WINDOW, status: payload.readUInt32BE(4) };
    case FrameType.WINDOW_UPDATE: {
      exact(8, 'WINDOW_UPDATE');
      const streamId = payload.readUInt32BE(0) & MAX_WINDOW;
      const delta = payload.readUInt32BE(4) & MAX_WINDOW;
      if (delta === 0) throw new SpdyProtocolError('WINDOW_UPDATE with a zero delta', { streamId, status: RstStatus.FLOW_CONTROL_ERROR });
      return { type: 'window_update', streamId, delta };
    }
    default:
      return { type: 'unknown', controlType: type, flags, payload: Buffer.from(payload) };
  }
}

// ---- header blocks -------------------------------------------------------------

/** Header names are lower case; a name with several values carries them NUL-separated. */
export type Headers = Map<string, string[]>;

/** The uncompressed name/value block: 32-bit count, then 32-bit-length-prefixed names and values. */
export function encodeHeaderBlock(headers: Headers | Record<string, string | string[]>): Buffer {
  const entries = headers instanceof Map ? [...headers.entries()] : Object.entries(headers).map(([k, v]) => [k, Array.isArray(v) ? v : [v]] as [string, string[]]);
  const parts: Buffer[] = [];
  const count = Buffer.alloc(4);
  count.writeUInt32BE(entries.length);
  parts.push(count);
  const seen = new Set<string>();
  for (const [name, values] of entries) {
    const n = name.toLowerCase();
    if (n === '' || seen.has(n)) throw new SpdyProtocolError(`header name ${JSON.stringify(name)} is empty or repeated`);
    seen.add(n);
    for (const v of values) if (v.includes('\0')) throw new SpdyProtocolError(`header ${n} has a NUL in a value`);
    for (const s of [Buffer.from(n, 'utf8'), Buffer.from(values.join('\0'), 'utf8')]) {
      const len = Buffer.alloc(4);
      len.writeUInt32BE(s.length);
      parts.push(len, s);
    }
  }
  return Buffer.concat(parts);
}

/** Parses an uncompressed block; throws SpdyProtocolError on truncation, empty or repeated or upper-case names. */
export function decodeHeaderBlock(b: Buffer): Headers {
  const out: Headers = new Map();
  if (b.length < 4) throw new SpdyProtocolError('header block shorter than its count');
  const n = b.readUInt32BE(0);
  let off = 4;
  const str = (what: string): string => {
    if (off + 4 > b.length) throw new SpdyProtocolError(`header block truncated in a ${what} length`);
    const len = b.readUInt32BE(off);
    off += 4;
    if (off + len > b.length) throw new SpdyProtocolError(`header block truncated in a ${what} (${len} bytes announced)`);
    const s = b.toString('utf8', off, off + len);
    off += len;
    return s;
  };
  // Each pair takes 8 bytes at least: a count past that is a lie, not a reason to loop.
  if (n > (b.length - 4) / 8) throw new SpdyProtocolError(`header block announces ${n} pairs in ${b.length} bytes`);
  for (let i = 0; i < n; i++) {
    const name = str('name');
    if (name === '' || name !== name.toLowerCase()) throw new SpdyProtocolError(`header name ${JSON.stringify(name)} is empty or not lower case`);
    if (out.has(name)) throw new SpdyProtocolError(`header ${name} appears twice`);
    out.set(name, str('value').split('\0'));
  }
  if (off !== b.length) throw new SpdyProtocolError(`header block has ${b.length - off} bytes after its ${n} pairs`);
  return out;
}

/**
 * One direction's header compression: a single zlib stream with SPDY/3's
 * dictionary for the session's life, each block ended by a sync flush.
 * Blocks are compressed strictly in call order.
 */
export class HeaderCompressor {
  readonly #z = zlib.createDeflate({ dictionary: HEADER_DICTIONARY });
  #queue: Promise<unknown> = Promise.resolve();

  compress(block: Buffer): Promise<Buffer> {
    const run = this.#queue.then(() => syncFlush(this.#z, block, Number.MAX_SAFE_INTEGER));
    this.#queue = run.catch(() => undefined);
    return run;
  }

  close(): void { this.#z.destroy(); }
}

/** The other direction: inflates each block as it comes, bounded at `maxBlock` bytes. */
export class HeaderDecompressor {
  readonly #z = zlib.createInflate({ dictionary: HEADER_DICTIONARY });
  readonly #max: number;
  #queue: Promise<unknown> = Promise.resolve();
  #broken: Error | undefined;

  constructor(maxBlock = 256 * 1024) {
    this.#max = maxBlock;
    this.#z.on('error', (err) => { this.#broken = err; });
  }

  decompress(compressed: Buffer): Promise<Buffer> {
    const run = this.#queue.then(async () => {
      if (this.#broken !== undefined) throw new SpdyProtocolError(`header decompression failed: ${this.#broken.message}`);
      try {
        return await syncFlush(this.#z, compressed, this.#max);
      } catch (err) {
        this.#broken = err as Error;
        throw err instanceof SpdyProtocolError ? err : new SpdyProtocolError(`header decompression failed: ${(err as Error).message}`);
      }
    });
    this.#queue = run.catch(() => undefined);
    return run;
  }

  close(): void { this.#z.destroy(); }
}

function syncFlush(z: zlib.Deflate | zlib.Inflate, input: Buffer, max: number): Promise<Buffer> {
  return new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    const onData = (c: Buffer) => {
      chunks.push(c);
      size += c.length;
      if (size > max && !done) finish(new SpdyProtocolError(`header block inflates past ${max} bytes`));
    };
    const onError = (err: Error) => finish(err);
    const finish = (err?: Error) => {
      if (done) return;
      done = true;
      z.off('data', onData);
      z.off('error', onError);
      if (err !== undefined) reject(err);
      else resolve(Buffer.concat(chunks));
    };
    z.on('data', onData);
    z.on('error', onError);
    z.write(input);
    z.flush(zlib.constants.Z_SYNC_FLUSH, () => {
      // Output of the flush is pushed before its callback; drain anything still buffered.
      let c: Buffer | null;
      while ((c = z.read() as Buffer | null) !== null) onData(c);
      finish();
    });
  });
}

// ---- session --------------------------------------------------------------------

export interface SpdySessionOptions {
  /** 'server' answers odd (client-made) stream ids and makes even ones; 'client' the reverse. */
  role: 'server' | 'client';
  /** Our receive window per stream (announced by SETTINGS). */
  initialWindow?: number;
  /** Largest DATA payload we send. */
  maxDataFrame?: number;
}

/**
 * A SPDY session over a byte stream (a socket after the HTTP upgrade).
 * Events: 'stream' (SpdyStream, a peer-made stream: answer it with
 * `reply()`), 'goaway', 'error' (a protocol failure; the session is closed),
 * 'close'.
 *
 * Flow control: we announce our window with SETTINGS, account what the peer
 * sends against it and give credit back with WINDOW_UPDATE as our readers
 * consume. Our own sending honours the peer's windows once the peer shows it
 * keeps them (it sent a WINDOW_UPDATE or an initial window in SETTINGS):
 * Go's spdystream, which every Kubernetes client uses, neither sends nor
 * reads WINDOW_UPDATE, so holding data for credit that never comes would
 * stall every kubectl exec after 64 KiB. Until then TCP is the backpressure,
 * as in spdystream; a peer overrunning a window it never kept is tolerated
 * for the same reason.
 */
export class SpdySession extends EventEmitter {
  readonly #socket: Duplex;
  readonly #role: 'server' | 'client';
  /** Nothing here sends frames near the 16 MiB the format allows: 1 MiB bounds what one peer makes us buffer. */
  readonly #parser = new FrameParser({ maxFrame: 1024 * 1024 });
  readonly #compressor = new HeaderCompressor();
  readonly #decompressor = new HeaderDecompressor();
  readonly #streams = new Map<number, SpdyStream>();
  readonly #pings = new Map<number, () => void>();
  /** Incoming frames run one at a time: a DATA frame waits for its SYN_STREAM's headers. */
  #inbound: Promise<void> = Promise.resolve();
  /** Outgoing frames keep their order even when a header block is still being compressed. */
  #outbound: Promise<void> = Promise.resolve();
  #nextId: number;
  #nextPing: number;
  #lastPeerId = 0;
  #closed = false;
  #goneAway = false;
  /** The peer keeps windows (see the class comment). */
  peerFlowControl = false;
  /** The peer's initial window for new streams (SETTINGS 7). */
  peerInitialWindow = DEFAULT_WINDOW;
  /** SPDY/3.1's session window toward the peer. */
  sessionSendWindow = DEFAULT_WINDOW;
  readonly initialWindow: number;
  readonly maxDataFrame: number;
  #sessionRecvUnacked = 0;
  readonly #windowWaiters = new Set<() => void>();

  constructor(socket: Duplex, opts: SpdySessionOptions) {
    super();
    this.#socket = socket;
    this.#role = opts.role;
    this.#nextId = opts.role === 'client' ? 1 : 2;
    this.#nextPing = opts.role === 'client' ? 1 : 2;
    this.initialWindow = opts.initialWindow ?? DEFAULT_WINDOW;
    this.maxDataFrame = opts.maxDataFrame ?? 16 * 1024;
    // Small control frames (WINDOW_UPDATE, PING) must not wait on Nagle's algorithm.
    (socket as Duplex & { setNoDelay?: (on: boolean) => void }).setNoDelay?.(true);
    socket.on('data', (chunk: Buffer) => this.#onBytes(chunk));
    // Frames read before the peer's close (its last SYN_REPLY, DATA and GOAWAY often share the
    // read that ends, more so in one TLS record) wait for header blocks to be inflated: handle
    // them before the streams are torn down, or their data and replies are lost.
    const afterInbound = () => { void this.#inbound.then(() => this.#terminate()); };
    socket.on('end', afterInbound);
    socket.on('close', afterInbound);
    socket.on('error', () => this.#terminate());
    this.#send(async () => encodeFrame({ type: 'settings', clear: false, entries: [{ id: SETTINGS_INITIAL_WINDOW_SIZE, flags: 0, value: this.initialWindow }] }));
  }

  get closed(): boolean { return this.#closed; }
  get streamCount(): number { return this.#streams.size; }

  /** Feeds bytes read before the session took the socket (the upgrade's `head`). */
  feed(chunk: Buffer): void {
    if (chunk.length > 0) this.#onBytes(chunk);
  }

  /** Opens a stream; resolves with it once the peer's SYN_REPLY came. */
  async openStream(headers: Record<string, string | string[]>, opts: { fin?: boolean; timeoutMs?: number } = {}): Promise<SpdyStream> {
    if (this.#closed || this.#goneAway) throw new Error('the SPDY session is closed');
    const id = this.#nextId;
    this.#nextId += 2;
    const stream = new SpdyStream(this, id, new Map(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), Array.isArray(v) ? v : [v]])), true);
    this.#streams.set(id, stream);
    const block = encodeHeaderBlock(headers);
    this.#send(async () => encodeFrame({ type: 'syn_stream', streamId: id, associatedId: 0, priority: 0, fin: opts.fin === true, unidirectional: false, headerBlock: await this.#compressor.compress(block) }));
    if (opts.fin === true) stream.markLocalFin();
    await stream.replied(opts.timeoutMs ?? 30_000);
    return stream;
  }

  ping(timeoutMs = 10_000): Promise<void> {
    const id = this.#nextPing;
    this.#nextPing += 2;
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => { this.#pings.delete(id); reject(new Error('SPDY ping timed out')); }, timeoutMs);
      this.#pings.set(id, () => { clearTimeout(timer); resolve(); });
      this.#send(async () => encodeFrame({ type: 'ping', id }));
    });
  }

  /** GOAWAY, then the socket ends once the queued frames are out. */
  close(status: number = GoawayStatus.OK): void {
    if (this.#closed) return;
    if (!this.#goneAway) {
      this.#goneAway = true;
      this.#send(async () => encodeFrame({ type: 'goaway', lastStreamId: this.#lastPeerId, status }));
    }
    void this.#outbound.then(() => { this.#socket.end(); this.#terminate(); });
  }

  /** Stops at once: the socket is destroyed, every stream errors. */
  destroy(): void {
    this.#socket.destroy();
    this.#terminate();
  }

  // -- used by SpdyStream --

  /** Queues a frame; the promise settles once it was handed to the socket (its write callback). */
  send(build: () => Promise<Buffer> | Buffer): Promise<void> {
    return this.#send(build);
  }

  compressHeaders(headers: Record<string, string | string[]>): Promise<Buffer> {
    return this.#compressor.compress(encodeHeaderBlock(headers));
  }

  /** Credit for bytes our reader consumed: the session window in 3.1. */
  creditSession(n: number): void {
    this.#sessionRecvUnacked += n;
    if (this.#sessionRecvUnacked >= this.initialWindow / 2) {
      const delta = this.#sessionRecvUnacked;
      this.#sessionRecvUnacked = 0;
      this.#send(async () => encodeFrame({ type: 'window_update', streamId: 0, delta }));
    }
  }

  /** Resolves when any window may have grown (or the session closed). */
  windowChanged(): Promise<void> {
    return new Promise<void>((resolve) => this.#windowWaiters.add(resolve));
  }

  forget(id: number): void {
    this.#streams.delete(id);
    if (this.#goneAway && this.#streams.size === 0) this.close();
  }

  // -- internals --

  #send(build: () => Promise<Buffer> | Buffer): Promise<void> {
    const run = this.#outbound.then(async () => {
      if (this.#closed) return;
      const frame = await build();
      if (this.#socket.destroyed || this.#socket.writableEnded) return;
      await new Promise<void>((resolve) => {
        if (!this.#socket.write(frame)) this.#socket.once('drain', resolve);
        else resolve();
      });
    });
    this.#outbound = run.catch((err: unknown) => { this.#fail(err); });
    return run;
  }

  #wakeWindows(): void {
    const waiters = [...this.#windowWaiters];
    this.#windowWaiters.clear();
    for (const w of waiters) w();
  }

  #onBytes(chunk: Buffer): void {
    if (this.#closed) return;
    let frames: Frame[];
    try {
      frames = this.#parser.push(chunk);
    } catch (err) {
      this.#fail(err);
      return;
    }
    for (const f of frames) {
      this.#inbound = this.#inbound.then(() => this.#handle(f)).catch((err: unknown) => {
        if (err instanceof SpdyProtocolError && err.streamId !== undefined && err.streamId !== 0) this.#reset(err.streamId, err.status);
        else this.#fail(err);
      });
    }
  }

  #reset(id: number, status: number): void {
    this.#send(async () => encodeFrame({ type: 'rst_stream', streamId: id, status }));
    const s = this.#streams.get(id);
    if (s !== undefined) s.onReset(status, false);
  }

  #peerMade(id: number): boolean {
    return this.#role === 'server' ? id % 2 === 1 : id % 2 === 0;
  }

  async #handle(f: Frame): Promise<void> {
    if (this.#closed) return;
    switch (f.type) {
      case 'syn_stream': {
        if (!this.#peerMade(f.streamId) || f.streamId <= this.#lastPeerId) {
          throw new SpdyProtocolError(`SYN_STREAM ${f.streamId}: ids must be ${this.#role === 'server' ? 'odd' : 'even'} and increasing (last ${this.#lastPeerId})`);
        }
        this.#lastPeerId = f.streamId;
        // Decompress even a stream we refuse: the zlib stream is shared by every block.
        const headers = decodeHeaderBlock(await this.#decompressor.decompress(f.headerBlock));
        if (this.#goneAway) { this.#reset(f.streamId, RstStatus.REFUSED_STREAM); return; }
        const stream = new SpdyStream(this, f.streamId, headers, false);
        this.#streams.set(f.streamId, stream);
        if (f.fin) stream.onData(Buffer.alloc(0), true);
        if (f.unidirectional) stream.markLocalFin();
        this.emit('stream', stream);
        return;
      }
      case 'syn_reply': {
        const headers = decodeHeaderBlock(await this.#decompressor.decompress(f.headerBlock));
        const s = this.#streams.get(f.streamId);
        if (s === undefined || s.peerMade) throw new SpdyProtocolError(`SYN_REPLY for stream ${f.streamId}, which we did not open`, { streamId: f.streamId, status: RstStatus.INVALID_STREAM });
        s.onReply(headers, f.fin);
        return;
      }
      case 'headers': {
        const headers = decodeHeaderBlock(await this.#decompressor.decompress(f.headerBlock));
        const s = this.#streams.get(f.streamId);
        if (s === undefined) throw new SpdyProtocolError(`HEADERS for unknown stream ${f.streamId}`, { streamId: f.streamId, status: RstStatus.INVALID_STREAM });
        s.onHeaders(headers, f.fin);
        return;
      }
      case 'data': {
        const s = this.#streams.get(f.streamId);
        if (s === undefined) throw new SpdyProtocolError(`DATA for unknown stream ${f.streamId}`, { streamId: f.streamId, status: RstStatus.INVALID_STREAM });
        s.onData(f.data, f.fin);
        return;
      }
      case 'rst_stream': {
        this.#streams.get(f.streamId)?.onReset(f.status, true);
        return;
      }
      case 'settings': {
        for (const e of f.entries) {
          if (e.id !== SETTINGS_INITIAL_WINDOW_SIZE) continue;
          if (e.value > MAX_WINDOW) throw new SpdyProtocolError(`SETTINGS initial window ${e.value} is over 2^31-1`);
          const diff = e.value - this.peerInitialWindow;
          this.peerInitialWindow = e.value;
          this.peerFlowControl = true;
          for (const s of this.#streams.values()) s.sendWindow += diff;
        }
        this.#wakeWindows();
        return;
      }
      case 'window_update': {
        this.peerFlowControl = true;
        if (f.streamId === 0) {
          this.sessionSendWindow += f.delta;
          if (this.sessionSendWindow > MAX_WINDOW) throw new SpdyProtocolError('session window over 2^31-1');
        } else {
          const s = this.#streams.get(f.streamId);
          if (s !== undefined) {
            s.sendWindow += f.delta;
            if (s.sendWindow > MAX_WINDOW) throw new SpdyProtocolError(`stream ${f.streamId} window over 2^31-1`, { streamId: f.streamId, status: RstStatus.FLOW_CONTROL_ERROR });
          }
        }
        this.#wakeWindows();
        return;
      }
      case 'ping': {
        if (this.#peerMade(f.id) || f.id === 0) {
          this.#send(async () => encodeFrame({ type: 'ping', id: f.id }));
        } else {
          const done = this.#pings.get(f.id);
          this.#pings.delete(f.id);
          done?.();
        }
        return;
      }
      case 'goaway': {
        this.#goneAway = true;
        this.emit('goaway', f.status);
        // Streams we opened past its last good id were never seen: they fail.
        for (const s of this.#streams.values()) if (!s.peerMade && s.id > f.lastStreamId) s.onReset(RstStatus.REFUSED_STREAM, true);
        if (this.#streams.size === 0) this.close();
        return;
      }
      case 'unknown':
        return;
    }
  }

  #fail(err: unknown): void {
    if (this.#closed) return;
    const status = err instanceof SpdyProtocolError ? GoawayStatus.PROTOCOL_ERROR : GoawayStatus.INTERNAL_ERROR;
    if (!this.#goneAway && !this.#socket.destroyed) {
      this.#goneAway = true;
      // Written directly: the queue may be what failed.
      try { this.#socket.write(encodeFrame({ type: 'goaway', lastStreamId: this.#lastPeerId, status })); } catch { /* closing anyway */ }
    }
    if (this.listenerCount('error') > 0) this.emit('error', err);
    this.#socket.end();
    setTimeout(() => this.#socket.destroy(), 1000).unref();
    this.#terminate();
  }

  #terminate(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const s of [...this.#streams.values()]) s.onSessionClosed();
    this.#streams.clear();
    this.#wakeWindows();
    this.#compressor.close();
    this.#decompressor.close();
    this.emit('close');
  }
}

/**
 * One SPDY stream as a Duplex: what the peer sends is readable (its FIN is
 * the end), what we write goes out as DATA frames (end() sends FIN).
 */
export class SpdyStream extends Duplex {
  readonly id: number;
  readonly headers: Headers;
  /** Opened by the peer (we answer with reply()). */
  readonly peerMade: boolean;
  sendWindow: number;
  readonly #session: SpdySession;
  #recvWindow: number;
  #recvUnacked = 0;
  #replied = false;
  #replyHeaders: Headers | undefined;
  #replyWaiters: { resolve: () => void; reject: (e: Error) => void }[] = [];
  #remoteFin = false;
  #localFin = false;
  #reset = false;

  constructor(session: SpdySession, id: number, headers: Headers, ourOwn: boolean) {
    super({ allowHalfOpen: true });
    this.#session = session;
    this.id = id;
    this.headers = headers;
    this.peerMade = !ourOwn;
    this.sendWindow = session.peerInitialWindow;
    this.#recvWindow = session.initialWindow;
  }

  /** The first value of a header, '' when absent. */
  header(name: string): string {
    return this.headers.get(name.toLowerCase())?.[0] ?? '';
  }

  get replyHeaders(): Headers | undefined { return this.#replyHeaders; }

  /** SYN_REPLY to a peer-made stream. */
  reply(headers: Record<string, string | string[]> = {}, fin = false): Promise<void> {
    if (!this.peerMade) throw new Error('reply() is for streams the peer opened');
    if (this.#replied) throw new Error(`stream ${this.id} was answered already`);
    this.#replied = true;
    if (fin) this.markLocalFin();
    return this.#session.send(async () => encodeFrame({ type: 'syn_reply', streamId: this.id, fin, headerBlock: await this.#session.compressHeaders(headers) }));
  }

  /** RST_STREAM (CANCEL by default): both directions end at once. */
  reset(status: number = RstStatus.CANCEL): void {
    if (this.#reset) return;
    this.#session.send(async () => encodeFrame({ type: 'rst_stream', streamId: this.id, status }));
    this.onReset(status, false);
  }

  replied(timeoutMs: number): Promise<void> {
    if (this.#replyHeaders !== undefined) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no SYN_REPLY for stream ${this.id} in ${timeoutMs} ms`)), timeoutMs);
      this.#replyWaiters.push({ resolve: () => { clearTimeout(timer); resolve(); }, reject: (e) => { clearTimeout(timer); reject(e); } });
    });
  }

  markLocalFin(): void {
    this.#localFin = true;
    this.#maybeDone();
  }

  onReply(headers: Headers, fin: boolean): void {
    this.#replyHeaders = headers;
    for (const w of this.#replyWaiters) w.resolve();
    this.#replyWaiters = [];
    if (fin) this.onData(Buffer.alloc(0), true);
  }

  onHeaders(headers: Headers, fin: boolean): void {
    for (const [k, v] of headers) this.headers.set(k, v);
    if (fin) this.onData(Buffer.alloc(0), true);
  }

  onData(data: Buffer, fin: boolean): void {
    if (this.#remoteFin) throw new SpdyProtocolError(`DATA on stream ${this.id} after its FIN`, { streamId: this.id, status: RstStatus.STREAM_ALREADY_CLOSED });
    if (data.length > 0) {
      this.#recvWindow -= data.length;
      if (this.#recvWindow < 0 && this.#session.peerFlowControl) throw new SpdyProtocolError(`stream ${this.id} overran its window`, { streamId: this.id, status: RstStatus.FLOW_CONTROL_ERROR });
      this.#recvUnacked += data.length;
      this.#session.creditSession(data.length);
      if (this.push(data)) this.#credit();
    }
    if (fin) {
      this.#remoteFin = true;
      this.push(null);
      this.#maybeDone();
    }
  }

  onReset(status: number, byPeer: boolean): void {
    if (this.#reset) return;
    this.#reset = true;
    this.#remoteFin = true;
    this.#localFin = true;
    for (const w of this.#replyWaiters) w.reject(new Error(`stream ${this.id} was reset (status ${status})`));
    this.#replyWaiters = [];
    // A CANCEL from the peer is a close, not a failure; other codes are errors.
    if (byPeer && status !== RstStatus.CANCEL) this.destroy(new Error(`stream ${this.id} reset by the peer (status ${status})`));
    else this.destroy();
    this.#session.forget(this.id);
  }

  onSessionClosed(): void {
    for (const w of this.#replyWaiters) w.reject(new Error('the SPDY session closed'));
    this.#replyWaiters = [];
    if (!this.#remoteFin) { this.#remoteFin = true; this.push(null); }
    this.#localFin = true;
    this.destroy();
  }

  #credit(): void {
    if (this.#reset || this.#remoteFin) return;
    if (this.#recvUnacked >= this.#session.initialWindow / 2) {
      const delta = this.#recvUnacked;
      this.#recvUnacked = 0;
      this.#recvWindow += delta;
      void this.#session.send(async () => encodeFrame({ type: 'window_update', streamId: this.id, delta }));
    }
  }

  #maybeDone(): void {
    if (this.#remoteFin && this.#localFin) this.#session.forget(this.id);
  }

  override _read(): void {
    this.#credit();
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.#writeData(chunk).then(() => cb(), (err: unknown) => cb(err as Error));
  }

  override _final(cb: (err?: Error | null) => void): void {
    if (this.#localFin || this.#reset) { cb(); return; }
    this.#localFin = true;
    this.#session.send(() => encodeFrame({ type: 'data', streamId: this.id, fin: true, data: Buffer.alloc(0) })).then(() => { this.#maybeDone(); cb(); }, (err: unknown) => cb(err as Error));
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    if (!this.#reset && !(this.#localFin && this.#remoteFin) && !this.#session.closed) {
      // Going away half-way: tell the peer.
      this.#reset = true;
      void this.#session.send(async () => encodeFrame({ type: 'rst_stream', streamId: this.id, status: RstStatus.CANCEL }));
      this.#session.forget(this.id);
    }
    cb(err);
  }

  async #writeData(chunk: Buffer): Promise<void> {
    let off = 0;
    // Bounded: each pass sends at least one byte or waits for a window change (or the session's end).
    while (off < chunk.length) {
      if (this.#reset || this.#session.closed) throw new Error(`stream ${this.id} is closed`);
      if (this.#localFin) throw new Error(`stream ${this.id} was ended`);
      let n = Math.min(chunk.length - off, this.#session.maxDataFrame);
      if (this.#session.peerFlowControl) {
        n = Math.min(n, this.sendWindow, this.#session.sessionSendWindow);
        if (n <= 0) { await this.#session.windowChanged(); continue; }
        this.sendWindow -= n;
        this.#session.sessionSendWindow -= n;
      }
      const data = chunk.subarray(off, off + n);
      off += n;
      await this.#session.send(() => encodeFrame({ type: 'data', streamId: this.id, fin: false, data }));
    }
  }
}
