/**
 * A small kit for network drivers, through the engine as a user drives it:
 * attach gives a running container an address that inspect reports, detach
 * is idempotent (stop, then rm; a container that died while the daemon was
 * down, then rm -f) and safe, and create/rm cycles leave the host as it was.
 *
 * Unlike the runtime suites it takes a daemon factory, not daemon.json keys:
 * a network driver needs host set-up of its own (a bridge, a subnet, conf
 * dirs) that the caller makes and removes. Leaks are judged with what any
 * driver leaves when it leaks: netns files under the daemon's state, mounts
 * under its roots, firewall rules naming the container, and the host
 * interfaces the caller says are the driver's (`interfaces`: other tests on
 * the host make and remove interfaces of their own meanwhile).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { describe, type TestContext } from 'node:test';
import { promisify } from 'node:util';
import { inspect, mountsUnder, ok } from './containers.js';
import type { TestDaemon } from './harness.js';
import { suiteTests } from './suite-options.js';

const run = promisify(execFile);

export interface NetworkSuiteOptions {
  /** Skip the whole suite with this reason (a host that lacks the plugins). */
  skip?: string | false;
  /** A daemon with the network driver loaded and busybox in it; its teardown registered on `t`. */
  daemon: (t: TestContext) => Promise<TestDaemon>;
  /** Tests to skip by name (test name → reason). */
  skipTests?: Record<string, string>;
  /** Leave the check that each `skipTests` name is a test to the caller, who shares one list between suites (as `SuiteOptions.sharedSkips`). */
  sharedSkips?: boolean;
  /** Names of the host interfaces the driver made for `d`'s containers (e.g. the veths on its bridge). */
  interfaces?: (d: TestDaemon) => Promise<string[]>;
}

interface Inspected { NetworkSettings: { IPAddress: string; SandboxKey: string } }

/** What a leak would change on the host: interface names, netns files, mounts under the roots, firewall rules. */
interface HostNet { links: string[]; netns: string[]; mounts: string[]; rules: string }

async function hostNet(d: TestDaemon, opts: NetworkSuiteOptions): Promise<HostNet> {
  const links = (await opts.interfaces?.(d) ?? []).sort();
  const netns = (await fs.readdir(path.join(d.state, 'netns')).catch(() => [] as string[])).sort();
  const rules = (await run('iptables-save', []).catch(() => ({ stdout: '' }))).stdout;
  return { links, netns, mounts: await mountsUnder(d.root), rules };
}

/** The names of the network suite's tests, in order: what `skipTests` keys and the kit's report rows name. */
export const NETWORK_SPECS = {
  attach: 'attach: a running container has an address on eth0 that inspect reports; stop detaches, start attaches again',
  detach: 'detach is idempotent and safe after a crash: stop then rm, and a container that died while isulad was down, then rm -f',
  cycles: 'five create/start/rm cycles leave the host as it was',
} as const;

/** Asserts the host is back to `before` and no firewall rule names any of `ids`. */
async function assertNoLeak(d: TestDaemon, opts: NetworkSuiteOptions, before: HostNet, ids: string[]): Promise<void> {
  const now = await hostNet(d, opts);
  assert.deepEqual(now.links, before.links, 'no host interface of the driver (veth ...) left');
  assert.deepEqual(now.netns, before.netns, 'no netns file left');
  assert.deepEqual(now.mounts, before.mounts, 'no mount left under the daemon roots');
  for (const id of ids) assert.ok(!now.rules.includes(id.slice(0, 12)), `no firewall rule names ${id.slice(0, 12)}`);
}

async function ipInside(d: TestDaemon, name: string): Promise<string> {
  const out = ok(await d.isula(['exec', name, 'ip', '-o', '-4', 'addr', 'show', 'eth0']), `ip addr in ${name}`);
  return out.match(/inet (\d+\.\d+\.\d+\.\d+)\//)?.[1] ?? '';
}

export function networkSuite(driver: string, opts: NetworkSuiteOptions): void {
  describe(`network driver ${driver}`, { skip: opts.skip ?? false }, () => {
    const { test, checkSkips } = suiteTests(`networkSuite(${driver})`, opts);

    test(NETWORK_SPECS.attach, async (t) => {
      const d = await opts.daemon(t);
      ok(await d.isula(['run', '-d', '--name', 'n1', 'busybox', 'sleep', '300']));
      const ip = await ipInside(d, 'n1');
      assert.match(ip, /^\d+\.\d+\.\d+\.\d+$/, 'eth0 has an IPv4 address');
      const info = await inspect<Inspected>(d, 'n1');
      assert.equal(info.NetworkSettings.IPAddress, ip, 'inspect reports the address eth0 has');
      ok(await d.isula(['stop', '-t', '0', 'n1']));
      assert.equal((await inspect<Inspected>(d, 'n1')).NetworkSettings.IPAddress, '', 'a stopped container has no address');
      ok(await d.isula(['start', 'n1']));
      assert.match(await ipInside(d, 'n1'), /^\d+\.\d+\.\d+\.\d+$/, 'start attaches again');
      ok(await d.isula(['rm', '-f', 'n1']));
    });

    test(NETWORK_SPECS.detach, async (t) => {
      const d = await opts.daemon(t);
      // The host as it is with the driver warmed up (a bridge may be made at the first attach and kept).
      ok(await d.isula(['run', '--rm', 'busybox', 'true']));
      const before = await hostNet(d, opts);
      const a = ok(await d.isula(['run', '-d', '--name', 'na', 'busybox', 'sleep', '300'])).trim();
      ok(await d.isula(['stop', '-t', '0', 'na']));
      ok(await d.isula(['stop', '-t', '0', 'na']));
      ok(await d.isula(['rm', 'na']));
      const b = ok(await d.isula(['run', '-d', '--name', 'nb', 'busybox', 'sleep', '300'])).trim();
      const pid = (await inspect<{ State: { Pid: number } }>(d, 'nb')).State.Pid;
      d.proc?.kill('SIGKILL');
      await d.exited();
      process.kill(pid, 'SIGKILL'); // dies while nobody watches: the restarted daemon detaches it
      await d.start();
      ok(await d.isula(['rm', '-f', 'nb']));
      await assertNoLeak(d, opts, before, [a, b]);
    });

    test(NETWORK_SPECS.cycles, async (t) => {
      const d = await opts.daemon(t);
      ok(await d.isula(['run', '--rm', 'busybox', 'true']));
      const before = await hostNet(d, opts);
      const ids: string[] = [];
      for (let i = 0; i < 5; i++) {
        const id = ok(await d.isula(['run', '-d', 'busybox', 'sleep', '300'])).trim();
        ids.push(id);
        ok(await d.isula(['rm', '-f', id]));
      }
      await assertNoLeak(d, opts, before, ids);
    });

    checkSkips();
  });
}
