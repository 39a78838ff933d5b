/**
 * RuntimeDriver: what core asks of a container runtime family (an OCI runtime
 * CLI supervised by conmon, lxc, a containerd shim v2). Core owns the
 * container domain (ids, names, state machine, restart policy, persistence);
 * a driver owns its per-container monitor and persists, in the container's
 * directory, what it needs to find that monitor again after a daemon restart.
 *
 * Every method takes one options object with an AbortSignal. Unless stated
 * otherwise a method throws IsulaError: RUNTIME_UNAVAILABLE when the runtime's
 * binaries are missing, CONTAINER_NOT_FOUND style codes from the driver's
 * own table otherwise.
 */

/** The OCI runtime spec (config.json) as core generated it. Kept open: the spec evolves. */
export type OciSpec = Record<string, unknown> & { ociVersion: string };

/** An OCI `process` object (config.json's `process`, or an exec's process.json). */
export type OciProcess = Record<string, unknown> & { args?: string[]; terminal?: boolean };

export interface DriverCallOptions {
  signal: AbortSignal;
}

/** Where a container's (or exec's) stdio goes. */
export interface StdioConfig {
  /** Allocate a pseudo-terminal; stdout and stderr are then one stream. */
  terminal: boolean;
  /** Keep stdin open for attach clients. */
  openStdin: boolean;
  /** Close stdin after the first attach client detaches (docker `StdinOnce`). */
  stdinOnce: boolean;
  /**
   * Log file the monitor writes, in conmon's k8s-file format (read back by
   * core's `readLogs`). Ignored when `noLog` is set.
   */
  logPath: string;
  /** Plugin API 1.3: keep no log at all (docker's log-driver `none`); attach still streams. */
  noLog?: boolean;
  /**
   * Plugin API 1.3: when the log would grow past this many bytes the monitor
   * replaces it by an empty file (conmon's `--log-size-max`); core keeps the
   * replaced content through a hard link and rotates it (max-file).
   */
  logSizeMaxBytes?: number;
}

export interface RuntimeContainerRef {
  id: string;
  /** The container's own directory under the graph root: the driver may keep files here. */
  containerDir: string;
  /** The OCI bundle directory (holds config.json). */
  bundle: string;
  /** Driver-specific data the driver returned from `create`, persisted by core. */
  persisted?: Record<string, unknown>;
}

export type RuntimeStatus = 'created' | 'running' | 'paused' | 'stopped';

export interface RuntimeState {
  status: RuntimeStatus;
  /** Host pid of the container's init process, 0 when none. */
  pid: number;
}

export interface ExitStatus {
  exitCode: number;
  /** When the process exited. */
  exitedAt: Date;
  /** Set when the exit came from the OOM killer. */
  oomKilled?: boolean;
}

/** A duplex byte stream to a container's (or exec's) stdio, as attach and exec hand it out. */
export interface StdioStream {
  /** Output frames: 1 stdout, 2 stderr (docker's stream ids); tty output is all stdout. */
  onOutput(listener: (stream: 1 | 2, chunk: Buffer) => void): void;
  /** Called once when the container side is done (exit or detach). */
  onClose(listener: () => void): void;
  writeStdin(chunk: Buffer): Promise<void>;
  /** Half-close: the process reads EOF. */
  closeStdin(): Promise<void>;
  /** Detach without affecting the container. Idempotent. */
  close(): void;
}

export interface ResourceUpdate {
  memoryBytes?: number;
  memorySwapBytes?: number;
  cpuShares?: number;
  cpuQuota?: number;
  cpuPeriod?: number;
  cpusetCpus?: string;
  cpusetMems?: string;
  pidsLimit?: number;
  blkioWeight?: number;
}

export interface ContainerStats {
  readAt: Date;
  cpuUsageNs: number;
  memoryUsageBytes: number;
  memoryLimitBytes: number;
  pidsCurrent: number;
  /** Plugin API 1.3, optional: per-CPU usage (ns), as Docker's `percpu_usage`. */
  perCpuUsageNs?: number[];
  /** Plugin API 1.3, optional: peak memory usage. */
  memoryMaxUsageBytes?: number;
  /** Plugin API 1.3, optional: the memory controller's statistics (cgroup v1 `memory.stat` keys: cache, rss, total_inactive_file …). */
  memoryStat?: Record<string, number>;
  /** Plugin API 1.3, optional: bytes read and written per block device (`op` Read, Write, Total …). */
  blkioServiceBytes?: { major: number; minor: number; op: string; value: number }[];
  /** Anything else the runtime reports (blkio, network, hugetlb ...). */
  extra?: Record<string, unknown>;
}

export interface RuntimeDriver {
  /** Runtime family shown by `isula info` (e.g. "runc", "lxc", "shim-v2"). */
  readonly name: string;

  /**
   * Optional (plugin API 1.2): checks that the runtime can run containers on
   * this host — binaries present, host supported — so `create` can refuse
   * early with a reason (RUNTIME_UNAVAILABLE naming the runtime). Cheap after
   * the first call: drivers cache the answer.
   */
  probe?(opts: DriverCallOptions): Promise<void>;

  /**
   * Creates the container from `bundle` and starts its monitor; the user
   * process is not started yet. Returns what the driver must persist to find
   * the container again (monitor pid, socket paths). On failure nothing is
   * left running and the bundle is untouched.
   */
  create(ref: RuntimeContainerRef, opts: DriverCallOptions & { spec: OciSpec; stdio: StdioConfig }): Promise<{ persisted: Record<string, unknown>; pid?: number }>;

  /** Starts the user process of a created container. */
  start(ref: RuntimeContainerRef, opts: DriverCallOptions): Promise<void>;

  /** Sends a signal (number or name). Killing a stopped container is not an error. */
  kill(ref: RuntimeContainerRef, opts: DriverCallOptions & { signal_: string | number; all?: boolean }): Promise<void>;

  state(ref: RuntimeContainerRef, opts: DriverCallOptions): Promise<RuntimeState>;

  /** Resolves when the container's init process has exited. Safe to call many times. */
  wait(ref: RuntimeContainerRef, opts: DriverCallOptions): Promise<ExitStatus>;

  /** Runs an extra process in a running container; resolves with its exit status. */
  exec(ref: RuntimeContainerRef, opts: DriverCallOptions & { execId: string; process: OciProcess; stdio: StdioConfig; onStarted?: (pid: number, stream: StdioStream | undefined) => void }): Promise<ExitStatus>;

  attach(ref: RuntimeContainerRef, opts: DriverCallOptions): Promise<StdioStream>;
  resize(ref: RuntimeContainerRef, opts: DriverCallOptions & { execId?: string; rows: number; cols: number }): Promise<void>;
  pause(ref: RuntimeContainerRef, opts: DriverCallOptions): Promise<void>;
  resume(ref: RuntimeContainerRef, opts: DriverCallOptions): Promise<void>;
  update(ref: RuntimeContainerRef, opts: DriverCallOptions & { resources: ResourceUpdate }): Promise<void>;
  stats(ref: RuntimeContainerRef, opts: DriverCallOptions): Promise<ContainerStats>;
  /** Host pids of every process in the container. */
  pids(ref: RuntimeContainerRef, opts: DriverCallOptions): Promise<number[]>;

  /**
   * Optional (plugin API 1.6): makes the monitor of a running container
   * close its log file and open it again at `StdioConfig.logPath`, after the
   * caller moved the old file away (the CRI's ReopenContainerLog, with which
   * the kubelet rotates logs; conmon's ctl message `2 0 0`). Idempotent.
   * Drivers without it cannot have their logs rotated from outside.
   */
  reopenLog?(ref: RuntimeContainerRef, opts: DriverCallOptions): Promise<void>;

  /**
   * Removes the runtime's view of a stopped container and its monitor's
   * leftovers (cgroups, sockets). Idempotent: deleting twice is not an error.
   */
  delete(ref: RuntimeContainerRef, opts: DriverCallOptions & { force?: boolean }): Promise<void>;

  /**
   * Re-attaches to a container that outlived the daemon, from `ref.persisted`.
   * Returns its current state; a container that exited meanwhile reports
   * `stopped` and `wait` then yields its exit status.
   */
  restore(ref: RuntimeContainerRef, opts: DriverCallOptions): Promise<RuntimeState>;
}
