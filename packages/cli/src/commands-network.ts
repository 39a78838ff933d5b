/**
 * `isula network create|ls|inspect|rm|prune|connect|disconnect`: docker 20.10's commands
 * (`cli/command/network/`) over the Engine API's `/networks` routes. Output,
 * words and exit codes are docker's: create prints the new id, rm echoes each
 * name, a missing network is `Error: No such network: X` (the client's
 * wording for a 404), and any failure exits 1 after the others were done.
 */
import type { Command } from 'commander';
import { DaemonError, type EngineClient } from './client.js';
import { filtersJson } from './commands-containers.js';
import { ExitCode } from './exit-code.js';
import { confirmPrune } from './commands-volume.js';
import { deletedBlock } from './volume-format.js';
import { err, inspectEach, lazyGroup, out, subcommand } from './object-commands.js';
import { buildNetworkCreateBody, formatNetworkList, networkListTemplate, type NetworkCreateFlags, type NetworkListOptions, type NetworkResource } from './network-format.js';

const collect = (v: string, prev: string[] = []) => [...prev, v];
const NETWORK_PRUNE_WARNING = 'WARNING! This will remove all custom networks not used by at least one container.\nAre you sure you want to continue?';
const npath = (id: string) => `/networks/${encodeURIComponent(id)}`;

/**
 * docker's client words a 404 of a network as `Error: No such network: X`
 * (`wrapResponseError`), any other answer as `Error response from daemon: …`.
 */
export function networkError(e: unknown, name: string): string {
  if (e instanceof DaemonError) return e.status === 404 ? `Error: No such network: ${name}` : `Error response from daemon: ${e.message}`;
  return (e as Error)?.message ?? String(e);
}

function declareNetworkSubcommands(network: Command, client: () => EngineClient): void {
  subcommand(network, 'network', 'create')
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

  subcommand(network, 'network', 'ls')
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

  subcommand(network, 'network', 'inspect')
    .description('Display detailed information on one or more networks')
    .option('-f, --format <template>', 'format the output using a Go template ({{.Name}}, {{json .IPAM.Config}}, {{range .Containers}}...)')
    .argument('<network...>', 'network names or ids')
    .action(async (names: string[], opts: { format?: string }) => {
      await inspectEach(client(), names, opts.format, { path: npath, errorOf: networkError });
    });

  subcommand(network, 'network', 'connect')
    .description('Connect a container to a network')
    .argument('<network>', 'network name or id')
    .argument('<container>', 'container name or id')
    .option('--ip <address>', 'IPv4 address of the container on the network')
    .action(async (name: string, container: string, opts: { ip?: string }) => {
      const body = { Container: container, EndpointConfig: opts.ip === undefined ? {} : { IPAMConfig: { IPv4Address: opts.ip } } };
      await endpointRequest(client(), name, 'connect', body);
    });

  subcommand(network, 'network', 'disconnect')
    .description('Disconnect a container from a network')
    .argument('<network>', 'network name or id')
    .argument('<container>', 'container name or id')
    .option('-f, --force', 'force the container to disconnect from a network')
    .action(async (name: string, container: string, opts: { force?: boolean }) => {
      await endpointRequest(client(), name, 'disconnect', { Container: container, Force: opts.force === true });
    });

  subcommand(network, 'network', 'rm')
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

  subcommand(network, 'network', 'prune')
    .description('Remove all unused networks')
    .option('--filter <key=value>', 'filter: until=TIMESTAMP|DURATION, label=KEY[=VALUE], label!=KEY[=VALUE]; repeatable', collect)
    .option('-f, --force', 'do not prompt for confirmation')
    .action(async (opts: { filter?: string[]; force?: boolean }) => {
      const filters = filtersJson(opts.filter ?? []);
      if (!opts.force && !await confirmPrune('network prune', NETWORK_PRUNE_WARNING)) return;
      const report = await client().json<{ NetworksDeleted?: string[] | null }>('/networks/prune', { method: 'POST', query: { filters } });
      // docker prints the list and a blank line, or nothing at all.
      process.stdout.write(deletedBlock('Networks', report.NetworksDeleted ?? []));
    });
}

/** connect/disconnect: silent on success; docker's client does not reword their errors (no "No such network"). */
async function endpointRequest(client: EngineClient, name: string, verb: 'connect' | 'disconnect', body: unknown): Promise<void> {
  try {
    await client.request(`${npath(name)}/${verb}`, { method: 'POST', body });
  } catch (e) {
    if (!(e instanceof DaemonError)) throw e;
    err(`Error response from daemon: ${e.message}`);
    throw new ExitCode(1);
  }
}

/** Declares `network` (its subcommands lazily, see lazyGroup). */
export function registerNetworkCommands(program: Command, client: () => EngineClient): void {
  lazyGroup(program, 'network', 'Manage networks', (group) => declareNetworkSubcommands(group, client));
}
