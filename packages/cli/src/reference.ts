/**
 * Docker image references as docker's CLI reads them
 * (`github.com/docker/distribution/reference`, normalize.go and regexp.go):
 * `busybox` is `docker.io/library/busybox`, a first component with a `.` or
 * `:` (or `localhost`) is a registry. Pull and push send the familiar name
 * and the tag (or digest) as the daemon's API wants them; `pull -q` prints
 * the full reference. Pure: no I/O.
 */
import { UsageError } from './usage-error.js';

export const DEFAULT_DOMAIN = 'docker.io';
const LEGACY_DEFAULT_DOMAIN = 'index.docker.io';
const OFFICIAL_REPO_NAME = 'library';
const NAME_TOTAL_LENGTH_MAX = 255;

/** A named reference: `domain/path[:tag][@digest]`. */
export interface NamedReference {
  domain: string;
  path: string;
  tag?: string;
  digest?: string;
}

// regexp.go: path components are lowercase alphanumerics joined by `.`, `_`, `__` or dashes.
const NAME_COMPONENT = '[a-z0-9]+(?:(?:[._]|__|[-]*)[a-z0-9]+)*';
const DOMAIN_COMPONENT = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const DOMAIN = `(?:${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*|\\[[a-fA-F0-9:]+\\])(?::[0-9]+)?`;
const TAG = '[\\w][\\w.-]{0,127}';
const DIGEST = '[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}';
const REFERENCE = new RegExp(`^((?:${DOMAIN}/)?${NAME_COMPONENT}(?:/${NAME_COMPONENT})*)(?::(${TAG}))?(?:@(${DIGEST}))?$`);
const ANCHORED_IDENTIFIER = /^[a-f0-9]{64}$/;

/** docker's `splitDockerDomain`: which part of a name is a registry. */
function splitDockerDomain(name: string): [domain: string, remainder: string] {
  const i = name.indexOf('/');
  let domain: string;
  let remainder: string;
  const first = i < 0 ? '' : name.slice(0, i);
  if (i < 0 || (!/[.:]/.test(first) && first !== 'localhost' && first.toLowerCase() === first)) {
    domain = DEFAULT_DOMAIN;
    remainder = name;
  } else {
    domain = first;
    remainder = name.slice(i + 1);
  }
  if (domain === LEGACY_DEFAULT_DOMAIN) domain = DEFAULT_DOMAIN;
  if (domain === DEFAULT_DOMAIN && !remainder.includes('/')) remainder = `${OFFICIAL_REPO_NAME}/${remainder}`;
  return [domain, remainder];
}

/**
 * docker's `ParseNormalizedNamed`, with its error words:
 * `invalid reference format: repository name must be lowercase`.
 * Throws UsageError.
 */
export function parseNormalizedNamed(s: string): NamedReference {
  if (ANCHORED_IDENTIFIER.test(s)) throw new UsageError(`invalid repository name (${s}), cannot specify 64-byte hexadecimal strings`);
  if (s === '') throw new UsageError('invalid reference format: repository name must have at least one component');
  const [domain, remainder] = splitDockerDomain(s);
  const tagSep = remainder.indexOf(':');
  const remoteName = tagSep < 0 ? remainder : remainder.slice(0, tagSep);
  if (remoteName.toLowerCase() !== remoteName) throw new UsageError('invalid reference format: repository name must be lowercase');
  const m = REFERENCE.exec(`${domain}/${remainder}`);
  if (m === null) throw new UsageError('invalid reference format');
  const name = m[1] ?? '';
  if (name.length > NAME_TOTAL_LENGTH_MAX) throw new UsageError(`repository name must not be more than ${NAME_TOTAL_LENGTH_MAX} characters`);
  const digest = m[3];
  if (digest !== undefined && digest.startsWith('sha256:') && digest.length !== 'sha256:'.length + 64) throw new UsageError('invalid checksum digest length');
  const ref: NamedReference = { domain, path: name.slice(domain.length + 1) };
  if (m[2] !== undefined) ref.tag = m[2];
  if (digest !== undefined) ref.digest = digest;
  return ref;
}

/** docker's `ParseAnyReference`: a bare 64-hex id is no name (undefined), anything else must parse. */
export function parseAnyReference(s: string): NamedReference | undefined {
  if (ANCHORED_IDENTIFIER.test(s)) return undefined;
  return parseNormalizedNamed(s);
}

/** No tag and no digest. */
export const isNameOnly = (r: NamedReference): boolean => r.tag === undefined && r.digest === undefined;

/** docker's `TagNameOnly`: `latest` when neither tag nor digest is given. */
export function tagNameOnly(r: NamedReference): NamedReference {
  return isNameOnly(r) ? { ...r, tag: 'latest' } : r;
}

/** docker's `FamiliarName`: `busybox`, `user/app`, `127.0.0.1:5000/app`. */
export function familiarName(r: NamedReference): string {
  if (r.domain !== DEFAULT_DOMAIN) return `${r.domain}/${r.path}`;
  const parts = r.path.split('/');
  return parts.length === 2 && parts[0] === OFFICIAL_REPO_NAME ? parts[1] ?? r.path : r.path;
}

const suffix = (r: NamedReference) => `${r.tag === undefined ? '' : `:${r.tag}`}${r.digest === undefined ? '' : `@${r.digest}`}`;

/** docker's `FamiliarString`: `busybox:latest` (what "Unable to find image" names). */
export const familiarString = (r: NamedReference): string => `${familiarName(r)}${suffix(r)}`;

/** The full reference (`String()`): `docker.io/library/busybox:latest`. */
export const referenceString = (r: NamedReference): string => `${r.domain}/${r.path}${suffix(r)}`;

/**
 * The query of `POST /images/create` for a pull, as docker's client builds it
 * (`ImagePull`/`ImageCreate`): the familiar name, and the digest when there is
 * one, else the tag (`latest` by default).
 */
export function pullQuery(r: NamedReference): { fromImage: string; tag: string } {
  return { fromImage: familiarName(r), tag: r.digest ?? r.tag ?? 'latest' };
}

/**
 * docker's `registry.ConvertToHostname` for login and logout: the scheme and
 * any path dropped (`https://reg.example.com/v2/` → `reg.example.com`);
 * docker's legacy `index.docker.io` is `docker.io`, as in references.
 */
export function registryHostname(server: string): string {
  let stripped = server.trim();
  if (stripped.startsWith('http://')) stripped = stripped.slice('http://'.length);
  else if (stripped.startsWith('https://')) stripped = stripped.slice('https://'.length);
  const host = stripped.split('/')[0] ?? '';
  return host === LEGACY_DEFAULT_DOMAIN ? DEFAULT_DOMAIN : host;
}

/**
 * `REPO[:TAG]` as the `repo` and `tag` query parameters of import and commit,
 * read as docker's client reads it (ParseNormalizedNamed: a `:` in a registry
 * host is not a tag, a bad name fails before any request); the repository is
 * the familiar name. A digest reference is refused with `digestRefusal`
 * (docker's words differ between commit and import). Throws UsageError.
 */
export function splitRepoTag(reference: string | undefined, digestRefusal: string): { repo?: string; tag?: string } {
  if (reference === undefined) return {};
  const ref = parseNormalizedNamed(reference);
  if (ref.digest !== undefined) throw new UsageError(digestRefusal);
  return { repo: familiarName(ref), ...(ref.tag !== undefined && { tag: ref.tag }) };
}
