/**
 * Where the bytes of an image come from: the ordered endpoints for a
 * registry host (its mirrors first, then the host itself), each with its
 * scheme and TLS settings.
 *
 * - `registry-mirrors` serve `docker.io` names (as in Docker and iSulad);
 *   `registry-mirrors-by-host` serves any host's names, which keep their
 *   original name (`registry.k8s.io/pause:3.9` pulled from a local mirror).
 * - `insecure-registries` (host[:port], or a CIDR for IP hosts) and loopback
 *   (as Docker treats 127.0.0.0/8): HTTPS without verification first, then
 *   plain HTTP. A loopback host with CAs in its certs.d dir is verified (and
 *   not tried over HTTP): the explicit trust setting wins.
 * - `<registry-certs-dir>/<host[:port]>/`: `*.crt` CAs added to the system's,
 *   `client.cert` + `client.key` for mutual TLS (Docker's certs.d layout).
 */
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { rootCertificates } from 'node:tls';

export interface RegistrySettings {
  mirrors: readonly string[];
  mirrorsByHost: Readonly<Record<string, readonly string[]>>;
  insecure: readonly string[];
  certsDir: string;
  stallTimeoutMs: number;
  maxConcurrentDownloads: number;
  maxConcurrentUploads: number;
}

export interface TlsSettings {
  verify: boolean;
  ca?: string[];
  cert?: Buffer;
  key?: Buffer;
}

export interface Endpoint {
  /** `https://host[:port][/prefix]`, no trailing slash. */
  base: string;
  /** `host[:port]` of `base`: the key for credentials and certs. */
  host: string;
  /** A mirror, not the image's own registry. */
  mirror: boolean;
  /** Undefined for plain HTTP. */
  tls: TlsSettings | undefined;
}

/** The host a `docker.io` name is served from. */
export const DOCKER_HUB_HOST = 'registry-1.docker.io';

/** `https://index.docker.io/v1/`, `registry-1.docker.io` … → `docker.io`; other servers → `host[:port]`. */
export function normalizeServer(server: string): string {
  let s = server.trim().replace(/^[a-z]+:\/\//i, '');
  s = s.split('/')[0] ?? s;
  s = s.toLowerCase();
  if (s === 'index.docker.io' || s === DOCKER_HUB_HOST || s === '') return 'docker.io';
  return s;
}

function hostOnly(hostPort: string): string {
  if (hostPort.startsWith('[')) return hostPort.slice(1, hostPort.indexOf(']'));
  const i = hostPort.lastIndexOf(':');
  return i > 0 && !hostPort.slice(0, i).includes(':') ? hostPort.slice(0, i) : hostPort;
}

function inCidr(ip: string, cidr: string): boolean {
  const [range, bitsText] = cidr.split('/');
  if (range === undefined || bitsText === undefined || net.isIP(range) === 0) return false;
  const bits = Number(bitsText);
  const list = new net.BlockList();
  try {
    list.addSubnet(range, bits, net.isIP(range) === 6 ? 'ipv6' : 'ipv4');
  } catch {
    return false;
  }
  return list.check(ip, net.isIP(ip) === 6 ? 'ipv6' : 'ipv4');
}

/** Listed in `insecure-registries`: as host:port, host, or a CIDR holding its IP. */
function listedInsecure(hostPort: string, insecure: readonly string[]): boolean {
  const h = hostOnly(hostPort);
  return insecure.some((entry) => {
    const e = normalizeServer(entry);
    return e === hostPort || e === h || (net.isIP(h) !== 0 && inCidr(h, entry));
  });
}

function isLoopback(hostPort: string): boolean {
  const h = hostOnly(hostPort);
  return h === 'localhost' || h === '::1' || inCidr(h, '127.0.0.0/8');
}

/** Insecure: listed (host:port, host, or a CIDR holding its IP), or loopback as in Docker. */
export function isInsecure(hostPort: string, insecure: readonly string[]): boolean {
  return isLoopback(hostPort) || listedInsecure(hostPort, insecure);
}

/**
 * Whether TLS to `host` is verified: not when it is listed insecure; yes when
 * its certs.d dir gives CAs (an explicit trust setting beats the loopback
 * default); otherwise not for loopback, yes for the rest.
 */
function verifies(host: string, s: RegistrySettings): boolean {
  if (listedInsecure(host, s.insecure)) return false;
  if (certsFor(s.certsDir, host).ca !== undefined) return true;
  return !isLoopback(host);
}

const certCache = new Map<string, { ca?: string[]; cert?: Buffer; key?: Buffer }>();

/** CAs and a client key pair from `<certsDir>/<host>/`, read once per host. */
function certsFor(certsDir: string, host: string): { ca?: string[]; cert?: Buffer; key?: Buffer } {
  const dir = path.join(certsDir, host.replace(/[[\]]/g, ''));
  const cached = certCache.get(dir);
  if (cached !== undefined) return cached;
  const out: { ca?: string[]; cert?: Buffer; key?: Buffer } = {};
  let entries: string[] = [];
  try {
    entries = fs.readdirSync(dir);
  } catch {
    // no dir: system CAs only
  }
  const cas = entries.filter((e) => e.endsWith('.crt')).sort().map((e) => fs.readFileSync(path.join(dir, e), 'utf8'));
  if (cas.length > 0) out.ca = [...rootCertificates, ...cas];
  if (entries.includes('client.cert') && entries.includes('client.key')) {
    out.cert = fs.readFileSync(path.join(dir, 'client.cert'));
    out.key = fs.readFileSync(path.join(dir, 'client.key'));
  }
  certCache.set(dir, out);
  return out;
}

/** Forget cached certs (tests, and a reload after the certs dir changed). */
export function clearCertCache(): void {
  certCache.clear();
}

function endpointsOf(url: string, mirror: boolean, s: RegistrySettings): Endpoint[] {
  const u = new URL(url);
  const host = u.host;
  const base = `${u.protocol}//${u.host}${u.pathname.replace(/\/+$/, '')}`;
  if (u.protocol === 'http:') return [{ base, host, mirror, tls: undefined }];
  return [{ base, host, mirror, tls: { verify: verifies(host, s), ...certsFor(s.certsDir, host) } }];
}

/** Endpoints to pull from for a registry `domain` (as in a normalised reference), in order. */
export function pullEndpoints(domain: string, s: RegistrySettings): Endpoint[] {
  const out: Endpoint[] = [];
  const mirrors = [...(domain === 'docker.io' ? s.mirrors : []), ...(s.mirrorsByHost[domain] ?? [])];
  for (const m of mirrors) out.push(...endpointsOf(/^[a-z]+:\/\//.test(m) ? m : `https://${m}`, true, s));
  out.push(...originEndpoints(domain, s));
  return out;
}

/** The registry itself (push and login go there, never to a mirror): HTTPS, then HTTP when insecure. */
export function originEndpoints(domain: string, s: RegistrySettings): Endpoint[] {
  const host = domain === 'docker.io' ? DOCKER_HUB_HOST : domain;
  const https = endpointsOf(`https://${host}`, false, s);
  if (verifies(host, s)) return https;
  return [...https, { base: `http://${host}`, host, mirror: false, tls: undefined }];
}
