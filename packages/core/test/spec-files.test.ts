/** writeContainerFiles: the hostname, hosts and resolv.conf docker bind-mounts into a container. */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { isIsulaError } from '../src/errors.js';
import { buildResolvConf, filterResolvConf, writeContainerFiles } from '../src/spec/index.js';

async function tempDir(t: TestContext): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'isula-spec-files-'));
  t.after(() => fs.rm(dir, { recursive: true, force: true }));
  return dir;
}

test('writes hostname, hosts with extra hosts, and the host resolv.conf minus loopback resolvers', async (t) => {
  const dir = await tempDir(t);
  const hostResolv = path.join(dir, 'host-resolv.conf');
  await fs.writeFile(hostResolv, '# generated\nnameserver 127.0.0.53\nnameserver 10.0.0.2\nnameserver ::1\nsearch corp.example\noptions edns0\n');
  const ctr = path.join(dir, 'ctr');
  await writeContainerFiles(ctr, { hostname: 'web', domainname: 'example.org', extraHosts: ['db:10.1.2.3', 'v6:fe80::1'], hostResolvConf: hostResolv });
  assert.equal(await fs.readFile(path.join(ctr, 'hostname'), 'utf8'), 'web\n');
  const hosts = await fs.readFile(path.join(ctr, 'hosts'), 'utf8');
  assert.equal(
    hosts,
    [
      '127.0.0.1\tlocalhost',
      '::1\tlocalhost ip6-localhost ip6-loopback',
      'fe00::0\tip6-localnet',
      'ff00::0\tip6-mcastprefix',
      'ff02::1\tip6-allnodes',
      'ff02::2\tip6-allrouters',
      '10.1.2.3\tdb',
      'fe80::1\tv6',
      '127.0.1.1\tweb.example.org web',
      '',
    ].join('\n'),
  );
  assert.equal(await fs.readFile(path.join(ctr, 'resolv.conf'), 'utf8'), '# generated\nnameserver 10.0.0.2\nsearch corp.example\noptions edns0\n');
  for (const f of ['hostname', 'hosts', 'resolv.conf']) assert.equal((await fs.stat(path.join(ctr, f))).mode & 0o777, 0o644, f);
  assert.deepEqual((await fs.readdir(ctr)).sort(), ['hostname', 'hosts', 'resolv.conf'], 'no temp files left behind');
});

test('--dns, --dns-search and --dns-option replace the host values; "." means no search', () => {
  const host = 'nameserver 10.0.0.2\nsearch corp.example\noptions ndots:2\n';
  assert.equal(buildResolvConf(host, { dns: ['1.1.1.1', '9.9.9.9'] }), 'search corp.example\nnameserver 1.1.1.1\nnameserver 9.9.9.9\noptions ndots:2\n');
  assert.equal(buildResolvConf(host, { dnsSearch: ['.'], dnsOptions: ['rotate'] }), 'nameserver 10.0.0.2\noptions rotate\n');
  assert.equal(filterResolvConf('nameserver 127.0.0.1\n'), 'nameserver 8.8.8.8\nnameserver 8.8.4.4\n', 'only loopback resolvers: docker falls back to public ones');
});

test('a malformed extra host, hostname or resolver is CONTAINER_CONFIG_INVALID and nothing is written', async (t) => {
  const dir = await tempDir(t);
  const ctr = path.join(dir, 'ctr');
  await assert.rejects(writeContainerFiles(ctr, { hostname: 'h', extraHosts: ['no-ip'] }), (e) => isIsulaError(e, 'CONTAINER_CONFIG_INVALID'));
  await assert.rejects(writeContainerFiles(ctr, { hostname: 'h\n10.0.0.1 bank' }), (e) => isIsulaError(e, 'CONTAINER_CONFIG_INVALID'));
  await assert.rejects(writeContainerFiles(ctr, { hostname: 'h', dns: ['1.1.1.1\nnameserver 6.6.6.6'] }), (e) => isIsulaError(e, 'CONTAINER_CONFIG_INVALID'));
  await assert.rejects(fs.stat(path.join(ctr, 'hosts')), { code: 'ENOENT' });
});
