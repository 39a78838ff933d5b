/**
 * The OCI spec core generates → an lxc 5.0.2 container config. Pure: what it
 * needs to know about the host comes in `HostFacts`, every file path in
 * `LxcPaths`. What lxc cannot express by a config key is done by the setup
 * script (an `lxc.hook.autodev` hook, run in the container's mount namespace
 * before pivot_root): masked and read-only paths, device nodes.
 *
 * Notes on lxc's parser (PLATFORM.md §4): one `key = value` per line, the
 * value trimmed; `lxc.init.cmd` splits on spaces, so the argv goes to
 * lxc-start after `--` instead; mount entries are fstab lines (spaces as \040).
 */
import path from 'node:path';
import { seccompToLxc, type OciSeccompLike } from './seccomp.js';

export interface HostFacts {
  /** The host's cgroups are v2 only (unified): `lxc.cgroup2.*` keys. */
  cgroupV2: boolean;
  /** v1 blkio without `blkio.weight` (BFQ scheduler): the weight goes to `blkio.bfq.weight`. */
  bfq: boolean;
  /** The daemon's own hard rlimits by OCI name (RLIMIT_NOFILE ...); a container never gets more. */
  hardLimits: Record<string, number>;
  /** Where lxc mounts the rootfs while it sets the container up (LXC_ROOTFS_MOUNT, fixed at lxc's build). */
  rootfsMount: string;
  /** What a host path is (masked paths: a file is hidden by /dev/null, a directory by an empty tmpfs; bind targets). */
  kindOf(hostPath: string): 'dir' | 'file' | 'missing';
}

export interface LxcPaths {
  /** Container name for lxc (the container id). */
  name: string;
  logFile: string;
  logLevel: string;
  /** Commands lxc runs as hooks (already shell-quoted where needed). */
  startHostHook: string;
  stopHook: string;
  setupHook: string;
  /** Where the seccomp policy file goes (written by the driver when `seccomp` is returned). */
  seccompFile: string;
  /** Cgroup for lxc's monitor and the one it moves to at exit (relative to the hierarchy roots). */
  monitorCgroup: string;
  pivotCgroup: string;
  /** Halt signal for lxc-stop (the image's StopSignal); default SIGTERM. */
  haltSignal?: string;
}

export interface LxcConfig {
  /** The config file's text. */
  text: string;
  /** The user process's argv, for lxc-start after `--`. */
  argv: string[];
  /** The setup hook's shell script body (POSIX sh, run with LXC_ROOTFS_MOUNT set). */
  setupScript: string;
  /** lxc's seccomp policy text, when the spec has a filter. */
  seccomp?: string;
  /** OCI hooks lxc cannot run at the right time: the driver runs them (poststart, poststop). */
  hooks: { poststart: OciHook[]; poststop: OciHook[] };
  /** prestart, createRuntime, createContainer, startContainer: run by the start-host hook. */
  earlyHooks: OciHook[];
  /** Spec parts that do not apply to lxc, for a debug log line. */
  warnings: string[];
}

export interface OciHook { path: string; args?: string[]; env?: string[]; timeout?: number }

/** Mount destinations lxc itself sets up (lxc.mount.auto, lxc.autodev, lxc.pty.max). */
const LXC_OWNED_MOUNTS = new Set(['/proc', '/sys', '/sys/fs/cgroup', '/dev', '/dev/pts']);
const PROPAGATION = new Set(['private', 'rprivate', 'shared', 'rshared', 'slave', 'rslave', 'unbindable', 'runbindable']);
const NAMESPACES: Record<string, string> = { pid: 'pid', network: 'net', mount: 'mnt', ipc: 'ipc', uts: 'uts', user: 'user', cgroup: 'cgroup' };

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const obj = (v: unknown): Obj => (isObj(v) ? v : {});
const arr = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
const strs = (v: unknown): string[] => arr(v).filter((x): x is string => typeof x === 'string');
const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);

/** A config value must be one line: lxc reads the rest of the line, trimmed. */
function oneLine(key: string, value: string): string {
  if (/[\n\r\0]/.test(value)) throw new Error(`${key}: value ${JSON.stringify(value)} has a line break, which an lxc config cannot hold`);
  return value;
}

/** fstab field escaping (getmntent unescapes \040 \011 \012 \134). */
export function fstabEscape(s: string): string {
  return s.replace(/\\/g, '\\134').replace(/ /g, '\\040').replace(/\t/g, '\\011').replace(/\n/g, '\\012');
}

/** POSIX sh single-quoting. */
export function shQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** "CAP_NET_ADMIN" → "net_admin" (lxc.cap.keep's spelling). */
function capName(c: string): string {
  return c.replace(/^CAP_/i, '').toLowerCase();
}

export function specToLxc(spec: Obj, paths: LxcPaths, host: HostFacts): LxcConfig {
  const out: string[] = [];
  const warnings: string[] = [];
  const setup: string[] = ['set -e', 'R="$LXC_ROOTFS_MOUNT"'];
  const set = (key: string, value: string | number) => { out.push(`${key} = ${oneLine(key, String(value))}`); };

  const proc = obj(spec['process']);
  const linux = obj(spec['linux']);
  const root = obj(spec['root']);

  // --- identity, logging, supervision hooks
  set('lxc.log.file', paths.logFile);
  set('lxc.log.level', paths.logLevel);
  set('lxc.hook.version', 1);
  set('lxc.hook.start-host', paths.startHostHook);
  set('lxc.hook.stop', paths.stopHook);
  set('lxc.signal.halt', paths.haltSignal ?? 'SIGTERM');
  // /etc/lxc/default.conf says "generated": core's spec has its own (none on this host).
  set('lxc.apparmor.profile', 'unconfined');

  // --- rootfs
  const rootPath = typeof root['path'] === 'string' ? root['path'] : '';
  if (!path.isAbsolute(rootPath)) throw new Error(`root.path ${JSON.stringify(rootPath)} must be absolute (core resolves it)`);
  set('lxc.rootfs.path', `dir:${rootPath}`);
  // A read-only rootfs cannot be lxc.rootfs.options=ro: lxc's autodev then fails to make /dev.
  // It is made read-only last, by the setup hook (below), before pivot_root.
  const readonlyRoot = root['readonly'] === true;

  // --- namespaces: present without path = new; with path = shared; absent = the host's.
  const nsList = arr(linux['namespaces']).map(obj);
  const wanted = new Map<string, string | undefined>();
  for (const ns of nsList) {
    const t = typeof ns['type'] === 'string' ? ns['type'] : '';
    const lxcName = NAMESPACES[t];
    if (lxcName === undefined) { warnings.push(`namespace ${t} is not supported by lxc`); continue; }
    wanted.set(lxcName, typeof ns['path'] === 'string' && ns['path'] !== '' ? ns['path'] : undefined);
  }
  // What lxc creates is listed (lxc.namespace.clone), not what it keeps: with lxc.namespace.keep
  // lxc 5.0.2 also creates a user namespace nobody asked for (autodev then fails, EOVERFLOW on
  // dev/pts). Shared ones are joined (lxc.namespace.share.*), the rest are the host's. The cgroup
  // namespace is always new: the container sees its own cgroup as / (cgroup:ro/mixed below).
  // Every mount lxc makes happens in the container's mount namespace: never without one.
  if (!(wanted.has('mnt') && wanted.get('mnt') === undefined)) throw new Error('a container needs a mount namespace of its own under lxc');
  const clone = Object.values(NAMESPACES).filter((n) => n === 'cgroup' || (wanted.has(n) && wanted.get(n) === undefined));
  set('lxc.namespace.clone', clone.join(' '));
  for (const [n, p] of wanted) if (p !== undefined) set(`lxc.namespace.share.${n}`, p);
  // The hostname only in a UTS namespace of the container's own: lxc sets lxc.uts.name in
  // whatever namespace the container has, the host's included (it renamed this host once).
  if (wanted.has('uts') && wanted.get('uts') === undefined) {
    set('lxc.uts.name', typeof spec['hostname'] === 'string' && spec['hostname'] !== '' ? spec['hostname'] : paths.name);
  }
  // No lxc networking: an empty net namespace (CNI attaches through a path), or the host's/shared one.
  if (wanted.has('net') && wanted.get('net') === undefined) set('lxc.net.0.type', 'empty');
  if (wanted.has('user')) {
    for (const [key, letter] of [['uidMappings', 'u'], ['gidMappings', 'g']] as const) {
      for (const m of arr(linux[key]).map(obj)) set('lxc.idmap', `${letter} ${num(m['containerID']) ?? 0} ${num(m['hostID']) ?? 0} ${num(m['size']) ?? 0}`);
    }
  }

  // --- /proc, /sys, cgroup, /dev: lxc's own (see LXC_OWNED_MOUNTS)
  // proc:mixed = /proc/sys read-only except net, sysrq-trigger read-only (docker's readonly paths).
  // /sys and the cgroup tree read-only or not as the spec's own mounts say (rw when privileged).
  const specMount = (dest: string) => arr(spec['mounts']).map(obj).find((m) => m['destination'] === dest);
  const ro = (dest: string) => { const m = specMount(dest); return m === undefined || strs(m['options']).includes('ro'); };
  // A writable mount inside the cgroup tree (a system container's name=systemd) → cgroup:mixed,
  // lxc's way of giving the container its own cgroup writable (in its cgroup namespace).
  const cgroupSubRw = arr(spec['mounts']).map(obj).some((m) => typeof m['destination'] === 'string' && m['destination'].startsWith('/sys/fs/cgroup/') && !strs(m['options']).includes('ro'));
  set('lxc.mount.auto', `proc:mixed sys:${ro('/sys') ? 'ro' : 'rw'} cgroup:${!ro('/sys/fs/cgroup') ? 'rw' : cgroupSubRw ? 'mixed' : 'ro'}`);
  set('lxc.autodev', 1);
  set('lxc.pty.max', 1024);
  set('lxc.tty.max', 0);
  // Without a terminal the init's stdio is the monitor's own (files and a FIFO the driver made): no
  // console. With one, lxc allocates the console pty and relays it to the monitor's terminal
  // (the driver runs lxc-start on a pty of util-linux script's).
  if (proc['terminal'] !== true) set('lxc.console.path', 'none');

  for (const m of arr(spec['mounts']).map(obj)) {
    const dest = typeof m['destination'] === 'string' ? path.posix.normalize(m['destination']) : '';
    if (!dest.startsWith('/')) { warnings.push(`mount destination ${JSON.stringify(m['destination'])} is not absolute: skipped`); continue; }
    if (LXC_OWNED_MOUNTS.has(dest) || dest.startsWith('/sys/fs/cgroup/')) continue; // the cgroup tree is lxc.mount.auto's
    const type = typeof m['type'] === 'string' ? m['type'] : 'none';
    const source = typeof m['source'] === 'string' ? m['source'] : type;
    const options = strs(m['options']).filter((o) => !PROPAGATION.has(o));
    const isBind = type === 'bind' || options.includes('bind') || options.includes('rbind');
    let create = 'dir';
    if (isBind) {
      if (!options.includes('bind') && !options.includes('rbind')) options.unshift('rbind');
      if (host.kindOf(source) === 'file') create = 'file';
    }
    const fields = [fstabEscape(isBind ? source : source || type), fstabEscape(dest.slice(1)), isBind ? 'none' : type, [...options, `create=${create}`].join(','), '0', '0'];
    set('lxc.mount.entry', fields.join(' '));
  }

  // Masked paths: a file under /dev/null, a directory under an empty read-only tmpfs. lxc mounts
  // its entries after proc and sys, before pivot_root, with the rootfs at `host.rootfsMount`, so a
  // read-only path is a bind of itself from there (no process per mount: a hook doing this with
  // mount(8) cost a second per start).
  for (const p of strs(linux['maskedPaths'])) {
    const kind = host.kindOf(p);
    if (kind === 'missing' || !p.startsWith('/')) continue;
    const dest = fstabEscape(p.slice(1));
    set('lxc.mount.entry', kind === 'file' ? `/dev/null ${dest} none bind,optional 0 0` : `tmpfs ${dest} tmpfs ro,nosuid,nodev,noexec,size=0,optional 0 0`);
  }
  for (const p of strs(linux['readonlyPaths'])) {
    // /proc/sys and /proc/sysrq-trigger: proc:mixed did them.
    if (p === '/proc/sys' || p.startsWith('/proc/sys/') || p === '/proc/sysrq-trigger' || !p.startsWith('/')) continue;
    set('lxc.mount.entry', `${fstabEscape(path.posix.join(host.rootfsMount, p))} ${fstabEscape(p.slice(1))} none bind,ro,optional 0 0`);
  }

  // Device nodes (--device, --privileged): made in the autodev /dev.
  for (const d of arr(linux['devices']).map(obj)) {
    const p = typeof d['path'] === 'string' ? d['path'] : '';
    const type = d['type'] === 'b' ? 'b' : d['type'] === 'c' || d['type'] === 'u' ? 'c' : undefined;
    const major = num(d['major']);
    const minor = num(d['minor']);
    if (!p.startsWith('/dev/') || type === undefined || major === undefined || minor === undefined) { warnings.push(`device ${JSON.stringify(p)} skipped`); continue; }
    const target = `"$R"${shQuote(p)}`;
    const mode = ((num(d['fileMode']) ?? 0o666) & 0o7777).toString(8);
    setup.push(`mkdir -p "$(dirname ${target})"; rm -f ${target}; mknod -m ${mode} ${target} ${type} ${major} ${minor}; chown ${num(d['uid']) ?? 0}:${num(d['gid']) ?? 0} ${target}`);
  }

  if (readonlyRoot) setup.push('mount -o remount,bind,ro "$R"');
  if (setup.length > 2) set('lxc.hook.autodev', paths.setupHook);

  // --- process
  const user = obj(proc['user']);
  set('lxc.init.uid', num(user['uid']) ?? 0);
  set('lxc.init.gid', num(user['gid']) ?? 0);
  const groups = arr(user['additionalGids']).map(num).filter((g): g is number => g !== undefined);
  if (groups.length > 0) set('lxc.init.groups', groups.join(','));
  const cwd = typeof proc['cwd'] === 'string' && proc['cwd'] !== '' ? proc['cwd'] : '/';
  set('lxc.init.cwd', cwd);
  // lxc clears the environment and adds container=lxc; the spec's env follows.
  for (const e of strs(proc['env'])) {
    if (!e.includes('=')) continue; // a bare name would inherit the monitor's variable
    set('lxc.environment', e);
  }
  const caps = strs(obj(proc['capabilities'])['bounding']).map(capName);
  set('lxc.cap.keep', caps.length > 0 ? [...new Set(caps)].join(' ') : 'none');
  for (const r of arr(proc['rlimits']).map(obj)) {
    const type = typeof r['type'] === 'string' ? r['type'] : '';
    const m = /^RLIMIT_([A-Z]+)$/.exec(type);
    if (m === null) { warnings.push(`rlimit ${type} skipped`); continue; }
    const max = host.hardLimits[type] ?? Number.POSITIVE_INFINITY;
    const hard = Math.min(num(r['hard']) ?? max, max);
    const soft = Math.min(num(r['soft']) ?? hard, hard);
    const fmt = (n: number) => (Number.isFinite(n) ? String(n) : 'unlimited');
    set(`lxc.prlimit.${(m[1] as string).toLowerCase()}`, `${fmt(soft)}:${fmt(hard)}`);
  }
  if (proc['noNewPrivileges'] === true) set('lxc.no_new_privs', 1);
  const oom = num(proc['oomScoreAdj']);
  if (oom !== undefined) set('lxc.proc.oom_score_adj', oom);
  // A sysctl is written in the container's namespaces: one of a namespace it shares with the host
  // would change the host (Docker refuses those; so does this driver, by skipping them).
  const own = (n: string) => wanted.has(n) && wanted.get(n) === undefined;
  for (const [k, v] of Object.entries(obj(linux['sysctl']))) {
    if (typeof v !== 'string' || !/^[a-z0-9_.\-/]+$/i.test(k)) continue;
    const ns = k.startsWith('net.') ? 'net' : /^(kernel\.(msg|sem|shm)|fs\.mqueue\.)/.test(k) ? 'ipc' : undefined;
    if (ns === undefined || !own(ns)) { warnings.push(`sysctl ${k} skipped: not in a namespace of the container's own`); continue; }
    set(`lxc.sysctl.${k}`, v);
  }

  // --- cgroups: the container's cgroup is exactly spec.linux.cgroupsPath (the limits land there,
  // where runc puts them); lxc's monitor gets its own, and moves to the pivot one at exit so
  // both can be removed (PLATFORM.md §4: the default leaves lxc.pivot behind).
  const cgroupsPath = typeof linux['cgroupsPath'] === 'string' ? linux['cgroupsPath'].replace(/^\/+/, '') : '';
  if (cgroupsPath === '' || cgroupsPath.includes('..')) throw new Error(`linux.cgroupsPath ${JSON.stringify(linux['cgroupsPath'])} must be an absolute path`);
  set('lxc.cgroup.dir.container', cgroupsPath);
  set('lxc.cgroup.dir.monitor', paths.monitorCgroup);
  set('lxc.cgroup.dir.monitor.pivot', paths.pivotCgroup);
  for (const [key, value] of cgroupSettings(obj(linux['resources']), host)) set(key, value);

  // --- seccomp
  let seccomp: string | undefined;
  if (isObj(linux['seccomp'])) {
    seccomp = seccompToLxc(linux['seccomp'] as unknown as OciSeccompLike);
    set('lxc.seccomp.profile', paths.seccompFile);
  }

  // --- OCI hooks. prestart/createRuntime/createContainer/startContainer run from lxc's
  // start-host hook (host namespaces, the init created, before it execs: the closest to each);
  // poststart and poststop are run by the driver.
  const hooks = obj(spec['hooks']);
  const ociHooks = (k: string): OciHook[] => arr(hooks[k]).map(obj).filter((h) => typeof h['path'] === 'string').map((h) => ({
    path: h['path'] as string,
    ...(Array.isArray(h['args']) && { args: strs(h['args']) }),
    ...(Array.isArray(h['env']) && { env: strs(h['env']) }),
    ...(num(h['timeout']) !== undefined && { timeout: num(h['timeout']) as number }),
  }));
  const early = [...ociHooks('prestart'), ...ociHooks('createRuntime'), ...ociHooks('createContainer'), ...ociHooks('startContainer')];

  const argv = strs(proc['args']);
  if (argv.length === 0) throw new Error('process.args is empty');
  if (typeof spec['domainname'] === 'string' && spec['domainname'] !== '') warnings.push('domainname: lxc has no setting for it');

  return {
    text: `${out.join('\n')}\n`,
    argv,
    setupScript: `${setup.join('\n')}\n`,
    ...(seccomp !== undefined && { seccomp }),
    hooks: { poststart: ociHooks('poststart'), poststop: ociHooks('poststop') },
    earlyHooks: early,
    warnings,
  };
}

/** OCI linux.resources → lxc.cgroup.* (v1) or lxc.cgroup2.* (unified) settings, in a safe order. */
export function cgroupSettings(res: Obj, host: HostFacts): [string, string][] {
  const out: [string, string][] = [];
  const mem = obj(res['memory']);
  const cpu = obj(res['cpu']);
  const pids = obj(res['pids']);
  const blk = obj(res['blockIO']);
  if (host.cgroupV2) {
    const k = (f: string) => `lxc.cgroup2.${f}`;
    const limit = num(mem['limit']);
    if (limit !== undefined && limit > 0) out.push([k('memory.max'), String(limit)]);
    const swap = num(mem['swap']);
    if (swap !== undefined && limit !== undefined && swap > 0) out.push([k('memory.swap.max'), String(Math.max(swap - limit, 0))]);
    const reservation = num(mem['reservation']);
    if (reservation !== undefined && reservation > 0) out.push([k('memory.low'), String(reservation)]);
    const shares = num(cpu['shares']);
    if (shares !== undefined && shares > 0) out.push([k('cpu.weight'), String(Math.round(1 + ((shares - 2) * 9999) / 262142))]);
    const quota = num(cpu['quota']);
    const period = num(cpu['period']) ?? 100000;
    if (quota !== undefined && quota > 0) out.push([k('cpu.max'), `${quota} ${period}`]);
    if (typeof cpu['cpus'] === 'string' && cpu['cpus'] !== '') out.push([k('cpuset.cpus'), cpu['cpus']]);
    if (typeof cpu['mems'] === 'string' && cpu['mems'] !== '') out.push([k('cpuset.mems'), cpu['mems']]);
    const pl = num(pids['limit']);
    if (pl !== undefined && pl > 0) out.push([k('pids.max'), String(pl)]);
    const w = num(blk['weight']);
    if (w !== undefined && w > 0) out.push([k('io.weight'), String(Math.round(1 + ((w - 10) * 9999) / 990))]);
    return out;
  }
  const k = (f: string) => `lxc.cgroup.${f}`;
  // Device rules first, in order: deny all, then the allowed ones (OCI's list is ordered).
  for (const d of arr(res['devices']).map(obj)) {
    const type = typeof d['type'] === 'string' ? d['type'] : 'a';
    const major = num(d['major']);
    const minor = num(d['minor']);
    const access = typeof d['access'] === 'string' && d['access'] !== '' ? d['access'] : 'rwm';
    const rule = type === 'a' && major === undefined && minor === undefined ? 'a' : `${type} ${major ?? '*'}:${minor ?? '*'} ${access}`;
    out.push([k(d['allow'] === true ? 'devices.allow' : 'devices.deny'), rule]);
  }
  // memory.limit_in_bytes before memsw (the kernel refuses memsw < limit).
  const limit = num(mem['limit']);
  if (limit !== undefined && limit > 0) out.push([k('memory.limit_in_bytes'), String(limit)]);
  const swap = num(mem['swap']);
  if (swap !== undefined && swap !== 0) out.push([k('memory.memsw.limit_in_bytes'), String(swap)]);
  const reservation = num(mem['reservation']);
  if (reservation !== undefined && reservation > 0) out.push([k('memory.soft_limit_in_bytes'), String(reservation)]);
  const swappiness = num(mem['swappiness']);
  if (swappiness !== undefined && swappiness >= 0 && swappiness <= 100) out.push([k('memory.swappiness'), String(swappiness)]);
  if (mem['disableOOMKiller'] === true) out.push([k('memory.oom_control'), '1']);
  const shares = num(cpu['shares']);
  if (shares !== undefined && shares > 0) out.push([k('cpu.shares'), String(shares)]);
  const period = num(cpu['period']);
  if (period !== undefined && period > 0) out.push([k('cpu.cfs_period_us'), String(period)]);
  const quota = num(cpu['quota']);
  if (quota !== undefined && quota !== 0) out.push([k('cpu.cfs_quota_us'), String(quota)]);
  if (typeof cpu['cpus'] === 'string' && cpu['cpus'] !== '') out.push([k('cpuset.cpus'), cpu['cpus']]);
  if (typeof cpu['mems'] === 'string' && cpu['mems'] !== '') out.push([k('cpuset.mems'), cpu['mems']]);
  const pl = num(pids['limit']);
  if (pl !== undefined && pl > 0) out.push([k('pids.max'), String(pl)]);
  const w = num(blk['weight']);
  if (w !== undefined && w > 0) out.push([k(host.bfq ? 'blkio.bfq.weight' : 'blkio.weight'), String(w)]);
  for (const [field, file] of [['throttleReadBpsDevice', 'read_bps_device'], ['throttleWriteBpsDevice', 'write_bps_device'], ['throttleReadIOPSDevice', 'read_iops_device'], ['throttleWriteIOPSDevice', 'write_iops_device']] as const) {
    for (const t of arr(blk[field]).map(obj)) out.push([k(`blkio.throttle.${file}`), `${num(t['major']) ?? 0}:${num(t['minor']) ?? 0} ${num(t['rate']) ?? 0}`]);
  }
  return out;
}
