/**
 * The HPACK decoder and literal encoder of the CRI socket's header rewrite:
 * RFC 7541's Huffman codes and worked examples, the dynamic table, and the
 * malformed blocks it must refuse rather than mis-decode.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { encodeLiteralBlock, HpackDecoder, HUFFMAN_CODES, huffmanDecode, huffmanEncode, type HeaderField } from '../src/hpack.js';

const limits = { maxTableSize: 65536, maxDecodedBytes: 1024 * 1024 };
const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const pairs = (fields: HeaderField[]) => fields.map((f) => [f.name, f.value]);

test('the Huffman codes are RFC 7541 Appendix B (spot checks, a complete prefix code)', () => {
  const expected: Array<[number, number, number]> = [
    [0, 0x1ff8, 13], [1, 0x7fffd8, 23], [10, 0x3ffffffc, 30], [13, 0x3ffffffd, 30], [22, 0x3ffffffe, 30],
    [32, 0x14, 6], [48, 0x0, 5], [65, 0x21, 6], [97, 0x3, 5], [123, 0x7ffe, 15], [124, 0x7fc, 11],
    [126, 0x1ffd, 13], [127, 0xffffffc, 28], [128, 0xfffe6, 20], [255, 0x3ffffee, 26], [256, 0x3fffffff, 30],
  ];
  for (const [sym, code, len] of expected) assert.deepEqual(HUFFMAN_CODES[sym], [code, len], `symbol ${sym}`);
  // Kraft: a complete code has no gap a corrupt stream could fall into unnoticed.
  assert.equal(HUFFMAN_CODES.reduce((sum, [, len]) => sum + 2 ** -len, 0), 1);
});

test('every octet round-trips through Huffman, and bad padding or EOS is refused', () => {
  const all = Buffer.from(Array.from({ length: 256 }, (_, i) => i)).toString('latin1');
  for (const s of [all, 'www.example.com', 'a', '', '/run/isulad/cri.sock']) {
    const enc = huffmanEncode(s);
    assert.equal(huffmanDecode(enc, 0, enc.length), s);
  }
  assert.deepEqual(huffmanEncode('www.example.com'), hex('f1e3 c2e5 f23a 6ba0 ab90 f4ff'));
  // 'a' is 00011: padded with ones it is 0x1f; padded with zeros, refused.
  assert.equal(huffmanDecode(Buffer.from([0x1f]), 0, 1), 'a');
  assert.throws(() => huffmanDecode(Buffer.from([0x18]), 0, 1), { code: 'API_BAD_REQUEST' });
  // Eight or more bits of padding, and the EOS symbol itself, are errors (§5.2).
  assert.throws(() => huffmanDecode(Buffer.from([0x1f, 0xff]), 0, 2), { code: 'API_BAD_REQUEST' });
  assert.throws(() => huffmanDecode(Buffer.from([0xff, 0xff, 0xff, 0xff]), 0, 4), { code: 'API_BAD_REQUEST' });
});

test('RFC 7541 C.4: three requests with Huffman strings share one dynamic table', () => {
  const d = new HpackDecoder(limits);
  assert.deepEqual(pairs(d.decode(hex('8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff'))),
    [[':method', 'GET'], [':scheme', 'http'], [':path', '/'], [':authority', 'www.example.com']]);
  assert.deepEqual(pairs(d.decode(hex('8286 84be 5886 a8eb 1064 9cbf'))),
    [[':method', 'GET'], [':scheme', 'http'], [':path', '/'], [':authority', 'www.example.com'], ['cache-control', 'no-cache']]);
  assert.deepEqual(pairs(d.decode(hex('8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf'))),
    [[':method', 'GET'], [':scheme', 'https'], [':path', '/index.html'], [':authority', 'www.example.com'], ['custom-key', 'custom-value']]);
});

test('a size update evicts the oldest entries; an entry larger than the table empties it', () => {
  const d = new HpackDecoder(limits);
  const literal = (name: string, value: string) => Buffer.concat([Buffer.from([0x40, name.length]), Buffer.from(name), Buffer.from([value.length]), Buffer.from(value)]);
  // Table of 100 octets: "aa: 1" (36) then "bb: 2" (36) fit; "cc: 3" evicts "aa".
  d.decode(Buffer.concat([Buffer.from([0x3f, 0x45]), literal('aa', '1'), literal('bb', '2'), literal('cc', '3')]));
  assert.deepEqual(pairs(d.decode(Buffer.from([0xbe, 0xbf]))), [['cc', '3'], ['bb', '2']]);
  assert.throws(() => d.decode(Buffer.from([0xc0])), { code: 'API_BAD_REQUEST' });
  // 80 octets of value: larger than the table; the table ends up empty.
  d.decode(literal('dd', 'x'.repeat(80)));
  assert.throws(() => d.decode(Buffer.from([0xbe])), { code: 'API_BAD_REQUEST' });
});

test('malformed blocks are refused: index 0, past the table, truncation, late or oversized size updates, header bombs', () => {
  const bad = [
    Buffer.from([0x80]), // index 0
    Buffer.from([0xbe]), // dynamic index with an empty table
    Buffer.from([0x41, 0x05, 0x61]), // value string cut short
    Buffer.from([0x7f]), // integer cut short
    Buffer.from([0x7f, 0xff, 0xff, 0xff, 0xff, 0x7f]), // integer past 2^28
    Buffer.from([0x82, 0x20]), // size update after a field
    Buffer.from([0x3f, 0xe1, 0xff, 0x07]), // size update past the limit
  ];
  for (const block of bad) assert.throws(() => new HpackDecoder(limits).decode(block), { code: 'API_BAD_REQUEST' }, block.toString('hex'));
  // One 4 KB entry named 4000 times by a 1-byte index: refused once past the list bound.
  const d = new HpackDecoder({ maxTableSize: 65536, maxDecodedBytes: 64 * 1024 });
  d.decode(Buffer.concat([Buffer.from([0x40, 0x01, 0x78, 0x7f, 0xa1, 0x1e]), Buffer.alloc(4000, 0x79)]));
  assert.throws(() => d.decode(Buffer.alloc(4000, 0xbe)), { code: 'API_BAD_REQUEST' });
});

test('the literal encoding round-trips through a fresh decoder and leaves its table empty', () => {
  const fields: HeaderField[] = [
    { name: ':authority', value: 'localhost', neverIndexed: false },
    { name: ':path', value: '/runtime.v1.RuntimeService/Version', neverIndexed: false },
    { name: 'authorization', value: 'Bearer secret', neverIndexed: true },
    { name: 'x-long', value: 'v'.repeat(70000), neverIndexed: false },
  ];
  const block = encodeLiteralBlock(fields);
  const d = new HpackDecoder(limits);
  assert.deepEqual(d.decode(block), fields);
  assert.throws(() => d.decode(Buffer.from([0xbe])), { code: 'API_BAD_REQUEST' });
});
