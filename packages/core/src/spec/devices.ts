/**
 * `--device` (HostConfig.Devices), `--device-cgroup-rule` and a privileged
 * container's host devices, as OCI `linux.devices` plus device cgroup rules
 * (moby `oci.DevicesFromPath`, runc `devices.HostDevices`).
 */
import fs from 'node:fs/promises';
import type { BigIntStats } from 'node:fs';
import path from 'node:path';
import type { DeviceMapping } from '../container/docker-types.js';
import type { OciDevice, OciDeviceCgroup } from './oci-types.js';
import { invalidConfig } from './invalid.js';

/** Linux `major()`/`minor()` of a stat's rdev (the glibc encoding). */
export function deviceNumbers(stat: BigIntStats): { major: number; minor: number } {
  const rdev = stat.rdev;
  const major = ((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn);
  const minor = (rdev & 0xffn) | ((rdev >> 12n) & ~0xffn);
  return { major: Number(major), minor: Number(minor) };
}

function toOciDevice(stat: BigIntStats, pathInContainer: string): OciDevice | undefined {
  const type = stat.isCharacterDevice() ? 'c' : stat.isBlockDevice() ? 'b' : undefined;
  if (type === undefined) return undefined;
  return { path: pathInContainer, type, ...deviceNumbers(stat), fileMode: Number(stat.mode & 0o777n), uid: Number(stat.uid), gid: Number(stat.gid) };
}

/** Docker's device mode check: a non-empty set of r, w, m. */
export function isValidDeviceMode(mode: string): boolean {
  return /^[rwm]{1,3}$/.test(mode) && new Set(mode).size === mode.length;
}

/** Throws unless `d` names an absolute host path that exists, with a valid container path and mode. */
export function validateDeviceMapping(d: DeviceMapping, statSync: (p: string) => unknown): void {
  const host = d.PathOnHost ?? '';
  const text = `${host}:${d.PathInContainer ?? ''}:${d.CgroupPermissions ?? ''}`;
  if (!path.isAbsolute(host)) throw invalidConfig(`invalid device "${text}": ${host === '' ? 'PathOnHost is empty' : `${host} is not an absolute path`}`);
  const inContainer = d.PathInContainer ?? '';
  if (inContainer !== '' && !path.isAbsolute(inContainer)) throw invalidConfig(`invalid device "${text}": ${inContainer} is not an absolute path`);
  const mode = d.CgroupPermissions ?? '';
  if (mode !== '' && !isValidDeviceMode(mode)) throw invalidConfig(`invalid device "${text}": invalid device mode: ${mode}`);
  try {
    statSync(host);
  } catch {
    throw invalidConfig(`error gathering device information while adding custom device "${host}": no such file or directory`, { device: host });
  }
}

/**
 * One `--device` mapping: a device node, or a directory whose devices are
 * all mapped under PathInContainer (Docker allows both).
 */
export async function devicesFromMapping(d: DeviceMapping): Promise<{ devices: OciDevice[]; rules: OciDeviceCgroup[] }> {
  const host = d.PathOnHost ?? '';
  const inContainer = d.PathInContainer === undefined || d.PathInContainer === '' ? host : d.PathInContainer;
  const access = d.CgroupPermissions === undefined || d.CgroupPermissions === '' ? 'rwm' : d.CgroupPermissions;
  let stat: BigIntStats;
  try {
    stat = await fs.stat(host, { bigint: true });
  } catch {
    throw invalidConfig(`error gathering device information while adding custom device "${host}": no such file or directory`, { device: host });
  }
  const devices: OciDevice[] = [];
  if (stat.isDirectory()) {
    for (const found of await walkDevices(host)) {
      const dev = toOciDevice(found.stat, path.join(inContainer, path.relative(host, found.path)));
      if (dev !== undefined) devices.push(dev);
    }
  } else {
    const dev = toOciDevice(stat, inContainer);
    if (dev === undefined) throw invalidConfig(`error gathering device information while adding custom device "${host}": not a device node`, { device: host });
    devices.push(dev);
  }
  const rules = devices.map((dev): OciDeviceCgroup => ({ allow: true, type: dev.type, major: dev.major, minor: dev.minor, access }));
  return { devices, rules };
}

/** Directories runc skips when listing host devices. */
const SKIPPED_DEV_DIRS = new Set(['pts', 'shm', 'fd', 'mqueue', '.lxc', '.lxd-mounts', '.udev']);

async function walkDevices(dir: string): Promise<Array<{ path: string; stat: BigIntStats }>> {
  const found: Array<{ path: string; stat: BigIntStats }> = [];
  let entries;
  try {
    entries = await fs.readdir(dir, { withFileTypes: true });
  } catch {
    return found;
  }
  for (const entry of entries) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) {
      if (!SKIPPED_DEV_DIRS.has(entry.name)) found.push(...(await walkDevices(full)));
    } else if ((entry.isCharacterDevice() || entry.isBlockDevice()) && entry.name !== 'console') {
      try {
        found.push({ path: full, stat: await fs.lstat(full, { bigint: true }) });
      } catch {
        // Vanished while listing: not ours to report.
      }
    }
  }
  return found;
}

/** Every device node under the host's /dev, at the same path (a privileged container's devices). */
export async function hostDevices(devRoot = '/dev'): Promise<OciDevice[]> {
  const devices: OciDevice[] = [];
  for (const found of await walkDevices(devRoot)) {
    const dev = toOciDevice(found.stat, path.join('/dev', path.relative(devRoot, found.path)));
    if (dev !== undefined) devices.push(dev);
  }
  return devices;
}

/** Parses a `--device-cgroup-rule` ("c 1:3 mr", "a *:* rwm"). */
export function parseDeviceCgroupRule(rule: string): OciDeviceCgroup {
  const m = /^([acb]) ([0-9]+|\*):([0-9]+|\*) ([rwm]{1,3})$/.exec(rule);
  if (m === null) throw invalidConfig(`invalid device cgroup rule "${rule}": expected "TYPE MAJOR:MINOR ACCESS", e.g. "c 1:3 rwm"`);
  const parsed: OciDeviceCgroup = { allow: true, type: m[1] as 'a' | 'c' | 'b', access: m[4] as string };
  if (m[2] !== '*') parsed.major = Number(m[2]);
  if (m[3] !== '*') parsed.minor = Number(m[3]);
  return parsed;
}
