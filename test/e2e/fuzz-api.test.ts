/**
 * Fuzzing the engine API of a real isulad (fast-check): random and malformed
 * JSON bodies, Docker-shaped bodies with wrong types and odd values, path
 * tricks in ids and names, deep nesting, oversize and endless bodies,
 * slowloris clients and many idle connections. The daemon must answer every
 * request with a 2xx or a 4xx whose JSON body names the problem, never a 5xx,
 * never hang, never crash, and never keep the fds of closed clients.
 *
 * FUZZ_RUNS (default 60 per property under CI) sets the size; FUZZ_SEED replays
 * a failure (fast-check prints the seed and the shrunk counterexample). Inputs
 * that once broke something are kept in test/fuzz/api-corpus.json and replayed
 * first, every run.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { test } from 'node:test';
import fc from 'fast-check';
import { REPO, httpRequest, type HttpResult, type TestDaemon } from '../lib/harness.js';
import { containerDaemon, ok, sleep } from '../lib/containers.js';

const RUNS = Number(process.env['FUZZ_RUNS'] ?? 60);
const SEED = process.env['FUZZ_SEED'] === undefined ? {} : { seed: Number(process.env['FUZZ_SEED']) };
const params = { numRuns: RUNS, ...SEED, interruptAfterTimeLimit: 120_000 };

interface CorpusEntry { method: string; path: string; body?: string; why: string }
const corpus = JSON.parse(await fs.readFile(path.join(REPO, 'test/fuzz/api-corpus.json'), 'utf8')) as CorpusEntry[];

/** The property every answer must have. */
function assertClean(r: HttpResult, what: string): void {
  // 501: a capability no loaded plugin provides (networks here) is refused as such.
  assert.ok((r.status >= 200 && r.status < 500) || r.status === 501, `${what}: status ${r.status} (a bad request must be a 4xx): ${r.body.slice(0, 300)}`);
  if (r.status >= 400) {
    let msg: unknown;
    try {
      msg = (JSON.parse(r.body) as { message?: unknown }).message;
    } catch {
      assert.fail(`${what}: error body is not JSON: ${r.body.slice(0, 300)}`);
    }
    assert.ok(typeof msg === 'string' && msg.length > 0, `${what}: error without a message: ${r.body.slice(0, 300)}`);
  }
}

async function alive(d: TestDaemon): Promise<void> {
  assert.equal(d.proc?.exitCode, null, `isulad exited: ${d.stderr.slice(-2000)}`);
  const ping = await httpRequest(d.socket, 'GET', '/_ping');
  assert.equal(ping.status, 200);
}

/** Ids and names with path tricks, encodings, control bytes and sheer length. */
const trickyName = fc.oneof(
  fc.constantFrom('..', '../..', '../../etc/passwd', '%2e%2e', '%2e%2e%2f%2e%2e', 'a/../b', '.', '%00', '%ff', '%', '%%', 'x'.repeat(5000), 'busybox:latest/../../x', '\\..\\..', 'sha256:', 'sha256:zz'),
  fc.string({ maxLength: 40 }).map(encodeURIComponent),
  fc.string({ unit: 'grapheme', maxLength: 20 }).map(encodeURIComponent),
  fc.stringMatching(/^[a-zA-Z0-9._%/-]{1,60}$/),
);

const GET_BY_NAME = ['/containers/{}/json', '/containers/{}/top', '/containers/{}/logs?stdout=1', '/images/{}/json', '/volumes/{}', '/networks/{}', '/exec/{}/json', '/containers/{}/archive?path=/etc'];
const POST_BY_NAME = ['/containers/{}/start', '/containers/{}/stop?t=0', '/containers/{}/kill', '/containers/{}/pause', '/containers/{}/unpause', '/containers/{}/rename?name=x', '/images/{}/tag?repo=fuzz&tag=t', '/exec/{}/resize?h=1&w=1'];
const DELETE_BY_NAME = ['/containers/{}', '/images/{}', '/volumes/{}', '/networks/{}'];

/** A Docker-shaped create body with every field free to be of the wrong type or an odd value. */
const odd = fc.oneof(fc.jsonValue({ maxDepth: 3 }), fc.constantFrom(-1, 0, 2 ** 53, -(2 ** 63), 1e308, '', ' ', '-1', 'NaN', null, [], {}, [null], { '': '' }, '../..'));
const createBody = fc.record({
  Image: fc.oneof(fc.constantFrom('busybox', 'busybox:latest', 'nosuch', '', 'busybox@sha256:00'), odd),
  Cmd: fc.oneof(fc.array(fc.string({ maxLength: 10 }), { maxLength: 4 }), odd),
  Entrypoint: odd,
  Env: fc.oneof(fc.array(fc.string({ maxLength: 20 }), { maxLength: 4 }), odd),
  User: fc.oneof(fc.constantFrom('root', '0:0', 'nobody', 'nosuchuser', '99999999999:1', 'a:b:c'), odd),
  WorkingDir: fc.oneof(fc.constantFrom('/', 'relative', '/../..', '/tmp'), odd),
  Labels: odd,
  ExposedPorts: odd,
  Healthcheck: odd,
  HostConfig: fc.oneof(odd, fc.record({
    Memory: odd, MemorySwap: odd, CpuShares: odd, NanoCpus: odd, PidsLimit: odd, ShmSize: odd,
    Binds: fc.oneof(fc.array(fc.constantFrom('/nonexistent:/x', 'rel:/x', ':', '/tmp:/t:zz', '/tmp:relative', '/tmp:/t:ro', 'vol:/data'), { maxLength: 3 }), odd),
    PortBindings: odd, RestartPolicy: odd, CapAdd: odd, CapDrop: odd, Devices: odd, Ulimits: odd,
    Tmpfs: odd, Mounts: odd, NetworkMode: fc.oneof(fc.constantFrom('none', 'host', 'bridge', 'container:nosuch', 'nosuchnet'), odd),
    Privileged: odd, ReadonlyRootfs: odd, SecurityOpt: odd, LogConfig: odd, Sysctls: odd, Runtime: odd,
  }, { requiredKeys: [] })),
}, { requiredKeys: [] });

test('engine API fuzz: every bad request gets a 4xx with a message, and the daemon lives', { timeout: 600_000 }, async (t) => {
  const d = await containerDaemon(t, 'runc');
  ok(await d.isula(['create', '--name', 'fz', 'busybox', 'sleep', '100']));
  const before = await fdCount(d);
  let requests = 0;

  await t.test('regression corpus', async () => {
    for (const c of corpus) {
      const r = await httpRequest(d.socket, c.method, c.path, c.body, c.body === undefined ? {} : { 'content-type': 'application/json' });
      requests++;
      assertClean(r, `${c.method} ${c.path} (${c.why})`);
    }
    await alive(d);
  });

  await t.test('path tricks in ids and names', async () => {
    await fc.assert(fc.asyncProperty(trickyName, fc.nat(GET_BY_NAME.length + POST_BY_NAME.length + DELETE_BY_NAME.length - 1), async (name, i) => {
      const all: [string, string][] = [...GET_BY_NAME.map((p): [string, string] => ['GET', p]), ...POST_BY_NAME.map((p): [string, string] => ['POST', p]), ...DELETE_BY_NAME.map((p): [string, string] => ['DELETE', p])];
      const [method, pattern] = all[i]!;
      const url = pattern.replace('{}', name);
      const r = await httpRequest(d.socket, method, url);
      requests++;
      // Dot segments resolve inside the API's own namespace (`/containers/a/../b` is
      // `/containers/b`, as Go's ServeMux cleans paths for dockerd): a name may reach another
      // object of the API, never a file; so only the answer's shape is checked here.
      assertClean(r, `${method} ${url}`);
    }), params);
    await alive(d);
  });

  await t.test('malformed and wrongly typed JSON bodies', async () => {
    const endpoints = ['/containers/create', '/containers/fz/update', '/containers/fz/exec', '/volumes/create', '/networks/create', '/auth', '/exec/nosuch/start', '/containers/fz/resize?h=x&w=-1'];
    const malformed = fc.oneof(
      fc.string({ maxLength: 60 }),
      fc.jsonValue({ maxDepth: 4 }).map((v) => JSON.stringify(v)),
      fc.jsonValue({ maxDepth: 2 }).map((v) => JSON.stringify(v).slice(0, -1)),
      fc.constantFrom('{', '{"a":', '[1,2', '{"Image":"busybox",}', '\u0000', 'null', '""', '{"__proto__":{"polluted":true}}', '{"constructor":{"prototype":{"x":1}}}'),
    );
    await fc.assert(fc.asyncProperty(fc.constantFrom(...endpoints), malformed, async (ep, body) => {
      // /networks/create and /auth only ever see bodies that fail validation (no object with a
      // Name, no serveraddress): a valid one would make a bridge or dial out, which tests must not.
      if ((ep === '/networks/create' || ep === '/auth') && /"(Name|serveraddress)"/i.test(body)) return;
      const r = await httpRequest(d.socket, 'POST', ep, body, { 'content-type': 'application/json' });
      requests++;
      assertClean(r, `POST ${ep} ${JSON.stringify(body).slice(0, 200)}`);
    }), params);
    await alive(d);
    assert.equal(({} as Record<string, unknown>)['polluted'], undefined);
  });

  await t.test('Docker-shaped create bodies with odd values', async () => {
    await fc.assert(fc.asyncProperty(createBody, async (body) => {
      const r = await httpRequest(d.socket, 'POST', '/containers/create', JSON.stringify(body), { 'content-type': 'application/json' });
      requests++;
      assertClean(r, `create ${JSON.stringify(body).slice(0, 400)}`);
      if (r.status === 201) {
        const id = (JSON.parse(r.body) as { Id: string }).Id;
        const rm = await httpRequest(d.socket, 'DELETE', `/containers/${id}?force=1`);
        assert.equal(rm.status, 204, rm.body);
      }
    }), { ...params, numRuns: Math.max(10, Math.round(RUNS / 2)) });
    await alive(d);
  });

  await t.test('deep nesting, oversize and endless bodies', async () => {
    for (const depth of [1000, 100_000]) {
      const body = '['.repeat(depth) + ']'.repeat(depth);
      const r = await httpRequest(d.socket, 'POST', '/containers/create', body, { 'content-type': 'application/json' });
      requests++;
      assertClean(r, `nesting depth ${depth}`);
      assert.equal(r.status, 400);
    }
    const huge = await rawExchange(d.socket, 'POST /containers/create HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 4000000000\r\n\r\n{');
    assert.match(huge, /^HTTP\/1\.1 413 /, huge.slice(0, 200));
    // A chunked body that never ends: cut at the limit, answered 413, nothing kept.
    const endless = await endlessChunked(d.socket, '/containers/create', 64 << 20);
    assert.match(endless.head, /^HTTP\/1\.1 413 /, endless.head.slice(0, 200));
    assert.ok(endless.sent < 64 << 20, `the daemon read all ${endless.sent} bytes instead of stopping at its limit`);
    await alive(d);
  });

  await t.test('slowloris clients and many idle connections do not starve others', async () => {
    const sockets: net.Socket[] = [];
    try {
      for (let i = 0; i < 300; i++) {
        const s = net.createConnection(d.socket);
        s.on('error', () => {});
        sockets.push(s);
        // Half of them dribble a request line and never finish the headers.
        if (i % 2 === 0) s.write('GET /_ping HTTP/1.1\r\nHost: x\r\nX-Slow: ');
      }
      await sleep(200);
      const t0 = Date.now();
      for (let i = 0; i < 5; i++) await alive(d);
      assert.ok(Date.now() - t0 < 5000, `five pings took ${Date.now() - t0} ms beside 300 idle clients`);
      const ps = await d.isula(['ps', '-a']);
      assert.equal(ps.code, 0, ps.stderr);
    } finally {
      for (const s of sockets) s.destroy();
    }
  });

  // Every client above has gone: the daemon holds no more fds than before (a little slack
  // for lazily opened files such as a log or the event bus).
  let after = 0;
  for (let i = 0; i < 50; i++) {
    after = await fdCount(d);
    if (after <= before + 5) break;
    await sleep(100);
  }
  assert.ok(after <= before + 5, `fds before ${before}, after ${after}: clients' sockets leaked`);
  t.diagnostic(`requests ${requests}, fds before ${before} after ${after}, runs per property ${RUNS}`);
});

async function fdCount(d: TestDaemon): Promise<number> {
  return (await fs.readdir(`/proc/${d.proc!.pid}/fd`)).length;
}

/** Writes `request` raw and returns what came back until the daemon closed or 10 s passed. */
function rawExchange(socketPath: string, request: string): Promise<string> {
  return new Promise((resolve) => {
    const s = net.createConnection(socketPath);
    let got = '';
    const done = () => { clearTimeout(timer); s.destroy(); resolve(got); };
    const timer = setTimeout(done, 10_000);
    s.on('data', (c: Buffer) => { got += c.toString('latin1'); if (got.includes('\r\n\r\n')) done(); });
    s.on('error', done);
    s.on('close', done);
    s.write(request);
  });
}

/** Streams chunked JSON-ish bytes until the daemon answers or `cap` bytes went out. */
function endlessChunked(socketPath: string, urlPath: string, cap: number): Promise<{ head: string; sent: number }> {
  return new Promise((resolve) => {
    const s = net.createConnection(socketPath);
    let head = '';
    let sent = 0;
    let finished = false;
    const chunk = Buffer.from(`10000\r\n${'['.repeat(0x10000)}\r\n`);
    const done = () => { if (finished) return; finished = true; clearTimeout(timer); s.destroy(); resolve({ head, sent }); };
    const timer = setTimeout(done, 30_000);
    s.on('data', (c: Buffer) => { head += c.toString('latin1'); if (head.includes('\r\n\r\n')) done(); });
    s.on('error', done);
    s.on('close', done);
    s.write(`POST ${urlPath} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n`);
    const pump = () => {
      while (!finished && sent < cap) {
        sent += 0x10000;
        if (!s.write(chunk)) { s.once('drain', pump); return; }
      }
    };
    pump();
  });
}
