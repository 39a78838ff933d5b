/**
 * The daemon's own log rotates by size (daemon.json `log-opts` max-size and
 * max-file, iSulad's keys): isulad.log, isulad.log.1, ... never more files
 * nor bytes than configured, no line split between files; SIGHUP reopens
 * the file after logrotate moved it.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { httpRequest, newDaemon, waitFor } from '../lib/harness.js';

const MAX_SIZE = 8 * 1024;

test('the daemon log rotates at max-size, keeps max-file files, and SIGHUP reopens it', async (t) => {
  const d = await newDaemon(t);
  await d.writeConfig({ plugins: [], 'log-level': 'debug', 'log-opts': { 'max-size': '8k', 'max-file': '3' } });
  await d.start();
  const log = path.join(d.state, 'isulad.log');
  // Each request logs a debug line of ~200 bytes: 400 of them pass 3 × 8 KiB several times over.
  for (let i = 0; i < 400; i++) assert.equal((await httpRequest(d.socket, 'GET', '/_ping')).status, 200);

  const files = (await fs.readdir(d.state)).filter((f) => f.startsWith('isulad.log')).sort();
  assert.deepEqual(files, ['isulad.log', 'isulad.log.1', 'isulad.log.2']);
  for (const f of files) {
    const text = await fs.readFile(path.join(d.state, f), 'utf8');
    assert.ok(Buffer.byteLength(text) <= MAX_SIZE, `${f} is ${Buffer.byteLength(text)} bytes`);
    for (const line of text.split('\n').filter(Boolean)) JSON.parse(line); // whole lines only
  }
  const rotated = await fs.readFile(`${log}.1`, 'utf8');
  assert.ok(Buffer.byteLength(rotated) > MAX_SIZE / 2, 'a rotated file was filled before it rotated');
  // Oldest in .2, then .1, newest in isulad.log: pino's times never go back across them.
  const times = (text: string) => text.split('\n').filter(Boolean).map((l) => (JSON.parse(l) as { time: number }).time);
  const [t2, t1, t0] = [times(await fs.readFile(`${log}.2`, 'utf8')), times(rotated), times(await fs.readFile(log, 'utf8'))];
  assert.ok(Math.max(...t2) <= Math.min(...t1) && Math.max(...t1) <= Math.min(...t0), 'rotated files in order');

  // logrotate's way: move the file, then SIGHUP; the daemon writes a new isulad.log.
  await fs.rename(log, `${log}.moved`);
  assert.ok(d.proc?.kill('SIGHUP'));
  await waitFor(async () => (await fs.readFile(log, 'utf8').catch(() => '')).includes('"msg":"configuration reloaded"'), { timeoutMs: 10_000, what: 'a new isulad.log' });
  assert.doesNotMatch(await fs.readFile(`${log}.moved`, 'utf8'), /configuration reloaded/);
});

test('an invalid log-opts value stops the start naming the option', async (t) => {
  const d = await newDaemon(t);
  await d.writeConfig({ plugins: [], 'log-opts': { 'max-size': '1k' } });
  d.spawn();
  assert.equal((await d.exited()).code, 1);
  assert.match(d.stderr, /invalid value for "log-opts": "max-size": "1k" is below 4k/);
});
