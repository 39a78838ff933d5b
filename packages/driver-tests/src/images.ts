/**
 * The image the suites run: busybox, as a docker-archive that `isula load`
 * reads. The repo builds it with scripts/make-test-images.sh (umoci, skopeo)
 * and hands it to the suites; an author outside the repo points the kit at
 * one (ISULA_KIT_BUSYBOX, `--image`), or the kit finds the repo's cache, or
 * builds its own from /bin/busybox (busybox-image.ts).
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { buildBusyboxArchive } from './busybox-image.js';

/** The static busybox the kit builds its image from (Debian's busybox-static). */
const BUSYBOX = '/bin/busybox';

/** Where scripts/make-test-images.sh puts its images (ISULA_TEST_IMAGES overrides, as in the repo's tests). */
export const DEFAULT_IMAGES_DIR = process.env['ISULA_TEST_IMAGES'] ?? '/var/cache/isula/test-images';

const exists = (p: string) => fs.access(p).then(() => true, () => false);

let built: Promise<string> | undefined;
/**
 * The busybox docker-archive: ISULA_KIT_BUSYBOX (which must exist), else
 * busybox.docker.tar in DEFAULT_IMAGES_DIR, else one the kit builds from
 * /bin/busybox, cached in the temporary directory under the binary's digest
 * (built once, reused by later runs and processes).
 */
export async function busyboxArchive(): Promise<string> {
  const given = process.env['ISULA_KIT_BUSYBOX'];
  if (given !== undefined && given !== '') {
    if (await exists(given)) return given;
    throw new Error(`ISULA_KIT_BUSYBOX names ${given}, which does not exist: give a docker-archive of busybox:latest`);
  }
  const cached = path.join(DEFAULT_IMAGES_DIR, 'busybox.docker.tar');
  if (await exists(cached)) return cached;
  built ??= (async () => {
    const digest = createHash('sha256').update(await fs.readFile(BUSYBOX).catch(() => Buffer.alloc(0))).digest('hex').slice(0, 16);
    const file = path.join(os.tmpdir(), 'isula-driver-tests', `busybox-${digest}.docker.tar`);
    return (await exists(file)) ? file : buildBusyboxArchive(file, BUSYBOX);
  })();
  return built;
}
