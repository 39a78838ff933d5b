import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EventBus, parseEventFilters, parseEventTime, type EngineEvent, type EventFilter } from '../src/events.js';

const EPOCH_MS = Date.UTC(2024, 0, 2, 3, 4, 5);

function emit(bus: EventBus, Type: string, Action: string, ID = 'id', Attributes: Record<string, string> = {}): EngineEvent {
  return bus.emit({ Type, Action, Actor: { ID, Attributes } });
}

const actions = (events: EngineEvent[]): string[] => events.map((e) => e.Action);

test('the history ring keeps only the newest `capacity` events', () => {
  const bus = new EventBus(3);
  for (let i = 0; i < 5; i++) emit(bus, 'container', `a${i}`);
  assert.deepEqual(actions(bus.history(0, Infinity, {})), ['a2', 'a3', 'a4']);
});

test('an event carries scope local, time in seconds and timeNano', (t) => {
  t.mock.timers.enable({ apis: ['Date'], now: EPOCH_MS + 250 });
  const bus = new EventBus();
  const e = emit(bus, 'container', 'start', 'abc', { name: 'web' });
  assert.equal(e.scope, 'local');
  assert.equal(e.timeNano, (EPOCH_MS + 250) * 1e6);
  assert.equal(e.time, EPOCH_MS / 1000);
  assert.deepEqual(e.Actor, { ID: 'abc', Attributes: { name: 'web' } });
});

test('the bus copies attributes so a caller mutating them later does not change history', () => {
  const bus = new EventBus();
  const attrs: Record<string, string> = { name: 'web' };
  emit(bus, 'container', 'start', 'abc', attrs);
  attrs['name'] = 'changed';
  assert.equal(bus.history(0, Infinity, {})[0]?.Actor.Attributes['name'], 'web');
});

test('timeNano never goes backwards, even when the clock does', (t) => {
  t.mock.timers.enable({ apis: ['Date'], now: EPOCH_MS });
  const bus = new EventBus();
  const first = emit(bus, 'container', 'a');
  t.mock.timers.setTime(EPOCH_MS - 60_000);
  const second = emit(bus, 'container', 'b');
  assert.ok(second.timeNano >= first.timeNano);
});

// Date.now() * 1e6 is ~1.7e18, beyond Number.MAX_SAFE_INTEGER: `lastNano + 1`
// rounds back to lastNano, so events in the same millisecond share a timeNano.
test('events emitted in the same millisecond get strictly increasing timeNano', (t) => {
  t.mock.timers.enable({ apis: ['Date'], now: EPOCH_MS });
  const bus = new EventBus();
  const events = [emit(bus, 'container', 'a'), emit(bus, 'container', 'b'), emit(bus, 'container', 'c')];
  for (let i = 1; i < events.length; i++) {
    const prev = events[i - 1];
    const cur = events[i];
    assert.ok(prev !== undefined && cur !== undefined);
    assert.ok(cur.timeNano > prev.timeNano, `event ${i} timeNano ${cur.timeNano} is not after ${prev.timeNano}`);
  }
});

test('history returns events with since <= timeNano <= until, oldest first', (t) => {
  t.mock.timers.enable({ apis: ['Date'], now: EPOCH_MS });
  const bus = new EventBus();
  const events: EngineEvent[] = [];
  for (let i = 0; i < 5; i++) {
    events.push(emit(bus, 'container', `a${i}`));
    t.mock.timers.tick(1000);
  }
  const [, second, , fourth] = events;
  assert.ok(second !== undefined && fourth !== undefined);
  assert.deepEqual(actions(bus.history(second.timeNano, fourth.timeNano, {})), ['a1', 'a2', 'a3']);
  assert.deepEqual(actions(bus.history(fourth.timeNano + 500e6, Infinity, {})), ['a4']);
  assert.deepEqual(actions(bus.history(0, second.timeNano - 500e6, {})), ['a0']);
});

test('subscribers see live events until they unsubscribe', () => {
  const bus = new EventBus();
  const seen: string[] = [];
  const unsubscribe = bus.subscribe((e) => seen.push(e.Action));
  assert.equal(bus.subscriberCount, 1);
  emit(bus, 'container', 'start');
  unsubscribe();
  emit(bus, 'container', 'die');
  assert.deepEqual(seen, ['start']);
  assert.equal(bus.subscriberCount, 0);
});

test('history filters by type, event, plugin and label', () => {
  const bus = new EventBus();
  emit(bus, 'container', 'start', 'c1', { name: 'web', image: 'nginx', tier: 'front' });
  emit(bus, 'container', 'die', 'c1', { name: 'web', image: 'nginx', tier: 'front' });
  emit(bus, 'image', 'pull', 'sha256:1', { name: 'nginx' });
  emit(bus, 'plugin', 'enable', 'isula-plugin-hello', { name: 'isula-plugin-hello' });
  emit(bus, 'container', 'start', 'c2', { name: 'db', image: 'postgres', tier: 'back' });

  const pick = (filter: EventFilter): string[] => bus.history(0, Infinity, filter).map((e) => `${e.Type}/${e.Action}/${e.Actor.ID}`);
  assert.deepEqual(pick({ type: ['image', 'plugin'] }), ['image/pull/sha256:1', 'plugin/enable/isula-plugin-hello']);
  assert.deepEqual(pick({ event: ['die'] }), ['container/die/c1']);
  assert.deepEqual(pick({ type: ['container'], event: ['start'] }), ['container/start/c1', 'container/start/c2']);
  assert.deepEqual(pick({ plugin: ['isula-plugin-hello'] }), ['plugin/enable/isula-plugin-hello']);
  assert.deepEqual(pick({ label: ['tier=back'] }), ['container/start/c2']);
  assert.deepEqual(pick({ label: ['tier'] }), ['container/start/c1', 'container/die/c1', 'container/start/c2']);
  assert.deepEqual(pick({ label: ['tier=front', 'name=web'] }), ['container/start/c1', 'container/die/c1']);
  assert.deepEqual(pick({ container: ['web'] }), ['container/start/c1', 'container/die/c1']);
  assert.deepEqual(pick({ image: ['nginx'] }), ['container/start/c1', 'container/die/c1', 'image/pull/sha256:1']);
  assert.equal(pick({ type: [] }).length, 5);
});

// `l in attrs` also sees Object.prototype, so a key-only label filter such as
// "constructor" matches every event.
test('a key-only label filter matches only events that carry the label', () => {
  const bus = new EventBus();
  emit(bus, 'container', 'start', 'c1', { tier: 'front' });
  assert.deepEqual(bus.history(0, Infinity, { label: ['constructor'] }), []);
});

test('parseEventFilters accepts lists and the legacy map form', () => {
  assert.deepEqual(parseEventFilters(undefined), {});
  assert.deepEqual(parseEventFilters(''), {});
  assert.deepEqual(parseEventFilters('{"type":["container"],"label":["a=b"]}'), { type: ['container'], label: ['a=b'] });
  assert.deepEqual(parseEventFilters('{"type":{"container":true,"image":true}}'), { type: ['container', 'image'] });
});

test('parseEventFilters rejects unknown keys, non-JSON and wrong shapes with API_BAD_REQUEST', () => {
  for (const raw of ['{"colour":["red"]}', 'type=container', '{"type":', '["type"]', 'null', '{"type":"container"}', '{"type":[1]}', '{"type":{"container":false}}']) {
    assert.throws(() => parseEventFilters(raw), { name: 'IsulaError', code: 'API_BAD_REQUEST' }, raw);
  }
});

test('parseEventTime reads unix seconds with an optional fraction as nanoseconds', () => {
  assert.equal(parseEventTime('1700000000', 'since'), 1_700_000_000 * 1e9);
  assert.equal(parseEventTime('12.5', 'since'), 12_500_000_000);
  assert.equal(parseEventTime('1.000000001', 'since'), 1_000_000_001);
  assert.equal(parseEventTime('0', 'since'), 0);
});

test('parseEventTime reads RFC 3339 dates', () => {
  assert.equal(parseEventTime('2024-01-02T03:04:05Z', 'since'), EPOCH_MS * 1e6);
  assert.equal(parseEventTime('2024-01-02T11:04:05+08:00', 'since'), EPOCH_MS * 1e6);
  assert.equal(parseEventTime('2024-01-02T03:04:05.250Z', 'since'), (EPOCH_MS + 250) * 1e6);
});

test('parseEventTime counts Go durations back from now', () => {
  const nowMs = 1_000_000_000;
  const nowNs = nowMs * 1e6;
  assert.equal(parseEventTime('10m', 'since', nowMs), nowNs - 600e9);
  assert.equal(parseEventTime('1h30m', 'since', nowMs), nowNs - 5400e9);
  assert.equal(parseEventTime('1.5s', 'since', nowMs), nowNs - 1.5e9);
  assert.equal(parseEventTime('250ms', 'since', nowMs), nowNs - 250e6);
});

test('parseEventTime rejects anything else with API_BAD_REQUEST', () => {
  for (const raw of ['yesterday', '10 minutes', '10d', '-5', '2024-13-45T00:00:00Z', '1.0000000001', '']) {
    assert.throws(() => parseEventTime(raw, 'since'), { name: 'IsulaError', code: 'API_BAD_REQUEST' }, JSON.stringify(raw));
  }
});
