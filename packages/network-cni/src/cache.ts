/**
 * The attachment cache, `<graph>/cni/cache/<id>.json`: per container (or pod
 * sandbox) id, the request, the netns path, and per network the conflist as
 * it was run and its result. DEL runs from here, so detach works after a
 * daemon restart, after the conflist was edited or removed, and with the
 * netns gone. Written with core's writeFileAtomic before the first ADD (so a
 * crash mid-attach still leaves something to DEL) and again with the results.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { IsulaError, writeFileAtomic } from '@isula/core';
import type { NetworkAttachRequest, PortMapping } from '@isula/core';
import type { Logger } from 'pino';

export const CACHE_SCHEMA_VERSION = 1;

export interface CachedNetwork {
  /** The network's name (its conflist `name`). */
  name: string;
  /** Where the conflist was read from (it may be gone since). */
  file: string;
  ifName: string;
  /** The conflist as run. */
  config: Record<string, unknown>;
  /** The chain's final result, once ADD completed. */
  result?: unknown;
  /** The port mappings published through this network, host ports chosen. */
  portMappings: PortMapping[];
  /** CNI_ARGS of a network joined later (`connect`), instead of the request's. */
  args?: Record<string, string>;
  /**
   * A DEL of it failed (a disconnect, or the undo of a failed connect): kept
   * only for detach (or a later disconnect) to DEL again. It publishes no
   * ports and is never chosen to take them; its `portMappings` stay for that
   * DEL to remove portmap's rules.
   */
  isLeaving?: boolean;
}

export interface CacheEntry {
  schemaVersion: number;
  id: string;
  netnsPath: string;
  /** The namespace's nsfs inode: tells the attached namespace from a new one bound on the same path later. */
  netnsInode?: number;
  /**
   * The nsfs inode's ctime in ns (a decimal string): the kernel recycles namespace inode numbers,
   * and a namespace made later on the same path may get the attached one's; its inode is newer.
   */
  netnsCtimeNs?: string;
  request: NetworkAttachRequest;
  /** The loopback list (run on `lo`) and its result. */
  loopback: { config: Record<string, unknown>; result?: unknown };
  networks: CachedNetwork[];
  /** False until every ADD succeeded. */
  complete: boolean;
  /** ISO 8601. */
  created: string;
}

/** Container and sandbox ids: what may be joined to the cache dir. */
const ID = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$/;

export function validateId(id: string): void {
  if (!ID.test(id)) throw new IsulaError('NETWORK_CONFIG_INVALID', `invalid container id ${JSON.stringify(id)} for a network attachment`);
}

export class AttachmentCache {
  readonly dir: string;
  readonly #log: Logger;
  #entries: Map<string, CacheEntry> | undefined;
  #loading: Promise<Map<string, CacheEntry>> | undefined;

  constructor(dir: string, log: Logger) {
    this.dir = dir;
    this.#log = log;
  }

  /** Every entry; read from disk once, then kept in memory (this driver is the only writer). */
  async entries(): Promise<Map<string, CacheEntry>> {
    if (this.#entries) return this.#entries;
    this.#loading ??= this.#load();
    this.#entries = await this.#loading;
    return this.#entries;
  }

  async get(id: string): Promise<CacheEntry | undefined> {
    return (await this.entries()).get(id);
  }

  /** Records `entry` in memory only, at once (its port reservations count from now); `entries()` must have been loaded. */
  remember(entry: CacheEntry): void {
    validateId(entry.id);
    if (!this.#entries) throw new Error('AttachmentCache.remember before entries() was loaded');
    this.#entries.set(entry.id, entry);
  }

  /** Records `entry` in memory, then on disk. */
  async put(entry: CacheEntry): Promise<void> {
    validateId(entry.id);
    (await this.entries()).set(entry.id, entry);
    await fs.mkdir(this.dir, { recursive: true, mode: 0o700 });
    await writeFileAtomic(this.#file(entry.id), `${JSON.stringify(entry, null, 2)}\n`, { mode: 0o600 });
  }

  async delete(id: string): Promise<void> {
    validateId(id);
    await fs.rm(this.#file(id), { force: true });
    (await this.entries()).delete(id);
  }

  #file(id: string): string {
    return path.join(this.dir, `${id}.json`);
  }

  async #load(): Promise<Map<string, CacheEntry>> {
    const out = new Map<string, CacheEntry>();
    let names: string[];
    try {
      names = await fs.readdir(this.dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return out;
      throw err;
    }
    for (const name of names) {
      if (name.startsWith('.')) {
        // A temp file of an interrupted writeFileAtomic.
        await fs.rm(path.join(this.dir, name), { force: true });
        continue;
      }
      if (!name.endsWith('.json')) continue;
      const file = path.join(this.dir, name);
      try {
        const entry = parseEntry(JSON.parse(await fs.readFile(file, 'utf8')));
        if (`${entry.id}.json` !== name) throw new Error(`holds id ${entry.id}`);
        out.set(entry.id, entry);
      } catch (err) {
        this.#log.warn({ err, file }, 'unreadable CNI attachment cache entry ignored');
      }
    }
    return out;
  }
}

function parseEntry(v: unknown): CacheEntry {
  const o = v as Partial<CacheEntry> | null;
  if (typeof o !== 'object' || o === null) throw new Error('not an object');
  if (o.schemaVersion !== CACHE_SCHEMA_VERSION) throw new Error(`unknown schemaVersion ${String(o.schemaVersion)}`);
  if (typeof o.id !== 'string' || !ID.test(o.id)) throw new Error('bad id');
  if (!Array.isArray(o.networks) || typeof o.loopback !== 'object' || typeof o.request !== 'object') throw new Error('missing fields');
  return o as CacheEntry;
}
