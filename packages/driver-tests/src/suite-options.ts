/**
 * What every suite of the kit takes besides the runtime name, and the
 * per-test skip list they share.
 */
import { test as nodeTest, type TestContext } from 'node:test';

export interface SuiteOptions {
  /** Skip the whole suite with this reason (a host that lacks the runtime). */
  skip?: string | false;
  /**
   * Merged into every daemon.json the suite writes: a runtime from another
   * package names its plugin there (`{ plugins: [...], 'plugin-dirs': [...] }`).
   */
  config?: Record<string, unknown>;
  /** Tests to skip by name (test name → reason); a name that matches no test of the suite is an error. */
  skipTests?: Record<string, string>;
  /**
   * Leave the check that every `skipTests` name is a test of this suite to
   * the caller, who shares one list between suites (the entry file does, with
   * `declaredTests()` after declaring them all).
   */
  sharedSkips?: boolean;
  /** Path of a docker-archive holding `busybox:latest`, made on demand (default: `busyboxArchive()`). */
  busybox?: () => Promise<string>;
  /** A bound on each test of the suite, in ms (default: node:test's, none). */
  testTimeoutMs?: number;
}

/**
 * A `test()` for a suite's body that honours `skipTests`, and a check, called
 * at the end of the body, that every name in `skipTests` was a test: a typo
 * must not silently run a test someone meant to skip.
 */
const declared = new Set<string>();
/** Names of every test the suites declared so far in this process. */
export function declaredTests(): ReadonlySet<string> {
  return declared;
}

export function suiteTests(suite: string, opts: SuiteOptions): { test(name: string, fn: (t: TestContext) => Promise<void>): void; checkSkips(): void } {
  const names = new Set<string>();
  return {
    test(name, fn) {
      names.add(name);
      declared.add(name);
      const reason = opts.skipTests?.[name];
      nodeTest(name, { ...(reason !== undefined && { skip: reason }), ...(opts.testTimeoutMs !== undefined && { timeout: opts.testTimeoutMs }) }, fn);
    },
    checkSkips() {
      if (opts.sharedSkips === true) return;
      const unknown = Object.keys(opts.skipTests ?? {}).filter((n) => !names.has(n));
      if (unknown.length > 0) throw new Error(`${suite}: skipTests names no test: ${unknown.join(', ')}`);
    },
  };
}
