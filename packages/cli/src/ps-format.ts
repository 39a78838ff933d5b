/** `isula ps` rows: docker's containerContext fields, rendered from `GET /containers/json`. */
import type { ContainerSummary } from './docker-types.js';
import { createdSince, goTime, humanSizePrecision, shortId } from './format.js';

/** The fields `ps --format` knows, with their column headers (docker's). */
export const CONTAINER_FIELDS: Readonly<Record<string, string>> = {
  Command: 'COMMAND',
  CreatedAt: 'CREATED AT',
  ID: 'CONTAINER ID',
  Image: 'IMAGE',
  Labels: 'LABELS',
  LocalVolumes: 'LOCAL VOLUMES',
  Mounts: 'MOUNTS',
  Names: 'NAMES',
  Networks: 'NETWORKS',
  Ports: 'PORTS',
  RunningFor: 'CREATED',
  Size: 'SIZE',
  State: 'STATE',
  Status: 'STATUS',
};

/** `{{.Label "key"}}`. */
export const CONTAINER_METHODS: Readonly<Record<string, string>> = { Label: 'LABEL' };

export const DEFAULT_PS_TABLE = 'table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}';

/** docker's `formatter.Ellipsis`: at most `max` characters, the last one `…` when cut. */
export function ellipsis(s: string, max: number): string {
  const chars = [...s];
  if (chars.length <= max) return s;
  return `${chars.slice(0, max - 1).join('')}…`;
}

/** Go's `strconv.Quote` for the printable strings commands are. */
function goQuote(s: string): string {
  return JSON.stringify(s).replace(/[\u007f-\u009f]/g, (c) => `\\x${c.charCodeAt(0).toString(16)}`);
}

/** `0.0.0.0:8080->80/tcp, 443/tcp`, sorted like docker (the range grouping docker does is not). */
export function displayPorts(ports: ContainerSummary['Ports']): string {
  const sorted = [...(ports ?? [])].sort((a, b) => (a.Type === b.Type ? (a.PrivatePort - b.PrivatePort) || ((a.PublicPort ?? 0) - (b.PublicPort ?? 0)) : a.Type < b.Type ? -1 : 1));
  return sorted.map((p) => {
    if (p.PublicPort === undefined || p.PublicPort === 0) return `${p.PrivatePort}/${p.Type}`;
    const ip = p.IP ?? '';
    return `${ip.includes(':') ? `[${ip}]` : ip}:${p.PublicPort}->${p.PrivatePort}/${p.Type}`;
  }).join(', ');
}

/** One ps row (docker's containerContext), as strings. */
export function containerRow(c: ContainerSummary, trunc: boolean, nowMs = Date.now()): Record<string, string> {
  let names = (c.Names ?? []).map((n) => n.replace(/^\//, ''));
  // docker: truncated output shows the container's own name, not its link aliases (a/b).
  if (trunc) names = names.filter((n) => !n.includes('/')).slice(0, 1);
  let image = c.Image ?? '';
  if (image === '') image = '<no image>';
  else if (trunc) {
    if (c.ImageID !== undefined && shortId(c.ImageID) === shortId(image)) image = shortId(image);
    else image = image.replace(/@sha256:[0-9a-f]+$/, '');
  }
  const command = c.Command ?? '';
  const labels = c.Labels ?? {};
  const size = c.SizeRw === undefined ? '' : `${humanSizePrecision(c.SizeRw, 3)}${(c.SizeRootFs ?? 0) > 0 ? ` (virtual ${humanSizePrecision(c.SizeRootFs ?? 0, 3)})` : ''}`;
  return {
    Command: goQuote(trunc ? ellipsis(command, 20) : command),
    CreatedAt: c.Created === undefined ? '' : goTime(c.Created),
    ID: trunc ? shortId(c.Id) : c.Id,
    Image: image,
    Labels: Object.keys(labels).sort().map((k) => `${k}=${labels[k] ?? ''}`).join(','),
    LocalVolumes: String((c.Mounts ?? []).filter((m) => m.Type === 'volume').length),
    Mounts: (c.Mounts ?? []).map((m) => { const n = m.Name || m.Source || ''; return trunc ? ellipsis(n, 15) : n; }).join(','),
    Names: names.join(','),
    Networks: Object.keys(c.NetworkSettings?.Networks ?? {}).sort().join(','),
    Ports: displayPorts(c.Ports),
    RunningFor: c.Created === undefined ? '' : createdSince(c.Created, nowMs),
    Size: size,
    State: c.State ?? '',
    Status: c.Status ?? '',
  };
}
