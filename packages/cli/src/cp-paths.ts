/**
 * `isula cp`'s path decisions, as docker's `cli/command/container/cp.go` and
 * moby's `pkg/archive/copy.go` make them: which argument is a container's,
 * what a trailing `/` or `/.` asserts, where an archive is extracted and how
 * its top entry is renamed. Pure (paths in, decisions out) and Go's
 * `path/filepath` semantics, so the table of cases is unit-tested.
 */

/** Go's `filepath.Clean` (Unix): `a//b/../c/` → `a/c`, `` → `.`. */
export function goClean(p: string): string {
  if (p === '') return '.';
  const rooted = p.startsWith('/');
  const out: string[] = [];
  for (const part of p.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') {
      if (out.length > 0 && out[out.length - 1] !== '..') out.pop();
      else if (!rooted) out.push('..');
      continue;
    }
    out.push(part);
  }
  const joined = out.join('/');
  return rooted ? `/${joined}` : joined || '.';
}

/** Go's `filepath.Base`: the last element, trailing slashes ignored; `/` for the root, `.` for ``. */
export function goBase(p: string): string {
  if (p === '') return '.';
  const trimmed = p.replace(/\/+$/, '');
  if (trimmed === '') return '/';
  return trimmed.slice(trimmed.lastIndexOf('/') + 1);
}

/** Go's `filepath.Dir`: everything before the last slash, cleaned. */
export function goDir(p: string): string {
  return goClean(p.slice(0, p.lastIndexOf('/') + 1));
}

/** Go's `filepath.Join`: the non-empty elements joined and cleaned. */
export function goJoin(...parts: string[]): string {
  const kept = parts.filter((x) => x !== '');
  return kept.length === 0 ? '' : goClean(kept.join('/'));
}

const hasTrailingSeparator = (p: string) => p.endsWith('/');
const specifiesCurrentDir = (p: string) => goBase(p) === '.';

/** The path ends in `/` or `/.`: it must be a directory. */
export function assertsDirectory(p: string): boolean {
  return hasTrailingSeparator(p) || specifiesCurrentDir(p);
}

/** moby's `PreserveTrailingDotOrSeparator`: put back the `/.` or `/` that cleaning `original` dropped. */
export function preserveTrailingDotOrSeparator(cleaned: string, original: string): string {
  let out = cleaned;
  if (!specifiesCurrentDir(out) && specifiesCurrentDir(original)) {
    if (!hasTrailingSeparator(out)) out += '/';
    out += '.';
  }
  if (!hasTrailingSeparator(out) && hasTrailingSeparator(original)) out += '/';
  return out;
}

/** moby's `SplitPathDirEntry`: the cleaned path's directory and base, keeping a final `.`. */
export function splitPathDirEntry(p: string): { dir: string; base: string } {
  let cleaned = goClean(p);
  if (specifiesCurrentDir(p)) cleaned += '/.';
  return { dir: goDir(cleaned), base: goBase(cleaned) };
}

/**
 * docker's `splitCpArg`: `CONTAINER:PATH`, or a local path. An absolute path,
 * or one starting with `.` (`./file:name`), is local even with a colon.
 */
export function splitCpArg(arg: string): { container: string; path: string } {
  if (arg.startsWith('/')) return { container: '', path: arg };
  const colon = arg.indexOf(':');
  if (colon < 0 || arg.startsWith('.')) return { container: '', path: arg };
  return { container: arg.slice(0, colon), path: arg.slice(colon + 1) };
}

/** docker's `resolveLocalPath`: absolute and clean, the trailing `/` or `/.` kept. */
export function resolveLocalPath(p: string, cwd: string): string {
  const abs = p.startsWith('/') ? goClean(p) : goClean(`${cwd}/${p}`);
  return preserveTrailingDotOrSeparator(abs, p);
}

/**
 * moby's `GetRebaseName`: after following a symlink from `path` to
 * `resolved`, the resolved path (with the original's trailing `/` or `/.`)
 * and the name its archive entries must take back (empty: unchanged).
 */
export function getRebaseName(path: string, resolved: string): { resolved: string; rebaseName: string } {
  let out = resolved;
  if (specifiesCurrentDir(path) && !specifiesCurrentDir(out)) out += '/.';
  if (hasTrailingSeparator(path) && !hasTrailingSeparator(out)) out += '/';
  return { resolved: out, rebaseName: goBase(path) !== goBase(out) ? goBase(path) : '' };
}

/** A symlink's target as a path: a relative target joins the link's directory (docker's `-L` and destination links). */
export function linkTargetPath(linkPath: string, target: string): string {
  return target.startsWith('/') ? target : goJoin(splitPathDirEntry(linkPath).dir, target);
}

/** moby's `CopyInfo`: one end of a copy. */
export interface CopyInfo {
  path: string;
  exists: boolean;
  isDir: boolean;
  /** The name the archive's top entry must take (a followed symlink keeps the name typed). */
  rebaseName?: string;
}

/** A rename of an archive's top entry: `from` and what is below it becomes `to`. */
export interface Rebase {
  from: string;
  to: string;
}

/** An error of docker's copy logic (moby's `ErrCannotCopyDir`, `ErrDirNotExists`, …): the message is docker's. */
export class CopyError extends Error {
  override readonly name = 'CopyError';
}

/**
 * moby's `PrepareArchiveCopy`: given the source (an archive of `src.path`'s
 * base entry) and the destination, the directory to extract into and the
 * rename of the archive's top entry that gives docker's `cp` semantics:
 * into an existing directory as is; onto an existing file, or to a new
 * name, renamed to the destination's base. A directory onto an existing
 * file, or a file to a missing `dir/`, is an error.
 */
export function prepareArchiveCopy(src: CopyInfo, dst: CopyInfo): { dstDir: string; rebase?: Rebase } {
  const { dir: dstDir, base: dstBase } = splitPathDirEntry(dst.path);
  const srcBase = src.rebaseName || splitPathDirEntry(src.path).base;
  if (dst.exists && dst.isDir) return { dstDir: dst.path };
  if (dst.exists && src.isDir) throw new CopyError('cannot copy directory');
  if (dst.exists || src.isDir) return { dstDir, rebase: { from: srcBase, to: dstBase } };
  if (assertsDirectory(dst.path)) throw new CopyError('no such directory');
  return { dstDir, rebase: { from: srcBase, to: dstBase } };
}

/**
 * Renames an archive entry's leading element (moby's `RebaseArchiveEntries`
 * replaces the first occurrence of `from`, which is where the entries of an
 * archive of `from` start; matching the whole leading element is the same
 * there and cannot touch a name that merely contains `from`). `from` `/`
 * (an archive of the root) prefixes every name with `to`.
 */
export function rebaseEntryName(name: string, r: Rebase): string {
  if (r.from === '/' || r.from === '') return `${r.to}${name}`;
  if (name === r.from || name.startsWith(`${r.from}/`)) return `${r.to}${name.slice(r.from.length)}`;
  return name;
}

/** Go's `os.FileMode` bits in the archive stat header (`X-Docker-Container-Path-Stat`). */
export const GO_MODE_DIR = 2 ** 31;
export const GO_MODE_SYMLINK = 2 ** 27;
const GO_MODE_DEVICE = 2 ** 26;
const GO_MODE_IRREGULAR = 2 ** 19;

/** Tests a bit of a Go FileMode (a uint32: above JS's 31-bit bitwise range). */
export function hasModeBit(mode: number, bit: number): boolean {
  return Math.floor(mode / bit) % 2 === 1;
}

/** docker's `ValidateOutputPathFileMode`: a device or an irregular file cannot be copied onto. */
export function validateOutputPathFileMode(mode: number): void {
  if (hasModeBit(mode, GO_MODE_DEVICE)) throw new CopyError('got a device');
  if (hasModeBit(mode, GO_MODE_IRREGULAR)) throw new CopyError('got an irregular file');
}

/** The decoded `X-Docker-Container-Path-Stat` header (docker's `ContainerPathStat`). */
export interface ContainerPathStat {
  name: string;
  size: number;
  mode: number;
  mtime: string;
  linkTarget: string;
}

/** Decodes the base64 JSON of the stat header; throws docker's wording when it is missing or bad. */
export function decodePathStat(header: string | undefined): ContainerPathStat {
  try {
    const v = JSON.parse(Buffer.from(header ?? '', 'base64').toString('utf8')) as Partial<ContainerPathStat>;
    return { name: v.name ?? '', size: v.size ?? 0, mode: v.mode ?? 0, mtime: v.mtime ?? '', linkTarget: v.linkTarget ?? '' };
  } catch (err) {
    throw new Error(`unable to decode container path stat header: ${(err as Error).message}`);
  }
}
