/**
 * docs/commands.md is what `isula __docs` prints now: a command, flag or
 * example changed without regenerating the reference fails here.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { ISULA } from './fake-daemon.js';

const run = promisify(execFile);
const DOCS = fileURLToPath(new URL('../../../../docs/commands.md', import.meta.url));

test('docs/commands.md is what isula __docs generates from the CLI now', async () => {
  const { stdout } = await run(process.execPath, [ISULA, '__docs'], { maxBuffer: 16 << 20 });
  const file = await fs.readFile(DOCS, 'utf8').catch(() => '(missing)');
  assert.ok(file === stdout, 'docs/commands.md is out of date: run `npm run build && node packages/cli/dist/isula.cjs __docs > docs/commands.md`');
});

test('the reference has a section with usage, options and examples for every command', async () => {
  const { stdout } = await run(process.execPath, [ISULA, '__docs'], { maxBuffer: 16 << 20 });
  for (const verb of ['run', 'exec', 'logs', 'network rm', 'volume prune', 'completion']) {
    const section = stdout.split(`\n## isula ${verb}\n`)[1]?.split('\n## ')[0] ?? '';
    assert.match(section, /```\nisula .+\n```/, `usage of ${verb}`);
    assert.match(section, /Examples:\n\n```sh\n.*isula /, `examples of ${verb}`);
  }
  assert.match(stdout, /\| `--network <mode>` \| /, "run's lazily declared flags are there");
  assert.doesNotMatch(stdout, /__complete|## isula __docs/);
});
