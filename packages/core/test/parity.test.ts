import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import type { HostConfig } from '../src/container/docker-types.js';
import { checkGranted, containerIdMap, type IdFiles, parseRemap, readSubIds, resolveDaemonRemap } from '../src/container/userns.js';
import { IsulaError } from '../src/errors.js';
import { signalNumber } from '../src/signals.js';
import { DEFAULT_HOOK_TIMEOUT_S, loadHookSpec, mergeHooks, parseHookSpec, readHookSpec } from '../src/spec/oci-hooks.js';
import { parseNsChangeOpt, readonlyProcSys, systemContainerMounts, systemContainerStopSignal } from '../src/spec/system-container.js';

async function tempDir(t: TestContext): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'isula-core-parity-'));
  t.after(() => fs.rm(dir, { recursive: true, force: true }));
  return dir;
}

/** A matcher for assert.throws/rejects: an IsulaError with `code` whose message matches `re`. */
const isulaError = (code: string, re: RegExp) => (err: unknown): boolean => {
  assert.ok(err instanceof IsulaError, `expected an IsulaError, got ${String(err)}`);
  assert.equal(err.code, code);
  assert.match(err.message, re);
  return true;
};

// ---- OCI hooks --------------------------------------------------------------

test('parseHookSpec normalises a valid spec: default timeout, explicit timeout, args and env kept', () => {
  const hooks = parseHookSpec({
    prestart: [{ path: '/bin/true' }],
    poststart: [{ path: '/bin/sh', args: ['sh', '-c', 'exit 0'], env: ['A=1', 'EMPTY='], timeout: 5 }],
    poststop: [],
  }, 'spec.json');
  assert.deepEqual(hooks, {
    prestart: [{ path: '/bin/true', timeout: DEFAULT_HOOK_TIMEOUT_S }],
    poststart: [{ path: '/bin/sh', args: ['sh', '-c', 'exit 0'], env: ['A=1', 'EMPTY='], timeout: 5 }],
    poststop: [],
  });
  assert.equal(DEFAULT_HOOK_TIMEOUT_S, 30);
});

test('parseHookSpec refuses bad specs with messages naming the source and the field', async (t) => {
  const dir = await tempDir(t);
  const plain = path.join(dir, 'not-exec.sh');
  await fs.writeFile(plain, '#!/bin/sh\n', { mode: 0o644 });
  await fs.chmod(plain, 0o644);
  const bad = (raw: unknown, re: RegExp): void => {
    assert.throws(() => parseHookSpec(raw, 'spec.json'), (err: unknown) => {
      assert.ok(err instanceof Error);
      assert.match(err.message, /^spec\.json: /);
      assert.match(err.message, re);
      return true;
    });
  };
  bad([], /expected an object of hook lists .* got a list/);
  bad(null, /got null/);
  bad('x', /got a string$/);
  bad({ prestop: [] }, /unknown hook point "prestop"/);
  bad({ prestart: { path: '/bin/true' } }, /"prestart": expected a list of hooks, got an object/);
  bad({ prestart: ['/bin/true'] }, /prestart\[0\]: expected an object with "path"/);
  bad({ prestart: [{}] }, /prestart\[0\]\.path: expected an absolute path, got nothing/);
  bad({ poststop: [{ path: 'bin/true' }] }, /poststop\[0\]\.path: expected an absolute path, got a string$/);
  bad({ prestart: [{ path: path.join(dir, 'missing') }] }, /prestart\[0\]\.path: .*missing does not exist or is not executable/);
  bad({ prestart: [{ path: dir }] }, new RegExp(`prestart\\[0\\]\\.path: ${dir} is not a file`));
  bad({ prestart: [{ path: plain }] }, /not-exec\.sh does not exist or is not executable/);
  bad({ prestart: [{ path: '/bin/true', cmd: 'x' }] }, /prestart\[0\]: unknown field "cmd"/);
  bad({ prestart: [{ path: '/bin/true', args: ['a', 1] }] }, /prestart\[0\]\.args: expected a list of strings, got a list/);
  bad({ prestart: [{ path: '/bin/true', args: 'a' }] }, /\.args: expected a list of strings, got a string$/);
  bad({ prestart: [{ path: '/bin/true', env: ['NOVALUE'] }] }, /prestart\[0\]\.env: "NOVALUE" is not KEY=VALUE/);
  bad({ prestart: [{ path: '/bin/true', env: ['=x'] }] }, /"=x" is not KEY=VALUE/);
  for (const timeout of [0, -1, 1.5, '5']) {
    bad({ poststart: [{ path: '/bin/true' }, { path: '/bin/true', timeout }] }, /poststart\[1\]\.timeout: expected a whole number of seconds above 0/);
  }
});

test('loadHookSpec reads a file, and its errors are CONTAINER_CONFIG_INVALID', async (t) => {
  const dir = await tempDir(t);
  const good = path.join(dir, 'hooks.json');
  await fs.writeFile(good, JSON.stringify({ poststop: [{ path: '/bin/true', timeout: 3 }] }));
  assert.deepEqual(loadHookSpec(good), { poststop: [{ path: '/bin/true', timeout: 3 }] });

  assert.throws(() => loadHookSpec('hooks.json'), isulaError('CONTAINER_CONFIG_INVALID', /hook spec "hooks\.json": expected an absolute path/));
  assert.throws(() => loadHookSpec(path.join(dir, 'nope.json')), isulaError('CONTAINER_CONFIG_INVALID', /cannot read hook spec .*nope\.json: no such file/));
  assert.throws(() => loadHookSpec(dir), isulaError('CONTAINER_CONFIG_INVALID', /cannot read hook spec .*: not a regular file/));
  const broken = path.join(dir, 'broken.json');
  await fs.writeFile(broken, '{"prestart": [');
  assert.throws(() => loadHookSpec(broken), isulaError('CONTAINER_CONFIG_INVALID', /broken\.json is not valid JSON \(line 1, column 15\)$/));
  // Nothing of a file's content is echoed: a client may name any file the daemon can read.
  const secret = path.join(dir, 'secret.json');
  await fs.writeFile(secret, 'root:$6$hash:19000:0:99999:7:::\n');
  assert.throws(() => loadHookSpec(secret), (err: Error) => !err.message.includes('hash') && /not valid JSON \(line 1, column 1\)/.test(err.message));
  await fs.writeFile(secret, JSON.stringify({ prestart: 'top secret value' }));
  assert.throws(() => loadHookSpec(secret), (err: Error) => !err.message.includes('secret value') && /expected a list of hooks, got a string/.test(err.message));
  assert.throws(() => loadHookSpec('/proc/self/environ'), isulaError('CONTAINER_CONFIG_INVALID', /a \/proc, \/sys or \/dev path/));
  // Its hooks run as root: a file others can write is refused, and so is a hook binary others can write.
  const open = path.join(dir, 'open.json');
  await fs.writeFile(open, '{}');
  await fs.chmod(open, 0o666);
  assert.throws(() => loadHookSpec(open), isulaError('CONTAINER_CONFIG_INVALID', /open\.json: is writable by group or others: its hooks would run as root/));
  const openHook = path.join(dir, 'open-hook.sh');
  await fs.writeFile(openHook, '#!/bin/sh\n');
  await fs.chmod(openHook, 0o777);
  await fs.writeFile(good, JSON.stringify({ prestart: [{ path: openHook }] }));
  assert.throws(() => loadHookSpec(good), isulaError('CONTAINER_CONFIG_INVALID', /prestart\[0\]\.path: .*open-hook\.sh is writable by group or others/));
  await fs.writeFile(good, JSON.stringify({ poststop: [{ path: '/bin/true', timeout: 3 }] }));
  assert.deepEqual(await readHookSpec(good), { poststop: [{ path: '/bin/true', timeout: 3 }] }, 'the async reader agrees');
  await assert.rejects(readHookSpec(path.join(dir, 'nope.json')), isulaError('CONTAINER_CONFIG_INVALID', /no such file/));
  const unknown = path.join(dir, 'unknown.json');
  await fs.writeFile(unknown, '{"onboot": []}');
  assert.throws(() => loadHookSpec(unknown), isulaError('CONTAINER_CONFIG_INVALID', /^hook spec .*unknown\.json: unknown hook point "onboot"/));
});

test('mergeHooks puts the daemon hooks before the container hooks and drops empty lists', () => {
  const d = { path: '/bin/true', timeout: 1 };
  const c = { path: '/bin/sh', timeout: 2 };
  assert.deepEqual(mergeHooks({ prestart: [d], poststop: [] }, { prestart: [c], poststart: [c] }), { prestart: [d, c], poststart: [c] });
  assert.equal(mergeHooks(undefined, undefined), undefined);
  assert.equal(mergeHooks({ prestart: [] }, {}), undefined);
  assert.equal(mergeHooks(), undefined);
});

// ---- user namespaces ----------------------------------------------------------

test('parseRemap recognises default, USER[:GROUP] and UID:GID:SIZE, and names what is wrong', () => {
  assert.deepEqual(parseRemap('default'), { kind: 'default' });
  assert.deepEqual(parseRemap('user'), { kind: 'user', user: 'user', group: 'user' });
  assert.deepEqual(parseRemap('user:group'), { kind: 'user', user: 'user', group: 'group' });
  assert.deepEqual(parseRemap('1000'), { kind: 'user', user: '1000', group: '1000' });
  assert.deepEqual(parseRemap('100000:100000:65536'), { kind: 'range', map: { uid: 100000, gid: 100000, size: 65536 } });
  assert.throws(() => parseRemap('0:1:10'), /"0:1:10": the host range cannot start at 0/);
  assert.throws(() => parseRemap('1:0:10'), /cannot start at 0/);
  assert.throws(() => parseRemap('1:1:0'), /"1:1:0": the size must be at least 1/);
  assert.throws(() => parseRemap('a:b:c:d'), /"a:b:c:d": expected "default", USER\[:GROUP\] or UID:GID:SIZE/);
  assert.throws(() => parseRemap('bad name!'), /"bad name!": expected "default"/);
});

/** Writes fake subuid/subgid/passwd/group files into a temp dir (never the host's /etc). */
async function idFiles(t: TestContext, content: Partial<Record<keyof IdFiles, string>>): Promise<IdFiles> {
  const dir = await tempDir(t);
  const files: IdFiles = { subuid: path.join(dir, 'subuid'), subgid: path.join(dir, 'subgid'), passwd: path.join(dir, 'passwd'), group: path.join(dir, 'group') };
  for (const key of Object.keys(files) as (keyof IdFiles)[]) await fs.writeFile(files[key], content[key] ?? '');
  return files;
}

const PASSWD = 'root:x:0:0:root:/root:/bin/sh\nremap:x:1500:1600::/:/bin/false\nnogrant:x:1700:1700::/:/bin/false\n';
const GROUP = 'root:x:0:\nremapg:x:1600:\nnogrant:x:1700:\n';

test('readSubIds reads owner:start:count lines, skipping comments and garbage; a missing file has none', async (t) => {
  const files = await idFiles(t, { subuid: '# comment\nremap:100000:65536\n\ngarbage\nbad:x:1\n1500:200000:1000  \r\n #indented:1:1\n' });
  assert.deepEqual(await readSubIds(files.subuid), [
    { owner: 'remap', start: 100000, count: 65536 },
    { owner: '1500', start: 200000, count: 1000 },
  ]);
  assert.deepEqual(await readSubIds(path.join(path.dirname(files.subuid), 'absent')), []);
});

test('checkGranted accepts a range inside one grant and names the file and range otherwise', async (t) => {
  const files = await idFiles(t, { subuid: 'remap:100000:65536\n', subgid: 'remap:200000:65536\n' });
  await checkGranted({ uid: 100000, gid: 200000, size: 65536 }, 'test', files);
  await checkGranted({ uid: 110000, gid: 210000, size: 1000 }, 'test', files);
  await assert.rejects(checkGranted({ uid: 160000, gid: 200000, size: 10000 }, 'test', files),
    isulaError('CONTAINER_CONFIG_INVALID', new RegExp(`^test: the range 160000-169999 is not granted in ${files.subuid} \\(it grants remap:100000-165535\\)`)));
  await assert.rejects(checkGranted({ uid: 100000, gid: 199999, size: 10 }, 'test', files),
    isulaError('CONTAINER_CONFIG_INVALID', new RegExp(`the range 199999-200008 is not granted in ${files.subgid}`)));
  const empty = await idFiles(t, {});
  await assert.rejects(checkGranted({ uid: 100000, gid: 100000, size: 1 }, 'test', empty),
    isulaError('CONTAINER_CONFIG_INVALID', new RegExp(`not granted in ${empty.subuid} \\(the file has no ranges\\)`)));
});

test('resolveDaemonRemap: USER[:GROUP] uses the first grants, by name or by numeric id', async (t) => {
  const byName = await idFiles(t, { passwd: PASSWD, group: GROUP, subuid: 'other:50000:10\nremap:100000:65536\nremap:900000:5\n', subgid: 'remapg:300000:1000\n' });
  assert.deepEqual(await resolveDaemonRemap('remap:remapg', byName), { uid: 100000, gid: 300000, size: 1000 });
  assert.equal(await resolveDaemonRemap('', byName), undefined);
  const byId = await idFiles(t, { passwd: PASSWD, group: GROUP, subuid: '1500:100000:65536\n', subgid: '1600:300000:65536\n' });
  assert.deepEqual(await resolveDaemonRemap('remap:remapg', byId), { uid: 100000, gid: 300000, size: 65536 });
  assert.deepEqual(await resolveDaemonRemap('1500:1600', byId), { uid: 100000, gid: 300000, size: 65536 });
});

test('resolveDaemonRemap: a missing user, group or grant is CONFIG_INVALID naming the file', async (t) => {
  const files = await idFiles(t, { passwd: PASSWD, group: GROUP, subuid: 'remap:100000:65536\n', subgid: 'remapg:100000:65536\n' });
  await assert.rejects(resolveDaemonRemap('ghost', files), isulaError('CONFIG_INVALID', new RegExp(`^invalid value for "userns-remap": no user "ghost" in ${files.passwd}$`)));
  await assert.rejects(resolveDaemonRemap('remap:ghostg', files), isulaError('CONFIG_INVALID', new RegExp(`no group "ghostg" in ${files.group}`)));
  await assert.rejects(resolveDaemonRemap('nogrant', files), isulaError('CONFIG_INVALID', new RegExp(`user "nogrant" has no range in ${files.subuid}`)));
  await assert.rejects(resolveDaemonRemap('remap:nogrant', files), isulaError('CONFIG_INVALID', new RegExp(`group "nogrant" has no range in ${files.subgid}`)));
});

test('resolveDaemonRemap: UID:GID:SIZE must be granted', async (t) => {
  const files = await idFiles(t, { subuid: 'remap:100000:65536\n', subgid: 'remap:100000:65536\n' });
  assert.deepEqual(await resolveDaemonRemap('100000:100000:65536', files), { uid: 100000, gid: 100000, size: 65536 });
  await assert.rejects(resolveDaemonRemap('100000:100000:65537', files),
    isulaError('CONFIG_INVALID', new RegExp(`^invalid value for "userns-remap": the range 100000-165536 is not granted in ${files.subuid}`)));
  await assert.rejects(resolveDaemonRemap('0:0:10', files), /cannot start at 0/);
});

test('containerIdMap: --user-remap wins and is checked, --userns=host means none', async (t) => {
  const files = await idFiles(t, { subuid: 'c:200000:65536\n', subgid: 'c:200000:65536\n' });
  const daemon = { uid: 100000, gid: 100000, size: 65536 };
  assert.deepEqual(await containerIdMap({ UserRemap: '200000:200000:1000' }, daemon, files), { uid: 200000, gid: 200000, size: 1000 });
  assert.deepEqual(await containerIdMap({}, daemon, files), daemon);
  assert.deepEqual(await containerIdMap({ UserRemap: '' }, daemon, files), daemon);
  assert.equal(await containerIdMap({}, undefined, files), undefined);
  assert.equal(await containerIdMap({ UsernsMode: 'host' }, daemon, files), undefined);
  await assert.rejects(containerIdMap({ UserRemap: '200000:200000:1000', UsernsMode: 'host' }, daemon, files),
    isulaError('CONTAINER_CONFIG_INVALID', /conflicting options: --user-remap and --userns=host/));
  assert.equal(await containerIdMap({ SystemContainer: true }, daemon, files), undefined, "a system container does not take the daemon's range (iSulad)");
  await assert.rejects(containerIdMap({ UserRemap: 'abc' }, daemon, files), isulaError('CONTAINER_CONFIG_INVALID', /invalid --user-remap "abc": expected UID:GID:SIZE/));
  await assert.rejects(containerIdMap({ UserRemap: '1:2:3:4' }, daemon, files), isulaError('CONTAINER_CONFIG_INVALID', /invalid --user-remap: /));
  await assert.rejects(containerIdMap({ UserRemap: '300000:300000:10' }, daemon, files),
    isulaError('CONTAINER_CONFIG_INVALID', new RegExp(`^--user-remap 300000:300000:10: the range 300000-300009 is not granted in ${files.subuid}`)));
});

// ---- system containers --------------------------------------------------------

test('parseNsChangeOpt parses net and ipc for system containers and refuses host namespaces', () => {
  const hc = (extra: HostConfig): HostConfig => ({ SystemContainer: true, ...extra });
  assert.deepEqual(parseNsChangeOpt(hc({ NsChangeOpt: 'net,ipc' })), ['net', 'ipc']);
  assert.deepEqual(parseNsChangeOpt(hc({ NsChangeOpt: 'ipc, net,ipc,net' })), ['ipc', 'net']);
  assert.deepEqual(parseNsChangeOpt(hc({ NsChangeOpt: '' })), []);
  assert.deepEqual(parseNsChangeOpt({}), []);
  assert.throws(() => parseNsChangeOpt({ NsChangeOpt: 'net' }), isulaError('CONTAINER_CONFIG_INVALID', /only for system containers/));
  assert.throws(() => parseNsChangeOpt(hc({ NsChangeOpt: 'net,foo' })), isulaError('CONTAINER_CONFIG_INVALID', /invalid --ns-change-opt "foo"/));
  assert.throws(() => parseNsChangeOpt(hc({ NsChangeOpt: 'net', NetworkMode: 'host' })), isulaError('CONTAINER_CONFIG_INVALID', /--ns-change-opt net: the host's network namespace/));
  assert.deepEqual(parseNsChangeOpt(hc({ NsChangeOpt: 'ipc', NetworkMode: 'host' })), ['ipc']);
  assert.throws(() => parseNsChangeOpt(hc({ NsChangeOpt: 'net,ipc', IpcMode: 'host' })), isulaError('CONTAINER_CONFIG_INVALID', /--ns-change-opt ipc: the host's IPC namespace/));
});

test('readonlyProcSys keeps all of /proc/sys read-only except the namespaced parts asked for', async (t) => {
  const procSys = await tempDir(t);
  for (const d of ['abi', 'fs/mqueue', 'kernel', 'net/ipv4', 'vm']) await fs.mkdir(path.join(procSys, d), { recursive: true });
  for (const f of ['fs/file-max', 'kernel/msgmax', 'kernel/sem', 'kernel/shmmax', 'kernel/hostname', 'kernel/panic']) await fs.writeFile(path.join(procSys, f), '');
  assert.deepEqual(readonlyProcSys([], procSys), ['/proc/sys']);
  assert.deepEqual(readonlyProcSys(['net'], procSys), ['/proc/sys/abi', '/proc/sys/fs', '/proc/sys/kernel', '/proc/sys/vm']);
  assert.deepEqual(readonlyProcSys(['ipc'], procSys),
    ['/proc/sys/abi', '/proc/sys/fs/file-max', '/proc/sys/kernel/hostname', '/proc/sys/kernel/panic', '/proc/sys/net', '/proc/sys/vm']);
  assert.deepEqual(readonlyProcSys(['net', 'ipc'], procSys),
    ['/proc/sys/abi', '/proc/sys/fs/file-max', '/proc/sys/kernel/hostname', '/proc/sys/kernel/panic', '/proc/sys/vm']);
});

test('systemContainerMounts skips taken destinations and adds the own name=systemd subtree on v1; systemd stops on SIGRTMIN+3', async (t) => {
  const dests = systemContainerMounts(new Set(), '/isulad/abc').map((m) => m.destination);
  assert.deepEqual(dests.slice(0, 3), ['/run', '/run/lock', '/tmp']);
  const systemd = systemContainerMounts(new Set(), '/isulad/abc').find((m) => m.destination === '/sys/fs/cgroup/systemd');
  if (systemd !== undefined) {
    assert.equal(systemd.source, '/sys/fs/cgroup/systemd/isulad/abc', 'only its own subtree');
    assert.ok(systemd.options?.includes('rw'));
  }
  const mounts = systemContainerMounts(new Set(['/run', '/tmp', '/sys/fs/cgroup/systemd']), '/isulad/abc');
  assert.deepEqual(mounts.map((m) => [m.destination, m.type]), [['/run/lock', 'tmpfs']]);
  assert.ok(mounts[0]?.options?.includes('mode=1777'));
  // The stop signal follows what the command is inside the rootfs.
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'isula-core-sysroot-'));
  t.after(() => fs.rm(root, { recursive: true, force: true }));
  await fs.mkdir(path.join(root, 'sbin'));
  await fs.mkdir(path.join(root, 'lib/systemd'), { recursive: true });
  await fs.mkdir(path.join(root, 'bin'));
  await fs.writeFile(path.join(root, 'lib/systemd/systemd'), '');
  await fs.writeFile(path.join(root, 'bin/busybox'), '');
  await fs.symlink('/lib/systemd/systemd', path.join(root, 'sbin/init'));
  await fs.symlink('../bin/busybox', path.join(root, 'sbin/bbinit'));
  assert.equal(await systemContainerStopSignal(root, '/sbin/init'), 'SIGRTMIN+3');
  assert.equal(await systemContainerStopSignal(root, '/lib/systemd/systemd'), 'SIGRTMIN+3');
  assert.equal(await systemContainerStopSignal(root, '/sbin/bbinit'), 'SIGTERM');
  assert.equal(await systemContainerStopSignal(root, '/nonexistent/init'), 'SIGTERM');
});

// ---- signals ------------------------------------------------------------------

test('signalNumber understands real-time signal names within 34-64', () => {
  assert.equal(signalNumber('SIGRTMIN'), 34);
  assert.equal(signalNumber('RTMIN+3'), 37);
  assert.equal(signalNumber('SIGRTMAX'), 64);
  assert.equal(signalNumber('SIGRTMAX-2'), 62);
  assert.equal(signalNumber('SIGRTMIN+3'), 37);
  assert.throws(() => signalNumber('rtmin+31'), isulaError('CONTAINER_CONFIG_INVALID', /Invalid signal: rtmin\+31/));
  assert.throws(() => signalNumber('SIGRTMIN-1'), isulaError('CONTAINER_CONFIG_INVALID', /Invalid signal: SIGRTMIN-1/));
});
