/**
 * `isula system df|prune` (and `system info|events`, docker's management
 * spellings of `info` and `events`: src/management.ts): docker 20.10's
 * `cli/command/system` over `GET /system/df` and the prune routes.
 */
import type { Command } from 'commander';
import type { EngineClient } from './client.js';
import { filtersJson } from './commands-containers.js';
import { confirmPrune } from './commands-volume.js';
import type { ContainerSummary } from './docker-types.js';
import { alignTabs, compileRowTemplate, createdSince, humanSizePrecision, shortId } from './format.js';
import { containerRow } from './ps-format.js';
import { managementHelp } from './management.js';
import { lazyGroup, out, subcommand } from './object-commands.js';
import { UsageError } from './usage-error.js';
import { deletedBlock, imagePruneLines } from './volume-format.js';

const collect = (v: string, prev: string[] = []) => [...prev, v];
/** docker's `units.HumanSize`: 4 significant digits. */
const size = (bytes: number): string => humanSizePrecision(bytes, 4);

/** What `GET /system/df` answers that the summary reads. */
export interface DiskUsage {
  LayersSize?: number;
  Images?: { Id?: string; RepoTags?: string[] | null; Created?: number; Containers?: number; Size?: number; SharedSize?: number }[] | null;
  Containers?: (ContainerSummary & { State?: string; SizeRw?: number })[] | null;
  Volumes?: { Name?: string; UsageData?: { Size?: number; RefCount?: number } | null }[] | null;
  BuildCache?: { Size?: number; InUse?: boolean; Shared?: boolean }[] | null;
  BuilderSize?: number;
}

const DF_FIELDS: Readonly<Record<string, string>> = { Type: 'TYPE', TotalCount: 'TOTAL', Active: 'ACTIVE', Size: 'SIZE', Reclaimable: 'RECLAIMABLE' };
const DF_TABLE = 'table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}';

/** "X (N%)" when there is a total to take a share of, as docker's (Go's integer division). */
const share = (part: number, total: number): string => (total > 0 ? `${size(part)} (${Math.trunc((part * 100) / total)}%)` : size(part));

/**
 * docker 20.10's `system df` rows (cli/command/formatter/disk_usage.go):
 * images' reclaimable is the layers' total less what the images in use hold
 * alone; containers in use are running, paused or restarting ones.
 */
export function diskUsageRows(du: DiskUsage): Record<string, string>[] {
  const images = du.Images ?? [];
  const total = du.LayersSize ?? 0;
  let used = 0;
  for (const i of images) {
    if ((i.Containers ?? 0) !== 0 && i.Size !== undefined && i.Size !== -1 && i.SharedSize !== undefined && i.SharedSize !== -1) used += i.Size - i.SharedSize;
  }
  const containers = du.Containers ?? [];
  const active = (state: string | undefined): boolean => /running|paused|restarting/.test(state ?? '');
  const rwTotal = containers.reduce((s, c) => s + (c.SizeRw ?? 0), 0);
  const rwReclaimable = containers.reduce((s, c) => s + (active(c.State) ? 0 : c.SizeRw ?? 0), 0);
  const volumes = du.Volumes ?? [];
  const vSize = (v: { UsageData?: { Size?: number } | null }): number => (v.UsageData?.Size === undefined || v.UsageData.Size === -1 ? 0 : v.UsageData.Size);
  const vTotal = volumes.reduce((s, v) => s + vSize(v), 0);
  const vReclaimable = volumes.reduce((s, v) => s + ((v.UsageData?.RefCount ?? 0) === 0 ? vSize(v) : 0), 0);
  const cache = du.BuildCache ?? [];
  const inUse = cache.reduce((s, b) => s + (b.InUse === true && b.Shared !== true ? b.Size ?? 0 : 0), 0);
  return [
    { Type: 'Images', TotalCount: String(images.length), Active: String(images.filter((i) => (i.Containers ?? 0) > 0).length), Size: size(total), Reclaimable: share(total - used, total) },
    { Type: 'Containers', TotalCount: String(containers.length), Active: String(containers.filter((c) => active(c.State)).length), Size: size(rwTotal), Reclaimable: share(rwReclaimable, rwTotal) },
    { Type: 'Local Volumes', TotalCount: String(volumes.length), Active: String(volumes.filter((v) => (v.UsageData?.RefCount ?? 0) > 0).length), Size: size(vTotal), Reclaimable: share(vReclaimable, vTotal) },
    { Type: 'Build Cache', TotalCount: String(cache.length), Active: String(cache.filter((b) => b.InUse === true).length), Size: size(cache.reduce((s, b) => s + (b.Size ?? 0), 0)), Reclaimable: size((du.BuilderSize ?? 0) - inUse) },
  ];
}

/**
 * docker 20.10's `system df -v`: a table each of images (one row per image,
 * its first tag; sizes with 4 digits), containers (ps's columns with the
 * writable layer's size, 3 digits, no virtual size), volumes (links and
 * size) and the build cache.
 */
export function verboseDiskUsage(du: DiskUsage, nowMs = Date.now()): string {
  const sized = (n: number | undefined): string => (n === undefined || n < 0 ? 'N/A' : size(n));
  const images = (du.Images ?? []).map((i) => {
    const first = i.RepoTags?.[0];
    const at = first === undefined ? -1 : first.lastIndexOf(':');
    const tagged = first !== undefined && first !== '<none>:<none>' && at > first.lastIndexOf('/');
    const shared = i.SharedSize ?? -1;
    return [tagged ? first.slice(0, at) : '<none>', tagged ? first.slice(at + 1) : '<none>', shortId(i.Id ?? ''), createdSince(i.Created ?? 0, nowMs),
      sized(i.Size), sized(shared), shared < 0 ? 'N/A' : sized((i.Size ?? 0) - shared), String(i.Containers ?? 0)].join('\t');
  });
  const containers = (du.Containers ?? []).map((c) => {
    // docker: "Don't display the virtual size".
    const r = containerRow({ ...c, SizeRootFs: 0 }, true, nowMs);
    return [r['ID'], r['Image'], r['Command'], r['LocalVolumes'], r['Size'], r['RunningFor'], r['Status'], r['Names']].join('\t');
  });
  const volumes = (du.Volumes ?? []).map((v) => [v.Name ?? '', String(v.UsageData?.RefCount ?? 0), sized(v.UsageData?.Size)].join('\t'));
  return [
    'Images space usage:\n',
    alignTabs(['REPOSITORY\tTAG\tIMAGE ID\tCREATED\tSIZE\tSHARED SIZE\tUNIQUE SIZE\tCONTAINERS', ...images]),
    '\nContainers space usage:\n',
    alignTabs(['CONTAINER ID\tIMAGE\tCOMMAND\tLOCAL VOLUMES\tSIZE\tCREATED\tSTATUS\tNAMES', ...containers]),
    '\nLocal Volumes space usage:\n',
    alignTabs(['VOLUME NAME\tLINKS\tSIZE', ...volumes]),
    `\nBuild cache usage: ${size(du.BuilderSize ?? 0)}\n`,
    alignTabs(['CACHE ID\tCACHE TYPE\tSIZE\tCREATED\tLAST USED\tUSAGE\tSHARED']),
    '',
  ].join('\n');
}

interface PruneOptions { all?: boolean; force?: boolean; volumes?: boolean; filter?: string[] }

/** docker's confirmation text for `system prune`, with what the flags add. */
function pruneWarning(o: PruneOptions): string {
  const warnings = ['all stopped containers', 'all networks not used by at least one container'];
  if (o.volumes) warnings.push('all volumes not used by at least one container');
  warnings.push(o.all ? 'all images without at least one container associated to them' : 'all dangling images');
  warnings.push(o.all ? 'all build cache' : 'all dangling build cache');
  const filters = (o.filter ?? []).length > 0 ? `\n  Items to be pruned will be filtered with:\n${(o.filter ?? []).map((f) => `  - ${f}`).join('\n')}\n` : '';
  return `WARNING! This will remove:\n${warnings.map((w) => `  - ${w}`).join('\n')}\n${filters}\nAre you sure you want to continue?`;
}

function declareSystemSubcommands(system: Command, client: () => EngineClient): void {
  subcommand(system, 'system', 'df')
    .description('Show isula disk usage (images, containers, local volumes)')
    .option('--format <template>', 'Go template over .Type .TotalCount .Active .Size .Reclaimable; "table ..." adds a header')
    .option('-v, --verbose', 'show detailed information on space usage')
    .action(async (opts: { format?: string; verbose?: boolean }) => {
      if (opts.verbose && opts.format !== undefined) throw new UsageError('--format and --verbose cannot be used together');
      const template = compileRowTemplate(opts.format ?? DF_TABLE, DF_FIELDS);
      const du = await client().json<DiskUsage>('/system/df');
      if (opts.verbose) {
        process.stdout.write(verboseDiskUsage(du));
        return;
      }
      const lines = diskUsageRows(du).map((r) => template.render(r));
      if (template.isTable) out(alignTabs([template.header(), ...lines]));
      else out(lines.join('\n'));
    });

  subcommand(system, 'system', 'prune')
    .description('Remove unused data: stopped containers, unused networks, dangling images (and unused volumes with --volumes)')
    .option('-a, --all', 'remove all unused images not just dangling ones')
    .option('--filter <key=value>', "provide filter values (e.g. 'label=<key>=<value>', 'until=24h'); repeatable", collect)
    .option('-f, --force', 'do not prompt for confirmation')
    .option('--volumes', 'prune volumes')
    .action(async (opts: PruneOptions) => {
      const filter = opts.filter ?? [];
      const filters = filtersJson(filter);
      // docker 20.10's check, before anything is pruned: volume prune takes no until filter.
      if (opts.volumes && filter.some((f) => f.trim().toLowerCase().startsWith('until='))) throw new UsageError('ERROR: The "until" filter is not supported with "--volumes"');
      if (!opts.force && !await confirmPrune('system prune', pruneWarning(opts))) return;
      const api = client();
      let reclaimed = 0;
      // docker's order and words: each part that removed something prints its list and a blank line.
      const containers = await api.json<{ ContainersDeleted?: string[] | null; SpaceReclaimed?: number }>('/containers/prune', { method: 'POST', query: { filters } });
      reclaimed += containers.SpaceReclaimed ?? 0;
      process.stdout.write(deletedBlock('Containers', containers.ContainersDeleted ?? []));
      const networks = await api.json<{ NetworksDeleted?: string[] | null }>('/networks/prune', { method: 'POST', query: { filters } });
      process.stdout.write(deletedBlock('Networks', networks.NetworksDeleted ?? []));
      if (opts.volumes) {
        const volumes = await api.json<{ VolumesDeleted?: string[] | null; SpaceReclaimed?: number }>('/volumes/prune', { method: 'POST', query: { filters } });
        reclaimed += volumes.SpaceReclaimed ?? 0;
        process.stdout.write(deletedBlock('Volumes', volumes.VolumesDeleted ?? []));
      }
      const images = await api.json<{ ImagesDeleted?: { Untagged?: string; Deleted?: string }[] | null; SpaceReclaimed?: number }>('/images/prune', {
        method: 'POST', query: { filters: filtersJson(filter, { dangling: [opts.all ? 'false' : 'true'] }) },
      });
      reclaimed += images.SpaceReclaimed ?? 0;
      process.stdout.write(deletedBlock('Images', imagePruneLines(images.ImagesDeleted ?? [])));
      out(`Total reclaimed space: ${size(reclaimed)}`);
    });
}

/** Declares `system` (its subcommands lazily, see lazyGroup). */
export function registerSystemCommands(program: Command, client: () => EngineClient): void {
  lazyGroup(program, 'system', 'Manage isula', (group) => declareSystemSubcommands(group, client)).addHelpText('after', managementHelp('system'));
}
