/**
 * A test daemon with the CNI plugin on a bridge, subnet and conf dir of its
 * own (the real plugins in /usr/lib/cni), removed again after the test.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import pino from 'pino';
import { removeBridgeIsolation } from '@isula/network-cni';
import { daemon } from './containers.js';
import type { TestDaemon } from './harness.js';
import { claimSubnetSlot, releaseSubnetSlot } from './subnets.js';

const run = promisify(execFile);
export const CNI_BIN = '/usr/lib/cni';

/**
 * Whether the network tests can run: root, the CNI plugins the default
 * network uses, and `bins`. false when all are there; else a skip reason,
 * or, under CI=true, an error (`what` names the tests in it).
 */
export async function cniPrerequisites(what: string, bins: readonly string[] = []): Promise<string | false> {
  const missing: string[] = [];
  if (process.getuid?.() !== 0) missing.push('root');
  const exists = (p: string) => fs.access(p).then(() => true, () => false);
  for (const p of ['bridge', 'host-local', 'portmap', 'firewall', 'loopback']) if (!(await exists(path.join(CNI_BIN, p)))) missing.push(`${CNI_BIN}/${p}`);
  for (const bin of bins) if (!(await exists(bin))) missing.push(bin);
  if (missing.length === 0) return false;
  if (process.env['CI'] === 'true') throw new Error(`${what} need: ${missing.join(', ')}`);
  return `needs ${missing.join(', ')}`;
}

let subnetCounter = 0;

/** A bridge, subnet and CNI conf dir of a test's own. */
export interface PrivateNet { tag: string; bridge: string; subnet: string; confDir: string; slot: number }

/**
 * Names no other test daemon uses at the same time, in this process or a
 * parallel one: a random bridge and conf dir, and a subnet whose third octet
 * is a slot of its own (./subnets.ts). Nothing is made yet.
 */
export function privateNet(): PrivateNet {
  const tag = randomBytes(3).toString('hex');
  const slot = claimSubnetSlot();
  const subnet = `10.${233 + (subnetCounter++ % 7)}.${slot}.0/24`;
  return { tag, bridge: `isut${tag}`, subnet, confDir: path.join('/tmp', `isula-e2e-cni-${tag}`), slot };
}

/**
 * Removes what the containers' networking left of `net` on the host once
 * its daemons are gone: the bridge and the firewall's isolation rules for it
 * outlive the containers, as in Docker; and the conf dir.
 */
export async function removePrivateNet(net: PrivateNet): Promise<void> {
  await run('ip', ['link', 'del', net.bridge]).catch(() => undefined);
  await removeBridgeIsolation(net.bridge, pino({ level: 'silent' }));
  await fs.rm(net.confDir, { recursive: true, force: true });
  releaseSubnetSlot(net.slot);
}

export type NetDaemon = TestDaemon & PrivateNet;

/** `config` adds daemon.json keys (e.g. userns-remap). */
export async function netDaemon(t: { after(fn: () => Promise<void>): void }, config: Record<string, unknown> = {}): Promise<NetDaemon> {
  const net = privateNet();
  await fs.mkdir(net.confDir, { recursive: true });
  const d = await daemon(t, {
    plugins: ['@isula/image-oci', '@isula/driver-runc', { package: '@isula/network-cni', options: { bridge: net.bridge, subnet: net.subnet } }],
    'cni-conf-dir': net.confDir,
    'cni-bin-dir': [CNI_BIN],
    ...config,
  });
  // After the daemon's own teardown (registered first, run first).
  t.after(() => removePrivateNet(net));
  return Object.assign(d, net);
}
