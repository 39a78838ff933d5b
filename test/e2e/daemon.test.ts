import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { test } from 'node:test';
import { httpRequest, newDaemon, runNode, ISULA, waitFor } from '../lib/harness.js';

test('isula version and info talk to a real isulad; /_ping and /version answer over raw HTTP', async (t) => {
  const d = await newDaemon(t);
  await d.writeConfig({ plugins: [] });
  await d.start();

  const version = await d.isula(['version']);
  assert.equal(version.code, 0, version.stderr);
  assert.match(version.stdout, /^Client:\n Version: +0\.1\.0/m);
  assert.match(version.stdout, /^Server:\n Version: +0\.1\.0\n API version: +1\.41/m);

  const info = await d.isula(['info']);
  assert.equal(info.code, 0, info.stderr);
  assert.match(info.stdout, new RegExp(`^iSulad Root Dir: ${d.graph}$`, 'm'));

  const ping = await httpRequest(d.socket, 'GET', '/_ping');
  assert.equal(ping.status, 200);
  assert.equal(ping.body, 'OK');
  assert.equal(ping.headers['api-version'], '1.41');
  for (const p of ['/version', '/v1.41/version', '/v1.24/version']) {
    const res = await httpRequest(d.socket, 'GET', p);
    assert.equal(res.status, 200, p);
    assert.equal((JSON.parse(res.body) as { ApiVersion: string }).ApiVersion, '1.41');
  }
  const infoJson = JSON.parse((await httpRequest(d.socket, 'GET', '/v1.41/info')).body) as { DockerRootDir: string; IsulaPlugins: unknown[] };
  assert.equal(infoJson.DockerRootDir, d.graph);
  assert.deepEqual(infoJson.IsulaPlugins, []);

  const stat = await fs.stat(d.socket);
  assert.equal(stat.mode & 0o777, 0o660, 'engine socket is mode 0660');
});

test('malformed API requests get 4xx answers with a message and the daemon keeps serving', async (t) => {
  const d = await newDaemon(t);
  await d.writeConfig({ plugins: [] });
  await d.start();

  const cases: [string, string, number][] = [
    ['GET', '/no/such/route', 404],
    ['DELETE', '/version', 405],
    ['GET', '/v9.99/version', 400],
    ['GET', '/v1.0/version', 400],
    ['GET', '/events?since=yesterday', 400],
    ['GET', '/events?filters=%7Bnot-json', 400],
    ['GET', '/events?filters=%7B%22bogus%22%3A%5B%22x%22%5D%7D', 400],
    ['GET', '/events?since=20&until=10', 400],
  ];
  for (const [method, p, status] of cases) {
    const res = await httpRequest(d.socket, method, p);
    assert.equal(res.status, status, `${method} ${p}`);
    const body = JSON.parse(res.body) as { message: unknown };
    assert.equal(typeof body.message, 'string', `${method} ${p} has a message`);
  }

  // Garbage that is not HTTP at all.
  const reply = await new Promise<string>((resolve, reject) => {
    const s = net.connect(d.socket);
    let data = '';
    s.on('data', (c: Buffer) => { data += c.toString('latin1'); });
    s.on('end', () => resolve(data));
    s.on('error', reject);
    s.write('\x00\x01 this is not http\r\n\r\n');
  });
  assert.match(reply, /^HTTP\/1\.1 400 /);

  // A huge body to a route is refused without reading it all.
  const huge = await httpRequest(d.socket, 'POST', '/version', Buffer.alloc(4 * 1024 * 1024, 0x41), { 'Content-Type': 'application/json' });
  assert.ok(huge.status >= 400 && huge.status < 500, `huge body got ${huge.status}`);

  const ping = await httpRequest(d.socket, 'GET', '/_ping');
  assert.equal(ping.status, 200, 'daemon still serves after bad requests');
});

test('a second daemon on the same roots is refused and the first keeps running', async (t) => {
  const d = await newDaemon(t);
  await d.writeConfig({ plugins: [] });
  await d.start();
  const pid = d.proc?.pid;

  const second = await runNode(path.join(path.dirname(ISULA), '../../core/dist/src/bin/isulad.js'), ['--config-file', d.configFile, '--state', d.state, '--graph', d.graph]);
  assert.equal(second.code, 1);
  assert.match(second.stderr, new RegExp(`already running.*\\(pid ${String(pid)}\\)|pid ${String(pid)}.*already running`));
  assert.equal((await httpRequest(d.socket, 'GET', '/_ping')).status, 200);
  assert.equal((await fs.readFile(path.join(d.state, 'isulad.pid'), 'utf8')).trim(), String(pid));
});

test('SIGTERM stops the daemon cleanly: exit 0, socket and pid file gone, open event streams ended', async (t) => {
  const d = await newDaemon(t);
  await d.writeConfig({ plugins: [] });
  await d.start();

  let connected!: () => void;
  const streamOpen = new Promise<void>((resolve) => { connected = resolve; });
  const streamEnded = new Promise<number>((resolve, reject) => {
    const req = http.request({ socketPath: d.socket, path: '/events' }, (res) => {
      connected();
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
  await waitFor(async () => (await d.log()).includes('engine API listening'), { what: 'daemon log' });
  // The events stream is open (its headers are sent at once) before the daemon is stopped.
  await streamOpen;
  const exit = await d.stop();
  assert.deepEqual(exit, { code: 0, signal: null });
  assert.equal(await streamEnded, 200);
  await assert.rejects(fs.stat(d.socket), { code: 'ENOENT' });
  await assert.rejects(fs.stat(path.join(d.state, 'isulad.pid')), { code: 'ENOENT' });
  assert.match(await d.log(), /isulad stopped/);
});

test('isula says the daemon is not running and exits 1 when nothing listens', async (t) => {
  const d = await newDaemon(t);
  const res = await d.isula(['info']);
  assert.equal(res.code, 1);
  assert.equal(res.stderr.trim(), `Cannot connect to the iSulad daemon at ${d.host}. Is the daemon running?`);

  // The default host, through ISULAD_HOST.
  const env = { ...process.env, ISULAD_HOST: d.host };
  const viaEnv = await runNode(ISULA, ['version'], { env });
  assert.equal(viaEnv.code, 1);
  assert.match(viaEnv.stdout, /^Client:/);
  assert.match(viaEnv.stderr, /Cannot connect to the iSulad daemon at unix:\/\/.*Is the daemon running\?/);
});

test('isula --version, help for every command, and usage errors', async () => {
  const v = await runNode(ISULA, ['--version']);
  assert.equal(v.code, 0);
  assert.equal(v.stdout.trim(), '0.1.0');
  for (const cmd of ['version', 'info', 'events']) {
    const h = await runNode(ISULA, [cmd, '--help']);
    assert.equal(h.code, 0, cmd);
    assert.match(h.stdout, new RegExp(`^Usage: isula ${cmd}`, 'm'));
  }
  const bad = await runNode(ISULA, ['no-such-command']);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /unknown command 'no-such-command'/);
});
