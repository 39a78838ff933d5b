/** IsulaError (or anything thrown) → a gRPC status, by core's one table of kinds. */
import { status, type ServiceError, Metadata } from '@grpc/grpc-js';
import { IsulaError } from '@isula/core';

export function toServiceError(err: unknown): Partial<ServiceError> {
  // Duck-typed: a plugin loaded from another installation has its own IsulaError class.
  const code = typeof (err as { grpcStatus?: unknown }).grpcStatus === 'number' ? (err as { grpcStatus: number }).grpcStatus : status.UNKNOWN;
  const message = err instanceof Error ? err.message : String(err);
  const metadata = new Metadata();
  const isulaCode = (err as { code?: unknown }).code;
  if (typeof isulaCode === 'string') metadata.set('isula-error-code', isulaCode);
  return { code, details: message, message, metadata };
}

export function invalid(message: string): IsulaError {
  return new IsulaError('API_BAD_REQUEST', message);
}

export function notFound(what: string, id: string): IsulaError {
  return new IsulaError('CONTAINER_NOT_FOUND', `${what} "${id}" not found`);
}

export function unimplemented(message: string): IsulaError {
  return new IsulaError('NOT_IMPLEMENTED', message);
}
