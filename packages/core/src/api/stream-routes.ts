/**
 * Streams and observability routes of the engine API (Docker Engine API
 * v1.41 shapes): exec, resize, logs, top, stats, archive (cp) and export.
 */
import fs from 'node:fs/promises';
import type { ServerResponse } from 'node:http';
import os from 'node:os';
import { pipeline } from 'node:stream/promises';
import { archiveContainerPath, exportRootfs, extractToContainer, statContainerPath, type PathStat } from '../container/archive.js';
import type { ExecManager } from '../container/exec.js';
import { readLogs } from '../container/logs.js';
import type { ContainerManager } from '../container/manager.js';
import type { ContainerRecord } from '../container/record.js';
import type { ContainerStats, StdioStream } from '../drivers/runtime.js';
import { IsulaError } from '../errors.js';
import { bool, optionalInt, param } from './container-routes.js';
import { DEFAULT_DETACH_KEYS, parseDetachKeys } from './detach-keys.js';
import { frameHeader, HijackedStdio } from './hijacked-stdio.js';
import { API_VERSION, sendJson, uploadBody, type ApiServer } from './server.js';

const STREAM_HEADERS = { 'Content-Type': 'application/vnd.docker.raw-stream', 'Api-Version': API_VERSION, Server: 'isulad' };

export function registerStreamRoutes(api: ApiServer, manager: ContainerManager, execs: ExecManager): void {
  // ---- exec ------------------------------------------------------------------
  api.route('POST', '/containers/:id/exec', async ({ params, json, res }) => {
    const body = await json();
    if (body === undefined) throw new IsulaError('API_BAD_REQUEST', 'No exec command specified');
    if (typeof body === 'object' && body !== null && typeof (body as { DetachKeys?: unknown }).DetachKeys === 'string' && (body as { DetachKeys: string }).DetachKeys !== '') {
      parseDetachKeys((body as { DetachKeys: string }).DetachKeys);
    }
    sendJson(res, 201, execs.create(param(params['id']), body as Parameters<ExecManager['create']>[1]));
    return undefined;
  });

  api.route('POST', '/exec/:id/start', async (ctx) => {
    const execId = param(ctx.params['id']);
    const body = ((await ctx.json()) ?? {}) as { Detach?: boolean; Tty?: boolean };
    const e = execs.get(execId);
    if (body.Detach === true) {
      await execs.start(execId, undefined);
      // Docker answers a detached start with an empty 200.
      ctx.res.writeHead(200, { 'Content-Length': 0, 'Api-Version': API_VERSION, Server: 'isulad' });
      ctx.res.end();
      return undefined;
    }
    const c = e.config;
    const keys = parseDetachKeys(c.DetachKeys !== undefined && c.DetachKeys !== '' ? c.DetachKeys : DEFAULT_DETACH_KEYS);
    // As moby: once the exec is known the connection is hijacked, and a failure to start is
    // written into the stream (the client then reads the exit code from /exec/{id}/json).
    const socket = ctx.hijack();
    let stream: StdioStream | undefined;
    let done!: () => void;
    const finished = new Promise<void>((resolve) => { done = resolve; });
    const io = new HijackedStdio(socket, {
      tty: c.Tty === true,
      stdin: c.AttachStdin === true,
      detachKeys: c.Tty === true ? keys : undefined,
      onDetach: () => { stream?.close(); io.end(); done(); },
    });
    void io.closed.then(() => { stream?.close(); done(); });
    const onAbort = () => { io.destroy(); };
    ctx.signal.addEventListener('abort', onAbort, { once: true });
    try {
      const instance = await execs.start(execId, {
        write: (s, chunk) => io.write(s, chunk),
        connected: (s) => { stream = s; io.connect(s); },
      });
      // The stream ends once the process exited and its code is recorded: a client asks /exec/{id}/json next.
      const s = stream;
      const outputDone = s === undefined ? Promise.resolve() : new Promise<void>((resolve) => s.onClose(resolve));
      void Promise.all([outputDone, instance.done]).then(() => { io.end(); done(); });
    } catch (err) {
      io.write(1, Buffer.from(`${(err as Error).message}\r\n`));
      io.end();
      done();
    }
    await finished;
    ctx.signal.removeEventListener('abort', onAbort);
    return undefined;
  });

  api.route('GET', '/exec/:id/json', async ({ params }) => execs.inspect(param(params['id'])));

  api.route('POST', '/exec/:id/resize', async ({ params, query, signal }) => {
    const { rows, cols } = size(query);
    await execs.resize(param(params['id']), rows, cols, signal);
    return undefined;
  });

  api.route('POST', '/containers/:id/resize', async ({ params, query, signal }) => {
    const { rows, cols } = size(query);
    const { record, runtime, ref } = await manager.driverOf(param(params['id']));
    if (record.State.Status !== 'running') throw new IsulaError('CONTAINER_STATE_CONFLICT', `Container ${record.Id} is not running`);
    await runtime.resize(ref, { signal, rows, cols });
    return undefined;
  });

  // ---- logs ------------------------------------------------------------------
  api.route('GET', '/containers/:id/logs', async ({ params, query, res, signal }) => {
    const record = manager.find(param(params['id'])).record;
    const stdout = bool(query.get('stdout'));
    const stderr = bool(query.get('stderr'));
    if (!stdout && !stderr) throw new IsulaError('API_BAD_REQUEST', 'Bad parameters: you must choose at least one stream');
    if (record.HostConfig.LogConfig?.Type === 'none') throw new IsulaError('LOGS_UNAVAILABLE', 'configured logging driver does not support reading');
    const follow = bool(query.get('follow'));
    const timestamps = bool(query.get('timestamps'));
    const tailText = query.get('tail') ?? 'all';
    let tail: number | undefined;
    if (tailText !== 'all' && tailText !== '') {
      if (!/^-?\d+$/.test(tailText)) throw new IsulaError('API_BAD_REQUEST', `invalid value for tail: ${JSON.stringify(tailText)}`);
      tail = Number(tailText) < 0 ? undefined : Number(tailText);
    }
    const sinceNs = unixNs(query.get('since'), 'since');
    const untilNs = unixNs(query.get('until'), 'until');
    const tty = record.Config.Tty === true;
    // API 1.42's content types: clients that know them need not inspect the container first.
    res.writeHead(200, { ...STREAM_HEADERS, 'Content-Type': tty ? 'application/vnd.docker.raw-stream' : 'application/vnd.docker.multiplexed-stream' });
    res.flushHeaders();
    const writerDone = follow ? manager.exitOf(record.Id) : undefined;
    const out = new BatchedWriter(res);
    await readLogs({
      path: manager.logPath(record),
      follow: follow && writerDone !== undefined,
      ...(tail !== undefined && { tail }),
      ...(sinceNs !== undefined && { sinceNs }),
      ...(untilNs !== undefined && { untilNs }),
      stdout,
      stderr,
      signal,
      ...(writerDone !== undefined && { writerDone }),
      onRecord: async (r) => {
        const data = timestamps ? Buffer.concat([Buffer.from(`${r.time} `), r.data]) : r.data;
        if (!tty) out.push(frameHeader(r.stream, data.length));
        out.push(data);
        await out.flushed();
      },
    });
    await out.flush();
    res.end();
    return undefined;
  });

  // ---- top and stats -----------------------------------------------------------
  api.route('GET', '/containers/:id/top', async ({ params, query, signal }) => {
    const { record, runtime, ref } = await manager.driverOf(param(params['id']));
    if (record.State.Status !== 'running' && record.State.Status !== 'paused') throw new IsulaError('CONTAINER_STATE_CONFLICT', `Container ${record.Id} is not running`);
    const pids = await runtime.pids(ref, { signal });
    const psArgs = (query.get('ps_args') ?? '').trim();
    return top(psArgs === '' ? ['-ef'] : psArgs.split(/\s+/), pids, signal);
  });

  api.route('GET', '/containers/:id/stats', async ({ params, query, res, signal }) => {
    const record = manager.find(param(params['id'])).record;
    // Followed by id: a container of the same name made after an rm is another one.
    const id = record.Id;
    const stream = query.get('stream') === null ? true : bool(query.get('stream'));
    const oneShot = bool(query.get('one-shot'));
    const sample = async (): Promise<StatsSample | undefined> => {
      const { record: r, runtime, ref } = await manager.driverOf(id).catch(() => ({ record: undefined, runtime: undefined, ref: undefined }));
      if (r === undefined || runtime === undefined || ref === undefined) return undefined;
      if (r.State.Status !== 'running' && r.State.Status !== 'paused') return undefined;
      const stats = await runtime.stats(ref, { signal }).catch(() => undefined);
      return stats === undefined ? undefined : { stats, systemNs: await systemCpuNs() };
    };
    let prev = oneShot ? undefined : await sample();
    if (!stream) {
      // As Docker's: a one-off answer still carries a previous sample (a second apart) for the CPU percentage.
      if (!oneShot && prev !== undefined) await sleep(1000, signal);
      return statsJson(record, await sample(), prev);
    }
    res.writeHead(200, { 'Content-Type': 'application/json', 'Api-Version': API_VERSION, Server: 'isulad' });
    res.flushHeaders();
    // Bounded by the client: the loop ends when it goes away or the daemon stops.
    while (!signal.aborted) {
      await sleep(1000, signal);
      if (signal.aborted) break;
      // As Docker's: the stream ends with the container.
      try { manager.find(id); } catch { break; }
      const cur = await sample();
      res.write(`${JSON.stringify(statsJson(record, cur, prev))}\n`);
      prev = cur;
    }
    res.end();
    return undefined;
  });

  // ---- archive (cp) and export ---------------------------------------------
  api.route('HEAD', '/containers/:id/archive', async ({ params, query, res }) => {
    const ctrPath = archivePath(query.get('path'));
    const stat = await manager.withRootfs(param(params['id']), (rootfs) => statContainerPath(rootfs, ctrPath));
    res.writeHead(200, { 'X-Docker-Container-Path-Stat': encodeStat(stat), 'Api-Version': API_VERSION, Server: 'isulad' });
    res.end();
    return undefined;
  });

  api.route('GET', '/containers/:id/archive', async ({ params, query, res, signal }) => {
    const ctrPath = archivePath(query.get('path'));
    await manager.withRootfs(param(params['id']), async (rootfs, record) => {
      const { stat, stream } = await archiveContainerPath(rootfs, ctrPath, record.IdMap);
      res.writeHead(200, { 'Content-Type': 'application/x-tar', 'X-Docker-Container-Path-Stat': encodeStat(stat), 'Api-Version': API_VERSION, Server: 'isulad' });
      await pipeline(stream, res, { signal }).catch((err: unknown) => { if (!signal.aborted) throw err; });
    });
    return undefined;
  });

  api.route('PUT', '/containers/:id/archive', async ({ params, query, req, res, signal }) => {
    const ctrPath = archivePath(query.get('path'));
    const record = manager.find(param(params['id'])).record;
    if (record.HostConfig.ReadonlyRootfs === true) throw new IsulaError('CONTAINER_PATH_INVALID', 'container rootfs is marked read-only');
    await manager.withRootfs(record.Id, (rootfs) => extractToContainer(rootfs, ctrPath, uploadBody(req), { noOverwriteDirNonDir: bool(query.get('noOverwriteDirNonDir')), signal, ...(record.IdMap !== undefined && { idMap: record.IdMap }) }));
    // Docker answers 200 with no body.
    res.writeHead(200, { 'Content-Length': 0, 'Api-Version': API_VERSION, Server: 'isulad' });
    res.end();
    return undefined;
  });

  api.route('GET', '/containers/:id/export', async ({ params, res, signal }) => {
    const record = manager.find(param(params['id'])).record;
    await manager.withRootfs(record.Id, async (rootfs) => {
      res.writeHead(200, { 'Content-Type': 'application/x-tar', 'Api-Version': API_VERSION, Server: 'isulad' });
      await pipeline(exportRootfs(rootfs), res, { signal }).catch((err: unknown) => { if (!signal.aborted) throw err; });
    });
    manager.emitEvent(record, 'export');
    return undefined;
  });
}

/**
 * Coalesces many small writes (one per log record) into one chunk per event
 * loop turn or per 64 KiB: a thousand-line log is then a few chunks of the
 * chunked body, not a thousand, and the client reads it in a few syscalls.
 */
class BatchedWriter {
  readonly #res: ServerResponse;
  #parts: Buffer[] = [];
  #bytes = 0;
  #scheduled = false;

  constructor(res: ServerResponse) {
    this.#res = res;
  }

  push(part: Buffer): void {
    this.#parts.push(part);
    this.#bytes += part.length;
    if (!this.#scheduled) {
      this.#scheduled = true;
      setImmediate(() => { void this.flush(); });
    }
  }

  /** Resolves at once below the batch size; otherwise once the batch went out (backpressure). */
  async flushed(): Promise<void> {
    if (this.#bytes >= 64 * 1024) await this.flush();
  }

  async flush(): Promise<void> {
    this.#scheduled = false;
    if (this.#parts.length === 0) return;
    const chunk = Buffer.concat(this.#parts);
    this.#parts = [];
    this.#bytes = 0;
    if (this.#res.destroyed) return;
    if (!this.#res.write(chunk)) await drainOrClose(this.#res);
  }
}

/** Waits for 'drain' or 'close', whichever comes first, and leaves no listener behind. */
function drainOrClose(res: ServerResponse): Promise<void> {
  return new Promise<void>((resolve) => {
    const done = () => { res.off('drain', done); res.off('close', done); resolve(); };
    res.once('drain', done);
    res.once('close', done);
  });
}

function size(query: URLSearchParams): { rows: number; cols: number } {
  const rows = optionalInt(query.get('h'), 'h') ?? 0;
  const cols = optionalInt(query.get('w'), 'w') ?? 0;
  if (rows < 0 || cols < 0 || rows > 65535 || cols > 65535) throw new IsulaError('API_BAD_REQUEST', `invalid terminal size ${rows}x${cols}`);
  return { rows, cols };
}

function archivePath(p: string | null): string {
  if (p === null || p === '') throw new IsulaError('API_BAD_REQUEST', 'missing path parameter');
  return p;
}

function encodeStat(stat: PathStat): string {
  return Buffer.from(JSON.stringify(stat)).toString('base64');
}

/** Docker's since/until: Unix seconds with an optional fraction (`1700000000.123456789`). */
function unixNs(v: string | null, name: string): bigint | undefined {
  if (v === null || v === '' || v === '0') return undefined;
  const m = /^(\d+)(?:\.(\d{1,9}))?$/.exec(v);
  if (m === null) throw new IsulaError('API_BAD_REQUEST', `invalid value for ${name}: ${JSON.stringify(v)}: want Unix seconds`);
  return BigInt(m[1] as string) * 1_000_000_000n + BigInt((m[2] ?? '').padEnd(9, '0'));
}

async function sleep(ms: number, signal: AbortSignal): Promise<void> {
  await new Promise<void>((resolve) => {
    const timer = setTimeout(done, ms);
    function done() { clearTimeout(timer); signal.removeEventListener('abort', done); resolve(); }
    signal.addEventListener('abort', done, { once: true });
  });
}

/**
 * Docker's top: `ps` on the host with the caller's options, keeping the
 * header and the rows whose PID column is one of the container's.
 */
async function top(psArgs: string[], pids: number[], signal: AbortSignal): Promise<{ Titles: string[]; Processes: string[][] }> {
  for (const a of psArgs) if (!/^[-\w,=:%.+]+$/.test(a)) throw new IsulaError('API_BAD_REQUEST', `invalid ps argument ${JSON.stringify(a)}`);
  // execa (~110 modules) is loaded when first used, not at daemon start.
  const { execa } = await import('execa');
  const r = await execa('ps', psArgs, { reject: false, timeout: 10_000, cancelSignal: signal, forceKillAfterDelay: 1000 });
  if (r.exitCode !== 0) throw new IsulaError('API_BAD_REQUEST', `Error running ps: ${String(r.stderr).trim() || `exit status ${r.exitCode}`}`);
  const lines = String(r.stdout).split('\n').filter((l) => l.trim() !== '');
  const titles = (lines[0] ?? '').trim().split(/\s+/);
  const pidIndex = titles.indexOf('PID');
  if (pidIndex < 0) throw new IsulaError('API_BAD_REQUEST', 'Couldn\'t find PID field in ps output');
  const wanted = new Set(pids);
  const processes: string[][] = [];
  for (const line of lines.slice(1)) {
    const fields = line.trim().split(/\s+/);
    if (!wanted.has(Number(fields[pidIndex]))) continue;
    // The last column (the command) keeps its spaces.
    const row = fields.slice(0, titles.length - 1);
    row.push(fields.slice(titles.length - 1).join(' '));
    processes.push(row);
  }
  return { Titles: titles, Processes: processes };
}

interface StatsSample { stats: ContainerStats; systemNs: number }

/** Total CPU time of the host (ns) from /proc/stat, as Docker's `system_cpu_usage`. */
async function systemCpuNs(): Promise<number> {
  const text = await fs.readFile('/proc/stat', 'utf8').catch(() => '');
  const line = text.split('\n').find((l) => l.startsWith('cpu '));
  if (line === undefined) return 0;
  const ticks = line.trim().split(/\s+/).slice(1, 8).reduce((a, v) => a + Number(v), 0);
  return ticks * (1e9 / 100); // USER_HZ is 100 on Linux.
}

/** Docker's stats JSON (the fields its CLI reads; zeros for a container that is not running). */
function statsJson(record: ContainerRecord, cur: StatsSample | undefined, prev: StatsSample | undefined): Record<string, unknown> {
  const cpus = os.cpus().length;
  const cpu = (s: StatsSample | undefined) => ({
    cpu_usage: {
      total_usage: s?.stats.cpuUsageNs ?? 0,
      percpu_usage: s?.stats.perCpuUsageNs ?? [],
      usage_in_kernelmode: 0,
      usage_in_usermode: 0,
    },
    system_cpu_usage: s?.systemNs ?? 0,
    online_cpus: s === undefined ? 0 : cpus,
    throttling_data: { periods: 0, throttled_periods: 0, throttled_time: 0 },
  });
  const st = cur?.stats;
  const hostMem = os.totalmem();
  const limit = st === undefined ? 0 : Math.min(st.memoryLimitBytes > 0 ? st.memoryLimitBytes : hostMem, hostMem);
  return {
    read: (st?.readAt ?? new Date(0)).toISOString(),
    preread: (prev?.stats.readAt ?? new Date(0)).toISOString(),
    id: record.Id,
    name: `/${record.Name}`,
    pids_stats: st === undefined ? {} : { current: st.pidsCurrent, ...(record.HostConfig.PidsLimit ? { limit: record.HostConfig.PidsLimit } : {}) },
    blkio_stats: {
      io_service_bytes_recursive: st?.blkioServiceBytes ?? null,
      io_serviced_recursive: null, io_queue_recursive: null, io_service_time_recursive: null,
      io_wait_time_recursive: null, io_merged_recursive: null, io_time_recursive: null, sectors_recursive: null,
    },
    num_procs: 0,
    storage_stats: {},
    cpu_stats: cpu(cur),
    precpu_stats: cpu(prev),
    memory_stats: st === undefined ? {} : {
      usage: st.memoryUsageBytes,
      ...(st.memoryMaxUsageBytes !== undefined && { max_usage: st.memoryMaxUsageBytes }),
      stats: st.memoryStat ?? {},
      limit,
    },
  };
}
