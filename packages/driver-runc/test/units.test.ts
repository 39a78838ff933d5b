/**
 * Pieces without a container: create-error classification (the runtimes'
 * exact wording on this machine), the exit watcher, pid identity, fd scan.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { classifyCreateError, ExitWatcher } from '../src/index.js';
import { identify, isSameProcess } from '@isula/core';
import { SeqpacketSocket } from 'node-unix-socket';
import { inheritableFds, scanInheritableFds, trackNewFds } from '../src/proc.js';
import { cleanRuntimeMessage } from '../src/runtime-cli.js';

test('create failures map onto docker 127/126 codes; crun on a hybrid host names the runtime and reason', () => {
  const cases: [string, string, string][] = [
    ['runc', 'time="2026-11-23T12:13:34Z" level=error msg="runc create failed: unable to start container process: exec: \\"nosuchcmd\\": executable file not found in $PATH"', 'CONTAINER_CMD_NOT_FOUND'],
    ['runc', 'time="x" level=error msg="runc create failed: unable to start container process: exec: \\"/bin/nosuch\\": stat /bin/nosuch: no such file or directory"', 'CONTAINER_CMD_NOT_FOUND'],
    ['runc', 'time="x" level=error msg="runc create failed: unable to start container process: exec: \\"/bin/noexec\\": permission denied"', 'CONTAINER_CMD_NOT_EXECUTABLE'],
    ['crun', 'executable file `nosuchcmd` not found in $PATH: No such file or directory', 'CONTAINER_CMD_NOT_FOUND'],
    ['crun', 'open executable: Permission denied', 'CONTAINER_CMD_NOT_EXECUTABLE'],
    ['crun', 'cgroups in hybrid mode not supported, drop all controllers from cgroupv2', 'RUNTIME_FAILED'],
    ['runc', 'time="x" level=error msg="runc create failed: error setting rlimit type 7: operation not permitted"', 'RUNTIME_FAILED'],
  ];
  for (const [runtime, raw, code] of cases) {
    const err = classifyCreateError(runtime, cleanRuntimeMessage(raw));
    assert.equal(err.code, code, raw);
    assert.equal(err.details?.['runtime'], runtime);
  }
  const hybrid = classifyCreateError('crun', 'cgroups in hybrid mode not supported, drop all controllers from cgroupv2');
  assert.match(hybrid.message, /crun/);
  assert.match(hybrid.message, /hybrid mode not supported/);
});

test('the exit watcher wakes every waiter on the file, honours abort, and leaves no timer', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'isula-exits-'));
  const w = new ExitWatcher(dir, 50);
  t.after(() => { w.close(); fs.rmSync(dir, { recursive: true, force: true }); });
  const check = async () => {
    try {
      return { exitCode: Number(fs.readFileSync(path.join(dir, 'c1'), 'utf8')), exitedAt: new Date() };
    } catch {
      return undefined;
    }
  };
  const waits = Array.from({ length: 50 }, () => w.wait('c1', check));
  const ac = new AbortController();
  const aborted = w.wait('c2', async () => undefined, ac.signal);
  ac.abort();
  await assert.rejects(aborted, (e: { code?: string }) => e.code === 'CANCELED');
  fs.writeFileSync(path.join(dir, '.tmp'), '9');
  fs.renameSync(path.join(dir, '.tmp'), path.join(dir, 'c1'));
  for (const s of await Promise.all(waits)) assert.equal(s.exitCode, 9);
  // With no waiter left, nothing keeps the event loop alive: this test ending proves it.
});

test('a process identity includes its start time; fds opened by node are close-on-exec', async () => {
  const me = await identify(process.pid);
  assert.ok(me);
  assert.ok(await isSameProcess(me));
  assert.equal(await isSameProcess({ pid: process.pid, startTime: me.startTime + 1 }), false);
  const fd = fs.openSync('/dev/null', 'r');
  try {
    assert.ok(!inheritableFds().includes(fd));
  } finally {
    fs.closeSync(fd);
  }
});

test('the fds a child would inherit: what the daemon started with and node-unix-socket\'s sockets while open, without a scan per start', async () => {
  inheritableFds(); // the start-up set, fixed by the first call
  const made = Array.from({ length: 3 }, () => trackNewFds(() => new SeqpacketSocket()));
  const opened = fs.openSync('/dev/null', 'r'); // Node's own: close-on-exec
  try {
    const now = inheritableFds();
    // The invariant conmon.ts relies on: every fd /proc says a child would inherit is hidden.
    for (const fd of scanInheritableFds()) assert.ok(now.includes(fd), `fd ${fd} lacks close-on-exec but is not listed: ${now.join(',')}`);
    assert.ok(!now.includes(opened));
    assert.ok(scanInheritableFds().length >= 3, 'the sockets really are inheritable (PLATFORM.md §3 bug 1)');
  } finally {
    fs.closeSync(opened);
  }
  const before = inheritableFds();
  for (const m of made) {
    const closed = new Promise((resolve) => m.value.once('close', resolve));
    m.value.destroy();
    await closed;
    m.release();
  }
  const after = inheritableFds();
  assert.equal(before.length - after.length, 3, `released: ${before.join(',')} -> ${after.join(',')}`);
  for (const fd of scanInheritableFds()) assert.ok(after.includes(fd));
});
