/**
 * docker's `--since`/`--until` values (logs, events), converted on the client
 * as moby's `api/types/time.GetTimestamp` does: a Go duration (`10m`,
 * `1h30m`) counts back from now and is sent as whole Unix seconds; an RFC 3339
 * date or date-time (zone optional: then the client's offset now) is sent as
 * `SECONDS.NANOSECONDS`; Unix seconds (`1700000000`, `1700000000.5`) go as
 * typed.
 */

const UNIT_NS: Readonly<Record<string, number>> = { ns: 1, us: 1e3, 'µs': 1e3, 'μs': 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 };

/** Go's `time.ParseDuration`, in nanoseconds (a double: exact to the microsecond for a century). Throws on bad input. */
export function parseGoDuration(value: string): number {
  const bad = () => new Error(`time: invalid duration ${JSON.stringify(value)}`);
  let s = value;
  let sign = 1;
  if (s.startsWith('-') || s.startsWith('+')) { sign = s[0] === '-' ? -1 : 1; s = s.slice(1); }
  if (s === '0') return 0;
  if (s === '') throw bad();
  let total = 0;
  const re = /(\d*)(?:\.(\d*))?([a-zµμ]+)/y;
  let at = 0;
  while (at < s.length) {
    re.lastIndex = at;
    const m = re.exec(s);
    if (m === null) throw bad();
    const [, whole = '', frac, unit = ''] = m;
    if (whole === '' && (frac === undefined || frac === '')) throw bad();
    const scale = UNIT_NS[unit];
    if (scale === undefined) throw new Error(`time: unknown unit ${JSON.stringify(unit)} in duration ${JSON.stringify(value)}`);
    total += Number(whole || '0') * scale + (frac ? Number(`0.${frac}`) * scale : 0);
    at = re.lastIndex;
  }
  return sign * total;
}

interface Layout { re: RegExp; name: string }

// Go's reference layouts GetTimestamp picks from, as patterns: Y M D [h [m [s [.frac]]]] [zone].
const ZONE = '(Z|[+-]\\d{2}:\\d{2})';
const layout = (name: string, time: string, zoned: boolean): Layout => ({ name, re: new RegExp(`^(\\d{4})-(\\d{2})-(\\d{2})${time}${zoned ? ZONE : '()'}$`) });
const LAYOUTS = {
  rfc3339NanoLocal: layout('2006-01-02T15:04:05.999999999', 'T(\\d{2}):(\\d{2}):(\\d{2})(?:\\.(\\d{1,9}))?', false),
  rfc3339Nano: layout('2006-01-02T15:04:05.999999999Z07:00', 'T(\\d{2}):(\\d{2}):(\\d{2})(?:\\.(\\d{1,9}))?', true),
  hourLocal: layout('2006-01-02T15', 'T(\\d{2})()()()', false),
  minuteLocal: layout('2006-01-02T15:04', 'T(\\d{2}):(\\d{2})()()', false),
  rfc3339Local: layout('2006-01-02T15:04:05', 'T(\\d{2}):(\\d{2}):(\\d{2})(?:\\.(\\d{1,9}))?', false),
  hourZoned: layout('2006-01-02T15Z07:00', 'T(\\d{2})()()()', true),
  minuteZoned: layout('2006-01-02T15:04Z07:00', 'T(\\d{2}):(\\d{2})()()', true),
  rfc3339: layout('2006-01-02T15:04:05Z07:00', 'T(\\d{2}):(\\d{2}):(\\d{2})(?:\\.(\\d{1,9}))?', true),
  dateLocal: layout('2006-01-02', '()()()()', false),
  dateZoned: layout('2006-01-02Z07:00', '()()()()', true),
};

const count = (s: string, c: string) => s.split(c).length - 1;

/** GetTimestamp's choice of layout for `value`. */
function pickLayout(value: string): { layout: Layout; local: boolean } {
  const local = !(/[zZ+]/.test(value) || count(value, '-') === 3);
  if (value.includes('.')) return { layout: local ? LAYOUTS.rfc3339NanoLocal : LAYOUTS.rfc3339Nano, local };
  if (value.includes('T')) {
    let colons = count(value, ':');
    if (!local && !/[zZ]/.test(value) && colons > 0) colons -= 1; // the zone's own colon
    const l = local
      ? [LAYOUTS.hourLocal, LAYOUTS.minuteLocal][colons] ?? LAYOUTS.rfc3339Local
      : [LAYOUTS.hourZoned, LAYOUTS.minuteZoned][colons] ?? LAYOUTS.rfc3339;
    return { layout: l, local };
  }
  return { layout: local ? LAYOUTS.dateLocal : LAYOUTS.dateZoned, local };
}

/** Parses `value` with `l`; the zone is the text's, or `localOffsetMin` (east of UTC). Unix nanoseconds as [seconds, nanos]. */
function parseWith(value: string, l: Layout, localOffsetMin: number): [number, number] {
  const m = l.re.exec(value);
  const fail = (why = '') => new Error(`parsing time ${JSON.stringify(value)} as ${JSON.stringify(l.name)}: cannot parse${why}`);
  if (m === null) throw fail();
  const [, y = '', mo = '', d = '', h = '0', mi = '0', sec = '0', frac = '', zone = ''] = m;
  const num = (x: string) => (x === '' ? 0 : Number(x));
  const [year, month, day, hour, minute, second] = [num(y), num(mo), num(d), num(h), num(mi), num(sec)];
  if (month < 1 || month > 12) throw fail(': month out of range');
  const daysIn = new Date(Date.UTC(year, month, 0)).getUTCDate();
  if (day < 1 || day > daysIn) throw fail(': day out of range');
  if (hour > 23) throw fail(': hour out of range');
  if (minute > 59) throw fail(': minute out of range');
  if (second > 59) throw fail(': second out of range');
  let offsetMin = localOffsetMin;
  if (zone === 'Z') offsetMin = 0;
  else if (zone !== '') offsetMin = (zone[0] === '-' ? -1 : 1) * (Number(zone.slice(1, 3)) * 60 + Number(zone.slice(4, 6)));
  const utcMs = Date.UTC(year, month - 1, day, hour, minute, second) - offsetMin * 60_000;
  return [Math.floor(utcMs / 1000), Number(frac.padEnd(9, '0') || '0')];
}

/**
 * moby's `GetTimestamp(value, reference)`: the value to send as `since`/`until`
 * (but a duration keeps its millisecond, see below).
 * `nowMs` is the reference time; the local zone is its offset then
 * (`localOffsetMin`, east of UTC; default the process's).
 */
export function getTimestamp(value: string, nowMs = Date.now(), localOffsetMin = -new Date(nowMs).getTimezoneOffset()): string {
  if (value !== '0') {
    try {
      // docker's CLI sends whole seconds here, so `--until 0s` misses what happened in the
      // current second (the README tour's `events --until 0s` right after a restart saw nothing);
      // isula keeps the millisecond: "0s ago" is now.
      const ms = Math.floor(nowMs - parseGoDuration(value) / 1e6);
      const seconds = Math.floor(ms / 1000);
      return `${seconds}.${String((ms - seconds * 1000) * 1e6).padStart(9, '0')}`;
    } catch { /* not a duration */ }
  }
  const { layout: l } = pickLayout(value);
  try {
    const [seconds, nanos] = parseWith(value, l, localOffsetMin);
    return `${seconds}.${String(nanos).padStart(9, '0')}`;
  } catch (err) {
    // With a '-' it was meant as a date: its parse error stands.
    if (value.includes('-')) throw err;
    if (!/^\d+(\.\d+)?$/.test(value)) throw new Error(`failed to parse value as time or duration: ${JSON.stringify(value)}`);
    return value;
  }
}
