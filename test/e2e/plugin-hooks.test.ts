/**
 * The notification hooks reach a third-party plugin from a real daemon: the
 * fixture plugin-watch (plain JavaScript, installed in a plugin dir) taps
 * every one and writes what it hears to a file; the CLI loads, pulls, tags,
 * removes images and runs a container.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { daemon, ok } from '../lib/containers.js';
import { installPlugin, type TestDaemon, waitFor } from '../lib/harness.js';
import { pushTestImage, registrySkip, startRegistry } from '../lib/registry.js';

interface Heard { hook: string; event: { id: string; reference?: string; name?: string; exitCode?: number; attributes?: Record<string, string> } }

const skipRegistry = await registrySkip();

/** A runc daemon with plugin-watch loaded; `heard()` reads what it wrote so far. */
async function watchedDaemon(t: { after(fn: () => Promise<void>): void }, opts: { loadBusybox?: boolean } = {}): Promise<{ d: TestDaemon; heard(): Promise<Heard[]> }> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'isula-watch-'));
  t.after(() => fs.rm(dir, { recursive: true, force: true }));
  const pluginDir = path.join(dir, 'plugins');
  const name = await installPlugin('plugin-watch', pluginDir);
  const file = path.join(dir, 'heard.log');
  const d = await daemon(t, { 'plugin-dirs': [pluginDir], plugins: ['@isula/image-oci', '@isula/driver-runc', { package: name, options: { file } }] }, opts);
  const heard = async (): Promise<Heard[]> => (await fs.readFile(file, 'utf8').catch(() => ''))
    .split('\n').filter((l) => l !== '')
    .map((l) => ({ hook: l.slice(0, l.indexOf(' ')), event: JSON.parse(l.slice(l.indexOf(' ') + 1)) as Heard['event'] }));
  return { d, heard };
}

const imageId = async (d: TestDaemon, ref: string): Promise<string> => {
  const r = await d.isula(['inspect', '--type', 'image', '-f', '{{.Id}}', ref]);
  ok(r, `inspect ${ref}`);
  return r.stdout.trim();
};

test('a plugin hears image loads and removals, and a container\'s created, started, exited, removed in order', async (t) => {
  const { d, heard } = await watchedDaemon(t); // loads busybox
  const busybox = await imageId(d, 'busybox');
  const loaded = await waitFor(async () => (await heard()).find((h) => h.hook === 'imageLoaded'), { timeoutMs: 10_000, what: 'imageLoaded' });
  assert.equal(loaded.event.id, busybox);
  assert.equal(loaded.event.reference, 'busybox:latest');
  assert.deepEqual(loaded.event.attributes, { format: 'oci', source: 'load' });

  const run = await d.isula(['run', '--name', 'watched', 'busybox', 'sh', '-c', 'exit 3']);
  assert.equal(run.code, 3, run.stderr);
  const id = (await d.isula(['inspect', '-f', '{{.Id}}', 'watched'])).stdout.trim();
  ok(await d.isula(['rm', 'watched']));
  const ofContainer = async () => (await heard()).filter((h) => h.event.id === id);
  await waitFor(async () => (await ofContainer()).some((h) => h.hook === 'containerRemoved'), { timeoutMs: 10_000, what: 'containerRemoved' });
  const seen = await ofContainer();
  assert.deepEqual(seen.map((h) => h.hook), ['containerCreated', 'containerStarted', 'containerExited', 'containerRemoved']);
  assert.equal(seen[2]?.event.exitCode, 3);
  assert.equal(seen[0]?.event.name, 'watched');

  // A removed tag of an image that keeps another is no removal; the last tag's is.
  ok(await d.isula(['tag', 'busybox', 'extra:1']));
  ok(await d.isula(['rmi', 'extra:1']));
  ok(await d.isula(['rmi', 'busybox']));
  await waitFor(async () => (await heard()).some((h) => h.hook === 'imageRemoved'), { timeoutMs: 10_000, what: 'imageRemoved' });
  const removed = (await heard()).filter((h) => h.hook === 'imageRemoved');
  assert.deepEqual(removed.map((h) => [h.event.id, h.event.reference]), [[busybox, 'busybox']]);

  // A failed operation is heard as nothing.
  assert.notEqual((await d.isula(['rmi', 'busybox'])).code, 0);
  assert.equal((await heard()).filter((h) => h.hook === 'imageRemoved').length, 1);
});

test('a plugin hears a pull from a registry, with the image id and the manifest digest', { skip: skipRegistry }, async (t) => {
  const reg = await startRegistry(t);
  const { ref, digest } = await pushTestImage(reg, { image: 'busybox', repo: 'team/watched', tag: '2' });
  const { d, heard } = await watchedDaemon(t, { loadBusybox: false });
  ok(await d.isula(['pull', ref]));
  const pulled = await waitFor(async () => (await heard()).find((h) => h.hook === 'imagePulled'), { timeoutMs: 10_000, what: 'imagePulled' });
  assert.equal(pulled.event.id, await imageId(d, ref));
  assert.equal(pulled.event.reference, ref);
  assert.deepEqual(pulled.event.attributes, { format: 'oci', digest });
});
