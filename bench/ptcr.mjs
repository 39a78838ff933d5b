#!/usr/bin/env node
// The ptcr workload (after iSulad's ptcr tool): per engine, 10 containers
// serially, then 100 in parallel, each going through create, start, stop, rm,
// then run -d, rm -f. Every operation is one CLI call, timed from spawn to
// exit, as a user sees it. Engines: isula (this checkout, runc), Debian's
// podman and Debian's docker.io, each on its own temporary roots with
// `--network none` (isula has no networking yet) and busybox from the offline
// test image. Prints a markdown table of the median (and p90) per operation.
//
//   bench/ptcr.sh [--engines isula,podman,docker] [--serial 10] [--parallel 100]
import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';

const { values: opts } = parseArgs({
  options: {
    engines: { type: 'string', default: 'isula,podman,docker' },
    serial: { type: 'string', default: '10' },
    parallel: { type: 'string', default: '100' },
    images: { type: 'string', default: process.env.ISULA_TEST_IMAGES ?? '/var/cache/isula/test-images' },
    results: { type: 'string', default: path.join(path.dirname(new URL(import.meta.url).pathname), 'results') },
  },
});
const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const SERIAL = Number(opts.serial);
const PARALLEL = Number(opts.parallel);
const ARCHIVE = path.join(opts.images, 'busybox.docker.tar');
const OPS = ['create', 'start', 'stop', 'rm', 'run -d', 'rm -f'];
const TMP = fs.mkdtempSync(path.join(os.tmpdir(), 'ptcr-'));

function exec(cmd, args, { timeoutMs = 120_000, env } = {}) {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env: env ?? process.env });
    let out = '';
    let err = '';
    p.stdout.on('data', (c) => { out += c; });
    p.stderr.on('data', (c) => { err += c; });
    const timer = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.on('close', (code) => {
      clearTimeout(timer);
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      if (code !== 0) reject(new Error(`${cmd} ${args.join(' ')} → ${code}: ${err}`));
      else resolve({ ms, out });
    });
  });
}

async function waitSocket(sock, ms = 30_000) {
  const deadline = Date.now() + ms;
  while (!fs.existsSync(sock)) {
    if (Date.now() > deadline) throw new Error(`no socket ${sock}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Each engine: how to call its CLI, how to start and stop its daemon. */
const ENGINES = {
  isula: {
    async setup() {
      const node = path.join(process.env.ISULA_PREFIX ?? '/usr/local/lib/isula', 'node/bin/node');
      const root = path.join(TMP, 'isula');
      fs.mkdirSync(root, { recursive: true });
      const sock = path.join(root, 'isulad.sock');
      const cfg = path.join(root, 'daemon.json');
      fs.writeFileSync(cfg, JSON.stringify({ plugins: ['@isula/image-oci', '@isula/driver-runc'], 'log-level': 'warn' }));
      const d = spawn(node, [path.join(ROOT, 'packages/core/dist/src/bin/isulad.js'), '--config-file', cfg, '--state', path.join(root, 'state'), '--graph', path.join(root, 'graph'), '-H', `unix://${sock}`], { stdio: 'ignore' });
      await waitSocket(sock);
      this.daemon = d;
      this.cli = (args) => [node, [path.join(ROOT, 'packages/cli/dist/isula.mjs'), '-H', `unix://${sock}`, ...args]];
      this.runArgs = [];
    },
    async teardown() { this.daemon?.kill('SIGTERM'); await new Promise((r) => this.daemon?.once('exit', r)); },
  },
  podman: {
    async setup() {
      const root = path.join(TMP, 'podman');
      // runc, as isula and docker use here (podman's Debian default is crun).
      const base = ['--root', path.join(root, 'root'), '--runroot', path.join(root, 'run'), '--storage-driver', 'overlay', '--cgroup-manager', 'cgroupfs', '--events-backend', 'file', '--tmpdir', path.join(root, 'tmp'), '--runtime', 'runc'];
      this.cli = (args) => ['podman', [...base, ...args]];
      // Its default NOFILE/NPROC limits are above this host's hard limits (PLATFORM.md §2): lower them.
      this.runArgs = ['--network', 'none', '--ulimit', 'nofile=1024:1024', '--ulimit', 'nproc=4096:4096'];
    },
    async teardown() { await exec('podman', ['--root', path.join(TMP, 'podman/root'), '--runroot', path.join(TMP, 'podman/run'), 'system', 'reset', '-f']).catch(() => {}); },
  },
  docker: {
    async setup() {
      const root = path.join(TMP, 'docker');
      fs.mkdirSync(root, { recursive: true });
      const sock = path.join(root, 'docker.sock');
      const d = spawn('dockerd', ['--data-root', path.join(root, 'data'), '--exec-root', path.join(root, 'exec'), '-H', `unix://${sock}`, '--pidfile', path.join(root, 'docker.pid'), '--bridge', 'none', '--iptables=false', '--ip-masq=false', '--containerd-namespace', 'ptcr', '--log-level', 'warn'], { stdio: 'ignore' });
      await waitSocket(sock);
      await new Promise((r) => setTimeout(r, 1000));
      this.daemon = d;
      const bin = fs.existsSync('/usr/bin/docker') ? '/usr/bin/docker' : 'docker';
      this.cli = (args) => [bin, ['-H', `unix://${sock}`, ...args]];
      this.runArgs = ['--network', 'none', '--ulimit', 'nofile=1024:1024', '--ulimit', 'nproc=4096:4096'];
    },
    async teardown() { this.daemon?.kill('SIGTERM'); await new Promise((r) => this.daemon?.once('exit', r)); },
  },
};

function call(engine, args) {
  const [cmd, full] = engine.cli(args);
  return exec(cmd, full);
}

async function phase(engine, n, parallel, prefix) {
  const names = Array.from({ length: n }, (_, i) => `${prefix}${i}`);
  const steps = [
    ['create', (nm) => ['create', ...engine.runArgs, '--name', nm, 'busybox', 'sleep', '1000']],
    ['start', (nm) => ['start', nm]],
    ['stop', (nm) => ['stop', '-t', '0', nm]],
    ['rm', (nm) => ['rm', nm]],
    ['run -d', (nm) => ['run', '-d', ...engine.runArgs, '--name', nm, 'busybox', 'sleep', '1000']],
    ['rm -f', (nm) => ['rm', '-f', nm]],
  ];
  const times = {};
  for (const [op, argsFor] of steps) {
    const t0 = process.hrtime.bigint();
    if (parallel) {
      times[op] = (await Promise.all(names.map((nm) => call(engine, argsFor(nm))))).map((r) => r.ms);
    } else {
      times[op] = [];
      for (const nm of names) times[op].push((await call(engine, argsFor(nm))).ms);
    }
    times[`${op} (wall)`] = [Number(process.hrtime.bigint() - t0) / 1e6];
  }
  return times;
}

const median = (xs) => { const s = [...xs].sort((a, b) => a - b); const m = Math.floor(s.length / 2); return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };
const p90 = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.ceil(s.length * 0.9) - 1)]; };

const results = {};
for (const name of opts.engines.split(',')) {
  const engine = ENGINES[name];
  if (engine === undefined) throw new Error(`unknown engine ${name}`);
  const bin = name === 'isula' ? 'true' : name === 'docker' ? 'dockerd' : 'podman';
  try { execFileSync('sh', ['-c', `command -v ${bin}`], { stdio: 'ignore' }); } catch { console.error(`ptcr: ${bin} not installed; skipping ${name}`); continue; }
  console.error(`==> ${name}`);
  await engine.setup();
  try {
    await call(engine, ['load', '-i', ARCHIVE]);
    // Warm-up: one container through every step, not counted.
    await phase(engine, 1, false, 'warm');
    results[name] = { serial: await phase(engine, SERIAL, false, 's'), parallel: await phase(engine, PARALLEL, true, 'p') };
  } finally {
    await engine.teardown();
  }
}

const engines = Object.keys(results);
let md = `ptcr on ${os.hostname()} (${os.cpus().length} cores), ${new Date().toISOString()}: median ms per operation (p90), one CLI call each\n\n`;
for (const mode of ['serial', 'parallel']) {
  const n = mode === 'serial' ? SERIAL : PARALLEL;
  md += `### ${n} containers, ${mode}\n\n| operation | ${engines.join(' | ')} |\n|---|${engines.map(() => '---:').join('|')}|\n`;
  for (const op of OPS) {
    md += `| ${op} | ${engines.map((e) => `${median(results[e][mode][op]).toFixed(0)} (${p90(results[e][mode][op]).toFixed(0)})`).join(' | ')} |\n`;
  }
  md += `| total wall s | ${engines.map((e) => (OPS.reduce((s, op) => s + results[e][mode][`${op} (wall)`][0], 0) / 1000).toFixed(2)).join(' | ')} |\n\n`;
}
fs.mkdirSync(opts.results, { recursive: true });
fs.writeFileSync(path.join(opts.results, 'ptcr.md'), md);
fs.writeFileSync(path.join(opts.results, 'ptcr.json'), JSON.stringify(results));
fs.rmSync(TMP, { recursive: true, force: true });
process.stdout.write(md);
