/**
 * The CRI suites' set-up (cri, cri-streaming, cri-pod-cidr): a private
 * isulad with @isula/cri, runc, conmon and a CNI network of its own, and
 * grpc-js clients of its CRI socket built from the package's own protos,
 * with promise-returning unary methods.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import pino from 'pino';
import { LOADER_OPTIONS, PROTO_DIR } from '@isula/cri';
import { removeBridgeIsolation } from '@isula/network-cni';
import { daemon } from './containers.js';
import type { TestDaemon } from './harness.js';
import { CNI_BIN } from './net-daemon.js';

const run = promisify(execFile);

/** What every CRI suite needs besides the CNI prerequisites (for `cniPrerequisites`). */
export const CRI_TOOLS = ['/usr/bin/catatonit', '/usr/bin/conmon', '/usr/sbin/runc'];

export type Msg = Record<string, unknown>;
export type Call = (req: Msg, opts?: { deadlineMs?: number }) => Promise<Msg>;
export interface Cri {
  runtime: Record<string, Call>;
  image: Record<string, Call>;
  events(): grpc.ClientReadableStream<Msg>;
  close(): void;
}

/** A client of one API version: each unary RPC a function with a deadline (60 s unless `deadlineMs`). */
export function criClient(socket: string, version: 'v1' | 'v1alpha2'): Cri {
  const def = protoLoader.loadSync(path.join(PROTO_DIR, 'runtime', version, 'api.proto'), LOADER_OPTIONS);
  const pkg = grpc.loadPackageDefinition(def) as unknown as { runtime: Record<string, Record<string, grpc.ServiceClientConstructor>> };
  const ns = pkg.runtime[version] ?? {};
  const make = (name: string) => {
    const Ctor = ns[name] as grpc.ServiceClientConstructor;
    const client = new Ctor(`unix:${socket}`, grpc.credentials.createInsecure());
    const methods: Record<string, Call> = {};
    for (const m of Object.keys(Ctor.service)) {
      methods[m] = (req, opts = {}) => new Promise((resolve, reject) => {
        const fn = (client as unknown as Record<string, (r: Msg, md: grpc.Metadata, o: grpc.CallOptions, cb: (e: grpc.ServiceError | null, res: Msg) => void) => void>)[m];
        fn?.call(client, req, new grpc.Metadata(), { deadline: Date.now() + (opts.deadlineMs ?? 60_000) }, (err, res) => (err ? reject(err) : resolve(res)));
      });
    }
    return { client, methods };
  };
  const rt = make('RuntimeService');
  const im = make('ImageService');
  const events = () => (rt.client as unknown as { GetContainerEvents(r: Msg): grpc.ClientReadableStream<Msg> }).GetContainerEvents({});
  return { runtime: rt.methods, image: im.methods, events, close: () => { rt.client.close(); im.client.close(); } };
}

export interface CriDaemonOptions {
  /** Four characters that name the suite in the bridge's name (`iscr`, `issr`, …). */
  bridgePrefix: string;
  /** The default network's subnet: distinct per test process, so two daemons never route the same one. */
  subnet: string;
  /** The pods' cgroup parent (under each controller's root), removed at the end when empty. */
  cgroupParent: string;
  /** Options of @isula/cri besides its socket (e.g. `streamAddress`). */
  cri?: Record<string, unknown>;
  /** More daemon.json keys. */
  config?: Record<string, unknown>;
}

export interface CriDaemon {
  d: TestDaemon;
  /** A temporary directory of this daemon's own (CNI conf, CRI socket, pod logs), removed at the end. */
  dir: string;
  socket: string;
  /** Where pods may put their log directories. */
  logDir: string;
  bridge: string;
  subnet: string;
  v1: Cri;
  v1alpha2: Cri;
}

/**
 * Starts the daemon; at the end (after the daemon's own teardown, so its
 * containers are gone) deletes the bridge and firewall's isolation rules for
 * it, the empty cgroup parent and the directory, and closes the clients.
 */
export async function criDaemon(t: { after(fn: () => Promise<void>): void }, opts: CriDaemonOptions): Promise<CriDaemon> {
  const bridge = `${opts.bridgePrefix}${randomBytes(3).toString('hex')}`;
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'isula-cri-'));
  const confDir = path.join(dir, 'cni');
  const socket = path.join(dir, 'cri.sock');
  const logDir = path.join(dir, 'pods');
  await fs.mkdir(confDir);
  const d = await daemon(t, {
    plugins: [
      '@isula/image-oci', '@isula/driver-runc',
      { package: '@isula/network-cni', options: { bridge, subnet: opts.subnet } },
      { package: '@isula/cri', options: { socket, ...opts.cri } },
    ],
    'cni-conf-dir': confDir,
    'cni-bin-dir': [CNI_BIN],
    'pod-sandbox-image': 'isula-test/pause:catatonit',
    ...opts.config,
  });
  // Registered after the daemon's own teardown, so run after it.
  t.after(async () => {
    await run('ip', ['link', 'del', bridge]).catch(() => undefined);
    // runc leaves the pods' cgroup parent behind its containers.
    for (const ctrl of await fs.readdir('/sys/fs/cgroup').catch(() => [] as string[])) {
      await fs.rmdir(path.join('/sys/fs/cgroup', ctrl, opts.cgroupParent)).catch(() => undefined);
    }
    await removeBridgeIsolation(bridge, pino({ level: 'silent' }));
    await fs.rm(dir, { recursive: true, force: true });
  });
  const v1 = criClient(socket, 'v1');
  const v1alpha2 = criClient(socket, 'v1alpha2');
  t.after(async () => { v1.close(); v1alpha2.close(); });
  return { d, dir, socket, logDir, bridge, subnet: opts.subnet, v1, v1alpha2 };
}
