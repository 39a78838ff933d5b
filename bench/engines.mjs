// Engines for the benchmarks: isula (this checkout), Debian's podman and
// Debian's docker.io, each on its own temporary roots, with how to call its
// CLI and start/stop its daemon. Shared by ptcr.mjs and streams.mjs.
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');

export function exec(cmd, args, { timeoutMs = 120_000, env } = {}) {
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

/** The value after `flag` in argv (`-c ID`, `-id ID`, `-n ID`), or undefined. */
function flagValue(argv, flag) {
  const i = argv.indexOf(flag);
  return i < 0 ? undefined : argv[i + 1];
}

/** conmon, found by its `-c ID` (isula on runc, podman). */
const CONMON = { label: 'conmon', match: (p) => (path.basename(p.argv[0] ?? '') === 'conmon' ? flagValue(p.argv, '-c') : undefined) };

/**
 * The runtimes isula can be benchmarked with (`isula-<runtime>` engines, bench/run.sh
 * --isula-runtimes): the daemon.json plugins that provide each, the binary that must be
 * installed, and how its per-container monitor process is recognised. `runc` is the plain
 * `isula` engine. Any `io.containerd.<x>.v<N>` name is a containerd shim v2 runtime of
 * @isula/driver-kata (the shim `containerd-shim-<x>-v<N>`, daemonized: parent pid 1, `-id ID`).
 * `lcr`/`lxc` are @isula/driver-lxc's: the monitor is lxc's, `lxc-start -F … -n ID`, whose
 * title lxc may rewrite to `[lxc monitor] LXCPATH ID`. Another runtime: add a row here.
 */
export function isulaRuntime(rt) {
  if (rt === 'runc') return { plugins: ['@isula/driver-runc'], monitor: CONMON };
  if (rt === 'lcr' || rt === 'lxc') {
    return {
      plugins: ['@isula/driver-lxc'],
      requires: 'lxc-start',
      monitor: {
        label: 'lxc monitor (lxc-start -F)',
        match: (p) => {
          const title = p.argv.join(' ');
          if (title.startsWith('[lxc monitor]')) return title.trim().split(/\s+/).at(-1);
          return path.basename(p.argv[0] ?? '') === 'lxc-start' ? flagValue(p.argv, '-n') : undefined;
        },
      },
    };
  }
  const m = /^io\.containerd\.([a-z0-9_-]+)\.(v\d+)$/.exec(rt);
  if (m) {
    const shim = `containerd-shim-${m[1].replace(/\./g, '-')}-${m[2]}`;
    return {
      plugins: ['@isula/driver-kata'],
      requires: shim,
      monitor: { label: shim, match: (p) => (p.ppid === 1 && path.basename(p.argv[0] ?? '') === shim ? flagValue(p.argv, '-id') : undefined) },
    };
  }
  throw new Error(`unknown isula runtime '${rt}' (runc, lcr, lxc, io.containerd.<x>.v<N>; see isulaRuntime() in bench/engines.mjs)`);
}

/** The runtimes of the `isula-<runtime>` names in an engine list. */
export const isulaRuntimesIn = (names) => names.filter((n) => n.startsWith('isula-')).map((n) => n.slice('isula-'.length));

/** "isula (io.containerd.runc.v2)" for `isula-io.containerd.runc.v2`; "isula (runc)" for `isula` when `withRuntime`. */
export function engineLabel(name, withRuntime = false) {
  if (name.startsWith('isula-')) return `isula (${name.slice('isula-'.length)})`;
  return name === 'isula' && withRuntime ? 'isula (runc)' : name;
}

/**
 * isulad from this checkout on roots under TMP/<isula or isula-RUNTIME>, with the plugins
 * of `rt` and `default-runtime: rt` (isula on runc keeps exactly the daemon.json it always had);
 * `runArgs` pass `--runtime rt` too (not for runc, as before), as a user choosing it would.
 */
function isulaEngine(TMP, rt, isulaConfig) {
  const runtime = isulaRuntime(rt);
  const dir = rt === 'runc' ? 'isula' : `isula-${rt}`;
  return {
    runtime: rt,
    requires: runtime.requires,
    monitor: runtime.monitor,
    async setup() {
      const node = path.join(process.env.ISULA_PREFIX ?? '/usr/local/lib/isula', 'node/bin/node');
      const root = path.join(TMP, dir);
      fs.mkdirSync(root, { recursive: true });
      const sock = path.join(root, 'isulad.sock');
      const cfg = path.join(root, 'daemon.json');
      fs.writeFileSync(cfg, JSON.stringify({ plugins: ['@isula/image-oci', ...runtime.plugins], ...(rt === 'runc' ? {} : { 'default-runtime': rt }), 'log-level': 'warn', ...isulaConfig }));
      // The flags scripts/setup.sh's isulad launcher runs it with: the bench measures what users run.
      const d = spawn(node, ['--max-semi-space-size=1', path.join(ROOT, 'packages/core/dist/src/bin/isulad.js'), '--config-file', cfg, '--state', path.join(root, 'state'), '--graph', path.join(root, 'graph'), '-H', `unix://${sock}`], { stdio: 'ignore' });
      // Kept before the wait: a daemon that never listens is still stopped by teardown (and here).
      this.daemon = d;
      await waitSocket(sock).catch((err) => { d.kill('SIGKILL'); throw err; });
      this.cli = (args) => [node, [path.join(ROOT, 'packages/cli/dist/isula.cjs'), '-H', `unix://${sock}`, ...args]];
      this.runArgs = rt === 'runc' ? [] : ['--runtime', rt];
    },
    async teardown() {
      const d = this.daemon;
      if (d === undefined || d.exitCode !== null || d.signalCode !== null) return;
      d.kill('SIGTERM');
      await new Promise((r) => d.once('exit', r));
    },
  };
}

/**
 * Each engine, on roots under `TMP`: how to call its CLI, how to start and stop its daemon.
 * `isulaConfig` adds daemon.json keys for isulad (e.g. insecure registries). The peers run
 * with `--network none` unless `defaultNetworking` (podman's default CNI network, dockerd's
 * default bridge on `dockerBip`, removed at teardown).
 * `isulaRuntimes` adds an isulad per extra runtime, as engine `isula-<runtime>` (`isula` itself is
 * isula on runc); `isulaRuntimesIn(names)` picks them out of an --engines list.
 * Each engine has `monitor`: `{ label, match(process) → container id | undefined }`, how
 * footprint.mjs finds each container's monitor process.
 */
export function makeEngines(TMP, { isulaConfig = {}, defaultNetworking = false, dockerBip = '10.251.0.1/24', isulaRuntimes = [] } = {}) {
  const noNetwork = defaultNetworking ? [] : ['--network', 'none'];
  return {
  isula: isulaEngine(TMP, 'runc', isulaConfig),
  podman: {
    async setup() {
      const root = path.join(TMP, 'podman');
      // runc, as isula and docker use here (podman's Debian default is crun).
      const base = ['--root', path.join(root, 'root'), '--runroot', path.join(root, 'run'), '--storage-driver', 'overlay', '--cgroup-manager', 'cgroupfs', '--events-backend', 'file', '--tmpdir', path.join(root, 'tmp'), '--runtime', 'runc'];
      this.cli = (args) => ['podman', [...base, ...args]];
      // Its default NOFILE/NPROC limits are above this host's hard limits (PLATFORM.md §2): lower them.
      this.runArgs = [...noNetwork, '--ulimit', 'nofile=1024:1024', '--ulimit', 'nproc=4096:4096'];
    },
    async teardown() { await exec('podman', ['--root', path.join(TMP, 'podman/root'), '--runroot', path.join(TMP, 'podman/run'), 'system', 'reset', '-f']).catch(() => {}); },
    monitor: CONMON,
  },
  docker: {
    async setup() {
      const root = path.join(TMP, 'docker');
      fs.mkdirSync(root, { recursive: true });
      const sock = path.join(root, 'docker.sock');
      const d = spawn('dockerd', ['--data-root', path.join(root, 'data'), '--exec-root', path.join(root, 'exec'), '-H', `unix://${sock}`, '--pidfile', path.join(root, 'docker.pid'), ...(defaultNetworking ? ['--bip', dockerBip] : ['--bridge', 'none', '--iptables=false', '--ip-masq=false']), '--containerd-namespace', 'ptcr', '--log-level', 'warn'], { stdio: 'ignore' });
      await waitSocket(sock);
      await new Promise((r) => setTimeout(r, 1000));
      this.daemon = d;
      const bin = fs.existsSync('/usr/bin/docker') ? '/usr/bin/docker' : 'docker';
      this.cli = (args) => [bin, ['-H', `unix://${sock}`, ...args]];
      this.runArgs = [...noNetwork, '--ulimit', 'nofile=1024:1024', '--ulimit', 'nproc=4096:4096'];
    },
    async teardown() {
      this.daemon?.kill('SIGTERM');
      await new Promise((r) => this.daemon?.once('exit', r));
      if (defaultNetworking) await exec('ip', ['link', 'del', 'docker0']).catch(() => {});
    },
    monitor: { label: 'containerd-shim-runc-v2', match: (p) => (path.basename(p.argv[0] ?? '').startsWith('containerd-shim') ? flagValue(p.argv, '-id') : undefined) },
  },
  ...Object.fromEntries(isulaRuntimes.filter((rt) => rt !== 'runc').map((rt) => [`isula-${rt}`, isulaEngine(TMP, rt, isulaConfig)])),
};
}

/**
 * `rm -f` as each engine does it at once: podman's waits its 10 s stop timeout
 * first (sleep as PID 1 ignores SIGTERM), so it gets `-t 0`, as docker's and
 * isula's kill straight away.
 */
export function rmForce(engine, ...ids) {
  return ['rm', '-f', ...(engine.cli([])[0] === 'podman' ? ['-t', '0'] : []), ...ids];
}

/** The options every bench takes: where the offline test images are and where results go. */
export const COMMON_OPTIONS = Object.freeze({
  images: { type: 'string', default: process.env.ISULA_TEST_IMAGES ?? '/var/cache/isula/test-images' },
  results: { type: 'string', default: path.join(ROOT, 'bench', 'results') },
});

export function call(engine, args) {
  const [cmd, full] = engine.cli(args);
  return exec(cmd, full);
}


export const median = (xs) => { const s = [...xs].sort((a, b) => a - b); const m = Math.floor(s.length / 2); return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };
export const p90 = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.ceil(s.length * 0.9) - 1)]; };

/**
 * For each named engine that is installed: starts it, loads the busybox
 * archive, runs `work(engine)` and stops it. Returns `{ name: result }`.
 * With `failed` (an object), an opt-in `isula-<runtime>` engine that fails (a runtime that
 * does not work yet) is reported, recorded there as `{ name: message }` and skipped, and the
 * run goes on; any other engine's failure ends the bench, as before.
 */
export async function forEachEngine(engines, names, archive, work, failed) {
  const results = {};
  for (const name of names) {
    const engine = engines[name];
    if (engine === undefined) throw new Error(`unknown engine ${name}`);
    const bin = engine.requires ?? (name === 'isula' ? 'true' : name === 'docker' ? 'dockerd' : 'podman');
    try { execFileSync('sh', ['-c', `command -v ${bin}`], { stdio: 'ignore' }); } catch {
      console.error(`bench: ${bin} not installed; skipping ${name}`);
      if (failed !== undefined && name.startsWith('isula-')) failed[name] = `${bin} not installed`;
      continue;
    }
    console.error(`==> ${engineLabel(name)}`);
    try {
      await engine.setup();
      try {
        await call(engine, ['load', '-i', archive]);
        results[name] = await work(engine);
      } finally {
        await engine.teardown();
      }
    } catch (e) {
      if (failed === undefined || !name.startsWith('isula-')) throw e;
      failed[name] = String(e.message ?? e).trim().split('\n').slice(0, 5).join(' ');
      console.error(`bench: ${engineLabel(name)} failed, skipped: ${failed[name]}`);
    }
  }
  return results;
}

/**
 * Rss, Pss and Uss (private pages: Private_Clean + Private_Dirty) of a live process in KiB,
 * from /proc/PID/smaps_rollup (null once it is gone). Pss splits each shared page among the
 * processes mapping it, so it depends on what else runs (e.g. other node processes).
 */
export function memKiB(pid) {
  let text;
  try { text = fs.readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'); } catch { return null; }
  const field = (name) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? NaN);
  return { rssKiB: field('Rss'), pssKiB: field('Pss'), ussKiB: field('Private_Clean') + field('Private_Dirty') };
}

/** Every process on the host now: pid, parent pid, comm and argv (those that vanish while read are left out). */
export function processes() {
  const list = [];
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
      // comm is in parentheses and may hold spaces or parentheses itself: the fields after it follow the last ')'.
      const close = stat.lastIndexOf(')');
      const comm = stat.slice(stat.indexOf('(') + 1, close);
      const ppid = Number(stat.slice(close + 2).split(' ')[1]);
      const argv = fs.readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0').filter((a, i, all) => a !== '' || i < all.length - 1);
      list.push({ pid: Number(d), ppid, comm, argv });
    } catch { /* gone meanwhile */ }
  }
  return list;
}

/**
 * Wraps each engine's teardown so that it gives up after `ms` (the daemon, if it has one
 * and is still there, is then sent SIGKILL): a hung daemon does not hang the bench.
 */
export function boundTeardowns(engines, ms = 60_000) {
  for (const [name, engine] of Object.entries(engines)) {
    const teardown = engine.teardown;
    engine.teardown = async function () {
      let timer;
      const timedOut = new Promise((r) => { timer = setTimeout(() => r('timeout'), ms); });
      const outcome = await Promise.race([teardown.call(this).then(() => 'done'), timedOut]);
      clearTimeout(timer);
      if (outcome === 'timeout') {
        console.error(`bench: ${name} teardown still running after ${ms} ms; SIGKILL to its daemon`);
        if (this.daemon && this.daemon.exitCode === null && this.daemon.signalCode === null) this.daemon.kill('SIGKILL');
      }
    };
  }
  return engines;
}
