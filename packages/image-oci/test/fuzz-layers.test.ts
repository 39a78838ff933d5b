/**
 * Fuzzing layer extraction (fast-check): layers made of random entries
 * (names with `..`, absolute paths, whiteouts; every entry type; links aimed
 * at each other, at `..` and at a canary directory beside the layer; PAX
 * overrides), then byte flips and truncation of the archive, gzip or not.
 * Whatever the input, extraction either succeeds with nothing written
 * outside the layer directory, or fails with an IsulaError and leaves no
 * trace at all. FUZZ_RUNS sets the size, FUZZ_SEED replays.
 *
 * No link target climbs above the sandbox's own directory, so even a broken
 * extractor could only write inside the sandbox (and `/pwned`, checked).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import zlib from 'node:zlib';
import fc from 'fast-check';
import { isIsulaError } from '@isula/core';
import { extractLayer } from '../src/extract.js';
import { tar, type TarEntry, type TarType } from './fixtures/tar-writer.js';

const RUNS = Number(process.env['FUZZ_RUNS'] ?? 150);
const params = { numRuns: RUNS, ...(process.env['FUZZ_SEED'] === undefined ? {} : { seed: Number(process.env['FUZZ_SEED']) }) };
const needsRoot = process.getuid?.() === 0 || process.env['CI'] === 'true' ? false : 'needs root (chown, mknod)';

/** Link targets naming the canary are placeholders, filled in per sandbox (see `place`). */
const CANARY = '@canary';

function entries() {
  const name = fc.oneof(
    fc.constantFrom('a', 'b', 'a/b', 'a/b/c', 'a/../b', './c', 'd/', 'd/e', 'l', 'l/x', 'l/secret', 'h', '../x', '../canary/secret', '/abs', '/pwned',
      '.wh.a', 'd/.wh.e', '.wh..wh..opq', 'd/.wh..wh..opq', 'a//b', 'a/./b', '.', '', 'dev/null', 'x'.repeat(120)),
    fc.stringMatching(/^[a-z./]{1,12}$/),
  );
  const linkname = fc.constantFrom('a', 'd', 'b', '.', '..', '../canary', CANARY, `${CANARY}/secret`, '', 'l', 'd/e', '/', 'nowhere');
  const type = fc.constantFrom<TarType>('0', '0', '0', '5', '5', '2', '2', '1', '3', '4', '6', '7', 'S', 'V', 'x', 'g', 'L', 'K', '\0');
  return fc.array(fc.record({
    name,
    type,
    data: fc.oneof(fc.constant(undefined), fc.uint8Array({ maxLength: 700 }).map((b) => Buffer.from(b))),
    mode: fc.oneof(fc.constant(undefined), fc.nat(0o7777)),
    uid: fc.oneof(fc.constant(undefined), fc.nat(70_000)),
    linkname: fc.oneof(fc.constant(undefined), linkname),
    devmajor: fc.oneof(fc.constant(undefined), fc.nat(300)),
    devminor: fc.oneof(fc.constant(undefined), fc.nat(300)),
    pax: fc.oneof(fc.constant(undefined), fc.record({ path: name }, { requiredKeys: [] }), fc.record({ linkpath: linkname }, { requiredKeys: [] })),
  }, { requiredKeys: ['name'] }).map((e) => {
    // Drop undefined members: the writer treats a present key as set.
    const out = Object.fromEntries(Object.entries(e).filter(([, v]) => v !== undefined)) as unknown as TarEntry;
    // Only regular files carry data; a wrong size in a header is what the byte flips are for.
    if (out.type !== undefined && out.type !== '0' && out.type !== '\0') delete out.data;
    return out;
  }), { minLength: 1, maxLength: 8 });
}

const mutation = fc.record({
  // Mostly intact archives, so the entries themselves get exercised; some damaged ones.
  flips: fc.oneof({ weight: 3, arbitrary: fc.constant([] as [number, number][]) }, { weight: 1, arbitrary: fc.array(fc.tuple(fc.nat(), fc.nat(255)), { minLength: 1, maxLength: 3 }) }),
  truncateAt: fc.oneof({ weight: 4, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: fc.nat() }),
  gzip: fc.boolean(),
});

function mutate(bytes: Buffer, m: { flips: [number, number][]; truncateAt: number | undefined; gzip: boolean }): Buffer {
  let b: Buffer = Buffer.from(bytes);
  for (const [at, v] of m.flips) if (b.length > 0) b[at % b.length] = v;
  if (m.truncateAt !== undefined && b.length > 0) b = b.subarray(0, m.truncateAt % b.length);
  return m.gzip ? zlib.gzipSync(b) : b;
}

async function walk(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await fs.readdir(dir, { withFileTypes: true }).catch(() => [])) {
    const p = path.join(dir, e.name);
    out.push(p);
    if (e.isDirectory()) out.push(...(await walk(p)));
  }
  return out;
}

test('any layer extracts inside its directory or fails with an IsulaError leaving no trace', { skip: needsRoot, timeout: 600_000 }, async (t) => {
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'isula-fuzz-layer-'));
  t.after(() => fs.rm(root, { recursive: true, force: true }));
  let ok = 0;
  const codes = new Map<string, number>();
  let run = 0;
  const sandboxCanary = (sb: string) => path.join(sb, 'canary');

  await fc.assert(fc.asyncProperty(entries(), mutation, async (generated, m) => {
    const sb = path.join(root, `s${++run}`);
    const canary = sandboxCanary(sb);
    await fs.mkdir(canary, { recursive: true });
    await fs.writeFile(path.join(canary, 'secret'), 'untouched');
    const place = (v: string) => v.replace(CANARY, canary);
    const list = generated.map((e) => ({
      ...e,
      ...(e.linkname !== undefined && { linkname: place(e.linkname) }),
      ...(e.pax?.['linkpath'] !== undefined && { pax: { linkpath: place(String(e.pax['linkpath'])) } }),
    }));
    const layer = mutate(tar(list), m);
    const dest = path.join(sb, 'layer');
    try {
      await extractLayer(Readable.from([layer]), dest, {});
      ok++;
      // Inside the sandbox only the layer and the canary: nothing landed beside them.
      assert.deepEqual((await fs.readdir(sb)).sort(), ['canary', 'layer']);
    } catch (err) {
      assert.ok(isIsulaError(err), `not an IsulaError: ${(err as Error)?.stack ?? String(err)}`);
      codes.set(err.code, (codes.get(err.code) ?? 0) + 1);
      assert.notEqual(err.code, 'INTERNAL', `bad layer input reported as an internal error: ${err.message}`);
      assert.deepEqual(await fs.readdir(sb), ['canary'], `a failed extraction (${err.code}: ${err.message}) left something`);
    }
    assert.deepEqual(await fs.readdir(canary), ['secret'], 'the canary directory was written into');
    assert.equal(await fs.readFile(path.join(canary, 'secret'), 'utf8'), 'untouched');
    await assert.rejects(fs.lstat('/pwned'), { code: 'ENOENT' }, '/pwned was created');
    for (const p of await walk(dest)) assert.ok(p.startsWith(`${dest}/`), p);
    await fs.rm(sb, { recursive: true, force: true });
  }), params);
  t.diagnostic(`layers: ${RUNS} runs, ${ok} extracted, rejected by code ${JSON.stringify(Object.fromEntries(codes))}`);
});
