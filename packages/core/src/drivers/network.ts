/**
 * NetworkDriver: connects a network namespace (a plain container's or a CRI
 * pod sandbox's) to networks, e.g. through a CNI plugin chain.
 */
import type { DriverCallOptions } from './runtime.js';

export interface PortMapping {
  /** 0 asks the driver for a free port (Docker's -P); the result gives the one chosen. */
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
  /**
   * The ports to publish (`attach`; `connect` since plugin API 1.11, see
   * there), on the first network that can map them; none can (internal
   * networks, `none`): the attach goes on without them.
   */
  portMappings: PortMapping[];
  /** Interface name inside the namespace. */
  ifName?: string;
  /** Extra per-attachment arguments (CNI_ARGS, labels, bandwidth ...). */
  args?: Record<string, string>;
  /**
   * Arguments for one network only, by its name in `networks`, over `args`
   * (a static address on the second network of a container). Plugin API 1.10.
   */
  networkArgs?: Record<string, Record<string, string>>;
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
  /** The interface's MAC address in the namespace (plugin API 1.4). */
  mac?: string;
  /** The port mappings in effect, with host ports chosen for requests of 0 (plugin API 1.4). */
  portMappings?: PortMapping[];
  /** The network's id, as `NetworkInfo.id` (plugin API 1.10): inspect's `NetworkID`. */
  networkId?: string;
}

/** A network as `isula network ls/inspect` shows it (plugin API 1.4). */
export interface NetworkInfo {
  name: string;
  /** Stable id (e.g. the sha256 of the name and the file). */
  id: string;
  /** `bridge`, or the first plugin's type. */
  driver: string;
  subnets: { subnet: string; gateway?: string }[];
  internal: boolean;
  labels: Record<string, string>;
  /** Where it is defined (a conflist path). */
  file: string;
  created: Date;
  /** The plugin types of the chain, in order. */
  plugins: string[];
  /** The engine's default network (`bridge`/`default` name it). */
  isDefault: boolean;
}

export interface NetworkCreateRequest {
  name: string;
  /** CIDR; the driver picks a free private one when absent. */
  subnet?: string;
  gateway?: string;
  driver?: string;
  /** No route out and no NAT: containers reach only each other. */
  internal?: boolean;
  labels?: Record<string, string>;
}

/** What `NetworkDriver.setPodCidr` did (plugin API 1.7). */
export interface PodCidrOutcome {
  /** True when new attachments to the default network take their addresses from the CIDR. */
  applied: boolean;
  /** Why it was not applied (the operator's own conflist, containers attached ...), for logs and `Status`. */
  reason?: string;
}

export interface NetworkDriver {
  readonly name: string;
  /** Joins the namespace at `netnsPath`; on failure nothing stays attached. */
  attach(netnsPath: string, request: NetworkAttachRequest, opts: DriverCallOptions): Promise<NetworkAttachResult[]>;
  /** Leaves every network; idempotent, and works when the namespace is already gone. */
  detach(netnsPath: string | undefined, request: NetworkAttachRequest, opts: DriverCallOptions): Promise<void>;
  /** Verifies the attachment is still as created; throws when it is not. */
  check(netnsPath: string, request: NetworkAttachRequest, opts: DriverCallOptions): Promise<void>;
  /**
   * Joins a live attachment of `request.id` (made by `attach`) to more networks,
   * `request.networks`, on the next free interfaces, leaving the networks it has
   * alone (`network connect` on a running container). NETWORK_NOT_FOUND for an
   * unknown network or an id with no attachment; NETWORK_ALREADY_EXISTS when it
   * is on one of them already. On failure the attachment is as before; `detach`
   * leaves the joined networks too. Optional (plugin API 1.10).
   *
   * Ports (plugin API 1.11; core relies on it only from a driver that has
   * `attachment`, and passes older ones none): `request.portMappings` are the
   * container's published ports, as `attach` got them. When the attachment
   * publishes none (its networks could not map them) and a joined network
   * can, they are published there, host ports chosen as at attach
   * (NETWORK_PORT_IN_USE, and nothing joined, when one is taken), and its
   * result carries them (Docker's new gateway endpoint). Ports published
   * already stay where they are.
   */
  connect?(netnsPath: string, request: NetworkAttachRequest, opts: DriverCallOptions): Promise<NetworkAttachResult[]>;
  /**
   * Leaves only `request.networks` of `request.id`'s attachment; the others,
   * and loopback, stay (`network disconnect`). NETWORK_NOT_FOUND when it is on
   * none of them. Works when the namespace is gone. Optional (plugin API 1.10).
   *
   * Ports (plugin API 1.11, a driver that has `attachment`): when a network
   * that leaves published the ports, they move to another network of the
   * attachment that can map them, on the same host ports, or are released
   * (no DNAT rule, no host port held) when none can; a move that fails is
   * logged and the ports released, the disconnect stands (as Docker's).
   * Core reads where they went with `attachment`. Core also calls it at
   * restore for a network `attachment` lists and the record lacks, which may
   * be half-joined (a connect the daemon died in: its ADD may never have
   * finished); the DEL must undo what there is.
   */
  disconnect?(netnsPath: string | undefined, request: NetworkAttachRequest, opts: DriverCallOptions): Promise<void>;
  /**
   * The attachment of `id` as the driver holds it now: one result per network
   * it holds (also one whose connect never finished or whose DEL failed), in
   * the order joined, the network publishing the ports with `portMappings`;
   * undefined when it holds none. Read-only. Core asks it of the driver it
   * connects and disconnects through, and follows the ports with it after
   * each `connect`/`disconnect`. At restore of a running container, core first
   * calls `disconnect` for each network listed here that the record lacks (a
   * connect the daemon died in after the driver saved the network and before
   * core saved the record: undone, its ports moved or released as at any
   * disconnect; a failure is logged and the container keeps running), then
   * takes the record's ports from it: a network the record has gets the ports
   * listed for it here, or none when it is not listed (a disconnect the
   * daemon died in). A driver that has it publishes and moves ports as
   * `connect`/`disconnect` say since 1.11. Optional (plugin API 1.11).
   */
  attachment?(id: string, opts: DriverCallOptions): Promise<NetworkAttachResult[] | undefined>;

  /** Optional network management (plugin API 1.4): what `isula network` and `/networks` use. */
  list?(opts: DriverCallOptions): Promise<NetworkInfo[]>;
  /** NETWORK_ALREADY_EXISTS when the name is taken; NETWORK_CONFIG_INVALID for a bad or overlapping subnet. */
  create?(request: NetworkCreateRequest, opts: DriverCallOptions): Promise<NetworkInfo>;
  /** NETWORK_NOT_FOUND, or NETWORK_IN_USE naming the containers attached to it. */
  remove?(name: string, opts: DriverCallOptions): Promise<void>;
  /** The network a name (or an alias such as `bridge`) means, or undefined. */
  resolve?(name: string, opts: DriverCallOptions): Promise<NetworkInfo | undefined>;
  /**
   * At daemon start: detach whatever the driver still holds for ids not in
   * `known` (containers removed while a detach failed). Optional (plugin API 1.4).
   */
  sweep?(known: ReadonlySet<string>, opts: DriverCallOptions): Promise<void>;
  /**
   * The orchestrator's pod CIDR for this node (the CRI's UpdateRuntimeConfig;
   * one or more comma-separated CIDRs for dual stack): the driver makes its
   * default network hand out addresses from it where it owns that network's
   * configuration, and otherwise leaves the configuration alone and says why
   * in the outcome. Idempotent; attachments made before keep their addresses.
   * NETWORK_CONFIG_INVALID for a malformed CIDR. Optional (plugin API 1.7).
   */
  setPodCidr?(cidr: string, opts: DriverCallOptions): Promise<PodCidrOutcome>;
}
