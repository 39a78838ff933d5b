/**
 * Spawning conmon 2.1.6 (PLATFORM.md §3): no pipe flags; the sync, start and
 * attach pipes are fds named by `_OCI_SYNCPIPE`, `_OCI_STARTPIPE` and
 * `_OCI_ATTACHPIPE`. conmon waits for a write on the start pipe, double-forks
 * (the spawned process exits 0, the monitor is reparented to PID 1, so it
 * outlives the daemon), runs the runtime and writes JSON lines
 * `{"data": N[, "message": "..."]}` on the sync pipe.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import type { Readable, Writable } from 'node:stream';
import { IsulaError } from '@isula/core';
import { inheritableFds } from './proc.js';

export interface SyncMessage {
  data: number;
  message?: string;
}

export interface ConmonProcess {
  /** Next sync-pipe message; rejects when conmon closes the pipe, on timeout or abort. */
  nextSync(timeoutMs: number, signal?: AbortSignal): Promise<SyncMessage>;
  /** Next attach-pipe message (exec with `--exec-attach`). */
  nextAttach(timeoutMs: number, signal?: AbortSignal): Promise<SyncMessage>;
  /** Lets conmon go on (it blocks on the start pipe before creating, and again before an attached exec). */
  writeStart(): void;
  /** Closes our ends of the pipes: conmon keeps running. */
  release(): void;
}

export interface SpawnConmonOptions {
  conmonPath: string;
  args: string[];
  /** conmon's own stdout/stderr. Never a pipe: conmon dies of SIGPIPE writing to one the daemon no longer reads. */
  logFile: string;
  attachPipe?: boolean;
  /** conmon's working directory: on an OOM it also creates `oom` in its cwd, so keep that ours. */
  cwd: string;
}

/**
 * Spawns conmon detached. Every inheritable fd of this process is mapped to
 * /dev/null in the child (PLATFORM.md §3 bug 1: node-unix-socket's sockets
 * lack close-on-exec; a conmon holding an attach client's socket keeps that
 * client's conmon from seeing it leave).
 */
export function spawnConmon(opts: SpawnConmonOptions): ConmonProcess {
  const logFd = fs.openSync(opts.logFile, 'a', 0o600);
  const devNull = fs.openSync('/dev/null', 'r+');
  try {
    const stdio: (number | 'ignore' | 'pipe')[] = ['ignore', logFd, logFd, 'pipe', 'pipe'];
    if (opts.attachPipe) stdio.push('pipe');
    for (const fd of inheritableFds()) {
      if (fd < stdio.length) continue; // Replaced by one of ours already.
      while (stdio.length < fd) stdio.push('ignore');
      stdio.push(devNull);
    }
    const env: NodeJS.ProcessEnv = { ...process.env, _OCI_SYNCPIPE: '3', _OCI_STARTPIPE: '4' };
    if (opts.attachPipe) env['_OCI_ATTACHPIPE'] = '5';
    const child = spawn(opts.conmonPath, opts.args, { stdio, env, detached: true, cwd: opts.cwd });
    child.on('error', () => {}); // Surfaces as a closed sync pipe.
    child.unref();
    const sync = new LineReader(child.stdio[3] as Readable, 'sync');
    const attach = opts.attachPipe ? new LineReader((child.stdio as unknown[])[5] as Readable, 'attach') : undefined;
    const start = child.stdio[4] as Writable;
    start.on('error', () => {});
    return {
      nextSync: (timeoutMs, signal) => sync.next(timeoutMs, signal),
      nextAttach: (timeoutMs, signal) => {
        if (!attach) throw new Error('conmon spawned without an attach pipe');
        return attach.next(timeoutMs, signal);
      },
      writeStart: () => { start.write('0'); },
      release: () => {
        sync.destroy();
        attach?.destroy();
        start.destroy();
      },
    };
  } finally {
    fs.closeSync(logFd);
    fs.closeSync(devNull);
  }
}

/**
 * conmon's messages are a line of JSON each, at most a runtime's error text
 * long: anything past this without a newline is not conmon talking, and is
 * not buffered further.
 */
export const MAX_SYNC_LINE_BYTES = 256 * 1024;

/** JSON lines from one of conmon's pipes. */
export class LineReader {
  #buf = '';
  #lines: string[] = [];
  #ended = false;
  /** Set when a line outgrew MAX_SYNC_LINE_BYTES: every later `next` fails with it. */
  #overflow: IsulaError | undefined;
  #waiters: { resolve: () => void }[] = [];

  constructor(private readonly stream: Readable, private readonly what: string) {
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      if (this.#overflow) return;
      this.#buf += chunk;
      let i;
      while ((i = this.#buf.indexOf('\n')) >= 0) {
        const line = this.#buf.slice(0, i).trim();
        this.#buf = this.#buf.slice(i + 1);
        if (line !== '') this.#lines.push(line);
      }
      // A string's length counts UTF-16 units: at most 2x the bytes, close enough for a bound.
      if (this.#buf.length > MAX_SYNC_LINE_BYTES) {
        this.#overflow = new IsulaError('RUNTIME_FAILED', `conmon's ${this.what} pipe sent over ${MAX_SYNC_LINE_BYTES} bytes without a line end: ${JSON.stringify(this.#buf.slice(0, 80))}...`);
        this.#buf = '';
        this.stream.destroy();
      }
      this.#wake();
    });
    const end = () => { this.#ended = true; this.#wake(); };
    stream.on('end', end);
    stream.on('close', end);
    stream.on('error', end);
  }

  #wake(): void {
    for (const w of this.#waiters.splice(0)) w.resolve();
  }

  async next(timeoutMs: number, signal?: AbortSignal): Promise<SyncMessage> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const line = this.#lines.shift();
      if (line !== undefined) return parseSync(line, this.what);
      if (this.#overflow) throw this.#overflow;
      if (this.#ended) throw new IsulaError('RUNTIME_FAILED', `conmon closed its ${this.what} pipe without a message`);
      if (signal?.aborted) throw new IsulaError('CANCELED', `waiting for conmon's ${this.what} message canceled`);
      const left = deadline - Date.now(); // Infinity when timeoutMs is: an exec may run for ever.
      if (left <= 0) throw new IsulaError('TIMEOUT', `no ${this.what} message from conmon within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const timer = Number.isFinite(left) ? setTimeout(done, left) : undefined;
        const waiter = { resolve: done };
        function done() {
          clearTimeout(timer);
          signal?.removeEventListener('abort', done);
          resolve();
        }
        signal?.addEventListener('abort', done, { once: true });
        this.#waiters.push(waiter);
      });
    }
  }

  destroy(): void {
    this.stream.destroy();
  }
}

/**
 * One line of conmon's sync or attach pipe: `{"data": N[, "message": "..."]}`.
 * N is a pid (> 0), an exit status, or negative for a failure; anything that
 * is not an integer in int32 range is not conmon's (it writes a C int).
 */
export function parseSync(line: string, what: string): SyncMessage {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch {
    v = undefined;
  }
  if (typeof v === 'object' && v !== null && !Array.isArray(v)) {
    const { data, message } = v as { data?: unknown; message?: unknown };
    if (typeof data === 'number' && Number.isInteger(data) && data >= -0x80000000 && data <= 0x7fffffff) {
      // `+ 0` turns a -0 into 0.
      return typeof message === 'string' ? { data: data + 0, message } : { data: data + 0 };
    }
  }
  throw new IsulaError('RUNTIME_FAILED', `unexpected ${what} message from conmon: ${line.slice(0, 200)}`);
}

/** Maps the daemon's log level onto conmon's (`error`, `warning`, `info`, `debug`, `trace`). */
export function conmonLogLevel(level: string | undefined): string {
  switch (level) {
    case 'trace': case 'debug': return 'debug';
    case 'info': return 'info';
    case 'warn': return 'warning';
    default: return 'error';
  }
}
