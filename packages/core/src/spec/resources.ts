/**
 * HostConfig resources to OCI `linux.resources`, with Docker's checks
 * (moby `verifyPlatformContainerResources`) and warnings. Used at create
 * (validation), at start (the spec) and by `isula update`.
 */
import fs from 'node:fs';
import type { HostConfig, ThrottleDevice, WeightDevice } from '../container/docker-types.js';
import type { OciLinuxResources, OciThrottleDevice, OciWeightDevice } from './oci-types.js';
import { cgroupFeatures, cpuCount, onlineCpus, onlineMems } from './host.js';
import { invalidConfig } from './invalid.js';
import { deviceNumbers } from './devices.js';

/** Docker's smallest memory limit (`linuxMinMemory`). */
export const MIN_MEMORY_BYTES = 6 * 1024 * 1024;
const MIN_CPU_SHARES = 2;
const MAX_CPU_SHARES = 262144;
const DEFAULT_CPU_PERIOD_US = 100000;

/** Parses a cpuset list ("0-2,4"); undefined when the syntax is wrong. */
export function parseCpuset(list: string): Set<number> | undefined {
  const ids = new Set<number>();
  for (const part of list.split(',')) {
    const m = /^([0-9]+)(?:-([0-9]+))?$/.exec(part);
    if (m === null) return undefined;
    const start = Number(m[1]);
    const end = m[2] === undefined ? start : Number(m[2]);
    if (end < start || end - start > 65536) return undefined;
    for (let i = start; i <= end; i++) ids.add(i);
  }
  return ids;
}

function checkCpuset(value: string | undefined, field: 'CpusetCpus' | 'CpusetMems'): void {
  if (value === undefined || value === '') return;
  const what = field === 'CpusetCpus' ? 'cpus' : 'mems';
  const requested = parseCpuset(value);
  if (requested === undefined) throw invalidConfig(`Invalid value ${value} for cpuset ${what}`, { field, value });
  const availableText = field === 'CpusetCpus' ? onlineCpus() : onlineMems();
  if (availableText === undefined) return;
  const available = parseCpuset(availableText) ?? new Set<number>();
  for (const id of requested) {
    if (!available.has(id)) {
      const noun = field === 'CpusetCpus' ? 'CPUs' : 'memory nodes';
      throw invalidConfig(`Requested ${noun} are not available - requested ${value}, available: ${availableText}`, { field, value });
    }
  }
}

function isInt(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v);
}

function checkInt(hc: HostConfig, field: keyof HostConfig): void {
  const v = hc[field];
  if (v !== undefined && v !== null && !isInt(v)) throw invalidConfig(`invalid ${field} ${JSON.stringify(v)}: must be an integer`, { field, value: v });
}

/** Docker's resource checks; throws CONTAINER_CONFIG_INVALID naming the field and value. */
export function validateResources(hc: HostConfig): void {
  for (const f of ['Memory', 'MemorySwap', 'MemoryReservation', 'NanoCpus', 'CpuShares', 'CpuQuota', 'CpuPeriod', 'CpuRealtimePeriod', 'CpuRealtimeRuntime', 'PidsLimit', 'BlkioWeight', 'MemorySwappiness', 'KernelMemory'] as const) checkInt(hc, f);
  const memory = hc.Memory ?? 0;
  const swap = hc.MemorySwap ?? 0;
  const reservation = hc.MemoryReservation ?? 0;
  if (memory < 0) throw invalidConfig(`invalid Memory ${memory}: must not be negative`, { field: 'Memory', value: memory });
  if (memory > 0 && memory < MIN_MEMORY_BYTES) throw invalidConfig('Minimum memory limit allowed is 6MB', { field: 'Memory', value: memory });
  if (swap < -1) throw invalidConfig(`invalid MemorySwap ${swap}: -1 (unlimited) is the only negative value`, { field: 'MemorySwap', value: swap });
  if (memory > 0 && swap > 0 && swap < memory) throw invalidConfig('Minimum memoryswap limit should be larger than memory limit, see usage', { field: 'MemorySwap', value: swap });
  if (memory === 0 && swap > 0) throw invalidConfig('You should always set the Memory limit when using Memoryswap limit, see usage', { field: 'MemorySwap', value: swap });
  if (reservation < 0) throw invalidConfig(`invalid MemoryReservation ${reservation}: must not be negative`, { field: 'MemoryReservation', value: reservation });
  if (reservation > 0 && reservation < MIN_MEMORY_BYTES) throw invalidConfig('Minimum memory reservation allowed is 6MB', { field: 'MemoryReservation', value: reservation });
  if (memory > 0 && reservation > 0 && memory < reservation) throw invalidConfig('Minimum memory limit can not be less than memory reservation limit, see usage', { field: 'MemoryReservation', value: reservation });
  const swappiness = hc.MemorySwappiness;
  if (swappiness !== undefined && swappiness !== null && swappiness !== -1 && (swappiness < 0 || swappiness > 100)) {
    throw invalidConfig(`Invalid value: ${swappiness}, valid memory swappiness range is 0-100`, { field: 'MemorySwappiness', value: swappiness });
  }

  const nano = hc.NanoCpus ?? 0;
  if (nano !== 0 && (hc.CpuPeriod ?? 0) !== 0) throw invalidConfig('Conflicting options: Nano CPUs and CPU Period cannot both be set', { field: 'NanoCpus' });
  if (nano !== 0 && (hc.CpuQuota ?? 0) !== 0) throw invalidConfig('Conflicting options: Nano CPUs and CPU Quota cannot both be set', { field: 'NanoCpus' });
  const cpus = cpuCount();
  if (nano < 0 || nano > cpus * 1e9) throw invalidConfig(`Range of CPUs is from 0.01 to ${cpus}.00, as there are only ${cpus} CPUs available`, { field: 'NanoCpus', value: nano });
  const period = hc.CpuPeriod ?? 0;
  if (period !== 0 && (period < 1000 || period > 1000000)) throw invalidConfig('CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)', { field: 'CpuPeriod', value: period });
  const quota = hc.CpuQuota ?? 0;
  if (quota > 0 && quota < 1000) throw invalidConfig('CPU cfs quota can not be less than 1ms (i.e. 1000)', { field: 'CpuQuota', value: quota });
  if (quota < -1) throw invalidConfig(`invalid CpuQuota ${quota}: -1 (unlimited) is the only negative value`, { field: 'CpuQuota', value: quota });
  checkCpuset(hc.CpusetCpus, 'CpusetCpus');
  checkCpuset(hc.CpusetMems, 'CpusetMems');

  const weight = hc.BlkioWeight ?? 0;
  if (weight !== 0 && (weight < 10 || weight > 1000)) throw invalidConfig('Range of blkio weight is from 10 to 1000', { field: 'BlkioWeight', value: weight });
  for (const d of hc.BlkioWeightDevice ?? []) {
    if (!isInt(d.Weight) || d.Weight < 10 || d.Weight > 1000) throw invalidConfig(`invalid BlkioWeightDevice "${d.Path ?? ''}:${d.Weight ?? ''}": weight must be from 10 to 1000`);
    checkBlockDevice(d.Path, 'BlkioWeightDevice');
  }
  for (const field of ['BlkioDeviceReadBps', 'BlkioDeviceWriteBps', 'BlkioDeviceReadIOps', 'BlkioDeviceWriteIOps'] as const) {
    for (const d of hc[field] ?? []) {
      if (!isInt(d.Rate) || d.Rate < 0) throw invalidConfig(`invalid ${field} "${d.Path ?? ''}:${d.Rate ?? ''}": rate must be a non-negative integer`);
      checkBlockDevice(d.Path, field);
    }
  }
}

function checkBlockDevice(devPath: string | undefined, field: string): void {
  let stat: fs.BigIntStats;
  try {
    stat = fs.statSync(devPath ?? '', { bigint: true });
  } catch {
    throw invalidConfig(`invalid ${field} "${devPath ?? ''}": no such device`, { field, value: devPath });
  }
  if (!stat.isBlockDevice()) throw invalidConfig(`invalid ${field} "${devPath ?? ''}": not a block device`, { field, value: devPath });
}

function throttle(list: ThrottleDevice[] | null | undefined): OciThrottleDevice[] | undefined {
  if (list === undefined || list === null || list.length === 0) return undefined;
  return list.map((d) => ({ ...deviceNumbers(fs.statSync(d.Path ?? '', { bigint: true })), rate: d.Rate ?? 0 }));
}

function weights(list: WeightDevice[] | null | undefined): OciWeightDevice[] | undefined {
  if (list === undefined || list === null || list.length === 0) return undefined;
  return list.map((d) => ({ ...deviceNumbers(fs.statSync(d.Path ?? '', { bigint: true })), weight: d.Weight ?? 0 }));
}

/**
 * OCI `linux.resources` (without `devices`) for a HostConfig, after
 * `validateResources`. Docker's adjustments apply: MemorySwap defaults to
 * twice Memory; a kernel without swap accounting gets no swap limit; CPU
 * shares are clamped to 2..262144; NanoCpus become quota/period (period
 * 100000 µs); PidsLimit ≤ 0 is unlimited (-1). Things Docker warns about are
 * pushed onto `warnings`.
 */
export function resourcesFromHostConfig(hc: HostConfig, warnings: string[] = []): OciLinuxResources {
  validateResources(hc);
  const features = cgroupFeatures();
  const resources: OciLinuxResources = {};

  const memory: NonNullable<OciLinuxResources['memory']> = {};
  let limit = hc.Memory ?? 0;
  let swap = hc.MemorySwap ?? 0;
  if (limit > 0 && !features.memoryLimit) {
    warnings.push('Your kernel does not support memory limit capabilities or the cgroup is not mounted. Limitation discarded.');
    limit = 0;
    swap = 0;
  }
  if (limit > 0 && swap === 0) swap = limit * 2;
  if (limit > 0 && swap !== -1 && !features.swapLimit) {
    warnings.push('Your kernel does not support swap limit capabilities or the cgroup is not mounted. Memory limited without swap.');
    swap = 0;
  }
  if (limit > 0) memory.limit = limit;
  if (limit > 0 && swap !== 0) memory.swap = swap;
  if ((hc.MemoryReservation ?? 0) > 0) memory.reservation = hc.MemoryReservation as number;
  if (hc.MemorySwappiness !== undefined && hc.MemorySwappiness !== null && hc.MemorySwappiness !== -1) memory.swappiness = hc.MemorySwappiness;
  if (hc.OomKillDisable === true) {
    memory.disableOOMKiller = true;
    if (limit === 0) warnings.push('OOM killer is disabled for the container, but no memory limit is set, this can result in the system running out of resources.');
  }
  if ((hc.KernelMemory ?? 0) !== 0 || (hc.KernelMemoryTCP ?? 0) !== 0) {
    warnings.push('Specifying a kernel memory limit is deprecated and not supported; the kernel memory limit was ignored.');
  }
  if (Object.keys(memory).length > 0) resources.memory = memory;

  const cpu: NonNullable<OciLinuxResources['cpu']> = {};
  let shares = hc.CpuShares ?? 0;
  if (shares < 0 || (shares > 0 && shares < MIN_CPU_SHARES)) {
    warnings.push(`Changing requested CPUShares of ${shares} to minimum allowed of ${MIN_CPU_SHARES}`);
    shares = MIN_CPU_SHARES;
  } else if (shares > MAX_CPU_SHARES) {
    warnings.push(`Changing requested CPUShares of ${shares} to maximum allowed of ${MAX_CPU_SHARES}`);
    shares = MAX_CPU_SHARES;
  }
  if (shares > 0) cpu.shares = shares;
  const nano = hc.NanoCpus ?? 0;
  if (nano > 0) {
    cpu.period = DEFAULT_CPU_PERIOD_US;
    cpu.quota = Math.floor((nano * DEFAULT_CPU_PERIOD_US) / 1e9);
  } else {
    if ((hc.CpuPeriod ?? 0) !== 0) cpu.period = hc.CpuPeriod as number;
    if ((hc.CpuQuota ?? 0) !== 0) cpu.quota = hc.CpuQuota as number;
  }
  if ((hc.CpuRealtimePeriod ?? 0) !== 0) cpu.realtimePeriod = hc.CpuRealtimePeriod as number;
  if ((hc.CpuRealtimeRuntime ?? 0) !== 0) cpu.realtimeRuntime = hc.CpuRealtimeRuntime as number;
  if (hc.CpusetCpus !== undefined && hc.CpusetCpus !== '') cpu.cpus = hc.CpusetCpus;
  if (hc.CpusetMems !== undefined && hc.CpusetMems !== '') cpu.mems = hc.CpusetMems;
  if (Object.keys(cpu).length > 0) resources.cpu = cpu;

  if (hc.PidsLimit !== undefined && hc.PidsLimit !== null) {
    if (!features.pidsLimit) warnings.push('Your kernel does not support pids limit capabilities or the cgroup is not mounted. PIDs limit discarded.');
    else resources.pids = { limit: hc.PidsLimit <= 0 ? -1 : hc.PidsLimit };
  }

  const blockIO: NonNullable<OciLinuxResources['blockIO']> = {};
  if ((hc.BlkioWeight ?? 0) > 0) {
    if (features.blkioWeight) blockIO.weight = hc.BlkioWeight as number;
    else warnings.push('Your kernel does not support Block I/O weight or the cgroup is not mounted. Weight discarded.');
  }
  const weightDevice = weights(hc.BlkioWeightDevice);
  if (weightDevice !== undefined) blockIO.weightDevice = weightDevice;
  const readBps = throttle(hc.BlkioDeviceReadBps);
  if (readBps !== undefined) blockIO.throttleReadBpsDevice = readBps;
  const writeBps = throttle(hc.BlkioDeviceWriteBps);
  if (writeBps !== undefined) blockIO.throttleWriteBpsDevice = writeBps;
  const readIops = throttle(hc.BlkioDeviceReadIOps);
  if (readIops !== undefined) blockIO.throttleReadIOPSDevice = readIops;
  const writeIops = throttle(hc.BlkioDeviceWriteIOps);
  if (writeIops !== undefined) blockIO.throttleWriteIOPSDevice = writeIops;
  if (Object.keys(blockIO).length > 0) resources.blockIO = blockIO;

  return resources;
}
