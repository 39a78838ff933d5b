/**
 * Docker's `filters` query parameter, shared by the list and prune routes:
 * a JSON object of key → values, in the current form `{"dangling":["true"]}`
 * or the legacy form `{"dangling":{"true":true}}` older clients send.
 */
import { IsulaError } from '../errors.js';

export type Filters = Record<string, string[]>;

/**
 * Parses `raw` and rejects keys outside `allowedKeys` (API_BAD_REQUEST naming
 * the key, docker's `invalid filter '<key>'`). Absent or empty → `{}`.
 */
export function parseFilters(raw: string | null | undefined, allowedKeys: ReadonlySet<string>): Filters {
  if (raw === undefined || raw === null || raw === '') return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    throw new IsulaError('API_BAD_REQUEST', `invalid filters: not JSON: ${raw.slice(0, 80)}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new IsulaError('API_BAD_REQUEST', 'invalid filters: expected a JSON object');
  }
  const out: Filters = {};
  for (const [key, value] of Object.entries(parsed)) {
    if (!allowedKeys.has(key)) throw new IsulaError('API_BAD_REQUEST', `invalid filter '${key}'`);
    if (Array.isArray(value) && value.every((v) => typeof v === 'string')) out[key] = value;
    else if (typeof value === 'object' && value !== null && Object.values(value).every((v) => v === true)) out[key] = Object.keys(value);
    else throw new IsulaError('API_BAD_REQUEST', `invalid filter '${key}': expected a list of strings`);
  }
  return out;
}

/**
 * A boolean filter (`dangling=true`), docker's `GetBoolOrDefault`: `true`/`1`
 * or `false`/`0`; absent → `fallback`; none, both or anything else is an error.
 */
export function filterBool(filters: Filters, key: string, fallback: boolean): boolean {
  const values = filters[key];
  if (values === undefined) return fallback;
  const lower = values.map((v) => v.toLowerCase());
  const isTrue = lower.some((v) => v === 'true' || v === '1');
  const isFalse = lower.some((v) => v === 'false' || v === '0');
  const other = lower.some((v) => !['true', '1', 'false', '0'].includes(v));
  if (isTrue === isFalse || other) throw new IsulaError('API_BAD_REQUEST', `invalid filter '${key}=${values.join(',')}': want true or false`);
  return isTrue;
}

/**
 * Docker's `label` filters (`MatchKVList`): every `key` or `key=value` must be
 * in `labels`. With `negate` (prune's `label!`), none of them may be.
 */
export function matchLabels(wanted: readonly string[] | undefined, labels: Readonly<Record<string, string>>, negate = false): boolean {
  if (wanted === undefined || wanted.length === 0) return true;
  const has = (l: string) => {
    const eq = l.indexOf('=');
    return eq < 0 ? Object.hasOwn(labels, l) : Object.hasOwn(labels, l.slice(0, eq)) && labels[l.slice(0, eq)] === l.slice(eq + 1);
  };
  return negate ? !wanted.some(has) : wanted.every(has);
}

/** A prune's `label` and `label!` filters together: every `label` there, no `label!` there. */
export function matchPruneLabels(filters: Filters, labels: Readonly<Record<string, string>>): boolean {
  return matchLabels(filters['label'], labels) && matchLabels(filters['label!'], labels, true);
}

/**
 * Go's `path.Match` as a RegExp, which docker's `reference` filter uses:
 * `*` is any run of non-`/` characters, `?` one of them, `[a-z]` / `[^a-z]` a
 * class (which, as in Go, may match `/`), `\x` a literal x. A malformed pattern is API_BAD_REQUEST.
 */
export function globToRegExp(pattern: string): RegExp {
  const bad = () => new IsulaError('API_BAD_REQUEST', `invalid reference filter ${JSON.stringify(pattern)}: syntax error in pattern`);
  const esc = (c: string) => c.replace(/[\\^$.*+?()[\]{}|/-]/g, '\\$&');
  let re = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i] ?? '';
    if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else if (c === '\\') {
      i += 1;
      if (i >= pattern.length) throw bad();
      re += esc(pattern[i] ?? '');
    } else if (c === '[') {
      let j = i + 1;
      let cls = '';
      if (pattern[j] === '^') { cls += '^'; j += 1; }
      let ranges = 0;
      for (; j < pattern.length && (pattern[j] !== ']' || ranges === 0); ranges++) {
        let lo = pattern[j] ?? '';
        if (lo === '\\') { j += 1; lo = pattern[j] ?? ''; if (j >= pattern.length) throw bad(); }
        j += 1;
        cls += esc(lo);
        if (pattern[j] === '-' && pattern[j + 1] !== undefined && pattern[j + 1] !== ']') {
          let hi = pattern[j + 1] ?? '';
          j += 2;
          if (hi === '\\') { hi = pattern[j] ?? ''; if (j >= pattern.length) throw bad(); j += 1; }
          if (hi < lo) throw bad();
          cls += `-${esc(hi)}`;
        }
      }
      if (j >= pattern.length || ranges === 0) throw bad();
      re += `[${cls}]`;
      i = j;
    } else re += esc(c);
  }
  return new RegExp(`^${re}$`);
}
