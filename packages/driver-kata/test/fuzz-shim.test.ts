/**
 * Fuzzing what the driver reads from a shim (fast-check): ttrpc frames
 * (random and mutated headers: lengths that lie or pass the limit, stream
 * ids, types, flags; any chunking), a fake peer on a real unix socket
 * answering calls with anything, random bytes and mutated messages as the
 * payload of every response the driver decodes (through the driver itself,
 * against a fake shim), `start` output and the `address` file read on
 * restore, and events Forward payloads (TaskExit/TaskOOM envelopes with
 * garbage). Each gives a value or an IsulaError, or is ignored with a log
 * line; every call settles within its deadline; the connection's other
 * side (the events server, a fresh client) keeps working.
 * FUZZ_RUNS sets the size, FUZZ_SEED replays.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import fc from 'fast-check';
import { pino } from 'pino';
import { IsulaError, isIsulaError, type RuntimeContainerRef } from '@isula/core';
import { EventsServer, type TaskEvent } from '../src/events-server.js';
import { ShimV2Driver, type ShimPersisted } from '../src/driver.js';
import { encode } from '../src/protos.js';
import { TASK_SERVICE, TaskClient, checkAddress, parseStartOutput, readAddressFile } from '../src/shim.js';
import { FrameDecoder, GrpcCode, HEADER_BYTES, TYPE_REQUEST, TYPE_RESPONSE, TtrpcClient, TtrpcServer, encodeFrame } from '../src/ttrpc.js';

const RUNS = Number(process.env['FUZZ_RUNS'] ?? 200);
const seed = process.env['FUZZ_SEED'] === undefined ? {} : { seed: Number(process.env['FUZZ_SEED']) };
const params = { numRuns: RUNS, ...seed };

function assertIsulaError(err: unknown, code?: string): asserts err is IsulaError {
  assert.ok(isIsulaError(err), `not an IsulaError: ${(err as Error)?.stack ?? String(err)}`);
  if (code !== undefined) assert.equal(err.code, code, err.message);
}

function tempDir(t: { after(fn: () => void): void }, tag: string): string {
  // Short: socket paths must stay under 108 bytes.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `kf-${tag}-`));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A logger whose lines the test reads. */
function memoryLogger(): { logger: pino.Logger; lines: { level: number; msg: string }[] } {
  const lines: { level: number; msg: string }[] = [];
  const logger = pino({ level: 'debug' }, { write: (s: string) => { lines.push(JSON.parse(s) as { level: number; msg: string }); } });
  return { logger, lines };
}

async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`${what}: not settled after ${ms} ms`)), ms); });
  try {
    return await Promise.race([p, late]);
  } finally {
    clearTimeout(timer);
  }
}

const bytes = (max: number) => fc.uint8Array({ maxLength: max }).map((b) => Buffer.from(b));

/** A frame header and body, every field of which may lie. */
const rawFrame = (maxBody: number) => fc.record({
  length: fc.oneof({ weight: 4, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: fc.constantFrom(0, 1, maxBody, maxBody + 1, 0x7fffffff, 0xffffffff) }, { weight: 1, arbitrary: fc.nat(maxBody * 2) }),
  streamId: fc.oneof(fc.constantFrom(0, 1, 2, 3, 0xffffffff), fc.nat()),
  type: fc.oneof(fc.constantFrom(TYPE_REQUEST, TYPE_RESPONSE, 0, 3, 255), fc.nat(255)),
  flags: fc.oneof(fc.constant(0), fc.nat(255)),
  body: bytes(Math.min(maxBody + 8, 200)),
}).map((f) => {
  const head = Buffer.alloc(HEADER_BYTES);
  head.writeUInt32BE(f.length ?? f.body.length, 0);
  head.writeUInt32BE(f.streamId >>> 0, 4);
  head.writeUInt8(f.type, 8);
  head.writeUInt8(f.flags, 9);
  return Buffer.concat([head, f.body]);
});

// ---- frames --------------------------------------------------------------------------

test('FrameDecoder: any byte stream, cut anywhere, gives the same frames and holds no more than one frame', () => {
  const max = 64;
  fc.assert(fc.property(fc.array(fc.oneof(rawFrame(max), bytes(30)), { maxLength: 8 }), fc.array(fc.nat(), { maxLength: 10 }), (parts, cuts) => {
    const stream = Buffer.concat(parts);
    const whole = new FrameDecoder(max).push(stream);
    const d = new FrameDecoder(max);
    const chunked = [];
    const at = [...new Set(cuts.map((c) => c % (stream.length + 1)))].sort((a, b) => a - b);
    let prev = 0;
    for (const c of [...at, stream.length]) {
      chunked.push(...d.push(stream.subarray(prev, c)));
      prev = c;
      assert.ok(d.bufferedBytes <= HEADER_BYTES + max + 200, `${d.bufferedBytes} bytes buffered`);
    }
    const view = (fs: ReturnType<FrameDecoder['push']>) => fs.map((f) => [f.streamId, f.type, f.flags, f.payload.toString('hex'), f.oversizeBytes]);
    assert.deepEqual(view(chunked), view(whole));
    for (const f of whole) {
      if (f.oversizeBytes !== undefined) assert.ok(f.oversizeBytes > max && f.payload.length === 0);
      else assert.ok(f.payload.length <= max);
    }
  }), params);
});

// ---- a fake peer over a real socket ----------------------------------------------------

type Action =
  | { kind: 'reply'; status: { code: number; message: string } | undefined; payload: Buffer; streamDelta: number; type: number; flags: number }
  | { kind: 'raw'; bytes: Buffer }
  | { kind: 'close' }
  | { kind: 'split'; at: number };

const action: fc.Arbitrary<Action> = fc.oneof(
  { weight: 4, arbitrary: fc.record({
    kind: fc.constant('reply' as const),
    status: fc.oneof(fc.constant(undefined), fc.record({ code: fc.oneof(fc.nat(20), fc.integer()), message: fc.string({ maxLength: 20 }) })),
    payload: bytes(40),
    // Mostly the call's own stream id, a response: the rest is what a confused peer sends.
    streamDelta: fc.oneof({ weight: 4, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.integer({ min: -3, max: 3 }) }),
    type: fc.oneof({ weight: 4, arbitrary: fc.constant(TYPE_RESPONSE) }, { weight: 1, arbitrary: fc.nat(255) }),
    flags: fc.oneof(fc.constant(0), fc.nat(255)),
  }) },
  { weight: 2, arbitrary: fc.oneof(rawFrame(1 << 20), bytes(40)).map((b) => ({ kind: 'raw' as const, bytes: b })) },
  { weight: 1, arbitrary: fc.constant({ kind: 'close' as const }) },
  { weight: 1, arbitrary: fc.nat(60).map((at) => ({ kind: 'split' as const, at })) },
);

test('the ttrpc client against a peer answering anything: every call settles in time with a payload or an IsulaError', async (t) => {
  const dir = tempDir(t, 'peer');
  const sockPath = path.join(dir, 'peer.sock');
  let plan: Action[] = [];
  const conns = new Set<net.Socket>();
  // The fake peer: reads requests with the package's decoder, answers each as the plan says.
  const server = net.createServer((sock) => {
    conns.add(sock);
    sock.on('close', () => conns.delete(sock));
    sock.on('error', () => {});
    const decoder = new FrameDecoder();
    sock.on('data', (c: Buffer) => {
      for (const f of decoder.push(c)) {
        let pending: Buffer[] = [];
        for (const a of plan) {
          if (a.kind === 'close') { sock.end(); return; }
          if (a.kind === 'raw') pending.push(a.bytes);
          if (a.kind === 'reply') {
            pending.push(encodeFrame((f.streamId + a.streamDelta) >>> 0, a.type, encode('ttrpc.Response', { ...(a.status && { status: a.status }), payload: a.payload }), a.flags));
          }
          if (a.kind === 'split') {
            // Whatever is pending goes out in two writes, cut at `at`.
            const all = Buffer.concat(pending);
            sock.write(all.subarray(0, a.at));
            sock.write(all.subarray(a.at));
            pending = [];
          }
        }
        if (pending.length > 0) sock.write(Buffer.concat(pending));
      }
    });
  });
  await new Promise<void>((r) => server.listen(sockPath, r));
  t.after(async () => {
    for (const c of conns) c.destroy();
    await new Promise<void>((r) => server.close(() => r()));
  });
  const outcomes = new Map<string, number>();
  await fc.assert(fc.asyncProperty(fc.array(action, { maxLength: 4 }), fc.integer({ min: 1, max: 3 }), async (p, calls) => {
    plan = p;
    const client = await TtrpcClient.connect(sockPath, { namespace: 'fuzz', connectTimeoutMs: 2000 });
    try {
      // A few calls at once: replies for one must not settle another wrongly.
      const results = await within(Promise.allSettled(Array.from({ length: calls }, () => client.call(TASK_SERVICE, 'State', Buffer.from('req'), { timeoutMs: 150 }))), 3000, 'calls');
      for (const r of results) {
        if (r.status === 'fulfilled') {
          assert.ok(Buffer.isBuffer(r.value));
          outcomes.set('ok', (outcomes.get('ok') ?? 0) + 1);
        } else {
          assertIsulaError(r.reason);
          outcomes.set(r.reason.code, (outcomes.get(r.reason.code) ?? 0) + 1);
        }
      }
    } finally {
      client.close();
    }
  }), { ...params, numRuns: Math.max(20, Math.round(RUNS / 3)) });
  t.diagnostic(`ttrpc peer: ${JSON.stringify(Object.fromEntries(outcomes))}`);
  // The peer's antics touched nothing of ours: a well-behaved exchange still works.
  plan = [{ kind: 'reply', status: undefined, payload: Buffer.from('fine'), streamDelta: 0, type: TYPE_RESPONSE, flags: 0 }];
  const client = await TtrpcClient.connect(sockPath);
  assert.equal((await client.call(TASK_SERVICE, 'State', Buffer.alloc(0), { timeoutMs: 2000 })).toString(), 'fine');
  client.close();
});

test('a ttrpc server fed any bytes answers or drops the connection, and keeps serving others', async (t) => {
  const dir = tempDir(t, 'srv');
  const server = new TtrpcServer({ maxBytes: 1024 });
  server.register('fuzz.v1.S', 'Echo', async (call) => call.payload);
  await server.listen(path.join(dir, 's.sock'));
  t.after(() => server.close());
  await fc.assert(fc.asyncProperty(fc.array(fc.oneof(rawFrame(1024), bytes(60), bytes(20).map((b) => encodeFrame(1, TYPE_REQUEST, b))), { maxLength: 5 }), async (parts) => {
    const sock = net.connect(path.join(dir, 's.sock'));
    sock.on('error', () => {});
    await new Promise<void>((r) => sock.once('connect', () => r()));
    const got: Buffer[] = [];
    sock.on('data', (c: Buffer) => got.push(c));
    sock.write(Buffer.concat(parts));
    await new Promise((r) => setTimeout(r, 5));
    sock.destroy();
    // Whatever it answered is frames of responses.
    for (const f of new FrameDecoder(1 << 20).push(Buffer.concat(got))) assert.equal(f.type, TYPE_RESPONSE);
  }), { ...params, numRuns: Math.max(20, Math.round(RUNS / 3)) });
  const client = await TtrpcClient.connect(path.join(dir, 's.sock'));
  assert.equal((await client.call('fuzz.v1.S', 'Echo', Buffer.from('still here'), { timeoutMs: 2000 })).toString(), 'still here');
  client.close();
});

// ---- every response the driver decodes, through the driver ------------------------------

const RESPONSES: Record<string, string> = {
  Connect: 'ConnectResponse', Create: 'CreateTaskResponse', Start: 'StartResponse', State: 'StateResponse', Wait: 'WaitResponse',
  Delete: 'DeleteResponse', Pids: 'PidsResponse', Kill: 'google.protobuf.Empty', Shutdown: 'google.protobuf.Empty',
  Pause: 'google.protobuf.Empty', Resume: 'google.protobuf.Empty', ResizePty: 'google.protobuf.Empty', CloseIO: 'google.protobuf.Empty',
  Update: 'google.protobuf.Empty', Exec: 'google.protobuf.Empty',
};
const full = (n: string) => (n.includes('.') ? n : `containerd.task.v2.${n}`);

const u32 = fc.oneof(fc.constantFrom(0, 1, 137, 255, 0xffffffff), fc.nat());
const timestamp = fc.oneof(
  fc.constant(undefined),
  fc.record({ seconds: fc.oneof(fc.integer({ min: 0, max: 4_000_000_000 }), fc.constantFrom(-62135596800, -1, 2 ** 40, 2 ** 53, 2 ** 62)), nanos: fc.oneof(fc.nat(999_999_999), fc.integer()) }),
);
/** A message of `type` with random field values (encoded by protobufjs, so well-formed). */
function message(type: string): fc.Arbitrary<Buffer> {
  const fields: Record<string, fc.Arbitrary<unknown>> = {
    pid: u32, shim_pid: u32, task_pid: u32, exit_status: u32, exited_at: timestamp, version: fc.string({ maxLength: 8 }),
    id: fc.string({ maxLength: 8 }), bundle: fc.string({ maxLength: 8 }), exec_id: fc.string({ maxLength: 8 }),
    status: fc.oneof(fc.constantFrom('UNKNOWN', 'CREATED', 'RUNNING', 'STOPPED', 'PAUSED', 'PAUSING'), fc.nat(40)),
    processes: fc.array(fc.record({ pid: u32 }, { requiredKeys: [] }), { maxLength: 3 }),
  };
  return fc.record(fields, { requiredKeys: [] }).map((v) => Buffer.from(encode(full(type), v)));
}
/** What a fake shim answers: a message of the right type, one of another, bytes, a status, or silence. */
function answer(type: string): fc.Arbitrary<{ payload?: Buffer; status?: { code: number; message: string }; hang?: true }> {
  return fc.oneof(
    { weight: 4, arbitrary: message(type).map((payload) => ({ payload })) },
    { weight: 1, arbitrary: fc.constantFrom(...Object.values(RESPONSES)).chain(message).map((payload) => ({ payload })) },
    { weight: 2, arbitrary: bytes(40).map((payload) => ({ payload })) },
    // A valid message with bytes flipped.
    { weight: 1, arbitrary: fc.tuple(message(type), fc.array(fc.tuple(fc.nat(), fc.nat(255)), { minLength: 1, maxLength: 3 })).map(([b, flips]) => {
      for (const [at, v] of flips) if (b.length > 0) b[at % b.length] = v;
      return { payload: b };
    }) },
    { weight: 1, arbitrary: fc.record({ code: fc.constantFrom(GrpcCode.NOT_FOUND, GrpcCode.UNKNOWN, GrpcCode.FAILED_PRECONDITION, 99), message: fc.string({ maxLength: 20 }) }).map((status) => ({ status })) },
    { weight: 1, arbitrary: fc.constant({ hang: true as const }) },
  );
}

test('TaskClient: random bytes as every response type give an object or an IsulaError', async (t) => {
  const dir = tempDir(t, 'task');
  const server = new TtrpcServer();
  let reply: Buffer = Buffer.alloc(0);
  for (const method of Object.keys(RESPONSES)) server.register(TASK_SERVICE, method, async () => reply);
  await server.listen(path.join(dir, 't.sock'));
  t.after(() => server.close());
  const client = await TaskClient.connect(path.join(dir, 't.sock'), 'fuzz', 2000);
  t.after(() => client.close());
  const counts = { ok: 0, refused: 0 };
  await fc.assert(fc.asyncProperty(fc.constantFrom(...Object.keys(RESPONSES)), fc.oneof(bytes(60), fc.constantFrom(...Object.values(RESPONSES)).chain(message)), async (method, payload) => {
    reply = payload;
    try {
      const res = await client.call(method, 'google.protobuf.Empty', {}, RESPONSES[method] ?? 'google.protobuf.Empty');
      assert.equal(typeof res, 'object');
      counts.ok++;
    } catch (err) {
      assertIsulaError(err, 'RUNTIME_FAILED');
      assert.match(err.message, /undecodable/);
      counts.refused++;
    }
  }), { ...params, examples: [['Wait', Buffer.from([0x08, 0xff])], ['State', Buffer.from([0x0f])]] });
  t.diagnostic(`responses: ${JSON.stringify(counts)}`);
});

test('the driver against a fake shim answering anything: state, pids, wait and delete give values or IsulaErrors, exits are valid', async (t) => {
  const dir = tempDir(t, 'drv');
  const shimSock = path.join(dir, 'shim.sock');
  const answers = new Map<string, { payload?: Buffer; status?: { code: number; message: string }; hang?: true }>();
  const shim = new TtrpcServer();
  for (const method of Object.keys(RESPONSES)) {
    shim.register(TASK_SERVICE, method, (call) => {
      const a = answers.get(method) ?? { payload: Buffer.alloc(0) };
      if (a.hang) return new Promise((_, reject) => call.signal.addEventListener('abort', () => reject(new Error('gone')), { once: true }));
      if (a.status) return Promise.reject(new IsulaError('RUNTIME_FAILED', a.status.message, { details: { grpcCode: a.status.code } }));
      return Promise.resolve(a.payload ?? Buffer.alloc(0));
    });
  }
  await shim.listen(shimSock);
  t.after(() => shim.close());
  const { logger } = memoryLogger();
  const events = new EventsServer(path.join(dir, 'ev.sock'), logger);
  const driver = new ShimV2Driver({ runtime: 'io.containerd.fuzz.v2', binary: '', stateDir: path.join(dir, 'state'), events, logger, timeoutMs: 300 });
  t.after(() => driver.close());
  let run = 0;
  const stopped = message('StateResponse').map(() => Buffer.from(encode('containerd.task.v2.StateResponse', { status: 'STOPPED' })));
  await fc.assert(fc.asyncProperty(
    fc.record({ State: answer('StateResponse'), Pids: answer('PidsResponse'), Wait: answer('WaitResponse') }),
    fc.record({ Kill: answer('google.protobuf.Empty'), Delete: answer('DeleteResponse'), Shutdown: answer('google.protobuf.Empty'), State: stopped.map((payload) => ({ payload })) }),
    async (first, teardown) => {
      for (const [k, v] of Object.entries(first)) answers.set(k, v);
      const id = `c${++run}`;
      const taskDir = path.join(dir, 'state', 'shim-v2', id);
      const bundle = path.join(dir, 'b', id);
      fs.mkdirSync(bundle, { recursive: true });
      const persisted: ShimPersisted = {
        schemaVersion: 1, runtime: 'io.containerd.fuzz.v2', binary: '', namespace: 'isula', address: `unix://${shimSock}`,
        containerdAddress: '', ttrpcAddress: '', shim: null, taskDir, io: { stdout: path.join(taskDir, 'stdout') },
        terminal: false, openStdin: false, stdinOnce: false, logPath: null, logSizeMaxBytes: null, cgroupPath: null,
      };
      const ref: RuntimeContainerRef = { id, bundle, containerDir: bundle, persisted: persisted as unknown as Record<string, unknown> };
      const signal = AbortSignal.timeout(5000);
      try {
        const st = await within(driver.state(ref, { signal }), 3000, 'state');
        assert.ok(['created', 'running', 'paused', 'stopped'].includes(st.status), st.status);
        assert.ok(Number.isInteger(st.pid) && st.pid >= 0);
      } catch (err) {
        if (err instanceof Error && /not settled/.test(err.message)) throw err;
        assertIsulaError(err);
      }
      try {
        for (const pid of await within(driver.pids(ref, { signal }), 3000, 'pids')) assert.ok(Number.isInteger(pid) && pid > 0);
      } catch (err) {
        if (err instanceof Error && /not settled/.test(err.message)) throw err;
        assertIsulaError(err);
      }
      const waiting = driver.wait(ref, { signal: AbortSignal.timeout(20_000) });
      for (const [k, v] of Object.entries(teardown)) answers.set(k, v);
      // Without force a running task may refuse: then force, as `rm -f` does.
      await within(driver.delete(ref, { signal, force: false }).catch(async (err: unknown) => {
        assertIsulaError(err);
        await driver.delete(ref, { signal, force: true });
      }), 10_000, 'delete');
      const exit = await within(waiting, 10_000, 'wait after delete');
      assert.ok(Number.isInteger(exit.exitCode) && exit.exitCode >= 0, `exit code ${exit.exitCode}`);
      assert.ok(!Number.isNaN(exit.exitedAt.getTime()), 'a valid exit time');
      assert.doesNotThrow(() => exit.exitedAt.toISOString());
    },
  ), {
    ...params,
    numRuns: Math.max(10, Math.round(RUNS / 10)),
    // Found: an exited_at past what a Date holds gave an Invalid Date (toISOString throws).
    examples: [[
      { State: { payload: Buffer.alloc(0) }, Pids: { payload: Buffer.from([0x0a, 0x05]) }, Wait: { payload: Buffer.from(encode('containerd.task.v2.WaitResponse', { exit_status: 3, exited_at: { seconds: 2 ** 62, nanos: 0 } })) } },
      { Kill: { payload: Buffer.alloc(0) }, Delete: { payload: Buffer.alloc(0) }, Shutdown: { payload: Buffer.alloc(0) }, State: { payload: Buffer.from(encode('containerd.task.v2.StateResponse', { status: 'STOPPED' })) } },
    ]],
  });
});

// ---- start output and the address file --------------------------------------------------

const addressLike = fc.oneof(
  fc.constantFrom('unix:///run/containerd/s/abc', '/run/containerd/s/abc', 'unix://', 'unix://relative', 'relative', '/', 'tcp://127.0.0.1:1', 'vsock://3:1024', '/a b', '/a\0b', '/a\nb', `/${'x'.repeat(5000)}`, 'unix:///x\u0085'),
  fc.string({ maxLength: 30 }),
  fc.string({ maxLength: 30 }).map((s) => `unix:///${s}`),
);
const startOut = fc.oneof(
  addressLike,
  fc.record({ version: fc.oneof(fc.constant(2), fc.jsonValue()), address: fc.oneof(addressLike, fc.jsonValue()), protocol: fc.oneof(fc.constantFrom('ttrpc', 'grpc', ''), fc.jsonValue()) }, { requiredKeys: [] }).map((o) => JSON.stringify(o)),
  fc.jsonValue().map((v) => JSON.stringify(v)),
  fc.constantFrom('', '{', '{}', 'null', '  unix:///run/x  \n', 'unix:///run/x\nunix:///run/y'),
);

/** A usable address: what a connect may be tried on. */
const isAddress = (a: string) => /^(unix:\/\/)?\/[^\s\0-\x1f\x7f]+$/.test(a) && Buffer.byteLength(a) <= 4096;

test('start output and the address file: any content is an address or RUNTIME_FAILED, read boundedly', async (t) => {
  fc.assert(fc.property(startOut, (out) => {
    try {
      const r = parseStartOutput(out);
      assert.ok(isAddress(r.address), `accepted ${JSON.stringify(r.address)}`);
      assert.equal(r.protocol, 'ttrpc');
    } catch (err) {
      assertIsulaError(err, 'RUNTIME_FAILED');
    }
  }), { ...params, examples: [['{"address":"/a\\u0000b"}'], ['{"address":"unix://"}'], ['{"address":"relative"}']] });

  const bundle = tempDir(t, 'addr');
  const file = path.join(bundle, 'address');
  const kind = fc.constantFrom('file', 'file', 'file', 'missing', 'dir', 'fifo');
  const content = fc.oneof({ weight: 4, arbitrary: addressLike }, { weight: 1, arbitrary: fc.constant('x'.repeat(8192)) }, { weight: 2, arbitrary: bytes(40).map((b) => b.toString('latin1')) });
  await fc.assert(fc.asyncProperty(content, kind, async (text, k) => {
    fs.rmSync(file, { recursive: true, force: true });
    if (k === 'file') fs.writeFileSync(file, text, 'latin1');
    else if (k === 'dir') fs.mkdirSync(file);
    else if (k === 'fifo') execFileSync('mkfifo', [file]);
    try {
      const a = await within(readAddressFile(bundle), 2000, 'readAddressFile');
      if (a !== undefined) {
        assert.ok(isAddress(a), `accepted ${JSON.stringify(a.slice(0, 100))}`);
        assert.equal(k, 'file');
      } else {
        assert.ok(k === 'missing' || text.trim() === '');
      }
    } catch (err) {
      if (err instanceof Error && /not settled/.test(err.message)) throw err;
      assertIsulaError(err, 'RUNTIME_FAILED');
      assert.notEqual(k, 'missing');
    }
  }), { ...params, examples: [['unix:///ok', 'fifo'], ['x'.repeat(1 << 20), 'file']] });
  assert.equal(checkAddress('unix:///run/containerd/s/abc', 'test'), 'unix:///run/containerd/s/abc');
});

test('restore with a garbage address file reaches the shim at the recorded address and says so in the log', async (t) => {
  const dir = tempDir(t, 'rst');
  const shimSock = path.join(dir, 'shim.sock');
  const shim = new TtrpcServer();
  shim.register(TASK_SERVICE, 'State', async () => encode('containerd.task.v2.StateResponse', { status: 'RUNNING', pid: 4242 }));
  // Never answers Wait (the task runs on); the close aborts it.
  shim.register(TASK_SERVICE, 'Wait', (call) => new Promise((_, reject) => call.signal.addEventListener('abort', () => reject(new Error('gone')), { once: true })));
  await shim.listen(shimSock);
  t.after(() => shim.close());
  const { logger, lines } = memoryLogger();
  const events = new EventsServer(path.join(dir, 'ev.sock'), logger);
  t.after(() => events.close());
  const driver = new ShimV2Driver({ runtime: 'io.containerd.fuzz.v2', binary: '', stateDir: path.join(dir, 'state'), events, logger, timeoutMs: 2000 });
  t.after(() => driver.close());
  const bundle = path.join(dir, 'bundle');
  fs.mkdirSync(bundle);
  for (const garbage of ['\0\0\0', 'unix://relative', 'x'.repeat(70_000)]) {
    fs.writeFileSync(path.join(bundle, 'address'), garbage);
    const taskDir = path.join(dir, 'state', 'shim-v2', 'c1');
    const persisted: ShimPersisted = {
      schemaVersion: 1, runtime: 'io.containerd.fuzz.v2', binary: '', namespace: 'isula', address: `unix://${shimSock}`,
      containerdAddress: '', ttrpcAddress: '', shim: null, taskDir, io: { stdout: path.join(taskDir, 'stdout') },
      terminal: false, openStdin: false, stdinOnce: false, logPath: null, logSizeMaxBytes: null, cgroupPath: null,
    };
    const st = await driver.restore({ id: 'c1', bundle, containerDir: bundle, persisted: persisted as unknown as Record<string, unknown> }, { signal: AbortSignal.timeout(5000) });
    assert.deepEqual(st, { status: 'running', pid: 4242 });
    assert.ok(lines.some((l) => l.level === 40 && /ignoring the shim address file/.test(l.msg)), 'a warning names the ignored file');
    lines.length = 0;
  }
});

// ---- events Forward ------------------------------------------------------------------------

test('events Forward with any payload: acknowledged, and only well-formed exit/oom events reach the driver', async (t) => {
  const dir = tempDir(t, 'ev');
  const { logger, lines } = memoryLogger();
  const events = new EventsServer(path.join(dir, 'ev.sock'), logger);
  await events.listen();
  t.after(() => events.close());
  const seen: TaskEvent[] = [];
  events.on((e) => seen.push(e));
  const client = await TtrpcClient.connect(events.socketPath);
  t.after(() => client.close());
  const typeUrl = fc.oneof(
    fc.constantFrom('containerd.events.TaskExit', 'types.containerd.io/containerd.events.TaskExit', 'containerd.events.TaskOOM', 'containerd.events.TaskStart',
      'containerd.events.', 'containerd.events', 'containerd.events.TaskExit.container_id', 'containerd.events.TaskExit/', 'containerd.task.v2.WaitResponse', '', '/'),
    fc.string({ maxLength: 20 }),
  );
  const taskExit = fc.record({ container_id: fc.string({ maxLength: 8 }), id: fc.string({ maxLength: 8 }), pid: u32, exit_status: u32, exited_at: timestamp }, { requiredKeys: [] })
    .map((v) => Buffer.from(encode('containerd.events.TaskExit', v)));
  const value = fc.oneof(taskExit, fc.record({ container_id: fc.string({ maxLength: 8 }) }).map((v) => Buffer.from(encode('containerd.events.TaskOOM', v))), bytes(40));
  const payload = fc.oneof(
    { weight: 4, arbitrary: fc.record({ namespace: fc.constantFrom('isula', '', 'other'), topic: fc.constantFrom('/tasks/exit', '/tasks/oom', '/x', ''), event: fc.oneof(fc.constant(undefined), fc.record({ type_url: typeUrl, value })) }, { requiredKeys: ['namespace', 'topic'] })
      .map((envelope) => Buffer.from(encode('containerd.services.events.ttrpc.v1.ForwardRequest', { envelope }))) },
    { weight: 1, arbitrary: bytes(60) },
  );
  await fc.assert(fc.asyncProperty(payload, async (p) => {
    seen.length = 0;
    lines.length = 0;
    // The shim is never stalled: Forward is acknowledged whatever it carried.
    const res = await within(client.call('containerd.services.events.ttrpc.v1.Events', 'Forward', p, { timeoutMs: 2000 }), 3000, 'Forward');
    assert.equal(res.length, 0);
    for (const e of seen) {
      assert.equal(typeof e.containerId, 'string');
      if ('exitStatus' in e) {
        assert.ok(Number.isInteger(e.exitStatus) && e.exitStatus >= 0);
        assert.ok(!Number.isNaN(e.exitedAt.getTime()), 'a valid exit time');
        assert.ok(Number.isInteger(e.pid));
      }
    }
    // Nothing is dropped without a line saying why.
    if (seen.length === 0) assert.ok(lines.some((l) => /undecodable|unknown type|without a payload/.test(l.msg)), `dropped silently: ${JSON.stringify(lines)}`);
    else assert.ok(lines.some((l) => l.msg === 'shim event'));
  }), {
    ...params,
    // Found: an exited_at of 2^62 s was passed on as an Invalid Date.
    examples: [[Buffer.from(encode('containerd.services.events.ttrpc.v1.ForwardRequest', { envelope: { namespace: 'isula', topic: '/tasks/exit', event: { type_url: 'containerd.events.TaskExit', value: Buffer.from(encode('containerd.events.TaskExit', { container_id: 'c', exit_status: 1, exited_at: { seconds: 2 ** 62, nanos: 0 } })) } } }))]],
  });
  // Still serving: a plain exit arrives.
  seen.length = 0;
  await client.call('containerd.services.events.ttrpc.v1.Events', 'Forward', encode('containerd.services.events.ttrpc.v1.ForwardRequest', {
    envelope: { namespace: 'isula', topic: '/tasks/exit', event: { type_url: 'containerd.events.TaskExit', value: Buffer.from(encode('containerd.events.TaskExit', { container_id: 'c9', exit_status: 7 })) } },
  }), { timeoutMs: 2000 });
  assert.equal(seen.length, 1);
  assert.equal(seen[0]?.containerId, 'c9');
});
