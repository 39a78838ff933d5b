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

export class LogWriter {
  readonly #path: string;
  readonly #maxBytes: number | undefined;
  #queue: Promise<void> = Promise.resolve();
  #size: number | undefined;
  #lastNanos = 0n;

  constructor(path: string, maxBytes?: number) {
    this.#path = path;
    this.#maxBytes = maxBytes;
  }

  /** Appends a chunk of output of one stream. */
  write(stream: 'stdout' | 'stderr', chunk: Buffer): void {
    const text = chunk.toString('utf8');
    const ts = this.#timestamp();
    let out = '';
    let start = 0;
    for (;;) {
      const nl = text.indexOf('\n', start);
      if (nl < 0) break;
      out += `${ts} ${stream} F ${text.slice(start, nl)}\n`;
      start = nl + 1;
    }
    if (start < text.length) out += `${ts} ${stream} P ${text.slice(start)}\n`;
    if (out !== '') this.#append(Buffer.from(out));
  }

  /**
   * The caller moved the file away (kubelet-style rotation): later lines go
   * to a new file at the same path. Every append opens the path anew, so
   * only the size count restarts.
   */
  async reopen(): Promise<void> {
    await this.#queue;
    this.#size = undefined;
  }

  /** Resolves once everything written so far is on disk. */
  flush(): Promise<void> {
    return this.#queue;
  }

  #append(buf: Buffer): void {
    this.#queue = this.#queue.then(async () => {
      if (this.#size === undefined) this.#size = await fs.stat(this.#path).then((s) => s.size, () => 0);
      if (this.#maxBytes !== undefined && this.#size > 0 && this.#size + buf.length > this.#maxBytes) {
        const tmp = `${this.#path}.tmp`;
        await fs.writeFile(tmp, '', { mode: 0o600 });
        await fs.rename(tmp, this.#path);
        this.#size = 0;
      }
      await fs.appendFile(this.#path, buf, { mode: 0o600 });
      this.#size += buf.length;
    }).catch(() => {
      // A log that cannot be written (disk full, dir removed) must not stop the container's output.
      this.#size = undefined;
    });
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
