/**
 * `isula commit -c`: the Dockerfile instructions Docker's commit accepts as
 * changes to the new image's config (CMD, ENTRYPOINT, ENV, EXPOSE, LABEL,
 * USER, WORKDIR, STOPSIGNAL, VOLUME), applied in order. Exec form is a JSON
 * array; shell form runs under `/bin/sh -c`. Anything else is refused by
 * name, as Docker refuses it.
 */
import path from 'node:path';
import { IsulaError } from '../errors.js';
import { signalNumber } from '../signals.js';
import { parsePortSpec } from './network.js';

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

type Env = ReadonlyMap<string, string>;

/**
 * A `$NAME`, `${NAME}`, `${NAME:-word}` or `${NAME:+word}` at `i` (the `$`)
 * expanded against `env` (an unset name is empty), as the Dockerfile's shell
 * lexer does; returns the text and where it ends, or undefined for a `$`
 * that starts none of them.
 */
function expansionAt(s: string, i: number, env: Env): { text: string; end: number } | undefined {
  if (s[i + 1] === '{') {
    const close = s.indexOf('}', i + 2);
    if (close < 0) throw bad(`missing '}' in ${JSON.stringify(s)}`);
    const inner = s.slice(i + 2, close);
    const m = /^([A-Za-z_][A-Za-z0-9_]*)(?::([-+])(.*))?$/s.exec(inner);
    if (m === null) throw bad(`bad substitution \${${inner}} in ${JSON.stringify(s)}`);
    const value = env.get(m[1] ?? '');
    const set = value !== undefined && value !== '';
    const text = m[2] === '-' ? (set ? value : m[3] ?? '') : m[2] === '+' ? (set ? m[3] ?? '' : '') : value ?? '';
    return { text, end: close + 1 };
  }
  const name = /^[A-Za-z_][A-Za-z0-9_]*/.exec(s.slice(i + 1))?.[0];
  return name === undefined ? undefined : { text: env.get(name) ?? '', end: i + 1 + name.length };
}

/**
 * Words, where "double" or 'single' quotes and backslashes keep blanks
 * inside one, and `$VAR` expands from `env` outside single quotes.
 */
function words(rest: string, env: Env = new Map()): string[] {
  const out: string[] = [];
  let cur = '';
  let quote: string | undefined;
  let inWord = false;
  for (let i = 0; i < rest.length; i++) {
    const c = rest[i] ?? '';
    if (c === '$' && quote !== "'") {
      const x = expansionAt(rest, i, env);
      if (x !== undefined) {
        cur += x.text;
        inWord = true;
        i = x.end - 1;
        continue;
      }
    }
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

/** `text` with its `$VAR`s expanded, blanks and quotes kept as they are (a legacy ENV value). */
function expandOnly(text: string, env: Env): string {
  let out = '';
  for (let i = 0; i < text.length; i++) {
    const x = text[i] === '$' ? expansionAt(text, i, env) : undefined;
    if (x === undefined) { out += text[i] ?? ''; continue; }
    out += x.text;
    i = x.end - 1;
  }
  return out;
}

/** One word of an instruction that takes one (USER, WORKDIR, STOPSIGNAL), expanded. */
function single(rest: string, instruction: string, env: Env): string {
  if (rest === '') throw bad(`${instruction} requires an argument`);
  return words(rest, env).join(' ');
}

/** `k=v k2="v 2"`, or the legacy `k value with blanks` (ENV only, as Docker's). */
function pairs(rest: string, instruction: string, legacy: boolean, env: Env): [string, string][] {
  const ws = words(rest, env);
  if (ws.length === 0) throw bad(`${instruction} requires at least one argument`);
  if (legacy && !(ws[0] ?? '').includes('=')) {
    const m = /^(\S+)\s+(.*)$/s.exec(rest.trim());
    if (m === null) throw bad(`${instruction} ${ws[0]} needs a value`);
    return [[m[1] ?? '', expandOnly(m[2] ?? '', env)]];
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
  let cmdSet = false;
  for (const change of changes) {
    const m = /^\s*(\S+)\s*(.*?)\s*$/s.exec(change);
    if (m === null) continue; // a blank change
    const instruction = (m[1] ?? '').toUpperCase();
    const rest = m[2] ?? '';
    if (!ALLOWED.includes(instruction)) throw bad(`${m[1]} is not a valid change command (commit takes ${ALLOWED.join(', ')})`);
    // As the Dockerfile's: the environment so far, for $VAR in every instruction but CMD and ENTRYPOINT.
    const env: Env = new Map((out.Env ?? []).map((e) => { const eq = e.indexOf('='); return eq < 0 ? [e, ''] : [e.slice(0, eq), e.slice(eq + 1)]; }));
    switch (instruction) {
      case 'CMD':
        out.Cmd = commandForm(rest, instruction);
        cmdSet = true;
        break;
      case 'ENTRYPOINT':
        out.Entrypoint = commandForm(rest, instruction);
        // Docker's: a new entrypoint drops the command, unless this commit set one before it.
        if (!cmdSet) delete out.Cmd;
        break;
      case 'ENV': {
        const list = [...(out.Env ?? [])];
        for (const [k, v] of pairs(rest, instruction, true, env)) {
          const i = list.findIndex((e) => e.split('=', 1)[0] === k);
          if (i >= 0) list[i] = `${k}=${v}`;
          else list.push(`${k}=${v}`);
        }
        out.Env = list;
        break;
      }
      case 'LABEL': out.Labels = { ...(out.Labels ?? {}), ...Object.fromEntries(pairs(rest, instruction, false, env)) }; break;
      case 'EXPOSE': {
        const ports = { ...(out.ExposedPorts ?? {}) };
        for (const p of words(rest, env)) {
          const spec = parsePortSpec(p);
          if (spec === undefined) throw bad(`EXPOSE: invalid port ${JSON.stringify(p)}`);
          // nat.ParsePortSpecs: a range is each of its ports.
          for (let port = spec.from; port <= spec.to; port++) ports[`${port}/${spec.proto}`] = {};
        }
        out.ExposedPorts = ports;
        break;
      }
      case 'USER': out.User = single(rest, instruction, env); break;
      case 'WORKDIR': out.WorkingDir = path.posix.resolve(out.WorkingDir ?? '/', single(rest, instruction, env)); break;
      case 'STOPSIGNAL': {
        const sig = single(rest, instruction, env);
        try {
          signalNumber(sig);
        } catch {
          throw bad(`STOPSIGNAL: invalid signal ${JSON.stringify(sig)}`);
        }
        out.StopSignal = sig;
        break;
      }
      case 'VOLUME': {
        const list = jsonArray(rest) ?? words(rest, env);
        if (list.length === 0) throw bad('VOLUME requires at least one argument');
        out.Volumes = { ...(out.Volumes ?? {}), ...Object.fromEntries(list.map((v) => [v, {}])) };
        break;
      }
      default: break;
    }
  }
  return out;
}
