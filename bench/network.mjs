#!/usr/bin/env node
// `run -d` and `rm -f` with each engine's default networking, serially: the
// cost of a network namespace, a veth on a bridge, an address and (with -p) a
// port mapping per container, as a user sees it (one CLI call each, timed from
// spawn to exit). isula: this checkout with @isula/network-cni on its own
// bridge, subnet and conf dir; Debian's podman: its default CNI network
// ("podman", /etc/cni/net.d); Debian's docker.io: dockerd on temporary roots
// with its default bridge (docker0, removed afterwards). Also isula with
// `--network none`, for the networking's own share.
//
//   bench/network.sh [--engines isula,podman,docker] [--runs 10]
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { COMMON_OPTIONS, call, exec, forEachEngine, makeEngines, median, p90 } from './engines.mjs';

const { values: opts } = parseArgs({
  options: {
    engines: { type: 'string', default: 'isula,podman,docker' },
    runs: { type: 'string', default: '10' },
    ...COMMON_OPTIONS,
  },
});
const RUNS = Number(opts.runs);
const ARCHIVE = path.join(opts.images, 'busybox.docker.tar');
const TMP = fs.mkdtempSync(path.join(os.tmpdir(), 'netbench-'));
const BRIDGE = 'isubench0';
const ENGINES = makeEngines(TMP, {
  defaultNetworking: true,
  isulaConfig: {
    plugins: ['@isula/image-oci', '@isula/driver-runc', { package: '@isula/network-cni', options: { bridge: BRIDGE, subnet: '10.250.0.0/24' } }],
    'cni-conf-dir': path.join(TMP, 'cni'),
  },
});
async function serial(engine, extra, prefix) {
  const times = { 'run -d': [], 'run -d -p': [], 'rm -f': [] };
  for (let i = 0; i < RUNS; i++) {
    times['run -d'].push((await call(engine, ['run', '-d', ...engine.runArgs, ...extra, '--name', `${prefix}${i}`, 'busybox', 'sleep', '1000'])).ms);
  }
  for (let i = 0; i < RUNS; i++) times['rm -f'].push((await call(engine, ['rm', '-f', `${prefix}${i}`])).ms);
  if (extra.length === 0) {
    for (let i = 0; i < RUNS; i++) {
      times['run -d -p'].push((await call(engine, ['run', '-d', ...engine.runArgs, '-p', `${28000 + i}:80`, '--name', `${prefix}p${i}`, 'busybox', 'sleep', '1000'])).ms);
    }
    for (let i = 0; i < RUNS; i++) await call(engine, ['rm', '-f', `${prefix}p${i}`]);
  }
  return times;
}

const results = await forEachEngine(ENGINES, opts.engines.split(','), ARCHIVE, async (engine) => {
  await serial(engine, [], 'warm'); // warm-up: the default network's first use (conflist, bridge)
  const out = { default: await serial(engine, [], 'n') };
  if (engine === ENGINES.isula) out.none = await serial(engine, ['--network', 'none'], 'x');
  return out;
});
await exec('ip', ['link', 'del', BRIDGE]).catch(() => {});

const cell = (xs) => (xs === undefined || xs.length === 0 ? 'n/a' : `${median(xs).toFixed(0)} (${p90(xs).toFixed(0)})`);
const cols = [];
for (const [name, r] of Object.entries(results)) {
  cols.push([`${name}`, r.default]);
  if (r.none !== undefined) cols.push([`${name} --network none`, r.none]);
}
let md = `network bench on ${os.hostname()} (${os.cpus().length} cores), ${new Date().toISOString()}: ${RUNS} containers serially, median ms per CLI call (p90)\n\n`;
md += `| operation | ${cols.map(([n]) => n).join(' | ')} |\n|---|${cols.map(() => '---:').join('|')}|\n`;
for (const op of ['run -d', 'run -d -p', 'rm -f']) md += `| ${op} | ${cols.map(([, t]) => cell(t[op])).join(' | ')} |\n`;
fs.mkdirSync(opts.results, { recursive: true });
fs.writeFileSync(path.join(opts.results, 'network.md'), md);
fs.writeFileSync(path.join(opts.results, 'network.json'), JSON.stringify(results));
fs.rmSync(TMP, { recursive: true, force: true });
process.stdout.write(md);
