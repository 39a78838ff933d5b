/** Image commands: images, load, tag, rmi, inspect. */
import { createReadStream } from 'node:fs';
import { Option, type Command } from 'commander';
import type { EngineClient } from './client.js';
import { ExitCode } from './exit-code.js';
import { formatTable, shortId, timeAgo, humanSize } from './format.js';

interface ImageSummary { Id: string; RepoTags: string[]; RepoDigests: string[]; Created: number; Size: number }

const out = (text: string) => process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);

export function registerImageCommands(program: Command, client: () => EngineClient): void {
  program
    .command('images')
    .description('List images')
    .option('-a, --all', 'show all images (there are no intermediate images; same as without)')
    .option('-q, --quiet', 'only show image ids')
    .option('--digests', 'show digests')
    .option('--no-trunc', "don't truncate output")
    .action(async (opts: { quiet?: boolean; digests?: boolean; trunc: boolean }) => {
      const images = await client().json<ImageSummary[]>('/images/json', { query: { digests: opts.digests ? '1' : undefined } });
      images.sort((a, b) => b.Created - a.Created);
      const id = (i: ImageSummary) => (opts.trunc ? shortId(i.Id) : i.Id);
      if (opts.quiet) { out([...new Set(images.map(id))].join('\n')); return; }
      const rows: string[][] = [];
      for (const img of images) {
        for (const tag of img.RepoTags.length > 0 ? img.RepoTags : ['<none>:<none>']) {
          const colon = tag.lastIndexOf(':');
          const row = [tag.slice(0, colon), tag.slice(colon + 1)];
          if (opts.digests) row.push(img.RepoDigests[0]?.split('@')[1] ?? '<none>');
          row.push(id(img), timeAgo(img.Created), humanSize(img.Size));
          rows.push(row);
        }
      }
      const header = ['REPOSITORY', 'TAG', ...(opts.digests ? ['DIGEST'] : []), 'IMAGE ID', 'CREATED', 'SIZE'];
      out(formatTable(header, rows));
    });

  program
    .command('load')
    .description('Load images from a tar archive (docker-archive, oci-archive or OCI layout)')
    .requiredOption('-i, --input <file>', 'read from this tar archive file')
    .option('-t, --tag <name>', 'name an untagged OCI image (iSulad: --tag)')
    .action(async (opts: { input: string; tag?: string }) => {
      let pending = '';
      await client().request('/images/load', {
        method: 'POST',
        query: { quiet: '0', tag: opts.tag },
        bodyStream: createReadStream(opts.input),
        contentType: 'application/x-tar',
        onData: (chunk) => {
          pending += chunk.toString('utf8');
          let nl: number;
          while ((nl = pending.indexOf('\n')) >= 0) {
            const line = pending.slice(0, nl).trim();
            pending = pending.slice(nl + 1);
            if (line === '') continue;
            const msg = JSON.parse(line) as { stream?: string; error?: string };
            if (msg.error !== undefined) throw new Error(msg.error);
            if (msg.stream !== undefined) process.stdout.write(msg.stream);
          }
        },
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

  program
    .command('inspect')
    .description('Return low-level information on images')
    .argument('<name...>', 'image names or ids')
    .addOption(new Option('--type <type>', 'object type').choices(['image']).default('image'))
    .action(async (names: string[]) => {
      const found: unknown[] = [];
      let failed = 0;
      for (const name of names) {
        try {
          found.push(await client().json(`/images/${encodeURIComponent(name)}/json`));
        } catch (err) {
          failed += 1;
          process.stderr.write(`Error: No such object: ${name} (${(err as Error).message})\n`);
        }
      }
      out(JSON.stringify(found, null, 4));
      if (failed > 0) throw new ExitCode(1);
    });
}
