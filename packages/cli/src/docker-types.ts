/**
 * The Docker Engine API v1.41 shapes the container commands send and read.
 * Copied from core's `container/docker-types.ts` (the CLI must not import
 * core: every `isula` call would pay for it), trimmed to what the CLI sets.
 */

export interface ContainerConfig {
  Hostname?: string;
  MacAddress?: string;
  Domainname?: string;
  User?: string;
  AttachStdin?: boolean;
  AttachStdout?: boolean;
  AttachStderr?: boolean;
  ExposedPorts?: Record<string, Record<string, never>>;
  Tty?: boolean;
  OpenStdin?: boolean;
  StdinOnce?: boolean;
  Env?: string[];
  Cmd?: string[];
  Image?: string;
  Volumes?: Record<string, Record<string, never>>;
  WorkingDir?: string;
  Entrypoint?: string[];
  Labels?: Record<string, string>;
  StopSignal?: string;
  StopTimeout?: number;
  Healthcheck?: HealthConfig;
}

/** API v1.41 HealthConfig (durations in nanoseconds); `ExitOnUnhealthy` is iSulad's. */
export interface HealthConfig {
  Test?: string[];
  Interval?: number;
  Timeout?: number;
  StartPeriod?: number;
  Retries?: number;
  ExitOnUnhealthy?: boolean;
}

export interface ContainerCreateBody extends ContainerConfig {
  HostConfig: HostConfig;
  NetworkingConfig?: { EndpointsConfig?: Record<string, Record<string, unknown>> };
}

export interface RestartPolicy {
  Name: string;
  MaximumRetryCount?: number;
}

export interface MountSpec {
  Type: string;
  Source?: string;
  Target?: string;
  ReadOnly?: boolean;
  Consistency?: string;
  BindOptions?: { Propagation?: string; NonRecursive?: boolean };
  VolumeOptions?: { NoCopy?: boolean; Labels?: Record<string, string>; DriverConfig?: { Name?: string; Options?: Record<string, string> } };
  TmpfsOptions?: { SizeBytes?: number; Mode?: number };
}

export interface DeviceMapping {
  PathOnHost: string;
  PathInContainer: string;
  CgroupPermissions: string;
}

export interface Ulimit {
  Name: string;
  Soft: number;
  Hard: number;
}

export interface PortBinding {
  HostIp: string;
  HostPort: string;
}

/** The resources part of HostConfig: what `update` may change. */
export interface Resources {
  CpuShares?: number;
  Memory?: number;
  CgroupParent?: string;
  BlkioWeight?: number;
  CpuPeriod?: number;
  CpuQuota?: number;
  CpuRealtimePeriod?: number;
  CpuRealtimeRuntime?: number;
  CpusetCpus?: string;
  CpusetMems?: string;
  Devices?: DeviceMapping[];
  KernelMemory?: number;
  MemoryReservation?: number;
  /** Memory + swap; -1: unlimited swap. */
  MemorySwap?: number;
  MemorySwappiness?: number;
  NanoCpus?: number;
  OomKillDisable?: boolean;
  Init?: boolean;
  PidsLimit?: number;
  Ulimits?: Ulimit[];
}

export interface HostConfig extends Resources {
  Binds?: string[];
  ContainerIDFile?: string;
  NetworkMode?: string;
  PortBindings?: Record<string, PortBinding[]>;
  RestartPolicy?: RestartPolicy;
  AutoRemove?: boolean;
  Mounts?: MountSpec[];
  CapAdd?: string[];
  CapDrop?: string[];
  Dns?: string[];
  DnsOptions?: string[];
  DnsSearch?: string[];
  ExtraHosts?: string[];
  GroupAdd?: string[];
  OomScoreAdj?: number;
  Privileged?: boolean;
  PublishAllPorts?: boolean;
  ReadonlyRootfs?: boolean;
  SecurityOpt?: string[];
  Tmpfs?: Record<string, string>;
  ShmSize?: number;
  Sysctls?: Record<string, string>;
  Runtime?: string;
  LogConfig?: { Type: string; Config: Record<string, string> };
  /** isula extension (iSulad's `--external-rootfs`): run on this host directory as-is. */
  ExternalRootfs?: string;
  /** iSulad's `--hook-spec` (an absolute path the daemon reads), `--user-remap`, `--system-container`, `--ns-change-opt`. */
  HookSpec?: string;
  UserRemap?: string;
  UsernsMode?: string;
  SystemContainer?: boolean;
  NsChangeOpt?: string;
  PidMode?: string;
  IpcMode?: string;
  UTSMode?: string;
}

/** One row of `GET /containers/json`. */
export interface ContainerSummary {
  Id: string;
  Names?: string[] | null;
  Image?: string;
  ImageID?: string;
  Command?: string;
  Created?: number;
  Ports?: { IP?: string; PrivatePort: number; PublicPort?: number; Type: string }[] | null;
  SizeRw?: number;
  SizeRootFs?: number;
  Labels?: Record<string, string> | null;
  State?: string;
  Status?: string;
  HostConfig?: { NetworkMode?: string };
  NetworkSettings?: { Networks?: Record<string, unknown> | null } | null;
  Mounts?: { Type?: string; Name?: string; Source?: string; Destination?: string }[] | null;
}

export interface WaitResponse {
  StatusCode: number;
  Error?: { Message?: string } | null;
}
