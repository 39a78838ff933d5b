/**
 * NetworkDriver: connects a network namespace (a plain container's or a CRI
 * pod sandbox's) to networks, e.g. through a CNI plugin chain.
 */
import type { DriverCallOptions } from './runtime.js';

export interface PortMapping {
  hostPort: number;
  containerPort: number;
  protocol: 'tcp' | 'udp' | 'sctp';
  hostIp?: string;
}

export interface NetworkAttachRequest {
  /** Container or sandbox id: the key under which the attachment is recorded. */
  id: string;
  /** Network names to join; empty means the driver's default network. */
  networks: string[];
  portMappings: PortMapping[];
  /** Interface name inside the namespace. */
  ifName?: string;
  /** Extra per-attachment arguments (CNI_ARGS, labels, bandwidth ...). */
  args?: Record<string, string>;
}

export interface NetworkAddress {
  /** CIDR notation, e.g. "10.88.0.5/16". */
  address: string;
  gateway?: string;
  interface?: string;
}

export interface NetworkAttachResult {
  network: string;
  addresses: NetworkAddress[];
  routes: { dst: string; gw?: string }[];
  dns: { nameservers: string[]; search: string[]; options: string[] };
}

export interface NetworkDriver {
  readonly name: string;
  /** Joins the namespace at `netnsPath`; on failure nothing stays attached. */
  attach(netnsPath: string, request: NetworkAttachRequest, opts: DriverCallOptions): Promise<NetworkAttachResult[]>;
  /** Leaves every network; idempotent, and works when the namespace is already gone. */
  detach(netnsPath: string | undefined, request: NetworkAttachRequest, opts: DriverCallOptions): Promise<void>;
  /** Verifies the attachment is still as created; throws when it is not. */
  check(netnsPath: string, request: NetworkAttachRequest, opts: DriverCallOptions): Promise<void>;
}
