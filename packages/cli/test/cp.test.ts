import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { test, type TestContext } from 'node:test';
import * as tar from 'tar';
import { copyInfoDestinationPath, copyInfoSourcePath, extractArchive, packLocal } from '../src/cp-archive.js';
import {
  GO_MODE_DIR, GO_MODE_SYMLINK, assertsDirectory, decodePathStat, getRebaseName, goBase, goClean, goDir, hasModeBit, linkTargetPath,
  prepareArchiveCopy, preserveTrailingDotOrSeparator, rebaseEntryName, resolveLocalPath, splitCpArg, splitPathDirEntry, validateOutputPathFileMode,
} from '../src/cp-paths.js';
import { runIsula } from './fake-daemon.js';

async function tmpdir(t: TestContext): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'isula-cp-'));
  t.after(() => fs.rm(dir, { recursive: true, force: true }));
  return dir;
}

/** A tar of hand-made entries (names as given: nothing checks them). */
function rawTar(entries: { name: string; type?: 'File' | 'Directory' | 'SymbolicLink' | 'Link'; body?: string; linkpath?: string; mode?: number }[]): Buffer {
  const blocks: Buffer[] = [];
  for (const e of entries) {
    const body = Buffer.from(e.body ?? '');
    const type = e.type ?? 'File';
    const h = new tar.Header({ path: e.name, type, size: body.length, mode: e.mode ?? (type === 'Directory' ? 0o755 : 0o644), mtime: new Date(1_700_000_000_000), ...(e.linkpath !== undefined && { linkpath: e.linkpath }) });
    h.encode();
    blocks.push(h.block ?? Buffer.alloc(512), body, Buffer.alloc((512 - (body.length % 512)) % 512));
  }
  return Buffer.concat([...blocks, Buffer.alloc(1024)]);
}

async function entryNames(archive: Buffer): Promise<string[]> {
  const names: string[] = [];
  await new Promise<void>((resolve, reject) => {
    const p = new tar.Parser({ onReadEntry: (e) => { names.push(`${e.type}:${e.path}${e.type === 'Link' ? `->${e.linkpath}` : ''}`); e.resume(); } });
    p.on('end', resolve);
    p.on('error', reject);
    p.end(archive);
  });
  return names;
}

test('Go path semantics: Clean, Base, Dir', () => {
  assert.deepEqual(['', 'a//b/../c/', '/..', '../x/./y', '/'].map(goClean), ['.', 'a/c', '/', '../x/y', '/']);
  assert.deepEqual(['', '/', 'a/b/', '/a', '.'].map(goBase), ['.', '/', 'b', 'a', '.']);
  assert.deepEqual(['a/b/', 'a', '/a', '/'].map(goDir), ['a/b', '.', '/', '/']);
});

test('splitCpArg: CONTAINER:PATH, but an absolute or ./ path is local even with a colon', () => {
  assert.deepEqual(splitCpArg('web:/etc/hosts'), { container: 'web', path: '/etc/hosts' });
  assert.deepEqual(splitCpArg('web:'), { container: 'web', path: '' });
  assert.deepEqual(splitCpArg('/tmp/a:b'), { container: '', path: '/tmp/a:b' });
  assert.deepEqual(splitCpArg('./a:b'), { container: '', path: './a:b' });
  assert.deepEqual(splitCpArg('file.txt'), { container: '', path: 'file.txt' });
  assert.deepEqual(splitCpArg('-'), { container: '', path: '-' });
});

test('local paths are made absolute keeping a trailing / or /.', () => {
  assert.equal(resolveLocalPath('out', '/home/u'), '/home/u/out');
  assert.equal(resolveLocalPath('out/', '/home/u'), '/home/u/out/');
  assert.equal(resolveLocalPath('./dir/.', '/home/u'), '/home/u/dir/.');
  assert.equal(resolveLocalPath('.', '/home/u'), '/home/u/.');
  assert.equal(resolveLocalPath('/a/../b//', '/x'), '/b/');
  assert.equal(preserveTrailingDotOrSeparator('/a', '/a/.'), '/a/.');
  assert.equal(assertsDirectory('/a/'), true);
  assert.equal(assertsDirectory('/a/.'), true);
  assert.equal(assertsDirectory('/a'), false);
});

test('splitPathDirEntry keeps a final "." as the base', () => {
  assert.deepEqual(splitPathDirEntry('/etc/hosts'), { dir: '/etc', base: 'hosts' });
  assert.deepEqual(splitPathDirEntry('/etc/'), { dir: '/', base: 'etc' });
  assert.deepEqual(splitPathDirEntry('/etc/.'), { dir: '/etc', base: '.' });
  assert.deepEqual(splitPathDirEntry('/'), { dir: '/', base: '/' });
});

test('following a symlink keeps the name typed (GetRebaseName) and joins relative targets to the link\'s directory', () => {
  assert.deepEqual(getRebaseName('/etc/link', '/etc/real.conf'), { resolved: '/etc/real.conf', rebaseName: 'link' });
  assert.deepEqual(getRebaseName('/data/link/', '/srv/dir'), { resolved: '/srv/dir/', rebaseName: 'link' });
  assert.deepEqual(getRebaseName('/data/link/.', '/srv/dir'), { resolved: '/srv/dir/.', rebaseName: '' });
  assert.deepEqual(getRebaseName('/etc/same', '/other/same'), { resolved: '/other/same', rebaseName: '' });
  assert.equal(linkTargetPath('/etc/link', 'real.conf'), '/etc/real.conf');
  assert.equal(linkTargetPath('/etc/link', '../usr/x'), '/usr/x');
  assert.equal(linkTargetPath('/etc/link', '/abs'), '/abs');
});

test('PrepareArchiveCopy: where to extract and how to rename, for each kind of source and destination', () => {
  const file = { path: '/src/a.txt', exists: true, isDir: false };
  const dir = { path: '/src/d', exists: true, isDir: true };
  const contents = { path: '/src/d/.', exists: true, isDir: true };
  // Into an existing directory: as is.
  assert.deepEqual(prepareArchiveCopy(file, { path: '/dst', exists: true, isDir: true }), { dstDir: '/dst' });
  assert.deepEqual(prepareArchiveCopy(dir, { path: '/dst/', exists: true, isDir: true }), { dstDir: '/dst/' });
  // Onto an existing file: renamed to it.
  assert.deepEqual(prepareArchiveCopy(file, { path: '/dst/b.txt', exists: true, isDir: false }), { dstDir: '/dst', rebase: { from: 'a.txt', to: 'b.txt' } });
  // A directory onto a file: docker's "cannot copy directory".
  assert.throws(() => prepareArchiveCopy(dir, { path: '/dst/b.txt', exists: true, isDir: false }), { message: 'cannot copy directory' });
  // A directory to a new name: created under that name; its contents (`/.`) likewise.
  assert.deepEqual(prepareArchiveCopy(dir, { path: '/dst/new', exists: false, isDir: false }), { dstDir: '/dst', rebase: { from: 'd', to: 'new' } });
  assert.deepEqual(prepareArchiveCopy(contents, { path: '/dst/new', exists: false, isDir: false }), { dstDir: '/dst', rebase: { from: '.', to: 'new' } });
  // A file to a missing `dir/`: docker's "no such directory"; to a new name: renamed.
  assert.throws(() => prepareArchiveCopy(file, { path: '/dst/nodir/', exists: false, isDir: false }), { message: 'no such directory' });
  assert.deepEqual(prepareArchiveCopy(file, { path: '/dst/new.txt', exists: false, isDir: false }), { dstDir: '/dst', rebase: { from: 'a.txt', to: 'new.txt' } });
  // A followed symlink's entries carry its name, which is what gets renamed.
  assert.deepEqual(prepareArchiveCopy({ ...file, rebaseName: 'link' }, { path: '/dst/x', exists: false, isDir: false }), { dstDir: '/dst', rebase: { from: 'link', to: 'x' } });
});

test('rebasing renames only the leading element', () => {
  const r = { from: 'd', to: 'new' };
  assert.deepEqual(['d', 'd/', 'd/a.txt', 'dd/x', 'x/d'].map((n) => rebaseEntryName(n, r)), ['new', 'new/', 'new/a.txt', 'dd/x', 'x/d']);
  assert.deepEqual(['./', './a.txt', 'a.b'].map((n) => rebaseEntryName(n, { from: '.', to: 'new' })), ['new/', 'new/a.txt', 'a.b']);
});

test('the stat header: Go FileMode bits, base64 JSON; devices cannot be copied onto', () => {
  const header = Buffer.from(JSON.stringify({ name: 'etc', size: 4096, mode: GO_MODE_DIR + 0o755, mtime: '2026-01-01T00:00:00Z', linkTarget: '' })).toString('base64');
  const st = decodePathStat(header);
  assert.equal(hasModeBit(st.mode, GO_MODE_DIR), true);
  assert.equal(hasModeBit(st.mode, GO_MODE_SYMLINK), false);
  assert.throws(() => decodePathStat('not base64 json'), /unable to decode container path stat header/);
  assert.throws(() => validateOutputPathFileMode(2 ** 26 + 2 ** 21), { message: 'got a device' });
  validateOutputPathFileMode(0o644);
});

test('local copy info: the source must exist, symlinks in its directory resolved; a destination\'s parent must exist', async (t) => {
  const dir = await tmpdir(t);
  await fs.mkdir(path.join(dir, 'real'));
  await fs.writeFile(path.join(dir, 'real', 'f'), 'x');
  await fs.symlink('real', path.join(dir, 'alias'));
  assert.deepEqual(await copyInfoSourcePath(`${dir}/alias/f`, false), { path: `${dir}/real/f`, exists: true, isDir: false, rebaseName: '' });
  // Without -L a final symlink is the link itself; with a trailing slash its directory keeps the name typed.
  assert.deepEqual(await copyInfoSourcePath(`${dir}/alias`, false), { path: `${dir}/alias`, exists: true, isDir: false, rebaseName: '' });
  assert.deepEqual(await copyInfoSourcePath(`${dir}/alias/`, false), { path: `${dir}/real/`, exists: true, isDir: true, rebaseName: 'alias' });
  assert.deepEqual(await copyInfoSourcePath(`${dir}/alias`, true), { path: `${dir}/real`, exists: true, isDir: true, rebaseName: 'alias' });
  await assert.rejects(copyInfoSourcePath(`${dir}/nope`, false), { message: `lstat ${dir}/nope: no such file or directory` });
  assert.deepEqual(await copyInfoDestinationPath(`${dir}/alias`), { path: `${dir}/real`, exists: true, isDir: true });
  assert.deepEqual(await copyInfoDestinationPath(`${dir}/new`), { path: `${dir}/new`, exists: false, isDir: false });
  await assert.rejects(copyInfoDestinationPath(`${dir}/no/new`), { message: `stat ${dir}/no: no such file or directory` });
  await assert.rejects(copyInfoDestinationPath(`${dir}/real/f/x`), { message: `lstat ${dir}/real/f/x: not a directory` });
});

test('packing a local directory renames its top entry, hard links included', async (t) => {
  const dir = await tmpdir(t);
  await fs.mkdir(path.join(dir, 'd', 'sub'), { recursive: true });
  await fs.writeFile(path.join(dir, 'd', 'a.txt'), 'a');
  await fs.link(path.join(dir, 'd', 'a.txt'), path.join(dir, 'd', 'sub', 'hard'));
  await fs.symlink('a.txt', path.join(dir, 'd', 'link'));
  const src = await copyInfoSourcePath(`${dir}/d`, false);
  const packed = await packLocal(src, [{ from: 'd', to: 'new' }]);
  const chunks: Buffer[] = [];
  for await (const c of packed) chunks.push(c as Buffer);
  const names = await entryNames(Buffer.concat(chunks));
  assert.deepEqual(names.sort(), ['Directory:new/', 'Directory:new/sub/', 'File:new/a.txt', 'Link:new/sub/hard->new/a.txt', 'SymbolicLink:new/link'].sort());
  const contents = await packLocal(await copyInfoSourcePath(`${dir}/d/.`, false), []);
  const chunks2: Buffer[] = [];
  for await (const c of contents) chunks2.push(c as Buffer);
  assert.ok((await entryNames(Buffer.concat(chunks2))).includes('File:./a.txt'));
});

test('extraction stays inside the destination: .., absolute names, hard links out and writes through symlinks are refused', async (t) => {
  const dir = await tmpdir(t);
  const dest = path.join(dir, 'dest');
  const outside = path.join(dir, 'outside');
  await fs.mkdir(dest);
  await fs.mkdir(outside);
  await fs.symlink(outside, path.join(dest, 'pre'));
  const archive = rawTar([
    { name: '../escape', body: 'x' },
    { name: `${outside}/abs`, body: 'x' },
    { name: 'ln', type: 'SymbolicLink', linkpath: outside },
    { name: 'ln/through', body: 'x' },
    { name: 'up', type: 'SymbolicLink', linkpath: '..' },
    { name: 'pre/viaExisting', body: 'x' },
    { name: 'hard', type: 'Link', linkpath: '../../etc/passwd' },
    { name: 'ok/file', body: 'fine', mode: 0o640 },
  ]);
  await assert.rejects(extractArchive(Readable.from([archive]), dest, { rebases: [] }), (e: Error) => {
    assert.match(e.message, /"\.\.\/escape": path contains '\.\.'/);
    assert.match(e.message, /Cannot extract through symbolic link/);
    assert.match(e.message, /"hard": linkpath contains '\.\.'/);
    return true;
  });
  assert.deepEqual(await fs.readdir(outside), []);
  await assert.rejects(fs.access(path.join(dir, 'escape')));
  assert.equal(await fs.readFile(path.join(dest, 'ok', 'file'), 'utf8'), 'fine');
  assert.equal((await fs.stat(path.join(dest, 'ok', 'file'))).mode & 0o777, 0o640);
  // An absolute name is rooted at the destination; an absolute link target is kept as the container had it.
  assert.equal(await fs.readFile(path.join(dest, outside, 'abs'), 'utf8'), 'x');
  assert.equal(await fs.readlink(path.join(dest, 'ln')), outside);
});

test('extraction renames the top entry and never replaces a directory with a file or the reverse', async (t) => {
  const dir = await tmpdir(t);
  await extractArchive(Readable.from([rawTar([{ name: 'hosts', body: '127.0.0.1 x\n' }])]), dir, { rebases: [{ from: 'hosts', to: 'myhosts' }] });
  assert.equal(await fs.readFile(path.join(dir, 'myhosts'), 'utf8'), '127.0.0.1 x\n');
  await fs.mkdir(path.join(dir, 'adir'));
  await assert.rejects(extractArchive(Readable.from([rawTar([{ name: 'adir', body: 'x' }])]), dir, { rebases: [] }), /cannot overwrite directory ".*adir" with non-directory/);
  await assert.rejects(extractArchive(Readable.from([rawTar([{ name: 'myhosts', type: 'Directory' }])]), dir, { rebases: [] }), /cannot overwrite non-directory ".*myhosts" with directory/);
  assert.equal((await fs.stat(path.join(dir, 'adir'))).isDirectory(), true);
});

const FILE_STAT = { name: 'hosts', size: 12, mode: 0o644, mtime: '2026-01-01T00:00:00Z', linkTarget: '' };

test('cp CONTAINER:FILE LOCAL: GET the archive, extract renamed to the new name or into a directory', async (t) => {
  const dir = await tmpdir(t);
  const archive = { stats: { '/etc/hosts': FILE_STAT }, tar: rawTar([{ name: 'hosts', body: '127.0.0.1 x\n' }]) };
  const r = await runIsula({ archive }, ['cp', 'web:/etc/hosts', 'copy'], { cwd: dir });
  assert.deepEqual([r.code, r.stderr], [0, '']);
  assert.deepEqual(r.log, ['GET /containers/web/archive?path=%2Fetc%2Fhosts']);
  assert.equal(await fs.readFile(path.join(dir, 'copy'), 'utf8'), '127.0.0.1 x\n');
  await fs.mkdir(path.join(dir, 'into'));
  assert.equal((await runIsula({ archive }, ['cp', 'web:/etc/hosts', 'into/'], { cwd: dir })).code, 0);
  assert.equal(await fs.readFile(path.join(dir, 'into', 'hosts'), 'utf8'), '127.0.0.1 x\n');
  const missingDir = await runIsula({ archive }, ['cp', 'web:/etc/hosts', 'nodir/'], { cwd: dir });
  assert.deepEqual([missingDir.code, missingDir.stderr], [1, 'no such directory\n']);
  const toStdout = await runIsula({ archive }, ['cp', 'web:/etc/hosts', '-'], { cwd: dir });
  assert.deepEqual(await entryNames(toStdout.stdoutBytes), ['File:hosts']);
  const gone = await runIsula({ archive }, ['cp', 'web:/nope', 'x'], { cwd: dir });
  assert.equal(gone.code, 1);
  assert.match(gone.stderr, /^Error response from daemon: Could not find the file \/nope in container web\n$/);
});

test('cp -L follows a container symlink through its stat and keeps the name typed', async (t) => {
  const dir = await tmpdir(t);
  const archive = {
    stats: { '/etc/link': { ...FILE_STAT, name: 'link', mode: GO_MODE_SYMLINK + 0o777, linkTarget: 'real.conf' }, '/etc/real.conf': { ...FILE_STAT, name: 'real.conf' } },
    tar: rawTar([{ name: 'real.conf', body: 'conf' }]),
  };
  const r = await runIsula({ archive }, ['cp', '-L', 'web:/etc/link', '.'], { cwd: dir });
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(r.log, ['HEAD /containers/web/archive?path=%2Fetc%2Flink', 'GET /containers/web/archive?path=%2Fetc%2Freal.conf']);
  assert.equal(await fs.readFile(path.join(dir, 'link'), 'utf8'), 'conf');
});

test('cp LOCAL CONTAINER:PATH: stat the destination, PUT an archive renamed for it into its directory', async (t) => {
  const dir = await tmpdir(t);
  await fs.mkdir(path.join(dir, 'd'));
  await fs.writeFile(path.join(dir, 'd', 'a.txt'), 'a');
  const dataDir = { '/data': { name: 'data', size: 4096, mode: GO_MODE_DIR + 0o755, mtime: '', linkTarget: '' } };
  const r = await runIsula({ archive: { stats: dataDir } }, ['cp', '-a', 'd', 'web:/data/new'], { cwd: dir });
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(r.log, ['HEAD /containers/web/archive?path=%2Fdata%2Fnew', 'PUT /containers/web/archive?path=%2Fdata&noOverwriteDirNonDir=true&copyUIDGID=true']);
  assert.deepEqual((await entryNames(r.bodies.get('/containers/web/archive') as Buffer)).sort(), ['Directory:new/', 'File:new/a.txt']);
  const into = await runIsula({ archive: { stats: dataDir } }, ['cp', 'd/a.txt', 'web:/data'], { cwd: dir });
  assert.deepEqual(into.log, ['HEAD /containers/web/archive?path=%2Fdata', 'PUT /containers/web/archive?path=%2Fdata&noOverwriteDirNonDir=true']);
  assert.deepEqual(await entryNames(into.bodies.get('/containers/web/archive') as Buffer), ['File:a.txt']);
  const fromStdin = await runIsula({ archive: { stats: dataDir } }, ['cp', '-', 'web:/data'], { cwd: dir, input: rawTar([{ name: 'x', body: 'y' }]) });
  assert.equal(fromStdin.code, 0);
  assert.deepEqual(await entryNames(fromStdin.bodies.get('/containers/web/archive') as Buffer), ['File:x']);
  const stdinToFile = await runIsula({ archive: { stats: {} } }, ['cp', '-', 'web:/data/file'], { cwd: dir, input: '' });
  assert.deepEqual([stdinToFile.code, stdinToFile.stderr], [1, 'destination "web:/data/file" must be a directory\n']);
  const both = await runIsula({}, ['cp', 'a:/x', 'b:/y'], { cwd: dir });
  assert.deepEqual([both.code, both.stderr], [1, 'isula: copying between containers is not supported\n']);
  const none = await runIsula({}, ['cp', 'x', 'y'], { cwd: dir });
  assert.deepEqual([none.code, none.stderr], [1, 'isula: must specify at least one container source\n']);
});
