/**
 * Shell completion against a real isulad: the script `isula completion bash`
 * prints, run by bash as a TAB runs it (COMP_LINE/COMP_POINT, the function,
 * COMPREPLY), completes verbs and the live names of containers and images,
 * asked of the daemon through `isula __complete`.
 */
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { daemon, ok } from '../lib/containers.js';
import { ISULA, tempRoot } from '../lib/harness.js';

const run = promisify(execFile);

/** Completes each line in one bash, the cursor at its end: the sorted candidates per line. */
async function complete(script: string, lines: readonly string[], env: NodeJS.ProcessEnv): Promise<string[][]> {
  const driver = `source '${script}'
while IFS= read -r line; do
  COMP_LINE=$line COMP_POINT=\${#line}
  read -ra COMP_WORDS <<< "$line"; [[ $line == *' ' ]] && COMP_WORDS+=('')
  COMP_CWORD=$(( \${#COMP_WORDS[@]} - 1 ))
  COMPREPLY=()
  _isula isula "\${COMP_WORDS[COMP_CWORD]}" "\${COMP_WORDS[COMP_CWORD-1]}"
  printf '%s\\n' "$(printf '%s\\n' "\${COMPREPLY[@]}" | LC_ALL=C sort | tr '\\n' ' ')"
done`;
  const child = spawn('bash', ['-c', driver], { env, stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => { stdout += c.toString(); });
  child.stderr.on('data', (c: Buffer) => { stderr += c.toString(); });
  child.stdin.end(lines.map((l) => `${l}\n`).join(''));
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  assert.equal(code, 0, stderr);
  assert.equal(stderr, '');
  return stdout.split('\n').slice(0, -1).map((l) => l.split(' ').filter((w) => w !== ''));
}

test('bash completes verbs and the live container and image names of a real daemon', { timeout: 300_000 }, async (t) => {
  const d = await daemon(t);
  const dir = await tempRoot('isula-completion-');
  t.after(() => fs.rm(dir, { recursive: true, force: true }));
  await fs.mkdir(path.join(dir, 'bin'));
  await fs.writeFile(path.join(dir, 'bin', 'isula'), `#!/bin/sh\nexec '${process.execPath}' '${ISULA}' "$@"\n`, { mode: 0o755 });
  const script = path.join(dir, 'isula.bash');
  await fs.writeFile(script, (await run(process.execPath, [ISULA, 'completion', 'bash'])).stdout);

  const web = ok(await d.isula(['create', '--name', 'comp-web', 'busybox', 'true'])).trim();
  ok(await d.isula(['create', '--name', 'comp-db', 'busybox', 'true']));
  ok(await d.isula(['tag', 'busybox', 'busybox:comp']));

  const base: NodeJS.ProcessEnv = { ...process.env, PATH: `${path.join(dir, 'bin')}:${process.env['PATH'] ?? '/usr/bin:/bin'}` };
  delete base['ISULAD_HOST'];
  const [verbs, stop, rmi, tagPart, byId, inspect] = await complete(script, [
    `isula -H ${d.host} re`,
    `isula -H ${d.host} stop comp-`,
    `isula -H ${d.host} rmi bu`,
    `isula -H ${d.host} rmi busybox:c`,
    `isula -H ${d.host} start ${web.slice(0, 4)}`,
    `isula -H ${d.host} inspect `,
  ], base);
  assert.deepEqual(verbs, ['rename', 'restart']);
  assert.deepEqual(stop, ['comp-db', 'comp-web']);
  assert.deepEqual(rmi, ['busybox:comp', 'busybox:latest']);
  // bash replaces only what follows the ':' (COMP_WORDBREAKS): the script gives that part.
  assert.deepEqual(tagPart, ['comp']);
  assert.deepEqual(byId, [web.slice(0, 12)]);
  // inspect takes containers and images: both kinds are offered.
  for (const name of ['comp-db', 'comp-web', web.slice(0, 12), 'busybox:comp', 'busybox:latest']) assert.ok(inspect?.includes(name), `inspect offers ${name}: ${inspect?.join(' ')}`);

  // The daemon of ISULAD_HOST when no -H is typed, as every isula command.
  const [fromEnv] = await complete(script, ['isula rm comp-w'], { ...base, ISULAD_HOST: d.host });
  assert.deepEqual(fromEnv, ['comp-web']);

  // A removed container is no longer offered: the names are asked at each TAB.
  ok(await d.isula(['rm', 'comp-web']));
  const [after] = await complete(script, [`isula -H ${d.host} rm comp-`], base);
  assert.deepEqual(after, ['comp-db']);
});
