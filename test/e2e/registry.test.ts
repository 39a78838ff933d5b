/**
 * Registries end to end: real docker-registry servers on 127.0.0.1 (plain,
 * TLS with a CA made by the test, htpasswd, bearer tokens from the test
 * token server), images pushed there by skopeo, pulled, run and pushed back
 * by isula; mirrors; and a hostile registry for the bad replies.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { httpRequest, ISULA, type TestDaemon, waitFor } from '../lib/harness.js';
import { daemon, IMAGES_DIR, isulaWithStdin, ok } from '../lib/containers.js';
import { pushTestImage, registrySkip, skopeoAccess, skopeoInspect, startRegistry, type Teardown } from '../lib/registry.js';
import { startHostileRegistry, type HostileMode } from '../lib/hostile-registry.js';

const run = promisify(execFile);
const skip = await registrySkip();

/** A daemon with no image loaded (pulls start cold), extra daemon.json keys merged. */
function bareDaemon(t: Teardown, config: Record<string, unknown> = {}): Promise<TestDaemon> {
  return daemon(t, { 'registry-stall-timeout': '2s', ...config }, { loadBusybox: false });
}

interface ImageJson { Id: string; RepoTags: string[]; RepoDigests: string[] }
async function images(d: TestDaemon): Promise<ImageJson[]> {
  const r = await httpRequest(d.socket, 'GET', '/images/json');
  assert.equal(r.status, 200, r.body);
  return JSON.parse(r.body) as ImageJson[];
}

/** Nothing half-made in the image store: no scratch, no layer dir without its commit marker. */
async function assertStoreClean(d: TestDaemon): Promise<void> {
  const storage = path.join(d.graph, 'storage');
  const tmp = await fs.readdir(path.join(storage, 'tmp'));
  assert.deepEqual(tmp, [], 'no scratch left in the store');
  for (const l of await fs.readdir(path.join(storage, 'layers'))) {
    const entries = await fs.readdir(path.join(storage, 'layers', l));
    assert.ok(entries.includes('layer.json'), `layer ${l} has its layer.json (has ${entries.join(', ')})`);
    assert.ok(!entries.some((e) => e.includes('.extract-')), `no extraction temp dir in layer ${l}`);
  }
}

/** Pull through the engine API: status and the JSON messages (or the error body). */
async function apiPull(d: TestDaemon, ref: string, query = ''): Promise<{ status: number; messages: Record<string, unknown>[]; error?: string; body: string }> {
  const at = ref.lastIndexOf(':') > ref.lastIndexOf('/') ? ref.lastIndexOf(':') : -1;
  const [name, tag] = at > 0 ? [ref.slice(0, at), ref.slice(at + 1)] : [ref, 'latest'];
  const r = await httpRequest(d.socket, 'POST', `/images/create?fromImage=${encodeURIComponent(name)}&tag=${encodeURIComponent(tag)}${query}`);
  if (r.status !== 200) return { status: r.status, messages: [], error: (JSON.parse(r.body) as { message: string }).message, body: r.body };
  const messages = r.body.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
  const failed = messages.find((m) => m['error'] !== undefined);
  return { status: 200, messages, ...(failed !== undefined && { error: String(failed['error']) }), body: r.body };
}

test('a plain-HTTP registry: pull, run, RepoDigests, up to date, pull by digest', { skip }, async (t) => {
  const reg = await startRegistry(t);
  const { digest } = await pushTestImage(reg, { image: 'busybox', repo: 'library/busybox' });
  const d = await bareDaemon(t);
  const name = `${reg.host}/library/busybox`;

  const pulled = ok(await d.isula(['pull', name]), 'pull');
  assert.match(pulled, new RegExp(`Digest: ${digest}`));
  assert.match(pulled, new RegExp(`Status: Downloaded newer image for ${name}:latest`));

  const echoed = await d.isula(['run', '--rm', name, 'echo', 'pulled-and-ran']);
  assert.equal(echoed.code, 0, echoed.stderr);
  assert.equal(echoed.stdout.trim(), 'pulled-and-ran');

  const img = (await images(d)).find((i) => i.RepoTags.includes(`${name}:latest`));
  assert.ok(img, 'images lists the pulled tag');
  assert.deepEqual(img.RepoDigests, [`${name}@${digest}`]);

  assert.match(ok(await d.isula(['pull', name]), 'pull again'), new RegExp(`Status: Image is up to date for ${name}:latest`));
  const byDigest = ok(await d.isula(['pull', `${name}@${digest}`]), 'pull by digest');
  assert.match(byDigest, new RegExp(`Digest: ${digest}`));
  const missing = await d.isula(['pull', `${reg.host}/library/nope:1`]);
  assert.notEqual(missing.code, 0);
  assert.match(missing.stderr, /manifest for .*nope:1 not found/);
  await assertStoreClean(d);
});

test('isula push sends only the missing blobs and skopeo agrees on the digest; the image pulls back and runs', { skip }, async (t) => {
  const reg = await startRegistry(t);
  const d = await bareDaemon(t);
  ok(await d.isula(['load', '-i', path.join(IMAGES_DIR, 'layered.docker.tar')]), 'load layered');
  const target = `${reg.host}/team/layered:v1`;
  ok(await d.isula(['tag', 'layered:latest', target]), 'tag');
  const pushed = ok(await d.isula(['push', target]), 'push');
  const m = /v1: digest: (sha256:[a-f0-9]{64}) size: (\d+)/.exec(pushed);
  assert.ok(m, `push reports the digest: ${pushed}`);
  assert.equal(await skopeoInspect(`docker://${target}`, skopeoAccess(reg)), m[1], 'skopeo reads the same manifest digest');
  assert.match(pushed, /Pushed/);

  const again = ok(await d.isula(['push', target]), 'push again');
  assert.equal((again.match(/Layer already exists/g) ?? []).length, 3, `the second push sends no layer: ${again}`);

  ok(await d.isula(['rmi', target, 'layered:latest']), 'rmi');
  ok(await d.isula(['pull', target]), 'pull back');
  const r = await d.isula(['run', '--rm', target, 'sh', '-c', 'ls / | wc -l']);
  assert.equal(r.code, 0, r.stderr);
  await assertStoreClean(d);
});

test('TLS: a CA in the certs dir is trusted; a wrong CA is a clear certificate error', { skip }, async (t) => {
  const reg = await startRegistry(t, { tls: true });
  const { digest } = await pushTestImage(reg, { image: 'busybox', repo: 'secure/busybox' });
  assert.ok(reg.certsDir !== undefined);
  const d = await bareDaemon(t, { 'registry-certs-dir': reg.certsDir });
  assert.match(ok(await d.isula(['pull', `${reg.host}/secure/busybox`]), 'pull over TLS'), new RegExp(digest));

  // Another CA for the same host: verification must fail, and say why.
  const other = await startRegistry(t, { tls: true });
  const wrong = path.join(d.root, 'wrong-certs');
  await fs.mkdir(path.join(wrong, reg.host), { recursive: true });
  await fs.copyFile(other.caFile as string, path.join(wrong, reg.host, 'ca.crt'));
  const d2 = await bareDaemon(t, { 'registry-certs-dir': wrong });
  const r = await d2.isula(['pull', `${reg.host}/secure/busybox`]);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /certificate|self.signed|verify/i);
  assert.deepEqual(await images(d2), []);
});

test('basic auth: pull needs a login; a wrong password fails with the registry\'s message and saves nothing; logout forgets', { skip }, async (t) => {
  const creds = { username: 'alice', password: 'wonder-land-7' };
  const reg = await startRegistry(t, { htpasswd: creds });
  await pushTestImage(reg, { image: 'busybox', repo: 'private/busybox', creds });
  const d = await bareDaemon(t);
  const name = `${reg.host}/private/busybox`;

  const anon = await d.isula(['pull', name]);
  assert.notEqual(anon.code, 0);
  assert.match(anon.stderr, /authentication required|unauthorized/i);

  const bad = await d.isula(['login', '-u', 'alice', '-p', 'wrong', reg.host]);
  assert.notEqual(bad.code, 0);
  assert.match(bad.stderr, /unauthorized|authentication required/i);
  const auths = path.join(d.graph, 'auths', 'auths.json');
  assert.equal(await fs.readFile(auths, 'utf8').then((s) => s.includes(reg.host), () => false), false, 'a failed login saves nothing');

  const good = await isulaWithStdin(d, ['login', '-u', 'alice', '--password-stdin', reg.host], `${creds.password}\n`);
  assert.equal(good.code, 0, good.stderr);
  assert.match(good.stdout, /Login Succeeded/);
  const st = await fs.stat(auths);
  assert.equal(st.mode & 0o777, 0o600);
  const text = await fs.readFile(auths, 'utf8');
  assert.ok(text.includes(reg.host) && !text.includes(creds.password) && !text.includes(Buffer.from(`alice:${creds.password}`).toString('base64')), 'stored sealed');

  ok(await d.isula(['pull', name]), 'pull after login');
  ok(await d.isula(['tag', name, `${reg.host}/private/copy:1`]), 'tag');
  ok(await d.isula(['push', `${reg.host}/private/copy:1`]), 'push after login');

  assert.match(ok(await d.isula(['logout', reg.host]), 'logout'), new RegExp(`Removing login credentials for ${reg.host}`));
  ok(await d.isula(['rmi', name]), 'rmi');
  const after = await d.isula(['pull', name]);
  assert.notEqual(after.code, 0, 'the credentials are gone');
});

test('bearer tokens: anonymous pulls are refused, a login gets scoped tokens that are reused', { skip }, async (t) => {
  const creds = { username: 'bob', password: 'builder-42' };
  const reg = await startRegistry(t, { token: { ...creds, anonymous: 'none' } });
  await pushTestImage(reg, { image: 'layered', repo: 'team/layered', creds });
  const d = await bareDaemon(t);
  const name = `${reg.host}/team/layered`;
  assert.ok(reg.token !== undefined);

  const anon = await d.isula(['pull', name]);
  assert.notEqual(anon.code, 0);
  assert.match(anon.stderr, /unauthorized|authentication required|insufficient/i);

  const bad = await d.isula(['login', '-u', 'bob', '-p', 'nope', reg.host]);
  assert.notEqual(bad.code, 0);
  assert.match(bad.stderr, /login .* failed|unauthorized/i);

  ok(await d.isula(['login', '-u', 'bob', '-p', creds.password, reg.host]), 'login');
  const before = reg.token.requests.length;
  ok(await d.isula(['pull', name]), 'pull with a token');
  const during = reg.token.requests.slice(before);
  assert.ok(during.length >= 1 && during.length <= 2, `one token for the pull (manifest, config and 3 layers share it): ${JSON.stringify(during)}`);
  assert.ok(during.every((r) => r.account === 'bob' && r.scopes.includes('repository:team/layered:pull')), JSON.stringify(during));
  const r = await d.isula(['run', '--rm', name, 'true']);
  assert.equal(r.code, 0, r.stderr);
});

test('mirrors: docker.io names from registry-mirrors, registry.k8s.io from a per-host mirror, the origin when the mirror lacks the image', { skip }, async (t) => {
  const mirror = await startRegistry(t);
  const origin = await startRegistry(t);
  const hub = await pushTestImage(mirror, { image: 'busybox', repo: 'library/busybox', tag: 'latest' });
  const pause = await pushTestImage(mirror, { image: 'busybox', repo: 'pause', tag: '3.9' });
  const only = await pushTestImage(origin, { image: 'layered', repo: 'team/app', tag: '1' });
  const d = await bareDaemon(t, {
    'registry-mirrors': [mirror.url],
    'registry-mirrors-by-host': { 'registry.k8s.io': [mirror.url], [origin.host]: [mirror.url] },
  });

  assert.match(ok(await d.isula(['pull', 'busybox']), 'pull busybox'), new RegExp(`Digest: ${hub.digest}`));
  assert.match(ok(await d.isula(['pull', 'registry.k8s.io/pause:3.9']), 'pull pause'), new RegExp(`Digest: ${pause.digest}`));
  assert.match(ok(await d.isula(['pull', `${origin.host}/team/app:1`]), 'pull from the origin'), new RegExp(`Digest: ${only.digest}`));
  const tags = (await images(d)).flatMap((i) => i.RepoTags);
  for (const want of ['busybox:latest', 'registry.k8s.io/pause:3.9', `${origin.host}/team/app:1`]) assert.ok(tags.includes(want), `${want} keeps its original name: ${tags.join(', ')}`);
  const r = await d.isula(['run', '--rm', 'registry.k8s.io/pause:3.9', 'echo', 'from-the-mirror']);
  assert.equal(r.stdout.trim(), 'from-the-mirror', r.stderr);
});

test('run and create pull a missing image; --pull never refuses, --pull always pulls again', { skip }, async (t) => {
  const reg = await startRegistry(t);
  await pushTestImage(reg, { image: 'busybox', repo: 'auto/busybox' });
  const d = await bareDaemon(t);
  const name = `${reg.host}/auto/busybox`;

  const never = await d.isula(['run', '--rm', '--pull', 'never', name, 'true']);
  assert.notEqual(never.code, 0);
  assert.match(never.stderr, /No such image/);

  const r = await d.isula(['run', '--rm', name, 'echo', 'auto-pulled']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, new RegExp(`Unable to find image '${name}:latest' locally`));
  assert.equal(r.stdout.trim(), 'auto-pulled');

  const always = await d.isula(['create', '--pull', 'always', '--name', 'c1', name, 'true']);
  assert.equal(always.code, 0, always.stderr);
  assert.match(always.stderr, /Image is up to date|Pulling from/);
  const bad = await d.isula(['run', '--pull', 'sometimes', name, 'true']);
  assert.notEqual(bad.code, 0);
  assert.match(bad.stderr, /always.*missing.*never/);
});

test('two pulls of the same image at once share each layer download', { skip }, async (t) => {
  const hostile = await startHostileRegistry(t, { mode: 'normal', image: 'layered' });
  const d = await bareDaemon(t);
  const [a, b] = await Promise.all([apiPull(d, hostile.ref), apiPull(d, hostile.ref)]);
  assert.equal(a.error, undefined, a.body);
  assert.equal(b.error, undefined, b.body);
  for (const layer of hostile.image.layerDigests) {
    assert.equal(hostile.count(hostile.blobPath(layer), 'GET'), 1, `layer ${layer} fetched once`);
  }
  await assertStoreClean(d);
});

test('pulls of two images sharing a base layer at once: the base is fetched once and both images are whole', { skip }, async (t) => {
  const a = await startHostileRegistry(t, { mode: 'normal', image: 'layered' });
  const b = await startHostileRegistry(t, { mode: 'normal', image: 'shared' });
  const base = a.image.layerDigests[0] as string;
  assert.equal(b.image.layerDigests[0], base, 'the two test images share their base layer');
  const d = await bareDaemon(t);
  const [ra, rb] = await Promise.all([apiPull(d, a.ref), apiPull(d, b.ref)]);
  assert.equal(ra.error, undefined, ra.body);
  assert.equal(rb.error, undefined, rb.body);
  assert.equal(a.count(a.blobPath(base), 'GET') + b.count(b.blobPath(base), 'GET'), 1, 'the shared base layer is downloaded once');
  await assertStoreClean(d);
  for (const ref of [a.ref, b.ref]) {
    const r = await d.isula(['run', '--rm', ref, 'sh', '-c', 'echo whole']);
    assert.equal(r.stdout.trim(), 'whole', `${ref}: ${r.stderr}`);
  }
});

test('an error page larger than the engine reads is cut off, reported, and the daemon lives on', { skip }, async (t) => {
  const page = `<html>${'x'.repeat(300 * 1024)}</html>`;
  const server = http.createServer((req, res) => {
    if (req.url === '/v2/') { res.writeHead(200, { 'content-type': 'application/json' }); res.end('{}'); return; }
    res.writeHead(502, { 'content-type': 'text/html', 'content-length': String(Buffer.byteLength(page)) });
    res.end(page);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }));
  const host = `127.0.0.1:${(server.address() as import('node:net').AddressInfo).port}`;
  const d = await bareDaemon(t);
  const r = await apiPull(d, `${host}/big/error:1`);
  assert.ok(r.error !== undefined && r.status >= 400, r.body.slice(0, 300));
  assert.match(r.error, /502/);
  await new Promise((resolve) => setTimeout(resolve, 200));
  assert.equal((await httpRequest(d.socket, 'GET', '/_ping')).status, 200, 'the daemon answers');
  assert.equal(d.proc?.exitCode, null, 'the daemon did not exit');
});

test('a failed pull leaves no image, keeps its finished layers, and the retry fetches only the rest', { skip }, async (t) => {
  const bad = await startHostileRegistry(t, { mode: 'wrong-digest', image: 'layered' });
  const good = await startHostileRegistry(t, { mode: 'normal', image: 'layered' });
  const d = await bareDaemon(t);
  const failed = await apiPull(d, bad.ref);
  assert.match(failed.error ?? '', /digest/i);
  assert.deepEqual(await images(d), []);
  await assertStoreClean(d);

  const retry = await apiPull(d, good.ref);
  assert.equal(retry.error, undefined, retry.body);
  const others = good.image.layerDigests.filter((l) => l !== good.image.faultyBlobDigest);
  for (const l of others) assert.equal(good.count(good.blobPath(l), 'GET'), 0, `finished layer ${l} is not fetched again`);
  assert.equal(good.count(good.blobPath(good.image.faultyBlobDigest), 'GET'), 1);
  assert.ok(retry.messages.some((m) => m['status'] === 'Already exists'));
});

const HOSTILE: [HostileMode, RegExp][] = [
  ['wrong-digest', /digest/i],
  ['truncated-blob', /truncated|closed|socket|terminated/i],
  ['oversize-blob', /more than/],
  ['endless-redirect', /redirects/],
  ['huge-manifest', /limit/],
  ['error-500', /500/],
  ['stall', /stalled/],
  ['stall-manifest', /stalled/],
  ['schema1', /schema 1/],
];

test('hostile registry replies: each a clear error within a bounded time, no partial image, the daemon healthy', { skip, timeout: 180_000 }, async (t) => {
  const d = await bareDaemon(t);
  for (const [mode, expected] of HOSTILE) {
    const hostile = await startHostileRegistry(t, { mode });
    const started = Date.now();
    const r = await apiPull(d, hostile.ref);
    const took = Date.now() - started;
    assert.ok(r.error !== undefined, `${mode}: the pull fails (${r.body.slice(0, 300)})`);
    assert.match(r.error, expected, `${mode}: ${r.error}`);
    assert.ok(took < 20_000, `${mode}: failed within 20 s (took ${took} ms)`);
    t.diagnostic(`${mode}: ${took} ms: ${r.error}`);
    assert.deepEqual(await images(d), [], `${mode}: no image`);
    await assertStoreClean(d);
    assert.equal((await httpRequest(d.socket, 'GET', '/_ping')).status, 200, `${mode}: the daemon answers`);
    await hostile.stop();
  }
  const blobs500 = await startHostileRegistry(t, { mode: 'error-500' });
  await apiPull(d, blobs500.ref);
  assert.ok(blobs500.count(/manifests/) <= 3, `a 500 storm is retried a bounded number of times (${blobs500.count(/manifests/)})`);
});

test('an index: the host\'s platform is pulled and no other; --platform picks another or names what is missing', { skip }, async (t) => {
  const hostile = await startHostileRegistry(t, { mode: 'index' });
  const d = await bareDaemon(t);
  const r = await apiPull(d, hostile.ref);
  assert.equal(r.error, undefined, r.body);
  assert.ok(r.messages.some((m) => m['status'] === `Digest: ${hostile.image.tagDigest}`), 'RepoDigests record the index digest');
  assert.equal(hostile.count(hostile.manifestPath(hostile.image.otherArch?.digest ?? 'x')), 0, 'the other platform is not fetched');
  const none = await apiPull(d, hostile.ref, '&platform=linux/s390x');
  assert.match(none.error ?? '', /no matching manifest for linux\/s390x/);
});

test('a pull cancelled by its client stops, leaves no image and no scratch; the retry succeeds', { skip }, async (t) => {
  const stall = await startHostileRegistry(t, { mode: 'stall', image: 'busybox' });
  const good = await startHostileRegistry(t, { mode: 'normal', image: 'busybox' });
  const d = await bareDaemon(t, { 'registry-stall-timeout': '60s' });
  const req = http.request({ socketPath: d.socket, method: 'POST', path: `/images/create?fromImage=${encodeURIComponent(`${stall.host}/${stall.repo}`)}&tag=${stall.tag}` });
  req.on('error', () => {});
  req.end();
  await waitFor(async () => (await fs.readdir(path.join(d.graph, 'storage', 'tmp'))).length > 0, { timeoutMs: 15_000, what: 'the layer download to start (its blob in tmp/)' });
  req.destroy();
  await waitFor(async () => (await fs.readdir(path.join(d.graph, 'storage', 'tmp'))).length === 0, { timeoutMs: 10_000, what: 'the cancelled pull to clean up its scratch' });
  assert.deepEqual(await images(d), []);
  await assertStoreClean(d);
  const r = await apiPull(d, good.ref);
  assert.equal(r.error, undefined, r.body);
});

test('kill -9 of isulad in the middle of a pull: after the restart no partial image, and the pull succeeds', { skip }, async (t) => {
  const stall = await startHostileRegistry(t, { mode: 'stall', image: 'busybox' });
  const good = await startHostileRegistry(t, { mode: 'normal', image: 'busybox' });
  const d = await bareDaemon(t, { 'registry-stall-timeout': '60s' });
  const pending = apiPull(d, stall.ref).catch((err: unknown) => ({ status: 0, messages: [], error: String(err), body: '' }));
  await waitFor(() => stall.count(stall.blobPath(stall.image.faultyBlobDigest), 'GET') > 0, { timeoutMs: 15_000, what: 'the layer download to start' });
  await new Promise((r) => setTimeout(r, 200));
  d.proc?.kill('SIGKILL');
  await d.exited();
  await pending;
  await d.start();
  assert.deepEqual(await images(d), []);
  await assertStoreClean(d);
  const r = await apiPull(d, good.ref);
  assert.equal(r.error, undefined, r.body);
  assert.equal((await images(d)).length, 1);
});

test('on a terminal, pull redraws one line per layer in place and ends with each layer complete', { skip }, async (t) => {
  const reg = await startRegistry(t);
  await pushTestImage(reg, { image: 'layered', repo: 'tty/layered' });
  const d = await bareDaemon(t);
  const server = `isula-e2e-${process.pid}-pull`;
  const tmux = async (...args: string[]) => (await run('tmux', ['-L', server, '-f', '/dev/null', ...args], { timeout: 10_000 })).stdout;
  t.after(async () => { await tmux('kill-server').catch(() => {}); });
  const cmd = `${process.execPath} ${ISULA} -H ${d.host} pull ${reg.host}/tty/layered; echo "[exit $?]"; sleep 600`;
  await tmux('new-session', '-d', '-s', 'pull', '-x', '120', '-y', '30', cmd);
  const screen = await waitFor(async () => { const s = await tmux('capture-pane', '-p', '-t', 'pull'); return /\[exit \d+\]/.test(s) ? s : undefined; }, { timeoutMs: 30_000, what: 'the pull to end' });
  assert.match(screen, /\[exit 0\]/, screen);
  const layerLines = screen.split('\n').filter((l) => /^[a-f0-9]{12}: /.test(l));
  assert.equal(layerLines.length, 3, `one line per layer, redrawn in place:\n${screen}`);
  assert.ok(layerLines.every((l) => /: Pull complete\s*$/.test(l)), screen);
  assert.match(screen, /Status: Downloaded newer image/);
});

test('docker\'s CLI pulls through isulad from a registry and shows its progress', { skip }, async (t) => {
  const docker = '/usr/bin/docker';
  const has = await fs.access(docker).then(() => true, () => false);
  if (!has) {
    if (process.env['CI'] === 'true') assert.fail('Debian\'s docker CLI (/usr/bin/docker) is missing');
    t.skip('no /usr/bin/docker');
    return;
  }
  const reg = await startRegistry(t);
  const { digest } = await pushTestImage(reg, { image: 'layered', repo: 'dock/layered' });
  const d = await bareDaemon(t);
  const cfg = path.join(d.root, 'docker-config');
  await fs.mkdir(cfg);
  const r = await run(docker, ['-H', `unix://${d.socket}`, 'pull', `${reg.host}/dock/layered:latest`], { env: { ...process.env, DOCKER_CONFIG: cfg }, timeout: 60_000 });
  assert.match(r.stdout, /Pull complete/);
  assert.match(r.stdout, new RegExp(`Digest: ${digest}`));
});
