/**
 * CNI results: the 0.3.x/0.4.0/1.0.0 shape (`interfaces`, `ips` with an
 * interface index, `routes`, `dns`; 0.3.x/0.4.0 add `version` to each ip)
 * and, should a plugin answer in it, the 0.1.0/0.2.0 shape (`ip4`/`ip6`).
 * Plugins get the raw result back as `prevResult`; the engine gets the
 * summary as a NetworkAttachResult.
 */
import type { NetworkAddress, NetworkAttachResult, PortMapping } from '@isula/core';

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);
const strings = (v: unknown): string[] => (Array.isArray(v) ? v.filter((s): s is string => typeof s === 'string') : []);

interface Iface {
  name: string;
  mac: string | undefined;
  sandbox: string | undefined;
}

function parseRoutes(v: unknown): { dst: string; gw?: string }[] {
  if (!Array.isArray(v)) return [];
  return v.filter(isObject).flatMap((r) => {
    const dst = str(r['dst']);
    if (dst === undefined) return [];
    const gw = str(r['gw']);
    return [gw === undefined ? { dst } : { dst, gw }];
  });
}

/**
 * Summarises a chain's final result for `network`. Addresses are those on
 * interfaces inside the sandbox (or not tied to an interface); the MAC is
 * that of the sandbox interface named `ifName` (else the first one in a
 * sandbox).
 */
export function summarizeResult(network: string, raw: unknown, ifName: string, portMappings: PortMapping[] | undefined): NetworkAttachResult {
  const r = isObject(raw) ? raw : {};
  const interfaces: Iface[] = (Array.isArray(r['interfaces']) ? r['interfaces'] : []).map((i: unknown) => {
    const o = isObject(i) ? i : {};
    return { name: str(o['name']) ?? '', mac: str(o['mac']), sandbox: str(o['sandbox']) };
  });
  const addresses: NetworkAddress[] = [];
  let routes = parseRoutes(r['routes']);
  if (Array.isArray(r['ips'])) {
    for (const ip of r['ips'].filter(isObject)) {
      const address = str(ip['address']);
      if (address === undefined) continue;
      const index = typeof ip['interface'] === 'number' ? ip['interface'] : undefined;
      const iface = index === undefined ? undefined : interfaces[index];
      if (iface !== undefined && iface.sandbox === undefined) continue; // the host side (bridge, veth)
      const gateway = str(ip['gateway']);
      addresses.push({ address, ...(gateway === undefined ? {} : { gateway }), ...(iface === undefined ? {} : { interface: iface.name }) });
    }
  } else {
    // 0.1.0/0.2.0: { ip4: { ip, gateway, routes }, ip6: ... }
    for (const key of ['ip4', 'ip6']) {
      const block = r[key];
      if (!isObject(block)) continue;
      const address = str(block['ip']);
      const gateway = str(block['gateway']);
      if (address !== undefined) addresses.push({ address, ...(gateway === undefined ? {} : { gateway }), interface: ifName });
      routes = [...routes, ...parseRoutes(block['routes'])];
    }
  }
  const dns = isObject(r['dns']) ? r['dns'] : {};
  const domain = str(dns['domain']);
  const search = strings(dns['search']);
  const sandboxed = interfaces.filter((i) => i.sandbox !== undefined);
  const mac = (sandboxed.find((i) => i.name === ifName) ?? sandboxed[0])?.mac;
  return {
    network,
    addresses,
    routes,
    dns: {
      nameservers: strings(dns['nameservers']),
      // CNI's `domain` is resolv.conf's local domain: searched first.
      search: domain !== undefined && !search.includes(domain) ? [domain, ...search] : search,
      options: strings(dns['options']),
    },
    ...(mac === undefined ? {} : { mac }),
    ...(portMappings === undefined ? {} : { portMappings }),
  };
}

/** IPv4/IPv6 addresses (without prefix) of the sandbox side of a result, for the ipMasq clean-up. */
export function sandboxIps(raw: unknown): string[] {
  return summarizeResult('', raw, '', undefined).addresses.map((a) => a.address.split('/')[0] ?? '').filter((a) => a !== '');
}
