/**
 * Permissions: the engine socket is 0660 root:<group>; a user outside the
 * group is refused (with docker's wording, not "is the daemon running?"), a
 * user in it is served (and is effectively root, as with docker: see the
 * core README). Registry credentials never reach the daemon's log, inspect
 * output or events. Path inputs that would escape are refused.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { ISULA, httpRequest } from '../lib/harness.js';
import { daemon, ok } from '../lib/containers.js';

const run = promisify(execFile);
const UID = 4242;

/** `isula ARGS` as uid 4242 with the given supplementary groups (none by default). */
async function isulaAs(host: string, groups: number[], args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const priv = ['--reuid', String(UID), '--regid', String(UID), ...(groups.length > 0 ? ['--groups', groups.join(',')] : ['--clear-groups']), '--'];
  try {
    const { stdout, stderr } = await run('setpriv', [...priv, process.execPath, ISULA, '-H', host, ...args], { timeout: 30_000, env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', HOME: '/nonexistent' } });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : 1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

test('the socket is 0660 root:group; outside the group refused in words, inside served', async (t) => {
  const group = `isulaperm${process.pid % 100000}`;
  await run('groupadd', ['-f', group]);
  t.after(() => run('groupdel', [group]).then(() => {}, () => {}));
  const gid = Number((await fs.readFile('/etc/group', 'utf8')).split('\n').find((l) => l.startsWith(`${group}:`))!.split(':')[2]);
  const d = await daemon(t, { group }, { loadBusybox: false });
  // The temporary root is 0700: let others reach the socket, so the socket's own mode decides.
  for (let dir = d.state; dir.length > 1 && dir !== '/tmp'; dir = path.dirname(dir)) await fs.chmod(dir, 0o711);

  const st = await fs.stat(d.socket);
  assert.equal(st.mode & 0o777, 0o660);
  assert.equal(st.uid, 0);
  assert.equal(st.gid, gid, 'the socket belongs to the configured group');

  const outside = await isulaAs(d.host, [], ['version']);
  assert.equal(outside.code, 1, outside.stdout);
  assert.match(outside.stderr, /permission denied while trying to connect to the iSulad daemon socket/, outside.stderr);
  const inside = await isulaAs(d.host, [gid], ['ps', '-a']);
  assert.equal(inside.code, 0, inside.stderr);
  assert.match(inside.stdout, /^CONTAINER ID/);
});

test('registry credentials never reach the log, inspect output or events', async (t) => {
  const d = await daemon(t, { 'log-level': 'debug' }, { loadBusybox: true });
  const secret = `s3cr3t-${process.pid}-pw`;
  const since = Math.floor(Date.now() / 1000) - 1;
  // A registry nobody answers on (loopback, closed port): the login fails, after the daemon saw it all.
  const login = await httpRequest(d.socket, 'POST', '/auth', JSON.stringify({ username: 'me', password: secret, serveraddress: '127.0.0.1:9' }), { 'content-type': 'application/json' });
  assert.ok(login.status >= 400, login.body);
  assert.doesNotMatch(login.body, new RegExp(secret));
  const auth = Buffer.from(JSON.stringify({ username: 'me', password: secret })).toString('base64url');
  const pull = await httpRequest(d.socket, 'POST', '/images/create?fromImage=127.0.0.1:9/x&tag=y', undefined, { 'X-Registry-Auth': auth });
  assert.doesNotMatch(pull.body, new RegExp(secret));
  ok(await d.isula(['create', '--name', 'cred', '-e', 'HARMLESS=1', 'busybox', 'true']));
  const inspect = ok(await d.isula(['inspect', 'cred']));
  const events = await httpRequest(d.socket, 'GET', `/events?since=${since}&until=${Math.floor(Date.now() / 1000) + 1}`);
  const log = await d.log();
  assert.ok(log.length > 0, 'the daemon log is written');
  for (const [where, text] of [['log', log], ['inspect', inspect], ['events', events.body], ['stderr', d.stderr]] as const) {
    assert.doesNotMatch(text, new RegExp(secret), `the password appears in the ${where}`);
    assert.doesNotMatch(text, new RegExp(auth), `the X-Registry-Auth header appears in the ${where}`);
  }
});

test('path inputs that would escape are refused with a message', async (t) => {
  const d = await daemon(t, {}, { loadBusybox: true });
  const relBind = await d.isula(['create', '-v', 'relative/dir:/x', 'busybox', 'true']);
  assert.notEqual(relBind.code, 0);
  assert.match(relBind.stderr, /relative|absolute|invalid/i, relBind.stderr);
  const hook = await d.isula(['create', '--hook-spec', 'relative.json', 'busybox', 'true']);
  assert.notEqual(hook.code, 0);
  assert.match(hook.stderr, /hook/i, hook.stderr);
  const ext = await d.isula(['create', '--external-rootfs', '../../etc', 'busybox', 'true']);
  assert.notEqual(ext.code, 0);
  assert.match(ext.stderr, /rootfs|absolute|path/i, ext.stderr);
  // cp resolves paths inside the container's root: ../.. cannot reach the host's files.
  ok(await d.isula(['create', '--name', 'cp', 'busybox', 'true']));
  const out = path.join(d.root, 'out');
  await fs.mkdir(out);
  ok(await d.isula(['cp', 'cp:/../../../etc/passwd', out]));
  const copied = await fs.readFile(path.join(out, 'passwd'), 'utf8');
  const host = await fs.readFile('/etc/passwd', 'utf8');
  assert.notEqual(copied, host, 'cp copied the host /etc/passwd');
  assert.match(copied, /^root:x:0:0:/, 'it copied the image\'s /etc/passwd');
});

test('a non-root user without capabilities runs: the container root is 0755 whatever the daemon umask', async (t) => {
  const d = await daemon(t, {}, { loadBusybox: true });
  const r = await d.isula(['run', '--rm', '--network', 'none', '-u', '65534', '--cap-drop', 'ALL', 'busybox', 'sh', '-c', 'stat -c %a /; id -u']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, '755\n65534\n');
});
