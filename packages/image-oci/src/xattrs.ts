/**
 * The extended attributes of a whole tree (a container's overlay upper dir),
 * read with one `getfattr -R` dump: Node has no xattr call, and one process
 * for the tree rather than one per file keeps `isula diff` and `isula commit`
 * fast on big layers. `-h -P`: a symlink is never followed, neither one in
 * the tree nor the last component of a path (see the package README for the
 * race this leaves). Values come base64-encoded (binary-safe), file and
 * attribute names backslash-octal quoted; the output is read line by line
 * and only the attributes asked for are kept, so its size is not bounded by
 * a buffer.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { IsulaError } from '@isula/core';

/** Per file, by `/rel/path` below the root: each attribute's name and value. */
export type TreeXattrs = Map<string, Map<string, Buffer>>;

/** overlayfs's mark of an opaque directory (the value `y`), in the upper dir of a mount without `userxattr`. */
export const OVERLAY_OPAQUE = 'trusted.overlay.opaque';

export interface ReadXattrsOptions {
  /** getfattr's `-m`: a regular expression the names must match, `-` for every name. */
  match: string;
  /** Which of the matched names to keep; the others are dropped while reading. */
  keep?: (name: string) => boolean;
  signal?: AbortSignal;
  timeoutMs?: number;
}

/**
 * Reads the attributes of everything below `root` (not of `root` itself).
 * A file that vanishes while getfattr walks (a running container deleting
 * it) is left out, not an error: getfattr reports it and exits 1, and only
 * "No such file or directory", "Not a directory" and "No such attribute"
 * are taken as that.
 *
 * Throws IsulaError: CONTAINER_PATH_INVALID for an attribute name that is
 * not UTF-8 (it cannot be named in a tar header or a JSON reply as it is),
 * CANCELED when `signal` aborts, INTERNAL when getfattr fails otherwise
 * (its argv, exit code and first error line in `details`).
 */
export async function readXattrs(root: string, options: ReadXattrsOptions): Promise<TreeXattrs> {
  const top = path.resolve(root);
  const argv = ['getfattr', '-R', '-h', '-P', '--absolute-names', '-d', '-m', options.match, '-e', 'base64', '--', top];
  const { signal } = options;
  signal?.throwIfAborted();
  // LC_ALL=C: error lines in English (they are matched below). Names come out backslash-octal quoted
  // for some bytes (\\, =, control characters) and raw for others (bytes >= 0x80): stdout is read
  // as latin1, one character per byte, so no byte is lost to UTF-8 decoding before getfattrBytes.
  const child = spawn(argv[0] ?? '', argv.slice(1), {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, LC_ALL: 'C' },
    timeout: options.timeoutMs ?? 600_000,
    killSignal: 'SIGKILL',
    ...(signal !== undefined && { signal }),
  });
  const closed = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, sig) => resolve({ code, signal: sig }));
  });
  closed.catch(() => {}); // awaited below, after stdout is read; this only keeps an early rejection from being "unhandled"
  let failure: string | undefined;
  createInterface({ input: child.stderr, crlfDelay: Infinity }).on('line', (line) => {
    if (failure === undefined && line !== '' && !VANISHED.test(line)) failure = line;
  });

  const out: TreeXattrs = new Map();
  let file: string | undefined;
  let attrs: Map<string, Buffer> | undefined;
  let bad: Error | undefined;
  child.stdout.setEncoding('latin1');
  for await (const line of createInterface({ input: child.stdout, crlfDelay: Infinity })) {
    if (bad !== undefined) continue; // drained, so getfattr is not blocked on a full pipe
    if (line.startsWith('# file: ')) {
      const rel = path.relative(top, unquoteGetfattr(line.slice('# file: '.length)));
      file = rel !== '' && rel !== '..' && !rel.startsWith('../') ? `/${rel}` : undefined;
      attrs = undefined;
      continue;
    }
    if (line === '' || file === undefined) continue;
    const eq = line.indexOf('='); // a name's own '=' is quoted (\075)
    const nameBytes = getfattrBytes(eq < 0 ? line : line.slice(0, eq));
    const name = nameBytes.toString('utf8');
    if (!Buffer.from(name, 'utf8').equals(nameBytes)) {
      bad = new IsulaError('CONTAINER_PATH_INVALID', `the extended attribute ${JSON.stringify(name)} of ${file} has a name that is not valid UTF-8`, { details: { path: file } });
      continue;
    }
    if (options.keep !== undefined && !options.keep(name)) continue;
    const encoded = eq < 0 ? '0s' : line.slice(eq + 1);
    if (!encoded.startsWith('0s')) {
      bad = new IsulaError('INTERNAL', `getfattr printed an attribute value not in base64 for ${file}`, { details: { argv, line } });
      continue;
    }
    if (attrs === undefined) {
      attrs = new Map();
      out.set(file, attrs);
    }
    attrs.set(name, Buffer.from(encoded.slice(2), 'base64'));
  }
  let result: { code: number | null; signal: NodeJS.Signals | null };
  try {
    result = await closed;
  } catch (err) {
    if (signal?.aborted === true) throw new IsulaError('CANCELED', `reading the extended attributes of ${top} canceled`, { cause: signal.reason });
    throw new IsulaError('INTERNAL', `cannot run getfattr on ${top}: ${String(err)}`, { cause: err, details: { argv } });
  }
  if (bad !== undefined) throw bad;
  const { code, signal: killedBy } = result;
  if (code === 0 || (code === 1 && failure === undefined)) return out;
  throw new IsulaError('INTERNAL', `getfattr failed on ${top}: ${failure ?? (killedBy !== null ? `killed by ${killedBy} (timed out?)` : `exit code ${code}`)}`, {
    details: { argv, exitCode: code, stderr: failure },
  });
}

/** getfattr's lines for a file or attribute that went away while it walked (LC_ALL=C). */
const VANISHED = /: (No such file or directory|Not a directory|No such attribute)$/;

/** The directories overlay marked opaque (`trusted.overlay.opaque=y`), as `/rel/path`s. */
export function opaqueDirsIn(tree: TreeXattrs): Set<string> {
  const out = new Set<string>();
  for (const [file, attrs] of tree) if (attrs.get(OVERLAY_OPAQUE)?.toString('latin1') === 'y') out.add(file);
  return out;
}

/** Undoes getfattr's quoting of a name read as latin1 (one character per byte): backslash-octal bytes. */
export function unquoteGetfattr(s: string): string {
  return getfattrBytes(s).toString('utf8');
}

function getfattrBytes(s: string): Buffer {
  const bytes: number[] = [];
  for (let i = 0; i < s.length; i++) {
    const m = s[i] === '\\' ? /^[0-7]{3}/.exec(s.slice(i + 1)) : null;
    if (m !== null) { bytes.push(parseInt(m[0], 8)); i += 3; } else bytes.push(s.charCodeAt(i) & 0xff);
  }
  return Buffer.from(bytes);
}
