/**
 * @isula/driver-runc: any OCI runtime CLI (runc, crun, ...) supervised per
 * container by conmon. Claims `runc`, `crun` and every daemon.json `runtimes`
 * entry. Importing this module runs nothing.
 */
import path from 'node:path';
import { IsulaError } from '@isula/core';
import type { IsulaPlugin } from '@isula/core';
import { DEFAULT_CONMON, RuncDriver } from './driver.js';
import { ExitWatcher } from './exit-watcher.js';

export { RuncDriver, DEFAULT_CONMON, LOST_EXIT_CODE, classifyCreateError } from './driver.js';
export type { RuncDriverOptions, RuncPersisted } from './driver.js';
export { ExitWatcher } from './exit-watcher.js';

export interface RuncPluginOptions {
  /** conmon binary (default /usr/bin/conmon). */
  conmon?: string;
}

/** containerd's shim v2 naming: `io.containerd.<name>.v<N>` runtimes, `containerd-shim-<name>-v<N>` binaries. */
export function isShimV2(name: string, binary: string): boolean {
  return /^io\.containerd\.[^.]+\.v\d+$/.test(name) || /^containerd-shim-[A-Za-z0-9_.-]+-v\d+$/.test(path.basename(binary));
}

/** Runtimes claimed without configuration; their binary is looked up in PATH (then /usr/sbin, /usr/bin ...). */
const BUILTIN_RUNTIMES = ['runc', 'crun'];

function parseOptions(options: unknown): RuncPluginOptions {
  if (options === undefined || options === null) return {};
  if (typeof options !== 'object' || Array.isArray(options)) {
    throw new IsulaError('PLUGIN_OPTIONS_INVALID', '@isula/driver-runc: options must be an object like {"conmon": "/usr/bin/conmon"}');
  }
  const o = options as Record<string, unknown>;
  for (const k of Object.keys(o)) {
    if (k !== 'conmon') throw new IsulaError('PLUGIN_OPTIONS_INVALID', `@isula/driver-runc: unknown option "${k}" (known: conmon)`);
  }
  const conmon = o['conmon'];
  if (conmon !== undefined && (typeof conmon !== 'string' || !path.isAbsolute(conmon))) {
    throw new IsulaError('PLUGIN_OPTIONS_INVALID', `@isula/driver-runc: "conmon" must be an absolute path, got ${JSON.stringify(conmon)}`);
  }
  return conmon === undefined ? {} : { conmon };
}

const plugin: IsulaPlugin<RuncPluginOptions | undefined> = {
  name: '@isula/driver-runc',
  // 1.10: the process-identity helpers (identify, isSameProcess ...) come from core.
  apiVersion: '^1.10.0',
  apply(host, options) {
    const opts = parseOptions(options);
    const log = host.logger.child({ plugin: plugin.name });
    const stateDir = host.config.state;
    // One watcher for the exit dir all these drivers share; created lazily by the first wait.
    const watcher = new ExitWatcher(path.join(stateDir, 'exits'));
    const drivers = new Map<string, RuncDriver>();
    host.hooks.resolveRuntime.tapPromise(plugin.name, async (name) => {
      const configured = host.config.runtimes[name];
      if (configured === undefined && !BUILTIN_RUNTIMES.includes(name)) return undefined;
      // A containerd shim v2 (io.containerd.kata.v2, a containerd-shim-*-v2 binary) is not an OCI
      // runtime CLI: it is left to the plugin that speaks its protocol (@isula/driver-kata).
      if (configured !== undefined && isShimV2(name, configured.path)) return undefined;
      let driver = drivers.get(name);
      if (!driver) {
        driver = new RuncDriver({
          runtime: configured ? { name, path: configured.path, args: configured['runtime-args'] } : { name },
          stateDir,
          logger: log,
          logLevel: host.config['log-level'],
          exitWatcher: watcher,
          ...(opts.conmon !== undefined ? { conmonPath: opts.conmon } : {}),
        });
        drivers.set(name, driver);
      }
      return driver;
    });
    host.hooks.shutdown.tapPromise(plugin.name, async () => {
      for (const d of drivers.values()) d.close();
      watcher.close();
    });
  },
};
export default plugin;
