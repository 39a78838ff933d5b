/**
 * RuntimeDriver for LXC 5 through its command-line tools (iSulad's `lcr`).
 *
 * Per container, under `<state>/lxc/<id>/` (lxc's `-P` is `<state>/lxc`):
 *   config            the lxc config translated from the OCI spec (lxc-config.ts)
 *   start-host.sh, stop.sh, setup.sh, seccomp   hooks and policy (scripts.ts, seccomp.ts)
 *   lxc.log           lxc's log at INFO: the stop hook reads the exit code from it
 *   pid               the init's host pid (start-host hook)
 *   exit              "<code> <oom kills>" (stop hook; its mtime is the exit time)
 *   state.json        the monitor's and the init's identities (pid + start time)
 *   stdin             a FIFO when the container keeps stdin open
 *   offsets           how far the daemon copied the output into the log
 * and in the container's own directory `lxc-stdout`, `lxc-stderr`: the
 * container's output as written (output.ts).
 *
 * The monitor is `lxc-start -F` spawned detached (its own session): when the
 * daemon dies it is re-parented and the container goes on. The container's
 * stdio are the monitor's (lxc.console.path = none); with a terminal,
 * lxc-start runs on a pty of util-linux script's and relays lxc's console
 * to it (README, "Terminals").
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { identify, IsulaError, isSameProcess, signalNumber, signalProcess, waitProcessGone, writeFileAtomic, type ProcessIdentity } from '@isula/core';
import type {
  PluginHost, ContainerStats, DriverCallOptions, ExitStatus, OciProcess, OciSpec, ResourceUpdate, RuntimeContainerRef,
  RuntimeDriver, RuntimeState, StdioConfig, StdioStream,
} from '@isula/core';
import { cgroupPids, freezerState, isBfq, isUnified, readStats, removeCgroup, setFrozen, updateResources, CGROUP_ROOT } from './cgroups.js';
import { shQuote, specToLxc, type HostFacts, type OciHook } from './lxc-config.js';
import { OutputPump, StdinWriter, readOffsets } from './output.js';
import { daemonHardLimits } from './proc.js';
import { checkHookPath, execFailure, lastErrors, parseExitFile, setupScript, startHostScript, stopScript } from './scripts.js';

/** core's logger type (pino's), without a dependency on pino. */
type Logger = PluginHost['logger'];

/** Exit code when the container is gone and no exit file was written (the monitor was killed). */
export const LOST_EXIT_CODE = 255;
/** How long resize looks for the pty `script` gives lxc-start or lxc-attach. */
const RESIZE_FIND_PTY_MS = 10_000;
const DEFAULT_TIMEOUT_MS = 30_000;
const ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;
const TOOL_DIRS = ['/usr/local/bin', '/usr/bin', '/bin', '/usr/local/sbin', '/usr/sbin', '/sbin'];
/** lxc's LXC_ROOTFS_MOUNT (a build setting): Debian's multiarch path first. */
const ROOTFS_MOUNTS = [`/usr/lib/${process.arch === 'arm64' ? 'aarch64' : 'x86_64'}-linux-gnu/lxc/rootfs`, '/usr/lib/lxc/rootfs', '/usr/local/lib/lxc/rootfs', '/usr/lib64/lxc/rootfs'];
const CHILD_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export interface LxcDriverOptions {
  /** The runtime family shown by `isula info` and in messages (`lxc`). */
  name: string;
  /** The daemon's volatile state root (daemon.json `state`). */
  stateDir: string;
  logger: Logger;
  /** Directory holding lxc-start, lxc-attach ...; default: looked up in /usr/bin, /usr/local/bin ... */
  lxcBinDir?: string;
  timeoutMs?: number;
}

export interface LxcPersisted {
  schemaVersion: 1;
  dir: string;
  lxcPath: string;
  cgroupPath: string;
  monitorCgroup: string;
  stdoutFile: string;
  stderrFile: string;
  logPath: string | null;
  logSizeMaxBytes: number | null;
  openStdin: boolean;
  stdinOnce: boolean;
  /** The container has a terminal: lxc-start runs on a pty `script` makes (README). */
  terminal: boolean;
}

interface RunState { schemaVersion: 1; monitor: ProcessIdentity | null; init: ProcessIdentity | null }

interface Live {
  pump: OutputPump;
  waiting?: Promise<ExitStatus> | undefined;
  settled?: ExitStatus;
  monitorChild?: ChildProcess;
}

export class LxcDriver implements RuntimeDriver {
  readonly name: string;
  readonly #o: LxcDriverOptions;
  readonly #log: Logger;
  readonly #lxcPath: string;
  readonly #timeoutMs: number;
  readonly #live = new Map<string, Live>();
  readonly #abort = new AbortController();
  /** `<container>/<exec>` → pid of the `script` giving a terminal exec its pty. */
  readonly #ttyExecs = new Map<string, number>();
  #bin: Promise<string> | undefined;
  #host: Promise<HostFacts> | undefined;

  constructor(o: LxcDriverOptions) {
    this.#o = o;
    this.name = o.name;
    this.#log = o.logger.child({ runtime: o.name });
    this.#lxcPath = path.join(o.stateDir, 'lxc');
    this.#timeoutMs = o.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  }

  probe(_opts: DriverCallOptions): Promise<void> {
    this.#bin ??= this.#findBin().catch((err: unknown) => { this.#bin = undefined; throw err; });
    return this.#bin.then(() => undefined);
  }

  /** The lxc tools' directory (looked up once; also after a daemon restart, when create never ran). */
  async #binDir(): Promise<string> {
    await this.probe({ signal: this.#abort.signal });
    return this.#bin as Promise<string>; // set by probe
  }

  async #findBin(): Promise<string> {
    const dirs = this.#o.lxcBinDir !== undefined ? [this.#o.lxcBinDir] : TOOL_DIRS;
    for (const d of dirs) {
      const ok = await Promise.all(['lxc-start', 'lxc-attach'].map((b) => fsp.access(path.join(d, b), fs.constants.X_OK).then(() => true, () => false)));
      if (ok.every(Boolean)) return d;
    }
    throw new IsulaError('RUNTIME_UNAVAILABLE', `runtime ${this.name}: lxc-start and lxc-attach not found in ${dirs.join(', ')} (install lxc)`, { details: { runtime: this.name } });
  }

  #tool(bin: string, name: string): string {
    return path.join(bin, name);
  }

  #hostFacts(): Promise<HostFacts> {
    this.#host ??= (async () => {
      const [cgroupV2, bfq, hardLimits] = await Promise.all([isUnified(), isBfq(), daemonHardLimits()]);
      let rootfsMount = ROOTFS_MOUNTS[0] as string;
      for (const m of ROOTFS_MOUNTS) if (await exists(m)) { rootfsMount = m; break; }
      return {
        cgroupV2, bfq, hardLimits, rootfsMount,
        kindOf: (p: string) => {
          try {
            return fs.statSync(p).isDirectory() ? 'dir' as const : 'file' as const;
          } catch {
            return 'missing' as const;
          }
        },
      };
    })();
    return this.#host;
  }

  // ---- create / start ----------------------------------------------------------

  async create(ref: RuntimeContainerRef, opts: DriverCallOptions & { spec: OciSpec; stdio: StdioConfig }): Promise<{ persisted: Record<string, unknown> }> {
    const id = checkId(ref.id);
    await this.probe(opts);
    const dir = path.join(this.#lxcPath, id);
    checkHookPath(dir);
    const host = await this.#hostFacts();
    const linux = (opts.spec['linux'] ?? {}) as { cgroupsPath?: string };
    const cgroupPath = (linux.cgroupsPath ?? `/isulad/${id}`).replace(/^\/+/, '');
    const parent = path.posix.dirname(cgroupPath);
    const monitorCgroup = path.posix.join(parent === '.' ? '' : parent, `lxc.monitor.${id}`);
    const pivotCgroup = path.posix.join(parent === '.' ? '' : parent, 'lxc.pivot');
    const oomFile = host.cgroupV2 ? path.join(CGROUP_ROOT, cgroupPath, 'memory.events') : path.join(CGROUP_ROOT, 'memory', cgroupPath, 'memory.oom_control');

    let cfg;
    try {
      cfg = specToLxc(opts.spec, {
        name: id,
        logFile: path.join(dir, 'lxc.log'),
        logLevel: 'INFO',
        startHostHook: path.join(dir, 'start-host.sh'),
        stopHook: path.join(dir, 'stop.sh'),
        setupHook: path.join(dir, 'setup.sh'),
        seccompFile: path.join(dir, 'seccomp'),
        monitorCgroup,
        pivotCgroup,
        ...(typeof opts.spec['annotations'] === 'object' && opts.spec['annotations'] !== null && typeof (opts.spec['annotations'] as Record<string, unknown>)['org.openeuler.isula.stop-signal'] === 'string'
          ? { haltSignal: (opts.spec['annotations'] as Record<string, string>)['org.openeuler.isula.stop-signal'] as string } : {}),
      }, host);
    } catch (err) {
      throw new IsulaError('CONTAINER_CONFIG_INVALID', `runtime ${this.name}: the OCI spec cannot be expressed as an lxc config: ${(err as Error).message}`, { cause: err });
    }
    for (const w of cfg.warnings) this.#log.debug({ container: id, warning: w }, 'spec part not applied by lxc');

    // A leftover of an earlier run (crash between exit and delete) goes first.
    await this.#cleanup(id, dir, cgroupPath, monitorCgroup);
    await fsp.mkdir(dir, { recursive: true, mode: 0o700 });
    const stdoutFile = path.join(ref.containerDir, 'lxc-stdout');
    const stderrFile = path.join(ref.containerDir, 'lxc-stderr');
    try {
      await Promise.all([
        fsp.writeFile(path.join(dir, 'config'), cfg.text, { mode: 0o600 }),
        fsp.writeFile(path.join(dir, 'argv.json'), JSON.stringify(cfg.argv), { mode: 0o600 }),
        fsp.writeFile(path.join(dir, 'hooks.json'), JSON.stringify(cfg.hooks), { mode: 0o600 }),
        fsp.writeFile(path.join(dir, 'start-host.sh'), startHostScript({ dir, id, bundle: ref.bundle, hooks: cfg.earlyHooks }), { mode: 0o700 }),
        fsp.writeFile(path.join(dir, 'stop.sh'), stopScript({ dir, oomFile }), { mode: 0o700 }),
        fsp.writeFile(path.join(dir, 'setup.sh'), setupScript(cfg.setupScript), { mode: 0o700 }),
        ...(cfg.seccomp !== undefined ? [fsp.writeFile(path.join(dir, 'seccomp'), cfg.seccomp, { mode: 0o600 })] : []),
        fsp.writeFile(stdoutFile, '', { mode: 0o600 }),
        fsp.writeFile(stderrFile, '', { mode: 0o600 }),
        fsp.rm(path.join(dir, 'offsets'), { force: true }),
      ]);
      if (opts.stdio.openStdin || opts.stdio.terminal) await run('mkfifo', ['-m', '0600', path.join(dir, 'stdin')], this.#timeoutMs);
      if (opts.stdio.noLog !== true) await fsp.mkdir(path.dirname(opts.stdio.logPath), { recursive: true });
    } catch (err) {
      await fsp.rm(dir, { recursive: true, force: true });
      throw new IsulaError('RUNTIME_FAILED', `runtime ${this.name}: preparing container ${id} failed: ${(err as Error).message}`, { cause: err });
    }
    const persisted: LxcPersisted = {
      schemaVersion: 1, dir, lxcPath: this.#lxcPath, cgroupPath, monitorCgroup, stdoutFile, stderrFile,
      logPath: opts.stdio.noLog === true ? null : opts.stdio.logPath,
      logSizeMaxBytes: opts.stdio.logSizeMaxBytes ?? null,
      openStdin: opts.stdio.openStdin,
      terminal: opts.stdio.terminal,
      stdinOnce: opts.stdio.stdinOnce,
    };
    this.#live.set(id, { pump: this.#newPump(persisted, { stdout: 0, stderr: 0 }) });
    this.#log.info({ container: id }, 'container created');
    return { persisted: persisted as unknown as Record<string, unknown> };
  }

  #newPump(p: LxcPersisted, offsets: { stdout: number; stderr: number }): OutputPump {
    const pump = new OutputPump({
      stdoutFile: p.stdoutFile,
      stderrFile: p.stderrFile,
      ...(p.logPath !== null && { logPath: p.logPath }),
      ...(p.logSizeMaxBytes !== null && { logSizeMaxBytes: p.logSizeMaxBytes }),
      offsetsFile: path.join(p.dir, 'offsets'),
      offsets,
      onError: (err) => this.#log.warn({ err }, 'copying container output failed'),
    });
    if (p.openStdin) {
      pump.stdin = new StdinWriter(path.join(p.dir, 'stdin'));
      pump.stdinOnce = p.stdinOnce;
    }
    return pump;
  }

  async start(ref: RuntimeContainerRef, opts: DriverCallOptions): Promise<void> {
    const id = checkId(ref.id);
    const p = this.#persisted(ref);
    const bin = await this.#binDir();
    const live = this.#liveOf(id, p);
    const argv = JSON.parse(await fsp.readFile(path.join(p.dir, 'argv.json'), 'utf8')) as string[];
    const logFile = path.join(p.dir, 'lxc.log');
    await Promise.all(['pid', 'exit', 'state.json', 'lxc.log'].map((f) => fsp.rm(path.join(p.dir, f), { force: true })));

    let stdinFh: fsp.FileHandle | undefined;
    if (p.openStdin && live.pump.stdin) {
      await live.pump.stdin.open(); // our writer first: the container's open below then never blocks
      stdinFh = await fsp.open(path.join(p.dir, 'stdin'), fs.constants.O_RDONLY);
    }
    if (p.terminal && !p.openStdin) {
      // A terminal without -i: a stdin that never ends (script would type EOF into the terminal).
      stdinFh = await fsp.open(path.join(p.dir, 'stdin'), fs.constants.O_RDWR);
    }
    const stdinFd: number | 'ignore' = stdinFh?.fd ?? 'ignore';
    const outFd = fs.openSync(p.stdoutFile, fs.constants.O_WRONLY | fs.constants.O_APPEND);
    const errFd = fs.openSync(p.stderrFile, fs.constants.O_WRONLY | fs.constants.O_APPEND);
    // -C: descriptors the daemon leaks (Node keeps some without close-on-exec) never reach the container.
    const args = ['-q', '-F', '-C', '-n', id, '-P', p.lxcPath, '-f', path.join(p.dir, 'config'), '--', ...argv];
    const lxcStart = this.#tool(bin, 'lxc-start');
    const started = Date.now();
    let child: ChildProcess;
    try {
      if (p.terminal) {
        // script(1) gives lxc-start a pty (raw: the console's own pty does the line discipline);
        // lxc relays the container's console to it. script stays as the monitor's parent.
        const cmd = `stty raw -echo -onlcr; exec ${[lxcStart, ...args].map(shQuote).join(' ')}`;
        this.#log.debug({ container: id, argv: ['script', '-c', cmd] }, 'spawning lxc-start on a pty');
        child = spawn('script', ['-q', '-e', '-E', 'never', '-c', cmd, '/dev/null'], { stdio: [stdinFd, outFd, errFd], detached: true, env: { PATH: CHILD_PATH, SHELL: '/bin/sh' }, cwd: '/' });
      } else {
        this.#log.debug({ container: id, argv: [lxcStart, ...args] }, 'spawning lxc-start');
        child = spawn(lxcStart, args, { stdio: [stdinFd, outFd, errFd], detached: true, env: { PATH: CHILD_PATH }, cwd: '/' });
      }
    } finally {
      fs.closeSync(outFd);
      fs.closeSync(errFd);
      await stdinFh?.close();
    }
    await live.pump.stdin?.started();
    let exited: number | null | undefined;
    child.on('exit', (code, sig) => { exited = code ?? (sig !== null ? 128 + signalNumber(sig) : null); });
    child.on('error', () => { exited = -1; });
    child.unref();
    live.monitorChild = child;
    const monitorPid = child.pid ?? 0;

    // Started = the init exec'd (its /proc/<pid>/exe is no longer lxc-start), or it already exited.
    const deadline = Date.now() + this.#timeoutMs;
    let init: ProcessIdentity | undefined;
    for (let interval = 2; ; interval = Math.min(interval * 2, 20)) {
      if (opts.signal.aborted || Date.now() > deadline) {
        await this.#killMonitor(id, p, monitorPid);
        throw new IsulaError(opts.signal.aborted ? 'CANCELED' : 'RUNTIME_FAILED', `runtime ${this.name}: container ${id} did not start within ${this.#timeoutMs} ms`);
      }
      const pid = Number((await fsp.readFile(path.join(p.dir, 'pid'), 'utf8').catch(() => '')).trim());
      if (pid > 0) {
        const exe = await fsp.readlink(`/proc/${pid}/exe`).catch(() => undefined);
        if (exe !== undefined && exe !== lxcStart && !exe.endsWith('/lxc-start')) {
          init = await identify(pid);
          if (init) break;
        }
      }
      // lxc's log (large at INFO: seccomp) is read only once the container is over: its exit
      // file exists (the stop hook also runs when the exec failed) or lxc-start has gone.
      const over = await exists(path.join(p.dir, 'exit'));
      if (over || exited !== undefined) {
        if (!over) await sleep(20); // lxc-start failed before the stop hook could run
        const log = await fsp.readFile(logFile, 'utf8').catch(() => '');
        const failure = execFailure(log);
        if (failure !== undefined) {
          await this.#reapFailedStart(id, p, monitorPid, () => exited !== undefined);
          const code = failure.errno === 'ENOENT' ? 'CONTAINER_CMD_NOT_FOUND' : failure.errno === 'EACCES' ? 'CONTAINER_CMD_NOT_EXECUTABLE' : 'RUNTIME_FAILED';
          throw new IsulaError(code, `runtime ${this.name}: ${failure.message}`, { details: { runtime: this.name, reason: failure.message } });
        }
        if (over && !/Failed to spawn container/.test(log)) {
          // Ran and exited already (echo hello): started, as far as the caller is concerned.
          init = pid > 0 ? { pid, startTime: -1 } : undefined;
          break;
        }
        if (exited !== undefined || /Failed to spawn container/.test(log)) {
          const reason = lastErrors(log) || `lxc-start exited with ${String(exited)}`;
          await this.#reapFailedStart(id, p, monitorPid, () => exited !== undefined);
          throw new IsulaError('RUNTIME_FAILED', `runtime ${this.name} failed to start container ${id}: ${reason}`, { details: { runtime: this.name, reason } });
        }
      }
      await sleep(interval);
    }
    const monitor = (await identify(monitorPid)) ?? null;
    const st: RunState = { schemaVersion: 1, monitor, init: init ?? null };
    await writeFileAtomic(path.join(p.dir, 'state.json'), JSON.stringify(st), { mode: 0o600 });
    live.pump.start();
    await this.#runDriverHooks(ref, p, 'poststart', init?.pid ?? 0);
    this.#log.info({ container: id, pid: init?.pid, monitorPid, durationMs: Date.now() - started }, 'container started');
  }

  /** After a failed start: lxc-start exits by itself (bounded wait), its leftovers go. */
  async #reapFailedStart(id: string, p: LxcPersisted, monitorPid: number, gone: () => boolean): Promise<void> {
    const deadline = Date.now() + 5000;
    while (!gone() && Date.now() < deadline) await sleep(10);
    if (!gone()) await this.#killMonitor(id, p, monitorPid);
    await removeCgroup(p.cgroupPath);
    await removeCgroup(p.monitorCgroup);
  }

  async #killMonitor(_id: string, p: LxcPersisted, monitorPid: number): Promise<void> {
    const m = await identify(monitorPid);
    const init = await this.#initOf(p);
    if (init) await signalProcess(init, 'SIGKILL');
    if (m) {
      if (!(await waitProcessGone(m, 3000))) {
        await signalProcess(m, 'SIGKILL');
        await waitProcessGone(m, 1000);
      }
    }
  }

  // ---- signals and state ---------------------------------------------------------

  async kill(ref: RuntimeContainerRef, opts: DriverCallOptions & { signal_: string | number; all?: boolean }): Promise<void> {
    const p = this.#persisted(ref);
    const n = signalNumber(opts.signal_);
    if (opts.all === true) {
      for (const pid of await cgroupPids(p.cgroupPath)) {
        try { process.kill(pid, n); } catch { /* gone */ }
      }
      return;
    }
    const init = await this.#initOf(p);
    // Killing a stopped container is not an error.
    if (init) await signalProcess(init, n);
  }

  async state(ref: RuntimeContainerRef, _opts: DriverCallOptions): Promise<RuntimeState> {
    const p = this.#persisted(ref);
    if (await exists(path.join(p.dir, 'exit'))) return { status: 'stopped', pid: 0 };
    const init = await this.#initOf(p);
    if (init && (await isSameProcess(init))) {
      const frozen = await freezerState(p.cgroupPath);
      return { status: frozen === 'FROZEN' || frozen === 'FREEZING' ? 'paused' : 'running', pid: init.pid };
    }
    const st = await readRunState(p.dir);
    return { status: st === undefined ? 'created' : 'stopped', pid: 0 };
  }

  wait(ref: RuntimeContainerRef, opts: DriverCallOptions): Promise<ExitStatus> {
    const id = checkId(ref.id);
    const p = this.#persisted(ref);
    const live = this.#liveOf(id, p);
    if (live.settled) return Promise.resolve(live.settled);
    live.waiting ??= this.#waitLoop(id, p, live).finally(() => { live.waiting = undefined; });
    return abortable(live.waiting, opts.signal, () => new IsulaError('CANCELED', `wait for container ${id} canceled`));
  }

  async #waitLoop(id: string, p: LxcPersisted, live: Live): Promise<ExitStatus> {
    let wake: (() => void) | undefined;
    let watcher: fs.FSWatcher | undefined;
    try {
      watcher = fs.watch(p.dir, { persistent: false }, (_e, f) => { if (f === 'exit') wake?.(); });
      watcher.on('error', () => {});
    } catch { /* poll only */ }
    try {
      let goneSince: number | undefined;
      for (;;) {
        if (this.#abort.signal.aborted) throw new IsulaError('CANCELED', 'runtime driver shut down');
        const status = await readExit(p.dir);
        if (status) {
          await live.pump.finish();
          live.settled = status;
          return status;
        }
        // No exit file: a monitor killed before its stop hook ran. Once both it and the init are gone, the code is lost.
        const st = await readRunState(p.dir);
        const alive = (await isSameProcess(st?.monitor)) || (await isSameProcess(await this.#initOf(p)));
        if (st !== undefined && !alive) {
          goneSince ??= Date.now();
          if (Date.now() - goneSince > 1000) {
            this.#log.warn({ container: id, exitCode: LOST_EXIT_CODE }, 'container and monitor gone without an exit file: recording a lost exit');
            await writeFileAtomic(path.join(p.dir, 'exit'), `${LOST_EXIT_CODE} 0\n`, { mode: 0o600 }).catch(() => {});
            continue;
          }
        }
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, 250);
          wake = () => { clearTimeout(t); resolve(); };
        });
      }
    } finally {
      watcher?.close();
    }
  }

  // ---- exec ------------------------------------------------------------------------

  async exec(
    ref: RuntimeContainerRef,
    opts: DriverCallOptions & { execId: string; process: OciProcess; stdio: StdioConfig; onStarted?: (pid: number, stream: StdioStream | undefined) => void },
  ): Promise<ExitStatus> {
    const id = checkId(ref.id);
    checkId(opts.execId);
    const p = this.#persisted(ref);
    const bin = await this.#binDir();
    const proc = opts.process;
    const args = ['-n', id, '-P', p.lxcPath, '--clear-env'];
    for (const e of Array.isArray(proc['env']) ? (proc['env'] as unknown[]) : []) if (typeof e === 'string' && e.includes('=')) args.push('-v', e);
    const user = (proc['user'] ?? {}) as { uid?: number; gid?: number };
    if (typeof user.uid === 'number') args.push('-u', String(user.uid));
    if (typeof user.gid === 'number') args.push('-g', String(user.gid));
    let argv = (proc.args ?? []).filter((a): a is string => typeof a === 'string');
    if (argv.length === 0) throw new IsulaError('CONTAINER_CONFIG_INVALID', 'exec needs a command');
    // lxc-attach has no working-directory option: a shell changes to it first (README).
    const cwd = typeof proc['cwd'] === 'string' ? proc['cwd'] : '/';
    if (cwd !== '/' && cwd !== '') argv = ['/bin/sh', '-c', 'cd -- "$0" && exec "$@"', cwd, ...argv];
    args.push('--', ...argv);
    // A terminal: util-linux `script` gives lxc-attach a pty as its stdin, so lxc-attach makes one in
    // the container and relays it (Node cannot make a pty). Output is then one stream, as a tty's.
    const attachArgv = [this.#tool(bin, 'lxc-attach'), ...args];
    const child = opts.stdio.terminal
      // The outer pty raw: the container's own pty does the line discipline (else "\r\r\n").
      ? spawn('script', ['-q', '-e', '-E', 'never', '-c', `stty raw -echo -onlcr; exec ${attachArgv.map(shQuote).join(' ')}`, '/dev/null'], {
        stdio: [opts.stdio.openStdin ? 'pipe' : 'ignore', 'pipe', 'pipe'],
        env: { PATH: CHILD_PATH, SHELL: '/bin/sh', TERM: envValue(proc, 'TERM') ?? 'xterm' },
        cwd: '/',
      })
      : spawn(attachArgv[0] as string, args, {
        stdio: [opts.stdio.openStdin ? 'pipe' : 'ignore', 'pipe', 'pipe'],
        env: { PATH: CHILD_PATH },
        cwd: '/',
      });
    const execKey = `${id}/${opts.execId}`;
    if (opts.stdio.terminal && child.pid !== undefined) this.#ttyExecs.set(execKey, child.pid);
    const exitedAt = new Promise<ExitStatus>((resolve, reject) => {
      child.on('error', (err) => { this.#ttyExecs.delete(execKey); reject(new IsulaError('RUNTIME_FAILED', `lxc-attach failed: ${err.message}`, { cause: err })); });
      child.on('close', (code, sig) => {
        this.#ttyExecs.delete(execKey);
        resolve({ exitCode: code ?? (sig !== null ? 128 + signalNumber(sig) : LOST_EXIT_CODE), exitedAt: new Date() });
      });
    });
    const stream = new ChildStream(child);
    if (opts.onStarted !== undefined) opts.onStarted(child.pid ?? 0, stream);
    else stream.close();
    const size = proc['consoleSize'] as { height?: number; width?: number } | undefined;
    if (opts.stdio.terminal && size?.height !== undefined && size.width !== undefined) {
      void this.resize(ref, { signal: opts.signal, execId: opts.execId, rows: size.height, cols: size.width }).catch(() => {});
    }
    return exitedAt;
  }

  async attach(ref: RuntimeContainerRef, _opts: DriverCallOptions): Promise<StdioStream> {
    const id = checkId(ref.id);
    const p = this.#persisted(ref);
    const live = this.#liveOf(id, p);
    if (live.settled) throw new IsulaError('CONTAINER_STATE_CONFLICT', `container ${id} has exited`);
    return live.pump.attach();
  }

  /**
   * An exec's terminal: the pty `script` made for lxc-attach gets the size (stty), the kernel
   * signals lxc-attach (SIGWINCH), which resizes the container's pty. Containers themselves have
   * no terminal from this driver (README): nothing to resize.
   */
  async resize(ref: RuntimeContainerRef, opts: DriverCallOptions & { execId?: string; rows: number; cols: number }): Promise<void> {
    let scriptPid: number | undefined;
    if (opts.execId === undefined) {
      const p = this.#persisted(ref);
      if (!p.terminal) return;
      scriptPid = (await readRunState(p.dir))?.monitor?.pid;
    } else {
      scriptPid = this.#ttyExecs.get(`${ref.id}/${opts.execId}`);
    }
    if (scriptPid === undefined) return;
    // script forks lxc-start/lxc-attach on its pty a moment after it starts: seconds on a loaded
    // host (a CI run lost `run -it`'s first size to a 2 s limit), and a size lost is not sent again.
    const deadline = Date.now() + RESIZE_FIND_PTY_MS;
    let pty: string | undefined;
    while (pty === undefined && Date.now() < deadline) {
      const children = (await fsp.readFile(`/proc/${scriptPid}/task/${scriptPid}/children`, 'utf8').catch(() => '')).trim().split(/\s+/).filter(Boolean);
      for (const c of children) {
        const fd0 = await fsp.readlink(`/proc/${c}/fd/0`).catch(() => '');
        if (fd0.startsWith('/dev/pts/')) pty = fd0;
      }
      if (pty === undefined) await sleep(10);
    }
    if (pty === undefined) return;
    const what = opts.execId === undefined ? `container ${ref.id}` : `exec ${opts.execId}`;
    await run('stty', ['-F', pty, 'rows', String(opts.rows), 'cols', String(opts.cols)], 10_000).catch((err: unknown) => {
      throw new IsulaError('RUNTIME_FAILED', `cannot resize ${what}: ${(err as Error).message}`, { cause: err });
    });
    if (opts.execId === undefined) await this.#checkConsoleSize(ref, opts.rows, opts.cols);
  }

  /**
   * lxc-start copies the outer pty's size to the container's console on SIGWINCH; a CI run once
   * saw `run -it`'s first size never arrive. So the console is read back (its init's fd 0, bounded
   * 1 s) and, still different, set directly: the shell gets its SIGWINCH from the kernel either way.
   */
  async #checkConsoleSize(ref: RuntimeContainerRef, rows: number, cols: number): Promise<void> {
    const init = await this.#initOf(this.#persisted(ref));
    if (!init || !(await isSameProcess(init))) return;
    const consoleFd = `/proc/${init.pid}/fd/0`;
    const want = `${rows} ${cols}`;
    const deadline = Date.now() + 1000;
    for (;;) {
      const size = await new Promise<string | undefined>((resolve) => {
        execFile('stty', ['-F', consoleFd, 'size'], { timeout: 5000, env: { PATH: CHILD_PATH } }, (err, out) => resolve(err ? undefined : out.trim()));
      });
      if (size === undefined || size === want) return; // not a terminal (redirected), or arrived
      if (Date.now() > deadline) {
        this.#log.warn({ container: ref.id, size, want }, 'lxc did not pass the terminal size on; setting the console directly');
        await run('stty', ['-F', consoleFd, 'rows', String(rows), 'cols', String(cols)], 5000).catch((err: unknown) => {
          this.#log.warn({ container: ref.id, err }, 'cannot set the console size');
        });
        return;
      }
      await sleep(20);
    }
  }

  async pause(ref: RuntimeContainerRef, _opts: DriverCallOptions): Promise<void> {
    const p = this.#persisted(ref);
    await setFrozen(p.cgroupPath, true).catch((err: unknown) => { throw new IsulaError('RUNTIME_FAILED', `cannot pause ${ref.id}: ${(err as Error).message}`, { cause: err }); });
  }

  async resume(ref: RuntimeContainerRef, _opts: DriverCallOptions): Promise<void> {
    const p = this.#persisted(ref);
    await setFrozen(p.cgroupPath, false).catch((err: unknown) => { throw new IsulaError('RUNTIME_FAILED', `cannot resume ${ref.id}: ${(err as Error).message}`, { cause: err }); });
  }

  async update(ref: RuntimeContainerRef, opts: DriverCallOptions & { resources: ResourceUpdate }): Promise<void> {
    const p = this.#persisted(ref);
    const host = await this.#hostFacts();
    await updateResources(p.cgroupPath, opts.resources, host.bfq).catch((err: unknown) => {
      throw new IsulaError('RUNTIME_FAILED', `cannot update the resources of ${ref.id}: ${(err as Error).message}`, { cause: err });
    });
  }

  async stats(ref: RuntimeContainerRef, _opts: DriverCallOptions): Promise<ContainerStats> {
    return readStats(this.#persisted(ref).cgroupPath);
  }

  async pids(ref: RuntimeContainerRef, _opts: DriverCallOptions): Promise<number[]> {
    return cgroupPids(this.#persisted(ref).cgroupPath);
  }

  // ---- delete / restore -------------------------------------------------------------

  async delete(ref: RuntimeContainerRef, opts: DriverCallOptions & { force?: boolean }): Promise<void> {
    const id = checkId(ref.id);
    const p = this.#persistedOrDefault(ref);
    const init = await this.#initOf(p);
    const running = init !== undefined && (await isSameProcess(init)) && !(await exists(path.join(p.dir, 'exit')));
    if (running && opts.force !== true) throw new IsulaError('CONTAINER_STATE_CONFLICT', `container ${id} is running: stop it first or delete with force`);
    const st = await readRunState(p.dir);
    if (running) {
      // A frozen init cannot die: thaw first.
      await setFrozen(p.cgroupPath, false, 1000).catch(() => {});
      await signalProcess(init, 'SIGKILL');
    }
    if (st?.monitor && !(await waitProcessGone(st.monitor, 5000))) {
      this.#log.warn({ container: id, monitorPid: st.monitor.pid }, 'lxc monitor still running after the container\'s exit: killing it');
      await signalProcess(st.monitor, 'SIGKILL');
      await waitProcessGone(st.monitor, 1000);
    }
    const live = this.#live.get(id);
    if (live) {
      const status = (await readExit(p.dir)) ?? { exitCode: LOST_EXIT_CODE, exitedAt: new Date() };
      await live.pump.finish();
      live.settled ??= status;
    }
    if (st !== undefined) await this.#runDriverHooks(ref, p, 'poststop', 0);
    await this.#cleanup(id, p.dir, p.cgroupPath, p.monitorCgroup);
    await Promise.all([p.stdoutFile, p.stderrFile].map((f) => fsp.rm(f, { force: true })));
    this.#live.delete(id);
    this.#log.info({ container: id }, 'container deleted');
  }

  /** Everything lxc and this driver leave for a container id; idempotent. */
  async #cleanup(id: string, dir: string, cgroupPath: string, monitorCgroup: string): Promise<void> {
    const left = [...(await removeCgroup(cgroupPath)), ...(await removeCgroup(monitorCgroup))];
    // The shared pivot cgroup monitors move to at exit: removed once empty (busy: another monitor
    // is leaving through it; lxc makes it again when needed).
    await removeCgroup(path.posix.join(path.posix.dirname(monitorCgroup), 'lxc.pivot'), false);
    if (left.length > 0) this.#log.warn({ container: id, cgroups: left }, 'cgroups still busy after the container\'s exit');
    await fsp.rm(dir, { recursive: true, force: true });
  }

  async restore(ref: RuntimeContainerRef, _opts: DriverCallOptions): Promise<RuntimeState> {
    const id = checkId(ref.id);
    const p = this.#persisted(ref);
    const live = this.#live.get(id) ?? { pump: this.#newPump(p, await readOffsets(path.join(p.dir, 'offsets'))) };
    this.#live.set(id, live);
    live.pump.start();
    await live.pump.stdin?.started();
    if (await exists(path.join(p.dir, 'exit'))) return { status: 'stopped', pid: 0 };
    const init = await this.#initOf(p);
    if (init && (await isSameProcess(init))) {
      const st = await readRunState(p.dir);
      if (!(await isSameProcess(st?.monitor))) this.#log.warn({ container: id, pid: init.pid }, 'the lxc monitor is gone: the container runs unsupervised, its exit code will be lost');
      const frozen = await freezerState(p.cgroupPath);
      return { status: frozen === 'FROZEN' ? 'paused' : 'running', pid: init.pid };
    }
    const st = await readRunState(p.dir);
    if (st?.monitor) await waitProcessGone(st.monitor, 2000);
    if (!(await exists(path.join(p.dir, 'exit')))) {
      this.#log.warn({ container: id, exitCode: LOST_EXIT_CODE }, 'container exited without an exit file: recording a lost exit');
      await writeFileAtomic(path.join(p.dir, 'exit'), `${LOST_EXIT_CODE} 0\n`, { mode: 0o600 }).catch(() => {});
    }
    return { status: 'stopped', pid: 0 };
  }

  /** Stops following containers (they keep running). */
  async close(): Promise<void> {
    this.#abort.abort();
    await Promise.all([...this.#live.values()].map((l) => l.pump.close()));
    this.#live.clear();
  }

  // ---- helpers -------------------------------------------------------------------------

  async #initOf(p: LxcPersisted): Promise<ProcessIdentity | undefined> {
    // Once the exit file is there the pid may already belong to another process: never signal it.
    if (await exists(path.join(p.dir, 'exit'))) return undefined;
    const st = await readRunState(p.dir);
    if (st?.init && st.init.startTime >= 0) return st.init;
    const pid = Number((await fsp.readFile(path.join(p.dir, 'pid'), 'utf8').catch(() => '')).trim());
    return pid > 0 ? identify(pid) : undefined;
  }

  #liveOf(id: string, p: LxcPersisted): Live {
    let live = this.#live.get(id);
    if (!live) {
      live = { pump: this.#newPump(p, { stdout: 0, stderr: 0 }) };
      this.#live.set(id, live);
    }
    return live;
  }

  async #runDriverHooks(ref: RuntimeContainerRef, p: LxcPersisted, which: 'poststart' | 'poststop', pid: number): Promise<void> {
    let hooks: OciHook[] = [];
    try {
      hooks = (JSON.parse(await fsp.readFile(path.join(p.dir, 'hooks.json'), 'utf8')) as Record<string, OciHook[]>)[which] ?? [];
    } catch {
      return;
    }
    const state = JSON.stringify({ ociVersion: '1.0.2', id: ref.id, status: which === 'poststart' ? 'running' : 'stopped', pid, bundle: ref.bundle });
    for (const h of hooks) {
      await new Promise<void>((resolve) => {
        const c = execFile(h.path, (h.args ?? []).slice(1), { env: Object.fromEntries((h.env ?? []).map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)])), timeout: (h.timeout ?? 30) * 1000 }, (err) => {
          if (err) this.#log.warn({ err, container: ref.id, hook: h.path }, `OCI ${which} hook failed`);
          resolve();
        });
        c.stdin?.end(state);
      });
    }
  }

  #persisted(ref: RuntimeContainerRef): LxcPersisted {
    const p = parsePersisted(ref.persisted);
    if (p === undefined) throw new IsulaError('RUNTIME_FAILED', `container ${ref.id} has no lxc runtime data`);
    return p;
  }

  /** ref.persisted, or what this driver's layout implies (delete of a container whose create failed midway). */
  #persistedOrDefault(ref: RuntimeContainerRef): LxcPersisted {
    const id = checkId(ref.id);
    return parsePersisted(ref.persisted) ?? {
      schemaVersion: 1, dir: path.join(this.#lxcPath, id), lxcPath: this.#lxcPath, cgroupPath: `isulad/${id}`, monitorCgroup: `isulad/lxc.monitor.${id}`,
      stdoutFile: path.join(ref.containerDir, 'lxc-stdout'), stderrFile: path.join(ref.containerDir, 'lxc-stderr'),
      logPath: null, logSizeMaxBytes: null, openStdin: false, stdinOnce: false, terminal: false,
    };
  }
}

/** An exec's stdio over lxc-attach's pipes. */
class ChildStream implements StdioStream {
  readonly #child: ChildProcess;
  readonly #out: ((s: 1 | 2, c: Buffer) => void)[] = [];
  readonly #closeListeners: (() => void)[] = [];
  #pending: [1 | 2, Buffer][] = [];
  #open = 2;
  #closed = false;

  constructor(child: ChildProcess) {
    this.#child = child;
    const on = (s: 1 | 2) => (c: Buffer) => {
      if (this.#closed) return;
      if (this.#out.length === 0) this.#pending.push([s, c]);
      else for (const l of this.#out) l(s, c);
    };
    const end = () => { if (--this.#open === 0) this.#finish(); };
    child.stdout?.on('data', on(1)).on('end', end).on('error', end);
    child.stderr?.on('data', on(2)).on('end', end).on('error', end);
    child.stdin?.on('error', () => {});
  }

  onOutput(listener: (stream: 1 | 2, chunk: Buffer) => void): void {
    this.#out.push(listener);
    const pending = this.#pending;
    this.#pending = [];
    for (const [s, c] of pending) listener(s, c);
  }

  onClose(listener: () => void): void {
    if (this.#closed) queueMicrotask(listener);
    else this.#closeListeners.push(listener);
  }

  async writeStdin(chunk: Buffer): Promise<void> {
    const stdin = this.#child.stdin;
    if (!stdin || stdin.destroyed || stdin.writableEnded) return;
    await new Promise<void>((resolve) => stdin.write(chunk, () => resolve()));
  }

  async closeStdin(): Promise<void> {
    this.#child.stdin?.end();
  }

  close(): void {
    // Detach: the output is no longer wanted, the process goes on (drained so it never blocks).
    this.#out.length = 0;
    this.#pending = [];
    this.#child.stdout?.resume();
    this.#child.stderr?.resume();
    this.#finish();
  }

  #finish(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const l of this.#closeListeners.splice(0)) l();
  }
}

function envValue(proc: OciProcess, key: string): string | undefined {
  const env = Array.isArray(proc['env']) ? (proc['env'] as unknown[]) : [];
  const hit = env.find((e): e is string => typeof e === 'string' && e.startsWith(`${key}=`));
  return hit?.slice(key.length + 1);
}

function checkId(id: string): string {
  if (!ID.test(id)) throw new IsulaError('CONTAINER_CONFIG_INVALID', `invalid container or exec id ${JSON.stringify(id)}`);
  return id;
}

async function readExit(dir: string): Promise<ExitStatus | undefined> {
  const f = path.join(dir, 'exit');
  try {
    const [text, st] = await Promise.all([fsp.readFile(f, 'utf8'), fsp.stat(f)]);
    const parsed = parseExitFile(text);
    if (!parsed) return { exitCode: LOST_EXIT_CODE, exitedAt: st.mtime };
    return { exitCode: parsed.exitCode, exitedAt: st.mtime, ...(parsed.oomKills > 0 && { oomKilled: true }) };
  } catch {
    return undefined;
  }
}

async function readRunState(dir: string): Promise<RunState | undefined> {
  try {
    const v = JSON.parse(await fsp.readFile(path.join(dir, 'state.json'), 'utf8')) as Partial<RunState>;
    const ident = (x: unknown): ProcessIdentity | null => (typeof x === 'object' && x !== null && typeof (x as ProcessIdentity).pid === 'number' && typeof (x as ProcessIdentity).startTime === 'number' ? x as ProcessIdentity : null);
    return { schemaVersion: 1, monitor: ident(v.monitor), init: ident(v.init) };
  } catch {
    return undefined;
  }
}

function parsePersisted(v: unknown): LxcPersisted | undefined {
  if (typeof v !== 'object' || v === null) return undefined;
  const o = v as Record<string, unknown>;
  if (o['schemaVersion'] !== 1) return undefined;
  const s = (k: string) => (typeof o[k] === 'string' ? o[k] : undefined);
  const [dir, lxcPath, cgroupPath, monitorCgroup, stdoutFile, stderrFile] = ['dir', 'lxcPath', 'cgroupPath', 'monitorCgroup', 'stdoutFile', 'stderrFile'].map(s);
  if (dir === undefined || lxcPath === undefined || cgroupPath === undefined || monitorCgroup === undefined || stdoutFile === undefined || stderrFile === undefined) return undefined;
  return {
    schemaVersion: 1, dir, lxcPath, cgroupPath, monitorCgroup, stdoutFile, stderrFile,
    logPath: typeof o['logPath'] === 'string' ? o['logPath'] : null,
    logSizeMaxBytes: typeof o['logSizeMaxBytes'] === 'number' ? o['logSizeMaxBytes'] : null,
    openStdin: o['openStdin'] === true,
    stdinOnce: o['stdinOnce'] === true,
    terminal: o['terminal'] === true,
  };
}

async function exists(f: string): Promise<boolean> {
  return fsp.access(f).then(() => true, () => false);
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function run(cmd: string, args: string[], timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { timeout: timeoutMs, env: { PATH: CHILD_PATH } }, (err, _o, stderr) => {
      if (err) reject(new Error(`${cmd} ${args.join(' ')}: ${stderr.trim() || err.message}`));
      else resolve();
    });
  });
}

function abortable<T>(p: Promise<T>, signal: AbortSignal, err: () => Error): Promise<T> {
  if (signal.aborted) return Promise.reject(err());
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(err());
    signal.addEventListener('abort', onAbort, { once: true });
    p.then((v) => { signal.removeEventListener('abort', onAbort); resolve(v); }, (e: unknown) => { signal.removeEventListener('abort', onAbort); reject(e); });
  });
}
