/** CRI timestamps are int64 nanoseconds since the epoch, sent as decimal strings (they pass 2^53). */
const ZERO_TIME = '0001-01-01T00:00:00Z';

export function isoToNanos(iso: string | undefined): string {
  if (iso === undefined || iso === '' || iso === ZERO_TIME) return '0';
  const ms = Date.parse(iso);
  if (!Number.isFinite(ms) || ms <= 0) return '0';
  // Keep the sub-millisecond digits an RFC 3339 time may carry.
  const frac = /\.(\d+)/.exec(iso)?.[1] ?? '';
  const nanosInMs = frac.length > 3 ? BigInt(frac.slice(3, 9).padEnd(6, '0')) : 0n;
  return (BigInt(ms) * 1_000_000n + nanosInMs).toString();
}

export function nowNanos(): string {
  return (BigInt(Date.now()) * 1_000_000n).toString();
}

/** An int64 string (or number) from the wire as a JS number; 0 when absent or malformed. */
export function int64(v: string | number | undefined | null): number {
  if (v === undefined || v === null || v === '') return 0;
  const n = typeof v === 'number' ? v : Number(v);
  return Number.isFinite(n) ? n : 0;
}
