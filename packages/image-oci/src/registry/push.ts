/**
 * Push: each layer blob the registry lacks (HEAD first; a cross-repository
 * mount when the image came from another repository of the same registry),
 * then the config, then the manifest. Layers kept uncompressed (loaded from a
 * docker-archive) are gzipped first, as docker push does, so the registry
 * stores what a pull expects.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import zlib from 'node:zlib';
import { IsulaError, type RegistryAuth, type TransferProgress } from '@isula/core';
import { shortDigest } from '../digest.js';
import { familiarName, formatReference, parseReference } from '../reference.js';
import { ATTEMPTS, RepoSession } from './client.js';
import { originEndpoints } from './endpoints.js';
import { drain, header } from './http.js';
import { Limiter, MEDIA, type TransferDeps } from './pull.js';


interface Blob {
  digest: string;
  size: number;
  mediaType: string;
  /** Where the bytes are: a file, or (the config) in memory. */
  file?: string;
  data?: Buffer;
  /** Shown as a layer line; the config is not. */
  layer: boolean;
}

export class Pusher {
  readonly #d: TransferDeps;
  readonly #uploads: Limiter;

  constructor(deps: TransferDeps) {
    this.#d = deps;
    this.#uploads = new Limiter(deps.settings.maxConcurrentUploads);
  }

  async push(reference: string, opts: { signal: AbortSignal; onProgress?: (p: TransferProgress) => void; auth?: RegistryAuth }): Promise<{ tag: string; digest: string; size: number }> {
    const ref = parseReference(reference);
    if (ref.digest !== undefined) throw new IsulaError('IMAGE_REFERENCE_INVALID', `cannot push a digest reference: ${reference}`);
    const tag = ref.tag ?? 'latest';
    const full = formatReference({ name: ref.name, tag });
    const img = this.#d.store.find(full);
    if (img === undefined) throw new IsulaError('IMAGE_NOT_FOUND', `An image does not exist locally with the tag: ${formatReference({ name: familiarName(ref.name), tag })}`);
    const domain = ref.name.slice(0, ref.name.indexOf('/'));
    const repo = ref.name.slice(domain.length + 1);
    const progress = opts.onProgress ?? (() => undefined);
    // Another repository of this registry that has the image's blobs: a mount saves the upload.
    const from = img.repoDigests.map((d) => d.slice(0, d.indexOf('@'))).find((n) => n.startsWith(`${domain}/`) && n !== ref.name)?.slice(domain.length + 1);

    const endpoints = originEndpoints(domain, this.#d.settings);
    progress({ status: `The push refers to repository [${familiarName(ref.name)}]` });
    const tmp = path.join(this.#d.store.root, 'tmp', `push-${randomBytes(6).toString('hex')}`);
    await fs.mkdir(tmp, { mode: 0o700 });
    // An rmi during the push leaves the layers alone; the config is read into memory below.
    const unpin = this.#d.store.pin(img.layers);
    try {
      const blobs = await this.#blobs(img.id, img.layers, tmp, opts.signal);
      let lastError: unknown;
      for (const ep of endpoints) {
        const session = new RepoSession({
          ep, repo, transport: this.#d.transport, auth: this.#d.auth, actions: 'pull,push', override: opts.auth, log: this.#d.log,
          ...(from !== undefined && { extraScopes: [`repository:${from}:pull`] }),
        });
        try {
          // Reach the endpoint first: an https→http fallback must not repeat half a push.
          await session.request({ method: 'HEAD', path: `blobs/${blobs[0]?.digest ?? img.id}`, ok: [200, 404] }, opts.signal, 'checking the registry').then(drain);
        } catch (err) {
          lastError = err;
          if (err instanceof IsulaError && (err.code === 'REGISTRY_UNAVAILABLE' || err.code === 'REGISTRY_TIMEOUT') && ep !== endpoints[endpoints.length - 1]) continue;
          throw err;
        }
        return await this.#pushTo(session, blobs, { tag, full, imageId: img.id, from, progress, signal: opts.signal, name: ref.name });
      }
      throw lastError ?? new IsulaError('REGISTRY_UNAVAILABLE', `no endpoint for ${domain}`);
    } finally {
      unpin();
      await fs.rm(tmp, { recursive: true, force: true });
    }
  }

  /** The blobs to send: layers as stored when compressed, gzipped when stored plain; then the config. */
  async #blobs(imageId: string, chainIds: readonly string[], tmp: string, signal: AbortSignal): Promise<Blob[]> {
    const out: Blob[] = [];
    for (const chainId of chainIds) {
      const layer = this.#d.store.layer(chainId);
      if (layer === undefined) throw new IsulaError('IMAGE_STORE_CORRUPT', `image ${imageId}: layer ${chainId} is missing`);
      const file = this.#d.store.blobPath(layer.blobDigest);
      const head = Buffer.alloc(4);
      const fh = await fs.open(file, 'r');
      try { await fh.read(head, 0, 4, 0); } finally { await fh.close(); }
      const gzip = head[0] === 0x1f && head[1] === 0x8b;
      const zstd = head.readUInt32LE(0) === 0xfd2fb528;
      if (gzip || zstd) {
        const oci = layer.mediaType.startsWith('application/vnd.oci.');
        const mediaType = zstd ? 'application/vnd.oci.image.layer.v1.tar+zstd' : oci ? MEDIA.ociLayerGzip : MEDIA.dockerLayerGzip;
        out.push({ digest: layer.blobDigest, size: (await fs.stat(file)).size, mediaType, file, layer: true });
        continue;
      }
      const gz = path.join(tmp, `${out.length}.tar.gz`);
      const hash = createHash('sha256');
      await pipeline(createReadStream(file), zlib.createGzip({ level: 6 }), async function* (source: AsyncIterable<Buffer>) {
        for await (const chunk of source) { hash.update(chunk); yield chunk; }
      }, (await fs.open(gz, 'wx', 0o600)).createWriteStream(), { signal });
      out.push({ digest: `sha256:${hash.digest('hex')}`, size: (await fs.stat(gz)).size, mediaType: MEDIA.dockerLayerGzip, file: gz, layer: true });
    }
    const config = await fs.readFile(this.#d.store.blobPath(imageId));
    out.push({ digest: imageId, size: config.length, mediaType: MEDIA.dockerConfig, data: config, layer: false });
    return out;
  }

  async #pushTo(session: RepoSession, blobs: Blob[], o: { tag: string; full: string; imageId: string; from: string | undefined; name: string; progress: (p: TransferProgress) => void; signal: AbortSignal }): Promise<{ tag: string; digest: string; size: number }> {
    const { progress, signal } = o;
    const layers = blobs.filter((b) => b.layer);
    // Docker lists the top layer first.
    for (const b of [...layers].reverse()) progress({ id: shortDigest(b.digest), status: 'Preparing' });
    // One failed upload stops its siblings (they would hold upload slots and read files being removed).
    const stop = new AbortController();
    const both = AbortSignal.any([signal, stop.signal]);
    const results = await Promise.allSettled([...layers].reverse().map((b) => this.#uploads.run(() => this.#blob(session, b, o.from, progress, both), () => progress({ id: shortDigest(b.digest), status: 'Waiting' }))
      .catch((err: unknown) => { stop.abort(); throw err; })));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected' && !(r.reason instanceof IsulaError && r.reason.code === 'CANCELED' && !signal.aborted))
      ?? results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed !== undefined) throw failed.reason;
    const config = blobs.find((b) => !b.layer);
    if (config !== undefined) await this.#blob(session, config, undefined, progress, signal);

    // One family of media types per manifest: OCI when any layer needs it (zstd) or all are OCI, else Docker's.
    const oci = layers.some((l) => l.mediaType.endsWith('+zstd')) || (layers.length > 0 && layers.every((l) => l.mediaType.startsWith('application/vnd.oci.')));
    const layerType = (t: string): string => {
      if (oci) return t === MEDIA.dockerLayerGzip ? MEDIA.ociLayerGzip : t === 'application/vnd.docker.image.rootfs.diff.tar' ? 'application/vnd.oci.image.layer.v1.tar' : t;
      return t === MEDIA.ociLayerGzip ? MEDIA.dockerLayerGzip : t;
    };
    const manifest = {
      schemaVersion: 2,
      mediaType: oci ? MEDIA.ociManifest : MEDIA.dockerManifest,
      config: { mediaType: oci ? MEDIA.ociConfig : MEDIA.dockerConfig, size: config?.size ?? 0, digest: o.imageId },
      layers: layers.map((l) => ({ mediaType: layerType(l.mediaType), size: l.size, digest: l.digest })),
    };
    const bytes = Buffer.from(JSON.stringify(manifest, null, 3));
    const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
    const reply = await session.request({
      method: 'PUT', path: `manifests/${o.tag}`, headers: { 'content-type': manifest.mediaType, 'content-length': String(bytes.length) }, body: () => bytes, ok: [200, 201, 202],
    }, signal, `manifest ${o.tag}`);
    await drain(reply);
    const told = header(reply, 'docker-content-digest');
    if (told !== undefined && told !== digest) this.#d.log.warn({ told, digest }, 'the registry reports another manifest digest than the bytes pushed');
    await this.#d.store.addRepoDigest(o.imageId, `${o.name}@${digest}`);
    return { tag: o.tag, digest, size: bytes.length };
  }

  async #blob(session: RepoSession, b: Blob, from: string | undefined, progress: (p: TransferProgress) => void, signal: AbortSignal): Promise<void> {
    const id = shortDigest(b.digest);
    const show = (p: Omit<TransferProgress, 'id'>) => { if (b.layer) progress({ id, ...p }); };
    const head = await session.request({ method: 'HEAD', path: `blobs/${b.digest}`, ok: [200, 404] }, signal, `blob ${id}`);
    await drain(head);
    if (head.status === 200) { show({ status: 'Layer already exists' }); return; }
    // An upload session cannot take the same bytes twice: a failed upload starts over with a new one.
    for (let attempt = 1; ; attempt += 1) {
      try {
        await this.#upload(session, b, from, show, signal);
        return;
      } catch (err) {
        const retry = attempt < ATTEMPTS && err instanceof IsulaError && (err.code === 'REGISTRY_UNAVAILABLE' || err.code === 'REGISTRY_TIMEOUT') && !signal.aborted;
        if (!retry) throw err;
        show({ status: `Retrying in ${attempt} second${attempt > 1 ? 's' : ''}` });
        await new Promise((r) => setTimeout(r, attempt * 1000));
      }
    }
  }

  /** One upload session: a cross-repository mount, or POST then a monolithic PUT. */
  async #upload(session: RepoSession, b: Blob, from: string | undefined, show: (p: Omit<TransferProgress, 'id'>) => void, signal: AbortSignal): Promise<void> {
    const id = shortDigest(b.digest);
    const query = from !== undefined ? `?mount=${encodeURIComponent(b.digest)}&from=${encodeURIComponent(from)}` : '';
    const start = await session.request({ method: 'POST', path: `blobs/uploads/${query}`, headers: { 'content-length': '0' }, ok: [201, 202] }, signal, `upload of ${id}`);
    await drain(start);
    if (start.status === 201) { show({ status: `Mounted from ${from ?? ''}` }); return; }
    const location = header(start, 'location');
    if (location === undefined) throw new IsulaError('REGISTRY_REPLY_INVALID', `${session.ep.host}: the upload of ${id} got no Location`);
    const url = new URL(location, `${session.ep.base}/`);
    url.searchParams.set('digest', b.digest);
    let sent = 0;
    let last = 0;
    const body = (): Buffer | Readable => {
      if (b.data !== undefined) return b.data;
      const stream = createReadStream(b.file as string);
      stream.on('data', (chunk) => {
        sent += chunk.length;
        const now = Date.now();
        if (now - last >= 100 || sent === b.size) { last = now; show({ status: 'Pushing', current: sent, total: b.size }); }
      });
      return stream;
    };
    const put = await session.request({
      method: 'PUT', path: url.toString(), headers: { 'content-type': 'application/octet-stream', 'content-length': String(b.size) }, body, ok: [201, 204],
      // Not repeated as is (the session is spent), and the registry may take a while to commit a big blob.
      retry: false, headersTimeoutMs: Math.max(this.#d.transport.stallMs, 120_000),
    }, signal, `upload of ${id}`);
    await drain(put);
    show({ status: 'Pushed' });
  }
}

