/**
 * buildSpec: a container's OCI config.json from Docker's create request and
 * the image, with the defaults and semantics of `docker run`.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Logger } from 'pino';
import type { ContainerConfig, HostConfig, Ulimit } from '../container/docker-types.js';
import type { IdMap, ImageRuntimeConfig } from '../drivers/image.js';
import type { OciSpec } from '../drivers/runtime.js';
import { IsulaError } from '../errors.js';
import { computeCapabilities, isCapabilityAvailable } from './capabilities.js';
import {
  DEFAULT_INIT_BINARY,
  DEFAULT_MASKED_PATHS,
  DEFAULT_READONLY_PATHS,
  DEFAULT_SECCOMP_PROFILE,
  DEFAULT_SHM_SIZE_BYTES,
  INIT_PATH_IN_CONTAINER,
  defaultDeviceRules,
  defaultMounts,
} from './defaults.js';
import { devicesFromMapping, hostDevices, parseDeviceCgroupRule } from './devices.js';
import { CONTAINER_FILES } from './files.js';
import { daemonOomScoreAdj, daemonRlimits } from './host.js';
import { invalidConfig } from './invalid.js';
import { mergeMounts, parseUserMounts, rootfsPropagationFor, toOciMount } from './mounts.js';
import type { OciConfig, OciDevice, OciDeviceCgroup, OciMount, OciNamespace, OciSeccomp } from './oci-types.js';
import { OCI_VERSION } from './oci-types.js';
import { resolveArgs, resolveCwd, resolveEnv } from './process-args.js';
import { resourcesFromHostConfig } from './resources.js';
import { mkdirInRoot } from './rootfs-path.js';
import { loadSeccompProfile, parseSeccompProfile, seccompFromProfile } from './seccomp.js';
import { isCgroupV2, parseNsChangeOpt, readonlyProcSys, SYSTEM_CONTAINER_ENV, systemContainerMounts } from './system-container.js';
import { resolveUserInRootfs } from './user.js';
import { rlimitsFromUlimits } from './ulimits.js';
import { namespaceModes, parseSecurityOpts, validateHostConfig } from './validate.js';
import type { NamespaceModes, SecurityOptions } from './validate.js';

export interface SpecInput {
  id: string;
  /** Volumes resolved to host directories, by destination (named, anonymous, image VOLUMEs). */
  volumes?: { destination: string; source: string; readOnly: boolean }[];
  /** Docker's Config from the create request. */
  config: ContainerConfig;
  hostConfig: HostConfig;
  /** Image defaults (env, cmd, entrypoint, user, workingDir ...). */
  image: ImageRuntimeConfig;
  /** Absolute path of the mounted root filesystem. */
  rootfs: string;
  /** Holds `hosts`, `hostname`, `resolv.conf` (see writeContainerFiles), bind-mounted into the container. */
  containerDir: string;
  /** Absolute cgroups path, e.g. "/isulad/<id>" (PLATFORM §2: never relative). */
  cgroupsPath: string;
  /** The daemon's own limits; read from /proc/self when absent. */
  limits?: { nofileHard?: number; oomScoreAdjMin?: number };
  /** A Docker-format seccomp profile; default /usr/share/containers/seccomp.json. */
  seccompProfile?: string;
  /** The init for `--init` (HostConfig.Init), mounted at /sbin/docker-init; default /usr/bin/catatonit. */
  initBinary?: string;
  /** The daemon's `default-ulimits`; HostConfig.Ulimits override them by name. */
  defaultUlimits?: Ulimit[];
  /**
   * Networking's seam: a network namespace to join (e.g. /var/run/netns/X
   * made by CNI). Without it a container gets a new, empty one; with
   * NetworkMode "host" it gets none.
   */
  networkNamespacePath?: string;
  /** A user namespace: container ids 0..size-1 are these host ids (`userns-remap`, `--user-remap`). */
  idMap?: IdMap;
  /** Debug details (clamped limits). */
  log?: Logger;
}

export interface BuiltSpec {
  spec: OciSpec;
  /** What Docker would warn about, for the create response's `Warnings`. */
  warnings: string[];
}

function containerHostname(input: SpecInput, modes: NamespaceModes): string {
  if (modes.uts === 'host') return os.hostname();
  const configured = input.config.Hostname ?? '';
  if (configured !== '') return configured;
  return modes.network === 'host' ? os.hostname() : input.id.slice(0, 12);
}

function namespaces(modes: NamespaceModes, netnsPath: string | undefined, idMap: IdMap | undefined, system: boolean): OciNamespace[] {
  const list: OciNamespace[] = [{ type: 'mount' }];
  if (idMap !== undefined) list.push({ type: 'user' });
  if (modes.network !== 'host') list.push(netnsPath === undefined ? { type: 'network' } : { type: 'network', path: netnsPath });
  if (modes.uts !== 'host') list.push({ type: 'uts' });
  if (modes.pid !== 'host') list.push({ type: 'pid' });
  if (modes.ipc !== 'host') list.push({ type: 'ipc' });
  if (modes.cgroup === 'private' || (system && isCgroupV2())) list.push({ type: 'cgroup' });
  return list;
}

function systemMounts(input: SpecInput, hc: HostConfig, modes: NamespaceModes): OciMount[] {
  const privileged = hc.Privileged === true;
  const mounts: OciMount[] = [];
  for (const m of defaultMounts(hc.ShmSize === undefined || hc.ShmSize === 0 ? DEFAULT_SHM_SIZE_BYTES : hc.ShmSize)) {
    if (m.destination === '/dev/shm') {
      if (modes.ipc === 'none') continue;
      if (modes.ipc === 'host') {
        mounts.push({ destination: '/dev/shm', type: 'bind', source: '/dev/shm', options: ['rbind', 'rprivate'] });
        continue;
      }
    }
    // A privileged container may write /sys and the cgroup tree (moby `WithMounts`).
    if (privileged && (m.type === 'sysfs' || m.type === 'cgroup')) m.options = (m.options ?? []).filter((o) => o !== 'ro');
    // An init (systemd) manages its own subtree; on v2 the cgroup namespace is private, so the tree it sees is its own.
    if (hc.SystemContainer === true && m.type === 'cgroup' && isCgroupV2()) m.options = (m.options ?? []).filter((o) => o !== 'ro');
    // In a user namespace, sysfs mounts only when the network namespace is the user namespace's own;
    // one made beforehand (CNI) is the host's: bind the host's /sys read-only, as moby does for --net=host.
    if (m.type === 'sysfs' && input.idMap !== undefined && (modes.network === 'host' || input.networkNamespacePath !== undefined)) {
      mounts.push({ destination: '/sys', type: 'bind', source: '/sys', options: ['rbind', 'nosuid', 'noexec', 'nodev', 'ro'] });
      continue;
    }
    mounts.push(m);
  }
  return mounts;
}

function chooseSeccomp(input: SpecInput, security: SecurityOptions, caps: readonly string[], warnings: string[]): OciSeccomp | undefined {
  if (input.hostConfig.Privileged === true || security.seccomp.kind === 'unconfined') return undefined;
  const choice = security.seccomp;
  if (choice.kind === 'json') {
    try {
      return seccompFromProfile(parseSeccompProfile(JSON.parse(choice.text)), caps);
    } catch (err) {
      throw invalidConfig(`invalid seccomp profile in SecurityOpt: ${(err as Error).message}`, { securityOpt: 'seccomp' });
    }
  }
  if (choice.kind === 'file') {
    const profile = loadSeccompProfile(choice.path);
    if (profile === undefined) throw invalidConfig(`seccomp profile ${choice.path} does not exist`, { securityOpt: `seccomp=${choice.path}` });
    return seccompFromProfile(profile, caps);
  }
  const file = input.seccompProfile ?? DEFAULT_SECCOMP_PROFILE;
  const profile = loadSeccompProfile(file);
  if (profile === undefined) {
    warnings.push(`The default seccomp profile ${file} is missing: the container runs without a seccomp filter.`);
    return undefined;
  }
  return seccompFromProfile(profile, caps);
}

/** A system container's init reads `container=` (systemd's detect-virt); the user's own value wins. */
function systemEnv(hc: HostConfig, env: string[]): string[] {
  if (hc.SystemContainer !== true || env.some((e) => e.startsWith('container='))) return env;
  return [...env, SYSTEM_CONTAINER_ENV];
}

async function createBindSources(paths: readonly string[]): Promise<void> {
  for (const p of paths) {
    try {
      await fs.stat(p);
    } catch {
      // Docker creates a missing `-v` source directory (not for --mount).
      await fs.mkdir(p, { recursive: true, mode: 0o755 });
    }
  }
}

/**
 * Builds the container's OCI spec. Validates the HostConfig first
 * (`validateHostConfig`), reads the rootfs' /etc/passwd and /etc/group
 * (inside the rootfs only), creates a missing working directory in the
 * rootfs and missing `-v` bind sources on the host as Docker does, and
 * writes nothing else. Throws IsulaError CONTAINER_CONFIG_INVALID for bad
 * values, NOT_IMPLEMENTED for Docker features isula lacks (volumes,
 * container:<id> namespaces, user-defined networks).
 */
export async function buildSpec(input: SpecInput): Promise<BuiltSpec> {
  const { config, hostConfig: hc, image } = input;
  const warnings: string[] = [];
  validateHostConfig(hc);
  const modes = namespaceModes(hc);
  const security = parseSecurityOpts(hc.SecurityOpt ?? []);
  const privileged = hc.Privileged === true;

  const hostname = containerHostname(input, modes);
  let args = resolveArgs(config, image);
  const user = await resolveUserInRootfs(input.rootfs, config.User || image.user || '', hc.GroupAdd ?? []);
  const cwd = resolveCwd(config.WorkingDir, image.workingDir);
  if (cwd !== '/') {
    try {
      await mkdirInRoot(input.rootfs, cwd, user);
    } catch (err) {
      throw invalidConfig(`cannot create the working directory ${cwd}: ${(err as Error).message}`, { workingDir: cwd });
    }
  }
  // A capability the daemon lacks cannot be granted (runc would fail to start): drop it, say so.
  const capabilities = computeCapabilities(hc.CapAdd ?? [], hc.CapDrop ?? [], privileged).filter((c) => {
    if (isCapabilityAvailable(c)) return true;
    warnings.push(`Capability ${c} is not available to the daemon: the container runs without it.`);
    return false;
  });

  // Limits: never above the daemon's own (PLATFORM §2, §10).
  const daemonLimits = daemonRlimits();
  const nofile = daemonLimits.get('nofile');
  if (input.limits?.nofileHard !== undefined) daemonLimits.set('nofile', { soft: nofile?.soft ?? input.limits.nofileHard, hard: input.limits.nofileHard });
  const { rlimits, clamped } = rlimitsFromUlimits([...(input.defaultUlimits ?? []), ...(hc.Ulimits ?? [])], daemonLimits);
  for (const line of clamped) {
    warnings.push(line);
    input.log?.debug({ container: input.id, detail: line }, 'ulimit clamped');
  }
  let oomScoreAdj: number | undefined;
  if (hc.OomScoreAdj !== undefined) {
    const min = input.limits?.oomScoreAdjMin ?? daemonOomScoreAdj();
    oomScoreAdj = Math.max(hc.OomScoreAdj, min);
    if (oomScoreAdj !== hc.OomScoreAdj) input.log?.debug({ container: input.id, requested: hc.OomScoreAdj, applied: oomScoreAdj }, "oom_score_adj raised to the daemon's own");
  }

  // Mounts: defaults, then user, system and init mounts parents-first.
  // Volumes are binds of the directories the container domain resolved (input.volumes, by destination).
  const resolved = new Map((input.volumes ?? []).map((v) => [path.normalize(v.destination), v]));
  const userMounts = parseUserMounts(hc).map((m) => {
    if (m.kind !== 'volume') return m;
    const v = resolved.get(m.destination);
    if (v === undefined) throw new IsulaError('INTERNAL', `volume at ${m.destination} was not resolved to a directory`);
    return { ...m, kind: 'bind' as const, source: v.source, readOnly: v.readOnly || m.readOnly };
  });
  await createBindSources(userMounts.filter((m) => m.createSource).map((m) => m.source));
  const extra = userMounts.map(toOciMount);
  // Anonymous volumes of the image's VOLUME and Config.Volumes (`-v /path`) not mounted otherwise.
  for (const v of resolved.values()) {
    if (extra.some((m) => m.destination === path.normalize(v.destination))) continue;
    extra.push({ destination: path.normalize(v.destination), type: 'bind', source: v.source, options: ['rbind', ...(v.readOnly ? ['ro'] : []), 'rprivate'] });
  }
  const taken = new Set(extra.map((m) => m.destination));
  for (const [file, destination] of Object.entries(CONTAINER_FILES)) {
    if (!taken.has(destination)) extra.push({ destination, type: 'bind', source: path.join(input.containerDir, file), options: ['rbind', 'rprivate'] });
  }
  if (hc.SystemContainer === true) extra.push(...systemContainerMounts(taken, input.cgroupsPath));
  if (hc.Init === true) {
    const initBinary = input.initBinary ?? DEFAULT_INIT_BINARY;
    try {
      await fs.access(initBinary, fs.constants.X_OK);
    } catch {
      throw new IsulaError('RUNTIME_UNAVAILABLE', `--init needs ${initBinary}, which is missing or not executable`);
    }
    extra.push({ destination: INIT_PATH_IN_CONTAINER, type: 'bind', source: initBinary, options: ['bind', 'ro'] });
    args = [INIT_PATH_IN_CONTAINER, '--', ...args];
  }
  const mounts = mergeMounts(systemMounts(input, hc, modes), extra);
  for (const volume of new Set([...(image.volumes ?? []), ...Object.keys(config.Volumes ?? {})])) {
    if (!taken.has(path.normalize(volume))) warnings.push(`Volume ${volume} has no volume: its data stays in the container's writable layer.`);
  }

  // Devices and the device cgroup.
  const devices: OciDevice[] = privileged ? await hostDevices() : [];
  const deviceRules: OciDeviceCgroup[] = privileged ? [{ allow: true, access: 'rwm' }] : defaultDeviceRules();
  for (const mapping of hc.Devices ?? []) {
    const mapped = await devicesFromMapping(mapping);
    for (const dev of mapped.devices) {
      const i = devices.findIndex((d) => d.path === dev.path);
      if (i >= 0) devices[i] = dev;
      else devices.push(dev);
    }
    if (!privileged) deviceRules.push(...mapped.rules);
  }
  if (!privileged) deviceRules.push(...(hc.DeviceCgroupRules ?? []).map(parseDeviceCgroupRule));

  const resources = resourcesFromHostConfig(hc, warnings);
  resources.devices = deviceRules;

  const spec: OciConfig = {
    ociVersion: OCI_VERSION,
    root: { path: input.rootfs, readonly: hc.ReadonlyRootfs === true },
    process: {
      terminal: config.Tty === true,
      user,
      args,
      env: systemEnv(hc, resolveEnv({ imageEnv: image.env, configEnv: config.Env, hostname, tty: config.Tty === true })),
      cwd,
      capabilities: { bounding: capabilities, effective: [...capabilities], permitted: [...capabilities] },
    },
    mounts,
    linux: {
      namespaces: namespaces(modes, modes.network === 'host' ? undefined : input.networkNamespacePath, input.idMap, hc.SystemContainer === true),
      devices,
      resources,
      cgroupsPath: input.cgroupsPath,
    },
  };
  if (input.idMap !== undefined) {
    spec.linux.uidMappings = [{ containerID: 0, hostID: input.idMap.uid, size: input.idMap.size }];
    spec.linux.gidMappings = [{ containerID: 0, hostID: input.idMap.gid, size: input.idMap.size }];
  }
  if (rlimits.length > 0) spec.process.rlimits = rlimits;
  if (security.noNewPrivileges) spec.process.noNewPrivileges = true;
  if (oomScoreAdj !== undefined) spec.process.oomScoreAdj = oomScoreAdj;
  if (modes.uts !== 'host') {
    spec.hostname = hostname;
    if (config.Domainname !== undefined && config.Domainname !== '') spec.domainname = config.Domainname;
  }
  if (!privileged && !security.unconfinedSystemPaths) {
    spec.linux.maskedPaths = [...(hc.MaskedPaths ?? DEFAULT_MASKED_PATHS)];
    const nsChange = parseNsChangeOpt(hc);
    spec.linux.readonlyPaths = (hc.ReadonlyPaths ?? DEFAULT_READONLY_PATHS).flatMap((p) => (p === '/proc/sys' ? readonlyProcSys(nsChange) : [p]));
  }
  const sysctls = hc.Sysctls ?? {};
  if (Object.keys(sysctls).length > 0) spec.linux.sysctl = { ...sysctls };
  const seccomp = chooseSeccomp(input, security, capabilities, warnings);
  if (seccomp !== undefined) spec.linux.seccomp = seccomp;
  const propagation = rootfsPropagationFor(userMounts);
  if (propagation !== undefined) spec.linux.rootfsPropagation = propagation;

  return { spec, warnings };
}
