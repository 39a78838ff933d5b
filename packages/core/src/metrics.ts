/**
 * Engine metrics in Prometheus' text format, off by default (daemon.json
 * `metrics-port` or `metrics-addr`). When off, nothing is timed and
 * prom-client is never loaded: the daemon pays nothing for them.
 *
 * Operations are timed once, where they enter the domain: the public methods
 * of the ContainerManager and ExecManager and of each registered ImageDriver
 * are wrapped at start (instrument()). The engine API routes and the CRI
 * front end both go through them, so a `start` counts once whichever API
 * asked for it. An operation made of others (restart = stop + start) counts
 * as itself only, and work the engine does on its own (health probes,
 * `--rm`, restart policies, restore) is not a user's operation: an
 * AsyncLocalStorage marks both, see engineInternal().
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import fs from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import type { Logger } from 'pino';
import type { MetricsListen } from './config.js';
import type { ContainerRecord } from './container/record.js';
import { IsulaError } from './errors.js';
import type { FrontEnd } from './hooks.js';
import { wrapMethods } from './wrap-methods.js';

/** Latency buckets (seconds): container operations take 10 ms to seconds, pulls and loads up to minutes. */
const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];

/** Container states counted by `isulad_containers`, Docker's words; each is always exported, 0 included. */
const CONTAINER_STATES = ['created', 'running', 'paused', 'restarting', 'removing', 'exited', 'dead'] as const;

/** Public methods timed, by the operation name metrics show (the `isula` command's). */
export const CONTAINER_OPERATIONS = {
  create: 'create', start: 'start', stop: 'stop', kill: 'kill', restart: 'restart', pause: 'pause',
  unpause: 'unpause', remove: 'rm', update: 'update', rename: 'rename',
} as const;
export const EXEC_OPERATIONS = { start: 'exec' } as const;
export const IMAGE_OPERATIONS = {
  pull: 'pull', push: 'push', load: 'load', import: 'import', save: 'save', remove: 'rmi',
} as const;

export interface EngineMetrics {
  readonly enabled: boolean;
  /** Runs one operation, recording its latency and outcome unless it runs inside another (or inside engine-internal work). */
  time<T>(operation: string, run: () => Promise<T>): Promise<T>;
  /** An image pull ended; `registry` is the reference's host (`docker.io` for short names). */
  imagePulled(registry: string, ok: boolean): void;
  /** How long a plugin took to import and apply. */
  pluginLoaded(name: string, durationMs: number): void;
  /** The text exposition and its content type. */
  render(): Promise<{ contentType: string; body: string }>;
}

/** `outer` when an operation is being timed, `internal` in engine-initiated work: nested operations are not counted. */
const context = new AsyncLocalStorage<'outer' | 'internal'>();

/**
 * Runs work the engine starts by itself (health probes, auto-remove, kills
 * for an unhealthy container): operations inside it are not counted as the
 * user's.
 */
export function engineInternal<T>(run: () => T): T {
  return context.run('internal', run);
}

export const NO_METRICS: EngineMetrics = Object.freeze({
  enabled: false,
  time: <T>(_operation: string, run: () => Promise<T>) => run(),
  imagePulled: () => undefined,
  pluginLoaded: () => undefined,
  render: () => Promise.resolve({ contentType: 'text/plain', body: '' }),
});

export interface MetricsSources {
  containers(): readonly ContainerRecord[];
}

/** The Prometheus registry of one daemon (never prom-client's global one: tests run several daemons in a process). */
export async function createMetrics(sources: () => MetricsSources, staticLabels: { version: string; pluginApiVersion: string }): Promise<EngineMetrics> {
  const prom = await import('prom-client');
  const register = new prom.Registry();
  // process_resident_memory_bytes, process_cpu_seconds_total, nodejs_heap_size_used_bytes ...: Prometheus' standard names.
  prom.collectDefaultMetrics({ register });
  new prom.Gauge({
    name: 'isulad_build_info', help: 'isulad version and plugin API version (always 1)',
    labelNames: ['version', 'plugin_api_version'], registers: [register],
  }).set({ version: staticLabels.version, plugin_api_version: staticLabels.pluginApiVersion }, 1);
  new prom.Gauge({
    name: 'isulad_containers', help: 'Containers by state', labelNames: ['state'], registers: [register],
    collect() {
      const counts = new Map<string, number>(CONTAINER_STATES.map((s) => [s, 0]));
      for (const r of sources().containers()) counts.set(r.State.Status, (counts.get(r.State.Status) ?? 0) + 1);
      for (const [state, n] of counts) this.set({ state }, n);
    },
  });
  const durations = new prom.Histogram({
    name: 'isulad_operation_duration_seconds', help: 'Latency of engine operations (container create/start/stop/kill/rm/..., exec, image pull/load/...)',
    labelNames: ['operation'], buckets: DURATION_BUCKETS, registers: [register],
  });
  const operations = new prom.Counter({
    name: 'isulad_operations_total', help: 'Engine operations by outcome (ok, error)', labelNames: ['operation', 'result'], registers: [register],
  });
  const pulls = new prom.Counter({
    name: 'isulad_image_pulls_total', help: 'Image pulls by registry host and outcome', labelNames: ['registry', 'result'], registers: [register],
  });
  const pluginLoad = new prom.Gauge({
    name: 'isulad_plugin_load_seconds', help: 'Time a plugin took to import and apply at start', labelNames: ['plugin'], registers: [register],
  });
  return {
    enabled: true,
    async time(operation, run) {
      if (context.getStore() !== undefined) return run();
      return context.run('outer', async () => {
        const end = durations.startTimer({ operation });
        let result = 'error';
        try {
          const value = await run();
          result = 'ok';
          return value;
        } finally {
          end();
          operations.inc({ operation, result });
        }
      });
    },
    imagePulled(registry, ok) {
      pulls.inc({ registry, result: ok ? 'ok' : 'error' });
    },
    pluginLoaded(name, durationMs) {
      pluginLoad.set({ plugin: name }, durationMs / 1000);
    },
    async render() {
      return { contentType: register.contentType, body: await register.metrics() };
    },
  };
}

/**
 * Wraps `target`'s methods named in `operations` so each call is timed as
 * that operation (unless nested, see time()); `onCall` hears every call's
 * outcome. The wrapper calls the original with `target` as `this` (class
 * private fields keep working). A frozen object is left as it is.
 */
export function instrument<T extends object>(target: T, metrics: EngineMetrics, operations: Readonly<Record<string, string>>, onCall?: (method: string, args: unknown[], ok: boolean) => void): void {
  if (!metrics.enabled) return;
  // onCall hears every call, nested ones too: the pull a `run` makes is a pull (isulad_image_pulls_total).
  wrapMethods(target, Object.keys(operations), (method, original) => (...args) =>
    metrics.time(operations[method] as string, () => original(args)).then(
      (value) => { onCall?.(method, args, true); return value; },
      (err: unknown) => { onCall?.(method, args, false); throw err; },
    ));
}

/** The registry host of an image reference, as Docker reads it: a first component with `.` or `:`, or `localhost`. */
export function registryOf(reference: string): string {
  const slash = reference.indexOf('/');
  if (slash < 0) return 'docker.io';
  const first = reference.slice(0, slash);
  if (first.includes('.') || first.includes(':') || first === 'localhost') return first === 'index.docker.io' ? 'docker.io' : first;
  return 'docker.io';
}

/**
 * The `/metrics` endpoint: a small node:http server on the configured TCP
 * address or unix socket. A front end, so `isula info` lists where it is.
 */
export function metricsServer(listen: MetricsListen, metrics: EngineMetrics, log: Logger, socketGid?: number): FrontEnd {
  let server: http.Server | undefined;
  const endpoint = listen.kind === 'tcp' ? `http://${listen.host.includes(':') ? `[${listen.host}]` : listen.host}:${listen.port}/metrics` : `unix://${listen.path}`;
  return {
    name: 'metrics',
    async start() {
      const s = http.createServer({ headersTimeout: 10_000, requestTimeout: 30_000 }, (req, res) => { void answer(req, res, metrics, log); });
      if (listen.kind === 'unix') {
        await fs.mkdir(path.dirname(listen.path), { recursive: true, mode: 0o711 });
        // The daemon lock is held: a socket left at this path is a dead daemon's.
        const stat = await fs.lstat(listen.path).catch(() => undefined);
        if (stat !== undefined && !stat.isSocket()) throw new IsulaError('CONFIG_INVALID', `metrics-addr: ${listen.path} exists and is not a socket`);
        await fs.rm(listen.path, { force: true });
      }
      await new Promise<void>((resolve, reject) => {
        s.once('error', (err: NodeJS.ErrnoException) => reject(new IsulaError('CONFIG_INVALID', `cannot serve metrics on ${endpoint}: ${err.code ?? err.message}`, { cause: err })));
        if (listen.kind === 'tcp') s.listen(listen.port, listen.host, () => resolve());
        else s.listen(listen.path, () => resolve());
      });
      if (listen.kind === 'unix') {
        await fs.chmod(listen.path, 0o660);
        if (socketGid !== undefined) await fs.chown(listen.path, 0, socketGid);
      }
      server = s;
      return { endpoints: [endpoint] };
    },
    async stop() {
      const s = server;
      server = undefined;
      if (s === undefined) return;
      await new Promise<void>((resolve) => { s.close(() => resolve()); s.closeAllConnections(); });
      if (listen.kind === 'unix') await fs.rm(listen.path, { force: true });
    },
  };
}

async function answer(req: http.IncomingMessage, res: http.ServerResponse, metrics: EngineMetrics, log: Logger): Promise<void> {
  const pathname = (req.url ?? '/').split('?')[0];
  if (pathname !== '/metrics') {
    res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found: metrics are at /metrics\n');
    return;
  }
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.writeHead(405, { 'Content-Type': 'text/plain', Allow: 'GET, HEAD' }).end('method not allowed\n');
    return;
  }
  try {
    const { contentType, body } = await metrics.render();
    res.writeHead(200, { 'Content-Type': contentType, 'Content-Length': Buffer.byteLength(body) }).end(req.method === 'HEAD' ? undefined : body);
  } catch (err) {
    log.warn({ err }, 'rendering metrics failed');
    res.writeHead(500, { 'Content-Type': 'text/plain' }).end('rendering metrics failed\n');
  }
}
