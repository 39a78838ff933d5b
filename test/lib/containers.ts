/**
 * Helpers for the container e2e tests: the conformance kit's (a daemon with
 * the runtime plugin and busybox loaded, checks for leftovers on the host),
 * fed with the repo's offline test images.
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import * as kit from '@isula/driver-tests';
import { REPO, type TestDaemon } from './harness.js';

export { assertNoTrace, cgroupDirs, crunUsable, inspect, isulaWithStdin, mountsUnder, ok, processesMatching, removeAll, sleep } from '@isula/driver-tests';

const run = promisify(execFile);
export const IMAGES_DIR = process.env['ISULA_TEST_IMAGES'] ?? '/var/cache/isula/test-images';

let imagesReady: Promise<unknown> | undefined;
/** Builds (or reuses) the offline test images once per process. */
export function testImages(): Promise<unknown> {
  imagesReady ??= run('bash', [path.join(REPO, 'scripts/make-test-images.sh'), IMAGES_DIR], { timeout: 120_000 });
  return imagesReady;
}

/** The busybox docker-archive of scripts/make-test-images.sh, built on first use. */
export async function repoBusybox(): Promise<string> {
  await testImages();
  return path.join(IMAGES_DIR, 'busybox.docker.tar');
}

/** The suites' options that make them use the repo's images: spread into every suite call. */
export const REPO_IMAGES = Object.freeze({ busybox: repoBusybox });

/** A daemon with image-oci and driver-runc, `runtime` as the default, busybox loaded. */
export function containerDaemon(t: Parameters<typeof kit.containerDaemon>[0], runtime: string, extra: Record<string, unknown> = {}): Promise<TestDaemon> {
  return kit.containerDaemon(t, runtime, extra, REPO_IMAGES);
}

/** A runc daemon with busybox loaded, torn down in the order that works (the kit's `daemon`). */
export function daemon(t: { after(fn: () => Promise<void>): void }, config: Record<string, unknown> = {}, opts: { loadBusybox?: boolean } = {}): Promise<TestDaemon> {
  return kit.daemon(t, config, { ...opts, ...REPO_IMAGES });
}
