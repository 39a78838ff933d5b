/**
 * The plugin object (the runtime names it claims, options, shutdown) and
 * the small pure parts: shim names, the start handshake's output, the
 * k8s-file log writer.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { createHooks, defaultConfig, EventBus, PLUGIN_API_VERSION } from '@isula/core';
import type { PluginHost } from '@isula/core';
import plugin, { ShimV2Driver, parseStartOutput, shimBinaryName, shimFor } from '../src/index.js';
import { LogWriter } from '../src/log-writer.js';
import { log } from './helpers.js';

function fakeHost(state: string): PluginHost {
  const config = {
    ...defaultConfig({ state }),
    runtimes: {
      'io.containerd.kata.v2': { path: '/opt/kata/bin/containerd-shim-kata-v2', 'runtime-args': [] },
      'kata-qemu': { path: '/opt/kata/bin/containerd-shim-kata-qemu-v2', 'runtime-args': [] },
      'my-runc': { path: '/usr/sbin/runc', 'runtime-args': [] },
    },
  };
  return { apiVersion: PLUGIN_API_VERSION, hooks: createHooks(), logger: log, config, emitEvent() {}, events: new EventBus() };
}

test('shim v2 runtime names map to containerd-shim-<name>-v2 binaries', () => {
  assert.equal(shimBinaryName('io.containerd.runc.v2'), 'containerd-shim-runc-v2');
  assert.equal(shimBinaryName('io.containerd.kata.v2'), 'containerd-shim-kata-v2');
  assert.equal(shimBinaryName('io.containerd.kata-qemu.v2'), 'containerd-shim-kata-qemu-v2');
  assert.equal(shimBinaryName('io.containerd.runsc.v1'), 'containerd-shim-runsc-v1', 'gVisor names its v2-API shim v1');
  assert.equal(shimBinaryName('io.containerd.runtime.v1.linux'), undefined, 'containerd\'s legacy v1 runtime is another protocol');
  assert.equal(shimBinaryName('runc'), undefined);
  assert.equal(shimFor('io.containerd.kata.v2', { path: '/opt/kata/bin/containerd-shim-kata-v2' }), '/opt/kata/bin/containerd-shim-kata-v2', 'daemon.json runtimes path wins');
  assert.equal(shimFor('kata', undefined), 'containerd-shim-kata-v2');
  assert.equal(shimFor('my-runc', { path: '/usr/sbin/runc' }), undefined, 'an OCI runtime CLI is not ours');
});

test('the plugin claims shim v2 names, kata and configured shims, nothing else; apply touches no disk', async () => {
  const state = path.join(os.tmpdir(), `kata-plugin-never-created-${process.pid}`);
  const host = fakeHost(state);
  await plugin.apply(host, { namespace: 'isula' });
  for (const name of ['io.containerd.runc.v2', 'io.containerd.kata.v2', 'kata-qemu', 'kata']) {
    const d = await host.hooks.resolveRuntime.promise(name);
    assert.ok(d instanceof ShimV2Driver, name);
    assert.equal(d.name, name);
    assert.equal(await host.hooks.resolveRuntime.promise(name), d, 'one driver per runtime name');
  }
  for (const name of ['runc', 'crun', 'lcr', 'my-runc']) assert.equal(await host.hooks.resolveRuntime.promise(name), undefined, name);
  const kata = await host.hooks.resolveRuntime.promise('io.containerd.kata.v2');
  await assert.rejects(kata!.probe!({ signal: AbortSignal.timeout(1000) }), (e: { code?: string; message?: string }) => // claimed just above
    e.code === 'RUNTIME_UNAVAILABLE' && (e.message ?? '').includes('/opt/kata/bin/containerd-shim-kata-v2'));
  await host.hooks.shutdown.promise();
  assert.equal(fs.existsSync(state), false);
});

test('bad plugin options are PLUGIN_OPTIONS_INVALID', () => {
  const host = fakeHost('/tmp/x');
  for (const bad of [{ nope: 1 }, { namespace: 'a/b' }, { debug: 'yes' }, { timeoutMs: 5 }, 'str']) {
    assert.throws(() => plugin.apply(host, bad as never), (e: { code?: string }) => e.code === 'PLUGIN_OPTIONS_INVALID', JSON.stringify(bad));
  }
});

test('the start handshake: a raw address or {version, address, protocol}', () => {
  assert.equal(parseStartOutput('unix:///run/containerd/s/abc').address, 'unix:///run/containerd/s/abc');
  assert.equal(parseStartOutput('/run/x.sock\n').address, '/run/x.sock');
  assert.deepEqual(parseStartOutput('{"version":2,"address":"unix:///run/k.sock","protocol":"ttrpc"}'), { version: 2, address: 'unix:///run/k.sock', protocol: 'ttrpc' });
  for (const bad of ['', 'garbage', '{"address":""}', '{"version":3,"address":"unix:///x","protocol":"grpc"}', '{bad json']) {
    assert.throws(() => parseStartOutput(bad), (e: { code?: string }) => e.code === 'RUNTIME_FAILED', bad);
  }
});

test('the log writer: k8s-file lines, F and P, strictly increasing times, max size replaces the file', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kata-log-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'ctr.log');
  const w = new LogWriter(file);
  w.write('stdout', Buffer.from('a\nb\npart'));
  w.write('stderr', Buffer.from('e\n'));
  await w.flush();
  const lines = fs.readFileSync(file, 'utf8').trim().split('\n');
  assert.deepEqual(lines.map((l) => l.split(' ').slice(1).join(' ')), ['stdout F a', 'stdout F b', 'stdout P part', 'stderr F e']);
  const times = lines.map((l) => l.split(' ')[0] ?? '');
  for (const ts of times) assert.match(ts, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}\+00:00$/);
  assert.ok(times[2]! < times[3]!, 'times increase between writes'); // four lines checked above

  const small = path.join(dir, 'small.log');
  const s = new LogWriter(small, 200);
  const keep = path.join(dir, 'kept.log');
  for (let i = 0; i < 3; i++) s.write('stdout', Buffer.from(`${'x'.repeat(40)}\n`));
  await s.flush();
  fs.linkSync(small, keep); // what core does to keep the replaced content
  for (let i = 0; i < 3; i++) s.write('stdout', Buffer.from(`${'y'.repeat(40)}\n`));
  await s.flush();
  assert.ok(fs.statSync(small).size <= 200);
  assert.match(fs.readFileSync(small, 'utf8'), /y{40}/);
  assert.match(fs.readFileSync(keep, 'utf8'), /x{40}/, 'the old content stays with its hard link');

  // reopen (kubelet rotation): the file was moved away, the next lines start a new one.
  fs.renameSync(file, `${file}.1`);
  await w.reopen();
  w.write('stdout', Buffer.from('after\n'));
  await w.flush();
  assert.match(fs.readFileSync(file, 'utf8'), / stdout F after\n$/);
  assert.equal(fs.readFileSync(`${file}.1`, 'utf8').split('\n').filter(Boolean).length, 4);
});
