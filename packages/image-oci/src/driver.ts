/** The `ImageDriver` over the image store: what core sees of OCI/Docker images. */
import { IsulaError } from '@isula/core';
import type { ContainerChange, DriverCallOptions, IdMap, ImageDriver, ImageHistoryItem, ImageRef, ImageRuntimeConfig, ImageSummary, PullOptions, PullResult, RegistryAuth, TransferProgress } from '@isula/core';
import type { Registry } from './registry/index.js';
import { familiarTag } from './reference.js';
import type { ImageConfig, ImageRecord, ImageStore } from './store.js';

export const FORMAT = 'oci';

function summary(img: ImageRecord): ImageSummary {
  return {
    id: img.id,
    repoTags: img.repoTags.map(familiarTag),
    repoDigests: img.repoDigests,
    created: new Date(img.created),
    sizeBytes: img.sizeBytes,
  };
}

function runtimeConfig(cfg: ImageConfig): ImageRuntimeConfig {
  const c = (cfg.config ?? {}) as Record<string, unknown>;
  const strings = (v: unknown) => (Array.isArray(v) && v.every((x) => typeof x === 'string') ? v : undefined);
  const out: ImageRuntimeConfig = {};
  const env = strings(c['Env']); if (env) out.env = env;
  const cmd = strings(c['Cmd']); if (cmd) out.cmd = cmd;
  const ep = strings(c['Entrypoint']); if (ep) out.entrypoint = ep;
  if (typeof c['User'] === 'string') out.user = c['User'];
  if (typeof c['WorkingDir'] === 'string') out.workingDir = c['WorkingDir'];
  if (typeof c['ExposedPorts'] === 'object' && c['ExposedPorts'] !== null) out.exposedPorts = Object.keys(c['ExposedPorts']);
  if (typeof c['Volumes'] === 'object' && c['Volumes'] !== null) out.volumes = Object.keys(c['Volumes']);
  if (typeof c['Labels'] === 'object' && c['Labels'] !== null) out.labels = c['Labels'] as Record<string, string>;
  if (typeof c['StopSignal'] === 'string') out.stopSignal = c['StopSignal'];
  if (typeof c['Healthcheck'] === 'object' && c['Healthcheck'] !== null) out.healthcheck = c['Healthcheck'] as Record<string, unknown>;
  return out;
}

export class OciImageDriver implements ImageDriver {
  readonly format = FORMAT;
  readonly #store: ImageStore;
  readonly #registry: Registry | undefined;

  constructor(store: ImageStore, registry?: Registry) {
    this.#store = store;
    this.#registry = registry;
  }

  #reg(): Registry {
    if (this.#registry === undefined) throw new Error('no registry client configured');
    return this.#registry;
  }

  pull(reference: string, opts: PullOptions): Promise<PullResult> {
    return this.#reg().pull(reference, opts);
  }

  push(reference: string, opts: DriverCallOptions & { onProgress?: (p: TransferProgress) => void; auth?: RegistryAuth }): Promise<{ tag: string; digest: string; size: number }> {
    return this.#reg().push(reference, opts);
  }

  login(server: string, opts: DriverCallOptions & { username: string; password: string }): Promise<{ status: string }> {
    return this.#reg().login(server, opts);
  }

  logout(server: string, _opts: DriverCallOptions): Promise<boolean> {
    return this.#reg().logout(server);
  }

  async resolve(reference: string, _opts: DriverCallOptions): Promise<ImageRef | undefined> {
    const img = this.#store.find(reference);
    return img === undefined ? undefined : { reference, format: FORMAT, id: img.id };
  }

  async list(_opts: DriverCallOptions): Promise<ImageSummary[]> {
    return this.#store.list().map((img) => ({ ...summary(img), layers: img.layers.map((c) => ({ id: c, sizeBytes: this.#store.layer(c)?.sizeBytes ?? 0 })) }));
  }

  async inspect(ref: ImageRef, _opts: DriverCallOptions) {
    const img = this.#store.get(ref.id);
    const cfg = await this.#store.config(img);
    const s = summary(img);
    const docker: Record<string, unknown> = {
      Id: img.id,
      RepoTags: s.repoTags,
      RepoDigests: img.repoDigests,
      Parent: '',
      Comment: '',
      Created: img.created,
      Container: '',
      ContainerConfig: {},
      DockerVersion: '',
      Author: cfg.author ?? '',
      Config: cfg.config ?? {},
      Architecture: cfg.architecture ?? '',
      Os: cfg.os ?? '',
      Size: img.sizeBytes,
      VirtualSize: img.sizeBytes,
      GraphDriver: {
        Name: 'overlay2',
        Data: {
          LowerDir: img.layers.slice(0, -1).reverse().map((c) => this.#store.layerDir(c)).join(':'),
          UpperDir: this.#store.layerDir(img.layers[img.layers.length - 1] ?? ''),
        },
      },
      RootFS: { Type: 'layers', Layers: img.layers.map((c) => this.#store.layer(c)?.diffId ?? '') },
      Metadata: { LastTagTime: img.loadedAt },
    };
    return { ...s, config: runtimeConfig(cfg), docker };
  }

  /**
   * Docker's ImageHistory: the config's `history`, newest first; each entry
   * not marked `empty_layer` takes the next layer, base first, and shows its
   * uncompressed size. The image's own entry carries its id and tags; the
   * ones below are `<missing>` (a pulled image has no parent images).
   */
  async history(ref: ImageRef, _opts: DriverCallOptions): Promise<ImageHistoryItem[]> {
    const img = this.#store.get(ref.id);
    const cfg = await this.#store.config(img);
    const items: ImageHistoryItem[] = [];
    let layer = 0;
    for (const raw of cfg.history ?? []) {
      const h = (typeof raw === 'object' && raw !== null ? raw : {}) as Record<string, unknown>;
      const text = (k: string): string => (typeof h[k] === 'string' ? h[k] : '');
      let size = 0;
      if (h['empty_layer'] !== true) {
        const chain = img.layers[layer];
        if (chain === undefined) throw new IsulaError('IMAGE_STORE_CORRUPT', `image ${img.id.slice(7, 19)}: too many non-empty layers in its history section`);
        size = this.#store.layer(chain)?.sizeBytes ?? 0;
        layer += 1;
      }
      const created = Date.parse(text('created'));
      items.unshift({ Id: '<missing>', Created: Number.isNaN(created) ? 0 : Math.floor(created / 1000), CreatedBy: text('created_by'), Tags: null, Size: size, Comment: text('comment') });
    }
    const top = items[0];
    if (top !== undefined) {
      top.Id = img.id;
      top.Tags = img.repoTags.length > 0 ? img.repoTags.map(familiarTag) : null;
    }
    return items;
  }

  async load(archive: NodeJS.ReadableStream, opts: DriverCallOptions & { tag?: string }): Promise<ImageRef[]> {
    const images = await this.#store.load(archive, { signal: opts.signal, ...(opts.tag !== undefined && { tag: opts.tag }) });
    return images.flatMap((img) =>
      img.archiveTags.length === 0 ? [{ reference: '', format: FORMAT, id: img.id }] : img.archiveTags.map((t) => ({ reference: familiarTag(t), format: FORMAT, id: img.id })));
  }

  async save(refs: ImageRef[], opts: DriverCallOptions & { output: NodeJS.WritableStream }): Promise<void> {
    await this.#store.save(refs.map((r) => r.reference || r.id), opts.output, { signal: opts.signal });
  }

  async import(archive: NodeJS.ReadableStream, opts: DriverCallOptions & { reference?: string }): Promise<ImageRef> {
    const img = await this.#store.import(archive, { signal: opts.signal, ...(opts.reference !== undefined && { reference: opts.reference }) });
    return { reference: img.repoTags[0] !== undefined ? familiarTag(img.repoTags[0]) : '', format: FORMAT, id: img.id };
  }

  async tag(ref: ImageRef, opts: DriverCallOptions & { newReference: string }): Promise<void> {
    await this.#store.tag(ref.id, opts.newReference);
  }

  async remove(reference: string, opts: DriverCallOptions & { force?: boolean }) {
    const r = await this.#store.remove(reference, opts.force === undefined ? {} : { force: opts.force });
    return { untagged: r.untagged.map((u) => (u.includes('@') ? u : familiarTag(u))), deleted: r.deleted };
  }

  async prepareRootfs(containerId: string, image: ImageRef, _opts: DriverCallOptions): Promise<string> {
    return this.#store.prepareRootfs(containerId, image.id);
  }

  async mountRootfs(containerId: string, image: ImageRef, _opts: DriverCallOptions): Promise<string> {
    return this.#store.mountRootfs(containerId, image.id);
  }

  async remapRootfs(containerId: string, image: ImageRef, opts: DriverCallOptions & { idMap: IdMap }): Promise<void> {
    await this.#store.remapRootfs(containerId, image.id, opts.idMap);
  }

  async unmountRootfs(containerId: string, _opts: DriverCallOptions): Promise<void> {
    await this.#store.unmountRootfs(containerId);
  }

  async commit(containerId: string, opts: DriverCallOptions & { reference?: string; config: Record<string, unknown>; author?: string; comment?: string; createdBy?: string; exclude?: readonly string[] }): Promise<ImageRef> {
    const img = await this.#store.commit(containerId, {
      config: opts.config,
      signal: opts.signal,
      ...(opts.reference !== undefined && { reference: opts.reference }),
      ...(opts.author !== undefined && { author: opts.author }),
      ...(opts.comment !== undefined && { comment: opts.comment }),
      ...(opts.createdBy !== undefined && { createdBy: opts.createdBy }),
      ...(opts.exclude !== undefined && { exclude: opts.exclude }),
    });
    return { reference: opts.reference ?? '', format: FORMAT, id: img.id };
  }

  changes(containerId: string, _opts: DriverCallOptions): Promise<ContainerChange[]> {
    return this.#store.changes(containerId);
  }

  async removeRootfs(containerId: string, _opts: DriverCallOptions): Promise<void> {
    await this.#store.removeRootfs(containerId);
  }
}
