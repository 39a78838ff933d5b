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

const run = promisify(execFile);
export const CNI_BIN = '/usr/lib/cni';

let subnetCounter = 0;

export type NetDaemon = TestDaemon & { bridge: string; subnet: string; confDir: string };

/** `config` adds daemon.json keys (e.g. userns-remap). */
export async function netDaemon(t: { after(fn: () => Promise<void>): void }, config: Record<string, unknown> = {}): Promise<NetDaemon> {
  const tag = randomBytes(3).toString('hex');
  const bridge = `isut${tag}`;
  // 10.233-10.240 . x: distinct per daemon of this process; the pid spreads concurrent processes.
  const n = (process.pid * 7 + subnetCounter++) % 250;
  const subnet = `10.${233 + (subnetCounter % 7)}.${n}.0/24`;
  const confDir = path.join('/tmp', `isula-e2e-cni-${tag}`);
  await fs.mkdir(confDir, { recursive: true });
  const d = await daemon(t, {
    plugins: ['@isula/image-oci', '@isula/driver-runc', { package: '@isula/network-cni', options: { bridge, subnet } }],
    'cni-conf-dir': confDir,
    'cni-bin-dir': [CNI_BIN],
    ...config,
  });
  t.after(async () => {
    // After the daemon's own teardown (registered first, run first): the bridge and firewall's
    // isolation rules for it outlive the containers, as in Docker.
    await run('ip', ['link', 'del', bridge]).catch(() => undefined);
    await removeBridgeIsolation(bridge, pino({ level: 'silent' }));
    await fs.rm(confDir, { recursive: true, force: true });
  });
  return Object.assign(d, { bridge, subnet, confDir });
}
