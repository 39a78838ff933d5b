/**
 * The kit's network suite against @isula/network-cni (the standard CNI
 * plugins on a bridge and subnet of the test's own): attach, detach
 * idempotence across stop and a daemon crash, and no leak over cycles.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { networkSuite } from '@isula/driver-tests';
import { CNI_BIN, netDaemon, type NetDaemon } from '../lib/net-daemon.js';

const run = promisify(execFile);

async function prerequisites(): Promise<string | false> {
  const missing: string[] = [];
  if (process.getuid?.() !== 0) missing.push('root');
  for (const p of ['bridge', 'host-local', 'portmap', 'firewall', 'loopback']) {
    if (!(await fs.access(path.join(CNI_BIN, p)).then(() => true, () => false))) missing.push(`${CNI_BIN}/${p}`);
  }
  if (missing.length === 0) return false;
  if (process.env['CI'] === 'true') throw new Error(`the network kit needs: ${missing.join(', ')}`);
  return `needs ${missing.join(', ')}`;
}

networkSuite('@isula/network-cni', {
  skip: await prerequisites(),
  daemon: (t) => netDaemon(t),
  // The veths the bridge plugin put on this daemon's own bridge.
  interfaces: async (d) => {
    const out = await run('ip', ['-o', 'link', 'show', 'master', (d as NetDaemon).bridge]).catch(() => ({ stdout: '' }));
    return out.stdout.split('\n').map((l) => l.split(':')[1]?.trim().split('@')[0] ?? '').filter((n) => n !== '');
  },
});
