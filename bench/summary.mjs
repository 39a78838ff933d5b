#!/usr/bin/env node
// The summary of whatever bench results are in bench/results (bench/run.sh runs the benches
// that write them, then this): one table of isula against Debian's docker.io and podman and
// against the runc floor, with ratios. Writes
//   results/summary.tsv  one row per metric: section, metric, isula, docker, podman, runc
//                        floor, isula/docker, isula/podman, isula/floor (medians; empty when
//                        not measured)
//   results/summary.md   the same by section, medians with the p90 in brackets where the
//                        bench keeps every sample, the ptcr targets (✔/✘), the machine
//   results/summary.svg  the isula/docker and isula/podman ratios per metric: horizontal
//                        bars on a log scale from the 1.0 line, clipped at 4× (plain SVG)
// A ratio is isula's value divided by the other's: below 1 isula is better (every metric
// here is a time or a memory size). A missing or unreadable input is skipped with a note.
//
//   bench/summary.mjs [--results DIR]
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';

const HERE = path.dirname(new URL(import.meta.url).pathname);
const { values: opts } = parseArgs({ options: { results: { type: 'string', default: path.join(HERE, 'results') } } });
const DIR = opts.results;
const PEERS = ['docker', 'podman'];
const ENGINES = ['isula', ...PEERS];
const PTCR_OPS = ['create', 'start', 'stop', 'rm', 'run -d', 'rm -f'];
const SLACK_MS = 10; // the issue's target: each serial op within 10 ms of runc floor + node -e 0
const CLIP = 4; // the chart's bars stop at 4× (and 1/4×)

// --- numbers ------------------------------------------------------------------------------

const isNum = (x) => typeof x === 'number' && Number.isFinite(x);
const sorted = (xs) => xs.filter(isNum).sort((a, b) => a - b);
// As engines.mjs computes them, so the summary agrees with each bench's own table.
const median = (s) => { const m = Math.floor(s.length / 2); return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };
const p90 = (s) => s[Math.min(s.length - 1, Math.ceil(s.length * 0.9) - 1)];
/** {med, p90, n} of samples (times `scale`), or undefined when there are none. */
function samples(xs, scale = 1) {
  if (!Array.isArray(xs)) return undefined;
  const s = sorted(xs);
  if (s.length === 0) return undefined;
  return { med: median(s) * scale, p90: s.length > 1 ? p90(s) * scale : undefined, n: s.length };
}
/** A single value (a median some bench computed, a memory sample). */
const single = (x, scale = 1) => (isNum(x) ? { med: x * scale } : undefined);
const ratio = (a, b) => (a !== undefined && b !== undefined && a.med > 0 && b.med > 0 ? a.med / b.med : undefined);
function fmt(x) {
  if (!isNum(x)) return '–';
  if (x === 0) return '0';
  const a = Math.abs(x);
  return a >= 100 ? x.toFixed(0) : a >= 10 ? x.toFixed(1) : x.toFixed(2);
}
const fmtRatio = (r) => (r === undefined ? '–' : r.toFixed(2));
const tsvNum = (x) => (isNum(x) ? String(Math.round(x * 1000) / 1000) : '');

// --- inputs -------------------------------------------------------------------------------

const notes = [];
const sources = []; // {file, mtime}
function read(file) {
  const f = path.join(DIR, file);
  if (!fs.existsSync(f)) return undefined;
  try {
    const json = JSON.parse(fs.readFileSync(f, 'utf8'));
    sources.push({ file, mtime: fs.statSync(f).mtime });
    return json;
  } catch (e) {
    notes.push(`${file}: unreadable (${e.message.split('\n')[0]}), skipped`);
    return undefined;
  }
}
const obj = (x) => (x !== null && typeof x === 'object' && !Array.isArray(x) ? x : undefined);
/** read(), and a note when it is JSON but not an object. */
function readObj(file) {
  const x = read(file);
  if (x !== undefined && obj(x) === undefined) notes.push(`${file}: not a JSON object, skipped`);
  return obj(x);
}

const run = readObj('run.json');
const ptcr = readObj('ptcr.json');
const floor = readObj('floor.json');
const footprint = readObj('footprint.json');
const startup = readObj('startup.json');
const streams = readObj('streams.json');
const loads = Object.fromEntries(['busybox', 'big'].map((n) => [n, readObj(`load-${n}.json`)]));
const pull = readObj('pull.json');
const network = readObj('network.json');
const soak = readObj('soak.json');

const nodeE0 = isNum(floor?.node_e0_ms) ? floor.node_e0_ms : isNum(startup?.node_e0?.median_ms) ? startup.node_e0.median_ms : undefined;

// --- sections: {id, title, note, target, rows: [{metric, v: {isula, docker, podman, floor}, target}]} -----

const sections = [];
/** Builds one section; a bench whose JSON is not what is expected is skipped with a note, never a crash. */
function section(id, input, file, build) {
  if (input === undefined) {
    if (!notes.some((n) => n.startsWith(`${file}:`))) notes.push(`${file}: not found, ${id.split(' ')[0]} skipped`);
    return;
  }
  try {
    const s = build();
    if (s === undefined) return;
    s.rows = s.rows.filter((r) => Object.values(r.v).some((x) => x !== undefined));
    if (s.rows.length === 0) { notes.push(`${file}: no values for ${id}, skipped`); return; }
    sections.push({ id, ...s });
  } catch (e) {
    notes.push(`${file}: not in the expected shape (${e.message}), ${id} skipped`);
  }
}

/** The target cell of a ptcr op: ahead of each peer measured, and (serial) ≤ floor + node -e 0 + 10 ms. */
function target(v, serial) {
  if (v.isula === undefined) return '–';
  const behind = PEERS.filter((p) => v[p] !== undefined && !(v.isula.med < v[p].med));
  const peersMeasured = PEERS.filter((p) => v[p] !== undefined).length;
  const parts = [];
  let ok = behind.length === 0;
  if (serial) {
    if (v.floor !== undefined && nodeE0 !== undefined) {
      const bound = v.floor.med + nodeE0 + SLACK_MS;
      ok &&= v.isula.med <= bound;
      parts.push(v.isula.med <= bound ? `≤ ${fmt(bound)}` : `> ${fmt(bound)} by ${fmt(v.isula.med - bound)}`);
    } else {
      parts.push('no floor');
      if (peersMeasured === 0) return '–';
    }
  } else if (peersMeasured === 0) return '–';
  if (behind.length > 0) parts.push(`behind ${behind.join(', ')}`);
  else if (peersMeasured > 0) parts.push(peersMeasured === PEERS.length ? 'ahead of both' : `ahead of ${PEERS.find((p) => v[p] !== undefined)}`);
  return `${ok ? '✔' : '✘'} ${parts.join('; ')}`;
}

for (const mode of ['serial', 'parallel']) {
  const serial = mode === 'serial';
  const file = ptcr !== undefined ? 'ptcr.json' : floor !== undefined ? 'floor.json' : 'ptcr.json, floor.json';
  if (ptcr === undefined && floor !== undefined && serial) notes.push('ptcr.json: not found, the ptcr sections show the runc floor only');
  section(`ptcr ${mode}`, ptcr ?? floor, file, () => {
    const engines = Object.keys(ptcr ?? {}).filter((e) => obj(ptcr[e]?.[mode]));
    const n = ptcr?.[engines[0]]?.[mode]?.create?.length;
    const floorN = floor?.runc?.[mode]?.create?.length;
    for (const e of engines) {
      if (e.startsWith('isula-')) continue; // isula on another runtime: the "isula by runtime" tables
      if (!ENGINES.includes(e)) notes.push(`ptcr.json: engine ${e} is not one of ${ENGINES.join(', ')}, left out`);
      else if (ptcr[e][mode].create?.length !== n) notes.push(`ptcr.json: ${e} ${mode} has ${ptcr[e][mode].create?.length} containers, not ${n}`);
    }
    // Parallel latencies depend on how many run at once: a floor of another size is no floor.
    const floorOk = floorN !== undefined && (serial || n === undefined || floorN === n);
    if (floorN !== undefined && !floorOk) notes.push(`floor.json: ${mode} with ${floorN} containers, ptcr with ${n}: the ${mode} floor is left out (run both with the same --parallel)`);
    if (floorN !== undefined && floorOk && n !== undefined && floorN !== n) notes.push(`floor.json: serial with ${floorN} containers, ptcr with ${n} (serial medians compare anyway)`);
    const rows = PTCR_OPS.map((op) => {
      const v = Object.fromEntries(ENGINES.map((e) => [e, samples(ptcr?.[e]?.[mode]?.[op])]));
      v.floor = floorOk ? samples(floor?.runc?.[mode]?.[op]) : undefined;
      return { metric: `${op} (ms)`, v, target: target(v, serial) };
    });
    const wall = (r) => {
      const ws = PTCR_OPS.map((op) => r?.[mode]?.[`${op} (wall)`]?.[0]);
      return ws.every(isNum) ? { med: ws.reduce((a, b) => a + b, 0) / 1000 } : undefined;
    };
    const wv = Object.fromEntries(ENGINES.map((e) => [e, wall(ptcr?.[e])]));
    wv.floor = floorOk ? wall(floor?.runc) : undefined;
    rows.push({ metric: 'total wall (s)', v: wv, target: '' });
    const size = n ?? floorN;
    const title = `ptcr, ${size ?? '?'} container${size === 1 ? '' : 's'} ${mode}${ptcr === undefined ? ' (runc floor only: no ptcr.json)' : ''}`;
    const note = serial
      ? `One CLI call per operation, containers one after another (bench/ptcr.sh); median ms (p90). runc floor: the same operation done with runc directly on a prepared bundle (bench/floor.sh). `
        + `Target (from the issue): ahead of docker and podman, and at most runc floor + \`node -e 0\` (${nodeE0 === undefined ? 'not measured' : `${fmt(nodeE0)} ms`}) + ${SLACK_MS} ms.`
      : `All ${size ?? '?'} containers at once per operation; median ms per call (p90) and the wall time of the whole phase. Target: ahead of docker and podman.`;
    return { title, note, target: true, rows };
  });
}

section('footprint', footprint, 'footprint.json', () => {
  const engines = ENGINES.filter((e) => obj(footprint[e]));
  const stages = Object.keys(footprint[engines[0]] ?? {}).filter((k) => /^c\d+$/.test(k)).sort((a, b) => a.slice(1) - b.slice(1));
  const many = stages.at(-1);
  const N = Number(many?.slice(1));
  const per = (fn) => Object.fromEntries(ENGINES.map((e) => [e, footprint[e] === undefined ? undefined : fn(footprint[e])]));
  const MiB = 1 / 1024;
  const rows = [
    { metric: 'daemon RSS idle (MiB)', v: per((r) => single(r.idle?.rssKiB, MiB)) },
    { metric: 'daemon PSS idle (MiB)', v: per((r) => single(r.idle?.pssKiB, MiB)) },
    ...stages.map((s) => ({ metric: `daemon PSS, ${s.slice(1)} containers (MiB)`, v: per((r) => single(r[s]?.pssKiB, MiB)) })),
  ];
  if (many !== undefined) {
    rows.push({ metric: `daemon RSS, ${N} containers (MiB)`, v: per((r) => single(r[many]?.rssKiB, MiB)) });
    rows.push({ metric: 'daemon PSS growth per container (KiB)', v: per((r) => (isNum(r[many]?.pssKiB) && isNum(r.idle?.pssKiB) ? { med: (r[many].pssKiB - r.idle.pssKiB) / N } : undefined)) });
  }
  rows.push({ metric: 'monitor PSS per container (MiB)', v: per((r) => single(r.monitorPssKiB, MiB)) });
  rows.push({ metric: 'monitor RSS per container (MiB)', v: per((r) => single(r.monitorRssKiB, MiB)) });
  if (many !== undefined) {
    rows.push({
      metric: `daemon + monitors PSS, ${N} containers (MiB)`,
      v: per((r) => (isNum(r[many]?.pssKiB) && isNum(r.monitorPssKiB) && isNum(r.monitorCount) ? { med: (r[many].pssKiB + r.monitorCount * r.monitorPssKiB) / 1024 } : undefined)),
    });
  }
  for (const r of rows) r.v.floor = undefined;
  return {
    title: 'footprint',
    note: 'MiB from /proc/PID/smaps_rollup (bench/footprint.sh). Daemon: isulad; dockerd + its containerd; podman has none (0, no ratio). '
      + `Monitor: conmon (isula, podman), containerd-shim-runc-v2 (docker), median over the running containers. The last row adds the monitors (median × count) to the daemon. One sample per stage: no p90.`,
    rows,
  };
});

section('startup', startup, 'startup.json', () => {
  const rows = ['version', 'ps -a', 'inspect'].map((op) => {
    const v = Object.fromEntries(ENGINES.map((e) => [e, single(startup[e]?.[op]?.median_ms)]));
    v.floor = single(startup.node_e0?.median_ms);
    return { metric: `${op} (ms)`, v };
  });
  return {
    title: 'client start-up',
    note: 'hyperfine -N, median ms of each CLI call (bench/startup.sh; hyperfine keeps no p90 here). Here the floor column is `node -e 0` on the Node the isula CLI runs on, not runc.',
    rows,
  };
});

section('streams', streams, 'streams.json', () => {
  const ops = [...new Set(ENGINES.flatMap((e) => Object.keys(obj(streams[e]) ?? {})))];
  return {
    title: 'exec and logs',
    note: 'One CLI call on a running container, timed from spawn to exit (bench/streams.sh); median ms (p90).',
    rows: ops.map((op) => ({ metric: `${op} (ms)`, v: { ...Object.fromEntries(ENGINES.map((e) => [e, samples(streams[e]?.[op])])), floor: undefined } })),
  };
});

section('load', loads.busybox ?? loads.big, 'load-{busybox,big}.json', () => {
  const rows = [];
  for (const [name, label] of [['busybox', 'load busybox, ~2 MB 1 layer (ms)'], ['big', 'load big, ~100 MB 4 layers (ms)']]) {
    const h = loads[name];
    if (h === undefined) { notes.push(`load-${name}.json: not found, skipped`); continue; }
    const v = { isula: undefined, docker: undefined, podman: undefined, floor: undefined };
    for (const r of Array.isArray(h.results) ? h.results : []) {
      const e = String(r.command).split(' ')[0];
      if (ENGINES.includes(e)) v[e] = samples(r.times, 1000) ?? single(r.median, 1000);
    }
    rows.push({ metric: label, v });
  }
  return { title: 'image load', note: '`load -i` of a docker-archive into an empty store, hyperfine (bench/load.sh: isula and podman only); median ms (p90).', rows };
});

section('pull', pull, 'pull.json', () => {
  const v = { floor: undefined };
  for (const e of ENGINES) {
    const r = pull.results?.[e];
    if (r?.error !== undefined) notes.push(`pull.json: ${e} failed: ${r.error}`);
    v[e] = samples(r?.times, 1000);
  }
  const mb = isNum(pull.size?.bytes) ? `${(pull.size.bytes / 1e6).toFixed(0)} MB` : '?';
  return {
    title: 'pull',
    note: `Cold \`pull\` of ${pull.ref ?? 'the bench image'} (${pull.size?.layers ?? '?'} layers, ${mb} compressed) from docker-registry on 127.0.0.1 (bench/pull.sh); median ms (p90).`,
    rows: [{ metric: `cold pull ${pull.size?.layers ?? '?'} layers ${mb} (ms)`, v }],
  };
});

section('network', network, 'network.json', () => {
  const rows = ['run -d', 'run -d -p', 'rm -f'].map((op) => ({
    metric: `${op}, default network (ms)`,
    v: { ...Object.fromEntries(ENGINES.map((e) => [e, samples(network[e]?.default?.[op])])), floor: undefined },
  }));
  for (const op of ['run -d', 'rm -f']) {
    rows.push({ metric: `${op} --network none (ms)`, v: { isula: samples(network.isula?.none?.[op]), docker: undefined, podman: undefined, floor: undefined } });
  }
  return { title: 'networking', note: 'Serial, each engine with its default networking (bench/network.sh; isula with CNI); median ms (p90).', rows };
});

section('soak', soak, 'soak.json', () => {
  const vd = soak.verdict;
  if (!obj(vd)) throw new Error('no verdict');
  const only = (x) => ({ isula: x, docker: undefined, podman: undefined, floor: undefined });
  return {
    title: 'isulad memory soak',
    note: `**${vd.pass ? 'PASS' : 'FAIL'}**: isulad's RSS ${vd.rssGrowthPct >= 0 ? '+' : ''}${vd.rssGrowthPct} % from cycle ${vd.baseCycle} to cycle ${vd.finalCycle} (limit +${vd.tolerancepct} %); `
      + `${soak.cycles} cycles of run + rm -f (via ${soak.via}, bench/soak.sh). isula only.`,
    rows: [
      { metric: `isulad RSS after cycle ${vd.baseCycle} (MiB)`, v: only(single(vd.baseRssKiB, 1 / 1024)) },
      { metric: `isulad RSS after cycle ${vd.finalCycle} (MiB)`, v: only(single(vd.finalRssKiB, 1 / 1024)) },
      { metric: 'isulad RSS growth (%)', v: only(single(vd.rssGrowthPct)) },
      // With `bench/soak.sh --heap`: isulad's V8 heap in use after a forced GC.
      { metric: `isulad heap after GC, cycle ${vd.baseCycle} (MiB)`, v: only(single(vd.baseHeapUsedKiB, 1 / 1024)) },
      { metric: `isulad heap after GC, cycle ${vd.finalCycle} (MiB)`, v: only(single(vd.finalHeapUsedKiB, 1 / 1024)) },
      { metric: 'isulad heap growth (%)', v: only(single(vd.heapUsedGrowthPct)) },
      { metric: 'conmon left after the last cycle', v: only(single(vd.leftConmons)) },
      { metric: 'soak duration (s)', v: only(Array.isArray(soak.samples) && soak.samples.length > 1 ? single(soak.samples.at(-1).seconds - soak.samples[0].seconds) : undefined) },
    ],
  };
});

// --- isula by runtime (bench/run.sh --isula-runtimes) -------------------------------------------
// ptcr.json and footprint.json hold `isula-<runtime>` engines beside `isula` (runc) when the run
// asked for them: one table per section with a column per runtime and each runtime / runc.

const runtimeTables = [];
const rtLabel = (e) => (e === 'isula' ? 'isula (runc)' : `isula (${e.slice('isula-'.length)})`);
function runtimeTable(input, file, title, note, rowsFor) {
  const extra = Object.keys(input ?? {}).filter((e) => e.startsWith('isula-') && obj(input[e]));
  for (const [e, msg] of Object.entries(obj(input?._failed) ?? {})) notes.push(`${file}: ${rtLabel(e)} failed: ${msg}`);
  if (extra.length === 0) return;
  const cols = [...(obj(input.isula) ? ['isula'] : []), ...extra];
  try {
    const rows = rowsFor(cols).filter((r) => cols.some((c) => r.v[c] !== undefined));
    if (rows.length > 0) runtimeTables.push({ title, note, cols, rows });
  } catch (e) {
    notes.push(`${file}: runtimes not in the expected shape (${e.message}), skipped`);
  }
}
for (const mode of ['serial', 'parallel']) {
  const n = Object.values(ptcr ?? {}).find((r) => obj(r?.[mode]))?.[mode]?.create?.length;
  runtimeTable(ptcr, 'ptcr.json', `ptcr by isula runtime, ${n ?? '?'} containers ${mode}`,
    `The ptcr workload (bench/ptcr.sh) on one isulad per runtime in the same run: runc through conmon (driver-runc), `
      + 'io.containerd.<x>.v<N> through its containerd shim v2 (driver-kata), lcr through lxc (driver-lxc); `create` and `run -d` with `--runtime`. '
      + `${ptcr?._interleaved === true || /(^| )--interleave( |$)/.test(run?.args ?? '') ? 'The engines\' calls interleaved: each saw the same load. ' : 'One engine after the other: a load that moved during the run weighs on one runtime more than on another. '}`
      + 'Median ms (p90); the ratios are each runtime / runc (below 1: faster than runc).',
    (cols) => [
      ...PTCR_OPS.map((op) => ({ metric: `${op} (ms)`, v: Object.fromEntries(cols.map((c) => [c, samples(ptcr[c]?.[mode]?.[op])])) })),
      {
        metric: 'total wall (s)',
        v: Object.fromEntries(cols.map((c) => {
          const ws = PTCR_OPS.map((op) => ptcr[c]?.[mode]?.[`${op} (wall)`]?.[0]);
          return [c, ws.every(isNum) ? { med: ws.reduce((a, b) => a + b, 0) / 1000 } : undefined];
        })),
      },
    ]);
}
runtimeTable(footprint, 'footprint.json', 'footprint by isula runtime',
  'MiB from /proc/PID/smaps_rollup (bench/footprint.sh), one isulad per runtime in the same run. Monitor: each runtime\'s per-container process, median over the running containers: '
    + `${Object.keys(footprint ?? {}).filter((e) => e === 'isula' || e.startsWith('isula-')).map((e) => `${footprint[e]?.monitor ?? (e === 'isula' ? 'conmon' : '?')} for ${rtLabel(e)}`).join(', ')}. `
    + 'PSS splits shared pages among the processes mapping them (fewer copies of a binary running, higher PSS); USS is the private pages. Ratios: each runtime / runc.',
  (cols) => {
    const stages = Object.keys(footprint[cols[0]] ?? {}).filter((k) => /^c\d+$/.test(k)).sort((a, b) => a.slice(1) - b.slice(1));
    const many = stages.at(-1);
    const N = Number(many?.slice(1));
    const MiB = 1 / 1024;
    const per = (fn) => Object.fromEntries(cols.map((c) => [c, fn(footprint[c])]));
    const rows = [
      { metric: 'monitor PSS per container (MiB)', v: per((r) => single(r.monitorPssKiB, MiB)) },
      { metric: 'monitor RSS per container (MiB)', v: per((r) => single(r.monitorRssKiB, MiB)) },
      { metric: 'monitor USS per container (MiB)', v: per((r) => single(r.monitorUssKiB, MiB)) },
      { metric: 'monitors found', count: true, v: per((r) => single(r.monitorCount)) },
      { metric: 'daemon PSS idle (MiB)', v: per((r) => single(r.idle?.pssKiB, MiB)) },
      ...stages.map((st) => ({ metric: `daemon PSS, ${st.slice(1)} containers (MiB)`, v: per((r) => single(r[st]?.pssKiB, MiB)) })),
    ];
    if (many !== undefined) {
      rows.push({ metric: 'daemon PSS growth per container (KiB)', v: per((r) => (isNum(r[many]?.pssKiB) && isNum(r.idle?.pssKiB) ? { med: (r[many].pssKiB - r.idle.pssKiB) / N } : undefined)) });
      rows.push({ metric: `daemon + monitors PSS, ${N} containers (MiB)`, v: per((r) => (isNum(r[many]?.pssKiB) && isNum(r.monitorPssKiB) && isNum(r.monitorCount) ? { med: (r[many].pssKiB + r.monitorCount * r.monitorPssKiB) / 1024 } : undefined)) });
    }
    return rows;
  });

// --- the machine ----------------------------------------------------------------------------

function version(cmd, args) {
  try { return execFileSync(cmd, args, { encoding: 'utf8', timeout: 5000, stdio: ['ignore', 'pipe', 'ignore'] }).split('\n')[0].trim(); } catch { return undefined; }
}
let distro;
try { distro = /^PRETTY_NAME="?([^"\n]*)/m.exec(fs.readFileSync('/etc/os-release', 'utf8'))?.[1]; } catch { /* none */ }
const cpus = os.cpus();
const now = new Date();
const machine = {
  hostname: os.hostname(),
  cores: cpus.length,
  cpu: cpus[0]?.model?.replace(/\s+/g, ' ').trim(),
  kernel: os.release(),
  distro,
  memGiB: os.totalmem() / 2 ** 30,
  node: process.version,
  // "runc version 1.1.5+ds1", "Docker version 20.10.24+dfsg1, build 5d6db84", "hyperfine 1.15.0" → "runc 1.1.5+ds1"…
  tools: [['runc', 'runc'], ['podman', 'podman'], ['dockerd', 'docker'], ['hyperfine', 'hyperfine']]
    .map(([cmd, name]) => { const v = /\d+\.\d+[^\s,]*/.exec(version(cmd, ['--version']) ?? '')?.[0]; return v && `${name} ${v}`; })
    .filter(Boolean),
  date: now.toISOString(),
};

// --- summary.tsv ----------------------------------------------------------------------------

const COLS = ['isula', 'docker', 'podman', 'floor'];
const tsvHeader = ['section', 'metric', 'isula', 'docker', 'podman', 'runc floor', 'isula/docker', 'isula/podman', 'isula/floor'];
const tsvRows = [tsvHeader.join('\t')];
for (const s of sections) {
  for (const r of s.rows) {
    tsvRows.push([s.id, r.metric, ...COLS.map((c) => tsvNum(r.v[c]?.med)), ...['docker', 'podman', 'floor'].map((c) => tsvNum(ratio(r.v.isula, r.v[c])))].join('\t'));
  }
}

// --- summary.md ------------------------------------------------------------------------------

const cell = (x) => (x === undefined ? '–' : `${fmt(x.med)}${x.p90 !== undefined ? ` (${fmt(x.p90)})` : ''}`);
const mdEsc = (s) => String(s).replace(/\|/g, '\\|');
const runStart = run?.started ? new Date(run.started) : undefined;
let md = '# isula benchmark summary\n\n';
md += `${machine.hostname}: ${machine.cores} cores${machine.cpu ? ` (${machine.cpu})` : ''}, ${machine.memGiB.toFixed(1)} GiB, Linux ${machine.kernel}${machine.distro ? `, ${machine.distro}` : ''}; Node ${machine.node}`;
md += `${machine.tools.length ? `; ${machine.tools.join(', ')}` : ''}. Summary written ${machine.date}`;
md += run?.started ? ` after \`bench/run.sh${run.args ? ` ${run.args}` : ''}\` (started ${run.started}).\n\n` : '.\n\n';
md += 'Each value is a median over the runs (the p90 in brackets where the bench keeps every sample). **Ratios are isula / docker, isula / podman and isula / runc floor: below 1 isula is better** (every metric here is a time or a memory size: less is better); above 1 it is behind. ';
md += 'docker is Debian\'s docker.io, podman Debian\'s podman, all on runc, each on its own temporary roots on this machine, loaded with the same offline busybox archive.\n\n';
md += '![isula / docker and isula / podman per metric](summary.svg)\n\n';
for (const s of sections) {
  md += `## ${s.title}\n\n${s.note}\n\n`;
  md += `| metric | isula | docker | podman | ${s.id === 'startup' ? 'node -e 0' : 'runc floor'} | isula/docker | isula/podman | isula/floor |${s.target ? ' target |' : ''}\n`;
  md += `|---|---:|---:|---:|---:|---:|---:|---:|${s.target ? '---|' : ''}\n`;
  for (const r of s.rows) {
    md += `| ${mdEsc(r.metric)} | ${COLS.map((c) => cell(r.v[c])).join(' | ')} | ${['docker', 'podman', 'floor'].map((c) => fmtRatio(ratio(r.v.isula, r.v[c]))).join(' | ')} |${s.target ? ` ${r.target ?? ''} |` : ''}\n`;
  }
  md += '\n';
}
for (const t of runtimeTables) {
  const others = t.cols.filter((c) => c !== 'isula');
  const base = t.cols.includes('isula');
  md += `## ${t.title}\n\n${t.note}\n\n`;
  md += `| metric | ${t.cols.map(rtLabel).join(' | ')} |${base ? ` ${others.map((c) => `${c.slice('isula-'.length)} / runc`).join(' | ')} |` : ''}\n`;
  md += `|---|${t.cols.map(() => '---:').join('|')}|${base ? `${others.map(() => '---:').join('|')}|` : ''}\n`;
  for (const r of t.rows) {
    md += `| ${mdEsc(r.metric)} | ${t.cols.map((c) => (r.count && r.v[c] !== undefined ? String(r.v[c].med) : cell(r.v[c]))).join(' | ')} |${base ? ` ${others.map((c) => (r.count ? '' : fmtRatio(ratio(r.v[c], r.v.isula)))).join(' | ')} |` : ''}\n`;
  }
  md += '\n';
}
if (sections.length === 0) md += 'No results yet: run `bench/run.sh` (or `bench/run.sh --quick`).\n\n';
if (notes.length > 0) md += `## Notes\n\n${[...new Set(notes)].map((n) => `- ${mdEsc(n)}`).join('\n')}\n\n`;
if (sources.length > 0) {
  md += '## Inputs\n\n| file | written |\n|---|---|\n';
  for (const { file, mtime } of sources.sort((a, b) => a.file.localeCompare(b.file))) {
    const older = runStart !== undefined && file !== 'run.json' && mtime < runStart ? ' (before the last bench/run.sh)' : '';
    md += `| ${file} | ${mtime.toISOString()}${older} |\n`;
  }
  md += '\n';
}
if (Array.isArray(run?.steps)) {
  md += `## Last run\n\n\`bench/run.sh${run.args ? ` ${run.args}` : ''}\` on ${run.host ?? '?'}, ${run.started} → ${run.finished}${run.quick ? ' (--quick sizes: a smoke run, not a measurement)' : ''}\n\n| step | status | time |\n|---|---|---:|\n`;
  for (const st of run.steps) md += `| ${st.step} | ${st.status}${st.exit ? ` (exit ${st.exit})` : ''} | ${st.status === 'skipped' ? '–' : `${(st.ms / 1000).toFixed(1)} s`} |\n`;
  md += `| total | | ${isNum(run.total_ms) ? `${(run.total_ms / 1000).toFixed(0)} s` : '?'} |\n\n`;
}

// --- summary.svg -----------------------------------------------------------------------------

const esc = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const COLOR = { docker: '#1d63ed', podman: '#892ca0' };
const W = 1000;
const LABEL_X = 330; // metric labels end here (right-aligned)
const PX0 = 345;
const PX1 = 875; // the plot area
const VAL_X = 885; // the ratio values
const BAR_H = 9;
const lg = Math.log2;
const xOf = (r) => PX0 + (lg(Math.min(CLIP, Math.max(1 / CLIP, r))) + lg(CLIP)) / (2 * lg(CLIP)) * (PX1 - PX0);
const chartSections = sections
  .map((s) => ({ ...s, rows: s.rows.filter((r) => PEERS.some((p) => ratio(r.v.isula, r.v[p]) !== undefined)) }))
  .filter((s) => s.rows.length > 0);
const TOP = 92;
let y = TOP;
const body = [];
for (const s of chartSections) {
  y += 8;
  body.push(`<text x="8" y="${y + 12}" class="sec">${esc(s.title)}</text>`);
  y += 20;
  for (const r of s.rows) {
    const rowH = PEERS.length * (BAR_H + 2) + 6;
    body.push(`<text x="${LABEL_X}" y="${y + rowH / 2 + 1}" class="lbl" text-anchor="end" dominant-baseline="middle">${esc(r.metric)}</text>`);
    PEERS.forEach((p, k) => {
      const by = y + 3 + k * (BAR_H + 2);
      const q = ratio(r.v.isula, r.v[p]);
      if (q === undefined) {
        body.push(`<text x="${VAL_X}" y="${by + BAR_H - 1}" class="val na">${p}: –</text>`);
        return;
      }
      const x1 = xOf(1);
      const x2 = xOf(q);
      const clipped = q > CLIP || q < 1 / CLIP;
      const tip = `${s.title}, ${r.metric}: isula ${fmt(r.v.isula.med)} / ${p} ${fmt(r.v[p].med)} = ${q.toFixed(2)}`;
      body.push(`<rect x="${Math.min(x1, x2).toFixed(1)}" y="${by}" width="${Math.max(1, Math.abs(x2 - x1)).toFixed(1)}" height="${BAR_H}" fill="${COLOR[p]}"${clipped ? ' fill-opacity="0.6"' : ''}><title>${esc(tip)}</title></rect>`);
      if (clipped) body.push(`<text x="${(q > 1 ? x2 - 2 : x2 + 2).toFixed(1)}" y="${by + BAR_H - 1}" class="clip" text-anchor="${q > 1 ? 'end' : 'start'}">${q > 1 ? '»' : '«'}</text>`);
      body.push(`<text x="${VAL_X}" y="${by + BAR_H - 1}" class="val ${q < 1 ? 'good' : 'bad'}">${p} ${q.toFixed(2)}×</text>`);
    });
    y += rowH;
  }
}
if (chartSections.length === 0) {
  body.push(`<text x="${W / 2}" y="${y + 30}" class="lbl" text-anchor="middle">No ratios yet: no metric has isula and a peer measured (bench/run.sh).</text>`);
  y += 50;
}
const H = y + 40;
const ticks = [1 / 4, 1 / 2, 1, 2, 4];
const grid = ticks.map((t) => {
  const x = xOf(t).toFixed(1);
  const label = t < 1 ? `1/${1 / t}` : `${t}`;
  return `<line x1="${x}" y1="${TOP - 6}" x2="${x}" y2="${y + 4}" class="${t === 1 ? 'one' : 'grid'}"/>`
    + `<text x="${x}" y="${TOP - 10}" class="tick" text-anchor="middle">${label}×</text>`
    + `<text x="${x}" y="${y + 16}" class="tick" text-anchor="middle">${label}×</text>`;
}).join('\n');
const svg = `<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="DejaVu Sans, Helvetica, Arial, sans-serif" font-size="11">
<title>isula / docker and isula / podman per metric (below 1: isula better)</title>
<style>
.sec { font-weight: bold; font-size: 12px; fill: #222; }
.lbl { fill: #222; }
.tick { fill: #555; font-size: 10px; }
.val { font-size: 10px; }
.good { fill: #1a7f37; }
.bad { fill: #b42318; }
.na { fill: #888; }
.clip { fill: #fff; font-size: 10px; font-weight: bold; }
.grid { stroke: #ddd; stroke-width: 1; }
.one { stroke: #222; stroke-width: 1.5; }
</style>
<rect width="100%" height="100%" fill="#fff"/>
<text x="8" y="20" font-size="15" font-weight="bold">isula / docker and isula / podman (median of each metric; below 1: isula is better)</text>
<text x="8" y="38" class="tick">${esc(`${machine.hostname}, ${machine.cores} cores, Linux ${machine.kernel}, Node ${machine.node}, ${machine.date.slice(0, 16).replace('T', ' ')} UTC; log scale, bars clipped at ${CLIP}× («, »)`)}</text>
<rect x="8" y="50" width="12" height="9" fill="${COLOR.docker}"/><text x="24" y="58">isula / docker</text>
<rect x="120" y="50" width="12" height="9" fill="${COLOR.podman}"/><text x="136" y="58">isula / podman</text>
<text x="${(xOf(1) - 8).toFixed(1)}" y="58" text-anchor="end" class="good">← isula better</text>
<text x="${(xOf(1) + 8).toFixed(1)}" y="58" class="bad">isula behind →</text>
${grid}
${body.join('\n')}
</svg>
`;

// --- write --------------------------------------------------------------------------------------

fs.mkdirSync(DIR, { recursive: true });
fs.writeFileSync(path.join(DIR, 'summary.tsv'), `${tsvRows.join('\n')}\n`);
fs.writeFileSync(path.join(DIR, 'summary.md'), md);
fs.writeFileSync(path.join(DIR, 'summary.svg'), svg);
// isula by runtime: section, metric, one column per runtime, then each runtime / runc. Only when
// the results have other runtimes (a file from an earlier such run is removed).
const rtTsv = path.join(DIR, 'summary-runtimes.tsv');
if (runtimeTables.length > 0) {
  const lines = [];
  for (const t of runtimeTables) {
    const others = t.cols.filter((c) => c !== 'isula');
    lines.push(['section', 'metric', ...t.cols.map(rtLabel), ...(t.cols.includes('isula') ? others.map((c) => `${c.slice('isula-'.length)}/runc`) : [])].join('\t'));
    for (const r of t.rows) lines.push([t.title, r.metric, ...t.cols.map((c) => tsvNum(r.v[c]?.med)), ...(t.cols.includes('isula') ? others.map((c) => tsvNum(ratio(r.v[c], r.v.isula))) : [])].join('\t'));
  }
  fs.writeFileSync(rtTsv, `${lines.join('\n')}\n`);
} else fs.rmSync(rtTsv, { force: true });
process.stdout.write(md);
console.error(`summary: ${sections.reduce((n, s) => n + s.rows.length, 0)} metrics in ${sections.length} sections${notes.length ? `, ${notes.length} notes` : ''}: ${path.join(DIR, 'summary.md')}, summary.tsv, summary.svg`);
