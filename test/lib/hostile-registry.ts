/**
 * A hostile registry: a Node http server on 127.0.0.1 that speaks just enough
 * of the registry v2 API (`/v2/`, manifests by tag or digest, blobs; GET and
 * HEAD) to serve ONE valid image, built from the offline test images
 * (scripts/make-test-images.sh, OCI layout), and misbehaves in one chosen way.
 *
 * Not a real registry on purpose (STYLE.md "fake-*" rule, stated here): a real
 * docker-registry never sends a wrong digest, a short body or a 100 MB
 * manifest, and the pull client must be tested against exactly those. For
 * real-registry behaviour (Accept negotiation, auth) use registry.ts.
 *
 * Simplifications: any repository name is served; Accept is ignored (the
 * configured manifest is always returned); Range is ignored (always 200 with
 * the whole blob); pushes get 405 UNSUPPORTED.
 *
 * Every request is recorded (method, path, a few headers) so tests can assert
 * bounded retries; `t.after` closes the server and destroys every socket,
 * including stalled ones.
 */
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import http from 'node:http';
import type net from 'node:net';
import path from 'node:path';
import { IMAGES_DIR } from './containers.js';
import type { Teardown, TestImageName } from './registry.js';

/**
 * - `normal`: a valid image, nothing wrong.
 * - `wrong-digest`: the first layer's bytes do not hash to its digest. Same
 *   length, still a valid gzip of the same tar (only the gzip header's MTIME
 *   differs), so only digest verification catches it (the diff_id matches).
 * - `truncated-blob`: GET of the first layer sends `Content-Length: N` (the
 *   true size), the first N/2 bytes, then destroys the socket.
 * - `oversize-blob`: GET of the first layer sends, chunked (no
 *   Content-Length), the true bytes then `oversizeExtraBytes` (default
 *   10 MiB) of zeros: more than the manifest's `size`.
 * - `endless-redirect`: GET/HEAD of the first layer answers 307 with
 *   `Location:` its own absolute URL, forever.
 * - `huge-manifest`: the tag's manifest is a valid JSON image manifest padded
 *   to `hugeManifestBytes` (default 100 MiB), streamed with back-pressure,
 *   never held in memory; Content-Length and Docker-Content-Digest are true.
 * - `error-500`: every request, `/v2/` included, gets 500 with a JSON
 *   `{"errors":[{"code":"UNKNOWN"}]}` body.
 * - `stall`: GET of the first layer sends 200 headers (with Content-Length)
 *   and then nothing, until the server stops.
 * - `stall-manifest`: manifest requests are never answered (no headers);
 *   `/v2/` and blobs are.
 * - `schema1`: the tag's manifest is Docker schema 1, signed
 *   (`application/vnd.docker.distribution.manifest.v1+prettyjws`, a real
 *   ES256 JWS; Docker-Content-Digest is over the payload without the
 *   signatures, as distribution computes it). Its blobs are served.
 * - `index`: the tag is a manifest list (Docker, or an OCI index with
 *   `mediaType: 'oci'`) with linux/amd64 and linux/arm64 entries; the host
 *   arch's entry is the valid image; the other's digest answers 404
 *   MANIFEST_UNKNOWN (a client that fetches it shows in `requests`).
 */
export type HostileMode = 'normal' | 'wrong-digest' | 'truncated-blob' | 'oversize-blob' | 'endless-redirect' | 'huge-manifest' | 'error-500' | 'stall' | 'stall-manifest' | 'schema1' | 'index';

export interface HostileOptions {
  mode?: HostileMode;
  /** Repository name in `ref` (any name is served). Default `hostile/busybox`. */
  repo?: string;
  /** Default `latest`. */
  tag?: string;
  /** Docker v2 schema 2 (default) or OCI manifests (and list/index). */
  mediaType?: 'docker' | 'oci';
  /** Which offline test image to serve. Default `busybox` (one ~1 MB layer). */
  image?: TestImageName;
  hugeManifestBytes?: number;
  oversizeExtraBytes?: number;
}

export interface HostileRequest {
  method: string;
  path: string;
  accept: string | undefined;
  range: string | undefined;
  authorization: string | undefined;
}

export interface HostileImage {
  /** The valid image manifest's digest, media type and bytes. */
  manifestDigest: string;
  manifestMediaType: string;
  manifest: Buffer;
  configDigest: string;
  layerDigests: string[];
  /** The blob the blob faults hit: the first layer. */
  faultyBlobDigest: string;
  /** What the tag resolves to in this mode (the list, schema 1 or huge manifest, or the image). */
  tagDigest: string;
  tagMediaType: string;
  /** `index` mode: the entry of the other arch, which is not served. */
  otherArch?: { architecture: string; digest: string };
}

export interface HostileRegistry {
  host: string;
  url: string;
  mode: HostileMode;
  repo: string;
  tag: string;
  /** `host/repo:tag` */
  ref: string;
  image: HostileImage;
  requests: HostileRequest[];
  /** Requests whose path equals `p` (or matches it), optionally of one method. */
  count(p: string | RegExp, method?: string): number;
  blobPath(digest: string): string;
  manifestPath(reference: string): string;
  stop(): Promise<void>;
}

export const MT = {
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayer: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  schema1Signed: 'application/vnd.docker.distribution.manifest.v1+prettyjws',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
} as const;

const sha256 = (b: Buffer | string): string => `sha256:${crypto.createHash('sha256').update(b).digest('hex')}`;
const b64url = (b: Buffer | string): string => Buffer.from(b).toString('base64url');
const hostArch = (): string => (process.arch === 'x64' ? 'amd64' : process.arch);

/** libtrust's key id, which c/image checks against the JWK: sha256 of the SPKI DER, first 240 bits, base32, in groups of 4. */
function libtrustKeyId(key: crypto.KeyObject): string {
  const hash = crypto.createHash('sha256').update(key.export({ type: 'spki', format: 'der' })).digest().subarray(0, 30);
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = 0;
  let value = 0;
  let out = '';
  for (const byte of hash) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) { out += alphabet[(value >>> (bits - 5)) & 31]; bits -= 5; }
  }
  return (out.match(/.{4}/g) ?? []).join(':');
}

interface Descriptor { mediaType: string; digest: string; size: number }
interface OciManifest { config: Descriptor; layers: Descriptor[] }

/** Reads one image of the test images' OCI layout. */
async function readLayoutImage(image: TestImageName): Promise<{ manifest: Buffer; parsed: OciManifest; blobs: Map<string, Buffer> }> {
  const layout = path.join(IMAGES_DIR, 'oci');
  const blob = (d: string): Promise<Buffer> => fs.readFile(path.join(layout, 'blobs', 'sha256', d.replace(/^sha256:/, '')));
  const index = JSON.parse(await fs.readFile(path.join(layout, 'index.json'), 'utf8')) as { manifests: (Descriptor & { annotations?: Record<string, string> })[] };
  const desc = index.manifests.find((m) => m.annotations?.['org.opencontainers.image.ref.name'] === image);
  if (desc === undefined) throw new Error(`no image ${image} in ${layout} (run scripts/make-test-images.sh)`);
  const manifest = await blob(desc.digest);
  const parsed = JSON.parse(manifest.toString('utf8')) as OciManifest;
  const blobs = new Map<string, Buffer>();
  for (const d of [parsed.config, ...parsed.layers]) blobs.set(d.digest, await blob(d.digest));
  return { manifest, parsed, blobs };
}

/** Same length, same decompressed content, another digest: only the gzip header's MTIME (bytes 4..7) changes. */
function corrupt(gz: Buffer): Buffer {
  const out = Buffer.from(gz);
  if (out.length >= 10 && out[0] === 0x1f && out[1] === 0x8b) {
    out.writeUInt32LE((out.readUInt32LE(4) ^ 0x5a5a5a5a) >>> 0, 4);
  } else {
    out[out.length - 1] = (out[out.length - 1] ?? 0) ^ 0xff;
  }
  return out;
}

/** A Docker schema 1 manifest signed as libtrust does (prettyjws), and its digest (over the unsigned payload). */
function schema1(repo: string, tag: string, config: Record<string, unknown>, layerDigests: string[]): { body: Buffer; digest: string } {
  const ids = layerDigests.map((_, i) => crypto.createHash('sha256').update(`isula-hostile-${i}`).digest('hex'));
  const history = layerDigests.map((_, i) => {
    const v1: Record<string, unknown> = { id: ids[i], created: config['created'] ?? '2023-11-14T22:13:20Z', container_config: { Cmd: ['/bin/sh -c #(nop) layer'] } };
    if (i > 0) v1['parent'] = ids[i - 1];
    if (i === layerDigests.length - 1) Object.assign(v1, { architecture: config['architecture'], os: config['os'], config: config['config'] });
    return { v1Compatibility: JSON.stringify(v1) };
  }).reverse();
  const unsigned = JSON.stringify({
    schemaVersion: 1, name: repo, tag, architecture: config['architecture'] ?? hostArch(),
    fsLayers: [...layerDigests].reverse().map((d) => ({ blobSum: d })), history,
  }, null, 3);
  const formatLength = unsigned.lastIndexOf('\n}');
  const tail = unsigned.slice(formatLength);
  const { privateKey, publicKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const jwk = publicKey.export({ format: 'jwk' });
  const protectedHeader = b64url(JSON.stringify({ formatLength, formatTail: b64url(tail), time: new Date().toISOString() }));
  const signature = crypto.sign('sha256', Buffer.from(`${protectedHeader}.${b64url(unsigned)}`), { key: privateKey, dsaEncoding: 'ieee-p1363' });
  const sigs = JSON.stringify([{ header: { jwk: { crv: jwk.crv, kid: libtrustKeyId(publicKey), kty: jwk.kty, x: jwk.x, y: jwk.y }, alg: 'ES256' }, signature: b64url(signature), protected: protectedHeader }], null, 3)
    .replace(/\n/g, '\n   ');
  const body = `${unsigned.slice(0, formatLength)},\n   "signatures": ${sigs}${tail}`;
  return { body: Buffer.from(body), digest: sha256(unsigned) };
}

const MiB = 1024 * 1024;
const PAD = Buffer.alloc(MiB, 'a');

/** The huge manifest, as pieces: a real image manifest whose `annotations.pad` fills it up to `size` bytes. */
function* hugePieces(prefix: Buffer, size: number, suffix: Buffer): Generator<Buffer> {
  yield prefix;
  let left = size - prefix.length - suffix.length;
  while (left > 0) {
    const n = Math.min(left, PAD.length);
    yield n === PAD.length ? PAD : PAD.subarray(0, n);
    left -= n;
  }
  yield suffix;
}

const hugeDigests = new Map<string, string>();
function hugeDigest(prefix: Buffer, size: number, suffix: Buffer): string {
  const key = `${size}:${sha256(prefix)}`;
  let d = hugeDigests.get(key);
  if (d === undefined) {
    const h = crypto.createHash('sha256');
    for (const p of hugePieces(prefix, size, suffix)) h.update(p);
    d = `sha256:${h.digest('hex')}`;
    hugeDigests.set(key, d);
  }
  return d;
}

/** Writes pieces with back-pressure; stops quietly when the client goes away. */
async function writePieces(res: http.ServerResponse, pieces: Iterable<Buffer>): Promise<void> {
  for (const p of pieces) {
    if (res.destroyed) return;
    if (!res.write(p)) {
      await new Promise<void>((resolve) => {
        const done = (): void => { res.off('drain', done); res.off('close', done); resolve(); };
        res.on('drain', done);
        res.on('close', done);
      });
    }
  }
  if (!res.destroyed) res.end();
}

function errorBody(code: string, message: string): string {
  return JSON.stringify({ errors: [{ code, message, detail: null }] });
}

/** Starts a hostile registry on 127.0.0.1:<free port>; closed by `t.after`. */
export async function startHostileRegistry(t: Teardown, opts: HostileOptions = {}): Promise<HostileRegistry> {
  const mode = opts.mode ?? 'normal';
  const repo = opts.repo ?? 'hostile/busybox';
  const tag = opts.tag ?? 'latest';
  const oci = opts.mediaType === 'oci';
  const src = await readLayoutImage(opts.image ?? 'busybox');
  const config = src.blobs.get(src.parsed.config.digest);
  if (config === undefined) throw new Error('test image without its config blob');
  const layerDigests = src.parsed.layers.map((l) => l.digest);
  const faulty = layerDigests[0];
  if (faulty === undefined) throw new Error('test image without layers');

  // The valid image manifest: the layout's OCI bytes as they are, or the same content as Docker v2 schema 2.
  const manifestMediaType = oci ? MT.ociManifest : MT.dockerManifest;
  const manifest = oci ? src.manifest : Buffer.from(JSON.stringify({
    schemaVersion: 2, mediaType: MT.dockerManifest,
    config: { mediaType: MT.dockerConfig, size: config.length, digest: src.parsed.config.digest },
    layers: src.parsed.layers.map((l) => ({ mediaType: MT.dockerLayer, size: l.size, digest: l.digest })),
  }, null, 3));
  const manifestDigest = sha256(manifest);

  // Manifests served by digest, and what the tag resolves to.
  const manifests = new Map<string, { mediaType: string; body: Buffer }>([[manifestDigest, { mediaType: manifestMediaType, body: manifest }]]);
  let tagDigest = manifestDigest;
  let tagMediaType: string = manifestMediaType;
  let otherArch: { architecture: string; digest: string } | undefined;
  let huge: { prefix: Buffer; suffix: Buffer; size: number } | undefined;

  if (mode === 'index') {
    const host = hostArch();
    const other = host === 'amd64' ? 'arm64' : 'amd64';
    // The other arch's manifest: a plausible one that is never served.
    const otherDigest = sha256(Buffer.concat([manifest, Buffer.from(`\n${other}`)]));
    otherArch = { architecture: other, digest: otherDigest };
    const entry = (arch: string, digest: string, size: number): Record<string, unknown> => ({
      mediaType: manifestMediaType, size, digest,
      platform: { architecture: arch, os: 'linux', ...(arch === 'arm64' ? { variant: 'v8' } : {}) },
    });
    const entries = ['amd64', 'arm64'].map((a) => (a === host ? entry(a, manifestDigest, manifest.length) : entry(a, otherDigest, manifest.length + 1 + other.length)));
    tagMediaType = oci ? MT.ociIndex : MT.dockerList;
    const list = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: tagMediaType, manifests: entries }, null, 3));
    tagDigest = sha256(list);
    manifests.set(tagDigest, { mediaType: tagMediaType, body: list });
  } else if (mode === 'schema1') {
    const s1 = schema1(repo, tag, JSON.parse(config.toString('utf8')) as Record<string, unknown>, layerDigests);
    tagDigest = s1.digest;
    tagMediaType = MT.schema1Signed;
    manifests.set(tagDigest, { mediaType: tagMediaType, body: s1.body });
  } else if (mode === 'huge-manifest') {
    const size = opts.hugeManifestBytes ?? 100 * MiB;
    const head = JSON.stringify(JSON.parse(manifest.toString('utf8')) as Record<string, unknown>).slice(0, -1); // without the closing brace
    const prefix = Buffer.from(`${head},"annotations":{"pad":"`);
    const suffix = Buffer.from('"}}');
    if (size < prefix.length + suffix.length) throw new Error(`hugeManifestBytes must be at least ${prefix.length + suffix.length}`);
    huge = { prefix, suffix, size };
    tagDigest = hugeDigest(prefix, size, suffix);
    tagMediaType = manifestMediaType;
  }

  const blobs = new Map(src.blobs);
  if (mode === 'wrong-digest') {
    const good = blobs.get(faulty);
    if (good !== undefined) blobs.set(faulty, corrupt(good));
  }

  const requests: HostileRequest[] = [];
  const sockets = new Set<net.Socket>();
  let base = '';

  function send(res: http.ServerResponse, status: number, headers: Record<string, string | number>, body: Buffer | string, isHead: boolean): void {
    res.writeHead(status, { 'Docker-Distribution-API-Version': 'registry/2.0', 'Content-Length': Buffer.byteLength(body), ...headers });
    res.end(isHead ? undefined : body);
  }
  const sendError = (res: http.ServerResponse, status: number, code: string, message: string, isHead: boolean): void =>
    send(res, status, { 'Content-Type': 'application/json; charset=utf-8' }, errorBody(code, message), isHead);

  function serveManifest(res: http.ServerResponse, reference: string, isHead: boolean): void {
    if (mode === 'stall-manifest') return; // never answered
    if (huge !== undefined && (reference === tag || reference === tagDigest)) {
      res.writeHead(200, { 'Docker-Distribution-API-Version': 'registry/2.0', 'Content-Type': tagMediaType, 'Content-Length': huge.size, 'Docker-Content-Digest': tagDigest });
      if (isHead) { res.end(); return; }
      void writePieces(res, hugePieces(huge.prefix, huge.size, huge.suffix));
      return;
    }
    const m = manifests.get(reference === tag ? tagDigest : reference);
    if (m === undefined) { sendError(res, 404, 'MANIFEST_UNKNOWN', `manifest unknown: ${reference}`, isHead); return; }
    send(res, 200, { 'Content-Type': m.mediaType, 'Docker-Content-Digest': reference === tag ? tagDigest : reference, Etag: `"${reference === tag ? tagDigest : reference}"` }, m.body, isHead);
  }

  function serveBlob(req: http.IncomingMessage, res: http.ServerResponse, digest: string, isHead: boolean): void {
    const b = blobs.get(digest);
    if (b === undefined) { sendError(res, 404, 'BLOB_UNKNOWN', `blob unknown to registry: ${digest}`, isHead); return; }
    const headers = { 'Content-Type': 'application/octet-stream', 'Docker-Content-Digest': digest };
    if (digest === faulty) {
      if (mode === 'endless-redirect') {
        res.writeHead(307, { 'Docker-Distribution-API-Version': 'registry/2.0', Location: `${base}${req.url ?? ''}`, 'Content-Length': 0 });
        res.end();
        return;
      }
      if (!isHead && mode === 'truncated-blob') {
        res.writeHead(200, { ...headers, 'Content-Length': b.length });
        res.write(b.subarray(0, Math.floor(b.length / 2)), () => req.socket.destroy());
        return;
      }
      if (!isHead && mode === 'oversize-blob') {
        res.writeHead(200, headers); // chunked: no Content-Length to reject early on
        const extra = opts.oversizeExtraBytes ?? 10 * MiB;
        const zeros = Buffer.alloc(Math.min(extra, MiB));
        void writePieces(res, (function* () {
          yield b;
          for (let left = extra; left > 0; left -= zeros.length) yield left >= zeros.length ? zeros : zeros.subarray(0, left);
        })());
        return;
      }
      if (!isHead && mode === 'stall') {
        res.writeHead(200, { ...headers, 'Content-Length': b.length });
        res.flushHeaders();
        return;
      }
    }
    send(res, 200, headers, b, isHead);
  }

  const server = http.createServer((req, res) => {
    const method = req.method ?? '';
    const u = new URL(req.url ?? '/', 'http://hostile.invalid');
    requests.push({ method, path: u.pathname, accept: req.headers.accept, range: req.headers.range, authorization: req.headers.authorization });
    const isHead = method === 'HEAD';
    if (mode === 'error-500') { sendError(res, 500, 'UNKNOWN', 'unknown error (hostile registry: error-500)', isHead); return; }
    if (method !== 'GET' && method !== 'HEAD') { sendError(res, 405, 'UNSUPPORTED', `${method} is not supported by this registry`, isHead); return; }
    if (u.pathname === '/v2/' || u.pathname === '/v2') { send(res, 200, { 'Content-Type': 'application/json; charset=utf-8' }, '{}', isHead); return; }
    const m = /^\/v2\/(.+)\/(manifests|blobs)\/([^/]+)$/.exec(u.pathname);
    if (m === null) { sendError(res, 404, 'NOT_FOUND', `no route for ${u.pathname}`, isHead); return; }
    const reference = decodeURIComponent(m[3] ?? '');
    if (m[2] === 'manifests') serveManifest(res, reference, isHead);
    else serveBlob(req, res, reference, isHead);
  });
  server.on('connection', (s: net.Socket) => { sockets.add(s); s.once('close', () => sockets.delete(s)); });
  await new Promise<void>((resolve, reject) => { server.once('error', reject); server.listen(0, '127.0.0.1', resolve); });
  const port = (server.address() as net.AddressInfo).port; // a TCP listener: an AddressInfo
  const host = `127.0.0.1:${port}`;
  base = `http://${host}`;

  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopped ??= new Promise<void>((resolve) => {
      server.close(() => resolve());
      for (const s of sockets) s.destroy();
    });
    return stopped;
  };
  t.after(stop);

  return {
    host, url: base, mode, repo, tag, ref: `${host}/${repo}:${tag}`,
    image: {
      manifestDigest, manifestMediaType, manifest, configDigest: src.parsed.config.digest, layerDigests, faultyBlobDigest: faulty, tagDigest, tagMediaType,
      ...(otherArch === undefined ? {} : { otherArch }),
    },
    requests,
    count: (p, method) => requests.filter((r) => (method === undefined || r.method === method) && (typeof p === 'string' ? r.path === p : p.test(r.path))).length,
    blobPath: (digest) => `/v2/${repo}/blobs/${digest}`,
    manifestPath: (reference) => `/v2/${repo}/manifests/${reference}`,
    stop,
  };
}
