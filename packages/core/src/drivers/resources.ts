/**
 * `ResourceUpdate` (isula update, the CRI's UpdateContainerResources) as OCI
 * LinuxResources: the shape runc's and crun's `update -r FILE` take and the
 * one containerd's shims take in an Any. Only the fields that are set appear.
 */
import type { ResourceUpdate } from './runtime.js';

export type OciLinuxResources = Record<string, Record<string, number | string>>;

export function ociLinuxResources(r: ResourceUpdate, opts: { blkioWeight?: boolean } = {}): OciLinuxResources {
  const res: OciLinuxResources = {};
  const set = (group: string, key: string, value: number | string | undefined) => {
    if (value !== undefined) (res[group] ??= {})[key] = value;
  };
  set('memory', 'limit', r.memoryBytes);
  set('memory', 'swap', r.memorySwapBytes);
  set('cpu', 'shares', r.cpuShares);
  set('cpu', 'quota', r.cpuQuota);
  set('cpu', 'period', r.cpuPeriod);
  set('cpu', 'cpus', r.cpusetCpus);
  set('cpu', 'mems', r.cpusetMems);
  set('pids', 'limit', r.pidsLimit);
  // The caller may write the weight itself (a BFQ host has no blkio.weight: PLATFORM.md §8).
  if (opts.blkioWeight !== false) set('blockIO', 'weight', r.blkioWeight);
  return res;
}
