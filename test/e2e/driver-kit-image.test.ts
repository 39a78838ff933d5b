/**
 * The kit's image suite against our two image drivers: @isula/image-oci (an
 * image loaded from a docker-archive, busybox with a config of our own so
 * that env, working directory and command are visibly the image's) and
 * @isula/image-external (a directory prepared by hand, `--external-rootfs`).
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import fsSync from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { TestContext } from 'node:test';
import { promisify } from 'node:util';
import { imageSuite, type KitImage } from '@isula/driver-tests';
import { newDaemon, type TestDaemon } from '../lib/harness.js';
import { ok, removeAll, repoBusybox } from '../lib/containers.js';

const run = promisify(execFile);
const PATH_ENV = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

const skip = process.getuid?.() !== 0 ? 'needs root' : false;
if (skip !== false && process.env['CI'] === 'true') throw new Error(`image driver kit e2e: ${skip}`);

/** A daemon with these image plugins and runc, nothing loaded; teardown on `t`. */
async function daemonWith(t: TestContext, plugins: string[]): Promise<TestDaemon> {
  const d = await newDaemon(t, { beforeStop: removeAll });
  await d.writeConfig({ plugins: [...plugins, '@isula/driver-runc'], 'default-runtime': 'runc' });
  await d.start();
  return d;
}

/** The config the image-oci run expects the container to get from its image. */
const OCI_CONFIG = {
  env: [PATH_ENV, 'KIT_FROM_IMAGE=yes'],
  workingDir: '/tmp',
  cmd: { args: ['sh', '-c', 'echo kit-cmd $KIT_FROM_IMAGE'], output: /^kit-cmd yes$/m },
};

let configured: Promise<{ archive: string; id: string }> | undefined;
/**
 * busybox re-tagged `kit/config:v1` with OCI_CONFIG in its config (busybox's
 * own has only PATH and `sh`): the repo's archive unpacked with GNU tar, its
 * config rewritten under its new digest, packed again. Once per process.
 */
function configuredBusybox(): Promise<{ archive: string; id: string }> {
  configured ??= (async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'isula-kit-image-'));
    process.once('exit', () => fsSync.rmSync(dir, { recursive: true, force: true })); // shared by both suites: goes with the process
    const src = path.join(dir, 'src');
    await fs.mkdir(src);
    await run('tar', ['-xf', await repoBusybox(), '-C', src]);
    const [manifest] = JSON.parse(await fs.readFile(path.join(src, 'manifest.json'), 'utf8')) as { Config: string; Layers: string[] }[];
    if (manifest === undefined) throw new Error('busybox archive: manifest.json lists no image');
    const config = JSON.parse(await fs.readFile(path.join(src, manifest.Config), 'utf8')) as { config: Record<string, unknown> };
    config.config = { ...config.config, Env: OCI_CONFIG.env, WorkingDir: OCI_CONFIG.workingDir, Cmd: OCI_CONFIG.cmd.args };
    const bytes = Buffer.from(JSON.stringify(config));
    const hex = createHash('sha256').update(bytes).digest('hex');
    await fs.writeFile(path.join(src, `${hex}.json`), bytes);
    await fs.writeFile(path.join(src, 'manifest.json'), JSON.stringify([{ Config: `${hex}.json`, RepoTags: ['kit/config:v1'], Layers: manifest.Layers }]));
    const archive = path.join(dir, 'kit-config.docker.tar');
    await run('tar', ['-cf', archive, '-C', src, 'manifest.json', `${hex}.json`, ...manifest.Layers]);
    return { archive, id: `sha256:${hex}` };
  })();
  return configured;
}

imageSuite('@isula/image-oci', {
  skip,
  daemon: (t) => daemonWith(t, ['@isula/image-oci']),
  image: async (_t, d): Promise<KitImage> => {
    const { archive, id } = await configuredBusybox();
    ok(await d.isula(['load', '-i', archive]), 'load kit/config:v1');
    return {
      args: ['kit/config:v1'],
      graphDriver: 'overlay2',
      id,
      missing: { args: ['--pull', 'never', 'kit/nosuch:v1'], error: /No such image: kit\/nosuch:v1/ },
      config: OCI_CONFIG,
      list: { repository: 'kit/config', tag: 'v1' },
    };
  },
});

/** A root filesystem a user prepared by hand: static busybox, the applets the suite runs, /etc/passwd. */
async function prepareRootfs(t: TestContext): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'isula-kit-rootfs-'));
  t.after(() => fs.rm(dir, { recursive: true, force: true }));
  for (const sub of ['bin', 'etc', 'tmp']) await fs.mkdir(path.join(dir, sub));
  await fs.copyFile('/bin/busybox', path.join(dir, 'bin/busybox'));
  await fs.chmod(path.join(dir, 'bin/busybox'), 0o755);
  for (const a of ['sh', 'cat', 'ls', 'sleep', 'env', 'true', 'echo']) await fs.symlink('busybox', path.join(dir, 'bin', a));
  await fs.writeFile(path.join(dir, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\n');
  return fs.realpath(dir);
}

imageSuite('@isula/image-external', {
  skip,
  daemon: (t) => daemonWith(t, ['@isula/image-oci', '@isula/image-external']),
  image: async (t): Promise<KitImage> => {
    const dir = await prepareRootfs(t);
    return {
      args: ['--external-rootfs', dir, 'sysimg'],
      graphDriver: 'external',
      id: dir,
      missing: { args: ['--external-rootfs', path.join(dir, 'nope'), 'sysimg'], error: /--external-rootfs .*nope: no such directory/ },
      // No image config (the driver's inspect gives `{}`): core's default PATH, `/`, and no default command.
      config: { env: [PATH_ENV] },
      list: { skip: 'external root filesystems are not images: isula images does not list them (packages/image-external/README.md)' },
      roots: [dir],
    };
  },
});
