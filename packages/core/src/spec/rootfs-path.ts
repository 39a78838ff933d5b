/**
 * Paths inside a container's root filesystem, resolved the way moby's
 * `FollowSymlinkInScope` does: every symlink is followed as if the rootfs
 * were `/`, and `..` stops at the rootfs. An image's `/etc/passwd ->
 * /host/etc/passwd` therefore reads `<rootfs>/host/etc/passwd`, never the
 * host's file.
 */
import { constants } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { invalidConfig } from './invalid.js';

const MAX_SYMLINKS = 255;

/** Resolves `inner` (a path in the container) to a host path under `root`. */
export async function resolveInRoot(root: string, inner: string): Promise<string> {
  const base = path.resolve(root);
  const pending = inner.split('/').filter((c) => c !== '');
  const resolved: string[] = [];
  let links = 0;
  while (pending.length > 0) {
    const component = pending.shift() as string; // length checked above
    if (component === '.') continue;
    if (component === '..') {
      resolved.pop();
      continue;
    }
    const candidate = path.join(base, ...resolved, component);
    let stat;
    try {
      stat = await fs.lstat(candidate);
    } catch {
      // Missing: nothing further can be a symlink; keep the rest as written.
      resolved.push(component);
      continue;
    }
    if (!stat.isSymbolicLink()) {
      resolved.push(component);
      continue;
    }
    if (++links > MAX_SYMLINKS) throw invalidConfig(`too many levels of symbolic links resolving ${inner} in the container's root filesystem`, { path: inner });
    const target = await fs.readlink(candidate);
    if (target.startsWith('/')) resolved.length = 0;
    pending.unshift(...target.split('/').filter((c) => c !== ''));
  }
  return path.join(base, ...resolved);
}

const MAX_READ_BYTES = 4 * 1024 * 1024;

/**
 * Reads a regular file of the container (`/etc/passwd`). Undefined when it
 * does not exist or is not a regular file (a fifo or device would block or
 * stream forever). The final component is opened with O_NOFOLLOW, so a
 * symlink swapped in after resolution is refused, not followed.
 */
export async function readFileInRoot(root: string, inner: string): Promise<string | undefined> {
  const file = await resolveInRoot(root, inner);
  let handle;
  try {
    handle = await fs.open(file, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch {
    return undefined;
  }
  try {
    const stat = await handle.stat();
    if (!stat.isFile() || stat.size > MAX_READ_BYTES) return undefined;
    return await handle.readFile('utf8');
  } finally {
    await handle.close();
  }
}

/**
 * `mkdir -p` of a directory in the container, owned by uid:gid where it is
 * created (Docker creates a missing working directory for the user).
 */
export async function mkdirInRoot(root: string, inner: string, owner: { uid: number; gid: number }): Promise<void> {
  const base = path.resolve(root);
  const components = inner.split('/').filter((c) => c !== '' && c !== '.');
  for (let i = 1; i <= components.length; i++) {
    const dir = await resolveInRoot(base, '/' + components.slice(0, i).join('/'));
    try {
      await fs.mkdir(dir, { mode: 0o755 });
      await fs.lchown(dir, owner.uid, owner.gid);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  }
}
