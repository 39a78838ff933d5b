/**
 * Test fixtures for the real CNI plugins: network namespaces bound on files
 * (`unshare --net=FILE`), a driver on a temporary conf dir and graph, a
 * unique bridge and subnet per test (other suites may make bridges at the
 * same time), and what a user can see of an attachment (veths on the bridge,
 * host-local leases, iptables rules).
 */
import { execFile, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { TestContext } from 'node:test';
import { promisify } from 'node:util';
import { pino } from 'pino';
import { CniNetworkDriver, removeBridgeIsolation } from '../src/index.js';
import type { CniNetworkDriverOptions } from '../src/index.js';

export const log = pino({ level: process.env['TEST_LOG'] ?? 'silent' });
export const run = promisify(execFile);
export const CNI_BIN = '/usr/lib/cni';
const PLUGINS = ['loopback', 'bridge', 'host-local', 'portmap', 'firewall'];
const TOOLS = ['/usr/bin/unshare', '/usr/bin/nsenter', '/bin/busybox', '/usr/sbin/ip', '/usr/sbin/iptables-save'];

/** Why the real-plugin tests cannot run, or false. Under CI=true a missing prerequisite fails instead. */
export function needs(): string | false {
  let reason: string | false = false;
  if (process.getuid?.() !== 0) reason = 'needs root (network namespaces, bridges, iptables)';
  else {
    for (const f of [...PLUGINS.map((p) => path.join(CNI_BIN, p)), ...TOOLS]) {
      if (!fs.existsSync(f)) {
        reason = `needs ${f} (containernetworking-plugins, util-linux, busybox-static, iproute2, iptables)`;
        break;
      }
    }
  }
  if (reason && process.env['CI'] === 'true') throw new Error(`CNI tests: ${reason}`);
  return reason;
}

export const signal = (): AbortSignal => AbortSignal.timeout(30_000);

let counter = 0;
/** A 64-hex container id, unique per test process and call. */
export function newId(): string {
  counter += 1;
  return `${process.pid.toString(16).padStart(8, '0')}${counter.toString(16).padStart(4, '0')}${'c'.repeat(52)}`;
}

/** A bridge name unique to this process and call, at most 15 characters. */
export function newBridge(): string {
  counter += 1;
  return `icn${process.pid % 1_000_000}x${counter}`.slice(0, 15);
}

const picked: string[] = [];
/**
 * A random 10.248-254.x.0/24 that no host interface uses and this process did not hand out yet
 * (the e2e tests, running beside these, keep to 10.233-10.247: test/lib/subnets.ts).
 */
export function newSubnet(): string {
  const used = Object.values(os.networkInterfaces()).flatMap((a) => (a ?? []).filter((i) => i.family === 'IPv4').map((i) => i.address));
  for (;;) {
    const x = 248 + Math.floor(Math.random() * 7);
    const y = Math.floor(Math.random() * 256);
    const prefix = `10.${x}.${y}.`;
    if (picked.includes(prefix) || used.some((u) => u.startsWith(prefix))) continue;
    picked.push(prefix);
    return `${prefix}0/24`;
  }
}

export interface Env {
  root: string;
  confDir: string;
  graph: string;
  bridge: string;
  subnet: string;
  /** `10.x.y.N` in the env's subnet. */
  ip(n: number): string;
  ipamDir: string;
  driver(over?: Partial<CniNetworkDriverOptions>): CniNetworkDriver;
  /** A new network namespace bound on a file; unmounted at the end. */
  netns(name: string): string;
  /** Ids to detach (best effort) at the end, bridges to delete. */
  track: { ids: Set<string>; bridges: Set<string>; processes: Set<number> };
}

export function makeEnv(t: TestContext): Env {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'isula-cni-'));
  const confDir = path.join(root, 'net.d');
  const graph = path.join(root, 'graph');
  const bridge = newBridge();
  const subnet = newSubnet();
  const namespaces: string[] = [];
  const drivers: CniNetworkDriver[] = [];
  const track = { ids: new Set<string>(), bridges: new Set([bridge]), processes: new Set<number>() };
  const env: Env = {
    root,
    confDir,
    graph,
    bridge,
    subnet,
    ip: (n) => subnet.replace(/0\/24$/, String(n)),
    ipamDir: path.join(graph, 'cni', 'networks'),
    driver(over = {}) {
      const d = new CniNetworkDriver({ confDir, binDirs: [CNI_BIN], graph, bridge, subnet, log, ...over });
      drivers.push(d);
      return d;
    },
    netns(name) {
      const file = path.join(root, `ns-${name}`);
      fs.writeFileSync(file, '');
      execFileSync('unshare', [`--net=${file}`, 'true'], { timeout: 10_000 });
      namespaces.push(file);
      return file;
    },
    track,
  };
  t.after(async () => {
    for (const pid of track.processes) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // Gone.
      }
    }
    // A fresh driver, as a restarted daemon: each instance holds its own view of the on-disk
    // cache, and the test's first driver does not know what later ones attached.
    const d = env.driver();
    for (const id of track.ids) await d.detach(undefined, { id, networks: [], portMappings: [] }, { signal: signal() }).catch(() => {});
    for (const ns of namespaces) await run('umount', [ns]).catch(() => {});
    for (const b of track.bridges) {
      await run('ip', ['link', 'del', b]).catch(() => {});
      await removeBridgeIsolation(b, log); // firewall's same-bridge rules outlive the bridge
    }
    fs.rmSync(root, { recursive: true, force: true });
  });
  return env;
}

/** Interfaces enslaved to `bridge` (the host ends of container veths). */
export async function portsOf(bridge: string): Promise<string[]> {
  const { stdout } = await run('ip', ['-o', 'link', 'show', 'master', bridge]).catch(() => ({ stdout: '' }));
  return stdout.split('\n').filter((l) => l.trim() !== '');
}

/** host-local lease files (named by IP, holding the container id) for `id` anywhere under `dataDir`. */
export function leasesOf(dataDir: string, id: string): string[] {
  const out: string[] = [];
  if (!fs.existsSync(dataDir)) return out;
  for (const net of fs.readdirSync(dataDir)) {
    const dir = path.join(dataDir, net);
    if (!fs.statSync(dir).isDirectory()) continue;
    for (const f of fs.readdirSync(dir)) {
      const file = path.join(dir, f);
      if (fs.statSync(file).isFile() && fs.readFileSync(file, 'utf8').includes(id)) out.push(file);
    }
  }
  return out;
}

/** iptables rules (any table) that mention `text`. */
export async function rulesMentioning(text: string): Promise<string[]> {
  const { stdout } = await run('iptables-save', [], { maxBuffer: 64 * 1024 * 1024 });
  return stdout.split('\n').filter((l) => l.includes(text));
}

/** One ping from inside `netns`. */
export async function ping(netns: string, ip: string, waitSeconds = 2): Promise<boolean> {
  try {
    await run('nsenter', [`--net=${netns}`, '/bin/busybox', 'ping', '-c1', `-W${waitSeconds}`, ip], { timeout: 10_000 });
    return true;
  } catch {
    return false;
  }
}

/** Polls `fn` until it returns a truthy value, at most `timeoutMs`. */
export async function waitFor<T>(fn: () => T | Promise<T>, opts: { timeoutMs?: number; what?: string } = {}): Promise<T> {
  const deadline = Date.now() + (opts.timeoutMs ?? 5000);
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${opts.what ?? 'condition'}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Everything of `id` a user could find on the host after detach; empty when it is clean. */
export async function leftoversOf(env: Env, id: string, bridge = env.bridge): Promise<string[]> {
  const found = [
    ...leasesOf(env.ipamDir, id).map((f) => `lease ${f}`),
    ...(await rulesMentioning(id)).map((r) => `rule ${r}`),
    ...(await portsOf(bridge)).map((l) => `veth ${l}`),
  ];
  if (fs.existsSync(path.join(env.graph, 'cni', 'cache', `${id}.json`))) found.push('cache entry');
  return found;
}
