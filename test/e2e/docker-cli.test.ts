/**
 * Docker CLI compatibility: Debian's docker 20.10 client (/usr/bin/docker,
 * never the newer one on PATH) pointed at one isulad, every verb a user types,
 * asserting on what docker itself prints and its exit codes. The client is
 * picky (hijacked streams, /_ping negotiation, required JSON fields), so a
 * failure here is a gap in the engine API, not in our own CLI.
 */
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { tempRoot, waitFor, type RunResult, type TestDaemon } from '../lib/harness.js';
import { daemon, IMAGES_DIR } from '../lib/containers.js';

const run = promisify(execFile);
const DOCKER = '/usr/bin/docker';

let d: TestDaemon;
let configDir: string;
let scratch: string;
const teardown: Array<() => Promise<void>> = [];

before(async () => {
  configDir = await tempRoot('isula-docker-config-');
  scratch = await tempRoot('isula-docker-scratch-');
  teardown.push(() => fs.rm(configDir, { recursive: true, force: true }), () => fs.rm(scratch, { recursive: true, force: true }));
  d = await daemon({ after: (fn) => { teardown.push(fn); } });
});

after(async () => {
  for (const fn of teardown.reverse()) await fn();
});

/** The client's environment: its own config dir, nothing that redirects it or turns on experimental mode. */
function dockerEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('DOCKER_')) env[k] = v;
  env['DOCKER_CONFIG'] = configDir;
  return env;
}

interface Background {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  done: Promise<RunResult>;
}

/** Starts `docker -H <daemon> ...args` without a TTY; stdin is `input` (closed after) or /dev/null. */
function dockerBg(args: string[], input?: string | Buffer): Background {
  const child = spawn(DOCKER, ['-H', d.host, ...args], { env: dockerEnv(), stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (c: Buffer) => { stdout += c.toString('utf8'); });
  child.stderr?.on('data', (c: Buffer) => { stderr += c.toString('utf8'); });
  if (input !== undefined) {
    child.stdin?.on('error', () => {}); // EPIPE if docker ends first; the result tells.
    child.stdin?.end(input);
  }
  const done = new Promise<RunResult>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code: code ?? (signal === null ? 1 : 128), stdout, stderr }));
  });
  return { child, stdout: () => stdout, stderr: () => stderr, done };
}

/** Runs docker to its end; a hang is an error naming what was printed so far. */
async function docker(args: string[], opts: { input?: string | Buffer; timeoutMs?: number } = {}): Promise<RunResult> {
  const bg = dockerBg(args, opts.input);
  const timeoutMs = opts.timeoutMs ?? 20_000;
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      bg.child.kill('SIGKILL');
      reject(new Error(`docker ${args.join(' ')} did not end within ${timeoutMs} ms; stdout ${JSON.stringify(bg.stdout())}, stderr ${JSON.stringify(bg.stderr())}`));
    }, timeoutMs);
  });
  try {
    return await Promise.race([bg.done, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Asserts docker exited 0 and returns its stdout. */
function ok(r: RunResult, what = 'docker'): string {
  assert.equal(r.code, 0, `${what} failed (${r.code}): ${r.stderr}${r.stdout}`);
  return r.stdout;
}

async function dockerOk(...args: string[]): Promise<string> {
  return ok(await docker(args), `docker ${args.join(' ')}`);
}

const lines = (s: string): string[] => s.split('\n').filter((l) => l !== '');
const shortId = (id: string): string => id.slice(0, 12);
const nowSec = (): string => (Date.now() / 1000).toFixed(3);

/** Removes containers by name at the end of a test, whatever state they are in. */
function cleanup(t: { after(fn: () => Promise<void>): void }, ...names: string[]): void {
  t.after(async () => { await docker(['rm', '-f', ...names]).catch(() => undefined); });
}

async function state(name: string): Promise<string> {
  return (await dockerOk('inspect', '-f', '{{.State.Status}}', name)).trim();
}

interface Term {
  screen(): Promise<string>;
  type(...keys: string[]): Promise<void>;
  waitScreen(re: RegExp, what: string): Promise<string>;
}

/**
 * `docker ...args` in a real terminal: a detached tmux session on a private
 * server; the pane stays after docker ends and shows `[exit N]`.
 */
async function terminal(t: { after(fn: () => Promise<void>): void }, name: string, args: string[], size = { cols: 80, rows: 24 }): Promise<Term> {
  // A server socket of its own under the scratch dir: killing the server does not always remove it.
  const server = path.join(scratch, `tmux-${name}`);
  const tmux = async (...a: string[]) => (await run('tmux', ['-S', server, '-f', '/dev/null', ...a], { timeout: 10_000, env: dockerEnv() })).stdout;
  t.after(async () => {
    await tmux('kill-server').catch(() => {});
    await fs.rm(server, { force: true });
  });
  const quoted = [DOCKER, '-H', d.host, ...args].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
  const command = `env -u DOCKER_HOST -u DOCKER_CLI_EXPERIMENTAL DOCKER_CONFIG='${configDir}' ${quoted}; echo "[exit $?]"; sleep 600`;
  await tmux('new-session', '-d', '-s', name, '-x', String(size.cols), '-y', String(size.rows), command);
  const screen = () => tmux('capture-pane', '-p', '-t', name);
  return {
    screen,
    type: async (...keys) => { await tmux('send-keys', '-t', name, ...keys); },
    waitScreen: async (re, what) => {
      try {
        return await waitFor(async () => { const s = await screen(); return re.test(s) ? s : undefined; }, { timeoutMs: 15_000, intervalMs: 50, what });
      } catch (e) {
        throw new Error(`${(e as Error).message}; the screen:\n${await screen()}`);
      }
    },
  };
}

test('version shows the client and the engine\'s server section; info runs and shows counts and runtimes', async () => {
  const version = await docker(['version']);
  assert.equal(version.code, 0, version.stderr);
  assert.match(version.stdout, /^Client:/m);
  assert.match(version.stdout, /^Server: /m, 'a server section follows the client one');
  assert.match(version.stdout, /^ Engine:\n {2}Version: +\S+/m, 'the engine component with its version');
  assert.match(version.stdout, /^ {2}API version: +1\.41 \(minimum version [\d.]+\)$/m);
  assert.equal((await dockerOk('version', '--format', '{{.Server.APIVersion}}')).trim(), '1.41');

  const containers = lines(await dockerOk('ps', '-aq')).length;
  const running = lines(await dockerOk('ps', '-q')).length;
  const images = new Set(lines(await dockerOk('images', '-q'))).size;
  const info = await docker(['info']);
  assert.equal(info.code, 0, `info exits 0: ${info.stderr}`);
  assert.match(info.stdout, /^Server:$/m);
  assert.match(info.stdout, new RegExp(`^ Containers: ${containers}\\n {2}Running: ${running}\\n {2}Paused: 0\\n {2}Stopped: ${containers - running}$`, 'm'));
  assert.match(info.stdout, new RegExp(`^ Images: ${images}$`, 'm'));
  assert.match(info.stdout, /^ Runtimes:( \S+)*? runc( |$)/m, 'runc among the runtimes');
  assert.match(info.stdout, /^ Default Runtime: runc$/m);
  assert.equal((await dockerOk('info', '--format', '{{.OSType}}')).trim(), 'linux');
});

test('run: --rm prints the output, exits with the code and leaves nothing; -d prints the id; -i passes piped stdin', async (t) => {
  cleanup(t, 'detached');
  const hello = await docker(['run', '--rm', 'busybox', 'echo', 'hello world']);
  assert.equal(hello.code, 0, hello.stderr);
  assert.equal(hello.stdout, 'hello world\n');
  const failed = await docker(['run', '--rm', 'busybox', 'sh', '-c', 'echo out; echo err >&2; exit 3']);
  assert.equal(failed.code, 3, failed.stderr);
  assert.equal(failed.stdout, 'out\n');
  assert.equal(failed.stderr, 'err\n');
  assert.equal(await dockerOk('ps', '-aq'), '', 'the --rm containers are gone');

  const id = (await dockerOk('run', '-d', '--name', 'detached', 'busybox', 'sleep', '1000')).trim();
  assert.match(id, /^[a-f0-9]{64}$/);
  assert.equal(await state('detached'), 'running');

  const cat = await docker(['run', '--rm', '-i', 'busybox', 'cat'], { input: 'piped line\n' });
  assert.equal(cat.code, 0, cat.stderr);
  assert.equal(cat.stdout, 'piped line\n');
  const read = await docker(['run', '--rm', '-i', 'busybox', 'sh', '-c', 'read x; echo "got $x"; exit 7'], { input: 'abc\n' });
  assert.equal(read.code, 7, read.stderr);
  assert.equal(read.stdout, 'got abc\n');
  const big = await docker(['run', '--rm', '-i', 'busybox', 'wc', '-c'], { input: Buffer.alloc(300_000, 'x') });
  assert.equal(big.stdout.trim(), '300000', big.stderr);

  await t.test('run of a missing binary exits 127 and --rm leaves nothing', async () => {
    const missing = await docker(['run', '--rm', '--name', 'run-missing', 'busybox', 'no-such-binary']);
    assert.equal(missing.code, 127, missing.stderr);
    assert.match(missing.stderr, /executable file not found/);
    assert.equal(await dockerOk('ps', '-aq', '--filter', 'name=run-missing'), '');
  });

  // The client validates --device against the daemon's OS, which it learns from /_ping.
  await t.test('run --device maps a host device into the container', async () => {
    const dev = await docker(['run', '--rm', '--device', '/dev/null:/dev/mynull', 'busybox', 'sh', '-c', 'test -c /dev/mynull && echo char-device']);
    assert.equal(dev.code, 0, dev.stderr);
    assert.equal(dev.stdout, 'char-device\n');
  });
});

test('run -it: a shell in a terminal of the window\'s size, exit code on exit', async (t) => {
  cleanup(t, 'tty-run');
  const term = await terminal(t, 'runit', ['run', '-it', '--name', 'tty-run', 'busybox', 'sh'], { cols: 90, rows: 20 });
  await term.waitScreen(/^\/ # ?$/m, 'the shell prompt');
  await term.type('echo $((6*7))', 'Enter');
  await term.waitScreen(/^42\s*$/m, 'the answer');
  await term.type('tty; stty size', 'Enter');
  await term.waitScreen(/^\/dev\/pts\/\d+\s*\n20 90\s*$/m, 'a pty of the window\'s size');
  await term.type('exit 5', 'Enter');
  await term.waitScreen(/\[exit 5\]/, 'docker run to exit with the shell\'s code');
});

test('ps lists running containers, -a all, -q ids only, --format its fields', async (t) => {
  cleanup(t, 'ps-up', 'ps-done', 'ps-fresh');
  const up = (await dockerOk('run', '-d', '--name', 'ps-up', 'busybox', 'sleep', '1000')).trim();
  assert.equal((await docker(['run', '--name', 'ps-done', 'busybox', 'sh', '-c', 'exit 2'])).code, 2);
  const fresh = (await dockerOk('create', '--name', 'ps-fresh', 'busybox', 'true')).trim();
  const done = (await dockerOk('inspect', '-f', '{{.Id}}', 'ps-done')).trim();

  const table = lines(await dockerOk('ps'));
  assert.match(table[0] ?? '', /^CONTAINER ID\s+IMAGE\s+COMMAND\s+CREATED\s+STATUS\s+PORTS\s+NAMES$/);
  const rows = table.slice(1).filter((l) => / ps-\w+$/.test(l));
  assert.equal(rows.length, 1, table.join('\n'));
  assert.match(rows[0] ?? '', new RegExp(`^${shortId(up)}\\s+busybox\\s+"sleep 1000"\\s+.* ago\\s+Up .*\\s+ps-up$`));

  assert.ok(lines(await dockerOk('ps', '-q')).includes(shortId(up)));
  assert.ok(!lines(await dockerOk('ps', '-q')).includes(shortId(done)), 'without -a: running only');
  const all = lines(await dockerOk('ps', '-aq', '--no-trunc'));
  for (const id of [up, done, fresh]) assert.ok(all.includes(id), `ps -a lists ${id}`);
  assert.ok(all.indexOf(fresh) < all.indexOf(done), 'newest first');

  const fmt = lines(await dockerOk('ps', '-a', '--filter', 'name=ps-', '--format', '{{.Names}}|{{.Image}}|{{.Status}}'));
  assert.equal(fmt.length, 3, fmt.join('\n'));
  assert.match(fmt.find((l) => l.startsWith('ps-up|')) ?? '', /^ps-up\|busybox\|Up .+$/);
  assert.match(fmt.find((l) => l.startsWith('ps-done|')) ?? '', /^ps-done\|busybox\|Exited \(2\) .+ ago$/);
  assert.equal(fmt.find((l) => l.startsWith('ps-fresh|')), 'ps-fresh|busybox|Created');

  await t.test('ps --format renders every field of a row', async () => {
    const row = (await dockerOk('ps', '--filter', 'name=ps-up', '--format', '{{.ID}}|{{.Command}}|{{.CreatedAt}}|{{.RunningFor}}|{{.Ports}}|{{.State}}|{{.Labels}}|{{.Mounts}}|{{.Networks}}')).trim();
    assert.match(row, new RegExp(`^${shortId(up)}\\|"sleep 1000"\\|\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d [-+]\\d{4} \\S+\\|.+ ago\\|\\|running\\|\\|\\|`));
  });
  await t.test('ps -s shows the writable layer size', async () => {
    const sized = lines(await dockerOk('ps', '-s', '--filter', 'name=ps-up'));
    assert.match(sized[0] ?? '', /\bSIZE$/);
    assert.match(sized[1] ?? '', /\d+(\.\d+)?k?B \(virtual \d+(\.\d+)?[kM]B\)$/);
  });
});

test('create, start, pause, unpause, rename, stop, kill, wait, rm: each prints what docker prints and moves the state', async (t) => {
  cleanup(t, 'lc', 'lc-renamed', 'lc-kill', 'lc-exit', 'lc-force', 'lc-taken', 'lc-sig', 'lc-att', 'lc-inp', 'lc-re2');
  const id = (await dockerOk('create', '--name', 'lc', 'busybox', 'sh', '-c', 'trap "exit 0" TERM; while true; do sleep 0.1; done')).trim();
  assert.match(id, /^[a-f0-9]{64}$/);
  assert.equal(await state('lc'), 'created');
  assert.equal((await dockerOk('inspect', '-f', '{{.Config.Image}}', 'lc')).trim(), 'busybox');
  const inspected = JSON.parse(await dockerOk('inspect', 'lc')) as Array<{ Id: string; Name: string }>;
  assert.equal(inspected[0]?.Id, id);
  assert.equal(inspected[0]?.Name, '/lc');

  assert.equal(await dockerOk('start', 'lc'), 'lc\n');
  assert.equal(await state('lc'), 'running');
  assert.equal(await dockerOk('pause', 'lc'), 'lc\n');
  assert.equal(await state('lc'), 'paused');
  assert.match((await dockerOk('ps', '--filter', 'name=lc', '--format', '{{.Status}}')).trim(), /^Up .* \(Paused\)$/);
  assert.equal(await dockerOk('unpause', 'lc'), 'lc\n');
  assert.equal(await state('lc'), 'running');

  assert.equal(await dockerOk('rename', 'lc', 'lc-renamed'), '');
  assert.equal((await dockerOk('inspect', '-f', '{{.Name}}', id)).trim(), '/lc-renamed');
  assert.equal((await docker(['inspect', 'lc'])).code, 1, 'the old name is gone');

  const rmRunning = await docker(['rm', 'lc-renamed']);
  assert.equal(rmRunning.code, 1, 'rm of a running container fails');
  assert.match(rmRunning.stderr, /running container/);

  assert.equal(await dockerOk('stop', '-t', '5', 'lc-renamed'), 'lc-renamed\n');
  assert.equal(await state('lc-renamed'), 'exited');
  assert.equal(await dockerOk('wait', 'lc-renamed'), '0\n', 'the trap exits 0 on TERM');
  assert.equal(await dockerOk('rm', 'lc-renamed'), 'lc-renamed\n');
  assert.equal((await docker(['inspect', id])).code, 1, 'removed');

  await dockerOk('run', '-d', '--name', 'lc-kill', 'busybox', 'sleep', '1000');
  assert.equal(await dockerOk('kill', 'lc-kill'), 'lc-kill\n');
  assert.equal(await dockerOk('wait', 'lc-kill'), '137\n', 'SIGKILL: 128+9');
  assert.equal((await dockerOk('inspect', '-f', '{{.State.ExitCode}}', 'lc-kill')).trim(), '137');

  // wait blocks until a running container exits.
  await dockerOk('run', '-d', '--name', 'lc-exit', 'busybox', 'sh', '-c', 'sleep 1; exit 9');
  assert.equal(await dockerOk('wait', 'lc-exit'), '9\n');

  await dockerOk('run', '-d', '--name', 'lc-force', 'busybox', 'sleep', '1000');
  assert.equal(await dockerOk('rm', '-f', 'lc-force'), 'lc-force\n');
  assert.equal(lines(await dockerOk('ps', '-a', '--filter', 'name=lc-force', '-q')).length, 0, 'rm -f removed the running container');

  await t.test('a taken name is a conflict: create exits 1, run 125', async () => {
    await dockerOk('create', '--name', 'lc-taken', 'busybox', 'true');
    const dup = await docker(['create', '--name', 'lc-taken', 'busybox', 'true']);
    assert.equal(dup.code, 1, dup.stderr);
    assert.match(dup.stderr, /already in use/);
    const dupRun = await docker(['run', '--name', 'lc-taken', 'busybox', 'true']);
    assert.equal(dupRun.code, 125, dupRun.stderr);
    await dockerOk('rm', 'lc-taken');
  });
  await t.test('kill -s sends the named signal', async () => {
    await dockerOk('run', '-d', '--name', 'lc-sig', 'busybox', 'sh', '-c', 'trap "exit 12" USR1; while true; do sleep 0.1; done');
    await waitFor(async () => (await docker(['top', 'lc-sig'])).stdout.includes('sleep'), { timeoutMs: 5000, what: 'the trap to be set' }).catch(() => undefined);
    assert.equal(await dockerOk('kill', '-s', 'USR1', 'lc-sig'), 'lc-sig\n');
    assert.equal(await dockerOk('wait', 'lc-sig'), '12\n');
    await dockerOk('rm', 'lc-sig');
  });
  await t.test('start -a prints the output and exits with the code; start -ai takes stdin', async () => {
    await dockerOk('create', '--name', 'lc-att', 'busybox', 'sh', '-c', 'echo out; echo err >&2; exit 5');
    const att = await docker(['start', '-a', 'lc-att']);
    assert.equal(att.code, 5, att.stderr);
    assert.equal(att.stdout, 'out\n');
    assert.equal(att.stderr, 'err\n');
    await dockerOk('create', '-i', '--name', 'lc-inp', 'busybox', 'sh', '-c', 'read x; echo "got $x"');
    const inp = await docker(['start', '-ai', 'lc-inp'], { input: 'piped\n' });
    assert.equal(inp.code, 0, inp.stderr);
    assert.equal(inp.stdout, 'got piped\n');
    await dockerOk('rm', 'lc-att', 'lc-inp');
  });
  await t.test('restart runs a stopped container again', async () => {
    const first = await docker(['run', '-d', '--name', 'lc-re2', 'busybox', 'sleep', '1000']);
    assert.equal(first.code, 0, first.stderr);
    assert.equal(await dockerOk('restart', '-t', '1', 'lc-re2'), 'lc-re2\n');
    assert.equal(await state('lc-re2'), 'running');
    assert.equal((await dockerOk('inspect', '-f', '{{.RestartCount}}', 'lc-re2')).trim(), '0', 'a manual restart is not counted');
    await dockerOk('rm', '-f', 'lc-re2');
  });
});

test('logs prints both streams, --tail the last lines, -t timestamps; -f follows until the container exits; a tty container\'s log is raw', async (t) => {
  cleanup(t, 'lg', 'lg-follow', 'lg-tty');
  // Lines apart in time: conmon stamps what it reads at once with one time, so --since needs a gap.
  await dockerOk('run', '-d', '--name', 'lg', 'busybox', 'sh', '-c', 'for i in 1 2 3 4 5; do echo line$i; sleep 0.05; done; echo oops >&2');
  assert.equal(await dockerOk('wait', 'lg'), '0\n');
  await t.test('logs prints each line once, stdout and stderr apart', async () => {
    const all = await docker(['logs', 'lg']);
    assert.equal(all.code, 0, all.stderr);
    assert.equal(all.stdout, 'line1\nline2\nline3\nline4\nline5\n');
    assert.equal(all.stderr, 'oops\n');
  });
  await t.test('logs --tail 3 prints the last three lines of both streams', async () => {
    const tail = await docker(['logs', '--tail', '3', 'lg']);
    assert.equal(tail.code, 0, tail.stderr);
    assert.equal(tail.stdout, 'line4\nline5\n');
    assert.equal(tail.stderr, 'oops\n');
  });
  await t.test('logs -t prefixes each line with its RFC 3339 time', async () => {
    const stamped = await docker(['logs', '-t', '--tail', '2', 'lg']);
    assert.equal(stamped.code, 0, stamped.stderr);
    assert.match(stamped.stdout, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z line5\n$/);
  });
  await t.test('logs --since a line\'s time starts at that line', async () => {
    const stamped = lines(await dockerOk('logs', '-t', 'lg'));
    const at = stamped.find((l) => l.endsWith(' line4'))?.split(' ')[0];
    assert.ok(at !== undefined, stamped.join('\n'));
    const since = await docker(['logs', '--since', at, 'lg']);
    assert.equal(since.code, 0, since.stderr);
    assert.equal(since.stdout, 'line4\nline5\n');
  });
  await t.test('logs -f follows a running container and ends when it exits', async () => {
    await dockerOk('run', '-d', '--name', 'lg-follow', 'busybox', 'sh', '-c', 'echo first; sleep 1; echo second');
    const follow = await docker(['logs', '-f', 'lg-follow'], { timeoutMs: 10_000 });
    assert.equal(follow.code, 0, follow.stderr);
    assert.equal(follow.stdout, 'first\nsecond\n', 'everything it printed, once');
  });
  await t.test('logs of a tty container is the raw terminal output', async () => {
    await dockerOk('run', '-d', '-t', '--name', 'lg-tty', 'busybox', 'sh', '-c', 'echo on-a-tty; echo tty-err >&2');
    assert.equal(await dockerOk('wait', 'lg-tty'), '0\n');
    const tty = await docker(['logs', 'lg-tty']);
    assert.equal(tty.code, 0, tty.stderr);
    assert.equal(tty.stdout, 'on-a-tty\r\ntty-err\r\n', 'one stream, with the terminal\'s line endings');
  });
});

test('exec prints output and exits with the command\'s code; -i takes stdin; -it gives a terminal', async (t) => {
  cleanup(t, 'ex', 'ex-stopped');
  await dockerOk('run', '-d', '--name', 'ex', 'busybox', 'sleep', '1000');
  await t.test('exec prints the output and exits with the code', async () => {
    const echo = await docker(['exec', 'ex', 'echo', 'from exec']);
    assert.equal(echo.code, 0, echo.stderr);
    assert.equal(echo.stdout, 'from exec\n');
    const code = await docker(['exec', 'ex', 'sh', '-c', 'echo to-err >&2; exit 4']);
    assert.equal(code.code, 4, code.stderr);
    assert.equal(code.stderr, 'to-err\n');
    const env = await docker(['exec', '-e', 'X=y', '-w', '/tmp', 'ex', 'sh', '-c', 'echo $X $(pwd)']);
    assert.equal(env.stdout, 'y /tmp\n', env.stderr);
  });
  await t.test('exec of a missing binary exits 127 (as run; docker 20.10\'s daemon said 126), one that cannot run 126', async () => {
    const missing = await docker(['exec', 'ex', 'no-such-binary']);
    assert.equal(missing.code, 127, missing.stderr);
    assert.match(missing.stdout, /no-such-binary/, 'the runtime\'s reason is written into the stream, as moby does');
    const denied = await docker(['exec', 'ex', '/etc/passwd']);
    assert.equal(denied.code, 126, denied.stderr);
  });
  await t.test('exec in a stopped container is refused', async () => {
    await dockerOk('run', '--name', 'ex-stopped', 'busybox', 'true');
    const stopped = await docker(['exec', 'ex-stopped', 'true']);
    assert.notEqual(stopped.code, 0);
    assert.match(stopped.stderr, /is not running/);
  });
  await t.test('exec -i hands piped stdin to the command, and nothing else', async () => {
    const stdin = await docker(['exec', '-i', 'ex', 'sh', '-c', 'read a; echo "read $a"'], { input: 'piped\n' });
    assert.equal(stdin.code, 0, stdin.stderr);
    assert.equal(stdin.stdout, 'read piped\n');
    const cat = await docker(['exec', '-i', 'ex', 'cat'], { input: 'all of it\n' });
    assert.equal(cat.stdout, 'all of it\n', cat.stderr);
  });
  await t.test('exec -it: a shell on a pty of the window\'s size', async (tt) => {
    const term = await terminal(tt, 'execit', ['exec', '-it', 'ex', 'sh'], { cols: 100, rows: 30 });
    await term.waitScreen(/^\/ # ?$/m, 'the exec shell prompt');
    await term.type('tty; stty size', 'Enter');
    await term.waitScreen(/^\/dev\/pts\/\d+\s*\n30 100\s*$/m, 'a pty of the window\'s size');
    await term.type('exit 6', 'Enter');
    await term.waitScreen(/\[exit 6\]/, 'docker exec to exit with the shell\'s code');
    assert.equal(await state('ex'), 'running', 'the container outlives the exec');
  });
});

test('attach shows a running container\'s output and exits with its code; ctrl-p ctrl-q detaches from a tty one', async (t) => {
  cleanup(t, 'talker', 'tty-talker', 'reader');
  await dockerOk('run', '-d', '--name', 'talker', 'busybox', 'sh', '-c', 'while true; do echo tick; sleep 0.1; done');
  const att = dockerBg(['attach', 'talker']);
  await waitFor(() => att.stdout().includes('tick\n'), { timeoutMs: 10_000, what: `attach to show the ticks (stderr ${att.stderr()})` });
  await dockerOk('kill', 'talker');
  const ended = await att.done;
  assert.equal(ended.code, 137, `attach exits with the container's code: ${ended.stderr}`);
  assert.match(ended.stdout, /^(tick\n)+$/);

  await t.test('attach passes piped stdin to a container started with -i', async () => {
    await dockerOk('run', '-di', '--name', 'reader', 'busybox', 'sh', '-c', 'read x; echo "got $x"; exit 3');
    const fed = await docker(['attach', 'reader'], { input: 'hello\n' });
    assert.equal(fed.code, 3, fed.stderr);
    assert.equal(fed.stdout, 'got hello\n');
  });

  await dockerOk('run', '-dit', '--name', 'tty-talker', 'busybox', 'sh');
  const term = await terminal(t, 'attach', ['attach', 'tty-talker']);
  await term.type('echo $((20+22))', 'Enter');
  await term.waitScreen(/^42\s*$/m, 'the shell answers through attach');
  await term.type('C-p', 'C-q');
  // Docker 20.10's attach ends on the escape sequence with this error and 1 (cli/command/container/hijack.go).
  await term.waitScreen(/read escape sequence\s*\n\[exit 1\]/, 'docker attach to detach');
  assert.equal(await state('tty-talker'), 'running', 'the container runs on after a detach');
});

test('top lists the container\'s processes; stats --no-stream prints one row of sane figures', async (t) => {
  cleanup(t, 'mon');
  const id = (await dockerOk('run', '-d', '--name', 'mon', 'busybox', 'sleep', '1000')).trim();
  const top = lines(await dockerOk('top', 'mon'));
  assert.match(top[0] ?? '', /^UID\s+PID\s+PPID\s+C\s+STIME\s+TTY\s+TIME\s+CMD$/);
  assert.equal(top.length, 2, top.join('\n'));
  assert.match(top[1] ?? '', /^root\s+\d+\s+\d+\s+\d+\s+\S+\s+\S+\s+\S+\s+sleep 1000$/);
  assert.match(lines(await dockerOk('top', 'mon', '-o', 'pid,comm'))[1] ?? '', /^\d+\s+sleep$/);

  const stats = await docker(['stats', '--no-stream', 'mon']);
  assert.equal(stats.code, 0, stats.stderr);
  const rows = lines(stats.stdout);
  assert.equal(rows.length, 2, stats.stdout);
  assert.match(rows[0] ?? '', /^CONTAINER ID\s+NAME\s+CPU %\s+MEM USAGE \/ LIMIT\s+MEM %\s+NET I\/O\s+BLOCK I\/O\s+PIDS$/);
  assert.match(rows[1] ?? '', new RegExp(`^${shortId(id)}\\s+mon\\s+\\d+\\.\\d\\d%\\s+\\S+ / \\S+\\s+\\d+\\.\\d\\d%\\s+\\S+ / \\S+\\s+\\S+ / \\S+\\s+1$`));

  const fields = (await dockerOk('stats', '--no-stream', '--format', '{{.Name}}|{{.CPUPerc}}|{{.MemUsage}}|{{.MemPerc}}|{{.PIDs}}', 'mon')).trim().split('|');
  const [name, cpu, mem, memPerc, pids] = fields;
  assert.equal(name, 'mon');
  assert.ok(Number.parseFloat(cpu ?? '') >= 0 && Number.parseFloat(cpu ?? '') < 100, `CPU ${cpu}`);
  const bytes = (s: string): number => {
    const m = /^([\d.]+)([KMGT]?i?B)$/.exec(s);
    assert.ok(m !== null, `a size: ${s}`);
    return Number(m[1]) * ({ B: 1, KiB: 1024, MiB: 1024 ** 2, GiB: 1024 ** 3, TiB: 1024 ** 4 }[m[2] ?? 'B'] ?? Number.NaN);
  };
  const [usage, limit] = (mem ?? '').split(' / ').map(bytes);
  assert.ok(usage !== undefined && limit !== undefined && usage > 0 && usage < limit, `memory ${mem}`);
  assert.ok(Number.parseFloat(memPerc ?? '') < 100, `MEM % ${memPerc}`);
  assert.equal(pids, '1');

  await t.test('stats --no-stream without names lists every running container', async () => {
    const names = lines(await dockerOk('stats', '--no-stream', '--format', '{{.Name}}'));
    assert.deepEqual([...names].sort(), lines(await dockerOk('ps', '--format', '{{.Names}}')).sort());
    assert.ok(names.includes('mon'), names.join(' '));
  });
});

test('cp copies a file out of and into a container, and a directory in; export writes the rootfs as a tar', async (t) => {
  cleanup(t, 'files', 'files-done');
  await dockerOk('run', '-d', '--name', 'files', 'busybox', 'sh', '-c', 'echo inside > /data.txt; sleep 1000');
  await waitFor(async () => (await docker(['exec', 'files', 'test', '-e', '/data.txt'])).code === 0, { timeoutMs: 5000, what: '/data.txt' }).catch(() => undefined);

  const out = path.join(scratch, 'out.txt');
  const copiedOut = await docker(['cp', 'files:/data.txt', out]);
  assert.equal(copiedOut.code, 0, copiedOut.stderr);
  assert.equal(await fs.readFile(out, 'utf8'), 'inside\n');

  const hostFile = path.join(scratch, 'in.txt');
  await fs.writeFile(hostFile, 'from the host\n');
  const copiedIn = await docker(['cp', hostFile, 'files:/tmp/']);
  assert.equal(copiedIn.code, 0, copiedIn.stderr);
  assert.equal(await dockerOk('exec', 'files', 'cat', '/tmp/in.txt'), 'from the host\n');

  const dir = path.join(scratch, 'tree');
  await fs.mkdir(path.join(dir, 'sub'), { recursive: true });
  await fs.writeFile(path.join(dir, 'sub', 'leaf'), 'leaf\n');
  ok(await docker(['cp', dir, 'files:/copied']), 'cp of a directory in');
  assert.equal(await dockerOk('exec', 'files', 'cat', '/copied/sub/leaf'), 'leaf\n');

  const back = path.join(scratch, 'back');
  ok(await docker(['cp', 'files:/copied', back]), 'cp of a directory out');
  assert.equal(await fs.readFile(path.join(back, 'sub', 'leaf'), 'utf8'), 'leaf\n');

  const missing = await docker(['cp', 'files:/no/such/file', path.join(scratch, 'x')]);
  assert.equal(missing.code, 1, 'cp of a missing path fails');
  assert.match(missing.stderr, /No such container:path|no such file/i);

  await t.test('cp works on a stopped container too', async () => {
    await dockerOk('run', '--name', 'files-done', 'busybox', 'sh', '-c', 'echo left > /left.txt');
    const left = path.join(scratch, 'left.txt');
    ok(await docker(['cp', 'files-done:/left.txt', left]), 'cp out of an exited container');
    assert.equal(await fs.readFile(left, 'utf8'), 'left\n');
  });

  const tar = path.join(scratch, 'export.tar');
  ok(await docker(['export', '-o', tar, 'files']), 'export');
  const listed = lines((await run('tar', ['-tf', tar], { maxBuffer: 16 << 20 })).stdout).map((l) => l.replace(/^\.?\//, ''));
  for (const f of ['bin/busybox', 'etc/passwd', 'data.txt', 'tmp/in.txt']) assert.ok(listed.includes(f), `export lists ${f}`);
});

test('images lists busybox; tag adds a name; save -o writes a docker archive; rmi untags; load -i brings it back', async (t) => {
  t.after(async () => { await docker(['rmi', 'mybox:1']).catch(() => undefined); });
  const table = lines(await dockerOk('images'));
  assert.match(table[0] ?? '', /^REPOSITORY\s+TAG\s+IMAGE ID\s+CREATED\s+SIZE$/);
  assert.ok(table.some((l) => /^busybox\s+latest\s+[a-f0-9]{12}\s+.+\s+\S+B$/.test(l)), table.join('\n'));

  assert.equal(await dockerOk('tag', 'busybox', 'mybox:1'), '');
  const names = lines(await dockerOk('images', '--format', '{{.Repository}}:{{.Tag}} {{.ID}}'));
  const busyboxId = names.find((l) => l.startsWith('busybox:latest '))?.split(' ')[1];
  assert.ok(busyboxId !== undefined, names.join('\n'));
  assert.ok(names.includes(`mybox:1 ${busyboxId}`), 'the tag names the same image');

  const archive = path.join(scratch, 'mybox.tar');
  ok(await docker(['save', '-o', archive, 'mybox:1']), 'save');
  const entries = lines((await run('tar', ['-tf', archive])).stdout);
  assert.ok(entries.includes('manifest.json'), entries.join('\n'));

  const rmi = await docker(['rmi', 'mybox:1']);
  assert.equal(rmi.code, 0, rmi.stderr);
  assert.equal(rmi.stdout, 'Untagged: mybox:1\n', 'busybox still holds the image, so only the tag goes');
  assert.ok(!lines(await dockerOk('images', '--format', '{{.Repository}}:{{.Tag}}')).includes('mybox:1'));

  await t.test('load -i brings the saved tag back, naming what the archive holds', async () => {
    const load = await docker(['load', '-i', archive]);
    assert.equal(load.code, 0, load.stderr);
    assert.ok(lines(await dockerOk('images', '--format', '{{.Repository}}:{{.Tag}}')).includes('mybox:1'));
    assert.equal(load.stdout, 'Loaded image: mybox:1\n', 'only the archive\'s RepoTags, not other tags of the same image');
  });
  await t.test('load -i of the busybox archive and load from stdin', async () => {
    const again = await docker(['load', '-i', path.join(IMAGES_DIR, 'busybox.docker.tar')]);
    assert.equal(again.code, 0, again.stderr);
    assert.equal(again.stdout, 'Loaded image: busybox:latest\n');
    const piped = await docker(['load'], { input: await fs.readFile(archive) });
    assert.equal(piped.code, 0, piped.stderr);
    assert.equal(piped.stdout, 'Loaded image: mybox:1\n');
  });

  const absent = await docker(['rmi', 'no-such-image:9']);
  assert.equal(absent.code, 1);
  assert.match(absent.stderr, /No such image/);
});

test('history, diff and commit: isula prints what docker prints, flag for flag, for a 3-layer image; docker commit works', async () => {
  await dockerOk('load', '-i', path.join(IMAGES_DIR, 'layered.docker.tar'));
  const cases = [
    ['history', 'layered'],
    ['history', '--no-trunc', 'layered'],
    ['history', '-q', 'layered'],
    ['history', '--human=false', 'layered'],
    ['image', 'history', 'busybox'],
    ['history', '--format', '{{.ID}}|{{.CreatedAt}}|{{.CreatedSince}}|{{.CreatedBy}}|{{.Size}}|{{.Comment}}', 'layered'],
  ];
  for (const args of cases) {
    const [ours, theirs] = [await d.isula(args), await docker(args)];
    assert.equal(theirs.code, 0, theirs.stderr);
    assert.equal(ours.code, 0, ours.stderr);
    assert.equal(ours.stdout, theirs.stdout, `isula ${args.join(' ')}`);
  }
  assert.equal(lines(await dockerOk('history', '-q', 'layered')).length, 3, 'one entry per layer');
  // diff: docker's client prints the daemon's changes as isula does.
  await dockerOk('run', '--name', 'hist-diff', 'layered', 'sh', '-c', 'rm /data/keep.txt; echo >> /data/hard; touch /new');
  const [ours, theirs] = [await d.isula(['diff', 'hist-diff']), await docker(['diff', 'hist-diff'])];
  assert.equal(theirs.stdout, 'C /data\nC /data/hard\nD /data/keep.txt\nA /new\n', theirs.stderr);
  assert.equal(ours.stdout, theirs.stdout);
  // commit through docker's client: the printed id names an image that runs with the change.
  const committed = (await dockerOk('commit', '-c', 'CMD ["cat", "/new"]', '-m', 'via docker', 'hist-diff', 'hist-commit:1')).trim();
  assert.match(committed, /^sha256:[0-9a-f]{64}$/);
  assert.equal(await dockerOk('run', '--rm', 'hist-commit:1'), '', '/new is the empty file the container made');
  assert.match(await dockerOk('history', '--format', '{{.Comment}}', 'hist-commit:1'), /^via docker\n/);
  await dockerOk('rmi', 'hist-commit:1');
  await dockerOk('rm', 'hist-diff');
  const missing = await d.isula(['history', 'nosuch']);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /No such image: nosuch/);
  await dockerOk('rmi', 'layered');
});

test('system df prints what docker system df prints; system prune -f removes what docker\'s would and says it in docker\'s words', async (t) => {
  cleanup(t, 'sp-up', 'sp-a', 'sp-b');
  await dockerOk('run', '-d', '--name', 'sp-up', 'busybox', 'sleep', '300');
  await dockerOk('run', '--name', 'sp-a', '--label', 'sp=1', 'busybox', 'sh', '-c', 'head -c 5000 /dev/zero > /x');
  const [ours, theirs] = [await d.isula(['system', 'df']), await docker(['system', 'df'])];
  assert.equal(theirs.code, 0, theirs.stderr);
  assert.equal(ours.stdout, theirs.stdout);
  assert.match(ours.stdout, /^Containers +\d+ +\d+ +[\d.]+k?B/m);
  const fmtArgs = ['system', 'df', '--format', '{{.Type}}={{.TotalCount}}/{{.Active}}'];
  assert.equal((await d.isula(fmtArgs)).stdout, (await docker(fmtArgs)).stdout);
  // -v: the per-object tables. Their CREATED column is relative ("3 seconds ago"): a second
  // may tick between the two calls, so up to three tries for both to see the same one.
  let verbose: [string, string] = ['', ''];
  for (let i = 0; i < 3; i++) {
    verbose = [ok(await d.isula(['system', 'df', '-v'])), await dockerOk('system', 'df', '-v')];
    if (verbose[0] === verbose[1]) break;
  }
  assert.equal(verbose[0], verbose[1]);
  assert.match(verbose[0], /^Images space usage:\n\nREPOSITORY +TAG +IMAGE ID +CREATED +SIZE +SHARED SIZE +UNIQUE SIZE +CONTAINERS\n/);
  assert.match(verbose[0], / sp-a\n/, 'sp-a is listed');

  const idA = (await dockerOk('inspect', '-f', '{{.Id}}', 'sp-a')).trim();
  const pruned = await d.isula(['system', 'prune', '-f', '--filter', 'label=sp=1']);
  assert.equal(pruned.code, 0, pruned.stderr);
  assert.equal(pruned.stdout, `Deleted Containers:\n${idA}\n\nTotal reclaimed space: 5kB\n`);
  await dockerOk('run', '--name', 'sp-b', '--label', 'sp=1', 'busybox', 'true');
  const idB = (await dockerOk('inspect', '-f', '{{.Id}}', 'sp-b')).trim();
  const theirPrune = await docker(['system', 'prune', '-f', '--filter', 'label=sp=1']);
  assert.equal(theirPrune.code, 0, theirPrune.stderr);
  assert.equal(theirPrune.stdout, `Deleted Containers:\n${idB}\n\nTotal reclaimed space: 0B\n`);
  assert.equal(await state('sp-up'), 'running', 'a running container stays');
  assert.equal((await d.isula(['system', 'prune'])).code, 1, 'off a terminal, without -f: refused');
  assert.equal((await d.isula(['system', 'info'])).stdout, (await d.isula(['info'])).stdout, 'system info is info');
});

test('events --since/--until --filter container= shows create, start, die, destroy in order', async () => {
  await dockerOk('create', '--name', 'ev-other', 'busybox', 'true');
  const since = nowSec();
  const id = (await dockerOk('run', '-d', '--name', 'ev', 'busybox', 'sh', '-c', 'exit 4')).trim();
  assert.equal(await dockerOk('wait', 'ev'), '4\n');
  await dockerOk('rm', 'ev');
  await dockerOk('rm', 'ev-other');
  const until = nowSec();

  const ev = await docker(['events', '--since', since, '--until', until, '--filter', 'container=ev']);
  assert.equal(ev.code, 0, ev.stderr);
  const got = lines(ev.stdout);
  const actions = got.map((l) => / container (\w+) /.exec(l)?.[1]);
  assert.deepEqual(actions, ['create', 'start', 'die', 'destroy'], ev.stdout);
  for (const l of got) {
    assert.match(l, new RegExp(`^\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d\\.\\d{9}(Z|[-+]\\d\\d:\\d\\d) container \\w+ ${id} \\(.*\\bname=ev\\b.*\\)$`));
  }
  assert.match(got[2] ?? '', /exitCode=4/);

  const fmt = await docker(['events', '--since', since, '--until', until, '--filter', 'container=ev', '--filter', 'event=die', '--format', '{{.Type}} {{.Action}} {{.Actor.Attributes.name}}']);
  assert.equal(fmt.stdout, 'container die ev\n', fmt.stderr);
});

test('container prune -f --filter label= removes the stopped containers with the label and prints what docker prints', async (t) => {
  cleanup(t, 'pr-a', 'pr-b', 'pr-keep');
  const a = (await dockerOk('create', '--name', 'pr-a', '--label', 'prune=docker', 'busybox', 'true')).trim();
  const b = (await dockerOk('create', '--name', 'pr-b', '--label', 'prune=docker', 'busybox', 'true')).trim();
  await dockerOk('create', '--name', 'pr-keep', 'busybox', 'true');
  const out = await dockerOk('container', 'prune', '-f', '--filter', 'label=prune=docker');
  const [head, ...rest] = out.split('\n');
  assert.equal(head, 'Deleted Containers:', out);
  assert.deepEqual(rest.slice(0, 2).sort(), [a, b].sort(), out);
  assert.deepEqual(rest.slice(2), ['', 'Total reclaimed space: 0B', ''], out);
  assert.equal(await state('pr-keep'), 'created');
  assert.equal((await docker(['inspect', 'pr-a'])).code, 1, 'pruned');
});

test('events without --until streams new events as they happen', async (t) => {
  cleanup(t, 'ev-live');
  const since = nowSec();
  const live = dockerBg(['events', '--since', since, '--filter', 'container=ev-live', '--format', '{{.Action}}']);
  t.after(() => { live.child.kill('SIGTERM'); });
  await dockerOk('run', '-d', '--name', 'ev-live', 'busybox', 'sh', '-c', 'exit 0');
  await waitFor(() => live.stdout().includes('die\n'), { timeoutMs: 10_000, what: `the die event (got ${JSON.stringify(live.stdout())}, stderr ${JSON.stringify(live.stderr())})` });
  assert.deepEqual(lines(live.stdout()), ['create', 'start', 'die']);
  assert.equal(live.child.exitCode, null, 'the stream stays open');
});

// Last: it stops the shared daemon. Every session above has ended, so nothing should hold it up.
test('once every docker session has ended, the daemon stops on SIGTERM without being killed', async () => {
  const left = lines(await dockerOk('ps', '-aq'));
  if (left.length > 0) await dockerOk('rm', '-f', ...left);
  const started = Date.now();
  const exit = await d.stop();
  const tookMs = Date.now() - started;
  assert.equal(exit?.signal ?? null, null, `isulad needed SIGKILL after ${tookMs} ms (a connection was left open)`);
  assert.ok(tookMs < 5000, `stopping took ${tookMs} ms`);
});
