/**
 * The life-cycle suite, written once and run per runtime (runc, crun ...):
 * a real isulad driven by the real `isula` binary. A third-party runtime
 * driver can run it against itself by naming its runtime.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe } from 'node:test';
import { suiteTests, type SuiteOptions } from './suite-options.js';
import { waitFor } from './harness.js';
import { assertNoTrace, cgroupDirs, containerDaemon, inspect, mountsUnder, ok, sleep } from './containers.js';

interface State { Status: string; Running: boolean; Paused: boolean; OOMKilled: boolean; Pid: number; ExitCode: number; Error: string; StartedAt: string; FinishedAt: string }
interface Inspected { Id: string; Name: string; State: State; RestartCount: number; GraphDriver: { Data: { UpperDir: string } | null }; Config: { Env: string[]; Labels: Record<string, string> }; HostConfig: Record<string, unknown> }

const cg = (ctrl: string, id: string, file: string) => fs.readFile(path.join('/sys/fs/cgroup', ctrl, 'isulad', id, file), 'utf8').then((s) => s.trim());

/** The names of the life-cycle suite's tests, in order: what `skipTests` keys and the kit's report rows name. */
export const LIFECYCLE_SPECS = {
  run: 'run: output, exit codes, --rm, env/user/workdir/entrypoint as docker',
  createStart: "create, start, stop, kill, restart, rename, wait, rm with docker's semantics",
  bindMounts: 'bind mounts: read-write, read-only enforced, tmpfs, read-only rootfs',
  processOptions: 'process and security options: capabilities, privileged, devices, ulimits (clamped), shm, hostname, init',
  resources: 'resources: limits land in the cgroup files, update changes them, OOM is reported',
  pause: 'pause freezes the container (a counter stops) and unpause resumes it',
  restartPolicies: 'restart policies: on-failure:N stops after N, always restarts with back-off, stop ends it',
  badInput: 'bad input: a clear error and no trace',
} as const;

/**
 * `opts.config` is merged into every daemon.json the suite writes: a runtime
 * from another package names its plugin there (`{ plugins: [...] }`).
 * `opts.skipTests` skips tests by name (test name → reason), for what cannot
 * apply to a runtime; a name that matches no test is an error.
 */
export function lifecycleSuite(runtime: string, opts: SuiteOptions = {}): void {
  describe(`container life cycle on ${runtime}`, { skip: opts.skip ?? false }, () => {
    const { test, checkSkips } = suiteTests(`lifecycleSuite(${runtime})`, opts);
    test(LIFECYCLE_SPECS.run, async (t) => {
      const d = await containerDaemon(t, runtime, opts.config, opts);
      const hello = await d.isula(['run', '--rm', 'busybox', 'echo', 'hello', 'world']);
      assert.equal(hello.code, 0, hello.stderr);
      assert.equal(hello.stdout, 'hello world\n');

      const three = await d.isula(['run', '--name', 'three', 'busybox', 'sh', '-c', 'echo out; echo err >&2; exit 3']);
      assert.equal(three.code, 3, 'isula run exits with the container\'s code');
      assert.equal(three.stdout, 'out\n');
      assert.equal(three.stderr, 'err\n');
      const st = await inspect<Inspected>(d, 'three');
      assert.equal(st.State.Status, 'exited');
      assert.equal(st.State.ExitCode, 3);
      assert.notEqual(st.State.FinishedAt, '0001-01-01T00:00:00Z');

      // ps -s: the writable layer's size, docker's units.
      ok(await d.isula(['run', '--name', 'sized', 'busybox', 'sh', '-c', 'head -c 100000 /dev/zero > /big']));
      assert.match(ok(await d.isula(['ps', '-a', '-s', '--filter', 'name=sized', '--format', '{{.Size}}'])), /^100kB \(virtual [\d.]+[kM]B\)\n$/);
      ok(await d.isula(['rm', 'sized']));

      const env = await d.isula(['run', '--rm', '-e', 'FOO=bar', '-e', 'PATH=/bin', '-u', '1000:1001', '-w', '/tmp', 'busybox', 'sh', '-c', 'echo "$FOO $PATH $(id -u):$(id -g) $(pwd) $HOSTNAME"']);
      assert.equal(env.code, 0, env.stderr);
      assert.match(env.stdout, /^bar \/bin 1000:1001 \/tmp [a-f0-9]{12}\n$/);

      const envFile = path.join(d.root, 'env.list');
      await fs.writeFile(envFile, '# comment\nA=from-file\nB=file\n');
      const ef = await d.isula(['run', '--rm', '--env-file', envFile, '-e', 'B=flag', 'busybox', 'sh', '-c', 'echo $A $B']);
      assert.equal(ef.stdout, 'from-file flag\n', ef.stderr);

      const nobody = await d.isula(['run', '--rm', '-u', 'nobody', 'busybox', 'id']);
      // The ids come from the image's /etc/passwd (busybox names them once it can read the file).
      assert.match(nobody.stdout, /^uid=65534(\(nobody\))? gid=65534/, nobody.stderr);

      const ep = await d.isula(['run', '--rm', '--entrypoint', 'echo', 'busybox', 'from', 'entrypoint']);
      assert.equal(ep.stdout, 'from entrypoint\n', ep.stderr);
      // The image's Cmd is ["sh"]: with no command, sh reads stdin, which is empty: exit 0.
      const dflt = await d.isula(['run', '--rm', 'busybox']);
      assert.equal(dflt.code, 0, dflt.stderr);

      const gone = await d.isula(['ps', '-a', '--format', '{{.Names}}']);
      assert.deepEqual(ok(gone).split('\n').filter(Boolean), ['three'], '--rm containers are gone');
    });

    test(LIFECYCLE_SPECS.createStart, async (t) => {
      const d = await containerDaemon(t, runtime, opts.config, opts);
      const id = ok(await d.isula(['create', '--name', 'web', '--label', 'tier=front', 'busybox', 'sleep', '1000'])).trim();
      assert.match(id, /^[a-f0-9]{64}$/);
      assert.match(ok(await d.isula(['ps', '-a'])), /Created +web\n/);
      assert.equal(ok(await d.isula(['ps', '-q'])), '', 'ps without -a hides created containers');

      const dup = await d.isula(['create', '--name', 'web', 'busybox']);
      assert.equal(dup.code, 125);
      assert.match(dup.stderr, /name "\/web" is already in use/);

      ok(await d.isula(['start', 'web']));
      let info = await inspect<Inspected>(d, id.slice(0, 8));
      assert.equal(info.State.Status, 'running');
      assert.ok(info.State.Pid > 0);
      const stat = await fs.readFile(`/proc/${info.State.Pid}/cmdline`, 'utf8');
      assert.equal(stat, 'sleep\u00001000\u0000', 'the pid is the container\'s process');
      assert.equal(ok(await d.isula(['inspect', '-f', '{{.State.Status}} {{index .Config.Labels "tier"}}', 'web'])).trim(), 'running front');
      assert.match(ok(await d.isula(['ps', '--filter', 'label=tier=front', '--format', '{{.ID}} {{.Status}}'])), new RegExp(`^${id.slice(0, 12)} Up `));
      assert.equal(ok(await d.isula(['ps', '-q', '--filter', 'status=exited'])), '');

      const rmRunning = await d.isula(['rm', 'web']);
      assert.notEqual(rmRunning.code, 0);
      assert.match(rmRunning.stderr, /cannot remove a running container/);

      // busybox sleep as PID 1 ignores TERM: stop -t 1 falls back to KILL.
      const t0 = Date.now();
      ok(await d.isula(['stop', '-t', '1', 'web']));
      assert.ok(Date.now() - t0 >= 900, 'stop waited for the timeout');
      info = await inspect<Inspected>(d, 'web');
      assert.equal(info.State.Status, 'exited');
      assert.equal(info.State.ExitCode, 137);
      assert.deepEqual(await cgroupDirs(id), [], 'the cgroup goes with the exit');

      ok(await d.isula(['restart', '-t', '0', 'web']));
      assert.equal((await inspect<Inspected>(d, 'web')).State.Status, 'running');
      // PID 1 without a handler ignores USR1 (the kernel protects init), as under docker.
      ok(await d.isula(['kill', '-s', 'USR1', 'web']));
      await sleep(200);
      assert.equal((await inspect<Inspected>(d, 'web')).State.Status, 'running');
      const waited = d.isula(['wait', 'web']);
      await sleep(100);
      ok(await d.isula(['kill', 'web']));
      assert.equal((await waited).stdout.trim(), '137');
      ok(await d.isula(['run', '-d', '--name', 'trap', 'busybox', 'sh', '-c', 'trap "exit 42" USR1; touch /tmp/ready; while true; do sleep 0.1; done']));
      // A USR1 before the trap is set is dropped (PID 1): send it once the shell says it is ready.
      await waitFor(async () => (await d.isula(['exec', 'trap', 'test', '-e', '/tmp/ready'])).code === 0, { timeoutMs: 30_000, intervalMs: 100, what: 'the trap to be set' });
      ok(await d.isula(['kill', '--signal', 'SIGUSR1', 'trap']));
      assert.equal(ok(await d.isula(['wait', 'trap'])).trim(), '42');
      ok(await d.isula(['rm', 'trap']));

      ok(await d.isula(['rename', 'web', 'web2']));
      assert.equal((await inspect<Inspected>(d, 'web2')).Name, '/web2');
      const missing = await d.isula(['inspect', '--type', 'container', 'web']);
      assert.equal(missing.code, 1);
      assert.match(missing.stderr, /No such container: web/);
      assert.equal(ok(await d.isula(['port', 'web2'])), '');

      ok(await d.isula(['rm', 'web2']));
      await assertNoTrace(d, id);
      const kill = await d.isula(['kill', 'web2']);
      assert.match(kill.stderr, /No such container: web2/);
    });

    test(LIFECYCLE_SPECS.bindMounts, async (t) => {
      const d = await containerDaemon(t, runtime, opts.config, opts);
      const host = await fs.mkdtemp(path.join(os.tmpdir(), 'isula-bind-'));
      t.after(() => fs.rm(host, { recursive: true, force: true }));
      await fs.writeFile(path.join(host, 'in.txt'), 'from host\n');
      const rw = await d.isula(['run', '--rm', '-v', `${host}:/data`, 'busybox', 'sh', '-c', 'cat /data/in.txt; echo written > /data/out.txt']);
      assert.equal(rw.stdout, 'from host\n', rw.stderr);
      assert.equal(await fs.readFile(path.join(host, 'out.txt'), 'utf8'), 'written\n');
      const ro = await d.isula(['run', '--rm', '-v', `${host}:/data:ro`, 'busybox', 'sh', '-c', 'cat /data/in.txt; echo x > /data/ro.txt']);
      assert.notEqual(ro.code, 0);
      assert.match(ro.stderr, /Read-only file system/);
      const mnt = await d.isula(['run', '--rm', '--mount', `type=bind,source=${host},target=/m,readonly`, '--tmpfs', '/scratch', 'busybox', 'sh', '-c', 'cat /m/in.txt; grep -c " /scratch tmpfs" /proc/mounts']);
      assert.equal(mnt.stdout, 'from host\n1\n', mnt.stderr);
      const rofs = await d.isula(['run', '--rm', '--read-only', 'busybox', 'touch', '/x']);
      assert.notEqual(rofs.code, 0);
      assert.match(rofs.stderr, /Read-only file system/);
    });

    test(LIFECYCLE_SPECS.processOptions, async (t) => {
      const d = await containerDaemon(t, runtime, opts.config, opts);
      const capEff = async (args: string[]) => {
        const r = await d.isula(['run', '--rm', ...args, 'busybox', 'sh', '-c', 'grep CapEff /proc/self/status']);
        assert.equal(r.code, 0, r.stderr);
        return BigInt(`0x${r.stdout.trim().split(/\s+/)[1] ?? '0'}`);
      };
      const NET_ADMIN = 1n << 12n;
      const CHOWN = 1n << 0n;
      const dflt = await capEff([]);
      assert.equal(dflt & CHOWN, CHOWN, 'CHOWN is one of docker\'s defaults');
      assert.equal(dflt & NET_ADMIN, 0n, 'NET_ADMIN is not');
      assert.equal(await capEff(['--cap-drop', 'ALL']), 0n);
      assert.equal((await capEff(['--cap-add', 'NET_ADMIN', '--cap-drop', 'chown'])) & (NET_ADMIN | CHOWN), NET_ADMIN);
      assert.ok((await capEff(['--privileged'])) > dflt, 'privileged has more than the defaults');

      const dev = await d.isula(['run', '--rm', '--device', '/dev/zero:/dev/myzero', 'busybox', 'sh', '-c', 'head -c 5 /dev/myzero | wc -c']);
      assert.equal(dev.stdout.trim(), '5', dev.stderr);
      const ul = await d.isula(['run', '--rm', '--ulimit', 'nofile=512:1024', 'busybox', 'sh', '-c', 'ulimit -n; ulimit -Hn']);
      assert.equal(ul.stdout, '512\n1024\n', ul.stderr);
      // Above the daemon's own hard limit: clamped to it, never an error (PLATFORM.md §2).
      const hard = Number((await fs.readFile('/proc/self/limits', 'utf8')).match(/Max open files\s+\d+\s+(\d+)/)?.[1]);
      const big = await d.isula(['run', '--rm', '--ulimit', `nofile=${hard * 10}:${hard * 10}`, 'busybox', 'sh', '-c', 'ulimit -Hn']);
      assert.equal(big.code, 0, big.stderr);
      assert.equal(Number(big.stdout.trim()), hard);

      const misc = await d.isula(['run', '--rm', '--shm-size', '32m', '--hostname', 'box1', '--init', 'busybox', 'sh', '-c', 'df -k /dev/shm | tail -1; hostname; cat /proc/1/cmdline | tr "\\0" " "']);
      assert.equal(misc.code, 0, misc.stderr);
      const [shm = '', host = '', init = ''] = misc.stdout.trim().split('\n');
      assert.match(shm, /\s32768\s/, 'shm is 32 MiB');
      assert.equal(host, 'box1');
      assert.match(init, /^\/sbin\/docker-init -- sh -c/, '--init runs the command under an init as PID 1');
    });

    test(LIFECYCLE_SPECS.resources, async (t) => {
      const d = await containerDaemon(t, runtime, opts.config, opts);
      const id = ok(await d.isula(['run', '-d', '-m', '64m', '--memory-swap', '128m', '--cpus', '0.5', '--cpu-shares', '512', '--pids-limit', '50', '--cpuset-cpus', '0', '--blkio-weight', '300', 'busybox', 'sleep', '1000'])).trim();
      assert.equal(await cg('memory', id, 'memory.limit_in_bytes'), String(64 * 1024 * 1024));
      assert.equal(await cg('memory', id, 'memory.memsw.limit_in_bytes').catch(() => 'no swap accounting'), String(128 * 1024 * 1024));
      assert.equal(await cg('cpu', id, 'cpu.cfs_quota_us'), '50000');
      assert.equal(await cg('cpu', id, 'cpu.cfs_period_us'), '100000');
      assert.equal(await cg('cpu', id, 'cpu.shares'), '512');
      assert.equal(await cg('pids', id, 'pids.max'), '50');
      assert.equal(await cg('cpuset', id, 'cpuset.cpus'), '0');
      // BFQ hosts have blkio.bfq.weight instead of blkio.weight (PLATFORM.md §8).
      assert.match(await cg('blkio', id, 'blkio.weight').catch(() => cg('blkio', id, 'blkio.bfq.weight')), /^(default )?300$/);
      ok(await d.isula(['update', '-m', '96m', '--memory-swap', '192m', '--pids-limit', '60', id]));
      assert.equal(await cg('memory', id, 'memory.limit_in_bytes'), String(96 * 1024 * 1024));
      assert.equal(await cg('pids', id, 'pids.max'), '60');
      assert.equal((await inspect<Inspected>(d, id)).HostConfig['Memory'], 96 * 1024 * 1024);
      ok(await d.isula(['rm', '-f', id]));

      const hog = await d.isula(['run', '--name', 'hog', '-m', '16m', '--memory-swap', '16m', 'busybox', 'sh', '-c', 'x=aaaaaaaaaaaaaaaa; while true; do x=$x$x; done']);
      assert.equal(hog.code, 137, hog.stderr);
      const info = await inspect<Inspected>(d, 'hog');
      assert.equal(info.State.OOMKilled, true);
      assert.equal(info.State.ExitCode, 137);
      // The oom event is in the ring: a stream with --since replays it.
      const ev = await d.isula(['events', '--since', '0', '--until', String(Math.floor(Date.now() / 1000) + 1), '--filter', 'event=oom', '--filter', 'container=hog']);
      assert.match(ev.stdout, /container oom [a-f0-9]{64} .*name=hog/);
    });

    test(LIFECYCLE_SPECS.pause, async (t) => {
      const d = await containerDaemon(t, runtime, opts.config, opts);
      const id = ok(await d.isula(['run', '-d', 'busybox', 'sh', '-c', 'i=0; while true; do i=$((i+1)); echo $i > /tmp/c; sleep 0.05; done'])).trim();
      const upper = (await inspect<Inspected>(d, id)).GraphDriver.Data?.UpperDir;
      assert.ok(upper !== undefined);
      const counter = () => fs.readFile(path.join(upper, 'tmp/c'), 'utf8').then((s) => Number(s.trim()), () => 0);
      await waitFor(async () => (await counter()) > 2, { timeoutMs: 5000, what: 'the counter to run' });
      ok(await d.isula(['pause', id]));
      assert.equal((await inspect<Inspected>(d, id)).State.Status, 'paused');
      assert.equal(await fs.readFile(`/sys/fs/cgroup/freezer/isulad/${id}/freezer.state`, 'utf8').then((s) => s.trim()), 'FROZEN');
      const frozenAt = await counter();
      await sleep(400);
      assert.equal(await counter(), frozenAt, 'the counter stopped while paused');
      assert.match(ok(await d.isula(['ps', '--format', '{{.Status}}'])), /\(Paused\)/);
      const again = await d.isula(['pause', id]);
      assert.match(again.stderr, /already paused/);
      ok(await d.isula(['unpause', id]));
      await waitFor(async () => (await counter()) > frozenAt + 2, { timeoutMs: 5000, what: 'the counter to resume' });
      ok(await d.isula(['rm', '-f', id]));
      await assertNoTrace(d, id);
    });

    test(LIFECYCLE_SPECS.restartPolicies, async (t) => {
      const d = await containerDaemon(t, runtime, opts.config, opts);
      ok(await d.isula(['run', '-d', '--name', 'flaky', '--restart', 'on-failure:2', 'busybox', 'sh', '-c', 'exit 1']));
      const flaky = await waitFor(async () => {
        const i = await inspect<Inspected>(d, 'flaky');
        return i.State.Status === 'exited' && i.RestartCount === 2 ? i : undefined;
      }, { timeoutMs: 60_000, intervalMs: 100, what: 'on-failure:2 to give up' });
      assert.equal(flaky.State.ExitCode, 1);
      await sleep(700);
      assert.equal((await inspect<Inspected>(d, 'flaky')).RestartCount, 2, 'no restart past the maximum');

      const t0 = Date.now();
      ok(await d.isula(['run', '-d', '--name', 'crasher', '--restart', 'always', 'busybox', 'sh', '-c', 'exit 2']));
      await waitFor(async () => (await inspect<Inspected>(d, 'crasher')).RestartCount >= 4, { timeoutMs: 60_000, intervalMs: 100, what: 'four restarts' });
      // Back-off 100+200+400+800 ms between the five runs: at least 1.5 s.
      assert.ok(Date.now() - t0 >= 1400, `four restarts took ${Date.now() - t0} ms: the back-off doubles`);
      ok(await d.isula(['stop', 'crasher']));
      const stopped = await inspect<Inspected>(d, 'crasher');
      await sleep(1000);
      const later = await inspect<Inspected>(d, 'crasher');
      assert.equal(later.State.Status, 'exited');
      assert.equal(later.RestartCount, stopped.RestartCount, 'a stopped container is not restarted');
      const ev = await d.isula(['events', '--since', '0', '--until', String(Math.floor(Date.now() / 1000) + 1), '--filter', 'container=crasher', '--filter', 'event=die']);
      assert.ok(ev.stdout.split('\n').filter(Boolean).length >= 5, 'a die event per run');
    });

    test(LIFECYCLE_SPECS.badInput, async (t) => {
      const d = await containerDaemon(t, runtime, opts.config, opts);
      const before = ok(await d.isula(['ps', '-aq']));
      const cases: { args: string[]; code: number; err: RegExp }[] = [
        { args: ['run', '--rm', '--pull', 'never', 'nosuchimage'], code: 125, err: /No such image: nosuchimage/ },
        { args: ['run', '--rm', '--bogus-flag', 'busybox'], code: 125, err: /unknown option '--bogus-flag'/ },
        { args: ['run', '--rm', '-m', '1k', 'busybox', 'true'], code: 125, err: /Minimum memory limit allowed is 6MB/ },
        { args: ['run', '--rm', '-m', 'lots', 'busybox', 'true'], code: 125, err: /lots/ },
        { args: ['run', '--rm', '--ulimit', 'nofile=abc', 'busybox', 'true'], code: 125, err: /nofile=abc/ },
        { args: ['run', '--rm', '--ulimit', 'bogus=1:2', 'busybox', 'true'], code: 125, err: /bogus/ },
        { args: ['run', '--rm', '--restart', 'sometimes', 'busybox', 'true'], code: 125, err: /sometimes/ },
        { args: ['run', '--rm', '--runtime', 'nosuchruntime', 'busybox', 'true'], code: 125, err: /nosuchruntime/ },
        { args: ['run', '--rm', 'busybox', '/no/such/cmd'], code: 127, err: /\/no\/such\/cmd/ },
        { args: ['run', '--rm', 'busybox', '/etc/passwd'], code: 126, err: /\/etc\/passwd/ },
      ];
      for (const c of cases) {
        const r = await d.isula(c.args);
        assert.equal(r.code, c.code, `${c.args.join(' ')} → ${r.code}: ${r.stderr}`);
        assert.match(r.stderr, c.err, c.args.join(' '));
      }
      // Without --rm the failed start leaves the container created with docker's exit code, nothing running.
      const failed = await d.isula(['run', '--name', 'nocmd', 'busybox', 'nosuchcmd']);
      assert.equal(failed.code, 127);
      const info = await inspect<Inspected>(d, 'nocmd');
      assert.equal(info.State.ExitCode, 127);
      assert.match(info.State.Error, /nosuchcmd/);
      assert.deepEqual(await cgroupDirs(info.Id), []);
      assert.deepEqual(await mountsUnder(d.root), []);
      ok(await d.isula(['rm', 'nocmd']));
      await assertNoTrace(d, info.Id);
      assert.equal(ok(await d.isula(['ps', '-aq'])), before, 'no half container is left');
      const stray = (await fs.readdir(path.join(d.graph, 'containers'))).length;
      assert.equal(stray, 0, 'no container directory is left');
    });
    checkSkips();
  });
}
