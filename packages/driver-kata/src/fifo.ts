/**
 * FIFOs for a task's stdio and the shim's log. Node has no mkfifo(3): one
 * `mkfifo` process makes all the FIFOs of a call. Opening is always
 * non-blocking, and reading goes through a libuv pipe handle (net.Socket on
 * the fd), so no thread-pool thread ever blocks on a FIFO.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import { IsulaError } from '@isula/core';

export async function mkfifos(paths: string[], mode = 0o600): Promise<void> {
  if (paths.length === 0) return;
  await Promise.all(paths.map((p) => fs.promises.rm(p, { force: true })));
  await new Promise<void>((resolve, reject) => {
    execFile('mkfifo', ['-m', mode.toString(8), ...paths], { timeout: 10_000 }, (err, _stdout, stderr) => {
      if (err) reject(new IsulaError('RUNTIME_FAILED', `mkfifo ${paths.join(' ')} failed: ${stderr.trim() || err.message}`, { cause: err }));
      else resolve();
    });
  });
}

/**
 * FIFOs made ahead, in batches, and renamed into place: spawning `mkfifo`
 * costs 50-200 ms on a loaded 2-core machine, a rename nothing. The pool
 * lives on the same file system as the task dirs (the daemon's state root);
 * a destination elsewhere (EXDEV) gets a FIFO of its own.
 */
export class FifoPool {
  readonly #dir: string;
  readonly #batch: number;
  readonly #free: string[] = [];
  #seq = 0;
  #filling: Promise<void> | undefined;
  #ready: Promise<void> | undefined;

  constructor(dir: string, batch = 16) {
    this.#dir = dir;
    this.#batch = batch;
  }

  /** Puts a new FIFO at each path (replacing what is there). */
  async take(dests: string[]): Promise<void> {
    this.#ready ??= fs.promises.rm(this.#dir, { recursive: true, force: true })
      .then(() => fs.promises.mkdir(this.#dir, { recursive: true, mode: 0o700 }))
      .then(() => undefined);
    await this.#ready;
    let guard = 0;
    while (this.#free.length < dests.length && guard++ < 3) await this.#fill(dests.length);
    const direct: string[] = [];
    for (const dest of dests) {
      const src = this.#free.shift();
      if (src === undefined) {
        direct.push(dest);
        continue;
      }
      try {
        await fs.promises.rename(src, dest);
      } catch {
        direct.push(dest);
        await fs.promises.rm(src, { force: true });
      }
    }
    await mkfifos(direct);
    // Refill in the background once low, so the next create finds some.
    if (this.#free.length < this.#batch / 4) void this.#fill(0).catch(() => {});
  }

  #fill(atLeast: number): Promise<void> {
    this.#filling ??= (async () => {
      const names = Array.from({ length: Math.max(this.#batch, atLeast) }, () => `${this.#dir}/f${++this.#seq}`);
      try {
        await mkfifos(names);
        this.#free.push(...names);
      } finally {
        this.#filling = undefined;
      }
    })();
    return this.#filling;
  }
}

/**
 * A reader that is also a writer (O_RDWR): the open never blocks, and it never
 * sees end-of-file. Used before the shim has opened its end, and for the
 * shim's log.
 */
export function openHolding(path: string): net.Socket {
  const fd = fs.openSync(path, fs.constants.O_RDWR | fs.constants.O_NONBLOCK);
  return new net.Socket({ fd, readable: true, writable: false });
}

/** A plain reader: end-of-file once every writer (the shim) has closed. */
export function openReader(path: string): net.Socket {
  const fd = fs.openSync(path, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  return new net.Socket({ fd, readable: true, writable: false });
}

/** A writer; throws (ENXIO) when nobody reads the FIFO. */
export function openWriter(path: string): net.Socket {
  const fd = fs.openSync(path, fs.constants.O_WRONLY | fs.constants.O_NONBLOCK);
  return new net.Socket({ fd, readable: false, writable: true });
}
