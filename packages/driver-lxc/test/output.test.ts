/**
 * The output pump on real files (no lxc, no root): raw stdout/stderr files →
 * k8s-file log and attach streams; offsets let a new pump (a restarted
 * daemon) go on without repeating or losing a line.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { OutputPump, readOffsets } from '../src/output.js';

async function waitFor<T>(check: () => Promise<T | undefined>, timeoutMs = 5000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
}

test('output reaches the log and attach clients; a new pump resumes from the saved offsets', async (t) => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'lxc-output-'));
  t.after(() => fs.rm(dir, { recursive: true, force: true }));
  const files = { stdoutFile: path.join(dir, 'out'), stderrFile: path.join(dir, 'err'), logPath: path.join(dir, 'ctr.log'), offsetsFile: path.join(dir, 'offsets') };
  await fs.writeFile(files.stdoutFile, '');
  await fs.writeFile(files.stderrFile, '');

  const pump = new OutputPump({ ...files, offsets: { stdout: 0, stderr: 0 } });
  const attached = pump.attach();
  const got: string[] = [];
  attached.onOutput((s, c) => got.push(`${s}:${c.toString()}`));
  let closed = false;
  attached.onClose(() => { closed = true; });
  pump.start();
  await fs.appendFile(files.stdoutFile, 'one\ntw');
  await fs.appendFile(files.stderrFile, 'oops\n');
  const log = () => fs.readFile(files.logPath, 'utf8').catch(() => '');
  await waitFor(async () => ((await log()).includes('stderr F oops') && (await log()).includes('stdout F one') ? true : undefined));
  assert.deepEqual(got.sort(), ['1:one\ntw', '2:oops\n']);
  await pump.close(); // daemon stops: offsets saved, no flush of the partial line
  assert.deepEqual(await readOffsets(files.offsetsFile), { stdout: 4, stderr: 5 }, 'the unfinished "tw" is read again');
  assert.equal(closed, true);

  await fs.appendFile(files.stdoutFile, 'o\n');
  const again = new OutputPump({ ...files, offsets: await readOffsets(files.offsetsFile) });
  again.start();
  await fs.appendFile(files.stdoutFile, 'tail');
  await waitFor(async () => ((await log()).includes('stdout F two\n') ? true : undefined));
  await again.finish(); // the container exited: the unfinished line is flushed as partial
  const lines = (await log()).trim().split('\n').map((l) => l.split(' ').slice(1).join(' '));
  assert.deepEqual(lines, ['stdout F one', 'stderr F oops', 'stdout F two', 'stdout P tail']);
});

test('at the exit the pump copies everything the container wrote, however far behind it is', async (t) => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'lxc-output-'));
  t.after(() => fs.rm(dir, { recursive: true, force: true }));
  const files = { stdoutFile: path.join(dir, 'out'), stderrFile: path.join(dir, 'err'), logPath: path.join(dir, 'ctr.log'), offsetsFile: path.join(dir, 'offsets') };
  // 20 MiB written before the pump ever ran (a flood faster than the daemon): one pass reads at most 16 MiB.
  const line = `${'x'.repeat(63)}\n`;
  await fs.writeFile(files.stdoutFile, `${line.repeat(20 * 16384)}the-end`);
  await fs.writeFile(files.stderrFile, '');
  const pump = new OutputPump({ ...files, offsets: { stdout: 0, stderr: 0 } });
  await pump.finish();
  const log = await fs.readFile(files.logPath, 'utf8');
  const records = log.split('\n').filter(Boolean);
  assert.equal(records.length, 20 * 16384 + 1);
  assert.match(records.at(-1) ?? '', / stdout P the-end$/);
  assert.deepEqual(await readOffsets(files.offsetsFile), { stdout: 20 * 1024 * 1024 + 7, stderr: 0 });
});
