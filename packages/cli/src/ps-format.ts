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

/**
 * docker 20.10's `DisplayablePorts` (the PORTS column): sorted by private
 * port, IP, public port, protocol; consecutive ports of one protocol (and one
 * IP where published on the same port) fold into a range (`80-81/tcp`,
 * `0.0.0.0:80-81->80-81/tcp`); mappings to another host port come last
 * (`0.0.0.0:8080->80/tcp`), an IPv6 address unbracketed as 20.10 prints it
 * (`:::8080->80/tcp`).
 */
export function displayPorts(ports: ContainerSummary['Ports']): string {
  const sorted = [...(ports ?? [])].sort((a, b) => {
    if (a.PrivatePort !== b.PrivatePort) return a.PrivatePort - b.PrivatePort;
    const ipA = a.IP ?? '';
    const ipB = b.IP ?? '';
    if (ipA !== ipB) return ipA < ipB ? -1 : 1;
    if ((a.PublicPort ?? 0) !== (b.PublicPort ?? 0)) return (a.PublicPort ?? 0) - (b.PublicPort ?? 0);
    return a.Type < b.Type ? -1 : a.Type > b.Type ? 1 : 0;
  });
  const groups = new Map<string, { first: number; last: number }>();
  const result: string[] = [];
  const hostMappings: string[] = [];
  const formGroup = (key: string, first: number, last: number) => {
    // The key is `type` or `ip/type` (an IPv6 address has no '/').
    const slash = key.lastIndexOf('/');
    const ip = slash < 0 ? '' : key.slice(0, slash);
    const type = slash < 0 ? key : key.slice(slash + 1);
    let group = first === last ? String(first) : `${first}-${last}`;
    if (ip !== '') group = `${ip}:${group}->${group}`;
    return `${group}/${type}`;
  };
  for (const p of sorted) {
    const current = p.PrivatePort;
    let key = p.Type;
    if ((p.IP ?? '') !== '') {
      if ((p.PublicPort ?? 0) !== current) {
        hostMappings.push(`${p.IP ?? ''}:${p.PublicPort ?? 0}->${current}/${p.Type}`);
        continue;
      }
      key = `${p.IP ?? ''}/${p.Type}`;
    }
    const group = groups.get(key);
    if (group === undefined) {
      groups.set(key, { first: current, last: current });
      continue;
    }
    if (current === group.last + 1) {
      group.last = current;
      continue;
    }
    result.push(formGroup(key, group.first, group.last));
    // docker replaces the group (a Go map keeps its first insertion order), so it prints at the key's first place.
    groups.set(key, { first: current, last: current });
  }
  for (const [key, g] of groups) result.push(formGroup(key, g.first, g.last));
  return [...result, ...hostMappings].join(', ');
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
    // A getter: Go's zone name needs Intl's time zone data, ~18 ms to load, paid only by a
    // --format that shows .CreatedAt (the default table does not).
    get CreatedAt() { return c.Created === undefined ? '' : goTime(c.Created); },
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
