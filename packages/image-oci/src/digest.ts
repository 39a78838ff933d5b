/**
 * Content digests as OCI writes them (`sha256:<64 hex>`), computed while the
 * bytes stream past. Only sha256: the image spec requires it, and every
 * registry and Docker layer id uses it.
 */
import { createHash, type Hash } from 'node:crypto';
import { IsulaError } from '@isula/core';

export const SHA256_DIGEST = /^sha256:[a-f0-9]{64}$/;

/** Docker's short form of a digest: its first 12 hex digits (a layer's id in progress lines). */
export function shortDigest(digest: string): string {
  return digest.replace(/^sha256:/, '').slice(0, 12);
}

/** A running sha256 plus a byte count. */
export class Sha256Counter {
  readonly #hash: Hash = createHash('sha256');
  sizeBytes = 0;

  update(chunk: Buffer): void {
    this.#hash.update(chunk);
    this.sizeBytes += chunk.length;
  }

  /** `sha256:<hex>`; call once, after the last `update`. */
  digest(): string {
    return `sha256:${this.#hash.digest('hex')}`;
  }
}

/** Throws IMAGE_LAYER_INVALID unless `value` is a `sha256:<64 lowercase hex>` digest. */
export function assertSha256Digest(value: string, what: string): void {
  if (!SHA256_DIGEST.test(value)) {
    throw new IsulaError('IMAGE_LAYER_INVALID', `${what} ${JSON.stringify(value)} is not a sha256 digest`, {
      details: { [what]: value },
    });
  }
}
