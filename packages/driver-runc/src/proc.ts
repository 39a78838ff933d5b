/**
 * Small host helpers: the list of this process's fds that would leak into a
 * child, and finding an executable (process identity is core's:
 * `identify`, `isSameProcess` ...).
 */
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';

const O_CLOEXEC = 0o2000000;

/**
 * Fds >= 3 of this process that lack close-on-exec, i.e. that a spawned child
 * would inherit. node-unix-socket's SeqpacketSocket leaves its socket fd
 * inheritable (PLATFORM.md §3 bug 1): a long-lived conmon holding an attach
 * client's socket keeps the first conmon from ever seeing that client leave.
 */
export function inheritableFds(): number[] {
  const out: number[] = [];
  let entries: string[];
  try {
    entries = fs.readdirSync('/proc/self/fdinfo');
  } catch {
    return out;
  }
  for (const name of entries) {
    const fd = Number(name);
    if (!Number.isInteger(fd) || fd < 3) continue;
    try {
      const info = fs.readFileSync(path.join('/proc/self/fdinfo', name), 'utf8');
      const flags = /^flags:\s*([0-7]+)/m.exec(info)?.[1];
      if (flags !== undefined && (parseInt(flags, 8) & O_CLOEXEC) === 0) out.push(fd);
    } catch {
      // The fd was closed while we looked: nothing to hide.
    }
  }
  return out.sort((a, b) => a - b);
}

/** Finds an executable: an absolute path as-is, otherwise PATH then the fallback directories. */
export async function findExecutable(name: string, fallbackDirs: readonly string[] = []): Promise<string | undefined> {
  const candidates = path.isAbsolute(name)
    ? [name]
    : [...(process.env['PATH'] ?? '').split(':').filter((d) => d !== ''), ...fallbackDirs].map((d) => path.join(d, name));
  for (const c of candidates) {
    try {
      await fsp.access(c, fs.constants.X_OK);
      if ((await fsp.stat(c)).isFile()) return c;
    } catch {
      // Next candidate.
    }
  }
  return undefined;
}
