/**
 * Small /proc helpers: process identity that survives pid reuse, and the
 * list of this process's fds that would leak into a child.
 */
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';

/** A pid plus its start time (clock ticks since boot): a recycled pid has another start time. */
export interface ProcessIdentity {
  pid: number;
  startTime: number;
}

/** Field 22 of /proc/<pid>/stat, or undefined when the process is gone (or a zombie's stat is unreadable). */
export async function readStartTime(pid: number): Promise<number | undefined> {
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  let stat: string;
  try {
    stat = await fsp.readFile(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The command name (field 2) is in parentheses and may contain spaces: split after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // fields[0] is field 3 (state); field 22 is fields[19].
  if (fields[0] === 'Z' || fields[0] === 'X') return undefined;
  const value = Number(fields[19]);
  return Number.isFinite(value) ? value : undefined;
}

/** True when `id.pid` is alive and still the process that was recorded (same start time). */
export async function isSameProcess(id: ProcessIdentity | undefined): Promise<boolean> {
  if (id === undefined || id.pid <= 0) return false;
  return (await readStartTime(id.pid)) === id.startTime;
}

export async function identify(pid: number): Promise<ProcessIdentity | undefined> {
  const startTime = await readStartTime(pid);
  return startTime === undefined ? undefined : { pid, startTime };
}

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

/** Resolves once the process is gone (or recycled), polling at `intervalMs`, at most `timeoutMs`. */
export async function waitProcessGone(id: ProcessIdentity, timeoutMs: number, intervalMs = 20): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (!(await isSameProcess(id))) return true;
    if (Date.now() >= deadline) return false;
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/**
 * Sends a signal only when `id` is still the recorded process; never throws.
 * True when it was that process (signalled, or gone in between), false when
 * its identity could not be confirmed.
 */
export async function signalProcess(id: ProcessIdentity, signal: NodeJS.Signals | number): Promise<boolean> {
  if (!(await isSameProcess(id))) return false;
  try {
    process.kill(id.pid, signal);
  } catch {
    // Gone in between.
  }
  return true;
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
