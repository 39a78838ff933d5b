/**
 * The crash-consistency campaign: a real isulad on temporary roots runs a
 * random mix of operations (load, create, start, exec, stop, rm, rmi, volume
 * create/rm) and is killed with SIGKILL at a random moment — chosen uniformly
 * over time, or at a named fault point through ISULAD_FAULT_INJECTION (see
 * packages/core/src/fault.ts). After each kill it is restarted and the
 * invariants are checked:
 * - every container record matches reality: running ⇔ its pid is alive, and
 *   conmon, overlay mounts and cgroup dirs exist for running containers only;
 * - no half image or layer: every listed image inspects, every layer has its
 *   commit marker, staging is empty;
 * - the operations retried succeed (load, create + start + rm -f);
 * and at the end, once everything is removed, nothing is left (mounts,
 * conmon, cgroups, layers).
 *
 * By hand: `node test/dist/fault/campaign.js --kills 1000 [--networks] [--seed N]`.
 * In CI: test/e2e/fault-campaign.test.ts runs 50 kills.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import pino from 'pino';
import { removeBridgeIsolation } from '@isula/network-cni';
import { httpRequest, tempRoot, TestDaemon, type HttpResult } from '../lib/harness.js';
import { IMAGES_DIR, testImages } from '../lib/containers.js';
import { claimSubnetSlot } from '../lib/subnets.js';

const run = promisify(execFile);

/** The named points this workload passes; `network:mid-cni-add` with networks on. */
export const POINTS = [
  'metadata:before-rename', 'metadata:after-rename', 'container:after-runtime-create', 'container:after-exit-record',
  'image:after-blob-write', 'image:mid-extract',
];

export interface CampaignResult {
  kills: number;
  byPoint: Record<string, number>;
  timed: number;
  /** Named points armed but not reached by the workload: killed at the end of it instead. */
  notReached: number;
  operations: number;
  violations: string[];
  /** Warnings the daemon logged while restoring after the kills (repairs it made). */
  repairs: number;
  /** With networks: the most veths seen on the bridge at a check (the checks saw networked containers). */
  peakVeths: number;
  durationMs: number;
}

function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

let seenVeths = 0;

/** Networks: the CNI plugin on a bridge, subnet and conf dir of the campaign's own. */
interface Net { bridge: string; subnet: string; confDir: string; network: string }

export async function runCampaign(opts: { kills: number; seed?: number; networks?: boolean; log?: (line: string) => void }): Promise<CampaignResult> {
  const seed = opts.seed ?? Date.now() % 1_000_000;
  const rnd = prng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
  const log = opts.log ?? (() => {});
  await testImages();
  const archive = await fs.readFile(path.join(IMAGES_DIR, 'busybox.docker.tar'));
  const root = await tempRoot('isula-fault-');
  const d = new TestDaemon(root);
  const cgroupParent = `/isulad-fault-${process.pid}`;
  const net: Net | undefined = opts.networks === true
    ? { bridge: `isuf${process.pid % 100000}`, subnet: `10.241.${claimSubnetSlot()}.0/24`, confDir: path.join(root, 'cni-conf'), network: 'isula' }
    : undefined;
  const points = net === undefined ? POINTS : [...POINTS, 'network:mid-cni-add'];
  if (net !== undefined) await fs.mkdir(net.confDir, { recursive: true });
  await d.writeConfig({
    plugins: ['@isula/image-oci', '@isula/driver-runc', ...(net === undefined ? [] : [{ package: '@isula/network-cni', options: { bridge: net.bridge, subnet: net.subnet } }])],
    ...(net !== undefined && { 'cni-conf-dir': net.confDir, 'cni-bin-dir': ['/usr/lib/cni'] }),
    'default-runtime': 'runc', 'cgroup-parent': cgroupParent, 'log-level': 'info',
  });
  const result: CampaignResult = { kills: 0, byPoint: {}, timed: 0, notReached: 0, operations: 0, violations: [], repairs: 0, peakVeths: 0, durationMs: 0 };
  const started = Date.now();
  const api = (method: string, p: string, body?: unknown): Promise<HttpResult> =>
    httpRequest(d.socket, method, p, body === undefined ? undefined : Buffer.isBuffer(body) ? body : JSON.stringify(body),
      body === undefined ? {} : Buffer.isBuffer(body) ? { 'content-type': 'application/x-tar' } : { 'content-type': 'application/json' });
  let names = 0;

  /** One random operation; errors are expected (the daemon may die under it). */
  const operation = async (): Promise<void> => {
    const r = rnd();
    const list = await api('GET', '/containers/json?all=1').then((x) => JSON.parse(x.body) as { Id: string; State: string }[]);
    const any = list.length > 0 ? pick(list) : undefined;
    if (r < 0.12) await api('POST', '/images/load?quiet=1', archive);
    else if (r < 0.32) {
      const networked = net !== undefined && rnd() < 0.6;
      const c = await api('POST', `/containers/create?name=f${++names}`, { Image: 'busybox', Cmd: ['sh', '-c', rnd() < 0.5 ? 'sleep 30' : 'echo hi; sleep 0.2'], HostConfig: networked ? {} : { NetworkMode: 'none' } });
      if (c.status === 201 && rnd() < 0.7) await api('POST', `/containers/${(JSON.parse(c.body) as { Id: string }).Id}/start`);
    } else if (r < 0.45 && any) await api('POST', `/containers/${any.Id}/start`);
    else if (r < 0.55 && any) {
      const e = await api('POST', `/containers/${any.Id}/exec`, { Cmd: ['true'] });
      if (e.status === 201) await api('POST', `/exec/${(JSON.parse(e.body) as { Id: string }).Id}/start`, { Detach: true });
    } else if (r < 0.68 && any) await api('POST', `/containers/${any.Id}/stop?t=0`);
    else if (r < 0.82 && any) await api('DELETE', `/containers/${any.Id}?force=1`);
    else if (r < 0.88) await api('DELETE', '/images/busybox?force=1');
    else if (r < 0.94) await api('POST', '/volumes/create', { Name: `v${names % 5}` });
    else await api('DELETE', `/volumes/v${names % 5}`);
  };

  try {
    await d.start();
    await api('POST', '/images/load?quiet=1', archive);
    for (let k = 0; k < opts.kills; k++) {
      // Arm: a named point (hit 1st..3rd time) or a uniform moment in the next 2 s.
      const named = rnd() < 0.5 ? { point: pick(points), nth: 1 + Math.floor(rnd() * 3) } : undefined;
      await d.stop();
      if (named !== undefined) process.env['ISULAD_FAULT_INJECTION'] = `${named.point}:${named.nth}`;
      // An armed point can be reached by the start-up itself (restore writes records): a kill
      // during start-up, as good a moment as any.
      let diedStarting = false;
      try {
        await d.start();
      } catch (err) {
        if (named === undefined || d.proc?.signalCode !== 'SIGKILL') throw err;
        diedStarting = true;
      } finally {
        delete process.env['ISULAD_FAULT_INJECTION'];
      }
      const dead = d.exit!.then(() => true);
      let killedAt: string;
      const timer = named === undefined ? setTimeout(() => d.proc?.kill('SIGKILL'), Math.floor(rnd() * 2000)) : undefined;
      // The workload, bounded: 40 operations at most, two at a time, until the daemon is gone.
      for (let i = 0; i < 20 && !diedStarting; i++) {
        if (d.proc?.exitCode !== null || d.proc?.signalCode !== null) break;
        await Promise.all([operation(), operation()].map((p) => p.catch(() => {})));
        result.operations += 2;
      }
      clearTimeout(timer);
      if (d.proc?.exitCode === null && d.proc?.signalCode === null) {
        d.proc.kill('SIGKILL');
        if (named !== undefined) result.notReached++;
        else result.timed++;
        killedAt = named === undefined ? 'timed' : `end (${named.point} not reached)`;
      } else if (named !== undefined) {
        result.byPoint[named.point] = (result.byPoint[named.point] ?? 0) + 1;
        killedAt = `${named.point}:${named.nth}${diedStarting ? ' (during start-up)' : ''}`;
      } else {
        result.timed++;
        killedAt = 'timed';
      }
      await dead;
      result.kills++;
      const logBefore = (await d.log()).length;
      await d.start();
      const restoreLog = (await d.log()).slice(logBefore);
      result.repairs += restoreLog.split('\n').filter((l) => /"level":(40|50)/.test(l)).length;
      const v = await checkInvariants(d, api, cgroupParent, archive, net);
      for (const x of v) result.violations.push(`kill ${k} (${killedAt}): ${x}`);
      log(`kill ${k + 1}/${opts.kills} at ${killedAt}: ${v.length === 0 ? 'ok' : v.join('; ')}`);
    }
    // The end: everything removed leaves nothing.
    const all = JSON.parse((await api('GET', '/containers/json?all=1')).body) as { Id: string }[];
    for (const c of all) await api('DELETE', `/containers/${c.Id}?force=1`);
    for (const img of JSON.parse((await api('GET', '/images/json')).body) as { Id: string }[]) await api('DELETE', `/images/${img.Id}?force=1`);
    const left = await leftovers(d, cgroupParent, new Set(), net);
    if ((await fs.readdir(path.join(d.graph, 'storage', 'layers')).catch(() => [])).length > 0) left.push('layers left after every image was removed');
    for (const x of left) result.violations.push(`final: ${x}`);
  } finally {
    result.durationMs = Date.now() - started;
    result.peakVeths = seenVeths;
    await d.stop().catch(() => {});
    for (const m of (await mountsUnder(root)).reverse()) await run('umount', ['-l', m]).catch(() => {});
    // The cgroup parent the daemon made for the campaign's containers (empty once they are gone).
    for (const ctrl of await fs.readdir('/sys/fs/cgroup').catch(() => [])) await fs.rmdir(path.join('/sys/fs/cgroup', ctrl, cgroupParent)).catch(() => {});
    if (net !== undefined) {
      await run('ip', ['link', 'del', net.bridge]).catch(() => {});
      await removeBridgeIsolation(net.bridge, pino({ level: 'silent' })).catch(() => {});
    }
    await fs.rm(root, { recursive: true, force: true }).catch(() => {});
  }
  log(`seed ${seed}`);
  return result;
}

async function checkInvariants(d: TestDaemon, api: (m: string, p: string, b?: unknown) => Promise<HttpResult>, cgroupParent: string, archive: Buffer, net: Net | undefined): Promise<string[]> {
  // A container whose exit the restore just found is cleaned up (unmount, cgroups) right after
  // its exit is recorded: what persists past a short settle is a leak, what goes is not.
  let v: string[] = [];
  for (let i = 0; i < 10; i++) {
    v = await containerInvariants(d, api, cgroupParent, net);
    if (v.length === 0) break;
    await new Promise((r) => setTimeout(r, 300));
  }
  v.push(...(await imageInvariants(d, api)));
  v.push(...(await retries(api, archive)));
  return v;
}

async function containerInvariants(d: TestDaemon, api: (m: string, p: string, b?: unknown) => Promise<HttpResult>, cgroupParent: string, net: Net | undefined): Promise<string[]> {
  const v: string[] = [];
  const list = JSON.parse((await api('GET', '/containers/json?all=1')).body) as { Id: string }[];
  const running = new Set<string>();
  for (const c of list) {
    const ins = await api('GET', `/containers/${c.Id}/json`);
    if (ins.status !== 200) { v.push(`container ${c.Id.slice(0, 12)} listed but does not inspect (${ins.status})`); continue; }
    const st = (JSON.parse(ins.body) as { State: { Running: boolean; Pid: number; Status: string } }).State;
    if (st.Running) {
      running.add(c.Id);
      const alive = await fs.readFile(`/proc/${st.Pid}/stat`, 'utf8').then((s) => !/\) [ZX] /.test(s), () => false);
      if (!alive) v.push(`container ${c.Id.slice(0, 12)} is running with pid ${st.Pid}, which is gone`);
    } else if (st.Pid !== 0) v.push(`container ${c.Id.slice(0, 12)} is ${st.Status} with pid ${st.Pid}`);
  }
  v.push(...(await leftovers(d, cgroupParent, running, net)));
  return v;
}

async function imageInvariants(d: TestDaemon, api: (m: string, p: string, b?: unknown) => Promise<HttpResult>): Promise<string[]> {
  const v: string[] = [];
  // Images: each inspects; each layer has its commit marker; staging is empty.
  for (const img of JSON.parse((await api('GET', '/images/json')).body) as { Id: string }[]) {
    const ins = await api('GET', `/images/${img.Id}/json`);
    if (ins.status !== 200) v.push(`image ${img.Id.slice(7, 19)} listed but does not inspect (${ins.status})`);
  }
  const storage = path.join(d.graph, 'storage');
  for (const l of await fs.readdir(path.join(storage, 'layers')).catch(() => [])) {
    if (!(await fs.access(path.join(storage, 'layers', l, 'layer.json')).then(() => true, () => false))) v.push(`layer ${l.slice(0, 12)} without its layer.json`);
  }
  const tmp = await fs.readdir(path.join(storage, 'tmp')).catch(() => []);
  if (tmp.length > 0) v.push(`staging not emptied at start-up: ${tmp.join(', ')}`);
  return v;
}

/** The operations retried succeed. */
async function retries(api: (m: string, p: string, b?: unknown) => Promise<HttpResult>, archive: Buffer): Promise<string[]> {
  const v: string[] = [];
  const load = await api('POST', '/images/load?quiet=1', archive);
  if (load.status !== 200) v.push(`load retried fails: ${load.status} ${load.body.slice(0, 200)}`);
  const c = await api('POST', '/containers/create', { Image: 'busybox', Cmd: ['true'], HostConfig: { NetworkMode: 'none' } });
  if (c.status !== 201) v.push(`create retried fails: ${c.status} ${c.body.slice(0, 200)}`);
  else {
    const id = (JSON.parse(c.body) as { Id: string }).Id;
    const s = await api('POST', `/containers/${id}/start`);
    if (s.status !== 204) v.push(`start retried fails: ${s.status} ${s.body.slice(0, 200)}`);
    const rm = await api('DELETE', `/containers/${id}?force=1`);
    if (rm.status !== 204) v.push(`rm -f retried fails: ${rm.status} ${rm.body.slice(0, 200)}`);
  }
  return v;
}

/**
 * conmon processes, overlay mounts and cgroup dirs of containers that are not running; with
 * networks, their netns mounts, more veths on the bridge, IPAM leases or firewall rules than running containers.
 */
async function leftovers(d: TestDaemon, cgroupParent: string, running: Set<string>, net?: Net): Promise<string[]> {
  const v: string[] = [];
  if (net !== undefined) {
    for (const id of await fs.readdir(path.join(d.state, 'netns')).catch(() => [])) {
      if (/^[0-9a-f]{64}$/.test(id) && !running.has(id)) v.push(`netns ${id.slice(0, 12)} of a container not running`);
    }
    const veths = (await run('ip', ['-o', 'link', 'show', 'master', net.bridge]).then((r) => r.stdout, () => '')).split('\n').filter((l) => l.trim() !== '').length;
    seenVeths = Math.max(seenVeths, veths);
    if (veths > running.size) v.push(`${veths} veths on ${net.bridge} for ${running.size} running containers`);
    const leases = (await fs.readdir(path.join(d.graph, 'cni', 'networks', net.network)).catch(() => [])).filter((f) => /^\d+\.\d+\.\d+\.\d+$/.test(f));
    if (leases.length > running.size) v.push(`${leases.length} IPAM leases in ${net.network} for ${running.size} running containers: ${leases.join(', ')}`);
    // The firewall plugin's per-address rules (one -s and one -d rule per container address).
    const prefix = net.subnet.replace(/\.0\/24$/, '.');
    const forward = (await run('iptables-save', ['-t', 'filter']).then((r) => r.stdout, () => '')).split('\n')
      .map((l) => /^-A CNI-FORWARD -s (\S+)\/32 -j ACCEPT$/.exec(l)?.[1]).filter((ip): ip is string => ip?.startsWith(prefix) === true);
    if (forward.length > running.size) v.push(`${forward.length} CNI-FORWARD rules for ${running.size} running containers: ${forward.join(', ')}`);
  }
  for (const e of await fs.readdir('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    const argv = (await fs.readFile(`/proc/${e}/cmdline`, 'utf8').catch(() => '')).split('\0');
    if (!argv[0]?.endsWith('conmon') || !argv.some((a) => a.startsWith(d.state))) continue;
    const stat = await fs.readFile(`/proc/${e}/stat`, 'utf8').catch(() => '');
    if (/\) [ZX] /.test(stat)) continue;
    const id = argv[argv.indexOf('-c') + 1] ?? '';
    if (!running.has(id)) v.push(`conmon ${e} of container ${id.slice(0, 12)}, which is not running`);
  }
  for (const m of await mountsUnder(d.graph)) {
    const id = /containers\/([0-9a-f]{64})\//.exec(m)?.[1];
    if (id === undefined || !running.has(id)) v.push(`mount ${m} of a container not running`);
  }
  for (const ctrl of ['memory', 'pids', 'cpu']) {
    for (const id of await fs.readdir(path.join('/sys/fs/cgroup', ctrl, cgroupParent)).catch(() => [])) {
      const st = await fs.stat(path.join('/sys/fs/cgroup', ctrl, cgroupParent, id)).catch(() => undefined);
      if (st?.isDirectory() === true && !running.has(id)) v.push(`cgroup ${ctrl}${cgroupParent}/${id.slice(0, 12)} of a container not running`);
    }
  }
  return v;
}

async function mountsUnder(dir: string): Promise<string[]> {
  const info = await fs.readFile('/proc/self/mountinfo', 'utf8');
  return info.split('\n').map((l) => l.split(' ')[4] ?? '').filter((m) => m.startsWith(`${dir}/`));
}

// By hand: node test/dist/fault/campaign.js --kills 1000 [--seed N]
if (process.argv[1] !== undefined && import.meta.url === `file://${process.argv[1]}`) {
  const arg = (name: string) => { const i = process.argv.indexOf(name); return i > 0 ? Number(process.argv[i + 1]) : undefined; };
  const seed = arg('--seed');
  const r = await runCampaign({ kills: arg('--kills') ?? 100, networks: process.argv.includes('--networks'), ...(seed !== undefined && { seed }), log: (l) => process.stdout.write(`${l}\n`) });
  process.stdout.write(`${JSON.stringify({ ...r, violations: r.violations.length }, null, 2)}\n`);
  for (const x of r.violations) process.stdout.write(`VIOLATION ${x}\n`);
  process.exitCode = r.violations.length === 0 ? 0 : 1;
}
