/**
 * The plugin's daemon.json options, checked in `apply`:
 * `{ "defaultNetwork": "isula", "bridge": "isula0", "subnet": "10.231.0.0/16", "pluginTimeout": "60s" }`.
 */
import { IsulaError, parseDuration } from '@isula/core';
import { NETWORK_NAME } from './conf.js';
import { formatCidr, parseCidr } from './ipv4.js';

export interface NetworkCniOptions {
  /** Name of the default network (`bridge` and `default` are aliases of it). */
  defaultNetwork: string;
  /** Bridge device of the default network, when isula writes its conflist. */
  bridge: string;
  /** IPv4 subnet of the default network, when isula writes its conflist. */
  subnet: string;
  /** Bound on each plugin execution. */
  pluginTimeoutMs: number;
}

export const DEFAULT_OPTIONS: Readonly<NetworkCniOptions> = Object.freeze({
  defaultNetwork: 'isula',
  bridge: 'isula0',
  subnet: '10.231.0.0/16',
  pluginTimeoutMs: 60_000,
});

const KNOWN = ['defaultNetwork', 'bridge', 'subnet', 'pluginTimeout'];
/** Linux interface names: at most 15 bytes, no "/", whitespace or ":". */
export const IFNAME = /^[a-zA-Z0-9_.-]{1,15}$/;
/** Names that `--network` gives another meaning (host/none) or that alias the default network. */
export const RESERVED_NAMES = ['bridge', 'default', 'host', 'none'];

const bad = (msg: string): IsulaError => new IsulaError('PLUGIN_OPTIONS_INVALID', `@isula/network-cni: ${msg}`);

export function parseOptions(options: unknown): NetworkCniOptions {
  if (options === undefined || options === null) return { ...DEFAULT_OPTIONS };
  if (typeof options !== 'object' || Array.isArray(options)) {
    throw bad('options must be an object like {"defaultNetwork": "isula", "bridge": "isula0", "subnet": "10.231.0.0/16"}');
  }
  const o = options as Record<string, unknown>;
  for (const k of Object.keys(o)) if (!KNOWN.includes(k)) throw bad(`unknown option "${k}" (known: ${KNOWN.join(', ')})`);
  const out: NetworkCniOptions = { ...DEFAULT_OPTIONS };
  const name = o['defaultNetwork'];
  if (name !== undefined) {
    if (typeof name !== 'string' || !NETWORK_NAME.test(name) || RESERVED_NAMES.includes(name)) {
      throw bad(`"defaultNetwork" must be a network name (letters, digits, "_", "." and "-"; not ${RESERVED_NAMES.join('/')}), got ${JSON.stringify(name)}`);
    }
    out.defaultNetwork = name;
  }
  const bridge = o['bridge'];
  if (bridge !== undefined) {
    if (typeof bridge !== 'string' || !IFNAME.test(bridge)) throw bad(`"bridge" must be an interface name of 1-15 letters, digits, "_", "." or "-", got ${JSON.stringify(bridge)}`);
    out.bridge = bridge;
  }
  const subnet = o['subnet'];
  if (subnet !== undefined) {
    const cidr = typeof subnet === 'string' ? parseCidr(subnet) : undefined;
    if (cidr === undefined || cidr.prefix > 30) throw bad(`"subnet" must be an IPv4 CIDR with a prefix of at most /30, like "10.231.0.0/16", got ${JSON.stringify(subnet)}`);
    out.subnet = formatCidr(cidr);
  }
  const timeout = o['pluginTimeout'];
  if (timeout !== undefined) {
    let ms: number;
    try {
      if (typeof timeout !== 'string') throw new Error(`expected a duration like "60s", got ${JSON.stringify(timeout)}`);
      ms = parseDuration(timeout);
    } catch (err) {
      throw bad(`"pluginTimeout": ${(err as Error).message}`);
    }
    if (ms <= 0) throw bad('"pluginTimeout" must be positive');
    out.pluginTimeoutMs = ms;
  }
  return out;
}
