/**
 * Process identity for monitors that outlive the daemon: a pid alone can be
 * recycled, so a process is "the same" only when its start time (field 22 of
 * /proc/<pid>/stat, in clock ticks since boot) matches too.
 */
import fs from 'node:fs/promises';

export interface ProcessIdentity {
  pid: number;
  startTime: number;
}

export async function readStartTime(pid: number): Promise<number | undefined> {
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  const stat = await fs.readFile(`/proc/${pid}/stat`, 'utf8').catch(() => undefined);
  if (stat === undefined) return undefined;
  // The command (field 2) may hold spaces and parentheses: count from the last ')'.
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // rest[0] is field 3 (state): field 22 is rest[19]; a zombie is as good as gone.
  if (rest[0] === 'Z') return undefined;
  const t = Number(rest[19]);
  return Number.isFinite(t) ? t : undefined;
}

export async function identify(pid: number): Promise<ProcessIdentity | undefined> {
  const startTime = await readStartTime(pid);
  return startTime === undefined ? undefined : { pid, startTime };
}

export async function isSameProcess(p: ProcessIdentity | undefined | null): Promise<boolean> {
  if (!p) return false;
  const t = await readStartTime(p.pid);
  return t !== undefined && (p.startTime < 0 || t === p.startTime);
}

/** Polls until the process is gone (or a zombie), at most `timeoutMs`. */
export async function waitProcessGone(p: ProcessIdentity, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (!(await isSameProcess(p))) return true;
    if (Date.now() >= deadline) return false;
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Signals the process when it is still the same one; false when it is gone. */
export async function signalProcess(p: ProcessIdentity, signal: NodeJS.Signals | number): Promise<boolean> {
  if (!(await isSameProcess(p))) return false;
  try {
    process.kill(p.pid, signal);
    return true;
  } catch {
    return false;
  }
}
