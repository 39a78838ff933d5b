/**
 * `isula volume create|ls|inspect|rm|prune`: docker 20.10's commands
 * (`cli/command/volume/`) over the Engine API's `/volumes` routes. Output,
 * words and exit codes are docker's: create prints the volume's name, rm
 * echoes each name, a missing volume is `Error: No such volume: X` (the
 * client's wording for a 404), and any failure exits 1 after the others were
 * done. prune asks docker's question on a terminal; off one it wants -f.
 */
import { Option, type Command } from 'commander';
import { DaemonError, type EngineClient } from './client.js';
import { filtersJson } from './commands-containers.js';
import { ExitCode } from './exit-code.js';
import { err, inspectEach, lazyGroup, out, subcommand } from './object-commands.js';
import { UsageError } from './usage-error.js';
import { buildVolumeCreateBody, formatVolumeList, formatVolumePrune, volumeListTemplate, type Volume, type VolumeCreateFlags, type VolumeListOptions } from './volume-format.js';

const collect = (v: string, prev: string[] = []) => [...prev, v];
const vpath = (name: string) => `/volumes/${encodeURIComponent(name)}`;

export const PRUNE_WARNING = 'WARNING! This will remove all local volumes not used by at least one container.\nAre you sure you want to continue?';

/**
 * docker's client words a 404 of a volume as `Error: No such volume: X`
 * (`wrapResponseError`), any other answer as `Error response from daemon: …`.
 */
export function volumeError(e: unknown, name: string): string {
  if (e instanceof DaemonError) return e.status === 404 ? `Error: No such volume: ${name}` : `Error response from daemon: ${e.message}`;
  return (e as Error)?.message ?? String(e);
}

/**
 * docker's `PromptForConfirmation`: `MESSAGE [y/N] ` on `output`, one line
 * from `input`; only `y` or `Y` (spaces trimmed) is a yes, and so is not the
 * input's end.
 */
export function promptForConfirmation(input: NodeJS.ReadableStream, output: NodeJS.WritableStream, message: string): Promise<boolean> {
  output.write(`${message} [y/N] `);
  return new Promise((resolve) => {
    let line = '';
    const done = (answer: boolean) => {
      input.off('data', onData);
      input.off('end', onEnd);
      input.off('error', onEnd);
      input.pause();
      resolve(answer);
    };
    const onData = (chunk: Buffer | string) => {
      line += chunk.toString();
      const nl = line.indexOf('\n');
      if (nl >= 0) done(/^[yY]$/.test(line.slice(0, nl).trim()));
    };
    const onEnd = () => done(/^[yY]$/.test(line.trim()));
    input.on('data', onData);
    input.on('end', onEnd);
    input.on('error', onEnd);
    input.resume();
  });
}

/**
 * The question a prune asks without `-f`: docker's `WARNING! …` and `[y/N]`
 * on a terminal. isula asks a terminal only (docker reads any stdin), so a
 * stray line of piped input is never taken as consent: off one it is a
 * usage error naming `-f`.
 */
export async function confirmPrune(what: string, warning: string): Promise<boolean> {
  if (!process.stdin.isTTY) throw new UsageError(`${what} asks for confirmation on a terminal only: use -f (--force) to prune without it`);
  return promptForConfirmation(process.stdin, process.stdout, warning);
}

function declareVolumeSubcommands(volume: Command, client: () => EngineClient): void {
  subcommand(volume, 'volume', 'create')
    .description('Create a volume')
    .argument('[name]', 'volume name (the daemon picks one when not given)')
    .option('-d, --driver <driver>', 'specify volume driver name', 'local')
    .option('--label <key=value>', 'set metadata for a volume; repeatable', collect)
    .option('-o, --opt <key=value>', 'set driver specific options; repeatable', collect)
    .addOption(new Option('--name <name>', 'specify volume name').hideHelp())
    .action(async (name: string | undefined, opts: VolumeCreateFlags) => {
      const body = buildVolumeCreateBody(name, opts);
      const res = await client().json<Volume>('/volumes/create', { method: 'POST', body });
      out(res.Name);
    });

  subcommand(volume, 'volume', 'ls')
    .alias('list')
    .description('List volumes')
    .option('-f, --filter <key=value>', "provide filter values (e.g. 'dangling=true'): dangling, driver, label, name; repeatable", collect)
    .option('--format <template>', 'Go template over .Name .Driver .Scope .Mountpoint .Labels .Label "k" .Links .Size .CreatedAt; "table ..." adds a header')
    .option('-q, --quiet', 'only display volume names')
    .action(async (opts: VolumeListOptions & { filter?: string[] }) => {
      volumeListTemplate(opts); // a bad --format fails before the request
      const res = await client().json<{ Volumes?: Volume[] | null; Warnings?: string[] | null }>('/volumes', { query: { filters: filtersJson(opts.filter ?? []) } });
      const text = formatVolumeList(res.Volumes ?? [], opts);
      if (text !== '') out(text);
    });

  subcommand(volume, 'volume', 'inspect')
    .description('Display detailed information on one or more volumes')
    .option('-f, --format <template>', 'format the output using a Go template ({{.Mountpoint}}, {{json .Labels}}, {{index .Labels "k"}}...)')
    .argument('<volume...>', 'volume names')
    .action(async (names: string[], opts: { format?: string }) => {
      await inspectEach(client(), names, opts.format, { path: vpath, errorOf: volumeError, notFoundWithoutAsking: (name) => (name === '' ? 'Error: No such volume: ' : undefined) });
    });

  subcommand(volume, 'volume', 'rm')
    .alias('remove')
    .description('Remove one or more volumes. You cannot remove a volume that is in use by a container.')
    .option('-f, --force', 'force the removal of one or more volumes')
    .argument('<volume...>', 'volume names')
    .action(async (names: string[], opts: { force?: boolean }) => {
      // docker's runRemove: each name removed is echoed; the errors all come at the end.
      const errors: string[] = [];
      for (const name of names) {
        try {
          await client().request(vpath(name), { method: 'DELETE', query: { force: opts.force ? '1' : undefined } });
          out(name);
        } catch (e) {
          if (!(e instanceof DaemonError)) throw e;
          errors.push(volumeError(e, name));
        }
      }
      if (errors.length > 0) {
        err(errors.join('\n'));
        throw new ExitCode(1);
      }
    });

  subcommand(volume, 'volume', 'prune')
    .description('Remove all unused local volumes')
    .option('--filter <key=value>', "provide filter values (e.g. 'label=<label>'); repeatable", collect)
    .option('-f, --force', 'do not prompt for confirmation')
    .action(async (opts: { filter?: string[]; force?: boolean }) => {
      const filters = filtersJson(opts.filter ?? []);
      if (!opts.force && !await confirmPrune('volume prune', PRUNE_WARNING)) {
        out('Total reclaimed space: 0B');
        return;
      }
      const report = await client().json<{ VolumesDeleted?: string[] | null; SpaceReclaimed?: number }>('/volumes/prune', { method: 'POST', query: { filters } });
      process.stdout.write(formatVolumePrune(report));
    });
}

/** Declares `volume` (its subcommands lazily, see lazyGroup). */
export function registerVolumeCommands(program: Command, client: () => EngineClient): void {
  lazyGroup(program, 'volume', 'Manage volumes', (group) => declareVolumeSubcommands(group, client));
}
