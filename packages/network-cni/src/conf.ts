/**
 * CNI network configuration lists: loading `cni-conf-dir` (`.conflist`, and
 * single-plugin `.conf`/`.json` wrapped into a list, as libcni does), their
 * validation, and the bridge conflist isula writes for its own networks.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { IsulaError } from '@isula/core';

/** The spec versions this runner speaks (0.1.0/0.2.0 results use another shape and are not accepted). */
export const SUPPORTED_CNI_VERSIONS: readonly string[] = Object.freeze(['0.3.0', '0.3.1', '0.4.0', '1.0.0']);

const CONF_EXTENSIONS = ['.conflist', '.conf', '.json'];
/** A conflist is a few hundred bytes; anything this large is not one. */
const MAX_CONF_BYTES = 1024 * 1024;
/** CNI spec: network names are alphanumerics plus `_.-`, usable as a path segment (host-local makes a dir of it). */
export const NETWORK_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;
/** A plugin `type` is a file name in one of the bin dirs, never a path. */
const PLUGIN_TYPE = /^[a-zA-Z0-9][a-zA-Z0-9_.+-]*$/;

export interface PluginConf {
  type: string;
  capabilities?: Record<string, unknown>;
  [key: string]: unknown;
}

/** Metadata isula keeps in the conflists it writes, under the top-level key `isula` (libcni ignores unknown keys). */
export interface IsulaMeta {
  internal?: boolean;
  labels?: Record<string, string>;
  /** ISO 8601. */
  created?: string;
}

export interface NetworkConfList {
  cniVersion: string;
  name: string;
  disableCheck: boolean;
  plugins: PluginConf[];
  meta: IsulaMeta | undefined;
  /** The list as JSON, exactly what is cached and run. */
  raw: Record<string, unknown>;
}

export interface LoadedNetwork {
  file: string;
  list: NetworkConfList;
  mtime: Date;
}

export interface InvalidConf {
  file: string;
  /** The name, when the file parsed far enough to tell. */
  name: string | undefined;
  reason: string;
}

export interface ConfDir {
  /** Valid networks, first file (by name) wins for a name, as in libcni. */
  networks: LoadedNetwork[];
  invalid: InvalidConf[];
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

export function invalidConf(file: string, reason: string, cause?: unknown): IsulaError {
  return new IsulaError('NETWORK_CONFIG_INVALID', `CNI config ${file} is invalid: ${reason}`, {
    ...(cause === undefined ? {} : { cause }),
    details: { file },
  });
}

/**
 * Validates parsed JSON as a conflist (or a single-plugin conf when
 * `single`); throws a plain Error with the reason, which callers wrap with
 * the file's name.
 */
export function parseConfList(json: unknown, single = false): NetworkConfList {
  if (!isObject(json)) throw new Error('expected a JSON object');
  let raw: Record<string, unknown>;
  // A .conf holding a list is taken as one (libcni would reject it for its missing "type").
  if (single && !('plugins' in json && !('type' in json))) {
    const { name, cniVersion, ...plugin } = json;
    raw = { cniVersion, name, plugins: [plugin] };
  } else {
    raw = json;
  }
  const { name, cniVersion, plugins, disableCheck } = raw;
  if (typeof name !== 'string' || !NETWORK_NAME.test(name)) {
    throw new Error(`"name" must be a string of letters, digits, "_", "." and "-", got ${JSON.stringify(name)}`);
  }
  if (typeof cniVersion !== 'string' || !SUPPORTED_CNI_VERSIONS.includes(cniVersion)) {
    throw new Error(`"cniVersion" ${JSON.stringify(cniVersion)} is not supported (use ${SUPPORTED_CNI_VERSIONS.join(', ')})`);
  }
  if (disableCheck !== undefined && typeof disableCheck !== 'boolean') throw new Error('"disableCheck" must be a boolean');
  if (!Array.isArray(plugins) || plugins.length === 0) throw new Error('"plugins" must be a non-empty list');
  const checked = plugins.map((p: unknown, i): PluginConf => {
    if (!isObject(p)) throw new Error(`plugins[${i}] must be an object`);
    if (typeof p['type'] !== 'string' || !PLUGIN_TYPE.test(p['type'])) {
      throw new Error(`plugins[${i}].type must be a plugin binary name, got ${JSON.stringify(p['type'])}`);
    }
    if (p['capabilities'] !== undefined && !isObject(p['capabilities'])) throw new Error(`plugins[${i}].capabilities must be an object`);
    return p as PluginConf;
  });
  return { cniVersion, name, disableCheck: disableCheck === true, plugins: checked, meta: parseMeta(raw['isula']), raw };
}

function parseMeta(v: unknown): IsulaMeta | undefined {
  if (!isObject(v)) return undefined;
  const meta: IsulaMeta = {};
  if (typeof v['internal'] === 'boolean') meta.internal = v['internal'];
  if (typeof v['created'] === 'string') meta.created = v['created'];
  if (isObject(v['labels'])) {
    meta.labels = Object.fromEntries(Object.entries(v['labels']).filter((e): e is [string, string] => typeof e[1] === 'string'));
  }
  return meta;
}

/** Reads and validates one file; throws NETWORK_CONFIG_INVALID naming it. */
export async function loadConfFile(file: string): Promise<LoadedNetwork> {
  const stat = await fs.stat(file);
  if (!stat.isFile()) throw invalidConf(file, 'not a regular file');
  if (stat.size > MAX_CONF_BYTES) throw invalidConf(file, `larger than ${MAX_CONF_BYTES} bytes`);
  const text = await fs.readFile(file, 'utf8');
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw invalidConf(file, `not JSON: ${(err as Error).message}`, err);
  }
  try {
    return { file, list: parseConfList(json, !file.endsWith('.conflist')), mtime: stat.mtime };
  } catch (err) {
    throw invalidConf(file, (err as Error).message, err);
  }
}

/**
 * Every network in `dir`, files in name order (libcni's order; the first
 * file wins for a name). A missing dir holds no networks. A file that does
 * not parse is reported in `invalid`, not thrown: it fails only the requests
 * that need it (see `findNetwork`).
 */
export async function loadConfDir(dir: string): Promise<ConfDir> {
  let names: string[];
  try {
    names = await fs.readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { networks: [], invalid: [] };
    throw err;
  }
  // libcni's LoadConfList: every .conflist first, then the single-plugin .conf/.json, each set sorted.
  const visible = names.filter((n) => !n.startsWith('.') && CONF_EXTENSIONS.includes(path.extname(n)));
  const files = [...visible.filter((n) => n.endsWith('.conflist')).sort(), ...visible.filter((n) => !n.endsWith('.conflist')).sort()];
  const networks: LoadedNetwork[] = [];
  const invalid: InvalidConf[] = [];
  const seen = new Set<string>();
  for (const name of files) {
    const file = path.join(dir, name);
    try {
      const loaded = await loadConfFile(file);
      if (seen.has(loaded.list.name)) continue;
      seen.add(loaded.list.name);
      networks.push(loaded);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue; // removed while we read the dir
      const reason = err instanceof IsulaError ? err.message : `CNI config ${file} cannot be read: ${(err as Error).message}`;
      invalid.push({ file, name: await nameOf(file), reason });
    }
  }
  return { networks, invalid };
}

/** The `name` of a file that did not validate, if it is JSON with one. */
async function nameOf(file: string): Promise<string | undefined> {
  try {
    const json: unknown = JSON.parse(await fs.readFile(file, 'utf8'));
    return isObject(json) && typeof json['name'] === 'string' ? json['name'] : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The network called `name`, or undefined. A file that does not validate
 * and bears that name (or whose name cannot be read) makes this throw
 * NETWORK_CONFIG_INVALID naming the file, rather than NETWORK_NOT_FOUND
 * hiding the typo the user made in it.
 */
export function findNetwork(dir: ConfDir, name: string): LoadedNetwork | undefined {
  const found = dir.networks.find((n) => n.list.name === name);
  if (found) return found;
  const broken = dir.invalid.find((i) => i.name === name) ?? dir.invalid.find((i) => i.name === undefined);
  if (broken) throw new IsulaError('NETWORK_CONFIG_INVALID', broken.reason, { details: { file: broken.file } });
  return undefined;
}

/** Stable network id: sha256 of the name (README: why not of the content). */
export function networkId(name: string): string {
  return createHash('sha256').update(name).digest('hex');
}

/** `isula-<8 hex of sha256(name)>`: 14 characters, under the kernel's 15. */
/**
 * The bridge device of a network `isula network create` made: from the conf
 * dir and the name, so two daemons with their own conf dirs (tests, several
 * engines on one host) never share a device for networks of the same name.
 */
export function bridgeNameFor(name: string, confDir = ''): string {
  return `isula-${createHash('sha256').update(`${confDir}\0${name}`).digest('hex').slice(0, 8)}`;
}

export interface BridgeNetworkSpec {
  name: string;
  bridge: string;
  /** CIDR. */
  subnet: string;
  gateway?: string;
  /** Containers reach each other only: no gateway on the bridge, no NAT, no default route, no portmap. */
  internal: boolean;
  /** host-local's lease directory. */
  dataDir: string;
  labels?: Record<string, string>;
  created?: Date;
}

/**
 * The chain PLATFORM.md §6 found working with plugins 1.1.1: bridge +
 * host-local, portmap (portMappings, snat), firewall (iptables) — firewall
 * stays because dockerd's FORWARD DROP otherwise blocks container traffic —
 * plus firewall's `ingressPolicy: same-bridge` (since plugins 1.1.0) so
 * that networks are isolated from each other.
 */
export function bridgeConfList(spec: BridgeNetworkSpec): Record<string, unknown> {
  const range: Record<string, string> = { subnet: spec.subnet };
  if (spec.gateway !== undefined) range['gateway'] = spec.gateway;
  const ipam = {
    type: 'host-local',
    ranges: [[range]],
    ...(spec.internal ? {} : { routes: [{ dst: '0.0.0.0/0' }] }),
    dataDir: spec.dataDir,
  };
  const bridge = spec.internal
    ? { type: 'bridge', bridge: spec.bridge, isGateway: false, ipMasq: false, ipam }
    : { type: 'bridge', bridge: spec.bridge, isGateway: true, ipMasq: true, hairpinMode: true, ipam };
  const plugins: Record<string, unknown>[] = [bridge];
  if (!spec.internal) plugins.push({ type: 'portmap', capabilities: { portMappings: true }, snat: true });
  // same-bridge: containers of different networks do not reach each other (Docker's isolation between bridges).
  plugins.push({ type: 'firewall', backend: 'iptables', ingressPolicy: 'same-bridge' });
  const meta: IsulaMeta = { internal: spec.internal, labels: spec.labels ?? {}, created: (spec.created ?? new Date()).toISOString() };
  return { cniVersion: '1.0.0', name: spec.name, plugins, isula: meta };
}
