import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { before, test } from 'node:test';
import { promisify } from 'node:util';
import { httpRequest, newDaemon, REPO, waitFor, type TestDaemon } from '../lib/harness.js';

const run = promisify(execFile);
const IMAGES_DIR = process.env['ISULA_TEST_IMAGES'] ?? '/var/cache/isula/test-images';

interface ImageFacts { configDigest: string; diffIds: string[] }
let facts: Record<string, ImageFacts>;

before(async () => {
  // Built offline from Debian's busybox-static by umoci/skopeo; cached between runs.
  await run('bash', [path.join(REPO, 'scripts/make-test-images.sh'), IMAGES_DIR], { timeout: 120_000 });
  facts = JSON.parse(await fs.readFile(path.join(IMAGES_DIR, 'images.json'), 'utf8')) as Record<string, ImageFacts>;
});

async function imageDaemon(t: Parameters<typeof newDaemon>[0]): Promise<TestDaemon> {
  const d = await newDaemon(t);
  await d.writeConfig({ plugins: ['@isula/image-oci'] });
  await d.start();
  return d;
}

const layerDirs = (d: TestDaemon) => fs.readdir(path.join(d.graph, 'storage/layers'));
const fact = (name: string): ImageFacts => {
  const f = facts[name];
  assert.ok(f, `images.json has ${name}`);
  return f;
};

test('isula load reads a docker-archive made by skopeo; images and inspect show it with its real id and layers', async (t) => {
  const d = await imageDaemon(t);
  const load = await d.isula(['load', '-i', path.join(IMAGES_DIR, 'busybox.docker.tar')]);
  assert.equal(load.code, 0, load.stderr);
  assert.match(load.stdout, /^Loaded image: busybox:latest$/m);

  const busybox = fact('busybox');
  const images = await d.isula(['images']);
  assert.equal(images.code, 0, images.stderr);
  assert.match(images.stdout, new RegExp(`^busybox +latest +${busybox.configDigest.slice(7, 19)} `, 'm'));

  const inspect = await d.isula(['inspect', 'busybox']);
  assert.equal(inspect.code, 0, inspect.stderr);
  const [info] = JSON.parse(inspect.stdout) as { Id: string; RepoTags: string[]; RootFS: { Layers: string[] }; Config: { Cmd?: string[] } }[];
  assert.equal(info?.Id, busybox.configDigest);
  assert.deepEqual(info?.RepoTags, ['busybox:latest']);
  assert.deepEqual(info?.RootFS.Layers, busybox.diffIds);

  // Same image by id, short id and full name.
  for (const ref of [busybox.configDigest, busybox.configDigest.slice(7, 19), 'docker.io/library/busybox:latest']) {
    const r = await httpRequest(d.socket, 'GET', `/v1.41/images/${encodeURIComponent(ref)}/json`);
    assert.equal(r.status, 200, ref);
  }
  const missing = await d.isula(['inspect', 'nosuchimage']);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /No such object: nosuchimage/);
});

test('an oci-archive made by skopeo loads to the same image id as the docker-archive', async (t) => {
  const d = await imageDaemon(t);
  const load = await d.isula(['load', '-i', path.join(IMAGES_DIR, 'busybox.oci.tar'), '--tag', 'ocibox']);
  assert.equal(load.code, 0, load.stderr);
  const ids = await d.isula(['images', '-q', '--no-trunc']);
  assert.deepEqual(ids.stdout.trim().split('\n'), [fact('busybox').configDigest]);
});

test('two images sharing a base layer store it once; rmi frees the shared layer only with its last user', async (t) => {
  const d = await imageDaemon(t);
  for (const f of ['busybox.docker.tar', 'shared.docker.tar']) {
    const r = await d.isula(['load', '-i', path.join(IMAGES_DIR, f)]);
    assert.equal(r.code, 0, r.stderr);
  }
  const busybox = fact('busybox');
  const shared = fact('shared');
  assert.equal(shared.diffIds[0], busybox.diffIds[0], 'fixture: shared is built on busybox');
  assert.equal((await layerDirs(d)).length, 2, 'base layer stored once + the shared image top layer');

  const rmBusybox = await d.isula(['rmi', 'busybox']);
  assert.equal(rmBusybox.code, 0, rmBusybox.stderr);
  assert.match(rmBusybox.stdout, /^Untagged: busybox:latest$/m);
  assert.match(rmBusybox.stdout, new RegExp(`^Deleted: ${busybox.configDigest}$`, 'm'));
  assert.equal((await layerDirs(d)).length, 2, 'base layer kept: shared still uses it');

  const rmShared = await d.isula(['rmi', 'shared:latest']);
  assert.equal(rmShared.code, 0, rmShared.stderr);
  assert.deepEqual(await layerDirs(d), [], 'last user gone: every layer removed');
  assert.deepEqual(await fs.readdir(path.join(d.graph, 'storage/l')), []);

  const again = await d.isula(['rmi', 'shared']);
  assert.equal(again.code, 1);
  assert.match(again.stderr, /No such image: shared/);
});

test('tag adds a name; rmi of one name untags only; rmi by id with several names needs -f', async (t) => {
  const d = await imageDaemon(t);
  assert.equal((await d.isula(['load', '-i', path.join(IMAGES_DIR, 'busybox.docker.tar')])).code, 0);
  assert.equal((await d.isula(['tag', 'busybox', 'localhost:5000/tools/box:v1'])).code, 0);
  const images = await d.isula(['images']);
  assert.match(images.stdout, /^localhost:5000\/tools\/box +v1 /m);
  const id = fact('busybox').configDigest;
  const byId = await d.isula(['rmi', id.slice(7, 19)]);
  assert.equal(byId.code, 1);
  assert.match(byId.stderr, /must be forced/);
  const untag = await d.isula(['rmi', 'localhost:5000/tools/box:v1']);
  assert.equal(untag.stdout.trim(), 'Untagged: localhost:5000/tools/box:v1');
  assert.equal((await layerDirs(d)).length, 1);
  const bad = await d.isula(['tag', 'busybox', 'UPPERCASE:v1']);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /invalid reference format/);
});

test('a file that is not an image archive is refused and leaves nothing behind', async (t) => {
  const d = await imageDaemon(t);
  const junk = path.join(d.root, 'junk.tar');
  await fs.writeFile(junk, 'this is not a tar archive at all'.repeat(100));
  // Again and again: the daemon used to close the connection while the client was still sending
  // the end of the body, which then failed with `write EPIPE` instead of this answer (1 load in 3).
  for (let i = 0; i < 10; i++) {
    const r = await d.isula(['load', '-i', junk]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /Error response from daemon: .*(archive|tar)/i, `load ${i + 1}`);
  }
  assert.deepEqual(await layerDirs(d), []);
  assert.deepEqual(await fs.readdir(path.join(d.graph, 'storage/tmp')), []);
  assert.equal((await httpRequest(d.socket, 'GET', '/_ping')).status, 200);
});

test('kill -9 in the middle of a load leaves no partial image; after restart the same load succeeds', async (t) => {
  const d = await imageDaemon(t);
  const archive = await fs.readFile(path.join(IMAGES_DIR, 'layered.docker.tar'));
  // Send half the archive and hold the connection open: the daemon is mid-load.
  const sock = net.connect(d.socket);
  await new Promise<void>((resolve, reject) => { sock.once('connect', resolve); sock.once('error', reject); });
  sock.on('error', () => {});
  sock.write('POST /v1.41/images/load HTTP/1.1\r\nHost: d\r\nContent-Type: application/x-tar\r\nTransfer-Encoding: chunked\r\n\r\n');
  const half = archive.subarray(0, Math.floor(archive.length / 2));
  sock.write(`${half.length.toString(16)}\r\n`);
  sock.write(half);
  sock.write('\r\n');
  await waitFor(async () => (await fs.readdir(path.join(d.graph, 'storage/tmp')).catch(() => [])).length > 0, { what: 'the load to start' });
  d.proc?.kill('SIGKILL');
  await d.exited();
  sock.destroy();

  await d.start();
  assert.deepEqual(await layerDirs(d), [], 'no half layer');
  assert.deepEqual(await fs.readdir(path.join(d.graph, 'storage/tmp')), [], 'scratch removed');
  const list = await d.isula(['images', '-q']);
  assert.equal(list.stdout.trim(), '', 'no half image');
  assert.match(await d.log(), /removed leftovers of an interrupted operation/);

  const load = await d.isula(['load', '-i', path.join(IMAGES_DIR, 'layered.docker.tar')]);
  assert.equal(load.code, 0, load.stderr);
  assert.match(load.stdout, /Loaded image: layered:latest/);
  assert.equal((await layerDirs(d)).length, fact('layered').diffIds.length);
});

test('an archive with a hostile layer is refused with IMAGE_LAYER_UNSAFE; its good layers do not linger', async (t) => {
  const d = await imageDaemon(t);
  const w = path.join(d.root, 'evil');
  await fs.mkdir(path.join(w, 'good/etc'), { recursive: true });
  await fs.writeFile(path.join(w, 'good/etc/ok'), 'fine\n');
  await fs.writeFile(path.join(w, 'escape'), 'pwned\n');
  await run('tar', ['-C', path.join(w, 'good'), '-cf', path.join(w, 'good.tar'), 'etc']);
  // GNU tar keeps the `../` only with -P: a layer entry that climbs out of the rootfs.
  await run('tar', ['-C', w, '-P', '--transform', 's,^escape,../../escape,', '-cf', path.join(w, 'evil.tar'), 'escape']);
  const sha = async (f: string) => `sha256:${(await run('sha256sum', [f])).stdout.split(' ')[0] ?? ''}`;
  const config = { architecture: 'amd64', os: 'linux', created: '2026-01-01T00:00:00Z', config: {}, rootfs: { type: 'layers', diff_ids: [await sha(path.join(w, 'good.tar')), await sha(path.join(w, 'evil.tar'))] } };
  await fs.writeFile(path.join(w, 'config.json'), JSON.stringify(config));
  await fs.writeFile(path.join(w, 'manifest.json'), JSON.stringify([{ Config: 'config.json', RepoTags: ['evil:latest'], Layers: ['good.tar', 'evil.tar'] }]));
  const archive = path.join(d.root, 'evil.docker.tar');
  await run('tar', ['-C', w, '-cf', archive, 'manifest.json', 'config.json', 'good.tar', 'evil.tar']);

  const r = await d.isula(['load', '-i', archive]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /Error response from daemon: .*escape/);
  assert.deepEqual(await layerDirs(d), [], 'the good layer of the refused image is gone too');
  assert.deepEqual(await fs.readdir(path.join(d.graph, 'storage/tmp')), []);
  await assert.rejects(fs.stat(path.join(d.graph, 'escape')), { code: 'ENOENT' });
  await assert.rejects(fs.stat(path.join(d.graph, 'storage/escape')), { code: 'ENOENT' });
  assert.equal((await d.isula(['images', '-q'])).stdout.trim(), '');
});

test('a name wins over a short id: an image tagged like hex is found by its name', async (t) => {
  const d = await imageDaemon(t);
  for (const f of ['busybox.docker.tar', 'shared.docker.tar']) assert.equal((await d.isula(['load', '-i', path.join(IMAGES_DIR, f)])).code, 0);
  const busyboxPrefix = fact('busybox').configDigest.slice(7, 13);
  assert.equal((await d.isula(['tag', 'shared', busyboxPrefix])).code, 0);
  const [byName] = JSON.parse((await d.isula(['inspect', busyboxPrefix])).stdout) as { Id: string }[];
  assert.equal(byName?.Id, fact('shared').configDigest, 'the tag, not the id prefix');
  const [byLongerPrefix] = JSON.parse((await d.isula(['inspect', fact('busybox').configDigest.slice(7, 19)])).stdout) as { Id: string }[];
  assert.equal(byLongerPrefix?.Id, fact('busybox').configDigest);
});
