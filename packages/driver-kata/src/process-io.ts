/**
 * The stdio of one task process (a container's init or an exec) as the
 * daemon sees it: FIFOs the shim writes the process's output to and reads its
 * input from. The daemon reads the output, writes the k8s-file log, and fans
 * it out to attach clients (a shim only copies bytes: the log and attach are
 * the caller's business, as with containerd).
 *
 * FIFO handling, and why:
 *  - Output FIFOs get an O_RDWR "hold" fd before the shim opens them: the
 *    shim's blocking O_WRONLY open then succeeds at once, and our plain
 *    O_RDONLY reader sees no end-of-file before the shim's writer exists.
 *    Once the shim has opened its end (after Create for the init, after Start
 *    for an exec) the hold is closed, so the reader gets end-of-file exactly
 *    when the shim has copied everything and closed its end.
 *  - stdin is written through an O_RDWR fd (its open never fails with ENXIO,
 *    whenever the shim opens its reader). The shim keeps a writer of its own
 *    on it, so the process's EOF is the CloseIO call, not our close.
 */
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import type { Logger } from 'pino';
import { IsulaError } from '@isula/core';
import type { StdioStream } from '@isula/core';
import { mkfifos, openReader } from './fifo.js';
import type { LogWriter } from './log-writer.js';

export interface IoPaths {
  stdin?: string;
  stdout: string;
  /** Absent with a terminal: the tty merges stderr into stdout. */
  stderr?: string;
}

export interface IoOptions {
  terminal: boolean;
  openStdin: boolean;
  /** The first attach client to leave closes stdin (docker StdinOnce); never with a terminal. */
  stdinOnce: boolean;
  log?: LogWriter | undefined;
  logger: Logger;
  /**
   * Tells the shim to close the process's stdin (CloseIO): shims hold a
   * writer of the stdin FIFO themselves, so closing ours is not an EOF.
   */
  closeIo?: () => Promise<void>;
}

/** FIFO paths for a process in `dir` (made by `prepare`). */
export function ioPaths(dir: string, opts: { terminal: boolean; openStdin: boolean }): IoPaths {
  return {
    ...(opts.openStdin ? { stdin: path.join(dir, 'stdin') } : {}),
    stdout: path.join(dir, 'stdout'),
    ...(!opts.terminal ? { stderr: path.join(dir, 'stderr') } : {}),
  };
}

type Listener = (stream: 1 | 2, chunk: Buffer) => void;

/** A reader pauses while more than HIGH bytes wait for the log, until at most LOW do. */
const LOG_BACKLOG_HIGH = 8 * 1024 * 1024;
const LOG_BACKLOG_LOW = 1024 * 1024;

export class ProcessIo {
  readonly paths: IoPaths;
  readonly #opts: IoOptions;
  readonly #readers: net.Socket[] = [];
  readonly #holds: number[] = [];
  readonly #streams = new Set<IoStream>();
  #stdin: net.Socket | undefined;
  #open = 0;
  #ended = false;
  readonly #endedWaiters: (() => void)[] = [];

  private constructor(paths: IoPaths, opts: IoOptions) {
    this.paths = paths;
    this.#opts = opts;
  }

  /** Makes the FIFOs in `dir` and opens them before the shim does. */
  static async prepare(dir: string, opts: IoOptions, makeFifos: (paths: string[]) => Promise<void> = mkfifos): Promise<ProcessIo> {
    await fs.promises.mkdir(dir, { recursive: true, mode: 0o700 });
    const paths = ioPaths(dir, opts);
    await makeFifos([paths.stdin, paths.stdout, paths.stderr].filter((p): p is string => p !== undefined));
    const io = new ProcessIo(paths, opts);
    try {
      for (const [p, n] of [[paths.stdout, 1], [paths.stderr, 2]] as const) {
        if (p === undefined) continue;
        io.#holds.push(fs.openSync(p, fs.constants.O_RDWR | fs.constants.O_NONBLOCK));
        io.#read(p, n);
      }
      if (paths.stdin !== undefined) io.#openStdin(paths.stdin);
    } catch (err) {
      io.close();
      throw new IsulaError('RUNTIME_FAILED', `cannot open the stdio FIFOs in ${dir}: ${(err as Error).message}`, { cause: err });
    }
    return io;
  }

  /**
   * Re-opens the FIFOs of a process that outlived the daemon. The shim holds
   * its own writer of the stdin FIFO, so stdin survived the daemon and is
   * reopened too (unless it was closed with CloseIO before).
   */
  static reopen(paths: IoPaths, opts: IoOptions): ProcessIo {
    const io = new ProcessIo(paths, opts);
    if (paths.stdin !== undefined && opts.openStdin) {
      try {
        io.#openStdin(paths.stdin);
      } catch (err) {
        opts.logger.warn({ err, fifo: paths.stdin }, 'cannot reopen the stdin FIFO');
      }
    }
    for (const [p, n] of [[paths.stdout, 1], [paths.stderr, 2]] as const) {
      if (p === undefined) continue;
      try {
        io.#read(p, n);
      } catch (err) {
        opts.logger.warn({ err, fifo: p }, 'cannot reopen a stdio FIFO: its output is lost');
      }
    }
    if (io.#open === 0) io.#markEnded();
    return io;
  }

  /** The shim has opened its ends: from now on the readers see end-of-file when it closes them. */
  releaseHolds(): void {
    for (const fd of this.#holds.splice(0)) {
      try {
        fs.closeSync(fd);
      } catch { /* closed */ }
    }
  }

  /** Resolves once every output FIFO reached end-of-file (or was closed), at most `timeoutMs`. */
  ended(timeoutMs: number): Promise<boolean> {
    if (this.#ended) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), timeoutMs);
      this.#endedWaiters.push(() => { clearTimeout(timer); resolve(true); });
    });
  }

  get isEnded(): boolean {
    return this.#ended;
  }

  /** A new attach client: the process's output from now on, and its stdin. */
  attach(): IoStream {
    const s = new IoStream(this);
    if (this.#ended) s.end();
    else this.#streams.add(s);
    return s;
  }

  /** Writes to the process's stdin (with backpressure). */
  async writeStdin(chunk: Buffer): Promise<void> {
    const w = this.#stdin;
    if (!w || w.destroyed) throw new IsulaError('CONTAINER_STATE_CONFLICT', 'the process\'s stdin is closed');
    await new Promise<void>((resolve, reject) => {
      w.write(chunk, (err) => (err ? reject(new IsulaError('RUNTIME_FAILED', `writing stdin: ${err.message}`, { cause: err })) : resolve()));
    });
  }

  /** Closes the process's stdin: it reads EOF once what was written is consumed. */
  async closeStdin(): Promise<void> {
    const w = this.#stdin;
    this.#stdin = undefined;
    if (!w || w.destroyed) return;
    // What was written goes first (bounded: a process that never reads must not hold us).
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, 2000);
      w.end(() => { clearTimeout(timer); resolve(); });
    });
    w.destroy();
    await this.#opts.closeIo?.().catch((err: unknown) => this.#opts.logger.debug({ err }, 'CloseIO failed'));
  }

  /** A client half-closed its input: EOF for the process with StdinOnce (no TTY), as conmon without --leave-stdin-open. */
  halfClose(): Promise<void> {
    return this.#opts.stdinOnce && !this.#opts.terminal ? this.closeStdin() : Promise.resolve();
  }

  detach(s: IoStream): void {
    this.#streams.delete(s);
    // docker's StdinOnce: the client leaving closes stdin (a TTY's input is never closed that way).
    if (this.#opts.stdinOnce && !this.#opts.terminal) void this.closeStdin();
  }

  /** Stops reading and closes every fd; attach clients see the end. */
  close(): void {
    this.releaseHolds();
    for (const r of this.#readers.splice(0)) r.destroy();
    this.#stdin?.destroy();
    this.#stdin = undefined;
    this.#markEnded();
  }

  #openStdin(p: string): void {
    const fd = fs.openSync(p, fs.constants.O_RDWR | fs.constants.O_NONBLOCK);
    const w = new net.Socket({ fd, readable: false, writable: true });
    w.on('error', (err) => {
      this.#opts.logger.debug({ err }, 'stdin FIFO error');
      w.destroy();
    });
    this.#stdin = w;
  }

  #read(p: string, n: 1 | 2): void {
    const r = openReader(p);
    this.#readers.push(r);
    this.#open++;
    const name = n === 1 ? 'stdout' : 'stderr';
    r.on('data', (chunk: Buffer) => {
      const log = this.#opts.log;
      log?.write(name, chunk);
      for (const s of this.#streams) s.deliver(n, chunk);
      // The log is behind (a flood of output): stop reading until it catches up, so memory stays
      // bounded; the process then waits on its pipe, as under conmon.
      if (log !== undefined && log.backlog > LOG_BACKLOG_HIGH && !r.isPaused()) {
        r.pause();
        void log.drained(LOG_BACKLOG_LOW).then(() => { if (!r.destroyed) r.resume(); });
      }
    });
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      r.destroy();
      if (--this.#open === 0) this.#markEnded();
    };
    r.on('end', finish);
    r.on('close', finish);
    r.on('error', (err) => {
      this.#opts.logger.debug({ err, fifo: p }, 'stdio FIFO error');
      finish();
    });
  }

  #markEnded(): void {
    if (this.#ended) return;
    this.#ended = true;
    for (const s of [...this.#streams]) s.end();
    this.#streams.clear();
    for (const w of this.#endedWaiters.splice(0)) w();
  }
}

/** One attach client's view (core's StdioStream). */
export class IoStream implements StdioStream {
  readonly #io: ProcessIo;
  readonly #outputListeners: Listener[] = [];
  readonly #closeListeners: (() => void)[] = [];
  #pending: [1 | 2, Buffer][] = [];
  #closed = false;

  constructor(io: ProcessIo) {
    this.#io = io;
  }

  deliver(n: 1 | 2, chunk: Buffer): void {
    if (this.#closed) return;
    if (this.#outputListeners.length === 0) this.#pending.push([n, chunk]);
    else for (const l of this.#outputListeners) l(n, chunk);
  }

  onOutput(listener: Listener): void {
    this.#outputListeners.push(listener);
    const pending = this.#pending;
    this.#pending = [];
    for (const [n, c] of pending) listener(n, c);
  }

  onClose(listener: () => void): void {
    if (this.#closed) queueMicrotask(listener);
    else this.#closeListeners.push(listener);
  }

  writeStdin(chunk: Buffer): Promise<void> {
    if (this.#closed) return Promise.reject(new IsulaError('RUNTIME_FAILED', 'attach stream is closed'));
    return this.#io.writeStdin(chunk);
  }

  /** The client half-closed: with StdinOnce (no TTY) the process reads EOF. */
  async closeStdin(): Promise<void> {
    if (this.#closed) return;
    await this.#io.halfClose();
  }

  close(): void {
    if (this.#closed) return;
    this.#io.detach(this);
    this.end();
  }

  /** The process side is done. */
  end(): void {
    if (this.#closed) return;
    this.#closed = true;
    // Output that nobody listened to yet is still handed out on onOutput; close listeners run now.
    for (const l of this.#closeListeners.splice(0)) l();
  }

  get isClosed(): boolean {
    return this.#closed;
  }
}
