/**
 * The container's output, from the files lxc's monitor hands the container
 * as stdout and stderr (`lxc.console.path = none`: the init inherits the
 * monitor's stdio), to core's k8s-file log and to attach clients.
 *
 * The container writes to plain files (O_APPEND), so it never blocks and
 * never gets SIGPIPE, whether the daemon is up or not. The daemon tails them
 * (inotify, plus a poll as a safety net) and writes the k8s-file log while it
 * runs; after a restart it goes on from the offsets it saved (`offsets`,
 * written at most every OFFSETS_SAVE_MS and at the end): output produced while
 * the daemon was down reaches the log, stamped when it is read. The raw
 * files' consumed head is given back to the file system with
 * `fallocate --punch-hole` (the files become sparse; their length stays), so
 * they do not grow on disk without bound.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import type { StdioStream } from '@isula/core';

/** Read (and logged) at once: 256 KiB keeps the appends few when a container floods its output. */
const READ_CHUNK = 256 * 1024;
const POLL_MS = 250;
const OFFSETS_SAVE_MS = 1000;
const PUNCH_EVERY_BYTES = 4 * 1024 * 1024;
/** A line longer than this is logged in `P` pieces (conmon's buffer is 8 KiB too). */
const MAX_LINE = 8192;

export interface Offsets { stdout: number; stderr: number }

export interface OutputPumpOptions {
  stdoutFile: string;
  stderrFile: string;
  /** k8s-file log; undefined: no log (attach still streams). */
  logPath?: string;
  logSizeMaxBytes?: number;
  offsetsFile: string;
  offsets: Offsets;
  /** Called on a write error of the log (disk full ...): the pump goes on for attach clients. */
  onError?: (err: unknown) => void;
}

/** `2026-11-23T09:17:40.975647758+00:00`, conmon's stamp. */
export function k8sTimestamp(d = new Date(), extraNs = 0): string {
  const iso = d.toISOString(); // 2026-11-23T09:17:40.975Z
  const ns = String(d.getUTCMilliseconds() * 1_000_000 + (extraNs % 1_000_000)).padStart(9, '0');
  return `${iso.slice(0, 19)}.${ns}+00:00`;
}

/**
 * Splits `data` (after `carry`) into k8s-file records, as one buffer (`text`)
 * and the new carry (an unfinished line). One concat for the whole chunk: a
 * container printing short lines fast makes millions of records.
 */
export function encodeRecords(stream: 'stdout' | 'stderr', carry: Buffer, data: Buffer, stamp: string, flush: boolean): { text: Buffer; count: number; carry: Buffer } {
  let buf = carry.length > 0 ? Buffer.concat([carry, data]) : data;
  const parts: Buffer[] = [];
  const headF = Buffer.from(`${stamp} ${stream} F `);
  const headP = Buffer.from(`${stamp} ${stream} P `);
  let count = 0;
  for (;;) {
    const nl = buf.indexOf(0x0a);
    if (nl >= 0 && nl <= MAX_LINE) {
      parts.push(headF, buf.subarray(0, nl + 1));
      buf = buf.subarray(nl + 1);
      count++;
      continue;
    }
    if (buf.length > MAX_LINE) {
      parts.push(headP, buf.subarray(0, MAX_LINE), NL);
      buf = buf.subarray(MAX_LINE);
      count++;
      continue;
    }
    break;
  }
  if (flush && buf.length > 0) {
    parts.push(headP, buf, NL);
    buf = Buffer.alloc(0);
    count++;
  }
  return { text: Buffer.concat(parts), count, carry: Buffer.from(buf) };
}
const NL = Buffer.from('\n');

/** encodeRecords, one buffer per record (tests). */
export function toRecords(stream: 'stdout' | 'stderr', carry: Buffer, data: Buffer, stamp: string, flush: boolean): { lines: Buffer[]; carry: Buffer } {
  const { text, carry: rest } = encodeRecords(stream, carry, data, stamp, flush);
  const lines: Buffer[] = [];
  for (let at = 0; at < text.length;) {
    const nl = text.indexOf(0x0a, at);
    lines.push(Buffer.from(text.subarray(at, nl + 1)));
    at = nl + 1;
  }
  return { lines, carry: rest };
}

class OutputStream implements StdioStream {
  readonly #pump: OutputPump;
  readonly #output: ((s: 1 | 2, c: Buffer) => void)[] = [];
  readonly #closeListeners: (() => void)[] = [];
  readonly #stdin: StdinWriter | undefined;
  #pending: [1 | 2, Buffer][] = [];
  #closed = false;

  constructor(pump: OutputPump, stdin: StdinWriter | undefined) {
    this.#pump = pump;
    this.#stdin = stdin;
  }

  deliver(s: 1 | 2, c: Buffer): void {
    if (this.#closed) return;
    if (this.#output.length === 0) this.#pending.push([s, c]);
    else for (const l of this.#output) l(s, c);
  }

  onOutput(listener: (stream: 1 | 2, chunk: Buffer) => void): void {
    this.#output.push(listener);
    const pending = this.#pending;
    this.#pending = [];
    for (const [s, c] of pending) listener(s, c);
  }

  onClose(listener: () => void): void {
    if (this.#closed) queueMicrotask(listener);
    else this.#closeListeners.push(listener);
  }

  async writeStdin(chunk: Buffer): Promise<void> {
    if (this.#stdin === undefined) return; // no -i: the container's stdin is /dev/null, as conmon without -i
    await this.#stdin.write(chunk);
  }

  async closeStdin(): Promise<void> {
    // Without StdinOnce a client's half-close leaves stdin open for the next one (conmon's --leave-stdin-open).
    if (this.#pump.stdinOnce) await this.#stdin?.close();
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#pump.detach(this);
    for (const l of this.#closeListeners.splice(0)) l();
  }
}

/**
 * The daemon's end of the container's stdin FIFO, opened read-write (its open
 * never blocks; the container sees EOF only once it is closed). A FIFO drops
 * its buffered data when the last descriptor goes, so a close asked for
 * before the container opened its end (stdin that ended before start) waits
 * until `started()`.
 */
export class StdinWriter {
  readonly #path: string;
  #fh: Promise<fs.promises.FileHandle> | undefined;
  #closeRequested = false;
  #started = false;
  #closed = false;

  constructor(fifoPath: string) {
    this.#path = fifoPath;
  }

  /** Opens the FIFO now (before the container starts), so the container's open finds a writer. */
  open(): Promise<fs.promises.FileHandle> {
    this.#fh ??= fsp.open(this.#path, fs.constants.O_RDWR);
    return this.#fh;
  }

  async write(chunk: Buffer): Promise<void> {
    if (this.#closeRequested || this.#closed) return;
    const fh = await this.open();
    for (let off = 0; off < chunk.length;) {
      const { bytesWritten } = await fh.write(chunk, off, Math.min(chunk.length - off, 65536));
      off += bytesWritten;
    }
  }

  /** The container holds its end now: a pending close can happen without losing data. */
  async started(): Promise<void> {
    this.#started = true;
    if (this.#closeRequested) await this.#doClose();
  }

  async close(): Promise<void> {
    this.#closeRequested = true;
    if (this.#started) await this.#doClose();
  }

  /** Daemon shutdown: our end goes whatever the state (the container then reads EOF). */
  async release(): Promise<void> {
    await this.#doClose();
  }

  async #doClose(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const fh = this.#fh;
    this.#fh = undefined;
    if (fh) await (await fh).close().catch(() => {});
  }

  get isClosed(): boolean {
    return this.#closed;
  }
}

export class OutputPump {
  readonly #o: OutputPumpOptions;
  readonly #offsets: Offsets;
  readonly #carry: { stdout: Buffer; stderr: Buffer } = { stdout: Buffer.alloc(0), stderr: Buffer.alloc(0) };
  readonly #streams = new Set<OutputStream>();
  readonly #watchers: fs.FSWatcher[] = [];
  readonly #punched: Offsets;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #again = false;
  #lastSave = 0;
  #saveTimer: NodeJS.Timeout | undefined;
  #logSize: number | undefined;
  #seq = 0;
  #stopped = false;
  stdin: StdinWriter | undefined;
  stdinOnce = false;

  constructor(o: OutputPumpOptions) {
    this.#o = o;
    this.#offsets = { ...o.offsets };
    this.#punched = { ...o.offsets };
  }

  /** Starts following the files. */
  start(): void {
    for (const f of [this.#o.stdoutFile, this.#o.stderrFile]) {
      try {
        const w = fs.watch(f, { persistent: false }, () => this.poke());
        w.on('error', () => w.close());
        this.#watchers.push(w);
      } catch {
        // The poll carries on.
      }
    }
    this.#timer = setInterval(() => this.poke(), POLL_MS);
    this.#timer.unref();
    this.poke();
  }

  /** A new attach client: output from now on (attach does not replay, as conmon's). */
  attach(): StdioStream {
    const s = new OutputStream(this, this.stdin);
    this.#streams.add(s);
    return s;
  }

  detach(s: OutputStream): void {
    this.#streams.delete(s);
  }

  poke(): void {
    if (this.#running) {
      this.#again = true;
      return;
    }
    this.#running = this.#pumpOnce(false).then(() => undefined, (err: unknown) => this.#o.onError?.(err)).finally(() => {
      this.#running = undefined;
      if (this.#again) {
        this.#again = false;
        this.poke();
      }
    });
  }

  /**
   * The container is gone: reads what is left, flushes unfinished lines,
   * saves the offsets, and ends every attach stream.
   */
  async finish(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#stopWatching();
    while (this.#running) await this.#running;
    // Everything the container wrote, however far behind the pump is (the files end now: bounded).
    try {
      for (let i = 0; i < 1_000_000 && (await this.#pumpOnce(false)); i++);
      await this.#pumpOnce(true);
    } catch (err) {
      this.#o.onError?.(err);
    }
    await this.#saveOffsets();
    await this.stdin?.release();
    for (const s of [...this.#streams]) s.close();
  }

  /** The daemon shuts down: stop following (the container goes on); offsets are saved. */
  async close(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#stopWatching();
    while (this.#running) await this.#running;
    await this.#saveOffsets();
    await this.stdin?.release();
    for (const s of [...this.#streams]) s.close();
  }

  #stopWatching(): void {
    for (const w of this.#watchers.splice(0)) w.close();
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    if (this.#saveTimer) clearTimeout(this.#saveTimer);
    this.#saveTimer = undefined;
  }

  /** One bounded pass over both files; true when something was read. */
  async #pumpOnce(flush: boolean): Promise<boolean> {
    let moved = false;
    for (const name of ['stdout', 'stderr'] as const) {
      const file = name === 'stdout' ? this.#o.stdoutFile : this.#o.stderrFile;
      let fh: fs.promises.FileHandle;
      try {
        fh = await fsp.open(file, 'r');
      } catch {
        continue;
      }
      try {
        const buf = Buffer.allocUnsafe(READ_CHUNK);
        // Bounded: at most what is there now plus one chunk per loop; a chatty container cannot pin us.
        for (let i = 0; i < 64; i++) {
          const { bytesRead } = await fh.read(buf, 0, READ_CHUNK, this.#offsets[name]);
          if (bytesRead === 0) break;
          const data = Buffer.from(buf.subarray(0, bytesRead));
          this.#offsets[name] += bytesRead;
          moved = true;
          for (const s of this.#streams) s.deliver(name === 'stdout' ? 1 : 2, data);
          await this.#log(name, data, false);
          if (bytesRead < READ_CHUNK) break;
        }
        if (flush) await this.#log(name, Buffer.alloc(0), true);
      } finally {
        await fh.close();
      }
      if (this.#offsets[name] - this.#punched[name] >= PUNCH_EVERY_BYTES) this.#punch(name, file);
    }
    if (moved) this.#scheduleSave();
    if (moved && !this.#stopped) this.#again = true; // more may have come meanwhile
    return moved;
  }

  async #log(name: 'stdout' | 'stderr', data: Buffer, flush: boolean): Promise<void> {
    if (this.#o.logPath === undefined) return;
    const { text, carry } = encodeRecords(name, this.#carry[name], data, k8sTimestamp(new Date(), this.#seq++), flush);
    this.#carry[name] = carry;
    if (text.length === 0) return;
    const max = this.#o.logSizeMaxBytes;
    if (max !== undefined) {
      this.#logSize ??= await fsp.stat(this.#o.logPath).then((s) => s.size, () => 0);
      if (this.#logSize + text.length > max && this.#logSize > 0) {
        // conmon's --log-size-max: the log is replaced by an empty file; core keeps the old one through a hard link.
        const tmp = `${this.#o.logPath}.new`;
        await fsp.writeFile(tmp, '', { mode: 0o600 });
        await fsp.rename(tmp, this.#o.logPath);
        this.#logSize = 0;
      }
      this.#logSize += text.length;
    }
    await fsp.appendFile(this.#o.logPath, text, { mode: 0o600 });
  }

  #punch(name: 'stdout' | 'stderr', file: string): void {
    // Never the unfinished line: a resumed pump reads it again.
    const upTo = Math.floor((this.#offsets[name] - this.#carry[name].length) / 4096) * 4096;
    this.#punched[name] = this.#offsets[name];
    execFile('fallocate', ['--punch-hole', '--offset', '0', '--length', String(upTo), file], { timeout: 10_000 }, () => {});
  }

  #scheduleSave(): void {
    if (this.#saveTimer) return;
    const wait = Math.max(0, this.#lastSave + OFFSETS_SAVE_MS - Date.now());
    this.#saveTimer = setTimeout(() => {
      this.#saveTimer = undefined;
      void this.#saveOffsets();
    }, wait);
    this.#saveTimer.unref();
  }

  async #saveOffsets(): Promise<void> {
    this.#lastSave = Date.now();
    const tmp = `${this.#o.offsetsFile}.tmp`;
    try {
      // An unfinished line is not in the log yet: a resumed pump reads it again.
      const saved = { stdout: this.#offsets.stdout - this.#carry.stdout.length, stderr: this.#offsets.stderr - this.#carry.stderr.length };
      await fsp.writeFile(tmp, JSON.stringify(saved), { mode: 0o600 });
      await fsp.rename(tmp, this.#o.offsetsFile);
    } catch {
      // The container dir is gone (deleted): nothing to resume.
    }
  }
}

export async function readOffsets(file: string): Promise<Offsets> {
  try {
    const v = JSON.parse(await fsp.readFile(file, 'utf8')) as Partial<Offsets>;
    return { stdout: typeof v.stdout === 'number' ? v.stdout : 0, stderr: typeof v.stderr === 'number' ? v.stderr : 0 };
  } catch {
    return { stdout: 0, stderr: 0 };
  }
}
