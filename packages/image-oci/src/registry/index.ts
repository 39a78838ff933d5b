/**
 * The registry side of the OCI image driver: pull, push, login and logout
 * over one transport, one authenticator (token cache) and the credential
 * store.
 */
import type { Logger } from 'pino';
import { IsulaError, parseDuration, type DaemonConfig, type PullOptions, type PullResult, type RegistryAuth, type TransferProgress } from '@isula/core';
import type { ImageStore } from '../store.js';
import { Authenticator, basic, parseChallenge } from './client.js';
import { CredentialStore } from './credentials.js';
import { normalizeServer, originEndpoints, type RegistrySettings } from './endpoints.js';
import { drain, errorMessage, Transport } from './http.js';
import { Puller } from './pull.js';
import { Pusher } from './push.js';

export { CredentialStore } from './credentials.js';
export { parseChallenge } from './client.js';
export { pullEndpoints, originEndpoints, isInsecure, normalizeServer } from './endpoints.js';
export type { RegistrySettings, Endpoint } from './endpoints.js';

export function registrySettings(config: Readonly<DaemonConfig>): RegistrySettings {
  return {
    mirrors: config['registry-mirrors'],
    mirrorsByHost: config['registry-mirrors-by-host'],
    insecure: config['insecure-registries'],
    certsDir: config['registry-certs-dir'],
    stallTimeoutMs: parseDuration(config['registry-stall-timeout']),
    maxConcurrentDownloads: config['max-concurrent-downloads'],
    maxConcurrentUploads: config['max-concurrent-uploads'],
  };
}

export class Registry {
  readonly #transport: Transport;
  readonly #auth: Authenticator;
  readonly #creds: CredentialStore;
  readonly #puller: Puller;
  readonly #pusher: Pusher;
  readonly #settings: RegistrySettings;

  constructor(opts: { store: ImageStore; settings: RegistrySettings; credentials: CredentialStore; log: Logger }) {
    this.#settings = opts.settings;
    this.#transport = new Transport(opts.settings.stallTimeoutMs);
    this.#creds = opts.credentials;
    this.#auth = new Authenticator(this.#transport, (host) => this.#creds.get(host));
    this.#puller = new Puller({ store: opts.store, transport: this.#transport, auth: this.#auth, settings: opts.settings, log: opts.log });
    this.#pusher = new Pusher({ store: opts.store, transport: this.#transport, auth: this.#auth, settings: opts.settings, log: opts.log });
  }

  pull(reference: string, opts: PullOptions): Promise<PullResult> {
    return this.#puller.pull(reference, opts);
  }

  push(reference: string, opts: { signal: AbortSignal; onProgress?: (p: TransferProgress) => void; auth?: RegistryAuth }): Promise<{ tag: string; digest: string; size: number }> {
    return this.#pusher.push(reference, opts);
  }

  /**
   * Checks the credentials with the registry (GET /v2/ with basic auth, or a
   * token for them from the bearer realm) and stores them when they work.
   */
  async login(server: string, opts: { signal: AbortSignal; username: string; password: string }): Promise<{ status: string }> {
    const host = normalizeServer(server);
    const creds = { username: opts.username, password: opts.password };
    const endpoints = originEndpoints(host, this.#settings);
    let lastError: unknown;
    for (const ep of endpoints) {
      try {
        const probe = await this.#transport.send(ep, { method: 'GET', url: `${ep.base}/v2/` }, opts.signal);
        await drain(probe);
        if (probe.status === 401) {
          // The registry's challenge, answered with these credentials (the token logic pulls use).
          const ch = parseChallenge(String(probe.headers['www-authenticate'] ?? ''));
          const failed = (message: string) => `login to ${host} failed: ${message}`;
          const authorization = ch?.scheme === 'bearer'
            ? `Bearer ${await this.#auth.token(ep, ch, [], creds, opts.signal, failed)}`
            : (basic(creds) ?? '');
          const check = await this.#transport.send(ep, { method: 'GET', url: `${ep.base}/v2/`, headers: { authorization } }, opts.signal);
          if (check.status !== 200) {
            const { message } = await errorMessage(check);
            throw new IsulaError('REGISTRY_UNAUTHORIZED', failed(message));
          }
          await drain(check);
        } else if (probe.status !== 200) {
          throw new IsulaError('REGISTRY_UNAVAILABLE', `${ep.base}/v2/ answered ${probe.status}: not a registry`);
        }
        await this.#creds.set(host, creds);
        this.#auth.forget();
        return { status: 'Login Succeeded' };
      } catch (err) {
        lastError = err;
        if (err instanceof IsulaError && (err.code === 'REGISTRY_UNAVAILABLE' || err.code === 'REGISTRY_TIMEOUT') && ep !== endpoints[endpoints.length - 1]) continue;
        throw err;
      }
    }
    throw lastError ?? new IsulaError('REGISTRY_UNAVAILABLE', `no endpoint for ${host}`);
  }

  async logout(server: string): Promise<boolean> {
    const had = await this.#creds.remove(server);
    this.#auth.forget();
    return had;
  }

  /**
   * A reloaded daemon.json (SIGHUP): the mirrors and insecure registries
   * apply to the next pull, push or login. The settings object is the one
   * the puller and pusher hold, so it is updated in place; a transfer under
   * way keeps the endpoints it chose. TLS agents are keyed by host and
   * verification, so a registry that became (in)secure gets a fresh one.
   */
  reloadSettings(next: RegistrySettings): void {
    this.#settings.mirrors = next.mirrors;
    this.#settings.mirrorsByHost = next.mirrorsByHost;
    this.#settings.insecure = next.insecure;
  }

  close(): Promise<void> {
    return this.#transport.close();
  }
}
