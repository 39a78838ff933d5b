import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { childEnv, countSpecs, formatReport, type SpecResult } from '../src/index.js';

const fixture = (name: string) => fileURLToPath(new URL(`./fixtures/${name}.js`, import.meta.url));
const ENTRY = fileURLToPath(new URL('../src/entry.js', import.meta.url));
const LIFECYCLE_TESTS = [
  'run: output, exit codes, --rm, env/user/workdir/entrypoint as docker',
  'create, start, stop, kill, restart, rename, wait, rm with docker\'s semantics',
  'bind mounts: read-write, read-only enforced, tmpfs, read-only rootfs',
  'process and security options: capabilities, privileged, devices, ulimits (clamped), shm, hostname, init',
  'resources: limits land in the cgroup files, update changes them, OOM is reported',
  'pause freezes the container (a counter stops) and unpause resumes it',
  'restart policies: on-failure:N stops after N, always restarts with back-off, stop ends it',
  'bad input: a clear error and no trace',
];

/** The kit's rows for these test files, collected in a child (run() does not nest in a test file). */
async function specs(files: string[], env: NodeJS.ProcessEnv = {}): Promise<SpecResult[]> {
  const { stdout } = await promisify(execFile)(process.execPath, [fixture('collect'), JSON.stringify(env), ...files], { env: childEnv({}), timeout: 120_000 });
  return JSON.parse(stdout) as SpecResult[];
}

test('each spec is reported pass, fail (with the assertion) or skip (with the reason); a skipped suite is one row', async () => {
  const got = await specs([fixture('mixed-specs')]);
  assert.deepEqual(got.map((s) => [s.name, s.status, s.reason]), [
    ['outer > passes', 'pass', undefined],
    ['outer > fails', 'fail', 'arithmetic is broken'],
    ['outer > is skipped', 'skip', 'does not apply here'],
    ['whole suite skipped', 'skip', 'host lacks it'],
  ]);
  const counts = countSpecs(got);
  assert.deepEqual(counts, { pass: 1, fail: 1, skip: 2 });
  const text = formatReport({ schemaVersion: 1, runtime: 'x', plugins: ['p'], suites: ['lifecycle'], startedAt: '', durationMs: 0, specs: got, counts });
  assert.match(text, /^ {2}FAIL {2}outer > fails \(\d+\.\d s\)\n {8}arithmetic is broken$/m);
  assert.match(text, /\nconformance: 1 passed, 1 failed, 2 skipped\n$/);
});

test('a test file that cannot load is a failure carrying its error, not an empty pass', async () => {
  const got = await specs([fixture('broken-file')]);
  assert.equal(got.length, 1);
  assert.equal(got[0]?.status, 'fail');
  assert.match(got[0]?.reason ?? '', /bad configuration/);
});

test('the entry file declares the suites named in the environment and honours the skip list (no daemon runs: all skipped)', async () => {
  const skips = Object.fromEntries(LIFECYCLE_TESTS.map((n) => [n, `skipped by the unit test: ${n.length}`]));
  const env = { ISULA_KIT_RUNTIME: 'nosuch', ISULA_KIT_SUITES: 'lifecycle', ISULA_KIT_SKIP_TESTS: JSON.stringify(skips) };
  const got = await specs([ENTRY], env);
  assert.deepEqual(got.map((s) => s.name), LIFECYCLE_TESTS.map((n) => `container life cycle on nosuch > ${n}`));
  assert.ok(got.every((s) => s.status === 'skip' && s.reason === skips[s.name.split(' > ')[1] ?? '']));
});

test('the entry file refuses a skip list naming no test, and an unknown suite', async () => {
  const typo = await specs([ENTRY], { ISULA_KIT_RUNTIME: 'nosuch', ISULA_KIT_SUITES: 'lifecycle', ISULA_KIT_SKIP_TESTS: JSON.stringify({ 'no such test': 'why' }) });
  assert.deepEqual(typo.map((s) => s.status), ['fail']);
  assert.match(typo[0]?.reason ?? '', /ISULA_KIT_SKIP_TESTS names no test .*no such test/);
  const suite = await specs([ENTRY], { ISULA_KIT_RUNTIME: 'nosuch', ISULA_KIT_SUITES: 'lifecycle,bogus' });
  assert.deepEqual(suite.map((s) => s.status), ['fail']);
  assert.match(suite[0]?.reason ?? '', /unknown suite "bogus"/);
});
