/**
 * The kit as one node:test file, configured by the environment, for
 * `isula-driver-tests` (which runs it with node:test's run()) and for
 * `node --test node_modules/@isula/driver-tests/dist/src/entry.js`:
 *
 *   ISULA_KIT_RUNTIME     the runtime name to test (required)
 *   ISULA_KIT_CONFIG      JSON merged into every daemon.json: {"plugins": [...], "plugin-dirs": [...]}
 *   ISULA_KIT_SUITES      comma list of lifecycle, streams, tty (default: all)
 *   ISULA_KIT_SKIP_TESTS  JSON object: test name → reason it does not apply
 *   ISULA_KIT_BUSYBOX     a docker-archive of busybox:latest
 *
 * A test file of the author's own can instead import the suites from
 * `@isula/driver-tests` and call them.
 */
import { kitOptionsFromEnv } from './env.js';
import { declaredTests } from './suite-options.js';
import { SUITES } from './suites.js';

const { runtime, suites, options } = kitOptionsFromEnv(process.env);
for (const name of suites) SUITES[name]?.(runtime, { ...options, sharedSkips: true });
// One skip list for all the suites run: each name must be a test of one of them.
const unknown = Object.keys(options.skipTests ?? {}).filter((n) => !declaredTests().has(n));
if (unknown.length > 0) throw new Error(`ISULA_KIT_SKIP_TESTS names no test of the suites ${suites.join(', ')}: ${unknown.join(', ')}`);
