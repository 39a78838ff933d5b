import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { writeFileAtomic } from '../src/atomic-file.js';
import { acquireDaemonLock, type DaemonLock } from '../src/daemon-lock.js';
import { IsulaError } from '../src/errors.js';

async function tempDir(t: TestContext): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'isula-core-atomic-'));
  t.after(() => fs.rm(dir, { recursive: true, force: true }));
  return dir;
}

/** Acquires the lock and releases it when the test ends (release is safe to call twice). */
async function lockFor(t: TestContext, stateRoot: string, pidFile: string): Promise<DaemonLock> {
  const lock = await acquireDaemonLock(stateRoot, pidFile);
  t.after(() => lock.release());
  return lock;
}

const mode = async (file: string): Promise<number> => (await fs.stat(file)).mode & 0o777;

test('writeFileAtomic writes the content with the given mode and leaves no temp files', async (t) => {
  const dir = await tempDir(t);
  const file = path.join(dir, 'config.v2.json');
  await writeFileAtomic(file, '{"schemaVersion":1}\n', { mode: 0o644 });
  assert.equal(await fs.readFile(file, 'utf8'), '{"schemaVersion":1}\n');
  assert.equal(await mode(file), 0o644);
  assert.deepEqual(await fs.readdir(dir), ['config.v2.json']);
});

test('writeFileAtomic defaults to mode 0600 and accepts bytes', async (t) => {
  const dir = await tempDir(t);
  const file = path.join(dir, 'key');
  await writeFileAtomic(file, new Uint8Array([0, 1, 2, 255]));
  assert.deepEqual([...await fs.readFile(file)], [0, 1, 2, 255]);
  assert.equal(await mode(file), 0o600);
});

test('writeFileAtomic replaces an existing file whole, taking the new mode', async (t) => {
  const dir = await tempDir(t);
  const file = path.join(dir, 'state.json');
  await fs.writeFile(file, 'old content that is longer than the new one', { mode: 0o644 });
  await writeFileAtomic(file, 'new', { mode: 0o600 });
  assert.equal(await fs.readFile(file, 'utf8'), 'new');
  assert.equal(await mode(file), 0o600);
  assert.deepEqual(await fs.readdir(dir), ['state.json']);
});

test('writeFileAtomic into a missing directory fails and leaves nothing behind', async (t) => {
  const dir = await tempDir(t);
  await assert.rejects(writeFileAtomic(path.join(dir, 'nope', 'file'), 'x'), { code: 'ENOENT' });
  assert.deepEqual(await fs.readdir(dir), []);
});

test('writeFileAtomic over a directory fails and removes its temp file', async (t) => {
  const dir = await tempDir(t);
  await fs.mkdir(path.join(dir, 'target'));
  await fs.writeFile(path.join(dir, 'target', 'keep'), '');
  await assert.rejects(writeFileAtomic(path.join(dir, 'target'), 'x'));
  assert.deepEqual(await fs.readdir(dir), ['target']);
});

test('concurrent writeFileAtomic calls leave one complete version', async (t) => {
  const dir = await tempDir(t);
  const file = path.join(dir, 'f');
  const versions = Array.from({ length: 20 }, (_, i) => `version ${i} `.repeat(200));
  await Promise.all(versions.map((v) => writeFileAtomic(file, v)));
  assert.ok(versions.includes(await fs.readFile(file, 'utf8')));
  assert.deepEqual(await fs.readdir(dir), ['f']);
});

test('a second daemon on the same state root is DAEMON_ALREADY_RUNNING naming the pid in the pid file', async (t) => {
  const stateRoot = await tempDir(t);
  const pidFile = path.join(stateRoot, 'isulad.pid');
  await lockFor(t, stateRoot, pidFile);
  assert.equal(await fs.readFile(pidFile, 'utf8'), `${process.pid}\n`);
  assert.equal(await mode(pidFile), 0o644);
  const real = await fs.realpath(stateRoot);
  await assert.rejects(acquireDaemonLock(stateRoot, pidFile), (err: unknown) => {
    assert.ok(err instanceof IsulaError);
    assert.equal(err.code, 'DAEMON_ALREADY_RUNNING');
    assert.deepEqual(err.details, { pid: String(process.pid), stateRoot: real });
    // The operator reads the pid in the message to find the other daemon.
    assert.ok(err.message.includes(`pid ${process.pid}`), err.message);
    return true;
  });
  // The pid file still belongs to the first daemon.
  assert.equal(await fs.readFile(pidFile, 'utf8'), `${process.pid}\n`);
});

test('the pid named is whatever the pid file says', async (t) => {
  const stateRoot = await tempDir(t);
  const pidFile = path.join(stateRoot, 'isulad.pid');
  const real = await fs.realpath(stateRoot);
  await lockFor(t, stateRoot, pidFile);
  await fs.writeFile(pidFile, '4242\n');
  await assert.rejects(acquireDaemonLock(stateRoot, pidFile), { code: 'DAEMON_ALREADY_RUNNING', details: { pid: '4242', stateRoot: real } });
  await fs.rm(pidFile);
  await assert.rejects(acquireDaemonLock(stateRoot, pidFile), { code: 'DAEMON_ALREADY_RUNNING', details: { pid: 'unknown', stateRoot: real } });
});

test('the lock follows the real path: a symlink to a locked state root is refused', async (t) => {
  const dir = await tempDir(t);
  const stateRoot = path.join(dir, 'real');
  await fs.mkdir(stateRoot);
  await fs.symlink(stateRoot, path.join(dir, 'link'));
  await lockFor(t, stateRoot, path.join(stateRoot, 'isulad.pid'));
  await assert.rejects(acquireDaemonLock(path.join(dir, 'link'), path.join(dir, 'other.pid')), { code: 'DAEMON_ALREADY_RUNNING' });
});

test('different state roots lock independently', async (t) => {
  const a = await tempDir(t);
  const b = await tempDir(t);
  await lockFor(t, a, path.join(a, 'isulad.pid'));
  await lockFor(t, b, path.join(b, 'isulad.pid'));
  assert.equal(await fs.readFile(path.join(b, 'isulad.pid'), 'utf8'), `${process.pid}\n`);
});

test('release removes the pid file and frees the lock for the next daemon', async (t) => {
  const stateRoot = await tempDir(t);
  const pidFile = path.join(stateRoot, 'isulad.pid');
  const first = await acquireDaemonLock(stateRoot, pidFile);
  await first.release();
  await assert.rejects(fs.access(pidFile), { code: 'ENOENT' });
  await lockFor(t, stateRoot, pidFile);
  assert.equal(await fs.readFile(pidFile, 'utf8'), `${process.pid}\n`);
});

test('release leaves a pid file another process has written', async (t) => {
  const stateRoot = await tempDir(t);
  const pidFile = path.join(stateRoot, 'isulad.pid');
  const lock = await acquireDaemonLock(stateRoot, pidFile);
  await fs.writeFile(pidFile, '4242\n');
  await lock.release();
  assert.equal(await fs.readFile(pidFile, 'utf8'), '4242\n');
  // The lock itself is free again.
  await lockFor(t, stateRoot, pidFile);
});

test('acquiring a lock on a missing state root fails with ENOENT', async (t) => {
  const dir = await tempDir(t);
  await assert.rejects(acquireDaemonLock(path.join(dir, 'missing'), path.join(dir, 'isulad.pid')), { code: 'ENOENT' });
});
