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
import { isSameProcess } from '@isula/core';

export interface RuncState {
  init_process_pid?: number;
  init_process_start?: number;
  rootless?: boolean;
  intel_rdt_path?: string;
  cgroup_paths?: Record<string, string>;
  config?: null | {
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
  let state: unknown;
  try {
    const fh = await fs.open(path.join(dir, 'state.json'), fs.constants.O_RDONLY | fs.constants.O_NONBLOCK | fs.constants.O_NOFOLLOW);
    try {
      // runc's state.json is a few KiB; a bigger or odd file is left to runc to judge.
      if (!(await fh.stat()).isFile() || (await fh.stat()).size > MAX_STATE_BYTES) return false;
      state = JSON.parse(await fh.readFile('utf8'));
    } finally {
      await fh.close();
    }
  } catch {
    return false;
  }
  if (!isRuncState(state) || !plainStopped(state)) return false;
  if (await isSameProcess({ pid: state.init_process_pid ?? 0, startTime: state.init_process_start ?? -1 })) return false;
  const paths = [...new Set(Object.values(state.cgroup_paths ?? {}))];
  for (const p of paths) {
    if (!(await removeCgroup(p))) return false;
  }
  await fs.rm(dir, { recursive: true, force: true });
  return true;
}

/** Far above the state.json of any real container (runc 1.1: 3–6 KiB). */
const MAX_STATE_BYTES = 1024 * 1024;

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const optional = (v: unknown, check: (x: unknown) => boolean): boolean => v === undefined || v === null || check(v);

/**
 * The members of runc's state.json this module reads, with the types it reads
 * them as: anything else (a state file from another runc, or damaged) is left
 * to runc.
 */
export function isRuncState(v: unknown): v is RuncState {
  if (!isObject(v)) return false;
  const c = v['config'];
  return optional(v['init_process_pid'], (x) => typeof x === 'number')
    && optional(v['init_process_start'], (x) => typeof x === 'number')
    && optional(v['rootless'], (x) => typeof x === 'boolean')
    && optional(v['intel_rdt_path'], (x) => typeof x === 'string')
    && optional(v['cgroup_paths'], (x) => isObject(x) && Object.values(x).every((p) => typeof p === 'string'))
    && optional(c, (x) => isObject(x)
      && optional(x['namespaces'], (ns) => Array.isArray(ns) && ns.every((n) => isObject(n) && typeof n['type'] === 'string' && typeof n['path'] === 'string'))
      && optional(x['cgroups'], (cg) => isObject(cg) && optional(cg['systemd'], (b) => typeof b === 'boolean'))
      && optional(x['Hooks'], (h) => isObject(h)));
}

/** Exported for the fuzz tests: true when runc's delete of this stopped container is only cgroups and its state dir. */
export function plainStopped(s: RuncState): boolean {
  const c = s.config;
  if (c === undefined || c === null || s.rootless === true || (s.intel_rdt_path ?? '') !== '' || c.cgroups?.systemd === true) return false;
  const hooks = c.Hooks ?? {};
  if (Object.values(hooks).some((h) => Array.isArray(h) && h.length > 0)) return false;
  // A private PID namespace: the kernel killed everything in it when its init died.
  return (c.namespaces ?? []).some((n) => n.type === 'NEWPID' && n.path === '');
}

/** Removes a cgroup dir and its children (deepest first); true when it is gone. */
async function removeCgroup(dir: string): Promise<boolean> {
  // Normalized first: `/sys/fs/cgroup/../../tmp/x` is not a cgroup.
  if (!path.isAbsolute(dir) || !path.resolve(dir).startsWith('/sys/fs/cgroup/')) return false;
  dir = path.resolve(dir);
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
