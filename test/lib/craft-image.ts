/**
 * Crafts a test image from a docker-archive: the same layers, a config
 * changed by the caller (a HEALTHCHECK, a VOLUME…), under a new tag. The
 * result is a docker-archive `isula load -i` takes; its image id is the
 * sha256 of the new config, as with any docker-archive.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface CraftImageOptions {
  /** A docker-archive tar, e.g. path.join(IMAGES_DIR, 'busybox.docker.tar'). */
  from: string;
  /** The one tag of the new image, e.g. 'healthy:1'. */
  tag: string;
  /** Changes the image config's "config" object (Docker's container config: Healthcheck, Volumes, …) in place. */
  config: (cfg: Record<string, any>) => void;
  /** The directory the new tar is written to (made if missing). */
  out: string;
}

interface ManifestEntry { Config: string; RepoTags: string[] | null; Layers: string[] }

/** Returns the path of the new docker-archive, `<out>/<tag with : and / as _>.docker.tar`. */
export async function craftImage(opts: CraftImageOptions): Promise<string> {
  await fs.mkdir(opts.out, { recursive: true });
  const work = await fs.mkdtemp(path.join(opts.out, '.craft-'));
  try {
    await run('tar', ['-xf', opts.from, '-C', work], { timeout: 60_000 });
    const manifest = JSON.parse(await fs.readFile(path.join(work, 'manifest.json'), 'utf8')) as ManifestEntry[];
    assert.equal(manifest.length, 1, `craftImage: ${opts.from} holds one image`);
    const entry = manifest[0] as ManifestEntry;
    const image = JSON.parse(await fs.readFile(path.join(work, entry.Config), 'utf8')) as { config?: Record<string, unknown> };
    image.config ??= {};
    opts.config(image.config);
    const bytes = Buffer.from(JSON.stringify(image));
    const hex = createHash('sha256').update(bytes).digest('hex');
    await fs.rm(path.join(work, entry.Config));
    // The legacy "repositories" file names the source's tags: not ours.
    await fs.rm(path.join(work, 'repositories'), { force: true });
    await fs.writeFile(path.join(work, `${hex}.json`), bytes);
    entry.Config = `${hex}.json`;
    entry.RepoTags = [opts.tag];
    await fs.writeFile(path.join(work, 'manifest.json'), JSON.stringify(manifest));
    const tarPath = path.join(opts.out, `${opts.tag.replace(/[:/]/g, '_')}.docker.tar`);
    await fs.rm(tarPath, { force: true });
    await run('tar', ['-cf', tarPath, '-C', work, ...(await fs.readdir(work))], { timeout: 60_000 });
    return tarPath;
  } finally {
    await fs.rm(work, { recursive: true, force: true });
  }
}
