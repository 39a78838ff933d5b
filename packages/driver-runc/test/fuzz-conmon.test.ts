/**
 * Fuzzing what the driver reads from conmon and the runtime (fast-check):
 * conmon's sync-pipe lines (whole, and cut at random points through the line
 * reader, with overlong lines), exit files and pid files (numbers, garbage,
 * empty, huge, a FIFO, a directory, a symlink), `runc state` and `ps --format
 * json` output (parsed directly and through a fake runtime binary), runc's
 * state.json as the in-process delete reads it (with cgroup paths aimed at a
 * canary directory), and conmon's k8s-file log as core's reader gives it back
 * for `logs`. Each parser returns a value or throws an IsulaError, never
 * another error, never hangs, never reads without bound; a real container's
 * exit file corrupted before the driver reads it gives exit code 255.
 * FUZZ_RUNS sets the size, FUZZ_SEED replays.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { after, test } from 'node:test';
import fc from 'fast-check';
import { isIsulaError } from '@isula/core';
import { LineReader, MAX_SYNC_LINE_BYTES, parseSync } from '../src/conmon.js';
import { deleteStoppedNatively, isRuncState } from '../src/native-delete.js';
import { RuntimeCli, parsePids, parseRuntimeState } from '../src/runtime-cli.js';
import { LOST_EXIT_CODE, exitStatusOf, parseExitCode, parsePid, readExitFile, readPidFile } from '../src/status-files.js';
import { leftovers, makeEnv, makeSpec, needs, removeRootfs, uniqueId, waitFor } from './helpers.js';

const RUNS = Number(process.env['FUZZ_RUNS'] ?? 200);
const seed = process.env['FUZZ_SEED'] === undefined ? {} : { seed: Number(process.env['FUZZ_SEED']) };
const params = { numRuns: RUNS, ...seed };
after(() => removeRootfs());

function assertIsulaError(err: unknown, code?: string): asserts err is Error & { code: string } {
  assert.ok(isIsulaError(err), `not an IsulaError: ${(err as Error)?.stack ?? String(err)}`);
  if (code !== undefined) assert.equal(err.code, code, err.message);
}

/** Odd JSON values for any field. */
const odd = fc.oneof(
  fc.jsonValue({ maxDepth: 2 }),
  fc.constantFrom(null, [], {}, -1, 0, 1.5, -0, 1e300, 2 ** 31, -(2 ** 31) - 1, 2 ** 53, '', '42', 'x', true, [1], { data: 1 }),
);

// ---- conmon's sync pipe ------------------------------------------------------------

const syncLine = fc.oneof(
  { weight: 3, arbitrary: fc.record({ data: fc.oneof(fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }), odd), message: fc.oneof(fc.string({ maxLength: 40 }), odd) }, { requiredKeys: [] }).map((o) => JSON.stringify(o)) },
  { weight: 1, arbitrary: odd.map((v) => JSON.stringify(v)) },
  { weight: 1, arbitrary: fc.string({ maxLength: 60 }) },
  { weight: 1, arbitrary: fc.constantFrom('{"data": 1', '{"data": 12}}', '{"data":-1,"message":"exec: \\"x\\": executable file not found in $PATH"}', '{"data":1e3}', '{"data":"12"}', 'null', '[]', '{}', '{"data":-0}', '{"__proto__":{"data":1}}') },
);

/** What conmon's parser must give for a line: the int32 `data`, or nothing. */
function expectedSync(line: string): number | undefined {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch {
    return undefined;
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v) || !Object.hasOwn(v, 'data')) return undefined;
  const data = (v as { data: unknown }).data;
  return typeof data === 'number' && Number.isInteger(data) && data >= -(2 ** 31) && data < 2 ** 31 ? data + 0 : undefined;
}

test('parseSync: any line is an int32 message or RUNTIME_FAILED', () => {
  fc.assert(fc.property(syncLine, (line) => {
    const want = expectedSync(line);
    try {
      const m = parseSync(line, 'sync');
      assert.equal(m.data, want, `accepted ${line}`);
      assert.ok(Object.is(m.data, want), 'no -0');
      if (m.message !== undefined) assert.equal(typeof m.message, 'string');
    } catch (err) {
      assertIsulaError(err, 'RUNTIME_FAILED');
      assert.equal(want, undefined, `refused ${line}`);
    }
  }), { ...params, examples: [['{"data":1.5}'], ['{"data":1e300}'], ['{"data":-0}'], ['null'], ['{"__proto__":{"data":1}}']] });
});

test('the sync line reader: any chunking gives the same messages; an endless line is refused, not buffered', async () => {
  const input = fc.record({
    lines: fc.array(syncLine, { maxLength: 6 }),
    cuts: fc.array(fc.nat(), { maxLength: 6 }),
    // An endless "line" at the end (conmon does not do that: something else is on the pipe).
    overlong: fc.oneof({ weight: 5, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) }),
    closes: fc.boolean(),
  });
  await fc.assert(fc.asyncProperty(input, async ({ lines, cuts, overlong, closes }) => {
    const text = lines.map((l) => `${l.replaceAll('\n', ' ')}\n`).join('') + (overlong ? 'x'.repeat(MAX_SYNC_LINE_BYTES + 10) : '');
    const stream = new PassThrough();
    const reader = new LineReader(stream, 'sync');
    const at = [...new Set(cuts.map((c) => c % (text.length + 1)))].sort((a, b) => a - b);
    let prev = 0;
    for (const c of [...at, text.length]) {
      if (c > prev) stream.write(text.slice(prev, c));
      prev = c;
    }
    if (closes) stream.end();
    // The expected sequence: each non-empty line gives its message, or an error for that line alone.
    const expected: (number | 'error')[] = [];
    for (const l of lines.map((x) => x.replaceAll('\n', ' ').trim()).filter((x) => x !== '')) {
      const want = expectedSync(l);
      expected.push(want ?? 'error');
    }
    const got: (number | 'error' | 'timeout' | 'closed')[] = [];
    for (let i = 0; i < expected.length + 1; i++) {
      try {
        got.push((await reader.next(overlong || closes ? 1000 : 30)).data);
      } catch (err) {
        assertIsulaError(err);
        if (err.code === 'TIMEOUT') got.push('timeout');
        else if (/closed/.test(err.message)) got.push('closed');
        else got.push('error');
      }
    }
    reader.destroy();
    assert.deepEqual(got.slice(0, expected.length), expected);
    // After the lines: an overlong tail is an error (not a wait), a closed pipe says so, else nothing yet.
    assert.equal(got[expected.length], overlong ? 'error' : closes ? 'closed' : 'timeout');
  }), { ...params, numRuns: Math.max(20, Math.round(RUNS / 2)) });
});

// ---- exit files and pid files -------------------------------------------------------

type FileKind = 'file' | 'missing' | 'dir' | 'fifo' | 'symlink';
const fileContent = fc.oneof(
  { weight: 4, arbitrary: fc.integer({ min: 0, max: 255 }).chain((n) => fc.constantFrom(`${n}`, `${n}\n`)) },
  { weight: 2, arbitrary: fc.constantFrom('', '\n', '-1', '256', '1e3', '0x10', ' 0', '0 ', '00', '137\n\n', '4294967296', '99999999999999999999', '12\0', 'NaN', 'Infinity', '+1', '1.0') },
  { weight: 2, arbitrary: fc.string({ maxLength: 40 }) },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 40 }).map((b) => Buffer.from(b).toString('latin1')) },
  // Huge: far past what is read. A digit string, so reading all of it would "succeed".
  { weight: 1, arbitrary: fc.integer({ min: 33, max: 2 << 20 }).map((n) => '1'.repeat(n)) },
);
const fileKind = fc.constantFrom<FileKind>('file', 'file', 'file', 'file', 'missing', 'dir', 'fifo', 'symlink');

function place(file: string, kind: FileKind, content: string): void {
  fs.rmSync(file, { recursive: true, force: true });
  if (kind === 'file') fs.writeFileSync(file, content, 'latin1');
  else if (kind === 'dir') fs.mkdirSync(file);
  else if (kind === 'fifo') execFileSync('mkfifo', [file]);
  else if (kind === 'symlink') {
    fs.writeFileSync(`${file}.target`, content, 'latin1');
    fs.symlinkSync(`${file}.target`, file);
  }
}

/** Resolves with `p`, or fails the test when it takes longer than `ms` (a read that blocks). */
async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`${what} still reading after ${ms} ms`)), ms); });
  try {
    return await Promise.race([p, late]);
  } finally {
    clearTimeout(timer);
  }
}

test('exit and pid files: any content or file type gives a status or "missing", quickly, never an error', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'isula-fuzz-exit-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'ctr');
  const kinds = new Map<string, number>();
  await fc.assert(fc.asyncProperty(fileContent, fileKind, async (content, kind) => {
    place(file, kind, content);
    const r = await within(readExitFile(file), 2000, 'readExitFile');
    kinds.set(r.kind, (kinds.get(r.kind) ?? 0) + 1);
    const strict = /^\d+\n?$/.test(content) && Number(content) <= 255;
    if (kind === 'missing') assert.equal(r.kind, 'missing');
    else if (kind === 'file' && strict) assert.deepEqual(r.kind === 'ok' && r.value.exitCode, Number(content), `status of ${JSON.stringify(content)}`);
    else assert.equal(r.kind, 'corrupt', `${kind} ${JSON.stringify(content.slice(0, 40))} (${content.length} bytes) read as ${JSON.stringify(r)}`);
    const status = exitStatusOf(r);
    if (status !== undefined) {
      assert.ok(Number.isInteger(status.exitCode) && status.exitCode >= 0 && status.exitCode <= 255, `exit code ${status.exitCode}`);
      assert.ok(!Number.isNaN(status.exitedAt.getTime()), 'a valid exit time');
      if (r.kind === 'corrupt') assert.equal(status.exitCode, LOST_EXIT_CODE);
    }
    const pid = await within(readPidFile(file), 2000, 'readPidFile');
    if (pid !== undefined) {
      assert.equal(kind, 'file');
      assert.ok(Number.isInteger(pid) && pid > 0 && pid <= 0x3fffff, `pid ${pid}`);
      assert.equal(pid, parsePid(content));
    }
  }), {
    ...params,
    // Found: an empty file read as exit 0 (success); a FIFO blocked the read for ever; 8 MiB were read whole.
    examples: [['', 'file'], ['\n', 'file'], ['0', 'fifo'], ['1'.repeat(8 << 20), 'file'], ['-1', 'file'], ['1e3', 'file'], ['137', 'symlink']],
  });
  t.diagnostic(`exit files: ${RUNS} runs, ${JSON.stringify(Object.fromEntries(kinds))}`);
  assert.deepEqual(parseExitCode('137\n'), { exitCode: 137 });
});

// ---- runc state / ps ---------------------------------------------------------------

const stateOut = fc.oneof(
  { weight: 3, arbitrary: fc.record({
    ociVersion: fc.constant('1.0.2'),
    id: fc.constant('c1'),
    status: fc.oneof(fc.constantFrom('created', 'running', 'paused', 'stopped', 'creating', 'RUNNING', ''), odd),
    pid: fc.oneof(fc.integer({ min: 1, max: 4_000_000 }), odd),
    bundle: fc.constant('/b'),
  }, { requiredKeys: [] }).map((o) => JSON.stringify(o)) },
  { weight: 1, arbitrary: odd.map((v) => JSON.stringify(v)) },
  { weight: 1, arbitrary: fc.string({ maxLength: 60 }) },
  { weight: 1, arbitrary: fc.constantFrom('', 'null', '{', '[]', '{"status":"running"}', '{"status":"running","pid":"12"}', '{"status":"running","pid":1.5}', '{"status":"paused","pid":-3}') },
);
const psOut = fc.oneof(
  fc.array(fc.oneof(fc.integer({ min: 1, max: 4_000_000 }), odd), { maxLength: 5 }).map((a) => JSON.stringify(a)),
  odd.map((v) => JSON.stringify(v)),
  fc.string({ maxLength: 40 }),
  fc.constantFrom('', 'null', '[', '[1,2', '{"pids":[1]}'),
);

function checkState(s: { status: string; pid: number }): void {
  assert.ok(['created', 'running', 'paused', 'stopped'].includes(s.status), s.status);
  if (s.status === 'stopped') assert.equal(s.pid, 0);
  else assert.ok(Number.isSafeInteger(s.pid) && s.pid > 0, `pid ${s.pid}`);
}

test('parseRuntimeState and parsePids: any output is a state / pid list or RUNTIME_FAILED', () => {
  fc.assert(fc.property(stateOut, psOut, (st, ps) => {
    try {
      checkState(parseRuntimeState(st, 'runc', 'c1'));
    } catch (err) {
      assertIsulaError(err, 'RUNTIME_FAILED');
      assert.match(err.message, /runc/, 'names the runtime');
    }
    try {
      const pids = parsePids(ps, 'runc', 'c1');
      for (const p of pids) assert.ok(Number.isSafeInteger(p) && p > 0, `pid ${p}`);
    } catch (err) {
      assertIsulaError(err, 'RUNTIME_FAILED');
    }
  }), { ...params, examples: [['null', 'null'], ['{"status":"running"}', '{}'], ['', ''], ['[]', '[1.5,-2,"3"]']] });
});

test('RuntimeCli state/ps through a runtime binary printing anything: a state, pids, or an IsulaError', async (t) => {
  const bin = fs.mkdtempSync(path.join(os.tmpdir(), 'isula-fuzz-runtime-'));
  t.after(() => fs.rmSync(bin, { recursive: true, force: true }));
  // The fake runtime prints what the property put in `out` (stdout) and `err` (stderr), and exits with `code`.
  fs.writeFileSync(path.join(bin, 'fake-runtime'), `#!/bin/sh\ncat ${bin}/out\ncat ${bin}/err >&2\nexit $(cat ${bin}/code)\n`, { mode: 0o755 });
  const cli = new RuntimeCli({ name: 'fake', path: path.join(bin, 'fake-runtime'), root: bin, args: [] });
  const stderr = fc.constantFrom('', 'container "c1" does not exist', 'time="x" level=error msg="boom"', 'garbage\n\n');
  await fc.assert(fc.asyncProperty(fc.oneof(stateOut, psOut), stderr, fc.constantFrom(0, 0, 0, 1, 2), async (out, err, code) => {
    fs.writeFileSync(path.join(bin, 'out'), out);
    fs.writeFileSync(path.join(bin, 'err'), err);
    fs.writeFileSync(path.join(bin, 'code'), String(code));
    try {
      checkState(await cli.state('c1', { timeoutMs: 10_000 }));
    } catch (e) {
      assertIsulaError(e, 'RUNTIME_FAILED');
    }
    try {
      for (const p of await cli.pids('c1', { timeoutMs: 10_000 })) assert.ok(Number.isSafeInteger(p) && p > 0);
    } catch (e) {
      assertIsulaError(e, 'RUNTIME_FAILED');
    }
  }), { ...params, numRuns: Math.max(15, Math.round(RUNS / 8)) }); // two runtime processes per run
});

// ---- runc's state.json, as the in-process delete reads it ----------------------------

test('native delete: any state.json is deleted as runc would or left to runc; nothing outside /sys/fs/cgroup is removed', async (t) => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'isula-fuzz-native-'));
  t.after(() => fs.rmSync(root, { recursive: true, force: true }));
  // An empty directory: rmdir would take it. The cgroup paths aim at it through `..`.
  const canary = path.join(root, 'canary');
  fs.mkdirSync(canary);
  const absent = `/sys/fs/cgroup/isula-fuzz-absent-${process.pid}`;
  // Only paths that name no real cgroup: a fuzzer must never rmdir the host's.
  const cgroupPath = fc.oneof(
    fc.constantFrom(`${absent}/memory`, `${absent}/a/b`, `/sys/fs/cgroup/../../..${canary}`, `/sys/fs/cgroup/memory/../../../..${canary}`, `${absent}/../../../..${canary}`, 'relative/path', '', canary),
    fc.constantFrom(1, null, true, [], {}),
  );
  const ns = fc.record({ type: fc.oneof(fc.constantFrom('NEWPID', 'NEWNET', 'NEWNS'), odd), path: fc.oneof(fc.constantFrom('', '/proc/1/ns/pid'), odd) }, { requiredKeys: [] });
  // What runc 1.1 writes for a stopped container it would delete this way, with one member replaced.
  const plain = { init_process_pid: 999_999_999, init_process_start: 1, rootless: false, intel_rdt_path: '', cgroup_paths: { memory: `${absent}/memory` }, config: { namespaces: [{ type: 'NEWNS', path: '' }, { type: 'NEWPID', path: '' }], cgroups: { systemd: false }, Hooks: null } };
  const nearPlain = fc.tuple(fc.constantFrom(...Object.keys(plain), 'none'), fc.oneof(odd, fc.dictionary(fc.constantFrom('memory', 'pids'), cgroupPath, { maxKeys: 2 })))
    .map(([key, value]) => JSON.stringify(key === 'none' ? plain : { ...plain, [key]: value }));
  const stateJson = fc.oneof(
    { weight: 3, arbitrary: nearPlain },
    { weight: 4, arbitrary: fc.record({
      init_process_pid: fc.oneof(fc.constant(999_999_999), fc.integer({ min: 1, max: 4_000_000 }), odd),
      init_process_start: fc.oneof(fc.nat(), odd),
      rootless: fc.oneof(fc.boolean(), odd),
      intel_rdt_path: fc.oneof(fc.constant(''), odd),
      cgroup_paths: fc.oneof(fc.dictionary(fc.constantFrom('memory', 'pids', 'cpu', ''), cgroupPath, { maxKeys: 3 }), odd),
      config: fc.oneof(fc.record({
        namespaces: fc.oneof(fc.array(fc.oneof(ns, odd), { maxLength: 3 }), fc.constant([{ type: 'NEWPID', path: '' }]), odd),
        cgroups: fc.oneof(fc.record({ systemd: fc.oneof(fc.boolean(), odd) }, { requiredKeys: [] }), odd),
        Hooks: fc.oneof(fc.constant(null), fc.constant({ poststop: [] }), fc.constant({ poststop: [{ path: '/bin/true' }] }), odd),
      }, { requiredKeys: [] }), odd),
    }, { requiredKeys: [] }).map((o) => JSON.stringify(o)) },
    { weight: 1, arbitrary: odd.map((v) => JSON.stringify(v)) },
    { weight: 1, arbitrary: fc.string({ maxLength: 40 }) },
  );
  // The aimed paths do resolve to the canary (a path one `..` short would test nothing).
  assert.equal(path.resolve(`/sys/fs/cgroup/../../..${canary}`), canary);
  assert.equal(path.resolve(`${absent}/../../../..${canary}`), canary);
  let run = 0;
  let natively = 0;
  await fc.assert(fc.asyncProperty(stateJson, async (json) => {
    const id = `c${++run}`;
    fs.mkdirSync(path.join(root, id));
    fs.writeFileSync(path.join(root, id, 'state.json'), json);
    let parsed: unknown;
    try {
      parsed = JSON.parse(json);
    } catch {
      parsed = undefined;
    }
    const isShaped = isRuncState(parsed);
    const deleted = await deleteStoppedNatively(root, id);
    assert.equal(typeof deleted, 'boolean');
    if (deleted) {
      natively++;
      assert.ok(isShaped, 'deleted from a state it could not read');
      assert.equal(fs.existsSync(path.join(root, id)), false, 'the state dir is gone');
    } else {
      fs.rmSync(path.join(root, id), { recursive: true, force: true });
    }
    assert.ok(fs.existsSync(canary), `the canary directory outside /sys/fs/cgroup was removed by ${json}`);
  }), {
    ...params,
    // Found: `null` and a non-array `namespaces` threw TypeErrors; `/sys/fs/cgroup/../../..<dir>` removed <dir>.
    examples: [
      ['null'],
      ['{"config":{"namespaces":{"type":"NEWPID"}}}'],
      ['{"config":null}'],
      [JSON.stringify({ init_process_pid: 999_999_999, cgroup_paths: { memory: `/sys/fs/cgroup/../../..${canary}` }, config: { namespaces: [{ type: 'NEWPID', path: '' }] } })],
      [JSON.stringify({ init_process_pid: 999_999_999, cgroup_paths: { memory: 7 }, config: { namespaces: [{ type: 'NEWPID', path: '' }] } })],
    ],
  });
  t.diagnostic(`state.json: ${RUNS} runs, ${natively} deleted in-process`);
});

// ---- conmon's k8s-file log, read back for `logs` ------------------------------------

interface LogRecordLike { stream: 1 | 2; time: string; timeNs: bigint; data: Buffer }
interface LogsModule {
  parseLogLine(line: string | Buffer): LogRecordLike | undefined;
  readLogs(opts: {
    path: string; follow: boolean; tail?: number; sinceNs?: bigint; untilNs?: bigint; stdout: boolean; stderr: boolean;
    signal: AbortSignal; onRecord(r: LogRecordLike): void | Promise<void>;
  }): Promise<void>;
}

/**
 * core's log reader is what `logs` uses on the file conmon writes; it is not
 * part of core's plugin API, so it is loaded from beside core's entry point
 * (types restated above).
 */
async function coreLogs(): Promise<LogsModule> {
  return (await import(new URL('./container/logs.js', import.meta.resolve('@isula/core')).href)) as LogsModule;
}

/** core's limit for one line (MAX_LINE_BYTES in its logs.ts): a longer one is skipped. */
const MAX_LINE_BYTES = 4 * 1024 * 1024;
/** Past the limit by more than one of core's 64 KiB reads: always skipped, forwards and with --tail. */
const OVERLONG_BYTES = MAX_LINE_BYTES + 128 * 1024;

test('the k8s-file log conmon writes, read back: any file gives the records its lines hold, or an IsulaError', async (t) => {
  const { parseLogLine, readLogs } = await coreLogs();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'isula-fuzz-logs-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'ctr.log');
  const stamp = fc.oneof(
    { weight: 4, arbitrary: fc.integer({ min: 0, max: 4_000_000_000 }).chain((s) => fc.nat(999_999_999).map((ns) => `${new Date(s * 1000).toISOString().slice(0, 19)}.${String(ns).padStart(9, '0')}+00:00`)) },
    { weight: 1, arbitrary: fc.constantFrom('2026-11-23T09:17:40Z', '2026-11-23T09:17:40.1-05:30', '2026-02-30T00:00:00Z', '2026-13-01T00:00:00Z', '0000-01-01T00:00:00Z', '9999-12-31T23:59:59.999999999+23:59', '2026-11-23 09:17:40Z', 'now', '', '2026-11-23T09:17:40.1234567890Z') },
  );
  const text = fc.oneof(fc.string({ maxLength: 30 }), fc.uint8Array({ maxLength: 30 }).map((b) => Buffer.from(b).toString('latin1').replaceAll('\n', ' ')), fc.constantFrom('', ' ', 'a b c', 'P', 'F'));
  const line = fc.oneof(
    { weight: 6, arbitrary: fc.record({ stamp, stream: fc.constantFrom('stdout', 'stderr', 'stdout', 'stderr', 'stdin', 'STDOUT', ''), tag: fc.constantFrom('F', 'P', 'F', 'P', 'X', '', 'FF'), text })
      .map((r) => `${r.stamp} ${r.stream} ${r.tag} ${r.text.replaceAll('\n', ' ')}`) },
    { weight: 1, arbitrary: fc.string({ maxLength: 50 }).map((s) => s.replaceAll('\n', ' ')) },
    { weight: 1, arbitrary: fc.constantFrom('', ' ', '2026-11-23T09:17:40.000000000+00:00 stdout F', '2026-11-23T09:17:40.000000000+00:00 stdout', '2026-11-23T09:17:40.000000000+00:00  stdout F x') },
    // Longer than core's line limit: skipped whole. Rare, each is 4 MiB of disk. (core checks the
    // limit per 64 KiB read: a line up to one read past it may still come out, so none is that long.)
    { weight: 1, arbitrary: fc.constantFrom(0, 0, 0, 0, 0, 0, 0, 0, 0, 1).map((n) => (n === 1 ? `2026-11-23T09:17:40.000000000+00:00 stdout F ${'y'.repeat(OVERLONG_BYTES)}` : '2026-11-23T09:17:40.000000000+00:00 stdout P ')) },
  );
  const opts = fc.record({
    tail: fc.oneof(fc.constant(undefined), fc.constantFrom(0, 1, 2, 5, 1000, -1)),
    stdout: fc.boolean(),
    stderr: fc.boolean(),
    // An unterminated last line (conmon mid-write) is not a record yet.
    unterminated: fc.boolean(),
  });
  let records = 0;
  await fc.assert(fc.asyncProperty(fc.array(line, { maxLength: 12 }), opts, async (lines, o) => {
    fs.writeFileSync(file, lines.join('\n') + (o.unterminated || lines.length === 0 ? '' : '\n'), 'latin1');
    // The records the lines hold, as parseLogLine reads each on its own.
    const complete = o.unterminated ? lines.slice(0, -1) : lines;
    let expected = complete.filter((l) => Buffer.byteLength(l, 'latin1') <= MAX_LINE_BYTES).map((l) => parseLogLine(Buffer.from(l, 'latin1')))
      .filter((r): r is LogRecordLike => r !== undefined && (r.stream === 1 ? o.stdout : o.stderr));
    const tail = o.tail !== undefined && o.tail >= 0 ? o.tail : undefined;
    if (tail !== undefined) expected = tail === 0 ? [] : expected.slice(-tail);
    const got: LogRecordLike[] = [];
    try {
      await within(readLogs({ path: file, follow: false, ...(o.tail !== undefined && { tail: o.tail }), stdout: o.stdout, stderr: o.stderr, signal: AbortSignal.timeout(10_000), onRecord: (r) => { got.push(r); } }), 10_000, 'readLogs');
    } catch (err) {
      assertIsulaError(err);
      return;
    }
    records += got.length;
    assert.deepEqual(got.map((r) => [r.stream, r.timeNs, r.data.toString('latin1')]), expected.map((r) => [r.stream, r.timeNs, r.data.toString('latin1')]));
    for (const r of got) {
      assert.ok(r.stream === 1 || r.stream === 2);
      assert.match(r.time, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{9}Z$/);
    }
  }), { ...params, numRuns: Math.max(30, Math.round(RUNS / 2)) });
  t.diagnostic(`logs: ${records} records read back`);

  // The generator's well-formed lines mean what conmon meant by them.
  fc.assert(fc.property(fc.constantFrom('stdout', 'stderr'), fc.constantFrom('F', 'P'), fc.string({ maxLength: 30 }).map((s) => s.replaceAll('\n', ' ')), (stream, tag, body) => {
    const r = parseLogLine(`2026-11-23T09:17:40.975647758+00:00 ${stream} ${tag} ${body}\n`);
    assert.ok(r !== undefined);
    assert.equal(r.stream, stream === 'stdout' ? 1 : 2);
    assert.equal(r.time, '2026-11-23T09:17:40.975647758Z');
    assert.equal(r.data.toString(), tag === 'F' ? `${body}\n` : body);
  }), params);
});

// ---- a real conmon's exit file, damaged before the driver reads it ------------------

test('a real container whose exit file is corrupted before the driver reads it: exit 255, delete leaves nothing', { skip: needs(), timeout: 120_000 }, async (t) => {
  const env = makeEnv();
  t.after(() => env.cleanup());
  const driver = env.driver('runc');
  const signal = () => AbortSignal.timeout(30_000);
  for (const [tag, damage] of [
    ['garbage', (f: string) => fs.writeFileSync(f, 'exit: three\n')],
    ['empty', (f: string) => fs.writeFileSync(f, '')],
    ['huge', (f: string) => fs.writeFileSync(f, '3'.repeat(4 << 20))],
    ['fifo', (f: string) => { fs.rmSync(f); execFileSync('mkfifo', [f]); }],
  ] as const) {
    const id = uniqueId(`exit-${tag}`);
    const spec = makeSpec(id, ['sh', '-c', 'exit 3']);
    const ref = env.bundle(id, spec);
    ref.persisted = (await driver.create(ref, { signal: signal(), spec, stdio: env.stdio(id) })).persisted;
    try {
      const exitFile = path.join(env.state, 'exits', id);
      await driver.start(ref, { signal: signal() });
      // conmon writes the file; the driver has not read it yet (nobody waits).
      await waitFor(() => fs.existsSync(exitFile), { timeoutMs: 10_000, what: `${exitFile}` });
      assert.equal(fs.readFileSync(exitFile, 'utf8'), '3', 'conmon wrote the real status');
      damage(exitFile);
      const status = await within(driver.wait(ref, { signal: signal() }), 10_000, `wait on a ${tag} exit file`);
      assert.equal(status.exitCode, LOST_EXIT_CODE, `${tag}: the code is lost, not made up`);
      assert.ok(!Number.isNaN(status.exitedAt.getTime()));
      assert.equal((await driver.restore(ref, { signal: signal() })).status, 'stopped');
    } finally {
      await driver.delete(ref, { signal: signal(), force: true });
    }
    assert.deepEqual(leftovers(env, 'runc', id), [], `${tag}: delete leaves nothing behind`);
  }
});
