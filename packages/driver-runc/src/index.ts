/**
 * @isula/driver-runc: any OCI runtime CLI (runc, crun, ...) supervised per
 * container by conmon. Importing this module runs nothing.
 */
import type { IsulaPlugin } from '@isula/core';

const plugin: IsulaPlugin = {
  name: '@isula/driver-runc',
  apiVersion: '^1.1.0',
  apply() {
    // The driver lands in the next commits.
  },
};
export default plugin;
