/**
 * The kit as one node:test file, configured by the environment, for
 * `isula-driver-tests` (which runs it with node:test's run()) and for
 * `node --test node_modules/@isula/driver-tests/dist/src/entry.js`:
 *
 *   ISULA_KIT_RUNTIME         the runtime name to test (required by lifecycle, streams,
 *                             tty; the image and network suites' containers use it, default runc)
 *   ISULA_KIT_IMAGE_FORMAT    the image format to test (required by image)
 *   ISULA_KIT_IMAGE           JSON: the image the image suite runs (kit-image.ts; required by image)
 *   ISULA_KIT_NETWORK_DRIVER  the network driver to test (required by network)
 *   ISULA_KIT_NETWORK_BRIDGE  the bridge that driver puts host interfaces on (network; optional)
 *   ISULA_KIT_CONFIG          JSON merged into every daemon.json: {"plugins": [...], "plugin-dirs": [...]}
 *   ISULA_KIT_SUITES          comma list of lifecycle, streams, tty, image, network (default:
 *                             those the variables above name)
 *   ISULA_KIT_SKIP_TESTS      JSON object: test name → reason it does not apply
 *   ISULA_KIT_BUSYBOX         a docker-archive of busybox:latest
 *   ISULA_KIT_TIMEOUT_MS      a bound on each test (default none)
 *
 * A test file of the author's own can instead import the suites from
 * `@isula/driver-tests` and call them.
 */
import { configuredImageSuite, configuredNetworkSuite } from './configured-suites.js';
import { kitOptionsFromEnv } from './env.js';
import { declaredTests } from './suite-options.js';
import { SUITES } from './suites.js';

const { runtime, suites, options, image, network } = kitOptionsFromEnv(process.env);
const shared = { ...options, sharedSkips: true };
for (const name of suites) {
  if (name === 'image' && image !== undefined) configuredImageSuite(image.format, image.image, runtime, shared);
  else if (name === 'network' && network !== undefined) configuredNetworkSuite(network.driver, network.bridge, runtime, shared);
  else SUITES[name]?.(runtime, shared);
}
// One skip list for all the suites run: each name must be a test of one of them.
const unknown = Object.keys(options.skipTests ?? {}).filter((n) => !declaredTests().has(n));
if (unknown.length > 0) throw new Error(`ISULA_KIT_SKIP_TESTS names no test of the suites ${suites.join(', ')}: ${unknown.join(', ')}`);
