import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { assertNoTrace, containerDaemon, inspect, ok } from '../lib/containers.js';

/** A rootfs a user prepared by hand: static busybox and a few applets, no image involved. */
async function prepareRootfs(): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'isula-extroot-'));
  await fs.mkdir(path.join(dir, 'bin'));
  await fs.mkdir(path.join(dir, 'etc'));
  await fs.copyFile('/bin/busybox', path.join(dir, 'bin/busybox'));
  await fs.chmod(path.join(dir, 'bin/busybox'), 0o755);
  for (const a of ['sh', 'echo', 'cat', 'sleep', 'ls']) await fs.symlink('busybox', path.join(dir, 'bin', a));
  await fs.writeFile(path.join(dir, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\n');
  await fs.writeFile(path.join(dir, 'notexec'), 'plain file\n');
  return dir;
}

interface Inspected { Id: string; Image: string; GraphDriver: { Name: string; Data: unknown }; State: { Status: string } }

test('--external-rootfs runs a container on a prepared directory as-is, validates it, and rm never deletes it', async (t) => {
  const d = await containerDaemon(t, 'runc', { plugins: ['@isula/image-oci', '@isula/image-external', '@isula/driver-runc'] });
  const root = await prepareRootfs();
  t.after(() => fs.rm(root, { recursive: true, force: true }));

  const r = await d.isula(['run', '--rm', '--external-rootfs', root, 'sysimg', 'sh', '-c', 'echo from-container > /marker; cat /marker; ls /bin | wc -l 2>/dev/null || true']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^from-container\n/);
  assert.equal(await fs.readFile(path.join(root, 'marker'), 'utf8'), 'from-container\n', 'writes land in the directory itself');

  const id = ok(await d.isula(['create', '--name', 'sys', '--external-rootfs', root, 'sysimg', 'sleep', '100'])).trim();
  ok(await d.isula(['start', 'sys']));
  const info = await inspect<Inspected>(d, 'sys');
  assert.equal(info.State.Status, 'running');
  assert.equal(info.Image, await fs.realpath(root));
  assert.equal(info.GraphDriver.Name, 'external');
  // The image store knows nothing of it; images stay as they were.
  assert.doesNotMatch(ok(await d.isula(['images'])), /sysimg/);
  // No layers to compare with: diff is refused by name, as docker has no such containers.
  const diff = await d.isula(['diff', 'sys']);
  assert.equal(diff.code, 1);
  assert.match(diff.stderr, /diff is not supported for containers of the external image format/);
  ok(await d.isula(['rm', '-f', 'sys']));
  await assertNoTrace(d, id);
  assert.deepEqual((await fs.readdir(path.join(root, 'bin'))).sort(), ['busybox', 'cat', 'echo', 'ls', 'sh', 'sleep'], 'rm leaves the directory alone');

  const file = path.join(root, 'notexec');
  const cases: { args: string[]; code: number; err: RegExp }[] = [
    { args: ['--external-rootfs', path.join(root, 'nope'), 'x', 'sh'], code: 125, err: /--external-rootfs .*nope: no such directory/ },
    { args: ['--external-rootfs', file, 'x', 'sh'], code: 125, err: /notexec: not a directory/ },
    { args: ['--external-rootfs', 'relative/dir', 'x', 'sh'], code: 125, err: /must be an absolute path/ },
    { args: ['--external-rootfs', '/', 'x', 'sh'], code: 125, err: /host's root directory/ },
    { args: ['--external-rootfs', root, 'x', 'nosuchcmd'], code: 127, err: /command "nosuchcmd" not found/ },
    { args: ['--external-rootfs', root, 'x', '/notexec'], code: 126, err: /"\/notexec" is not executable/ },
  ];
  for (const c of cases) {
    const res = await d.isula(['run', '--rm', ...c.args]);
    assert.equal(res.code, c.code, `${c.args.join(' ')}: ${res.stderr}`);
    assert.match(res.stderr, c.err);
  }
  assert.equal(ok(await d.isula(['ps', '-aq'])), '', 'a refused create leaves no container');
  assert.deepEqual(await fs.readdir(path.join(d.graph, 'containers')), []);
});
