/**
 * Health checks end to end: a probe through exec every interval, the state
 * in inspect and ps, health_status events, probes stopped while paused,
 * a hanging probe killed at its timeout, and --health-exit-on-unhealthy.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { daemon, inspect, ok } from '../lib/containers.js';
import { waitFor, type TestDaemon } from '../lib/harness.js';

interface Health { Status: string; FailingStreak: number; Log: { ExitCode: number; Output: string }[] }

async function health(d: TestDaemon, name: string): Promise<Health | undefined> {
  return (await inspect<{ State: { Health?: Health } }>(d, name)).State.Health;
}

test('a container turns unhealthy then healthy as a file disappears and appears, with events; ps shows it', async (t) => {
  const d = await daemon(t);
  const since = Math.floor(Date.now() / 1000) - 1;
  ok(await d.isula(['run', '-d', '--name', 'hc', '--health-cmd', 'test -f /tmp/ok', '--health-interval', '300ms', '--health-retries', '2', '--health-timeout', '2s', 'busybox', 'sleep', '300']));
  assert.equal((await health(d, 'hc'))?.Status, 'starting');
  assert.match(ok(await d.isula(['ps', '--format', '{{.Status}}', '-f', 'name=hc'])), /\(health: starting\)/);
  const bad = await waitFor(async () => { const h = await health(d, 'hc'); return h?.Status === 'unhealthy' ? h : undefined; }, { timeoutMs: 10_000, what: 'unhealthy' });
  assert.ok(bad.FailingStreak >= 2);
  assert.ok(bad.Log.length > 0 && bad.Log.every((l) => l.ExitCode === 1));
  ok(await d.isula(['exec', 'hc', 'touch', '/tmp/ok']));
  const good = await waitFor(async () => { const h = await health(d, 'hc'); return h?.Status === 'healthy' ? h : undefined; }, { timeoutMs: 10_000, what: 'healthy' });
  assert.equal(good.FailingStreak, 0);
  assert.match(ok(await d.isula(['ps', '--format', '{{.Status}}', '-f', 'name=hc'])), /\(healthy\)/);
  const ev = ok(await d.isula(['events', '--since', String(since), '--until', String(Math.floor(Date.now() / 1000) + 1), '--filter', 'container=hc']));
  assert.match(ev, /health_status: unhealthy/);
  assert.match(ev, /health_status: healthy/);
  assert.ok(ev.indexOf('health_status: unhealthy') < ev.indexOf('health_status: healthy'), ev);

  // Paused: no probe runs (the log stops growing); unpaused: probes again.
  ok(await d.isula(['pause', 'hc']));
  const frozen = (await health(d, 'hc'))?.Log.at(-1)?.Output;
  const ends = (await health(d, 'hc'))?.Log.map((l) => (l as unknown as { End: string }).End).join();
  await new Promise((r) => setTimeout(r, 1200));
  assert.equal((await health(d, 'hc'))?.Log.map((l) => (l as unknown as { End: string }).End).join(), ends, `no probe while paused (${frozen})`);
  ok(await d.isula(['unpause', 'hc']));
  await waitFor(async () => (await health(d, 'hc'))?.Log.map((l) => (l as unknown as { End: string }).End).join() !== ends, { timeoutMs: 10_000, what: 'probes after unpause' });
});

test('a probe that hangs is killed at its timeout and counts as a failure; a missing command fails the probe', async (t) => {
  const d = await daemon(t);
  ok(await d.isula(['run', '-d', '--name', 'hang', '--health-cmd', 'sleep 30', '--health-interval', '200ms', '--health-timeout', '500ms', '--health-retries', '1', 'busybox', 'sleep', '300']));
  const h = await waitFor(async () => { const x = await health(d, 'hang'); return x?.Status === 'unhealthy' ? x : undefined; }, { timeoutMs: 15_000, what: 'the hanging probe to time out' });
  assert.match(h.Log.at(-1)?.Output ?? '', /exceeded timeout/);
  const sleeps = ok(await d.isula(['top', 'hang'])).split('\n').filter((l) => /sleep 30/.test(l));
  assert.ok(sleeps.length <= 1, `timed-out probes do not pile up: ${sleeps.join(' | ')}`);

  ok(await d.isula(['run', '-d', '--name', 'nocmd', '--health-cmd', '/no/such/probe', '--health-interval', '200ms', '--health-retries', '1', 'busybox', 'sleep', '300']));
  const n = await waitFor(async () => { const x = await health(d, 'nocmd'); return x?.Status === 'unhealthy' ? x : undefined; }, { timeoutMs: 10_000, what: 'the missing probe to fail' });
  assert.notEqual(n.Log.at(-1)?.ExitCode, 0);
});

test('--no-healthcheck has no health state; --health-exit-on-unhealthy stops the container when it turns unhealthy', async (t) => {
  const d = await daemon(t);
  ok(await d.isula(['run', '-d', '--name', 'none', '--no-healthcheck', 'busybox', 'sleep', '300']));
  assert.equal(await health(d, 'none'), undefined);
  ok(await d.isula(['run', '-d', '--name', 'bye', '--health-cmd', 'false', '--health-interval', '200ms', '--health-retries', '1', '--health-exit-on-unhealthy', 'busybox', 'sleep', '300']));
  await waitFor(async () => (await inspect<{ State: { Running: boolean } }>(d, 'bye')).State.Running === false, { timeoutMs: 10_000, what: 'the unhealthy container to be stopped' });
});
