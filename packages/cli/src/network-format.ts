/**
 * `isula network`: docker 20.10's `network create` request body (its
 * `consolidateIpam`, for --subnet and --gateway) and `network ls` rows
 * (`cli/command/network/formatter.go`), from `GET /networks`' NetworkResource.
 */
import { BlockList, isIP } from 'node:net';
import { alignTabs, compileRowTemplate, goTime, shortId, type RowTemplate } from './format.js';
import { UsageError } from './usage-error.js';

/** Docker's NetworkResource, as `GET /networks` and `GET /networks/{id}` answer it. */
export interface NetworkResource {
  Name: string;
  Id: string;
  Created?: string;
  Scope?: string;
  Driver?: string;
  EnableIPv6?: boolean;
  Internal?: boolean;
  Labels?: Record<string, string> | null;
  IPAM?: { Driver?: string; Config?: { Subnet?: string; Gateway?: string }[] | null };
  Containers?: Record<string, unknown> | null;
}

/** `POST /networks/create`'s body, the fields isula sends. */
export interface NetworkCreateBody {
  Name: string;
  Driver: string;
  Internal: boolean;
  Labels: Record<string, string>;
  IPAM: { Driver: string; Config: { Subnet: string; Gateway?: string }[] };
}

export interface NetworkCreateFlags {
  driver?: string;
  subnet?: string[];
  gateway?: string[];
  internal?: boolean;
  label?: string[];
}

/** The values of a pflag StringSlice flag given once or more: `--subnet a,b --subnet c`. */
function sliceValues(values: readonly string[] | undefined): string[] {
  return (values ?? []).flatMap((v) => v.split(',')).filter((v) => v !== '');
}

interface Cidr { ip: string; prefix: number; family: 'ipv4' | 'ipv6' }

/** Go's `net.ParseCIDR`; throws docker's `invalid subnet: invalid CIDR address: X`. */
function parseCidr(text: string): Cidr {
  const m = /^([^/]+)\/(\d{1,3})$/.exec(text);
  const version = m === null ? 0 : isIP(m[1] ?? '');
  const prefix = Number(m?.[2]);
  // Go's ParseCIDR takes no zone (fe80::1%eth0/64).
  if (m === null || version === 0 || (m[1] ?? '').includes('%') || prefix > (version === 4 ? 32 : 128)) {
    throw new UsageError(`invalid subnet: invalid CIDR address: ${text}`);
  }
  return { ip: m[1] ?? '', prefix, family: version === 4 ? 'ipv4' : 'ipv6' };
}

/** docker's `subnetMatches`: whether `data` (an address, or a CIDR's address) is inside `subnet`. */
function subnetMatches(subnet: string, data: string): boolean {
  const s = parseCidr(subnet);
  let ip = data;
  if (data.includes('/')) ip = parseCidr(data).ip;
  const version = isIP(ip);
  if (version === 0 || (version === 4 ? 'ipv4' : 'ipv6') !== s.family) return false;
  const list = new BlockList();
  list.addSubnet(s.ip, s.prefix, s.family);
  return list.check(ip, s.family);
}

/**
 * docker's `consolidateIpam` for subnets and gateways: nothing given is no
 * IPAM config; subnets may not overlap; each gateway goes to the subnet that
 * holds it, one per subnet (`--gateway` without a matching `--subnet` is
 * `no matching subnet for gateway X`).
 */
export function consolidateIpam(subnets: readonly string[], gateways: readonly string[]): { Subnet: string; Gateway?: string }[] {
  if (subnets.length === 0 && gateways.length === 0) return [];
  const configs = new Map<string, { Subnet: string; Gateway?: string }>();
  for (const s of subnets) {
    for (const k of configs.keys()) {
      if (subnetMatches(s, k) || subnetMatches(k, s)) throw new UsageError('multiple overlapping subnet configuration is not allowed');
    }
    configs.set(s, { Subnet: s });
  }
  for (const g of gateways) {
    let match = false;
    for (const s of subnets) {
      if (!subnetMatches(s, g)) continue;
      const config = configs.get(s);
      if (config === undefined) continue;
      if (config.Gateway !== undefined) throw new UsageError(`cannot configure multiple gateways (${g}, ${config.Gateway}) for the same subnet (${s})`);
      config.Gateway = g;
      match = true;
    }
    if (!match) throw new UsageError(`no matching subnet for gateway ${g}`);
  }
  return [...configs.values()];
}

/** `--label k=v` (docker's `ConvertKVStringsToMap`: a bare `k` is `k=""`); an empty key is pflag's error. */
export function parseLabels(values: readonly string[]): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const v of values) {
    const eq = v.indexOf('=');
    const key = eq < 0 ? v : v.slice(0, eq);
    if (key === '') throw new UsageError(`invalid argument ${JSON.stringify(v)} for "--label" flag: invalid environment variable: ${v}`);
    labels[key] = eq < 0 ? '' : v.slice(eq + 1);
  }
  return labels;
}

/** docker 20.10's `network create` request for NAME and the flags. */
export function buildNetworkCreateBody(name: string, flags: NetworkCreateFlags): NetworkCreateBody {
  return {
    Name: name,
    Driver: flags.driver ?? 'bridge',
    Internal: flags.internal === true,
    Labels: parseLabels(flags.label ?? []),
    IPAM: { Driver: 'default', Config: consolidateIpam(sliceValues(flags.subnet), sliceValues(flags.gateway)) },
  };
}

/** The fields `network ls --format` knows, with docker's column headers. */
export const NETWORK_FIELDS: Readonly<Record<string, string>> = {
  CreatedAt: 'CREATED AT',
  Driver: 'DRIVER',
  ID: 'NETWORK ID',
  IPv6: 'IPV6',
  Internal: 'INTERNAL',
  Labels: 'LABELS',
  Name: 'NAME',
  Scope: 'SCOPE',
};

/** `{{.Label "key"}}`. */
export const NETWORK_METHODS: Readonly<Record<string, string>> = { Label: 'LABEL' };

export const DEFAULT_NETWORK_TABLE = 'table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}';

/**
 * Go's `time.Time.String()` of an RFC 3339 time as Go parses it: in the
 * zone written (`+0000 UTC` for `Z`, the local zone's name when the offset is
 * the local one, else `+0800 +0800`), nanoseconds with trailing zeros cut.
 */
export function goTimeString(rfc3339: string): string {
  const m = /^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2}:\d{2})(?:\.(\d+))?(Z|[+-]\d{2}:\d{2})$/i.exec(rfc3339);
  if (m === null) return rfc3339;
  const fraction = (m[3] ?? '').slice(0, 9).replace(/0+$/, '');
  const clock = `${m[1] ?? ''} ${m[2] ?? ''}${fraction === '' ? '' : `.${fraction}`}`;
  const zone = m[4] ?? 'Z';
  if (zone.toUpperCase() === 'Z') return `${clock} +0000 UTC`;
  const offset = zone.replace(':', '');
  const offsetMin = (zone.startsWith('-') ? -1 : 1) * (Number(zone.slice(1, 3)) * 60 + Number(zone.slice(4, 6)));
  const seconds = Date.parse(rfc3339) / 1000;
  if (Number.isFinite(seconds) && -new Date(seconds * 1000).getTimezoneOffset() === offsetMin) {
    // The local zone: goTime gives its name (`CET`), as Go's Parse picks Local for a matching offset.
    return `${clock} ${goTime(Math.floor(seconds)).split(' ').slice(2).join(' ')}`;
  }
  return `${clock} ${offset} ${offset}`;
}

/** One `network ls` row (docker's networkContext), as strings. */
export function networkRow(n: NetworkResource, trunc: boolean): Record<string, string> {
  const labels = n.Labels ?? {};
  return {
    get CreatedAt() { return n.Created === undefined ? '' : goTimeString(n.Created); }, // lazy: see containerRow
    Driver: n.Driver ?? '',
    ID: trunc ? shortId(n.Id) : n.Id,
    IPv6: String(n.EnableIPv6 === true),
    Internal: String(n.Internal === true),
    // docker joins a Go map (random order); sorted here, as ps does.
    Labels: Object.keys(labels).sort().map((k) => `${k}=${labels[k] ?? ''}`).join(','),
    Name: n.Name,
    Scope: n.Scope ?? '',
  };
}

/** sortorder.NaturalLess, which `network ls` sorts names with: runs of digits compare as numbers. */
export function naturalLess(a: string, b: string): boolean {
  const s1 = Buffer.from(a);
  const s2 = Buffer.from(b);
  const isDigit = (c: number | undefined) => c !== undefined && c >= 0x30 && c <= 0x39;
  let i1 = 0;
  let i2 = 0;
  while (i1 < s1.length && i2 < s2.length) {
    const c1 = s1[i1];
    const c2 = s2[i2];
    const d1 = isDigit(c1);
    const d2 = isDigit(c2);
    if (d1 !== d2) return d1; // digits before other characters
    if (!d1) {
      if (c1 !== c2) return (c1 ?? 0) < (c2 ?? 0);
      i1 += 1;
      i2 += 1;
      continue;
    }
    while (i1 < s1.length && s1[i1] === 0x30) i1 += 1;
    while (i2 < s2.length && s2[i2] === 0x30) i2 += 1;
    const nz1 = i1;
    const nz2 = i2;
    while (i1 < s1.length && isDigit(s1[i1])) i1 += 1;
    while (i2 < s2.length && isDigit(s2[i2])) i2 += 1;
    if (i1 - nz1 !== i2 - nz2) return i1 - nz1 < i2 - nz2;
    const n1 = s1.subarray(nz1, i1).toString('latin1');
    const n2 = s2.subarray(nz2, i2).toString('latin1');
    if (n1 !== n2) return n1 < n2;
    if (nz1 !== nz2) return nz1 < nz2;
  }
  return s1.length < s2.length;
}

/**
 * docker's `NewFormat` of an `ls` command (network, volume): `table` (the
 * default) and `raw` are names for the formats given, each with its `-q`
 * variant; anything else is the user's template.
 */
export function listFormat(o: { quiet?: boolean; format?: string }, formats: { table: string; quietTable: string; raw: string; quietRaw: string }): string {
  const source = o.format ?? 'table';
  if (source === 'table') return o.quiet === true ? formats.quietTable : formats.table;
  if (source === 'raw') return o.quiet === true ? formats.quietRaw : formats.raw;
  return source;
}

/** An `ls` of named objects as docker prints it: sorted by name (natural order), a table or one line each. */
export function formatNamedList<T extends { Name: string; Labels?: Record<string, string> | null }>(items: readonly T[], template: RowTemplate, row: (item: T) => Record<string, string>): string {
  const sorted = [...items].sort((x, y) => (naturalLess(x.Name, y.Name) ? -1 : naturalLess(y.Name, x.Name) ? 1 : 0));
  const lines = sorted.map((item) => template.render(row(item), (_m, key) => item.Labels?.[key] ?? ''));
  if (template.isTable) return alignTabs([template.header(), ...lines]);
  return lines.join('\n');
}

export interface NetworkListOptions { quiet?: boolean; trunc: boolean; format?: string }

/** docker's `network.NewFormat`: the template for the flags given. */
export function networkListTemplate(o: NetworkListOptions): RowTemplate {
  const format = listFormat(o, {
    table: DEFAULT_NETWORK_TABLE,
    quietTable: '{{.ID}}',
    raw: 'network_id: {{.ID}}\\nname: {{.Name}}\\ndriver: {{.Driver}}\\nscope: {{.Scope}}\\n',
    quietRaw: 'network_id: {{.ID}}',
  });
  return compileRowTemplate(format, NETWORK_FIELDS, NETWORK_METHODS);
}

/** `network ls` output: sorted by name as docker (natural order), a table or one line per network. */
export function formatNetworkList(networks: readonly NetworkResource[], o: NetworkListOptions): string {
  return formatNamedList(networks, networkListTemplate(o), (n) => networkRow(n, o.trunc));
}
