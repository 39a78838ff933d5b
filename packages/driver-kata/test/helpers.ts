/**
 * Fixtures for the driver tests against Debian's containerd-shim-runc-v2: a
 * busybox rootfs, OCI bundles, a driver on a temporary state root, and leak
 * checks (shim processes, cgroups, runc state, files).
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import type { OciSpec, RuntimeContainerRef, StdioConfig } from '@isula/core';
import { EventsServer, ShimV2Driver } from '../src/index.js';

export const log = pino({ level: process.env['TEST_LOG'] ?? 'silent' });
export const SHIM = '/usr/bin/containerd-shim-runc-v2';
export const RUNTIME = 'io.containerd.runc.v2';
const BUSYBOX = '/bin/busybox';
const APPLETS = ['sh', 'sleep', 'cat', 'echo', 'head', 'true', 'ls', 'printf', 'stty'];
export const CGROUP_PARENT = '/isulad-kata-test';
/** A namespace of our own: runc state under /run/containerd/runc/<ns> is ours alone. */
export const NAMESPACE = `isula-test-${process.pid}`;

/** Skip reason, or false; under CI=true a missing prerequisite throws (a failure, not a skip). */
export function needs(): string | false {
  let reason: string | false = false;
  if (process.getuid?.() !== 0) reason = 'needs root';
  else for (const bin of [SHIM, BUSYBOX, '/usr/sbin/runc']) if (!fs.existsSync(bin)) reason = `needs ${bin}`;
  if (reason !== false && process.env['CI'] === 'true') throw new Error(`driver-kata tests: ${reason}`);
  return reason;
}

let rootfsDir: string | undefined;
export function rootfs(): string {
  if (rootfsDir) return rootfsDir;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kata-rootfs-'));
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
  const caps = ['CAP_CHOWN', 'CAP_KILL', 'CAP_SETUID', 'CAP_SETGID'];
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
      { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] },
      { destination: '/tmp', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'nodev', 'size=16m'] },
    ],
    linux: {
      cgroupsPath: `${CGROUP_PARENT}/${id}`,
      resources: {
        devices: [{ allow: false, access: 'rwm' }],
        ...(opts.memoryBytes !== undefined ? { memory: { limit: opts.memoryBytes, swap: opts.memoryBytes } } : {}),
      },
      namespaces: [{ type: 'pid' }, { type: 'ipc' }, { type: 'uts' }, { type: 'mount' }, { type: 'network' }],
      maskedPaths: ['/proc/kcore', '/proc/keys'],
      readonlyPaths: ['/proc/sys', '/proc/sysrq-trigger'],
    },
  };
}

export interface Env {
  root: string;
  state: string;
  events: EventsServer;
  /** A new driver (a "daemon"); several may share the state root, as after a restart. */
  driver: (events?: EventsServer) => ShimV2Driver;
  newEvents: () => EventsServer;
  bundle: (id: string, spec: OciSpec) => RuntimeContainerRef;
  stdio: (id: string, over?: Partial<StdioConfig>) => StdioConfig;
  cleanup: () => Promise<void>;
}

let counter = 0;
export function uniqueId(tag: string): string {
  return `k${process.pid}-${tag}-${++counter}`;
}

export function makeEnv(): Env {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'kata-'));
  const state = path.join(root, 'run');
  const drivers: ShimV2Driver[] = [];
  const servers: EventsServer[] = [];
  const newEvents = () => {
    const e = new EventsServer(path.join(state, 'shim-v2', 'events.sock'), log);
    servers.push(e);
    return e;
  };
  const events = newEvents();
  return {
    root,
    state,
    events,
    newEvents,
    driver(ev = events) {
      const d = new ShimV2Driver({ runtime: RUNTIME, stateDir: state, namespace: NAMESPACE, events: ev, logger: log, timeoutMs: 20_000 });
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
    async cleanup() {
      for (const d of drivers) d.close();
      for (const s of servers) await s.close();
      fs.rmSync(root, { recursive: true, force: true });
      fs.rmSync(path.join('/run/containerd/runc', NAMESPACE), { recursive: true, force: true });
      // The parent cgroup runc made for the test containers (runc leaves it, empty).
      for (const ctrl of fs.readdirSync('/sys/fs/cgroup')) {
        try {
          fs.rmdirSync(path.join('/sys/fs/cgroup', ctrl, CGROUP_PARENT));
        } catch {
          // Absent, or still in use by a parallel run.
        }
      }
    },
  };
}

/** Live shim processes whose command line names `id`. */
export function shimsFor(id: string): number[] {
  const out: number[] = [];
  for (const e of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${e}/stat`, 'utf8');
      if (stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z')) continue;
      const argv = fs.readFileSync(`/proc/${e}/cmdline`, 'utf8').split('\0');
      if (argv[0]?.includes('containerd-shim') && argv.includes(id)) out.push(Number(e));
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

/** Everything a container leaves while it exists: none of it may survive `delete`. */
export function leftovers(env: Env, ref: RuntimeContainerRef): string[] {
  const found: string[] = [];
  for (const f of [path.join(env.state, 'shim-v2', ref.id), path.join('/run/containerd/runc', NAMESPACE, ref.id), path.join(ref.bundle, 'address'), path.join(ref.bundle, 'log')]) {
    if (fs.existsSync(f)) found.push(f);
  }
  for (const pid of shimsFor(ref.id)) found.push(`shim pid ${pid}`);
  const address = typeof ref.persisted?.['address'] === 'string' ? ref.persisted['address'].replace(/^unix:\/\//, '') : '';
  if (address !== '' && fs.existsSync(address)) found.push(`shim socket ${address}`);
  found.push(...cgroupDirs(ref.id));
  return found;
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

/** Removes a container by hand when a test failed half-way: runc state, shim, cgroups. */
export function forceRemove(id: string): void {
  try {
    execFileSync('/usr/sbin/runc', [`--root=${path.join('/run/containerd/runc', NAMESPACE)}`, 'delete', '--force', id], { stdio: 'ignore', timeout: 10_000 });
  } catch {
    // Not there.
  }
  for (const pid of shimsFor(id)) {
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
