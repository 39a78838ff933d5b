/**
 * Container behaviour beyond the life-cycle suite, on runc: crash repair at
 * restore, daemon.json runtimes, images in use, --cgroup-parent, ps flags
 * and filters, info counts, stdin through run -i / start -a -i, and events.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { tempRoot, TestDaemon, waitFor } from '../lib/harness.js';
import { assertNoTrace, cgroupDirs, daemon, IMAGES_DIR, inspect, isulaWithStdin, mountsUnder, ok } from '../lib/containers.js';

const run = promisify(execFile);

interface Inspected { Id: string; Name: string; State: { Status: string; Pid: number; ExitCode: number }; HostConfig: { Runtime?: string; CgroupParent?: string }; GraphDriver: { Data: { MergedDir: string } | null } }

const lines = (s: string): string[] => s.split('\n').filter((l) => l !== '');
const exists = (p: string): Promise<boolean> => fs.stat(p).then(() => true, () => false);
const nowSec = (): string => (Date.now() / 1000).toFixed(3);

/** kill -9 of isulad: no shutdown code runs. */
async function crash(d: TestDaemon): Promise<void> {
  d.proc?.kill('SIGKILL');
  await d.exited();
}

/**
 * Mounts a container's overlay exactly as image-oci's mountRootfs does, as a
 * daemon killed between mounting the rootfs and starting the runtime leaves it
 * (create itself no longer mounts, so a crash is simulated this way).
 */
async function mountAsACrashLeftIt(d: TestDaemon, id: string): Promise<string> {
  const storage = path.join(d.graph, 'storage');
  const imageId = (await fs.readFile(path.join(storage, 'containers', id, 'image'), 'utf8')).trim();
  const image = JSON.parse(await fs.readFile(path.join(storage, 'images', `${imageId.replace(/^sha256:/, '')}.json`), 'utf8')) as { layers: string[] };
  const lower = [...image.layers].reverse().map((c) => path.join(storage, 'layers', c.replace(/^sha256:/, ''), 'diff')).join(':');
  const dir = path.join(storage, 'containers', id);
  const merged = path.join(dir, 'merged');
  await run('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${lower},upperdir=${dir}/upper,workdir=${dir}/work`, merged], { timeout: 10_000 });
  return merged;
}

test('restore repairs a crash: a half-created container is removed; a created one keeps its layer, loses its leaked mount and starts', async (t) => {
  const d = await daemon(t);
  const half = ok(await d.isula(['create', '--name', 'half', 'busybox', 'true'])).trim();
  const created = ok(await d.isula(['create', '--name', 'created', 'busybox', 'sh', '-c', 'cat /marker; echo started; exit 3'])).trim();

  await crash(d);
  // `half`: the crash came before its record was written.
  await fs.rm(path.join(d.graph, 'containers', half, 'config.v2.json'));
  await mountAsACrashLeftIt(d, half);
  // `created`: the crash came after its rootfs was mounted, before the runtime ran.
  const merged = await mountAsACrashLeftIt(d, created);
  await fs.writeFile(path.join(merged, 'marker'), 'written before the crash\n');
  assert.equal((await mountsUnder(d.root)).length, 2);

  await d.start();
  assert.deepEqual(lines(ok(await d.isula(['ps', '-a', '--no-trunc', '--format', '{{.ID}} {{.Names}} {{.Status}}']))), [`${created} created Created`]);
  for (const dir of [path.join(d.graph, 'containers', half), path.join(d.graph, 'storage', 'containers', half), path.join(d.state, 'containers', half)]) {
    assert.equal(await exists(dir), false, `${dir} is removed`);
  }
  assert.deepEqual(await mountsUnder(d.root), [], 'both leaked mounts are unmounted');
  assert.match(await d.log(), /removing a half-created container/);
  const missing = await d.isula(['inspect', '--type', 'container', half]);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /No such container/);

  assert.match(ok(await d.isula(['create', '--name', 'half', 'busybox', 'true'])), /^[a-f0-9]{64}\n$/, 'its name is free again');
  ok(await d.isula(['rm', 'half']));

  // The repaired container starts, on its writable layer as it was.
  const started = await d.isula(['start', '-a', 'created']);
  assert.equal(started.code, 3, started.stderr);
  assert.equal(started.stdout, 'written before the crash\nstarted\n');
  assert.equal((await inspect<Inspected>(d, created)).State.Status, 'exited');
  ok(await d.isula(['rm', 'created']));
  await assertNoTrace(d, created);
  await assertNoTrace(d, half);
  // Nothing of the half container keeps the image in use.
  ok(await d.isula(['rmi', 'busybox']), 'rmi once no container is left');
});

test('runtimes from daemon.json: a named runtime runs containers, default-runtime applies, a missing binary fails create cleanly', async (t) => {
  const wrapperDir = await tempRoot('isula-runtime-');
  t.after(() => fs.rm(wrapperDir, { recursive: true, force: true }));
  const calls = path.join(wrapperDir, 'calls.log');
  const wrapper = path.join(wrapperDir, 'logged-runc');
  await fs.writeFile(wrapper, `#!/bin/sh\necho "$*" >> ${calls}\nexec /usr/sbin/runc "$@"\n`, { mode: 0o755 });
  const d = await daemon(t, {
    'default-runtime': 'myrunc',
    runtimes: {
      myrunc: { path: '/usr/sbin/runc', 'runtime-args': [] },
      logged: { path: wrapper, 'runtime-args': ['--log-format', 'text'] },
      ghost: { path: '/nonexistent/ghost' },
    },
  });

  const okRun = await d.isula(['run', '--rm', '--runtime', 'myrunc', 'busybox', 'echo', 'ok']);
  assert.equal(okRun.code, 0, okRun.stderr);
  assert.equal(okRun.stdout, 'ok\n');
  ok(await d.isula(['run', '--name', 'explicit', '--runtime', 'myrunc', 'busybox', 'true']));
  assert.equal((await inspect<Inspected>(d, 'explicit')).HostConfig.Runtime, 'myrunc');

  // Without --runtime: default-runtime.
  const dflt = await d.isula(['run', '--name', 'dflt', 'busybox', 'echo', 'default']);
  assert.equal(dflt.stdout, 'default\n', dflt.stderr);
  assert.equal((await inspect<Inspected>(d, 'dflt')).HostConfig.Runtime, 'myrunc');
  ok(await d.isula(['run', '--name', 'builtin', '--runtime', 'runc', 'busybox', 'true']));
  assert.equal((await inspect<Inspected>(d, 'builtin')).HostConfig.Runtime, 'runc');

  // The configured binary is the one run, with its runtime-args.
  const logged = ok(await d.isula(['run', '-d', '--runtime', 'logged', 'busybox', 'sleep', '100'])).trim();
  const argv = await fs.readFile(calls, 'utf8');
  assert.match(argv, new RegExp(`--log-format text .*\\bcreate\\b.*${logged}`), argv);
  ok(await d.isula(['rm', '-f', logged]));
  await assertNoTrace(d, logged);

  const info = JSON.parse(ok(await d.isula(['info', '--format', 'json']))) as { DefaultRuntime: string; Runtimes: Record<string, { path?: string }> };
  assert.equal(info.DefaultRuntime, 'myrunc');
  assert.equal(info.Runtimes['myrunc']?.path, '/usr/sbin/runc');
  assert.match(ok(await d.isula(['info'])), /^Default Runtime: myrunc$/m);
  // Docker's info lists runc beside the configured runtimes: every name `--runtime` takes.
  await t.test('info lists the built-in runc with the configured runtimes', async () => {
    assert.ok('runc' in info.Runtimes, `Runtimes: ${Object.keys(info.Runtimes).join(' ')}`);
  });

  const before = lines(ok(await d.isula(['ps', '-aq', '--no-trunc']))).sort();
  const ghost = await d.isula(['create', '--runtime', 'ghost', 'busybox']);
  assert.equal(ghost.code, 125, ghost.stderr);
  assert.match(ghost.stderr, /ghost/);
  assert.match(ghost.stderr, /\/nonexistent\/ghost/);
  const ghostRun = await d.isula(['run', '--rm', '--runtime', 'ghost', 'busybox', 'true']);
  assert.equal(ghostRun.code, 125, ghostRun.stderr);
  assert.deepEqual(lines(ok(await d.isula(['ps', '-aq', '--no-trunc']))).sort(), before, 'no container is left by the failed creates');
  assert.deepEqual((await fs.readdir(path.join(d.graph, 'containers'))).sort(), before, 'no directory is left under graph/containers');
  assert.deepEqual((await fs.readdir(path.join(d.graph, 'storage', 'containers'))).sort(), before, 'no writable layer is left');
});

test('rmi refuses an image a stopped container uses, naming it, also after a daemon restart; succeeds after rm', async (t) => {
  const d = await daemon(t);
  ok(await d.isula(['run', '--name', 'user', 'busybox', 'true']));
  const short = (await inspect<Inspected>(d, 'user')).Id.slice(0, 12);
  const refuse = async (when: string) => {
    const rmi = await d.isula(['rmi', 'busybox']);
    assert.equal(rmi.code, 1, `${when}: ${rmi.stdout}`);
    assert.match(rmi.stderr, new RegExp(short), `${when}: the message names the container`);
    assert.match(ok(await d.isula(['images', '--format', '{{.Repository}}:{{.Tag}}'])), /^busybox:latest$/m, `${when}: the image is still there`);
  };
  await refuse('stopped container');
  await d.stop();
  await d.start();
  await refuse('after a daemon restart');
  // The container still runs on the image.
  assert.equal((await d.isula(['start', '-a', 'user'])).code, 0);

  ok(await d.isula(['rm', 'user']));
  const rmi = await d.isula(['rmi', 'busybox']);
  assert.equal(rmi.code, 0, rmi.stderr);
  assert.match(rmi.stdout, /Untagged: busybox:latest/);
  assert.equal(ok(await d.isula(['images', '-q'])), '');
});

test('--cgroup-parent puts the container\'s cgroup under that parent, not isulad/; rm -f removes it', async (t) => {
  const parent = `mygroup-${process.pid}`;
  t.after(async () => {
    for (const ctrl of await fs.readdir('/sys/fs/cgroup').catch(() => [] as string[])) await fs.rmdir(path.join('/sys/fs/cgroup', ctrl, parent)).catch(() => {});
  });
  const d = await daemon(t);
  const id = ok(await d.isula(['run', '-d', '--cgroup-parent', parent, '-m', '32m', 'busybox', 'sleep', '1000'])).trim();
  const info = await inspect<Inspected>(d, id);
  assert.equal(info.HostConfig.CgroupParent, parent);
  const memory = path.join('/sys/fs/cgroup/memory', parent, id);
  assert.equal(await exists(memory), true, `${memory} exists`);
  assert.equal((await fs.readFile(path.join(memory, 'memory.limit_in_bytes'), 'utf8')).trim(), String(32 * 1024 * 1024));
  assert.deepEqual(await cgroupDirs(id), [], 'nothing under isulad/');
  assert.match(await fs.readFile(`/proc/${info.State.Pid}/cgroup`, 'utf8'), new RegExp(`:memory:/${parent}/${id}$`, 'm'));
  ok(await d.isula(['rm', '-f', id]));
  assert.deepEqual(await cgroupDirs(id, parent), [], 'the cgroup goes with the container');
  await assertNoTrace(d, id);
});

test('ps: -n, -l, --no-trunc, -q, filters name/exited/ancestor/id, --format; an ambiguous id prefix is an error', async (t) => {
  const d = await daemon(t);
  ok(await d.isula(['tag', 'busybox', 'other:1']));
  const ids: Record<string, string> = {};
  ok(await d.isula(['run', '--name', 'done', 'busybox', 'true']));
  assert.equal((await d.isula(['run', '--name', 'failed', 'other:1', 'sh', '-c', 'exit 2'])).code, 2);
  ids['up'] = ok(await d.isula(['run', '-d', '--name', 'up', 'busybox', 'sleep', '1000'])).trim();
  ids['fresh'] = ok(await d.isula(['create', '--name', 'fresh', 'busybox', 'echo', 'a b'])).trim();
  for (const n of ['done', 'failed']) ids[n] = ok(await d.isula(['inspect', '-f', '{{.Id}}', n])).trim();
  const ps = async (...args: string[]) => lines(ok(await d.isula(['ps', ...args])));

  assert.deepEqual(await ps('-n', '2', '--format', '{{.Names}}'), ['fresh', 'up'], '-n 2: the two newest, created ones included');
  assert.deepEqual(await ps('-l', '--format', '{{.Names}}'), ['fresh'], '-l: the latest');
  assert.equal((await ps('-l')).length, 2, '-l: header and one row');
  assert.deepEqual(await ps('-q'), [ids['up']?.slice(0, 12)], 'without -a: running only, short ids');
  assert.deepEqual(await ps('-aq', '--no-trunc'), ['fresh', 'up', 'failed', 'done'].map((n) => ids[n]), '-a: all, newest first, full ids');
  assert.deepEqual(await ps('-a', '--no-trunc', '--format', '{{.ID}}', '--filter', 'name=fail'), [ids['failed']]);
  assert.deepEqual(await ps('-a', '--format', '{{.Names}}', '--filter', 'exited=0'), ['done'], 'exited=0: not the created nor the running one');
  assert.deepEqual(await ps('-a', '--format', '{{.Names}}', '--filter', 'exited=2'), ['failed']);
  assert.deepEqual(await ps('-a', '--format', '{{.Names}}', '--filter', 'ancestor=busybox'), ['fresh', 'up', 'done']);
  assert.deepEqual(await ps('-a', '--format', '{{.Names}}', '--filter', 'ancestor=other:1'), ['failed']);
  assert.deepEqual(await ps('-a', '--format', '{{.Names}}', '--filter', `id=${ids['up']?.slice(0, 6)}`), ['up']);
  assert.deepEqual(await ps('--format', '{{.Names}}', '--filter', 'status=created'), ['fresh'], 'a status filter implies -a');
  assert.deepEqual(await ps('--format', '{{.Names}}', '--filter', 'since=failed'), ['fresh', 'up']);
  assert.deepEqual(await ps('--format', '{{.Names}}', '--filter', 'before=up'), ['failed', 'done']);
  assert.deepEqual(await ps('-n', '3', '-q', '--filter', 'status=exited'), ['failed', 'done'].map((n) => ids[n]?.slice(0, 12)), '-n applies after the filters');
  assert.deepEqual(await ps('-a', '--format', '{{.Names}} {{.Image}} {{.Command}}', '--filter', 'name=up'), ['up busybox "sleep 1000"']);
  // Docker's list quotes an argument holding a space in single quotes (moby daemon/list.go), then the CLI Go-quotes the whole.
  await t.test('{{.Command}} quotes an argument with a space as docker does', async () => {
    assert.deepEqual(await ps('-a', '--format', '{{.Command}}', '--filter', 'name=fresh'), ['"echo \'a b\'"']);
  });

  // Create until two ids share their first hex digit (pigeonhole: at most 16 more).
  const all = Object.values(ids);
  const sharing = () => all.filter((x) => all.some((y) => y !== x && y[0] === x[0]));
  for (let i = 0; i < 40 && sharing().length === 0; i++) all.push(ok(await d.isula(['create', 'busybox', 'true'])).trim());
  const group = sharing().filter((x, _, arr) => x[0] === arr[0]?.[0]);
  const prefix = group[0]?.slice(0, 1) ?? '';
  assert.ok(group.length >= 2, 'two ids share a first digit');
  const amb = await d.isula(['inspect', '--type', 'container', prefix]);
  assert.equal(amb.code, 1, amb.stdout);
  assert.match(amb.stderr, /multiple/i);
  const rm = await d.isula(['rm', prefix]);
  assert.equal(rm.code, 1);
  assert.match(rm.stderr, /multiple/i);
  assert.deepEqual((await ps('-a', '--no-trunc', '--format', '{{.ID}}', '--filter', `id=${prefix}`)).sort(), [...group].sort(), 'the ambiguous rm removed nothing');
  for (const id of group) {
    let n = 2;
    while (group.some((o) => o !== id && o.startsWith(id.slice(0, n)))) n++;
    assert.equal((await inspect<Inspected>(d, id.slice(0, n))).Id, id, 'a unique prefix finds its container');
  }
});

test('info counts containers: total, running, paused, stopped', async (t) => {
  const d = await daemon(t);
  const counts = async () => {
    const j = JSON.parse(ok(await d.isula(['info', '--format', 'json']))) as Record<string, number>;
    const text = ok(await d.isula(['info']));
    const m = /^Containers: (\d+)\n Running: (\d+)\n Paused: (\d+)\n Stopped: (\d+)$/m.exec(text);
    assert.ok(m !== null, text);
    const fromText = m.slice(1, 5).map(Number);
    const fromJson = [j['Containers'], j['ContainersRunning'], j['ContainersPaused'], j['ContainersStopped']];
    assert.deepEqual(fromText, fromJson, 'text and json agree');
    return fromJson;
  };
  assert.deepEqual(await counts(), [0, 0, 0, 0]);
  ok(await d.isula(['create', '--name', 'cr', 'busybox', 'true']));
  ok(await d.isula(['run', '--name', 'ex', 'busybox', 'true']));
  ok(await d.isula(['run', '-d', '--name', 'r1', 'busybox', 'sleep', '1000']));
  ok(await d.isula(['run', '-d', '--name', 'r2', 'busybox', 'sleep', '1000']));
  ok(await d.isula(['pause', 'r2']));
  assert.deepEqual(await counts(), [4, 1, 1, 2], 'created and exited count as stopped, paused not as running');
  ok(await d.isula(['unpause', 'r2']));
  ok(await d.isula(['rm', '-f', 'r1', 'cr']));
  assert.deepEqual(await counts(), [2, 1, 0, 1]);
});

test('stdin: run -i passes piped input and its end; start -a shows output and exits with the code; start -a -i takes stdin', async (t) => {
  const d = await daemon(t);
  const hello = await isulaWithStdin(d, ['run', '--rm', '-i', 'busybox', 'cat'], 'hello\n');
  assert.equal(hello.code, 0, hello.stderr);
  assert.equal(hello.stdout, 'hello\n');
  const big = Buffer.alloc(300_000, 'x');
  const count = await isulaWithStdin(d, ['run', '--rm', '-i', 'busybox', 'wc', '-c'], big);
  assert.equal(count.stdout.trim(), '300000', count.stderr);
  // A container that reads nothing and exits: run ends with its code, unread input or not.
  const small = await isulaWithStdin(d, ['run', '--rm', '-i', 'busybox', 'sh', '-c', 'exit 6'], 'unread\n');
  assert.equal(small.code, 6, small.stderr);
  await t.test('run -i ends when the container exits with much input unread', async () => {
    const early = await isulaWithStdin(d, ['run', '--rm', '-i', 'busybox', 'sh', '-c', 'exit 6'], big);
    assert.equal(early.code, 6, early.stderr);
  });
  const code = await isulaWithStdin(d, ['run', '--rm', '-i', 'busybox', 'sh', '-c', 'read x; echo "got $x"; exit 7'], 'line\n');
  assert.equal(code.code, 7, code.stderr);
  assert.equal(code.stdout, 'got line\n');

  // No input at all (`isula run -i busybox cat < /dev/null`): cat must see the end at once, as under docker.
  await t.test('run -i with an empty stdin ends', async () => {
    const empty = await isulaWithStdin(d, ['run', '--rm', '-i', 'busybox', 'cat'], '');
    assert.equal(empty.code, 0, empty.stderr);
    assert.equal(empty.stdout, '');
  });
  assert.equal(ok(await d.isula(['ps', '-aq'])), '', 'every --rm container is gone');

  ok(await d.isula(['create', '--name', 'att', 'busybox', 'sh', '-c', 'echo out; echo err >&2; exit 5']));
  const att = await d.isula(['start', '-a', 'att']);
  assert.equal(att.code, 5);
  assert.equal(att.stdout, 'out\n');
  assert.equal(att.stderr, 'err\n');
  assert.equal((await inspect<Inspected>(d, 'att')).State.ExitCode, 5);
  // Attached again to a second run of the same container.
  const again = await d.isula(['start', '-a', 'att']);
  assert.equal(again.code, 5);
  assert.equal(again.stdout, 'out\n');

  ok(await d.isula(['create', '-i', '--name', 'inp', 'busybox', 'sh', '-c', 'read x; echo "got $x"']));
  const inp = await isulaWithStdin(d, ['start', '-a', '-i', 'inp'], 'piped\n');
  assert.equal(inp.code, 0, inp.stderr);
  assert.equal(inp.stdout, 'got piped\n');
  const left = [(await inspect<Inspected>(d, 'att')).Id, (await inspect<Inspected>(d, 'inp')).Id];
  ok(await d.isula(['rm', 'att', 'inp']));
  for (const id of left) await assertNoTrace(d, id);
  assert.equal(ok(await d.isula(['ps', '-aq'])), '', 'the --rm containers are gone');
});

test('events: create, start, die, destroy of a container within --since/--until, with name= and image=', async (t) => {
  const d = await daemon(t);
  ok(await d.isula(['create', '--name', 'earlier', 'busybox', 'true']));
  const since = nowSec();
  const id = ok(await d.isula(['run', '-d', '--name', 'watched', '--label', 'team=qa', 'busybox', 'sh', '-c', 'exit 4'])).trim();
  await waitFor(async () => (await inspect<Inspected>(d, id)).State.Status === 'exited', { timeoutMs: 5000, what: 'the container to exit' });
  ok(await d.isula(['rm', 'watched']));
  const until = nowSec();
  ok(await d.isula(['create', '--name', 'later', 'busybox', 'true']));

  const ev = await d.isula(['events', '--since', since, '--until', until]);
  assert.equal(ev.code, 0, ev.stderr);
  const got = lines(ev.stdout);
  assert.ok(got.every((l) => l.includes(id)), `only the watched container's events are in the window:\n${ev.stdout}`);
  const actions = got.map((l) => / container (\w+) /.exec(l)?.[1]);
  assert.deepEqual(actions, ['create', 'start', 'die', 'destroy'], ev.stdout);
  for (const l of got) {
    assert.match(l, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z container \w+ [a-f0-9]{64} \(.*\)$/);
    assert.match(l, /[(, ]name=watched[,)]/);
    assert.match(l, /[(, ]image=busybox[,)]/);
    assert.match(l, /[(, ]team=qa[,)]/);
  }
  assert.match(got[2] ?? '', /exitCode=4/);

  const filtered = await d.isula(['events', '--since', since, '--until', until, '--filter', 'event=die', '--filter', 'container=watched']);
  assert.equal(lines(filtered.stdout).length, 1, filtered.stdout);
  const json = await d.isula(['events', '--since', since, '--until', until, '--filter', 'event=start', '--format', 'json']);
  const [start] = lines(json.stdout).map((l) => JSON.parse(l) as { Type: string; Action: string; Actor: { ID: string; Attributes: Record<string, string> } });
  assert.equal(start?.Type, 'container');
  assert.equal(start?.Actor.ID, id);
  assert.equal(start?.Actor.Attributes['name'], 'watched');
});

test('concurrent creates without a name all succeed with distinct generated names', async (t) => {
  const d = await daemon(t);
  const { httpRequest } = await import('../lib/harness.js');
  const body = JSON.stringify({ Image: 'busybox', Cmd: ['true'], HostConfig: { NetworkMode: 'none' } });
  const replies = await Promise.all(Array.from({ length: 40 }, () => httpRequest(d.socket, 'POST', '/containers/create', body, { 'Content-Type': 'application/json' })));
  for (const r of replies) assert.equal(r.status, 201, r.body);
  const names = ok(await d.isula(['ps', '-a', '--format', '{{.Names}}'])).trim().split('\n');
  assert.equal(names.length, 40);
  assert.equal(new Set(names).size, 40, 'no two share a name');
  for (const n of names) assert.match(n, /^[a-z]+_[a-z]+\d*$/, 'docker-style adjective_scientist');
});

test('container prune removes the stopped containers its filters keep, leaves running ones, and leaves no trace', async (t) => {
  const d = await daemon(t);
  const labelled = ok(await d.isula(['create', '--name', 'labelled', '--label', 'stage=test', 'busybox', 'true'])).trim();
  const wrote = ok(await d.isula(['run', '-d', '--name', 'wrote', 'busybox', 'sh', '-c', 'printf 12345 > /out'])).trim();
  const up = ok(await d.isula(['run', '-d', '--name', 'up', 'busybox', 'sleep', '100'])).trim();
  ok(await d.isula(['pause', 'up']));
  await waitFor(async () => (await inspect<Inspected>(d, wrote)).State.Status === 'exited', { timeoutMs: 5000, what: 'the container to exit' });

  // Off a terminal, without -f: refused, nothing asked of the daemon.
  const refused = await d.isula(['container', 'prune']);
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /use -f \(--force\)/);
  assert.equal(lines(ok(await d.isula(['ps', '-aq']))).length, 3);

  const byLabel = ok(await d.isula(['container', 'prune', '-f', '--filter', 'label=stage=test']));
  assert.equal(byLabel, `Deleted Containers:\n${labelled}\n\nTotal reclaimed space: 0B\n`);
  assert.equal(ok(await d.isula(['container', 'prune', '-f', '--filter', 'until=2020-01-01T00:00:00Z'])), 'Total reclaimed space: 0B\n', 'nothing was created before 2020');
  // The one left stopped wrote 5 bytes into its layer.
  assert.equal(ok(await d.isula(['container', 'prune', '-f'])), `Deleted Containers:\n${wrote}\n\nTotal reclaimed space: 5B\n`);
  assert.deepEqual(lines(ok(await d.isula(['ps', '-a', '--format', '{{.Names}} {{.State}}']))), ['up paused'], 'a paused container is running: kept');

  const bad = await d.isula(['container', 'prune', '-f', '--filter', 'status=exited']);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /invalid filter 'status'/);
  const ev = lines(ok(await d.isula(['events', '--since', '60s', '--until', '0s', '--filter', 'event=prune'])));
  assert.equal(ev.length, 3, ev.join('\n'));
  assert.match(ev[2] ?? '', / container prune +\(reclaimed=5\)$/);
  ok(await d.isula(['rm', '-f', up]));
  for (const id of [labelled, wrote, up]) await assertNoTrace(d, id);
});

test('diff lists what a container changed against its image (whiteouts, opaque dirs, copy-ups), not the runtime mount points', async (t) => {
  const d = await daemon(t);
  ok(await d.isula(['load', '-i', path.join(IMAGES_DIR, 'layered.docker.tar')]));
  const created = ok(await d.isula(['create', '--name', 'fresh', 'busybox', 'true'])).trim();
  assert.equal(ok(await d.isula(['diff', created])), '', 'nothing changed yet');
  ok(await d.isula(['run', '--name', 'bb', 'busybox', 'sh', '-c', 'echo x > /tmp/new; rm /bin/ls; mkdir -p /root/d/e']));
  assert.equal(ok(await d.isula(['diff', 'bb'])), 'C /bin\nD /bin/ls\nC /root\nA /root/d\nA /root/d/e\nC /tmp\nA /tmp/new\n');
  // layered: /data/dir is opaque once recreated (docker lists it deleted, then its new contents),
  // a hard link written to is copied up, a file of a lower layer removed.
  ok(await d.isula(['run', '--name', 'ly', 'layered', 'sh', '-c', 'rm -rf /data/dir && mkdir /data/dir && touch /data/dir/z; rm /data/keep.txt; echo >> /data/hard']));
  assert.equal(ok(await d.isula(['container', 'diff', 'ly'])), 'C /data\nD /data/dir\nA /data/dir/z\nC /data/hard\nD /data/keep.txt\n');
  const missing = await d.isula(['diff', 'nosuch']);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /No such container: nosuch/);
  ok(await d.isula(['rm', 'fresh', 'bb', 'ly']));
});

test('system prune -a --volumes: stopped containers, unused volumes and images go; what a running container uses stays', async (t) => {
  const d = await daemon(t);
  ok(await d.isula(['load', '-i', path.join(IMAGES_DIR, 'layered.docker.tar')]));
  const up = ok(await d.isula(['run', '-d', '--name', 'up', 'busybox', 'sleep', '100'])).trim();
  const done = ok(await d.isula(['create', '--name', 'done', 'layered', 'true'])).trim();
  ok(await d.isula(['volume', 'create', 'spare']));
  const layeredId = ok(await d.isula(['inspect', '--type', 'image', '-f', '{{.Id}}', 'layered'])).trim();
  const r = ok(await d.isula(['system', 'prune', '-a', '-f', '--volumes']));
  const sections = r.split('\n\n');
  assert.equal(sections[0], `Deleted Containers:\n${done}`);
  assert.equal(sections[1], 'Deleted Volumes:\nspare');
  assert.match(sections[2] ?? '', new RegExp(`^Deleted Images:\nuntagged: layered:latest\ndeleted: ${layeredId}\n`));
  assert.match(sections.at(-1) ?? '', /^Total reclaimed space: [\d.]+[kMG]?B\n$/);
  assert.deepEqual(lines(ok(await d.isula(['ps', '-aq', '--no-trunc']))), [up]);
  assert.deepEqual(lines(ok(await d.isula(['images', '--format', '{{.Repository}}']))), ['busybox'], 'busybox is in use');
  assert.equal(ok(await d.isula(['volume', 'ls', '-q'])), '');
  ok(await d.isula(['rm', '-f', 'up']));
  await assertNoTrace(d, done);
});

test('commit: the container\'s changes become an image (whiteouts, opaque dir, links, fifo, xattrs), with -c/-m/-a; the runtime\'s mount points stay out; bad input leaves nothing', async (t) => {
  const d = await daemon(t);
  ok(await d.isula(['load', '-i', path.join(IMAGES_DIR, 'layered.docker.tar')]));
  ok(await d.isula(['run', '--name', 'src', 'layered', 'sh', '-c',
    'echo hello > /greeting; rm /data/keep.txt; rm -rf /data/dir && mkdir /data/dir && echo z > /data/dir/z; ln /greeting /greeting2; ln -s /greeting /glink; mkfifo /fifo']));
  const id = ok(await d.isula(['commit', '-m', 'my message', '-a', 'Me <me@example.com>', '-c', 'CMD ["cat", "/greeting"]', '-c', 'ENV MODE=prod', '-c', 'LABEL stage=test', 'src', 'mine:1'])).trim();
  assert.match(id, /^sha256:[0-9a-f]{64}$/);
  assert.equal(ok(await d.isula(['run', '--rm', 'mine:1'])), 'hello\n', 'the new CMD runs');
  assert.equal(ok(await d.isula(['run', '--rm', 'mine:1', 'sh', '-c', 'echo $MODE; ls /data; ls /data/dir; cat /greeting2; readlink /glink; test -p /fifo && echo fifo; stat -c %h /greeting'])),
    'prod\ndir\nhard\nlink\nsuid\nz\nhello\n/greeting\nfifo\n2\n', 'keep.txt deleted, the opaque dir holds only z, the hard link is one file, the symlink and the fifo are there');
  const img = JSON.parse(ok(await d.isula(['inspect', '--type', 'image', 'mine:1']))) as [{ Id: string; Author: string; Config: { Labels: Record<string, string> }; RootFS: { Layers: string[] }; GraphDriver: { Data: { UpperDir: string } } }];
  assert.equal(img[0].Id, id);
  assert.equal(img[0].Author, 'Me <me@example.com>');
  assert.equal(img[0].Config.Labels['stage'], 'test');
  assert.equal(img[0].RootFS.Layers.length, 4, 'the three layers of layered and the new one');
  const top = await fs.readdir(img[0].GraphDriver.Data.UpperDir);
  for (const made of ['proc', 'sys', 'dev']) assert.ok(!top.includes(made), `the runtime's /${made} is not in the layer: ${top.join(' ')}`);
  assert.ok(!(await exists(path.join(img[0].GraphDriver.Data.UpperDir, 'etc/hosts'))), 'nor its /etc/hosts');
  assert.match(ok(await d.isula(['history', 'mine:1'])).split('\n')[1] ?? '', /^[0-9a-f]{12} +(Less than a second|\d+ seconds?) ago +sh -c echo hello > \/greeting.* +my message$/);

  // A running container is paused for the copy and runs on after it. Extended attributes set
  // from the host on its rootfs (a file capability, a user.* one) are in the new layer and work
  // in a container of the new image.
  ok(await d.isula(['run', '-d', '--name', 'live', 'busybox', 'sh', '-c', 'mkdir /cap && busybox cp /bin/busybox /cap/busybox; echo x > /x; sleep 100']));
  await waitFor(async () => (await d.isula(['exec', 'live', 'cat', '/x'])).stdout === 'x\n', { timeoutMs: 5000, what: 'the file to be written' });
  const liveRoot = (await inspect<Inspected>(d, 'live')).GraphDriver.Data?.MergedDir ?? '';
  await run('setcap', ['cap_chown+ep', path.join(liveRoot, 'cap/busybox')], { timeout: 10_000 });
  await run('setfattr', ['-n', 'user.origin', '-v', 'set from the host', path.join(liveRoot, 'x')], { timeout: 10_000 });
  ok(await d.isula(['commit', 'live', 'live:snap']));
  assert.equal((await inspect<Inspected>(d, 'live')).State.Status, 'running');
  assert.equal(ok(await d.isula(['run', '--rm', 'live:snap', 'cat', '/x'])), 'x\n');
  const snapLayer = (JSON.parse(ok(await d.isula(['inspect', '--type', 'image', 'live:snap']))) as [{ GraphDriver: { Data: { UpperDir: string } } }])[0].GraphDriver.Data.UpperDir;
  const attr = await run('getfattr', ['--only-values', '-n', 'user.origin', path.join(snapLayer, 'x')], { timeout: 10_000 }).then((r) => r.stdout, (err: unknown) => String(err));
  assert.equal(attr, 'set from the host', 'the user.* attribute is in the committed layer');
  // As a non-root user a plain binary gets no capability; the copy given cap_chown (bit 0) by setcap does.
  const capEff = (bin: string[]): Promise<string> => d.isula(['run', '--rm', '--user', '1000', 'live:snap', ...bin, 'grep', 'CapEff', '/proc/self/status']).then(ok);
  assert.equal(await capEff([]), 'CapEff:\t0000000000000000\n');
  assert.equal(await capEff(['/cap/busybox']), 'CapEff:\t0000000000000001\n', 'the file capability works in a container of the committed image');
  ok(await d.isula(['commit', '--pause=false', 'live']));

  // Nothing changed: no new layer, a history entry marked empty (0B), as docker's.
  ok(await d.isula(['create', '--name', 'untouched', 'busybox', 'true']));
  ok(await d.isula(['commit', 'untouched', 'same:1']));
  assert.equal((JSON.parse(ok(await d.isula(['inspect', '--type', 'image', 'same:1']))) as [{ RootFS: { Layers: string[] } }])[0].RootFS.Layers.length, 1);
  assert.match(ok(await d.isula(['history', '--format', '{{.Size}}', 'same:1'])), /^0B\n/);

  // A name that is not UTF-8 cannot be written into a tar header as it is: refused by name.
  ok(await d.isula(['run', '--name', 'latin1', 'busybox', 'sh', '-c', "touch \"/caf$(printf '\\351')\""]));
  const latin = await d.isula(['commit', 'latin1', 'latin:1']);
  assert.equal(latin.code, 1);
  assert.match(latin.stderr, /cannot commit \/caf.*: its name is not valid UTF-8/);
  assert.match(ok(await d.isula(['diff', 'latin1'])), /^A \/caf/m, 'diff still lists it');
  ok(await d.isula(['rm', 'untouched', 'latin1']));
  ok(await d.isula(['rmi', 'same:1']));

  // Bad input: a clear error, no image made.
  const before = ok(await d.isula(['images', '-q', '--no-trunc']));
  const bad = await d.isula(['commit', '-c', 'RUN echo no', 'src', 'bad:1']);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /RUN is not a valid change command/);
  const missing = await d.isula(['commit', 'nosuch']);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /No such container: nosuch/);
  const badRef = await d.isula(['commit', 'src', 'NotLower:1']);
  assert.equal(badRef.code, 1);
  // Docker's client refuses it before any request, in the reference parser's words.
  assert.equal(badRef.stderr, 'isula: invalid reference format: repository name must be lowercase\n');
  const digestRef = await d.isula(['commit', 'src', `mine@sha256:${'a'.repeat(64)}`]);
  assert.equal(digestRef.stderr, 'isula: refusing to create a tag with a digest reference\n');
  assert.equal(ok(await d.isula(['images', '-q', '--no-trunc'])), before, 'no image from a refused commit');
  ok(await d.isula(['rm', '-f', 'src', 'live']));
  ok(await d.isula(['rmi', 'mine:1', 'live:snap']));
});

test('ps filters as docker\'s: health, volume (name or destination), expose and publish (ports, ranges), network; bad values named', async (t) => {
  const d = await daemon(t);
  ok(await d.isula(['run', '-d', '--name', 'h1', '--health-cmd', 'true', '--health-interval', '1s', 'busybox', 'sleep', '100']));
  ok(await d.isula(['run', '-d', '--name', 'v1', '-v', 'data:/data', 'busybox', 'sleep', '100']));
  ok(await d.isula(['run', '-d', '--name', 'e1', '--expose', '8080', 'busybox', 'sleep', '100']));
  ok(await d.isula(['create', '--name', 'c1', '--expose', '8080', 'busybox', 'true']));
  await waitFor(async () => (await inspect<{ State: { Health?: { Status: string } } }>(d, 'h1')).State.Health?.Status === 'healthy', { timeoutMs: 10_000, what: 'h1 to be healthy' });
  const names = async (...filters: string[]) => lines(ok(await d.isula(['ps', '-a', '--format', '{{.Names}}', ...filters.flatMap((f) => ['--filter', f])]))).sort();
  assert.deepEqual(await names('health=healthy'), ['h1']);
  assert.deepEqual(await names('health=none'), ['c1', 'e1', 'v1']);
  assert.deepEqual(await names('volume=data'), ['v1']);
  assert.deepEqual(await names('volume=/data'), ['v1']);
  // The ports ps shows: a running container's (a created one shows none, as docker's).
  assert.deepEqual(await names('expose=8080'), ['e1']);
  assert.deepEqual(await names('expose=8000-8100/tcp'), ['e1']);
  assert.deepEqual(await names('expose=8080/udp'), []);
  assert.deepEqual(await names('publish=8080'), [], 'nothing is published without a network plugin');
  assert.deepEqual(await names('publish=8080', 'expose=8080'), ['e1'], 'either one matching keeps a container, as docker');
  assert.deepEqual(await names('network=bridge', 'health=none'), ['c1', 'e1', 'v1']);
  for (const [f, re] of [['health=bad', /invalid filter 'health=bad'/], ['publish=x', /invalid filter 'publish=x'/], ['expose=9-1', /invalid filter 'expose=9-1'/]] as const) {
    const r = await d.isula(['ps', '--filter', f]);
    assert.equal(r.code, 1, f);
    assert.match(r.stderr, re);
  }
  ok(await d.isula(['rm', '-f', 'h1', 'v1', 'e1', 'c1']));
});
