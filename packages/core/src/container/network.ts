/**
 * A container's network namespace and its attachment to networks, for each
 * run: made at start, torn down at exit (Docker releases the address when a
 * container stops), and cleaned up at restore for containers found dead.
 *
 * The namespace is the engine's, bind-mounted at `<state>/netns/<id>` (made
 * with util-linux's `unshare --net=FILE`), handed to the runtime in the OCI
 * spec; the network plugins (the attachNetwork/detachNetwork hooks) connect
 * it. Modes as Docker's `--network`: `none` (a namespace with only `lo`, the
 * runtime's own), `host` (none), `container:ID|NAME` (the other container's),
 * `bridge`/`default` (the default network) or a network name.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import type { Logger } from 'pino';
import type { NetworkAttachRequest, NetworkAttachResult, NetworkDriver, NetworkInfo, PortMapping } from '../drivers/network.js';
import { IsulaError } from '../errors.js';
import type { Hooks, NetworkHookContext } from '../hooks.js';
import type { ContainerRecord } from './record.js';

const run = promisify(execFile);

/** What a run of the container has attached; kept in the record until the exit's teardown. */
export interface ContainerNetwork {
  /** The namespace file (`SandboxKey`); absent for host/none/container modes. */
  SandboxKey?: string;
  /** The names asked for (empty: the default network). */
  Networks: string[];
  /**
   * The ports the container publishes, as asked for (host port 0: any); where
   * they are published, if anywhere, the Results say. Kept for `connect` (a
   * network joined later may publish them), also when none could be.
   */
  PortMappings: PortMapping[];
  Results: NetworkAttachResult[];
}

export type NetworkPlan =
  | { kind: 'host' }
  | { kind: 'none' }
  | { kind: 'container'; target: string }
  /** No network plugin is loaded: a new, empty namespace from the runtime (lo only). */
  | { kind: 'private' }
  | { kind: 'attach'; networks: string[] };

/**
 * Docker's NetworkMode → what to do. `joined`: the record's JoinedNetworks,
 * which replace the mode's network once set (none of them: loopback only).
 */
export function networkPlan(mode: string | undefined, pluginLoaded: boolean, joined?: readonly string[]): NetworkPlan {
  const m = mode ?? '';
  if (m === 'host') return { kind: 'host' };
  if (m === 'none') return { kind: 'none' };
  if (m.startsWith('container:')) return { kind: 'container', target: m.slice('container:'.length) };
  if (!pluginLoaded) return { kind: 'private' };
  if (joined !== undefined) return { kind: 'attach', networks: joined.length === 0 ? ['none'] : [...joined] };
  if (isDefaultName(m)) return { kind: 'attach', networks: [] };
  return { kind: 'attach', networks: [m] };
}

/** The names that mean the default network (Docker's `bridge`). */
function isDefaultName(name: string): boolean {
  return name === '' || name === 'default' || name === 'bridge';
}

/** The NetworkingConfig.EndpointsConfig keys that may hold the endpoint of network `name` (the default's has three spellings). */
export function endpointKeys(name: string): string[] {
  return name === 'bridge' ? ['bridge', 'default', ''] : [name];
}

/** The network `--network` names (`bridge` for the default). */
function modeNetwork(record: ContainerRecord): string {
  const m = record.HostConfig.NetworkMode ?? '';
  return isDefaultName(m) ? 'bridge' : m;
}

/** The networks a container joins at start, by name (`bridge` for the default). */
export function joinedNetworks(record: ContainerRecord): string[] {
  return record.JoinedNetworks !== undefined ? [...record.JoinedNetworks] : [modeNetwork(record)];
}

/** The static IPv4 address asked for on network `name` (`--ip`, `network connect --ip`), if any. */
export function staticAddress(record: ContainerRecord, name: string): string | undefined {
  const endpoints = record.NetworkingConfig?.EndpointsConfig ?? {};
  return endpointKeys(name).map((k) => endpoints[k]?.IPAMConfig?.IPv4Address).find((a) => a !== undefined && a !== '');
}

/**
 * Docker's port spec `PORT[-END][/PROTO]` (`nat.ParsePortRange` with a
 * protocol, tcp by default): ports 1-65535, END not below PORT; undefined
 * when malformed.
 */
export function parsePortSpec(spec: string): { from: number; to: number; proto: string } | undefined {
  const m = /^(\d{1,5})(?:-(\d{1,5}))?(?:\/(tcp|udp|sctp))?$/i.exec(spec);
  if (m === null) return undefined;
  const from = Number(m[1]);
  const to = m[2] === undefined ? from : Number(m[2]);
  return from < 1 || to > 65535 || to < from ? undefined : { from, to, proto: (m[3] ?? 'tcp').toLowerCase() };
}

/**
 * Docker's PortBindings (`{"80/tcp": [{HostIp, HostPort}]}`) plus, with
 * PublishAllPorts, every exposed port without a binding on a free host port.
 */
export function portMappings(record: ContainerRecord, imageExposed: readonly string[] = []): PortMapping[] {
  const out: PortMapping[] = [];
  const parse = (key: string): { containerPort: number; protocol: PortMapping['protocol'] } => {
    const [port = '', proto = 'tcp'] = key.split('/');
    const containerPort = Number(port);
    if (!Number.isInteger(containerPort) || containerPort < 1 || containerPort > 65535) throw new IsulaError('CONTAINER_CONFIG_INVALID', `invalid container port "${key}"`);
    if (proto !== 'tcp' && proto !== 'udp' && proto !== 'sctp') throw new IsulaError('CONTAINER_CONFIG_INVALID', `invalid protocol in "${key}": want tcp, udp or sctp`);
    return { containerPort, protocol: proto };
  };
  const bindings = record.HostConfig.PortBindings ?? {};
  for (const [key, binds] of Object.entries(bindings)) {
    const { containerPort, protocol } = parse(key);
    for (const b of binds ?? [{}]) {
      const text = b.HostPort ?? '';
      if (text !== '' && !/^\d+$/.test(text)) throw new IsulaError('CONTAINER_CONFIG_INVALID', `invalid host port "${text}" for ${key}${text.includes('-') ? ': port ranges are not supported' : ''}`);
      const hostPort = text === '' ? 0 : Number(text);
      if (hostPort > 65535) throw new IsulaError('CONTAINER_CONFIG_INVALID', `invalid host port "${text}" for ${key}`);
      out.push({ containerPort, protocol, hostPort, ...(b.HostIp !== undefined && b.HostIp !== '' && { hostIp: b.HostIp }) });
    }
  }
  if (record.HostConfig.PublishAllPorts === true) {
    const exposed = new Set([...Object.keys(record.Config.ExposedPorts ?? {}), ...imageExposed]);
    for (const key of exposed) {
      if (key in bindings) continue;
      out.push({ ...parse(key.includes('/') ? key : `${key}/tcp`), hostPort: 0 });
    }
  }
  return out;
}

export class ContainerNetworking {
  readonly #dir: string;
  readonly #hooks: Hooks;
  readonly #log: Logger;
  readonly #drivers: () => readonly NetworkDriver[];
  #dirReady: Promise<void> | undefined;

  constructor(opts: { stateDir: string; hooks: Hooks; log: Logger; drivers: () => readonly NetworkDriver[] }) {
    this.#dir = path.join(opts.stateDir, 'netns');
    this.#hooks = opts.hooks;
    this.#log = opts.log;
    this.#drivers = opts.drivers;
  }

  /** A network plugin taps the attach hook. */
  get pluginLoaded(): boolean {
    return this.#hooks.attachNetwork.taps.length > 0;
  }

  plan(record: ContainerRecord): NetworkPlan {
    return networkPlan(record.HostConfig.NetworkMode, this.pluginLoaded, record.JoinedNetworks);
  }

  /** The network `name` (an alias, an id prefix) means, from the drivers that resolve names; undefined when none knows it. */
  async resolve(name: string, signal: AbortSignal): Promise<NetworkInfo | undefined> {
    for (const d of this.#drivers()) {
      const found = d.resolve === undefined ? undefined : await d.resolve(name, { signal });
      if (found !== undefined) return found;
    }
    return undefined;
  }

  /** Every network's id by its name (and `bridge` for the default one), from the drivers that list networks. */
  async networkIds(signal: AbortSignal): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    for (const d of this.#drivers()) {
      for (const n of (await d.list?.({ signal })) ?? []) {
        out.set(n.name, n.id);
        if (n.isDefault) out.set('bridge', n.id);
      }
    }
    return out;
  }

  /**
   * `network connect` of a running container: `name`'s network joins its
   * namespace through the driver that connects (plugin API 1.10). Returns the
   * new attachment's results. A driver that reports its attachment (1.11)
   * gets the container's ports, to publish them there when none are (Docker's
   * new gateway endpoint); an older one gets none, as before: it may refuse them.
   */
  async connect(record: ContainerRecord, name: string, args: Record<string, string> | undefined, signal: AbortSignal): Promise<NetworkAttachResult[]> {
    const driver = this.#liveDriver();
    if (driver?.connect === undefined) throw new IsulaError('NOT_IMPLEMENTED', 'no network plugin can connect a running container to a network');
    const file = record.Network?.SandboxKey ?? this.netnsPath(record.Id);
    const ports = driver.attachment !== undefined ? (record.Network?.PortMappings ?? []) : [];
    return driver.connect(file, { id: record.Id, networks: [name], portMappings: ports, ...(args !== undefined && { args }) }, { signal });
  }

  /**
   * The record's published ports made what the network driver holds (plugin
   * API 1.11: `NetworkDriver.attachment`): after a connect or disconnect,
   * which may move them, and at restore (`reconcile`). Returns whether they
   * changed; false without such a driver or an attachment (nothing is known
   * better).
   */
  async syncPorts(record: ContainerRecord, signal: AbortSignal): Promise<boolean> {
    const driver = this.#liveDriver();
    if (record.Network === undefined || driver?.attachment === undefined) return false;
    return takePorts(record.Network, await driver.attachment(record.Id, { signal }));
  }

  /**
   * At restore of a running container (plugin API 1.11): the driver's
   * attachment made to agree with the record. Each network `attachment` lists
   * that the record lacks is disconnected, with a warning naming the container
   * and the network: a connect the daemon died in after the driver saved the
   * network and before the record was saved (or a forced disconnect whose DEL
   * failed) is undone, the ports it published moved to another network or
   * released as at any disconnect. A disconnect that fails is logged; the
   * container keeps running. Then the record's ports are taken from the
   * driver (`syncPorts`). Returns whether they changed.
   */
  async reconcile(record: ContainerRecord, signal: AbortSignal): Promise<boolean> {
    const net = record.Network;
    const driver = this.#liveDriver();
    if (net === undefined || driver?.attachment === undefined) return false;
    const held = await driver.attachment(record.Id, { signal });
    const recorded = new Set(net.Results.map((r) => r.network));
    const unrecorded = [...new Set((held ?? []).map((h) => h.network).filter((n) => !recorded.has(n)))];
    if (unrecorded.length === 0) return takePorts(net, held);
    for (const name of unrecorded) {
      this.#log.warn({ id: record.Id, network: name }, 'the network driver holds a network the record lacks; disconnecting it');
      await this.disconnect(record, name, signal)
        .catch((err: unknown) => this.#log.warn({ err, id: record.Id, network: name }, 'disconnecting a network the record lacks failed'));
    }
    // Where the disconnects left the ports.
    return this.syncPorts(record, signal);
  }

  /** `network disconnect` of a running container: its namespace leaves `name`'s network only. */
  async disconnect(record: ContainerRecord, name: string, signal: AbortSignal): Promise<void> {
    const driver = this.#liveDriver();
    if (driver?.disconnect === undefined) throw new IsulaError('NOT_IMPLEMENTED', 'no network plugin can disconnect a running container from a network');
    const file = record.Network?.SandboxKey ?? this.netnsPath(record.Id);
    await driver.disconnect((await pathExists(file)) ? file : undefined, { id: record.Id, networks: [name], portMappings: [] }, { signal });
  }

  /** At create: the network named by `--network` must exist (NETWORK_NOT_FOUND otherwise); --ip and --mac-address well formed. */
  async validate(record: ContainerRecord, signal: AbortSignal): Promise<void> {
    const plan = this.plan(record);
    if (plan.kind === 'container' || plan.kind === 'host' || plan.kind === 'none') {
      const hc = record.HostConfig;
      const publishes = Object.keys(hc.PortBindings ?? {}).length > 0 || hc.PublishAllPorts === true;
      // Docker's conflicts: the namespace is not this container's to configure. Ports of a
      // host or none container are accepted and published nowhere, as Docker's (runconfig's
      // validateNetContainerMode refuses them for container: only).
      if (publishes && plan.kind === 'container') throw new IsulaError('CONTAINER_CONFIG_INVALID', 'conflicting options: port publishing and the container type network mode');
      if ((record.Config.MacAddress ?? '') !== '') throw new IsulaError('CONTAINER_CONFIG_INVALID', `conflicting options: mac-address and the ${plan.kind} network mode`);
      if (Object.values(record.NetworkingConfig?.EndpointsConfig ?? {}).some((e) => (e?.IPAMConfig?.IPv4Address ?? '') !== '')) {
        throw new IsulaError('CONTAINER_CONFIG_INVALID', `conflicting options: ip and the ${plan.kind} network mode`);
      }
    }
    endpointArgs(record, plan.kind === 'attach' ? plan.networks : []);
    if (plan.kind !== 'attach') {
      if (plan.kind === 'private' && !['', 'default', 'bridge'].includes(record.HostConfig.NetworkMode ?? '')) {
        throw new IsulaError('NETWORK_NOT_FOUND', `network ${record.HostConfig.NetworkMode ?? ''} not found: no network plugin is loaded`);
      }
      return;
    }
    for (const name of plan.networks) {
      if ((await this.resolve(name, signal)) === undefined && this.#drivers().some((d) => d.resolve !== undefined)) throw new IsulaError('NETWORK_NOT_FOUND', `network ${name} not found`);
    }
  }

  netnsPath(id: string): string {
    return path.join(this.#dir, id);
  }

  /**
   * The driver that changes and reports a running container's attachment:
   * one for connect, disconnect and `attachment`, so the ports core reads are
   * those of the attachment it changed.
   */
  #liveDriver(): NetworkDriver | undefined {
    return this.#drivers().find((d) => d.connect !== undefined || d.disconnect !== undefined);
  }

  /**
   * Makes the namespace (or pins `ofPid`'s) and attaches it. Returns what the record keeps, or
   * undefined for modes without an engine namespace. On failure nothing
   * stays: the attachment is undone and the namespace removed.
   */
  async setup(record: ContainerRecord, ports: PortMapping[], signal: AbortSignal, ofPid?: number): Promise<ContainerNetwork | undefined> {
    const plan = this.plan(record);
    if (plan.kind !== 'attach') return undefined;
    const file = this.netnsPath(record.Id);
    await this.#createNetns(file, ofPid);
    // Once connect/disconnect chose the networks, each network's static address goes to it alone.
    const args = record.JoinedNetworks === undefined ? endpointArgs(record, plan.networks) : undefined;
    const networkArgs = record.JoinedNetworks === undefined ? undefined : endpointArgsByNetwork(record, record.JoinedNetworks);
    // Disconnected from every network: loopback only, and no port to publish (as Docker).
    const published = plan.networks.length === 1 && plan.networks[0] === 'none' ? [] : ports;
    const request: NetworkAttachRequest = {
      id: record.Id, networks: plan.networks, portMappings: published, ...(args !== undefined && { args }), ...(networkArgs !== undefined && { networkArgs }),
    };
    const ctx: NetworkHookContext = { netnsPath: file, request, results: [], signal };
    try {
      await this.#hooks.attachNetwork.promise(ctx);
    } catch (err) {
      await this.#detach(file, ctx.request).catch((e: unknown) => this.#log.warn({ err: e, id: record.Id }, 'undoing a failed network attach failed'));
      await this.#removeNetns(file);
      throw err;
    }
    // Networks[i] names Results[i] (`none` has no result). The ports asked for are kept even when
    // none could be published: a network connected later may publish them.
    return { SandboxKey: file, Networks: plan.networks.filter((n) => n !== 'none'), PortMappings: ports, Results: ctx.results };
  }

  /** Undoes `setup`; idempotent, and fine when the namespace or the plugin's state is gone. */
  async teardown(record: ContainerRecord): Promise<void> {
    const net = record.Network;
    // A container that never attaches (none, host, another container's namespace) has nothing to undo.
    if (net === undefined && this.plan(record).kind !== 'attach') return;
    const file = net?.SandboxKey ?? this.netnsPath(record.Id);
    // Always asked: after a detach that failed earlier, the plugin still holds the attachment
    // (its lease, its ports) even once the record and the namespace are gone.
    if (this.pluginLoaded) {
      await this.#detach(file, { id: record.Id, networks: net?.Networks ?? [], portMappings: net?.PortMappings ?? [] })
        .catch((err: unknown) => this.#log.warn({ err, id: record.Id }, 'detaching the network failed'));
    }
    await this.#removeNetns(file);
  }

  /** Namespaces under `<state>/netns` whose container is gone (a crash between rm's steps). */
  async sweep(known: ReadonlySet<string>): Promise<void> {
    // The drivers' own attachments of containers that are gone (a detach that failed, then rm).
    for (const d of this.#drivers()) await d.sweep?.(known, { signal: AbortSignal.timeout(300_000) }).catch((err: unknown) => this.#log.warn({ err, driver: d.name }, 'network driver sweep failed'));
    const entries = await fs.readdir(this.#dir).catch(() => [] as string[]);
    for (const id of entries) {
      if (known.has(id)) continue;
      this.#log.warn({ id }, 'removing the network namespace of a container that no longer exists');
      await this.#detach(path.join(this.#dir, id), { id, networks: [], portMappings: [] }).catch(() => undefined);
      await this.#removeNetns(path.join(this.#dir, id));
    }
  }

  /**
   * At daemon shutdown: the netns dir's own bind mount goes when no
   * namespace is left in it (running containers keep theirs, and the mount).
   */
  async close(): Promise<void> {
    const entries = await fs.readdir(this.#dir).catch(() => undefined);
    if (entries === undefined || entries.length > 0) return;
    await run('umount', [this.#dir], { timeout: 30_000 }).catch(() => undefined);
    this.#dirReady = undefined;
  }

  async #detach(file: string, request: NetworkAttachRequest): Promise<void> {
    await this.#hooks.detachNetwork.promise({ netnsPath: (await pathExists(file)) ? file : undefined, request, results: [], signal: AbortSignal.timeout(60_000) });
  }

  /** A new namespace, or (`ofPid`) the one a created container's process is in, pinned at `file`. */
  async #createNetns(file: string, ofPid?: number): Promise<void> {
    // A failed preparation is tried again by the next start, not remembered.
    this.#dirReady ??= this.#prepareDir().catch((err: unknown) => { this.#dirReady = undefined; throw err; });
    await this.#dirReady;
    await this.#removeNetns(file);
    await fs.writeFile(file, '', { mode: 0o600 });
    try {
      if (ofPid === undefined) {
        await run('unshare', [`--net=${file}`, 'true'], { timeout: 30_000 });
      } else {
        // Never the daemon's own namespace: the plugins would configure the host.
        const [theirs, ours] = await Promise.all([fs.stat(`/proc/${ofPid}/ns/net`), fs.stat('/proc/self/ns/net')]);
        if (theirs.ino === ours.ino && theirs.dev === ours.dev) throw new Error(`process ${ofPid} is in the host's network namespace`);
        await run('mount', ['--bind', `/proc/${ofPid}/ns/net`, file], { timeout: 30_000 });
      }
    } catch (err) {
      await fs.rm(file, { force: true });
      throw new IsulaError('INTERNAL', `creating the network namespace ${file} failed: ${(err as { stderr?: string }).stderr?.trim() || String(err)}`, { cause: err });
    }
  }

  /** The netns dir as a private mount point of its own (as podman's), so the namespace mounts never propagate. */
  async #prepareDir(): Promise<void> {
    await fs.mkdir(this.#dir, { recursive: true, mode: 0o755 });
    const mountinfo = await fs.readFile('/proc/self/mountinfo', 'utf8');
    const real = await fs.realpath(this.#dir);
    const isMount = mountinfo.split('\n').some((l) => l.split(' ')[4] === real);
    if (!isMount) await run('mount', ['--bind', real, real], { timeout: 30_000 });
    // Also when it was a mount already (a crash between the two steps).
    await run('mount', ['--make-private', real], { timeout: 30_000 });
  }

  async #removeNetns(file: string): Promise<void> {
    // No file, nothing mounted on it (--network none, or already removed): no umount to spawn.
    if (!(await pathExists(file))) return;
    await run('umount', [file], { timeout: 30_000 }).catch(() => undefined);
    await fs.rm(file, { force: true }).catch(async () => {
      await run('umount', ['-l', file], { timeout: 30_000 }).catch(() => undefined);
      await fs.rm(file, { force: true }).catch((err: unknown) => this.#log.warn({ err, file }, 'removing a network namespace file failed'));
    });
  }
}

/** `net`'s Results with the ports of `held` (the driver's attachment; undefined: left as they are); whether they changed. */
function takePorts(net: ContainerNetwork, held: readonly NetworkAttachResult[] | undefined): boolean {
  if (held === undefined) return false;
  const followed = followPorts(net.Results, held);
  const changed = followed.some((r, i) => JSON.stringify(r.portMappings) !== JSON.stringify(net.Results[i]?.portMappings));
  net.Results = followed;
  return changed;
}

/**
 * `results` with each network's published ports as the driver's `live`
 * results say, by network name: a network `live` shows without ports (or not
 * at all) publishes none. Addresses and the rest stay the record's.
 */
export function followPorts(results: readonly NetworkAttachResult[], live: readonly NetworkAttachResult[]): NetworkAttachResult[] {
  return results.map((r) => {
    const { portMappings: _was, ...rest } = r;
    const now = live.find((l) => l.network === r.network)?.portMappings;
    return now === undefined || now.length === 0 ? rest : { ...rest, portMappings: now.map((m) => ({ ...m })) };
  });
}

/**
 * Per network of `joined` (JoinedNetworks), the CNI_ARGS of its endpoint:
 * its own static address (`--ip`, `network connect --ip`), and the MAC
 * (`--mac-address`) on the network `--network` named, as Docker gives it to
 * that endpoint only.
 */
export function endpointArgsByNetwork(record: ContainerRecord, joined: readonly string[]): Record<string, Record<string, string>> | undefined {
  const modeKey = modeNetwork(record);
  const out: Record<string, Record<string, string>> = {};
  for (const name of joined) {
    const ip = staticAddress(record, name);
    const mac = name === modeKey ? record.Config.MacAddress : undefined;
    const args = { ...(ip !== undefined && { IP: ip }), ...(mac !== undefined && mac !== '' && { MAC: mac.toLowerCase() }) };
    if (Object.keys(args).length > 0) out[name] = args;
  }
  return Object.keys(out).length === 0 ? undefined : out;
}

/**
 * CNI_ARGS for a static address (`--ip`: host-local's `IP`) and MAC
 * (`--mac-address`: the bridge plugin's `MAC`), from Docker's
 * NetworkingConfig endpoint of the network joined and Config.MacAddress.
 */
export function endpointArgs(record: ContainerRecord, networks: readonly string[]): Record<string, string> | undefined {
  const out: Record<string, string> = {};
  const endpoints = record.NetworkingConfig?.EndpointsConfig ?? {};
  const names = networks.length === 0 ? ['bridge', 'default', ''] : [...networks];
  for (const [name, ep] of Object.entries(endpoints)) {
    const ip = ep?.IPAMConfig?.IPv4Address;
    if (ip === undefined || ip === '') continue;
    if (!names.includes(name)) throw new IsulaError('CONTAINER_CONFIG_INVALID', `--ip ${ip} is for network ${name}, which the container does not join`);
    checkIpv4(ip);
    out['IP'] = ip;
  }
  const mac = record.Config.MacAddress;
  if (mac !== undefined && mac !== '') {
    if (!/^([0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}$/.test(mac)) throw new IsulaError('CONTAINER_CONFIG_INVALID', `invalid MAC address ${JSON.stringify(mac)}`);
    out['MAC'] = mac.toLowerCase();
  }
  return Object.keys(out).length === 0 ? undefined : out;
}

/** CONTAINER_CONFIG_INVALID unless `ip` is a dotted-quad IPv4 address. */
export function checkIpv4(ip: string): void {
  if (!/^(\d{1,3})(\.\d{1,3}){3}$/.test(ip) || ip.split('.').some((x) => Number(x) > 255)) throw new IsulaError('CONTAINER_CONFIG_INVALID', `invalid IPv4 address ${JSON.stringify(ip)}`);
}

/**
 * CONTAINER_CONFIG_INVALID unless `ip` is a host address of one of the
 * network's IPv4 subnets (Docker refuses `connect --ip` outside them); a
 * network that lists none is not checked.
 */
export function checkInSubnets(ip: string, network: NetworkInfo): void {
  const toInt = (a: string): number => a.split('.').reduce((n, x) => n * 256 + Number(x), 0);
  const v4 = network.subnets.filter((s) => /^\d+\.\d+\.\d+\.\d+\/\d+$/.test(s.subnet));
  if (v4.length === 0) return;
  const addr = toInt(ip);
  const inside = v4.some((s) => {
    const [base = '', bits = '0'] = s.subnet.split('/');
    const size = 2 ** (32 - Number(bits));
    const start = Math.floor(toInt(base) / size) * size;
    return addr > start && addr < start + size - 1;
  });
  if (!inside) {
    throw new IsulaError('CONTAINER_CONFIG_INVALID', `invalid address ${ip}: it does not belong to any of network ${network.name}'s subnets (${v4.map((s) => s.subnet).join(', ')})`);
  }
}

/** Whether `file` exists (a namespace file, without following a link). */
function pathExists(file: string): Promise<boolean> {
  return fs.lstat(file).then(() => true, () => false);
}
