/** docker cp / docker export on a directory standing in for a container's rootfs. */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { test, type TestContext } from 'node:test';
import { Header, type HeaderData } from 'tar';
import { archiveContainerPath, exportRootfs, extractToContainer, statContainerPath } from '../src/container/archive.js';
import { isIsulaError, type ErrorCode } from '../src/errors.js';

const isRoot = process.getuid?.() === 0;
// Under CI a missing prerequisite fails instead of skipping (STYLE.md, Tests).
const needsRoot = isRoot || process.env['CI'] === 'true' ? false : 'needs root (owners, mknod, mount)';

const GO_DIR = 2 ** 31;
const GO_SYMLINK = 2 ** 27;
const GO_DEVICE = 2 ** 26;
const GO_PIPE = 2 ** 25;
const GO_SETUID = 2 ** 23;
const GO_CHARDEV = 2 ** 21;

interface Sandbox {
  /** The container's root filesystem. */
  rootfs: string;
  /** A host directory beside it that nothing may touch. */
  outside: string;
  dir: string;
}

async function sandbox(t: TestContext): Promise<Sandbox> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'isula-archive-'));
  t.after(() => fs.rm(dir, { recursive: true, force: true }));
  const rootfs = path.join(dir, 'rootfs');
  const outside = path.join(dir, 'outside');
  await fs.mkdir(rootfs);
  await fs.mkdir(outside);
  await fs.writeFile(path.join(outside, 'secret'), 'host secret\n');
  return { rootfs, outside, dir };
}

/** A small image-like tree: /etc/{hostname,passwd,sub/link,hard}, /bin/sh, /linkdir -> etc. */
async function populate(rootfs: string): Promise<void> {
  await fs.mkdir(path.join(rootfs, 'etc', 'sub'), { recursive: true });
  await fs.mkdir(path.join(rootfs, 'bin'));
  await fs.writeFile(path.join(rootfs, 'etc', 'hostname'), 'box\n');
  await fs.writeFile(path.join(rootfs, 'etc', 'passwd'), 'root:x:0:0:root:/root:/bin/sh\n');
  await fs.link(path.join(rootfs, 'etc', 'passwd'), path.join(rootfs, 'etc', 'hard'));
  await fs.symlink('/etc/hostname', path.join(rootfs, 'etc', 'sub', 'link'));
  await fs.writeFile(path.join(rootfs, 'bin', 'sh'), '#!fake shell\n', { mode: 0o755 });
  await fs.chmod(path.join(rootfs, 'bin', 'sh'), 0o4755);
  await fs.symlink('etc', path.join(rootfs, 'linkdir'));
}

async function collect(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(typeof c === 'string' ? Buffer.from(c) : c);
  return Buffer.concat(chunks);
}

/** Member names as GNU tar lists them. */
async function tarNames(dir: string, tarball: Buffer): Promise<string[]> {
  const file = path.join(dir, `list-${Math.random().toString(16).slice(2)}.tar`);
  await fs.writeFile(file, tarball);
  return execFileSync('tar', ['-tf', file], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).split('\n').filter((l) => l !== '');
}

/** `tar -tvf` lines keyed by member name. */
async function tarVerbose(dir: string, tarball: Buffer): Promise<Map<string, string>> {
  const file = path.join(dir, `listv-${Math.random().toString(16).slice(2)}.tar`);
  await fs.writeFile(file, tarball);
  const out = execFileSync('tar', ['--numeric-owner', '-tvf', file], { encoding: 'utf8' });
  const lines = new Map<string, string>();
  for (const line of out.split('\n').filter((l) => l !== '')) {
    const name = line.split(/\s+/)[5] ?? '';
    lines.set(name, line);
  }
  return lines;
}

/** A tar made by hand, for archives the tar CLI will not write (absolute, `..`, hostile). */
function rawTar(entries: Array<HeaderData & { body?: string }>): Buffer {
  const blocks: Buffer[] = [];
  for (const e of entries) {
    const body = Buffer.from(e.body ?? '');
    const { body: _ignored, ...data } = e;
    const h = new Header({ mode: 0o644, uid: 0, gid: 0, mtime: new Date(1_600_000_000_000), type: 'File', ...data, size: body.length });
    h.encode();
    assert.ok(h.block);
    blocks.push(h.block, body, Buffer.alloc((512 - (body.length % 512)) % 512));
  }
  blocks.push(Buffer.alloc(1024));
  return Buffer.concat(blocks);
}

function tarCli(args: string[]): Buffer {
  return execFileSync('tar', args, { maxBuffer: 64 * 1024 * 1024 });
}

async function rejectsWith(p: Promise<unknown>, code: ErrorCode): Promise<unknown> {
  let caught: unknown;
  await p.then(
    () => assert.fail(`expected ${code}`),
    (err: unknown) => {
      caught = err;
    },
  );
  assert.ok(isIsulaError(caught, code), `expected ${code}, got ${String(caught)}`);
  return caught;
}

async function exists(p: string): Promise<boolean> {
  return fs.lstat(p).then(
    () => true,
    () => false,
  );
}

async function assertOutsideUntouched(sb: Sandbox, hostNames: string[] = []): Promise<void> {
  assert.deepEqual(await fs.readdir(sb.outside), ['secret']);
  assert.equal(await fs.readFile(path.join(sb.outside, 'secret'), 'utf8'), 'host secret\n');
  assert.equal((await fs.stat(path.join(sb.outside, 'secret'))).nlink, 1);
  assert.deepEqual((await fs.readdir(sb.dir)).filter((n) => !n.startsWith('list')).sort(), ['outside', 'rootfs']);
  for (const n of hostNames) assert.equal(await exists(n), false, `${n} must not exist on the host`);
}

// ---------------------------------------------------------------------------
// stat

test('stat reports a file, a directory and a symlink with Go FileMode bits', async (t) => {
  const { rootfs } = await sandbox(t);
  await populate(rootfs);
  // Seconds as a float: .5 is exact, so the nanoseconds are too.
  await fs.utimes(path.join(rootfs, 'etc', 'hostname'), 0, Date.UTC(2024, 0, 2, 3, 4, 5) / 1000 + 0.5);

  const file = await statContainerPath(rootfs, '/etc/hostname');
  assert.deepEqual(file, { name: 'hostname', size: 4, mode: 0o644, mtime: '2024-01-02T03:04:05.5Z', linkTarget: '' });

  const dir = await statContainerPath(rootfs, '/etc');
  assert.equal(dir.name, 'etc');
  assert.equal(dir.mode, GO_DIR + ((await fs.stat(path.join(rootfs, 'etc'))).mode & 0o777));
  assert.match(dir.mtime, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z$/);

  const link = await statContainerPath(rootfs, '/etc/sub/link');
  assert.equal(link.mode, GO_SYMLINK + 0o777);
  assert.equal(link.linkTarget, '/etc/hostname');
  assert.equal(link.size, '/etc/hostname'.length);

  assert.equal((await statContainerPath(rootfs, '/bin/sh')).mode, GO_SETUID + 0o755);
  assert.equal((await statContainerPath(rootfs, '/')).name, '/');
});

test('stat of a relative path is relative to the container root', async (t) => {
  const { rootfs } = await sandbox(t);
  await populate(rootfs);
  assert.deepEqual(await statContainerPath(rootfs, 'etc/hostname'), await statContainerPath(rootfs, '/etc/hostname'));
});

test('stat does not follow a final symlink unless the path ends in / or /.', async (t) => {
  const { rootfs } = await sandbox(t);
  await populate(rootfs);
  const link = await statContainerPath(rootfs, '/linkdir');
  assert.equal(link.mode, GO_SYMLINK + 0o777);
  assert.equal(link.linkTarget, '/etc');
  const followed = await statContainerPath(rootfs, '/linkdir/');
  assert.ok(followed.mode >= GO_DIR);
  assert.equal(followed.name, 'linkdir');
  assert.equal((await statContainerPath(rootfs, '/linkdir/.')).name, '.');
  // Intermediate symlinks are followed, inside the rootfs.
  assert.equal((await statContainerPath(rootfs, '/linkdir/hostname')).size, 4);
});

test('stat of a missing path or a file with a trailing slash fails with a path code', async (t) => {
  const { rootfs } = await sandbox(t);
  await populate(rootfs);
  const err = await rejectsWith(statContainerPath(rootfs, '/nope/file'), 'CONTAINER_PATH_NOT_FOUND');
  assert.equal((err as Error).message, 'Could not find the file /nope/file in container');
  await rejectsWith(statContainerPath(rootfs, '/etc/hostname/x'), 'CONTAINER_PATH_NOT_FOUND');
  await rejectsWith(statContainerPath(rootfs, '/etc/hostname/'), 'CONTAINER_PATH_INVALID');
});

test('stat marks fifos and character devices', { skip: needsRoot }, async (t) => {
  const { rootfs } = await sandbox(t);
  execFileSync('mknod', ['-m', '600', path.join(rootfs, 'fifo'), 'p']);
  execFileSync('mknod', ['-m', '666', path.join(rootfs, 'null'), 'c', '1', '3']);
  assert.equal((await statContainerPath(rootfs, '/fifo')).mode, GO_PIPE + 0o600);
  assert.equal((await statContainerPath(rootfs, '/null')).mode, GO_DEVICE + GO_CHARDEV + 0o666);
});

test('stat and GET resolve symlinks inside the rootfs, never on the host', async (t) => {
  const sb = await sandbox(t);
  const { rootfs, outside } = sb;
  await fs.symlink(outside, path.join(rootfs, 'abs'));
  await fs.symlink('../../../../../../../../../..' + outside, path.join(rootfs, 'rel'));
  await fs.symlink('/', path.join(rootfs, 'evil'));
  for (const p of ['/abs/secret', '/rel/secret', `/evil${outside}/secret`, '/abs/', `/../../..${outside}/secret`]) {
    await rejectsWith(statContainerPath(rootfs, p), 'CONTAINER_PATH_NOT_FOUND');
    await rejectsWith(archiveContainerPath(rootfs, p), 'CONTAINER_PATH_NOT_FOUND');
  }
  assert.equal((await statContainerPath(rootfs, '/abs')).linkTarget, outside);
  // GET of /evil/ is the container's root, not the host's.
  const { stream } = await archiveContainerPath(rootfs, '/evil/');
  const names = await tarNames(sb.dir, await collect(stream));
  assert.deepEqual(names.sort(), ['evil/', 'evil/abs', 'evil/evil', 'evil/rel']);
});

// ---------------------------------------------------------------------------
// GET archive

test('GET of a file is one entry named after it, with its content and mode', async (t) => {
  const sb = await sandbox(t);
  await populate(sb.rootfs);
  const { stat, stream } = await archiveContainerPath(sb.rootfs, '/bin/sh');
  assert.equal(stat.name, 'sh');
  const tarball = await collect(stream);
  assert.deepEqual(await tarNames(sb.dir, tarball), ['sh']);
  const line = (await tarVerbose(sb.dir, tarball)).get('sh') ?? '';
  assert.match(line, /^-rwsr-xr-x 0\/0 /);
  const out = path.join(sb.dir, 'x');
  await fs.mkdir(out);
  await fs.writeFile(path.join(sb.dir, 'sh.tar'), tarball);
  execFileSync('tar', ['-xpf', path.join(sb.dir, 'sh.tar'), '-C', out]);
  assert.equal(await fs.readFile(path.join(out, 'sh'), 'utf8'), '#!fake shell\n');
  await fs.rm(out, { recursive: true });
  await fs.rm(path.join(sb.dir, 'sh.tar'));
});

test('GET of a directory rebases entries onto its base name and keeps links as links', async (t) => {
  const sb = await sandbox(t);
  await populate(sb.rootfs);
  await fs.lchown(path.join(sb.rootfs, 'etc', 'sub', 'link'), 1234, 5678).catch(() => undefined);
  const { stat, stream } = await archiveContainerPath(sb.rootfs, '/etc');
  assert.ok(stat.mode >= GO_DIR);
  const tarball = await collect(stream);
  assert.deepEqual(await tarNames(sb.dir, tarball), ['etc/', 'etc/hard', 'etc/hostname', 'etc/passwd', 'etc/sub/', 'etc/sub/link']);
  const v = await tarVerbose(sb.dir, tarball);
  assert.match(v.get('etc/sub/link') ?? '', /^lrwxrwxrwx .* etc\/sub\/link -> \/etc\/hostname$/);
  if (isRoot) assert.match(v.get('etc/sub/link') ?? '', / 1234\/5678 /);
  // The first name of a multiply-linked file carries the data, the next is a link to it.
  assert.match(v.get('etc/passwd') ?? '', /^h.* etc\/passwd link to etc\/hard$/);
});

test('GET of dir/. rebases onto "." and GET of / onto "/"', async (t) => {
  const sb = await sandbox(t);
  await populate(sb.rootfs);
  const dot = await archiveContainerPath(sb.rootfs, '/etc/.');
  assert.equal(dot.stat.name, '.');
  assert.deepEqual(await tarNames(sb.dir, await collect(dot.stream)), ['./', './hard', './hostname', './passwd', './sub/', './sub/link']);

  const root = await archiveContainerPath(sb.rootfs, '/');
  const names: string[] = [];
  const { Parser } = await import('tar');
  const parser = new Parser({ onReadEntry: (e) => { names.push(e.path); e.resume(); } });
  parser.end(await collect(root.stream));
  assert.deepEqual(names.slice(0, 3), ['/', '/bin/', '/bin/sh']);
});

test('GET of a final symlink archives the link, and with a trailing slash its target', async (t) => {
  const sb = await sandbox(t);
  await populate(sb.rootfs);
  const link = await archiveContainerPath(sb.rootfs, '/linkdir');
  const v = await tarVerbose(sb.dir, await collect(link.stream));
  assert.deepEqual([...v.keys()], ['linkdir']);
  assert.match(v.get('linkdir') ?? '', /^l.* linkdir -> etc$/);
  const followed = await archiveContainerPath(sb.rootfs, '/linkdir/');
  assert.deepEqual((await tarNames(sb.dir, await collect(followed.stream)))[0], 'linkdir/');
});

test('GET keeps fifos and devices', { skip: needsRoot }, async (t) => {
  const sb = await sandbox(t);
  await fs.mkdir(path.join(sb.rootfs, 'dev'));
  execFileSync('mknod', ['-m', '666', path.join(sb.rootfs, 'dev', 'null'), 'c', '1', '3']);
  execFileSync('mknod', ['-m', '640', path.join(sb.rootfs, 'dev', 'fifo'), 'p']);
  const { stream } = await archiveContainerPath(sb.rootfs, '/dev');
  const v = await tarVerbose(sb.dir, await collect(stream));
  assert.match(v.get('dev/null') ?? '', /^crw-rw-rw- 0\/0 +1,3 /);
  assert.match(v.get('dev/fifo') ?? '', /^prw-r----- /);
});

// ---------------------------------------------------------------------------
// PUT extraction

test('PUT extracts a tar made by the tar CLI with owners, modes, mtimes and links', { skip: needsRoot }, async (t) => {
  const sb = await sandbox(t);
  const src = path.join(sb.dir, 'src');
  await fs.mkdir(path.join(src, 'app', 'lib'), { recursive: true });
  await fs.writeFile(path.join(src, 'app', 'run.sh'), 'echo hi\n');
  await fs.chmod(path.join(src, 'app', 'run.sh'), 0o4750);
  await fs.link(path.join(src, 'app', 'run.sh'), path.join(src, 'app', 'again'));
  await fs.symlink('/usr/lib/libc.so', path.join(src, 'app', 'lib', 'libc.so'));
  await fs.chmod(path.join(src, 'app', 'lib'), 0o750);
  for (const p of ['app', 'app/run.sh', 'app/lib']) await fs.chown(path.join(src, p), 1234, 5678);
  await fs.chmod(path.join(src, 'app', 'run.sh'), 0o4750); // chown cleared setuid
  await fs.lchown(path.join(src, 'app', 'lib', 'libc.so'), 42, 43);
  const mtime = new Date(Date.UTC(2020, 5, 1));
  for (const p of ['app/run.sh', 'app/lib', 'app']) await fs.utimes(path.join(src, p), mtime, mtime);
  const tarball = tarCli(['--numeric-owner', '-C', src, '-cf', '-', '.']);
  await fs.rm(src, { recursive: true });
  await fs.mkdir(path.join(sb.rootfs, 'dst'));

  await extractToContainer(sb.rootfs, '/dst', Readable.from([tarball]), { noOverwriteDirNonDir: true });

  const base = path.join(sb.rootfs, 'dst', 'app');
  const run = await fs.lstat(path.join(base, 'run.sh'));
  assert.equal(await fs.readFile(path.join(base, 'run.sh'), 'utf8'), 'echo hi\n');
  assert.equal(run.mode & 0o7777, 0o4750);
  assert.deepEqual([run.uid, run.gid], [1234, 5678]);
  assert.equal(run.mtime.getTime(), mtime.getTime());
  assert.equal((await fs.lstat(path.join(base, 'again'))).ino, run.ino);
  assert.equal(await fs.readlink(path.join(base, 'lib', 'libc.so')), '/usr/lib/libc.so');
  const link = await fs.lstat(path.join(base, 'lib', 'libc.so'));
  assert.deepEqual([link.uid, link.gid], [42, 43]);
  const lib = await fs.stat(path.join(base, 'lib'));
  assert.equal(lib.mode & 0o7777, 0o750);
  assert.equal(lib.mtime.getTime(), mtime.getTime());
  assert.equal((await fs.stat(base)).mtime.getTime(), mtime.getTime());
  // The extraction point keeps its own metadata ("./" is not applied).
  assert.equal((await fs.stat(path.join(sb.rootfs, 'dst'))).uid, 0);
});

test('PUT accepts a gzip-compressed archive', async (t) => {
  const sb = await sandbox(t);
  const src = path.join(sb.dir, 'src');
  await fs.mkdir(src);
  await fs.writeFile(path.join(src, 'z.txt'), 'zipped');
  const tarball = tarCli(['-C', src, '-czf', '-', 'z.txt']);
  await fs.rm(src, { recursive: true });
  await extractToContainer(sb.rootfs, '/', Readable.from([tarball]), { noOverwriteDirNonDir: false });
  assert.equal(await fs.readFile(path.join(sb.rootfs, 'z.txt'), 'utf8'), 'zipped');
});

test('PUT into a path that is missing or not a directory fails', async (t) => {
  const sb = await sandbox(t);
  await populate(sb.rootfs);
  const tarball = rawTar([{ path: 'f', body: 'x' }]);
  await rejectsWith(extractToContainer(sb.rootfs, '/nope', Readable.from([tarball]), { noOverwriteDirNonDir: false }), 'CONTAINER_PATH_NOT_FOUND');
  const err = await rejectsWith(extractToContainer(sb.rootfs, '/etc/hostname', Readable.from([tarball]), { noOverwriteDirNonDir: false }), 'CONTAINER_PATH_INVALID');
  assert.equal((err as Error).message, 'extraction point is not a directory');
});

test('PUT follows symlinks to the extraction point inside the rootfs', async (t) => {
  const sb = await sandbox(t);
  await populate(sb.rootfs);
  await fs.symlink('/etc', path.join(sb.rootfs, 'etc', 'sub', 'up'));
  await extractToContainer(sb.rootfs, '/etc/sub/up', Readable.from([rawTar([{ path: 'new', body: 'n' }])]), { noOverwriteDirNonDir: false });
  assert.equal(await fs.readFile(path.join(sb.rootfs, 'etc', 'new'), 'utf8'), 'n');
  // A symlink to the host is read inside the rootfs: /abs -> <outside> is missing there.
  await fs.symlink(sb.outside, path.join(sb.rootfs, 'abs'));
  await rejectsWith(extractToContainer(sb.rootfs, '/abs', Readable.from([rawTar([{ path: 'pwned', body: 'x' }])]), { noOverwriteDirNonDir: false }), 'CONTAINER_PATH_NOT_FOUND');
  await assertOutsideUntouched(sb);
});

test('PUT refuses entries below an existing symlink to /, to a host path or climbing with ../', async (t) => {
  const sb = await sandbox(t);
  const marker = `isula-archive-pwned-${process.pid}-${Date.now()}`;
  await fs.symlink('/', path.join(sb.rootfs, 'evil'));
  await fs.symlink(sb.outside, path.join(sb.rootfs, 'host'));
  await fs.symlink('../../../../../../../../../../..', path.join(sb.rootfs, 'up'));
  await fs.symlink(`../../../../../../../../..${sb.outside}`, path.join(sb.rootfs, 'upout'));
  for (const [link, hostTarget] of [['evil', '/'], ['host', sb.outside], ['up', '/'], ['upout', sb.outside]] as const) {
    for (const name of [`${link}/${marker}`, `${link}/tmp/${marker}`]) {
      const err = await rejectsWith(
        extractToContainer(sb.rootfs, '/', Readable.from([rawTar([{ path: name, body: 'pwned' }])]), { noOverwriteDirNonDir: false }),
        'CONTAINER_ARCHIVE_INVALID',
      );
      assert.equal((err as { details?: Record<string, unknown> }).details?.['entry'], name);
    }
    // A directory entry and a hard link through the symlink are refused too.
    await rejectsWith(extractToContainer(sb.rootfs, '/', Readable.from([rawTar([{ path: `${link}/${marker}/`, type: 'Directory' }])]), { noOverwriteDirNonDir: false }), 'CONTAINER_ARCHIVE_INVALID');
    await rejectsWith(extractToContainer(sb.rootfs, '/', Readable.from([rawTar([{ path: marker, type: 'Link', linkpath: `${link}/secret` }])]), { noOverwriteDirNonDir: false }), 'CONTAINER_ARCHIVE_INVALID');
    await assertOutsideUntouched(sb, [path.join(hostTarget, marker), path.join('/tmp', marker)]);
  }
  assert.equal(await exists(path.join(sb.rootfs, marker)), false);
  // The links themselves are untouched.
  assert.equal(await fs.readlink(path.join(sb.rootfs, 'evil')), '/');
});

test('PUT creates a symlink from the archive verbatim and refuses a later entry through it', async (t) => {
  const sb = await sandbox(t);
  const tarball = rawTar([
    { path: 'x', type: 'SymbolicLink', linkpath: sb.outside },
    { path: 'x/file', body: 'pwned' },
  ]);
  const err = await rejectsWith(extractToContainer(sb.rootfs, '/', Readable.from([tarball]), { noOverwriteDirNonDir: false }), 'CONTAINER_ARCHIVE_INVALID');
  assert.match((err as Error).message, /"x\/file"/);
  assert.equal(await fs.readlink(path.join(sb.rootfs, 'x')), sb.outside);
  await assertOutsideUntouched(sb);

  // Same with a directory replaced by a symlink, then written through.
  await fs.rm(path.join(sb.rootfs, 'x'));
  const swap = rawTar([
    { path: 'd/', type: 'Directory', mode: 0o755 },
    { path: 'd', type: 'SymbolicLink', linkpath: '../outside' },
    { path: 'd/secret', body: 'overwritten' },
  ]);
  await rejectsWith(extractToContainer(sb.rootfs, '/', Readable.from([swap]), { noOverwriteDirNonDir: false }), 'CONTAINER_ARCHIVE_INVALID');
  await assertOutsideUntouched(sb);
});

test('PUT refuses entries and hard links that climb out with ..', async (t) => {
  const sb = await sandbox(t);
  await fs.mkdir(path.join(sb.rootfs, 'dst'));
  for (const name of ['../escape', '../../escape', 'a/../../escape', '..']) {
    await rejectsWith(extractToContainer(sb.rootfs, '/dst', Readable.from([rawTar([{ path: name, body: 'x' }])]), { noOverwriteDirNonDir: false }), 'CONTAINER_ARCHIVE_INVALID');
  }
  await rejectsWith(
    extractToContainer(sb.rootfs, '/dst', Readable.from([rawTar([{ path: 'h', type: 'Link', linkpath: '../../outside/secret' }])]), { noOverwriteDirNonDir: false }),
    'CONTAINER_ARCHIVE_INVALID',
  );
  assert.deepEqual(await fs.readdir(path.join(sb.rootfs, 'dst')), []);
  assert.equal(await exists(path.join(sb.rootfs, 'escape')), false);
  assert.equal(await exists(path.join(sb.dir, 'escape')), false);
  await assertOutsideUntouched(sb);
  // A .. that stays inside is cleaned, as moby does.
  await extractToContainer(sb.rootfs, '/dst', Readable.from([rawTar([{ path: 'a/../b', body: 'b' }])]), { noOverwriteDirNonDir: false });
  assert.deepEqual(await fs.readdir(path.join(sb.rootfs, 'dst')), ['b']);
});

test('PUT strips the leading / of absolute entries', async (t) => {
  const sb = await sandbox(t);
  await fs.mkdir(path.join(sb.rootfs, 'dst'));
  const marker = `isula-archive-abs-${process.pid}-${Date.now()}`;
  await extractToContainer(sb.rootfs, '/dst', Readable.from([rawTar([{ path: `/tmp/${marker}`, body: 'abs' }, { path: '/h', type: 'Link', linkpath: `/tmp/${marker}` }])]), { noOverwriteDirNonDir: false });
  assert.equal(await fs.readFile(path.join(sb.rootfs, 'dst', 'tmp', marker), 'utf8'), 'abs');
  assert.equal((await fs.stat(path.join(sb.rootfs, 'dst', 'h'))).nlink, 2);
  assert.equal(await exists(path.join('/tmp', marker)), false);
});

test('PUT with noOverwriteDirNonDir refuses to swap a directory and a non-directory', async (t) => {
  const sb = await sandbox(t);
  await fs.mkdir(path.join(sb.rootfs, 'd', 'inner'), { recursive: true });
  await fs.writeFile(path.join(sb.rootfs, 'f'), 'file');
  const fileOverDir = rawTar([{ path: 'd', body: 'now a file' }]);
  const dirOverFile = rawTar([{ path: 'f/', type: 'Directory', mode: 0o755 }]);
  await rejectsWith(extractToContainer(sb.rootfs, '/', Readable.from([fileOverDir]), { noOverwriteDirNonDir: true }), 'CONTAINER_PATH_INVALID');
  await rejectsWith(extractToContainer(sb.rootfs, '/', Readable.from([dirOverFile]), { noOverwriteDirNonDir: true }), 'CONTAINER_PATH_INVALID');
  assert.ok((await fs.lstat(path.join(sb.rootfs, 'd'))).isDirectory());
  assert.ok((await fs.lstat(path.join(sb.rootfs, 'f'))).isFile());
  // Without the flag, both are replaced (moby).
  await extractToContainer(sb.rootfs, '/', Readable.from([fileOverDir]), { noOverwriteDirNonDir: false });
  await extractToContainer(sb.rootfs, '/', Readable.from([dirOverFile]), { noOverwriteDirNonDir: false });
  assert.equal(await fs.readFile(path.join(sb.rootfs, 'd'), 'utf8'), 'now a file');
  assert.ok((await fs.lstat(path.join(sb.rootfs, 'f'))).isDirectory());
});

test('PUT replaces an existing symlink with the entry instead of writing through it', async (t) => {
  const sb = await sandbox(t);
  await fs.symlink(path.join(sb.outside, 'secret'), path.join(sb.rootfs, 'target'));
  await extractToContainer(sb.rootfs, '/', Readable.from([rawTar([{ path: 'target', body: 'mine' }])]), { noOverwriteDirNonDir: true });
  assert.ok((await fs.lstat(path.join(sb.rootfs, 'target'))).isFile());
  assert.equal(await fs.readFile(path.join(sb.rootfs, 'target'), 'utf8'), 'mine');
  await assertOutsideUntouched(sb);
});

test('PUT that fails midway names the entry and keeps what came before', async (t) => {
  const sb = await sandbox(t);
  await fs.symlink('/', path.join(sb.rootfs, 'evil'));
  const tarball = rawTar([{ path: 'ok.txt', body: 'fine' }, { path: 'evil/bad', body: 'no' }, { path: 'after.txt', body: 'never' }]);
  const err = await rejectsWith(extractToContainer(sb.rootfs, '/', Readable.from([tarball]), { noOverwriteDirNonDir: false }), 'CONTAINER_ARCHIVE_INVALID');
  assert.equal((err as { details?: Record<string, unknown> }).details?.['entry'], 'evil/bad');
  assert.equal(await fs.readFile(path.join(sb.rootfs, 'ok.txt'), 'utf8'), 'fine');
  assert.equal(await exists(path.join(sb.rootfs, 'after.txt')), false);
});

test('PUT of a truncated or garbage archive fails, an empty one succeeds', async (t) => {
  const sb = await sandbox(t);
  const whole = rawTar([{ path: 'big', body: 'y'.repeat(5000) }]);
  await rejectsWith(extractToContainer(sb.rootfs, '/', Readable.from([whole.subarray(0, 1536)]), { noOverwriteDirNonDir: false }), 'CONTAINER_ARCHIVE_INVALID');
  await rejectsWith(extractToContainer(sb.rootfs, '/', Readable.from([Buffer.from('this is not a tar archive'.repeat(40))]), { noOverwriteDirNonDir: false }), 'CONTAINER_ARCHIVE_INVALID');
  await extractToContainer(sb.rootfs, '/', Readable.from([]), { noOverwriteDirNonDir: false });
  await extractToContainer(sb.rootfs, '/', Readable.from([Buffer.alloc(10240)]), { noOverwriteDirNonDir: false });
  assert.deepEqual((await fs.readdir(sb.rootfs)).filter((n) => n !== 'big'), []);
});

test('PUT stops when its signal aborts', async (t) => {
  const sb = await sandbox(t);
  const body = 'z'.repeat(4096);
  const tarball = rawTar([{ path: 'first', body: 'one' }, { path: 'slow', body }]);
  const input = new PassThrough();
  const ac = new AbortController();
  // Everything but the tail of "slow": extraction waits for more data.
  input.write(tarball.subarray(0, 512 * 4));
  const done = extractToContainer(sb.rootfs, '/', input, { noOverwriteDirNonDir: false, signal: ac.signal });
  const deadline = Date.now() + 5000;
  while (!(await exists(path.join(sb.rootfs, 'slow'))) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  ac.abort();
  await rejectsWith(done, 'CANCELED');
  await rejectsWith(extractToContainer(sb.rootfs, '/', Readable.from([tarball]), { noOverwriteDirNonDir: false, signal: ac.signal }), 'CANCELED');
  assert.equal(await fs.readFile(path.join(sb.rootfs, 'first'), 'utf8'), 'one');
  input.destroy();
});

test('PUT streams a large file with backpressure', async (t) => {
  const sb = await sandbox(t);
  const big = Buffer.alloc(8 * 1024 * 1024, 7);
  const src = path.join(sb.dir, 'src');
  await fs.mkdir(src);
  await fs.writeFile(path.join(src, 'big.bin'), big);
  await fs.writeFile(path.join(src, 'small'), 's');
  const tarball = tarCli(['-C', src, '-cf', '-', 'big.bin', 'small']);
  await fs.rm(src, { recursive: true });
  // Small chunks, so the parser has to ask for more many times.
  async function* chunks(): AsyncGenerator<Buffer> {
    for (let i = 0; i < tarball.length; i += 10_000) yield tarball.subarray(i, i + 10_000);
  }
  await extractToContainer(sb.rootfs, '/', Readable.from(chunks()), { noOverwriteDirNonDir: false });
  assert.ok((await fs.readFile(path.join(sb.rootfs, 'big.bin'))).equals(big));
  assert.equal(await fs.readFile(path.join(sb.rootfs, 'small'), 'utf8'), 's');
});

test('PUT creates fifos and devices from the archive', { skip: needsRoot }, async (t) => {
  const sb = await sandbox(t);
  const tarball = rawTar([
    { path: 'dev/null', type: 'CharacterDevice', devmaj: 1, devmin: 3, mode: 0o666, uid: 7, gid: 8 },
    { path: 'dev/pipe', type: 'FIFO', mode: 0o620 },
  ]);
  await extractToContainer(sb.rootfs, '/', Readable.from([tarball]), { noOverwriteDirNonDir: false });
  const dev = await fs.lstat(path.join(sb.rootfs, 'dev', 'null'));
  assert.ok(dev.isCharacterDevice());
  assert.equal(dev.rdev, (1 << 8) | 3);
  assert.deepEqual([dev.mode & 0o7777, dev.uid, dev.gid], [0o666, 7, 8]);
  const fifo = await fs.lstat(path.join(sb.rootfs, 'dev', 'pipe'));
  assert.ok(fifo.isFIFO());
  assert.equal(fifo.mode & 0o7777, 0o620);
});

// ---------------------------------------------------------------------------
// export

interface TreeEntry {
  type: string;
  mode: number;
  uid: number;
  gid: number;
  mtimeSec: number;
  content: string;
}

async function tree(root: string): Promise<Map<string, TreeEntry>> {
  const out = new Map<string, TreeEntry>();
  async function walk(rel: string): Promise<void> {
    for (const name of (await fs.readdir(path.join(root, rel))).sort()) {
      const r = rel === '' ? name : `${rel}/${name}`;
      const p = path.join(root, r);
      const st = await fs.lstat(p);
      const type = st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : st.isFIFO() ? 'fifo' : st.isFile() ? 'file' : 'other';
      const content = type === 'file' ? await fs.readFile(p, 'utf8') : type === 'symlink' ? await fs.readlink(p) : '';
      // Directory mtimes change when tar -x fills them; compare the rest.
      out.set(r, { type, mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, mtimeSec: type === 'dir' || type === 'symlink' ? 0 : Math.floor(st.mtimeMs / 1000), content });
      if (type === 'dir') await walk(r);
    }
  }
  await walk('');
  return out;
}

test('export round-trips the rootfs through tar -x with names relative to it', async (t) => {
  const sb = await sandbox(t);
  await populate(sb.rootfs);
  const long = 'd'.repeat(60) + '/' + 'f'.repeat(80);
  await fs.mkdir(path.join(sb.rootfs, 'd'.repeat(60)));
  await fs.writeFile(path.join(sb.rootfs, long), 'long name');
  await fs.writeFile(path.join(sb.rootfs, '.dockerenv'), '');
  if (isRoot) {
    await fs.chown(path.join(sb.rootfs, 'etc', 'hostname'), 101, 202);
    execFileSync('mknod', ['-m', '600', path.join(sb.rootfs, 'fifo'), 'p']);
  }
  const tarball = await collect(exportRootfs(sb.rootfs));
  const names = await tarNames(sb.dir, tarball);
  assert.ok(names.includes('bin/sh'));
  assert.ok(names.includes('etc/'));
  assert.ok(names.includes(long));
  assert.ok(!names.some((n) => n.startsWith('./') || n.startsWith('/')), names.join(','));

  const out = path.join(sb.dir, 'extracted');
  await fs.mkdir(out);
  const file = path.join(sb.dir, 'export.tar');
  await fs.writeFile(file, tarball);
  execFileSync('tar', ['--numeric-owner', '-xpf', file, '-C', out]);
  const want = await tree(sb.rootfs);
  const got = await tree(out);
  assert.deepEqual(got, want);
  assert.equal((await fs.stat(path.join(out, 'etc', 'hard'))).ino, (await fs.stat(path.join(out, 'etc', 'passwd'))).ino);
  await fs.rm(out, { recursive: true });
  await fs.rm(file);
});

test('export does not descend into mounts below the rootfs', { skip: needsRoot }, async (t) => {
  const sb = await sandbox(t);
  await populate(sb.rootfs);
  const mnt = path.join(sb.rootfs, 'mnt');
  await fs.mkdir(mnt);
  try {
    execFileSync('mount', ['-t', 'tmpfs', 'tmpfs', mnt], { stdio: 'ignore' });
  } catch (err) {
    if (process.env['CI'] === 'true') throw err;
    t.skip('cannot mount tmpfs here');
    return;
  }
  // Unmounted before the sandbox's own cleanup removes the directory.
  try {
    await fs.writeFile(path.join(mnt, 'volume-data'), 'not part of the container');
    const names = await tarNames(sb.dir, await collect(exportRootfs(sb.rootfs)));
    assert.ok(names.includes('mnt/'));
    assert.ok(!names.includes('mnt/volume-data'));
    assert.ok(names.includes('bin/sh'));
    // GET of a path (docker cp) does include what is mounted there.
    const { stream } = await archiveContainerPath(sb.rootfs, '/mnt');
    assert.deepEqual(await tarNames(sb.dir, await collect(stream)), ['mnt/', 'mnt/volume-data']);
  } finally {
    execFileSync('umount', [mnt]);
  }
});

test('export of a missing rootfs errors on the stream', async (t) => {
  const sb = await sandbox(t);
  await assert.rejects(collect(exportRootfs(path.join(sb.dir, 'nope'))), (err: unknown) => (err as NodeJS.ErrnoException).code === 'ENOENT');
});
