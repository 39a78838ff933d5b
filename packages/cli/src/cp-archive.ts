/**
 * `isula cp`'s local side: stat-ing local paths as moby's `CopyInfoSourcePath`
 * and `CopyInfoDestinationPath` do, packing a local file or directory
 * (`TarResource`) and extracting an archive from a container safely. The
 * `tar` package (node-tar) is imported on first use only: every other
 * command's start-up stays free of it.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { type CopyInfo, CopyError, type Rebase, getRebaseName, goBase, goClean, rebaseEntryName, splitPathDirEntry, linkTargetPath } from './cp-paths.js';

type TarModule = typeof import('tar');
let tarModule: Promise<TarModule> | undefined;
/** node-tar, loaded once, lazily. */
export const loadTar = (): Promise<TarModule> => (tarModule ??= import('tar'));

const ERRNO_TEXT: Readonly<Record<string, string>> = {
  ENOENT: 'no such file or directory',
  ENOTDIR: 'not a directory',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  ELOOP: 'too many levels of symbolic links',
  EEXIST: 'file exists',
  EISDIR: 'is a directory',
};

/** A file-system error worded as Go's `*PathError` (`lstat /x: no such file or directory`), as docker reports it. */
export function goPathError(err: unknown, op?: string): Error {
  const e = err as NodeJS.ErrnoException;
  if (typeof e?.code !== 'string' || typeof e.path !== 'string') return err as Error;
  return new Error(`${op ?? e.syscall ?? 'stat'} ${e.path}: ${ERRNO_TEXT[e.code] ?? e.message}`);
}

async function lstat(p: string): Promise<fs.Stats> {
  try {
    return await fs.promises.lstat(p);
  } catch (err) {
    throw goPathError(err, 'lstat');
  }
}

/** Go's `filepath.EvalSymlinks`, keeping a trailing slash as Go's Split-then-join does not need to. */
async function evalSymlinks(p: string): Promise<string> {
  try {
    return await fs.promises.realpath(p);
  } catch (err) {
    throw goPathError(err, 'lstat');
  }
}

/**
 * moby's `CopyInfoSourcePath` (with `ResolveHostSourcePath`): the local
 * source must exist; symlinks before its last element are resolved, and with
 * `-L` the last one too (its archive entry then keeps the name typed).
 */
export async function copyInfoSourcePath(p: string, followLink: boolean): Promise<CopyInfo> {
  let resolved: string;
  let rebaseName = '';
  if (followLink) {
    ({ resolved, rebaseName } = getRebaseName(p, await evalSymlinks(p)));
  } else {
    const slash = p.lastIndexOf('/');
    const dir = p.slice(0, slash + 1);
    const base = p.slice(slash + 1);
    const resolvedDir = await evalSymlinks(dir === '' ? '.' : dir);
    resolved = resolvedDir === '/' ? `/${base}` : `${resolvedDir}/${base}`;
    if (p.endsWith('/') && goBase(p) !== goBase(resolved)) rebaseName = goBase(p);
  }
  const st = await lstat(resolved);
  return { path: resolved, exists: true, isDir: st.isDirectory(), rebaseName };
}

/**
 * moby's `CopyInfoDestinationPath`: a local destination, symlinks followed
 * (up to 10); it need not exist, but then its parent directory must.
 */
export async function copyInfoDestinationPath(p: string): Promise<CopyInfo> {
  let current = p;
  let st: fs.Stats | undefined;
  try {
    st = await fs.promises.lstat(current);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw goPathError(err, 'lstat');
  }
  for (let n = 0; st?.isSymbolicLink(); n += 1) {
    if (n > 10) throw new Error(`too many symlinks in ${p}`);
    current = linkTargetPath(current, await fs.promises.readlink(current));
    try {
      st = await fs.promises.lstat(current);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw goPathError(err, 'lstat');
      st = undefined;
    }
  }
  if (st !== undefined) return { path: current, exists: true, isDir: st.isDirectory() };
  const parent = splitPathDirEntry(current).dir;
  let parentStat: fs.Stats;
  try {
    parentStat = await fs.promises.stat(parent);
  } catch (err) {
    throw goPathError(err, 'stat');
  }
  if (!parentStat.isDirectory()) throw new CopyError('not a directory');
  return { path: current, exists: false, isDir: false };
}

/**
 * moby's `TarResource`: an archive of `src.path`'s last element (a file, a
 * directory and what is below it, or with `/.` a directory's contents as
 * `./…`), its entries renamed by `rebases` in order (the source's own
 * rebase name, then PrepareArchiveCopy's). Symlinks are archived as links;
 * sockets, devices and FIFOs are left out (node-tar packs no other types).
 */
export async function packLocal(src: CopyInfo, rebases: readonly Rebase[]): Promise<Readable> {
  await lstat(src.path);
  const { dir, base } = splitPathDirEntry(src.path);
  const tar = await loadTar();
  const rename = (name: string) => rebases.reduce((n, r) => rebaseEntryName(n, r), name);
  // An absolute cwd: node-tar recognizes hard links only under it.
  return tar.create({
    cwd: path.resolve(dir),
    onWriteEntry: (entry) => {
      entry.path = rename(entry.path);
      if (entry.type === 'Link' && entry.linkpath !== undefined) entry.linkpath = rename(entry.linkpath);
    },
  }, [base]) as unknown as Readable;
}

export interface ExtractOptions {
  /** Renames of the archive's top entry, in order (`-L`'s, then PrepareArchiveCopy's). */
  rebases: readonly Rebase[];
  /** Called for entries skipped without failing the copy (devices: node-tar creates none). */
  onSkip?: (message: string) => void;
}

/**
 * Extracts an archive from a container into the local directory `dstDir`
 * (moby's `Untar` with `NoLchown` and `NoOverwriteDirNonDir`): files get the
 * archive's modes (not the umask's) and times, not its owners; an existing
 * directory is not replaced by a non-directory, nor the reverse. Nothing is
 * written outside `dstDir`: node-tar refuses `..` in names and hard links,
 * roots absolute names at `dstDir`, and never writes through a symlink (one
 * from the archive or one already there). An absolute symlink target is kept
 * as is (node-tar would make it relative). Any refused entry fails the copy,
 * after the rest was extracted.
 */
export async function extractArchive(body: Readable, dstDir: string, o: ExtractOptions): Promise<void> {
  const tar = await loadTar();
  const cwd = path.resolve(dstDir);
  const failures: string[] = [];
  const absoluteLinks: { name: string; target: string }[] = [];
  const rename = (name: string) => o.rebases.reduce((n, r) => rebaseEntryName(n, r), name);
  const previousUmask = process.umask(0);
  try {
    await new Promise<void>((resolve, reject) => {
      const unpack = new tar.Unpack({
        cwd,
        preserveOwner: false,
        chmod: true,
        processUmask: 0,
        filter: (_p, entry) => {
          if (!('type' in entry)) return true;
          entry.path = rename(entry.path);
          if (entry.type === 'Link' && entry.linkpath !== undefined) entry.linkpath = rename(entry.linkpath);
          const clean = goClean(entry.path);
          if (!clean.split('/').includes('..')) {
            const target = path.join(cwd, clean);
            let existing: fs.Stats | undefined;
            try { existing = fs.lstatSync(target); } catch { existing = undefined; }
            const isDirEntry = entry.type === 'Directory';
            if (existing !== undefined && target !== cwd) {
              if (existing.isDirectory() && !isDirEntry) {
                failures.push(`cannot overwrite directory ${JSON.stringify(target)} with non-directory ${JSON.stringify(cwd)}`);
                return false;
              }
              if (!existing.isDirectory() && isDirEntry) {
                failures.push(`cannot overwrite non-directory ${JSON.stringify(target)} with directory ${JSON.stringify(cwd)}`);
                return false;
              }
            }
          }
          if (entry.type === 'SymbolicLink' && entry.linkpath?.startsWith('/')) absoluteLinks.push({ name: clean, target: entry.linkpath });
          return true;
        },
        onwarn: (code, message, data) => {
          const entry = (data as { entry?: { path?: string }; path?: string }).entry?.path ?? (data as { path?: string }).path ?? '';
          if (code === 'TAR_ENTRY_INFO') return; // absolute names rooted at the destination
          if (code === 'TAR_ENTRY_UNSUPPORTED') { o.onSkip?.(`skipped ${JSON.stringify(entry)}: ${message}`); return; }
          failures.push(`${JSON.stringify(entry)}: ${message}`);
        },
      });
      unpack.on('finish', () => resolve());
      unpack.on('error', (err: Error) => reject(err));
      body.on('error', (err) => { reject(err); });
      body.pipe(unpack as unknown as NodeJS.WritableStream);
    });
  } finally {
    process.umask(previousUmask);
  }
  // node-tar strips the leading '/' of a symlink's target: put the container's target back.
  for (const { name, target } of absoluteLinks) {
    const p = path.join(cwd, name);
    try {
      if (fs.lstatSync(p).isSymbolicLink() && fs.readlinkSync(p) === target.replace(/^\/+/, '')) {
        fs.unlinkSync(p);
        fs.symlinkSync(target, p);
      }
    } catch { /* not extracted (refused): nothing to put back */ }
  }
  if (failures.length > 0) throw new Error(failures.join('\n'));
}
