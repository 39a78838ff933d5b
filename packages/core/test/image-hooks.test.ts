import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import pino from 'pino';
import type { ImageDriver, ImageRef, PullResult } from '../src/drivers/image.js';
import { IsulaError } from '../src/errors.js';
import { createHooks, type ImageEvent } from '../src/hooks.js';
import { observeImageDriver } from '../src/image-hooks.js';

const silent = pino({ level: 'silent' });
const REF: ImageRef = { reference: 'busybox:latest', format: 'oci', id: 'sha256:aaaa' };

/**
 * An in-memory image driver (a stand-in: these tests are about which hook a
 * call fires, not about images) whose methods use a class private field, as
 * the real drivers do, so a wrapper that loses `this` would throw.
 */
class MemoryDriver {
  readonly format = 'oci';
  #tags = new Map<string, string>([['busybox:latest', REF.id], ['extra:1', REF.id]]);
  async resolve(reference: string): Promise<ImageRef | undefined> {
    const id = this.#tags.get(reference);
    return id === undefined ? undefined : { reference, format: this.format, id };
  }
  async list(): Promise<never[]> { return []; }
  async inspect(): Promise<never> { throw new IsulaError('NOT_IMPLEMENTED', 'inspect'); }
  async mountRootfs(): Promise<string> { return '/'; }
  async unmountRootfs(): Promise<void> {}
  async removeRootfs(): Promise<void> {}
  async pull(reference: string): Promise<PullResult> {
    if (reference === 'bad') throw new IsulaError('IMAGE_NOT_FOUND', 'no such image');
    return { ...REF, reference, digest: 'sha256:dddd', upToDate: false };
  }
  async load(): Promise<ImageRef[]> { return [REF, { ...REF, reference: 'other:2', id: 'sha256:bbbb' }]; }
  async import(): Promise<ImageRef> { return { ...REF, reference: 'imported:1', id: 'sha256:cccc' }; }
  async remove(reference: string): Promise<{ untagged: string[]; deleted: string[] }> {
    const id = this.#tags.get(reference);
    if (id === undefined) throw new IsulaError('IMAGE_NOT_FOUND', `no such image: ${reference}`);
    this.#tags.delete(reference);
    const left = [...this.#tags.values()].includes(id);
    // As image-oci's: the image's id, then the layers that went with it.
    return { untagged: [reference], deleted: left ? [] : [id, 'sha256:1a7e4'] };
  }
}

function observed(): { driver: ImageDriver; heard: [string, ImageEvent][]; settle(): Promise<void> } {
  const hooks = createHooks();
  const heard: [string, ImageEvent][] = [];
  for (const name of ['imagePulled', 'imageLoaded', 'imageRemoved'] as const) {
    hooks[name].tap('test', (e) => { heard.push([name, e]); });
  }
  const driver = new MemoryDriver() as unknown as ImageDriver;
  observeImageDriver(driver, hooks, silent);
  // Taps run after the call returned, without being awaited by it.
  return { driver, heard, settle: () => new Promise((r) => setImmediate(r)) };
}

test('pull, load and import fire imagePulled and imageLoaded with what the driver returned', async () => {
  const { driver, heard, settle } = observed();
  await driver.pull!('busybox:latest', { signal: AbortSignal.timeout(1000) });
  await driver.load!(Readable.from([]), { signal: AbortSignal.timeout(1000) });
  await driver.import!(Readable.from([]), { signal: AbortSignal.timeout(1000) });
  await settle();
  assert.deepEqual(heard, [
    ['imagePulled', { id: REF.id, reference: 'busybox:latest', attributes: { format: 'oci', digest: 'sha256:dddd' } }],
    ['imageLoaded', { id: REF.id, reference: 'busybox:latest', attributes: { format: 'oci', source: 'load' } }],
    ['imageLoaded', { id: 'sha256:bbbb', reference: 'other:2', attributes: { format: 'oci', source: 'load' } }],
    ['imageLoaded', { id: 'sha256:cccc', reference: 'imported:1', attributes: { format: 'oci', source: 'import' } }],
  ]);
});

test('remove fires imageRemoved only when the image left the store; a failed call fires nothing and keeps its error', async () => {
  const { driver, heard, settle } = observed();
  assert.deepEqual(await driver.remove!('extra:1', { signal: AbortSignal.timeout(1000) }), { untagged: ['extra:1'], deleted: [] });
  await settle();
  assert.deepEqual(heard, []);
  await driver.remove!('busybox:latest', { signal: AbortSignal.timeout(1000) });
  await assert.rejects(driver.remove!('busybox:latest', { signal: AbortSignal.timeout(1000) }), (e: unknown) => e instanceof IsulaError && e.code === 'IMAGE_NOT_FOUND');
  await assert.rejects(driver.pull!('bad', { signal: AbortSignal.timeout(1000) }), (e: unknown) => e instanceof IsulaError && e.code === 'IMAGE_NOT_FOUND');
  await settle();
  assert.deepEqual(heard, [['imageRemoved', { id: REF.id, reference: 'busybox:latest', attributes: { format: 'oci' } }]]);
});

test('a frozen driver is left as it is and still works', async () => {
  const hooks = createHooks();
  let calls = 0;
  hooks.imagePulled.tap('test', () => { calls += 1; });
  const driver = Object.freeze(new MemoryDriver()) as unknown as ImageDriver;
  observeImageDriver(driver, hooks, silent);
  assert.equal((await driver.pull!('busybox:latest', { signal: AbortSignal.timeout(1000) })).digest, 'sha256:dddd');
  await new Promise((r) => setImmediate(r));
  assert.equal(calls, 0);
});
