/**
 * The CRI RuntimeService over core's domain: pod sandboxes are core
 * containers running a pause process, pod containers are core containers
 * that join the sandbox's namespaces. One implementation serves runtime.v1
 * and runtime.v1alpha2 (the fields used here are the same in both).
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { IsulaError, isIsulaError, KeyedMutex, toIsulaError, type ContainerCreateBody, type ContainerRecord, type DaemonConfig, type Engine, type HostConfig, type Hooks, type OciSpec, type StdioStream } from '@isula/core';
import type { ContainerConfig, LinuxContainerResources, PodSandboxConfig, SecurityProfile } from './cri-types.js';
import { invalid, notFound, unimplemented } from './errors.js';
import { containerMeta, kindOf, LABEL_KIND, LABEL_META, LABEL_SANDBOX_ID, matchesSelector, sandboxMeta, type ContainerMeta, type SandboxMeta } from './labels.js';
import { buildPauseImage, PAUSE_ARGS, PAUSE_PATH } from './pause-image.js';
import { mountPodShm, unmountPodShm } from './pod-shm.js';
import type { AttachRequest, ExecRequest, StreamingServer } from './streaming.js';
import { int64, isoToNanos, nowNanos } from './time.js';

export interface RuntimeServiceOptions {
  sandboxImage: string;
  /** The host's catatonit, for the offline pause image; '' to never build it. */
  catatonit: string;
  /** Bound on each of ExecSync's stdout and stderr. */
  execSyncMaxOutputBytes: number;
}

/** Sandbox processes get this oom_score_adj (the kubelet's for pause); core raises it to the daemon's own when lower (PLATFORM §10). */
const SANDBOX_OOM_SCORE_ADJ = -998;
const CONTAINER_FILES = ['hosts', 'resolv.conf', 'hostname'] as const;

type Req = Record<string, unknown>;

export class CriRuntime {
  readonly #log: Logger;
  readonly #config: Readonly<DaemonConfig>;
  readonly #hooks: Hooks;
  readonly #opts: RuntimeServiceOptions;
  #engine: Engine | undefined;
  #podCidr = '';
  /** What the network driver did with #podCidr: 'applied' or its reason for keeping its configuration. */
  #podCidrOutcome = '';
  #streaming: StreamingServer | undefined;
  readonly #imageLock = new KeyedMutex();

  constructor(deps: { log: Logger; config: Readonly<DaemonConfig>; hooks: Hooks; options: RuntimeServiceOptions }) {
    this.#log = deps.log;
    this.#config = deps.config;
    this.#hooks = deps.hooks;
    this.#opts = deps.options;
  }

  attach(engine: Engine): void {
    this.#engine = engine;
  }

  /**
   * At start: unmounts the pod /dev/shm tmpfs no sandbox refers to (left by a
   * crash between the mount and the sandbox's creation, or a failed removal).
   */
  async sweepShm(): Promise<void> {
    const dir = path.join(this.#config.state, 'cri', 'shm');
    const known = new Set(this.engine.containers.records().filter((r) => kindOf(r) === 'sandbox').map((r) => sandboxMeta(r).shmPath ?? ''));
    for (const name of await fs.readdir(dir).catch(() => [] as string[])) {
      const p = path.join(dir, name);
      if (known.has(p)) continue;
      await unmountPodShm(p).then(
        () => this.#log.warn({ shm: p }, 'removed a pod /dev/shm no sandbox refers to'),
        (err: unknown) => this.#log.warn({ err, shm: p }, 'removing a stale pod /dev/shm failed'),
      );
    }
  }

  get engine(): Engine {
    if (this.#engine === undefined) throw new IsulaError('RUNTIME_UNAVAILABLE', 'the CRI server is not started');
    return this.#engine;
  }

  // ---- version, status, config ------------------------------------------------

  version(apiVersion: string): Req {
    return { version: '0.1.0', runtime_name: 'isulad', runtime_version: this.engine.version, runtime_api_version: apiVersion };
  }

  async status(req: { verbose: boolean }): Promise<Req> {
    const signal = AbortSignal.timeout(10_000);
    const runtimeName = this.#config['default-runtime'];
    let runtimeReady = { type: 'RuntimeReady', status: true, reason: '', message: '' };
    try {
      const driver = await this.#hooks.resolveRuntime.promise(runtimeName);
      if (driver === undefined) throw new IsulaError('RUNTIME_NOT_FOUND', `no plugin claims the default runtime "${runtimeName}"`);
      await driver.probe?.({ signal });
    } catch (err) {
      runtimeReady = { type: 'RuntimeReady', status: false, reason: 'RuntimeUnavailable', message: toIsulaError(err).message };
    }
    const nets = this.engine.networkDrivers();
    const networkReady = nets.length > 0
      ? { type: 'NetworkReady', status: true, reason: '', message: '' }
      : { type: 'NetworkReady', status: false, reason: 'NetworkPluginNotReady', message: 'no network plugin is loaded (add @isula/network-cni to daemon.json "plugins")' };
    const info: Record<string, string> = {};
    if (req.verbose) {
      info['config'] = JSON.stringify({ sandboxImage: this.#opts.sandboxImage, defaultRuntime: runtimeName, criRuntimes: this.#config['cri-runtimes'], podCidr: this.#podCidr, podCidrOutcome: this.#podCidrOutcome, networks: nets.map((n) => n.name) });
    }
    return { status: { conditions: [runtimeReady, networkReady] }, info };
  }

  runtimeConfig(): Req {
    // The cgroupfs driver: cgroups paths are absolute directories (PLATFORM §2; --systemd-cgroup fails here).
    return { linux: { cgroup_driver: 'CGROUPFS' } };
  }

  /**
   * The kubelet's pod CIDR: recorded (Status verbose shows it) and handed to
   * every network driver that takes one (network-cni: its default network's
   * subnet, where isula owns that conflist). A driver that keeps its
   * configuration says why; that is logged, not an error, as containerd
   * does when its CNI template is not in use.
   */
  async updateRuntimeConfig(req: { runtime_config: { network_config: { pod_cidr: string } | null } | null }): Promise<Req> {
    const cidr = req.runtime_config?.network_config?.pod_cidr ?? '';
    if (cidr === '') return {};
    if (cidr !== this.#podCidr) {
      this.#podCidr = cidr;
      this.#log.info({ podCidr: cidr }, 'pod CIDR from the kubelet');
    }
    await this.#applyPodCidr(cidr);
    return {};
  }

  async #applyPodCidr(cidr: string): Promise<void> {
    for (const driver of this.engine.networkDrivers()) {
      if (driver.setPodCidr === undefined) continue;
      // A malformed CIDR is NETWORK_CONFIG_INVALID: INVALID_ARGUMENT to the kubelet.
      const outcome = await driver.setPodCidr(cidr, { signal: AbortSignal.timeout(30_000) });
      // The driver logged its reason; Status (verbose) shows the last outcome.
      this.#podCidrOutcome = outcome.applied ? 'applied' : (outcome.reason ?? 'not applied');
    }
  }

  /**
   * A pod CIDR a driver did not apply (pods were attached to the network) is
   * tried again as pods stop: the kubelet sends it only when it changes.
   */
  async #retryPodCidr(): Promise<void> {
    if (this.#podCidr === '' || this.#podCidrOutcome === '' || this.#podCidrOutcome === 'applied') return;
    await this.#applyPodCidr(this.#podCidr).catch((err: unknown) => this.#log.warn({ err, podCidr: this.#podCidr }, 'applying the pod CIDR again failed'));
    if (this.#podCidrOutcome === 'applied') this.#log.info({ podCidr: this.#podCidr }, 'pod CIDR applied once the pods attached to the network were gone');
  }

  // ---- pod sandboxes ----------------------------------------------------------

  async runPodSandbox(req: { config: PodSandboxConfig | null; runtime_handler: string }): Promise<Req> {
    const config = req.config;
    const md = config?.metadata;
    if (config === null || md === null || md === undefined || md.name === '' || md.namespace === '' || md.uid === '') {
      throw invalid('RunPodSandbox: config.metadata needs name, namespace and uid');
    }
    if (config.log_directory !== '' && (!path.isAbsolute(config.log_directory) || config.log_directory.includes('\0'))) {
      throw invalid(`RunPodSandbox: log_directory ${JSON.stringify(config.log_directory)} must be an absolute path`);
    }
    const signal = AbortSignal.timeout(120_000);
    const runtime = await this.#runtimeFor(req.runtime_handler);
    const image = await this.#sandboxImage(signal);
    const sc = config.linux?.security_context ?? null;
    if (sc?.run_as_group != null && sc.run_as_user == null) throw invalid('RunPodSandbox: run_as_group is set without run_as_user');
    const ns = sc?.namespace_options ?? null;
    const hostNetwork = ns?.network === 'NODE';
    const meta: SandboxMeta = {
      schemaVersion: 1,
      metadata: { name: md.name, uid: md.uid, namespace: md.namespace, attempt: md.attempt },
      labels: config.labels,
      annotations: config.annotations,
      runtimeHandler: req.runtime_handler,
      hostNetwork,
      pid: ns?.pid ?? 'CONTAINER',
      ipc: ns?.ipc ?? 'POD',
      logDirectory: config.log_directory,
      hostname: config.hostname,
      cgroupParent: config.linux?.cgroup_parent ?? '',
      shmPath: ns?.ipc === 'NODE' ? '' : path.join(this.#config.state, 'cri', 'shm', randomBytes(16).toString('hex')),
    };
    const dns = config.dns_config;
    const portBindings: NonNullable<HostConfig['PortBindings']> = {};
    for (const p of config.port_mappings) {
      if (p.container_port <= 0) continue;
      const key = `${p.container_port}/${p.protocol.toLowerCase()}`;
      (portBindings[key] ??= []).push({ HostPort: p.host_port > 0 ? String(p.host_port) : '', ...(p.host_ip !== '' && { HostIp: p.host_ip }) });
    }
    const hc: HostConfig = {
      Runtime: runtime,
      NetworkMode: hostNetwork ? 'host' : '',
      IpcMode: ns?.ipc === 'NODE' ? 'host' : '',
      PidMode: ns?.pid === 'NODE' ? 'host' : '',
      ...(hostNetwork && { UTSMode: 'host' }),
      ...(meta.cgroupParent !== '' && { CgroupParent: meta.cgroupParent }),
      ...(Object.keys(config.linux?.sysctls ?? {}).length > 0 && { Sysctls: config.linux?.sysctls ?? {} }),
      ...(dns !== null && dns.servers.length > 0 && { Dns: dns.servers }),
      ...(dns !== null && dns.searches.length > 0 && { DnsSearch: dns.searches }),
      ...(dns !== null && dns.options.length > 0 && { DnsOptions: dns.options }),
      ...(Object.keys(portBindings).length > 0 && { PortBindings: portBindings }),
      OomScoreAdj: SANDBOX_OOM_SCORE_ADJ,
      ReadonlyRootfs: sc?.readonly_rootfs === true,
      Privileged: sc?.privileged === true,
      SecurityOpt: seccompOpts(sc?.seccomp ?? null, sc?.seccomp_profile_path ?? ''),
      LogConfig: { Type: 'none' },
      ...(meta.shmPath !== undefined && meta.shmPath !== '' && { Binds: [`${meta.shmPath}:/dev/shm:rw`] }),
    };
    const body: ContainerCreateBody = {
      Image: image.reference,
      ...(!hostNetwork && config.hostname !== '' && { Hostname: config.hostname }),
      Labels: { [LABEL_KIND]: 'sandbox', [LABEL_META]: JSON.stringify(meta) },
      ...(image.needsCommand && { Entrypoint: [PAUSE_PATH], Cmd: PAUSE_ARGS }),
      ...(sc?.run_as_user != null && { User: `${sc.run_as_user.value}${sc.run_as_group != null ? `:${sc.run_as_group.value}` : ''}` }),
      HostConfig: hc,
    };
    const name = `k8s_POD_${md.name}_${md.namespace}_${md.uid}_${md.attempt}`;
    const shm = meta.shmPath ?? '';
    // The tmpfs is needed from start on (runc binds it), not by create: mount it while the
    // sandbox is created. Its directory exists first, so create sees the bind source.
    if (shm !== '') await fs.mkdir(shm, { recursive: true, mode: 0o711 });
    const shmMounted = shm === '' ? Promise.resolve() : mountPodShm(shm);
    shmMounted.catch(() => undefined); // awaited below; not unhandled while create runs
    let id: string | undefined;
    try {
      id = (await this.engine.containers.create(body, name, signal)).Id;
      await shmMounted;
      await this.engine.containers.start(id, signal);
    } catch (err) {
      if (id !== undefined) await this.engine.containers.remove(id, { force: true }, AbortSignal.timeout(30_000)).catch((e: unknown) => this.#log.warn({ err: e, id }, 'removing a sandbox that failed to start failed'));
      if (shm !== '') {
        await shmMounted.catch(() => undefined); // settled before it is undone
        await unmountPodShm(shm).catch((e: unknown) => this.#log.warn({ err: e, shm }, 'unmounting the pod\'s /dev/shm failed'));
      }
      throw err;
    }
    const Id = id;
    this.#log.info({ sandbox: Id, pod: `${md.namespace}/${md.name}` }, 'pod sandbox running');
    return { pod_sandbox_id: Id };
  }

  async stopPodSandbox(req: { pod_sandbox_id: string }): Promise<Req> {
    const sandbox = this.#sandbox(req.pod_sandbox_id);
    const signal = AbortSignal.timeout(120_000);
    // Containers first, as the CRI asks: they are "forcibly terminated".
    await Promise.all(this.#podContainers(sandbox.Id).map((r) => this.engine.containers.stop(r.Id, 0, signal)
      .catch((err: unknown) => { if (!isIsulaError(err, 'CONTAINER_NOT_FOUND')) throw err; })));
    await this.engine.containers.stop(sandbox.Id, 0, signal);
    await this.#retryPodCidr();
    return {};
  }

  async removePodSandbox(req: { pod_sandbox_id: string }): Promise<Req> {
    let sandbox: ContainerRecord;
    try {
      sandbox = this.#sandbox(req.pod_sandbox_id);
    } catch (err) {
      if (isIsulaError(err, 'CONTAINER_NOT_FOUND')) return {}; // idempotent
      throw err;
    }
    const signal = AbortSignal.timeout(120_000);
    for (const r of this.#podContainers(sandbox.Id)) {
      await this.engine.containers.remove(r.Id, { force: true }, signal).catch((err: unknown) => { if (!isIsulaError(err, 'CONTAINER_NOT_FOUND')) throw err; });
    }
    await this.engine.containers.remove(sandbox.Id, { force: true }, signal).catch((err: unknown) => { if (!isIsulaError(err, 'CONTAINER_NOT_FOUND')) throw err; });
    const shm = sandboxMeta(sandbox).shmPath ?? '';
    if (shm !== '') await unmountPodShm(shm);
    await this.#retryPodCidr();
    return {};
  }

  podSandboxStatus(req: { pod_sandbox_id: string; verbose: boolean }): Req {
    const r = this.#sandbox(req.pod_sandbox_id);
    const meta = sandboxMeta(r);
    const ips = podIps(r);
    const status = {
      id: r.Id,
      metadata: meta.metadata,
      state: sandboxState(r),
      created_at: isoToNanos(r.Created),
      network: { ip: ips[0] ?? '', additional_ips: ips.slice(1).map((ip) => ({ ip })) },
      linux: {
        namespaces: {
          options: {
            network: meta.hostNetwork ? 'NODE' : 'POD',
            pid: meta.pid === 'NODE' ? 'NODE' : meta.pid === 'POD' ? 'POD' : 'CONTAINER',
            ipc: meta.ipc === 'NODE' ? 'NODE' : 'POD',
          },
        },
      },
      labels: meta.labels,
      annotations: meta.annotations,
      runtime_handler: meta.runtimeHandler,
    };
    const info: Record<string, string> = {};
    if (req.verbose) {
      info['info'] = JSON.stringify({
        pid: r.State.Pid,
        processStatus: r.State.Status,
        netNamespaceClosed: r.Network === undefined,
        runtime: r.Runtime,
        image: r.Config.Image,
        config: { hostname: meta.hostname, logDirectory: meta.logDirectory, cgroupParent: meta.cgroupParent },
        network: r.Network ?? null,
      });
    }
    return { status, info, containers_statuses: [] };
  }

  listPodSandbox(req: { filter: { id: string; state: { state: string } | null; label_selector: Record<string, string> } | null }): Req {
    const f = req.filter;
    const items = [];
    for (const r of this.engine.containers.records()) {
      if (kindOf(r) !== 'sandbox') continue;
      if (f !== null && f.id !== '' && !r.Id.startsWith(f.id)) continue;
      const state = sandboxState(r);
      if (f?.state != null && f.state.state !== state) continue;
      const meta = sandboxMeta(r);
      if (!matchesSelector(meta.labels, f?.label_selector)) continue;
      items.push({ id: r.Id, metadata: meta.metadata, state, created_at: isoToNanos(r.Created), labels: meta.labels, annotations: meta.annotations, runtime_handler: meta.runtimeHandler });
    }
    return { items };
  }

  // ---- containers ---------------------------------------------------------------

  async createContainer(req: { pod_sandbox_id: string; config: ContainerConfig | null; sandbox_config: PodSandboxConfig | null }): Promise<Req> {
    const c = req.config;
    if (c === null || c.metadata === null || c.metadata.name === '') throw invalid('CreateContainer: config.metadata.name is required');
    if (c.image === null || c.image.image === '') throw invalid('CreateContainer: config.image.image is required');
    const sandbox = this.#sandbox(req.pod_sandbox_id);
    const smeta = sandboxMeta(sandbox);
    const signal = AbortSignal.timeout(120_000);
    const sc = c.linux?.security_context ?? null;
    const ns = sc?.namespace_options ?? null;
    const pid = ns?.pid ?? smeta.pid;
    if (pid === 'TARGET') {
      if ((ns?.target_id ?? '') === '') throw invalid('CreateContainer: namespace_options.pid TARGET needs a target_id');
      this.#container(ns?.target_id ?? '');
    }
    const logPath = smeta.logDirectory !== '' && c.log_path !== '' ? path.resolve(smeta.logDirectory, c.log_path) : '';
    if (logPath !== '') {
      if (!logPath.startsWith(path.resolve(smeta.logDirectory) + path.sep)) throw invalid(`CreateContainer: log_path ${JSON.stringify(c.log_path)} leaves the pod's log directory`);
      await fs.mkdir(path.dirname(logPath), { recursive: true, mode: 0o755 });
    }
    for (const m of c.mounts) {
      // Binds are "src:dst:opts": a colon in a path would be misread.
      if (m.host_path.includes(':') || m.container_path.includes(':')) throw invalid(`CreateContainer: mount ${JSON.stringify(m.host_path)} → ${JSON.stringify(m.container_path)}: paths with ':' are not supported`);
      if (!path.isAbsolute(m.container_path) || !path.isAbsolute(m.host_path)) throw invalid(`CreateContainer: mount ${JSON.stringify(m.host_path)} → ${JSON.stringify(m.container_path)}: both paths must be absolute`);
    }
    const meta: ContainerMeta = {
      schemaVersion: 1,
      metadata: { name: c.metadata.name, attempt: c.metadata.attempt },
      labels: c.labels,
      annotations: c.annotations,
      image: c.image.image,
      logPath,
      pid,
      targetId: ns?.target_id ?? '',
      mounts: c.mounts.map((m) => ({ container_path: m.container_path, host_path: m.host_path, readonly: m.readonly, selinux_relabel: m.selinux_relabel, propagation: m.propagation })),
    };
    const user = sc === null ? '' : sc.run_as_username !== '' ? sc.run_as_username : sc.run_as_user != null ? sc.run_as_user.value : '';
    const group = sc?.run_as_group != null ? sc.run_as_group.value : '';
    if (group !== '' && user === '') throw invalid('CreateContainer: run_as_group is set without run_as_user or run_as_username');
    const hc: HostConfig = {
      Runtime: sandbox.Runtime,
      NetworkMode: smeta.hostNetwork ? 'host' : `container:${sandbox.Id}`,
      ...(smeta.ipc === 'NODE' && { IpcMode: 'host' }),
      ...(pid === 'NODE' && { PidMode: 'host' }),
      ...(smeta.hostNetwork && { UTSMode: 'host' }),
      ...(smeta.cgroupParent !== '' && { CgroupParent: smeta.cgroupParent }),
      Binds: [
        ...c.mounts.filter((m) => m.host_path !== '' && m.container_path !== '').map((m) => `${m.host_path}:${m.container_path}:${[m.readonly ? 'ro' : 'rw', propagation(m.propagation)].join(',')}`),
        // The pod's /dev/shm, unless the kubelet mounts its own there.
        ...(smeta.shmPath !== undefined && smeta.shmPath !== '' && !c.mounts.some((m) => path.normalize(m.container_path) === '/dev/shm') ? [`${smeta.shmPath}:/dev/shm:rw`] : []),
      ],
      Devices: c.devices.map((d) => ({ PathOnHost: d.host_path, PathInContainer: d.container_path, CgroupPermissions: d.permissions === '' ? 'rwm' : d.permissions })),
      ...resources(c.linux?.resources ?? null),
      Privileged: sc?.privileged === true,
      ReadonlyRootfs: sc?.readonly_rootfs === true,
      ...(sc !== null && sc.capabilities !== null && { CapAdd: sc.capabilities.add_capabilities.map(capName), CapDrop: sc.capabilities.drop_capabilities.map(capName) }),
      ...(sc !== null && sc.supplemental_groups.length > 0 && { GroupAdd: sc.supplemental_groups.map(String) }),
      ...(sc !== null && sc.masked_paths.length > 0 && { MaskedPaths: sc.masked_paths }),
      ...(sc !== null && sc.readonly_paths.length > 0 && { ReadonlyPaths: sc.readonly_paths }),
      SecurityOpt: [...seccompOpts(sc?.seccomp ?? null, sc?.seccomp_profile_path ?? ''), ...(sc?.no_new_privs === true ? ['no-new-privileges'] : [])],
      ...(logPath !== ''
        // The kubelet rotates CRI logs itself (and asks ReopenContainerLog): core keeps one file.
        ? { LogPath: logPath, LogConfig: { Type: 'json-file', Config: { 'max-size': '-1', 'max-file': '1' } } }
        : {}),
    };
    const body: ContainerCreateBody = {
      Image: c.image.image,
      // The sandbox's hostname as core set it (the pod's, or the sandbox id's prefix): a container
      // sets it again in the UTS namespace it shares, which must not change it.
      ...(!smeta.hostNetwork && { Hostname: sandbox.Config.Hostname ?? smeta.hostname }),
      ...(c.command.length > 0 && { Entrypoint: c.command }),
      ...(c.args.length > 0 && { Cmd: c.args }),
      ...(c.working_dir !== '' && { WorkingDir: c.working_dir }),
      // KeyValue.value is `bytes` in the v1 reference (string in v1alpha2): same wire, decoded as a Buffer or a string.
      Env: c.envs.map((e) => `${e.key}=${typeof e.value === 'string' ? e.value : Buffer.from(e.value).toString('utf8')}`),
      ...(user !== '' && { User: group !== '' ? `${user}:${group}` : user }),
      Tty: c.tty,
      OpenStdin: c.stdin,
      StdinOnce: c.stdin_once,
      Labels: { [LABEL_KIND]: 'container', [LABEL_SANDBOX_ID]: sandbox.Id, [LABEL_META]: JSON.stringify(meta) },
      HostConfig: hc,
    };
    const name = `k8s_${c.metadata.name}_${smeta.metadata.name}_${smeta.metadata.namespace}_${smeta.metadata.uid}_${c.metadata.attempt}`;
    const { Id } = await this.engine.containers.create(body, name, signal);
    return { container_id: Id };
  }

  async startContainer(req: { container_id: string }): Promise<Req> {
    const r = this.#container(req.container_id);
    const sandboxId = r.Config.Labels?.[LABEL_SANDBOX_ID] ?? '';
    const sandbox = this.#sandbox(sandboxId);
    if (sandbox.State.Status !== 'running') throw new IsulaError('CONTAINER_STATE_CONFLICT', `pod sandbox ${sandboxId} is not ready`);
    await this.engine.containers.start(r.Id, AbortSignal.timeout(120_000));
    return {};
  }

  async stopContainer(req: { container_id: string; timeout: string }): Promise<Req> {
    const r = this.#container(req.container_id);
    await this.engine.containers.stop(r.Id, Math.max(0, int64(req.timeout)), AbortSignal.timeout(120_000));
    return {};
  }

  async removeContainer(req: { container_id: string }): Promise<Req> {
    let r: ContainerRecord;
    try {
      r = this.#container(req.container_id);
    } catch (err) {
      if (isIsulaError(err, 'CONTAINER_NOT_FOUND')) return {};
      throw err;
    }
    await this.engine.containers.remove(r.Id, { force: true }, AbortSignal.timeout(120_000)).catch((err: unknown) => { if (!isIsulaError(err, 'CONTAINER_NOT_FOUND')) throw err; });
    return {};
  }

  listContainers(req: { filter: { id: string; state: { state: string } | null; pod_sandbox_id: string; label_selector: Record<string, string> } | null }): Req {
    const f = req.filter;
    const containers = [];
    for (const r of this.engine.containers.records()) {
      if (kindOf(r) !== 'container') continue;
      if (f !== null && f.id !== '' && !r.Id.startsWith(f.id)) continue;
      const sandboxId = r.Config.Labels?.[LABEL_SANDBOX_ID] ?? '';
      if (f !== null && f.pod_sandbox_id !== '' && !sandboxId.startsWith(f.pod_sandbox_id)) continue;
      const state = containerState(r);
      if (f?.state != null && f.state.state !== state) continue;
      const meta = containerMeta(r);
      if (!matchesSelector(meta.labels, f?.label_selector)) continue;
      containers.push({
        id: r.Id,
        pod_sandbox_id: sandboxId,
        metadata: meta.metadata,
        image: { image: meta.image },
        image_ref: r.Image,
        state,
        created_at: isoToNanos(r.Created),
        labels: meta.labels,
        annotations: meta.annotations,
      });
    }
    return { containers };
  }

  containerStatus(req: { container_id: string; verbose: boolean }): Req {
    const r = this.#container(req.container_id);
    const meta = containerMeta(r);
    const state = containerState(r);
    const exited = state === 'CONTAINER_EXITED';
    const reason = !exited ? '' : r.State.OOMKilled ? 'OOMKilled' : r.State.ExitCode === 0 ? 'Completed' : 'Error';
    const status = {
      id: r.Id,
      metadata: meta.metadata,
      state,
      created_at: isoToNanos(r.Created),
      started_at: isoToNanos(r.State.StartedAt),
      finished_at: exited ? isoToNanos(r.State.FinishedAt) : '0',
      exit_code: exited ? r.State.ExitCode : 0,
      image: { image: meta.image },
      image_ref: r.Image,
      reason,
      message: r.State.Error,
      labels: meta.labels,
      annotations: meta.annotations,
      mounts: meta.mounts,
      log_path: meta.logPath,
      resources: { linux: linuxResources(r.HostConfig) },
    };
    const info: Record<string, string> = {};
    if (req.verbose) {
      info['info'] = JSON.stringify({ sandboxID: r.Config.Labels?.[LABEL_SANDBOX_ID] ?? '', pid: r.State.Pid, runtime: r.Runtime, name: r.Name, path: r.Path, args: r.Args, config: { env: r.Config.Env, workingDir: r.Config.WorkingDir, user: r.Config.User } });
    }
    return { status, info };
  }

  async updateContainerResources(req: { container_id: string; linux: LinuxContainerResources | null }): Promise<Req> {
    const r = this.#container(req.container_id);
    if (req.linux !== null) await this.engine.containers.update(r.Id, resources(req.linux), AbortSignal.timeout(60_000));
    return {};
  }

  async reopenContainerLog(req: { container_id: string }): Promise<Req> {
    const r = this.#container(req.container_id);
    if (containerState(r) !== 'CONTAINER_RUNNING') throw new IsulaError('CONTAINER_STATE_CONFLICT', `container ${r.Id} is not running`);
    const { runtime, ref } = await this.engine.containers.driverOf(r.Id);
    if (runtime.reopenLog === undefined) throw unimplemented(`ReopenContainerLog: the ${runtime.name} runtime driver cannot reopen a container's log yet`);
    await runtime.reopenLog(ref, { signal: AbortSignal.timeout(10_000) });
    return {};
  }

  /** Runs a command to its end (or the timeout), collecting its output. */
  async execSync(req: { container_id: string; cmd: string[]; timeout: string }): Promise<Req> {
    const r = this.#container(req.container_id);
    if (req.cmd.length === 0) throw invalid('ExecSync: cmd is empty');
    const execs = this.engine.execs;
    const { Id } = execs.create(r.Id, { Cmd: req.cmd, AttachStdout: true, AttachStderr: true });
    const max = this.#opts.execSyncMaxOutputBytes;
    const out = new Collector(max);
    const err = new Collector(max);
    let stream: StdioStream | undefined;
    let outputClosed!: () => void;
    const closed = new Promise<void>((resolve) => { outputClosed = resolve; });
    // Resolves once the process runs; throws (the RPC's error) when it cannot be started.
    const inst = await execs.start(Id, {
      write: (s: 1 | 2, chunk: Buffer) => { (s === 1 ? out : err).push(chunk); },
      connected: (st: StdioStream) => { stream = st; st.onClose(outputClosed); },
    });
    if (stream === undefined) outputClosed();
    const timeoutSec = int64(req.timeout);
    let timer: NodeJS.Timeout | undefined;
    const finished = Promise.all([inst.done, closed]);
    try {
      if (timeoutSec > 0) {
        await Promise.race([finished, new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new IsulaError('TIMEOUT', `ExecSync: command timed out after ${timeoutSec}s`)), timeoutSec * 1000);
        })]);
      } else {
        await finished;
      }
      return { stdout: out.value(), stderr: err.value(), exit_code: inst.exitCode ?? -1 };
    } catch (e) {
      // A timed-out command is killed, as containerd's, not left running.
      if (inst.running && inst.pid > 0) {
        try { process.kill(inst.pid, 'SIGKILL'); } catch { /* gone already */ }
      }
      (stream as StdioStream | undefined)?.close();
      throw e;
    } finally {
      clearTimeout(timer);
    }
  }

  // ---- stats --------------------------------------------------------------------

  async containerStats(req: { container_id: string }): Promise<Req> {
    const r = this.#container(req.container_id);
    return { stats: await this.#stats(r) };
  }

  async listContainerStats(req: { filter: { id: string; pod_sandbox_id: string; label_selector: Record<string, string> } | null }): Promise<Req> {
    const f = req.filter;
    const stats = [];
    for (const r of this.engine.containers.records()) {
      if (kindOf(r) !== 'container' || containerState(r) !== 'CONTAINER_RUNNING') continue;
      if (f !== null && f.id !== '' && !r.Id.startsWith(f.id)) continue;
      if (f !== null && f.pod_sandbox_id !== '' && !(r.Config.Labels?.[LABEL_SANDBOX_ID] ?? '').startsWith(f.pod_sandbox_id)) continue;
      if (!matchesSelector(containerMeta(r).labels, f?.label_selector)) continue;
      stats.push(await this.#stats(r));
    }
    return { stats };
  }

  async #stats(r: ContainerRecord): Promise<Req> {
    const meta = containerMeta(r);
    const attributes = { id: r.Id, metadata: meta.metadata, labels: meta.labels, annotations: meta.annotations };
    const ts = nowNanos();
    if (containerState(r) !== 'CONTAINER_RUNNING') return { attributes };
    const { runtime, ref } = await this.engine.containers.driverOf(r.Id);
    const s = await runtime.stats(ref, { signal: AbortSignal.timeout(10_000) });
    const inactive = s.memoryStat?.['total_inactive_file'] ?? s.memoryStat?.['inactive_file'] ?? 0;
    const readAt = (BigInt(s.readAt.getTime()) * 1_000_000n).toString();
    return {
      attributes,
      cpu: { timestamp: readAt, usage_core_nano_seconds: { value: String(s.cpuUsageNs) } },
      memory: {
        timestamp: readAt,
        working_set_bytes: { value: String(Math.max(0, s.memoryUsageBytes - inactive)) },
        usage_bytes: { value: String(s.memoryUsageBytes) },
        ...(s.memoryStat?.['rss'] !== undefined && { rss_bytes: { value: String(s.memoryStat['rss']) } }),
      },
      writable_layer: { timestamp: ts, fs_id: { mountpoint: this.#config.graph }, used_bytes: { value: String((await this.engine.containers.sizes(r, AbortSignal.timeout(10_000))).SizeRw) } },
    };
  }

  async podSandboxStats(req: { pod_sandbox_id: string }): Promise<Req> {
    return { stats: await this.#podStats(this.#sandbox(req.pod_sandbox_id)) };
  }

  async listPodSandboxStats(req: { filter: { id: string; label_selector: Record<string, string> } | null }): Promise<Req> {
    const f = req.filter;
    const stats = [];
    for (const r of this.engine.containers.records()) {
      if (kindOf(r) !== 'sandbox' || sandboxState(r) !== 'SANDBOX_READY') continue;
      if (f !== null && f.id !== '' && !r.Id.startsWith(f.id)) continue;
      if (!matchesSelector(sandboxMeta(r).labels, f?.label_selector)) continue;
      stats.push(await this.#podStats(r));
    }
    return { stats };
  }

  /** A pod's usage: the sum of its sandbox and containers (the pod cgroup is the kubelet's, not ours). */
  async #podStats(sandbox: ContainerRecord): Promise<Req> {
    const meta = sandboxMeta(sandbox);
    const attributes = { id: sandbox.Id, metadata: meta.metadata, labels: meta.labels, annotations: meta.annotations };
    if (sandboxState(sandbox) !== 'SANDBOX_READY') return { attributes };
    let cpu = 0;
    let mem = 0;
    let ws = 0;
    const containers: Req[] = [];
    const ts = nowNanos();
    for (const r of [sandbox, ...this.#podContainers(sandbox.Id)]) {
      if (r.State.Status !== 'running' && r.State.Status !== 'paused') continue;
      const { runtime, ref } = await this.engine.containers.driverOf(r.Id);
      const s = await runtime.stats(ref, { signal: AbortSignal.timeout(10_000) }).catch(() => undefined);
      if (s === undefined) continue;
      const inactive = s.memoryStat?.['total_inactive_file'] ?? s.memoryStat?.['inactive_file'] ?? 0;
      cpu += s.cpuUsageNs;
      mem += s.memoryUsageBytes;
      ws += Math.max(0, s.memoryUsageBytes - inactive);
      if (r.Id !== sandbox.Id) containers.push(await this.#stats(r));
    }
    return {
      attributes,
      linux: {
        cpu: { timestamp: ts, usage_core_nano_seconds: { value: String(cpu) } },
        memory: { timestamp: ts, working_set_bytes: { value: String(ws) }, usage_bytes: { value: String(mem) } },
        containers,
      },
    };
  }

  // ---- events ---------------------------------------------------------------------

  /**
   * GetContainerEvents: the engine's container events of CRI sandboxes and
   * containers as CRI events, with the statuses the kubelet's evented PLEG
   * reads. Returns the unsubscribe function.
   */
  subscribeEvents(send: (event: Req) => void): () => void {
    const types: Record<string, string> = { create: 'CONTAINER_CREATED_EVENT', start: 'CONTAINER_STARTED_EVENT', die: 'CONTAINER_STOPPED_EVENT', destroy: 'CONTAINER_DELETED_EVENT' };
    return this.engine.events.subscribe((e) => {
      const type = types[e.Action];
      const attrs = e.Actor.Attributes;
      const kind = attrs[LABEL_KIND];
      if (e.Type !== 'container' || type === undefined || (kind !== 'sandbox' && kind !== 'container')) return;
      const sandboxId = kind === 'sandbox' ? e.Actor.ID : (attrs[LABEL_SANDBOX_ID] ?? '');
      let podStatus: Req | null = null;
      const statuses: Req[] = [];
      try { podStatus = (this.podSandboxStatus({ pod_sandbox_id: sandboxId, verbose: false }) as { status: Req }).status; } catch { /* removed */ }
      if (kind === 'container') {
        try { statuses.push((this.containerStatus({ container_id: e.Actor.ID, verbose: false }) as { status: Req }).status); } catch { /* removed */ }
      }
      send({
        container_id: e.Actor.ID,
        container_event_type: type,
        created_at: (BigInt(Math.floor(e.timeNano / 1000)) * 1000n).toString(),
        pod_sandbox_status: podStatus,
        containers_statuses: statuses,
      });
    });
  }

  // ---- not built yet -----------------------------------------------------------

  // ---- streaming (URLs of the streaming server) -----------------------------------------

  setStreaming(server: StreamingServer): void {
    this.#streaming = server;
  }

  #streamingServer(): StreamingServer {
    if (this.#streaming === undefined) throw new IsulaError('RUNTIME_UNAVAILABLE', 'the CRI streaming server is not running');
    return this.#streaming;
  }

  execUrl(req: ExecRequest): Req {
    const r = this.#container(req.container_id);
    if (req.cmd.length === 0) throw invalid('Exec: cmd is empty');
    if (!req.stdin && !req.stdout && !req.stderr) throw invalid('Exec: one of stdin, stdout and stderr must be set');
    if (req.tty && req.stderr) throw invalid('Exec: tty and stderr cannot both be set (a terminal has one output)');
    if (containerState(r) !== 'CONTAINER_RUNNING') throw new IsulaError('CONTAINER_STATE_CONFLICT', `container ${r.Id} is not running`);
    return { url: this.#streamingServer().url({ kind: 'exec', req: { container_id: r.Id, cmd: req.cmd, tty: req.tty, stdin: req.stdin, stdout: req.stdout, stderr: req.stderr } }) };
  }

  attachUrl(req: AttachRequest): Req {
    const r = this.#container(req.container_id);
    if (!req.stdin && !req.stdout && !req.stderr) throw invalid('Attach: one of stdin, stdout and stderr must be set');
    if (req.tty !== (r.Config.Tty === true)) throw invalid(`Attach: tty=${req.tty} but the container was created with tty=${r.Config.Tty === true}`);
    if (req.stdin && r.Config.OpenStdin !== true) throw invalid('Attach: stdin asked for, but the container was created without stdin');
    if (containerState(r) !== 'CONTAINER_RUNNING') throw new IsulaError('CONTAINER_STATE_CONFLICT', `container ${r.Id} is not running`);
    return { url: this.#streamingServer().url({ kind: 'attach', req: { container_id: r.Id, tty: req.tty, stdin: req.stdin, stdout: req.stdout, stderr: req.stderr } }) };
  }

  portForwardUrl(req: { pod_sandbox_id: string; port: number[] }): Req {
    const r = this.#sandbox(req.pod_sandbox_id);
    if (sandboxState(r) !== 'SANDBOX_READY') throw new IsulaError('CONTAINER_STATE_CONFLICT', `pod sandbox ${r.Id} is not ready`);
    for (const p of req.port) if (!Number.isInteger(p) || p < 1 || p > 65535) throw invalid(`PortForward: port ${p} is out of range`);
    return { url: this.#streamingServer().url({ kind: 'portforward', req: { pod_sandbox_id: r.Id, port: req.port } }) };
  }

  checkpointContainer(): never {
    throw unimplemented('CheckpointContainer: checkpoint/restore (criu) is not supported by isula yet');
  }

  // ---- spec mutation for pod containers ------------------------------------------

  /**
   * Core's `mutateSpec` tap: a pod container joins its sandbox's IPC and UTS
   * namespaces (and PID per NamespaceOption), and shares the sandbox's
   * hosts, hostname and resolv.conf, as the pod's containers do in
   * containerd and CRI-O. The network namespace comes from core
   * (NetworkMode `container:<sandbox>`).
   */
  mutateSpec(spec: OciSpec, labels: Record<string, string>): OciSpec {
    if (labels[LABEL_KIND] !== 'container' || this.#engine === undefined) return spec;
    const sandbox = this.#sandbox(labels[LABEL_SANDBOX_ID] ?? '');
    const meta = JSON.parse(labels[LABEL_META] ?? '{}') as ContainerMeta;
    const pid = sandbox.State.Pid;
    if (sandbox.State.Status !== 'running' || pid <= 0) throw new IsulaError('CONTAINER_STATE_CONFLICT', `pod sandbox ${sandbox.Id} is not running`);
    const linux = (spec['linux'] ?? {}) as { namespaces?: { type: string; path?: string }[] };
    const join: Record<string, string> = { ipc: `/proc/${pid}/ns/ipc`, uts: `/proc/${pid}/ns/uts` };
    if (meta.pid === 'POD') join['pid'] = `/proc/${pid}/ns/pid`;
    if (meta.pid === 'TARGET') {
      const target = this.#container(meta.targetId);
      if (target.State.Pid <= 0) throw new IsulaError('CONTAINER_STATE_CONFLICT', `target container ${meta.targetId} is not running`);
      join['pid'] = `/proc/${target.State.Pid}/ns/pid`;
    }
    const namespaces = (linux.namespaces ?? []).map((n) => (join[n.type] !== undefined ? { type: n.type, path: join[n.type] as string } : n));
    const dir = this.engine.containers.containerDir(sandbox.Id);
    const mounts = ((spec['mounts'] ?? []) as { destination: string; source?: string }[]).map((m) => {
      const file = CONTAINER_FILES.find((f) => m.destination === `/etc/${f}`);
      return file === undefined ? m : { ...m, source: path.join(dir, file) };
    });
    return { ...spec, mounts, linux: { ...linux, namespaces } };
  }

  // ---- helpers ----------------------------------------------------------------

  #find(id: string, kind: 'sandbox' | 'container'): ContainerRecord {
    if (id === '') throw invalid(`${kind === 'sandbox' ? 'pod sandbox' : 'container'} id is empty`);
    let r: ContainerRecord;
    try {
      r = this.engine.containers.find(id).record;
    } catch (err) {
      if (isIsulaError(err, 'CONTAINER_NOT_FOUND')) throw notFound(kind === 'sandbox' ? 'pod sandbox' : 'container', id);
      throw err;
    }
    if (kindOf(r) !== kind) throw notFound(kind === 'sandbox' ? 'pod sandbox' : 'container', id);
    return r;
  }

  #sandbox(id: string): ContainerRecord { return this.#find(id, 'sandbox'); }
  #container(id: string): ContainerRecord { return this.#find(id, 'container'); }

  #podContainers(sandboxId: string): ContainerRecord[] {
    return this.engine.containers.records().filter((r) => kindOf(r) === 'container' && r.Config.Labels?.[LABEL_SANDBOX_ID] === sandboxId);
  }

  /** The RuntimeHandler → a runtime name: daemon.json `cri-runtimes`, '' the default runtime. */
  async #runtimeFor(handler: string): Promise<string> {
    if (handler === '') return this.#config['default-runtime'];
    const mapped = this.#config['cri-runtimes'][handler];
    if (mapped !== undefined) return mapped;
    const claimed = await this.#hooks.resolveRuntime.promise(handler).catch(() => undefined);
    if (claimed !== undefined) return handler;
    throw new IsulaError('RUNTIME_NOT_FOUND', `no runtime for RuntimeHandler "${handler}" (daemon.json "cri-runtimes")`);
  }

  /** The sandbox image, built offline from catatonit when it is missing (see pause-image.ts). */
  async #sandboxImage(signal: AbortSignal): Promise<{ reference: string; needsCommand: boolean }> {
    const reference = this.#opts.sandboxImage;
    // One build or pull at a time, checked again under the lock: pods started together share it.
    const found = (await this.#resolveImage(reference, signal)) ?? await this.#imageLock.run('sandbox-image', async () => {
      const again = await this.#resolveImage(reference, signal);
      if (again !== undefined) return again;
      const driver = this.engine.imageDrivers().find((d) => d.format !== 'external' && d.import !== undefined);
      if (this.#opts.catatonit !== '' && driver !== undefined) {
        await buildPauseImage(driver, reference, this.#opts.catatonit, signal);
        this.#log.info({ image: reference, from: this.#opts.catatonit }, 'built the pod sandbox image offline');
      } else {
        const puller = this.engine.imageDrivers().find((d) => d.format !== 'external' && d.pull !== undefined);
        if (puller?.pull === undefined) throw new IsulaError('IMAGE_NOT_FOUND', `pod sandbox image ${reference} is not present and no driver can pull it`);
        await puller.pull(reference, { signal });
      }
      const made = await this.#resolveImage(reference, signal);
      if (made === undefined) throw new IsulaError('IMAGE_NOT_FOUND', `pod sandbox image ${reference} is not present`);
      return made;
    });
    const { driver, ref } = found;
    const cfg = (await driver.inspect(ref, { signal })).config;
    return { reference, needsCommand: (cfg.entrypoint ?? []).length === 0 && (cfg.cmd ?? []).length === 0 };
  }

  async #resolveImage(reference: string, signal: AbortSignal) {
    for (const driver of this.engine.imageDrivers()) {
      if (driver.format === 'external') continue;
      const ref = await driver.resolve(reference, { signal });
      if (ref !== undefined) return { driver, ref };
    }
    return undefined;
  }
}

function sandboxState(r: ContainerRecord): 'SANDBOX_READY' | 'SANDBOX_NOTREADY' {
  return r.State.Status === 'running' || r.State.Status === 'paused' ? 'SANDBOX_READY' : 'SANDBOX_NOTREADY';
}

function containerState(r: ContainerRecord): 'CONTAINER_CREATED' | 'CONTAINER_RUNNING' | 'CONTAINER_EXITED' | 'CONTAINER_UNKNOWN' {
  switch (r.State.Status) {
    case 'created': return 'CONTAINER_CREATED';
    case 'running': case 'paused': case 'restarting': return 'CONTAINER_RUNNING';
    case 'exited': case 'dead': return 'CONTAINER_EXITED';
    default: return 'CONTAINER_UNKNOWN';
  }
}

function podIps(r: ContainerRecord): string[] {
  const out: string[] = [];
  for (const res of r.Network?.Results ?? []) for (const a of res.addresses) out.push(a.address.split('/')[0] ?? '');
  return out.filter((ip) => ip !== '');
}

function propagation(p: string): string {
  if (p === 'PROPAGATION_BIDIRECTIONAL') return 'rshared';
  if (p === 'PROPAGATION_HOST_TO_CONTAINER') return 'rslave';
  return 'rprivate';
}

/** "NET_ADMIN" and "CAP_NET_ADMIN" both name a capability; "ALL" stays. */
function capName(c: string): string {
  return c.toUpperCase() === 'ALL' ? 'ALL' : c.toUpperCase().startsWith('CAP_') ? c.toUpperCase() : `CAP_${c.toUpperCase()}`;
}

/**
 * The CRI's seccomp choice as a security option, with containerd 1.6's meaning (critest checks
 * it): nothing asked is unconfined; RuntimeDefault, `runtime/default` and `docker/default` are the
 * default profile; Localhost / `localhost/<absolute path>` a profile file; any other string is an
 * error, not a silent default.
 */
function seccompOpts(profile: SecurityProfile | null, legacyPath: string): string[] {
  if (profile !== null) {
    if (profile.profile_type === 'Unconfined') return ['seccomp=unconfined'];
    if (profile.profile_type === 'Localhost') {
      if (!path.isAbsolute(profile.localhost_ref)) throw invalid(`seccomp: the Localhost profile ${JSON.stringify(profile.localhost_ref)} must be an absolute path`);
      return [`seccomp=${profile.localhost_ref}`];
    }
    return [];
  }
  if (legacyPath === '' || legacyPath === 'unconfined') return ['seccomp=unconfined'];
  if (legacyPath === 'runtime/default' || legacyPath === 'docker/default') return [];
  if (legacyPath.startsWith('localhost/') && path.isAbsolute(legacyPath.slice('localhost/'.length))) return [`seccomp=${legacyPath.slice('localhost/'.length)}`];
  throw invalid(`seccomp_profile_path ${JSON.stringify(legacyPath)}: expected "unconfined", "runtime/default", "docker/default" or "localhost/<absolute path>"`);
}

function resources(r: LinuxContainerResources | null): HostConfig {
  if (r === null) return {};
  const hc: HostConfig = {};
  const n = (v: string | undefined) => int64(v);
  if (n(r.cpu_period) > 0) hc.CpuPeriod = n(r.cpu_period);
  if (n(r.cpu_quota) > 0) hc.CpuQuota = n(r.cpu_quota);
  if (n(r.cpu_shares) > 0) hc.CpuShares = n(r.cpu_shares);
  if (n(r.memory_limit_in_bytes) > 0) hc.Memory = n(r.memory_limit_in_bytes);
  if (n(r.memory_swap_limit_in_bytes) > 0) hc.MemorySwap = n(r.memory_swap_limit_in_bytes);
  if (n(r.oom_score_adj) !== 0) hc.OomScoreAdj = n(r.oom_score_adj);
  if (r.cpuset_cpus !== '') hc.CpusetCpus = r.cpuset_cpus;
  if (r.cpuset_mems !== '') hc.CpusetMems = r.cpuset_mems;
  return hc;
}

function linuxResources(hc: HostConfig): Req {
  return {
    cpu_period: String(hc.CpuPeriod ?? 0),
    cpu_quota: String(hc.CpuQuota ?? 0),
    cpu_shares: String(hc.CpuShares ?? 0),
    memory_limit_in_bytes: String(hc.Memory ?? 0),
    oom_score_adj: String(hc.OomScoreAdj ?? 0),
    cpuset_cpus: hc.CpusetCpus ?? '',
    cpuset_mems: hc.CpusetMems ?? '',
  };
}

/** Output bounded at `max` bytes; the rest is dropped (the kubelet's probes read little). */
class Collector {
  readonly #chunks: Buffer[] = [];
  #size = 0;
  readonly #max: number;
  constructor(max: number) { this.#max = max; }
  push(chunk: Buffer): void {
    if (this.#size >= this.#max) return;
    const part = chunk.subarray(0, this.#max - this.#size);
    this.#chunks.push(part);
    this.#size += part.length;
  }
  value(): Buffer { return Buffer.concat(this.#chunks); }
}

