import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { defaultConfig, FIRST_PARTY_PLUGINS, loadConfig, metricsListen, parseDuration } from '../src/config.js';
import { IsulaError } from '../src/errors.js';

async function tempDir(t: TestContext): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'isula-core-config-'));
  t.after(() => fs.rm(dir, { recursive: true, force: true }));
  return dir;
}

/** Writes `content` as DIR/daemon.json and returns its path. */
async function writeDaemonJson(dir: string, content: string | Record<string, unknown>): Promise<string> {
  const file = path.join(dir, 'daemon.json');
  await fs.writeFile(file, typeof content === 'string' ? content : JSON.stringify(content, null, 2));
  return file;
}

test('without a daemon.json in the search directory the built-in defaults are used', async (t) => {
  const dir = await tempDir(t);
  const loaded = await loadConfig({ searchDir: dir });
  assert.equal(loaded.file, undefined);
  assert.deepEqual(loaded.unknownKeys, []);
  assert.deepEqual(loaded.config, defaultConfig());
  assert.deepEqual(loaded.config.plugins, FIRST_PARTY_PLUGINS.map((p) => ({ package: p, options: {} })));
});

test('a daemon.json in the search directory is read and overrides the defaults', async (t) => {
  const dir = await tempDir(t);
  const file = await writeDaemonJson(dir, { 'log-level': 'debug', 'registry-mirrors': ['mirror.example'] });
  const loaded = await loadConfig({ searchDir: dir });
  assert.equal(loaded.file, file);
  assert.equal(loaded.config['log-level'], 'debug');
  assert.deepEqual(loaded.config['registry-mirrors'], ['https://mirror.example'], 'a bare mirror host means https');
  assert.equal(loaded.config['default-runtime'], defaultConfig()['default-runtime']);
});

test('registry keys: mirrors per host keep their URLs, durations and limits are checked', async (t) => {
  const dir = await tempDir(t);
  const file = await writeDaemonJson(dir, {
    'registry-mirrors-by-host': { 'registry.k8s.io': ['http://127.0.0.1:5000/', 'mirror.example:5443'], 'index.docker.io': ['https://hub-mirror.example/v2-prefix'] },
    'registry-stall-timeout': '1500ms',
    'max-concurrent-downloads': 6,
  });
  const { config } = await loadConfig({ configFile: file });
  assert.deepEqual(config['registry-mirrors-by-host'], {
    'registry.k8s.io': ['http://127.0.0.1:5000', 'https://mirror.example:5443'],
    'docker.io': ['https://hub-mirror.example/v2-prefix'],
  });
  assert.equal(config['registry-stall-timeout'], '1500ms');
  assert.equal(parseDuration(config['registry-stall-timeout']), 1500);
  assert.equal(config['max-concurrent-downloads'], 6);
  assert.equal(config['max-concurrent-uploads'], 5);
});

test('an empty daemon.json given with configFile means defaults', async (t) => {
  const dir = await tempDir(t);
  const file = await writeDaemonJson(dir, '  \n');
  const loaded = await loadConfig({ configFile: file });
  assert.equal(loaded.file, file);
  assert.deepEqual(loaded.config, defaultConfig());
});

test('a configFile that does not exist is CONFIG_NOT_FOUND', async (t) => {
  const dir = await tempDir(t);
  await assert.rejects(loadConfig({ configFile: path.join(dir, 'missing.json') }), { name: 'IsulaError', code: 'CONFIG_NOT_FOUND' });
});

test('a JSON syntax error is CONFIG_INVALID naming file:line:column', async (t) => {
  const dir = await tempDir(t);
  // Line 3 starts a new property without a comma after line 2's value.
  const file = await writeDaemonJson(dir, '{\n  "log-level": "info"\n  "graph": "/var/lib/isulad"\n}\n');
  await assert.rejects(loadConfig({ configFile: file }), (err: unknown) => {
    assert.ok(err instanceof IsulaError);
    assert.equal(err.code, 'CONFIG_INVALID');
    // The position is what the user needs to fix the file.
    assert.ok(err.message.startsWith(`${file}:3:3:`), err.message);
    assert.deepEqual(err.details, { file, line: 3, column: 3 });
    return true;
  });
});

// V8's "Unexpected token" messages carry no position, unlike the one above.
test('a misplaced token is CONFIG_INVALID naming its line and column', async (t) => {
  const dir = await tempDir(t);
  const file = await writeDaemonJson(dir, '{\n  "log-level": "info",\n  "graph": ,\n  "state": "/run/isulad"\n}\n');
  await assert.rejects(loadConfig({ configFile: file }), (err: unknown) => {
    assert.ok(err instanceof IsulaError);
    assert.equal(err.code, 'CONFIG_INVALID');
    assert.ok(err.message.startsWith(`${file}:3:12:`), err.message);
    assert.deepEqual(err.details, { file, line: 3, column: 12 });
    return true;
  });
});

test('a value of the wrong type is CONFIG_INVALID naming the key', async (t) => {
  const dir = await tempDir(t);
  const cases: [key: string, value: unknown][] = [
    ['log-level', 5],
    ['log-level', 'verbose'],
    ['hosts', 'tcp://x'],
    ['hosts', ['unix://relative.sock']],
    ['graph', 'relative'],
    ['state', 42],
    ['selinux-enabled', 'yes'],
    ['websocket-server-listening-port', 70000],
    ['runtimes', { kata: { path: '' } }],
    ['log-opts', { 'max-size': 10 }],
    ['storage-driver', 'btrfs'],
    ['registry-mirrors', ['ftp://mirror.example']],
    ['registry-mirrors-by-host', { 'registry.k8s.io': 'http://127.0.0.1:5000' }],
    ['registry-mirrors-by-host', { 'not a host': ['http://127.0.0.1:5000'] }],
    ['registry-stall-timeout', '30'],
    ['registry-stall-timeout', '0s'],
    ['max-concurrent-downloads', 0],
    ['registry-certs-dir', 'certs.d'],
  ];
  for (const [key, value] of cases) {
    const file = await writeDaemonJson(dir, { [key]: value });
    await assert.rejects(
      loadConfig({ configFile: file }),
      { name: 'IsulaError', code: 'CONFIG_INVALID', details: { key } },
      `${key}: ${JSON.stringify(value)} should be rejected`,
    );
  }
});

test('a top level that is not an object is CONFIG_INVALID', async (t) => {
  const dir = await tempDir(t);
  const file = await writeDaemonJson(dir, '["log-level"]');
  await assert.rejects(loadConfig({ configFile: file }), { name: 'IsulaError', code: 'CONFIG_INVALID' });
});

test('an unknown key is reported in unknownKeys and is not fatal', async (t) => {
  const dir = await tempDir(t);
  const file = await writeDaemonJson(dir, { 'log-level': 'warn', 'no-such-option': true });
  const loaded = await loadConfig({ configFile: file });
  assert.deepEqual(loaded.unknownKeys, ['no-such-option']);
  assert.equal(loaded.config['log-level'], 'warn');
  assert.equal(Object.hasOwn(loaded.config, 'no-such-option'), false);
});

test('state set in daemon.json moves the default socket and pid file', async (t) => {
  const dir = await tempDir(t);
  const state = path.join(dir, 'run');
  const file = await writeDaemonJson(dir, { state });
  const { config } = await loadConfig({ configFile: file });
  assert.equal(config.state, state);
  assert.deepEqual(config.hosts, [`unix://${state}/isulad.sock`]);
  assert.equal(config.pidfile, `${state}/isulad.pid`);
});

test('hosts and pidfile set in daemon.json are kept when state moves', async (t) => {
  const dir = await tempDir(t);
  const state = path.join(dir, 'run');
  const file = await writeDaemonJson(dir, { state, hosts: 'unix:///custom/api.sock', pidfile: '/custom/isulad.pid' });
  const { config } = await loadConfig({ configFile: file, state: path.join(dir, 'other') });
  assert.deepEqual(config.hosts, ['unix:///custom/api.sock']);
  assert.equal(config.pidfile, '/custom/isulad.pid');
  assert.equal(config.state, path.join(dir, 'other'));
});

test('--state beats the file and moves the socket and pid file with it', async (t) => {
  const dir = await tempDir(t);
  const file = await writeDaemonJson(dir, { state: path.join(dir, 'from-file') });
  const override = path.join(dir, 'from-flag');
  const { config } = await loadConfig({ configFile: file, state: override });
  assert.equal(config.state, override);
  assert.deepEqual(config.hosts, [`unix://${override}/isulad.sock`]);
  assert.equal(config.pidfile, `${override}/isulad.pid`);
});

test('--state without a config file moves the socket too', async (t) => {
  const dir = await tempDir(t);
  const override = path.join(dir, 'state');
  const { config } = await loadConfig({ searchDir: dir, state: override });
  assert.deepEqual(config.hosts, [`unix://${override}/isulad.sock`]);
  assert.equal(config.pidfile, `${override}/isulad.pid`);
});

test('a relative --state or --graph is CONFIG_INVALID', async (t) => {
  const dir = await tempDir(t);
  await assert.rejects(loadConfig({ searchDir: dir, state: 'run/isulad' }), { name: 'IsulaError', code: 'CONFIG_INVALID' });
  await assert.rejects(loadConfig({ searchDir: dir, graph: 'lib/isulad' }), { name: 'IsulaError', code: 'CONFIG_INVALID' });
});

test('plugins entries are normalised to {package, options}', async (t) => {
  const dir = await tempDir(t);
  const file = await writeDaemonJson(dir, {
    plugins: ['isula-plugin-a', { package: '@scope/plugin-b', options: { socket: '/run/b.sock' } }, { package: 'plugin-c' }],
  });
  const { config } = await loadConfig({ configFile: file });
  assert.deepEqual(config.plugins, [
    { package: 'isula-plugin-a', options: {} },
    { package: '@scope/plugin-b', options: { socket: '/run/b.sock' } },
    { package: 'plugin-c', options: {} },
  ]);
});

test('malformed plugins entries are CONFIG_INVALID on key plugins', async (t) => {
  const dir = await tempDir(t);
  const bad: unknown[] = [
    'isula-plugin-a',
    [''],
    [5],
    [null],
    [{ package: '' }],
    [{ options: {} }],
    [{ package: 'a', option: {} }],
    [{ package: 'a', options: [] }],
    [{ package: 'a', options: 'x' }],
  ];
  for (const plugins of bad) {
    const file = await writeDaemonJson(dir, { plugins });
    await assert.rejects(
      loadConfig({ configFile: file }),
      { name: 'IsulaError', code: 'CONFIG_INVALID', details: { key: 'plugins' } },
      `plugins: ${JSON.stringify(plugins)} should be rejected`,
    );
  }
});

test('metrics: off by default; metrics-port is loopback, metrics-addr an IP:PORT or unix path; not both', async (t) => {
  const dir = await tempDir(t);
  assert.equal(metricsListen(defaultConfig()), undefined);
  const port = (await loadConfig({ configFile: await writeDaemonJson(dir, { 'metrics-port': 9323 }) })).config;
  assert.deepEqual(metricsListen(port), { kind: 'tcp', host: '127.0.0.1', port: 9323 });
  const v6 = (await loadConfig({ configFile: await writeDaemonJson(dir, { 'metrics-addr': '[::1]:9400' }) })).config;
  assert.deepEqual(metricsListen(v6), { kind: 'tcp', host: '::1', port: 9400 });
  const unix = (await loadConfig({ configFile: await writeDaemonJson(dir, { 'metrics-addr': 'unix:///run/isulad/metrics.sock' }) })).config;
  assert.deepEqual(metricsListen(unix), { kind: 'unix', path: '/run/isulad/metrics.sock' });
  for (const [key, value] of [['metrics-addr', 'localhost:9323'], ['metrics-addr', 'unix://relative.sock'], ['metrics-addr', '127.0.0.1:99999'], ['metrics-port', -1], ['metrics-port', '9323']] as const) {
    const file = await writeDaemonJson(dir, { [key]: value });
    await assert.rejects(loadConfig({ configFile: file }), (err: IsulaError) => err.code === 'CONFIG_INVALID' && err.message.includes(`"${key}"`));
  }
  const both = await writeDaemonJson(dir, { 'metrics-port': 9323, 'metrics-addr': '127.0.0.1:9324' });
  await assert.rejects(loadConfig({ configFile: both }), (err: IsulaError) => err.code === 'CONFIG_INVALID' && /"metrics-port" and "metrics-addr"/.test(err.message));
});

test('log-opts: the daemon log keys are checked, unknown ones reported; hosts take fd://', async (t) => {
  const dir = await tempDir(t);
  const ok = await loadConfig({ configFile: await writeDaemonJson(dir, { 'log-opts': { 'max-size': '30KB', 'max-file': '1', 'log-path': '/var/lib/isulad' }, hosts: ['fd://'] }) });
  assert.deepEqual(ok.unknownKeys, []);
  assert.deepEqual(ok.config.hosts, ['fd://']);
  const unknown = await loadConfig({ configFile: await writeDaemonJson(dir, { 'log-opts': { compress: 'true' } }) });
  assert.deepEqual(unknown.unknownKeys, ['log-opts.compress']);
  const bad = await writeDaemonJson(dir, { 'log-opts': { 'max-file': 'lots' } });
  await assert.rejects(loadConfig({ configFile: bad }), (err: IsulaError) => err.code === 'CONFIG_INVALID' && err.message.includes('"log-opts": "max-file"'));
  await assert.rejects(loadConfig({ configFile: await writeDaemonJson(dir, { hosts: ['fd://3'] }) }), (err: IsulaError) => err.code === 'CONFIG_INVALID' && err.message.includes('"hosts"'));
});
