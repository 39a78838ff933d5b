/**
 * A container's log driver and options: Docker's `HostConfig.LogConfig`
 * (`--log-driver`, `--log-opt`) over the daemon's `container-log` default
 * (iSulad's daemon.json key: `{ "driver": "json-file", "opts": { "max-size": "10m", "max-file": "3" } }`).
 * `json-file` keeps the log (internally in conmon's k8s-file format) and
 * rotates it; `none` keeps nothing.
 */
import { IsulaError } from '../errors.js';
import type { HostConfig } from './docker-types.js';
import { parseLogSize } from './log-rotation.js';

export type LogConfig = { Type: string; Config: Record<string, string> };

/** Used when neither the container nor daemon.json names a bound: unlike Docker's unbounded default, a log never grows for ever. */
export const DEFAULT_LOG_OPTS: Readonly<Record<string, string>> = Object.freeze({ 'max-size': '10m', 'max-file': '3' });
const DRIVERS: ReadonlySet<string> = new Set(['json-file', 'none']);
/** Options json-file accepts; those past max-size/max-file are taken and have no effect (Docker's log attributes). */
const JSON_FILE_OPTS: ReadonlySet<string> = new Set(['max-size', 'max-file', 'compress', 'labels', 'labels-regex', 'env', 'env-regex', 'tag']);

export interface LogSettings {
  keep: boolean;
  maxSizeBytes?: number;
  maxFiles: number;
}

/** The LogConfig a container is created with (Docker stores the resolved one in HostConfig). Throws CONTAINER_CONFIG_INVALID. */
export function resolveLogConfig(requested: HostConfig['LogConfig'], daemonDefault: Record<string, unknown>): LogConfig {
  const defType = typeof daemonDefault['driver'] === 'string' && daemonDefault['driver'] !== '' ? daemonDefault['driver'] : 'json-file';
  const defOpts = isStringMap(daemonDefault['opts']) ? daemonDefault['opts'] : {};
  const type = requested?.Type !== undefined && requested.Type !== '' ? requested.Type : defType;
  if (!DRIVERS.has(type)) throw new IsulaError('CONTAINER_CONFIG_INVALID', `logger: no log driver named '${type}' is registered (isula has json-file and none)`);
  const given = requested?.Config ?? {};
  if (!isStringMap(given)) throw new IsulaError('CONTAINER_CONFIG_INVALID', 'LogConfig.Config must map option names to strings');
  let config: Record<string, string>;
  if (type === 'none') {
    const bad = Object.keys(given)[0];
    if (bad !== undefined) throw new IsulaError('CONTAINER_CONFIG_INVALID', `unknown log opt '${bad}' for none log driver`);
    config = {};
  } else {
    config = { ...DEFAULT_LOG_OPTS, ...(type === defType ? defOpts : {}), ...given };
  }
  const out = { Type: type, Config: config };
  logSettings(out);
  return out;
}

/** What the runtime and the rotation need from a LogConfig. Throws CONTAINER_CONFIG_INVALID naming a bad option. */
export function logSettings(lc: HostConfig['LogConfig']): LogSettings {
  if (lc?.Type === 'none') return { keep: false, maxFiles: 1 };
  const c = lc?.Config ?? {};
  for (const k of Object.keys(c)) {
    if (!JSON_FILE_OPTS.has(k)) throw new IsulaError('CONTAINER_CONFIG_INVALID', `unknown log opt '${k}' for json-file log driver`);
  }
  if (c['compress'] !== undefined && c['compress'] !== 'false') throw new IsulaError('CONTAINER_CONFIG_INVALID', `log opt compress=${c['compress']} is not supported`);
  const size = c['max-size'];
  const maxSizeBytes = size === undefined || size === '' || size === '-1' ? undefined : parseLogSize(size);
  const files = c['max-file'] ?? '1';
  if (!/^\d+$/.test(files) || Number(files) < 1 || Number(files) > 100) throw new IsulaError('CONTAINER_CONFIG_INVALID', `invalid value for log opt max-file: ${JSON.stringify(files)} (want 1..100)`);
  if (maxSizeBytes === undefined && Number(files) > 1) throw new IsulaError('CONTAINER_CONFIG_INVALID', 'max-file cannot be set without max-size');
  if (maxSizeBytes !== undefined && maxSizeBytes < 4096) throw new IsulaError('CONTAINER_CONFIG_INVALID', `log opt max-size=${size} is below 4k`);
  return { keep: true, ...(maxSizeBytes !== undefined && { maxSizeBytes }), maxFiles: Number(files) };
}

function isStringMap(v: unknown): v is Record<string, string> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && Object.values(v).every((x) => typeof x === 'string');
}
