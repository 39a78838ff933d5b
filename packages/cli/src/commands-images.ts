/** Image commands: images (image ls), image prune, load, tag, rmi. `inspect` is with the container commands. */
import type { Command } from 'commander';
import { jsonLines, openUpload, type EngineClient } from './client.js';
import { ExitCode } from './exit-code.js';
import { alignTabs, compileRowTemplate, createdSince, goTime, humanSize, humanSizePrecision, rfc3339NanoFixed, shortId } from './format.js';
import { filtersJson } from './commands-containers.js';
import { managementHelp } from './management.js';
import { deletedBlock, imagePruneLines } from './volume-format.js';
import { confirmPrune } from './commands-volume.js';

interface ImageSummary {
  Id: string;
  RepoTags: string[] | null;
  RepoDigests: string[] | null;
  Created: number;
  Size: number;
  VirtualSize?: number;
  SharedSize?: number;
  Containers?: number;
}

const out = (text: string) => process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);

/** The fields `--format` knows for images, with their column headers (docker's imageContext). */
const IMAGE_FIELDS: Readonly<Record<string, string>> = {
  Containers: 'CONTAINERS',
  CreatedAt: 'CREATED AT',
  CreatedSince: 'CREATED',
  Digest: 'DIGEST',
  ID: 'IMAGE ID',
  Repository: 'REPOSITORY',
  SharedSize: 'SHARED SIZE',
  Size: 'SIZE',
  Tag: 'TAG',
  UniqueSize: 'UNIQUE SIZE',
  VirtualSize: 'VIRTUAL SIZE',
};

const DEFAULT_TABLE = 'table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}';
const DEFAULT_DIGESTS_TABLE = 'table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}';
const RAW_FORMAT = 'repository: {{ .Repository }}\ntag: {{.Tag}}\nimage_id: {{.ID}}\ncreated_at: {{.CreatedAt}}\nvirtual_size: {{.Size}}\n';

interface ImagesOptions { quiet?: boolean; digests?: boolean; trunc: boolean; filter?: string[]; format?: string }

const collect = (v: string, prev: string[] = []) => [...prev, v];


/** Docker's image rows: one per repository:tag (× digest with --digests), digest-only rows, `<none>` for dangling. */
function imageRows(img: ImageSummary, showDigests: boolean, trunc: boolean): Record<string, string>[] {
  const tags = (img.RepoTags ?? []).filter((t) => t !== '<none>:<none>');
  const digests = (img.RepoDigests ?? []).filter((d) => d !== '<none>@<none>');
  const base = {
    Containers: img.Containers === undefined || img.Containers < 0 ? 'N/A' : String(img.Containers),
    CreatedSince: createdSince(img.Created),
    ID: trunc ? shortId(img.Id) : img.Id,
    SharedSize: img.SharedSize === undefined || img.SharedSize < 0 ? 'N/A' : humanSize(img.SharedSize),
    Size: humanSize(img.Size),
    UniqueSize: img.SharedSize === undefined || img.SharedSize < 0 ? 'N/A' : humanSize(img.Size - img.SharedSize),
    VirtualSize: humanSize(img.VirtualSize ?? img.Size),
  };
  // CreatedAt is a getter: Go's zone name loads Intl's time zone data (~18 ms), paid only by a
  // --format that shows it (the default table does not).
  const row = (Repository: string, Tag: string, Digest: string): Record<string, string> => ({ ...base, get CreatedAt() { return goTime(img.Created); }, Repository, Tag, Digest });
  if (tags.length === 0 && digests.length === 0) return [row('<none>', '<none>', '<none>')];
  const split = (ref: string, at: number) => [ref.slice(0, at), ref.slice(at + 1)] as const;
  const repoTags = new Map<string, string[]>();
  const repoDigests = new Map<string, string[]>();
  for (const t of tags) {
    const [repo, tag] = split(t, t.lastIndexOf(':'));
    repoTags.set(repo, [...(repoTags.get(repo) ?? []), tag]);
  }
  for (const d of digests) {
    const [repo, digest] = split(d, d.indexOf('@'));
    repoDigests.set(repo, [...(repoDigests.get(repo) ?? []), digest]);
  }
  const rows: Record<string, string>[] = [];
  for (const [repo, repoTagList] of repoTags) {
    const ds = showDigests ? repoDigests.get(repo) ?? [] : [];
    repoDigests.delete(repo);
    for (const tag of repoTagList) {
      if (ds.length === 0) rows.push(row(repo, tag, '<none>'));
      else for (const d of ds) rows.push(row(repo, tag, d));
    }
  }
  for (const [repo, ds] of repoDigests) {
    if (showDigests) for (const d of ds) rows.push(row(repo, '<none>', d));
    else rows.push(row(repo, '<none>', ''));
  }
  return rows;
}

/** Docker's NewImageFormat: the format to use for the flags given. */
function imageFormat(opts: ImagesOptions): string {
  const format = opts.format ?? 'table';
  if (format === 'table') return opts.quiet ? '{{.ID}}' : opts.digests ? DEFAULT_DIGESTS_TABLE : DEFAULT_TABLE;
  if (format === 'raw') return opts.quiet ? 'image_id: {{.ID}}\n' : RAW_FORMAT;
  if (format.startsWith('table') && opts.digests && !format.includes('{{.Digest}}')) return format.replace('{{.Tag}}', '{{.Tag}}\t{{.Digest}}');
  return format;
}

function addImagesCommand(cmd: Command, client: () => EngineClient): Command {
  return cmd
    .description('List images')
    .argument('[reference]', 'REPOSITORY[:TAG], a pattern like busy* allowed (the reference filter)')
    .option('-a, --all', 'show all images (there are no intermediate images; same as without)')
    .option('-q, --quiet', 'only show image ids')
    .option('--digests', 'show digests')
    .option('--no-trunc', "don't truncate output")
    .option('-f, --filter <key=value>', 'filter output: dangling=true|false, reference=PATTERN, before=IMAGE, since=IMAGE, label=KEY[=VALUE]; repeatable', collect)
    .option('--format <template>', 'Go template over .Repository .Tag .ID .Digest .CreatedSince .CreatedAt .Size ...; "table ..." adds a header, {{json .}} one JSON object per row')
    .action(async (reference: string | undefined, opts: ImagesOptions) => {
      const template = compileRowTemplate(imageFormat(opts), IMAGE_FIELDS);
      const filters = filtersJson(opts.filter ?? [], reference === undefined ? {} : { reference: [reference] });
      const images = await client().json<ImageSummary[]>('/images/json', { query: { digests: opts.digests ? '1' : undefined, filters } });
      images.sort((a, b) => b.Created - a.Created);
      if (opts.quiet && (opts.format === undefined || opts.format === 'table')) {
        const id = (i: ImageSummary) => (opts.trunc ? shortId(i.Id) : i.Id);
        if (images.length > 0) out([...new Set(images.map(id))].join('\n'));
        return;
      }
      const lines = images.flatMap((img) => imageRows(img, opts.digests === true, opts.trunc)).map((r) => template.render(r));
      if (template.isTable) out(alignTabs([template.header(), ...lines]));
      else if (lines.length > 0) out(lines.join('\n'));
    });
}

interface PruneReport { ImagesDeleted?: ({ Untagged?: string; Deleted?: string })[] | null; SpaceReclaimed?: number }

/** One entry of `GET /images/{name}/history`. */
interface HistoryItem { Id: string; Created: number; CreatedBy: string; Tags: string[] | null; Size: number; Comment: string }

/** docker's historyContext fields and headers. */
const HISTORY_FIELDS: Readonly<Record<string, string>> = {
  Comment: 'COMMENT',
  CreatedAt: 'CREATED AT',
  CreatedBy: 'CREATED BY',
  CreatedSince: 'CREATED',
  ID: 'IMAGE',
  Size: 'SIZE',
};

interface HistoryOptions { human?: boolean; quiet?: boolean; trunc: boolean; format?: string }

/** docker's `stringutils.Ellipsis` (20.10): at most `max` characters, the last one `…` when cut. */
function ellipsis(s: string, max: number): string {
  const chars = [...s];
  return chars.length <= max ? s : `${chars.slice(0, max - 1).join('')}…`;
}

/** docker's history row: `--human` (default) shows "3 years ago" and 2.01MB, without it RFC 3339 and bytes. */
export function historyRow(h: HistoryItem, human: boolean, trunc: boolean): Record<string, string> {
  const createdAt = rfc3339NanoFixed(h.Created, '', -new Date(h.Created * 1000).getTimezoneOffset());
  const createdBy = h.CreatedBy.replaceAll('\t', ' ');
  return {
    Comment: h.Comment,
    CreatedAt: createdAt,
    CreatedBy: trunc ? ellipsis(createdBy, 45) : createdBy,
    CreatedSince: human ? createdSince(h.Created) : createdAt,
    ID: trunc ? shortId(h.Id) : h.Id,
    Size: human ? humanSize(h.Size) : String(h.Size),
  };
}

function historyFormat(opts: HistoryOptions, human: boolean): string {
  const format = opts.format ?? 'table';
  if (format !== 'table') return format;
  if (opts.quiet) return '{{.ID}}';
  return human ? 'table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}' : 'table {{.ID}}\t{{.CreatedAt}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}';
}

function addHistoryCommand(cmd: Command, client: () => EngineClient): Command {
  return cmd
    .description('Show the history of an image')
    .argument('<image>', 'the image')
    .option('--human', 'print sizes and dates in human readable format (the default)')
    .option('--no-human', 'bytes and RFC 3339 dates (docker: --human=false, which isula takes too)')
    .option('-q, --quiet', 'only show image ids')
    .option('--no-trunc', "don't truncate output")
    .option('--format <template>', 'Go template over .ID .CreatedSince .CreatedAt .CreatedBy .Size .Comment; "table ..." adds a header')
    .action(async (image: string, opts: HistoryOptions) => {
      const human = opts.human !== false;
      const template = compileRowTemplate(historyFormat(opts, human), HISTORY_FIELDS);
      const items = await client().json<HistoryItem[]>(`/images/${encodeURIComponent(image)}/history`);
      const lines = items.map((h) => template.render(historyRow(h, human, opts.trunc)));
      if (template.isTable) out(alignTabs([template.header(), ...lines]));
      else if (lines.length > 0) out(lines.join('\n'));
    });
}

export function registerImageCommands(program: Command, client: () => EngineClient): void {
  addImagesCommand(program.command('images'), client);
  addHistoryCommand(program.command('history'), client);

  // docker's and iSulad's `image` management command group.
  const image = program.command('image').description('Manage images').addHelpText('after', managementHelp('image'));
  addImagesCommand(image.command('ls').alias('list'), client);
  image
    .command('prune')
    .description('Remove unused images')
    .option('-a, --all', 'remove all unused images, not just dangling ones')
    .option('-f, --force', 'do not prompt for confirmation')
    .option('--filter <key=value>', 'filter: until=TIMESTAMP|DURATION, label=KEY[=VALUE], label!=KEY[=VALUE]; repeatable', collect)
    .action(async (opts: { all?: boolean; force?: boolean; filter?: string[] }) => {
      const warning = opts.all
        ? 'WARNING! This will remove all images without at least one container associated to them.'
        : 'WARNING! This will remove all dangling images.';
      // As the other prunes: docker's question on a terminal, a usage error naming -f off one.
      if (!opts.force && !await confirmPrune('image prune', warning)) {
        out('Total reclaimed space: 0B');
        return;
      }
      const report = await client().json<PruneReport>('/images/prune', {
        method: 'POST',
        query: { filters: filtersJson(opts.filter ?? [], { dangling: [opts.all ? 'false' : 'true'] }) },
      });
      // Like docker: the list and a blank line when something went, then the total (4 significant digits).
      process.stdout.write(deletedBlock('Images', imagePruneLines(report.ImagesDeleted ?? [])));
      out(`Total reclaimed space: ${humanSizePrecision(report.SpaceReclaimed ?? 0, 4)}`);
    });

  program
    .command('load')
    .description('Load images from a tar archive (docker-archive, oci-archive or OCI layout)')
    .requiredOption('-i, --input <file>', 'read from this tar archive file')
    .option('-t, --tag <name>', 'name an untagged OCI image (iSulad: --tag)')
    .action(async (opts: { input: string; tag?: string }) => {
      await client().request('/images/load', {
        method: 'POST',
        query: { quiet: '0', tag: opts.tag },
        bodyStream: await openUpload(opts.input),
        contentType: 'application/x-tar',
        onData: jsonLines((line) => {
          const msg = JSON.parse(line) as { stream?: string; error?: string };
          if (msg.error !== undefined) throw new Error(msg.error);
          if (msg.stream !== undefined) process.stdout.write(msg.stream);
        }),
      });
    });

  program
    .command('tag')
    .description('Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE')
    .argument('<source>', 'SOURCE_IMAGE[:TAG]')
    .argument('<target>', 'TARGET_IMAGE[:TAG]')
    .action(async (source: string, target: string) => {
      const at = target.lastIndexOf(':');
      const hasTag = at > target.lastIndexOf('/');
      await client().request(`/images/${encodeURIComponent(source)}/tag`, {
        method: 'POST',
        query: { repo: hasTag ? target.slice(0, at) : target, tag: hasTag ? target.slice(at + 1) : undefined },
      });
    });

  program
    .command('rmi')
    .description('Remove one or more images')
    .argument('<image...>', 'image names, ids or digests')
    .option('-f, --force', 'force removal of an image referenced by several tags')
    .action(async (images: string[], opts: { force?: boolean }) => {
      let failed = 0;
      for (const image of images) {
        try {
          const res = await client().json<({ Untagged?: string; Deleted?: string })[]>(`/images/${encodeURIComponent(image)}`, { method: 'DELETE', query: { force: opts.force ? '1' : undefined } });
          for (const r of res) out(r.Untagged !== undefined ? `Untagged: ${r.Untagged}` : `Deleted: ${r.Deleted ?? ''}`);
        } catch (err) {
          failed += 1;
          process.stderr.write(`Error response from daemon: ${(err as Error).message}\n`);
        }
      }
      if (failed > 0) throw new ExitCode(1);
    });
}
