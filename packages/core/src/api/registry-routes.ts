/**
 * Registry routes (Docker Engine API v1.41): pull (`POST /images/create?fromImage=`),
 * `POST /images/{name}/push`, `POST /auth`; and isula's `POST /auth/logout`
 * (Docker's CLI keeps credentials itself and has no such route; isulad keeps
 * them, as iSulad does).
 *
 * Pull and push answer with Docker's stream of JSON messages. As in dockerd,
 * the 200 is sent with the first message: a failure before any progress (an
 * unknown image, refused credentials) is a plain error status; a failure
 * after it is an `errorDetail` message that ends the stream.
 */
import type { ServerResponse } from 'node:http';
import type { RegistryAuth, TransferProgress } from '../drivers/image.js';
import { IsulaError, toIsulaError } from '../errors.js';
import { API_VERSION, type ApiServer } from './server.js';
import { driverWith, type ImageSource } from './image-routes.js';

/** Docker's `X-Registry-Auth`: base64url (or base64) JSON of an AuthConfig; `{}`/empty means none. */
export function decodeRegistryAuth(header: string | string[] | undefined): RegistryAuth | undefined {
  const value = Array.isArray(header) ? header[0] : header;
  if (value === undefined || value.trim() === '') return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(value.trim(), 'base64url').toString('utf8'));
  } catch {
    throw new IsulaError('API_BAD_REQUEST', 'X-Registry-Auth is not base64-encoded JSON');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new IsulaError('API_BAD_REQUEST', 'X-Registry-Auth must encode a JSON object');
  const o = parsed as Record<string, unknown>;
  const pick = (k: string): string | undefined => (typeof o[k] === 'string' && o[k] !== '' ? (o[k] as string) : undefined);
  const auth: RegistryAuth = {};
  const username = pick('username');
  const password = pick('password');
  const identityToken = pick('identitytoken');
  const registryToken = pick('registrytoken');
  if (username !== undefined) auth.username = username;
  if (password !== undefined) auth.password = password;
  if (identityToken !== undefined) auth.identityToken = identityToken;
  if (registryToken !== undefined) auth.registryToken = registryToken;
  return Object.keys(auth).length === 0 ? undefined : auth;
}

const UNITS = ['B', 'kB', 'MB', 'GB', 'TB'];
/** Docker's `units.HumanSize` (decimal, 3 significant digits). */
export function humanSize(bytes: number): string {
  let v = bytes;
  let i = 0;
  while (v >= 1000 && i < UNITS.length - 1) { v /= 1000; i += 1; }
  return `${Number(v.toPrecision(3))}${UNITS[i]}`;
}

/** Docker's JSONMessage for one progress report (`progress` is the plain-text bar). */
export function jsonMessage(p: TransferProgress): Record<string, unknown> {
  const m: Record<string, unknown> = { status: p.status };
  if (p.current !== undefined || p.total !== undefined) {
    const current = p.current ?? 0;
    m['progressDetail'] = { current, ...(p.total !== undefined && { total: p.total }) };
    if (p.total !== undefined && p.total > 0) {
      const width = 50;
      const filled = Math.min(width, Math.floor((current / p.total) * width));
      const bar = `${'='.repeat(Math.max(0, filled - 1))}${filled > 0 ? '>' : ''}${' '.repeat(width - filled)}`;
      m['progress'] = `[${bar}] ${humanSize(current).padStart(8)}/${humanSize(p.total)}`;
    }
  } else if (p.id !== undefined) {
    m['progressDetail'] = {};
  }
  if (p.id !== undefined) m['id'] = p.id;
  if (p.aux !== undefined) m['aux'] = p.aux;
  return m;
}

/** A lazily started JSON-lines response: the 200 goes out with the first message. */
class ProgressStream {
  readonly #res: ServerResponse;
  #started = false;
  constructor(res: ServerResponse) {
    this.#res = res;
  }
  get started(): boolean {
    return this.#started;
  }
  #start(): void {
    if (this.#started) return;
    this.#started = true;
    this.#res.writeHead(200, { 'Content-Type': 'application/json', 'Api-Version': API_VERSION });
  }
  send(p: TransferProgress): void {
    this.#start();
    if (!this.#res.writableEnded) this.#res.write(`${JSON.stringify(jsonMessage(p))}\n`);
  }
  fail(err: unknown): void {
    const e = toIsulaError(err);
    if (!this.#res.writableEnded) this.#res.end(`${JSON.stringify({ errorDetail: { message: e.message }, error: e.message, code: e.code })}\n`);
  }
  end(): void {
    this.#start();
    if (!this.#res.writableEnded) this.#res.end();
  }
}

/** `fromImage` + `tag` as docker's CLI sends them (`tag` may be a digest). */
export function pullReference(fromImage: string, tag: string | null): string {
  if (tag === null || tag === '') return fromImage;
  return tag.startsWith('sha256:') ? `${fromImage}@${tag}` : `${fromImage}:${tag}`;
}

/** Pull: the `fromImage` half of `POST /images/create`. */
export async function handlePull(source: ImageSource, ctx: { req: import('node:http').IncomingMessage; res: ServerResponse; query: URLSearchParams; signal: AbortSignal }): Promise<undefined> {
  const { req, res, query, signal } = ctx;
  const fromImage = query.get('fromImage') ?? '';
  const reference = pullReference(fromImage, query.get('tag'));
  const auth = decodeRegistryAuth(req.headers['x-registry-auth']);
  const platform = query.get('platform') ?? '';
  const driver = driverWith(source, 'pull');
  const out = new ProgressStream(res);
  try {
    const result = await driver.pull(reference, {
      signal,
      onProgress: (p) => out.send(p),
      ...(auth !== undefined && { auth }),
      ...(platform !== '' && { platform }),
    });
    source.events.emit({ Type: 'image', Action: 'pull', Actor: { ID: result.reference, Attributes: { name: result.reference } } });
    out.send({ status: `Digest: ${result.digest}` });
    out.send({ status: `Status: ${result.upToDate ? 'Image is up to date for' : 'Downloaded newer image for'} ${result.reference}` });
    out.end();
  } catch (err) {
    if (!out.started) throw err;
    out.fail(err);
  }
  return undefined;
}

export function registerRegistryRoutes(api: ApiServer, source: ImageSource): void {
  api.route('POST', '/images/:name/push', async ({ req, res, params, query, signal }) => {
    const name = params['name'] ?? '';
    const tag = query.get('tag') ?? '';
    const reference = tag === '' ? name : `${name}:${tag}`;
    const auth = decodeRegistryAuth(req.headers['x-registry-auth']);
    const driver = driverWith(source, 'push');
    const out = new ProgressStream(res);
    try {
      const r = await driver.push(reference, { signal, onProgress: (p) => out.send(p), ...(auth !== undefined && { auth }) });
      source.events.emit({ Type: 'image', Action: 'push', Actor: { ID: reference, Attributes: { name: reference } } });
      out.send({ status: `${r.tag}: digest: ${r.digest} size: ${r.size}` });
      out.send({ status: '', aux: { Tag: r.tag, Digest: r.digest, Size: r.size } });
      out.end();
    } catch (err) {
      if (!out.started) throw err;
      out.fail(err);
    }
    return undefined;
  });

  api.route('POST', '/auth', async ({ json, signal }) => {
    const body = (await json()) as Record<string, unknown> | null;
    if (typeof body !== 'object' || body === null) throw new IsulaError('API_BAD_REQUEST', 'expected a JSON object {username, password, serveraddress}');
    const username = body['username'];
    const password = body['password'];
    const server = typeof body['serveraddress'] === 'string' && body['serveraddress'] !== '' ? body['serveraddress'] : 'docker.io';
    if (typeof username !== 'string' || username === '') throw new IsulaError('API_BAD_REQUEST', 'username is required');
    if (typeof password !== 'string' || password === '') throw new IsulaError('API_BAD_REQUEST', 'password is required');
    const r = await driverWith(source, 'login').login(server, { signal, username, password });
    return { Status: r.status, IdentityToken: '' };
  });

  api.route('POST', '/auth/logout', async ({ json, signal }) => {
    const body = (await json()) as Record<string, unknown> | null;
    const server = typeof body === 'object' && body !== null && typeof body['serveraddress'] === 'string' && body['serveraddress'] !== '' ? body['serveraddress'] : 'docker.io';
    const had = await driverWith(source, 'logout').logout(server, { signal });
    if (!had) throw new IsulaError('REGISTRY_CREDENTIALS_NOT_FOUND', `Not logged in to ${server}`);
    return { Status: `Removing login credentials for ${server}` };
  });
}
