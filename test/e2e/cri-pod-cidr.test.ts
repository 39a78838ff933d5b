/**
 * The kubelet's pod CIDR reaches CNI: after UpdateRuntimeConfig, new pods
 * get their IP from it (network-cni rewrites the default network it wrote
 * itself); while a pod is attached the subnet stays and Status says why. A
 * real isulad with @isula/cri and @isula/network-cni, runc, conmon and the
 * CNI plugins, driven over the CRI socket (set-up: lib/cri-daemon.ts).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { CRI_TOOLS, criDaemon, type Msg } from '../lib/cri-daemon.js';
import { cniPrerequisites } from '../lib/net-daemon.js';
import { claimSubnetSlot } from '../lib/subnets.js';

const skip = await cniPrerequisites('CRI tests', CRI_TOOLS);

/** Per test process, so parallel runs never share (or remove) each other's. */
const CGROUP_PARENT = `isula-cri-cidr-test-${process.pid}`;

function podConfig(name: string, logDir: string): Msg {
  return {
    metadata: { name, uid: `uid-${name}-${randomBytes(4).toString('hex')}`, namespace: 'default', attempt: 0 },
    hostname: name,
    log_directory: path.join(logDir, name),
    linux: { cgroup_parent: `/${CGROUP_PARENT}`, security_context: { namespace_options: { network: 'POD', pid: 'CONTAINER', ipc: 'POD' } } },
  };
}

test('CRI: UpdateRuntimeConfig\'s pod CIDR gives new pods their IPs; a running pod keeps the subnet, which changes when the last one stops', { skip }, async (t) => {
  // Distinct per test process: two daemons' bridges must not route the same subnet.
  const third = claimSubnetSlot();
  const configured = `10.241.${third}.0/24`;
  const podCidr = `10.244.${third}.0/24`;
  const later = `10.245.${third}.0/24`;
  const { logDir, v1 } = await criDaemon(t, { bridgePrefix: 'iscc', subnet: configured, cgroupParent: CGROUP_PARENT });
  const rt = v1.runtime;
  const config = async (): Promise<{ podCidr: string; podCidrOutcome: string }> =>
    JSON.parse(((await rt['Status']!({ verbose: true })) as { info: Record<string, string> }).info['config'] ?? '{}');
  const podIp = async (id: string): Promise<string> => ((await rt['PodSandboxStatus']!({ pod_sandbox_id: id })) as { status: { network: { ip: string } } }).status.network.ip;
  const inCidr = (ip: string, cidr: string): boolean => ip.startsWith(`${cidr.split('.').slice(0, 3).join('.')}.`);
  const pods: string[] = [];
  t.after(async () => {
    for (const id of pods) await rt['RemovePodSandbox']!({ pod_sandbox_id: id }).catch(() => undefined);
  });

  await assert.rejects(rt['UpdateRuntimeConfig']!({ runtime_config: { network_config: { pod_cidr: '10.244.0.0/33' } } }), (e: grpc.ServiceError) => e.code === grpc.status.INVALID_ARGUMENT);
  await rt['UpdateRuntimeConfig']!({ runtime_config: { network_config: { pod_cidr: podCidr } } });
  assert.deepEqual(await config().then((c) => [c.podCidr, c.podCidrOutcome]), [podCidr, 'applied']);

  const { pod_sandbox_id: first } = await rt['RunPodSandbox']!({ config: podConfig('one', logDir) }, { deadlineMs: 90_000 }) as { pod_sandbox_id: string };
  pods.push(first);
  const ip1 = await podIp(first);
  assert.ok(inCidr(ip1, podCidr), `pod IP ${ip1} in the pod CIDR ${podCidr}`);

  // A new CIDR while a pod is attached: the subnet stays, Status says why, new pods still get the old one.
  await rt['UpdateRuntimeConfig']!({ runtime_config: { network_config: { pod_cidr: later } } });
  const kept = await config();
  assert.equal(kept.podCidr, later);
  assert.ok(kept.podCidrOutcome.includes(first), kept.podCidrOutcome);
  const { pod_sandbox_id: second } = await rt['RunPodSandbox']!({ config: podConfig('two', logDir) }, { deadlineMs: 90_000 }) as { pod_sandbox_id: string };
  pods.push(second);
  assert.ok(inCidr(await podIp(second), podCidr));

  // The kubelet sends a CIDR only when it changes: it is applied once the last pod attached stopped.
  await rt['StopPodSandbox']!({ pod_sandbox_id: first });
  assert.ok((await config()).podCidrOutcome.includes(second), 'the second pod still holds the subnet');
  await rt['StopPodSandbox']!({ pod_sandbox_id: second });
  assert.equal((await config()).podCidrOutcome, 'applied');
  for (const id of pods.splice(0)) await rt['RemovePodSandbox']!({ pod_sandbox_id: id });
  const { pod_sandbox_id: podThree } = await rt['RunPodSandbox']!({ config: podConfig('three', logDir) }, { deadlineMs: 90_000 }) as { pod_sandbox_id: string };
  pods.push(podThree);
  const ip3 = await podIp(podThree);
  assert.ok(inCidr(ip3, later), `pod IP ${ip3} in the new pod CIDR ${later}`);
  await rt['StopPodSandbox']!({ pod_sandbox_id: podThree });
  await rt['RemovePodSandbox']!({ pod_sandbox_id: podThree });
  pods.splice(0);
});
