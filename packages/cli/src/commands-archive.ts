/** Image archive commands: save and import. */
// node:fs's callback API only: node:fs/promises loads readline and the REPL history module
// with it (~4 ms of every isula call); fs.promises is a lazy getter.
import fs from 'node:fs';
import type { Command } from 'commander';
import { openUpload, type EngineClient } from './client.js';
import { validateOutputPath } from './commands-streams.js';
import { goPathError } from './cp-archive.js';
import { splitRepoTag } from './reference.js';
import { UsageError } from './usage-error.js';

export function registerArchiveCommands(program: Command, client: () => EngineClient): void {
  program
    .command('save')
    .description('Save one or more images to a tar archive (docker-archive)')
    .argument('<image...>', 'images to save')
    .option('-o, --output <file>', 'write to a file, instead of stdout')
    .action(async (images: string[], opts: { output?: string }) => {
      if (opts.output === undefined && process.stdout.isTTY) throw new UsageError('cowardly refusing to save to a terminal. Use the -o flag or redirect');
      // Write next to the target and rename at the end: a failed save leaves no half archive.
      const tmp = opts.output === undefined ? undefined : `${opts.output}.tmp-${process.pid}`;
      let out: NodeJS.WritableStream = process.stdout;
      let writeError: Error | undefined;
      if (tmp !== undefined && opts.output !== undefined) {
        // docker's checks and wording, before anything is asked of the daemon.
        try {
          validateOutputPath(opts.output);
          const handle = await fs.promises.open(tmp, 'wx', 0o600);
          const file = handle.createWriteStream();
          // A write that fails later (a full disk) is reported below, never thrown from the stream.
          file.on('error', (e) => { writeError ??= goPathError(e, 'write'); });
          out = file;
        } catch (err) {
          throw new Error(`failed to save image: ${goPathError(err).message}`);
        }
      }
      try {
        await client().request('/images/get', {
          query: {},
          queryList: { names: images },
          onData: (chunk) => { out.write(chunk); },
        });
        if (tmp !== undefined && opts.output !== undefined) {
          await new Promise<void>((resolve, reject) => { out.once('error', reject); out.end(() => resolve()); });
          if (writeError !== undefined) throw writeError;
          await fs.promises.rename(tmp, opts.output);
        }
      } catch (err) {
        if (tmp !== undefined) { out.end(); await fs.promises.rm(tmp, { force: true }); }
        throw err;
      }
    });

  program
    .command('import')
    .description('Import the contents from a tarball to create a filesystem image')
    .argument('<file>', 'a root filesystem tarball, or - for stdin')
    .argument('[reference]', 'REPOSITORY[:TAG]')
    .action(async (file: string, reference: string | undefined) => {
      const { repo, tag } = splitRepoTag(reference, 'cannot import digest reference');
      const res = await client().json<{ status: string }>('/images/create', {
        method: 'POST',
        query: { fromSrc: '-', repo, tag },
        bodyStream: file === '-' ? process.stdin : await openUpload(file),
        contentType: 'application/x-tar',
      });
      process.stdout.write(`${res.status}\n`);
    });
}
