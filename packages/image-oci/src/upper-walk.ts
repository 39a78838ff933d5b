/**
 * A walk of a container's overlay upper dir (`isula diff`, `isula commit`)
 * that never follows a symlink, even one a running container swaps in while
 * the walk goes: each directory is opened with O_NOFOLLOW and checked to be
 * the one lstat saw, and its entries are reached through the open
 * directory (`/proc/self/fd/N/NAME`, Linux's openat for code without one),
 * never by a path from the root that a swapped component could redirect.
 * Names come as bytes, depth-first in byte order (Go's filepath.Walk order);
 * a name that is not UTF-8 is flagged rather than mangled unseen.
 */
import { constants, type BigIntStats } from 'node:fs';
import fs from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';

export interface UpperEntry {
  /** The path below the upper dir, `a/b` (UTF-8; see `validName`). */
  rel: string;
  /** Whether the name's bytes are valid UTF-8 (else `rel` holds replacement characters). */
  validName: boolean;
  st: BigIntStats;
  /** A path reaching the entry through its open parent directory: for lstat, readlink and O_NOFOLLOW opens only. */
  at: Buffer;
}

/**
 * Calls `visit` for each entry under `root`, a directory before what it
 * holds; `visit` returning 'skip' for a directory leaves its contents out.
 * An entry gone or swapped since it was listed is left out (a running
 * container changes its layer while the walk goes).
 */
export async function walkUpper(root: string, visit: (e: UpperEntry) => Promise<'skip' | void>, signal?: AbortSignal): Promise<void> {
  const top = await fs.open(root, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW);
  try {
    await walkDir(top, '', visit, signal);
  } finally {
    await top.close();
  }
}

async function walkDir(dir: FileHandle, rel: string, visit: (e: UpperEntry) => Promise<'skip' | void>, signal: AbortSignal | undefined): Promise<void> {
  const base = Buffer.from(`/proc/self/fd/${dir.fd}/`);
  const names = (await fs.readdir(base, { encoding: 'buffer' })).sort(Buffer.compare);
  for (const nameBytes of names) {
    signal?.throwIfAborted();
    const name = nameBytes.toString('utf8');
    const at = Buffer.concat([base, nameBytes]);
    const st = await fs.lstat(at, { bigint: true }).catch(() => undefined);
    if (st === undefined) continue;
    const relPath = rel === '' ? name : `${rel}/${name}`;
    const next = await visit({ rel: relPath, validName: Buffer.from(name, 'utf8').equals(nameBytes), st, at });
    if (!st.isDirectory() || next === 'skip') continue;
    const sub = await fs.open(at, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW).catch(() => undefined);
    if (sub === undefined) continue; // replaced by a non-directory (a symlink, say) since lstat
    try {
      const now = await sub.stat({ bigint: true });
      if (now.ino === st.ino && now.dev === st.dev) await walkDir(sub, relPath, visit, signal);
    } finally {
      await sub.close();
    }
  }
}

/**
 * Opens a regular file the walk found, refusing to follow a symlink or to
 * block on a fifo swapped in since; undefined when it is no longer that file.
 */
export async function openWalkedFile(e: UpperEntry): Promise<FileHandle | undefined> {
  const fh = await fs.open(e.at, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK).catch(() => undefined);
  if (fh === undefined) return undefined;
  const now = await fh.stat({ bigint: true }).catch(() => undefined);
  if (now === undefined || !now.isFile() || now.ino !== e.st.ino || now.dev !== e.st.dev) {
    await fh.close();
    return undefined;
  }
  return fh;
}
