import { IsulaError } from '../errors.js';

/** A bad value in the container's configuration (HTTP 400, `docker run` exits 125). */
export function invalidConfig(message: string, details?: Record<string, unknown>): IsulaError {
  return new IsulaError('CONTAINER_CONFIG_INVALID', message, details === undefined ? {} : { details });
}

/** A valid Docker option isula does not implement yet. */
export function notImplemented(message: string): IsulaError {
  return new IsulaError('NOT_IMPLEMENTED', message);
}
