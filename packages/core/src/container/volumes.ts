/**
 * Local volumes (Docker's `local` driver): `<graph>/volumes/<name>/_data`
 * holds the data, `<graph>/volumes/<name>/volume.json` the metadata (written
 * last: a dir without it is a leftover of a crash, removed at open).
 * Named volumes outlive containers; anonymous ones (a 64-hex name, from an
 * image's VOLUME, `-v /path` or `--mount type=volume` without a source) go
 * with `rm -v`. A volume a container refers to cannot be removed.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { writeFileAtomic } from '../atomic-file.js';
import { IsulaError } from '../errors.js';

export interface VolumeRecord {
  Name: string;
  Driver: 'local';
  CreatedAt: string;
  Labels: Record<string, string>;
  Options: Record<string, string>;
  /** Made for one container without a name; `rm -v` removes it. */
  Anonymous: boolean;
}

/** What a container mounts: a volume at a destination (Docker's MountPoint). */
export interface VolumeMount {
  Name: string;
  Destination: string;
  ReadOnly: boolean;
  Anonymous: boolean;
  /** The volume's data directory on the host (inspect's Source). */
  Source?: string;
  /** The image's content at Destination is copied in at the first start (Docker's copy-up). */
  CopyPending?: boolean;
}

export const VOLUME_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

export class VolumeStore {
  readonly root: string;
  readonly #log: Logger;
  readonly #volumes = new Map<string, VolumeRecord>();

  constructor(graph: string, log: Logger) {
    this.root = path.join(graph, 'volumes');
    this.#log = log;
  }

  async open(): Promise<void> {
    await fs.mkdir(this.root, { recursive: true, mode: 0o700 });
    for (const name of await fs.readdir(this.root)) {
      const meta = await fs.readFile(path.join(this.root, name, 'volume.json'), 'utf8').then((t) => JSON.parse(t) as VolumeRecord, () => undefined);
      if (meta === undefined || meta.Name !== name) {
        this.#log.warn({ volume: name }, 'removing a half-created volume left by a crash');
        await fs.rm(path.join(this.root, name), { recursive: true, force: true });
        continue;
      }
      this.#volumes.set(name, meta);
    }
  }

  dataPath(name: string): string {
    return path.join(this.root, name, '_data');
  }

  list(): VolumeRecord[] {
    return [...this.#volumes.values()].sort((a, b) => a.Name.localeCompare(b.Name));
  }

  get(name: string): VolumeRecord {
    const v = this.#volumes.get(name);
    if (v === undefined) throw new IsulaError('VOLUME_NOT_FOUND', `get ${name}: no such volume`);
    return v;
  }

  has(name: string): boolean {
    return this.#volumes.has(name);
  }

  /** Creates a volume (idempotent for an existing name, as Docker's); no name: an anonymous one. */
  async create(opts: { name?: string; labels?: Record<string, string>; options?: Record<string, string>; anonymous?: boolean } = {}): Promise<VolumeRecord> {
    const name = opts.name ?? randomBytes(32).toString('hex');
    if (!VOLUME_NAME.test(name) || name.length > 255) {
      throw new IsulaError('VOLUME_NAME_INVALID', `create ${name}: "${name}" includes invalid characters for a local volume name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed`);
    }
    const existing = this.#volumes.get(name);
    if (existing !== undefined) return existing;
    const unknown = Object.keys(opts.options ?? {});
    if (unknown.length > 0) throw new IsulaError('VOLUME_NAME_INVALID', `create ${name}: driver options are not supported by the local driver: ${unknown.join(', ')}`);
    const dir = path.join(this.root, name);
    await fs.mkdir(path.join(dir, '_data'), { recursive: true, mode: 0o755 });
    // Exactly 0755 whatever the daemon's umask, as Docker's: a container's non-root user (or a remapped root) reads it.
    await fs.chmod(path.join(dir, '_data'), 0o755);
    const record: VolumeRecord = { Name: name, Driver: 'local', CreatedAt: new Date().toISOString(), Labels: opts.labels ?? {}, Options: {}, Anonymous: opts.anonymous ?? opts.name === undefined };
    await writeFileAtomic(path.join(dir, 'volume.json'), JSON.stringify(record), { mode: 0o600 });
    this.#volumes.set(name, record);
    return record;
  }

  /** Removes a volume; `users` are the containers that refer to it (VOLUME_IN_USE when any). */
  async remove(name: string, users: readonly string[]): Promise<void> {
    this.get(name);
    if (users.length > 0) throw new IsulaError('VOLUME_IN_USE', `remove ${name}: volume is in use - [${users.join(', ')}]`);
    this.#volumes.delete(name);
    // The metadata first: a crash after it leaves a dir open() removes.
    await fs.rm(path.join(this.root, name, 'volume.json'), { force: true });
    await fs.rm(path.join(this.root, name), { recursive: true, force: true });
  }

  /** Bytes under a volume's data dir (prune's SpaceReclaimed). */
  async size(name: string): Promise<number> {
    let total = 0;
    const walk = async (dir: string): Promise<void> => {
      for (const e of await fs.readdir(dir, { withFileTypes: true }).catch(() => [])) {
        const p = path.join(dir, e.name);
        if (e.isDirectory()) await walk(p);
        else if (e.isFile()) total += (await fs.lstat(p).catch(() => ({ size: 0 }))).size;
      }
    };
    await walk(this.dataPath(name));
    return total;
  }
}
