/**
 * A process's stdio over a hijacked engine-API connection (Docker's attach
 * and exec start): output framed as Docker's multiplexed stream without a
 * TTY (8-byte header: stream id, three zero bytes, uint32 BE length) and raw
 * with one; the client's bytes go to the process's stdin, watched for the
 * detach keys; the client's half-close is the process's stdin EOF.
 */
import type net from 'node:net';
import type { StdioStream } from '../drivers/runtime.js';
import { DetachKeyFilter } from './detach-keys.js';

/** The 8-byte header of a frame of Docker's multiplexed stream: stream id, three zero bytes, uint32 BE length. */
export function frameHeader(stream: 1 | 2, length: number): Buffer {
  const header = Buffer.alloc(8);
  header[0] = stream;
  header.writeUInt32BE(length, 4);
  return header;
}

/** Output a client may leave unread before it is dropped. */
export const MAX_UNREAD_BYTES = 16 * 1024 * 1024;

export interface HijackedStdioOptions {
  tty: boolean;
  /** Forward the client's bytes to stdin. */
  stdin: boolean;
  /** The detach sequence; undefined: none. */
  detachKeys?: Buffer | undefined;
  /** The client typed the detach keys: the session ends, the process goes on. */
  onDetach(): void;
}

export class HijackedStdio {
  readonly #socket: net.Socket;
  readonly #tty: boolean;
  #stream: StdioStream | undefined;
  #chain: Promise<void> = Promise.resolve();
  /** Stdin that came before the process's stream was connected (attach before start). */
  readonly #early: Buffer[] = [];
  #stdinEnded = false;
  #detached = false;
  #closed = false;
  /** Settles when the client's connection has closed. */
  readonly closed: Promise<void>;

  constructor(socket: net.Socket, opts: HijackedStdioOptions) {
    this.#socket = socket;
    this.#tty = opts.tty;
    this.closed = new Promise<void>((resolve) => socket.once('close', () => { this.#closed = true; resolve(); }));
    socket.on('error', () => {});
    if (!opts.stdin) {
      // Still read, to see the client leave; what it sends goes nowhere.
      socket.on('data', () => {});
      socket.resume();
      return;
    }
    const filter = opts.detachKeys !== undefined && opts.detachKeys.length > 0 ? new DetachKeyFilter(opts.detachKeys) : undefined;
    socket.on('data', (chunk: Buffer) => {
      if (this.#detached) return;
      let data = chunk;
      if (filter !== undefined) {
        const r = filter.push(chunk);
        data = r.forward;
        if (r.detach) this.#detached = true;
      }
      if (data.length > 0) {
        if (this.#stream === undefined) this.#early.push(data);
        else this.#toStdin((s) => s.writeStdin(data));
      }
      if (this.#detached) {
        // What was typed before the keys still reaches the process, then the session ends.
        void this.#chain.then(() => opts.onDetach());
      }
    });
    socket.on('end', () => {
      if (this.#detached) return;
      this.#stdinEnded = true;
      this.#toStdin((s) => s.closeStdin());
    });
    socket.resume();
  }

  get detached(): boolean {
    return this.#detached;
  }

  /**
   * The process's stdio is connected: early stdin is flushed, later stdin goes
   * straight on. A client that already left or detached has the stream closed
   * at once (for an exec that is its stdin's end).
   */
  connect(stream: StdioStream): void {
    if (this.#closed || this.#detached) {
      stream.close();
      return;
    }
    this.#stream = stream;
    for (const chunk of this.#early.splice(0)) this.#toStdin((s) => s.writeStdin(chunk));
    if (this.#stdinEnded) this.#toStdin((s) => s.closeStdin());
  }

  write(stream: 1 | 2, chunk: Buffer): void {
    if (this.#socket.destroyed || this.#socket.writableEnded) return;
    // A client that stops reading is dropped rather than buffered without bound: the
    // driver's stream has no pause, and the container must not fill the daemon's memory.
    if (this.#socket.writableLength > MAX_UNREAD_BYTES) {
      this.#socket.destroy();
      return;
    }
    if (this.#tty) { this.#socket.write(chunk); return; }
    this.#socket.write(Buffer.concat([frameHeader(stream, chunk.length), chunk]));
  }

  /** Ends the session: what was written is flushed, then the connection is closed (not half-closed: nothing more is read). */
  end(text?: string): void {
    if (this.#socket.writableEnded) return;
    if (text !== undefined) this.#socket.end(text);
    else this.#socket.end();
    this.#socket.destroySoon();
  }

  destroy(): void {
    this.#socket.destroy();
  }

  #toStdin(work: (s: StdioStream) => Promise<void>): void {
    const s = this.#stream;
    if (s === undefined) return;
    this.#chain = this.#chain.then(() => work(s)).catch(() => {});
  }
}
