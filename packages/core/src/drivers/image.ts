/**
 * ImageDriver: an image format (OCI/Docker v2 images, external rootfs
 * directories). A driver claims references through the `resolveImageFormat`
 * hook and gives core the root filesystem and the image config the spec
 * builder reads. Operations a format does not support are absent.
 */
import type { DriverCallOptions } from './runtime.js';

/** The parts of an image's config the OCI spec builder reads (docker's `config`). */
export interface ImageRuntimeConfig {
  env?: string[];
  cmd?: string[];
  entrypoint?: string[];
  user?: string;
  workingDir?: string;
  exposedPorts?: string[];
  volumes?: string[];
  labels?: Record<string, string>;
  stopSignal?: string;
  healthcheck?: Record<string, unknown>;
}

export interface ImageSummary {
  /** The image id: for OCI images the config digest (`sha256:…`). */
  id: string;
  repoTags: string[];
  repoDigests: string[];
  created: Date;
  sizeBytes: number;
  /**
   * The layers making up `sizeBytes`, by an id shared between images (plugin
   * API 1.9): `system df` counts a layer two images share once. Without it
   * the image counts as one layer of its own.
   */
  layers?: { id: string; sizeBytes: number }[];
}

/** A user namespace's ids: container ids 0..size-1 are host ids uid..uid+size-1 (gid likewise). */
export interface IdMap {
  uid: number;
  gid: number;
  size: number;
}

export interface ImageRef {
  /** The reference as the user wrote it, normalised by the driver. */
  reference: string;
  /** Format name, e.g. "oci" or "external". */
  format: string;
  id: string;
}

/**
 * One progress message of a pull or push, Docker's JSONMessage without its
 * presentation: `id` names a layer (12 hex digits) or a tag; `status` is
 * Docker's wording ("Downloading", "Pull complete", "Digest: sha256:…").
 */
export interface TransferProgress {
  id?: string;
  status: string;
  current?: number;
  total?: number;
  /** Docker's `aux` (push reports `{Tag, Digest, Size}`). */
  aux?: Record<string, unknown>;
}
/** @deprecated the name before plugin API 1.4; same type. */
export type PullProgress = TransferProgress;

/** Credentials for one registry request (the engine API's `X-Registry-Auth`, or what `login` saved). */
export interface RegistryAuth {
  username?: string;
  password?: string;
  /** A refresh token (Docker's `identitytoken`). */
  identityToken?: string;
  /** A bearer token used as is (Docker's `registrytoken`). */
  registryToken?: string;
}

export interface PullOptions extends DriverCallOptions {
  onProgress?: (p: TransferProgress) => void;
  /** Overrides the stored credentials for this pull. */
  auth?: RegistryAuth;
  /** `os/arch[/variant]`; default linux and the host's architecture. */
  platform?: string;
}

export interface PullResult extends ImageRef {
  /** The manifest digest pulled (`sha256:…`). */
  digest: string;
  /** The reference already named this image before the pull. */
  upToDate: boolean;
}

/** One entry of Docker's image history (`GET /images/{name}/history`), newest first. */
export interface ImageHistoryItem {
  /** The image id for the entry of the image itself, `<missing>` for the entries below it. */
  Id: string;
  /** Unix seconds. */
  Created: number;
  CreatedBy: string;
  /** The image's tags on its own entry, null on the others. */
  Tags: string[] | null;
  /** Bytes the entry's layer adds (uncompressed); 0 for an entry without a layer. */
  Size: number;
  Comment: string;
}

/** One change of a container's writable layer (`GET /containers/{id}/changes`): Kind 0 modified, 1 added, 2 deleted. */
export interface ContainerChange {
  Path: string;
  Kind: 0 | 1 | 2;
}

export interface ImageDriver {
  /** Format name shown by `isula info` and in image records. */
  readonly format: string;

  /** Finds a local image; undefined when it is not present (not an error). */
  resolve(reference: string, opts: DriverCallOptions): Promise<ImageRef | undefined>;
  list(opts: DriverCallOptions): Promise<ImageSummary[]>;
  /** The image config for the spec builder, plus Docker's `ImageInspect` JSON for `isula inspect`. */
  inspect(ref: ImageRef, opts: DriverCallOptions): Promise<ImageSummary & { config: ImageRuntimeConfig; docker: Record<string, unknown> }>;

  /**
   * Pulls `reference` (name[:tag] or name@digest) from its registry (plugin
   * API 1.4). Nothing of a failed pull is visible as an image.
   */
  pull?(reference: string, opts: PullOptions): Promise<PullResult>;
  /** Pushes a local image to the registry its name names (plugin API 1.4). */
  push?(reference: string, opts: DriverCallOptions & { onProgress?: (p: TransferProgress) => void; auth?: RegistryAuth }): Promise<{ tag: string; digest: string; size: number }>;
  /**
   * Verifies credentials against a registry (`server`: host[:port], or a URL)
   * and, when they work, keeps them for later pulls and pushes (plugin API 1.4).
   * REGISTRY_UNAUTHORIZED with the registry's message when they do not.
   */
  login?(server: string, opts: DriverCallOptions & { username: string; password: string }): Promise<{ status: string }>;
  /** Forgets the credentials kept for `server`; false when there were none (plugin API 1.4). */
  logout?(server: string, opts: DriverCallOptions): Promise<boolean>;
  /** Loads an image archive (docker-archive, oci-archive ...); nothing is visible unless it all loads. */
  load?(archive: NodeJS.ReadableStream, opts: DriverCallOptions & { tag?: string }): Promise<ImageRef[]>;
  import?(archive: NodeJS.ReadableStream, opts: DriverCallOptions & { reference?: string }): Promise<ImageRef>;
  save?(refs: ImageRef[], opts: DriverCallOptions & { output: NodeJS.WritableStream }): Promise<void>;
  tag?(ref: ImageRef, opts: DriverCallOptions & { newReference: string }): Promise<void>;
  /**
   * What a container's writable layer changed against its image, Docker's
   * `ContainerChanges` in walk order (plugin API 1.9). Core leaves out the
   * mount points the runtime created (Docker keeps them in an init layer).
   */
  changes?(containerId: string, opts: DriverCallOptions): Promise<ContainerChange[]>;
  /**
   * Docker's commit (plugin API 1.9): the container's writable layer on top
   * of its image becomes a new image with `config` (Docker's ContainerConfig)
   * and one more history entry; tagged `reference` when given. `exclude`
   * paths stay out of the layer where the image has none (the mount points
   * the runtime made in a rootfs that lacked them).
   */
  commit?(containerId: string, opts: DriverCallOptions & { reference?: string; config: Record<string, unknown>; author?: string; comment?: string; createdBy?: string; exclude?: readonly string[] }): Promise<ImageRef>;
  /** Docker's image history: the config's `history`, each entry with the size of its layer (plugin API 1.9). */
  history?(ref: ImageRef, opts: DriverCallOptions): Promise<ImageHistoryItem[]>;
  /**
   * Docker's rmi: removes a tag, or the image with its last tag. IMAGE_IN_USE
   * when a container uses it. Returns what was untagged and deleted.
   */
  remove?(reference: string, opts: DriverCallOptions & { force?: boolean }): Promise<{ untagged: string[]; deleted: string[] }>;

  /**
   * Optional (plugin API 1.2): creates the container's writable layer at
   * create time without mounting it (the image is then in use). Drivers
   * without it get `mountRootfs` at create instead.
   */
  prepareRootfs?(containerId: string, image: ImageRef, opts: DriverCallOptions): Promise<string>;
  /**
   * Prepares the container's root filesystem (e.g. an overlay mount) and
   * returns its path. Idempotent: mounting twice returns the same path.
   */
  mountRootfs(containerId: string, image: ImageRef, opts: DriverCallOptions): Promise<string>;
  /**
   * Optional (plugin API 1.2): checks a prepared root filesystem at create,
   * for formats whose rootfs the engine did not build (an external rootfs):
   * throws CONTAINER_CMD_NOT_FOUND when `command` cannot be found in it.
   */
  checkRootfs?(rootfs: string, opts: DriverCallOptions & { command: string; env: readonly string[] }): Promise<void>;
  /**
   * Optional (plugin API 1.5): for user namespaces, makes every file of the
   * container's (prepared) root filesystem owned by the host ids the map
   * gives its container ids (id N < size becomes start + N), without
   * touching what other containers share. Idempotent; after it every mount
   * of this rootfs shows the shifted owners. Drivers without it cannot run
   * remapped containers (core refuses at create).
   */
  remapRootfs?(containerId: string, image: ImageRef, opts: DriverCallOptions & { idMap: IdMap }): Promise<void>;
  /** Undoes mountRootfs; idempotent and safe after a crash. */
  unmountRootfs(containerId: string, opts: DriverCallOptions): Promise<void>;
  /** Removes the container's writable layer for good; idempotent. */
  removeRootfs(containerId: string, opts: DriverCallOptions): Promise<void>;
}
