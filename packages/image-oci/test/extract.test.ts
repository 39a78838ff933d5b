import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { test, type TestContext } from 'node:test';
import { promisify } from 'node:util';
import zlib from 'node:zlib';
import { isIsulaError, type ErrorCode } from '@isula/core';
import { extractLayer } from '../src/extract.js';
import { tar, tarHeader, type TarEntry } from './fixtures/tar-writer.js';

const exec = promisify(execFile);
const isRoot = process.getuid?.() === 0;
// Skipped without root, except under CI=true, where a missing prerequisite must fail (STYLE.md).
const needsRoot = isRoot || process.env['CI'] === 'true' ? false : 'needs root (chown, mknod, trusted.* xattrs)';

const sha256 = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

interface Sandbox {
  root: string;
  dest: string;
  /** A directory outside the layer that hostile layers aim at. */
  canary: string;
}

async function sandbox(t: TestContext): Promise<Sandbox> {
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'isula-extract-'));
  t.after(() => fs.rm(root, { recursive: true, force: true }));
  const canary = path.join(root, 'canary');
  await fs.mkdir(canary);
  await fs.writeFile(path.join(canary, 'secret'), 'untouched');
  return { root, dest: path.join(root, 'layer'), canary };
}

/** The layer bytes as a stream of small chunks, so headers straddle chunk boundaries. */
function chunked(bytes: Buffer, size = 1000): Readable {
  const chunks: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += size) chunks.push(bytes.subarray(i, i + size));
  return Readable.from(chunks);
}

async function getfattr(file: string, name: string): Promise<string> {
  const { stdout } = await exec('getfattr', ['-h', '--only-values', '-n', name, file]);
  return stdout;
}

/** Asserts the layer is rejected with `code` and that no trace is left: no dest, no temp sibling, canary untouched. */
async function assertRejected(sb: Sandbox, layer: Buffer, code: ErrorCode, options: { expectedDigest?: string; expectedDiffId?: string } = {}): Promise<void> {
  await assert.rejects(extractLayer(chunked(layer), sb.dest, options), (err: unknown) => {
    assert.ok(isIsulaError(err), `not an IsulaError: ${String(err)}`);
    assert.equal(err.code, code, err.message);
    return true;
  });
  assert.deepEqual((await fs.readdir(sb.root)).sort(), ['canary']);
  assert.deepEqual(await fs.readdir(sb.canary), ['secret']);
  assert.equal(await fs.readFile(path.join(sb.canary, 'secret'), 'utf8'), 'untouched');
  await assert.rejects(fs.lstat('/pwned'), { code: 'ENOENT' });
}

const prefix: TarEntry[] = [
  { name: 'ok/', type: '5' },
  { name: 'ok/file', data: 'fine' },
];

test('a gzip layer keeps files, modes, owners, links, devices, fifos and xattrs', { skip: needsRoot }, async (t) => {
  const sb = await sandbox(t);
  const layer = tar([
    { name: './', type: '5', mode: 0o755 },
    { name: 'bin/', type: '5', mode: 0o755 },
    { name: 'bin/su', data: '#!/bin/sh\n', mode: 0o4755 },
    { name: 'bin/su2', type: '1', linkname: 'bin/su' },
    { name: 'bin/user-sgid', data: 'x', mode: 0o2750, uid: 1000, gid: 1000 }, // chown must not drop setgid
    { name: 'home/', type: '5', mode: 0o755 },
    { name: 'home/user/', type: '5', mode: 0o700, uid: 1000, gid: 1000, mtime: 1_600_000_000 },
    { name: 'home/user/notes', data: 'hello', mode: 0o640, uid: 1000, gid: 1000, mtime: 1_500_000_000 },
    { name: 'tmp/', type: '5', mode: 0o1777 },
    { name: 'etc/', type: '5' },
    { name: 'etc/passwd-link', type: '2', linkname: '/etc/passwd' },
    { name: 'etc/dangling', type: '2', linkname: '../nowhere/x' },
    { name: 'dev/', type: '5' },
    { name: 'dev/null', type: '3', mode: 0o666, devmajor: 1, devminor: 3 },
    { name: 'run/fifo', type: '6', mode: 0o600 },
    { name: 'attrs', data: 'x', pax: { 'SCHILY.xattr.user.foo': 'bar', 'SCHILY.xattr.user.bin': Buffer.from([0, 1, 0xff]) } },
    // overlayfs's own markers are never taken from a layer: they would steer the kernel's merge.
    { name: 'steered', data: 'x', pax: { 'SCHILY.xattr.trusted.overlay.redirect': '/etc/shadow', 'SCHILY.xattr.trusted.overlay.metacopy': '', 'SCHILY.xattr.user.kept': 'yes' } },
    { name: 'x'.repeat(150), data: 'long', pax: { path: `deep/${'x'.repeat(150)}` } },
  ]);
  const gz = zlib.gzipSync(layer);
  const result = await extractLayer(chunked(gz), sb.dest, { expectedDigest: sha256(gz), expectedDiffId: sha256(layer) });
  assert.deepEqual(result, { digest: sha256(gz), diffId: sha256(layer), sizeBytes: layer.length });
  const at = (p: string): string => path.join(sb.dest, p);

  const su = await fs.stat(at('bin/su'));
  assert.equal(su.mode & 0o7777, 0o4755);
  assert.equal(await fs.readFile(at('bin/su'), 'utf8'), '#!/bin/sh\n');
  assert.equal((await fs.stat(at('bin/su2'))).ino, su.ino);
  assert.equal(su.nlink, 2);

  const sgid = await fs.stat(at('bin/user-sgid'));
  assert.deepEqual([sgid.uid, sgid.gid, sgid.mode & 0o7777], [1000, 1000, 0o2750]);

  const home = await fs.stat(at('home/user'));
  assert.equal(home.mode & 0o7777, 0o700);
  assert.deepEqual([home.uid, home.gid], [1000, 1000]);
  assert.equal(home.mtimeMs, 1_600_000_000_000); // kept although a file was created in it later
  const notes = await fs.stat(at('home/user/notes'));
  assert.deepEqual([notes.uid, notes.gid, notes.mode & 0o7777, notes.mtimeMs], [1000, 1000, 0o640, 1_500_000_000_000]);
  assert.equal((await fs.stat(at('tmp'))).mode & 0o7777, 0o1777);

  assert.equal(await fs.readlink(at('etc/passwd-link')), '/etc/passwd');
  assert.ok((await fs.lstat(at('etc/passwd-link'))).isSymbolicLink());
  assert.equal(await fs.readlink(at('etc/dangling')), '../nowhere/x');

  const dev = await fs.lstat(at('dev/null'));
  assert.ok(dev.isCharacterDevice());
  assert.equal(dev.rdev, (1 << 8) | 3);
  assert.equal(dev.mode & 0o777, 0o666);
  assert.ok((await fs.lstat(at('run/fifo'))).isFIFO());

  assert.equal(await getfattr(at('attrs'), 'user.foo'), 'bar');
  assert.equal(await getfattr(at('steered'), 'user.kept'), 'yes');
  const overlayAttrs = (await exec('getfattr', ['-h', '-d', '-m', '^trusted\\.overlay\\.', at('steered')])).stdout;
  assert.equal(overlayAttrs.trim(), '', 'no trusted.overlay.* xattr from the layer');
  const { stdout } = await exec('getfattr', ['-e', 'hex', '-n', 'user.bin', at('attrs')]);
  assert.match(stdout, /user\.bin=0x0001ff/);
  assert.equal(await fs.readFile(at(`deep/${'x'.repeat(150)}`), 'utf8'), 'long');
  assert.deepEqual((await fs.readdir(sb.root)).sort(), ['canary', 'layer']);
});

test('whiteouts become 0/0 char devices and opaque markers', { skip: needsRoot }, async (t) => {
  const sb = await sandbox(t);
  const layer = tar([
    { name: '.wh.gone', data: '' },
    { name: 'dir/.wh..wh..opq', data: '' },
    { name: 'dir/kept', data: 'k' },
    { name: 'other/sub/.wh.file', data: '' },
    { name: '.wh..wh.plnk/', type: '5' },
  ]);
  await extractLayer(chunked(zlib.gzipSync(layer)), sb.dest, {});
  const gone = await fs.lstat(path.join(sb.dest, 'gone'));
  assert.ok(gone.isCharacterDevice());
  assert.deepEqual([gone.rdev, gone.uid, gone.gid], [0, 0, 0]);
  assert.ok((await fs.lstat(path.join(sb.dest, 'other/sub/file'))).isCharacterDevice());
  assert.equal(await getfattr(path.join(sb.dest, 'dir'), 'trusted.overlay.opaque'), 'y');
  assert.equal(await fs.readFile(path.join(sb.dest, 'dir/kept'), 'utf8'), 'k');
  assert.deepEqual((await fs.readdir(sb.dest)).sort(), ['dir', 'gone', 'other']);
});

test('an uncompressed layer has digest equal to its diff id', { skip: needsRoot }, async (t) => {
  const sb = await sandbox(t);
  const layer = tar(prefix);
  const result = await extractLayer(chunked(layer, 7), sb.dest, { expectedDigest: sha256(layer) });
  assert.deepEqual(result, { digest: sha256(layer), diffId: sha256(layer), sizeBytes: layer.length });
  assert.equal(await fs.readFile(path.join(sb.dest, 'ok/file'), 'utf8'), 'fine');
});

test('a zstd layer is extracted', { skip: needsRoot }, async (t) => {
  const sb = await sandbox(t);
  const layer = tar(prefix);
  const zst = zlib.zstdCompressSync(layer);
  const result = await extractLayer(chunked(zst), sb.dest, {});
  assert.deepEqual(result, { digest: sha256(zst), diffId: sha256(layer), sizeBytes: layer.length });
  assert.equal(await fs.readFile(path.join(sb.dest, 'ok/file'), 'utf8'), 'fine');
});

test('a later entry replaces an earlier one without following the old symlink', { skip: needsRoot }, async (t) => {
  const sb = await sandbox(t);
  const secret = path.join(sb.canary, 'secret');
  const layer = tar([
    { name: 'a', type: '2', linkname: secret },
    { name: 'a', data: 'replaced' }, // symlink → file: must not write through to the canary
    { name: 'b', data: 'file first' },
    { name: 'b', type: '2', linkname: sb.canary }, // file → symlink
    { name: 'd/', type: '5' },
    { name: 'd/inner', data: 'x' },
    { name: 'd', type: '2', linkname: sb.canary }, // directory → symlink
    { name: 'e', type: '2', linkname: sb.canary },
    { name: 'e/', type: '5', mode: 0o700 }, // symlink → directory
    { name: 'e/in', data: 'inside' },
  ]);
  await extractLayer(chunked(zlib.gzipSync(layer)), sb.dest, {});
  assert.equal(await fs.readFile(path.join(sb.dest, 'a'), 'utf8'), 'replaced');
  assert.ok((await fs.lstat(path.join(sb.dest, 'a'))).isFile());
  assert.equal(await fs.readlink(path.join(sb.dest, 'b')), sb.canary);
  assert.equal(await fs.readlink(path.join(sb.dest, 'd')), sb.canary);
  assert.ok((await fs.lstat(path.join(sb.dest, 'e'))).isDirectory());
  assert.equal((await fs.lstat(path.join(sb.dest, 'e'))).mode & 0o777, 0o700);
  assert.equal(await fs.readFile(path.join(sb.dest, 'e/in'), 'utf8'), 'inside');
  assert.deepEqual(await fs.readdir(sb.canary), ['secret']);
  assert.equal(await fs.readFile(secret, 'utf8'), 'untouched');
});

test('`..` inside the layer is resolved lexically', { skip: needsRoot }, async (t) => {
  const sb = await sandbox(t);
  await extractLayer(chunked(tar([{ name: 'a/../b', data: 'b' }])), sb.dest, {});
  assert.deepEqual(await fs.readdir(sb.dest), ['b']);
});

const hostile: { name: string; code: ErrorCode; entries: (sb: Sandbox) => TarEntry[] }[] = [
  { name: '../escape', code: 'IMAGE_LAYER_UNSAFE', entries: () => [{ name: '../escape', data: 'x' }] },
  { name: '/abs/path', code: 'IMAGE_LAYER_UNSAFE', entries: () => [{ name: '/pwned', data: 'x' }] },
  { name: 'a/../../escape', code: 'IMAGE_LAYER_UNSAFE', entries: () => [{ name: 'a/../../escape', data: 'x' }] },
  { name: 'pax path escaping', code: 'IMAGE_LAYER_UNSAFE', entries: () => [{ name: 'harmless', data: 'x', pax: { path: '../../pwned' } }] },
  {
    name: 'symlink to the canary, then a file through it',
    code: 'IMAGE_LAYER_UNSAFE',
    entries: (sb) => [{ name: 'evil', type: '2', linkname: sb.canary }, { name: 'evil/pwned', data: 'x' }],
  },
  {
    name: 'symlink to .., then a file through it',
    code: 'IMAGE_LAYER_UNSAFE',
    entries: () => [{ name: 'up', type: '2', linkname: '..' }, { name: 'up/up/x', data: 'x' }],
  },
  {
    name: 'symlink, then a directory through it',
    code: 'IMAGE_LAYER_UNSAFE',
    entries: (sb) => [{ name: 'evil', type: '2', linkname: sb.canary }, { name: 'evil/sub/', type: '5' }],
  },
  { name: 'hard link outside', code: 'IMAGE_LAYER_UNSAFE', entries: () => [{ name: 'h', type: '1', linkname: '../../etc/passwd' }] },
  { name: 'absolute hard link', code: 'IMAGE_LAYER_UNSAFE', entries: () => [{ name: 'h', type: '1', linkname: '/etc/passwd' }] },
  {
    name: 'hard link through a symlink',
    code: 'IMAGE_LAYER_UNSAFE',
    entries: (sb) => [{ name: 'lnk', type: '2', linkname: sb.canary }, { name: 'h', type: '1', linkname: 'lnk/secret' }],
  },
  { name: 'hard link to a missing entry', code: 'IMAGE_LAYER_INVALID', entries: () => [{ name: 'h', type: '1', linkname: 'ok/missing' }] },
  { name: 'whiteout of ..', code: 'IMAGE_LAYER_UNSAFE', entries: () => [{ name: 'ok/.wh...', data: '' }] },
  {
    name: 'opaque marker through a symlink',
    code: 'IMAGE_LAYER_UNSAFE',
    entries: (sb) => [{ name: 'evil', type: '2', linkname: sb.canary }, { name: 'evil/.wh..wh..opq', data: '' }],
  },
  { name: 'GNU sparse file', code: 'IMAGE_LAYER_INVALID', entries: () => [{ name: 'sparse', type: 'S', data: 'x' }] },
  { name: 'PAX sparse file', code: 'IMAGE_LAYER_INVALID', entries: () => [{ name: 'sparse', data: 'x', pax: { 'GNU.sparse.major': '1' } }] },
  { name: 'unknown entry type', code: 'IMAGE_LAYER_INVALID', entries: () => [{ name: 'vol', type: 'V' }] },
  { name: 'file through a regular file', code: 'IMAGE_LAYER_INVALID', entries: () => [{ name: 'ok/file/x', data: 'x' }] },
];

for (const h of hostile) {
  test(`a layer with ${h.name} is rejected and leaves no trace`, { skip: needsRoot }, async (t) => {
    const sb = await sandbox(t);
    await assertRejected(sb, zlib.gzipSync(tar([...prefix, ...h.entries(sb)])), h.code);
  });
}

test('a truncated gzip layer is rejected and leaves no trace', { skip: needsRoot }, async (t) => {
  const sb = await sandbox(t);
  const gz = zlib.gzipSync(tar([...prefix, { name: 'big', data: Buffer.alloc(200_000, 7) }]));
  await assertRejected(sb, gz.subarray(0, gz.length - 100), 'IMAGE_LAYER_INVALID');
});

test('a gzip layer with a corrupt body is rejected', { skip: needsRoot }, async (t) => {
  const sb = await sandbox(t);
  const gz = Buffer.from(zlib.gzipSync(tar([...prefix, { name: 'big', data: Buffer.alloc(20_000, 7) }])));
  gz[gz.length - 6] = (gz[gz.length - 6] ?? 0) ^ 0xff; // the CRC32 trailer
  await assertRejected(sb, gz, 'IMAGE_LAYER_INVALID');
});

test('a truncated uncompressed layer is rejected', { skip: needsRoot }, async (t) => {
  const sb = await sandbox(t);
  const layer = tar([...prefix, { name: 'big', data: Buffer.alloc(5000, 7) }]);
  await assertRejected(sb, layer.subarray(0, 2000), 'IMAGE_LAYER_INVALID');
  await assertRejected(sb, tar(prefix, { end: false }), 'IMAGE_LAYER_INVALID');
});

test('a tar header with a bad checksum is rejected', { skip: needsRoot }, async (t) => {
  const sb = await sandbox(t);
  const bad = tarHeader({ name: 'x', data: '' }, 0);
  bad[0] = 0x79; // name "y" no longer matches the checksum
  const layer = Buffer.concat([tar(prefix, { end: false }), bad, Buffer.alloc(1024)]);
  await assertRejected(sb, zlib.gzipSync(layer), 'IMAGE_LAYER_INVALID');
});

test('digest and diff id mismatches are rejected and leave no trace', { skip: needsRoot }, async (t) => {
  const sb = await sandbox(t);
  const layer = tar(prefix);
  const gz = zlib.gzipSync(layer);
  const wrong = `sha256:${'0'.repeat(64)}`;
  await assertRejected(sb, gz, 'IMAGE_DIGEST_MISMATCH', { expectedDigest: wrong });
  await assertRejected(sb, gz, 'IMAGE_DIGEST_MISMATCH', { expectedDigest: sha256(gz), expectedDiffId: wrong });
  await assertRejected(sb, gz, 'IMAGE_DIGEST_MISMATCH', { expectedDiffId: sha256(gz) });
});

test('an existing destination is refused and left alone', { skip: needsRoot }, async (t) => {
  const sb = await sandbox(t);
  await fs.mkdir(sb.dest);
  await assert.rejects(extractLayer(chunked(tar(prefix)), sb.dest, {}), (err: unknown) => isIsulaError(err, 'INTERNAL'));
  assert.deepEqual(await fs.readdir(sb.dest), []);
});

test('aborting mid-stream cancels and leaves no trace', { skip: needsRoot }, async (t) => {
  const sb = await sandbox(t);
  const gz = zlib.gzipSync(tar([...prefix, { name: 'big', data: Buffer.alloc(300_000, 1) }]));
  const ac = new AbortController();
  async function* slow(): AsyncGenerator<Buffer> {
    yield gz.subarray(0, 100);
    ac.abort();
    yield gz.subarray(100);
  }
  await assert.rejects(extractLayer(slow(), sb.dest, { signal: ac.signal }), (err: unknown) => isIsulaError(err, 'CANCELED'));
  assert.deepEqual((await fs.readdir(sb.root)).sort(), ['canary']);
});

test('an error from the source is passed through unchanged and leaves no trace', { skip: needsRoot }, async (t) => {
  const sb = await sandbox(t);
  const gz = zlib.gzipSync(tar([...prefix, { name: 'big', data: Buffer.alloc(300_000, 1) }]));
  const boom = new Error('connection reset');
  async function* failing(): AsyncGenerator<Buffer> {
    yield gz.subarray(0, 2000);
    throw boom;
  }
  await assert.rejects(extractLayer(failing(), sb.dest, {}), (err: unknown) => err === boom);
  assert.deepEqual((await fs.readdir(sb.root)).sort(), ['canary']);
});

test('a device node with setuid, setgid or sticky bits keeps them (found by the layer fuzzer)', { skip: needsRoot }, async (t) => {
  const sb = await sandbox(t);
  await extractLayer(chunked(tar([
    { name: 'dev/', type: '5' },
    { name: 'dev/sticky', type: '3', mode: 0o1000, devmajor: 1, devminor: 3 },
    { name: 'dev/suid', type: '4', mode: 0o4640, devmajor: 7, devminor: 0 },
  ])), sb.dest, {});
  const sticky = await fs.lstat(path.join(sb.dest, 'dev/sticky'));
  assert.ok(sticky.isCharacterDevice());
  assert.equal(sticky.mode & 0o7777, 0o1000);
  const suid = await fs.lstat(path.join(sb.dest, 'dev/suid'));
  assert.ok(suid.isBlockDevice());
  assert.equal(suid.mode & 0o7777, 0o4640);
});
