/**
 * systemd socket activation (contrib/systemd/isulad.socket): `-H fd://`
 * serves the listening socket systemd passes (sd_listen_fds: LISTEN_FDS,
 * LISTEN_PID, fd 3). systemd-socket-activate (from the systemd package)
 * plays systemd's part: it listens, and execs isulad on the first connection.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { ISULA, ISULAD, newDaemon, runNode } from '../lib/harness.js';

const ACTIVATE = '/usr/bin/systemd-socket-activate';
const hasActivate = await fs.access(ACTIVATE).then(() => true, () => false);
if (!hasActivate && process.env['CI'] === 'true') throw new Error(`${ACTIVATE} is missing (Debian package systemd)`);
const skip = hasActivate ? false : `${ACTIVATE} is missing (Debian package systemd)`;

test('-H fd:// serves the socket systemd passes, started on the first connection', { skip }, async (t) => {
  const d = await newDaemon(t);
  await d.writeConfig({ plugins: [] });
  const sock = path.join(d.root, 'activated.sock');
  const proc = spawn(ACTIVATE, ['-l', sock, process.execPath, ISULAD, '--config-file', d.configFile, '--state', d.state, '--graph', d.graph, '-H', 'fd://'], { stdio: ['ignore', 'ignore', 'pipe'] });
  // The activator execs isulad in its own process: stopping this pid stops the daemon (newDaemon's teardown).
  d.proc = proc;
  proc.stderr?.on('data', (c: Buffer) => { d.stderr += c.toString('utf8'); });
  d.exit = new Promise((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal })));

  const deadline = Date.now() + 10_000;
  while (!(await fs.stat(sock).then((s) => s.isSocket(), () => false))) {
    assert.ok(Date.now() < deadline, `the activator did not listen: ${d.stderr}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.equal(await fs.access(path.join(d.state, 'isulad.pid')).then(() => true, () => false), false, 'isulad waits for the first connection');

  const version = await runNode(ISULA, ['-H', `unix://${sock}`, 'version']);
  assert.equal(version.code, 0, version.stderr + d.stderr);
  assert.match(version.stdout, /^Server:/m);
  const info = await runNode(ISULA, ['-H', `unix://${sock}`, 'info', '--format', 'json']);
  assert.equal(info.code, 0, info.stderr);
  assert.deepEqual((JSON.parse(info.stdout) as { Hosts: string[] }).Hosts, ['fd://']);
  assert.match(await d.log(), /"socket":"fd:\/\/3".*"msg":"engine API listening"/);

  assert.equal((await d.stop())?.code, 0);
  assert.ok((await fs.stat(sock)).isSocket(), "the socket is the socket unit's: isulad leaves it in place");
});

test('-H fd:// without sockets from systemd stops the start with a clear error', async (t) => {
  const d = await newDaemon(t);
  await d.writeConfig({ plugins: [] });
  d.spawn(['-H', 'fd://']);
  assert.equal((await d.exited()).code, 1);
  assert.match(d.stderr, /host fd:\/\/ needs the sockets of a systemd socket unit/);
});
