import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { spawn } from 'node:child_process';
import { LogResume } from '../src/commands-streams.js';
import { ISULA, runIsula, startFakeDaemon } from './fake-daemon.js';

const ID = 'c0ffee'.padEnd(64, '0');
const EXEC_ID = 'e0e0'.padEnd(64, '0');

test('exec: inspect, create, start over an upgrade, then the exit code from exec inspect', async () => {
  const r = await runIsula({ execExitCode: 3, output: [[1, 'out\n'], [2, 'err\n']] }, ['exec', '-e', 'A=1', '-u', 'nobody', '-w', '/tmp', 'web', 'sh', '-c', 'exit 3']);
  assert.equal(r.code, 3);
  assert.equal(r.stdout, 'out\n');
  assert.equal(r.stderr, 'err\n');
  assert.deepEqual(r.log, [
    'GET /containers/web/json',
    'POST /containers/web/exec',
    `POST /exec/${EXEC_ID}/start upgrade=tcp`,
    `GET /exec/${EXEC_ID}/json`,
  ]);
  assert.deepEqual(r.bodies.get('/containers/web/exec'), {
    User: 'nobody', Privileged: false, Tty: false, AttachStdin: false, AttachStdout: true, AttachStderr: true,
    Detach: false, DetachKeys: '', Env: ['A=1'], WorkingDir: '/tmp', Cmd: ['sh', '-c', 'exit 3'],
  });
  assert.deepEqual(r.bodies.get(`/exec/${EXEC_ID}/start`), { Detach: false, Tty: false });
});

test('exec -i sends stdin up the connection and half-closes it; flags after the command belong to it', async () => {
  const r = await runIsula({ output: [[1, 'ready\n']] }, ['exec', '-i', 'web', 'cat', '-n'], { input: 'abc' });
  assert.equal(r.code, 0);
  assert.equal(r.stdout, 'ready\nstdin:abc');
  const body = r.bodies.get('/containers/web/exec') as { AttachStdin: boolean; Cmd: string[] };
  assert.equal(body.AttachStdin, true);
  assert.deepEqual(body.Cmd, ['cat', '-n']);
});

test('exec -d starts detached, prints nothing and exits 0', async () => {
  const r = await runIsula({}, ['exec', '-d', 'web', 'sleep', '9']);
  assert.deepEqual([r.code, r.stdout, r.stderr], [0, '', '']);
  assert.deepEqual(r.log, ['GET /containers/web/json', 'POST /containers/web/exec', `POST /exec/${EXEC_ID}/start`]);
  assert.deepEqual(r.bodies.get(`/exec/${EXEC_ID}/start`), { Detach: true, Tty: false });
  const body = r.bodies.get('/containers/web/exec') as { AttachStdout: boolean; Detach: boolean };
  assert.deepEqual([body.AttachStdout, body.Detach], [false, true]);
});

test('exec exits 127/126 when the daemon cannot find or run the command, 125 on an engine error', async () => {
  const notFound = { status: 400, code: 'CONTAINER_CMD_NOT_FOUND', message: 'exec: "nope": executable file not found in $PATH' };
  const r127 = await runIsula({ execStartError: notFound }, ['exec', 'web', 'nope']);
  assert.equal(r127.code, 127);
  assert.match(r127.stderr, /Error response from daemon: exec: "nope": executable file not found/);
  const r126 = await runIsula({ execStartError: { ...notFound, code: 'CONTAINER_CMD_NOT_EXECUTABLE' } }, ['exec', 'web', '/etc']);
  assert.equal(r126.code, 126);
  const notRunning = await runIsula({ execCreateError: { status: 409, code: 'CONTAINER_STATE_CONFLICT', message: 'Container web is not running' } }, ['exec', 'web', 'ls']);
  assert.equal(notRunning.code, 125);
  const missing = await runIsula({ missing: ['ghost'] }, ['exec', 'ghost', 'ls']);
  assert.equal(missing.code, 125);
  assert.deepEqual(missing.log, ['GET /containers/ghost/json']);
  // The exec's own code also comes through exec inspect (docker's daemon reports 126/127 there).
  const viaInspect = await runIsula({ execExitCode: 127 }, ['exec', 'web', 'nope']);
  assert.equal(viaInspect.code, 127);
});

test('exec -i without a TTY: the detach keys are input like any other byte (moby watches them only with a TTY)', async () => {
  const r = await runIsula({ output: [[1, 'hi\n']], execExitCode: 0 }, ['exec', '-i', '--detach-keys', 'ctrl-a', 'web', 'sh'], { input: 'ls\n\x01' });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'hi\nstdin:ls\n\x01');
  assert.equal((r.bodies.get('/containers/web/exec') as { DetachKeys: string }).DetachKeys, 'ctrl-a');
  assert.ok(r.log.includes(`GET /exec/${EXEC_ID}/json`), r.log.join('\n'));
});

test('run -i without a TTY passes the detach keys through as input and detachKeys on attach', async () => {
  const r = await runIsula({ output: [[1, 'up\n']], exitCode: 9 }, ['run', '-i', '--detach-keys', 'ctrl-a', 'busybox', 'sh'], { input: '\x01' });
  assert.equal(r.code, 9);
  assert.equal(r.stdout, 'up\nstdin:\x01');
  assert.ok(r.log.includes(`POST /containers/${ID}/attach?stream=1&stdin=1&stdout=1&stderr=1&detachKeys=ctrl-a upgrade=tcp`), r.log.join('\n'));
});

test('run --log-driver/--log-opt set HostConfig.LogConfig; none with options is a usage error', async () => {
  const r = await runIsula({}, ['create', '--log-driver', 'json-file', '--log-opt', 'max-size=10m', '--log-opt', 'max-file=3', 'busybox']);
  assert.equal(r.code, 0);
  assert.deepEqual((r.bodies.get('/containers/create') as { HostConfig: { LogConfig: unknown } }).HostConfig.LogConfig, { Type: 'json-file', Config: { 'max-size': '10m', 'max-file': '3' } });
  const bad = await runIsula({}, ['create', '--log-driver', 'none', '--log-opt', 'a=b', 'busybox']);
  assert.equal(bad.code, 125);
  assert.deepEqual(bad.log, []);
});

test('attach: wait armed, inspect, attach, inspect again; exits with the container code', async () => {
  const r = await runIsula({ container: { Running: true }, output: [[1, 'line\n'], [2, 'warn\n']], exitCode: 4 }, ['attach', '--no-stdin', 'web']);
  assert.equal(r.code, 4);
  assert.equal(r.stdout, 'line\n');
  assert.equal(r.stderr, 'warn\n');
  assert.deepEqual(r.log, [
    'POST /containers/web/wait?condition=not-running',
    'GET /containers/web/json',
    'POST /containers/web/attach?stream=1&stdout=1&stderr=1 upgrade=tcp',
    'GET /containers/web/json',
  ]);
});

test('attach: stdin only when the container keeps it open; without a TTY the detach keys are input', async () => {
  const r = await runIsula({ container: { Running: true, OpenStdin: true } }, ['attach', '--detach-keys', 'ctrl-a', 'web'], { input: 'x\x01' });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'stdin:x\x01');
  assert.ok(r.log.includes('POST /containers/web/attach?stream=1&stdin=1&stdout=1&stderr=1&detachKeys=ctrl-a upgrade=tcp'), r.log.join('\n'));
});

test('attach to a stopped container fails like docker before attaching', async () => {
  const r = await runIsula({ container: { Running: false } }, ['attach', 'web']);
  assert.equal(r.code, 1);
  assert.equal(r.stderr, 'You cannot attach to a stopped container, start it first\n');
  assert.ok(!r.log.some((l) => l.includes('/attach')));
});

test('logs: one request when the daemon says the stream is multiplexed; frames split to stdout and stderr', async () => {
  const r = await runIsula({ logs: [[1, 'a\n'], [2, 'b\n'], [1, 'c\n']] }, ['logs', '-t', '--details', '--tail', '5', '--since', '1700000000.5', 'web']);
  assert.equal(r.code, 0);
  assert.equal(r.stdout, 'a\nc\n');
  assert.equal(r.stderr, 'b\n');
  assert.deepEqual(r.log, ['GET /containers/web/logs?stdout=1&stderr=1&tail=5&since=1700000000.5&timestamps=1&details=1']);
});

test('logs -f: inspect, follow with timestamps (stripped), and inspect again at the end to tell an exit from a daemon restart', async () => {
  const r = await runIsula({ container: { Running: false }, logs: [[1, '2026-11-23T09:17:40.000000001Z a\n'], [2, '2026-11-23T09:17:40.000000002Z b\n']] }, ['logs', '-f', '--tail', '5', 'web']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'a\n');
  assert.equal(r.stderr, 'b\n');
  assert.deepEqual(r.log, ['GET /containers/web/json', `GET /containers/${ID}/logs?stdout=1&stderr=1&follow=1&tail=5&timestamps=1`, `GET /containers/${ID}/json`]);
});

test('LogResume: a new round starts at the last record\'s time and skips what was shown of it', () => {
  const r = new LogResume(false);
  assert.deepEqual(r.query({ tail: '3' }), { tail: '3', timestamps: '1' });
  const seen = ['2026-11-23T09:17:40.5Z x\n', '2026-11-23T09:17:41.000000002Z y\n', '2026-11-23T09:17:41.000000002Z z\n']
    .map((l) => r.record(Buffer.from(l))?.toString());
  assert.deepEqual(seen, ['x\n', 'y\n', 'z\n']);
  assert.deepEqual(r.query({ tail: '3' }), { tail: 'all', timestamps: '1', since: '1795425461.000000002' });
  const again = ['2026-11-23T09:17:41.000000002Z y\n', '2026-11-23T09:17:41.000000002Z z\n', '2026-11-23T09:17:41.000000002Z new\n', '2026-11-23T09:17:42Z later\n']
    .map((l) => r.record(Buffer.from(l))?.toString());
  assert.deepEqual(again, [undefined, undefined, 'new\n', 'later\n']);
  const shown = new LogResume(true);
  shown.query({});
  assert.equal(shown.record(Buffer.from('2026-11-23T09:17:40Z t\n'))?.toString(), '2026-11-23T09:17:40Z t\n', '-t keeps the time');
});

test('logs of a TTY container are raw bytes (a raw-stream answer is checked against the container); a bad --since is an error before any request', async () => {
  const r = await runIsula({ container: { Tty: true }, logs: [[1, 'raw\r\n']] }, ['logs', 'web']);
  assert.equal(r.stdout, 'raw\r\n');
  assert.deepEqual(r.log, ['GET /containers/web/logs?stdout=1&stderr=1&tail=all', 'GET /containers/web/json']);
  const bad = await runIsula({}, ['logs', '--since', 'yesterday', 'web']);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /failed to parse value as time or duration: "yesterday"/);
  assert.deepEqual(bad.log, []);
});

test('top: ps arguments joined into ps_args; docker\'s table (columns at least 20 wide)', async () => {
  const r = await runIsula({ top: { Titles: ['PID', 'COMMAND'], Processes: [['1', 'sh'], ['42', 'sleep 100']] } }, ['top', 'web', '-eo', 'pid,comm']);
  assert.equal(r.code, 0);
  assert.deepEqual(r.log, ['GET /containers/web/top?ps_args=-eo+pid%2Ccomm']);
  assert.equal(r.stdout, `${'PID'.padEnd(20)}COMMAND\n${'1'.padEnd(20)}sh\n${'42'.padEnd(20)}sleep 100\n`);
});

test('stats --no-stream: one stats request per container, one table; a missing container is an error', async () => {
  const stats = {
    name: '/web', id: ID,
    cpu_stats: { cpu_usage: { total_usage: 400_000_000 }, system_cpu_usage: 20_000_000_000, online_cpus: 2 },
    precpu_stats: { cpu_usage: { total_usage: 200_000_000 }, system_cpu_usage: 10_000_000_000 },
    memory_stats: { usage: 10 * 1024 * 1024, limit: 100 * 1024 * 1024, stats: { inactive_file: 2 * 1024 * 1024 } },
    pids_stats: { current: 3 },
    networks: { eth0: { rx_bytes: 1500, tx_bytes: 648 } },
    blkio_stats: { io_service_bytes_recursive: [{ major: 8, minor: 0, op: 'read', value: 4096 }, { major: 8, minor: 0, op: 'write', value: 0 }] },
  };
  const r = await runIsula({ stats: [stats] }, ['stats', '--no-stream', 'web']);
  assert.equal(r.code, 0);
  assert.deepEqual(r.log, ['GET /containers/web/stats?stream=0']);
  const lines = r.stdout.trimEnd().split('\n');
  assert.match(lines[0] ?? '', /^CONTAINER ID\s+NAME\s+CPU %\s+MEM USAGE \/ LIMIT\s+MEM %\s+NET I\/O\s+BLOCK I\/O\s+PIDS$/);
  assert.deepEqual(lines[1]?.split(/\s{3,}/), ['c0ffee000000', 'web', '4.00%', '8MiB / 100MiB', '8.00%', '1.5kB / 648B', '4.1kB / 0B', '3']);
  const missing = await runIsula({ missing: ['ghost'] }, ['stats', '--no-stream', 'ghost']);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /No such container: ghost/);
});

test('stats --no-stream without names lists the running containers and shows their short ids', async () => {
  const r = await runIsula({ list: [{ Id: ID, Names: ['/web'] }], stats: [{ name: '/web', id: ID }] }, ['stats', '--no-stream', '--format', '{{.Container}} {{.Name}} {{.PIDs}}']);
  assert.equal(r.code, 0);
  assert.deepEqual(r.log, ['GET /containers/json', 'GET /containers/c0ffee000000/stats?stream=0']);
  assert.equal(r.stdout, 'c0ffee000000 web 0\n');
});

test('stats streams: the table is redrawn on a cleared screen until interrupted', async (t) => {
  const daemon = await startFakeDaemon({ stats: [{ name: '/web', id: ID, pids_stats: { current: 1 } }] });
  t.after(() => daemon.close());
  const child = spawn(process.execPath, [ISULA, '-H', daemon.host, 'stats', 'web'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const twice = new Promise<void>((resolve) => {
    child.stdout.on('data', (c: Buffer) => { out += c.toString(); if (out.split('\x1b[2J\x1b[H').length > 2) resolve(); });
  });
  await twice;
  child.kill('SIGINT');
  await new Promise((resolve) => child.on('close', resolve));
  assert.deepEqual(daemon.log, ['GET /containers/web/stats?stream=1']);
  const frames = out.split('\x1b[2J\x1b[H').filter(Boolean);
  assert.match(frames[0] ?? '', /^CONTAINER ID\s+NAME\s+CPU %.*PIDS\nc0ffee000000\s+web\s+/);
});

test('export writes the archive to -o through a temp file; a missing directory is refused', async () => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'isula-export-'));
  try {
    const file = path.join(dir, 'rootfs.tar');
    const r = await runIsula({ exportData: Buffer.from('TARDATA') }, ['export', '-o', file, 'web']);
    assert.equal(r.code, 0);
    assert.deepEqual(r.log, ['GET /containers/web/export']);
    assert.equal(await fs.readFile(file, 'utf8'), 'TARDATA');
    assert.deepEqual(await fs.readdir(dir), ['rootfs.tar']);
    const bad = await runIsula({}, ['export', '-o', path.join(dir, 'nope', 'x.tar'), 'web']);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /^failed to export container: invalid output path: directory ".*nope" does not exist\n$/);
    const piped = await runIsula({ exportData: Buffer.from('TAR') }, ['export', 'web']);
    assert.equal(piped.stdout, 'TAR');
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});

test('events: filters as docker\'s JSON, since converted, docker\'s line; --format templates and json', async () => {
  const line = '{"status":"start","id":"abc","from":"busybox","Type":"container","Action":"start","Actor":{"ID":"abc","Attributes":{"name":"x","image":"busybox"}},"scope":"local","time":1795000660,"timeNano":1795000660975647758}';
  const r = await runIsula({ events: [line] }, ['events', '--since', '1795000000', '-f', 'Container=x', '-f', 'event=start', '-f', 'type=container']);
  assert.equal(r.code, 0);
  assert.deepEqual(r.log, [`GET /events?since=1795000000&filters=${encodeURIComponent('{"container":["x"],"event":["start"],"type":["container"]}').replace(/%20/g, '+')}`]);
  assert.match(r.stdout, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.975647758(Z|[+-]\d\d:\d\d) container start abc \(image=busybox, name=x\)\n$/);
  const t = await runIsula({ events: [line] }, ['events', '--format', '{{.Type}} {{.Action}} {{.Actor.ID}} {{index .Actor.Attributes "name"}} {{.TimeNano}}']);
  assert.equal(t.stdout, 'container start abc x 1795000660975647758\n');
  const j = await runIsula({ events: [line] }, ['events', '--format', '{{json .}}']);
  assert.equal(j.stdout, `${line}\n`);
  const bad = await runIsula({ events: [line] }, ['events', '--format', '{{.Type']);
  assert.equal(bad.code, 64);
  assert.match(bad.stderr, /^Error parsing format: /);
});
