/**
 * The parts of the CRI messages this server reads, as @grpc/proto-loader
 * decodes them (keepCase, defaults: absent scalars are their zero value,
 * absent messages null; int64 as decimal strings; enums as their names).
 * runtime.v1 and runtime.v1alpha2 agree on every field used here.
 */

export interface Int64Value { value: string }

export interface PodSandboxMetadata { name: string; uid: string; namespace: string; attempt: number }
export interface ContainerMetadata { name: string; attempt: number }

export type NamespaceMode = 'POD' | 'CONTAINER' | 'NODE' | 'TARGET';
export interface NamespaceOption { network: NamespaceMode; pid: NamespaceMode; ipc: NamespaceMode; target_id: string }

export interface SecurityProfile { profile_type: 'RuntimeDefault' | 'Unconfined' | 'Localhost'; localhost_ref: string }

export interface LinuxSandboxSecurityContext {
  namespace_options: NamespaceOption | null;
  run_as_user: Int64Value | null;
  run_as_group: Int64Value | null;
  readonly_rootfs: boolean;
  supplemental_groups: string[];
  privileged: boolean;
  seccomp_profile_path: string;
  seccomp: SecurityProfile | null;
}

export interface PortMapping { protocol: 'TCP' | 'UDP' | 'SCTP'; container_port: number; host_port: number; host_ip: string }
export interface DNSConfig { servers: string[]; searches: string[]; options: string[] }

export interface PodSandboxConfig {
  metadata: PodSandboxMetadata | null;
  hostname: string;
  log_directory: string;
  dns_config: DNSConfig | null;
  port_mappings: PortMapping[];
  labels: Record<string, string>;
  annotations: Record<string, string>;
  linux: { cgroup_parent: string; security_context: LinuxSandboxSecurityContext | null; sysctls: Record<string, string> } | null;
}

/** `value` is `bytes` in the v1 reference, `string` in v1alpha2 (the same on the wire). */
export interface KeyValue { key: string; value: string | Uint8Array }
export interface Mount { container_path: string; host_path: string; readonly: boolean; selinux_relabel: boolean; propagation: 'PROPAGATION_PRIVATE' | 'PROPAGATION_HOST_TO_CONTAINER' | 'PROPAGATION_BIDIRECTIONAL' }
export interface Device { container_path: string; host_path: string; permissions: string }
export interface ImageSpec { image: string; annotations: Record<string, string> }

export interface LinuxContainerResources {
  cpu_period: string;
  cpu_quota: string;
  cpu_shares: string;
  memory_limit_in_bytes: string;
  oom_score_adj: string;
  cpuset_cpus: string;
  cpuset_mems: string;
  memory_swap_limit_in_bytes?: string;
}

export interface LinuxContainerSecurityContext {
  capabilities: { add_capabilities: string[]; drop_capabilities: string[] } | null;
  privileged: boolean;
  namespace_options: NamespaceOption | null;
  run_as_user: Int64Value | null;
  run_as_group: Int64Value | null;
  run_as_username: string;
  readonly_rootfs: boolean;
  supplemental_groups: string[];
  no_new_privs: boolean;
  masked_paths: string[];
  readonly_paths: string[];
  seccomp_profile_path: string;
  seccomp: SecurityProfile | null;
}

export interface ContainerConfig {
  metadata: ContainerMetadata | null;
  image: ImageSpec | null;
  command: string[];
  args: string[];
  working_dir: string;
  envs: KeyValue[];
  mounts: Mount[];
  devices: Device[];
  labels: Record<string, string>;
  annotations: Record<string, string>;
  log_path: string;
  stdin: boolean;
  stdin_once: boolean;
  tty: boolean;
  linux: { resources: LinuxContainerResources | null; security_context: LinuxContainerSecurityContext | null } | null;
}

export interface LabelSelectorFilter { label_selector: Record<string, string> }
