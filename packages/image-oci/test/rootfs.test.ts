import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { pino } from 'pino';
import { ImageStore } from '../src/store.js';

const run = promisify(execFile);
const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../..');
const IMAGES_DIR = process.env['ISULA_TEST_IMAGES'] ?? '/var/cache/isula/test-images';
const log = pino({ level: 'silent' });
const CID = 'c0ffee0123456789abcdef';

before(async () => {
  await run('bash', [path.join(REPO, 'scripts/make-test-images.sh'), IMAGES_DIR], { timeout: 120_000 });
});

async function mounted(p: string): Promise<boolean> {
  return (await fs.readFile('/proc/self/mountinfo', 'utf8')).split('\n').some((l) => l.split(' ')[4] === p);
}

test('a container rootfs is the merged view of the layers, whiteouts and opaque dirs applied', async (t) => {
  const graph = await fs.mkdtemp(path.join(os.tmpdir(), 'isula-rootfs-'));
  const store = await ImageStore.open(graph, log);
  t.after(async () => {
    await store.removeRootfs(CID).catch(() => {});
    await fs.rm(graph, { recursive: true, force: true });
  });
  const [img] = await store.load(path.join(IMAGES_DIR, 'layered.docker.tar'));
  assert.ok(img);
  assert.equal(img.layers.length, 3);

  const rootfs = await store.mountRootfs(CID, 'layered');
  assert.equal(await store.mountRootfs(CID, 'layered'), rootfs, 'mounting twice is idempotent');
  assert.ok(await mounted(rootfs));
  const data = (await fs.readdir(path.join(rootfs, 'data'))).sort();
  assert.deepEqual(data, ['dir', 'hard', 'keep.txt', 'link', 'suid'], 'a.txt is whited out');
  assert.deepEqual(await fs.readdir(path.join(rootfs, 'data/dir')), ['new.txt'], 'opaque dir hides old.txt');
  assert.equal((await fs.stat(path.join(rootfs, 'data/suid'))).mode & 0o7777, 0o4755);
  assert.equal(await fs.readlink(path.join(rootfs, 'data/link')), 'keep.txt');
  assert.ok((await fs.stat(path.join(rootfs, 'bin/busybox'))).isFile(), 'base layer visible');

  // Writes land in the container's upper dir, not in the shared layers.
  await fs.writeFile(path.join(rootfs, 'data/keep.txt'), 'changed');
  const base = store.layerDir(img.layers[1] ?? '');
  assert.notEqual(await fs.readFile(path.join(base, 'data/keep.txt'), 'utf8'), 'changed');

  // In use: rmi refuses and names the container.
  await assert.rejects(store.remove('layered'), (err: { code?: string; message?: string }) => err.code === 'IMAGE_IN_USE' && (err.message ?? '').includes(CID.slice(0, 12)));

  await store.removeRootfs(CID);
  assert.equal(await mounted(rootfs), false);
  await fs.access(path.join(graph, 'storage/containers', CID)).then(() => assert.fail('container dir left'), () => {});
  const removed = await store.remove('layered');
  assert.equal(removed.deleted.length, 4, 'image and its three layers');
});

test('an image with many layers still mounts: short links keep the options small', async (t) => {
  const graph = await fs.mkdtemp(path.join(os.tmpdir(), 'isula-rootfs-'));
  const store = await ImageStore.open(graph, log);
  t.after(async () => {
    await store.removeRootfs(CID).catch(() => {});
    await fs.rm(graph, { recursive: true, force: true });
  });
  // 48 layers with full paths (~110 bytes each) would need ~5.3 KB of lowerdir: past overlay's 4095.
  const work = path.join(graph, 'build');
  const layers: string[] = [];
  const diffIds: string[] = [];
  for (let i = 0; i < 48; i++) {
    const dir = path.join(work, `l${i}`);
    await fs.mkdir(path.join(dir, 'files'), { recursive: true });
    await fs.writeFile(path.join(dir, 'files', `f${i}`), String(i));
    const tarFile = path.join(work, `l${i}.tar`);
    await run('tar', ['-C', dir, '-cf', tarFile, 'files']);
    const { stdout } = await run('sha256sum', [tarFile]);
    diffIds.push(`sha256:${stdout.split(' ')[0] ?? ''}`);
    layers.push(`l${i}.tar`);
  }
  const config = { architecture: 'amd64', os: 'linux', created: '2026-01-01T00:00:00Z', config: {}, rootfs: { type: 'layers', diff_ids: diffIds } };
  await fs.writeFile(path.join(work, 'config.json'), JSON.stringify(config));
  await fs.writeFile(path.join(work, 'manifest.json'), JSON.stringify([{ Config: 'config.json', RepoTags: ['many:layers'], Layers: layers }]));
  const archive = path.join(graph, 'many.tar');
  await run('tar', ['-C', work, '-cf', archive, 'manifest.json', 'config.json', ...layers]);

  await store.load(archive);
  const rootfs = await store.mountRootfs(CID, 'many:layers');
  assert.equal((await fs.readdir(path.join(rootfs, 'files'))).length, 48);
});

test("each caller gets its own copy of an image's config (they are kept in memory)", async (t) => {
  const graph = await fs.mkdtemp(path.join(os.tmpdir(), 'isula-config-'));
  const store = await ImageStore.open(graph, log);
  t.after(async () => { await fs.rm(graph, { recursive: true, force: true }); });
  const [img] = await store.load(path.join(IMAGES_DIR, 'busybox.docker.tar'));
  assert.ok(img);
  const first = await store.config(img);
  const cmd = first.config?.['Cmd'];
  assert.ok(Array.isArray(cmd) && cmd.length > 0, 'busybox has a Cmd');
  // A caller that changes what it got (core merges env and labels into its own record) changes nobody else's.
  (first.config as { Cmd?: string[] }).Cmd = ['changed'];
  first.os = 'changed';
  const second = await store.config(img);
  assert.deepEqual(second.config?.['Cmd'], cmd);
  assert.equal(second.os, 'linux');
});
