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
}

export interface ImageRef {
  /** The reference as the user wrote it, normalised by the driver. */
  reference: string;
  /** Format name, e.g. "oci" or "external". */
  format: string;
  id: string;
}

export interface PullProgress {
  id: string;
  status: string;
  current?: number;
  total?: number;
}

export interface ImageDriver {
  /** Format name shown by `isula info` and in image records. */
  readonly format: string;

  /** Finds a local image; undefined when it is not present (not an error). */
  resolve(reference: string, opts: DriverCallOptions): Promise<ImageRef | undefined>;
  list(opts: DriverCallOptions): Promise<ImageSummary[]>;
  /** The image config for the spec builder, plus Docker's `ImageInspect` JSON for `isula inspect`. */
  inspect(ref: ImageRef, opts: DriverCallOptions): Promise<ImageSummary & { config: ImageRuntimeConfig; docker: Record<string, unknown> }>;

  pull?(reference: string, opts: DriverCallOptions & { onProgress?: (p: PullProgress) => void; auth?: { username: string; password: string } }): Promise<ImageRef>;
  /** Loads an image archive (docker-archive, oci-archive ...); nothing is visible unless it all loads. */
  load?(archive: NodeJS.ReadableStream, opts: DriverCallOptions & { tag?: string }): Promise<ImageRef[]>;
  import?(archive: NodeJS.ReadableStream, opts: DriverCallOptions & { reference?: string }): Promise<ImageRef>;
  save?(refs: ImageRef[], opts: DriverCallOptions & { output: NodeJS.WritableStream }): Promise<void>;
  tag?(ref: ImageRef, opts: DriverCallOptions & { newReference: string }): Promise<void>;
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
  /** Undoes mountRootfs; idempotent and safe after a crash. */
  unmountRootfs(containerId: string, opts: DriverCallOptions): Promise<void>;
  /** Removes the container's writable layer for good; idempotent. */
  removeRootfs(containerId: string, opts: DriverCallOptions): Promise<void>;
}
