/**
 * The registry test infrastructure works on its own, without isula: real
 * docker-registry servers (plain, TLS, htpasswd, token) take the offline test
 * images from skopeo and give them back with the same digests, and the
 * hostile registry serves a valid image in normal mode and misbehaves exactly
 * as documented in each fault mode. Pull tests of isula build on these.
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { before, describe, test, type TestContext } from 'node:test';
import zlib from 'node:zlib';
import { IMAGES_DIR, testImages } from '../lib/containers.js';
import { MT, startHostileRegistry, type HostileMode } from '../lib/hostile-registry.js';
import {
  CommandError, pushTestImage, rawRequest, registrySkip, sha256, skopeoAccess, skopeoCopy, skopeoInspect, startRegistry, type TestRegistry,
} from '../lib/registry.js';

const skip = await registrySkip();

interface ImagesJson { [name: string]: { manifestDigest: string; layers: string[] } }
const imagesJson = async (): Promise<ImagesJson> => JSON.parse(await fs.readFile(path.join(IMAGES_DIR, 'images.json'), 'utf8')) as ImagesJson;
const OCI_ACCEPT = `${MT.ociManifest}, ${MT.dockerManifest}, ${MT.ociIndex}, ${MT.dockerList}`;

/** Parses `Bearer realm="…",service="…",scope="…"`. */
function challenge(header: string | undefined): Record<string, string> {
  assert.ok(header !== undefined, 'a WWW-Authenticate header');
  const [scheme, rest = ''] = header.split(/\s+(.*)/s);
  const out: Record<string, string> = { scheme: scheme ?? '' };
  for (const m of rest.matchAll(/(\w+)="([^"]*)"/g)) out[m[1] ?? ''] = m[2] ?? '';
  return out;
}

const basic = (u: string, p: string): string => `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}`;

/** GET of a manifest with the Accept header a client sends (PLATFORM.md §7: without it OCI is 404), trusting the registry's CA. */
async function getManifest(reg: TestRegistry, repo: string, reference: string, headers: Record<string, string> = {}) {
  const ca = reg.caFile === undefined ? undefined : await fs.readFile(reg.caFile);
  return rawRequest(`${reg.url}/v2/${repo}/manifests/${reference}`, { headers: { Accept: OCI_ACCEPT, ...headers }, ...(ca === undefined ? {} : { ca }) });
}

/** Reads a streamed body without keeping it: status, headers, byte count, sha256, and how it ended. */
function streamGet(url: string, timeoutMs: number): Promise<{ status: number; headers: http.IncomingHttpHeaders; bytes: number; digest: string; ended: 'end' | 'error' | 'timeout'; headersAt: number | undefined }> {
  return new Promise((resolve) => {
    const h = crypto.createHash('sha256');
    let bytes = 0;
    let status = 0;
    let headers: http.IncomingHttpHeaders = {};
    let headersAt: number | undefined;
    let done = false;
    const finish = (ended: 'end' | 'error' | 'timeout'): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      req.destroy();
      resolve({ status, headers, bytes, digest: `sha256:${h.digest('hex')}`, ended, headersAt });
    };
    const req = http.get(url, { agent: false }, (res) => {
      status = res.statusCode ?? 0;
      headers = res.headers;
      headersAt = Date.now();
      res.on('data', (c: Buffer) => { bytes += c.length; h.update(c); });
      res.on('end', () => finish('end'));
      res.on('error', () => finish('error'));
      res.on('aborted', () => finish('error'));
    });
    req.on('error', () => finish('error'));
    const timer = setTimeout(() => finish('timeout'), timeoutMs);
  });
}

describe('registry test infrastructure (no isula)', { skip }, () => {
  before(async () => { await testImages(); });

  test('a plain registry keeps a pushed OCI image and its digest; a docker-archive becomes schema 2', async (t) => {
    const reg = await startRegistry(t);
    const want = (await imagesJson())['busybox']?.manifestDigest;
    const { ref, digest } = await pushTestImage(reg, { image: 'busybox' });
    assert.equal(digest, want, 'skopeo pushed the OCI manifest unchanged');
    assert.equal(await skopeoInspect(`docker://${ref}`, skopeoAccess(reg)), want);

    // The wire as a client sees it: with Accept, bytes that hash to Docker-Content-Digest.
    const r = await getManifest(reg, 'busybox', 'latest');
    assert.equal(r.status, 200);
    assert.equal(r.headers['content-type'], MT.ociManifest);
    assert.equal(r.headers['docker-content-digest'], want);
    assert.equal(sha256(r.body), want);
    const noAccept = await rawRequest(`${reg.url}/v2/busybox/manifests/latest`);
    assert.equal(noAccept.status, 404, 'distribution 2.8 hides an OCI manifest from a client that does not accept it');

    const layer = (JSON.parse(r.body.toString('utf8')) as { layers: { digest: string }[] }).layers[0]?.digest ?? '';
    const blob = await rawRequest(`${reg.url}/v2/busybox/blobs/${layer}`);
    assert.equal(blob.status, 200);
    assert.equal(sha256(blob.body), layer);

    const docker = await pushTestImage(reg, { image: 'layered', repo: 'lib/layered', tag: 'v1', format: 'docker' });
    const d = await getManifest(reg, 'lib/layered', 'v1');
    assert.equal(d.headers['content-type'], MT.dockerManifest);
    assert.equal(d.headers['docker-content-digest'], docker.digest);
    assert.equal((JSON.parse(d.body.toString('utf8')) as { layers: unknown[] }).layers.length, 3);
  });

  test('a TLS registry is trusted through its certs.d dir and refused without it', async (t) => {
    const reg = await startRegistry(t, { tls: true });
    assert.match(reg.url, /^https:\/\/127\.0\.0\.1:\d+$/);
    assert.ok(reg.certsDir !== undefined);
    await fs.access(path.join(reg.certsDir, reg.host, 'ca.crt'));
    const { ref, digest } = await pushTestImage(reg);
    assert.equal(await skopeoInspect(`docker://${ref}`, skopeoAccess(reg)), digest);
    const r = await getManifest(reg, 'busybox', 'latest');
    assert.equal(r.headers['docker-content-digest'], digest);
    await assert.rejects(skopeoInspect(`docker://${ref}`, { tlsVerify: true }), (e: unknown) => e instanceof CommandError && /certificate/i.test(e.stderr));
    await assert.rejects(rawRequest(`${reg.url}/v2/`), /certificate/i);
  });

  test('an htpasswd registry answers 401 Basic, refuses anonymous and wrong pushes, takes the right user', async (t) => {
    const user = { username: 'tester', password: 'p4ss-w0rd' };
    const reg = await startRegistry(t, { htpasswd: user });
    const r = await rawRequest(`${reg.url}/v2/`);
    assert.equal(r.status, 401);
    assert.equal(challenge(r.headers['www-authenticate']).scheme, 'Basic');
    assert.equal((await rawRequest(`${reg.url}/v2/`, { headers: { Authorization: basic(user.username, user.password) } })).status, 200);

    const src = `oci:${path.join(IMAGES_DIR, 'oci')}:busybox`;
    const dest = `docker://${reg.host}/busybox:latest`;
    await assert.rejects(skopeoCopy(src, dest, { dest: skopeoAccess(reg) }), CommandError);
    await assert.rejects(skopeoCopy(src, dest, { dest: skopeoAccess(reg, { username: 'tester', password: 'wrong' }) }), CommandError);
    const { digest } = await pushTestImage(reg);
    assert.equal(await skopeoInspect(dest, skopeoAccess(reg, user)), digest);
    await assert.rejects(skopeoInspect(dest, skopeoAccess(reg)), CommandError);
  });

  test('a token registry: 401 challenge, token from the test token server, then 200; anonymous may only pull', async (t) => {
    const user = { username: 'tok', password: 'en-pass' };
    const reg = await startRegistry(t, { token: user });
    assert.ok(reg.token !== undefined);
    const { ref, digest } = await pushTestImage(reg);

    const first = await getManifest(reg, 'busybox', 'latest');
    assert.equal(first.status, 401);
    const c = challenge(first.headers['www-authenticate']);
    assert.equal(c['scheme'], 'Bearer');
    assert.equal(c['realm'], reg.token.realm);
    assert.equal(c['service'], reg.token.service);
    assert.equal(c['scope'], 'repository:busybox:pull');

    const tokenUrl = `${c['realm']}?service=${encodeURIComponent(c['service'] ?? '')}&scope=${encodeURIComponent(c['scope'] ?? '')}`;
    const tr = await fetch(tokenUrl, { headers: { Authorization: basic(user.username, user.password) } });
    assert.equal(tr.status, 200);
    const tok = await tr.json() as { token: string; access_token: string; expires_in: number; issued_at: string };
    assert.equal(tok.token, tok.access_token);
    assert.equal(tok.expires_in, 300);
    assert.ok(!Number.isNaN(Date.parse(tok.issued_at)));
    const [h64 = ''] = tok.token.split('.');
    const header = JSON.parse(Buffer.from(h64, 'base64url').toString('utf8')) as { alg: string; x5c: string[] };
    assert.equal(header.alg, 'ES256');
    assert.equal(header.x5c.length, 1);

    const ok = await getManifest(reg, 'busybox', 'latest', { Authorization: `Bearer ${tok.token}` });
    assert.equal(ok.status, 200);
    assert.equal(ok.headers['docker-content-digest'], digest);

    // A token for another repository does not open this one.
    const other = await (await fetch(`${c['realm']}?service=${reg.token.service}&scope=repository:other:pull`, { headers: { Authorization: basic(user.username, user.password) } })).json() as { token: string };
    const denied = await getManifest(reg, 'busybox', 'latest', { Authorization: `Bearer ${other.token}` });
    assert.equal(denied.status, 401);
    assert.match(denied.body.toString('utf8'), /UNAUTHORIZED|DENIED/);

    // Anonymous: a pull-only token; wrong credentials: 401 with a JSON error.
    const anon = await (await fetch(`${c['realm']}?service=${reg.token.service}&scope=repository:busybox:pull,push`)).json() as { token: string };
    assert.equal((await getManifest(reg, 'busybox', 'latest', { Authorization: `Bearer ${anon.token}` })).status, 200);
    const wrong = await fetch(tokenUrl, { headers: { Authorization: basic(user.username, 'nope') } });
    assert.equal(wrong.status, 401);
    assert.equal((await wrong.json() as { errors: { code: string }[] }).errors[0]?.code, 'UNAUTHORIZED');
    const badService = await fetch(`${c['realm']}?service=elsewhere&scope=${encodeURIComponent(c['scope'] ?? '')}`);
    assert.equal(badService.status, 400);
    // The OAuth2 form (POST) as docker's client uses with a refresh or identity token.
    const form = await fetch(c['realm'] ?? '', { method: 'POST', body: new URLSearchParams({ grant_type: 'password', username: user.username, password: user.password, service: reg.token.service, scope: 'repository:busybox:pull', client_id: 'isula-test' }) });
    assert.equal(form.status, 200);
    assert.ok((await form.json() as { access_token?: string }).access_token);

    assert.equal(await skopeoInspect(`docker://${ref}`, skopeoAccess(reg)), digest, 'anonymous pull works');
    await assert.rejects(skopeoCopy(`oci:${path.join(IMAGES_DIR, 'oci')}:shared`, `docker://${reg.host}/busybox:anon`, { dest: skopeoAccess(reg) }), CommandError, 'anonymous push is refused');
    const granted = reg.token.requests.filter((r) => r.status === 200 && r.account === undefined).flatMap((r) => r.granted);
    assert.ok(granted.every((g) => g.endsWith(':pull')), `anonymous grants are pull-only: ${granted.join(' ')}`);
  });

  test('token auth over TLS, and a token server that grants nothing to anonymous', async (t) => {
    const user = { username: 'u', password: 'p' };
    const reg = await startRegistry(t, { tls: true, token: { ...user, anonymous: 'none' } });
    const { ref, digest } = await pushTestImage(reg);
    assert.equal(await skopeoInspect(`docker://${ref}`, skopeoAccess(reg, user)), digest);
    await assert.rejects(skopeoInspect(`docker://${ref}`, skopeoAccess(reg)), CommandError);
  });

  test('the hostile registry in normal mode serves a valid image skopeo copies (Docker and OCI manifests)', async (t) => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'isula-hostile-copy-'));
    t.after(() => fs.rm(dir, { recursive: true, force: true }));
    const want = (await imagesJson())['busybox'];
    for (const mediaType of ['docker', 'oci'] as const) {
      const h = await startHostileRegistry(t, { mediaType });
      const out = `oci:${path.join(dir, mediaType)}:latest`;
      const { digest } = await skopeoCopy(`docker://${h.ref}`, out, { src: { tlsVerify: false } });
      assert.equal(await skopeoInspect(out), digest);
      // skopeo keeps an OCI manifest as it is and converts a Docker one; the layer bytes stay.
      if (mediaType === 'oci') assert.equal(digest, want?.manifestDigest);
      await fs.access(path.join(dir, mediaType, 'blobs', 'sha256', h.image.faultyBlobDigest.slice(7)));
      assert.deepEqual(h.image.layerDigests, want?.layers);
      assert.equal(h.count(h.blobPath(h.image.faultyBlobDigest), 'GET'), 1, 'the layer was fetched once');
      if (mediaType === 'oci') assert.equal(h.image.manifestDigest, want?.manifestDigest);
    }
  });

  test('the hostile registry serves a list whose host entry is valid, and a schema 1 manifest c/image accepts', async (t) => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'isula-hostile-copy-'));
    t.after(() => fs.rm(dir, { recursive: true, force: true }));
    for (const [mediaType, listType] of [['docker', MT.dockerList], ['oci', MT.ociIndex]] as const) {
      const idx = await startHostileRegistry(t, { mode: 'index', mediaType });
      const r = await rawRequest(`${idx.url}${idx.manifestPath('latest')}`);
      assert.equal(r.headers['content-type'], listType);
      const list = JSON.parse(r.body.toString('utf8')) as { mediaType: string; manifests: { digest: string; platform: { architecture: string } }[] };
      assert.equal(list.mediaType, listType);
      assert.deepEqual(list.manifests.map((m) => m.platform.architecture), ['amd64', 'arm64']);
      assert.ok(idx.image.otherArch !== undefined);
      assert.equal((await rawRequest(`${idx.url}${idx.manifestPath(idx.image.otherArch.digest)}`)).status, 404);
      await skopeoCopy(`docker://${idx.ref}`, `oci:${path.join(dir, `index-${mediaType}`)}:latest`, { src: { tlsVerify: false } });
      assert.equal(idx.count(idx.manifestPath(idx.image.manifestDigest), 'GET'), 1, 'skopeo took the host arch entry');
      assert.equal(idx.count(idx.manifestPath(idx.image.otherArch.digest), 'GET'), 1, 'and not the other (the probe above only)');
    }

    const s1 = await startHostileRegistry(t, { mode: 'schema1' });
    const r = await rawRequest(`${s1.url}${s1.manifestPath('latest')}`);
    assert.equal(r.headers['content-type'], MT.schema1Signed);
    assert.equal(r.headers['docker-content-digest'], s1.image.tagDigest);
    // By digest: c/image checks the digest over the payload without signatures, as distribution computes it.
    await skopeoCopy(`docker://${s1.host}/${s1.repo}@${s1.image.tagDigest}`, `oci:${path.join(dir, 'schema1')}:latest`, { src: { tlsVerify: false } });
  });

  test('each hostile fault mode misbehaves as documented', async (t) => {
    const get = (h: { url: string }, p: string, timeoutMs = 5000) => streamGet(`${h.url}${p}`, timeoutMs);
    const modes: Record<Exclude<HostileMode, 'normal' | 'index' | 'schema1'>, (t: TestContext) => Promise<void>> = {
      'wrong-digest': async (t) => {
        const h = await startHostileRegistry(t, { mode: 'wrong-digest' });
        const r = await rawRequest(`${h.url}${h.blobPath(h.image.faultyBlobDigest)}`);
        assert.equal(r.status, 200);
        assert.equal(r.headers['docker-content-digest'], h.image.faultyBlobDigest);
        assert.notEqual(sha256(r.body), h.image.faultyBlobDigest);
        const good = await fs.readFile(path.join(IMAGES_DIR, 'oci/blobs/sha256', h.image.faultyBlobDigest.slice(7)));
        assert.equal(r.body.length, good.length);
        assert.ok(zlib.gunzipSync(r.body).equals(zlib.gunzipSync(good)), 'same tar inside: only the digest tells');
      },
      'truncated-blob': async (t) => {
        const h = await startHostileRegistry(t, { mode: 'truncated-blob' });
        const r = await get(h, h.blobPath(h.image.faultyBlobDigest));
        assert.equal(r.ended, 'error');
        assert.ok(r.bytes < Number(r.headers['content-length']), `${r.bytes} < ${r.headers['content-length']}`);
        assert.equal(h.count(h.blobPath(h.image.faultyBlobDigest)), 1);
      },
      'oversize-blob': async (t) => {
        const h = await startHostileRegistry(t, { mode: 'oversize-blob', oversizeExtraBytes: 3 * 1024 * 1024 + 17 });
        const size = (JSON.parse(h.image.manifest.toString('utf8')) as { layers: { size: number }[] }).layers[0]?.size ?? 0;
        const r = await get(h, h.blobPath(h.image.faultyBlobDigest));
        assert.equal(r.ended, 'end');
        assert.equal(r.headers['content-length'], undefined);
        assert.equal(r.bytes, size + 3 * 1024 * 1024 + 17);
      },
      'endless-redirect': async (t) => {
        const h = await startHostileRegistry(t, { mode: 'endless-redirect' });
        const url = `${h.url}${h.blobPath(h.image.faultyBlobDigest)}`;
        const r = await rawRequest(url);
        assert.equal(r.status, 307);
        assert.equal(r.headers.location, url);
        await assert.rejects(fetch(url), TypeError); // undici gives up after 20 redirects
        assert.ok(h.count(h.blobPath(h.image.faultyBlobDigest)) > 20, 'every hop was a request to the same path');
      },
      'huge-manifest': async (t) => {
        const h = await startHostileRegistry(t, { mode: 'huge-manifest' });
        const r = await get(h, h.manifestPath('latest'), 20_000);
        assert.equal(r.ended, 'end');
        assert.equal(r.bytes, 100 * 1024 * 1024);
        assert.equal(Number(r.headers['content-length']), r.bytes);
        assert.equal(r.digest, h.image.tagDigest);
        assert.equal(r.headers['docker-content-digest'], h.image.tagDigest);
        const small = await startHostileRegistry(t, { mode: 'huge-manifest', hugeManifestBytes: 4096 });
        const m = JSON.parse((await rawRequest(`${small.url}${small.manifestPath('latest')}`)).body.toString('utf8')) as { layers: unknown[]; annotations: { pad: string } };
        assert.equal(m.layers.length, 1, 'valid JSON: an image manifest with padding');
      },
      'error-500': async (t) => {
        const h = await startHostileRegistry(t, { mode: 'error-500' });
        for (const p of ['/v2/', h.manifestPath('latest'), h.blobPath(h.image.faultyBlobDigest)]) {
          const r = await rawRequest(`${h.url}${p}`);
          assert.equal(r.status, 500);
          assert.equal((JSON.parse(r.body.toString('utf8')) as { errors: { code: string }[] }).errors[0]?.code, 'UNKNOWN');
        }
      },
      stall: async (t) => {
        const h = await startHostileRegistry(t, { mode: 'stall' });
        assert.equal((await rawRequest(`${h.url}${h.manifestPath('latest')}`)).status, 200);
        const r = await get(h, h.blobPath(h.image.faultyBlobDigest), 2000); // headers within 2 s, even on a loaded host
        assert.equal(r.status, 200, 'headers came');
        assert.equal(r.ended, 'timeout');
        assert.equal(r.bytes, 0, 'no body');
      },
      'stall-manifest': async (t) => {
        const h = await startHostileRegistry(t, { mode: 'stall-manifest' });
        assert.equal((await rawRequest(`${h.url}/v2/`)).status, 200);
        const r = await get(h, h.manifestPath('latest'), 2000);
        assert.equal(r.ended, 'timeout');
        assert.equal(r.headersAt, undefined, 'not even headers');
      },
    };
    for (const [mode, check] of Object.entries(modes)) await t.test(mode, check);
  });
});
