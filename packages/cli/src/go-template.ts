/**
 * The part of Go's text/template that `inspect -f` is used with, over a JSON
 * value: `{{.State.Status}}`, `{{json .Config}}`, `{{index .Config.Labels "k"}}`,
 * `{{range .Mounts}}{{.Source}} {{end}}`, `{{range $k, $v := .Config.Labels}}`,
 * `{{if .State.Running}}…{{else}}…{{end}}`, pipes (`{{.Name | upper}}`),
 * `{{- -}}` trimming, and docker's functions (json, join, split, upper, lower,
 * title, len, index, eq, ne, not, println). Values print as Go's fmt does a
 * decoded JSON value: `[a b]`, `map[k:v]`, `<nil>`, `<no value>` for a missing key.
 */

type Node =
  | { kind: 'text'; text: string }
  | { kind: 'action'; pipe: Token[][] }
  | { kind: 'if'; pipe: Token[][]; then: Node[]; else: Node[] }
  | { kind: 'range'; pipe: Token[][]; vars: string[]; body: Node[]; else: Node[] };

type Token = { t: 'str'; v: string } | { t: 'num'; v: number } | { t: 'word'; v: string };

const MISSING = Symbol('no value');

function tokenize(action: string): Token[] {
  const tokens: Token[] = [];
  const re = /\s*(?:("(?:[^"\\]|\\.)*")|(`[^`]*`)|(-?\d+(?:\.\d+)?)(?![\w.])|([^\s"`|]+|\|))/gy;
  let m: RegExpExecArray | null;
  let end = 0;
  while ((m = re.exec(action)) !== null && m[0] !== '') {
    end = re.lastIndex;
    if (m[1] !== undefined) tokens.push({ t: 'str', v: JSON.parse(m[1]) as string });
    else if (m[2] !== undefined) tokens.push({ t: 'str', v: m[2].slice(1, -1) });
    else if (m[3] !== undefined) tokens.push({ t: 'num', v: Number(m[3]) });
    else if (m[4] !== undefined) tokens.push({ t: 'word', v: m[4] });
  }
  if (action.slice(end).trim() !== '') throw new Error(`template: cannot parse {{${action}}}`);
  return tokens;
}

/** Splits tokens at `|` into commands. */
function pipeline(tokens: Token[]): Token[][] {
  const cmds: Token[][] = [[]];
  for (const tok of tokens) {
    if (tok.t === 'word' && tok.v === '|') cmds.push([]);
    else cmds[cmds.length - 1]?.push(tok);
  }
  if (cmds.some((c) => c.length === 0)) throw new Error('template: missing command in pipeline');
  for (const [head] of cmds) {
    if (head?.t === 'word' && !/^[.$]/.test(head.v) && !['true', 'false', 'nil'].includes(head.v) && !Object.hasOwn(FUNCS, head.v)) {
      throw new Error(`template: function "${head.v}" not defined`);
    }
  }
  return cmds;
}

function parse(source: string): Node[] {
  const root: Node[] = [];
  const stack: { nodes: Node[]; node?: Extract<Node, { kind: 'if' | 'range' }>; inElse: boolean }[] = [{ nodes: root, inElse: false }];
  const current = () => stack[stack.length - 1] as (typeof stack)[number];
  let i = 0;
  while (i < source.length) {
    const open = source.indexOf('{{', i);
    let text = open < 0 ? source.slice(i) : source.slice(i, open);
    if (open < 0) { if (text !== '') current().nodes.push({ kind: 'text', text }); break; }
    const close = source.indexOf('}}', open + 2);
    if (close < 0) throw new Error('template: unclosed action');
    let action = source.slice(open + 2, close);
    if (/^-\s/.test(action)) { text = text.trimEnd(); action = action.slice(1); }
    i = close + 2;
    if (/\s-$/.test(action)) { action = action.slice(0, -1); while (/\s/.test(source[i] ?? '')) i += 1; }
    if (text !== '') current().nodes.push({ kind: 'text', text });
    const tokens = tokenize(action.trim());
    const [head] = tokens;
    const word = head?.t === 'word' ? head.v : '';
    if (word === 'if' || word === 'range') {
      let rest = tokens.slice(1);
      const vars: string[] = [];
      const assign = rest.findIndex((t) => t.t === 'word' && t.v === ':=');
      if (word === 'range' && assign > 0) {
        for (const t of rest.slice(0, assign)) if (t.t === 'word') vars.push(...t.v.split(',').filter(Boolean));
        rest = rest.slice(assign + 1);
      }
      const node = word === 'if'
        ? { kind: 'if' as const, pipe: pipeline(rest), then: [], else: [] }
        : { kind: 'range' as const, pipe: pipeline(rest), vars, body: [], else: [] };
      current().nodes.push(node);
      stack.push({ nodes: node.kind === 'if' ? node.then : node.body, node, inElse: false });
    } else if (word === 'else') {
      const top = current();
      if (top.node === undefined || top.inElse) throw new Error('template: unexpected {{else}}');
      top.inElse = true;
      top.nodes = top.node.else;
    } else if (word === 'end') {
      if (stack.length === 1) throw new Error('template: unexpected {{end}}');
      stack.pop();
    } else if (tokens.length === 0) {
      throw new Error('template: missing value for command');
    } else {
      current().nodes.push({ kind: 'action', pipe: pipeline(tokens) });
    }
  }
  if (stack.length > 1) throw new Error('template: unexpected EOF (an {{if}} or {{range}} without {{end}})');
  return root;
}

/** Go's `fmt.Sprint` of a decoded JSON value. */
export function goPrint(v: unknown): string {
  if (v === MISSING) return '<no value>';
  if (v === null || v === undefined) return '<nil>';
  if (Array.isArray(v)) return `[${v.map(goPrint).join(' ')}]`;
  if (typeof v === 'object') {
    return `map[${Object.keys(v).sort().map((k) => `${k}:${goPrint((v as Record<string, unknown>)[k])}`).join(' ')}]`;
  }
  return String(v);
}

const truthy = (v: unknown) => !(v === MISSING || v === null || v === undefined || v === false || v === 0 || v === ''
  || (Array.isArray(v) && v.length === 0) || (typeof v === 'object' && Object.keys(v).length === 0));

const text = (v: unknown) => (typeof v === 'string' ? v : goPrint(v));

const FUNCS: Record<string, (...args: unknown[]) => unknown> = {
  json: (v) => `${JSON.stringify(v === MISSING ? null : v) ?? 'null'}`,
  join: (list, sep) => (Array.isArray(list) ? list.map(text).join(text(sep)) : text(list)),
  split: (s, sep) => text(s).split(text(sep)),
  upper: (s) => text(s).toUpperCase(),
  lower: (s) => text(s).toLowerCase(),
  title: (s) => text(s).replace(/(^|[^\p{L}\p{N}_'])(\p{L})/gu, (_m, a: string, b: string) => a + b.toUpperCase()),
  len: (v) => (Array.isArray(v) ? v.length : typeof v === 'string' ? v.length : v !== null && typeof v === 'object' ? Object.keys(v).length : 0),
  index: (v, ...keys) => {
    let cur = v;
    for (const k of keys) {
      // docker runs the template on its typed structs first, where a nil map indexes to "".
      if (cur === null || cur === MISSING) return '';
      if (typeof cur !== 'object') throw new Error(`template: can't index item of type ${typeof cur}`);
      const val = (cur as Record<string, unknown>)[String(k)];
      if (val === undefined && Array.isArray(cur)) throw new Error(`template: index out of range: ${String(k)}`);
      // Go's index of a missing map key is the zero value: "" for docker's map[string]string.
      cur = val === undefined ? '' : val;
    }
    return cur;
  },
  eq: (a, ...bs) => bs.some((b) => a === b),
  ne: (a, b) => a !== b,
  not: (v) => !truthy(v),
  println: (...args) => `${args.map(text).join(' ')}\n`,
};

interface Scope { dot: unknown; vars: Map<string, unknown> }

function field(value: unknown, path: string[]): unknown {
  let cur = value;
  for (const name of path) {
    if (cur === MISSING) return MISSING;
    if (cur === null || typeof cur !== 'object' || Array.isArray(cur)) return MISSING;
    cur = Object.hasOwn(cur, name) ? (cur as Record<string, unknown>)[name] : MISSING;
  }
  return cur;
}

function operand(tok: Token, scope: Scope): unknown {
  if (tok.t !== 'word') return tok.v;
  const w = tok.v;
  if (w === '.') return scope.dot;
  if (w.startsWith('.')) return field(scope.dot, w.slice(1).split('.'));
  if (w.startsWith('$')) {
    const [name = '', ...path] = w.split('.');
    if (!scope.vars.has(name)) throw new Error(`template: undefined variable "${name}"`);
    return field(scope.vars.get(name), path);
  }
  if (w === 'true' || w === 'false') return w === 'true';
  if (w === 'nil') return null;
  throw new Error(`template: function "${w}" not defined`);
}

function evalPipe(pipe: Token[][], scope: Scope): unknown {
  let prev: unknown = MISSING;
  pipe.forEach((cmd, i) => {
    const [head, ...rest] = cmd;
    const args = rest.map((t) => operand(t, scope));
    if (i > 0) args.push(prev);
    const fn = head?.t === 'word' ? FUNCS[head.v] : undefined;
    if (fn !== undefined) prev = fn(...args);
    else if (head !== undefined && args.length === 0) prev = operand(head, scope);
    else throw new Error(`template: can't give argument to non-function ${head?.t === 'word' ? head.v : ''}`);
  });
  return prev;
}

function run(nodes: Node[], scope: Scope): string {
  let out = '';
  for (const n of nodes) {
    if (n.kind === 'text') out += n.text;
    else if (n.kind === 'action') out += text(evalPipe(n.pipe, scope));
    else if (n.kind === 'if') out += run(truthy(evalPipe(n.pipe, scope)) ? n.then : n.else, scope);
    else {
      const v = evalPipe(n.pipe, scope);
      const entries: [unknown, unknown][] = Array.isArray(v) ? v.map((x, i) => [i, x])
        : v !== null && typeof v === 'object' ? Object.keys(v).sort().map((k) => [k, (v as Record<string, unknown>)[k]]) : [];
      if (entries.length === 0) { out += run(n.else, scope); continue; }
      for (const [k, x] of entries) {
        const vars = new Map(scope.vars);
        if (n.vars.length === 1) vars.set(n.vars[0] ?? '', x);
        if (n.vars.length === 2) { vars.set(n.vars[0] ?? '', k); vars.set(n.vars[1] ?? '', x); }
        out += run(n.body, { dot: x, vars });
      }
    }
  }
  return out;
}

/** Compiles `source` once (syntax errors throw here) and returns its renderer. */
export function compileTemplate(source: string): (value: unknown) => string {
  const nodes = parse(source.replaceAll('\\t', '\t').replaceAll('\\n', '\n'));
  return (value) => run(nodes, { dot: value, vars: new Map([['$', value]]) });
}
