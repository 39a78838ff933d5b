#!/usr/bin/env node
// Client start-up as hyperfine times it (no shell: -N): per engine, `version`, `ps -a` with
// 10 created containers and `inspect` of one of them, each one CLI call, from exec to
// exit; and `node -e 0` on the Node the isula CLI runs on (the floor under every isula
// call). Engines: isula (this checkout: `node packages/cli/dist/isula.cjs -H unix://SOCK`),
// Debian's podman (no daemon: every call opens its stores itself) and Debian's docker.io,
// each on its own temporary roots (engines.mjs). Prints a markdown table of the median
// (mean ± stddev) in ms.
//
//   bench/startup.sh [--engines isula,podman,docker] [--warmup 3] [--runs 20] [--containers 10]
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { COMMON_OPTIONS, boundTeardowns, call, exec, forEachEngine, makeEngines, rmForce } from './engines.mjs';

const { values: opts } = parseArgs({
  options: {
    engines: { type: 'string', default: 'isula,podman,docker' },
    warmup: { type: 'string', default: '3' },
    runs: { type: 'string', default: '20' },
    containers: { type: 'string', default: '10' },
    hyperfine: { type: 'string', default: 'hyperfine' },
    ...COMMON_OPTIONS,
  },
});
const WARMUP = Number(opts.warmup);
const RUNS = Number(opts.runs);
const CONTAINERS = Number(opts.containers);
if (!(WARMUP >= 0 && RUNS >= 2 && CONTAINERS >= 1)) throw new Error('startup: needs --warmup ≥ 0, --runs ≥ 2, --containers ≥ 1');
const ARCHIVE = path.join(opts.images, 'busybox.docker.tar');
const NODE = path.join(process.env.ISULA_PREFIX ?? '/usr/local/lib/isula', 'node/bin/node');
const OPS = ['version', 'ps -a', 'inspect'];

// hyperfine -N splits each command line into words itself (shell-words): quote what needs it.
const quote = (a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replaceAll("'", "'\\''")}'`);

/** hyperfine over `commands` ({name: [cmd, args]}); returns {name: {median_ms, mean_ms, stddev_ms, min_ms, max_ms}}. */
async function hyperfine(commands, file) {
  const names = Object.keys(commands);
  const args = ['-N', '--warmup', String(WARMUP), '--runs', String(RUNS), '--style', 'basic', '--export-json', file];
  for (const n of names) {
    const [cmd, full] = commands[n];
    args.push('--command-name', n, [cmd, ...full].map(quote).join(' '));
  }
  // Bounded: 60 s per run at worst.
  const { out } = await exec(opts.hyperfine, args, { timeoutMs: 60_000 * (WARMUP + RUNS) * names.length });
  process.stderr.write(out);
  const { results } = JSON.parse(fs.readFileSync(file, 'utf8'));
  const ms = (s) => Math.round(s * 1e5) / 100;
  return Object.fromEntries(results.map((r, i) => [names[i], {
    median_ms: ms(r.median), mean_ms: ms(r.mean), stddev_ms: ms(r.stddev), min_ms: ms(r.min), max_ms: ms(r.max),
  }]));
}

const TMP = fs.mkdtempSync(path.join(os.tmpdir(), 'startup-'));
const ENGINES = boundTeardowns(makeEngines(TMP));
let results;
try {
  const { out: version } = await exec(opts.hyperfine, ['--version'], { timeoutMs: 10_000 });
  console.error(`bench: ${version.trim()}, -N (no shell)`);
  results = await forEachEngine(ENGINES, opts.engines.split(','), ARCHIVE, async (engine) => {
    const name = Object.keys(ENGINES).find((n) => ENGINES[n] === engine);
    const names = Array.from({ length: CONTAINERS }, (_, i) => `su${i}`);
    try {
      for (const nm of names) await call(engine, ['create', ...engine.runArgs, '--name', nm, 'busybox', 'sleep', '1000']);
      // The commands fail the bench if they fail (hyperfine stops at a non-zero exit): check the output once.
      const { out } = await call(engine, ['ps', '-a']);
      if (names.some((nm) => !out.includes(nm))) throw new Error(`${name} ps -a does not list all of ${names.join(' ')}:\n${out}`);
      return await hyperfine({
        version: engine.cli(['version']),
        'ps -a': engine.cli(['ps', '-a']),
        inspect: engine.cli(['inspect', names[0]]),
      }, path.join(TMP, `${name}.json`));
    } finally {
      await call(engine, rmForce(engine, ...names)).catch((e) => console.error(`startup: ${name} rm -f: ${e.message}`));
    }
  });
  console.error('==> node -e 0');
  results.node_e0 = (await hyperfine({ 'node -e 0': [NODE, ['-e', '0']] }, path.join(TMP, 'node.json')))['node -e 0'];
} finally {
  fs.rmSync(TMP, { recursive: true, force: true });
}

const engines = Object.keys(results).filter((e) => e !== 'node_e0');
const cell = (r) => `${r.median_ms.toFixed(1)} (${r.mean_ms.toFixed(1)} ± ${r.stddev_ms.toFixed(1)})`;
let md = `startup on ${os.hostname()} (${os.cpus().length} cores), ${new Date().toISOString()}: hyperfine -N, ${WARMUP} warm-up + ${RUNS} runs, median ms (mean ± stddev); \`ps -a\` lists ${CONTAINERS} created containers\n\n`;
md += `| command | ${engines.join(' | ')} |\n|---|${engines.map(() => '---:').join('|')}|\n`;
for (const op of OPS) md += `| ${op} | ${engines.map((e) => cell(results[e][op])).join(' | ')} |\n`;
md += `\n\`node -e 0\` (${NODE}, ${process.version}): ${cell(results.node_e0)}\n`;
fs.mkdirSync(opts.results, { recursive: true });
fs.writeFileSync(path.join(opts.results, 'startup.md'), md);
fs.writeFileSync(path.join(opts.results, 'startup.json'), JSON.stringify(results));
process.stdout.write(md);
