/**
 * The suites of the kit by name, as the command line and the entry file
 * pick them.
 */
import { lifecycleSuite } from './lifecycle-suite.js';
import { streamsSuite } from './streams-suite.js';
import type { SuiteOptions } from './suite-options.js';
import { ttySuite } from './tty-suite.js';

export const SUITES: Readonly<Record<string, (runtime: string, opts?: SuiteOptions) => void>> = Object.freeze({
  lifecycle: lifecycleSuite,
  streams: streamsSuite,
  tty: ttySuite,
});

export type SuiteName = keyof typeof SUITES;

/** Checks a list of suite names, naming the unknown one and the known ones. */
export function parseSuites(list: string): string[] {
  const names = list.split(',').map((s) => s.trim()).filter((s) => s !== '');
  if (names.length === 0) throw new Error(`no suite named: give some of ${Object.keys(SUITES).join(', ')}`);
  for (const n of names) {
    if (!Object.hasOwn(SUITES, n)) throw new Error(`unknown suite "${n}" (known: ${Object.keys(SUITES).join(', ')})`);
  }
  return names;
}
