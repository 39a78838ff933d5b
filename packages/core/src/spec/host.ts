/**
 * What the spec builder reads about the host: the daemon's own limits, the
 * online CPUs and memory nodes, the cgroup v1 files that tell which limits
 * the kernel supports. Each read is small and synchronous; results that
 * cannot change while the daemon runs are cached.
 */
import fs from 'node:fs';
import os from 'node:os';

/** A resource limit; `Infinity` stands for "unlimited". */
export interface HostRlimit {
  soft: number;
  hard: number;
}

/** /proc/self/limits row titles, by Docker's ulimit names. */
const LIMIT_ROWS: Readonly<Record<string, string>> = Object.freeze({
  cpu: 'Max cpu time',
  fsize: 'Max file size',
  data: 'Max data size',
  stack: 'Max stack size',
  core: 'Max core file size',
  rss: 'Max resident set',
  nproc: 'Max processes',
  nofile: 'Max open files',
  memlock: 'Max locked memory',
  as: 'Max address space',
  locks: 'Max file locks',
  sigpending: 'Max pending signals',
  msgqueue: 'Max msgqueue size',
  nice: 'Max nice priority',
  rtprio: 'Max realtime priority',
  rttime: 'Max realtime timeout',
});

/** Parses /proc/<pid>/limits text into Docker-named limits. */
export function parseProcLimits(text: string): Map<string, HostRlimit> {
  const limits = new Map<string, HostRlimit>();
  const toNumber = (s: string | undefined): number => (s === undefined || s === 'unlimited' ? Infinity : Number(s));
  for (const [name, title] of Object.entries(LIMIT_ROWS)) {
    const line = text.split('\n').find((l) => l.startsWith(title + ' '));
    if (line === undefined) continue;
    const fields = line.slice(title.length).trim().split(/\s+/);
    limits.set(name, { soft: toNumber(fields[0]), hard: toNumber(fields[1]) });
  }
  return limits;
}

/** The daemon's own resource limits (read fresh: `ulimit` can change them). */
export function daemonRlimits(): Map<string, HostRlimit> {
  try {
    return parseProcLimits(fs.readFileSync('/proc/self/limits', 'utf8'));
  } catch {
    return new Map();
  }
}

/** The daemon's own oom_score_adj: a container may not go below it without CAP_SYS_RESOURCE. */
export function daemonOomScoreAdj(): number {
  try {
    const value = Number.parseInt(fs.readFileSync('/proc/self/oom_score_adj', 'utf8').trim(), 10);
    return Number.isFinite(value) ? value : 0;
  } catch {
    return 0;
  }
}

function readTrimmed(file: string): string | undefined {
  try {
    return fs.readFileSync(file, 'utf8').trim();
  } catch {
    return undefined;
  }
}

/** Online CPUs, e.g. "0-1" (undefined when the file is missing). */
export function onlineCpus(): string | undefined {
  return readTrimmed('/sys/devices/system/cpu/online');
}

/** Online memory nodes, e.g. "0"; a kernel without NUMA has node 0 only. */
export function onlineMems(): string {
  return readTrimmed('/sys/devices/system/node/online') ?? '0';
}

export function cpuCount(): number {
  return os.availableParallelism();
}

/** Which cgroup v1 limits the kernel offers (moby's `sysinfo`). */
export interface CgroupFeatures {
  memoryLimit: boolean;
  swapLimit: boolean;
  /**
   * blkio.weight, or BFQ's blkio.bfq.weight which runc 1.1 falls back to
   * (PLATFORM §8). BFQ shows its weight file in child cgroups only; the root
   * has its blkio.bfq.* statistics.
   */
  blkioWeight: boolean;
  pidsLimit: boolean;
}

let cachedFeatures: CgroupFeatures | undefined;

export function cgroupFeatures(): CgroupFeatures {
  if (cachedFeatures !== undefined) return cachedFeatures;
  const has = (p: string): boolean => fs.existsSync(`/sys/fs/cgroup/${p}`);
  const unified = has('cgroup.controllers') && !has('memory');
  cachedFeatures = unified
    ? { memoryLimit: true, swapLimit: true, blkioWeight: true, pidsLimit: true }
    : {
        memoryLimit: has('memory/memory.limit_in_bytes'),
        swapLimit: has('memory/memory.memsw.limit_in_bytes'),
        blkioWeight: has('blkio/blkio.weight') || has('blkio/blkio.bfq.weight') || has('blkio/blkio.bfq.io_service_bytes'),
        pidsLimit: has('pids'),
      };
  return cachedFeatures;
}

let cachedLastCap: number | undefined;

/**
 * The kernel's highest capability number (`cap_last_cap`), 40 when unreadable.
 * Read once: it is the running kernel's, and every spec asked for it per
 * capability (16 reads of /proc on each start).
 */
export function lastCapability(): number {
  if (cachedLastCap !== undefined) return cachedLastCap;
  const value = Number.parseInt(readTrimmed('/proc/sys/kernel/cap_last_cap') ?? '', 10);
  cachedLastCap = Number.isFinite(value) ? value : 40;
  return cachedLastCap;
}

let cachedBounding: bigint | undefined | null = null;

/**
 * The daemon's capability bounding set (/proc/self/status CapBnd) as a bit
 * mask: a container cannot be given a capability the daemon lacks (here
 * CAP_SYS_RESOURCE, PLATFORM §1), runc fails with "unable to apply caps".
 * Undefined when unreadable. Read once: the daemon never drops a capability
 * from it (and a bounding set can only shrink).
 */
export function daemonBoundingCapabilities(): bigint | undefined {
  if (cachedBounding !== null) return cachedBounding;
  const status = readTrimmed('/proc/self/status');
  const m = status === undefined ? null : /^CapBnd:\s*([0-9a-f]+)$/m.exec(status);
  cachedBounding = m === null ? undefined : BigInt(`0x${m[1] as string}`);
  return cachedBounding;
}
