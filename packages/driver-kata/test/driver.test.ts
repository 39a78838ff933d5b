/**
 * The driver against Debian's containerd-shim-runc-v2 1.6.20 and runc, as
 * root: the shim v2 life cycle, stdio (log, attach, stdin), exec, pause,
 * update, stats, events (exit, OOM), failed creates, restore after the
 * "daemon" (driver) is gone, a dead shim, and leftovers after delete.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import type { RuntimeContainerRef, StdioConfig } from '@isula/core';
import type { ShimV2Driver, TaskEvent } from '../src/index.js';
import { cgroupDirs, forceRemove, leftovers, makeEnv, makeSpec, needs, removeRootfs, shimsFor, uniqueId, waitFor, type Env } from './helpers.js';

const signal = () => AbortSignal.timeout(30_000);
const skip = needs();
after(() => removeRootfs());

describe('driver-kata with containerd-shim-runc-v2', { skip }, () => {
  let env: Env;
  let driver: ShimV2Driver;
  const created: string[] = [];
  const setup = () => {
    env ??= makeEnv();
    driver ??= env.driver();
  };
  after(async () => {
    if (!env) return;
    for (const id of created) forceRemove(id);
    await env.cleanup();
  });

  async function run(tag: string, args: string[], o: { start?: boolean; memoryBytes?: number; stdio?: Partial<StdioConfig>; d?: ShimV2Driver } = {}) {
    setup();
    const id = uniqueId(tag);
    created.push(id);
    const spec = makeSpec(id, args, { ...(o.stdio?.terminal ? { terminal: true } : {}), ...(o.memoryBytes ? { memoryBytes: o.memoryBytes } : {}) });
    const ref = env.bundle(id, spec);
    const d = o.d ?? driver;
    const stdio = env.stdio(id, o.stdio);
    const res = await d.create(ref, { signal: signal(), spec, stdio });
    ref.persisted = res.persisted;
    if (o.start !== false) await d.start(ref, { signal: signal() });
    return { id, ref, stdio, pid: res.pid };
  }

  async function remove(ref: RuntimeContainerRef, d: ShimV2Driver = driver) {
    await d.delete(ref, { signal: signal(), force: true });
    assert.deepEqual(leftovers(env, ref), [], 'delete leaves nothing behind');
  }

  test('create, start, wait, log in k8s-file format, delete leaves nothing', async () => {
    const { ref, stdio, pid } = await run('life', ['sh', '-c', 'echo out; echo err >&2; printf partial; exit 3']);
    assert.ok(pid > 0);
    const st = await driver.wait(ref, { signal: signal() });
    assert.equal(st.exitCode, 3);
    assert.ok(st.exitedAt.getTime() > Date.now() - 60_000);
    assert.deepEqual(await driver.state(ref, { signal: signal() }), { status: 'stopped', pid: 0 });
    const lines = fs.readFileSync(stdio.logPath, 'utf8').trim().split('\n').map((l) => l.split(' ').slice(1).join(' ')).sort();
    assert.deepEqual(lines, ['stderr F err', 'stdout F out', 'stdout P partial']);
    assert.match(fs.readFileSync(stdio.logPath, 'utf8'), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}\+00:00 std/);
    await remove(ref);
    await remove(ref); // idempotent
  });

  test('state, pids, pause/resume, update, stats, kill → 137 through Wait', async () => {
    const { ref, pid } = await run('ops', ['sleep', '1000']);
    assert.deepEqual(await driver.state(ref, { signal: signal() }), { status: 'running', pid });
    assert.deepEqual(await driver.pids(ref, { signal: signal() }), [pid]);
    await driver.pause(ref, { signal: signal() });
    assert.equal((await driver.state(ref, { signal: signal() })).status, 'paused');
    await driver.resume(ref, { signal: signal() });
    assert.equal((await driver.state(ref, { signal: signal() })).status, 'running');
    await driver.update(ref, { signal: signal(), resources: { memoryBytes: 64 << 20, pidsLimit: 33 } });
    const cg = cgroupDirs(ref.id);
    assert.equal(fs.readFileSync(cg.find((d) => d.includes('/memory/'))! + '/memory.limit_in_bytes', 'utf8').trim(), String(64 << 20)); // the memory hierarchy exists on this host
    assert.equal(fs.readFileSync(cg.find((d) => d.includes('/pids/'))! + '/pids.max', 'utf8').trim(), '33'); // so does pids
    const stats = await driver.stats(ref, { signal: signal() });
    assert.equal(stats.memoryLimitBytes, 64 << 20);
    assert.equal(stats.pidsCurrent, 1);
    const rmRunning = await driver.delete(ref, { signal: signal() }).catch((e: unknown) => e);
    assert.equal((rmRunning as { code?: string }).code, 'CONTAINER_STATE_CONFLICT');
    await driver.kill(ref, { signal: signal(), signal_: 'SIGKILL' });
    assert.equal((await driver.wait(ref, { signal: signal() })).exitCode, 137);
    await driver.kill(ref, { signal: signal(), signal_: 'SIGKILL' }); // a stopped container: no error
    await remove(ref);
  });

  test('attach: output fan-out, stdin with StdinOnce gives the process EOF', async () => {
    const { ref } = await run('stdin', ['sh', '-c', 'read line; echo "got $line"; cat; echo done'], { start: false, stdio: { openStdin: true, stdinOnce: true } });
    const s = await driver.attach(ref, { signal: signal() });
    let out = '';
    s.onOutput((n, c) => { if (n === 1) out += c.toString(); });
    let closed = false;
    s.onClose(() => { closed = true; });
    await driver.start(ref, { signal: signal() });
    await s.writeStdin(Buffer.from('hello\nmore\n'));
    await s.closeStdin();
    assert.equal((await driver.wait(ref, { signal: signal() })).exitCode, 0);
    await waitFor(() => closed, { what: 'the stream to close' });
    assert.equal(out, 'got hello\nmore\ndone\n');
    await remove(ref);
  });

  test('a terminal: output through the pty, resize', async () => {
    const { ref } = await run('tty', ['sh', '-c', 'sleep 0.3; stty size; exit 7'], { start: false, stdio: { terminal: true, openStdin: true } });
    const s = await driver.attach(ref, { signal: signal() });
    let out = '';
    s.onOutput((n, c) => { assert.equal(n, 1); out += c.toString(); });
    await driver.start(ref, { signal: signal() });
    await driver.resize(ref, { signal: signal(), rows: 33, cols: 101 });
    assert.equal((await driver.wait(ref, { signal: signal() })).exitCode, 7);
    assert.equal(out, '33 101\r\n');
    await remove(ref);
  });

  test('exec: output, exit code, stdin, a missing command is CONTAINER_CMD_NOT_FOUND', async () => {
    const { ref } = await run('exec', ['sleep', '1000']);
    let out = '';
    let err = '';
    const st = await driver.exec(ref, {
      signal: signal(), execId: 'e1', process: { args: ['sh', '-c', 'echo hi; echo oops >&2; exit 5'], cwd: '/', env: ['PATH=/bin'], user: { uid: 0, gid: 0 } },
      stdio: { terminal: false, openStdin: false, stdinOnce: true, logPath: path.join(env.root, 'e1.log'), noLog: true },
      onStarted: (pid, s) => {
        assert.ok(pid > 0);
        s?.onOutput((n, c) => { if (n === 1) out += c.toString(); else err += c.toString(); });
      },
    });
    assert.equal(st.exitCode, 5);
    assert.equal(out, 'hi\n');
    assert.equal(err, 'oops\n');

    let echoed = '';
    const cat = await driver.exec(ref, {
      signal: signal(), execId: 'e2', process: { args: ['cat'], cwd: '/', env: ['PATH=/bin'], user: { uid: 0, gid: 0 } },
      stdio: { terminal: false, openStdin: true, stdinOnce: true, logPath: path.join(env.root, 'e2.log'), noLog: true },
      onStarted: (_pid, s) => {
        s?.onOutput((_n, c) => { echoed += c.toString(); });
        void s?.writeStdin(Buffer.from('ping\n')).then(() => s.closeStdin());
      },
    });
    assert.equal(cat.exitCode, 0);
    assert.equal(echoed, 'ping\n');

    await assert.rejects(driver.exec(ref, {
      signal: signal(), execId: 'e3', process: { args: ['/no/such/cmd'], cwd: '/', env: ['PATH=/bin'], user: { uid: 0, gid: 0 } },
      stdio: { terminal: false, openStdin: false, stdinOnce: true, logPath: path.join(env.root, 'e3.log'), noLog: true },
    }), { code: 'CONTAINER_CMD_NOT_FOUND' });
    assert.ok(!fs.existsSync(path.join(env.state, 'shim-v2', ref.id, 'exec', 'e1')), 'exec FIFOs are removed');
    await remove(ref);
  });

  test('a failed create is CONTAINER_CMD_NOT_FOUND / NOT_EXECUTABLE and leaves nothing', async () => {
    setup();
    for (const [cmd, code] of [['/no/such/cmd', 'CONTAINER_CMD_NOT_FOUND'], ['/bin/notexec', 'CONTAINER_CMD_NOT_EXECUTABLE']] as const) {
      const id = uniqueId('bad');
      created.push(id);
      const spec = makeSpec(id, [cmd]);
      const ref = env.bundle(id, spec);
      await assert.rejects(driver.create(ref, { signal: signal(), spec, stdio: env.stdio(id) }), { code });
      assert.deepEqual(leftovers(env, ref), []);
    }
  });

  test('events: exit and OOM reach the events server; OOM is reported with the exit', async () => {
    setup();
    const seen: TaskEvent[] = [];
    const off = env.events.on((e) => seen.push(e));
    const { ref, id } = await run('oom', ['sh', '-c', 'x=aaaaaaaaaaaaaaaa; while true; do x=$x$x; done'], { memoryBytes: 16 << 20 });
    const st = await driver.wait(ref, { signal: signal() });
    assert.equal(st.exitCode, 137);
    assert.equal(st.oomKilled, true);
    await waitFor(() => seen.some((e) => e.topic === '/tasks/exit' && e.containerId === id), { what: 'the exit event' });
    assert.ok(seen.some((e) => e.topic === '/tasks/oom' && e.containerId === id), 'a /tasks/oom event');
    assert.ok(seen.some((e) => e.topic === '/tasks/start' && e.containerId === id), 'a /tasks/start event');
    off();
    await remove(ref);
  });

  test('restore: a new driver reconnects to a running shim, re-waits, and gets the exit', async () => {
    setup();
    const ev1 = env.newEvents();
    const first = env.driver(ev1);
    const { ref, pid } = await run('restore', ['sh', '-c', 'trap "exit 42" USR1; while true; do sleep 0.1; done'], { d: first });
    // The "daemon" goes away: connections, FIFOs and its events server close; the shim stays.
    first.close();
    await ev1.close();
    assert.equal(shimsFor(ref.id).length, 1);
    const ev2 = env.newEvents();
    const second = env.driver(ev2);
    assert.deepEqual(await second.restore(ref, { signal: signal() }), { status: 'running', pid });
    await second.kill(ref, { signal: signal(), signal_: 'USR1' });
    assert.equal((await second.wait(ref, { signal: signal() })).exitCode, 42);
    await remove(ref, second);
  });

  test('restore: a container that exited while the daemon was away reports its exit', async () => {
    setup();
    const ev1 = env.newEvents();
    const first = env.driver(ev1);
    const { ref, pid } = await run('exited', ['sh', '-c', 'sleep 0.3; exit 9'], { d: first });
    first.close();
    await ev1.close();
    // The shim reaps the process while nobody listens to its events.
    await waitFor(() => !fs.existsSync(`/proc/${pid}`), { what: 'the container to exit' });
    const second = env.driver(env.newEvents());
    assert.equal((await second.restore(ref, { signal: signal() })).status, 'stopped');
    assert.equal((await second.wait(ref, { signal: signal() })).exitCode, 9);
    await remove(ref, second);
  });

  test('restore: a dead shim is cleaned up with `shim delete`; the container reports stopped', async () => {
    setup();
    const ev1 = env.newEvents();
    const first = env.driver(ev1);
    const { ref } = await run('deadshim', ['sleep', '1000'], { d: first });
    first.close();
    await ev1.close();
    const [shimPid] = shimsFor(ref.id);
    assert.ok(shimPid !== undefined);
    process.kill(shimPid, 'SIGKILL');
    await waitFor(() => shimsFor(ref.id).length === 0, { what: 'the shim to die' });
    const second = env.driver(env.newEvents());
    assert.equal((await second.restore(ref, { signal: signal() })).status, 'stopped');
    const st = await second.wait(ref, { signal: signal() });
    assert.ok(st.exitCode === 137 || st.exitCode === 255, `exit ${st.exitCode}`);
    await remove(ref, second);
  });
});
