/**
 * Pull: manifest (an index picks the platform), config, then the missing
 * layers downloaded in parallel (bounded daemon-wide) and unpacked while they
 * download, each verified by size, digest and diff id as it streams. Layers
 * in flight are shared between concurrent pulls; layers a failed pull
 * finished are kept (committed) so a retry does not fetch them again; the
 * image record is written last, so a failed pull leaves no image.
 */
import { createHash } from 'node:crypto';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Logger } from 'pino';
import { IsulaError, type PullOptions, type PullResult, type RegistryAuth, type TransferProgress } from '@isula/core';
import { SHA256_DIGEST, shortDigest } from '../digest.js';
import { familiarName, familiarTag, formatReference, parseReference, type Reference } from '../reference.js';
import { chainIds, checkImageConfig, type ImageConfig, type ImageStore, type StagedLayer } from '../store.js';
import { Authenticator, RepoSession } from './client.js';
import { pullEndpoints, type Endpoint, type RegistrySettings } from './endpoints.js';
import { discard, header, readLimited, transportError, type Transport } from './http.js';

export const MEDIA = {
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerSchema1: 'application/vnd.docker.distribution.manifest.v1+json',
  dockerSchema1Signed: 'application/vnd.docker.distribution.manifest.v1+prettyjws',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociLayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
} as const;

/** Manifests are small; distribution itself refuses more than 4 MiB. */
export const MANIFEST_LIMIT = 4 * 1024 * 1024;
export const CONFIG_LIMIT = 16 * 1024 * 1024;
const ACCEPT = [MEDIA.ociIndex, MEDIA.ociManifest, MEDIA.dockerList, MEDIA.dockerManifest, MEDIA.dockerSchema1Signed, MEDIA.dockerSchema1].join(', ');
const LAYER_TYPES = /^application\/vnd\.(?:oci\.image\.layer\.v1\.tar(?:\+gzip|\+zstd)?|docker\.image\.rootfs\.diff\.tar(?:\.gzip)?)$/;

interface Descriptor {
  mediaType?: string;
  digest: string;
  size: number;
  platform?: { os?: string; architecture?: string; variant?: string };
}

interface Manifest {
  config: Descriptor;
  layers: Descriptor[];
}

export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

const ARCH: Record<string, string> = { x64: 'amd64', ia32: '386', arm64: 'arm64', arm: 'arm', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64', loong64: 'loong64' };

export function parsePlatform(text: string | undefined): Platform {
  if (text === undefined || text === '') return { os: 'linux', architecture: ARCH[process.arch] ?? process.arch, ...(process.arch === 'arm64' && { variant: 'v8' }) };
  const [os, architecture, variant] = text.toLowerCase().split('/');
  if (os === undefined || os === '' || architecture === undefined || architecture === '') {
    throw new IsulaError('IMAGE_REFERENCE_INVALID', `invalid platform ${JSON.stringify(text)}: want os/arch[/variant], e.g. linux/amd64`);
  }
  return { os, architecture: architecture === 'x86_64' ? 'amd64' : architecture === 'aarch64' ? 'arm64' : architecture, ...(variant !== undefined && variant !== '' && { variant }) };
}

const sha256 = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

function descriptor(d: unknown, what: string): Descriptor {
  const o = d as Record<string, unknown> | null;
  if (typeof o !== 'object' || o === null || typeof o['digest'] !== 'string' || !SHA256_DIGEST.test(o['digest']) || typeof o['size'] !== 'number' || !Number.isSafeInteger(o['size']) || o['size'] < 0) {
    throw new IsulaError('REGISTRY_REPLY_INVALID', `${what}: a descriptor without a sha256 digest and a size`);
  }
  return o as unknown as Descriptor;
}

/** A counting semaphore. */
export class Limiter {
  #free: number;
  readonly #queue: (() => void)[] = [];
  constructor(n: number) {
    this.#free = n;
  }
  async run<T>(fn: () => Promise<T>, onWait?: () => void): Promise<T> {
    if (this.#free > 0) this.#free -= 1;
    else {
      onWait?.();
      await new Promise<void>((resolve) => this.#queue.push(resolve));
    }
    try {
      return await fn();
    } finally {
      const next = this.#queue.shift();
      if (next !== undefined) next(); else this.#free += 1;
    }
  }
}

/** Counts bytes as they pass, refuses more than `size`, fewer at the end, and reports progress. */
function meter(size: number, what: string, onBytes: (n: number) => void): Transform {
  let seen = 0;
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      seen += chunk.length;
      if (seen > size) { cb(new IsulaError('REGISTRY_REPLY_INVALID', `${what}: the registry sent more than the ${size} bytes the manifest gives`)); return; }
      onBytes(seen);
      cb(null, chunk);
    },
    flush(cb) {
      cb(seen < size ? new IsulaError('REGISTRY_REPLY_INVALID', `${what}: truncated: ${seen} of ${size} bytes`) : null);
    },
  });
}

/** What a pull or a push works with. */
export interface TransferDeps {
  store: ImageStore;
  transport: Transport;
  auth: Authenticator;
  settings: RegistrySettings;
  log: Logger;
}

export class Puller {
  readonly #d: TransferDeps;
  readonly #downloads: Limiter;
  /** Layers being downloaded, by chain id: a second pull waits for the first's. */
  readonly #inflight = new Map<string, SharedDownload>();

  constructor(deps: TransferDeps) {
    this.#d = deps;
    this.#downloads = new Limiter(deps.settings.maxConcurrentDownloads);
  }

  session(ep: Endpoint, repo: string, override: RegistryAuth | undefined): RepoSession {
    return new RepoSession({ ep, repo, transport: this.#d.transport, auth: this.#d.auth, actions: 'pull', override, log: this.#d.log });
  }

  async pull(reference: string, opts: PullOptions): Promise<PullResult> {
    const ref = parseReference(reference);
    const domain = ref.name.slice(0, ref.name.indexOf('/'));
    const repo = ref.name.slice(domain.length + 1);
    const platform = parsePlatform(opts.platform);
    const progress = opts.onProgress ?? (() => undefined);
    const what = formatReference({ ...ref, name: familiarName(ref.name) });

    // The manifest: from each endpoint in turn (mirrors first) until one has it.
    const endpoints = pullEndpoints(domain, this.#d.settings);
    let found: { session: RepoSession; manifest: Manifest; digest: string } | undefined;
    const failures: { e: IsulaError; mirror: boolean }[] = [];
    for (const ep of endpoints) {
      // Credentials sent with the request are the registry's: a mirror uses its own stored ones.
      const session = this.session(ep, repo, ep.mirror ? undefined : opts.auth);
      try {
        found = await this.#resolve(session, ref, platform, what, opts.signal);
        break;
      } catch (err) {
        const e = err instanceof IsulaError ? err : new IsulaError('REGISTRY_UNAVAILABLE', String(err), { cause: err });
        if (e.code === 'CANCELED' || e.code === 'IMAGE_MANIFEST_UNSUPPORTED' || e.code === 'IMAGE_PLATFORM_NOT_FOUND' || e.code === 'IMAGE_DIGEST_MISMATCH') throw e;
        // The registry answered over HTTPS: its answer stands (no plain-HTTP retry with the same credentials).
        if (!ep.mirror && ep.tls !== undefined && e.code !== 'REGISTRY_UNAVAILABLE' && e.code !== 'REGISTRY_TIMEOUT') throw e;
        failures.push({ e, mirror: ep.mirror });
        this.#d.log.info({ endpoint: ep.base, err: e.message }, ep.mirror ? 'mirror failed; trying the next endpoint' : 'endpoint failed');
      }
    }
    if (found === undefined) {
      // The registry's own answer tells the user most: a mirror's miss is expected, and an
      // https attempt refused before the http fallback adds nothing.
      const origin = failures.filter((f) => !f.mirror).map((f) => f.e);
      const answered = origin.find((e) => e.code !== 'REGISTRY_UNAVAILABLE' && e.code !== 'REGISTRY_TIMEOUT');
      throw answered ?? origin[origin.length - 1] ?? failures[failures.length - 1]?.e ?? new IsulaError('REGISTRY_UNAVAILABLE', `no endpoint for ${domain}`);
    }
    const { session, manifest, digest } = found;
    progress({ id: ref.tag ?? ref.digest ?? 'latest', status: `Pulling from ${repo}` });

    // The config names the layers' diff ids, hence their chain ids in the store.
    const configBytes = await this.#blobBytes(session, manifest.config, CONFIG_LIMIT, 'image config', opts.signal);
    let config: ImageConfig;
    try {
      config = JSON.parse(configBytes.toString('utf8')) as ImageConfig;
    } catch (err) {
      throw new IsulaError('REGISTRY_REPLY_INVALID', `${what}: the image config is not JSON`, { cause: err });
    }
    checkImageConfig(config, 'REGISTRY_REPLY_INVALID', `${what}: the image config`);
    const diffIds = config.rootfs?.diff_ids;
    if (!Array.isArray(diffIds) || diffIds.length !== manifest.layers.length || !diffIds.every((d) => typeof d === 'string' && SHA256_DIGEST.test(d))) {
      throw new IsulaError('REGISTRY_REPLY_INVALID', `${what}: the config's rootfs.diff_ids do not match the manifest's ${manifest.layers.length} layers`);
    }
    if (diffIds.length === 0) throw new IsulaError('IMAGE_MANIFEST_UNSUPPORTED', `${what} has no layers: isula needs at least one for the root filesystem`);
    const chains = chainIds(diffIds);
    const unpin = this.#d.store.pin(chains);
    try {
      // Asked once per layer: the progress line and the download agree.
      const fetching = chains.map((c) => !this.#d.store.hasLayer(c));
      for (const [i, l] of manifest.layers.entries()) progress({ id: shortDigest(l.digest), status: fetching[i] === true ? 'Pulling fs layer' : 'Already exists' });
      const jobs = manifest.layers.map((layer, i) => (fetching[i] !== true
        ? Promise.resolve(undefined)
        : this.#layer(session, { chainId: chains[i] as string, parent: chains[i - 1] ?? null, diffId: diffIds[i] as string, layer }, progress, opts.signal)));
      const settled = await Promise.allSettled(jobs);
      const done = settled.flatMap((r) => (r.status === 'fulfilled' && r.value !== undefined ? [r.value] : []));
      // Keep what finished, also when another layer failed: a retry will not fetch it again.
      await this.#d.store.commitLayers(done);
      this.#settled(done.map((l) => l.chainId));
      const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed !== undefined) throw failed.reason;
      for (const [i, layer] of manifest.layers.entries()) if (fetching[i] === true) progress({ id: shortDigest(layer.digest), status: 'Pull complete' });
      const tag = ref.tag !== undefined ? formatReference({ name: ref.name, tag: ref.tag }) : undefined;
      const { record, upToDate } = await this.#d.store.commitPulled({ configBytes, chainIds: chains, ...(tag !== undefined && { tag }), repoDigest: `${ref.name}@${digest}` });
      return { reference: tag !== undefined ? familiarTag(tag) : `${familiarName(ref.name)}@${digest}`, format: 'oci', id: record.id, digest, upToDate };
    } finally {
      unpin();
    }
  }

  /** The image manifest for the platform, and the digest the reference resolves to (an index's own). */
  async #resolve(session: RepoSession, ref: Reference, platform: Platform, what: string, signal: AbortSignal | undefined): Promise<{ session: RepoSession; manifest: Manifest; digest: string }> {
    const top = await this.#manifest(session, ref.digest ?? ref.tag ?? 'latest', ref.digest, what, signal);
    let doc = top.doc;
    let mediaType = top.mediaType;
    if (mediaType === MEDIA.ociIndex || mediaType === MEDIA.dockerList) {
      const list = (Array.isArray(doc['manifests']) ? doc['manifests'] : []).map((m, i) => descriptor(m, `${what}: index entry ${i}`));
      const want = `${platform.os}/${platform.architecture}${platform.variant !== undefined ? `/${platform.variant}` : ''}`;
      const pick = list.find((m) => m.platform?.os === platform.os && m.platform.architecture === platform.architecture && (platform.variant === undefined || m.platform.variant === undefined || m.platform.variant === platform.variant));
      if (pick === undefined) {
        const have = list.map((m) => `${m.platform?.os ?? '?'}/${m.platform?.architecture ?? '?'}${m.platform?.variant !== undefined ? `/${m.platform.variant}` : ''}`);
        throw new IsulaError('IMAGE_PLATFORM_NOT_FOUND', `no matching manifest for ${want} in the manifest list entries of ${what} (it has ${have.join(', ') || 'none'})`);
      }
      const child = await this.#manifest(session, pick.digest, pick.digest, what, signal);
      doc = child.doc;
      mediaType = child.mediaType;
      if (mediaType === MEDIA.ociIndex || mediaType === MEDIA.dockerList) throw new IsulaError('IMAGE_MANIFEST_UNSUPPORTED', `${what}: an index inside an index`);
    }
    if (mediaType !== MEDIA.ociManifest && mediaType !== MEDIA.dockerManifest) throw new IsulaError('IMAGE_MANIFEST_UNSUPPORTED', `${what}: unsupported manifest media type ${JSON.stringify(mediaType)}`);
    const config = descriptor(doc['config'], `${what}: config`);
    if (!Array.isArray(doc['layers'])) throw new IsulaError('REGISTRY_REPLY_INVALID', `${what}: the manifest has no layers list`);
    const layers = doc['layers'].map((l, i) => descriptor(l, `${what}: layer ${i}`));
    for (const l of layers) {
      if (l.mediaType !== undefined && !LAYER_TYPES.test(l.mediaType)) throw new IsulaError('IMAGE_MANIFEST_UNSUPPORTED', `${what}: layer ${shortDigest(l.digest)} has the unsupported media type ${l.mediaType}`);
    }
    return { session, manifest: { config, layers }, digest: top.digest };
  }

  async #manifest(session: RepoSession, tagOrDigest: string, digest: string | undefined, what: string, signal: AbortSignal | undefined): Promise<{ doc: Record<string, unknown>; mediaType: string; digest: string }> {
    const reply = await session.request({ method: 'GET', path: `manifests/${tagOrDigest}`, headers: { accept: ACCEPT }, ok: [200] }, signal, `manifest for ${what}`)
      .catch((err: unknown) => {
        if (err instanceof IsulaError && err.code === 'IMAGE_NOT_FOUND') throw new IsulaError('IMAGE_NOT_FOUND', `manifest for ${what} not found: ${err.message.slice(`manifest for ${what}: `.length)}`, { details: { endpoint: session.ep.base } });
        throw err;
      });
    const bytes = await readLimited(reply, MANIFEST_LIMIT, `manifest for ${what}`);
    const actual = sha256(bytes);
    if (digest !== undefined && actual !== digest) throw new IsulaError('IMAGE_DIGEST_MISMATCH', `manifest for ${what}: the registry sent ${actual}, not the ${digest} asked for`);
    let doc: Record<string, unknown>;
    try {
      doc = JSON.parse(bytes.toString('utf8')) as Record<string, unknown>;
    } catch (err) {
      throw new IsulaError('REGISTRY_REPLY_INVALID', `manifest for ${what} is not JSON`, { cause: err });
    }
    if (typeof doc !== 'object' || doc === null) throw new IsulaError('REGISTRY_REPLY_INVALID', `manifest for ${what} is not a JSON object`);
    const contentType = (header(reply, 'content-type') ?? '').split(';')[0]?.trim() ?? '';
    const mediaType = typeof doc['mediaType'] === 'string' ? doc['mediaType'] : contentType;
    if (doc['schemaVersion'] === 1 || mediaType === MEDIA.dockerSchema1 || mediaType === MEDIA.dockerSchema1Signed) {
      throw new IsulaError('IMAGE_MANIFEST_UNSUPPORTED', `${what} has a Docker image manifest schema 1, which is deprecated and not supported: push the image again with a current client (schema 2 or OCI)`);
    }
    const resolved = mediaType !== '' ? mediaType : Array.isArray(doc['manifests']) ? MEDIA.ociIndex : MEDIA.ociManifest;
    return { doc, mediaType: resolved, digest: actual };
  }

  async #blobBytes(session: RepoSession, d: Descriptor, limit: number, what: string, signal: AbortSignal | undefined): Promise<Buffer> {
    if (d.size > limit) throw new IsulaError('REGISTRY_REPLY_INVALID', `${what} ${shortDigest(d.digest)}: ${d.size} bytes is over the ${limit}-byte limit`);
    const reply = await session.request({ method: 'GET', path: `blobs/${d.digest}`, ok: [200] }, signal, `${what} ${shortDigest(d.digest)}`);
    const bytes = await readLimited(reply, d.size, `${what} ${shortDigest(d.digest)}`);
    if (bytes.length !== d.size) throw new IsulaError('REGISTRY_REPLY_INVALID', `${what} ${shortDigest(d.digest)}: truncated: ${bytes.length} of ${d.size} bytes`);
    if (sha256(bytes) !== d.digest) throw new IsulaError('IMAGE_DIGEST_MISMATCH', `${what} ${shortDigest(d.digest)}: the content does not match its digest`);
    return bytes;
  }

  /**
   * One layer, shared with any concurrent pull of the same chain id; retried
   * on transport errors. The shared download has its own abort: it stops
   * only when every pull waiting for it has gone. A pull that joined another's
   * download and saw it fail (that pull's credentials or endpoint) tries once
   * with its own session.
   */
  #layer(session: RepoSession, l: LayerJob, progress: (p: TransferProgress) => void, signal: AbortSignal | undefined, joined = false): Promise<StagedLayer> {
    const id = shortDigest(l.layer.digest);
    let shared = this.#inflight.get(l.chainId);
    const owner = shared === undefined;
    if (shared === undefined) {
      const controller = new AbortController();
      const entry: SharedDownload = { controller, waiters: 0, promise: Promise.resolve() as unknown as Promise<StagedLayer> };
      entry.promise = this.#downloads.run(async () => {
        for (let attempt = 1; ; attempt += 1) {
          try {
            return await this.#download(session, l, id, progress, controller.signal);
          } catch (err) {
            const retry = attempt < 3 && err instanceof IsulaError && (err.code === 'REGISTRY_UNAVAILABLE' || err.code === 'REGISTRY_TIMEOUT') && !controller.signal.aborted;
            if (!retry) throw err;
            progress({ id, status: `Retrying in ${attempt} second${attempt > 1 ? 's' : ''}` });
            await new Promise((r) => setTimeout(r, attempt * 1000));
          }
        }
      }, () => progress({ id, status: 'Waiting' }));
      // The entry stays until a pull commits the layer (pull() drops it) or the download fails;
      // a download nobody waits for any more is dropped with its scratch.
      entry.promise.then(async (staged) => {
        if (entry.waiters > 0) return;
        if (this.#inflight.get(l.chainId) === entry) this.#inflight.delete(l.chainId);
        await this.#d.store.discardStaged([staged]);
      }, () => { if (this.#inflight.get(l.chainId) === entry) this.#inflight.delete(l.chainId); }).catch(() => undefined);
      this.#inflight.set(l.chainId, entry);
      shared = entry;
    } else {
      progress({ id, status: 'Waiting' });
    }
    const s = shared;
    s.waiters += 1;
    const onAbort = (): void => {
      s.waiters -= 1;
      if (s.waiters === 0) s.controller.abort();
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    return untilAborted(s.promise, signal).finally(() => signal?.removeEventListener('abort', onAbort)).then(
      (staged) => {
        if (!owner) progress({ id, status: 'Download complete' });
        return staged;
      },
      (err: unknown) => {
        if (!owner && !joined && signal?.aborted !== true) return this.#layer(session, l, progress, signal, true);
        throw err;
      },
    );
  }

  /** After a pull committed layers: their shared downloads are done with. */
  #settled(chains: readonly string[]): void {
    for (const c of chains) if (this.#d.store.hasLayer(c)) this.#inflight.delete(c);
  }

  async #download(session: RepoSession, l: LayerJob, id: string, progress: (p: TransferProgress) => void, signal: AbortSignal): Promise<StagedLayer> {
    const what = `layer ${id}`;
    const reply = await session.request({ method: 'GET', path: `blobs/${l.layer.digest}`, ok: [200] }, signal, what);
    const total = l.layer.size;
    const declared = Number(header(reply, 'content-length') ?? NaN);
    if (Number.isFinite(declared) && declared !== total) {
      discard(reply);
      throw new IsulaError('REGISTRY_REPLY_INVALID', `${what}: the registry announces ${declared} bytes, the manifest ${total}`);
    }
    let last = 0;
    progress({ id, status: 'Downloading', current: 0, total });
    const counted = meter(total, what, (n) => {
      const now = Date.now();
      if (now - last >= 100 || n === total) { last = now; progress({ id, status: 'Downloading', current: n, total }); }
    });
    // pipeline: a failure on either side ends the other (the socket is never left paused);
    // the body's own errors (a stall, a cut connection) become the engine's, so they are retried.
    const stallMs = this.#d.transport.stallMs;
    const body = async function* (): AsyncGenerator<Buffer> {
      try {
        for await (const chunk of reply.body as AsyncIterable<Buffer>) yield chunk;
      } catch (err) {
        throw transportError(err, reply.url, stallMs);
      }
    };
    pipeline(body, counted).catch(() => undefined);
    const record = await this.#d.store.stageLayer({ chainId: l.chainId, parent: l.parent, diffId: l.diffId, digest: l.layer.digest, mediaType: l.layer.mediaType ?? MEDIA.ociLayerGzip }, counted, signal);
    progress({ id, status: 'Verifying Checksum' });
    progress({ id, status: 'Download complete' });
    progress({ id, status: 'Extracting', current: total, total });
    return record;
  }
}

interface LayerJob {
  chainId: string;
  parent: string | null;
  diffId: string;
  layer: Descriptor;
}

interface SharedDownload {
  promise: Promise<StagedLayer>;
  controller: AbortController;
  /** Pulls waiting for it that have not gone. */
  waiters: number;
}

/** `p`, or CANCELED as soon as `signal` aborts (the work behind `p` may go on for others). */
function untilAborted<T>(p: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (signal === undefined) return p;
  if (signal.aborted) return Promise.reject(new IsulaError('CANCELED', 'pull canceled'));
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(new IsulaError('CANCELED', 'pull canceled'));
    signal.addEventListener('abort', onAbort, { once: true });
    p.then((v) => { signal.removeEventListener('abort', onAbort); resolve(v); }, (e: unknown) => { signal.removeEventListener('abort', onAbort); reject(e as Error); });
  });
}
