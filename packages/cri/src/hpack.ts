/**
 * HPACK (RFC 7541), as much as the CRI socket's header rewrite needs: a
 * decoder that mirrors a client's encoder (static and dynamic tables,
 * integers, Huffman strings, size updates) and an encoder that writes every
 * field as a literal without indexing, so that the peer's decoder never needs
 * dynamic-table state (see h2-authority.ts). Strings are octets: they are
 * held as latin1 JS strings, one char per octet.
 */
import { IsulaError } from '@isula/core';

export interface HeaderField {
  name: string;
  value: string;
  /** Sent as "never indexed" (RFC 7541 §6.2.3): kept so on re-encoding. */
  neverIndexed: boolean;
}

/** RFC 7541 Appendix A: the static table, index 1..61. */
export const STATIC_TABLE: readonly (readonly [string, string])[] = [
  [':authority', ''], [':method', 'GET'], [':method', 'POST'], [':path', '/'], [':path', '/index.html'],
  [':scheme', 'http'], [':scheme', 'https'], [':status', '200'], [':status', '204'], [':status', '206'],
  [':status', '304'], [':status', '400'], [':status', '404'], [':status', '500'], ['accept-charset', ''],
  ['accept-encoding', 'gzip, deflate'], ['accept-language', ''], ['accept-ranges', ''], ['accept', ''],
  ['access-control-allow-origin', ''], ['age', ''], ['allow', ''], ['authorization', ''], ['cache-control', ''],
  ['content-disposition', ''], ['content-encoding', ''], ['content-language', ''], ['content-length', ''],
  ['content-location', ''], ['content-range', ''], ['content-type', ''], ['cookie', ''], ['date', ''],
  ['etag', ''], ['expect', ''], ['expires', ''], ['from', ''], ['host', ''], ['if-match', ''],
  ['if-modified-since', ''], ['if-none-match', ''], ['if-range', ''], ['if-unmodified-since', ''],
  ['last-modified', ''], ['link', ''], ['location', ''], ['max-forwards', ''], ['proxy-authenticate', ''],
  ['proxy-authorization', ''], ['range', ''], ['referer', ''], ['refresh', ''], ['retry-after', ''],
  ['server', ''], ['set-cookie', ''], ['strict-transport-security', ''], ['transfer-encoding', ''],
  ['user-agent', ''], ['vary', ''], ['via', ''], ['www-authenticate', ''],
];

/** First static index of each name, for encoding a literal with an indexed name. */
const STATIC_NAME_INDEX: ReadonlyMap<string, number> = new Map(
  STATIC_TABLE.map(([name], i) => [name, i + 1] as const).reverse(),
);

/**
 * RFC 7541 Appendix B as code lengths, symbols 0..256 (256 is EOS). The code
 * is canonical (codes of one length are consecutive, in symbol order, after
 * all shorter ones), so the lengths determine every code; the tests check
 * the codes against the RFC's and the Kraft sum (exactly 1).
 */
const HUFFMAN_LENGTHS: readonly number[] = [
  13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28,
  28, 28, 28, 28, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 28,
  6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6,
  5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12, 10,
  13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,
  7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6,
  15, 5, 6, 5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6, 6, 5,
  6, 7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13, 28,
  20, 22, 20, 20, 22, 22, 22, 23, 22, 23, 23, 23, 23, 23, 24, 23,
  24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24,
  22, 21, 20, 22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23,
  21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22, 23, 22, 22, 23,
  26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25,
  19, 21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27,
  20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25, 24, 24, 26, 23,
  26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26,
  30
];

/** Canonical codes from the lengths: [code, length] per symbol. */
function huffmanCodes(): Array<[number, number]> {
  const lengths = HUFFMAN_LENGTHS;
  if (lengths.length !== 257) throw new Error(`HPACK Huffman table has ${lengths.length} lengths, not 257`);
  const order = lengths.map((len, sym) => ({ len, sym })).sort((a, b) => a.len - b.len || a.sym - b.sym);
  const codes: Array<[number, number]> = new Array(257);
  let code = 0;
  let prevLen = order[0]!.len;
  for (const { len, sym } of order) {
    code *= 2 ** (len - prevLen);
    prevLen = len;
    codes[sym] = [code, len];
    code++;
  }
  return codes;
}

export const HUFFMAN_CODES: ReadonlyArray<readonly [number, number]> = huffmanCodes();

/** The decoding tree: node n has children left[n]/right[n]; a leaf holds ~symbol. */
const TREE_NODES = 512;
const LEFT = new Int16Array(TREE_NODES);
const RIGHT = new Int16Array(TREE_NODES);
(function buildTree() {
  let next = 1;
  HUFFMAN_CODES.forEach(([code, len], sym) => {
    let node = 0;
    for (let bit = len - 1; bit >= 0; bit--) {
      const side = Math.floor(code / 2 ** bit) % 2 === 1 ? RIGHT : LEFT;
      if (bit === 0) {
        side[node] = ~sym;
      } else {
        if (side[node] === 0) side[node] = next++;
        node = side[node]!;
      }
    }
  });
})();

function hpackError(message: string): IsulaError {
  return new IsulaError('API_BAD_REQUEST', `HPACK: ${message}`);
}

/** Huffman-decoded octets of `buf[start, end)` as a latin1 string (RFC 7541 §5.2). */
export function huffmanDecode(buf: Uint8Array, start: number, end: number): string {
  const out: number[] = [];
  let node = 0;
  let depth = 0; // bits since the last symbol
  let ones = true; // those bits all ones (the EOS prefix, the only padding allowed)
  for (let i = start; i < end; i++) {
    const byte = buf[i]!;
    for (let bit = 7; bit >= 0; bit--) {
      const one = (byte >> bit) & 1;
      const child = one === 1 ? RIGHT[node]! : LEFT[node]!;
      depth++;
      ones &&= one === 1;
      if (child < 0) {
        const sym = ~child;
        if (sym === 256) throw hpackError('EOS symbol inside a Huffman string');
        out.push(sym);
        node = 0;
        depth = 0;
        ones = true;
      } else {
        node = child;
      }
    }
  }
  if (depth > 7 || !ones) throw hpackError('bad Huffman padding');
  return Buffer.from(out).toString('latin1');
}

/** The Huffman encoding of `s`: for the tests (the rewrite itself writes raw strings). */
export function huffmanEncode(s: string): Buffer {
  const out: number[] = [];
  let acc = 0;
  let bits = 0;
  for (let i = 0; i < s.length; i++) {
    const [code, len] = HUFFMAN_CODES[s.charCodeAt(i) & 0xff]!;
    for (let b = len - 1; b >= 0; b--) {
      acc = (acc << 1) | (Math.floor(code / 2 ** b) % 2);
      if (++bits === 8) { out.push(acc); acc = 0; bits = 0; }
    }
  }
  if (bits > 0) out.push((acc << (8 - bits)) | (0xff >> bits));
  return Buffer.from(out);
}

/** Entry overhead of RFC 7541 §4.1. */
const ENTRY_OVERHEAD = 32;

export interface DecoderLimits {
  /** Largest dynamic table a size update may ask for. */
  maxTableSize: number;
  /** Bound on a decoded block: names + values + 32 per field (a header-list size). */
  maxDecodedBytes: number;
}

/**
 * A decoder whose dynamic table mirrors the encoder of one direction of one
 * connection: it must see every header block of that direction, in order.
 */
export class HpackDecoder {
  readonly #limits: DecoderLimits;
  /** Newest first, as the indexes count. */
  readonly #table: Array<[string, string]> = [];
  #size = 0;
  #maxSize = 4096;

  constructor(limits: DecoderLimits) {
    this.#limits = limits;
  }

  decode(block: Uint8Array): HeaderField[] {
    const fields: HeaderField[] = [];
    const pos = { at: 0 };
    let decodedBytes = 0;
    while (pos.at < block.length) {
      const b = block[pos.at]!;
      let field: HeaderField;
      if (b & 0x80) {
        const [name, value] = this.#entry(readInt(block, pos, 7));
        field = { name, value, neverIndexed: false };
      } else if (b & 0x40) {
        field = this.#literal(block, pos, 6, false);
        this.#add(field.name, field.value);
      } else if (b & 0x20) {
        // RFC 7541 §4.2: only at the start of a block.
        if (fields.length > 0) throw hpackError('dynamic table size update after a header field');
        this.#resize(readInt(block, pos, 5));
        continue;
      } else {
        field = this.#literal(block, pos, 4, (b & 0x10) !== 0);
      }
      decodedBytes += field.name.length + field.value.length + ENTRY_OVERHEAD;
      if (decodedBytes > this.#limits.maxDecodedBytes) throw hpackError(`header list larger than ${this.#limits.maxDecodedBytes} bytes`);
      fields.push(field);
    }
    return fields;
  }

  #literal(block: Uint8Array, pos: { at: number }, prefix: number, neverIndexed: boolean): HeaderField {
    const index = readInt(block, pos, prefix);
    const name = index === 0 ? readString(block, pos) : this.#entry(index)[0];
    return { name, value: readString(block, pos), neverIndexed };
  }

  #entry(index: number): readonly [string, string] {
    if (index === 0) throw hpackError('index 0');
    if (index <= STATIC_TABLE.length) return STATIC_TABLE[index - 1]!;
    const entry = this.#table[index - STATIC_TABLE.length - 1];
    if (entry === undefined) throw hpackError(`index ${index} past the dynamic table`);
    return entry;
  }

  #add(name: string, value: string): void {
    const size = name.length + value.length + ENTRY_OVERHEAD;
    // §4.4: an entry larger than the table empties it and is not added.
    this.#evictTo(this.#maxSize - size);
    if (size <= this.#maxSize) {
      this.#table.unshift([name, value]);
      this.#size += size;
    }
  }

  #resize(size: number): void {
    if (size > this.#limits.maxTableSize) throw hpackError(`dynamic table size ${size} over ${this.#limits.maxTableSize}`);
    this.#maxSize = size;
    this.#evictTo(size);
  }

  #evictTo(target: number): void {
    while (this.#size > Math.max(target, 0) && this.#table.length > 0) {
      const [name, value] = this.#table.pop()!; // length checked just above
      this.#size -= name.length + value.length + ENTRY_OVERHEAD;
    }
  }
}

/** §5.1: an integer with an N-bit prefix; values past 2^28 are refused (no real header needs them). */
function readInt(buf: Uint8Array, pos: { at: number }, prefix: number): number {
  if (pos.at >= buf.length) throw hpackError('truncated integer');
  const mask = (1 << prefix) - 1;
  let value = buf[pos.at++]! & mask;
  if (value < mask) return value;
  for (let shift = 0; shift <= 21; shift += 7) {
    if (pos.at >= buf.length) throw hpackError('truncated integer');
    const b = buf[pos.at++]!;
    value += (b & 0x7f) * 2 ** shift;
    if ((b & 0x80) === 0) return value;
  }
  throw hpackError('integer too large');
}

/** §5.2: a string literal, raw or Huffman. */
function readString(buf: Uint8Array, pos: { at: number }): string {
  if (pos.at >= buf.length) throw hpackError('truncated string');
  const huffman = (buf[pos.at]! & 0x80) !== 0;
  const len = readInt(buf, pos, 7);
  const end = pos.at + len;
  if (end > buf.length) throw hpackError('string past the end of the block');
  const s = huffman ? huffmanDecode(buf, pos.at, end) : Buffer.from(buf.buffer, buf.byteOffset + pos.at, len).toString('latin1');
  pos.at = end;
  return s;
}

function writeInt(out: number[], first: number, prefix: number, value: number): void {
  const mask = (1 << prefix) - 1;
  if (value < mask) {
    out.push(first | value);
    return;
  }
  out.push(first | mask);
  let rest = value - mask;
  while (rest >= 0x80) {
    out.push((rest % 0x80) | 0x80);
    rest = Math.floor(rest / 0x80);
  }
  out.push(rest);
}

function writeString(out: number[], s: string): void {
  writeInt(out, 0, 7, s.length);
  for (let i = 0; i < s.length; i++) out.push(s.charCodeAt(i) & 0xff);
}

/**
 * A header block of literals without indexing (never-indexed ones kept so):
 * it neither reads nor changes the receiver's dynamic table, whatever state
 * that table is in. Names in the static table go by index.
 */
export function encodeLiteralBlock(fields: readonly HeaderField[]): Buffer {
  const out: number[] = [];
  for (const f of fields) {
    const first = f.neverIndexed ? 0x10 : 0x00;
    const index = STATIC_NAME_INDEX.get(f.name);
    if (index !== undefined) {
      writeInt(out, first, 4, index);
    } else {
      out.push(first);
      writeString(out, f.name);
    }
    writeString(out, f.value);
  }
  return Buffer.from(out);
}
