/**
 * Image references, normalised as Docker does: `busybox` is
 * `docker.io/library/busybox:latest`, `name@sha256:<hex>` pins a digest.
 * Grammar after distribution's reference package (domain, path components,
 * tag `[\w][\w.-]{0,127}`, digest `sha256:[a-f0-9]{64}`).
 */
import { IsulaError } from '@isula/core';

export const DEFAULT_DOMAIN = 'docker.io';
export const DEFAULT_TAG = 'latest';

export interface Reference {
  /** `docker.io/library/busybox` */
  name: string;
  tag?: string;
  digest?: string;
}

const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const DOMAIN = /^(?:localhost|(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?))*|\[[0-9a-fA-F:]+\])(?::\d+)?$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const DIGEST = /^sha256:[a-f0-9]{64}$/;
export const IMAGE_ID = /^(?:sha256:)?([a-f0-9]{64})$/;

function invalid(ref: string, why: string): never {
  throw new IsulaError('IMAGE_REFERENCE_INVALID', `invalid reference format: ${JSON.stringify(ref)}: ${why}`);
}

/** Parses and normalises; without a tag or digest, the tag is `latest`. */
export function parseReference(ref: string, options: { defaultTag?: boolean } = {}): Reference {
  if (ref === '' || ref.length > 255 + 200) invalid(ref, 'empty or too long');
  let rest = ref;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST.test(digest)) invalid(ref, 'digest must be sha256:<64 hex digits>');
  }
  let tag: string | undefined;
  const colon = rest.lastIndexOf(':');
  if (colon > rest.lastIndexOf('/')) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) invalid(ref, 'bad tag');
  }
  if (rest === '') invalid(ref, 'empty name');
  const parts = rest.split('/');
  let domain = DEFAULT_DOMAIN;
  const first = parts[0] ?? '';
  if (parts.length > 1 && (first.includes('.') || first.includes(':') || first === 'localhost' || first !== first.toLowerCase())) {
    if (!DOMAIN.test(first)) invalid(ref, `bad registry host ${JSON.stringify(first)}`);
    domain = first;
    parts.shift();
  }
  if (domain === 'index.docker.io') domain = DEFAULT_DOMAIN;
  for (const p of parts) if (!PATH_COMPONENT.test(p)) invalid(ref, `bad name component ${JSON.stringify(p)} (lowercase letters, digits and separators only)`);
  if (domain === DEFAULT_DOMAIN && parts.length === 1) parts.unshift('library');
  const name = `${domain}/${parts.join('/')}`;
  if (tag === undefined && digest === undefined && options.defaultTag !== false) tag = DEFAULT_TAG;
  return { name, ...(tag !== undefined && { tag }), ...(digest !== undefined && { digest }) };
}

/** `docker.io/library/busybox:latest`, or `name@digest`. */
export function formatReference(r: Reference): string {
  return `${r.name}${r.tag !== undefined ? `:${r.tag}` : ''}${r.digest !== undefined ? `@${r.digest}` : ''}`;
}

/** Docker's display form: `busybox:latest` for docker.io/library images. */
export function familiarName(name: string): string {
  if (name.startsWith(`${DEFAULT_DOMAIN}/library/`)) return name.slice(`${DEFAULT_DOMAIN}/library/`.length);
  if (name.startsWith(`${DEFAULT_DOMAIN}/`)) return name.slice(`${DEFAULT_DOMAIN}/`.length);
  return name;
}

export function familiarTag(fullTag: string): string {
  const r = parseReference(fullTag);
  return formatReference({ ...r, name: familiarName(r.name) });
}
