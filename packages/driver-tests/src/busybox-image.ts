/**
 * Builds the busybox image the suites run from a static busybox binary
 * (Debian's busybox-static: /bin/busybox), as a docker-archive, with nothing
 * but Node: an author outside the repo needs neither umoci nor skopeo. The
 * image matches scripts/make-test-images.sh's busybox: the binary and its
 * applet links in /bin, /etc/passwd (root, nobody), /etc/group, /tmp (1777),
 * /root (0700), Cmd ["sh"], the usual PATH. Deterministic: every mtime is the
 * script's epoch, so the same binary gives the same image id.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';

/** make-test-images.sh's applet list: what the suites call by name. */
export const BUSYBOX_APPLETS: readonly string[] = Object.freeze(['sh', 'ls', 'cat', 'echo', 'sleep', 'true', 'false', 'env', 'id', 'mkdir', 'rm', 'touch', 'wc', 'head', 'tail', 'grep', 'sed',
  'ps', 'top', 'hostname', 'nc', 'wget', 'ip', 'mount', 'df', 'uname', 'date', 'stat', 'ln', 'chmod', 'find', 'xargs', 'sort', 'tee',
  'printf', 'test', '[', 'kill', 'pidof', 'tr', 'cut', 'seq', 'dd', 'md5sum', 'sha256sum', 'whoami', 'vi', 'tar', 'gzip']);

const EPOCH = 1_700_000_000;
const CREATED = '2023-11-14T22:13:20Z';
const ENV_PATH = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

interface Entry { name: string; type: 'file' | 'dir' | 'symlink'; mode: number; data?: Buffer; target?: string }

/** One ustar header block; names here are short, so no prefix field is needed. */
function header(e: Entry, size: number): Buffer {
  const h = Buffer.alloc(512);
  const put = (text: string, offset: number, length: number) => { h.write(text, offset, length, 'utf8'); };
  const octal = (n: number, offset: number, length: number) => put(`${n.toString(8).padStart(length - 1, '0')}\0`, offset, length);
  if (Buffer.byteLength(e.name) > 100) throw new Error(`tar entry name too long: ${e.name}`);
  put(e.name, 0, 100);
  octal(e.mode, 100, 8);
  octal(0, 108, 8);
  octal(0, 116, 8);
  octal(size, 124, 12);
  octal(EPOCH, 136, 12);
  put(e.type === 'file' ? '0' : e.type === 'dir' ? '5' : '2', 156, 1);
  if (e.target !== undefined) put(e.target, 157, 100);
  put('ustar\0', 257, 6);
  put('00', 263, 2);
  put('root', 265, 32);
  put('root', 297, 32);
  h.fill(' ', 148, 156); // the checksum is summed with its own field as spaces
  let sum = 0;
  for (const b of h) sum += b;
  put(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8);
  return h;
}

/** A tar stream of `entries`, in order, with the two zero blocks that end it. */
export function tarOf(entries: readonly Entry[]): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    const data = e.type === 'file' ? (e.data ?? Buffer.alloc(0)) : Buffer.alloc(0);
    parts.push(header(e, data.length), data, Buffer.alloc((512 - (data.length % 512)) % 512));
  }
  parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}

const sha256 = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

/** The image's config: what `isula inspect` shows and the spec builder reads. */
function imageConfig(diffId: string): string {
  const arch = process.arch === 'x64' ? 'amd64' : process.arch;
  return JSON.stringify({
    architecture: arch,
    os: 'linux',
    created: CREATED,
    config: { Env: [ENV_PATH], Cmd: ['sh'] },
    rootfs: { type: 'layers', diff_ids: [`sha256:${diffId}`] },
    history: [{ created: CREATED, created_by: '@isula/driver-tests: busybox-static rootfs' }],
  });
}

/**
 * Writes `out`, a docker-archive of `busybox:latest` built from `busybox`
 * (a static binary). Returns `out`.
 */
export async function buildBusyboxArchive(out: string, busybox = '/bin/busybox'): Promise<string> {
  const binary = await fs.readFile(busybox).catch((err: unknown) => {
    throw new Error(`cannot build the busybox image: ${busybox} is not readable (install busybox-static, or give a docker-archive with --image)`, { cause: err });
  });
  const layer = tarOf([
    { name: 'bin/', type: 'dir', mode: 0o755 },
    { name: 'bin/busybox', type: 'file', mode: 0o755, data: binary },
    ...BUSYBOX_APPLETS.map((a): Entry => ({ name: `bin/${a}`, type: 'symlink', mode: 0o777, target: 'busybox' })),
    { name: 'etc/', type: 'dir', mode: 0o755 },
    { name: 'etc/group', type: 'file', mode: 0o644, data: Buffer.from('root:x:0:\nnobody:x:65534:\n') },
    { name: 'etc/passwd', type: 'file', mode: 0o644, data: Buffer.from('root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n') },
    { name: 'root/', type: 'dir', mode: 0o700 },
    { name: 'tmp/', type: 'dir', mode: 0o1777 },
  ]);
  const diffId = sha256(layer);
  const config = imageConfig(diffId);
  const configId = sha256(config);
  const manifest = JSON.stringify([{ Config: `${configId}.json`, RepoTags: ['busybox:latest'], Layers: [`${diffId}.tar`] }]);
  const archive = tarOf([
    { name: `${diffId}.tar`, type: 'file', mode: 0o644, data: layer },
    { name: `${configId}.json`, type: 'file', mode: 0o644, data: Buffer.from(config) },
    { name: 'manifest.json', type: 'file', mode: 0o644, data: Buffer.from(manifest) },
  ]);
  await fs.mkdir(path.dirname(out), { recursive: true });
  // Written aside and renamed: a concurrent reader never sees half an archive.
  const tmp = `${out}.${process.pid}.tmp`;
  await fs.writeFile(tmp, archive, { mode: 0o644 });
  await fs.rename(tmp, out);
  return out;
}
