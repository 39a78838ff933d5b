/** The daemon's own limits, which a container never gets more of. */
import fs from 'node:fs/promises';

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
