#!/usr/bin/env node
// Memory footprint per engine: the daemon's RSS and PSS (/proc/PID/smaps_rollup) idle
// (busybox loaded, then a 2 s settle), with 10 and with 100 running containers
// (`run -d busybox sleep 1000`, the 100 started 10 at a time), and the PSS of each
// container's monitor process, median over the running containers. The daemon is
// isula's isulad (one node process), docker's dockerd plus the containerd it started
// (its child); podman has no daemon (0). The monitor is conmon for isula and podman
// (found by its `-c ID`), containerd-shim-runc-v2 for docker (found by its `-id ID`).
// Engines: isula (this checkout, runc), Debian's podman and docker.io, each on its
// own temporary roots with `--network none` (engines.mjs). `isula-<runtime>` engines run
// isula with another runtime (engines.mjs isulaRuntime()), whose monitor is that runtime's:
// containerd-shim-<x>-v<N> (parent pid 1, `-id ID`) for io.containerd.<x>.v<N>, lxc's
// monitor (`[lxc monitor] … ID`, or `lxc-start -F … -n ID`) for lcr. Every container is
// removed at the end, also when a step fails.
//
//   bench/footprint.sh [--engines isula,podman,docker] [--few 10] [--many 100] [--concurrency 10]
//   bench/footprint.sh --engines isula,isula-io.containerd.runc.v2,isula-lcr --few 10 --many 30
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { COMMON_OPTIONS, boundTeardowns, call, engineLabel, forEachEngine, isulaRuntimesIn, makeEngines, median, memKiB, processes, rmForce } from './engines.mjs';

const { values: opts } = parseArgs({
  options: {
    engines: { type: 'string', default: 'isula,podman,docker' },
    few: { type: 'string', default: '10' },
    many: { type: 'string', default: '100' },
    concurrency: { type: 'string', default: '10' },
    settle: { type: 'string', default: '2000' },
    ...COMMON_OPTIONS,
  },
});
const FEW = Number(opts.few);
const MANY = Number(opts.many);
const CONCURRENCY = Number(opts.concurrency);
const SETTLE_MS = Number(opts.settle);
if (!(FEW > 0 && MANY > FEW && CONCURRENCY > 0)) throw new Error('footprint: needs 0 < --few < --many and --concurrency > 0');
const ARCHIVE = path.join(opts.images, 'busybox.docker.tar');
const STAGES = ['idle', `c${FEW}`, `c${MANY}`];

let stopping = false;
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => { console.error(`footprint: ${sig}, cleaning up`); stopping = true; });
const mib = (kib) => (kib === null || kib === undefined ? '–' : (kib / 1024).toFixed(1));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Runs `fn` on every item, at most `n` at a time; fails (after the running ones end) at the first failure. */
async function pool(items, n, fn) {
  let next = 0;
  let failure;
  const worker = async () => {
    while (failure === undefined && next < items.length) {
      const item = items[next++];
      try { await fn(item); } catch (e) { failure ??= e; }
    }
  };
  await Promise.all(Array.from({ length: Math.min(n, items.length) }, worker));
  if (failure !== undefined) throw failure;
}

/** The daemon's processes: isulad; dockerd and its containerd child; none for podman. */
function daemonPids(name, engine) {
  if (name === 'podman') return [];
  const pid = engine.daemon.pid;
  if (name === 'isula' || name.startsWith('isula-')) return [pid];
  const children = processes().filter((p) => p.ppid === pid && p.comm === 'containerd').map((p) => p.pid);
  if (children.length !== 1) throw new Error(`dockerd ${pid}: ${children.length} containerd children`);
  return [pid, ...children];
}

function daemonMem(name, engine) {
  const pids = daemonPids(name, engine);
  const sum = { rssKiB: 0, pssKiB: 0, ussKiB: 0 };
  for (const pid of pids) {
    const m = memKiB(pid);
    if (m === null) throw new Error(`${name}: daemon process ${pid} is gone`);
    for (const k of Object.keys(sum)) sum[k] += m[k];
  }
  return { ...sum, pids };
}

/**
 * Container id → its monitor's pids, as the engine's `monitor.match` finds them: conmon `-c ID`
 * (isula, podman), containerd-shim `-id ID` (docker, isula on a shim v2 runtime), lxc's monitor (lcr).
 */
function monitors(name, ids) {
  const wanted = new Set(ids);
  const { match } = ENGINES[name].monitor;
  const byId = new Map();
  for (const p of processes()) {
    const id = match(p);
    if (id === undefined || !wanted.has(id)) continue;
    byId.set(id, [...(byId.get(id) ?? []), p.pid]);
  }
  return byId;
}

function monitorMem(name, ids) {
  const byId = monitors(name, ids);
  const pids = [...new Set([...byId.values()].flat())];
  const mem = pids.map((pid) => memKiB(pid)).filter((m) => m !== null);
  return {
    monitorPssKiB: mem.length > 0 ? median(mem.map((m) => m.pssKiB)) : null,
    monitorRssKiB: mem.length > 0 ? median(mem.map((m) => m.rssKiB)) : null,
    monitorUssKiB: mem.length > 0 ? median(mem.map((m) => m.ussKiB)) : null,
    monitorCount: pids.length,
    containersWithoutMonitor: ids.filter((id) => !byId.has(id)).length,
    containersSharingMonitor: [...byId.values()].filter((p) => p.length > 1).length,
  };
}

// Named: isulad draws a generated name before its awaits and checks it again after them,
// so concurrent creates without --name can fail with "name already in use" (20×20 names).
async function runContainers(engine, n, ids) {
  const first = ids.length;
  await pool(Array.from({ length: n }, (_, i) => `fp${first + i}`), CONCURRENCY, async (name) => {
    if (stopping) throw new Error('interrupted');
    const { out } = await call(engine, ['run', '-d', ...engine.runArgs, '--name', name, 'busybox', 'sleep', '1000']);
    const id = out.trim().split('\n').pop().trim();
    if (!/^[0-9a-f]{64}$/.test(id)) throw new Error(`run -d printed ${JSON.stringify(out)}`);
    ids.push(id);
  });
}

/** rm -f every container of the engine (its roots are ours alone), then waits (≤ 20 s) for their monitors to go. */
async function removeAll(name, engine, ids) {
  const listed = await call(engine, ['ps', '-aq', '--no-trunc']).then(({ out }) => out.split('\n').map((l) => l.trim()).filter(Boolean), (e) => { console.error(`footprint: ${name} ps -aq: ${e.message}`); return []; });
  const all = [...new Set([...ids, ...listed])];
  const failed = [];
  await pool(all, CONCURRENCY, (id) => call(engine, rmForce(engine, id)).catch((e) => { failed.push(`${id.slice(0, 12)}: ${e.message.trim()}`); }));
  if (failed.length > 0) console.error(`footprint: ${name}: rm -f failed for ${failed.length}:\n  ${failed.join('\n  ')}`);
  const deadline = Date.now() + 20_000;
  let left = monitors(name, all);
  while (left.size > 0 && Date.now() < deadline) { await sleep(250); left = monitors(name, all); }
  if (left.size > 0) console.error(`footprint: ${name}: ${left.size} monitors still there after rm -f: pids ${[...left.values()].flat().join(' ')}`);
  return { removed: all.length - failed.length, failed: failed.length, monitorsLeft: left.size };
}

const TMP = fs.mkdtempSync(path.join(os.tmpdir(), 'footprint-'));
const NAMES = opts.engines.split(',');
const ENGINES = boundTeardowns(makeEngines(TMP, { isulaRuntimes: isulaRuntimesIn(NAMES) }));
const failed = {};
let results;
try {
  results = await forEachEngine(ENGINES, NAMES, ARCHIVE, async (engine) => {
    const name = Object.keys(ENGINES).find((n) => ENGINES[n] === engine);
    const ids = [];
    const r = {};
    try {
      await sleep(SETTLE_MS);
      r.idle = daemonMem(name, engine);
      console.error(`  idle: ${fmt(r.idle)}`);
      let mon;
      for (const [stage, n] of [[`c${FEW}`, FEW], [`c${MANY}`, MANY - FEW]]) {
        const t0 = Date.now();
        await runContainers(engine, n, ids);
        await sleep(SETTLE_MS);
        r[stage] = daemonMem(name, engine);
        mon = monitorMem(name, ids);
        r[stage].monitorPssKiB = mon.monitorPssKiB;
        console.error(`  ${stage}: ${fmt(r[stage])}, monitor PSS ${mib(mon.monitorPssKiB)} MiB × ${mon.monitorCount} (${((Date.now() - t0) / 1000).toFixed(1)} s to start ${n})`);
      }
      Object.assign(r, mon);
      if (mon.containersWithoutMonitor > 0 || mon.containersSharingMonitor > 0) {
        console.error(`  ${name}: ${mon.containersWithoutMonitor} containers without a monitor found, ${mon.containersSharingMonitor} with several`);
      }
    } finally {
      r.cleanup = await removeAll(name, engine, ids);
    }
    if (NAMES.some((n) => n.startsWith('isula-'))) r.monitor = engine.monitor.label; // named in the by-runtime tables
    return r;
  }, failed);
} finally {
  fs.rmSync(TMP, { recursive: true, force: true });
}

function fmt(m) { return `RSS ${mib(m.rssKiB)} MiB, PSS ${mib(m.pssKiB)} MiB, USS ${mib(m.ussKiB)} MiB`; }

const engines = Object.keys(results);
const label = (e) => engineLabel(e, engines.some((x) => x.startsWith('isula-')));
let md = `footprint on ${os.hostname()} (${os.cpus().length} cores, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB), ${new Date().toISOString()}: MiB, from /proc/PID/smaps_rollup\n\n`;
md += `Daemon: isulad (one node process), dockerd + the containerd it started, none for podman; idle is after loading busybox and a ${SETTLE_MS / 1000} s settle, cN with N running \`busybox sleep 1000\` containers. `;
md += engines.some((e) => e.startsWith('isula-'))
  ? `Monitor: ${engines.map((e) => `${results[e].monitor} (${label(e)})`).join(', ')}, median over the ${MANY} running containers. `
  : `Monitor: conmon (isula, podman), containerd-shim-runc-v2 (docker), median over the ${MANY} running containers. `;
md += `PSS shares each page among the processes mapping it, so it falls as more processes of the same binary run (other node processes on the host for isulad); USS is the process's private pages.\n\n`;
md += `| engine | ${STAGES.map((s) => `daemon ${s} RSS / PSS / USS`).join(' | ')} | daemon PSS growth per container (KiB) | monitor RSS / PSS / USS | monitors |\n`;
md += `|---|${STAGES.map(() => '---:').join('|')}|---:|---:|---:|\n`;
const triple = (m) => `${mib(m.rssKiB)} / ${mib(m.pssKiB)} / ${mib(m.ussKiB)}`;
for (const e of engines) {
  const r = results[e];
  const per = (r[`c${MANY}`].pssKiB - r.idle.pssKiB) / MANY;
  md += `| ${label(e)} | ${STAGES.map((s) => triple(r[s])).join(' | ')} | ${per.toFixed(0)} | ${mib(r.monitorRssKiB)} / ${mib(r.monitorPssKiB)} / ${mib(r.monitorUssKiB)} | ${r.monitorCount} |\n`;
}
for (const [e, msg] of Object.entries(failed)) md += `\n${label(e)} failed: ${msg}\n`;
fs.mkdirSync(opts.results, { recursive: true });
fs.writeFileSync(path.join(opts.results, 'footprint.md'), md);
// `_failed`: the opt-in isula-<runtime> engines that failed (summary.mjs notes them).
fs.writeFileSync(path.join(opts.results, 'footprint.json'), JSON.stringify(Object.keys(failed).length > 0 ? { ...results, _failed: failed } : results));
process.stdout.write(md);
if (Object.keys(failed).length > 0 || engines.some((e) => results[e].cleanup.failed > 0 || results[e].cleanup.monitorsLeft > 0)) process.exitCode = 1;
