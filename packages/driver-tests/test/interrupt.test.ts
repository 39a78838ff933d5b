/**
 * Interruption (ctrl-c, SIGTERM) of a process that runs daemons through the
 * harness, and of the kit's spec process, with a fake isulad and isula
 * (fixtures/fake-isulad.ts says why): no root needed. The kit's command
 * against a real daemon is test/e2e/driver-kit-interrupt.test.ts.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { test, type TestContext } from 'node:test';
import { childEnv, waitFor, type KitReport } from '../src/index.js';

const fixture = (name: string) => fileURLToPath(new URL(`./fixtures/${name}.js`, import.meta.url));
/** What the fixtures need to run the fakes instead of isulad and isula. */
const FAKES = { ISULA_KIT_ISULAD: fixture('fake-isulad'), ISULA_KIT_ISULA: fixture('fake-isula') };

interface Ended { code: number | null; signal: NodeJS.Signals | null; stdout: string }

/**
 * A Node script in a process group of its own, as a shell runs a job: a
 * signal to the group is what a terminal's ctrl-c sends. Killed (the group)
 * after the test if still running. Resolves once it runs, so `pid` is its
 * own: a spawn that failed has no pid, and -0 would signal this process's
 * group (node --test and every test file it runs).
 */
async function job(t: TestContext, script: string, args: string[], env: NodeJS.ProcessEnv): Promise<{ pid: number; firstLine: Promise<string>; ended: Promise<Ended> }> {
  const child = spawn(process.execPath, [script, ...args], { env, detached: true, stdio: ['ignore', 'pipe', 'inherit'] });
  let stdout = '';
  const firstLine = new Promise<string>((resolve) => {
    child.stdout.on('data', (c: Buffer) => {
      stdout += c.toString('utf8');
      if (stdout.includes('\n')) resolve(stdout.slice(0, stdout.indexOf('\n')));
    });
  });
  const ended = new Promise<Ended>((resolve) => child.on('close', (code, signal) => resolve({ code, signal, stdout })));
  await new Promise<void>((resolve, reject) => { child.once('spawn', resolve); child.once('error', reject); });
  const pid = child.pid;
  if (pid === undefined) throw new Error(`${script}: spawned with no pid`);
  t.after(() => { try { process.kill(-pid, 'SIGKILL'); } catch { /* ended */ } });
  return { pid, firstLine, ended };
}

/** The fakes' log (FAKE_LOG), line by line. */
const logLines = (file: string) => fs.readFileSync(file, 'utf8').split('\n').filter(Boolean);

const alive = (pid: number) => { try { process.kill(pid, 0); return true; } catch { return false; } };
const exists = (p: string) => fs.existsSync(p);

/** A TMPDIR of the test's own (the daemons' roots go there, and it is checked empty), and a log for the fakes outside it. */
function tmpDir(t: TestContext): { tmp: string; log: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kit-interrupt-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  fs.mkdirSync(path.join(dir, 'tmp'));
  return { tmp: path.join(dir, 'tmp'), log: path.join(dir, 'fake.log') };
}

for (const [sig, code] of [['SIGINT', 130], ['SIGTERM', 143]] as const) {
  test(`${sig} to the process group: the daemon is not signalled, the harness removes its containers, stops it, deletes its root and exits ${code}`, async (t) => {
    const { tmp, log } = tmpDir(t);
    const { pid, firstLine, ended } = await job(t, fixture('interrupt-daemon'), ['wait'], { ...childEnv(FAKES), TMPDIR: tmp, FAKE_LOG: log });
    const { root, pid: daemonPid } = JSON.parse(await firstLine) as { root: string; pid: number };
    process.kill(-pid, sig);
    const end = await ended;
    assert.deepEqual([end.code, end.signal], [code, null]);
    assert.equal(exists(root), false, 'the root is deleted before the process ends');
    assert.deepEqual(logLines(log), ['isula ps -aq --no-trunc', 'isula rm -f c1', 'isula ps -aq --no-trunc', 'isulad SIGTERM'],
      'the containers are removed while the daemon runs, then it is stopped; the group\'s signal never reached it');
    assert.equal(alive(daemonPid), false);
    assert.deepEqual(fs.readdirSync(tmp).filter((n) => n.startsWith('isula-')), []);
  });
}

test('a process not interrupted is as without the handlers: it tears its daemon down and ends on its own, exit 0', async (t) => {
  const { tmp, log } = tmpDir(t);
  const { ended } = await job(t, fixture('interrupt-daemon'), ['normal'], { ...childEnv(FAKES), TMPDIR: tmp, FAKE_LOG: log });
  const end = await ended;
  assert.deepEqual([end.code, end.signal], [0, null]);
  const { root, pid } = JSON.parse(end.stdout) as { root: string; pid: number };
  assert.equal(alive(pid), false);
  assert.equal(exists(root), false);
  assert.deepEqual(logLines(log), ['isulad SIGTERM'], 'stopped as before: no container removal that teardown was not asked for');
});

for (const mode of ['caller', 'late'] as const) test(`leaveSignalsToCaller ${mode === 'caller' ? 'before' : 'after'} a daemon started: the harness leaves no handler, so SIGINT ends the process at once and its daemon is the caller's`, async (t) => {
  const { tmp, log } = tmpDir(t);
  const { pid, firstLine, ended } = await job(t, fixture('interrupt-daemon'), [mode], { ...childEnv(FAKES), TMPDIR: tmp, FAKE_LOG: log });
  const { root, pid: daemonPid } = JSON.parse(await firstLine) as { root: string; pid: number };
  t.after(() => { try { process.kill(daemonPid, 'SIGKILL'); } catch { /* gone */ } });
  process.kill(-pid, 'SIGINT');
  const end = await ended;
  assert.deepEqual([end.code, end.signal], [null, 'SIGINT']);
  assert.equal(alive(daemonPid), true, 'the daemon, in a session of its own, runs on');
  assert.equal(exists(root), true);
});

test('an interrupted spec process: what ran is reported, the spec running is named, its daemon torn down before the run returns, the next spec never runs', async (t) => {
  const { tmp, log } = tmpDir(t);
  const ready = path.join(path.dirname(tmp), 'ready');
  const env = { ...FAKES, INTERRUPT_READY: ready, TMPDIR: tmp, FAKE_LOG: log };
  const { pid, ended } = await job(t, fixture('interrupt-run'), [JSON.stringify(env), fixture('interruptible-specs')], childEnv({}));
  await waitFor(() => exists(ready), { timeoutMs: 20_000, what: 'the second spec to run its daemon' });
  const root = fs.readFileSync(ready, 'utf8');
  // To the runner alone, as `kill PID` does: it must pass the signal on to the spec process.
  process.kill(pid, 'SIGTERM');
  const end = await ended;
  assert.equal(exists(root), false, 'the spec process deleted its daemon\'s root before the run returned');
  assert.equal(end.code, 0, end.stdout);
  assert.deepEqual(JSON.parse(end.stdout), {
    specs: [['interruptible > passes', 'pass']],
    interrupted: { signal: 'SIGTERM', spec: 'interruptible > waits' },
  });
  assert.deepEqual(logLines(log).slice(-2), ['isula ps -aq --no-trunc', 'isulad SIGTERM'], 'the spec\'s daemon was stopped once its containers were gone');
  assert.ok(logLines(log).includes('isula rm -f c1'));
  assert.deepEqual(fs.readdirSync(tmp).filter((n) => n.startsWith('isula-')), []);
  assert.equal(exists(`${ready}.ran`), false, 'the spec after it did not run');
});

test('an interrupted preflight: its isulad is stopped and its root deleted, and the report names it with no row', async (t) => {
  const { tmp, log } = tmpDir(t);
  const { pid, ended } = await job(t, fixture('interrupt-kit'), [], { ...childEnv(FAKES), TMPDIR: tmp, FAKE_LOG: log });
  await waitFor(() => exists(log) && logLines(log).includes('isulad GET /info'), { timeoutMs: 20_000, what: 'the preflight to ask /info' });
  process.kill(pid, 'SIGTERM');
  const end = await ended;
  assert.equal(end.code, 0, end.stdout);
  const report = JSON.parse(end.stdout) as KitReport;
  assert.deepEqual([report.interrupted, report.specs, report.counts], [{ signal: 'SIGTERM', spec: 'preflight: isulad loads isula-fake-plugin' }, [], { pass: 0, fail: 0, skip: 0 }]);
  assert.equal(logLines(log).at(-1), 'isulad SIGTERM');
  assert.deepEqual(fs.readdirSync(tmp).filter((n) => n.startsWith('isula-')), []);
});

test('ctrl-c with the command\'s output piped to a reader ctrl-c ended too (`| tee log`): no EPIPE crash, the report file is written, exit 130', { skip: process.getuid?.() !== 0 ? 'the command needs root' : false }, async (t) => {
  const { tmp, log } = tmpDir(t);
  const report = path.join(path.dirname(tmp), 'report.json');
  const bin = fileURLToPath(new URL('../src/bin/isula-driver-tests.js', import.meta.url));
  const child = spawn(process.execPath, [bin, '--runtime', 'fakert', '--plugin', 'isula-fake-plugin', '--suite', 'lifecycle', '--report', report],
    { env: { ...childEnv(FAKES), TMPDIR: tmp, FAKE_LOG: log }, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  const ended = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  await new Promise<void>((resolve, reject) => { child.once('spawn', resolve); child.once('error', reject); });
  const pid = child.pid;
  if (pid === undefined) throw new Error(`${bin}: spawned with no pid`);
  t.after(() => { try { process.kill(-pid, 'SIGKILL'); } catch { /* ended */ } });
  await waitFor(() => exists(log) && logLines(log).includes('isulad GET /info'), { timeoutMs: 20_000, what: 'the preflight to ask /info' });
  // The reader is gone: the command's next write gets EPIPE.
  child.stdout.destroy();
  child.stderr.destroy();
  process.kill(-pid, 'SIGINT');
  assert.deepEqual(await ended, { code: 130, signal: null });
  const json = JSON.parse(fs.readFileSync(report, 'utf8')) as KitReport;
  assert.deepEqual(json.interrupted, { signal: 'SIGINT', spec: 'preflight: isulad loads isula-fake-plugin' });
  assert.deepEqual(fs.readdirSync(tmp).filter((n) => n.startsWith('isula-')), []);
});
