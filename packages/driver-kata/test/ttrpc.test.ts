import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { IsulaError } from '@isula/core';
import { decode, encode } from '../src/protos.js';
import {
  FrameDecoder, GrpcCode, HEADER_BYTES, MAX_MESSAGE_BYTES, NAMESPACE_KEY, TYPE_REQUEST, TYPE_RESPONSE, TtrpcClient, TtrpcServer, encodeFrame,
} from '../src/ttrpc.js';

const SVC = 'test.v1.Echo';

async function tempDir(t: { after(fn: () => Promise<void>): void }): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'kata-ttrpc-'));
  t.after(() => fs.rm(dir, { recursive: true, force: true }));
  return dir;
}

/** A raw socket server whose connection the test drives byte by byte. */
async function rawServer(t: { after(fn: () => Promise<void>): void }, onConn: (sock: net.Socket, requests: AsyncGenerator<{ streamId: number; req: Record<string, unknown> }>) => void): Promise<string> {
  const dir = await tempDir(t);
  const sockPath = path.join(dir, 's');
  const conns = new Set<net.Socket>();
  const server = net.createServer((sock) => {
    conns.add(sock);
    sock.on('error', () => {});
    sock.on('close', () => conns.delete(sock));
    const decoder = new FrameDecoder();
    const queue: { streamId: number; req: Record<string, unknown> }[] = [];
    let wake: (() => void) | undefined;
    sock.on('data', (c: Buffer) => {
      for (const f of decoder.push(c)) queue.push({ streamId: f.streamId, req: decode('ttrpc.Request', f.payload) });
      wake?.();
    });
    async function* requests() {
      for (let i = 0; i < 1000; i++) {
        while (queue.length === 0) await new Promise<void>((r) => { wake = r; });
        yield queue.shift()!; // non-empty: checked just above
      }
    }
    onConn(sock, requests());
  });
  await new Promise<void>((r) => server.listen(sockPath, r));
  t.after(async () => {
    for (const c of conns) c.destroy();
    await new Promise<void>((r) => server.close(() => r()));
  });
  return sockPath;
}

const response = (streamId: number, payload: Uint8Array, status?: { code: number; message: string }) =>
  encodeFrame(streamId, TYPE_RESPONSE, encode('ttrpc.Response', { ...(status && { status }), payload }));

describe('ttrpc frames', () => {
  test('a header is 10 bytes: length, stream id (big endian), type, flags', () => {
    const f = encodeFrame(3, TYPE_REQUEST, Buffer.from('abc'));
    assert.equal(f.length, HEADER_BYTES + 3);
    assert.deepEqual([...f.subarray(0, 10)], [0, 0, 0, 3, 0, 0, 0, 3, 1, 0]);
  });

  test('coalesced frames in one chunk all come out, in order', () => {
    const d = new FrameDecoder();
    const all = Buffer.concat([encodeFrame(1, 2, Buffer.from('one')), encodeFrame(3, 2, Buffer.alloc(0)), encodeFrame(5, 2, Buffer.from('three'))]);
    const frames = d.push(all);
    assert.deepEqual(frames.map((f) => [f.streamId, f.payload.toString()]), [[1, 'one'], [3, ''], [5, 'three']]);
    assert.equal(d.bufferedBytes, 0);
  });

  test('a frame split byte by byte comes out once, whole', () => {
    const d = new FrameDecoder();
    const bytes = Buffer.concat([encodeFrame(7, 2, Buffer.from('hello world')), encodeFrame(9, 2, Buffer.from('x'))]);
    const out = [];
    for (const b of bytes) out.push(...d.push(Buffer.from([b])));
    assert.deepEqual(out.map((f) => [f.streamId, f.type, f.payload.toString()]), [[7, 2, 'hello world'], [9, 2, 'x']]);
  });

  test('an oversize body is skipped across chunks and reported; the next frame still decodes', () => {
    const d = new FrameDecoder(16);
    const head = Buffer.alloc(10);
    head.writeUInt32BE(40, 0);
    head.writeUInt32BE(11, 4);
    head.writeUInt8(1, 8);
    const frames = [...d.push(Buffer.concat([head, Buffer.alloc(25)])), ...d.push(Buffer.concat([Buffer.alloc(15), encodeFrame(13, 1, Buffer.from('ok'))]))];
    assert.equal(frames.length, 2);
    assert.equal(frames[0]?.streamId, 11);
    assert.equal(frames[0]?.oversizeBytes, 40);
    assert.equal(frames[1]?.payload.toString(), 'ok');
  });

  test('encoding a body over the limit is refused', () => {
    assert.throws(() => encodeFrame(1, 1, Buffer.alloc(MAX_MESSAGE_BYTES + 1)), (e: unknown) => e instanceof IsulaError && e.details?.['grpcCode'] === GrpcCode.RESOURCE_EXHAUSTED);
    assert.doesNotThrow(() => encodeFrame(1, 1, Buffer.alloc(MAX_MESSAGE_BYTES)));
  });
});

describe('ttrpc client and server', () => {
  test('a call round-trips with odd stream ids and the namespace in the metadata', async (t) => {
    const dir = await tempDir(t);
    const server = new TtrpcServer();
    const seen: { ns: string; meta: string[] | undefined }[] = [];
    server.register(SVC, 'Echo', async (call) => {
      seen.push({ ns: call.namespace, meta: call.metadata.get('x-extra') });
      return Buffer.concat([Buffer.from('echo:'), call.payload]);
    });
    await server.listen(path.join(dir, 'srv.sock'));
    t.after(() => server.close());
    const client = await TtrpcClient.connect(`unix://${path.join(dir, 'srv.sock')}`, { namespace: 'isula' });
    t.after(() => client.close());
    assert.equal((await client.call(SVC, 'Echo', Buffer.from('a'), { metadata: { 'x-extra': 'v' } })).toString(), 'echo:a');
    assert.equal((await client.call(SVC, 'Echo', Buffer.from('b'))).toString(), 'echo:b');
    assert.deepEqual(seen, [{ ns: 'isula', meta: ['v'] }, { ns: 'isula', meta: undefined }]);

    const missing = await client.call(SVC, 'Nope', Buffer.alloc(0)).catch((e: unknown) => e);
    assert.ok(missing instanceof IsulaError);
    assert.equal(missing.code, 'NOT_IMPLEMENTED');
    assert.equal(missing.details?.['grpcCode'], GrpcCode.UNIMPLEMENTED);
  });

  test('the raw stream ids are 1, 3, 5 and the metadata carries containerd-namespace-ttrpc', async (t) => {
    const got: { streamId: number; req: Record<string, unknown> }[] = [];
    const sockPath = await rawServer(t, (sock, reqs) => {
      void (async () => {
        for await (const r of reqs) {
          got.push(r);
          sock.write(response(r.streamId, Buffer.alloc(0)));
        }
      })();
    });
    const client = await TtrpcClient.connect(sockPath, { namespace: 'ns1' });
    t.after(() => client.close());
    for (let i = 0; i < 3; i++) await client.call(SVC, 'M', Buffer.alloc(0), { timeoutMs: 1500 });
    assert.deepEqual(got.map((g) => g.streamId), [1, 3, 5]);
    assert.deepEqual(got[0]?.req['metadata'], [{ key: NAMESPACE_KEY, value: 'ns1' }]);
    assert.equal(got[0]?.req['timeout_nano'], 1500 * 1e6, 'the deadline is sent as timeout_nano');
    assert.equal(got[0]?.req['service'], SVC);
  });

  test('replies out of order reach their own callers', async (t) => {
    const dir = await tempDir(t);
    const server = new TtrpcServer();
    server.register(SVC, 'Delay', async (call) => {
      const ms = Number(call.payload.toString());
      await new Promise((r) => setTimeout(r, ms));
      return Buffer.from(`after ${ms}`);
    });
    await server.listen(path.join(dir, 's'));
    t.after(() => server.close());
    const client = await TtrpcClient.connect(path.join(dir, 's'));
    t.after(() => client.close());
    const order: string[] = [];
    const calls = ['120', '10', '60'].map((ms) => client.call(SVC, 'Delay', Buffer.from(ms)).then((b) => { order.push(b.toString()); return b.toString(); }));
    assert.deepEqual(await Promise.all(calls), ['after 120', 'after 10', 'after 60']);
    assert.deepEqual(order, ['after 10', 'after 60', 'after 120']);
  });

  test('replies split across writes and coalesced in one write are both decoded', async (t) => {
    const sockPath = await rawServer(t, (sock, reqs) => {
      void (async () => {
        const a = (await reqs.next()).value;
        const b = (await reqs.next()).value;
        if (!a || !b) return;
        const both = Buffer.concat([response(b.streamId, Buffer.from('B')), response(a.streamId, Buffer.from('A'.repeat(70000)))]);
        // Second reply first, the whole thing dribbled out in small pieces.
        for (let off = 0; off < both.length; off += 4093) {
          sock.write(both.subarray(off, off + 4093));
          await new Promise((r) => setImmediate(r));
        }
        const c = (await reqs.next()).value;
        const d = (await reqs.next()).value;
        if (!c || !d) return;
        sock.write(Buffer.concat([response(c.streamId, Buffer.from('C')), response(d.streamId, Buffer.from('D'))]));
      })();
    });
    const client = await TtrpcClient.connect(sockPath);
    t.after(() => client.close());
    const [a, b] = await Promise.all([client.call(SVC, 'M', Buffer.alloc(0)), client.call(SVC, 'M', Buffer.alloc(0))]);
    assert.equal(a.length, 70000);
    assert.equal(b.toString(), 'B');
    const [c, d] = await Promise.all([client.call(SVC, 'M', Buffer.alloc(0)), client.call(SVC, 'M', Buffer.alloc(0))]);
    assert.deepEqual([c.toString(), d.toString()], ['C', 'D']);
  });

  test('the peer closing mid-call fails every pending call with RUNTIME_UNAVAILABLE, later calls too', async (t) => {
    const sockPath = await rawServer(t, (sock, reqs) => {
      void (async () => {
        await reqs.next();
        await reqs.next();
        sock.end();
      })();
    });
    const client = await TtrpcClient.connect(sockPath);
    let closed = false;
    client.onClose(() => { closed = true; });
    const results = await Promise.allSettled([client.call(SVC, 'M', Buffer.alloc(0)), client.call(SVC, 'M', Buffer.alloc(0))]);
    for (const r of results) {
      assert.equal(r.status, 'rejected');
      assert.equal((r.reason as IsulaError).code, 'RUNTIME_UNAVAILABLE');
    }
    assert.ok(closed && client.isClosed);
    await assert.rejects(client.call(SVC, 'M', Buffer.alloc(0)), { code: 'RUNTIME_UNAVAILABLE' });
  });

  test('a deadline expires locally with TIMEOUT; the late reply is dropped and the connection still works', async (t) => {
    let first = true;
    const sockPath = await rawServer(t, (sock, reqs) => {
      void (async () => {
        for await (const r of reqs) {
          if (first) {
            first = false;
            setTimeout(() => sock.write(response(r.streamId, Buffer.from('late'))), 1000);
          } else {
            sock.write(response(r.streamId, Buffer.from('on time')));
          }
        }
      })();
    });
    const client = await TtrpcClient.connect(sockPath);
    t.after(() => client.close());
    // The reply comes 1 s late: a call that resolved instead of TIMEOUT would have waited for it
    // (no bound on elapsed time: a loaded host stalls, and timers still fire in order).
    await assert.rejects(client.call(SVC, 'M', Buffer.alloc(0), { timeoutMs: 50 }), { code: 'TIMEOUT' });
    await new Promise((r) => setTimeout(r, 1100));
    assert.equal((await client.call(SVC, 'M', Buffer.alloc(0), { timeoutMs: 1000 })).toString(), 'on time');
  });

  test('an abort signal cancels a call with CANCELED', async (t) => {
    const sockPath = await rawServer(t, () => {});
    const client = await TtrpcClient.connect(sockPath);
    t.after(() => client.close());
    const ac = new AbortController();
    const p = client.call(SVC, 'M', Buffer.alloc(0), { signal: ac.signal });
    ac.abort();
    await assert.rejects(p, { code: 'CANCELED' });
  });

  test('the server answers DEADLINE_EXCEEDED past timeout_nano and aborts the handler', async (t) => {
    const dir = await tempDir(t);
    const server = new TtrpcServer();
    let aborted = false;
    server.register(SVC, 'Hang', (call) => new Promise((_resolve, reject) => {
      call.signal.addEventListener('abort', () => { aborted = true; reject(new Error('aborted')); });
    }));
    await server.listen(path.join(dir, 's'));
    t.after(() => server.close());
    // A raw client that sends a deadline but keeps no timer of its own.
    const sock = net.connect(path.join(dir, 's'));
    t.after(async () => { sock.destroy(); });
    await new Promise((r) => sock.once('connect', r));
    const decoder = new FrameDecoder();
    const reply = new Promise<Record<string, unknown>>((resolve) => sock.on('data', (c: Buffer) => {
      for (const f of decoder.push(c)) resolve(decode('ttrpc.Response', f.payload));
    }));
    sock.write(encodeFrame(1, TYPE_REQUEST, encode('ttrpc.Request', { service: SVC, method: 'Hang', timeout_nano: 30_000_000 })));
    const res = await reply;
    assert.equal((res['status'] as { code: number }).code, GrpcCode.DEADLINE_EXCEEDED);
    assert.ok(aborted);
  });

  test('oversize: the server refuses a big request with RESOURCE_EXHAUSTED, the client a big reply; both connections survive', async (t) => {
    const dir = await tempDir(t);
    const server = new TtrpcServer({ maxBytes: 1024 });
    server.register(SVC, 'Echo', async (call) => call.payload);
    server.register(SVC, 'Big', async () => Buffer.alloc(4096));
    await server.listen(path.join(dir, 's'));
    t.after(() => server.close());
    const big = await TtrpcClient.connect(path.join(dir, 's'));
    t.after(() => big.close());
    await assert.rejects(big.call(SVC, 'Echo', Buffer.alloc(2000)), (e: unknown) => e instanceof IsulaError && e.details?.['grpcCode'] === GrpcCode.RESOURCE_EXHAUSTED);
    // The server's reply over its own limit becomes a RESOURCE_EXHAUSTED status.
    await assert.rejects(big.call(SVC, 'Big', Buffer.alloc(0)), (e: unknown) => e instanceof IsulaError && e.details?.['grpcCode'] === GrpcCode.RESOURCE_EXHAUSTED);
    assert.equal((await big.call(SVC, 'Echo', Buffer.from('still fine'))).toString(), 'still fine');

    // A client with a small limit skips a reply over it and carries on.
    const small = await TtrpcClient.connect(path.join(dir, 's'), { maxBytes: 512 });
    t.after(() => small.close());
    await assert.rejects(small.call(SVC, 'Echo', Buffer.alloc(600)), (e: unknown) => e instanceof IsulaError && e.details?.['grpcCode'] === GrpcCode.RESOURCE_EXHAUSTED);
    const sockPath = await rawServer(t, (sock, reqs) => {
      void (async () => {
        const a = (await reqs.next()).value;
        const b = (await reqs.next()).value;
        if (!a || !b) return;
        sock.write(Buffer.concat([response(a.streamId, Buffer.alloc(800)), response(b.streamId, Buffer.from('small'))]));
      })();
    });
    const c = await TtrpcClient.connect(sockPath, { maxBytes: 512 });
    t.after(() => c.close());
    const [r1, r2] = await Promise.allSettled([c.call(SVC, 'M', Buffer.alloc(0)), c.call(SVC, 'M', Buffer.alloc(0))]);
    assert.equal(r1.status, 'rejected');
    assert.equal(((r1 as PromiseRejectedResult).reason as IsulaError).details?.['grpcCode'], GrpcCode.RESOURCE_EXHAUSTED);
    assert.equal(r2.status === 'fulfilled' && r2.value.toString(), 'small');
  });

  test('google.rpc.Status codes map to error kinds, both ways', async (t) => {
    const dir = await tempDir(t);
    const server = new TtrpcServer();
    server.register(SVC, 'NotFound', async () => { throw new IsulaError('CONTAINER_NOT_FOUND', 'no such task'); });
    server.register(SVC, 'Plain', async () => { throw new Error('boom'); });
    await server.listen(path.join(dir, 's'));
    t.after(() => server.close());
    const client = await TtrpcClient.connect(path.join(dir, 's'));
    t.after(() => client.close());
    const nf = await client.call(SVC, "NotFound", Buffer.alloc(0)).then(() => assert.fail("resolved"), (e: unknown) => e as IsulaError);
    assert.equal(nf.code, 'CONTAINER_NOT_FOUND');
    assert.equal(nf.details?.['grpcCode'], GrpcCode.NOT_FOUND);
    const plain = await client.call(SVC, "Plain", Buffer.alloc(0)).then(() => assert.fail("resolved"), (e: unknown) => e as IsulaError);
    assert.equal(plain.code, 'RUNTIME_FAILED');
    assert.equal(plain.details?.['grpcCode'], GrpcCode.UNKNOWN);

    const codes: [number, string][] = [[GrpcCode.FAILED_PRECONDITION, 'CONTAINER_STATE_CONFLICT'], [GrpcCode.DEADLINE_EXCEEDED, 'TIMEOUT'], [GrpcCode.UNAVAILABLE, 'RUNTIME_UNAVAILABLE'], [GrpcCode.INTERNAL, 'RUNTIME_FAILED']];
    const sockPath = await rawServer(t, (sock, reqs) => {
      void (async () => {
        for await (const r of reqs) {
          const code = Number((r.req['payload'] as Buffer).toString());
          sock.write(response(r.streamId, Buffer.alloc(0), { code, message: `status ${code}` }));
        }
      })();
    });
    const raw = await TtrpcClient.connect(sockPath);
    t.after(() => raw.close());
    for (const [grpc, code] of codes) {
      await assert.rejects(raw.call(SVC, 'M', Buffer.from(String(grpc))), { code }, `gRPC ${grpc}`);
    }
  });

  test('connecting to a missing socket is RUNTIME_UNAVAILABLE; a long socket path still connects', async (t) => {
    const dir = await tempDir(t);
    await assert.rejects(TtrpcClient.connect(path.join(dir, 'none.sock'), { connectTimeoutMs: 500 }), { code: 'RUNTIME_UNAVAILABLE' });
    const long = path.join(dir, 'x'.repeat(60), 'y'.repeat(60));
    await fs.mkdir(long, { recursive: true });
    const server = net.createServer((s) => s.on('data', () => {}));
    // Listen through a short relative path: cwd-relative names are not truncated.
    const cwd = process.cwd();
    process.chdir(long);
    try {
      await new Promise<void>((r) => server.listen('s', r));
    } finally {
      process.chdir(cwd);
    }
    t.after(() => new Promise<void>((r) => server.close(() => r())));
    const c = await TtrpcClient.connect(path.join(long, 's'));
    assert.ok(!c.isClosed);
    c.close();
  });
});
