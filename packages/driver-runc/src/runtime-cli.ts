/**
 * The OCI runtime command line (runc, crun, ...): `<path> [runtime-args]
 * --root <root> <command> ...`. Every call has a timeout and honours the
 * caller's AbortSignal; a failure becomes an IsulaError carrying argv, exit
 * code and stderr.
 */
import { execFile } from 'node:child_process';
import { IsulaError } from '@isula/core';
import type { RuntimeStatus } from '@isula/core';

/** What is needed to call one runtime; persisted so a restart finds the container with the same root. */
export interface RuntimeSpec {
  /** Runtime name as configured (`runc`, `crun`, a daemon.json `runtimes` key). */
  name: string;
  /** Absolute path of the binary. */
  path: string;
  /** The runtime's state directory (`--root`). */
  root: string;
  /** Extra global arguments from daemon.json `runtime-args`. */
  args: string[];
}

export interface RunOptions {
  signal?: AbortSignal;
  timeoutMs?: number;
  input?: string;
}

export interface RuntimeStateOutput {
  status: RuntimeStatus;
  pid: number;
}

export const DEFAULT_TIMEOUT_MS = 30_000;

/** Text a runtime prints when the container is unknown to it (runc: "does not exist"; crun: "No such file"). */
const NOT_EXIST = /does not exist|no such file or directory|not found/i;

export class RuntimeCli {
  constructor(readonly spec: RuntimeSpec) {}

  /** The global arguments that precede every command (also handed to conmon as `--runtime-arg`). */
  globalArgs(): string[] {
    return [...this.spec.args, `--root=${this.spec.root}`];
  }

  async run(command: string[], opts: RunOptions = {}): Promise<string> {
    const argv = [...this.globalArgs(), ...command];
    const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    return new Promise((resolve, reject) => {
      const child = execFile(
        this.spec.path,
        argv,
        { timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 16 * 1024 * 1024, ...(opts.signal ? { signal: opts.signal } : {}) },
        (err, stdout, stderr) => {
          if (!err) return resolve(stdout);
          const e = err as NodeJS.ErrnoException & { code?: string | number; killed?: boolean; signal?: string };
          const details = { runtime: this.spec.name, argv: [this.spec.path, ...argv], exitCode: typeof e.code === 'number' ? e.code : undefined, stderr };
          if (e.code === 'ENOENT' || e.code === 'EACCES') {
            return reject(new IsulaError('RUNTIME_UNAVAILABLE', `runtime ${this.spec.name}: cannot run ${this.spec.path}: ${e.code}`, { cause: err, details }));
          }
          if (e.name === 'AbortError' || opts.signal?.aborted) {
            return reject(new IsulaError('CANCELED', `runtime ${this.spec.name} ${command[0] ?? ''} canceled`, { cause: err, details }));
          }
          if (e.killed && e.signal === 'SIGKILL') {
            return reject(new IsulaError('TIMEOUT', `runtime ${this.spec.name} ${command[0] ?? ''} timed out after ${timeoutMs} ms`, { cause: err, details }));
          }
          reject(new IsulaError('RUNTIME_FAILED', `runtime ${this.spec.name} ${command.join(' ')} failed: ${cleanRuntimeMessage(stderr) || e.message}`, { cause: err, details }));
        },
      );
      if (opts.input !== undefined) child.stdin?.end(opts.input);
    });
  }

  /** `state`: a container the runtime does not know reports `stopped` with pid 0. */
  async state(id: string, opts: RunOptions = {}): Promise<RuntimeStateOutput> {
    let out: string;
    try {
      out = await this.run(['state', id], opts);
    } catch (err) {
      if (isNotExist(err)) return { status: 'stopped', pid: 0 };
      throw err;
    }
    return parseRuntimeState(out, this.spec.name, id);
  }

  /** `ps --format json`: the container's pids. */
  async pids(id: string, opts: RunOptions = {}): Promise<number[]> {
    return parsePids(await this.run(['ps', '--format', 'json', id], opts), this.spec.name, id);
  }

  async exists(id: string, opts: RunOptions = {}): Promise<boolean> {
    try {
      await this.run(['state', id], opts);
      return true;
    } catch (err) {
      if (isNotExist(err)) return false;
      throw err;
    }
  }
}

const STATUSES = ['created', 'running', 'paused', 'stopped'] as const;
const isPid = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v > 0;

function parseJson(out: string, runtime: string, what: string): unknown {
  try {
    return JSON.parse(out);
  } catch (err) {
    throw new IsulaError('RUNTIME_FAILED', `runtime ${runtime} ${what} printed invalid JSON: ${JSON.stringify(out.slice(0, 200))}`, { cause: err, details: { runtime } });
  }
}

/**
 * What `<runtime> state <id>` prints: an object with `status` and `pid`. A
 * status other than the four OCI ones (runc's `creating`, an empty one) counts
 * as `stopped`, as before; a live status without a usable pid, or output that
 * is not such an object, is RUNTIME_FAILED naming the runtime.
 */
export function parseRuntimeState(out: string, runtime: string, id: string): RuntimeStateOutput {
  const parsed = parseJson(out, runtime, `state ${id}`);
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new IsulaError('RUNTIME_FAILED', `runtime ${runtime} state ${id} printed no state object: ${JSON.stringify(out.slice(0, 200))}`, { details: { runtime } });
  }
  const { status: s, pid } = parsed as { status?: unknown; pid?: unknown };
  const status = STATUSES.find((x) => x === s) ?? 'stopped';
  if (status === 'stopped') return { status, pid: 0 };
  if (!isPid(pid)) throw new IsulaError('RUNTIME_FAILED', `runtime ${runtime} state ${id} says ${status} with an invalid pid ${JSON.stringify(pid) ?? 'undefined'}`, { details: { runtime } });
  return { status, pid };
}

/** What `<runtime> ps --format json <id>` prints: an array of pids (runc prints `null` for none). */
export function parsePids(out: string, runtime: string, id: string): number[] {
  const parsed = parseJson(out, runtime, `ps ${id}`);
  if (parsed === null) return [];
  if (!Array.isArray(parsed)) throw new IsulaError('RUNTIME_FAILED', `runtime ${runtime} ps ${id} printed no list of pids: ${JSON.stringify(out.slice(0, 200))}`, { details: { runtime } });
  return parsed.filter(isPid);
}

/** True when a RUNTIME_FAILED error says the container does not exist. */
export function isNotExist(err: unknown): boolean {
  if (!(err instanceof IsulaError) || err.code !== 'RUNTIME_FAILED') return false;
  const stderr = err.details?.['stderr'];
  return typeof stderr === 'string' && NOT_EXIST.test(stderr);
}

/** runc prints logrus lines (`time=... level=error msg="..."`): keep the message. */
export function cleanRuntimeMessage(text: string): string {
  const lines = text.split('\n').map((l) => l.trim()).filter((l) => l !== '');
  return lines
    .map((l) => {
      const m = /level=\w+ msg="((?:[^"\\]|\\.)*)"/.exec(l);
      // Go's %q escapes: a hook's stderr arrives as `…\n`; newlines and tabs become spaces.
      return m?.[1] !== undefined ? m[1].replace(/\\(.)/g, (_, c: string) => (c === 'n' || c === 't' ? ' ' : c)).trim() : l;
    })
    .join('; ');
}
