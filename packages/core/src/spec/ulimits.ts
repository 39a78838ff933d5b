/**
 * Docker ulimits (`--ulimit nofile=1024:2048`, HostConfig.Ulimits) to OCI
 * `process.rlimits`. A hard limit above the daemon's own cannot be set
 * without CAP_SYS_RESOURCE (runc fails with "operation not permitted";
 * PLATFORM §2), so both limits are clamped to the daemon's hard limit.
 */
import type { Ulimit } from '../container/docker-types.js';
import type { HostRlimit } from './host.js';
import type { OciRlimit } from './oci-types.js';
import { invalidConfig } from './invalid.js';

/** Docker's ulimit names (go-units). */
export const ULIMIT_NAMES: readonly string[] = Object.freeze([
  'as', 'core', 'cpu', 'data', 'fsize', 'locks', 'memlock', 'msgqueue',
  'nice', 'nofile', 'nproc', 'rss', 'rtprio', 'rttime', 'sigpending', 'stack',
]);

/**
 * JSON cannot carry RLIM_INFINITY (2^64-1) exactly; the largest safe integer
 * stands for "unlimited" (≈ 9e15: no real limit is that high).
 */
export const RLIMIT_UNLIMITED = Number.MAX_SAFE_INTEGER;

function describe(u: Ulimit): string {
  return `${u.Name ?? ''}=${u.Soft ?? ''}:${u.Hard ?? ''}`;
}

/** Parses the CLI form "name=soft[:hard]" (go-units `ParseUlimit`). */
export function parseUlimit(text: string): Required<Ulimit> {
  const eq = text.indexOf('=');
  if (eq <= 0) throw invalidConfig(`invalid ulimit "${text}": expected name=soft[:hard]`);
  const name = text.slice(0, eq);
  const values = text.slice(eq + 1).split(':');
  if (values.length > 2) throw invalidConfig(`invalid ulimit "${text}": too many limit values`);
  const nums = values.map((v) => {
    if (!/^-?[0-9]+$/.test(v)) throw invalidConfig(`invalid ulimit "${text}": "${v}" is not an integer`);
    return Number(v);
  });
  const soft = nums[0] as number; // split() gives at least one value
  const ulimit = { Name: name, Soft: soft, Hard: nums[1] ?? soft };
  validateUlimit(ulimit);
  return ulimit;
}

/** Name known, both limits integers ≥ -1 (-1 is unlimited), soft ≤ hard. */
export function validateUlimit(u: Ulimit): void {
  const text = describe(u);
  if (u.Name === undefined || !ULIMIT_NAMES.includes(u.Name)) throw invalidConfig(`invalid ulimit "${text}": unknown ulimit type "${u.Name ?? ''}"`);
  for (const v of [u.Soft, u.Hard]) {
    if (v === undefined || !Number.isSafeInteger(v) || v < -1) throw invalidConfig(`invalid ulimit "${text}": limits must be integers, -1 for unlimited`);
  }
  const soft = u.Soft === -1 ? Infinity : (u.Soft as number);
  const hard = u.Hard === -1 ? Infinity : (u.Hard as number);
  if (soft > hard) throw invalidConfig(`invalid ulimit "${text}": soft limit must be less than or equal to hard limit`);
}

export interface ClampedRlimits {
  rlimits: OciRlimit[];
  /** One line per limit lowered to the daemon's own. */
  clamped: string[];
}

/**
 * Ulimits (later entries win by name, defaults first) to OCI rlimits,
 * clamped to the daemon's hard limits.
 */
export function rlimitsFromUlimits(ulimits: readonly Ulimit[], daemonLimits: ReadonlyMap<string, HostRlimit>): ClampedRlimits {
  const byName = new Map<string, Ulimit>();
  for (const u of ulimits) {
    validateUlimit(u);
    byName.set(u.Name as string, u); // validated above
  }
  const rlimits: OciRlimit[] = [];
  const clamped: string[] = [];
  for (const [name, u] of byName) {
    const ceiling = daemonLimits.get(name)?.hard ?? Infinity;
    const wantHard = u.Hard === -1 ? Infinity : (u.Hard as number);
    const wantSoft = u.Soft === -1 ? Infinity : (u.Soft as number);
    const hard = Math.min(wantHard, ceiling);
    const soft = Math.min(wantSoft, hard);
    if (hard < wantHard) clamped.push(`ulimit ${name} hard limit ${u.Hard} lowered to ${hard}, the daemon's own hard limit`);
    const finite = (n: number): number => (n === Infinity ? RLIMIT_UNLIMITED : n);
    rlimits.push({ type: `RLIMIT_${name.toUpperCase()}`, soft: finite(soft), hard: finite(hard) });
  }
  return { rlimits, clamped };
}
