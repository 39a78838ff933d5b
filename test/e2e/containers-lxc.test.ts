/**
 * The life-cycle, streams and tty suites on lxc (`--runtime lcr`,
 * @isula/driver-lxc), and restore: kill -9 of isulad with running lcr containers.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { httpRequest, waitFor } from '../lib/harness.js';
import { lifecycleSuite, streamsSuite, ttySuite } from '@isula/driver-tests';
import { assertNoTrace, containerDaemon, inspect, isulaWithStdin, ok, processesMatching, REPO_IMAGES } from '../lib/containers.js';
import { LXC_CONFIG, lxcUsable, reapLxcLeftovers } from '../lib/lxc-env.js';

const execFileP = promisify(execFile);

// The lxc tools come from the project's setup (Debian's lxc). Under CI the tests must run.
const usable = await lxcUsable();
if (!usable.ok && process.env['CI'] === 'true') throw new Error(`lxc cannot run here: ${usable.reason}`);
const skip = usable.ok ? false : usable.reason;

lifecycleSuite('lcr', { skip, config: LXC_CONFIG, ...REPO_IMAGES });
streamsSuite('lcr', {
  skip,
  config: LXC_CONFIG,
  ...REPO_IMAGES,
  skipTests: {
    'logs --tail across stdout and stderr: the records in the order written':
      'stdout and stderr are two files the daemon tails one after the other: a line written to stderr while stdout is being read may be logged before the stdout lines around it (packages/driver-lxc/README.md, "Not supported, and why")',
  },
});
ttySuite('lcr', { skip, config: LXC_CONFIG, ...REPO_IMAGES });

// exec, logs, terminals (run -it, exec -it, resize), top, stats are the streams and tty suites' (above).
test('lcr: run -i with piped stdin, a shared network namespace', { skip }, async (t) => {
  const d = await containerDaemon(t, 'lcr', LXC_CONFIG);
  const cat = await isulaWithStdin(d, ['run', '-i', '--rm', 'busybox', 'cat'], 'through stdin\n');
  assert.equal(cat.stdout, 'through stdin\n', cat.stderr);
  assert.equal(cat.code, 0);
  const id = ok(await d.isula(['run', '-d', 'busybox', 'sleep', '1000'])).trim();
  // Another container's network namespace, joined by path.
  const pid = (await inspect<Inspected>(d, id)).State.Pid;
  const joined = ok(await d.isula(['run', '--rm', '--net', `container:${id}`, 'busybox', 'sh', '-c', 'readlink /proc/self/ns/net'])).trim();
  assert.equal(joined, await fs.readlink(`/proc/${pid}/ns/net`));
  ok(await d.isula(['rm', '-f', id]));
  await assertNoTrace(d, id);
});

test('lcr: a resize reaches the container\'s console even when lxc does not pass it on', { skip }, async (t) => {
  const d = await containerDaemon(t, 'lcr', LXC_CONFIG);
  const id = ok(await d.isula(['run', '-dit', 'busybox', 'sh'])).trim();
  const pid = (await inspect<Inspected>(d, id)).State.Pid;
  const size = async () => (await execFileP('stty', ['-F', `/proc/${pid}/fd/0`, 'size'])).stdout.trim();
  const resize = async (h: number, w: number) => assert.ok((await httpRequest(d.socket, 'POST', `/containers/${id}/resize?h=${h}&w=${w}`)).status < 300);
  await resize(40, 90);
  assert.equal(await size(), '40 90', 'lxc relays the outer terminal\'s size');
  // The console drifts from the outer terminal; the same size again changes nothing outside
  // (no SIGWINCH for lxc), so only the driver's read-back can mend it.
  await execFileP('stty', ['-F', `/proc/${pid}/fd/0`, 'rows', '5', 'cols', '5']);
  await resize(40, 90);
  assert.equal(await size(), '40 90');
  ok(await d.isula(['rm', '-f', id]));
});

interface Inspected { Id: string; State: { Status: string; Pid: number; ExitCode: number; FinishedAt: string } }
const alive = (pid: number) => fs.stat(`/proc/${pid}`).then(() => true, () => false);

test('lcr: kill -9 of isulad leaves the containers running; restart re-attaches them, exits meanwhile keep their exact codes and output', { skip }, async (t) => {
  const d = await containerDaemon(t, 'lcr', LXC_CONFIG);
  t.after(() => reapLxcLeftovers(d.state));
  const running: string[] = [];
  for (let i = 0; i < 3; i++) running.push(ok(await d.isula(['run', '-d', '--name', `r${i}`, 'busybox', 'sleep', '1000'])).trim());
  // These end once the daemon is down: they wait (bounded, 30 s) for a file the test makes after the kill.
  const signalDir = path.join(d.root, 'signal');
  await fs.mkdir(signalDir);
  const wait = 'i=0; while [ ! -e /sig/go ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done';
  const five = ok(await d.isula(['run', '-d', '--name', 'five', '-v', `${signalDir}:/sig`, 'busybox', 'sh', '-c', `${wait}; echo said while down; exit 5`])).trim();
  const zero = ok(await d.isula(['run', '-d', '--name', 'zero', '-v', `${signalDir}:/sig`, 'busybox', 'sh', '-c', `${wait}; exit 0`])).trim();
  const killed = ok(await d.isula(['run', '-d', '--name', 'killed', 'busybox', 'sleep', '1000'])).trim();
  running.push(ok(await d.isula(['run', '-dt', '--name', 'tty', 'busybox', 'sh'])).trim()); // its monitor runs under script(1)
  const pids = new Map<string, number>();
  for (const id of [...running, killed]) pids.set(id, (await inspect<Inspected>(d, id)).State.Pid);

  d.proc?.kill('SIGKILL');
  await d.exited();
  for (const id of running) assert.ok(await alive(pids.get(id) ?? 0), 'containers outlive the daemon');
  assert.ok((await processesMatching(`${d.state}/lxc`)).length >= 6, 'every container keeps its lxc monitor');
  process.kill(pids.get(killed) ?? 0, 'SIGKILL');
  await fs.writeFile(path.join(signalDir, 'go'), '');
  await waitFor(async () => (await Promise.all([five, zero, killed].map((id) => processesMatching(id)))).every((p) => p.length === 0), { timeoutMs: 15_000, what: 'three containers to exit while the daemon is down' });

  await d.start();
  const ps = ok(await d.isula(['ps', '-a', '--no-trunc', '--format', '{{.ID}} {{.Status}}']));
  for (const id of running) {
    assert.match(ps, new RegExp(`^${id} Up `, 'm'));
    assert.equal((await inspect<Inspected>(d, id)).State.Pid, pids.get(id), 'the same process, re-attached');
  }
  for (const [id, code] of [[five, 5], [zero, 0], [killed, 137]] as const) {
    const info = await inspect<Inspected>(d, id);
    assert.equal(info.State.Status, 'exited');
    assert.equal(info.State.ExitCode, code, `exit code of ${id.slice(0, 12)}`);
    assert.notEqual(info.State.FinishedAt, '0001-01-01T00:00:00Z');
  }
  assert.equal(ok(await d.isula(['logs', 'five'])), 'said while down\n', 'output written while the daemon was down reaches the log');

  // A re-attached container is followed: its exit is seen.
  ok(await d.isula(['kill', running[0] ?? '']));
  await waitFor(async () => (await inspect<Inspected>(d, running[0] ?? '')).State.Status === 'exited', { timeoutMs: 30_000, what: 'the exit of a re-attached container' });
  assert.equal((await inspect<Inspected>(d, running[0] ?? '')).State.ExitCode, 137);
  ok(await d.isula(['rm', '-f', ...running, five, zero, killed]));
  assert.equal(ok(await d.isula(['ps', '-aq'])), '');
  for (const id of [...running, five, zero, killed]) await assertNoTrace(d, id);
  assert.deepEqual(await processesMatching(`${d.state}/lxc`), [], 'no lxc monitor is left');
});

test('lcr: a system container from an external rootfs runs busybox init as PID 1; stop halts it, exit 0, no trace', { skip }, async (t) => {
  const d = await containerDaemon(t, 'lcr', { plugins: ['@isula/image-oci', '@isula/image-external', '@isula/driver-lxc'] });
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'isula-lxc-sys-'));
  t.after(() => fs.rm(root, { recursive: true, force: true }));
  for (const dir of ['bin', 'sbin', 'etc/init.d', 'proc', 'sys', 'dev', 'tmp', 'run']) await fs.mkdir(path.join(root, dir), { recursive: true });
  await fs.copyFile('/bin/busybox', path.join(root, 'bin/busybox'));
  await fs.chmod(path.join(root, 'bin/busybox'), 0o755);
  for (const a of ['sh', 'echo', 'cat', 'sleep', 'ps']) await fs.symlink('busybox', path.join(root, 'bin', a));
  await fs.symlink('../bin/busybox', path.join(root, 'sbin/init'));
  await fs.writeFile(path.join(root, 'etc/inittab'), '::sysinit:/etc/init.d/rcS\n::shutdown:/bin/echo halting\n');
  await fs.writeFile(path.join(root, 'etc/init.d/rcS'), '#!/bin/sh\necho booted > /tmp/booted\n', { mode: 0o755 });

  const id = ok(await d.isula(['run', '-d', '--name', 'sys', '--system-container', '--external-rootfs', root, 'sysimg', '/sbin/init'])).trim();
  await waitFor(async () => (await d.isula(['exec', 'sys', 'cat', '/tmp/booted'])).stdout === 'booted\n', { timeoutMs: 10_000, what: 'init to run rcS' });
  const pid1 = ok(await d.isula(['exec', 'sys', 'cat', '/proc/1/cmdline']));
  assert.match(pid1, /^init/, 'busybox init is PID 1');
  ok(await d.isula(['stop', '-t', '20', 'sys']));
  const info = await inspect<Inspected>(d, 'sys');
  assert.equal(info.State.Status, 'exited');
  assert.equal(info.State.ExitCode, 0, 'init halted on the stop signal');
  assert.match(ok(await d.isula(['logs', 'sys'])), /halting/);
  ok(await d.isula(['rm', 'sys']));
  await assertNoTrace(d, id);
  assert.deepEqual(await processesMatching(`${d.state}/lxc`), [], 'no lxc monitor is left');
});
