/**
 * The external rootfs ImageDriver: a directory the user prepared is the
 * container's root filesystem, used in place (iSulad's `--external-rootfs`,
 * for system containers). Nothing is copied, mounted or ever deleted.
 */
import { constants } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { IsulaError, resolveInRoot } from '@isula/core';
import type { DriverCallOptions, ImageDriver, ImageRef, ImageRuntimeConfig, ImageSummary } from '@isula/core';

export const FORMAT = 'external';
const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export class ExternalRootfsDriver implements ImageDriver {
  readonly format = FORMAT;

  /**
   * An absolute path names an external rootfs: it must be an existing
   * directory other than `/`. Anything else is not ours (undefined).
   */
  async resolve(reference: string, _opts: DriverCallOptions): Promise<ImageRef | undefined> {
    if (!path.isAbsolute(reference)) return undefined;
    const real = await validateRootfsDir(reference);
    return { reference: real, format: FORMAT, id: real };
  }

  /** External root filesystems are not images: none is listed. */
  async list(_opts: DriverCallOptions): Promise<ImageSummary[]> {
    return [];
  }

  async inspect(ref: ImageRef, _opts: DriverCallOptions): Promise<ImageSummary & { config: ImageRuntimeConfig; docker: Record<string, unknown> }> {
    const st = await fs.stat(ref.id).catch(() => undefined);
    const created = st?.mtime ?? new Date(0);
    return {
      id: ref.id,
      repoTags: [],
      repoDigests: [],
      created,
      sizeBytes: 0,
      config: {},
      docker: { Id: ref.id, RepoTags: [], RepoDigests: [], Created: created.toISOString(), Size: 0, Config: {}, RootFS: { Type: 'external', Path: ref.id } },
    };
  }

  /** The directory itself; it must still be there. */
  async mountRootfs(_containerId: string, image: ImageRef, _opts: DriverCallOptions): Promise<string> {
    return validateRootfsDir(image.id);
  }

  async checkRootfs(rootfs: string, opts: DriverCallOptions & { command: string; env: readonly string[] }): Promise<void> {
    const { command } = opts;
    const pathEnv = [...opts.env].reverse().find((e) => e.startsWith('PATH='))?.slice(5) ?? DEFAULT_PATH;
    const candidates = command.includes('/') ? [command.startsWith('/') ? command : `/${command}`] : pathEnv.split(':').filter(Boolean).map((d) => path.posix.join(d, command));
    for (const inner of candidates) {
      const host = await resolveInRoot(rootfs, inner);
      const st = await fs.stat(host).catch(() => undefined);
      if (st?.isFile() === true) {
        if (await fs.access(host, constants.X_OK).then(() => true, () => false)) return;
        throw new IsulaError('CONTAINER_CMD_NOT_EXECUTABLE', `external rootfs ${rootfs}: "${inner}" is not executable`);
      }
    }
    const where = command.includes('/') ? '' : ` (searched PATH=${pathEnv})`;
    throw new IsulaError('CONTAINER_CMD_NOT_FOUND', `external rootfs ${rootfs}: command "${command}" not found in it${where}`);
  }

  /** Nothing was mounted. */
  async unmountRootfs(_containerId: string, _opts: DriverCallOptions): Promise<void> {}

  /** Never deletes the user's directory. */
  async removeRootfs(_containerId: string, _opts: DriverCallOptions): Promise<void> {}
}

/** The real path of a usable rootfs directory, or CONTAINER_CONFIG_INVALID saying what is wrong. */
export async function validateRootfsDir(dir: string): Promise<string> {
  const what = `--external-rootfs ${dir}`;
  if (!path.isAbsolute(dir)) throw new IsulaError('CONTAINER_CONFIG_INVALID', `${what}: must be an absolute path`);
  let real: string;
  try {
    real = await fs.realpath(dir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new IsulaError('CONTAINER_CONFIG_INVALID', code === 'ENOENT' ? `${what}: no such directory` : `${what}: ${code ?? String(err)}`, { cause: err });
  }
  const st = await fs.stat(real);
  if (!st.isDirectory()) throw new IsulaError('CONTAINER_CONFIG_INVALID', `${what}: not a directory`);
  if (real === '/') throw new IsulaError('CONTAINER_CONFIG_INVALID', `${what}: the host's root directory cannot be a container's root filesystem`);
  return real;
}
