/**
 * daemon.json: found with cosmiconfig (default /etc/isulad/daemon.json,
 * `--config-file` overrides), validated whole before the daemon starts.
 * Key names are iSulad's where iSulad has the setting.
 */
import { cosmiconfig, type Loader } from 'cosmiconfig';
import { parseTree, printParseErrorCode, type ParseError } from 'jsonc-parser';
import { isIP } from 'node:net';
import path from 'node:path';
import { parseLogSize } from './container/log-rotation.js';
import { parseRemap } from './container/userns.js';
import { IsulaError } from './errors.js';
import { loadHookSpec } from './spec/oci-hooks.js';
import { isRecord } from './is-record.js';

export const DEFAULT_CONFIG_DIR = '/etc/isulad';
export const DEFAULT_CONFIG_FILE = `${DEFAULT_CONFIG_DIR}/daemon.json`;

/**
 * First-party plugins loaded when daemon.json does not list `plugins`.
 * A package joins this list when its capability lands.
 */
export const FIRST_PARTY_PLUGINS: readonly string[] = Object.freeze(['@isula/image-oci', '@isula/image-external', '@isula/driver-runc', '@isula/network-cni']);

export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal';
export const LOG_LEVELS: readonly LogLevel[] = ['trace', 'debug', 'info', 'warn', 'error', 'fatal'];

export interface PluginSpec {
  package: string;
  options: Record<string, unknown>;
}

export interface RuntimeConfig {
  path: string;
  'runtime-args': string[];
}

export interface DaemonConfig {
  graph: string;
  state: string;
  'log-level': LogLevel;
  'log-driver': 'file' | 'stdout';
  /**
   * The daemon's own log file (iSulad's keys): `max-size` (`10m`), `max-file`
   * (files kept, the current one included), `log-file-mode` (`0640`),
   * `log-path` (directory, default the state root). See daemon-log.ts.
   */
  'log-opts': Record<string, string>;
  hosts: string[];
  group: string;
  pidfile: string;
  'default-runtime': string;
  runtimes: Record<string, RuntimeConfig>;
  'registry-mirrors': string[];
  /** Mirrors per registry host: `{"registry.k8s.io": ["http://127.0.0.1:5000"]}`, tried in order before the host. */
  'registry-mirrors-by-host': Record<string, string[]>;
  'insecure-registries': string[];
  /** Docker's certs.d layout: `<dir>/<host[:port]>/ca.crt` (and `*.crt`, `client.cert` + `client.key`). */
  'registry-certs-dir': string;
  'max-concurrent-downloads': number;
  'max-concurrent-uploads': number;
  /** How long a registry may send nothing (headers or body bytes) before the transfer fails: `30s`, `500ms`, `2m`. */
  'registry-stall-timeout': string;
  'cni-conf-dir': string;
  'cni-bin-dir': string[];
  'network-plugin': string;
  'pod-sandbox-image': string;
  'native.umask': 'secure' | 'normal';
  'storage-driver': string;
  'storage-opts': string[];
  'start-timeout': string;
  'image-opt-timeout': string;
  'default-ulimits': Record<string, unknown>;
  'cgroup-parent': string;
  'container-log': Record<string, unknown>;
  'websocket-server-listening-port': number;
  'selinux-enabled': boolean;
  'image-layer-check': boolean;
  'insecure-skip-verify-enforce': boolean;
  'use-decrypted-key': boolean;
  'enable-pod-events': boolean;
  'cri-runtimes': Record<string, string>;
  plugins: PluginSpec[];
  'plugin-dirs': string[];
  /** iSulad's daemon-wide OCI hooks file (prestart, poststart, poststop ...), given to every container before its own `--hook-spec`. */
  'hook-spec': string;
  /** User namespaces for every container: "default", USER[:GROUP] (their /etc/subuid and /etc/subgid ranges) or UID:GID:SIZE; "" is off. */
  'userns-remap': string;
  /** iSulad's key: serve Prometheus metrics on 127.0.0.1:PORT; 0 is off. */
  'metrics-port': number;
  /** Docker's key: serve Prometheus metrics on `IP:PORT` or `unix:///PATH`; "" is off. */
  'metrics-addr': string;
}

export function defaultConfig(overrides: { state?: string; graph?: string } = {}): DaemonConfig {
  const state = overrides.state ?? '/run/isulad';
  const graph = overrides.graph ?? '/var/lib/isulad';
  return {
    graph,
    state,
    'log-level': 'info',
    'log-driver': 'file',
    'log-opts': {},
    hosts: [`unix://${path.join(state, 'isulad.sock')}`],
    group: 'isula',
    pidfile: path.join(state, 'isulad.pid'),
    'default-runtime': 'runc',
    runtimes: {},
    'registry-mirrors': [],
    'registry-mirrors-by-host': {},
    'insecure-registries': [],
    'registry-certs-dir': `${DEFAULT_CONFIG_DIR}/certs.d`,
    'max-concurrent-downloads': 3,
    'max-concurrent-uploads': 5,
    'registry-stall-timeout': '30s',
    'cni-conf-dir': '/etc/cni/net.d',
    'cni-bin-dir': ['/opt/cni/bin', '/usr/lib/cni'],
    'network-plugin': 'cni',
    'pod-sandbox-image': 'registry.k8s.io/pause:3.9',
    'native.umask': 'secure',
    'storage-driver': 'overlay2',
    'storage-opts': [],
    'start-timeout': '2m',
    'image-opt-timeout': '5m',
    'default-ulimits': {},
    'cgroup-parent': '/isulad',
    'container-log': {},
    'websocket-server-listening-port': 10350,
    'selinux-enabled': false,
    'image-layer-check': false,
    'insecure-skip-verify-enforce': false,
    'use-decrypted-key': true,
    'enable-pod-events': false,
    'cri-runtimes': {},
    plugins: FIRST_PARTY_PLUGINS.map((p) => ({ package: p, options: {} })),
    'plugin-dirs': ['/usr/local/lib/isula/plugins', '/usr/local/lib/node_modules'],
    'hook-spec': '',
    'userns-remap': '',
    'metrics-port': 0,
    'metrics-addr': '',
  };
}

// ---------------------------------------------------------------------------
// Validation: one checker per key. A checker returns the normalised value or
// throws a message that names what it expected; the caller names the key.

type Check = (value: unknown) => unknown;

const expect = (what: string, value: unknown): never => {
  throw new Error(`expected ${what}, got ${describe(value)}`);
};
const describe = (v: unknown): string =>
  v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v === 'object' ? 'an object' : `${typeof v} ${JSON.stringify(v)}`;

const str: Check = (v) => (typeof v === 'string' ? v : expect('a string', v));
const nonEmpty: Check = (v) => (typeof v === 'string' && v !== '' ? v : expect('a non-empty string', v));
const absPath: Check = (v) => (typeof v === 'string' && path.isAbsolute(v) ? path.normalize(v) : expect('an absolute path', v));
const bool: Check = (v) => (typeof v === 'boolean' ? v : expect('a boolean', v));
const port: Check = (v) => (Number.isInteger(v) && (v as number) > 0 && (v as number) < 65536 ? v : expect('a port number (1-65535)', v));
const oneOf = (...values: string[]): Check => (v) => (typeof v === 'string' && values.includes(v) ? v : expect(`one of ${values.join(', ')}`, v));
const listOf = (item: Check, what: string): Check => (v) => {
  if (!Array.isArray(v)) return expect(`a list of ${what}`, v);
  return v.map((x, i) => {
    try {
      return item(x);
    } catch (err) {
      throw new Error(`item ${i}: ${(err as Error).message}`);
    }
  });
};
const strOrList = (item: Check, what: string): Check => (v) => (typeof v === 'string' ? [item(v)] : listOf(item, what)(v));
const object: Check = (v) => (isRecord(v) ? v : expect('an object', v));
const stringMap: Check = (v) => {
  if (!isRecord(v)) return expect('an object of strings', v);
  for (const [k, x] of Object.entries(v)) if (typeof x !== 'string') throw new Error(`"${k}": expected a string, got ${describe(x)}`);
  return v;
};
const host: Check = (v) => {
  if (typeof v !== 'string') return expect('a host like unix:///run/isulad/isulad.sock', v);
  if (v === 'fd://') return v; // systemd socket activation (isulad.socket)
  if (!v.startsWith('unix://') || !path.isAbsolute(v.slice('unix://'.length))) {
    throw new Error(`unsupported host ${JSON.stringify(v)}: only unix://ABSOLUTE_PATH and fd:// are supported`);
  }
  return v;
};
const positiveInt: Check = (v) => (Number.isInteger(v) && (v as number) > 0 && (v as number) <= 64 ? v : expect('a whole number from 1 to 64', v));
/** Milliseconds in a duration like `30s`, `500ms`, `2m`, `1h`. */
export function parseDuration(text: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(text);
  if (m === null) throw new Error(`expected a duration like 30s, 500ms or 2m, got ${JSON.stringify(text)}`);
  return Math.round(Number(m[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] as 'ms' | 's' | 'm' | 'h']);
}
const duration: Check = (v) => {
  if (typeof v !== 'string') return expect('a duration like "30s"', v);
  if (parseDuration(v) <= 0) throw new Error(`expected a positive duration, got ${JSON.stringify(v)}`);
  return v;
};
const REGISTRY_HOST = /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\[[0-9a-fA-F:]+\])(?::\d{1,5})?$/;
/** A mirror: `https://host[:port][/path]`, `http://…`, or a bare `host[:port]` (https). */
const mirror: Check = (v) => {
  if (typeof v !== 'string' || v === '') return expect('a registry URL like https://mirror.example or http://127.0.0.1:5000', v);
  const withScheme = /^[a-z]+:\/\//.test(v) ? v : `https://${v}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    throw new Error(`${JSON.stringify(v)} is not a URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error(`${JSON.stringify(v)}: only http:// and https:// mirrors`);
  if (url.search !== '' || url.hash !== '' || url.username !== '') throw new Error(`${JSON.stringify(v)}: a mirror URL has no query, fragment or user`);
  return `${url.protocol}//${url.host}${url.pathname.replace(/\/+$/, '')}`;
};
const mirrorsByHost: Check = (v) => {
  if (!isRecord(v)) return expect('an object of registry host to a list of mirror URLs', v);
  const out: Record<string, string[]> = {};
  for (const [h, list] of Object.entries(v)) {
    if (!REGISTRY_HOST.test(h)) throw new Error(`${JSON.stringify(h)} is not a registry host[:port]`);
    try {
      out[h === 'index.docker.io' ? 'docker.io' : h] = listOf(mirror, 'registry URLs')(list) as string[];
    } catch (err) {
      throw new Error(`"${h}": ${(err as Error).message}`);
    }
  }
  return out;
};
const runtimes: Check = (v) => {
  if (!isRecord(v)) return expect('an object of runtime name to {"path", "runtime-args"}', v);
  const out: Record<string, RuntimeConfig> = {};
  for (const [name, rt] of Object.entries(v)) {
    if (!isRecord(rt)) throw new Error(`"${name}": expected an object, got ${describe(rt)}`);
    const p = rt['path'];
    if (typeof p !== 'string' || p === '') throw new Error(`"${name}".path: expected a non-empty string, got ${describe(p)}`);
    const args = rt['runtime-args'] ?? [];
    if (!Array.isArray(args) || !args.every((a) => typeof a === 'string')) throw new Error(`"${name}".runtime-args: expected a list of strings`);
    out[name] = { path: p, 'runtime-args': args };
  }
  return out;
};
const plugins: Check = (v) => {
  if (!Array.isArray(v)) return expect('a list of package names or {"package", "options"} objects', v);
  return v.map((p, i): PluginSpec => {
    if (typeof p === 'string' && p !== '') return { package: p, options: {} };
    if (isRecord(p) && typeof p['package'] === 'string' && p['package'] !== '') {
      for (const k of Object.keys(p)) if (k !== 'package' && k !== 'options') throw new Error(`item ${i}: unknown field "${k}" (want "package" and "options")`);
      const options = p['options'] ?? {};
      if (!isRecord(options)) throw new Error(`item ${i}: "options" must be an object, got ${describe(options)}`);
      return { package: p['package'], options };
    }
    throw new Error(`item ${i}: expected a package name or {"package": NAME, "options": {...}}, got ${describe(p)}`);
  });
};

/** A hook spec file, read and checked whole now: a daemon with a broken one does not start. */
const hookSpec: Check = (v) => {
  if (v === '') return v;
  const file = absPath(v) as string;
  loadHookSpec(file);
  return file;
};
const usernsRemap: Check = (v) => {
  if (typeof v !== 'string') return expect('"default", USER[:GROUP] or UID:GID:SIZE', v);
  if (v !== '') parseRemap(v);
  return v;
};

/** The daemon log's options (iSulad's `log-opts`); other keys are kept and reported as unknown. */
const logOpts: Check = (v) => {
  const opts = stringMap(v) as Record<string, string>;
  daemonLogSettings(opts);
  return opts;
};
/** `IP:PORT` (`[v6]:PORT`) or `unix:///ABSOLUTE_PATH`. */
const metricsAddr: Check = (v) => {
  if (typeof v !== 'string') return expect('an address like 127.0.0.1:9323 or unix:///run/isulad/metrics.sock', v);
  if (v === '') return v;
  parseMetricsAddr(v);
  return v;
};
const portOrOff: Check = (v) => (v === 0 ? v : port(v));

const CHECKS: Record<keyof DaemonConfig, Check> = {
  graph: absPath,
  state: absPath,
  'log-level': oneOf(...LOG_LEVELS),
  'log-driver': oneOf('file', 'stdout'),
  'log-opts': logOpts,
  hosts: strOrList(host, 'unix:// hosts'),
  group: str,
  pidfile: absPath,
  'default-runtime': nonEmpty,
  runtimes,
  'registry-mirrors': listOf(mirror, 'registry URLs'),
  'registry-mirrors-by-host': mirrorsByHost,
  'insecure-registries': listOf(nonEmpty, 'strings'),
  'registry-certs-dir': absPath,
  'max-concurrent-downloads': positiveInt,
  'max-concurrent-uploads': positiveInt,
  'registry-stall-timeout': duration,
  'cni-conf-dir': absPath,
  'cni-bin-dir': strOrList(absPath, 'absolute paths'),
  'network-plugin': str,
  'pod-sandbox-image': nonEmpty,
  'native.umask': oneOf('secure', 'normal'),
  'storage-driver': oneOf('overlay2', 'overlay'),
  'storage-opts': listOf(str, 'strings'),
  'start-timeout': str,
  'image-opt-timeout': str,
  'default-ulimits': object,
  'cgroup-parent': str,
  'container-log': object,
  'websocket-server-listening-port': port,
  'selinux-enabled': bool,
  'image-layer-check': bool,
  'insecure-skip-verify-enforce': bool,
  'use-decrypted-key': bool,
  'enable-pod-events': bool,
  'cri-runtimes': stringMap,
  plugins,
  'plugin-dirs': strOrList(absPath, 'absolute paths'),
  'hook-spec': hookSpec,
  'userns-remap': usernsRemap,
  'metrics-port': portOrOff,
  'metrics-addr': metricsAddr,
};

/** Keys of `log-opts` the daemon log understands (iSulad's). */
const DAEMON_LOG_OPTS: ReadonlySet<string> = new Set(['max-size', 'max-file', 'log-file-mode', 'log-path']);

export interface DaemonLogSettings {
  /** Rotate when the file would pass this size. */
  maxSizeBytes: number;
  /** Files kept, the current one included (Docker's json-file meaning); 1 truncates in place. */
  maxFiles: number;
  mode: number;
  /** Directory of `isulad.log`; undefined = the state root. */
  dir: string | undefined;
}

/** 10 MiB × 3 files: the daemon log lives on /run (tmpfs, i.e. memory) by default, so it stays small. */
export const DAEMON_LOG_DEFAULTS = Object.freeze({ 'max-size': '10m', 'max-file': '3', 'log-file-mode': '0640' });

/** The daemon log's bounds from `log-opts`; throws an Error naming the bad option (the caller names the key). */
export function daemonLogSettings(opts: Readonly<Record<string, string>>): DaemonLogSettings {
  const o: Record<string, string | undefined> & typeof DAEMON_LOG_DEFAULTS = { ...DAEMON_LOG_DEFAULTS, ...opts };
  let maxSizeBytes: number;
  try {
    maxSizeBytes = parseLogSize(o['max-size']);
  } catch (err) {
    throw new Error(`"max-size": ${(err as Error).message}`);
  }
  if (maxSizeBytes < 4096) throw new Error(`"max-size": ${JSON.stringify(o['max-size'])} is below 4k`);
  const files = o['max-file'];
  if (!/^\d+$/.test(files) || Number(files) < 1 || Number(files) > 100) throw new Error(`"max-file": expected a whole number from 1 to 100, got ${JSON.stringify(files)}`);
  const mode = o['log-file-mode'];
  if (!/^0?[0-7]{3}$/.test(mode)) throw new Error(`"log-file-mode": expected an octal mode like 0640, got ${JSON.stringify(mode)}`);
  const dir = o['log-path'];
  if (dir !== undefined && !path.isAbsolute(dir)) throw new Error(`"log-path": expected an absolute directory, got ${JSON.stringify(dir)}`);
  return { maxSizeBytes, maxFiles: Number(files), mode: parseInt(mode, 8), dir: dir === undefined ? undefined : path.normalize(dir) };
}

export type MetricsListen = { kind: 'tcp'; host: string; port: number } | { kind: 'unix'; path: string };

/** Parses `metrics-addr`: `IP:PORT`, `[IPv6]:PORT` or `unix:///ABSOLUTE_PATH`. Throws an Error naming the problem. */
export function parseMetricsAddr(addr: string): MetricsListen {
  if (addr.startsWith('unix://')) {
    const p = addr.slice('unix://'.length);
    if (!path.isAbsolute(p)) throw new Error(`${JSON.stringify(addr)}: a unix socket address needs an absolute path (unix:///run/isulad/metrics.sock)`);
    return { kind: 'unix', path: path.normalize(p) };
  }
  const m = /^(?:\[([0-9a-fA-F:]+)\]|([0-9.]+)):(\d{1,5})$/.exec(addr);
  const host = m?.[1] ?? m?.[2];
  const portNumber = Number(m?.[3]);
  if (host === undefined || isIP(host) === 0 || !(portNumber > 0 && portNumber < 65536)) {
    throw new Error(`${JSON.stringify(addr)}: expected IP:PORT (127.0.0.1:9323, [::1]:9323) or unix:///PATH`);
  }
  return { kind: 'tcp', host, port: portNumber };
}

/** Where metrics are served, or undefined when off (the default). */
export function metricsListen(config: Pick<DaemonConfig, 'metrics-port' | 'metrics-addr'>): MetricsListen | undefined {
  if (config['metrics-port'] !== 0) return { kind: 'tcp', host: '127.0.0.1', port: config['metrics-port'] };
  return config['metrics-addr'] === '' ? undefined : parseMetricsAddr(config['metrics-addr']);
}

export interface ValidationResult {
  config: DaemonConfig;
  /** Unknown keys, kept out of the config and reported as warnings. */
  unknownKeys: string[];
}

/**
 * Validates a parsed daemon.json over the defaults. Throws CONFIG_INVALID
 * naming the file and the first bad key; unknown keys are returned, not fatal.
 */
export function validateConfig(raw: unknown, source: string, base: DaemonConfig = defaultConfig()): ValidationResult {
  if (!isRecord(raw)) throw new IsulaError('CONFIG_INVALID', `${source}: expected a JSON object at the top level, got ${describe(raw)}`);
  const out: Record<string, unknown> = { ...base };
  const unknownKeys: string[] = [];
  for (const [key, value] of Object.entries(raw)) {
    // Own keys only: "valueOf", "constructor" ... are Object.prototype's, not daemon.json's (found by the fuzzer).
    const check = Object.hasOwn(CHECKS, key) ? (CHECKS as Record<string, Check | undefined>)[key] : undefined;
    if (check === undefined) {
      unknownKeys.push(key);
      continue;
    }
    try {
      out[key] = check(value);
    } catch (err) {
      throw new IsulaError('CONFIG_INVALID', `${source}: invalid value for "${key}": ${(err as Error).message}`, { details: { key } });
    }
  }
  const config = out as unknown as DaemonConfig;
  for (const key of Object.keys(config['log-opts'])) if (!DAEMON_LOG_OPTS.has(key)) unknownKeys.push(`log-opts.${key}`);
  if (config['metrics-port'] !== 0 && config['metrics-addr'] !== '') {
    throw new IsulaError('CONFIG_INVALID', `${source}: set one of "metrics-port" and "metrics-addr", not both`, { details: { key: 'metrics-addr' } });
  }
  // Derived defaults (socket, pid file) follow a configured state root.
  if ('state' in raw && !('hosts' in raw)) config.hosts = defaultConfig({ state: config.state }).hosts;
  if ('state' in raw && !('pidfile' in raw)) config.pidfile = path.join(config.state, 'isulad.pid');
  return { config, unknownKeys };
}

/** A JSON loader whose syntax errors name the file, line and column. */
const jsonLoader: Loader = (filepath, content) => {
  try {
    return JSON.parse(content) as unknown;
  } catch (err) {
    // JSON.parse's messages do not always carry a position: jsonc-parser, in strict mode, finds it.
    const errors: ParseError[] = [];
    parseTree(content, errors, { disallowComments: true, allowTrailingComma: false });
    const first = errors[0];
    const offset = first?.offset ?? content.length;
    const before = content.slice(0, offset);
    const line = before.split('\n').length;
    const column = offset - before.lastIndexOf('\n');
    const reason = first ? printParseErrorCode(first.error).replace(/([a-z])([A-Z])/g, '$1 $2').toLowerCase() : (err as Error).message;
    throw new IsulaError('CONFIG_INVALID', `${filepath}:${line}:${column}: invalid JSON: ${reason}`, { details: { file: filepath, line, column } });
  }
};

export interface LoadedConfig extends ValidationResult {
  /** The file read, or undefined when built-in defaults are in use. */
  file: string | undefined;
}

/**
 * Loads daemon.json. With `configFile`, that file must exist; without it,
 * /etc/isulad/daemon.json is used when present, otherwise built-in defaults.
 */
export async function loadConfig(options: { configFile?: string; searchDir?: string; state?: string; graph?: string } = {}): Promise<LoadedConfig> {
  const explorer = cosmiconfig('isulad', {
    searchPlaces: ['daemon.json'],
    searchStrategy: 'none',
    loaders: { '.json': jsonLoader, noExt: jsonLoader },
    cache: false,
  });
  let result: { config: unknown; filepath: string; isEmpty?: boolean } | null;
  try {
    if (options.configFile !== undefined) {
      result = await explorer.load(path.resolve(options.configFile));
    } else {
      result = await explorer.search(options.searchDir ?? DEFAULT_CONFIG_DIR);
    }
  } catch (err) {
    if (err instanceof IsulaError) throw err;
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'ENOENT') throw new IsulaError('CONFIG_NOT_FOUND', `config file ${options.configFile ?? ''} not found`, { cause: err });
    throw new IsulaError('CONFIG_INVALID', `cannot read config file ${options.configFile ?? ''}: ${e.message}`, { cause: err });
  }
  if (result === null) return { config: applyRootOverrides(defaultConfig(), options), unknownKeys: [], file: undefined };
  const raw = result.isEmpty ? {} : result.config;
  const validated = validateConfig(raw, result.filepath);
  return { ...validated, config: applyRootOverrides(validated.config, options, raw), file: result.filepath };
}

/** Command-line roots beat the file; derived defaults (socket, pid file) follow them unless the file set them. */
function applyRootOverrides(config: DaemonConfig, options: { state?: string; graph?: string }, raw: unknown = {}): DaemonConfig {
  const set = isRecord(raw) ? raw : {};
  const out = { ...config };
  if (options.graph !== undefined) out.graph = absPathOption('--graph', options.graph);
  if (options.state !== undefined) {
    out.state = absPathOption('--state', options.state);
    if (!('hosts' in set)) out.hosts = defaultConfig({ state: out.state }).hosts;
    if (!('pidfile' in set)) out.pidfile = path.join(out.state, 'isulad.pid');
  }
  return out;
}

function absPathOption(flag: string, value: string): string {
  if (!path.isAbsolute(value)) throw new IsulaError('CONFIG_INVALID', `${flag}: expected an absolute path, got ${JSON.stringify(value)}`);
  return path.normalize(value);
}
