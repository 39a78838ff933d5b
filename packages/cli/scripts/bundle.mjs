// Bundles the isula CLI into one CommonJS file (dist/isula-main.cjs) behind a
// tiny CommonJS entry (dist/isula.cjs) that turns on Node's compile cache before
// requiring it. One file, CommonJS (no ESM loader work for the bundle), a
// cached compile, and node:child_process loaded only if used (commander
// imports it for external subcommands, which isula has none of) are the CLI's
// start-up levers: 4–14 ms off every call here (hyperfine on a noisy 2-core
// VM: `isula ps` 69 → 55–65 ms, ~5 ms less user time; `node -e 0` is ~33 ms).
import { build } from 'esbuild';
import fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { snapshotBlobName } from './launcher.mjs';
import { lazyChildProcess } from './plugins.mjs';
import { buildSnapshot } from './snapshot.mjs';

const dir = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const { version } = JSON.parse(await fs.readFile(path.join(dir, 'package.json'), 'utf8'));

// A start-up snapshot (scripts/snapshot.mjs) holds the bundle's code: an old
// one must never outlive a rebuild (nor one of another Node's), whatever
// happens below; nor what an interrupted snapshot build left.
for (const f of await fs.readdir(path.join(dir, 'dist')).catch(() => [])) {
  if (/^\.?isula-.*\.blob(\.tmp)?$|^\.snapshot-/.test(f)) await fs.rm(path.join(dir, 'dist', f), { recursive: true, force: true });
}

/**
 * `tar` (node-tar, for `isula cp`) is bundled on its own into
 * dist/isula-tar.cjs, which the main bundle requires only when cp runs
 * (a dynamic import): its ~100 KB is neither loaded nor parsed by the other
 * commands.
 */
const tarChunk = {
  name: 'tar-chunk',
  setup(b) {
    b.onResolve({ filter: /^tar$/ }, () => ({ path: './isula-tar.cjs', external: true }));
  },
};

await build({
  stdin: { contents: "export * from 'tar';", resolveDir: dir, loader: 'js' },
  outfile: path.join(dir, 'dist/isula-tar.cjs'),
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node24',
  minifyWhitespace: true,
  minifySyntax: true,
  logLevel: 'warning',
});

await build({
  entryPoints: [path.join(dir, 'dist/src/isula.js')],
  outfile: path.join(dir, 'dist/isula-main.cjs'),
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node24',
  define: { ISULA_CLI_VERSION: JSON.stringify(version) },
  plugins: [lazyChildProcess, tarChunk],
  // Whitespace and syntax only (names stay, for stack traces): 260 → 171 KB,
  // ~4 M fewer instructions at start-up (valgrind, `isula --version`), which
  // pays for the stream commands' code.
  minifyWhitespace: true,
  minifySyntax: true,
  logLevel: 'warning',
});
await fs.rm(path.join(dir, 'dist/isula-main.mjs'), { force: true });
await fs.rm(path.join(dir, 'dist/isula.mjs'), { force: true });
// A CommonJS entry: an .mjs one starts Node's ESM loader first, ~7 ms of every call
// (hyperfine `isula version`, 70.7 -> 63.5 ms; callgrind -5 M instructions).
await fs.writeFile(
  path.join(dir, 'dist/isula.cjs'),
  "#!/usr/bin/env node\n'use strict';\nrequire('node:module').enableCompileCache?.();\nrequire('./isula-main.cjs');\n",
  { mode: 0o755 },
);

// Opt-in (README, "Why it starts fast": no faster on the VM it was measured
// on): ISULA_CLI_SNAPSHOT=1 npm run build also writes the snapshot of this
// bundle for the Node running the build, which scripts/launcher.mjs's
// launcher then starts from.
if (process.env['ISULA_CLI_SNAPSHOT'] === '1') {
  const blob = path.join(dir, 'dist', snapshotBlobName());
  const failure = await buildSnapshot(blob, { version }).catch((e) => e.message);
  if (failure !== undefined) process.stderr.write(`isula CLI: start-up snapshot not built, the launcher will run the plain bundle: ${failure}\n`);
}
