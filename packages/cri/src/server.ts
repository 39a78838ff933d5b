/**
 * The gRPC server: RuntimeService and ImageService of runtime.v1 and
 * runtime.v1alpha2 on one unix socket, all backed by one implementation.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import type { Logger } from 'pino';
import { IsulaError, isIsulaError, type FrontEnd } from '@isula/core';
import { toServiceError } from './errors.js';
import type { CriImages } from './image-service.js';
import type { CriRuntime } from './runtime-service.js';
import type { StreamingServer } from './streaming.js';
import { CriSocket } from './cri-socket.js';

/** How long stop() lets calls in flight finish before cutting them. */
const STOP_GRACE_MS = 2000;

export const API_VERSIONS = ['v1', 'v1alpha2'] as const;
export type ApiVersion = (typeof API_VERSIONS)[number];

/** The package's own .proto files (shipped in "files"), next to dist/. */
export const PROTO_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../proto');

/**
 * Decoding: field names as in the .proto, int64 as decimal strings (CRI
 * timestamps pass 2^53), enums by name, absent fields as their defaults.
 */
export const LOADER_OPTIONS: protoLoader.Options = { keepCase: true, longs: String, enums: String, defaults: true, arrays: true, objects: true, oneofs: true };

export function loadApi(version: ApiVersion): { runtime: grpc.ServiceDefinition; image: grpc.ServiceDefinition } {
  const def = protoLoader.loadSync(path.join(PROTO_DIR, 'runtime', version, 'api.proto'), LOADER_OPTIONS);
  const pkg = grpc.loadPackageDefinition(def) as unknown as Record<string, Record<string, Record<string, { service: grpc.ServiceDefinition }>>>;
  const ns = pkg['runtime']?.[version];
  const runtime = ns?.['RuntimeService']?.service;
  const image = ns?.['ImageService']?.service;
  if (runtime === undefined || image === undefined) throw new Error(`runtime.${version}: services missing from the proto`);
  return { runtime, image };
}

type Unary = (req: never, version: ApiVersion) => unknown;

const CLIENT_ERRORS: ReadonlySet<number> = new Set([
  grpc.status.NOT_FOUND, grpc.status.INVALID_ARGUMENT, grpc.status.UNIMPLEMENTED, grpc.status.ALREADY_EXISTS,
  grpc.status.FAILED_PRECONDITION, grpc.status.DEADLINE_EXCEEDED, grpc.status.UNAUTHENTICATED, grpc.status.CANCELLED,
]);

export interface CriServerOptions {
  socket: string;
  log: Logger;
  runtime: CriRuntime;
  images: CriImages;
  /** The Exec/Attach/PortForward server, started and stopped with the gRPC one. */
  streaming?: StreamingServer;
}

export class CriServer implements FrontEnd {
  readonly name = '@isula/cri';
  readonly #opts: CriServerOptions;
  #server: grpc.Server | undefined;
  #socket: CriSocket | undefined;

  constructor(opts: CriServerOptions) {
    this.#opts = opts;
  }

  #handlers(version: ApiVersion): { runtime: Record<string, Unary>; image: Record<string, Unary> } {
    const rt = this.#opts.runtime;
    const im = this.#opts.images;
    const runtime: Record<string, Unary> = {
      Version: () => rt.version(version),
      Status: (r: Parameters<CriRuntime['status']>[0]) => rt.status(r),
      RuntimeConfig: () => rt.runtimeConfig(),
      UpdateRuntimeConfig: (r: Parameters<CriRuntime['updateRuntimeConfig']>[0]) => rt.updateRuntimeConfig(r),
      RunPodSandbox: (r: Parameters<CriRuntime['runPodSandbox']>[0]) => rt.runPodSandbox(r),
      StopPodSandbox: (r: Parameters<CriRuntime['stopPodSandbox']>[0]) => rt.stopPodSandbox(r),
      RemovePodSandbox: (r: Parameters<CriRuntime['removePodSandbox']>[0]) => rt.removePodSandbox(r),
      PodSandboxStatus: (r: Parameters<CriRuntime['podSandboxStatus']>[0]) => rt.podSandboxStatus(r),
      ListPodSandbox: (r: Parameters<CriRuntime['listPodSandbox']>[0]) => rt.listPodSandbox(r),
      CreateContainer: (r: Parameters<CriRuntime['createContainer']>[0]) => rt.createContainer(r),
      StartContainer: (r: Parameters<CriRuntime['startContainer']>[0]) => rt.startContainer(r),
      StopContainer: (r: Parameters<CriRuntime['stopContainer']>[0]) => rt.stopContainer(r),
      RemoveContainer: (r: Parameters<CriRuntime['removeContainer']>[0]) => rt.removeContainer(r),
      ListContainers: (r: Parameters<CriRuntime['listContainers']>[0]) => rt.listContainers(r),
      ContainerStatus: (r: Parameters<CriRuntime['containerStatus']>[0]) => rt.containerStatus(r),
      UpdateContainerResources: (r: Parameters<CriRuntime['updateContainerResources']>[0]) => rt.updateContainerResources(r),
      ReopenContainerLog: (r: Parameters<CriRuntime['reopenContainerLog']>[0]) => rt.reopenContainerLog(r),
      ExecSync: (r: Parameters<CriRuntime['execSync']>[0]) => rt.execSync(r),
      Exec: (r: Parameters<CriRuntime['execUrl']>[0]) => rt.execUrl(r),
      Attach: (r: Parameters<CriRuntime['attachUrl']>[0]) => rt.attachUrl(r),
      PortForward: (r: Parameters<CriRuntime['portForwardUrl']>[0]) => rt.portForwardUrl(r),
      ContainerStats: (r: Parameters<CriRuntime['containerStats']>[0]) => rt.containerStats(r),
      ListContainerStats: (r: Parameters<CriRuntime['listContainerStats']>[0]) => rt.listContainerStats(r),
      PodSandboxStats: (r: Parameters<CriRuntime['podSandboxStats']>[0]) => rt.podSandboxStats(r),
      ListPodSandboxStats: (r: Parameters<CriRuntime['listPodSandboxStats']>[0]) => rt.listPodSandboxStats(r),
      CheckpointContainer: () => rt.checkpointContainer(),
      ListMetricDescriptors: () => ({ descriptors: [] }),
      ListPodSandboxMetrics: () => ({ pod_metrics: [] }),
    };
    const image: Record<string, Unary> = {
      ListImages: (r: Parameters<CriImages['listImages']>[0]) => im.listImages(r),
      ImageStatus: (r: Parameters<CriImages['imageStatus']>[0]) => im.imageStatus(r),
      PullImage: (r: Parameters<CriImages['pullImage']>[0]) => im.pullImage(r),
      RemoveImage: (r: Parameters<CriImages['removeImage']>[0]) => im.removeImage(r),
      ImageFsInfo: () => im.imageFsInfo(),
    };
    return { runtime, image };
  }

  /** grpc-js handlers for the RPCs of `service` that have an implementation; the rest answer UNIMPLEMENTED. */
  #implement(service: grpc.ServiceDefinition, handlers: Record<string, Unary>, version: ApiVersion): grpc.UntypedServiceImplementation {
    const impl: grpc.UntypedServiceImplementation = {};
    const log = this.#opts.log;
    for (const [method, def] of Object.entries(service)) {
      const fn = handlers[method];
      if (method === 'GetContainerEvents') {
        impl[method] = ((call: grpc.ServerWritableStream<unknown, unknown>) => this.#events(call)) as grpc.UntypedHandleCall;
        continue;
      }
      if (def.requestStream || def.responseStream) {
        impl[method] = ((call: grpc.ServerWritableStream<unknown, unknown>) => {
          call.emit('error', toServiceError(new IsulaError('NOT_IMPLEMENTED', `${method} is not implemented by isula yet`)));
        }) as grpc.UntypedHandleCall;
        continue;
      }
      impl[method] = ((call: grpc.ServerUnaryCall<never, unknown>, callback: grpc.sendUnaryData<unknown>) => {
        const started = Date.now();
        Promise.resolve()
          .then(() => {
            if (fn === undefined) throw new IsulaError('NOT_IMPLEMENTED', `${method} is not implemented by isula yet`);
            return fn(call.request, version);
          })
          .then(
            (res) => {
              log.debug({ rpc: method, api: version, durationMs: Date.now() - started }, 'cri call');
              callback(null, res);
            },
            (err: unknown) => {
              const e = toServiceError(err);
              // The kubelet polls for what may be gone; only the engine's own failures are worth a warning.
              if (CLIENT_ERRORS.has(e.code ?? grpc.status.UNKNOWN)) log.debug({ rpc: method, api: version, err, code: e.code }, 'cri call refused');
              else log.warn({ rpc: method, api: version, err, code: e.code }, 'cri call failed');
              callback(e as grpc.ServiceError);
            },
          );
      }) as grpc.UntypedHandleCall;
    }
    return impl;
  }

  /** A client that stops reading is cut off past this many queued events, not buffered for ever. */
  static readonly MAX_QUEUED_EVENTS = 4096;

  #events(call: grpc.ServerWritableStream<unknown, unknown>): void {
    let queued = 0;
    const unsubscribe = this.#opts.runtime.subscribeEvents((event) => {
      if (call.cancelled || call.destroyed) return;
      if (queued >= CriServer.MAX_QUEUED_EVENTS) {
        unsubscribe();
        call.destroy(Object.assign(new Error('the client reads events too slowly'), { code: grpc.status.RESOURCE_EXHAUSTED }));
        return;
      }
      queued++;
      call.write(event, () => { queued--; });
    });
    this.#streams.add(call);
    const done = () => { unsubscribe(); this.#streams.delete(call); };
    call.on('cancelled', done);
    call.on('close', done);
    call.on('error', done);
  }

  readonly #streams = new Set<grpc.ServerWritableStream<unknown, unknown>>();

  async start(): Promise<{ endpoints: string[] }> {
    const socket = this.#opts.socket;
    // Node truncates unix socket paths past 107 bytes without an error (PLATFORM §9).
    if (Buffer.byteLength(socket) > 107) throw new IsulaError('PLUGIN_OPTIONS_INVALID', `CRI socket path is longer than 107 bytes: ${socket}`);
    await fs.mkdir(path.dirname(socket), { recursive: true, mode: 0o711 });
    // A socket left by a daemon that died is stale: this daemon holds the engine lock.
    await fs.rm(socket, { force: true });
    const server = new grpc.Server({ 'grpc.max_receive_message_length': 16 * 1024 * 1024, 'grpc.max_send_message_length': 16 * 1024 * 1024 });
    for (const version of API_VERSIONS) {
      const api = loadApi(version);
      const h = this.#handlers(version);
      server.addService(api.runtime, this.#implement(api.runtime, h.runtime, version));
      server.addService(api.image, this.#implement(api.image, h.image, version));
    }
    // The plugin owns the socket and hands each connection to grpc-js (see
    // h2-authority.ts: older Go clients send the socket path as :authority).
    const injector = server.createConnectionInjector(grpc.ServerCredentials.createInsecure());
    const listener = new CriSocket({ path: socket, log: this.#opts.log, inject: (c) => injector.injectConnection(c) });
    try {
      await listener.listen();
    } catch (err) {
      throw new IsulaError('PLUGIN_OPTIONS_INVALID', `the CRI socket cannot listen on ${socket}: ${(err as Error).message}`, { cause: err });
    }
    await fs.chmod(socket, 0o660);
    this.#socket = listener;
    this.#server = server;
    const streaming = this.#opts.streaming;
    if (streaming !== undefined) {
      try {
        await streaming.start();
      } catch (err) {
        server.forceShutdown();
        listener.destroyConnections();
        await listener.close();
        this.#server = undefined;
        this.#socket = undefined;
        // A bad TLS key pair already says which option and file; anything else is the listen's.
        if (isIsulaError(err)) throw err;
        throw new IsulaError('PLUGIN_OPTIONS_INVALID', `the CRI streaming server cannot listen: ${(err as Error).message}`, { cause: err });
      }
    }
    return { endpoints: [`unix://${socket}`, ...(streaming !== undefined ? [streaming.baseUrl] : [])] };
  }

  async stop(): Promise<void> {
    const server = this.#server;
    const listener = this.#socket;
    if (server === undefined || listener === undefined) return;
    this.#server = undefined;
    this.#socket = undefined;
    // No new connections (Node unlinks the socket file); open ones end with the gRPC sessions.
    const closed = listener.close();
    await this.#opts.streaming?.stop();
    // Event streams never end on their own: end them so the shutdown does not wait for clients.
    for (const call of this.#streams) call.end();
    this.#streams.clear();
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => { server.forceShutdown(); resolve(); }, STOP_GRACE_MS);
      server.tryShutdown(() => { clearTimeout(timer); resolve(); });
    });
    listener.destroyConnections();
    await closed;
    await fs.rm(this.#opts.socket, { force: true });
  }
}
