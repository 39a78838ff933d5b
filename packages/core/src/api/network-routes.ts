/**
 * Network routes (Docker Engine API v1.41 `/networks`), served by the
 * registered network drivers' optional management methods: `GET /networks`
 * (`filters`: `name`, `id`, `driver`), `GET /networks/{id}`, `POST
 * /networks/create`, `DELETE /networks/{id}`, `POST /networks/prune`. A network's containers come
 * from the container domain (the records' current attachments).
 */
import type { NetworkCreateRequest, NetworkDriver, NetworkInfo } from '../drivers/network.js';
import { IsulaError } from '../errors.js';
import { untilFilterMs, type EventBus } from '../events.js';
import type { ContainerRecord } from '../container/record.js';
import { matchLabels, matchPruneLabels, parseFilters } from './filters.js';
import { sendJson, type ApiServer } from './server.js';
import { isRecord } from '../is-record.js';

export interface NetworkSource {
  drivers(): readonly NetworkDriver[];
  containers(): readonly ContainerRecord[];
  events: EventBus;
  /** `network connect` (the container manager's). */
  connect(container: string, network: string, opts: { ipv4?: string }): Promise<void>;
  /** `network disconnect`. */
  disconnect(container: string, network: string, force: boolean): Promise<void>;
}

const LIST_FILTERS: ReadonlySet<string> = new Set(['name', 'id', 'driver']);
/** Docker's NetworksPrune filters. */
const PRUNE_FILTERS: ReadonlySet<string> = new Set(['until', 'label', 'label!']);

/** The containers using `n`: attached now, or naming it as their network (a stopped one would fail to start without it). */
function usersOf(source: NetworkSource, n: NetworkInfo): ContainerRecord[] {
  return source.containers().filter((r) => (r.Network?.Results ?? []).some((x) => x.network === n.name)
    || r.HostConfig.NetworkMode === n.name || r.HostConfig.NetworkMode === n.id || (r.JoinedNetworks ?? []).includes(n.name));
}

type ManagingDriver = NetworkDriver & Required<Pick<NetworkDriver, 'list' | 'create' | 'remove' | 'resolve'>>;

/** The network plugin that manages networks (list, create, remove, resolve), if one is loaded. */
function managingOrUndefined(source: NetworkSource): ManagingDriver | undefined {
  return source.drivers().find((x) => x.list !== undefined && x.create !== undefined && x.remove !== undefined && x.resolve !== undefined) as ManagingDriver | undefined;
}

function managing(source: NetworkSource): ManagingDriver {
  const d = managingOrUndefined(source);
  if (d === undefined) throw new IsulaError('NOT_IMPLEMENTED', 'no network plugin that manages networks is loaded');
  return d;
}

/** Docker's NetworkResource. */
function networkView(n: NetworkInfo, containers: readonly ContainerRecord[]): Record<string, unknown> {
  const attached: Record<string, unknown> = {};
  for (const r of containers) {
    const results = r.Network?.Results ?? [];
    const i = results.findIndex((res) => res.network === n.name);
    if (i < 0) continue;
    const res = results[i];
    const v4 = res?.addresses.find((a) => !a.address.includes(':'));
    attached[r.Id] = { Name: r.Name, EndpointID: '', MacAddress: res?.mac ?? '', IPv4Address: v4?.address ?? '', IPv6Address: '' };
  }
  return {
    Name: n.name,
    Id: n.id,
    Created: n.created.toISOString(),
    Scope: 'local',
    Driver: n.driver,
    EnableIPv6: false,
    IPAM: { Driver: 'default', Options: {}, Config: n.subnets.map((s) => ({ Subnet: s.subnet, ...(s.gateway !== undefined && { Gateway: s.gateway }) })) },
    Internal: n.internal,
    Attachable: false,
    Ingress: false,
    ConfigFrom: { Network: '' },
    ConfigOnly: false,
    Containers: attached,
    Options: { 'isula.cni.conflist': n.file, 'isula.cni.plugins': n.plugins.join(',') },
    Labels: n.labels,
  };
}

async function find(source: NetworkSource, idOrName: string, signal: AbortSignal): Promise<NetworkInfo> {
  const d = managing(source);
  const byName = await d.resolve(idOrName, { signal });
  if (byName !== undefined) return byName;
  const all = await d.list({ signal });
  const hits = all.filter((n) => n.id === idOrName || (idOrName.length >= 3 && n.id.startsWith(idOrName)));
  if (hits.length === 1 && hits[0] !== undefined) return hits[0];
  if (hits.length > 1) throw new IsulaError('API_BAD_REQUEST', `network ${idOrName} is ambiguous (${hits.length} matches)`);
  throw new IsulaError('NETWORK_NOT_FOUND', `network ${idOrName} not found`);
}

export function registerNetworkRoutes(api: ApiServer, source: NetworkSource): void {
  api.route('GET', '/networks', async ({ query, signal }) => {
    const filters = parseFilters(query.get('filters'), LIST_FILTERS);
    const all = await managing(source).list({ signal });
    const match = (values: string[] | undefined, v: string) => values === undefined || values.some((f) => v.includes(f));
    return all
      .filter((n) => match(filters['name'], n.name) && (filters['id'] === undefined || filters['id'].some((f) => n.id.startsWith(f))) && (filters['driver'] === undefined || filters['driver'].includes(n.driver)))
      .map((n) => networkView(n, source.containers()));
  });

  api.route('GET', '/networks/:id', async ({ params, signal }) => networkView(await find(source, params['id'] ?? '', signal), source.containers()));

  api.route('POST', '/networks/create', async ({ json, res, signal }) => {
    const body = (await json()) as Record<string, unknown> | null;
    if (typeof body !== 'object' || body === null) throw new IsulaError('API_BAD_REQUEST', 'expected a JSON object {Name, Driver, IPAM, Internal, Labels}');
    const name = body['Name'];
    if (typeof name !== 'string' || !/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/.test(name) || name.length > 64) throw new IsulaError('NETWORK_CONFIG_INVALID', `invalid network name ${JSON.stringify(name)}: [a-zA-Z0-9][a-zA-Z0-9_.-]*, at most 64 characters`);
    if (['bridge', 'default', 'host', 'none'].includes(name)) throw new IsulaError('NETWORK_CONFIG_INVALID', `${name} is a pre-defined network and cannot be created`);
    const driver = typeof body['Driver'] === 'string' && body['Driver'] !== '' ? body['Driver'] : 'bridge';
    if (driver !== 'bridge') throw new IsulaError('NETWORK_CONFIG_INVALID', `network driver ${driver} is not supported (only bridge)`);
    const ipam = (body['IPAM'] ?? {}) as { Config?: { Subnet?: string; Gateway?: string }[] };
    const cfg = Array.isArray(ipam.Config) ? ipam.Config : [];
    if (cfg.length > 1) throw new IsulaError('NETWORK_CONFIG_INVALID', 'one subnet per network');
    const request: NetworkCreateRequest = {
      name,
      driver,
      internal: body['Internal'] === true,
      labels: typeof body['Labels'] === 'object' && body['Labels'] !== null ? (body['Labels'] as Record<string, string>) : {},
      ...(cfg[0]?.Subnet !== undefined && cfg[0].Subnet !== '' && { subnet: cfg[0].Subnet }),
      ...(cfg[0]?.Gateway !== undefined && cfg[0].Gateway !== '' && { gateway: cfg[0].Gateway }),
    };
    const n = await managing(source).create(request, { signal });
    source.events.emit({ Type: 'network', Action: 'create', Actor: { ID: n.id, Attributes: { name: n.name, type: n.driver } } });
    sendJson(res, 201, { Id: n.id, Warning: '' });
    return undefined;
  });

  // Docker's NetworksPrune: every user-defined network no container uses (isula also keeps one a
  // stopped container names, which docker would remove from under it), within the filters.
  api.route('POST', '/networks/prune', async ({ query, signal }) => {
    const filters = parseFilters(query.get('filters'), PRUNE_FILTERS);
    const untilMs = untilFilterMs(filters);
    // Without a network plugin that manages networks there is none to prune (docker's system prune asks anyway).
    const driver = managingOrUndefined(source);
    if (driver === undefined) return { NetworksDeleted: [] };
    const deleted: string[] = [];
    for (const n of await driver.list({ signal })) {
      if (n.isDefault || usersOf(source, n).length > 0) continue;
      if (untilMs !== undefined && !(n.created.getTime() < untilMs)) continue;
      if (!matchPruneLabels(filters, n.labels)) continue;
      try {
        await driver.remove(n.name, { signal });
      } catch (err) {
        if (err instanceof IsulaError && (err.kind === 'conflict' || err.kind === 'notFound')) continue;
        throw err;
      }
      source.events.emit({ Type: 'network', Action: 'destroy', Actor: { ID: n.id, Attributes: { name: n.name, type: n.driver } } });
      deleted.push(n.name);
    }
    source.events.emit({ Type: 'network', Action: 'prune', Actor: { ID: '', Attributes: {} } });
    return { NetworksDeleted: deleted };
  });

  // Docker's NetworkConnect / NetworkDisconnect: the container by id, name or id prefix; 200 and no body.
  api.route('POST', '/networks/:id/connect', async ({ params, json, res }) => {
    const body = (await json()) as Record<string, unknown> | null;
    const container = containerField(body, '{Container, EndpointConfig}');
    const endpoint = body?.['EndpointConfig'];
    const ipam = isRecord(endpoint) ? endpoint['IPAMConfig'] : undefined;
    const ipv4 = isRecord(ipam) ? ipam['IPv4Address'] : undefined;
    if (ipv4 !== undefined && ipv4 !== null && typeof ipv4 !== 'string') throw new IsulaError('API_BAD_REQUEST', 'EndpointConfig.IPAMConfig.IPv4Address must be a string');
    if (isRecord(ipam) && typeof ipam['IPv6Address'] === 'string' && ipam['IPv6Address'] !== '') throw new IsulaError('NETWORK_CONFIG_INVALID', 'IPv6 addresses are not supported');
    // Names other containers would resolve: without an embedded DNS they would silently not work.
    for (const field of ['Aliases', 'Links']) {
      const v = isRecord(endpoint) ? endpoint[field] : undefined;
      if (Array.isArray(v) && v.length > 0) throw new IsulaError('NETWORK_CONFIG_INVALID', `EndpointConfig.${field} is not supported: isulad has no embedded DNS to resolve ${field === 'Aliases' ? 'network aliases' : 'links'}`);
    }
    await source.connect(container, params['id'] ?? '', typeof ipv4 === 'string' && ipv4 !== '' ? { ipv4 } : {});
    res.writeHead(200);
    res.end();
    return undefined;
  });

  api.route('POST', '/networks/:id/disconnect', async ({ params, json, res }) => {
    const body = (await json()) as Record<string, unknown> | null;
    const container = containerField(body, '{Container, Force}');
    const force = body?.['Force'];
    if (force !== undefined && typeof force !== 'boolean') throw new IsulaError('API_BAD_REQUEST', 'Force must be a boolean');
    await source.disconnect(container, params['id'] ?? '', force === true);
    res.writeHead(200);
    res.end();
    return undefined;
  });

  api.route('DELETE', '/networks/:id', async ({ params, res, signal }) => {
    const n = await find(source, params['id'] ?? '', signal);
    if (n.isDefault) throw new IsulaError('NETWORK_CONFIG_INVALID', `${n.name} is a pre-defined network and cannot be removed`, { httpStatus: 403 });
    const users = source.containers().filter((r) => (r.Network?.Results ?? []).some((x) => x.network === n.name));
    if (users.length > 0) throw new IsulaError('NETWORK_IN_USE', `error while removing network: network ${n.name} id ${n.id} has active endpoints (${users.map((u) => u.Name).join(', ')})`);
    await managing(source).remove(n.name, { signal });
    source.events.emit({ Type: 'network', Action: 'destroy', Actor: { ID: n.id, Attributes: { name: n.name, type: n.driver } } });
    res.writeHead(204);
    res.end();
    return undefined;
  });
}


/** The request's `Container`: a non-empty string. */
function containerField(body: Record<string, unknown> | null, shape: string): string {
  if (!isRecord(body)) throw new IsulaError('API_BAD_REQUEST', `expected a JSON object ${shape}`);
  const c = body['Container'];
  if (typeof c !== 'string' || c === '') throw new IsulaError('API_BAD_REQUEST', 'Container must name a container');
  return c;
}
