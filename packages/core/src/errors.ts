/**
 * The one error type of the engine. Every failure that reaches a user carries
 * a stable `code`; each code has one kind, and the kind alone decides the HTTP
 * status (engine API) and the gRPC status (CRI). Nothing else invents a status.
 */

export type ErrorKind =
  | 'invalidArgument'
  | 'notFound'
  | 'alreadyExists'
  | 'conflict'
  | 'permissionDenied'
  | 'unauthenticated'
  | 'unavailable'
  | 'timeout'
  | 'canceled'
  | 'unimplemented'
  | 'internal';

/** HTTP status and gRPC status code (numeric, as in grpc's `status` enum) per kind. */
export const ERROR_KINDS: Readonly<Record<ErrorKind, { http: number; grpc: number }>> = Object.freeze({
  invalidArgument: { http: 400, grpc: 3 },
  notFound: { http: 404, grpc: 5 },
  alreadyExists: { http: 409, grpc: 6 },
  conflict: { http: 409, grpc: 9 },
  permissionDenied: { http: 403, grpc: 7 },
  unauthenticated: { http: 401, grpc: 16 },
  unavailable: { http: 503, grpc: 14 },
  timeout: { http: 504, grpc: 4 },
  canceled: { http: 499, grpc: 1 },
  unimplemented: { http: 501, grpc: 12 },
  internal: { http: 500, grpc: 13 },
});

/** Every code the engine uses, with its kind. Core's README explains each. */
export const ERROR_CODES = Object.freeze({
  // configuration and start-up
  CONFIG_INVALID: 'invalidArgument',
  CONFIG_NOT_FOUND: 'notFound',
  DAEMON_ALREADY_RUNNING: 'conflict',
  // plugins
  PLUGIN_NOT_FOUND: 'notFound',
  PLUGIN_API_MISMATCH: 'invalidArgument',
  PLUGIN_INVALID: 'invalidArgument',
  PLUGIN_APPLY_FAILED: 'internal',
  PLUGIN_OPTIONS_INVALID: 'invalidArgument',
  PLUGIN_HOOK_FAILED: 'internal',
  // engine API
  API_ROUTE_NOT_FOUND: 'notFound',
  API_METHOD_NOT_ALLOWED: 'invalidArgument',
  API_BAD_REQUEST: 'invalidArgument',
  API_BODY_TOO_LARGE: 'invalidArgument',
  API_UNSUPPORTED_MEDIA_TYPE: 'invalidArgument',
  API_VERSION_UNSUPPORTED: 'invalidArgument',
  // drivers
  RUNTIME_NOT_FOUND: 'notFound',
  RUNTIME_UNAVAILABLE: 'unavailable',
  IMAGE_FORMAT_UNKNOWN: 'notFound',
  IMAGE_NOT_FOUND: 'notFound',
  IMAGE_IN_USE: 'conflict',
  IMAGE_REFERENCE_INVALID: 'invalidArgument',
  IMAGE_ARCHIVE_INVALID: 'invalidArgument',
  IMAGE_LAYER_INVALID: 'invalidArgument',
  IMAGE_LAYER_UNSAFE: 'invalidArgument',
  IMAGE_DIGEST_MISMATCH: 'invalidArgument',
  IMAGE_STORE_CORRUPT: 'internal',
  /** A manifest the engine will not pull: Docker schema 1, an unknown media type. */
  IMAGE_MANIFEST_UNSUPPORTED: 'invalidArgument',
  /** A manifest list / OCI index without an image for the wanted platform. */
  IMAGE_PLATFORM_NOT_FOUND: 'notFound',
  // registries
  /** The registry refused the credentials (or asked for some and none are stored). */
  REGISTRY_UNAUTHORIZED: 'unauthenticated',
  /** The registry could not be reached, or kept answering 5xx after the retries. */
  REGISTRY_UNAVAILABLE: 'unavailable',
  /** The registry stalled: no reply (or no bytes) within the stall timeout. */
  REGISTRY_TIMEOUT: 'timeout',
  /** A reply that breaks the protocol: too large, too many redirects, malformed JSON, wrong size. */
  REGISTRY_REPLY_INVALID: 'unavailable',
  /** logout of a registry the engine keeps no credentials for. */
  REGISTRY_CREDENTIALS_NOT_FOUND: 'notFound',
  // networks
  /** No network of that name (`--network`, `isula network inspect/rm`). */
  NETWORK_NOT_FOUND: 'notFound',
  NETWORK_ALREADY_EXISTS: 'conflict',
  /** A network still has containers attached (`isula network rm`). */
  NETWORK_IN_USE: 'conflict',
  /** A conflist that does not parse or validate, a bad subnet or mode; the message names the file or value. */
  NETWORK_CONFIG_INVALID: 'invalidArgument',
  /** A CNI plugin binary is missing from every cni-bin-dir. */
  NETWORK_PLUGIN_NOT_FOUND: 'notFound',
  /** A CNI plugin failed; the message carries the plugin's own (e.g. an exhausted subnet). */
  NETWORK_PLUGIN_FAILED: 'internal',
  /** A published host port is taken (`port is already allocated`). */
  NETWORK_PORT_IN_USE: 'conflict',
  // volumes
  VOLUME_NOT_FOUND: 'notFound',
  /** A volume a container refers to (`isula volume rm`); the message names the containers. */
  VOLUME_IN_USE: 'conflict',
  /** A name with characters outside [a-zA-Z0-9_.-] (a `/` ...), or driver options the local driver lacks. */
  VOLUME_NAME_INVALID: 'invalidArgument',
  // containers
  CONTAINER_NOT_FOUND: 'notFound',
  CONTAINER_ID_AMBIGUOUS: 'invalidArgument',
  CONTAINER_NAME_IN_USE: 'conflict',
  CONTAINER_CONFIG_INVALID: 'invalidArgument',
  /** The state forbids the operation (start a paused one, rm a running one without force ...). */
  CONTAINER_STATE_CONFLICT: 'conflict',
  /** The command does not exist in the image (docker run exits 127). */
  CONTAINER_CMD_NOT_FOUND: 'invalidArgument',
  /** The command exists but cannot be run (docker run exits 126). */
  CONTAINER_CMD_NOT_EXECUTABLE: 'invalidArgument',
  /** The OCI runtime (or its monitor) refused or failed an operation; the message carries its reason. */
  RUNTIME_FAILED: 'internal',
  /** A path inside a container (cp, archive) does not exist. */
  CONTAINER_PATH_NOT_FOUND: 'notFound',
  /** A path inside a container exists but cannot be used that way (extraction point not a directory, dir over non-dir). */
  CONTAINER_PATH_INVALID: 'invalidArgument',
  /** An archive sent to a container is malformed or would write outside its root filesystem. */
  CONTAINER_ARCHIVE_INVALID: 'invalidArgument',
  /** No such exec instance. */
  EXEC_NOT_FOUND: 'notFound',
  /** The container's log driver keeps no log to read (log-driver none): 501 as Docker's NotImplemented. */
  LOGS_UNAVAILABLE: 'unimplemented',
  // generic
  CANCELED: 'canceled',
  TIMEOUT: 'timeout',
  NOT_IMPLEMENTED: 'unimplemented',
  INTERNAL: 'internal',
} as const satisfies Record<string, ErrorKind>);

export type ErrorCode = keyof typeof ERROR_CODES;

export interface IsulaErrorOptions {
  cause?: unknown;
  details?: Record<string, unknown>;
  /** Overrides the HTTP status for the few routes where Docker documents another one (e.g. 304). */
  httpStatus?: number;
}

export class IsulaError extends Error {
  override readonly name = 'IsulaError';
  readonly code: ErrorCode;
  readonly details: Record<string, unknown> | undefined;
  readonly #httpStatus: number | undefined;

  constructor(code: ErrorCode, message: string, options: IsulaErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.details = options.details;
    this.#httpStatus = options.httpStatus;
  }

  get kind(): ErrorKind {
    return ERROR_CODES[this.code];
  }

  get httpStatus(): number {
    return this.#httpStatus ?? ERROR_KINDS[this.kind].http;
  }

  get grpcStatus(): number {
    return ERROR_KINDS[this.kind].grpc;
  }

  /**
   * `err instanceof IsulaError` also holds for an IsulaError of another copy of
   * this package with a code this one knows: a plugin installed in a plugin dir
   * brings its own @isula/core, and its errors keep their codes (a 404 stays a 404).
   */
  static override [Symbol.hasInstance](value: unknown): boolean {
    if (Function.prototype[Symbol.hasInstance].call(this, value)) return true;
    if (this !== IsulaError || !(value instanceof Error) || value.name !== 'IsulaError') return false;
    const code = (value as { code?: unknown }).code;
    return typeof code === 'string' && Object.hasOwn(ERROR_CODES, code);
  }
}

export function isIsulaError(err: unknown, code?: ErrorCode): err is IsulaError {
  return err instanceof IsulaError && (code === undefined || err.code === code);
}

/** Wraps anything thrown into an IsulaError, keeping the original as `cause`. */
export function toIsulaError(err: unknown, code: ErrorCode = 'INTERNAL'): IsulaError {
  if (err instanceof IsulaError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new IsulaError(code, message, { cause: err });
}
