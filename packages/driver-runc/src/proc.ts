/**
 * Small host helpers: the fds of this process that would leak into a child,
 * and finding an executable (process identity is core's:
 * `identify`, `isSameProcess` ...).
 */
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';

const O_CLOEXEC = 0o2000000;

/**
 * Fds >= 3 of this process that lack close-on-exec, i.e. that a spawned child
 * would inherit, read from /proc/self/fdinfo: one file read per open fd
 * (~3.6 ms for 200 fds), which is why `inheritableFds` does it only once.
 */
export function scanInheritableFds(): number[] {
  let entries: string[];
  try {
    entries = fs.readdirSync('/proc/self/fdinfo');
  } catch {
    return [];
  }
  return entries.map(Number).filter((fd) => Number.isInteger(fd) && fd >= 3 && lacksCloexec(fd)).sort((x, y) => x - y);
}

/** Whether `fd` is open without close-on-exec (false when it is closed, or /proc cannot tell). */
function lacksCloexec(fd: number): boolean {
  try {
    const info = fs.readFileSync(path.join('/proc/self/fdinfo', String(fd)), 'utf8');
    const flags = /^flags:\s*([0-7]+)/m.exec(info)?.[1];
    return flags !== undefined && (parseInt(flags, 8) & O_CLOEXEC) === 0;
  } catch {
    return false; // closed while we looked: nothing to hide
  }
}

/** The fds `trackNewFds` saw a native socket open, while it is open. */
const trackedFds = new Set<number>();
/** What the daemon was started with (a parent's leaks), scanned once. */
let inheritedAtStart: readonly number[] | undefined;

/**
 * The fds a spawned child would inherit: the ones this process started with
 * and the native sockets made since through `trackNewFds`. node-unix-socket's
 * SeqpacketSocket leaves its socket fd inheritable (PLATFORM.md §3 bug 1): a
 * long-lived conmon holding an attach client's socket keeps the first conmon
 * from ever seeing that client leave. Everything else this process opens
 * (Node's own fds) is close-on-exec, so no scan of /proc per container start,
 * which took milliseconds with a few hundred fds open and blocked the event
 * loop meanwhile. A number here that is closed (or reused by a close-on-exec
 * fd) since only costs the child a /dev/null on it.
 */
export function inheritableFds(): number[] {
  inheritedAtStart ??= scanInheritableFds().filter((fd) => !trackedFds.has(fd));
  return [...new Set([...inheritedAtStart, ...trackedFds])].sort((a, b) => a - b);
}

/** The fd the next open() gets: the lowest free one (the kernel's rule). */
function lowestFreeFd(): number {
  const fd = fs.openSync('/dev/null', 'r');
  fs.closeSync(fd);
  return fd;
}

/**
 * Runs `make` (a native socket's constructor, which opens one fd without
 * close-on-exec) and remembers its fd for `inheritableFds` until `release`
 * (call it once the socket is closed). The fd is the lowest free one, checked
 * in /proc; if a libuv thread took that number meanwhile, a full scan finds it.
 */
export function trackNewFds<T>(make: () => T): { value: T; release: () => void } {
  const guess = lowestFreeFd();
  const known = new Set(inheritableFds());
  const value = make();
  const mine = lacksCloexec(guess) && !known.has(guess) ? [guess] : scanInheritableFds().filter((fd) => !known.has(fd));
  for (const fd of mine) trackedFds.add(fd);
  return { value, release: () => { for (const fd of mine) trackedFds.delete(fd); } };
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
