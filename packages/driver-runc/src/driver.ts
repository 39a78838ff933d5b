/**
 * RuntimeDriver for an OCI runtime CLI (runc, crun, ...) with one conmon per
 * container. conmon double-forks away from the daemon, so containers outlive
 * it; everything needed to find a container again is returned as `persisted`.
 *
 * Volatile files, under the daemon's state root (default /run/isulad):
 *   runtime/<name>/          the runtime's --root
 *   exits/<id>               conmon's exit file (decimal status)
 *   socks/<id> -> bundle     conmon's attach-socket symlink (removed on delete)
 *   conmon/<id>/             conmon's persist dir: conmon.pid, pidfile, conmon.log, `oom`, `exit`
 *   conmon/<id>/exec/<eid>/  one exec: process.json, attach, ctl, log of conmon, exits/
 * conmon also makes `attach` (socket), `ctl` and `winsz` (fifos) in the bundle.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { identify, IsulaError, isSameProcess, ociLinuxResources, signalNumber, signalProcess, waitProcessGone, writeFileAtomic, type ProcessIdentity } from '@isula/core';
import type {
  ContainerStats, DriverCallOptions, ExitStatus, OciProcess, OciSpec, ResourceUpdate, RuntimeContainerRef,
  RuntimeDriver, RuntimeState, StdioConfig, StdioStream,
} from '@isula/core';
import { connectAttach, socketsOf, waitNewSocket, type AttachStream } from './attach.js';
import { bfqWeightFile, cgroupPathOf, readOomKills, readStats } from './cgroups.js';
import { conmonLogLevel, spawnConmon, type SyncMessage } from './conmon.js';
import { ExitWatcher } from './exit-watcher.js';
import { findExecutable } from './proc.js';
import { startThroughFifo } from './exec-fifo.js';
import { LOST_EXIT_CODE, exitStatusOf, readExitFile, readPidFile } from './status-files.js';
import { deleteStoppedNatively } from './native-delete.js';
import { DEFAULT_TIMEOUT_MS, RuntimeCli, cleanRuntimeMessage, isNotExist, type RuntimeSpec } from './runtime-cli.js';

export const DEFAULT_CONMON = '/usr/bin/conmon';
export { LOST_EXIT_CODE };
const SEARCH_DIRS = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];
const ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;
/** How long an attach before the start waits for conmon to accept it. */
const ACCEPT_WAIT_MS = 2000;

export interface RuncDriverOptions {
  /** Runtime name (`runc`, `crun`, a daemon.json `runtimes` key); `path` defaults to the name looked up in PATH. */
  runtime: { name: string; path?: string; args?: string[] };
  /** The daemon's volatile state root (daemon.json `state`). */
  stateDir: string;
  /** conmon binary; default /usr/bin/conmon. */
  conmonPath?: string;
  logger: Logger;
  /** The daemon's log level, mapped onto conmon's `--log-level`. */
  logLevel?: string;
  /** Timeout of each runtime call and of conmon's sync message; default 30 s. */
  timeoutMs?: number;
  /** Share one exit-dir watcher between the drivers of one daemon (they share the exit dir). */
  exitWatcher?: ExitWatcher;
}

/** What `create` returns as `persisted` and `restore` reads back. */
export interface RuncPersisted {
  schemaVersion: 1;
  runtime: RuntimeSpec;
  conmonPath: string;
  /** conmon's monitor process (after its double fork), with its start time. */
  conmon: ProcessIdentity | null;
  /** The container's init process, with its start time. */
  init: ProcessIdentity;
  exitFile: string;
  persistDir: string;
  attachSocket: string;
  socketLink: string;
  /** The container's cgroup, relative to each hierarchy root; null when unknown. */
  cgroupPath: string | null;
  terminal: boolean;
  /** conmon's k8s-file log (absent with log-driver none, and in records made before reopenLog). */
  logPath?: string;
}

interface Layout {
  runtimeRoot: string;
  exitDir: string;
  socketDir: string;
  conmonDir: string;
}

export class RuncDriver implements RuntimeDriver {
  readonly name: string;
  readonly #opts: RuncDriverOptions;
  readonly #log: Logger;
  readonly #layout: Layout;
  readonly #timeoutMs: number;
  readonly #watcher: ExitWatcher;
  readonly #ownsWatcher: boolean;
  readonly #streams = new Map<string, Set<AttachStream>>();
  /** Containers created and not started yet by this daemon: attach waits for conmon's accept. */
  readonly #notStarted = new Set<string>();
  #cli: RuntimeCli | undefined;
  #probed: Promise<void> | undefined;

  constructor(opts: RuncDriverOptions) {
    this.#opts = opts;
    this.name = opts.runtime.name;
    this.#log = opts.logger.child({ runtime: opts.runtime.name });
    this.#timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.#layout = {
      runtimeRoot: path.join(opts.stateDir, 'runtime', opts.runtime.name),
      exitDir: path.join(opts.stateDir, 'exits'),
      socketDir: path.join(opts.stateDir, 'socks'),
      conmonDir: path.join(opts.stateDir, 'conmon'),
    };
    this.#ownsWatcher = opts.exitWatcher === undefined;
    this.#watcher = opts.exitWatcher ?? new ExitWatcher(this.#layout.exitDir);
  }

  /**
   * Binaries present, `--version` answers, and the host is one the runtime
   * accepts (crun 1.8 refuses cgroup v1 hybrid hosts with controllers on
   * cgroup2). A success is cached; a failure is checked again next time.
   */
  probe(_opts: DriverCallOptions): Promise<void> {
    this.#probed ??= this.#probe().catch((err: unknown) => { this.#probed = undefined; throw err; });
    return this.#probed;
  }

  async #probe(): Promise<void> {
    const cli = await this.#defaultCli();
    await this.#conmonPath();
    const version = await new RuntimeCli({ ...cli.spec, args: [], root: this.#layout.runtimeRoot }).run(['--version'], { timeoutMs: 10_000 })
      .catch((err: unknown) => { throw new IsulaError('RUNTIME_UNAVAILABLE', `runtime ${this.name} (${cli.spec.path}) does not answer --version: ${(err as Error).message}`, { cause: err }); });
    if (/^crun version/m.test(version)) {
      const controllers = await hybridV2Controllers();
      if (controllers.length > 0) {
        throw new IsulaError('RUNTIME_UNAVAILABLE', `runtime ${this.name} (${cli.spec.path}) cannot run on this host: crun refuses cgroup v1 "hybrid" hosts while cgroup2 (/sys/fs/cgroup/unified) holds controllers (${controllers.join(', ')}): "cgroups in hybrid mode not supported, drop all controllers from cgroupv2". Bind them to v1, e.g. mkdir /sys/fs/cgroup/hugetlb && mount -t cgroup -o hugetlb cgroup /sys/fs/cgroup/hugetlb (see the driver-runc README)`,
          { details: { runtime: this.name, controllers } });
      }
    }
  }

  async create(ref: RuntimeContainerRef, opts: DriverCallOptions & { spec: OciSpec; stdio: StdioConfig }): Promise<{ persisted: Record<string, unknown>; pid: number }> {
    const id = checkId(ref.id);
    const cli = await this.#defaultCli();
    const conmonPath = await this.#conmonPath();
    const L = this.#layout;
    const persistDir = path.join(L.conmonDir, id);
    const exitFile = path.join(L.exitDir, id);
    await Promise.all([L.runtimeRoot, L.exitDir, L.socketDir, path.dirname(opts.stdio.logPath)].map((d) => fs.mkdir(d, { recursive: true, mode: 0o700 })));
    await fs.rm(persistDir, { recursive: true, force: true });
    await fs.mkdir(persistDir, { recursive: true, mode: 0o700 });
    await fs.rm(exitFile, { force: true });

    const { stdio } = opts;
    // BFQ hosts have no blkio.weight (PLATFORM.md §8): crun fails on it, so the weight is
    // taken out of the bundle's spec and written to blkio.bfq.weight once the cgroup exists.
    const bfqWeight = await this.#takeBfqWeight(ref.bundle, opts.spec);
    const args = [
      '--api-version', '1', '-c', id, '-u', id, '-n', id, '-r', cli.spec.path, '-b', ref.bundle,
      '-p', path.join(persistDir, 'pidfile'), '-P', path.join(persistDir, 'conmon.pid'),
      '-l', stdio.noLog === true ? 'none:' : `k8s-file:${stdio.logPath}`, '--exit-dir', L.exitDir, '--socket-dir-path', L.socketDir,
      '-0', persistDir, '--log-level', conmonLogLevel(this.#opts.logLevel),
      ...cli.globalArgs().flatMap((a) => ['--runtime-arg', a]),
    ];
    if (stdio.logSizeMaxBytes !== undefined && stdio.noLog !== true) args.push('--log-size-max', String(stdio.logSizeMaxBytes));
    if (stdio.openStdin) args.push('-i');
    if (stdio.terminal) args.push('-t');
    // Without it the first attach client to leave closes the container's stdin (docker's StdinOnce).
    // As moby, StdinOnce never closes a TTY's input: a client detaching (ctrl-p ctrl-q) can come back.
    if (stdio.openStdin && (!stdio.stdinOnce || stdio.terminal)) args.push('--leave-stdin-open');
    this.#log.debug({ container: id, argv: [conmonPath, ...args] }, 'spawning conmon');

    const started = Date.now();
    let msg: SyncMessage;
    const conmon = spawnConmon({ conmonPath, args, logFile: path.join(persistDir, 'conmon.log'), cwd: persistDir });
    try {
      conmon.writeStart();
      msg = await conmon.nextSync(this.#timeoutMs, opts.signal);
    } catch (err) {
      conmon.release();
      await this.#undoCreate(cli, ref, persistDir);
      throw err instanceof IsulaError && err.code === 'RUNTIME_FAILED'
        ? new IsulaError('RUNTIME_FAILED', `${err.message}: ${await conmonLog(persistDir)}`, { cause: err, details: { runtime: cli.spec.name } })
        : err;
    }
    conmon.release();
    if (msg.data <= 0) {
      const reason = cleanRuntimeMessage(msg.message ?? '') || (await conmonLog(persistDir));
      await this.#undoCreate(cli, ref, persistDir);
      throw classifyCreateError(cli.spec.name, reason, processCommand(opts.spec));
    }

    const init = await identify(msg.data);
    const conmonPid = await readPidFile(path.join(persistDir, 'conmon.pid'));
    const conmonId = (conmonPid === undefined ? undefined : await identify(conmonPid)) ?? null;
    const persisted: RuncPersisted = {
      schemaVersion: 1,
      runtime: cli.spec,
      conmonPath,
      conmon: conmonId,
      init: init ?? { pid: msg.data, startTime: -1 },
      exitFile,
      persistDir,
      attachSocket: path.join(ref.bundle, 'attach'),
      socketLink: path.join(L.socketDir, id),
      cgroupPath: (await cgroupPathOf(msg.data)) ?? null,
      terminal: stdio.terminal,
      ...(stdio.noLog !== true && { logPath: stdio.logPath }),
    };
    if (bfqWeight !== undefined && persisted.cgroupPath !== null) {
      const file = await bfqWeightFile(persisted.cgroupPath);
      if (file !== undefined) await fs.writeFile(file, String(bfqWeight)).catch((err: unknown) => this.#log.warn({ err, container: id }, 'setting the BFQ blkio weight failed'));
    }
    this.#log.info({ container: id, pid: msg.data, conmonPid, durationMs: Date.now() - started }, 'container created');
    this.#notStarted.add(id);
    return { persisted: persisted as unknown as Record<string, unknown>, pid: msg.data };
  }

  /** Removes `linux.resources.blockIO.weight` from the bundle's config.json on a BFQ host; returns it. */
  async #takeBfqWeight(bundle: string, spec: OciSpec): Promise<number | undefined> {
    const blockIO = ((spec['linux'] as { resources?: { blockIO?: { weight?: number } } } | undefined)?.resources?.blockIO);
    const weight = blockIO?.weight;
    if (weight === undefined || !(await bfqHost())) return undefined;
    const copy = structuredClone(spec);
    delete (copy['linux'] as { resources: { blockIO: { weight?: number } } }).resources.blockIO.weight;
    await writeFileAtomic(path.join(bundle, 'config.json'), JSON.stringify(copy), { mode: 0o600 });
    return weight;
  }

  async start(ref: RuntimeContainerRef, opts: DriverCallOptions): Promise<void> {
    this.#notStarted.delete(ref.id);
    const p = await this.#persisted(ref);
    const cli = this.#cliFor(p);
    // runc's own start is reading its exec FIFO: done here, it spares a runc process per start.
    if (path.basename(cli.spec.path) === 'runc' && (await startThroughFifo(cli.spec.root, ref.id, this.#timeoutMs, opts.signal))) return;
    await cli.run(['start', ref.id], this.#runOpts(opts));
  }

  async kill(ref: RuntimeContainerRef, opts: DriverCallOptions & { signal_: string | number; all?: boolean }): Promise<void> {
    const p = await this.#persisted(ref);
    const n = signalNumber(opts.signal_);
    // The init process, checked by its start time (an unknown one never matches), is signalled
    // directly (what `runc kill` does for it), saving a runtime exec on every stop. `--all` goes
    // through the runtime.
    if (opts.all !== true && (await signalProcess(p.init, n))) return;
    const cli = this.#cliFor(p);
    const argv = ['kill', ...(opts.all ? ['--all'] : []), ref.id, String(n)];
    try {
      await cli.run(argv, this.#runOpts(opts));
    } catch (err) {
      // Killing a stopped or deleted container is not an error.
      if (isNotExist(err) || (err instanceof IsulaError && err.code === 'RUNTIME_FAILED' && (await cli.state(ref.id, this.#runOpts(opts))).status === 'stopped')) return;
      throw err;
    }
  }

  async state(ref: RuntimeContainerRef, opts: DriverCallOptions): Promise<RuntimeState> {
    const p = await this.#persisted(ref);
    return this.#cliFor(p).state(ref.id, this.#runOpts(opts));
  }

  async wait(ref: RuntimeContainerRef, opts: DriverCallOptions): Promise<ExitStatus> {
    const p = await this.#persisted(ref);
    return this.#watcher.wait(ref.id, () => this.#checkExit(p), opts.signal);
  }

  async exec(
    ref: RuntimeContainerRef,
    opts: DriverCallOptions & { execId: string; process: OciProcess; stdio: StdioConfig; onStarted?: (pid: number, stream: StdioStream | undefined) => void },
  ): Promise<ExitStatus> {
    const p = await this.#persisted(ref);
    const cli = this.#cliFor(p);
    const execId = checkId(opts.execId);
    const execDir = this.#execDir(p, execId);
    await fs.rm(execDir, { recursive: true, force: true });
    await fs.mkdir(path.join(execDir, 'exits'), { recursive: true, mode: 0o700 });
    if (opts.stdio.noLog !== true) await fs.mkdir(path.dirname(opts.stdio.logPath), { recursive: true });
    const processSpec = { ...opts.process, terminal: opts.stdio.terminal };
    await fs.writeFile(path.join(execDir, 'process.json'), JSON.stringify(processSpec), { mode: 0o600 });
    // The caller gets a stream when it asked to be told of the start: output then also reaches it live.
    const attach = opts.onStarted !== undefined;
    const args = [
      '--api-version', '1', '-c', ref.id, '-u', execId, '-n', ref.id, '-r', cli.spec.path, '-b', execDir,
      '-p', path.join(execDir, 'pidfile'), '-l', opts.stdio.noLog === true ? 'none:' : `k8s-file:${opts.stdio.logPath}`, '--exit-dir', path.join(execDir, 'exits'),
      // conmon's own messages of an attached exec reach the exec's stderr: keep them to errors.
      '--socket-dir-path', this.#layout.socketDir, '--log-level', attach ? 'error' : conmonLogLevel(this.#opts.logLevel),
      '-e', '--exec-process-spec', path.join(execDir, 'process.json'),
      ...cli.globalArgs().flatMap((a) => ['--runtime-arg', a]),
    ];
    if (attach) args.push('--exec-attach');
    if (opts.stdio.openStdin) args.push('-i');
    if (opts.stdio.terminal) args.push('-t');
    this.#log.debug({ container: ref.id, execId, argv: args }, 'spawning conmon for exec');
    const conmon = spawnConmon({ conmonPath: p.conmonPath, args, logFile: path.join(execDir, 'conmon.log'), attachPipe: attach, cwd: execDir });
    let stream: AttachStream | undefined;
    try {
      conmon.writeStart();
      if (attach) {
        const ready = await conmon.nextAttach(this.#timeoutMs, opts.signal);
        if (ready.data < 0) throw classifyCreateError(cli.spec.name, ready.message ?? 'exec attach failed');
        stream = await connectAttach(path.join(execDir, 'attach'));
        conmon.writeStart();
      }
      const started = await conmon.nextSync(this.#timeoutMs, opts.signal);
      if (started.data < 0) throw classifyCreateError(cli.spec.name, cleanRuntimeMessage(started.message ?? '') || (await conmonLog(execDir)), opts.process.args?.[0]);
      opts.onStarted?.(started.data, stream);
      const exited = await conmon.nextSync(Infinity, opts.signal);
      return { exitCode: exited.data, exitedAt: new Date() };
    } catch (err) {
      stream?.close();
      throw err;
    } finally {
      conmon.release();
      await fs.rm(path.join(this.#layout.socketDir, execId), { force: true });
      // An exec's directory goes once it is over; a live stream keeps reading until conmon closes it.
      if (stream === undefined || stream.isClosed) await fs.rm(execDir, { recursive: true, force: true });
      else stream.onClose(() => { void fs.rm(execDir, { recursive: true, force: true }); });
    }
  }

  async attach(ref: RuntimeContainerRef, _opts: DriverCallOptions): Promise<StdioStream> {
    const p = await this.#persisted(ref);
    // Before the start, the caller wants the first bytes (`isula run`): the start must wait until
    // conmon has accepted the connection, or a quick container's output goes to no client (a
    // loaded CI host lost `echo out` so). conmon then holds one more socket.
    const conmonPid = this.#notStarted.has(ref.id) ? p.conmon?.pid : undefined;
    const before = conmonPid === undefined ? undefined : await socketsOf(conmonPid);
    const stream = await connectAttach(p.attachSocket);
    if (conmonPid !== undefined && before !== undefined && !(await waitNewSocket(conmonPid, before, ACCEPT_WAIT_MS))) {
      this.#log.warn({ container: ref.id, conmonPid }, `conmon did not accept the attach connection within ${ACCEPT_WAIT_MS} ms; the first output may be missed`);
    }
    let set = this.#streams.get(ref.id);
    if (!set) this.#streams.set(ref.id, (set = new Set()));
    set.add(stream);
    stream.onClose(() => {
      set.delete(stream);
      if (set.size === 0 && this.#streams.get(ref.id) === set) this.#streams.delete(ref.id);
    });
    return stream;
  }

  async resize(ref: RuntimeContainerRef, opts: DriverCallOptions & { execId?: string; rows: number; cols: number }): Promise<void> {
    const p = await this.#persisted(ref);
    const dir = opts.execId === undefined ? path.dirname(p.attachSocket) : this.#execDir(p, checkId(opts.execId));
    const rows = Math.max(0, Math.trunc(opts.rows));
    const cols = Math.max(0, Math.trunc(opts.cols));
    // conmon keeps the fifo open for reading: a non-blocking open never waits.
    const handle = await fs.open(path.join(dir, 'ctl'), fs.constants.O_WRONLY | fs.constants.O_NONBLOCK).catch((err: unknown) => {
      throw new IsulaError('RUNTIME_FAILED', `cannot resize ${ref.id}: conmon's control fifo is gone`, { cause: err });
    });
    try {
      await handle.write(`1 ${rows} ${cols}\n`);
    } finally {
      await handle.close();
    }
  }

  /**
   * conmon closes its log file and opens it again at the same path (ctl message 2, its
   * REOPEN_LOGS event): after the caller moved the file away, the next lines start a new one
   * (the CRI's ReopenContainerLog).
   */
  async reopenLog(ref: RuntimeContainerRef, _opts: DriverCallOptions): Promise<void> {
    const p = await this.#persisted(ref);
    const handle = await fs.open(path.join(path.dirname(p.attachSocket), 'ctl'), fs.constants.O_WRONLY | fs.constants.O_NONBLOCK).catch((err: unknown) => {
      throw new IsulaError('CONTAINER_STATE_CONFLICT', `cannot reopen the log of ${ref.id}: its conmon is gone`, { cause: err });
    });
    const logPath = p.logPath;
    const before = logPath === undefined ? undefined : await fs.stat(logPath).then((st) => st.ino, () => undefined);
    try {
      await handle.write('2 0 0\n');
    } finally {
      await handle.close();
    }
    // The caller (the kubelet) checks for the new file as soon as this returns, but conmon 2.1
    // opens it again only when it next writes. Give it 100 ms, then create the file ourselves:
    // conmon opens the path with O_APPEND|O_CREAT, so its lines follow in the same file.
    if (logPath === undefined) return;
    for (let i = 0; i < 5; i++) {
      const ino = await fs.stat(logPath).then((st) => st.ino, () => undefined);
      if (ino !== undefined && ino !== before) return;
      await new Promise((r) => setTimeout(r, 20));
    }
    await (await fs.open(logPath, 'a', 0o640)).close();
  }

  async pause(ref: RuntimeContainerRef, opts: DriverCallOptions): Promise<void> {
    const p = await this.#persisted(ref);
    await this.#cliFor(p).run(['pause', ref.id], this.#runOpts(opts));
  }

  async resume(ref: RuntimeContainerRef, opts: DriverCallOptions): Promise<void> {
    const p = await this.#persisted(ref);
    await this.#cliFor(p).run(['resume', ref.id], this.#runOpts(opts));
  }

  async update(ref: RuntimeContainerRef, opts: DriverCallOptions & { resources: ResourceUpdate }): Promise<void> {
    const p = await this.#persisted(ref);
    const r = opts.resources;
    // No blkio.weight on a BFQ host (PLATFORM.md §8): the weight goes to blkio.bfq.weight below.
    const bfqFile = r.blkioWeight === undefined || p.cgroupPath === null ? undefined : await bfqWeightFile(p.cgroupPath);
    // OCI LinuxResources through `-r FILE`: runc and crun agree on it (not on flag names: --cpu-share).
    const res = ociLinuxResources(r, { blkioWeight: bfqFile === undefined });
    if (Object.keys(res).length > 0) {
      const file = path.join(p.persistDir, 'update.json');
      await fs.writeFile(file, JSON.stringify(res), { mode: 0o600 });
      try {
        await this.#cliFor(p).run(['update', '-r', file, ref.id], this.#runOpts(opts));
      } finally {
        await fs.rm(file, { force: true });
      }
    }
    if (bfqFile !== undefined && r.blkioWeight !== undefined) {
      await fs.writeFile(bfqFile, String(r.blkioWeight)).catch((err: unknown) => {
        throw new IsulaError('RUNTIME_FAILED', `cannot set the blkio weight of ${ref.id}: ${(err as Error).message}`, { cause: err });
      });
    }
  }

  async stats(ref: RuntimeContainerRef, _opts: DriverCallOptions): Promise<ContainerStats> {
    const p = await this.#persisted(ref);
    const cgroupPath = p.cgroupPath ?? (await cgroupPathOf(p.init.pid));
    if (cgroupPath === undefined) throw new IsulaError('RUNTIME_FAILED', `container ${ref.id} has no cgroup to read stats from`);
    return readStats(cgroupPath);
  }

  async pids(ref: RuntimeContainerRef, opts: DriverCallOptions): Promise<number[]> {
    const p = await this.#persisted(ref);
    return this.#cliFor(p).pids(ref.id, this.#runOpts(opts));
  }

  async delete(ref: RuntimeContainerRef, opts: DriverCallOptions & { force?: boolean }): Promise<void> {
    this.#notStarted.delete(ref.id);
    const p = await this.#persisted(ref);
    const cli = this.#cliFor(p);
    if (!opts.force) {
      const { status } = await cli.state(ref.id, this.#runOpts(opts));
      if (status === 'running' || status === 'paused') {
        throw new IsulaError('CONTAINER_STATE_CONFLICT', `container ${ref.id} is ${status}: stop it first or delete with force`);
      }
    }
    // Read the OOM count while the cgroup still exists.
    const oomKills = p.cgroupPath === null ? undefined : await readOomKills(p.cgroupPath);
    // runc and crun keep a container's state in `<root>/<id>`: without it there is nothing to
    // delete, and no process need be spawned to hear so (rm after an exit already deleted it).
    // Other runtimes keep theirs their own way: they are always asked.
    const layoutKnown = ['runc', 'crun'].includes(path.basename(cli.spec.path));
    const known = !layoutKnown || (await fs.access(path.join(cli.spec.root, ref.id)).then(() => true, () => false));
    if (known && !(path.basename(cli.spec.path) === 'runc' && (await deleteStoppedNatively(cli.spec.root, ref.id)))) {
      try {
        await cli.run(['delete', '--force', ref.id], this.#runOpts(opts));
      } catch (err) {
        if (!isNotExist(err)) throw err;
      }
    }
    // conmon writes the exit file once the init is reaped, then leaves.
    if (p.conmon && !(await waitProcessGone(p.conmon, 3000))) {
      this.#log.warn({ container: ref.id, conmonPid: p.conmon.pid }, 'conmon still running after delete: killing it');
      await signalProcess(p.conmon, 'SIGKILL');
      await waitProcessGone(p.conmon, 1000);
    }
    const status = await this.#checkExit(p, oomKills);
    if (status) this.#watcher.settle(ref.id, status);
    for (const s of this.#streams.get(ref.id) ?? []) s.close();
    const bundle = path.dirname(p.attachSocket);
    await Promise.all([
      fs.rm(p.exitFile, { force: true }),
      fs.rm(p.persistDir, { recursive: true, force: true }),
      fs.rm(p.socketLink, { force: true }),
      ...['attach', 'ctl', 'winsz'].map((f) => fs.rm(path.join(bundle, f), { force: true })),
    ]);
    this.#log.info({ container: ref.id }, 'container deleted');
  }

  async restore(ref: RuntimeContainerRef, opts: DriverCallOptions): Promise<RuntimeState> {
    const p = await this.#persisted(ref);
    if (await exists(p.exitFile)) return { status: 'stopped', pid: 0 };
    if (await isSameProcess(p.init)) {
      if (!(await isSameProcess(p.conmon ?? undefined))) {
        this.#log.warn({ container: ref.id, pid: p.init.pid }, 'conmon is gone: the container runs unsupervised, its exit code will be lost');
      }
      const st = await this.#cliFor(p).state(ref.id, this.#runOpts(opts));
      return st.status === 'stopped' ? st : { status: st.status, pid: p.init.pid };
    }
    // The init is gone (or its pid now belongs to another process). A live conmon is about to write the file.
    if (p.conmon && (await isSameProcess(p.conmon))) await waitProcessGone(p.conmon, 2000);
    if (!(await exists(p.exitFile))) {
      this.#log.warn({ container: ref.id, pid: p.init.pid, exitCode: LOST_EXIT_CODE }, 'container exited without an exit file: recording a lost exit');
      await fs.mkdir(path.dirname(p.exitFile), { recursive: true });
      await writeFileAtomic(p.exitFile, String(LOST_EXIT_CODE), { mode: 0o644 });
    }
    return { status: 'stopped', pid: 0 };
  }

  /** Closes what this driver opened: the exit watcher (when its own) and attach streams. Containers keep running. */
  close(): void {
    if (this.#ownsWatcher) this.#watcher.close();
    for (const set of this.#streams.values()) for (const s of set) s.close();
    this.#streams.clear();
  }

  // ---------------------------------------------------------------------------

  /** The exit status when the container has exited, else undefined. */
  async #checkExit(p: RuncPersisted, oomKills?: number): Promise<ExitStatus | undefined> {
    let status = await this.#readExit(p);
    if (!status) {
      // conmon killed without writing: once both it and the init are gone, the code is lost.
      if ((await isSameProcess(p.conmon ?? undefined)) || (await isSameProcess(p.init))) return undefined;
      status = (await this.#readExit(p)) ?? { exitCode: LOST_EXIT_CODE, exitedAt: new Date() };
    }
    const oom = (await exists(path.join(p.persistDir, 'oom')))
      || (oomKills ?? (p.cgroupPath === null ? 0 : ((await readOomKills(p.cgroupPath)) ?? 0))) > 0;
    return oom ? { ...status, oomKilled: true } : status;
  }

  /** The exit file's status; one that is there but not a status is an exit with a lost code, said in the log. */
  async #readExit(p: RuncPersisted): Promise<ExitStatus | undefined> {
    const r = await readExitFile(p.exitFile);
    if (r.kind === 'corrupt') this.#log.warn({ file: p.exitFile, reason: r.reason, exitCode: LOST_EXIT_CODE }, 'conmon exit file is not an exit status: the exit code is lost');
    return exitStatusOf(r);
  }

  #execDir(p: RuncPersisted, execId: string): string {
    return path.join(p.persistDir, 'exec', execId);
  }

  #runOpts(opts: DriverCallOptions): { signal: AbortSignal; timeoutMs: number } {
    return { signal: opts.signal, timeoutMs: this.#timeoutMs };
  }

  #cliFor(p: RuncPersisted): RuntimeCli {
    return new RuntimeCli(p.runtime);
  }

  async #defaultCli(): Promise<RuntimeCli> {
    if (this.#cli) return this.#cli;
    const rt = this.#opts.runtime;
    const wanted = rt.path ?? rt.name;
    const found = await findExecutable(wanted, SEARCH_DIRS);
    if (found === undefined) {
      throw new IsulaError('RUNTIME_UNAVAILABLE', `runtime ${rt.name}: binary ${wanted} not found or not executable`, { details: { runtime: rt.name, binary: wanted } });
    }
    this.#cli = new RuntimeCli({ name: rt.name, path: found, root: this.#layout.runtimeRoot, args: rt.args ?? [] });
    return this.#cli;
  }

  async #conmonPath(): Promise<string> {
    const wanted = this.#opts.conmonPath ?? DEFAULT_CONMON;
    const found = await findExecutable(wanted, SEARCH_DIRS);
    if (found === undefined) {
      throw new IsulaError('RUNTIME_UNAVAILABLE', `runtime ${this.name}: conmon binary ${wanted} not found or not executable`, { details: { runtime: this.name, binary: wanted } });
    }
    return found;
  }

  /** ref.persisted when valid; otherwise what this driver's layout implies (a container created elsewhere). */
  async #persisted(ref: RuntimeContainerRef): Promise<RuncPersisted> {
    const id = checkId(ref.id);
    const parsed = parsePersisted(ref.persisted);
    if (parsed) return parsed;
    const cli = await this.#defaultCli();
    return {
      schemaVersion: 1,
      runtime: cli.spec,
      conmonPath: this.#opts.conmonPath ?? DEFAULT_CONMON,
      conmon: null,
      init: { pid: 0, startTime: -1 },
      exitFile: path.join(this.#layout.exitDir, id),
      persistDir: path.join(this.#layout.conmonDir, id),
      attachSocket: path.join(ref.bundle, 'attach'),
      socketLink: path.join(this.#layout.socketDir, id),
      cgroupPath: null,
      terminal: false,
    };
  }

  /** Undo a failed create: runtime state, conmon, its symlink and files. The bundle keeps only what core wrote. */
  async #undoCreate(cli: RuntimeCli, ref: RuntimeContainerRef, persistDir: string): Promise<void> {
    const signal = AbortSignal.timeout(this.#timeoutMs);
    await cli.run(['delete', '--force', ref.id], { signal }).catch(() => {});
    const conmonPid = await readPidFile(path.join(persistDir, 'conmon.pid'));
    const conmon = conmonPid === undefined ? undefined : await identify(conmonPid);
    if (conmon && !(await waitProcessGone(conmon, 2000))) {
      await signalProcess(conmon, 'SIGKILL');
      await waitProcessGone(conmon, 1000);
    }
    await Promise.all([
      fs.rm(path.join(this.#layout.exitDir, ref.id), { force: true }),
      fs.rm(path.join(this.#layout.socketDir, ref.id), { force: true }),
      fs.rm(persistDir, { recursive: true, force: true }),
      ...['attach', 'ctl', 'winsz'].map((f) => fs.rm(path.join(ref.bundle, f), { force: true })),
    ]);
  }
}

function checkId(id: string): string {
  if (!ID.test(id)) throw new IsulaError('CONTAINER_CONFIG_INVALID', `invalid container or exec id ${JSON.stringify(id)}`);
  return id;
}

/** Maps the runtime's create/exec failure onto docker's 127/126 codes where it names the command. */
export function classifyCreateError(runtime: string, reason: string, command?: string): IsulaError {
  const details = { runtime, reason };
  // crun's "open executable: Permission denied" does not say which: name it.
  const named = command === undefined || command === '' || reason.includes(command) ? reason : `${reason}: ${JSON.stringify(command)}`;
  const notFound = /executable file not found|exec: "[^"]*": stat [^:]*: no such file or directory|executable file `[^`]*` not found|exec(?:utable)?[^:]*: no such file or directory/i;
  const denied = /exec: "[^"]*": permission denied|open executable: permission denied|exec(?:utable)?[^:]*: permission denied/i;
  if (notFound.test(reason)) return new IsulaError('CONTAINER_CMD_NOT_FOUND', `${runtime}: ${named}`, { details });
  if (denied.test(reason)) return new IsulaError('CONTAINER_CMD_NOT_EXECUTABLE', `${runtime}: ${named}`, { details });
  if (/cgroups in hybrid mode not supported/i.test(reason)) {
    return new IsulaError('RUNTIME_FAILED', `runtime ${runtime} failed: ${reason} (on a cgroup v1 hybrid host, bind hugetlb to v1: see @isula/driver-runc's README)`, { details });
  }
  return new IsulaError('RUNTIME_FAILED', `runtime ${runtime} create failed: ${reason}`, { details });
}

async function exists(file: string): Promise<boolean> {
  return fs.access(file).then(() => true, () => false);
}

async function conmonLog(dir: string): Promise<string> {
  const text = await fs.readFile(path.join(dir, 'conmon.log'), 'utf8').catch(() => '');
  // The oom_score_adj complaint is harmless (PLATFORM.md §3).
  return text.split('\n').filter((l) => l.trim() !== '' && !l.includes('oom_score_adj')).slice(-5).join('; ') || 'no message';
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isIdentity = (v: unknown): v is ProcessIdentity => isObject(v) && typeof v['pid'] === 'number' && typeof v['startTime'] === 'number';

function parsePersisted(v: unknown): RuncPersisted | undefined {
  if (!isObject(v) || v['schemaVersion'] !== 1) return undefined;
  const rt = v['runtime'];
  if (!isObject(rt) || typeof rt['name'] !== 'string' || typeof rt['path'] !== 'string' || typeof rt['root'] !== 'string') return undefined;
  const args = Array.isArray(rt['args']) ? rt['args'].filter((a): a is string => typeof a === 'string') : [];
  const str = (k: string) => (typeof v[k] === 'string' ? v[k] : undefined);
  const [exitFile, persistDir, attachSocket, socketLink, conmonPath] = ['exitFile', 'persistDir', 'attachSocket', 'socketLink', 'conmonPath'].map(str);
  if (!isIdentity(v['init']) || exitFile === undefined || persistDir === undefined || attachSocket === undefined || socketLink === undefined) return undefined;
  return {
    schemaVersion: 1,
    runtime: { name: rt['name'], path: rt['path'], root: rt['root'], args },
    conmonPath: conmonPath ?? DEFAULT_CONMON,
    conmon: isIdentity(v['conmon']) ? v['conmon'] : null,
    init: v['init'],
    exitFile,
    persistDir,
    attachSocket,
    socketLink,
    cgroupPath: typeof v['cgroupPath'] === 'string' ? v['cgroupPath'] : null,
    terminal: v['terminal'] === true,
    ...(typeof v['logPath'] === 'string' && { logPath: v['logPath'] }),
  };
}

/** Controllers cgroup2 holds on a hybrid host (cgroup2 mounted at /sys/fs/cgroup/unified); [] otherwise. */
async function hybridV2Controllers(): Promise<string[]> {
  const mounts = await fs.readFile('/proc/self/mountinfo', 'utf8').catch(() => '');
  if (!/ \/sys\/fs\/cgroup\/unified [^\n]* - cgroup2 /.test(mounts)) return [];
  const text = await fs.readFile('/sys/fs/cgroup/unified/cgroup.controllers', 'utf8').catch(() => '');
  return text.split(/\s+/).filter(Boolean);
}

function processCommand(spec: OciSpec): string | undefined {
  const args = (spec['process'] as { args?: unknown } | undefined)?.args;
  return Array.isArray(args) && typeof args[0] === 'string' ? args[0] : undefined;
}

/** A cgroup v1 host whose block scheduler is BFQ: no blkio.weight; the root shows blkio.bfq.* statistics. */
async function bfqHost(): Promise<boolean> {
  const has = (f: string) => fs.access(path.join('/sys/fs/cgroup/blkio', f)).then(() => true, () => false);
  return !(await has('blkio.weight')) && (await has('blkio.bfq.io_service_bytes'));
}
