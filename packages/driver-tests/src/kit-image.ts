/**
 * The image suite's image as JSON, for the command (`--kit-image FILE`) and
 * the entry file (`ISULA_KIT_IMAGE`): a KitImage with its patterns as
 * strings, and an archive to load into each spec's daemon. Checked field by
 * field, unknown fields refused: a typo must not quietly weaken a check.
 */
import path from 'node:path';
import type { KitImage } from './image-suite.js';

/** KitImage as JSON: regular expressions as strings (JavaScript syntax, `^`/`$` match at line ends). */
export interface KitImageJson {
  /** A docker-archive `isula load -i` reads into each spec's daemon before the suite uses the image. */
  load?: string;
  args: string[];
  graphDriver: string;
  id?: string;
  missing: { args: string[]; error: string };
  config: { env: string[]; workingDir?: string; cmd?: { args: string[]; output: string }; noCommand?: string };
  list: { repository: string; tag: string } | { skip: string };
  roots?: string[];
}

type Obj = Record<string, unknown>;

function object(v: unknown, at: string, known: readonly string[]): Obj {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error(`${at}: must be a JSON object`);
  const unknown = Object.keys(v).filter((k) => !known.includes(k));
  if (unknown.length > 0) throw new Error(`${at}: unknown field ${unknown.map((k) => JSON.stringify(k)).join(', ')} (known: ${known.join(', ')})`);
  return v as Obj;
}

function str(o: Obj, key: string, at: string): string {
  const v = o[key];
  if (typeof v !== 'string' || v === '') throw new Error(`${at}${key}: must be a non-empty string`);
  return v;
}

function optStr(o: Obj, key: string, at: string): string | undefined {
  return o[key] === undefined ? undefined : str(o, key, at);
}

function strings(o: Obj, key: string, at: string, nonEmpty: boolean): string[] {
  const v = o[key];
  if (!Array.isArray(v) || v.some((s) => typeof s !== 'string') || (nonEmpty && v.length === 0)) throw new Error(`${at}${key}: must be a${nonEmpty ? ' non-empty' : 'n'} array of strings`);
  return v as string[];
}

function pattern(o: Obj, key: string, at: string): string {
  const v = str(o, key, at);
  try {
    new RegExp(v, 'm');
  } catch (err) {
    throw new Error(`${at}${key}: not a regular expression: ${(err as Error).message}`, { cause: err });
  }
  return v;
}

/**
 * Checks a `--kit-image` value and returns it with `load` and `roots`
 * resolved against `baseDir` (the JSON file's directory). Throws an Error
 * naming the field.
 */
export function parseKitImageJson(value: unknown, baseDir = process.cwd()): KitImageJson {
  const o = object(value, 'the kit image', ['load', 'args', 'graphDriver', 'id', 'missing', 'config', 'list', 'roots']);
  const missing = object(o['missing'], 'missing', ['args', 'error']);
  const config = object(o['config'], 'config', ['env', 'workingDir', 'cmd', 'noCommand']);
  const cmd = config['cmd'] === undefined ? undefined : object(config['cmd'], 'config.cmd', ['args', 'output']);
  const list = object(o['list'], 'list', ['repository', 'tag', 'skip']);
  if ('skip' in list && Object.keys(list).length > 1) throw new Error('list: either {"repository", "tag"} or {"skip": why the format lists no images}, not both');
  const load = optStr(o, 'load', '');
  const id = optStr(o, 'id', '');
  const workingDir = optStr(config, 'workingDir', 'config.');
  const roots = o['roots'] === undefined ? undefined : strings(o, 'roots', '', false);
  return {
    ...(load !== undefined ? { load: path.resolve(baseDir, load) } : {}),
    args: strings(o, 'args', '', true),
    graphDriver: str(o, 'graphDriver', ''),
    ...(id !== undefined ? { id } : {}),
    missing: { args: strings(missing, 'args', 'missing.', true), error: pattern(missing, 'error', 'missing.') },
    config: {
      env: strings(config, 'env', 'config.', false),
      ...(workingDir !== undefined ? { workingDir } : {}),
      ...(cmd !== undefined ? { cmd: { args: strings(cmd, 'args', 'config.cmd.', true), output: pattern(cmd, 'output', 'config.cmd.') } } : {}),
      ...(config['noCommand'] !== undefined ? { noCommand: pattern(config, 'noCommand', 'config.') } : {}),
    },
    list: 'skip' in list ? { skip: str(list, 'skip', 'list.') } : { repository: str(list, 'repository', 'list.'), tag: str(list, 'tag', 'list.') },
    ...(roots !== undefined ? { roots: roots.map((r) => path.resolve(baseDir, r)) } : {}),
  };
}

/** The KitImage the suite takes: the patterns compiled. */
export function kitImage(json: KitImageJson): KitImage {
  const re = (s: string) => new RegExp(s, 'm');
  const { cmd, noCommand, ...config } = json.config;
  return {
    args: json.args,
    graphDriver: json.graphDriver,
    ...(json.id !== undefined ? { id: json.id } : {}),
    missing: { args: json.missing.args, error: re(json.missing.error) },
    config: {
      ...config,
      ...(cmd !== undefined ? { cmd: { args: cmd.args, output: re(cmd.output) } } : {}),
      ...(noCommand !== undefined ? { noCommand: re(noCommand) } : {}),
    },
    list: json.list,
    ...(json.roots !== undefined ? { roots: json.roots } : {}),
  };
}
