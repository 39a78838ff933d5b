/**
 * Finds, imports, checks and applies the plugins daemon.json lists. Any
 * failure stops the daemon's start with a message naming the package.
 *
 * Resolution: each `plugin-dirs` entry first (as `DIR/node_modules/NAME`, the
 * layout `npm install --prefix DIR` and `npm install -g` make, or `DIR/NAME`),
 * then the daemon's own installation (Node's resolution from this module).
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Logger } from 'pino';
import { exports as resolveExports, legacy as resolveLegacy } from 'resolve.exports';
// The two functions, not the whole package (its index loads ~47 modules at every daemon start).
import satisfies from 'semver/functions/satisfies.js';
import validRange from 'semver/ranges/valid.js';
import type { PluginSpec } from './config.js';
import { IsulaError } from './errors.js';
import { PLUGIN_API_VERSION, type IsulaPlugin, type LoadedPlugin, type PluginHost } from './plugin.js';

interface PackageJson {
  name?: unknown;
  version?: unknown;
  [key: string]: unknown;
}

const VALID_NAME = /^(?:@[a-z0-9][\w.-]*\/)?[a-z0-9][\w.-]*$/i;

async function readPackageJson(dir: string): Promise<PackageJson | undefined> {
  try {
    return JSON.parse(await fs.readFile(path.join(dir, 'package.json'), 'utf8')) as PackageJson;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new IsulaError('PLUGIN_INVALID', `plugin package at ${dir}: unreadable package.json: ${(err as Error).message}`, { cause: err });
  }
}

/** The package directory of `name`, or undefined when it is not installed anywhere we look. */
export async function locatePlugin(name: string, pluginDirs: readonly string[]): Promise<string | undefined> {
  if (path.isAbsolute(name)) return (await readPackageJson(name)) ? name : undefined;
  if (!VALID_NAME.test(name)) throw new IsulaError('PLUGIN_INVALID', `plugin "${name}": not a valid npm package name`);
  for (const dir of pluginDirs) {
    for (const candidate of [path.join(dir, 'node_modules', name), path.join(dir, name)]) {
      const pkg = await readPackageJson(candidate);
      if (pkg?.name === name) return candidate;
    }
  }
  // The daemon's own installation: resolve the package's entry, then walk up to its package.json.
  let entry: string;
  try {
    entry = fileURLToPath(import.meta.resolve(name));
  } catch {
    return undefined;
  }
  for (let dir = path.dirname(entry); dir !== path.dirname(dir); dir = path.dirname(dir)) {
    const pkg = await readPackageJson(dir);
    if (pkg?.name === name) return dir;
  }
  return undefined;
}

function entryPoint(dir: string, pkg: PackageJson): string {
  let rel: string;
  try {
    const legacy = resolveLegacy(pkg);
    rel = resolveExports(pkg, '.', { conditions: ['node', 'import'] })?.[0] ?? (typeof legacy === 'string' ? legacy : 'index.js');
  } catch (err) {
    throw new IsulaError('PLUGIN_INVALID', `plugin package at ${dir}: its package.json "exports" has no entry for import: ${(err as Error).message}`, { cause: err });
  }
  return path.resolve(dir, rel);
}

function isPluginObject(value: unknown): value is IsulaPlugin {
  if (typeof value !== 'object' || value === null) return false;
  const p = value as Record<string, unknown>;
  return typeof p['name'] === 'string' && typeof p['apiVersion'] === 'string' && typeof p['apply'] === 'function';
}

export interface LoadPluginsOptions {
  pluginDirs: readonly string[];
  /** Makes the host each plugin's `apply` sees (with its own child logger). */
  hostFor(pluginName: string): PluginHost;
  log: Logger;
  /** Told each plugin's load time (import and apply), for metrics. */
  onLoaded?(plugin: LoadedPlugin, durationMs: number): void;
}

/** Loads plugins in order. Throws PLUGIN_NOT_FOUND, PLUGIN_INVALID, PLUGIN_API_MISMATCH or PLUGIN_APPLY_FAILED. */
export async function loadPlugins(specs: readonly PluginSpec[], options: LoadPluginsOptions): Promise<LoadedPlugin[]> {
  const loaded: LoadedPlugin[] = [];
  for (const spec of specs) {
    const name = spec.package;
    if (loaded.some((p) => p.name === name || p.path === name)) {
      options.log.warn({ plugin: name }, 'plugin listed twice; loading it once');
      continue;
    }
    const started = performance.now();
    const dir = await locatePlugin(name, options.pluginDirs);
    if (dir === undefined) {
      throw new IsulaError('PLUGIN_NOT_FOUND', `plugin "${name}" is not installed: looked in ${[...options.pluginDirs, "isulad's own installation"].join(', ')}`, { details: { plugin: name } });
    }
    const pkg = (await readPackageJson(dir)) ?? {};
    const version = typeof pkg.version === 'string' ? pkg.version : '0.0.0';
    let mod: { default?: unknown };
    try {
      mod = (await import(pathToFileURL(entryPoint(dir, pkg)).href)) as { default?: unknown };
    } catch (err) {
      if (err instanceof IsulaError) throw err;
      throw new IsulaError('PLUGIN_INVALID', `plugin "${name}" (${dir}) cannot be imported: ${(err as Error).message}`, { cause: err, details: { plugin: name } });
    }
    const plugin = mod.default;
    if (!isPluginObject(plugin)) {
      throw new IsulaError('PLUGIN_INVALID', `plugin "${name}" (${dir}): its default export is not a plugin object { name, apiVersion, apply }`, { details: { plugin: name } });
    }
    if (validRange(plugin.apiVersion) === null) {
      throw new IsulaError('PLUGIN_INVALID', `plugin "${name}": apiVersion ${JSON.stringify(plugin.apiVersion)} is not a semver range`, { details: { plugin: name } });
    }
    if (!satisfies(PLUGIN_API_VERSION, plugin.apiVersion)) {
      throw new IsulaError('PLUGIN_API_MISMATCH', `plugin "${name}" ${version} requires plugin API ${plugin.apiVersion}, but this isulad provides ${PLUGIN_API_VERSION}`, { details: { plugin: name, required: plugin.apiVersion, provided: PLUGIN_API_VERSION } });
    }
    if (plugin.name !== pkg.name) options.log.warn({ plugin: name, declared: plugin.name }, 'plugin object name differs from its package name');
    try {
      await plugin.apply(options.hostFor(plugin.name), spec.options);
    } catch (err) {
      if (err instanceof IsulaError && err.code === 'PLUGIN_OPTIONS_INVALID') {
        throw new IsulaError('PLUGIN_OPTIONS_INVALID', `plugin "${name}": ${err.message}`, { cause: err, details: { plugin: name } });
      }
      throw new IsulaError('PLUGIN_APPLY_FAILED', `plugin "${name}" failed to start: ${err instanceof Error ? err.message : String(err)}`, { cause: err, details: { plugin: name } });
    }
    const entry: LoadedPlugin = { name: typeof pkg.name === 'string' ? pkg.name : name, version, apiVersion: plugin.apiVersion, path: dir };
    loaded.push(entry);
    const durationMs = performance.now() - started;
    options.onLoaded?.(entry, durationMs);
    options.log.info({ plugin: entry.name, version, path: dir, durationMs: Math.round(durationMs) }, 'plugin loaded');
  }
  return loaded;
}
