/**
 * Host processes by identity: a pid plus its start time (field 22 of
 * /proc/<pid>/stat), so a recycled pid is never mistaken for ours.
 */
import fs from 'node:fs/promises';

export interface ProcessIdentity { pid: number; startTime: number }

export async function startTimeOf(pid: number): Promise<number | undefined> {
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  try {
    const stat = await fs.readFile(`/proc/${pid}/stat`, 'utf8');
    // comm may hold spaces and parentheses: split after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (fields[0] === 'Z' || fields[0] === 'X') return undefined; // a zombie is gone for our purposes
    const t = Number(fields[19]);
    return Number.isFinite(t) ? t : undefined;
  } catch {
    return undefined;
  }
}

export async function identify(pid: number): Promise<ProcessIdentity | undefined> {
  const startTime = await startTimeOf(pid);
  return startTime === undefined ? undefined : { pid, startTime };
}

export async function isSameProcess(p: ProcessIdentity | null | undefined): Promise<boolean> {
  if (!p) return false;
  return (await startTimeOf(p.pid)) === p.startTime;
}

/** Signals the process if it still is the one identified; false when it is gone. */
export async function signalProcess(p: ProcessIdentity, signal: NodeJS.Signals | number): Promise<boolean> {
  if (!(await isSameProcess(p))) return false;
  try {
    process.kill(p.pid, signal);
    return true;
  } catch {
    return false;
  }
}

/** Polls until the process is gone; false on timeout. */
export async function waitProcessGone(p: ProcessIdentity, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  let interval = 5;
  while (await isSameProcess(p)) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, interval));
    interval = Math.min(interval * 2, 50);
  }
  return true;
}

/** The daemon's hard rlimits by OCI name, from /proc/self/limits (a container never gets more: PLATFORM.md §2). */
export async function daemonHardLimits(): Promise<Record<string, number>> {
  const names: Record<string, string> = {
    'Max cpu time': 'RLIMIT_CPU', 'Max file size': 'RLIMIT_FSIZE', 'Max data size': 'RLIMIT_DATA', 'Max stack size': 'RLIMIT_STACK',
    'Max core file size': 'RLIMIT_CORE', 'Max resident set': 'RLIMIT_RSS', 'Max processes': 'RLIMIT_NPROC', 'Max open files': 'RLIMIT_NOFILE',
    'Max locked memory': 'RLIMIT_MEMLOCK', 'Max address space': 'RLIMIT_AS', 'Max file locks': 'RLIMIT_LOCKS', 'Max pending signals': 'RLIMIT_SIGPENDING',
    'Max msgqueue size': 'RLIMIT_MSGQUEUE', 'Max nice priority': 'RLIMIT_NICE', 'Max realtime priority': 'RLIMIT_RTPRIO', 'Max realtime timeout': 'RLIMIT_RTTIME',
  };
  const out: Record<string, number> = {};
  const text = await fs.readFile('/proc/self/limits', 'utf8').catch(() => '');
  for (const line of text.split('\n')) {
    for (const [label, name] of Object.entries(names)) {
      if (!line.startsWith(label)) continue;
      const hard = line.slice(label.length).trim().split(/\s+/)[1];
      out[name] = hard === 'unlimited' || hard === undefined ? Number.POSITIVE_INFINITY : Number(hard);
    }
  }
  return out;
}
