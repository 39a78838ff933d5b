/**
 * @isula/driver-kata: a RuntimeDriver for any containerd runtime shim v2
 * (kata-containers' containerd-shim-kata-v2, Debian's containerd-shim-runc-v2
 * ...). Claims `io.containerd.<name>.v<N>` runtime names (binary
 * `containerd-shim-<name>-v<N>`), `kata`, and daemon.json `runtimes` entries
 * that name a shim v2 (by key or by binary). Importing this module runs nothing.
 */
import path from 'node:path';
import { IsulaError } from '@isula/core';
import type { IsulaPlugin } from '@isula/core';
import { DEFAULT_NAMESPACE, ShimV2Driver } from './driver.js';
import { EventsServer } from './events-server.js';
import { shimBinaryName } from './shim.js';

export { ShimV2Driver, DEFAULT_NAMESPACE, LOST_EXIT_CODE, classifyCreateError, parsePersisted } from './driver.js';
export type { ShimDriverOptions, ShimPersisted } from './driver.js';
export { EventsServer, EVENTS_SERVICE } from './events-server.js';
export type { TaskEvent } from './events-server.js';
export { TtrpcClient, TtrpcServer, FrameDecoder, encodeFrame, statusToError, errorToStatus, GrpcCode, MAX_MESSAGE_BYTES, NAMESPACE_KEY } from './ttrpc.js';
export { shimBinaryName, parseStartOutput } from './shim.js';

export interface KataPluginOptions {
  /** containerd namespace of the tasks (default "isula"). */
  namespace?: string;
  /** Start shims with -debug; their log lines reach the daemon log at debug level. */
  debug?: boolean;
  /** Timeout of each shim call in ms (default 30000; Wait has none). */
  timeoutMs?: number;
}

/** Runtime names claimed without configuration, and their shim. */
const ALIASES: Record<string, string> = { kata: 'containerd-shim-kata-v2' };
const SHIM_BINARY = /^containerd-shim-[A-Za-z0-9_.-]+-v\d+$/;

function parseOptions(options: unknown): KataPluginOptions {
  if (options === undefined || options === null) return {};
  const bad = (msg: string) => new IsulaError('PLUGIN_OPTIONS_INVALID', `@isula/driver-kata: ${msg}`);
  if (typeof options !== 'object' || Array.isArray(options)) throw bad('options must be an object like {"namespace": "isula"}');
  const o = options as Record<string, unknown>;
  for (const k of Object.keys(o)) if (!['namespace', 'debug', 'timeoutMs'].includes(k)) throw bad(`unknown option "${k}" (known: namespace, debug, timeoutMs)`);
  const out: KataPluginOptions = {};
  if (o['namespace'] !== undefined) {
    if (typeof o['namespace'] !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9_.-]{0,75}$/.test(o['namespace'])) throw bad(`"namespace" must be a name like "isula", got ${JSON.stringify(o['namespace'])}`);
    out.namespace = o['namespace'];
  }
  if (o['debug'] !== undefined) {
    if (typeof o['debug'] !== 'boolean') throw bad('"debug" must be true or false');
    out.debug = o['debug'];
  }
  if (o['timeoutMs'] !== undefined) {
    if (typeof o['timeoutMs'] !== 'number' || !Number.isInteger(o['timeoutMs']) || o['timeoutMs'] < 100) throw bad('"timeoutMs" must be an integer ≥ 100');
    out.timeoutMs = o['timeoutMs'];
  }
  return out;
}

/**
 * The shim binary for a runtime name, or undefined when the name is not ours.
 * A daemon.json `runtimes` entry wins (its `path` is the shim), as in iSulad:
 * `"runtimes": {"io.containerd.kata.v2": {"path": "/opt/kata/bin/containerd-shim-kata-v2"}}`.
 */
export function shimFor(name: string, configured: { path: string } | undefined): string | undefined {
  if (configured !== undefined) {
    if (shimBinaryName(name) !== undefined || SHIM_BINARY.test(path.basename(configured.path))) return configured.path;
    return undefined;
  }
  return shimBinaryName(name) ?? ALIASES[name];
}

const plugin: IsulaPlugin<KataPluginOptions | undefined> = {
  name: '@isula/driver-kata',
  // 1.10: the process-identity helpers (identify, isSameProcess ...) come from core.
  apiVersion: '^1.10.0',
  apply(host, options) {
    const opts = parseOptions(options);
    const log = host.logger.child({ plugin: plugin.name });
    const stateDir = host.config.state;
    // One events server for every shim of this daemon; it listens at the first create or restore.
    const events = new EventsServer(path.join(stateDir, 'shim-v2', 'events.sock'), log);
    const drivers = new Map<string, ShimV2Driver>();
    host.hooks.resolveRuntime.tapPromise(plugin.name, async (name) => {
      const binary = shimFor(name, host.config.runtimes[name]);
      if (binary === undefined) return undefined;
      let driver = drivers.get(name);
      if (!driver) {
        driver = new ShimV2Driver({
          runtime: name, binary, stateDir, events, logger: log,
          ...(opts.namespace !== undefined && { namespace: opts.namespace }),
          ...(opts.debug !== undefined && { debug: opts.debug }),
          ...(opts.timeoutMs !== undefined && { timeoutMs: opts.timeoutMs }),
        });
        drivers.set(name, driver);
      }
      return driver;
    });
    host.hooks.shutdown.tapPromise(plugin.name, async () => {
      for (const d of drivers.values()) d.close();
      await events.close();
    });
  },
};
export default plugin;
