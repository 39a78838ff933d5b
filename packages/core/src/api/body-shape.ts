/**
 * Request-shape checks of the engine API, with the validators that
 * scripts/gen-validators.mjs generates at build time from the TypeScript
 * request types (ts-json-schema-generator + ajv standalone). A body of the
 * wrong shape is refused with the path of the first offending field before
 * any handler reads it, so no handler meets a number where it expects a list.
 */
import { createRequire } from 'node:module';
import { IsulaError, type ErrorCode } from '../errors.js';

interface AjvError { instancePath: string; message?: string; params?: Record<string, unknown> }
type Validator = ((data: unknown) => boolean) & { errors?: AjvError[] | null };

const require = createRequire(import.meta.url);
const loaded = new Map<string, Validator>();

/** Loaded on first use: a daemon that never sees the request never parses its validator. */
function validator(name: string): Validator {
  let v = loaded.get(name);
  if (v === undefined) {
    v = require(`./generated/${name}.cjs`) as Validator;
    loaded.set(name, v);
  }
  return v;
}

/**
 * Throws `code` naming the first field of `body` that does not have the shape
 * of `name`: `create-body` (POST /containers/create), `container-config`
 * (Docker's ContainerConfig, e.g. an image config's `config`).
 */
export function checkShape(name: 'create-body' | 'container-config', body: unknown, code: ErrorCode, what: string): void {
  const v = validator(name);
  if (v(body)) return;
  const e = v.errors?.[0];
  const field = e === undefined || e.instancePath === '' ? 'the body' : e.instancePath.slice(1).replaceAll('/', '.');
  const got = e === undefined || e.instancePath === '' ? undefined : valueAt(body, e.instancePath);
  const shown = got === undefined ? '' : ` (got ${truncate(JSON.stringify(got))})`;
  throw new IsulaError(code, `invalid ${what}: ${field} ${e?.message ?? 'has the wrong shape'}${shown}`, { details: { field } });
}

function valueAt(body: unknown, pointer: string): unknown {
  let cur = body;
  for (const part of pointer.split('/').slice(1)) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string, unknown>)[part.replaceAll('~1', '/').replaceAll('~0', '~')];
  }
  return cur;
}

function truncate(s: string | undefined): string {
  if (s === undefined) return 'undefined';
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}
