/**
 * conmon's attach socket (SOCK_SEQPACKET; Node's `net` gets EPROTOTYPE) through
 * node-unix-socket's SeqpacketSocket, wrapped for its bugs (PLATFORM.md §3):
 *  - destroy() inside a data/write callback aborts the process: always deferred;
 *  - remote EOF emits 'end' without closing: we destroy, deferred;
 *  - connect() to a bad path throws synchronously with a poor message: the path is checked first;
 *  - there is always an 'error' listener; the write callback is the only backpressure.
 * Its fd lacks close-on-exec (bug 1): conmon.ts hides such fds from children.
 *
 * Frames: 1 type byte (2 stdout, 3 stderr) + up to 8 KiB. Stdin writes are cut
 * to 8 KiB (conmon silently truncates a message over 32 KiB).
 */
import fs from 'node:fs';
import path from 'node:path';
import { SeqpacketSocket } from 'node-unix-socket';
import { IsulaError } from '@isula/core';
import type { StdioStream } from '@isula/core';
import { trackNewFds } from './proc.js';

/** sun_path holds 108 bytes including the NUL; longer paths are silently truncated by the kernel. */
const MAX_SOCKET_PATH = 107;
const STDIN_CHUNK = 8192;

/** Connects to a conmon attach socket; resolves once connected. */
/** The sockets `pid` holds (`socket:[inode]` of its fds); undefined when it is gone. */
export async function socketsOf(pid: number): Promise<Set<string> | undefined> {
  const dir = `/proc/${pid}/fd`;
  const fds = await fs.promises.readdir(dir).catch(() => undefined);
  if (fds === undefined) return undefined;
  const out = new Set<string>();
  await Promise.all(fds.map(async (fd) => {
    const target = await fs.promises.readlink(`${dir}/${fd}`).catch(() => '');
    if (target.startsWith('socket:')) out.add(target);
  }));
  return out;
}

/**
 * Waits until `pid` holds a socket not in `before`, up to `timeoutMs`: conmon
 * accepts an attach connection in its main loop some time after connect()
 * returned, and output the container writes before that reaches no client.
 * True when it did in time.
 */
export async function waitNewSocket(pid: number, before: ReadonlySet<string>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const now = await socketsOf(pid);
    if (now === undefined) return false;
    for (const s of now) if (!before.has(s)) return true;
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 2));
  }
}

export async function connectAttach(socketPath: string): Promise<AttachStream> {
  let st: fs.Stats;
  try {
    st = await fs.promises.stat(socketPath);
  } catch (err) {
    throw new IsulaError('RUNTIME_FAILED', `attach socket ${socketPath} is missing: is the container's conmon running?`, { cause: err });
  }
  if (!st.isSocket()) throw new IsulaError('RUNTIME_FAILED', `attach path ${socketPath} is not a socket`);

  // A long path is reached through /proc/self/fd/<dirfd>/<name> (PLATFORM.md §9).
  let dirFd: number | undefined;
  let target = socketPath;
  if (Buffer.byteLength(socketPath) > MAX_SOCKET_PATH) {
    dirFd = fs.openSync(path.dirname(socketPath), 'r');
    target = `/proc/self/fd/${dirFd}/${path.basename(socketPath)}`;
  }
  // Its fd lacks close-on-exec: conmons spawned while it is open get /dev/null there instead.
  const { value: socket, release } = trackNewFds(() => new SeqpacketSocket());
  socket.once('close', release);
  const stream = new AttachStream(socket);
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      try {
        socket.connect(target, () => { socket.off('error', reject); resolve(); });
      } catch (err) {
        reject(err);
      }
    });
  } catch (err) {
    stream.close();
    throw new IsulaError('RUNTIME_FAILED', `cannot connect to attach socket ${socketPath}: ${(err as Error).message}`, { cause: err });
  } finally {
    if (dirFd !== undefined) fs.closeSync(dirFd);
  }
  return stream;
}

export class AttachStream implements StdioStream {
  readonly #socket: SeqpacketSocket;
  readonly #outputListeners: ((stream: 1 | 2, chunk: Buffer) => void)[] = [];
  readonly #closeListeners: (() => void)[] = [];
  /** Frames that arrived before anyone listened (attach is connected before `start` to catch the first bytes). */
  #pending: [1 | 2, Buffer][] = [];
  #closed = false;
  #destroyed = false;

  constructor(socket: SeqpacketSocket) {
    this.#socket = socket;
    socket.setInternalReadBufferSize(16384);
    socket.on('error', () => this.#finish());
    socket.on('data', (buf: Buffer) => {
      if (buf.length < 1) return;
      const type = buf[0];
      if (type !== 2 && type !== 3) return;
      const frame: [1 | 2, Buffer] = [type === 2 ? 1 : 2, Buffer.from(buf.subarray(1))];
      if (this.#outputListeners.length === 0) this.#pending.push(frame);
      else for (const l of this.#outputListeners) l(...frame);
    });
    socket.on('end', () => this.#finish());
    socket.on('close', () => this.#finish());
  }

  onOutput(listener: (stream: 1 | 2, chunk: Buffer) => void): void {
    this.#outputListeners.push(listener);
    const pending = this.#pending;
    this.#pending = [];
    for (const f of pending) listener(...f);
  }

  onClose(listener: () => void): void {
    if (this.#closed) queueMicrotask(listener);
    else this.#closeListeners.push(listener);
  }

  async writeStdin(chunk: Buffer): Promise<void> {
    for (let off = 0; off < chunk.length; off += STDIN_CHUNK) {
      if (this.#closed) throw new IsulaError('RUNTIME_FAILED', 'attach stream is closed');
      const part = chunk.subarray(off, Math.min(off + STDIN_CHUNK, chunk.length));
      await new Promise<void>((resolve, reject) => {
        try {
          this.#socket.write(Buffer.from(part), 0, part.length, resolve);
        } catch (err) {
          reject(new IsulaError('RUNTIME_FAILED', 'attach stream is closed', { cause: err }));
        }
      });
    }
  }

  async closeStdin(): Promise<void> {
    if (this.#closed) return;
    await new Promise<void>((resolve) => {
      this.onClose(resolve);
      try {
        this.#socket.end(resolve);
      } catch {
        resolve();
      }
    });
  }

  close(): void {
    this.#finish();
  }

  get isClosed(): boolean {
    return this.#closed;
  }

  #finish(): void {
    if (!this.#destroyed) {
      this.#destroyed = true;
      // Never destroy synchronously: inside a data/write callback it aborts the process.
      setImmediate(() => { try { this.#socket.destroy(); } catch { /* already gone */ } });
    }
    if (this.#closed) return;
    this.#closed = true;
    for (const l of this.#closeListeners.splice(0)) l();
  }
}
