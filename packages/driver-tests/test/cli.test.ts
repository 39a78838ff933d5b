import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { loadCliFiles, parseCli, UsageError, type CliOptions } from '../src/cli.js';
import { kitConfig, kitSuites } from '../src/runner.js';

function parsed(argv: string[]): CliOptions {
  const opts = parseCli(argv);
  assert.notEqual(opts, 'help');
  return opts as CliOptions;
}

test('the command line: runtime, plugins, plugin dirs (made absolute), suites, image, report, timeout', () => {
  const opts = parseCli(['--runtime', 'sandbox', '--plugin', '@isula/driver-runc', '--plugin', 'isula-driver-sandbox', '--plugin-dir', 'rel/dir', '--suite', 'lifecycle,tty', '--image', '/i/busybox.tar', '--report', 'out.json', '--timeout', '90']);
  assert.deepEqual(opts, {
    runtime: 'sandbox',
    plugins: ['@isula/driver-runc', 'isula-driver-sandbox'],
    pluginDirs: [path.resolve('rel/dir')],
    suites: ['lifecycle', 'tty'],
    busybox: '/i/busybox.tar',
    timeoutMs: 90_000,
    reportFile: path.resolve('out.json'),
  });
  assert.equal(parseCli(['--help']), 'help');
});

test('the image and network suites: an image format and kit image, a network driver and bridge, a plugin with options, no runtime', () => {
  const opts = parseCli(['--suite', 'image,network', '--plugin', 'isula-image-foo', '--plugin', '{"package": "isula-net-foo", "options": {"bridge": "foo0"}}',
    '--image-format', 'foo', '--kit-image', 'kit.json', '--network-driver', 'foonet', '--bridge', 'foo0', '--config', 'daemon.json']);
  assert.deepEqual(opts, {
    plugins: ['isula-image-foo', { package: 'isula-net-foo', options: { bridge: 'foo0' } }],
    suites: ['image', 'network'],
    imageFormat: 'foo',
    kitImageFile: path.resolve('kit.json'),
    networkDriver: 'foonet',
    bridge: 'foo0',
    configFile: path.resolve('daemon.json'),
  });
  assert.deepEqual(parsed(['--plugin', '{"package": "p"}', '--network-driver', 'n']).plugins, ['p'], 'an entry without options is the bare name');
});

test('without --suite the suites are those the options name: a runtime the runtime suites, an image format image, a network driver network', () => {
  const kitImage = { args: ['i'], graphDriver: 'g', missing: { args: ['m'], error: 'x' }, config: { env: [] }, list: { skip: 'none' } };
  assert.deepEqual(kitSuites(parsed(['--runtime', 'r', '--plugin', 'x'])), ['lifecycle', 'streams', 'tty']);
  assert.deepEqual(kitSuites({ ...parsed(['--plugin', 'x', '--image-format', 'f', '--kit-image', 'k.json']), kitImage }), ['image']);
  assert.deepEqual(kitSuites(parsed(['--plugin', 'x', '--network-driver', 'cni'])), ['network']);
  assert.deepEqual(kitSuites(parsed(['--runtime', 'r', '--plugin', 'x', '--network-driver', 'cni'])), ['lifecycle', 'streams', 'tty', 'network']);
});

test('the daemons load @isula/image-oci first (unless listed) and @isula/driver-runc when no runtime is named, plus the --config keys', () => {
  assert.deepEqual(kitConfig({ plugins: ['x'], config: { 'cni-conf-dir': '/c' } }), { 'cni-conf-dir': '/c', plugins: ['@isula/image-oci', '@isula/driver-runc', 'x'] });
  assert.deepEqual(kitConfig({ plugins: ['x'], runtime: 'r', pluginDirs: ['/p'] }), { plugins: ['@isula/image-oci', 'x'], 'plugin-dirs': ['/p'] });
  const listed = ['y', { package: '@isula/image-oci', options: { a: 1 } }];
  assert.deepEqual(kitConfig({ plugins: listed, runtime: 'r' }).plugins, listed, 'listed, image-oci keeps its place and options');
});

test('usage errors name the problem', () => {
  const cases: [string[], RegExp][] = [
    [['--plugin', 'x'], /--runtime NAME is required/],
    [['--runtime', 'r'], /--plugin PKG is required/],
    [['--network-driver', 'n'], /--plugin PKG is required/],
    [['--runtime', 'r', '--plugin', 'x', '--suite', 'lifecycle,nope'], /unknown suite "nope" \(known: lifecycle, streams, tty, image, network\)/],
    [['--runtime', 'r', '--plugin', 'x', '--timeout', 'soon'], /--timeout must be a positive number/],
    [['--runtime', 'r', '--plugin', 'x', '--timeout', '3000000'], /--timeout must be at most 2147483 seconds, got 3000000/],
    [['--runtime', 'r', '--plugin', 'x', '--bogus'], /bogus/],
    [['--plugin', 'x', '--suite', 'network,tty', '--network-driver', 'n'], /--runtime NAME is required by the tty suite/],
    [['--plugin', 'x', '--suite', 'image', '--kit-image', 'k.json'], /the image suite needs --image-format NAME/],
    [['--plugin', 'x', '--suite', 'image', '--image-format', 'f'], /the image suite needs --kit-image FILE/],
    [['--plugin', 'x', '--kit-image', 'k.json'], /the image suite needs --image-format NAME/],
    [['--plugin', 'x', '--suite', 'network'], /the network suite needs --network-driver NAME/],
    [['--plugin', 'x', '--bridge', 'br0'], /the network suite needs --network-driver NAME/],
    [['--runtime', 'r', '--plugin', 'x', '--suite', 'lifecycle', '--image-format', 'f'], /--image-format is for the image suite/],
    [['--runtime', 'r', '--plugin', 'x', '--suite', 'lifecycle', '--bridge', 'br0'], /--bridge is for the network suite/],
    [['--plugin', 'x', '--network-driver', 'n', '--bridge', 'a/b'], /--bridge "a\/b": not an interface name/],
    [['--plugin', 'x', '--network-driver', ''], /--network-driver: empty value/],
    [['--plugin', '{nope', '--network-driver', 'n'], /--plugin \{nope: not JSON/],
    [['--plugin', '{"package": "p", "option": {}}', '--network-driver', 'n'], /--plugin .*want \{"package": "PKG", "options": \{\.\.\.\}\}, not "option"/],
    [['--plugin', '{"package": "p", "options": []}', '--network-driver', 'n'], /"options" must be a JSON object/],
  ];
  for (const [argv, re] of cases) assert.throws(() => parseCli(argv), (err: unknown) => err instanceof UsageError && re.test(err.message), argv.join(' '));
});

const KIT_IMAGE = {
  load: 'img/kit.docker.tar',
  args: ['kit/config:v1'],
  graphDriver: 'overlay2',
  missing: { args: ['--pull', 'never', 'kit/nosuch:v1'], error: 'No such image: kit/nosuch:v1' },
  config: { env: ['A=1'], workingDir: '/tmp', cmd: { args: ['sh', '-c', 'echo hi'], output: '^hi$' } },
  list: { repository: 'kit/config', tag: 'v1' },
  roots: ['rootfs'],
};

async function files(t: { after(fn: () => Promise<void>): void }, contents: Record<string, unknown>): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'kit-cli-'));
  t.after(() => fs.rm(dir, { recursive: true, force: true }));
  await fs.mkdir(path.join(dir, 'img'));
  await fs.writeFile(path.join(dir, 'img/kit.docker.tar'), '');
  for (const [name, value] of Object.entries(contents)) await fs.writeFile(path.join(dir, name), typeof value === 'string' ? value : JSON.stringify(value));
  return dir;
}

test('the files: --kit-image with its archive and roots relative to it, --config keys, --skip-tests', async (t) => {
  const dir = await files(t, { 'kit.json': KIT_IMAGE, 'daemon.json': { 'cni-conf-dir': '/x' }, 'skips.json': { 'a test': 'why' } });
  const opts = await loadCliFiles(parsed(['--plugin', 'x', '--image-format', 'oci', '--kit-image', path.join(dir, 'kit.json'),
    '--config', path.join(dir, 'daemon.json'), '--skip-tests', path.join(dir, 'skips.json')]));
  assert.deepEqual(opts.kitImage, { ...KIT_IMAGE, load: path.join(dir, 'img/kit.docker.tar'), roots: [path.join(dir, 'rootfs')] });
  assert.deepEqual(opts.config, { 'cni-conf-dir': '/x' });
  assert.deepEqual(opts.skipTests, { 'a test': 'why' });
});

test('a bad --kit-image, --config or --skip-tests file is a usage error naming the file and the field', async (t) => {
  const { graphDriver: _, ...noDriver } = KIT_IMAGE;
  const dir = await files(t, {
    'no-driver.json': noDriver,
    'typo.json': { ...KIT_IMAGE, grapDriver: 'x' },
    'bad-re.json': { ...KIT_IMAGE, missing: { args: ['m'], error: 'No such (image' } },
    'both.json': { ...KIT_IMAGE, list: { repository: 'r', tag: 't', skip: 'why' } },
    'no-load.json': { ...KIT_IMAGE, load: 'nosuch.tar' },
    'not-json.json': '{',
    'takes-plugins.json': { plugins: ['x'], hosts: ['unix:///x.sock'] },
    'skips.json': ['a test'],
  });
  const cases: [string[], RegExp][] = [
    [['--kit-image', 'no-driver.json'], /--kit-image .*no-driver\.json: graphDriver: must be a non-empty string/],
    [['--kit-image', 'typo.json'], /--kit-image .*: the kit image: unknown field "grapDriver"/],
    [['--kit-image', 'bad-re.json'], /--kit-image .*: missing\.error: not a regular expression/],
    [['--kit-image', 'both.json'], /--kit-image .*: list: either/],
    [['--kit-image', 'no-load.json'], /--kit-image .*: load: .*nosuch\.tar is not a file/],
    [['--kit-image', 'not-json.json'], /--kit-image .*not-json\.json: not JSON/],
    [['--kit-image', 'absent.json'], /--kit-image .*absent\.json: cannot read it: ENOENT/],
    [['--config', 'takes-plugins.json', '--kit-image', 'typo.json'], /--config .*: the kit sets "plugins" \(give the plugins with --plugin\), "hosts"/],
    [['--skip-tests', 'skips.json', '--kit-image', 'typo.json'], /--skip-tests .*: must hold a JSON object/],
  ];
  for (const [args, re] of cases) {
    const argv = ['--plugin', 'x', '--image-format', 'oci', ...args.map((a) => (a.endsWith('.json') ? path.join(dir, a) : a))];
    await assert.rejects(loadCliFiles(parsed(argv)), (err: unknown) => err instanceof UsageError && re.test(err.message), args.join(' '));
  }
});
