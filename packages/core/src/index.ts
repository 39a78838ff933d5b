/**
 * @isula/core: the plugin host. Plugins import types and helpers from here;
 * importing this module runs nothing.
 */
export * from './errors.js';
export * from './hooks.js';
export * from './plugin.js';
export type * from './drivers/index.js';
export { defaultConfig, loadConfig, validateConfig, FIRST_PARTY_PLUGINS, LOG_LEVELS, parseDuration } from './config.js';
export type { DaemonConfig, LogLevel, PluginSpec, RuntimeConfig, LoadedConfig } from './config.js';
export { EventBus, matchesFilter, parseEventFilters, parseEventTime } from './events.js';
export type { EngineEvent, EventFilter } from './events.js';
export { writeFileAtomic, fsyncDir } from './atomic-file.js';
export { KeyedMutex } from './container/keyed-mutex.js';
export { loadPlugins, locatePlugin } from './plugin-loader.js';
export { Daemon, ENGINE_VERSION } from './daemon.js';
export type { DaemonOptions } from './daemon.js';
export { ApiServer, API_VERSION, MIN_API_VERSION, MAX_JSON_BODY_BYTES, readJsonBody, sendJson } from './api/server.js';
export type { Handler, RequestContext } from './api/server.js';
export { checkShape } from './api/body-shape.js';
export { faultPoint } from './fault.js';
export { ociLinuxResources } from './drivers/resources.js';
export type { OciLinuxResources } from './drivers/resources.js';
export * from './spec/index.js';
export type * from './container/docker-types.js';
export { ContainerManager, mergeEnv } from './container/manager.js';
export { signalNumber } from './signals.js';
export { identify, isSameProcess, readStartTime, signalProcess, waitProcessGone, type ProcessIdentity } from './process-identity.js';
export type { AttachSink, SpecBuilder, ContainerManagerDeps } from './container/manager.js';
export type { ContainerRecord, ContainerState, ContainerStatus } from './container/record.js';
export { ExecManager } from './container/exec.js';
export type { ExecCreateBody, ExecInstance, ExecSink } from './container/exec.js';
export type { Engine } from './engine.js';
