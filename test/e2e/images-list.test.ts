import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { httpRequest, newDaemon, REPO, tempRoot, type TestDaemon } from '../lib/harness.js';

const run = promisify(execFile);
const IMAGES_DIR = process.env['ISULA_TEST_IMAGES'] ?? '/var/cache/isula/test-images';

interface ImageFacts { configDigest: string }
let facts: Record<string, ImageFacts>;
let work: string;
/** busybox re-dated to 2024 and labelled, as `newer:latest`: every fixture image is from 2023-11-14. */
let newerArchive: string;
let newerId: string;

before(async () => {
  // Built offline from Debian's busybox-static by umoci/skopeo; cached between runs.
  await run('bash', [path.join(REPO, 'scripts/make-test-images.sh'), IMAGES_DIR], { timeout: 120_000 });
  facts = JSON.parse(await fs.readFile(path.join(IMAGES_DIR, 'images.json'), 'utf8')) as Record<string, ImageFacts>;
  work = await tempRoot('isula-images-list-');
  const dir = path.join(work, 'newer');
  await fs.mkdir(dir);
  await run('tar', ['-xf', path.join(IMAGES_DIR, 'busybox.docker.tar'), '-C', dir]);
  const manifest = JSON.parse(await fs.readFile(path.join(dir, 'manifest.json'), 'utf8')) as { Config: string; RepoTags: string[] }[];
  const entry = manifest[0];
  assert.ok(entry, 'fixture: busybox.docker.tar has a manifest entry');
  const config = JSON.parse(await fs.readFile(path.join(dir, entry.Config), 'utf8')) as { created: string; config?: Record<string, unknown> };
  config.created = '2024-06-01T00:00:00Z';
  config.config = { ...config.config, Labels: { 'org.example.tier': 'test' } };
  const bytes = Buffer.from(JSON.stringify(config));
  const hex = createHash('sha256').update(bytes).digest('hex');
  newerId = `sha256:${hex}`;
  await fs.rm(path.join(dir, entry.Config));
  await fs.rm(path.join(dir, 'repositories'), { force: true });
  await fs.writeFile(path.join(dir, `${hex}.json`), bytes);
  entry.Config = `${hex}.json`;
  entry.RepoTags = ['newer:latest'];
  await fs.writeFile(path.join(dir, 'manifest.json'), JSON.stringify(manifest));
  newerArchive = path.join(work, 'newer.docker.tar');
  await run('tar', ['-cf', newerArchive, '-C', dir, ...(await fs.readdir(dir))]);
});

after(async () => {
  if (work !== undefined) await fs.rm(work, { recursive: true, force: true });
});

const id = (name: string): string => {
  const f = facts[name];
  assert.ok(f, `images.json has ${name}`);
  return f.configDigest;
};

async function daemonWith(t: Parameters<typeof newDaemon>[0], archives: string[]): Promise<TestDaemon> {
  const d = await newDaemon(t);
  await d.writeConfig({ plugins: ['@isula/image-oci'] });
  await d.start();
  for (const a of archives) {
    const r = await d.isula(['load', '-i', a]);
    assert.equal(r.code, 0, r.stderr);
  }
  return d;
}

/** `isula images` with --no-trunc -q: the sorted full ids it lists. */
async function ids(d: TestDaemon, args: string[]): Promise<string[]> {
  const r = await d.isula(['images', '-q', '--no-trunc', ...args]);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout.split('\n').filter(Boolean).sort();
}

async function listJson(d: TestDaemon, filters: unknown): Promise<{ status: number; body: string; images: { Id: string; RepoTags: string[] }[] }> {
  const r = await httpRequest(d.socket, 'GET', `/v1.41/images/json?filters=${encodeURIComponent(JSON.stringify(filters))}`);
  return { status: r.status, body: r.body, images: r.status === 200 ? JSON.parse(r.body) as { Id: string; RepoTags: string[] }[] : [] };
}

const sorted = (xs: string[]) => [...xs].sort();

test('images filters by reference glob, before/since, label and dangling, and rejects unknown filters', async (t) => {
  const d = await daemonWith(t, [...['busybox', 'shared', 'layered'].map((n) => path.join(IMAGES_DIR, `${n}.docker.tar`)), newerArchive]);
  const all = sorted([id('busybox'), id('shared'), id('layered'), newerId]);
  assert.deepEqual(await ids(d, []), all);

  // reference: a glob on the familiar name or name:tag; the positional argument is the same filter.
  assert.deepEqual(await ids(d, ['busy*']), [id('busybox')]);
  assert.deepEqual(await ids(d, ['-f', 'reference=busybox:lat*']), [id('busybox')]);
  assert.deepEqual(await ids(d, ['-f', 'reference=busybox']), [id('busybox')]);
  assert.deepEqual(await ids(d, ['-f', 'reference=busybox:old*']), []);
  assert.deepEqual(await ids(d, ['-f', 'reference=shared', '-f', 'reference=lay?red']), sorted([id('shared'), id('layered')]));
  // Both forms of the filters JSON.
  for (const filters of [{ reference: ['sh*'] }, { reference: { 'sh*': true } }]) {
    const r = await listJson(d, filters);
    assert.equal(r.status, 200, r.body);
    assert.deepEqual(r.images.map((i) => i.RepoTags), [['shared:latest']]);
  }

  // before/since compare creation times with the named image's; it must exist.
  assert.deepEqual(await ids(d, ['-f', 'since=busybox']), [newerId]);
  assert.deepEqual(await ids(d, ['-f', `before=${newerId.slice(7, 19)}`]), sorted([id('busybox'), id('shared'), id('layered')]));
  assert.deepEqual(await ids(d, ['-f', 'before=busybox']), []);
  const missing = await d.isula(['images', '-f', 'since=nosuchimage']);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /No such image: nosuchimage/);
  assert.equal((await listJson(d, { before: ['nosuchimage'] })).status, 404);

  // label reads the image config.
  assert.deepEqual(await ids(d, ['-f', 'label=org.example.tier']), [newerId]);
  assert.deepEqual(await ids(d, ['-f', 'label=org.example.tier=test']), [newerId]);
  assert.deepEqual(await ids(d, ['-f', 'label=org.example.tier=prod']), []);

  // An unknown key is a 400 naming it; isula exits 1.
  const unknown = await d.isula(['images', '-f', 'colour=red']);
  assert.equal(unknown.code, 1);
  assert.match(unknown.stderr, /colour/);
  const bad = await listJson(d, { colour: ['red'] });
  assert.equal(bad.status, 400);
  assert.equal((JSON.parse(bad.body) as { code: string }).code, 'API_BAD_REQUEST');
  assert.equal((await listJson(d, { dangling: ['maybe'] })).status, 400);
  assert.equal((await d.isula(['images', '-f', 'dangling'])).code, 1, 'a filter without =value');

  // Moving busybox:latest to the shared image leaves the busybox image untagged: dangling.
  const tag = await d.isula(['tag', 'shared', 'busybox:latest']);
  assert.equal(tag.code, 0, tag.stderr);
  assert.deepEqual(await ids(d, ['-f', 'dangling=true']), [id('busybox')]);
  assert.deepEqual(await ids(d, ['-f', 'dangling=false']), sorted([id('shared'), id('layered'), newerId]));
  // The reference filter never shows an untagged image.
  assert.deepEqual(await ids(d, ['busybox']), [id('shared')]);
  const dangling = await d.isula(['images', '-f', 'dangling=true']);
  assert.match(dangling.stdout, new RegExp(`^<none> +<none> +${id('busybox').slice(7, 19)} `, 'm'));
});

test('images --format renders Go-template fields, with a header row for table, JSON for {{json .}}, and names an unknown field', async (t) => {
  const d = await daemonWith(t, ['busybox', 'shared'].map((n) => path.join(IMAGES_DIR, `${n}.docker.tar`)));

  const table = await d.isula(['images', '--format', 'table {{.Repository}}\\t{{.Tag}}\\t{{.ID}}']);
  assert.equal(table.code, 0, table.stderr);
  const lines = table.stdout.trimEnd().split('\n');
  assert.match(lines[0] ?? '', /^REPOSITORY +TAG +IMAGE ID$/);
  assert.deepEqual(sorted(lines.slice(1).map((l) => l.split(/ +/).join(' '))), [
    `busybox latest ${id('busybox').slice(7, 19)}`,
    `shared latest ${id('shared').slice(7, 19)}`,
  ]);

  const plain = await d.isula(['images', '--format', '{{.Repository}}:{{.Tag}} {{.Size}}', '--no-trunc']);
  assert.equal(plain.code, 0, plain.stderr);
  assert.deepEqual(sorted(plain.stdout.trimEnd().split('\n').map((l) => l.split(' ')[0] ?? '')), ['busybox:latest', 'shared:latest'], 'no header');
  assert.match(plain.stdout, /^busybox:latest \d+(\.\d+)?[kM]B$/m);

  const json = await d.isula(['images', '--format', '{{json .}}', 'busybox']);
  assert.equal(json.code, 0, json.stderr);
  const row = JSON.parse(json.stdout) as Record<string, string>;
  assert.equal(row['Repository'], 'busybox');
  assert.equal(row['Tag'], 'latest');
  assert.equal(row['ID'], id('busybox').slice(7, 19));
  assert.match(row['CreatedAt'] ?? '', /^2023-11-1[45] \d\d:\d\d:\d\d [+-]\d{4} /);
  assert.match(row['CreatedSince'] ?? '', / ago$/);

  const quiet = await d.isula(['images', '-q']);
  assert.deepEqual(sorted(quiet.stdout.trim().split('\n')), sorted([id('busybox'), id('shared')].map((x) => x.slice(7, 19))));

  // `image ls` is `images`.
  assert.equal((await d.isula(['image', 'ls', '--format', '{{.ID}}', 'shared'])).stdout, `${id('shared').slice(7, 19)}\n`);

  const unknown = await d.isula(['images', '--format', '{{.Colour}}']);
  assert.equal(unknown.code, 1);
  assert.match(unknown.stderr, /Colour/);
  assert.equal(unknown.stdout, '');
});

test('image prune removes only dangling images, -a every unused one, and refuses without -f', async (t) => {
  const d = await daemonWith(t, ['busybox', 'shared'].map((n) => path.join(IMAGES_DIR, `${n}.docker.tar`)));
  const tag = await d.isula(['tag', 'shared', 'busybox:latest']);
  assert.equal(tag.code, 0, tag.stderr);

  const refused = await d.isula(['image', 'prune']);
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /-f/);
  assert.deepEqual(await ids(d, []), sorted([id('busybox'), id('shared')]));

  const pruned = await d.isula(['image', 'prune', '-f']);
  assert.equal(pruned.code, 0, pruned.stderr);
  assert.match(pruned.stdout, /^Deleted Images:$/m);
  assert.match(pruned.stdout, new RegExp(`^deleted: ${id('busybox')}$`, 'm'));
  assert.doesNotMatch(pruned.stdout, /untagged:/);
  // Its one layer is shared's base layer, which stays: nothing left the disk.
  assert.match(pruned.stdout, /^Total reclaimed space: 0B$/m);
  assert.deepEqual(await ids(d, []), [id('shared')]);

  // Nothing dangling left: an empty report.
  const again = await httpRequest(d.socket, 'POST', '/v1.41/images/prune');
  assert.equal(again.status, 200, again.body);
  assert.deepEqual(JSON.parse(again.body), { ImagesDeleted: [], SpaceReclaimed: 0 });

  const all = await d.isula(['image', 'prune', '-a', '-f']);
  assert.equal(all.code, 0, all.stderr);
  assert.match(all.stdout, /^untagged: shared:latest$/m);
  assert.match(all.stdout, /^untagged: busybox:latest$/m);
  assert.match(all.stdout, new RegExp(`^deleted: ${id('shared')}$`, 'm'));
  assert.match(all.stdout, /^Total reclaimed space: [1-9][\d.]*[kM]B$/m);
  assert.deepEqual(await ids(d, []), []);
  assert.deepEqual(await fs.readdir(path.join(d.graph, 'storage/layers')), [], 'every layer freed');

  assert.equal((await httpRequest(d.socket, 'POST', `/v1.41/images/prune?filters=${encodeURIComponent('{"reference":["x"]}')}`)).status, 400);
});
