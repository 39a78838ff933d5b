// Start-up timing of command variants, interleaved: round r runs every variant
// once, in an order rotated by r, so a load spike on a shared machine lands on
// all of them alike (hyperfine runs one variant after the other).
//
//   node scripts/startup-bench.mjs [--runs 100] [--warmup 10] [--json FILE] \
//     'node -e 0' 'node dist/isula.cjs --version' ...
//
// Each variant is split on spaces (no shell: no sh start-up in the figures;
// name a launcher script itself to measure one), run with stdin from
// /dev/null and its output discarded. Prints, per variant, the median, the
// 10th and 90th percentiles and the mean in ms, the exit codes seen, and the
// median of its difference to the first variant taken round by round (paired:
// robust to load that drifts over the minutes a run takes).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';

function parseArgs(argv) {
  const o = { runs: 100, warmup: 10, json: undefined, variants: [] };
  for (let i = 0; i < argv.length; i += 1) {
    const a = argv[i];
    if (a === '--runs') o.runs = Number(argv[++i]);
    else if (a === '--warmup') o.warmup = Number(argv[++i]);
    else if (a === '--json') o.json = argv[++i];
    else o.variants.push(a);
  }
  if (o.variants.length === 0 || !(o.runs > 0) || !(o.warmup >= 0)) {
    throw new Error('usage: startup-bench.mjs [--runs N] [--warmup N] [--json FILE] COMMAND...');
  }
  return o;
}

/** Wall time of one run in ms, and its exit status. */
function once(cmd) {
  const [file, ...args] = cmd.split(' ').filter((s) => s !== '');
  const t0 = process.hrtime.bigint();
  const r = spawnSync(file, args, { stdio: 'ignore', timeout: 30_000 });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  return { ms, status: r.status ?? `signal ${r.signal}` };
}

const quantile = (sorted, q) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];

function main() {
  const o = parseArgs(process.argv.slice(2));
  const n = o.variants.length;
  const samples = o.variants.map(() => []);
  const codes = o.variants.map(() => new Set());
  for (let r = 0; r < o.warmup + o.runs; r += 1) {
    for (let k = 0; k < n; k += 1) {
      const i = (k + r) % n;
      const { ms, status } = once(o.variants[i]);
      codes[i].add(status);
      if (r >= o.warmup) samples[i].push(ms);
    }
  }
  const rows = o.variants.map((cmd, i) => {
    const s = [...samples[i]].sort((a, b) => a - b);
    const mean = s.reduce((a, b) => a + b, 0) / s.length;
    const diffs = samples[i].map((ms, r) => ms - (samples[0][r] ?? 0)).sort((a, b) => a - b);
    return {
      cmd, median: quantile(s, 0.5), p10: quantile(s, 0.1), p90: quantile(s, 0.9), mean, runs: s.length, exit: [...codes[i]],
      pairedDiff: { median: quantile(diffs, 0.5), p25: quantile(diffs, 0.25), p75: quantile(diffs, 0.75) },
    };
  });
  for (const r of rows) {
    const d = r.pairedDiff;
    process.stdout.write(`${r.median.toFixed(1).padStart(7)} ms median  (p10 ${r.p10.toFixed(1)}, p90 ${r.p90.toFixed(1)}, mean ${r.mean.toFixed(1)}; `
      + `vs first ${d.median >= 0 ? '+' : ''}${d.median.toFixed(1)} [${d.p25.toFixed(1)}, ${d.p75.toFixed(1)}]; exit ${r.exit.join('/')})  ${r.cmd}\n`);
  }
  if (o.json !== undefined) fs.writeFileSync(o.json, `${JSON.stringify({ date: new Date().toISOString(), runs: o.runs, rows }, null, 2)}\n`);
}

main();
