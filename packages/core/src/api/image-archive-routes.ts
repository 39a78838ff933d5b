/**
 * Image archive routes (Docker Engine API v1.41): `GET /images/get` and
 * `GET /images/{name}/get` (save: a docker-archive), `POST /images/create`
 * with `fromSrc=-` (import: the body is a root filesystem tarball) or
 * `fromImage=` (pull, in registry-routes.ts).
 */
import type { ImageDriver, ImageRef } from '../drivers/image.js';
import { IsulaError } from '../errors.js';
import { API_VERSION, uploadBody, type ApiServer } from './server.js';
import { driverWith, type ImageSource } from './image-routes.js';
import { handlePull } from './registry-routes.js';

async function resolveAll(source: ImageSource, names: string[], signal: AbortSignal): Promise<{ driver: ImageDriver; refs: ImageRef[] }> {
  let driver: ImageDriver | undefined;
  const refs: ImageRef[] = [];
  for (const name of names) {
    let found: { d: ImageDriver; ref: ImageRef } | undefined;
    for (const d of source.drivers()) {
      const ref = await d.resolve(name, { signal });
      if (ref !== undefined) { found = { d, ref }; break; }
    }
    if (found === undefined) throw new IsulaError('IMAGE_NOT_FOUND', `No such image: ${name}`);
    if (driver !== undefined && driver !== found.d) throw new IsulaError('API_BAD_REQUEST', 'cannot save images of different formats into one archive');
    driver = found.d;
    refs.push(found.ref);
  }
  if (driver === undefined) throw new IsulaError('API_BAD_REQUEST', 'no image named: pass names=IMAGE');
  return { driver, refs };
}

export function registerImageArchiveRoutes(api: ApiServer, source: ImageSource): void {
  const save = async (names: string[], res: import('node:http').ServerResponse, signal: AbortSignal) => {
    const { driver, refs } = await resolveAll(source, names, signal);
    if (driver.save === undefined) throw new IsulaError('NOT_IMPLEMENTED', `the ${driver.format} image format cannot be saved`);
    res.writeHead(200, { 'Content-Type': 'application/x-tar', 'Api-Version': API_VERSION });
    await driver.save(refs, { signal, output: res });
    for (const ref of refs) source.events.emit({ Type: 'image', Action: 'save', Actor: { ID: ref.id, Attributes: { name: ref.reference } } });
    return undefined;
  };
  api.route('GET', '/images/get', async ({ query, res, signal }) => save(query.getAll('names'), res, signal));
  api.route('GET', '/images/:name/get', async ({ params, res, signal }) => save([params['name'] ?? ''], res, signal));

  api.route('POST', '/images/create', async ({ req, res, query, signal }) => {
    const fromSrc = query.get('fromSrc');
    if (query.get('fromImage')) return handlePull(source, { req, res, query, signal });
    if (fromSrc !== '-') throw new IsulaError('API_BAD_REQUEST', 'fromSrc must be "-" (the tarball in the request body); URLs are not fetched');
    const driver = driverWith(source, 'import');
    const repo = query.get('repo');
    const tag = query.get('tag');
    const reference = repo ? (tag ? `${repo}:${tag}` : repo) : undefined;
    const ref = await driver.import(uploadBody(req), { signal, ...(reference !== undefined && { reference }) });
    source.events.emit({ Type: 'image', Action: 'import', Actor: { ID: ref.id, Attributes: { name: ref.reference } } });
    res.writeHead(200, { 'Content-Type': 'application/json', 'Api-Version': API_VERSION });
    res.end(`${JSON.stringify({ status: ref.id })}\n`);
    return undefined;
  });
}
