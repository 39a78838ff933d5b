/**
 * Container statistics read from the host cgroup the spec names
 * (`linux.cgroupsPath`). With containerd-shim-runc-v2 that is the
 * container's own cgroup. With kata it is the sandbox's host cgroup (the VM
 * and its helpers), which is what the host pays for: documented in the README.
 *
 * Why not the shim's Stats RPC: it returns an Any of containerd's cgroups
 * `Metrics` message (io.containerd.cgroups.v1.Metrics, v2 differs), whose
 * definitions are not among the reference protos this package is checked
 * against; reading the files gives the same numbers without a second schema.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import type { ContainerStats } from '@isula/core';

const ROOT = '/sys/fs/cgroup';

async function num(file: string): Promise<number | undefined> {
  const t = await fs.readFile(file, 'utf8').catch(() => undefined);
  if (t === undefined) return undefined;
  const n = Number(t.trim().split(/\s+/)[0]);
  return Number.isFinite(n) ? n : undefined;
}

async function keyed(file: string): Promise<Record<string, number>> {
  const t = await fs.readFile(file, 'utf8').catch(() => '');
  const out: Record<string, number> = {};
  for (const line of t.split('\n')) {
    const [k, v] = line.trim().split(/\s+/);
    if (k && v !== undefined && Number.isFinite(Number(v))) out[k] = Number(v);
  }
  return out;
}

async function isV2(): Promise<boolean> {
  return fs.access(path.join(ROOT, 'cgroup.controllers')).then(() => true, () => false);
}

/** undefined when the cgroup does not exist (anymore). */
export async function readStats(cgroupPath: string): Promise<ContainerStats | undefined> {
  const rel = cgroupPath.replace(/^\/+/, '');
  if (await isV2()) {
    const dir = path.join(ROOT, rel);
    if (!(await fs.access(dir).then(() => true, () => false))) return undefined;
    const cpu = await keyed(path.join(dir, 'cpu.stat'));
    const max = await fs.readFile(path.join(dir, 'memory.max'), 'utf8').catch(() => 'max');
    const memoryStat = await keyed(path.join(dir, 'memory.stat'));
    return {
      readAt: new Date(),
      cpuUsageNs: (cpu['usage_usec'] ?? 0) * 1000,
      memoryUsageBytes: (await num(path.join(dir, 'memory.current'))) ?? 0,
      memoryLimitBytes: max.trim() === 'max' ? 0 : Number(max.trim()),
      pidsCurrent: (await num(path.join(dir, 'pids.current'))) ?? 0,
      memoryStat,
    };
  }
  const mem = path.join(ROOT, 'memory', rel);
  if (!(await fs.access(mem).then(() => true, () => false))) return undefined;
  const perCpu = (await fs.readFile(path.join(ROOT, 'cpuacct', rel, 'cpuacct.usage_percpu'), 'utf8').catch(() => ''))
    .trim().split(/\s+/).filter(Boolean).map(Number);
  const maxUsage = await num(path.join(mem, 'memory.max_usage_in_bytes'));
  return {
    readAt: new Date(),
    cpuUsageNs: (await num(path.join(ROOT, 'cpuacct', rel, 'cpuacct.usage'))) ?? 0,
    memoryUsageBytes: (await num(path.join(mem, 'memory.usage_in_bytes'))) ?? 0,
    memoryLimitBytes: (await num(path.join(mem, 'memory.limit_in_bytes'))) ?? 0,
    pidsCurrent: (await num(path.join(ROOT, 'pids', rel, 'pids.current'))) ?? 0,
    ...(perCpu.length > 0 && { perCpuUsageNs: perCpu }),
    ...(maxUsage !== undefined && { memoryMaxUsageBytes: maxUsage }),
    memoryStat: await keyed(path.join(mem, 'memory.stat')),
  };
}

/** The cgroup's OOM kill count (v1 memory.oom_control `oom_kill`, v2 memory.events `oom_kill`). */
export async function readOomKills(cgroupPath: string): Promise<number> {
  const rel = cgroupPath.replace(/^\/+/, '');
  if (await isV2()) return (await keyed(path.join(ROOT, rel, 'memory.events')))['oom_kill'] ?? 0;
  return (await keyed(path.join(ROOT, 'memory', rel, 'memory.oom_control')))['oom_kill'] ?? 0;
}
