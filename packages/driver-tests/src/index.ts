/**
 * @isula/driver-tests: isula's conformance kit for runtime, image and
 * network drivers. The suites are node:test suites (the runtime ones
 * parameterised by runtime name); call them from a test file, or run
 * `isula-driver-tests`. Importing this module declares no test.
 */
export { lifecycleSuite, LIFECYCLE_SPECS } from './lifecycle-suite.js';
export { streamsSuite } from './streams-suite.js';
export { ttySuite } from './tty-suite.js';
export { networkSuite, NETWORK_SPECS } from './network-suite.js';
export type { NetworkSuiteOptions } from './network-suite.js';
export { imageSuite, IMAGE_SPECS } from './image-suite.js';
export type { ImageSuiteOptions, KitImage } from './image-suite.js';
export { SUITES, SUITE_NAMES, parseSuites, isRuntimeSuite, defaultSuites } from './suites.js';
export { parseKitImageJson, kitImage } from './kit-image.js';
export type { KitImageJson } from './kit-image.js';
export { configuredImageSuite, configuredNetworkSuite, bridgePorts } from './configured-suites.js';
export { declaredTests, suiteTests } from './suite-options.js';
export type { SuiteOptions } from './suite-options.js';
export { runKit, preflight, preflightProblem, kitConfig, kitPlugins, kitSuites, pluginName, collectSpecs, childEnv } from './runner.js';
export type { KitRunOptions, PluginEntry, PreflightInfo, SpecProgress } from './runner.js';
export { formatReport, countSpecs } from './report.js';
export type { KitReport, SpecResult, SpecStatus } from './report.js';
export { busyboxArchive, DEFAULT_IMAGES_DIR } from './images.js';
export { buildBusyboxArchive, BUSYBOX_APPLETS } from './busybox-image.js';
export { packageDir, programs } from './paths.js';
export * from './harness.js';
export * from './containers.js';
