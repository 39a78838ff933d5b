/**
 * Runs the kit: a preflight daemon that must load the author's plugins (and
 * register the image format or network driver under test), then the suites'
 * file under node:test's run() (each spec starts its own private isulad on
 * temporary roots with the plugins listed in daemon.json), collected into a
 * KitReport. An interrupted run (KitRunOptions.signal) ends with the spec
 * process's daemons torn down and a partial report that says so.
 */
import { run } from 'node:test';
import { readFileSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { httpRequest, INTERRUPT_CLEANUP_MS, leaveSignalsToCaller, tempRoot, TestDaemon } from './harness.js';
import type { KitImageJson } from './kit-image.js';
import { countSpecs, type KitReport, type SpecResult } from './report.js';
import { defaultSuites, isRuntimeSuite, parseSuites } from './suites.js';

/** A daemon.json `plugins` entry: a package name, or the package with its options. */
export type PluginEntry = string | { package: string; options?: Record<string, unknown> };

export interface KitRunOptions {
  /**
   * The runtime under test (lifecycle, streams, tty need it). The image and
   * network suites' containers run under it too; without it they use runc,
   * and @isula/driver-runc is loaded.
   */
  runtime?: string;
  /** Packages to load besides @isula/image-oci (the author's plugin, and what it builds on). */
  plugins: PluginEntry[];
  /** daemon.json `plugin-dirs`: where the plugins are installed (default: the daemon's own). */
  pluginDirs?: string[];
  /** Other daemon.json keys every daemon gets (`cni-conf-dir` ...). */
  config?: Record<string, unknown>;
  /** Suites to run (default: lifecycle, streams, tty with a runtime, image with an image format, network with a network driver). */
  suites?: string[];
  /** The image format the image suite tests (`/info`'s ImageFormats), and the image it runs. */
  imageFormat?: string;
  kitImage?: KitImageJson;
  /** The network driver the network suite tests (/info's `Plugins.Network`). */
  networkDriver?: string;
  /** The bridge that network driver puts the containers' host interfaces on: the leak checks watch it. */
  bridge?: string;
  /** Test name → reason it does not apply to this runtime. */
  skipTests?: Record<string, string>;
  /** A docker-archive of busybox:latest (default: ISULA_KIT_BUSYBOX or the repo's image cache). */
  busybox?: string;
  /** Bound on each spec (default 10 minutes). */
  timeoutMs?: number;
  /** Called with each spec as it ends (progress). */
  onSpec?: (spec: SpecResult) => void;
  /**
   * Aborting it interrupts the run: its reason, a signal name (`SIGINT`,
   * `SIGTERM`; else SIGTERM), is sent to the spec process, which tears down
   * the daemons it started and exits; the preflight's daemon is stopped.
   * runKit then returns what ran, with `interrupted`. Passing it means the
   * caller handles SIGINT and SIGTERM: the harness installs no handler in
   * this process (leaveSignalsToCaller()).
   */
  signal?: AbortSignal;
}

const ENTRY = fileURLToPath(new URL('./entry.js', import.meta.url));
const IMAGE_OCI = '@isula/image-oci';
const DRIVER_RUNC = '@isula/driver-runc';

export function pluginName(p: PluginEntry): string {
  return typeof p === 'string' ? p : p.package;
}

/** The plugins besides image-oci: the given ones, after @isula/driver-runc when no runtime is named (containers run under runc). */
export function kitPlugins(opts: Pick<KitRunOptions, 'plugins' | 'runtime'>): PluginEntry[] {
  // `--runtime runc` with the image or network suite means the same as no --runtime.
  const runc = (opts.runtime === undefined || opts.runtime === 'runc') && !opts.plugins.some((p) => pluginName(p) === DRIVER_RUNC);
  return runc ? [DRIVER_RUNC, ...opts.plugins] : opts.plugins;
}

/**
 * The daemon.json part every spec's daemon gets: `config`, then the plugins
 * (@isula/image-oci first, unless listed: then where and as listed) and
 * plugin dirs.
 */
export function kitConfig(opts: Pick<KitRunOptions, 'plugins' | 'pluginDirs' | 'config' | 'runtime'>): Record<string, unknown> {
  const plugins = kitPlugins(opts);
  return {
    ...opts.config,
    plugins: plugins.some((p) => pluginName(p) === IMAGE_OCI) ? plugins : [IMAGE_OCI, ...plugins],
    ...(opts.pluginDirs !== undefined && opts.pluginDirs.length > 0 ? { 'plugin-dirs': opts.pluginDirs } : {}),
  };
}

/** The suites `opts` asks for, checked: each has what it needs. Throws an Error naming the missing option. */
export function kitSuites(opts: KitRunOptions): string[] {
  const suites = opts.suites ?? defaultSuites({ runtime: opts.runtime !== undefined, image: opts.imageFormat !== undefined, network: opts.networkDriver !== undefined });
  if (suites.length === 0) throw new Error('no suite to run: name a runtime, an image format or a network driver');
  parseSuites(suites.join(','));
  const runtimeSuite = suites.find(isRuntimeSuite);
  if (runtimeSuite !== undefined && opts.runtime === undefined) throw new Error(`the ${runtimeSuite} suite needs a runtime`);
  if (suites.includes('image') && (opts.imageFormat === undefined || opts.kitImage === undefined)) throw new Error('the image suite needs imageFormat and kitImage');
  if (suites.includes('network') && opts.networkDriver === undefined) throw new Error('the network suite needs networkDriver');
  return suites;
}

/** What the preflight reads of /info. */
export interface PreflightInfo {
  IsulaPlugins?: { Name: string }[];
  /** Runtime name → its settings: the runtimes a plugin claims (and those configured under `runtimes`). */
  Runtimes?: Record<string, unknown>;
  ImageFormats?: string[];
  /** Docker's field; `Network` lists the registered network drivers' names. */
  Plugins?: { Network?: string[] | null };
}

/**
 * Why the daemon the preflight started cannot run the suites `opts` asks
 * for, or undefined when it can: a plugin it does not list, the runtime no
 * plugin claims, the image format or network driver none registers.
 */
export function preflightProblem(opts: Pick<KitRunOptions, 'plugins' | 'runtime' | 'imageFormat' | 'networkDriver'>, info: PreflightInfo): string | undefined {
  const loaded = new Set((info.IsulaPlugins ?? []).map((p) => p.Name));
  const missing = kitPlugins(opts).map(pluginName).filter((p) => !loaded.has(p));
  if (missing.length > 0) return `isulad started but does not list ${missing.join(', ')} among its plugins (${[...loaded].join(', ')})`;
  // The daemons run with this default-runtime, which isulad accepts unclaimed: each spec would fail on it instead.
  const runtime = opts.runtime ?? 'runc';
  const runtimes = Object.keys(info.Runtimes ?? {});
  if (!runtimes.includes(runtime)) return `no plugin claims the runtime "${runtime}" (isulad has: ${runtimes.join(', ') || 'none'})`;
  const formats = info.ImageFormats ?? [];
  if (opts.imageFormat !== undefined && !formats.includes(opts.imageFormat)) return `no plugin registers the image format "${opts.imageFormat}" (isulad has: ${formats.join(', ') || 'none'})`;
  const nets = info.Plugins?.Network ?? [];
  if (opts.networkDriver !== undefined && !nets.includes(opts.networkDriver)) return `no plugin registers the network driver "${opts.networkDriver}" (isulad has: ${nets.join(', ') || 'none'})`;
  return undefined;
}

/**
 * Starts isulad once with the plugins and checks each is listed by /info,
 * that one claims the runtime under test, and that they register the image
 * format and network driver under test: a plugin that does not load fails
 * here, once, with the daemon's words, instead of in every spec.
 */
export async function preflight(opts: KitRunOptions): Promise<SpecResult> {
  const t0 = Date.now();
  const names = kitPlugins(opts).map(pluginName);
  const name = `preflight: isulad loads ${names.join(', ')}${opts.imageFormat !== undefined ? `; image format ${opts.imageFormat}` : ''}${opts.networkDriver !== undefined ? `; network driver ${opts.networkDriver}` : ''}`;
  const fail = (reason: string): SpecResult => ({ name, status: 'fail', reason, durationMs: Date.now() - t0 });
  const d = new TestDaemon(await tempRoot('isula-kit-'));
  try {
    await d.writeConfig({ ...kitConfig(opts), 'default-runtime': opts.runtime ?? 'runc' });
    await unlessAborted(d.start(), opts.signal);
    const problem = preflightProblem(opts, JSON.parse((await unlessAborted(httpRequest(d.socket, 'GET', '/info'), opts.signal)).body) as PreflightInfo);
    return problem !== undefined ? fail(problem) : { name, status: 'pass', durationMs: Date.now() - t0 };
  } catch (err) {
    // The daemon's stderr names a plugin that failed to load (PLUGIN_NOT_FOUND ...); the error may only say it timed out.
    await d.stop();
    return fail(firstLine(`${d.stderr}\n${(err as Error).message}`));
  } finally {
    await d.teardown();
  }
}

/** `work`, or a rejection as soon as `signal` aborts (what `work` does then is left to run out). */
function unlessAborted<T>(work: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (signal === undefined) return work;
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(new Error(`interrupted by ${signalName(signal)}`));
    if (signal.aborted) onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

/** The signal an aborted KitRunOptions.signal stands for: its reason when that names one, else SIGTERM. */
function signalName(signal: AbortSignal): NodeJS.Signals {
  const reason: unknown = signal.reason;
  return typeof reason === 'string' && Object.hasOwn(os.constants.signals, reason) ? reason as NodeJS.Signals : 'SIGTERM';
}

/** The line of an error text that names the problem: "SomeError: ...", a daemon's code, else the first. */
function firstLine(text: string): string {
  const lines = text.split('\n').map((l) => l.trim()).filter((l) => l !== '');
  const named = lines.find((l) => /^\w*Error\b[^:]*:/.test(l)) ?? lines.find((l) => /[A-Z]+_[A-Z_]+/.test(l));
  return (named ?? lines[0] ?? text).slice(0, 500);
}

/**
 * The environment for the spec processes. NODE_TEST_CONTEXT is dropped: set
 * when this runs under `node --test` (the repo's e2e test of the kit), it
 * would make the children report to that runner instead of to ours.
 */
export function childEnv(extra: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  // The kit's variables are this run's alone: one left in the shell (from running entry.js by
  // hand) must not reach a suite that this run does not set it for.
  for (const k of Object.keys(env)) if (k.startsWith('ISULA_KIT_') && k !== 'ISULA_KIT_BUSYBOX') delete env[k];
  Object.assign(env, extra);
  delete env['NODE_TEST_CONTEXT'];
  return env;
}

/** The message of a node:test failure: the assertion or error the test threw, not the runner's wrapper. */
function failureReason(error: unknown): string {
  const e = error as { message?: string; cause?: { message?: string } } | undefined;
  return firstLine(e?.cause?.message ?? e?.message ?? 'failed');
}

export async function runKit(opts: KitRunOptions): Promise<KitReport> {
  const startedAt = new Date();
  const suites = kitSuites(opts);
  const specs: SpecResult[] = [];
  const add = (s: SpecResult) => { specs.push(s); opts.onSpec?.(s); };
  if (opts.signal !== undefined) leaveSignalsToCaller();
  let interrupted: KitReport['interrupted'];
  const pre = await preflight(opts);
  // Interrupted during the preflight: its row would only say so.
  if (opts.signal?.aborted === true) interrupted = { signal: signalName(opts.signal), spec: pre.name };
  else {
    add(pre);
    if (pre.status === 'pass') interrupted = await runSuites(opts, suites, add);
  }
  return {
    schemaVersion: 1,
    runtime: opts.runtime ?? 'runc',
    plugins: kitPlugins(opts).map(pluginName),
    ...(opts.imageFormat !== undefined ? { imageFormat: opts.imageFormat } : {}),
    ...(opts.networkDriver !== undefined ? { networkDriver: opts.networkDriver } : {}),
    suites,
    startedAt: startedAt.toISOString(),
    durationMs: Date.now() - startedAt.getTime(),
    specs,
    counts: countSpecs(specs),
    ...(interrupted !== undefined ? { interrupted } : {}),
  };
}

/** The suites' file in a spec process (runSpecFiles); what was interrupted, when `opts.signal` aborts. */
async function runSuites(opts: KitRunOptions, suites: string[], add: (s: SpecResult) => void): Promise<KitReport['interrupted']> {
  const env = childEnv({
    ISULA_KIT_RUNTIME: opts.runtime ?? 'runc',
    ISULA_KIT_CONFIG: JSON.stringify(kitConfig(opts)),
    ISULA_KIT_SUITES: suites.join(','),
    ...(suites.includes('image') ? { ISULA_KIT_IMAGE_FORMAT: opts.imageFormat, ISULA_KIT_IMAGE: JSON.stringify(opts.kitImage) } : {}),
    ...(suites.includes('network') ? { ISULA_KIT_NETWORK_DRIVER: opts.networkDriver, ...(opts.bridge !== undefined ? { ISULA_KIT_NETWORK_BRIDGE: opts.bridge } : {}) } : {}),
    ISULA_KIT_SKIP_TESTS: JSON.stringify(opts.skipTests ?? {}),
    ...(opts.busybox !== undefined ? { ISULA_KIT_BUSYBOX: opts.busybox } : {}),
    // Each spec's bound, inside the file: a bound on run() would be on the whole file, and would
    // kill it mid-spec, its teardown (daemons, mounts) never run.
    ISULA_KIT_TIMEOUT_MS: String(opts.timeoutMs ?? 600_000),
  });
  return runSpecFiles([ENTRY], env, add, opts.signal);
}

/**
 * node:test's run() on `files` (in a spec process), each spec passed to
 * `add` as it ends. When `signal` aborts, the spec process gets the signal
 * (see KitRunOptions.signal) and this waits for it to end: it returns the
 * signal and the spec then running, and drops what ends after (the
 * interruption's doing).
 */
export async function runSpecFiles(files: string[], env: NodeJS.ProcessEnv, add: (s: SpecResult) => void, signal?: AbortSignal): Promise<KitReport['interrupted']> {
  if (signal?.aborted === true) return { signal: signalName(signal) };
  const progress: SpecProgress = { running: undefined, interrupted: false };
  let interrupted: KitReport['interrupted'];
  let forwarding: { stop(): void } | undefined;
  // Not run()'s own signal: on abort it sends SIGTERM and stops listening at once, while the spec
  // process is still tearing down; this waits for it to end (its stream to close).
  const onAbort = () => {
    const sig = signalName(signal!); // set: onAbort listens to it
    progress.interrupted = true;
    interrupted = { signal: sig, ...(progress.running !== undefined ? { spec: progress.running } : {}) };
    forwarding = signalSpecProcesses(files, sig, INTERRUPT_CLEANUP_MS + 15_000);
  };
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    await collectSpecs(run({ files, env }), add, progress);
  } finally {
    signal?.removeEventListener('abort', onAbort);
    forwarding?.stop();
  }
  return interrupted;
}

/** "pid (comm) state ppid ...": comm may hold spaces and parentheses, so split after the last ')'. */
function ppidOf(stat: string): number {
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
}

/** Does `pid` run one of `files`? */
function runsOneOf(cmdline: string, files: string[]): boolean {
  const argv = cmdline.split('\0');
  return files.some((f) => argv.includes(f));
}

/**
 * This process's children: each thread's /proc/self/task/TID/children
 * (CONFIG_PROC_CHILDREN), else a scan of /proc for those whose parent is
 * this process.
 */
async function childPids(): Promise<number[]> {
  const tasks = await fs.readdir('/proc/self/task').catch(() => [] as string[]);
  const lists = await Promise.all(tasks.map((tid) => fs.readFile(`/proc/self/task/${tid}/children`, 'utf8').catch(() => undefined)));
  if (lists.some((l) => l !== undefined)) return lists.flatMap((l) => (l ?? '').split(' ').filter((p) => p !== '').map(Number));
  const out: number[] = [];
  for (const e of await fs.readdir('/proc').catch(() => [] as string[])) {
    if (!/^\d+$/.test(e)) continue;
    if (ppidOf(await fs.readFile(`/proc/${e}/stat`, 'utf8').catch(() => '')) === process.pid) out.push(Number(e));
  }
  return out;
}

/** This process's children running one of `files` (node:test's run() spawns one per file). */
async function specProcesses(files: string[]): Promise<number[]> {
  const out: number[] = [];
  for (const pid of await childPids()) {
    if (runsOneOf(await fs.readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => ''), files)) out.push(pid);
  }
  return out;
}

/**
 * Is `pid` still a spec process of ours? Read synchronously just before
 * it is signalled: the one found may have ended (run() reaps it) since,
 * and its pid been reused by a process that is not ours. While it is our
 * child unreaped, its pid cannot be reused.
 */
function isSpecProcess(pid: number, files: string[]): boolean {
  try {
    return ppidOf(readFileSync(`/proc/${pid}/stat`, 'utf8')) === process.pid && runsOneOf(readFileSync(`/proc/${pid}/cmdline`, 'utf8'), files);
  } catch {
    return false; // gone
  }
}

/**
 * Sends `sig` to the spec process, and to one started later (the signal
 * came just before run() spawned it), until stopped. A terminal's ctrl-c
 * reached it already; a SIGTERM to this process did not. One still alive
 * after `killAfterMs` (its own teardown is bounded shorter) is killed.
 */
function signalSpecProcesses(files: string[], sig: NodeJS.Signals, killAfterMs: number): { stop(): void } {
  const signalled = new Set<number>();
  const kill = (pid: number, s: NodeJS.Signals) => {
    if (!isSpecProcess(pid, files)) return;
    try { process.kill(pid, s); } catch { /* gone */ }
  };
  const tick = async () => {
    for (const pid of await specProcesses(files)) if (!signalled.has(pid)) { signalled.add(pid); kill(pid, sig); }
  };
  void tick();
  const interval = setInterval(() => void tick(), 250);
  const killer = setTimeout(() => void specProcesses(files).then((pids) => { for (const pid of pids) kill(pid, 'SIGKILL'); }), killAfterMs);
  return { stop() { clearInterval(interval); clearTimeout(killer); } };
}

/**
 * What collectSpecs says while it runs, and is told: the spec running now
 * (its name as its row will have it), and that the run was interrupted:
 * what ends after that (a spec failing because its daemon was stopped, the
 * file's exit code) is the interruption's doing, not a result, and is
 * dropped.
 */
export interface SpecProgress {
  running: string | undefined;
  interrupted: boolean;
}

/**
 * node:test's event stream → one SpecResult per test (pass, fail, skip), in
 * the order defined. A suite is a row of its own only when skipped whole or
 * failed by itself (not through its tests); a test file that fails to load
 * is one failure carrying its stderr.
 */
export async function collectSpecs(stream: ReturnType<typeof run>, add: (s: SpecResult) => void, progress: SpecProgress = { running: undefined, interrupted: false }): Promise<void> {
  const parents: string[] = [];
  // test:start comes when a test reports (after it ends); test:dequeue when it starts running.
  const started: string[] = [];
  let stderr = '';
  for await (const event of stream) {
    if (progress.interrupted) continue;
    // Not by the event's `type`: node 24 gives a queued test its parent's ('suite').
    if (event.type === 'test:dequeue' && !(event.data.nesting === 0 && event.data.name === event.data.file)) {
      started[event.data.nesting] = event.data.name;
      progress.running = [...started.slice(0, event.data.nesting), event.data.name].join(' > ');
    }
    if (event.type === 'test:stderr') stderr += event.data.message;
    if (event.type === 'test:start') parents[event.data.nesting] = event.data.name;
    if (event.type !== 'test:pass' && event.type !== 'test:fail') continue;
    const { data } = event;
    const name = [...parents.slice(0, data.nesting), data.name].join(' > ');
    if (name === progress.running) progress.running = undefined;
    const durationMs = data.details.duration_ms;
    const skipped = data.skip !== undefined && data.skip !== false;
    const reason = typeof data.skip === 'string' ? data.skip : 'skipped';
    const isFile = data.nesting === 0 && data.name === data.file;
    if (data.details.type === 'suite' || isFile) {
      if (skipped) add({ name, status: 'skip', reason, durationMs });
      else if (event.type === 'test:fail' && (event.data.details.error as { failureType?: string }).failureType !== 'subtestsFailed') {
        add({ name: isFile ? `test file ${data.name}` : name, status: 'fail', reason: isFile ? firstLine(stderr) : failureReason(event.data.details.error), durationMs });
      }
      continue;
    }
    if (skipped) add({ name, status: 'skip', reason, durationMs });
    else if (event.type === 'test:fail') add({ name, status: 'fail', reason: failureReason(event.data.details.error), durationMs });
    else add({ name, status: 'pass', durationMs });
  }
}
