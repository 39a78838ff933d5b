import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { before, test } from 'node:test';
import { promisify } from 'node:util';
import { newDaemon, REPO, type TestDaemon } from '../lib/harness.js';

const run = promisify(execFile);
const IMAGES_DIR = process.env['ISULA_TEST_IMAGES'] ?? '/var/cache/isula/test-images';

before(async () => {
  await run('bash', [path.join(REPO, 'scripts/make-test-images.sh'), IMAGES_DIR], { timeout: 120_000 });
});

async function imageDaemon(t: Parameters<typeof newDaemon>[0]): Promise<TestDaemon> {
  const d = await newDaemon(t);
  await d.writeConfig({ plugins: ['@isula/image-oci'] });
  await d.start();
  return d;
}

const ids = async (d: TestDaemon) => (await d.isula(['images', '-q', '--no-trunc'])).stdout.trim().split('\n').filter(Boolean).sort();

test('save then load round-trips images with identical ids; skopeo reads the archive', async (t) => {
  const a = await imageDaemon(t);
  for (const f of ['busybox.docker.tar', 'layered.docker.tar', 'busybox.oci.tar']) {
    const r = await a.isula(['load', '-i', path.join(IMAGES_DIR, f)]);
    assert.equal(r.code, 0, r.stderr);
  }
  const archive = path.join(a.root, 'saved.tar');
  const save = await a.isula(['save', '-o', archive, 'busybox', 'layered:latest']);
  assert.equal(save.code, 0, save.stderr);
  const before = await ids(a);
  assert.equal(before.length, 2);

  // An independent reader: skopeo understands it as a docker-archive.
  const { stdout } = await run('skopeo', ['inspect', '--config', `docker-archive:${archive}:layered:latest`]);
  assert.equal((JSON.parse(stdout) as { rootfs: { diff_ids: string[] } }).rootfs.diff_ids.length, 3);

  const b = await imageDaemon(t);
  const load = await b.isula(['load', '-i', archive]);
  assert.equal(load.code, 0, load.stderr);
  assert.match(load.stdout, /Loaded image: busybox:latest/);
  assert.match(load.stdout, /Loaded image: layered:latest/);
  assert.deepEqual(await ids(b), before);

  const missing = await a.isula(['save', '-o', path.join(a.root, 'x.tar'), 'nosuch']);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /No such image: nosuch/);
  await assert.rejects(fs.stat(path.join(a.root, 'x.tar')), { code: 'ENOENT' });
});

test('import turns a rootfs tarball into a one-layer image; a bad tarball leaves nothing', async (t) => {
  const d = await imageDaemon(t);
  const rootfs = path.join(d.root, 'rootfs');
  await fs.mkdir(path.join(rootfs, 'etc'), { recursive: true });
  await fs.writeFile(path.join(rootfs, 'etc/motd'), 'imported\n');
  const tarball = path.join(d.root, 'rootfs.tar.gz');
  await run('tar', ['-C', rootfs, '-czf', tarball, '.']);

  const imp = await d.isula(['import', tarball, 'myimg:v1']);
  assert.equal(imp.code, 0, imp.stderr);
  assert.match(imp.stdout.trim(), /^sha256:[a-f0-9]{64}$/);
  const inspect = JSON.parse((await d.isula(['inspect', 'myimg:v1'])).stdout) as { Id: string; RootFS: { Layers: string[] } }[];
  assert.equal(inspect[0]?.Id, imp.stdout.trim());
  assert.equal(inspect[0]?.RootFS.Layers.length, 1);
  assert.equal((await fs.readdir(path.join(d.graph, 'storage/layers'))).length, 1);

  const evil = path.join(d.root, 'evil.tar');
  await fs.writeFile(evil, Buffer.alloc(3000, 7));
  const bad = await d.isula(['import', evil, 'evil']);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /Error response from daemon/);
  assert.equal((await fs.readdir(path.join(d.graph, 'storage/layers'))).length, 1);
  assert.deepEqual(await fs.readdir(path.join(d.graph, 'storage/tmp')), []);
});
