/**
 * Fuzzing daemon.json (fast-check): any content either loads or is refused
 * with CONFIG_INVALID naming the file and, for a bad value, the key. Never
 * another kind of error (a crash of the daemon at start-up with a stack
 * trace instead of a message). FUZZ_RUNS sets the size, FUZZ_SEED replays.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import fc from 'fast-check';
import { defaultConfig, loadConfig, validateConfig } from '../src/config.js';
import { IsulaError } from '../src/errors.js';

const RUNS = Number(process.env['FUZZ_RUNS'] ?? 300);
const params = { numRuns: RUNS, ...(process.env['FUZZ_SEED'] === undefined ? {} : { seed: Number(process.env['FUZZ_SEED']) }) };
const KEYS = Object.keys(defaultConfig());

const odd = fc.oneof(
  fc.jsonValue({ maxDepth: 3 }),
  fc.constantFrom(-1, 0, 1.5, 2 ** 53, '', ' ', '../..', '/nonexistent', 'unix:///tmp/x.sock', '10s', '-1s', 'NaN', null, [], {}, [null], [''], { '': '' }, { package: 1 }, [{ package: '' }]),
  fc.array(fc.string({ maxLength: 12 }), { maxLength: 3 }),
);
const configObject = fc.dictionary(fc.oneof(fc.constantFrom(...KEYS), fc.string({ maxLength: 12 })), odd, { maxKeys: 6 });

function assertConfigError(err: unknown, mustName: string[]): void {
  assert.ok(err instanceof IsulaError, `not an IsulaError: ${(err as Error)?.stack ?? String(err)}`);
  assert.equal(err.code, 'CONFIG_INVALID', err.message);
  for (const n of mustName) assert.ok(err.message.includes(n), `message "${err.message}" does not name ${n}`);
}

test('daemon.json values: every object validates or is refused naming the key', () => {
  fc.assert(fc.property(configObject, (raw) => {
    try {
      const { config, unknownKeys } = validateConfig(raw, 'daemon.json');
      for (const k of unknownKeys) assert.ok(!KEYS.includes(k), `${k} is known but reported unknown`);
      assert.equal(typeof config.graph, 'string');
    } catch (err) {
      assertConfigError(err, ['daemon.json']);
      const named = Object.keys(raw).filter((k) => KEYS.includes(k) && (err as Error).message.includes(k));
      assert.ok(named.length > 0, `"${(err as Error).message}" names none of the keys ${Object.keys(raw).join(', ')}`);
    }
  }), params);
});

test('daemon.json files: any bytes load or are refused with CONFIG_INVALID naming the file', async (t) => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'isula-fuzz-config-'));
  t.after(() => fs.rm(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'daemon.json');
  const content = fc.oneof(
    fc.string({ maxLength: 80 }),
    fc.uint8Array({ maxLength: 80 }).map((b) => Buffer.from(b).toString('latin1')),
    configObject.map((o) => JSON.stringify(o)),
    configObject.map((o) => JSON.stringify(o).slice(0, -1)),
    fc.constantFrom('', '{', '[]', 'null', '"x"', '{"graph":', '// comment only\n', '{"graph":"/tmp/x",}', '\uFEFF{}'),
  );
  await fc.assert(fc.asyncProperty(content, async (text) => {
    await fs.writeFile(file, text, 'latin1');
    try {
      await loadConfig({ configFile: file });
    } catch (err) {
      assertConfigError(err, [file]);
    }
  }), { ...params, numRuns: Math.max(20, Math.round(RUNS / 3)) }); // each run is a file write and a cosmiconfig load
});

test('daemon.json keys named like Object.prototype members are unknown keys, not checks (found by the fuzzer)', () => {
  for (const key of ['valueOf', 'constructor', 'toString', 'hasOwnProperty', '__proto__']) {
    const raw = JSON.parse(`{"${key}": []}`) as Record<string, unknown>;
    const { unknownKeys } = validateConfig(raw, 'daemon.json');
    assert.deepEqual(unknownKeys, [key]);
  }
});
