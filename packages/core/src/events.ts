/**
 * The engine's event stream (Docker's `GET /events`): a bounded ring of
 * recent events for `since`, and live subscribers.
 */
import { EventEmitter } from 'node:events';
import { parseFilters } from './api/filters.js';
import { IsulaError } from './errors.js';

/** Docker Engine API v1.41 `EventMessage`. */
export interface EngineEvent {
  Type: string;
  Action: string;
  Actor: { ID: string; Attributes: Record<string, string> };
  scope: 'local';
  /** Seconds since the epoch. */
  time: number;
  timeNano: number;
}

export interface EventFilter {
  type?: string[];
  event?: string[];
  container?: string[];
  image?: string[];
  plugin?: string[];
  label?: string[];
  [key: string]: string[] | undefined;
}

/** Spacing of events emitted in the same millisecond; see EventBus.emit. */
export const TIME_STEP_NS = 1000;

const FILTER_KEYS = new Set(['type', 'event', 'container', 'image', 'plugin', 'label', 'daemon', 'network', 'volume', 'scope']);

export class EventBus {
  readonly #ring: EngineEvent[] = [];
  readonly #capacity: number;
  readonly #emitter = new EventEmitter();
  #lastNano = 0;

  constructor(capacity = 1024) {
    this.#capacity = capacity;
    // One listener per open `GET /events` stream: no fixed bound is right.
    this.#emitter.setMaxListeners(0);
  }

  emit(event: Omit<EngineEvent, 'time' | 'timeNano' | 'scope'> & { scope?: 'local' }): EngineEvent {
    // Strictly increasing timestamps keep `since`/`until` exact for events in the same millisecond.
    // Nanoseconds since the epoch (~1.7e18) are past Number.MAX_SAFE_INTEGER: a double resolves
    // 256 ns there, so events in one millisecond are spaced 1 µs apart (up to 1000 per ms).
    const nowNano = Math.max(Date.now() * 1e6, this.#lastNano + TIME_STEP_NS);
    this.#lastNano = nowNano;
    const full: EngineEvent = {
      Type: event.Type,
      Action: event.Action,
      Actor: { ID: event.Actor.ID, Attributes: { ...event.Actor.Attributes } },
      scope: 'local',
      time: Math.floor(nowNano / 1e9),
      timeNano: nowNano,
    };
    this.#ring.push(full);
    if (this.#ring.length > this.#capacity) this.#ring.shift();
    this.#emitter.emit('event', full);
    return full;
  }

  /** Buffered events with `sinceNano <= timeNano <= untilNano`, oldest first. */
  history(sinceNano: number, untilNano: number, filter: EventFilter): EngineEvent[] {
    return this.#ring.filter((e) => e.timeNano >= sinceNano && e.timeNano <= untilNano && matchesFilter(e, filter));
  }

  /** Live events; returns the unsubscribe function. */
  subscribe(listener: (event: EngineEvent) => void): () => void {
    this.#emitter.on('event', listener);
    return () => this.#emitter.off('event', listener);
  }

  get subscriberCount(): number {
    return this.#emitter.listenerCount('event');
  }
}

export function matchesFilter(e: EngineEvent, filter: EventFilter): boolean {
  const attrs = e.Actor.Attributes;
  const anyOf = (values: string[] | undefined, ...candidates: (string | undefined)[]) =>
    values === undefined || values.length === 0 || values.some((v) => candidates.includes(v));
  if (!anyOf(filter.type, e.Type)) return false;
  if (!anyOf(filter.event, e.Action)) return false;
  if (filter.container?.length && (e.Type !== 'container' || !anyOf(filter.container, e.Actor.ID, attrs['name']))) return false;
  if (filter.image?.length && !anyOf(filter.image, attrs['image'], e.Type === 'image' ? e.Actor.ID : undefined, e.Type === 'image' ? attrs['name'] : undefined)) return false;
  if (filter.plugin?.length && (e.Type !== 'plugin' || !anyOf(filter.plugin, e.Actor.ID, attrs['name']))) return false;
  if (filter.label?.length) {
    const ok = filter.label.every((l) => {
      const eq = l.indexOf('=');
      return eq < 0 ? Object.hasOwn(attrs, l) : Object.hasOwn(attrs, l.slice(0, eq)) && attrs[l.slice(0, eq)] === l.slice(eq + 1);
    });
    if (!ok) return false;
  }
  return true;
}

/** Parses Docker's `filters` query parameter for events (`{"type":["container"]}` or the legacy object form). */
export function parseEventFilters(raw: string | undefined): EventFilter {
  return parseFilters(raw, FILTER_KEYS);
}

const DURATION_RE = /^(?:\d+(?:\.\d+)?(?:ns|us|µs|ms|s|m|h))+$/;
const DURATION_PART_RE = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/g;
const UNIT_NS: Record<string, number> = { ns: 1, us: 1e3, µs: 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 };

/**
 * Parses Docker's `since`/`until`: seconds since the epoch (with an optional
 * fraction), an RFC 3339 date, or a Go duration counted back from now ("10m").
 * Returns nanoseconds since the epoch.
 */
export function parseEventTime(raw: string, name: string, nowMs = Date.now()): number {
  if (/^\d+(\.\d{1,9})?$/.test(raw)) {
    const [sec = '0', frac = ''] = raw.split('.');
    return Number(sec) * 1e9 + Number(frac.padEnd(9, '0'));
  }
  if (DURATION_RE.test(raw)) {
    let ns = 0;
    for (const m of raw.matchAll(DURATION_PART_RE)) ns += Number(m[1]) * (UNIT_NS[m[2] ?? 's'] ?? 1e9);
    return nowMs * 1e6 - ns;
  }
  const ms = Date.parse(raw);
  if (/^\d{4}-\d{2}-\d{2}/.test(raw) && !Number.isNaN(ms)) return ms * 1e6;
  throw new IsulaError('API_BAD_REQUEST', `invalid value for ${name}: ${JSON.stringify(raw)} (want a unix timestamp, an RFC 3339 date or a duration like 10m)`);
}

/**
 * A prune's `until` filter (a timestamp, RFC 3339 date or duration, as
 * parseEventTime reads them) in milliseconds since the epoch; undefined
 * without one. Docker takes one at most.
 */
export function untilFilterMs(filters: Readonly<Record<string, string[]>>): number | undefined {
  const values = filters['until'] ?? [];
  if (values.length > 1) throw new IsulaError('API_BAD_REQUEST', 'more than one until filter specified');
  return values[0] === undefined ? undefined : parseEventTime(values[0], 'until') / 1e6;
}
