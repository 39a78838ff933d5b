/**
 * Every hook point of the plugin host, in one frozen object on `host.hooks`.
 * A new hook is a minor bump of PLUGIN_API_VERSION, a changed one a major.
 *
 * Class follows meaning: bail = first claimant wins, waterfall = each tap
 * transforms the value, series = ordered side effects, parallel = notifications.
 */
import { AsyncParallelHook, AsyncSeriesBailHook, AsyncSeriesHook, AsyncSeriesWaterfallHook } from 'tapable';
import type { Logger } from 'pino';
import type { DaemonConfig } from './config.js';
import type { ImageDriver } from './drivers/image.js';
import type { NetworkAttachRequest, NetworkAttachResult, NetworkDriver } from './drivers/network.js';
import type { OciSpec, RuntimeDriver } from './drivers/runtime.js';
import type { Engine } from './engine.js';
import { IsulaError, toIsulaError } from './errors.js';

/** Stages for ordering `mutateSpec` taps; use these, never bare numbers. */
export const SpecStage = Object.freeze({
  /** Fill in defaults the builder left out. */
  DEFAULTS: -100,
  /** Ordinary mutations (annotations, CDI devices, hooks). */
  NORMAL: 0,
  /** Security settings (seccomp, apparmor, selinux) that must see the final mounts and process. */
  SECURITY: 100,
  /** Last look, e.g. validation. */
  FINAL: 200,
});

export interface ImageFormatQuery {
  /** The reference the user gave (image name, digest, or path). */
  reference: string;
  /** A format asked for explicitly (e.g. `--image-type external`), if any. */
  format?: string;
}

export interface SpecContext {
  containerId: string;
  runtime: string;
  /** Annotations and labels the request carried, for taps that key off them. */
  annotations: Record<string, string>;
  signal: AbortSignal;
}

export interface NetworkHookContext {
  netnsPath: string | undefined;
  request: NetworkAttachRequest;
  /** Filled in by `attachNetwork` taps; read by the caller afterwards. */
  results: NetworkAttachResult[];
  signal: AbortSignal;
}

export interface ContainerEvent {
  id: string;
  name: string;
  image: string;
  runtime: string;
  exitCode?: number;
  attributes?: Record<string, string>;
}

export interface ImageEvent {
  id: string;
  reference: string;
  attributes?: Record<string, string>;
}

/** A server a plugin runs beside the engine API (the CRI gRPC server, a metrics endpoint ...). */
export interface FrontEnd {
  name: string;
  /** Starts listening; returns the endpoints it serves (shown by `isula info`). */
  start(): Promise<{ endpoints: string[] }>;
  /** Stops accepting and closes; called once at daemon shutdown, in reverse start order. */
  stop(): Promise<void>;
}

/** What `configReloaded` taps get (plugin API 1.7). */
export interface ConfigReload {
  /** The whole configuration now in force (reloadable keys updated, the others as at start). */
  config: Readonly<DaemonConfig>;
  /** Reloadable keys whose value changed: `log-level`, `registry-mirrors`, `insecure-registries` ... */
  changed: readonly string[];
}

export interface ImageDriverRegistrar {
  register(driver: ImageDriver): void;
}

export interface NetworkDriverRegistrar {
  register(driver: NetworkDriver): void;
}

export interface FrontEndRegistrar {
  register(frontEnd: FrontEnd): void;
  /**
   * The engine's domain (containers, execs, image and network drivers), for
   * front ends that serve another API over it (plugin API 1.6). Ready when
   * the hook runs: containers were restored and the engine API listens.
   */
  readonly engine: Engine;
}

export function createHooks() {
  const hooks = {
    /** First driver that claims the runtime name (`runc`, `lcr`, `kata` ...) wins. */
    resolveRuntime: new AsyncSeriesBailHook<[runtime: string], RuntimeDriver | undefined>(['runtime']),
    /** First image driver that claims the reference wins. */
    resolveImageFormat: new AsyncSeriesBailHook<[query: ImageFormatQuery], ImageDriver | undefined>(['query']),
    /** Attach a container's or sandbox's netns; taps push their results onto `ctx.results`. */
    attachNetwork: new AsyncSeriesHook<[ctx: NetworkHookContext]>(['ctx']),
    /** Detach; every tap must be idempotent and work when the netns is gone. */
    detachNetwork: new AsyncSeriesHook<[ctx: NetworkHookContext]>(['ctx']),
    /** Transform the generated config.json; order taps with `SpecStage`. */
    mutateSpec: new AsyncSeriesWaterfallHook<[spec: OciSpec, ctx: SpecContext]>(['spec', 'ctx']),
    containerCreated: new AsyncParallelHook<[event: ContainerEvent]>(['event']),
    containerStarted: new AsyncParallelHook<[event: ContainerEvent]>(['event']),
    containerExited: new AsyncParallelHook<[event: ContainerEvent]>(['event']),
    containerRemoved: new AsyncParallelHook<[event: ContainerEvent]>(['event']),
    imagePulled: new AsyncParallelHook<[event: ImageEvent]>(['event']),
    imageLoaded: new AsyncParallelHook<[event: ImageEvent]>(['event']),
    imageRemoved: new AsyncParallelHook<[event: ImageEvent]>(['event']),
    /** Image drivers register here at start; core lists, inspects and loads images through them. Since API 1.1. */
    registerImageDrivers: new AsyncSeriesHook<[registrar: ImageDriverRegistrar]>(['registrar']),
    /** Network drivers register here at start; core manages networks (`/networks`) through them. Since API 1.4. */
    registerNetworkDrivers: new AsyncSeriesHook<[registrar: NetworkDriverRegistrar]>(['registrar']),
    /** Front ends register here; core starts them once the engine API listens. */
    registerFrontEnds: new AsyncSeriesHook<[registrar: FrontEndRegistrar]>(['registrar']),
    /**
     * daemon.json was reloaded (SIGHUP) and validated; taps apply the keys
     * they use (image-oci: registry mirrors, insecure registries). Running
     * containers are not touched. A failing tap is logged. Since API 1.7.
     */
    configReloaded: new AsyncParallelHook<[reload: ConfigReload]>(['reload']),
    /** Daemon shutdown: plugins close what they opened. Runs after front ends stopped. */
    shutdown: new AsyncSeriesHook<[]>([]),
  };
  for (const [hookName, hook] of Object.entries(hooks)) wrapTapFailures(hookName, hook);
  return Object.freeze(hooks);
}

export type Hooks = ReturnType<typeof createHooks>;

/** Names of the notification hooks, whose failures are logged and never stop the caller. */
export type NotificationHook =
  | 'containerCreated' | 'containerStarted' | 'containerExited' | 'containerRemoved'
  | 'imagePulled' | 'imageLoaded' | 'imageRemoved' | 'configReloaded';

/**
 * Calls a notification hook. A failing tap is logged with the tap's name; it
 * never fails the lifecycle step that fired the event.
 */
export async function notify<K extends NotificationHook>(
  hooks: Hooks,
  log: Logger,
  hookName: K,
  event: Parameters<Hooks[K]['promise']>[0],
): Promise<void> {
  // Each tap is called on its own: tapable's parallel hook stops at the first tap that throws
  // synchronously, which would hide the event from every plugin tapped after it.
  const taps = (hooks[hookName] as unknown as { taps: TapInfo[] }).taps;
  const results = await Promise.allSettled(taps.map((tap) => callTap(tap, event)));
  for (const [i, r] of results.entries()) {
    if (r.status === 'rejected') log.warn({ err: r.reason, hook: hookName, tap: taps[i]?.name }, 'event tap failed');
  }
}

function callTap(tap: TapInfo, arg: unknown): Promise<unknown> {
  if (tap.type === 'async') {
    return new Promise((resolve, reject) => { tap.fn(arg, (err?: unknown) => (err ? reject(err) : resolve(undefined))); });
  }
  return Promise.resolve().then(() => tap.fn(arg));
}

interface TapInfo {
  name: string;
  type: 'sync' | 'async' | 'promise';
  fn: (...args: unknown[]) => unknown;
}

interface Interceptable {
  intercept(interceptor: { register?: (tap: TapInfo) => TapInfo }): void;
}

/**
 * Every tap is wrapped at registration so a failure names its hook and tap:
 * PLUGIN_HOOK_FAILED with the original as `cause`. An IsulaError a tap throws
 * on purpose (e.g. RUNTIME_UNAVAILABLE) passes through unchanged: its code
 * already says what went wrong.
 */
function wrapTapFailures(hookName: string, hook: unknown): void {
  const wrapError = (tapName: string, err: unknown): IsulaError =>
    err instanceof IsulaError
      ? err
      : new IsulaError('PLUGIN_HOOK_FAILED', `plugin "${tapName}" failed in hook ${hookName}: ${toIsulaError(err).message}`, {
        cause: err,
        details: { hook: hookName, tap: tapName },
      });
  (hook as Interceptable).intercept({
    register(tap) {
      const fn = tap.fn;
      if (tap.type === 'promise') {
        return { ...tap, fn: async (...args: unknown[]) => { try { return await fn(...args); } catch (err) { throw wrapError(tap.name, err); } } };
      }
      if (tap.type === 'sync') {
        return { ...tap, fn: (...args: unknown[]) => { try { return fn(...args); } catch (err) { throw wrapError(tap.name, err); } } };
      }
      return {
        ...tap,
        fn: (...args: unknown[]) => {
          const callback = args.pop() as (err?: unknown, result?: unknown) => void;
          try {
            fn(...args, (err?: unknown, result?: unknown) => callback(err ? wrapError(tap.name, err) : err, result));
          } catch (err) {
            callback(wrapError(tap.name, err));
          }
        },
      };
    },
  });
}
