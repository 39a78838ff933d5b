/**
 * A container's writable layer as an image layer (`isula commit`): the
 * overlay upper dir written as an uncompressed tar in the OCI layer format,
 * the one `extractLayer` reads. Overlay's own markers become the format's:
 * a 0/0 character device (a deleted file) is a `.wh.NAME` entry, a directory
 * overlay marked opaque gets a `.wh..wh..opq` entry after it. Entries come
 * depth-first in name order (upper-walk.ts: a symlink is never followed,
 * whatever the container swaps in), hard links within the layer as links to
 * their first path, owners numeric; a name that is not UTF-8 is refused.
 * Extended attributes go with their entry as `SCHILY.xattr.NAME` PAX
 * records, the values as raw bytes (as Go's archive/tar writes them for
 * containerd and moby), except overlay's bookkeeping and the SELinux label
 * (`carriesXattr`; README, "Commit").
 *
 * The headers are node-tar's `Header` and `Pax` (the same library extracts
 * layers); the walk and the whiteouts are ours, as node-tar's packer has no
 * hook for either.
 */
import { createHash } from 'node:crypto';
import { basename } from 'node:path';
import fs, { type FileHandle } from 'node:fs/promises';
import { IsulaError } from '@isula/core';
import { openWalkedFile, walkUpper, type UpperEntry } from './upper-walk.js';
import { OVERLAY_OPAQUE, opaqueDirsIn, readXattrs } from './xattrs.js';
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
 * Whether an extended attribute of the upper dir goes into the layer. Not
 * overlayfs's own (`trusted.overlay.*`, or `user.overlay.*` on a `userxattr`
 * mount): whiteouts and opaque dirs are written as `.wh.` entries, and
 * redirect, metacopy, origin or impure describe this upper dir against its
 * lowers, meaningless (or harmful: the extractor drops them) in a layer.
 * Not `security.selinux`: it is the label the host gave this container (its
 * MCS categories), which every container of the new image would otherwise
 * inherit; the runtime labels a rootfs itself. Everything else is the
 * container's own: file capabilities, `user.*`, ACLs, IMA.
 */
export function carriesXattr(name: string): boolean {
  return !name.startsWith('trusted.overlay.') && !name.startsWith('user.overlay.') && name !== 'security.selinux';
}

/**
 * Writes `root` (an overlay upper dir) to `file` as a layer tar. `exclude`
 * holds paths (`/rel/path`) left out with what is under them (the mount
 * points the runtime made, which are not the container's changes).
 * The extended attributes (opaque marks among them) are read once for the
 * tree before the walk; an entry the walk finds but the dump did not (made
 * since) has none, and one the dump listed but the walk does not find (gone
 * since) is simply not written.
 *
 * Throws IsulaError: CONTAINER_PATH_INVALID for a file or attribute name a
 * tar header cannot hold; what `readXattrs` throws; the file system's errors.
 * Nothing is left at `file` on failure.
 */
export async function writeLayerTar(root: string, file: string, exclude: ReadonlySet<string>, signal?: AbortSignal): Promise<LayerTar> {
  const xattrs = await readXattrs(root, { match: '-', keep: (name) => name === OVERLAY_OPAQUE || carriesXattr(name), ...(signal !== undefined && { signal }) });
  const opaque = opaqueDirsIn(xattrs);
  const out = await fs.open(file, 'wx', 0o600);
  const hash = createHash('sha256');
  let size = 0;
  const write = async (buf: Buffer): Promise<void> => {
    hash.update(buf);
    size += buf.length;
    let off = 0;
    while (off < buf.length) off += (await out.write(buf, off, buf.length - off)).bytesWritten;
  };
  const header = async (e: Entry, attrs: ReadonlyArray<readonly [string, Buffer]> = []): Promise<void> => {
    const fields = { ...e, uname: '', gname: '' };
    const h = new Header(fields);
    const block = Buffer.alloc(BLOCK);
    h.encode(block, 0);
    // Names or link targets too long for ustar, or ids past its octal fields, and the
    // extended attributes: PAX records in an extended header first.
    const records: Buffer[] = [];
    if (h.needPax) records.push(Buffer.from(new Pax({ path: e.path, ...(e.linkpath !== undefined && { linkpath: e.linkpath }), uid: e.uid, gid: e.gid, size: e.size ?? 0, mtime: e.mtime }).encodeBody(), 'utf8'));
    for (const [name, value] of attrs) records.push(paxRecord(`SCHILY.xattr.${name}`, value));
    if (records.length > 0) await write(extendedHeader(e, Buffer.concat(records)));
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
    const attrs = carriedXattrs(relPath, xattrs.get(`/${relPath}`));
    entries += 1;
    if (st.isCharacterDevice() && st.rdev === 0n) {
      const wh = rel === '' ? `.wh.${name}` : `${rel}/.wh.${name}`;
      await header({ path: wh, type: 'File', size: 0, ...base, mode: 0, uid: 0, gid: 0 });
    } else if (st.isDirectory()) {
      await header({ path: `${relPath}/`, type: 'Directory', ...base }, attrs);
      if (opaque.has(`/${relPath}`)) await header({ path: `${relPath}/.wh..wh..opq`, type: 'File', size: 0, ...base, mode: 0, uid: 0, gid: 0 });
    } else if (st.isSymbolicLink()) {
      await header({ path: relPath, type: 'SymbolicLink', linkpath: await fs.readlink(e.at, 'utf8'), ...base }, attrs);
    } else if (st.isFile()) {
      const first = st.nlink > 1n ? firstPathOf.get(st.ino) : undefined;
      if (first !== undefined) {
        await header({ path: relPath, type: 'Link', linkpath: first, ...base }, attrs);
        return;
      }
      const fh = await openWalkedFile(e);
      if (fh === undefined) { entries -= 1; return; } // replaced since the listing: left out
      try {
        if (st.nlink > 1n) firstPathOf.set(st.ino, relPath);
        await header({ path: relPath, type: 'File', size: Number(st.size), ...base }, attrs);
        await copyContent(fh, Number(st.size), write);
      } finally {
        await fh.close();
      }
    } else if (st.isCharacterDevice() || st.isBlockDevice()) {
      const rdev = Number(st.rdev);
      // Linux's dev_t: major in bits 8-19 (and 32+), minor in bits 0-7 and 20-31.
      const devmaj = ((rdev >> 8) & 0xfff) | (Math.floor(rdev / 2 ** 32) & ~0xfff);
      const devmin = (rdev & 0xff) | ((rdev >> 12) & 0xfff00);
      await header({ path: relPath, type: st.isCharacterDevice() ? 'CharacterDevice' : 'BlockDevice', devmaj, devmin, ...base }, attrs);
    } else if (st.isFIFO()) {
      await header({ path: relPath, type: 'FIFO', ...base }, attrs);
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

/**
 * The attributes of `/rel` that go into the layer, in name order (the tar's
 * bytes, so its digest, do not depend on the order listxattr gave them).
 */
function carriedXattrs(rel: string, attrs: ReadonlyMap<string, Buffer> | undefined): Array<[string, Buffer]> {
  if (attrs === undefined) return [];
  const out: Array<[string, Buffer]> = [];
  for (const [name, value] of attrs) {
    if (!carriesXattr(name)) continue;
    // A PAX key ends at its '=' and a record at its newline (and the extractor refuses both).
    if (name === '' || /[=\n\0]/.test(name)) throw new IsulaError('CONTAINER_PATH_INVALID', `cannot commit /${rel}: its extended attribute name ${JSON.stringify(name)} cannot be written in a tar header`);
    out.push([name, value]);
  }
  return out.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

/** One PAX record, `<length> <key>=<value>\n`, the length counting its own digits; the value as raw bytes. */
function paxRecord(key: string, value: Buffer): Buffer {
  const rest = Buffer.concat([Buffer.from(` ${key}=`, 'utf8'), value, Buffer.from('\n')]);
  let len = rest.length + String(rest.length).length;
  if (String(len).length !== String(rest.length).length) len = rest.length + String(len).length;
  return Buffer.concat([Buffer.from(String(len)), rest]);
}

/** A PAX extended header (type `x`) for `e` holding `body`, padded to the block size; its own header as node-tar's `Pax` writes it. */
function extendedHeader(e: Entry, body: Buffer): Buffer {
  const out = Buffer.alloc(BLOCK + Math.ceil(body.length / BLOCK) * BLOCK);
  new Header({
    path: `PaxHeader/${basename(e.path)}`.slice(0, 99),
    type: 'ExtendedHeader',
    mode: 0o644,
    uid: e.uid,
    gid: e.gid,
    size: body.length,
    mtime: e.mtime,
    linkpath: '',
    uname: '',
    gname: '',
  }).encode(out, 0);
  body.copy(out, BLOCK);
  return out;
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
