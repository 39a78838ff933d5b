import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { buildBusyboxArchive, BUSYBOX_APPLETS } from '../src/index.js';

const run = promisify(execFile);
const hasBusybox = await fs.access('/bin/busybox').then(() => true, () => false);

test('the kit builds a docker-archive of busybox:latest that GNU tar reads: manifest, config, one layer with the applets', { skip: hasBusybox ? false : 'needs /bin/busybox (busybox-static)' }, async (t) => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'isula-kit-bb-'));
  t.after(() => fs.rm(dir, { recursive: true, force: true }));
  const out = await buildBusyboxArchive(path.join(dir, 'busybox.docker.tar'));
  await run('tar', ['-xf', out, '-C', dir]);
  const [entry] = JSON.parse(await fs.readFile(path.join(dir, 'manifest.json'), 'utf8')) as { Config: string; RepoTags: string[]; Layers: string[] }[];
  assert.deepEqual(entry?.RepoTags, ['busybox:latest']);
  const config = JSON.parse(await fs.readFile(path.join(dir, entry?.Config ?? ''), 'utf8')) as { config: { Cmd: string[] }; rootfs: { diff_ids: string[] } };
  assert.deepEqual(config.config.Cmd, ['sh']);
  assert.equal(config.rootfs.diff_ids[0], `sha256:${path.basename(entry?.Layers[0] ?? '', '.tar')}`, 'the layer file is named by its diff id');
  const listing = (await run('tar', ['-tvf', path.join(dir, entry?.Layers[0] ?? '')])).stdout;
  assert.match(listing, /^-rwxr-xr-x root\/root +\d+ 2023-11-1[45] \S+ bin\/busybox$/m);
  assert.match(listing, /^drwxrwxrwt root\/root .* tmp\/$/m, '/tmp is 1777');
  assert.match(listing, /^drwx------ root\/root .* root\/$/m);
  for (const a of ['sh', 'sleep', '[']) assert.match(listing, new RegExp(`^l.* bin/${a.replace('[', '\\[')} -> busybox$`, 'm'));
  assert.equal(listing.split('\n').filter((l) => l.startsWith('l')).length, BUSYBOX_APPLETS.length);
  const again = await buildBusyboxArchive(path.join(dir, 'again.tar'));
  assert.deepEqual(await fs.readFile(again), await fs.readFile(out), 'the same binary gives the same archive');
});
