/** The streaming server's URLs and tokens (single use, expiry, bound), refusals, and the status JSON. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import http from 'node:http';
import { test } from 'node:test';
import pino from 'pino';
import { WebSocket } from 'ws';
import { isIsulaError, type Engine } from '@isula/core';
import { MAX_IN_FLIGHT, parseAddress, statusJson, StreamingServer, wsFraming } from '../src/streaming.js';

function upgrade(url: string, headers: Record<string, string | string[]>): Promise<{ status: number; body: string; headers: http.IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: 'POST', headers: { Connection: 'Upgrade', ...headers } });
    req.on('upgrade', (res, socket) => { socket.destroy(); resolve({ status: res.statusCode ?? 0, body: '', headers: res.headers }); });
    req.on('response', (res) => {
      let body = '';
      res.on('data', (c: Buffer) => { body += c.toString(); });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
    });
    req.on('error', reject);
    req.end();
  });
}

test('streaming: URLs carry single-use tokens that expire; bad upgrades are refused', async (t) => {
  const server = new StreamingServer({ address: '127.0.0.1:0', log: pino({ level: 'silent' }), engine: () => ({}) as Engine });
  assert.throws(() => server.url({ kind: 'portforward', req: { pod_sandbox_id: 'p', port: [80] } }), (e: unknown) => isIsulaError(e, 'RUNTIME_UNAVAILABLE'));
  await server.start();
  t.after(() => server.stop());
  assert.match(server.baseUrl, /^http:\/\/127\.0\.0\.1:\d+$/);
  const spdy = { Upgrade: 'SPDY/3.1', 'X-Stream-Protocol-Version': 'portforward.k8s.io' };

  const u1 = server.url({ kind: 'portforward', req: { pod_sandbox_id: 'p', port: [80] } });
  assert.match(u1, /\/portforward\/[A-Za-z0-9_-]{22}$/);
  // A token is good for its own kind only, and is used up by the attempt.
  assert.equal((await upgrade(u1.replace('/portforward/', '/exec/'), spdy)).status, 404);
  assert.equal((await upgrade(u1, spdy)).status, 404);
  // A wrong upgrade or protocol: refused (and the token is spent).
  const u2 = server.url({ kind: 'exec', req: { container_id: 'c', cmd: ['true'], tty: false, stdin: false, stdout: true, stderr: false } });
  const plain = await new Promise<number>((resolve) => http.get(u2, (res) => { res.resume(); resolve(res.statusCode ?? 0); }));
  assert.equal(plain, 400, 'a plain GET is told to upgrade');
  const wrong = await upgrade(u2, { Upgrade: 'SPDY/3.1', 'X-Stream-Protocol-Version': ['v2.channel.k8s.io', 'channel.k8s.io'] });
  assert.equal(wrong.status, 403);
  assert.match(wrong.body, /unable to negotiate protocol/);
  const u3 = server.url({ kind: 'exec', req: { container_id: 'c', cmd: ['true'], tty: false, stdin: false, stdout: true, stderr: false } });
  assert.equal((await upgrade(u3, { Upgrade: 'h2c' })).status, 400);
  // Expired after the TTL: a server of its own with a short one (the checks above take
  // round trips a loaded host can stretch past any short TTL).
  const shortLived = new StreamingServer({ address: '127.0.0.1:0', log: pino({ level: 'silent' }), engine: () => ({}) as Engine, tokenTtlMs: 300 });
  await shortLived.start();
  t.after(() => shortLived.stop());
  const u4 = shortLived.url({ kind: 'attach', req: { container_id: 'c', tty: false, stdin: false, stdout: true, stderr: false } });
  await new Promise((r) => setTimeout(r, 400));
  assert.equal((await upgrade(u4, { Upgrade: 'SPDY/3.1', 'X-Stream-Protocol-Version': 'v4.channel.k8s.io' })).status, 404);
  // Unknown paths.
  assert.equal((await upgrade(`${server.baseUrl}/exec/../../etc`, spdy)).status, 404);
  // At most MAX_IN_FLIGHT live tokens (a server with the default one-minute TTL).
  const busy = new StreamingServer({ address: '127.0.0.1:0', log: pino({ level: 'silent' }), engine: () => ({}) as Engine });
  await busy.start();
  t.after(() => busy.stop());
  for (let i = 0; i < MAX_IN_FLIGHT; i++) busy.url({ kind: 'portforward', req: { pod_sandbox_id: 'p', port: [] } });
  assert.throws(() => busy.url({ kind: 'portforward', req: { pod_sandbox_id: 'p', port: [] } }), /too many streaming requests/);
});

test('streaming: the exit status is the kubelet\'s metav1.Status JSON; addresses parse', () => {
  assert.deepEqual(JSON.parse(statusJson(0)), { metadata: {}, status: 'Success' });
  const failed = JSON.parse(statusJson(3)) as { status: string; reason: string; details: { causes: unknown[] } };
  assert.equal(failed.status, 'Failure');
  assert.equal(failed.reason, 'NonZeroExitCode');
  assert.deepEqual(failed.details.causes, [{ reason: 'ExitCode', message: '3' }]);
  assert.deepEqual(JSON.parse(statusJson(null, 'no such container')), { metadata: {}, status: 'Failure', message: 'no such container' });
  assert.deepEqual(parseAddress('127.0.0.1:0'), { host: '127.0.0.1', port: 0 });
  assert.deepEqual(parseAddress('[::1]:10010'), { host: '::1', port: 10010 });
  assert.deepEqual(parseAddress('localhost'), { host: 'localhost', port: 0 });
  for (const bad of ['', ':80', '1.2.3.4:70000', 'a:b:c']) assert.throws(() => parseAddress(bad), (e: unknown) => isIsulaError(e, 'PLUGIN_OPTIONS_INVALID'), bad);
});

test('WebSocket framing: binary channels, and the base64 variants as text with the channel as a digit', () => {
  const bin = wsFraming('v4.channel.k8s.io');
  assert.deepEqual(bin.encode(1, Buffer.from('hi')), { frame: Buffer.from([1, 0x68, 0x69]), binary: true });
  assert.deepEqual(bin.decode(Buffer.from([0, 0x61]), true), { channel: 0, data: Buffer.from('a') });
  assert.equal(bin.decode(Buffer.from('0YQ=='), false), undefined, 'a text frame is not a binary channel\'s');
  assert.equal(bin.decode(Buffer.alloc(0), true), undefined);

  for (const protocol of ['v4.base64.channel.k8s.io', 'base64.channel.k8s.io']) {
    const b64 = wsFraming(protocol);
    assert.deepEqual(b64.encode(2, Buffer.from([0xff, 0x00, 0x41])), { frame: '2/wBB', binary: false });
    assert.deepEqual(b64.encode(1, Buffer.alloc(0)), { frame: '1', binary: false }, 'the empty "ready" frame');
    assert.deepEqual(b64.decode(Buffer.from('0aGVsbG8K'), false), { channel: 0, data: Buffer.from('hello\n') });
    // Port-forward's channels past 9 go on in ASCII, as the kubelet's ('0' + 10 is ':').
    assert.equal(b64.encode(10, Buffer.from('x')).frame, ':eA==');
    assert.deepEqual(b64.decode(Buffer.from(':eA=='), false), { channel: 10, data: Buffer.from('x') });
    assert.equal(b64.decode(Buffer.from([1, 2]), true), undefined, 'binary frames are not base64 channels');
    assert.equal(b64.decode(Buffer.from(' x'), false), undefined, 'below the digit 0');
  }
});

test('an exec session with no traffic for idleTimeoutMs is closed and its process killed', async (t) => {
  // A stand-in engine (the session's transport is under test, not exec): its exec is a real
  // process of the test's own that never ends by itself, so the kill is visible.
  const child = spawn('sleep', ['30'], { stdio: 'ignore' });
  t.after(() => { child.kill('SIGKILL'); });
  const killedBy = new Promise<NodeJS.Signals | null>((resolve) => child.once('exit', (_code, sig) => resolve(sig)));
  const engine = {
    execs: {
      create: () => ({ Id: 'e1' }),
      start: async (_id: string, sink: { write(s: 1 | 2, b: Buffer): void }) => {
        sink.write(1, Buffer.from('started\n'));
        return { done: new Promise(() => undefined), exitCode: null, running: true, pid: child.pid ?? 0 };
      },
      resize: async () => undefined,
    },
  } as unknown as Engine;
  const server = new StreamingServer({ address: '127.0.0.1:0', log: pino({ level: 'silent' }), engine: () => engine, idleTimeoutMs: 400 });
  await server.start();
  t.after(() => server.stop());
  const url = server.url({ kind: 'exec', req: { container_id: 'c', cmd: ['sleep', '30'], tty: false, stdin: false, stdout: true, stderr: false } });
  const ws = new WebSocket(url.replace(/^http/, 'ws'), ['v4.channel.k8s.io']);
  let output = '';
  ws.on('message', (raw: Buffer) => { if (raw[0] === 1) output += raw.subarray(1).toString(); });
  const opened = Date.now();
  const closedAfter = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the idle session was not closed within 10 s')), 10_000);
    ws.once('close', () => { clearTimeout(timer); resolve(Date.now() - opened); });
    ws.once('error', () => undefined);
  });
  assert.equal(output, 'started\n');
  assert.ok(closedAfter >= 350, `closed after ${closedAfter} ms, before the idle timeout`);
  assert.equal(await killedBy, 'SIGKILL', 'the abandoned exec is killed, as when a client leaves');
});
