/**
 * isula: the docker-like client of isulad. Results go to stdout, errors to
 * stderr. Exit codes: 0 ok, 1 on errors (daemon unreachable included), and
 * docker's 125/126/127 or the container's code for run, create and start -a.
 */
import { Command, Option } from 'commander';
import { DaemonError, DaemonUnreachableError, DEFAULT_HOST, EngineClient, jsonLines } from './client.js';
import { registerArchiveCommands } from './commands-archive.js';
import { registerContainerCommands } from './commands-containers.js';
import { ExitCode, StatusError } from './exit-code.js';
import { UsageError } from './usage-error.js';
import { registerImageCommands } from './commands-images.js';
import { formatEvent, formatInfo, formatVersion, type ServerVersion } from './format.js';

declare const ISULA_CLI_VERSION: string;
const CLIENT_VERSION = typeof ISULA_CLI_VERSION === 'string' ? ISULA_CLI_VERSION : '0.0.0-dev';


function client(program: Command): EngineClient {
  const { host } = program.opts<{ host?: string }>();
  return new EngineClient(host ?? process.env['ISULAD_HOST'] ?? DEFAULT_HOST);
}

const out = (text: string) => process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);

export function buildProgram(): Command {
  const program = new Command('isula')
    .description('isula: a lightweight container engine client')
    .version(CLIENT_VERSION, '-v, --version', 'print the client version and exit')
    .addOption(new Option('-H, --host <unix://PATH>', 'daemon socket to connect to').env('ISULAD_HOST'))
    .showHelpAfterError()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });

  program
    .command('version')
    .description('Show the client and daemon version information')
    .addOption(new Option('-f, --format <format>', 'output format').choices(['json']))
    .action(async (opts: { format?: string }) => {
      const clientInfo = { Version: CLIENT_VERSION, ApiVersion: '1.41', NodeVersion: process.version, Os: process.platform, Arch: process.arch === 'x64' ? 'amd64' : process.arch };
      let server: ServerVersion | undefined;
      let failure: unknown;
      try {
        server = await client(program).json<ServerVersion>('/version');
      } catch (err) {
        failure = err;
      }
      if (opts.format === 'json') out(JSON.stringify({ Client: clientInfo, Server: server ?? null }));
      else out(formatVersion(clientInfo, server));
      if (failure !== undefined) throw failure;
    });

  program
    .command('info')
    .description('Display system-wide information, including the loaded plugins')
    .addOption(new Option('-f, --format <format>', 'output format').choices(['json']))
    .action(async (opts: { format?: string }) => {
      const info = await client(program).json<Record<string, unknown>>('/info');
      out(opts.format === 'json' ? JSON.stringify(info) : formatInfo(info));
    });

  program
    .command('events')
    .description('Get real time events from the server')
    .option('-S, --since <time>', 'show events since a timestamp, RFC 3339 date or duration (e.g. 10m)')
    .option('-U, --until <time>', 'stream events until this timestamp')
    .option('-f, --filter <key=value>', 'filter output (type, event, container, image, plugin, label); repeatable', (v: string, prev: string[] = []) => [...prev, v])
    .addOption(new Option('--format <format>', 'output format').choices(['json']))
    .action(async (opts: { since?: string; until?: string; filter?: string[]; format?: string }) => {
      const filters: Record<string, string[]> = {};
      for (const f of opts.filter ?? []) {
        const eq = f.indexOf('=');
        if (eq <= 0) throw new UsageError(`invalid filter ${JSON.stringify(f)}: want key=value`);
        (filters[f.slice(0, eq)] ??= []).push(f.slice(eq + 1));
      }
      await client(program).request('/events', {
        query: {
          since: opts.since,
          until: opts.until,
          filters: Object.keys(filters).length > 0 ? JSON.stringify(filters) : undefined,
        },
        onData: jsonLines((line) => out(opts.format === 'json' ? line : formatEvent(JSON.parse(line) as Parameters<typeof formatEvent>[0]))),
      });
    });

  registerImageCommands(program, () => client(program));
  registerArchiveCommands(program, () => client(program));
  registerContainerCommands(program, () => client(program));

  return program;
}


/** Runs the CLI and returns the process exit code. */
export async function run(argv: string[]): Promise<number> {
  const program = buildProgram();
  program.exitOverride();
  try {
    await program.parseAsync(argv);
    return 0;
  } catch (err) {
    return reportError(err);
  }
}

function reportError(err: unknown): number {
  if (err instanceof ExitCode) return err.code;
  if (err instanceof StatusError) {
    // docker's run/create wording: "docker: MESSAGE." and a pointer to the help.
    const help = err.helpFor === undefined ? '' : `\nSee 'isula ${err.helpFor} --help'.`;
    process.stderr.write(`isula: ${/[.?!]$/.test(err.message) ? err.message : `${err.message}.`}${help}\n`);
    return err.code;
  }
  const e = err as { code?: string; exitCode?: number; name?: string };
  // commander already printed its own message (help, usage errors, --version).
  if (typeof e.code === 'string' && e.code.startsWith('commander.')) return e.exitCode ?? 1;
  if (err instanceof DaemonUnreachableError) {
    process.stderr.write(`${err.message}\n`);
    return 1;
  }
  if (err instanceof DaemonError) {
    process.stderr.write(`Error response from daemon: ${err.message}\n`);
    return 1;
  }
  if (err instanceof UsageError) {
    process.stderr.write(`isula: ${err.message}\n`);
    return 1;
  }
  process.stderr.write(`isula: ${(err as Error)?.message ?? String(err)}\n`);
  return 1;
}
