/**
 * setPodCidr: the kubelet's pod CIDR (CRI UpdateRuntimeConfig) becomes the
 * default network's subnet where isula wrote that conflist and nothing is
 * attached to it; otherwise the configuration stays and the outcome says why.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { podCidrV4 } from '../src/index.js';
import { makeEnv, needs, newId, newSubnet, run, signal } from './helpers.js';

const skip = needs();
const code = (c: string) => (e: unknown): boolean => (e as { code?: string }).code === c;

function rangesOf(file: string): unknown {
  const conf = JSON.parse(fs.readFileSync(file, 'utf8')) as { plugins: { ipam?: { ranges?: unknown } }[] };
  return conf.plugins[0]?.ipam?.ranges;
}

test('pod CIDRs: the IPv4 one of a (dual-stack) list, host bits cleared; malformed ones are NETWORK_CONFIG_INVALID', () => {
  assert.deepEqual(podCidrV4('10.244.1.0/24'), { network: 0x0af40100, prefix: 24 });
  assert.deepEqual(podCidrV4('fd00:10:244:1::/64, 10.244.1.7/24'), { network: 0x0af40100, prefix: 24 });
  assert.equal(podCidrV4('fd00:10:244:1::/64'), undefined);
  for (const bad of ['', '10.244.1.0', '10.244.1.0/31', '10.244.300.0/24', 'fd00::/129', 'x/24']) {
    assert.throws(() => podCidrV4(bad), code('NETWORK_CONFIG_INVALID'), bad);
  }
});

test('before first use the default conflist is written with the pod CIDR; the operator\'s own conflist and an edited one are kept', async (t) => {
  const env = makeEnv(t);
  const driver = env.driver();
  const file = path.join(env.confDir, 'isula-isula.conflist');
  assert.deepEqual(await driver.setPodCidr('10.244.7.0/24', { signal: signal() }), { applied: true });
  assert.deepEqual(rangesOf(file), [[{ subnet: '10.244.7.0/24' }]]);
  assert.deepEqual((await driver.resolve('isula', { signal: signal() }))?.subnets.map((s) => s.subnet), ['10.244.7.0/24']);
  // The same CIDR again: nothing to do.
  assert.deepEqual(await driver.setPodCidr('10.244.7.0/24', { signal: signal() }), { applied: true });
  await assert.rejects(driver.setPodCidr('10.244.7.0/33', { signal: signal() }), code('NETWORK_CONFIG_INVALID'));

  // Edited by hand into two ranges: no longer isula's shape.
  const conf = JSON.parse(fs.readFileSync(file, 'utf8'));
  conf.plugins[0].ipam.ranges = [[{ subnet: '10.244.7.0/25' }], [{ subnet: '10.244.7.128/25' }]];
  fs.writeFileSync(file, JSON.stringify(conf));
  const edited = await driver.setPodCidr('10.244.8.0/24', { signal: signal() });
  assert.equal(edited.applied, false);
  assert.match(edited.reason ?? '', /edited/);
  assert.equal((rangesOf(file) as unknown[]).length, 2, 'the edit is kept');

  // The operator's conflist for the default network, in a file isula did not write.
  const other = makeEnv(t);
  fs.mkdirSync(other.confDir, { recursive: true });
  const mine = path.join(other.confDir, '10-mine.conflist');
  const text = JSON.stringify({ cniVersion: '1.0.0', name: 'isula', plugins: [{ type: 'bridge', bridge: other.bridge, ipam: { type: 'host-local', ranges: [[{ subnet: other.subnet }]] } }] });
  fs.writeFileSync(mine, text);
  const kept = await other.driver().setPodCidr('10.244.9.0/24', { signal: signal() });
  assert.equal(kept.applied, false);
  assert.ok(kept.reason?.includes(mine), kept.reason);
  assert.equal(fs.readFileSync(mine, 'utf8'), text);
  assert.equal(fs.existsSync(path.join(other.confDir, 'isula-isula.conflist')), false, 'no second definition written');
});

test('a pod CIDR that overlaps another network is not applied', async (t) => {
  const env = makeEnv(t);
  const driver = env.driver();
  await driver.create({ name: 'side', subnet: '10.239.20.0/24' }, { signal: signal() });
  const out = await driver.setPodCidr('10.239.0.0/16', { signal: signal() });
  assert.equal(out.applied, false);
  assert.match(out.reason ?? '', /10\.239\.20\.0\/24 of network side/);
  assert.deepEqual(rangesOf(path.join(env.confDir, 'isula-isula.conflist')), [[{ subnet: env.subnet }]]);
});

test('while a container is attached the subnet stays; once it left, new attachments get addresses from the pod CIDR', { skip }, async (t) => {
  const env = makeEnv(t);
  const driver = env.driver();
  const file = path.join(env.confDir, 'isula-isula.conflist');
  const podCidr = newSubnet();
  const prefixOf = (cidr: string): string => cidr.split('.').slice(0, 3).join('.');
  const ipOf = (r: { addresses: { address: string }[] }[]): string => r[0]?.addresses[0]?.address.split('/')[0] ?? '';

  const a = newId();
  env.track.ids.add(a);
  const ra = await driver.attach(env.netns('a'), { id: a, networks: [], portMappings: [] }, { signal: signal() });
  assert.ok(ipOf(ra).startsWith(`${prefixOf(env.subnet)}.`));
  const busy = await driver.setPodCidr(podCidr, { signal: signal() });
  assert.equal(busy.applied, false);
  assert.ok(busy.reason?.includes(a), busy.reason);
  assert.deepEqual(rangesOf(file), [[{ subnet: env.subnet }]], 'the running container keeps its subnet');

  await driver.detach(undefined, { id: a, networks: [], portMappings: [] }, { signal: signal() });
  assert.deepEqual(await driver.setPodCidr(podCidr, { signal: signal() }), { applied: true });
  assert.deepEqual(rangesOf(file), [[{ subnet: podCidr }]]);

  const b = newId();
  env.track.ids.add(b);
  const rb = await driver.attach(env.netns('b'), { id: b, networks: [], portMappings: [] }, { signal: signal() });
  assert.ok(ipOf(rb).startsWith(`${prefixOf(podCidr)}.`), `${ipOf(rb)} in ${podCidr}`);
  assert.equal(rb[0]?.addresses[0]?.gateway, `${prefixOf(podCidr)}.1`);
  // The bridge carries the new gateway only (bridge refuses a second IPv4 address).
  const { stdout } = await run('ip', ['-4', '-o', 'addr', 'show', 'dev', env.bridge]);
  assert.ok(stdout.includes(`${prefixOf(podCidr)}.1/24`), stdout);
  assert.ok(!stdout.includes(`${prefixOf(env.subnet)}.`), stdout);
  await driver.detach(undefined, { id: b, networks: [], portMappings: [] }, { signal: signal() });
});
