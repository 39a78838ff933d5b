#!/usr/bin/env node
// The ptcr workload (after iSulad's ptcr tool): per engine, 10 containers
// serially, then 100 in parallel, each going through create, start, stop, rm,
// then run -d, rm -f. Every operation is one CLI call, timed from spawn to
// exit, as a user sees it. Engines: isula (this checkout, runc), Debian's
// podman and Debian's docker.io, each on its own temporary roots with
// `--network none` (isula has no networking yet) and busybox from the offline
// test image. Prints a markdown table of the median (and p90) per operation.
// `isula-<runtime>` engines (e.g. isula-io.containerd.runc.v2, isula-lcr) run isula with
// another runtime (engines.mjs isulaRuntime()), `create`/`run -d` with `--runtime <runtime>`;
// `isula` is isula on runc.
//
//   bench/ptcr.sh [--engines isula,podman,docker] [--serial 10] [--parallel 100]
//   bench/ptcr.sh --engines isula,isula-io.containerd.runc.v2,isula-lcr --serial 10 --parallel 20
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { COMMON_OPTIONS, call, engineLabel, forEachEngine, isulaRuntimesIn, makeEngines, median, p90, rmForce } from './engines.mjs';

const { values: opts } = parseArgs({
  options: {
    engines: { type: 'string', default: 'isula,podman,docker' },
    serial: { type: 'string', default: '10' },
    parallel: { type: 'string', default: '100' },
    // The default since 2026-12-03: one engine after the other, a load spike lands on one engine only.
    interleave: { type: 'boolean', default: true },
    sequential: { type: 'boolean', default: false },
    ...COMMON_OPTIONS,
  },
});
if (opts.sequential) opts.interleave = false;
const SERIAL = Number(opts.serial);
const PARALLEL = Number(opts.parallel);
const ARCHIVE = path.join(opts.images, 'busybox.docker.tar');
const OPS = ['create', 'start', 'stop', 'rm', 'run -d', 'rm -f'];
const TMP = fs.mkdtempSync(path.join(os.tmpdir(), 'ptcr-'));

const NAMES = opts.engines.split(',');
const ENGINES = makeEngines(TMP, { isulaRuntimes: isulaRuntimesIn(NAMES) });

const stepsFor = (engine) => [
  ['create', (nm) => ['create', ...engine.runArgs, '--name', nm, 'busybox', 'sleep', '1000']],
  ['start', (nm) => ['start', nm]],
  ['stop', (nm) => ['stop', '-t', '0', nm]],
  ['rm', (nm) => ['rm', nm]],
  ['run -d', (nm) => ['run', '-d', ...engine.runArgs, '--name', nm, 'busybox', 'sleep', '1000']],
  ['rm -f', (nm) => rmForce(engine, nm)],
];

async function phase(engine, n, parallel, prefix) {
  const names = Array.from({ length: n }, (_, i) => `${prefix}${i}`);
  const times = {};
  for (const [op, argsFor] of stepsFor(engine)) {
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

/** rm -f every container of the engine (its roots are ours alone), while its daemon is up. */
async function removeAll(engine) {
  const { out } = await call(engine, ['ps', '-aq']).catch(() => ({ out: '' }));
  const ids = out.split('\n').map((l) => l.trim()).filter(Boolean);
  await Promise.all(ids.map((id) => call(engine, rmForce(engine, id)).catch(() => {})));
}

/**
 * Interleaved (the default; --sequential for one engine after the other): every engine's daemon up at once, and the engines take turns: serially each
 * container's operation goes to each engine in a rotating order; in parallel each engine's
 * phase of an operation follows the other's, the order rotating per operation. On a machine
 * whose load moves during the run, the engines then see the same load; one after the other
 * (--sequential) they do not. An `isula-<runtime>` engine that fails is dropped (in `failed`).
 */
async function interleaved(names, failed) {
  const up = [];
  const out = {};
  const tolerate = (name, e) => {
    if (!name.startsWith('isula-')) throw e;
    failed[name] = String(e.message ?? e).trim().split('\n').slice(0, 5).join(' ');
    console.error(`bench: ${engineLabel(name)} failed, dropped: ${failed[name]}`);
  };
  let active = [];
  const rotate = (xs, k) => xs.map((_, i) => xs[(i + k) % xs.length]);
  try {
    for (const name of names) {
      const engine = ENGINES[name];
      if (engine === undefined) throw new Error(`unknown engine ${name}`);
      const bin = engine.requires ?? (name === 'isula' ? 'true' : name === 'docker' ? 'dockerd' : 'podman');
      try { execFileSync('sh', ['-c', `command -v ${bin}`], { stdio: 'ignore' }); } catch {
        console.error(`bench: ${bin} not installed; skipping ${name}`);
        if (name.startsWith('isula-')) failed[name] = `${bin} not installed`;
        continue;
      }
      console.error(`==> ${engineLabel(name)}: setup`);
      try {
        up.push(name);
        await engine.setup();
        await call(engine, ['load', '-i', ARCHIVE]);
        await phase(engine, 1, false, 'warm');
        active.push(name);
        out[name] = { serial: {}, parallel: {} };
      } catch (e) { tolerate(name, e); }
    }
    for (const [mode, n, prefix] of [['serial', SERIAL, 's'], ['parallel', PARALLEL, 'p']]) {
      console.error(`==> ${mode}, interleaved: ${active.map((e) => engineLabel(e)).join(', ')}`);
      const cnames = Array.from({ length: n }, (_, i) => `${prefix}${i}`);
      for (const [k, op] of OPS.entries()) {
        for (const e of active) { out[e][mode][op] = []; out[e][mode][`${op} (wall)`] = [0]; }
        const run = async (e, nms) => {
          const argsFor = stepsFor(ENGINES[e]).find(([o]) => o === op)[1];
          const t0 = process.hrtime.bigint();
          try {
            const ms = (await Promise.all(nms.map((nm) => call(ENGINES[e], argsFor(nm))))).map((r) => r.ms);
            out[e][mode][op].push(...ms);
            out[e][mode][`${op} (wall)`][0] += Number(process.hrtime.bigint() - t0) / 1e6;
          } catch (err) {
            tolerate(e, err);
            active = active.filter((x) => x !== e);
            delete out[e];
          }
        };
        if (mode === 'serial') {
          for (const [i, nm] of cnames.entries()) for (const e of rotate(active, i + k)) if (active.includes(e)) await run(e, [nm]);
        } else {
          for (const e of rotate(active, k)) if (active.includes(e)) await run(e, cnames);
        }
      }
    }
  } finally {
    for (const name of up) {
      const engine = ENGINES[name];
      if (engine.cli !== undefined) await removeAll(engine);
      await engine.teardown();
    }
  }
  return out;
}

const failed = {};
const results = opts.interleave ? await interleaved(NAMES, failed) : await forEachEngine(ENGINES, NAMES, ARCHIVE, async (engine) => {
  try {
    // Warm-up: one container through every step, not counted.
    await phase(engine, 1, false, 'warm');
    return { serial: await phase(engine, SERIAL, false, 's'), parallel: await phase(engine, PARALLEL, true, 'p') };
  } catch (e) {
    // A phase that failed half-way leaves containers (and their monitors, which outlive the
    // daemon): remove them while the daemon is still up.
    await removeAll(engine);
    throw e;
  }
}, failed);

const engines = Object.keys(results);
const byRuntime = engines.some((e) => e.startsWith('isula-'));
const label = (e) => engineLabel(e, byRuntime);
let md = `ptcr on ${os.hostname()} (${os.cpus().length} cores), ${new Date().toISOString()}: median ms per operation (p90), one CLI call each${opts.interleave ? '; engines interleaved' : '; engines one after the other (--sequential)'}\n\n`;
for (const mode of ['serial', 'parallel']) {
  const n = mode === 'serial' ? SERIAL : PARALLEL;
  md += `### ${n} containers, ${mode}\n\n| operation | ${engines.map(label).join(' | ')} |\n|---|${engines.map(() => '---:').join('|')}|\n`;
  for (const op of OPS) {
    md += `| ${op} | ${engines.map((e) => `${median(results[e][mode][op]).toFixed(0)} (${p90(results[e][mode][op]).toFixed(0)})`).join(' | ')} |\n`;
  }
  md += `| total wall s | ${engines.map((e) => (OPS.reduce((s, op) => s + results[e][mode][`${op} (wall)`][0], 0) / 1000).toFixed(2)).join(' | ')} |\n\n`;
}
for (const [e, msg] of Object.entries(failed)) md += `${label(e)} failed: ${msg}\n\n`;
fs.mkdirSync(opts.results, { recursive: true });
fs.writeFileSync(path.join(opts.results, 'ptcr.md'), md);
// `_failed`: the opt-in isula-<runtime> engines that failed (summary.mjs notes them);
// `_interleaved`: measured interleaved (the default; not with --sequential).
fs.writeFileSync(path.join(opts.results, 'ptcr.json'), JSON.stringify({ ...results, ...(Object.keys(failed).length > 0 ? { _failed: failed } : {}), ...(opts.interleave ? { _interleaved: true } : {}) }));
fs.rmSync(TMP, { recursive: true, force: true });
process.stdout.write(md);
if (Object.keys(failed).length > 0) process.exitCode = 1;
