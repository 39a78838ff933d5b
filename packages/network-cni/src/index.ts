/**
 * @isula/network-cni: container networking through CNI plugins. The plugin
 * taps attachNetwork/detachNetwork and registers its NetworkDriver (network
 * management for `/networks`). Importing this module runs nothing; `apply`
 * checks options only: the conf dir and plugin binaries are looked at when a
 * network is first used.
 */
import { IsulaError } from '@isula/core';
import type { IsulaPlugin } from '@isula/core';
import { CniNetworkDriver } from './driver.js';
import { parseOptions } from './options.js';

export { CniNetworkDriver, isNetns, podCidrV4 } from './driver.js';
export type { CniNetworkDriverOptions } from './driver.js';
export { CniRunner, DEFAULT_PLUGIN_TIMEOUT_MS, pluginStdin, cniArgs } from './cni.js';
export type { CniCommand, RuntimeConf, CniRunnerOptions } from './cni.js';
export { loadConfDir, loadConfFile, parseConfList, bridgeConfList, bridgeNameFor, networkId, SUPPORTED_CNI_VERSIONS } from './conf.js';
export type { NetworkConfList, PluginConf, LoadedNetwork, ConfDir, BridgeNetworkSpec, IsulaMeta } from './conf.js';
export { summarizeResult } from './result.js';
export { removeBridgeIsolation, teardownIpMasq, masqChainName } from './iptables.js';
export { parseOptions, DEFAULT_OPTIONS } from './options.js';
export type { NetworkCniOptions } from './options.js';
export { CACHE_SCHEMA_VERSION } from './cache.js';
export type { CacheEntry, CachedNetwork } from './cache.js';

const plugin: IsulaPlugin = {
  name: '@isula/network-cni',
  apiVersion: '^1.11.0',
  apply(host, options) {
    const opts = parseOptions(options);
    const log = host.logger.child({ plugin: plugin.name });
    const driver = new CniNetworkDriver({
      confDir: host.config['cni-conf-dir'],
      binDirs: host.config['cni-bin-dir'],
      graph: host.config.graph,
      defaultNetwork: opts.defaultNetwork,
      bridge: opts.bridge,
      subnet: opts.subnet,
      pluginTimeoutMs: opts.pluginTimeoutMs,
      log,
    });
    host.hooks.registerNetworkDrivers.tap(plugin.name, (registrar) => { registrar.register(driver); });
    host.hooks.attachNetwork.tapPromise(plugin.name, async (ctx) => {
      if (ctx.netnsPath === undefined) {
        throw new IsulaError('NETWORK_CONFIG_INVALID', `cannot attach container ${ctx.request.id} to a network: no network namespace path`);
      }
      ctx.results.push(...(await driver.attach(ctx.netnsPath, ctx.request, { signal: ctx.signal })));
    });
    host.hooks.detachNetwork.tapPromise(plugin.name, (ctx) => driver.detach(ctx.netnsPath, ctx.request, { signal: ctx.signal }));
  },
};
export default plugin;
