#!/usr/bin/env node
// Cold pulls from a registry on this machine, as a user times them: per
// engine, `pull 127.0.0.1:5000/bench/pull:3layer` (~48 MB in 3 layers of
// incompressible data, bench/make-pull-image.sh) timed from spawn to exit,
// N times, the image removed (`rmi -f`) before each run so every layer is
// fetched, checked and unpacked again. The first pull per engine warms the
// page cache and the engine and is not counted. Engines: isula (this
// checkout, image-oci, daemon.json "insecure-registries"), Debian's podman
// (--tls-verify=false) and Debian's docker.io (127.0.0.0/8 is insecure by
// default), each on its own temporary roots (engines.mjs). Prints a markdown
// table of median, min and max seconds; an engine whose pull fails is
// reported with its error and does not stop the others.
//
//   bench/pull.sh [--engines isula,podman,docker] [--runs 5]
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { call, exec, makeEngines, median } from './engines.mjs';

const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const { values: opts } = parseArgs({
  options: {
    engines: { type: 'string', default: 'isula,podman,docker' },
    runs: { type: 'string', default: '5' },
    ref: { type: 'string', default: '127.0.0.1:5000/bench/pull:3layer' },
    results: { type: 'string', default: path.join(ROOT, 'bench', 'results') },
  },
});
const RUNS = Number(opts.runs);
const REF = opts.ref;
const REGISTRY = REF.slice(0, REF.indexOf('/'));
const TMP = fs.mkdtempSync(path.join(os.tmpdir(), 'pull-'));
// The bench registry is plain http: listed as insecure for isulad, as `--tls-verify=false` does for podman.
const ENGINES = makeEngines(TMP, { isulaConfig: { 'insecure-registries': [REGISTRY] } });

const PULL = {
  isula: ['pull', REF],
  podman: ['pull', '--tls-verify=false', '-q', REF],
  docker: ['pull', '-q', REF],
};

/** The image's compressed size, from the registry (what every cold pull downloads). */
async function imageSize() {
  const [, repo, tag] = /^[^/]+\/(.+):([^:/]+)$/.exec(REF) ?? [];
  const accept = 'application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json';
  const res = await fetch(`http://${REGISTRY}/v2/${repo}/manifests/${tag}`, { headers: { Accept: accept } });
  if (!res.ok) throw new Error(`${REF}: registry answered ${res.status}; run bench/make-pull-image.sh`);
  const m = await res.json();
  return { layers: m.layers.length, bytes: m.layers.reduce((s, l) => s + l.size, 0) };
}

function installed(name) {
  if (name === 'isula') return true;
  const bin = name === 'docker' ? 'dockerd' : name;
  return exec('sh', ['-c', `command -v ${bin}`]).then(() => true, () => false);
}

const size = await imageSize();
const results = {};
for (const name of opts.engines.split(',')) {
  const engine = ENGINES[name];
  if (engine === undefined) throw new Error(`unknown engine ${name}`);
  if (!(await installed(name))) { console.error(`bench: ${name} not installed; skipping`); continue; }
  console.error(`==> ${name}`);
  try {
    await engine.setup();
    const rmi = () => call(engine, ['rmi', '-f', REF]).catch(() => {});
    await rmi();
    await call(engine, PULL[name]); // warm-up, not counted
    const times = [];
    for (let i = 0; i < RUNS; i++) {
      await rmi();
      times.push((await call(engine, PULL[name])).ms / 1000);
      console.error(`    run ${i + 1}: ${times.at(-1).toFixed(2)} s`);
    }
    await rmi();
    results[name] = { times };
  } catch (err) {
    const message = String(err.message ?? err).split('\n').filter(Boolean).slice(0, 3).join(' ').slice(0, 300);
    console.error(`bench: ${name} failed: ${message}`);
    results[name] = { error: message };
  } finally {
    await engine.teardown().catch(() => {});
  }
}

const mb = (size.bytes / 1e6).toFixed(1);
let md = `pull on ${os.hostname()} (${os.cpus().length} cores), ${new Date().toISOString()}: ${REF}, ${size.layers} layers, ${mb} MB compressed, `
  + `from docker-registry on 127.0.0.1; cold (image removed before each run), ${RUNS} runs after one warm-up; seconds per \`pull\`\n\n`;
md += '| engine | median s | min s | max s | MB/s (median) |\n|---|---:|---:|---:|---:|\n';
for (const [name, r] of Object.entries(results)) {
  if (r.error !== undefined) { md += `| ${name} | n/a: ${r.error.replace(/\|/g, '\\|')} | | | |\n`; continue; }
  const med = median(r.times);
  md += `| ${name} | ${med.toFixed(2)} | ${Math.min(...r.times).toFixed(2)} | ${Math.max(...r.times).toFixed(2)} | ${(size.bytes / 1e6 / med).toFixed(0)} |\n`;
}
fs.mkdirSync(opts.results, { recursive: true });
fs.writeFileSync(path.join(opts.results, 'pull.md'), md);
fs.writeFileSync(path.join(opts.results, 'pull.json'), JSON.stringify({ ref: REF, size, results }));
fs.rmSync(TMP, { recursive: true, force: true });
process.stdout.write(md);
