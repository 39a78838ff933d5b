/**
 * The filesystem side of `docker cp` (HEAD/GET/PUT /containers/{id}/archive)
 * and `docker export`, on a container's mounted root filesystem.
 *
 * Paths are resolved like moby's `FollowSymlinkInScope`: every symlink is read
 * as if the rootfs were `/` (see spec/rootfs-path.ts). After resolution,
 * nothing is reached by a path string that a process in the container could
 * re-point: each directory is opened with O_NOFOLLOW and what lies in it is
 * reached through `/proc/self/fd/<fd>/<name>` (openat() semantics, what
 * moby's `WithProcSelfFD` does), and every opened directory is checked to be
 * under the rootfs. So a running container that swaps a directory for a
 * symlink mid-copy makes the copy fail, never read or write the host.
 *
 * Extraction is stricter than moby, which follows symlinks in entry paths
 * inside the rootfs: an entry whose parent in the container is a symlink
 * (existing, or made by an earlier entry of the same archive) is refused.
 */
import { Buffer } from 'node:buffer';
import { constants, type BigIntStats } from 'node:fs';
import fs, { type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { Header, Parser, Pax, type HeaderData, type ReadEntry } from 'tar';
import { IsulaError } from '../errors.js';
import { rfc3339Nano } from '../time.js';
import { resolveInRoot } from '../spec/rootfs-path.js';

/**
 * Docker's container path stat (header X-Docker-Container-Path-Stat =
 * base64(JSON)). `mode` is a Go os.FileMode: permission bits | type bits (dir
 * 1<<31, symlink 1<<27, namedPipe 1<<25, socket 1<<24, device 1<<26,
 * charDevice 1<<21 with device, setuid 1<<23, setgid 1<<22, sticky 1<<20); the
 * docker CLI calls IsDir() on it. `linkTarget` is set for a symlink: its
 * target fully resolved in the container, as an absolute container path.
 */
export interface PathStat {
  name: string;
  size: number;
  mode: number;
  /** RFC3339Nano, UTC. */
  mtime: string;
  linkTarget: string;
}

// Linux's generic O_PATH (x86_64, aarch64, riscv64, loongarch64); Node does
// not export it. An O_PATH descriptor pins a device or fifo without opening it.
const O_PATH = 0o10000000;
const O_DIR = constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW;
const CHUNK_BYTES = 64 * 1024;
const BLOCK = 512;

/** Go's os.FileMode bits (they exceed 2^31: built with arithmetic, not bitwise ops). */
const GO_MODE = {
  dir: 2 ** 31,
  symlink: 2 ** 27,
  device: 2 ** 26,
  namedPipe: 2 ** 25,
  socket: 2 ** 24,
  setuid: 2 ** 23,
  setgid: 2 ** 22,
  charDevice: 2 ** 21,
  sticky: 2 ** 20,
} as const;

// ---------------------------------------------------------------------------
// stat and GET

/**
 * Stats `ctrPath` (relative = relative to `/`). A symlink as the last
 * component is stat'ed itself, not followed, unless the path ends in `/` or
 * `/.` (moby's `ResolvePath`/`StatPath`).
 * Throws CONTAINER_PATH_NOT_FOUND, or CONTAINER_PATH_INVALID for `file/`.
 */
export async function statContainerPath(rootfs: string, ctrPath: string): Promise<PathStat> {
  const realRoot = await fs.realpath(rootfs);
  const loc = await locate(realRoot, ctrPath);
  try {
    return await pathStat(realRoot, loc);
  } finally {
    await loc.dir.close();
  }
}

/**
 * A tar stream of `ctrPath` as docker's GET /containers/{id}/archive gives
 * it: entries rebased so the top one is named after the path's base name
 * (`/etc` → `etc/`, `etc/passwd`; `/etc/.` → `./`, `./passwd`; `/` → `/`,
 * `/bin/`). Symlinks are stored, never followed; hardlinks as links to the
 * first name; devices and fifos kept; sockets skipped; numeric owners, mtime
 * to the second, no user names (moby's `TarWithOptions`). The stream holds
 * directory descriptors until it ends or is destroyed.
 */
export async function archiveContainerPath(rootfs: string, ctrPath: string, idMap?: { uid: number; gid: number; size: number }): Promise<{ stat: PathStat; stream: NodeJS.ReadableStream }> {
  const realRoot = await fs.realpath(rootfs);
  const loc = await locate(realRoot, ctrPath);
  let stat: PathStat;
  try {
    stat = await pathStat(realRoot, loc);
  } catch (err) {
    await loc.dir.close();
    throw err;
  }
  const rebaseName = goBase(loc.absPath);
  let started = false;
  async function* generate(): AsyncGenerator<Buffer> {
    started = true;
    const ctx: PackContext = { links: new Map(), ...(idMap !== undefined && { idMap }) };
    try {
      if (loc.stat.isDirectory()) {
        // moby rebases "." onto the base name, and the root "/" onto "".
        const replacement = rebaseName === '/' ? '' : rebaseName;
        const top = loc.name === undefined ? loc.dir : await openDir(inDir(loc.dir, loc.name));
        try {
          if (top !== loc.dir) await assertInside(top, realRoot, loc.absPath);
          const st = await top.stat({ bigint: true });
          yield* packDir(ctx, top, st, replacement, (rel) => `${replacement}/${rel}`, '');
        } finally {
          if (top !== loc.dir) await top.close();
        }
      } else if (loc.name !== undefined) {
        yield* packNonDir(ctx, inDir(loc.dir, loc.name), loc.stat, rebaseName);
      }
      yield Buffer.alloc(2 * BLOCK);
    } finally {
      await loc.dir.close();
    }
  }
  const stream = Readable.from(generate(), { objectMode: false });
  // A stream destroyed before its first read never runs the generator's finally: close here.
  stream.once('close', () => { if (!started) void loc.dir.close().catch(() => {}); });
  return { stat, stream };
}

/**
 * The whole root filesystem as a tar stream (docker export): names relative
 * to it without a leading `./` and no entry for the root itself (`bin/`,
 * `bin/sh`, as moby's `archive.Tar(basefs)`), owners and modes kept, symlinks
 * not followed. Mounts below the rootfs (found in /proc/self/mountinfo, or a
 * directory whose st_dev differs from the rootfs's) are not descended: docker
 * exports the container's own filesystem, not its volumes. A mounted
 * directory still appears as an empty directory, as it does in the image; a
 * mounted file is left out. Non-directories are not compared by st_dev,
 * because overlayfs reports the lower layer's device for them.
 */
export function exportRootfs(rootfs: string): NodeJS.ReadableStream {
  async function* generate(): AsyncGenerator<Buffer> {
    const realRoot = await fs.realpath(rootfs);
    const root = await openDir(realRoot);
    try {
      const st = await root.stat({ bigint: true });
      const mounts = await mountPointsUnder(realRoot);
      const ctx: PackContext = {
        links: new Map(),
        isMountPoint: (rel, s) => mounts.has(rel) || (s.isDirectory() && s.dev !== st.dev),
      };
      yield* packDir(ctx, root, st, undefined, (rel) => rel, '');
      yield Buffer.alloc(2 * BLOCK);
    } finally {
      await root.close();
    }
  }
  return Readable.from(generate(), { objectMode: false });
}

interface Located {
  /** The container path, absolute and clean, with a trailing `/` or `/.` kept. */
  absPath: string;
  /** The parent directory of the object, or the object itself when `name` is undefined. */
  dir: FileHandle;
  name: string | undefined;
  stat: BigIntStats;
}

async function locate(realRoot: string, ctrPath: string): Promise<Located> {
  const absPath = containerAbsPath(ctrPath);
  const notFound = (cause?: unknown): IsulaError =>
    new IsulaError('CONTAINER_PATH_NOT_FOUND', `Could not find the file ${ctrPath} in container`, { cause, details: { path: ctrPath } });
  if (absPath === '/' || assertsDirectory(absPath)) {
    // Ends in `/` or `/.`: the last component is followed, and must be a directory.
    const host = await resolveInRoot(realRoot, absPath);
    let dir: FileHandle;
    try {
      dir = await openDir(host);
    } catch (err) {
      if (!isCode(err, 'ENOENT', 'ENOTDIR', 'ELOOP')) throw err;
      const st = await fs.lstat(host).catch(() => undefined);
      if (st !== undefined && !st.isDirectory() && !st.isSymbolicLink()) {
        throw new IsulaError('CONTAINER_PATH_INVALID', `${ctrPath} is not a directory`, { cause: err, details: { path: ctrPath } });
      }
      throw notFound(err);
    }
    try {
      await assertInside(dir, realRoot, ctrPath);
      return { absPath, dir, name: undefined, stat: await dir.stat({ bigint: true }) };
    } catch (err) {
      await dir.close();
      throw err;
    }
  }
  const dir = await openDir(await resolveInRoot(realRoot, path.posix.dirname(absPath))).catch((err: unknown) => {
    throw isCode(err, 'ENOENT', 'ENOTDIR', 'ELOOP') ? notFound(err) : err;
  });
  try {
    await assertInside(dir, realRoot, ctrPath);
    const name = path.posix.basename(absPath);
    const stat = await fs.lstat(inDir(dir, name), { bigint: true }).catch((err: unknown) => {
      throw isCode(err, 'ENOENT', 'ENOTDIR') ? notFound(err) : err;
    });
    return { absPath, dir, name, stat };
  } catch (err) {
    await dir.close();
    throw err;
  }
}

async function pathStat(realRoot: string, loc: Located): Promise<PathStat> {
  let linkTarget = '';
  if (loc.stat.isSymbolicLink()) {
    // moby: FollowSymlinkInScope(path, "/"), as far as it resolves.
    const host = await resolveInRoot(realRoot, loc.absPath);
    linkTarget = '/' + path.relative(realRoot, host).split(path.sep).join('/');
  }
  return {
    name: goBase(loc.absPath),
    size: Number(loc.stat.size),
    mode: goFileMode(Number(loc.stat.mode)),
    mtime: rfc3339Nano(loc.stat.mtimeNs),
    linkTarget,
  };
}

/** moby: PreserveTrailingDotOrSeparator(filepath.Join("/", p), p). */
function containerAbsPath(ctrPath: string): string {
  let clean = path.posix.normalize('/' + ctrPath);
  if (clean.length > 1) clean = clean.replace(/\/+$/, '');
  if (path.posix.basename(clean) !== '.' && (ctrPath === '.' || ctrPath.endsWith('/.'))) {
    clean = clean === '/' ? '/.' : `${clean}/.`;
  }
  if (!clean.endsWith('/') && ctrPath.endsWith('/')) clean += '/';
  return clean;
}

function assertsDirectory(absPath: string): boolean {
  return absPath.endsWith('/') || absPath.endsWith('/.');
}

/** Go's filepath.Base: trailing slashes dropped, "/" for the root. */
function goBase(p: string): string {
  const trimmed = p.replace(/\/+$/, '');
  return trimmed === '' ? '/' : path.posix.basename(trimmed);
}

function goFileMode(mode: number): number {
  let m = mode & 0o777;
  switch (mode & constants.S_IFMT) {
    case constants.S_IFDIR: m += GO_MODE.dir; break;
    case constants.S_IFLNK: m += GO_MODE.symlink; break;
    case constants.S_IFIFO: m += GO_MODE.namedPipe; break;
    case constants.S_IFSOCK: m += GO_MODE.socket; break;
    case constants.S_IFBLK: m += GO_MODE.device; break;
    case constants.S_IFCHR: m += GO_MODE.device + GO_MODE.charDevice; break;
    default: break;
  }
  if (mode & 0o4000) m += GO_MODE.setuid;
  if (mode & 0o2000) m += GO_MODE.setgid;
  if (mode & 0o1000) m += GO_MODE.sticky;
  return m;
}

// ---------------------------------------------------------------------------
// tar writing

interface PackContext {
  /** `dev:ino` of a multiply-linked non-directory → the archive name it was first stored under. */
  links: Map<string, string>;
  /** True for a mount point that must not be descended (export only). */
  isMountPoint?: (rel: string, st: BigIntStats) => boolean;
  /** A user namespace's range: owners in it are written as the container's ids. */
  idMap?: { uid: number; gid: number; size: number };
}

/**
 * A directory (its header when `name` is given) and, depth first in byte
 * order of names (Go's WalkDir), everything below it.
 */
async function* packDir(
  ctx: PackContext,
  dir: FileHandle,
  st: BigIntStats,
  name: string | undefined,
  childName: (rel: string) => string,
  rel: string,
): AsyncGenerator<Buffer> {
  if (name !== undefined) yield* headerBlocks(entryHeader(ctx, name.endsWith('/') ? name : `${name}/`, 'Directory', st));
  const names = await fs.readdir(inDir(dir));
  names.sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  for (const child of names) {
    const childRel = rel === '' ? child : `${rel}/${child}`;
    const at = inDir(dir, child);
    let cst: BigIntStats;
    try {
      cst = await fs.lstat(at, { bigint: true });
    } catch (err) {
      if (isCode(err, 'ENOENT')) continue; // removed while we walk (running container)
      throw err;
    }
    const mounted = ctx.isMountPoint?.(childRel, cst) ?? false;
    if (!cst.isDirectory()) {
      if (!mounted) yield* packNonDir(ctx, at, cst, childName(childRel));
      continue;
    }
    if (mounted) {
      yield* headerBlocks(entryHeader(ctx, `${childName(childRel)}/`, 'Directory', cst));
      continue;
    }
    let sub: FileHandle;
    try {
      sub = await openDir(at);
    } catch (err) {
      if (isCode(err, 'ENOENT', 'ENOTDIR', 'ELOOP')) continue; // replaced while we walk
      throw err;
    }
    try {
      yield* packDir(ctx, sub, await sub.stat({ bigint: true }), childName(childRel), childName, childRel);
    } finally {
      await sub.close();
    }
  }
}

/** One non-directory, reached by `at` (a /proc/self/fd path; never followed). */
async function* packNonDir(ctx: PackContext, at: string, st: BigIntStats, name: string): AsyncGenerator<Buffer> {
  if (st.isSocket()) return; // moby: "archive/tar: sockets not supported", skipped
  if (st.nlink > 1n) {
    const key = `${st.dev}:${st.ino}`;
    const first = ctx.links.get(key);
    if (first !== undefined) {
      yield* headerBlocks({ ...entryHeader(ctx, name, 'Link', st), linkpath: first, size: 0 });
      return;
    }
    ctx.links.set(key, name);
  }
  if (st.isSymbolicLink()) {
    yield* headerBlocks({ ...entryHeader(ctx, name, 'SymbolicLink', st), linkpath: await fs.readlink(at) });
  } else if (st.isCharacterDevice() || st.isBlockDevice()) {
    const { major, minor } = deviceNumbers(st.rdev);
    yield* headerBlocks({ ...entryHeader(ctx, name, st.isCharacterDevice() ? 'CharacterDevice' : 'BlockDevice', st), devmaj: major, devmin: minor });
  } else if (st.isFIFO()) {
    yield* headerBlocks(entryHeader(ctx, name, 'FIFO', st));
  } else if (st.isFile()) {
    yield* packFile(ctx, at, st, name);
  }
}

async function* packFile(ctx: PackContext, at: string, st: BigIntStats, name: string): AsyncGenerator<Buffer> {
  let fh: FileHandle;
  try {
    // O_NONBLOCK: if the file was swapped for a fifo, do not hang on it.
    fh = await fs.open(at, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (err) {
    if (isCode(err, 'ENOENT', 'ELOOP')) return; // removed or replaced while we walk
    throw err;
  }
  try {
    const fst = await fh.stat({ bigint: true });
    if (!fst.isFile() || fst.ino !== st.ino) return;
    const size = Number(fst.size);
    yield* headerBlocks(entryHeader(ctx, name, 'File', fst));
    let remaining = size;
    while (remaining > 0) {
      const buf = Buffer.alloc(Math.min(CHUNK_BYTES, remaining));
      const { bytesRead } = await fh.read(buf, 0, buf.length, null);
      if (bytesRead === 0) {
        // Shrunk while we read: the header promised `size` bytes, so pad.
        while (remaining > 0) {
          const n = Math.min(CHUNK_BYTES, remaining);
          yield Buffer.alloc(n);
          remaining -= n;
        }
        break;
      }
      yield bytesRead === buf.length ? buf : buf.subarray(0, bytesRead);
      remaining -= bytesRead;
    }
    const pad = (BLOCK - (size % BLOCK)) % BLOCK;
    if (pad > 0) yield Buffer.alloc(pad);
  } finally {
    await fh.close();
  }
}

type PackType = 'File' | 'Directory' | 'SymbolicLink' | 'Link' | 'CharacterDevice' | 'BlockDevice' | 'FIFO';

function entryHeader(ctx: PackContext, name: string, type: PackType, st: BigIntStats): HeaderData {
  // A remapped container's files are its ids, not the host's (as Docker's cp from a userns container).
  const back = (id: number, start: number | undefined): number => (ctx.idMap !== undefined && start !== undefined && id >= start && id < start + ctx.idMap.size ? id - start : id);
  return {
    path: name,
    type,
    mode: Number(st.mode) & 0o7777,
    uid: back(Number(st.uid), ctx.idMap?.uid),
    gid: back(Number(st.gid), ctx.idMap?.gid),
    size: type === 'File' ? Number(st.size) : 0,
    // moby truncates mtime to the second and sets no atime, ctime or names.
    mtime: new Date(Number(st.mtimeNs / 1_000_000_000n) * 1000),
    uname: '',
    gname: '',
  };
}

function* headerBlocks(data: HeaderData): Generator<Buffer> {
  const header = new Header(data);
  if (header.encode()) {
    // Too long or too large for ustar: a PAX extended header carries it.
    yield new Pax({
      path: data.path ?? '',
      ...(data.linkpath === undefined ? {} : { linkpath: data.linkpath }),
      ...(data.size === undefined ? {} : { size: data.size }),
      ...(data.uid === undefined ? {} : { uid: data.uid }),
      ...(data.gid === undefined ? {} : { gid: data.gid }),
      ...(data.mtime === undefined ? {} : { mtime: data.mtime }),
    }).encode();
  }
  // encode() without a buffer allocates `block`.
  if (header.block === undefined) throw new IsulaError('INTERNAL', `cannot encode the tar header of ${String(data.path)}`);
  yield header.block;
}

/** glibc's gnu_dev_major/minor. */
function deviceNumbers(rdev: bigint): { major: number; minor: number } {
  const major = ((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn);
  const minor = (rdev & 0xffn) | ((rdev >> 12n) & ~0xffn);
  return { major: Number(major), minor: Number(minor) };
}

/** Mount points strictly below `realRoot`, relative to it. */
async function mountPointsUnder(realRoot: string): Promise<Set<string>> {
  const out = new Set<string>();
  let text: string;
  try {
    text = await fs.readFile('/proc/self/mountinfo', 'utf8');
  } catch {
    return out; // the st_dev check on directories still applies
  }
  const prefix = realRoot === '/' ? '/' : `${realRoot}/`;
  for (const line of text.split('\n')) {
    const field = line.split(' ')[4];
    if (field === undefined) continue;
    const mountPoint = field.replace(/\\([0-7]{3})/g, (_m, oct: string) => String.fromCharCode(parseInt(oct, 8)));
    if (mountPoint.startsWith(prefix) && mountPoint.length > prefix.length) out.add(mountPoint.slice(prefix.length));
  }
  return out;
}

// ---------------------------------------------------------------------------
// PUT: extraction

/**
 * Extracts a tar stream (plain or gzip) into the directory `ctrPath` of the
 * container (docker's PUT /containers/{id}/archive). `ctrPath` is resolved in
 * the rootfs with its last symlink followed and must be a directory.
 *
 * - Leading `/` of entry names is stripped, names are cleaned; a name that
 *   climbs out with `..` fails the extraction (moby), as does an entry whose
 *   parent path in the container is a symlink, and a hard link whose target
 *   climbs out or goes through a symlink.
 * - Symlink entries are created verbatim and never followed afterwards.
 * - An existing object is replaced (a directory merged with a directory
 *   entry); with `noOverwriteDirNonDir`, replacing a directory with a
 *   non-directory or the reverse fails.
 * - Owners (numeric), modes, mtimes are those of the archive; missing parent
 *   directories are made 0755 root-owned.
 * - Entries before a failure stay extracted (as in moby). The input is
 *   paused, not destroyed, on failure.
 *
 * Throws CONTAINER_PATH_NOT_FOUND, CONTAINER_PATH_INVALID (not a directory,
 * dir/non-dir overwrite), CONTAINER_ARCHIVE_INVALID (malformed or unsafe
 * archive), CANCELED (signal), INTERNAL (an I/O error, entry named).
 */
export async function extractToContainer(
  rootfs: string,
  ctrPath: string,
  tarStream: NodeJS.ReadableStream,
  opts: { noOverwriteDirNonDir: boolean; signal?: AbortSignal; idMap?: { uid: number; gid: number; size: number } },
): Promise<void> {
  if (opts.signal?.aborted === true) throw new IsulaError('CANCELED', 'extraction canceled', { cause: opts.signal.reason });
  const realRoot = await fs.realpath(rootfs);
  const ctrDir = path.posix.normalize('/' + ctrPath);
  const destHost = await resolveInRoot(realRoot, ctrDir);
  let dest: FileHandle;
  try {
    dest = await openDir(destHost);
  } catch (err) {
    if (!isCode(err, 'ENOENT', 'ENOTDIR', 'ELOOP')) throw err;
    const st = await fs.lstat(destHost).catch(() => undefined);
    if (st !== undefined && !st.isSymbolicLink()) {
      throw new IsulaError('CONTAINER_PATH_INVALID', 'extraction point is not a directory', { cause: err, details: { path: ctrPath } });
    }
    throw new IsulaError('CONTAINER_PATH_NOT_FOUND', `Could not find the file ${ctrPath} in container`, { cause: err, details: { path: ctrPath } });
  }
  try {
    await assertInside(dest, realRoot, ctrPath);
    await unpack(dest, ctrDir, tarStream, opts);
  } finally {
    await dest.close();
  }
}

interface DirTimes {
  name: string;
  atime: Date;
  mtime: Date;
}

async function unpack(
  dest: FileHandle,
  ctrDir: string,
  input: NodeJS.ReadableStream,
  opts: { noOverwriteDirNonDir: boolean; signal?: AbortSignal; idMap?: { uid: number; gid: number; size: number } },
): Promise<void> {
  const stop = new AbortController();
  let failure: IsulaError | undefined;
  let current: ReadEntry | undefined;
  const fail = (err: IsulaError): void => {
    if (failure !== undefined) return;
    failure = err;
    stop.abort(err);
    // Wakes an entry waiting for data that will not come.
    current?.destroy();
  };
  const onAbort = (): void => fail(new IsulaError('CANCELED', 'extraction canceled', { cause: opts.signal?.reason }));
  opts.signal?.addEventListener('abort', onAbort, { once: true });

  const dirTimes: DirTimes[] = [];
  let entries = 0;
  let allZero = true;
  let chain: Promise<void> = Promise.resolve();
  const parser = new Parser({ strict: true });
  parser.on('entry', (entry: ReadEntry) => {
    entries++;
    entry.on('error', () => undefined); // destroy() after a failure; already reported
    chain = chain.then(async () => {
      if (failure !== undefined) {
        entry.resume();
        return;
      }
      current = entry;
      try {
        await extractEntry(dest, ctrDir, entry, opts.noOverwriteDirNonDir, dirTimes, stop.signal, opts.idMap);
      } catch (err) {
        fail(failure ?? entryError(err, entry.path));
      } finally {
        current = undefined;
        entry.resume();
      }
    });
  });
  parser.on('error', (err: Error & { tarCode?: string }) => {
    // An empty body or one of only zero blocks is an empty archive (Go's tar agrees).
    if (err.tarCode === 'TAR_BAD_ARCHIVE' && entries === 0 && allZero) return;
    fail(new IsulaError('CONTAINER_ARCHIVE_INVALID', `invalid tar archive: ${err.message}`, { cause: err }));
  });
  const parsed = new Promise<void>((resolve) => {
    parser.on('end', () => resolve());
    stop.signal.addEventListener('abort', () => resolve(), { once: true });
  });

  try {
    await new Promise<void>((resolve, reject) => {
      const cleanup = (): void => {
        input.off('data', onData);
        input.off('end', onEnd);
        input.off('error', onError);
        parser.off('drain', onDrain);
        stop.signal.removeEventListener('abort', onStop);
      };
      const onData = (chunk: string | Buffer): void => {
        const buf = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
        if (allZero && buf.some((b) => b !== 0)) allZero = false;
        if (!parser.write(buf)) input.pause();
      };
      const onDrain = (): void => {
        if (failure === undefined) input.resume();
      };
      const onEnd = (): void => {
        cleanup();
        parser.end();
        resolve();
      };
      const onError = (err: Error): void => {
        cleanup();
        reject(new IsulaError('CONTAINER_ARCHIVE_INVALID', `reading the archive: ${err.message}`, { cause: err }));
      };
      const onStop = (): void => {
        cleanup();
        input.pause();
        resolve();
      };
      if (stop.signal.aborted) return onStop();
      input.on('data', onData);
      input.on('end', onEnd);
      input.on('error', onError);
      parser.on('drain', onDrain);
      stop.signal.addEventListener('abort', onStop, { once: true });
      input.resume();
    }).catch((err: unknown) => fail(err instanceof IsulaError ? err : entryError(err, '')));
    await parsed;
    await chain;
    if (failure === undefined) await restoreDirTimes(dest, dirTimes).catch((err: unknown) => fail(entryError(err, '')));
  } finally {
    opts.signal?.removeEventListener('abort', onAbort);
  }
  if (failure !== undefined) throw failure;
}

async function extractEntry(
  dest: FileHandle,
  ctrDir: string,
  entry: ReadEntry,
  noOverwriteDirNonDir: boolean,
  dirTimes: DirTimes[],
  signal: AbortSignal,
  idMap?: { uid: number; gid: number; size: number },
): Promise<void> {
  const name = entryName(entry.path);
  if (name === undefined) return; // "." is the extraction point itself: moby leaves it alone
  const kind = entryKind(entry);
  const parts = name.split('/');
  const base = parts.pop() ?? name; // split() gives at least one element
  // In a user namespace the container's ids are the range's (root is its first id), as Docker's cp.
  const shift = (id: number, start: number | undefined): number => (idMap !== undefined && start !== undefined && id < idMap.size ? id + start : id);
  const uid = shift(entry.uid ?? 0, idMap?.uid);
  const gid = shift(entry.gid ?? 0, idMap?.gid);
  const mode = (entry.mode ?? (kind === 'dir' ? 0o755 : 0o644)) & 0o7777;
  const mtime = entry.mtime ?? new Date();
  const atime = entry.atime !== undefined && entry.atime > mtime ? entry.atime : mtime;
  const display = path.posix.join(ctrDir, name);

  const parent = await openParent(dest, parts, name, true);
  try {
    const at = inDir(parent, base);
    const existing = await fs.lstat(at).catch((err: unknown) => {
      if (isCode(err, 'ENOENT')) return undefined;
      throw err;
    });
    if (existing !== undefined) {
      if (noOverwriteDirNonDir && existing.isDirectory() && kind !== 'dir') {
        throw new IsulaError('CONTAINER_PATH_INVALID', `cannot overwrite directory "${display}" with non-directory "${entry.path}"`, { details: { entry: entry.path } });
      }
      if (noOverwriteDirNonDir && !existing.isDirectory() && kind === 'dir') {
        throw new IsulaError('CONTAINER_PATH_INVALID', `cannot overwrite non-directory "${display}" with directory "${entry.path}"`, { details: { entry: entry.path } });
      }
      if (!(existing.isDirectory() && kind === 'dir')) await removeAllAt(parent, base);
    }
    switch (kind) {
      case 'dir': {
        if (existing === undefined || !existing.isDirectory()) await fs.mkdir(at, 0o700);
        const dh = await openDir(at).catch((err: unknown) => {
          throw isCode(err, 'ENOTDIR', 'ELOOP') ? throughSymlink(entry.path, name) : err;
        });
        try {
          await dh.chown(uid, gid);
          await dh.chmod(mode);
        } finally {
          await dh.close();
        }
        // Set last: entries written into the directory later change its mtime.
        dirTimes.push({ name, atime, mtime });
        return;
      }
      case 'file': {
        const fh = await fs.open(at, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
        try {
          // The signal is checked before each read, not only after: an abort while a chunk is
          // being written destroys the entry, and minipass's iterator asked for more from a
          // destroyed stream waits for ever (a CI run hung in "PUT stops when its signal aborts").
          const chunks = entry[Symbol.asyncIterator]();
          for (;;) {
            signal.throwIfAborted();
            const next = await chunks.next();
            if (next.done === true) break;
            const buf = next.value as Buffer;
            let off = 0;
            while (off < buf.length) off += (await fh.write(buf, off, buf.length - off)).bytesWritten;
          }
          await fh.chown(uid, gid);
          await fh.chmod(mode); // after chown, which clears setuid/setgid
          await fh.utimes(atime, mtime);
        } finally {
          await fh.close();
        }
        return;
      }
      case 'symlink': {
        if (entry.linkpath === undefined) throw new IsulaError('CONTAINER_ARCHIVE_INVALID', `symlink entry "${entry.path}" has no target`);
        await fs.symlink(entry.linkpath, at);
        await fs.lchown(at, uid, gid);
        await fs.lutimes(at, atime, mtime);
        return;
      }
      case 'link': {
        const target = entryName(entry.linkpath ?? '');
        if (target === undefined) throw new IsulaError('CONTAINER_ARCHIVE_INVALID', `hard link "${entry.path}" has no target`, { details: { entry: entry.path } });
        const targetParts = target.split('/');
        const targetBase = targetParts.pop() ?? target;
        const targetParent = await openParent(dest, targetParts, entry.path, false);
        try {
          // link(2) does not follow a symlink as its source: a link to a symlink is a symlink.
          await fs.link(inDir(targetParent, targetBase), at);
        } catch (err) {
          if (isCode(err, 'ENOENT')) {
            throw new IsulaError('CONTAINER_ARCHIVE_INVALID', `hard link "${entry.path}" points to "${entry.linkpath ?? ''}", which does not exist`, { cause: err, details: { entry: entry.path } });
          }
          throw err;
        } finally {
          if (targetParent !== dest) await targetParent.close();
        }
        return;
      }
      case 'fifo':
      case 'char':
      case 'block': {
        await makeNode(parent, base, kind, mode, entry, signal);
        const nh = await fs.open(at, O_PATH | constants.O_NOFOLLOW);
        try {
          const st = await nh.stat();
          if (!(st.isFIFO() || st.isCharacterDevice() || st.isBlockDevice())) throw throughSymlink(entry.path, name);
          // An O_PATH descriptor cannot fchown; its /proc/self/fd link reaches the same inode.
          const pinned = `/proc/self/fd/${nh.fd}`;
          await fs.chown(pinned, uid, gid);
          await fs.chmod(pinned, mode);
          await fs.utimes(pinned, atime, mtime);
        } finally {
          await nh.close();
        }
        return;
      }
    }
  } finally {
    if (parent !== dest) await parent.close();
  }
}

type EntryKind = 'file' | 'dir' | 'symlink' | 'link' | 'fifo' | 'char' | 'block';

function entryKind(entry: ReadEntry): EntryKind {
  switch (entry.type) {
    case 'File':
    case 'OldFile':
    case 'ContiguousFile':
      return 'file';
    case 'Directory':
    case 'GNUDumpDir':
      return 'dir';
    case 'SymbolicLink':
      return 'symlink';
    case 'Link':
      return 'link';
    case 'FIFO':
      return 'fifo';
    case 'CharacterDevice':
      return 'char';
    case 'BlockDevice':
      return 'block';
    default:
      throw new IsulaError('CONTAINER_ARCHIVE_INVALID', `archive entry "${entry.path}" has an unsupported type ${entry.type}`, { details: { entry: entry.path } });
  }
}

/**
 * A tar name cleaned as moby does (leading `/` dropped, `path.Clean`);
 * undefined for the extraction point itself; a name climbing out throws.
 */
function entryName(raw: string): string | undefined {
  const trimmed = raw.replace(/^\/+/, '');
  const clean = path.posix.normalize(trimmed === '' ? '.' : trimmed).replace(/\/+$/, '');
  if (clean === '.' || clean === '') return undefined;
  if (clean === '..' || clean.startsWith('../')) {
    throw new IsulaError('CONTAINER_ARCHIVE_INVALID', `archive entry "${raw}" escapes the extraction directory`, { details: { entry: raw } });
  }
  return clean;
}

/**
 * Opens `parts` below `dest` one directory at a time with O_NOFOLLOW,
 * creating missing ones (0755) when `create`. A symlink among them is refused.
 */
async function openParent(dest: FileHandle, parts: string[], entry: string, create: boolean): Promise<FileHandle> {
  let cur = dest;
  let walked = '';
  try {
    for (const part of parts) {
      walked = walked === '' ? part : `${walked}/${part}`;
      const at = inDir(cur, part);
      let next: FileHandle | undefined;
      for (let attempt = 0; next === undefined; attempt++) {
        try {
          next = await openDir(at);
        } catch (err) {
          if (isCode(err, 'ENOENT') && create && attempt === 0) {
            await fs.mkdir(at, 0o755).catch((e: unknown) => {
              if (!isCode(e, 'EEXIST')) throw e;
            });
            continue;
          }
          if (isCode(err, 'ENOTDIR', 'ELOOP')) {
            const st = await fs.lstat(at).catch(() => undefined);
            if (st === undefined || st.isSymbolicLink()) throw throughSymlink(entry, walked);
            throw new IsulaError('CONTAINER_ARCHIVE_INVALID', `archive entry "${entry}" is below "${walked}", which is not a directory`, { cause: err, details: { entry } });
          }
          if (isCode(err, 'ENOENT')) {
            throw new IsulaError('CONTAINER_ARCHIVE_INVALID', `archive entry "${entry}" refers to "${walked}", which does not exist`, { cause: err, details: { entry } });
          }
          throw err;
        }
      }
      if (cur !== dest) await cur.close();
      cur = next;
    }
    return cur;
  } catch (err) {
    if (cur !== dest) await cur.close();
    throw err;
  }
}

function throughSymlink(entry: string, link: string): IsulaError {
  return new IsulaError('CONTAINER_ARCHIVE_INVALID', `archive entry "${entry}" would be written through the symbolic link "${link}"`, { details: { entry, symlink: link } });
}

/** `rm -rf` of `name` in `parent`, never following a symlink, whatever the container does meanwhile. */
async function removeAllAt(parent: FileHandle, name: string): Promise<void> {
  const at = inDir(parent, name);
  const st = await fs.lstat(at).catch((err: unknown) => {
    if (isCode(err, 'ENOENT')) return undefined;
    throw err;
  });
  if (st === undefined) return;
  if (!st.isDirectory()) {
    await fs.unlink(at);
    return;
  }
  const dir = await openDir(at);
  try {
    for (const child of await fs.readdir(inDir(dir))) await removeAllAt(dir, child);
  } finally {
    await dir.close();
  }
  await fs.rmdir(at);
}

/**
 * mknod(2) is not in Node: `mknod` makes the node through our descriptor of
 * the parent directory (/proc/<daemon pid>/fd/<fd>), so the path is pinned.
 */
async function makeNode(parent: FileHandle, base: string, kind: 'fifo' | 'char' | 'block', mode: number, entry: ReadEntry, signal: AbortSignal): Promise<void> {
  const args = ['-m', (mode & 0o777).toString(8), `/proc/${process.pid}/fd/${parent.fd}/${base}`];
  if (kind === 'fifo') args.push('p');
  else args.push(kind === 'char' ? 'c' : 'b', String(entry.header.devmaj), String(entry.header.devmin));
  // execa (~110 modules) is loaded when first used, not at daemon start.
  const { execa } = await import('execa');
  const r = await execa('mknod', args, {
    stdin: 'ignore',
    reject: false,
    timeout: 10_000,
    forceKillAfterDelay: 1000,
    cancelSignal: signal,
  });
  if (r.exitCode !== 0 || r.failed) {
    throw new IsulaError('INTERNAL', `mknod for archive entry "${entry.path}" failed: ${String(r.stderr).trim() || r.message}`, {
      details: { entry: entry.path, argv: ['mknod', ...args], exitCode: r.exitCode },
    });
  }
}

async function restoreDirTimes(dest: FileHandle, dirTimes: DirTimes[]): Promise<void> {
  for (const d of dirTimes) {
    let dir: FileHandle;
    try {
      const parts = d.name.split('/');
      const base = parts.pop() ?? d.name;
      const parent = await openParent(dest, parts, d.name, false);
      try {
        dir = await openDir(inDir(parent, base));
      } finally {
        if (parent !== dest) await parent.close();
      }
    } catch {
      continue; // replaced or removed by a later entry
    }
    try {
      await dir.utimes(d.atime, d.mtime);
    } finally {
      await dir.close();
    }
  }
}

function entryError(err: unknown, entry: string): IsulaError {
  if (err instanceof IsulaError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new IsulaError('INTERNAL', entry === '' ? `extracting the archive: ${message}` : `extracting "${entry}": ${message}`, { cause: err, details: { entry } });
}

// ---------------------------------------------------------------------------
// descriptors

/** `/proc/self/fd/<fd>[/<name>]`: `name` looked up in that very directory (openat semantics). */
function inDir(dir: FileHandle, name?: string): string {
  return name === undefined ? `/proc/self/fd/${dir.fd}` : `/proc/self/fd/${dir.fd}/${name}`;
}

function openDir(at: string): Promise<FileHandle> {
  return fs.open(at, O_DIR);
}

/** The opened directory is the rootfs or below it (guards the resolve-then-open race). */
async function assertInside(dir: FileHandle, realRoot: string, ctrPath: string): Promise<void> {
  const real = await fs.readlink(inDir(dir));
  if (realRoot === '/' || real === realRoot || real.startsWith(`${realRoot}/`)) return;
  throw new IsulaError('CONTAINER_PATH_INVALID', `${ctrPath} resolves outside the container's root filesystem`, { details: { path: ctrPath } });
}

function isCode(err: unknown, ...codes: string[]): boolean {
  return err instanceof Error && codes.includes((err as NodeJS.ErrnoException).code ?? '');
}
