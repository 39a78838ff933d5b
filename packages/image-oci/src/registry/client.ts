/**
 * The registry client: requests to one repository on one endpoint, with
 * authentication (anonymous, HTTP basic, bearer tokens from the
 * `WWW-Authenticate` challenge, cached until they expire) and retries with
 * back-off on connection errors and 5xx for requests that can be repeated.
 */
import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import { IsulaError, type RegistryAuth } from '@isula/core';
import { normalizeServer, type Endpoint } from './endpoints.js';
import { drain, errorMessage, header, readLimited, type HttpReply, type HttpRequest, type Transport } from './http.js';

/** Attempts for a request that can be repeated (GET/HEAD, or a body made anew). */
export const ATTEMPTS = 3;
const BACKOFF_MS = [250, 1000];

export interface Challenge {
  scheme: string;
  params: Record<string, string>;
}

/** `Bearer realm="…",service="…",scope="…"` → scheme and parameters (RFC 7235). */
export function parseChallenge(value: string): Challenge | undefined {
  const m = /^\s*([A-Za-z][\w-]*)\s*(.*)$/s.exec(value);
  if (m === null) return undefined;
  const params: Record<string, string> = {};
  const re = /([\w-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))\s*,?\s*/gy;
  const rest = m[2] ?? '';
  re.lastIndex = 0;
  for (let p = re.exec(rest); p !== null && p[0] !== ''; p = re.exec(rest)) {
    params[(p[1] ?? '').toLowerCase()] = p[2] !== undefined ? p[2].replace(/\\(.)/g, '$1') : (p[3] ?? '');
  }
  return { scheme: (m[1] ?? '').toLowerCase(), params };
}

interface Token {
  value: string;
  expiresAt: number;
}

/** What a credential lookup returns; `undefined` means anonymous. */
export type CredentialLookup = (host: string) => Promise<RegistryAuth | undefined>;

/** Per-host authentication state: the scheme the host asked for, and bearer tokens per scope. */
export class Authenticator {
  readonly #transport: Transport;
  readonly #lookup: CredentialLookup;
  readonly #challenges = new Map<string, Challenge>();
  readonly #tokens = new Map<string, Token>();

  constructor(transport: Transport, lookup: CredentialLookup) {
    this.#transport = transport;
    this.#lookup = lookup;
  }

  async #creds(ep: Endpoint, override: RegistryAuth | undefined): Promise<RegistryAuth | undefined> {
    // An override that carries nothing usable (docker's CLI sends a bare user name at times) falls back.
    const usable = override !== undefined && ((override.username !== undefined && override.password !== undefined) || override.identityToken !== undefined || override.registryToken !== undefined);
    return usable ? override : this.#lookup(normalizeServer(ep.host));
  }

  /** The Authorization header for a request, when the host asked for one before. */
  async headerFor(ep: Endpoint, scopes: readonly string[], override: RegistryAuth | undefined): Promise<string | undefined> {
    const creds = await this.#creds(ep, override);
    if (creds?.registryToken !== undefined) return `Bearer ${creds.registryToken}`;
    const ch = this.#challenges.get(ep.base);
    if (ch === undefined) return undefined;
    if (ch.scheme === 'basic') return basic(creds);
    const tok = this.#tokens.get(tokenKey(ep, ch, scopes, creds));
    return tok !== undefined && tok.expiresAt > Date.now() ? `Bearer ${tok.value}` : undefined;
  }

  /**
   * Handles a 401: remembers the challenge and, for bearer, fetches a token.
   * Returns false when retrying cannot help (no credentials for basic).
   */
  async answer(ep: Endpoint, reply: HttpReply, scopes: readonly string[], override: RegistryAuth | undefined, signal: AbortSignal | undefined): Promise<boolean> {
    const value = header(reply, 'www-authenticate');
    const ch = value === undefined ? undefined : parseChallenge(value);
    if (ch === undefined || (ch.scheme !== 'basic' && ch.scheme !== 'bearer')) return false;
    this.#challenges.set(ep.base, ch);
    const creds = await this.#creds(ep, override);
    if (ch.scheme === 'basic') return basic(creds) !== undefined;
    await this.token(ep, ch, scopes, creds, signal);
    return true;
  }

  /**
   * A bearer token from the challenge's realm for `scopes` with `creds`,
   * cached until it expires. `refused`, when given, words every non-200
   * reply as REGISTRY_UNAUTHORIZED (login: any refusal is a failed login).
   */
  async token(ep: Endpoint, ch: Challenge, scopes: readonly string[], creds: RegistryAuth | undefined, signal: AbortSignal | undefined, refused?: (message: string) => string): Promise<string> {
    const realm = ch.params['realm'];
    if (realm === undefined || !/^https?:\/\//.test(realm)) throw new IsulaError('REGISTRY_REPLY_INVALID', `${ep.host}: bearer challenge without a usable realm`);
    const url = new URL(realm);
    const service = ch.params['service'];
    let reply;
    if (creds?.identityToken !== undefined) {
      // Docker's identity token is an OAuth2 refresh token: POST it to the realm (token spec, "oauth").
      const form = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: creds.identityToken, client_id: 'isula' });
      if (service !== undefined) form.set('service', service);
      if (scopes.length > 0) form.set('scope', scopes.join(' '));
      const body = Buffer.from(form.toString());
      reply = await this.#transport.send(tokenEndpoint(url, ep), { method: 'POST', url: url.toString(), headers: { 'content-type': 'application/x-www-form-urlencoded', 'content-length': String(body.length) }, body }, signal);
    } else {
      if (service !== undefined) url.searchParams.set('service', service);
      for (const sc of scopes) url.searchParams.append('scope', sc);
      const auth = basic(creds);
      reply = await this.#transport.send(tokenEndpoint(url, ep), { method: 'GET', url: url.toString(), headers: auth !== undefined ? { authorization: auth } : {} }, signal);
    }
    if (reply.status !== 200 && refused !== undefined) {
      const { message } = await errorMessage(reply);
      throw new IsulaError('REGISTRY_UNAUTHORIZED', refused(message));
    }
    if (reply.status === 401 || reply.status === 403) {
      const { message } = await errorMessage(reply);
      throw new IsulaError('REGISTRY_UNAUTHORIZED', `${ep.host}: ${creds === undefined ? 'authentication required' : 'login failed'}: ${message}`);
    }
    if (reply.status !== 200) {
      const { message } = await errorMessage(reply);
      throw new IsulaError('REGISTRY_UNAVAILABLE', `${ep.host}: the token server ${url.host} answered ${reply.status}: ${message}`);
    }
    let doc: { token?: string; access_token?: string; expires_in?: number };
    try {
      doc = JSON.parse((await readLimited(reply, 1024 * 1024, 'token reply')).toString('utf8')) as typeof doc;
    } catch (err) {
      if (err instanceof IsulaError) throw err;
      throw new IsulaError('REGISTRY_REPLY_INVALID', `${ep.host}: the token server's reply is not JSON`, { cause: err });
    }
    const value = doc.token ?? doc.access_token;
    if (typeof value !== 'string' || value === '') throw new IsulaError('REGISTRY_REPLY_INVALID', `${ep.host}: the token server's reply has no token`);
    // The spec's minimum lifetime is 60 s. Counted from our clock (issued_at is the server's,
    // and a skewed clock must not make a fresh token look stale); renewed a little early.
    const lifeS = typeof doc.expires_in === 'number' && doc.expires_in > 60 ? doc.expires_in : 60;
    this.#tokens.set(tokenKey(ep, ch, scopes, creds), { value, expiresAt: Date.now() + lifeS * 1000 - Math.min(10_000, lifeS * 100) });
    return value;
  }

  /** Forgets tokens and challenges (after logout). */
  forget(): void {
    this.#challenges.clear();
    this.#tokens.clear();
  }
}

export function basic(creds: RegistryAuth | undefined): string | undefined {
  if (creds?.username === undefined || creds.password === undefined) return undefined;
  return `Basic ${Buffer.from(`${creds.username}:${creds.password}`).toString('base64')}`;
}

/** Tokens are cached per endpoint, realm, service, scopes and whose credentials got them. */
function tokenKey(ep: Endpoint, ch: Challenge, scopes: readonly string[], creds: RegistryAuth | undefined): string {
  const who = creds === undefined ? 'anonymous' : createHash('sha256').update(JSON.stringify([creds.username ?? '', creds.password ?? '', creds.identityToken ?? ''])).digest('hex');
  return `${ep.base}|${ch.params['realm'] ?? ''}|${ch.params['service'] ?? ''}|${[...scopes].sort().join(' ')}|${who}`;
}

/**
 * The token server over the registry's TLS settings (its certs.d CAs and
 * verification), as Docker does: realms often live on another host of the
 * same organisation, signed by the same private CA.
 */
export function tokenEndpoint(url: URL, ep: Endpoint): Endpoint {
  return { base: url.origin, host: url.host, mirror: false, tls: url.protocol === 'https:' ? (ep.tls ?? { verify: true }) : undefined };
}

export interface RepoRequest extends Omit<HttpRequest, 'url' | 'body'> {
  /** Path after `/v2/<repo>/`, or an absolute URL (an upload location). */
  path: string;
  /** A body made anew for each attempt (streams cannot be replayed). */
  body?: () => Buffer | Readable;
  /** Statuses returned to the caller as they are; others become errors. */
  ok: readonly number[];
  /** False for a request that must not be repeated as is (a blob upload's final PUT). */
  retry?: boolean;
  /** Longer than the stall timeout for replies that take a while (a registry committing a big blob). */
  headersTimeoutMs?: number;
}

/** A repository on one endpoint: `/v2/<repo>/…` with the scopes it needs. */
export class RepoSession {
  readonly ep: Endpoint;
  readonly repo: string;
  readonly #transport: Transport;
  readonly #auth: Authenticator;
  readonly #scopes: string[];
  readonly #override: RegistryAuth | undefined;
  readonly #log: Logger;

  constructor(opts: { ep: Endpoint; repo: string; transport: Transport; auth: Authenticator; actions: string; extraScopes?: string[]; override: RegistryAuth | undefined; log: Logger }) {
    this.ep = opts.ep;
    this.repo = opts.repo;
    this.#transport = opts.transport;
    this.#auth = opts.auth;
    this.#scopes = [`repository:${opts.repo}:${opts.actions}`, ...(opts.extraScopes ?? [])];
    this.#override = opts.override;
    this.#log = opts.log;
  }

  url(path: string): string {
    return /^https?:\/\//.test(path) ? path : `${this.ep.base}/v2/${this.repo}/${path}`;
  }

  /**
   * Sends with auth and retries; returns a reply whose status is in `ok`.
   * Other statuses throw: 401/403 REGISTRY_UNAUTHORIZED, 404 IMAGE_NOT_FOUND,
   * 5xx (after the retries) REGISTRY_UNAVAILABLE.
   */
  async request(req: RepoRequest, signal: AbortSignal | undefined, what: string): Promise<HttpReply> {
    let answered = false;
    const attempts = req.retry === false ? 1 : ATTEMPTS;
    const origin = new URL(this.ep.base).origin;
    for (let attempt = 1; ; attempt += 1) {
      if (signal?.aborted === true) throw canceled(what);
      const url = this.url(req.path);
      // Credentials go only to the registry's own origin (an upload Location may point elsewhere).
      const sameOrigin = new URL(url).origin === origin;
      const authz = sameOrigin ? await this.#auth.headerFor(this.ep, this.#scopes, this.#override) : undefined;
      const headers = { ...(req.headers ?? {}), ...(authz !== undefined && { authorization: authz }) };
      let reply: HttpReply;
      try {
        reply = await this.#transport.send(this.ep, {
          method: req.method, url, headers, ...(req.body !== undefined && { body: req.body() }), ...(req.headersTimeoutMs !== undefined && { headersTimeoutMs: req.headersTimeoutMs }),
        }, signal);
      } catch (err) {
        // TLS failures never pass on a retry; a refused connection is retried at the registry
        // itself but not at a mirror, which the next endpoint stands in for at once.
        const permanent = err instanceof IsulaError && err.details?.['permanent'] === true && (err.details['errno'] !== 'ECONNREFUSED' || this.ep.mirror);
        const retry = attempt < attempts && !permanent && err instanceof IsulaError && (err.code === 'REGISTRY_UNAVAILABLE' || err.code === 'REGISTRY_TIMEOUT');
        if (!retry) throw err;
        this.#log.debug({ err, what, attempt }, 'registry request failed; retrying');
        await pause(BACKOFF_MS[attempt - 1] ?? 1000, signal, what);
        continue;
      }
      if (req.ok.includes(reply.status)) return reply;
      if (reply.status === 401 && !answered && sameOrigin) {
        answered = true;
        await drain(reply);
        if (await this.#auth.answer(this.ep, reply, this.#scopes, this.#override, signal)) { attempt -= 1; continue; }
        throw new IsulaError('REGISTRY_UNAUTHORIZED', `${this.ep.host}: ${what}: authentication required (isula login ${this.ep.host})`);
      }
      if (reply.status >= 500 && attempt < attempts) {
        await drain(reply);
        this.#log.debug({ status: reply.status, what, attempt }, 'registry answered 5xx; retrying');
        await pause(BACKOFF_MS[attempt - 1] ?? 1000, signal, what);
        continue;
      }
      const { code, message } = await errorMessage(reply);
      if (reply.status === 401 || reply.status === 403) throw new IsulaError('REGISTRY_UNAUTHORIZED', `${this.ep.host}: ${what}: ${message}`, { details: { status: reply.status, ...(code !== undefined && { registryCode: code }) } });
      if (reply.status === 404) throw new IsulaError('IMAGE_NOT_FOUND', `${what}: ${message}`, { details: { status: 404, ...(code !== undefined && { registryCode: code }) } });
      if (reply.status === 429 || reply.status >= 500) throw new IsulaError('REGISTRY_UNAVAILABLE', `${this.ep.host}: ${what}: the registry answered ${reply.status}${attempt > 1 ? ` ${attempt} times` : ''}: ${message}`);
      throw new IsulaError('REGISTRY_REPLY_INVALID', `${this.ep.host}: ${what}: unexpected ${reply.status}: ${message}`);
    }
  }
}

function canceled(what: string): IsulaError {
  return new IsulaError('CANCELED', `${what}: canceled`);
}

/** The back-off sleep; an abort during it is CANCELED. */
async function pause(ms: number, signal: AbortSignal | undefined, what: string): Promise<void> {
  try {
    await sleep(ms, undefined, signal ? { signal } : {});
  } catch {
    throw canceled(what);
  }
}
