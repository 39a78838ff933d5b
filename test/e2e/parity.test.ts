/**
 * iSulad parity end to end: OCI hooks (daemon.json `hook-spec` and
 * `--hook-spec`), user namespaces (`userns-remap`, `--user-remap`,
 * `--userns=host`), system containers (`--system-container`,
 * `--ns-change-opt`) and the feature lists of `isula info` and `version`.
 * Real runc, conmon and CNI; the subordinate id ranges the tests use are
 * added to /etc/subuid and /etc/subgid under a test owner and taken out again.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { netDaemon } from '../lib/net-daemon.js';
import { assertNoTrace, cgroupDirs, daemon, inspect, mountsUnder, ok, processesMatching, sleep } from '../lib/containers.js';
import { ISULA, newDaemon, type TestDaemon, waitFor } from '../lib/harness.js';

const run = promisify(execFile);

async function tempDir(t: { after(fn: () => Promise<void>): void }, prefix: string): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), prefix));
  t.after(() => fs.rm(dir, { recursive: true, force: true }));
  return dir;
}

async function writeExecutable(file: string, text: string): Promise<string> {
  await fs.writeFile(file, text, { mode: 0o755 });
  return file;
}

/** Container ids of the daemon, all states. */
async function allIds(d: TestDaemon): Promise<string[]> {
  return ok(await d.isula(['ps', '-aq', '--no-trunc'])).split('\n').filter(Boolean);
}

// ---- OCI hooks ---------------------------------------------------------------

test('OCI hooks: a prestart hook writes a file the container sees, the daemon hook-spec runs first, poststop runs at rm', async (t) => {
  const dir = await tempDir(t, 'isula-e2e-hooks-');
  const shared = path.join(dir, 'shared');
  await fs.mkdir(shared);
  // The hook gets the container's state on stdin: the container then reads its own id.
  const record = await writeExecutable(path.join(dir, 'record.sh'), `#!/bin/sh\nstate=$(cat)\necho "$1 $state" >> ${shared}/hooks.log\n`);
  const daemonSpec = path.join(dir, 'daemon-hooks.json');
  await fs.writeFile(daemonSpec, JSON.stringify({ prestart: [{ path: record, args: ['record.sh', 'daemon-prestart'] }] }));
  const own = path.join(dir, 'own-hooks.json');
  await fs.writeFile(own, JSON.stringify({
    prestart: [{ path: record, args: ['record.sh', 'own-prestart'], timeout: 5 }],
    poststop: [{ path: record, args: ['record.sh', 'own-poststop'] }],
  }));
  const d = await daemon(t, { 'hook-spec': daemonSpec });
  const id = ok(await d.isula(['run', '-d', '--name', 'hooked', '--hook-spec', own, '-v', `${shared}:/shared`, 'busybox', 'sh', '-c', 'cat /shared/hooks.log; sleep 300'])).trim();
  const seen = (await waitFor(async () => { const l = ok(await d.isula(['logs', 'hooked'])).trim(); return l === '' ? undefined : l; }, { what: 'the container printed the hook log' })).split('\n');
  assert.equal(seen.length, 2, seen.join('\n'));
  assert.match(seen[0] ?? '', new RegExp(`^daemon-prestart .*"id":"${id}".*"status":"creating"`), 'the daemon hook runs first, with the state on stdin');
  assert.match(seen[1] ?? '', new RegExp(`^own-prestart .*"id":"${id}"`));
  // The spec on disk carries both, merged through the spec-mutation hook, with the default timeout filled in.
  const spec = JSON.parse(await fs.readFile(path.join(d.state, 'containers', id, 'config.json'), 'utf8')) as { hooks: Record<string, { timeout: number }[]> };
  assert.deepEqual(Object.keys(spec.hooks).sort(), ['poststop', 'prestart']);
  assert.deepEqual(spec.hooks['prestart']?.map((h) => h.timeout), [30, 5]);
  ok(await d.isula(['rm', '-f', 'hooked']));
  const log = await fs.readFile(path.join(shared, 'hooks.log'), 'utf8');
  assert.match(log, new RegExp(`own-poststop .*"id":"${id}".*"status":"stopped"`), 'poststop ran when the container was deleted');
});

test('OCI hooks: a failing hook fails the start with its message and leaves no trace; a hung hook is killed at its timeout', async (t) => {
  const dir = await tempDir(t, 'isula-e2e-hooks-');
  const bad = await writeExecutable(path.join(dir, 'bad.sh'), '#!/bin/sh\necho "quota service says no" >&2\nexit 3\n');
  const hung = await writeExecutable(path.join(dir, 'hung.sh'), '#!/bin/sh\nexec sleep 60\n');
  await fs.writeFile(path.join(dir, 'bad.json'), JSON.stringify({ prestart: [{ path: bad }] }));
  await fs.writeFile(path.join(dir, 'hung.json'), JSON.stringify({ prestart: [{ path: hung, timeout: 1 }] }));
  const d = await daemon(t);

  const r = await d.isula(['run', '--name', 'refused', '--hook-spec', path.join(dir, 'bad.json'), 'busybox', 'echo', 'never']);
  assert.equal(r.code, 125, r.stderr);
  assert.match(r.stderr, /error running hook.*exit status 3.*quota service says no/);
  assert.doesNotMatch(r.stdout, /never/);
  const failed = await inspect<{ Id: string; State: { Status: string; Error: string } }>(d, 'refused');
  assert.equal(failed.State.Status, 'created');
  assert.match(failed.State.Error, /quota service says no/);
  await assertNoTrace(d, failed.Id);
  const runcState = (await run('runc', ['--root', path.join(d.state, 'runc'), 'list', '-q']).catch(() => ({ stdout: '' }))).stdout;
  assert.doesNotMatch(runcState, new RegExp(failed.Id), 'runc keeps no container');

  const started = Date.now();
  const h = await d.isula(['run', '--name', 'hung', '--hook-spec', path.join(dir, 'hung.json'), 'busybox', 'true']);
  assert.equal(h.code, 125, h.stderr);
  assert.match(h.stderr, /hook ran past specified timeout of 1/);
  assert.ok(Date.now() - started < 20_000, `the hook was cut at its timeout (${Date.now() - started} ms)`);
  await assertNoTrace(d, (await inspect<{ Id: string }>(d, 'hung')).Id);
});

test('OCI hooks: a malformed hook spec is refused at create with the reason, and nothing is created', async (t) => {
  const dir = await tempDir(t, 'isula-e2e-hooks-');
  const d = await daemon(t);
  const cases: [string, string, RegExp][] = [
    ['notjson.json', '{"prestart": [', /hook spec .*notjson\.json is not valid JSON/],
    ['point.json', JSON.stringify({ prestop: [] }), /unknown hook point "prestop"/],
    ['relative.json', JSON.stringify({ prestart: [{ path: 'bin/hook' }] }), /prestart\[0\]\.path: expected an absolute path/],
    ['missing.json', JSON.stringify({ poststart: [{ path: '/nonexistent/hook' }] }), /poststart\[0\]\.path: \/nonexistent\/hook does not exist or is not executable/],
    ['timeout.json', JSON.stringify({ prestart: [{ path: '/bin/true', timeout: -1 }] }), /prestart\[0\]\.timeout: expected a whole number of seconds above 0/],
  ];
  for (const [name, text, pattern] of cases) {
    await fs.writeFile(path.join(dir, name), text);
    const r = await d.isula(['create', '--hook-spec', path.join(dir, name), 'busybox', 'true']);
    assert.equal(r.code, 125, `${name}: ${r.stderr}`);
    assert.match(r.stderr, pattern, name);
  }
  const none = await d.isula(['create', '--hook-spec', path.join(dir, 'absent.json'), 'busybox', 'true']);
  assert.match(none.stderr, /cannot read hook spec .*absent\.json: no such file/);
  assert.deepEqual(await allIds(d), [], 'no container was created');
  assert.deepEqual(await fs.readdir(path.join(d.graph, 'containers')).catch(() => []), [], 'no container directory was left');
});

test("a daemon.json hook-spec that is malformed stops the daemon's start, naming the key", async (t) => {
  const dir = await tempDir(t, 'isula-e2e-hooks-');
  await fs.writeFile(path.join(dir, 'hooks.json'), JSON.stringify({ prestart: [{ path: '/bin/true', env: ['NOEQUALS'] }] }));
  const d = await newDaemon(t);
  await d.writeConfig({ 'hook-spec': path.join(dir, 'hooks.json') });
  d.spawn();
  const exit = await d.exited();
  assert.equal(exit.code, 1, d.stderr);
  assert.match(d.stderr, /invalid value for "hook-spec": hook spec .*hooks\.json: prestart\[0\]\.env: "NOEQUALS" is not KEY=VALUE/);
});

// ---- user namespaces ------------------------------------------------------------

/**
 * A subordinate id range granted to a test owner in /etc/subuid and
 * /etc/subgid for the test's life (distinct per process, far above the
 * ranges useradd hands out).
 */
async function grantRange(t: { after(fn: () => Promise<void>): void }, size = 65536): Promise<{ owner: string; start: number; size: number }> {
  const owner = `isula-e2e-${randomBytes(3).toString('hex')}`;
  const start = 10_000_000 + ((process.pid * 13) % 500) * 131072;
  for (const file of ['/etc/subuid', '/etc/subgid']) await fs.appendFile(file, `${owner}:${start}:${size}\n`);
  t.after(async () => {
    for (const file of ['/etc/subuid', '/etc/subgid']) {
      const text = await fs.readFile(file, 'utf8');
      await fs.writeFile(file, text.split('\n').filter((l) => !l.startsWith(`${owner}:`)).join('\n'));
    }
  });
  return { owner, start, size };
}


async function uidMap(pid: number): Promise<string> {
  return (await fs.readFile(`/proc/${pid}/uid_map`, 'utf8')).trim().split(/\s+/).join(' ');
}

test("userns-remap: the container's root is an unprivileged host uid, files look root-owned inside, networking and exec work", async (t) => {
  const { start, size } = await grantRange(t);
  const d = await netDaemon(t, { 'userns-remap': `${start}:${start}:${size}` });
  // The test root is mkdtemp's 0700: the remapped root could not reach the graph below it.
  const refused = await d.isula(['create', 'busybox', 'true']);
  assert.equal(refused.code, 125);
  assert.match(refused.stderr, new RegExp(`${d.root}, above the graph root .* does not let a remapped root \\(uid ${start}\\) through: allow others to search it`));
  await fs.chmod(d.root, 0o711);
  const id = ok(await d.isula(['run', '-d', '--name', 'remapped', '-v', 'remapvol:/data', 'busybox', 'sleep', '300'])).trim();
  const info = await inspect<{ State: { Pid: number }; NetworkSettings: { IPAddress: string } }>(d, 'remapped');
  assert.equal(await uidMap(info.State.Pid), `0 ${start} ${size}`);
  const status = await fs.readFile(`/proc/${info.State.Pid}/status`, 'utf8');
  assert.match(status, new RegExp(`^Uid:\\s+${start}\\s+${start}\\s+${start}\\s+${start}$`, 'm'), 'PID 1 runs as the range start on the host');

  const inside = ok(await d.isula(['exec', 'remapped', 'sh', '-c', 'id -u; stat -c "%u:%g" /bin/busybox /etc/hosts /data; echo made > /made; echo kept > /data/kept; ip -4 -o addr show eth0']));
  const lines = inside.trim().split('\n');
  assert.equal(lines[0], '0');
  assert.deepEqual(lines.slice(1, 4), ['0:0', '0:0', '0:0'], 'image files, /etc/hosts and a new volume are root-owned inside');
  assert.match(lines[4] ?? '', new RegExp(`inet ${info.NetworkSettings.IPAddress.replace(/\./g, '\\.')}/`), 'the network is attached to the namespace runc made');
  // On the host, what the container wrote belongs to the range, not to root.
  const upper = await fs.stat(path.join(d.graph, 'storage', 'containers', id, 'upper', 'made'));
  assert.equal(upper.uid, start);
  const vol = JSON.parse(ok(await d.isula(['volume', 'inspect', 'remapvol']))) as { Mountpoint: string }[];
  assert.equal((await fs.stat(path.join(vol[0]?.Mountpoint ?? '', 'kept'))).uid, start);
  // The image's own layer files stay root-owned on the host: other containers share them.
  const hostView = await run('sh', ['-c', `find ${path.join(d.graph, 'storage', 'layers')} -name busybox -type f -exec stat -c %u {} + | sort -u`]);
  assert.equal(hostView.stdout.trim(), '0', 'shared layers untouched');

  // --userns=host opts out; privileged and host networking need it.
  const hostNs = ok(await d.isula(['run', '--rm', '--userns', 'host', 'busybox', 'cat', '/proc/self/uid_map'])).trim().split(/\s+/).join(' ');
  assert.equal(hostNs, '0 0 4294967295');
  const priv = await d.isula(['run', '--rm', '--privileged', 'busybox', 'true']);
  assert.equal(priv.code, 125);
  assert.match(priv.stderr, /privileged mode is incompatible with user namespaces.*--userns=host/);
  ok(await d.isula(['run', '--rm', '--privileged', '--userns', 'host', 'busybox', 'true']));
  const info2 = ok(await d.isula(['info']));
  assert.match(info2, new RegExp(`userns-remap: on \\(${start}:${start}:${size}`));
  assert.match(info2, /name=userns/);

  ok(await d.isula(['rm', '-f', 'remapped']));
  assert.deepEqual(await processesMatching(id), [], 'no process left');
  assert.deepEqual(await cgroupDirs(id), [], 'no cgroup left');
  const netns = path.join(d.state, 'netns');
  assert.deepEqual((await mountsUnder(d.root)).filter((m) => m !== netns), [], 'no mount left but the netns dir');
  assert.deepEqual(await fs.readdir(netns), [], 'no netns left');
});

test('--user-remap: a per-container range is checked against /etc/subuid and /etc/subgid; one not granted is refused with nothing left', async (t) => {
  const { start, size } = await grantRange(t, 70000);
  const d = await daemon(t);
  await fs.chmod(d.root, 0o711);
  const id = ok(await d.isula(['run', '-d', '--name', 'own', '--user-remap', `${start}:${start}:65536`, 'busybox', 'sleep', '300'])).trim();
  const pid = (await inspect<{ State: { Pid: number } }>(d, 'own')).State.Pid;
  assert.equal(await uidMap(pid), `0 ${start} 65536`);
  assert.equal(ok(await d.isula(['exec', 'own', 'stat', '-c', '%u', '/bin/busybox'])).trim(), '0');
  // isula cp into it: the copy belongs to the container's root, inside and (as the range) on the host.
  const src = path.join(d.root, 'copied.txt');
  await fs.writeFile(src, 'copied\n');
  ok(await d.isula(['cp', src, 'own:/copied.txt']));
  assert.equal(ok(await d.isula(['exec', 'own', 'stat', '-c', '%u:%g', '/copied.txt'])).trim(), '0:0');
  assert.equal((await fs.stat(path.join(d.graph, 'storage', 'containers', id, 'upper', 'copied.txt'))).uid, start);
  // And out of it: the archive names the container's ids, not the host's.
  const listing = await run('sh', ['-c', `"${process.execPath}" "${ISULA}" -H ${d.host} cp own:/copied.txt - | tar --numeric-owner -tvf -`]);
  assert.match(listing.stdout, /^-\S+ 0\/0 .*copied\.txt$/m, listing.stdout);
  // The mapping is fixed at create and survives a restart of the container.
  ok(await d.isula(['restart', '-t', '0', 'own']));
  const pid2 = (await inspect<{ State: { Pid: number } }>(d, 'own')).State.Pid;
  assert.equal(await uidMap(pid2), `0 ${start} 65536`);
  ok(await d.isula(['rm', '-f', 'own']));
  await assertNoTrace(d, id);

  const before = await allIds(d);
  const cases: [string[], RegExp][] = [
    [['--user-remap', `${start + size}:${start + size}:1000`], new RegExp(`--user-remap .*: the range ${start + size}-${start + size + 999} is not granted in /etc/subuid`)],
    [['--user-remap', `${start}:${start}:${size + 1}`], /is not granted in \/etc\/subuid/],
    [['--user-remap', '100:100'], /invalid --user-remap .*expected "default", USER\[:GROUP\] or UID:GID:SIZE|expected UID:GID:SIZE/],
    [['--user-remap', '0:0:65536'], /cannot start at 0/],
    [['--user-remap', `${start}:${start}:1000`, '--userns', 'host'], /conflicting options: --user-remap and --userns=host/],
  ];
  for (const [args, pattern] of cases) {
    const r = await d.isula(['create', ...args, 'busybox', 'true']);
    assert.equal(r.code, 125, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, pattern, args.join(' '));
  }
  assert.deepEqual(await allIds(d), before, 'no container was created');
  assert.deepEqual(await fs.readdir(path.join(d.graph, 'storage', 'containers')).catch(() => []), [], 'no writable layer was left');
});

test('userns-remap naming a range that /etc/subuid does not grant stops the daemon with the file named', async (t) => {
  const d = await newDaemon(t);
  await d.writeConfig({ 'userns-remap': '4000000000:4000000000:1000' });
  d.spawn();
  const exit = await d.exited();
  assert.equal(exit.code, 1, d.stderr);
  assert.match(d.stderr, /invalid value for "userns-remap": the range 4000000000-4000000999 is not granted in \/etc\/subuid/);
  const d2 = await newDaemon(t);
  await d2.writeConfig({ 'userns-remap': 'no-such-user-here' });
  d2.spawn();
  assert.equal((await d2.exited()).code, 1, d2.stderr);
  assert.match(d2.stderr, /invalid value for "userns-remap": no user "no-such-user-here" in \/etc\/passwd/);
});

// ---- system containers ------------------------------------------------------------

/** A rootfs booting busybox init: /sbin/init → busybox, an inittab with a sysinit and a respawned service. */
async function initRootfs(t: { after(fn: () => Promise<void>): void }): Promise<string> {
  const root = await tempDir(t, 'isula-e2e-sysroot-');
  for (const d of ['bin', 'sbin', 'etc', 'proc', 'sys', 'dev', 'run', 'tmp']) await fs.mkdir(path.join(root, d));
  await fs.copyFile('/bin/busybox', path.join(root, 'bin/busybox'));
  await fs.chmod(path.join(root, 'bin/busybox'), 0o755);
  for (const a of ['sh', 'echo', 'cat', 'sleep', 'ps', 'grep', 'tr']) await fs.symlink('busybox', path.join(root, 'bin', a));
  await fs.symlink('../bin/busybox', path.join(root, 'sbin/init'));
  await fs.writeFile(path.join(root, 'etc/inittab'), '::sysinit:/bin/sh -c "echo booted > /run/booted"\n::respawn:/bin/sleep 3600\n');
  await fs.writeFile(path.join(root, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\n');
  return root;
}

/** Zombie processes in a container (ps's STAT column). */
async function zombies(d: TestDaemon, name: string): Promise<string[]> {
  return ok(await d.isula(['exec', name, 'ps', '-o', 'pid,stat,comm'])).split('\n').slice(1).filter((l) => /^\s*\d+\s+Z/.test(l));
}

test('a busybox-init system container boots its init as PID 1, reaps orphans, has the init mounts and stops cleanly', async (t) => {
  const root = await initRootfs(t);
  const d = await daemon(t, { plugins: ['@isula/image-oci', '@isula/image-external', '@isula/driver-runc'] });
  const id = ok(await d.isula(['run', '-d', '--name', 'sys', '--system-container', '--external-rootfs', root, 'none'])).trim();
  await waitFor(async () => (await d.isula(['exec', 'sys', 'cat', '/run/booted'])).stdout.trim() === 'booted' || undefined, { timeoutMs: 10_000, what: 'sysinit ran' });
  const view = ok(await d.isula(['exec', 'sys', 'sh', '-c', 'tr "\\0" "\\n" < /proc/1/cmdline | head -1; tr "\\0" "\\n" < /proc/1/environ | grep ^container=; grep -E " /(run|tmp) tmpfs" /proc/mounts | cut -d" " -f2; for c in memory systemd; do grep " /sys/fs/cgroup/$c " /proc/mounts | tail -1 | cut -d" " -f4 | cut -d, -f1; done; echo 1 > /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || echo limits-ro'])).trim().split('\n');
  assert.deepEqual(view, ['init', 'container=isulad', '/run', '/tmp', 'ro', 'rw', 'limits-ro'], 'busybox init (its argv[0] rewritten) is PID 1; only its own name=systemd cgroup is writable');
  assert.equal((await inspect<{ Config: { StopSignal: string } }>(d, 'sys')).Config.StopSignal, 'SIGTERM', 'busybox init is not systemd: it stops on SIGTERM');
  // An orphan is reparented to PID 1: init reaps it. The same orphan under a plain `sleep` PID 1 stays a zombie.
  ok(await d.isula(['run', '-d', '--name', 'plain', 'busybox', 'sleep', '300']));
  for (const name of ['sys', 'plain']) ok(await d.isula(['exec', name, 'sh', '-c', 'sleep 0.2 & exit 0']));
  await sleep(1500);
  assert.deepEqual(await zombies(d, 'sys'), [], 'the system container has no zombie');
  assert.equal((await zombies(d, 'plain')).length, 1, 'the plain container keeps the zombie: the test would catch a non-reaping init');
  const stopped = Date.now();
  ok(await d.isula(['stop', '-t', '20', 'sys']));
  assert.ok(Date.now() - stopped < 15_000, 'init shut down on the stop signal, not by SIGKILL after the timeout');
  assert.equal((await inspect<{ State: { ExitCode: number } }>(d, 'sys')).State.ExitCode, 0);
  ok(await d.isula(['rm', 'sys']));
  ok(await d.isula(['rm', '-f', 'plain']));
  await fs.access(path.join(root, 'bin/busybox'));
  await assertNoTrace(d, id);
});

test('--ns-change-opt makes only the namespaced /proc/sys parts writable, and only for system containers', async (t) => {
  const d = await daemon(t);
  const probe = 'echo 1 > /proc/sys/net/ipv4/ip_forward && echo net-rw || echo net-ro; echo 2048 > /proc/sys/kernel/msgmax && echo ipc-rw || echo ipc-ro; echo 1 > /proc/sys/vm/overcommit_memory && echo vm-rw || echo vm-ro';
  const changed = ok(await d.isula(['run', '--rm', '--system-container', '--cap-add', 'NET_ADMIN', '--ns-change-opt', 'net,ipc', 'busybox', 'sh', '-c', probe]));
  assert.deepEqual(changed.trim().split('\n'), ['net-rw', 'ipc-rw', 'vm-ro']);
  const onlyNet = ok(await d.isula(['run', '--rm', '--system-container', '--cap-add', 'NET_ADMIN', '--ns-change-opt', 'net', 'busybox', 'sh', '-c', probe]));
  assert.deepEqual(onlyNet.trim().split('\n'), ['net-rw', 'ipc-ro', 'vm-ro']);
  const plain = ok(await d.isula(['run', '--rm', '--system-container', '--cap-add', 'NET_ADMIN', 'busybox', 'sh', '-c', probe]));
  assert.deepEqual(plain.trim().split('\n'), ['net-ro', 'ipc-ro', 'vm-ro']);
  for (const [args, pattern] of [
    [['--ns-change-opt', 'net'], /--ns-change-opt is only for system containers/],
    [['--system-container', '--ns-change-opt', 'pid'], /invalid --ns-change-opt "pid": want net, ipc/],
    [['--system-container', '--ns-change-opt', 'net', '--network', 'host'], /host's network namespace is not the container's to change/],
  ] as [string[], RegExp][]) {
    const r = await d.isula(['create', ...args, 'busybox', 'true']);
    assert.equal(r.code, 125, r.stderr);
    assert.match(r.stderr, pattern);
  }
  assert.deepEqual(await allIds(d), []);
});

test('isula version and isula info list the features that are on', async (t) => {
  const d = await daemon(t);
  const version = ok(await d.isula(['version']));
  assert.match(version, /Features:\s+health-checks, volumes, oci-hooks, system-containers/);
  assert.doesNotMatch(version, /userns-remap/, 'off without userns-remap');
  const info = ok(await d.isula(['info']));
  for (const line of [/health-checks: on/, /volumes: on \(driver local\)/, /oci-hooks: on \(per container/, /userns-remap: off/, /system-containers: on/, /networking: off/]) assert.match(info, line);
  const raw = (JSON.parse(ok(await d.isula(['info', '--format', 'json']))) as { IsulaFeatures: { Name: string; Enabled: boolean }[] }).IsulaFeatures;
  assert.ok(raw.some((f) => f.Name === 'oci-hooks' && f.Enabled));
});
