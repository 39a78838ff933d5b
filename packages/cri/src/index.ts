/**
 * @isula/cri: the Kubernetes CRI (runtime.v1 and runtime.v1alpha2) as an
 * isulad front end. Importing this module runs nothing.
 */
import { SpecStage, type IsulaPlugin } from '@isula/core';
import { CriImages } from './image-service.js';
import { parseCriOptions } from './options.js';
import { CriRuntime } from './runtime-service.js';
import { CriServer } from './server.js';
import { StreamingServer } from './streaming.js';

const plugin: IsulaPlugin = {
  name: '@isula/cri',
  // 1.6: FrontEndRegistrar.engine and HostConfig.LogPath.
  apiVersion: '^1.6.0',
  apply(host, options) {
    const opts = parseCriOptions(options);
    const log = host.logger;
    const runtime = new CriRuntime({
      log,
      config: host.config,
      hooks: host.hooks,
      options: {
        sandboxImage: opts.sandboxImage ?? host.config['pod-sandbox-image'],
        catatonit: opts.catatonit,
        execSyncMaxOutputBytes: opts.execSyncMaxOutputBytes,
      },
    });
    const images = new CriImages(() => runtime.engine, host.config);
    // Pod containers join their sandbox's namespaces: after the defaults, before security taps.
    host.hooks.mutateSpec.tapPromise({ name: plugin.name, stage: SpecStage.NORMAL }, async (spec, ctx) => runtime.mutateSpec(spec, ctx.annotations));
    host.hooks.registerFrontEnds.tapPromise(plugin.name, async (registrar) => {
      runtime.attach(registrar.engine);
      await runtime.sweepShm();
      const tls = !opts.streamTls ? undefined
        : opts.streamTlsCert !== undefined && opts.streamTlsKey !== undefined ? { certFile: opts.streamTlsCert, keyFile: opts.streamTlsKey }
        : { selfSigned: true as const };
      const streaming = new StreamingServer({ address: opts.streamAddress, idleTimeoutMs: opts.streamIdleTimeoutMs, log, engine: () => runtime.engine, ...(tls !== undefined && { tls }) });
      runtime.setStreaming(streaming);
      registrar.register(new CriServer({ socket: opts.socket, log, runtime, images, streaming }));
    });
  },
};

export default plugin;
export { parseCriOptions, DEFAULT_SOCKET, DEFAULT_STREAM_ADDRESS } from './options.js';
export type { CriOptions } from './options.js';
export { API_VERSIONS, LOADER_OPTIONS, PROTO_DIR, loadApi } from './server.js';
export { SpdySession, SpdyStream, FrameParser, encodeFrame, encodeHeaderBlock, decodeHeaderBlock, HEADER_DICTIONARY } from './spdy.js';
export type { Frame } from './spdy.js';
