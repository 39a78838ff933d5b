/**
 * The environment the entry file reads (set by isula-driver-tests), parsed
 * with errors that name the variable.
 */
import { parseKitImageJson, type KitImageJson } from './kit-image.js';
import type { SuiteOptions } from './suite-options.js';

/** The largest timer Node takes (2^31 − 1 ms, ~24.8 days). */
export const MAX_TIMEOUT_MS = 2 ** 31 - 1;
import { defaultSuites, isRuntimeSuite, parseSuites } from './suites.js';

export interface KitEnv {
  /** The runtime the containers run under: ISULA_KIT_RUNTIME, else runc (image and network suites only). */
  runtime: string;
  suites: string[];
  options: SuiteOptions;
  /** For the image suite: the format the driver registers and the image it runs. */
  image?: { format: string; image: KitImageJson };
  /** For the network suite: the driver's name and the bridge its host interfaces go on. */
  network?: { driver: string; bridge?: string };
}

function jsonObject(env: NodeJS.ProcessEnv, name: string): Record<string, unknown> | undefined {
  const text = env[name];
  if (text === undefined || text === '') return undefined;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new Error(`${name} is not JSON: ${(err as Error).message}`, { cause: err });
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error(`${name} must be a JSON object, got ${text}`);
  return value as Record<string, unknown>;
}

export function kitOptionsFromEnv(env: NodeJS.ProcessEnv): KitEnv {
  const runtime = env['ISULA_KIT_RUNTIME'] ?? '';
  const imageFormat = env['ISULA_KIT_IMAGE_FORMAT'] ?? '';
  const networkDriver = env['ISULA_KIT_NETWORK_DRIVER'] ?? '';
  const bridge = env['ISULA_KIT_NETWORK_BRIDGE'] ?? '';
  const suites = env['ISULA_KIT_SUITES'] !== undefined && env['ISULA_KIT_SUITES'] !== ''
    ? parseSuites(env['ISULA_KIT_SUITES'])
    : defaultSuites({ runtime: runtime !== '', image: imageFormat !== '', network: networkDriver !== '' });
  if (suites.length === 0 || (runtime === '' && suites.some(isRuntimeSuite))) throw new Error('ISULA_KIT_RUNTIME is not set: name the runtime to test');
  const config = jsonObject(env, 'ISULA_KIT_CONFIG');
  const skips = jsonObject(env, 'ISULA_KIT_SKIP_TESTS');
  const skipTests: Record<string, string> = {};
  for (const [name, reason] of Object.entries(skips ?? {})) {
    if (typeof reason !== 'string' || reason === '') throw new Error(`ISULA_KIT_SKIP_TESTS: the reason for "${name}" must be a non-empty string`);
    skipTests[name] = reason;
  }
  const timeoutText = env['ISULA_KIT_TIMEOUT_MS'] ?? '';
  const testTimeoutMs = timeoutText === '' ? undefined : Number(timeoutText);
  if (testTimeoutMs !== undefined && !(Number.isInteger(testTimeoutMs) && testTimeoutMs > 0 && testTimeoutMs <= MAX_TIMEOUT_MS)) {
    throw new Error(`ISULA_KIT_TIMEOUT_MS must be a whole number of ms from 1 to ${MAX_TIMEOUT_MS}, got ${JSON.stringify(timeoutText)}`);
  }
  const options: SuiteOptions = {
    ...(config !== undefined ? { config } : {}),
    ...(skips !== undefined ? { skipTests } : {}),
    ...(testTimeoutMs !== undefined ? { testTimeoutMs } : {}),
  };
  let image: KitEnv['image'];
  if (suites.includes('image')) {
    if (imageFormat === '') throw new Error('ISULA_KIT_IMAGE_FORMAT is not set: name the image format the image suite tests');
    const json = jsonObject(env, 'ISULA_KIT_IMAGE');
    if (json === undefined) throw new Error('ISULA_KIT_IMAGE is not set: give the image the image suite runs, as JSON');
    try {
      image = { format: imageFormat, image: parseKitImageJson(json) };
    } catch (err) {
      throw new Error(`ISULA_KIT_IMAGE: ${(err as Error).message}`, { cause: err });
    }
  }
  let network: KitEnv['network'];
  if (suites.includes('network')) {
    if (networkDriver === '') throw new Error('ISULA_KIT_NETWORK_DRIVER is not set: name the network driver the network suite tests');
    network = { driver: networkDriver, ...(bridge !== '' ? { bridge } : {}) };
  }
  return { runtime: runtime === '' ? 'runc' : runtime, suites, options, ...(image !== undefined ? { image } : {}), ...(network !== undefined ? { network } : {}) };
}
