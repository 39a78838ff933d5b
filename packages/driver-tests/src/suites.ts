/**
 * The suites of the kit by name, as the command line and the entry file
 * pick them: the runtime suites, parameterised by a runtime name, and the
 * image and network suites, which take what their drivers need instead.
 */
import { lifecycleSuite } from './lifecycle-suite.js';
import { streamsSuite } from './streams-suite.js';
import type { SuiteOptions } from './suite-options.js';
import { ttySuite } from './tty-suite.js';

/** The runtime suites: each runs against one runtime name. */
export const SUITES: Readonly<Record<string, (runtime: string, opts?: SuiteOptions) => void>> = Object.freeze({
  lifecycle: lifecycleSuite,
  streams: streamsSuite,
  tty: ttySuite,
});

/** Every suite the command and the entry file run: the runtime suites, then `image` and `network`. */
export const SUITE_NAMES: readonly string[] = Object.freeze([...Object.keys(SUITES), 'image', 'network']);

export type SuiteName = keyof typeof SUITES;

/** Is `name` one of the suites that test a runtime (and so need its name)? */
export function isRuntimeSuite(name: string): boolean {
  return Object.hasOwn(SUITES, name);
}

/** Checks a list of suite names, naming the unknown one and the known ones. */
export function parseSuites(list: string): string[] {
  const names = list.split(',').map((s) => s.trim()).filter((s) => s !== '');
  if (names.length === 0) throw new Error(`no suite named: give some of ${SUITE_NAMES.join(', ')}`);
  for (const n of names) {
    if (!SUITE_NAMES.includes(n)) throw new Error(`unknown suite "${n}" (known: ${SUITE_NAMES.join(', ')})`);
  }
  return [...new Set(names)];
}

/** The suites run when none are named: those the given names allow. */
export function defaultSuites(has: { runtime: boolean; image: boolean; network: boolean }): string[] {
  return [...(has.runtime ? Object.keys(SUITES) : []), ...(has.image ? ['image'] : []), ...(has.network ? ['network'] : [])];
}
