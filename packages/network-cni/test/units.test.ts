/**
 * Parts that need no root: options, conflist parsing and the conf dir,
 * result parsing per spec version, plugin stdin, CNI_ARGS, subnet picking,
 * and the runner against small shell plugins (a plugin that fails with
 * error JSON, one that hangs: behaviours the real plugins cannot be made to
 * show on demand).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { createHooks, defaultConfig, EventBus, PLUGIN_API_VERSION } from '@isula/core';
import type { NetworkDriver, PluginHost } from '@isula/core';
import plugin, { bridgeConfList, CniRunner, cniArgs, loadConfDir, parseConfList, parseOptions, pluginStdin, summarizeResult } from '../src/index.js';
import { overlaps, parseCidr, pickFreeSubnet } from '../src/ipv4.js';
import { publishingNetwork } from '../src/ports.js';
import { masqChainName } from '../src/iptables.js';
import { log } from './helpers.js';

const code = (c: string) => (e: unknown): boolean => (e as { code?: string }).code === c;

function tmpdir(t: { after: (fn: () => void) => void }): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'isula-cni-unit-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test('options: defaults, and a bad option is PLUGIN_OPTIONS_INVALID naming it', () => {
  assert.deepEqual(parseOptions(undefined), { defaultNetwork: 'isula', bridge: 'isula0', subnet: '10.231.0.0/16', pluginTimeoutMs: 60_000 });
  assert.deepEqual(parseOptions({ defaultNetwork: 'n1', bridge: 'br-n1', subnet: '10.9.8.7/24', pluginTimeout: '5s' }),
    { defaultNetwork: 'n1', bridge: 'br-n1', subnet: '10.9.8.0/24', pluginTimeoutMs: 5000 });
  for (const bad of [{ bridge: 'a-very-long-bridge-name' }, { subnet: '10.0.0.0/33' }, { subnet: 'fe80::/64' }, { defaultNetwork: 'bad/name' },
    { defaultNetwork: 'bridge' }, { pluginTimeout: 60 }, { colour: 'blue' }, 'isula']) {
    assert.throws(() => parseOptions(bad), (e: { code?: string; message?: string }) => e.code === 'PLUGIN_OPTIONS_INVALID' && (e.message ?? '').includes('@isula/network-cni'), JSON.stringify(bad));
  }
});

test('the plugin registers one driver and taps attach/detach; apply touches nothing', async () => {
  const config = { ...defaultConfig({ graph: '/nonexistent/graph' }), 'cni-conf-dir': '/nonexistent/net.d' };
  const host: PluginHost = { apiVersion: PLUGIN_API_VERSION, hooks: createHooks(), logger: log, config, emitEvent() {}, events: new EventBus() };
  assert.throws(() => plugin.apply(host, { nope: true }), code('PLUGIN_OPTIONS_INVALID'));
  await plugin.apply(host, {});
  const drivers: NetworkDriver[] = [];
  await host.hooks.registerNetworkDrivers.promise({ register: (d) => { drivers.push(d); } });
  assert.equal(drivers.length, 1);
  assert.equal(drivers[0]?.name, 'cni');
  assert.ok(host.hooks.attachNetwork.taps.some((tap) => tap.name === '@isula/network-cni'));
  assert.ok(host.hooks.detachNetwork.taps.some((tap) => tap.name === '@isula/network-cni'));
  // 1.11: its disconnect moves published ports, which only a 1.11 core follows (NetworkDriver.attachment).
  assert.equal(plugin.apiVersion, '^1.11.0');
  // Detach of a container never attached is a no-op, even with nothing on disk.
  await host.hooks.detachNetwork.promise({ netnsPath: undefined, request: { id: 'abc', networks: [], portMappings: [] }, results: [], signal: AbortSignal.timeout(5000) });
  assert.equal(fs.existsSync('/nonexistent'), false);
});

test('conflists: single-plugin confs are wrapped, versions and names checked', () => {
  const single = parseConfList({ cniVersion: '0.4.0', name: 'one', type: 'bridge', bridge: 'br0' }, true);
  assert.deepEqual(single.plugins, [{ type: 'bridge', bridge: 'br0' }]);
  assert.equal(single.name, 'one');
  assert.equal(single.cniVersion, '0.4.0');
  for (const v of ['0.3.0', '0.3.1', '0.4.0', '1.0.0']) assert.equal(parseConfList({ cniVersion: v, name: 'n', plugins: [{ type: 'bridge' }] }).cniVersion, v);
  for (const bad of [
    { cniVersion: '0.2.0', name: 'n', plugins: [{ type: 'bridge' }] },
    { cniVersion: '1.0.0', name: 'n/x', plugins: [{ type: 'bridge' }] },
    { cniVersion: '1.0.0', name: 'n', plugins: [] },
    { cniVersion: '1.0.0', name: 'n', plugins: [{ type: '../../bin/sh' }] },
    { cniVersion: '1.0.0', name: 'n' },
    [1, 2],
  ]) {
    assert.throws(() => parseConfList(bad), JSON.stringify(bad));
  }
});

test('the conf dir: conflists before confs, first file wins a name, broken files reported with their name', async (t) => {
  const dir = tmpdir(t);
  const list = (name: string, bridge: string) => JSON.stringify({ cniVersion: '1.0.0', name, plugins: [{ type: 'bridge', bridge }] });
  fs.writeFileSync(path.join(dir, '10-a.conf'), JSON.stringify({ cniVersion: '1.0.0', name: 'a', type: 'bridge', bridge: 'from-conf' }));
  fs.writeFileSync(path.join(dir, '20-a.conflist'), list('a', 'from-list'));
  fs.writeFileSync(path.join(dir, '30-a.conflist'), list('a', 'later'));
  fs.writeFileSync(path.join(dir, '40-b.conflist'), '{"name": "b", "cniVersion": "9.9.9", "plugins": [{"type": "x"}]}');
  fs.writeFileSync(path.join(dir, '50-c.conflist'), 'not json');
  fs.writeFileSync(path.join(dir, 'README.md'), 'ignored');
  fs.writeFileSync(path.join(dir, '.isula-x.conflist.tmp-1-2'), 'ignored');
  const loaded = await loadConfDir(dir);
  assert.deepEqual(loaded.networks.map((n) => [n.list.name, n.list.plugins[0]?.['bridge']]), [['a', 'from-list']]);
  assert.deepEqual(loaded.invalid.map((i) => [path.basename(i.file), i.name]), [['40-b.conflist', 'b'], ['50-c.conflist', undefined]]);
  assert.ok(loaded.invalid.every((i) => i.reason.includes(i.file)), 'each reason names its file');
  assert.deepEqual(await loadConfDir(path.join(dir, 'missing')), { networks: [], invalid: [] });
});

test('results: 1.0.0 and 0.4.0 forms give addresses, routes, DNS and the sandbox MAC', () => {
  const v1 = {
    cniVersion: '1.0.0',
    interfaces: [{ name: 'br0', mac: 'aa:aa:aa:aa:aa:aa' }, { name: 'veth1', mac: 'bb:bb:bb:bb:bb:bb' }, { name: 'eth0', mac: 'cc:cc:cc:cc:cc:cc', sandbox: '/run/netns/x' }],
    ips: [{ interface: 2, address: '10.1.0.5/24', gateway: '10.1.0.1' }, { interface: 0, address: '10.1.0.1/24' }],
    routes: [{ dst: '0.0.0.0/0', gw: '10.1.0.1' }],
    dns: { nameservers: ['10.1.0.1'], domain: 'cluster.local', search: ['svc.cluster.local'], options: ['ndots:5'] },
  };
  assert.deepEqual(summarizeResult('n', v1, 'eth0', undefined), {
    network: 'n',
    addresses: [{ address: '10.1.0.5/24', gateway: '10.1.0.1', interface: 'eth0' }],
    routes: [{ dst: '0.0.0.0/0', gw: '10.1.0.1' }],
    dns: { nameservers: ['10.1.0.1'], search: ['cluster.local', 'svc.cluster.local'], options: ['ndots:5'] },
    mac: 'cc:cc:cc:cc:cc:cc',
  });
  const v04 = { cniVersion: '0.4.0', interfaces: [{ name: 'eth0', mac: 'dd:dd:dd:dd:dd:dd', sandbox: '/x' }], ips: [{ version: '4', interface: 0, address: '10.2.0.2/16' }], dns: {} };
  const s = summarizeResult('m', v04, 'eth0', [{ hostPort: 80, containerPort: 80, protocol: 'tcp' }]);
  assert.deepEqual(s.addresses, [{ address: '10.2.0.2/16', interface: 'eth0' }]);
  assert.equal(s.mac, 'dd:dd:dd:dd:dd:dd');
  assert.deepEqual(s.portMappings, [{ hostPort: 80, containerPort: 80, protocol: 'tcp' }]);
  const v02 = { cniVersion: '0.2.0', ip4: { ip: '10.3.0.2/24', gateway: '10.3.0.1', routes: [{ dst: '0.0.0.0/0' }] } };
  assert.deepEqual(summarizeResult('o', v02, 'eth0', undefined).addresses, [{ address: '10.3.0.2/24', gateway: '10.3.0.1', interface: 'eth0' }]);
});

test('plugin stdin: list name and version, prevResult, runtimeConfig only for declared capabilities', () => {
  const list = parseConfList({ cniVersion: '1.0.0', name: 'net', plugins: [{ type: 'bridge' }, { type: 'portmap', capabilities: { portMappings: true } }] });
  const rt = { containerId: 'c', netns: '/ns', ifName: 'eth0', capabilityArgs: { portMappings: [{ hostPort: 8080, containerPort: 80, protocol: 'tcp' as const, hostIp: '127.0.0.1' }] } };
  const bridge = pluginStdin(list, list.plugins[0] as never, rt, undefined);
  assert.deepEqual(bridge, { type: 'bridge', name: 'net', cniVersion: '1.0.0' });
  const portmap = pluginStdin(list, list.plugins[1] as never, rt, { cniVersion: '1.0.0', ips: [] });
  assert.deepEqual(portmap['runtimeConfig'], { portMappings: [{ hostPort: 8080, containerPort: 80, protocol: 'tcp', hostIP: '127.0.0.1' }] });
  assert.deepEqual(portmap['prevResult'], { cniVersion: '1.0.0', ips: [] });
  assert.equal(cniArgs(undefined), '');
  assert.equal(cniArgs({ K8S_POD_NAME: 'p', IP: '10.0.0.9' }), 'IgnoreUnknown=1;K8S_POD_NAME=p;IP=10.0.0.9');
  assert.throws(() => cniArgs({ 'a;b': 'c' }), code('NETWORK_CONFIG_INVALID'));
});

test('ports go to the first network that can map them; on internal networks alone, to none', () => {
  const list = (name: string, internal: boolean) => parseConfList(bridgeConfList({ name, bridge: `br-${name}`, subnet: '10.9.0.0/24', internal, dataDir: '/nonexistent' }));
  const [inner, outer, other] = [list('inner', true), list('outer', false), list('other', false)];
  assert.equal(publishingNetwork([outer]), 0);
  assert.equal(publishingNetwork([inner, outer]), 1, 'an internal network first: the ports go to the ordinary one, as Docker\'s gateway endpoint');
  assert.equal(publishingNetwork([outer, other]), 0, 'two that can: the first only');
  assert.equal(publishingNetwork([inner]), -1);
  assert.equal(publishingNetwork([]), -1, 'none: loopback only');
  const noCapability = parseConfList({ cniVersion: '1.0.0', name: 'plain', plugins: [{ type: 'bridge' }, { type: 'portmap' }] });
  assert.equal(publishingNetwork([noCapability]), -1, 'portmap without the declared capability gets no mappings (libcni\'s rule)');
});

test('subnets: overlap, and a free /24 skips taken ones', () => {
  const c = (s: string) => parseCidr(s) ?? assert.fail(s);
  assert.ok(overlaps(c('10.0.0.0/8'), c('10.5.0.0/16')));
  assert.ok(!overlaps(c('10.1.0.0/24'), c('10.1.1.0/24')));
  assert.equal(parseCidr('10.1.2.3/33'), undefined);
  const picked = pickFreeSubnet([c('10.232.0.0/24'), c('10.232.1.0/24'), c('10.232.2.0/23')]);
  assert.equal(picked && `${picked.network >>> 24}.${(picked.network >>> 16) & 255}.${(picked.network >>> 8) & 255}`, '10.232.4');
  // bridge's masquerade chain name, checked against what bridge 1.1.1 wrote for ("isula", "smoke1").
  assert.equal(masqChainName('isula', 'smoke1'), 'CNI-daf44185a1e45b7161d6e62d');
});

test('runner: a plugin\'s error JSON, a missing binary, a hanging plugin', async (t) => {
  const bin = tmpdir(t);
  fs.writeFileSync(path.join(bin, 'fake-error'), '#!/bin/sh\ncat >/dev/null\necho \'{"cniVersion":"1.0.0","code":11,"msg":"try again later","details":"the fake is busy"}\'\nexit 1\n', { mode: 0o755 });
  const pidFile = path.join(bin, 'hang.pid');
  fs.writeFileSync(path.join(bin, 'fake-hang'), `#!/bin/sh\necho $$ > ${pidFile}\nexec sleep 30\n`, { mode: 0o755 });
  fs.writeFileSync(path.join(bin, 'fake-env'), '#!/bin/sh\nin=$(cat)\nprintf \'{"cniVersion":"1.0.0","env":"%s|%s|%s|%s|%s","ips":[]}\' "$CNI_COMMAND" "$CNI_CONTAINERID" "$CNI_IFNAME" "$CNI_PATH" "$CNI_ARGS"\n', { mode: 0o755 });
  const runner = new CniRunner({ binDirs: ['/nonexistent', bin], timeoutMs: 500, log });
  const rt = { containerId: 'c1', netns: '', ifName: 'eth0', args: { A: 'b' } };
  const list = (type: string) => parseConfList({ cniVersion: '1.0.0', name: 'n', plugins: [{ type }] });

  const env = await runner.addNetworkList(list('fake-env'), rt);
  assert.equal((env as { env?: string }).env, `ADD|c1|eth0|/nonexistent:${bin}|IgnoreUnknown=1;A=b`);
  await assert.rejects(runner.addNetworkList(list('fake-error'), rt),
    (e: { code?: string; message?: string; details?: { cniCode?: number } }) => e.code === 'NETWORK_PLUGIN_FAILED'
      && (e.message ?? '').includes('fake-error') && (e.message ?? '').includes('try again later') && e.details?.cniCode === 11);
  await assert.rejects(runner.addNetworkList(list('fake-missing'), rt),
    (e: { code?: string; message?: string }) => e.code === 'NETWORK_PLUGIN_NOT_FOUND' && (e.message ?? '').includes('fake-missing') && (e.message ?? '').includes(bin));
  const started = Date.now();
  await assert.rejects(runner.addNetworkList(list('fake-hang'), rt), code('TIMEOUT'));
  assert.ok(Date.now() - started < 5000);
  const pid = Number(fs.readFileSync(pidFile, 'utf8'));
  assert.throws(() => process.kill(pid, 0), 'the hanging plugin was killed');
  const ac = new AbortController();
  const pending = runner.addNetworkList(list('fake-hang'), rt, { signal: ac.signal });
  ac.abort();
  await assert.rejects(pending, code('CANCELED'));
  if (fs.existsSync('/usr/lib/cni/loopback')) {
    const real = new CniRunner({ binDirs: ['/usr/lib/cni'], log });
    assert.ok((await real.pluginVersions('loopback')).includes('1.0.0'));
  }
});
