/**
 * NetworkSettings.Ports and the list's Ports, as moby's getPortMapInfo builds
 * them from a container's network endpoints: exposed ports (null) and the
 * bindings in effect through its networks, nothing without an endpoint.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ContainerRecord } from '../src/container/record.js';
import { listView, portsView } from '../src/container/view.js';
import type { NetworkAttachResult } from '../src/drivers/network.js';

const result = (network: string, over: Partial<NetworkAttachResult> = {}): NetworkAttachResult =>
  ({ network, addresses: [], routes: [], dns: { nameservers: [], search: [], options: [] }, ...over });

/** A running container that asked for `-p 8080:80` (the client exposes 80/tcp too). */
function record(mode: string, results?: NetworkAttachResult[]): ContainerRecord {
  return {
    Id: 'ab'.repeat(32), Name: 'web', Created: '2026-01-01T00:00:00Z', Path: 'sleep', Args: ['300'],
    Config: { Image: 'busybox', ExposedPorts: { '80/tcp': {} } },
    HostConfig: { NetworkMode: mode, PortBindings: { '80/tcp': [{ HostPort: '8080' }] } },
    Image: 'sha256:' + 'cd'.repeat(32), ImageFormat: 'oci', Runtime: 'runc',
    State: { Status: 'running', Pid: 42, ExitCode: 0, Error: '', StartedAt: '2026-01-01T00:00:01Z', FinishedAt: '0001-01-01T00:00:00Z', OOMKilled: false },
    RestartCount: 0, HasBeenManuallyStopped: false,
    ...(results !== undefined && { Network: { SandboxKey: '/run/netns/x', Networks: results.map((r) => r.network), PortMappings: [], Results: results } }),
  } as ContainerRecord;
}

test('Ports: a network that maps ports shows the binding; one that cannot (internal) the exposed port alone; nothing without a network', () => {
  const published = result('isula', { portMappings: [{ hostPort: 8080, containerPort: 80, protocol: 'tcp' }] });
  assert.deepEqual(portsView(record('bridge', [published])), { '80/tcp': [{ HostIp: '0.0.0.0', HostPort: '8080' }] });
  // Docker's bridge endpoint on an internal network reports the exposed ports and no binding.
  const internal = record('sealed', [result('sealed')]);
  assert.deepEqual(portsView(internal), { '80/tcp': null });
  assert.deepEqual(listView(internal)['Ports'], [{ PrivatePort: 80, Type: 'tcp' }], 'ps shows 80/tcp, no host side');
  assert.deepEqual(portsView(record('sealed', [result('sealed'), published])), { '80/tcp': [{ HostIp: '0.0.0.0', HostPort: '8080' }] });
  // host and none endpoints report nothing (moby's host and null drivers), container: has none.
  for (const mode of ['none', 'host', 'container:other']) {
    assert.deepEqual(portsView(record(mode)), {}, mode);
    assert.deepEqual(listView(record(mode))['Ports'], [], mode);
  }
  assert.deepEqual(portsView(record('bridge', [])), {}, 'disconnected from every network');
  // Without a network plugin (the runtime's own namespace) the exposed ports show, as before.
  assert.deepEqual(portsView(record('')), { '80/tcp': null });
});
