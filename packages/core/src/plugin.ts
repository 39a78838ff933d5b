/**
 * The plugin API: what a plugin package's default export looks like and what
 * the host hands to its `apply`.
 */
import type { Logger } from 'pino';
import type { DaemonConfig } from './config.js';
import type { EngineEvent, EventBus } from './events.js';
import type { Hooks } from './hooks.js';

/**
 * Version of the plugin API (hooks + driver contracts), not of this package.
 * A plugin states the range it was built for in `apiVersion`; the loader
 * refuses a plugin whose range does not include this version.
 * New hook or optional member: minor bump. Changed hook or driver method: major.
 */
export const PLUGIN_API_VERSION = '1.11.0';

export interface PluginHost {
  /** The host's PLUGIN_API_VERSION. */
  readonly apiVersion: string;
  readonly hooks: Hooks;
  /** A child of the daemon's root logger; plugins make their own children of it. */
  readonly logger: Logger;
  /** The validated daemon configuration (read-only). */
  readonly config: Readonly<DaemonConfig>;
  /** Publishes an event on the engine's event stream (`GET /events`, `isula events`). */
  emitEvent(event: Omit<EngineEvent, 'time' | 'timeNano'>): void;
  readonly events: EventBus;
}

export interface IsulaPlugin<Options = unknown> {
  /** Same as the package's `name`. */
  name: string;
  /** Semver range over PLUGIN_API_VERSION, e.g. "^1.0.0". */
  apiVersion: string;
  /** Checks options and taps hooks. Must not probe the host: look for binaries lazily. */
  apply(host: PluginHost, options: Options): void | Promise<void>;
}

/** What `isula info` shows for each loaded plugin. */
export interface LoadedPlugin {
  name: string;
  version: string;
  apiVersion: string;
  /** Absolute path of the package directory it was loaded from. */
  path: string;
}
