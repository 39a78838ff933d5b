/**
 * The image notification hooks (`imagePulled`, `imageLoaded`,
 * `imageRemoved`), fired from the image drivers themselves so that every
 * path that changes the store is heard: the engine API, the CRI plugin, a
 * pod's sandbox image pulled by `RunPodSandbox`, any other plugin calling a
 * driver it got from the engine.
 */
import type { Logger } from 'pino';
import type { ImageDriver, ImageRef, PullResult } from './drivers/index.js';
import { notify, type Hooks, type ImageEvent } from './hooks.js';
import { wrapMethods } from './wrap-methods.js';

type Method = 'pull' | 'load' | 'import' | 'remove';

/**
 * The events a successful call of `method` gave. `before` is, for remove, the
 * image the reference named before the call (its `deleted` lists layers too).
 */
function imageEventsOf(driver: Pick<ImageDriver, 'format'>, method: Method, args: readonly unknown[], result: unknown, before?: ImageRef): { hook: 'imagePulled' | 'imageLoaded' | 'imageRemoved'; event: ImageEvent }[] {
  const format = driver.format;
  switch (method) {
    case 'pull': {
      const r = result as PullResult;
      return [{ hook: 'imagePulled', event: { id: r.id, reference: r.reference, attributes: { format, digest: r.digest } } }];
    }
    case 'load':
      return (result as ImageRef[]).map((r) => ({ hook: 'imageLoaded' as const, event: { id: r.id, reference: r.reference, attributes: { format, source: 'load' } } }));
    case 'import': {
      const r = result as ImageRef;
      return [{ hook: 'imageLoaded', event: { id: r.id, reference: r.reference, attributes: { format, source: 'import' } } }];
    }
    case 'remove': {
      // Only an image gone from the store: an rmi that removed one tag of several leaves it.
      const reference = typeof args[0] === 'string' ? args[0] : '';
      if (before === undefined || !(result as { deleted: string[] }).deleted.includes(before.id)) return [];
      return [{ hook: 'imageRemoved', event: { id: before.id, reference, attributes: { format } } }];
    }
  }
}

/**
 * Wraps `driver`'s pull, load, import and remove (those it has) so that each
 * success notifies the hooks, after the call returned and without waiting for
 * the taps. A failed call notifies nothing. The original runs with `driver`
 * as `this`. A frozen driver cannot be wrapped: it is logged and left as it is.
 */
export function observeImageDriver(driver: ImageDriver, hooks: Hooks, log: Logger): void {
  const wrapped = wrapMethods(driver, ['pull', 'load', 'import', 'remove'], (method, original) => async (...args) => {
    // remove's result lists the image's layers among what it deleted: which one is the image?
    // (Not looked up when no plugin listens: a plain rmi costs nothing more.)
    const before = method === 'remove' && typeof args[0] === 'string' && hooks.imageRemoved.isUsed()
      ? await driver.resolve(args[0], { signal: (args[1] as { signal?: AbortSignal } | undefined)?.signal ?? AbortSignal.timeout(60_000) }).catch(() => undefined)
      : undefined;
    const result = await original(args);
    try {
      for (const { hook, event } of imageEventsOf(driver, method as Method, args, result, before)) void notify(hooks, log, hook, event);
    } catch (err) {
      // A driver that returned something else than its contract says: the call still succeeded.
      log.warn({ err, format: driver.format, method }, 'image hook not fired: the driver\'s result is not what its contract says');
    }
    return result;
  });
  if (!wrapped) log.warn({ format: driver.format }, 'the image driver is frozen: imagePulled, imageLoaded and imageRemoved are not fired for it');
}
