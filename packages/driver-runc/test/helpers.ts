/**
 * Test fixtures: a busybox rootfs, minimal OCI bundles, a driver on a
 * temporary state root, and leak checks (conmon processes, cgroups, files).
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import type { OciSpec, RuntimeContainerRef, StdioConfig } from '@isula/core';
import { RuncDriver } from '../src/index.js';

export const log = pino({ level: process.env['TEST_LOG'] ?? 'silent' });
const BUSYBOX = '/bin/busybox';
const APPLETS = ['sh', 'sleep', 'cat', 'echo', 'head', 'tr', 'true', 'stty', 'ls', 'printf'];
export const CGROUP_PARENT = '/isulad-test';

export function needs(): string | false {
  if (process.getuid?.() !== 0) return 'needs root';
  for (const bin of ['/usr/bin/conmon', BUSYBOX]) if (!fs.existsSync(bin)) return `needs ${bin}`;
  return false;
}

/** crun 1.8.1 needs hugetlb bound to cgroup v1 on a hybrid host (PLATFORM.md §2). */
export function crunSkip(): string | false {
  const hugetlbV1 = fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n')
    .some((l) => l.split(' ')[4] === '/sys/fs/cgroup/hugetlb' && / - cgroup \S+ \S*hugetlb/.test(l));
  const hybrid = fs.existsSync('/sys/fs/cgroup/unified') && !fs.existsSync('/sys/fs/cgroup/cgroup.controllers');
  if (!hybrid || hugetlbV1) return false;
  if (process.env['CI'] === 'true') throw new Error('crun tests need hugetlb bound to cgroup v1 (mount -t cgroup -o hugetlb cgroup /sys/fs/cgroup/hugetlb)');
  return 'crun needs hugetlb bound to cgroup v1 on this hybrid host (see README)';
}

/** A read-only busybox rootfs, made once per test process. */
let rootfsDir: string | undefined;
export function rootfs(): string {
  if (rootfsDir) return rootfsDir;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'isula-runc-rootfs-'));
  for (const d of ['bin', 'proc', 'dev', 'sys', 'tmp', 'etc']) fs.mkdirSync(path.join(dir, d));
  fs.copyFileSync(BUSYBOX, path.join(dir, 'bin/busybox'));
  fs.chmodSync(path.join(dir, 'bin/busybox'), 0o755);
  for (const a of APPLETS) fs.symlinkSync('busybox', path.join(dir, 'bin', a));
  fs.writeFileSync(path.join(dir, 'bin/notexec'), '#!/bin/sh\necho no\n', { mode: 0o644 });
  rootfsDir = dir;
  return dir;
}

export function removeRootfs(): void {
  if (rootfsDir) fs.rmSync(rootfsDir, { recursive: true, force: true });
  rootfsDir = undefined;
}

export function makeSpec(id: string, args: string[], opts: { terminal?: boolean; memoryBytes?: number } = {}): OciSpec {
  const caps = ['CAP_CHOWN', 'CAP_KILL', 'CAP_SETUID', 'CAP_SETGID', 'CAP_NET_BIND_SERVICE'];
  return {
    ociVersion: '1.0.2',
    process: {
      terminal: opts.terminal ?? false,
      user: { uid: 0, gid: 0 },
      args,
      env: ['PATH=/bin', 'TERM=xterm'],
      cwd: '/',
      capabilities: { bounding: caps, effective: caps, permitted: caps },
      rlimits: [{ type: 'RLIMIT_NOFILE', hard: 1024, soft: 1024 }],
      noNewPrivileges: true,
    },
    root: { path: rootfs(), readonly: true },
    hostname: id.slice(0, 12),
    mounts: [
      { destination: '/proc', type: 'proc', source: 'proc' },
      { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
      { destination: '/dev/pts', type: 'devpts', source: 'devpts', options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620'] },
      { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k'] },
      { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] },
      { destination: '/tmp', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'nodev', 'size=16m'] },
    ],
    linux: {
      cgroupsPath: `${CGROUP_PARENT}/${id}`,
      resources: {
        devices: [{ allow: false, access: 'rwm' }],
        ...(opts.memoryBytes !== undefined ? { memory: { limit: opts.memoryBytes } } : {}),
      },
      namespaces: [{ type: 'pid' }, { type: 'ipc' }, { type: 'uts' }, { type: 'mount' }, { type: 'network' }],
      maskedPaths: ['/proc/kcore', '/proc/keys', '/proc/timer_list', '/sys/firmware'],
      readonlyPaths: ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'],
    },
  };
}

export interface Env {
  state: string;
  root: string;
  driver: (runtime: string) => RuncDriver;
  /** A container directory with its bundle and config.json written (core does this before `create`). */
  bundle: (id: string, spec: OciSpec) => RuntimeContainerRef;
  stdio: (id: string, over?: Partial<StdioConfig>) => StdioConfig;
  cleanup: () => void;
}

let counter = 0;
export function uniqueId(tag: string): string {
  return `t${process.pid}-${tag}-${++counter}`;
}

export function makeEnv(): Env {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'isula-runc-'));
  const state = path.join(root, 'run');
  const drivers: RuncDriver[] = [];
  return {
    root,
    state,
    driver(runtime) {
      const d = new RuncDriver({ runtime: { name: runtime }, stateDir: state, logger: log, timeoutMs: 20_000 });
      drivers.push(d);
      return d;
    },
    bundle(id, spec) {
      const containerDir = path.join(root, 'containers', id);
      const bundle = path.join(containerDir, 'bundle');
      fs.mkdirSync(bundle, { recursive: true });
      fs.writeFileSync(path.join(bundle, 'config.json'), JSON.stringify(spec));
      return { id, containerDir, bundle };
    },
    stdio(id, over = {}) {
      return { terminal: false, openStdin: false, stdinOnce: false, logPath: path.join(root, 'containers', id, 'ctr.log'), ...over };
    },
    cleanup() {
      for (const d of drivers) d.close();
      fs.rmSync(root, { recursive: true, force: true });
    },
  };
}

/** Live (non-zombie) conmon processes whose command line names `id`. */
export function conmonsFor(id: string): number[] {
  const out: number[] = [];
  for (const e of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const argv = fs.readFileSync(`/proc/${e}/cmdline`, 'utf8').split('\0');
      if (argv[0]?.endsWith('conmon') && argv.includes(id)) out.push(Number(e));
    } catch {
      // Gone.
    }
  }
  return out;
}

export function cgroupDirs(id: string): string[] {
  const out: string[] = [];
  for (const ctrl of fs.readdirSync('/sys/fs/cgroup')) {
    const dir = path.join('/sys/fs/cgroup', ctrl, CGROUP_PARENT, id);
    if (fs.existsSync(dir)) out.push(dir);
  }
  return out;
}

/** Everything a container leaves behind while it exists: none of it may survive `delete`. */
export function leftovers(env: Env, runtime: string, id: string): string[] {
  const found: string[] = [];
  for (const f of [
    path.join(env.state, 'runtime', runtime, id),
    path.join(env.state, 'exits', id),
    path.join(env.state, 'socks', id),
    path.join(env.state, 'conmon', id),
  ]) {
    if (fs.existsSync(f) || isSymlink(f)) found.push(f);
  }
  for (const pid of conmonsFor(id)) found.push(`conmon pid ${pid}`);
  found.push(...cgroupDirs(id));
  return found;
}

function isSymlink(p: string): boolean {
  try {
    return fs.lstatSync(p).isSymbolicLink();
  } catch {
    return false;
  }
}

/** Polls `fn` until it returns a truthy value, at most `timeoutMs`. */
export async function waitFor<T>(fn: () => T | Promise<T>, opts: { timeoutMs?: number; intervalMs?: number; what?: string } = {}): Promise<T> {
  const deadline = Date.now() + (opts.timeoutMs ?? 5000);
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${opts.what ?? 'condition'}`);
    await new Promise((r) => setTimeout(r, opts.intervalMs ?? 20));
  }
}

/** Removes a container by hand when a test failed half-way. */
export function forceRemove(runtime: string, env: Env, id: string): void {
  const bin = runtime === 'crun' ? '/usr/bin/crun' : '/usr/sbin/runc';
  try {
    execFileSync(bin, [`--root=${path.join(env.state, 'runtime', runtime)}`, 'delete', '--force', id], { stdio: 'ignore', timeout: 10_000 });
  } catch {
    // Not there.
  }
  for (const pid of conmonsFor(id)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Gone.
    }
  }
  for (const dir of cgroupDirs(id)) {
    try {
      fs.rmdirSync(dir);
    } catch {
      // Busy or gone.
    }
  }
}
