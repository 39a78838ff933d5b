/**
 * Reading a container's cgroup directly: stats, the OOM kill count, and the
 * blkio weight the runtimes cannot write on a BFQ host (PLATFORM.md §8).
 * v1 (`/sys/fs/cgroup/<controller>/<path>`) or v2 when the host is unified.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import type { ContainerStats } from '@isula/core';

const ROOT = '/sys/fs/cgroup';

let unified: boolean | undefined;
export async function isUnified(): Promise<boolean> {
  unified ??= await fs.access(path.join(ROOT, 'cgroup.controllers')).then(() => true, () => false);
  return unified;
}

/** The container's cgroup path (relative to a hierarchy's root), from its init's /proc/<pid>/cgroup. */
export async function cgroupPathOf(pid: number): Promise<string | undefined> {
  let text: string;
  try {
    text = await fs.readFile(`/proc/${pid}/cgroup`, 'utf8');
  } catch {
    return undefined;
  }
  const lines = text.split('\n').map((l) => l.split(':'));
  const v1 = lines.find((f) => f[1]?.split(',').includes('memory'));
  const v2 = lines.find((f) => f[0] === '0' && f[1] === '');
  return (await isUnified()) ? v2?.[2] : (v1?.[2] ?? v2?.[2]);
}

async function readText(file: string): Promise<string | undefined> {
  try {
    return (await fs.readFile(file, 'utf8')).trim();
  } catch {
    return undefined;
  }
}

async function readNumber(file: string): Promise<number> {
  const text = await readText(file);
  if (text === undefined || text === 'max') return 0;
  const n = Number(text);
  return Number.isFinite(n) ? n : 0;
}

/** `key value` lines (cpu.stat, memory.events, memory.oom_control) into a map. */
async function readKeyed(file: string): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const line of (await readText(file))?.split('\n') ?? []) {
    const [k, v] = line.split(/\s+/);
    if (k !== undefined && v !== undefined) out.set(k, Number(v));
  }
  return out;
}

function v1(controller: string, cgroupPath: string, file: string): string {
  return path.join(ROOT, controller, cgroupPath, file);
}

/** Kernel OOM kills inside the cgroup; undefined when the cgroup is gone. */
export async function readOomKills(cgroupPath: string): Promise<number | undefined> {
  const file = (await isUnified()) ? path.join(ROOT, cgroupPath, 'memory.events') : v1('memory', cgroupPath, 'memory.oom_control');
  const m = await readKeyed(file);
  return m.size === 0 ? undefined : (m.get('oom_kill') ?? 0);
}

export async function readStats(cgroupPath: string): Promise<ContainerStats> {
  const readAt = new Date();
  if (await isUnified()) {
    const dir = path.join(ROOT, cgroupPath);
    const cpu = await readKeyed(path.join(dir, 'cpu.stat'));
    const max = await readText(path.join(dir, 'memory.max'));
    return {
      readAt,
      cpuUsageNs: (cpu.get('usage_usec') ?? 0) * 1000,
      memoryUsageBytes: await readNumber(path.join(dir, 'memory.current')),
      memoryLimitBytes: max === undefined || max === 'max' ? 0 : Number(max),
      pidsCurrent: await readNumber(path.join(dir, 'pids.current')),
      extra: { cgroup: 2, oomKills: (await readKeyed(path.join(dir, 'memory.events'))).get('oom_kill') ?? 0 },
    };
  }
  // cpuacct is mounted alone on these hosts, as `cpu,cpuacct` on others.
  let cpuacct = 'cpuacct';
  let cpuUsageNs = await readNumber(v1(cpuacct, cgroupPath, 'cpuacct.usage'));
  if (cpuUsageNs === 0) {
    cpuacct = 'cpu,cpuacct';
    cpuUsageNs = await readNumber(v1(cpuacct, cgroupPath, 'cpuacct.usage'));
  }
  // readText trims: no empty field at the end to count as a CPU.
  const perCpu = (await readText(v1(cpuacct, cgroupPath, 'cpuacct.usage_percpu')))?.split(/\s+/).filter((f) => f !== '').map(Number).filter(Number.isFinite) ?? [];
  const memoryMaxUsageBytes = await readNumber(v1('memory', cgroupPath, 'memory.max_usage_in_bytes'));
  return {
    readAt,
    cpuUsageNs,
    memoryUsageBytes: await readNumber(v1('memory', cgroupPath, 'memory.usage_in_bytes')),
    memoryLimitBytes: await readNumber(v1('memory', cgroupPath, 'memory.limit_in_bytes')),
    pidsCurrent: await readNumber(v1('pids', cgroupPath, 'pids.current')),
    perCpuUsageNs: perCpu,
    memoryMaxUsageBytes,
    memoryStat: Object.fromEntries(await readKeyed(v1('memory', cgroupPath, 'memory.stat'))),
    blkioServiceBytes: await readBlkio(cgroupPath),
    extra: {
      cgroup: 1,
      memoryMaxUsageBytes,
      oomKills: (await readOomKills(cgroupPath)) ?? 0,
    },
  };
}

/** Bytes per device and operation (`8:0 Read 4096` lines): the BFQ file where the host has one, else the throttle one. */
async function readBlkio(cgroupPath: string): Promise<{ major: number; minor: number; op: string; value: number }[]> {
  let text = await readText(v1('blkio', cgroupPath, 'blkio.bfq.io_service_bytes_recursive'));
  if (text === undefined || text.trim() === '' || /^Total 0$/.test(text.trim())) text = await readText(v1('blkio', cgroupPath, 'blkio.throttle.io_service_bytes_recursive'));
  const out: { major: number; minor: number; op: string; value: number }[] = [];
  for (const line of text?.split('\n') ?? []) {
    const m = /^(\d+):(\d+) (\w+) (\d+)$/.exec(line.trim());
    if (m !== null) out.push({ major: Number(m[1]), minor: Number(m[2]), op: m[3] as string, value: Number(m[4]) });
  }
  return out;
}

/**
 * On a v1 host whose block scheduler is BFQ there is no `blkio.weight`, only
 * `blkio.bfq.weight` (PLATFORM.md §8): runc falls back to it, crun fails.
 * Returns the file to write the weight to ourselves, or undefined when the
 * runtime can do it.
 */
export async function bfqWeightFile(cgroupPath: string): Promise<string | undefined> {
  if (await isUnified()) return undefined;
  const plain = v1('blkio', cgroupPath, 'blkio.weight');
  const bfq = v1('blkio', cgroupPath, 'blkio.bfq.weight');
  if (await fs.access(plain).then(() => true, () => false)) return undefined;
  return (await fs.access(bfq).then(() => true, () => false)) ? bfq : undefined;
}
