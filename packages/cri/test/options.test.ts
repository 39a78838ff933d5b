/** Plugin options, the offline pause image's tar, CRI time stamps and label selectors. */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { isIsulaError } from '@isula/core';
import { matchesSelector } from '../src/labels.js';
import { DEFAULT_SOCKET, parseCriOptions } from '../src/options.js';
import { ustar } from '../src/pause-image.js';
import { isoToNanos } from '../src/time.js';

test('options: defaults, overrides, and clear refusals', () => {
  assert.deepEqual(parseCriOptions(undefined), { socket: DEFAULT_SOCKET, catatonit: '/usr/bin/catatonit', execSyncMaxOutputBytes: 16 * 1024 * 1024, streamAddress: '127.0.0.1:0', streamIdleTimeoutMs: 4 * 3_600_000, streamTls: false });
  assert.equal(parseCriOptions({ streamIdleTimeout: '30s' }).streamIdleTimeoutMs, 30_000);
  assert.equal(parseCriOptions({ streamIdleTimeout: '0' }).streamIdleTimeoutMs, 0, '0: never');
  assert.equal(parseCriOptions({ streamAddress: '[::1]:10010' }).streamAddress, '[::1]:10010');
  assert.equal(parseCriOptions({ socket: '/tmp/x/cri.sock', sandboxImage: 'pause:1' }).sandboxImage, 'pause:1');
  assert.equal(parseCriOptions({ streamTls: true }).streamTls, true, 'TLS without files: a self-signed certificate');
  const pair = parseCriOptions({ streamTls: true, streamTlsCert: '/etc/isulad/stream.crt', streamTlsKey: '/etc/isulad/stream.key' });
  assert.deepEqual([pair.streamTls, pair.streamTlsCert, pair.streamTlsKey], [true, '/etc/isulad/stream.crt', '/etc/isulad/stream.key']);
  // TLS config that cannot be what was meant: refused, naming the option.
  for (const [bad, names] of [
    [{ streamTls: 'yes' }, /"streamTls" must be true or false/],
    [{ streamTls: true, streamTlsCert: '/a.crt' }, /"streamTlsCert" is set, the other is not/],
    [{ streamTls: true, streamTlsKey: '/a.key' }, /"streamTlsKey" is set, the other is not/],
    [{ streamTlsCert: '/a.crt', streamTlsKey: '/a.key' }, /need "streamTls": true/],
    [{ streamTls: false, streamTlsCert: '/a.crt', streamTlsKey: '/a.key' }, /need "streamTls": true/],
    [{ streamTls: true, streamTlsCert: 'a.crt', streamTlsKey: '/a.key' }, /"streamTlsCert" must be an absolute path/],
    [{ streamTls: true, streamTlsCert: '/a.crt', streamTlsKey: 5 }, /"streamTlsKey" must be an absolute path/],
  ] as const) {
    assert.throws(() => parseCriOptions(bad), (e: unknown) => isIsulaError(e, 'PLUGIN_OPTIONS_INVALID') && names.test(e.message), JSON.stringify(bad));
  }
  for (const bad of [{ socket: 'rel.sock' }, { socket: `/${'a'.repeat(120)}` }, { nope: 1 }, { execSyncMaxOutputBytes: 0 }, { sandboxImage: '' }, { streamAddress: 'nope:99999' }, { streamAddress: 7 }, { streamIdleTimeout: 'forever' }, { streamIdleTimeout: 30 }, []]) {
    assert.throws(() => parseCriOptions(bad), (e: unknown) => isIsulaError(e, 'PLUGIN_OPTIONS_INVALID'), JSON.stringify(bad));
  }
});

test('the pause image layer is a ustar archive tar reads back, modes and contents intact', async (t) => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'isula-cri-tar-'));
  t.after(() => fs.rm(dir, { recursive: true, force: true }));
  const data = Buffer.alloc(1300, 7);
  await fs.writeFile(path.join(dir, 'l.tar'), ustar([{ name: 'dev', mode: 0o755 }, { name: 'pause', mode: 0o755, data }]));
  const listing = execFileSync('tar', ['-tvf', path.join(dir, 'l.tar')], { encoding: 'utf8' });
  assert.match(listing, /^drwxr-xr-x .* dev\/$/m);
  assert.match(listing, /^-rwxr-xr-x .* 1300 .* pause$/m);
  execFileSync('tar', ['-xf', path.join(dir, 'l.tar'), '-C', dir]);
  assert.deepEqual(await fs.readFile(path.join(dir, 'pause')), data);
});

test('timestamps are int64 nanoseconds as strings; the zero time is 0', () => {
  assert.equal(isoToNanos('0001-01-01T00:00:00Z'), '0');
  assert.equal(isoToNanos(''), '0');
  assert.equal(isoToNanos('2026-12-02T09:00:00.123Z'), (BigInt(Date.parse('2026-12-02T09:00:00.123Z')) * 1_000_000n).toString());
  assert.equal(isoToNanos('2026-12-02T09:00:00.123456789Z'), (BigInt(Date.parse('2026-12-02T09:00:00.123Z')) * 1_000_000n + 456_789n).toString());
});

test('label selectors: every key must match', () => {
  assert.ok(matchesSelector({ a: '1', b: '2' }, { a: '1' }));
  assert.ok(matchesSelector({ a: '1' }, undefined));
  assert.ok(!matchesSelector({ a: '1' }, { a: '2' }));
  assert.ok(!matchesSelector({}, { a: '1' }));
});
