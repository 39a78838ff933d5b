/**
 * OCI hooks from iSulad's hook spec files (`--hook-spec FILE` per container,
 * `hook-spec` in daemon.json): the OCI `hooks` object, read and checked
 * whole before anything is created, then merged into config.json through
 * the spec-mutation hook. The runtime (runc, crun) runs them and enforces
 * each hook's `timeout`.
 */
import fs from 'node:fs';
import path from 'node:path';
import { parseTree, type ParseError } from 'jsonc-parser';
import { IsulaError } from '../errors.js';
import { isRecord } from '../is-record.js';

export interface OciHook {
  path: string;
  args?: string[];
  env?: string[];
  /** Seconds; the runtime kills the hook and fails the operation after it. */
  timeout: number;
}

/** The OCI runtime spec's hook points, in the order a container meets them. */
export const HOOK_POINTS = ['prestart', 'createRuntime', 'createContainer', 'startContainer', 'poststart', 'poststop'] as const;
export type HookPoint = (typeof HOOK_POINTS)[number];
export type OciHooks = Partial<Record<HookPoint, OciHook[]>>;

/** A hook without a timeout gets this one (seconds): a hung hook must not hang the container's start. */
export const DEFAULT_HOOK_TIMEOUT_S = 30;
const MAX_HOOK_SPEC_BYTES = 1024 * 1024;

// Types only, never values: the file is one a client named, and its content is not theirs to read.
const describe = (v: unknown): string =>
  v === null ? 'null' : v === undefined ? 'nothing' : Array.isArray(v) ? 'a list' : typeof v === 'object' ? 'an object' : `a ${typeof v}`;

/**
 * Checks a parsed hook spec and returns it normalised (every hook with a
 * timeout). Throws a plain Error naming the first bad field; `source` names
 * the file in the message. Hook binaries must exist and be executable now:
 * a missing one is reported at create, not as a runtime failure at start.
 */
export function parseHookSpec(raw: unknown, source: string): OciHooks {
  const fail = (msg: string): never => {
    throw new Error(`${source}: ${msg}`);
  };
  if (!isRecord(raw)) return fail(`expected an object of hook lists (${HOOK_POINTS.join(', ')}), got ${describe(raw)}`);
  const out: OciHooks = {};
  for (const [point, list] of Object.entries(raw)) {
    if (!(HOOK_POINTS as readonly string[]).includes(point)) fail(`unknown hook point "${point}" (want ${HOOK_POINTS.join(', ')})`);
    if (!Array.isArray(list)) return fail(`"${point}": expected a list of hooks, got ${describe(list)}`);
    out[point as HookPoint] = list.map((h, i): OciHook => {
      const where = `${point}[${i}]`;
      if (!isRecord(h)) return fail(`${where}: expected an object with "path", got ${describe(h)}`);
      for (const k of Object.keys(h)) if (!['path', 'args', 'env', 'timeout'].includes(k)) fail(`${where}: unknown field "${k}" (want path, args, env, timeout)`);
      const p = h['path'];
      if (typeof p !== 'string' || !path.isAbsolute(p)) return fail(`${where}.path: expected an absolute path, got ${describe(p)}`);
      try {
        fs.accessSync(p, fs.constants.X_OK);
        if (!fs.statSync(p).isFile()) fail(`${where}.path: ${p} is not a file`);
      } catch (err) {
        if (err instanceof Error && err.message.startsWith(source)) throw err;
        fail(`${where}.path: ${p} does not exist or is not executable`);
      }
      // The runtime runs it as root: only root may have written it.
      const unsafe = rootOnlyProblem(fs.statSync(p));
      if (unsafe !== undefined) fail(`${where}.path: ${p} ${unsafe}`);
      const hook: OciHook = { path: p, timeout: DEFAULT_HOOK_TIMEOUT_S };
      for (const field of ['args', 'env'] as const) {
        const v = h[field];
        if (v === undefined) continue;
        if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) return fail(`${where}.${field}: expected a list of strings, got ${describe(v)}`);
        if (field === 'env') for (const e of v as string[]) if (!/^[^=]+=/.test(e)) fail(`${where}.env: "${e}" is not KEY=VALUE`);
        hook[field] = [...(v as string[])];
      }
      const t = h['timeout'];
      if (t !== undefined) {
        if (!Number.isSafeInteger(t) || (t as number) <= 0) return fail(`${where}.timeout: expected a whole number of seconds above 0, got ${describe(t)}`);
        hook.timeout = t as number;
      }
      return hook;
    });
  }
  return out;
}

/** Why a file the daemon runs or trusts as root is unsafe: not root's, or writable by others. */
function rootOnlyProblem(st: fs.Stats): string | undefined {
  if (st.uid !== 0) return `is not owned by root (uid ${st.uid})`;
  if ((st.mode & 0o022) !== 0) return 'is writable by group or others';
  return undefined;
}

/** Pseudo file systems hold no hook spec, and reading them can block or leak. */
const PSEUDO = ['/proc/', '/sys/', '/dev/'];

function checkSpecFile(real: string, st: fs.Stats): void {
  if (PSEUDO.some((p) => real.startsWith(p))) throw new Error('not a hook spec file (a /proc, /sys or /dev path)');
  if (!st.isFile()) throw new Error('not a regular file');
  if (st.size > MAX_HOOK_SPEC_BYTES) throw new Error(`larger than ${MAX_HOOK_SPEC_BYTES} bytes`);
  const unsafe = rootOnlyProblem(st);
  if (unsafe !== undefined) throw new Error(`${unsafe}: its hooks would run as root`);
}

function parseText(file: string, text: string): OciHooks {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    // The position only: JSON.parse's message quotes the content.
    const errors: ParseError[] = [];
    parseTree(text, errors, { disallowComments: true, allowTrailingComma: false });
    const offset = errors[0]?.offset ?? text.length;
    const before = text.slice(0, offset);
    throw new IsulaError('CONTAINER_CONFIG_INVALID', `hook spec ${file} is not valid JSON (line ${before.split('\n').length}, column ${offset - before.lastIndexOf('\n')})`);
  }
  try {
    return parseHookSpec(raw, `hook spec ${file}`);
  } catch (err) {
    throw new IsulaError('CONTAINER_CONFIG_INVALID', (err as Error).message);
  }
}

const readFailure = (file: string, err: unknown): IsulaError =>
  new IsulaError('CONTAINER_CONFIG_INVALID', `cannot read hook spec ${file}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}`);

function requireAbsolute(file: string): void {
  if (!path.isAbsolute(file)) throw new IsulaError('CONTAINER_CONFIG_INVALID', `hook spec ${JSON.stringify(file)}: expected an absolute path`);
}

/**
 * Reads and checks a hook spec file (daemon.json's `hook-spec`, at start).
 * The file must be a root-owned regular file no one else can write: its
 * hooks run as root. Errors are CONTAINER_CONFIG_INVALID (config rewraps).
 */
export function loadHookSpec(file: string): OciHooks {
  requireAbsolute(file);
  let text: string;
  try {
    const real = fs.realpathSync(file);
    checkSpecFile(real, fs.statSync(real));
    text = fs.readFileSync(real, 'utf8');
  } catch (err) {
    throw readFailure(file, err);
  }
  return parseText(file, text);
}

/** The same for a container's `--hook-spec`, without blocking the daemon on a slow file system. */
export async function readHookSpec(file: string): Promise<OciHooks> {
  requireAbsolute(file);
  let text: string;
  try {
    const real = await fs.promises.realpath(file);
    checkSpecFile(real, await fs.promises.stat(real));
    text = await fs.promises.readFile(real, { encoding: 'utf8', signal: AbortSignal.timeout(10_000) });
  } catch (err) {
    throw readFailure(file, err);
  }
  return parseText(file, text);
}

/** The daemon's hooks first, then the container's, per hook point; undefined when there are none. */
export function mergeHooks(...specs: (OciHooks | undefined)[]): OciHooks | undefined {
  const out: OciHooks = {};
  for (const spec of specs) {
    for (const point of HOOK_POINTS) {
      const list = spec?.[point];
      if (list !== undefined && list.length > 0) out[point] = [...(out[point] ?? []), ...list];
    }
  }
  return Object.keys(out).length > 0 ? out : undefined;
}
