/**
 * Timestamps as Docker writes them, from nanoseconds since the epoch (a JS
 * number cannot hold those exactly, hence bigint).
 */

/**
 * RFC 3339 in UTC: Go's RFC3339Nano (fraction with trailing zeros trimmed,
 * none for a whole second), or with `fixed` Docker's RFC3339NanoFixed (always
 * nine digits: log timestamps line up).
 */
export function rfc3339Nano(ns: bigint, fixed = false): string {
  let sec = ns / 1_000_000_000n;
  let frac = ns % 1_000_000_000n;
  if (frac < 0n) {
    frac += 1_000_000_000n;
    sec -= 1n;
  }
  const base = new Date(Number(sec) * 1000).toISOString().replace(/\.\d{3}Z$/, '');
  const digits = frac.toString().padStart(9, '0');
  if (fixed) return `${base}.${digits}Z`;
  return frac === 0n ? `${base}Z` : `${base}.${digits.replace(/0+$/, '')}Z`;
}
