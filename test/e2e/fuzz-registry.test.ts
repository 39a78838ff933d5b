/**
 * Fuzzing registry replies (fast-check): a fake registry on 127.0.0.1 serves
 * the offline busybox image whose manifest and config are replaced by random
 * JSON or given odd values (schema versions, media types, sizes, digests,
 * layer lists, diff ids, config fields), with true or wrong
 * Docker-Content-Digest headers. A real isulad pulls each one. Every pull
 * either gives a usable image or fails with a message in words (never an
 * internal error or a JavaScript one); after each, every listed image
 * inspects and staging is empty; at the end, with every image removed, no
 * layer is left. FUZZ_RUNS sets the size, FUZZ_SEED replays.
 *
 * A fake on purpose (STYLE.md's fake-* rule): a real registry never serves
 * these replies. Real-registry behaviour is tested in registry.test.ts.
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { test } from 'node:test';
import fc from 'fast-check';
import { httpRequest } from '../lib/harness.js';
import { IMAGES_DIR, daemon } from '../lib/containers.js';

const RUNS = Number(process.env['FUZZ_RUNS'] ?? 40);
const params = { numRuns: RUNS, ...(process.env['FUZZ_SEED'] === undefined ? {} : { seed: Number(process.env['FUZZ_SEED']) }), interruptAfterTimeLimit: 240_000 };
const sha256 = (b: Buffer | string): string => `sha256:${crypto.createHash('sha256').update(b).digest('hex')}`;
const INTERNAL = /TypeError|ReferenceError|RangeError|is not a function|Cannot read propert|is not iterable|Maximum call stack|"code":"INTERNAL"/;

interface Reply { manifest: Buffer; mediaType: string; digestHeader: 'true' | 'wrong' | 'none'; config: Buffer }

const odd = fc.oneof(fc.jsonValue({ maxDepth: 2 }), fc.constantFrom(null, [], {}, -1, 0, 1.5, 2 ** 60, '', 'sha256:', 'sha256:' + 'z'.repeat(64), 'md5:00', '../../x', 'application/vnd.oci.image.layer.v1.tar+zstd'));

test('pulls of fuzzed registry replies: a usable image or a failure in words, nothing half-pulled', { timeout: 900_000 }, async (t) => {
  // The offline busybox image, as OCI layout blobs.
  const layout = path.join(IMAGES_DIR, 'oci');
  const blob = (digest: string) => fs.readFile(path.join(layout, 'blobs', 'sha256', digest.slice('sha256:'.length)));
  const index = JSON.parse(await fs.readFile(path.join(layout, 'index.json'), 'utf8')) as { manifests: { digest: string; annotations?: Record<string, string> }[] };
  const desc = index.manifests.find((m) => m.annotations?.['org.opencontainers.image.ref.name'] === 'busybox')!;
  const manifest = JSON.parse((await blob(desc.digest)).toString('utf8')) as { config: { digest: string; size: number; mediaType: string }; layers: { digest: string; size: number; mediaType: string }[] };
  const configBytes = await blob(manifest.config.digest);
  const blobs = new Map<string, Buffer>();
  for (const l of manifest.layers) blobs.set(l.digest, await blob(l.digest));

  let current: Reply | undefined;
  const server = http.createServer((req, res) => {
    const url = req.url ?? '';
    const send = (status: number, body: Buffer, headers: Record<string, string> = {}) => {
      res.writeHead(status, { 'Content-Length': String(body.length), ...headers });
      res.end(req.method === 'HEAD' ? undefined : body);
    };
    if (url === '/v2/') return send(200, Buffer.from('{}'), { 'Content-Type': 'application/json' });
    const m = /^\/v2\/fz\/(manifests|blobs)\/(.+)$/.exec(url);
    if (m === null || current === undefined) return send(404, Buffer.from('{"errors":[{"code":"NAME_UNKNOWN"}]}'));
    if (m[1] === 'manifests') {
      const headers: Record<string, string> = { 'Content-Type': current.mediaType };
      if (current.digestHeader === 'true') headers['Docker-Content-Digest'] = sha256(current.manifest);
      if (current.digestHeader === 'wrong') headers['Docker-Content-Digest'] = sha256('not it');
      return send(200, current.manifest, headers);
    }
    const digest = decodeURIComponent(m[2]!);
    const body = digest === sha256(current.config) ? current.config : blobs.get(digest);
    if (body === undefined) return send(404, Buffer.from('{"errors":[{"code":"BLOB_UNKNOWN"}]}'));
    return send(200, body, { 'Content-Type': 'application/octet-stream', 'Docker-Content-Digest': digest });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }));
  const host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  // Seconds, not the default 30: a stall is not what this fuzzes.
  const d = await daemon(t, { 'registry-stall-timeout': '3s' }, { loadBusybox: false });
  const storage = path.join(d.graph, 'storage');

  const configMutation = fc.oneof(
    { weight: 3, arbitrary: fc.constant((c: Record<string, unknown>) => c) },
    { weight: 1, arbitrary: odd.map((v) => () => v) },
    { weight: 2, arbitrary: fc.tuple(fc.constantFrom('rootfs', 'config', 'history', 'architecture', 'os', 'created'), odd).map(([k, v]) => (c: Record<string, unknown>) => ({ ...c, [k]: v })) },
    { weight: 2, arbitrary: fc.tuple(fc.constantFrom('Env', 'Cmd', 'Entrypoint', 'WorkingDir', 'User', 'Labels', 'ExposedPorts', 'Volumes', 'Healthcheck', 'StopSignal'), odd)
      .map(([k, v]) => (c: Record<string, unknown>) => ({ ...c, config: { ...(c['config'] as object), [k]: v } })) },
    { weight: 1, arbitrary: odd.map((v) => (c: Record<string, unknown>) => ({ ...c, rootfs: { type: 'layers', diff_ids: v } })) },
  );
  const manifestMutation = fc.oneof(
    { weight: 3, arbitrary: fc.constant((m: Record<string, unknown>) => m) },
    { weight: 1, arbitrary: odd.map((v) => () => v) },
    { weight: 3, arbitrary: fc.tuple(fc.constantFrom('schemaVersion', 'mediaType', 'config', 'layers', 'manifests'), odd).map(([k, v]) => (m: Record<string, unknown>) => ({ ...m, [k]: v })) },
    { weight: 2, arbitrary: fc.tuple(fc.constantFrom('digest', 'size', 'mediaType', 'urls'), odd).map(([k, v]) => (m: Record<string, unknown>) => ({ ...m, config: { ...(m['config'] as object), [k]: v } })) },
    { weight: 2, arbitrary: fc.tuple(fc.constantFrom('digest', 'size', 'mediaType', 'urls'), odd).map(([k, v]) => (m: Record<string, unknown>) => ({ ...m, layers: (m['layers'] as object[]).map((l) => ({ ...l, [k]: v })) })) },
    { weight: 1, arbitrary: fc.constant((m: Record<string, unknown>) => ({ ...m, layers: [...(m['layers'] as object[]), ...(m['layers'] as object[])] })) },
  );
  const mediaType = fc.constantFrom('application/vnd.oci.image.manifest.v1+json', 'application/vnd.oci.image.manifest.v1+json', 'application/vnd.docker.distribution.manifest.v2+json', 'application/vnd.docker.distribution.manifest.v2+json', 'application/vnd.oci.image.index.v1+json', 'application/vnd.docker.distribution.manifest.list.v2+json', 'application/vnd.docker.distribution.manifest.v1+prettyjws', 'text/html', '');
  const digestHeader = fc.constantFrom<'true' | 'wrong' | 'none'>('true', 'true', 'none', 'wrong');

  let pulled = 0;
  let refused = 0;
  let n = 0;
  await fc.assert(fc.asyncProperty(configMutation, manifestMutation, mediaType, digestHeader, async (cm, mm, mt, dh) => {
    const config = Buffer.from(JSON.stringify(cm(JSON.parse(configBytes.toString('utf8')) as Record<string, unknown>)) ?? 'null');
    const base = { ...manifest, schemaVersion: 2, mediaType: mt, config: { ...manifest.config, digest: sha256(config), size: config.length } } as Record<string, unknown>;
    current = { manifest: Buffer.from(JSON.stringify(mm(base)) ?? 'null'), mediaType: mt, digestHeader: dh, config };
    const tag = `t${++n}`;
    const r = await httpRequest(d.socket, 'POST', `/images/create?fromImage=${encodeURIComponent(`${host}/fz`)}&tag=${tag}`);
    const what = `pull of manifest ${current.manifest.toString('utf8').slice(0, 200)} (${mt}, digest header ${dh}), config ${config.toString('utf8').slice(0, 200)}`;
    assert.doesNotMatch(r.body, INTERNAL, `${what}: an internal error: ${r.body.slice(0, 400)}`);
    let error: string | undefined;
    if (r.status !== 200) {
      assert.ok(r.status >= 400 && r.status !== 500, `${what}: status ${r.status}: ${r.body.slice(0, 300)}`);
      error = (JSON.parse(r.body) as { message?: string }).message;
      assert.ok(typeof error === 'string' && error.length > 0, `${what}: no message`);
    } else {
      const failed = r.body.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { error?: string }).find((m) => m.error !== undefined);
      error = failed?.error;
    }
    if (error === undefined) {
      pulled++;
      const ins = await httpRequest(d.socket, 'GET', `/images/${encodeURIComponent(`${host}/fz:${tag}`)}/json`);
      assert.equal(ins.status, 200, `${what}: pulled but does not inspect: ${ins.body}`);
    } else {
      refused++;
    }
    const list = JSON.parse((await httpRequest(d.socket, 'GET', '/images/json')).body) as { Id: string }[];
    for (const img of list) assert.equal((await httpRequest(d.socket, 'GET', `/images/${img.Id}/json`)).status, 200, `${what}: a listed image does not inspect`);
    assert.deepEqual(await fs.readdir(path.join(storage, 'tmp')).catch(() => []), [], `${what}: staging left behind`);
  }), {
    ...params,
    // Regressions the fuzzer found, replayed on every run.
    examples: [
      // No layers in the manifest nor in the config: the image was saved, then failed to inspect.
      [(c: Record<string, unknown>) => ({ ...c, rootfs: { type: 'layers', diff_ids: [] } }), (m: Record<string, unknown>) => ({ ...m, layers: [] }), 'application/vnd.oci.image.manifest.v1+json', 'true'],
    ],
  });

  const list = JSON.parse((await httpRequest(d.socket, 'GET', '/images/json')).body) as { Id: string }[];
  for (const img of list) assert.equal((await httpRequest(d.socket, 'DELETE', `/images/${img.Id}?force=1`)).status, 200);
  assert.deepEqual(await fs.readdir(path.join(storage, 'layers')).catch(() => []), [], 'layers left without an image');
  assert.equal(d.proc?.exitCode, null, 'isulad is still running');
  t.diagnostic(`registry replies: ${RUNS} runs, ${pulled} pulled, ${refused} refused in words`);
});
