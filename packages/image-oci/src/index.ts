/**
 * @isula/image-oci: OCI and Docker v2 images. The plugin opens the image
 * store under the daemon's graph root and registers its ImageDriver.
 * Importing this module runs nothing.
 */
import type { IsulaPlugin } from '@isula/core';
import { OciImageDriver } from './driver.js';
import { ImageStore } from './store.js';
import path from 'node:path';
import { CredentialStore, Registry, registrySettings } from './registry/index.js';

export { ImageStore, chainIds } from './store.js';
export type { ImageRecord, LayerRecord, ImageConfig } from './store.js';
export { parseReference, formatReference, familiarName, familiarTag } from './reference.js';
export type { Reference } from './reference.js';
export { OciImageDriver } from './driver.js';
export { Registry, CredentialStore, registrySettings, parseChallenge, pullEndpoints, originEndpoints, isInsecure, normalizeServer } from './registry/index.js';
export type { RegistrySettings, Endpoint } from './registry/index.js';

const plugin: IsulaPlugin = {
  name: '@isula/image-oci',
  apiVersion: '^1.5.0',
  async apply(host) {
    const log = host.logger;
    const store = await ImageStore.open(host.config.graph, log);
    const credentials = await CredentialStore.open(path.join(host.config.graph, 'auths'));
    const registry = new Registry({ store, settings: registrySettings(host.config), credentials, log: log.child({ component: 'registry' }) });
    const driver = new OciImageDriver(store, registry);
    host.hooks.shutdown.tapPromise(plugin.name, () => registry.close());
    // SIGHUP: new mirrors and insecure registries without a restart. The hook is plugin API 1.7;
    // an older host has none, and this plugin still loads there (without reloads).
    if ('configReloaded' in host.hooks) {
      host.hooks.configReloaded.tap(plugin.name, ({ config }) => {
        registry.reloadSettings(registrySettings(config));
        log.info({ mirrors: config['registry-mirrors'], mirrorsByHost: config['registry-mirrors-by-host'], insecure: config['insecure-registries'] }, 'registry settings reloaded');
      });
    }
    host.hooks.registerImageDrivers.tap(plugin.name, (registrar) => { registrar.register(driver); });
    host.hooks.resolveImageFormat.tapPromise(plugin.name, async (query) =>
      query.format === undefined || query.format === 'oci' ? driver : undefined);
  },
};
export default plugin;
