import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { test } from 'node:test';
import { identify, isSameProcess, readStartTime, signalProcess, waitProcessGone } from '../src/index.js';

test('a process is the same only with its start time: a recycled pid, an unknown start time, a zombie are not', async () => {
  const me = await identify(process.pid);
  assert.ok(me !== undefined && me.startTime > 0);
  assert.equal(await isSameProcess(me), true);
  assert.equal(await isSameProcess({ pid: process.pid, startTime: me.startTime + 1 }), false, 'another start time: a recycled pid');
  assert.equal(await isSameProcess({ pid: process.pid, startTime: -1 }), false, 'not known: never the same');
  assert.equal(await isSameProcess(undefined), false);
  assert.equal(await isSameProcess(null), false);
  assert.equal(await readStartTime(0), undefined);
  assert.equal(await readStartTime(-5), undefined);
  assert.equal(await identify(2 ** 22 + 1), undefined, 'past pid_max: no such process');

  // A child that exits and is not reaped yet is a zombie: gone, for a monitor's purposes.
  const child = spawn('/bin/sh', ['-c', 'exec sleep 30'], { stdio: 'ignore' });
  const id = await identify(child.pid ?? 0);
  assert.ok(id !== undefined);
  assert.equal(await signalProcess({ ...id, startTime: id.startTime + 1 }, 'SIGTERM'), false, 'not signalled when the identity does not match');
  assert.equal(await isSameProcess(id), true, 'still running');
  const exit = once(child, 'exit');
  assert.equal(await signalProcess(id, 'SIGTERM'), true);
  assert.equal(await waitProcessGone(id, 5000), true);
  await exit;
  assert.equal(await isSameProcess(id), false);
  assert.equal(await signalProcess(id, 'SIGKILL'), false);
});

test('waitProcessGone gives up after its timeout while the process lives', async () => {
  const child = spawn('/bin/sh', ['-c', 'exec sleep 30'], { stdio: 'ignore' });
  try {
    const id = await identify(child.pid ?? 0);
    assert.ok(id !== undefined);
    const started = Date.now();
    assert.equal(await waitProcessGone(id, 120), false);
    assert.ok(Date.now() - started >= 120);
  } finally {
    child.kill('SIGKILL');
  }
});
