import assert from 'node:assert/strict';
import { test } from 'node:test';
import pino from 'pino';
import type { OciSpec, RuntimeDriver } from '../src/drivers/runtime.js';
import { IsulaError } from '../src/errors.js';
import { createHooks, notify, SpecStage, type ContainerEvent, type SpecContext } from '../src/hooks.js';

/**
 * A RuntimeDriver that only has a name: the hooks under test pass drivers
 * around and never call them, and no real runtime is needed for that.
 */
function fakeRuntimeDriver(name: string): RuntimeDriver {
  const unused = async (): Promise<never> => {
    throw new IsulaError('NOT_IMPLEMENTED', `fake driver ${name} was called`);
  };
  return {
    name,
    create: unused, start: unused, kill: unused, state: unused, wait: unused, exec: unused, attach: unused,
    resize: unused, pause: unused, resume: unused, update: unused, stats: unused, pids: unused, delete: unused,
    restore: unused,
  } satisfies RuntimeDriver;
}

/** A pino logger that keeps its records in memory. */
function memoryLogger(): { log: pino.Logger; records: Record<string, unknown>[] } {
  const records: Record<string, unknown>[] = [];
  const log = pino({ level: 'trace' }, { write: (line: string) => { records.push(JSON.parse(line) as Record<string, unknown>); } });
  return { log, records };
}

const EVENT: ContainerEvent = { id: 'c1', name: 'web', image: 'nginx', runtime: 'runc' };

test('a tap throwing a plain Error surfaces as PLUGIN_HOOK_FAILED naming hook and tap', async () => {
  const original = new Error('boom');
  const variants: [kind: string, tap: (hooks: ReturnType<typeof createHooks>) => void][] = [
    ['tapPromise', (h) => h.resolveRuntime.tapPromise('plugin-a', async () => { throw original; })],
    ['tap', (h) => h.resolveRuntime.tap('plugin-a', () => { throw original; })],
    ['tapAsync', (h) => h.resolveRuntime.tapAsync('plugin-a', (_runtime, callback) => { callback(original); })],
  ];
  for (const [kind, tap] of variants) {
    const hooks = createHooks();
    tap(hooks);
    await assert.rejects(hooks.resolveRuntime.promise('runc'), (err: unknown) => {
      assert.ok(err instanceof IsulaError, kind);
      assert.equal(err.code, 'PLUGIN_HOOK_FAILED', kind);
      assert.deepEqual(err.details, { hook: 'resolveRuntime', tap: 'plugin-a' }, kind);
      assert.equal(err.cause, original, kind);
      return true;
    });
  }
});

// The interceptor wraps a callback-style (tapAsync) tap's callback error but
// not an exception thrown synchronously from its body, which escapes as is.
test('a tapAsync tap that throws synchronously is PLUGIN_HOOK_FAILED too', async () => {
  const hooks = createHooks();
  hooks.resolveRuntime.tapAsync('plugin-a', () => { throw new Error('boom'); });
  await assert.rejects(hooks.resolveRuntime.promise('runc'), { name: 'IsulaError', code: 'PLUGIN_HOOK_FAILED', details: { hook: 'resolveRuntime', tap: 'plugin-a' } });
});

test('an IsulaError thrown by a tap passes through with its own code', async () => {
  const hooks = createHooks();
  const original = new IsulaError('RUNTIME_UNAVAILABLE', 'runc binary not found');
  hooks.resolveRuntime.tapPromise('plugin-a', async () => { throw original; });
  await assert.rejects(hooks.resolveRuntime.promise('runc'), (err: unknown) => {
    assert.equal(err, original);
    return true;
  });
});

test('a tap that throws a non-Error value still becomes PLUGIN_HOOK_FAILED', async () => {
  const hooks = createHooks();
  hooks.shutdown.tapPromise('plugin-a', async () => {
    // Plugins are plain JavaScript; nothing stops them throwing a string.
    throw 'closing failed';
  });
  await assert.rejects(hooks.shutdown.promise(), { name: 'IsulaError', code: 'PLUGIN_HOOK_FAILED', details: { hook: 'shutdown', tap: 'plugin-a' } });
});

test('resolveRuntime: the first tap that claims the runtime wins and later taps are not asked', async () => {
  const hooks = createHooks();
  const asked: string[] = [];
  const runc = fakeRuntimeDriver('runc');
  const kata = fakeRuntimeDriver('kata');
  const catchAll = fakeRuntimeDriver('catch-all');
  hooks.resolveRuntime.tapPromise('driver-runc', async (name) => { asked.push(`runc:${name}`); return name === 'runc' ? runc : undefined; });
  hooks.resolveRuntime.tapPromise('driver-kata', async (name) => { asked.push(`kata:${name}`); return name === 'kata' || name === 'runc' ? kata : undefined; });
  hooks.resolveRuntime.tapPromise('driver-any', async (name) => { asked.push(`any:${name}`); return name === 'unknown' ? undefined : catchAll; });

  assert.equal(await hooks.resolveRuntime.promise('runc'), runc);
  assert.deepEqual(asked, ['runc:runc']);
  asked.length = 0;
  assert.equal(await hooks.resolveRuntime.promise('kata'), kata);
  assert.deepEqual(asked, ['runc:kata', 'kata:kata']);
  asked.length = 0;
  assert.equal(await hooks.resolveRuntime.promise('unknown'), undefined);
  assert.deepEqual(asked, ['runc:unknown', 'kata:unknown', 'any:unknown']);
});

test('mutateSpec runs taps in SpecStage order, each seeing the previous result', async () => {
  const hooks = createHooks();
  const step = (name: string) => async (spec: OciSpec): Promise<OciSpec> => {
    const order = Array.isArray(spec['order']) ? (spec['order'] as string[]) : [];
    return { ...spec, order: [...order, name] };
  };
  // Registered out of order on purpose: the stage, not registration, decides.
  hooks.mutateSpec.tapPromise({ name: 'final', stage: SpecStage.FINAL }, step('final'));
  hooks.mutateSpec.tapPromise({ name: 'security', stage: SpecStage.SECURITY }, step('security'));
  hooks.mutateSpec.tapPromise({ name: 'normal-1', stage: SpecStage.NORMAL }, step('normal-1'));
  hooks.mutateSpec.tapPromise({ name: 'defaults', stage: SpecStage.DEFAULTS }, step('defaults'));
  hooks.mutateSpec.tapPromise('normal-2', step('normal-2'));
  const ctx: SpecContext = { containerId: 'c1', runtime: 'runc', annotations: {}, signal: new AbortController().signal };
  const spec = await hooks.mutateSpec.promise({ ociVersion: '1.2.0' }, ctx);
  assert.deepEqual(spec, { ociVersion: '1.2.0', order: ['defaults', 'normal-1', 'normal-2', 'security', 'final'] });
});

test('a failing mutateSpec tap names its tap and stops the chain', async () => {
  const hooks = createHooks();
  let laterRan = false;
  hooks.mutateSpec.tapPromise({ name: 'seccomp', stage: SpecStage.SECURITY }, async () => { throw new TypeError('no profile'); });
  hooks.mutateSpec.tapPromise({ name: 'validate', stage: SpecStage.FINAL }, async (spec) => { laterRan = true; return spec; });
  const ctx: SpecContext = { containerId: 'c1', runtime: 'runc', annotations: {}, signal: new AbortController().signal };
  await assert.rejects(hooks.mutateSpec.promise({ ociVersion: '1.2.0' }, ctx), {
    name: 'IsulaError', code: 'PLUGIN_HOOK_FAILED', details: { hook: 'mutateSpec', tap: 'seccomp' },
  });
  assert.equal(laterRan, false);
});

test('notify swallows a failing tap and logs it with the hook and tap named', async () => {
  const hooks = createHooks();
  const { log, records } = memoryLogger();
  const delivered: string[] = [];
  hooks.containerExited.tapPromise('plugin-bad', async () => { throw new Error('disk full'); });
  hooks.containerExited.tapPromise('plugin-good', async (e) => { delivered.push(e.id); });
  await notify(hooks, log, 'containerExited', { ...EVENT, exitCode: 0 });
  assert.deepEqual(delivered, ['c1']);
  const warnings = records.filter((r) => r['level'] === 40);
  assert.equal(warnings.length, 1);
  const [warning] = warnings;
  assert.equal(warning?.['hook'], 'containerExited');
  const err = warning?.['err'] as Record<string, unknown> | undefined;
  assert.equal(err?.['code'], 'PLUGIN_HOOK_FAILED');
  assert.deepEqual(err?.['details'], { hook: 'containerExited', tap: 'plugin-bad' });
});

test('notify with no taps resolves', async () => {
  const hooks = createHooks();
  const { log, records } = memoryLogger();
  await notify(hooks, log, 'imagePulled', { id: 'sha256:1', reference: 'nginx' });
  assert.deepEqual(records, []);
});

// tapable's parallel hook stops calling taps once one has failed
// synchronously, so a plugin whose (sync) tap throws hides the event from
// every plugin tapped after it.
test('notify still delivers the event to the other taps when a sync tap throws', async () => {
  const hooks = createHooks();
  const { log } = memoryLogger();
  const delivered: string[] = [];
  hooks.containerStarted.tap('plugin-bad', () => { throw new Error('boom'); });
  hooks.containerStarted.tapPromise('plugin-good', async (e) => { delivered.push(e.id); });
  await notify(hooks, log, 'containerStarted', EVENT);
  assert.deepEqual(delivered, ['c1']);
});

test('the hooks object is frozen', () => {
  const hooks = createHooks();
  assert.equal(Object.isFrozen(hooks), true);
});
