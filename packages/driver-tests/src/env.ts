/**
 * The environment the entry file reads (set by isula-driver-tests), parsed
 * with errors that name the variable.
 */
import type { SuiteOptions } from './suite-options.js';
import { parseSuites, SUITES } from './suites.js';

export interface KitEnv {
  runtime: string;
  suites: string[];
  options: SuiteOptions;
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
  if (runtime === '') throw new Error('ISULA_KIT_RUNTIME is not set: name the runtime to test');
  const suites = parseSuites(env['ISULA_KIT_SUITES'] ?? Object.keys(SUITES).join(','));
  const config = jsonObject(env, 'ISULA_KIT_CONFIG');
  const skips = jsonObject(env, 'ISULA_KIT_SKIP_TESTS');
  const skipTests: Record<string, string> = {};
  for (const [name, reason] of Object.entries(skips ?? {})) {
    if (typeof reason !== 'string' || reason === '') throw new Error(`ISULA_KIT_SKIP_TESTS: the reason for "${name}" must be a non-empty string`);
    skipTests[name] = reason;
  }
  const options: SuiteOptions = {
    ...(config !== undefined ? { config } : {}),
    ...(skips !== undefined ? { skipTests } : {}),
  };
  return { runtime, suites, options };
}
