/**
 * The engine's domain as front ends see it (plugin API 1.6): the same
 * container manager, exec instances and drivers the engine API routes use,
 * so a front end such as the CRI server works on the domain, not over HTTP.
 */
import type { ContainerManager } from './container/manager.js';
import type { ExecManager } from './container/exec.js';
import type { ImageDriver } from './drivers/image.js';
import type { NetworkDriver } from './drivers/network.js';
import type { EventBus } from './events.js';

export interface Engine {
  /** The engine's version (core's package version). */
  readonly version: string;
  /** Containers: create, start, stop, remove, find, records, logs path, attach. */
  readonly containers: ContainerManager;
  /** Exec instances in running containers. */
  readonly execs: ExecManager;
  /** The image drivers registered at start, in registration order. */
  imageDrivers(): readonly ImageDriver[];
  /** The network drivers registered at start. */
  networkDrivers(): readonly NetworkDriver[];
  /** The engine's event stream (container, image, network events in Docker's shape). */
  readonly events: EventBus;
}
