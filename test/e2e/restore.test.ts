import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { waitFor } from '../lib/harness.js';
import { assertNoTrace, containerDaemon, inspect, ok, processesMatching } from '../lib/containers.js';

interface Inspected { Id: string; State: { Status: string; Pid: number; ExitCode: number; FinishedAt: string } }

const alive = (pid: number) => fs.stat(`/proc/${pid}`).then(() => true, () => false);

test('kill -9 of isulad: 10 running containers are re-attached, 2 that exited meanwhile get their exit code; all stop and go without a trace', async (t) => {
  const d = await containerDaemon(t, 'runc');
  const running: string[] = [];
  for (let i = 0; i < 10; i++) running.push(ok(await d.isula(['run', '-d', '--name', `r${i}`, 'busybox', 'sleep', '1000'])).trim());
  // These exit once the daemon is down: they wait (bounded, 30 s) for a file the test makes after the kill,
  // so a slow machine cannot see them exit before their conmons are counted.
  const signalDir = path.join(d.root, 'signal');
  await fs.mkdir(signalDir);
  const exiting: string[] = [];
  for (let i = 0; i < 2; i++) {
    exiting.push(ok(await d.isula(['run', '-d', '--name', `e${i}`, '-v', `${signalDir}:/sig`, 'busybox', 'sh', '-c',
      'i=0; while [ ! -e /sig/go ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done; exit 5'])).trim());
  }
  const pids = new Map<string, number>();
  for (const id of running) pids.set(id, (await inspect<Inspected>(d, id)).State.Pid);

  d.proc?.kill('SIGKILL');
  await d.exited();
  for (const id of running) assert.ok(await alive(pids.get(id) ?? 0), 'containers outlive the daemon');
  const conmons = await processesMatching('conmon');
  assert.ok(conmons.length >= 12, 'every container keeps its conmon');
  await fs.writeFile(path.join(signalDir, 'go'), '');
  await waitFor(async () => (await Promise.all(exiting.map((id) => processesMatching(id)))).every((p) => p.length === 0), { timeoutMs: 10_000, what: 'the two containers to exit while the daemon is down' });

  await d.start();
  const ps = ok(await d.isula(['ps', '-a', '--no-trunc', '--format', '{{.ID}} {{.Status}}']));
  for (const id of running) {
    assert.match(ps, new RegExp(`^${id} Up `, 'm'));
    const info = await inspect<Inspected>(d, id);
    assert.equal(info.State.Pid, pids.get(id), 'the same process, re-attached');
  }
  for (const id of exiting) {
    assert.match(ps, new RegExp(`^${id} Exited \\(5\\) `, 'm'));
    const info = await inspect<Inspected>(d, id);
    assert.equal(info.State.ExitCode, 5);
    assert.notEqual(info.State.FinishedAt, '0001-01-01T00:00:00Z');
  }
  assert.match(await d.log(), /container exited while the daemon was down/);

  // A re-attached container is followed: its exit is seen.
  ok(await d.isula(['kill', running[0] ?? '']));
  await waitFor(async () => (await inspect<Inspected>(d, running[0] ?? '')).State.Status === 'exited', { timeoutMs: 30_000, what: 'the exit of a re-attached container' });
  ok(await d.isula(['stop', '-t', '0', ...running.slice(1, 5)]));
  ok(await d.isula(['rm', '-f', ...running.slice(5)]));
  ok(await d.isula(['rm', ...running.slice(0, 5), ...exiting]));
  assert.equal(ok(await d.isula(['ps', '-aq'])), '');
  for (const id of [...running, ...exiting]) await assertNoTrace(d, id);
});

test('restart policies across a daemon restart: unless-stopped keeps running, stays stopped once stopped; always comes back', async (t) => {
  const d = await containerDaemon(t, 'runc');
  const keep = ok(await d.isula(['run', '-d', '--restart', 'unless-stopped', 'busybox', 'sleep', '1000'])).trim();
  const pid = (await inspect<Inspected>(d, keep)).State.Pid;
  d.proc?.kill('SIGKILL');
  await d.exited();
  await d.start();
  let info = await inspect<Inspected>(d, keep);
  assert.equal(info.State.Status, 'running');
  assert.equal(info.State.Pid, pid, 'not restarted: the same process survived');

  ok(await d.isula(['stop', '-t', '0', keep]));
  const always = ok(await d.isula(['run', '-d', '--restart', 'always', 'busybox', 'sleep', '1000'])).trim();
  ok(await d.isula(['stop', '-t', '0', always]));
  await d.stop();
  await d.start();
  info = await inspect<Inspected>(d, keep);
  assert.equal(info.State.Status, 'exited', 'unless-stopped: stopped by hand, stays stopped after a daemon restart');
  await waitFor(async () => (await inspect<Inspected>(d, always)).State.Status === 'running', { timeoutMs: 30_000, what: 'the always container to come back' });
  ok(await d.isula(['rm', '-f', keep, always]));
  await assertNoTrace(d, keep);
  await assertNoTrace(d, always);
});
