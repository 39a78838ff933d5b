/**
 * docs/plugins.md stays true to the code: each fenced block marked
 * `<!-- file: PATH -->` is that file of the repository, verbatim (so the
 * guide's example is the one that is built and tested), and the guide
 * documents exactly the hooks core creates and the members of the three
 * driver contracts.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { createHooks } from '@isula/core';
import ts from 'typescript';

// From test/dist/e2e/ to the repository root.
const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const GUIDE = 'docs/plugins.md';

interface EmbeddedFile {
  /** Repository-relative path named by the marker. */
  file: string;
  /** 1-based line of the marker in the guide. */
  line: number;
  /** The fenced block's content, or undefined when no fence follows the marker. */
  content: string | undefined;
}

/**
 * The blocks the guide says are files: a `<!-- file: PATH -->` line, then
 * (blank lines allowed) a fence of three or more backticks, closed by the
 * same fence. The content ends with a newline, as a source file does.
 */
function embeddedFiles(markdown: string): EmbeddedFile[] {
  const lines = markdown.split('\n');
  const found: EmbeddedFile[] = [];
  for (let i = 0; i < lines.length; i++) {
    const marker = /^<!--\s*file:\s*(\S+)\s*-->\s*$/.exec(lines[i] ?? '');
    if (marker?.[1] === undefined) continue;
    let j = i + 1;
    while (j < lines.length && (lines[j] ?? '').trim() === '') j++;
    const fence = /^(`{3,})[\w-]*\s*$/.exec(lines[j] ?? '')?.[1];
    let content: string | undefined;
    if (fence !== undefined) {
      const end = lines.findIndex((l, k) => k > j && l === fence);
      if (end > j) content = `${lines.slice(j + 1, end).join('\n')}\n`;
    }
    found.push({ file: marker[1], line: i + 1, content });
  }
  return found;
}

/** The first line where two texts differ, for a message that points at it. */
function firstDifference(a: string, b: string): string {
  const [la, lb] = [a.split('\n'), b.split('\n')];
  for (let i = 0; i < Math.max(la.length, lb.length); i++) {
    if (la[i] !== lb[i]) return `line ${i + 1}:\n  guide: ${JSON.stringify(la[i])}\n  file:  ${JSON.stringify(lb[i])}`;
  }
  return '(none)';
}

test('every file the plugin guide embeds is the repository file, verbatim', async () => {
  const guide = await fs.readFile(path.join(REPO, GUIDE), 'utf8');
  const embedded = embeddedFiles(guide);
  assert.ok(embedded.length > 0, `${GUIDE} embeds no file: its example must be a <!-- file: PATH --> block`);
  for (const { file, line, content } of embedded) {
    assert.notEqual(content, undefined, `${GUIDE}:${line}: the marker for ${file} is not followed by a closed fenced block`);
    assert.ok(!path.isAbsolute(file) && !file.split('/').includes('..'), `${GUIDE}:${line}: ${file} must be a path inside the repository`);
    const actual = await fs.readFile(path.join(REPO, file), 'utf8').catch(() => undefined);
    assert.notEqual(actual, undefined, `${GUIDE}:${line}: ${file} does not exist`);
    assert.ok(content === actual, `${GUIDE}:${line}: the block differs from ${file}; copy the file into the guide. First difference, ${firstDifference(content ?? '', actual ?? '')}`);
  }
});

test('the plugin guide documents every hook core creates, and no other', async () => {
  const guide = await fs.readFile(path.join(REPO, GUIDE), 'utf8');
  const section = /^## Hooks$([\s\S]*?)(?=^## )/m.exec(guide)?.[1];
  assert.notEqual(section, undefined, `${GUIDE} has no "## Hooks" section`);
  const documented = [...(section ?? '').matchAll(/^### `(\w+)`/gm)].map((m) => m[1]).sort();
  assert.deepEqual(documented, Object.keys(createHooks()).sort());
});

/** Member names of `interface name` in a TypeScript source file, read with the compiler's parser. */
async function interfaceMembers(file: string, name: string): Promise<string[]> {
  const source = ts.createSourceFile(file, await fs.readFile(path.join(REPO, file), 'utf8'), ts.ScriptTarget.ES2022);
  const decl = source.statements.find((s): s is ts.InterfaceDeclaration => ts.isInterfaceDeclaration(s) && s.name.text === name);
  assert.ok(decl, `${file} declares no interface ${name}`);
  return decl.members.flatMap((m) => (m.name !== undefined && ts.isIdentifier(m.name) ? [m.name.text] : []));
}

/**
 * The members a `### \`Name\`` section's table documents: the leading
 * identifier of each code span in the rows' first cell.
 */
function documentedMembers(markdown: string, heading: string): string[] {
  const section = new RegExp(`^### \`${heading}\`$([\\s\\S]*?)(?=^##)`, 'm').exec(markdown)?.[1] ?? '';
  const names: string[] = [];
  for (const row of section.split('\n')) {
    const first = /^\| (.+?) \|/.exec(row)?.[1];
    if (first === undefined || first === 'member' || /^-+$/.test(first)) continue;
    for (const span of first.matchAll(/`(\w+)/g)) if (span[1] !== undefined) names.push(span[1]);
  }
  return names;
}

test('the plugin guide documents every member of the three driver contracts, and no other', async () => {
  const guide = await fs.readFile(path.join(REPO, GUIDE), 'utf8');
  for (const [name, file] of [
    ['RuntimeDriver', 'packages/core/src/drivers/runtime.ts'],
    ['ImageDriver', 'packages/core/src/drivers/image.ts'],
    ['NetworkDriver', 'packages/core/src/drivers/network.ts'],
  ] as const) {
    assert.deepEqual(documentedMembers(guide, name).sort(), (await interfaceMembers(file, name)).sort(), name);
  }
});
