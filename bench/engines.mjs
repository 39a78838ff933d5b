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

/**
 * Each engine, on roots under `TMP`: how to call its CLI, how to start and stop its daemon.
 * `isulaConfig` adds daemon.json keys for isulad (e.g. insecure registries). The peers run
 * with `--network none` unless `defaultNetworking` (podman's default CNI network, dockerd's
 * default bridge on `dockerBip`, removed at teardown).
 */
export function makeEngines(TMP, { isulaConfig = {}, defaultNetworking = false, dockerBip = '10.251.0.1/24' } = {}) {
  const noNetwork = defaultNetworking ? [] : ['--network', 'none'];
  return {
  isula: {
    async setup() {
      const node = path.join(process.env.ISULA_PREFIX ?? '/usr/local/lib/isula', 'node/bin/node');
      const root = path.join(TMP, 'isula');
      fs.mkdirSync(root, { recursive: true });
      const sock = path.join(root, 'isulad.sock');
      const cfg = path.join(root, 'daemon.json');
      fs.writeFileSync(cfg, JSON.stringify({ plugins: ['@isula/image-oci', '@isula/driver-runc'], 'log-level': 'warn', ...isulaConfig }));
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
      this.runArgs = [...noNetwork, '--ulimit', 'nofile=1024:1024', '--ulimit', 'nproc=4096:4096'];
    },
    async teardown() { await exec('podman', ['--root', path.join(TMP, 'podman/root'), '--runroot', path.join(TMP, 'podman/run'), 'system', 'reset', '-f']).catch(() => {}); },
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
  },
};
}

export function call(engine, args) {
  const [cmd, full] = engine.cli(args);
  return exec(cmd, full);
}


export const median = (xs) => { const s = [...xs].sort((a, b) => a - b); const m = Math.floor(s.length / 2); return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };
export const p90 = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.ceil(s.length * 0.9) - 1)]; };

/**
 * For each named engine that is installed: starts it, loads the busybox
 * archive, runs `work(engine)` and stops it. Returns `{ name: result }`.
 */
export async function forEachEngine(engines, names, archive, work) {
  const results = {};
  for (const name of names) {
    const engine = engines[name];
    if (engine === undefined) throw new Error(`unknown engine ${name}`);
    const bin = name === 'isula' ? 'true' : name === 'docker' ? 'dockerd' : 'podman';
    try { execFileSync('sh', ['-c', `command -v ${bin}`], { stdio: 'ignore' }); } catch { console.error(`bench: ${bin} not installed; skipping ${name}`); continue; }
    console.error(`==> ${name}`);
    await engine.setup();
    try {
      await call(engine, ['load', '-i', archive]);
      results[name] = await work(engine);
    } finally {
      await engine.teardown();
    }
  }
  return results;
}
