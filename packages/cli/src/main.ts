/**
 * isula: the docker-like client of isulad. Results go to stdout, errors to
 * stderr. Exit codes: 0 ok, 1 on errors (daemon unreachable included), and
 * docker's 125/126/127 or the code of the container (or exec) for run, create,
 * start -a and exec; attach exits with the container's code.
 */
import { Argument, Command, Option } from 'commander';
import { DaemonError, DaemonUnreachableError, DEFAULT_HOST, EngineClient } from './client.js';
import { registerArchiveCommands } from './commands-archive.js';
import { registerContainerCommands } from './commands-containers.js';
import { registerNetworkCommands } from './commands-network.js';
import { registerStreamCommands } from './commands-streams.js';
import { registerVolumeCommands } from './commands-volume.js';
import { registerSystemCommands } from './commands-system.js';
import { ExitCode, StatusError } from './exit-code.js';
import { UsageError } from './usage-error.js';
import { registerImageCommands } from './commands-images.js';
import { registerRegistryCommands } from './commands-registry.js';
import { formatInfo, formatVersion, type ServerVersion } from './format.js';
import { completeNames, completionScript } from './completion.js';
import { examplesHelp } from './help-examples.js';
import { declareEverything, declareOnly } from './lazy-declare.js';
import { firstWord, managementAlias } from './management.js';
import { parseBoolFlag } from './run-options.js';
import { commandReference } from './reference-docs.js';

declare const ISULA_CLI_VERSION: string;
const CLIENT_VERSION = typeof ISULA_CLI_VERSION === 'string' ? ISULA_CLI_VERSION : '0.0.0-dev';


function client(program: Command): EngineClient {
  const { host } = program.opts<{ host?: string }>();
  return new EngineClient(host ?? process.env['ISULAD_HOST'] ?? DEFAULT_HOST);
}

const out = (text: string) => process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);

/** Words whose command needs the whole tree declared (it lists or documents every command). */
const WHOLE_TREE = new Set(['help', 'completion', '__docs']);

/**
 * What of the command tree `argv` needs: only the global options (`-v`), the
 * top-level command it names (with all its subcommands), or everything (help,
 * no command, an option before the command other than `-H`, completion).
 */
export function neededCommand(argv: readonly string[]): { only: string } | 'all' {
  const args = argv.slice(2);
  for (let i = 0; i < args.length; i += 1) {
    const a = args[i] ?? '';
    if (a === '-H' || a === '--host') { i += 1; continue; }
    if (a.startsWith('--host=') || (a.startsWith('-H') && !a.startsWith('--'))) continue;
    if (a === '-v' || a === '--version') return { only: '' };
    if (a.startsWith('-') || WHOLE_TREE.has(a)) return 'all';
    return { only: a };
  }
  return 'all';
}

export function buildProgram(argv: readonly string[] = []): Command {
  const program = new Command('isula')
    .description('isula: a lightweight container engine client')
    .version(CLIENT_VERSION, '-v, --version', 'print the client version and exit')
    .addOption(new Option('-H, --host <unix://PATH>', 'daemon socket to connect to').env('ISULAD_HOST'))
    .showHelpAfterError()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });

  const registerCommands = (): void => {
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
    registerImageCommands(program, () => client(program));
    registerRegistryCommands(program, () => client(program));
    registerArchiveCommands(program, () => client(program));
    registerContainerCommands(program, () => client(program));
    registerNetworkCommands(program, () => client(program));
    registerVolumeCommands(program, () => client(program));
    registerSystemCommands(program, () => client(program));
    registerStreamCommands(program, () => client(program));
    // What the completion script runs on a TAB.
    program
      .command('__complete', { hidden: true })
      .argument('<kind...>', 'containers, images, networks or volumes')
      .action(async (kinds: string[]) => {
        const names = await completeNames(client(program), kinds);
        if (names.length > 0) out(names.join('\n'));
      });
  };
  // A call declares only the command it runs (README, "Why it starts fast"); `-v` none at all.
  const needed = neededCommand(argv);
  if (needed === 'all' || (!declareOnly(program, needed.only, registerCommands) && needed.only !== '')) {
    registerCommands();
  }

  // These two need the whole tree (neededCommand() says 'all' for them).
  program
    .command('completion')
    .description('Print a shell completion script for bash or zsh')
    .addArgument(new Argument('<shell>', 'the shell').choices(['bash', 'zsh']))
    .action((shell: string) => {
      declareEverything(program);
      process.stdout.write(completionScript(program, shell));
    });
  program
    .command('__docs', { hidden: true })
    .description('Print the Markdown command reference (docs/commands.md)')
    .action(() => {
      declareEverything(program);
      process.stdout.write(commandReference(program));
    });

  program.addHelpText('afterAll', ({ command }) => examplesHelp(command));

  return program;
}


/**
 * `isula help network rm` as `isula network rm --help`: commander's help
 * command looks at its first word only, which would show the help of
 * `network`.
 */
export function helpOfSubcommand(argv: readonly string[]): string[] {
  const i = firstWord(argv);
  const words = argv.slice(i + 1);
  if (argv[i] !== 'help' || words.length < 2 || words.some((w) => w.startsWith('-'))) return [...argv];
  return [...argv.slice(0, i), ...words, '--help'];
}

/** The Go bool flags that take `=VALUE` (docker's `commit --pause=false`, `history --human=false`, `attach --sig-proxy=false`), by command. */
const GO_BOOL_FLAGS: Readonly<Record<string, readonly string[]>> = { commit: ['--pause', '-p'], history: ['--human'], attach: ['--sig-proxy'] };

/**
 * `--pause=false` as commander reads a boolean: `--no-pause` (`--pause` for a
 * true value). The flags are plain booleans, so `-p CONTAINER` never takes
 * the container for the flag's value; a value Go's ParseBool refuses is
 * docker's usage error.
 */
export function goBoolValues(argv: readonly string[]): string[] {
  const i = firstWord(argv);
  const flags = GO_BOOL_FLAGS[argv[i] ?? ''];
  if (flags === undefined) return [...argv];
  return argv.map((a, j) => {
    if (j <= i) return a;
    const eq = a.indexOf('=');
    const flag = eq < 0 ? '' : a.slice(0, eq);
    if (!flags.includes(flag)) return a;
    const long = flags[0] ?? flag;
    return parseBoolFlag(a.slice(eq + 1), flag) ? long : `--no-${long.slice(2)}`;
  });
}

/** Runs the CLI and returns the process exit code. */
export async function run(cliArgv: string[]): Promise<number> {
  try {
    const argv = goBoolValues(managementAlias(helpOfSubcommand(cliArgv)));
    const program = buildProgram(argv);
    program.exitOverride();
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
