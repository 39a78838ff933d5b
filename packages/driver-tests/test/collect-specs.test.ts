import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { childEnv, countSpecs, formatReport, kitPlugins, IMAGE_SPECS, LIFECYCLE_SPECS, NETWORK_SPECS, type SpecResult } from '../src/index.js';

const LIFECYCLE_TESTS = Object.values(LIFECYCLE_SPECS);
const IMAGE_TESTS = Object.values(IMAGE_SPECS);
const NETWORK_TESTS = Object.values(NETWORK_SPECS);

const fixture = (name: string) => fileURLToPath(new URL(`./fixtures/${name}.js`, import.meta.url));
const ENTRY = fileURLToPath(new URL('../src/entry.js', import.meta.url));

const KIT_IMAGE = { args: ['i'], graphDriver: 'g', missing: { args: ['m'], error: 'x' }, config: { env: [] }, list: { skip: 'none' } };

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

test('the entry file declares the image and network suites under the format and driver named, with no runtime (no daemon runs: all skipped)', async () => {
  const skips = Object.fromEntries([...IMAGE_TESTS, ...NETWORK_TESTS].map((n) => [n, `skipped by the unit test: ${n.length}`]));
  const env = { ISULA_KIT_SUITES: 'image,network', ISULA_KIT_IMAGE_FORMAT: 'fmt', ISULA_KIT_IMAGE: JSON.stringify(KIT_IMAGE), ISULA_KIT_NETWORK_DRIVER: 'net', ISULA_KIT_SKIP_TESTS: JSON.stringify(skips) };
  const got = await specs([ENTRY], env);
  assert.deepEqual(got.map((s) => s.name), [...IMAGE_TESTS.map((n) => `image driver fmt > ${n}`), ...NETWORK_TESTS.map((n) => `network driver net > ${n}`)]);
  assert.ok(got.every((s) => s.status === 'skip' && s.reason === skips[s.name.split(' > ')[1] ?? '']));
});

test('the entry file refuses the image suite without its format or image, and the network suite without its driver', async () => {
  const cases: [Record<string, string>, RegExp][] = [
    [{ ISULA_KIT_SUITES: 'image', ISULA_KIT_IMAGE: JSON.stringify(KIT_IMAGE) }, /ISULA_KIT_IMAGE_FORMAT is not set/],
    [{ ISULA_KIT_SUITES: 'image', ISULA_KIT_IMAGE_FORMAT: 'fmt' }, /ISULA_KIT_IMAGE is not set/],
    [{ ISULA_KIT_SUITES: 'image', ISULA_KIT_IMAGE_FORMAT: 'fmt', ISULA_KIT_IMAGE: JSON.stringify({ ...KIT_IMAGE, args: [] }) }, /ISULA_KIT_IMAGE: args: must be a non-empty array/],
    [{ ISULA_KIT_SUITES: 'network' }, /ISULA_KIT_NETWORK_DRIVER is not set/],
    [{ ISULA_KIT_SUITES: 'network,lifecycle', ISULA_KIT_NETWORK_DRIVER: 'net' }, /ISULA_KIT_RUNTIME is not set/],
  ];
  for (const [env, re] of cases) {
    const got = await specs([ENTRY], env);
    assert.deepEqual(got.map((s) => s.status), ['fail'], JSON.stringify(env));
    assert.match(got[0]?.reason ?? '', re);
  }
});

test('the report names the image format and network driver under test when there are some', () => {
  const base = { schemaVersion: 1 as const, runtime: 'runc', plugins: ['p'], startedAt: '', durationMs: 0, specs: [], counts: { pass: 0, fail: 0, skip: 0 } };
  assert.match(formatReport({ ...base, suites: ['lifecycle'] }), /^isula-driver-tests: runtime runc; plugins p; suites lifecycle\n/);
  assert.match(formatReport({ ...base, imageFormat: 'oci', networkDriver: 'cni', suites: ['image', 'network'] }), /^isula-driver-tests: runtime runc; image format oci; network driver cni; plugins p; suites image, network\n/);
});

test('an interrupted report says which spec the signal stopped, and its closing line says so', () => {
  const specs: SpecResult[] = [{ name: 'preflight: isulad loads p', status: 'pass', durationMs: 300 }];
  const base = { schemaVersion: 1 as const, runtime: 'runc', plugins: ['p'], suites: ['lifecycle'], startedAt: '', durationMs: 0, specs, counts: countSpecs(specs) };
  const text = formatReport({ ...base, interrupted: { signal: 'SIGINT', spec: 'container life cycle on runc > run: output' } });
  assert.match(text, /\n {2}PASS {2}preflight: isulad loads p \(0\.3 s\)\n {2}STOP {2}container life cycle on runc > run: output\n {8}interrupted by SIGINT; the specs after it did not run\nconformance: 1 passed, 0 failed, 0 skipped; interrupted by SIGINT\n$/);
  assert.match(formatReport({ ...base, interrupted: { signal: 'SIGTERM' } }), /\n {2}STOP {2}\(between specs\)\n.*\nconformance: 1 passed, 0 failed, 0 skipped; interrupted by SIGTERM\n$/);
  assert.match(formatReport(base), /\n {2}PASS {2}preflight: isulad loads p \(0\.3 s\)\nconformance: 1 passed, 0 failed, 0 skipped\n$/, 'a run not interrupted reads as before');
});

test('--timeout bounds each spec inside the file: a slow one fails and is torn down, the next still runs', async () => {
  const mark = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'kit-slow-')), 'mark');
  const got = await specs([fixture('slow-specs')], { ISULA_KIT_TIMEOUT_MS: '300', SLOW_MARK: mark });
  assert.deepEqual(got.map((s) => [s.name, s.status]), [['bounded > too slow', 'fail'], ['bounded > next', 'pass']]);
  assert.match(got[0]?.reason ?? '', /timed out after 300ms/);
  assert.equal(fs.readFileSync(mark, 'utf8'), 'torn down');
  fs.rmSync(path.dirname(mark), { recursive: true, force: true });
});

test('a spec process gets this run\'s ISULA_KIT_* variables only; --runtime runc loads driver-runc like no --runtime', () => {
  const saved = process.env['ISULA_KIT_NETWORK_BRIDGE'];
  process.env['ISULA_KIT_NETWORK_BRIDGE'] = 'stale0';
  try {
    const env = childEnv({ ISULA_KIT_SUITES: 'image' });
    assert.equal(env['ISULA_KIT_NETWORK_BRIDGE'], undefined, 'a variable left in the shell does not reach the suites');
    assert.equal(env['ISULA_KIT_SUITES'], 'image');
  } finally {
    if (saved === undefined) delete process.env['ISULA_KIT_NETWORK_BRIDGE'];
    else process.env['ISULA_KIT_NETWORK_BRIDGE'] = saved;
  }
  assert.deepEqual(kitPlugins({ plugins: ['@isula/image-oci'], runtime: 'runc' }), ['@isula/driver-runc', '@isula/image-oci']);
  assert.deepEqual(kitPlugins({ plugins: ['my-rt'], runtime: 'myrt' }), ['my-rt']);
});
