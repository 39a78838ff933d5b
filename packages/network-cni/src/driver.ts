/**
 * The CNI NetworkDriver: attach = loopback on `lo`, then each requested
 * network's chain on eth0, eth1, ...; detach = DEL of all of it, in reverse,
 * from the attachment cache. Also the optional network management
 * (`list`/`create`/`remove`/`resolve`) over the conflists in cni-conf-dir.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { IsulaError, KeyedMutex, writeFileAtomic } from '@isula/core';
import type {
  DriverCallOptions, NetworkAttachRequest, NetworkAttachResult, NetworkCreateRequest, NetworkDriver, NetworkInfo, PodCidrOutcome, PortMapping,
} from '@isula/core';
import type { Logger } from 'pino';
import { AttachmentCache, CACHE_SCHEMA_VERSION, validateId } from './cache.js';
import type { CacheEntry, CachedNetwork } from './cache.js';
import { CniRunner, cniArgs } from './cni.js';
import type { RuntimeConf } from './cni.js';
import {
  bridgeConfList, bridgeNameFor, findNetwork, invalidConf, loadConfDir, loadConfFile, NETWORK_NAME, networkId, parseConfList,
} from './conf.js';
import type { ConfDir, LoadedNetwork, NetworkConfList } from './conf.js';
import { cidrSize, contains, firstHost, formatCidr, formatIpv4, overlaps, parseCidr, parseIpv4, pickFreeSubnet } from './ipv4.js';
import type { Ipv4Cidr } from './ipv4.js';
import { removeBridgeIsolation, teardownIpMasq } from './iptables.js';
import { DEFAULT_OPTIONS, IFNAME, RESERVED_NAMES } from './options.js';
import { collides, portInUse, probePort, publishingNetwork, validateMapping } from './ports.js';
import { sandboxIps, summarizeResult } from './result.js';

export interface CniNetworkDriverOptions {
  /** daemon.json `cni-conf-dir`. */
  confDir: string;
  /** daemon.json `cni-bin-dir`. */
  binDirs: string[];
  /** The daemon's graph root: the cache goes to `<graph>/cni/cache`, host-local leases of isula's networks to `<graph>/cni/networks`. */
  graph: string;
  defaultNetwork?: string;
  bridge?: string;
  subnet?: string;
  pluginTimeoutMs?: number;
  log: Logger;
}

/** The loopback "network": `lo` up, run before every other one (as CRI runtimes do). */
const LOOPBACK_CONF: Record<string, unknown> = Object.freeze({ cniVersion: '1.0.0', name: 'cni-loopback', plugins: [{ type: 'loopback' }] });
/** nsfs: what a bind-mounted (or /proc) network namespace reports through statfs. */
const NSFS_MAGIC = 0x6e736673;
/** Plugins whose ipMasq rules survive a DEL without netns (see masq.ts). */
const MASQ_PLUGINS = ['bridge', 'ptp'];
/** Prefix length from which an id prefix names a network (Docker's short id). */
const MIN_ID_PREFIX = 12;

export class CniNetworkDriver implements NetworkDriver {
  readonly name = 'cni';
  readonly confDir: string;
  readonly defaultNetwork: string;
  /** host-local's dataDir for the networks isula writes. */
  readonly ipamDir: string;
  /** `subnet` follows the pod CIDR once one is set (see setPodCidr). */
  readonly #opts: { bridge: string; subnet: string };
  readonly #runner: CniRunner;
  readonly #cache: AttachmentCache;
  readonly #log: Logger;
  readonly #mutex = new KeyedMutex();
  readonly #warnedInvalid = new Set<string>();

  constructor(opts: CniNetworkDriverOptions) {
    this.confDir = opts.confDir;
    this.defaultNetwork = opts.defaultNetwork ?? DEFAULT_OPTIONS.defaultNetwork;
    this.ipamDir = path.join(opts.graph, 'cni', 'networks');
    this.#opts = { bridge: opts.bridge ?? DEFAULT_OPTIONS.bridge, subnet: opts.subnet ?? DEFAULT_OPTIONS.subnet };
    this.#log = opts.log;
    this.#runner = new CniRunner({ binDirs: opts.binDirs, timeoutMs: opts.pluginTimeoutMs ?? DEFAULT_OPTIONS.pluginTimeoutMs, log: opts.log });
    this.#cache = new AttachmentCache(path.join(opts.graph, 'cni', 'cache'), opts.log);
  }

  // -------------------------------------------------------------------------
  // attach / detach / check

  async attach(netnsPath: string, request: NetworkAttachRequest, opts: DriverCallOptions): Promise<NetworkAttachResult[]> {
    validateId(request.id);
    for (const m of request.portMappings) validateMapping(m);
    checkArgs(request); // throws on a malformed pair before anything runs
    const netnsId = await netnsIdOf(netnsPath);
    if (netnsId === undefined) {
      throw new IsulaError('NETWORK_CONFIG_INVALID', `${netnsPath} is not a network namespace`, { details: { netnsPath } });
    }
    return this.#mutex.run(`id:${request.id}`, async () => {
      const started = Date.now();
      const stale = await this.#cache.get(request.id);
      if (stale) {
        // A previous attachment never detached (daemon crash): clean it first. Its netns path may be the
        // one just made for this start: #delEntry tells them apart by inode.
        this.#log.warn({ container: request.id }, 'stale CNI attachment found; detaching it first');
        await this.#delEntry(stale, stale.netnsPath, {});
        await this.#cache.delete(stale.id);
      }

      const names = request.networks.length === 0 ? [this.defaultNetwork] : request.networks;
      if (names.includes('host')) {
        throw new IsulaError('NETWORK_CONFIG_INVALID', 'the host network is not attached through CNI: a container on it shares the host\'s namespace');
      }
      // `none` (Docker's): a namespace with loopback only.
      const isNone = names.includes('none');
      if (isNone && names.length > 1) throw new IsulaError('NETWORK_CONFIG_INVALID', 'network none cannot be combined with other networks');
      // From the conf lookup until the attachment is in the cache, under the conf lock: a
      // concurrent `network rm` either sees this user or runs before the lookup.
      // The default network's conflist is written (under the conf lock) before taking it here.
      if (!isNone) await this.#confDirWithDefault();
      const entry = await this.#mutex.run('conf', async () => {
        const lists: LoadedNetwork[] = [];
        /** Each list's own arguments, when the request has per-network ones. */
        const listArgs: (Record<string, string> | undefined)[] = [];
        const dir = isNone ? undefined : await loadConfDir(this.confDir);
        for (const name of dir ? names : []) {
          const found = this.#lookup(dir as ConfDir, name);
          if (!found) throw networkNotFound(name);
          if (lists.some((l) => l.list.name === found.list.name)) continue;
          lists.push(found);
          listArgs.push(request.networkArgs === undefined ? undefined : { ...request.args, ...request.networkArgs[name] });
        }
        // Every binary is found before anything is added: a missing one leaves nothing to undo.
        for (const type of new Set(['loopback', ...lists.flatMap((l) => l.list.plugins.map((p) => p.type))])) await this.#runner.findPlugin(type);
        // No network that can map ports (an internal one, `none`): the container starts without them.
        const portTarget = request.portMappings.length === 0 ? -1 : publishingNetwork(lists.map((l) => l.list));
        const ifNames = interfaceNames(request.ifName, lists.length);

        await this.#cache.entries();
        // Ports are chosen and recorded under one lock, so two attachments never take the same one.
        return this.#mutex.run('ports', async () => {
          // Unpublished ports take no host port: nothing to hold, nothing to leak.
          const mappings = portTarget < 0 ? [] : await this.#allocatePorts(request.id, request.portMappings);
          const planned: CacheEntry = {
            schemaVersion: CACHE_SCHEMA_VERSION,
            id: request.id,
            netnsPath,
            netnsInode: netnsId.inode,
            netnsCtimeNs: netnsId.ctimeNs,
            request: structuredClone(request),
            loopback: { config: { ...LOOPBACK_CONF } },
            networks: lists.map((l, i): CachedNetwork => ({
              name: l.list.name,
              file: l.file,
              ifName: ifNames[i] as string,
              config: l.list.raw,
              portMappings: i === portTarget ? mappings : [],
              ...(listArgs[i] !== undefined && { args: listArgs[i] }),
            })),
            complete: false,
            created: new Date().toISOString(),
          };
          this.#cache.remember(planned);
          return planned;
        });

      });

      let reached = -1; // the last network whose ADD started
      try {
        // On disk before the first ADD: after a crash mid-ADD, DEL finds the attachment.
        await this.#cache.put(entry);
        // Loopback touches only `lo` and each network its own interface, so loopback runs alongside
        // the networks (containerd's go-cni attaches all of a pod's networks, loopback included, at once).
        // Settled before anything is undone: a rollback's DEL must not race its ADD.
        const loopback = settle(this.#runner.addNetworkList(loopbackList(), { containerId: entry.id, netns: netnsPath, ifName: 'lo' }, opts)
          .then((result) => { entry.loopback.result = result; }));
        try {
          for (const [i, net] of entry.networks.entries()) {
            reached = i;
            await this.#addNetwork(entry, net, netnsPath, opts);
            // On disk before the next network: after a crash there, DEL gets this one's prevResult
            // (firewall's rules need it). The last network's result goes with `complete` below.
            if (i < entry.networks.length - 1) await this.#cache.put(entry);
          }
        } finally {
          await loopback.done;
        }
        loopback.rethrow();
        entry.complete = true;
        await this.#cache.put(entry);
      } catch (err) {
        await this.#rollback(entry, netnsPath, reached, err);
        throw err;
      }
      this.#log.info({ container: entry.id, networks: entry.networks.map((n) => n.name), durationMs: Date.now() - started }, 'network attached');
      if (request.portMappings.length > 0 && entry.networks.every((n) => n.portMappings.length === 0)) {
        // Docker says nothing; here whoever asked for -p finds in the daemon log why the ports do not answer.
        const networks = isNone ? ['none'] : entry.networks.map((n) => n.name);
        this.#log.warn({ container: entry.id, networks, portMappings: request.portMappings }, 'ports not published: no network of the container can map ports');
      }
      return entry.networks.map((n) => summary(n));
    });
  }

  async detach(netnsPath: string | undefined, request: NetworkAttachRequest, opts: DriverCallOptions): Promise<void> {
    validateId(request.id);
    await this.#mutex.run(`id:${request.id}`, async () => {
      const entry = await this.#cache.get(request.id);
      if (!entry) {
        this.#log.debug({ container: request.id }, 'no CNI attachment to detach');
        return;
      }
      const started = Date.now();
      // No overall signal: DEL must run to its end (each plugin is bounded by pluginTimeout), or
      // a slow first plugin would leave the later ones (bridge: the lease) never run.
      void opts;
      await this.#delEntry(entry, netnsPath ?? entry.netnsPath, {});
      // Last: while DEL may still be needed, the entry stays for a retry.
      await this.#cache.delete(entry.id);
      this.#log.info({ container: entry.id, networks: entry.networks.map((n) => n.name), durationMs: Date.now() - started }, 'network detached');
    });
  }

  /** Detaches what the cache still holds for containers the engine no longer has. */
  async sweep(known: ReadonlySet<string>, opts: DriverCallOptions): Promise<void> {
    for (const entry of (await this.#cache.entries()).values()) {
      if (known.has(entry.id)) continue;
      this.#log.warn({ container: entry.id }, 'detaching the network of a container that no longer exists');
      await this.detach(entry.netnsPath, { id: entry.id, networks: [], portMappings: [] }, opts)
        .catch((err: unknown) => this.#log.warn({ err, container: entry.id }, 'sweeping a stale CNI attachment failed'));
    }
  }

  async check(netnsPath: string, request: NetworkAttachRequest, opts: DriverCallOptions): Promise<void> {
    validateId(request.id);
    await this.#mutex.run(`id:${request.id}`, async () => {
      const entry = await this.#cache.get(request.id);
      if (!entry || !entry.complete) throw notAttached(request.id);
      if (!(await isAttachedNetns(netnsPath, entry))) throw netnsGone(request.id, netnsPath);
      await this.#runner.checkNetworkList(loopbackList(), { containerId: entry.id, netns: netnsPath, ifName: 'lo' }, entry.loopback.result, opts);
      for (const net of entry.networks) {
        // portmap 1.1.1's CHECK fails on a missing IPv6 chain (PLATFORM.md §6).
        await this.#runner.checkNetworkList(parseConfList(net.config), this.#rt(entry, net, netnsPath), net.result, { ...opts, skip: ['portmap'] });
      }
    });
  }

  async connect(netnsPath: string, request: NetworkAttachRequest, opts: DriverCallOptions): Promise<NetworkAttachResult[]> {
    validateId(request.id);
    checkArgs(request);
    if (request.networks.length === 0) throw new IsulaError('NETWORK_CONFIG_INVALID', 'no network to connect to');
    const reserved = request.networks.find((n) => n === 'host' || n === 'none');
    if (reserved !== undefined) throw new IsulaError('NETWORK_CONFIG_INVALID', `a running container cannot join network ${reserved}`);
    return this.#mutex.run(`id:${request.id}`, async () => {
      const started = Date.now();
      const entry = await this.#cache.get(request.id);
      if (!entry || !entry.complete) throw notAttached(request.id);
      if (!(await isAttachedNetns(netnsPath, entry))) throw netnsGone(request.id, netnsPath);
      await this.#confDirWithDefault();
      const added = await this.#mutex.run('conf', async () => {
        const dir = await loadConfDir(this.confDir);
        const lists: LoadedNetwork[] = [];
        const listArgs: Record<string, string>[] = [];
        for (const name of request.networks) {
          const found = this.#lookup(dir, name);
          if (!found) throw networkNotFound(name);
          if (entry.networks.some((n) => n.name === found.list.name) || lists.some((l) => l.list.name === found.list.name)) {
            throw new IsulaError('NETWORK_ALREADY_EXISTS', `container ${request.id} is already connected to network ${found.list.name}`, { details: { container: request.id, network: found.list.name } });
          }
          lists.push(found);
          listArgs.push({ ...request.args, ...request.networkArgs?.[name] });
        }
        for (const type of new Set(lists.flatMap((l) => l.list.plugins.map((p) => p.type)))) await this.#runner.findPlugin(type);
        const ifNames = freeInterfaceNames(entry.networks.map((n) => n.ifName), lists.length);
        // Its own CNI_ARGS (a static address, or none), never the first attach's.
        const nets = lists.map((l, i): CachedNetwork => ({ name: l.list.name, file: l.file, ifName: ifNames[i] as string, config: l.list.raw, portMappings: [], args: listArgs[i] ?? {} }));
        // Ports that no network of the attachment publishes go to the first joined network that
        // can map them: Docker's new gateway endpoint, when the container had none (only internal
        // networks, or none). Ports published already stay where they are. A network kept only
        // for a DEL that failed, or whose ADD never finished, publishes nothing.
        const portTarget = request.portMappings.length === 0 || entry.networks.some(publishes)
          ? -1
          : publishingNetwork(lists.map((l) => l.list));
        // Checked only when published here: ports that go nowhere cannot fail the connect.
        if (portTarget >= 0) for (const m of request.portMappings) validateMapping(m);
        // Chosen and recorded under the ports lock, as attach's; on disk before the first ADD, as
        // attach's: after a crash mid-ADD, detach DELs the network and its DNAT rules.
        await this.#mutex.run('ports', async () => {
          const target = nets[portTarget];
          if (target !== undefined) target.portMappings = await this.#allocatePorts(request.id, request.portMappings);
          entry.networks.push(...nets);
        });
        try {
          await this.#cache.put(entry);
        } catch (err) {
          // Nothing was added: the entry lets go of the networks, and so of the host ports they held.
          entry.networks = entry.networks.filter((n) => !nets.includes(n));
          throw err;
        }
        return nets;
      });
      const done: CachedNetwork[] = [];
      try {
        for (const net of added) {
          await this.#addNetwork(entry, net, netnsPath, opts);
          done.push(net);
          // On disk before the next network (after a crash there, DEL gets this one's prevResult), and
          // the last one before the connect is reported.
          await this.#cache.put(entry);
        }
      } catch (err) {
        // DEL of what was (or may have been) added, newest first; the entry goes back to what it was,
        // but for a network whose DEL failed too: it stays, for detach to try again.
        const undone: CachedNetwork[] = [];
        for (const net of [...added].reverse()) {
          await this.#delNetwork(entry, net, netnsPath, {}).then(
            () => { undone.push(net); },
            (e: unknown) => {
              net.isLeaving = true;
              this.#log.error({ err: e, container: entry.id, network: net.name }, 'undoing a failed network connect failed; detach will retry from the cache');
            },
          );
        }
        entry.networks = entry.networks.filter((n) => !undone.includes(n));
        await this.#cache.put(entry).catch((e: unknown) => this.#log.error({ err: e, container: entry.id }, 'writing the CNI cache failed'));
        throw err;
      }
      const publishing = done.find((n) => n.portMappings.length > 0);
      this.#log.info({ container: entry.id, networks: done.map((n) => n.name), ...(publishing && { portsPublishedOn: publishing.name }), durationMs: Date.now() - started }, 'network connected');
      return done.map((n) => summary(n));
    });
  }

  async disconnect(netnsPath: string | undefined, request: NetworkAttachRequest, opts: DriverCallOptions): Promise<void> {
    validateId(request.id);
    void opts; // DEL runs to its end, as detach's
    await this.#mutex.run(`id:${request.id}`, async () => {
      const entry = await this.#cache.get(request.id);
      if (!entry) throw notAttached(request.id);
      const dir = await loadConfDir(this.confDir).catch(() => undefined);
      // By the name the attachment recorded, or what the name (an alias, an id prefix) means now.
      const leaving = entry.networks.filter((n) => request.networks.some((name) => name === n.name || (dir !== undefined && this.#lookup(dir, name)?.list.name === n.name)));
      if (leaving.length === 0) {
        throw new IsulaError('NETWORK_NOT_FOUND', `container ${request.id} is not connected to network ${request.networks.join(', ')}`, { details: { container: request.id, networks: request.networks } });
      }
      const live = await isAttachedNetns(netnsPath ?? entry.netnsPath, entry);
      const netns = live ? (netnsPath ?? entry.netnsPath) : '';
      // Docker re-selects the gateway endpoint when the one publishing the ports leaves, and the
      // new one publishes them: here the first network left that can map ports, on the same host
      // ports. Recorded for it before the DEL (under the ports lock, so no other attachment takes a
      // port between the DEL and the move), published after it (two DNAT rules for a port shadow).
      // Never to a network kept only for a DEL that failed or whose ADD never finished, nor when
      // another network publishes already (the ports were published anew after such a DEL).
      const carrier = leaving.find((n) => n.portMappings.length > 0);
      const stays = entry.networks.filter((n) => !leaving.includes(n));
      const target = carrier === undefined || !live || stays.some(publishes) ? undefined : stays.find((n) => isJoined(n) && canMapPorts(n));
      let moveFailure: { err: unknown } | undefined;
      if (carrier !== undefined && target !== undefined) {
        await this.#mutex.run('ports', async () => {
          try {
            target.portMappings = await this.#allocatePorts(entry.id, carrier.portMappings);
          } catch (err) {
            moveFailure = { err }; // logged once the carrier's DEL says what became of the ports
          }
        });
        if (target.portMappings.length > 0) {
          await this.#cache.put(entry).catch((err: unknown) => {
            target.portMappings = []; // nothing left yet: the move is off, the disconnect fails
            throw err;
          });
        }
      }
      let first: unknown;
      for (const net of [...leaving].reverse()) {
        try {
          await this.#delNetwork(entry, net, netns, {});
          entry.networks = entry.networks.filter((n) => n !== net);
        } catch (err) {
          net.isLeaving = true;
          first ??= err;
        }
      }
      // The carrier's DEL failed: it keeps its ports (and its DNAT rules, for detach to remove).
      const isCarrierKept = carrier !== undefined && entry.networks.includes(carrier);
      if (target !== undefined && isCarrierKept) target.portMappings = [];
      if (moveFailure !== undefined && carrier !== undefined) {
        this.#log.error({ err: moveFailure.err, container: entry.id, network: target?.name, portMappings: carrier.portMappings },
          isCarrierKept ? 'published ports could not move to another network; they are kept for detach' : 'published ports could not move to another network; they are released');
      }
      // What did not go stays in the entry, for detach's DEL.
      await this.#cache.put(entry);
      // The carrier is gone: its ports go to the target also when another leaving network's DEL failed.
      if (target !== undefined && target.portMappings.length > 0) await this.#publish(entry, target, netns);
      if (first !== undefined) throw first;
      this.#log.info({ container: entry.id, networks: leaving.map((n) => n.name), ...(carrier && { portsPublishedOn: target?.portMappings.length ? target.name : null }) }, 'network disconnected');
    });
  }

  /**
   * The live attachment of `id`: each network's result (those marked as
   * leaving too), the one publishing the ports with them; undefined when there
   * is none. What core reads after a disconnect moved the ports, and at
   * restore, where it disconnects a network the record lacks (a connect the
   * daemon died in).
   */
  async attachment(id: string, _opts: DriverCallOptions): Promise<NetworkAttachResult[] | undefined> {
    validateId(id);
    return this.#mutex.run(`id:${id}`, async () => (await this.#cache.get(id))?.networks.map((n) => summary(n)));
  }

  /**
   * ADD of the plugins of `net`'s chain that map ports (portmap), alone, with
   * the network's result as prevResult: its DNAT rules for `net.portMappings`
   * on a network joined before. On failure the rules are DELed and the ports
   * released (logged, as Docker logs a gateway endpoint it could not
   * program; the disconnect stands); should that DEL fail too, the cache keeps
   * the ports for detach's DEL to remove the rules. The log says which, after
   * the DEL.
   */
  async #publish(entry: CacheEntry, net: CachedNetwork, netns: string): Promise<void> {
    const list = parseConfList(net.config);
    const mappers = list.plugins.filter((p) => p.capabilities?.['portMappings'] === true);
    const rt = this.#rt(entry, net, netns);
    try {
      for (const plugin of mappers) await this.#runner.execPlugin('ADD', list, plugin, rt, net.result);
    } catch (err) {
      const fields = { err, container: entry.id, network: net.name, portMappings: net.portMappings };
      try {
        for (const plugin of [...mappers].reverse()) await this.#runner.execPlugin('DEL', list, plugin, rt, net.result);
      } catch (e) {
        this.#log.warn({ err: e, container: entry.id, network: net.name }, 'CNI DEL failed');
        this.#log.error(fields, 'published ports could not move to another network; they are kept for detach');
        return;
      }
      this.#log.error(fields, 'published ports could not move to another network; they are released');
      net.portMappings = [];
      await this.#cache.put(entry);
    }
  }

  /**
   * ADD of `net`'s chain into `entry` (attach, connect). The partial result is
   * on disk once the addresses are known and more plugins follow: a crash
   * after the firewall plugin's ADD must leave DEL the IPs whose rules it
   * removes (the crash campaign found it). The final result is the caller's
   * to save.
   */
  async #addNetwork(entry: CacheEntry, net: CachedNetwork, netnsPath: string, opts: DriverCallOptions): Promise<void> {
    const list = parseConfList(net.config);
    let savedIps = false;
    net.result = await this.#runner.addNetworkList(list, this.#rt(entry, net, netnsPath), {
      ...opts,
      onResult: async (partial, index) => {
        net.result = partial;
        if (!savedIps && index < list.plugins.length - 1 && hasIps(partial)) {
          savedIps = true;
          await this.#cache.put(entry);
        }
      },
    });
  }

  /** Runtime arguments of one network of an attachment. */
  #rt(entry: CacheEntry, net: CachedNetwork, netns: string): RuntimeConf {
    return {
      containerId: entry.id,
      netns,
      ifName: net.ifName,
      ...(net.args ?? entry.request.args ? { args: net.args ?? entry.request.args } : {}),
      ...(net.portMappings.length > 0 ? { capabilityArgs: { portMappings: net.portMappings } } : {}),
    };
  }

  /** After a failed ADD: DEL what was (or may have been) added, in reverse; the cache entry goes when that worked. */
  async #rollback(entry: CacheEntry, netnsPath: string, reached: number, cause: unknown): Promise<void> {
    const partial = { ...entry, networks: entry.networks.slice(0, reached + 1) };
    try {
      // No signal: an aborted attach must still be undone.
      await this.#delEntry(partial, netnsPath, {});
      await this.#cache.delete(entry.id);
    } catch (err) {
      this.#log.error({ err, cause, container: entry.id }, 'undoing a failed network attach failed; detach will retry from the cache');
    }
  }

  /**
   * DEL every network of `entry` in reverse, then loopback. `netnsPath`
   * undefined, not a live netns, or another namespace than the one attached
   * (a new one bound on the same path): CNI_NETNS is empty (plugins free
   * what is outside the netns) and bridge's ipMasq rules are removed here.
   * Every network is tried; the first failure is thrown after.
   */
  async #delEntry(entry: CacheEntry, netnsPath: string | undefined, opts: { signal?: AbortSignal }): Promise<void> {
    const live = await isAttachedNetns(netnsPath, entry);
    const netns = live ? (netnsPath as string) : ''; // live implies a path
    let first: unknown;
    // Loopback only touches `lo`: its DEL runs alongside the networks' (as its ADD did).
    const loopback = live
      ? settle(this.#runner.delNetworkList(loopbackList(), { containerId: entry.id, netns, ifName: 'lo' }, entry.loopback.result, opts))
      : undefined;
    for (const net of [...entry.networks].reverse()) {
      try {
        await this.#delNetwork(entry, net, netns, opts);
      } catch (err) {
        first ??= err;
      }
    }
    if (loopback !== undefined) {
      await loopback.done;
      try {
        loopback.rethrow();
      } catch (err) {
        first ??= err;
      }
    }
    if (first !== undefined) throw first;
  }

  /** DEL of one network of `entry` (`netns` '' when the namespace is gone), and its ipMasq rules. */
  async #delNetwork(entry: CacheEntry, net: CachedNetwork, netns: string, opts: { signal?: AbortSignal }): Promise<void> {
    let list: NetworkConfList;
    try {
      list = parseConfList(net.config);
    } catch (err) {
      throw invalidConf(`(cached for container ${entry.id}) ${net.file}`, (err as Error).message, err);
    }
    let failure: { err: unknown } | undefined;
    try {
      await this.#runner.delNetworkList(list, this.#rt(entry, net, netns), net.result, opts);
    } catch (err) {
      this.#log.warn({ err, container: entry.id, network: net.name }, 'CNI DEL failed');
      failure = { err };
    }
    // Idempotent, so always: bridge skips its own masquerade teardown when it finds no eth0,
    // which a reused nsfs inode can make look like a live namespace.
    const masq = list.plugins.some((p) => MASQ_PLUGINS.includes(p.type) && p['ipMasq'] === true);
    if (masq && net.result !== undefined) await teardownIpMasq(list.name, entry.id, sandboxIps(net.result), this.#log);
    if (failure !== undefined) throw failure.err;
  }

  /** Fixed host ports first, then the 0s (so a picked port never takes one asked for by number). */
  async #allocatePorts(id: string, requested: PortMapping[]): Promise<PortMapping[]> {
    const held = [...(await this.#cache.entries()).values()]
      .filter((e) => e.id !== id)
      .flatMap((e) => e.networks.flatMap((n) => n.portMappings.map((m) => ({ m, id: e.id }))));
    const chosen = new Map<number, PortMapping>();
    const taken = (m: PortMapping): { id?: string } | undefined => {
      const h = held.find((x) => collides(x.m, m));
      if (h) return { id: h.id };
      return [...chosen.values()].some((c) => collides(c, m)) ? {} : undefined;
    };
    const order = [...requested.keys()].sort((a, b) => Number(requested[a]?.hostPort === 0) - Number(requested[b]?.hostPort === 0));
    for (const i of order) {
      const req = requested[i] as PortMapping;
      if (req.hostPort !== 0) {
        const t = taken(req);
        if (t) throw portInUse(req, t.id);
        await probePort(req);
        chosen.set(i, { ...req });
        continue;
      }
      for (let attempt = 0; ; attempt++) {
        const m = { ...req, hostPort: await probePort(req) };
        if (!taken(m)) {
          chosen.set(i, m);
          break;
        }
        if (attempt === 20) throw portInUse(req);
      }
    }
    return requested.map((_, i) => chosen.get(i) as PortMapping);
  }

  // -------------------------------------------------------------------------
  // network management

  async list(_opts: DriverCallOptions): Promise<NetworkInfo[]> {
    const dir = await this.#confDirWithDefault();
    return dir.networks.map((n) => this.#info(n));
  }

  async resolve(name: string, _opts: DriverCallOptions): Promise<NetworkInfo | undefined> {
    const found = this.#lookup(await this.#confDirWithDefault(), name);
    return found && this.#info(found);
  }

  async create(request: NetworkCreateRequest, _opts: DriverCallOptions): Promise<NetworkInfo> {
    const { name } = request;
    if (typeof name !== 'string' || !NETWORK_NAME.test(name) || name.length > 64) {
      throw new IsulaError('NETWORK_CONFIG_INVALID', `invalid network name ${JSON.stringify(name)}: 1-64 letters, digits, "_", "." and "-", starting with a letter or digit`);
    }
    if (name === 'bridge' || name === 'default') throw alreadyExists(name);
    if (RESERVED_NAMES.includes(name)) throw new IsulaError('NETWORK_CONFIG_INVALID', `network name ${name} is reserved`);
    if (request.driver !== undefined && request.driver !== '' && request.driver !== 'bridge') {
      throw new IsulaError('NETWORK_CONFIG_INVALID', `network driver ${JSON.stringify(request.driver)} is not supported: use bridge, or write a conflist into ${this.confDir}`);
    }
    const labels = request.labels ?? {};
    for (const [k, v] of Object.entries(labels)) {
      if (typeof v !== 'string') throw new IsulaError('NETWORK_CONFIG_INVALID', `label ${JSON.stringify(k)} must have a string value`);
    }
    await this.#confDirWithDefault();
    return this.#mutex.run('conf', async () => {
      const dir = await loadConfDir(this.confDir);
      if (name === this.defaultNetwork || dir.networks.some((n) => n.list.name === name)) throw alreadyExists(name);
      const clash = dir.invalid.find((i) => i.name === name);
      if (clash) throw new IsulaError('NETWORK_CONFIG_INVALID', clash.reason, { details: { file: clash.file } });
      const file = path.join(this.confDir, `isula-${name}.conflist`);
      if (await exists(file)) throw invalidConf(file, `the file exists but does not define network ${name}`);

      const others = dir.networks.flatMap((n) => subnetsOf(n.list).map((s) => ({ network: n.list.name, cidr: parseCidr(s.subnet) })))
        .filter((o): o is { network: string; cidr: Ipv4Cidr & { address: number } } => o.cidr !== undefined);
      let subnet: Ipv4Cidr;
      if (request.subnet !== undefined && request.subnet !== '') {
        const cidr = parseCidr(request.subnet);
        if (cidr === undefined || cidr.prefix > 30) {
          throw new IsulaError('NETWORK_CONFIG_INVALID', `invalid subnet ${JSON.stringify(request.subnet)}: an IPv4 CIDR of at most /30, like 10.240.1.0/24`);
        }
        if (cidr.address !== cidr.network) {
          throw new IsulaError('NETWORK_CONFIG_INVALID', `invalid subnet ${request.subnet}: it should be ${formatCidr(cidr)}`);
        }
        const overlap = others.find((o) => overlaps(o.cidr, cidr));
        if (overlap) {
          throw new IsulaError('NETWORK_CONFIG_INVALID', `subnet ${formatCidr(cidr)} overlaps ${formatCidr(overlap.cidr)} of network ${overlap.network}`);
        }
        subnet = cidr;
      } else {
        // Also avoid what the host's interfaces already use (another engine's bridge, the LAN).
        const picked = pickFreeSubnet([...others.map((o) => o.cidr), ...hostSubnets()]);
        if (!picked) throw new IsulaError('NETWORK_CONFIG_INVALID', 'no free 10.x.y.0/24 subnet left: give --subnet');
        subnet = picked;
      }
      let gateway: string | undefined;
      if (request.gateway !== undefined && request.gateway !== '') {
        const gw = parseIpv4(request.gateway);
        if (gw === undefined || !contains(subnet, gw) || gw === subnet.network || gw === subnet.network + cidrSize(subnet) - 1) {
          throw new IsulaError('NETWORK_CONFIG_INVALID', `gateway ${JSON.stringify(request.gateway)} is not a host address of subnet ${formatCidr(subnet)}`);
        }
        gateway = formatIpv4(gw);
      }
      const bridge = bridgeNameFor(name, this.confDir);
      const sharing = dir.networks.find((n) => n.list.plugins[0]?.['bridge'] === bridge);
      if (sharing) throw new IsulaError('NETWORK_CONFIG_INVALID', `bridge ${bridge} is already used by network ${sharing.list.name}`);
      const conf = bridgeConfList({
        name,
        bridge,
        subnet: formatCidr(subnet),
        ...(gateway === undefined ? {} : { gateway }),
        internal: request.internal === true,
        dataDir: this.ipamDir,
        labels,
      });
      await fs.mkdir(this.confDir, { recursive: true, mode: 0o755 });
      await writeFileAtomic(file, `${JSON.stringify(conf, null, 2)}\n`, { mode: 0o644 });
      this.#log.info({ network: name, file, subnet: formatCidr(subnet), internal: request.internal === true }, 'network created');
      return this.#info(await loadConfFile(file));
    });
  }

  async remove(name: string, _opts: DriverCallOptions): Promise<void> {
    const found = this.#lookup(await this.#confDirWithDefault(), name);
    if (!found) throw networkNotFound(name);
    const net = found.list;
    if (net.name === this.defaultNetwork) {
      // Docker answers 403 for its pre-defined networks.
      throw new IsulaError('NETWORK_CONFIG_INVALID', `${name} is a pre-defined network and cannot be removed`, { httpStatus: 403 });
    }
    await this.#mutex.run('conf', async () => {
      const users = [...(await this.#cache.entries()).values()].filter((e) => e.networks.some((n) => n.name === net.name)).map((e) => e.id);
      if (users.length > 0) {
        throw new IsulaError('NETWORK_IN_USE', `error while removing network: network ${net.name} id ${networkId(net.name)} has active endpoints (containers: ${users.join(', ')})`, {
          details: { network: net.name, containers: users },
        });
      }
      await fs.rm(found.file, { force: true });
      // What isula made for its own networks goes too: the bridge device and host-local's lease dir.
      if (net.meta !== undefined) {
        const first = net.plugins[0];
        const bridge = first?.type === 'bridge' ? first['bridge'] : undefined;
        // Only the device isula named for this network: a hand-copied conflist may point at another engine's bridge.
        if (typeof bridge === 'string' && IFNAME.test(bridge) && bridge === bridgeNameFor(net.name, this.confDir)) {
          await deleteLink(bridge, this.#log);
          await removeBridgeIsolation(bridge, this.#log);
        }
        const ipam = first?.['ipam'];
        if (isObject(ipam) && ipam['dataDir'] === this.ipamDir) await fs.rm(path.join(this.ipamDir, net.name), { recursive: true, force: true });
      }
      this.#log.info({ network: net.name, file: found.file }, 'network removed');
    });
  }

  /**
   * The kubelet's pod CIDR (CRI UpdateRuntimeConfig): the default network's
   * host-local range becomes its IPv4 CIDR, but only in the conflist isula
   * wrote itself (`isula-<name>.conflist`, still in the shape isula writes)
   * and while no attachment uses that network: an operator's conflist is
   * theirs, and a running pod keeps its address and its bridge gateway. In
   * those cases nothing changes and the outcome says why.
   */
  async setPodCidr(cidrs: string, _opts: DriverCallOptions): Promise<PodCidrOutcome> {
    const cidr = podCidrV4(cidrs);
    if (cidr === undefined) return this.#podCidrKept(cidrs, 'it holds no IPv4 CIDR and the default network is IPv4 only');
    const subnet = formatCidr(cidr);
    // A default conflist written from now on (first use, or after it was deleted) takes the pod CIDR.
    this.#opts.subnet = subnet;
    await this.#confDirWithDefault();
    return this.#mutex.run('conf', async () => {
      const dir = await loadConfDir(this.confDir);
      const found = dir.networks.find((n) => n.list.name === this.defaultNetwork);
      if (!found) return this.#podCidrKept(subnet, `no conflist defines the default network ${this.defaultNetwork}`);
      const own = path.join(this.confDir, `isula-${this.defaultNetwork}.conflist`);
      if (found.file !== own || found.list.meta === undefined) {
        return this.#podCidrKept(subnet, `the default network ${this.defaultNetwork} is defined by ${found.file}, which isula did not write: its subnet is the operator's choice`);
      }
      const range = singleHostLocalRange(found.list);
      if (range === undefined) {
        return this.#podCidrKept(subnet, `${found.file} was edited: its IPAM is no longer the single host-local range isula writes`);
      }
      if (range.subnet === subnet) return { applied: true };
      // Under the conf lock, every attachment past its conf lookup is in the cache (in memory at least).
      const users = [...(await this.#cache.entries()).values()].filter((e) => e.networks.some((n) => n.name === found.list.name)).map((e) => e.id);
      if (users.length > 0) {
        return this.#podCidrKept(subnet, `${users.length} container(s) are attached to the default network ${found.list.name} with subnet ${range.subnet} (${users.slice(0, 3).join(', ')}${users.length > 3 ? ', ...' : ''})`);
      }
      const clash = dir.networks.filter((n) => n !== found).flatMap((n) => subnetsOf(n.list).map((s) => ({ network: n.list.name, subnet: s.subnet })))
        .find((o) => { const c = parseCidr(o.subnet); return c !== undefined && overlaps(c, cidr); });
      if (clash) return this.#podCidrKept(subnet, `it overlaps subnet ${clash.subnet} of network ${clash.network}`);

      const raw = structuredClone(found.list.raw);
      const first = (raw['plugins'] as Record<string, unknown>[])[0] as Record<string, unknown>;
      (first['ipam'] as Record<string, unknown>)['ranges'] = [[{ subnet }]];
      await writeFileAtomic(found.file, `${JSON.stringify(raw, null, 2)}\n`, { mode: 0o644 });
      // bridge refuses to add the new gateway to a bridge that still has the old one ("already has an IP address").
      const bridge = first['bridge'];
      const old = parseCidr(range.subnet);
      if (first['isGateway'] === true && typeof bridge === 'string' && IFNAME.test(bridge) && old !== undefined) {
        await deleteAddress(bridge, `${range.gateway ?? formatIpv4(firstHost(old))}/${old.prefix}`, this.#log);
      }
      this.#log.info({ network: found.list.name, file: found.file, subnet, previous: range.subnet }, 'default network subnet set to the pod CIDR');
      return { applied: true };
    });
  }

  #podCidrKept(cidr: string, why: string): PodCidrOutcome {
    const reason = `pod CIDR ${cidr} not applied to the default network: ${why}`;
    this.#log.warn({ podCidr: cidr, network: this.defaultNetwork }, reason);
    return { applied: false, reason };
  }

  // -------------------------------------------------------------------------
  // conf dir

  /** The conf dir, with the default network's conflist written first when no file defines it. */
  async #confDirWithDefault(): Promise<ConfDir> {
    const dir = await loadConfDir(this.confDir);
    this.#warnInvalid(dir);
    if (dir.networks.some((n) => n.list.name === this.defaultNetwork)) return dir;
    return this.#mutex.run('conf', async () => {
      const again = await loadConfDir(this.confDir);
      if (again.networks.some((n) => n.list.name === this.defaultNetwork)) return again;
      const broken = again.invalid.find((i) => i.name === this.defaultNetwork);
      if (broken) throw new IsulaError('NETWORK_CONFIG_INVALID', broken.reason, { details: { file: broken.file } });
      const file = path.join(this.confDir, `isula-${this.defaultNetwork}.conflist`);
      if (await exists(file)) throw invalidConf(file, `the file exists but does not define the default network ${this.defaultNetwork}`);
      const conf = bridgeConfList({ name: this.defaultNetwork, bridge: this.#opts.bridge, subnet: this.#opts.subnet, internal: false, dataDir: this.ipamDir });
      await fs.mkdir(this.confDir, { recursive: true, mode: 0o755 });
      await writeFileAtomic(file, `${JSON.stringify(conf, null, 2)}\n`, { mode: 0o644 });
      this.#log.info({ network: this.defaultNetwork, file }, 'default network written');
      return loadConfDir(this.confDir);
    });
  }

  #warnInvalid(dir: ConfDir): void {
    if (this.#warnedInvalid.size > 256) this.#warnedInvalid.clear();
    for (const bad of dir.invalid) {
      if (this.#warnedInvalid.has(bad.reason)) continue;
      this.#warnedInvalid.add(bad.reason);
      this.#log.warn({ file: bad.file, reason: bad.reason }, 'CNI config file ignored');
    }
  }

  /** Exact name, then the aliases of the default network, then a full id or an id prefix of at least 12 characters. */
  #lookup(dir: ConfDir, name: string): LoadedNetwork | undefined {
    const wanted = name === 'bridge' || name === 'default' ? this.defaultNetwork : name;
    const exact = dir.networks.find((n) => n.list.name === wanted);
    if (exact) return exact;
    if (/^[0-9a-f]+$/.test(name) && name.length >= MIN_ID_PREFIX) {
      const byId = dir.networks.filter((n) => networkId(n.list.name).startsWith(name));
      if (byId.length === 1) return byId[0];
    }
    return findNetwork(dir, wanted);
  }

  #info(n: LoadedNetwork): NetworkInfo {
    const { list } = n;
    const created = list.meta?.created !== undefined ? new Date(list.meta.created) : n.mtime;
    return {
      name: list.name,
      id: networkId(list.name),
      driver: list.plugins[0]?.type ?? '',
      subnets: subnetsOf(list),
      internal: list.meta?.internal ?? false,
      labels: list.meta?.labels ?? {},
      file: n.file,
      created: Number.isNaN(created.getTime()) ? n.mtime : created,
      plugins: list.plugins.map((p) => p.type),
      isDefault: list.name === this.defaultNetwork,
    };
  }
}

/** The subnets of a chain's first plugin's IPAM (host-local `ranges`, or the older `subnet`/`gateway`). */
function subnetsOf(list: NetworkConfList): { subnet: string; gateway?: string }[] {
  const first = list.plugins[0];
  const ipam = first?.['ipam'];
  if (!isObject(ipam)) return [];
  const isGateway = first?.type !== 'bridge' || first['isGateway'] === true;
  const entry = (subnet: unknown, gateway: unknown): { subnet: string; gateway?: string }[] => {
    if (typeof subnet !== 'string') return [];
    if (typeof gateway === 'string') return [{ subnet, gateway }];
    const cidr = parseCidr(subnet);
    // host-local's default gateway is the first host; bridge puts it on the bridge only with isGateway.
    return cidr && isGateway && first?.type === 'bridge' ? [{ subnet, gateway: formatIpv4(firstHost(cidr)) }] : [{ subnet }];
  };
  if (Array.isArray(ipam['ranges'])) {
    return ipam['ranges'].flatMap((set: unknown) => (Array.isArray(set) ? set : []).filter(isObject).flatMap((r) => entry(r['subnet'], r['gateway'])));
  }
  return entry(ipam['subnet'], ipam['gateway']);
}

/**
 * The IPv4 CIDR of a pod CIDR (`10.244.1.0/24`, or dual stack
 * `10.244.1.0/24,fd00:1::/64`), host bits cleared; undefined when it has only
 * IPv6 ones; NETWORK_CONFIG_INVALID when an entry is not a CIDR.
 */
export function podCidrV4(text: string): Ipv4Cidr | undefined {
  let v4: Ipv4Cidr | undefined;
  for (const part of text.split(',').map((p) => p.trim())) {
    const [addr = '', prefix = ''] = part.split('/');
    const c = parseCidr(part);
    if (c !== undefined && c.prefix <= 30) {
      v4 ??= { network: c.network, prefix: c.prefix };
    } else if (!(net.isIPv6(addr) && /^\d{1,3}$/.test(prefix) && Number(prefix) <= 128)) {
      throw new IsulaError('NETWORK_CONFIG_INVALID', `invalid pod CIDR ${JSON.stringify(text)}: expected CIDRs like 10.244.1.0/24 (IPv4 at most /30), comma-separated for dual stack`);
    }
  }
  return v4;
}

/** The bridge + host-local single range isula writes (`ranges: [[{subnet, gateway?}]]`), or undefined. */
function singleHostLocalRange(list: NetworkConfList): { subnet: string; gateway?: string } | undefined {
  const first = list.plugins[0];
  const ipam = first?.['ipam'];
  if (first?.type !== 'bridge' || !isObject(ipam) || ipam['type'] !== 'host-local' || !Array.isArray(ipam['ranges'])) return undefined;
  const sets = ipam['ranges'] as unknown[];
  const set = sets[0];
  if (sets.length !== 1 || !Array.isArray(set) || set.length !== 1 || !isObject(set[0])) return undefined;
  const { subnet, gateway } = set[0];
  if (typeof subnet !== 'string' || parseCidr(subnet) === undefined) return undefined;
  return typeof gateway === 'string' ? { subnet, gateway } : { subnet };
}

/** What the engine sees of one network of an attachment: the ports in effect on the one that publishes them. */
function summary(n: CachedNetwork): NetworkAttachResult {
  return { ...summarizeResult(n.name, n.result, n.ifName, n.portMappings.length > 0 ? n.portMappings : undefined), networkId: networkId(n.name) };
}

/** Whether a cached network is joined: its ADD finished (it has a result) and no DEL of it failed. */
function isJoined(n: CachedNetwork): boolean {
  return n.isLeaving !== true && n.result !== undefined;
}

/** Whether a cached network publishes the attachment's ports (Docker's gateway endpoint). */
function publishes(n: CachedNetwork): boolean {
  return isJoined(n) && n.portMappings.length > 0;
}

/** Whether a cached network's chain has a plugin that maps ports (a conflist that no longer parses cannot). */
function canMapPorts(n: CachedNetwork): boolean {
  try {
    return publishingNetwork([parseConfList(n.config)]) === 0;
  } catch {
    return false;
  }
}

/** eth0, eth1, ... (or the request's name, then the same stem numbered on). */
function interfaceNames(base: string | undefined, count: number): string[] {
  const first = base ?? 'eth0';
  if (!IFNAME.test(first)) throw new IsulaError('NETWORK_CONFIG_INVALID', `invalid interface name ${JSON.stringify(first)}: 1-15 letters, digits, "_", "." or "-"`);
  const m = /^(.*?)(\d+)$/.exec(first);
  const stem = m ? (m[1] as string) : first;
  const start = m ? Number(m[2]) : 0;
  const names = Array.from({ length: count }, (_, i) => (i === 0 ? first : `${stem}${start + i}`));
  const bad = names.find((n) => !IFNAME.test(n));
  if (bad) throw new IsulaError('NETWORK_CONFIG_INVALID', `interface name ${bad} is longer than 15 characters`);
  return names;
}

/** `count` interface names after the highest `<stem><n>` in use (eth0 eth1 → eth2 ...). */
function freeInterfaceNames(used: readonly string[], count: number): string[] {
  const numbered = used.map((n) => /^(.*?)(\d+)$/.exec(n)).filter((m): m is RegExpExecArray => m !== null);
  const stem = numbered[0]?.[1] ?? 'eth';
  const next = numbered.filter((m) => m[1] === stem).reduce((max, m) => Math.max(max, Number(m[2]) + 1), 0);
  return interfaceNames(`${stem}${next}`, count).map((n) => {
    if (used.includes(n)) throw new IsulaError('NETWORK_CONFIG_INVALID', `interface ${n} is already in use`);
    return n;
  });
}

/** Throws NETWORK_CONFIG_INVALID for a malformed pair in the request's CNI_ARGS, shared or per network. */
function checkArgs(request: NetworkAttachRequest): void {
  cniArgs(request.args);
  for (const a of Object.values(request.networkArgs ?? {})) cniArgs(a);
}

function netnsGone(id: string, netnsPath: string): IsulaError {
  return new IsulaError('NETWORK_NOT_FOUND', `the network namespace ${netnsPath} of container ${id} is gone`, { details: { container: id, netnsPath } });
}

function notAttached(id: string): IsulaError {
  return new IsulaError('NETWORK_NOT_FOUND', `container ${id} is not attached to any network`, { details: { container: id } });
}

/** A promise run alongside others: `done` never rejects (no unhandled rejection while the caller awaits something else); `rethrow` throws its error once it is done. */
function settle(p: Promise<unknown>): { done: Promise<void>; rethrow(): void } {
  let failure: { err: unknown } | undefined;
  const done = p.then(() => undefined, (err: unknown) => { failure = { err }; });
  return {
    done,
    rethrow() {
      if (failure !== undefined) throw failure.err;
    },
  };
}

/** Whether a (partial) ADD result names addresses; a malformed one is judged at the end of the chain, not here. */
function hasIps(result: unknown): boolean {
  try {
    return sandboxIps(result).length > 0;
  } catch {
    return false;
  }
}

function loopbackList(): NetworkConfList {
  return parseConfList(structuredClone(LOOPBACK_CONF));
}

/** The IPv4 subnets on the host's interfaces. */
function hostSubnets(): Ipv4Cidr[] {
  return Object.values(os.networkInterfaces()).flatMap((addrs) => (addrs ?? [])
    .filter((a) => a.family === 'IPv4' && a.cidr !== null)
    .flatMap((a) => parseCidr(a.cidr as string) ?? []));
}

export async function isNetns(p: string | undefined): Promise<boolean> {
  return (await netnsIdOf(p)) !== undefined;
}

/** What tells the network namespace bound on (or linked at) `p` from others, or undefined when it is not one. */
async function netnsIdOf(p: string | undefined): Promise<{ inode: number; ctimeNs: string } | undefined> {
  if (p === undefined || p === '') return undefined;
  try {
    if ((await fs.statfs(p)).type !== NSFS_MAGIC) return undefined;
    const st = await fs.stat(p, { bigint: true });
    return { inode: Number(st.ino), ctimeNs: String(st.ctimeNs) };
  } catch {
    return undefined;
  }
}

async function isAttachedNetns(p: string | undefined, entry: CacheEntry): Promise<boolean> {
  const id = await netnsIdOf(p);
  if (id === undefined) return false;
  // Entries written before the ctime was recorded compare the inode only.
  return (entry.netnsInode === undefined || entry.netnsInode === id.inode) && (entry.netnsCtimeNs === undefined || entry.netnsCtimeNs === id.ctimeNs);
}

async function exists(file: string): Promise<boolean> {
  try {
    await fs.lstat(file);
    return true;
  } catch {
    return false;
  }
}

function deleteLink(name: string, log: Logger): Promise<void> {
  const env = { ...process.env, PATH: process.env['PATH'] || '/usr/sbin:/usr/bin:/sbin:/bin' };
  return new Promise((resolve) => {
    execFile('ip', ['link', 'del', name], { env, timeout: 10_000, killSignal: 'SIGKILL' }, (err, _out, stderr) => {
      if (err && !/Cannot find device/.test(stderr)) log.warn({ bridge: name, stderr: stderr.trim() }, 'could not delete the bridge of a removed network');
      resolve();
    });
  });
}

/** `ip addr del ADDR dev BRIDGE`; a bridge or an address that is not there is fine. */
function deleteAddress(bridge: string, address: string, log: Logger): Promise<void> {
  const env = { ...process.env, PATH: process.env['PATH'] || '/usr/sbin:/usr/bin:/sbin:/bin' };
  return new Promise((resolve) => {
    execFile('ip', ['addr', 'del', address, 'dev', bridge], { env, timeout: 10_000, killSignal: 'SIGKILL' }, (err, _out, stderr) => {
      if (err && !/Cannot find device|Cannot assign requested address/.test(stderr)) log.warn({ bridge, address, stderr: stderr.trim() }, 'could not remove the old gateway address from the bridge');
      resolve();
    });
  });
}

function networkNotFound(name: string): IsulaError {
  // Docker: `network foo not found`.
  return new IsulaError('NETWORK_NOT_FOUND', `network ${name} not found`, { details: { network: name } });
}

function alreadyExists(name: string): IsulaError {
  return new IsulaError('NETWORK_ALREADY_EXISTS', `network with name ${name} already exists`, { details: { network: name } });
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
