/**
 * The container's cgroup, read and written directly: lxc puts the payload in
 * exactly `spec.linux.cgroupsPath` (lxc.cgroup.dir.container), so stats,
 * update, the freezer and pids need no lxc tool. v1 per-controller
 * hierarchies (this host, PLATFORM.md §8) or v2 unified.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import type { ContainerStats, ResourceUpdate } from '@isula/core';

export const CGROUP_ROOT = '/sys/fs/cgroup';

let unified: boolean | undefined;
export async function isUnified(): Promise<boolean> {
  unified ??= await fs.access(path.join(CGROUP_ROOT, 'cgroup.controllers')).then(() => true, () => false);
  return unified;
}

/** v1 without blkio.weight but with BFQ statistics: the weight is blkio.bfq.weight. */
export async function isBfq(): Promise<boolean> {
  const has = (f: string) => fs.access(path.join(CGROUP_ROOT, 'blkio', f)).then(() => true, () => false);
  return !(await has('blkio.weight')) && (await has('blkio.bfq.io_service_bytes'));
}

const file = async (ctrl: string, rel: string, name: string) => ((await isUnified()) ? path.join(CGROUP_ROOT, rel, name) : path.join(CGROUP_ROOT, ctrl, rel, name));

async function readText(p: string): Promise<string | undefined> {
  try {
    return (await fs.readFile(p, 'utf8')).trim();
  } catch {
    return undefined;
  }
}

async function readNumber(p: string): Promise<number> {
  const t = await readText(p);
  const n = Number(t);
  return t === undefined || t === 'max' || !Number.isFinite(n) ? 0 : n;
}

async function readKeyed(p: string): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const line of (await readText(p))?.split('\n') ?? []) {
    const [k, v] = line.split(/\s+/);
    if (k !== undefined && v !== undefined && Number.isFinite(Number(v))) out[k] = Number(v);
  }
  return out;
}

/** Kernel OOM kills in the cgroup; undefined once it is gone. */
export async function readOomKills(rel: string): Promise<number | undefined> {
  const m = await readKeyed(await file('memory', rel, (await isUnified()) ? 'memory.events' : 'memory.oom_control'));
  return Object.keys(m).length === 0 ? undefined : (m['oom_kill'] ?? 0);
}

export async function readStats(rel: string): Promise<ContainerStats> {
  const readAt = new Date();
  if (await isUnified()) {
    const dir = path.join(CGROUP_ROOT, rel);
    const cpu = await readKeyed(path.join(dir, 'cpu.stat'));
    return {
      readAt,
      cpuUsageNs: (cpu['usage_usec'] ?? 0) * 1000,
      memoryUsageBytes: await readNumber(path.join(dir, 'memory.current')),
      memoryLimitBytes: await readNumber(path.join(dir, 'memory.max')),
      pidsCurrent: await readNumber(path.join(dir, 'pids.current')),
      memoryStat: await readKeyed(path.join(dir, 'memory.stat')),
    };
  }
  const v1 = (c: string, f: string) => path.join(CGROUP_ROOT, c, rel, f);
  let acct = 'cpuacct';
  if (!(await fs.access(v1(acct, 'cpuacct.usage')).then(() => true, () => false))) acct = 'cpu,cpuacct';
  const perCpu = (await readText(v1(acct, 'cpuacct.usage_percpu')))?.split(/\s+/).filter((f) => f !== '').map(Number).filter(Number.isFinite) ?? [];
  const memoryMaxUsageBytes = await readNumber(v1('memory', 'memory.max_usage_in_bytes'));
  return {
    readAt,
    cpuUsageNs: await readNumber(v1(acct, 'cpuacct.usage')),
    memoryUsageBytes: await readNumber(v1('memory', 'memory.usage_in_bytes')),
    memoryLimitBytes: await readNumber(v1('memory', 'memory.limit_in_bytes')),
    pidsCurrent: await readNumber(v1('pids', 'pids.current')),
    perCpuUsageNs: perCpu,
    memoryMaxUsageBytes,
    memoryStat: await readKeyed(v1('memory', 'memory.stat')),
    extra: { cgroup: 1, oomKills: (await readOomKills(rel)) ?? 0 },
  };
}

/** Every pid in the container's cgroup (the payload; lxc's monitor has its own). */
export async function cgroupPids(rel: string): Promise<number[]> {
  const text = (await readText(await file('pids', rel, 'cgroup.procs'))) ?? (await readText(await file('memory', rel, 'cgroup.procs'))) ?? '';
  return text.split('\n').map(Number).filter((n) => Number.isInteger(n) && n > 0);
}

export async function freezerState(rel: string): Promise<'FROZEN' | 'THAWED' | 'FREEZING' | undefined> {
  if (await isUnified()) {
    const t = await readText(path.join(CGROUP_ROOT, rel, 'cgroup.freeze'));
    return t === undefined ? undefined : t === '1' ? 'FROZEN' : 'THAWED';
  }
  const t = await readText(path.join(CGROUP_ROOT, 'freezer', rel, 'freezer.state'));
  return t === 'FROZEN' || t === 'THAWED' || t === 'FREEZING' ? t : undefined;
}

/** Freezes or thaws, and waits (bounded) until the kernel says it is done. */
export async function setFrozen(rel: string, frozen: boolean, timeoutMs = 5000): Promise<void> {
  const v2 = await isUnified();
  const p = v2 ? path.join(CGROUP_ROOT, rel, 'cgroup.freeze') : path.join(CGROUP_ROOT, 'freezer', rel, 'freezer.state');
  const want = frozen ? 'FROZEN' : 'THAWED';
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    await fs.writeFile(p, v2 ? (frozen ? '1' : '0') : want);
    if ((await freezerState(rel)) === want) return;
    if (Date.now() > deadline) throw new Error(`cgroup ${rel} did not become ${want} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Writes `isula update`'s values; memory and swap in the order the kernel accepts. */
export async function updateResources(rel: string, r: ResourceUpdate, bfq: boolean): Promise<void> {
  if (await isUnified()) {
    const w = (f: string, v: string) => fs.writeFile(path.join(CGROUP_ROOT, rel, f), v);
    if (r.memoryBytes !== undefined) await w('memory.max', r.memoryBytes > 0 ? String(r.memoryBytes) : 'max');
    if (r.memorySwapBytes !== undefined && r.memoryBytes !== undefined) await w('memory.swap.max', r.memorySwapBytes < 0 ? 'max' : String(Math.max(0, r.memorySwapBytes - r.memoryBytes)));
    if (r.cpuShares !== undefined) await w('cpu.weight', String(Math.round(1 + ((r.cpuShares - 2) * 9999) / 262142)));
    if (r.cpuQuota !== undefined) await w('cpu.max', `${r.cpuQuota > 0 ? r.cpuQuota : 'max'} ${r.cpuPeriod ?? 100000}`);
    if (r.cpusetCpus !== undefined) await w('cpuset.cpus', r.cpusetCpus);
    if (r.cpusetMems !== undefined) await w('cpuset.mems', r.cpusetMems);
    if (r.pidsLimit !== undefined) await w('pids.max', r.pidsLimit > 0 ? String(r.pidsLimit) : 'max');
    return;
  }
  const w = (c: string, f: string, v: string | number) => fs.writeFile(path.join(CGROUP_ROOT, c, rel, f), String(v));
  if (r.memoryBytes !== undefined || r.memorySwapBytes !== undefined) {
    const cur = await readNumber(path.join(CGROUP_ROOT, 'memory', rel, 'memory.limit_in_bytes'));
    const mem = r.memoryBytes;
    const swap = r.memorySwapBytes;
    // Raising: memsw first (it must stay >= the limit); lowering: the limit first.
    if (mem !== undefined && swap !== undefined && mem > cur) {
      await w('memory', 'memory.memsw.limit_in_bytes', swap);
      await w('memory', 'memory.limit_in_bytes', mem);
    } else {
      if (mem !== undefined) await w('memory', 'memory.limit_in_bytes', mem);
      if (swap !== undefined) await w('memory', 'memory.memsw.limit_in_bytes', swap);
    }
  }
  if (r.cpuShares !== undefined) await w('cpu', 'cpu.shares', r.cpuShares);
  if (r.cpuPeriod !== undefined) await w('cpu', 'cpu.cfs_period_us', r.cpuPeriod);
  if (r.cpuQuota !== undefined) await w('cpu', 'cpu.cfs_quota_us', r.cpuQuota);
  if (r.cpusetCpus !== undefined) await w('cpuset', 'cpuset.cpus', r.cpusetCpus);
  if (r.cpusetMems !== undefined) await w('cpuset', 'cpuset.mems', r.cpusetMems);
  if (r.pidsLimit !== undefined) await w('pids', 'pids.max', r.pidsLimit > 0 ? r.pidsLimit : 'max');
  if (r.blkioWeight !== undefined) await w('blkio', bfq ? 'blkio.bfq.weight' : 'blkio.weight', r.blkioWeight);
}

/**
 * Removes a cgroup (and any child lxc left, e.g. an `lxc.pivot`) in every
 * hierarchy. Only empty cgroups can go: a busy one is left and reported.
 */
export async function removeCgroup(rel: string, retry = true): Promise<string[]> {
  if (rel === '' || rel.includes('..')) return [];
  const roots = (await isUnified()) ? [CGROUP_ROOT] : (await fs.readdir(CGROUP_ROOT).catch(() => [] as string[])).map((c) => path.join(CGROUP_ROOT, c));
  const left: string[] = [];
  for (const r of roots) {
    const dir = path.join(r, rel);
    if (!(await rmTree(dir, 4, retry ? 20 : 1))) left.push(dir);
  }
  return left;
}

async function rmTree(dir: string, depth: number, tries: number): Promise<boolean> {
  let entries: import('node:fs').Dirent[];
  try {
    entries = await fs.readdir(dir, { withFileTypes: true });
  } catch {
    return true; // gone (or not a cgroup dir at all)
  }
  if (depth > 0) for (const e of entries) if (e.isDirectory()) await rmTree(path.join(dir, e.name), depth - 1, tries);
  for (let i = 0; i < tries; i++) {
    try {
      await fs.rmdir(dir);
      return true;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return true;
      if (code !== 'EBUSY') return false;
      await new Promise((r) => setTimeout(r, 10 * (i + 1)));
    }
  }
  return false;
}
