/**
 * The CNI runner (spec 0.3.0–1.0.0): finds plugin binaries in the bin dirs,
 * executes ADD/DEL/CHECK/VERSION with the spec's environment and stdin, and
 * runs whole chains the way libcni does. Every execution is bounded in time
 * (SIGKILL on expiry) and honours the caller's AbortSignal.
 */
import { execFile, type ExecFileOptionsWithStringEncoding } from 'node:child_process';
import { constants } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { IsulaError, faultPoint } from '@isula/core';
import type { PortMapping } from '@isula/core';
import type { Logger } from 'pino';
import type { NetworkConfList, PluginConf } from './conf.js';

export type CniCommand = 'ADD' | 'DEL' | 'CHECK' | 'VERSION';

export const DEFAULT_PLUGIN_TIMEOUT_MS = 60_000;
/** A plugin's answer is a small JSON document; more than this is a broken plugin. */
const MAX_OUTPUT_BYTES = 4 * 1024 * 1024;
/** What the daemon may run without: go-iptables (bridge, portmap, firewall) looks iptables up in PATH. */
const FALLBACK_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export interface CniRunnerOptions {
  binDirs: string[];
  timeoutMs?: number;
  log: Logger;
}

/** libcni's RuntimeConf: who the call is for. */
export interface RuntimeConf {
  containerId: string;
  /** '' when the namespace is gone (allowed for DEL only). */
  netns: string;
  ifName: string;
  /** CNI_ARGS pairs. */
  args?: Record<string, string>;
  /** Values for the capabilities plugins declare (`portMappings` ...): each plugin gets only its own in `runtimeConfig`. */
  capabilityArgs?: { portMappings?: PortMapping[] };
}

export interface CallOptions {
  signal?: AbortSignal;
}

export class CniRunner {
  readonly binDirs: string[];
  readonly timeoutMs: number;
  readonly #log: Logger;

  constructor(opts: CniRunnerOptions) {
    this.binDirs = opts.binDirs;
    this.timeoutMs = opts.timeoutMs ?? DEFAULT_PLUGIN_TIMEOUT_MS;
    this.#log = opts.log;
  }

  /** The executable for a plugin `type`; NETWORK_PLUGIN_NOT_FOUND names it and the dirs searched. */
  async findPlugin(type: string): Promise<string> {
    if (type.includes('/') || type === '.' || type === '..') throw notFound(type, this.binDirs);
    for (const dir of this.binDirs) {
      const file = path.join(dir, type);
      try {
        await fs.access(file, constants.X_OK);
        if ((await fs.stat(file)).isFile()) return file;
      } catch {
        // Not in this dir.
      }
    }
    throw notFound(type, this.binDirs);
  }

  /**
   * ADD along the chain: each plugin gets the previous one's result as
   * `prevResult`; the last result is the network's. A failure stops the
   * chain (the caller DELs the whole network, as libcni's callers do).
   */
  async addNetworkList(list: NetworkConfList, rt: RuntimeConf, opts: CallOptions & { onResult?: (partial: unknown, index: number) => void | Promise<void> } = {}): Promise<unknown> {
    let prevResult: unknown;
    for (const [index, plugin] of list.plugins.entries()) {
      const result = await this.execPlugin('ADD', list, plugin, rt, prevResult, opts);
      if (!isObject(result)) {
        throw new IsulaError('NETWORK_PLUGIN_FAILED', `CNI plugin ${plugin.type} ADD on network "${list.name}" returned no result`, {
          details: { plugin: plugin.type, network: list.name, command: 'ADD' },
        });
      }
      prevResult = result;
      faultPoint('network:mid-cni-add');
      // So a DEL after a later plugin failed, or after a crash, still gets what was set up (firewall needs the IPs).
      await opts.onResult?.(result, index);
    }
    return prevResult;
  }

  /**
   * DEL along the chain in reverse. Since 0.4.0 every plugin gets the
   * network's cached result as `prevResult` (libcni's DelNetworkList). Every
   * plugin is called even when one fails; the first failure is thrown after.
   */
  async delNetworkList(list: NetworkConfList, rt: RuntimeConf, cachedResult: unknown, opts: CallOptions = {}): Promise<void> {
    const prevResult = atLeast(list.cniVersion, '0.4.0') ? cachedResult : undefined;
    let first: unknown;
    for (const plugin of [...list.plugins].reverse()) {
      try {
        await this.execPlugin('DEL', list, plugin, rt, prevResult, opts);
      } catch (err) {
        first ??= err;
      }
    }
    if (first !== undefined) throw first;
  }

  /**
   * CHECK along the chain (0.4.0 and later; a no-op for 0.3.x lists and for
   * `disableCheck`). `skip` names plugin types left out: portmap 1.1.1's CHECK
   * fails on a missing IPv6 chain (PLATFORM.md §6).
   */
  async checkNetworkList(list: NetworkConfList, rt: RuntimeConf, cachedResult: unknown, opts: CallOptions & { skip?: string[] } = {}): Promise<void> {
    if (!atLeast(list.cniVersion, '0.4.0') || list.disableCheck) return;
    for (const plugin of list.plugins) {
      if (opts.skip?.includes(plugin.type)) continue;
      await this.execPlugin('CHECK', list, plugin, rt, cachedResult, opts);
    }
  }

  /** VERSION: the spec versions a plugin supports. */
  async pluginVersions(type: string, opts: CallOptions = {}): Promise<string[]> {
    const file = await this.findPlugin(type);
    const out = await this.#exec(file, type, '', 'VERSION', { CNI_COMMAND: 'VERSION' }, { cniVersion: '1.0.0' }, opts);
    const parsed = parseJson(out);
    return isObject(parsed) && Array.isArray(parsed['supportedVersions'])
      ? parsed['supportedVersions'].filter((v): v is string => typeof v === 'string')
      : [];
  }

  /** One plugin, one command. Returns the parsed stdout (undefined when empty, as DEL's is). */
  async execPlugin(command: Exclude<CniCommand, 'VERSION'>, list: NetworkConfList, plugin: PluginConf, rt: RuntimeConf, prevResult: unknown, opts: CallOptions = {}): Promise<unknown> {
    const file = await this.findPlugin(plugin.type);
    const stdin = pluginStdin(list, plugin, rt, prevResult);
    const env: Record<string, string> = {
      CNI_COMMAND: command,
      CNI_CONTAINERID: rt.containerId,
      CNI_NETNS: rt.netns,
      CNI_IFNAME: rt.ifName,
      CNI_ARGS: cniArgs(rt.args),
      CNI_PATH: this.binDirs.join(':'),
    };
    const out = await this.#exec(file, plugin.type, list.name, command, env, stdin, opts);
    if (out.trim() === '') return undefined;
    const parsed = parseJson(out);
    if (parsed === undefined) throw failed(plugin.type, list.name, command, `wrote a result that is not JSON: ${out.slice(0, 200)}`);
    return parsed;
  }

  #exec(file: string, type: string, network: string, command: CniCommand, cniEnv: Record<string, string>, stdin: unknown, opts: CallOptions): Promise<string> {
    const env: NodeJS.ProcessEnv = { ...process.env };
    for (const k of Object.keys(env)) if (k.startsWith('CNI_')) delete env[k];
    Object.assign(env, cniEnv);
    env['PATH'] ||= FALLBACK_PATH;
    const started = Date.now();
    const where = network === '' ? '' : ` on network "${network}"`;
    return new Promise((resolve, reject) => {
      // Its own process group: a timeout or an abort kills the plugin and what it started
      // (host-local, iptables --wait), which could otherwise finish after our rollback or DEL.
      let stopped: 'timeout' | 'abort' | undefined;
      const child = execFile(
        file,
        [],
        // `detached` reaches spawn (execFile's typings omit it).
        { env, maxBuffer: MAX_OUTPUT_BYTES, encoding: 'utf8', ...{ detached: true } } as ExecFileOptionsWithStringEncoding,
        (err, stdout, stderr) => {
          clearTimeout(timer);
          opts.signal?.removeEventListener('abort', onAbort);
          this.#log.debug({ plugin: type, network, command, containerId: cniEnv['CNI_CONTAINERID'], durationMs: Date.now() - started, ok: !err }, 'CNI plugin ran');
          if (!err && stopped === undefined) return resolve(stdout);
          const e = (err ?? new Error('stopped')) as NodeJS.ErrnoException & { code?: string | number; killed?: boolean; signal?: string };
          const details: Record<string, unknown> = { plugin: type, network, command, stderr: stderr.trim() };
          if (e.code === 'ENOENT' || e.code === 'EACCES') return reject(notFound(type, this.binDirs, err));
          if (stopped === 'abort') {
            return reject(new IsulaError('CANCELED', `CNI plugin ${type} ${command}${where} canceled`, { cause: err, details }));
          }
          if (stopped === 'timeout') {
            return reject(new IsulaError('TIMEOUT', `CNI plugin ${type} ${command}${where} timed out after ${this.timeoutMs} ms`, { cause: err, details }));
          }
          // Spec: on failure a plugin writes {cniVersion, code, msg, details} to stdout and exits non-zero.
          const reply = parseJson(stdout);
          let msg: string;
          if (isObject(reply) && typeof reply['msg'] === 'string') {
            msg = reply['msg'];
            if (typeof reply['details'] === 'string' && reply['details'] !== '') msg += `: ${reply['details']}`;
            details['cniCode'] = reply['code'];
          } else {
            msg = stderr.trim() || stdout.trim() || `exited with ${typeof e.code === 'number' ? `code ${e.code}` : (e.signal ?? 'an error')}`;
          }
          reject(failed(type, network, command, msg, err, details));
        },
      );
      const killGroup = (): void => {
        try {
          if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
        } catch {
          child.kill('SIGKILL');
        }
      };
      const timer = setTimeout(() => { stopped = 'timeout'; killGroup(); }, this.timeoutMs);
      const onAbort = (): void => { stopped ??= 'abort'; killGroup(); };
      if (opts.signal?.aborted === true) onAbort();
      else opts.signal?.addEventListener('abort', onAbort, { once: true });
      // EPIPE when a plugin exits without reading stdin is reported through the exit status instead.
      child.stdin?.on('error', () => {});
      child.stdin?.end(JSON.stringify(stdin));
    });
  }
}

/** Stdin for one plugin: its conf plus the list's name/cniVersion, `prevResult`, and `runtimeConfig` with its declared capabilities only. */
export function pluginStdin(list: NetworkConfList, plugin: PluginConf, rt: RuntimeConf, prevResult: unknown): Record<string, unknown> {
  const conf: Record<string, unknown> = { ...plugin, name: list.name, cniVersion: list.cniVersion };
  delete conf['prevResult'];
  if (prevResult !== undefined) conf['prevResult'] = prevResult;
  const runtimeConfig: Record<string, unknown> = {};
  const caps = plugin.capabilities ?? {};
  for (const [cap, value] of Object.entries(rt.capabilityArgs ?? {})) {
    if (caps[cap] === true && value !== undefined) runtimeConfig[cap] = cap === 'portMappings' ? toCniPortMappings(value as PortMapping[]) : value;
  }
  // libcni replaces a runtimeConfig written in the file when it has something to inject.
  if (Object.keys(runtimeConfig).length > 0) conf['runtimeConfig'] = runtimeConfig;
  return conf;
}

/** The portmap plugin's shape: `hostIP`, not `hostIp`. */
function toCniPortMappings(mappings: PortMapping[]): Record<string, unknown>[] {
  return mappings.map((m) => ({
    hostPort: m.hostPort,
    containerPort: m.containerPort,
    protocol: m.protocol,
    ...(m.hostIp !== undefined && m.hostIp !== '' ? { hostIP: m.hostIp } : {}),
  }));
}

/** CNI_ARGS: `IgnoreUnknown=1;K=V;...` (IgnoreUnknown so plugins skip keys they do not know, as CRI runtimes send it). */
export function cniArgs(args: Record<string, string> | undefined): string {
  const pairs = Object.entries(args ?? {});
  if (pairs.length === 0) return '';
  for (const [k, v] of pairs) {
    if (k === '' || /[;=]/.test(k) || v.includes(';')) {
      throw new IsulaError('NETWORK_CONFIG_INVALID', `CNI argument ${JSON.stringify(`${k}=${v}`)} is invalid: keys cannot hold ";" or "=", values cannot hold ";"`);
    }
  }
  return ['IgnoreUnknown=1', ...pairs.filter(([k]) => k !== 'IgnoreUnknown').map(([k, v]) => `${k}=${v}`)].join(';');
}

/** Semver-ish comparison of spec versions (`0.3.1` >= `0.3.0`). */
export function atLeast(version: string, min: string): boolean {
  const a = version.split('.').map(Number);
  const b = min.split('.').map(Number);
  for (let i = 0; i < 3; i++) {
    const x = a[i] ?? 0;
    const y = b[i] ?? 0;
    if (x !== y) return x > y;
  }
  return true;
}

function notFound(type: string, dirs: string[], cause?: unknown): IsulaError {
  return new IsulaError('NETWORK_PLUGIN_NOT_FOUND', `CNI plugin "${type}" not found in ${dirs.length === 0 ? '(no cni-bin-dir)' : dirs.join(', ')}`, {
    ...(cause === undefined ? {} : { cause }),
    details: { plugin: type, binDirs: dirs },
  });
}

function failed(type: string, network: string, command: string, msg: string, cause?: unknown, details?: Record<string, unknown>): IsulaError {
  const where = network === '' ? '' : ` on network "${network}"`;
  return new IsulaError('NETWORK_PLUGIN_FAILED', `CNI plugin ${type} ${command}${where} failed: ${msg}`, {
    ...(cause === undefined ? {} : { cause }),
    details: details ?? { plugin: type, network, command },
  });
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
