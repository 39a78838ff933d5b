/**
 * Fuzzing the CLI's argument parsing (fast-check): argv made of the CLI's own
 * verbs and flags (read off its commander definitions) mixed with odd values
 * and random words, run as a real `isula` process against the fake daemon.
 * Every run must end on its own with an exit code, and a failure must say
 * what is wrong in words: no stack trace, no JavaScript error leaking out
 * (TypeError, "is not a function", ...). FUZZ_RUNS sets the size, FUZZ_SEED
 * replays.
 *
 * Verbs that follow a stream until interrupted (events, stats, attach, logs)
 * are left out: they are meant to run forever. Every path a flag may name is
 * inside a temporary directory, so the fuzzer writes nothing elsewhere.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import type { Command } from 'commander';
import { buildProgram } from '../src/main.js';
import { startFakeDaemon, type FakeDaemon } from './fake-daemon.js';

const ISULA = fileURLToPath(new URL('../src/isula.js', import.meta.url));
const RUNS = Number(process.env['FUZZ_RUNS'] ?? 40); // one isula process per run
const params = { numRuns: RUNS, ...(process.env['FUZZ_SEED'] === undefined ? {} : { seed: Number(process.env['FUZZ_SEED']) }) };
// Verbs that wait by design; `wait` on the fake daemon waits for a run that never comes (a 15 s kill, seed 1813258455).
const STREAMING = new Set(['events', 'stats', 'attach', 'logs', 'help', 'wait']);
/** Docker's create/run flags (isula parses them itself, not through commander options). */
const RUN_FLAGS = ['-e', '-v', '-p', '--name', '-m', '--memory-swap', '--cpus', '--cpu-shares', '--restart', '--network', '-u', '-w', '--entrypoint', '--label', '-l', '--ulimit', '--device', '--cap-add', '--cap-drop', '--tmpfs', '--mount', '--health-cmd', '--health-interval', '--log-driver', '--log-opt', '--runtime', '--shm-size', '--read-only', '--privileged', '-t', '-i', '-d', '--rm', '--env-file', '--add-host', '--dns', '--hostname', '--pids-limit', '--security-opt', '--sysctl', '--init', '--stop-signal', '--stop-timeout', '--userns', '--hook-spec', '--system-container', '--external-rootfs', '-P', '--expose', '--ip', '--mac-address', '--oom-score-adj'];

let daemon: FakeDaemon;
let tmp: string;
before(async () => {
  daemon = await startFakeDaemon({});
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'isula-fuzz-args-'));
});
after(async () => {
  await daemon.close();
  await fs.rm(tmp, { recursive: true, force: true });
});

interface Verb { path: string[]; flags: string[] }

function verbs(): Verb[] {
  const program = buildProgram(['node', 'isula', 'help']);
  const out: Verb[] = [];
  const walk = (c: Command, prefix: string[]) => {
    for (const sub of c.commands) {
      const name = sub.name();
      if (STREAMING.has(name)) continue;
      const p = [...prefix, name];
      const flags = sub.options.flatMap((o) => [o.long, o.short].filter((f): f is string => f !== undefined));
      if (name === 'run' || name === 'create') flags.push(...RUN_FLAGS);
      out.push({ path: p, flags });
      walk(sub, p);
    }
  };
  walk(program, []);
  return out;
}

/** Values with the shapes flags and arguments take, and the shapes that break parsers. */
function values(dir: string) {
  return fc.oneof(
    fc.constantFrom('', 'x', '0', '-1', '1.5', '99999999999999999999', '1g', '-5m', 'a=b', '=', '=x', 'a:b:c', ':', '::', 'busybox', 'busybox:latest', 'nosuch', '../..',
      '{{.ID}}', '{{', '{{.Nope}}', '{{json .}}', 'table {{.Names}}', 'json', 'label=a', 'status=running', 'dangling=true', 'until=1h', 'bogus=1',
      '8080:80', '127.0.0.1:80:80/udp', '80-70:1', 'host', 'none', 'container:x', 'on-failure:-3', 'always', 'nofile=1:2', 'nofile=2:1', 'cpu=x',
      'type=bind,src=/x,dst=/y', 'type=nope', 'constructor=x', '__proto__=x', 'toString=1', 'valueOf', `${dir}/f`, `${dir}/missing/f`, `${dir}:/d:ro`, 'vol:/data:zz', 'SIGKILL', 'SIGNOPE', '9', '--', '-', '--x', '-zz'),
    fc.string({ maxLength: 12 }).filter((s) => !s.includes('\0')),
  );
}

const BAD_OUTPUT = /TypeError|ReferenceError|RangeError|SyntaxError|is not a function|Cannot read propert|is not iterable|undefined is not|Maximum call stack|\n\s+at .+[.:]\d+:\d+\)?\n|ERR_[A-Z_]+\]/;

function runIsula(args: string[]): Promise<{ code: number | null; signal: string | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [ISULA, '-H', daemon.host, ...args], { stdio: ['ignore', 'pipe', 'pipe'], cwd: tmp, timeout: 15_000, killSignal: 'SIGKILL' });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => { stdout += c.toString(); });
    child.stderr.on('data', (c: Buffer) => { stderr += c.toString(); });
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

test('any argv of isula ends with a code and, on failure, a message in words', { timeout: 900_000 }, async () => {
  const all = verbs();
  assert.ok(all.length > 30, `only ${all.length} verbs found`);
  const argv = fc.constantFrom(...all).chain((v) => fc.tuple(
    fc.constant(v.path),
    fc.array(fc.oneof(
      fc.tuple(fc.constantFrom(...(v.flags.length > 0 ? v.flags : ['--help'])), values(tmp)).map(([f, x]) => [f, x]),
      fc.constantFrom(...(v.flags.length > 0 ? v.flags : ['--help'])).map((f) => [f]),
      values(tmp).map((x) => [x]),
    ), { maxLength: 5 }),
  )).map(([p, rest]) => [...p, ...rest.flat()]);

  let failures = 0;
  await fc.assert(fc.asyncProperty(argv, async (args) => {
    const r = await runIsula(args);
    const shown = `isula ${args.map((a) => JSON.stringify(a)).join(' ')}`;
    assert.equal(r.signal, null, `${shown}: killed by ${r.signal} (hung past 15 s?)`);
    assert.ok(Number.isInteger(r.code), `${shown}: no exit code`);
    assert.doesNotMatch(r.stderr, BAD_OUTPUT, `${shown}: an internal error reached the user:\n${r.stderr}`);
    assert.doesNotMatch(r.stdout, BAD_OUTPUT, `${shown}: an internal error reached the user:\n${r.stdout}`);
    if (r.code !== 0) {
      failures++;
      assert.ok(r.stderr.trim().length > 0 || r.stdout.trim().length > 0, `${shown}: exit ${r.code} without a word`);
    }
  }), {
    ...params,
    // Regressions the fuzzer found, replayed on every run.
    examples: [
      [['load', '--input', '--input']], // a file that does not exist, daemon down: an unhandled stream error
      [['import', '/nonexistent/archive.tar']],
      [['save', '', '--output', 'vol:/data:zz']], // an output in a missing directory: an unhandled stream error (seed 52010)
    ],
  });
  process.stderr.write(`# cli fuzz: ${RUNS} runs, ${failures} refused with a message\n`);
});

test('filters named like Object.prototype members reach the daemon as filters (found by review after the config fuzzer)', async () => {
  for (const args of [['ps', '--filter', 'constructor=x'], ['images', '--filter', '__proto__=x'], ['ps', '-a', '--filter', 'toString=1']]) {
    const r = await runIsula(args);
    assert.doesNotMatch(r.stderr, BAD_OUTPUT, r.stderr);
  }
});

test('save -o into a missing directory is refused in docker\'s words before the daemon is asked, and writes nothing (found by the fuzzer)', async () => {
  // Only this call's requests: the fuzzer's earlier calls (`image save X` among them) share the log.
  const logged = daemon.log.length;
  const r = await runIsula(['save', '-o', '/nonexistent/dir/x.tar', 'busybox']);
  assert.equal(r.code, 1);
  assert.equal(r.stderr, 'isula: failed to save image: invalid output path: directory "/nonexistent/dir" does not exist\n');
  assert.deepEqual(daemon.log.slice(logged).filter((l) => l.includes('/images/get')), [], 'the daemon was not asked');
  // With the daemon down, the output was opened and nothing is left of it.
  const dir = await fs.mkdtemp(path.join(tmp, 'save-'));
  const down = await runIsula(['-H', 'unix:///nonexistent/isulad.sock', 'save', '-o', path.join(dir, 'out.tar'), 'busybox']);
  assert.equal(down.code, 1);
  assert.match(down.stderr, /Cannot connect to the iSulad daemon/);
  assert.deepEqual(await fs.readdir(dir), []);
});
