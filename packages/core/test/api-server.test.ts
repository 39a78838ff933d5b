import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import pino from 'pino';
import { API_VERSION, ApiServer, MAX_JSON_BODY_BYTES } from '../src/api/server.js';
import { IsulaError } from '../src/errors.js';

async function tempDir(t: TestContext): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'isula-core-api-'));
  t.after(() => fs.rm(dir, { recursive: true, force: true }));
  return dir;
}

/** An ApiServer on its own socket with a few routes; closed when the test ends. */
async function startServer(t: TestContext): Promise<{ api: ApiServer; socketPath: string; dir: string }> {
  const dir = await tempDir(t);
  const socketPath = path.join(dir, 'run', 'isulad.sock');
  const api = new ApiServer(pino({ level: 'silent' }));
  api.route('GET', '/_ping', async () => 'OK');
  api.route('POST', '/containers/:id/echo', async ({ params, json, query }) => ({ id: params['id'], body: await json(), q: query.get('q') }));
  api.route('DELETE', '/containers/:id', async ({ params }) => {
    throw new IsulaError('RUNTIME_NOT_FOUND', `No such container: ${params['id'] ?? ''}`);
  });
  api.route('GET', '/boom', async () => { throw new Error('unexpected'); });
  api.route('POST', '/nothing', async () => undefined);
  await api.listen([`unix://${socketPath}`]);
  t.after(() => api.close());
  return { api, socketPath, dir };
}

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
}

function call(socketPath: string, method: string, urlPath: string, options: { body?: string | Buffer; headers?: http.OutgoingHttpHeaders } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const headers: http.OutgoingHttpHeaders = { ...options.headers };
    if (options.body !== undefined && headers['content-length'] === undefined && headers['transfer-encoding'] === undefined) {
      headers['content-length'] = Buffer.byteLength(options.body);
    }
    // agent: false so no keep-alive socket outlives the test.
    const req = http.request({ socketPath, method, path: urlPath, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(options.body);
  });
}

/** The `{ message, code }` error body, checked for shape. */
function errorBody(reply: Reply): { message: string; code: string } {
  assert.match(String(reply.headers['content-type']), /^application\/json/);
  const body = JSON.parse(reply.text) as unknown;
  assert.ok(typeof body === 'object' && body !== null);
  const { message, code } = body as Record<string, unknown>;
  assert.equal(typeof message, 'string');
  assert.equal(typeof code, 'string');
  return { message: message as string, code: code as string };
}

/** Sends raw bytes and reads until the server closes the connection. */
function rawExchange(socketPath: string, request: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const socket = net.connect(socketPath, () => socket.end(request));
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    socket.on('error', reject);
  });
}

test('a route answers with JSON and the Api-Version header', async (t) => {
  const { socketPath } = await startServer(t);
  const reply = await call(socketPath, 'POST', '/containers/abc/echo?q=1', { body: '{"x":[1,2]}', headers: { 'content-type': 'application/json' } });
  assert.equal(reply.status, 200);
  assert.equal(reply.headers['api-version'], API_VERSION);
  assert.deepEqual(JSON.parse(reply.text), { id: 'abc', body: { x: [1, 2] }, q: '1' });
});

test('a handler returning undefined answers 204', async (t) => {
  const { socketPath } = await startServer(t);
  const reply = await call(socketPath, 'POST', '/nothing');
  assert.equal(reply.status, 204);
  assert.equal(reply.text, '');
});

test('the socket is created with mode 0660', async (t) => {
  const { socketPath } = await startServer(t);
  const stat = await fs.stat(socketPath);
  assert.ok(stat.isSocket());
  assert.equal(stat.mode & 0o777, 0o660);
});

test('an unknown route is 404 with {message, code}', async (t) => {
  const { socketPath } = await startServer(t);
  const reply = await call(socketPath, 'GET', '/no/such/thing');
  assert.equal(reply.status, 404);
  assert.equal(errorBody(reply).code, 'API_ROUTE_NOT_FOUND');
});

test('paths are accepted with a /v1.41/ prefix and older supported versions', async (t) => {
  const { socketPath } = await startServer(t);
  for (const prefix of ['', `/v${API_VERSION}`, '/v1.12', '/v1.40']) {
    const reply = await call(socketPath, 'GET', `${prefix}/_ping`);
    assert.equal(reply.status, 200, prefix);
    assert.equal(JSON.parse(reply.text), 'OK');
  }
});

test('an API version outside the supported range is 400 API_VERSION_UNSUPPORTED', async (t) => {
  const { socketPath } = await startServer(t);
  for (const p of ['/v9.99/x', '/v1.42/_ping', '/v1.11/_ping']) {
    const reply = await call(socketPath, 'GET', p);
    assert.equal(reply.status, 400, p);
    assert.equal(errorBody(reply).code, 'API_VERSION_UNSUPPORTED', p);
  }
});

test('a known path with the wrong method is 405', async (t) => {
  const { socketPath } = await startServer(t);
  const reply = await call(socketPath, 'PUT', '/containers/abc/echo');
  assert.equal(reply.status, 405);
  assert.equal(errorBody(reply).code, 'API_METHOD_NOT_ALLOWED');
});

test('an IsulaError from a handler maps to its kind status, anything else to 500 INTERNAL', async (t) => {
  const { socketPath } = await startServer(t);
  const notFound = await call(socketPath, 'DELETE', '/containers/abc');
  assert.equal(notFound.status, 404);
  assert.deepEqual(errorBody(notFound), { message: 'No such container: abc', code: 'RUNTIME_NOT_FOUND' });
  const boom = await call(socketPath, 'GET', '/boom');
  assert.equal(boom.status, 500);
  assert.equal(errorBody(boom).code, 'INTERNAL');
});

test('a malformed JSON body is 400 API_BAD_REQUEST', async (t) => {
  const { socketPath } = await startServer(t);
  const reply = await call(socketPath, 'POST', '/containers/abc/echo', { body: '{"x":', headers: { 'content-type': 'application/json' } });
  assert.equal(reply.status, 400);
  assert.equal(errorBody(reply).code, 'API_BAD_REQUEST');
});

test('a body without Content-Type is read as JSON; an empty body is undefined', async (t) => {
  const { socketPath } = await startServer(t);
  const withBody = await call(socketPath, 'POST', '/containers/abc/echo', { body: '{"a":1}' });
  assert.deepEqual(JSON.parse(withBody.text), { id: 'abc', body: { a: 1 }, q: null });
  const empty = await call(socketPath, 'POST', '/containers/abc/echo');
  assert.deepEqual(JSON.parse(empty.text), { id: 'abc', q: null });
});

test('a body over MAX_JSON_BODY_BYTES is 413, declared or streamed', async (t) => {
  const { socketPath } = await startServer(t);
  const big = `"${'x'.repeat(MAX_JSON_BODY_BYTES)}"`;
  const declared = await call(socketPath, 'POST', '/containers/abc/echo', { body: big, headers: { 'content-type': 'application/json' } });
  assert.equal(declared.status, 413);
  assert.equal(errorBody(declared).code, 'API_BODY_TOO_LARGE');
  const chunked = await call(socketPath, 'POST', '/containers/abc/echo', { body: big, headers: { 'content-type': 'application/json', 'transfer-encoding': 'chunked' } });
  assert.equal(chunked.status, 413);
  assert.equal(errorBody(chunked).code, 'API_BODY_TOO_LARGE');
  // A body of exactly the limit is still accepted.
  const atLimit = `"${'x'.repeat(MAX_JSON_BODY_BYTES - 2)}"`;
  const ok = await call(socketPath, 'POST', '/containers/abc/echo', { body: atLimit });
  assert.equal(ok.status, 200);
});

test('a body with a Content-Type other than JSON is 400', async (t) => {
  const { socketPath } = await startServer(t);
  const reply = await call(socketPath, 'POST', '/containers/abc/echo', { body: '{"a":1}', headers: { 'content-type': 'text/plain' } });
  assert.equal(reply.status, 400);
  assert.equal(errorBody(reply).code, 'API_UNSUPPORTED_MEDIA_TYPE');
});

test('a malformed HTTP request gets 400 and the server keeps serving', async (t) => {
  const { socketPath } = await startServer(t);
  const answer = await rawExchange(socketPath, 'THIS IS NOT HTTP\r\n\r\n');
  assert.match(answer, /^HTTP\/1\.1 400 /);
  const reply = await call(socketPath, 'GET', '/_ping');
  assert.equal(reply.status, 200);
});

// `new URL()` throws on a request target such as "http://a:b:c/"; the
// TypeError becomes INTERNAL (500) instead of a client error.
test('an unparsable request target is a 400, not a 500', async (t) => {
  const { socketPath } = await startServer(t);
  const answer = await rawExchange(socketPath, 'GET http://a:b:c/_ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
  assert.match(answer, /^HTTP\/1\.1 400 /);
});

test('close() stops the server and removes the socket file', async (t) => {
  const { api, socketPath } = await startServer(t);
  await call(socketPath, 'GET', '/_ping');
  await api.close();
  await assert.rejects(fs.access(socketPath), { code: 'ENOENT' });
  await assert.rejects(call(socketPath, 'GET', '/_ping'), { code: 'ENOENT' });
  assert.equal(api.shutdownSignal.aborted, true);
});

test('listening where a live server answers is DAEMON_ALREADY_RUNNING; a stale socket is replaced', async (t) => {
  const { socketPath, dir } = await startServer(t);
  const second = new ApiServer(pino({ level: 'silent' }));
  await assert.rejects(second.listen([`unix://${socketPath}`]), { name: 'IsulaError', code: 'DAEMON_ALREADY_RUNNING' });

  // A socket file nobody listens on, as a daemon killed with SIGKILL leaves:
  // closing a unix server unlinks its path, so move the file away first.
  const stalePath = path.join(dir, 'stale.sock');
  const stale = net.createServer();
  await new Promise<void>((resolve) => stale.listen(path.join(dir, 'live.sock'), resolve));
  await fs.rename(path.join(dir, 'live.sock'), stalePath);
  await new Promise<void>((resolve) => stale.close(() => resolve()));
  assert.ok((await fs.lstat(stalePath)).isSocket());

  const third = new ApiServer(pino({ level: 'silent' }));
  await third.listen([`unix://${stalePath}`]);
  t.after(() => third.close());
  assert.equal((await call(stalePath, 'GET', '/_ping')).status, 404);
});

test('a socket path longer than the kernel allows is CONFIG_INVALID', async (t) => {
  const dir = await tempDir(t);
  const api = new ApiServer(pino({ level: 'silent' }));
  await assert.rejects(api.listen([`unix://${path.join(dir, 'x'.repeat(120))}.sock`]), { name: 'IsulaError', code: 'CONFIG_INVALID' });
});
