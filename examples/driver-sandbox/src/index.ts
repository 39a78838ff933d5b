/**
 * isula-driver-sandbox: an example of a runtime driver written outside
 * isula's repository. It claims the runtime `sandbox`: containers run by
 * isula's runc driver, under a tighter seccomp filter (src/seccomp.ts).
 *
 * It needs @isula/driver-runc loaded by the same daemon:
 *   { "plugins": ["@isula/image-oci", "@isula/driver-runc", "isula-driver-sandbox"] }
 *
 * Only types come from @isula/core (import type): a plugin installed in a
 * plugin dir cannot import the host's copy of core, and needs nothing else
 * from it, since the host hands `apply` its hooks.
 */
import type { IsulaPlugin, SpecStage } from '@isula/core';
import { sandboxDriver } from './driver.js';
import { tightenSeccomp } from './seccomp.js';

export { SANDBOX_DENIED_SYSCALLS, tightenSeccomp } from './seccomp.js';
export { sandboxDriver } from './driver.js';

const NAME = 'isula-driver-sandbox';
/** The runtime this plugin claims (`isula run --runtime sandbox`). */
export const RUNTIME = 'sandbox';
/** The runtime whose driver does the work. */
const DELEGATE = 'runc';
/**
 * core's SpecStage.SECURITY, spelt out because core's values cannot be
 * imported from a plugin dir; the type keeps it equal to core's.
 */
const SECURITY_STAGE: (typeof SpecStage)['SECURITY'] = 100;

const plugin: IsulaPlugin<unknown> = {
  name: NAME,
  apiVersion: '^1.2.0',
  apply(host, options) {
    // The host hands `{}` when daemon.json names the plugin without options.
    const isEmpty = options === undefined || options === null || (typeof options === 'object' && Object.keys(options).length === 0);
    if (!isEmpty) throw new Error(`${NAME} takes no options, got ${JSON.stringify(options)}`);
    const log = host.logger.child({ plugin: NAME });
    host.hooks.resolveRuntime.tapPromise(NAME, async (name) => {
      if (name !== RUNTIME) return undefined;
      // Asked again for each container: the runc driver is the host's, shared and cached by its plugin.
      const runc = await host.hooks.resolveRuntime.promise(DELEGATE);
      if (runc === undefined) throw new Error(`${NAME}: no plugin claims the runtime "${DELEGATE}" the sandbox runs on: add @isula/driver-runc to daemon.json "plugins"`);
      return sandboxDriver(runc);
    });
    host.hooks.mutateSpec.tapPromise({ name: NAME, stage: SECURITY_STAGE }, async (spec, ctx) => {
      if (ctx.runtime !== RUNTIME) return spec;
      log.debug({ container: ctx.containerId }, 'seccomp tightened');
      return tightenSeccomp(spec);
    });
  },
};
export default plugin;
