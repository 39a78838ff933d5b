/**
 * Published ports across `network connect`/`disconnect` (plugin API 1.11):
 * what core passes a network driver and how the record follows the ports the
 * driver moved. Only a driver that reports its attachment (`attachment`) gets
 * the container's ports at connect; an older one gets none, as in 1.10.
 */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import pino from 'pino';
import type { Logger } from 'pino';
import { ContainerNetworking, followPorts } from '../src/container/network.js';
import type { ContainerRecord } from '../src/container/record.js';
import { portsView } from '../src/container/view.js';
import type { NetworkAttachRequest, NetworkAttachResult, NetworkDriver, PortMapping } from '../src/drivers/network.js';
import { IsulaError } from '../src/errors.js';
import { createHooks } from '../src/hooks.js';

const result = (network: string, portMappings?: PortMapping[]): NetworkAttachResult =>
  ({ network, addresses: [{ address: '10.1.0.2/24' }], routes: [], dns: { nameservers: [], search: [], options: [] }, ...(portMappings !== undefined && { portMappings }) });

const WEB: PortMapping = { hostPort: 8080, containerPort: 80, protocol: 'tcp' };

/** A running container that asked for `-p 8080:80`, on the networks of `results`. */
function record(results: NetworkAttachResult[]): ContainerRecord {
  return {
    Id: 'ab'.repeat(32), Name: 'web', Created: '2026-01-01T00:00:00Z', Path: 'httpd', Args: [],
    Config: { Image: 'busybox', ExposedPorts: { '80/tcp': {} } },
    HostConfig: { NetworkMode: 'sealed', PortBindings: { '80/tcp': [{ HostPort: '8080' }] } },
    Image: 'sha256:' + 'cd'.repeat(32), ImageFormat: 'oci', Runtime: 'runc',
    State: { Status: 'running', Pid: 42, ExitCode: 0, Error: '', StartedAt: '2026-01-01T00:00:01Z', FinishedAt: '0001-01-01T00:00:00Z', OOMKilled: false },
    RestartCount: 0, HasBeenManuallyStopped: false,
    Network: { SandboxKey: '/run/isulad/netns/x', Networks: results.map((r) => r.network), PortMappings: [WEB], Results: results },
  } as ContainerRecord;
}

/**
 * Stand-in drivers that record what core passes them and answer as the
 * contract says: the contract's core side is under test here; the CNI
 * driver's side runs against real plugins in network-cni's attach tests.
 */
function driverOf(
  apiMinor: 10 | 11,
  held: () => NetworkAttachResult[] | undefined,
  onDisconnect: (request: NetworkAttachRequest) => void = () => {},
): { driver: NetworkDriver; connects: NetworkAttachRequest[]; disconnects: [netnsPath: string | undefined, request: NetworkAttachRequest][] } {
  const connects: NetworkAttachRequest[] = [];
  const disconnects: [string | undefined, NetworkAttachRequest][] = [];
  const unused = async (): Promise<never> => { throw new IsulaError('NOT_IMPLEMENTED', 'not used here'); };
  const driver: NetworkDriver = {
    name: `api-1.${apiMinor}`,
    attach: unused, detach: unused, check: unused,
    async connect(_netns, request) {
      connects.push(structuredClone(request));
      // network-cni before 1.11 refused ports at connect.
      if (apiMinor === 10 && request.portMappings.length > 0) throw new IsulaError('NETWORK_CONFIG_INVALID', 'ports are published when a container starts');
      return [result(request.networks[0] ?? '', apiMinor === 11 && request.portMappings.length > 0 ? request.portMappings : undefined)];
    },
    async disconnect(netnsPath, request) {
      disconnects.push([netnsPath, structuredClone(request)]);
      onDisconnect(request);
    },
    ...(apiMinor === 11 && { attachment: async () => held() }),
  };
  return { driver, connects, disconnects };
}

function networking(driver: NetworkDriver, log: Logger = pino({ level: 'silent' })): ContainerNetworking {
  return new ContainerNetworking({ stateDir: '/nonexistent/state', hooks: createHooks(), log, drivers: () => [driver] });
}

/** A logger at `warn` whose lines land in `lines`. */
function capture(): { log: Logger; lines: { msg?: string; id?: string; network?: string }[] } {
  const lines: { msg?: string; id?: string; network?: string }[] = [];
  const sink = new Writable({ write(chunk: Buffer, _enc, done) { lines.push(JSON.parse(chunk.toString())); done(); } });
  return { log: pino({ level: 'warn' }, sink), lines };
}

test('connect passes the container\'s ports only to a driver that reports its attachment (1.11); a 1.10 driver gets none, as before', async () => {
  const signal = AbortSignal.timeout(5000);
  const old = driverOf(10, () => []);
  const r10 = record([result('sealed')]);
  const got10 = await networking(old.driver).connect(r10, 'bridge', undefined, signal);
  assert.deepEqual(old.connects.map((c) => c.portMappings), [[]]);
  assert.equal(got10[0]?.portMappings, undefined);
  assert.equal(await networking(old.driver).syncPorts(r10, signal), false, 'nothing to follow without attachment');

  const r11 = record([result('sealed')]);
  const current = driverOf(11, () => [result('sealed'), result('isula', [WEB])]);
  const got11 = await networking(current.driver).connect(r11, 'bridge', { IP: '10.1.0.9' }, signal);
  assert.deepEqual(current.connects.map((c) => [c.networks, c.portMappings, c.args]), [[['bridge'], [WEB], { IP: '10.1.0.9' }]]);
  assert.deepEqual(got11[0]?.portMappings, [WEB]);
});

test('the record follows the ports the driver moved: after a disconnect, and at restore after a crash between the two saves', async () => {
  const signal = AbortSignal.timeout(5000);
  let held: NetworkAttachResult[] = [result('sealed'), result('extra', [WEB])];
  const { driver } = driverOf(11, () => held);
  const nets = networking(driver);
  // The record still says `isula` publishes (its disconnect was not saved), the driver moved them to `extra`.
  const r = record([result('sealed'), result('isula', [WEB]), result('extra')]);
  assert.equal(await nets.syncPorts(r, signal), true);
  assert.deepEqual(r.Network?.Results.map((x) => [x.network, x.portMappings ?? null]), [['sealed', null], ['isula', null], ['extra', [WEB]]]);
  assert.equal(await nets.syncPorts(r, signal), false, 'nothing changed the second time');
  assert.deepEqual(portsView(r), { '80/tcp': [{ HostIp: '0.0.0.0', HostPort: '8080' }] });

  // Released (no network left could map them): the exposed port, no binding, as after a start on an internal network.
  held = [result('sealed')];
  assert.equal(await nets.syncPorts(r, signal), true);
  assert.deepEqual(portsView(r), { '80/tcp': null });
  // The driver holds no attachment: the record is left as it is.
  const noAttachment = networking(driverOf(11, () => undefined).driver);
  const before = structuredClone(r.Network);
  assert.equal(await noAttachment.syncPorts(r, signal), false);
  assert.deepEqual(r.Network, before);
});

test('followPorts takes each network\'s ports from the driver by name and keeps the rest of the record\'s results', () => {
  const mine = [{ ...result('a'), mac: '02:00:00:00:00:01' }, result('b', [WEB])];
  const moved = followPorts(mine, [result('a', [{ ...WEB, hostPort: 9090 }]), result('b', [])]);
  assert.deepEqual(moved, [{ ...result('a', [{ ...WEB, hostPort: 9090 }]), mac: '02:00:00:00:00:01' }, result('b')]);
  assert.deepEqual(followPorts(mine, []), [{ ...result('a'), mac: '02:00:00:00:00:01' }, result('b')], 'a network the driver no longer has publishes nothing');
});

test('at restore a network the driver holds and the record lacks (a connect the daemon died in) is disconnected, with a warning, and the record takes the ports where that left them', async () => {
  const signal = AbortSignal.timeout(5000);
  const WARNING = 'the network driver holds a network the record lacks; disconnecting it';

  // Died after the driver published the ports on `isula` and before the record was saved: the
  // connect is undone, the ports released (nothing else could map them), the record unchanged.
  let held: NetworkAttachResult[] = [result('sealed'), result('isula', [WEB])];
  const released = driverOf(11, () => held, (request) => { held = held.filter((h) => !request.networks.includes(h.network)); });
  const { log, lines } = capture();
  const r = record([result('sealed')]);
  assert.equal(await networking(released.driver, log).reconcile(r, signal), false);
  assert.deepEqual(released.disconnects, [[undefined, { id: r.Id, networks: ['isula'], portMappings: [] }]], 'the namespace file is gone here: no path');
  assert.deepEqual(held, [result('sealed')]);
  assert.deepEqual(r.Network?.Results, [result('sealed')]);
  assert.deepEqual(r.Network?.PortMappings, [WEB], 'the ports asked for stay, for a later connect');
  assert.deepEqual(portsView(r), { '80/tcp': null });
  assert.deepEqual(lines.filter((l) => l.msg === WARNING).map((l) => [l.id, l.network]), [[r.Id, 'isula']]);

  // What the disconnect did is read after it: here the stand-in moved the ports to `extra`.
  held = [result('sealed'), result('extra'), result('late', [WEB])];
  const moved = driverOf(11, () => held, () => { held = [result('sealed'), result('extra', [WEB])]; });
  const r2 = record([result('sealed'), result('extra')]);
  assert.equal(await networking(moved.driver).reconcile(r2, signal), true);
  assert.deepEqual(moved.disconnects.map(([, req]) => req.networks), [['late']]);
  assert.deepEqual(portsView(r2), { '80/tcp': [{ HostIp: '0.0.0.0', HostPort: '8080' }] });

  // A disconnect that fails is logged; the record still takes the ports the driver holds.
  const failing = driverOf(11, () => held, () => { throw new IsulaError('NETWORK_PLUGIN_FAILED', 'DEL refused'); });
  const warned = capture();
  const r3 = record([result('sealed')]);
  held = [result('sealed', [WEB]), result('stuck')];
  assert.equal(await networking(failing.driver, warned.log).reconcile(r3, signal), true);
  assert.deepEqual(warned.lines.map((l) => [l.msg, l.network]), [[WARNING, 'stuck'], ['disconnecting a network the record lacks failed', 'stuck']]);
  assert.deepEqual(portsView(r3), { '80/tcp': [{ HostIp: '0.0.0.0', HostPort: '8080' }] });

  // Nothing the record lacks: no disconnect, the ports followed as after any connect.
  held = [result('sealed'), result('isula', [WEB])];
  const agreeing = driverOf(11, () => held);
  const r4 = record([result('sealed'), result('isula')]);
  assert.equal(await networking(agreeing.driver).reconcile(r4, signal), true);
  assert.deepEqual(agreeing.disconnects, []);
  assert.deepEqual(r4.Network?.Results.map((x) => x.portMappings ?? null), [null, [WEB]]);

  // A driver without `attachment` (before 1.11) is not asked: nothing is known better.
  const old = driverOf(10, () => [result('sealed'), result('isula')]);
  const r5 = record([result('sealed')]);
  assert.equal(await networking(old.driver).reconcile(r5, signal), false);
  assert.deepEqual(old.disconnects, []);
});

test('connect, disconnect and the ports sync go to one driver: the one that changes a running container\'s attachment', async () => {
  const signal = AbortSignal.timeout(5000);
  // A driver listed first that reports an attachment but cannot connect: never asked.
  const bystander: NetworkDriver = {
    name: 'bystander',
    attach: async () => [], detach: async () => {}, check: async () => {},
    attachment: async () => { throw new Error('the bystander was asked for its attachment'); },
  };
  const current = driverOf(11, () => [result('sealed'), result('isula', [WEB])]);
  const nets = new ContainerNetworking({ stateDir: '/nonexistent/state', hooks: createHooks(), log: pino({ level: 'silent' }), drivers: () => [bystander, current.driver] });
  const r = record([result('sealed')]);
  await nets.connect(r, 'bridge', undefined, signal);
  assert.deepEqual(current.connects.map((c) => c.portMappings), [[WEB]], 'the connecting driver reports its attachment: it gets the ports');
  r.Network?.Results.push(result('isula'));
  assert.equal(await nets.syncPorts(r, signal), true);
  await nets.disconnect(r, 'isula', signal);
  assert.equal(current.disconnects.length, 1);
});
