/**
 * isulad's start and stop: configuration, roots, the single-daemon lock,
 * plugins, the engine API and the front ends plugins register.
 */
import { randomUUID } from 'node:crypto';
import fs from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import type { Logger } from 'pino';
import { registerContainerRoutes } from './api/container-routes.js';
import { registerImageArchiveRoutes } from './api/image-archive-routes.js';
import { registerImageRoutes } from './api/image-routes.js';
import { registerDiskUsageRoutes } from './api/disk-usage-routes.js';
import { registerRegistryRoutes } from './api/registry-routes.js';
import { registerNetworkRoutes } from './api/network-routes.js';
import { registerVolumeRoutes } from './api/volume-routes.js';
import { registerStreamRoutes } from './api/stream-routes.js';
import { registerSystemRoutes, type EngineFeature } from './api/system-routes.js';
import type { ImageDriver } from './drivers/image.js';
import type { NetworkDriver } from './drivers/network.js';
import { ApiServer } from './api/server.js';
import { loadConfig, metricsListen, type DaemonConfig, type LogLevel } from './config.js';
import { ExecManager } from './container/exec.js';
import { HealthMonitor } from './container/health.js';
import { ContainerManager } from './container/manager.js';
import { dockerSpecBuilder } from './container/spec-adapter.js';
import { acquireDaemonLock, type DaemonLock } from './daemon-lock.js';
import { writeFileAtomic } from './atomic-file.js';
import { IsulaError } from './errors.js';
import type { Engine } from './engine.js';
import { EventBus } from './events.js';
import { createHooks, notify, type FrontEnd, type Hooks } from './hooks.js';
import { observeImageDriver } from './image-hooks.js';
import { createRootLogger, type RootLogger } from './logger.js';
import { CONTAINER_OPERATIONS, createMetrics, EXEC_OPERATIONS, IMAGE_OPERATIONS, instrument, metricsServer, NO_METRICS, registryOf, type EngineMetrics } from './metrics.js';
import { loadPlugins } from './plugin-loader.js';
import { PLUGIN_API_VERSION, type LoadedPlugin, type PluginHost } from './plugin.js';
import { loadHookSpec } from './spec/oci-hooks.js';
import { isCgroupV2 } from './spec/system-container.js';
import { resolveDaemonRemap, type IdMap } from './container/userns.js';

export const ENGINE_VERSION: string = (createRequire(import.meta.url)('../../package.json') as { version: string }).version;

export interface DaemonOptions {
  configFile?: string;
  graph?: string;
  state?: string;
  /** `-H` values; replace the config's `hosts` when given. */
  hosts?: string[];
  logLevel?: LogLevel;
  /** Also log to stderr (default: when stderr is a terminal). */
  logStderr?: boolean;
}

interface RunningFrontEnd {
  frontEnd: FrontEnd;
  endpoints: string[];
}

export class Daemon {
  readonly config: DaemonConfig;
  readonly log: Logger;
  readonly hooks: Hooks;
  readonly events: EventBus;
  readonly plugins: LoadedPlugin[] = [];
  readonly imageDrivers: ImageDriver[] = [];
  readonly networkDrivers: NetworkDriver[] = [];
  readonly #frontEnds: RunningFrontEnd[] = [];
  readonly #api: ApiServer;
  #containers: ContainerManager | undefined;
  /** daemon.json's userns-remap as a host range, when on. */
  #userns: IdMap | undefined;
  #health: HealthMonitor | undefined;
  readonly #root: RootLogger;
  readonly #options: DaemonOptions;
  /** One reload at a time: a SIGHUP during a reload waits for it. */
  #reloading: Promise<unknown> = Promise.resolve();
  #lock: DaemonLock | undefined;
  #engineId: string | undefined;
  #stopping: Promise<void> | undefined;

  private constructor(config: DaemonConfig, root: RootLogger, options: DaemonOptions) {
    this.config = config;
    this.log = root.logger;
    this.#root = root;
    this.#options = options;
    this.hooks = createHooks();
    this.events = new EventBus();
    this.#api = new ApiServer(this.log.child({ component: 'api' }));
  }

  /** Starts a daemon; on any failure everything started so far is undone and the error thrown. */
  static async start(options: DaemonOptions = {}): Promise<Daemon> {
    const loaded = await loadConfig({
      ...(options.configFile !== undefined && { configFile: options.configFile }),
      ...(options.state !== undefined && { state: options.state }),
      ...(options.graph !== undefined && { graph: options.graph }),
    });
    const config: DaemonConfig = { ...loaded.config };
    if (options.hosts !== undefined && options.hosts.length > 0) {
      for (const h of options.hosts) {
        if (!h.startsWith('unix:///') && h !== 'fd://') throw new IsulaError('CONFIG_INVALID', `-H ${h}: only unix://ABSOLUTE_PATH and fd:// (systemd socket activation) hosts are supported`);
      }
      config.hosts = options.hosts;
    }
    if (options.logLevel !== undefined) config['log-level'] = options.logLevel;

    process.umask(config['native.umask'] === 'secure' ? 0o027 : 0o022);
    await fs.mkdir(config.graph, { recursive: true, mode: 0o711 });
    await fs.mkdir(config.state, { recursive: true, mode: 0o711 });
    const root = createRootLogger(config, options.logStderr === undefined ? {} : { stderr: options.logStderr });
    const daemon = new Daemon(config, root, options);
    daemon.log.info({ configFile: loaded.file ?? '(built-in defaults)', version: ENGINE_VERSION, node: process.version }, 'isulad starting');
    for (const key of loaded.unknownKeys) daemon.log.warn({ key, file: loaded.file }, 'unknown key in daemon.json ignored');
    try {
      await daemon.#start();
    } catch (err) {
      daemon.log.error({ err }, 'isulad failed to start');
      await daemon.stop();
      throw err;
    }
    return daemon;
  }

  async #start(): Promise<void> {
    this.#lock = await acquireDaemonLock(this.config.state, this.config.pidfile);
    // Off (the default): NO_METRICS times nothing and prom-client is never loaded.
    const metricsAt = metricsListen(this.config);
    const metrics: EngineMetrics = metricsAt === undefined
      ? NO_METRICS
      : await createMetrics(() => ({ containers: () => this.#containers?.records() ?? [] }), { version: ENGINE_VERSION, pluginApiVersion: PLUGIN_API_VERSION });
    const plugins = await loadPlugins(this.config.plugins, {
      pluginDirs: this.config['plugin-dirs'],
      hostFor: (name) => this.#hostFor(name),
      log: this.log,
      onLoaded: (p, ms) => metrics.pluginLoaded(p.name, ms),
    });
    this.plugins.push(...plugins);
    for (const p of plugins) {
      this.events.emit({ Type: 'plugin', Action: 'enable', Actor: { ID: p.name, Attributes: { name: p.name, version: p.version } } });
    }
    await this.hooks.registerImageDrivers.promise({
      register: (d) => {
        observeImageDriver(d, this.hooks, this.log.child({ component: 'image-hooks' }));
        instrument(d, metrics, IMAGE_OPERATIONS, (method, args, ok) => {
          if (method === 'pull' && typeof args[0] === 'string') metrics.imagePulled(registryOf(args[0]), ok);
        });
        this.imageDrivers.push(d);
      },
    });
    await this.hooks.registerNetworkDrivers.promise({ register: (d) => { this.networkDrivers.push(d); } });
    const imageSource = { drivers: () => this.imageDrivers, events: this.events };
    const userns = await resolveDaemonRemap(this.config['userns-remap']);
    this.#userns = userns;
    if (userns !== undefined) this.log.info({ userns }, 'user namespaces on: containers run in this host range');
    const containers = new ContainerManager({
      ...(userns !== undefined && { userns }),
      ...(this.config['hook-spec'] !== '' && { ociHooks: loadHookSpec(this.config['hook-spec']) }),
      config: this.config,
      log: this.log,
      hooks: this.hooks,
      events: this.events,
      imageDrivers: () => this.imageDrivers,
      networkDrivers: () => this.networkDrivers,
      spec: dockerSpecBuilder(this.log),
    });
    this.#containers = containers;
    await containers.restore();
    // Timed from here: what restore did is not a user's operation.
    instrument(containers, metrics, CONTAINER_OPERATIONS);
    registerContainerRoutes(this.#api, containers, this.events);
    registerVolumeRoutes(this.#api, containers, this.events);
    const execs = new ExecManager(containers, this.log);
    instrument(execs, metrics, EXEC_OPERATIONS);
    registerStreamRoutes(this.#api, containers, execs);
    this.#health = new HealthMonitor({ containers, execs, events: this.events, log: this.log });
    this.#health.resumeAll();
    registerImageRoutes(this.#api, imageSource);
    registerDiskUsageRoutes(this.#api, imageSource, containers);
    registerImageArchiveRoutes(this.#api, imageSource);
    registerRegistryRoutes(this.#api, imageSource);
    registerNetworkRoutes(this.#api, {
      drivers: () => this.networkDrivers,
      containers: () => containers.records(),
      events: this.events,
      connect: (container, network, opts) => containers.connectNetwork(container, network, opts),
      disconnect: (container, network, force) => containers.disconnectNetwork(container, network, force),
    });
    registerSystemRoutes(this.#api, {
      version: ENGINE_VERSION,
      gitCommit: process.env['ISULA_GIT_COMMIT'] ?? '',
      events: this.events,
      info: () => this.#info(),
      features: () => this.#features(),
    });
    // Every front end listens before the engine API does: a client that sees
    // the API answer (the readiness signal of tests, scripts and systemd) can
    // reach the metrics endpoint and the plugins' front ends (CRI) as well.
    const gid = await groupId(this.config.group, this.log);
    if (metricsAt !== undefined) {
      const frontEnd = metricsServer(metricsAt, metrics, this.log.child({ component: 'metrics' }), gid.gid);
      const { endpoints } = await frontEnd.start();
      this.#frontEnds.push({ frontEnd, endpoints });
      this.log.info({ endpoints }, 'metrics served');
    }

    const registered: FrontEnd[] = [];
    const engine: Engine = {
      version: ENGINE_VERSION,
      containers,
      execs,
      imageDrivers: () => this.imageDrivers,
      networkDrivers: () => this.networkDrivers,
      events: this.events,
    };
    await this.hooks.registerFrontEnds.promise({ register: (fe) => { registered.push(fe); }, engine });
    for (const frontEnd of registered) {
      const { endpoints } = await frontEnd.start();
      this.#frontEnds.push({ frontEnd, endpoints });
      this.log.info({ frontEnd: frontEnd.name, endpoints }, 'front end started');
    }
    await this.#api.listen(this.config.hosts, gid);
    this.log.info({ hosts: this.config.hosts, plugins: this.plugins.map((p) => `${p.name}@${p.version}`) }, 'isulad started');
  }

  #hostFor(pluginName: string): PluginHost {
    return {
      apiVersion: PLUGIN_API_VERSION,
      hooks: this.hooks,
      logger: this.log.child({ plugin: pluginName }),
      config: Object.freeze(structuredClone(this.config)),
      events: this.events,
      emitEvent: (e) => { this.events.emit(e); },
    };
  }

  async #info(): Promise<Record<string, unknown>> {
    const signal = this.#api.shutdownSignal;
    let images = 0;
    for (const d of this.imageDrivers) images += (await d.list({ signal })).length;
    const records = this.#containers?.records() ?? [];
    const count = (...states: string[]) => records.filter((r) => states.includes(r.State.Status)).length;
    const defaultLog = this.config['container-log'];
    return {
      ID: this.#engineId ??= await engineId(this.config.graph),
      Containers: records.length,
      ContainersRunning: count('running', 'restarting'),
      ContainersPaused: count('paused'),
      ContainersStopped: count('created', 'exited', 'dead', 'removing'),
      Images: images,
      ImageFormats: this.imageDrivers.map((d) => d.format),
      Driver: this.config['storage-driver'],
      LoggingDriver: typeof defaultLog['driver'] === 'string' && defaultLog['driver'] !== '' ? defaultLog['driver'] : 'json-file',
      CgroupDriver: 'cgroupfs',
      CgroupVersion: isCgroupV2() ? '2' : '1',
      IndexServerAddress: 'https://index.docker.io/v1/',
      HttpProxy: process.env['HTTP_PROXY'] ?? process.env['http_proxy'] ?? '',
      HttpsProxy: process.env['HTTPS_PROXY'] ?? process.env['https_proxy'] ?? '',
      NoProxy: process.env['NO_PROXY'] ?? process.env['no_proxy'] ?? '',
      SystemTime: new Date().toISOString(),
      Labels: [],
      Debug: this.config['log-level'] === 'debug' || this.config['log-level'] === 'trace',
      SecurityOptions: ['name=seccomp,profile=default', ...(this.#userns !== undefined ? ['name=userns'] : [])],
      Swarm: { LocalNodeState: 'inactive', NodeID: '', NodeAddr: '', ControlAvailable: false, Error: '', RemoteManagers: null },
      Warnings: [],
      DockerRootDir: this.config.graph,
      IsuladStateDir: this.config.state,
      DefaultRuntime: this.config['default-runtime'],
      Runtimes: await this.#runtimes(),
      RegistryConfig: { Mirrors: this.config['registry-mirrors'], InsecureRegistryCIDRs: [], IndexConfigs: {} },
      // Docker lists its network drivers here (bridge, host ...); ours are the plugins' (the
      // networking feature's Detail names the same, as text).
      Plugins: { Volume: [], Network: this.#networkDriverNames(), Authorization: null, Log: [] },
      IsulaPlugins: this.plugins.map(({ name, version, apiVersion }) => ({ Name: name, Version: version, ApiVersion: apiVersion })),
      PluginApiVersion: PLUGIN_API_VERSION,
      FrontEnds: this.#frontEnds.map(({ frontEnd, endpoints }) => ({ Name: frontEnd.name, Endpoints: endpoints })),
      Hosts: this.config.hosts,
      IsulaFeatures: this.#features(),
    };
  }

  /** What `isula info` and `isula version` list: the engine's features, on or off, with their settings. */
  #features(): EngineFeature[] {
    const u = this.#userns;
    const hookSpec = this.config['hook-spec'];
    const networks = this.#networkDriverNames();
    return [
      { Name: 'health-checks', Enabled: true, Detail: 'HEALTHCHECK, --health-*' },
      { Name: 'volumes', Enabled: true, Detail: 'driver local' },
      { Name: 'oci-hooks', Enabled: true, Detail: hookSpec === '' ? 'per container (--hook-spec)' : `daemon hook-spec ${hookSpec}, and per container` },
      { Name: 'userns-remap', Enabled: u !== undefined, Detail: u === undefined ? '--user-remap per container' : `${u.uid}:${u.gid}:${u.size} from "${this.config['userns-remap']}"` },
      { Name: 'system-containers', Enabled: true, Detail: '--system-container, --ns-change-opt' },
      { Name: 'external-rootfs', Enabled: this.imageDrivers.some((d) => d.format === 'external'), Detail: '--external-rootfs' },
      { Name: 'networking', Enabled: networks.length > 0, Detail: networks.length > 0 ? networks.join(', ') : 'no network plugin' },
    ];
  }

  /** The registered network drivers' names, in registration order. */
  #networkDriverNames(): string[] {
    return this.networkDrivers.map((d) => d.name);
  }

  /** Runtimes a plugin claims: the configured ones, the default, and runc/crun when claimed without configuration. */
  async #runtimes(): Promise<Record<string, { path?: string; runtimeArgs?: string[] }>> {
    const names = new Set(['runc', 'crun', this.config['default-runtime'], ...Object.keys(this.config.runtimes)]);
    const out: Record<string, { path?: string; runtimeArgs?: string[] }> = {};
    for (const name of names) {
      const configured = this.config.runtimes[name];
      if (configured === undefined && (await this.hooks.resolveRuntime.promise(name).catch(() => undefined)) === undefined) continue;
      out[name] = configured === undefined ? {} : { path: configured.path, runtimeArgs: configured['runtime-args'] };
    }
    return out;
  }

  /** Stops accepting requests, stops front ends and plugins, releases the lock. Idempotent. */
  stop(): Promise<void> {
    this.#stopping ??= this.#stop();
    return this.#stopping;
  }

  async #stop(): Promise<void> {
    this.log.info('isulad stopping');
    await this.#api.close().catch((err: unknown) => this.log.warn({ err }, 'closing the engine API failed'));
    this.#health?.close();
    this.#containers?.close();
    await this.#containers?.release();
    for (const { frontEnd } of this.#frontEnds.reverse()) {
      await frontEnd.stop().catch((err: unknown) => this.log.warn({ err, frontEnd: frontEnd.name }, 'stopping a front end failed'));
    }
    await this.hooks.shutdown.promise().catch((err: unknown) => this.log.warn({ err }, 'a plugin failed to shut down'));
    await this.#lock?.release().catch((err: unknown) => this.log.warn({ err }, 'releasing the daemon lock failed'));
    this.log.info('isulad stopped');
    this.#root.flush();
    this.#root.close();
  }

  /**
   * SIGHUP: reads daemon.json again and applies what can change without
   * touching a running container: `log-level`, the daemon log's `log-opts`
   * bounds, `registry-mirrors`, `registry-mirrors-by-host`,
   * `insecure-registries` (through the `configReloaded` hook). Other changed
   * keys are named in a warning and wait for a restart. An invalid file is
   * refused whole: an error line names the problem and the running
   * configuration stays. Never throws.
   */
  reload(): Promise<{ applied: boolean; changed: string[] }> {
    const next = this.#reloading.then(() => this.#reload());
    this.#reloading = next.catch(() => undefined);
    return next;
  }

  async #reload(): Promise<{ applied: boolean; changed: string[] }> {
    if (this.#stopping !== undefined) return { applied: false, changed: [] };
    const o = this.#options;
    let loaded: Awaited<ReturnType<typeof loadConfig>>;
    try {
      loaded = await loadConfig({
        ...(o.configFile !== undefined && { configFile: o.configFile }),
        ...(o.state !== undefined && { state: o.state }),
        ...(o.graph !== undefined && { graph: o.graph }),
      });
    } catch (err) {
      const e = err instanceof IsulaError ? err : new IsulaError('CONFIG_INVALID', String(err), { cause: err });
      this.log.error({ code: e.code, problem: e.message }, 'configuration reload refused: daemon.json is invalid; the running configuration stays');
      return { applied: false, changed: [] };
    }
    const fresh = loaded.config;
    // The command line wins over the file, at start and at reload alike.
    if (o.logLevel !== undefined) fresh['log-level'] = o.logLevel;
    if (o.hosts !== undefined && o.hosts.length > 0) fresh.hosts = o.hosts;
    for (const key of loaded.unknownKeys) this.log.warn({ key, file: loaded.file }, 'unknown key in daemon.json ignored');
    const changed: (keyof DaemonConfig)[] = [];
    const pending: (keyof DaemonConfig)[] = [];
    for (const key of Object.keys(fresh) as (keyof DaemonConfig)[]) {
      if (JSON.stringify(fresh[key]) === JSON.stringify(this.config[key])) continue;
      (RELOADABLE_KEYS.has(key) ? changed : pending).push(key);
    }
    const config = this.config as unknown as Record<string, unknown>;
    for (const key of changed) config[key] = fresh[key];
    // Also when nothing changed: reopening the file is what logrotate's `postrotate kill -HUP` asks for.
    try {
      this.#root.reload(this.config);
    } catch (err) {
      this.log.warn({ err }, 'reopening the daemon log failed; it goes on in the old file');
    }
    for (const key of pending) this.log.warn({ key }, 'daemon.json key changed; it takes effect when isulad restarts');
    if (changed.length > 0) await notify(this.hooks, this.log, 'configReloaded', { config: Object.freeze(structuredClone(this.config)), changed });
    this.log.info({ file: loaded.file ?? '(built-in defaults)', changed, pending }, 'configuration reloaded');
    return { applied: true, changed };
  }
}

/** What a SIGHUP applies; every other key waits for a restart. */
const RELOADABLE_KEYS: ReadonlySet<keyof DaemonConfig> = new Set<keyof DaemonConfig>([
  'log-level', 'log-opts', 'registry-mirrors', 'registry-mirrors-by-host', 'insecure-registries',
]);

/** A stable id for this engine's data root (docker info's ID), kept in `<graph>/engine-id`. */
async function engineId(graph: string): Promise<string> {
  const file = path.join(graph, 'engine-id');
  const known = (await fs.readFile(file, 'utf8').catch(() => '')).trim();
  if (/^[0-9a-f-]{36}$/.test(known)) return known;
  const id = randomUUID();
  await writeFileAtomic(file, `${id}\n`, { mode: 0o644 });
  return id;
}

/** The socket's group: the configured group's gid, or none (root only) when that group does not exist. */
async function groupId(group: string, log: Logger): Promise<{ gid?: number }> {
  if (group === '') return {};
  const text = await fs.readFile('/etc/group', 'utf8').catch(() => '');
  for (const line of text.split('\n')) {
    const [name, , gid] = line.split(':');
    if (name === group && gid !== undefined && /^\d+$/.test(gid)) return { gid: Number(gid) };
  }
  log.warn({ group }, 'socket group does not exist; the engine socket stays accessible to root only');
  return {};
}
