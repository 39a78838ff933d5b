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
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { COMMON_OPTIONS, call, forEachEngine, makeEngines, median, p90, rmForce } from './engines.mjs';

const { values: opts } = parseArgs({
  options: {
    engines: { type: 'string', default: 'isula,podman,docker' },
    serial: { type: 'string', default: '10' },
    parallel: { type: 'string', default: '100' },
    ...COMMON_OPTIONS,
  },
});
const SERIAL = Number(opts.serial);
const PARALLEL = Number(opts.parallel);
const ARCHIVE = path.join(opts.images, 'busybox.docker.tar');
const OPS = ['create', 'start', 'stop', 'rm', 'run -d', 'rm -f'];
const TMP = fs.mkdtempSync(path.join(os.tmpdir(), 'ptcr-'));

const ENGINES = makeEngines(TMP);

async function phase(engine, n, parallel, prefix) {
  const names = Array.from({ length: n }, (_, i) => `${prefix}${i}`);
  const steps = [
    ['create', (nm) => ['create', ...engine.runArgs, '--name', nm, 'busybox', 'sleep', '1000']],
    ['start', (nm) => ['start', nm]],
    ['stop', (nm) => ['stop', '-t', '0', nm]],
    ['rm', (nm) => ['rm', nm]],
    ['run -d', (nm) => ['run', '-d', ...engine.runArgs, '--name', nm, 'busybox', 'sleep', '1000']],
    ['rm -f', (nm) => rmForce(engine, nm)],
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

const results = await forEachEngine(ENGINES, opts.engines.split(','), ARCHIVE, async (engine) => {
  // Warm-up: one container through every step, not counted.
  await phase(engine, 1, false, 'warm');
  return { serial: await phase(engine, SERIAL, false, 's'), parallel: await phase(engine, PARALLEL, true, 'p') };
});

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
