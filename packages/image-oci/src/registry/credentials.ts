/**
 * Registry credentials kept by the daemon (`isula login`), as iSulad keeps
 * them: an auths file plus a key file, both root-only.
 *
 *   <graph>/auths/            0700
 *   <graph>/auths/aeskey      0600  32 random bytes, made on first use (one per host machine)
 *   <graph>/auths/auths.json  0600  {"auths": {"HOST": {"auth": base64(iv | tag | ciphertext)}}}
 *
 * Each entry is `{username, password}` sealed with AES-256-GCM under the key,
 * with the registry host as additional data (an entry copied to another host's
 * slot does not open). Files are written atomically.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { IsulaError, KeyedMutex, writeFileAtomic } from '@isula/core';
import { normalizeServer } from './endpoints.js';

export interface Credentials {
  username: string;
  password: string;
}

interface AuthsFile {
  auths: Record<string, { auth: string }>;
}

export class CredentialStore {
  readonly dir: string;
  #key: Buffer | undefined;
  #entries: Record<string, { auth: string }> = {};
  /** Logins and logouts one at a time: each rewrites the whole file, and the key is made once. */
  readonly #mutex = new KeyedMutex();

  private constructor(dir: string) {
    this.dir = dir;
  }

  static async open(dir: string): Promise<CredentialStore> {
    const store = new CredentialStore(dir);
    await fs.mkdir(dir, { recursive: true, mode: 0o700 });
    await fs.chmod(dir, 0o700);
    const text = await fs.readFile(path.join(dir, 'auths.json'), 'utf8').catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return undefined;
      throw err;
    });
    if (text !== undefined) {
      try {
        const doc = JSON.parse(text) as AuthsFile;
        store.#entries = typeof doc.auths === 'object' && doc.auths !== null ? doc.auths : {};
      } catch (err) {
        throw new IsulaError('CONFIG_INVALID', `${path.join(dir, 'auths.json')} is not valid JSON: remove it and log in again`, { cause: err });
      }
    }
    return store;
  }

  async #keyBytes(create: boolean): Promise<Buffer | undefined> {
    if (this.#key !== undefined) return this.#key;
    const file = path.join(this.dir, 'aeskey');
    const existing = await fs.readFile(file).catch(() => undefined);
    if (existing !== undefined && existing.length === 32) {
      this.#key = existing;
      return existing;
    }
    if (!create) return undefined;
    const key = randomBytes(32);
    await writeFileAtomic(file, key, { mode: 0o600 });
    this.#key = key;
    return key;
  }

  /** Stored credentials for a registry server (any spelling: URL, host, docker.io aliases). */
  async get(server: string): Promise<Credentials | undefined> {
    const host = normalizeServer(server);
    const entry = this.#entries[host];
    if (entry === undefined) return undefined;
    const key = await this.#keyBytes(false);
    if (key === undefined) return undefined;
    try {
      const raw = Buffer.from(entry.auth, 'base64');
      const decipher = createDecipheriv('aes-256-gcm', key, raw.subarray(0, 12));
      decipher.setAAD(Buffer.from(host));
      decipher.setAuthTag(raw.subarray(12, 28));
      const plain = Buffer.concat([decipher.update(raw.subarray(28)), decipher.final()]);
      const c = JSON.parse(plain.toString('utf8')) as Credentials;
      return typeof c.username === 'string' && typeof c.password === 'string' ? c : undefined;
    } catch {
      // A key that changed or a tampered entry: as if not logged in.
      return undefined;
    }
  }

  set(server: string, creds: Credentials): Promise<void> {
    return this.#mutex.run('auths', () => this.#set(server, creds));
  }

  async #set(server: string, creds: Credentials): Promise<void> {
    const host = normalizeServer(server);
    const key = await this.#keyBytes(true);
    if (key === undefined) throw new IsulaError('INTERNAL', 'no credential key');
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', key, iv);
    cipher.setAAD(Buffer.from(host));
    const sealed = Buffer.concat([cipher.update(JSON.stringify({ username: creds.username, password: creds.password })), cipher.final()]);
    const entries = { ...this.#entries, [host]: { auth: Buffer.concat([iv, cipher.getAuthTag(), sealed]).toString('base64') } };
    await this.#write(entries);
  }

  /** False when nothing was stored for the server. */
  remove(server: string): Promise<boolean> {
    return this.#mutex.run('auths', () => this.#remove(server));
  }

  async #remove(server: string): Promise<boolean> {
    const host = normalizeServer(server);
    if (this.#entries[host] === undefined) return false;
    const { [host]: _gone, ...rest } = this.#entries;
    await this.#write(rest);
    return true;
  }

  async #write(entries: Record<string, { auth: string }>): Promise<void> {
    await writeFileAtomic(path.join(this.dir, 'auths.json'), `${JSON.stringify({ auths: entries }, null, 2)}\n`, { mode: 0o600 });
    this.#entries = entries;
  }
}
