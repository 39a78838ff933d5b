/**
 * RuntimeDriver for any containerd runtime shim v2 (kata-containers'
 * containerd-shim-kata-v2, containerd-shim-runc-v2, gVisor's ...). The shim
 * is the per-container monitor: started with `<shim> start`, it daemonizes
 * (parent PID 1), so containers outlive the daemon; everything needed to
 * find it again is returned as `persisted` and `<bundle>/address`.
 *
 * Files:
 *   <bundle>/address, <bundle>/log   written / read by the shim (log: a FIFO we drain)
 *   <state>/shim-v2/events.sock      our events server ($TTRPC_ADDRESS of every shim)
 *   <state>/shim-v2/<id>/            stdin, stdout, stderr FIFOs, `oom` marker
 *   <state>/shim-v2/<id>/exec/<eid>/ one exec's FIFOs
 */
import { spawn } from 'node:child_process';
import fsSync from 'node:fs';
import fs from 'node:fs/promises';
import type net from 'node:net';
import path from 'node:path';
import type { Logger } from 'pino';
import { identify, IsulaError, isSameProcess, ociLinuxResources, signalNumber, signalProcess, waitProcessGone, type ProcessIdentity } from '@isula/core';
import type {
  ContainerStats, DriverCallOptions, ExitStatus, OciProcess, OciSpec, ResourceUpdate, RuntimeContainerRef,
  RuntimeDriver, RuntimeState, StdioConfig, StdioStream,
} from '@isula/core';
import { readOomKills, readStats } from './cgroups.js';
import type { EventsServer, TaskEvent } from './events-server.js';
import { FifoPool, openHolding } from './fifo.js';
import { LogWriter } from './log-writer.js';
import { ProcessIo, type IoPaths } from './process-io.js';
import { exitTime } from './protos.js';
import { TtrpcClient } from './ttrpc.js';
import { TaskClient, findExecutable, readAddressFile, shimBinaryName, shimDelete, startShim, type ShimArgs, type StateResponse } from './shim.js';

export const DEFAULT_NAMESPACE = 'isula';
/** Exit code recorded when a task's shim died and nothing else knows its code. */
export const LOST_EXIT_CODE = 255;
const DEFAULT_TIMEOUT_MS = 30_000;
/** How long an exit waits for the process's output to drain before it is reported. */
const DRAIN_MS = 2000;
const ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;
const PROCESS_TYPE_URL = 'types.containerd.io/opencontainers/runtime-spec/1/Process';
const RESOURCES_TYPE_URL = 'types.containerd.io/opencontainers/runtime-spec/1/LinuxResources';

export interface ShimDriverOptions {
  /** Runtime name, e.g. `io.containerd.kata.v2`. */
  runtime: string;
  /** Shim binary name or path; default from the runtime name (containerd-shim-<x>-v2). */
  binary?: string;
  /** The daemon's volatile state root (daemon.json `state`). */
  stateDir: string;
  /** containerd namespace the shims run tasks in (runc root /run/containerd/runc/<ns>). */
  namespace?: string;
  /** The events server every shim publishes to (shared by the plugin's drivers). */
  events: EventsServer;
  logger: Logger;
  /** Timeout of each shim call (not Wait); default 30 s. */
  timeoutMs?: number;
  /** Start shims with -debug (their log FIFO lines are logged at debug level). */
  debug?: boolean;
}

/** What `create` returns as `persisted` and `restore` reads back. */
export interface ShimPersisted {
  schemaVersion: 1;
  runtime: string;
  binary: string;
  namespace: string;
  /** The shim's task service address (also in <bundle>/address). */
  address: string;
  /** What the shim was told as `-address` and `$TTRPC_ADDRESS` (needed again by `<shim> delete`). */
  containerdAddress: string;
  ttrpcAddress: string;
  shim: ProcessIdentity | null;
  taskDir: string;
  io: IoPaths;
  terminal: boolean;
  openStdin: boolean;
  stdinOnce: boolean;
  logPath: string | null;
  logSizeMaxBytes: number | null;
  cgroupPath: string | null;
}

interface Live {
  id: string;
  bundle: string;
  p: ShimPersisted;
  client?: TaskClient | undefined;
  connecting?: Promise<TaskClient> | undefined;
  io?: ProcessIo | undefined;
  log?: LogWriter | undefined;
  drain?: net.Socket | undefined;
  exit?: ExitStatus | undefined;
  exitPromise: Promise<ExitStatus>;
  settle: (s: ExitStatus) => void;
  oom: boolean;
  watching: boolean;
  settling: boolean;
}

export class ShimV2Driver implements RuntimeDriver {
  readonly name: string;
  readonly #opts: ShimDriverOptions;
  readonly #log: Logger;
  readonly #timeoutMs: number;
  readonly #namespace: string;
  readonly #tasks = new Map<string, Live>();
  readonly #unsubscribe: () => void;
  readonly #fifos: FifoPool;
  #binary: string | undefined;
  #closed = false;

  constructor(opts: ShimDriverOptions) {
    this.#opts = opts;
    this.name = opts.runtime;
    this.#log = opts.logger.child({ runtime: opts.runtime });
    this.#timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.#namespace = opts.namespace ?? DEFAULT_NAMESPACE;
    this.#unsubscribe = opts.events.on((e) => this.#onEvent(e));
    this.#fifos = new FifoPool(path.join(opts.stateDir, 'shim-v2', `.fifos-${opts.runtime}`));
  }

  get #dir(): string {
    return path.join(this.#opts.stateDir, 'shim-v2');
  }

  /** The shim binary is present and executable (cached once found). */
  async probe(_opts: DriverCallOptions): Promise<void> {
    await this.#shimBinary();
  }

  async create(ref: RuntimeContainerRef, opts: DriverCallOptions & { spec: OciSpec; stdio: StdioConfig }): Promise<{ persisted: Record<string, unknown>; pid: number }> {
    const id = checkId(ref.id);
    const binary = await this.#shimBinary();
    await this.#opts.events.listen();
    const taskDir = path.join(this.#dir, id);
    await fs.rm(taskDir, { recursive: true, force: true });
    await fs.mkdir(taskDir, { recursive: true, mode: 0o700 });
    const { stdio } = opts;
    const started = Date.now();
    const p: ShimPersisted = {
      schemaVersion: 1,
      runtime: this.name,
      binary,
      namespace: this.#namespace,
      address: '',
      containerdAddress: this.#opts.events.socketPath,
      ttrpcAddress: this.#opts.events.socketPath,
      shim: null,
      taskDir,
      io: { stdout: '' },
      terminal: stdio.terminal,
      openStdin: stdio.openStdin,
      stdinOnce: stdio.stdinOnce,
      logPath: stdio.noLog === true ? null : stdio.logPath,
      logSizeMaxBytes: stdio.logSizeMaxBytes ?? null,
      cgroupPath: cgroupsPathOf(opts.spec),
    };
    const live = this.#newLive(id, ref.bundle, p);
    try {
      // The shim logs into <bundle>/log: a FIFO that must have a reader before it starts.
      if (p.logPath !== null) {
        await fs.mkdir(path.dirname(p.logPath), { recursive: true, mode: 0o700 });
        live.log = new LogWriter(p.logPath, p.logSizeMaxBytes ?? undefined);
      }
      live.io = await ProcessIo.prepare(taskDir, { terminal: stdio.terminal, openStdin: stdio.openStdin, stdinOnce: stdio.stdinOnce, log: live.log, logger: this.#log, closeIo: () => this.#closeIo(live, '') },
        (fifos) => this.#fifos.take([path.join(ref.bundle, 'log'), ...fifos]));
      live.drain = this.#drainLog(id, path.join(ref.bundle, 'log'));
      p.io = live.io.paths;
      this.#log.debug({ container: id, binary, bundle: ref.bundle }, 'starting shim');
      p.address = await startShim(this.#shimArgs(p, id, ref.bundle, opts.signal));
      const client = await this.#client(live);
      const conn = await client.call<{ shim_pid: number; task_pid: number; version: string }>('Connect', 'ConnectRequest', { id }, 'ConnectResponse', { signal: opts.signal });
      p.shim = (await identify(conn.shim_pid)) ?? null;
      const res = await client.call<{ pid: number }>('Create', 'CreateTaskRequest', {
        id, bundle: ref.bundle, rootfs: [], terminal: stdio.terminal,
        stdin: p.io.stdin ?? '', stdout: p.io.stdout, stderr: p.io.stderr ?? '',
      }, 'CreateTaskResponse', { signal: opts.signal });
      live.io.releaseHolds();
      this.#tasks.set(id, live);
      this.#watchExit(live);
      this.#log.info({ container: id, pid: res.pid, shimPid: conn.shim_pid, durationMs: Date.now() - started }, 'container created');
      return { persisted: p as unknown as Record<string, unknown>, pid: res.pid };
    } catch (err) {
      await this.#teardown(live, { forceKill: true }).catch((e: unknown) => this.#log.warn({ err: e, container: id }, 'cleanup after a failed create failed'));
      throw classifyCreateError(this.name, err, processCommand(opts.spec));
    }
  }

  async start(ref: RuntimeContainerRef, opts: DriverCallOptions): Promise<void> {
    const live = this.#live(ref);
    const client = await this.#client(live);
    try {
      await client.call('Start', 'StartRequest', { id: live.id }, 'StartResponse', { signal: opts.signal });
    } catch (err) {
      throw classifyCreateError(this.name, err);
    }
  }

  async kill(ref: RuntimeContainerRef, opts: DriverCallOptions & { signal_: string | number; all?: boolean }): Promise<void> {
    const live = this.#live(ref);
    if (live.exit) return;
    const client = await this.#client(live);
    try {
      await client.call('Kill', 'KillRequest', { id: live.id, signal: signalNumber(opts.signal_), all: opts.all === true }, 'google.protobuf.Empty', { signal: opts.signal });
    } catch (err) {
      // The process already finished: not an error (the contract), as containerd's NotFound here.
      if (err instanceof IsulaError && err.kind === 'notFound') return;
      throw err;
    }
  }

  async state(ref: RuntimeContainerRef, opts: DriverCallOptions): Promise<RuntimeState> {
    const live = this.#live(ref);
    if (live.exit) return { status: 'stopped', pid: 0 };
    const st = await this.#state(live, opts.signal);
    return toRuntimeState(st);
  }

  wait(ref: RuntimeContainerRef, opts: DriverCallOptions): Promise<ExitStatus> {
    const live = this.#live(ref);
    if (live.exit) return Promise.resolve(live.exit);
    if (opts.signal.aborted) return Promise.reject(new IsulaError('CANCELED', `wait for container ${live.id} canceled`));
    return new Promise((resolve, reject) => {
      const onAbort = () => reject(new IsulaError('CANCELED', `wait for container ${live.id} canceled`));
      opts.signal.addEventListener('abort', onAbort, { once: true });
      live.exitPromise.then((s) => { opts.signal.removeEventListener('abort', onAbort); resolve(s); }, reject);
    });
  }

  async exec(ref: RuntimeContainerRef, opts: DriverCallOptions & { execId: string; process: OciProcess; stdio: StdioConfig; onStarted?: (pid: number, stream: StdioStream | undefined) => void }): Promise<ExitStatus> {
    const live = this.#live(ref);
    const execId = checkId(opts.execId);
    const client = await this.#client(live);
    const dir = path.join(live.p.taskDir, 'exec', execId);
    const { stdio } = opts;
    const log = stdio.noLog === true ? undefined : new LogWriter(stdio.logPath, stdio.logSizeMaxBytes);
    if (log) await fs.mkdir(path.dirname(stdio.logPath), { recursive: true, mode: 0o700 });
    const io = await ProcessIo.prepare(dir, { terminal: stdio.terminal, openStdin: stdio.openStdin, stdinOnce: true, log, logger: this.#log, closeIo: () => this.#closeIo(live, execId) },
      (fifos) => this.#fifos.take(fifos));
    // Attached before the process runs: its first bytes may come before Start's reply.
    const stream = io.attach();
    let added = false;
    try {
      await client.call('Exec', 'ExecProcessRequest', {
        id: live.id, exec_id: execId, terminal: stdio.terminal,
        stdin: io.paths.stdin ?? '', stdout: io.paths.stdout, stderr: io.paths.stderr ?? '',
        spec: { type_url: PROCESS_TYPE_URL, value: Buffer.from(JSON.stringify(opts.process)) },
      }, 'google.protobuf.Empty', { signal: opts.signal });
      added = true;
      let pid: number;
      try {
        pid = (await client.call<{ pid: number }>('Start', 'StartRequest', { id: live.id, exec_id: execId }, 'StartResponse', { signal: opts.signal })).pid;
      } catch (err) {
        throw classifyCreateError(this.name, err, opts.process.args?.[0]);
      }
      io.releaseHolds();
      opts.onStarted?.(pid, stream);
      // No deadline: an exec runs as long as it likes. The shim's exit event is the backup.
      const res = await client.call<{ exit_status: number; exited_at: unknown }>('Wait', 'WaitRequest', { id: live.id, exec_id: execId }, 'WaitResponse', { signal: opts.signal, timeoutMs: null });
      await io.ended(DRAIN_MS);
      await log?.flush();
      return { exitCode: res.exit_status, exitedAt: exitTime(res.exited_at) };
    } finally {
      io.close();
      if (added && !client.client.isClosed) {
        await client.call('Delete', 'DeleteRequest', { id: live.id, exec_id: execId }, 'DeleteResponse', { timeoutMs: this.#timeoutMs })
          .catch((err: unknown) => this.#log.debug({ err, container: live.id, execId }, 'deleting an exec failed'));
      }
      await fs.rm(dir, { recursive: true, force: true });
    }
  }

  async attach(ref: RuntimeContainerRef, _opts: DriverCallOptions): Promise<StdioStream> {
    const live = this.#live(ref);
    if (!live.io) throw new IsulaError('CONTAINER_STATE_CONFLICT', `container ${live.id} has no stdio to attach to`);
    return live.io.attach();
  }

  async resize(ref: RuntimeContainerRef, opts: DriverCallOptions & { execId?: string; rows: number; cols: number }): Promise<void> {
    const live = this.#live(ref);
    const client = await this.#client(live);
    await client.call('ResizePty', 'ResizePtyRequest', { id: live.id, exec_id: opts.execId ?? '', width: opts.cols, height: opts.rows }, 'google.protobuf.Empty', { signal: opts.signal });
  }

  async pause(ref: RuntimeContainerRef, opts: DriverCallOptions): Promise<void> {
    const live = this.#live(ref);
    await (await this.#client(live)).call('Pause', 'PauseRequest', { id: live.id }, 'google.protobuf.Empty', { signal: opts.signal });
  }

  async resume(ref: RuntimeContainerRef, opts: DriverCallOptions): Promise<void> {
    const live = this.#live(ref);
    await (await this.#client(live)).call('Resume', 'ResumeRequest', { id: live.id }, 'google.protobuf.Empty', { signal: opts.signal });
  }

  async update(ref: RuntimeContainerRef, opts: DriverCallOptions & { resources: ResourceUpdate }): Promise<void> {
    const live = this.#live(ref);
    // OCI LinuxResources as JSON in an Any: what containerd's typeurl does for the runtime-spec types.
    const res = ociLinuxResources(opts.resources);
    if (Object.keys(res).length === 0) return;
    await (await this.#client(live)).call('Update', 'UpdateTaskRequest', {
      id: live.id, resources: { type_url: RESOURCES_TYPE_URL, value: Buffer.from(JSON.stringify(res)) },
    }, 'google.protobuf.Empty', { signal: opts.signal });
  }

  async stats(ref: RuntimeContainerRef, _opts: DriverCallOptions): Promise<ContainerStats> {
    const live = this.#live(ref);
    const stats = live.p.cgroupPath === null ? undefined : await readStats(live.p.cgroupPath);
    if (!stats) throw new IsulaError('RUNTIME_FAILED', `container ${live.id} has no cgroup to read stats from`);
    return stats;
  }

  async pids(ref: RuntimeContainerRef, opts: DriverCallOptions): Promise<number[]> {
    const live = this.#live(ref);
    const res = await (await this.#client(live)).call<{ processes: { pid: number }[] }>('Pids', 'PidsRequest', { id: live.id }, 'PidsResponse', { signal: opts.signal });
    return res.processes.map((p) => p.pid).filter((pid) => pid > 0);
  }

  /** Plugin API 1.6: the daemon writes the log itself, so a reopen is ours alone (no shim call). */
  async reopenLog(ref: RuntimeContainerRef, _opts: DriverCallOptions): Promise<void> {
    await this.#live(ref).log?.reopen();
  }

  async delete(ref: RuntimeContainerRef, opts: DriverCallOptions & { force?: boolean }): Promise<void> {
    const id = checkId(ref.id);
    const parsed = parsePersisted(ref.persisted);
    const live = this.#tasks.get(id) ?? (parsed ? this.#newLive(id, ref.bundle, parsed) : undefined);
    if (!live) return; // Never created by us: nothing to delete.
    if (!opts.force && !live.exit) {
      const st = await this.#state(live, opts.signal).catch(() => undefined);
      if (st && (st.status === 'RUNNING' || st.status === 'PAUSED' || st.status === 'PAUSING')) {
        throw new IsulaError('CONTAINER_STATE_CONFLICT', `container ${id} is ${st.status.toLowerCase()}: stop it first or delete with force`);
      }
    }
    await this.#teardown(live, { forceKill: opts.force === true });
    this.#log.info({ container: id }, 'container deleted');
  }

  async restore(ref: RuntimeContainerRef, _opts: DriverCallOptions): Promise<RuntimeState> {
    const id = checkId(ref.id);
    const p = parsePersisted(ref.persisted);
    if (!p) throw new IsulaError('RUNTIME_FAILED', `container ${id}: no shim v2 data to restore from`);
    this.#tasks.get(id)?.client?.close();
    const live = this.#newLive(id, ref.bundle, p);
    this.#tasks.set(id, live);
    live.oom = await fs.access(path.join(p.taskDir, 'oom')).then(() => true, () => false);
    // The address file is the shim's own record; fall back to what create saw.
    const fromFile = await readAddressFile(ref.bundle).catch((err: unknown) => {
      this.#log.warn({ err, container: id, address: p.address }, 'ignoring the shim address file: using the address recorded at create');
      return undefined;
    });
    if (fromFile !== undefined) p.address = fromFile;
    await this.#opts.events.listen();
    await fs.access(path.join(ref.bundle, 'log')).then(() => { live.drain = this.#drainLog(id, path.join(ref.bundle, 'log')); }, () => {});
    let st: StateResponse;
    try {
      await this.#client(live);
      st = await this.#state(live);
    } catch (err) {
      // The shim is gone (or deaf): `<shim> delete` cleans up the task and tells its exit.
      this.#log.warn({ err, container: id }, 'shim unreachable on restore: cleaning up with `shim delete`');
      await this.#releaseHolder(p);
      const status = await this.#fallbackDelete(live);
      this.#settleNow(live, status ?? { exitCode: LOST_EXIT_CODE, exitedAt: new Date() });
      return { status: 'stopped', pid: 0 };
    }
    if (p.logPath !== null) live.log = new LogWriter(p.logPath, p.logSizeMaxBytes ?? undefined);
    live.io = ProcessIo.reopen(p.io, { terminal: p.terminal, openStdin: p.openStdin, stdinOnce: p.stdinOnce, log: live.log, logger: this.#log, closeIo: () => this.#closeIo(live, '') });
    await this.#releaseHolder(p);
    this.#watchExit(live);
    this.#log.info({ container: id, status: st.status, pid: st.pid }, 'container restored');
    if (st.status === 'STOPPED') {
      // Wait answers at once; report stopped now so core applies the exit.
      return { status: 'stopped', pid: 0 };
    }
    return toRuntimeState(st);
  }

  /** Closes connections and readers. Shims and containers keep running. */
  close(): void {
    this.#closed = true;
    this.#unsubscribe();
    for (const live of this.#tasks.values()) {
      if (live.io !== undefined && !live.io.isEnded && live.exit === undefined) this.#holdOutput(live);
      live.client?.close();
      live.io?.close();
      live.drain?.destroy();
    }
    this.#tasks.clear();
  }

  /**
   * Daemon shutdown: the shim closes its FIFO ends when the process exits, and a FIFO nobody holds
   * drops what it buffered. So output written while the daemon is down by a container that also
   * exits meanwhile would be lost. A `sleep` holds a reader of each output FIFO (never reading)
   * until restore has opened its own, then is killed (at most an hour: a daemon that never comes
   * back). Not after `kill -9` of the daemon: nothing runs then.
   */
  #holdOutput(live: Live): void {
    const fifos = [live.p.io.stdout, live.p.io.stderr].filter((f): f is string => f !== undefined);
    const fds: number[] = [];
    try {
      for (const f of fifos) fds.push(fsSync.openSync(f, fsSync.constants.O_RDONLY | fsSync.constants.O_NONBLOCK));
      const child = spawn('sleep', ['3600'], { stdio: ['ignore', 'ignore', 'ignore', ...fds], detached: true, env: { PATH: '/usr/bin:/bin' } });
      child.on('error', () => {});
      child.unref();
      if (child.pid !== undefined) fsSync.writeFileSync(path.join(live.p.taskDir, 'holder'), `${child.pid}\n`, { mode: 0o600 });
    } catch (err) {
      this.#log.warn({ err, container: live.id }, 'cannot hold the output FIFOs over the shutdown');
    } finally {
      for (const fd of fds) fsSync.closeSync(fd);
    }
  }

  /** Restore opened its readers: the shutdown's holder of the FIFOs goes (only if it holds our FIFO). */
  async #releaseHolder(p: ShimPersisted): Promise<void> {
    const file = path.join(p.taskDir, 'holder');
    const pid = Number((await fs.readFile(file, 'utf8').catch(() => '')).trim());
    if (pid > 0 && (await fs.readlink(`/proc/${pid}/fd/3`).catch(() => '')) === p.io.stdout) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch { /* gone */ }
    }
    await fs.rm(file, { force: true });
  }

  // ---------------------------------------------------------------------------

  #newLive(id: string, bundle: string, p: ShimPersisted): Live {
    let settle!: (s: ExitStatus) => void;
    const exitPromise = new Promise<ExitStatus>((resolve) => { settle = resolve; });
    // Nobody may be waiting: never an unhandled rejection (it only ever resolves).
    const live: Live = { id, bundle, p, exitPromise, settle, oom: false, watching: false, settling: false };
    return live;
  }

  #live(ref: RuntimeContainerRef): Live {
    const id = checkId(ref.id);
    let live = this.#tasks.get(id);
    if (!live) {
      const p = parsePersisted(ref.persisted);
      if (!p) throw new IsulaError('CONTAINER_NOT_FOUND', `container ${id} is not known to runtime ${this.name}`);
      live = this.#newLive(id, ref.bundle, p);
      this.#tasks.set(id, live);
      this.#watchExit(live);
    }
    return live;
  }

  #shimArgs(p: ShimPersisted, id: string, bundle: string, signal?: AbortSignal): ShimArgs {
    return {
      binary: p.binary, namespace: p.namespace, address: p.containerdAddress, ttrpcAddress: p.ttrpcAddress, id, bundle,
      timeoutMs: this.#timeoutMs, ...(signal && { signal }), ...(this.#opts.debug === true && { debug: true }),
    };
  }

  async #shimBinary(): Promise<string> {
    if (this.#binary) return this.#binary;
    const wanted = this.#opts.binary ?? shimBinaryName(this.name);
    if (wanted === undefined) throw new IsulaError('RUNTIME_UNAVAILABLE', `runtime ${this.name}: not a shim v2 runtime name and no binary configured`, { details: { runtime: this.name } });
    const found = await findExecutable(wanted);
    if (found === undefined) {
      throw new IsulaError('RUNTIME_UNAVAILABLE', `runtime ${this.name}: shim binary ${wanted} not found or not executable`, { details: { runtime: this.name, binary: wanted } });
    }
    this.#binary = found;
    return found;
  }

  /** The connected task client, (re)connecting when needed. */
  async #client(live: Live): Promise<TaskClient> {
    if (live.client && !live.client.client.isClosed) return live.client;
    live.connecting ??= (async () => {
      try {
        if (live.p.address === '') throw new IsulaError('RUNTIME_UNAVAILABLE', `container ${live.id}: no shim address`);
        const c = await TaskClient.connect(live.p.address, live.p.namespace, this.#timeoutMs);
        live.client = c;
        return c;
      } finally {
        live.connecting = undefined;
      }
    })();
    return live.connecting;
  }

  async #state(live: Live, signal?: AbortSignal): Promise<StateResponse> {
    const client = await this.#client(live);
    return client.call<StateResponse>('State', 'StateRequest', { id: live.id }, 'StateResponse', { ...(signal && { signal }) });
  }

  /** Keeps one Wait call open per task; its answer (or the exit event) settles the exit. */
  #watchExit(live: Live): void {
    if (live.watching || live.exit) return;
    live.watching = true;
    void (async () => {
      for (let attempt = 0; attempt < 5 && !live.exit && !this.#closed; attempt++) {
        try {
          const client = await this.#client(live);
          const res = await client.call<{ exit_status: number; exited_at: unknown }>('Wait', 'WaitRequest', { id: live.id }, 'WaitResponse', { timeoutMs: null });
          await this.#settleExit(live, { exitCode: res.exit_status, exitedAt: exitTime(res.exited_at) });
          return;
        } catch (err) {
          if (live.exit || this.#closed || this.#tasks.get(live.id) !== live) return;
          this.#log.debug({ err, container: live.id, attempt }, 'waiting on the shim failed');
          if (live.p.shim && !(await isSameProcess(live.p.shim))) break;
          await new Promise((r) => setTimeout(r, 200 * (attempt + 1)));
        }
      }
      if (live.exit || this.#closed || this.#tasks.get(live.id) !== live) return;
      // The shim died under us: its task is gone with it (kata) or orphaned (runc): clean up, record the loss.
      this.#log.warn({ container: live.id }, 'shim gone: cleaning up with `shim delete`');
      const status = await this.#fallbackDelete(live);
      await this.#settleExit(live, status ?? { exitCode: LOST_EXIT_CODE, exitedAt: new Date() });
    })().finally(() => { live.watching = false; });
  }

  /** Reports the exit once the output has drained (bounded), with OOM from the event or the cgroup. */
  async #settleExit(live: Live, status: ExitStatus): Promise<void> {
    if (live.exit || live.settling) return;
    live.settling = true;
    await live.io?.ended(DRAIN_MS);
    await live.log?.flush();
    const oom = live.oom || (live.p.cgroupPath !== null && (await readOomKills(live.p.cgroupPath).catch(() => 0)) > 0);
    this.#settleNow(live, oom ? { ...status, oomKilled: true } : status);
  }

  #settleNow(live: Live, status: ExitStatus): void {
    if (live.exit) return;
    live.exit = status;
    live.settle(status);
    this.#log.debug({ container: live.id, exitCode: status.exitCode, oomKilled: status.oomKilled === true }, 'container exited');
  }

  #onEvent(e: TaskEvent): void {
    if (e.namespace !== '' && e.namespace !== this.#namespace) return;
    const live = this.#tasks.get(e.containerId);
    if (!live) return;
    if (e.topic === '/tasks/oom') {
      live.oom = true;
      void fs.writeFile(path.join(live.p.taskDir, 'oom'), '').catch(() => {});
    } else if (e.topic === '/tasks/exit' && 'exitStatus' in e && (e.execId === '' || e.execId === live.id)) {
      void this.#settleExit(live, { exitCode: e.exitStatus, exitedAt: e.exitedAt });
    }
  }

  async #closeIo(live: Live, execId: string): Promise<void> {
    const client = await this.#client(live);
    await client.call('CloseIO', 'CloseIORequest', { id: live.id, exec_id: execId, stdin: true }, 'google.protobuf.Empty');
  }

  /** Until the task is stopped (exit reported, or State says so), at most `timeoutMs`. */
  async #waitStopped(live: Live, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!live.exit && Date.now() < deadline) {
      const st = await this.#state(live, AbortSignal.timeout(Math.max(1, deadline - Date.now()))).catch(() => undefined);
      if (!st || st.status === 'STOPPED') return;
      await Promise.race([live.exitPromise, new Promise((r) => setTimeout(r, 50))]);
    }
  }

  /** Reads the shim's log FIFO (it blocks without a reader) into our log at debug level. */
  #drainLog(id: string, fifo: string): net.Socket | undefined {
    let s: net.Socket;
    try {
      s = openHolding(fifo);
    } catch (err) {
      this.#log.warn({ err, container: id }, 'cannot open the shim log FIFO');
      return undefined;
    }
    let rest = '';
    s.on('data', (c: Buffer) => {
      const lines = (rest + c.toString('utf8')).split('\n');
      rest = (lines.pop() ?? '').slice(-4096);
      for (const line of lines) if (line.trim() !== '') this.#log.debug({ container: id, shim: line }, 'shim log');
    });
    s.on('error', () => s.destroy());
    return s;
  }

  async #fallbackDelete(live: Live): Promise<{ exitCode: number; exitedAt: Date } | undefined> {
    if (live.p.binary === '') return undefined;
    try {
      const r = await shimDelete(this.#shimArgs(live.p, live.id, live.bundle, AbortSignal.timeout(this.#timeoutMs)), path.join(live.p.taskDir, 'delete'));
      return r ? { exitCode: r.exitStatus, exitedAt: r.exitedAt } : undefined;
    } catch (err) {
      this.#log.warn({ err, container: live.id }, '`shim delete` failed');
      return undefined;
    }
  }

  /**
   * Kill (when forced) → Wait → Delete → Shutdown; `<shim> delete` when the
   * shim cannot be reached; then the shim process, FIFOs and files go.
   * Idempotent.
   */
  async #teardown(live: Live, o: { forceKill: boolean }): Promise<void> {
    const signal = AbortSignal.timeout(this.#timeoutMs);
    let client: TaskClient | undefined;
    if (live.p.address !== '') client = await this.#client(live).catch(() => undefined);
    let reachable = client !== undefined;
    if (client) {
      try {
        if (o.forceKill && !live.exit) {
          const killed = await client.call('Kill', 'KillRequest', { id: live.id, signal: 9, all: true }, 'google.protobuf.Empty', { signal }).then(() => true, (err: unknown) => {
            if (err instanceof IsulaError && err.kind === 'notFound') return false;
            throw err;
          });
          if (killed) await this.#waitStopped(live, 5000);
        }
        if (!live.exit) {
          // Not reported yet (a task never started, or its exit still draining): what Delete says is final.
          const st = await this.#state(live, signal).catch(() => undefined);
          if (st?.status === 'STOPPED') await this.#settleExit(live, { exitCode: st.exit_status, exitedAt: exitTime(st.exited_at) });
        }
        const del = await client.call<{ exit_status: number; exited_at: unknown }>('Delete', 'DeleteRequest', { id: live.id }, 'DeleteResponse', { signal })
          .catch((err: unknown) => {
            if (err instanceof IsulaError && err.kind === 'notFound') return undefined;
            throw err;
          });
        if (del && !live.exit) this.#settleNow(live, { exitCode: del.exit_status, exitedAt: exitTime(del.exited_at) });
        // The shim exits on Shutdown and closes the connection: an error here is expected.
        await client.call('Shutdown', 'ShutdownRequest', { id: live.id, now: true }, 'google.protobuf.Empty', { timeoutMs: 5000 }).catch(() => {});
      } catch (err) {
        this.#log.warn({ err, container: live.id }, 'shim teardown failed: falling back to `shim delete`');
        reachable = false;
      }
    }
    client?.close();
    if (!reachable && live.p.binary !== '') {
      const status = await this.#fallbackDelete(live);
      if (!live.exit) this.#settleNow(live, status ?? { exitCode: LOST_EXIT_CODE, exitedAt: new Date() });
    }
    if (live.p.shim && !(await waitProcessGone(live.p.shim, 3000))) {
      this.#log.warn({ container: live.id, shimPid: live.p.shim.pid }, 'shim still running after shutdown: killing it');
      await signalProcess(live.p.shim, 'SIGKILL');
      await waitProcessGone(live.p.shim, 1000);
    }
    if (!live.exit) this.#settleNow(live, { exitCode: LOST_EXIT_CODE, exitedAt: new Date() });
    // A shim that was killed leaves its socket behind (a clean Shutdown removes it).
    if (live.p.address !== '') await removeStaleSocket(live.p.address);
    live.io?.close();
    live.drain?.destroy();
    await live.log?.flush();
    if (this.#tasks.get(live.id) === live) this.#tasks.delete(live.id);
    await Promise.all([
      fs.rm(live.p.taskDir, { recursive: true, force: true }),
      ...['address', 'log', 'log.json', 'shim.pid', 'init.pid', 'work', 'shim-binary-path', 'options.json', 'runtime'].map((f) => fs.rm(path.join(live.bundle, f), { force: true })),
    ]);
  }
}

/** Removes a unix socket file nobody listens on any more. */
async function removeStaleSocket(address: string): Promise<void> {
  const socketPath = address.replace(/^unix:\/\//, '');
  if (!socketPath.startsWith('/')) return;
  const st = await fs.lstat(socketPath).catch(() => undefined);
  if (!st?.isSocket()) return;
  const client = await TtrpcClient.connect(socketPath, { connectTimeoutMs: 500 }).catch(() => undefined);
  if (client) {
    client.close();
    return;
  }
  await fs.rm(socketPath, { force: true });
}

function checkId(id: string): string {
  if (!ID.test(id)) throw new IsulaError('CONTAINER_CONFIG_INVALID', `invalid container or exec id ${JSON.stringify(id)}`);
  return id;
}

function toRuntimeState(st: StateResponse): RuntimeState {
  switch (st.status) {
    case 'CREATED': return { status: 'created', pid: st.pid };
    case 'RUNNING': return { status: 'running', pid: st.pid };
    case 'PAUSED':
    case 'PAUSING': return { status: 'paused', pid: st.pid };
    default: return { status: 'stopped', pid: 0 };
  }
}

function cgroupsPathOf(spec: OciSpec): string | null {
  const p = (spec['linux'] as { cgroupsPath?: unknown } | undefined)?.cgroupsPath;
  return typeof p === 'string' && p.startsWith('/') ? p : null;
}

function processCommand(spec: OciSpec): string | undefined {
  const args = (spec['process'] as { args?: unknown } | undefined)?.args;
  return Array.isArray(args) && typeof args[0] === 'string' ? args[0] : undefined;
}

/**
 * The runtime's create/exec failure as the shim relays it → docker's 127/126
 * codes where it names the command, else RUNTIME_FAILED with the shim's text.
 */
export function classifyCreateError(runtime: string, err: unknown, command?: string): IsulaError {
  const base = err instanceof IsulaError ? err : new IsulaError('RUNTIME_FAILED', err instanceof Error ? err.message : String(err), { cause: err });
  // runc's reasons come as UNKNOWN (→ RUNTIME_FAILED) or, from some shims, INVALID_ARGUMENT / NOT_FOUND.
  if (base.kind !== 'internal' && base.code !== 'CONTAINER_CONFIG_INVALID' && base.code !== 'CONTAINER_NOT_FOUND') return base;
  const reason = base.message.replace(/^containerd\.task\.v2\.Task\/\w+: /, '');
  const named = command === undefined || command === '' || reason.includes(command) ? reason : `${reason}: ${JSON.stringify(command)}`;
  const details = { runtime, reason };
  if (/executable file not found|no such file or directory/i.test(reason) && /exec|stat/i.test(reason)) {
    return new IsulaError('CONTAINER_CMD_NOT_FOUND', `${runtime}: ${named}`, { cause: base, details });
  }
  if (/permission denied/i.test(reason) && /exec/i.test(reason)) {
    return new IsulaError('CONTAINER_CMD_NOT_EXECUTABLE', `${runtime}: ${named}`, { cause: base, details });
  }
  // Anything else keeps its kind (a NOT_FOUND task stays notFound, a lost shim unavailable).
  return base;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

export function parsePersisted(v: unknown): ShimPersisted | undefined {
  if (!isObject(v) || v['schemaVersion'] !== 1) return undefined;
  const s = (k: string) => (typeof v[k] === 'string' ? v[k] : undefined);
  const io = v['io'];
  if (!isObject(io) || typeof io['stdout'] !== 'string') return undefined;
  const [runtime, binary, namespace, address, containerdAddress, ttrpcAddress, taskDir] = ['runtime', 'binary', 'namespace', 'address', 'containerdAddress', 'ttrpcAddress', 'taskDir'].map(s);
  if (runtime === undefined || binary === undefined || namespace === undefined || address === undefined || containerdAddress === undefined || ttrpcAddress === undefined || taskDir === undefined) return undefined;
  const shim = v['shim'];
  return {
    schemaVersion: 1, runtime, binary, namespace, address, containerdAddress, ttrpcAddress, taskDir,
    shim: isObject(shim) && typeof shim['pid'] === 'number' && typeof shim['startTime'] === 'number' ? { pid: shim['pid'], startTime: shim['startTime'] } : null,
    io: {
      stdout: io['stdout'],
      ...(typeof io['stdin'] === 'string' ? { stdin: io['stdin'] } : {}),
      ...(typeof io['stderr'] === 'string' ? { stderr: io['stderr'] } : {}),
    },
    terminal: v['terminal'] === true,
    openStdin: v['openStdin'] === true,
    stdinOnce: v['stdinOnce'] === true,
    logPath: s('logPath') ?? null,
    logSizeMaxBytes: typeof v['logSizeMaxBytes'] === 'number' ? v['logSizeMaxBytes'] : null,
    cgroupPath: s('cgroupPath') ?? null,
  };
}
