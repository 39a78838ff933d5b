/**
 * Exec instances (Docker's `POST /containers/{id}/exec`, `/exec/{id}/start`,
 * `/exec/{id}/json`, `/exec/{id}/resize`): an extra process in a running
 * container, run by the container's runtime driver. Like Docker's, they live
 * in memory only; a finished one is kept a while for its exit code
 * (`/exec/{id}/json`), then dropped, and all of a container's go with it.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import type { OciProcess, StdioStream } from '../drivers/runtime.js';
import { IsulaError, toIsulaError } from '../errors.js';
import { allCapabilities, resolveUserInRootfs } from '../spec/index.js';
import type { ContainerManager } from './manager.js';
import { mergeEnv } from './manager.js';

/** The body of `POST /containers/{id}/exec` (Docker's ExecConfig). */
export interface ExecCreateBody {
  AttachStdin?: boolean;
  AttachStdout?: boolean;
  AttachStderr?: boolean;
  DetachKeys?: string;
  Tty?: boolean;
  Env?: string[] | null;
  Cmd?: string[] | null;
  Privileged?: boolean;
  User?: string;
  WorkingDir?: string;
  ConsoleSize?: [number, number] | null;
}

export interface ExecInstance {
  id: string;
  containerId: string;
  config: ExecCreateBody;
  running: boolean;
  /** null until it exited. */
  exitCode: number | null;
  pid: number;
  started: boolean;
  /** Settles when the process exited and its code is recorded. */
  done: Promise<void>;
  /** Resolves `done`. */
  finish: () => void;
  /** Set when it finished: used to drop it after KEEP_FINISHED_MS. */
  finishedAt?: number;
  /** A TTY size asked for before the process ran (a client resizes right after its start request). */
  size?: { rows: number; cols: number };
}

/** Where an attached exec's output goes; its stdin comes through `connected`. */
export interface ExecSink {
  write(stream: 1 | 2, chunk: Buffer): void;
  connected(stream: StdioStream): void;
}

/** A finished exec stays this long for `GET /exec/{id}/json` (Docker keeps it until the container goes). */
const KEEP_FINISHED_MS = 5 * 60_000;
/** Bound on exec instances per container, finished ones dropped first. */
const MAX_EXECS_PER_CONTAINER = 256;

export class ExecManager {
  readonly #containers: ContainerManager;
  readonly #log: Logger;
  readonly #execs = new Map<string, ExecInstance>();

  constructor(containers: ContainerManager, log: Logger) {
    this.#containers = containers;
    this.#log = log.child({ component: 'exec' });
    containers.onRemoved((id) => {
      for (const e of [...this.#execs.values()]) if (e.containerId === id) this.#execs.delete(e.id);
    });
  }

  create(idOrName: string, body: ExecCreateBody): { Id: string } {
    if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new IsulaError('API_BAD_REQUEST', 'the exec request body must be a JSON object');
    const cmd = body.Cmd ?? [];
    if (!Array.isArray(cmd) || cmd.length === 0 || cmd.some((c) => typeof c !== 'string')) throw new IsulaError('API_BAD_REQUEST', 'No exec command specified');
    if (body.Env !== undefined && body.Env !== null && (!Array.isArray(body.Env) || body.Env.some((e) => typeof e !== 'string'))) throw new IsulaError('API_BAD_REQUEST', 'Env must be a list of strings');
    for (const k of ['User', 'WorkingDir', 'DetachKeys'] as const) {
      if (body[k] !== undefined && body[k] !== null && typeof body[k] !== 'string') throw new IsulaError('API_BAD_REQUEST', `${k} must be a string`);
    }
    const size = body.ConsoleSize;
    if (size !== undefined && size !== null && (!Array.isArray(size) || size.length !== 2 || size.some((n) => !Number.isInteger(n) || n < 0 || n > 65535))) {
      throw new IsulaError('API_BAD_REQUEST', 'ConsoleSize must be [height, width]');
    }
    const record = this.#containers.find(idOrName).record;
    checkRunning(record.Id, record.State.Status);
    this.#prune(record.Id);
    const id = randomBytes(32).toString('hex');
    let finish!: () => void;
    const done = new Promise<void>((resolve) => { finish = resolve; });
    this.#execs.set(id, { id, containerId: record.Id, config: { ...body, Cmd: cmd }, running: false, exitCode: null, pid: 0, started: false, done, finish });
    this.#containers.emitEvent(record, `exec_create: ${cmd.join(' ')}`, { execID: id });
    return { Id: id };
  }

  get(execId: string): ExecInstance {
    const e = this.#execs.get(execId);
    if (e === undefined) throw new IsulaError('EXEC_NOT_FOUND', `No such exec instance: ${execId}`);
    return e;
  }

  /** Docker's `GET /exec/{id}/json`. */
  inspect(execId: string): Record<string, unknown> {
    const e = this.get(execId);
    const [entrypoint = '', ...args] = e.config.Cmd ?? [];
    return {
      CanRemove: false,
      ContainerID: e.containerId,
      DetachKeys: e.config.DetachKeys ?? '',
      ExitCode: e.exitCode,
      ID: e.id,
      OpenStderr: e.config.AttachStderr === true,
      OpenStdin: e.config.AttachStdin === true,
      OpenStdout: e.config.AttachStdout === true,
      ProcessConfig: { arguments: args, entrypoint, privileged: e.config.Privileged === true, tty: e.config.Tty === true, user: e.config.User ?? '' },
      Running: e.running,
      Pid: e.pid,
    };
  }

  /**
   * Starts an exec. With a sink the output is streamed to it (the process's
   * stdin through `sink.connected`); without one (Detach) it runs on its own
   * and only its log keeps the output. Resolves once the process started;
   * `instance.done` settles at its exit.
   */
  async start(execId: string, sink: ExecSink | undefined): Promise<ExecInstance> {
    const e = this.get(execId);
    if (e.started) throw new IsulaError('CONTAINER_STATE_CONFLICT', e.running ? `Exec command ${execId} is already running` : `Exec command ${execId} has already run`);
    e.started = true;
    let prepared;
    try {
      const { record, runtime, ref } = await this.#containers.driverOf(e.containerId);
      checkRunning(record.Id, record.State.Status);
      prepared = { record, runtime, ref, proc: await this.#process(ref.bundle, record.Rootfs, e.config) };
    } catch (err) {
      // As Docker's: an exec that could not start is over, with 126, and is pruned like any other.
      e.exitCode = 126;
      this.#finished(e);
      throw err;
    }
    const { record, runtime, ref, proc } = prepared;
    // Nobody reads an exec's log: its output goes to the attached client or nowhere (as Docker's detached exec).
    const stdio = {
      terminal: e.config.Tty === true,
      openStdin: e.config.AttachStdin === true && sink !== undefined,
      stdinOnce: true,
      logPath: path.join(ref.containerDir, 'exec', `${execId}.log`),
      noLog: true,
    };
    const cmd = (e.config.Cmd ?? []).join(' ');
    let onStarted!: (pid: number) => void;
    let onFailed!: (err: unknown) => void;
    const started = new Promise<number>((resolve, reject) => { onStarted = resolve; onFailed = reject; });
    const run = runtime.exec(ref, {
      signal: this.#containers.shutdownSignal,
      execId,
      process: proc,
      stdio,
      onStarted: (pid, stream) => {
        e.pid = pid;
        e.running = true;
        if (sink !== undefined && stream !== undefined) {
          stream.onOutput((s, chunk) => {
            if ((s === 1 && e.config.AttachStdout === true) || (s === 2 && e.config.AttachStderr === true)) sink.write(s, chunk);
          });
          sink.connected(stream);
        } else {
          // Detached: the driver's attach connection would only pile the output up.
          stream?.close();
        }
        onStarted(pid);
        const size = e.size;
        if (size !== undefined && e.config.Tty === true) {
          runtime.resize(ref, { signal: AbortSignal.timeout(10_000), execId, rows: size.rows, cols: size.cols })
            .catch((err: unknown) => this.#log.debug({ err, execId }, 'resizing a new exec failed'));
        }
      },
    });
    run.then(
      (status) => { e.exitCode = status.exitCode; },
      (err: unknown) => {
        onFailed(err);
        // Docker's codes for a command that could not be run: 127 not found, 126 otherwise.
        e.exitCode = toIsulaError(err).code === 'CONTAINER_CMD_NOT_FOUND' ? 127 : 126;
        this.#log.debug({ err, execId, container: record.Id }, 'exec failed');
      },
    ).finally(() => {
      const was = e.running;
      this.#finished(e);
      if (was) this.#containers.emitEvent(record, `exec_die`, { execID: execId, exitCode: String(e.exitCode ?? -1) });
    });
    // The request going away does not stop the process (as Docker's); the wait for its start is bounded by the driver.
    await started.catch((err: unknown) => { throw toIsulaError(err); });
    this.#containers.emitEvent(record, `exec_start: ${cmd}`, { execID: execId });
    return e;
  }

  #finished(e: ExecInstance): void {
    e.running = false;
    e.finishedAt = Date.now();
    e.finish();
  }

  async resize(execId: string, rows: number, cols: number, signal: AbortSignal): Promise<void> {
    const e = this.get(execId);
    if (!e.running && e.finishedAt === undefined) {
      // Not started yet: the size goes into the process's consoleSize, or is applied once it runs.
      e.size = { rows, cols };
      return;
    }
    if (!e.running) throw new IsulaError('CONTAINER_STATE_CONFLICT', `Exec ${execId} is not running`);
    const { runtime, ref } = await this.#containers.driverOf(e.containerId);
    await runtime.resize(ref, { signal, execId, rows, cols });
  }

  /** The exec's OCI process: the container's own, with the exec's command, env, cwd, user and tty. */
  async #process(bundle: string, rootfs: string | undefined, c: ExecCreateBody): Promise<OciProcess> {
    let base: OciProcess;
    try {
      const spec = JSON.parse(await fs.readFile(path.join(bundle, 'config.json'), 'utf8')) as { process?: OciProcess };
      base = spec.process ?? {};
    } catch (err) {
      throw new IsulaError('RUNTIME_FAILED', 'cannot read the container\'s OCI spec for exec', { cause: err });
    }
    const env = Array.isArray(base['env']) ? (base['env'] as string[]) : [];
    const proc: OciProcess = {
      ...base,
      args: c.Cmd ?? [],
      env: mergeEnv(env, c.Env ?? []),
      terminal: c.Tty === true,
    };
    delete proc['consoleSize'];
    const [h, w] = c.ConsoleSize ?? [0, 0];
    if (c.Tty === true && h > 0 && w > 0) proc['consoleSize'] = { height: h, width: w };
    if (c.WorkingDir !== undefined && c.WorkingDir !== '') {
      if (!c.WorkingDir.startsWith('/')) throw new IsulaError('API_BAD_REQUEST', `the working directory '${c.WorkingDir}' is invalid, it needs to be an absolute path`);
      proc['cwd'] = c.WorkingDir;
    }
    if (c.User !== undefined && c.User !== '') {
      if (rootfs === undefined) throw new IsulaError('RUNTIME_FAILED', 'the container has no root filesystem to resolve the user in');
      proc['user'] = await resolveUserInRootfs(rootfs, c.User);
    }
    if (c.Privileged === true) {
      const all = allCapabilities();
      proc['capabilities'] = { bounding: all, effective: all, permitted: all, inheritable: all, ambient: all };
      delete proc['selinuxLabel'];
      delete proc['apparmorProfile'];
    }
    return proc;
  }

  /** Drops finished execs past their time, and the oldest finished ones over the per-container bound. */
  #prune(containerId: string): void {
    const now = Date.now();
    const mine: ExecInstance[] = [];
    for (const e of this.#execs.values()) {
      if (e.finishedAt !== undefined && now - e.finishedAt > KEEP_FINISHED_MS) this.#execs.delete(e.id);
      else if (e.containerId === containerId) mine.push(e);
    }
    const finished = mine.filter((e) => e.finishedAt !== undefined).sort((a, b) => (a.finishedAt ?? 0) - (b.finishedAt ?? 0));
    while (mine.length >= MAX_EXECS_PER_CONTAINER && finished.length > 0) {
      const old = finished.shift() as ExecInstance;
      this.#execs.delete(old.id);
      mine.splice(mine.indexOf(old), 1);
    }
    if (mine.length >= MAX_EXECS_PER_CONTAINER) throw new IsulaError('CONTAINER_STATE_CONFLICT', `container ${containerId.slice(0, 12)} has ${mine.length} exec instances running`);
  }
}

function checkRunning(id: string, status: string): void {
  if (status === 'paused') throw new IsulaError('CONTAINER_STATE_CONFLICT', `Container ${id} is paused, unpause the container before exec`);
  if (status !== 'running') throw new IsulaError('CONTAINER_STATE_CONFLICT', `Container ${id} is not running`);
}
