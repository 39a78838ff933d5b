/**
 * The container log in conmon's k8s-file format, which core's `readLogs`
 * reads back: `<RFC 3339 nano time> <stdout|stderr> <F|P> <text>`, one line
 * per line of output; `P` marks a partial line (output that did not end in a
 * newline when it was read), as conmon does.
 *
 * With a shim v2 the daemon reads the task's stdio FIFOs and writes the log
 * itself (containerd's CRI plugin does the same): a shim only copies bytes.
 * Writes are queued in order. Past `maxBytes` the log is replaced by an empty
 * file (a temp file renamed over it), as conmon's --log-size-max: core keeps
 * the old content through a hard link and rotates it.
 */
import fs from 'node:fs/promises';

const NL = Buffer.from('\n');

/** Appends are coalesced up to this (and never past the size limit): one open/write per batch. */
const BATCH_BYTES = 256 * 1024;

export class LogWriter {
  readonly #path: string;
  readonly #maxBytes: number | undefined;
  readonly #pending: Buffer[] = [];
  #pendingBytes = 0;
  #draining: Promise<void> | undefined;
  readonly #lowWaiters: { below: number; resolve: () => void }[] = [];
  #size: number | undefined;
  #lastNanos = 0n;

  constructor(path: string, maxBytes?: number) {
    this.#path = path;
    this.#maxBytes = maxBytes;
  }

  /** Appends a chunk of output of one stream. */
  write(stream: 'stdout' | 'stderr', chunk: Buffer): void {
    if (chunk.length === 0) return;
    const ts = this.#timestamp();
    // Buffers, one concat per chunk: a flood of short lines makes millions of records.
    const headF = Buffer.from(`${ts} ${stream} F `);
    const parts: Buffer[] = [];
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf(0x0a, start);
      if (nl < 0) break;
      parts.push(headF, chunk.subarray(start, nl + 1));
      start = nl + 1;
    }
    if (start < chunk.length) parts.push(Buffer.from(`${ts} ${stream} P `), chunk.subarray(start), NL);
    this.#append(Buffer.concat(parts));
  }

  /** Bytes accepted by write() and not on disk yet. */
  get backlog(): number {
    return this.#pendingBytes;
  }

  /** Resolves once the backlog is at most `bytes` (the reader pauses meanwhile: bounded memory). */
  drained(bytes: number): Promise<void> {
    if (this.#pendingBytes <= bytes) return Promise.resolve();
    return new Promise((resolve) => this.#lowWaiters.push({ below: bytes, resolve }));
  }

  /**
   * The caller moved the file away (kubelet-style rotation): later lines go
   * to a new file at the same path. Every append opens the path anew, so
   * only the size count restarts.
   */
  async reopen(): Promise<void> {
    await this.flush();
    this.#size = undefined;
  }

  /** Resolves once everything written so far is on disk. */
  async flush(): Promise<void> {
    while (this.#draining) await this.#draining;
  }

  #append(buf: Buffer): void {
    this.#pending.push(buf);
    this.#pendingBytes += buf.length;
    this.#draining ??= this.#drain().finally(() => { this.#draining = undefined; });
  }

  async #drain(): Promise<void> {
    const limit = Math.min(BATCH_BYTES, this.#maxBytes ?? Infinity);
    while (this.#pending.length > 0) {
      let n = 0;
      let bytes = 0;
      while (n < this.#pending.length && (n === 0 || bytes + (this.#pending[n] as Buffer).length <= limit)) bytes += (this.#pending[n++] as Buffer).length;
      const batch = this.#pending.splice(0, n);
      const buf = batch.length === 1 ? batch[0] as Buffer : Buffer.concat(batch, bytes);
      try {
        if (this.#size === undefined) this.#size = await fs.stat(this.#path).then((s) => s.size, () => 0);
        if (this.#maxBytes !== undefined && this.#size > 0 && this.#size + buf.length > this.#maxBytes) {
          const tmp = `${this.#path}.tmp`;
          await fs.writeFile(tmp, '', { mode: 0o600 });
          await fs.rename(tmp, this.#path);
          this.#size = 0;
        }
        await fs.appendFile(this.#path, buf, { mode: 0o600 });
        this.#size += buf.length;
      } catch {
        // A log that cannot be written (disk full, dir removed) must not stop the container's output.
        this.#size = undefined;
      }
      this.#pendingBytes -= bytes;
      for (let i = this.#lowWaiters.length - 1; i >= 0; i--) {
        const w = this.#lowWaiters[i] as { below: number; resolve: () => void };
        if (this.#pendingBytes <= w.below) {
          this.#lowWaiters.splice(i, 1);
          w.resolve();
        }
      }
    }
  }

  /** RFC 3339 with nanoseconds, strictly increasing so `logs --since` and ordering stay exact. */
  #timestamp(): string {
    let nanos = BigInt(Date.now()) * 1_000_000n + (process.hrtime.bigint() % 1_000_000n);
    if (nanos <= this.#lastNanos) nanos = this.#lastNanos + 1n;
    this.#lastNanos = nanos;
    const ms = Number(nanos / 1_000_000n);
    const iso = new Date(ms).toISOString(); // 2026-11-23T09:17:40.975Z
    const frac = (nanos % 1_000_000_000n).toString().padStart(9, '0');
    return `${iso.slice(0, 19)}.${frac}+00:00`;
  }
}
