/**
 * The gRPC front end in process, on a stub engine (no root, no runtime):
 * both API versions on one socket, errors mapped by core's kinds, RPCs not
 * built yet answering UNIMPLEMENTED, and a clean stop.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import pino from 'pino';
import { createHooks, defaultConfig, EventBus, IsulaError, type Engine } from '@isula/core';
import { CriImages } from '../src/image-service.js';
import { CriRuntime } from '../src/runtime-service.js';
import { CriServer, LOADER_OPTIONS, PROTO_DIR } from '../src/server.js';

type Msg = Record<string, unknown>;

function client(socket: string, version: string, service: string, options: grpc.ChannelOptions = {}): grpc.Client & Record<string, (r: Msg, cb: (e: grpc.ServiceError | null, res: Msg) => void) => void> {
  const def = protoLoader.loadSync(path.join(PROTO_DIR, 'runtime', version, 'api.proto'), LOADER_OPTIONS);
  const pkg = grpc.loadPackageDefinition(def) as unknown as { runtime: Record<string, Record<string, grpc.ServiceClientConstructor>> };
  const Ctor = pkg.runtime[version]?.[service] as grpc.ServiceClientConstructor;
  return new Ctor(`unix:${socket}`, grpc.credentials.createInsecure(), options) as never;
}

const call = (c: ReturnType<typeof client>, method: string, req: Msg = {}) =>
  new Promise<Msg>((resolve, reject) => { c[method]!.call(c, req, (e, res) => (e ? reject(e) : resolve(res))); });

test('one socket serves runtime.v1 and runtime.v1alpha2; errors carry gRPC codes; unbuilt RPCs are UNIMPLEMENTED; stop removes the socket', async (t) => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'isula-cri-unit-'));
  t.after(() => fs.rm(dir, { recursive: true, force: true }));
  const socket = path.join(dir, 'cri.sock');
  const log = pino({ level: 'silent' });
  const config = defaultConfig();
  const engine = {
    version: '9.9.9',
    containers: {
      find: (id: string) => { throw new IsulaError('CONTAINER_NOT_FOUND', `No such container: ${id}`); },
      records: () => [],
    },
    execs: {},
    imageDrivers: () => [],
    networkDrivers: () => [],
    events: new EventBus(),
  } as unknown as Engine;
  const runtime = new CriRuntime({ log, config, hooks: createHooks(), options: { sandboxImage: 'pause', catatonit: '', execSyncMaxOutputBytes: 1024 } });
  runtime.attach(engine);
  const server = new CriServer({ socket, log, runtime, images: new CriImages(() => engine, config) });
  assert.deepEqual(await server.start(), { endpoints: [`unix://${socket}`] });
  let stopped = false;
  t.after(async () => { if (!stopped) await server.stop(); });
  // Group read-write only: the socket is root's (and the kubelet's group's).
  assert.equal((await fs.stat(socket)).mode & 0o777, 0o660);

  // As the grpc-go of crictl/critest 1.26: the socket path as :authority.
  const stock = client(socket, 'v1', 'RuntimeService', { 'grpc.default_authority': socket });
  assert.equal((await call(stock, 'Version', { version: 'v1' }))['runtime_name'], 'isulad');
  await assert.rejects(call(stock, 'PodSandboxStatus', { pod_sandbox_id: 'nope' }), (e: grpc.ServiceError) => e.code === grpc.status.NOT_FOUND);
  stock.close();

  for (const version of ['v1', 'v1alpha2']) {
    const rt = client(socket, version, 'RuntimeService');
    const im = client(socket, version, 'ImageService');
    const v = await call(rt, 'Version', { version });
    assert.deepEqual(v, { version: '0.1.0', runtime_name: 'isulad', runtime_version: '9.9.9', runtime_api_version: version });
    // No network plugin: NetworkReady false, with a reason.
    const st = await call(rt, 'Status') as { status: { conditions: { type: string; status: boolean; reason: string }[] } };
    const net = st.status.conditions.find((c) => c.type === 'NetworkReady');
    assert.equal(net?.status, false);
    assert.equal(net?.reason, 'NetworkPluginNotReady');
    await assert.rejects(call(rt, 'PodSandboxStatus', { pod_sandbox_id: 'nope' }), (e: grpc.ServiceError) => e.code === grpc.status.NOT_FOUND);
    await assert.rejects(call(rt, 'RunPodSandbox', { config: { metadata: { name: 'x' } } }), (e: grpc.ServiceError) => e.code === grpc.status.INVALID_ARGUMENT);
    await assert.rejects(call(rt, 'RunPodSandbox', { config: { metadata: { name: 'x', uid: 'u', namespace: 'n' }, log_directory: 'relative/dir' } }), (e: grpc.ServiceError) => e.code === grpc.status.INVALID_ARGUMENT);
    if (version === 'v1') await assert.rejects(call(rt, 'CheckpointContainer', { container_id: 'x' }), (e: grpc.ServiceError) => e.code === grpc.status.UNIMPLEMENTED);
    // The streaming RPCs check their target before handing out a URL.
    await assert.rejects(call(rt, 'Attach', { container_id: 'x', stdout: true }), (e: grpc.ServiceError) => e.code === grpc.status.NOT_FOUND);
    await assert.rejects(call(rt, 'PortForward', { pod_sandbox_id: 'x', port: [80] }), (e: grpc.ServiceError) => e.code === grpc.status.NOT_FOUND);
    // Removing what is not there is not an error (idempotent).
    assert.deepEqual(await call(rt, 'RemovePodSandbox', { pod_sandbox_id: 'gone' }), {});
    assert.deepEqual(await call(rt, 'RemoveContainer', { container_id: 'gone' }), {});
    assert.deepEqual(await call(rt, 'ListPodSandbox'), { items: [] });
    assert.deepEqual(await call(im, 'ListImages'), { images: [] });
    rt.close();
    im.close();
  }
  // A client still connected does not hold the stop up.
  const idle = client(socket, 'v1', 'RuntimeService');
  await call(idle, 'Version', { version: 'v1' });
  const stopStarted = Date.now();
  await server.stop();
  stopped = true;
  assert.ok(Date.now() - stopStarted < 5000);
  idle.close();
  await assert.rejects(fs.stat(socket), { code: 'ENOENT' });
});
