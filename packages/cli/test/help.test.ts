/**
 * Help for every command: `isula VERB --help` and `isula help VERB` show at
 * least one example, and each example is of its own command.
 */
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { test } from 'node:test';
import { promisify } from 'node:util';
import type { Command } from 'commander';
import { commandPath, EXAMPLES } from '../src/help-examples.js';
import { declareEverything } from '../src/lazy-declare.js';
import { buildProgram, neededCommand } from '../src/main.js';
import { ISULA } from './fake-daemon.js';

const run = promisify(execFile);

function allPaths(): string[] {
  const program = buildProgram(['node', 'isula', '__docs']);
  declareEverything(program);
  const paths: string[] = [];
  const visit = (cmd: Command): void => {
    const visible = cmd.createHelp().visibleCommands(cmd);
    for (const sub of cmd.commands) if (visible.includes(sub)) { paths.push(commandPath(sub)); visit(sub); }
  };
  visit(program);
  return paths;
}

/**
 * The stdout of `isula ARGS` for each ARGS, run by main.ts's run() (what the
 * binary runs) one after the other in one child process: ~110 separate
 * processes took 80 s on the loaded 2-core VM.
 */
async function helpOf(argsList: string[][], { wholeTree = false } = {}): Promise<string[]> {
  const main = new URL('../src/main.js', import.meta.url).href;
  const lazy = new URL('../src/lazy-declare.js', import.meta.url).href;
  // wholeTree: every command declared first, as before a call declared only its own.
  const script = `
    const { buildProgram, run: runOne } = await import(${JSON.stringify(main)});
    const { declareEverything } = await import(${JSON.stringify(lazy)});
    const run = !${JSON.stringify(wholeTree)} ? runOne : async (argv) => {
      const program = buildProgram(['node', 'isula', '__docs']);
      declareEverything(program);
      program.exitOverride();
      await program.parseAsync(argv).catch(() => {});
    };
    const results = [];
    const write = process.stdout.write.bind(process.stdout);
    // Commander exits by itself after the help of a command declared without exitOverride.
    process.exit = (code) => { throw new Error('exit ' + code); };
    process.stderr.write = () => true;
    for (const args of JSON.parse(process.argv[1])) {
      let text = '';
      process.stdout.write = (chunk) => { text += String(chunk); return true; };
      try { await run(['node', 'isula', ...args]); } finally { process.stdout.write = write; }
      results.push(text);
    }
    write(JSON.stringify(results));`;
  const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script, JSON.stringify(argsList)], { timeout: 120_000, maxBuffer: 64 << 20 });
  return JSON.parse(stdout) as string[];
}

test('every command has an example, and each example runs its own command', () => {
  const paths = allPaths();
  assert.ok(paths.includes('run') && paths.includes('exec') && paths.includes('network rm') && paths.includes('completion'));
  for (const p of ['', ...paths]) {
    const examples = EXAMPLES[p];
    assert.ok(examples !== undefined && examples.length > 0, `isula ${p} has no example`);
    for (const e of examples) assert.match(e, new RegExp(`(^|[^\\w-])isula ${p === '' ? '' : `${p}( |$)`}`), `example of "isula ${p}": ${e}`);
  }
  const stale = Object.keys(EXAMPLES).filter((p) => p !== '' && !paths.includes(p));
  assert.deepEqual(stale, [], 'examples of commands that do not exist');
});

test('isula VERB --help and isula help VERB end with the examples, for every command', { timeout: 600_000 }, async () => {
  const paths = allPaths();
  const asks = paths.flatMap((p) => {
    const words = p.split(' ');
    return [{ p, args: [...words, '--help'] }, { p, args: ['help', ...words] }];
  });
  const outputs = await helpOf(asks.map((a) => a.args));
  for (const [i, { p, args }] of asks.entries()) {
    const text = outputs[i] ?? '';
    assert.match(text, new RegExp(`^Usage: isula ${p.split(' ').map((w) => `${w}(\\|\\S+)?`).join(' ')} `, 'm'), `isula ${args.join(' ')} shows the usage of ${p}`);
    assert.ok(text.includes(`\nExamples:\n  $ ${EXAMPLES[p]?.[0] ?? '?'}\n`), `isula ${args.join(' ')} shows the examples:\n${text}`);
  }
});

test('a call declares only its command, and its help is what the whole tree gives', { timeout: 600_000 }, async () => {
  const asks = allPaths().map((p) => [...p.split(' '), '--help']);
  const [alone, whole] = await Promise.all([helpOf(asks), helpOf(asks, { wholeTree: true })]);
  for (const [i, args] of asks.entries()) assert.equal(alone[i], whole[i], `isula ${args.join(' ')}`);
  assert.ok(whole.every((h) => h.startsWith('Usage: isula ')));
});

test('the binary shows the examples for VERB --help and help GROUP VERB', async () => {
  for (const args of [['logs', '--help'], ['help', 'network', 'rm']]) {
    const { stdout } = await run(process.execPath, [ISULA, ...args]);
    assert.ok(stdout.includes(`\nExamples:\n  $ isula ${args[0] === 'help' ? args.slice(1).join(' ') : args[0]}`), stdout);
  }
});

test('the help of isula itself lists the commands and examples, not the hidden ones', async () => {
  const { stdout } = await run(process.execPath, [ISULA, '--help']);
  assert.match(stdout, /^ {2}completion <shell> /m);
  assert.match(stdout, /\nExamples:\n {2}\$ isula run --rm busybox echo hello\n/);
  assert.doesNotMatch(stdout, /__complete|__docs/);
});

test('what a call declares: its command, none for -v, everything for help and the unusual', () => {
  const needs = (...args: string[]) => neededCommand(['node', 'isula', ...args]);
  assert.deepEqual(needs('ps', '-a'), { only: 'ps' });
  assert.deepEqual(needs('-H', 'unix:///x.sock', 'network', 'ls'), { only: 'network' });
  assert.deepEqual(needs('--host=unix:///x.sock', 'rm', '-f', 'c'), { only: 'rm' });
  assert.deepEqual(needs('-Hunix:///x.sock', 'rm'), { only: 'rm' });
  assert.deepEqual(needs('-v'), { only: '' });
  assert.deepEqual(needs('--version'), { only: '' });
  for (const all of [[], ['help'], ['help', 'rm'], ['completion', 'bash'], ['__docs'], ['--help'], ['--bogus', 'ps']]) {
    assert.equal(needs(...all), 'all', all.join(' '));
  }
});

test('an unknown command is still matched against every command', async () => {
  const r = await run(process.execPath, [ISULA, 'rmx']).then(() => assert.fail('rmx ran'), (e: { code: number; stderr: string }) => e);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /unknown command 'rmx'\n\(Did you mean one of rm, rmi\?\)/);
  const help = await run(process.execPath, [ISULA, '--bogus', 'ps']).then(() => assert.fail('--bogus ran'), (e: { stderr: string }) => e);
  assert.match(help.stderr, /unknown option '--bogus'/);
  assert.match(help.stderr, /^ {2}volume /m, 'the whole list of commands after the error');
});

test('a reader that leaves early ends isula quietly, as SIGPIPE ends docker', async () => {
  const child = spawn(process.execPath, [ISULA, 'completion', 'bash'], { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout.destroy(); // the read end closed before isula writes: every write is EPIPE
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => { stderr += c.toString(); });
  const code = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
  assert.equal(stderr, '', 'no stack trace');
  assert.equal(code, 141);
});
