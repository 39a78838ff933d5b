import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { EXEC_FIFO, startThroughFifo } from '../src/exec-fifo.js';

async function fifoDir(t: { after(fn: () => Promise<void>): void }): Promise<{ root: string; fifo: string }> {
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'isula-fifo-'));
  t.after(() => fs.rm(root, { recursive: true, force: true }));
  await fs.mkdir(path.join(root, 'c1'));
  const fifo = path.join(root, 'c1', EXEC_FIFO);
  execFileSync('mkfifo', [fifo]);
  return { root, fifo };
}

test('startThroughFifo reads the init\'s byte, whenever the init opens the FIFO, and removes it as runc start does', async (t) => {
  const { root, fifo } = await fifoDir(t);
  // The "init" opens the FIFO for writing only after the start began (runc's init may be late).
  const init = spawn('sh', ['-c', `sleep 0.2; printf 0 > ${fifo}`], { stdio: 'ignore' });
  const initExited = new Promise((r) => init.once('exit', r));
  const started = Date.now();
  assert.equal(await startThroughFifo(root, 'c1', 5000), true);
  assert.ok(Date.now() - started >= 150, 'it waited for the init');
  await assert.rejects(fs.lstat(fifo), { code: 'ENOENT' }, 'the FIFO is gone: runc reports the container running');
  await initExited;
});

test('startThroughFifo is false without a FIFO (not runc, or started already) and bounded when no init writes', async (t) => {
  const { root } = await fifoDir(t);
  assert.equal(await startThroughFifo(root, 'nosuch', 1000), false);
  await fs.writeFile(path.join(root, 'plain'), '');
  await fs.mkdir(path.join(root, 'c2'));
  await fs.writeFile(path.join(root, 'c2', EXEC_FIFO), 'not a fifo');
  assert.equal(await startThroughFifo(root, 'c2', 1000), false);
  const started = Date.now();
  await assert.rejects(startThroughFifo(root, 'c1', 300), /did not signal .* within 300 ms/);
  assert.ok(Date.now() - started < 2000);
  const ac = new AbortController();
  setTimeout(() => ac.abort(), 100);
  await assert.rejects(startThroughFifo(root, 'c1', 10_000, ac.signal), /start canceled/);
});
