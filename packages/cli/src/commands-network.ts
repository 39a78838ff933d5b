/**
 * `isula network create|ls|inspect|rm`: docker 20.10's commands
 * (`cli/command/network/`) over the Engine API's `/networks` routes. Output,
 * words and exit codes are docker's: create prints the new id, rm echoes each
 * name, a missing network is `Error: No such network: X` (the client's
 * wording for a 404), and any failure exits 1 after the others were done.
 */
import type { Command } from 'commander';
import { DaemonError, type EngineClient } from './client.js';
import { filtersJson } from './commands-containers.js';
import { ExitCode } from './exit-code.js';
import { compileTemplate } from './go-template.js';
import { buildNetworkCreateBody, formatNetworkList, networkListTemplate, type NetworkCreateFlags, type NetworkListOptions, type NetworkResource } from './network-format.js';

const out = (text: string) => process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
const err = (text: string) => process.stderr.write(text.endsWith('\n') ? text : `${text}\n`);
const collect = (v: string, prev: string[] = []) => [...prev, v];
const npath = (id: string) => `/networks/${encodeURIComponent(id)}`;

/**
 * docker's client words a 404 of a network as `Error: No such network: X`
 * (`wrapResponseError`), any other answer as `Error response from daemon: …`.
 */
export function networkError(e: unknown, name: string): string {
  if (e instanceof DaemonError) return e.status === 404 ? `Error: No such network: ${name}` : `Error response from daemon: ${e.message}`;
  return (e as Error)?.message ?? String(e);
}

/** A network subcommand with docker's usage-error tail (`See 'isula network create --help'.`). */
function subcommand(network: Command, name: string): Command {
  return network
    .command(name)
    // `network` itself takes any words (to name an unknown one); its subcommands take no extra ones, as docker's.
    .allowExcessArguments(false)
    .showHelpAfterError(`See 'isula network ${name} --help'.`)
    .exitOverride((e) => { throw e.exitCode === 0 ? e : new ExitCode(e.exitCode); });
}

/** `inspect`: each network in turn; the found ones are printed, then the errors, exit 1 (docker's `inspect.Inspect`). */
async function inspectNetworks(client: EngineClient, names: readonly string[], format: string | undefined): Promise<void> {
  let render: ((value: unknown) => string) | undefined;
  if (format !== undefined) {
    try {
      render = compileTemplate(format);
    } catch (e) {
      // docker: a template that does not parse is a StatusError 64, before any request.
      err(`Template parsing error: ${(e as Error).message}`);
      throw new ExitCode(64);
    }
  }
  const found: unknown[] = [];
  const errors: string[] = [];
  for (const name of names) {
    try {
      found.push(await client.json(npath(name)));
    } catch (e) {
      if (!(e instanceof DaemonError)) throw e;
      errors.push(networkError(e, name));
    }
  }
  if (render === undefined) out(JSON.stringify(found, null, 4));
  // docker's TemplateInspector: each result and a newline; a lone newline when none was found.
  else process.stdout.write(found.length === 0 ? '\n' : found.map((v) => `${render(v)}\n`).join(''));
  if (errors.length > 0) {
    err(errors.join('\n'));
    throw new ExitCode(1);
  }
}

function declareNetworkSubcommands(network: Command, client: () => EngineClient): void {
  subcommand(network, 'create')
    .description('Create a network')
    .argument('<name>', 'network name')
    .option('-d, --driver <driver>', 'driver to manage the network', 'bridge')
    .option('--subnet <cidr>', 'subnet in CIDR format that represents a network segment; repeatable', collect)
    .option('--gateway <ip>', 'IPv4 or IPv6 gateway for the master subnet; repeatable', collect)
    .option('--internal', 'restrict external access to the network')
    .option('--label <key=value>', 'set metadata on a network; repeatable', collect)
    .action(async (name: string, opts: NetworkCreateFlags) => {
      const body = buildNetworkCreateBody(name, opts);
      const res = await client().json<{ Id: string }>('/networks/create', { method: 'POST', body });
      out(res.Id);
    });

  subcommand(network, 'ls')
    .alias('list')
    .description('List networks')
    .option('-f, --filter <key=value>', "provide filter values (e.g. 'driver=bridge'): name, id, driver; repeatable", collect)
    .option('--format <template>', 'Go template over .ID .Name .Driver .Scope .IPv6 .Internal .Labels .Label "k" .CreatedAt; "table ..." adds a header')
    .option('--no-trunc', 'do not truncate the output')
    .option('-q, --quiet', 'only display network IDs')
    .action(async (opts: NetworkListOptions & { filter?: string[] }) => {
      networkListTemplate(opts); // a bad --format fails before the request
      const networks = await client().json<NetworkResource[]>('/networks', { query: { filters: filtersJson(opts.filter ?? []) } });
      const text = formatNetworkList(networks, opts);
      if (text !== '') out(text);
    });

  subcommand(network, 'inspect')
    .description('Display detailed information on one or more networks')
    .option('-f, --format <template>', 'format the output using a Go template ({{.Name}}, {{json .IPAM.Config}}, {{range .Containers}}...)')
    .argument('<network...>', 'network names or ids')
    .action(async (names: string[], opts: { format?: string }) => {
      await inspectNetworks(client(), names, opts.format);
    });

  subcommand(network, 'rm')
    .alias('remove')
    .description('Remove one or more networks')
    .argument('<network...>', 'network names or ids')
    .action(async (names: string[]) => {
      let failed = false;
      for (const name of names) {
        try {
          await client().request(npath(name), { method: 'DELETE' });
          out(name);
        } catch (e) {
          if (!(e instanceof DaemonError)) throw e;
          err(networkError(e, name));
          failed = true;
        }
      }
      if (failed) throw new ExitCode(1);
    });
}

/**
 * Declares `network`; its subcommands only when it runs or shows its help
 * (`isula help network`), so other commands do not pay for declaring them.
 */
export function registerNetworkCommands(program: Command, client: () => EngineClient): void {
  const network = program
    .command('network')
    .description('Manage networks')
    .allowExcessArguments()
    .exitOverride((e) => { throw e.exitCode === 0 ? e : new ExitCode(e.exitCode); })
    // docker's `ShowHelp`: `isula network` alone prints the help on stderr and exits 0.
    .action((_opts: unknown, cmd: Command) => {
      const [word] = cmd.args;
      if (word !== undefined) cmd.error(`error: unknown command '${word}'`, { code: 'commander.unknownCommand' });
      cmd.outputHelp({ error: true });
    });
  let declared = false;
  const ensure = () => {
    if (!declared) { declared = true; declareNetworkSubcommands(network, client); }
  };
  program.hook('preSubcommand', (_program, sub) => { if (sub === network) ensure(); });
  const helpInformation = network.helpInformation.bind(network);
  network.helpInformation = (context) => { ensure(); return helpInformation(context); };
}
