/**
 * Volumes end to end: named volumes keep data across container removal,
 * anonymous ones (from -v /path, --mount type=volume and an image's VOLUME)
 * go with rm -v, a volume in use cannot be removed, prune removes only
 * unused ones, a new volume gets the image's content, bad names refused.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { daemon, IMAGES_DIR, inspect, ok } from '../lib/containers.js';
import { craftImage } from '../lib/craft-image.js';
import { httpRequest } from '../lib/harness.js';

interface Mount { Type: string; Name?: string; Source: string; Destination: string; RW: boolean }

test('a named volume keeps its data across container removal; rm of a volume in use is refused', async (t) => {
  const d = await daemon(t);
  ok(await d.isula(['run', '--rm', '-v', 'keep:/data', 'busybox', 'sh', '-c', 'echo persisted > /data/file']));
  const out = ok(await d.isula(['run', '--rm', '-v', 'keep:/data', 'busybox', 'cat', '/data/file']));
  assert.equal(out.trim(), 'persisted');
  const vol = JSON.parse((await httpRequest(d.socket, 'GET', '/volumes/keep')).body) as { Name: string; Mountpoint: string; Driver: string };
  assert.equal(vol.Driver, 'local');
  assert.equal((await fs.readFile(path.join(vol.Mountpoint, 'file'), 'utf8')).trim(), 'persisted');

  ok(await d.isula(['run', '-d', '--name', 'user', '--mount', 'type=volume,source=keep,target=/mnt,readonly', 'busybox', 'sleep', '300']));
  const mounts = (await inspect<{ Mounts: Mount[] }>(d, 'user')).Mounts;
  assert.deepEqual(mounts.map((m) => [m.Type, m.Name, m.Destination, m.RW]), [['volume', 'keep', '/mnt', false]]);
  const ro = await d.isula(['exec', 'user', 'sh', '-c', 'echo x > /mnt/other']);
  assert.notEqual(ro.code, 0, 'a readonly volume mount is read-only');
  const refused = await httpRequest(d.socket, 'DELETE', '/volumes/keep');
  assert.equal(refused.status, 409, refused.body);
  assert.match(refused.body, /in use/);
  ok(await d.isula(['rm', '-f', 'user']));
  assert.equal((await httpRequest(d.socket, 'DELETE', '/volumes/keep')).status, 204);
  await assert.rejects(fs.access(vol.Mountpoint), 'the data dir is gone');
});

test('anonymous volumes from -v /path and --mount go with rm -v; without -v they stay, and prune removes only unused ones', async (t) => {
  const d = await daemon(t);
  const id = ok(await d.isula(['create', '--name', 'anon', '-v', '/scratch', '--mount', 'type=volume,target=/more', 'busybox', 'true'])).trim();
  const mounts = (await inspect<{ Mounts: Mount[] }>(d, id)).Mounts;
  assert.equal(mounts.length, 2);
  assert.ok(mounts.every((m) => m.Type === 'volume' && /^[0-9a-f]{64}$/.test(m.Name ?? '')), JSON.stringify(mounts));
  ok(await d.isula(['rm', '-v', 'anon']));
  const after = JSON.parse((await httpRequest(d.socket, 'GET', '/volumes')).body) as { Volumes: { Name: string }[] };
  for (const m of mounts) assert.ok(!after.Volumes.some((v) => v.Name === m.Name), `${m.Name} removed with rm -v`);

  ok(await d.isula(['create', '--name', 'kept', '-v', '/scratch', 'busybox', 'true']));
  const keptVol = (await inspect<{ Mounts: Mount[] }>(d, 'kept')).Mounts[0]?.Name ?? '';
  ok(await d.isula(['rm', 'kept']));
  ok(await d.isula(['create', '--name', 'holder', '-v', 'held:/h', 'busybox', 'true']));
  assert.equal((await httpRequest(d.socket, 'POST', '/volumes/create', JSON.stringify({ Name: 'loose' }), { 'Content-Type': 'application/json' })).status, 201);
  const pruned = JSON.parse((await httpRequest(d.socket, 'POST', '/volumes/prune')).body) as { VolumesDeleted: string[] };
  assert.deepEqual(pruned.VolumesDeleted.sort(), [keptVol, 'loose'].sort(), 'prune removes the unused ones');
  const left = JSON.parse((await httpRequest(d.socket, 'GET', '/volumes')).body) as { Volumes: { Name: string }[] };
  assert.deepEqual(left.Volumes.map((v) => v.Name), ['held'], 'a volume a container refers to stays');
  // The same through isula volume.
  assert.match(ok(await d.isula(['volume', 'ls'])), /^local\s+held$/m);
  assert.equal(ok(await d.isula(['volume', 'create', 'viacli'])).trim(), 'viacli');
  const inUse = await d.isula(['volume', 'rm', 'held']);
  assert.notEqual(inUse.code, 0);
  assert.match(inUse.stderr, /in use/);
  assert.match(ok(await d.isula(['volume', 'prune', '-f'])), /Deleted Volumes:\nviacli/);
});

test('a new volume gets the image\'s content at its path; a volume name with / is refused and leaves nothing', async (t) => {
  const d = await daemon(t);
  const out = ok(await d.isula(['run', '--rm', '-v', 'etcvol:/etc', 'busybox', 'ls', '/etc']));
  assert.match(out, /passwd/, 'the image\'s /etc was copied into the new volume');
  const vol = JSON.parse((await httpRequest(d.socket, 'GET', '/volumes/etcvol')).body) as { Mountpoint: string };
  assert.ok((await fs.readdir(vol.Mountpoint)).includes('passwd'));
  const bad = await d.isula(['run', '--rm', '-v', 'a/b:/data', 'busybox', 'true']);
  assert.notEqual(bad.code, 0);
  const created = await httpRequest(d.socket, 'POST', '/volumes/create', JSON.stringify({ Name: 'a/b' }), { 'Content-Type': 'application/json' });
  assert.equal(created.status, 400, created.body);
  assert.match(created.body, /invalid characters/);
  const list = JSON.parse((await httpRequest(d.socket, 'GET', '/volumes')).body) as { Volumes: { Name: string }[] };
  assert.deepEqual(list.Volumes.map((v) => v.Name), ['etcvol']);
  assert.equal(JSON.parse((await httpRequest(d.socket, 'GET', '/containers/json?all=1')).body).length, 0, 'no half-created container');
});

test('an image VOLUME gets an anonymous volume with the image\'s content, removed by rm -v', async (t) => {
  const d = await daemon(t);
  const archive = await craftImage({ from: path.join(IMAGES_DIR, 'busybox.docker.tar'), tag: 'withvol:1', out: path.join(d.root, 'images'), config: (c) => { c.Volumes = { '/etc': {} }; } });
  ok(await d.isula(['load', '-i', archive]), 'load the crafted image');
  const imagePasswd = ok(await d.isula(['run', '--rm', 'busybox', 'cat', '/etc/passwd']));
  assert.match(imagePasswd, /^root:/m, 'fixture: busybox has /etc/passwd');

  ok(await d.isula(['run', '-d', '--name', 'imgvol', 'withvol:1', 'sleep', '300']));
  const imgvol = await inspect<{ Mounts: Mount[]; Config: { Volumes?: Record<string, unknown> } }>(d, 'imgvol');
  assert.deepEqual(imgvol.Config.Volumes, { '/etc': {} }, "inspect's Config.Volumes lists the image's VOLUME, as Docker's");
  const mounts = imgvol.Mounts;
  assert.equal(mounts.length, 1, JSON.stringify(mounts));
  const [m] = mounts as [Mount];
  assert.equal(m.Type, 'volume');
  assert.match(m.Name ?? '', /^[0-9a-f]{64}$/, 'an anonymous volume');
  assert.equal(m.Destination, '/etc');
  assert.equal(m.RW, true);
  const vols = JSON.parse((await httpRequest(d.socket, 'GET', '/volumes')).body) as { Volumes: { Name: string }[] };
  assert.deepEqual(vols.Volumes.map((v) => v.Name), [m.Name], 'GET /volumes lists it');
  const vol = JSON.parse((await httpRequest(d.socket, 'GET', `/volumes/${m.Name}`)).body) as { Mountpoint: string };
  assert.equal(m.Source, vol.Mountpoint, 'inspect\'s Source is the volume\'s Mountpoint');

  // Copy-up: the image's /etc is in the volume on the host, and the container sees the volume.
  const hostFiles = await fs.readdir(vol.Mountpoint);
  assert.ok(hostFiles.includes('passwd') && hostFiles.includes('group'), hostFiles.join(' '));
  assert.equal(await fs.readFile(path.join(vol.Mountpoint, 'passwd'), 'utf8'), imagePasswd);
  ok(await d.isula(['exec', 'imgvol', 'sh', '-c', 'echo kept > /etc/marker && echo extra:x:1:1::/:/bin/sh >> /etc/passwd']));
  assert.equal((await fs.readFile(path.join(vol.Mountpoint, 'marker'), 'utf8')).trim(), 'kept', 'a write in /etc lands in the volume');

  // Across a restart of the container: the same volume, the data kept, no second copy-up over it.
  ok(await d.isula(['stop', '-t', '0', 'imgvol']));
  ok(await d.isula(['start', 'imgvol']));
  assert.deepEqual((await inspect<{ Mounts: Mount[] }>(d, 'imgvol')).Mounts.map((x) => x.Name), [m.Name]);
  assert.equal(ok(await d.isula(['exec', 'imgvol', 'cat', '/etc/marker'])).trim(), 'kept');
  assert.match(ok(await d.isula(['exec', 'imgvol', 'cat', '/etc/passwd'])), /^extra:/m, 'the volume is not copied over again');
  const again = JSON.parse((await httpRequest(d.socket, 'GET', '/volumes')).body) as { Volumes: { Name: string }[] };
  assert.deepEqual(again.Volumes.map((v) => v.Name), [m.Name], 'no new volume at restart');

  // rm without -v keeps an image volume; rm -v removes it.
  const keptId = ok(await d.isula(['create', '--name', 'plain', 'withvol:1', 'true'])).trim();
  const keptVol = (await inspect<{ Mounts: Mount[] }>(d, keptId)).Mounts[0]?.Name ?? '';
  assert.match(keptVol, /^[0-9a-f]{64}$/);
  assert.notEqual(keptVol, m.Name, 'each container gets its own anonymous volume');
  ok(await d.isula(['rm', 'plain']));
  ok(await d.isula(['rm', '-f', '-v', 'imgvol']));
  const left = JSON.parse((await httpRequest(d.socket, 'GET', '/volumes')).body) as { Volumes: { Name: string }[] };
  assert.deepEqual(left.Volumes.map((v) => v.Name), [keptVol], 'rm -v removed the image volume; plain rm kept its one');
  assert.equal((await httpRequest(d.socket, 'GET', `/volumes/${m.Name}`)).status, 404);
  await assert.rejects(fs.access(vol.Mountpoint), 'the volume\'s data dir is gone');
});
