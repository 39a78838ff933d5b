/**
 * The CRI ImageService over core's image drivers (OCI images; an external
 * rootfs is no CRI image).
 */
import { IsulaError, isIsulaError, type DaemonConfig, type Engine, type ImageDriver, type ImageRef, type RegistryAuth } from '@isula/core';
import { invalid } from './errors.js';
import { nowNanos } from './time.js';

type Req = Record<string, unknown>;

interface AuthConfig { username: string; password: string; auth: string; server_address: string; identity_token: string; registry_token: string }

export class CriImages {
  readonly #engine: () => Engine;
  readonly #config: Readonly<DaemonConfig>;

  constructor(engine: () => Engine, config: Readonly<DaemonConfig>) {
    this.#engine = engine;
    this.#config = config;
  }

  #drivers(): ImageDriver[] {
    return this.#engine().imageDrivers().filter((d) => d.format !== 'external');
  }

  async #resolve(reference: string, signal: AbortSignal): Promise<{ driver: ImageDriver; ref: ImageRef } | undefined> {
    for (const driver of this.#drivers()) {
      const ref = await driver.resolve(reference, { signal }).catch((err: unknown) => {
        // A malformed name is "not present" for ImageStatus, as containerd's.
        if (isIsulaError(err, 'IMAGE_REFERENCE_INVALID')) return undefined;
        throw err;
      });
      if (ref !== undefined) return { driver, ref };
    }
    return undefined;
  }

  async #image(driver: ImageDriver, ref: ImageRef, signal: AbortSignal, verbose = false): Promise<{ image: Req; info: Record<string, string> }> {
    const i = await driver.inspect(ref, { signal });
    const user = i.config.user ?? '';
    const [u = ''] = user.split(':');
    const image: Req = {
      id: i.id,
      repo_tags: i.repoTags,
      repo_digests: i.repoDigests,
      size: String(i.sizeBytes),
      ...(/^\d+$/.test(u) ? { uid: { value: u } } : { username: u }),
      spec: { image: i.id, annotations: {} },
      pinned: false,
    };
    const info: Record<string, string> = {};
    if (verbose) info['info'] = JSON.stringify({ imageSpec: i.docker, chainID: '', config: i.config });
    return { image, info };
  }

  async listImages(req: { filter: { image: { image: string } | null } | null }): Promise<Req> {
    const signal = AbortSignal.timeout(60_000);
    const wanted = req.filter?.image?.image ?? '';
    const images: Req[] = [];
    if (wanted !== '') {
      const found = await this.#resolve(wanted, signal);
      if (found !== undefined) images.push((await this.#image(found.driver, found.ref, signal)).image);
      return { images };
    }
    for (const driver of this.#drivers()) {
      for (const s of await driver.list({ signal })) {
        const ref: ImageRef = { reference: s.id, format: driver.format, id: s.id };
        images.push((await this.#image(driver, ref, signal)).image);
      }
    }
    return { images };
  }

  async imageStatus(req: { image: { image: string } | null; verbose: boolean }): Promise<Req> {
    const name = req.image?.image ?? '';
    if (name === '') throw invalid('ImageStatus: image.image is required');
    const signal = AbortSignal.timeout(60_000);
    const found = await this.#resolve(name, signal);
    // Not present is an empty answer, not an error (the CRI's contract).
    if (found === undefined) return { image: null, info: {} };
    return this.#image(found.driver, found.ref, signal, req.verbose);
  }

  async pullImage(req: { image: { image: string } | null; auth: AuthConfig | null }): Promise<Req> {
    const name = req.image?.image ?? '';
    if (name === '') throw invalid('PullImage: image.image is required');
    const driver = this.#drivers().find((d) => d.pull !== undefined);
    if (driver?.pull === undefined) throw new IsulaError('NOT_IMPLEMENTED', 'no loaded image driver can pull images');
    const auth = toRegistryAuth(req.auth);
    const result = await driver.pull(name, { signal: AbortSignal.timeout(30 * 60_000), ...(auth !== undefined && { auth }) });
    return { image_ref: result.id };
  }

  async removeImage(req: { image: { image: string } | null }): Promise<Req> {
    const name = req.image?.image ?? '';
    if (name === '') throw invalid('RemoveImage: image.image is required');
    const signal = AbortSignal.timeout(60_000);
    const found = await this.#resolve(name, signal);
    if (found === undefined) return {}; // idempotent
    if (found.driver.remove === undefined) throw new IsulaError('NOT_IMPLEMENTED', `the ${found.driver.format} image driver cannot remove images`);
    // The CRI removes the image, whatever name it was asked by (all its tags), as containerd does.
    await found.driver.remove(found.ref.id, { signal, force: true }).catch((err: unknown) => {
      if (!isIsulaError(err, 'IMAGE_NOT_FOUND')) throw err;
    });
    return {};
  }

  async imageFsInfo(): Promise<Req> {
    const signal = AbortSignal.timeout(60_000);
    let used = 0;
    for (const driver of this.#drivers()) for (const s of await driver.list({ signal })) used += s.sizeBytes;
    // Bytes are the images' own; inodes are left out (optional in the CRI): counting them means walking every layer.
    const usage = { timestamp: nowNanos(), fs_id: { mountpoint: this.#config.graph }, used_bytes: { value: String(used) } };
    return { image_filesystems: [usage], container_filesystems: [] };
  }
}

function toRegistryAuth(a: AuthConfig | null): RegistryAuth | undefined {
  if (a === null) return undefined;
  let { username, password } = a;
  if (a.auth !== '' && username === '') {
    const decoded = Buffer.from(a.auth, 'base64').toString('utf8');
    const i = decoded.indexOf(':');
    if (i < 0) throw invalid('PullImage: auth.auth must be base64 of "user:password"');
    username = decoded.slice(0, i);
    password = decoded.slice(i + 1);
  }
  const out: RegistryAuth = {};
  if (username !== '') out.username = username;
  if (password !== '') out.password = password;
  if (a.identity_token !== '') out.identityToken = a.identity_token;
  if (a.registry_token !== '') out.registryToken = a.registry_token;
  return Object.keys(out).length === 0 ? undefined : out;
}
