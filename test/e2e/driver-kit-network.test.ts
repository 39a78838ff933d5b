/**
 * The kit's network suite against @isula/network-cni (the standard CNI
 * plugins on a bridge and subnet of the test's own): attach, detach
 * idempotence across stop and a daemon crash, and no leak over cycles.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { networkSuite } from '@isula/driver-tests';
import { cniPrerequisites, netDaemon, type NetDaemon } from '../lib/net-daemon.js';

const run = promisify(execFile);

networkSuite('@isula/network-cni', {
  skip: await cniPrerequisites('the network kit'),
  daemon: (t) => netDaemon(t),
  // The veths the bridge plugin put on this daemon's own bridge.
  interfaces: async (d) => {
    const out = await run('ip', ['-o', 'link', 'show', 'master', (d as NetDaemon).bridge]).catch(() => ({ stdout: '' }));
    return out.stdout.split('\n').map((l) => l.split(':')[1]?.trim().split('@')[0] ?? '').filter((n) => n !== '');
  },
});
