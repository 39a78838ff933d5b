/**
 * GET /info of a real Daemon (in this process, on temporary roots and
 * socket) with small plugins written here: what a client can read about
 * the plugins' drivers without parsing text. No root, no runtime binary:
 * the plugins register a network driver or claim a runtime name and do
 * nothing else.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { Daemon } from '../src/daemon.js';

interface Info {
  Plugins: { Volume: string[]; Network: string[]; Authorization: null; Log: string[] };
  IsulaFeatures: { Name: string; Enabled: boolean; Detail: string }[];
  Runtimes: Record<string, unknown>;
  DefaultRuntime: string;
}

/** A plugin package in `dir` that registers network drivers named `networks` and claims the runtime names `runtimes`. */
async function writePlugin(dir: string, name: string, { networks = [], runtimes = [] }: { networks?: string[]; runtimes?: string[] }): Promise<void> {
  const pkg = path.join(dir, name);
  await fs.mkdir(pkg, { recursive: true });
  await fs.writeFile(path.join(pkg, 'package.json'), JSON.stringify({ name, version: '1.0.0', type: 'module', main: 'index.js' }));
  await fs.writeFile(path.join(pkg, 'index.js'), `const fail = async () => { throw new Error('not in this test'); };
export default {
  name: ${JSON.stringify(name)},
  apiVersion: '^1.0.0',
  apply(host) {
    host.hooks.registerNetworkDrivers.tap(${JSON.stringify(name)}, (registrar) => {
      for (const n of ${JSON.stringify(networks)}) registrar.register({ name: n, attach: fail, detach: fail, check: fail });
    });
    host.hooks.resolveRuntime.tapPromise(${JSON.stringify(name)}, async (runtime) => ${JSON.stringify(runtimes)}.includes(runtime) ? { claimedBy: ${JSON.stringify(name)} } : undefined);
  },
};
`);
}

/** A daemon with `plugins` (written by writePlugin into its plugin dir) and `config`; stopped and its roots removed after the test. */
async function startDaemon(t: TestContext, plugins: Record<string, { networks?: string[]; runtimes?: string[] }>, config: Record<string, unknown> = {}): Promise<{ daemon: Daemon; socket: string }> {
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'isula-core-info-'));
  let daemon: Daemon | undefined;
  // One hook, in this order: after-hooks run in the order registered.
  t.after(async () => {
    await daemon?.stop();
    await fs.rm(root, { recursive: true, force: true });
  });
  const pluginDir = path.join(root, 'plugins');
  for (const [name, what] of Object.entries(plugins)) await writePlugin(pluginDir, name, what);
  const configFile = path.join(root, 'daemon.json');
  await fs.writeFile(configFile, JSON.stringify({ plugins: Object.keys(plugins), 'plugin-dirs': [pluginDir], group: '', ...config }));
  const state = path.join(root, 'state');
  daemon = await Daemon.start({ configFile, state, graph: path.join(root, 'graph'), logStderr: false });
  return { daemon, socket: path.join(state, 'isulad.sock') };
}

function getInfo(socketPath: string): Promise<Info> {
  return new Promise((resolve, reject) => {
    http.get({ socketPath, path: '/info' }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        try {
          assert.equal(res.statusCode, 200);
          resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')) as Info);
        } catch (err) {
          reject(err as Error);
        }
      });
    }).on('error', reject);
  });
}

const networking = (info: Info) => info.IsulaFeatures.find((f) => f.Name === 'networking');

test('/info lists the registered network drivers by name in Plugins.Network, as the networking feature names them', async (t) => {
  const { socket } = await startDaemon(t, { 'net-one': { networks: ['alpha'] }, 'net-two': { networks: ['beta', 'gamma'] } });
  const info = await getInfo(socket);
  assert.deepEqual(info.Plugins.Network, ['alpha', 'beta', 'gamma']);
  assert.deepEqual(networking(info), { Name: 'networking', Enabled: true, Detail: 'alpha, beta, gamma' }, 'the feature keeps its text');
  assert.deepEqual([info.Plugins.Volume, info.Plugins.Authorization, info.Plugins.Log], [[], null, []], "the rest of Docker's Plugins is as before");
});

test('/info has an empty Plugins.Network and networking off when no plugin registers a network driver', async (t) => {
  const { socket } = await startDaemon(t, { 'rt-only': { runtimes: ['fakert'] } });
  const info = await getInfo(socket);
  assert.deepEqual(info.Plugins.Network, []);
  assert.deepEqual(networking(info), { Name: 'networking', Enabled: false, Detail: 'no network plugin' });
});

test('/info Runtimes lists the runtime names a plugin claims; a default-runtime no plugin claims is left out, and isulad still starts', async (t) => {
  const { socket } = await startDaemon(t, { 'rt-only': { runtimes: ['fakert', 'crun'] } }, { 'default-runtime': 'unclaimed' });
  const info = await getInfo(socket);
  assert.equal(info.DefaultRuntime, 'unclaimed');
  assert.deepEqual(Object.keys(info.Runtimes).sort(), ['crun']);
  const claimed = await startDaemon(t, { 'rt-only': { runtimes: ['fakert'] } }, { 'default-runtime': 'fakert' });
  assert.deepEqual(Object.keys((await getInfo(claimed.socket)).Runtimes), ['fakert'], 'the default is listed once a plugin claims it');
});
