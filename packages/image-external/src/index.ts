/**
 * @isula/image-external: "external rootfs" images, a directory the user
 * prepared, used as a container's root filesystem as-is. Importing this
 * module runs nothing.
 */
import type { IsulaPlugin } from '@isula/core';
import { ExternalRootfsDriver, FORMAT } from './driver.js';

export { ExternalRootfsDriver, validateRootfsDir } from './driver.js';

const plugin: IsulaPlugin = {
  name: '@isula/image-external',
  apiVersion: '^1.2.0',
  apply(host) {
    const driver = new ExternalRootfsDriver();
    host.hooks.registerImageDrivers.tap(plugin.name, (registrar) => { registrar.register(driver); });
    host.hooks.resolveImageFormat.tapPromise(plugin.name, async (query) => (query.format === FORMAT ? driver : undefined));
  },
};
export default plugin;
