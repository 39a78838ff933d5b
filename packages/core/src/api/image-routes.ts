/**
 * Image routes of the engine API (Docker Engine API v1.41 shapes), served
 * through the registered image drivers.
 */
import type { ImageDriver, ImageRef } from '../drivers/image.js';
import { IsulaError } from '../errors.js';
import type { EventBus } from '../events.js';
import { API_VERSION, type ApiServer } from './server.js';

export interface ImageSource {
  drivers(): readonly ImageDriver[];
  events: EventBus;
}

const NONE = '<none>:<none>';

async function resolve(source: ImageSource, name: string, signal: AbortSignal): Promise<{ driver: ImageDriver; ref: ImageRef }> {
  for (const driver of source.drivers()) {
    const ref = await driver.resolve(name, { signal });
    if (ref !== undefined) return { driver, ref };
  }
  throw new IsulaError('IMAGE_NOT_FOUND', `No such image: ${name}`);
}

function loader(source: ImageSource): ImageDriver & Required<Pick<ImageDriver, 'load'>> {
  const d = source.drivers().find((x) => x.load !== undefined);
  if (d === undefined) throw new IsulaError('NOT_IMPLEMENTED', 'no image plugin that can load archives is loaded');
  return d as ImageDriver & Required<Pick<ImageDriver, 'load'>>;
}

export function registerImageRoutes(api: ApiServer, source: ImageSource): void {
  api.route('GET', '/images/json', async ({ query, signal }) => {
    const all = query.get('all') === '1' || query.get('all') === 'true';
    void all; // every stored image is a top-level image: there are no intermediate build images
    const digests = query.get('digests') === '1' || query.get('digests') === 'true';
    const out: Record<string, unknown>[] = [];
    for (const driver of source.drivers()) {
      for (const img of await driver.list({ signal })) {
        out.push({
          Id: img.id,
          ParentId: '',
          RepoTags: img.repoTags.length > 0 ? img.repoTags : [NONE],
          RepoDigests: digests || img.repoDigests.length > 0 ? img.repoDigests : [],
          Created: Math.floor(img.created.getTime() / 1000),
          Size: img.sizeBytes,
          VirtualSize: img.sizeBytes,
          SharedSize: -1,
          Labels: {},
          Containers: -1,
        });
      }
    }
    return out;
  });

  api.route('GET', '/images/:name/json', async ({ params, signal }) => {
    const { driver, ref } = await resolve(source, params['name'] ?? '', signal);
    return (await driver.inspect(ref, { signal })).docker;
  });

  api.route('POST', '/images/:name/tag', async ({ params, query, signal, res }) => {
    const repo = query.get('repo');
    if (!repo) throw new IsulaError('API_BAD_REQUEST', 'repo is required');
    const { driver, ref } = await resolve(source, params['name'] ?? '', signal);
    if (driver.tag === undefined) throw new IsulaError('NOT_IMPLEMENTED', `the ${driver.format} image format does not support tags`);
    const tag = query.get('tag');
    const newReference = tag ? `${repo}:${tag}` : repo;
    await driver.tag(ref, { signal, newReference });
    source.events.emit({ Type: 'image', Action: 'tag', Actor: { ID: ref.id, Attributes: { name: newReference } } });
    res.writeHead(201, { 'Api-Version': API_VERSION });
    res.end();
    return undefined;
  });

  api.route('DELETE', '/images/:name', async ({ params, query, signal }) => {
    const name = params['name'] ?? '';
    const { driver, ref } = await resolve(source, name, signal);
    if (driver.remove === undefined) throw new IsulaError('NOT_IMPLEMENTED', `the ${driver.format} image format does not support removal`);
    const force = query.get('force') === '1' || query.get('force') === 'true';
    const result = await driver.remove(name, { signal, force });
    for (const t of result.untagged) source.events.emit({ Type: 'image', Action: 'untag', Actor: { ID: ref.id, Attributes: { name: t } } });
    if (result.deleted.includes(ref.id)) source.events.emit({ Type: 'image', Action: 'delete', Actor: { ID: ref.id, Attributes: { name } } });
    return [...result.untagged.map((u) => ({ Untagged: u })), ...result.deleted.map((d) => ({ Deleted: d }))];
  });

  api.route('POST', '/images/load', async ({ req, res, query, signal }) => {
    const type = req.headers['content-type'];
    if (type !== undefined && !/^application\/(x-tar|octet-stream|gzip|x-gzip)\b/i.test(type)) {
      throw new IsulaError('API_UNSUPPORTED_MEDIA_TYPE', `Content-Type ${type} is not an image archive (want application/x-tar)`);
    }
    const tag = query.get('tag') ?? undefined;
    const refs = await loader(source).load(req, { signal, ...(tag !== undefined && { tag }) });
    res.writeHead(200, { 'Content-Type': 'application/json', 'Api-Version': API_VERSION });
    for (const ref of refs) {
      source.events.emit({ Type: 'image', Action: 'load', Actor: { ID: ref.id, Attributes: { name: ref.reference } } });
      const line = ref.reference === '' ? `Loaded image ID: ${ref.id}\n` : `Loaded image: ${ref.reference}\n`;
      res.write(`${JSON.stringify({ stream: line })}\n`);
    }
    res.end();
    return undefined;
  });
}
