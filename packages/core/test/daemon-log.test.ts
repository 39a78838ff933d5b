import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { daemonLogSettings } from '../src/config.js';
import { DaemonLogFile } from '../src/daemon-log.js';

async function tmp(t: { after(fn: () => Promise<void>): void }): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'isula-daemon-log-'));
  t.after(() => fs.rm(dir, { recursive: true, force: true }));
  return dir;
}

const line = (i: number) => `${JSON.stringify({ i, pad: 'x'.repeat(80) })}\n`;

test('max-file 1 truncates the live file in place and never passes max-size', async (t) => {
  const file = path.join(await tmp(t), 'isulad.log');
  const log = new DaemonLogFile({ file, maxSizeBytes: 4096, maxFiles: 1, mode: 0o640 });
  for (let i = 0; i < 200; i++) log.write(line(i));
  log.close();
  assert.deepEqual(await fs.readdir(path.dirname(file)), ['isulad.log']);
  const text = await fs.readFile(file, 'utf8');
  assert.ok(Buffer.byteLength(text) <= 4096);
  assert.match(text, /"i":199/);
  assert.equal((await fs.stat(file)).mode & 0o777, 0o640);
});

test('a lowered max-file at reopen drops the extra rotated files; a closed log drops late lines', async (t) => {
  const dir = await tmp(t);
  const file = path.join(dir, 'isulad.log');
  const log = new DaemonLogFile({ file, maxSizeBytes: 4096, maxFiles: 4, mode: 0o600 });
  for (let i = 0; i < 300; i++) log.write(line(i));
  assert.deepEqual((await fs.readdir(dir)).sort(), ['isulad.log', 'isulad.log.1', 'isulad.log.2', 'isulad.log.3']);
  log.reopen({ maxSizeBytes: 4096, maxFiles: 2 });
  assert.deepEqual((await fs.readdir(dir)).sort(), ['isulad.log', 'isulad.log.1']);
  log.close();
  const size = (await fs.stat(file)).size;
  log.write(line(999));
  assert.equal((await fs.stat(file)).size, size);
});

test('log-opts: defaults, iSulad sizes, and bad values named', () => {
  assert.deepEqual(daemonLogSettings({}), { maxSizeBytes: 10 * 1024 * 1024, maxFiles: 3, mode: 0o640, dir: undefined });
  assert.equal(daemonLogSettings({ 'max-size': '30KB' }).maxSizeBytes, 30 * 1024);
  assert.throws(() => daemonLogSettings({ 'max-file': '0' }), /"max-file"/);
  assert.throws(() => daemonLogSettings({ 'log-file-mode': 'rw' }), /"log-file-mode"/);
  assert.throws(() => daemonLogSettings({ 'log-path': 'relative' }), /"log-path"/);
});
