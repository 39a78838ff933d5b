#!/usr/bin/env node
// Stream operations as a user times them: `exec CTR true`, `logs CTR` of a
// container that printed 1000 lines, and `logs --tail 10`, each one CLI call
// timed from spawn to exit, N times serially, on one running container per
// engine (isula on runc, Debian's podman and docker.io; see engines.mjs).
// Prints a markdown table of the median (and p90) in ms.
//
//   bench/streams.sh [--engines isula,podman,docker] [--runs 20]
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { COMMON_OPTIONS, call, forEachEngine, makeEngines, median, p90, rmForce } from './engines.mjs';

const { values: opts } = parseArgs({
  options: {
    engines: { type: 'string', default: 'isula,podman,docker' },
    runs: { type: 'string', default: '20' },
    ...COMMON_OPTIONS,
  },
});
const RUNS = Number(opts.runs);
const ARCHIVE = path.join(opts.images, 'busybox.docker.tar');
const TMP = fs.mkdtempSync(path.join(os.tmpdir(), 'streams-'));
const ENGINES = makeEngines(TMP);
const OPS = [
  ['exec true', ['exec', 'st', 'true']],
  ['exec -i cat (1 line)', null],
  ['logs (1000 lines)', ['logs', 'st']],
  ['logs --tail 10', ['logs', '--tail', '10', 'st']],
];

const results = await forEachEngine(ENGINES, opts.engines.split(','), ARCHIVE, async (engine) => {
  await call(engine, ['run', '-d', ...engine.runArgs, '--name', 'st', 'busybox', 'sh', '-c', 'i=0; while [ $i -lt 1000 ]; do echo line $i; i=$((i+1)); done; exec sleep 1000']);
  // The container has printed its lines once `logs --tail 1` shows the last.
  for (let i = 0; i < 100 && !(await call(engine, ['logs', '--tail', '1', 'st'])).out.includes('line 999'); i++) await new Promise((r) => setTimeout(r, 100));
  const times = {};
  for (const [op, args] of OPS) {
    times[op] = [];
    for (let i = 0; i < RUNS + 1; i++) {
      const { ms, out } = args === null ? await execWithInput(engine, 'hello\n') : await call(engine, args);
      if (op.startsWith('logs (') && out.split('\n').length < 1000) throw new Error(`logs returned ${out.length} bytes`);
      if (i > 0) times[op].push(ms); // The first call warms caches: not counted.
    }
  }
  await call(engine, rmForce(engine, 'st'));
  return times;
});

/** `exec -i st cat` with one line on stdin, timed from spawn to exit. */
async function execWithInput(engine, input) {
  const [cmd, full] = engine.cli(['exec', '-i', 'st', 'cat']);
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const p = spawn(cmd, full, { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (c) => { out += c; });
    const timer = setTimeout(() => p.kill('SIGKILL'), 30_000);
    p.on('close', (code) => {
      clearTimeout(timer);
      if (code !== 0 || out !== input) reject(new Error(`${cmd} exec -i → ${code}, ${JSON.stringify(out)}`));
      else resolve({ ms: Number(process.hrtime.bigint() - t0) / 1e6, out });
    });
    p.stdin.end(input);
  });
}

const engines = Object.keys(results);
let md = `streams on ${os.hostname()} (${os.cpus().length} cores), ${new Date().toISOString()}: median ms per CLI call (p90), ${RUNS} runs\n\n`;
md += `| operation | ${engines.join(' | ')} |\n|---|${engines.map(() => '---:').join('|')}|\n`;
for (const [op] of OPS) md += `| ${op} | ${engines.map((e) => `${median(results[e][op]).toFixed(0)} (${p90(results[e][op]).toFixed(0)})`).join(' | ')} |\n`;
fs.mkdirSync(opts.results, { recursive: true });
fs.writeFileSync(path.join(opts.results, 'streams.md'), md);
fs.writeFileSync(path.join(opts.results, 'streams.json'), JSON.stringify(results));
fs.rmSync(TMP, { recursive: true, force: true });
process.stdout.write(md);
