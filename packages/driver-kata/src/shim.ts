/**
 * A containerd runtime shim v2 binary: its `start` handshake, its `delete`
 * fallback, and a typed client of its task service.
 *
 * `start` (cwd = bundle): the shim forks a daemon of itself that serves
 * `containerd.task.v2.Task` on a unix socket, writes `<bundle>/address`, and
 * prints that address on stdout, either raw (`unix:///run/containerd/s/<hash>`)
 * or as JSON `{"version":2,"address":...,"protocol":"ttrpc"}` (newer shims);
 * both are accepted. The daemon logs into the `<bundle>/log` FIFO, which the
 * caller must drain (an unread FIFO blocks the shim). Verified with
 * containerd-shim-runc-v2 1.6.20 (PLATFORM.md §5).
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { IsulaError } from '@isula/core';
import { decode, encode, exitTime } from './protos.js';
import { TtrpcClient } from './ttrpc.js';

export const TASK_SERVICE = 'containerd.task.v2.Task';
const SEARCH_DIRS = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];

/**
 * `io.containerd.kata.v2` → `containerd-shim-kata-v2`, as containerd names
 * shims (the part between `io.containerd.` and the version, dots as dashes).
 * The version is the shim's own (gVisor's `io.containerd.runsc.v1` is
 * `containerd-shim-runsc-v1`, which speaks this same task API); containerd's
 * legacy `io.containerd.runtime.v1.linux` is another protocol and not claimed.
 * Undefined for a name that is not a shim runtime name.
 */
export function shimBinaryName(runtime: string): string | undefined {
  const m = /^io\.containerd\.([A-Za-z0-9_.-]+)\.(v\d+)$/.exec(runtime);
  if (!m || m[1] === undefined || m[1].startsWith('runtime.')) return undefined;
  return `containerd-shim-${m[1].replaceAll('.', '-')}-${m[2]}`;
}

/** A binary name or path → an executable path (PATH, then the usual sbin/bin dirs). */
export async function findExecutable(wanted: string): Promise<string | undefined> {
  const candidates = wanted.includes('/')
    ? [wanted]
    : [...(process.env['PATH'] ?? '').split(':').filter(Boolean), ...SEARCH_DIRS].map((d) => path.join(d, wanted));
  for (const c of candidates) {
    try {
      await fs.access(c, fs.constants.X_OK);
      if ((await fs.stat(c)).isFile()) return c;
    } catch { /* next */ }
  }
  return undefined;
}

export interface ShimArgs {
  binary: string;
  namespace: string;
  /** The containerd address the shim is told (`-address`); it only feeds the socket name hash. */
  address: string;
  /** Where the shim publishes events: our events server ($TTRPC_ADDRESS). */
  ttrpcAddress: string;
  id: string;
  bundle: string;
  debug?: boolean;
  timeoutMs: number;
  signal?: AbortSignal;
}

function shimEnv(a: ShimArgs): NodeJS.ProcessEnv {
  return {
    PATH: process.env['PATH'] ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    TTRPC_ADDRESS: a.ttrpcAddress,
    GRPC_ADDRESS: a.address,
    NAMESPACE: a.namespace,
    MAX_SHIM_VERSION: '2',
  };
}

function globalArgs(a: ShimArgs): string[] {
  return ['-namespace', a.namespace, '-address', a.address, '-publish-binary', '/bin/false', '-id', a.id, ...(a.debug ? ['-debug'] : [])];
}

/**
 * Runs the shim binary once (start / delete). stdin is /dev/null: `start`
 * reads runtime options from stdin and would wait forever on an open pipe.
 */
function run(a: ShimArgs, args: string[], cwd = a.bundle): Promise<{ stdout: Buffer; stderr: string }> {
  return new Promise((resolve, reject) => {
    // PWD: Go's os.Getwd() trusts it when it names the cwd, so a symlinked cwd keeps its name.
    const child = spawn(a.binary, args, { cwd, env: { ...shimEnv(a), PWD: cwd }, stdio: ['ignore', 'pipe', 'pipe'], ...(a.signal && { signal: a.signal }) });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let size = 0;
    child.stdout.on('data', (c: Buffer) => { if ((size += c.length) <= 1 << 20) out.push(c); });
    child.stderr.on('data', (c: Buffer) => { if ((size += c.length) <= 1 << 20) err.push(c); });
    const timer = setTimeout(() => child.kill('SIGKILL'), a.timeoutMs);
    const fail = (reason: string, cause?: unknown) => {
      const stderr = Buffer.concat(err).toString('utf8');
      reject(new IsulaError('RUNTIME_FAILED', `${path.basename(a.binary)} ${args.at(-1) ?? ''} failed: ${lastLines(stderr) || reason}`, { ...(cause !== undefined && { cause }), details: { argv: [a.binary, ...args], stderr } }));
    };
    child.on('error', (e) => { clearTimeout(timer); fail(e.message, e); });
    child.on('close', (code, sig) => {
      clearTimeout(timer);
      if (code === 0) resolve({ stdout: Buffer.concat(out), stderr: Buffer.concat(err).toString('utf8') });
      else fail(sig !== null ? `killed by ${sig}${sig === 'SIGKILL' ? ` (timeout ${a.timeoutMs} ms?)` : ''}` : `exit status ${code}`);
    });
  });
}

function lastLines(text: string): string {
  return text.split('\n').map((l) => l.trim()).filter(Boolean).slice(-3).join('; ');
}

/** Longer than any socket address a shim prints (sun_path is 108 bytes; ours reach further through /proc/self/fd). */
const MAX_ADDRESS_BYTES = 4096;
/** A unix socket address: `unix://` and an absolute path, or the path alone; no spaces or control characters. */
const ADDRESS = /^(unix:\/\/)?\/[^\s\0-\x1f\x7f]+$/;

/** A shim's socket address, or RUNTIME_FAILED naming where it came from (`what`). */
export function checkAddress(address: string, what: string): string {
  if (Buffer.byteLength(address) > MAX_ADDRESS_BYTES || !ADDRESS.test(address)) {
    throw new IsulaError('RUNTIME_FAILED', `${what} is not a unix socket address: ${JSON.stringify(address.slice(0, 200))}`);
  }
  return address;
}

/**
 * `<bundle>/address`, the shim's own record of its socket, read on restore.
 * Bounded and non-blocking (whatever is at that path); undefined when it is
 * missing or empty, RUNTIME_FAILED when it holds something else than an address.
 */
export async function readAddressFile(bundle: string): Promise<string | undefined> {
  const file = path.join(bundle, 'address');
  let fh: fs.FileHandle;
  try {
    fh = await fs.open(file, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new IsulaError('RUNTIME_FAILED', `cannot read the shim address file ${file}: ${(err as Error).message}`, { cause: err });
  }
  try {
    if (!(await fh.stat()).isFile()) throw new IsulaError('RUNTIME_FAILED', `the shim address file ${file} is not a regular file`);
    const buf = Buffer.alloc(MAX_ADDRESS_BYTES + 1);
    const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
    if (bytesRead > MAX_ADDRESS_BYTES) throw new IsulaError('RUNTIME_FAILED', `the shim address file ${file} is over ${MAX_ADDRESS_BYTES} bytes`);
    const text = buf.toString('utf8', 0, bytesRead).trim();
    return text === '' ? undefined : checkAddress(text, `the shim address file ${file}`);
  } finally {
    await fh.close();
  }
}

/** Parses what `start` prints: a raw address or `{version, address, protocol}`. */
export function parseStartOutput(out: string): { address: string; protocol: string; version: number } {
  const text = out.trim();
  if (text.startsWith('{')) {
    let j: unknown;
    try {
      j = JSON.parse(text);
    } catch (err) {
      throw new IsulaError('RUNTIME_FAILED', `shim start printed invalid JSON: ${JSON.stringify(text.slice(0, 200))}`, { cause: err });
    }
    const o = j as { address?: unknown; protocol?: unknown; version?: unknown };
    if (typeof o.address !== 'string' || o.address === '') throw new IsulaError('RUNTIME_FAILED', `shim start printed no address: ${text.slice(0, 200)}`);
    const protocol = typeof o.protocol === 'string' && o.protocol !== '' ? o.protocol : 'ttrpc';
    if (protocol !== 'ttrpc') throw new IsulaError('RUNTIME_FAILED', `shim speaks ${protocol}; only ttrpc is supported`);
    return { address: checkAddress(o.address, 'the address shim start printed'), protocol, version: typeof o.version === 'number' ? o.version : 2 };
  }
  if (!/^(unix:\/\/)?\/\S+$/.test(text)) throw new IsulaError('RUNTIME_FAILED', `shim start printed no address: ${JSON.stringify(text.slice(0, 200))}`);
  return { address: checkAddress(text, 'the address shim start printed'), protocol: 'ttrpc', version: 2 };
}

/** `<shim> start`: spawns the shim daemon for one task; resolves with its address. */
export async function startShim(a: ShimArgs): Promise<string> {
  const { stdout } = await run(a, [...globalArgs(a), 'start']);
  return parseStartOutput(stdout.toString('utf8')).address;
}

/**
 * `<shim> delete`: the fallback when the shim is unreachable. It kills and
 * deletes the task with the runtime and unmounts the bundle's rootfs; prints
 * a DeleteResponse (exit status, time).
 */
export async function shimDelete(a: ShimArgs, linkDir: string): Promise<{ exitStatus: number; exitedAt: Date } | undefined> {
  // containerd's layout is <tasks>/<id> = bundle, and the runc shim finds the bundle as
  // dirname(cwd)/<id>. For a bundle named otherwise, run it from a symlink named <id>.
  let cwd = a.bundle;
  if (path.basename(a.bundle) !== a.id) {
    await fs.mkdir(linkDir, { recursive: true, mode: 0o700 });
    cwd = path.join(linkDir, a.id);
    await fs.rm(cwd, { force: true });
    await fs.symlink(a.bundle, cwd);
  }
  const { stdout: buf } = await run(a, [...globalArgs(a), '-bundle', a.bundle, 'delete'], cwd);
  if (buf.length === 0) return undefined;
  try {
    const r = decode<{ exit_status: number; exited_at: unknown }>('containerd.task.v2.DeleteResponse', buf);
    return { exitStatus: r.exit_status, exitedAt: exitTime(r.exited_at) };
  } catch {
    return undefined;
  }
}

export type TaskStatus = 'UNKNOWN' | 'CREATED' | 'RUNNING' | 'STOPPED' | 'PAUSED' | 'PAUSING';

export interface StateResponse {
  id: string;
  bundle: string;
  pid: number;
  status: TaskStatus;
  exit_status: number;
  exited_at: unknown;
  exec_id: string;
}

/** The task service of one shim, over one ttrpc connection. */
export class TaskClient {
  readonly client: TtrpcClient;
  readonly #timeoutMs: number;

  constructor(client: TtrpcClient, timeoutMs: number) {
    this.client = client;
    this.#timeoutMs = timeoutMs;
  }

  static async connect(address: string, namespace: string, timeoutMs: number): Promise<TaskClient> {
    return new TaskClient(await TtrpcClient.connect(address, { namespace, connectTimeoutMs: Math.min(timeoutMs, 5000) }), timeoutMs);
  }

  /** One RPC: request and response messages by their names in containerd.task.v2 (or full names). */
  async call<T = Record<string, unknown>>(method: string, reqType: string, req: Record<string, unknown>, resType: string, opts: { signal?: AbortSignal; timeoutMs?: number | null } = {}): Promise<T> {
    const full = (n: string) => (n.includes('.') ? n : `containerd.task.v2.${n}`);
    const timeoutMs = opts.timeoutMs === null ? undefined : (opts.timeoutMs ?? this.#timeoutMs);
    const payload = await this.client.call(TASK_SERVICE, method, encode(full(reqType), req), {
      ...(timeoutMs !== undefined && { timeoutMs }),
      ...(opts.signal && { signal: opts.signal }),
    });
    return decode<T>(full(resType), payload);
  }

  close(): void {
    this.client.close();
  }
}
