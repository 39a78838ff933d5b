/**
 * Host ports for published container ports. portmap only writes DNAT rules
 * and binds nothing, so the driver checks a port is free before ADD: it binds
 * a socket on the host address (or 0.0.0.0), closes it, and refuses ports
 * another attachment already publishes. hostPort 0 picks a free port the same
 * way (bind port 0, read it back): Docker's `-P`.
 */
import dgram from 'node:dgram';
import net from 'node:net';
import { IsulaError } from '@isula/core';
import type { PortMapping } from '@isula/core';
import type { NetworkConfList } from './conf.js';

const isUnspecified = (ip: string | undefined): boolean => ip === undefined || ip === '' || ip === '0.0.0.0' || ip === '::';

/** Two mappings collide when protocol and port match and either listens on every address or both on the same one. */
export function collides(a: PortMapping, b: PortMapping): boolean {
  return a.protocol === b.protocol && a.hostPort === b.hostPort && (isUnspecified(a.hostIp) || isUnspecified(b.hostIp) || a.hostIp === b.hostIp);
}

/** Docker's words: `Bind for 0.0.0.0:8080 failed: port is already allocated`. */
export function portInUse(m: PortMapping, heldBy?: string): IsulaError {
  const host = isUnspecified(m.hostIp) ? '0.0.0.0' : (m.hostIp as string);
  const shown = host.includes(':') ? `[${host}]` : host;
  return new IsulaError('NETWORK_PORT_IN_USE', `Bind for ${shown}:${m.hostPort} failed: port is already allocated`, {
    details: { hostIp: host, hostPort: m.hostPort, protocol: m.protocol, ...(heldBy === undefined ? {} : { container: heldBy }) },
  });
}

/**
 * The network of an attachment that publishes its ports: the first whose chain
 * has a plugin with the `portMappings` capability (two networks' DNAT rules
 * for one host port would shadow each other), or -1 when none has one. Then
 * nothing is published and no host port is taken: Docker publishes only on a
 * container's gateway endpoint, which an internal network never is, and the
 * container starts all the same.
 */
export function publishingNetwork(lists: readonly Pick<NetworkConfList, 'plugins'>[]): number {
  return lists.findIndex((l) => l.plugins.some((p) => p.capabilities?.['portMappings'] === true));
}

export function validateMapping(m: PortMapping): void {
  const port = (n: number, zero: boolean): boolean => Number.isInteger(n) && n >= (zero ? 0 : 1) && n <= 65535;
  if (!port(m.hostPort, true) || !port(m.containerPort, false) || !['tcp', 'udp', 'sctp'].includes(m.protocol)) {
    throw new IsulaError('NETWORK_CONFIG_INVALID', `invalid port mapping ${JSON.stringify(m)}: ports 1-65535 (host port 0 picks one), protocol tcp, udp or sctp`);
  }
  if (m.hostIp !== undefined && m.hostIp !== '' && net.isIP(m.hostIp) === 0) {
    throw new IsulaError('NETWORK_CONFIG_INVALID', `invalid host IP ${JSON.stringify(m.hostIp)} in a port mapping`);
  }
}

/**
 * Binds (and releases) `port` on the mapping's host address; returns the
 * port bound (the kernel's choice for 0). EADDRINUSE → NETWORK_PORT_IN_USE;
 * an address not on this host → NETWORK_CONFIG_INVALID. SCTP cannot be
 * probed from Node: its ports are checked against other attachments only,
 * and 0 is refused.
 */
export async function probePort(m: PortMapping): Promise<number> {
  const family = m.hostIp !== undefined && net.isIPv6(m.hostIp) ? 6 : 4;
  const address = isUnspecified(m.hostIp) ? (family === 6 ? '::' : '0.0.0.0') : (m.hostIp as string);
  if (m.protocol === 'sctp') {
    if (m.hostPort === 0) throw new IsulaError('NETWORK_CONFIG_INVALID', 'a random host port (0) cannot be picked for sctp: give one');
    return m.hostPort;
  }
  try {
    return m.protocol === 'tcp' ? await bindTcp(address, m.hostPort) : await bindUdp(address, m.hostPort, family);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE' || code === 'EACCES') throw portInUse(m);
    if (code === 'EADDRNOTAVAIL') {
      throw new IsulaError('NETWORK_CONFIG_INVALID', `cannot publish port ${m.hostPort} on ${address}: the address is not on this host`, { cause: err });
    }
    throw err;
  }
}

function bindTcp(host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen({ host, port, exclusive: true }, () => {
      const bound = (server.address() as net.AddressInfo).port;
      server.close(() => resolve(bound));
    });
  });
}

function bindUdp(address: string, port: number, family: 4 | 6): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = dgram.createSocket(family === 6 ? 'udp6' : 'udp4');
    socket.once('error', (err) => {
      socket.close();
      reject(err);
    });
    socket.bind({ address, port, exclusive: true }, () => {
      const bound = socket.address().port;
      socket.close(() => resolve(bound));
    });
  });
}
