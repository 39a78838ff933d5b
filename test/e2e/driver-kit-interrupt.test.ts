/**
 * ctrl-c and SIGTERM during isula-driver-tests, against runc: the kit runs
 * in a process group of its own, as a shell runs a job, and ctrl-c is SIGINT
 * to that group (the kit, its spec process, the isula calls in flight). The
 * spec process must tear down what the spec running had (its containers,
 * isulad, mounts, roots) before the kit reports the run as interrupted and
 * exits 130; SIGTERM to the kit alone must reach the spec process too (143).
 * (An interrupted preflight is checked in the kit's unit tests, with a fake
 * isulad: the real one's preflight is over too soon to catch it.)
 * Every root of the run is under a TMPDIR of the test's own, so anything
 * left (a process naming it, a mount under it, a root) is the run's.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { childEnv, LIFECYCLE_SPECS, mountsUnder, packageDir, processesMatching, runDetached, type KitReport } from '@isula/driver-tests';
import { repoBusybox } from '../lib/containers.js';
import { reapLeftovers, tempRoot, TestDaemon, waitFor } from '../lib/harness.js';

const CLI = path.join(packageDir('@isula/driver-tests'), 'dist/src/bin/isula-driver-tests.js');
const notRoot = process.getuid?.() !== 0 ? 'needs root' : '';
if (notRoot !== '' && process.env['CI'] === 'true') throw new Error(`driver kit interrupt e2e: ${notRoot}`);

const LIFECYCLE = 'container life cycle on runc';
const CREATE_START = LIFECYCLE_SPECS.createStart;
/** The life-cycle specs but CREATE_START, skipped: the run reaches it at once. */
const OTHERS = Object.values(LIFECYCLE_SPECS).filter((n) => n !== CREATE_START);

interface Run { pid: number; ended: Promise<{ code: number | null; stdout: string; stderr: string }>; tmp: string; report: string }

/** The kit on the life-cycle suite, in a process group of its own, its roots under a TMPDIR of its own. */
async function startKit(t: TestContext): Promise<Run> {
  const work = await tempRoot('isula-kit-int-');
  const tmp = path.join(work, 'tmp');
  await fs.mkdir(tmp);
  const skips = path.join(work, 'skips.json');
  await fs.writeFile(skips, JSON.stringify(Object.fromEntries(OTHERS.map((n) => [n, 'not this test\'s']))));
  const report = path.join(work, 'report.json');
  const child = spawn(process.execPath, [CLI, '--runtime', 'runc', '--plugin', '@isula/driver-runc', '--suite', 'lifecycle',
    '--skip-tests', skips, '--image', await repoBusybox(), '--report', report], { env: { ...childEnv({}), TMPDIR: tmp }, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => { stdout += c.toString('utf8'); });
  child.stderr.on('data', (c: Buffer) => { stderr += c.toString('utf8'); });
  const ended = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
  // A spawn that failed has no pid, and -0 would signal this process's group (node --test and
  // every test file it runs): wait until the kit runs, and clean up its roots even if it did not.
  const started = new Promise<void>((resolve, reject) => { child.once('spawn', resolve); child.once('error', reject); });
  t.after(async () => {
    if (child.pid !== undefined) try { process.kill(-child.pid, 'SIGKILL'); } catch { /* ended */ }
    await reapRun(tmp);
    await fs.rm(work, { recursive: true, force: true });
  });
  await started;
  if (child.pid === undefined) throw new Error('isula-driver-tests: spawned with no pid');
  return { pid: child.pid, ended, tmp, report };
}

/**
 * What a run that failed its test leaves under `tmp`, undone so that
 * deleting it deletes nothing in use: its processes (isulad and conmon name
 * their roots) killed, its containers deleted with runc (reapLeftovers),
 * then whatever is still mounted under it detached.
 */
async function reapRun(tmp: string): Promise<void> {
  for (const pid of await processesOf(tmp)) try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
  for (const name of await fs.readdir(tmp).catch(() => [] as string[])) {
    if (name.startsWith('isula-')) await reapLeftovers(new TestDaemon(path.join(tmp, name)));
  }
  for (const m of (await mountsUnder(`${tmp}/`)).reverse()) {
    await runDetached('umount', ['-l', m], { timeoutMs: 10_000 });
  }
}

/** Processes of the run: their command line names a path under its TMPDIR (isulad's roots, conmon's bundle). */
async function processesOf(tmp: string, program = ''): Promise<number[]> {
  const out: number[] = [];
  for (const pid of await processesMatching(tmp)) {
    const argv = (await fs.readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')).split('\0');
    if (argv.some((a) => a.endsWith(program))) out.push(pid);
  }
  return out;
}

async function assertNothingLeft(tmp: string): Promise<void> {
  assert.deepEqual(await processesOf(tmp), [], 'no isulad, conmon or container process of the run is left');
  assert.deepEqual(await mountsUnder(tmp), [], 'no mount under the run\'s roots is left');
  assert.deepEqual((await fs.readdir(tmp)).filter((n) => n.startsWith('isula-')), [], 'no root of the run is left');
}

test('ctrl-c (SIGINT to the process group) mid-spec: the spec\'s containers and isulad are torn down, the partial report names the spec, exit 130', { skip: notRoot || false }, async (t) => {
  const kit = await startKit(t);
  // A container of the spec runs: conmon, which lives outside the daemon, names its bundle.
  await waitFor(async () => (await processesOf(kit.tmp, 'conmon')).length > 0, { timeoutMs: 60_000, what: 'a container of the spec to run' });
  assert.ok((await processesOf(kit.tmp, 'isulad.js')).length > 0, 'the spec\'s isulad runs');
  process.kill(-kit.pid, 'SIGINT');
  const r = await kit.ended;
  assert.equal(r.code, 130, `${r.stdout}\n${r.stderr}`);
  await assertNothingLeft(kit.tmp);
  assert.match(r.stdout, new RegExp(`^ {2}STOP {2}${LIFECYCLE} > create, start, stop, kill, restart, rename, wait, rm with docker's semantics\\n {8}interrupted by SIGINT; the specs after it did not run$`, 'm'));
  assert.match(r.stdout, /^conformance: 1 passed, 0 failed, 1 skipped; interrupted by SIGINT$/m);
  const json = JSON.parse(await fs.readFile(kit.report, 'utf8')) as KitReport;
  assert.deepEqual(json.interrupted, { signal: 'SIGINT', spec: `${LIFECYCLE} > ${CREATE_START}` });
  assert.deepEqual(json.specs.map((s) => s.status), ['pass', 'skip'], 'the preflight and the skipped spec before it; nothing after');
});

test('SIGTERM to the kit alone mid-spec reaches the spec process: its containers and isulad are torn down, exit 143', { skip: notRoot || false }, async (t) => {
  const kit = await startKit(t);
  await waitFor(async () => (await processesOf(kit.tmp, 'conmon')).length > 0, { timeoutMs: 60_000, what: 'a container of the spec to run' });
  process.kill(kit.pid, 'SIGTERM');
  const r = await kit.ended;
  assert.equal(r.code, 143, `${r.stdout}\n${r.stderr}`);
  await assertNothingLeft(kit.tmp);
  assert.match(r.stdout, new RegExp(`^ {2}STOP {2}${LIFECYCLE} > create, start, stop, kill, restart, rename, wait, rm with docker's semantics\\n {8}interrupted by SIGTERM`, 'm'));
  assert.match(r.stdout, /^conformance: 1 passed, 0 failed, 1 skipped; interrupted by SIGTERM$/m);
});
