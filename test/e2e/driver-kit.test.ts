/**
 * The driver kit end to end, as a third party uses it: the example runtime
 * driver examples/driver-sandbox is packed with `npm pack`, installed from
 * the tarball into a plugin dir, loaded by one line of daemon.json, and
 * `isula-driver-tests` runs the conformance suites against its runtime
 * `sandbox`. Here the life-cycle suite only, to keep the suite's time
 * (ISULA_KIT_FULL=1 runs streams and tty too: several minutes more).
 * The twist test uses the kit's `daemon` (not test/lib's) to feed it the
 * busybox image the kit builds itself.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { buildBusyboxArchive, childEnv, daemon, packageDir, type KitReport } from '@isula/driver-tests';
import { httpRequest, REPO, tempRoot } from '../lib/harness.js';
import { ok, repoBusybox } from '../lib/containers.js';

const run = promisify(execFile);
const EXAMPLE = path.join(REPO, 'examples/driver-sandbox');
const PLUGIN = 'isula-driver-sandbox';
const CLI = path.join(packageDir('@isula/driver-tests'), 'dist/src/bin/isula-driver-tests.js');
const SUITES = process.env['ISULA_KIT_FULL'] === '1' ? 'lifecycle,streams,tty' : 'lifecycle';
const missing = process.getuid?.() !== 0 ? 'needs root' : '';
if (missing !== '' && process.env['CI'] === 'true') throw new Error(`driver kit e2e: ${missing}`);

/** isula-driver-tests with these arguments; its own node:test run must not report to ours. */
async function kit(args: string[], timeoutMs: number): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { env: childEnv({}), timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1;
      resolve({ code, stdout, stderr });
    });
  });
}

describe('the driver kit against a runtime driver written outside the repo', { skip: missing || false }, () => {
  let work = '';
  let pluginDir = '';
  before(async () => {
    work = await tempRoot('isula-kit-e2e-');
    pluginDir = path.join(work, 'plugins');
    // What an author publishes: `npm pack` runs the example's prepack (its own tsc build).
    const packed = await run('npm', ['pack', '--pack-destination', work, '--silent'], { cwd: EXAMPLE, timeout: 180_000 });
    const tarball = path.join(work, packed.stdout.trim().split('\n').pop() ?? '');
    // What a user does: install the tarball into a plugin dir. No registry: the package has no
    // dependencies, and its peer @isula/core is the daemon's own (--legacy-peer-deps skips it).
    await fs.mkdir(pluginDir);
    await run('npm', ['install', '--prefix', pluginDir, '--no-save', '--no-package-lock', '--legacy-peer-deps', '--offline', '--no-audit', '--no-fund', '--loglevel=error', tarball], { cwd: pluginDir, timeout: 180_000 });
  });
  after(async () => { if (work !== '') await fs.rm(work, { recursive: true, force: true }); });

  test('one line of daemon.json loads the installed package; sandbox denies chroot where runc and --privileged allow it (busybox built by the kit)', async (t) => {
    // The image the kit builds from /bin/busybox when an author has none: it loads and runs too.
    const busybox = () => buildBusyboxArchive(path.join(work, 'kit-busybox.docker.tar'));
    const d = await daemon(t, { plugins: ['@isula/image-oci', '@isula/driver-runc', PLUGIN], 'plugin-dirs': [pluginDir] }, { busybox });
    const info = JSON.parse((await httpRequest(d.socket, 'GET', '/info')).body) as { IsulaPlugins: { Name: string; Version: string }[] };
    assert.deepEqual(info.IsulaPlugins.find((p) => p.Name === PLUGIN), { Name: PLUGIN, Version: '1.0.0', ApiVersion: '^1.2.0' });
    const denied = await d.isula(['run', '--rm', '--runtime', 'sandbox', 'busybox', 'busybox', 'chroot', '/', 'true']);
    assert.notEqual(denied.code, 0, 'chroot is denied under the sandbox');
    assert.match(denied.stderr + denied.stdout, /Operation not permitted/);
    ok(await d.isula(['run', '--rm', '--runtime', 'runc', 'busybox', 'busybox', 'chroot', '/', 'true']), 'chroot under runc');
    ok(await d.isula(['run', '--rm', '--runtime', 'sandbox', '--privileged', 'busybox', 'busybox', 'chroot', '/', 'true']), 'chroot under a privileged sandbox (no seccomp filter at all)');
    // Everything else is runc's: the container runs, exits with its code, and is listed with its runtime.
    const three = await d.isula(['run', '--name', 'boxed', '--runtime', 'sandbox', 'busybox', 'sh', '-c', 'exit 3']);
    assert.equal(three.code, 3, three.stderr);
    assert.equal(ok(await d.isula(['inspect', '-f', '{{.HostConfig.Runtime}}', 'boxed'])).trim(), 'sandbox');
    assert.equal(ok(await d.isula(['run', '--rm', '--runtime', 'sandbox', '-u', 'nobody', 'busybox', 'id', '-u'])), '65534\n', 'the image\'s /etc/passwd is read');
  });

  test(`isula-driver-tests passes the ${SUITES} suites on runtime sandbox and writes its report`, async () => {
    const report = path.join(work, 'report.json');
    const r = await kit(['--runtime', 'sandbox', '--plugin', '@isula/driver-runc', '--plugin', PLUGIN, '--plugin-dir', pluginDir,
      '--suite', SUITES, '--image', await repoBusybox(), '--report', report], 40 * 60_000);
    assert.equal(r.code, 0, `the kit failed:\n${r.stdout}\n${r.stderr}`);
    const json = JSON.parse(await fs.readFile(report, 'utf8')) as KitReport;
    assert.equal(json.runtime, 'sandbox');
    assert.equal(json.counts.fail, 0);
    assert.ok(json.specs.every((s) => s.status === 'pass'), 'no spec is skipped for sandbox');
    assert.match(json.specs[0]?.name ?? '', /^preflight: isulad loads @isula\/driver-runc, isula-driver-sandbox$/);
    assert.equal(json.specs.filter((s) => s.name.startsWith('container life cycle on sandbox > ')).length, 8, 'the eight life-cycle specs ran');
    assert.match(r.stdout, new RegExp(`^conformance: ${json.counts.pass} passed, 0 failed, 0 skipped$`, 'm'));
  });

  test('isula-driver-tests fails, naming the package, when the plugin is not installed; and on a usage error', async () => {
    const r = await kit(['--runtime', 'sandbox', '--plugin', 'isula-driver-nosuch', '--plugin-dir', pluginDir, '--suite', 'lifecycle', '--image', await repoBusybox()], 120_000);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stdout, /FAIL {2}preflight: isulad loads isula-driver-nosuch/);
    assert.match(r.stdout, /plugin "isula-driver-nosuch" is not installed.*\(PLUGIN_NOT_FOUND\)/, 'the daemon\'s own words');
    assert.match(r.stdout, /^conformance: 0 passed, 1 failed, 0 skipped$/m);
    const usage = await kit(['--plugin', PLUGIN], 30_000);
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /--runtime NAME is required/);
  });
});
