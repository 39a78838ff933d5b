/** The SPDY/3.1 framing module: frames, header blocks, compression, sessions, flow control, bad input. */
import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import zlib from 'node:zlib';
import {
  decodeHeaderBlock, DEFAULT_WINDOW, encodeFrame, encodeHeaderBlock, FrameParser, HEADER_DICTIONARY, HeaderCompressor,
  HeaderDecompressor, RstStatus, SpdyProtocolError, SpdySession, type Frame, type SpdyStream,
} from '../src/spdy.js';

const samples: Frame[] = [
  { type: 'data', streamId: 1, fin: false, data: Buffer.from('hello') },
  { type: 'data', streamId: 0x7fffffff, fin: true, data: Buffer.alloc(0) },
  { type: 'syn_stream', streamId: 3, associatedId: 0, priority: 5, fin: true, unidirectional: true, headerBlock: Buffer.from([1, 2, 3]) },
  { type: 'syn_reply', streamId: 3, fin: false, headerBlock: Buffer.from([9]) },
  { type: 'headers', streamId: 5, fin: true, headerBlock: Buffer.alloc(0) },
  { type: 'rst_stream', streamId: 7, status: RstStatus.CANCEL },
  { type: 'settings', clear: true, entries: [{ id: 7, flags: 1, value: 123456 }, { id: 4, flags: 0, value: 100 }] },
  { type: 'ping', id: 0xfffffffe },
  { type: 'goaway', lastStreamId: 9, status: 2 },
  { type: 'window_update', streamId: 0, delta: 0x7fffffff },
  { type: 'unknown', controlType: 10, flags: 0, payload: Buffer.from('credential') },
];

test('spdy: every frame type round-trips, whole, split byte by byte, and coalesced', () => {
  for (const f of samples) assert.deepEqual(new FrameParser().push(encodeFrame(f)), [f], f.type);
  const wire = Buffer.concat(samples.map(encodeFrame));
  // Coalesced: one read holding every frame.
  assert.deepEqual(new FrameParser().push(wire), samples);
  // Split: one byte per read; nothing comes out before a frame is whole.
  const p = new FrameParser();
  const out: Frame[] = [];
  for (let i = 0; i < wire.length; i++) out.push(...p.push(wire.subarray(i, i + 1)));
  assert.deepEqual(out, samples);
  assert.equal(p.pending, 0);
  // Split at odd places across frame boundaries.
  const q = new FrameParser();
  const got: Frame[] = [];
  for (let i = 0; i < wire.length; i += 13) got.push(...q.push(wire.subarray(i, i + 13)));
  assert.deepEqual(got, samples);
  // Wire layout of a data frame: C=0, 31-bit id, flags, 24-bit length.
  assert.deepEqual([...encodeFrame({ type: 'data', streamId: 1, fin: true, data: Buffer.from('x') })], [0, 0, 0, 1, 1, 0, 0, 1, 0x78]);
  // And of a control frame: C=1, version 3, type.
  assert.deepEqual([...encodeFrame({ type: 'ping', id: 1 }).subarray(0, 8)], [0x80, 3, 0, 6, 0, 0, 0, 4]);
});

test('spdy: bad frames are refused with a protocol error, not a crash or a hang', () => {
  const bad = (bytes: number[], re: RegExp) => assert.throws(() => new FrameParser().push(Buffer.from(bytes)), (e: unknown) => e instanceof SpdyProtocolError && re.test(e.message));
  bad([0x80, 2, 0, 6, 0, 0, 0, 4, 0, 0, 0, 1], /version 2/); // SPDY/2
  bad([0x80, 3, 0, 6, 0, 0, 0, 3, 0, 0, 0], /PING frame must be 4 bytes/);
  bad([0x80, 3, 0, 3, 0, 0, 0, 4, 0, 0, 0, 1], /RST_STREAM frame must be 8/);
  bad([0x80, 3, 0, 1, 0, 0, 0, 2, 0, 0], /SYN_STREAM frame of 2 bytes is too short/);
  bad([0x80, 3, 0, 1, 0, 0, 0, 10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], /stream id 0/);
  bad([0x80, 3, 0, 4, 0, 0, 0, 4, 0xff, 0xff, 0xff, 0xff], /SETTINGS frame says/);
  bad([0x80, 3, 0, 9, 0, 0, 0, 8, 0, 0, 0, 1, 0, 0, 0, 0], /zero delta/);
  assert.throws(() => new FrameParser({ maxFrame: 100 }).push(Buffer.from([0, 0, 0, 1, 0, 0, 1, 0])), /over the 100-byte limit/);
  // Header blocks: truncated, lying counts, upper case and repeated names.
  const block = encodeHeaderBlock({ streamtype: 'stdout', port: ['80', '81'] });
  assert.deepEqual(decodeHeaderBlock(block), new Map([['streamtype', ['stdout']], ['port', ['80', '81']]]));
  for (let cut = 0; cut < block.length; cut++) assert.throws(() => decodeHeaderBlock(block.subarray(0, cut)), SpdyProtocolError, `cut at ${cut}`);
  assert.throws(() => decodeHeaderBlock(Buffer.from([0xff, 0xff, 0xff, 0xff])), /announces/);
  assert.throws(() => decodeHeaderBlock(Buffer.concat([block, Buffer.from([0])])), /after its 2 pairs/);
  const upper = Buffer.from(block);
  upper.write('S', 8);
  assert.throws(() => decodeHeaderBlock(upper), /not lower case/);
  assert.throws(() => encodeHeaderBlock(new Map([['a', ['1']], ['A', ['2']]])), /repeated/);
  assert.throws(() => encodeFrame({ type: 'window_update', streamId: 1, delta: 0 }), RangeError);
});

test('spdy: header compression round-trips over one zlib stream with the SPDY/3 dictionary', async () => {
  assert.equal(HEADER_DICTIONARY.length, 1423);
  assert.equal(HEADER_DICTIONARY.subarray(0, 11).toString('latin1'), '\0\0\0\x07options');
  assert.ok(HEADER_DICTIONARY.toString('latin1').endsWith('utf-,*,enq=0.'));
  const c = new HeaderCompressor();
  const d = new HeaderDecompressor();
  const blocks = [
    { streamtype: 'error' }, { streamtype: 'stdout' }, {}, { port: '8080', requestid: '0', streamtype: 'data' },
    { 'x-long': 'v'.repeat(100_000) },
  ].map((h) => encodeHeaderBlock(h));
  const compressed = [];
  for (const b of blocks) compressed.push(await c.compress(b));
  // The stream declares the dictionary (FDICT) with its Adler-32, as SPDY/3 peers check.
  assert.equal(((compressed[0] as Buffer)[1] as number) & 0x20, 0x20);
  // Later blocks reuse the history: the second "streamtype" costs less than the first.
  assert.ok((compressed[1] as Buffer).length < (compressed[0] as Buffer).length);
  for (let i = 0; i < blocks.length; i++) assert.deepEqual(await d.decompress(compressed[i] as Buffer), blocks[i]);
  // Blocks from another zlib implementation's stream (node's one-shot inflate of the concatenation agrees).
  const all = zlib.inflateSync(Buffer.concat(compressed), { dictionary: HEADER_DICTIONARY, finishFlush: zlib.constants.Z_SYNC_FLUSH });
  assert.deepEqual(all, Buffer.concat(blocks));
  c.close();
  d.close();
  // Garbage, a wrong dictionary, and a bomb are refused.
  await assert.rejects(new HeaderDecompressor().decompress(Buffer.from('not zlib at all')), SpdyProtocolError);
  const other = zlib.deflateSync(Buffer.from('x'), { dictionary: Buffer.from('some other dictionary') });
  await assert.rejects(new HeaderDecompressor().decompress(other), SpdyProtocolError);
  const bomb = zlib.deflateSync(Buffer.alloc(2_000_000), { dictionary: HEADER_DICTIONARY, finishFlush: zlib.constants.Z_SYNC_FLUSH });
  await assert.rejects(new HeaderDecompressor(1024 * 1024).decompress(bomb), /inflates past/);
});

async function pair(opts: { serverWindow?: number; clientWindow?: number } = {}): Promise<{ server: SpdySession; client: SpdySession; close(): void }> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as net.AddressInfo).port;
  const accepted = new Promise<net.Socket>((r) => srv.once('connection', r));
  const sock = net.connect(port, '127.0.0.1');
  await new Promise<void>((r) => sock.once('connect', r));
  const server = new SpdySession(await accepted, { role: 'server', ...(opts.serverWindow !== undefined && { initialWindow: opts.serverWindow }) });
  const client = new SpdySession(sock, { role: 'client', ...(opts.clientWindow !== undefined && { initialWindow: opts.clientWindow }) });
  return { server, client, close: () => { client.destroy(); server.destroy(); srv.close(); } };
}

function readAll(s: SpdyStream): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('end', () => resolve(Buffer.concat(chunks)));
    s.on('error', reject);
  });
}

test('spdy: a session opens streams both ways, echoes data with half-close, pings', async (t) => {
  const { server, client, close } = await pair();
  t.after(close);
  server.on('stream', (s: SpdyStream) => {
    void s.reply({ 'x-echo': s.header('streamtype') });
    // Echo, upper-cased, then FIN after the client's FIN.
    s.on('data', (c: Buffer) => s.write(Buffer.from(c.toString().toUpperCase())));
    s.on('end', () => s.end());
  });
  const s1 = await client.openStream({ streamtype: 'stdin' });
  assert.equal(s1.id, 1);
  assert.deepEqual(s1.replyHeaders?.get('x-echo'), ['stdin']);
  const s2 = await client.openStream({ streamtype: 'second' });
  assert.equal(s2.id, 3);
  const r1 = readAll(s1);
  const r2 = readAll(s2);
  s1.end('abc');
  s2.end('xyz');
  assert.equal((await r1).toString(), 'ABC');
  assert.equal((await r2).toString(), 'XYZ');
  await client.ping();
  await server.ping();
  // Server-made streams are even.
  client.on('stream', (s: SpdyStream) => { void s.reply(); s.end('from client'); });
  const s4 = await server.openStream({ streamtype: 'push' });
  assert.equal(s4.id, 2);
  assert.equal((await readAll(s4)).toString(), 'from client');
});

test('spdy: flow control holds data past the window until WINDOW_UPDATE, and moves 5 MiB intact', async (t) => {
  const { server, client, close } = await pair({ clientWindow: 16 * 1024 });
  t.after(close);
  const payload = Buffer.alloc(5 * 1024 * 1024);
  for (let i = 0; i < payload.length; i++) payload[i] = (i * 7 + (i >> 11)) & 0xff;
  let served!: SpdyStream;
  const gotStream = new Promise<void>((resolve) => server.on('stream', (s: SpdyStream) => { served = s; void s.reply(); resolve(); }));
  const s = await client.openStream({ streamtype: 'stdout' });
  await gotStream;
  // The client announced 16 KiB: the server may not send more until the client reads.
  await client.ping();
  assert.equal(server.peerFlowControl, true);
  assert.equal(served.sendWindow, 16 * 1024);
  s.pause();
  let written = false;
  const held = Buffer.alloc(1024 * 1024, 1);
  served.write(held, () => { written = true; });
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(written, false, 'the write waits for credit');
  // What reached the paused reader: its buffer (credit is given while below its high-water mark) plus one window.
  assert.ok(s.readableLength <= s.readableHighWaterMark + 16 * 1024 + 16 * 1024, `${s.readableLength} buffered`);
  const rest = readAll(s);
  s.resume();
  await new Promise<void>((resolve) => { const tick = () => (written ? resolve() : setTimeout(tick, 10)); tick(); });
  served.end(payload);
  const all = await rest;
  assert.equal(all.length, held.length + payload.length);
  assert.ok(all.subarray(held.length).equals(payload));
  assert.equal(DEFAULT_WINDOW, 65536);
});

test('spdy: a peer that never sends WINDOW_UPDATE (as Go spdystream) still gets all the data', async (t) => {
  // A raw client: SYN_STREAM with a hand-compressed block, no SETTINGS, no WINDOW_UPDATE ever.
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  t.after(() => srv.close());
  const big = Buffer.alloc(300 * 1024, 0x41);
  srv.on('connection', (sock) => {
    const session = new SpdySession(sock, { role: 'server' });
    session.on('stream', (s: SpdyStream) => { void s.reply(); s.end(big); });
  });
  const sock = net.connect((srv.address() as net.AddressInfo).port, '127.0.0.1');
  t.after(() => sock.destroy());
  const comp = new HeaderCompressor();
  t.after(() => comp.close());
  sock.write(encodeFrame({ type: 'syn_stream', streamId: 1, associatedId: 0, priority: 0, fin: true, unidirectional: false, headerBlock: await comp.compress(encodeHeaderBlock({ streamtype: 'stdout' })) }));
  const parser = new FrameParser();
  let got = 0;
  const types = new Set<string>();
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`stalled at ${got} bytes`)), 10_000);
    sock.on('data', (c: Buffer) => {
      for (const f of parser.push(c)) {
        types.add(f.type);
        if (f.type === 'data') {
          got += f.data.length;
          if (f.fin) { clearTimeout(timer); resolve(); }
        }
      }
    });
  });
  assert.equal(got, big.length);
  assert.ok(types.has('syn_reply') && types.has('settings'));
});

test('spdy: protocol violations end the session with GOAWAY; unknown streams get RST_STREAM', async (t) => {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  t.after(() => srv.close());
  const errors: Error[] = [];
  srv.on('connection', (sock) => {
    const session = new SpdySession(sock, { role: 'server' });
    session.on('error', (e: Error) => errors.push(e));
    session.on('stream', (s: SpdyStream) => { void s.reply(); });
  });
  // Sends `frames`, reads until `done` holds of what came (or 5 s: a loaded host decompresses late).
  const talk = async (frames: Buffer[], done: (got: Frame[]) => boolean): Promise<Frame[]> => {
    const sock = net.connect((srv.address() as net.AddressInfo).port, '127.0.0.1');
    const parser = new FrameParser();
    const got: Frame[] = [];
    sock.on('data', (c: Buffer) => got.push(...parser.push(c)));
    for (const f of frames) sock.write(f);
    for (let waited = 0; waited < 5000 && !done(got); waited += 20) await new Promise((r) => setTimeout(r, 20));
    sock.destroy();
    return got;
  };
  const goaway = (got: Frame[]) => got.some((f) => f.type === 'goaway');
  // DATA on a stream nobody opened: RST_STREAM INVALID_STREAM, the session lives on.
  const r1 = await talk([encodeFrame({ type: 'data', streamId: 5, fin: false, data: Buffer.from('x') }), encodeFrame({ type: 'ping', id: 1 })], (got) => got.some((f) => f.type === 'rst_stream') && got.some((f) => f.type === 'ping'));
  assert.ok(r1.some((f) => f.type === 'rst_stream' && f.streamId === 5 && f.status === RstStatus.INVALID_STREAM), JSON.stringify(r1));
  assert.ok(r1.some((f) => f.type === 'ping' && f.id === 1));
  // An even (server-side) stream id from a client: GOAWAY PROTOCOL_ERROR.
  const comp = new HeaderCompressor();
  t.after(() => comp.close());
  const r2 = await talk([encodeFrame({ type: 'syn_stream', streamId: 2, associatedId: 0, priority: 0, fin: false, unidirectional: false, headerBlock: await comp.compress(encodeHeaderBlock({})) })], goaway);
  assert.ok(r2.some((f) => f.type === 'goaway' && f.status === 1), JSON.stringify(r2));
  // A header block that is not zlib: GOAWAY.
  const r3 = await talk([encodeFrame({ type: 'syn_stream', streamId: 1, associatedId: 0, priority: 0, fin: false, unidirectional: false, headerBlock: Buffer.from('garbage!') })], goaway);
  assert.ok(r3.some((f) => f.type === 'goaway'));
  // SPDY/2 bytes: GOAWAY.
  const r4 = await talk([Buffer.from([0x80, 2, 0, 6, 0, 0, 0, 4, 0, 0, 0, 1])], goaway);
  assert.ok(r4.some((f) => f.type === 'goaway'));
  assert.ok(errors.length >= 3);
});

test('spdy: frames that came with the peer\'s close are handled before the session ends', async (t) => {
  // A server that answers, sends its last data and GOAWAY, and closes, all in one write: as a
  // TLS record carrying close_notify or a short exec's end arrives. The header block decompresses
  // asynchronously, so the socket's end is seen before the SYN_REPLY is handled.
  const srv = net.createServer((sock) => {
    const parser = new FrameParser();
    const comp = new HeaderCompressor();
    sock.on('data', (c: Buffer) => {
      for (const f of parser.push(c)) {
        if (f.type !== 'syn_stream') continue;
        void comp.compress(encodeHeaderBlock({})).then((block) => {
          sock.end(Buffer.concat([
            encodeFrame({ type: 'syn_reply', streamId: f.streamId, fin: false, headerBlock: block }),
            encodeFrame({ type: 'data', streamId: f.streamId, fin: true, data: Buffer.from('last words') }),
            encodeFrame({ type: 'goaway', lastStreamId: f.streamId, status: 0 }),
          ]));
          comp.close();
        });
      }
    });
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  t.after(() => srv.close());
  const sock = net.connect((srv.address() as net.AddressInfo).port, '127.0.0.1');
  await new Promise<void>((r) => sock.once('connect', r));
  const client = new SpdySession(sock, { role: 'client' });
  t.after(() => client.destroy());
  client.on('error', () => undefined);
  const s = await client.openStream({ streamtype: 'stdout' });
  const chunks: Buffer[] = [];
  s.on('data', (c: Buffer) => chunks.push(c));
  s.on('error', () => undefined);
  await new Promise<void>((resolve) => { s.once('end', resolve); s.once('close', resolve); });
  assert.equal(Buffer.concat(chunks).toString(), 'last words');
});
