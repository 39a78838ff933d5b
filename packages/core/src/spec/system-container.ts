/**
 * iSulad's system containers (`--system-container`): an init (systemd,
 * busybox init, sysvinit) as PID 1, with what such an init expects: the
 * `container` variable systemd reads, tmpfs on /run, /run/lock and /tmp,
 * and a writable cgroup mount (each hierarchy is the container's own
 * subtree). `--ns-change-opt net,ipc` makes the namespaced parts of
 * /proc/sys writable (net.*, the IPC sysctls and fs.mqueue.*); the rest of
 * /proc/sys and all of /sys stay read-only, as in any container.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { HostConfig } from '../container/docker-types.js';
import { invalidConfig } from './invalid.js';
import type { OciMount } from './oci-types.js';
import { resolveInRoot } from './rootfs-path.js';

export const SYSTEM_CONTAINER_INIT = '/sbin/init';
/** What systemd's `detect-virt` reads from PID 1's environment. */
export const SYSTEM_CONTAINER_ENV = 'container=isulad';

export type NsChangeOpt = 'net' | 'ipc';
const NS_CHANGE_OPTS: readonly NsChangeOpt[] = ['net', 'ipc'];
const IPC_KERNEL_SYSCTLS = new Set(['msgmax', 'msgmnb', 'msgmni', 'sem', 'shmall', 'shmmax', 'shmmni', 'shm_rmid_forced']);

/** Parses and checks `--ns-change-opt` against the rest of the HostConfig. */
export function parseNsChangeOpt(hc: HostConfig): NsChangeOpt[] {
  const text = hc.NsChangeOpt ?? '';
  if (text === '') return [];
  if (hc.SystemContainer !== true) throw invalidConfig('--ns-change-opt is only for system containers (--system-container)', { field: 'NsChangeOpt' });
  const out: NsChangeOpt[] = [];
  for (const raw of text.split(',')) {
    const v = raw.trim();
    if (!(NS_CHANGE_OPTS as readonly string[]).includes(v)) throw invalidConfig(`invalid --ns-change-opt "${v}": want net, ipc or both (comma separated)`, { field: 'NsChangeOpt', value: v });
    if (!out.includes(v as NsChangeOpt)) out.push(v as NsChangeOpt);
  }
  if (out.includes('net') && hc.NetworkMode === 'host') throw invalidConfig("--ns-change-opt net: the host's network namespace is not the container's to change", { field: 'NsChangeOpt' });
  if (out.includes('ipc') && hc.IpcMode === 'host') throw invalidConfig("--ns-change-opt ipc: the host's IPC namespace is not the container's to change", { field: 'NsChangeOpt' });
  return out;
}

let cgroupV2: boolean | undefined;
/** The unified hierarchy alone (cgroup v2), not v1 or hybrid. */
export function isCgroupV2(): boolean {
  cgroupV2 ??= fs.existsSync('/sys/fs/cgroup/cgroup.controllers');
  return cgroupV2;
}

/**
 * The mounts an init expects, where the user mounted nothing: tmpfs on
 * /run, /run/lock and /tmp, and on cgroup v1 its own `name=systemd`
 * subtree writable over the read-only cgroup mount (podman's way: the
 * resource controllers stay read-only, so the container cannot raise its
 * own limits). On v2 the cgroup namespace is private instead (build.ts).
 */
export function systemContainerMounts(taken: ReadonlySet<string>, cgroupsPath: string): OciMount[] {
  const tmpfs = (destination: string, mode: string, size: string): OciMount => ({ destination, type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'nodev', `mode=${mode}`, `size=${size}`] });
  const out = [tmpfs('/run', '755', '64m'), tmpfs('/run/lock', '1777', '5m'), tmpfs('/tmp', '1777', '256m')];
  if (!isCgroupV2() && fs.existsSync('/sys/fs/cgroup/systemd')) {
    out.push({ destination: '/sys/fs/cgroup/systemd', type: 'bind', source: path.posix.join('/sys/fs/cgroup/systemd', cgroupsPath), options: ['rbind', 'nosuid', 'noexec', 'nodev', 'rw'] });
  }
  return out.filter((m) => !taken.has(m.destination));
}

/**
 * The read-only paths replacing `/proc/sys` when parts of it are writable:
 * every entry of the host's /proc/sys except the namespaced ones asked for
 * (listed from the running kernel, so a new sysctl directory is covered).
 */
export function readonlyProcSys(opts: readonly NsChangeOpt[], procSys = '/proc/sys'): string[] {
  if (opts.length === 0) return ['/proc/sys'];
  const list = (dir: string): string[] => {
    try {
      return fs.readdirSync(path.join(procSys, dir)).sort();
    } catch {
      return [];
    }
  };
  const out: string[] = [];
  for (const top of list('')) {
    if (top === 'net' && opts.includes('net')) continue;
    if (opts.includes('ipc') && top === 'kernel') {
      for (const k of list('kernel')) if (!IPC_KERNEL_SYSCTLS.has(k)) out.push(`/proc/sys/kernel/${k}`);
      continue;
    }
    if (opts.includes('ipc') && top === 'fs') {
      for (const f of list('fs')) if (f !== 'mqueue') out.push(`/proc/sys/fs/${f}`);
      continue;
    }
    out.push(`/proc/sys/${top}`);
  }
  return out;
}

/**
 * The stop signal an init wants, from what the command is in the rootfs
 * (symlinks followed inside it): systemd halts on SIGRTMIN+3 (SIGTERM makes
 * it re-execute); busybox init and sysvinit shut down on SIGTERM, and an
 * init ignores a signal it has no handler for.
 */
export async function systemContainerStopSignal(rootfs: string, command: string): Promise<string> {
  const inRoot = command.startsWith('/') ? command : `/sbin/${command}`;
  const resolved = await resolveInRoot(rootfs, inRoot).catch(() => inRoot);
  return path.basename(resolved) === 'systemd' ? 'SIGRTMIN+3' : 'SIGTERM';
}
