/**
 * The image and network suites as the command runs them: the factories the
 * suites take, made from what a command line can say (daemon.json keys, an
 * image described as JSON, a bridge name) instead of an author's code.
 * Every spec's daemon gets the same keys and plugin options.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { daemon, ok } from './containers.js';
import { imageSuite } from './image-suite.js';
import { kitImage, type KitImageJson } from './kit-image.js';
import { networkSuite } from './network-suite.js';
import type { SuiteOptions } from './suite-options.js';

const run = promisify(execFile);

/** What the configured suites share with the runtime suites' options. */
type Shared = Pick<SuiteOptions, 'config' | 'skipTests' | 'sharedSkips' | 'busybox'>;

/**
 * imageSuite on daemons with `options.config` and `runtime` the default,
 * nothing loaded but the image: `image.load` goes into each spec's daemon.
 */
export function configuredImageSuite(format: string, image: KitImageJson, runtime: string, options: Shared): void {
  imageSuite(format, {
    daemon: (t) => daemon(t, { 'default-runtime': runtime, ...options.config }, { loadBusybox: false }),
    image: async (_t, d) => {
      if (image.load !== undefined) ok(await d.isula(['load', '-i', image.load]), `load ${image.load}`);
      return kitImage(image);
    },
    ...(options.skipTests !== undefined ? { skipTests: options.skipTests } : {}),
    ...(options.sharedSkips !== undefined ? { sharedSkips: options.sharedSkips } : {}),
  });
}

/** The interfaces enslaved to `bridge` (`ip -o link show master`): none when it does not exist (yet). */
export async function bridgePorts(bridge: string): Promise<string[]> {
  const out = await run('ip', ['-o', 'link', 'show', 'master', bridge], { timeout: 10_000 }).catch(() => ({ stdout: '' }));
  // "12: veth1a2b3c4d@if2: <BROADCAST,...> ..." → veth1a2b3c4d
  return out.stdout.split('\n').map((l) => l.split(':')[1]?.trim().split('@')[0] ?? '').filter((n) => n !== '');
}

/**
 * networkSuite on daemons with `options.config`, `runtime` the default and
 * busybox loaded; the driver's host interfaces are those on `bridge`, when
 * given (else leaks are judged by netns files, mounts and firewall rules).
 */
export function configuredNetworkSuite(driver: string, bridge: string | undefined, runtime: string, options: Shared): void {
  networkSuite(driver, {
    daemon: (t) => daemon(t, { 'default-runtime': runtime, ...options.config }, options.busybox !== undefined ? { busybox: options.busybox } : {}),
    ...(bridge !== undefined ? { interfaces: () => bridgePorts(bridge) } : {}),
    ...(options.skipTests !== undefined ? { skipTests: options.skipTests } : {}),
    ...(options.sharedSkips !== undefined ? { sharedSkips: options.sharedSkips } : {}),
  });
}
