/**
 * Help for every command: `isula VERB --help` and `isula help VERB` show at
 * least one example, and each example is of its own command.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { test } from 'node:test';
import { promisify } from 'node:util';
import type { Command } from 'commander';
import { commandPath, EXAMPLES } from '../src/help-examples.js';
import { declareEverything } from '../src/lazy-declare.js';
import { buildProgram } from '../src/main.js';
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
async function helpOf(argsList: string[][]): Promise<string[]> {
  const main = new URL('../src/main.js', import.meta.url).href;
  const script = `
    const { run } = await import(${JSON.stringify(main)});
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
