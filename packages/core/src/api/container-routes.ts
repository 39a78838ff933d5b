/**
 * Container routes of the engine API (Docker Engine API v1.41 shapes).
 */
import type net from 'node:net';
import type { StdioStream } from '../drivers/runtime.js';
import { IsulaError } from '../errors.js';
import { untilFilterMs, type EventBus } from '../events.js';
import type { ContainerCreateBody, HostConfig } from '../container/docker-types.js';
import type { AttachSink, ContainerManager } from '../container/manager.js';
import type { ContainerRecord } from '../container/record.js';
import { joinedNetworks, parsePortSpec } from '../container/network.js';
import { inspectView, listView } from '../container/view.js';
import { checkShape } from './body-shape.js';
import { DEFAULT_DETACH_KEYS, parseDetachKeys } from './detach-keys.js';
import { matchLabels, matchPruneLabels, parseFilters } from './filters.js';
import { HijackedStdio } from './hijacked-stdio.js';
import { API_VERSION, sendJson, type ApiServer } from './server.js';

/** Docker Engine API v1.41 ContainerList filters isula understands. */
const LIST_FILTERS: ReadonlySet<string> = new Set(['id', 'name', 'label', 'status', 'ancestor', 'exited', 'before', 'since', 'network', 'volume', 'health', 'publish', 'expose']);
const HEALTH: ReadonlySet<string> = new Set(['starting', 'healthy', 'unhealthy', 'none']);

/** Docker's `publish`/`expose` filter value: `PORT[/PROTO]` or `START-END[/PROTO]` (tcp by default). */
function portFilter(value: string, key: string): { from: number; to: number; proto: string } {
  const spec = parsePortSpec(value);
  if (spec === undefined) throw new IsulaError('API_BAD_REQUEST', `invalid filter '${key}=${value}': want PORT[/PROTO] or START-END[/PROTO]`);
  return spec;
}
const STATUSES: ReadonlySet<string> = new Set(['created', 'restarting', 'running', 'removing', 'paused', 'exited', 'dead']);
/** Docker's ContainersPrune filters. */
const PRUNE_FILTERS: ReadonlySet<string> = new Set(['until', 'label', 'label!']);
/** What prune leaves alone: a container that runs (paused and restarting ones count, as in docker) or is being removed. */
const NOT_PRUNED: ReadonlySet<string> = new Set(['running', 'paused', 'restarting', 'removing']);

export function bool(v: string | null): boolean {
  return v === '1' || v === 'true' || v === 'True';
}

export function optionalInt(v: string | null, name: string): number | undefined {
  if (v === null || v === '') return undefined;
  if (!/^-?\d+$/.test(v)) throw new IsulaError('API_BAD_REQUEST', `invalid value for ${name}: ${JSON.stringify(v)}`);
  return Number(v);
}

export function param(id: string | undefined): string {
  if (id === undefined || id === '') throw new IsulaError('API_BAD_REQUEST', 'missing container id');
  return id;
}

export function registerContainerRoutes(api: ApiServer, manager: ContainerManager, events: EventBus): void {
  api.route('POST', '/containers/create', async ({ res, query, json, signal }) => {
    const body = await json();
    if (body === undefined) throw new IsulaError('CONTAINER_CONFIG_INVALID', 'config cannot be empty in order to create a container');
    checkShape('create-body', body, 'CONTAINER_CONFIG_INVALID', 'container config');
    const created = await manager.create(body as ContainerCreateBody, query.get('name') ?? undefined, signal);
    sendJson(res, 201, created);
    return undefined;
  });

  api.route('GET', '/containers/json', async ({ query, signal }) => {
    const all = bool(query.get('all'));
    const limit = optionalInt(query.get('limit'), 'limit') ?? -1;
    const filters = parseFilters(query.get('filters'), LIST_FILTERS);
    for (const s of filters['status'] ?? []) {
      if (!STATUSES.has(s)) throw new IsulaError('API_BAD_REQUEST', `invalid filter 'status=${s}'`);
    }
    const exited = (filters['exited'] ?? []).map((e) => {
      if (!/^-?\d+$/.test(e)) throw new IsulaError('API_BAD_REQUEST', `invalid filter 'exited=${e}'`);
      return Number(e);
    });
    let records = manager.records().sort((a, b) => Date.parse(b.Created) - Date.parse(a.Created) || (b.Id < a.Id ? -1 : 1));
    const before = (filters['before'] ?? []).map((n) => manager.find(n).record.Created);
    const since = (filters['since'] ?? []).map((n) => manager.find(n).record.Created);
    const ancestors = filters['ancestor'];
    const showAll = all || limit > 0 || filters['status'] !== undefined || exited.length > 0 || before.length > 0 || since.length > 0;
    for (const h of filters['health'] ?? []) {
      if (!HEALTH.has(h)) throw new IsulaError('API_BAD_REQUEST', `invalid filter 'health=${h}': want starting, healthy, unhealthy or none`);
    }
    // As moby's: a network by name, or by a prefix of its id.
    const networkIds = filters['network'] === undefined ? undefined : await manager.networkIds(signal);
    const publish = (filters['publish'] ?? []).map((v) => portFilter(v, 'publish'));
    const expose = (filters['expose'] ?? []).map((v) => portFilter(v, 'expose'));
    const inRange = (ranges: { from: number; to: number; proto: string }[], port: number | undefined, proto: string) =>
      port !== undefined && ranges.some((f) => port >= f.from && port <= f.to && f.proto === proto);
    records = records.filter((r) => {
      if (!showAll && r.State.Status !== 'running' && r.State.Status !== 'paused' && r.State.Status !== 'restarting') return false;
      if (filters['health'] !== undefined && !filters['health'].includes(r.State.Health?.Status ?? 'none')) return false;
      if (filters['network'] !== undefined || filters['volume'] !== undefined || publish.length > 0 || expose.length > 0) {
        const view = listView(r) as { Ports: { PrivatePort: number; PublicPort?: number; Type: string }[]; Mounts: { Name?: string; Destination?: string }[]; NetworkSettings: { Networks: Record<string, { NetworkID?: string }> } };
        // As moby's list.go: the ports ps shows, `publish` against the host side, `expose` the
        // container side, and a container kept when either matches.
        if ((publish.length > 0 || expose.length > 0)
          && !view.Ports.some((p) => inRange(publish, p.PublicPort, p.Type) || inRange(expose, p.PrivatePort, p.Type))) return false;
        const nets = view.NetworkSettings.Networks;
        // The networks it is attached to now, and the ones it joins at start (a stopped container keeps them, as docker's).
        const names = new Set([...Object.keys(nets), ...Object.values(nets).map((x) => x.NetworkID ?? ''), ...joinedNetworks(r)]);
        if (filters['network'] !== undefined && !filters['network'].some((n) => names.has(n) || [...names].some((name) => networkIds?.get(name)?.startsWith(n) === true))) return false;
        if (filters['volume'] !== undefined && !filters['volume'].some((v) => view.Mounts.some((m) => m.Name === v || m.Destination === v))) return false;
      }
      if (filters['id'] !== undefined && !filters['id'].some((p) => r.Id.startsWith(p))) return false;
      if (filters['name'] !== undefined && !filters['name'].some((p) => matchName(p, r.Name))) return false;
      if (!matchLabels(filters['label'], r.Config.Labels ?? {})) return false;
      if (filters['status'] !== undefined && !filters['status'].includes(r.State.Status)) return false;
      if (exited.length > 0 && (r.State.Status !== 'exited' || !exited.includes(r.State.ExitCode))) return false;
      if (ancestors !== undefined && !ancestors.some((a) => matchAncestor(a, r))) return false;
      if (before.some((t) => Date.parse(r.Created) >= Date.parse(t))) return false;
      if (since.some((t) => Date.parse(r.Created) <= Date.parse(t))) return false;
      return true;
    });
    if (limit > 0) records = records.slice(0, limit);
    const now = Date.now();
    const withSize = bool(query.get('size'));
    return Promise.all(records.map(async (r) => ({ ...listView(r, now), ...(withSize && await manager.sizes(r, signal)) })));
  });

  // Docker's ContainersPrune: every stopped container (created, exited, dead) the filters keep,
  // removed as `rm` would (events, hooks, its rootfs); one that started or went meanwhile is
  // skipped, as docker skips what ContainerRm refuses. SpaceReclaimed adds their SizeRw.
  api.route('POST', '/containers/prune', async ({ query, signal }) => {
    const filters = parseFilters(query.get('filters'), PRUNE_FILTERS);
    const untilMs = untilFilterMs(filters);
    const deleted: string[] = [];
    let reclaimed = 0;
    for (const r of manager.records()) {
      if (NOT_PRUNED.has(r.State.Status)) continue;
      if (untilMs !== undefined && !(Date.parse(r.Created) < untilMs)) continue;
      const labels = r.Config.Labels ?? {};
      if (!matchPruneLabels(filters, labels)) continue;
      const size = await manager.sizes(r, signal).then((s) => s.SizeRw, () => 0);
      try {
        await manager.remove(r.Id, { force: false, volumes: false }, signal);
      } catch (err) {
        if (err instanceof IsulaError && (err.kind === 'conflict' || err.kind === 'notFound')) continue;
        throw err;
      }
      deleted.push(r.Id);
      reclaimed += size;
    }
    events.emit({ Type: 'container', Action: 'prune', Actor: { ID: '', Attributes: { reclaimed: String(reclaimed) } } });
    return { ContainersDeleted: deleted, SpaceReclaimed: reclaimed };
  });

  api.route('GET', '/containers/:id/json', async ({ params, query, signal }) => {
    const live = manager.find(param(params['id']));
    const view = inspectView(live.record, manager.containerDir(live.record.Id));
    return bool(query.get('size')) ? { ...view, ...(await manager.sizes(live.record, signal)) } : view;
  });

  // Docker's ContainerCommit: `container`, `repo`, `tag`, `comment`, `author`, `pause` (default
  // true), `changes` (repeated Dockerfile instructions); the body, when given, is a ContainerConfig
  // over the container's own.
  api.route('POST', '/commit', async ({ query, json, res, signal }) => {
    const container = query.get('container') ?? '';
    if (container === '') throw new IsulaError('API_BAD_REQUEST', 'commit needs a container (the container query parameter)');
    const repo = query.get('repo') ?? '';
    const tag = query.get('tag') ?? '';
    if (repo === '' && tag !== '') throw new IsulaError('API_BAD_REQUEST', `a tag (${tag}) needs a repository`);
    const body = await json();
    if (body !== undefined && body !== null && (typeof body !== 'object' || Array.isArray(body))) throw new IsulaError('API_BAD_REQUEST', 'the commit body must be a JSON object (a container config)');
    const pauseRaw = query.get('pause');
    const created = await manager.commit(container, {
      pause: pauseRaw === null || pauseRaw === '' || bool(pauseRaw),
      changes: query.getAll('changes'),
      ...(repo !== '' && { reference: tag === '' ? repo : `${repo}:${tag}` }),
      ...(query.get('comment') !== null && { comment: query.get('comment') ?? '' }),
      ...(query.get('author') !== null && { author: query.get('author') ?? '' }),
      ...(body !== undefined && body !== null && { config: body as Record<string, unknown> }),
    }, signal);
    sendJson(res, 201, created);
    return undefined;
  });

  api.route('GET', '/containers/:id/changes', async ({ params, signal }) => manager.changes(param(params['id']), signal));

  api.route('POST', '/containers/:id/start', async ({ params, res, signal }) => {
    const result = await manager.start(param(params['id']), signal);
    if (result === 'already') { res.writeHead(304); res.end(); }
    return undefined;
  });

  api.route('POST', '/containers/:id/stop', async ({ params, query, res, signal }) => {
    const result = await manager.stop(param(params['id']), optionalInt(query.get('t'), 't'), signal);
    if (result === 'already') { res.writeHead(304); res.end(); }
    return undefined;
  });

  api.route('POST', '/containers/:id/restart', async ({ params, query, signal }) => {
    await manager.restart(param(params['id']), optionalInt(query.get('t'), 't'), signal);
    return undefined;
  });

  api.route('POST', '/containers/:id/kill', async ({ params, query, signal }) => {
    await manager.kill(param(params['id']), query.get('signal') ?? undefined, signal);
    return undefined;
  });

  // As Docker's: the headers go out once the waiter is registered, so a client can start the
  // container knowing the exit will not be missed; the body follows at the exit.
  api.route('POST', '/containers/:id/wait', async ({ params, query, signal, res }) => {
    const result = await manager.wait(param(params['id']), query.get('condition') ?? '', signal, () => {
      res.writeHead(200, { 'Content-Type': 'application/json', 'Api-Version': API_VERSION, Server: 'isulad' });
      res.flushHeaders();
    });
    if (!res.headersSent) return result;
    res.end(JSON.stringify(result));
    return undefined;
  });

  api.route('DELETE', '/containers/:id', async ({ params, query, signal }) => {
    if (bool(query.get('link'))) throw new IsulaError('NOT_IMPLEMENTED', 'container links are not supported');
    await manager.remove(param(params['id']), { force: bool(query.get('force')), volumes: bool(query.get('v')) }, signal);
    return undefined;
  });

  api.route('POST', '/containers/:id/pause', async ({ params, signal }) => {
    await manager.pause(param(params['id']), signal);
    return undefined;
  });

  api.route('POST', '/containers/:id/unpause', async ({ params, signal }) => {
    await manager.unpause(param(params['id']), signal);
    return undefined;
  });

  api.route('POST', '/containers/:id/rename', async ({ params, query }) => {
    await manager.rename(param(params['id']), query.get('name') ?? '');
    return undefined;
  });

  api.route('POST', '/containers/:id/update', async ({ params, json, signal }) => {
    const body = await json();
    if (body === undefined || typeof body !== 'object' || body === null || Array.isArray(body)) throw new IsulaError('CONTAINER_CONFIG_INVALID', 'the update body must be a JSON object');
    const warnings = await manager.update(param(params['id']), body as HostConfig, signal);
    return { Warnings: warnings };
  });

  api.route('POST', '/containers/:id/attach', async (ctx) => {
    const { query, signal } = ctx;
    const id = param(ctx.params['id']);
    const live = manager.find(id);
    if (!bool(query.get('stream'))) throw new IsulaError('NOT_IMPLEMENTED', 'attach without stream=1 (logs only) is not supported yet');
    const st = live.record.State.Status;
    if (st === 'paused') throw new IsulaError('CONTAINER_STATE_CONFLICT', 'You cannot attach to a paused container, unpause it first');
    if (st === 'removing' || st === 'dead') throw new IsulaError('CONTAINER_STATE_CONFLICT', `container ${live.record.Id} is being removed`);
    const detachKeys = parseDetachKeys(query.get('detachKeys') || DEFAULT_DETACH_KEYS);
    const socket = ctx.hijack();
    await attachStream(manager, live.record, socket, {
      stdin: bool(query.get('stdin')),
      stdout: bool(query.get('stdout')),
      stderr: bool(query.get('stderr')),
      detachKeys,
    }, signal);
    return undefined;
  });
}

/** Docker's `name` filter: a regular expression matched against the name (with its '/'). */
function matchName(pattern: string, name: string): boolean {
  try {
    return new RegExp(pattern).test(`/${name}`);
  } catch {
    throw new IsulaError('API_BAD_REQUEST', `invalid filter 'name=${pattern}': not a regular expression`);
  }
}

function matchAncestor(a: string, r: ContainerRecord): boolean {
  if (a === r.Image || r.Image === `sha256:${a}` || (/^[a-f0-9]{4,64}$/.test(a) && r.Image.startsWith(`sha256:${a}`))) return true;
  const img = r.Config.Image ?? '';
  const withTag = (s: string) => (/:[^/]+$/.test(s) || s.includes('@') ? s : `${s}:latest`);
  return withTag(img) === withTag(a) || withTag(img).replace(/^docker\.io\/(library\/)?/, '') === withTag(a).replace(/^docker\.io\/(library\/)?/, '');
}

/** Streams a container's stdio over a hijacked connection until either side ends or the client detaches. */
async function attachStream(manager: ContainerManager, record: ContainerRecord, socket: net.Socket, want: { stdin: boolean; stdout: boolean; stderr: boolean; detachKeys: Buffer }, signal: AbortSignal): Promise<void> {
  let stream: StdioStream | undefined;
  let done!: () => void;
  const finished = new Promise<void>((resolve) => { done = resolve; });
  const io = new HijackedStdio(socket, {
    tty: record.Config.Tty === true,
    stdin: want.stdin,
    // As moby: detach keys are watched only with a TTY; piped input (maybe binary) goes through whole.
    detachKeys: record.Config.Tty === true ? want.detachKeys : undefined,
    onDetach: () => {
      // Only this client leaves: the container keeps running (its stdin stays open with --leave-stdin-open).
      stream?.close();
      manager.detachPending(record.Id, sink);
      manager.emitEvent(record, 'detach');
      io.end();
      done();
    },
  });
  const sink: AttachSink = {
    stdin: want.stdin,
    stdout: want.stdout,
    stderr: want.stderr,
    write: (s, chunk) => io.write(s, chunk),
    end() {
      io.end();
      done();
    },
    connected(s) {
      stream = s;
      io.connect(s);
    },
  };
  void io.closed.then(() => { stream?.close(); manager.detachPending(record.Id, sink); done(); });
  const onAbort = () => { io.destroy(); };
  signal.addEventListener('abort', onAbort, { once: true });
  try {
    await manager.attach(record.Id, sink, signal);
  } catch (err) {
    io.end(`Error: ${(err as Error).message}\n`);
    done();
  }
  await finished;
  signal.removeEventListener('abort', onAbort);
}
