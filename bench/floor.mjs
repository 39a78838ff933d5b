#!/usr/bin/env node
// The "runc floor": the ptcr operations (bench/ptcr.mjs) done directly with
// runc on prepared bundles, no engine, so an engine's overhead can be given as
// a ratio to it. Each container gets its own overlay mount over the busybox
// layer of the offline test image (an engine pays for its mount too: create
// and run -d include the mount, rm and rm -f the umount) and a bundle from
// `runc spec` (sleep 1000, no terminal, absolute cgroupsPath /floor/<name>,
// NOFILE 1024, a new empty netns = `--network none`). Every command is timed
// from spawn to exit, like engines.mjs `exec`:
//   create  mount overlay + write config.json + runc create
//   start   runc start
//   stop    runc kill KILL + poll runc state (every 2 ms, at most 10 s) until stopped
//   rm      runc delete + umount + remove the container's dirs
//   run -d  mount overlay + write config.json + runc run -d
//   rm -f   runc delete --force + umount + remove the container's dirs
// Also "create+start" (per container, the sum). Writes results/floor.json in
// ptcr.json's shape for one engine, "runc" (plus "node_e0_ms": the median of
// 10 `node -e 0` with this Node), and results/floor.md. Everything lives under
// one temporary dir (runc --root included), removed at the end, also on failure.
//
//   bench/floor.sh [--serial 10] [--parallel 100]
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { COMMON_OPTIONS, median, p90 } from './engines.mjs';

const { values: opts } = parseArgs({
  options: {
    serial: { type: 'string', default: '10' },
    parallel: { type: 'string', default: '100' },
    ...COMMON_OPTIONS,
  },
});
const SERIAL = Number(opts.serial);
const PARALLEL = Number(opts.parallel);
for (const [k, v] of [['serial', SERIAL], ['parallel', PARALLEL]]) {
  if (!Number.isInteger(v) || v < 1 || v > 1000) throw new Error(`--${k} must be an integer in 1..1000`);
}
const ARCHIVE = path.join(opts.images, 'busybox.docker.tar');
const OPS = ['create', 'start', 'stop', 'rm', 'run -d', 'rm -f'];
const CALL_TIMEOUT_MS = 30_000;
const STOP_POLL_MS = 2;
const STOP_BOUND_MS = 10_000;
const CGROUP_PARENT = 'floor';
const CGROUP_FS = '/sys/fs/cgroup';

const TMP = fs.mkdtempSync(path.join(os.tmpdir(), 'floor-'));
const TAG = path.basename(TMP).slice('floor-'.length); // container names are unique per run
const LOWER = path.join(TMP, 'lower');
const RUNC_ROOT = path.join(TMP, 'runc');
const CTRS = path.join(TMP, 'c');
const used = new Set(); // every container name this run used, for the cleanup and the leak check

// --- processes ------------------------------------------------------------------------

let stopping = false; // set by SIGINT/SIGTERM: no new commands, the finally below cleans up
let cleaning = false; // the cleanup's own commands always run
const inFlight = new Set();

/**
 * Runs cmd, resolves { ms, out } (ms from spawn to exit), rejects on a non-zero exit or
 * after CALL_TIMEOUT_MS. `errFile`: stderr goes to that file and stdout to /dev/null — for
 * runc create/run -d, whose container inherits runc's stdio: with a pipe, the pipe would
 * stay open as long as the container runs (the file also gives runc's error message).
 */
function run(cmd, args, { errFile } = {}) {
  if (stopping && !cleaning) return Promise.reject(new Error('interrupted'));
  return new Promise((resolve, reject) => {
    const errFd = errFile === undefined ? undefined : fs.openSync(errFile, 'w');
    const t0 = process.hrtime.bigint();
    const p = spawn(cmd, args, { stdio: errFd === undefined ? ['ignore', 'pipe', 'pipe'] : ['ignore', 'ignore', errFd] });
    if (errFd !== undefined) fs.closeSync(errFd);
    inFlight.add(p);
    let out = '';
    let err = '';
    p.stdout?.on('data', (c) => { out += c; });
    p.stderr?.on('data', (c) => { err += c; });
    const timer = setTimeout(() => p.kill('SIGKILL'), CALL_TIMEOUT_MS);
    const done = (code, signal, spawnErr) => {
      clearTimeout(timer);
      inFlight.delete(p);
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      if (spawnErr) return reject(spawnErr);
      if (code === 0) return resolve({ ms, out });
      if (errFile !== undefined) { try { err = fs.readFileSync(errFile, 'utf8'); } catch { /* gone */ } }
      reject(new Error(`${cmd} ${args.join(' ')} → ${code ?? signal}: ${err.trim()}`));
    };
    p.on('error', (e) => done(null, null, e));
    p.on('close', (code, signal) => done(code, signal));
  });
}

const runc = (args, o) => run('runc', ['--root', RUNC_ROOT, ...args], o);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const since = (t0) => Number(process.hrtime.bigint() - t0) / 1e6;

/** Like Promise.all, but waits for every promise to settle before throwing the first error. */
async function all(promises) {
  const rs = await Promise.allSettled(promises);
  const bad = rs.find((r) => r.status === 'rejected');
  if (bad) throw bad.reason;
  return rs.map((r) => r.value);
}

// --- one container --------------------------------------------------------------------

let SPEC; // runc spec, adjusted; root.path and cgroupsPath are set per container

const dirOf = (name) => path.join(CTRS, name);

async function prepareSpec() {
  const d = path.join(TMP, 'spec');
  fs.mkdirSync(d);
  await run('runc', ['spec', '--bundle', d]);
  const s = JSON.parse(fs.readFileSync(path.join(d, 'config.json'), 'utf8'));
  s.root = { path: '', readonly: false };
  s.process.terminal = false;
  s.process.args = ['sleep', '1000'];
  // The host's NOFILE hard limit is 20000 and can't be raised (PLATFORM.md §2): keep 1024.
  s.process.rlimits = [...(s.process.rlimits ?? []).filter((r) => r.type !== 'RLIMIT_NOFILE'), { type: 'RLIMIT_NOFILE', hard: 1024, soft: 1024 }];
  // A network namespace without a path: a new, empty one (`--network none`).
  s.linux.namespaces = s.linux.namespaces.map((n) => (n.type === 'network' ? { type: 'network' } : n));
  if (!s.linux.namespaces.some((n) => n.type === 'network')) s.linux.namespaces.push({ type: 'network' });
  SPEC = s;
}

/** Overlay mount + bundle (the part of create and run -d before runc). */
async function mountAndBundle(name) {
  const d = dirOf(name);
  used.add(name);
  await fs.promises.mkdir(d);
  await Promise.all(['upper', 'work', 'merged'].map((x) => fs.promises.mkdir(path.join(d, x))));
  await run('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${LOWER},upperdir=${d}/upper,workdir=${d}/work`, `${d}/merged`]);
  const spec = { ...SPEC, hostname: name, root: { path: `${d}/merged`, readonly: false }, linux: { ...SPEC.linux, cgroupsPath: `/${CGROUP_PARENT}/${name}` } };
  await fs.promises.writeFile(path.join(d, 'config.json'), JSON.stringify(spec));
  return d;
}

/** umount + remove the container's dirs (the part of rm and rm -f after runc). */
async function unmountAndRemove(name) {
  const d = dirOf(name);
  await run('umount', [`${d}/merged`]);
  await fs.promises.rm(d, { recursive: true, force: true });
}

const STEPS = {
  async create(name) {
    const t0 = process.hrtime.bigint();
    const d = await mountAndBundle(name);
    await runc(['create', '--bundle', d, '--pid-file', path.join(d, 'pid'), name], { errFile: path.join(d, 'runc.err') });
    return since(t0);
  },
  async start(name) {
    return (await runc(['start', name])).ms;
  },
  async stop(name) {
    const t0 = process.hrtime.bigint();
    await runc(['kill', name, 'KILL']);
    for (;;) {
      const { out } = await runc(['state', name]);
      if (JSON.parse(out).status === 'stopped') return since(t0);
      if (since(t0) > STOP_BOUND_MS) throw new Error(`${name}: not stopped ${STOP_BOUND_MS} ms after runc kill KILL`);
      await sleep(STOP_POLL_MS);
    }
  },
  async rm(name) {
    const t0 = process.hrtime.bigint();
    await runc(['delete', name]);
    await unmountAndRemove(name);
    return since(t0);
  },
  async 'run -d'(name) {
    const t0 = process.hrtime.bigint();
    const d = await mountAndBundle(name);
    await runc(['run', '-d', '--bundle', d, name], { errFile: path.join(d, 'runc.err') });
    return since(t0);
  },
  async 'rm -f'(name) {
    const t0 = process.hrtime.bigint();
    await runc(['delete', '--force', name]);
    await unmountAndRemove(name);
    return since(t0);
  },
};

/** ptcr's phase(): each op for n containers, one after another or all at once. */
async function phase(n, parallel, prefix) {
  const names = Array.from({ length: n }, (_, i) => `${TAG}-${prefix}${i}`);
  const times = {};
  for (const op of OPS) {
    const t0 = process.hrtime.bigint();
    if (parallel) {
      times[op] = await all(names.map((nm) => STEPS[op](nm)));
    } else {
      times[op] = [];
      for (const nm of names) times[op].push(await STEPS[op](nm));
    }
    times[`${op} (wall)`] = [since(t0)];
  }
  times['create+start'] = times.create.map((ms, i) => ms + times.start[i]);
  return times;
}

// --- cleanup and leak check -------------------------------------------------------------

function mountsUnder(dir) {
  return fs.readFileSync('/proc/self/mounts', 'utf8').split('\n')
    .map((l) => l.split(' ')[1])
    .filter((m) => m !== undefined && (m === dir || m.startsWith(`${dir}/`)))
    .map((m) => m.replace(/\\(\d{3})/g, (_, o) => String.fromCharCode(parseInt(o, 8))));
}

/** The /floor parents in every cgroup hierarchy (v1 controllers, name=systemd, unified). */
function cgroupParents() {
  const seen = new Set();
  const out = [];
  for (const h of fs.readdirSync(CGROUP_FS)) {
    let real;
    try { real = fs.realpathSync(path.join(CGROUP_FS, h)); } catch { continue; }
    if (seen.has(real)) continue;
    seen.add(real);
    const p = path.join(real, CGROUP_PARENT);
    if (fs.existsSync(p)) out.push(p);
  }
  return out;
}

const leftCgroups = () => cgroupParents().flatMap((p) => [...used].map((n) => path.join(p, n)).filter((c) => fs.existsSync(c)));

async function cleanup() {
  // Wait for the commands still running (each is bounded by CALL_TIMEOUT_MS).
  while (inFlight.size > 0) await sleep(20);
  cleaning = true;
  const problems = [];
  // Containers still known to runc: delete --force (kills them and removes their cgroups).
  if (fs.existsSync(RUNC_ROOT)) {
    const { out } = await runc(['list', '-q']).catch(() => ({ out: '' }));
    const ids = out.split('\n').filter(Boolean);
    for (const id of fs.readdirSync(RUNC_ROOT)) if (!ids.includes(id)) ids.push(id);
    for (const id of ids) await runc(['delete', '--force', id]).catch((e) => problems.push(`runc delete --force ${id}: ${e.message}`));
  }
  // Overlay mounts, deepest first; lazily if a plain umount fails.
  for (const m of mountsUnder(TMP).reverse()) {
    await run('umount', [m]).catch(() => run('umount', ['-l', m])).catch((e) => problems.push(`umount ${m}: ${e.message}`));
  }
  // Cgroups runc left (should be none), then the /floor parents if empty (another run may use them).
  for (const c of leftCgroups()) {
    try { fs.rmdirSync(c); } catch (e) { problems.push(`rmdir ${c}: ${e.code}`); }
  }
  for (const p of cgroupParents()) {
    try { fs.rmdirSync(p); } catch (e) { if (e.code !== 'ENOTEMPTY' && e.code !== 'EBUSY' && e.code !== 'ENOENT') problems.push(`rmdir ${p}: ${e.code}`); }
  }
  // Never rm -r across a mount point.
  if (mountsUnder(TMP).length === 0) fs.rmSync(TMP, { recursive: true, force: true });
  else problems.push(`still mounted, ${TMP} kept: ${mountsUnder(TMP).join(' ')}`);
  // The leak check.
  if (fs.existsSync(TMP)) problems.push(`${TMP} still exists`);
  for (const c of leftCgroups()) problems.push(`cgroup left: ${c}`);
  return problems;
}

let signals = 0;
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    if (++signals > 1) { console.error(`floor: ${sig} again, exiting without cleanup of ${TMP}`); process.exit(130); }
    console.error(`floor: ${sig}, cleaning up`);
    stopping = true;
  });
}

// --- main -------------------------------------------------------------------------------

async function nodeE0() {
  const ms = [];
  for (let i = 0; i < 10; i++) ms.push((await run(process.execPath, ['-e', '0'])).ms);
  return median(ms);
}

let results;
let runcVersion;
let failure;
try {
  fs.mkdirSync(CTRS);
  fs.mkdirSync(RUNC_ROOT);
  fs.mkdirSync(LOWER);
  // The busybox rootfs: the single layer of the offline docker-archive.
  const x = path.join(TMP, 'archive');
  fs.mkdirSync(x);
  await run('tar', ['-xf', ARCHIVE, '-C', x, 'manifest.json']);
  const [manifest] = JSON.parse(fs.readFileSync(path.join(x, 'manifest.json'), 'utf8'));
  if (manifest?.Layers?.length !== 1) throw new Error(`${ARCHIVE}: expected one image with one layer`);
  await run('tar', ['-xf', ARCHIVE, '-C', x, manifest.Layers[0]]);
  await run('tar', ['--numeric-owner', '-xpf', path.join(x, manifest.Layers[0]), '-C', LOWER]);
  fs.rmSync(x, { recursive: true });
  await prepareSpec();
  runcVersion = (await run('runc', ['--version'])).out.split('\n')[0];

  const node_e0_ms = await nodeE0();
  console.error('==> runc');
  // Warm-up: one container through every step, not counted.
  await phase(1, false, 'w');
  const serial = await phase(SERIAL, false, 's');
  const parallel = await phase(PARALLEL, true, 'p');
  results = { node_e0_ms, runc: { serial, parallel } };
} catch (e) {
  failure = e;
} finally {
  const problems = await cleanup();
  for (const p of problems) console.error(`floor: LEAK/cleanup problem: ${p}`);
  if (problems.length > 0) process.exitCode = 1;
}
if (failure !== undefined) {
  console.error(`floor: ${failure.stack ?? failure}`);
  process.exit(1);
}

const E0 = results.node_e0_ms;
let md = `runc floor on ${os.hostname()} (${os.cpus().length} cores), ${new Date().toISOString()}: median ms per operation (p90); ${runcVersion} called directly on prepared bundles, overlay mount/umount included in create, run -d, rm, rm -f; \`node -e 0\` = ${E0.toFixed(1)} ms (median of 10)\n\n`;
const ROWS = [...OPS, 'create+start'];
for (const mode of ['serial', 'parallel']) {
  const n = mode === 'serial' ? SERIAL : PARALLEL;
  const t = results.runc[mode];
  md += `### ${n} containers, ${mode}\n\n| operation | runc | runc + node -e 0 |\n|---|---:|---:|\n`;
  for (const op of ROWS) {
    const extra = op === 'create+start' ? 2 * E0 : E0; // two CLI calls
    md += `| ${op} | ${median(t[op]).toFixed(0)} (${p90(t[op]).toFixed(0)}) | ${(median(t[op]) + extra).toFixed(0)} |\n`;
  }
  md += `| total wall s | ${(OPS.reduce((s, op) => s + t[`${op} (wall)`][0], 0) / 1000).toFixed(2)} | |\n\n`;
}
fs.mkdirSync(opts.results, { recursive: true });
fs.writeFileSync(path.join(opts.results, 'floor.md'), md);
fs.writeFileSync(path.join(opts.results, 'floor.json'), JSON.stringify(results));
process.stdout.write(md);
