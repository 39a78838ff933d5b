/**
 * SIGHUP reloads daemon.json without touching running containers: the log
 * level (debug lines appear and disappear in the daemon log), registry
 * mirrors (through image-oci's configReloaded tap); an invalid file is
 * refused with a log line naming the problem, and the old config stays.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import { test } from 'node:test';
import { daemon, inspect, ok } from '../lib/containers.js';
import { httpRequest, waitFor, type TestDaemon } from '../lib/harness.js';
import { pushTestImage, registrySkip, startRegistry } from '../lib/registry.js';

const BASE = { plugins: ['@isula/image-oci', '@isula/driver-runc'], 'default-runtime': 'runc' };

interface LogLine { level: number; msg: string; [key: string]: unknown }

async function logLines(d: TestDaemon): Promise<LogLine[]> {
  return (await d.log()).split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as LogLine);
}

/** Sends SIGHUP and waits for the daemon to say the reload was applied or refused; returns the lines logged from then on. */
async function hup(d: TestDaemon, outcome: 'configuration reloaded' | 'configuration reload refused: daemon.json is invalid; the running configuration stays'): Promise<LogLine> {
  const before = (await logLines(d)).length;
  assert.ok(d.proc?.kill('SIGHUP'));
  return waitFor(async () => (await logLines(d)).slice(before).find((l) => l.msg === outcome), { timeoutMs: 10_000, what: outcome });
}

/** Debug lines (level 20) logged after `isula ps` (the API logs each request at debug). */
async function debugLinesFromPs(d: TestDaemon): Promise<number> {
  const before = (await logLines(d)).length;
  ok(await d.isula(['ps', '-q']));
  // The request line is written synchronously in the tick that ends the answer: it is in the file by now.
  return (await logLines(d)).slice(before).filter((l) => l.level === 20).length;
}

test('SIGHUP changes the log level, refuses an invalid daemon.json, and a running container keeps its pid', async (t) => {
  const d = await daemon(t, { 'log-level': 'info' });
  ok(await d.isula(['run', '-d', '--name', 'keep', 'busybox', 'sleep', '300']));
  const pid = (await inspect<{ State: { Pid: number; Running: boolean } }>(d, 'keep')).State.Pid;
  assert.ok(pid > 0);
  const daemonPid = d.proc?.pid;
  assert.equal(await debugLinesFromPs(d), 0, 'no debug line at info');

  await d.writeConfig({ ...BASE, 'log-level': 'debug' });
  const reloaded = await hup(d, 'configuration reloaded');
  assert.deepEqual(reloaded['changed'], ['log-level']);
  assert.ok(await debugLinesFromPs(d) > 0, 'debug lines after the reload to debug');

  // Invalid: refused with the key named; the level stays debug.
  await d.writeConfig({ ...BASE, 'log-level': 'verbose' });
  const refused = await hup(d, 'configuration reload refused: daemon.json is invalid; the running configuration stays');
  assert.equal(refused.level, 50, 'an error line');
  assert.equal(refused['code'], 'CONFIG_INVALID');
  assert.match(String(refused['problem']), /"log-level"/);
  assert.ok(await debugLinesFromPs(d) > 0, 'still debug after a refused reload');
  // A syntax error names the line and column.
  await d.writeConfig('{\n  "log-level": "info",\n}\n');
  const syntax = await hup(d, 'configuration reload refused: daemon.json is invalid; the running configuration stays');
  assert.match(String(syntax['problem']), /daemon\.json:3:1: invalid JSON/);

  // A key that needs a restart is named and not applied.
  await d.writeConfig({ ...BASE, 'log-level': 'info', 'max-concurrent-downloads': 7 });
  const back = await hup(d, 'configuration reloaded');
  assert.deepEqual(back['changed'], ['log-level']);
  assert.deepEqual(back['pending'], ['max-concurrent-downloads']);
  assert.equal(await debugLinesFromPs(d), 0, 'no debug line after the reload back to info');

  const after = await inspect<{ State: { Pid: number; Running: boolean } }>(d, 'keep');
  assert.equal(after.State.Pid, pid, 'the container kept its pid');
  assert.equal(after.State.Running, true);
  assert.equal(d.proc?.pid, daemonPid);
  assert.equal(d.proc?.exitCode, null, 'the daemon is still running');
});

const skip = await registrySkip();

function getMetrics(socketPath: string): Promise<string> {
  return new Promise((resolve, reject) => {
    http.get({ socketPath, path: '/metrics', timeout: 10_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => { body += c; });
      res.on('end', () => resolve(body));
    }).on('error', reject);
  });
}

test('SIGHUP applies new registry mirrors to the next pull', { skip }, async (t) => {
  const origin = await startRegistry(t);
  const mirror = await startRegistry(t);
  await pushTestImage(mirror, { image: 'busybox', repo: 'team/app', tag: '1' });
  const metricsSock = `${origin.dir}/metrics.sock`;
  const d = await daemon(t, { 'metrics-addr': `unix://${metricsSock}` }, { loadBusybox: false });
  const ref = `${origin.host}/team/app:1`;

  const before = await d.isula(['pull', ref]);
  assert.notEqual(before.code, 0, 'the origin does not have the image and no mirror is configured');

  await d.writeConfig({ ...BASE, 'registry-mirrors-by-host': { [origin.host]: [mirror.url] } });
  const reloaded = await hup(d, 'configuration reloaded');
  assert.deepEqual(reloaded['changed'], ['registry-mirrors-by-host']);
  ok(await d.isula(['pull', ref]), 'pull through the reloaded mirror');
  const images = JSON.parse((await httpRequest(d.socket, 'GET', '/images/json')).body) as { RepoTags: string[] }[];
  assert.ok(images.some((i) => i.RepoTags.includes(ref)), JSON.stringify(images));
  // Both pulls counted against the image's registry host (the mirror served the second).
  const metrics = await getMetrics(metricsSock);
  assert.match(metrics, new RegExp(`^isulad_image_pulls_total\\{registry="${origin.host}",result="error"\\} 1$`, 'm'));
  assert.match(metrics, new RegExp(`^isulad_image_pulls_total\\{registry="${origin.host}",result="ok"\\} 1$`, 'm'));
});
