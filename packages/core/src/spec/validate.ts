/**
 * The cheap checks of a create request's HostConfig, run before anything is
 * written: syntax of every option, Docker's value ranges, and the few host
 * facts a check needs (device paths, online CPUs), read synchronously.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { HostConfig } from '../container/docker-types.js';
import { normalizeCapability } from './capabilities.js';
import { parseDeviceCgroupRule, validateDeviceMapping } from './devices.js';
import { invalidConfig, notImplemented } from './invalid.js';
import { parseUserMounts } from './mounts.js';
import { validateResources } from './resources.js';
import { validateUlimit } from './ulimits.js';
import { parseNsChangeOpt } from './system-container.js';

const RESTART_POLICIES = ['', 'no', 'always', 'unless-stopped', 'on-failure'];

/** What `SecurityOpt` asks for. */
export interface SecurityOptions {
  noNewPrivileges: boolean;
  /** 'default', 'unconfined', or a profile (a path, or the JSON text `docker run` sends). */
  seccomp: { kind: 'default' } | { kind: 'unconfined' } | { kind: 'file'; path: string } | { kind: 'json'; text: string };
  /** `systempaths=unconfined`: no masked or read-only /proc and /sys paths. */
  unconfinedSystemPaths: boolean;
  /** Options accepted but without effect here (apparmor, label). */
  ignored: string[];
}

/**
 * Parses SecurityOpt entries, "key=value" or the old "key:value":
 * no-new-privileges[=true|false], seccomp=unconfined|PATH|JSON,
 * systempaths=unconfined, apparmor=…, label=… (the last two have no effect:
 * the host has neither AppArmor nor SELinux in use).
 */
export function parseSecurityOpts(opts: readonly string[]): SecurityOptions {
  const parsed: SecurityOptions = { noNewPrivileges: false, seccomp: { kind: 'default' }, unconfinedSystemPaths: false, ignored: [] };
  for (const opt of opts) {
    if (opt === 'no-new-privileges') {
      parsed.noNewPrivileges = true;
      continue;
    }
    const m = /^([a-z-]+)[=:](.*)$/s.exec(opt);
    const key = m?.[1];
    const value = m?.[2] ?? '';
    switch (key) {
      case 'no-new-privileges':
        if (value !== 'true' && value !== 'false') throw invalidConfig(`invalid --security-opt "${opt}": no-new-privileges takes true or false`, { securityOpt: opt });
        parsed.noNewPrivileges = value === 'true';
        break;
      case 'seccomp':
        if (value === 'unconfined') parsed.seccomp = { kind: 'unconfined' };
        else if (value.trimStart().startsWith('{')) parsed.seccomp = { kind: 'json', text: value };
        else if (value.startsWith('/')) parsed.seccomp = { kind: 'file', path: value };
        else throw invalidConfig(`invalid --security-opt "${opt}": seccomp takes unconfined, an absolute profile path or the profile's JSON`, { securityOpt: opt });
        break;
      case 'systempaths':
        if (value !== 'unconfined') throw invalidConfig(`invalid --security-opt "${opt}": systempaths takes unconfined`, { securityOpt: opt });
        parsed.unconfinedSystemPaths = true;
        break;
      case 'apparmor':
      case 'label':
        parsed.ignored.push(opt);
        break;
      default:
        throw invalidConfig(`invalid --security-opt "${opt}"`, { securityOpt: opt });
    }
  }
  return parsed;
}

/** A namespace mode: a new namespace, the host's, or another container's (not yet supported). */
export type NamespaceMode = 'private' | 'host' | 'none';

function namespaceMode(field: 'NetworkMode' | 'IpcMode' | 'PidMode' | 'UTSMode' | 'UsernsMode' | 'CgroupnsMode', value: string | undefined): NamespaceMode | 'cgroupns-private' {
  const v = value ?? '';
  if (v === 'host') return 'host';
  if (field === 'NetworkMode') {
    // The namespace itself (a network's, another container's) is the networking module's: here only the shape.
    if (v === 'none') return 'none';
    if (v.startsWith('container:') && v.length > 'container:'.length) return 'private';
    if (v === '' || /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/.test(v)) return 'private';
    throw invalidConfig(`invalid NetworkMode: "${v}"`, { field, value: v });
  }
  if (v.startsWith('container:')) throw notImplemented(`${field} "${v}": joining another container's namespace is not supported yet`);
  switch (field) {
    case 'IpcMode':
      if (v === '' || v === 'private' || v === 'shareable') return 'private';
      if (v === 'none') return 'none';
      break;
    case 'CgroupnsMode':
      if (v === '') return 'host'; // cgroup v1: Docker's default is the host's cgroup namespace.
      if (v === 'private') return 'cgroupns-private';
      break;
    case 'UsernsMode':
      if (v === '') return 'host';
      break;
    default:
      if (v === '') return 'private';
  }
  throw invalidConfig(`invalid ${field}: "${v}"`, { field, value: v });
}

export interface NamespaceModes {
  network: NamespaceMode;
  ipc: NamespaceMode;
  pid: NamespaceMode;
  uts: NamespaceMode;
  cgroup: 'host' | 'private';
}

export function namespaceModes(hc: HostConfig): NamespaceModes {
  namespaceMode('UsernsMode', hc.UsernsMode);
  return {
    network: namespaceMode('NetworkMode', hc.NetworkMode) as NamespaceMode,
    ipc: namespaceMode('IpcMode', hc.IpcMode) as NamespaceMode,
    pid: namespaceMode('PidMode', hc.PidMode) as NamespaceMode,
    uts: namespaceMode('UTSMode', hc.UTSMode) as NamespaceMode,
    cgroup: namespaceMode('CgroupnsMode', hc.CgroupnsMode) === 'cgroupns-private' ? 'private' : 'host',
  };
}

const IPC_SYSCTLS = new Set(['kernel.msgmax', 'kernel.msgmnb', 'kernel.msgmni', 'kernel.sem', 'kernel.shmall', 'kernel.shmmax', 'kernel.shmmni', 'kernel.shm_rmid_forced']);

/** runc's rule: a sysctl must belong to a namespace the container owns. */
export function validateSysctls(sysctls: Record<string, string>, modes: NamespaceModes): void {
  for (const key of Object.keys(sysctls)) {
    if (IPC_SYSCTLS.has(key) || key.startsWith('fs.mqueue.')) {
      if (modes.ipc === 'host') throw invalidConfig(`sysctl "${key}" is not allowed with the host's IPC namespace`, { sysctl: key });
    } else if (key.startsWith('net.')) {
      if (modes.network === 'host') throw invalidConfig(`sysctl "${key}" is not allowed in the host's network namespace`, { sysctl: key });
    } else if (key === 'kernel.domainname' || key === 'kernel.hostname') {
      if (modes.uts === 'host') throw invalidConfig(`sysctl "${key}" is not allowed with the host's UTS namespace`, { sysctl: key });
    } else {
      throw invalidConfig(`sysctl "${key}" is not in a separate kernel namespace`, { sysctl: key });
    }
  }
}

/**
 * Everything about a HostConfig that can be checked without the image:
 * resources, ulimits, mounts, capabilities, devices, security options,
 * namespace modes, sysctls and the restart policy. Throws IsulaError
 * CONTAINER_CONFIG_INVALID (NOT_IMPLEMENTED for valid Docker options isula
 * lacks, such as volumes); writes nothing.
 */
export function validateHostConfig(hc: HostConfig): void {
  validateResources(hc);

  const policy = hc.RestartPolicy ?? {};
  const name = policy.Name ?? '';
  if (!RESTART_POLICIES.includes(name)) throw invalidConfig(`invalid restart policy '${name}'`, { field: 'RestartPolicy', value: name });
  const retries = policy.MaximumRetryCount ?? 0;
  if (!Number.isSafeInteger(retries) || retries < 0) throw invalidConfig('maximum retry count cannot be negative', { field: 'RestartPolicy', value: retries });
  if (retries > 0 && name !== 'on-failure') throw invalidConfig(`maximum retry count cannot be used with restart policy '${name}'`, { field: 'RestartPolicy', value: name });
  if (hc.AutoRemove === true && name !== '' && name !== 'no') throw invalidConfig("conflicting options: cannot specify both --restart and --rm", { field: 'AutoRemove' });

  for (const u of hc.Ulimits ?? []) validateUlimit(u);
  for (const c of [...(hc.CapAdd ?? []), ...(hc.CapDrop ?? [])]) normalizeCapability(c);
  parseUserMounts(hc);
  for (const d of hc.Devices ?? []) validateDeviceMapping(d, (p) => fs.statSync(p));
  for (const rule of hc.DeviceCgroupRules ?? []) parseDeviceCgroupRule(rule);
  parseSecurityOpts(hc.SecurityOpt ?? []);

  const shm = hc.ShmSize ?? 0;
  if (!Number.isSafeInteger(shm) || shm < 0) throw invalidConfig('SHM size can not be less than 0', { field: 'ShmSize', value: shm });
  const oom = hc.OomScoreAdj ?? 0;
  if (!Number.isSafeInteger(oom) || oom < -1000 || oom > 1000) throw invalidConfig(`Invalid value ${oom}, range for oom score adj is [-1000, 1000]`, { field: 'OomScoreAdj', value: oom });

  validateSysctls(hc.Sysctls ?? {}, namespaceModes(hc));
  parseNsChangeOpt(hc);
  const logPath = hc.LogPath;
  if (logPath !== undefined && logPath !== '') {
    if (typeof logPath !== 'string' || !logPath.startsWith('/') || logPath.includes('\0') || path.posix.normalize(logPath) !== logPath || logPath.endsWith('/')) {
      throw invalidConfig(`invalid LogPath ${JSON.stringify(logPath)}: must be a normalized absolute file path`, { field: 'LogPath', value: logPath });
    }
  }
  for (const p of [...(hc.MaskedPaths ?? []), ...(hc.ReadonlyPaths ?? [])]) {
    if (!p.startsWith('/')) throw invalidConfig(`invalid masked or read-only path "${p}": must be absolute`, { path: p });
  }
}
