/**
 * `isula completion bash`: the script is run by a real bash, which completes
 * lines as a user's TAB would (COMP_LINE and COMP_POINT, which bash sets for
 * a `complete -F` function, then the function, then COMPREPLY). Names come
 * from the fake daemon here; test/e2e/completion.test.ts completes them
 * from a real one.
 */
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import type { Command } from 'commander';
import { buildProgram } from '../src/main.js';
import { commandPath } from '../src/help-examples.js';
import { declareEverything } from '../src/lazy-declare.js';
import { ISULA, startFakeDaemon } from './fake-daemon.js';

const run = promisify(execFile);

/** A folder with the script and an `isula` on PATH, as a user has after `source <(isula completion bash)`. */
async function setup(t: { after(fn: () => Promise<void>): void }): Promise<{ dir: string; script: string; env: NodeJS.ProcessEnv }> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'isula-completion-'));
  t.after(() => fs.rm(dir, { recursive: true, force: true }));
  const bin = path.join(dir, 'bin');
  await fs.mkdir(bin);
  await fs.writeFile(path.join(bin, 'isula'), `#!/bin/sh\nexec '${process.execPath}' '${ISULA}' "$@"\n`, { mode: 0o755 });
  const script = path.join(dir, 'isula.bash');
  const { stdout } = await run(process.execPath, [ISULA, 'completion', 'bash']);
  await fs.writeFile(script, stdout);
  const env: NodeJS.ProcessEnv = { ...process.env, PATH: `${bin}:${process.env['PATH'] ?? '/usr/bin:/bin'}` };
  delete env['ISULAD_HOST'];
  return { dir, script, env };
}

/**
 * Completes each line (the cursor at its end) in one bash: one answer, the
 * candidates sorted, per line.
 */
async function complete(script: string, lines: readonly string[], env: NodeJS.ProcessEnv): Promise<string[][]> {
  const driver = `source '${script}'
while IFS= read -r line; do
  COMP_LINE=$line COMP_POINT=\${#line}
  read -ra COMP_WORDS <<< "$line"; [[ $line == *' ' ]] && COMP_WORDS+=('')
  COMP_CWORD=$(( \${#COMP_WORDS[@]} - 1 ))
  COMPREPLY=()
  _isula isula "\${COMP_WORDS[COMP_CWORD]}" "\${COMP_WORDS[COMP_CWORD-1]}"
  printf '%s\\n' "$(printf '%s\\n' "\${COMPREPLY[@]}" | LC_ALL=C sort | tr '\\n' ' ')"
done`;
  const child = spawn('bash', ['-c', driver], { env, stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => { stdout += c.toString(); });
  child.stderr.on('data', (c: Buffer) => { stderr += c.toString(); });
  child.stdin.end(lines.map((l) => `${l}\n`).join(''));
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  assert.equal(code, 0, stderr);
  assert.equal(stderr, '', 'the completion function prints no error');
  const answers = stdout.split('\n').slice(0, -1).map((l) => l.split(' ').filter((w) => w !== ''));
  assert.equal(answers.length, lines.length, stdout);
  return answers;
}

/** Every visible command of the real tree, lazy parts declared. */
function allCommands(): Command[] {
  const program = buildProgram(['node', 'isula', 'completion', 'bash']);
  declareEverything(program);
  const out: Command[] = [];
  const visit = (cmd: Command): void => {
    const visible = cmd.createHelp().visibleCommands(cmd);
    for (const sub of cmd.commands) if (visible.includes(sub)) { out.push(sub); visit(sub); }
  };
  visit(program);
  return out;
}

test('bash completes the verbs, hidden ones left out, and a prefix to its verb', async (t) => {
  const { script, env } = await setup(t);
  const [verbs, ru, st, help] = await complete(script, ['isula ', 'isula ru', 'isula st', 'isula help ne'], env);
  const expected = allCommands().filter((c) => c.parent?.parent == null).map((c) => c.name());
  assert.deepEqual(verbs, [...expected, 'help'].sort());
  assert.ok(!verbs?.includes('__complete') && !verbs?.includes('__docs'));
  assert.ok(verbs?.includes('exec') && verbs.includes('completion'), 'the lazily declared stream group is there');
  assert.deepEqual(ru, ['run']);
  assert.deepEqual(st, ['start', 'stats', 'stop']);
  assert.deepEqual(help, ['network']);
});

test('bash completes every flag of every command, the lazily declared ones included', async (t) => {
  const { script, env } = await setup(t);
  const commands = allCommands();
  const answers = await complete(script, commands.map((c) => `isula ${commandPath(c)} -`), env);
  for (const [i, cmd] of commands.entries()) {
    // What `isula PATH --help` lists, read from the help text itself.
    const options = cmd.helpInformation().split(/\nOptions:\n/)[1] ?? '';
    const fromHelp = [...options.matchAll(/^ {2}(?:(-[a-zA-Z]), )?(--[a-z][a-z0-9-]*)|^ {2}(-[a-zA-Z])\s/gm)].flatMap((m) => [m[1], m[2], m[3]]).filter((f): f is string => f !== undefined);
    assert.deepEqual(answers[i], [...new Set(fromHelp)].sort(), `isula ${commandPath(cmd)} -<TAB>`);
  }
  const [run, exec, logs] = await complete(script, ['isula run --ne', 'isula exec --env', 'isula logs --t'], env);
  assert.deepEqual(run, ['--network']);
  assert.deepEqual(exec, ['--env', '--env-file']);
  assert.deepEqual(logs, ['--tail', '--timestamps']);
});

test('bash completes subcommands and aliases of the lazily declared groups', async (t) => {
  const { script, env } = await setup(t);
  const [network, volumeL, listFlags, containerL] = await complete(script, ['isula network ', 'isula volume l', 'isula network list --q', 'isula container l'], env);
  assert.deepEqual(network, ['connect', 'create', 'disconnect', 'inspect', 'list', 'ls', 'prune', 'remove', 'rm']);
  assert.deepEqual(volumeL, ['list', 'ls']);
  assert.deepEqual(listFlags, ['--quiet']);
  assert.deepEqual(containerL, ['list', 'logs', 'ls']);
});

test("bash completes docker's management spellings as the commands they run", async (t) => {
  const { script, env } = await setup(t);
  const [imageR, containerRmFlags, imageRmFlags, containerStopT] = await complete(script, ['isula image r', 'isula container rm --', 'isula image remove --', 'isula container stop --ti'], env);
  assert.deepEqual(imageR, ['remove', 'rm', 'rmi']);
  assert.deepEqual(containerRmFlags, ['--force', '--help', '--volumes']);
  assert.deepEqual(imageRmFlags, ['--force', '--help']);
  assert.deepEqual(containerStopT, ['--time']);
});

test('bash completes option values: choices, files, and nothing for a free value', async (t) => {
  const { dir, script, env } = await setup(t);
  await fs.writeFile(path.join(dir, 'busybox.tar'), '');
  const [type, shell, format, file, name, afterHost, runCmd] = await complete(script, [
    'isula inspect --type ',
    'isula completion ',
    'isula version -f ',
    `isula load -i ${dir}/busy`,
    'isula run --name ',
    'isula -H unix:///nowhere.sock ru',
    'isula run -d busybox --',
  ], env);
  assert.deepEqual(type, ['container', 'image', 'network', 'volume']);
  assert.deepEqual(shell, ['bash', 'zsh']);
  assert.deepEqual(format, ['json']);
  assert.deepEqual(file, [`${dir}/busybox.tar`]);
  assert.deepEqual(name, []);
  assert.deepEqual(afterHost, ['run'], 'the value of -H is not taken for a verb');
  assert.deepEqual(runCmd, [], "words after run's image belong to the container's command");
});

test('bash completes names from the daemon of -H, and nothing when it is unreachable', async (t) => {
  const { script, env } = await setup(t);
  const daemon = await startFakeDaemon({
    list: [{ Id: 'a1b2c3d4e5f6'.padEnd(64, '0'), Names: ['/web'] }, { Id: 'f6e5d4c3b2a1'.padEnd(64, '0'), Names: ['/db'] }],
    networks: [{ Name: 'backend', Id: 'b'.repeat(64), Driver: 'bridge' }],
    volumes: [{ Name: 'notes', Driver: 'local', Mountpoint: '/x', Scope: 'local', Labels: {} }],
  });
  t.after(() => daemon.close());
  const [stop, netRm, volRm, runNet, none] = await complete(script, [
    `isula -H ${daemon.host} stop `,
    `isula -H ${daemon.host} network rm `,
    `isula --host=${daemon.host} volume rm n`,
    `isula -H ${daemon.host} run --network `,
    'isula -H unix:///nowhere.sock stop ',
  ], env);
  assert.deepEqual(stop, ['a1b2c3d4e5f6', 'db', 'f6e5d4c3b2a1', 'web']);
  assert.deepEqual(netRm, ['backend']);
  assert.deepEqual(volRm, ['notes']);
  assert.deepEqual(runNet, ['backend']);
  assert.deepEqual(none, []);
});

test('__complete is silent and succeeds when the daemon is unreachable', async () => {
  const r = await run(process.execPath, [ISULA, '-H', 'unix:///nowhere/isulad.sock', '__complete', 'containers', 'images']);
  assert.equal(r.stdout, '');
  assert.equal(r.stderr, '');
});

test('completion refuses a shell it does not know, as a usage error', async () => {
  const r = await run(process.execPath, [ISULA, 'completion', 'fish']).then(() => ({ code: 0 }), (e: { code: number; stderr: string }) => e);
  assert.equal(r.code, 1);
});

test('the zsh script loads bashcompinit and the same function', async () => {
  const { stdout } = await run(process.execPath, [ISULA, 'completion', 'zsh']);
  assert.match(stdout, /^#compdef isula\n/);
  assert.match(stdout, /bashcompinit/);
  assert.match(stdout, /^_isula\(\) \{$/m);
  assert.match(stdout, /^complete -F _isula isula$/m);
});

const zsh = await run('sh', ['-c', 'command -v zsh']).then((r) => r.stdout.trim(), () => '');
test('the zsh script parses, and its function completes under zsh', { skip: zsh === '' && process.env['CI'] !== 'true' ? 'zsh is not installed (scripts/setup.sh test installs it)' : false }, async (t) => {
  const { dir, env } = await setup(t);
  const { stdout } = await run(process.execPath, [ISULA, 'completion', 'zsh']);
  const script = path.join(dir, '_isula');
  await fs.writeFile(script, stdout);
  await run(zsh, ['-n', script]);
  const daemon = await startFakeDaemon({ list: [{ Id: 'a1b2c3d4e5f6'.padEnd(64, '0'), Names: ['/web'] }] });
  t.after(() => daemon.close());
  // As zsh's _bash_complete calls it (COMP_LINE, COMP_POINT), then the prefix match compadd does
  // (zsh's compgen leaves the matching to compadd).
  const driver = `autoload -U compinit && compinit -u -D
source '${script}'
for line in 'isula ru' 'isula network l' 'isula run --netw' 'isula -H ${daemon.host} stop ' 'isula inspect --type '; do
  COMP_LINE=$line COMP_POINT=\${#line}
  COMPREPLY=()
  _isula isula
  cur=\${line##* }
  matched=( \${(M)COMPREPLY:#$cur*} )
  print -r -- \${(j: :)\${(o)matched}}
done`;
  const r = await run(zsh, ['-f', '-c', driver], { env });
  assert.deepEqual(r.stdout.split('\n').slice(0, -1), ['run', 'list ls', '--network', 'a1b2c3d4e5f6 web', 'container image network volume']);
});
