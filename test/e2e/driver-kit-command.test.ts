/**
 * isula-driver-tests runs the image and network suites, as the author of an
 * image or network plugin would from the command line: `--suite image`
 * against @isula/image-oci with the image described in a `--kit-image` file
 * (busybox re-tagged with an env, working dir and command of its own), and
 * `--suite network` against @isula/network-cni on a bridge, subnet and conf
 * dir of this test's own (test/lib/net-daemon.ts picks them so parallel
 * files do not collide), its options given on the command line. The suites
 * themselves are checked against more drivers in driver-kit-image.test.ts
 * and driver-kit-network.test.ts; here, the command: its report, rows and
 * exit status.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { bridgePorts, childEnv, IMAGE_SPECS, NETWORK_SPECS, packageDir, type KitReport } from '@isula/driver-tests';
import { bridgeConfList } from '@isula/network-cni';
import { repoBusybox } from '../lib/containers.js';
import { craftImage } from '../lib/craft-image.js';
import { tempRoot } from '../lib/harness.js';
import { CNI_BIN, cniPrerequisites, privateNet, removePrivateNet } from '../lib/net-daemon.js';

const run = promisify(execFile);
const CLI = path.join(packageDir('@isula/driver-tests'), 'dist/src/bin/isula-driver-tests.js');
const notRoot = process.getuid?.() !== 0 ? 'needs root' : '';
if (notRoot !== '' && process.env['CI'] === 'true') throw new Error(`driver kit command e2e: ${notRoot}`);

/** isula-driver-tests with these arguments; its own node:test run must not report to ours. */
function kit(args: string[], timeoutMs: number): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { env: childEnv({}), timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1;
      resolve({ code, stdout, stderr });
    });
  });
}

const readReport = async (file: string) => JSON.parse(await fs.readFile(file, 'utf8')) as KitReport;
const rows = (r: KitReport) => r.specs.map((s) => [s.name, s.status]);
const IMAGE_TESTS = Object.values(IMAGE_SPECS);
const NETWORK_TESTS = Object.values(NETWORK_SPECS);


test('isula-driver-tests refuses --suite network without a network driver, before needing root', async () => {
  const r = await kit(['--suite', 'network', '--plugin', '@isula/network-cni'], 30_000);
  assert.equal(r.code, 2, r.stdout + r.stderr);
  assert.match(r.stderr, /the network suite needs --network-driver NAME/);
  assert.equal(r.stdout, '');
});

test('isula-driver-tests fails in the preflight, once, naming the runtime no plugin claims and those isulad has', { skip: notRoot || false }, async () => {
  const r = await kit(['--runtime', 'nosuch', '--plugin', '@isula/driver-runc', '--suite', 'lifecycle'], 120_000);
  assert.equal(r.code, 1, r.stdout + r.stderr);
  assert.match(r.stdout, /FAIL {2}preflight: isulad loads @isula\/driver-runc .*\n {8}no plugin claims the runtime "nosuch" \(isulad has: runc, crun\)$/m);
  assert.match(r.stdout, /^conformance: 0 passed, 1 failed, 0 skipped$/m);
});

describe('isula-driver-tests --suite image against @isula/image-oci', { skip: notRoot || false }, () => {
  let work = '';
  const kitImage = () => path.join(work, 'kit-image.json');
  before(async () => {
    work = await tempRoot('isula-kit-cmd-');
    const archive = await craftImage({
      from: await repoBusybox(),
      tag: 'kit/config:v1',
      config: (c) => { c['Env'] = ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'KIT_FROM_IMAGE=yes']; c['WorkingDir'] = '/tmp'; c['Cmd'] = ['sh', '-c', 'echo kit-cmd $KIT_FROM_IMAGE']; },
      out: work,
    });
    const manifest = JSON.parse((await run('tar', ['-xOf', archive, 'manifest.json'])).stdout) as { Config: string }[];
    await fs.writeFile(kitImage(), JSON.stringify({
      load: path.basename(archive), // relative: to the JSON file's directory
      args: ['kit/config:v1'],
      graphDriver: 'overlay2',
      id: `sha256:${manifest[0]?.Config.replace(/\.json$/, '')}`,
      missing: { args: ['--pull', 'never', 'kit/nosuch:v1'], error: 'No such image: kit/nosuch:v1' },
      config: { env: ['KIT_FROM_IMAGE=yes'], workingDir: '/tmp', cmd: { args: ['sh', '-c', 'echo kit-cmd $KIT_FROM_IMAGE'], output: '^kit-cmd yes$' } },
      list: { repository: 'kit/config', tag: 'v1' },
    }));
  });
  after(async () => { if (work !== '') await fs.rm(work, { recursive: true, force: true }); });

  test('passes the image suite with no --runtime (runc), honours --skip-tests, and reports the format', async () => {
    const report = path.join(work, 'report.json');
    const skips = path.join(work, 'skips.json');
    await fs.writeFile(skips, JSON.stringify({ [IMAGE_TESTS[3] ?? '']: 'listed by the e2e test of the suite already' }));
    const r = await kit(['--suite', 'image', '--plugin', '@isula/image-oci', '--image-format', 'oci', '--kit-image', kitImage(), '--skip-tests', skips, '--report', report], 10 * 60_000);
    assert.equal(r.code, 0, `the kit failed:\n${r.stdout}\n${r.stderr}`);
    const json = await readReport(report);
    assert.equal(json.schemaVersion, 1);
    assert.deepEqual([json.runtime, json.imageFormat, json.networkDriver, json.plugins, json.suites], ['runc', 'oci', undefined, ['@isula/driver-runc', '@isula/image-oci'], ['image']]);
    assert.deepEqual(rows(json), [
      ['preflight: isulad loads @isula/driver-runc, @isula/image-oci; image format oci', 'pass'],
      ...IMAGE_TESTS.map((n, i) => [`image driver oci > ${n}`, i === 3 ? 'skip' : 'pass']),
    ]);
    assert.equal(json.specs[4]?.reason, 'listed by the e2e test of the suite already');
    assert.match(r.stdout, /^isula-driver-tests: runtime runc; image format oci; plugins @isula\/driver-runc, @isula\/image-oci; suites image$/m);
    assert.match(r.stdout, /^conformance: 5 passed, 0 failed, 1 skipped$/m);
  });

  test('fails in the preflight, once, when no plugin registers the image format', async () => {
    const r = await kit(['--suite', 'image', '--plugin', '@isula/image-oci', '--image-format', 'nosuch', '--kit-image', kitImage()], 120_000);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stdout, /FAIL {2}preflight: isulad loads @isula\/driver-runc, @isula\/image-oci; image format nosuch .*\n {8}no plugin registers the image format "nosuch" \(isulad has: oci\)$/m);
    assert.match(r.stdout, /^conformance: 0 passed, 1 failed, 0 skipped$/m);
  });
});

describe('isula-driver-tests --suite network against @isula/network-cni', { skip: await cniPrerequisites('the driver kit command e2e') }, () => {
  test('passes the network suite on a network of its own, given as plugin options and daemon.json keys, and reports the driver', async (t) => {
    const work = await tempRoot('isula-kit-cmd-net-');
    t.after(() => fs.rm(work, { recursive: true, force: true }));
    const net = privateNet();
    t.after(() => removePrivateNet(net));
    const network = `kit-${net.tag}`;
    // A conflist of the author's (leases outside the daemons' roots): the specs' daemons share the conf dir, one after another.
    await fs.mkdir(net.confDir, { recursive: true });
    const conflist = path.join(net.confDir, `10-${network}.conflist`);
    await fs.writeFile(conflist, JSON.stringify(bridgeConfList({ name: network, bridge: net.bridge, subnet: net.subnet, internal: false, dataDir: path.join(work, 'ipam') })));
    const config = path.join(work, 'daemon.json');
    await fs.writeFile(config, JSON.stringify({ 'cni-conf-dir': net.confDir, 'cni-bin-dir': [CNI_BIN] }));
    const report = path.join(work, 'report.json');
    const r = await kit(['--suite', 'network', '--plugin', JSON.stringify({ package: '@isula/network-cni', options: { defaultNetwork: network } }),
      '--network-driver', 'cni', '--bridge', net.bridge, '--config', config, '--image', await repoBusybox(), '--report', report], 10 * 60_000);
    assert.equal(r.code, 0, `the kit failed:\n${r.stdout}\n${r.stderr}`);
    const json = await readReport(report);
    assert.deepEqual([json.runtime, json.networkDriver, json.imageFormat, json.plugins, json.suites], ['runc', 'cni', undefined, ['@isula/driver-runc', '@isula/network-cni'], ['network']]);
    assert.deepEqual(rows(json), [
      ['preflight: isulad loads @isula/driver-runc, @isula/network-cni; network driver cni', 'pass'],
      ...NETWORK_TESTS.map((n) => [`network driver cni > ${n}`, 'pass']),
    ]);
    assert.match(r.stdout, /^conformance: 4 passed, 0 failed, 0 skipped$/m);
    // The containers were on our network (the options and keys reached every daemon): its bridge was made, no default one written.
    await run('ip', ['link', 'show', net.bridge]);
    assert.deepEqual(await fs.readdir(net.confDir), [path.basename(conflist)]);
    assert.deepEqual(await bridgePorts(net.bridge), [], 'no container interface left on the bridge');
  });
});
