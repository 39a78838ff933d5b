/**
 * The kit's harness: a real isulad on temporary roots and socket, driven by
 * the real `isula` binary and by raw HTTP. The repo's own e2e tests use it
 * too (test/lib/harness.ts re-exports it).
 *
 * Interruption: each isulad runs in a session of its own, so a terminal's
 * ctrl-c (SIGINT to the foreground process group) reaches the test process
 * but not its daemons. The first daemon a process spawns installs SIGINT
 * and SIGTERM handlers there that tear down every daemon not yet torn down
 * (containers removed while the daemon is up, daemon stopped, mounts
 * detached, roots deleted), bounded by INTERRUPT_CLEANUP_MS, and then exit
 * with 128 + the signal's number (130, 143): the teardowns registered with
 * t.after() would never run, as node:test dies with its process. A program
 * that handles the signals itself calls leaveSignalsToCaller() first.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { programs } from './paths.js';

/** The bound on what an interrupted process does before it exits (removing containers, stopping daemons, unmounting). */
export const INTERRUPT_CLEANUP_MS = 30_000;
/** Daemons spawned and not yet torn down: what an interrupt tears down. */
const liveDaemons = new Set<TestDaemon>();
/** Other things an interrupt undoes (a tmux server), by onInterrupt(). */
const interruptCleanups = new Set<() => Promise<void>>();
let signalsLeftToCaller = false;
let handlersInstalled = false;
let interruptSignal: NodeJS.Signals | undefined;

/** The signal this process was interrupted by, once its handler ran (then no daemon starts any more). */
export function interruptedBy(): NodeJS.Signals | undefined {
  return interruptSignal;
}

/**
 * For a program that handles SIGINT and SIGTERM itself (isula-driver-tests'
 * command does, to report the run): TestDaemons then install no handler,
 * and those a daemon already installed are removed; the program calls
 * stopLiveDaemons(signal) when a signal comes.
 */
export function leaveSignalsToCaller(): void {
  signalsLeftToCaller = true;
  if (!handlersInstalled) return;
  handlersInstalled = false;
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
}

/** Registers `cleanup` to run if this process is interrupted; the function returned unregisters it. */
export function onInterrupt(cleanup: () => Promise<void>): () => void {
  installSignalHandlers();
  interruptCleanups.add(cleanup);
  return () => { interruptCleanups.delete(cleanup); };
}

function installSignalHandlers(): void {
  if (handlersInstalled || signalsLeftToCaller) return;
  handlersInstalled = true;
  // A listener keeps no process alive, and runs only on a signal: a run that is not interrupted is as before.
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
}

function onSignal(signal: NodeJS.Signals): void {
  // A repeated signal (ctrl-c pressed again) does not cut the teardown short: it is bounded.
  if (interruptSignal !== undefined) return;
  interruptSignal = signal;
  // The reporter's pipe may be gone (node --test's own process exits at once on ctrl-c): an EPIPE
  // on stdout or stderr must not end this process before its daemons are down.
  process.stdout.on('error', () => {});
  process.stderr.on('error', () => {});
  void stopLiveDaemons(signal).finally(() => process.exit(128 + (os.constants.signals[signal] ?? 0)));
}

/**
 * Tears down every daemon this process spawned whose teardown has not run,
 * all at once, each as newDaemon's teardown does but removing its
 * containers first; and runs what onInterrupt() registered. After
 * `timeoutMs` a daemon still running is killed (SIGKILL) and this returns.
 * From then on this process counts as interrupted by `signal`
 * (interruptedBy()): no daemon or root is made any more, and the
 * containers are listed again after a removal.
 */
export async function stopLiveDaemons(signal: NodeJS.Signals, timeoutMs = INTERRUPT_CLEANUP_MS): Promise<void> {
  interruptSignal ??= signal;
  // Half the bound for each isula call: stop() takes up to 10 s more.
  const work = [
    ...[...interruptCleanups].map((c) => c()),
    ...[...liveDaemons].map((d) => d.teardown({ beforeStop: (x) => x.removeContainers(Math.floor(timeoutMs / 2)) })),
  ];
  let timer: NodeJS.Timeout | undefined;
  const timedOut = await Promise.race([
    Promise.allSettled(work).then(() => false),
    new Promise<boolean>((resolve) => { timer = setTimeout(() => resolve(true), timeoutMs); }),
  ]);
  clearTimeout(timer);
  if (timedOut) {
    for (const d of liveDaemons) if (d.isRunning) d.proc?.kill('SIGKILL');
  }
}

function refuseIfInterrupted(what: string): void {
  if (interruptSignal !== undefined) throw new Error(`interrupted by ${interruptSignal}: ${what}`);
}

/** The isulad script under test (@isula/core's bin, or ISULA_KIT_ISULAD). */
export const ISULAD = programs().isulad;
/** The isula CLI under test (@isula/cli's bin, or ISULA_KIT_ISULA). */
export const ISULA = programs().isula;

/** Polls `check` until it returns a truthy value or the deadline passes. */
export async function waitFor<T>(check: () => Promise<T> | T, { timeoutMs = 5000, intervalMs = 25, what = 'condition' } = {}): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

export async function tempRoot(prefix = 'isula-e2e-'): Promise<string> {
  refuseIfInterrupted('no new root is made');
  return fs.mkdtemp(path.join(os.tmpdir(), prefix));
}

export interface HttpResult {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** One raw HTTP request over the unix socket. */
export function httpRequest(socketPath: string, method: string, urlPath: string, body?: string | Buffer, headers: Record<string, string> = {}): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath, method, path: urlPath, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs a Node script with this Node (24) and collects its output; killed after 60 s (generous: the
 * suite runs two files at once on two cores). `detached`: in a process group of its own (runDetached).
 */
export function runNode(script: string, args: string[], options: { env?: NodeJS.ProcessEnv; timeoutMs?: number; detached?: boolean } = {}): Promise<RunResult> {
  if (options.detached === true) return runDetached(process.execPath, [script, ...args], options);
  return new Promise((resolve) => {
    execFile(process.execPath, [script, ...args], { env: options.env ?? process.env, timeout: options.timeoutMs ?? 60_000 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1;
      resolve({ code, stdout, stderr });
    });
  });
}

/**
 * Runs `file` in a process group of its own and collects its output, as
 * execFile does (which cannot detach): SIGTERM after `timeoutMs` (60 s),
 * code 1 when it could not run or a signal ended it. For teardown: a
 * terminal's second ctrl-c goes to its foreground process group, which
 * would kill a helper there (an `isula rm -f`, a `umount`) mid-teardown.
 */
export function runDetached(file: string, args: string[], options: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = spawn(file, args, { env: options.env ?? process.env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => { stdout += c.toString('utf8'); });
    child.stderr.on('data', (c: Buffer) => { stderr += c.toString('utf8'); });
    const timer = setTimeout(() => child.kill('SIGTERM'), options.timeoutMs ?? 60_000);
    let failed = false;
    child.on('error', (err) => { failed = true; stderr += err.message; });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: !failed && code !== null ? code : 1, stdout, stderr });
    });
  });
}

export class TestDaemon {
  readonly root: string;
  readonly state: string;
  readonly graph: string;
  readonly socket: string;
  readonly configFile: string;
  proc: ChildProcess | undefined;
  stderr = '';
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }> | undefined;
  #teardown: Promise<void> | undefined;

  constructor(root: string) {
    this.root = root;
    this.state = path.join(root, 'state');
    this.graph = path.join(root, 'graph');
    this.socket = path.join(this.state, 'isulad.sock');
    this.configFile = path.join(root, 'daemon.json');
  }

  get host(): string {
    return `unix://${this.socket}`;
  }

  /** Writes daemon.json (an object, or raw text for syntax-error tests). */
  async writeConfig(config: Record<string, unknown> | string): Promise<void> {
    await fs.writeFile(this.configFile, typeof config === 'string' ? config : JSON.stringify(config, null, 2));
  }

  /** Is the isulad last spawned still running? */
  get isRunning(): boolean {
    return this.proc !== undefined && this.proc.exitCode === null && this.proc.signalCode === null;
  }

  /**
   * Spawns isulad; does not wait for it to be ready. It runs in a session
   * of its own (the module's doc says why); this process tears it down if
   * interrupted.
   */
  spawn(extraArgs: string[] = []): void {
    refuseIfInterrupted('isulad is not started');
    const args = [ISULAD, '--config-file', this.configFile, '--state', this.state, '--graph', this.graph, ...extraArgs];
    // Handlers first: a signal between the spawn and their install would end this process and
    // leave the daemon, in a session of its own, running.
    installSignalHandlers();
    const proc = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'], detached: true });
    liveDaemons.add(this);
    this.proc = proc;
    proc.stderr?.on('data', (c: Buffer) => { this.stderr += c.toString('utf8'); });
    this.exit = new Promise((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal })));
  }

  /** Spawns isulad and waits until `/_ping` answers. */
  async start(extraArgs: string[] = []): Promise<void> {
    this.spawn(extraArgs);
    const exited = this.exit!.then((e) => { throw new Error(`isulad exited early (${e.code ?? e.signal}): ${this.stderr}`); }); // set by spawn
    await Promise.race([
      exited,
      waitFor(async () => {
        // Gone (a failed start, or stopped by an interrupt): `exited` says why; stop polling.
        if (!this.isRunning) throw new Error('isulad exited');
        return (await httpRequest(this.socket, 'GET', '/_ping').catch(() => undefined))?.status === 200;
      }, { timeoutMs: 60_000, what: 'isulad to answer /_ping' }),
    ]);
    exited.catch(() => {});
  }

  /** Waits for the daemon to exit on its own (failed start). */
  async exited(timeoutMs = 10000): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    if (this.exit === undefined) throw new Error('daemon not spawned');
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error('isulad did not exit')), timeoutMs); });
    try {
      return await Promise.race([this.exit, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** SIGTERM and wait; SIGKILL if it does not stop in time. */
  async stop(): Promise<{ code: number | null; signal: NodeJS.Signals | null } | undefined> {
    const proc = this.proc;
    if (proc === undefined || this.exit === undefined) return undefined;
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
    try {
      return await this.exited(10000);
    } catch {
      proc.kill('SIGKILL');
      return this.exit;
    }
  }

  isula(args: string[], env: NodeJS.ProcessEnv = {}): Promise<RunResult> {
    return runNode(ISULA, ['-H', this.host, ...args], { env: { ...process.env, ...env } });
  }

  /**
   * Force-removes every container while the daemon runs (nothing when it
   * does not), each isula call bounded by `timeoutMs`. Once interrupted, it
   * lists again after a removal, a few times: the test still running (by
   * SIGTERM its isula calls live on) may have created one meanwhile.
   */
  async removeContainers(timeoutMs = 60_000): Promise<void> {
    // Detached: a second ctrl-c must not kill them mid-teardown (runDetached says why).
    const options = { env: process.env, timeoutMs, detached: true };
    for (let round = 0; round < 3 && this.isRunning; round++) {
      const ps = await runNode(ISULA, ['-H', this.host, 'ps', '-aq', '--no-trunc'], options);
      const ids = ps.stdout.split('\n').filter((l) => l !== '');
      if (ps.code !== 0 || ids.length === 0) return;
      await runNode(ISULA, ['-H', this.host, 'rm', '-f', ...ids], options);
      if (interruptSignal === undefined) return;
    }
  }

  /**
   * The end of a daemon's life: `beforeStop` (errors ignored; removing the
   * containers, say), stop, what a runtime left (reapLeftovers), the roots
   * deleted. Once: a second call (a test's teardown while an interrupt's
   * runs) waits for the first.
   */
  teardown(opts: { beforeStop?: (d: TestDaemon) => Promise<void> } = {}): Promise<void> {
    this.#teardown ??= (async () => {
      try {
        await opts.beforeStop?.(this).catch(() => {});
        await this.stop();
        await reapLeftovers(this);
        await fs.rm(this.root, { recursive: true, force: true });
      } finally {
        liveDaemons.delete(this);
      }
    })();
    return this.#teardown;
  }

  async log(): Promise<string> {
    return fs.readFile(path.join(this.state, 'isulad.log'), 'utf8').catch(() => '');
  }
}

/** A daemon on fresh temporary roots whose teardown is registered on the test. */
export async function newDaemon(t: { after(fn: () => Promise<void>): void }, opts: { beforeStop?: (d: TestDaemon) => Promise<void> } = {}): Promise<TestDaemon> {
  const d = new TestDaemon(await tempRoot());
  t.after(() => d.teardown(opts));
  return d;
}

/**
 * What a test that failed with its daemon down (a kill -9 test) would leave
 * on the host: its containers are deleted with their runtime (which kills
 * them; their conmons then exit), then mounts under the roots are detached.
 * Each command runs detached (runDetached), out of a second ctrl-c's reach.
 */
export async function reapLeftovers(d: TestDaemon): Promise<void> {
  for (const runtime of ['runc', 'crun']) {
    const root = path.join(d.state, 'runtime', runtime);
    for (const id of await fs.readdir(root).catch(() => [] as string[])) {
      await runDetached(runtime, ['--root', root, 'delete', '--force', id], { timeoutMs: 10_000 });
    }
  }
  const info = await fs.readFile('/proc/self/mountinfo', 'utf8').catch(() => '');
  const mounts = info.split('\n').map((l) => l.split(' ')[4] ?? '').filter((m) => m.startsWith(`${d.root}/`)).reverse();
  for (const m of mounts) await runDetached('umount', ['-l', m], { timeoutMs: 10_000 });
}
