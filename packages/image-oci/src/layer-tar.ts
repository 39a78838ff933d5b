/**
 * A container's writable layer as an image layer (`isula commit`): the
 * overlay upper dir written as an uncompressed tar in the OCI layer format,
 * the one `extractLayer` reads. Overlay's own markers become the format's:
 * a 0/0 character device (a deleted file) is a `.wh.NAME` entry, a directory
 * overlay marked opaque gets a `.wh..wh..opq` entry after it. Entries come
 * depth-first in name order (upper-walk.ts: a symlink is never followed,
 * whatever the container swaps in), hard links within the layer as links to
 * their first path, owners numeric; a name that is not UTF-8 is refused. Extended attributes are not carried (README,
 * "Commit").
 *
 * The headers are node-tar's `Header` and `Pax` (the same library extracts
 * layers); the walk and the whiteouts are ours, as node-tar's packer has no
 * hook for either.
 */
import { createHash } from 'node:crypto';
import fs, { type FileHandle } from 'node:fs/promises';
import { IsulaError } from '@isula/core';
import { openWalkedFile, walkUpper, type UpperEntry } from './upper-walk.js';
import { Header, Pax } from 'tar';

const BLOCK = 512;

type EntryType = 'File' | 'Directory' | 'SymbolicLink' | 'Link' | 'CharacterDevice' | 'BlockDevice' | 'FIFO';

interface Entry {
  path: string;
  type: EntryType;
  mode: number;
  uid: number;
  gid: number;
  mtime: Date;
  size?: number;
  linkpath?: string;
  devmaj?: number;
  devmin?: number;
}

/** What was written: the tar's sha256 (its digest and, uncompressed, its diff id), its size and how many entries it holds. */
export interface LayerTar { digest: string; size: number; entries: number }

/**
 * Writes `root` (an overlay upper dir) to `file` as a layer tar. `opaque`
 * holds the opaque directories as `/rel/path`s (store.ts's `opaqueDirs`),
 * `exclude` paths left out with what is under them (the mount points the
 * runtime made, which are not the container's changes).
 */
export async function writeLayerTar(root: string, file: string, opaque: ReadonlySet<string>, exclude: ReadonlySet<string>, signal?: AbortSignal): Promise<LayerTar> {
  const out = await fs.open(file, 'wx', 0o600);
  const hash = createHash('sha256');
  let size = 0;
  const write = async (buf: Buffer): Promise<void> => {
    hash.update(buf);
    size += buf.length;
    let off = 0;
    while (off < buf.length) off += (await out.write(buf, off, buf.length - off)).bytesWritten;
  };
  const header = async (e: Entry): Promise<void> => {
    const fields = { ...e, uname: '', gname: '' };
    const h = new Header(fields);
    const block = Buffer.alloc(BLOCK);
    h.encode(block, 0);
    // Names or link targets too long for ustar, or ids past its octal fields: a PAX header first.
    if (h.needPax) await write(new Pax({ path: e.path, ...(e.linkpath !== undefined && { linkpath: e.linkpath }), uid: e.uid, gid: e.gid, size: e.size ?? 0, mtime: e.mtime }).encode());
    await write(block);
  };
  const firstPathOf = new Map<bigint, string>();
  let entries = 0;
  const visit = async (e: UpperEntry): Promise<'skip' | void> => {
    const { rel: relPath, st } = e;
    if (exclude.has(`/${relPath}`)) return 'skip';
    if (!e.validName) throw new IsulaError('CONTAINER_PATH_INVALID', `cannot commit /${relPath}: its name is not valid UTF-8`);
    const slash = relPath.lastIndexOf('/');
    const [rel, name] = slash < 0 ? ['', relPath] : [relPath.slice(0, slash), relPath.slice(slash + 1)];
    const base = { mode: Number(st.mode & 0o7777n), uid: Number(st.uid), gid: Number(st.gid), mtime: new Date(Number(st.mtimeMs)) };
    entries += 1;
    if (st.isCharacterDevice() && st.rdev === 0n) {
      const wh = rel === '' ? `.wh.${name}` : `${rel}/.wh.${name}`;
      await header({ path: wh, type: 'File', size: 0, ...base, mode: 0, uid: 0, gid: 0 });
    } else if (st.isDirectory()) {
      await header({ path: `${relPath}/`, type: 'Directory', ...base });
      if (opaque.has(`/${relPath}`)) await header({ path: `${relPath}/.wh..wh..opq`, type: 'File', size: 0, ...base, mode: 0, uid: 0, gid: 0 });
    } else if (st.isSymbolicLink()) {
      await header({ path: relPath, type: 'SymbolicLink', linkpath: await fs.readlink(e.at, 'utf8'), ...base });
    } else if (st.isFile()) {
      const first = st.nlink > 1n ? firstPathOf.get(st.ino) : undefined;
      if (first !== undefined) {
        await header({ path: relPath, type: 'Link', linkpath: first, ...base });
        return;
      }
      const fh = await openWalkedFile(e);
      if (fh === undefined) { entries -= 1; return; } // replaced since the listing: left out
      try {
        if (st.nlink > 1n) firstPathOf.set(st.ino, relPath);
        await header({ path: relPath, type: 'File', size: Number(st.size), ...base });
        await copyContent(fh, Number(st.size), write);
      } finally {
        await fh.close();
      }
    } else if (st.isCharacterDevice() || st.isBlockDevice()) {
      const rdev = Number(st.rdev);
      // Linux's dev_t: major in bits 8-19 (and 32+), minor in bits 0-7 and 20-31.
      const devmaj = ((rdev >> 8) & 0xfff) | (Math.floor(rdev / 2 ** 32) & ~0xfff);
      const devmin = (rdev & 0xff) | ((rdev >> 12) & 0xfff00);
      await header({ path: relPath, type: st.isCharacterDevice() ? 'CharacterDevice' : 'BlockDevice', devmaj, devmin, ...base });
    } else if (st.isFIFO()) {
      await header({ path: relPath, type: 'FIFO', ...base });
    } else {
      entries -= 1; // a socket has no tar form: left out, as docker's archive leaves it out
    }
  };
  try {
    await walkUpper(root, visit, signal);
    await write(Buffer.alloc(BLOCK * 2));
    await out.sync();
  } catch (err) {
    await out.close().catch(() => {});
    await fs.rm(file, { force: true });
    throw err;
  }
  await out.close();
  return { digest: `sha256:${hash.digest('hex')}`, size, entries };
}

/** A regular file's bytes, padded to the block size; exactly `want` bytes (a file still being written is cut, or padded with zeros). */
async function copyContent(fh: FileHandle, want: number, write: (b: Buffer) => Promise<void>): Promise<void> {
  const buf = Buffer.alloc(1 << 16);
  let done = 0;
  while (done < want) {
    const { bytesRead } = await fh.read(buf, 0, Math.min(buf.length, want - done), done);
    if (bytesRead === 0) break;
    await write(Buffer.from(buf.subarray(0, bytesRead)));
    done += bytesRead;
  }
  if (done < want) await write(Buffer.alloc(want - done));
  const pad = (BLOCK - (want % BLOCK)) % BLOCK;
  if (pad > 0) await write(Buffer.alloc(pad));
}
