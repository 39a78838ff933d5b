/**
 * Fuzzing what CNI plugins answer (fast-check): results of every spec version
 * with fields of the wrong type or odd values, and raw plugin stdout (bad
 * JSON, error objects, huge or empty output) through the runner from a small
 * shell plugin. A plugin's answer is input like any other: the summary of a
 * result is made or refused with an IsulaError, the runner gives a result or
 * an IsulaError naming the plugin, never a TypeError. FUZZ_RUNS sets the size,
 * FUZZ_SEED replays.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import fc from 'fast-check';
import { isIsulaError } from '@isula/core';
import { CniRunner, parseConfList, summarizeResult } from '../src/index.js';
import { log } from './helpers.js';

const RUNS = Number(process.env['FUZZ_RUNS'] ?? 300);
const params = { numRuns: RUNS, ...(process.env['FUZZ_SEED'] === undefined ? {} : { seed: Number(process.env['FUZZ_SEED']) }) };
const odd = fc.oneof(fc.jsonValue({ maxDepth: 2 }), fc.constantFrom(null, [], {}, -1, 1e9, '', '10.1.0.5', '10.1.0.5/99', '::1/128', 'not-an-ip/24', [null], [{}], { interface: 99 }));

const result = fc.record({
  cniVersion: fc.oneof(fc.constantFrom('1.0.0', '0.4.0', '0.3.1', '0.2.0', '9.9.9', ''), odd),
  interfaces: fc.oneof(fc.array(fc.record({ name: fc.oneof(fc.constantFrom('eth0', 'veth1'), odd), mac: odd, sandbox: odd }, { requiredKeys: [] }), { maxLength: 3 }), odd),
  ips: fc.oneof(fc.array(fc.record({ interface: fc.oneof(fc.nat(4), odd), address: fc.oneof(fc.constantFrom('10.1.0.5/24', '10.1.0.5'), odd), gateway: odd, version: odd }, { requiredKeys: [] }), { maxLength: 3 }), odd),
  routes: fc.oneof(fc.array(fc.record({ dst: odd, gw: odd }, { requiredKeys: [] }), { maxLength: 3 }), odd),
  dns: fc.oneof(fc.record({ nameservers: odd, domain: odd, search: odd, options: odd }, { requiredKeys: [] }), odd),
  ip4: odd,
  ip6: odd,
}, { requiredKeys: [] });

test('summarizeResult: any result is summarized or refused with an IsulaError', () => {
  fc.assert(fc.property(fc.oneof(result, odd), fc.constantFrom('eth0', 'net1'), (r, ifName) => {
    try {
      const s = summarizeResult('n', r, ifName, undefined);
      assert.ok(Array.isArray(s.addresses), 'addresses is a list');
      for (const a of s.addresses) assert.equal(typeof a.address, 'string');
    } catch (err) {
      assert.ok(isIsulaError(err), `not an IsulaError: ${(err as Error)?.stack ?? String(err)}`);
    }
  }), params);
});

test('the runner: any plugin stdout and exit code gives a result or an IsulaError naming the plugin', async (t) => {
  const bin = fs.mkdtempSync(path.join(os.tmpdir(), 'isula-cni-fuzz-'));
  t.after(() => fs.rmSync(bin, { recursive: true, force: true }));
  const out = path.join(bin, 'out');
  // The fake plugin answers with whatever the property put in `out`, and the exit code in `code`.
  fs.writeFileSync(path.join(bin, 'fake-fuzz'), `#!/bin/sh\ncat >/dev/null\ncat ${out}\nexit $(cat ${bin}/code)\n`, { mode: 0o755 });
  const runner = new CniRunner({ binDirs: [bin], timeoutMs: 5000, log });
  const list = parseConfList({ cniVersion: '1.0.0', name: 'n', plugins: [{ type: 'fake-fuzz' }] });
  const stdout = fc.oneof(
    result.map((r) => JSON.stringify(r)),
    fc.record({ cniVersion: fc.constant('1.0.0'), code: odd, msg: odd, details: odd }, { requiredKeys: [] }).map((r) => JSON.stringify(r)),
    fc.string({ maxLength: 80 }),
    fc.constantFrom('', '{', 'null', '[]', '"x"', '{"cniVersion":"1.0.0"}', 'x'.repeat(100_000)),
  );
  await fc.assert(fc.asyncProperty(stdout, fc.constantFrom(0, 0, 1, 2, 255), async (text, code) => {
    fs.writeFileSync(out, text);
    fs.writeFileSync(path.join(bin, 'code'), String(code));
    try {
      const r = await runner.addNetworkList(list, { containerId: 'c1', netns: '', ifName: 'eth0' });
      assert.ok(r !== null && typeof r === 'object', 'a result is an object');
    } catch (err) {
      assert.ok(isIsulaError(err), `not an IsulaError: ${(err as Error)?.stack ?? String(err)}`);
      assert.match(err.message, /fake-fuzz/, 'the error names the plugin');
    }
  }), { ...params, numRuns: Math.max(20, Math.round(RUNS / 6)) }); // one plugin process per run
});
