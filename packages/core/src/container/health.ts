/**
 * Health checks (Docker's HEALTHCHECK and `--health-*`; iSulad's
 * `--health-exit-on-unhealthy`): while a container runs, its probe runs
 * through exec every interval; `State.Health` keeps the status
 * (`starting`, `healthy`, `unhealthy`), the failing streak and the last 5
 * results; each change of status is a `health_status: …` event. Probes
 * stop while the container is paused or stopped, start again at start,
 * unpause and daemon restart; a probe over its timeout is killed.
 *
 * Driven by the engine's own events (start, die, pause, unpause, destroy),
 * so the container domain needs no knowledge of it.
 */
import type { Logger } from 'pino';
import { engineInternal } from '../metrics.js';
import type { EventBus } from '../events.js';
import type { ExecManager } from './exec.js';
import type { ContainerManager } from './manager.js';
import type { ContainerRecord } from './record.js';

export interface HealthConfig {
  Test?: string[] | null;
  /** Nanoseconds, as Docker's API. */
  Interval?: number;
  Timeout?: number;
  StartPeriod?: number;
  Retries?: number;
  /** iSulad's: kill the container when it turns unhealthy. */
  ExitOnUnhealthy?: boolean;
}

export interface HealthResult {
  Start: string;
  End: string;
  ExitCode: number;
  Output: string;
}

export interface HealthState {
  Status: 'starting' | 'healthy' | 'unhealthy';
  FailingStreak: number;
  Log: HealthResult[];
}

const DEFAULT_INTERVAL_MS = 30_000;
const DEFAULT_TIMEOUT_MS = 30_000;
const DEFAULT_RETRIES = 3;
const MAX_LOG = 5;
const MAX_OUTPUT = 4096;
const NS_PER_MS = 1_000_000;

/** Docker's merge at create: the container's fields over the image's; an empty Test takes the image's. */
export function mergeHealthcheck(container: HealthConfig | null | undefined, image: Record<string, unknown> | undefined): HealthConfig | undefined {
  const img = (image ?? undefined) as HealthConfig | undefined;
  if (container === undefined || container === null) return img;
  const out: HealthConfig = { ...(img ?? {}), ...container };
  if ((container.Test ?? []).length === 0 && img?.Test !== undefined) out.Test = img.Test;
  for (const k of ['Interval', 'Timeout', 'StartPeriod', 'Retries'] as const) if (container[k] === 0 && img?.[k] !== undefined) out[k] = img[k];
  return out;
}

/** The probe's argv, or undefined when there is none (no Test, NONE). */
export function probeCommand(hc: HealthConfig | undefined): string[] | undefined {
  const test = hc?.Test ?? [];
  const [kind, ...rest] = test;
  if (kind === undefined || kind === 'NONE') return undefined;
  if (kind === 'CMD') return rest.length > 0 ? rest : undefined;
  if (kind === 'CMD-SHELL') return rest.length > 0 ? ['/bin/sh', '-c', rest.join(' ')] : undefined;
  return test; // an old-style list without a kind
}

interface Watch {
  timer: NodeJS.Timeout | undefined;
  startedAt: number;
  running: boolean;
}

export class HealthMonitor {
  readonly #containers: ContainerManager;
  readonly #execs: ExecManager;
  readonly #log: Logger;
  readonly #watches = new Map<string, Watch>();
  #unsubscribe: (() => void) | undefined;

  constructor(opts: { containers: ContainerManager; execs: ExecManager; events: EventBus; log: Logger }) {
    this.#containers = opts.containers;
    this.#execs = opts.execs;
    this.#log = opts.log.child({ component: 'health' });
    this.#unsubscribe = opts.events.subscribe((e) => {
      if (e.Type !== 'container') return;
      const id = e.Actor.ID;
      switch (e.Action) {
        case 'start': this.#begin(id, true); break;
        case 'unpause': this.#begin(id, false); break;
        case 'pause': case 'die': case 'destroy': this.#end(id); break;
        default:
      }
    });
  }

  /** After restore: probes for the containers already running. */
  resumeAll(): void {
    for (const r of this.#containers.records()) if (r.State.Status === 'running') this.#begin(r.Id, false);
  }

  close(): void {
    this.#unsubscribe?.();
    for (const id of [...this.#watches.keys()]) this.#end(id);
  }

  #config(record: ContainerRecord): HealthConfig | undefined {
    return (record.Config as { Healthcheck?: HealthConfig | null }).Healthcheck ?? undefined;
  }

  #begin(id: string, fresh: boolean): void {
    let record: ContainerRecord;
    try {
      record = this.#containers.find(id).record;
    } catch {
      return;
    }
    const hc = this.#config(record);
    if (probeCommand(hc) === undefined) return;
    this.#end(id);
    const watch: Watch = { timer: undefined, startedAt: Date.now(), running: false };
    this.#watches.set(id, watch);
    if (fresh || record.State.Health === undefined) {
      void this.#containers.setHealth(id, { Status: 'starting', FailingStreak: 0, Log: record.State.Health?.Log ?? [] }).catch(() => undefined);
    }
    this.#schedule(id, watch, hc);
  }

  #end(id: string): void {
    const w = this.#watches.get(id);
    if (w === undefined) return;
    clearTimeout(w.timer);
    this.#watches.delete(id);
  }

  #schedule(id: string, watch: Watch, hc: HealthConfig | undefined): void {
    const interval = hc?.Interval !== undefined && hc.Interval > 0 ? hc.Interval / NS_PER_MS : DEFAULT_INTERVAL_MS;
    watch.timer = setTimeout(() => { void this.#probe(id, watch); }, interval);
    watch.timer.unref();
  }

  async #probe(id: string, watch: Watch): Promise<void> {
    if (this.#watches.get(id) !== watch) return;
    let record: ContainerRecord;
    try {
      record = this.#containers.find(id).record;
    } catch {
      this.#end(id);
      return;
    }
    const hc = this.#config(record);
    const argv = probeCommand(hc);
    if (argv === undefined || record.State.Status !== 'running') return;
    const timeoutMs = hc?.Timeout !== undefined && hc.Timeout > 0 ? hc.Timeout / NS_PER_MS : DEFAULT_TIMEOUT_MS;
    const start = new Date();
    let output = '';
    let exitCode: number;
    try {
      const { Id } = this.#execs.create(id, { Cmd: argv, AttachStdout: true, AttachStderr: true });
      // A probe is the engine's own work, not a user's exec (metrics).
      const e = await engineInternal(() => this.#execs.start(Id, {
        write: (_s: 1 | 2, chunk: Buffer) => { if (output.length < MAX_OUTPUT) output += chunk.toString('utf8').slice(0, MAX_OUTPUT - output.length); },
        connected: () => undefined,
      }));
      let timer: NodeJS.Timeout | undefined;
      const timedOut = await Promise.race([
        e.done.then(() => false),
        new Promise<boolean>((resolve) => { timer = setTimeout(() => resolve(true), timeoutMs); }),
      ]);
      clearTimeout(timer);
      if (timedOut) {
        // A probe that hangs is killed at its timeout (Docker: exit code -1).
        if (e.pid > 0) { try { process.kill(e.pid, 'SIGKILL'); } catch { /* gone already */ } }
        exitCode = -1;
        output = `Health check exceeded timeout (${timeoutMs / 1000}s)`;
      } else {
        exitCode = e.exitCode ?? -1;
      }
    } catch (err) {
      // A probe that cannot run (no such command) counts as a failure, as Docker's.
      exitCode = -1;
      output = (err as Error).message;
    }
    if (this.#watches.get(id) !== watch) return;
    await this.#record(id, record, hc, { Start: start.toISOString(), End: new Date().toISOString(), ExitCode: exitCode, Output: output }, watch);
    if (this.#watches.get(id) === watch) this.#schedule(id, watch, hc);
  }

  async #record(id: string, record: ContainerRecord, hc: HealthConfig | undefined, result: HealthResult, watch: Watch): Promise<void> {
    const prev = record.State.Health ?? { Status: 'starting', FailingStreak: 0, Log: [] };
    const retries = hc?.Retries !== undefined && hc.Retries > 0 ? hc.Retries : DEFAULT_RETRIES;
    const inStartPeriod = hc?.StartPeriod !== undefined && hc.StartPeriod > 0 && Date.now() - watch.startedAt < hc.StartPeriod / NS_PER_MS;
    const log = [...prev.Log, result].slice(-MAX_LOG);
    let next: HealthState;
    if (result.ExitCode === 0) {
      next = { Status: 'healthy', FailingStreak: 0, Log: log };
    } else if (inStartPeriod && prev.Status === 'starting') {
      // Failures during the start period do not count (Docker's).
      next = { Status: 'starting', FailingStreak: prev.FailingStreak, Log: log };
    } else {
      const streak = prev.FailingStreak + 1;
      next = { Status: streak >= retries ? 'unhealthy' : prev.Status, FailingStreak: streak, Log: log };
    }
    await this.#containers.setHealth(id, next).catch((err: unknown) => this.#log.warn({ err, id }, 'saving the health state failed'));
    if (next.Status !== prev.Status) {
      this.#containers.emitEvent(record, `health_status: ${next.Status}`);
      if (next.Status === 'unhealthy' && hc?.ExitOnUnhealthy === true) {
        this.#log.warn({ id }, 'container unhealthy: killing it (health-exit-on-unhealthy); its restart policy applies');
        void engineInternal(() => this.#containers.kill(id, 'SIGKILL', AbortSignal.timeout(30_000), { byEngine: true })).catch((err: unknown) => this.#log.warn({ err, id }, 'killing an unhealthy container failed'));
      }
    }
  }
}
