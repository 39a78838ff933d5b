import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { parseCli, UsageError } from '../src/cli.js';

test('the command line: runtime, plugins, plugin dirs (made absolute), suites, image, report, timeout', () => {
  const opts = parseCli(['--runtime', 'sandbox', '--plugin', '@isula/driver-runc', '--plugin', 'isula-driver-sandbox', '--plugin-dir', 'rel/dir', '--suite', 'lifecycle,tty', '--image', '/i/busybox.tar', '--report', 'out.json', '--timeout', '90']);
  assert.deepEqual(opts, {
    runtime: 'sandbox',
    plugins: ['@isula/driver-runc', 'isula-driver-sandbox'],
    pluginDirs: [path.resolve('rel/dir')],
    suites: ['lifecycle', 'tty'],
    busybox: '/i/busybox.tar',
    timeoutMs: 90_000,
    reportFile: path.resolve('out.json'),
  });
  assert.equal(parseCli(['--help']), 'help');
});

test('usage errors name the problem', () => {
  const cases: [string[], RegExp][] = [
    [['--plugin', 'x'], /--runtime NAME is required/],
    [['--runtime', 'r'], /--plugin PKG is required/],
    [['--runtime', 'r', '--plugin', 'x', '--suite', 'lifecycle,nope'], /unknown suite "nope" \(known: lifecycle, streams, tty, image, network\)/],
    [['--runtime', 'r', '--plugin', 'x', '--timeout', 'soon'], /--timeout must be a positive number/],
    [['--runtime', 'r', '--plugin', 'x', '--bogus'], /bogus/],
  ];
  for (const [argv, re] of cases) assert.throws(() => parseCli(argv), (err: unknown) => err instanceof UsageError && re.test(err.message), argv.join(' '));
});
