/**
 * Binds the container domain to the OCI spec builder (packages/core/src/spec).
 */
import type { Logger } from 'pino';
import { IsulaError } from '../errors.js';
import type { SpecBuilder } from './manager.js';

export function dockerSpecBuilder(_log: Logger): SpecBuilder {
  const missing = (): never => { throw new IsulaError('NOT_IMPLEMENTED', 'the spec builder is not wired yet'); };
  return { validate: () => {}, command: missing, writeFiles: missing, build: missing, resources: missing };
}
