import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import pino from 'pino';
import { defaultConfig, type PluginSpec } from '../src/config.js';
import { IsulaError } from '../src/errors.js';
import { EventBus } from '../src/events.js';
import { createHooks } from '../src/hooks.js';
import { loadPlugins, locatePlugin } from '../src/plugin-loader.js';
import { PLUGIN_API_VERSION, type PluginHost } from '../src/plugin.js';

async function tempDir(t: TestContext): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'isula-core-plugins-'));
  t.after(() => fs.rm(dir, { recursive: true, force: true }));
  return dir;
}

interface FakePackage {
  name: string;
  version?: string;
  /** package.json fields besides name/version/type (main, exports ...); default `main: index.js`. */
  manifest?: Record<string, unknown>;
  /** Files to write, relative to the package; default an index.js built from `apiVersion`. */
  files?: Record<string, string>;
  apiVersion?: string;
}

/**
 * A plain-JS ESM plugin whose apply publishes the options it got as a
 * `plugin/applied` event, so a test can see what the loader handed over.
 */
function pluginSource(name: string, apiVersion = '^1.0.0', applyBody = ''): string {
  return `export default {
  name: ${JSON.stringify(name)},
  apiVersion: ${JSON.stringify(apiVersion)},
  async apply(host, options) {
    ${applyBody}
    host.emitEvent({ Type: 'plugin', Action: 'applied', Actor: { ID: ${JSON.stringify(name)}, Attributes: { options: JSON.stringify(options), hostApi: host.apiVersion } }, scope: 'local' });
  },
};
`;
}

async function writePackage(dir: string, pkg: FakePackage): Promise<string> {
  await fs.mkdir(dir, { recursive: true });
  const manifest = { name: pkg.name, version: pkg.version ?? '1.0.0', type: 'module', ...(pkg.manifest ?? { main: 'index.js' }) };
  await fs.writeFile(path.join(dir, 'package.json'), JSON.stringify(manifest, null, 2));
  const files = pkg.files ?? { 'index.js': pluginSource(pkg.name, pkg.apiVersion) };
  for (const [rel, content] of Object.entries(files)) {
    await fs.mkdir(path.dirname(path.join(dir, rel)), { recursive: true });
    await fs.writeFile(path.join(dir, rel), content);
  }
  return dir;
}

function harness(pluginDirs: string[]) {
  const events = new EventBus();
  const hooks = createHooks();
  const log = pino({ level: 'silent' });
  const config = defaultConfig();
  const hostsFor: string[] = [];
  const hostFor = (pluginName: string): PluginHost => {
    hostsFor.push(pluginName);
    return {
      apiVersion: PLUGIN_API_VERSION,
      hooks,
      logger: log.child({ plugin: pluginName }),
      config,
      events,
      emitEvent: (e) => { events.emit(e); },
    };
  };
  const load = (specs: PluginSpec[]) => loadPlugins(specs, { pluginDirs, hostFor, log });
  const applied = () => events.history(0, Infinity, { event: ['applied'] }).map((e) => ({ plugin: e.Actor.ID, options: JSON.parse(e.Actor.Attributes['options'] ?? 'null') as unknown }));
  return { load, applied, hooks, hostsFor };
}

const spec = (name: string, options: Record<string, unknown> = {}): PluginSpec => ({ package: name, options });

test('a plugin under DIR/node_modules/NAME is found, applied with its options and reported', async (t) => {
  const dir = await tempDir(t);
  const pkgDir = await writePackage(path.join(dir, 'node_modules', 'isula-plugin-nm'), { name: 'isula-plugin-nm', version: '1.2.3' });
  const { load, applied, hostsFor } = harness([dir]);
  const loaded = await load([spec('isula-plugin-nm', { socket: '/run/x.sock', verbose: true })]);
  assert.deepEqual(loaded, [{ name: 'isula-plugin-nm', version: '1.2.3', apiVersion: '^1.0.0', path: pkgDir }]);
  assert.deepEqual(applied(), [{ plugin: 'isula-plugin-nm', options: { socket: '/run/x.sock', verbose: true } }]);
  assert.deepEqual(hostsFor, ['isula-plugin-nm']);
});

test('a plugin directly under DIR/NAME is found, and a scoped name works', async (t) => {
  const dir = await tempDir(t);
  await writePackage(path.join(dir, 'isula-plugin-flat'), { name: 'isula-plugin-flat' });
  await writePackage(path.join(dir, '@acme', 'isula-plugin-scoped'), { name: '@acme/isula-plugin-scoped' });
  const { load, applied } = harness([path.join(dir, 'empty-first'), dir]);
  const loaded = await load([spec('isula-plugin-flat'), spec('@acme/isula-plugin-scoped')]);
  assert.deepEqual(loaded.map((p) => p.path), [path.join(dir, 'isula-plugin-flat'), path.join(dir, '@acme', 'isula-plugin-scoped')]);
  assert.deepEqual(applied().map((a) => a.plugin), ['isula-plugin-flat', '@acme/isula-plugin-scoped']);
});

test('an "exports" entry is used to find the module', async (t) => {
  const dir = await tempDir(t);
  await writePackage(path.join(dir, 'node_modules', 'isula-plugin-exports'), {
    name: 'isula-plugin-exports',
    manifest: { exports: { '.': { import: './lib/plugin.js' } } },
    files: { 'lib/plugin.js': pluginSource('isula-plugin-exports'), 'index.js': 'throw new Error("the exports entry should win");\n' },
  });
  const { load, applied } = harness([dir]);
  await load([spec('isula-plugin-exports', { a: 1 })]);
  assert.deepEqual(applied(), [{ plugin: 'isula-plugin-exports', options: { a: 1 } }]);
});

test('a plugin given by absolute path is loaded from there', async (t) => {
  const dir = await tempDir(t);
  const pkgDir = await writePackage(path.join(dir, 'somewhere', 'my-plugin'), { name: 'my-plugin' });
  const { load } = harness([]);
  const loaded = await load([spec(pkgDir)]);
  assert.equal(loaded[0]?.path, pkgDir);
  assert.equal(loaded[0]?.name, 'my-plugin');
});

test('a plugin listed twice is applied once', async (t) => {
  const dir = await tempDir(t);
  await writePackage(path.join(dir, 'isula-plugin-twice'), { name: 'isula-plugin-twice' });
  const { load, applied } = harness([dir]);
  const loaded = await load([spec('isula-plugin-twice', { n: 1 }), spec('isula-plugin-twice', { n: 2 })]);
  assert.equal(loaded.length, 1);
  assert.deepEqual(applied(), [{ plugin: 'isula-plugin-twice', options: { n: 1 } }]);
});

test('a plugin that is not installed is PLUGIN_NOT_FOUND', async (t) => {
  const dir = await tempDir(t);
  // A directory with the right name but another package inside does not count.
  await writePackage(path.join(dir, 'isula-plugin-absent-7f3a'), { name: 'something-else' });
  const { load } = harness([dir]);
  await assert.rejects(load([spec('isula-plugin-absent-7f3a')]), {
    name: 'IsulaError', code: 'PLUGIN_NOT_FOUND', details: { plugin: 'isula-plugin-absent-7f3a' },
  });
  assert.equal(await locatePlugin('isula-plugin-absent-7f3a', [dir]), undefined);
});

test('a plugin name that is not an npm package name is PLUGIN_INVALID', async (t) => {
  const dir = await tempDir(t);
  const { load } = harness([dir]);
  await assert.rejects(load([spec('../escape')]), { name: 'IsulaError', code: 'PLUGIN_INVALID' });
});

test('a plugin built for another plugin API major is PLUGIN_API_MISMATCH and never applied', async (t) => {
  const dir = await tempDir(t);
  await writePackage(path.join(dir, 'isula-plugin-future'), { name: 'isula-plugin-future', apiVersion: '^99.0.0' });
  const { load, applied } = harness([dir]);
  await assert.rejects(load([spec('isula-plugin-future')]), {
    name: 'IsulaError', code: 'PLUGIN_API_MISMATCH', details: { plugin: 'isula-plugin-future', required: '^99.0.0', provided: PLUGIN_API_VERSION },
  });
  assert.deepEqual(applied(), []);
});

test('an apiVersion that is not a semver range is PLUGIN_INVALID', async (t) => {
  const dir = await tempDir(t);
  await writePackage(path.join(dir, 'isula-plugin-badrange'), { name: 'isula-plugin-badrange', apiVersion: 'latest and greatest' });
  const { load } = harness([dir]);
  await assert.rejects(load([spec('isula-plugin-badrange')]), { name: 'IsulaError', code: 'PLUGIN_INVALID' });
});

test('an apply that throws is PLUGIN_APPLY_FAILED naming the package', async (t) => {
  const dir = await tempDir(t);
  await writePackage(path.join(dir, 'isula-plugin-throws'), {
    name: 'isula-plugin-throws',
    files: { 'index.js': pluginSource('isula-plugin-throws', '^1.0.0', 'throw new Error("cannot open /dev/kvm");') },
  });
  const { load } = harness([dir]);
  await assert.rejects(load([spec('isula-plugin-throws')]), (err: unknown) => {
    assert.ok(err instanceof IsulaError);
    assert.equal(err.code, 'PLUGIN_APPLY_FAILED');
    // The operator has to know which plugin stopped the daemon.
    assert.ok(err.message.includes('isula-plugin-throws'), err.message);
    assert.ok(err.cause instanceof Error);
    return true;
  });
});

test('an apply that throws a string is still PLUGIN_APPLY_FAILED', async (t) => {
  const dir = await tempDir(t);
  await writePackage(path.join(dir, 'isula-plugin-throws-string'), {
    name: 'isula-plugin-throws-string',
    files: { 'index.js': pluginSource('isula-plugin-throws-string', '^1.0.0', 'throw "nope";') },
  });
  const { load } = harness([dir]);
  await assert.rejects(load([spec('isula-plugin-throws-string')]), { name: 'IsulaError', code: 'PLUGIN_APPLY_FAILED' });
});

// `(err as Error).message ?? String(err)` dereferences null/undefined, so
// the daemon fails with a TypeError that names no plugin.
test('an apply that throws null is still PLUGIN_APPLY_FAILED naming the package', async (t) => {
  const dir = await tempDir(t);
  await writePackage(path.join(dir, 'isula-plugin-throws-null'), {
    name: 'isula-plugin-throws-null',
    files: { 'index.js': pluginSource('isula-plugin-throws-null', '^1.0.0', 'throw null;') },
  });
  const { load } = harness([dir]);
  await assert.rejects(load([spec('isula-plugin-throws-null')]), { name: 'IsulaError', code: 'PLUGIN_APPLY_FAILED', details: { plugin: 'isula-plugin-throws-null' } });
});

test('PLUGIN_OPTIONS_INVALID from apply keeps its code', async (t) => {
  const dir = await tempDir(t);
  // A real plugin imports IsulaError from @isula/core; this one imports the
  // copy the loader uses, by URL, so that `instanceof` holds as it would.
  await writePackage(path.join(dir, 'isula-plugin-opts'), {
    name: 'isula-plugin-opts',
    files: { 'index.js': `import { IsulaError } from ${JSON.stringify(new URL('../src/errors.js', import.meta.url).href)};\n${pluginSource('isula-plugin-opts', '^1.0.0', 'throw new IsulaError("PLUGIN_OPTIONS_INVALID", "socket must be absolute");')}` },
  });
  const { load } = harness([dir]);
  await assert.rejects(load([spec('isula-plugin-opts')]), { name: 'IsulaError', code: 'PLUGIN_OPTIONS_INVALID', details: { plugin: 'isula-plugin-opts' } });
});

test('a default export that is not a plugin object is PLUGIN_INVALID', async (t) => {
  const dir = await tempDir(t);
  const bodies = {
    'isula-plugin-noapply': 'export default { name: "isula-plugin-noapply", apiVersion: "^1.0.0" };\n',
    'isula-plugin-nodefault': 'export const plugin = { name: "isula-plugin-nodefault", apiVersion: "^1.0.0", apply() {} };\n',
    'isula-plugin-fn': 'export default function apply() {}\n',
  };
  for (const [name, source] of Object.entries(bodies)) {
    await writePackage(path.join(dir, name), { name, files: { 'index.js': source } });
  }
  const { load } = harness([dir]);
  for (const name of Object.keys(bodies)) {
    await assert.rejects(load([spec(name)]), { name: 'IsulaError', code: 'PLUGIN_INVALID', details: { plugin: name } }, name);
  }
});

test('a plugin whose module fails to import is PLUGIN_INVALID', async (t) => {
  const dir = await tempDir(t);
  await writePackage(path.join(dir, 'isula-plugin-syntax'), { name: 'isula-plugin-syntax', files: { 'index.js': 'export default {\n  name: "x",,\n};\n' } });
  await writePackage(path.join(dir, 'isula-plugin-missing-dep'), { name: 'isula-plugin-missing-dep', files: { 'index.js': 'import "isula-no-such-dependency-1b2c";\nexport default {};\n' } });
  await writePackage(path.join(dir, 'isula-plugin-no-main'), { name: 'isula-plugin-no-main', manifest: { main: 'missing.js' }, files: {} });
  const { load } = harness([dir]);
  for (const name of ['isula-plugin-syntax', 'isula-plugin-missing-dep', 'isula-plugin-no-main']) {
    await assert.rejects(load([spec(name)]), (err: unknown) => {
      assert.ok(err instanceof IsulaError, name);
      assert.equal(err.code, 'PLUGIN_INVALID', name);
      assert.ok(err.message.includes(name), err.message);
      return true;
    });
  }
});

test('an unreadable package.json is PLUGIN_INVALID', async (t) => {
  const dir = await tempDir(t);
  const pkgDir = path.join(dir, 'isula-plugin-badjson');
  await fs.mkdir(pkgDir);
  await fs.writeFile(path.join(pkgDir, 'package.json'), '{ "name": ');
  const { load } = harness([dir]);
  await assert.rejects(load([spec('isula-plugin-badjson')]), { name: 'IsulaError', code: 'PLUGIN_INVALID' });
});

test('loading stops at the first failing plugin; earlier ones stay applied', async (t) => {
  const dir = await tempDir(t);
  await writePackage(path.join(dir, 'isula-plugin-ok'), { name: 'isula-plugin-ok' });
  await writePackage(path.join(dir, 'isula-plugin-old'), { name: 'isula-plugin-old', apiVersion: '^0.1.0' });
  await writePackage(path.join(dir, 'isula-plugin-never'), { name: 'isula-plugin-never' });
  const { load, applied } = harness([dir]);
  await assert.rejects(load([spec('isula-plugin-ok'), spec('isula-plugin-old'), spec('isula-plugin-never')]), { code: 'PLUGIN_API_MISMATCH' });
  assert.deepEqual(applied().map((a) => a.plugin), ['isula-plugin-ok']);
});
