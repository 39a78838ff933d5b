/**
 * The OCI spec builder: Docker's create request → config.json, the create-
 * time HostConfig checks, `isula update`'s resources, and the container's
 * hostname/hosts/resolv.conf files.
 */
export { buildSpec } from './build.js';
export type { BuiltSpec, SpecInput } from './build.js';
export { validateHostConfig, parseSecurityOpts } from './validate.js';
export type { SecurityOptions } from './validate.js';
export { resourcesFromHostConfig, validateResources, parseCpuset, MIN_MEMORY_BYTES } from './resources.js';
export { writeContainerFiles, buildHosts, buildResolvConf, filterResolvConf, CONTAINER_FILES } from './files.js';
export type { ContainerFilesOptions } from './files.js';
export { resolveArgs, resolveEnv, resolveCwd } from './process-args.js';
export { resolveUser, resolveUserInRootfs } from './user.js';
export { resolveInRoot, readFileInRoot } from './rootfs-path.js';
export { computeCapabilities, normalizeCapability, allCapabilities, isCapabilityAvailable } from './capabilities.js';
export { parseUlimit, validateUlimit, rlimitsFromUlimits, ULIMIT_NAMES } from './ulimits.js';
export { loadSeccompProfile, parseSeccompProfile, seccompFromProfile } from './seccomp.js';
export type { DockerSeccompProfile, SeccompHost } from './seccomp.js';
export { parseBind, parseMountSpec } from './mounts.js';
export { DEFAULT_CAPABILITIES, DEFAULT_MASKED_PATHS, DEFAULT_READONLY_PATHS, DEFAULT_SECCOMP_PROFILE, INIT_PATH_IN_CONTAINER } from './defaults.js';
export { OCI_VERSION } from './oci-types.js';
export type { OciConfig, OciLinuxResources, OciMount, OciUser } from './oci-types.js';
