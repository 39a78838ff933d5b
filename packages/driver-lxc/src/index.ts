/**
 * @isula/driver-lxc: LXC as a runtime (iSulad's `lcr`), through lxc's
 * command-line tools. Claims `lcr` and `lxc`. Importing this module runs
 * nothing.
 */
import path from 'node:path';
import { IsulaError } from '@isula/core';
import type { IsulaPlugin } from '@isula/core';
import { LxcDriver } from './driver.js';

export { LxcDriver, LOST_EXIT_CODE } from './driver.js';
export type { LxcDriverOptions, LxcPersisted } from './driver.js';
export { specToLxc, cgroupSettings } from './lxc-config.js';
export type { HostFacts, LxcPaths, LxcConfig } from './lxc-config.js';
export { seccompToLxc } from './seccomp.js';

export interface LxcPluginOptions {
  /** Directory holding lxc-start and lxc-attach (default: looked up in /usr/local/bin, /usr/bin ...). */
  lxcBinDir?: string;
  /** Runtime names to claim (default ["lcr", "lxc"]). */
  runtimes?: string[];
}

export const DEFAULT_RUNTIMES = ['lcr', 'lxc'];

export function parseOptions(options: unknown): LxcPluginOptions {
  if (options === undefined || options === null) return {};
  if (typeof options !== 'object' || Array.isArray(options)) {
    throw new IsulaError('PLUGIN_OPTIONS_INVALID', '@isula/driver-lxc: options must be an object like {"lxcBinDir": "/usr/bin"}');
  }
  const o = options as Record<string, unknown>;
  for (const k of Object.keys(o)) {
    if (k !== 'lxcBinDir' && k !== 'runtimes') throw new IsulaError('PLUGIN_OPTIONS_INVALID', `@isula/driver-lxc: unknown option "${k}" (known: lxcBinDir, runtimes)`);
  }
  const out: LxcPluginOptions = {};
  const dir = o['lxcBinDir'];
  if (dir !== undefined) {
    if (typeof dir !== 'string' || !path.isAbsolute(dir)) throw new IsulaError('PLUGIN_OPTIONS_INVALID', `@isula/driver-lxc: "lxcBinDir" must be an absolute path, got ${JSON.stringify(dir)}`);
    out.lxcBinDir = dir;
  }
  const rts = o['runtimes'];
  if (rts !== undefined) {
    if (!Array.isArray(rts) || rts.length === 0 || !rts.every((r) => typeof r === 'string' && /^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(r))) {
      throw new IsulaError('PLUGIN_OPTIONS_INVALID', `@isula/driver-lxc: "runtimes" must be a non-empty list of runtime names, got ${JSON.stringify(rts)}`);
    }
    out.runtimes = rts as string[];
  }
  return out;
}

const plugin: IsulaPlugin<LxcPluginOptions | undefined> = {
  name: '@isula/driver-lxc',
  // 1.10: the process-identity helpers (identify, isSameProcess ...) come from core.
  apiVersion: '^1.10.0',
  apply(host, options) {
    const opts = parseOptions(options);
    const names = opts.runtimes ?? DEFAULT_RUNTIMES;
    const log = host.logger.child({ plugin: plugin.name });
    // One driver for every claimed name: they share the state dir and the containers.
    let driver: LxcDriver | undefined;
    host.hooks.resolveRuntime.tapPromise(plugin.name, async (name) => {
      if (!names.includes(name)) return undefined;
      driver ??= new LxcDriver({
        name: 'lxc', // the runtime family `isula info` shows
        stateDir: host.config.state,
        logger: log,
        ...(opts.lxcBinDir !== undefined && { lxcBinDir: opts.lxcBinDir }),
      });
      return driver;
    });
    host.hooks.shutdown.tapPromise(plugin.name, async () => {
      await driver?.close();
    });
  },
};
export default plugin;
