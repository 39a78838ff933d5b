/**
 * The image store under `<graph>/storage`:
 *
 *   blobs/sha256/<hex>          configs and layer blobs as received (save writes them back)
 *   layers/<chain-hex>/diff/    a layer unpacked once, shared by every image that has it
 *   layers/<chain-hex>/layer.json  written last: a layer without it is a leftover
 *   l/<short>  -> ../layers/<chain-hex>/diff   short names keep overlay's mount options < 4 KiB
 *   images/<id-hex>.json        image records; an image exists once its record does
 *   containers/<id>/{upper,work,merged,image}  container root filesystems (image: the image id)
 *   tmp/                        scratch for loads; emptied at open
 *
 * Reference counts are derived from the image records when needed, never
 * stored: nothing to get out of step after a crash. Every record write is
 * atomic (core's writeFileAtomic). `open()` repairs what a crash left.
 */
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import type { Logger } from 'pino';
import { writeLayerTar } from './layer-tar.js';
import { walkUpper } from './upper-walk.js';
import { opaqueDirsIn, readXattrs } from './xattrs.js';
import * as tar from 'tar';
import { IsulaError, KeyedMutex, checkShape, faultPoint, writeFileAtomic } from '@isula/core';
import type { ErrorCode } from '@isula/core';
import { extractLayer } from './extract.js';
import { familiarTag, formatReference, IMAGE_ID, parseReference, type Reference } from './reference.js';

const run = promisify(execFile);
const SHA256 = /^sha256:([a-f0-9]{64})$/;
const STORE = 'store';

export interface LayerRecord {
  schemaVersion: 1;
  chainId: string;
  diffId: string;
  parent: string | null;
  blobDigest: string;
  mediaType: string;
  /** Uncompressed size. */
  sizeBytes: number;
  /** Short link name under l/. */
  link: string;
}

/** A layer unpacked under `tmp/` by a pull, not yet part of the store. */
export type StagedLayer = Omit<LayerRecord, 'link'> & { stageDir: string };

export interface ImageRecord {
  schemaVersion: 1;
  /** sha256 of the config blob. */
  id: string;
  repoTags: string[];
  repoDigests: string[];
  /** From the image config. */
  created: string;
  sizeBytes: number;
  /** Chain ids, base first. */
  layers: string[];
  loadedAt: string;
}

export interface ImageConfig {
  architecture?: string;
  os?: string;
  created?: string;
  author?: string;
  config?: Record<string, unknown>;
  rootfs?: { type?: string; diff_ids?: string[] };
  history?: unknown[];
  [key: string]: unknown;
}

/**
 * Refuses an image config of the wrong shape before anything reads it: a JSON
 * object whose `config` (Docker's ContainerConfig, read when a container is
 * created from the image) has the types core expects, and whose `history`, if
 * any, is a list. Archives and registries are input like any other.
 */
export function checkImageConfig(config: unknown, code: ErrorCode, what: string): asserts config is ImageConfig {
  if (config === null || typeof config !== 'object' || Array.isArray(config)) throw new IsulaError(code, `${what} is not a JSON object`);
  const c = config as ImageConfig;
  if (c.config !== undefined && c.config !== null) checkShape('container-config', c.config, code, `${what}: its config`);
  if (c.history !== undefined && c.history !== null && !Array.isArray(c.history)) throw new IsulaError(code, `${what}: history is not a list`);
  for (const k of ['architecture', 'os', 'created', 'author'] as const) {
    if (c[k] !== undefined && typeof c[k] !== 'string') throw new IsulaError(code, `${what}: ${k} is not a string`);
  }
}

export function chainIds(diffIds: readonly string[]): string[] {
  const out: string[] = [];
  for (const d of diffIds) {
    const prev = out[out.length - 1];
    out.push(prev === undefined ? d : `sha256:${createHash('sha256').update(`${prev} ${d}`).digest('hex')}`);
  }
  return out;
}

const hex = (digest: string): string => {
  const m = SHA256.exec(digest);
  if (m === null || m[1] === undefined) throw new IsulaError('IMAGE_DIGEST_MISMATCH', `not a sha256 digest: ${JSON.stringify(digest)}`);
  return m[1];
};

/** How many image configs' text the store keeps in memory (a few KB each). */
const CONFIG_CACHE_SIZE = 256;

export class ImageStore {
  readonly root: string;
  readonly #log: Logger;
  readonly #images = new Map<string, ImageRecord>();
  readonly #layers = new Map<string, LayerRecord>();
  /** Store mutations one at a time (one key: the whole store). */
  readonly #mutex = new KeyedMutex();
  /** Container id -> image id, for "in use" checks; filled by mountRootfs/removeRootfs. */
  readonly #users = new Map<string, string>();
  /** Chain id -> pulls in flight that need it: rmi leaves these layers alone. */
  readonly #pins = new Map<string, number>();
  /** Config blobs' text by image id (content-addressed, so never stale): every create inspects its image. */
  readonly #configText = new Map<string, string>();

  private constructor(root: string, log: Logger) {
    this.root = root;
    this.#log = log;
  }

  /** Opens (and repairs) the store. */
  static async open(graphRoot: string, log: Logger): Promise<ImageStore> {
    const store = new ImageStore(path.join(graphRoot, 'storage'), log);
    await store.#open();
    return store;
  }

  #p(...parts: string[]): string {
    return path.join(this.root, ...parts);
  }

  async #open(): Promise<void> {
    for (const d of ['blobs/sha256', 'layers', 'l', 'images', 'containers', 'tmp']) await fs.mkdir(this.#p(d), { recursive: true, mode: 0o700 });
    const removed: string[] = [];
    // Scratch from interrupted loads.
    for (const e of await fs.readdir(this.#p('tmp'))) { await fs.rm(this.#p('tmp', e), { recursive: true, force: true }); removed.push(`tmp/${e}`); }
    // Image records (drop unreadable ones and temp files).
    for (const e of await fs.readdir(this.#p('images'))) {
      const file = this.#p('images', e);
      if (!e.endsWith('.json') || e.startsWith('.')) { await fs.rm(file, { force: true }); removed.push(`images/${e}`); continue; }
      try {
        const rec = JSON.parse(await fs.readFile(file, 'utf8')) as ImageRecord;
        this.#images.set(rec.id, rec);
      } catch (err) {
        this.#log.warn({ err, file }, 'unreadable image record removed');
        await fs.rm(file, { force: true });
        removed.push(`images/${e}`);
      }
    }
    // Layers: committed ones have layer.json; the rest are leftovers.
    for (const e of await fs.readdir(this.#p('layers'))) {
      const rec = await fs.readFile(this.#p('layers', e, 'layer.json'), 'utf8').then((s) => JSON.parse(s) as LayerRecord, () => undefined);
      if (rec === undefined) { await fs.rm(this.#p('layers', e), { recursive: true, force: true }); removed.push(`layers/${e}`); continue; }
      this.#layers.set(rec.chainId, rec);
    }
    // Container root filesystems name their image: the "in use" checks survive a restart.
    for (const e of await fs.readdir(this.#p('containers'))) {
      const imageId = await fs.readFile(this.#p('containers', e, 'image'), 'utf8').catch(() => undefined);
      if (imageId !== undefined && this.#images.has(imageId.trim())) this.#users.set(e, imageId.trim());
    }
    // Images whose layers are gone are not usable: drop them.
    for (const img of [...this.#images.values()]) {
      if (img.layers.some((l) => !this.#layers.has(l))) {
        this.#images.delete(img.id);
        await fs.rm(this.#p('images', `${hex(img.id)}.json`), { force: true });
        removed.push(`images/${hex(img.id)}.json (missing layers)`);
      }
    }
    // Layers no image uses (a load killed before its image record) go.
    const used = new Set([...this.#images.values()].flatMap((i) => i.layers));
    for (const layer of [...this.#layers.values()]) if (!used.has(layer.chainId)) { await this.#removeLayer(layer); removed.push(`layers/${hex(layer.chainId)} (unused)`); }
    // Dangling short links and blobs.
    const links = new Set([...this.#layers.values()].map((l) => l.link));
    for (const e of await fs.readdir(this.#p('l'))) if (!links.has(e)) { await fs.rm(this.#p('l', e), { force: true }); removed.push(`l/${e}`); }
    const blobs = this.#referencedBlobs();
    for (const e of await fs.readdir(this.#p('blobs/sha256'))) {
      if (!blobs.has(`sha256:${e}`)) { await fs.rm(this.#p('blobs/sha256', e), { force: true }); removed.push(`blobs/sha256/${e}`); }
    }
    if (removed.length > 0) this.#log.warn({ removed }, 'image store: removed leftovers of an interrupted operation');
    this.#log.info({ images: this.#images.size, layers: this.#layers.size }, 'image store opened');
  }

  #referencedBlobs(): Set<string> {
    const set = new Set<string>();
    for (const i of this.#images.values()) set.add(i.id);
    for (const l of this.#layers.values()) set.add(l.blobDigest);
    return set;
  }

  // ---- queries ---------------------------------------------------------------

  list(): ImageRecord[] {
    return [...this.#images.values()].sort((a, b) => b.created.localeCompare(a.created));
  }

  layer(chainId: string): LayerRecord | undefined {
    return this.#layers.get(chainId);
  }

  /** Finds an image by full or short id, `sha256:` id, name[:tag] or name@digest. */
  find(ref: string): ImageRecord | undefined {
    return this.#lookup(ref)?.img;
  }

  /**
   * `find`, telling how it matched: `reference` is set when `ref` named the
   * image (a tag or a digest), unset when it was an id. rmi and save act on
   * that difference, as docker does.
   */
  #lookup(ref: string): { img: ImageRecord; reference?: Reference } | undefined {
    const idMatch = IMAGE_ID.exec(ref);
    if (idMatch) {
      const img = this.#images.get(`sha256:${idMatch[1] ?? ''}`);
      return img && { img };
    }
    // A name first, as docker does: an image called "abcd" wins over an id starting with abcd.
    let parsed;
    try {
      parsed = parseReference(ref);
    } catch {
      parsed = undefined;
    }
    if (parsed !== undefined) {
      const full = formatReference(parsed);
      for (const img of this.#images.values()) {
        if (parsed.digest !== undefined ? img.repoDigests.includes(`${parsed.name}@${parsed.digest}`) : img.repoTags.includes(full)) return { img, reference: parsed };
      }
    }
    if (/^(?:sha256:)?[a-f0-9]{4,63}$/.test(ref)) {
      const prefix = ref.replace(/^sha256:/, '');
      const hits = [...this.#images.values()].filter((i) => hex(i.id).startsWith(prefix));
      if (hits.length === 1 && hits[0] !== undefined) return { img: hits[0] };
      if (hits.length > 1) throw new IsulaError('IMAGE_REFERENCE_INVALID', `short id ${ref} is ambiguous: ${hits.length} images match`);
    }
    return undefined;
  }

  get(ref: string): ImageRecord {
    return this.#require(ref).img;
  }

  #require(ref: string): { img: ImageRecord; reference?: Reference } {
    const match = this.#lookup(ref);
    if (match === undefined) throw new IsulaError('IMAGE_NOT_FOUND', `No such image: ${ref}`);
    return match;
  }

  /** The image's config, parsed anew for each caller (callers may change what they get). */
  async config(img: ImageRecord): Promise<ImageConfig> {
    let text = this.#configText.get(img.id);
    if (text === undefined) {
      text = await fs.readFile(this.#p('blobs/sha256', hex(img.id)), 'utf8');
      if (this.#configText.size >= CONFIG_CACHE_SIZE) this.#configText.delete(this.#configText.keys().next().value as string);
      this.#configText.set(img.id, text);
    }
    return JSON.parse(text) as ImageConfig;
  }

  blobPath(digest: string): string {
    return this.#p('blobs/sha256', hex(digest));
  }

  layerDir(chainId: string): string {
    return this.#p('layers', hex(chainId), 'diff');
  }

  /** Container ids whose rootfs uses the image. */
  usersOf(imageId: string): string[] {
    return [...this.#users.entries()].filter(([, id]) => id === imageId).map(([c]) => c);
  }

  // ---- load ------------------------------------------------------------------

  /**
   * Loads a docker-archive (`docker save`), an oci-archive or an OCI layout
   * tarball (gzip or not). `tag` names an untagged OCI image. Returns the
   * images loaded; on failure nothing of this load is visible.
   */
  async load(archive: string | NodeJS.ReadableStream, options: { tag?: string; signal?: AbortSignal } = {}): Promise<(ImageRecord & { archiveTags: string[] })[]> {
    const tmp = this.#p('tmp', `load-${randomBytes(6).toString('hex')}`);
    await fs.mkdir(tmp, { mode: 0o700 });
    try {
      try {
        const unpack = tar.x({ cwd: tmp, strict: true, preservePaths: false, preserveOwner: false, noMtime: true });
        await pipeline(typeof archive === 'string' ? createReadStream(archive) : archive, unpack as unknown as NodeJS.WritableStream, ...(options.signal ? [{ signal: options.signal }] : []));
      } catch (err) {
        throw new IsulaError('IMAGE_ARCHIVE_INVALID', `cannot read the image archive: ${(err as Error).message}`, { cause: err });
      }
      const images = await this.#readArchive(tmp, options.tag);
      // Each image with the tags this archive gave it (docker load reports those, not the image's other tags).
      const loaded: (ImageRecord & { archiveTags: string[] })[] = [];
      for (const img of images) loaded.push({ ...(await this.#mutex.run(STORE, () => this.#commitImage(tmp, img, options.signal))), archiveTags: img.tags });
      return loaded;
    } finally {
      await fs.rm(tmp, { recursive: true, force: true });
    }
  }

  async #readArchive(dir: string, tag: string | undefined): Promise<ArchiveImage[]> {
    const inside = async (rel: string): Promise<string> => {
      const p = path.resolve(dir, rel);
      const real = await fs.realpath(p).catch(() => { throw new IsulaError('IMAGE_ARCHIVE_INVALID', `archive entry ${JSON.stringify(rel)} is missing`); });
      if (real !== dir && !real.startsWith(`${dir}${path.sep}`)) throw new IsulaError('IMAGE_ARCHIVE_INVALID', `archive entry ${JSON.stringify(rel)} points outside the archive`);
      // Every entry named by a manifest is a file: "" or "." would name the archive's root.
      if (!(await fs.stat(real)).isFile()) throw new IsulaError('IMAGE_ARCHIVE_INVALID', `archive entry ${JSON.stringify(rel)} is not a file`);
      return real;
    };
    const readJson = async (rel: string): Promise<unknown> => {
      try {
        return JSON.parse(await fs.readFile(await inside(rel), 'utf8')) as unknown;
      } catch (err) {
        if (err instanceof IsulaError) throw err;
        throw new IsulaError('IMAGE_ARCHIVE_INVALID', `archive file ${rel} is not valid JSON`, { cause: err });
      }
    };
    const has = (rel: string) => exists(path.join(dir, rel));

    if (await has('manifest.json')) {
      const manifest = await readJson('manifest.json');
      if (!Array.isArray(manifest)) throw new IsulaError('IMAGE_ARCHIVE_INVALID', 'docker-archive manifest.json is not a list');
      if (manifest.length === 0) throw new IsulaError('IMAGE_ARCHIVE_INVALID', 'docker-archive manifest.json lists no image');
      const out: ArchiveImage[] = [];
      for (const entry of manifest as ({ Config?: unknown; RepoTags?: unknown; Layers?: unknown } | null)[]) {
        if (entry === null || typeof entry !== 'object' || typeof entry.Config !== 'string' || !Array.isArray(entry.Layers) || !entry.Layers.every((l) => typeof l === 'string')) {
          throw new IsulaError('IMAGE_ARCHIVE_INVALID', 'docker-archive manifest.json entry lacks Config or Layers');
        }
        const configPath = await inside(entry.Config);
        const layers = await Promise.all((entry.Layers as string[]).map(async (l) => ({ path: await inside(l), digest: undefined, mediaType: 'application/vnd.docker.image.rootfs.diff.tar' })));
        const tags = Array.isArray(entry.RepoTags) ? (entry.RepoTags as unknown[]).filter((t): t is string => typeof t === 'string') : [];
        out.push({ configPath, layers, tags: tags.length > 0 ? tags : tag ? [tag] : [] });
      }
      return out;
    }
    if (await has('index.json')) {
      const out: ArchiveImage[] = [];
      const visit = async (descriptor: Descriptor, name: string | undefined): Promise<void> => {
        const blob = `blobs/sha256/${hex(descriptor.digest)}`;
        const doc = (await readJson(blob)) as { mediaType?: string; manifests?: Descriptor[]; config?: Descriptor; layers?: Descriptor[] };
        if (Array.isArray(doc.manifests)) {
          const arch = process.arch === 'x64' ? 'amd64' : process.arch;
          const pick = doc.manifests.find((m) => m.platform === undefined || (m.platform.os === 'linux' && m.platform.architecture === arch));
          if (pick === undefined) throw new IsulaError('IMAGE_ARCHIVE_INVALID', `no image for linux/${arch} in the archive's index`);
          return visit(pick, name);
        }
        if (doc.config === undefined || !Array.isArray(doc.layers)) throw new IsulaError('IMAGE_ARCHIVE_INVALID', `${blob} is neither an image manifest nor an index`);
        const layers = await Promise.all(doc.layers.map(async (l) => ({ path: await inside(`blobs/sha256/${hex(l.digest)}`), digest: l.digest, mediaType: l.mediaType ?? 'application/vnd.oci.image.layer.v1.tar+gzip' })));
        out.push({ configPath: await inside(`blobs/sha256/${hex(doc.config.digest)}`), layers, tags: name ? [name] : tag ? [tag] : [] });
      };
      const index = (await readJson('index.json')) as { manifests?: Descriptor[] };
      for (const m of index.manifests ?? []) {
        const ann = m.annotations ?? {};
        const full = ann['io.containerd.image.name'];
        const refName = ann['org.opencontainers.image.ref.name'];
        let name = full;
        if (name === undefined && refName !== undefined) {
          // A bare tag ("latest") needs a name from --tag; "busybox:latest" is a name itself.
          name = /[/:]/.test(refName) || !/^[\w][\w.-]*$/.test(refName) ? refName : tag !== undefined ? `${parseReference(tag, { defaultTag: false }).name}:${refName}` : undefined;
        }
        await visit(m, name);
      }
      return out;
    }
    throw new IsulaError('IMAGE_ARCHIVE_INVALID', 'not an image archive: no manifest.json (docker-archive) nor index.json (OCI)');
  }

  async #commitImage(tmp: string, img: ArchiveImage, signal: AbortSignal | undefined): Promise<ImageRecord> {
    const configBytes = await fs.readFile(img.configPath);
    const id = `sha256:${createHash('sha256').update(configBytes).digest('hex')}`;
    let config: ImageConfig;
    try {
      config = JSON.parse(configBytes.toString('utf8')) as ImageConfig;
    } catch (err) {
      throw new IsulaError('IMAGE_ARCHIVE_INVALID', `image config ${id} is not valid JSON`, { cause: err });
    }
    checkImageConfig(config, 'IMAGE_ARCHIVE_INVALID', `image config ${id}`);
    const diffIds = config.rootfs?.diff_ids;
    if (!Array.isArray(diffIds) || diffIds.length !== img.layers.length || !diffIds.every((d) => typeof d === 'string' && SHA256.test(d))) {
      throw new IsulaError('IMAGE_ARCHIVE_INVALID', `image ${id}: rootfs.diff_ids does not match the ${img.layers.length} layers of its manifest`);
    }
    if (diffIds.length === 0) throw new IsulaError('IMAGE_ARCHIVE_INVALID', `image ${id} has no layers: isula needs at least one for the root filesystem`);
    const chains = chainIds(diffIds);
    // Missing layers are extracted concurrently (two at a time: extraction is CPU (hash,
    // inflate) and disk bound); each becomes visible only once its layer.json is written.
    const missing = [...chains.entries()].filter(([, c]) => !this.#layers.has(c));
    // Layers are extracted without a flush each; one `sync -f` then covers them all before
    // their layer.json (the commit marker) is written. A crash before that leaves layer dirs
    // without layer.json, which open() removes.
    const done: LayerRecord[] = [];
    const extractOne = async ([i, chainId]: [number, string]): Promise<void> => {
      const source = img.layers[i];
      if (source === undefined) throw new IsulaError('IMAGE_ARCHIVE_INVALID', `image ${id}: layer ${i} missing`);
      const layerDir = this.#p('layers', hex(chainId));
      await fs.rm(layerDir, { recursive: true, force: true });
      await fs.mkdir(layerDir, { mode: 0o700 });
      const result = await extractLayer(createReadStream(source.path), path.join(layerDir, 'diff'), {
        expectedDiffId: diffIds[i] as string,
        sync: false,
        ...(source.digest !== undefined && { expectedDigest: source.digest }),
        ...(signal !== undefined && { signal }),
      });
      // Keep the blob as received, for save; same filesystem, so a rename when it came from the scratch dir.
      const blobFile = this.blobPath(result.digest);
      if (!(await exists(blobFile))) {
        if (source.path.startsWith(tmp)) await fs.rename(source.path, blobFile).catch(async () => { await fs.copyFile(source.path, blobFile); });
        else await fs.copyFile(source.path, blobFile);
        faultPoint('image:after-blob-write');
      }
      const link = randomBytes(13).toString('base64url').replace(/[-_]/g, 'x').slice(0, 16).toUpperCase();
      await fs.symlink(`../layers/${hex(chainId)}/diff`, this.#p('l', link));
      done.push({
        schemaVersion: 1, chainId, diffId: diffIds[i] as string, parent: chains[i - 1] ?? null,
        blobDigest: result.digest, mediaType: source.mediaType, sizeBytes: result.sizeBytes, link,
      });
    };
    const queue = [...missing];
    const worker = async (): Promise<void> => {
      for (let next = queue.shift(); next !== undefined; next = queue.shift()) await extractOne(next);
    };
    const results = await Promise.allSettled([worker(), worker()]);
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) {
      // Leave nothing behind: the layers of this image made so far (none is recorded yet).
      for (const layer of done) {
        await fs.rm(this.#p('l', layer.link), { force: true });
        if (!this.#referencedBlobs().has(layer.blobDigest)) await fs.rm(this.blobPath(layer.blobDigest), { force: true });
      }
      for (const [, chainId] of missing) await fs.rm(this.#p('layers', hex(chainId)), { recursive: true, force: true });
      throw failed.reason;
    }
    if (done.length > 0) {
      await run('sync', ['-f', this.root], { timeout: 120_000 }).catch((err: unknown) => {
        throw new IsulaError('INTERNAL', `flushing the image store failed: ${String(err)}`, { cause: err });
      });
    }
    for (const record of done) {
      await writeFileAtomic(this.#p('layers', hex(record.chainId), 'layer.json'), JSON.stringify(record));
      this.#layers.set(record.chainId, record);
    }
    const size = chains.reduce((sum, c) => sum + (this.#layers.get(c)?.sizeBytes ?? 0), 0);
    const configFile = this.blobPath(id);
    if (!(await exists(configFile))) await writeFileAtomic(configFile, configBytes, { mode: 0o600 });

    const tags = img.tags.map((t) => formatReference(parseReference(t)));
    const previous = this.#images.get(id);
    const record: ImageRecord = {
      schemaVersion: 1, id,
      repoTags: [...new Set([...(previous?.repoTags ?? []), ...tags])],
      repoDigests: previous?.repoDigests ?? [],
      created: typeof config.created === 'string' ? config.created : new Date(0).toISOString(),
      sizeBytes: size, layers: chains, loadedAt: previous?.loadedAt ?? new Date().toISOString(),
    };
    await this.#moveTags(tags, id);
    await this.#writeImage(record);
    this.#log.info({ image: id, tags }, 'image loaded');
    return record;
  }

  /** Takes `tags` away from any other image (a tag names one image). */
  async #moveTags(tags: string[], toId: string): Promise<void> {
    for (const other of this.#images.values()) {
      if (other.id === toId) continue;
      const kept = other.repoTags.filter((t) => !tags.includes(t));
      if (kept.length !== other.repoTags.length) await this.#writeImage({ ...other, repoTags: kept });
    }
  }

  async #writeImage(record: ImageRecord): Promise<void> {
    await writeFileAtomic(this.#p('images', `${hex(record.id)}.json`), JSON.stringify(record));
    this.#images.set(record.id, record);
  }

  // ---- pull ------------------------------------------------------------------

  hasLayer(chainId: string): boolean {
    return this.#layers.has(chainId);
  }

  /** Keeps `chainIds` from removal by rmi until the returned function is called. */
  pin(chainIds: readonly string[]): () => void {
    for (const c of chainIds) this.#pins.set(c, (this.#pins.get(c) ?? 0) + 1);
    let done = false;
    return () => {
      if (done) return;
      done = true;
      for (const c of chainIds) {
        const n = (this.#pins.get(c) ?? 1) - 1;
        if (n <= 0) this.#pins.delete(c); else this.#pins.set(c, n);
      }
    };
  }

  /**
   * Unpacks one layer from `source` (a registry blob as it downloads) into a
   * private dir under `tmp/`, keeping the blob beside it, verifying its
   * digest, size and diff id as it streams. Nothing in `layers/` or `blobs/`
   * is touched: `commitLayers` moves it into place (or drops it when the
   * layer is already there); a crash before that leaves only scratch, which
   * open() empties.
   */
  async stageLayer(layer: { chainId: string; parent: string | null; diffId: string; digest: string; mediaType: string }, source: NodeJS.ReadableStream, signal: AbortSignal | undefined): Promise<StagedLayer> {
    const stageDir = this.#p('tmp', `stage-${randomBytes(6).toString('hex')}`);
    await fs.mkdir(stageDir, { mode: 0o700 });
    const blobTmp = path.join(stageDir, 'blob');
    // A write stream batches the chunks queued while a write is in flight into one writev;
    // the tee passes each chunk on at once and waits only when the file falls behind.
    const blobOut = createWriteStream(blobTmp, { flags: 'wx', mode: 0o600, highWaterMark: 1024 * 1024 });
    try {
      let failed: unknown;
      blobOut.on('error', (err) => { failed ??= err; });
      const tee = new Transform({
        transform(chunk: Buffer, _enc, cb) {
          if (failed !== undefined) { cb(failed as Error); return; }
          if (blobOut.write(chunk)) { cb(null, chunk); return; }
          const settle = (err?: Error): void => {
            blobOut.off('drain', settle);
            blobOut.off('error', settle);
            if (err !== undefined) cb(err); else cb(null, chunk);
          };
          blobOut.on('drain', settle);
          blobOut.on('error', settle);
        },
        flush(cb) {
          // Closed, not only finished: the blob is complete on disk before it is moved.
          blobOut.once('close', () => cb(failed as Error | undefined ?? null));
          blobOut.end();
        },
      });
      const piped = pipeline(source, tee).catch((err: unknown) => { failed ??= err; });
      let result;
      try {
        result = await extractLayer(tee, path.join(stageDir, 'diff'), {
          expectedDigest: layer.digest, expectedDiffId: layer.diffId, sync: false, ...(signal !== undefined && { signal }),
        });
      } catch (err) {
        (source as unknown as { destroy?: () => void }).destroy?.();
        await piped;
        throw failed instanceof IsulaError ? failed : err;
      }
      await piped;
      if (failed !== undefined) throw failed;
      return {
        schemaVersion: 1, chainId: layer.chainId, diffId: layer.diffId, parent: layer.parent,
        blobDigest: result.digest, mediaType: layer.mediaType, sizeBytes: result.sizeBytes, stageDir,
      };
    } catch (err) {
      if (!blobOut.closed) await new Promise<void>((resolve) => { blobOut.once('close', () => resolve()); blobOut.destroy(); });
      await fs.rm(stageDir, { recursive: true, force: true });
      throw err;
    }
  }

  /**
   * Makes staged layers part of the store, under the store lock: a layer
   * already there (another pull or a load got it first) keeps its dir and
   * ours is dropped; the others move into `layers/` with their blobs, one
   * flush covers them all, then each gets its `layer.json`. Idempotent: a
   * record committed before (by a pull that shared the download) is skipped.
   */
  commitLayers(staged: readonly StagedLayer[]): Promise<void> {
    return this.#mutex.run(STORE, async () => {
      const moved: LayerRecord[] = [];
      for (const st of staged) {
        if (this.#layers.has(st.chainId) || moved.some((m) => m.chainId === st.chainId) || !(await exists(path.join(st.stageDir, 'diff')))) {
          await fs.rm(st.stageDir, { recursive: true, force: true });
          continue;
        }
        const layerDir = this.#p('layers', hex(st.chainId));
        // Only a crash leftover (no layer.json, not in #layers) can be here: layer dirs are made under this lock.
        await fs.rm(layerDir, { recursive: true, force: true });
        const blobFile = this.blobPath(st.blobDigest);
        if (!(await exists(blobFile))) await fs.rename(path.join(st.stageDir, 'blob'), blobFile);
        faultPoint('image:after-blob-write');
        await fs.rm(path.join(st.stageDir, 'blob'), { force: true });
        await fs.rename(st.stageDir, layerDir);
        const link = randomBytes(13).toString('base64url').replace(/[-_]/g, 'x').slice(0, 16).toUpperCase();
        await fs.symlink(`../layers/${hex(st.chainId)}/diff`, this.#p('l', link));
        const { stageDir: _staged, ...rest } = st;
        moved.push({ ...rest, link });
      }
      if (moved.length === 0) return;
      await run('sync', ['-f', this.root], { timeout: 120_000 }).catch((err: unknown) => {
        throw new IsulaError('INTERNAL', `flushing the image store failed: ${String(err)}`, { cause: err });
      });
      for (const record of moved) {
        await writeFileAtomic(this.#p('layers', hex(record.chainId), 'layer.json'), JSON.stringify(record));
        this.#layers.set(record.chainId, record);
      }
    });
  }

  /** Drops staged layers that will not be committed (their scratch only). */
  async discardStaged(staged: readonly StagedLayer[]): Promise<void> {
    for (const st of staged) await fs.rm(st.stageDir, { recursive: true, force: true });
  }

  /**
   * Records a pulled image whose layers are all committed: its config blob,
   * the tag (taken from any other image) and the repo digest. Returns the
   * record and whether the tag already named this image.
   */
  commitPulled(input: { configBytes: Buffer; chainIds: string[]; tag?: string; repoDigest: string }): Promise<{ record: ImageRecord; upToDate: boolean }> {
    return this.#mutex.run(STORE, async () => {
      const id = `sha256:${createHash('sha256').update(input.configBytes).digest('hex')}`;
      const missing = input.chainIds.filter((c) => !this.#layers.has(c));
      if (missing.length > 0) throw new IsulaError('IMAGE_STORE_CORRUPT', `image ${id}: layers ${missing.join(', ')} went missing during the pull; pull again`);
      const config = JSON.parse(input.configBytes.toString('utf8')) as ImageConfig;
      const configFile = this.blobPath(id);
      if (!(await exists(configFile))) await writeFileAtomic(configFile, input.configBytes, { mode: 0o600 });
      const previous = this.#images.get(id);
      const upToDate = previous !== undefined && (input.tag === undefined || previous.repoTags.includes(input.tag)) && previous.repoDigests.includes(input.repoDigest);
      const tags = input.tag !== undefined ? [input.tag] : [];
      const record: ImageRecord = {
        schemaVersion: 1, id,
        repoTags: [...new Set([...(previous?.repoTags ?? []), ...tags])],
        repoDigests: [...new Set([...(previous?.repoDigests ?? []), input.repoDigest])],
        created: typeof config.created === 'string' ? config.created : new Date(0).toISOString(),
        sizeBytes: input.chainIds.reduce((sum, c) => sum + (this.#layers.get(c)?.sizeBytes ?? 0), 0),
        layers: input.chainIds,
        loadedAt: previous?.loadedAt ?? new Date().toISOString(),
      };
      await this.#moveTags(tags, id);
      await this.#writeImage(record);
      this.#log.info({ image: id, tags, repoDigest: input.repoDigest }, 'image pulled');
      return { record, upToDate };
    });
  }

  /** Adds `name@digest` to an image's repo digests (after a push). */
  addRepoDigest(imageId: string, repoDigest: string): Promise<void> {
    return this.#mutex.run(STORE, async () => {
      const img = this.#images.get(imageId);
      if (img === undefined || img.repoDigests.includes(repoDigest)) return;
      await this.#writeImage({ ...img, repoDigests: [...img.repoDigests, repoDigest] });
    });
  }

  // ---- save / import --------------------------------------------------------------

  /**
   * Writes a docker-archive (what `docker save` makes, loadable by `docker load`,
   * `podman load` and `isula load`) of `refs` to `output`. Layers are written
   * uncompressed (`<diff-id-hex>/layer.tar`), as docker does; an image's tags
   * are the ones `refs` named, or all its tags when named by id.
   */
  async save(refs: readonly string[], output: NodeJS.WritableStream, options: { signal?: AbortSignal } = {}): Promise<void> {
    if (refs.length === 0) throw new IsulaError('IMAGE_REFERENCE_INVALID', 'no image to save');
    const picked = new Map<string, { img: ImageRecord; tags: Set<string> }>();
    for (const ref of refs) {
      const { img, reference } = this.#require(ref);
      const entry = picked.get(img.id) ?? { img, tags: new Set<string>() };
      if (reference !== undefined) {
        if (reference.digest === undefined) entry.tags.add(formatReference(reference));
      } else {
        for (const t of img.repoTags) entry.tags.add(t);
      }
      picked.set(img.id, entry);
    }
    const tmp = this.#p('tmp', `save-${randomBytes(6).toString('hex')}`);
    await fs.mkdir(tmp, { mode: 0o700 });
    try {
      const manifest: { Config: string; RepoTags: string[]; Layers: string[] }[] = [];
      const files: string[] = [];
      for (const { img, tags } of picked.values()) {
        const configName = `${hex(img.id)}.json`;
        if (!files.includes(configName)) {
          await fs.link(this.blobPath(img.id), path.join(tmp, configName));
          files.push(configName);
        }
        const layerPaths: string[] = [];
        for (const chainId of img.layers) {
          const layer = this.#layers.get(chainId);
          if (layer === undefined) throw new IsulaError('IMAGE_STORE_CORRUPT', `image ${img.id}: layer ${chainId} is missing`);
          const rel = `${hex(layer.diffId)}/layer.tar`;
          layerPaths.push(rel);
          if (files.includes(hex(layer.diffId))) continue;
          await fs.mkdir(path.join(tmp, hex(layer.diffId)));
          await writeUncompressed(this.blobPath(layer.blobDigest), path.join(tmp, rel), options.signal);
          files.push(hex(layer.diffId));
        }
        manifest.push({ Config: configName, RepoTags: [...tags].map(familiarTag), Layers: layerPaths });
      }
      await fs.writeFile(path.join(tmp, 'manifest.json'), JSON.stringify(manifest));
      files.push('manifest.json');
      const pack = tar.c({ cwd: tmp, portable: true, noDirRecurse: false }, files);
      await pipeline(pack as unknown as NodeJS.ReadableStream, output, ...(options.signal ? [{ signal: options.signal }] : []));
    } finally {
      await fs.rm(tmp, { recursive: true, force: true });
    }
  }

  /**
   * Docker's import: a root filesystem tarball (plain, gzip or zstd) becomes a
   * one-layer image, tagged `reference` when given.
   */
  async import(source: NodeJS.ReadableStream, options: { reference?: string; signal?: AbortSignal; changes?: Record<string, unknown> } = {}): Promise<ImageRecord> {
    const tag = options.reference !== undefined ? formatReference(parseReference(options.reference)) : undefined;
    const tmp = this.#p('tmp', `import-${randomBytes(6).toString('hex')}`);
    await fs.mkdir(tmp, { mode: 0o700 });
    try {
      const layerFile = path.join(tmp, 'layer');
      await pipeline(source, (await fs.open(layerFile, 'wx', 0o600)).createWriteStream(), ...(options.signal ? [{ signal: options.signal }] : []));
      // Extract once to learn the diff id; the store extracts again under the final chain id.
      const probe = await extractLayer(createReadStream(layerFile), path.join(tmp, 'probe'), options.signal ? { signal: options.signal } : {});
      await fs.rm(path.join(tmp, 'probe'), { recursive: true, force: true });
      const now = new Date().toISOString();
      const config: ImageConfig = {
        architecture: process.arch === 'x64' ? 'amd64' : process.arch,
        os: 'linux',
        created: now,
        config: options.changes ?? {},
        rootfs: { type: 'layers', diff_ids: [probe.diffId] },
        history: [{ created: now, created_by: 'isula import', comment: 'Imported from tarball' }],
      };
      const configPath = path.join(tmp, 'config.json');
      await fs.writeFile(configPath, JSON.stringify(config));
      return await this.#mutex.run(STORE, () => this.#commitImage(tmp, {
        configPath,
        layers: [{ path: layerFile, digest: probe.digest, mediaType: 'application/vnd.docker.image.rootfs.diff.tar' }],
        tags: tag !== undefined ? [tag] : [],
      }, options.signal));
    } finally {
      await fs.rm(tmp, { recursive: true, force: true });
    }
  }

  /**
   * Docker's commit: the container's writable layer (layer-tar.ts) on top of
   * its image's layers becomes a new image, tagged `reference` when given.
   * `config` is the new image's ContainerConfig, the history gains one entry
   * (`createdBy`, `author`, `comment`); `exclude` paths the image has nowhere
   * are left out of the layer. Nothing is visible unless it all works.
   */
  async commit(containerId: string, options: { reference?: string; config: Record<string, unknown>; author?: string; comment?: string; createdBy?: string; exclude?: readonly string[]; signal?: AbortSignal }): Promise<ImageRecord> {
    if (!/^[a-f0-9]{12,64}$/.test(containerId)) throw new IsulaError('IMAGE_REFERENCE_INVALID', `invalid container id ${JSON.stringify(containerId)}`);
    const tag = options.reference !== undefined ? formatReference(parseReference(options.reference)) : undefined;
    const dir = this.#p('containers', containerId);
    const imageId = await fs.readFile(path.join(dir, 'image'), 'utf8').catch(() => undefined);
    if (imageId === undefined) throw new IsulaError('CONTAINER_NOT_FOUND', `container ${containerId.slice(0, 12)} has no writable layer in the image store`);
    // A layer remapped for user namespaces holds metadata-only copies (overlay's metacopy):
    // their data is in the image's layers, and their owners are shifted. Not a layer to publish.
    if (await exists(path.join(dir, METACOPY_FILE))) {
      throw new IsulaError('NOT_IMPLEMENTED', `cannot commit container ${containerId.slice(0, 12)}: its root filesystem is remapped for a user namespace (userns-remap)`);
    }
    const parent = this.get(imageId);
    const parentConfig = await this.config(parent);
    const tmp = this.#p('tmp', `commit-${randomBytes(6).toString('hex')}`);
    await fs.mkdir(tmp, { mode: 0o700 });
    try {
      const upper = path.join(dir, 'upper');
      const layerFile = path.join(tmp, 'layer');
      // Excluded only where the image has nothing: what the runtime made, not a change to the image's own file.
      const lowers = parent.layers.map((c) => this.#p('layers', hex(c), 'diff'));
      const exclude = new Set<string>();
      for (const p of options.exclude ?? []) {
        if (!(await Promise.all(lowers.map((l) => exists(path.join(l, p))))).some(Boolean)) exclude.add(p);
      }
      const layer = await writeLayerTar(upper, layerFile, exclude, options.signal);
      const now = new Date().toISOString();
      const parentLayers = parent.layers.map((c) => this.#layers.get(c));
      if (parentLayers.some((l) => l === undefined)) throw new IsulaError('IMAGE_STORE_CORRUPT', `image ${hex(parent.id).slice(0, 12)} lacks a layer`);
      // As docker's: nothing changed is no layer, only a history entry marked empty_layer.
      const empty = layer.entries === 0;
      // The parent's own author and container fields are not this image's.
      const { author: _author, container: _container, container_config: _containerConfig, ...inherited } = parentConfig;
      const config: ImageConfig = {
        ...inherited,
        created: now,
        ...(options.author !== undefined && options.author !== '' ? { author: options.author } : {}),
        container: containerId,
        config: options.config,
        rootfs: { type: 'layers', diff_ids: [...parentLayers.map((l) => l?.diffId ?? ''), ...(empty ? [] : [layer.digest])] },
        history: [
          ...(Array.isArray(parentConfig.history) ? parentConfig.history : []),
          {
            created: now,
            created_by: options.createdBy ?? '',
            ...(options.author !== undefined && options.author !== '' ? { author: options.author } : {}),
            ...(options.comment !== undefined && options.comment !== '' ? { comment: options.comment } : {}),
            ...(empty ? { empty_layer: true } : {}),
          },
        ],
      };
      const configPath = path.join(tmp, 'config.json');
      await fs.writeFile(configPath, JSON.stringify(config));
      return await this.#mutex.run(STORE, () => this.#commitImage(tmp, {
        configPath,
        // The image's own layers are in the store already: #commitImage extracts only the new one.
        layers: [
          ...parentLayers.map((l) => ({ path: this.blobPath(l?.blobDigest ?? ''), digest: l?.blobDigest, mediaType: l?.mediaType ?? '' })),
          ...(empty ? [] : [{ path: layerFile, digest: layer.digest, mediaType: 'application/vnd.docker.image.rootfs.diff.tar' }]),
        ],
        tags: tag !== undefined ? [tag] : [],
      }, options.signal));
    } finally {
      await fs.rm(tmp, { recursive: true, force: true });
    }
  }

  // ---- tag / remove ------------------------------------------------------------

  tag(ref: string, newRef: string): Promise<ImageRecord> {
    return this.#mutex.run(STORE, async () => {
      const img = this.get(ref);
      const parsed = parseReference(newRef);
      if (parsed.digest !== undefined) throw new IsulaError('IMAGE_REFERENCE_INVALID', `cannot tag with a digest reference: ${newRef}`);
      const full = formatReference(parsed);
      await this.#moveTags([full], img.id);
      const updated = { ...img, repoTags: img.repoTags.includes(full) ? img.repoTags : [...img.repoTags, full] };
      await this.#writeImage(updated);
      return updated;
    });
  }

  /**
   * Docker's rmi: a name removes that tag, and the image when it was the last
   * tag; an id removes the image (with `force`, even when it has several tags).
   * Refuses while a container uses the image (IMAGE_IN_USE, naming it).
   */
  remove(ref: string, options: { force?: boolean } = {}): Promise<{ untagged: string[]; deleted: string[] }> {
    return this.#mutex.run(STORE, async () => {
      const { img, reference } = this.#require(ref);
      const untagged: string[] = [];
      if (reference !== undefined) {
        const full = formatReference(reference);
        if (img.repoTags.length > 1 || (reference.digest === undefined && img.repoTags.length === 1 && img.repoTags[0] !== full)) {
          const updated = { ...img, repoTags: img.repoTags.filter((t) => t !== full) };
          await this.#writeImage(updated);
          return { untagged: [full], deleted: [] };
        }
      } else if (img.repoTags.length > 1 && options.force !== true) {
        throw new IsulaError('IMAGE_IN_USE', `conflict: unable to delete ${hex(img.id).slice(0, 12)} (must be forced) - image is referenced in multiple repositories`);
      }
      const users = this.usersOf(img.id);
      if (users.length > 0) {
        throw new IsulaError('IMAGE_IN_USE', `conflict: unable to remove image ${ref} (cannot be forced) - image is being used by container ${users.map((u) => u.slice(0, 12)).join(', ')}`);
      }
      untagged.push(...img.repoTags, ...img.repoDigests);
      await fs.rm(this.#p('images', `${hex(img.id)}.json`), { force: true });
      this.#images.delete(img.id);
      const deleted = [img.id];
      // Layers no remaining image uses, top first.
      const stillUsed = new Set([...this.#images.values()].flatMap((i) => i.layers));
      for (const chainId of [...img.layers].reverse()) {
        const layer = this.#layers.get(chainId);
        if (layer && !stillUsed.has(chainId) && !this.#pins.has(chainId)) { await this.#removeLayer(layer); deleted.push(chainId); }
      }
      await fs.rm(this.blobPath(img.id), { force: true });
      return { untagged, deleted };
    });
  }

  async #removeLayer(layer: LayerRecord): Promise<void> {
    // Out of the map first: a pull that checks hasLayer meanwhile fetches it again.
    this.#layers.delete(layer.chainId);
    // layer.json first: a crash after it leaves a dir that open() recognises as a leftover.
    await fs.rm(this.#p('layers', hex(layer.chainId), 'layer.json'), { force: true });
    await fs.rm(this.#p('l', layer.link), { force: true });
    await fs.rm(this.#p('layers', hex(layer.chainId)), { recursive: true, force: true });
    if (![...this.#layers.values()].some((l) => l !== layer && l.blobDigest === layer.blobDigest)) await fs.rm(this.blobPath(layer.blobDigest), { force: true });
  }

  // ---- container root filesystems ------------------------------------------------

  /**
   * Creates the container's writable layer (upper, work, merged dirs and the
   * `image` file naming its image) without mounting; idempotent. Returns the
   * merged path. The image is in use from here on.
   */
  async prepareRootfs(containerId: string, imageRef: string): Promise<string> {
    if (!/^[a-f0-9]{12,64}$/.test(containerId)) throw new IsulaError('IMAGE_REFERENCE_INVALID', `invalid container id ${JSON.stringify(containerId)}`);
    const img = this.get(imageRef);
    const dir = this.#p('containers', containerId);
    this.#users.set(containerId, img.id);
    if (await fs.readFile(path.join(dir, 'image'), 'utf8').then((s) => s === img.id, () => false)) return path.join(dir, 'merged');
    for (const d of ['upper', 'work', 'merged']) await fs.mkdir(path.join(dir, d), { recursive: true, mode: 0o755 });
    // overlay's root takes the upper dir's mode: give it the top layer's root mode (0755 for
    // any usual image), not whatever the daemon's umask (0027 when secure) left. A 0750 `/`
    // locks out a non-root user without CAP_DAC_OVERRIDE (run -u 65534 --cap-drop ALL).
    const top = img.layers[img.layers.length - 1];
    const rootMode = top === undefined ? 0o755 : (await fs.stat(this.#p('layers', hex(top), 'diff')).then((st) => st.mode & 0o7777, () => 0o755));
    await fs.chmod(path.join(dir, 'upper'), rootMode);
    await writeFileAtomic(path.join(dir, 'image'), img.id, { mode: 0o600 });
    return path.join(dir, 'merged');
  }

  /**
   * What the container's writable layer changed against its image, as
   * Docker's overlay2 `Changes` (moby's pkg/archive `OverlayChanges`): the
   * upper dir walked depth-first in name order; a 0/0 character device or an
   * opaque directory is a deletion (the opaque one's new contents follow as
   * additions), a path found in any layer is a modification (a directory only
   * when its size, mode or mtime differ), anything else an addition; the
   * parent of an addition or deletion is listed as modified once, before it.
   */
  async changes(containerId: string): Promise<LayerChange[]> {
    if (!/^[a-f0-9]{12,64}$/.test(containerId)) throw new IsulaError('IMAGE_REFERENCE_INVALID', `invalid container id ${JSON.stringify(containerId)}`);
    const dir = this.#p('containers', containerId);
    const imageId = await fs.readFile(path.join(dir, 'image'), 'utf8').catch(() => undefined);
    if (imageId === undefined) throw new IsulaError('CONTAINER_NOT_FOUND', `container ${containerId.slice(0, 12)} has no writable layer in the image store`);
    const lowers = [...this.get(imageId).layers].reverse().map((c) => this.#p('layers', hex(c), 'diff'));
    const upper = path.join(dir, 'upper');
    const opaque = await opaqueDirs(upper);
    const out: LayerChange[] = [];
    const changedDirs = new Set<string>();
    await walkUpper(upper, async ({ rel, st }) => {
      const p = `/${rel}`;
      let kind: LayerChange['Kind'] | undefined;
      if ((st.isCharacterDevice() && st.rdev === 0n) || (st.isDirectory() && opaque.has(p))) kind = CHANGE_DELETE;
      else {
        kind = CHANGE_ADD;
        for (const lower of lowers) {
          const ls = await fs.stat(path.join(lower, p), { bigint: true }).catch(() => undefined);
          if (ls === undefined) continue;
          // A directory that is only there as the parent of a change is no change of its own.
          if (ls.isDirectory() && st.isDirectory() && ls.size === st.size && ls.mode === st.mode && sameFsTime(ls.mtimeNs, st.mtimeNs)) kind = undefined;
          else kind = CHANGE_MODIFY;
          break;
        }
      }
      if (kind === undefined) return; // walked into, not listed (and not counted as listed: a change below lists it)
      if (st.isDirectory()) changedDirs.add(p);
      const parent = path.posix.dirname(p);
      if ((kind === CHANGE_ADD || kind === CHANGE_DELETE) && parent !== '/' && !changedDirs.has(parent)) {
        out.push({ Path: parent, Kind: CHANGE_MODIFY });
        changedDirs.add(parent);
      }
      out.push({ Path: p, Kind: kind });
    });
    return out;
  }

  /** Mounts the container's overlay (idempotent) and returns the merged path. */
  async mountRootfs(containerId: string, imageRef: string): Promise<string> {
    const merged = await this.prepareRootfs(containerId, imageRef);
    if (await isMountPoint(merged)) return merged;
    const img = this.get(imageRef);
    const dir = path.dirname(merged);
    const lower = [...img.layers].reverse().map((c) => `l/${this.#layers.get(c)?.link ?? ''}`).join(':');
    const rel = `containers/${containerId}`;
    // A remapped layer holds metadata-only copies: it must never be mounted without metacopy again.
    // (remapRootfs writes the marker before it starts and `idmap` only after it.)
    const metacopy = (await exists(path.join(dir, METACOPY_FILE))) ? ',metacopy=on' : '';
    // Relative paths from the store root keep the options far below overlay's 4 KiB limit.
    await run('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${lower},upperdir=${rel}/upper,workdir=${rel}/work${metacopy}`, merged], { cwd: this.root, timeout: 30_000 })
      .catch((err: unknown) => { throw new IsulaError('INTERNAL', `mounting the rootfs of ${containerId} failed: ${(err as { stderr?: string }).stderr ?? String(err)}`, { cause: err }); });
    return merged;
  }

  /**
   * Shifts the ownership of every file the container sees into a user
   * namespace's host range (container id N < size becomes start + N), for
   * `userns-remap`. The overlay is mounted with `metacopy=on`, so a chown
   * copies up metadata only: the image's layers stay shared and untouched.
   * `idmap` is written when the walk is complete: a second call with the
   * same map is a no-op. A walk cut short by a crash is not resumed: core
   * calls this at create, before the container's record exists, and
   * discards a half-created container's layer at the next start.
   */
  async remapRootfs(containerId: string, imageRef: string, map: { uid: number; gid: number; size: number }): Promise<void> {
    const dir = this.#p('containers', containerId);
    const want = JSON.stringify({ uid: map.uid, gid: map.gid, size: map.size });
    const done = await fs.readFile(path.join(dir, REMAP_FILE), 'utf8').catch(() => undefined);
    if (done !== undefined) {
      if (done === want) return;
      throw new IsulaError('CONTAINER_CONFIG_INVALID', `the rootfs of ${containerId.slice(0, 12)} is already remapped to ${done}, not ${want}`);
    }
    const merged = path.join(dir, 'merged');
    // The remapped root must reach its rootfs: search permission on the shared way down (Docker's
    // 0711 roots), and the container's dir 0710 with the range's root group, so no other host
    // user walks into the container's files (CVE-2021-41091).
    for (const d of [this.root, this.#p('containers')]) await fs.chmod(d, 0o711);
    await fs.chown(dir, 0, map.gid);
    await fs.chmod(dir, 0o710);
    const wasMounted = await isMountPoint(merged);
    // The marker first: from here every mount of this layer has metacopy on.
    if (!(await exists(path.join(dir, METACOPY_FILE)))) {
      if (wasMounted) await run('umount', [merged], { timeout: 30_000 });
      await writeFileAtomic(path.join(dir, METACOPY_FILE), '', { mode: 0o600 });
    }
    await this.mountRootfs(containerId, imageRef);
    try {
      await shiftOwnership(merged, map);
    } finally {
      if (!wasMounted) await this.unmountRootfs(containerId);
    }
    await writeFileAtomic(path.join(dir, REMAP_FILE), want, { mode: 0o600 });
  }

  async unmountRootfs(containerId: string): Promise<void> {
    const merged = this.#p('containers', containerId, 'merged');
    if (await isMountPoint(merged)) await run('umount', [merged], { timeout: 30_000 });
  }

  async removeRootfs(containerId: string): Promise<void> {
    await this.unmountRootfs(containerId);
    await fs.rm(this.#p('containers', containerId), { recursive: true, force: true });
    this.#users.delete(containerId);
  }
}

interface Descriptor {
  digest: string;
  mediaType?: string;
  size?: number;
  annotations?: Record<string, string>;
  platform?: { os?: string; architecture?: string };
}

interface ArchiveImage {
  configPath: string;
  layers: { path: string; digest: string | undefined; mediaType: string }[];
  tags: string[];
}

/** Copies a layer blob as an uncompressed tar (docker-archive layers are plain tars). */
async function writeUncompressed(blob: string, dest: string, signal: AbortSignal | undefined): Promise<void> {
  const head = Buffer.alloc(4);
  const fh = await fs.open(blob, 'r');
  try { await fh.read(head, 0, 4, 0); } finally { await fh.close(); }
  const isGzip = head[0] === 0x1f && head[1] === 0x8b;
  const isZstd = head.readUInt32LE(0) === 0xfd2fb528;
  if (!isGzip && !isZstd) {
    await fs.link(blob, dest).catch(() => fs.copyFile(blob, dest));
    return;
  }
  const zlib = await import('node:zlib');
  const decompress = isGzip ? zlib.createGunzip() : zlib.createZstdDecompress();
  await pipeline(createReadStream(blob), decompress, (await fs.open(dest, 'wx', 0o600)).createWriteStream(), ...(signal ? [{ signal }] : []));
}

/** Written when a container's layer has been remapped (its JSON is the map). */
const REMAP_FILE = 'idmap';
/** Written before remapping starts: the layer is mounted with metacopy from then on. */
const METACOPY_FILE = 'metacopy';

/** lchown of every entry under `root` (itself included), on one file system, into the map's range. */
async function shiftOwnership(root: string, map: { uid: number; gid: number; size: number }): Promise<void> {
  // A walk cut short by a crash is never resumed (create discards the layer), so the shift need not be idempotent.
  const shift = (id: number, start: number): number => (id < map.size ? id + start : id);
  const rootDev = (await fs.lstat(root)).dev;
  const stack = [root];
  for (let guard = 0; stack.length > 0; guard++) {
    if (guard > 10_000_000) throw new IsulaError('INTERNAL', `remapping ${root}: too many files`);
    const p = stack.pop() as string;
    const st = await fs.lstat(p);
    if (st.dev !== rootDev) continue;
    const uid = shift(st.uid, map.uid);
    const gid = shift(st.gid, map.gid);
    if (uid !== st.uid || gid !== st.gid) {
      await fs.lchown(p, uid, gid);
      // chown clears set-id bits on files; the image's must survive.
      if (!st.isSymbolicLink() && (st.mode & 0o6000) !== 0) await fs.chmod(p, st.mode & 0o7777);
    }
    if (st.isDirectory()) for (const name of await fs.readdir(p)) stack.push(path.join(p, name));
  }
}

function exists(p: string): Promise<boolean> {
  return fs.access(p).then(() => true, () => false);
}

/** An overlay mounted on `p` has its own device; an empty mount point has its parent's. */
async function isMountPoint(p: string): Promise<boolean> {
  const [self, parent] = await Promise.all([fs.stat(p).catch(() => undefined), fs.stat(path.dirname(p)).catch(() => undefined)]);
  return self !== undefined && parent !== undefined && self.dev !== parent.dev;
}

/** Docker's change kinds (`archive.ChangeType`): modified, added, deleted. */
export const CHANGE_MODIFY = 0;
export const CHANGE_ADD = 1;
export const CHANGE_DELETE = 2;
export interface LayerChange { Path: string; Kind: typeof CHANGE_MODIFY | typeof CHANGE_ADD | typeof CHANGE_DELETE }

/** Go's `sameFsTime`: equal, or the same second when either lacks nanoseconds. */
function sameFsTime(a: bigint, b: bigint): boolean {
  return a === b || (a / 1_000_000_000n === b / 1_000_000_000n && (a % 1_000_000_000n === 0n || b % 1_000_000_000n === 0n));
}

/** The directories under `upper` that overlay marked opaque (`trusted.overlay.opaque=y`), as `/rel/path`s: one getfattr for the tree. */
async function opaqueDirs(upper: string): Promise<Set<string>> {
  // -d -m (a dump of matching names) prints only the files that have it; -n would print an
  // error line for every other file.
  return opaqueDirsIn(await readXattrs(upper, { match: '^trusted\\.overlay\\.opaque$' }));
}
