/**
 * Reading a container's log the way `docker logs` shows it.
 *
 * The log is conmon's "k8s-file" format, one record per line:
 * `2026-11-23T09:17:40.975647758+00:00 stdout F text` — an RFC3339 timestamp
 * with nanoseconds, the stream, `F` (the output had a newline after text) or
 * `P` (partial: no newline), then the text unescaped. Files rotate as
 * log-rotation.ts describes: `<path>.N` ... `<path>.1`, maybe `<path>.hold`,
 * then `<path>`.
 *
 * Everything is read in fixed-size chunks, working on bytes (the text need
 * not be UTF-8); `tail` reads backwards from the end and keeps only the
 * records it returns. Following polls (at most every 100 ms when idle): it
 * notices conmon replacing `<path>` (a new inode), finishes the old inode
 * through its open fd, reads any file rotated in between, and goes on with
 * the new `<path>` from offset 0.
 */
import fs from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import { IsulaError } from '../errors.js';
import { rfc3339Nano } from '../time.js';
import { LOG_HOLD_SUFFIX, rotatedIndices } from './log-rotation.js';

export interface LogRecord {
  /** 1 stdout, 2 stderr (the stream ids of Docker's multiplexed stream). */
  stream: 1 | 2;
  /** RFC3339Nano in UTC with all nine digits, Docker's `--timestamps` format: 2026-11-23T09:17:40.975647758Z. */
  time: string;
  /** Nanoseconds since the epoch. */
  timeNs: bigint;
  /** The text, plus "\n" for an F record. */
  data: Buffer;
}

export interface ReadLogsOptions {
  /** The current log file; rotated files beside it are found as logFiles() lists them. */
  path: string;
  follow: boolean;
  /** Only the last N records (across all files) that pass the other filters; undefined or negative = all; 0 = none of the existing ones. */
  tail?: number;
  /** Only records with timeNs >= sinceNs. */
  sinceNs?: bigint;
  /** Only records with timeNs <= untilNs. Reading stops at the first record past it (as Docker); following also stops once wall time passes it. */
  untilNs?: bigint;
  stdout: boolean;
  stderr: boolean;
  /** Reading stops promptly when aborted; readLogs then resolves. */
  signal: AbortSignal;
  /** While following: resolves when the writer is done (the container exited); reading then drains what is left and returns. */
  writerDone?: Promise<void>;
  /** Called for each record in order; awaited (backpressure). */
  onRecord(r: LogRecord): void | Promise<void>;
}

const CHUNK_BYTES = 64 * 1024;
/** Far above conmon's lines (its read buffer is 8 KiB); a longer "line" is garbage and is skipped, so memory stays bounded. */
const MAX_LINE_BYTES = 4 * 1024 * 1024;
const POLL_MIN_MS = 10;
/** Records `tail` may hold before it counts instead (two forward passes, memory bounded). */
const TAIL_MEMORY_BYTES = 16 * 1024 * 1024;
const POLL_MAX_MS = 100;
const NL = 0x0a;
const SP = 0x20;

// ---- one line ------------------------------------------------------------------

/** Parses one k8s-file line (a trailing "\n" is allowed). Undefined for a malformed line. */
export function parseLogLine(line: string | Buffer): LogRecord | undefined {
  let buf = typeof line === 'string' ? Buffer.from(line) : line;
  if (buf.length > 0 && buf[buf.length - 1] === NL) buf = buf.subarray(0, buf.length - 1);
  const sp1 = buf.indexOf(SP);
  if (sp1 < 0) return undefined;
  const sp2 = buf.indexOf(SP, sp1 + 1);
  if (sp2 < 0) return undefined;
  const streamName = buf.toString('latin1', sp1 + 1, sp2);
  const stream = streamName === 'stdout' ? 1 : streamName === 'stderr' ? 2 : undefined;
  if (stream === undefined) return undefined;
  const tag = buf[sp2 + 1];
  // conmon always writes a space after the tag; accept its absence for an empty text.
  if ((tag !== 0x46 /* F */ && tag !== 0x50) /* P */ || (sp2 + 2 < buf.length && buf[sp2 + 2] !== SP)) return undefined;
  const stamp = parseTimestamp(buf.toString('latin1', 0, sp1));
  if (stamp === undefined) return undefined;
  const text = buf.subarray(Math.min(sp2 + 3, buf.length));
  const data = Buffer.allocUnsafe(text.length + (tag === 0x46 ? 1 : 0));
  text.copy(data);
  if (tag === 0x46) data[text.length] = NL;
  return { stream, time: stamp.time, timeNs: stamp.timeNs, data };
}

/** conmon stamps every line of one read with the same time: remember the last one parsed. */
let lastStamp: { text: string; time: string; timeNs: bigint } | undefined;

function parseTimestamp(text: string): { time: string; timeNs: bigint } | undefined {
  if (lastStamp?.text === text) return lastStamp;
  const timeNs = parseTimestampNs(text);
  if (timeNs === undefined) return undefined;
  lastStamp = { text, time: rfc3339Nano(timeNs, true), timeNs };
  return lastStamp;
}

const TIMESTAMP_RE = /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?:([Zz])|([+-])(\d{2}):(\d{2}))$/;

/** RFC3339 with up to nine fraction digits and `Z` or a numeric offset, to ns since the epoch. */
function parseTimestampNs(s: string): bigint | undefined {
  const m = TIMESTAMP_RE.exec(s);
  if (m === null) return undefined;
  const [y, mo, d, h, mi, sec] = [m[1], m[2], m[3], m[4], m[5], m[6]].map(Number) as [number, number, number, number, number, number];
  if (mo < 1 || mo > 12 || d < 1 || d > daysInMonth(y, mo) || h > 23 || mi > 59 || sec > 59) return undefined;
  let offsetS = 0;
  if (m[8] === undefined) {
    const oh = Number(m[10]);
    const om = Number(m[11]);
    if (oh > 23 || om > 59) return undefined;
    offsetS = (m[9] === '-' ? -1 : 1) * (oh * 3600 + om * 60);
  }
  const seconds = daysFromCivil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec - offsetS;
  const frac = BigInt((m[7] ?? '').padEnd(9, '0'));
  return BigInt(seconds) * 1_000_000_000n + frac;
}

function daysInMonth(y: number, m: number): number {
  if (m === 2) return (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0 ? 29 : 28;
  return m === 4 || m === 6 || m === 9 || m === 11 ? 30 : 31;
}

/** Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm; Date.UTC maps years 0-99 to 19xx). */
function daysFromCivil(y: number, m: number, d: number): number {
  const yy = m <= 2 ? y - 1 : y;
  const era = Math.floor(yy / 400);
  const yoe = yy - era * 400;
  const doy = Math.floor((153 * (m + (m > 2 ? -3 : 9)) + 2) / 5) + d - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146097 + doe - 719468;
}

// ---- files ------------------------------------------------------------------------

interface OpenLog {
  fh: FileHandle;
  dev: number;
  ino: number;
  size: number;
}

const sameFile = (a: { dev: number; ino: number }, b: { dev: number; ino: number }): boolean => a.dev === b.dev && a.ino === b.ino;

/** Every open file handle of one readLogs call, closed when it returns. */
class Handles {
  readonly #open = new Set<FileHandle>();

  async open(p: string): Promise<OpenLog | undefined> {
    let fh: FileHandle;
    try {
      fh = await fs.open(p, 'r');
    } catch (err) {
      if (errno(err) === 'ENOENT') return undefined;
      throw new IsulaError('INTERNAL', `cannot open log file "${p}"`, { cause: err });
    }
    this.#open.add(fh);
    const st = await fh.stat();
    if (!st.isFile()) {
      await this.close(fh);
      return undefined;
    }
    return { fh, dev: st.dev, ino: st.ino, size: st.size };
  }

  async close(fh: FileHandle): Promise<void> {
    if (this.#open.delete(fh)) await fh.close().catch(() => {});
  }

  async closeAll(): Promise<void> {
    await Promise.all([...this.#open].map((fh) => this.close(fh)));
  }
}

/**
 * Opens every file of the log: `current` is `<path>` (if it exists), `older`
 * the rest, oldest first, each inode once. Opening goes newest first (path,
 * hold, .1, .2 ... one past the highest listed): a concurrent shift only moves
 * files to higher numbers, so each is still met later in the scan (at worst
 * twice, and duplicates are dropped by inode).
 */
async function openLogSet(file: string, handles: Handles): Promise<{ current: OpenLog | undefined; older: OpenLog[] }> {
  const highest = Math.max(0, ...(await rotatedIndices(file)));
  const names = [file, file + LOG_HOLD_SUFFIX];
  for (let i = 1; i <= highest + 1; i++) names.push(`${file}.${i}`);
  const opened: OpenLog[] = [];
  let current: OpenLog | undefined;
  for (const name of names) {
    const f = await handles.open(name);
    if (f === undefined) continue;
    if ((current !== undefined && sameFile(current, f)) || opened.some((o) => sameFile(o, f))) {
      await handles.close(f.fh);
      continue;
    }
    if (name === file) current = f;
    else opened.push(f);
  }
  return { current, older: opened.reverse() };
}

/** Reads a file forwards in chunks from `pos`, handing out complete lines (without "\n"); an unterminated end waits for more. */
class ForwardReader {
  pos = 0;
  readonly #buf = Buffer.allocUnsafe(CHUNK_BYTES);
  #carry: Buffer[] = [];
  #carryBytes = 0;
  /** In an overlong line: drop bytes up to the next "\n". */
  #isSkipping = false;

  reset(pos: number): void {
    this.pos = pos;
    this.#carry = [];
    this.#carryBytes = 0;
    this.#isSkipping = false;
  }

  /** Reads to the end of the file. `onLine` returns false to stop. */
  async drain(fh: FileHandle, onLine: (line: Buffer) => boolean | Promise<boolean>, signal: AbortSignal): Promise<{ bytes: number; isStopped: boolean }> {
    let bytes = 0;
    for (;;) {
      if (signal.aborted) return { bytes, isStopped: true };
      const { bytesRead } = await fh.read(this.#buf, 0, CHUNK_BYTES, this.pos);
      if (bytesRead === 0) return { bytes, isStopped: false };
      this.pos += bytesRead;
      bytes += bytesRead;
      const chunk = this.#buf.subarray(0, bytesRead);
      let start = 0;
      for (let nl = chunk.indexOf(NL); nl >= 0; nl = chunk.indexOf(NL, start)) {
        const piece = chunk.subarray(start, nl);
        start = nl + 1;
        if (this.#isSkipping) {
          this.#isSkipping = false;
          continue;
        }
        let line = piece;
        if (this.#carry.length > 0) {
          const overlong = this.#carryBytes + piece.length > MAX_LINE_BYTES;
          line = overlong ? piece : Buffer.concat([...this.#carry, piece]);
          this.#carry = [];
          this.#carryBytes = 0;
          // The same bound as scanBackward's, whichever chunk the line ends in (found by fuzzing).
          if (overlong) continue;
        }
        const go = onLine(line);
        // Awaited only when it is a promise: most records need no wait.
        if (!(typeof go === 'boolean' ? go : await go)) return { bytes, isStopped: true };
      }
      if (start < bytesRead && !this.#isSkipping) {
        // Copied: the chunk buffer is reused by the next read.
        this.#carry.push(Buffer.from(chunk.subarray(start)));
        this.#carryBytes += bytesRead - start;
        if (this.#carryBytes > MAX_LINE_BYTES) {
          this.#carry = [];
          this.#carryBytes = 0;
          this.#isSkipping = true;
        }
      }
    }
  }
}

/**
 * Reads `fh[0, size)` backwards in chunks, handing out complete lines newest
 * first while `onLine` returns true; without `onLine` it only looks for the
 * end. Returns the end of the last complete line (bytes after it are a line
 * still being written).
 */
async function scanBackward(fh: FileHandle, size: number, onLine: ((line: Buffer) => boolean) | undefined, signal: AbortSignal): Promise<number> {
  const buf = Buffer.allocUnsafe(Math.min(CHUNK_BYTES, Math.max(size, 1)));
  let pos = size;
  let completeEnd = -1;
  /** The line being assembled: its end is known, its start not yet (pieces in file order). */
  let pieces: Buffer[] = [];
  let pieceBytes = 0;
  let isOverlong = false;
  while (pos > 0) {
    if (signal.aborted) return Math.max(completeEnd, 0);
    const n = Math.min(buf.length, pos);
    pos -= n;
    if (!(await readExactly(fh, buf, n, pos))) return Math.max(completeEnd, 0); // shrank under us
    const chunk = buf.subarray(0, n);
    let segEnd = n;
    for (let nl = chunk.lastIndexOf(NL, segEnd - 1); nl >= 0; nl = segEnd > 0 ? chunk.lastIndexOf(NL, segEnd - 1) : -1) {
      if (completeEnd < 0) {
        completeEnd = pos + nl + 1;
        if (onLine === undefined) return completeEnd;
      } else if (!isOverlong && pieceBytes + (segEnd - nl - 1) <= MAX_LINE_BYTES) {
        const line = pieces.length === 0 ? chunk.subarray(nl + 1, segEnd) : Buffer.concat([chunk.subarray(nl + 1, segEnd), ...pieces]);
        if (!onLine?.(line)) return completeEnd;
      }
      isOverlong = false;
      pieces = [];
      pieceBytes = 0;
      segEnd = nl;
    }
    if (completeEnd >= 0 && segEnd > 0 && !isOverlong) {
      pieces.unshift(Buffer.from(chunk.subarray(0, segEnd)));
      pieceBytes += segEnd;
      if (pieceBytes > MAX_LINE_BYTES) {
        pieces = [];
        pieceBytes = 0;
        isOverlong = true;
      }
    }
  }
  // The first line of the file.
  if (completeEnd >= 0 && !isOverlong && pieceBytes <= MAX_LINE_BYTES) onLine?.(Buffer.concat(pieces));
  return Math.max(completeEnd, 0);
}

async function readExactly(fh: FileHandle, buf: Buffer, n: number, pos: number): Promise<boolean> {
  let got = 0;
  while (got < n) {
    const { bytesRead } = await fh.read(buf, got, n - got, pos + got);
    if (bytesRead === 0) return false;
    got += bytesRead;
  }
  return true;
}

async function statOrUndefined(p: string): Promise<Stats | undefined> {
  try {
    return await fs.stat(p);
  } catch (err) {
    if (errno(err) === 'ENOENT') return undefined;
    throw err;
  }
}

function errno(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'code' in err && typeof err.code === 'string' ? err.code : undefined;
}

/** Sleeps that end early on abort or when the writer is done. */
class Waker {
  isWriterDone = false;
  readonly #signal: AbortSignal;
  #wake: (() => void) | undefined;
  readonly #onAbort = (): void => this.#wake?.();

  constructor(signal: AbortSignal, writerDone: Promise<void> | undefined) {
    this.#signal = signal;
    signal.addEventListener('abort', this.#onAbort, { once: true });
    const done = (): void => {
      this.isWriterDone = true;
      this.#wake?.();
    };
    // A failed wait for the exit still means nobody should wait on it any longer.
    writerDone?.then(done, done);
  }

  sleep(ms: number): Promise<void> {
    if (this.#signal.aborted || this.isWriterDone) return Promise.resolve();
    return new Promise((resolve) => {
      const finish = (): void => {
        clearTimeout(timer);
        this.#wake = undefined;
        resolve();
      };
      const timer = setTimeout(finish, ms);
      this.#wake = finish;
    });
  }

  dispose(): void {
    this.#signal.removeEventListener('abort', this.#onAbort);
    this.#wake?.();
  }
}

const nowNs = (): bigint => BigInt(Date.now()) * 1_000_000n;

// ---- readLogs ---------------------------------------------------------------------

/** Reads a container's log, calling `onRecord` for each record in order. Resolves when done, aborted, or (following) the writer is done and drained. */
export async function readLogs(opts: ReadLogsOptions): Promise<void> {
  const { signal, sinceNs, untilNs } = opts;
  if (signal.aborted || (!opts.stdout && !opts.stderr)) return;
  const handles = new Handles();
  const waker = new Waker(signal, opts.follow ? opts.writerDone : undefined);
  const wants = (r: LogRecord): boolean =>
    (r.stream === 1 ? opts.stdout : opts.stderr) && (sinceNs === undefined || r.timeNs >= sinceNs) && (untilNs === undefined || r.timeNs <= untilNs);
  /** Forward reading: false stops everything (aborted, or a record past until, as Docker's reader returns there). */
  const onLine = (line: Buffer): boolean | Promise<boolean> => {
    const r = parseLogLine(line);
    if (r === undefined) return true;
    if (untilNs !== undefined && r.timeNs > untilNs) return false;
    if (!wants(r)) return true;
    const pending = opts.onRecord(r);
    return pending === undefined ? !signal.aborted : pending.then(() => !signal.aborted);
  };

  try {
    const set = await openLogSet(opts.path, handles);
    let current = set.current;
    const reader = new ForwardReader();
    const tail = opts.tail !== undefined && opts.tail >= 0 ? opts.tail : undefined;

    if (tail === undefined) {
      for (const f of set.older) {
        if ((await new ForwardReader().drain(f.fh, onLine, signal)).isStopped) return;
        await handles.close(f.fh);
      }
      if (current !== undefined && (await reader.drain(current.fh, onLine, signal)).isStopped) return;
    } else {
      // Newest file first, each read backwards; only `tail` records are kept.
      let kept: LogRecord[] = [];
      let keptBytes = 0;
      let isTooBig = false;
      let isPastUntil = false;
      const onTailLine = (line: Buffer): boolean => {
        const r = parseLogLine(line);
        if (r !== undefined) {
          if (untilNs !== undefined && r.timeNs > untilNs) isPastUntil = true;
          if (wants(r)) {
            kept.push(r);
            keptBytes += r.data.length + 64;
            if (keptBytes > TAIL_MEMORY_BYTES) isTooBig = true;
          }
        }
        return kept.length < tail && !isTooBig && !signal.aborted;
      };
      if (current !== undefined) {
        const size = (await current.fh.stat()).size;
        reader.reset(await scanBackward(current.fh, size, tail > 0 ? onTailLine : undefined, signal));
      }
      for (const f of [...set.older].reverse()) {
        if (kept.length >= tail || isTooBig || signal.aborted) break;
        await scanBackward(f.fh, f.size, onTailLine, signal);
      }
      if (isTooBig) {
        // A large tail is not held in memory: count the wanted records, then read forward past all but the last `tail`.
        kept = [];
        let total = 0;
        const count = (line: Buffer): boolean => {
          const r = parseLogLine(line);
          if (r !== undefined && (untilNs === undefined || r.timeNs <= untilNs) && wants(r)) total += 1;
          return !signal.aborted;
        };
        const files = current === undefined ? set.older : [...set.older, current];
        for (const f of files) await new ForwardReader().drain(f.fh, count, signal);
        let skip = total - tail;
        const emit = (line: Buffer): boolean | Promise<boolean> => {
          const r = parseLogLine(line);
          if (r !== undefined && wants(r) && (untilNs === undefined || r.timeNs <= untilNs) && skip > 0) {
            skip -= 1;
            return !signal.aborted;
          }
          return onLine(line);
        };
        for (const f of set.older) {
          if ((await new ForwardReader().drain(f.fh, emit, signal)).isStopped) return;
        }
        if (current !== undefined) {
          reader.reset(0);
          if ((await reader.drain(current.fh, emit, signal)).isStopped) return;
        }
      }
      for (const f of set.older) await handles.close(f.fh);
      for (const r of kept.reverse()) {
        if (signal.aborted) return;
        await opts.onRecord(r);
      }
      if (isPastUntil) return;
    }
    if (!opts.follow) return;

    let idleMs = POLL_MIN_MS;
    for (;;) {
      if (signal.aborted) return;
      // Decided before reading, so the pass below is a full drain after the writer stopped.
      const isFinishing = waker.isWriterDone || (untilNs !== undefined && nowNs() > untilNs);
      let hasProgressed = false;
      if (current !== undefined) {
        const r = await reader.drain(current.fh, onLine, signal);
        if (r.isStopped) return;
        hasProgressed = r.bytes > 0;
      }
      const st = await statOrUndefined(opts.path);
      if (current !== undefined && st !== undefined && !sameFile(current, st)) {
        // Replaced (conmon's truncation): conmon closed the old inode before the
        // rename, so after one more drain it is complete.
        const old = current;
        if ((await reader.drain(old.fh, onLine, signal)).isStopped) return;
        const next = await openLogSet(opts.path, handles);
        // Files rotated after ours and before the new <path> (replaced twice
        // between two polls, with the rotation keeping the middle one).
        const at = next.older.findIndex((f) => sameFile(f, old));
        for (const f of at < 0 ? [] : next.older.slice(at + 1)) {
          if ((await new ForwardReader().drain(f.fh, onLine, signal)).isStopped) return;
        }
        for (const f of next.older) await handles.close(f.fh);
        await handles.close(old.fh);
        current = next.current;
        reader.reset(0);
        hasProgressed = true;
      } else if (current !== undefined && st !== undefined) {
        // Same file: truncated in place (not conmon's way, but cheap to handle)?
        if (!hasProgressed && (await current.fh.stat()).size < reader.pos) {
          reader.reset(0);
          hasProgressed = true;
        }
      } else if (current === undefined && st !== undefined) {
        // <path> appeared (the container started).
        const next = await openLogSet(opts.path, handles);
        for (const f of next.older) await handles.close(f.fh);
        current = next.current;
        reader.reset(0);
        hasProgressed = current !== undefined;
      }
      if (hasProgressed) {
        idleMs = POLL_MIN_MS;
        continue;
      }
      if (isFinishing) return;
      let sleepMs = idleMs;
      if (untilNs !== undefined) sleepMs = Math.min(sleepMs, Math.max(1, Number((untilNs - nowNs()) / 1_000_000n) + 1));
      await waker.sleep(sleepMs);
      idleMs = Math.min(idleMs * 2, POLL_MAX_MS);
    }
  } finally {
    waker.dispose();
    await handles.closeAll();
  }
}
