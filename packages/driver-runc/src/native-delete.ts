/**
 * `runc delete` of a container whose init has exited, done in-process.
 *
 * For a stopped container runc 1.1's delete is: remove the cgroup paths
 * recorded in `<root>/<id>/state.json` (recursively, retrying while the
 * kernel still reports them busy), remove that state directory, and run the
 * poststop hooks. Doing the first two here spares a fork of the daemon and a
 * Go binary's start on every container exit (about 15–20 ms on the 2-core
 * VMs, and an event-loop stall for the fork). Anything this module does not
 * fully understand is left to runc: poststop hooks, systemd or rootless
 * cgroups, Intel RDT, a shared or host PID namespace (runc then has to kill
 * the remaining processes), an init still alive, a state file it cannot read.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { isSameProcess } from './proc.js';

interface RuncState {
  init_process_pid?: number;
  init_process_start?: number;
  rootless?: boolean;
  intel_rdt_path?: string;
  cgroup_paths?: Record<string, string>;
  config?: {
    namespaces?: { type: string; path: string }[] | null;
    cgroups?: { systemd?: boolean } | null;
    Hooks?: Record<string, unknown[] | null> | null;
  };
}

/** What runc does: a handful of tries with a doubling pause, bounded (10 + 20 + 40 + 80 + 160 ms). */
const RMDIR_TRIES = 5;

/**
 * Deletes the runc container `id` under `root` without runc when that is
 * exactly what runc would do. Returns false when runc must do it (nothing has
 * been removed then, or only empty cgroup dirs runc tolerates missing).
 */
export async function deleteStoppedNatively(root: string, id: string): Promise<boolean> {
  const dir = path.join(root, id);
  let state: RuncState;
  try {
    state = JSON.parse(await fs.readFile(path.join(dir, 'state.json'), 'utf8')) as RuncState;
  } catch {
    return false;
  }
  if (!plainStopped(state)) return false;
  if (await isSameProcess({ pid: state.init_process_pid ?? 0, startTime: state.init_process_start ?? -1 })) return false;
  const paths = [...new Set(Object.values(state.cgroup_paths ?? {}))];
  for (const p of paths) {
    if (!(await removeCgroup(p))) return false;
  }
  await fs.rm(dir, { recursive: true, force: true });
  return true;
}

function plainStopped(s: RuncState): boolean {
  const c = s.config;
  if (c === undefined || s.rootless === true || (s.intel_rdt_path ?? '') !== '' || c.cgroups?.systemd === true) return false;
  const hooks = c.Hooks ?? {};
  if (Object.values(hooks).some((h) => Array.isArray(h) && h.length > 0)) return false;
  // A private PID namespace: the kernel killed everything in it when its init died.
  return (c.namespaces ?? []).some((n) => n.type === 'NEWPID' && n.path === '');
}

/** Removes a cgroup dir and its children (deepest first); true when it is gone. */
async function removeCgroup(dir: string): Promise<boolean> {
  if (!dir.startsWith('/sys/fs/cgroup/')) return false;
  let entries;
  try {
    entries = await fs.readdir(dir, { withFileTypes: true });
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ENOENT';
  }
  for (const e of entries) {
    if (e.isDirectory() && !(await removeCgroup(path.join(dir, e.name)))) return false;
  }
  for (let i = 0, pause = 10; i < RMDIR_TRIES; i++, pause *= 2) {
    try {
      await fs.rmdir(dir);
      return true;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return true;
      if (code !== 'EBUSY') return false;
      await sleep(pause);
    }
  }
  return false;
}
