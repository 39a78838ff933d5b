import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { CredentialStore } from '../src/registry/credentials.js';
import { parseChallenge } from '../src/registry/client.js';
import { isInsecure, normalizeServer, originEndpoints, pullEndpoints, type RegistrySettings } from '../src/registry/endpoints.js';
import { parsePlatform } from '../src/registry/pull.js';

async function tempDir(t: TestContext): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'isula-registry-unit-'));
  t.after(() => fs.rm(dir, { recursive: true, force: true }));
  return dir;
}

const settings = (over: Partial<RegistrySettings> = {}): RegistrySettings => ({
  mirrors: [], mirrorsByHost: {}, insecure: [], certsDir: '/nonexistent/certs.d', stallTimeoutMs: 30_000, maxConcurrentDownloads: 3, maxConcurrentUploads: 5, ...over,
});

test('WWW-Authenticate challenges: bearer with quoted params (commas inside quotes), basic', () => {
  assert.deepEqual(parseChallenge('Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push"'), {
    scheme: 'bearer', params: { realm: 'https://auth.example/token', service: 'registry.example', scope: 'repository:a/b:pull,push' },
  });
  assert.deepEqual(parseChallenge('Basic realm="Registry Realm"'), { scheme: 'basic', params: { realm: 'Registry Realm' } });
  assert.deepEqual(parseChallenge('Bearer realm=unquoted, error="insufficient_scope"'), { scheme: 'bearer', params: { realm: 'unquoted', error: 'insufficient_scope' } });
});

test('servers are normalised: docker.io aliases, URLs, paths and case', () => {
  assert.equal(normalizeServer('https://index.docker.io/v1/'), 'docker.io');
  assert.equal(normalizeServer('registry-1.docker.io'), 'docker.io');
  assert.equal(normalizeServer(''), 'docker.io');
  assert.equal(normalizeServer('http://127.0.0.1:5000/'), '127.0.0.1:5000');
  assert.equal(normalizeServer('Quay.IO'), 'quay.io');
});

test('insecure registries: listed hosts, host without port, CIDRs, and loopback by default', () => {
  assert.equal(isInsecure('127.0.0.1:5000', []), true);
  assert.equal(isInsecure('localhost:5000', []), true);
  assert.equal(isInsecure('registry.example', []), false);
  assert.equal(isInsecure('registry.example:5000', ['registry.example:5000']), true);
  assert.equal(isInsecure('registry.example:5000', ['registry.example']), true);
  assert.equal(isInsecure('10.1.2.3:5000', ['10.0.0.0/8']), true);
  assert.equal(isInsecure('11.1.2.3:5000', ['10.0.0.0/8']), false);
});

test('endpoints: docker.io mirrors, then per-host mirrors, then the registry; an insecure registry falls back to http', () => {
  const s = settings({ mirrors: ['https://hub-mirror.example'], mirrorsByHost: { 'registry.k8s.io': ['http://127.0.0.1:5000'], 'docker.io': ['http://10.0.0.9:5000'] } });
  assert.deepEqual(pullEndpoints('docker.io', s).map((e) => [e.base, e.mirror]), [
    ['https://hub-mirror.example', true], ['http://10.0.0.9:5000', true], ['https://registry-1.docker.io', false],
  ]);
  const k8s = pullEndpoints('registry.k8s.io', s);
  assert.deepEqual(k8s.map((e) => e.base), ['http://127.0.0.1:5000', 'https://registry.k8s.io']);
  assert.equal(k8s[1]?.tls?.verify, true);
  assert.deepEqual(pullEndpoints('quay.io', s).map((e) => e.base), ['https://quay.io'], 'docker.io mirrors serve only docker.io names');
  assert.deepEqual(originEndpoints('127.0.0.1:5000', s).map((e) => [e.base, e.tls?.verify]), [['https://127.0.0.1:5000', false], ['http://127.0.0.1:5000', undefined]]);
});

test('a certs.d dir adds its CAs to the system ones for that host only', async (t) => {
  const dir = await tempDir(t);
  await fs.mkdir(path.join(dir, 'reg.example:5443'));
  await fs.writeFile(path.join(dir, 'reg.example:5443', 'ca.crt'), '-----BEGIN CERTIFICATE-----\nfake\n-----END CERTIFICATE-----\n');
  const [ep] = originEndpoints('reg.example:5443', settings({ certsDir: dir }));
  assert.ok(ep?.tls?.ca !== undefined && ep.tls.ca.length > 1);
  assert.ok(ep.tls.ca.at(-1)?.includes('fake'));
  const [other] = originEndpoints('other.example', settings({ certsDir: dir }));
  assert.equal(other?.tls?.ca, undefined);
  // Loopback is insecure by default, but a certs.d dir for it means: verify, and no http fallback.
  await fs.mkdir(path.join(dir, '127.0.0.1:5443'));
  await fs.copyFile(path.join(dir, 'reg.example:5443', 'ca.crt'), path.join(dir, '127.0.0.1:5443', 'ca.crt'));
  assert.deepEqual(originEndpoints('127.0.0.1:5443', settings({ certsDir: dir })).map((e) => [e.base, e.tls?.verify]), [['https://127.0.0.1:5443', true]]);
  assert.deepEqual(originEndpoints('127.0.0.1:5443', settings({ certsDir: dir, insecure: ['127.0.0.1:5443'] })).map((e) => [e.base, e.tls?.verify]), [['https://127.0.0.1:5443', false], ['http://127.0.0.1:5443', undefined]]);
});

test('platforms: the default is linux and the host architecture; os/arch[/variant] parsed; garbage refused', () => {
  const p = parsePlatform(undefined);
  assert.equal(p.os, 'linux');
  assert.equal(p.architecture, process.arch === 'x64' ? 'amd64' : process.arch);
  assert.deepEqual(parsePlatform('linux/arm64/v8'), { os: 'linux', architecture: 'arm64', variant: 'v8' });
  assert.deepEqual(parsePlatform('linux/x86_64'), { os: 'linux', architecture: 'amd64' });
  assert.throws(() => parsePlatform('linux'), { code: 'IMAGE_REFERENCE_INVALID' });
});

test('credentials are sealed at rest in 0600 files under a 0700 dir, bound to their host, and survive a reopen', async (t) => {
  const dir = path.join(await tempDir(t), 'auths');
  const store = await CredentialStore.open(dir);
  assert.equal(await store.get('127.0.0.1:5000'), undefined);
  await store.set('http://127.0.0.1:5000/', { username: 'alice', password: 's3cret-pass' });
  assert.equal((await fs.stat(dir)).mode & 0o777, 0o700);
  assert.equal((await fs.stat(path.join(dir, 'auths.json'))).mode & 0o777, 0o600);
  assert.equal((await fs.stat(path.join(dir, 'aeskey'))).mode & 0o777, 0o600);
  const text = await fs.readFile(path.join(dir, 'auths.json'), 'utf8');
  assert.ok(!text.includes('alice') && !text.includes('s3cret-pass'), 'neither the user nor the password is in the file');
  assert.ok(!text.includes(Buffer.from('alice:s3cret-pass').toString('base64')), 'not docker-style base64 either');

  const reopened = await CredentialStore.open(dir);
  assert.deepEqual(await reopened.get('127.0.0.1:5000'), { username: 'alice', password: 's3cret-pass' });

  // An entry moved to another host's slot does not open (the host is authenticated data).
  const doc = JSON.parse(text) as { auths: Record<string, { auth: string }> };
  doc.auths['evil.example'] = doc.auths['127.0.0.1:5000'] as { auth: string };
  await fs.writeFile(path.join(dir, 'auths.json'), JSON.stringify(doc));
  assert.equal(await (await CredentialStore.open(dir)).get('evil.example'), undefined);

  // Without the key the file is useless.
  await fs.writeFile(path.join(dir, 'aeskey'), Buffer.alloc(32, 7));
  assert.equal(await (await CredentialStore.open(dir)).get('127.0.0.1:5000'), undefined);

  assert.equal(await reopened.remove('127.0.0.1:5000'), true);
  assert.equal(await reopened.remove('127.0.0.1:5000'), false);
  assert.equal(await (await CredentialStore.open(dir)).get('127.0.0.1:5000'), undefined);
});
