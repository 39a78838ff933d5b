/**
 * IPv4 CIDR arithmetic for subnets: parsing, overlap, picking a free /24.
 * Addresses are unsigned 32-bit numbers. Networks isula creates are IPv4 only
 * (see README); conflists written by hand may hold anything the plugins take.
 */

export interface Ipv4Cidr {
  /** The network address (host bits cleared). */
  network: number;
  prefix: number;
}

const OCTET = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;

export function parseIpv4(text: string): number | undefined {
  const parts = text.split('.');
  if (parts.length !== 4 || !parts.every((p) => OCTET.test(p))) return undefined;
  return parts.reduce((n, p) => n * 256 + Number(p), 0);
}

export function formatIpv4(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

function maskOf(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

/** `10.1.2.3/16` → `{ network: 10.1.0.0, prefix: 16 }`; `address` keeps the host bits. */
export function parseCidr(text: string): (Ipv4Cidr & { address: number }) | undefined {
  const m = /^([0-9.]+)\/(\d{1,2})$/.exec(text);
  if (m === null) return undefined;
  const address = parseIpv4(m[1] as string);
  const prefix = Number(m[2]);
  if (address === undefined || prefix > 32) return undefined;
  return { network: (address & maskOf(prefix)) >>> 0, prefix, address };
}

export function formatCidr(c: Ipv4Cidr): string {
  return `${formatIpv4(c.network)}/${c.prefix}`;
}

export function cidrSize(c: Ipv4Cidr): number {
  return 2 ** (32 - c.prefix);
}

export function contains(c: Ipv4Cidr, address: number): boolean {
  return ((address & maskOf(c.prefix)) >>> 0) === c.network;
}

export function overlaps(a: Ipv4Cidr, b: Ipv4Cidr): boolean {
  return contains(a, b.network) || contains(b, a.network);
}

/** The first host address: the gateway host-local and Docker pick when none is given. */
export function firstHost(c: Ipv4Cidr): number {
  return c.prefix >= 31 ? c.network : c.network + 1;
}

/**
 * The first 10.x.y.0/24 that overlaps none of `taken`. Starts above the
 * default network's 10.231.0.0/16 so new networks do not crowd it.
 */
export function pickFreeSubnet(taken: Ipv4Cidr[]): Ipv4Cidr | undefined {
  const seconds = [...Array.from({ length: 24 }, (_, i) => 232 + i), ...Array.from({ length: 231 }, (_, i) => 1 + i)];
  for (const x of seconds) {
    for (let y = 0; y < 256; y++) {
      const candidate = { network: (((10 * 256 + x) * 256 + y) * 256) >>> 0, prefix: 24 };
      if (!taken.some((t) => overlaps(t, candidate))) return candidate;
    }
  }
  return undefined;
}
