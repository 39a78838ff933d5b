/**
 * The daemon's own log file, bounded in size: `isulad.log` plus
 * `isulad.log.1` (newest) .. `isulad.log.<max-file - 1>` (oldest), iSulad's
 * layout and Docker json-file's meaning of `max-file` (the current file
 * counts). With `max-file` 1 the file is truncated in place.
 *
 * Writes are synchronous (`writeSync`), like the pino destinations before:
 * the last lines before a crash or a `process.exit` are on disk, and no
 * worker thread costs idle memory. That is also why this is not pino-roll
 * (its current file is numbered, `isulad.1.log`, so `<state>/isulad.log`
 * would no longer be the live log operators tail) nor rotating-file-stream
 * (asynchronous writes: the lines of a crash are lost). Rotation is a few
 * renames between two writes of one process (the daemon lock makes it the
 * only writer), so it needs no more than this.
 *
 * A line is never split across files: the file rotates before a write that
 * would pass `max-size` (a single line longer than that still goes whole
 * into a fresh file).
 */
import fs from 'node:fs';

export interface DaemonLogFileOptions {
  file: string;
  maxSizeBytes: number;
  /** Files kept, the current one included; >= 1. */
  maxFiles: number;
  mode: number;
}

export class DaemonLogFile {
  readonly file: string;
  #opts: DaemonLogFileOptions;
  #fd: number;
  #size: number;
  /** After a failed rotation (disk full, permissions), the next attempt waits for this many more bytes. */
  #retryAtBytes = 0;

  constructor(opts: DaemonLogFileOptions) {
    this.file = opts.file;
    this.#opts = opts;
    this.#fd = openLog(opts.file, opts.mode);
    this.#size = fs.fstatSync(this.#fd).size;
    this.#dropPast(opts.maxFiles);
  }

  /** pino calls this with one serialized line. */
  write(line: string): void {
    // Closed at daemon stop: a stray late line is dropped, never written to a reused fd number.
    if (this.#fd < 0) return;
    const bytes = Buffer.byteLength(line);
    if (this.#size > 0 && this.#size + bytes > this.#opts.maxSizeBytes && this.#size >= this.#retryAtBytes) this.#rotate();
    try {
      fs.writeSync(this.#fd, line);
      this.#size += bytes;
    } catch {
      // A log line that cannot be written (disk full) must not take the daemon down.
    }
  }

  /**
   * New bounds (SIGHUP) and a fresh open of the path: after an outside tool
   * (logrotate) moved the file away, the log goes on in a new `isulad.log`.
   */
  reopen(bounds: Pick<DaemonLogFileOptions, 'maxSizeBytes' | 'maxFiles'> = this.#opts): void {
    if (this.#fd < 0) return;
    this.#opts = { ...this.#opts, maxSizeBytes: bounds.maxSizeBytes, maxFiles: bounds.maxFiles };
    const fd = openLog(this.file, this.#opts.mode);
    fs.closeSync(this.#fd);
    this.#fd = fd;
    this.#size = fs.fstatSync(fd).size;
    this.#retryAtBytes = 0;
    this.#dropPast(this.#opts.maxFiles);
  }

  close(): void {
    const fd = this.#fd;
    this.#fd = -1;
    if (fd >= 0) fs.closeSync(fd);
  }

  /** Shifts `.1 .. .N-2` up by one, the live file to `.1`, and opens a new live file. */
  #rotate(): void {
    const { file, maxFiles, mode } = this.#opts;
    try {
      if (maxFiles === 1) {
        fs.ftruncateSync(this.#fd, 0);
      } else {
        rmIfExists(`${file}.${maxFiles - 1}`);
        for (let i = maxFiles - 2; i >= 1; i--) renameIfExists(`${file}.${i}`, `${file}.${i + 1}`);
        fs.renameSync(file, `${file}.1`);
        const fd = openLog(file, mode);
        fs.closeSync(this.#fd);
        this.#fd = fd;
      }
      this.#size = 0;
      this.#retryAtBytes = 0;
    } catch (err) {
      this.#retryAtBytes = this.#size + this.#opts.maxSizeBytes;
      process.stderr.write(`isulad: rotating ${file} failed: ${(err as Error).message}\n`);
    }
  }

  /** Rotated files past a lowered max-file (from an earlier run or a reload). */
  #dropPast(maxFiles: number): void {
    for (let i = Math.max(maxFiles, 1); i <= 100; i++) {
      if (!rmIfExists(`${this.#opts.file}.${i}`)) break;
    }
  }
}

/** Opens for appending; the mode applies to a file left by an earlier run too (log-file-mode changed). */
function openLog(file: string, mode: number): number {
  const fd = fs.openSync(file, 'a', mode);
  fs.fchmodSync(fd, mode);
  return fd;
}

function rmIfExists(p: string): boolean {
  try {
    fs.unlinkSync(p);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}

function renameIfExists(from: string, to: string): void {
  try {
    fs.renameSync(from, to);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}
