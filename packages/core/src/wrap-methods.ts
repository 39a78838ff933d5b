/**
 * Wrapping a driver's or manager's async methods in place, for the engine's
 * own observers (metrics timing, the image notification hooks): core holds
 * the objects the plugins registered, so it wraps them rather than handing
 * out proxies.
 */

/** Calls the original method with the target as `this` (class private fields keep working). */
export type OriginalCall = (args: unknown[]) => Promise<unknown>;

/**
 * Replaces each method of `methods` that `target` has with `wrap(method,
 * original)`; methods it lacks are skipped. False when `target` is frozen:
 * it is then left as it is.
 */
export function wrapMethods(target: object, methods: Iterable<string>, wrap: (method: string, original: OriginalCall) => (...args: unknown[]) => Promise<unknown>): boolean {
  for (const method of methods) {
    const fn: unknown = Reflect.get(target, method);
    if (typeof fn !== 'function') continue;
    const original: OriginalCall = (args) => (fn as (...a: unknown[]) => Promise<unknown>).apply(target, args);
    if (!Reflect.set(target, method, wrap(method, original))) return false;
  }
  return true;
}
