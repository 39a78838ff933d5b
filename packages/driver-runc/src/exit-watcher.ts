/**
 * One watcher for conmon's exit directory, shared by every waiter. conmon
 * writes `<exit-dir>/<container id>` (atomically) when the container's init
 * exits. fs.watch wakes the waiters at once; a poll every `pollMs` catches
 * anything inotify missed (and the driver's liveness fallback for a conmon
 * that died without writing). The poll timer only exists while someone waits.
 */
import fs from 'node:fs';
import { IsulaError } from '@isula/core';
import type { ExitStatus } from '@isula/core';

type Check = () => Promise<ExitStatus | undefined>;

interface Group {
  check: Check;
  waiters: Set<{ resolve: (s: ExitStatus) => void; reject: (e: unknown) => void }>;
  running: boolean;
  again: boolean;
}

export class ExitWatcher {
  readonly #dir: string;
  readonly #pollMs: number;
  readonly #groups = new Map<string, Group>();
  #watcher: fs.FSWatcher | undefined;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(dir: string, pollMs = 500) {
    this.#dir = dir;
    this.#pollMs = pollMs;
  }

  /**
   * Resolves with the first status `check` returns for `id`. Concurrent
   * callers for one id share one check (the first caller's).
   */
  wait(id: string, check: Check, signal?: AbortSignal): Promise<ExitStatus> {
    if (this.#closed) return Promise.reject(new IsulaError('CANCELED', 'runtime driver shut down'));
    if (signal?.aborted) return Promise.reject(new IsulaError('CANCELED', `wait for container ${id} canceled`));
    let group = this.#groups.get(id);
    if (!group) {
      group = { check, waiters: new Set(), running: false, again: false };
      this.#groups.set(id, group);
    }
    const g = group;
    return new Promise<ExitStatus>((resolve, reject) => {
      const onAbort = () => {
        g.waiters.delete(waiter);
        if (g.waiters.size === 0 && this.#groups.get(id) === g) this.#groups.delete(id);
        this.#syncTimer();
        reject(new IsulaError('CANCELED', `wait for container ${id} canceled`));
      };
      const waiter = {
        resolve: (s: ExitStatus) => { signal?.removeEventListener('abort', onAbort); resolve(s); },
        reject: (e: unknown) => { signal?.removeEventListener('abort', onAbort); reject(e); },
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      g.waiters.add(waiter);
      this.#ensureWatching();
      this.#syncTimer();
      this.#run(id);
    });
  }

  /** Re-checks one container now (e.g. after `delete` made conmon write its file). */
  poke(id: string): void {
    if (this.#groups.has(id)) this.#run(id);
  }

  /** Resolves every waiter of `id` with `status` (used by `delete` before it removes the exit file). */
  settle(id: string, status: ExitStatus): void {
    const g = this.#groups.get(id);
    if (!g) return;
    this.#groups.delete(id);
    for (const w of g.waiters) w.resolve(status);
    g.waiters.clear();
    this.#syncTimer();
  }

  close(): void {
    this.#closed = true;
    this.#watcher?.close();
    this.#watcher = undefined;
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    for (const [id, g] of this.#groups) {
      for (const w of g.waiters) w.reject(new IsulaError('CANCELED', `wait for container ${id} canceled: runtime driver shut down`));
    }
    this.#groups.clear();
  }

  #run(id: string): void {
    const g = this.#groups.get(id);
    if (!g) return;
    if (g.running) {
      g.again = true;
      return;
    }
    g.running = true;
    g.check().then(
      (status) => {
        g.running = false;
        if (status !== undefined) {
          if (this.#groups.get(id) === g) this.#groups.delete(id);
          for (const w of g.waiters) w.resolve(status);
          g.waiters.clear();
          this.#syncTimer();
        } else if (g.again) {
          g.again = false;
          this.#run(id);
        }
      },
      (err: unknown) => {
        g.running = false;
        if (this.#groups.get(id) === g) this.#groups.delete(id);
        for (const w of g.waiters) w.reject(err);
        g.waiters.clear();
        this.#syncTimer();
      },
    );
  }

  #ensureWatching(): void {
    if (this.#watcher) return;
    try {
      // Not persistent: the poll timer keeps the process alive while someone waits.
      this.#watcher = fs.watch(this.#dir, { persistent: false }, (_event, filename) => {
        if (typeof filename === 'string' && !filename.startsWith('.')) this.poke(filename);
      });
      this.#watcher.on('error', () => {
        this.#watcher?.close();
        this.#watcher = undefined; // The poll carries on; the next wait re-arms.
      });
    } catch {
      // Directory missing: the poll alone will do.
    }
  }

  #syncTimer(): void {
    if (this.#groups.size > 0 && !this.#timer) {
      this.#timer = setInterval(() => { for (const id of this.#groups.keys()) this.#run(id); }, this.#pollMs);
    } else if (this.#groups.size === 0 && this.#timer) {
      clearInterval(this.#timer);
      this.#timer = undefined;
    }
  }
}
