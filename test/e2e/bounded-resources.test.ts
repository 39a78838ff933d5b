/**
 * Bounded resources under load: containers started in parallel, containers
 * logging fast, many `logs -f` and `events` followers (half of them never
 * reading: slow clients), and bursts of parallel API requests. The daemon's
 * memory stays bounded, `ps` is never starved, slow followers do not make it
 * buffer without limit, and every fd comes back once the clients go.
 *
 * CI size by default; LOAD_SCALE=5 gives the full figures by hand
 * (100 containers, 10 loggers at 100 lines/s each, 50 + 50 followers, 200
 * parallel requests per burst).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import http from 'node:http';
import { test } from 'node:test';
import { httpRequest, type TestDaemon } from '../lib/harness.js';
import { daemon, sleep } from '../lib/containers.js';

const SCALE = Number(process.env['LOAD_SCALE'] ?? 1);
const CONTAINERS = 20 * SCALE;
const LOGGERS = Math.min(10, 2 * SCALE + 2);
const FOLLOWERS = 10 * SCALE;
const BURST = 40 * SCALE;

async function rssKiB(pid: number): Promise<number> {
  const status = await fs.readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
}

async function fds(pid: number): Promise<number> {
  return (await fs.readdir(`/proc/${pid}/fd`)).length;
}

/** A streaming GET whose body is read, or (slow) never read at all. */
function follow(d: TestDaemon, urlPath: string, read: boolean): { req: http.ClientRequest; bytes: () => number } {
  let n = 0;
  const req = http.request({ socketPath: d.socket, path: urlPath, method: 'GET' }, (res) => {
    if (read) res.on('data', (c: Buffer) => { n += c.length; });
    else res.pause();
  });
  req.on('error', () => {});
  req.end();
  return { req, bytes: () => n };
}

test('under load the daemon stays bounded, ps is served, and fds come back', { timeout: 600_000 }, async (t) => {
  const d = await daemon(t, {}, { loadBusybox: true });
  const pid = d.proc!.pid!;
  const api = (m: string, p: string, body?: unknown) => httpRequest(d.socket, m, p, body === undefined ? undefined : JSON.stringify(body), body === undefined ? {} : { 'content-type': 'application/json' });
  await api('GET', '/containers/json');
  const fdsBefore = await fds(pid);
  const rssBefore = await rssKiB(pid);
  let rssPeak = rssBefore;
  const sampler = setInterval(() => { void rssKiB(pid).then((r) => { rssPeak = Math.max(rssPeak, r); }, () => {}); }, 100);
  t.after(() => clearInterval(sampler));

  // Containers started in parallel: sleepers and loggers (100 lines/s each for 8 s, bounded).
  const create = async (i: number, cmd: string[]) => {
    const c = await api('POST', `/containers/create?name=load${i}`, { Image: 'busybox', Cmd: cmd, HostConfig: { NetworkMode: 'none' } });
    assert.equal(c.status, 201, c.body);
    const id = (JSON.parse(c.body) as { Id: string }).Id;
    const s = await api('POST', `/containers/${id}/start`);
    assert.equal(s.status, 204, s.body);
    return id;
  };
  const logger = ['sh', '-c', 'i=0; while [ $i -lt 800 ]; do echo "line $i of a container that logs fast, padded to look like a real log line"; i=$((i+1)); usleep 10000; done'];
  const ids = await Promise.all(Array.from({ length: CONTAINERS }, (_, i) => create(i, i < LOGGERS ? logger : ['sleep', '120'])));

  // Followers: logs -f and events, half of them never reading.
  const followers = [
    ...Array.from({ length: FOLLOWERS }, (_, i) => follow(d, `/containers/${ids[i % LOGGERS]}/logs?follow=1&stdout=1&stderr=1`, i % 2 === 0)),
    ...Array.from({ length: FOLLOWERS }, (_, i) => follow(d, '/events', i % 2 === 0)),
  ];

  // Bursts of parallel requests while the logs flow; ps latencies recorded.
  const latencies: number[] = [];
  for (let round = 0; round < 5; round++) {
    await Promise.all(Array.from({ length: BURST }, async (_, i) => {
      const t0 = performance.now();
      const r = await api('GET', i % 2 === 0 ? '/containers/json?all=1' : `/containers/${ids[i % ids.length]}/json`);
      latencies.push(performance.now() - t0);
      assert.equal(r.status, 200, r.body);
    }));
    await sleep(500);
  }
  latencies.sort((a, b) => a - b);
  const p99 = latencies[Math.floor(latencies.length * 0.99)] ?? 0;
  const readers = followers.filter((_, i) => i % 2 === 0);
  assert.ok(readers.some((f) => f.bytes() > 0), 'reading followers received data');

  // Let the loggers finish while the slow followers still hold their streams.
  await sleep(4000);
  const rssLoaded = await rssKiB(pid);
  for (const f of followers) f.req.destroy();
  for (const id of ids) await api('DELETE', `/containers/${id}?force=1`);

  let fdsAfter = 0;
  for (let i = 0; i < 50; i++) {
    fdsAfter = await fds(pid);
    if (fdsAfter <= fdsBefore + 5) break;
    await sleep(200);
  }
  clearInterval(sampler);
  t.diagnostic(`containers ${CONTAINERS} (${LOGGERS} logging), followers ${followers.length} (half not reading), requests ${latencies.length}: ` +
    `RSS before ${Math.round(rssBefore / 1024)} MiB, peak ${Math.round(rssPeak / 1024)} MiB, at the end of the load ${Math.round(rssLoaded / 1024)} MiB; ` +
    `ps p99 ${p99.toFixed(0)} ms; fds before ${fdsBefore}, after ${fdsAfter}`);
  assert.ok(p99 < 5000, `a request waited ${p99.toFixed(0)} ms (p99): starved`);
  // Bounded: slow followers hold back-pressure, not buffers. Generous on a shared 2-core VM.
  assert.ok(rssPeak - rssBefore < 150 * 1024 * SCALE, `RSS grew by ${Math.round((rssPeak - rssBefore) / 1024)} MiB under load`);
  assert.ok(fdsAfter <= fdsBefore + 5, `fds before ${fdsBefore}, after ${fdsAfter}: leaked`);
  assert.equal(d.proc?.exitCode, null);
});
