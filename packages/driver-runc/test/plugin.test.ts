/**
 * The plugin object (which runtime names it claims, options, shutdown), and
 * the process model: a daemon killed with SIGKILL leaves its containers
 * running, and a new driver restores them.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { createHooks, defaultConfig, EventBus, PLUGIN_API_VERSION } from '@isula/core';
import type { PluginHost } from '@isula/core';
import plugin, { RuncDriver } from '../src/index.js';
import { isSameProcess } from '@isula/core';
import { leftovers, log, makeEnv, makeSpec, needs, removeRootfs, uniqueId, waitFor, forceRemove } from './helpers.js';

function fakeHost(state: string): PluginHost {
  const config = { ...defaultConfig({ state }), runtimes: {
    'my-runc': { path: '/usr/sbin/runc', 'runtime-args': ['--debug'] },
    // Shim v2 runtimes belong to driver-kata, whatever their key or binary.
    'io.containerd.kata.v2': { path: '/opt/kata/bin/containerd-shim-kata-v2', 'runtime-args': [] },
    'my-shim': { path: '/usr/bin/containerd-shim-runc-v2', 'runtime-args': [] },
  } };
  return { apiVersion: PLUGIN_API_VERSION, hooks: createHooks(), logger: log, config, emitEvent() {}, events: new EventBus() };
}

test('the plugin claims runc, crun and configured runtimes, and nothing else (no shim v2)', async () => {
  const host = fakeHost('/tmp/isula-runc-plugin-never-created');
  await plugin.apply(host, { conmon: '/usr/bin/conmon' });
  for (const name of ['runc', 'crun', 'my-runc']) {
    const d = await host.hooks.resolveRuntime.promise(name);
    assert.ok(d instanceof RuncDriver, name);
    assert.equal(d.name, name);
    assert.equal(await host.hooks.resolveRuntime.promise(name), d, 'one driver per runtime name');
  }
  for (const name of ['lcr', 'io.containerd.kata.v2', 'my-shim']) assert.equal(await host.hooks.resolveRuntime.promise(name), undefined, name);
  await host.hooks.shutdown.promise();
  assert.equal(fs.existsSync('/tmp/isula-runc-plugin-never-created'), false, 'apply and resolve touch no disk');
});

test('bad plugin options are PLUGIN_OPTIONS_INVALID', () => {
  const host = fakeHost('/tmp/x');
  assert.throws(() => plugin.apply(host, { conmon: 'conmon' } as never), (e: { code?: string }) => e.code === 'PLUGIN_OPTIONS_INVALID');
  assert.throws(() => plugin.apply(host, { nope: 1 } as never), (e: { code?: string }) => e.code === 'PLUGIN_OPTIONS_INVALID');
});

test('a missing runtime binary or conmon is RUNTIME_UNAVAILABLE naming the binary', async (t) => {
  const env = makeEnv();
  t.after(() => env.cleanup());
  const id = uniqueId('unavail');
  const spec = makeSpec(id, ['true']);
  const ref = env.bundle(id, spec);
  const noRuntime = new RuncDriver({ runtime: { name: 'ghost', path: '/nonexistent/ghost-runtime' }, stateDir: env.state, logger: log });
  await assert.rejects(noRuntime.create(ref, { signal: AbortSignal.timeout(5000), spec, stdio: env.stdio(id) }),
    (e: { code?: string; message?: string }) => e.code === 'RUNTIME_UNAVAILABLE' && (e.message ?? '').includes('/nonexistent/ghost-runtime'));
  const noConmon = new RuncDriver({ runtime: { name: 'runc' }, stateDir: env.state, logger: log, conmonPath: '/nonexistent/conmon' });
  await assert.rejects(noConmon.create(ref, { signal: AbortSignal.timeout(5000), spec, stdio: env.stdio(id) }),
    (e: { code?: string; message?: string }) => e.code === 'RUNTIME_UNAVAILABLE' && (e.message ?? '').includes('/nonexistent/conmon'));
  removeRootfs();
});

test('a daemon killed with SIGKILL leaves its container running; a new driver restores and stops it', { skip: needs() }, async (t) => {
  const env = makeEnv();
  const id = uniqueId('survive');
  t.after(() => {
    forceRemove('runc', env, id);
    env.cleanup();
    removeRootfs();
  });
  const spec = makeSpec(id, ['sleep', '60']);
  const ref = env.bundle(id, spec);
  const stdio = env.stdio(id);
  // The "daemon": a separate Node process that creates and starts the container, prints `persisted`, then idles.
  const index = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../src/index.js');
  const script = `
    import { RuncDriver } from ${JSON.stringify(index)};
    const [ref, spec, stdio, state] = JSON.parse(process.argv[1]);
    const logger = { child: () => logger, debug() {}, info() {}, warn() {}, error() {} };
    const d = new RuncDriver({ runtime: { name: 'runc' }, stateDir: state, logger });
    const { persisted } = await d.create(ref, { signal: AbortSignal.timeout(20000), spec, stdio });
    await d.start(ref, { signal: AbortSignal.timeout(20000) });
    void d.wait({ ...ref, persisted }, { signal: new AbortController().signal });
    process.stdout.write(JSON.stringify(persisted) + '\\n');
    setInterval(() => {}, 1000);`;
  const daemon = spawn(process.execPath, ['--input-type=module', '-e', script, JSON.stringify([ref, spec, stdio, env.state])], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  daemon.stdout.on('data', (d: Buffer) => { out += d.toString(); });
  try {
    await waitFor(() => out.includes('\n'), { timeoutMs: 20_000, what: 'the daemon to report the container' });
  } finally {
    daemon.kill('SIGKILL');
  }
  await new Promise((r) => daemon.once('exit', r));
  ref.persisted = JSON.parse(out) as Record<string, unknown>;
  const p = ref.persisted as { init: { pid: number; startTime: number }; conmon: { pid: number; startTime: number } };
  assert.ok(await isSameProcess(p.init), 'container still running');
  assert.ok(await isSameProcess(p.conmon), 'conmon still running');

  const driver = new RuncDriver({ runtime: { name: 'runc' }, stateDir: env.state, logger: log });
  t.after(() => driver.close());
  const signal = AbortSignal.timeout(20_000);
  assert.deepEqual(await driver.restore(ref, { signal }), { status: 'running', pid: p.init.pid });
  await driver.kill(ref, { signal, signal_: 'KILL' });
  assert.equal((await driver.wait(ref, { signal })).exitCode, 137);
  await driver.delete(ref, { signal });
  assert.deepEqual(leftovers(env, 'runc', id), []);
});
