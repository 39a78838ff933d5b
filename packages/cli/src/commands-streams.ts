/**
 * Streams and observability: exec, attach, logs, cp, export, top, stats and
 * events. Requests, output and exit codes follow docker 20.10's CLI
 * (`cli/command/container/*.go`, `cli/command/system/events.go`): exec uses
 * run's 125/126/127 and otherwise the command's code; attach exits with the
 * container's code; the others exit 1 on an error.
 */
import { once } from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import type { Readable } from 'node:stream';
import type { Command } from 'commander';
import { attachContainer, monitorTtySize, rawTerminal, streamSession, StreamDemuxer } from './attach.js';
import { DaemonUnreachableError, jsonLines, type EngineClient } from './client.js';
import { containerCommand, describe, filtersJson, toStatusError, waitForExit } from './commands-containers.js';
import { copyInfoDestinationPath, copyInfoSourcePath, extractArchive, goPathError, packLocal } from './cp-archive.js';
import {
  CopyError, GO_MODE_DIR, GO_MODE_SYMLINK, decodePathStat, getRebaseName, hasModeBit, linkTargetPath,
  prepareArchiveCopy, resolveLocalPath, splitCpArg, splitPathDirEntry, validateOutputPathFileMode,
  type ContainerPathStat, type CopyInfo, type Rebase,
} from './cp-paths.js';
import { ExitCode } from './exit-code.js';
import { alignTabs, formatEvent, type EventMessage } from './format.js';
import { compileTemplate } from './go-template.js';
import { declareOnDemand } from './lazy-declare.js';
import { envEntry, parseKeyValueFile } from './run-options.js';
import { emptyEntry, formatStats, statsEntry, type StatsEntry, type StatsJson } from './stats-format.js';
import { getTimestamp } from './timestamps.js';
import { UsageError } from './usage-error.js';

const out = (text: string) => process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
const err = (text: string) => process.stderr.write(text.endsWith('\n') ? text : `${text}\n`);
const collect = (v: string, prev: string[] = []) => [...prev, v];
const cpath = (id: string, action = '') => `/containers/${encodeURIComponent(id)}${action}`;

/** Prints `message` on stderr as docker does (no prefix) and exits with `code`. */
function fail(message: string, code = 1): never {
  err(message);
  throw new ExitCode(code);
}

interface ContainerJson {
  Id: string;
  Config?: { Tty?: boolean; OpenStdin?: boolean };
  State?: { Running?: boolean; Paused?: boolean; Restarting?: boolean };
}

/** The signals docker's --sig-proxy forwards to a container without a TTY (`POST /containers/{id}/kill?signal=`). */
const PROXIED_SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2'];

function proxySignals(client: EngineClient, id: string): () => void {
  const forward = (signal: NodeJS.Signals) => { client.request(cpath(id, '/kill'), { method: 'POST', query: { signal } }).catch(() => {}); };
  for (const s of PROXIED_SIGNALS) process.on(s, forward);
  return () => { for (const s of PROXIED_SIGNALS) process.off(s, forward); };
}

/**
 * Writes to several outputs and waits for those that asked (`write` returned
 * false) to drain: a slow pipe slows the daemon, not memory. An output that
 * fails (EPIPE: `isula logs x | head`) fails the copy instead of hanging it.
 */
class Outputs {
  readonly #full = new Set<NodeJS.WritableStream>();
  #error: Error | undefined;
  readonly #failed: Promise<never>;

  constructor(targets: NodeJS.WritableStream[]) {
    this.#failed = new Promise<never>((_resolve, reject) => {
      for (const t of targets) (t as NodeJS.EventEmitter).on('error', (e: Error) => { this.#error ??= e; reject(e); });
    });
    this.#failed.catch(() => { /* raced in drain() */ });
  }

  write(target: NodeJS.WritableStream, data: Buffer): void {
    if (this.#error !== undefined) throw this.#error;
    if (!target.write(data)) this.#full.add(target);
  }

  async drain(): Promise<void> {
    if (this.#error !== undefined) throw this.#error;
    if (this.#full.size === 0) return;
    await Promise.race([Promise.all([...this.#full].map((t) => once(t as NodeJS.EventEmitter, 'drain'))), this.#failed]);
    this.#full.clear();
  }
}

/** Copies a response body: raw to stdout (a TTY's stream, an archive), or docker's multiplexed frames to stdout/stderr. */
async function copyBody(body: Readable, o: { multiplexed: boolean; output?: NodeJS.WritableStream; errorOutput?: NodeJS.WritableStream }): Promise<void> {
  const output = o.output ?? process.stdout;
  const errorOutput = o.errorOutput ?? process.stderr;
  const outputs = new Outputs([output, errorOutput]);
  let daemonError = '';
  // Consecutive frames for the same output go out in one write (a log is many small frames);
  // a switch of stream flushes first, so stdout and stderr keep their order.
  let target: NodeJS.WritableStream | undefined;
  let parts: Buffer[] = [];
  const flush = () => {
    if (target !== undefined && parts.length > 0) outputs.write(target, parts.length === 1 ? parts[0] as Buffer : Buffer.concat(parts));
    parts = [];
  };
  const demux = new StreamDemuxer((stream, data) => {
    if (stream === 3) { daemonError += data.toString('utf8'); return; }
    const to = stream === 2 ? errorOutput : output;
    if (to !== target) { flush(); target = to; }
    parts.push(data);
  });
  try {
    for await (const chunk of body as AsyncIterable<Buffer>) {
      if (o.multiplexed) { demux.push(chunk); flush(); } else outputs.write(output, chunk);
      await outputs.drain();
    }
  } catch (e) {
    body.destroy();
    // The reader went away (`| head`): docker stops quietly too.
    if ((e as NodeJS.ErrnoException).code === 'EPIPE') return;
    throw e;
  }
  if (daemonError !== '') throw new Error(`Error from daemon in stream: ${daemonError}`);
}

// ---- exec -------------------------------------------------------------------

export interface ExecFlags {
  detach?: boolean;
  detachKeys?: string;
  env?: string[];
  envFile?: string[];
  interactive?: boolean;
  privileged?: boolean;
  tty?: boolean;
  user?: string;
  workdir?: string;
}

/** The `POST /containers/{id}/exec` body (docker's `types.ExecConfig`). */
export interface ExecConfig {
  User: string;
  Privileged: boolean;
  Tty: boolean;
  AttachStdin: boolean;
  AttachStdout: boolean;
  AttachStderr: boolean;
  Detach: boolean;
  DetachKeys: string;
  Env: string[];
  WorkingDir: string;
  Cmd: string[];
}

/**
 * docker's `parseExec`: env files first, then `-e` (a bare `NAME` takes the
 * client's value); without `-d` stdout and stderr are attached, and stdin
 * with `-i`.
 */
export function buildExecConfig(f: ExecFlags, command: readonly string[], deps: { env: Readonly<Record<string, string | undefined>>; readFile: (file: string) => string } = { env: process.env, readFile: (file) => fs.readFileSync(file, 'utf8') }): ExecConfig {
  const fromFiles = (f.envFile ?? []).flatMap((file) => {
    let text: string;
    try {
      text = deps.readFile(file);
    } catch (e) {
      throw new UsageError(goPathError(e, 'open').message);
    }
    return parseKeyValueFile(text, file, (k) => deps.env[k]);
  });
  const env = [...fromFiles, ...(f.env ?? []).map((v) => {
    try {
      return envEntry(v, deps.env);
    } catch (e) {
      throw new UsageError(`invalid argument ${JSON.stringify(v)} for "-e, --env" flag: ${(e as Error).message}`);
    }
  })];
  const detach = f.detach === true;
  return {
    User: f.user ?? '',
    Privileged: f.privileged === true,
    Tty: f.tty === true,
    AttachStdin: !detach && f.interactive === true,
    AttachStdout: !detach,
    AttachStderr: !detach,
    Detach: detach,
    DetachKeys: f.detachKeys ?? '',
    Env: env,
    WorkingDir: f.workdir ?? '',
    Cmd: [...command],
  };
}

/**
 * docker's exec: inspect the container (so "No such container" wins) →
 * `POST /containers/{id}/exec` → `POST /exec/{id}/start` (`-d`: detached,
 * done; otherwise over a hijacked connection, resized with the window under
 * `-t`) → `GET /exec/{id}/json` for the exit code. Detaching prints docker's
 * `read escape sequence` and exits 1.
 */
async function execCommand(client: EngineClient, container: string, command: string[], f: ExecFlags): Promise<number> {
  const config = buildExecConfig(f, command);
  await client.json<ContainerJson>(cpath(container, '/json'));
  if (!config.Detach && config.AttachStdin && config.Tty && !process.stdin.isTTY) throw new UsageError('the input device is not a TTY');
  const created = await client.json<{ Id?: string }>(cpath(container, '/exec'), { method: 'POST', body: config });
  if (!created.Id) throw new Error('exec ID empty');
  const execPath = `/exec/${encodeURIComponent(created.Id)}`;
  if (config.Detach) {
    await client.request(`${execPath}/start`, { method: 'POST', body: { Detach: true, Tty: config.Tty } });
    return 0;
  }
  const { socket, head } = await client.hijack(`${execPath}/start`, {}, { Detach: false, Tty: config.Tty });
  const session = streamSession(socket, head, { stdin: config.AttachStdin, tty: config.Tty, detachKeys: config.DetachKeys });
  const restoreTerminal = config.Tty && config.AttachStdin ? rawTerminal() : () => {};
  const stopResize = config.Tty && process.stdin.isTTY ? monitorTtySize(client, execPath) : () => {};
  let end: Awaited<typeof session.finished>;
  try {
    end = await session.finished;
  } finally {
    stopResize();
    restoreTerminal();
  }
  if (end === 'detached') fail('read escape sequence');
  const inspect = await client.json<{ ExitCode?: number | null }>(`${execPath}/json`);
  return inspect.ExitCode ?? 0;
}

// ---- attach -------------------------------------------------------------------

/** docker's `inspectContainerAndCheckState`. */
async function inspectAttachable(client: EngineClient, name: string): Promise<ContainerJson> {
  const c = await client.json<ContainerJson>(cpath(name, '/json'));
  if (c.State?.Running !== true) fail('You cannot attach to a stopped container, start it first');
  if (c.State.Paused === true) fail('You cannot attach to a paused container, unpause it first');
  if (c.State.Restarting === true) fail('You cannot attach to a restarting container, wait until it is running');
  return c;
}

/**
 * docker's attach: wait (armed first, so an exit during the attach is not
 * missed) → inspect (must be running) → attach → inspect again → copy until
 * the stream ends → the wait's exit code. Detaching: `read escape sequence`, 1.
 */
async function attachCommand(client: EngineClient, name: string, f: { stdin: boolean; sigProxy: boolean; detachKeys?: string }): Promise<number> {
  const wait = waitForExit(client, name, 'not-running');
  wait.result.catch(() => { /* read below */ });
  await wait.armed;
  let stopSignals = () => {};
  let restoreTerminal = () => {};
  let stopResize = () => {};
  try {
    const c = await inspectAttachable(client, name);
    const tty = c.Config?.Tty === true;
    if (f.stdin && tty && !process.stdin.isTTY) fail('the input device is not a TTY');
    const stdin = f.stdin && c.Config?.OpenStdin === true;
    if (f.sigProxy && !tty) stopSignals = proxySignals(client, name);
    const session = await attachContainer(client, name, { stdin, stdout: true, stderr: true, tty, detachKeys: f.detachKeys });
    try {
      await inspectAttachable(client, name);
    } catch (e) {
      session.close();
      throw e;
    }
    if (stdin && tty) restoreTerminal = rawTerminal();
    if (tty && process.stdout.isTTY) stopResize = monitorTtySize(client, cpath(name), process.stdout, { nudge: true });
    if (await session.finished === 'detached') fail('read escape sequence');
    const status = await wait.result;
    if (status.Error?.Message) fail(status.Error.Message);
    return status.StatusCode;
  } finally {
    wait.cancel();
    stopResize();
    restoreTerminal();
    stopSignals();
  }
}

// ---- logs ---------------------------------------------------------------------

export interface LogsFlags {
  follow?: boolean;
  since?: string;
  until?: string;
  timestamps?: boolean;
  details?: boolean;
  tail?: string;
}

/** docker's `ContainerLogs` query: both streams; since/until through GetTimestamp; tail always (default `all`). */
export function logsQuery(f: LogsFlags, nowMs = Date.now()): Record<string, string | undefined> {
  return {
    stdout: '1',
    stderr: '1',
    follow: f.follow ? '1' : undefined,
    tail: f.tail ?? 'all',
    since: f.since ? getTimestamp(f.since, nowMs) : undefined,
    until: f.until ? getTimestamp(f.until, nowMs) : undefined,
    timestamps: f.timestamps ? '1' : undefined,
    details: f.details ? '1' : undefined,
  };
}

/**
 * Follows a non-TTY container's log across a daemon restart: records are
 * asked with timestamps (stripped again unless -t was given); when the stream
 * ends while the container still runs (the daemon went away), the log is
 * asked again, once the daemon answers, from the last record's time, and the
 * records of that same time already shown are skipped. Bounded: a daemon
 * that stays away for RESUME_WAIT_MS ends it.
 */
export class LogResume {
  readonly #showTimestamps: boolean;
  #lastTime: string | undefined;
  /** Records already shown with #lastTime. */
  #atLast = 0;
  /** Records of #lastTime still to skip in this round. */
  #skip = 0;

  constructor(showTimestamps: boolean) {
    this.#showTimestamps = showTimestamps;
  }

  /** The query of the next round: the user's, with timestamps; from the second round on, from the last record. */
  query(base: Record<string, string | undefined>): Record<string, string | undefined> {
    this.#skip = this.#atLast;
    if (this.#lastTime === undefined) return { ...base, timestamps: '1' };
    return { ...base, timestamps: '1', tail: 'all', since: unixTime(this.#lastTime) };
  }

  /** One whole record (a frame's payload, `TIME text`): what to print, or undefined to skip it. */
  record(payload: Buffer): Buffer | undefined {
    const sp = payload.indexOf(0x20);
    const time = sp > 0 ? payload.subarray(0, sp).toString('latin1') : '';
    if (time === this.#lastTime && this.#skip > 0) {
      this.#skip -= 1;
      return undefined;
    }
    if (time === this.#lastTime) this.#atLast += 1;
    else { this.#lastTime = time; this.#atLast = 1; this.#skip = 0; }
    return this.#showTimestamps || sp < 0 ? payload : payload.subarray(sp + 1);
  }
}

/** `2026-11-23T09:17:40.975647758Z` → `1795425460.975647758` (the API's since). */
function unixTime(rfc3339: string): string {
  const m = /^(.*T\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?Z$/.exec(rfc3339);
  if (m === null) return '0';
  return `${Math.floor(Date.parse(`${m[1] as string}Z`) / 1000)}.${(m[2] ?? '').padEnd(9, '0')}`;
}

/** Whole frames out of docker's multiplexed stream (the demuxer hands out pieces; a record needs its whole payload). */
class FrameReader {
  #buf: Buffer = Buffer.alloc(0);

  *push(chunk: Buffer): Generator<[number, Buffer]> {
    this.#buf = this.#buf.length === 0 ? chunk : Buffer.concat([this.#buf, chunk]);
    while (this.#buf.length >= 8) {
      const len = this.#buf.readUInt32BE(4);
      if (this.#buf.length < 8 + len) break;
      yield [this.#buf[0] ?? 1, this.#buf.subarray(8, 8 + len)];
      this.#buf = this.#buf.subarray(8 + len);
    }
  }
}

const RESUME_WAIT_MS = 60_000;

/** Reconnections one `logs -f` makes at most (each after the daemon went away and came back). */
const MAX_RESUMES = 20;

async function followLogs(client: EngineClient, name: string, f: LogsFlags): Promise<void> {
  const resume = new LogResume(f.timestamps === true);
  const outputs = new Outputs([process.stdout, process.stderr]);
  let finalRound = false;
  let deadline = 0;
  for (let round = 0; round <= MAX_RESUMES; round++) {
    let res;
    try {
      res = await client.stream(cpath(name, '/logs'), { query: resume.query(logsQuery(f)) });
    } catch (e) {
      // The daemon went away again between the check below and this request: wait for it as below.
      if (round === 0 || !(e instanceof DaemonUnreachableError) || Date.now() > deadline) throw e;
      await new Promise((r) => setTimeout(r, 250));
      round -= 1;
      continue;
    }
    const frames = new FrameReader();
    let daemonError = '';
    try {
      for await (const chunk of res.body as AsyncIterable<Buffer>) {
        for (const [stream, payload] of frames.push(chunk)) {
          if (stream === 3) { daemonError += payload.toString('utf8'); continue; }
          const out = resume.record(payload);
          if (out !== undefined) outputs.write(stream === 2 ? process.stderr : process.stdout, out);
        }
        await outputs.drain();
      }
    } catch (e) {
      res.body.destroy();
      // The reader went away (`| head`): docker stops quietly too.
      if ((e as NodeJS.ErrnoException).code === 'EPIPE') return;
      throw e;
    }
    if (daemonError !== '') throw new Error(`Error from daemon in stream: ${daemonError}`);
    if (finalRound) return;
    // The end of the stream: the container exited, or the daemon went away (then it runs on).
    deadline = Date.now() + RESUME_WAIT_MS;
    let running: boolean | undefined;
    let away = false;
    while (running === undefined) {
      try {
        running = (await client.json<ContainerJson>(cpath(name, '/json'))).State?.Running === true;
      } catch (e) {
        if (!(e instanceof DaemonUnreachableError) || Date.now() > deadline) throw e;
        away = true;
        await new Promise((r) => setTimeout(r, 250));
      }
    }
    if (!running && !away) return;
    // Exited while the daemon was away: one last round from the last record shown, for what it
    // wrote meanwhile. A slow daemon restart must not lose the end.
    if (!running) finalRound = true;
  }
}

// ---- export -------------------------------------------------------------------

/** docker's `ValidateOutputPath`: the directory must exist; an existing path must not be a device. */
export function validateOutputPath(p: string): void {
  const dir = splitPathDirEntry(p).dir;
  if (dir !== '' && dir !== '.' && !fs.existsSync(dir)) throw new CopyError(`invalid output path: directory ${JSON.stringify(dir)} does not exist`);
  let st: fs.Stats;
  try {
    st = fs.statSync(p);
  } catch {
    return;
  }
  if (st.isBlockDevice() || st.isCharacterDevice()) throw new CopyError(`invalid output path: ${JSON.stringify(p)} must be a directory or a regular file: got a device`);
}

/** docker's `CopyToFile`: into a temp file beside `file`, renamed over it at the end, so a failure leaves nothing half-written. */
async function copyToFile(file: string, body: Readable): Promise<void> {
  const tmp = path.join(path.dirname(file), `.isula_temp_${process.pid}_${Date.now()}`);
  const stream = fs.createWriteStream(tmp, { flags: 'wx', mode: 0o600 });
  try {
    await copyBody(body, { multiplexed: false, output: stream });
    await new Promise<void>((resolve, reject) => { stream.once('error', reject); stream.end(() => resolve()); });
    await fs.promises.rename(tmp, file);
  } catch (e) {
    stream.destroy();
    await fs.promises.rm(tmp, { force: true });
    throw e;
  }
}

// ---- top ----------------------------------------------------------------------

/** docker's top table: `tabwriter.NewWriter(out, 20, 1, 3, ' ', 0)` over Titles and Processes. */
export function formatTop(top: { Titles?: string[] | null; Processes?: string[][] | null }): string {
  return alignTabs([(top.Titles ?? []).join('\t'), ...(top.Processes ?? []).map((p) => p.join('\t'))], 20);
}

// ---- cp -----------------------------------------------------------------------

/** `HEAD /containers/{id}/archive?path=`: the path's stat, or undefined when the daemon has none (docker ignores that error). */
async function statContainerPath(client: EngineClient, container: string, p: string): Promise<ContainerPathStat | undefined> {
  try {
    const res = await client.request(cpath(container, '/archive'), { method: 'HEAD', query: { path: p } });
    return decodePathStat(res.headers.get('x-docker-container-path-stat'));
  } catch {
    return undefined;
  }
}

/** docker's copyFromContainer: `-L` follows a symlink through its stat, GET the archive, then extract (or `-` streams it). */
async function copyFromContainer(client: EngineClient, container: string, srcPathIn: string, dstIn: string, followLink: boolean): Promise<void> {
  let srcPath = srcPathIn;
  const dstPath = dstIn === '-' ? dstIn : resolveLocalPath(dstIn, process.cwd());
  if (dstPath !== '-') validateOutputPath(dstPath);
  let rebaseName = '';
  if (followLink) {
    const st = await statContainerPath(client, container, srcPath);
    if (st !== undefined && hasModeBit(st.mode, GO_MODE_SYMLINK)) {
      ({ resolved: srcPath, rebaseName } = getRebaseName(srcPath, linkTargetPath(srcPath, st.linkTarget)));
    }
  }
  const abort = new AbortController();
  const res = await client.stream(cpath(container, '/archive'), { query: { path: srcPath }, signal: abort.signal });
  try {
    if (res.status !== 200) throw new Error(`unexpected status code from daemon: ${res.status}`);
    if (dstPath === '-') {
      await copyBody(res.body, { multiplexed: false });
      return;
    }
    const stat = decodePathStat(res.headers.get('x-docker-container-path-stat'));
    const src: CopyInfo = { path: srcPath, exists: true, isDir: hasModeBit(stat.mode, GO_MODE_DIR), rebaseName };
    const rebases: Rebase[] = [];
    if (rebaseName !== '') rebases.push({ from: splitPathDirEntry(srcPath).base, to: rebaseName });
    const dst = await copyInfoDestinationPath(dstPath);
    const plan = prepareArchiveCopy(src, dst);
    if (plan.rebase !== undefined) rebases.push(plan.rebase);
    await extractArchive(res.body, plan.dstDir, { rebases, onSkip: (m) => err(`WARNING: ${m}`) });
  } catch (e) {
    abort.abort();
    throw e;
  }
}

/**
 * docker's copyToContainer: stat the destination (following one symlink),
 * pack the local source renamed as PrepareArchiveCopy decides (or take a tar
 * from stdin for `-`, into a directory only), and PUT it into the directory.
 */
async function copyToContainer(client: EngineClient, container: string, srcIn: string, dstPathIn: string, o: { followLink: boolean; copyUIDGID: boolean }): Promise<void> {
  const srcPath = srcIn === '-' ? srcIn : resolveLocalPath(srcIn, process.cwd());
  const dstInfo: CopyInfo = { path: dstPathIn, exists: false, isDir: false };
  let dstStat = await statContainerPath(client, container, dstPathIn);
  if (dstStat !== undefined && hasModeBit(dstStat.mode, GO_MODE_SYMLINK)) {
    dstInfo.path = linkTargetPath(dstPathIn, dstStat.linkTarget);
    dstStat = await statContainerPath(client, container, dstInfo.path);
  }
  try {
    validateOutputPathFileMode(dstStat?.mode ?? 0);
  } catch (e) {
    throw new CopyError(`destination "${container}:${dstPathIn}" must be a directory or a regular file: ${(e as Error).message}`);
  }
  if (dstStat !== undefined) { dstInfo.exists = true; dstInfo.isDir = hasModeBit(dstStat.mode, GO_MODE_DIR); }
  let content: Readable;
  let resolvedDst: string;
  if (srcPath === '-') {
    if (!dstInfo.isDir) throw new CopyError(`destination "${container}:${dstPathIn}" must be a directory`);
    content = process.stdin;
    resolvedDst = dstInfo.path;
  } else {
    const src = await copyInfoSourcePath(srcPath, o.followLink);
    const plan = prepareArchiveCopy(src, dstInfo);
    const { base } = splitPathDirEntry(src.path);
    const rebases: Rebase[] = [];
    if (src.rebaseName) rebases.push({ from: base, to: src.rebaseName });
    if (plan.rebase !== undefined) rebases.push(plan.rebase);
    content = await packLocal(src, rebases);
    resolvedDst = plan.dstDir;
  }
  const res = await client.request(cpath(container, '/archive'), {
    method: 'PUT',
    query: { path: resolvedDst, noOverwriteDirNonDir: 'true', copyUIDGID: o.copyUIDGID ? 'true' : undefined },
    bodyStream: content,
    contentType: 'application/x-tar',
  });
  // docker wants 200; isulad answers an empty success with 204.
  if (res.status < 200 || res.status > 299) throw new Error(`unexpected status code from daemon: ${res.status}`);
}

async function cpCommand(client: EngineClient, source: string, destination: string, o: { followLink: boolean; copyUIDGID: boolean }): Promise<void> {
  if (source === '') throw new UsageError('source can not be empty');
  if (destination === '') throw new UsageError('destination can not be empty');
  const src = splitCpArg(source);
  const dst = splitCpArg(destination);
  if (src.container !== '' && dst.container !== '') throw new UsageError('copying between containers is not supported');
  if (src.container !== '') return copyFromContainer(client, src.container, src.path, dst.path, o.followLink);
  if (dst.container !== '') return copyToContainer(client, dst.container, src.path, dst.path, o);
  throw new UsageError('must specify at least one container source');
}

// ---- stats --------------------------------------------------------------------

/** An `onData` for a stream of JSON documents one a line; `flush()` hands on a last line without its newline. */
function jsonDocuments(onDocument: (text: string) => void): { onData: (chunk: Buffer) => void; flush: () => void } {
  let pending = '';
  const take = (line: string) => { if (line.trim() !== '') onDocument(line); };
  return {
    onData: (chunk) => {
      pending += chunk.toString('utf8');
      let nl: number;
      while ((nl = pending.indexOf('\n')) >= 0) { take(pending.slice(0, nl)); pending = pending.slice(nl + 1); }
    },
    flush: () => { take(pending); pending = ''; },
  };
}

/** No figures for this long: docker zeroes the row (shown as `--`). */
const STATS_TIMEOUT_MS = 2000;
/** docker redraws the table this often. */
const STATS_REDRAW_MS = 500;

/** One container's stats stream (docker's `collect`). */
class StatsCollector {
  entry: StatsEntry;
  error: Error | undefined;
  readonly first: Promise<void>;
  readonly #abort = new AbortController();
  #timer: NodeJS.Timeout | undefined;
  #gotFirst: () => void = () => {};

  constructor(client: EngineClient, readonly container: string, stream: boolean) {
    this.entry = emptyEntry(container);
    this.first = new Promise((resolve) => { this.#gotFirst = resolve; });
    const docs = jsonDocuments((text) => {
      try {
        this.entry = statsEntry(container, JSON.parse(text) as StatsJson);
        this.error = undefined;
        this.#gotFirst();
        this.#arm(stream);
      } catch (e) {
        this.error = e as Error;
        this.entry.isInvalid = true;
      }
    });
    this.#arm(stream);
    client.request(cpath(container, '/stats'), { query: { stream: stream ? '1' : '0' }, onData: docs.onData, signal: this.#abort.signal })
      .then(() => {
        docs.flush();
        if (stream) { this.error = new Error('EOF'); this.entry.isInvalid = true; }
      }, (e: unknown) => {
        this.error = e as Error;
        this.entry.isInvalid = true;
      })
      .finally(() => { this.#gotFirst(); if (!stream) clearTimeout(this.#timer); });
  }

  /** docker: no figures within 2 s → zeroed and invalid (and the first wait released). */
  #arm(stream: boolean): void {
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      this.entry = { ...emptyEntry(this.container), name: this.entry.name, id: this.entry.id, isInvalid: true };
      this.error = new Error('timeout waiting for stats');
      this.#gotFirst();
      if (stream) this.#arm(stream);
    }, STATS_TIMEOUT_MS);
    this.#timer.unref();
  }

  stop(): void {
    clearTimeout(this.#timer);
    this.#abort.abort();
  }
}

interface StatsFlags { all?: boolean; stream: boolean; trunc: boolean; format?: string }

/**
 * docker's stats: named containers, or (none named) the running ones (`-a`:
 * all), followed through `container` events while streaming; each through
 * `GET /containers/{id}/stats?stream=`. Once every stream gave its first
 * figures (or 2 s passed), the table; streaming, redrawn every 500 ms on a
 * cleared screen until interrupted.
 */
async function statsCommand(client: EngineClient, names: string[], f: StatsFlags): Promise<void> {
  formatStats([], f.format, f.trunc); // a bad --format fails before any request
  const showAll = names.length === 0;
  const collectors = new Map<string, StatsCollector>();
  const add = (name: string) => { if (!collectors.has(name)) collectors.set(name, new StatsCollector(client, name, f.stream)); };
  const remove = (name: string) => { collectors.get(name)?.stop(); collectors.delete(name); };
  let eventsFailed: Error | undefined;
  const events = new AbortController();
  try {
    if (showAll) {
      if (f.stream) {
        let armed: () => void = () => {};
        const subscribed = new Promise<void>((resolve) => { armed = resolve; });
        client.request('/events', {
          query: { filters: JSON.stringify({ type: ['container'] }) },
          signal: events.signal,
          onHeaders: () => armed(),
          onData: jsonLines((line) => {
            const e = JSON.parse(line) as { id?: string; Action?: string; Actor?: { ID?: string } };
            const id = (e.Actor?.ID ?? e.id ?? '').slice(0, 12);
            if (id === '') return;
            if (e.Action === 'create' && f.all) add(id);
            else if (e.Action === 'start') add(id);
            else if (e.Action === 'die' && !f.all) remove(id);
          }),
        }).catch((e: unknown) => { if (!events.signal.aborted) eventsFailed = e as Error; }).finally(() => armed());
        await subscribed;
      }
      const list = await client.json<{ Id: string }[]>('/containers/json', { query: { all: f.all ? '1' : undefined } });
      for (const c of list) add(c.Id.slice(0, 12));
    } else {
      for (const name of names) add(name);
    }
    await Promise.all([...collectors.values()].map((c) => c.first));
    if (!showAll) {
      const errors = [...collectors.values()].map((c) => c.error).filter((e): e is Error => e !== undefined);
      if (errors.length > 0) fail(errors.map((e) => describe(e)).join('\n'));
    }
    const render = () => formatStats([...collectors.values()].map((c) => c.entry), f.format, f.trunc);
    if (!f.stream) {
      const text = render();
      if (text !== '') out(text);
      return;
    }
    for (;;) {
      // docker clears the screen and redraws.
      process.stdout.write(`\x1b[2J\x1b[H${render()}\n`);
      if (eventsFailed !== undefined) throw eventsFailed;
      if (collectors.size === 0 && !showAll) return;
      await new Promise((resolve) => setTimeout(resolve, STATS_REDRAW_MS));
    }
  } finally {
    events.abort();
    for (const c of collectors.values()) c.stop();
  }
}

// ---- events -------------------------------------------------------------------

/** An event as docker's CLI sees it (`events.Message`): the Go field names a `--format` template uses. */
export interface EventView {
  Status: string;
  ID: string;
  From: string;
  Type: string;
  Action: string;
  Actor: { ID: string; Attributes: Record<string, string> };
  Scope: string;
  Time: number;
  /** The exact decimal text (past 2^53). */
  TimeNano: string;
}

/**
 * One JSON line of `/events` → the parsed message, the exact `timeNano` text
 * and its template view. `{{json .}}` of the view prints the message as the
 * daemon sent it, `timeNano` exact.
 */
export function parseEventLine(line: string): { message: EventMessage; timeNano: string | undefined; view: EventView } {
  const rawJson = (JSON as unknown as { rawJSON?: (text: string) => unknown }).rawJSON;
  let timeNano: string | undefined;
  const message = JSON.parse(line, function reviver(this: unknown, key: string, value: unknown, context?: { source?: string }) {
    if (key === 'timeNano' && typeof value === 'number' && context?.source !== undefined) {
      timeNano = context.source;
      return Number.isSafeInteger(value) || rawJson === undefined ? value : rawJson(context.source);
    }
    return value;
  } as (key: string, value: unknown) => unknown) as Record<string, unknown> & EventMessage;
  const actor = (message.Actor ?? {}) as { ID?: string; Attributes?: Record<string, string> };
  const view: EventView = {
    Status: typeof message['status'] === 'string' ? message['status'] : '',
    ID: typeof message['id'] === 'string' ? message['id'] : '',
    From: typeof message['from'] === 'string' ? message['from'] : '',
    Type: message.Type ?? '',
    Action: message.Action ?? '',
    Actor: { ID: actor.ID ?? '', Attributes: actor.Attributes ?? {} },
    Scope: typeof message['scope'] === 'string' ? message['scope'] : '',
    Time: typeof message['time'] === 'number' ? message['time'] : 0,
    TimeNano: timeNano ?? '0',
  };
  Object.defineProperty(view, 'toJSON', { value: () => message, enumerable: false });
  const plain = { ...message, timeNano: typeof message.timeNano === 'number' ? message.timeNano : Number(timeNano ?? 0) } as EventMessage;
  return { message: plain, timeNano, view };
}

/** An event line as printed: docker's pretty line, `json` (the message), or a Go template over the Message fields. */
export function eventPrinter(format: string | undefined): (line: string) => string {
  if (format === undefined || format === '') return (line) => { const p = parseEventLine(line); return formatEvent(p.message, p.timeNano === undefined ? {} : { timeNano: p.timeNano }); };
  if (format === 'json') return (line) => line.trim();
  const render = compileTemplate(format);
  return (line) => render(parseEventLine(line).view);
}

// ---- registration ---------------------------------------------------------------

/**
 * Declares `cmd`'s options only when it runs or shows its help (as create's
 * flags are): the ~40 options of these commands cost ~2 ms that every other
 * `isula` call would pay.
 */
function lazyOptions(program: Command, cmd: Command, add: (cmd: Command) => void): Command {
  declareOnDemand(program, cmd, () => {
    add(cmd);
    // Commander gives a lone `--no-x` its default (x: true) when it prepares the parse, which for
    // a subcommand is before preSubcommand hooks run: give it here, as it would have.
    for (const o of cmd.options) {
      const name = o.attributeName();
      if (o.negate && o.defaultValue === undefined && cmd.getOptionValue(name) === undefined) cmd.setOptionValueWithSource(name, true, 'default');
    }
  });
  return cmd;
}

export function registerStreamCommands(program: Command, client: () => EngineClient): void {
  lazyOptions(program, containerCommand(program, 'exec', 125)
    .description('Run a command in a running container')
    .argument('<container>', 'container name or id')
    .argument('<command...>', 'command and arguments')
    .passThroughOptions()
    .action(async (container: string, command: string[], opts: ExecFlags) => {
      let code: number;
      try {
        code = await execCommand(client(), container, command, opts);
      } catch (e) {
        throw toStatusError(e, 'exec');
      }
      if (code !== 0) throw new ExitCode(code);
    }), (cmd) => cmd
    .option('-d, --detach', 'detached mode: run command in the background')
    .option('--detach-keys <keys>', 'override the key sequence for detaching (default ctrl-p,ctrl-q)')
    .option('-e, --env <KEY[=VALUE]>', 'set environment variables; repeatable', collect)
    .option('--env-file <file>', 'read in a file of environment variables; repeatable', collect)
    .option('-i, --interactive', 'keep STDIN open even if not attached')
    .option('--privileged', 'give extended privileges to the command')
    .option('-t, --tty', 'allocate a pseudo-TTY')
    .option('-u, --user <user>', 'username or UID (format: <name|uid>[:<group|gid>])')
    .option('-w, --workdir <dir>', 'working directory inside the container'));

  lazyOptions(program, containerCommand(program, 'attach')
    .description('Attach local standard input, output, and error streams to a running container')
    .argument('<container>', 'container name or id')
    .action(async (name: string, opts: { stdin: boolean; sigProxy: boolean; detachKeys?: string }) => {
      const code = await attachCommand(client(), name, opts);
      if (code !== 0) throw new ExitCode(code);
    }), (cmd) => cmd
    .option('--detach-keys <keys>', 'override the key sequence for detaching a container (default ctrl-p,ctrl-q)')
    .option('--no-stdin', 'do not attach STDIN')
    .option('--sig-proxy', 'proxy all received signals to the process', true)
    .option('--no-sig-proxy', 'do not proxy signals (docker: --sig-proxy=false, which isula takes too)'));

  lazyOptions(program, containerCommand(program, 'logs')
    .description('Fetch the logs of a container')
    .argument('<container>', 'container name or id')
    .action(async (name: string, opts: LogsFlags) => {
      if (opts.follow === true) {
        // Following outlives a daemon restart (see LogResume); a TTY's raw stream cannot be resumed.
        const c = await client().json<ContainerJson>(cpath(name, '/json'));
        if (c.Config?.Tty !== true) { await followLogs(client(), c.Id, opts); return; }
      }
      const res = await client().stream(cpath(name, '/logs'), { query: logsQuery(opts) });
      // isulad says which framing it sends (as Docker's API 1.42: multiplexed-stream without a TTY);
      // a raw-stream answer may come from an older API that says it for both: then ask the container.
      const multiplexed = res.headers.get('content-type') === 'application/vnd.docker.multiplexed-stream'
        || (await client().json<ContainerJson>(cpath(name, '/json'))).Config?.Tty !== true;
      await copyBody(res.body, { multiplexed });
    }), (cmd) => cmd
    .option('--details', 'show extra details provided to logs')
    .option('-f, --follow', 'follow log output')
    .option('--since <time>', 'show logs since a timestamp (2013-01-02T13:23:37Z) or relative (42m)')
    .option('-n, --tail <n>', 'number of lines to show from the end of the logs', 'all')
    .option('-t, --timestamps', 'show timestamps')
    .option('--until <time>', 'show logs before a timestamp (2013-01-02T13:23:37Z) or relative (42m)'));

  lazyOptions(program, containerCommand(program, 'cp')
    .description("Copy files/folders between a container and the local filesystem ('-': a tar archive on stdin/stdout)")
    .argument('<source>', 'CONTAINER:SRC_PATH, SRC_PATH or -')
    .argument('<destination>', 'DEST_PATH, CONTAINER:DEST_PATH or -')
    .action(async (source: string, destination: string, opts: { archive?: boolean; followLink?: boolean }) => {
      try {
        await cpCommand(client(), source, destination, { followLink: opts.followLink === true, copyUIDGID: opts.archive === true });
      } catch (e) {
        if (e instanceof CopyError) fail(e.message);
        throw e;
      }
    }), (cmd) => cmd
    .option('-a, --archive', 'archive mode (copy all uid/gid information)')
    .option('-L, --follow-link', 'always follow symbol link in SRC_PATH'));

  lazyOptions(program, containerCommand(program, 'export')
    .description("Export a container's filesystem as a tar archive")
    .argument('<container>', 'container name or id')
    .action(async (name: string, opts: { output?: string }) => {
      if (opts.output === undefined && process.stdout.isTTY) throw new UsageError('cowardly refusing to save to a terminal. Use the -o flag or redirect');
      if (opts.output !== undefined) {
        try {
          validateOutputPath(opts.output);
        } catch (e) {
          fail(`failed to export container: ${(e as Error).message}`);
        }
      }
      const res = await client().stream(cpath(name, '/export'));
      if (opts.output === undefined) await copyBody(res.body, { multiplexed: false });
      else await copyToFile(opts.output, res.body);
    }), (cmd) => cmd
    .option('-o, --output <file>', 'write to a file, instead of STDOUT'));

  containerCommand(program, 'top')
    .description('Display the running processes of a container')
    .argument('<container>', 'container name or id')
    .argument('[ps-options...]', 'options for ps (e.g. -eo pid,comm)')
    .passThroughOptions()
    .allowUnknownOption()
    .action(async (name: string, psArgs: string[]) => {
      const top = await client().json<{ Titles?: string[]; Processes?: string[][] }>(cpath(name, '/top'), { query: { ps_args: psArgs.length > 0 ? psArgs.join(' ') : undefined } });
      out(formatTop(top));
    });

  lazyOptions(program, containerCommand(program, 'stats')
    .description('Display a live stream of container(s) resource usage statistics')
    .argument('[container...]', 'container names or ids (default: the running ones)')
    .action(async (names: string[], opts: StatsFlags) => {
      try {
        await statsCommand(client(), names, opts);
      } catch (e) {
        if (e instanceof Error && e.message.startsWith('template:')) throw new UsageError(e.message);
        throw e;
      }
    }), (cmd) => cmd
    .option('-a, --all', 'show all containers (default shows just running)')
    .option('--format <template>', 'Go template over .Container .Name .ID .CPUPerc .MemUsage .MemPerc .NetIO .BlockIO .PIDs; "table ..." adds a header')
    .option('--no-stream', 'disable streaming stats and only pull the first result')
    .option('--no-trunc', "don't truncate output"));

  lazyOptions(program, program
    .command('events')
    .description('Get real time events from the server')
    .action(async (opts: { since?: string; until?: string; filter?: string[]; format?: string }) => {
      let print: (line: string) => string;
      try {
        print = eventPrinter(opts.format);
      } catch (e) {
        fail(`Error parsing format: ${(e as Error).message}`, 64);
      }
      const now = Date.now();
      await client().request('/events', {
        query: {
          since: opts.since ? getTimestamp(opts.since, now) : undefined,
          until: opts.until ? getTimestamp(opts.until, now) : undefined,
          filters: filtersJson(opts.filter ?? []),
        },
        onData: jsonLines((line) => out(print(line))),
      });
    }), (cmd) => cmd
    .option('-f, --filter <key=value>', 'filter output: container, event, image, label, type, plugin; repeatable', collect)
    .option('--format <template>', 'format the output using a Go template ({{.Type}} {{.Action}} {{.Actor.ID}}), or json')
    .option('--since <time>', 'show all events created since a timestamp, RFC 3339 date or duration (10m)')
    .option('--until <time>', 'stream events until this timestamp'));
}

