/**
 * The driver against real runc / crun and conmon 2.1.6: lifecycle, exit codes,
 * logs, kill, failed creates, restore, attach, exec, pause, update, stats, OOM.
 * Run as root. crun is skipped unless hugetlb is bound to cgroup v1 (failed under CI=true).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import type { RuntimeContainerRef, StdioStream } from '@isula/core';
import { readStartTime } from '@isula/core';
import type { RuncDriver } from '../src/index.js';
import {
  cgroupDirs, conmonsFor, crunSkip, forceRemove, leftovers, makeEnv, makeSpec, needs, removeRootfs, uniqueId, waitFor,
  type Env, CGROUP_PARENT,
} from './helpers.js';

const signal = () => AbortSignal.timeout(30_000);
after(() => removeRootfs());

for (const runtime of ['runc', 'crun']) {
  const skip = needs() || (runtime === 'crun' ? crunSkip() : false);

  describe(`driver-runc with ${runtime}`, { skip }, () => {
    let env: Env;
    let driver: RuncDriver;
    const created: string[] = [];

    const setup = () => {
      env ??= makeEnv();
      driver ??= env.driver(runtime);
    };
    after(() => {
      if (!env) return;
      for (const id of created) forceRemove(runtime, env, id);
      env.cleanup();
    });

    /** create (+ start unless told not to) a container running `args`. */
    async function run(tag: string, args: string[], o: { start?: boolean; memoryBytes?: number; openStdin?: boolean; terminal?: boolean; d?: RuncDriver } = {}) {
      setup();
      const id = uniqueId(tag);
      created.push(id);
      const spec = makeSpec(id, args, { ...(o.terminal ? { terminal: true } : {}), ...(o.memoryBytes ? { memoryBytes: o.memoryBytes } : {}) });
      const ref = env.bundle(id, spec);
      const d = o.d ?? driver;
      const stdio = env.stdio(id, { openStdin: o.openStdin ?? false, terminal: o.terminal ?? false });
      const t0 = performance.now();
      const { persisted } = await d.create(ref, { signal: signal(), spec, stdio });
      ref.persisted = persisted;
      const createMs = performance.now() - t0;
      if (o.start !== false) await d.start(ref, { signal: signal() });
      return { id, ref, stdio, createMs, startedMs: performance.now() - t0 };
    }

    async function remove(ref: RuntimeContainerRef, d: RuncDriver = driver) {
      await d.delete(ref, { signal: signal(), force: true });
      assert.deepEqual(leftovers(env, runtime, ref.id), [], 'delete leaves nothing behind');
    }

    test('create+start+wait gives the exit code; output reaches the k8s-file log; concurrent waits agree', async () => {
      const { ref, stdio, createMs, startedMs } = await run('exit3', ['sh', '-c', 'echo out; echo err >&2; exit 3']);
      process.stderr.write(`# ${runtime}: create ${createMs.toFixed(0)} ms, create+start ${startedMs.toFixed(0)} ms\n`);
      const waits = await Promise.all([1, 2, 3, 4, 5].map(() => driver.wait(ref, { signal: signal() })));
      for (const w of waits) {
        assert.equal(w.exitCode, 3);
        assert.ok(w.exitedAt instanceof Date);
        assert.notEqual(w.oomKilled, true);
      }
      const lines = fs.readFileSync(stdio.logPath, 'utf8').trim().split('\n');
      assert.ok(lines.some((l) => / stdout F out$/.test(l)), `stdout line in ${lines.join('|')}`);
      assert.ok(lines.some((l) => / stderr F err$/.test(l)), 'stderr line');
      assert.equal((await driver.state(ref, { signal: signal() })).status, 'stopped');
      assert.equal((await driver.wait(ref, { signal: signal() })).exitCode, 3, 'wait after the exit');
      await remove(ref);
      await driver.delete(ref, { signal: signal() }); // idempotent
    });

    test('kill with TERM runs the trap; KILL gives 137; killing a stopped container is no error', async () => {
      const a = await run('term', ['sh', '-c', 'trap "exit 7" TERM; echo up; while :; do sleep 0.1; done']);
      await waitFor(() => fs.existsSync(a.stdio.logPath) && fs.readFileSync(a.stdio.logPath, 'utf8').includes('up'), { what: 'trap set' });
      assert.equal((await driver.state(a.ref, { signal: signal() })).status, 'running');
      await driver.kill(a.ref, { signal: signal(), signal_: 'TERM' });
      assert.equal((await driver.wait(a.ref, { signal: signal() })).exitCode, 7);
      await driver.kill(a.ref, { signal: signal(), signal_: 'KILL' });
      await remove(a.ref);
      await driver.kill(a.ref, { signal: signal(), signal_: 9 });

      const b = await run('kill', ['sleep', '60']);
      await driver.kill(b.ref, { signal: signal(), signal_: 'SIGKILL', all: true });
      assert.equal((await driver.wait(b.ref, { signal: signal() })).exitCode, 137);
      await remove(b.ref);
    });

    test('a command missing from the rootfs is CONTAINER_CMD_NOT_FOUND and leaves nothing', async () => {
      setup();
      for (const [args, code] of [[['nosuchcmd'], 'CONTAINER_CMD_NOT_FOUND'], [['/bin/nosuch'], 'CONTAINER_CMD_NOT_FOUND'], [['/bin/notexec'], 'CONTAINER_CMD_NOT_EXECUTABLE']] as const) {
        const id = uniqueId('missing');
        created.push(id);
        const spec = makeSpec(id, [...args]);
        const ref = env.bundle(id, spec);
        await assert.rejects(driver.create(ref, { signal: signal(), spec, stdio: env.stdio(id) }), (err: { code?: string }) => err.code === code);
        assert.deepEqual(leftovers(env, runtime, id), []);
        assert.deepEqual(fs.readdirSync(ref.bundle), ['config.json'], 'bundle keeps only config.json');
      }
    });

    test('delete after an exit: nested cgroups go; a poststop hook still runs; a live init is killed first', async () => {
      // A cgroup the payload (or anyone) made below the container's: delete removes it too.
      const nested = await run('nested', ['sh', '-c', 'sleep 0.3; exit 4']);
      const memory = cgroupDirs(nested.id).find((d) => d.includes('/memory/'));
      assert.ok(memory, 'the container has a memory cgroup');
      fs.mkdirSync(path.join(memory, 'child', 'grandchild'), { recursive: true });
      assert.equal((await driver.wait(nested.ref, { signal: signal() })).exitCode, 4);
      await remove(nested.ref);

      // runc runs poststop hooks at delete: a spec with one must still get it.
      setup();
      const id = uniqueId('poststop');
      created.push(id);
      const marker = path.join(env.root, `${id}.poststop`);
      const spec = { ...makeSpec(id, ['true']), hooks: { poststop: [{ path: '/bin/sh', args: ['sh', '-c', `echo ran > ${marker}`] }] } };
      const ref = env.bundle(id, spec);
      ref.persisted = (await driver.create(ref, { signal: signal(), spec, stdio: env.stdio(id) })).persisted;
      await driver.start(ref, { signal: signal() });
      assert.equal((await driver.wait(ref, { signal: signal() })).exitCode, 0);
      assert.equal(fs.existsSync(marker), false, 'no poststop hook before delete');
      await remove(ref);
      assert.equal(fs.readFileSync(marker, 'utf8'), 'ran\n', 'the poststop hook ran at delete');

      // A forced delete of a running container kills it first.
      const live = await run('live-delete', ['sleep', '60']);
      await remove(live.ref);
    });

    test('restore: a new driver finds a running container running, an exited one stopped with its code, and detects a forged pid', async () => {
      const live = await run('live', ['sleep', '60']);
      const quick = await run('quick', ['sh', '-c', 'sleep 0.2; exit 5']);
      const exitFile = path.join(env.state, 'exits', quick.id);
      await waitFor(() => fs.existsSync(exitFile), { what: 'exit file' });

      const restarted = env.driver(runtime); // a daemon restart: nothing in memory
      const st = await restarted.restore(live.ref, { signal: signal() });
      assert.equal(st.status, 'running');
      assert.equal(st.pid, (live.ref.persisted as { init: { pid: number } }).init.pid);
      assert.deepEqual(await restarted.restore(quick.ref, { signal: signal() }), { status: 'stopped', pid: 0 });
      assert.equal((await restarted.wait(quick.ref, { signal: signal() })).exitCode, 5);

      const waiting = restarted.wait(live.ref, { signal: signal() });
      await restarted.kill(live.ref, { signal: signal(), signal_: 'KILL' });
      assert.equal((await waiting).exitCode, 137);
      await remove(live.ref, restarted);
      await remove(quick.ref, restarted);

      // A recorded pid now held by another process (recycled, or forged): start times differ.
      const host = spawn('sleep', ['30'], { stdio: 'ignore' });
      try {
        const hostPid = host.pid ?? 0;
        const startTime = await readStartTime(hostPid);
        assert.ok(startTime !== undefined);
        const id = uniqueId('forged');
        created.push(id);
        const forged: RuntimeContainerRef = {
          id,
          containerDir: path.join(env.root, 'containers', id),
          bundle: path.join(env.root, 'containers', id, 'bundle'),
          persisted: {
            ...live.ref.persisted,
            init: { pid: hostPid, startTime: startTime + 1 },
            conmon: { pid: hostPid, startTime: startTime + 1 },
            exitFile: path.join(env.state, 'exits', id),
            persistDir: path.join(env.state, 'conmon', id),
            socketLink: path.join(env.state, 'socks', id),
            cgroupPath: `${CGROUP_PARENT}/${id}`,
          },
        };
        assert.deepEqual(await restarted.restore(forged, { signal: signal() }), { status: 'stopped', pid: 0 });
        assert.equal((await restarted.wait(forged, { signal: signal() })).exitCode, 255, 'a lost exit reads 255');
        assert.equal(host.exitCode, null, 'the unrelated process was not touched');
        assert.equal(await readStartTime(hostPid), startTime);
        await remove(forged, restarted);
      } finally {
        host.kill('SIGKILL');
      }
    });

    test('reopenLog: after the log is moved away, conmon writes a new file at the same path', async () => {
      const a = await run('reopen', ['sh', '-c', 'echo before; sleep 1; echo after; sleep 30']);
      await waitFor(() => fs.existsSync(a.stdio.logPath) && fs.readFileSync(a.stdio.logPath, 'utf8').includes('before'), { what: 'first line' });
      fs.renameSync(a.stdio.logPath, `${a.stdio.logPath}.1`);
      await driver.reopenLog(a.ref, { signal: signal() });
      assert.ok(fs.existsSync(a.stdio.logPath), 'reopenLog returns once the new file exists (the kubelet checks at once)');
      await waitFor(() => fs.readFileSync(a.stdio.logPath, 'utf8').includes('after'), { what: 'the line after the reopen in the new file', timeoutMs: 10_000 });
      assert.doesNotMatch(fs.readFileSync(a.stdio.logPath, 'utf8'), /before/);
      assert.match(fs.readFileSync(`${a.stdio.logPath}.1`, 'utf8'), /before/);
      await driver.kill(a.ref, { signal: signal(), signal_: 'KILL' });
      await driver.wait(a.ref, { signal: signal() });
      await remove(a.ref);
      await assert.rejects(driver.reopenLog(a.ref, { signal: signal() }), (err: { code?: string }) => err.code === 'CONTAINER_STATE_CONFLICT');
    });

    test('attach receives stdout and writes stdin', async () => {
      const c = await run('attach', ['sh', '-c', 'echo ready; read line; echo got:$line; echo bye >&2'], { openStdin: true, start: false });
      const stream = await driver.attach(c.ref, { signal: signal() });
      const out: string[] = [];
      const err: string[] = [];
      stream.onOutput((s, chunk) => (s === 1 ? out : err).push(chunk.toString()));
      const closed = new Promise<void>((resolve) => stream.onClose(resolve));
      await driver.start(c.ref, { signal: signal() });
      await waitFor(() => out.join('').includes('ready'), { what: 'ready' });
      await stream.writeStdin(Buffer.from('hello\n'));
      assert.equal((await driver.wait(c.ref, { signal: signal() })).exitCode, 0);
      await waitFor(() => out.join('').includes('got:hello') && err.join('').includes('bye'), { what: 'echo' });
      stream.close();
      await closed;
      await remove(c.ref);
    });

    test('attach before the start returns once conmon accepted it: a quick container\'s output is never missed', async () => {
      const c = await run('accept', ['sh', '-c', 'echo first-words'], { start: false });
      // A conmon that is slow to run its main loop (a loaded host): stopped, resumed 400 ms later.
      const conmon = conmonsFor(c.ref.id)[0];
      assert.ok(conmon !== undefined, 'conmon runs');
      process.kill(conmon, 'SIGSTOP');
      const resumed = new Promise<number>((resolve) => setTimeout(() => { process.kill(conmon, 'SIGCONT'); resolve(Date.now()); }, 400));
      const stream = await driver.attach(c.ref, { signal: signal() });
      const attachedAt = Date.now();
      assert.ok(attachedAt >= (await resumed) - 5, 'attach waited for conmon to accept');
      const out: string[] = [];
      stream.onOutput((_s, chunk) => out.push(chunk.toString()));
      await driver.start(c.ref, { signal: signal() });
      assert.equal((await driver.wait(c.ref, { signal: signal() })).exitCode, 0);
      await waitFor(() => out.join('').includes('first-words'), { what: 'the output through attach' });
      stream.close();
      await remove(c.ref);
    });

    test('a terminal container is resizable through conmon', async () => {
      // conmon applies a resize from its control fifo while stdin arrives on
      // the attach socket: the two are not ordered, so the shell asks for the
      // size after each line until it sees the new one (bounded by waitFor).
      const c = await run('tty', ['sh', '-c', 'while read x; do stty size; [ "$x" = end ] && exit 0; done'], { openStdin: true, terminal: true, start: false });
      const stream = await driver.attach(c.ref, { signal: signal() });
      const out: Buffer[] = [];
      stream.onOutput((_s, chunk) => out.push(chunk));
      await driver.start(c.ref, { signal: signal() });
      await driver.resize(c.ref, { signal: signal(), rows: 30, cols: 100 });
      await waitFor(async () => {
        await stream.writeStdin(Buffer.from('go\r'));
        await new Promise((r) => setTimeout(r, 50));
        return Buffer.concat(out).toString().includes('30 100');
      }, { what: `stty size in ${JSON.stringify(Buffer.concat(out).toString())}` });
      await stream.writeStdin(Buffer.from('end\r'));
      assert.equal((await driver.wait(c.ref, { signal: signal() })).exitCode, 0);
      stream.close();
      await remove(c.ref);
    });

    test('exec: output to its log and exit code; attached exec with stdin', async () => {
      const c = await run('exec', ['sleep', '60']);
      const logPath = path.join(env.root, 'exec1.log');
      const r = await driver.exec(c.ref, {
        signal: signal(), execId: uniqueId('e'), process: { args: ['sh', '-c', 'echo from-exec; exit 4'], env: ['PATH=/bin'], cwd: '/', user: { uid: 0, gid: 0 } },
        stdio: { terminal: false, openStdin: false, stdinOnce: false, logPath },
      });
      assert.equal(r.exitCode, 4);
      assert.match(fs.readFileSync(logPath, 'utf8'), /stdout F from-exec/);

      const out: string[] = [];
      let pid = 0;
      const r2 = await driver.exec(c.ref, {
        signal: signal(), execId: uniqueId('e'), process: { args: ['cat'], env: ['PATH=/bin'], cwd: '/', user: { uid: 0, gid: 0 } },
        stdio: { terminal: false, openStdin: true, stdinOnce: true, logPath: path.join(env.root, 'exec2.log') },
        onStarted: (p: number, stream: StdioStream | undefined) => {
          pid = p;
          assert.ok(stream);
          stream.onOutput((_s, chunk) => out.push(chunk.toString()));
          void stream.writeStdin(Buffer.from('abc\n')).then(() => stream.closeStdin());
        },
      });
      assert.ok(pid > 0);
      assert.equal(r2.exitCode, 0);
      await waitFor(() => out.join('').includes('abc'), { what: 'cat output' });
      await driver.kill(c.ref, { signal: signal(), signal_: 'KILL' });
      await driver.wait(c.ref, { signal: signal() });
      await remove(c.ref);
    });

    test('pause/resume freeze the cgroup; update, stats and pids read the cgroup', async () => {
      const c = await run('res', ['sleep', '60']);
      const freezer = path.join('/sys/fs/cgroup/freezer', CGROUP_PARENT, c.id, 'freezer.state');
      await driver.pause(c.ref, { signal: signal() });
      assert.equal(fs.readFileSync(freezer, 'utf8').trim(), 'FROZEN');
      assert.equal((await driver.state(c.ref, { signal: signal() })).status, 'paused');
      await driver.resume(c.ref, { signal: signal() });
      assert.equal(fs.readFileSync(freezer, 'utf8').trim(), 'THAWED');
      assert.equal((await driver.state(c.ref, { signal: signal() })).status, 'running');

      await driver.update(c.ref, { signal: signal(), resources: { memoryBytes: 64 * 1024 * 1024, memorySwapBytes: 128 * 1024 * 1024, cpuShares: 512, pidsLimit: 50, blkioWeight: 300 } });
      const cg = (ctrl: string, file: string) => fs.readFileSync(path.join('/sys/fs/cgroup', ctrl, CGROUP_PARENT, c.id, file), 'utf8').trim();
      assert.equal(cg('memory', 'memory.limit_in_bytes'), String(64 * 1024 * 1024));
      assert.equal(cg('cpu', 'cpu.shares'), '512');
      assert.equal(cg('pids', 'pids.max'), '50');
      const weightFile = fs.existsSync(path.join('/sys/fs/cgroup/blkio', CGROUP_PARENT, c.id, 'blkio.weight')) ? 'blkio.weight' : 'blkio.bfq.weight';
      assert.equal(cg('blkio', weightFile), '300');

      const stats = await driver.stats(c.ref, { signal: signal() });
      assert.ok(stats.cpuUsageNs > 0, 'cpu');
      assert.ok(stats.memoryUsageBytes > 0, 'memory');
      assert.equal(stats.memoryLimitBytes, 64 * 1024 * 1024);
      assert.ok(stats.pidsCurrent >= 1, 'pids');
      const pids = await driver.pids(c.ref, { signal: signal() });
      assert.ok(pids.includes((c.ref.persisted as { init: { pid: number } }).init.pid));

      await assert.rejects(driver.delete(c.ref, { signal: signal() }), (e: { code?: string }) => e.code === 'CONTAINER_STATE_CONFLICT');
      await remove(c.ref);
    });

    test('an OOM kill is reported as oomKilled with 137', async () => {
      const cwdOomBefore = fs.existsSync(path.join(process.cwd(), 'oom'));
      const c = await run('oom', ['sh', '-c', 'x=$(head -c 64m /dev/zero | tr "\\0" a); echo survived'], { memoryBytes: 8 * 1024 * 1024 });
      const status = await driver.wait(c.ref, { signal: signal() });
      assert.equal(status.exitCode, 137);
      assert.equal(status.oomKilled, true);
      assert.ok(fs.existsSync(path.join(env.state, 'conmon', c.id, 'oom')), "conmon's oom file");
      // conmon also creates `oom` in its cwd: that must be the persist dir, never the daemon's cwd.
      assert.equal(fs.existsSync(path.join(process.cwd(), 'oom')), cwdOomBefore);
      await remove(c.ref);
    });

    test('a conmon spawned while an attach is open does not inherit the attach socket', async () => {
      const a = await run('inh-a', ['sh', '-c', 'read x; echo got:$x'], { openStdin: true });
      const stream = await driver.attach(a.ref, { signal: signal() });
      const b = await run('inh-b', ['sleep', '60']);
      const conmonB = conmonsFor(b.id)[0];
      assert.ok(conmonB !== undefined);
      const socketInodes = (pid: number) => fs.readdirSync(`/proc/${pid}/fd`).map((fd) => { try { return fs.readlinkSync(`/proc/${pid}/fd/${fd}`); } catch { return ''; } });
      const mine = new Set(socketInodes(process.pid).filter((l) => l.startsWith('socket:')));
      assert.deepEqual(socketInodes(conmonB).filter((l) => mine.has(l)), [], 'no socket shared with the daemon');
      await stream.writeStdin(Buffer.from('x\n'));
      assert.equal((await driver.wait(a.ref, { signal: signal() })).exitCode, 0);
      stream.close();
      await driver.kill(b.ref, { signal: signal(), signal_: 'KILL' });
      await remove(a.ref);
      await remove(b.ref);
      assert.deepEqual(cgroupDirs(b.id), []);
    });
  });
}
