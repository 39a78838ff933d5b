/**
 * The parts of the OCI runtime spec (config.json, runtime-spec 1.0.2) the
 * spec builder writes. Type aliases, not interfaces, so a built object is
 * assignable to core's open `OciSpec` record.
 */

/** runc 1.1.5 (`runc spec`) speaks 1.0.2-dev; moby vendors the same line. */
export const OCI_VERSION = '1.0.2-dev';

export type OciMount = {
  destination: string;
  type: string;
  source: string;
  options?: string[];
};

export type OciUser = {
  uid: number;
  gid: number;
  additionalGids?: number[];
};

export type OciRlimit = {
  type: string;
  soft: number;
  hard: number;
};

export type OciCapabilities = {
  bounding: string[];
  effective: string[];
  permitted: string[];
};

export type OciProcessSpec = {
  terminal: boolean;
  user: OciUser;
  args: string[];
  env: string[];
  cwd: string;
  capabilities: OciCapabilities;
  rlimits?: OciRlimit[];
  noNewPrivileges?: boolean;
  oomScoreAdj?: number;
};

export type OciNamespace = { type: string; path?: string };

export type OciDevice = {
  path: string;
  type: 'c' | 'b';
  major: number;
  minor: number;
  fileMode: number;
  uid: number;
  gid: number;
};

export type OciDeviceCgroup = {
  allow: boolean;
  type?: 'a' | 'c' | 'b';
  major?: number;
  minor?: number;
  access?: string;
};

export type OciThrottleDevice = { major: number; minor: number; rate: number };
export type OciWeightDevice = { major: number; minor: number; weight: number };

export type OciLinuxResources = {
  devices?: OciDeviceCgroup[];
  memory?: {
    limit?: number;
    reservation?: number;
    swap?: number;
    swappiness?: number;
    disableOOMKiller?: boolean;
  };
  cpu?: {
    shares?: number;
    quota?: number;
    period?: number;
    realtimeRuntime?: number;
    realtimePeriod?: number;
    cpus?: string;
    mems?: string;
  };
  pids?: { limit: number };
  blockIO?: {
    weight?: number;
    weightDevice?: OciWeightDevice[];
    throttleReadBpsDevice?: OciThrottleDevice[];
    throttleWriteBpsDevice?: OciThrottleDevice[];
    throttleReadIOPSDevice?: OciThrottleDevice[];
    throttleWriteIOPSDevice?: OciThrottleDevice[];
  };
};

export type OciSeccompArg = { index: number; value: number; valueTwo?: number; op: string };

export type OciSeccompSyscall = {
  names: string[];
  action: string;
  errnoRet?: number;
  args?: OciSeccompArg[];
};

export type OciSeccomp = {
  defaultAction: string;
  defaultErrnoRet?: number;
  architectures?: string[];
  flags?: string[];
  syscalls?: OciSeccompSyscall[];
};

export type OciIdMapping = { containerID: number; hostID: number; size: number };

export type OciLinux = {
  namespaces: OciNamespace[];
  uidMappings?: OciIdMapping[];
  gidMappings?: OciIdMapping[];
  devices: OciDevice[];
  resources: OciLinuxResources;
  cgroupsPath: string;
  sysctl?: Record<string, string>;
  maskedPaths?: string[];
  readonlyPaths?: string[];
  seccomp?: OciSeccomp;
  rootfsPropagation?: string;
};

export type OciConfig = {
  ociVersion: string;
  root: { path: string; readonly: boolean };
  process: OciProcessSpec;
  hostname?: string;
  domainname?: string;
  mounts: OciMount[];
  linux: OciLinux;
  annotations?: Record<string, string>;
};
