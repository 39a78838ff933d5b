/**
 * Fuzzing `load` (fast-check): docker-archives mutated member by member —
 * manifest.json and the image config replaced by random JSON or by the real
 * ones with odd values (paths out of the archive, wrong digests, odd tags),
 * members dropped, the layer truncated or flipped, the whole archive cut
 * short — posted to a real isulad. Every load is a 200 with a usable image
 * or a 4xx naming the problem; after each, every listed image inspects, no
 * staging file is left, and at the end, with every image removed, no layer
 * is left either (nothing half-loaded). FUZZ_RUNS sets the size, FUZZ_SEED
 * replays.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import fc from 'fast-check';
import { httpRequest, tempRoot } from '../lib/harness.js';
import { IMAGES_DIR, daemon } from '../lib/containers.js';

const run = promisify(execFile);
const RUNS = Number(process.env['FUZZ_RUNS'] ?? 40);
const params = { numRuns: RUNS, ...(process.env['FUZZ_SEED'] === undefined ? {} : { seed: Number(process.env['FUZZ_SEED']) }), interruptAfterTimeLimit: 240_000 };

interface Member { name: string; data: Buffer; link?: string }
interface ManifestEntry { Config: string; RepoTags: unknown; Layers: unknown }

const oddString = fc.constantFrom('', '../../etc/passwd', '/etc/passwd', 'nosuch.json', 'UPPER:tag', 'a:b:c', 'x'.repeat(300), 'busybox:', ':tag', 'sha256:00', 'fuzz/ok:1', 'fuzz:1');
const oddJson = fc.oneof(fc.jsonValue({ maxDepth: 3 }), oddString, fc.constantFrom(null, [], {}, 5, [null], ['fuzz:1', 'fuzz:1']));

/** A change to the archive, applied to its members (or, for `cut`, to its bytes). */
const mutation = fc.oneof(
  fc.record({ kind: fc.constant('manifest-raw' as const), value: oddJson }),
  fc.record({ kind: fc.constant('manifest-field' as const), field: fc.constantFrom('Config', 'RepoTags', 'Layers'), value: oddJson }),
  fc.record({ kind: fc.constant('config-raw' as const), value: oddJson }),
  fc.record({ kind: fc.constant('config-field' as const), field: fc.constantFrom('rootfs', 'config', 'architecture', 'os', 'history'), value: oddJson }),
  fc.record({ kind: fc.constant('diff-ids' as const), value: fc.constantFrom([], ['sha256:' + '0'.repeat(64)], ['nope'], null, 'sha256:x') }),
  fc.record({ kind: fc.constant('drop' as const), which: fc.constantFrom('manifest', 'config', 'layer') }),
  fc.record({ kind: fc.constant('layer-bytes' as const), at: fc.nat(), byte: fc.nat(255), truncate: fc.boolean() }),
  fc.record({ kind: fc.constant('cut' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('intact' as const) }),
);
type Mutation = typeof mutation extends fc.Arbitrary<infer T> ? T : never;

test('load of mutated archives: a usable image or a 4xx, and nothing half-loaded', { timeout: 900_000 }, async (t) => {
  const d = await daemon(t, {}, { loadBusybox: false });
  const work = await tempRoot('isula-fuzz-archive-');
  t.after(() => fs.rm(work, { recursive: true, force: true }));
  const src = path.join(work, 'src');
  await fs.mkdir(src);
  await run('tar', ['-xf', path.join(IMAGES_DIR, 'busybox.docker.tar'), '-C', src]);
  const manifest = JSON.parse(await fs.readFile(path.join(src, 'manifest.json'), 'utf8')) as ManifestEntry[];
  const entry = manifest[0]!;
  const layerFile = (entry.Layers as string[])[0]!;
  const storage = path.join(d.graph, 'storage');
  let loaded = 0;
  const refused = new Map<number, number>();
  let n = 0;

  await fc.assert(fc.asyncProperty(mutation, async (m: Mutation) => {
    const dir = path.join(work, `m${++n}`);
    await run('cp', ['-a', src, dir]);
    const archive = await build(dir, m, entry, layerFile);
    const r = await httpRequest(d.socket, 'POST', '/images/load?quiet=1', archive, { 'content-type': 'application/x-tar' });
    await fs.rm(dir, { recursive: true, force: true });
    const what = `load with ${JSON.stringify(m).slice(0, 300)}`;
    assert.ok(r.status === 200 || (r.status >= 400 && r.status < 500), `${what}: status ${r.status}: ${r.body.slice(0, 300)}`);
    if (r.status === 200) {
      loaded++;
      assert.match(r.body, /Loaded image/, `${what}: ${r.body}`);
    } else {
      refused.set(r.status, (refused.get(r.status) ?? 0) + 1);
      const msg = (JSON.parse(r.body) as { message?: string }).message;
      assert.ok(typeof msg === 'string' && msg.length > 0, `${what}: no message`);
    }
    // Every image listed is whole, and nothing is left in staging.
    const list = JSON.parse((await httpRequest(d.socket, 'GET', '/images/json')).body) as { Id: string }[];
    for (const img of list) {
      const ins = await httpRequest(d.socket, 'GET', `/images/${img.Id}/json`);
      assert.equal(ins.status, 200, `${what}: listed image ${img.Id} does not inspect: ${ins.body}`);
    }
    assert.deepEqual(await fs.readdir(path.join(storage, 'tmp')).catch(() => []), [], `${what}: staging left behind`);
  }), {
    ...params,
    // Regressions the fuzzer found, replayed on every run.
    examples: [
      [{ kind: 'manifest-field', field: 'Config', value: '' }], // read the archive's root as the config: EISDIR, a 500
      [{ kind: 'manifest-field', field: 'Layers', value: ['.'] }],
    ],
  });

  // Remove every image: then no layer may remain (a layer without an image is a half load).
  const list = JSON.parse((await httpRequest(d.socket, 'GET', '/images/json')).body) as { Id: string }[];
  for (const img of list) {
    const rm = await httpRequest(d.socket, 'DELETE', `/images/${img.Id}?force=1`);
    assert.equal(rm.status, 200, rm.body);
  }
  assert.deepEqual(await fs.readdir(path.join(storage, 'layers')).catch(() => []), [], 'layers left without an image');
  assert.equal(d.proc?.exitCode, null, 'isulad is still running');
  t.diagnostic(`archives: ${RUNS} runs, ${loaded} loaded, refused by status ${JSON.stringify(Object.fromEntries(refused))}`);
});

async function build(dir: string, m: Mutation, entry: ManifestEntry, layerFile: string): Promise<Buffer> {
  const manifestPath = path.join(dir, 'manifest.json');
  const configPath = path.join(dir, entry.Config);
  const layerPath = path.join(dir, layerFile);
  const readJson = async (p: string) => JSON.parse(await fs.readFile(p, 'utf8')) as Record<string, unknown>;
  switch (m.kind) {
    case 'manifest-raw': await fs.writeFile(manifestPath, JSON.stringify(m.value)); break;
    case 'manifest-field': {
      const man = JSON.parse(await fs.readFile(manifestPath, 'utf8')) as Record<string, unknown>[];
      man[0]![m.field] = m.value;
      await fs.writeFile(manifestPath, JSON.stringify(man));
      break;
    }
    case 'config-raw': await writeOver(configPath, JSON.stringify(m.value)); break;
    case 'config-field': {
      const cfg = await readJson(configPath);
      cfg[m.field] = m.value;
      await writeOver(configPath, JSON.stringify(cfg));
      break;
    }
    case 'diff-ids': {
      const cfg = await readJson(configPath);
      cfg['rootfs'] = { type: 'layers', diff_ids: m.value };
      await writeOver(configPath, JSON.stringify(cfg));
      break;
    }
    case 'drop': await fs.rm({ manifest: manifestPath, config: configPath, layer: await fs.realpath(layerPath) }[m.which], { force: true }); break;
    case 'layer-bytes': {
      const real = await fs.realpath(layerPath);
      const b = Buffer.from(await fs.readFile(real));
      b[m.at % b.length] = m.byte;
      await writeOver(real, m.truncate ? b.subarray(0, m.at % b.length) : b);
      break;
    }
    case 'cut':
    case 'intact':
      break;
  }
  const { stdout } = await run('tar', ['-C', dir, '-cf', '-', '.'], { encoding: 'buffer', maxBuffer: 64 << 20 });
  return m.kind === 'cut' ? stdout.subarray(0, m.at % stdout.length) : stdout;
}

/** The archive's files are read-only (0444): replace rather than write in place. */
async function writeOver(file: string, data: string | Buffer): Promise<void> {
  await fs.rm(file, { force: true });
  await fs.writeFile(file, data);
}
