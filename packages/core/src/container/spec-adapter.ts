/**
 * Binds the container domain to the OCI spec builder (packages/core/src/spec).
 */
import type { Logger } from 'pino';
import type { ResourceUpdate } from '../drivers/runtime.js';
import { buildSpec, CONTAINER_FILES, resolveArgs, validateHostConfig, writeContainerFiles } from '../spec/index.js';
import type { HostConfig } from './docker-types.js';
import type { SpecBuilder } from './manager.js';

const CFS_PERIOD_US = 100_000;

export function dockerSpecBuilder(log: Logger): SpecBuilder {
  return {
    validate(body) {
      validateHostConfig(body.HostConfig ?? {});
    },
    command(body, image) {
      const [path = '', ...args] = resolveArgs(body, image);
      return { path, args };
    },
    async writeFiles(containerDir, record, opts = {}) {
      const hc = record.HostConfig;
      const ip = containerIp(record);
      await writeContainerFiles(containerDir, {
        hostname: record.Config.Hostname ?? record.Id.slice(0, 12),
        ...(record.Config.Domainname !== undefined && record.Config.Domainname !== '' && { domainname: record.Config.Domainname }),
        ...(hc.ExtraHosts && { extraHosts: hc.ExtraHosts }),
        ...(hc.Dns && { dns: hc.Dns }),
        ...(hc.DnsSearch && { dnsSearch: hc.DnsSearch }),
        ...(hc.DnsOptions && { dnsOptions: hc.DnsOptions }),
        ...(ip !== undefined && { ip }),
        ...(opts.inPlace === true && { inPlace: true }),
      });
    },
    async build({ record, image, rootfs, containerDir, cgroupsPath, netnsPath, volumeDir }) {
      const volumes = (record.Volumes ?? []).map((v) => ({ destination: v.Destination, source: volumeDir?.(v.Name) ?? '', readOnly: v.ReadOnly }));
      return buildSpec({ id: record.Id, config: record.Config, hostConfig: record.HostConfig, image, rootfs, containerDir, cgroupsPath, log, volumes, ...(record.IdMap !== undefined && { idMap: record.IdMap }), ...(netnsPath !== undefined && { networkNamespacePath: netnsPath }) });
    },
    resources: resourceUpdate,
    boundFiles: Object.keys(CONTAINER_FILES),
  };
}

/** The container's first address on its first network (for /etc/hosts), without the prefix length. */
function containerIp(record: { Network?: { Results: { addresses: { address: string }[] }[] } }): string | undefined {
  const a = record.Network?.Results[0]?.addresses.find((x) => !x.address.includes(':'))?.address;
  return a?.split('/')[0];
}

/** The resource fields an update request set, as the driver's ResourceUpdate (only what was asked). */
export function resourceUpdate(hc: HostConfig): ResourceUpdate {
  const out: ResourceUpdate = {};
  if (hc.Memory !== undefined && hc.Memory > 0) out.memoryBytes = hc.Memory;
  if (hc.MemorySwap !== undefined && hc.MemorySwap !== 0) out.memorySwapBytes = hc.MemorySwap;
  if (hc.CpuShares !== undefined && hc.CpuShares > 0) out.cpuShares = hc.CpuShares;
  if (hc.NanoCpus !== undefined && hc.NanoCpus > 0) {
    out.cpuPeriod = CFS_PERIOD_US;
    out.cpuQuota = Math.round((hc.NanoCpus * CFS_PERIOD_US) / 1e9);
  }
  if (hc.CpuQuota !== undefined && hc.CpuQuota !== 0) out.cpuQuota = hc.CpuQuota;
  if (hc.CpuPeriod !== undefined && hc.CpuPeriod > 0) out.cpuPeriod = hc.CpuPeriod;
  if (hc.CpusetCpus !== undefined && hc.CpusetCpus !== '') out.cpusetCpus = hc.CpusetCpus;
  if (hc.CpusetMems !== undefined && hc.CpusetMems !== '') out.cpusetMems = hc.CpusetMems;
  if (hc.PidsLimit !== undefined && hc.PidsLimit !== null && hc.PidsLimit !== 0) out.pidsLimit = hc.PidsLimit;
  if (hc.BlkioWeight !== undefined && hc.BlkioWeight > 0) out.blkioWeight = hc.BlkioWeight;
  return out;
}
