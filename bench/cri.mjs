#!/usr/bin/env node
// Pods through the Kubernetes CRI, side by side: isulad with @isula/cri and Debian's
// containerd 1.6 with its CRI plugin, each on its own temporary roots, socket and CNI bridge.
// For N = 1, 10, 50 pods (--pods), all at once: RunPodSandbox (the pause image) →
// CreateContainer (busybox `sleep 3600`) → StartContainer per pod, timed from the first
// request to the last pod running (wall) and per pod (median, p90); then memory with the N
// pods running: the daemon's PSS and RSS (isulad; containerd) and the per-pod monitors (isula:
// a conmon per container, two per pod; containerd: one containerd-shim-runc-v2 per pod), and
// their sum; then StopPodSandbox → RemovePodSandbox of all at once (wall).
//
// The client is grpc-js with @isula/cri's own runtime.v1 protos (the same wire as upstream).
// Images are local for both: isula builds its pause image from catatonit (@isula/cri) and
// loads busybox; containerd gets the same busybox archive and a catatonit pause image made here
// with umoci + skopeo, imported with `ctr -n k8s.io images import`. Both run runc, cgroupfs,
// the same CNI plugins (isula's default network: bridge + host-local, portmap, firewall), and pods under the cgroup parent
// /isula-bench-cri. containerd runs with `restrict_oom_score_adj` (PLATFORM.md §10).
//
//   bench/cri.sh [--engines isula,containerd] [--pods 1,10,50]
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { COMMON_OPTIONS, exec, median, memKiB, p90, processes } from './engines.mjs';

const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const requireCri = createRequire(path.join(ROOT, 'packages/cri/package.json'));
const grpc = requireCri('@grpc/grpc-js');
const protoLoader = requireCri('@grpc/proto-loader');

const { values: opts } = parseArgs({
  options: {
    engines: { type: 'string', default: 'isula,containerd' },
    pods: { type: 'string', default: '1,10,50' },
    ...COMMON_OPTIONS,
  },
});
const ENGINES = opts.engines.split(',').filter(Boolean);
const SIZES = opts.pods.split(',').map(Number);
if (SIZES.some((n) => !(Number.isInteger(n) && n > 0 && n <= 200))) throw new Error('cri: --pods takes counts from 1 to 200');
const CGROUP_PARENT = 'isula-bench-cri';
const PAUSE = 'isula-test/pause:catatonit';
const CNI_BIN = '/usr/lib/cni';
const CALL_MS = 180_000;
const TMP = fs.mkdtempSync(path.join(os.tmpdir(), 'isula-bench-cri-'));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const mib = (kib) => Math.round(kib / 1024 * 10) / 10;

let stopping = false;
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => { console.error(`cri: ${sig}, cleaning up`); stopping = true; });

/** A runtime.v1 client on `socket` whose methods return promises. */
function criClient(socket) {
  const def = protoLoader.loadSync(path.join(ROOT, 'packages/cri/proto/runtime/v1/api.proto'), { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true });
  const ns = grpc.loadPackageDefinition(def).runtime.v1;
  const make = (service) => {
    const client = new ns[service](`unix:${socket}`, grpc.credentials.createInsecure());
    const call = (method, req) => new Promise((resolve, reject) => {
      client[method](req, new grpc.Metadata(), { deadline: Date.now() + CALL_MS }, (err, res) => (err ? reject(new Error(`${method}: ${err.message}`)) : resolve(res)));
    });
    return { client, call };
  };
  const rt = make('RuntimeService');
  const im = make('ImageService');
  return { rt: rt.call, im: im.call, close: () => { rt.client.close(); im.client.close(); } };
}

async function waitFor(what, ok, ms = 60_000) {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await ok().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`cri: ${what} not ready after ${ms} ms`);
    await sleep(200);
  }
}

/**
 * containerd's network: the plugins of isula's default network (@isula/network-cni writes it:
 * bridge with masquerading and hairpin, portmap with SNAT, firewall for Docker-like isolation),
 * so that both engines do the same CNI work per pod; only the bridge and subnet differ.
 */
function bridgeConf(name, bridge, subnet) {
  return JSON.stringify({
    cniVersion: '1.0.0',
    name,
    plugins: [
      { type: 'bridge', bridge, isGateway: true, ipMasq: true, hairpinMode: true, ipam: { type: 'host-local', ranges: [[{ subnet }]], routes: [{ dst: '0.0.0.0/0' }], dataDir: path.join(TMP, `${name}-ipam`) } },
      { type: 'portmap', capabilities: { portMappings: true }, snat: true },
      { type: 'firewall', backend: 'iptables', ingressPolicy: 'same-bridge' },
    ],
  });
}

const engines = {
  isula: {
    bridge: 'iscrb0',
    async setup() {
      const root = path.join(TMP, 'isula');
      fs.mkdirSync(path.join(root, 'cni'), { recursive: true });
      this.socket = path.join(root, 'cri.sock');
      const node = path.join(process.env.ISULA_PREFIX ?? '/usr/local/lib/isula', 'node/bin/node');
      const cfg = path.join(root, 'daemon.json');
      fs.writeFileSync(cfg, JSON.stringify({
        plugins: ['@isula/image-oci', '@isula/driver-runc', { package: '@isula/network-cni', options: { bridge: this.bridge, subnet: '10.248.0.0/22' } }, { package: '@isula/cri', options: { socket: this.socket } }],
        'cni-conf-dir': path.join(root, 'cni'),
        'cni-bin-dir': [CNI_BIN],
        'pod-sandbox-image': PAUSE,
        'log-level': 'warn',
      }));
      const sock = path.join(root, 'isulad.sock');
      // The flags scripts/setup.sh's isulad launcher uses, as in engines.mjs.
      this.daemon = spawn(node, ['--max-semi-space-size=1', path.join(ROOT, 'packages/core/dist/src/bin/isulad.js'), '--config-file', cfg, '--state', path.join(root, 'state'), '--graph', path.join(root, 'graph'), '-H', `unix://${sock}`], { stdio: 'ignore' });
      this.pids = () => [this.daemon.pid];
      await waitFor('isulad', async () => fs.existsSync(sock) && fs.existsSync(this.socket));
      await exec(node, [path.join(ROOT, 'packages/cli/dist/isula.cjs'), '-H', `unix://${sock}`, 'load', '-i', path.join(opts.images, 'busybox.docker.tar')]);
      this.root = root;
      // Each container's conmon names the daemon's state root in its arguments.
      this.monitors = () => processes().filter((p) => path.basename(p.argv[0] ?? '') === 'conmon' && p.argv.some((a) => a.startsWith(path.join(root, 'state')))).map((p) => p.pid);
    },
    async teardown() {
      if (this.daemon !== undefined && this.daemon.exitCode === null) {
        this.daemon.kill('SIGTERM');
        await Promise.race([new Promise((r) => this.daemon.once('exit', r)), sleep(60_000).then(() => this.daemon.kill('SIGKILL'))]);
      }
      await exec('ip', ['link', 'del', this.bridge]).catch(() => {});
    },
  },
  containerd: {
    bridge: 'iscrb1',
    async setup() {
      const root = path.join(TMP, 'containerd');
      const conf = path.join(root, 'cni');
      fs.mkdirSync(conf, { recursive: true });
      fs.writeFileSync(path.join(conf, '10-bench.conflist'), bridgeConf('bench-containerd', this.bridge, '10.248.8.0/22'));
      this.socket = path.join(root, 'containerd.sock');
      const toml = [
        'version = 2',
        `root = "${root}/root"`,
        `state = "${root}/state"`,
        `[grpc]\n  address = "${this.socket}"`,
        `[plugins."io.containerd.internal.v1.opt"]\n  path = "${root}/opt"`,
        '[plugins."io.containerd.grpc.v1.cri"]',
        `  sandbox_image = "docker.io/${PAUSE}"`,
        '  restrict_oom_score_adj = true',
        '  [plugins."io.containerd.grpc.v1.cri".containerd]',
        '    snapshotter = "overlayfs"',
        '    default_runtime_name = "runc"',
        '    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]',
        '      runtime_type = "io.containerd.runc.v2"',
        '      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]',
        '        SystemdCgroup = false',
        '  [plugins."io.containerd.grpc.v1.cri".cni]',
        `    bin_dir = "${CNI_BIN}"`,
        `    conf_dir = "${conf}"`,
      ].join('\n');
      fs.writeFileSync(path.join(root, 'config.toml'), `${toml}\n`);
      this.daemon = spawn('containerd', ['--config', path.join(root, 'config.toml'), '--log-level', 'warn'], { stdio: 'ignore' });
      this.pids = () => [this.daemon.pid];
      await waitFor('containerd', async () => fs.existsSync(this.socket));
      const ctr = (...args) => exec('ctr', ['-a', this.socket, '-n', 'k8s.io', ...args]);
      await ctr('images', 'import', path.join(opts.images, 'busybox.docker.tar'));
      await ctr('images', 'import', await pauseArchive());
      this.monitors = () => processes().filter((p) => path.basename(p.argv[0] ?? '').startsWith('containerd-shim') && p.argv.includes(this.socket)).map((p) => p.pid);
    },
    async teardown() {
      if (this.daemon !== undefined && this.daemon.exitCode === null) {
        this.daemon.kill('SIGTERM');
        await Promise.race([new Promise((r) => this.daemon.once('exit', r)), sleep(60_000).then(() => this.daemon.kill('SIGKILL'))]);
      }
      // containerd leaves its root's snapshot mounts and the shims' sockets behind on a stop.
      for (const line of fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').reverse()) {
        const mnt = line.split(' ')[4];
        if (mnt?.startsWith(path.join(TMP, 'containerd'))) await exec('umount', ['-l', mnt]).catch(() => {});
      }
      await exec('ip', ['link', 'del', this.bridge]).catch(() => {});
    },
  },
};

/** A docker-archive of a pause image: catatonit as /pause, entrypoint `/pause -P` (as @isula/cri's). */
async function pauseArchive() {
  const dir = path.join(TMP, 'pause');
  const out = path.join(TMP, 'pause.tar');
  if (fs.existsSync(out)) return out;
  fs.mkdirSync(dir);
  const um = (...args) => exec('umoci', ['--log', 'error', ...args]);
  await um('init', '--layout', path.join(dir, 'oci'));
  await um('new', '--image', `${path.join(dir, 'oci')}:pause`);
  await um('unpack', '--image', `${path.join(dir, 'oci')}:pause`, path.join(dir, 'b'));
  fs.copyFileSync('/usr/bin/catatonit', path.join(dir, 'b/rootfs/pause'));
  fs.chmodSync(path.join(dir, 'b/rootfs/pause'), 0o755);
  await um('repack', '--image', `${path.join(dir, 'oci')}:pause`, path.join(dir, 'b'));
  await um('config', '--image', `${path.join(dir, 'oci')}:pause`, '--config.entrypoint', '/pause', '--config.cmd', '-P');
  await exec('skopeo', ['copy', '-q', `oci:${path.join(dir, 'oci')}:pause`, `docker-archive:${out}:${PAUSE}`]);
  return out;
}

function podConfig(name) {
  return {
    metadata: { name, uid: `uid-${name}`, namespace: 'bench', attempt: 0 },
    hostname: name,
    log_directory: path.join(TMP, 'logs', name),
    linux: { cgroup_parent: `/${CGROUP_PARENT}`, security_context: { namespace_options: { network: 'POD', pid: 'CONTAINER', ipc: 'POD' } } },
  };
}

/** One pod: sandbox, container, start; returns its ms. */
async function startPod(cri, name) {
  const t0 = performance.now();
  const config = podConfig(name);
  const { pod_sandbox_id: pod } = await cri.rt('RunPodSandbox', { config });
  const t1 = performance.now();
  const { container_id: id } = await cri.rt('CreateContainer', {
    pod_sandbox_id: pod,
    config: { metadata: { name: 'app', attempt: 0 }, image: { image: 'docker.io/library/busybox:latest' }, command: ['sleep', '3600'], log_path: 'app.log', linux: {} },
    sandbox_config: config,
  });
  const t2 = performance.now();
  await cri.rt('StartContainer', { container_id: id });
  const t3 = performance.now();
  return { pod, ms: t3 - t0, steps: [t1 - t0, t2 - t1, t3 - t2] };
}

async function removeAll(cri) {
  const { items } = await cri.rt('ListPodSandbox', {});
  await Promise.all(items.map(async (p) => {
    await cri.rt('StopPodSandbox', { pod_sandbox_id: p.id });
    await cri.rt('RemovePodSandbox', { pod_sandbox_id: p.id });
  }));
  return items.length;
}

function memory(engine) {
  const sum = (pids) => pids.map(memKiB).filter(Boolean).reduce((a, m) => ({ pss: a.pss + m.pssKiB, rss: a.rss + m.rssKiB }), { pss: 0, rss: 0 });
  const daemon = sum(engine.pids());
  const mons = engine.monitors();
  const monitors = sum(mons);
  return { daemonPssMiB: mib(daemon.pss), daemonRssMiB: mib(daemon.rss), monitors: mons.length, monitorsPssMiB: mib(monitors.pss), totalPssMiB: mib(daemon.pss + monitors.pss) };
}

const results = {};
try {
  for (const name of ENGINES) {
    const engine = engines[name];
    if (engine === undefined) throw new Error(`cri: unknown engine ${name} (isula, containerd)`);
    try { execFileSync('sh', ['-c', `command -v ${name === 'isula' ? 'conmon' : 'containerd'}`], { stdio: 'ignore' }); } catch {
      console.error(`cri: ${name} is not installed here; skipped`);
      continue;
    }
    console.error(`==> ${name}`);
    results[name] = {};
    try {
      await engine.setup();
      const cri = criClient(engine.socket);
      try {
        await waitFor(`${name} CRI`, async () => (await cri.rt('Status', {})).status.conditions.every((c) => c.status));
        // One pod first, not counted: the pause image is built (isula) and caches are warm.
        await startPod(cri, 'warm');
        await removeAll(cri);
        for (const n of SIZES) {
          if (stopping) break;
          await sleep(2000);
          const idle = memory(engine);
          const t0 = performance.now();
          const pods = await Promise.all(Array.from({ length: n }, (_, i) => startPod(cri, `p${n}-${i}`)));
          const wall = performance.now() - t0;
          await sleep(2000);
          const mem = memory(engine);
          const t1 = performance.now();
          const removed = await removeAll(cri);
          const down = performance.now() - t1;
          if (removed !== n) throw new Error(`cri: ${name}: ${removed} pods listed at the end, not ${n}`);
          const ms = pods.map((p) => p.ms);
          const step = (i) => Math.round(median(pods.map((p) => p.steps[i])));
          results[name][n] = { startWallMs: Math.round(wall), podMedianMs: Math.round(median(ms)), podP90Ms: Math.round(p90(ms)), runPodMedianMs: step(0), createMedianMs: step(1), startMedianMs: step(2), removeWallMs: Math.round(down), idleDaemonPssMiB: idle.daemonPssMiB, ...mem };
          console.error(`${name} ×${n}: ${JSON.stringify(results[name][n])}`);
        }
      } finally {
        await removeAll(cri).catch((e) => console.error(`cri: ${name}: clean-up: ${e.message}`));
        cri.close();
      }
    } finally {
      await engine.teardown();
    }
  }
} finally {
  for (const ctrl of fs.readdirSync('/sys/fs/cgroup')) {
    // Children first (pods' cgroups, then the parent): rmdir of empty cgroup dirs only.
    const top = path.join('/sys/fs/cgroup', ctrl, CGROUP_PARENT);
    const dirs = [];
    const walk = (d, depth) => {
      if (depth > 8) return;
      for (const e of fs.readdirSync(d, { withFileTypes: true })) if (e.isDirectory()) walk(path.join(d, e.name), depth + 1);
      dirs.push(d); // after its children
    };
    try { walk(top, 0); } catch { continue; }
    for (const d of dirs) try { fs.rmdirSync(d); } catch { /* busy or gone */ }
  }
  fs.rmSync(TMP, { recursive: true, force: true });
}

fs.mkdirSync(opts.results, { recursive: true });
fs.writeFileSync(path.join(opts.results, 'cri.json'), `${JSON.stringify({ date: new Date().toISOString(), host: os.hostname(), cores: os.cpus().length, results }, null, 2)}\n`);
const rows = ['| pods | engine | start wall (ms) | per pod median (p90) ms | RunPodSandbox / CreateContainer / StartContainer median ms | stop+remove wall (ms) | daemon PSS idle → N pods (MiB) | monitors (count, PSS MiB) | daemon + monitors PSS (MiB) |', '|---:|---|---:|---:|---:|---:|---:|---:|---:|'];
for (const n of SIZES) {
  for (const name of Object.keys(results)) {
    const r = results[name][n];
    if (r !== undefined) rows.push(`| ${n} | ${name} | ${r.startWallMs} | ${r.podMedianMs} (${r.podP90Ms}) | ${r.runPodMedianMs} / ${r.createMedianMs} / ${r.startMedianMs} | ${r.removeWallMs} | ${r.idleDaemonPssMiB} → ${r.daemonPssMiB} | ${r.monitors}, ${r.monitorsPssMiB} | ${r.totalPssMiB} |`);
  }
}
fs.writeFileSync(path.join(opts.results, 'cri.md'), `${rows.join('\n')}\n`);
console.log(rows.join('\n'));
