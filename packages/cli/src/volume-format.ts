/**
 * `isula volume`: docker 20.10's `volume create` request body and `volume ls`
 * rows (`cli/command/formatter/volume.go`), from `GET /volumes`' Volume objects.
 */
import { compileRowTemplate, humanSizePrecision, type RowTemplate } from './format.js';
import { formatNamedList, listFormat } from './network-format.js';
import { UsageError } from './usage-error.js';

/** Docker's Volume, as `GET /volumes` and `GET /volumes/{name}` answer it. */
export interface Volume {
  Name: string;
  Driver?: string;
  Mountpoint?: string;
  CreatedAt?: string;
  Scope?: string;
  Labels?: Record<string, string> | null;
  Options?: Record<string, string> | null;
  Status?: Record<string, unknown>;
  UsageData?: { Size: number; RefCount: number } | null;
}

/** `POST /volumes/create`'s body. */
export interface VolumeCreateBody {
  Name: string;
  Driver: string;
  DriverOpts: Record<string, string>;
  Labels: Record<string, string>;
}

export interface VolumeCreateFlags {
  driver?: string;
  label?: string[];
  opt?: string[];
  name?: string;
}

/**
 * docker 20.10's `volume create` request: `--label` is `opts.ValidateLabel`
 * (a `k=v`, else `bad attribute format: X`), `-o` a MapOpts (a bare `k` is
 * `k=""`); NAME and the hidden `--name` may not both be given.
 */
export function buildVolumeCreateBody(name: string | undefined, flags: VolumeCreateFlags): VolumeCreateBody {
  if (name !== undefined && flags.name !== undefined) {
    throw new UsageError('conflicting options: either specify --name or provide positional arg, not both');
  }
  const labels: Record<string, string> = {};
  for (const v of flags.label ?? []) {
    const eq = v.indexOf('=');
    if (eq < 0) throw new UsageError(`invalid argument ${JSON.stringify(v)} for "--label" flag: bad attribute format: ${v}`);
    labels[v.slice(0, eq)] = v.slice(eq + 1);
  }
  const driverOpts: Record<string, string> = {};
  for (const v of flags.opt ?? []) {
    const eq = v.indexOf('=');
    driverOpts[eq < 0 ? v : v.slice(0, eq)] = eq < 0 ? '' : v.slice(eq + 1);
  }
  return { Name: name ?? flags.name ?? '', Driver: flags.driver ?? 'local', DriverOpts: driverOpts, Labels: labels };
}

/** The fields `volume ls --format` knows, with docker's column headers (CreatedAt is isula's addition). */
export const VOLUME_FIELDS: Readonly<Record<string, string>> = {
  CreatedAt: 'CREATED AT',
  Driver: 'DRIVER',
  Labels: 'LABELS',
  Links: 'LINKS',
  Mountpoint: 'MOUNTPOINT',
  Name: 'VOLUME NAME',
  Scope: 'SCOPE',
  Size: 'SIZE',
};

/** `{{.Label "key"}}`. */
export const VOLUME_METHODS: Readonly<Record<string, string>> = { Label: 'LABEL' };

export const DEFAULT_VOLUME_TABLE = 'table {{.Driver}}\t{{.Name}}';

/** docker's `units.HumanSize`: decimal units, 4 significant digits. */
export const dockerHumanSize = (bytes: number): string => humanSizePrecision(bytes, 4);

/** One `volume ls` row (docker's volumeContext), as strings. */
export function volumeRow(v: Volume): Record<string, string> {
  const labels = v.Labels ?? {};
  return {
    CreatedAt: v.CreatedAt ?? '',
    Driver: v.Driver ?? '',
    // docker joins a Go map (random order); sorted here, as network ls does.
    Labels: Object.keys(labels).sort().map((k) => `${k}=${labels[k] ?? ''}`).join(','),
    // docker: N/A unless the daemon computed the usage (system df).
    Links: v.UsageData == null ? 'N/A' : String(v.UsageData.RefCount),
    Mountpoint: v.Mountpoint ?? '',
    Name: v.Name,
    Scope: v.Scope ?? '',
    Size: v.UsageData == null ? 'N/A' : dockerHumanSize(v.UsageData.Size),
  };
}

export interface VolumeListOptions { quiet?: boolean; format?: string }

/** docker's `NewVolumeFormat`: the template for the flags given. */
export function volumeListTemplate(o: VolumeListOptions): RowTemplate {
  const format = listFormat(o, { table: DEFAULT_VOLUME_TABLE, quietTable: '{{.Name}}', raw: 'name: {{.Name}}\\ndriver: {{.Driver}}\\n', quietRaw: 'name: {{.Name}}' });
  return compileRowTemplate(format, VOLUME_FIELDS, VOLUME_METHODS);
}

/** `volume ls` output: sorted by name as docker (natural order), a table or one line per volume. */
export function formatVolumeList(volumes: readonly Volume[], o: VolumeListOptions): string {
  return formatNamedList(volumes, volumeListTemplate(o), volumeRow);
}

/** `volume prune`'s report as docker prints it: the names and a blank line when any went, then the total. */
export function formatVolumePrune(report: { VolumesDeleted?: string[] | null; SpaceReclaimed?: number }): string {
  return formatPruneReport('Volumes', report.VolumesDeleted ?? [], report.SpaceReclaimed ?? 0);
}

/** docker's prune report (volumes, containers): `Deleted WHAT:`, the names and a blank line when any went, then the total. */
export function formatPruneReport(what: string, deleted: readonly string[], reclaimed: number): string {
  // docker counts the space only when something was deleted.
  const space = deleted.length > 0 ? reclaimed : 0;
  return `${deletedBlock(what, deleted)}Total reclaimed space: ${dockerHumanSize(space)}\n`;
}

/** A prune's `Deleted WHAT:` block as docker prints it: the lines and a blank line, or nothing when none went. */
export function deletedBlock(what: string, lines: readonly string[]): string {
  return lines.length > 0 ? `Deleted ${what}:\n${lines.map((n) => `${n}\n`).join('')}\n` : '';
}

/** An image prune's lines: `untagged: REF` and `deleted: ID` for each item, in the daemon's order. */
export function imagePruneLines(items: readonly { Untagged?: string; Deleted?: string }[]): string[] {
  return items.flatMap((d) => [...(d.Untagged ? [`untagged: ${d.Untagged}`] : []), ...(d.Deleted ? [`deleted: ${d.Deleted}`] : [])]);
}
