/**
 * The CRI socket's relay: a real HTTP/2 client (Node's, which sends what it
 * is told as :authority, as crictl 1.26's grpc-go sends the socket path) through
 * CriSocket to a real HTTP/2 server, and raw frames for what no well-behaved
 * client sends.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import http2 from 'node:http2';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { test, type TestContext } from 'node:test';
import pino from 'pino';
import { CriSocket } from '../src/cri-socket.js';
import { AuthorityRewriter, CLIENT_PREFACE, isValidAuthority } from '../src/h2-authority.js';
import { encodeLiteralBlock } from '../src/hpack.js';

interface Seen { authority: string | undefined; headers: http2.IncomingHttpHeaders }

/** An HTTP/2 server fed by a CriSocket; answers each request with its :authority. */
async function setup(t: TestContext): Promise<{ socket: string; seen: Seen[]; logs: string[]; cri: CriSocket }> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'isula-cri-sock-'));
  const socket = path.join(dir, 'cri.sock');
  const seen: Seen[] = [];
  const logs: string[] = [];
  const log = pino({ level: 'debug' }, new Writable({ write(chunk, _e, cb) { logs.push(String(chunk)); cb(); } }));
  const h2 = http2.createServer();
  h2.on('stream', (stream, headers) => {
    seen.push({ authority: headers[':authority'], headers });
    stream.respond({ ':status': 200 });
    stream.end(String(headers[':authority']));
  });
  const cri = new CriSocket({ path: socket, log, inject: (c) => h2.emit('connection', c) });
  await cri.listen();
  t.after(async () => {
    cri.destroyConnections();
    await cri.close();
    await fs.rm(dir, { recursive: true, force: true });
  });
  return { socket, seen, logs, cri };
}

function connect(socket: string): http2.ClientHttp2Session {
  return http2.connect('http://localhost', { createConnection: () => net.connect(socket) });
}

function request(session: http2.ClientHttp2Session, headers: http2.OutgoingHttpHeaders): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = session.request(headers);
    let body = '';
    let status = 0;
    req.setEncoding('utf8');
    req.on('response', (h) => { status = Number(h[':status']); });
    req.on('data', (d: string) => { body += d; });
    req.on('end', () => resolve({ status, body }));
    req.on('error', reject);
    req.end();
  });
}

test('a socket path as :authority reaches the server as localhost, over many requests and a dynamic table', async (t) => {
  const { socket, seen } = await setup(t);
  // Unfixed, Node's own server refuses this stream: the reason for the relay.
  assert.equal(isValidAuthority(socket), false);
  const session = connect(socket);
  t.after(() => session.destroy());
  const big = 'b'.repeat(40000); // past 16 KB: the client sends CONTINUATION frames, and so must we
  for (let i = 0; i < 30; i++) {
    const headers: http2.OutgoingHttpHeaders = {
      ':method': 'POST', ':path': `/runtime.v1.RuntimeService/Call${i % 3}`, ':authority': socket,
      'x-repeated': 'same-value-every-time', 'x-counter': String(i), 'user-agent': 'grpc-go/1.51.0',
    };
    if (i === 7) headers['x-big'] = big;
    if (i === 9) Object.assign(headers, { authorization: 'secret', [http2.sensitiveHeaders]: ['authorization'] });
    const res = await request(session, headers);
    assert.deepEqual(res, { status: 200, body: 'localhost' });
  }
  assert.equal(seen.length, 30);
  for (const [i, s] of seen.entries()) {
    assert.equal(s.headers[':path'], `/runtime.v1.RuntimeService/Call${i % 3}`);
    assert.equal(s.headers['x-repeated'], 'same-value-every-time');
    assert.equal(s.headers['x-counter'], String(i));
  }
  assert.equal(seen[7]?.headers['x-big'], big);
  // What the client marked never-indexed stays so on the way in.
  assert.deepEqual((seen[9]?.headers as Record<symbol, unknown> | undefined)?.[http2.sensitiveHeaders], ['authorization']);
});

test('a valid authority passes untouched and streams of many concurrent requests work', async (t) => {
  const { socket, seen, logs } = await setup(t);
  const session = connect(socket);
  t.after(() => session.destroy());
  const results = await Promise.all(Array.from({ length: 20 }, (_, i) =>
    request(session, { ':path': `/p${i}`, ':authority': i % 2 === 0 ? 'localhost' : 'localhost:0' })));
  // The first block decides: valid, so the connection is a pipe (no rewrite, nothing logged).
  assert.equal(results[0]?.body, 'localhost');
  assert.equal(seen.length, 20);
  assert.equal(logs.some((l) => l.includes('rewriting')), false);
});

test('the rewriter steps aside after a valid first block and keeps rewriting after an invalid one', () => {
  const headers = (streamId: number, authority: string, flags = 0x5) => {
    const block = encodeLiteralBlock([{ name: ':method', value: 'GET', neverIndexed: false }, { name: ':authority', value: authority, neverIndexed: false }]);
    const head = Buffer.alloc(9);
    head.writeUIntBE(block.length, 0, 3);
    head[3] = 0x1;
    head[4] = flags;
    head.writeUInt32BE(streamId, 5);
    return Buffer.concat([head, block]);
  };
  const settings = Buffer.from([0, 0, 0, 0x4, 0, 0, 0, 0, 0]);
  const good = new AuthorityRewriter();
  const input = Buffer.concat([CLIENT_PREFACE, settings, headers(1, 'localhost')]);
  // Byte by byte: every split of frames and preface is handled.
  const out = Buffer.concat([...input].flatMap((b) => good.push(Buffer.from([b]))));
  assert.deepEqual(out, input);
  assert.equal(good.mode, 'pass');

  const bad = new AuthorityRewriter();
  const rewritten = Buffer.concat(bad.push(Buffer.concat([CLIENT_PREFACE, settings, headers(1, '/run/isulad/cri.sock'), headers(3, 'localhost')])));
  assert.equal(bad.mode, 'rewrite');
  assert.equal(bad.rewrites, 2);
  assert.deepEqual(rewritten, Buffer.concat([CLIENT_PREFACE, settings, headers(1, 'localhost'), headers(3, 'localhost')]));

  // Not HTTP/2 at all: left to the server to refuse.
  const http1 = new AuthorityRewriter();
  const get = Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
  assert.deepEqual(Buffer.concat(http1.push(get)), get);
  assert.equal(http1.mode, 'pass');
});

test('malformed HTTP/2 closes that connection with a log line; the socket keeps serving', async (t) => {
  const { socket, logs, cri } = await setup(t);
  const frames = [
    // HEADERS whose HPACK block names index 0.
    Buffer.from([0, 0, 1, 0x1, 0x5, 0, 0, 0, 1, 0x80]),
    // A DATA frame between a HEADERS and its CONTINUATION.
    Buffer.from([0, 0, 1, 0x1, 0x0, 0, 0, 0, 1, 0x82, 0, 0, 0, 0x0, 0, 0, 0, 0, 1]),
    // A header frame announcing 1 MB.
    Buffer.from([0x10, 0, 0, 0x1, 0x4, 0, 0, 0, 1]),
  ];
  for (const frame of frames) {
    const raw = net.connect(socket);
    raw.on('error', () => undefined);
    raw.resume();
    raw.write(Buffer.concat([CLIENT_PREFACE, Buffer.from([0, 0, 0, 0x4, 0, 0, 0, 0, 0]), frame]));
    await new Promise((resolve) => raw.on('close', resolve));
  }
  assert.equal(logs.filter((l) => l.includes('malformed HTTP/2')).length, frames.length);
  assert.equal(cri.connections, 0);
  const session = connect(socket);
  t.after(() => session.destroy());
  assert.equal((await request(session, { ':path': '/', ':authority': socket })).body, 'localhost');
});
