/**
 * Volume routes (Docker Engine API v1.41 `/volumes`): list (`filters`:
 * `dangling`, `name`, `label`), create, inspect, remove (`force`), prune.
 * Volumes are core's (`src/container/volumes.ts`, the local driver).
 */
import type { ContainerManager } from '../container/manager.js';
import type { VolumeRecord } from '../container/volumes.js';
import { IsulaError } from '../errors.js';
import type { EventBus } from '../events.js';
import { filterBool, matchLabels, matchPruneLabels, parseFilters } from './filters.js';
import { sendJson, type ApiServer } from './server.js';

const LIST_FILTERS: ReadonlySet<string> = new Set(['dangling', 'name', 'label', 'driver']);
const PRUNE_FILTERS: ReadonlySet<string> = new Set(['label', 'label!']);

export function volumeView(manager: ContainerManager, v: VolumeRecord): Record<string, unknown> {
  return {
    Name: v.Name, Driver: v.Driver, Mountpoint: manager.volumes.dataPath(v.Name), CreatedAt: v.CreatedAt,
    Labels: v.Labels, Scope: 'local', Options: v.Options,
  };
}

export function registerVolumeRoutes(api: ApiServer, manager: ContainerManager, events: EventBus): void {
  api.route('GET', '/volumes', async ({ query }) => {
    const filters = parseFilters(query.get('filters'), LIST_FILTERS);
    const dangling = filters['dangling'] !== undefined ? filterBool(filters, 'dangling', false) : undefined;
    const out = manager.volumes.list().filter((v) => {
      if (dangling !== undefined && (manager.volumeUsers(v.Name).length === 0) !== dangling) return false;
      if (filters['name'] !== undefined && !filters['name'].some((n) => v.Name.includes(n))) return false;
      if (filters['driver'] !== undefined && !filters['driver'].includes(v.Driver)) return false;
      if (!matchLabels(filters['label'], v.Labels)) return false;
      return true;
    });
    return { Volumes: out.map((v) => volumeView(manager, v)), Warnings: [] };
  });

  api.route('POST', '/volumes/create', async ({ json, res }) => {
    const body = ((await json()) ?? {}) as Record<string, unknown>;
    if (typeof body !== 'object' || Array.isArray(body)) throw new IsulaError('API_BAD_REQUEST', 'expected a JSON object {Name, Driver, DriverOpts, Labels}');
    const driver = typeof body['Driver'] === 'string' && body['Driver'] !== '' ? body['Driver'] : 'local';
    if (driver !== 'local') throw new IsulaError('VOLUME_NAME_INVALID', `volume driver ${driver} is not supported (only local)`);
    const name = typeof body['Name'] === 'string' && body['Name'] !== '' ? body['Name'] : undefined;
    const v = await manager.volumes.create({
      ...(name !== undefined && { name }),
      labels: (body['Labels'] ?? {}) as Record<string, string>,
      options: (body['DriverOpts'] ?? {}) as Record<string, string>,
      anonymous: false,
    });
    events.emit({ Type: 'volume', Action: 'create', Actor: { ID: v.Name, Attributes: { driver: 'local' } } });
    sendJson(res, 201, volumeView(manager, v));
    return undefined;
  });

  api.route('GET', '/volumes/:name', async ({ params }) => volumeView(manager, manager.volumes.get(params['name'] ?? '')));

  api.route('DELETE', '/volumes/:name', async ({ params, query, res }) => {
    const name = params['name'] ?? '';
    const force = query.get('force') === '1' || query.get('force') === 'true';
    if (force && !manager.volumes.has(name)) { res.writeHead(204); res.end(); return undefined; }
    await manager.volumes.remove(name, manager.volumeUsers(name));
    events.emit({ Type: 'volume', Action: 'destroy', Actor: { ID: name, Attributes: { driver: 'local' } } });
    res.writeHead(204);
    res.end();
    return undefined;
  });

  api.route('POST', '/volumes/prune', async ({ query }) => {
    const filters = parseFilters(query.get('filters'), PRUNE_FILTERS);
    const deleted: string[] = [];
    let reclaimed = 0;
    for (const v of manager.volumes.list()) {
      if (manager.volumeUsers(v.Name).length > 0) continue;
      if (!matchPruneLabels(filters, v.Labels)) continue;
      const size = await manager.volumes.size(v.Name);
      await manager.volumes.remove(v.Name, []);
      events.emit({ Type: 'volume', Action: 'destroy', Actor: { ID: v.Name, Attributes: { driver: 'local' } } });
      deleted.push(v.Name);
      reclaimed += size;
    }
    return { VolumesDeleted: deleted, SpaceReclaimed: reclaimed };
  });
}
