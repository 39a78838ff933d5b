import assert from 'node:assert/strict';
import { test } from 'node:test';
import { NETWORK_ID, runIsula, type FakeBehaviour } from './fake-daemon.js';
import { buildNetworkCreateBody, consolidateIpam, formatNetworkList, goTimeString, naturalLess, type NetworkResource } from '../src/network-format.js';
import { displayPorts } from '../src/ps-format.js';

const ID1 = '1a2b3c4d5e6f'.padEnd(64, '7');
const ID2 = '9f8e7d6c5b4a'.padEnd(64, '3');
const BRIDGE_ID = '0123456789ab'.padEnd(64, 'c');

// Shaped like isulad's (docker's) NetworkResource.
const net1: NetworkResource = {
  Name: 'net1', Id: ID1, Created: '2026-11-23T09:17:40.975Z', Scope: 'local', Driver: 'bridge', EnableIPv6: false,
  IPAM: { Driver: 'default', Config: [{ Subnet: '10.88.1.0/24', Gateway: '10.88.1.1' }] }, Internal: true,
  Containers: {}, Labels: { team: 'web', env: 'prod' },
};
const net10: NetworkResource = { ...net1, Name: 'net10', Id: ID2, Internal: false, Labels: {} };
const bridge: NetworkResource = { ...net1, Name: 'bridge', Id: BRIDGE_ID, Internal: false, Labels: {} };
const networks = (): FakeBehaviour => ({ networks: [net10, net1, bridge], networksInUse: ['bridge'] });

test('network create sends docker\'s body and prints the new id', async () => {
  const r = await runIsula({ networks: [] }, ['network', 'create', '--subnet', '10.88.0.0/16', '--gateway', '10.88.0.1', '--internal', '--label', 'a=b=c', '--label', 'bare', 'app']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, `${NETWORK_ID}\n`);
  assert.deepEqual(r.log, ['POST /networks/create']);
  assert.deepEqual(r.bodies.get('/networks/create'), {
    Name: 'app', Driver: 'bridge', Internal: true, Labels: { a: 'b=c', bare: '' },
    IPAM: { Driver: 'default', Config: [{ Subnet: '10.88.0.0/16', Gateway: '10.88.0.1' }] },
  });
});

test('network create without flags asks for a bridge with no IPAM config', async () => {
  const r = await runIsula({ networks: [] }, ['network', 'create', '-d', 'bridge', 'plain']);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(r.bodies.get('/networks/create'), { Name: 'plain', Driver: 'bridge', Internal: false, Labels: {}, IPAM: { Driver: 'default', Config: [] } });
});

test('network create: --gateway without a matching --subnet is a usage error and sends nothing', async () => {
  const r = await runIsula({ networks: [] }, ['network', 'create', '--gateway', '10.88.0.1', 'app']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /no matching subnet for gateway 10\.88\.0\.1/);
  assert.deepEqual(r.log, []);
  const missing = await runIsula({ networks: [] }, ['network', 'create']);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /missing required argument 'name'[\s\S]*See 'isula network create --help'\./);
  const extra = await runIsula({ networks: [] }, ['network', 'create', 'one', 'two']);
  assert.equal(extra.code, 1);
  assert.match(extra.stderr, /too many arguments/);
  assert.deepEqual(extra.log, [], 'nothing sent');
});

test('network create: the daemon\'s refusal is its words, exit 1', async () => {
  const r = await runIsula({ networks: [{ Name: 'app', Id: ID1 }] }, ['network', 'create', 'app']);
  assert.equal(r.code, 1);
  assert.equal(r.stderr, 'Error response from daemon: network with name app already exists\n');
});

test('consolidateIpam: docker\'s subnet and gateway checks', () => {
  assert.deepEqual(consolidateIpam([], []), []);
  assert.deepEqual(consolidateIpam(['10.1.0.0/16', 'fd00::/64'], ['fd00::1', '10.1.0.1']), [
    { Subnet: '10.1.0.0/16', Gateway: '10.1.0.1' }, { Subnet: 'fd00::/64', Gateway: 'fd00::1' },
  ]);
  assert.deepEqual(consolidateIpam(['10.1.0.0/16'], []), [{ Subnet: '10.1.0.0/16' }]);
  assert.throws(() => consolidateIpam(['10.1.0.0/16', '10.1.2.0/24'], []), /multiple overlapping subnet configuration is not allowed/);
  assert.throws(() => consolidateIpam(['10.1.0.0/16'], ['10.2.0.1']), /no matching subnet for gateway 10\.2\.0\.1/);
  assert.throws(() => consolidateIpam(['10.1.0.0/16'], ['10.1.0.1', '10.1.0.2']), /cannot configure multiple gateways \(10\.1\.0\.2, 10\.1\.0\.1\) for the same subnet \(10\.1\.0\.0\/16\)/);
  // As docker: a lone subnet is checked by the daemon; the client parses it only to compare it.
  assert.deepEqual(consolidateIpam(['10.1.0.0'], []), [{ Subnet: '10.1.0.0' }]);
  assert.throws(() => consolidateIpam(['10.1.0.0/16', '10.2.0.0'], []), /invalid subnet: invalid CIDR address: 10\.2\.0\.0/);
  assert.throws(() => consolidateIpam(['10.1.0.0/33'], ['10.1.0.1']), /invalid subnet: invalid CIDR address: 10\.1\.0\.0\/33/);
  assert.deepEqual(buildNetworkCreateBody('n', { subnet: ['10.1.0.0/24,10.2.0.0/24'] }).IPAM.Config, [{ Subnet: '10.1.0.0/24' }, { Subnet: '10.2.0.0/24' }]);
  assert.throws(() => buildNetworkCreateBody('n', { label: ['=x'] }), /invalid argument "=x" for "--label" flag/);
});

test('network ls: docker\'s table, sorted by name in natural order, ids cut to 12', async () => {
  const r = await runIsula(networks(), ['network', 'ls']);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(r.log, ['GET /networks']);
  assert.equal(r.stdout, [
    'NETWORK ID     NAME      DRIVER    SCOPE',
    '0123456789ab   bridge    bridge    local',
    '1a2b3c4d5e6f   net1      bridge    local',
    '9f8e7d6c5b4a   net10     bridge    local',
    '',
  ].join('\n'));
});

test('network ls -q, --no-trunc and filters as the API\'s filters JSON', async () => {
  const q = await runIsula(networks(), ['network', 'list', '-q']);
  assert.equal(q.stdout, '0123456789ab\n1a2b3c4d5e6f\n9f8e7d6c5b4a\n');
  const full = await runIsula(networks(), ['network', 'ls', '-q', '--no-trunc']);
  assert.equal(full.stdout, `${BRIDGE_ID}\n${ID1}\n${ID2}\n`);
  const filtered = await runIsula(networks(), ['network', 'ls', '-f', 'name=net', '-f', 'driver=bridge', '-q']);
  assert.deepEqual(filtered.log, [`GET /networks?filters=${encodeURIComponent('{"name":["net"],"driver":["bridge"]}')}`]);
  assert.equal(filtered.stdout, '1a2b3c4d5e6f\n9f8e7d6c5b4a\n');
  const byId = await runIsula(networks(), ['network', 'ls', '--filter', 'id=9f8e', '--format', '{{.Name}}']);
  assert.equal(byId.stdout, 'net10\n');
  const bad = await runIsula(networks(), ['network', 'ls', '-f', 'name']);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /bad format of filter/);
  assert.deepEqual(bad.log, []);
});

test('network ls --format: docker\'s fields, table, json, and an unknown field before any request', async () => {
  const o = { trunc: true };
  const list = [net10, net1];
  assert.equal(formatNetworkList(list, { ...o, format: '{{.Name}} {{.Internal}} {{.IPv6}} {{.Labels}} {{.Label "team"}}' }), 'net1 true false env=prod,team=web web\nnet10 false false  ');
  assert.equal(formatNetworkList([net1], { ...o, format: '{{.CreatedAt}}' }), '2026-11-23 09:17:40.975 +0000 UTC');
  assert.equal(formatNetworkList([net1], { ...o, format: 'table {{.Name}}\\t{{.Internal}}' }), 'NAME      INTERNAL\nnet1      true');
  assert.equal(formatNetworkList([net1], { ...o, format: '{{json .}}' }),
    '{"CreatedAt":"2026-11-23 09:17:40.975 +0000 UTC","Driver":"bridge","ID":"1a2b3c4d5e6f","IPv6":"false","Internal":"true","Labels":"env=prod,team=web","Name":"net1","Scope":"local"}');
  assert.equal(formatNetworkList([], { ...o }), 'NETWORK ID   NAME      DRIVER    SCOPE');
  const r = await runIsula(networks(), ['network', 'ls', '--format', '{{.Colour}}']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /can't evaluate field Colour/);
  assert.deepEqual(r.log, []);
});

test('naturalLess and Go\'s time printing', () => {
  const names = ['net10', 'b', 'net2', 'A', 'net02', '1x', 'net1'];
  assert.deepEqual(names.sort((a, b) => (naturalLess(a, b) ? -1 : naturalLess(b, a) ? 1 : 0)), ['1x', 'A', 'b', 'net1', 'net2', 'net02', 'net10']);
  assert.equal(goTimeString('2026-11-23T09:17:40Z'), '2026-11-23 09:17:40 +0000 UTC');
  assert.equal(goTimeString('2026-11-23T09:17:40.120000000Z'), '2026-11-23 09:17:40.12 +0000 UTC');
});

test('network inspect: a JSON array indented by 4, then docker\'s "No such network", exit 1', async () => {
  const r = await runIsula(networks(), ['network', 'inspect', 'net1', 'nope', '9f8e7d']);
  assert.equal(r.code, 1);
  assert.deepEqual(r.log, ['GET /networks/net1', 'GET /networks/nope', 'GET /networks/9f8e7d']);
  assert.equal(r.stdout, `${JSON.stringify([net1, net10], null, 4)}\n`);
  assert.match(r.stdout, /^\[\n {4}\{\n {8}"Name": "net1",/);
  assert.equal(r.stderr, 'Error: No such network: nope\n');
  const none = await runIsula(networks(), ['network', 'inspect', 'nope']);
  assert.equal(none.stdout, '[]\n');
  assert.equal(none.code, 1);
});

test('network inspect -f: the template per network; a bad one is docker\'s exit 64', async () => {
  const r = await runIsula(networks(), ['network', 'inspect', '-f', '{{.Name}} {{.Driver}} {{range .IPAM.Config}}{{.Subnet}}{{end}} {{index .Labels "team"}}', 'net1', 'net10']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'net1 bridge 10.88.1.0/24 web\nnet10 bridge 10.88.1.0/24 \n');
  const json = await runIsula(networks(), ['network', 'inspect', '--format', '{{json .IPAM.Config}}', 'bridge']);
  assert.equal(json.stdout, '[{"Subnet":"10.88.1.0/24","Gateway":"10.88.1.1"}]\n');
  const bad = await runIsula(networks(), ['network', 'inspect', '-f', '{{if .Name}}', 'net1']);
  assert.equal(bad.code, 64);
  assert.match(bad.stderr, /^Template parsing error: /);
  assert.deepEqual(bad.log, []);
});

test('network rm echoes each name removed, reports each failure and exits 1', async () => {
  const r = await runIsula(networks(), ['network', 'rm', 'net1', 'bridge', 'nope', '9f8e7d6c5b4a']);
  assert.equal(r.code, 1);
  assert.deepEqual(r.log, ['DELETE /networks/net1', 'DELETE /networks/bridge', 'DELETE /networks/nope', 'DELETE /networks/9f8e7d6c5b4a']);
  assert.equal(r.stdout, 'net1\n9f8e7d6c5b4a\n');
  assert.equal(r.stderr, [
    `Error response from daemon: error while removing network: network bridge id ${BRIDGE_ID} has active endpoints`,
    'Error: No such network: nope',
    '',
  ].join('\n'));
  const ok = await runIsula(networks(), ['network', 'remove', 'net10']);
  assert.equal(ok.code, 0, ok.stderr);
  assert.equal(ok.stdout, 'net10\n');
});

test('network alone prints its help (stderr, exit 0 as docker); an unknown subcommand is an error', async () => {
  const r = await runIsula({}, ['network']);
  assert.equal(r.code, 0);
  assert.equal(r.stdout, '');
  assert.match(r.stderr, /Usage: isula network/);
  for (const sub of ['create', 'ls\\|list', 'inspect', 'connect', 'disconnect', 'rm\\|remove', 'prune']) assert.match(r.stderr, new RegExp(`\\n  ${sub} `));
  const help = await runIsula({}, ['help', 'network']);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /ls\|list \[options\]/);
  const unknown = await runIsula({}, ['network', 'attach']);
  assert.equal(unknown.code, 1);
  assert.match(unknown.stderr, /unknown command 'attach'/);
  const runHelp = await runIsula({}, ['run', '--help']);
  assert.ok(runHelp.stdout.replace(/\s+/g, ' ').includes('--network <mode> connect a container to a network: bridge (default), host, none, container:<name|id>, or a network name'), runHelp.stdout);
});

test('network connect and disconnect send docker\'s bodies and print nothing; the daemon\'s errors are not reworded', async () => {
  const c = await runIsula(networks(), ['network', 'connect', '--ip', '10.88.1.9', 'net1', 'web']);
  assert.deepEqual([c.code, c.stdout, c.stderr], [0, '', '']);
  assert.deepEqual(c.log, ['POST /networks/net1/connect']);
  assert.deepEqual(c.bodies.get('/networks/net1/connect'), { Container: 'web', EndpointConfig: { IPAMConfig: { IPv4Address: '10.88.1.9' } } });
  const plain = await runIsula(networks(), ['network', 'connect', 'net1', 'web']);
  assert.deepEqual(plain.bodies.get('/networks/net1/connect'), { Container: 'web', EndpointConfig: {} });
  const d = await runIsula(networks(), ['network', 'disconnect', '-f', 'net1', 'web']);
  assert.deepEqual([d.code, d.stdout, d.stderr], [0, '', '']);
  assert.deepEqual(d.bodies.get('/networks/net1/disconnect'), { Container: 'web', Force: true });
  const noForce = await runIsula(networks(), ['network', 'disconnect', 'net1', 'web']);
  assert.deepEqual(noForce.bodies.get('/networks/net1/disconnect'), { Container: 'web', Force: false });
  // docker's client: `Error response from daemon: …` for a missing network too (no "No such network").
  const missing = await runIsula(networks(), ['network', 'connect', 'nosuch', 'web']);
  assert.deepEqual([missing.code, missing.stdout, missing.stderr], [1, '', 'Error response from daemon: network nosuch not found\n']);
  const noCtr = await runIsula(networks(), ['network', 'disconnect', 'net1', 'db']);
  assert.deepEqual([noCtr.code, noCtr.stderr], [1, 'Error response from daemon: No such container: db\n']);
  const usage = await runIsula(networks(), ['network', 'connect', 'net1']);
  assert.equal(usage.code, 1);
  assert.match(usage.stderr, /missing required argument 'container'/);
  assert.deepEqual(usage.log, []);
});

test('port prints inspect\'s NetworkSettings.Ports as docker 20.10', async () => {
  const container = { Ports: { '80/tcp': [{ HostIp: '0.0.0.0', HostPort: '8080' }, { HostIp: '::', HostPort: '8080' }], '53/udp': [{ HostIp: '127.0.0.1', HostPort: '5353' }], '443/tcp': null } };
  const all = await runIsula({ container }, ['port', 'web']);
  assert.equal(all.code, 0, all.stderr);
  assert.equal(all.stdout, '53/udp -> 127.0.0.1:5353\n80/tcp -> 0.0.0.0:8080\n80/tcp -> :::8080\n');
  const one = await runIsula({ container }, ['port', 'web', '80']);
  assert.equal(one.stdout, '0.0.0.0:8080\n:::8080\n');
  const udp = await runIsula({ container }, ['port', 'web', '53/udp']);
  assert.equal(udp.stdout, '127.0.0.1:5353\n');
  const unpublished = await runIsula({ container }, ['port', 'web', '443']);
  assert.equal(unpublished.code, 1);
  assert.equal(unpublished.stderr, "Error: No public port '443/tcp' published for web\n");
  const none = await runIsula({}, ['port', 'web']);
  assert.equal(none.code, 0);
  assert.equal(none.stdout, '');
});

test('ps PORTS from the list API\'s Ports, as docker 20.10 prints them', async () => {
  const list = [{
    Id: 'ab'.repeat(32), Names: ['/web'], Image: 'nginx', Command: 'nginx', Created: 0, State: 'running', Status: 'Up 1 second',
    Ports: [{ IP: '0.0.0.0', PrivatePort: 80, PublicPort: 8080, Type: 'tcp' }, { PrivatePort: 443, Type: 'tcp' }],
  }];
  const r = await runIsula({ list }, ['ps', '--format', '{{.Names}}: {{.Ports}}']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'web: 443/tcp, 0.0.0.0:8080->80/tcp\n');
  const table = await runIsula({ list }, ['ps']);
  assert.match(table.stdout.split('\n')[1] ?? '', /Up 1 second {3}443\/tcp, 0\.0\.0\.0:8080->80\/tcp {3}web$/);
});

test('displayPorts: docker 20.10\'s grouping and order', () => {
  const p = (IP: string | undefined, PrivatePort: number, PublicPort: number | undefined, Type = 'tcp') => ({ ...(IP !== undefined && { IP }), PrivatePort, ...(PublicPort !== undefined && { PublicPort }), Type });
  assert.equal(displayPorts([p('0.0.0.0', 80, 8080)]), '0.0.0.0:8080->80/tcp');
  assert.equal(displayPorts([p('0.0.0.0', 80, 8080), p('::', 80, 8080)]), '0.0.0.0:8080->80/tcp, :::8080->80/tcp');
  assert.equal(displayPorts([p(undefined, 81, undefined), p(undefined, 80, undefined), p(undefined, 83, undefined), p(undefined, 53, undefined, 'udp')]), '80-81/tcp, 53/udp, 83/tcp'); // docker prints a closed group first
  assert.equal(displayPorts([p('0.0.0.0', 80, 80), p('0.0.0.0', 81, 81), p('::', 80, 80)]), '0.0.0.0:80-81->80-81/tcp, :::80->80/tcp');
  assert.equal(displayPorts([p('127.0.0.1', 90, 9090), p(undefined, 22, undefined), p('0.0.0.0', 80, 8080)]), '22/tcp, 0.0.0.0:8080->80/tcp, 127.0.0.1:9090->90/tcp');
  assert.equal(displayPorts([]), '');
  assert.equal(displayPorts(null), '');
});
