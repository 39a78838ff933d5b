/**
 * Image routes of the engine API (Docker Engine API v1.41 shapes), served
 * through the registered image drivers.
 */
import type { ImageDriver, ImageRef, ImageSummary } from '../drivers/image.js';
import { IsulaError } from '../errors.js';
import { untilFilterMs, type EventBus } from '../events.js';
import { filterBool, globToRegExp, matchLabels, matchPruneLabels, parseFilters } from './filters.js';
import { API_VERSION, uploadBody, type ApiServer } from './server.js';

export interface ImageSource {
  drivers(): readonly ImageDriver[];
  events: EventBus;
}

const NONE = '<none>:<none>';
const NONE_DIGEST = '<none>@<none>';
/** Docker Engine API v1.41 ImageList filters. */
const LIST_FILTERS: ReadonlySet<string> = new Set(['before', 'dangling', 'label', 'reference', 'since']);
/** Docker Engine API v1.41 ImagePrune filters. */
const PRUNE_FILTERS: ReadonlySet<string> = new Set(['dangling', 'label', 'label!', 'until']);

export interface Listed { driver: ImageDriver; img: ImageSummary }

/** Every image of every driver, newest first (docker's order; stable for equal times). */
export async function listAll(source: ImageSource, signal: AbortSignal): Promise<Listed[]> {
  const listed: Listed[] = [];
  for (const driver of source.drivers()) for (const img of await driver.list({ signal })) listed.push({ driver, img });
  return listed.sort((a, b) => b.img.created.getTime() - a.img.created.getTime());
}

/** `docker.io/library/busybox@sha256:…` → `busybox@sha256:…`, as docker's API shows digests. */
export function familiarDigest(ref: string): string {
  if (ref.startsWith('docker.io/library/')) return ref.slice('docker.io/library/'.length);
  if (ref.startsWith('docker.io/')) return ref.slice('docker.io/'.length);
  return ref;
}

/** Docker's `reference.FamiliarMatch`: the whole familiar reference, or failing that its name. */
function matchesReference(pattern: RegExp, ref: string, nameEnd: number): boolean {
  return pattern.test(ref) || (nameEnd > 0 && pattern.test(ref.slice(0, nameEnd)));
}

/** Created time (ms) of the oldest (`pick` = Math.min) or newest named image; 404 when one is missing. */
async function boundTime(source: ImageSource, listed: readonly Listed[], names: string[] | undefined, pick: (...t: number[]) => number, signal: AbortSignal): Promise<number | undefined> {
  if (names === undefined || names.length === 0) return undefined;
  const times: number[] = [];
  for (const name of names) {
    const { ref } = await resolve(source, name, signal);
    const hit = listed.find((l) => l.img.id === ref.id);
    if (hit === undefined) throw new IsulaError('IMAGE_NOT_FOUND', `No such image: ${name}`);
    times.push(hit.img.created.getTime());
  }
  return pick(...times);
}

async function imageLabels(driver: ImageDriver, img: ImageSummary, signal: AbortSignal): Promise<Record<string, string>> {
  const info = await driver.inspect({ reference: img.id, format: driver.format, id: img.id }, { signal });
  return info.config.labels ?? {};
}

async function resolve(source: ImageSource, name: string, signal: AbortSignal): Promise<{ driver: ImageDriver; ref: ImageRef }> {
  for (const driver of source.drivers()) {
    const ref = await driver.resolve(name, { signal });
    if (ref !== undefined) return { driver, ref };
  }
  throw new IsulaError('IMAGE_NOT_FOUND', `No such image: ${name}`);
}

/** The first image driver with the optional `method` (NOT_IMPLEMENTED: no image plugin that can `what` is loaded). */
export function driverWith<K extends keyof ImageDriver>(source: ImageSource, method: K, what: string = String(method)): ImageDriver & Required<Pick<ImageDriver, K>> {
  const d = source.drivers().find((x) => x[method] !== undefined);
  if (d === undefined) throw new IsulaError('NOT_IMPLEMENTED', `no image plugin that can ${what} is loaded`);
  return d as ImageDriver & Required<Pick<ImageDriver, K>>;
}

export function registerImageRoutes(api: ApiServer, source: ImageSource): void {
  api.route('GET', '/images/json', async ({ query, signal }) => {
    const all = query.get('all') === '1' || query.get('all') === 'true';
    void all; // every stored image is a top-level image: there are no intermediate build images
    // `digests` needs nothing: RepoDigests is always filled (docker's API does the same since 1.24).
    const filters = parseFilters(query.get('filters'), LIST_FILTERS);
    // Docker's ImageList: `dangling` true keeps untagged images only, false drops them.
    const dangling = filters['dangling'] === undefined ? undefined : filterBool(filters, 'dangling', false);
    const patterns = filters['reference']?.map(globToRegExp);
    const listed = await listAll(source, signal);
    // Several `before` values: the oldest image bounds; several `since`: the newest (docker's WalkValues).
    const before = await boundTime(source, listed, filters['before'], Math.min, signal);
    const since = await boundTime(source, listed, filters['since'], Math.max, signal);
    const out: Record<string, unknown>[] = [];
    for (const { driver, img } of listed) {
      const created = img.created.getTime();
      if (before !== undefined && !(created < before)) continue;
      if (since !== undefined && !(created > since)) continue;
      const isDangling = img.repoTags.length === 0;
      if (dangling === true && !isDangling) continue;
      if (dangling === false && isDangling) continue;
      let repoTags = img.repoTags;
      let repoDigests = img.repoDigests.map(familiarDigest);
      if (patterns !== undefined) {
        // Like docker, only the references that match are shown, and an image with none is left out.
        repoTags = repoTags.filter((t) => patterns.some((p) => matchesReference(p, t, t.lastIndexOf(':') > t.lastIndexOf('/') ? t.lastIndexOf(':') : -1)));
        repoDigests = repoDigests.filter((d) => patterns.some((p) => matchesReference(p, d, d.indexOf('@'))));
        if (repoTags.length === 0 && repoDigests.length === 0) continue;
      }
      let labels: Record<string, string> | undefined;
      if (filters['label'] !== undefined) {
        labels = await imageLabels(driver, img, signal);
        if (!matchLabels(filters['label'], labels)) continue;
      }
      const none = repoTags.length === 0 && repoDigests.length === 0;
      out.push({
        Id: img.id,
        ParentId: '',
        // docker: `<none>` placeholders only for an image with neither tags nor digests.
        RepoTags: none ? [NONE] : repoTags,
        RepoDigests: none ? [NONE_DIGEST] : repoDigests,
        Created: Math.floor(created / 1000),
        Size: img.sizeBytes,
        VirtualSize: img.sizeBytes,
        SharedSize: -1,
        // Labels need each image's config: read only when a label filter asks for them.
        Labels: labels ?? {},
        Containers: -1,
      });
    }
    return out;
  });

  api.route('POST', '/images/prune', async ({ query, signal }) => {
    const filters = parseFilters(query.get('filters'), PRUNE_FILTERS);
    // Docker's ImagesPrune: dangling images only unless `dangling=false`, which prunes every unused image.
    const danglingOnly = filterBool(filters, 'dangling', true);
    const untilMs = untilFilterMs(filters);
    const deletedItems: ({ Untagged: string } | { Deleted: string })[] = [];
    let reclaimed = 0;
    for (const { driver, img } of await listAll(source, signal)) {
      if (driver.remove === undefined) continue;
      if (danglingOnly && img.repoTags.length > 0) continue;
      if (untilMs !== undefined && !(img.created.getTime() < untilMs)) continue;
      if (filters['label'] !== undefined || filters['label!'] !== undefined) {
        const labels = await imageLabels(driver, img, signal);
        if (!matchPruneLabels(filters, labels)) continue;
      }
      // Docker removes each tag of a tagged image (the last one takes the image), and an
      // untagged image by id. "Unused" is left to the driver: it refuses with IMAGE_IN_USE
      // (a conflict) an image a container uses, and prune skips it as docker does. There
      // are no containers yet; when there are, images containers use must be left out
      // before anything is untagged, as docker does, or their other tags would go first.
      const refs = img.repoTags.length > 0 ? img.repoTags : [img.id];
      try {
        for (const ref of refs) {
          const result = await driver.remove(ref, { signal, force: false });
          for (const t of result.untagged) {
            deletedItems.push({ Untagged: t });
            source.events.emit({ Type: 'image', Action: 'untag', Actor: { ID: img.id, Attributes: { name: t } } });
          }
          for (const d of result.deleted) deletedItems.push({ Deleted: d });
          if (result.deleted.includes(img.id)) {
            // ImageSummary has no per-layer sizes. Like docker, count only what left the disk: the
            // image's size when it freed layers (listed after its id, as docker lists them), none
            // when another image still holds all of them. An image that freed only some of its
            // layers is over-counted by the ones kept.
            if (result.deleted.some((x) => x !== img.id)) reclaimed += img.sizeBytes;
            source.events.emit({ Type: 'image', Action: 'delete', Actor: { ID: img.id, Attributes: { name: ref } } });
          }
        }
      } catch (err) {
        // In use, or removed meanwhile by someone else: not ours to prune.
        if (err instanceof IsulaError && (err.kind === 'conflict' || err.kind === 'notFound')) continue;
        throw err;
      }
    }
    source.events.emit({ Type: 'image', Action: 'prune', Actor: { ID: '', Attributes: { reclaimed: String(reclaimed) } } });
    return { ImagesDeleted: deletedItems, SpaceReclaimed: reclaimed };
  });

  api.route('GET', '/images/:name/json', async ({ params, signal }) => {
    const { driver, ref } = await resolve(source, params['name'] ?? '', signal);
    return (await driver.inspect(ref, { signal })).docker;
  });

  api.route('GET', '/images/:name/history', async ({ params, signal }) => {
    const { driver, ref } = await resolve(source, params['name'] ?? '', signal);
    if (driver.history === undefined) throw new IsulaError('NOT_IMPLEMENTED', `image history is not supported by the ${driver.format} image driver`);
    return driver.history(ref, { signal });
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
    const refs = await driverWith(source, 'load', 'load archives').load(uploadBody(req), { signal, ...(tag !== undefined && { tag }) });
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
