/**
 * `isula create`/`run` flags → the `POST /containers/create` body, following
 * docker's `cli/command/container/opts.go` (values, defaults, error wording).
 * Pure apart from reading --env-file/--label-file/seccomp files through
 * `deps`, so the conversion table is unit-tested without a daemon.
 */
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import path from 'node:path';
import { Option, type Command } from 'commander';
import type { ContainerCreateBody, DeviceMapping, HealthConfig, HostConfig, MountSpec, PortBinding, Resources, RestartPolicy, Ulimit } from './docker-types.js';
import { parseGoDuration } from './timestamps.js';
import { UsageError } from './usage-error.js';

/** What commander collects for create/run: raw strings, checked by `buildCreateBody`. */
export interface RunFlags {
  name?: string;
  detach?: boolean;
  rm?: boolean;
  interactive?: boolean;
  tty?: boolean;
  attach?: string[];
  env?: string[];
  envFile?: string[];
  user?: string;
  workdir?: string;
  entrypoint?: string;
  volume?: string[];
  mount?: string[];
  tmpfs?: string[];
  readOnly?: boolean;
  privileged?: boolean;
  capAdd?: string[];
  capDrop?: string[];
  device?: string[];
  ulimit?: string[];
  shmSize?: string;
  hostname?: string;
  domainname?: string;
  label?: string[];
  labelFile?: string[];
  init?: boolean;
  runtime?: string;
  restart?: string;
  memory?: string;
  memorySwap?: string;
  memoryReservation?: string;
  memorySwappiness?: string;
  cpus?: string;
  cpuShares?: string;
  cpuQuota?: string;
  cpuPeriod?: string;
  cpuRtPeriod?: string;
  cpuRtRuntime?: string;
  cpusetCpus?: string;
  cpusetMems?: string;
  pidsLimit?: string;
  blkioWeight?: string;
  oomScoreAdj?: string;
  oomKillDisable?: boolean;
  securityOpt?: string[];
  sysctl?: string[];
  stopSignal?: string;
  stopTimeout?: string;
  cgroupParent?: string;
  dns?: string[];
  dnsOption?: string[];
  dnsSearch?: string[];
  addHost?: string[];
  groupAdd?: string[];
  network?: string;
  ip?: string;
  macAddress?: string;
  publish?: string[];
  publishAll?: boolean;
  expose?: string[];
  externalRootfs?: string;
  hookSpec?: string;
  userRemap?: string;
  userns?: string;
  systemContainer?: boolean;
  nsChangeOpt?: string;
  pid?: string;
  ipc?: string;
  uts?: string;
  cidfile?: string;
  detachKeys?: string;
  logDriver?: string;
  logOpt?: string[];
  pull?: string;
  quiet?: boolean;
  platform?: string;
  healthCmd?: string;
  healthInterval?: string;
  healthTimeout?: string;
  healthStartPeriod?: string;
  healthRetries?: string;
  healthExitOnUnhealthy?: boolean;
  noHealthcheck?: boolean;
}

export interface Deps {
  /** The client's environment: `-e NAME` and env-file `NAME` lines take their value from it. */
  env: Readonly<Record<string, string | undefined>>;
  readFile: (file: string) => string;
  cwd: string;
}

const defaultDeps = (): Deps => ({ env: process.env, readFile: (f) => readFileSync(f, 'utf8'), cwd: process.cwd() });

/** docker's pflag wording: `invalid argument "1x" for "-m, --memory" flag: invalid size: '1x'`. */
function bad(flag: string, value: string, reason: string): UsageError {
  return new UsageError(`invalid argument ${JSON.stringify(value)} for ${JSON.stringify(flag)} flag: ${reason}`);
}

const collect = (v: string, prev: string[] = []) => [...prev, v];

/** Declares docker's create/run flags on `cmd` (run's own -d and --detach-keys, and --rm's and --cidfile's meaning for run, are the caller's). */
export function addCreateFlags(cmd: Command): Command {
  const list = (flags: string, description: string) => cmd.option(flags, description, collect);
  cmd.helpOption('--help', 'print usage'); // -h is --hostname, as in docker
  cmd
    .option('--name <name>', 'assign a name to the container')
    .option('--rm', 'automatically remove the container when it exits (HostConfig.AutoRemove)')
    .option('-i, --interactive', 'keep STDIN open even if not attached')
    .option('-t, --tty', 'allocate a pseudo-TTY');
  list('-a, --attach <stream>', 'attach to STDIN, STDOUT or STDERR; repeatable');
  list('-e, --env <KEY[=VALUE]>', 'set environment variables; repeatable');
  list('--env-file <file>', 'read in a file of environment variables; repeatable');
  cmd
    .option('-u, --user <user[:group]>', 'username or UID (format: <name|uid>[:<group|gid>])')
    .option('-w, --workdir <dir>', 'working directory inside the container')
    .option('--entrypoint <command>', 'overwrite the default ENTRYPOINT of the image ("" resets it)');
  list('-v, --volume <[SRC:]DST[:OPTS]>', 'bind mount a volume; repeatable');
  list('--mount <spec>', 'attach a filesystem mount: type=bind|tmpfs|volume,source=..,target=..[,readonly]; repeatable');
  list('--tmpfs <dir[:opts]>', 'mount a tmpfs directory; repeatable');
  cmd
    .option('--read-only', "mount the container's root filesystem as read only")
    .option('--privileged', 'give extended privileges to this container');
  list('--cap-add <cap>', 'add Linux capabilities; repeatable');
  list('--cap-drop <cap>', 'drop Linux capabilities; repeatable');
  list('--device <host[:container][:rwm]>', 'add a host device to the container; repeatable');
  list('--ulimit <name=soft[:hard]>', 'ulimit options; repeatable');
  cmd
    .option('--shm-size <bytes>', 'size of /dev/shm (e.g. 64m)')
    .option('-h, --hostname <name>', 'container host name')
    .option('--domainname <name>', 'container NIS domain name');
  list('-l, --label <key[=value]>', 'set meta data on a container; repeatable');
  list('--label-file <file>', 'read in a line delimited file of labels; repeatable');
  cmd
    .option('--init', 'run an init inside the container that forwards signals and reaps processes')
    .option('--runtime <runtime>', 'runtime to use for this container')
    .option('--restart <policy>', 'restart policy: no, always, unless-stopped, on-failure[:max-retries]')
    .option('-m, --memory <bytes>', 'memory limit (e.g. 512m, 1g)')
    .option('--memory-swap <bytes>', 'swap limit equal to memory plus swap: -1 for unlimited swap')
    .option('--memory-reservation <bytes>', 'memory soft limit')
    .option('--memory-swappiness <0-100>', 'tune container memory swappiness')
    .option('--cpus <number>', 'number of CPUs (e.g. 1.5)')
    .option('-c, --cpu-shares <int>', 'CPU shares (relative weight)')
    .option('--cpu-quota <int>', 'limit CPU CFS quota')
    .option('--cpu-period <int>', 'limit CPU CFS period')
    .option('--cpu-rt-period <int>', 'limit CPU real-time period in microseconds')
    .option('--cpu-rt-runtime <int>', 'limit CPU real-time runtime in microseconds')
    .option('--cpuset-cpus <cpus>', 'CPUs in which to allow execution (0-3, 0,1)')
    .option('--cpuset-mems <mems>', 'MEMs in which to allow execution (0-3, 0,1)')
    .option('--pids-limit <int>', 'tune container pids limit (-1 for unlimited)')
    .option('--blkio-weight <10-1000>', 'block IO (relative weight), 0 to disable')
    .option('--oom-score-adj <int>', "tune host's OOM preferences (-1000 to 1000)")
    .option('--oom-kill-disable', 'disable OOM killer');
  list('--security-opt <opt>', 'security options (seccomp=FILE|unconfined, no-new-privileges, ...); repeatable');
  list('--sysctl <key=value>', 'sysctl options; repeatable');
  cmd
    .option('--stop-signal <signal>', 'signal to stop the container')
    .option('--stop-timeout <seconds>', 'timeout (in seconds) to stop a container')
    .option('--cgroup-parent <path>', 'optional parent cgroup for the container');
  list('--dns <ip>', 'set custom DNS servers; repeatable');
  list('--dns-option <opt>', 'set DNS options; repeatable');
  cmd.addOption(new Option('--dns-opt <opt>').hideHelp().argParser(collect));
  list('--dns-search <domain>', 'set custom DNS search domains; repeatable');
  list('--add-host <host:ip>', 'add a custom host-to-IP mapping; repeatable');
  list('--group-add <group>', 'add additional groups to join; repeatable');
  cmd.option('--network <mode>', 'connect a container to a network: bridge (default), host, none, container:<name|id>, or a network name');
  cmd.addOption(new Option('--net <mode>').hideHelp());
  cmd.option('--ip <address>', 'IPv4 address for the container on its network (e.g. 10.231.0.50)');
  cmd.option('--mac-address <mac>', 'container MAC address (e.g. 92:d0:c6:0a:29:33)');
  list('-p, --publish <[ip:][hostPort:]containerPort[/proto]>', "publish a container's port(s) to the host; repeatable");
  cmd.option('-P, --publish-all', 'publish all exposed ports to random ports');
  list('--expose <port[/proto]>', 'expose a port or a range of ports; repeatable');
  cmd
    .option('--external-rootfs <dir>', 'use this host directory as the rootfs, as is (iSulad); the image argument is then a name only')
    .option('--hook-spec <file>', 'file with OCI hooks (prestart, poststart, poststop ...) for this container (iSulad)')
    .option('--user-remap <uid:gid:size>', "run in a user namespace: container ids 0..size-1 are these host ids, granted in /etc/subuid and /etc/subgid (iSulad)")
    .option('--userns <mode>', "user namespace to use: host opts out of the daemon's userns-remap")
    .option('--system-container', 'run a system container: an init as PID 1 with the mounts and environment it expects (iSulad)')
    .option('--ns-change-opt <list>', 'system containers: make namespaced kernel parameters writable: net, ipc (comma separated; iSulad)')
    .option('--pid <mode>', 'PID namespace to use: host')
    .option('--ipc <mode>', 'IPC mode to use: private (default), shareable, none, host')
    .option('--uts <mode>', 'UTS namespace to use: host')
    .option('--cidfile <file>', 'write the container ID to the file')
    .option('--log-driver <driver>', 'logging driver for the container');
  list('--log-opt <key=value>', 'log driver options; repeatable');
  cmd
    .option('--health-cmd <command>', 'command to run to check health (run by /bin/sh -c)')
    .option('--health-interval <duration>', 'time between running the check (ms|s|m|h)')
    .option('--health-timeout <duration>', 'maximum time to allow one check to run (ms|s|m|h)')
    .option('--health-start-period <duration>', 'start period for the container to initialize before starting health-retries countdown (ms|s|m|h)')
    .option('--health-retries <int>', 'consecutive failures needed to report unhealthy')
    .option('--health-exit-on-unhealthy', 'stop the container when it becomes unhealthy (iSulad)')
    .option('--no-healthcheck', 'disable any container-specified HEALTHCHECK');
  cmd
    .option('--pull <policy>', 'pull the image before creating: always, missing (default) or never')
    .option('-q, --quiet', 'suppress the pull output')
    .option('--platform <os/arch[/variant]>', 'platform to pull when the image is pulled');
  return cmd;
}

export type PullPolicy = 'always' | 'missing' | 'never';

/** docker's `validatePullOpt`: `missing` when not given (or empty). */
export function parsePullPolicy(value: string | undefined): PullPolicy {
  if (value === undefined || value === '') return 'missing';
  if (value === 'always' || value === 'missing' || value === 'never') return value;
  throw new UsageError(`invalid pull option: '${value}': must be one of "always", "missing" or "never"`);
}

/** Commander's values for the hidden aliases, folded into their flags. */
export function foldAliases(opts: RunFlags & { dnsOpt?: string[]; net?: string; healthcheck?: boolean }): RunFlags {
  // Commander stores `--no-healthcheck` as `healthcheck: false` (true when absent).
  const { dnsOpt, net, healthcheck, ...rest } = opts;
  if (healthcheck === false) rest.noHealthcheck = true;
  if (dnsOpt !== undefined) rest.dnsOption = [...(rest.dnsOption ?? []), ...dnsOpt];
  if (net !== undefined && rest.network === undefined) rest.network = net;
  return rest;
}

// ---- value parsers (docker's units and opts packages) ----

const SIZE_UNITS: Readonly<Record<string, number>> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4, p: 1024 ** 5 };

/** docker's `units.RAMInBytes`: `512m`, `1g`, `1.5g`, `100` (bytes), binary multiples, case-insensitive. */
export function ramInBytes(value: string): number {
  const m = /^(\d+(?:\.\d+)?) ?([kmgtp])?i?b?$/i.exec(value);
  if (m === null) throw new Error(`invalid size: '${value}'`);
  return Math.trunc(Number(m[1]) * (SIZE_UNITS[(m[2] ?? '').toLowerCase()] ?? 1));
}

/** docker's `opts.NanoCPUs`: `1.5` → 1500000000; more than 9 decimals is "too precise". */
export function parseCpus(value: string): number {
  const m = /^(\d+)(?:\.(\d*))?$/.exec(value);
  if (m === null) throw new Error(`failed to parse ${value} as a rational number`);
  const frac = (m[2] ?? '').replace(/0+$/, '');
  if (frac.length > 9) throw new Error('value is too precise');
  return Number(m[1]) * 1e9 + Number(frac.padEnd(9, '0'));
}

function parseInteger(flag: string, value: string): number {
  if (!/^[+-]?\d+$/.test(value.trim()) || !Number.isSafeInteger(Number(value))) throw bad(flag, value, 'not an integer');
  return Number(value);
}

const ULIMIT_NAMES = new Set(['core', 'cpu', 'data', 'fsize', 'locks', 'memlock', 'msgqueue', 'nice', 'nofile', 'nproc', 'rss', 'rtprio', 'rttime', 'sigpending', 'stack']);

/** docker's `units.ParseUlimit`: `nofile=1024[:2048]`; without a hard limit it equals the soft one. */
export function parseUlimit(value: string): Ulimit {
  const eq = value.indexOf('=');
  if (eq < 0) throw new Error(`invalid ulimit argument: ${value}`);
  const name = value.slice(0, eq);
  if (!ULIMIT_NAMES.has(name)) throw new Error(`invalid ulimit type: ${name}`);
  const limits = value.slice(eq + 1).split(':');
  if (limits.length > 2) throw new Error(`too many limit value arguments - ${value.slice(eq + 1)}, can only have up to two, \`soft[:hard]\``);
  const num = (s: string) => {
    if (!/^[+-]?\d+$/.test(s)) throw new Error(`invalid ulimit value ${JSON.stringify(s)}: not an integer`);
    return Number(s);
  };
  const soft = num(limits[0] ?? '');
  const hard = limits[1] === undefined ? soft : num(limits[1]);
  if (hard !== -1 && soft > hard) throw new Error(`ulimit soft limit must be less than or equal to hard limit: ${soft} > ${hard}`);
  return { Name: name, Soft: soft, Hard: hard };
}

/** docker's restart policy: `no`, `always`, `unless-stopped`, `on-failure[:N]`. */
export function parseRestartPolicy(value: string): RestartPolicy {
  const parts = value.split(':');
  if (parts.length > 2) throw new Error('invalid restart policy format');
  const name = parts[0] ?? '';
  if (!['', 'no', 'always', 'unless-stopped', 'on-failure'].includes(name)) {
    throw new Error(`unknown policy '${name}'; use one of 'no', 'always', 'on-failure', or 'unless-stopped'`);
  }
  if (parts[1] === undefined) return { Name: name === '' ? 'no' : name };
  if (name !== 'on-failure') throw new Error(`maximum retry count cannot be used with restart policy '${name}'`);
  if (!/^[+-]?\d+$/.test(parts[1])) throw new Error('maximum retry count must be an integer');
  const count = Number(parts[1]);
  if (count < 0) throw new Error('maximum retry count cannot be negative');
  return { Name: name, MaximumRetryCount: count };
}

const isDeviceMode = (mode: string) => mode.length > 0 && mode.length <= 3 && /^[rwm]+$/.test(mode) && new Set(mode).size === mode.length;

/** docker's `parseDevice`: `/dev/a`, `/dev/a:/dev/b`, `/dev/a:rw`, `/dev/a:/dev/b:rwm`. */
export function parseDevice(value: string): DeviceMapping {
  const parts = value.split(':');
  if (parts.length > 3 || parts[0] === '') throw new Error(`invalid device specification: ${value}`);
  const [src = '', second, third] = parts;
  let dst = '';
  let perms = 'rwm';
  if (third !== undefined) perms = third;
  if (second !== undefined) {
    if (third === undefined && isDeviceMode(second)) perms = second;
    else dst = second;
  }
  if (dst === '') dst = src;
  if (!isDeviceMode(perms)) throw new Error(`invalid device mode: ${perms}`);
  if (!dst.startsWith('/')) throw new Error(`${dst} is not an absolute path`);
  return { PathOnHost: src, PathInContainer: dst, CgroupPermissions: perms };
}

function portRange(spec: string, what: string, raw: string): [number, number] {
  const m = /^(\d+)(?:-(\d+))?$/.exec(spec);
  const start = Number(m?.[1]);
  const end = m?.[2] === undefined ? start : Number(m[2]);
  if (m === null || start > 65535 || end > 65535 || end < start) throw new Error(`invalid ${what}: ${spec === '' ? raw : spec}`);
  return [start, end];
}

/**
 * docker's `nat.ParsePortSpecs`: `[ip:][hostPort:]containerPort[/proto]`,
 * ranges (`8000-8001:80-81`), `[::1]:80:80`. Returns ExposedPorts keys and PortBindings.
 */
export function parsePortSpecs(specs: readonly string[]): { exposed: string[]; bindings: Record<string, PortBinding[]> } {
  const exposed: string[] = [];
  const bindings: Record<string, PortBinding[]> = {};
  for (const raw of specs) {
    let rest = raw;
    let proto = 'tcp';
    const slash = raw.lastIndexOf('/');
    if (slash >= 0) { proto = raw.slice(slash + 1).toLowerCase(); rest = raw.slice(0, slash); }
    if (!['tcp', 'udp', 'sctp'].includes(proto)) throw new Error(`invalid proto: ${proto}`);
    const parts = rest.split(':');
    const containerPart = parts.pop() ?? '';
    const hostPart = parts.pop() ?? '';
    let ip = parts.join(':');
    if (ip.startsWith('[') && ip.endsWith(']')) ip = ip.slice(1, -1);
    if (ip !== '' && isIP(ip) === 0) throw new Error(`invalid IP address: ${ip}`);
    if (containerPart === '') throw new Error(`no port specified: ${raw}<empty>`);
    const [start, end] = portRange(containerPart, 'containerPort', raw);
    const [hostStart, hostEnd] = hostPart === '' ? [0, 0] : portRange(hostPart, 'hostPort', raw);
    if (hostPart !== '' && end - start !== hostEnd - hostStart && end !== start) {
      throw new Error(`invalid ranges specified for container and host Ports: ${containerPart} and ${hostPart}`);
    }
    for (let i = 0; i <= end - start; i += 1) {
      const key = `${start + i}/${proto}`;
      let hostPort = hostPart === '' ? '' : String(hostStart + i);
      // A single container port with a host range: the daemon picks one of the range.
      if (start === end && hostStart !== hostEnd) hostPort = `${hostStart}-${hostEnd}`;
      if (!exposed.includes(key)) exposed.push(key);
      (bindings[key] ??= []).push({ HostIp: ip, HostPort: hostPort });
    }
  }
  return { exposed, bindings };
}

const parseBool = (key: string, v: string) => {
  if (['', 'true', '1'].includes(v.toLowerCase())) return true;
  if (['false', '0'].includes(v.toLowerCase())) return false;
  throw new Error(`invalid value for ${key}: ${v}`);
};

/** docker's `--mount` (`opts.MountOpt`): comma-separated key=value fields; the type defaults to volume. */
export function parseMount(value: string): MountSpec {
  const mount: MountSpec = { Type: 'volume' };
  const used = { bind: false, volume: false, tmpfs: false };
  for (const field of value.split(',')) {
    const eq = field.indexOf('=');
    const key = (eq < 0 ? field : field.slice(0, eq)).trim().toLowerCase();
    const val = eq < 0 ? '' : field.slice(eq + 1);
    if (eq < 0 && !['readonly', 'ro', 'volume-nocopy', 'bind-nonrecursive'].includes(key)) throw new Error(`invalid field '${field}' must be a key=value pair`);
    switch (key) {
      case 'type':
        if (!['bind', 'volume', 'tmpfs'].includes(val.toLowerCase())) throw new Error(`invalid mount type '${val}': use bind, volume or tmpfs`);
        mount.Type = val.toLowerCase();
        break;
      case 'source': case 'src': mount.Source = val; break;
      case 'target': case 'dst': case 'destination': mount.Target = val; break;
      case 'readonly': case 'ro': mount.ReadOnly = parseBool(key, val); break;
      case 'consistency': mount.Consistency = val; break;
      case 'bind-propagation': used.bind = true; (mount.BindOptions ??= {}).Propagation = val.toLowerCase(); break;
      case 'bind-nonrecursive': used.bind = true; (mount.BindOptions ??= {}).NonRecursive = parseBool(key, val); break;
      case 'volume-nocopy': used.volume = true; (mount.VolumeOptions ??= {}).NoCopy = parseBool(key, val); break;
      case 'volume-driver': used.volume = true; ((mount.VolumeOptions ??= {}).DriverConfig ??= {}).Name = val; break;
      case 'volume-label': case 'volume-opt': {
        used.volume = true;
        const [k = '', ...v] = val.split('=');
        const opts = mount.VolumeOptions ??= {};
        if (key === 'volume-label') (opts.Labels ??= {})[k] = v.join('=');
        else ((opts.DriverConfig ??= {}).Options ??= {})[k] = v.join('=');
        break;
      }
      case 'tmpfs-size': used.tmpfs = true; (mount.TmpfsOptions ??= {}).SizeBytes = ramInBytes(val); break;
      case 'tmpfs-mode': {
        used.tmpfs = true;
        if (!/^[0-7]+$/.test(val)) throw new Error(`invalid value for ${key}: ${val}`);
        (mount.TmpfsOptions ??= {}).Mode = parseInt(val, 8);
        break;
      }
      default: throw new Error(`unexpected key '${key}' in '${field}'`);
    }
  }
  if (!mount.Target) throw new Error('target is required');
  for (const t of ['bind', 'volume', 'tmpfs'] as const) {
    if (used[t] && mount.Type !== t) throw new Error(`cannot mix '${t}-*' options with mount type '${mount.Type}'`);
  }
  return mount;
}

/**
 * docker's env/label file reader (`kvfile.Parse`): one KEY=VALUE a line, `#`
 * comments and blank lines skipped, leading blanks trimmed; a bare KEY takes
 * its value from `lookup`, and is dropped when that finds none (labels keep it).
 */
export function parseKeyValueFile(text: string, file: string, lookup?: (key: string) => string | undefined): string[] {
  const lines: string[] = [];
  text.replace(/^\uFEFF/, '').split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trimStart();
    if (line === '' || line.startsWith('#')) return;
    const eq = line.indexOf('=');
    const key = eq < 0 ? line : line.slice(0, eq);
    if (key === '') throw new Error(`no variable name on line '${line}' (${file}:${i + 1})`);
    if (/\s/.test(key)) throw new Error(`variable '${key}' contains whitespaces (${file}:${i + 1})`);
    if (eq >= 0 || lookup === undefined) { lines.push(line); return; }
    const v = lookup(key);
    if (v !== undefined) lines.push(`${key}=${v}`);
  });
  return lines;
}

function kvMap(items: readonly string[]): Record<string, string> {
  const map: Record<string, string> = {};
  for (const item of items) {
    const eq = item.indexOf('=');
    map[eq < 0 ? item : item.slice(0, eq)] = eq < 0 ? '' : item.slice(eq + 1);
  }
  return map;
}

/** Applies fn to each value of a flag, turning a thrown message into docker's flag error. */
function each<T>(flag: string, values: readonly string[] | undefined, fn: (v: string) => T): T[] {
  return (values ?? []).map((v) => {
    try {
      return fn(v);
    } catch (err) {
      throw err instanceof UsageError ? err : bad(flag, v, (err as Error).message);
    }
  });
}

function one<T>(flag: string, value: string | undefined, fn: (v: string) => T): T | undefined {
  return value === undefined ? undefined : each(flag, [value], fn)[0];
}

/**
 * The resource flags `create`, `run` and `update` share → HostConfig resources.
 * Only given flags appear, so `update` changes nothing else.
 */
export function buildResources(f: RunFlags): Resources {
  const r: Resources = {};
  const int = (flag: string, v: string | undefined) => one(flag, v, (s) => parseInteger(flag, s));
  const set = <K extends keyof Resources>(key: K, value: Resources[K] | undefined) => { if (value !== undefined) r[key] = value; };
  set('Memory', one('-m, --memory', f.memory, ramInBytes));
  set('MemorySwap', one('--memory-swap', f.memorySwap, (v) => (v === '-1' ? -1 : ramInBytes(v))));
  set('MemoryReservation', one('--memory-reservation', f.memoryReservation, ramInBytes));
  set('MemorySwappiness', int('--memory-swappiness', f.memorySwappiness));
  set('NanoCpus', one('--cpus', f.cpus, parseCpus));
  set('CpuShares', int('-c, --cpu-shares', f.cpuShares));
  set('CpuQuota', int('--cpu-quota', f.cpuQuota));
  set('CpuPeriod', int('--cpu-period', f.cpuPeriod));
  set('CpuRealtimePeriod', int('--cpu-rt-period', f.cpuRtPeriod));
  set('CpuRealtimeRuntime', int('--cpu-rt-runtime', f.cpuRtRuntime));
  set('CpusetCpus', f.cpusetCpus);
  set('CpusetMems', f.cpusetMems);
  set('PidsLimit', int('--pids-limit', f.pidsLimit));
  set('BlkioWeight', one('--blkio-weight', f.blkioWeight, (v) => {
    const n = parseInteger('--blkio-weight', v);
    if (n < 0 || n > 65535) throw new Error('value out of range');
    return n;
  }));
  return r;
}

const MODES = new Set(['ro', 'rw', 'z', 'Z', 'nocopy', 'shared', 'rshared', 'slave', 'rslave', 'private', 'rprivate', 'consistent', 'cached', 'delegated']);

/** `-v`: `[SRC:]DST[:OPTS]`; a relative `./src` becomes absolute, as docker's client does. */
function parseVolume(value: string, cwd: string): { bind?: string; anonymous?: string } {
  const parts = value.split(':');
  const invalid = () => new Error(`invalid volume specification: '${value}'`);
  if (parts.length === 1) {
    if (!value.startsWith('/')) throw invalid();
    return { anonymous: value };
  }
  const [src = '', dst = '', opts] = parts;
  if (parts.length > 3 || src === '' || !dst.startsWith('/')) throw invalid();
  if (opts !== undefined && !opts.split(',').every((o) => MODES.has(o))) throw new Error(`invalid mode: ${opts}`);
  const host = src.startsWith('.') ? path.resolve(cwd, src) : src;
  return { bind: [host, dst, ...(opts === undefined ? [] : [opts])].join(':') };
}

/** docker's `ValidateEnv`: `KEY=VALUE` as is; a bare `KEY` takes the client's value when it has one. */
export function envEntry(value: string, env: Deps['env']): string {
  const eq = value.indexOf('=');
  if (eq === 0 || value === '') throw new Error(`invalid environment variable: ${value}`);
  if (eq > 0) return value;
  const v = env[value];
  return v === undefined ? value : `${value}=${v}`;
}

/** `seccomp=FILE` sends the profile's contents (the daemon may not see the client's files), as docker does. */
function securityOpt(value: string, deps: Deps): string {
  const m = /^seccomp[=:](.*)$/.exec(value);
  if (m === null || m[1] === 'unconfined' || m[1] === undefined) return value;
  let text: string;
  try {
    text = deps.readFile(m[1]);
  } catch (err) {
    throw new Error(`opening seccomp profile (${m[1]}) failed: ${(err as Error).message}`);
  }
  try {
    return `seccomp=${JSON.stringify(JSON.parse(text))}`;
  } catch (err) {
    throw new Error(`compacting json for seccomp profile (${m[1]}) failed: ${(err as Error).message}`);
  }
}

const ATTACHABLE = ['stdin', 'stdout', 'stderr'];

/**
 * docker's health check flags → `Config.Healthcheck` (undefined when none is
 * given). As docker, a zero value counts as not given and is left out; the
 * durations are Go durations, sent in nanoseconds. iSulad's
 * `--health-exit-on-unhealthy` adds `ExitOnUnhealthy`.
 */
export function buildHealthcheck(f: RunFlags): HealthConfig | undefined {
  const duration = (flag: string, v: string | undefined) => one(flag, v, (s) => Math.round(parseGoDuration(s))) ?? 0;
  const interval = duration('--health-interval', f.healthInterval);
  const timeout = duration('--health-timeout', f.healthTimeout);
  const startPeriod = duration('--health-start-period', f.healthStartPeriod);
  const retries = one('--health-retries', f.healthRetries, (s) => parseInteger('--health-retries', s)) ?? 0;
  const cmd = f.healthCmd ?? '';
  const exitOnUnhealthy = f.healthExitOnUnhealthy === true;
  const haveSettings = cmd !== '' || interval !== 0 || timeout !== 0 || startPeriod !== 0 || retries !== 0 || exitOnUnhealthy;
  if (f.noHealthcheck) {
    if (haveSettings) throw new UsageError('--no-healthcheck conflicts with --health-* options');
    return { Test: ['NONE'] };
  }
  if (!haveSettings) return undefined;
  if (interval < 0) throw new UsageError('--health-interval cannot be negative');
  if (timeout < 0) throw new UsageError('--health-timeout cannot be negative');
  if (retries < 0) throw new UsageError('--health-retries cannot be negative');
  if (startPeriod < 0) throw new UsageError('--health-start-period cannot be negative');
  const hc: HealthConfig = {};
  if (cmd !== '') hc.Test = ['CMD-SHELL', cmd];
  if (interval !== 0) hc.Interval = interval;
  if (timeout !== 0) hc.Timeout = timeout;
  if (startPeriod !== 0) hc.StartPeriod = startPeriod;
  if (retries !== 0) hc.Retries = retries;
  if (exitOnUnhealthy) hc.ExitOnUnhealthy = true;
  return hc;
}

/**
 * The create request for `flags` (docker's `parse()`): the container name and
 * the body. `args` is `[image, ...command]`. Throws UsageError naming the flag.
 */
export function buildCreateBody(flags: RunFlags, image: string, command: readonly string[], deps: Deps = defaultDeps()): ContainerCreateBody {
  const f = flags;
  const attach = each('-a, --attach', f.attach, (v) => {
    if (!ATTACHABLE.includes(v.toLowerCase())) throw new Error('valid streams are STDIN, STDOUT and STDERR');
    return v.toLowerCase();
  });
  if (f.detach && attach.length > 0) throw new UsageError('Conflicting options: -a and -d');

  const envFromFiles = (f.envFile ?? []).flatMap((file) => {
    try {
      return parseKeyValueFile(deps.readFile(file), file, (k) => deps.env[k]);
    } catch (err) {
      throw bad('--env-file', file, (err as Error).message);
    }
  });
  // Files first, then -e: a later entry wins in the runtime, so -e overrides a file.
  const env = [...envFromFiles, ...each('-e, --env', f.env, (v) => envEntry(v, deps.env))];
  const labelItems = [
    ...(f.labelFile ?? []).flatMap((file) => {
      try {
        return parseKeyValueFile(deps.readFile(file), file);
      } catch (err) {
        throw bad('--label-file', file, (err as Error).message);
      }
    }),
    ...each('-l, --label', f.label, (v) => {
      const key = v.split('=')[0] ?? '';
      if (key.trim() === '') throw new Error(`invalid label '${v}': empty name`);
      return v;
    }),
  ];

  const binds: string[] = [];
  const volumes: Record<string, Record<string, never>> = {};
  for (const v of each('-v, --volume', f.volume, (s) => parseVolume(s, deps.cwd))) {
    if (v.bind !== undefined) binds.push(v.bind);
    if (v.anonymous !== undefined) volumes[v.anonymous] = {};
  }
  const tmpfs: Record<string, string> = {};
  for (const [dir, opts] of each('--tmpfs', f.tmpfs, (v) => {
    const colon = v.indexOf(':');
    const dir = colon < 0 ? v : v.slice(0, colon);
    if (!dir.startsWith('/')) throw new Error(`${dir} is not an absolute path`);
    return [dir, colon < 0 ? '' : v.slice(colon + 1)] as const;
  })) tmpfs[dir] = opts;

  const ulimits = new Map<string, Ulimit>();
  for (const u of each('--ulimit', f.ulimit, parseUlimit)) ulimits.set(u.Name, u);
  const restart = one('--restart', f.restart ?? 'no', parseRestartPolicy) ?? { Name: 'no' };
  if (f.rm && restart.Name !== 'no') throw new UsageError('Conflicting options: --restart and --rm');
  const ports = one('-p, --publish', '', () => parsePortSpecs(f.publish ?? []));
  const expose = each('--expose', f.expose, (v) => {
    const [port = '', proto = 'tcp'] = v.split('/');
    const [start, end] = portRange(port, 'range for exposed ports', v);
    return Array.from({ length: end - start + 1 }, (_, i) => `${start + i}/${proto}`);
  }).flat();
  const oomScoreAdj = one('--oom-score-adj', f.oomScoreAdj, (v) => {
    const n = parseInteger('--oom-score-adj', v);
    if (n < -1000 || n > 1000) throw new Error(`invalid value ${n}, range for oom score adj is [-1000, 1000]`);
    return n;
  });
  const ipAddress = (v: string) => {
    if (isIP(v) === 0) throw new Error(`IP address is not correctly formatted: ${v}`);
    return v;
  };

  const host: HostConfig = {
    ...buildResources(f),
    Binds: binds,
    NetworkMode: f.network ?? 'default',
    PortBindings: ports?.bindings ?? {},
    RestartPolicy: restart,
    AutoRemove: f.rm === true,
    Privileged: f.privileged === true,
    ReadonlyRootfs: f.readOnly === true,
    PublishAllPorts: f.publishAll === true,
  };
  const put = <K extends keyof HostConfig>(key: K, value: HostConfig[K] | undefined) => {
    if (value === undefined || (Array.isArray(value) && value.length === 0) || (typeof value === 'object' && !Array.isArray(value) && Object.keys(value).length === 0)) return;
    host[key] = value;
  };
  put('Mounts', each('--mount', f.mount, parseMount));
  put('Tmpfs', tmpfs);
  put('CapAdd', f.capAdd);
  put('CapDrop', f.capDrop);
  put('Devices', each('--device', f.device, parseDevice));
  put('Ulimits', [...ulimits.values()]);
  put('ShmSize', one('--shm-size', f.shmSize, ramInBytes));
  if (f.init !== undefined) host.Init = f.init;
  put('Runtime', f.runtime);
  put('OomScoreAdj', oomScoreAdj);
  if (f.oomKillDisable) host.OomKillDisable = true;
  put('SecurityOpt', each('--security-opt', f.securityOpt, (v) => securityOpt(v, deps)));
  put('Sysctls', kvMap(each('--sysctl', f.sysctl, (v) => {
    if (v.indexOf('=') <= 0) throw new Error('want KEY=VALUE');
    return v;
  })));
  put('CgroupParent', f.cgroupParent);
  put('Dns', each('--dns', f.dns, ipAddress));
  put('DnsOptions', f.dnsOption);
  put('DnsSearch', f.dnsSearch);
  put('ExtraHosts', each('--add-host', f.addHost, (v) => {
    const colon = v.indexOf(':');
    if (colon <= 0) throw new Error(`bad format for add-host: ${JSON.stringify(v)}`);
    const addr = v.slice(colon + 1).replace(/^\[(.*)\]$/, '$1');
    if (addr !== 'host-gateway' && isIP(addr) === 0) throw new Error(`invalid IP address in add-host: ${JSON.stringify(addr)}`);
    return v;
  }));
  put('GroupAdd', f.groupAdd);
  put('ExternalRootfs', f.externalRootfs);
  // The daemon reads the hook spec: a relative path is the client's.
  put('HookSpec', f.hookSpec === undefined ? undefined : path.resolve(deps.cwd, f.hookSpec));
  put('UserRemap', f.userRemap);
  put('UsernsMode', f.userns);
  if (f.systemContainer === true) host.SystemContainer = true;
  put('NsChangeOpt', f.nsChangeOpt);
  put('PidMode', f.pid);
  put('IpcMode', f.ipc);
  put('UTSMode', f.uts);
  // docker's parseLoggingOpts: `--log-opt k=v` into a map; none of them with the `none` driver.
  if (f.logDriver !== undefined || f.logOpt !== undefined) {
    const logOpts = kvMap(f.logOpt ?? []);
    if (f.logDriver === 'none' && Object.keys(logOpts).length > 0) throw new UsageError('invalid logging opts for driver none');
    host.LogConfig = { Type: f.logDriver ?? '', Config: logOpts };
  }
  put('ContainerIDFile', f.cidfile);

  const attachStdin = attach.includes('stdin') || f.interactive === true;
  const body: ContainerCreateBody = {
    Image: image,
    Tty: f.tty === true,
    OpenStdin: f.interactive === true,
    // docker: -a given → exactly those streams; otherwise stdout and stderr. A detached run attaches none.
    AttachStdin: !f.detach && attachStdin,
    AttachStdout: !f.detach && (attach.length === 0 || attach.includes('stdout')),
    AttachStderr: !f.detach && (attach.length === 0 || attach.includes('stderr')),
    StdinOnce: !f.detach && f.interactive === true && attachStdin,
    HostConfig: host,
  };
  if (f.hostname !== undefined) body.Hostname = f.hostname;
  if (f.domainname !== undefined) body.Domainname = f.domainname;
  if (f.user !== undefined) body.User = f.user;
  if (f.workdir !== undefined) body.WorkingDir = f.workdir;
  if (env.length > 0) body.Env = env;
  if (command.length > 0) body.Cmd = [...command];
  // docker: `--entrypoint ""` sends [""], which the daemon reads as "reset the image's entrypoint".
  if (f.entrypoint !== undefined) body.Entrypoint = [f.entrypoint];
  if (labelItems.length > 0) body.Labels = kvMap(labelItems);
  const exposed = [...(ports?.exposed ?? []), ...expose];
  if (exposed.length > 0) body.ExposedPorts = Object.fromEntries(exposed.map((p) => [p, {}]));
  if (Object.keys(volumes).length > 0) body.Volumes = volumes;
  if (f.stopSignal !== undefined) body.StopSignal = f.stopSignal;
  if (f.stopTimeout !== undefined) body.StopTimeout = parseInteger('--stop-timeout', f.stopTimeout);
  const healthcheck = buildHealthcheck(f);
  if (healthcheck !== undefined) body.Healthcheck = healthcheck;
  if (f.macAddress !== undefined) {
    if (!/^([0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}$/.test(f.macAddress)) throw new UsageError(`invalid argument "${f.macAddress}" for "--mac-address" flag: invalid MAC address`);
    body.MacAddress = f.macAddress.toLowerCase();
  }
  if (f.ip !== undefined) {
    if (isIP(f.ip) !== 4) throw new UsageError(`invalid argument "${f.ip}" for "--ip" flag: invalid IPv4 address`);
    // Docker's shape: the endpoint of the network the container joins (the default one is `bridge`).
    const netName = f.network === undefined || f.network === 'default' ? 'bridge' : f.network;
    body.NetworkingConfig = { EndpointsConfig: { [netName]: { IPAMConfig: { IPv4Address: f.ip } } } };
  }
  return body;
}

/**
 * A Go bool flag given a value (`--human=false`, `--pause=0`): Go's
 * `strconv.ParseBool` words; the flag alone (commander's `true`) is true.
 */
export function parseBoolFlag(value: string | boolean | undefined, flag: string): boolean {
  const raw = value === undefined || value === true ? 'true' : String(value);
  if (!/^(true|false|1|0|t|f|TRUE|FALSE|True|False|T|F)$/.test(raw)) throw new UsageError(`invalid argument ${JSON.stringify(raw)} for "${flag}" flag: strconv.ParseBool: parsing ${JSON.stringify(raw)}: invalid syntax`);
  return /^(true|1|t|TRUE|True|T)$/.test(raw);
}
