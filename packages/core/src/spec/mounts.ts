/**
 * User mounts (`-v` Binds, `--mount`, `--tmpfs`) as OCI mounts, with
 * Docker's syntax, defaults and ordering (moby `volume/mounts` linux parser
 * and `WithMounts`). Volumes (named or anonymous) parse here and are
 * resolved to their directories by the container domain (SpecInput.volumes).
 */
import fs from 'node:fs';
import path from 'node:path';
import type { HostConfig, MountSpec } from '../container/docker-types.js';
import type { OciMount } from './oci-types.js';
import { IsulaError } from '../errors.js';
import { invalidConfig } from './invalid.js';

const PROPAGATION_MODES = ['private', 'rprivate', 'shared', 'rshared', 'slave', 'rslave'];
const CONSISTENCY_MODES = ['consistent', 'cached', 'delegated'];
const DEFAULT_PROPAGATION = 'rprivate';

/** A user mount before it becomes an OCI mount. */
export interface ParsedMount {
  /** `volume`: a named (source = the name) or anonymous (source '') volume, resolved by the container domain. */
  kind: 'bind' | 'tmpfs' | 'volume';
  source: string;
  destination: string;
  readOnly: boolean;
  propagation: string;
  /** Binds: `bind` instead of `rbind`. */
  nonRecursive: boolean;
  /** Binds from `-v`: Docker creates a missing source directory. */
  createSource: boolean;
  /** tmpfs: comma-separated data ("size=64m,mode=1777"). */
  data: string;
}

function checkDestination(destination: string, spec: string, type: string): void {
  if (!path.isAbsolute(destination)) throw invalidConfig(`invalid mount config for type "${type}": invalid mount path: '${destination}' mount path must be absolute`, { mount: spec });
  if (path.normalize(destination) === '/') throw invalidConfig(`invalid specification: destination can't be '/' in '${spec}'`, { mount: spec });
}

function parseBindMode(mode: string, spec: string): { readOnly: boolean; propagation: string } {
  let readOnly = false;
  let propagation = DEFAULT_PROPAGATION;
  const seen = { rw: 0, propagation: 0, label: 0, consistency: 0 };
  for (const opt of mode.split(',')) {
    if (opt === 'ro' || opt === 'rw') {
      readOnly = opt === 'ro';
      seen.rw++;
    } else if (PROPAGATION_MODES.includes(opt)) {
      propagation = opt;
      seen.propagation++;
    } else if (opt === 'z' || opt === 'Z') {
      seen.label++; // SELinux relabelling: accepted, nothing to do without SELinux.
    } else if (CONSISTENCY_MODES.includes(opt)) {
      seen.consistency++; // macOS-only; Docker accepts and ignores it on Linux.
    } else {
      throw invalidConfig(`invalid mode: ${mode} in '${spec}'`, { mount: spec });
    }
  }
  if (Object.values(seen).some((n) => n > 1)) throw invalidConfig(`invalid mode: ${mode} in '${spec}'`, { mount: spec });
  return { readOnly, propagation };
}


/** Parses one `-v` entry, "HOST:CONTAINER[:MODE]". */
export function parseBind(spec: string): ParsedMount {
  const parts = spec.split(':');
  if (parts.length === 1) {
    checkDestination(spec, spec, 'volume');
    return { kind: 'volume', source: '', destination: path.normalize(spec), readOnly: false, propagation: DEFAULT_PROPAGATION, nonRecursive: false, createSource: false, data: '' };
  }
  if (parts.length > 3 || parts.some((p) => p === '')) throw invalidConfig(`invalid volume specification: '${spec}'`, { mount: spec });
  const [source, destination, mode] = parts as [string, string, string | undefined];
  if (parts.length === 2 && /^(ro|rw)$/.test(destination)) throw invalidConfig(`invalid volume specification: '${spec}'`, { mount: spec });
  if (!path.isAbsolute(source)) {
    if (!/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/.test(source)) throw invalidConfig(`invalid volume name "${source}" in '${spec}': only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed`, { mount: spec });
    checkDestination(destination, spec, 'volume');
    const ro = mode !== undefined && mode.split(',').includes('ro');
    return { kind: 'volume', source, destination: path.normalize(destination), readOnly: ro, propagation: DEFAULT_PROPAGATION, nonRecursive: false, createSource: false, data: '' };
  }
  checkDestination(destination, spec, 'bind');
  const { readOnly, propagation } = mode === undefined ? { readOnly: false, propagation: DEFAULT_PROPAGATION } : parseBindMode(mode, spec);
  return { kind: 'bind', source: path.normalize(source), destination: path.normalize(destination), readOnly, propagation, nonRecursive: false, createSource: true, data: '' };
}

/**
 * Docker's `ConvertTmpfsOptions`: the size with the largest unit that
 * divides it, the mode in octal.
 */
export function tmpfsData(opts: MountSpec['TmpfsOptions'], readOnly: boolean): string {
  const raw: string[] = [];
  if (readOnly) raw.push('ro');
  if (opts?.Mode !== undefined && opts.Mode !== 0) raw.push(`mode=${opts.Mode.toString(8)}`);
  if (opts?.SizeBytes !== undefined && opts.SizeBytes !== 0) {
    let size = opts.SizeBytes;
    let suffix = '';
    for (const [s, div] of [['g', 2 ** 30], ['m', 2 ** 20], ['k', 2 ** 10]] as const) {
      if (size % div === 0) {
        size /= div;
        suffix = s;
        break;
      }
    }
    raw.push(`size=${size}${suffix}`);
  }
  return raw.join(',');
}

/** Parses one `--mount` (Docker's Mount object). */
export function parseMountSpec(m: MountSpec): ParsedMount {
  const spec = `type=${m.Type ?? ''},source=${m.Source ?? ''},target=${m.Target ?? ''}`;
  const destination = m.Target ?? '';
  if (destination === '') throw invalidConfig(`invalid mount config: Target must not be empty in '${spec}'`, { mount: spec });
  switch (m.Type) {
    case 'bind': {
      checkDestination(destination, spec, 'bind');
      const source = m.Source ?? '';
      if (!path.isAbsolute(source)) throw invalidConfig(`invalid mount config for type "bind": invalid mount path: '${source}' mount path must be absolute`, { mount: spec });
      if (!fs.existsSync(source)) throw invalidConfig(`invalid mount config for type "bind": bind source path does not exist: ${source}`, { mount: spec });
      const propagation = m.BindOptions?.Propagation ?? '';
      if (propagation !== '' && !PROPAGATION_MODES.includes(propagation)) throw invalidConfig(`invalid mount config for type "bind": invalid propagation mode "${propagation}"`, { mount: spec });
      return {
        kind: 'bind',
        source: path.normalize(source),
        destination: path.normalize(destination),
        readOnly: m.ReadOnly === true,
        propagation: propagation === '' ? DEFAULT_PROPAGATION : propagation,
        nonRecursive: m.BindOptions?.NonRecursive === true,
        createSource: false,
        data: '',
      };
    }
    case 'tmpfs':
      checkDestination(destination, spec, 'tmpfs');
      if ((m.Source ?? '') !== '') throw invalidConfig(`invalid mount config for type "tmpfs": Source must not be specified in '${spec}'`, { mount: spec });
      return { kind: 'tmpfs', source: 'tmpfs', destination: path.normalize(destination), readOnly: m.ReadOnly === true, propagation: DEFAULT_PROPAGATION, nonRecursive: false, createSource: false, data: tmpfsData(m.TmpfsOptions, m.ReadOnly === true) };
    case 'volume': {
      checkDestination(destination, spec, 'volume');
      const source = m.Source ?? '';
      if (source !== '' && !/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/.test(source)) throw invalidConfig(`invalid mount config for type "volume": invalid volume name "${source}"`, { mount: spec });
      return { kind: 'volume', source, destination: path.normalize(destination), readOnly: m.ReadOnly === true, propagation: DEFAULT_PROPAGATION, nonRecursive: false, createSource: false, data: '' };
    }
    default:
      throw invalidConfig(`invalid mount config: mount type unknown: "${m.Type ?? ''}"`, { mount: spec });
  }
}

/** Option flags that cancel each other: the key is the group, the later option wins. */
const FLAG_GROUPS: Readonly<Record<string, string>> = Object.freeze({
  ro: 'ro', rw: 'ro',
  exec: 'exec', noexec: 'exec',
  suid: 'suid', nosuid: 'suid',
  dev: 'dev', nodev: 'dev',
  sync: 'sync', async: 'sync',
  dirsync: 'dirsync',
  atime: 'atime', noatime: 'atime',
  diratime: 'diratime', nodiratime: 'diratime',
  relatime: 'relatime', norelatime: 'relatime',
  strictatime: 'strictatime', nostrictatime: 'strictatime',
  mand: 'mand', nomand: 'mand',
  private: 'propagation', rprivate: 'propagation', shared: 'propagation', rshared: 'propagation',
  slave: 'propagation', rslave: 'propagation', unbindable: 'propagation', runbindable: 'propagation',
});
const TMPFS_DATA_KEYS = new Set(['size', 'mode', 'uid', 'gid', 'nr_inodes', 'nr_blocks', 'mpol']);

/** Docker's `MergeTmpfsOptions`: later options win, one per flag group or data key. */
export function mergeTmpfsOptions(options: readonly string[], spec = options.join(',')): string[] {
  const seen = new Set<string>();
  const merged: string[] = [];
  for (let i = options.length - 1; i >= 0; i--) {
    const opt = options[i] as string; // i is in range
    if (opt === 'defaults' || opt === '') continue;
    const group = FLAG_GROUPS[opt];
    let key: string;
    if (group !== undefined) {
      key = `flag:${group}`;
    } else {
      const eq = opt.indexOf('=');
      const name = eq < 0 ? opt : opt.slice(0, eq);
      if (eq < 0 || !TMPFS_DATA_KEYS.has(name)) throw invalidConfig(`invalid tmpfs option "${opt}" in '${spec}'`, { tmpfs: spec });
      key = `data:${name}`;
    }
    if (seen.has(key)) continue;
    seen.add(key);
    merged.unshift(opt);
  }
  return merged;
}

/** Parses HostConfig.Tmpfs (path → options). */
export function parseTmpfsMap(tmpfs: Record<string, string>): ParsedMount[] {
  return Object.entries(tmpfs).map(([destination, data]) => {
    checkDestination(destination, `${destination}:${data}`, 'tmpfs');
    mergeTmpfsOptions(data.split(','), `${destination}:${data}`);
    return { kind: 'tmpfs', source: 'tmpfs', destination: path.normalize(destination), readOnly: false, propagation: DEFAULT_PROPAGATION, nonRecursive: false, createSource: false, data };
  });
}

/** All user mounts of a HostConfig, syntax-checked; duplicate destinations are an error (Docker). */
export function parseUserMounts(hc: HostConfig): ParsedMount[] {
  const mounts = [...(hc.Binds ?? []).map(parseBind), ...(hc.Mounts ?? []).map(parseMountSpec), ...parseTmpfsMap(hc.Tmpfs ?? {})];
  const seen = new Set<string>();
  for (const m of mounts) {
    if (seen.has(m.destination)) throw invalidConfig(`Duplicate mount point: ${m.destination}`, { destination: m.destination });
    seen.add(m.destination);
  }
  return mounts;
}

/** A parsed mount as an OCI mount. */
export function toOciMount(m: ParsedMount): OciMount {
  if (m.kind === 'volume') throw new IsulaError('INTERNAL', `volume at ${m.destination} was not resolved to a directory`);
  if (m.kind === 'tmpfs') {
    const data = m.data === '' ? [] : m.data.split(',');
    return { destination: m.destination, type: 'tmpfs', source: 'tmpfs', options: mergeTmpfsOptions(['noexec', 'nosuid', 'nodev', DEFAULT_PROPAGATION, ...data]) };
  }
  const options = [m.nonRecursive ? 'bind' : 'rbind'];
  if (m.readOnly) options.push('ro');
  options.push(m.propagation);
  return { destination: m.destination, type: 'bind', source: m.source, options };
}

/**
 * The rootfs propagation the user mounts need: a shared bind needs a shared
 * rootfs, a slave bind at least a slave one (moby).
 */
export function rootfsPropagationFor(mounts: readonly ParsedMount[]): string | undefined {
  const modes = mounts.filter((m) => m.kind === 'bind').map((m) => m.propagation);
  if (modes.some((p) => p === 'shared' || p === 'rshared')) return 'rshared';
  if (modes.some((p) => p === 'slave' || p === 'rslave')) return 'rslave';
  return undefined;
}

/** Depth of a destination, for Docker's parent-before-child mount order. */
function depth(destination: string): number {
  return path.normalize(destination).split('/').length;
}

/**
 * Final mount list: the defaults not overridden by a user mount at the same
 * destination, then the user and system mounts sorted parents-first
 * (stable, as moby's `sortMounts`).
 */
export function mergeMounts(defaults: readonly OciMount[], extra: readonly OciMount[]): OciMount[] {
  const taken = new Set(extra.map((m) => m.destination));
  const sorted = extra.map((m, i) => ({ m, i })).sort((a, b) => depth(a.m.destination) - depth(b.m.destination) || a.i - b.i).map(({ m }) => m);
  return [...defaults.filter((m) => !taken.has(m.destination)), ...sorted];
}
