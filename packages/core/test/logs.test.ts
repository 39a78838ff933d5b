import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { tempDir, waitFor } from './log-helpers.js';
import { LogRotation } from '../src/container/log-rotation.js';
import { parseLogLine, readLogs, type LogRecord, type ReadLogsOptions } from '../src/container/logs.js';

/** True when `p` settles within `ms`. */
async function settlesWithin(p: Promise<unknown>, ms: number): Promise<boolean> {
  const timeout = new AbortController();
  const result = await Promise.race([p.then(() => true), delay(ms, false, { signal: timeout.signal }).catch(() => false)]);
  timeout.abort();
  return result;
}

const BASE_NS = BigInt(Date.UTC(2026, 10, 23, 9, 17, 40)) * 1_000_000n;

/** conmon's timestamp: RFC3339 with nine fraction digits and a numeric offset. */
function conmonTime(ns: bigint): string {
  const secs = new Date(Number(ns / 1_000_000n)).toISOString().slice(0, 19);
  return `${secs}.${(ns % 1_000_000_000n).toString().padStart(9, '0')}+00:00`;
}

function line(stream: 'stdout' | 'stderr', text: string | Buffer, opts: { tag?: 'F' | 'P'; timeNs?: bigint } = {}): Buffer {
  return Buffer.concat([Buffer.from(`${conmonTime(opts.timeNs ?? BASE_NS)} ${stream} ${opts.tag ?? 'F'} `), Buffer.from(text), Buffer.from('\n')]);
}

/**
 * Stands in for conmon 2.1.6's k8s-file writer (ctr_logging.c), which the
 * tests cannot run without a container: the same record format, and with
 * `maxSize` the same replacement when the next record would pass it: fsync,
 * close, open `<path>.tmp` O_TRUNC, rename over `<path>`.
 */
class FakeConmon {
  readonly path: string;
  readonly #maxSize: number | undefined;
  #fh: FileHandle;
  #written = 0;
  #seq = 0;

  private constructor(file: string, fh: FileHandle, maxSize: number | undefined) {
    this.path = file;
    this.#fh = fh;
    this.#maxSize = maxSize;
  }

  static async open(file: string, opts: { maxSize?: number } = {}): Promise<FakeConmon> {
    return new FakeConmon(file, await fs.open(file, 'a', 0o640), opts.maxSize);
  }

  async write(stream: 'stdout' | 'stderr', text: string | Buffer, opts: { tag?: 'F' | 'P'; timeNs?: bigint } = {}): Promise<void> {
    const data = line(stream, text, { timeNs: opts.timeNs ?? BASE_NS + BigInt(++this.#seq) * 1000n, ...(opts.tag !== undefined && { tag: opts.tag }) });
    if (this.#maxSize !== undefined && this.#written + data.length > this.#maxSize) await this.replace();
    await this.#fh.write(data);
    this.#written += data.length;
  }

  /** Writes raw bytes (a torn or foreign line). */
  async writeRaw(data: string | Buffer): Promise<void> {
    await this.#fh.write(typeof data === 'string' ? Buffer.from(data) : data);
  }

  /** conmon's reopen_k8s_file(). */
  async replace(): Promise<void> {
    await this.#fh.sync();
    await this.#fh.close();
    this.#fh = await fs.open(`${this.path}.tmp`, 'w', 0o640);
    await fs.rename(`${this.path}.tmp`, this.path);
    this.#written = 0;
  }

  /** Not conmon's way (copytruncate-style); readers handle it anyway. */
  async truncateInPlace(): Promise<void> {
    await this.#fh.truncate(0);
    this.#written = 0;
  }

  async close(): Promise<void> {
    await this.#fh.close();
  }
}

async function conmon(t: TestContext, file: string, opts: { maxSize?: number } = {}): Promise<FakeConmon> {
  const w = await FakeConmon.open(file, opts);
  t.after(() => w.close().catch(() => {}));
  return w;
}

type ReadOpts = Partial<Omit<ReadLogsOptions, 'onRecord'>> & { path: string };

/** Starts a reader; a follower still running when the test ends (it failed) is aborted and awaited. */
function start(t: TestContext, opts: ReadOpts, onRecord?: (r: LogRecord) => void | Promise<void>): { records: LogRecord[]; texts: () => string[]; done: Promise<void> } {
  const records: LogRecord[] = [];
  const stop = new AbortController();
  const done = readLogs({
    follow: false,
    stdout: true,
    stderr: true,
    ...opts,
    signal: opts.signal === undefined ? stop.signal : AbortSignal.any([opts.signal, stop.signal]),
    onRecord: async (r) => {
      records.push(r);
      await onRecord?.(r);
    },
  });
  t.after(async () => {
    stop.abort();
    await done;
  });
  return { records, texts: () => records.map((r) => r.data.toString()), done };
}

async function collect(t: TestContext, opts: ReadOpts): Promise<LogRecord[]> {
  const s = start(t, opts);
  await s.done;
  return s.records;
}

const texts = (records: LogRecord[]): string[] => records.map((r) => r.data.toString());

/** Whether this process has `file` open (Linux /proc). */
async function holdsOpen(file: string): Promise<boolean> {
  const fds = await fs.readdir('/proc/self/fd');
  const targets = await Promise.all(fds.map((fd) => fs.readlink(`/proc/self/fd/${fd}`).catch(() => '')));
  return targets.includes(file);
}

/** A promise to resolve by hand (the container's exit). */
function gate(): { promise: Promise<void>; open: () => void } {
  let open = (): void => {};
  const promise = new Promise<void>((resolve) => { open = resolve; });
  return { promise, open };
}

// ---- parseLogLine ----------------------------------------------------------

test('parseLogLine reads a full stdout record and appends the newline', () => {
  const r = parseLogLine('2026-11-23T09:17:40.975647758+00:00 stdout F hello  world');
  assert.ok(r);
  assert.equal(r.stream, 1);
  assert.equal(r.time, '2026-11-23T09:17:40.975647758Z');
  assert.equal(r.timeNs, BigInt(Date.UTC(2026, 10, 23, 9, 17, 40)) * 1_000_000n + 975647758n);
  assert.equal(r.data.toString(), 'hello  world\n');
});

test('parseLogLine keeps a partial stderr record as is, carriage returns included', () => {
  const r = parseLogLine(Buffer.from('2026-11-23T09:17:40.000000001Z stderr P Password: \r\n'));
  assert.ok(r);
  assert.equal(r.stream, 2);
  assert.equal(r.time, '2026-11-23T09:17:40.000000001Z');
  assert.equal(r.data.toString(), 'Password: \r');
});

test('parseLogLine converts offsets to UTC and pads short fractions to nine digits', () => {
  const cases: Array<[string, string]> = [
    ['2026-11-23T14:47:40.5+05:30', '2026-11-23T09:17:40.500000000Z'],
    ['2025-12-31T23:30:00-01:00', '2026-01-01T00:30:00.000000000Z'],
    ['2024-02-29T00:00:00.123z', '2024-02-29T00:00:00.123000000Z'],
    ['1969-12-31T23:59:59.999999999Z', '1969-12-31T23:59:59.999999999Z'],
    ['0001-01-01T00:00:00Z', '0001-01-01T00:00:00.000000000Z'],
  ];
  for (const [ts, want] of cases) {
    const r = parseLogLine(`${ts} stdout F x`);
    assert.equal(r?.time, want, ts);
    assert.equal(parseLogLine(`${want} stdout F x`)?.timeNs, r?.timeNs, ts);
  }
  assert.equal(parseLogLine('2025-12-31T23:30:00-01:00 stdout F x')?.timeNs, BigInt(Date.parse('2026-01-01T00:30:00Z')) * 1_000_000n);
});

test('parseLogLine accepts an empty text and keeps non-UTF-8 bytes', () => {
  assert.equal(parseLogLine('2026-11-23T09:17:40Z stdout F ')?.data.toString(), '\n');
  assert.equal(parseLogLine('2026-11-23T09:17:40Z stdout F')?.data.toString(), '\n');
  assert.equal(parseLogLine('2026-11-23T09:17:40Z stdout P ')?.data.length, 0);
  const bytes = Buffer.from([0xff, 0xfe, 0x00, 0x20, 0x80]);
  assert.deepEqual(parseLogLine(Buffer.concat([Buffer.from('2026-11-23T09:17:40Z stdout P '), bytes]))?.data, bytes);
});

test('parseLogLine returns undefined for malformed lines', () => {
  for (const bad of [
    '', 'garbage', '2026-11-23T09:17:40Z', '2026-11-23T09:17:40Z stdout', '2026-11-23T09:17:40Z stdin F x',
    '2026-11-23T09:17:40Z stdout X x', '2026-11-23T09:17:40Z stdout Fx', '2026-11-23T09:17:40Z stdout  F x',
    '2026-13-01T00:00:00Z stdout F x', '2026-02-29T00:00:00Z stdout F x', '2026-11-23T24:00:00Z stdout F x',
    '2026-11-23T09:17:60Z stdout F x', '2026-11-23T09:17:40 stdout F x', '2026-11-23T09:17:40.1234567891Z stdout F x',
    '2026-11-23 09:17:40Z stdout F x', '2026-11-23T09:17:40+0100 stdout F x', '2026-11-23T09:17:40+24:00 stdout F x',
  ]) {
    assert.equal(parseLogLine(bad), undefined, bad);
  }
});

// ---- reading existing logs -----------------------------------------------------

test('readLogs reads rotated files, a pending hold and the log, oldest first, each inode once', async (t) => {
  const dir = await tempDir(t, 'isula-core-logs-');
  const log = path.join(dir, 'container.log');
  await fs.writeFile(`${log}.2`, Buffer.concat([line('stdout', 'a1'), line('stdout', 'a2')]));
  await fs.writeFile(`${log}.1`, line('stdout', 'b1'));
  await fs.writeFile(`${log}.hold`, line('stderr', 'c1'));
  await fs.writeFile(log, Buffer.concat([line('stdout', 'd1'), line('stderr', 'd2')]));
  assert.deepEqual(texts(await collect(t, { path: log })), ['a1\n', 'a2\n', 'b1\n', 'c1\n', 'd1\n', 'd2\n']);
  // Once the hold is the current inode again it is not read twice.
  await fs.rm(`${log}.hold`);
  await fs.link(log, `${log}.hold`);
  assert.deepEqual(texts(await collect(t, { path: log })), ['a1\n', 'a2\n', 'b1\n', 'd1\n', 'd2\n']);
});

test('readLogs shows only the requested streams', async (t) => {
  const dir = await tempDir(t, 'isula-core-logs-');
  const log = path.join(dir, 'container.log');
  const w = await conmon(t, log);
  await w.write('stdout', 'out1');
  await w.write('stderr', 'err1');
  await w.write('stdout', 'out2');
  assert.deepEqual(texts(await collect(t, { path: log, stderr: false })), ['out1\n', 'out2\n']);
  const errs = await collect(t, { path: log, stdout: false });
  assert.deepEqual(texts(errs), ['err1\n']);
  assert.equal(errs[0]?.stream, 2);
  assert.deepEqual(await collect(t, { path: log, stdout: false, stderr: false }), []);
});

test('readLogs keeps records from since and up to until, both inclusive', async (t) => {
  const dir = await tempDir(t, 'isula-core-logs-');
  const log = path.join(dir, 'container.log');
  const w = await conmon(t, log);
  for (let i = 1; i <= 5; i++) await w.write('stdout', `r${i}`, { timeNs: BASE_NS + BigInt(i) * 1_000_000_000n });
  const at = (i: number): bigint => BASE_NS + BigInt(i) * 1_000_000_000n;
  assert.deepEqual(texts(await collect(t, { path: log, sinceNs: at(2), untilNs: at(4) })), ['r2\n', 'r3\n', 'r4\n']);
  assert.deepEqual(texts(await collect(t, { path: log, sinceNs: at(4) + 1n })), ['r5\n']);
  assert.deepEqual(texts(await collect(t, { path: log, untilNs: at(1) - 1n })), []);
  assert.deepEqual(texts(await collect(t, { path: log, tail: 2, untilNs: at(3) })), ['r2\n', 'r3\n']);
});

test('readLogs with tail returns the last N records across files; 0 none, negative all', async (t) => {
  const dir = await tempDir(t, 'isula-core-logs-');
  const log = path.join(dir, 'container.log');
  await fs.writeFile(`${log}.1`, Buffer.concat(['a1', 'a2', 'a3'].map((s) => line('stdout', s))));
  await fs.writeFile(log, Buffer.concat(['b1', 'b2'].map((s) => line('stdout', s))));
  assert.deepEqual(texts(await collect(t, { path: log, tail: 3 })), ['a3\n', 'b1\n', 'b2\n']);
  assert.deepEqual(texts(await collect(t, { path: log, tail: 1 })), ['b2\n']);
  assert.deepEqual(texts(await collect(t, { path: log, tail: 0 })), []);
  assert.deepEqual(texts(await collect(t, { path: log, tail: -1 })), ['a1\n', 'a2\n', 'a3\n', 'b1\n', 'b2\n']);
  assert.deepEqual(texts(await collect(t, { path: log, tail: 100 })), ['a1\n', 'a2\n', 'a3\n', 'b1\n', 'b2\n']);
});

test('readLogs tail counts only the records that pass the stream filter', async (t) => {
  const dir = await tempDir(t, 'isula-core-logs-');
  const log = path.join(dir, 'container.log');
  const w = await conmon(t, log);
  for (const [s, text] of [['stderr', 'e1'], ['stderr', 'e2'], ['stdout', 'o1'], ['stderr', 'e3'], ['stdout', 'o2']] as const) await w.write(s, text);
  assert.deepEqual(texts(await collect(t, { path: log, tail: 2, stdout: false })), ['e2\n', 'e3\n']);
});

test('readLogs skips malformed lines and leaves out an unterminated last line', async (t) => {
  const dir = await tempDir(t, 'isula-core-logs-');
  const log = path.join(dir, 'container.log');
  await fs.writeFile(log, Buffer.concat([
    Buffer.from('not a record\n'), line('stdout', 'ok1'), Buffer.from('\n'),
    Buffer.from('2026-11-23T09:17:40Z stdin F nope\n'), line('stdout', 'ok2'), line('stdout', 'being written').subarray(0, 40),
  ]));
  assert.deepEqual(texts(await collect(t, { path: log })), ['ok1\n', 'ok2\n']);
  assert.deepEqual(texts(await collect(t, { path: log, tail: 5 })), ['ok1\n', 'ok2\n']);
  assert.deepEqual(texts(await collect(t, { path: log, tail: 1 })), ['ok2\n']);
});

test('readLogs gives partial records without a newline, so they join into the original output', async (t) => {
  const dir = await tempDir(t, 'isula-core-logs-');
  const log = path.join(dir, 'container.log');
  const w = await conmon(t, log);
  await w.write('stdout', 'Password: ', { tag: 'P' });
  await w.write('stdout', 'long line cut by the ', { tag: 'P' });
  await w.write('stdout', 'buffer');
  const records = await collect(t, { path: log });
  assert.equal(records.length, 3);
  assert.equal(Buffer.concat(records.map((r) => r.data)).toString(), 'Password: long line cut by the buffer\n');
});

test('readLogs on a missing log gives nothing', async (t) => {
  const dir = await tempDir(t, 'isula-core-logs-');
  const log = path.join(dir, 'container.log');
  assert.deepEqual(await collect(t, { path: log }), []);
  assert.deepEqual(await collect(t, { path: log, tail: 3 }), []);
  assert.deepEqual(await collect(t, { path: path.join(dir, 'gone', 'container.log') }), []);
});

test('readLogs with a tail too large to hold counts instead: the same last N records across files, in order', async (t) => {
  const dir = await tempDir(t, 'isula-core-logs-');
  const log = path.join(dir, 'container.log');
  const n = 150_000;
  const texts1: Buffer[] = [];
  for (let i = 0; i < n; i++) texts1.push(line(i % 3 === 0 ? 'stderr' : 'stdout', `${'y'.repeat(60)} ${i}`, { timeNs: BASE_NS + BigInt(i) }));
  await fs.writeFile(`${log}.1`, Buffer.concat(texts1.slice(0, n / 2)));
  await fs.writeFile(log, Buffer.concat(texts1.slice(n / 2)));
  const tail = 140_000; // ~20 MiB of records: over the 16 MiB kept in memory.
  const records = await collect(t, { path: log, tail });
  assert.equal(records.length, tail);
  assert.equal(records[0]?.data.toString(), `${'y'.repeat(60)} ${n - tail}\n`);
  assert.equal(records.at(-1)?.data.toString(), `${'y'.repeat(60)} ${n - 1}\n`);
  assert.equal(records[1]?.stream, (n - tail + 1) % 3 === 0 ? 2 : 1);
  const onlyErr = await collect(t, { path: log, tail, stdout: false });
  assert.equal(onlyErr.length, n / 3, 'fewer stderr records than the tail: all of them');
});

test('readLogs with tail 5 on a 50 MB log returns its last five records', async (t) => {
  const dir = await tempDir(t, 'isula-core-logs-');
  const log = path.join(dir, 'container.log');
  const fh = await fs.open(log, 'w');
  const filler = line('stdout', `${'x'.repeat(70)} filler`);
  const block = Buffer.concat(Array.from({ length: Math.ceil((1024 * 1024) / filler.length) }, () => filler));
  for (let i = 0; i < 50; i++) await fh.write(block);
  for (let i = 1; i <= 7; i++) await fh.write(line(i % 2 === 0 ? 'stderr' : 'stdout', `last${i}`, { timeNs: BASE_NS + BigInt(i) }));
  await fh.close();
  assert.ok((await fs.stat(log)).size > 50 * 1024 * 1024);
  const records = await collect(t, { path: log, tail: 5 });
  assert.deepEqual(texts(records), ['last3\n', 'last4\n', 'last5\n', 'last6\n', 'last7\n']);
  assert.deepEqual(records.map((r) => r.stream), [1, 2, 1, 2, 1]);
});

test('readLogs reassembles lines split across read chunks, forwards and backwards', async (t) => {
  const dir = await tempDir(t, 'isula-core-logs-');
  const log = path.join(dir, 'container.log');
  // Deterministic pseudo-random lengths; one line far longer than a chunk.
  let seed = 42;
  const rand = (n: number): number => { seed = (seed * 1103515245 + 12345) % 2 ** 31; return seed % n; };
  const expected: string[] = [];
  const parts: Buffer[] = [];
  for (let i = 0; i < 3000; i++) {
    const text = i === 1500 ? 'L'.repeat(200 * 1024) : `${i}:${'abcdefghij'.repeat(rand(300))}`;
    expected.push(`${text}\n`);
    parts.push(line(i % 3 === 0 ? 'stderr' : 'stdout', text, { timeNs: BASE_NS + BigInt(i) }));
  }
  // Split over a rotated file and the log at an arbitrary record.
  await fs.writeFile(`${log}.1`, Buffer.concat(parts.slice(0, 1234)));
  await fs.writeFile(log, Buffer.concat(parts.slice(1234)));
  assert.deepEqual(texts(await collect(t, { path: log })), expected);
  assert.deepEqual(texts(await collect(t, { path: log, tail: 2000 })), expected.slice(-2000));
  const stderrOnly = expected.filter((_, i) => i % 3 === 0);
  assert.deepEqual(texts(await collect(t, { path: log, stdout: false, tail: 700 })), stderrOnly.slice(-700));
});

test('readLogs skips a line longer than 4 MiB instead of holding it', async (t) => {
  const dir = await tempDir(t, 'isula-core-logs-');
  const log = path.join(dir, 'container.log');
  await fs.writeFile(log, Buffer.concat([line('stdout', 'before'), line('stdout', 'y'.repeat(5 * 1024 * 1024)), line('stdout', 'after')]));
  assert.deepEqual(texts(await collect(t, { path: log })), ['before\n', 'after\n']);
  assert.deepEqual(texts(await collect(t, { path: log, tail: 2 })), ['before\n', 'after\n']);
});

test('readLogs draws the 4 MiB line bound at the same byte forwards and backwards (found by fuzzing)', async (t) => {
  const dir = await tempDir(t, 'isula-core-logs-');
  const log = path.join(dir, 'container.log');
  const header = line('stdout', '').length - 1; // the record's bytes before its text (the newline is not part of the line)
  const max = 4 * 1024 * 1024;
  // Lengths that end mid-chunk, just past the bound: before the fix the forward reader kept them, tail skipped them.
  for (const extra of [1, 1000, 40_000]) {
    await fs.writeFile(log, Buffer.concat([line('stdout', 'before'), line('stdout', 'y'.repeat(max - header + extra)), line('stdout', 'after')]));
    assert.deepEqual(texts(await collect(t, { path: log })), ['before\n', 'after\n'], `forwards, ${extra} over`);
    assert.deepEqual(texts(await collect(t, { path: log, tail: 3 })), ['before\n', 'after\n'], `backwards, ${extra} over`);
  }
  // Exactly at the bound: kept both ways.
  await fs.writeFile(log, Buffer.concat([line('stdout', 'before'), line('stdout', 'z'.repeat(max - header)), line('stdout', 'after')]));
  assert.equal((await collect(t, { path: log })).length, 3);
  assert.equal((await collect(t, { path: log, tail: 3 })).length, 3);
});

test('readLogs returns at once when aborted before it starts', async (t) => {
  const dir = await tempDir(t, 'isula-core-logs-');
  const log = path.join(dir, 'container.log');
  await fs.writeFile(log, line('stdout', 'x'));
  assert.deepEqual(await collect(t, { path: log, follow: true, signal: AbortSignal.abort() }), []);
});

// ---- following -------------------------------------------------------------------

test('follow streams new records and, once the writer is done, drains the rest and returns', async (t) => {
  const dir = await tempDir(t, 'isula-core-logs-');
  const log = path.join(dir, 'container.log');
  const w = await conmon(t, log);
  await w.write('stdout', 'old');
  const exited = gate();
  const s = start(t, { path: log, follow: true, writerDone: exited.promise });
  await waitFor(() => s.records.length === 1);
  await w.write('stderr', 'new1');
  await waitFor(() => s.records.length === 2);
  await w.write('stdout', 'last1');
  await w.write('stdout', 'last2');
  exited.open();
  await s.done;
  assert.deepEqual(s.texts(), ['old\n', 'new1\n', 'last1\n', 'last2\n']);
});

test('follow returns after reading what exists when the writer is already done', async (t) => {
  const dir = await tempDir(t, 'isula-core-logs-');
  const log = path.join(dir, 'container.log');
  const w = await conmon(t, log);
  await w.write('stdout', 'only');
  assert.deepEqual(texts(await collect(t, { path: log, follow: true, writerDone: Promise.resolve() })), ['only\n']);
});

test('follow with tail 0 shows only records written after it started', async (t) => {
  const dir = await tempDir(t, 'isula-core-logs-');
  const log = path.join(dir, 'container.log');
  const w = await conmon(t, log);
  await w.write('stdout', 'old1');
  await w.write('stdout', 'old2');
  const exited = gate();
  const s = start(t, { path: log, follow: true, tail: 0, writerDone: exited.promise });
  // Written once the reader holds the log open and has had time to find its end; earlier it would be an old record.
  await waitFor(() => holdsOpen(log));
  await delay(30);
  await w.write('stdout', 'new');
  await waitFor(() => s.records.length === 1);
  exited.open();
  await s.done;
  assert.deepEqual(s.texts(), ['new\n']);
});

test('follow with tail shows the last records, then new ones', async (t) => {
  const dir = await tempDir(t, 'isula-core-logs-');
  const log = path.join(dir, 'container.log');
  const w = await conmon(t, log);
  for (const text of ['a', 'b', 'c']) await w.write('stdout', text);
  const exited = gate();
  const s = start(t, { path: log, follow: true, tail: 2, writerDone: exited.promise });
  await waitFor(() => s.records.length === 2);
  await w.write('stdout', 'd');
  exited.open();
  await s.done;
  assert.deepEqual(s.texts(), ['b\n', 'c\n', 'd\n']);
});

test('follow gives a line being written once its newline arrives', async (t) => {
  const dir = await tempDir(t, 'isula-core-logs-');
  const log = path.join(dir, 'container.log');
  const w = await conmon(t, log);
  const whole = line('stdout', 'slowly written');
  await w.writeRaw(whole.subarray(0, 20));
  const exited = gate();
  const s = start(t, { path: log, follow: true, writerDone: exited.promise });
  await delay(50);
  assert.equal(s.records.length, 0);
  await w.writeRaw(whole.subarray(20, 45));
  await delay(30);
  await w.writeRaw(whole.subarray(45));
  await waitFor(() => s.records.length === 1);
  exited.open();
  await s.done;
  assert.deepEqual(s.texts(), ['slowly written\n']);
});

test('follow stops promptly when aborted, while waiting and while a record is being handled', async (t) => {
  const dir = await tempDir(t, 'isula-core-logs-');
  const log = path.join(dir, 'container.log');
  const w = await conmon(t, log);
  await w.write('stdout', 'one');
  const waiting = new AbortController();
  const s = start(t, { path: log, follow: true, signal: waiting.signal });
  await waitFor(() => s.records.length === 1);
  waiting.abort();
  assert.equal(await settlesWithin(s.done, 1000), true);

  await w.write('stdout', 'two');
  const busy = new AbortController();
  const s2 = start(t, { path: log, follow: true, signal: busy.signal }, () => { busy.abort(); });
  assert.equal(await settlesWithin(s2.done, 1000), true);
  assert.deepEqual(s2.texts(), ['one\n'], 'no record after the abort');
});

test('follow waits for a missing log to appear, and returns on exit if it never does', async (t) => {
  const dir = await tempDir(t, 'isula-core-logs-');
  const log = path.join(dir, 'container.log');
  const exited = gate();
  const s = start(t, { path: log, follow: true, writerDone: exited.promise });
  await delay(50);
  const w = await conmon(t, log);
  await w.write('stdout', 'started');
  await waitFor(() => s.records.length === 1);
  exited.open();
  await s.done;
  assert.deepEqual(s.texts(), ['started\n']);

  const never = gate();
  const s2 = start(t, { path: path.join(dir, 'other.log'), follow: true, writerDone: never.promise });
  await delay(30);
  never.open();
  assert.equal(await settlesWithin(s2.done, 1000), true);
  assert.deepEqual(s2.records, []);
});

test('follow restarts at offset 0 when the log is truncated in place', async (t) => {
  const dir = await tempDir(t, 'isula-core-logs-');
  const log = path.join(dir, 'container.log');
  const w = await conmon(t, log);
  for (const text of ['first', 'second', 'third']) await w.write('stdout', text);
  const exited = gate();
  const s = start(t, { path: log, follow: true, writerDone: exited.promise });
  await waitFor(() => s.records.length === 3);
  await w.truncateInPlace();
  await w.write('stdout', 'again');
  await waitFor(() => s.records.length === 4);
  await w.write('stdout', 'more');
  exited.open();
  await s.done;
  assert.deepEqual(s.texts(), ['first\n', 'second\n', 'third\n', 'again\n', 'more\n']);
});

test('follow survives conmon replacing the log, with no record lost or repeated', async (t) => {
  const dir = await tempDir(t, 'isula-core-logs-');
  const log = path.join(dir, 'container.log');
  const w = await conmon(t, log, { maxSize: 1000 });
  const exited = gate();
  const s = start(t, { path: log, follow: true, writerDone: exited.promise });
  const expected: string[] = [];
  for (let i = 0; i < 150; i++) {
    await w.write(i % 4 === 0 ? 'stderr' : 'stdout', `line-${i}`);
    expected.push(`line-${i}\n`);
    await delay(3);
  }
  exited.open();
  await s.done;
  assert.deepEqual(s.texts(), expected);
  assert.deepEqual(s.records.map((r) => r.timeNs), [...s.records.map((r) => r.timeNs)].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)));
});

test('follow survives replacement and rotation together, and a later read finds every kept record', async (t) => {
  const dir = await tempDir(t, 'isula-core-logs-');
  const log = path.join(dir, 'container.log');
  const w = await conmon(t, log, { maxSize: 600 });
  const rotation = new LogRotation({ intervalMs: 5 });
  t.after(() => rotation.close());
  await rotation.track(log, { maxFiles: 3 });
  const exited = gate();
  const s = start(t, { path: log, follow: true, writerDone: exited.promise });
  const expected: string[] = [];
  for (let i = 0; i < 150; i++) {
    await w.write('stdout', `line-${i}`);
    expected.push(`line-${i}\n`);
    await delay(2);
  }
  exited.open();
  await s.done;
  assert.deepEqual(s.texts(), expected);
  await rotation.tick();
  // Three files of at most 600 bytes hold the newest records, in order.
  const kept = texts(await collect(t, { path: log }));
  assert.ok(kept.length > 10 && kept.length < 40, `kept ${kept.length}`);
  assert.deepEqual(kept, expected.slice(-kept.length));
});

test('follow reads a rotated file it never saw as the log when the log was replaced twice meanwhile', async (t) => {
  const dir = await tempDir(t, 'isula-core-logs-');
  const log = path.join(dir, 'container.log');
  const w = await conmon(t, log);
  const rotation = new LogRotation({ intervalMs: 60_000 });
  t.after(() => rotation.close());
  await rotation.track(log, { maxFiles: 3 });
  await w.write('stdout', 'a0');
  await w.write('stdout', 'a1');
  const release = gate();
  t.after(release.open);
  const exited = gate();
  // The reader is held inside its first onRecord (backpressure) while conmon replaces the log twice.
  const s = start(t, { path: log, follow: true, writerDone: exited.promise }, (r) => (r.data.toString() === 'a0\n' ? release.promise : undefined));
  await waitFor(() => s.records.length === 1);
  await w.replace();
  await w.write('stdout', 'b0');
  await rotation.tick();
  await w.replace();
  await w.write('stdout', 'c0');
  await rotation.tick();
  release.open();
  await waitFor(() => s.records.length === 4);
  exited.open();
  await s.done;
  assert.deepEqual(s.texts(), ['a0\n', 'a1\n', 'b0\n', 'c0\n']);
});

test('follow stops at the first record past until', async (t) => {
  const dir = await tempDir(t, 'isula-core-logs-');
  const log = path.join(dir, 'container.log');
  const w = await conmon(t, log);
  const untilNs = BigInt(Date.now()) * 1_000_000n + 3_600_000_000_000n;
  await w.write('stdout', 'before', { timeNs: untilNs - 1n });
  const s = start(t, { path: log, follow: true, untilNs, writerDone: new Promise(() => {}) });
  await waitFor(() => s.records.length === 1);
  await w.write('stdout', 'at', { timeNs: untilNs });
  await w.write('stdout', 'past', { timeNs: untilNs + 1n });
  await w.write('stdout', 'later', { timeNs: untilNs - 5n });
  assert.equal(await settlesWithin(s.done, 2000), true);
  assert.deepEqual(s.texts(), ['before\n', 'at\n']);
});

test('follow stops once wall time passes until, even when nothing is written', async (t) => {
  const dir = await tempDir(t, 'isula-core-logs-');
  const log = path.join(dir, 'container.log');
  const w = await conmon(t, log);
  const now = BigInt(Date.now()) * 1_000_000n;
  await w.write('stdout', 'now', { timeNs: now });
  const s = start(t, { path: log, follow: true, untilNs: now + 200_000_000n, writerDone: new Promise(() => {}) });
  assert.equal(await settlesWithin(s.done, 3000), true);
  assert.deepEqual(s.texts(), ['now\n']);

  const past = start(t, { path: log, follow: true, untilNs: now - 1n, writerDone: new Promise(() => {}) });
  assert.equal(await settlesWithin(past.done, 1000), true);
  assert.deepEqual(past.records, []);
});
