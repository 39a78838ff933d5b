/**
 * The OCI spec → lxc config translation (pure): no lxc needed.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { cgroupSettings, fstabEscape, specToLxc, type HostFacts, type LxcPaths } from '../src/lxc-config.js';
import { seccompToLxc } from '../src/seccomp.js';
import { execFailure, parseExitFile, startHostScript, stopScript } from '../src/scripts.js';
import { k8sTimestamp, toRecords } from '../src/output.js';

const host: HostFacts = {
  cgroupV2: false,
  bfq: true,
  hardLimits: { RLIMIT_NOFILE: 20000 },
  rootfsMount: '/usr/lib/x86_64-linux-gnu/lxc/rootfs',
  kindOf: (p) => (p === '/proc/kcore' || p === '/src/file' ? 'file' : p === '/proc/acpi' || p === '/src/dir' ? 'dir' : 'missing'),
};
const paths: LxcPaths = {
  name: 'c1', logFile: '/run/x/lxc.log', logLevel: 'INFO', startHostHook: '/run/x/start-host.sh', stopHook: '/run/x/stop.sh',
  setupHook: '/run/x/setup.sh', seccompFile: '/run/x/seccomp', monitorCgroup: 'isulad/lxc.monitor.c1', pivotCgroup: 'isulad/lxc.pivot',
};

function baseSpec(): Record<string, unknown> {
  return {
    ociVersion: '1.0.2-dev',
    root: { path: '/var/lib/isulad/rootfs/c1', readonly: false },
    hostname: 'box1',
    process: {
      terminal: false,
      user: { uid: 1000, gid: 1001, additionalGids: [10, 20] },
      args: ['sh', '-c', 'echo "a  b"; exit 3'],
      env: ['PATH=/bin', 'FOO=bar baz'],
      cwd: '/tmp',
      capabilities: { bounding: ['CAP_CHOWN', 'CAP_NET_ADMIN'], effective: [], permitted: [] },
      rlimits: [{ type: 'RLIMIT_NOFILE', soft: 1048576, hard: 1048576 }, { type: 'RLIMIT_NPROC', soft: 10, hard: 20 }],
      noNewPrivileges: true,
      oomScoreAdj: 5,
    },
    mounts: [
      { destination: '/proc', type: 'proc', source: 'proc' },
      { destination: '/dev', type: 'tmpfs', source: 'tmpfs' },
      { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=33554432'] },
      { destination: '/data dir', type: 'bind', source: '/src/dir', options: ['rbind', 'rprivate', 'ro'] },
      { destination: '/etc/hosts', type: 'bind', source: '/src/file', options: ['rbind'] },
      { destination: '/scratch', type: 'tmpfs', source: 'tmpfs', options: ['rw', 'nosuid'] },
    ],
    linux: {
      namespaces: [{ type: 'pid' }, { type: 'mount' }, { type: 'ipc' }, { type: 'uts' }, { type: 'network', path: '/proc/42/ns/net' }],
      devices: [{ path: '/dev/myzero', type: 'c', major: 1, minor: 5, fileMode: 0o666, uid: 0, gid: 0 }],
      resources: {
        devices: [{ allow: false, access: 'rwm' }, { allow: true, type: 'c', major: 1, minor: 5, access: 'rwm' }],
        memory: { limit: 67108864, swap: 134217728 },
        cpu: { shares: 512, quota: 50000, period: 100000, cpus: '0' },
        pids: { limit: 50 },
        blockIO: { weight: 300 },
      },
      cgroupsPath: '/isulad/c1',
      maskedPaths: ['/proc/kcore', '/proc/acpi', '/proc/nothere'],
      readonlyPaths: ['/proc/bus', '/proc/sys'],
      sysctl: { 'net.ipv4.ip_forward': '1', 'kernel.shmmax': '100', 'vm.swappiness': '1' },
    },
  };
}

const lines = (text: string, key: string) => text.split('\n').filter((l) => l.startsWith(`${key} = `)).map((l) => l.slice(key.length + 3));

describe('specToLxc', () => {
  test('rootfs, hostname, user, cwd, env, argv verbatim', () => {
    const c = specToLxc(baseSpec(), paths, host);
    assert.deepEqual(lines(c.text, 'lxc.rootfs.path'), ['dir:/var/lib/isulad/rootfs/c1']);
    assert.deepEqual(lines(c.text, 'lxc.uts.name'), ['box1']);
    assert.deepEqual(lines(c.text, 'lxc.init.uid'), ['1000']);
    assert.deepEqual(lines(c.text, 'lxc.init.gid'), ['1001']);
    assert.deepEqual(lines(c.text, 'lxc.init.groups'), ['10,20']);
    assert.deepEqual(lines(c.text, 'lxc.init.cwd'), ['/tmp']);
    assert.deepEqual(lines(c.text, 'lxc.environment'), ['PATH=/bin', 'FOO=bar baz']);
    // The argv never goes through lxc.init.cmd (split on spaces): it is passed after `--`.
    assert.deepEqual(c.argv, ['sh', '-c', 'echo "a  b"; exit 3']);
    assert.deepEqual(lines(c.text, 'lxc.init.cmd'), []);
    assert.deepEqual(lines(c.text, 'lxc.apparmor.profile'), ['unconfined']);
    assert.deepEqual(lines(c.text, 'lxc.console.path'), ['none']);
    assert.deepEqual(lines(c.text, 'lxc.mount.auto'), ['proc:mixed sys:ro cgroup:ro']);
    const t = baseSpec();
    (t['process'] as { terminal: boolean }).terminal = true;
    assert.deepEqual(lines(specToLxc(t, paths, host).text, 'lxc.console.path'), [], 'a terminal is lxc\'s console pty');
    assert.deepEqual(lines(c.text, 'lxc.rootfs.options'), []);
  });

  test('read-only rootfs, capabilities keep and drop all, no_new_privs, oom_score_adj, sysctl', () => {
    const s = baseSpec();
    (s['root'] as { readonly: boolean }).readonly = true;
    let c = specToLxc(s, paths, host);
    assert.deepEqual(lines(c.text, 'lxc.rootfs.options'), [], 'lxc\'s ro option breaks autodev');
    assert.match(c.setupScript, /mount -o remount,bind,ro "\$R"\n$/);
    assert.deepEqual(lines(c.text, 'lxc.cap.keep'), ['chown net_admin']);
    assert.deepEqual(lines(c.text, 'lxc.no_new_privs'), ['1']);
    assert.deepEqual(lines(c.text, 'lxc.proc.oom_score_adj'), ['5']);
    assert.deepEqual(lines(c.text, 'lxc.sysctl.net.ipv4.ip_forward'), [], 'a shared network namespace: never the host\'s sysctl');
    assert.deepEqual(lines(c.text, 'lxc.sysctl.kernel.shmmax'), ['100']);
    assert.deepEqual(lines(c.text, 'lxc.sysctl.vm.swappiness'), [], 'not namespaced');
    ((s['process'] as Record<string, unknown>)['capabilities'] as { bounding: string[] }).bounding = [];
    c = specToLxc(s, paths, host);
    assert.deepEqual(lines(c.text, 'lxc.cap.keep'), ['none']);
  });

  test('rlimits never above the daemon\'s hard limits', () => {
    const c = specToLxc(baseSpec(), paths, host);
    assert.deepEqual(lines(c.text, 'lxc.prlimit.nofile'), ['20000:20000']);
    assert.deepEqual(lines(c.text, 'lxc.prlimit.nproc'), ['10:20']);
  });

  test('namespaces: new ones, a shared one by path, the host\'s kept; cgroup always new', () => {
    const c = specToLxc(baseSpec(), paths, host);
    assert.deepEqual(lines(c.text, 'lxc.namespace.share.net'), ['/proc/42/ns/net']);
    assert.deepEqual(lines(c.text, 'lxc.namespace.clone'), ['pid mnt ipc uts cgroup']);
    assert.deepEqual(lines(c.text, 'lxc.namespace.keep'), [], 'keep makes lxc add a user namespace');
    assert.deepEqual(lines(c.text, 'lxc.net.0.type'), [], 'a shared network namespace gets no lxc network');
    const s = baseSpec();
    (s['linux'] as { namespaces: unknown[] }).namespaces = [{ type: 'pid' }, { type: 'mount' }, { type: 'network' }];
    const c2 = specToLxc(s, paths, host);
    assert.deepEqual(lines(c2.text, 'lxc.namespace.clone'), ['pid net mnt cgroup'], 'ipc and uts stay the host\'s');
    assert.deepEqual(lines(c2.text, 'lxc.uts.name'), [], 'never a hostname for the host\'s UTS namespace');
    assert.deepEqual(lines(c2.text, 'lxc.net.0.type'), ['empty']);
  });

  test('mounts: lxc\'s own skipped, binds with create=, escaped, propagation dropped, tmpfs options kept', () => {
    const c = specToLxc(baseSpec(), paths, host);
    const entries = lines(c.text, 'lxc.mount.entry');
    assert.ok(!entries.some((e) => / proc proc /.test(e) || / dev tmpfs /.test(e)));
    assert.ok(entries.includes('shm dev/shm tmpfs nosuid,noexec,nodev,mode=1777,size=33554432,create=dir 0 0'));
    assert.ok(entries.includes('/src/dir data\\040dir none rbind,ro,create=dir 0 0'));
    assert.ok(entries.includes('/src/file etc/hosts none rbind,create=file 0 0'));
    assert.ok(entries.includes('tmpfs scratch tmpfs rw,nosuid,create=dir 0 0'));
  });

  test('masked and read-only paths as mount entries; devices made by the setup hook', () => {
    const c = specToLxc(baseSpec(), paths, host);
    const entries = lines(c.text, 'lxc.mount.entry');
    assert.ok(entries.includes('/dev/null proc/kcore none bind,optional 0 0'));
    assert.ok(entries.includes('tmpfs proc/acpi tmpfs ro,nosuid,nodev,noexec,size=0,optional 0 0'));
    assert.ok(!entries.some((e) => e.includes('nothere')));
    assert.ok(entries.includes('/usr/lib/x86_64-linux-gnu/lxc/rootfs/proc/bus proc/bus none bind,ro,optional 0 0'));
    assert.ok(!entries.some((e) => e.includes('proc/sys ')), '/proc/sys is proc:mixed\'s');
    assert.match(c.setupScript, /mknod -m 666 "\$R"'\/dev\/myzero' c 1 5/);
    assert.deepEqual(lines(c.text, 'lxc.hook.autodev'), ['/run/x/setup.sh']);
    const s = baseSpec();
    (s['linux'] as { devices: unknown[] }).devices = [];
    assert.deepEqual(lines(specToLxc(s, paths, host).text, 'lxc.hook.autodev'), [], 'no hook without devices');
  });

  test('cgroup v1 limits land in the container\'s own cgroup; the monitor has its own', () => {
    const c = specToLxc(baseSpec(), paths, host);
    assert.deepEqual(lines(c.text, 'lxc.cgroup.dir.container'), ['isulad/c1']);
    assert.deepEqual(lines(c.text, 'lxc.cgroup.dir.monitor'), ['isulad/lxc.monitor.c1']);
    assert.deepEqual(lines(c.text, 'lxc.cgroup.dir.monitor.pivot'), ['isulad/lxc.pivot']);
    assert.deepEqual(lines(c.text, 'lxc.cgroup.memory.limit_in_bytes'), ['67108864']);
    assert.deepEqual(lines(c.text, 'lxc.cgroup.memory.memsw.limit_in_bytes'), ['134217728']);
    assert.deepEqual(lines(c.text, 'lxc.cgroup.cpu.cfs_quota_us'), ['50000']);
    assert.deepEqual(lines(c.text, 'lxc.cgroup.cpu.shares'), ['512']);
    assert.deepEqual(lines(c.text, 'lxc.cgroup.pids.max'), ['50']);
    assert.deepEqual(lines(c.text, 'lxc.cgroup.cpuset.cpus'), ['0']);
    assert.deepEqual(lines(c.text, 'lxc.cgroup.blkio.bfq.weight'), ['300'], 'BFQ host');
    assert.deepEqual(lines(c.text, 'lxc.cgroup.devices.deny'), ['a']);
    assert.deepEqual(lines(c.text, 'lxc.cgroup.devices.allow'), ['c 1:5 rwm']);
    const text = c.text;
    assert.ok(text.indexOf('memory.limit_in_bytes') < text.indexOf('memory.memsw.limit_in_bytes'), 'limit before memsw');
  });

  test('a system container\'s writable name=systemd bind becomes cgroup:mixed', () => {
    const s = baseSpec();
    (s['mounts'] as unknown[]).push({ destination: '/sys/fs/cgroup/systemd', type: 'bind', source: '/sys/fs/cgroup/systemd/isulad/c1', options: ['rbind', 'rw'] });
    const c = specToLxc(s, paths, host);
    assert.deepEqual(lines(c.text, 'lxc.mount.auto'), ['proc:mixed sys:ro cgroup:mixed']);
    assert.ok(!lines(c.text, 'lxc.mount.entry').some((e) => e.includes('cgroup')));
  });

  test('cgroup v2 keys on a unified host', () => {
    const res = (baseSpec()['linux'] as { resources: Record<string, unknown> }).resources;
    const v2 = Object.fromEntries(cgroupSettings(res, { ...host, cgroupV2: true }));
    assert.equal(v2['lxc.cgroup2.memory.max'], '67108864');
    assert.equal(v2['lxc.cgroup2.memory.swap.max'], '67108864');
    assert.equal(v2['lxc.cgroup2.cpu.max'], '50000 100000');
    assert.equal(v2['lxc.cgroup2.pids.max'], '50');
  });

  test('no mount namespace of its own is refused (lxc would mount on the host)', () => {
    const s = baseSpec();
    (s['linux'] as { namespaces: unknown[] }).namespaces = [{ type: 'pid' }];
    assert.throws(() => specToLxc(s, paths, host), /mount namespace/);
  });

  test('a value with a line break is refused, not written as a second key', () => {
    const s = baseSpec();
    (s['process'] as { env: string[] }).env = ['A=x\nlxc.cap.keep = sys_admin'];
    assert.throws(() => specToLxc(s, paths, host), /line break/);
  });

  test('OCI hooks: early ones for the start-host hook, poststart/poststop for the driver', () => {
    const s = baseSpec();
    s['hooks'] = { prestart: [{ path: '/bin/pre', args: ['pre', 'a b'] }], poststart: [{ path: '/bin/post' }], poststop: [{ path: '/bin/stop', timeout: 3 }] };
    const c = specToLxc(s, paths, host);
    assert.deepEqual(c.earlyHooks.map((h) => h.path), ['/bin/pre']);
    assert.deepEqual(c.hooks.poststart.map((h) => h.path), ['/bin/post']);
    assert.deepEqual(c.hooks.poststop.map((h) => h.timeout), [3]);
    const script = startHostScript({ dir: '/run/x', id: 'c1', bundle: '/b', hooks: c.earlyHooks });
    assert.match(script, /'\/bin\/pre' 'a b'/);
    assert.match(script, /"pid\\":\$LXC_PID/);
  });

  test('seccomp: allow list with errno default, masked-eq arguments swapped to lxc\'s order', () => {
    const text = seccompToLxc({
      defaultAction: 'SCMP_ACT_ERRNO', defaultErrnoRet: 1,
      syscalls: [
        { names: ['read', 'write'], action: 'SCMP_ACT_ALLOW' },
        { names: ['clone'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: 2114060288, valueTwo: 0, op: 'SCMP_CMP_MASKED_EQ' }] },
        { names: ['personality'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: 8, op: 'SCMP_CMP_EQ' }] },
        { names: ['kexec_load'], action: 'SCMP_ACT_ERRNO', errnoRet: 38 },
      ],
    });
    assert.equal(text, ['2', 'allowlist errno 1', '[all]', 'read allow', 'write allow', 'clone allow [0,0,SCMP_CMP_MASKED_EQ,2114060288]', 'personality allow [0,8,SCMP_CMP_EQ]', 'kexec_load errno 38', ''].join('\n'));
    assert.match(seccompToLxc({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['mount'], action: 'SCMP_ACT_KILL' }] }), /^2\ndenylist allow\n\[all\]\nmount kill\n$/);
    assert.throws(() => seccompToLxc({ defaultAction: 'SCMP_ACT_NOTIFY' }), /no lxc equivalent/);
  });

  test('fstab escaping', () => {
    assert.equal(fstabEscape('a b\tc\\d'), 'a\\040b\\011c\\134d');
  });
});

describe('exit and log helpers', () => {
  test('the stop hook reads lxc\'s "ended on" line; the exit file parses', () => {
    const s = stopScript({ dir: '/run/x', oomFile: '/sys/fs/cgroup/memory/isulad/c1/memory.oom_control' });
    assert.match(s, /ended on error \(/);
    assert.match(s, /128 \+ sig/);
    assert.deepEqual(parseExitFile('137 1\n'), { exitCode: 137, oomKills: 1 });
    assert.deepEqual(parseExitFile('0\n'), { exitCode: 0, oomKills: 0 });
    assert.equal(parseExitFile('garbage'), undefined);
  });

  test('an exec failure in lxc\'s log maps to ENOENT / EACCES', () => {
    const log = 'lxc-start c 20261202 ERROR    start - ../src/lxc/start.c:start:2197 - No such file or directory - Failed to exec "/no/such"\n';
    assert.deepEqual(execFailure(log)?.errno, 'ENOENT');
    assert.deepEqual(execFailure(log.replace('No such file or directory', 'Permission denied'))?.errno, 'EACCES');
    assert.equal(execFailure('nothing'), undefined);
  });

  test('output becomes k8s-file records: full lines F, a trailing partial P only when flushed', () => {
    const stamp = k8sTimestamp(new Date('2026-01-02T03:04:05.678Z'), 9);
    assert.equal(stamp, '2026-01-02T03:04:05.678000009+00:00');
    let r = toRecords('stdout', Buffer.alloc(0), Buffer.from('a\nbc'), stamp, false);
    assert.deepEqual(r.lines.map(String), [`${stamp} stdout F a\n`]);
    assert.equal(String(r.carry), 'bc');
    r = toRecords('stdout', r.carry, Buffer.from('d'), stamp, true);
    assert.deepEqual(r.lines.map(String), [`${stamp} stdout P bcd\n`]);
    assert.equal(r.carry.length, 0);
  });
});
