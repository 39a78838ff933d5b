/**
 * Docker-shaped views of a container record: `GET /containers/{id}/json`
 * (inspect) and the items of `GET /containers/json` (ps).
 */
import path from 'node:path';
import { LOG_FILE, type ContainerRecord, type ContainerStatus } from './record.js';
import { staticAddress } from './network.js';

export function inspectView(r: ContainerRecord, containerDir: string): Record<string, unknown> {
  const st = r.State;
  const merged = r.Rootfs ?? '';
  const layerDir = merged === '' ? '' : path.dirname(merged);
  return {
    Id: r.Id,
    Created: r.Created,
    Path: r.Path,
    Args: r.Args,
    State: {
      Status: st.Status,
      Running: st.Status === 'running' || st.Status === 'paused' || st.Status === 'restarting',
      Paused: st.Status === 'paused',
      Restarting: st.Status === 'restarting',
      OOMKilled: st.OOMKilled,
      Dead: st.Status === 'dead',
      Pid: st.Pid,
      ExitCode: st.ExitCode,
      Error: st.Error,
      StartedAt: st.StartedAt,
      FinishedAt: st.FinishedAt,
      ...(st.Health !== undefined && { Health: st.Health }),
    },
    Image: r.Image,
    ResolvConfPath: path.join(containerDir, 'resolv.conf'),
    HostnamePath: path.join(containerDir, 'hostname'),
    HostsPath: path.join(containerDir, 'hosts'),
    LogPath: r.HostConfig.LogPath !== undefined && r.HostConfig.LogPath !== '' ? r.HostConfig.LogPath : path.join(containerDir, LOG_FILE),
    Name: `/${r.Name}`,
    RestartCount: r.RestartCount,
    Driver: 'overlay2',
    Platform: 'linux',
    MountLabel: '',
    ProcessLabel: '',
    AppArmorProfile: '',
    ExecIDs: null,
    HostConfig: { ...hostConfigDefaults(), ...r.HostConfig },
    GraphDriver: {
      Name: r.ImageFormat === 'external' ? 'external' : 'overlay2',
      Data: layerDir === '' || r.ImageFormat === 'external' ? null : { MergedDir: merged, UpperDir: path.join(layerDir, 'upper'), WorkDir: path.join(layerDir, 'work') },
    },
    Mounts: mountsView(r),
    Config: r.Config,
    NetworkSettings: networkSettings(r),
  };
}

function hostConfigDefaults(): Record<string, unknown> {
  return {
    Binds: null, NetworkMode: 'default', PortBindings: {}, RestartPolicy: { Name: 'no', MaximumRetryCount: 0 }, AutoRemove: false,
    CapAdd: null, CapDrop: null, Privileged: false, ReadonlyRootfs: false, Memory: 0, MemorySwap: 0, MemoryReservation: 0,
    NanoCpus: 0, CpuShares: 0, CpuPeriod: 0, CpuQuota: 0, CpusetCpus: '', CpusetMems: '', PidsLimit: null, BlkioWeight: 0,
    Ulimits: null, ShmSize: 67108864, OomScoreAdj: 0, CgroupParent: '', Runtime: 'runc',
  };
}

/** Docker's name for the network a result belongs to: the one asked for, `bridge` for the default. */
function networkKey(r: ContainerRecord, i: number, fallback: string): string {
  const asked = r.Network?.Networks[i];
  if (asked !== undefined) return asked;
  return i === 0 ? 'bridge' : fallback;
}

/** `{"80/tcp": [{HostIp, HostPort}]}`: the mappings in effect, and exposed ports without one as null. */
export function portsView(r: ContainerRecord): Record<string, { HostIp: string; HostPort: string }[] | null> {
  const out: Record<string, { HostIp: string; HostPort: string }[] | null> = {};
  // Docker shows ports only while the container runs (its sandbox exists).
  if (r.Network === undefined && r.State.Status !== 'running' && r.State.Status !== 'paused') return out;
  // And through its network endpoints: host, none, another container's namespace, or no network
  // left after disconnects have none, so not even the exposed ports show (moby's getPortMapInfo).
  const mode = r.HostConfig.NetworkMode ?? '';
  if (mode === 'host' || mode === 'none' || mode.startsWith('container:') || r.Network?.Results.length === 0) return out;
  for (const key of Object.keys(r.Config.ExposedPorts ?? {})) out[key.includes('/') ? key : `${key}/tcp`] = null;
  const mappings = r.Network?.Results.find((x) => x.portMappings !== undefined)?.portMappings ?? [];
  for (const m of mappings) {
    const key = `${m.containerPort}/${m.protocol}`;
    (out[key] ??= []).push({ HostIp: m.hostIp ?? '0.0.0.0', HostPort: String(m.hostPort) });
  }
  return out;
}

interface EndpointView { Gateway: string; IPAddress: string; IPPrefixLen: number; MacAddress: string }

/** NetworkSettings.Networks: one endpoint per attached network (inspect and the list both show it). */
function networksView(r: ContainerRecord): Record<string, Record<string, unknown>> {
  const mode = r.HostConfig.NetworkMode ?? 'default';
  const networks: Record<string, Record<string, unknown>> = {};
  for (const [i, res] of (r.Network?.Results ?? []).entries()) {
    const v4 = res.addresses.find((a) => !a.address.includes(':'));
    const [ip = '', prefix = '0'] = (v4?.address ?? '').split('/');
    const key = networkKey(r, i, res.network);
    // The static address asked for (`--ip`, `network connect --ip`), as Docker shows it.
    const ip4 = staticAddress(r, key);
    networks[key] = {
      IPAMConfig: ip4 === undefined ? null : { IPv4Address: ip4 }, Links: null, Aliases: null, NetworkID: res.networkId ?? res.network, EndpointID: '',
      Gateway: v4?.gateway ?? '', IPAddress: ip, IPPrefixLen: Number(prefix),
      IPv6Gateway: '', GlobalIPv6Address: '', GlobalIPv6PrefixLen: 0, MacAddress: res.mac ?? '', DriverOpts: null,
    };
  }
  if (Object.keys(networks).length === 0 && (mode === 'none' || mode === 'host')) networks[mode] = {};
  return networks;
}

function networkSettings(r: ContainerRecord): Record<string, unknown> {
  const networks = networksView(r);
  const first = Object.values(networks)[0] as Partial<EndpointView> | undefined;
  return {
    Bridge: '', SandboxID: '', HairpinMode: false, LinkLocalIPv6Address: '', LinkLocalIPv6PrefixLen: 0,
    Ports: portsView(r), SandboxKey: r.Network?.SandboxKey ?? '',
    Gateway: first?.Gateway ?? '', IPAddress: first?.IPAddress ?? '', IPPrefixLen: first?.IPPrefixLen ?? 0, MacAddress: first?.MacAddress ?? '',
    Networks: networks,
  };
}

export function mountsView(r: ContainerRecord): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  for (const v of r.Volumes ?? []) {
    out.push({ Type: 'volume', Name: v.Name, Source: v.Source ?? '', Destination: v.Destination, Driver: 'local', Mode: v.ReadOnly ? 'ro' : 'z', RW: !v.ReadOnly, Propagation: '' });
  }
  for (const b of r.HostConfig.Binds ?? []) {
    const parts = b.split(':');
    const [src = '', dst = '', mode = ''] = parts;
    if (parts.length === 1 || !src.startsWith('/')) continue; // a volume, listed above
    const ro = mode.split(',').includes('ro');
    out.push({ Type: 'bind', Source: src, Destination: dst, Mode: mode, RW: !ro, Propagation: 'rprivate' });
  }
  for (const m of r.HostConfig.Mounts ?? []) {
    if (m.Type === 'volume') continue;
    out.push({ Type: m.Type ?? 'bind', Source: m.Source ?? '', Destination: m.Target ?? '', Mode: '', RW: m.ReadOnly !== true, Propagation: m.Type === 'bind' ? 'rprivate' : '' });
  }
  for (const dst of Object.keys(r.HostConfig.Tmpfs ?? {})) out.push({ Type: 'tmpfs', Source: '', Destination: dst, Mode: '', RW: true, Propagation: '' });
  return out;
}

export function listView(r: ContainerRecord, now = Date.now()): Record<string, unknown> {
  return {
    Id: r.Id,
    Names: [`/${r.Name}`],
    Image: r.Config.Image ?? '',
    ImageID: r.Image,
    Command: [r.Path, ...r.Args.map(quoteArg)].join(' '),
    Created: Math.floor(Date.parse(r.Created) / 1000),
    Ports: Object.entries(portsView(r)).flatMap(([key, binds]) => {
      const [port = '0', type = 'tcp'] = key.split('/');
      return binds === null ? [{ PrivatePort: Number(port), Type: type }] : binds.map((b) => ({ IP: b.HostIp, PrivatePort: Number(port), PublicPort: Number(b.HostPort), Type: type }));
    }),
    Labels: r.Config.Labels ?? {},
    State: r.State.Status,
    Status: statusText(r, now),
    HostConfig: { NetworkMode: r.HostConfig.NetworkMode ?? 'default' },
    NetworkSettings: { Networks: networksView(r) },
    Mounts: mountsView(r).map((m) => ({ Name: '', ...m })),
  };
}

/** moby's list.go: an argument with a space is put in single quotes; the path never is. */
function quoteArg(a: string): string {
  return a.includes(' ') ? `'${a}'` : a;
}

/** Docker's `Status` column: "Up 5 seconds", "Exited (0) 3 minutes ago" ... */
export function statusText(r: ContainerRecord, now = Date.now()): string {
  const st: ContainerStatus = r.State.Status;
  const since = (iso: string) => humanDuration(now - Date.parse(iso));
  switch (st) {
    case 'created': return 'Created';
    case 'running': {
      const health = r.State.Health?.Status;
      const shown = health === 'starting' ? 'health: starting' : health;
      return `Up ${since(r.State.StartedAt)}${shown !== undefined ? ` (${shown})` : ''}`;
    }
    case 'paused': return `Up ${since(r.State.StartedAt)} (Paused)`;
    case 'restarting': return `Restarting (${r.State.ExitCode}) ${since(r.State.FinishedAt)} ago`;
    case 'removing': return 'Removal In Progress';
    case 'dead': return 'Dead';
    case 'exited': return r.State.FinishedAt.startsWith('0001') ? 'Exited' : `Exited (${r.State.ExitCode}) ${since(r.State.FinishedAt)} ago`;
  }
}

/** go-units' HumanDuration. */
export function humanDuration(ms: number): string {
  const seconds = Math.floor(ms / 1000);
  if (seconds < 1) return 'Less than a second';
  if (seconds === 1) return '1 second';
  if (seconds < 60) return `${seconds} seconds`;
  const minutes = Math.floor(seconds / 60);
  if (minutes === 1) return 'About a minute';
  if (minutes < 60) return `${minutes} minutes`;
  const hours = Math.round(minutes / 60);
  if (hours === 1) return 'About an hour';
  if (hours < 48) return `${hours} hours`;
  if (hours < 24 * 7 * 2) return `${Math.floor(hours / 24)} days`;
  if (hours < 24 * 30 * 2) return `${Math.floor(hours / 24 / 7)} weeks`;
  if (hours < 24 * 365 * 2) return `${Math.floor(hours / 24 / 30)} months`;
  return `${Math.floor(hours / 24 / 365)} years`;
}
