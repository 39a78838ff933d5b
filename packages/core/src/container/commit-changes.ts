/**
 * `isula commit -c`: the Dockerfile instructions Docker's commit accepts as
 * changes to the new image's config (CMD, ENTRYPOINT, ENV, EXPOSE, LABEL,
 * USER, WORKDIR, STOPSIGNAL, VOLUME), applied in order. Exec form is a JSON
 * array; shell form runs under `/bin/sh -c`. Anything else is refused by
 * name, as Docker refuses it.
 */
import path from 'node:path';
import { IsulaError } from '../errors.js';

export type ImageConfigChanges = Record<string, unknown> & {
  Env?: string[];
  Cmd?: string[];
  Entrypoint?: string[];
  WorkingDir?: string;
  User?: string;
  Labels?: Record<string, string>;
  ExposedPorts?: Record<string, object>;
  Volumes?: Record<string, object>;
  StopSignal?: string;
};

const ALLOWED = ['CMD', 'ENTRYPOINT', 'ENV', 'EXPOSE', 'LABEL', 'USER', 'WORKDIR', 'STOPSIGNAL', 'VOLUME'];

function bad(message: string): IsulaError {
  return new IsulaError('API_BAD_REQUEST', message);
}

/** A JSON array of strings, or undefined for anything else. */
function jsonArray(rest: string): string[] | undefined {
  if (!rest.startsWith('[')) return undefined;
  try {
    const parsed: unknown = JSON.parse(rest);
    return Array.isArray(parsed) && parsed.every((x) => typeof x === 'string') ? parsed : undefined;
  } catch {
    return undefined;
  }
}

/** Exec form (`["a", "b"]`) or shell form (`a b` → `/bin/sh -c "a b"`; Docker runs a malformed JSON array so too). */
function commandForm(rest: string, instruction: string): string[] {
  const exec = jsonArray(rest);
  if (exec !== undefined) return exec;
  if (rest === '') throw bad(`${instruction} requires at least one argument`);
  return ['/bin/sh', '-c', rest];
}

/** Words, where "double" or 'single' quotes and backslashes keep blanks inside one. */
function words(rest: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quote: string | undefined;
  let inWord = false;
  for (let i = 0; i < rest.length; i++) {
    const c = rest[i] ?? '';
    if (quote !== undefined) {
      if (c === quote) quote = undefined;
      else if (c === '\\' && quote === '"' && i + 1 < rest.length) cur += rest[++i];
      else cur += c;
    } else if (c === '"' || c === "'") {
      quote = c;
      inWord = true;
    } else if (c === '\\' && i + 1 < rest.length) {
      cur += rest[++i];
      inWord = true;
    } else if (/\s/.test(c)) {
      if (inWord) { out.push(cur); cur = ''; inWord = false; }
    } else {
      cur += c;
      inWord = true;
    }
  }
  if (quote !== undefined) throw bad(`unterminated quote in ${JSON.stringify(rest)}`);
  if (inWord) out.push(cur);
  return out;
}

/** `k=v k2="v 2"`, or the legacy `k value with blanks` (ENV only, as Docker's). */
function pairs(rest: string, instruction: string, legacy: boolean): [string, string][] {
  const ws = words(rest);
  if (ws.length === 0) throw bad(`${instruction} requires at least one argument`);
  if (legacy && !(ws[0] ?? '').includes('=')) {
    const m = /^(\S+)\s+(.*)$/s.exec(rest.trim());
    if (m === null) throw bad(`${instruction} ${ws[0]} needs a value`);
    return [[m[1] ?? '', m[2] ?? '']];
  }
  return ws.map((w) => {
    const eq = w.indexOf('=');
    if (eq <= 0) throw bad(`${instruction} names must be KEY=VALUE: ${JSON.stringify(w)}`);
    return [w.slice(0, eq), w.slice(eq + 1)];
  });
}

/** Applies each change to `config` (a copy is returned; `config` itself is left alone). */
export function applyCommitChanges(config: ImageConfigChanges, changes: readonly string[]): ImageConfigChanges {
  const out: ImageConfigChanges = structuredClone(config);
  for (const change of changes) {
    const m = /^\s*(\S+)\s*(.*?)\s*$/s.exec(change);
    if (m === null) continue; // a blank change
    const instruction = (m[1] ?? '').toUpperCase();
    const rest = m[2] ?? '';
    if (!ALLOWED.includes(instruction)) throw bad(`${m[1]} is not a valid change command (commit takes ${ALLOWED.join(', ')})`);
    switch (instruction) {
      case 'CMD': out.Cmd = commandForm(rest, instruction); break;
      case 'ENTRYPOINT': out.Entrypoint = commandForm(rest, instruction); break;
      case 'ENV': {
        const env = [...(out.Env ?? [])];
        for (const [k, v] of pairs(rest, instruction, true)) {
          const i = env.findIndex((e) => e.split('=', 1)[0] === k);
          if (i >= 0) env[i] = `${k}=${v}`;
          else env.push(`${k}=${v}`);
        }
        out.Env = env;
        break;
      }
      case 'LABEL': out.Labels = { ...(out.Labels ?? {}), ...Object.fromEntries(pairs(rest, instruction, false)) }; break;
      case 'EXPOSE': {
        const ports = { ...(out.ExposedPorts ?? {}) };
        for (const p of words(rest)) {
          if (!/^\d{1,5}(-\d{1,5})?(\/(tcp|udp|sctp))?$/i.test(p)) throw bad(`EXPOSE: invalid port ${JSON.stringify(p)}`);
          ports[p.includes('/') ? p.toLowerCase() : `${p}/tcp`] = {};
        }
        out.ExposedPorts = ports;
        break;
      }
      case 'USER':
        if (rest === '') throw bad('USER requires an argument');
        out.User = rest;
        break;
      case 'WORKDIR':
        if (rest === '') throw bad('WORKDIR requires an argument');
        out.WorkingDir = path.posix.resolve(out.WorkingDir ?? '/', rest);
        break;
      case 'STOPSIGNAL':
        if (rest === '') throw bad('STOPSIGNAL requires an argument');
        out.StopSignal = rest;
        break;
      case 'VOLUME': {
        const list = jsonArray(rest) ?? words(rest);
        if (list.length === 0) throw bad('VOLUME requires at least one argument');
        out.Volumes = { ...(out.Volumes ?? {}), ...Object.fromEntries(list.map((v) => [v, {}])) };
        break;
      }
      default: break;
    }
  }
  return out;
}
