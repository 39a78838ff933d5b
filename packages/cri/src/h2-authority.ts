/**
 * The CRI socket's one concession to older gRPC clients: the grpc-go that
 * crictl/critest 1.26 (and kubelets of that era) vendor sends the unix
 * socket's PATH as the HTTP/2 `:authority`. Node's HTTP/2 (nghttp2) checks the
 * authority's characters and resets such a stream with PROTOCOL_ERROR before
 * grpc-js sees it, and Node has no switch to turn that check off.
 *
 * So the plugin owns the socket and relays each connection to grpc-js
 * (`Server.createConnectionInjector`), watching the client→server bytes:
 *
 * - the first header block of the connection is decoded (HPACK, with a
 *   decoder mirroring the client's encoder); if its `:authority` (or `host`)
 *   is valid the connection becomes a plain pipe from there on (every client
 *   that sends a proper authority, grpc-js's included, costs a frame-header
 *   parse of its first few frames, nothing more);
 * - otherwise that block and every later one is decoded, an invalid authority
 *   is replaced by `localhost` (what newer kubelets send), and the
 *   block re-encoded as literals without indexing, so the server's decoder
 *   never holds dynamic-table state the client's encoder did not mean; frame
 *   lengths are fixed, padding and dynamic table size updates dropped.
 *
 * Server→client bytes pass untouched. Buffers are bounded; anything malformed
 * throws (the caller closes that connection and logs it).
 */
import { IsulaError } from '@isula/core';
import { encodeLiteralBlock, HpackDecoder, type HeaderField } from './hpack.js';

export const CLIENT_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

/** What replaces an authority nghttp2 would refuse. */
export const REPLACEMENT_AUTHORITY = 'localhost';

const FRAME_HEADER_BYTES = 9;
const TYPE_HEADERS = 0x1;
const TYPE_PUSH_PROMISE = 0x5;
const TYPE_CONTINUATION = 0x9;
const FLAG_END_STREAM = 0x1;
const FLAG_END_HEADERS = 0x4;
const FLAG_PADDED = 0x8;
const FLAG_PRIORITY = 0x20;
/** Every HTTP/2 peer accepts frames this large (RFC 9113 §4.2); we write no larger ones. */
const MIN_MAX_FRAME_BYTES = 16384;

/** Bound on one header block as received (all its frames' fragments). */
export const MAX_HEADER_BLOCK_BYTES = 256 * 1024;
/** Bound on the frames of one header block (CONTINUATION floods). */
const MAX_BLOCK_FRAMES = 64;
const DECODER_LIMITS = { maxTableSize: 65536, maxDecodedBytes: 1024 * 1024 };

/**
 * nghttp2's check (nghttp2_check_authority): RFC 3986's authority characters
 * — unreserved, sub-delims, ':', '@', '[', ']', '%'. A path's '/' is not one.
 */
const AUTHORITY_CHARS = /^[A-Za-z0-9\-._~!$&'()*+,;=:@[\]%]*$/;

export function isValidAuthority(value: string): boolean {
  return AUTHORITY_CHARS.test(value);
}

function protocolError(message: string): IsulaError {
  return new IsulaError('API_BAD_REQUEST', `HTTP/2 from the CRI client: ${message}`);
}

type Mode = 'preface' | 'detect' | 'rewrite' | 'pass';

interface Block {
  streamId: number;
  /** HEADERS flags kept on the rewritten frame (END_STREAM, PRIORITY). */
  flags: number;
  /** The 5 priority bytes of a HEADERS frame with PRIORITY. */
  priority: Buffer | undefined;
  fragments: Buffer[];
  bytes: number;
  frames: number;
  /** The frames as received, forwarded as they were when nothing changes (detect mode). */
  raw: Buffer[];
}

/**
 * The client→server half of one connection. `push(chunk)` returns the bytes
 * to hand to the server (possibly none yet, possibly rewritten); it throws an
 * IsulaError on malformed input.
 */
export class AuthorityRewriter {
  #mode: Mode = 'preface';
  readonly #decoder = new HpackDecoder(DECODER_LIMITS);
  /** Bytes of a frame header (or of the preface) not complete yet. */
  #partial: Buffer = Buffer.alloc(0);
  /** Payload bytes of a pass-through frame still to forward as they come. */
  #forward = 0;
  /** A header-carrying frame being collected: its header, and what of its payload came. */
  #frame: { type: number; flags: number; streamId: number; length: number; chunks: Buffer[]; got: number; header: Buffer } | undefined;
  #block: Block | undefined;
  /** Whether any block was rewritten (for the log and the tests). */
  rewrites = 0;

  get mode(): Mode {
    return this.#mode;
  }

  push(chunk: Buffer): Buffer[] {
    if (this.#mode === 'pass') return [chunk];
    const out: Buffer[] = [];
    let data = chunk;
    if (this.#mode === 'preface') data = this.#preface(data, out);
    this.#frames(data, out);
    return out;
  }

  /** Checks the 24-byte preface; anything else (HTTP/1, garbage) is left to the server to refuse. */
  #preface(data: Buffer, out: Buffer[]): Buffer {
    const need = CLIENT_PREFACE.length - this.#partial.length;
    const head = data.subarray(0, need);
    const seen = Buffer.concat([this.#partial, head]);
    if (!CLIENT_PREFACE.subarray(0, seen.length).equals(seen)) {
      this.#mode = 'pass';
      this.#partial = Buffer.alloc(0);
      out.push(seen);
      return data.subarray(head.length);
    }
    if (seen.length < CLIENT_PREFACE.length) {
      this.#partial = seen;
      return Buffer.alloc(0);
    }
    this.#partial = Buffer.alloc(0);
    out.push(seen);
    this.#mode = 'detect';
    return data.subarray(head.length);
  }

  #frames(input: Buffer, out: Buffer[]): void {
    let data = input;
    while (data.length > 0) {
      if (this.#mode === 'pass') {
        out.push(data);
        return;
      }
      if (this.#forward > 0) {
        const n = Math.min(this.#forward, data.length);
        out.push(data.subarray(0, n));
        this.#forward -= n;
        data = data.subarray(n);
        continue;
      }
      const frame = this.#frame;
      if (frame !== undefined) {
        const n = Math.min(frame.length - frame.got, data.length);
        frame.chunks.push(data.subarray(0, n));
        frame.got += n;
        data = data.subarray(n);
        if (frame.got === frame.length) {
          this.#frame = undefined;
          this.#headerFrame(frame.type, frame.flags, frame.streamId, frame.header, Buffer.concat(frame.chunks), out);
        }
        continue;
      }
      const need = FRAME_HEADER_BYTES - this.#partial.length;
      if (data.length < need) {
        this.#partial = Buffer.concat([this.#partial, data]);
        return;
      }
      const header = this.#partial.length > 0 ? Buffer.concat([this.#partial, data.subarray(0, need)]) : data.subarray(0, need);
      this.#partial = Buffer.alloc(0);
      data = data.subarray(need);
      this.#frameHeader(header, out);
    }
  }

  #frameHeader(header: Buffer, out: Buffer[]): void {
    const length = header.readUIntBE(0, 3);
    const type = header[3]!;
    const flags = header[4]!;
    const streamId = header.readUInt32BE(5) & 0x7fffffff;
    if (type === TYPE_PUSH_PROMISE) throw protocolError('a client sent PUSH_PROMISE');
    if (type === TYPE_HEADERS || type === TYPE_CONTINUATION) {
      if (length > MAX_HEADER_BLOCK_BYTES) throw protocolError(`header frame of ${length} bytes`);
      // A copy: the chunk it came in may be reused by the socket.
      const frame = { type, flags, streamId, length, chunks: [] as Buffer[], got: 0, header: Buffer.from(header) };
      if (length === 0) this.#headerFrame(type, flags, streamId, frame.header, Buffer.alloc(0), out);
      else this.#frame = frame;
      return;
    }
    // RFC 9113 §6.10: nothing may come between a HEADERS and its CONTINUATIONs.
    if (this.#block !== undefined) throw protocolError(`frame type ${type} inside a header block`);
    out.push(header);
    this.#forward = length;
  }

  #headerFrame(type: number, flags: number, streamId: number, header: Buffer, payload: Buffer, out: Buffer[]): void {
    let block = this.#block;
    if (type === TYPE_HEADERS) {
      if (block !== undefined) throw protocolError('HEADERS inside a header block');
      block = { streamId, flags: flags & (FLAG_END_STREAM | FLAG_PRIORITY), priority: undefined, fragments: [], bytes: 0, frames: 0, raw: [] };
      const fragment = this.#headersFragment(flags, payload, block);
      block.fragments.push(fragment);
      block.bytes += fragment.length;
      this.#block = block;
    } else {
      if (block === undefined || block.streamId !== streamId) throw protocolError('CONTINUATION without its HEADERS');
      block.fragments.push(payload);
      block.bytes += payload.length;
    }
    block.frames++;
    if (block.bytes > MAX_HEADER_BLOCK_BYTES) throw protocolError(`header block over ${MAX_HEADER_BLOCK_BYTES} bytes`);
    if (block.frames > MAX_BLOCK_FRAMES) throw protocolError(`header block in more than ${MAX_BLOCK_FRAMES} frames`);
    if (this.#mode === 'detect') block.raw.push(header, payload);
    if ((flags & FLAG_END_HEADERS) === 0) return;
    this.#block = undefined;
    this.#endBlock(block, out);
  }

  /** The header block fragment of a HEADERS payload: padding and priority taken off (RFC 9113 §6.2). */
  #headersFragment(flags: number, payload: Buffer, block: Block): Buffer {
    let start = 0;
    let end = payload.length;
    if (flags & FLAG_PADDED) {
      if (payload.length < 1) throw protocolError('PADDED HEADERS without a pad length');
      end -= payload[0]!;
      start = 1;
    }
    if (flags & FLAG_PRIORITY) {
      block.priority = payload.subarray(start, start + 5);
      start += 5;
    }
    if (end < start) throw protocolError('HEADERS padding longer than the frame');
    return payload.subarray(start, end);
  }

  #endBlock(block: Block, out: Buffer[]): void {
    const fields = this.#decoder.decode(Buffer.concat(block.fragments));
    const fixed = fixAuthority(fields);
    if (this.#mode === 'detect' && !fixed) {
      // The client's encoder and the server's decoder agree: step aside for good.
      out.push(...block.raw);
      this.#mode = 'pass';
      return;
    }
    this.#mode = 'rewrite';
    this.rewrites++;
    out.push(...encodeHeaderFrames(block, encodeLiteralBlock(fields)));
  }
}

/** Replaces invalid `:authority`/`host` values in place; true when one was. */
function fixAuthority(fields: HeaderField[]): boolean {
  let fixed = false;
  for (const f of fields) {
    if ((f.name === ':authority' || f.name === 'host') && !isValidAuthority(f.value)) {
      f.value = REPLACEMENT_AUTHORITY;
      fixed = true;
    }
  }
  return fixed;
}

/** HEADERS (+ CONTINUATION) frames carrying `fragment`, none over the minimum max frame size. */
function encodeHeaderFrames(block: Block, fragment: Buffer): Buffer[] {
  const frames: Buffer[] = [];
  const priority = block.priority ?? Buffer.alloc(0);
  let rest = fragment;
  let first = true;
  do {
    const room = MIN_MAX_FRAME_BYTES - (first ? priority.length : 0);
    const piece = rest.subarray(0, room);
    rest = rest.subarray(piece.length);
    const flags = (first ? block.flags : 0) | (rest.length === 0 ? FLAG_END_HEADERS : 0);
    const head = Buffer.alloc(FRAME_HEADER_BYTES);
    head.writeUIntBE(piece.length + (first ? priority.length : 0), 0, 3);
    head[3] = first ? TYPE_HEADERS : TYPE_CONTINUATION;
    head[4] = flags;
    head.writeUInt32BE(block.streamId, 5);
    frames.push(head);
    if (first && priority.length > 0) frames.push(priority);
    frames.push(piece);
    first = false;
  } while (rest.length > 0);
  return frames;
}
