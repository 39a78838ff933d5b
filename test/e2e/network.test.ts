/**
 * Networking end to end with the real CNI plugins (/usr/lib/cni): the
 * default bridge, published ports, host/none/container: modes, user
 * networks, DNS and hosts files, and no leaks. Each daemon gets its own
 * bridge name, subnet and conf dir, so suites running at once never share a
 * network; traffic stays on loopback and inside the namespaces made here.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { cniPrerequisites, netDaemon } from '../lib/net-daemon.js';
import { daemon, inspect, ok } from '../lib/containers.js';
import { httpRequest, type TestDaemon, waitFor } from '../lib/harness.js';

const run = promisify(execFile);

const skip = await cniPrerequisites('network tests', ['/usr/bin/unshare', '/usr/sbin/iptables-save']);


async function ipOf(d: TestDaemon, name: string): Promise<string> {
  const info = await inspect<{ NetworkSettings: { IPAddress: string } }>(d, name);
  return info.NetworkSettings.IPAddress;
}

/**
 * Nothing of containers `ids` left: netns file, IPAM lease, iptables rule;
 * and the default bridge has only the ports of the `running` containers still on it.
 */
async function assertNoNetworkTrace(d: TestDaemon & { bridge: string }, ids: string[], running = 0): Promise<void> {
  const netnsDir = path.join(d.state, 'netns');
  const left = await fs.readdir(netnsDir).catch(() => [] as string[]);
  for (const id of ids) assert.ok(!left.includes(id), `netns of ${id.slice(0, 12)} removed`);
  const ports = (await run('ip', ['-o', 'link', 'show', 'master', d.bridge]).catch(() => ({ stdout: '' }))).stdout.split('\n').filter((l) => l.trim() !== '');
  assert.equal(ports.length, running, `${running} veth(s) on ${d.bridge}: ${ports.join('; ')}`);
  const leases = await leaseFiles(d);
  for (const id of ids) assert.ok(!leases.some((l) => l.owner.includes(id)), `no IPAM lease of ${id.slice(0, 12)}: ${JSON.stringify(leases)}`);
  const rules = (await run('iptables-save', [])).stdout;
  for (const id of ids) assert.ok(!rules.includes(id), `no iptables rule mentions ${id.slice(0, 12)}`);
}

/** No container of `d` is networked: no netns, no veth on the bridge, no lease. */
async function assertNetworkQuiet(d: TestDaemon & { bridge: string }): Promise<void> {
  assert.deepEqual(await fs.readdir(path.join(d.state, 'netns')).catch(() => [] as string[]), [], 'no netns left');
  const ports = (await run('ip', ['-o', 'link', 'show', 'master', d.bridge]).catch(() => ({ stdout: '' }))).stdout.trim();
  assert.equal(ports, '', `no veth left on ${d.bridge}`);
  assert.deepEqual(await leaseFiles(d), [], 'no IPAM lease left');
}

async function leaseFiles(d: TestDaemon): Promise<{ file: string; owner: string }[]> {
  const root = path.join(d.graph, 'cni', 'networks');
  const out: { file: string; owner: string }[] = [];
  for (const netName of await fs.readdir(root).catch(() => [] as string[])) {
    for (const f of await fs.readdir(path.join(root, netName)).catch(() => [] as string[])) {
      if (!/^\d+\.\d+\.\d+\.\d+$/.test(f)) continue;
      out.push({ file: path.join(root, netName, f), owner: await fs.readFile(path.join(root, netName, f), 'utf8').catch(() => '') });
    }
  }
  return out;
}

function get(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { timeout: 3000 }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => { body += c.toString(); });
      res.on('end', () => resolve(body));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => { const p = (s.address() as net.AddressInfo).port; s.close(() => resolve(p)); });
    s.on('error', reject);
  });
}

test('the default bridge: two containers ping each other, inspect shows their addresses, rm leaves nothing', { skip }, async (t) => {
  const d = await netDaemon(t);
  const a = ok(await d.isula(['run', '-d', '--name', 'na', 'busybox', 'sleep', '300'])).trim();
  const b = ok(await d.isula(['run', '-d', '--name', 'nb', 'busybox', 'sleep', '300'])).trim();
  const ipA = await ipOf(d, 'na');
  const ipB = await ipOf(d, 'nb');
  assert.match(ipA, /^10\.\d+\.\d+\.\d+$/);
  assert.notEqual(ipA, ipB);
  const info = await inspect<{ NetworkSettings: { Networks: Record<string, { IPAddress: string; Gateway: string; MacAddress: string }>; SandboxKey: string } }>(d, 'na');
  assert.equal(info.NetworkSettings.Networks['bridge']?.IPAddress, ipA);
  assert.match(info.NetworkSettings.Networks['bridge']?.MacAddress ?? '', /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/);
  assert.ok(info.NetworkSettings.SandboxKey.startsWith(path.join(d.state, 'netns')));
  const ping = await d.isula(['exec', 'na', 'busybox', 'ping', '-c', '1', '-W', '3', ipB]);
  assert.equal(ping.code, 0, ping.stdout + ping.stderr);
  const hosts = ok(await d.isula(['exec', 'na', 'cat', '/etc/hosts']));
  assert.match(hosts, new RegExp(`^${ipA.replace(/\./g, '\\.')}\\s+${a.slice(0, 12)}`, 'm'), hosts);
  // Stop releases the address; start attaches again.
  ok(await d.isula(['stop', '-t', '0', 'nb']));
  assert.equal(await ipOf(d, 'nb'), '');
  await assertNoNetworkTrace(d, [b], 1);
  ok(await d.isula(['start', 'nb']));
  assert.match(await ipOf(d, 'nb'), /^10\./);
  ok(await d.isula(['rm', '-f', 'na', 'nb']));
  await assertNoNetworkTrace(d, [a, b]);
});

test('a published port reaches busybox httpd on 127.0.0.1; -P picks free ports; a port in use is refused cleanly', { skip }, async (t) => {
  const d = await netDaemon(t);
  const port = await freePort();
  const id = ok(await d.isula(['run', '-d', '--name', 'web', '-p', `${port}:80`, 'busybox', 'sh', '-c', 'mkdir /www && echo hello-from-httpd > /www/index.html && exec httpd -f -p 80 -h /www'])).trim();
  const body = await waitFor(async () => (await get(`http://127.0.0.1:${port}/`).catch(() => undefined)), { timeoutMs: 10_000, what: 'httpd to answer on the published port' });
  assert.equal(body.trim(), 'hello-from-httpd');
  // And on the host's own addresses (still traffic inside this machine).
  const hostIp = (await run('ip', ['-4', '-o', 'addr', 'show', 'scope', 'global'])).stdout.split('\n').map((l) => /inet (\d+\.\d+\.\d+\.\d+)\//.exec(l)?.[1]).find((x) => x !== undefined && !x.startsWith('10.2'));
  if (hostIp !== undefined) assert.equal((await get(`http://${hostIp}:${port}/`)).trim(), 'hello-from-httpd', `published on ${hostIp}`);
  assert.match(ok(await d.isula(['port', 'web'])), new RegExp(`80/tcp -> 0\\.0\\.0\\.0:${port}`));

  const busy = await d.isula(['run', '-d', '--name', 'clash', '-p', `${port}:80`, 'busybox', 'sleep', '300']);
  assert.notEqual(busy.code, 0);
  assert.match(busy.stderr, /port is already allocated/);
  const clash = await inspect<{ Id: string; State: { Running: boolean } }>(d, 'clash');
  assert.equal(clash.State.Running, false);

  const all = ok(await d.isula(['run', '-d', '--name', 'all', '-P', '--expose', '8080', 'busybox', 'sleep', '300'])).trim();
  const ports = await inspect<{ NetworkSettings: { Ports: Record<string, { HostPort: string }[] | null> } }>(d, 'all');
  const chosen = Number(ports.NetworkSettings.Ports['8080/tcp']?.[0]?.HostPort);
  assert.ok(chosen > 0, JSON.stringify(ports.NetworkSettings.Ports));
  // ps's publish filter looks at the host side, expose at the container side (docker's list.go).
  const psNames = async (f: string) => ok(await d.isula(['ps', '--filter', f, '--format', '{{.Names}}'])).split('\n').filter(Boolean).sort();
  assert.deepEqual(await psNames(`publish=${port}`), ['web']);
  assert.deepEqual(await psNames(`publish=${chosen}`), ['all']);
  assert.deepEqual(await psNames('expose=80'), ['web']);
  ok(await d.isula(['rm', '-f', 'web', 'clash', 'all']));
  await assertNoNetworkTrace(d, [id, clash.Id, all]);
});

test('--network host sees the host\'s interfaces, none only lo, container: shares another\'s namespace', { skip }, async (t) => {
  const d = await netDaemon(t);
  // Other tests add and remove veths meanwhile: the container sees what the host had
  // throughout, and nothing the host did not have at some point.
  const before = await fs.readdir('/sys/class/net');
  const inHost = ok(await d.isula(['run', '--rm', '--network', 'host', 'busybox', 'ls', '/sys/class/net'])).split(/\s+/).filter(Boolean).sort();
  const after = await fs.readdir('/sys/class/net');
  const throughout = before.filter((i) => after.includes(i));
  assert.deepEqual(throughout.filter((i) => !inHost.includes(i)), [], `the host's interfaces are all there: ${inHost.join(' ')}`);
  // A veth another test made and removed between the two readdirs was the host's for a moment.
  assert.deepEqual(inHost.filter((i) => !before.includes(i) && !after.includes(i) && !/^veth/.test(i)), [], 'nothing but the host\'s');
  assert.ok(inHost.includes('lo') && throughout.some((i) => i !== 'lo' && inHost.includes(i)), 'more than lo: the host\'s namespace');
  // Ports of a host container are published nowhere, and create says so as docker's does.
  const hostPorts = await d.isula(['create', '--network', 'host', '-p', '18089:80', 'busybox', 'true']);
  assert.equal(hostPorts.code, 0, hostPorts.stderr);
  assert.match(hostPorts.stderr, /^WARNING: Published ports are discarded when using host network mode$/m);
  ok(await d.isula(['rm', hostPorts.stdout.trim()]));
  const none = ok(await d.isula(['run', '--rm', '--network', 'none', 'busybox', 'ls', '/sys/class/net'])).split(/\s+/).filter(Boolean);
  assert.deepEqual(none, ['lo']);
  ok(await d.isula(['run', '-d', '--name', 'owner', 'busybox', 'sleep', '300']));
  const mac = ok(await d.isula(['exec', 'owner', 'cat', '/sys/class/net/eth0/address'])).trim();
  const shared = ok(await d.isula(['run', '--rm', '--network', 'container:owner', 'busybox', 'cat', '/sys/class/net/eth0/address'])).trim();
  assert.equal(shared, mac);
  const stopped = await d.isula(['create', '--name', 'sleeper', 'busybox', 'true']);
  assert.equal(stopped.code, 0, stopped.stderr);
  const join = await d.isula(['run', '--rm', '--network', 'container:sleeper', 'busybox', 'true']);
  assert.notEqual(join.code, 0);
  assert.match(join.stderr, /non running container/);
  ok(await d.isula(['rm', '-f', 'owner', 'sleeper']));
  await assertNetworkQuiet(d);
});

test('a user network from isula network create isolates from the default one; rm is refused while in use', { skip }, async (t) => {
  const d = await netDaemon(t);
  const third = d.subnet.split('.')[2] ?? '0';
  const subnet = `10.241.${third}.0/24`;
  const created = ok(await d.isula(['network', 'create', '--subnet', subnet, 'usernet'])).trim();
  assert.match(created, /^[0-9a-f]{12,64}$/);
  assert.match(ok(await d.isula(['network', 'ls'])), /usernet/);
  ok(await d.isula(['run', '-d', '--name', 'd1', 'busybox', 'sleep', '300']));
  ok(await d.isula(['run', '-d', '--name', 'u1', '--network', 'usernet', 'busybox', 'sleep', '300']));
  ok(await d.isula(['run', '-d', '--name', 'u2', '--network', 'usernet', 'busybox', 'sleep', '300']));
  const ipD1 = await ipOf(d, 'd1');
  const ipU2 = (await inspect<{ NetworkSettings: { Networks: Record<string, { IPAddress: string }> } }>(d, 'u2')).NetworkSettings.Networks['usernet']?.IPAddress ?? '';
  assert.ok(ipU2.startsWith(`10.241.${third}.`), ipU2);
  const same = await d.isula(['exec', 'u1', 'busybox', 'ping', '-c', '1', '-W', '3', ipU2]);
  assert.equal(same.code, 0, `same network: reachable: ${same.stdout}${same.stderr}`);
  const other = await d.isula(['exec', 'u1', 'busybox', 'ping', '-c', '1', '-W', '2', ipD1]);
  assert.equal(other.code, 1, `the default network is not reachable (ping's exit 1 = no reply): ${other.stdout}${other.stderr}`);
  const inUse = await d.isula(['network', 'rm', 'usernet']);
  assert.notEqual(inUse.code, 0);
  assert.match(inUse.stderr, /active endpoints|in use/);
  ok(await d.isula(['rm', '-f', 'u1', 'u2', 'd1']));
  ok(await d.isula(['network', 'rm', 'usernet']));
  assert.doesNotMatch(ok(await d.isula(['network', 'ls'])), /usernet/);
});

test('-p on an internal network or none: the container runs, nothing is published or held, the daemon log says why', { skip }, async (t) => {
  const d = await netDaemon(t);
  const third = d.subnet.split('.')[2] ?? '0';
  ok(await d.isula(['network', 'create', '--internal', '--subnet', `10.247.${third}.0/24`, 'sealed']));
  const port = await freePort();
  const inner = ok(await d.isula(['run', '-d', '--name', 'in1', '--network', 'sealed', '-p', `${port}:80`, 'busybox', 'sh', '-c', 'mkdir /www && echo inner > /www/index.html && exec httpd -f -p 80 -h /www'])).trim();
  type Settings = { State: { Running: boolean }; NetworkSettings: { Ports: Record<string, { HostIp: string; HostPort: string }[] | null> } };
  const seen = await inspect<Settings>(d, 'in1');
  assert.equal(seen.State.Running, true);
  // Docker's: the exposed port with no binding; port prints nothing; ps the container side only.
  assert.deepEqual(seen.NetworkSettings.Ports, { '80/tcp': null });
  assert.equal(ok(await d.isula(['port', 'in1'])), '');
  const one = await d.isula(['port', 'in1', '80']);
  assert.equal(one.code, 1);
  assert.equal(one.stderr, "Error: No public port '80/tcp' published for in1\n");
  assert.equal(ok(await d.isula(['ps', '--filter', 'name=in1', '--format', '{{.Ports}}'])).trim(), '80/tcp');
  await assert.rejects(get(`http://127.0.0.1:${port}/`), 'nothing answers on the host port');
  const warned = (await d.log()).split('\n').filter((l) => l.includes('ports not published')).map((l) => JSON.parse(l) as { level: number; container?: string; networks?: string[] });
  assert.deepEqual(warned.map((w) => [w.level, w.container, w.networks]), [[40, inner, ['sealed']]], 'one warning naming the container and the network');

  // Nothing held: another container publishes the same host port on the default network.
  const outer = ok(await d.isula(['run', '-d', '--name', 'out1', '-p', `${port}:80`, 'busybox', 'sh', '-c', 'mkdir /www && echo outer > /www/index.html && exec httpd -f -p 80 -h /www'])).trim();
  const body = await waitFor(async () => (await get(`http://127.0.0.1:${port}/`).catch(() => undefined)), { timeoutMs: 10_000, what: 'out1 to answer on the published port' });
  assert.equal(body.trim(), 'outer');
  assert.match(ok(await d.isula(['port', 'out1'])), new RegExp(`80/tcp -> 0\\.0\\.0\\.0:${port}`));

  // --network none -p: accepted and published nowhere, as Docker's (its null driver reports no port).
  const none = ok(await d.isula(['run', '-d', '--name', 'nn', '--network', 'none', '-p', `${await freePort()}:80`, 'busybox', 'sleep', '300'])).trim();
  const noneSeen = await inspect<Settings>(d, 'nn');
  assert.equal(noneSeen.State.Running, true);
  assert.deepEqual(noneSeen.NetworkSettings.Ports, {});
  assert.equal(ok(await d.isula(['port', 'nn'])), '');
  assert.equal(ok(await d.isula(['ps', '--filter', 'name=nn', '--format', '{{.Ports}}'])).trim(), '');

  ok(await d.isula(['rm', '-f', 'in1', 'out1', 'nn']));
  ok(await d.isula(['network', 'rm', 'sealed']));
  await assertNoNetworkTrace(d, [inner, outer, none]);
});

test('network prune removes the user networks no container uses or names, within its filters; the default stays', { skip }, async (t) => {
  const d = await netDaemon(t);
  const third = d.subnet.split('.')[2] ?? '0';
  ok(await d.isula(['network', 'create', '--subnet', `10.243.${third}.0/28`, '--label', 'team=web', 'pr-web']));
  ok(await d.isula(['network', 'create', '--subnet', `10.243.${third}.16/28`, 'pr-idle']));
  ok(await d.isula(['network', 'create', '--subnet', `10.243.${third}.32/28`, 'pr-named']));
  // A stopped container naming pr-named would fail to start without it: kept.
  ok(await d.isula(['create', '--name', 'pr-user', '--network', 'pr-named', 'busybox', 'true']));
  const names = async () => ok(await d.isula(['network', 'ls', '--format', '{{.Name}}'])).split('\n').filter((n) => n.startsWith('pr-')).sort();

  const refused = await d.isula(['network', 'prune']);
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /use -f \(--force\)/);
  assert.equal(ok(await d.isula(['network', 'prune', '-f', '--filter', 'label=team=web'])), 'Deleted Networks:\npr-web\n\n');
  assert.deepEqual(await names(), ['pr-idle', 'pr-named']);
  assert.equal(ok(await d.isula(['network', 'prune', '-f', '--filter', 'until=2020-01-01T00:00:00Z'])), '', 'nothing made before 2020: docker prints nothing');
  assert.equal(ok(await d.isula(['network', 'prune', '-f'])), 'Deleted Networks:\npr-idle\n\n');
  assert.deepEqual(await names(), ['pr-named']);
  assert.match(ok(await d.isula(['network', 'ls'])), /\bbridge\b|isula/, 'the default network stays');
  const bad = await d.isula(['network', 'prune', '-f', '--filter', 'driver=bridge']);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /invalid filter 'driver'/);
  ok(await d.isula(['rm', 'pr-user']));
  assert.equal(ok(await d.isula(['network', 'prune', '-f'])), 'Deleted Networks:\npr-named\n\n');
  const ev = ok(await d.isula(['events', '--since', '60s', '--until', '0s', '--filter', 'type=network', '--filter', 'event=destroy', '--format', '{{.Actor.Attributes.name}}']));
  assert.deepEqual(ev.split('\n').filter(Boolean).sort(), ['pr-idle', 'pr-named', 'pr-web']);
  await assertNetworkQuiet(d);
});

test('DNS and hosts files follow --dns, --dns-search, --dns-option, --add-host and --hostname', { skip }, async (t) => {
  const d = await netDaemon(t);
  const out = ok(await d.isula(['run', '--rm', '--hostname', 'box1', '--dns', '192.0.2.53', '--dns-search', 'example.test', '--dns-option', 'ndots:2', '--add-host', 'db.local:192.0.2.7',
    'busybox', 'sh', '-c', 'cat /etc/resolv.conf; echo ---; cat /etc/hosts; echo ---; hostname']));
  const [resolv = '', hosts = '', hostname = ''] = out.split('---\n');
  assert.match(resolv, /^nameserver 192\.0\.2\.53$/m);
  assert.match(resolv, /^search example\.test$/m);
  assert.match(resolv, /^options ndots:2$/m);
  assert.match(hosts, /^192\.0\.2\.7\s+db\.local$/m);
  assert.match(hosts, /^10\.\d+\.\d+\.\d+\s+box1$/m);
  assert.equal(hostname.trim(), 'box1');
  await assertNetworkQuiet(d);
});

test('--ip and --mac-address set the container\'s address and MAC; an address outside the subnet is refused', { skip }, async (t) => {
  const d = await netDaemon(t);
  const [a, b, c] = d.subnet.split('.');
  const ip = `${a}.${b}.${c}.77`;
  const out = ok(await d.isula(['run', '--rm', '--ip', ip, '--mac-address', '92:d0:c6:0a:29:33', 'busybox', 'sh', '-c', 'cat /sys/class/net/eth0/address; ip -4 -o addr show eth0']));
  assert.match(out, /^92:d0:c6:0a:29:33$/m);
  assert.match(out, new RegExp(`inet ${ip.replace(/\./g, '\\.')}/24`));
  const outside = await d.isula(['run', '--rm', '--ip', '192.0.2.9', 'busybox', 'true']);
  assert.notEqual(outside.code, 0);
  assert.match(outside.stderr, /192\.0\.2\.9/);
  assert.match((await d.isula(['run', '--rm', '--mac-address', 'zz', 'busybox', 'true'])).stderr, /invalid MAC address/);
  await assertNetworkQuiet(d);
});

test('kill -9 of isulad with networked containers, restart, rm -f: no netns, veth, lease or rule left', { skip }, async (t) => {
  const d = await netDaemon(t);
  const port = await freePort();
  const ids = [
    ok(await d.isula(['run', '-d', '--name', 'k1', '-p', `${port}:80`, 'busybox', 'sleep', '300'])).trim(),
    ok(await d.isula(['run', '-d', '--name', 'k2', 'busybox', 'sleep', '300'])).trim(),
  ];
  d.proc?.kill('SIGKILL');
  await d.exited();
  await d.start();
  assert.match(await ipOf(d, 'k1'), /^10\./, 'the running container keeps its address across the restart');
  ok(await d.isula(['rm', '-f', 'k1', 'k2']));
  await assertNoNetworkTrace(d, ids);
});

test('network connect and disconnect: a running container joins and leaves a network live; a stopped one at its next start', { skip }, async (t) => {
  const d = await netDaemon(t);
  const third = d.subnet.split('.')[2] ?? '0';
  const netId = ok(await d.isula(['network', 'create', '--subnet', `10.244.${third}.0/24`, 'joinnet'])).trim();
  const c1 = ok(await d.isula(['run', '-d', '--name', 'c1', 'busybox', 'sleep', '300'])).trim();
  const u1 = ok(await d.isula(['run', '-d', '--name', 'u1', '--network', 'joinnet', 'busybox', 'sleep', '300'])).trim();
  type Nets = { NetworkSettings: { Networks: Record<string, { IPAddress: string; IPAMConfig: { IPv4Address?: string } | null; NetworkID: string }> } };
  const nets = async (name: string) => (await inspect<Nets>(d, name)).NetworkSettings.Networks;
  const ipU1 = (await nets('u1'))['joinnet']?.IPAddress ?? '';
  const pingU1 = () => d.isula(['exec', 'c1', 'busybox', 'ping', '-c', '1', '-W', '2', ipU1]);
  assert.equal((await pingU1()).code, 1, 'before connect: another network, unreachable');

  assert.equal(ok(await d.isula(['network', 'connect', 'joinnet', 'c1'])), '', 'docker prints nothing');
  assert.equal((await pingU1()).code, 0, 'after connect: reachable');
  const both = await nets('c1');
  assert.deepEqual(Object.keys(both).sort(), ['bridge', 'joinnet']);
  assert.match(both['joinnet']?.IPAddress ?? '', new RegExp(`^10\\.244\\.${third}\\.`));
  assert.equal(both['joinnet']?.NetworkID, netId, 'the network\'s id, as docker\'s inspect');
  const links = ok(await d.isula(['exec', 'c1', 'ip', '-o', 'link']));
  assert.match(links, /eth0/);
  assert.match(links, /eth1/);
  assert.match(ok(await d.isula(['network', 'inspect', '-f', '{{range .Containers}}{{.Name}} {{end}}', 'joinnet'])), /\bc1\b/);
  assert.deepEqual(ok(await d.isula(['ps', '--filter', 'network=joinnet', '--format', '{{.Names}}'])).split('\n').filter(Boolean).sort(), ['c1', 'u1']);
  assert.equal(ok(await d.isula(['network', 'inspect', '-f', '{{.Id}}', 'joinnet'])).trim(), netId);
  assert.deepEqual(ok(await d.isula(['ps', '--filter', `network=${netId.slice(0, 6)}`, '--format', '{{.Names}}'])).split('\n').filter(Boolean).sort(), ['c1', 'u1'], 'by a prefix of its id, as docker');
  const twice = await d.isula(['network', 'connect', 'joinnet', 'c1']);
  assert.equal(twice.code, 1);
  assert.equal(twice.stderr, 'Error response from daemon: endpoint with name c1 already exists in network joinnet\n');

  // Leaving the default network live: eth0 goes, the other stays.
  ok(await d.isula(['network', 'disconnect', 'bridge', 'c1']));
  assert.deepEqual(Object.keys(await nets('c1')), ['joinnet']);
  assert.doesNotMatch(ok(await d.isula(['exec', 'c1', 'ip', '-o', 'link'])), /eth0/);
  assert.equal((await pingU1()).code, 0);
  const notOn = await d.isula(['network', 'disconnect', 'bridge', 'c1']);
  assert.equal(notOn.code, 1);
  assert.match(notOn.stderr, /is not connected to network bridge/);

  // Stopped: recorded, joined at the next start, with the static address asked for.
  ok(await d.isula(['stop', '-t', '0', 'c1']));
  const [a, b, c] = d.subnet.split('.');
  const fixed = `${a}.${b}.${c}.88`;
  ok(await d.isula(['network', 'connect', '--ip', fixed, 'bridge', 'c1']));
  ok(await d.isula(['start', 'c1']));
  const again = await nets('c1');
  assert.deepEqual(Object.keys(again), ['joinnet', 'bridge'], 'in the order joined');
  assert.equal(again['bridge']?.IPAddress, fixed);
  assert.deepEqual(again['bridge']?.IPAMConfig, { IPv4Address: fixed });
  assert.notEqual(again['joinnet']?.IPAddress, fixed, 'the static address is the bridge endpoint\'s only');
  assert.equal((await pingU1()).code, 0);

  // Docker's refusals, each naming the problem.
  const missing = await d.isula(['network', 'connect', 'nosuchnet', 'c1']);
  assert.equal(missing.stderr, 'Error response from daemon: network nosuchnet not found\n');
  ok(await d.isula(['run', '-d', '--name', 'h1', '--network', 'host', 'busybox', 'sleep', '300']));
  assert.match((await d.isula(['network', 'connect', 'joinnet', 'h1'])).stderr, /cannot be disconnected from host network or connected to host network/);
  assert.match((await d.isula(['network', 'connect', 'none', 'c1'])).stderr, /private \(none\) mode/);
  assert.match((await d.isula(['network', 'connect', 'joinnet', 'nosuchctr'])).stderr, /No such container: nosuchctr/);
  assert.match((await d.isula(['network', 'connect', '--ip', '300.1.1.1', 'joinnet', 'u1'])).stderr, /invalid IPv4 address "300\.1\.1\.1"/);
  // What docker's client sends for --alias: refused by name (no embedded DNS would resolve it).
  const alias = await httpRequest(d.socket, 'POST', '/networks/joinnet/connect', JSON.stringify({ Container: 'u1', EndpointConfig: { Aliases: ['db'] } }), { 'Content-Type': 'application/json' });
  assert.equal(alias.status, 400);
  assert.match(alias.body, /EndpointConfig\.Aliases is not supported/);
  const noBody = await httpRequest(d.socket, 'POST', '/networks/joinnet/disconnect', JSON.stringify({ Force: 'yes' }), { 'Content-Type': 'application/json' });
  assert.equal(noBody.status, 400);
  assert.match(noBody.body, /Container must name a container/);

  const ev = ok(await d.isula(['events', '--since', '120s', '--until', '0s', '--filter', 'type=network', '--format', '{{.Action}} {{.Actor.Attributes.name}}']));
  assert.deepEqual(ev.split('\n').filter((l) => /^(connect|disconnect) /.test(l)), ['connect joinnet', 'disconnect isula', 'connect isula']);

  // --network by a prefix of the id: disconnect by name finds the live interface all the same.
  const netId12 = netId.slice(0, 12);
  ok(await d.isula(['run', '-d', '--name', 'p1', '--network', netId12, '-p', '0:80', 'busybox', 'sleep', '300']));
  ok(await d.isula(['network', 'disconnect', 'joinnet', 'p1']));
  assert.deepEqual(Object.keys(await nets('p1')), []);
  assert.doesNotMatch(ok(await d.isula(['exec', 'p1', 'ip', '-o', 'link'])), /eth0/, 'the interface went, live');
  // On no network at all, a container that publishes ports still starts, on loopback, without them (as docker's).
  ok(await d.isula(['restart', '-t', '0', 'p1']));
  assert.equal((await inspect<{ State: { Running: boolean } }>(d, 'p1')).State.Running, true);
  assert.equal(ok(await d.isula(['port', 'p1'])), '');
  assert.match((await d.isula(['network', 'connect', '--ip', '192.0.2.10', 'joinnet', 'p1'])).stderr, /192\.0\.2\.10.*does not belong to any of network joinnet's subnets/);
  ok(await d.isula(['rm', '-f', 'p1']));

  // A daemon killed with -9 comes back knowing both networks; disconnect and rm -f leave nothing.
  d.proc?.kill('SIGKILL');
  await d.exited();
  await d.start();
  assert.deepEqual(Object.keys(await nets('c1')), ['joinnet', 'bridge']);
  ok(await d.isula(['network', 'disconnect', 'joinnet', 'c1']));
  assert.equal((await pingU1()).code, 1, 'after disconnect: unreachable again');
  ok(await d.isula(['rm', '-f', 'u1', 'h1']));
  // A stopped container leaves a network removed since by the name it had, without -f.
  ok(await d.isula(['stop', '-t', '0', 'c1']));
  ok(await d.isula(['network', 'connect', 'joinnet', 'c1']));
  ok(await d.isula(['network', 'rm', 'joinnet']));
  assert.match((await d.isula(['start', 'c1'])).stderr, /network joinnet not found/);
  ok(await d.isula(['network', 'disconnect', 'joinnet', 'c1']));
  ok(await d.isula(['start', 'c1']));
  assert.deepEqual(Object.keys(await nets('c1')), ['bridge']);
  ok(await d.isula(['rm', '-f', 'c1']));
  await assertNoNetworkTrace(d, [c1, u1]);
});

test('ports follow network connect and disconnect: published when a container on an internal network joins the default one, moved or released when their network leaves', { skip }, async (t) => {
  const d = await netDaemon(t);
  const third = d.subnet.split('.')[2] ?? '0';
  ok(await d.isula(['network', 'create', '--internal', '--subnet', `10.247.${third}.0/24`, 'sealed']));
  ok(await d.isula(['network', 'create', '--subnet', `10.246.${third}.0/24`, 'open']));
  const port = await freePort();
  const id = ok(await d.isula(['run', '-d', '--name', 'mover', '--network', 'sealed', '-p', `${port}:80`, 'busybox', 'sh', '-c', 'mkdir /www && echo mover > /www/index.html && exec httpd -f -p 80 -h /www'])).trim();
  type Settings = { NetworkSettings: { Ports: Record<string, { HostIp: string; HostPort: string }[] | null> } };
  const ports = async () => (await inspect<Settings>(d, 'mover')).NetworkSettings.Ports;
  const answers = async () => (await get(`http://127.0.0.1:${port}/`).catch(() => '')).trim() === 'mover';
  /** The DNAT rules (portmap's) for the host port, in any chain. */
  const dnat = async () => (await run('iptables-save', ['-t', 'nat'])).stdout.split('\n').filter((l) => l.includes('DNAT') && new RegExp(`--dports? ${port}\\b`).test(l));
  const bound = { '80/tcp': [{ HostIp: '0.0.0.0', HostPort: String(port) }] };
  const published = async () => {
    assert.deepEqual(await ports(), bound);
    assert.match(ok(await d.isula(['port', 'mover'])), new RegExp(`^80/tcp -> 0\\.0\\.0\\.0:${port}$`, 'm'));
    assert.equal(ok(await d.isula(['ps', '--filter', 'name=mover', '--format', '{{.Ports}}'])).trim(), `0.0.0.0:${port}->80/tcp`);
    assert.ok(await waitFor(answers, { timeoutMs: 10_000, what: 'httpd to answer on the published port' }));
  };
  const released = async () => {
    assert.deepEqual(await ports(), { '80/tcp': null }, 'the exposed port without a binding, as after a start on an internal network');
    assert.equal(ok(await d.isula(['port', 'mover'])), '');
    assert.equal(ok(await d.isula(['ps', '--filter', 'name=mover', '--format', '{{.Ports}}'])).trim(), '80/tcp');
    assert.equal(await answers(), false, 'nothing answers on the host port');
    assert.deepEqual(await dnat(), [], 'no DNAT rule left for the host port');
  };
  await released();

  // Docker's gateway endpoint: the default network can map ports and none were published, so they are now.
  ok(await d.isula(['network', 'connect', 'bridge', 'mover']));
  await published();
  // A daemon killed with -9 comes back with the ports the network driver's cache holds.
  d.proc?.kill('SIGKILL');
  await d.exited();
  await d.start();
  await published();
  ok(await d.isula(['network', 'disconnect', 'bridge', 'mover']));
  await released();

  // Published on the first joined network that maps them; when it leaves they move to the other one.
  ok(await d.isula(['network', 'connect', 'open', 'mover']));
  ok(await d.isula(['network', 'connect', 'bridge', 'mover']));
  await published();
  assert.equal((await dnat()).filter((l) => l.startsWith('-A CNI-HOSTPORT-DNAT')).length, 1, 'one network publishes');
  ok(await d.isula(['network', 'disconnect', 'open', 'mover']));
  await published();
  assert.equal((await dnat()).filter((l) => l.startsWith('-A CNI-HOSTPORT-DNAT')).length, 1, 'moved, not copied');
  // Nothing else may take the port meanwhile: it is held as at start.
  const clash = await d.isula(['run', '-d', '--name', 'clash', '-p', `${port}:80`, 'busybox', 'sleep', '300']);
  assert.match(clash.stderr, /port is already allocated/);
  const clashId = (await inspect<{ Id: string }>(d, 'clash')).Id;

  ok(await d.isula(['rm', '-f', 'mover', 'clash']));
  assert.deepEqual(await dnat(), []);
  ok(await d.isula(['network', 'rm', 'sealed', 'open']));
  await assertNoNetworkTrace(d, [id, clashId]);
});

test('bad input: unknown network, malformed conflist, missing plugin, exhausted subnet: clear errors, nothing half-networked', { skip }, async (t) => {
  const d = await netDaemon(t);
  const unknown = await d.isula(['run', '--rm', '--network', 'nosuchnet', 'busybox', 'true']);
  assert.notEqual(unknown.code, 0);
  assert.match(unknown.stderr, /network nosuchnet not found/);

  await fs.writeFile(path.join(d.confDir, '50-broken.conflist'), '{"cniVersion": "1.0.0", "name": "broken", "plugins": [');
  const broken = await d.isula(['run', '--rm', '--network', 'broken', 'busybox', 'true']);
  assert.notEqual(broken.code, 0);
  assert.match(broken.stderr, /50-broken\.conflist/);

  await fs.writeFile(path.join(d.confDir, '51-noplugin.conflist'), JSON.stringify({ cniVersion: '1.0.0', name: 'noplugin', plugins: [{ type: 'nosuchplugin' }] }));
  const noPlugin = await d.isula(['run', '--name', 'np', '--network', 'noplugin', 'busybox', 'true']);
  assert.notEqual(noPlugin.code, 0);
  assert.match(noPlugin.stderr, /nosuchplugin/);

  const third = d.subnet.split('.')[2] ?? '0';
  ok(await d.isula(['network', 'create', '--subnet', `10.242.${third}.0/30`, 'tiny']));
  const first = await d.isula(['run', '-d', '--name', 't1', '--network', 'tiny', 'busybox', 'sleep', '300']);
  assert.equal(first.code, 0, first.stderr);
  const second = await d.isula(['run', '-d', '--name', 't2', '--network', 'tiny', 'busybox', 'sleep', '300']);
  assert.notEqual(second.code, 0);
  assert.match(second.stderr, /no IP addresses available|range is full|exhausted/i);
  const t2 = await inspect<{ Id: string; State: { Running: boolean } }>(d, 't2');
  const np = await inspect<{ Id: string }>(d, 'np');
  ok(await d.isula(['rm', '-f', 't1', 't2', 'np']));
  ok(await d.isula(['network', 'rm', 'tiny']));
  await assertNoNetworkTrace(d, [t2.Id, np.Id]);
});
