import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { test } from 'node:test';
import { DetachKeyMatcher, monitorTtySize, parseDetachKeys } from '../src/attach.js';
import { EngineClient } from '../src/client.js';
import { buildExecConfig, eventPrinter, formatTop, logsQuery, parseEventLine } from '../src/commands-streams.js';
import { formatEvent, rfc3339NanoFixed } from '../src/format.js';
import {
  blockIo, bytesSize, cpuPercentUnix, emptyEntry, formatStats, goFormatG, humanSizeWithPrecision, memPercent, memUsageNoCache, networkIo, statsEntry,
} from '../src/stats-format.js';
import { getTimestamp, parseGoDuration } from '../src/timestamps.js';
import { startFakeDaemon } from './fake-daemon.js';

const NOW = Date.UTC(2026, 10, 23, 9, 17, 40, 500); // 2026-11-23T09:17:40.500Z
const NOW_S = Math.floor(NOW / 1000);

test('Go durations: units, fractions, sums, signs; "0" and junk rejected where Go rejects them', () => {
  assert.equal(parseGoDuration('10m'), 600e9);
  assert.equal(parseGoDuration('1h30m'), 5400e9);
  assert.equal(parseGoDuration('1.5s'), 1.5e9);
  assert.equal(parseGoDuration('300ms'), 300e6);
  assert.equal(parseGoDuration('-2h'), -7200e9);
  assert.equal(parseGoDuration('0'), 0);
  for (const bad of ['', '10', 'm', '1x', '1h 30m', '.s']) assert.throws(() => parseGoDuration(bad), /time: /, bad);
});

test('GetTimestamp: durations back from now to the millisecond; dates as seconds.nanoseconds; Unix seconds as typed', () => {
  const ms = String(NOW % 1000).padStart(3, '0');
  assert.equal(getTimestamp('10m', NOW), `${NOW_S - 600}.${ms}000000`);
  assert.equal(getTimestamp('1h30m', NOW), `${NOW_S - 5400}.${ms}000000`);
  assert.equal(getTimestamp('0s', NOW), `${NOW_S}.${ms}000000`, 'what happened this second is before "0s ago"');
  assert.equal(getTimestamp('1.5s', 1_000_000_000_250), '999999998.750000000');
  assert.equal(getTimestamp('2013-01-02T13:23:37Z', NOW), '1357133017.000000000');
  assert.equal(getTimestamp('2013-01-02T13:23:37.123456789Z', NOW), '1357133017.123456789');
  assert.equal(getTimestamp('2013-01-02T13:23:37.5+01:00', NOW), '1357129417.500000000');
  assert.equal(getTimestamp('2013-01-02T13:23+02:00', NOW), '1357125780.000000000');
  assert.equal(getTimestamp('2013-01-02T13Z', NOW), '1357131600.000000000');
  assert.equal(getTimestamp('2013-01-02Z', NOW), '1357084800.000000000');
  // No zone: the client's offset now (here given: UTC+8).
  assert.equal(getTimestamp('2013-01-02T13:23:37', NOW, 480), '1357104217.000000000');
  assert.equal(getTimestamp('2013-01-02', NOW, 0), '1357084800.000000000');
  assert.equal(getTimestamp('1700000000', NOW), '1700000000');
  assert.equal(getTimestamp('1700000000.123', NOW), '1700000000.123');
  assert.equal(getTimestamp('0', NOW), '0');
  assert.throws(() => getTimestamp('2013-13-02', NOW), /month out of range/);
  assert.throws(() => getTimestamp('2013-02-30T00:00:00Z', NOW), /day out of range/);
  assert.throws(() => getTimestamp('yesterday', NOW), { message: 'failed to parse value as time or duration: "yesterday"' });
});

test('the logs query: both streams, tail all by default, flags only when given, times converted', () => {
  assert.deepEqual(logsQuery({}, NOW), { stdout: '1', stderr: '1', follow: undefined, tail: 'all', since: undefined, until: undefined, timestamps: undefined, details: undefined });
  assert.deepEqual(logsQuery({ follow: true, tail: '10', since: '10m', until: '2013-01-02T13:23:37Z', timestamps: true, details: true }, NOW), {
    stdout: '1', stderr: '1', follow: '1', tail: '10', since: `${NOW_S - 600}.500000000`, until: '1357133017.000000000', timestamps: '1', details: '1',
  });
});

test("docker's CPU %: container delta over system delta, times the online CPUs (else the per-CPU count)", () => {
  const v = {
    cpu_stats: { cpu_usage: { total_usage: 300_000_000, percpu_usage: [1, 2, 3, 4] }, system_cpu_usage: 12_000_000_000, online_cpus: 2 },
    precpu_stats: { cpu_usage: { total_usage: 100_000_000 }, system_cpu_usage: 10_000_000_000 },
  };
  assert.equal(cpuPercentUnix(v), 20); // 0.2e9 / 2e9 * 2 * 100
  assert.equal(cpuPercentUnix({ ...v, cpu_stats: { ...v.cpu_stats, online_cpus: 0 } }), 40);
  assert.equal(cpuPercentUnix({ ...v, precpu_stats: { cpu_usage: { total_usage: 400_000_000 }, system_cpu_usage: 10_000_000_000 } }), 0);
  assert.equal(cpuPercentUnix({}), 0);
});

test("docker's memory: usage less inactive_file (cgroup v1's total_inactive_file first), percent of the limit", () => {
  assert.equal(memUsageNoCache({ usage: 1000, stats: { total_inactive_file: 300, inactive_file: 100 } }), 700);
  assert.equal(memUsageNoCache({ usage: 1000, stats: { total_inactive_file: 3000, inactive_file: 100 } }), 900);
  assert.equal(memUsageNoCache({ usage: 1000, stats: { inactive_file: 5000 } }), 1000);
  assert.equal(memUsageNoCache({ usage: 1000 }), 1000);
  assert.equal(memPercent(2000, 500), 25);
  assert.equal(memPercent(0, 500), 0);
});

test('block I/O summed by the op\'s first letter, network over every interface', () => {
  assert.deepEqual(blockIo({ blkio_stats: { io_service_bytes_recursive: [{ op: 'Read', value: 10 }, { op: 'read', value: 5 }, { op: 'Write', value: 7 }, { op: 'Total', value: 99 }, { op: '', value: 1 }] } }), { read: 15, write: 7 });
  assert.deepEqual(blockIo({ blkio_stats: { io_service_bytes_recursive: null } }), { read: 0, write: 0 });
  assert.deepEqual(networkIo({ networks: { eth0: { rx_bytes: 1, tx_bytes: 2 }, eth1: { rx_bytes: 10, tx_bytes: 20 } } }), { rx: 11, tx: 22 });
});

test("Go's %g and go-units' sizes", () => {
  assert.deepEqual([1.5, 100, 999.5, 1234.5, 0.00012345, 12, 0].map((x) => goFormatG(x, 3)), ['1.5', '100', '1e+03', '1.23e+03', '0.000123', '12', '0']);
  assert.equal(goFormatG(0.00001234, 3), '1.23e-05');
  assert.equal(bytesSize(0), '0B');
  assert.equal(bytesSize(1023), '1023B');
  assert.equal(bytesSize(1536), '1.5KiB');
  assert.equal(bytesSize(7.77 * 1024 ** 3), '7.77GiB');
  assert.equal(bytesSize(100 * 1024 * 1024), '100MiB');
  assert.equal(humanSizeWithPrecision(1500, 3), '1.5kB');
  assert.equal(humanSizeWithPrecision(999_500, 3), '1e+03kB');
  assert.equal(humanSizeWithPrecision(648, 3), '648B');
  assert.equal(humanSizeWithPrecision(123_456_789, 3), '123MB');
});

test("the stats table: docker's columns and figures; an invalid row shows --; --format and no-trunc", () => {
  const id = 'abcdef0123456789'.repeat(4);
  const e = statsEntry('web', {
    name: '/web', id,
    cpu_stats: { cpu_usage: { total_usage: 2_000_000 }, system_cpu_usage: 1_000_000_000, online_cpus: 4 },
    precpu_stats: { cpu_usage: { total_usage: 1_000_000 }, system_cpu_usage: 500_000_000 },
    memory_stats: { usage: 3 * 1024 * 1024, limit: 1024 ** 3, stats: { inactive_file: 1024 * 1024 } },
    pids_stats: { current: 7 },
    networks: { eth0: { rx_bytes: 2_500_000, tx_bytes: 1200 } },
    blkio_stats: { io_service_bytes_recursive: [{ op: 'Read', value: 1_000_000 }, { op: 'Write', value: 4096 }] },
  });
  const invalid = { ...emptyEntry('db'), isInvalid: true };
  const table = formatStats([e, invalid], undefined, true).split('\n');
  assert.deepEqual(table, [
    'CONTAINER ID   NAME      CPU %     MEM USAGE / LIMIT   MEM %     NET I/O         BLOCK I/O     PIDS',
    'abcdef012345   web       0.80%     2MiB / 1GiB         0.20%     2.5MB / 1.2kB   1MB / 4.1kB   7',
    '               --        --        -- / --             --        --              --            --',
  ]);
  assert.equal(formatStats([e], 'table {{.Container}}\t{{.ID}}', false), `CONTAINER   CONTAINER ID\nweb         ${id}`);
  assert.equal(formatStats([e], '{{json .}}', true), '{"BlockIO":"1MB / 4.1kB","CPUPerc":"0.80%","Container":"web","ID":"abcdef012345","MemPerc":"0.20%","MemUsage":"2MiB / 1GiB","Name":"web","NetIO":"2.5MB / 1.2kB","PIDs":"7"}');
  assert.throws(() => formatStats([], '{{.Nope}}', true), /can't evaluate field Nope/);
});

test("top's table: docker's tabwriter with a minimum column width of 20", () => {
  const text = formatTop({ Titles: ['UID', 'PID', 'PPID', 'CMD'], Processes: [['root', '12345', '1', 'sleep 1000'], ['a-very-long-user-name-here', '2', '1', 'sh']] });
  assert.deepEqual(text.split('\n'), [
    `${'UID'.padEnd(29)}${'PID'.padEnd(20)}${'PPID'.padEnd(20)}CMD`,
    `${'root'.padEnd(29)}${'12345'.padEnd(20)}${'1'.padEnd(20)}sleep 1000`,
    `${'a-very-long-user-name-here'.padEnd(29)}${'2'.padEnd(20)}${'1'.padEnd(20)}sh`,
  ]);
  assert.equal(formatTop({ Titles: null, Processes: null }), '');
});

test("events: docker's line in the local zone with exact nanoseconds; attributes sorted", () => {
  const e = { Type: 'container', Action: 'start', Actor: { ID: 'abc', Attributes: { name: 'x', image: 'busybox' } }, timeNano: 1795425460975647758 };
  assert.equal(formatEvent(e, { timeNano: '1795425460975647758', offsetMin: 0 }), '2026-11-23T09:17:40.975647758Z container start abc (image=busybox, name=x)');
  assert.equal(formatEvent(e, { timeNano: '1795425460975647758', offsetMin: 60 }), '2026-11-23T10:17:40.975647758+01:00 container start abc (image=busybox, name=x)');
  assert.equal(formatEvent(e, { timeNano: '1795425460000000001', offsetMin: -330 }), '2026-11-23T03:47:40.000000001-05:30 container start abc (image=busybox, name=x)');
  assert.equal(formatEvent({ Type: 'image', Action: 'pull', Actor: { ID: 'busybox' }, time: 1795425460 }, { offsetMin: 0 }), '2026-11-23T09:17:40.000000000Z image pull busybox');
  assert.equal(formatEvent({ Type: 'network', Action: 'x', Actor: { ID: 'n' } }), 'network x n');
  assert.equal(rfc3339NanoFixed(0, '000000000', 0), '1970-01-01T00:00:00.000000000Z');
});

test('events: the exact timeNano survives parsing; templates see docker\'s Message fields; json is the line', () => {
  const line = '{"status":"die","id":"abc","from":"busybox","Type":"container","Action":"die","Actor":{"ID":"abc","Attributes":{"exitCode":"0"}},"scope":"local","time":1795425460,"timeNano":1795425460975647758}';
  const p = parseEventLine(line);
  assert.equal(p.timeNano, '1795425460975647758');
  assert.equal(p.view.Status, 'die');
  assert.equal(p.view.From, 'busybox');
  assert.equal(p.view.Scope, 'local');
  assert.equal(eventPrinter('{{.Status}} {{.ID}} {{.Actor.Attributes.exitCode}} {{.TimeNano}}')(line), 'die abc 0 1795425460975647758');
  assert.equal(eventPrinter('{{json .}}')(line), line);
  assert.equal(eventPrinter('json')(line), line);
  assert.throws(() => eventPrinter('{{if .Type}}'), /unexpected EOF/);
});

test("detach keys: docker's key names; the matcher finds the sequence across chunks and restarts on a broken prefix", () => {
  assert.deepEqual([...parseDetachKeys('ctrl-p,ctrl-q')], [16, 17]);
  assert.deepEqual([...parseDetachKeys('ctrl-@,ctrl-[,ctrl-\\,ctrl-],ctrl-^,ctrl-_,DEL,a')], [0, 27, 28, 29, 30, 31, 127, 97]);
  assert.throws(() => parseDetachKeys('ctrl-1'), { message: "unknown character: 'ctrl-1'" });
  assert.throws(() => parseDetachKeys('shift-a'), { message: "unknown character: 'shift-a'" });
  const m = new DetachKeyMatcher(parseDetachKeys('ctrl-p,ctrl-q'));
  assert.equal(m.push(Buffer.from('abc\x10')), -1);
  assert.equal(m.push(Buffer.from('\x11rest')), 1);
  const again = new DetachKeyMatcher(parseDetachKeys('ctrl-p,ctrl-q'));
  assert.equal(again.push(Buffer.from('\x10x\x10\x10\x11')), 5);
});

test('exec options: env files then -e (a bare name takes the client\'s value); -d attaches nothing', () => {
  const deps = { env: { HOME: '/root' }, readFile: () => 'A=1\n# comment\nHOME\n' };
  const c = buildExecConfig({ envFile: ['f'], env: ['B=2', 'HOME'], interactive: true, tty: true, user: '1000:1000', workdir: '/w', privileged: true, detachKeys: 'ctrl-x' }, ['sh'], deps);
  assert.deepEqual(c, { User: '1000:1000', Privileged: true, Tty: true, AttachStdin: true, AttachStdout: true, AttachStderr: true, Detach: false, DetachKeys: 'ctrl-x', Env: ['A=1', 'HOME=/root', 'B=2', 'HOME=/root'], WorkingDir: '/w', Cmd: ['sh'] });
  const d = buildExecConfig({ detach: true, interactive: true }, ['top'], deps);
  assert.deepEqual([d.AttachStdin, d.AttachStdout, d.AttachStderr, d.Detach], [false, false, false, true]);
  assert.throws(() => buildExecConfig({ env: ['=x'] }, ['sh'], deps), /invalid argument "=x" for "-e, --env" flag/);
});

test('the TTY size follows the window: resized now and on each change; attach nudges one larger first', async (t) => {
  const daemon = await startFakeDaemon();
  t.after(() => daemon.close());
  const client = new EngineClient(daemon.host);
  const terminal = Object.assign(new EventEmitter(), { rows: 24, columns: 80 });
  const stop = monitorTtySize(client, '/exec/e1', terminal);
  const waitFor = async (n: number) => { for (let i = 0; i < 200 && daemon.log.length < n; i += 1) await new Promise((r) => setTimeout(r, 5)); };
  await waitFor(1);
  terminal.rows = 50;
  terminal.columns = 132;
  terminal.emit('resize');
  await waitFor(2);
  stop();
  terminal.emit('resize');
  assert.deepEqual(daemon.log, ['POST /exec/e1/resize?h=24&w=80', 'POST /exec/e1/resize?h=50&w=132']);
  daemon.log.length = 0;
  const stopAttach = monitorTtySize(client, '/containers/web', terminal, { nudge: true });
  await waitFor(2);
  stopAttach();
  assert.deepEqual(daemon.log, ['POST /containers/web/resize?h=51&w=133', 'POST /containers/web/resize?h=50&w=132']);
});

test('a failing first resize is retried 5 times, then reported once', async (t) => {
  const daemon = await startFakeDaemon();
  t.after(() => daemon.close());
  const client = new EngineClient(daemon.host);
  let gaveUp = 0;
  const done = new Promise<void>((resolve) => {
    monitorTtySize(client, '/nope/x', Object.assign(new EventEmitter(), { rows: 10, columns: 10 }), { retryDelayMs: 1, onGiveUp: () => { gaveUp += 1; resolve(); } });
  });
  await done;
  assert.equal(gaveUp, 1);
  assert.equal(daemon.log.filter((l) => l.startsWith('POST /nope/x/resize')).length, 6);
});
