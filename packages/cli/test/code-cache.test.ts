/**
 * dist/isula.cjs (scripts/entry.cjs) compiles the bundle with a V8 code cache
 * it writes at the end of a run that used a command or flag no earlier run
 * had (README, "Why it starts fast"). Run on a copy of the built dist: the
 * cache is written, grows with new commands only, is refused and rewritten
 * when it is garbage, is not used for another text of the bundle, and a cache
 * that cannot be written changes nothing a user sees.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';

const DIST = fileURLToPath(new URL('../', import.meta.url));
let dir: string;
let cacheDir: string;

interface Result { code: number; stdout: string; stderr: string }

function isula(args: string[]): Promise<Result> {
  // No daemon at this socket: `version` prints the client's part and fails in words.
  const env = { ...process.env, ISULAD_HOST: `unix://${dir}/none.sock` };
  return new Promise((resolve) => {
    execFile(process.execPath, [path.join(dir, 'isula.cjs'), ...args], { env, timeout: 30_000 }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : -1, stdout, stderr });
    });
  });
}

async function cacheFiles(): Promise<{ bin: string[]; seen: string[] }> {
  const names = await fs.readdir(cacheDir).catch(() => [] as string[]);
  const seenFile = names.find((n) => n.endsWith('.seen'));
  const seen = seenFile === undefined ? [] : (await fs.readFile(path.join(cacheDir, seenFile), 'utf8')).split('\n').filter((k) => k !== '');
  return { bin: names.filter((n) => n.endsWith('.bin')), seen };
}

const CALLS = [['--version'], ['version'], ['rmx'], ['ps', '--help']];

before(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'isula-code-cache-'));
  for (const f of ['isula.cjs', 'isula-main.cjs', 'isula-tar.cjs']) await fs.copyFile(path.join(DIST, f), path.join(dir, f));
  cacheDir = path.join(dir, '.code-cache');
});
after(async () => { await fs.rm(dir, { recursive: true, force: true }); });

test('the cache is written by a first run and again only for a new command or flag', async () => {
  const first = await isula(['--version']);
  assert.deepEqual([first.code, first.stderr], [0, '']);
  let files = await cacheFiles();
  assert.equal(files.bin.length, 1, 'one cache file');
  assert.deepEqual(files.seen, ['-v', '-v --version']);
  const bin = path.join(cacheDir, files.bin[0] ?? '');
  const written = (await fs.stat(bin)).mtimeMs;

  assert.deepEqual(await isula(['--version']), first, 'the same output from the cache');
  assert.equal((await fs.stat(bin)).mtimeMs, written, 'a known call does not write the cache again');

  const version = await isula(['version']);
  assert.equal(version.code, 1);
  assert.match(version.stderr, /none\.sock/);
  files = await cacheFiles();
  assert.deepEqual(files.seen, ['-v', '-v --version', 'version']);
  assert.deepEqual(await isula(['version']), version);
});

test('a garbage cache is refused by V8, rewritten, and changes no output', async () => {
  const before = await Promise.all(CALLS.map((c) => isula(c)));
  const { bin } = await cacheFiles();
  const file = path.join(cacheDir, bin[0] ?? '');
  await fs.writeFile(file, Buffer.alloc(4096, 0x5a));
  for (const [i, c] of CALLS.entries()) assert.deepEqual(await isula(c), before[i], `isula ${c.join(' ')}`);
  const rewritten = await fs.readFile(file);
  assert.notEqual(rewritten.subarray(0, 64).toString('hex'), Buffer.alloc(64, 0x5a).toString('hex'), 'the garbage was replaced');
  assert.ok(rewritten.length > 4096);
});

test('a bundle edited in place does not use the cache of its old text', async () => {
  const bundle = path.join(dir, 'isula-main.cjs');
  const old = (await cacheFiles()).bin;
  // Same length, other text: V8 alone would take the old cache (it checks the length only).
  const text = await fs.readFile(bundle, 'utf8');
  await fs.writeFile(bundle, text.replace('isula: a lightweight container engine client', 'ISULA: A LIGHTWEIGHT CONTAINER ENGINE CLIENT'));
  const r = await isula(['--help']);
  assert.equal(r.code, 0);
  assert.match(r.stdout, /ISULA: A LIGHTWEIGHT CONTAINER ENGINE CLIENT/);
  const now = (await cacheFiles()).bin;
  assert.equal(now.length, old.length + 1, 'a cache of its own for the edited bundle');
});

test('a cache that cannot be written changes nothing a user sees', async () => {
  const before = await Promise.all(CALLS.map((c) => isula(c)));
  await fs.rm(cacheDir, { recursive: true, force: true });
  await fs.writeFile(cacheDir, 'not a directory');
  for (const [i, c] of CALLS.entries()) assert.deepEqual(await isula(c), before[i], `isula ${c.join(' ')}`);
  assert.deepEqual(await fs.readdir(dir).then((n) => n.filter((f) => f.includes('.tmp'))), [], 'no temporary file left');
  assert.equal(await fs.readFile(cacheDir, 'utf8'), 'not a directory');
});
