/**
 * The container domain: ids and names, the state machine, the life cycle
 * through a RuntimeDriver and an ImageDriver, restart policies, `--rm`,
 * waiters, attach hand-off and restore after a daemon restart.
 *
 * Operations on one container run one at a time (KeyedMutex), except the
 * waits inside stop/kill/rm, which run outside the lock so the exit handler
 * can record the exit meanwhile.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import type { Logger } from 'pino';
import { engineInternal } from '../metrics.js';
import type { DaemonConfig } from '../config.js';
import type { ContainerChange, ImageDriver, ImageRef, ImageRuntimeConfig } from '../drivers/image.js';
import type { NetworkAttachResult, NetworkDriver, NetworkInfo } from '../drivers/network.js';
import type { ExitStatus, OciSpec, ResourceUpdate, RuntimeContainerRef, RuntimeDriver, StdioStream } from '../drivers/runtime.js';
import { IsulaError, toIsulaError } from '../errors.js';
import { faultPoint } from '../fault.js';
import type { EventBus } from '../events.js';
import { notify, SpecStage, type ContainerEvent, type Hooks } from '../hooks.js';
import { signalNumber } from '../signals.js';
import type { ContainerCreateBody, HostConfig } from './docker-types.js';
import { KeyedMutex } from './keyed-mutex.js';
import { applyCommitChanges, type ImageConfigChanges } from './commit-changes.js';
import { logSettings, resolveLogConfig, type LogSettings } from './log-config.js';
import { LogRotation } from './log-rotation.js';
import { mergeHealthcheck, type HealthState } from './health.js';
import { checkInSubnets, checkIpv4, ContainerNetworking, endpointKeys, joinedNetworks, portMappings } from './network.js';
import type { ContainerNetwork } from './network.js';
import { VolumeStore, type VolumeMount, type VolumeRecord } from './volumes.js';
import { parseUserMounts } from '../spec/mounts.js';
import { mergeHooks, readHookSpec, type OciHooks } from '../spec/oci-hooks.js';
import { SYSTEM_CONTAINER_INIT, systemContainerStopSignal } from '../spec/system-container.js';
import { checkReachable, closeCgroupPath, containerIdMap, openCgroupPath, type IdMap } from './userns.js';
import { generateName, LOG_FILE, NAME_PATTERN, readRecord, saveRecord, ZERO_TIME, type ContainerRecord, type ContainerStatus } from './record.js';

/** What core needs from the spec builder (packages/core/src/spec). */
export interface SpecBuilder {
  /** Cheap checks at create time; throws CONTAINER_CONFIG_INVALID. */
  validate(body: ContainerCreateBody): void;
  /** The process args by Docker's entrypoint/cmd rules; throws when there is no command. */
  command(body: ContainerCreateBody, image: ImageRuntimeConfig): { path: string; args: string[] };
  /** Writes hostname, hosts and resolv.conf into the container's directory (`inPlace`: keep the inodes, they are mounted). */
  writeFiles(containerDir: string, record: ContainerRecord, opts?: { inPlace?: boolean }): Promise<void>;
  build(input: { record: ContainerRecord; image: ImageRuntimeConfig; rootfs: string; containerDir: string; cgroupsPath: string; netnsPath?: string; volumeDir?: (name: string) => string }): Promise<{ spec: OciSpec; warnings: string[] }>;
  /** Files of the container's directory that are bind-mounted into it (hosts, hostname, resolv.conf). */
  readonly boundFiles: readonly string[];
  /** Docker's resource fields of a HostConfig as the runtime driver's update. */
  resources(hc: HostConfig): ResourceUpdate;
}

export interface ContainerManagerDeps {
  config: DaemonConfig;
  log: Logger;
  hooks: Hooks;
  events: EventBus;
  imageDrivers(): readonly ImageDriver[];
  /** Network drivers registered by plugins (network management); attachment goes through the hooks. */
  networkDrivers?(): readonly NetworkDriver[];
  spec: SpecBuilder;
  /** daemon.json's `userns-remap`, resolved to a host range; containers take it unless they ask otherwise. */
  userns?: IdMap;
  /** daemon.json's `hook-spec`, read and checked at start: every container gets these hooks first. */
  ociHooks?: OciHooks;
}

/** An attach client: where output goes, and its stdin. */
export interface AttachSink {
  stdin: boolean;
  stdout: boolean;
  stderr: boolean;
  /** Output of the container (stream 1 stdout, 2 stderr). */
  write(stream: 1 | 2, chunk: Buffer): void;
  /** The container side is done. */
  end(): void;
  /** Called with the driver stream once connected, for stdin. */
  connected(stream: StdioStream): void;
}

interface Live {
  record: ContainerRecord;
  /** Resolves after the current run's exit was handled (recorded and cleaned up: runtime, network, mounts). */
  exited?: Promise<void>;
  markExited?: () => void;
  /** Resolves as soon as the exit is on disk, before the clean-up: what stop's and rm's timeouts watch. */
  exitRecorded?: Promise<void>;
  markRecorded?: () => void;
  restartTimer?: NodeJS.Timeout | undefined;
  /** Attach clients waiting for the container's start. */
  pendingAttach: AttachSink[];
  /** Set while `restart` runs: its stop must not trigger `--rm`. */
  restarting?: boolean;
  exitWaiters: Set<() => void>;
  removeWaiters: Set<() => void>;
  /** cp/export calls using the rootfs now: an exit leaves it mounted for them. */
  rootfsUsers?: number;
}

const execFileP = promisify(execFile);
const RUNNING_STATES: ReadonlySet<ContainerStatus> = new Set(['running', 'paused', 'restarting']);
const MIN_BACKOFF_MS = 100;
const MAX_BACKOFF_MS = 60_000;
/** A run this long resets the restart back-off, as Docker's restart manager does. */
const BACKOFF_RESET_MS = 10_000;
const KILL_WAIT_MS = 30_000;
const OP_TIMEOUT_MS = 120_000;
/** What of a container's Config an image config keeps (`isula commit`). */
const IMAGE_CONFIG_KEYS = ['User', 'ExposedPorts', 'Env', 'Cmd', 'Healthcheck', 'Volumes', 'WorkingDir', 'Entrypoint', 'OnBuild', 'Labels', 'StopSignal', 'Shell'] as const;
/**
 * Mount points the runtime creates in a rootfs that lacks them, for the spec's
 * default mounts (spec/defaults: /proc, /dev, /sys and their submounts, the
 * files bind-mounted from the container's directory): not changes of the
 * container's, left out of `diff` and `commit` as Docker's init layer leaves them out.
 */
const RUNTIME_MOUNT_POINTS: ReadonlySet<string> = new Set(['/proc', '/dev', '/dev/pts', '/dev/shm', '/dev/mqueue', '/dev/console', '/sys', '/etc/hosts', '/etc/hostname', '/etc/resolv.conf', '/etc/mtab']);

export class ContainerManager {
  readonly #deps: ContainerManagerDeps;
  readonly #network: ContainerNetworking;
  readonly volumes: VolumeStore;
  readonly #log: Logger;
  readonly #byId = new Map<string, Live>();
  readonly #names = new Map<string, string>();
  readonly #mutex = new KeyedMutex();
  readonly #shutdown = new AbortController();
  readonly #backoff = new Map<string, number>();
  /** Containers whose restart policy is cancelled until their next manual start (stop, rm, kill with KILL or the stop signal). */
  readonly #cancelled = new Set<string>();
  readonly #removedListeners: ((id: string) => void)[] = [];
  readonly #logRotation: LogRotation;
  readonly root: string;
  readonly bundles: string;

  constructor(deps: ContainerManagerDeps) {
    this.#deps = deps;
    this.#log = deps.log.child({ component: 'containers' });
    this.root = path.join(deps.config.graph, 'containers');
    this.bundles = path.join(deps.config.state, 'containers');
    this.#logRotation = new LogRotation({ log: this.#log });
    this.volumes = new VolumeStore(deps.config.graph, this.#log);
    this.#network = new ContainerNetworking({ stateDir: deps.config.state, hooks: deps.hooks, log: this.#log, drivers: () => deps.networkDrivers?.() ?? [] });
    // OCI hooks (daemon.json's hook-spec, then the container's --hook-spec) join the spec like any plugin's mutation.
    deps.hooks.mutateSpec.tapPromise({ name: 'isula:oci-hooks', stage: SpecStage.NORMAL }, async (spec, ctx) => {
      const record = this.#byId.get(ctx.containerId)?.record;
      const hooks = mergeHooks(spec['hooks'] as OciHooks | undefined, deps.ociHooks, record?.OciHooks);
      return hooks === undefined ? spec : { ...spec, hooks };
    });
  }

  // ---- lookup ----------------------------------------------------------------

  /** Full id, exact name, then a unique id prefix (Docker's order). */
  find(idOrName: string): Live {
    const exact = this.#byId.get(idOrName);
    if (exact !== undefined) return exact;
    const byName = this.#names.get(idOrName.replace(/^\//, ''));
    if (byName !== undefined) { const l = this.#byId.get(byName); if (l !== undefined) return l; }
    if (/^[a-f0-9]+$/.test(idOrName)) {
      const hits = [...this.#byId.keys()].filter((id) => id.startsWith(idOrName));
      if (hits.length > 1) throw new IsulaError('CONTAINER_ID_AMBIGUOUS', `multiple IDs found with provided prefix: ${idOrName}`);
      const l = hits[0] === undefined ? undefined : this.#byId.get(hits[0]);
      if (l !== undefined) return l;
    }
    throw new IsulaError('CONTAINER_NOT_FOUND', `No such container: ${idOrName}`);
  }

  /**
   * Docker's `SizeRw` (bytes in the writable layer) and `SizeRootFs` (plus the
   * image), for `ps -s` and `inspect -s`. Walks the upper directory, bounded.
   */
  async sizes(record: ContainerRecord, signal: AbortSignal): Promise<{ SizeRw: number; SizeRootFs: number }> {
    let rw = 0;
    if (record.Rootfs !== undefined && record.ImageFormat !== 'external') rw = await treeSize(path.join(path.dirname(record.Rootfs), 'upper'));
    const driver = this.#imageDriverOrUndefined(record);
    const image = driver === undefined ? 0 : await driver.inspect({ reference: record.Config.Image ?? '', format: record.ImageFormat, id: record.Image }, { signal }).then((i) => i.sizeBytes, () => 0);
    return { SizeRw: rw, SizeRootFs: rw + image };
  }

  /**
   * Docker's `ContainerChanges` (`isula diff`): the image driver's view of the
   * writable layer, less the mount points the runtime made for the spec's
   * default mounts (Docker creates those in an init layer under the writable
   * one, so `docker diff` never shows them), and a directory reported
   * modified only because one of them was made in it.
   */
  async changes(idOrName: string, signal: AbortSignal): Promise<ContainerChange[]> {
    const { record } = this.find(idOrName);
    const driver = this.#imageDriverOrUndefined(record);
    if (driver?.changes === undefined || record.ImageFormat === 'external') {
      throw new IsulaError('NOT_IMPLEMENTED', `diff is not supported for containers of the ${record.ImageFormat} image format`);
    }
    const all = await driver.changes(record.Id, { signal });
    const hidden = new Set(all.filter((c) => c.Kind === 1 && RUNTIME_MOUNT_POINTS.has(c.Path)).map((c) => c.Path));
    const kept = all.filter((c) => !hidden.has(c.Path));
    const hiddenParents = new Set([...hidden].map((p) => path.posix.dirname(p)));
    return kept.filter((c) => !(c.Kind === 0 && hiddenParents.has(c.Path) && !kept.some((o) => o.Path.startsWith(`${c.Path}/`))));
  }

  /**
   * Docker's commit: the container's writable layer becomes a new image
   * through its image driver, with the container's config (what an image
   * config holds of it), `config` given by the caller over it and `changes`
   * (commit-changes.ts) applied last. A running container is paused for the
   * copy unless `pause` is false, and resumed after.
   */
  async commit(idOrName: string, opts: { reference?: string; author?: string; comment?: string; pause: boolean; changes: readonly string[]; config?: Record<string, unknown> }, signal: AbortSignal): Promise<{ Id: string }> {
    const live = this.find(idOrName);
    const { record } = live;
    const driver = this.#imageDriverOrUndefined(record);
    const commit = driver?.commit?.bind(driver);
    if (driver === undefined || commit === undefined || record.ImageFormat === 'external') {
      throw new IsulaError('NOT_IMPLEMENTED', `commit is not supported for containers of the ${record.ImageFormat} image format`);
    }
    const c = record.Config as Record<string, unknown>;
    const base: Record<string, unknown> = {};
    for (const key of IMAGE_CONFIG_KEYS) if (c[key] !== undefined && c[key] !== null) base[key] = structuredClone(c[key]);
    for (const [key, value] of Object.entries(opts.config ?? {})) if (value !== undefined && value !== null && value !== '') base[key] = value;
    const config = applyCommitChanges(base as ImageConfigChanges, opts.changes);
    // Held as cp holds it: an rm (or a prune) meanwhile is refused instead of deleting the layer mid-copy.
    const ref = await this.withRootfs(record.Id, async () => {
      const pause = opts.pause && record.State.Status === 'running';
      if (pause) await this.pause(record.Id, signal);
      try {
        return await commit(record.Id, {
          signal,
          config,
          // The mount points the runtime made are no change of the container's (see changes()).
          exclude: [...RUNTIME_MOUNT_POINTS],
          // As docker's history: the container's command.
          createdBy: (record.Config.Cmd ?? []).join(' '),
          ...(opts.reference !== undefined && { reference: opts.reference }),
          ...(opts.author !== undefined && { author: opts.author }),
          ...(opts.comment !== undefined && { comment: opts.comment }),
        });
      } finally {
        if (pause) await this.unpause(record.Id, signal).catch((err: unknown) => this.#log.warn({ err, id: record.Id }, 'resuming the container after commit failed'));
      }
    });
    this.#emit(record, 'commit', { comment: opts.comment ?? '', imageID: ref.id, imageRef: opts.reference ?? '' });
    return { Id: ref.id };
  }

  /** Every network's id by its name (`bridge`: the default network's), for `ps --filter network=ID-PREFIX`. */
  networkIds(signal: AbortSignal): Promise<Map<string, string>> {
    return this.#network.networkIds(signal);
  }

  records(): ContainerRecord[] {
    return [...this.#byId.values()].map((l) => l.record);
  }

  /** Called with the id of each container removed (exec instances and other per-container state go with it). */
  onRemoved(listener: (id: string) => void): void {
    this.#removedListeners.push(listener);
  }

  /** Aborted when the daemon shuts down: long-running driver calls (an exec) end with it. */
  get shutdownSignal(): AbortSignal {
    return this.#shutdown.signal;
  }

  /** Emits a container event (Docker's shape) for the stream operations kept outside this class. */
  emitEvent(record: ContainerRecord, action: string, extra: Record<string, string> = {}): void {
    this.#emit(record, action, extra);
  }

  /** The record, its runtime driver and the driver's ref: for exec, top, stats and resize. */
  async driverOf(idOrName: string): Promise<{ record: ContainerRecord; runtime: RuntimeDriver; ref: RuntimeContainerRef }> {
    const record = this.find(idOrName).record;
    return { record, runtime: await this.#runtime(record.Runtime), ref: this.#ref(record) };
  }

  /** Settles when the current run of a running container has exited; undefined when it is not running. */
  exitOf(idOrName: string): Promise<void> | undefined {
    const live = this.find(idOrName);
    return RUNNING_STATES.has(live.record.State.Status) ? live.exited : undefined;
  }

  /** The container's log file (conmon's k8s-file format; rotated files beside it): HostConfig.LogPath when set. */
  logPath(record: ContainerRecord): string {
    const asked = record.HostConfig.LogPath;
    if (asked !== undefined && asked !== '') return asked;
    return path.join(this.containerDir(record.Id), LOG_FILE);
  }

  /**
   * The container's root filesystem, mounted for the time `fn` runs (cp,
   * export): a stopped container's is mounted for it and unmounted after,
   * unless the container started meanwhile.
   */
  async withRootfs<T>(idOrName: string, fn: (rootfs: string, record: ContainerRecord) => Promise<T>): Promise<T> {
    const live = this.find(idOrName);
    const id = live.record.Id;
    const driver = this.#imageDriver(live.record);
    const rootfs = await this.#mutex.run(id, async () => {
      // Checked under the lock: an rm that finished meanwhile must not get its layer mounted again.
      const st = live.record.State.Status;
      if (!this.#byId.has(id) || st === 'removing' || st === 'dead') throw new IsulaError('CONTAINER_STATE_CONFLICT', `container ${id.slice(0, 12)} is being removed`);
      const ref: ImageRef = { reference: live.record.Config.Image ?? '', format: live.record.ImageFormat, id: live.record.Image };
      const mounted = await driver.mountRootfs(id, ref, { signal: this.#opSignal() });
      live.rootfsUsers = (live.rootfsUsers ?? 0) + 1;
      return mounted;
    });
    try {
      return await fn(rootfs, live.record);
    } finally {
      await this.#mutex.run(id, async () => {
        live.rootfsUsers = (live.rootfsUsers ?? 1) - 1;
        // 'restarting' has no process: its start mounts again, so the copy's mount goes now.
        const st = live.record.State.Status;
        if (live.rootfsUsers === 0 && st !== 'running' && st !== 'paused' && this.#byId.has(id)) {
          await driver.unmountRootfs(id, { signal: AbortSignal.timeout(KILL_WAIT_MS) }).catch((err: unknown) => this.#log.warn({ err, id }, 'unmounting the rootfs after a copy failed'));
        }
      });
    }
  }

  /**
   * The signal for a state change: it must finish even when the client that
   * asked goes away (as Docker's), so only daemon shutdown or a generous
   * timeout end it. Request signals are for waits and streams.
   */
  #opSignal(): AbortSignal {
    return AbortSignal.any([this.#shutdown.signal, AbortSignal.timeout(OP_TIMEOUT_MS)]);
  }

  containerDir(id: string): string { return path.join(this.root, id); }

  /** Absolute cgroups path of a container (PLATFORM §2: never relative). */
  #cgroupsPath(record: ContainerRecord): string {
    const hc = record.HostConfig;
    return path.posix.join('/', hc.CgroupParent !== undefined && hc.CgroupParent !== '' ? hc.CgroupParent : this.#deps.config['cgroup-parent'], record.Id);
  }
  bundleDir(id: string): string { return path.join(this.bundles, id); }

  // ---- create ----------------------------------------------------------------

  async create(body: ContainerCreateBody, requestedName: string | undefined, signal: AbortSignal): Promise<{ Id: string; Warnings: string[] }> {
    if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new IsulaError('CONTAINER_CONFIG_INVALID', 'the create request body must be a JSON object');
    const hc: HostConfig = body.HostConfig ?? {};
    const imageName = body.Image ?? '';
    if (imageName === '' && (hc.ExternalRootfs ?? '') === '') throw new IsulaError('CONTAINER_CONFIG_INVALID', 'no image specified');
    this.#deps.spec.validate(body);
    const policy = hc.RestartPolicy?.Name ?? '';
    if (hc.AutoRemove === true && policy !== '' && policy !== 'no') {
      throw new IsulaError('CONTAINER_CONFIG_INVALID', `conflicting options: restart policy "${policy}" and --rm (AutoRemove)`);
    }

    let name: string;
    if (requestedName !== undefined && requestedName !== '') {
      if (!NAME_PATTERN.test(requestedName)) throw new IsulaError('CONTAINER_CONFIG_INVALID', `Invalid container name (${requestedName}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed`);
      name = requestedName.replace(/^\//, '');
    } else {
      name = generateName((n) => this.#names.has(n));
    }
    const holder = this.#names.get(name);
    if (holder !== undefined) {
      throw new IsulaError('CONTAINER_NAME_IN_USE', `Conflict. The container name "/${name}" is already in use by container "${holder}". You have to remove (or rename) that container to be able to reuse that name.`);
    }

    const runtimeName = hc.Runtime !== undefined && hc.Runtime !== '' ? hc.Runtime : this.#deps.config['default-runtime'];
    await (await this.#runtime(runtimeName)).probe?.({ signal });
    const { driver: imageDriver, ref } = await this.#resolveImage(body, signal);
    const imageInfo = await imageDriver.inspect(ref, { signal });
    // A system container boots its init unless told otherwise (the image's Cmd is for application containers).
    if (hc.SystemContainer === true && (body.Cmd ?? []).length === 0 && (body.Entrypoint ?? []).filter((e) => e !== '').length === 0) {
      body = { ...body, Cmd: [SYSTEM_CONTAINER_INIT], Entrypoint: [''] };
    }
    const cmd = this.#deps.spec.command(body, imageInfo.config);
    const ociHooks = hc.HookSpec !== undefined && hc.HookSpec !== '' ? await readHookSpec(hc.HookSpec) : undefined;
    const idMap = await containerIdMap(hc, this.#deps.userns);
    if (idMap !== undefined) {
      const optOut = 'use --userns=host for this container';
      const why = `user namespaces are on (daemon.json "userns-remap" or --user-remap): ${optOut}`;
      if (hc.Privileged === true) throw new IsulaError('CONTAINER_CONFIG_INVALID', `privileged mode is incompatible with user namespaces; ${why}`);
      if (hc.NetworkMode === 'host') throw new IsulaError('CONTAINER_CONFIG_INVALID', `cannot share the host's network namespace when ${why}`);
      if (hc.PidMode === 'host') throw new IsulaError('CONTAINER_CONFIG_INVALID', `cannot share the host's PID namespace when ${why}`);
      await checkReachable(this.#deps.config.graph, idMap);
      if (imageDriver.remapRootfs === undefined) throw new IsulaError('NOT_IMPLEMENTED', `the ${imageDriver.format} image driver cannot remap file ownership for user namespaces; ${optOut}`);
    }

    let id = randomBytes(32).toString('hex');
    while (this.#byId.has(id) || /^\d+$/.test(id.slice(0, 12))) id = randomBytes(32).toString('hex');
    // Check again and reserve in one synchronous step: another create or a rename may have
    // taken the name during the awaits above.
    // A generated name taken meanwhile (concurrent creates) is generated again, never an error.
    if (requestedName === undefined || requestedName === '') {
      if (this.#names.has(name)) name = generateName((n) => this.#names.has(n));
    }
    const taker = this.#names.get(name);
    if (taker !== undefined) {
      throw new IsulaError('CONTAINER_NAME_IN_USE', `Conflict. The container name "/${name}" is already in use by container "${taker}". You have to remove (or rename) that container to be able to reuse that name.`);
    }
    this.#names.set(name, id);
    const dir = this.containerDir(id);
    const now = new Date().toISOString();
    const record: ContainerRecord = {
      Id: id,
      Name: name,
      Created: now,
      Path: cmd.path,
      Args: cmd.args,
      Config: {
        ...body,
        Hostname: body.Hostname !== undefined && body.Hostname !== '' ? body.Hostname : id.slice(0, 12),
        Image: imageName !== '' ? imageName : (hc.ExternalRootfs ?? ''),
        Env: mergeEnv(imageInfo.config.env ?? [], body.Env ?? []),
        // Docker's merge: the image's Cmd only when neither entrypoint nor cmd was given.
        Cmd: (body.Entrypoint ?? []).length === 0 && (body.Cmd ?? []).length === 0 ? (imageInfo.config.cmd ?? null) : (body.Cmd ?? null),
        Entrypoint: body.Entrypoint ?? imageInfo.config.entrypoint ?? null,
        WorkingDir: body.WorkingDir !== undefined && body.WorkingDir !== '' ? body.WorkingDir : (imageInfo.config.workingDir ?? ''),
        User: body.User !== undefined && body.User !== '' ? body.User : (imageInfo.config.user ?? ''),
        Labels: { ...(imageInfo.config.labels ?? {}), ...(body.Labels ?? {}) },
        // Docker's merge: inspect's Config.Volumes lists the image's VOLUMEs with the request's.
        ...((imageInfo.config.volumes ?? []).length > 0 && { Volumes: { ...Object.fromEntries((imageInfo.config.volumes ?? []).map((v) => [v, {}])), ...(body.Volumes ?? {}) } }),
        // A system container's default waits for its first start, which looks at the init in the rootfs.
        ...(body.StopSignal ?? imageInfo.config.stopSignal ?? (hc.SystemContainer === true ? undefined : 'SIGTERM')) !== undefined && { StopSignal: body.StopSignal ?? imageInfo.config.stopSignal ?? 'SIGTERM' },
        ...(mergeHealthcheck(body.Healthcheck, imageInfo.config.healthcheck) !== undefined && { Healthcheck: mergeHealthcheck(body.Healthcheck, imageInfo.config.healthcheck) as Record<string, unknown> }),
      },
      HostConfig: { ...hc, Runtime: runtimeName, LogConfig: resolveLogConfig(hc.LogConfig, this.#deps.config['container-log']) },
      Image: ref.id,
      ImageFormat: imageDriver.format,
      Runtime: runtimeName,
      State: { Status: 'created', Pid: 0, ExitCode: 0, Error: '', StartedAt: ZERO_TIME, FinishedAt: ZERO_TIME, OOMKilled: false },
      RestartCount: 0,
      HasBeenManuallyStopped: false,
      ...(ociHooks !== undefined && { OciHooks: ociHooks }),
      ...(idMap !== undefined && { IdMap: idMap }),
    };
    delete (record.Config as ContainerCreateBody).HostConfig;
    delete (record.Config as ContainerCreateBody).NetworkingConfig;
    if (body.NetworkingConfig !== undefined && body.NetworkingConfig !== null) record.NetworkingConfig = body.NetworkingConfig as NonNullable<ContainerRecord['NetworkingConfig']>;
    const madeVolumes: string[] = [];
    try {
      await this.#network.validate(record, signal);
      portMappings(record, imageInfo.config.exposedPorts ?? []);
      record.Volumes = await this.#planVolumes(record, imageInfo.config.volumes ?? [], madeVolumes);
      await fs.mkdir(dir, { recursive: true, mode: 0o700 });
      // The writable layer now (the image is in use from here on); the mount waits for start, as Docker's.
      record.Rootfs = imageDriver.prepareRootfs !== undefined
        ? await imageDriver.prepareRootfs(id, ref, { signal })
        : await imageDriver.mountRootfs(id, ref, { signal });
      if (idMap !== undefined) await imageDriver.remapRootfs?.(id, ref, { signal, idMap });
      await imageDriver.checkRootfs?.(record.Rootfs, { signal, command: cmd.path, env: record.Config.Env ?? [] });
      await saveRecord(dir, record);
    } catch (err) {
      await this.#discard(id, imageDriver).catch((e: unknown) => this.#log.warn({ err: e, id }, 'cleaning up a failed create failed'));
      for (const v of madeVolumes) if (this.volumes.get(v).Anonymous) await this.volumes.remove(v, []).catch(() => undefined);
      this.#names.delete(name);
      throw err;
    }
    this.#byId.set(id, newLive(record));
    this.#emit(record, 'create');
    await notify(this.#deps.hooks, this.#log, 'containerCreated', this.#event(record));
    return { Id: id, Warnings: createWarnings(record) };
  }

  async #resolveImage(body: ContainerCreateBody, signal: AbortSignal): Promise<{ driver: ImageDriver; ref: ImageRef }> {
    const external = body.HostConfig?.ExternalRootfs;
    if (external !== undefined && external !== '') {
      if (!path.isAbsolute(external)) throw new IsulaError('CONTAINER_CONFIG_INVALID', `--external-rootfs ${external}: must be an absolute path`);
      const driver = await this.#deps.hooks.resolveImageFormat.promise({ reference: external, format: 'external' });
      if (driver === undefined) throw new IsulaError('IMAGE_FORMAT_UNKNOWN', 'no image plugin handles --external-rootfs (is @isula/image-external loaded?)');
      const ref = await driver.resolve(external, { signal });
      if (ref === undefined) throw new IsulaError('IMAGE_NOT_FOUND', `external rootfs ${external} not found`);
      return { driver, ref };
    }
    const name = body.Image ?? '';
    for (const driver of this.#deps.imageDrivers()) {
      if (driver.format === 'external') continue;
      const ref = await driver.resolve(name, { signal });
      if (ref !== undefined) return { driver, ref };
    }
    throw new IsulaError('IMAGE_NOT_FOUND', `No such image: ${name}`);
  }

  #imageDriver(record: ContainerRecord): ImageDriver {
    const d = this.#imageDriverOrUndefined(record);
    if (d === undefined) throw new IsulaError('IMAGE_FORMAT_UNKNOWN', `no image plugin for format "${record.ImageFormat}" of container ${record.Id.slice(0, 12)} is loaded`);
    return d;
  }

  async #runtime(name: string): Promise<RuntimeDriver> {
    const driver = await this.#deps.hooks.resolveRuntime.promise(name);
    if (driver === undefined) throw new IsulaError('RUNTIME_NOT_FOUND', `Unknown runtime specified ${name}`);
    return driver;
  }

  #ref(record: ContainerRecord): RuntimeContainerRef {
    return {
      id: record.Id,
      containerDir: this.containerDir(record.Id),
      bundle: this.bundleDir(record.Id),
      ...(record.DriverData !== undefined && { persisted: record.DriverData }),
    };
  }

  // ---- start -----------------------------------------------------------------

  async start(idOrName: string, _requestSignal: AbortSignal): Promise<'started' | 'already'> {
    const live = this.find(idOrName);
    const signal = this.#opSignal();
    let failed = false;
    return this.#mutex.run(live.record.Id, async (): Promise<'started' | 'already'> => {
      const st = live.record.State.Status;
      if (st === 'running') return 'already';
      if (st === 'paused') throw new IsulaError('CONTAINER_STATE_CONFLICT', 'cannot start a paused container, try unpause instead');
      if (st === 'removing' || st === 'dead') throw new IsulaError('CONTAINER_STATE_CONFLICT', `container ${live.record.Id.slice(0, 12)} is marked for removal and cannot be started`);
      this.#cancelRestart(live);
      this.#cancelled.delete(live.record.Id);
      live.record.HasBeenManuallyStopped = false;
      live.record.RestartCount = 0;
      this.#backoff.delete(live.record.Id);
      try {
        await this.#startLocked(live, signal);
      } catch (err) {
        failed = true;
        throw err;
      }
      return 'started';
    }).catch(async (err: unknown) => {
      // As moby: an --rm container whose start failed is removed before the error is answered,
      // so a client that then lists containers does not see it (outside the lock, which remove takes).
      if (failed && live.record.HostConfig.AutoRemove === true) {
        await engineInternal(() => this.remove(live.record.Id, { force: true }, AbortSignal.timeout(KILL_WAIT_MS))).catch((e: unknown) => this.#log.warn({ err: e, id: live.record.Id }, 'auto-remove after a failed start failed'));
      }
      throw err;
    });
  }

  async #startLocked(live: Live, signal: AbortSignal): Promise<void> {
    const record = live.record;
    const runtime = await this.#runtime(record.Runtime);
    const imageDriver = this.#imageDriver(record);
    const ref: ImageRef = { reference: record.Config.Image ?? '', format: record.ImageFormat, id: record.Image };
    const dir = this.containerDir(record.Id);
    const bundle = this.bundleDir(record.Id);
    let created = false;
    const attached: StdioStream[] = [];
    try {
      record.Rootfs = await imageDriver.mountRootfs(record.Id, ref, { signal });
      const image = (await imageDriver.inspect(ref, { signal })).config;
      if (record.HostConfig.SystemContainer === true && record.Config.StopSignal === undefined) {
        record.Config.StopSignal = await systemContainerStopSignal(record.Rootfs, record.Path);
      }
      await this.#copyUp(record);
      // The network first: the hosts file names the container's address. In a user namespace the
      // runtime makes the namespace (sysfs and exec need it owned by the user namespace), and the
      // network attaches to it between create and start, as podman and Docker do.
      const netLater = record.IdMap !== undefined && this.#network.plan(record).kind === 'attach';
      const netnsPath = netLater ? undefined : await this.#joinNetwork(record, image.exposedPorts ?? [], signal);
      // hostname, hosts and resolv.conf are made afresh at each start, as Docker's.
      await this.#deps.spec.writeFiles(dir, record);
      if (record.IdMap !== undefined) await this.#shareWithRemappedRoot(record, record.IdMap, dir);
      const cgroupsPath = this.#cgroupsPath(record);
      if (record.IdMap !== undefined) await openCgroupPath(cgroupsPath);
      const built = await this.#deps.spec.build({ record, image, rootfs: record.Rootfs, containerDir: dir, cgroupsPath, volumeDir: (n) => this.volumes.dataPath(n), ...(netnsPath !== undefined && { netnsPath }) });
      for (const w of built.warnings) this.#log.debug({ id: record.Id, warning: w }, 'spec warning');
      const spec = await this.#deps.hooks.mutateSpec.promise(built.spec, {
        containerId: record.Id, runtime: record.Runtime, annotations: { ...(record.Config.Labels ?? {}) }, signal,
      });
      await fs.rm(bundle, { recursive: true, force: true });
      await fs.mkdir(bundle, { recursive: true, mode: 0o700 });
      await fs.writeFile(path.join(bundle, 'config.json'), JSON.stringify(spec), { mode: 0o600 });
      const logs = logSettingsOrDefault(record);
      const stdio = {
        terminal: record.Config.Tty === true,
        openStdin: record.Config.OpenStdin === true,
        stdinOnce: record.Config.StdinOnce === true,
        logPath: this.logPath(record),
        ...(!logs.keep && { noLog: true }),
        ...(logs.maxSizeBytes !== undefined && { logSizeMaxBytes: logs.maxSizeBytes }),
      };
      // A runtime container left by a delete that failed earlier would block this create.
      if (record.DriverData !== undefined) await runtime.delete(this.#ref(record), { signal, force: true }).catch(() => {});
      delete record.DriverData;
      const { persisted, pid } = await runtime.create(this.#ref(record), { signal, spec, stdio });
      created = true;
      faultPoint('container:after-runtime-create');
      record.DriverData = persisted;
      if (netLater) {
        const createdPid = pid ?? (await runtime.state(this.#ref(record), { signal })).pid;
        await this.#joinNetwork(record, image.exposedPorts ?? [], signal, createdPid);
        await this.#deps.spec.writeFiles(dir, record, { inPlace: true });
      }
      await this.#trackLog(record);
      // Attach clients that came before start get the first bytes: connect before the process runs.
      for (const sink of live.pendingAttach.splice(0)) {
        const s = await runtime.attach(this.#ref(record), { signal }).catch((err: unknown) => { this.#log.warn({ err, id: record.Id }, 'attach before start failed'); sink.end(); return undefined; });
        if (s !== undefined) { wire(s, sink); attached.push(s); }
      }
      await runtime.start(this.#ref(record), { signal });
      const startedPid = pid ?? (await runtime.state(this.#ref(record), { signal })).pid;
      record.State = { ...record.State, Status: 'running', Pid: startedPid, ExitCode: 0, Error: '', StartedAt: new Date().toISOString(), FinishedAt: ZERO_TIME, OOMKilled: false };
      await saveRecord(dir, record);
    } catch (err) {
      for (const s of attached) s.close();
      for (const sink of live.pendingAttach.splice(0)) sink.end();
      this.#logRotation.untrack(this.logPath(record));
      const e = toIsulaError(err);
      if (created) await runtime.delete(this.#ref(record), { signal: AbortSignal.timeout(KILL_WAIT_MS), force: true }).catch(() => {});
      delete record.DriverData;
      await this.#leaveNetwork(record);
      if (record.IdMap !== undefined) await closeCgroupPath(this.#cgroupsPath(record));
      await imageDriver.unmountRootfs(record.Id, { signal: AbortSignal.timeout(KILL_WAIT_MS) }).catch(() => {});
      record.State = { ...record.State, Status: record.State.Status === 'restarting' ? 'exited' : record.State.Status, Pid: 0, ExitCode: exitCodeFor(e.code), Error: e.message };
      await saveRecord(dir, record).catch(() => {});
      // An --rm container is removed by start() once this lock is released (restarts never have --rm).
      throw e;
    }
    this.#watch(live, runtime);
    this.#emit(record, 'start');
    void notify(this.#deps.hooks, this.#log, 'containerStarted', this.#event(record));
  }

  /**
   * The run's network: an engine namespace attached through the network
   * plugins (saved in the record before the runtime starts, so a crash
   * leaves something restore can undo), another container's namespace, or
   * none. Returns the namespace path for the spec.
   */
  async #joinNetwork(record: ContainerRecord, imageExposed: readonly string[], signal: AbortSignal, ofPid?: number): Promise<string | undefined> {
    const plan = this.#network.plan(record);
    if (plan.kind === 'container') {
      const target = this.find(plan.target).record;
      if (target.Id === record.Id) throw new IsulaError('CONTAINER_CONFIG_INVALID', 'cannot join a container\'s own network namespace');
      if (target.State.Status !== 'running' && target.State.Status !== 'paused') {
        throw new IsulaError('CONTAINER_STATE_CONFLICT', `cannot join network of a non running container: ${target.Name}`);
      }
      return target.Network?.SandboxKey ?? `/proc/${target.State.Pid}/ns/net`;
    }
    if (plan.kind !== 'attach') return undefined;
    // A namespace left by a run that crashed before its exit was recorded goes first.
    if (record.Network !== undefined) await this.#leaveNetwork(record);
    const net = await this.#network.setup(record, portMappings(record, imageExposed), signal, ofPid);
    if (net === undefined) return undefined;
    record.Network = net;
    await saveRecord(this.containerDir(record.Id), record);
    return net.SandboxKey;
  }

  /** Undoes #joinNetwork; idempotent. */
  async #leaveNetwork(record: ContainerRecord): Promise<void> {
    await this.#network.teardown(record).catch((err: unknown) => this.#log.warn({ err, id: record.Id }, 'network teardown failed'));
    if (record.Network !== undefined) {
      delete record.Network;
      await saveRecord(this.containerDir(record.Id), record).catch(() => undefined);
    }
  }

  /** Follows the current run to its exit. */
  #watch(live: Live, runtime: RuntimeDriver): void {
    let mark!: () => void;
    live.exited = new Promise<void>((resolve) => { mark = resolve; });
    live.markExited = mark;
    live.exitRecorded = new Promise<void>((resolve) => { live.markRecorded = resolve; });
    const ref = this.#ref(live.record);
    const startedAt = Date.now();
    runtime.wait(ref, { signal: this.#shutdown.signal }).then(
      (status) => this.#mutex.run(live.record.Id, () => this.#onExit(live, runtime, status, Date.now() - startedAt)),
      (err: unknown) => {
        if (this.#shutdown.signal.aborted) return;
        this.#log.error({ err, id: live.record.Id }, 'lost track of a container; recording it as exited');
        return this.#mutex.run(live.record.Id, () => this.#onExit(live, runtime, { exitCode: 255, exitedAt: new Date() }, Date.now() - startedAt));
      },
    ).catch((err: unknown) => this.#log.error({ err, id: live.record.Id }, 'recording a container exit failed'))
      .finally(() => { mark(); });
  }

  async #onExit(live: Live, runtime: RuntimeDriver, status: ExitStatus, ranMs: number): Promise<void> {
    const record = live.record;
    if (!this.#byId.has(record.Id)) return;
    let restartIn: number | undefined;
    try {
      record.State = {
        ...record.State,
        Status: 'exited',
        Pid: 0,
        ExitCode: status.exitCode,
        FinishedAt: status.exitedAt.toISOString(),
        OOMKilled: status.oomKilled === true,
      };
      restartIn = this.#restartDelay(record, ranMs);
      if (restartIn !== undefined) record.State.Status = 'restarting';
      // A last rotation pass: conmon may have replaced the file at the very end.
      await this.#logRotation.finish(this.logPath(record));
      // The exit is on disk before the runtime's traces (exit file, cgroup) go: a crash in
      // between leaves a record restore can finish, not a running one with a lost code.
      await saveRecord(this.containerDir(record.Id), record);
      // stop's and rm's timeouts watch this, not the clean-up below: a slow network teardown
      // must not make them think the container did not die (they still wait for the clean-up).
      live.markRecorded?.();
      faultPoint('container:after-exit-record');
      const signal = AbortSignal.timeout(KILL_WAIT_MS);
      await runtime.delete(this.#ref(record), { signal, force: true }).then(
        () => { delete record.DriverData; },
        (err: unknown) => this.#log.warn({ err, id: record.Id }, 'runtime delete after exit failed; retried at the next start'));
      // Docker releases the address at the exit; a restart attaches again.
      await this.#leaveNetwork(record);
      if (record.IdMap !== undefined) await closeCgroupPath(this.#cgroupsPath(record));
      if ((live.rootfsUsers ?? 0) === 0) await this.#imageDriverOrUndefined(record)?.unmountRootfs(record.Id, { signal }).catch((err: unknown) => this.#log.warn({ err, id: record.Id }, 'unmounting the rootfs failed'));
      await fs.rm(this.bundleDir(record.Id), { recursive: true, force: true }).catch(() => {});
      await saveRecord(this.containerDir(record.Id), record).catch((err: unknown) => this.#log.warn({ err, id: record.Id }, 'saving the container record failed'));
      this.#log.info({ id: record.Id, exitCode: status.exitCode, oomKilled: status.oomKilled === true, restartInMs: restartIn }, 'container exited');
    } finally {
      if (status.oomKilled === true) this.#emit(record, 'oom');
      this.#emit(record, 'die', { exitCode: String(status.exitCode) });
      void notify(this.#deps.hooks, this.#log, 'containerExited', { ...this.#event(record), exitCode: status.exitCode });
      for (const w of live.exitWaiters) w();
      live.exitWaiters.clear();
    }
    if (restartIn !== undefined) {
      live.restartTimer = setTimeout(() => { void this.#restartNow(live); }, restartIn);
    } else if (record.HostConfig.AutoRemove === true && !live.restarting) {
      setImmediate(() => { void engineInternal(() => this.remove(record.Id, { force: true }, AbortSignal.timeout(KILL_WAIT_MS))).catch((err: unknown) => this.#log.warn({ err, id: record.Id }, 'auto-remove failed')); });
    }
  }

  /** Docker's restart manager: the delay before the next start, or undefined for none. */
  #restartDelay(record: ContainerRecord, ranMs: number): number | undefined {
    if (this.#shutdown.signal.aborted || record.HasBeenManuallyStopped || this.#cancelled.has(record.Id)) return undefined;
    const policy = record.HostConfig.RestartPolicy?.Name ?? 'no';
    const max = record.HostConfig.RestartPolicy?.MaximumRetryCount ?? 0;
    const wanted = policy === 'always' || policy === 'unless-stopped' ||
      (policy === 'on-failure' && record.State.ExitCode !== 0 && (max === 0 || record.RestartCount < max));
    if (!wanted) return undefined;
    const previous = ranMs >= BACKOFF_RESET_MS ? 0 : (this.#backoff.get(record.Id) ?? 0);
    const delay = previous === 0 ? MIN_BACKOFF_MS : Math.min(previous * 2, MAX_BACKOFF_MS);
    this.#backoff.set(record.Id, delay);
    return delay;
  }

  async #restartNow(live: Live): Promise<void> {
    live.restartTimer = undefined;
    await this.#mutex.run(live.record.Id, async () => {
      if (live.record.State.Status !== 'restarting' || live.record.HasBeenManuallyStopped || !this.#byId.has(live.record.Id)) return;
      live.record.RestartCount += 1;
      try {
        await this.#startLocked(live, this.#shutdown.signal);
        this.#emit(live.record, 'restart');
      } catch (err) {
        this.#log.warn({ err, id: live.record.Id }, 'restarting a container failed');
        const delay = this.#restartDelay(live.record, 0);
        if (delay !== undefined) {
          live.record.State.Status = 'restarting';
          live.restartTimer = setTimeout(() => { void this.#restartNow(live); }, delay);
        } else {
          live.record.State.Status = 'exited';
        }
        await saveRecord(this.containerDir(live.record.Id), live.record).catch(() => {});
      }
    });
  }

  #cancelRestart(live: Live): void {
    if (live.restartTimer !== undefined) clearTimeout(live.restartTimer);
    live.restartTimer = undefined;
  }

  // ---- stop / kill / restart ----------------------------------------------

  /** Docker's stop: the stop signal, `timeout` seconds (-1 forever), then SIGKILL. 'already' when not running. */
  async stop(idOrName: string, timeoutSec: number | undefined, _requestSignal: AbortSignal): Promise<'stopped' | 'already'> {
    const live = this.find(idOrName);
    const signal = this.#opSignal();
    const action = await this.#mutex.run(live.record.Id, async () => {
      live.record.HasBeenManuallyStopped = true;
      this.#cancelled.add(live.record.Id);
      const st = live.record.State.Status;
      if (st === 'restarting') {
        this.#cancelRestart(live);
        live.record.State.Status = 'exited';
        await saveRecord(this.containerDir(live.record.Id), live.record);
        return 'already' as const;
      }
      if (st !== 'running' && st !== 'paused') {
        await saveRecord(this.containerDir(live.record.Id), live.record);
        return 'already' as const;
      }
      await saveRecord(this.containerDir(live.record.Id), live.record);
      return 'stop' as const;
    });
    if (action === 'already') return 'already';
    const t = timeoutSec ?? live.record.Config.StopTimeout ?? 10;
    const stopSignal = live.record.Config.StopSignal ?? 'SIGTERM';
    const exited = live.exited;
    const recorded = live.exitRecorded ?? exited;
    await this.#signal(live, stopSignal, signal);
    // As Docker's stop: a `kill` event for each signal sent.
    this.#emit(live.record, 'kill', { signal: String(signalNumber(stopSignal)) });
    if (live.record.State.Status === 'paused') await this.#resumeQuietly(live, signal);
    if (recorded !== undefined && !(await within(recorded, t < 0 ? undefined : t * 1000, signal))) {
      this.#log.info({ id: live.record.Id, timeoutSec: t }, `container did not exit on ${stopSignal}; killing it`);
      await this.#signal(live, 'SIGKILL', signal);
      this.#emit(live.record, 'kill', { signal: '9' });
      if (!(await within(recorded, KILL_WAIT_MS, signal))) {
        await this.#logStuckExit(live, signal);
        throw new IsulaError('TIMEOUT', `container ${live.record.Id.slice(0, 12)} did not exit after SIGKILL`);
      }
    }
    // As Docker's: stop answers once the exit's clean-up (the network released) is done.
    if (exited !== undefined) await exited;
    this.#emit(live.record, 'stop');
    return 'stopped';
  }

  /**
   * Docker's kill: any signal; SIGKILL or the container's stop signal also
   * cancel its restart policy until the next manual start (a HUP for a reload
   * does not). Killing a restarting container just cancels the restart.
   */
  /**
   * Docker's kill. A user's SIGKILL or stop signal cancels the restart policy;
   * the engine's own kill (`byEngine`: an unhealthy container with
   * ExitOnUnhealthy) is a failure the restart policy answers.
   */
  async kill(idOrName: string, sig: string | undefined, _requestSignal: AbortSignal, opts: { byEngine?: boolean } = {}): Promise<void> {
    const live = this.find(idOrName);
    const number = signalNumber(sig === undefined || sig === '' ? 'SIGKILL' : sig);
    const stopping = opts.byEngine !== true && (number === 9 || number === signalNumber(live.record.Config.StopSignal ?? 'SIGTERM'));
    const signal = this.#opSignal();
    const st = await this.#mutex.run(live.record.Id, async () => {
      const status = live.record.State.Status;
      if (status !== 'running' && status !== 'paused' && status !== 'restarting') throw new IsulaError('CONTAINER_STATE_CONFLICT', `Container ${live.record.Id} is not running`);
      if (stopping) {
        this.#cancelled.add(live.record.Id);
        live.record.HasBeenManuallyStopped = true;
        if (status === 'restarting') {
          this.#cancelRestart(live);
          live.record.State.Status = 'exited';
        }
        await saveRecord(this.containerDir(live.record.Id), live.record);
      }
      return live.record.State.Status;
    });
    if (st === 'exited') return;
    if (st === 'restarting') throw new IsulaError('CONTAINER_STATE_CONFLICT', `Container ${live.record.Id} is restarting, wait until the container is running`);
    await this.#signal(live, number, signal);
    if (live.record.State.Status === 'paused' && number === 9) await this.#resumeQuietly(live, signal);
    this.#emit(live.record, 'kill', { signal: String(number) });
  }

  async restart(idOrName: string, timeoutSec: number | undefined, signal: AbortSignal): Promise<void> {
    const live = this.find(idOrName);
    live.restarting = true;
    try {
      await this.stop(live.record.Id, timeoutSec, signal);
      await this.start(live.record.Id, signal);
    } finally {
      live.restarting = false;
    }
    this.#emit(live.record, 'restart');
  }

  async #signal(live: Live, sig: string | number, signal: AbortSignal): Promise<void> {
    const runtime = await this.#runtime(live.record.Runtime);
    await runtime.kill(this.#ref(live.record), { signal, signal_: sig });
  }

  /**
   * What a stop or rm that gave up waiting for an exit knows, for the daemon
   * log: whether the caller went away, whether the init process is still
   * there, and what the runtime says of the container.
   */
  async #logStuckExit(live: Live, signal: AbortSignal): Promise<void> {
    const pid = live.record.State.Pid;
    let pidAlive: boolean | undefined;
    if (pid > 0) {
      try {
        process.kill(pid, 0);
        pidAlive = true;
      } catch (err) {
        pidAlive = (err as NodeJS.ErrnoException).code === 'EPERM';
      }
    }
    const runtime = await this.#runtime(live.record.Runtime).catch(() => undefined);
    const state = await runtime?.state(this.#ref(live.record), { signal: AbortSignal.timeout(5_000) })
      .then((st) => st.status, (err: unknown) => `unknown (${err instanceof Error ? err.message : String(err)})`);
    this.#log.warn({
      id: live.record.Id, pid, pidAlive, runtimeState: state, callerGone: signal.aborted,
      waitMs: KILL_WAIT_MS,
    }, 'no exit recorded after SIGKILL');
  }

  async #resumeQuietly(live: Live, signal: AbortSignal): Promise<void> {
    const runtime = await this.#runtime(live.record.Runtime);
    await runtime.resume(this.#ref(live.record), { signal }).catch(() => {});
  }

  // ---- pause / rename / update ---------------------------------------------

  async pause(idOrName: string, _requestSignal: AbortSignal): Promise<void> {
    const live = this.find(idOrName);
    const signal = this.#opSignal();
    await this.#mutex.run(live.record.Id, async () => {
      const st = live.record.State.Status;
      if (st === 'paused') throw new IsulaError('CONTAINER_STATE_CONFLICT', `Container ${live.record.Id} is already paused`);
      if (st !== 'running') throw new IsulaError('CONTAINER_STATE_CONFLICT', `Container ${live.record.Id} is not running`);
      const runtime = await this.#runtime(live.record.Runtime);
      await runtime.pause(this.#ref(live.record), { signal });
      live.record.State.Status = 'paused';
      await saveRecord(this.containerDir(live.record.Id), live.record);
    });
    this.#emit(live.record, 'pause');
  }

  async unpause(idOrName: string, _requestSignal: AbortSignal): Promise<void> {
    const live = this.find(idOrName);
    const signal = this.#opSignal();
    await this.#mutex.run(live.record.Id, async () => {
      if (live.record.State.Status !== 'paused') throw new IsulaError('CONTAINER_STATE_CONFLICT', `Container ${live.record.Id} is not paused`);
      const runtime = await this.#runtime(live.record.Runtime);
      await runtime.resume(this.#ref(live.record), { signal });
      live.record.State.Status = 'running';
      await saveRecord(this.containerDir(live.record.Id), live.record);
    });
    this.#emit(live.record, 'unpause');
  }

  async rename(idOrName: string, newName: string): Promise<void> {
    const live = this.find(idOrName);
    if (newName === '' || !NAME_PATTERN.test(newName)) throw new IsulaError('CONTAINER_CONFIG_INVALID', `Invalid container name (${newName}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed`);
    const name = newName.replace(/^\//, '');
    const oldName = live.record.Name;
    await this.#mutex.run(live.record.Id, async () => {
      if (name === oldName) throw new IsulaError('CONTAINER_CONFIG_INVALID', 'Renaming a container with the same name as its current name');
      const holder = this.#names.get(name);
      if (holder !== undefined) throw new IsulaError('CONTAINER_NAME_IN_USE', `Conflict. The container name "/${name}" is already in use by container "${holder}". You have to remove (or rename) that container to be able to reuse that name.`);
      this.#names.set(name, live.record.Id);
      live.record.Name = name;
      try {
        await saveRecord(this.containerDir(live.record.Id), live.record);
      } catch (err) {
        live.record.Name = oldName;
        this.#names.delete(name);
        throw err;
      }
      this.#names.delete(oldName);
    });
    this.#emit(live.record, 'rename', { oldName: `/${oldName}` });
  }

  /**
   * Docker's `network connect`: a running container joins the network now (a
   * new interface, its other networks untouched), a stopped one at its next
   * start; from then on it joins both at every start.
   */
  async connectNetwork(idOrName: string, network: string, opts: { ipv4?: string } = {}): Promise<void> {
    const live = this.find(idOrName);
    const signal = this.#opSignal();
    if (opts.ipv4 !== undefined) checkIpv4(opts.ipv4);
    await this.#mutex.run(live.record.Id, async () => {
      const record = live.record;
      this.#checkNetworkable(record, idOrName);
      const info = await this.#joinableNetwork(record, network, 'connected to', signal);
      if (opts.ipv4 !== undefined) checkInSubnets(opts.ipv4, info);
      const key = info.isDefault ? 'bridge' : info.name;
      const joined = joinedNetworks(record);
      for (const name of joined) {
        if (await this.#sameNetwork(name, key, info, signal)) throw new IsulaError('NETWORK_ALREADY_EXISTS', `endpoint with name ${record.Name} already exists in network ${key}`, { httpStatus: 403 });
      }
      const endpoints = { ...record.NetworkingConfig?.EndpointsConfig };
      if (opts.ipv4 !== undefined) endpoints[key] = { IPAMConfig: { IPv4Address: opts.ipv4 } };
      const net = record.Network;
      if (net !== undefined && isUp(record)) {
        const args = opts.ipv4 === undefined ? undefined : { IP: opts.ipv4 };
        let results: NetworkAttachResult[];
        try {
          results = await this.#network.connect(record, info.name, args, signal);
        } catch (err) {
          // The driver has it and the record does not: a connect the daemon died in before saving.
          // Leave and join again, so the address and the record agree.
          if (!(err instanceof IsulaError && err.code === 'NETWORK_ALREADY_EXISTS')) throw err;
          this.#log.warn({ id: record.Id, network: info.name }, 'the network driver had a connection the record lacked; joining again');
          await this.#network.disconnect(record, info.name, signal);
          results = await this.#network.connect(record, info.name, args, signal);
        }
        net.Networks = [...attachedKeys(net), key];
        net.Results = [...net.Results, ...results];
        await this.#followPorts(record, signal);
      }
      record.JoinedNetworks = [...joined, key];
      record.NetworkingConfig = { ...record.NetworkingConfig, EndpointsConfig: endpoints };
      await saveRecord(this.containerDir(record.Id), record);
      this.#deps.events.emit({ Type: 'network', Action: 'connect', Actor: { ID: info.id, Attributes: { container: record.Id, name: info.name, type: info.driver } } });
    });
  }

  /**
   * Docker's `network disconnect`: a running container's interface on the
   * network goes now; a stopped one no longer joins it at start. A network
   * removed since is left by the name it had. `force`: the record lets go of
   * the network even when the driver fails to (its cache keeps it, and the
   * exit's detach tries again).
   */
  async disconnectNetwork(idOrName: string, network: string, force = false): Promise<void> {
    const live = this.find(idOrName);
    const signal = this.#opSignal();
    await this.#mutex.run(live.record.Id, async () => {
      const record = live.record;
      this.#checkNetworkable(record, idOrName);
      const info = await this.#joinableNetwork(record, network, 'disconnected from', signal).catch((err: unknown) => {
        if (err instanceof IsulaError && err.code === 'NETWORK_NOT_FOUND') return undefined;
        throw err;
      });
      const key = info === undefined ? network : info.isDefault ? 'bridge' : info.name;
      const joined = joinedNetworks(record);
      const kept: string[] = [];
      for (const name of joined) {
        if (name !== network && !(await this.#sameNetwork(name, key, info, signal))) kept.push(name);
      }
      const net = record.Network;
      // By what the driver attached (the name --network gave may be an alias or an id prefix).
      const at = net === undefined ? -1 : net.Results.findIndex((r) => r.network === (info?.name ?? network));
      const up = net !== undefined && isUp(record);
      if (kept.length === joined.length && at < 0) {
        if (info === undefined) throw new IsulaError('NETWORK_NOT_FOUND', `network ${network} not found`);
        // Not in the record; a running container's driver may still have it (a connect the daemon died in).
        const inDriver = up && await this.#network.disconnect(record, info.name, signal).then(() => true, (err: unknown) => {
          if (err instanceof IsulaError && err.code === 'NETWORK_NOT_FOUND') return false;
          throw err;
        });
        if (!inDriver) throw new IsulaError('NETWORK_NOT_FOUND', `container ${record.Id} is not connected to network ${network}`, { httpStatus: 403 });
        await this.#followPorts(record, signal);
      } else if (up && at >= 0 && net !== undefined) {
        await this.#network.disconnect(record, info?.name ?? network, signal).catch((err: unknown) => {
          // Gone from the driver already: a disconnect the daemon died in before saving the record.
          if (err instanceof IsulaError && err.code === 'NETWORK_NOT_FOUND') return;
          if (!force) throw err;
          this.#log.warn({ err, id: record.Id, network: key }, 'network disconnect failed; forced, the record lets go of it');
        });
        net.Networks = attachedKeys(net).filter((_, i) => i !== at);
        net.Results = net.Results.filter((_, i) => i !== at);
        // The ports it published moved to another network, or were released.
        await this.#followPorts(record, signal);
      }
      record.JoinedNetworks = kept;
      const endpoints = { ...record.NetworkingConfig?.EndpointsConfig };
      for (const k of endpointKeys(key)) delete endpoints[k];
      record.NetworkingConfig = { ...record.NetworkingConfig, EndpointsConfig: endpoints };
      await saveRecord(this.containerDir(record.Id), record);
      const actor = { ID: info?.id ?? '', Attributes: { container: record.Id, name: info?.name ?? network, type: info?.driver ?? '' } };
      this.#deps.events.emit({ Type: 'network', Action: 'disconnect', Actor: actor });
    });
  }

  /**
   * After a live connect or disconnect: the record's published ports as the
   * network driver holds them (plugin API 1.11). The driver's step is done, so
   * a failure to read them is logged, not thrown; restore reads them again.
   */
  async #followPorts(record: ContainerRecord, signal: AbortSignal): Promise<void> {
    await this.#network.syncPorts(record, signal).catch((err: unknown) => this.#log.warn({ err, id: record.Id }, 'reading the published ports from the network driver failed'));
  }

  /** Whether `name` (a JoinedNetworks entry) is the network `key`/`info` (unknown: only by its key). */
  async #sameNetwork(name: string, key: string, info: NetworkInfo | undefined, signal: AbortSignal): Promise<boolean> {
    return name === key || (info !== undefined && (await this.#network.resolve(name, signal))?.name === info.name);
  }

  /** Under the container's lock: it still exists (an rm may have gone first) and is not being removed. */
  #checkNetworkable(record: ContainerRecord, idOrName: string): void {
    if (!this.#byId.has(record.Id)) throw new IsulaError('CONTAINER_NOT_FOUND', `No such container: ${idOrName}`);
    if (record.State.Status === 'removing' || record.State.Status === 'dead') {
      throw new IsulaError('CONTAINER_STATE_CONFLICT', `Container ${record.Id} is marked for removal and cannot be connected or disconnected to the network`);
    }
  }

  /** The network `name` names, when the container's network mode lets it join or leave networks (Docker's errors). */
  async #joinableNetwork(record: ContainerRecord, name: string, verb: string, signal: AbortSignal): Promise<NetworkInfo> {
    const plan = this.#network.plan(record);
    if (plan.kind === 'host' || name === 'host') {
      throw new IsulaError('CONTAINER_CONFIG_INVALID', 'container cannot be disconnected from host network or connected to host network', { httpStatus: 400 });
    }
    if (plan.kind === 'container') {
      throw new IsulaError('CONTAINER_CONFIG_INVALID', 'container sharing network namespace with another container or host cannot be connected to any other network');
    }
    if (plan.kind === 'none' || name === 'none') {
      throw new IsulaError('CONTAINER_CONFIG_INVALID', 'container cannot be connected to multiple networks with one of the networks in private (none) mode');
    }
    if (plan.kind === 'private') throw new IsulaError('NOT_IMPLEMENTED', `container cannot be ${verb} network ${name}: no network plugin is loaded`);
    const info = await this.#network.resolve(name, signal);
    if (info === undefined) throw new IsulaError('NETWORK_NOT_FOUND', `network ${name} not found`);
    return info;
  }

  async update(idOrName: string, changes: HostConfig, _requestSignal: AbortSignal): Promise<string[]> {
    const live = this.find(idOrName);
    const signal = this.#opSignal();
    const resources = pickResources(changes);
    await this.#mutex.run(live.record.Id, async () => {
      const merged: HostConfig = { ...live.record.HostConfig, ...resources };
      // The docker CLI always sends a RestartPolicy; an empty name means "unchanged" (moby).
      const policy = changes.RestartPolicy;
      if (policy !== undefined && policy !== null && (policy.Name ?? '') !== '') {
        if (live.record.HostConfig.AutoRemove === true && policy.Name !== 'no') {
          throw new IsulaError('CONTAINER_CONFIG_INVALID', 'Restart policy cannot be updated because AutoRemove is enabled for the container');
        }
        merged.RestartPolicy = policy;
      }
      this.#deps.spec.validate({ ...live.record.Config, HostConfig: merged });
      const st = live.record.State.Status;
      if (st === 'running' || st === 'paused') {
        const runtime = await this.#runtime(live.record.Runtime);
        const update = this.#deps.spec.resources(resources);
        if (Object.keys(update).length > 0) await runtime.update(this.#ref(live.record), { signal, resources: update });
      }
      live.record.HostConfig = merged;
      await saveRecord(this.containerDir(live.record.Id), live.record);
    });
    this.#emit(live.record, 'update');
    return [];
  }

  // ---- remove ----------------------------------------------------------------

  async remove(idOrName: string, opts: { force?: boolean; volumes?: boolean }, _requestSignal: AbortSignal): Promise<void> {
    const live = this.find(idOrName);
    const id = live.record.Id;
    const signal = this.#opSignal();
    for (let attempt = 0; ; attempt++) {
      // Decided under the lock: a start that slipped in since is seen here.
      const step = await this.#mutex.run(id, async (): Promise<'gone' | 'kill' | 'removed'> => {
        if (!this.#byId.has(id) || live.record.State.Status === 'removing') return 'gone';
        // A cp or export holds the mounted rootfs: its unmount would fail (busy) and leave a dead container.
        if ((live.rootfsUsers ?? 0) > 0) throw new IsulaError('CONTAINER_STATE_CONFLICT', `container ${id.slice(0, 12)} is in use by a copy (cp, export or commit): try again once it is done`);
        const st = live.record.State.Status;
        if (RUNNING_STATES.has(st)) {
          if (opts.force !== true) {
            throw new IsulaError('CONTAINER_STATE_CONFLICT', `You cannot remove a ${st} container ${id}. Stop the container before attempting removal or force remove`);
          }
          this.#cancelled.add(id);
          live.record.HasBeenManuallyStopped = true;
          this.#cancelRestart(live);
          if (st === 'restarting') live.record.State.Status = 'exited';
          else return 'kill';
        }
        live.record.State.Status = 'removing';
        await saveRecord(this.containerDir(id), live.record);
        try {
          await this.#discard(id, this.#imageDriverOrUndefined(live.record), live.record);
        } catch (err) {
          // As Docker's: a removal that failed leaves a `dead` container rm can retry.
          live.record.State.Status = 'dead';
          await saveRecord(this.containerDir(id), live.record).catch(() => {});
          throw err;
        }
        this.#byId.delete(id);
        if (this.#names.get(live.record.Name) === id) this.#names.delete(live.record.Name);
        // rm -v: its anonymous volumes go too, unless another container uses them.
        if (opts.volumes === true) {
          for (const v of live.record.Volumes ?? []) {
            if (!v.Anonymous || !this.volumes.has(v.Name)) continue;
            await this.volumes.remove(v.Name, this.volumeUsers(v.Name)).catch((err: unknown) => this.#log.warn({ err, volume: v.Name }, 'removing an anonymous volume failed'));
          }
        }
        this.#backoff.delete(id);
        this.#cancelled.delete(id);
        return 'removed';
      });
      if (step === 'gone') return;
      if (step === 'removed') break;
      if (attempt > 0) throw new IsulaError('TIMEOUT', `container ${id.slice(0, 12)} is still running after SIGKILL; not removed`);
      const exited = live.exited;
      const recorded = live.exitRecorded ?? exited;
      await this.#signal(live, 'SIGKILL', signal);
      await this.#resumeQuietly(live, signal);
      if (recorded !== undefined && !(await within(recorded, KILL_WAIT_MS, signal))) {
        await this.#logStuckExit(live, signal);
        throw new IsulaError('TIMEOUT', `container ${id.slice(0, 12)} did not exit after SIGKILL; not removed`);
      }
      // The exit's clean-up finishes under the container lock, which the next attempt takes.
      if (exited !== undefined) await exited;
    }
    this.#logRotation.untrack(this.logPath(live.record));
    this.#emit(live.record, 'destroy');
    for (const l of this.#removedListeners) l(id);
    void notify(this.#deps.hooks, this.#log, 'containerRemoved', this.#event(live.record));
    for (const sink of live.pendingAttach.splice(0)) sink.end();
    for (const w of [...live.exitWaiters, ...live.removeWaiters]) w();
    live.exitWaiters.clear();
    live.removeWaiters.clear();
  }

  #imageDriverOrUndefined(record: ContainerRecord): ImageDriver | undefined {
    return this.#deps.imageDrivers().find((x) => x.format === record.ImageFormat);
  }

  /** Removes every trace of a container: runtime leftovers, rootfs, bundle, directory (record last but one: the directory). */
  async #discard(id: string, imageDriver: ImageDriver | undefined, record?: ContainerRecord): Promise<void> {
    const signal = AbortSignal.timeout(KILL_WAIT_MS);
    if (record !== undefined) {
      const runtime = await this.#deps.hooks.resolveRuntime.promise(record.Runtime).catch(() => undefined);
      if (runtime !== undefined) await runtime.delete(this.#ref(record), { signal, force: true }).catch((err: unknown) => this.#log.warn({ err, id }, 'runtime delete failed'));
      await this.#network.teardown(record).catch((err: unknown) => this.#log.warn({ err, id }, 'network teardown failed'));
      if (record.IdMap !== undefined) await closeCgroupPath(this.#cgroupsPath(record));
    }
    // The rootfs and the bundle at once (neither needs the other); the directory with the record last.
    const removed = await Promise.allSettled([
      imageDriver?.removeRootfs(id, { signal }),
      fs.rm(this.bundleDir(id), { recursive: true, force: true }),
    ]);
    for (const r of removed) if (r.status === 'rejected') throw r.reason;
    await fs.rm(this.containerDir(id), { recursive: true, force: true });
  }

  // ---- wait --------------------------------------------------------------------

  /** Docker's wait conditions: not-running (default), next-exit, removed. */
  async wait(idOrName: string, condition: string, signal: AbortSignal, onWaiting?: () => void): Promise<{ StatusCode: number; Error?: { Message: string } }> {
    const live = this.find(idOrName);
    const cond = condition === '' ? 'not-running' : condition;
    if (!['not-running', 'next-exit', 'removed'].includes(cond)) throw new IsulaError('API_BAD_REQUEST', `invalid condition: "${condition}"`);
    if (cond === 'not-running' && !RUNNING_STATES.has(live.record.State.Status)) return { StatusCode: live.record.State.ExitCode };
    const set = cond === 'removed' ? live.removeWaiters : live.exitWaiters;
    if (cond === 'removed' && !this.#byId.has(live.record.Id)) return { StatusCode: live.record.State.ExitCode };
    await new Promise<void>((resolve, reject) => {
      const done = () => { signal.removeEventListener('abort', onAbort); resolve(); };
      const onAbort = () => { set.delete(done); reject(new IsulaError('CANCELED', 'wait canceled')); };
      set.add(done);
      signal.addEventListener('abort', onAbort, { once: true });
      onWaiting?.();
    });
    const err = live.record.State.Error;
    return { StatusCode: live.record.State.ExitCode, ...(err !== '' && { Error: { Message: err } }) };
  }

  // ---- attach ----------------------------------------------------------------

  /**
   * Connects an attach client. A container not started yet keeps the client
   * until its start (so `run` sees the first bytes); a running one connects now.
   */
  async attach(idOrName: string, sink: AttachSink, signal: AbortSignal): Promise<void> {
    const live = this.find(idOrName);
    await this.#mutex.run(live.record.Id, async () => {
      const st = live.record.State.Status;
      if (st === 'created' || st === 'exited') {
        live.pendingAttach.push(sink);
        return;
      }
      if (st === 'paused') throw new IsulaError('CONTAINER_STATE_CONFLICT', 'You cannot attach to a paused container, unpause it first');
      if (st !== 'running') throw new IsulaError('CONTAINER_STATE_CONFLICT', 'You cannot attach to a stopped container, start it first');
      const runtime = await this.#runtime(live.record.Runtime);
      const stream = await runtime.attach(this.#ref(live.record), { signal });
      wire(stream, sink);
    });
    this.#emit(live.record, 'attach');
  }

  /** Drops a pending attach client that went away before the start. */
  detachPending(idOrName: string, sink: AttachSink): void {
    try {
      const live = this.find(idOrName);
      const i = live.pendingAttach.indexOf(sink);
      if (i >= 0) live.pendingAttach.splice(i, 1);
    } catch { /* the container is gone */ }
  }

  // ---- restore -------------------------------------------------------------

  /** Reloads every container after a daemon start; see the package README, "Restore". */
  async restore(): Promise<void> {
    await this.volumes.open();
    await fs.mkdir(this.root, { recursive: true, mode: 0o700 });
    await fs.mkdir(this.bundles, { recursive: true, mode: 0o700 });
    const ids = (await fs.readdir(this.root)).filter((d) => /^[a-f0-9]{64}$/.test(d));
    const restarts: Live[] = [];
    await Promise.all(ids.map(async (id) => {
      try {
        let record: ContainerRecord | undefined;
        try {
          record = await readRecord(this.containerDir(id));
        } catch (err) {
          // Never destroy what could not be read: an I/O error is not a half-created container.
          this.#log.error({ err, id }, 'unreadable container record; the container is skipped');
          return;
        }
        if (record === undefined) {
          this.#log.warn({ id }, 'removing a half-created container left by a crash');
          await this.#discardHalf(id);
          return;
        }
        const live = newLive(record);
        this.#byId.set(id, live);
        this.#names.set(record.Name, id);
        if (record.State.Status === 'removing' || record.State.Status === 'dead') {
          this.#log.warn({ id }, 'finishing the removal of a container interrupted by a crash');
          record.State.Status = 'dead';
          await this.remove(id, { force: true }, AbortSignal.timeout(KILL_WAIT_MS));
          return;
        }
        if (await this.#restoreOne(live)) restarts.push(live);
        else if (record.HostConfig.AutoRemove === true && record.State.Status === 'exited') {
          this.#log.info({ id }, 'removing an --rm container that exited while the daemon was down');
          await this.remove(id, { force: true }, AbortSignal.timeout(KILL_WAIT_MS));
        }
      } catch (err) {
        this.#log.error({ err, id }, 'restoring a container failed');
      }
    }));
    // Namespaces of containers that are gone (a crash inside rm) are detached and removed.
    // Every id with a directory counts as known, also one whose record could not be read
    // (it may be running: its namespace must not be touched).
    await this.#network.sweep(new Set(ids)).catch((err: unknown) => this.#log.warn({ err }, 'sweeping network namespaces failed'));
    for (const live of restarts) {
      live.record.State.Status = 'restarting';
      live.restartTimer = setTimeout(() => { void this.#restartNow(live); }, 0);
    }
    this.#log.info({ containers: this.#byId.size, running: this.records().filter((r) => r.State.Status === 'running').length }, 'containers restored');
  }

  /** Returns true when the container should be restarted by its policy. */
  async #restoreOne(live: Live): Promise<boolean> {
    const record = live.record;
    const signal = AbortSignal.timeout(KILL_WAIT_MS);
    const runtime = await this.#deps.hooks.resolveRuntime.promise(record.Runtime).catch(() => undefined);
    const imageDriver = this.#imageDriverOrUndefined(record);
    const st = record.State.Status;
    if (runtime === undefined) {
      // Without its runtime plugin nothing can be known or undone: leave the container as it is.
      this.#log.error({ id: record.Id, runtime: record.Runtime }, 'no plugin claims this container\'s runtime; the container is left untouched');
      return false;
    }
    if ((st === 'running' || st === 'paused') && record.DriverData !== undefined) {
      let state;
      try {
        state = await runtime.restore(this.#ref(record), { signal });
      } catch (err) {
        // Keep following it: the driver's wait finds the exit, stop and rm still work.
        this.#log.error({ err, id: record.Id }, 'restoring a container failed; its state is kept and its exit awaited');
        this.#watch(live, runtime);
        return false;
      }
      if (state.status === 'running' || state.status === 'paused') {
        record.State.Status = state.status;
        record.State.Pid = state.pid;
        // A crash between the network driver's connect/disconnect and this record's save: a network
        // the driver joined and the record lacks is disconnected (the connect undone), and the
        // record takes the published ports the driver holds, which are the ones in effect.
        const moved = await this.#network.reconcile(record, signal).catch((err: unknown) => {
          this.#log.warn({ err, id: record.Id }, 'reading the published ports from the network driver failed');
          return false;
        });
        if (moved) this.#log.warn({ id: record.Id, ports: record.Network?.Results.flatMap((r) => r.portMappings ?? []) }, 'published ports taken from the network driver, which had moved them');
        await saveRecord(this.containerDir(record.Id), record);
        await this.#trackLog(record);
        this.#watch(live, runtime);
        this.#log.info({ id: record.Id, pid: state.pid, status: state.status }, 'container re-attached');
        return false;
      }
      const status = await runtime.wait(this.#ref(record), { signal });
      this.#log.info({ id: record.Id, exitCode: status.exitCode }, 'container exited while the daemon was down');
      await this.#mutex.run(record.Id, () => this.#onExit(live, runtime, status, Number.MAX_SAFE_INTEGER));
      // #onExit scheduled the restart its policy asks for.
      return false;
    }
    // Not running: nothing of the runtime may be left, nor a mount, nor a network namespace.
    await runtime.delete(this.#ref(record), { signal, force: true }).catch(() => {});
    delete record.DriverData;
    await this.#leaveNetwork(record);
    if (imageDriver !== undefined) await imageDriver.unmountRootfs(record.Id, { signal }).catch((err: unknown) => this.#log.warn({ err, id: record.Id }, 'unmounting a leftover rootfs failed'));
    await fs.rm(this.bundleDir(record.Id), { recursive: true, force: true });
    // Docker's restore: `always` restarts a container that ran before, even one stopped by hand;
    // `unless-stopped` one that was not stopped by hand; an interrupted back-off resumes.
    const policy = record.HostConfig.RestartPolicy?.Name ?? 'no';
    const ranBefore = record.State.StartedAt !== ZERO_TIME;
    const restart = (st === 'restarting' && !record.HasBeenManuallyStopped && policy !== 'no') ||
      (ranBefore && policy === 'always') ||
      (ranBefore && policy === 'unless-stopped' && !record.HasBeenManuallyStopped);
    if (restart) record.HasBeenManuallyStopped = false;
    if (st === 'running' || st === 'paused' || st === 'restarting') {
      if (!restart) record.State = { ...record.State, Status: 'exited', Pid: 0, FinishedAt: record.State.FinishedAt === ZERO_TIME ? new Date().toISOString() : record.State.FinishedAt };
    }
    await saveRecord(this.containerDir(record.Id), record);
    return restart;
  }

  async #discardHalf(id: string): Promise<void> {
    for (const d of this.#deps.imageDrivers()) await d.removeRootfs(id, { signal: AbortSignal.timeout(KILL_WAIT_MS) }).catch(() => {});
    await fs.rm(this.bundleDir(id), { recursive: true, force: true });
    await fs.rm(this.containerDir(id), { recursive: true, force: true });
  }

  /** Rotation of a running container's log (its max-file; conmon bounds each file by max-size). */
  async #trackLog(record: ContainerRecord): Promise<void> {
    const logs = logSettingsOrDefault(record);
    if (!logs.keep || logs.maxSizeBytes === undefined) return;
    await this.#logRotation.track(this.logPath(record), { maxFiles: logs.maxFiles }).catch((err: unknown) => this.#log.warn({ err, id: record.Id }, 'tracking the container log for rotation failed'));
  }

  /** Stops following containers (they keep running); pending restarts are dropped. */
  /** Containers (names) whose record refers to volume `name`. */
  volumeUsers(name: string): string[] {
    return [...this.#byId.values()].filter((l) => (l.record.Volumes ?? []).some((v) => v.Name === name)).map((l) => l.record.Name);
  }

  /** Docker's volume resolution at create: named `-v NAME:/p` and `--mount type=volume`, anonymous ones for the rest. */
  async #planVolumes(record: ContainerRecord, imageVolumes: readonly string[], made: string[]): Promise<VolumeMount[]> {
    const out: VolumeMount[] = [];
    const user = parseUserMounts(record.HostConfig);
    const take = async (name: string | undefined, destination: string, readOnly: boolean): Promise<void> => {
      const existed = name !== undefined && this.volumes.has(name);
      const v = await this.volumes.create(name === undefined ? { anonymous: true } : { name, anonymous: false });
      if (!existed) made.push(v.Name);
      out.push({ Name: v.Name, Destination: destination, ReadOnly: readOnly, Anonymous: v.Anonymous, Source: this.volumes.dataPath(v.Name), ...(!existed && { CopyPending: true }) });
    };
    for (const m of user) if (m.kind === 'volume') await take(m.source === '' ? undefined : m.source, m.destination, m.readOnly);
    const covered = new Set(user.map((m) => m.destination));
    for (const dest of new Set([...Object.keys(record.Config.Volumes ?? {}), ...imageVolumes].map((d) => path.normalize(d)))) {
      if (!covered.has(dest) && !out.some((v) => v.Destination === dest)) await take(undefined, dest, false);
    }
    return out;
  }

  /**
   * A remapped container's root must reach and own what is bind-mounted from
   * its directory (hosts, hostname, resolv.conf), as Docker's remapped root
   * does: the files go to the map's root, the directory becomes traversable.
   */
  async #shareWithRemappedRoot(record: ContainerRecord, map: IdMap, dir: string): Promise<void> {
    // Search (not read) permission on the shared way down, as Docker's 0711 roots; the container's
    // own dirs are 0710 with the range's root group, so no other host user can walk into them
    // (and run a set-id file the container's root made: CVE-2021-41091).
    const volumes = (record.Volumes ?? []).map((v) => path.dirname(this.volumes.dataPath(v.Name)));
    const shared = [this.#deps.config.graph, this.root, ...(volumes.length > 0 ? [path.dirname(volumes[0] as string)] : [])];
    for (const d of shared) await fs.chmod(d, 0o711);
    for (const d of [dir, ...volumes]) {
      await fs.chown(d, 0, map.gid);
      await fs.chmod(d, 0o710);
    }
    for (const file of this.#deps.spec.boundFiles) await fs.lchown(path.join(dir, file), map.uid, map.gid).catch(() => undefined);
  }

  /** Docker's copy-up: a volume new to this container gets the image's content at its path, once. */
  async #copyUp(record: ContainerRecord): Promise<void> {
    const pending = (record.Volumes ?? []).filter((v) => v.CopyPending === true);
    if (pending.length === 0 || record.Rootfs === undefined) return;
    for (const v of pending) {
      // A new volume of a remapped container belongs to its root, as with Docker (the copy below keeps the image's owners).
      if (record.IdMap !== undefined) await fs.chown(this.volumes.dataPath(v.Name), record.IdMap.uid, record.IdMap.gid);
      const src = path.join(record.Rootfs, v.Destination);
      const st = await fs.lstat(src).catch(() => undefined);
      if (st?.isDirectory() === true) {
        await execFileP('cp', ['-a', '--', `${src}/.`, `${this.volumes.dataPath(v.Name)}/`], { timeout: 300_000 })
          .catch((err: unknown) => { throw new IsulaError('INTERNAL', `copying the image's ${v.Destination} into volume ${v.Name} failed: ${(err as { stderr?: string }).stderr ?? String(err)}`, { cause: err }); });
      }
      delete v.CopyPending;
    }
    await saveRecord(this.containerDir(record.Id), record);
  }

  /** Health monitor's state change: kept in the record (inspect's State.Health), saved under the container lock. */
  async setHealth(id: string, health: HealthState): Promise<void> {
    const live = this.find(id);
    await this.#mutex.run(live.record.Id, async () => {
      if (!this.#byId.has(live.record.Id)) return;
      live.record.State.Health = health;
      await saveRecord(this.containerDir(live.record.Id), live.record);
    });
  }

  /** After close(): lets go of host mounts the manager holds when nothing uses them (the netns dir). */
  async release(): Promise<void> {
    await this.#network.close().catch((err: unknown) => this.#log.warn({ err }, 'releasing the netns dir failed'));
  }

  close(): void {
    this.#logRotation.close();
    this.#shutdown.abort();
    for (const live of this.#byId.values()) {
      this.#cancelRestart(live);
      for (const sink of live.pendingAttach.splice(0)) sink.end();
    }
  }

  // ---- events ----------------------------------------------------------------

  #emit(record: ContainerRecord, action: string, extra: Record<string, string> = {}): void {
    this.#deps.events.emit({
      Type: 'container',
      Action: action,
      Actor: { ID: record.Id, Attributes: { ...(record.Config.Labels ?? {}), image: record.Config.Image ?? '', name: record.Name, ...extra } },
    });
  }

  #event(record: ContainerRecord): ContainerEvent {
    return { id: record.Id, name: record.Name, image: record.Config.Image ?? '', runtime: record.Runtime };
  }
}

/** A record from before log settings were resolved at create has Docker's default: json-file, unbounded. */
function logSettingsOrDefault(record: ContainerRecord): LogSettings {
  try {
    return logSettings(record.HostConfig.LogConfig);
  } catch {
    return { keep: true, maxFiles: 1 };
  }
}

function newLive(record: ContainerRecord): Live {
  return { record, pendingAttach: [], exitWaiters: new Set(), removeWaiters: new Set() };
}

function wire(stream: StdioStream, sink: AttachSink): void {
  stream.onOutput((s, chunk) => {
    if ((s === 1 && sink.stdout) || (s === 2 && sink.stderr)) sink.write(s, chunk);
  });
  stream.onClose(() => sink.end());
  sink.connected(stream);
}

/** Image env first, then the request's, a later key replacing an earlier one in place. */
export function mergeEnv(image: readonly string[], request: readonly string[]): string[] {
  const out: string[] = [];
  const at = new Map<string, number>();
  for (const e of [...image, ...request]) {
    const key = e.includes('=') ? e.slice(0, e.indexOf('=')) : e;
    const i = at.get(key);
    if (i === undefined) { at.set(key, out.length); out.push(e); } else out[i] = e;
  }
  return out;
}

/** Docker's run exit codes for a start failure. */
function exitCodeFor(code: string): number {
  if (code === 'CONTAINER_CMD_NOT_FOUND') return 127;
  if (code === 'CONTAINER_CMD_NOT_EXECUTABLE') return 126;
  return 128;
}

/** Resolves true when `p` settles within `ms` (undefined: no limit), false on timeout or abort. */
async function within(p: Promise<void>, ms: number | undefined, signal: AbortSignal): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  let onAbort: (() => void) | undefined;
  try {
    return await Promise.race([
      p.then(() => true),
      new Promise<boolean>((resolve) => {
        if (ms !== undefined) timer = setTimeout(() => resolve(false), ms);
        onAbort = () => resolve(false);
        signal.addEventListener('abort', onAbort, { once: true });
      }),
    ]);
  } finally {
    if (timer !== undefined) clearTimeout(timer);
    if (onAbort !== undefined) signal.removeEventListener('abort', onAbort);
  }
}

const MAX_TREE_ENTRIES = 200_000;

/** Apparent size of the regular files under `dir` (0 when missing); stops after MAX_TREE_ENTRIES. */
async function treeSize(dir: string): Promise<number> {
  let total = 0;
  let seen = 0;
  const stack = [dir];
  while (stack.length > 0 && seen < MAX_TREE_ENTRIES) {
    const d = stack.pop() as string;
    const entries = await fs.readdir(d, { withFileTypes: true }).catch(() => []);
    for (const e of entries) {
      if (++seen > MAX_TREE_ENTRIES) break;
      const p = path.join(d, e.name);
      if (e.isDirectory()) stack.push(p);
      else if (e.isFile()) total += (await fs.lstat(p).catch(() => undefined))?.size ?? 0;
    }
  }
  return total;
}

/** The resource fields of an update request (Docker's `Resources`); anything else is ignored, as moby's update. */
const RESOURCE_KEYS = [
  'CpuShares', 'Memory', 'CgroupParent', 'BlkioWeight', 'BlkioWeightDevice', 'BlkioDeviceReadBps', 'BlkioDeviceWriteBps',
  'BlkioDeviceReadIOps', 'BlkioDeviceWriteIOps', 'CpuPeriod', 'CpuQuota', 'CpuRealtimePeriod', 'CpuRealtimeRuntime',
  'CpusetCpus', 'CpusetMems', 'Devices', 'DeviceCgroupRules', 'KernelMemory', 'KernelMemoryTCP', 'MemoryReservation',
  'MemorySwap', 'MemorySwappiness', 'NanoCpus', 'OomKillDisable', 'PidsLimit', 'Ulimits',
] as const;

function pickResources(hc: HostConfig): HostConfig {
  const out: Record<string, unknown> = {};
  for (const k of RESOURCE_KEYS) {
    const v = (hc as Record<string, unknown>)[k];
    // Docker's update only touches what the request set to a non-zero value.
    if (v === undefined || v === null || v === 0 || v === '') continue;
    if (k === 'CgroupParent' || k === 'Devices' || k === 'DeviceCgroupRules' || k === 'Ulimits') continue;
    out[k] = v;
  }
  return out as HostConfig;
}

/** The name each result of an attachment is shown under (`bridge` for the default network joined by default). */
function attachedKeys(net: ContainerNetwork): string[] {
  return net.Networks.length === 0 && net.Results.length > 0 ? ['bridge', ...net.Results.slice(1).map((r) => r.network)] : [...net.Networks];
}

/** Running or paused: the container's namespace is attached now. */
function isUp(record: ContainerRecord): boolean {
  return record.State.Status === 'running' || record.State.Status === 'paused';
}

/** Docker's create warnings (daemon_unix.go's verifyPlatformContainerSettings) that apply here. */
function createWarnings(record: ContainerRecord): string[] {
  const hc = record.HostConfig;
  const publishes = Object.keys(hc.PortBindings ?? {}).length > 0;
  return hc.NetworkMode === 'host' && publishes ? ['Published ports are discarded when using host network mode'] : [];
}
