/**
 * Streams and observability, written once and run per runtime (runc, lcr,
 * io.containerd.runc.v2 ...) through the real `isula`: exec, logs (follow,
 * rotation, log-driver none, across a daemon restart), cp both ways with the
 * symlink-escape cases, export → import, top, stats and events.
 */
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe } from 'node:test';
import { suiteTests, type SuiteOptions } from './suite-options.js';
import { promisify } from 'node:util';
import { httpRequest, ISULA, waitFor, type RunResult, type TestDaemon } from './harness.js';
import { daemon, inspect, isulaWithStdin, mountsUnder, ok, processesMatching } from './containers.js';

const run = promisify(execFile);
const exists = (p: string): Promise<boolean> => fs.stat(p).then(() => true, () => false);
const lstatExists = (p: string): Promise<boolean> => fs.lstat(p).then(() => true, () => false);

/** Paths under `dir` (bounded depth) whose name contains `needle`: whatever a runtime kept per exec. */
async function pathsNaming(dir: string, needle: string, depth = 6): Promise<string[]> {
  const out: string[] = [];
  if (depth === 0) return out;
  for (const e of await fs.readdir(dir, { withFileTypes: true }).catch(() => [])) {
    const p = path.join(dir, e.name);
    if (e.name.includes(needle)) out.push(p);
    if (e.isDirectory()) out.push(...(await pathsNaming(p, needle, depth - 1)));
  }
  return out;
}

/** `isula ARGS` left running: `seen(text)` resolves once its stdout holds `text`; `done` is the result. */
function following(d: TestDaemon, args: string[], timeoutMs: number): { seen(text: string): Promise<void>; done: Promise<RunResult> } {
  const child = spawn(process.execPath, [ISULA, '-H', d.host, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  let ended = false;
  child.stdout.on('data', (c: Buffer) => { stdout += c.toString('utf8'); });
  child.stderr.on('data', (c: Buffer) => { stderr += c.toString('utf8'); });
  const done = new Promise<RunResult>((resolve, reject) => {
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`isula ${args.join(' ')} did not end within ${timeoutMs} ms; stdout ${JSON.stringify(stdout)}, stderr ${JSON.stringify(stderr)}`)); }, timeoutMs);
    child.on('error', (e) => { clearTimeout(timer); reject(e); });
    child.on('close', (code) => { ended = true; clearTimeout(timer); resolve({ code: code ?? 1, stdout, stderr }); });
  });
  done.catch(() => {}); // awaited by the test; a rejection must not go unhandled meanwhile
  return {
    done,
    seen: (text) => waitFor(async () => stdout.includes(text) || (ended ? Promise.reject(new Error(`isula ${args.join(' ')} ended before printing ${JSON.stringify(text)}: ${stderr}`)) : false), { timeoutMs: 20_000, intervalMs: 20, what: `isula ${args.join(' ')} to print ${JSON.stringify(text)}` }).then(() => undefined),
  };
}

/**
 * `opts` as lifecycleSuite's: `config` is merged into every daemon.json (a
 * runtime from another package names its plugin there), `skipTests` skips
 * tests by name (test name → reason); a name that matches no test is an error.
 */
export function streamsSuite(runtime: string, opts: SuiteOptions = {}): void {
  describe(`streams on ${runtime}`, { skip: opts.skip ?? false }, () => {
    const { test, checkSkips } = suiteTests(`streamsSuite(${runtime})`, opts);
    test('exec: output, exit codes, stdin, env/user/workdir, detached; clear errors for stopped, paused and unknown', async (t) => {
      const d = await daemon(t, { 'default-runtime': runtime, ...opts.config }, opts);
      const id = ok(await d.isula(['run', '-d', '--name', 'ex', '-e', 'BASE=1', 'busybox', 'sleep', '1d'])).trim();

      assert.equal(ok(await d.isula(['exec', 'ex', 'echo', 'hi'])), 'hi\n');
      const code = await d.isula(['exec', 'ex', 'sh', '-c', 'echo out; echo err >&2; exit 7']);
      assert.equal(code.code, 7, 'isula exec exits with the process\'s code');
      assert.equal(code.stdout, 'out\n');
      assert.equal(code.stderr, 'err\n');
      const env = ok(await d.isula(['exec', '-e', 'A=2', '-u', '1000:1001', '-w', '/tmp', 'ex', 'sh', '-c', 'echo $BASE $A $(id -u):$(id -g) $(pwd)']));
      assert.equal(env, '1 2 1000:1001 /tmp\n', 'the container env plus -e, the user and workdir given');
      const stdin = await isulaWithStdin(d, ['exec', '-i', 'ex', 'sh', '-c', 'tr a-z A-Z; echo done'], 'piped input\n');
      assert.equal(stdin.code, 0, stdin.stderr);
      assert.equal(stdin.stdout, 'PIPED INPUT\ndone\n', 'stdin reaches the process and its end is EOF');

      const missing = await d.isula(['exec', 'ex', '/no/such/cmd']);
      assert.equal(missing.code, 127, `a missing command exits 127: ${missing.stderr}`);
      const noUser = await d.isula(['exec', '-u', 'nosuchuser', 'ex', 'true']);
      assert.equal(noUser.code, 126, `an exec that cannot start (unknown user) exits 126: ${noUser.stdout}${noUser.stderr}`);
      assert.match(noUser.stdout + noUser.stderr, /nosuchuser/);

      assert.equal(ok(await d.isula(['exec', '-d', 'ex', 'sh', '-c', 'sleep 0.2; echo bg > /tmp/detached'])), '');
      await waitFor(async () => (await d.isula(['exec', 'ex', 'cat', '/tmp/detached'])).stdout === 'bg\n', { timeoutMs: 10_000, what: 'the detached exec to write its file' });

      // Exec instances over the API: inspect after the end, unknown ids.
      const created = await httpRequest(d.socket, 'POST', '/containers/ex/exec', JSON.stringify({ Cmd: ['sh', '-c', 'exit 3'], AttachStdout: true }), { 'Content-Type': 'application/json' });
      assert.equal(created.status, 201, created.body);
      const execId = (JSON.parse(created.body) as { Id: string }).Id;
      const started = await httpRequest(d.socket, 'POST', `/exec/${execId}/start`, JSON.stringify({ Detach: true }), { 'Content-Type': 'application/json' });
      assert.equal(started.status, 200, started.body);
      const inspected = await waitFor(async () => {
        const j = JSON.parse((await httpRequest(d.socket, 'GET', `/exec/${execId}/json`)).body) as { Running: boolean; ExitCode: number | null; ContainerID: string };
        return j.Running === false && j.ExitCode !== null ? j : undefined;
      }, { what: 'the exec to end' });
      assert.equal(inspected.ExitCode, 3);
      assert.equal(inspected.ContainerID, id);
      const again = await httpRequest(d.socket, 'POST', `/exec/${execId}/start`, JSON.stringify({ Detach: true }), { 'Content-Type': 'application/json' });
      assert.equal(again.status, 409, 'an exec runs once');
      assert.equal((await httpRequest(d.socket, 'GET', '/exec/nope/json')).status, 404);
      const resize = await httpRequest(d.socket, 'POST', '/exec/nope/resize?h=10&w=10');
      assert.equal(resize.status, 404, 'resizing an unknown exec is a 404');
      assert.equal(JSON.parse(resize.body).message, 'No such exec instance: nope');

      ok(await d.isula(['pause', 'ex']));
      const paused = await d.isula(['exec', 'ex', 'true']);
      assert.notEqual(paused.code, 0);
      assert.match(paused.stderr, /paused/);
      ok(await d.isula(['unpause', 'ex']));
      ok(await d.isula(['stop', '-t', '0', 'ex']));
      const stopped = await d.isula(['exec', 'ex', 'true']);
      assert.notEqual(stopped.code, 0);
      assert.match(stopped.stderr, /is not running/);
      // Nothing of the execs is left: no exec conmon, no exec directory.
      assert.deepEqual(await processesMatching(execId), []);
      assert.deepEqual(await pathsNaming(d.state, execId), [], 'no exec directory or FIFO is left');
    });

    test('logs --tail across stdout and stderr: the records in the order written', async (t) => {
      const d = await daemon(t, { 'default-runtime': runtime, ...opts.config }, opts);
      // stdout, stderr, stdout again within a millisecond: the log keeps that order.
      const r = await d.isula(['run', '--name', 'lg', 'busybox', 'sh', '-c', 'for i in 1 2 3 4 5; do echo line$i; done; echo oops >&2; printf partial']);
      assert.equal(r.code, 0, r.stderr);
      const all = await d.isula(['logs', 'lg']);
      assert.equal(all.code, 0, all.stderr);
      assert.equal(all.stdout, 'line1\nline2\nline3\nline4\nline5\npartial');
      assert.equal(all.stderr, 'oops\n');
      const tail = await d.isula(['logs', '--tail', '2', 'lg']);
      assert.equal(tail.stdout, 'partial', 'the last two records are oops and partial');
      assert.equal(tail.stderr, 'oops\n');
      const ts = ok(await d.isula(['logs', '-t', '--tail', '3', 'lg']));
      assert.match(ts, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z line5\n\d{4}-.*Z partial$/s);
    });

    test('logs: streams, tail, timestamps, since/until, follow to the exit, across a daemon restart; log-driver none', async (t) => {
      const d = await daemon(t, { 'default-runtime': runtime, ...opts.config }, opts);
      // Here stderr comes first, well apart: the order across streams is the test above's.
      const r = await d.isula(['run', '--name', 'lg', 'busybox', 'sh', '-c', 'echo oops >&2; sleep 0.5; for i in 1 2 3 4 5; do echo line$i; done; printf partial']);
      assert.equal(r.code, 0, r.stderr);
      const all = await d.isula(['logs', 'lg']);
      assert.equal(all.code, 0, all.stderr);
      assert.equal(all.stdout, 'line1\nline2\nline3\nline4\nline5\npartial');
      assert.equal(all.stderr, 'oops\n');
      const tail = await d.isula(['logs', '--tail', '2', 'lg']);
      assert.equal(tail.stdout, 'line5\npartial', 'the last two records');
      assert.equal(tail.stderr, '');
      assert.equal((await d.isula(['logs', '--tail', '6', 'lg'])).stderr, '', 'oops is the 7th record from the end');
      assert.equal((await d.isula(['logs', '--tail', '7', 'lg'])).stderr, 'oops\n');
      const ts = ok(await d.isula(['logs', '-t', '--tail', '2', 'lg']));
      assert.match(ts, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z line5\n\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z partial$/);
      assert.equal(ok(await d.isula(['logs', '--since', String(Math.floor(Date.now() / 1000) + 60), 'lg'])), '', 'nothing since a future time');
      assert.equal(ok(await d.isula(['logs', '--until', '2000-01-01T00:00:00Z', 'lg'])), '', 'nothing until a past time');

      // Follow: ends when the container exits, with everything in order.
      ok(await d.isula(['run', '-d', '--name', 'fl', 'busybox', 'sh', '-c', 'echo a; sleep 1; echo b; sleep 1; echo c']));
      const followed = await d.isula(['logs', '-f', 'fl']);
      assert.equal(followed.code, 0, followed.stderr);
      assert.equal(followed.stdout, 'a\nb\nc\n');

      // Output written while the daemon is down is kept, and -f follows after it is back. The
      // container outlives the restart (it waits, bounded, for a file made once the daemon is back).
      const sig = path.join(d.root, 'sig-down');
      await fs.mkdir(sig);
      const waitGo = 'i=0; while [ ! -e /sig/go ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done';
      ok(await d.isula(['run', '-d', '--name', 'down', '-v', `${sig}:/sig`, 'busybox', 'sh', '-c', `echo before; sleep 2; echo during; ${waitGo}; echo after`]));
      // startsWith: 'during' follows 2 s later, and one slow CLI call on a loaded host can miss the moment.
      await waitFor(async () => (await d.isula(['logs', 'down'])).stdout.startsWith('before\n'), { timeoutMs: 30_000, what: 'the first line' });
      // A `logs -f` started now goes on across the restart, each line once.
      const follower = following(d, ['logs', '-f', 'down'], 60_000);
      await follower.seen('before\n'); // connected (a loaded host can take seconds to start the CLI)
      await d.stop();
      await new Promise((res) => setTimeout(res, 2500));
      await d.start();
      await fs.writeFile(path.join(sig, 'go'), '');
      const afterRestart = await d.isula(['logs', '-f', 'down']);
      assert.equal(afterRestart.stdout, 'before\nduring\nafter\n', afterRestart.stderr);
      const followed2 = await follower.done;
      assert.equal(followed2.code, 0, followed2.stderr);
      assert.equal(followed2.stdout, 'before\nduring\nafter\n', 'logs -f followed across the daemon restart');

      // log-driver none: no log to read, but attach still streams.
      const none = await d.isula(['run', '--name', 'nolog', '--log-driver', 'none', 'busybox', 'echo', 'attached']);
      assert.equal(none.stdout, 'attached\n', none.stderr);
      const noLogs = await d.isula(['logs', 'nolog']);
      assert.notEqual(noLogs.code, 0);
      assert.match(noLogs.stderr, /does not support reading/);
      const bad = await d.isula(['run', '--rm', '--log-driver', 'syslogx', 'busybox', 'true']);
      assert.equal(bad.code, 125);
      assert.match(bad.stderr, /no log driver named 'syslogx'/);
      const badOpt = await d.isula(['run', '--rm', '--log-opt', 'max-size=lots', 'busybox', 'true']);
      assert.equal(badOpt.code, 125);
      assert.match(badOpt.stderr, /lots/);
      assert.deepEqual((await d.isula(['ps', '-a', '--filter', 'name=nolog', '-q'])).stdout.split('\n').filter(Boolean).length, 1);
    });

    test('logs -f across a daemon restart: what a container wrote before it exited while the daemon was down', async (t) => {
      const d = await daemon(t, { 'default-runtime': runtime, ...opts.config }, opts);
      const sig = path.join(d.root, 'sig-gone');
      await fs.mkdir(sig);
      // It writes its last line and exits once the daemon is down (it waits, bounded, for a file).
      ok(await d.isula(['run', '-d', '--name', 'gone', '-v', `${sig}:/sig`, 'busybox', 'sh', '-c',
        'echo first; i=0; while [ ! -e /sig/go ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done; echo last; touch /sig/done']));
      await waitFor(async () => (await d.isula(['logs', 'gone'])).stdout === 'first\n', { what: 'the first line of gone' });
      const late = following(d, ['logs', '-f', 'gone'], 60_000);
      await late.seen('first\n');
      await d.stop();
      await fs.writeFile(path.join(sig, 'go'), '');
      await waitFor(() => exists(path.join(sig, 'done')), { timeoutMs: 20_000, what: 'the container to write its last line' });
      await new Promise((res) => setTimeout(res, 1000)); // and to exit
      await d.start();
      const lateOut = await late.done;
      assert.equal(lateOut.code, 0, lateOut.stderr);
      assert.equal(lateOut.stdout, 'first\nlast\n', 'the lines written while the daemon was down, after the exit');
      assert.equal(ok(await d.isula(['logs', 'gone'])), 'first\nlast\n');
    });

    test('logs rotation: a container printing 1 GiB keeps its log within max-size × max-file', async (t) => {
      const d = await daemon(t, { 'default-runtime': runtime, ...opts.config }, opts);
      const maxSize = 1024 * 1024;
      const id = ok(await d.isula(['run', '-d', '--name', 'flood', '--log-opt', 'max-size=1m', '--log-opt', 'max-file=3', 'busybox', 'sh', '-c',
        'yes 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef | head -c 1073741824; echo; echo the-end'])).trim();
      const dir = path.join(d.graph, 'containers', id);
      const logBytes = async () => {
        let total = 0;
        let files = 0;
        for (const f of await fs.readdir(dir).catch(() => [] as string[])) {
          if (!f.startsWith('container.log')) continue;
          const st = await fs.stat(path.join(dir, f)).catch(() => undefined);
          // The hold link shares the current file's inode: count each inode once.
          if (st !== undefined) { total += st.size; files += 1; }
        }
        return { total, files };
      };
      let peak = 0;
      const started = Date.now();
      await waitFor(async () => {
        const { total } = await logBytes();
        peak = Math.max(peak, total);
        return (await inspect<{ State: { Running: boolean } }>(d, 'flood')).State.Running === false;
      }, { timeoutMs: 240_000, intervalMs: 200, what: 'the flood to end' });
      const seconds = (Date.now() - started) / 1000;
      const { total, files } = await logBytes();
      // Three files of at most max-size, plus the transient hold of a replaced one (and its link).
      assert.ok(peak <= 5 * maxSize, `peak log size ${peak} bytes exceeds the bound (after ${seconds} s)`);
      assert.ok(total <= 4 * maxSize && files <= 4, `${files} files, ${total} bytes left`);
      const last = await d.isula(['logs', '--tail', '1', 'flood']);
      assert.equal(last.stdout, 'the-end\n', 'the end of the output is in the log');
      const { stdout: count } = await run('sh', ['-c', `"${process.execPath}" "${ISULA}" -H ${d.host} logs flood | wc -c`], { timeout: 60_000 });
      const rotated = Number(count.trim());
      assert.ok(rotated > maxSize && rotated <= 4 * maxSize, `logs reads the rotated files too (${rotated} bytes)`);
    });

    test('cp both ways on running and stopped containers; a symlink in the container never lets a copy out', async (t) => {
      const d = await daemon(t, { 'default-runtime': runtime, ...opts.config }, opts);
      const host = path.join(d.root, 'host');
      await fs.mkdir(path.join(host, 'dir', 'sub'), { recursive: true });
      await fs.writeFile(path.join(host, 'file.txt'), 'from host\n');
      await fs.writeFile(path.join(host, 'dir', 'sub', 'deep.txt'), 'deep\n');
      ok(await d.isula(['run', '-d', '--name', 'cpc', 'busybox', 'sleep', '1d']));

      ok(await d.isula(['cp', path.join(host, 'file.txt'), 'cpc:/tmp/']));
      assert.equal(ok(await d.isula(['exec', 'cpc', 'cat', '/tmp/file.txt'])), 'from host\n');
      ok(await d.isula(['cp', path.join(host, 'dir'), 'cpc:/copied']));
      assert.equal(ok(await d.isula(['exec', 'cpc', 'cat', '/copied/sub/deep.txt'])), 'deep\n');

      const out = path.join(d.root, 'out');
      await fs.mkdir(out);
      ok(await d.isula(['cp', 'cpc:/etc/passwd', out]));
      assert.match(await fs.readFile(path.join(out, 'passwd'), 'utf8'), /^root:/);
      ok(await d.isula(['cp', 'cpc:/copied', path.join(out, 'back')]));
      assert.equal(await fs.readFile(path.join(out, 'back', 'sub', 'deep.txt'), 'utf8'), 'deep\n');
      const streamed = ok(await d.isula(['cp', 'cpc:/etc/passwd', '-']));
      assert.match(streamed, /^passwd\0/, 'cp to - writes a tar whose entry is named after the path');
      assert.match(streamed, /root:x:0:0/);

      // Missing paths: clear errors, exit 1.
      const missing = await d.isula(['cp', 'cpc:/no/such', out]);
      assert.equal(missing.code, 1);
      assert.match(missing.stderr, /Could not find the file \/no\/such in container|No such container:path/);
      const missingDest = await d.isula(['cp', path.join(host, 'file.txt'), 'cpc:/no/such/dir/']);
      assert.notEqual(missingDest.code, 0);

      // Symlink escapes: /escape -> / and a relative one; the copy lands inside the container.
      const outside = await fs.mkdtemp(path.join(os.tmpdir(), 'isula-outside-'));
      t.after(() => fs.rm(outside, { recursive: true, force: true }));
      ok(await d.isula(['exec', 'cpc', 'ln', '-s', outside, '/escape']));
      ok(await d.isula(['exec', 'cpc', 'ln', '-s', `../../../../../../..${outside}`, '/escape-rel']));
      ok(await d.isula(['exec', 'cpc', 'mkdir', '-p', outside]));
      ok(await d.isula(['cp', path.join(host, 'file.txt'), 'cpc:/escape/pwned']));
      ok(await d.isula(['cp', path.join(host, 'file.txt'), 'cpc:/escape-rel/pwned2']));
      assert.equal(await exists(path.join(outside, 'pwned')), false, 'nothing was written on the host through /escape');
      assert.equal(await exists(path.join(outside, 'pwned2')), false, 'nothing was written on the host through /escape-rel');
      assert.equal(ok(await d.isula(['exec', 'cpc', 'cat', `${outside}/pwned`])), 'from host\n', 'the copy landed inside the container');
      // A tar whose entry goes through a symlink that already exists in the container is refused.
      const evil = path.join(d.root, 'evil');
      await fs.mkdir(path.join(evil, 'escape'), { recursive: true });
      await fs.writeFile(path.join(evil, 'escape', 'through'), 'x');
      await run('tar', ['-C', evil, '-cf', path.join(d.root, 'evil.tar'), 'escape/through']);
      const throughLink = await isulaWithStdin(d, ['cp', '-', 'cpc:/'], await fs.readFile(path.join(d.root, 'evil.tar')));
      assert.equal(await exists(path.join(outside, 'through')), false, `nothing written through the symlink (${throughLink.code}: ${throughLink.stderr})`);
      // Reading through a symlink stays inside too: /escape/.. is the container's /.
      ok(await d.isula(['cp', 'cpc:/escape/../../etc/passwd', path.join(out, 'via-escape')]));
      assert.equal(await fs.readFile(path.join(out, 'via-escape'), 'utf8'), await fs.readFile(path.join(out, 'passwd'), 'utf8'), 'the container\'s passwd, not the host\'s');

      // A stopped container: cp works and leaves no mount.
      ok(await d.isula(['stop', '-t', '0', 'cpc']));
      ok(await d.isula(['cp', path.join(host, 'file.txt'), 'cpc:/stopped.txt']));
      ok(await d.isula(['cp', 'cpc:/stopped.txt', path.join(out, 'stopped.txt')]));
      assert.equal(await fs.readFile(path.join(out, 'stopped.txt'), 'utf8'), 'from host\n');
      assert.deepEqual(await mountsUnder(d.root), [], 'cp of a stopped container leaves no mount');
      ok(await d.isula(['start', 'cpc']));
      assert.equal(ok(await d.isula(['exec', 'cpc', 'cat', '/stopped.txt'])), 'from host\n');
      assert.equal(await lstatExists(path.join(host, 'pwned')), false);
    });

    test('export → import gives a working image; top and stats show the container; events list each step in order', async (t) => {
      const d = await daemon(t, { 'default-runtime': runtime, ...opts.config }, opts);
      const since = (Date.now() / 1000).toFixed(3);
      const id = ok(await d.isula(['run', '-d', '--name', 'obs', '-m', '64m', 'busybox', 'sh', '-c', 'echo marker > /marker; exec sleep 1d'])).trim();
      await waitFor(async () => (await d.isula(['exec', 'obs', 'cat', '/marker'])).stdout === 'marker\n', { what: 'the marker file' });

      const tar = path.join(d.root, 'obs.tar');
      ok(await d.isula(['export', '-o', tar, 'obs']));
      const names = (await run('tar', ['-tf', tar], { maxBuffer: 16 * 1024 * 1024 })).stdout;
      assert.match(names, /(^|\n)(\.\/)?marker\n/);
      assert.match(names, /(^|\n)(\.\/)?bin\/busybox\n/);
      ok(await d.isula(['import', tar, 'exported:1']));
      assert.equal(ok(await d.isula(['run', '--rm', 'exported:1', '/bin/cat', '/marker'])), 'marker\n');

      const top = ok(await d.isula(['top', 'obs']));
      const [header, ...rows] = top.trim().split('\n');
      assert.match(header ?? '', /PID/);
      assert.ok(rows.some((r) => /sleep 1d/.test(r)), top);
      const topArgs = ok(await d.isula(['top', 'obs', '-o', 'pid,comm']));
      assert.match(topArgs, /PID\s+COMMAND\n\s*\d+\s+sleep\n/);

      const stats = ok(await d.isula(['stats', '--no-stream', '--format', '{{.Name}} {{.MemUsage}} {{.MemPerc}} {{.PIDs}} {{.CPUPerc}}', 'obs']));
      const m = /^obs ([\d.]+)([KMG]i?B|B) \/ 64MiB ([\d.]+)% (\d+) ([\d.]+)%\n$/.exec(stats);
      assert.ok(m !== null, `stats line: ${stats}`);
      assert.equal(m[4], '1', 'one process');
      assert.ok(Number(m[3]) > 0 && Number(m[3]) < 100, 'memory percentage within (0, 100)');
      assert.ok(Number(m[5]) >= 0 && Number(m[5]) <= 100 * os.cpus().length, 'CPU percentage within bounds');

      ok(await d.isula(['exec', 'obs', 'true']));
      ok(await d.isula(['pause', 'obs']));
      ok(await d.isula(['unpause', 'obs']));
      ok(await d.isula(['stop', '-t', '1', 'obs']));
      ok(await d.isula(['rename', 'obs', 'obs2']));
      ok(await d.isula(['rm', 'obs2']));
      const until = (Date.now() / 1000 + 1).toFixed(3);
      const events = ok(await d.isula(['events', '--since', since, '--until', until, '--filter', `container=${id}`, '--format', '{{.Action}}']));
      const actions = events.trim().split('\n').map((a) => a.replace(/:.*$/, ''));
      const want = ['create', 'start', 'exec_create', 'exec_start', 'exec_die', 'pause', 'unpause', 'kill', 'die', 'stop', 'rename', 'destroy'];
      let at = 0;
      for (const a of actions) if (a === want[at]) at += 1;
      assert.equal(at, want.length, `events in order ${want.join(',')}; got ${actions.join(',')}`);
      const json = ok(await d.isula(['events', '--since', since, '--until', until, '--filter', 'event=destroy', '--filter', 'type=container', '--filter', `container=${id}`, '--format', '{{json .}}']));
      const destroy = JSON.parse(json.trim().split('\n')[0] ?? '{}') as { Type: string; Action: string; Actor: { ID: string; Attributes: { name: string } }; time: number; timeNano: number };
      assert.equal(destroy.Type, 'container');
      assert.equal(destroy.Action, 'destroy');
      assert.equal(destroy.Actor.ID, id);
    });

    checkSkips();
  });
}
