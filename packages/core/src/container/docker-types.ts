/**
 * The container create/inspect shapes of Docker Engine API v1.41
 * (`ContainerConfig`, `HostConfig`), as far as isula reads them. Field names
 * and meanings are Docker's; everything is optional on the wire, and core
 * validates before use. Extensions of isula's own are marked.
 */

/** Docker's `ContainerConfig` (the create body's top level, minus HostConfig/NetworkingConfig). */
export interface ContainerConfig {
  Hostname?: string;
  /** Docker 20.10 keeps the endpoint's MAC here. */
  MacAddress?: string;
  Domainname?: string;
  User?: string;
  AttachStdin?: boolean;
  AttachStdout?: boolean;
  AttachStderr?: boolean;
  ExposedPorts?: Record<string, Record<string, never>> | null;
  Tty?: boolean;
  OpenStdin?: boolean;
  StdinOnce?: boolean;
  Env?: string[] | null;
  Cmd?: string[] | null;
  Healthcheck?: Record<string, unknown> | null;
  Image?: string;
  Volumes?: Record<string, Record<string, never>> | null;
  WorkingDir?: string;
  Entrypoint?: string[] | null;
  NetworkDisabled?: boolean;
  Labels?: Record<string, string> | null;
  StopSignal?: string;
  StopTimeout?: number | null;
}

export interface ContainerCreateBody extends ContainerConfig {
  HostConfig?: HostConfig;
  NetworkingConfig?: Record<string, unknown> | null;
}

export interface RestartPolicy {
  /** '' or 'no', 'always', 'unless-stopped', 'on-failure'. */
  Name?: string;
  MaximumRetryCount?: number;
}

/** `--mount` (Docker's `Mount`). */
export interface MountSpec {
  Target?: string;
  Source?: string;
  /** 'bind' | 'volume' | 'tmpfs' ('npipe' is Windows). */
  Type?: string;
  ReadOnly?: boolean;
  Consistency?: string;
  BindOptions?: { Propagation?: string; NonRecursive?: boolean } | null;
  VolumeOptions?: Record<string, unknown> | null;
  TmpfsOptions?: { SizeBytes?: number; Mode?: number } | null;
}

export interface DeviceMapping {
  PathOnHost?: string;
  PathInContainer?: string;
  /** e.g. "rwm". */
  CgroupPermissions?: string;
}

export interface Ulimit {
  Name?: string;
  Soft?: number;
  Hard?: number;
}

export interface ThrottleDevice {
  Path?: string;
  Rate?: number;
}

export interface WeightDevice {
  Path?: string;
  Weight?: number;
}

/** Docker's `HostConfig` (resources included, as the API flattens them). */
export interface HostConfig {
  // Resources
  CpuShares?: number;
  Memory?: number;
  CgroupParent?: string;
  BlkioWeight?: number;
  BlkioWeightDevice?: WeightDevice[] | null;
  BlkioDeviceReadBps?: ThrottleDevice[] | null;
  BlkioDeviceWriteBps?: ThrottleDevice[] | null;
  BlkioDeviceReadIOps?: ThrottleDevice[] | null;
  BlkioDeviceWriteIOps?: ThrottleDevice[] | null;
  CpuPeriod?: number;
  CpuQuota?: number;
  CpuRealtimePeriod?: number;
  CpuRealtimeRuntime?: number;
  CpusetCpus?: string;
  CpusetMems?: string;
  Devices?: DeviceMapping[] | null;
  DeviceCgroupRules?: string[] | null;
  KernelMemory?: number;
  KernelMemoryTCP?: number;
  MemoryReservation?: number;
  /** Total memory + swap; -1 unlimited swap. */
  MemorySwap?: number;
  MemorySwappiness?: number | null;
  NanoCpus?: number;
  OomKillDisable?: boolean | null;
  Init?: boolean | null;
  PidsLimit?: number | null;
  Ulimits?: Ulimit[] | null;

  // Host configuration
  Binds?: string[] | null;
  ContainerIDFile?: string;
  LogConfig?: { Type?: string; Config?: Record<string, string> } | null;
  NetworkMode?: string;
  PortBindings?: Record<string, Array<{ HostIp?: string; HostPort?: string }> | null> | null;
  RestartPolicy?: RestartPolicy | null;
  AutoRemove?: boolean;
  VolumeDriver?: string;
  VolumesFrom?: string[] | null;
  Mounts?: MountSpec[] | null;
  CapAdd?: string[] | null;
  CapDrop?: string[] | null;
  CgroupnsMode?: string;
  Dns?: string[] | null;
  DnsOptions?: string[] | null;
  DnsSearch?: string[] | null;
  ExtraHosts?: string[] | null;
  GroupAdd?: string[] | null;
  IpcMode?: string;
  Cgroup?: string;
  Links?: string[] | null;
  OomScoreAdj?: number;
  PidMode?: string;
  Privileged?: boolean;
  PublishAllPorts?: boolean;
  ReadonlyRootfs?: boolean;
  SecurityOpt?: string[] | null;
  StorageOpt?: Record<string, string> | null;
  /** Container path → tmpfs mount options ("size=64m,mode=1777"). */
  Tmpfs?: Record<string, string> | null;
  UTSMode?: string;
  UsernsMode?: string;
  ShmSize?: number;
  Sysctls?: Record<string, string> | null;
  Runtime?: string;
  MaskedPaths?: string[] | null;
  ReadonlyPaths?: string[] | null;
  /** isula extension (iSulad's `--external-rootfs`): run on this host directory as-is. */
  ExternalRootfs?: string;
  /** iSulad's `--hook-spec`: an absolute path to a JSON file of OCI hooks, read at create. */
  HookSpec?: string;
  /** iSulad's `--user-remap UID:GID:SIZE`: this container's user namespace range. */
  UserRemap?: string;
  /** iSulad's `--system-container`: an init as PID 1, with the mounts and environment it expects. */
  SystemContainer?: boolean;
  /**
   * isula extension (plugin API 1.6, for the CRI's `log_directory`/`log_path`):
   * the container's log file (conmon's k8s-file format, which is the CRI log
   * format) at this absolute path instead of `container.log` in the
   * container's directory. Its directory must exist when the container starts.
   */
  LogPath?: string;
  /** iSulad's `--ns-change-opt`: "net" and/or "ipc" (comma separated), writable namespaced /proc/sys parts (system containers). */
  NsChangeOpt?: string;
}
