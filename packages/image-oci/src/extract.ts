/**
 * Unpacks one image layer (an OCI / Docker v2 layer tar, gzip- or
 * zstd-compressed or plain) into a directory that overlayfs can use as a
 * lower dir, and computes its digest and diff id on the way.
 *
 * Safety: a layer is untrusted input. We parse the tar ourselves (node-tar's
 * parser drops PAX xattrs and mangles binary PAX values), resolve every entry
 * name lexically, and never let the kernel follow a symlink from the layer:
 * we keep our own table of what we have created (the temp dir starts empty and
 * nothing else writes to it), so a parent component that is a symlink is
 * rejected before any syscall, files are opened O_CREAT|O_EXCL|O_NOFOLLOW
 * after removing what was there, and hard links may only point at entries this
 * layer created. Everything goes into `${destDir}.extract-<random>`, renamed
 * to `destDir` only after the whole stream was read and both digests checked.
 *
 * Decisions (see the package README):
 * - Absolute entry names (`/etc/x`) and absolute hard-link targets are
 *   rejected as IMAGE_LAYER_UNSAFE. Docker/containerd strip the leading `/`;
 *   no layer built by a normal tool contains them.
 * - `..` is resolved lexically (`a/../b` is `b`); a name that climbs above the
 *   root is IMAGE_LAYER_UNSAFE.
 * - Names must be UTF-8 (IMAGE_LAYER_INVALID otherwise): Node paths are strings.
 * - GNU sparse files (type `S` or `GNU.sparse.*` PAX keys), multi-volume and
 *   other GNU extension types are IMAGE_LAYER_INVALID. GNU long names
 *   (`L`/`K`) and PAX are supported; PAX global headers are ignored, as Docker
 *   does.
 * - Other `.wh..wh.*` entries (AUFS metadata such as `.wh..wh.plnk`) are
 *   skipped, as Docker does.
 * - The archive must end with the zero-block end marker; data after it is read
 *   (it counts for the diff id) and ignored.
 * - Before the rename, `sync -f` flushes the file system, so a crash cannot
 *   leave a layer directory whose files have lost their data.
 * - Times: PAX sub-microsecond mtimes are rounded (Node's utimes takes a double).
 * - All file system calls are asynchronous, so a big layer never blocks the
 *   daemon's event loop; small files are written several at a time.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fsCallback, { constants as fsc } from 'node:fs';
import fs, { type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { PassThrough, type Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import zlib from 'node:zlib';
import { IsulaError, faultPoint } from '@isula/core';
import { Sha256Counter, assertSha256Digest } from './digest.js';

export interface ExtractResult {
  /** `sha256:…` of the bytes as given (compressed). */
  digest: string;
  /** `sha256:…` of the uncompressed tar. */
  diffId: string;
  /** Size of the uncompressed tar. */
  sizeBytes: number;
}

export interface ExtractOptions {
  expectedDigest?: string;
  expectedDiffId?: string;
  signal?: AbortSignal;
  /**
   * Flush the file system (`sync -f`) before the rename (default true). A caller
   * that extracts several layers may pass false and flush once itself before it
   * records them as complete.
   */
  sync?: boolean;
}

/**
 * Extracts a layer into `destDir`, which must not exist (its parent must).
 *
 * Not idempotent: a second call with the same `destDir` fails. On success
 * `destDir` holds the layer (whiteouts as 0/0 char devices, opaque dirs marked
 * `trusted.overlay.opaque=y`) and is flushed to disk. On any failure nothing is
 * left behind: no `destDir`, no temp sibling.
 *
 * Throws IsulaError:
 * - IMAGE_LAYER_UNSAFE: an entry escapes the root, is absolute, writes through
 *   a symlink, or hard-links outside the layer.
 * - IMAGE_LAYER_INVALID: corrupt or truncated compression or tar, unsupported
 *   entry type or compression, bad expected digest syntax.
 * - IMAGE_DIGEST_MISMATCH: `expectedDigest` / `expectedDiffId` differ.
 * - CANCELED: `signal` aborted.
 * - INTERNAL: the file system or a helper command (`mknod`, `setfattr`, `sync`) failed.
 * An error thrown by `source` itself is rethrown unchanged.
 * Needs root (chown, mknod, trusted.* xattrs).
 */
export async function extractLayer(
  source: NodeJS.ReadableStream | AsyncIterable<Buffer>,
  destDir: string,
  options: ExtractOptions,
): Promise<ExtractResult> {
  const { expectedDigest, expectedDiffId, signal } = options;
  if (expectedDigest !== undefined) assertSha256Digest(expectedDigest, 'expectedDigest');
  if (expectedDiffId !== undefined) assertSha256Digest(expectedDiffId, 'expectedDiffId');
  const dest = path.resolve(destDir);
  if (await exists(dest)) {
    throw new IsulaError('INTERNAL', `layer directory ${dest} already exists`, { details: { destDir: dest } });
  }
  signal?.throwIfAborted();
  const temp = `${dest}.extract-${randomBytes(6).toString('hex')}`;
  try {
    await fs.mkdir(temp, { mode: 0o755 });
  } catch (err) {
    throw new IsulaError('INTERNAL', `cannot create ${temp}: ${(err as Error).message}`, { cause: err, details: { destDir: dest } });
  }
  const extraction = new Extraction(temp, signal);
  const sourceState: SourceState = { error: undefined };
  try {
    await extraction.init();
    const input = sourceChunks(source as AsyncIterable<unknown>, sourceState);
    const { kind, stream } = await sniff(input);
    const compressed = kind === 'tar' ? undefined : new Sha256Counter();
    const decompress = decompressor(kind);
    let reader: ByteReader | undefined;
    try {
      await pipeline(
        hashed(stream, compressed),
        decompress,
        async (tar: AsyncIterable<unknown>) => {
          reader = new ByteReader(tar);
          await extraction.run(reader);
        },
        signal === undefined ? {} : { signal },
      );
    } catch (err) {
      // pipeline() may settle (abort, a failed stream) while run() is still
      // inside a file system call: wait for it before anyone removes the temp dir.
      await extraction.settled();
      throw err;
    }
    if (reader === undefined) throw new IsulaError('INTERNAL', 'layer pipeline ended without reading');
    const diffId = reader.diff.digest();
    const digest = compressed === undefined ? diffId : compressed.digest();
    if (expectedDigest !== undefined && digest !== expectedDigest) {
      throw new IsulaError('IMAGE_DIGEST_MISMATCH', `layer digest ${digest} does not match expected ${expectedDigest}`, {
        details: { expected: expectedDigest, actual: digest },
      });
    }
    if (expectedDiffId !== undefined && diffId !== expectedDiffId) {
      throw new IsulaError('IMAGE_DIGEST_MISMATCH', `layer diff id ${diffId} does not match expected ${expectedDiffId}`, {
        details: { expected: expectedDiffId, actual: diffId, digest },
      });
    }
    await extraction.finish();
    if (options.sync !== false) await run('sync', ['-f', temp], { timeoutMs: 120_000, signal });
    signal?.throwIfAborted();
    // rename(2) would also replace an empty directory; the store serialises
    // extractions of one layer, this check catches a caller that does not.
    if (await exists(dest)) {
      throw new IsulaError('INTERNAL', `layer directory ${dest} appeared during extraction`, { details: { destDir: dest } });
    }
    await fs.rename(temp, dest);
    return { digest, diffId, sizeBytes: reader.sizeBytes };
  } catch (err) {
    await extraction.settled();
    await fs.rm(temp, { recursive: true, force: true, maxRetries: 3 });
    throw classify(sourceState.error === undefined ? err : new SourceFailure(sourceState.error), signal);
  }
}

// ---------------------------------------------------------------------------
// Errors

class SourceFailure extends Error {
  constructor(readonly original: unknown) {
    super('layer source failed');
  }
}

function classify(err: unknown, signal: AbortSignal | undefined): unknown {
  if (err instanceof SourceFailure) {
    if (signal?.aborted === true) return canceled(signal);
    return err.original;
  }
  if (err instanceof IsulaError) return err;
  if (signal?.aborted === true) return canceled(signal);
  if (isZlibError(err)) {
    return new IsulaError('IMAGE_LAYER_INVALID', `layer decompression failed: ${(err as Error).message}`, { cause: err });
  }
  const message = err instanceof Error ? err.message : String(err);
  return new IsulaError('INTERNAL', `layer extraction failed: ${message}`, { cause: err });
}

function canceled(signal: AbortSignal): IsulaError {
  return new IsulaError('CANCELED', 'layer extraction canceled', { cause: signal.reason });
}

function isZlibError(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const code = (err as NodeJS.ErrnoException).code;
  return typeof code === 'string' && (code.startsWith('Z_') || code.startsWith('ERR_ZSTD') || code === 'ERR_ZLIB_INITIALIZATION_FAILED');
}

function invalid(message: string, details?: Record<string, unknown>): IsulaError {
  return new IsulaError('IMAGE_LAYER_INVALID', message, details === undefined ? {} : { details });
}

function unsafe(message: string, details?: Record<string, unknown>): IsulaError {
  return new IsulaError('IMAGE_LAYER_UNSAFE', message, details === undefined ? {} : { details });
}

async function exists(p: string): Promise<boolean> {
  try {
    await fs.lstat(p);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}

// ---------------------------------------------------------------------------
// Input: bytes, compression

interface SourceState {
  error: unknown;
}

async function* sourceChunks(source: AsyncIterable<unknown>, state: SourceState): AsyncGenerator<Buffer> {
  try {
    for await (const chunk of source) {
      if (Buffer.isBuffer(chunk)) yield chunk;
      else if (chunk instanceof Uint8Array) yield Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
      else throw new IsulaError('INTERNAL', 'layer source yielded text, not bytes (is an encoding set on the stream?)');
    }
  } catch (err) {
    if (!(err instanceof IsulaError)) state.error = err;
    throw err;
  }
}

async function* hashed(chunks: AsyncIterable<Buffer>, counter: Sha256Counter | undefined): AsyncGenerator<Buffer> {
  for await (const chunk of chunks) {
    counter?.update(chunk);
    yield chunk;
  }
}

type Compression = 'gzip' | 'zstd' | 'tar';

/** Reads enough of the stream to recognise the compression from its magic bytes. */
async function sniff(chunks: AsyncGenerator<Buffer>): Promise<{ kind: Compression; stream: AsyncIterable<Buffer> }> {
  const head: Buffer[] = [];
  let length = 0;
  let ended = false;
  while (length < 6) {
    const r = await chunks.next();
    if (r.done === true) {
      ended = true;
      break;
    }
    head.push(r.value);
    length += r.value.length;
  }
  const magic = Buffer.concat(head);
  try {
    return { kind: compressionOf(magic), stream: all() };
  } catch (err) {
    await chunks.return(undefined); // lets go of the source (a stream is destroyed)
    throw err;
  }
  async function* all(): AsyncGenerator<Buffer> {
    yield* head;
    if (!ended) yield* chunks;
  }
}

function compressionOf(magic: Buffer): Compression {
  let kind: Compression = 'tar';
  if (magic[0] === 0x1f && magic[1] === 0x8b) kind = 'gzip';
  else if (magic.subarray(0, 4).equals(ZSTD_MAGIC)) kind = 'zstd';
  else if (magic.subarray(0, 6).equals(XZ_MAGIC)) throw invalid('layer is xz-compressed, which is not supported');
  else if (magic.subarray(0, 3).toString('latin1') === 'BZh') throw invalid('layer is bzip2-compressed, which is not supported');
  if (kind === 'zstd' && typeof zlib.createZstdDecompress !== 'function') {
    throw invalid('layer is zstd-compressed and this Node.js has no zstd support');
  }
  return kind;
}

const ZSTD_MAGIC = Buffer.from([0x28, 0xb5, 0x2f, 0xfd]);
const XZ_MAGIC = Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]);
const CHUNK_BYTES = 128 * 1024;

function decompressor(kind: Compression): Transform {
  switch (kind) {
    case 'gzip':
      return zlib.createGunzip({ chunkSize: CHUNK_BYTES });
    case 'zstd':
      return zlib.createZstdDecompress({ chunkSize: CHUNK_BYTES });
    case 'tar':
      return new PassThrough();
  }
}

/** Sequential reader over the uncompressed tar; hashes every byte for the diff id. */
class ByteReader {
  readonly diff = new Sha256Counter();
  readonly #it: AsyncIterator<unknown>;
  #chunk: Buffer = Buffer.alloc(0);
  #pos = 0;

  constructor(source: AsyncIterable<unknown>) {
    this.#it = source[Symbol.asyncIterator]();
  }

  get sizeBytes(): number {
    return this.diff.sizeBytes;
  }

  async #pull(): Promise<boolean> {
    for (;;) {
      const r = await this.#it.next();
      if (r.done === true) return false;
      const chunk = r.value as Buffer;
      if (chunk.length === 0) continue;
      this.diff.update(chunk);
      this.#chunk = chunk;
      this.#pos = 0;
      return true;
    }
  }

  /** Between 1 and `max` bytes, or null at the end of the stream. The result is a view: use it before the next read. */
  async some(max: number): Promise<Buffer | null> {
    if (this.#pos >= this.#chunk.length && !(await this.#pull())) return null;
    const n = Math.min(max, this.#chunk.length - this.#pos);
    const out = this.#chunk.subarray(this.#pos, this.#pos + n);
    this.#pos += n;
    return out;
  }

  /** Exactly `n` bytes; null if the stream ends before the first; IMAGE_LAYER_INVALID if it ends after. */
  async exact(n: number): Promise<Buffer | null> {
    if (this.#chunk.length - this.#pos >= n) {
      const out = this.#chunk.subarray(this.#pos, this.#pos + n);
      this.#pos += n;
      return out;
    }
    const parts: Buffer[] = [];
    let got = 0;
    while (got < n) {
      const part = await this.some(n - got);
      if (part === null) {
        if (got === 0) return null;
        throw truncated();
      }
      parts.push(part);
      got += part.length;
    }
    return Buffer.concat(parts, n);
  }

  async skip(n: number): Promise<void> {
    while (n > 0) {
      const part = await this.some(n);
      if (part === null) throw truncated();
      n -= part.length;
    }
  }

  /** Reads (and hashes) the rest of the stream. */
  async drain(): Promise<void> {
    this.#pos = this.#chunk.length;
    while (await this.#pull()) this.#pos = this.#chunk.length;
  }
}

function truncated(): IsulaError {
  return invalid('layer is truncated');
}

// ---------------------------------------------------------------------------
// Tar headers

const BLOCK = 512;
const ZERO_BLOCK = Buffer.alloc(BLOCK);
/** Largest PAX / GNU long-name body we hold in memory (Go's archive/tar uses the same). */
const MAX_META_BYTES = 1 << 20;
const utf8 = new TextDecoder('utf-8', { fatal: true });

interface RawHeader {
  name: string;
  linkname: string;
  type: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  devmajor: number;
  devminor: number;
}

interface Pax {
  path?: string;
  linkpath?: string;
  size?: number;
  uid?: number;
  gid?: number;
  mtime?: number;
  atime?: number;
  xattrs: Map<string, Buffer>;
}

function text(b: Buffer, what: string): string {
  try {
    return utf8.decode(b);
  } catch {
    throw invalid(`layer ${what} is not valid UTF-8`, { bytes: b.toString('hex') });
  }
}

function cstring(b: Buffer, off: number, len: number, what: string): string {
  const field = b.subarray(off, off + len);
  const nul = field.indexOf(0);
  return text(nul < 0 ? field : field.subarray(0, nul), what);
}

function numeric(b: Buffer, off: number, len: number, what: string): number {
  const first = b[off] ?? 0;
  if ((first & 0x80) !== 0) {
    // GNU base-256: big-endian two's complement with the top bit as marker.
    let v = BigInt(first & 0x7f);
    for (let i = 1; i < len; i++) v = (v << 8n) | BigInt(b[off + i] ?? 0);
    if (first === 0xff) v -= 1n << BigInt(len * 8 - 1);
    const n = Number(v);
    if (!Number.isSafeInteger(n)) throw invalid(`layer header field ${what} is out of range`);
    return n;
  }
  const raw = b.toString('latin1', off, off + len);
  const nul = raw.indexOf('\0');
  const s = (nul < 0 ? raw : raw.slice(0, nul)).trim();
  if (s === '') return 0;
  if (!/^[0-7]+$/.test(s)) throw invalid(`layer header field ${what} is not octal: ${JSON.stringify(s)}`);
  return parseInt(s, 8);
}

function parseHeader(b: Buffer): RawHeader {
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const c = i >= 148 && i < 156 ? 0x20 : (b[i] ?? 0);
    unsigned += c;
    signed += c >= 0x80 ? c - 0x100 : c;
  }
  const stored = numeric(b, 148, 8, 'chksum');
  if (stored !== unsigned && stored !== signed) throw invalid('layer tar header checksum mismatch');
  const magic = b.toString('latin1', 257, 263);
  let name = cstring(b, 0, 100, 'entry name');
  if (magic === 'ustar\0') {
    const prefix = cstring(b, 345, 155, 'entry name');
    if (prefix !== '') name = `${prefix}/${name}`;
  }
  const typeByte = b[156] ?? 0;
  return {
    name,
    linkname: cstring(b, 157, 100, 'link name'),
    type: typeByte === 0 ? '\0' : String.fromCharCode(typeByte),
    mode: numeric(b, 100, 8, 'mode') & 0o7777,
    uid: numeric(b, 108, 8, 'uid'),
    gid: numeric(b, 116, 8, 'gid'),
    size: numeric(b, 124, 12, 'size'),
    mtime: numeric(b, 136, 12, 'mtime'),
    devmajor: magic.startsWith('ustar') ? numeric(b, 329, 8, 'devmajor') : 0,
    devminor: magic.startsWith('ustar') ? numeric(b, 337, 8, 'devminor') : 0,
  };
}

function paxNumber(key: string, value: Buffer, fractional: boolean): number {
  const s = value.toString('latin1');
  const ok = fractional ? /^-?\d+(\.\d+)?$/.test(s) : /^\d+$/.test(s);
  const n = Number(s);
  if (!ok || !Number.isFinite(n) || (!fractional && !Number.isSafeInteger(n))) {
    throw invalid(`layer PAX record ${key} is not a number: ${JSON.stringify(s)}`);
  }
  return n;
}

/** Parses PAX records (`<len> <key>=<value>\n`) into `pax`; values stay bytes (xattrs are binary). */
function parsePax(body: Buffer, pax: Pax): void {
  let i = 0;
  while (i < body.length) {
    if (body[i] === 0) break; // NUL padding after the last record
    const sp = body.indexOf(0x20, i);
    const lenText = sp < 0 ? '' : body.toString('latin1', i, sp);
    const len = /^\d{1,7}$/.test(lenText) ? Number(lenText) : NaN;
    if (!(len > sp - i + 1) || i + len > body.length || body[i + len - 1] !== 0x0a) {
      throw invalid('layer has a malformed PAX header');
    }
    const record = body.subarray(sp + 1, i + len - 1);
    i += len;
    const eq = record.indexOf(0x3d);
    if (eq <= 0) throw invalid('layer has a malformed PAX record');
    const key = text(record.subarray(0, eq), 'PAX key');
    const value = record.subarray(eq + 1);
    const empty = value.length === 0; // an empty value unsets the key
    if (key.startsWith('GNU.sparse.')) throw invalid('layer contains a GNU sparse file, which is not supported', { key });
    if (key.startsWith('SCHILY.xattr.')) {
      const name = key.slice('SCHILY.xattr.'.length);
      if (empty) pax.xattrs.delete(name);
      else pax.xattrs.set(name, Buffer.from(value));
      continue;
    }
    if (key.startsWith('LIBARCHIVE.xattr.')) {
      let name: string;
      try {
        name = decodeURIComponent(key.slice('LIBARCHIVE.xattr.'.length));
      } catch {
        throw invalid('layer has a malformed LIBARCHIVE.xattr key', { key });
      }
      if (empty) pax.xattrs.delete(name);
      else pax.xattrs.set(name, Buffer.from(value.toString('latin1'), 'base64'));
      continue;
    }
    switch (key) {
      case 'path':
        if (empty) delete pax.path;
        else pax.path = text(value, 'entry name');
        break;
      case 'linkpath':
        if (empty) delete pax.linkpath;
        else pax.linkpath = text(value, 'link name');
        break;
      case 'size':
      case 'uid':
      case 'gid':
        if (empty) delete pax[key];
        else pax[key] = paxNumber(key, value, false);
        break;
      case 'mtime':
      case 'atime':
        if (empty) delete pax[key];
        else pax[key] = paxNumber(key, value, true);
        break;
      default:
        // ctime, uname, gname, comment, charset, SCHILY.dev/ino/nlink, …: not stored.
        break;
    }
  }
}

// ---------------------------------------------------------------------------
// Entries

/** A header with its PAX overrides applied, plus what only PAX carries. */
interface Entry extends RawHeader {
  atime: number;
  xattrs: Map<string, Buffer>;
}

type Kind = 'dir' | 'file' | 'symlink' | 'node';

interface DirMeta {
  mode: number;
  times?: { atime: number; mtime: number };
}

interface NodeSpec {
  type: 'c' | 'b' | 'p';
  mode: number;
  major: number;
  minor: number;
  uid: number;
  gid: number;
  atime: number;
  mtime: number;
}

/** Files at most this big are written in the background, several at a time. */
const SMALL_FILE_BYTES = 256 * 1024;
const MAX_INFLIGHT = 16;
const MAX_COMPONENT_BYTES = 255;
const MAX_ID = 0xfffffffe; // (uid_t)-1 means "unchanged" to chown(2)
const OPEN_FLAGS = fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL | fsc.O_NOFOLLOW;

/**
 * Splits an entry or hard-link name into components, resolving `.` and `..`
 * lexically. Throws IMAGE_LAYER_UNSAFE for absolute names and names that climb
 * above the root.
 */
function components(name: string, what: string): string[] {
  if (name.includes('\0')) throw invalid(`layer ${what} ${JSON.stringify(name)} contains NUL`);
  if (name.startsWith('/')) throw unsafe(`layer ${what} ${JSON.stringify(name)} is absolute`, { name });
  const out: string[] = [];
  for (const c of name.split('/')) {
    if (c === '' || c === '.') continue;
    if (c === '..') {
      if (out.length === 0) throw unsafe(`layer ${what} ${JSON.stringify(name)} escapes the rootfs`, { name });
      out.pop();
      continue;
    }
    if (Buffer.byteLength(c) > MAX_COMPONENT_BYTES) throw invalid(`layer ${what} ${JSON.stringify(name)} has a component longer than 255 bytes`);
    out.push(c);
  }
  return out;
}

class Extraction {
  readonly #root: string;
  readonly #signal: AbortSignal | undefined;
  /** What we created, by relative path ('' is the root). The temp dir starts empty and only we write to it. */
  readonly #kinds = new Map<string, Kind>([['', 'dir']]);
  readonly #dirMeta = new Map<string, DirMeta>();
  readonly #xattrs = new Map<string, Map<string, Buffer>>();
  readonly #opaque = new Set<string>();
  /** Devices and fifos, created in batches by `mknod` (Node has no mknod(2)). */
  readonly #nodes = new Map<string, NodeSpec>();
  readonly #inflight = new Set<Promise<void>>();
  #inflightError: unknown;
  #running: Promise<void> | undefined;
  /** Owner a new inode gets without chown(2); undefined if the root is setgid (then we always chown). */
  #owner: { uid: number; gid: number } | undefined;
  /** Whether the umask leaves modes within 0755 alone (then open/mkdir set them and chmod is only needed beyond). */
  #exactModes = false;

  constructor(root: string, signal: AbortSignal | undefined) {
    this.#root = root;
    this.#signal = signal;
  }

  /** Learns what a new inode looks like, to skip chown/chmod calls that would change nothing (half the syscalls of a small file). */
  async init(): Promise<void> {
    const st = await fs.lstat(this.#root);
    this.#exactModes = (st.mode & 0o777) === 0o755;
    const uid = process.geteuid?.();
    const gid = process.getegid?.();
    if ((st.mode & 0o2000) === 0 && uid !== undefined && gid !== undefined) this.#owner = { uid, gid };
    this.#dirMeta.set('', { mode: 0o755 });
  }

  #needsChown(uid: number, gid: number): boolean {
    return this.#owner === undefined || this.#owner.uid !== uid || this.#owner.gid !== gid;
  }

  #needsChmod(mode: number): boolean {
    return !this.#exactModes || (mode & ~0o755) !== 0;
  }

  #fileMeta(e: Entry): FileMeta {
    return { mode: e.mode, atime: e.atime, mtime: e.mtime, chown: this.#needsChown(e.uid, e.gid), chmod: this.#needsChmod(e.mode), uid: e.uid, gid: e.gid };
  }

  #abs(rel: string): string {
    return rel === '' ? this.#root : `${this.#root}/${rel}`;
  }

  run(reader: ByteReader): Promise<void> {
    const running = this.#readAll(reader).finally(() => this.#drain().catch(() => undefined));
    this.#running = running;
    return running;
  }

  /** Resolves once nothing touches the temp dir any more (whatever the outcome). */
  async settled(): Promise<void> {
    await this.#running?.catch(() => undefined);
    await this.#drain().catch(() => undefined);
  }

  async #readAll(r: ByteReader): Promise<void> {
    const pax: Pax = { xattrs: new Map() };
    let longName: string | undefined;
    let longLink: string | undefined;
    for (;;) {
      this.#signal?.throwIfAborted();
      const block = await r.exact(BLOCK);
      if (block === null) throw invalid('layer is truncated: no end-of-archive marker');
      if (block.equals(ZERO_BLOCK)) {
        // End of archive: two zero blocks; tolerate a lone one at the very end.
        const second = await r.exact(BLOCK);
        if (second !== null && !second.equals(ZERO_BLOCK)) throw invalid('layer has a stray zero block in the middle');
        break;
      }
      const h = parseHeader(block);
      const padding = (BLOCK - (h.size % BLOCK)) % BLOCK;
      switch (h.type) {
        case 'x':
          parsePax(await this.#meta(r, h.size, padding), pax);
          continue;
        case 'g':
          // Global PAX header: Docker ignores it, so do we.
          await this.#meta(r, h.size, padding);
          continue;
        case 'L':
          longName = cstring(await this.#meta(r, h.size, padding), 0, h.size, 'entry name');
          continue;
        case 'K':
          longLink = cstring(await this.#meta(r, h.size, padding), 0, h.size, 'link name');
          continue;
      }
      const entry: Entry = {
        name: pax.path ?? longName ?? h.name,
        linkname: pax.linkpath ?? longLink ?? h.linkname,
        type: h.type,
        mode: h.mode,
        uid: pax.uid ?? h.uid,
        gid: pax.gid ?? h.gid,
        size: pax.size ?? h.size,
        mtime: pax.mtime ?? h.mtime,
        atime: pax.atime ?? pax.mtime ?? h.mtime,
        devmajor: h.devmajor,
        devminor: h.devminor,
        xattrs: pax.xattrs,
      };
      const entryPadding = (BLOCK - (entry.size % BLOCK)) % BLOCK;
      const body = { remaining: entry.size };
      await this.#entry(entry, r, body);
      await r.skip(body.remaining + entryPadding);
      if (this.#inflightError !== undefined) throw this.#inflightError;
      delete pax.path;
      delete pax.linkpath;
      delete pax.size;
      delete pax.uid;
      delete pax.gid;
      delete pax.mtime;
      delete pax.atime;
      pax.xattrs = new Map();
      longName = undefined;
      longLink = undefined;
    }
    await r.drain();
    await this.#drain();
  }

  async #meta(r: ByteReader, size: number, padding: number): Promise<Buffer> {
    if (size > MAX_META_BYTES) throw invalid(`layer has a ${size}-byte extended header (limit ${MAX_META_BYTES})`);
    const body = size === 0 ? Buffer.alloc(0) : await r.exact(size);
    if (body === null) throw truncated();
    const copy = Buffer.from(body);
    await r.skip(padding);
    return copy;
  }

  async #entry(e: Entry, r: ByteReader, body: { remaining: number }): Promise<void> {
    faultPoint('image:mid-extract');
    let type = e.type;
    if (type === '\0') type = e.name.endsWith('/') ? '5' : '0'; // V7: a trailing slash marks a directory
    const comps = components(e.name, 'entry');
    const rel = comps.join('/');
    const base = comps[comps.length - 1];
    if (e.uid < 0 || e.uid > MAX_ID || e.gid < 0 || e.gid > MAX_ID) {
      throw invalid(`layer entry ${JSON.stringify(e.name)} has an invalid owner ${e.uid}:${e.gid}`);
    }

    if (base?.startsWith('.wh.') === true) {
      const dirComps = comps.slice(0, -1);
      if (base === '.wh..wh..opq') {
        await this.#ensureDir(dirComps, e.name);
        this.#opaque.add(dirComps.join('/'));
        return;
      }
      if (base.startsWith('.wh..wh.')) return; // AUFS metadata; Docker skips it too
      const hidden = base.slice('.wh.'.length);
      if (hidden === '..') throw unsafe(`layer whiteout ${JSON.stringify(e.name)} escapes its directory`, { name: e.name });
      if (hidden === '' || hidden === '.') throw invalid(`layer whiteout ${JSON.stringify(e.name)} names no file`);
      const target = [...dirComps, hidden];
      const targetRel = target.join('/');
      await this.#ensureParents(target, e.name);
      await this.#remove(targetRel);
      // overlayfs whiteout: a 0/0 char device, mode 0, owned by root (as overlayfs itself creates them).
      this.#nodes.set(targetRel, { type: 'c', mode: 0, major: 0, minor: 0, uid: 0, gid: 0, atime: e.atime, mtime: e.mtime });
      this.#kinds.set(targetRel, 'node');
      return;
    }

    if (rel === '' && type !== '5') throw invalid(`layer entry ${JSON.stringify(e.name)} replaces the root with a non-directory`);
    switch (type) {
      case '0':
      case '7':
        await this.#file(comps, rel, e, r, body);
        break;
      case '5':
        await this.#dir(comps, rel, e);
        break;
      case '2':
        await this.#symlink(comps, rel, e);
        break;
      case '1':
        await this.#hardlink(comps, rel, e);
        break;
      case '3':
      case '4':
      case '6':
        await this.#ensureParents(comps, e.name);
        await this.#remove(rel);
        this.#nodes.set(rel, {
          type: type === '3' ? 'c' : type === '4' ? 'b' : 'p',
          mode: e.mode,
          major: e.devmajor,
          minor: e.devminor,
          uid: e.uid,
          gid: e.gid,
          atime: e.atime,
          mtime: e.mtime,
        });
        this.#kinds.set(rel, 'node');
        break;
      case 'S':
        throw invalid(`layer entry ${JSON.stringify(e.name)} is a GNU sparse file, which is not supported`);
      default:
        throw invalid(`layer entry ${JSON.stringify(e.name)} has unsupported type ${JSON.stringify(type)}`, { type });
    }
    if (e.xattrs.size > 0) this.#xattrs.set(rel, e.xattrs);
  }

  /** Creates missing parent directories (0755, root), refusing to pass through anything but our own directories. */
  async #ensureParents(comps: string[], name: string): Promise<void> {
    let rel = '';
    for (let i = 0; i < comps.length - 1; i++) {
      rel = i === 0 ? (comps[0] ?? '') : `${rel}/${comps[i] ?? ''}`;
      const kind = this.#kinds.get(rel);
      if (kind === 'dir') continue;
      if (kind === 'symlink') throw unsafe(`layer entry ${JSON.stringify(name)} writes through the symlink ${JSON.stringify(rel)}`, { name, symlink: rel });
      if (kind !== undefined) throw invalid(`layer entry ${JSON.stringify(name)} has a parent ${JSON.stringify(rel)} that is not a directory`);
      await fs.mkdir(this.#abs(rel), { mode: 0o755 });
      this.#kinds.set(rel, 'dir');
      this.#dirMeta.set(rel, { mode: 0o755 });
    }
  }

  /** Makes `comps` a directory (used by opaque markers); the root always is one. */
  async #ensureDir(comps: string[], name: string): Promise<void> {
    if (comps.length === 0) return;
    await this.#ensureParents(comps, name);
    const rel = comps.join('/');
    const kind = this.#kinds.get(rel);
    if (kind === 'dir') return;
    if (kind === 'symlink') throw unsafe(`layer entry ${JSON.stringify(name)} writes through the symlink ${JSON.stringify(rel)}`, { name, symlink: rel });
    if (kind !== undefined) throw invalid(`layer entry ${JSON.stringify(name)} marks ${JSON.stringify(rel)} opaque but it is not a directory`);
    await fs.mkdir(this.#abs(rel), { mode: 0o755 });
    this.#kinds.set(rel, 'dir');
    this.#dirMeta.set(rel, { mode: 0o755 });
  }

  /** Removes what an earlier entry of this layer put at `rel`, without following it. */
  async #remove(rel: string): Promise<void> {
    const kind = this.#kinds.get(rel);
    if (kind === undefined) return;
    await this.#drain();
    if (kind === 'dir') {
      // Our own directory: fs.rm lstat()s and never descends through symlinks.
      await fs.rm(this.#abs(rel), { recursive: true, force: true });
      this.#forget(rel, true);
      return;
    }
    if (!(kind === 'node' && this.#nodes.has(rel))) await fs.unlink(this.#abs(rel)); // a pending node is not on disk yet
    this.#forget(rel, false);
  }

  #forget(rel: string, isDir: boolean): void {
    for (const m of [this.#kinds, this.#dirMeta, this.#xattrs, this.#nodes]) m.delete(rel);
    this.#opaque.delete(rel);
    if (!isDir) return;
    const prefix = `${rel}/`;
    for (const m of [this.#kinds, this.#dirMeta, this.#xattrs, this.#nodes]) {
      for (const k of m.keys()) if (k.startsWith(prefix)) m.delete(k);
    }
    for (const k of this.#opaque) if (k.startsWith(prefix)) this.#opaque.delete(k);
  }

  async #file(comps: string[], rel: string, e: Entry, r: ByteReader, body: { remaining: number }): Promise<void> {
    await this.#ensureParents(comps, e.name);
    await this.#remove(rel);
    const abs = this.#abs(rel);
    this.#kinds.set(rel, 'file');
    if (e.size <= SMALL_FILE_BYTES) {
      // Small files: collect the (zero-copy) slices, then open/write/chown/chmod/utimes/close
      // in the background so several files are in the thread pool at once.
      const parts: Buffer[] = [];
      while (body.remaining > 0) {
        const part = await r.some(body.remaining);
        if (part === null) throw truncated();
        parts.push(part);
        body.remaining -= part.length;
      }
      this.#signal?.throwIfAborted();
      while (this.#inflight.size >= MAX_INFLIGHT) await Promise.race(this.#inflight);
      if (this.#inflightError !== undefined) throw this.#inflightError;
      const job: Promise<void> = writeSmallFile(abs, parts, this.#fileMeta(e)).then(
        () => void this.#inflight.delete(job),
        (err: unknown) => {
          this.#inflight.delete(job);
          this.#inflightError ??= err;
        },
      );
      this.#inflight.add(job);
      return;
    }
    const fh = await fs.open(abs, OPEN_FLAGS, e.mode & 0o777);
    try {
      while (body.remaining > 0) {
        const part = await r.some(body.remaining);
        if (part === null) throw truncated();
        body.remaining -= part.length;
        this.#signal?.throwIfAborted();
        await writeAll(fh, part);
      }
      await setFileMeta(fh, this.#fileMeta(e));
    } finally {
      await fh.close();
    }
  }

  async #dir(comps: string[], rel: string, e: Entry): Promise<void> {
    if (rel !== '') {
      await this.#ensureParents(comps, e.name);
      if (this.#kinds.get(rel) !== 'dir') {
        await this.#remove(rel);
        await fs.mkdir(this.#abs(rel), { mode: 0o700 });
        this.#kinds.set(rel, 'dir');
      }
    }
    // Owner now (root can still write whatever the owner); mode and times at the
    // end, so a read-only directory still takes its entries and keeps its mtime.
    if (this.#needsChown(e.uid, e.gid)) await fs.lchown(this.#abs(rel), e.uid, e.gid);
    this.#dirMeta.set(rel, { mode: e.mode, times: { atime: e.atime, mtime: e.mtime } });
  }

  async #symlink(comps: string[], rel: string, e: Entry): Promise<void> {
    if (e.linkname === '') throw invalid(`layer symlink ${JSON.stringify(e.name)} has an empty target`);
    await this.#ensureParents(comps, e.name);
    await this.#remove(rel);
    const abs = this.#abs(rel);
    // The target is kept verbatim: it is resolved inside the container, never by us.
    await fs.symlink(e.linkname, abs);
    this.#kinds.set(rel, 'symlink');
    if (this.#needsChown(e.uid, e.gid)) await fs.lchown(abs, e.uid, e.gid);
    await fs.lutimes(abs, e.atime, e.mtime);
  }

  async #hardlink(comps: string[], rel: string, e: Entry): Promise<void> {
    const target = components(e.linkname, 'hard link target');
    const targetRel = target.join('/');
    let prefix = '';
    for (let i = 0; i < target.length - 1; i++) {
      prefix = i === 0 ? (target[0] ?? '') : `${prefix}/${target[i] ?? ''}`;
      const kind = this.#kinds.get(prefix);
      if (kind === 'symlink') {
        throw unsafe(`layer hard link ${JSON.stringify(e.name)} points through the symlink ${JSON.stringify(prefix)}`, { name: e.name, target: e.linkname });
      }
      if (kind !== 'dir') break;
    }
    const kind = this.#kinds.get(targetRel);
    if (kind === undefined) throw invalid(`layer hard link ${JSON.stringify(e.name)} points to ${JSON.stringify(e.linkname)}, which is not in the layer`);
    if (kind === 'dir') throw invalid(`layer hard link ${JSON.stringify(e.name)} points to the directory ${JSON.stringify(e.linkname)}`);
    if (targetRel === rel || targetRel.startsWith(`${rel}/`)) throw invalid(`layer hard link ${JSON.stringify(e.name)} replaces its own target`);
    await this.#ensureParents(comps, e.name);
    await this.#remove(rel);
    if (this.#nodes.has(targetRel)) await this.#flushNodes();
    await this.#drain(); // the target may still be being written
    // link(2) does not follow a symlink target: linking to a symlink links the symlink.
    await fs.link(this.#abs(targetRel), this.#abs(rel));
    this.#kinds.set(rel, kind);
  }

  async #drain(): Promise<void> {
    while (this.#inflight.size > 0) await Promise.all(this.#inflight);
    if (this.#inflightError !== undefined) throw this.#inflightError;
  }

  async #flushNodes(): Promise<void> {
    const nodes = [...this.#nodes];
    this.#nodes.clear();
    // One shell per batch runs mknod for each node: far cheaper than one spawn from Node per node.
    const script =
      'set -e; while [ "$#" -ge 5 ]; do ' +
      'if [ "$3" = p ]; then mknod -m "$1" -- "$2" p; else mknod -m "$1" -- "$2" "$3" "$4" "$5"; fi; ' +
      'shift 5; done';
    let args: string[] = [];
    let argBytes = 0;
    const flush = async (): Promise<void> => {
      if (args.length === 0) return;
      await run('sh', ['-c', script, 'sh', ...args], { timeoutMs: 120_000, signal: this.#signal });
      args = [];
      argBytes = 0;
    };
    for (const [rel, n] of nodes) {
      const abs = this.#abs(rel);
      // mknod -m takes permission bits only (coreutils refuses setuid/setgid/sticky there: a
      // fuzzed layer found it); the special bits are set by the chmod below.
      args.push((n.mode & 0o777).toString(8), abs, n.type, String(n.major), String(n.minor));
      argBytes += abs.length + 32;
      if (argBytes > 256 * 1024) await flush();
    }
    await flush();
    await inBatches(nodes, async ([rel, n]) => {
      const abs = this.#abs(rel);
      await fs.lchown(abs, n.uid, n.gid);
      // chown(2) may clear setuid/setgid, and mknod -m took only the permission bits.
      if ((n.mode & 0o7000) !== 0) await fs.chmod(abs, n.mode);
      await fs.lutimes(abs, n.atime, n.mtime);
    });
  }

  /** After the last entry: devices, xattrs and opaque markers, then directory modes and times. */
  async finish(): Promise<void> {
    await this.#drain();
    await this.#flushNodes();
    const dump: string[] = [];
    for (const [rel, attrs] of this.#xattrs) {
      const lines: string[] = [];
      for (const [name, value] of attrs) {
        if (name === '' || /[=\n\0]/.test(name)) throw invalid(`layer entry ${JSON.stringify(rel)} has an invalid xattr name ${JSON.stringify(name)}`);
        // overlayfs's own markers (redirect, metacopy, origin ...) steer how the kernel merges the
        // layers: a layer never sets them (as containers/storage refuses them); opaque directories
        // come from `.wh..wh..opq` entries, set below.
        if (name.startsWith('trusted.overlay.')) continue;
        lines.push(`${escapeAttr(name)}=0x${value.toString('hex')}`);
      }
      if (lines.length > 0) dump.push(`# file: ${escapeAttr(this.#abs(rel))}`, ...lines, '');
    }
    for (const rel of this.#opaque) dump.push(`# file: ${escapeAttr(this.#abs(rel))}`, 'trusted.overlay.opaque=0x79', '');
    if (dump.length > 0) {
      // -h: set on a symlink itself, never on what it points to.
      await run('setfattr', ['-h', '--restore=-'], { input: `${dump.join('\n')}\n`, timeoutMs: 120_000, signal: this.#signal });
    }
    // Deepest first; chmod/utimes of a directory do not touch its parent's mtime.
    const dirs = [...this.#dirMeta].sort((a, b) => depth(b[0]) - depth(a[0]));
    await inBatches(dirs, async ([rel, meta]) => {
      const abs = this.#abs(rel);
      await fs.chmod(abs, meta.mode);
      if (meta.times !== undefined) await fs.utimes(abs, meta.times.atime, meta.times.mtime);
    });
  }
}

function depth(rel: string): number {
  if (rel === '') return 0;
  let n = 1;
  for (let i = 0; i < rel.length; i++) if (rel.charCodeAt(i) === 0x2f) n++;
  return n;
}

/** getfattr's quoting, which `setfattr --restore` undoes: backslash-octal for anything not printable ASCII. */
function escapeAttr(s: string): string {
  let out = '';
  for (const byte of Buffer.from(s, 'utf8')) {
    out += byte > 0x20 && byte < 0x7f && byte !== 0x5c ? String.fromCharCode(byte) : `\\${byte.toString(8).padStart(3, '0')}`;
  }
  return out;
}

async function inBatches<T>(items: T[], fn: (item: T) => Promise<void>): Promise<void> {
  for (let i = 0; i < items.length; i += MAX_INFLIGHT) {
    await Promise.all(items.slice(i, i + MAX_INFLIGHT).map(fn));
  }
}

async function writeAll(fh: FileHandle, buf: Buffer): Promise<void> {
  let off = 0;
  while (off < buf.length) {
    const { bytesWritten } = await fh.write(buf, off, buf.length - off);
    off += bytesWritten;
  }
}

interface FileMeta {
  mode: number;
  uid: number;
  gid: number;
  atime: number;
  mtime: number;
  chown: boolean;
  chmod: boolean;
}

async function setFileMeta(fh: FileHandle, m: FileMeta): Promise<void> {
  if (m.chown) await fh.chown(m.uid, m.gid);
  if (m.chown || m.chmod) await fh.chmod(m.mode); // after chown, which clears setuid/setgid
  await fh.utimes(m.atime, m.mtime);
}

type Step = (done: (err: NodeJS.ErrnoException | null) => void) => void;

/**
 * open, write, [fchown, fchmod,] futimes, close as one callback chain: for
 * small files the per-call cost of promises and FileHandle objects is about
 * half the time on a fast disk.
 */
function writeSmallFile(abs: string, parts: Buffer[], m: FileMeta): Promise<void> {
  const data = parts.length === 1 ? (parts[0] ?? Buffer.alloc(0)) : Buffer.concat(parts);
  return new Promise((resolve, reject) => {
    fsCallback.open(abs, OPEN_FLAGS, m.mode & 0o777, (openErr, fd) => {
      if (openErr !== null) {
        reject(openErr);
        return;
      }
      const steps: Step[] = [];
      let off = 0;
      const write: Step = (done) => {
        if (off >= data.length) {
          done(null);
          return;
        }
        fsCallback.write(fd, data, off, data.length - off, null, (err, n) => {
          if (err !== null) done(err);
          else {
            off += n;
            write(done);
          }
        });
      };
      steps.push(write);
      if (m.chown) steps.push((done) => fsCallback.fchown(fd, m.uid, m.gid, done));
      if (m.chown || m.chmod) steps.push((done) => fsCallback.fchmod(fd, m.mode, done));
      steps.push((done) => fsCallback.futimes(fd, m.atime, m.mtime, done));
      let i = 0;
      const next = (err: NodeJS.ErrnoException | null): void => {
        const step = steps[i++];
        if (err !== null || step === undefined) {
          fsCallback.close(fd, (closeErr) => {
            const failure = err ?? closeErr;
            if (failure !== null) reject(failure);
            else resolve();
          });
          return;
        }
        step(next);
      };
      next(null);
    });
  });
}

// ---------------------------------------------------------------------------
// Helper commands

interface RunOptions {
  input?: string;
  timeoutMs: number;
  signal: AbortSignal | undefined;
}

/**
 * Runs a short command (argv, no shell interpretation of our data) and waits
 * for it to exit, even when killed on timeout or abort, so nothing it does can
 * land after our cleanup.
 */
async function run(file: string, args: string[], options: RunOptions): Promise<void> {
  options.signal?.throwIfAborted();
  const child = spawn(file, args, { stdio: [options.input === undefined ? 'ignore' : 'pipe', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (d: string) => {
    if (stderr.length < 64 * 1024) stderr += d;
  });
  let timedOut = false;
  const kill = (): void => void child.kill('SIGKILL');
  const timer = setTimeout(() => {
    timedOut = true;
    kill();
  }, options.timeoutMs);
  options.signal?.addEventListener('abort', kill, { once: true });
  if (child.stdin !== null) {
    child.stdin.on('error', () => undefined); // EPIPE if the command dies early; its exit status tells
    child.stdin.end(options.input);
  }
  try {
    const [code, sig] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve, reject) => {
      child.once('error', reject);
      child.once('close', (c, s) => resolve([c, s]));
    });
    options.signal?.throwIfAborted();
    if (code !== 0) {
      const argv = [file, ...args].slice(0, 12);
      const why = timedOut ? `timed out after ${options.timeoutMs} ms` : sig !== null ? `killed by ${sig}` : `exit code ${code}`;
      throw new IsulaError('INTERNAL', `${file} failed (${why}): ${stderr.trim()}`, {
        details: { argv, exitCode: code, signal: sig, stderr: stderr.trim() },
      });
    }
  } finally {
    clearTimeout(timer);
    options.signal?.removeEventListener('abort', kill);
  }
}
