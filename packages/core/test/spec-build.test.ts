/**
 * buildSpec end to end on a temporary rootfs: the generated config.json
 * validates against the OCI runtime-spec schema (read at test time from
 * /work/shared/reference), and each Docker option lands where `docker run`
 * puts it.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { Ajv, type ValidateFunction } from 'ajv';
import { buildSpec, type SpecInput } from '../src/spec/index.js';
import type { OciConfig } from '../src/spec/oci-types.js';
import { isIsulaError } from '../src/errors.js';

const SCHEMA_DIR = process.env.OCI_SCHEMA_DIR ?? '/work/shared/reference/oci-runtime-spec';
const ID = '0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef';

let validator: ValidateFunction | undefined;

/** The OCI schema is draft-04; without its `$schema` line ajv 8 reads it as draft-07, which suffices. */
async function configValidator(): Promise<ValidateFunction> {
  if (validator !== undefined) return validator;
  const ajv = new Ajv({ strict: false, allErrors: true });
  for (const name of await fs.readdir(SCHEMA_DIR)) {
    if (!name.endsWith('.json')) continue;
    const schema = JSON.parse(await fs.readFile(path.join(SCHEMA_DIR, name), 'utf8')) as Record<string, unknown>;
    delete schema.$schema;
    schema.$id = `https://oci.schema.test/${name}`;
    ajv.addSchema(schema);
  }
  validator = ajv.getSchema('https://oci.schema.test/config-schema.json');
  assert.ok(validator, 'config-schema.json compiles');
  return validator;
}

async function assertValidConfig(spec: unknown): Promise<void> {
  const validate = await configValidator();
  // What the runtime reads is the JSON text: validate that, not the object.
  const ok = validate(JSON.parse(JSON.stringify(spec)));
  assert.ok(ok, JSON.stringify(validate.errors, null, 2));
}

async function tempRootfs(t: TestContext): Promise<{ rootfs: string; containerDir: string; dir: string }> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'isula-spec-'));
  t.after(() => fs.rm(dir, { recursive: true, force: true }));
  const rootfs = path.join(dir, 'rootfs');
  await fs.mkdir(path.join(rootfs, 'etc'), { recursive: true });
  await fs.writeFile(path.join(rootfs, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\nwww:x:33:33:www:/var/www:/bin/false\napp:x:1000:1000::/home/app:/bin/sh\n');
  await fs.writeFile(path.join(rootfs, 'etc/group'), 'root:x:0:\nwww:x:33:\naudio:x:29:app,www\nvideo:x:44:app\napp:x:1000:\n');
  const containerDir = path.join(dir, 'ctr');
  await fs.mkdir(containerDir);
  return { rootfs, containerDir, dir };
}

function input(base: { rootfs: string; containerDir: string }, over: Partial<SpecInput> = {}): SpecInput {
  return {
    id: ID,
    config: {},
    hostConfig: {},
    image: { cmd: ['/bin/sh'], env: ['PATH=/usr/local/bin:/usr/bin:/bin'] },
    rootfs: base.rootfs,
    containerDir: base.containerDir,
    cgroupsPath: `/isulad/${ID}`,
    limits: { nofileHard: 20000, oomScoreAdjMin: 0 },
    ...over,
  };
}

function daemonHasCap(bit: number): boolean {
  const m = /^CapBnd:\s*([0-9a-f]+)$/m.exec(readFileSync('/proc/self/status', 'utf8'));
  return m === null || ((BigInt(`0x${m[1] ?? '0'}`) >> BigInt(bit)) & 1n) === 1n;
}

async function build(i: SpecInput): Promise<{ spec: OciConfig; warnings: string[] }> {
  const { spec, warnings } = await buildSpec(i);
  return { spec: spec as unknown as OciConfig, warnings };
}

test('a plain container gets docker defaults and a schema-valid config', async (t) => {
  const base = await tempRootfs(t);
  const { spec } = await build(input(base));
  await assertValidConfig(spec);
  assert.equal(spec.hostname, ID.slice(0, 12));
  assert.deepEqual(spec.process.args, ['/bin/sh']);
  assert.equal(spec.process.cwd, '/');
  assert.deepEqual(spec.process.user, { uid: 0, gid: 0, additionalGids: [0] });
  assert.equal(spec.process.capabilities.bounding.length, 14);
  assert.equal(spec.process.rlimits, undefined);
  assert.equal(spec.process.oomScoreAdj, undefined);
  assert.deepEqual(spec.linux.namespaces.map((n) => n.type).sort(), ['ipc', 'mount', 'network', 'pid', 'uts']);
  assert.equal(spec.linux.cgroupsPath, `/isulad/${ID}`);
  const dests = spec.mounts.map((m) => m.destination);
  for (const d of ['/proc', '/dev', '/dev/pts', '/dev/shm', '/dev/mqueue', '/sys', '/sys/fs/cgroup', '/etc/hosts', '/etc/hostname', '/etc/resolv.conf']) assert.ok(dests.includes(d), d);
  assert.deepEqual(spec.mounts.find((m) => m.destination === '/dev/shm')?.options?.at(-1), 'size=67108864');
  assert.ok(spec.mounts.find((m) => m.destination === '/sys')?.options?.includes('ro'));
  assert.equal(spec.mounts.find((m) => m.destination === '/etc/hosts')?.source, path.join(base.containerDir, 'hosts'));
  assert.ok(spec.linux.maskedPaths?.includes('/proc/kcore'));
  assert.ok(spec.linux.readonlyPaths?.includes('/proc/sys'));
  assert.deepEqual(spec.linux.resources.devices?.[0], { allow: false, access: 'rwm' });
  assert.ok(spec.linux.resources.devices?.some((d) => d.allow && d.type === 'c' && d.major === 10 && d.minor === 200));
  assert.ok(spec.process.env.includes(`HOSTNAME=${ID.slice(0, 12)}`));
  if (existsSync('/usr/share/containers/seccomp.json')) assert.equal(spec.linux.seccomp?.defaultAction, 'SCMP_ACT_ERRNO');
});

test('a privileged container gets every capability, every device and no confinement', async (t) => {
  const base = await tempRootfs(t);
  const { spec } = await build(input(base, { hostConfig: { Privileged: true } }));
  await assertValidConfig(spec);
  const status = await fs.readFile('/proc/self/status', 'utf8');
  const bounding = BigInt(`0x${/^CapBnd:\s*([0-9a-f]+)$/m.exec(status)?.[1] ?? '0'}`);
  let daemonCaps = 0;
  for (let b = bounding; b > 0n; b >>= 1n) daemonCaps += Number(b & 1n);
  assert.equal(spec.process.capabilities.bounding.length, daemonCaps, "all of the daemon's own capabilities, no more");
  assert.ok(spec.process.capabilities.bounding.includes('CAP_SYS_ADMIN'));
  assert.equal(spec.linux.seccomp, undefined);
  assert.equal(spec.linux.maskedPaths, undefined);
  assert.equal(spec.linux.readonlyPaths, undefined);
  assert.deepEqual(spec.linux.resources.devices, [{ allow: true, access: 'rwm' }]);
  assert.ok(spec.linux.devices.some((d) => d.path === '/dev/null' && d.type === 'c' && d.major === 1 && d.minor === 3));
  assert.ok(!(spec.mounts.find((m) => m.destination === '/sys')?.options ?? []).includes('ro'));
});

test('a container using most flags gets a schema-valid config with each flag applied', async (t) => {
  const base = await tempRootfs(t);
  const hostDir = path.join(base.dir, 'data');
  await fs.mkdir(hostDir);
  const { spec, warnings } = await build(
    input(base, {
      config: {
        Hostname: 'web',
        Domainname: 'example.org',
        User: 'app',
        Tty: true,
        Env: ['A=1'],
        WorkingDir: '/srv/app',
        Entrypoint: ['/usr/bin/env'],
        Cmd: ['sh', '-c', 'true'],
        Labels: { tier: 'web' },
      },
      hostConfig: {
        Binds: [`${hostDir}:/data:ro`],
        Mounts: [{ Type: 'tmpfs', Target: '/scratch', TmpfsOptions: { SizeBytes: 16 * 1024 * 1024, Mode: 0o1777 } }],
        Tmpfs: { '/run': 'rw,size=64m' },
        Devices: [{ PathOnHost: '/dev/zero', PathInContainer: '/dev/myzero', CgroupPermissions: 'rw' }],
        DeviceCgroupRules: ['c 1:9 r'],
        Ulimits: [{ Name: 'nofile', Soft: 1024, Hard: 1048576 }, { Name: 'nproc', Soft: 512, Hard: 512 }],
        OomScoreAdj: 300,
        Sysctls: { 'net.ipv4.ip_forward': '1', 'kernel.shmmax': '1000000' },
        Memory: 64 * 1024 * 1024,
        MemoryReservation: 32 * 1024 * 1024,
        MemorySwappiness: 10,
        OomKillDisable: true,
        CpuShares: 512,
        NanoCpus: 500_000_000,
        CpusetCpus: '0',
        CpusetMems: '0',
        PidsLimit: 100,
        BlkioWeight: 500,
        SecurityOpt: ['no-new-privileges'],
        CapAdd: ['net_admin'],
        CapDrop: ['CAP_MKNOD'],
        GroupAdd: ['www', '4242'],
        Init: true,
        ReadonlyRootfs: true,
        ShmSize: 128 * 1024 * 1024,
        RestartPolicy: { Name: 'on-failure', MaximumRetryCount: 3 },
      },
    }),
  );
  await assertValidConfig(spec);
  assert.equal(spec.hostname, 'web');
  assert.equal(spec.domainname, 'example.org');
  assert.equal(spec.root.readonly, true);
  assert.equal(spec.process.terminal, true);
  assert.deepEqual(spec.process.user, { uid: 1000, gid: 1000, additionalGids: [1000, 29, 44, 33, 4242] });
  assert.deepEqual(spec.process.args, ['/sbin/docker-init', '--', '/usr/bin/env', 'sh', '-c', 'true']);
  assert.equal(spec.process.cwd, '/srv/app');
  const made = await fs.stat(path.join(base.rootfs, 'srv/app'));
  assert.equal(made.uid, 1000, 'docker creates a missing working directory owned by the user');
  assert.ok(spec.process.env.includes('TERM=xterm'));
  assert.ok(spec.process.capabilities.bounding.includes('CAP_NET_ADMIN'));
  assert.ok(!spec.process.capabilities.bounding.includes('CAP_MKNOD'));
  assert.equal(spec.process.noNewPrivileges, true);
  assert.equal(spec.process.oomScoreAdj, 300);
  assert.deepEqual(spec.process.rlimits, [
    { type: 'RLIMIT_NOFILE', soft: 1024, hard: 20000 },
    { type: 'RLIMIT_NPROC', soft: 512, hard: 512 },
  ]);
  assert.ok(warnings.some((w) => w.includes('nofile')), 'the clamp is reported');
  assert.deepEqual(spec.linux.sysctl, { 'net.ipv4.ip_forward': '1', 'kernel.shmmax': '1000000' });
  assert.equal(spec.annotations, undefined, 'labels stay out of the runtime spec, as in docker');

  const byDest = new Map(spec.mounts.map((m) => [m.destination, m]));
  assert.deepEqual(byDest.get('/data'), { destination: '/data', type: 'bind', source: hostDir, options: ['rbind', 'ro', 'rprivate'] });
  assert.deepEqual(byDest.get('/scratch')?.options, ['noexec', 'nosuid', 'nodev', 'rprivate', 'mode=1777', 'size=16m']);
  assert.deepEqual(byDest.get('/run')?.options, ['noexec', 'nosuid', 'nodev', 'rprivate', 'rw', 'size=64m']);
  assert.equal(byDest.get('/dev/shm')?.options?.at(-1), `size=${128 * 1024 * 1024}`);
  assert.deepEqual(byDest.get('/sbin/docker-init'), { destination: '/sbin/docker-init', type: 'bind', source: '/usr/bin/catatonit', options: ['bind', 'ro'] });

  const myzero = spec.linux.devices.find((d) => d.path === '/dev/myzero');
  assert.deepEqual(myzero && { type: myzero.type, major: myzero.major, minor: myzero.minor }, { type: 'c', major: 1, minor: 5 });
  const rules = spec.linux.resources.devices ?? [];
  assert.ok(rules.some((r) => r.allow && r.type === 'c' && r.major === 1 && r.minor === 5 && r.access === 'rw'));
  assert.deepEqual(rules.at(-1), { allow: true, type: 'c', major: 1, minor: 9, access: 'r' });

  const r = spec.linux.resources;
  assert.equal(r.memory?.limit, 64 * 1024 * 1024);
  assert.equal(r.memory?.reservation, 32 * 1024 * 1024);
  assert.equal(r.memory?.swappiness, 10);
  assert.equal(r.memory?.disableOOMKiller, true);
  assert.equal(r.cpu?.shares, 512);
  assert.equal(r.cpu?.quota, 50000);
  assert.equal(r.cpu?.period, 100000);
  assert.equal(r.cpu?.cpus, '0');
  assert.deepEqual(r.pids, { limit: 100 });
});

test('oom_score_adj below the daemon own is raised to it', async (t) => {
  const base = await tempRootfs(t);
  const { spec } = await build(input(base, { hostConfig: { OomScoreAdj: -500 }, limits: { oomScoreAdjMin: 100 } }));
  assert.equal(spec.process.oomScoreAdj, 100);
  const { spec: above } = await build(input(base, { hostConfig: { OomScoreAdj: 500 }, limits: { oomScoreAdjMin: 100 } }));
  assert.equal(above.process.oomScoreAdj, 500);
});

test('ulimits are clamped to the daemon hard limit; soft above hard is rejected', async (t) => {
  const base = await tempRootfs(t);
  const { spec } = await build(input(base, { hostConfig: { Ulimits: [{ Name: 'nofile', Soft: 1048576, Hard: 1048576 }] } }));
  assert.deepEqual(spec.process.rlimits, [{ type: 'RLIMIT_NOFILE', soft: 20000, hard: 20000 }]);
  await assert.rejects(build(input(base, { hostConfig: { Ulimits: [{ Name: 'nofile', Soft: 2048, Hard: 1024 }] } })), (e) => isIsulaError(e, 'CONTAINER_CONFIG_INVALID'));
  await assert.rejects(build(input(base, { hostConfig: { Ulimits: [{ Name: 'bogus', Soft: 1, Hard: 1 }] } })), (e) => isIsulaError(e, 'CONTAINER_CONFIG_INVALID'));
});

test('capabilities: add, drop, ALL', async (t) => {
  const base = await tempRootfs(t);
  const caps = async (CapAdd: string[], CapDrop: string[]): Promise<string[]> => (await build(input(base, { hostConfig: { CapAdd, CapDrop } }))).spec.process.capabilities.bounding;
  assert.deepEqual(await caps(['ALL'], ['CAP_NET_RAW', 'sys_admin']), (await build(input(base, { hostConfig: { Privileged: true } }))).spec.process.capabilities.bounding.filter((c) => c !== 'CAP_NET_RAW' && c !== 'CAP_SYS_ADMIN'));
  assert.deepEqual(await caps(['chown', 'CAP_KILL'], ['all']), ['CAP_CHOWN', 'CAP_KILL']);
  const some = await caps(['SYS_PTRACE'], ['NET_RAW']);
  assert.ok(some.includes('CAP_SYS_PTRACE') && !some.includes('CAP_NET_RAW') && some.includes('CAP_CHOWN'));
  await assert.rejects(caps(['CAP_FLY'], []), (e) => isIsulaError(e, 'CONTAINER_CONFIG_INVALID'));
});

test('a capability the daemon lacks is dropped with a warning', { skip: daemonHasCap(24) ? 'needs a daemon without CAP_SYS_RESOURCE (24)' : false }, async (t) => {
  const base = await tempRootfs(t);
  const { spec, warnings } = await build(input(base, { hostConfig: { CapAdd: ['SYS_RESOURCE', 'NET_ADMIN'] } }));
  assert.ok(!spec.process.capabilities.bounding.includes('CAP_SYS_RESOURCE'));
  assert.ok(spec.process.capabilities.bounding.includes('CAP_NET_ADMIN'));
  assert.ok(warnings.some((w) => w.includes('CAP_SYS_RESOURCE')));
});

test('seccomp: a CAP_SYS_ADMIN-gated syscall is allowed only when the capability is added', { skip: existsSync('/usr/share/containers/seccomp.json') ? false : 'no /usr/share/containers/seccomp.json' }, async (t) => {
  const base = await tempRootfs(t);
  const allowed = (spec: OciConfig, name: string): boolean => (spec.linux.seccomp?.syscalls ?? []).some((s) => s.action === 'SCMP_ACT_ALLOW' && s.names.includes(name) && s.args === undefined);
  const plain = (await build(input(base))).spec;
  assert.equal(allowed(plain, 'bpf'), false);
  assert.ok(plain.linux.seccomp?.syscalls?.some((s) => s.names.includes('bpf') && s.action === 'SCMP_ACT_ERRNO' && s.errnoRet === 1));
  assert.equal(allowed(plain, 'read'), true);
  assert.ok(plain.linux.seccomp?.architectures?.includes('SCMP_ARCH_X86_64') || process.arch !== 'x64');
  const admin = (await build(input(base, { hostConfig: { CapAdd: ['SYS_ADMIN'] } }))).spec;
  assert.equal(allowed(admin, 'bpf'), true);
  assert.ok(!admin.linux.seccomp?.syscalls?.some((s) => s.names.includes('bpf') && s.action === 'SCMP_ACT_ERRNO'));
  const unconfined = (await build(input(base, { hostConfig: { SecurityOpt: ['seccomp=unconfined'] } }))).spec;
  assert.equal(unconfined.linux.seccomp, undefined);
});

test('a missing seccomp profile means no filter and a warning', async (t) => {
  const base = await tempRootfs(t);
  const { spec, warnings } = await build(input(base, { seccompProfile: path.join(base.dir, 'missing.json') }));
  assert.equal(spec.linux.seccomp, undefined);
  assert.equal(warnings.length, 1);
  await assert.rejects(build(input(base, { hostConfig: { SecurityOpt: [`seccomp=${path.join(base.dir, 'missing.json')}`] } })), (e) => isIsulaError(e, 'CONTAINER_CONFIG_INVALID'));
});

test('network mode host shares the host network namespace; a netns path is joined otherwise', async (t) => {
  const base = await tempRootfs(t);
  const host = (await build(input(base, { hostConfig: { NetworkMode: 'host' } }))).spec;
  assert.ok(!host.linux.namespaces.some((n) => n.type === 'network'));
  assert.equal(host.hostname, os.hostname());
  const joined = (await build(input(base, { networkNamespacePath: '/var/run/netns/x' }))).spec;
  assert.deepEqual(joined.linux.namespaces.find((n) => n.type === 'network'), { type: 'network', path: '/var/run/netns/x' });
  // container:ID joins the path the networking module hands over (the other container's namespace).
  const shared = (await build(input(base, { hostConfig: { NetworkMode: 'container:abc' }, networkNamespacePath: '/proc/42/ns/net' }))).spec;
  assert.deepEqual(shared.linux.namespaces.find((n) => n.type === 'network'), { type: 'network', path: '/proc/42/ns/net' });
  await assert.rejects(build(input(base, { hostConfig: { NetworkMode: 'bad mode!' } })), (e) => isIsulaError(e, 'CONTAINER_CONFIG_INVALID'));
  await assert.rejects(build(input(base, { hostConfig: { NetworkMode: 'host', Sysctls: { 'net.ipv4.ip_forward': '1' } } })), (e) => isIsulaError(e, 'CONTAINER_CONFIG_INVALID'));
});

test('binds: missing -v source is created, user mounts replace defaults, volumes become binds of their directories', async (t) => {
  const base = await tempRootfs(t);
  const missing = path.join(base.dir, 'created-by-bind');
  const { spec } = await build(input(base, { hostConfig: { Binds: [`${missing}:/in`, `${base.dir}:/etc/hosts:ro`], Tmpfs: { '/dev/shm': 'size=1m' } } }));
  assert.ok(existsSync(missing));
  assert.deepEqual(spec.mounts.find((m) => m.destination === '/in')?.options, ['rbind', 'rprivate']);
  assert.equal(spec.mounts.filter((m) => m.destination === '/etc/hosts').length, 1);
  assert.equal(spec.mounts.find((m) => m.destination === '/etc/hosts')?.source, base.dir);
  assert.equal(spec.mounts.filter((m) => m.destination === '/dev/shm').length, 1);
  assert.ok(spec.mounts.find((m) => m.destination === '/dev/shm')?.options?.includes('size=1m'));
  // Volumes become binds of the directories the container domain resolved; an unresolved one is a bug, not user input.
  const vols = (await build(input(base, { hostConfig: { Binds: ['myvol:/data:ro'], Mounts: [{ Type: 'volume', Source: 'v', Target: '/v' }] }, volumes: [
    { destination: '/data', source: '/var/lib/isulad/volumes/myvol/_data', readOnly: false },
    { destination: '/v', source: '/var/lib/isulad/volumes/v/_data', readOnly: false },
    { destination: '/anon', source: '/var/lib/isulad/volumes/abc/_data', readOnly: false },
  ] }))).spec;
  assert.deepEqual(vols.mounts.find((m) => m.destination === '/data'), { destination: '/data', type: 'bind', source: '/var/lib/isulad/volumes/myvol/_data', options: ['rbind', 'ro', 'rprivate'] });
  assert.equal(vols.mounts.find((m) => m.destination === '/v')?.source, '/var/lib/isulad/volumes/v/_data');
  assert.equal(vols.mounts.find((m) => m.destination === '/anon')?.source, '/var/lib/isulad/volumes/abc/_data');
  await assert.rejects(build(input(base, { hostConfig: { Binds: ['myvol:/data'] } })), (e) => isIsulaError(e, 'INTERNAL'));
  await assert.rejects(build(input(base, { hostConfig: { Binds: ['my/vol:/data'] } })), (e) => isIsulaError(e, 'CONTAINER_CONFIG_INVALID'));
  await assert.rejects(build(input(base, { hostConfig: { Binds: [`${base.dir}:relative`] } })), (e) => isIsulaError(e, 'CONTAINER_CONFIG_INVALID'));
  await assert.rejects(build(input(base, { hostConfig: { Binds: [`${base.dir}:/x:rx`] } })), (e) => isIsulaError(e, 'CONTAINER_CONFIG_INVALID'));
  await assert.rejects(build(input(base, { hostConfig: { Tmpfs: { run: '' } } })), (e) => isIsulaError(e, 'CONTAINER_CONFIG_INVALID'));
  await assert.rejects(build(input(base, { hostConfig: { Devices: [{ PathOnHost: '/dev/does-not-exist' }] } })), (e) => isIsulaError(e, 'CONTAINER_CONFIG_INVALID'));
});

test('no command anywhere is CONTAINER_CONFIG_INVALID', async (t) => {
  const base = await tempRootfs(t);
  await assert.rejects(build(input(base, { image: {} })), (e) => isIsulaError(e, 'CONTAINER_CONFIG_INVALID'));
});
