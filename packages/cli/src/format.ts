/** Human-readable output of the system commands, laid out like docker's. */

export interface ServerVersion {
  Version: string;
  ApiVersion: string;
  MinAPIVersion?: string;
  GitCommit?: string;
  Os: string;
  Arch: string;
  KernelVersion?: string;
  Components?: { Name: string; Version: string; Details?: Record<string, string> }[];
}

export interface ClientVersion {
  Version: string;
  ApiVersion: string;
  NodeVersion: string;
  Os: string;
  Arch: string;
}

const row = (label: string, value: unknown) => ` ${`${label}:`.padEnd(16)}${String(value ?? '')}`;

export function formatVersion(client: ClientVersion, server: ServerVersion | undefined): string {
  const lines = [
    'Client:',
    row('Version', client.Version),
    row('API version', client.ApiVersion),
    row('Node version', client.NodeVersion),
    row('OS/Arch', `${client.Os}/${client.Arch}`),
  ];
  if (server !== undefined) {
    const node = server.Components?.find((c) => c.Name === 'Engine')?.Details?.['NodeVersion'];
    lines.push(
      '',
      'Server:',
      row('Version', server.Version),
      row('API version', `${server.ApiVersion} (minimum version ${server.MinAPIVersion ?? '?'})`),
      row('Node version', node ?? ''),
      row('Git commit', server.GitCommit || '(unknown)'),
      row('OS/Arch', `${server.Os}/${server.Arch}`),
      row('Kernel version', server.KernelVersion ?? ''),
    );
  }
  return lines.join('\n');
}

function bytes(n: unknown): string {
  if (typeof n !== 'number') return '';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i += 1; }
  return `${v.toFixed(i === 0 ? 0 : 2)}${units[i]}`;
}

export function formatInfo(info: Record<string, unknown>): string {
  const plugins = (info['IsulaPlugins'] as { Name: string; Version: string; ApiVersion: string }[] | undefined) ?? [];
  const frontEnds = (info['FrontEnds'] as { Name: string; Endpoints: string[] }[] | undefined) ?? [];
  const runtimes = Object.keys((info['Runtimes'] as Record<string, unknown> | undefined) ?? {});
  const lines = [
    `Containers: ${String(info['Containers'] ?? 0)}`,
    ` Running: ${String(info['ContainersRunning'] ?? 0)}`,
    ` Paused: ${String(info['ContainersPaused'] ?? 0)}`,
    ` Stopped: ${String(info['ContainersStopped'] ?? 0)}`,
    `Images: ${String(info['Images'] ?? 0)}`,
    `Server Version: ${String(info['ServerVersion'] ?? '')}`,
    `Storage Driver: ${String(info['Driver'] ?? '')}`,
    `Logging Driver: ${String(info['LoggingDriver'] ?? '')}`,
    `Cgroup Driver: ${String(info['CgroupDriver'] ?? '')}`,
    `Plugin API Version: ${String(info['PluginApiVersion'] ?? '')}`,
    'Plugins:',
    ...(plugins.length === 0 ? [' (none)'] : plugins.map((p) => ` ${p.Name} ${p.Version} (plugin API ${p.ApiVersion})`)),
    ...(frontEnds.length === 0 ? [] : ['Front Ends:', ...frontEnds.map((f) => ` ${f.Name}: ${f.Endpoints.join(', ')}`)]),
    `Runtimes: ${runtimes.join(' ')}`,
    `Default Runtime: ${String(info['DefaultRuntime'] ?? '')}`,
    `Kernel Version: ${String(info['KernelVersion'] ?? '')}`,
    `Operating System: ${String(info['OperatingSystem'] ?? '')}`,
    `OSType: ${String(info['OSType'] ?? '')}`,
    `Architecture: ${String(info['Architecture'] ?? '')}`,
    `CPUs: ${String(info['NCPU'] ?? '')}`,
    `Total Memory: ${bytes(info['MemTotal'])}`,
    `Name: ${String(info['Name'] ?? '')}`,
    `iSulad Root Dir: ${String(info['DockerRootDir'] ?? '')}`,
    `iSulad State Dir: ${String(info['IsuladStateDir'] ?? '')}`,
  ];
  return lines.join('\n');
}

export interface EventMessage {
  Type: string;
  Action: string;
  Actor: { ID: string; Attributes?: Record<string, string> };
  timeNano: number;
}

/** `2026-11-23T09:17:40.975647758Z plugin enable NAME (name=..., version=...)`, like docker. */
export function formatEvent(e: EventMessage): string {
  const ms = Math.floor(e.timeNano / 1e6);
  const nanos = String(e.timeNano % 1e9).padStart(9, '0');
  const stamp = `${new Date(ms).toISOString().slice(0, 19)}.${nanos}Z`;
  const attrs = Object.entries(e.Actor.Attributes ?? {}).sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => `${k}=${v}`);
  return `${stamp} ${e.Type} ${e.Action} ${e.Actor.ID}${attrs.length ? ` (${attrs.join(', ')})` : ''}`;
}

export function shortId(id: string): string {
  return id.replace(/^sha256:/, '').slice(0, 12);
}

/** Docker-style "3 days ago". */
export function timeAgo(unixSeconds: number, nowMs = Date.now()): string {
  const s = Math.max(0, Math.floor(nowMs / 1000 - unixSeconds));
  const units: [number, string][] = [[365 * 86400, 'year'], [30 * 86400, 'month'], [7 * 86400, 'week'], [86400, 'day'], [3600, 'hour'], [60, 'minute']];
  for (const [size, name] of units) {
    const n = Math.floor(s / size);
    if (n >= 1) return `${n === 1 ? (name === 'hour' ? 'About an' : '1') : n} ${name}${n === 1 ? '' : 's'} ago`;
  }
  return s < 1 ? 'Less than a second ago' : `${s} seconds ago`;
}

/** Docker's decimal sizes: 4.26MB. */
export function humanSize(bytes: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let v = bytes;
  let i = 0;
  while (v >= 1000 && i < units.length - 1) { v /= 1000; i += 1; }
  return `${Number(v.toPrecision(3))}${units[i]}`;
}

export function formatTable(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd((widths[i] ?? 0) + 3))).join('');
  return [line(header), ...rows.map(line)].join('\n');
}
