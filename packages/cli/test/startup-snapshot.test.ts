/**
 * The CLI's start-up snapshot (scripts/snapshot.mjs, README "Why it starts
 * fast"; opt-in: `ISULA_CLI_SNAPSHOT=1 npm run build`), built here from the
 * compiled CLI into a temporary directory, and the launcher
 * (scripts/launcher.mjs) that starts `isula` from it when it is there. Run
 * from the snapshot, every call must behave as the plain bundle does: same
 * stdout, stderr and exit code, with argv, env, cwd and the terminal read at
 * run time (the snapshot was built with none of them), and `cp`'s lazily
 * loaded tar chunk found next to the entry. Without the blob, the launcher
 * runs the plain bundle.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import * as tar from 'tar';
import { startFakeDaemon, type FakeDaemon } from './fake-daemon.js';

const DIST = fileURLToPath(new URL('../', import.meta.url));
const ENTRY = path.join(DIST, 'isula.cjs');

interface Launcher {
  snapshotBlobName(): string;
  launcherScript(node: string, dist?: string, blobName?: string): string;
}
interface Snapshot { buildSnapshot(out: string, o?: { version?: string }): Promise<string | undefined> }
// Plain .mjs scripts (they run before any build): imported by URL, untyped.
const launcher = await import(new URL('../../scripts/launcher.mjs', import.meta.url).href) as Launcher;
const snapshotScript = await import(new URL('../../scripts/snapshot.mjs', import.meta.url).href) as Snapshot;
let BLOB: string;

interface Result { code: number | null; signal: string | null; stdout: string; stderr: string }

function exec(file: string, args: string[], o: { env?: NodeJS.ProcessEnv; cwd?: string; input?: string } = {}): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { stdio: ['pipe', 'pipe', 'pipe'], env: o.env ?? process.env, cwd: o.cwd, timeout: 30_000, killSignal: 'SIGKILL' });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => { stdout += c.toString(); });
    child.stderr.on('data', (c: Buffer) => { stderr += c.toString(); });
    child.on('error', reject);
    child.stdin.on('error', () => {});
    child.stdin.end(o.input);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

const plain = (args: string[], o?: Parameters<typeof exec>[2]) => exec(process.execPath, [ENTRY, ...args], o);
const snapshot = (args: string[], o?: Parameters<typeof exec>[2]) => exec(process.execPath, ['--snapshot-blob', BLOB, ENTRY, ...args], o);

let daemon: FakeDaemon;
let tmp: string;
before(async () => {
  daemon = await startFakeDaemon({});
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'isula-startup-'));
  BLOB = path.join(tmp, launcher.snapshotBlobName());
  const { version } = JSON.parse(await fs.readFile(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  const failure = await snapshotScript.buildSnapshot(BLOB, { version });
  assert.equal(failure, undefined, 'scripts/snapshot.mjs could not build the snapshot');
});
after(async () => {
  await daemon.close();
  await fs.rm(tmp, { recursive: true, force: true });
});

test('from the snapshot, isula prints and exits as the plain bundle does', async () => {
  const cases: string[][] = [
    ['--version'],
    ['-v'],
    ['help'],
    ['--help'],
    ['help', 'create'],
    ['run', '--help'],
    ['frob'], // an unknown verb: commander's error and the help, exit 1
    ['ps', '--bogus'], // a bad flag
    ['create'], // a missing argument: docker's 125
    ['-H', 'unix:///nonexistent/isulad.sock', 'version'], // daemon unreachable: exit 1
    ['-H', daemon.host, 'version'],
    ['-H', daemon.host, 'version', '--format', 'json'],
    ['-H', daemon.host, 'create', '--name', 'web', 'busybox'],
  ];
  for (const args of cases) {
    const [a, b] = await Promise.all([plain(args), snapshot(args)]);
    const shown = `isula ${args.join(' ')}`;
    assert.equal(a.signal, null, `${shown}: the plain bundle was killed`);
    assert.deepEqual(b, a, `${shown}: the snapshot differs from the plain bundle`);
  }
  // The cases above must not all pass vacuously (both failing the same way).
  const version = await snapshot(['--version']);
  assert.deepEqual([version.code, version.stderr], [0, '']);
  assert.match(version.stdout, /^\d+\.\d+\.\d+/);
  assert.equal((await snapshot(['frob'])).code, 1);
});

test('from the snapshot, env and cwd are the caller\'s, not the build\'s', async () => {
  // ISULAD_HOST is read when the call runs: the error names the socket it gave.
  const env = { ...process.env, ISULAD_HOST: `unix://${tmp}/no-such.sock` };
  const r = await snapshot(['version'], { env });
  assert.equal(r.code, 1);
  assert.match(r.stderr, new RegExp(`${tmp}/no-such\\.sock`));
  assert.deepEqual(r, await plain(['version'], { env }));

  // cp loads dist/isula-tar.cjs on first use and extracts into the caller's cwd.
  const src = path.join(tmp, 'src');
  await fs.mkdir(src);
  await fs.writeFile(path.join(src, 'hosts'), '127.0.0.1 x\n');
  const chunks: Buffer[] = [];
  for await (const c of tar.create({ cwd: src }, ['hosts'])) chunks.push(c as Buffer);
  const stat = { name: 'hosts', size: 12, mode: 0o644, mtime: '2026-01-01T00:00:00Z', linkTarget: '' };
  const cpDaemon = await startFakeDaemon({ archive: { stats: { '/etc/hosts': stat }, tar: Buffer.concat(chunks) } });
  try {
    for (const [name, run] of [['snapshot', snapshot], ['plain', plain]] as const) {
      const cwd = path.join(tmp, `cwd-${name}`);
      await fs.mkdir(cwd);
      const cp = await run(['-H', cpDaemon.host, 'cp', 'web:/etc/hosts', 'copy'], { cwd });
      assert.deepEqual([cp.code, cp.stderr], [0, ''], `${name}: cp failed`);
      assert.equal(await fs.readFile(path.join(cwd, 'copy'), 'utf8'), '127.0.0.1 x\n', `${name}: cp wrote elsewhere`);
    }
  } finally {
    await cpDaemon.close();
  }
});

test('from the snapshot, the help is wrapped to the caller\'s terminal', async () => {
  // script(1) gives the call a 120-column pty: commander wraps to process.stdout.columns
  // there, and to 80 columns when stdout is not a terminal (the build's case).
  const onTty = (argv: string[]) => exec('script', ['-qec', `stty cols 120 rows 20; exec ${argv.map((s) => `'${s}'`).join(' ')} --help`, '/dev/null']);
  const [a, b] = await Promise.all([onTty([process.execPath, ENTRY]), onTty([process.execPath, '--snapshot-blob', BLOB, ENTRY])]);
  assert.equal(a.code, 0, a.stderr);
  assert.deepEqual(b, a);
  const widest = Math.max(...b.stdout.split(/\r?\n/).map((l) => l.length));
  assert.ok(widest <= 120 && widest > 100, `help lines up to ${widest} columns on a 120-column terminal`);
});

test('the launcher runs the snapshot when its blob is there, the plain bundle when not', async () => {
  const dir = path.join(tmp, 'launchers');
  await fs.mkdir(dir);
  const write = async (name: string, blobName: string) => {
    const file = path.join(dir, name);
    await fs.writeFile(file, launcher.launcherScript(process.execPath, DIST, blobName), { mode: 0o755 });
    return file;
  };
  const expected = await plain(['frob']);
  // The snapshot: same behaviour.
  const withBlob = await write('isula', path.relative(DIST, BLOB));
  assert.deepEqual(await exec(withBlob, ['frob']), expected);
  assert.equal((await exec(withBlob, ['--version'])).stdout, (await plain(['--version'])).stdout);
  // No blob for this Node (not built, or built by another Node): the plain bundle.
  const noBlob = await write('isula-noblob', 'isula-v0.0.0-none.blob');
  assert.deepEqual(await exec(noBlob, ['frob']), expected);
  // And the launcher does use a blob that is there: Node refuses one that is not a snapshot.
  const junk = path.join(tmp, 'junk.blob');
  await fs.writeFile(junk, 'not a snapshot');
  const broken = await exec(await write('isula-junk', path.relative(DIST, junk)), ['--version']);
  assert.equal(broken.stdout, '', 'the launcher ignored the blob it was given');
  assert.notEqual(broken.code, 0, 'the launcher ignored the blob it was given');
});
