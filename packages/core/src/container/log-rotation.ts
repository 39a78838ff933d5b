/**
 * Docker's json-file `max-size`/`max-file` on top of conmon's k8s-file log.
 *
 * conmon (`--log-size-max N`) bounds one file: when the next write would pass
 * N bytes it fsyncs and closes the file, opens `<path>.tmp` with O_TRUNC and
 * renames it over `<path>`. The old content is unlinked at that moment, so on
 * its own conmon keeps a single file (Docker's max-file=1).
 *
 * For max-file > 1 the daemon keeps a hard link `<path>.hold` to the inode
 * conmon currently writes. When conmon replaces `<path>`, the old inode lives
 * on through `.hold`; the next tick sees `ino(<path>) != ino(<path>.hold)` and
 * shifts: `.hold` becomes `<path>.1`, `<path>.1` becomes `<path>.2` ... and
 * `<path>.<maxFiles-1>` is dropped; then `<path>` is linked to `.hold` again.
 *
 * Bounds: at most maxFiles files of at most max-size each (`<path>.1` ..
 * `<path>.<maxFiles-1>` and `<path>`), plus `.hold` while a shift is pending.
 * The bound holds while the daemon is down: conmon keeps truncating, `.hold`
 * pins one old inode at most. Content is lost only when conmon replaces the
 * file twice within one tick (or while the daemon is down): the middle inode
 * was never linked, so its unlink by conmon frees it for good.
 *
 * Crash safety: every step is a single link/rename/unlink and a tick starts
 * from what is on disk, never from memory:
 * - `.hold` missing (crash after moving it to `.1`): the next tick links it again;
 * - a hole in `.1 .. .<maxFiles-1>` (crash mid-shift): the shift moves files
 *   only up to the first hole, so a repeated shift never drops a file twice;
 * - readers (`logFiles`, `readLogs`) list whatever exists, oldest first.
 */
import fs from 'node:fs/promises';
import type { Stats } from 'node:fs';
import path from 'node:path';
import { IsulaError } from '../errors.js';

export interface RotationOptions {
  /** Docker's max-file, >= 1: the current file plus maxFiles-1 rotated ones. */
  maxFiles: number;
}

export interface RotationLogger {
  warn(obj: object, msg: string): void;
}

/** Suffix of the hard link to the inode conmon writes (see the module comment). */
export const LOG_HOLD_SUFFIX = '.hold';
/** conmon's temporary name while it replaces the file. */
const CONMON_TMP_SUFFIX = '.tmp';
const DEFAULT_INTERVAL_MS = 200;

export class LogRotation {
  readonly #intervalMs: number;
  readonly #log: RotationLogger | undefined;
  readonly #tracked = new Map<string, RotationOptions>();
  /** Last failure reported per path, so a persistent one is logged once, not every tick. */
  readonly #failed = new Map<string, string>();
  #timer: NodeJS.Timeout | undefined;
  #isClosed = false;
  /** Passes run one at a time: two concurrent shifts of one file would drop a rotated file. */
  #queue: Promise<void> = Promise.resolve();
  #pending = 0;

  constructor(opts: { intervalMs?: number; log?: RotationLogger } = {}) {
    const intervalMs = opts.intervalMs ?? DEFAULT_INTERVAL_MS;
    if (!Number.isFinite(intervalMs) || intervalMs <= 0) throw new IsulaError('CONFIG_INVALID', `log rotation interval must be a positive number of ms, got ${intervalMs}`);
    this.#intervalMs = intervalMs;
    this.#log = opts.log;
  }

  /**
   * Starts tracking a log file (idempotent; replaces the options). Makes the
   * hold link at once and removes rotated files past a lowered maxFiles.
   * Throws CONTAINER_CONFIG_INVALID for a bad maxFiles; file system failures
   * are logged, like a tick's, and retried by the next tick.
   */
  async track(file: string, opts: RotationOptions): Promise<void> {
    const { maxFiles } = opts;
    if (!Number.isSafeInteger(maxFiles) || maxFiles < 1) throw new IsulaError('CONTAINER_CONFIG_INVALID', `invalid value for log opt max-file: ${maxFiles} (want an integer >= 1)`);
    this.#tracked.set(file, { maxFiles });
    this.#startTimer();
    await this.#serial(async () => {
      await this.#guarded(file, async () => {
        await pruneRotated(file, maxFiles);
        await rotateOnce(file, maxFiles);
      });
    });
  }

  /**
   * A last pass over one file, then stops tracking it (the writer is gone:
   * conmon may have replaced the file at the very end). Never throws.
   */
  finish(file: string): Promise<void> {
    const opts = this.#tracked.get(file);
    if (opts === undefined) return Promise.resolve();
    return this.#serial(async () => {
      if (this.#tracked.get(file) === opts) await this.#guarded(file, () => rotateOnce(file, opts.maxFiles));
      this.untrack(file);
    });
  }

  /** Stops tracking; the files stay as they are. */
  untrack(file: string): void {
    this.#tracked.delete(file);
    this.#failed.delete(file);
  }

  /** One pass over every tracked file now. Never throws: failures are logged. */
  tick(): Promise<void> {
    return this.#serial(async () => {
      for (const [file, opts] of [...this.#tracked]) {
        if (this.#tracked.get(file) !== opts) continue; // untracked or re-tracked meanwhile
        await this.#guarded(file, () => rotateOnce(file, opts.maxFiles));
      }
    });
  }

  /** Stops the timer (idempotent). tick() and track() still work when called. */
  close(): void {
    this.#isClosed = true;
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  #startTimer(): void {
    if (this.#timer !== undefined || this.#isClosed) return;
    this.#timer = setInterval(() => {
      // A slow pass (a stuck disk) must not pile up more behind it.
      if (this.#pending === 0) void this.tick();
    }, this.#intervalMs);
    this.#timer.unref();
  }

  #serial(fn: () => Promise<void>): Promise<void> {
    this.#pending++;
    const run = this.#queue.then(fn).catch((err: unknown) => this.#log?.warn({ err }, 'log rotation pass failed')).finally(() => { this.#pending--; });
    this.#queue = run;
    return run;
  }

  async #guarded(file: string, fn: () => Promise<void>): Promise<void> {
    try {
      await fn();
      this.#failed.delete(file);
    } catch (err) {
      const key = errorKey(err);
      if (this.#failed.get(file) === key) return;
      this.#failed.set(file, key);
      this.#log?.warn({ err, path: file }, 'log rotation failed');
    }
  }
}

/**
 * One rotation step for one file; cheap when nothing changed (two lstat).
 * Idempotent; each step leaves a state the next call completes.
 */
async function rotateOnce(file: string, maxFiles: number): Promise<void> {
  const current = await lstatOrUndefined(file);
  // Never started, log-driver none, or being removed: nothing to hold.
  if (current === undefined || !current.isFile()) return;
  const hold = file + LOG_HOLD_SUFFIX;
  const held = await lstatOrUndefined(hold);
  if (held === undefined) {
    await linkIgnoringRaces(file, hold);
    return;
  }
  if (held.ino === current.ino && held.dev === current.dev) return;
  // conmon replaced <file>; .hold is the previous inode. (If conmon replaces it
  // again between here and the link below, that middle inode is lost: the
  // "twice within one tick" case of the module comment.)
  if (maxFiles <= 1) {
    await unlinkIfExists(hold);
  } else {
    await shift(file, maxFiles);
  }
  await linkIgnoringRaces(file, hold);
}

/**
 * Moves `.hold` to `.1`, pushing older files up to the first free slot; the
 * oldest one is dropped only when all of `.1 .. .<maxFiles-1>` exist. Filling
 * the first hole (instead of always shifting everything) makes a shift that
 * crashed half-way safe to redo.
 */
async function shift(file: string, maxFiles: number): Promise<void> {
  const last = maxFiles - 1;
  let free = last;
  for (let i = 1; i <= last; i++) {
    if ((await lstatOrUndefined(`${file}.${i}`)) === undefined) {
      free = i;
      break;
    }
  }
  if (free === last) await unlinkIfExists(`${file}.${last}`);
  for (let i = free - 1; i >= 1; i--) await fs.rename(`${file}.${i}`, `${file}.${i + 1}`);
  await fs.rename(file + LOG_HOLD_SUFFIX, `${file}.1`);
}

/** Removes `<file>.N` for N >= maxFiles (max-file lowered since the last run). */
async function pruneRotated(file: string, maxFiles: number): Promise<void> {
  for (const n of await rotatedIndices(file)) {
    if (n >= maxFiles) await unlinkIfExists(`${file}.${n}`);
  }
}

/** Removes a log, its rotated files, its hold link and conmon's temp file (container removal). Untrack it first. */
export async function removeLogFiles(file: string): Promise<void> {
  const names = [file, file + LOG_HOLD_SUFFIX, file + CONMON_TMP_SUFFIX];
  for (const n of await rotatedIndices(file)) names.push(`${file}.${n}`);
  for (const name of names) await unlinkIfExists(name);
}

/**
 * The files that make up a log, oldest first: `<file>.N` ... `<file>.1`, then
 * `<file>.hold` when it is not the same inode as `<file>` (a shift is
 * pending), then `<file>`; only those that exist.
 */
export async function logFiles(file: string): Promise<string[]> {
  const out = (await rotatedIndices(file)).sort((a, b) => b - a).map((n) => `${file}.${n}`);
  const current = await lstatOrUndefined(file);
  const held = await lstatOrUndefined(file + LOG_HOLD_SUFFIX);
  if (held !== undefined && held.isFile() && (current === undefined || held.ino !== current.ino || held.dev !== current.dev)) out.push(file + LOG_HOLD_SUFFIX);
  if (current !== undefined) out.push(file);
  return out;
}

/** N of every `<file>.N` (N >= 1, no leading zero) beside `file`, unsorted. */
export async function rotatedIndices(file: string): Promise<number[]> {
  const base = path.basename(file) + '.';
  let names: string[];
  try {
    names = await fs.readdir(path.dirname(file));
  } catch (err) {
    if (errno(err) === 'ENOENT' || errno(err) === 'ENOTDIR') return [];
    throw err;
  }
  const out: number[] = [];
  for (const name of names) {
    if (!name.startsWith(base)) continue;
    const rest = name.slice(base.length);
    if (/^[1-9]\d{0,8}$/.test(rest)) out.push(Number(rest));
  }
  return out;
}

const SIZE_UNITS: Readonly<Record<string, number>> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4, p: 1024 ** 5 };

/**
 * Parses Docker's sizes (go-units' RAMInBytes, as json-file's max-size):
 * "512" bytes, "10k", "10kb", "10KiB", "10m", "1.5g" (case-insensitive,
 * binary units, an optional space before the unit). Fractions of a byte are
 * dropped. Throws CONTAINER_CONFIG_INVALID naming the value for anything
 * else, and for 0 (conmon would read it as "no limit").
 */
export function parseLogSize(v: string): number {
  const m = /^(\d+(?:\.\d+)?)(?: ?(?:([kmgtp])i?b?|b))?$/i.exec(v);
  const unit = SIZE_UNITS[(m?.[2] ?? '').toLowerCase()];
  const bytes = m === null || unit === undefined ? NaN : Math.floor(Number(m[1]) * unit);
  if (!Number.isSafeInteger(bytes) || bytes < 1) throw new IsulaError('CONTAINER_CONFIG_INVALID', `invalid log size ${JSON.stringify(v)} (want a positive size such as 512, 10k, 10m or 1g)`, { details: { value: v } });
  return bytes;
}

async function lstatOrUndefined(p: string): Promise<Stats | undefined> {
  try {
    return await fs.lstat(p);
  } catch (err) {
    if (errno(err) === 'ENOENT') return undefined;
    throw err;
  }
}

async function unlinkIfExists(p: string): Promise<void> {
  try {
    await fs.unlink(p);
  } catch (err) {
    if (errno(err) !== 'ENOENT') throw err;
  }
}

/** link(2), where the source vanishing (container removed) or the target appearing (done already) is not a failure. */
async function linkIgnoringRaces(from: string, to: string): Promise<void> {
  try {
    await fs.link(from, to);
  } catch (err) {
    if (errno(err) !== 'ENOENT' && errno(err) !== 'EEXIST') throw err;
  }
}

function errno(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'code' in err && typeof err.code === 'string' ? err.code : undefined;
}

function errorKey(err: unknown): string {
  return errno(err) ?? (err instanceof Error ? err.message : String(err));
}
