#!/usr/bin/env node
// The plugin API report: every declaration a plugin author can reach from
// @isula/core's public entry (package.json "exports" → dist/src/index.d.ts),
// printed canonically (no comments, no private class members, sorted by
// name), and compared with the snapshot in api-report/ that records which
// PLUGIN_API_VERSION it belongs to. test/api-surface.test.ts runs the same
// check, so a change to the surface without a version bump fails the tests.
//
//   node packages/core/scripts/api-report.mjs            check (exit 1 on a mismatch)
//   node packages/core/scripts/api-report.mjs --update   write the snapshot; refuses when
//                                                        the bump is too small for the change
//   node packages/core/scripts/api-report.mjs --update --force   write it anyway
//
// Reads the emitted .d.ts files, so build first (`npm run build`, or
// `npx tsc -b packages/core`). Uses the TypeScript compiler API rather than a
// text concatenation so that a comment edit or a change to something core does
// not export is not an API change, and rather than api-extractor so that core
// needs no extra dependency (TypeScript is already the workspace's compiler).
// The printing is TypeScript's: a compiler upgrade may reformat the report
// without an API change; check the diff and record it with --update --force.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

export const PACKAGE_DIR = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
export const SNAPSHOT_PATH = path.join(PACKAGE_DIR, 'api-report', 'core.api.md');
export const UPDATE_COMMAND = 'node packages/core/scripts/api-report.mjs --update';
const VERSION_EXPORT = 'PLUGIN_API_VERSION';

/**
 * Types a plugin produces (implements or returns to core). A new required
 * member of one of these breaks existing plugins, so it needs a major bump even
 * though it is only an added line. Adding a required member to a type core
 * hands to plugins (StdioConfig, ContainerEvent ...) does not break them.
 */
export const PLUGIN_PRODUCED_TYPES = new Set([
  'IsulaPlugin', 'FrontEnd',
  'RuntimeDriver', 'RuntimeState', 'ExitStatus', 'ContainerStats', 'StdioStream',
  'ImageDriver', 'ImageRef', 'ImageSummary', 'ImageRuntimeConfig', 'PullResult', 'TransferProgress',
  'NetworkDriver', 'NetworkAttachResult', 'NetworkAddress', 'NetworkInfo', 'PortMapping',
]);

/** The .d.ts the package's "exports" map gives for `import '@isula/core'`. */
function entryDeclarationFile(pkgDir) {
  const pkg = JSON.parse(fs.readFileSync(path.join(pkgDir, 'package.json'), 'utf8'));
  const dot = pkg.exports?.['.'];
  const types = typeof dot === 'object' ? dot.types : undefined;
  if (typeof types !== 'string') throw new Error(`${pkgDir}/package.json: exports["."].types is missing`);
  const file = path.resolve(pkgDir, types);
  if (!fs.existsSync(file)) throw new Error(`${file} does not exist: build core first (npm run build)`);
  return file;
}

function isPrivateMember(member) {
  if (member.name && ts.isPrivateIdentifier(member.name)) return true;
  return ts.canHaveModifiers(member) && (ts.getModifiers(member) ?? []).some((m) => m.kind === ts.SyntaxKind.PrivateKeyword);
}

/** The node to print for a declaration: the whole statement for a variable, no private members for a class. */
function printableNode(decl) {
  if (ts.isVariableDeclaration(decl)) return decl.parent.parent;
  if (ts.isClassDeclaration(decl)) {
    return ts.factory.updateClassDeclaration(decl, decl.modifiers, decl.name, decl.typeParameters, decl.heritageClauses,
      decl.members.filter((m) => !isPrivateMember(m)));
  }
  return decl;
}

/** Symbols declared in the package's own .d.ts files that `node` refers to. */
function referencedSymbols(node, checker, isOwnFile) {
  const found = [];
  const add = (symbol) => {
    if (!symbol) return;
    const target = symbol.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(symbol) : symbol;
    if (target.flags & ts.SymbolFlags.TypeParameter) return;
    if ((target.declarations ?? []).some((d) => isOwnFile(d.getSourceFile().fileName))) found.push(target);
  };
  const visit = (n) => {
    if (ts.isClassDeclaration(n) && n !== node) return;
    if (isPrivateMember(n)) return;
    if (ts.isTypeReferenceNode(n)) add(checker.getSymbolAtLocation(ts.isQualifiedName(n.typeName) ? n.typeName.right : n.typeName));
    else if (ts.isExpressionWithTypeArguments(n)) add(checker.getSymbolAtLocation(n.expression));
    else if (ts.isTypeQueryNode(n)) add(checker.getSymbolAtLocation(ts.isQualifiedName(n.exprName) ? n.exprName.right : n.exprName));
    else if (ts.isImportTypeNode(n)) {
      const type = checker.getTypeFromTypeNode(n);
      add(type.aliasSymbol ?? type.getSymbol());
    }
    ts.forEachChild(n, visit);
  };
  visit(node);
  return found;
}

/**
 * Builds the report of the package at `pkgDir` from its emitted declarations:
 * `{ version, entries: [{ key, text }] }`, entries sorted, exports first.
 */
export function buildReport(pkgDir = PACKAGE_DIR) {
  const entry = entryDeclarationFile(pkgDir);
  const ownDir = path.dirname(entry) + path.sep;
  const isOwnFile = (f) => path.resolve(f).startsWith(ownDir);
  const program = ts.createProgram([entry], {
    module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext, target: ts.ScriptTarget.ES2022,
    strict: true, noEmit: true, skipLibCheck: true, types: ['node'],
  });
  const checker = program.getTypeChecker();
  const entrySource = program.getSourceFile(entry);
  const moduleSymbol = entrySource && checker.getSymbolAtLocation(entrySource);
  if (!moduleSymbol) throw new Error(`${entry}: not a module`);
  const printer = ts.createPrinter({ removeComments: true, newLine: ts.NewLineKind.LineFeed });
  const print = (symbol) => {
    const nodes = [...new Set((symbol.declarations ?? []).map(printableNode))];
    return nodes.map((n) => printer.printNode(ts.EmitHint.Unspecified, n, n.getSourceFile?.() ?? n.original?.getSourceFile())).join('\n');
  };

  let version;
  const exported = new Map();
  for (const sym of checker.getExportsOfModule(moduleSymbol)) {
    const target = sym.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(sym) : sym;
    exported.set(target, sym.getName());
  }
  const entries = [];
  const reachable = new Map();
  const queue = [];
  for (const [target, name] of exported) {
    if (name === VERSION_EXPORT) {
      // Its value is the report's version, not part of the surface.
      const init = target.valueDeclaration?.initializer;
      if (!init || !ts.isStringLiteral(init)) throw new Error(`${VERSION_EXPORT} is not declared as a string literal`);
      version = init.text;
      continue;
    }
    entries.push({ key: `export ${name}`, text: print(target) });
    queue.push(target);
  }
  if (version === undefined) throw new Error(`${entry}: ${VERSION_EXPORT} is not exported`);
  // Declarations the exports refer to but the entry does not export by name
  // (e.g. LoadPluginsOptions): a plugin author meets them all the same.
  for (let i = 0; i < queue.length; i++) {
    for (const decl of queue[i].declarations ?? []) {
      for (const sym of referencedSymbols(printableNode(decl), checker, isOwnFile)) {
        if (exported.has(sym) || reachable.has(sym)) continue;
        const file = path.relative(path.dirname(ownDir), sym.declarations[0].getSourceFile().fileName).replace(/\.d\.ts$/, '');
        reachable.set(sym, `reachable ${sym.getName()} (${file})`);
        queue.push(sym);
      }
    }
  }
  for (const [sym, key] of reachable) entries.push({ key, text: print(sym) });
  const rank = (k) => (k.startsWith('export ') ? 0 : 1);
  entries.sort((a, b) => rank(a.key) - rank(b.key) || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  return { version, entries };
}

export function renderReport({ version, entries }) {
  return [
    '# @isula/core plugin API report',
    '',
    `Generated by \`${UPDATE_COMMAND}\` from the declarations`,
    'reachable from the package\'s public entry. Do not edit by hand; see docs/plugins.md,',
    '"API versions", for when to bump PLUGIN_API_VERSION.',
    '',
    `${VERSION_EXPORT}: ${version}`,
    '',
    '```ts',
    ...entries.flatMap((e) => [`// ${e.key}`, e.text, '']),
    '```',
    '',
  ].join('\n');
}

export function parseReport(text) {
  const version = /^PLUGIN_API_VERSION: (\S+)$/m.exec(text)?.[1];
  const start = text.indexOf('```ts\n');
  const end = text.lastIndexOf('```');
  if (version === undefined || start < 0 || end <= start) throw new Error('not an API report (no version line or no ```ts block)');
  const entries = [];
  let current;
  for (const line of text.slice(start + 6, end).split('\n')) {
    const header = /^\/\/ ((?:export|reachable) .+)$/.exec(line);
    if (header?.[1] !== undefined) {
      current = { key: header[1], lines: [] };
      entries.push(current);
    } else if (current) {
      current.lines.push(line);
    }
  }
  return {
    version,
    entries: entries.map((e) => ({ key: e.key, text: e.lines.join('\n').replace(/\n+$/, '') })),
  };
}

function parseVersion(v) {
  const m = /^(\d+)\.(\d+)\.(\d+)$/.exec(v);
  if (!m) throw new Error(`${VERSION_EXPORT} "${v}" is not MAJOR.MINOR.PATCH`);
  return m.slice(1).map(Number);
}

/** 'none' | 'patch' | 'minor' | 'major' | 'down' for from → to. */
export function bumpKind(from, to) {
  const [a, b] = [parseVersion(from), parseVersion(to)];
  for (const [i, kind] of [[0, 'major'], [1, 'minor'], [2, 'patch']]) {
    if (b[i] > a[i]) return kind;
    if (b[i] < a[i]) return 'down';
  }
  return 'none';
}

/** Lines of `a` not in `b`, counting repeats. */
function linesMissing(a, b) {
  const left = new Map();
  for (const l of b) left.set(l, (left.get(l) ?? 0) + 1);
  return a.filter((l) => {
    const n = left.get(l) ?? 0;
    if (n > 0) left.set(l, n - 1);
    return n === 0;
  });
}

/**
 * Whether `after` only adds members to the union `before` declares, e.g. a new
 * name in `type NotificationHook = 'a' | 'b'`: an addition, not a change.
 */
function widensUnion(before, after) {
  const shape = /^(\s*(?:export\s+)?(?:declare\s+)?(?:type\s+[^=]+=|(?:readonly\s+)?[\w$]+\??:)\s*)(.*?)(;?)$/;
  const [a, b] = [shape.exec(before), shape.exec(after)];
  if (!a || !b || a[1] !== b[1] || a[3] !== b[3]) return false;
  const [was, now] = [a[2].split(' | '), new Set(b[2].split(' | '))];
  return now.size > was.length && was.every((m) => now.has(m));
}

/** Pairs each removed line with an added line that widens it; returns what is left unpaired. */
function pairWidenedUnions(removed, added) {
  const rest = [...added];
  const unpaired = removed.filter((r) => {
    const i = rest.findIndex((a) => widensUnion(r, a));
    if (i < 0) return true;
    rest.splice(i, 1);
    return false;
  });
  return { removed: unpaired, added: rest, widened: removed.length - unpaired.length };
}

/** A member line that is neither optional nor an index signature, e.g. `    foo(x: T): void;`. */
function isRequiredMember(line) {
  const m = /^\s+(?:readonly\s+)?([\w$]+)(\??)\s*[(:<]/.exec(line);
  return m !== null && m[2] === '';
}

/**
 * What the difference between two reports needs: `{ required, changes }`,
 * `required` 'none', 'minor' or 'major'; each change says what and why.
 */
export function classifyChanges(before, after) {
  const old = new Map(before.entries.map((e) => [e.key, e.text]));
  const cur = new Map(after.entries.map((e) => [e.key, e.text]));
  const changes = [];
  for (const [key, text] of old) {
    if (!cur.has(key)) changes.push({ key, need: 'major', what: 'removed', lines: text.split('\n').map((l) => `- ${l}`) });
  }
  for (const [key, text] of cur) {
    const prev = old.get(key);
    if (prev === undefined) {
      changes.push({ key, need: 'minor', what: 'added', lines: text.split('\n').map((l) => `+ ${l}`) });
      continue;
    }
    if (prev === text) continue;
    const removedLines = linesMissing(prev.split('\n'), text.split('\n'));
    const added = linesMissing(text.split('\n'), prev.split('\n'));
    const { removed, added: newMembers, widened } = pairWidenedUnions(removedLines, added);
    const name = key.split(' ')[1] ?? '';
    let need = 'minor';
    let what = widened > 0 ? 'union widened' : 'lines added';
    if (removed.length > 0) {
      need = 'major';
      what = 'lines removed or changed';
    } else if (PLUGIN_PRODUCED_TYPES.has(name) && newMembers.some(isRequiredMember)) {
      need = 'major';
      what = 'a required member added to a type plugins implement or return';
    }
    changes.push({ key, need, what, lines: [...removedLines.map((l) => `- ${l}`), ...added.map((l) => `+ ${l}`)] });
  }
  const required = changes.some((c) => c.need === 'major') ? 'major' : changes.length > 0 ? 'minor' : 'none';
  return { required, changes };
}

const RANK = { none: 0, patch: 1, minor: 2, major: 3 };

function describeChanges(changes, maxLines = 60) {
  const out = [];
  for (const c of changes) {
    out.push(`  ${c.key}: ${c.what} (${c.need})`);
    out.push(...c.lines.map((l) => `      ${l}`));
  }
  return out.length > maxLines ? [...out.slice(0, maxLines), `  … ${out.length - maxLines} more lines`] : out;
}

/**
 * Compares the snapshot with the current surface: `{ ok, message, required, bump }`.
 * ok only when the snapshot is exactly the current surface at the current version.
 */
export function checkReport(snapshot, current) {
  const { required, changes } = classifyChanges(snapshot, current);
  const bump = bumpKind(snapshot.version, current.version);
  const from = `${snapshot.version} → ${current.version}`;
  const lines = [];
  let ok = false;
  if (bump === 'down') {
    lines.push(`${VERSION_EXPORT} went down (${from}); it only ever goes up.`);
  } else if (required === 'none' && bump === 'none') {
    ok = true;
    lines.push(`The plugin API surface matches the snapshot for ${VERSION_EXPORT} ${current.version}.`);
  } else if (required === 'none') {
    lines.push(`${VERSION_EXPORT} was bumped (${from}) with no change to the type surface: refresh the snapshot`,
      `so it records the version it belongs to: ${UPDATE_COMMAND}`);
  } else if (bump === 'none') {
    lines.push(`The plugin API surface changed but ${VERSION_EXPORT} is still ${current.version}.`,
      `This change needs a ${required} bump: raise ${VERSION_EXPORT} (packages/core/src/plugin.ts), say what changed`,
      `in packages/core/README.md, rebuild (npm run build), then refresh the snapshot: ${UPDATE_COMMAND}`);
  } else if (RANK[bump] < RANK[required]) {
    lines.push(`The plugin API surface changed in a way that needs a ${required} bump, but ${from} is a ${bump} bump.`,
      'Raise it further, or if the change is in fact compatible (the check is conservative: a changed line counts',
      `as a removal), record it anyway with: ${UPDATE_COMMAND} --force`);
  } else {
    lines.push(`${VERSION_EXPORT} was bumped (${from}, ${bump}; this change needs ${required}).`,
      `Refresh the snapshot: ${UPDATE_COMMAND}`);
  }
  if (changes.length > 0) lines.push('Changes since the snapshot:', ...describeChanges(changes));
  return { ok, message: lines.join('\n'), required, bump };
}

export function readSnapshot(file = SNAPSHOT_PATH) {
  return parseReport(fs.readFileSync(file, 'utf8'));
}

function main(argv) {
  const update = argv.includes('--update');
  const force = argv.includes('--force');
  const current = buildReport();
  const snapshot = fs.existsSync(SNAPSHOT_PATH) ? readSnapshot() : undefined;
  const rel = path.relative(process.cwd(), SNAPSHOT_PATH);
  if (snapshot === undefined && !update) {
    console.error(`no snapshot at ${rel}: create it with ${UPDATE_COMMAND}`);
    return 1;
  }
  const result = snapshot && checkReport(snapshot, current);
  if (!update) {
    (result.ok ? console.log : console.error)(result.message);
    return result.ok ? 0 : 1;
  }
  if (result && !force && RANK[result.bump] < RANK[result.required]) {
    console.error(result.message);
    console.error('\nSnapshot not written.');
    return 1;
  }
  fs.mkdirSync(path.dirname(SNAPSHOT_PATH), { recursive: true });
  fs.writeFileSync(SNAPSHOT_PATH, renderReport(current));
  console.log(`wrote ${rel} for ${VERSION_EXPORT} ${current.version} (${current.entries.length} declarations)`);
  return 0;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.exitCode = main(process.argv.slice(2));
}
