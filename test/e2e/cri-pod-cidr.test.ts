/**
 * The kubelet's pod CIDR reaches CNI: after UpdateRuntimeConfig, new pods
 * get their IP from it (network-cni rewrites the default network it wrote
 * itself); while a pod is attached the subnet stays and Status says why. A
 * real isulad with @isula/cri and @isula/network-cni, runc, conmon and the
 * CNI plugins, driven over the CRI socket (set-up as in cri.test.ts).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import pino from 'pino';
import { LOADER_OPTIONS, PROTO_DIR } from '@isula/cri';
import { removeBridgeIsolation } from '@isula/network-cni';
import { daemon } from '../lib/containers.js';
import { CNI_BIN, cniPrerequisites } from '../lib/net-daemon.js';

const run = promisify(execFile);

const skip = await cniPrerequisites('CRI tests', ['/usr/bin/catatonit', '/usr/bin/conmon', '/usr/sbin/runc']);

type Msg = Record<string, unknown>;
type Call = (req: Msg, opts?: { deadlineMs?: number }) => Promise<Msg>;

/** A runtime.v1 RuntimeService client with promise-returning unary methods. */
function runtimeClient(socket: string): { rt: Record<string, Call>; close(): void } {
  const def = protoLoader.loadSync(path.join(PROTO_DIR, 'runtime', 'v1', 'api.proto'), LOADER_OPTIONS);
  const pkg = grpc.loadPackageDefinition(def) as unknown as { runtime: { v1: Record<string, grpc.ServiceClientConstructor> } };
  const Ctor = pkg.runtime.v1['RuntimeService'] as grpc.ServiceClientConstructor;
  const client = new Ctor(`unix:${socket}`, grpc.credentials.createInsecure());
  const rt: Record<string, Call> = {};
  for (const m of Object.keys(Ctor.service)) {
    rt[m] = (req, opts = {}) => new Promise((resolve, reject) => {
      const fn = (client as unknown as Record<string, (r: Msg, md: grpc.Metadata, o: grpc.CallOptions, cb: (e: grpc.ServiceError | null, res: Msg) => void) => void>)[m];
      fn?.call(client, req, new grpc.Metadata(), { deadline: Date.now() + (opts.deadlineMs ?? 60_000) }, (err, res) => (err ? reject(err) : resolve(res)));
    });
  }
  return { rt, close: () => client.close() };
}

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

test('CRI: UpdateRuntimeConfig\'s pod CIDR gives new pods their IPs; a running pod keeps the subnet until it is gone', { skip }, async (t) => {
  const tag = randomBytes(3).toString('hex');
  const bridge = `iscc${tag}`;
  // Distinct per test process: two daemons' bridges must not route the same subnet.
  const third = process.pid % 250;
  const configured = `10.241.${third}.0/24`;
  const podCidr = `10.244.${third}.0/24`;
  const later = `10.245.${third}.0/24`;
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'isula-cri-cidr-'));
  const confDir = path.join(dir, 'cni');
  const socket = path.join(dir, 'cri.sock');
  const logDir = path.join(dir, 'pods');
  await fs.mkdir(confDir);
  await daemon(t, {
    plugins: [
      '@isula/image-oci', '@isula/driver-runc',
      { package: '@isula/network-cni', options: { bridge, subnet: configured } },
      { package: '@isula/cri', options: { socket } },
    ],
    'cni-conf-dir': confDir,
    'cni-bin-dir': [CNI_BIN],
    'pod-sandbox-image': 'isula-test/pause:catatonit',
  });
  // After the daemon's own teardown (registered first, run first): its containers are gone by then.
  t.after(async () => {
    await run('ip', ['link', 'del', bridge]).catch(() => undefined);
    for (const ctrl of await fs.readdir('/sys/fs/cgroup').catch(() => [] as string[])) await fs.rmdir(path.join('/sys/fs/cgroup', ctrl, CGROUP_PARENT)).catch(() => undefined);
    await removeBridgeIsolation(bridge, pino({ level: 'silent' }));
    await fs.rm(dir, { recursive: true, force: true });
  });
  const { rt, close } = runtimeClient(socket);
  t.after(async () => { close(); });
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

  // Once the pods are gone, the kubelet's next call applies it.
  for (const id of pods.splice(0)) {
    await rt['StopPodSandbox']!({ pod_sandbox_id: id });
    await rt['RemovePodSandbox']!({ pod_sandbox_id: id });
  }
  await rt['UpdateRuntimeConfig']!({ runtime_config: { network_config: { pod_cidr: later } } });
  assert.equal((await config()).podCidrOutcome, 'applied');
  const { pod_sandbox_id: podThree } = await rt['RunPodSandbox']!({ config: podConfig('three', logDir) }, { deadlineMs: 90_000 }) as { pod_sandbox_id: string };
  pods.push(podThree);
  const ip3 = await podIp(podThree);
  assert.ok(inCidr(ip3, later), `pod IP ${ip3} in the new pod CIDR ${later}`);
  await rt['StopPodSandbox']!({ pod_sandbox_id: podThree });
  await rt['RemovePodSandbox']!({ pod_sandbox_id: podThree });
  pods.splice(0);
});
