/**
 * The Prometheus endpoint (daemon.json `metrics-port` / `metrics-addr`):
 * off by default; when on, `run -d` shows as a create and a start with
 * their latency in the histogram, the container counted as running, and the
 * process' memory.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { test } from 'node:test';
import { PLUGIN_API_VERSION } from '@isula/core';
import { daemon, ok } from '../lib/containers.js';
import { httpRequest, newDaemon } from '../lib/harness.js';

/** A TCP port free on 127.0.0.1 a moment ago. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

function get(options: http.RequestOptions): Promise<{ status: number; type: string; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ ...options, timeout: 10_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => { body += c; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type'] ?? ''), body }));
    });
    req.on('timeout', () => req.destroy(new Error('metrics request timed out')));
    req.on('error', reject);
  });
}

/** The value of one sample line, e.g. `isulad_containers{state="running"}`. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

test('metrics-port: run -d shows a timed start, a running container and the process memory', async (t) => {
  const port = await freePort();
  const d = await daemon(t, { 'metrics-port': port });
  const url = { host: '127.0.0.1', port, path: '/metrics' };
  const idle = await get(url);
  assert.equal(idle.status, 200);
  assert.match(idle.type, /^text\/plain; version=0\.0\.4/);
  assert.equal(sample(idle.body, 'isulad_containers{state="running"}'), 0);
  assert.ok((sample(idle.body, 'isulad_plugin_load_seconds{plugin="@isula/driver-runc"}') ?? -1) >= 0, 'plugin load time');

  ok(await d.isula(['run', '-d', '--name', 'm1', 'busybox', 'sleep', '300']));
  const m = (await get(url)).body;
  assert.equal(sample(m, 'isulad_operation_duration_seconds_count{operation="start"}'), 1);
  assert.equal(sample(m, 'isulad_operation_duration_seconds_count{operation="create"}'), 1);
  const startSeconds = sample(m, 'isulad_operation_duration_seconds_sum{operation="start"}') ?? 0;
  assert.ok(startSeconds > 0 && startSeconds < 60, `start latency ${startSeconds}s`);
  assert.equal(sample(m, 'isulad_operation_duration_seconds_bucket{le="+Inf",operation="start"}'), 1);
  assert.equal(sample(m, 'isulad_operations_total{operation="start",result="ok"}'), 1);
  assert.equal(sample(m, 'isulad_containers{state="running"}'), 1);
  assert.ok((sample(m, 'process_resident_memory_bytes') ?? 0) > 10 * 1024 * 1024, 'resident memory');
  assert.equal(sample(m, 'isulad_operations_total{operation="load",result="ok"}'), 1, 'the busybox load');

  // A failed operation counts as an error; stop and rm move the container out of running.
  assert.notEqual((await d.isula(['start', 'no-such-container'])).code, 0);
  ok(await d.isula(['rm', '-f', 'm1']));
  const after = (await get(url)).body;
  assert.equal(sample(after, 'isulad_operations_total{operation="start",result="error"}'), 1);
  assert.equal(sample(after, 'isulad_operation_duration_seconds_count{operation="rm"}'), 1);
  assert.equal(sample(after, 'isulad_containers{state="running"}'), 0);

  assert.equal((await get({ ...url, path: '/' })).status, 404);
  const info = JSON.parse((await httpRequest(d.socket, 'GET', '/info')).body) as { FrontEnds: { Name: string; Endpoints: string[] }[] };
  assert.deepEqual(info.FrontEnds.find((f) => f.Name === 'metrics')?.Endpoints, [`http://127.0.0.1:${port}/metrics`]);
});

test('metrics are off by default: nothing listens and info lists no metrics endpoint', async (t) => {
  const port = await freePort();
  const d = await daemon(t, {}, { loadBusybox: false });
  await assert.rejects(get({ host: '127.0.0.1', port, path: '/metrics' }), /ECONNREFUSED/);
  const info = JSON.parse((await httpRequest(d.socket, 'GET', '/info')).body) as { FrontEnds: { Name: string }[] };
  assert.equal(info.FrontEnds.some((f) => f.Name === 'metrics'), false);
});

test('metrics-addr serves a unix socket; setting both keys is refused at start naming them', async (t) => {
  const d = await newDaemon(t);
  const sock = `${d.root}/metrics.sock`;
  await d.writeConfig({ plugins: [], 'metrics-addr': `unix://${sock}` });
  await d.start();
  const r = await get({ socketPath: sock, path: '/metrics' });
  assert.equal(r.status, 200);
  assert.match(r.body, new RegExp(`^isulad_build_info\\{version="[^"]+",plugin_api_version="${PLUGIN_API_VERSION.replaceAll('.', '\\.')}"\\} 1$`, 'm'));
  await d.stop();

  const bad = await newDaemon(t);
  await bad.writeConfig({ plugins: [], 'metrics-port': 9323, 'metrics-addr': '127.0.0.1:9323' });
  bad.spawn();
  assert.equal((await bad.exited()).code, 1);
  assert.match(bad.stderr, /"metrics-port" and "metrics-addr"/);
});
