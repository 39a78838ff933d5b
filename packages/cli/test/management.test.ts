/**
 * docker's management spellings (`isula container rm`, `isula image rm`):
 * each sends the daemon exactly what the top-level command sends and ends
 * the same way; `container inspect` and `image inspect` look at one kind only.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { test } from 'node:test';
import { goBoolValues } from '../src/main.js';
import { managementAlias } from '../src/management.js';
import { UsageError } from '../src/usage-error.js';
import { ISULA, startFakeDaemon } from './fake-daemon.js';

async function isula(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string; log: string[] }> {
  const daemon = await startFakeDaemon({ missing: ['gone'] });
  try {
    const child = spawn(process.execPath, [ISULA, '-H', daemon.host, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => { stdout += c.toString(); });
    child.stderr.on('data', (c: Buffer) => { stderr += c.toString(); });
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    return { code, stdout, stderr, log: daemon.log };
  } finally {
    await daemon.close();
  }
}

test('a management spelling becomes the top-level command, global options kept', () => {
  assert.deepEqual(managementAlias(['node', 'isula', '-H', 'unix:///x.sock', 'container', 'rm', '-f', 'web']), ['node', 'isula', '-H', 'unix:///x.sock', 'rm', '-f', 'web']);
  assert.deepEqual(managementAlias(['node', 'isula', 'image', 'remove', 'busybox']), ['node', 'isula', 'rmi', 'busybox']);
  assert.deepEqual(managementAlias(['node', 'isula', 'image', 'inspect', 'busybox']), ['node', 'isula', 'inspect', '--type=image', 'busybox']);
  // What the group declares itself, other words and other commands are left alone.
  for (const argv of [['node', 'isula', 'container', 'ls', '-a'], ['node', 'isula', 'image', 'prune', '-f'], ['node', 'isula', 'container', 'bogus'], ['node', 'isula', 'rm', 'container']]) {
    assert.deepEqual(managementAlias(argv), argv);
  }
  assert.throws(() => managementAlias(['node', 'isula', 'container', 'inspect', '--type', 'image', 'web']), (e: unknown) => e instanceof UsageError && /unknown flag: --type\nSee 'isula container inspect --help'/.test(e.message));
});

test('each management spelling sends what the top-level command sends and ends the same', async () => {
  const pairs: [string[], string[]][] = [
    [['container', 'rm', '-f', 'web'], ['rm', '-f', 'web']],
    [['container', 'remove', 'gone'], ['rm', 'gone']],
    [['container', 'stop', '-t', '3', 'web'], ['stop', '-t', '3', 'web']],
    [['container', 'ps', '-a', '-q'], ['ps', '-a', '-q']],
    [['image', 'rm', 'busybox'], ['rmi', 'busybox']],
    [['image', 'tag', 'busybox', 'mine:1'], ['tag', 'busybox', 'mine:1']],
    [['container', 'inspect', 'gone'], ['inspect', '--type', 'container', 'gone']],
    [['image', 'inspect', 'web'], ['inspect', '--type', 'image', 'web']],
    [['container', 'rm'], ['rm']],
  ];
  for (const [spelled, top] of pairs) {
    const [a, b] = [await isula(spelled), await isula(top)];
    assert.deepEqual(a.log, b.log, `isula ${spelled.join(' ')}: the requests`);
    assert.equal(a.code, b.code, `isula ${spelled.join(' ')}: the exit code`);
    assert.equal(a.stdout, b.stdout, `isula ${spelled.join(' ')}: stdout`);
    assert.equal(a.stderr, b.stderr, `isula ${spelled.join(' ')}: stderr`);
  }
  // Not the fallback to images that `isula inspect` has: one kind, one request.
  const c = await isula(['container', 'inspect', 'gone']);
  assert.deepEqual(c.log, ['GET /containers/gone/json']);
  assert.equal(c.code, 1);
  assert.match(c.stderr, /No such container: gone/);
});

test('the group help lists the spellings; --type on a one-kind inspect is a usage error that sends nothing', async () => {
  const help = await isula(['container', '--help']);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /^ {2}rm += isula rm$/m);
  assert.match(help.stdout, /^ {2}inspect += isula inspect --type=container$/m);
  const imageHelp = await isula(['help', 'image']);
  assert.match(imageHelp.stdout, /^ {2}rm += isula rmi$/m);
  const sub = await isula(['container', 'rm', '--help']);
  assert.match(sub.stdout, /^Usage: isula rm \[options\] <container\.\.\.>/);
  const bad = await isula(['image', 'inspect', '--type=container', 'busybox']);
  assert.equal(bad.code, 1);
  assert.equal(bad.stderr, "isula: unknown flag: --type\nSee 'isula image inspect --help'.\n");
  assert.deepEqual(bad.log, []);
});

test('inspect without --type looks for a container, an image, a network, then a volume, as docker does', async () => {
  const daemon = await startFakeDaemon({
    missing: ['notes', 'backend', 'nothing'],
    networks: [{ Name: 'backend', Id: 'b'.repeat(64), Driver: 'bridge' }],
    volumes: [{ Name: 'notes', Driver: 'local', Mountpoint: '/x', Scope: 'local', Labels: {} }],
  });
  try {
    const run = (args: string[]) => new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      const child = spawn(process.execPath, [ISULA, '-H', daemon.host, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (c: Buffer) => { stdout += c.toString(); });
      child.stderr.on('data', (c: Buffer) => { stderr += c.toString(); });
      child.on('close', (code) => resolve({ code, stdout, stderr }));
    });
    const r = await run(['inspect', '-f', '{{.Name}}', 'backend', 'notes']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'backend\nnotes\n');
    assert.deepEqual(daemon.log, [
      'GET /containers/backend/json', 'GET /images/backend/json', 'GET /networks/backend',
      'GET /containers/notes/json', 'GET /images/notes/json', 'GET /networks/notes', 'GET /volumes/notes',
    ]);
    const none = await run(['inspect', 'nothing']);
    assert.equal(none.code, 1);
    assert.equal(none.stderr, 'Error: No such object: nothing\n');
    const typed = await run(['inspect', '--type', 'volume', 'backend']);
    assert.equal(typed.code, 1);
    assert.equal(typed.stderr, 'Error: No such volume: backend\n');
  } finally {
    await daemon.close();
  }
});

test("Go bool flags with a value (commit --pause=false, history --human=false, attach --sig-proxy=false) become commander's booleans, and take no word after them", async () => {
  assert.deepEqual(goBoolValues(['node', 'isula', 'commit', '--pause=false', 'c']), ['node', 'isula', 'commit', '--no-pause', 'c']);
  assert.deepEqual(goBoolValues(['node', 'isula', '-H', 'unix:///x', 'commit', '-p=1', 'c']), ['node', 'isula', '-H', 'unix:///x', 'commit', '--pause', 'c']);
  assert.deepEqual(goBoolValues(['node', 'isula', 'history', '--human=F', 'busybox']), ['node', 'isula', 'history', '--no-human', 'busybox']);
  assert.deepEqual(goBoolValues(['node', 'isula', 'attach', '--sig-proxy=false', 'web']), ['node', 'isula', 'attach', '--no-sig-proxy', 'web']);
  // Another command's words are left alone, a container's own arguments among them.
  assert.deepEqual(goBoolValues(['node', 'isula', 'run', 'busybox', 'app', '--pause=false']), ['node', 'isula', 'run', 'busybox', 'app', '--pause=false']);
  assert.throws(() => goBoolValues(['node', 'isula', 'commit', '--pause=maybe', 'c']), /invalid argument "maybe" for "--pause" flag: strconv.ParseBool/);
  // -p before the container: a plain flag, so the container is still the container.
  const daemon = await startFakeDaemon({});
  try {
    const child = spawn(process.execPath, [ISULA, '-H', daemon.host, 'commit', '-p', 'web', 'repo:1'], { stdio: ['ignore', 'pipe', 'pipe'] });
    await new Promise((resolve) => child.on('close', resolve));
    assert.deepEqual(daemon.log, ['POST /commit?container=web&repo=repo&tag=1&pause=1']);
  } finally {
    await daemon.close();
  }
});
