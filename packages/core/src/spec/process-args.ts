/**
 * The container's command and environment from the create request and the
 * image, with Docker's merge rules (moby `daemon/commit.go` `merge`,
 * `mergeAndVerifyConfig`, `CreateDaemonEnvironment`).
 */
import path from 'node:path';
import type { ContainerConfig } from '../container/docker-types.js';
import type { ImageRuntimeConfig } from '../drivers/image.js';
import { DEFAULT_PATH_ENV } from './defaults.js';
import { invalidConfig } from './invalid.js';

/**
 * argv = entrypoint ++ cmd, where
 * - a non-empty Config.Entrypoint replaces the image's and drops the image's Cmd;
 * - Config.Entrypoint `[]` (present but empty) clears the image's entrypoint
 *   and keeps the image's Cmd unless Config.Cmd is given;
 * - an absent (undefined/null) Config.Entrypoint keeps the image's;
 * - a non-empty Config.Cmd replaces the image's Cmd;
 * - an entrypoint of `[""]` (`--entrypoint ""`) means none.
 */
export function resolveArgs(config: Pick<ContainerConfig, 'Entrypoint' | 'Cmd'>, image: Pick<ImageRuntimeConfig, 'entrypoint' | 'cmd'>): string[] {
  let entrypoint: readonly string[] | null | undefined = config.Entrypoint;
  let cmd: readonly string[] = config.Cmd ?? [];
  if (entrypoint === undefined || entrypoint === null || entrypoint.length === 0) {
    if (cmd.length === 0) cmd = image.cmd ?? [];
    if (entrypoint === undefined || entrypoint === null) entrypoint = image.entrypoint ?? [];
  }
  if (entrypoint.length === 1 && entrypoint[0] === '') entrypoint = [];
  const args = [...entrypoint, ...cmd];
  if (args.length === 0) throw invalidConfig('no command specified');
  return args;
}

function envKey(entry: string): string {
  const eq = entry.indexOf('=');
  return eq < 0 ? entry : entry.slice(0, eq);
}

/**
 * The process environment: PATH (Docker's default), HOSTNAME, TERM=xterm
 * with a tty, then the image's Env, then Config.Env. A later entry replaces
 * an earlier one with the same key in place; an entry without "=" removes
 * the key (Docker's `ReplaceOrAppendEnvValues`).
 */
export function resolveEnv(opts: { imageEnv?: readonly string[] | undefined; configEnv?: readonly string[] | null | undefined; hostname: string; tty: boolean }): string[] {
  const env = new Map<string, string | undefined>();
  env.set('PATH', `PATH=${DEFAULT_PATH_ENV}`);
  env.set('HOSTNAME', `HOSTNAME=${opts.hostname}`);
  if (opts.tty) env.set('TERM', 'TERM=xterm');
  for (const entry of [...(opts.imageEnv ?? []), ...(opts.configEnv ?? [])]) {
    const key = envKey(entry);
    if (key === '') throw invalidConfig(`invalid environment variable "${entry}": the name is empty`);
    env.set(key, entry.includes('=') ? entry : undefined);
  }
  return [...env.values()].filter((e): e is string => e !== undefined);
}

/** Config.WorkingDir, else the image's, else "/"; must be absolute (Docker). */
export function resolveCwd(configDir: string | undefined, imageDir: string | undefined): string {
  if (configDir !== undefined && configDir !== '') {
    if (!path.isAbsolute(configDir)) throw invalidConfig(`the working directory '${configDir}' is invalid, it needs to be an absolute path`, { workingDir: configDir });
    return path.normalize(configDir);
  }
  if (imageDir !== undefined && imageDir !== '') return path.posix.join('/', imageDir);
  return '/';
}
