import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { startFakeDaemon, type FakeBehaviour } from './fake-daemon.js';

const ISULA = fileURLToPath(new URL('../src/isula.js', import.meta.url));

async function isula(behaviour: FakeBehaviour, args: string[], input = '') {
  const daemon = await startFakeDaemon(behaviour);
  try {
    const child = spawn(process.execPath, [ISULA, '-H', daemon.host, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => { stdout += c.toString(); });
    child.stderr.on('data', (c: Buffer) => { stderr += c.toString(); });
    child.stdin.end(input);
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    return { code, stdout, stderr, log: daemon.log, bodies: daemon.bodies };
  } finally {
    await daemon.close();
  }
}

const ID = 'c0ffee'.padEnd(64, '0');
const notFound = { status: 400, code: 'CONTAINER_CMD_NOT_FOUND', message: 'exec: "nope": executable file not found in $PATH' };

test('run attaches, arms the wait, then starts, copies both streams and exits with the container code', async () => {
  const r = await isula({ exitCode: 3, output: [[1, 'hello\n'], [2, 'oops\n'], [1, 'bye\n']] }, ['run', '--name', 'web', 'busybox', 'sh', '-c', 'x']);
  assert.equal(r.code, 3);
  assert.equal(r.stdout, 'hello\nbye\n');
  assert.equal(r.stderr, 'oops\n');
  assert.deepEqual(r.log, [
    'POST /containers/create?name=web',
    `POST /containers/${ID}/attach?stream=1&stdout=1&stderr=1 upgrade=tcp`,
    `POST /containers/${ID}/wait?condition=next-exit`,
    `POST /containers/${ID}/start`,
  ]);
  const body = r.bodies.get('/containers/create') as { Cmd: string[]; AttachStdout: boolean; HostConfig: { AutoRemove: boolean } };
  assert.deepEqual(body.Cmd, ['sh', '-c', 'x']);
  assert.equal(body.AttachStdout, true);
});

test('run --rm waits for removal; run -i sends stdin and half-closes at its end', async () => {
  const r = await isula({ output: [[1, 'ready\n']] }, ['run', '--rm', '-i', 'busybox', 'cat'], 'abc');
  assert.equal(r.code, 0);
  assert.equal(r.stdout, 'ready\nstdin:abc');
  assert.ok(r.log.includes(`POST /containers/${ID}/wait?condition=removed`), r.log.join('\n'));
  assert.ok(r.log.includes(`POST /containers/${ID}/attach?stream=1&stdin=1&stdout=1&stderr=1 upgrade=tcp`), r.log.join('\n'));
});

test('run -t copies raw bytes, not frames', async () => {
  const r = await isula({ output: [[1, 'raw output\r\n']] }, ['run', '-t', 'busybox']);
  assert.equal(r.code, 0);
  assert.equal(r.stdout, 'raw output\r\n');
});

test('run -d prints the full id and attaches to nothing', async () => {
  const r = await isula({}, ['run', '-d', 'busybox', 'top']);
  assert.equal(r.code, 0);
  assert.equal(r.stdout, `${ID}\n`);
  assert.deepEqual(r.log, ['POST /containers/create', `POST /containers/${ID}/start`]);
});

test('run exits 127 when the command is not found, 126 when it cannot be executed, 125 on an engine error', async () => {
  const r127 = await isula({ startError: notFound }, ['run', 'busybox', 'nope']);
  assert.equal(r127.code, 127);
  assert.equal(r127.stderr, `isula: Error response from daemon: ${notFound.message}.\nSee 'isula run --help'.\n`);
  const r126 = await isula({ startError: { ...notFound, code: 'CONTAINER_CMD_NOT_EXECUTABLE' } }, ['run', 'busybox', '/etc']);
  assert.equal(r126.code, 126);
  const r125 = await isula({ createError: { status: 404, code: 'IMAGE_NOT_FOUND', message: 'No such image: nope:latest' } }, ['run', '--pull', 'never', 'nope']);
  assert.equal(r125.code, 125);
  assert.match(r125.stderr, /^isula: Error response from daemon: No such image: nope:latest\.\nSee 'isula run --help'\.\n$/);
  const usage = await isula({}, ['run', '--memory', 'lots', 'busybox']);
  assert.equal(usage.code, 125);
  assert.deepEqual(usage.log, []);
  const unknownFlag = await isula({}, ['create', '--colour', 'busybox']);
  assert.equal(unknownFlag.code, 125);
  assert.match(unknownFlag.stderr, /unknown option '--colour'\nSee 'isula create --help'\./);
});

test('create prints the id; stop of a stopped container (304) succeeds and echoes the name', async () => {
  const created = await isula({}, ['create', 'busybox']);
  assert.deepEqual([created.code, created.stdout], [0, `${ID}\n`]);
  const stopped = await isula({}, ['stop', '-t', '3', 'web']);
  assert.deepEqual([stopped.code, stopped.stdout], [0, 'web\n']);
  assert.deepEqual(stopped.log, ['POST /containers/web/stop?t=3']);
});
