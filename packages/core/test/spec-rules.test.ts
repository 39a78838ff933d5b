/**
 * The spec builder's Docker rules one by one: command and environment
 * merging, user resolution inside the rootfs, resource checks, ulimit
 * parsing and seccomp conversion.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { isIsulaError } from '../src/errors.js';
import {
  parseSeccompProfile,
  parseUlimit,
  resolveArgs,
  resolveEnv,
  resolveUser,
  resolveUserInRootfs,
  resourcesFromHostConfig,
  seccompFromProfile,
  validateHostConfig,
} from '../src/spec/index.js';
import type { HostConfig } from '../src/container/docker-types.js';

const invalid = (e: unknown): boolean => isIsulaError(e, 'CONTAINER_CONFIG_INVALID');

// Docker's documented semantics (moby daemon/commit.go merge + mergeAndVerifyConfig).
const argCases: Array<{ name: string; config: { Entrypoint?: string[] | null; Cmd?: string[] | null }; image: { entrypoint?: string[]; cmd?: string[] }; args?: string[] }> = [
  { name: 'image entrypoint and cmd', config: {}, image: { entrypoint: ['/ep'], cmd: ['a'] }, args: ['/ep', 'a'] },
  { name: 'null entrypoint keeps the image one', config: { Entrypoint: null, Cmd: null }, image: { entrypoint: ['/ep'], cmd: ['a'] }, args: ['/ep', 'a'] },
  { name: 'Cmd replaces the image cmd', config: { Cmd: ['b', 'c'] }, image: { entrypoint: ['/ep'], cmd: ['a'] }, args: ['/ep', 'b', 'c'] },
  { name: 'Entrypoint replaces the image one and drops the image cmd', config: { Entrypoint: ['/x'] }, image: { entrypoint: ['/ep'], cmd: ['a'] }, args: ['/x'] },
  { name: 'Entrypoint and Cmd both given', config: { Entrypoint: ['/x', '-v'], Cmd: ['b'] }, image: { entrypoint: ['/ep'], cmd: ['a'] }, args: ['/x', '-v', 'b'] },
  { name: 'empty Entrypoint clears the image one and keeps the image cmd', config: { Entrypoint: [] }, image: { entrypoint: ['/ep'], cmd: ['a'] }, args: ['a'] },
  { name: '--entrypoint "" with a Cmd runs the Cmd', config: { Entrypoint: [''], Cmd: ['b'] }, image: { entrypoint: ['/ep'], cmd: ['a'] }, args: ['b'] },
  { name: '--entrypoint "" without a Cmd has no command', config: { Entrypoint: [''] }, image: { entrypoint: ['/ep'], cmd: ['a'] } },
  { name: 'image cmd only', config: {}, image: { cmd: ['/bin/sh', '-c', 'x'] }, args: ['/bin/sh', '-c', 'x'] },
  { name: 'nothing at all', config: {}, image: {} },
];

for (const c of argCases) {
  test(`args: ${c.name}`, () => {
    if (c.args === undefined) assert.throws(() => resolveArgs(c.config, c.image), invalid);
    else assert.deepEqual(resolveArgs(c.config, c.image), c.args);
  });
}

test('env: defaults, then image env, then Config.Env; later wins by key, in place; KEY alone unsets', () => {
  const env = resolveEnv({
    imageEnv: ['PATH=/img/bin', 'A=image', 'B=image', 'GONE=1'],
    configEnv: ['B=user', 'C=user', 'GONE', 'C=again'],
    hostname: 'h1',
    tty: true,
  });
  assert.deepEqual(env, ['PATH=/img/bin', 'HOSTNAME=h1', 'TERM=xterm', 'A=image', 'B=user', 'C=again']);
  const bare = resolveEnv({ hostname: 'h2', tty: false });
  assert.deepEqual(bare, ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'HOSTNAME=h2']);
});

const PASSWD = 'root:x:0:0:root:/root:/bin/sh\nbin:x:2:2::/:/bin/false\napp:x:1000:1000::/home/app:/bin/sh\n# comment\n';
const GROUP = 'root:x:0:root\nwheel:x:10:root,app\nstaff:x:50:app\napp:x:1000:\n';

test('user: names and numbers through passwd and group, as runc resolves them', () => {
  assert.deepEqual(resolveUser('', PASSWD, GROUP), { uid: 0, gid: 0, additionalGids: [0, 10] });
  assert.deepEqual(resolveUser('app', PASSWD, GROUP), { uid: 1000, gid: 1000, additionalGids: [1000, 10, 50] });
  assert.deepEqual(resolveUser('1000', PASSWD, GROUP), { uid: 1000, gid: 1000, additionalGids: [1000, 10, 50] });
  assert.deepEqual(resolveUser('app:staff', PASSWD, GROUP), { uid: 1000, gid: 50, additionalGids: [50] });
  assert.deepEqual(resolveUser('4000', PASSWD, GROUP), { uid: 4000, gid: 0, additionalGids: [0] }, 'a numeric uid need not exist');
  assert.deepEqual(resolveUser('4000:4001', PASSWD, GROUP), { uid: 4000, gid: 4001, additionalGids: [4001] });
  assert.deepEqual(resolveUser('bin', PASSWD, GROUP, ['staff', '777']), { uid: 2, gid: 2, additionalGids: [2, 50, 777] });
  assert.throws(() => resolveUser('nobody', PASSWD, GROUP), (e) => invalid(e) && /unable to find user nobody: no matching entries in passwd file/.test((e as Error).message));
  assert.throws(() => resolveUser('app:nogroup', PASSWD, GROUP), invalid);
  assert.throws(() => resolveUser('app', PASSWD, GROUP, ['nogroup']), invalid);
  assert.throws(() => resolveUser('app', undefined, undefined), invalid);
});

async function tempDir(t: TestContext): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'isula-spec-user-'));
  t.after(() => fs.rm(dir, { recursive: true, force: true }));
  return dir;
}

test('user: an /etc/passwd symlink pointing outside the rootfs is resolved inside it, never on the host', async (t) => {
  const dir = await tempDir(t);
  const rootfs = path.join(dir, 'rootfs');
  const outside = path.join(dir, 'outside');
  await fs.mkdir(path.join(rootfs, 'etc'), { recursive: true });
  await fs.mkdir(outside);
  await fs.writeFile(path.join(outside, 'passwd'), 'hostonly:x:4242:4242::/:/bin/sh\n');
  // An absolute link to the host file, and a relative one climbing out of the rootfs.
  await fs.symlink(path.join(outside, 'passwd'), path.join(rootfs, 'etc/passwd'));
  await assert.rejects(resolveUserInRootfs(rootfs, 'hostonly'), invalid);
  await fs.rm(path.join(rootfs, 'etc/passwd'));
  await fs.symlink('../../../../../../../../outside/passwd', path.join(rootfs, 'etc/passwd'));
  await assert.rejects(resolveUserInRootfs(rootfs, 'hostonly'), invalid);
  // The same absolute target, present inside the rootfs, is what gets read.
  await fs.mkdir(path.join(rootfs, 'outside'), { recursive: true });
  await fs.writeFile(path.join(rootfs, 'outside/passwd'), 'inside:x:7:7::/:/bin/sh\n');
  assert.equal((await resolveUserInRootfs(rootfs, 'inside')).uid, 7);
  // A link loop is a config error, not a hang.
  await fs.rm(path.join(rootfs, 'etc/passwd'));
  await fs.symlink('/etc/passwd', path.join(rootfs, 'etc/passwd'));
  await assert.rejects(resolveUserInRootfs(rootfs, 'root'), invalid);
  // A fifo is not read (it would block): no passwd, so only numeric users work.
  await fs.rm(path.join(rootfs, 'etc/passwd'));
  execFileSync('mkfifo', [path.join(rootfs, 'etc/passwd')]);
  assert.equal((await resolveUserInRootfs(rootfs, '5')).uid, 5);
  await assert.rejects(resolveUserInRootfs(rootfs, 'root'), invalid);
});

const MiB = 1024 * 1024;

test('resources: docker value checks reject bad memory, swap, cpu and blkio settings', () => {
  const bad: HostConfig[] = [
    { Memory: 4 * MiB },
    { Memory: 64 * MiB, MemorySwap: 32 * MiB },
    { MemorySwap: 64 * MiB },
    { Memory: 64 * MiB, MemoryReservation: 128 * MiB },
    { MemorySwappiness: 101 },
    { NanoCpus: 1e9, CpuQuota: 50000 },
    { NanoCpus: 1e9, CpuPeriod: 50000 },
    { NanoCpus: 1e12 },
    { CpuPeriod: 500 },
    { CpuQuota: 10 },
    { CpusetCpus: '0-' },
    { CpusetCpus: 'a' },
    { CpusetCpus: '0-4095' },
    { CpusetMems: '9' },
    { BlkioWeight: 5 },
    { BlkioWeight: 1001 },
    { OomScoreAdj: 1001 },
    { ShmSize: -1 },
    { RestartPolicy: { Name: 'always', MaximumRetryCount: 2 } },
    { RestartPolicy: { Name: 'sometimes' } },
    { CapAdd: ['CAP_NOPE'] },
    { Tmpfs: { '/run': 'size=1m,bogus' } },
    { DeviceCgroupRules: ['x 1:1 rwm'] },
    { SecurityOpt: ['seccomp'] },
    { Sysctls: { 'vm.swappiness': '1' } },
  ];
  for (const hc of bad) assert.throws(() => validateHostConfig(hc), invalid, JSON.stringify(hc));
  assert.throws(() => validateHostConfig({ Memory: 4 * MiB }), /Minimum memory limit allowed is 6MB/);
  for (const ok of [{}, { Memory: 6 * MiB }, { Memory: 64 * MiB, MemorySwap: -1 }, { CpusetCpus: '0', CpusetMems: '0' }, { RestartPolicy: { Name: 'on-failure', MaximumRetryCount: 5 } }, { BlkioWeight: 0 }] as HostConfig[]) {
    validateHostConfig(ok);
  }
});

test('resources: docker defaults for swap, pids and cpu shares', () => {
  const warnings: string[] = [];
  const r = resourcesFromHostConfig({ Memory: 64 * MiB, PidsLimit: 0, CpuShares: 1, CpuQuota: -1, CpuPeriod: 100000 }, warnings);
  const hasSwap = warnings.every((w) => !w.includes('swap'));
  if (hasSwap) assert.equal(r.memory?.swap, 128 * MiB, 'MemorySwap defaults to twice Memory');
  assert.deepEqual(r.pids, { limit: -1 });
  assert.equal(r.cpu?.shares, 2);
  assert.equal(r.cpu?.quota, -1);
  assert.ok(warnings.some((w) => w.includes('CPUShares')));
  assert.equal(resourcesFromHostConfig({ Memory: 64 * MiB, MemorySwap: -1 }).memory?.swap, -1);
  assert.deepEqual(resourcesFromHostConfig({}), {});
});

test('ulimit text: name=soft[:hard]', () => {
  assert.deepEqual(parseUlimit('nofile=1024:2048'), { Name: 'nofile', Soft: 1024, Hard: 2048 });
  assert.deepEqual(parseUlimit('core=-1'), { Name: 'core', Soft: -1, Hard: -1 });
  assert.throws(() => parseUlimit('nofile=abc'), (e) => invalid(e) && (e as Error).message.startsWith('invalid ulimit "nofile=abc"'));
  assert.throws(() => parseUlimit('nofile=2048:1024'), invalid);
  assert.throws(() => parseUlimit('files=1'), invalid);
});

const PROFILE = {
  defaultAction: 'SCMP_ACT_ERRNO',
  defaultErrnoRet: 38,
  archMap: [
    { architecture: 'SCMP_ARCH_X86_64', subArchitectures: ['SCMP_ARCH_X86', 'SCMP_ARCH_X32'] },
    { architecture: 'SCMP_ARCH_AARCH64', subArchitectures: ['SCMP_ARCH_ARM'] },
  ],
  syscalls: [
    { names: ['read', 'write'], action: 'SCMP_ACT_ALLOW', args: [] },
    { names: ['personality'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: 8, valueTwo: 0, op: 'SCMP_CMP_EQ' }] },
    { names: ['arch_prctl'], action: 'SCMP_ACT_ALLOW', includes: { arches: ['amd64'] } },
    { names: ['mount'], action: 'SCMP_ACT_ALLOW', includes: { caps: ['CAP_SYS_ADMIN'] } },
    { names: ['mount'], action: 'SCMP_ACT_ERRNO', errnoRet: 1, excludes: { caps: ['CAP_SYS_ADMIN'] } },
    { names: ['futex_waitv'], action: 'SCMP_ACT_ALLOW', includes: { minKernel: '5.16' } },
    { names: ['old_thing'], action: 'SCMP_ACT_ALLOW', excludes: { minKernel: '4.0' } },
  ],
};

test('seccomp: docker profile rules are filtered by arch, capabilities and kernel', () => {
  const profile = parseSeccompProfile(PROFILE);
  const amd64 = { goArch: 'amd64', scmpArch: 'SCMP_ARCH_X86_64', kernel: '6.1.0-18-amd64' };
  const plain = seccompFromProfile(profile, ['CAP_CHOWN'], amd64);
  assert.equal(plain.defaultAction, 'SCMP_ACT_ERRNO');
  assert.equal(plain.defaultErrnoRet, 38);
  assert.deepEqual(plain.architectures, ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32']);
  const names = (s: typeof plain): string[] => (s.syscalls ?? []).map((c) => `${c.names.join(',')}:${c.action}`);
  assert.deepEqual(names(plain), ['read,write:SCMP_ACT_ALLOW', 'personality:SCMP_ACT_ALLOW', 'arch_prctl:SCMP_ACT_ALLOW', 'mount:SCMP_ACT_ERRNO', 'futex_waitv:SCMP_ACT_ALLOW']);
  assert.deepEqual(plain.syscalls?.[1]?.args, [{ index: 0, value: 8, op: 'SCMP_CMP_EQ' }]);
  assert.equal(plain.syscalls?.[3]?.errnoRet, 1);
  const admin = seccompFromProfile(profile, ['CAP_SYS_ADMIN'], amd64);
  assert.ok(names(admin).includes('mount:SCMP_ACT_ALLOW') && !names(admin).includes('mount:SCMP_ACT_ERRNO'));
  const arm = seccompFromProfile(profile, [], { goArch: 'arm64', scmpArch: 'SCMP_ARCH_AARCH64', kernel: '3.10.0' });
  assert.deepEqual(arm.architectures, ['SCMP_ARCH_AARCH64', 'SCMP_ARCH_ARM']);
  assert.ok(!names(arm).includes('arch_prctl:SCMP_ACT_ALLOW'));
  assert.ok(!names(arm).includes('futex_waitv:SCMP_ACT_ALLOW') && names(arm).includes('old_thing:SCMP_ACT_ALLOW'));
  assert.throws(() => parseSeccompProfile({ syscalls: [] }));
});

test('HostConfig.LogPath (the CRI log path) must be a normalized absolute file path', () => {
  validateHostConfig({ LogPath: '/var/log/pods/ns_pod_uid/ctr/0.log' });
  validateHostConfig({ LogPath: '' });
  for (const bad of ['relative/0.log', '/var/log/../etc/passwd', '/var/log/pods/', '/a//b.log', '/a/\0b']) {
    assert.throws(() => validateHostConfig({ LogPath: bad }), invalid, bad);
  }
});
