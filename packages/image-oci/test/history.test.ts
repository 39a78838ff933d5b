/**
 * Docker's image history from the image config: newest first, each entry
 * not marked empty_layer takes the next layer (and its size), the image's
 * own entry carries its id and tags. Archives are busybox's from
 * scripts/make-test-images.sh with the config's history rewritten.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { pino } from 'pino';
import { OciImageDriver } from '../src/driver.js';
import { ImageStore } from '../src/store.js';

const run = promisify(execFile);
const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../..');
const IMAGES_DIR = process.env['ISULA_TEST_IMAGES'] ?? '/var/cache/isula/test-images';
const log = pino({ level: 'silent' });
const signal = AbortSignal.timeout(60_000);

before(async () => {
  await run('bash', [path.join(REPO, 'scripts/make-test-images.sh'), IMAGES_DIR], { timeout: 120_000 });
});

/** busybox.docker.tar with `history` in its config, tagged `tag`: the config renamed after its new digest. */
async function withHistory(dir: string, tag: string, history: unknown[]): Promise<string> {
  const work = await fs.mkdtemp(path.join(dir, 'archive-'));
  await run('tar', ['-xf', path.join(IMAGES_DIR, 'busybox.docker.tar'), '-C', work]);
  const manifest = JSON.parse(await fs.readFile(path.join(work, 'manifest.json'), 'utf8')) as [{ Config: string; RepoTags: string[] }];
  const config = JSON.parse(await fs.readFile(path.join(work, manifest[0].Config), 'utf8')) as Record<string, unknown>;
  const text = JSON.stringify({ ...config, history });
  const name = `${createHash('sha256').update(text).digest('hex')}.json`;
  await fs.rm(path.join(work, manifest[0].Config), { force: true });
  await fs.writeFile(path.join(work, name), text);
  await fs.rm(path.join(work, 'repositories'), { force: true });
  await fs.writeFile(path.join(work, 'manifest.json'), JSON.stringify([{ ...manifest[0], Config: name, RepoTags: [tag] }]));
  const archive = path.join(dir, `${tag.replace(/[:/]/g, '_')}.tar`);
  await run('tar', ['-cf', archive, '-C', work, '.']);
  return archive;
}

test('history: newest first, empty layers sized 0, the layer size on the entry that made it, id and tags on top', async (t) => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'isula-history-'));
  const store = await ImageStore.open(path.join(dir, 'graph'), log);
  t.after(() => fs.rm(dir, { recursive: true, force: true }));
  const driver = new OciImageDriver(store);
  await store.load(await withHistory(dir, 'hist:1', [
    { created: '2024-01-02T03:04:05Z', created_by: '/bin/sh -c #(nop) ADD file:abc in /', comment: 'base' },
    { created: '2024-01-02T03:04:06Z', created_by: '/bin/sh -c #(nop)\tCMD ["sh"]', empty_layer: true },
    { created_by: 'no date', empty_layer: true },
  ]));
  const ref = await driver.resolve('hist:1', { signal });
  assert.ok(ref);
  const layerSize = (await driver.inspect(ref, { signal })).sizeBytes;
  const items = await driver.history(ref, { signal });
  assert.deepEqual(items, [
    { Id: ref.id, Created: 0, CreatedBy: 'no date', Tags: ['hist:1'], Size: 0, Comment: '' },
    { Id: '<missing>', Created: Date.UTC(2024, 0, 2, 3, 4, 6) / 1000, CreatedBy: '/bin/sh -c #(nop)\tCMD ["sh"]', Tags: null, Size: 0, Comment: '' },
    { Id: '<missing>', Created: Date.UTC(2024, 0, 2, 3, 4, 5) / 1000, CreatedBy: '/bin/sh -c #(nop) ADD file:abc in /', Tags: null, Size: layerSize, Comment: 'base' },
  ]);
  assert.ok(layerSize > 1_000_000, 'the busybox layer');
});

test('history: none in the config is an empty history; more non-empty entries than layers is an error naming the image', async (t) => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'isula-history-'));
  const store = await ImageStore.open(path.join(dir, 'graph'), log);
  t.after(() => fs.rm(dir, { recursive: true, force: true }));
  const driver = new OciImageDriver(store);
  await store.load(await withHistory(dir, 'none:1', []));
  await store.load(await withHistory(dir, 'bad:1', [{ created_by: 'one' }, { created_by: 'two' }]));
  const none = await driver.resolve('none:1', { signal });
  const bad = await driver.resolve('bad:1', { signal });
  assert.ok(none && bad);
  assert.deepEqual(await driver.history(none, { signal }), []);
  await assert.rejects(driver.history(bad, { signal }), (e: { code?: string; message?: string }) =>
    e.code === 'IMAGE_STORE_CORRUPT' && (e.message ?? '').includes('too many non-empty layers') && (e.message ?? '').includes(bad.id.replace(/^sha256:/, '').slice(0, 12)));
});
