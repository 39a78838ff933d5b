/**
 * Host processes by identity, for the drivers' monitors that outlive the
 * daemon (conmon, lxc-start, the kata shim): a pid can be recycled, so a
 * process is "the same" only when its start time (field 22 of
 * /proc/<pid>/stat, clock ticks since boot) matches too. A start time below 0
 * means "not known": such an identity never matches, so a pid that may have
 * been recycled is never signalled.
 */
import fs from 'node:fs/promises';

export interface ProcessIdentity {
  pid: number;
  startTime: number;
}

/** Field 22 of /proc/<pid>/stat; undefined when the process is gone or a zombie. */
export async function readStartTime(pid: number): Promise<number | undefined> {
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  let stat: string;
  try {
    stat = await fs.readFile(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The command name (field 2) is in parentheses and may hold spaces and ')': split after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // fields[0] is field 3 (the state): a zombie (or a dead task) is as good as gone. Field 22 is fields[19].
  if (fields[0] === 'Z' || fields[0] === 'X') return undefined;
  const value = Number(fields[19]);
  return Number.isFinite(value) ? value : undefined;
}

/** The identity of `pid` now, or undefined when there is no such (live) process. */
export async function identify(pid: number): Promise<ProcessIdentity | undefined> {
  const startTime = await readStartTime(pid);
  return startTime === undefined ? undefined : { pid, startTime };
}

/** True when `id.pid` is alive and still the process recorded (same start time). */
export async function isSameProcess(id: ProcessIdentity | null | undefined): Promise<boolean> {
  if (id === undefined || id === null || id.pid <= 0 || id.startTime < 0) return false;
  return (await readStartTime(id.pid)) === id.startTime;
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

/**
 * Resolves true once the process is gone (or its pid recycled), false after
 * `timeoutMs`. Polls from 5 ms, doubling up to `maxIntervalMs`: a process
 * that exits at once is seen at once, a slow one costs few reads.
 */
export async function waitProcessGone(id: ProcessIdentity, timeoutMs: number, maxIntervalMs = 20): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  let interval = Math.min(5, maxIntervalMs);
  for (;;) {
    if (!(await isSameProcess(id))) return true;
    if (Date.now() >= deadline) return false;
    await new Promise((r) => setTimeout(r, interval));
    interval = Math.min(interval * 2, maxIntervalMs);
  }
}
