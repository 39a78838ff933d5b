import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { tempDir, waitFor } from './log-helpers.js';
import { LogRotation, logFiles, parseLogSize, removeLogFiles } from '../src/container/log-rotation.js';
import { IsulaError } from '../src/errors.js';

/**
 * conmon's replacement of a full log (ctr_logging.c reopen_k8s_file, 2.1.6):
 * fsync, close, open `<path>.tmp` O_TRUNC, rename it over `<path>`. Done by
 * hand so the tests need no container; the content is the test's marker.
 */
async function conmonReplace(file: string, content: string): Promise<void> {
  const tmp = `${file}.tmp`;
  const fh = await fs.open(tmp, 'w', 0o640);
  await fh.writeFile(content);
  await fh.close();
  await fs.rename(tmp, file);
}

const ino = async (p: string): Promise<number> => (await fs.lstat(p)).ino;
const read = (p: string): Promise<string> => fs.readFile(p, 'utf8');
const exists = (p: string): Promise<boolean> => fs.lstat(p).then(() => true, () => false);

function recordingLog(): { warn(obj: object, msg: string): void; warnings: Array<{ obj: object; msg: string }> } {
  const warnings: Array<{ obj: object; msg: string }> = [];
  return { warnings, warn: (obj, msg) => { warnings.push({ obj, msg }); } };
}

function rotation(t: TestContext, opts: ConstructorParameters<typeof LogRotation>[0] = {}): LogRotation {
  // A long interval: the tests drive tick() themselves unless they test the timer.
  const r = new LogRotation({ intervalMs: 60_000, ...opts });
  t.after(() => r.close());
  return r;
}

test('parseLogSize reads Docker sizes with binary units, any case, optional b/ib', () => {
  const cases: Array<[string, number]> = [
    ['512', 512], ['512b', 512], ['10k', 10240], ['10kb', 10240], ['10KB', 10240], ['10KiB', 10240],
    ['10m', 10 * 1024 ** 2], ['10MB', 10 * 1024 ** 2], ['1g', 1024 ** 3], ['1G', 1024 ** 3], ['1.5k', 1536], ['2 m', 2 * 1024 ** 2], ['1t', 1024 ** 4],
  ];
  for (const [text, bytes] of cases) assert.equal(parseLogSize(text), bytes, text);
});

test('parseLogSize rejects anything else with CONTAINER_CONFIG_INVALID naming the value', () => {
  for (const bad of ['', 'abc', '10x', '-1', '0', '0k', '10 ', ' 10', 'k', '1e3', '10mm', '10bk', '99999999999999p']) {
    assert.throws(() => parseLogSize(bad), (err: unknown) => err instanceof IsulaError && err.code === 'CONTAINER_CONFIG_INVALID' && err.message.includes(JSON.stringify(bad)), bad);
  }
});

test('track makes the hold link to the current inode at once', async (t) => {
  const dir = await tempDir(t, 'isula-core-logrot-');
  const log = path.join(dir, 'container.log');
  await fs.writeFile(log, 'a\n');
  await rotation(t).track(log, { maxFiles: 3 });
  assert.equal(await ino(`${log}.hold`), await ino(log));
  assert.deepEqual(await logFiles(log), [log]);
});

test('finish shifts a file conmon replaced at the very end, then stops tracking it', async (t) => {
  const dir = await tempDir(t, 'isula-core-logrot-');
  const file = path.join(dir, 'container.log');
  await fs.writeFile(file, 'first\n');
  const rot = rotation(t);
  await rot.track(file, { maxFiles: 3 });
  await conmonReplace(file, 'last\n');
  await rot.finish(file);
  assert.equal(await read(`${file}.1`), 'first\n', 'the replaced content is kept');
  await conmonReplace(file, 'after\n');
  await rot.tick();
  assert.equal(await exists(`${file}.2`), false, 'no longer tracked: a later replacement is not shifted');
  await rot.finish(file); // not tracked: nothing to do
});

test('a missing log (never started, log-driver none) is left alone', async (t) => {
  const dir = await tempDir(t, 'isula-core-logrot-');
  const log = path.join(dir, 'container.log');
  const r = rotation(t);
  await r.track(log, { maxFiles: 3 });
  await r.tick();
  assert.deepEqual(await fs.readdir(dir), []);
  assert.deepEqual(await logFiles(log), []);
});

test('tick does nothing while conmon writes the held inode', async (t) => {
  const dir = await tempDir(t, 'isula-core-logrot-');
  const log = path.join(dir, 'container.log');
  await fs.writeFile(log, 'a\n');
  const r = rotation(t);
  await r.track(log, { maxFiles: 3 });
  await fs.appendFile(log, 'b\n');
  await r.tick();
  await r.tick();
  assert.deepEqual((await fs.readdir(dir)).sort(), ['container.log', 'container.log.hold']);
  assert.equal(await read(log), 'a\nb\n');
});

test('after conmon replaces the log, tick keeps the old content as .1 and holds the new inode', async (t) => {
  const dir = await tempDir(t, 'isula-core-logrot-');
  const log = path.join(dir, 'container.log');
  await fs.writeFile(log, 'first\n');
  const r = rotation(t);
  await r.track(log, { maxFiles: 3 });
  await conmonReplace(log, 'second\n');
  assert.deepEqual(await logFiles(log), [`${log}.hold`, log], 'a reader sees the held old inode before the tick');
  await r.tick();
  assert.equal(await read(`${log}.1`), 'first\n');
  assert.equal(await ino(`${log}.hold`), await ino(log));
  assert.deepEqual(await logFiles(log), [`${log}.1`, log]);
});

test('repeated replacements keep the newest maxFiles files, oldest dropped', async (t) => {
  const dir = await tempDir(t, 'isula-core-logrot-');
  const log = path.join(dir, 'container.log');
  await fs.writeFile(log, 'gen0\n');
  const r = rotation(t);
  await r.track(log, { maxFiles: 3 });
  for (let gen = 1; gen <= 6; gen++) {
    await conmonReplace(log, `gen${gen}\n`);
    await r.tick();
  }
  assert.deepEqual((await fs.readdir(dir)).sort(), ['container.log', 'container.log.1', 'container.log.2', 'container.log.hold']);
  const files = await logFiles(log);
  assert.deepEqual(files, [`${log}.2`, `${log}.1`, log]);
  assert.deepEqual(await Promise.all(files.map(read)), ['gen4\n', 'gen5\n', 'gen6\n']);
});

test('with maxFiles 1 the replaced inode is dropped and no rotated file appears', async (t) => {
  const dir = await tempDir(t, 'isula-core-logrot-');
  const log = path.join(dir, 'container.log');
  await fs.writeFile(log, 'old\n');
  const r = rotation(t);
  await r.track(log, { maxFiles: 1 });
  const oldIno = await ino(log);
  await conmonReplace(log, 'new\n');
  await r.tick();
  assert.deepEqual((await fs.readdir(dir)).sort(), ['container.log', 'container.log.hold']);
  assert.notEqual(await ino(`${log}.hold`), oldIno);
  assert.equal(await ino(`${log}.hold`), await ino(log));
  assert.deepEqual(await logFiles(log), [log]);
});

test('while the daemon is down only one old inode is held; track shifts it on restart', async (t) => {
  const dir = await tempDir(t, 'isula-core-logrot-');
  const log = path.join(dir, 'container.log');
  await fs.writeFile(log, 'gen0\n');
  const before = rotation(t);
  await before.track(log, { maxFiles: 3 });
  before.close();
  // Daemon down: conmon truncates three times, nobody ticks.
  for (let gen = 1; gen <= 3; gen++) await conmonReplace(log, `gen${gen}\n`);
  assert.deepEqual((await fs.readdir(dir)).sort(), ['container.log', 'container.log.hold']);
  const after = rotation(t);
  await after.track(log, { maxFiles: 3 });
  const files = await logFiles(log);
  assert.deepEqual(await Promise.all(files.map(read)), ['gen0\n', 'gen3\n'], 'gen1 and gen2 were truncated by conmon; the bound held');
});

test('a crash after moving .hold to .1 is repaired by relinking, not by shifting again', async (t) => {
  const dir = await tempDir(t, 'isula-core-logrot-');
  const log = path.join(dir, 'container.log');
  await fs.writeFile(`${log}.2`, 'gen0\n');
  await fs.writeFile(`${log}.1`, 'gen1\n');
  await fs.writeFile(log, 'gen2\n');
  assert.deepEqual(await logFiles(log), [`${log}.2`, `${log}.1`, log], 'readers are fine with the hold missing');
  const r = rotation(t);
  await r.track(log, { maxFiles: 3 });
  await r.tick();
  assert.equal(await ino(`${log}.hold`), await ino(log));
  assert.deepEqual(await Promise.all((await logFiles(log)).map(read)), ['gen0\n', 'gen1\n', 'gen2\n']);
});

test('a shift interrupted half-way is finished without dropping another file', async (t) => {
  const dir = await tempDir(t, 'isula-core-logrot-');
  const log = path.join(dir, 'container.log');
  // Shift of [.3=gen0 .2=gen1 .1=gen2 hold=gen3] crashed after dropping .3 and moving .2 to .3:
  await fs.writeFile(`${log}.3`, 'gen1\n');
  await fs.writeFile(`${log}.1`, 'gen2\n');
  await fs.writeFile(`${log}.hold`, 'gen3\n');
  await fs.writeFile(log, 'gen4\n');
  const r = rotation(t);
  await r.track(log, { maxFiles: 4 });
  assert.deepEqual(await Promise.all((await logFiles(log)).map(read)), ['gen1\n', 'gen2\n', 'gen3\n', 'gen4\n']);
  assert.equal(await ino(`${log}.hold`), await ino(log));
});

test('track with a lower maxFiles removes rotated files past it', async (t) => {
  const dir = await tempDir(t, 'isula-core-logrot-');
  const log = path.join(dir, 'container.log');
  for (const n of [1, 2, 3, 4]) await fs.writeFile(`${log}.${n}`, `old${n}\n`);
  await fs.writeFile(log, 'cur\n');
  await fs.writeFile(path.join(dir, 'container.log.10x'), 'not ours');
  await rotation(t).track(log, { maxFiles: 2 });
  assert.deepEqual((await fs.readdir(dir)).sort(), ['container.log', 'container.log.1', 'container.log.10x', 'container.log.hold']);
});

test('track rejects a maxFiles below 1 with CONTAINER_CONFIG_INVALID', async (t) => {
  const r = rotation(t);
  for (const maxFiles of [0, -1, 1.5, Number.NaN]) {
    await assert.rejects(r.track('/nonexistent/container.log', { maxFiles }), (err: unknown) => err instanceof IsulaError && err.code === 'CONTAINER_CONFIG_INVALID');
  }
});

test('a failing tick logs one warning per failure and never throws', async (t) => {
  const dir = await tempDir(t, 'isula-core-logrot-');
  const log = path.join(dir, 'container.log');
  await fs.writeFile(log, 'a\n');
  const logger = recordingLog();
  const r = rotation(t, { log: logger });
  await r.track(log, { maxFiles: 2 });
  // .1 is a non-empty directory: the shift cannot drop it.
  await fs.mkdir(`${log}.1`);
  await fs.writeFile(path.join(`${log}.1`, 'x'), '');
  await conmonReplace(log, 'b\n');
  await r.tick();
  await r.tick();
  assert.equal(logger.warnings.length, 1);
  assert.equal(logger.warnings[0]?.msg, 'log rotation failed');
  await fs.rm(`${log}.1`, { recursive: true });
  await r.tick();
  assert.equal(await read(`${log}.1`), 'a\n', 'repaired on the next tick');
  assert.equal(await ino(`${log}.hold`), await ino(log));
});

test('the timer rotates tracked files on its own, and stops after close', async (t) => {
  const dir = await tempDir(t, 'isula-core-logrot-');
  const log = path.join(dir, 'container.log');
  await fs.writeFile(log, 'a\n');
  const r = rotation(t, { intervalMs: 10 });
  await r.track(log, { maxFiles: 2 });
  await conmonReplace(log, 'b\n');
  await waitFor(() => exists(`${log}.1`));
  assert.equal(await read(`${log}.1`), 'a\n');
  r.close();
  r.close();
  await conmonReplace(log, 'c\n');
  await delay(60);
  assert.equal(await read(`${log}.1`), 'a\n', 'no rotation after close');
  assert.notEqual(await ino(`${log}.hold`), await ino(log));
});

test('untrack stops rotating a file', async (t) => {
  const dir = await tempDir(t, 'isula-core-logrot-');
  const log = path.join(dir, 'container.log');
  await fs.writeFile(log, 'a\n');
  const r = rotation(t);
  await r.track(log, { maxFiles: 3 });
  r.untrack(log);
  await conmonReplace(log, 'b\n');
  await r.tick();
  assert.equal(await exists(`${log}.1`), false);
});

test('logFiles lists rotated files numerically, oldest first, and the pending hold before the log', async (t) => {
  const dir = await tempDir(t, 'isula-core-logrot-');
  const log = path.join(dir, 'container.log');
  for (const n of [1, 2, 10, 9]) await fs.writeFile(`${log}.${n}`, '');
  await fs.writeFile(`${log}.hold`, 'old inode');
  await fs.writeFile(log, '');
  await fs.writeFile(`${log}.tmp`, '');
  await fs.writeFile(`${log}.01`, '');
  await fs.writeFile(path.join(dir, 'other.log.1'), '');
  assert.deepEqual(await logFiles(log), [`${log}.10`, `${log}.9`, `${log}.2`, `${log}.1`, `${log}.hold`, log]);
  assert.deepEqual(await logFiles(path.join(dir, 'missing', 'container.log')), []);
});

test('removeLogFiles removes the log, its rotated files, hold and conmon temp file only', async (t) => {
  const dir = await tempDir(t, 'isula-core-logrot-');
  const log = path.join(dir, 'container.log');
  for (const n of [1, 2, 3]) await fs.writeFile(`${log}.${n}`, '');
  await fs.writeFile(log, '');
  await fs.link(log, `${log}.hold`);
  await fs.writeFile(`${log}.tmp`, '');
  await fs.writeFile(path.join(dir, 'config.v2.json'), '{}');
  await removeLogFiles(log);
  assert.deepEqual(await fs.readdir(dir), ['config.v2.json']);
  await removeLogFiles(log);
  await removeLogFiles(path.join(dir, 'missing', 'container.log'));
});
