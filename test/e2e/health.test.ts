/**
 * Health checks end to end: a probe through exec every interval, the state
 * in inspect and ps, health_status events, probes stopped while paused,
 * a hanging probe killed at its timeout, --health-exit-on-unhealthy, an
 * image's HEALTHCHECK and its overrides, and probes after a daemon restart.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { daemon, IMAGES_DIR, inspect, ok, sleep } from '../lib/containers.js';
import { craftImage } from '../lib/craft-image.js';
import { waitFor, type TestDaemon } from '../lib/harness.js';

interface Health { Status: string; FailingStreak: number; Log: { Start: string; End: string; ExitCode: number; Output: string }[] }

async function health(d: TestDaemon, name: string): Promise<Health | undefined> {
  return (await inspect<{ State: { Health?: Health } }>(d, name)).State.Health;
}

test('a container turns unhealthy then healthy as a file disappears and appears, with events; ps shows it', async (t) => {
  const d = await daemon(t);
  const since = Math.floor(Date.now() / 1000) - 1;
  ok(await d.isula(['run', '-d', '--name', 'hc', '--health-cmd', 'test -f /tmp/ok', '--health-interval', '300ms', '--health-retries', '2', '--health-timeout', '2s', '--health-start-period', '5s', 'busybox', 'sleep', '300']));
  // The start period keeps it `starting` while the CLI calls below run, however slow the host.
  assert.equal((await health(d, 'hc'))?.Status, 'starting');
  assert.match(ok(await d.isula(['ps', '--format', '{{.Status}}', '-f', 'name=hc'])), /\(health: starting\)/);
  const bad = await waitFor(async () => { const h = await health(d, 'hc'); return h?.Status === 'unhealthy' ? h : undefined; }, { timeoutMs: 20_000, what: 'unhealthy' });
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
  const sleeps = ok(await d.isula(['top', 'hang'])).split('\n').filter((l) => /\bsleep 30\s*$/.test(l)); // not the container's own `sleep 300`
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
  assert.equal((await inspect<{ State: { ExitCode: number } }>(d, 'bye')).State.ExitCode, 137, 'killed (SIGKILL)');
  // The engine's kill is a failure, not a user's stop: the restart policy answers it (a liveness probe).
  ok(await d.isula(['run', '-d', '--name', 'again', '--restart', 'on-failure:2', '--health-cmd', 'false', '--health-interval', '200ms', '--health-retries', '1', '--health-exit-on-unhealthy', 'busybox', 'sleep', '300']));
  const restarted = await waitFor(async () => {
    const info = await inspect<{ RestartCount: number; State: { Running: boolean; ExitCode: number } }>(d, 'again');
    return info.RestartCount === 2 && !info.State.Running ? info : undefined;
  }, { timeoutMs: 20_000, intervalMs: 100, what: 'two restarts after unhealthy kills, then the policy gives up' });
  assert.equal(restarted.State.ExitCode, 137);
});

interface HealthConfig { Test?: string[]; Interval?: number; Timeout?: number; Retries?: number; StartPeriod?: number }
const healthcheck = async (d: TestDaemon, name: string) => (await inspect<{ Config: { Healthcheck?: HealthConfig } }>(d, name)).Config.Healthcheck;
const until = (d: TestDaemon, name: string, status: string, timeoutMs = 10_000) =>
  waitFor(async () => { const h = await health(d, name); return h?.Status === status ? h : undefined; }, { timeoutMs, intervalMs: 100, what: `${name} to turn ${status}` });

test('an image HEALTHCHECK is used when no --health-* flag is given, and --no-healthcheck / --health-cmd override it', async (t) => {
  const d = await daemon(t);
  const imageHc = { Test: ['CMD-SHELL', 'test -e /tmp/ok'], Interval: 200_000_000, Timeout: 1_000_000_000, Retries: 1 };
  const archive = await craftImage({ from: path.join(IMAGES_DIR, 'busybox.docker.tar'), tag: 'healthy:1', out: path.join(d.root, 'images'), config: (c) => { c.Healthcheck = imageHc; } });
  ok(await d.isula(['load', '-i', archive]), 'load the crafted image');
  const img = JSON.parse(ok(await d.isula(['inspect', '--type', 'image', 'healthy:1']))) as { Config?: { Healthcheck?: HealthConfig } }[];
  assert.deepEqual(img[0]?.Config?.Healthcheck, imageHc, 'the crafted image carries the HEALTHCHECK');

  // No flag: the image's probe, which fails until /tmp/ok exists.
  ok(await d.isula(['run', '-d', '--name', 'fromimage', 'healthy:1', 'sleep', '300']));
  assert.deepEqual(await healthcheck(d, 'fromimage'), imageHc, 'Config.Healthcheck is the image\'s');
  const bad = await until(d, 'fromimage', 'unhealthy');
  assert.ok(bad.Log.length > 0 && bad.Log.every((l) => l.ExitCode === 1), JSON.stringify(bad.Log));
  ok(await d.isula(['exec', 'fromimage', 'touch', '/tmp/ok']));
  const good = await until(d, 'fromimage', 'healthy');
  assert.equal(good.FailingStreak, 0);
  assert.equal(good.Log.at(-1)?.ExitCode, 0);

  // --no-healthcheck: no probe at all, however long we wait (the image's interval is 200 ms).
  ok(await d.isula(['run', '-d', '--name', 'nohc', '--no-healthcheck', 'healthy:1', 'sleep', '300']));
  assert.deepEqual((await healthcheck(d, 'nohc'))?.Test, ['NONE']);
  await sleep(1000);
  assert.equal(await health(d, 'nohc'), undefined, '--no-healthcheck: no State.Health');
  assert.doesNotMatch(ok(await d.isula(['ps', '--format', '{{.Status}}', '-f', 'name=nohc'])), /health/);

  // --health-cmd: the flag's probe (which succeeds at once, where the image's would fail);
  // the fields not given come from the image, as Docker merges them.
  ok(await d.isula(['run', '-d', '--name', 'flag', '--health-cmd', 'true', 'healthy:1', 'sleep', '300']));
  const merged = await healthcheck(d, 'flag');
  assert.deepEqual(merged?.Test, ['CMD-SHELL', 'true']);
  assert.equal(merged?.Interval, imageHc.Interval, 'the interval not given comes from the image');
  const flagGood = await until(d, 'flag', 'healthy');
  assert.ok(flagGood.Log.every((l) => l.ExitCode === 0), JSON.stringify(flagGood.Log));
});

test('probes resume after a daemon restart', async (t) => {
  const d = await daemon(t);
  ok(await d.isula(['run', '-d', '--name', 'hc', '--health-cmd', 'cat /tmp/ok', '--health-interval', '200ms', '--health-retries', '1', 'busybox', 'sleep', '300']));
  ok(await d.isula(['exec', 'hc', 'touch', '/tmp/ok']));
  await until(d, 'hc', 'healthy');
  const pid = (await inspect<{ State: { Pid: number } }>(d, 'hc')).State.Pid;

  const stopped = await d.stop();
  assert.equal(stopped?.code, 0, `isulad stops gracefully: ${d.stderr}`);
  assert.ok(await fs.stat(`/proc/${pid}`).then(() => true, () => false), 'the container outlives the daemon');
  const restartedAt = Date.now();
  await d.start();

  const after = await inspect<{ State: { Running: boolean; Pid: number; Health?: Health } }>(d, 'hc');
  assert.equal(after.State.Running, true);
  assert.equal(after.State.Pid, pid, 'the same container, re-attached');
  assert.equal(after.State.Health?.Status, 'healthy', 'the health state is kept across the restart');
  ok(await d.isula(['exec', 'hc', 'rm', '/tmp/ok']));
  const bad = await until(d, 'hc', 'unhealthy');
  const fresh = bad.Log.filter((l) => Date.parse(l.Start) >= restartedAt);
  assert.ok(fresh.length > 0, `probes ran after the restart: ${JSON.stringify(bad.Log)}`);
  assert.ok(fresh.some((l) => l.ExitCode !== 0 && /No such file/.test(l.Output)), JSON.stringify(fresh));
});
