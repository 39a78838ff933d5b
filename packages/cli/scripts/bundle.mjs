// Bundles the isula CLI into one CommonJS file (dist/isula-main.cjs) behind a
// small CommonJS entry (dist/isula.cjs, from scripts/entry.cjs) that compiles
// it with a V8 code cache of its own. One file, CommonJS (no ESM loader work
// for the bundle), a cached compile, cheap module interop (cheapInterop) and
// node:child_process loaded only if used (commander imports it for external
// subcommands, which isula has none of) are the CLI's start-up levers (the
// README, "Why it starts fast", has the figures).
import { createHash } from 'node:crypto';
import { build } from 'esbuild';
import fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { snapshotBlobName } from './launcher.mjs';
import { cheapInterop, lazyChildProcess } from './plugins.mjs';
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
  // `import('tar')` (cp's chunk) as a require(): code compiled by scripts/entry.cjs has no
  // dynamic import() of its own without an experimental vm option.
  supported: { 'dynamic-import': false },
  // Whitespace and syntax only (names stay, for stack traces): 260 → 171 KB,
  // ~4 M fewer instructions at start-up (valgrind, `isula --version`), which
  // pays for the stream commands' code.
  minifyWhitespace: true,
  minifySyntax: true,
  logLevel: 'warning',
});
const main = path.join(dir, 'dist/isula-main.cjs');
await fs.writeFile(main, cheapInterop(await fs.readFile(main, 'utf8')));
await fs.rm(path.join(dir, 'dist/isula-main.mjs'), { force: true });
await fs.rm(path.join(dir, 'dist/isula.mjs'), { force: true });
// A CommonJS entry: an .mjs one starts Node's ESM loader first, ~7 ms of every call
// (hyperfine `isula version`, 70.7 -> 63.5 ms; callgrind -5 M instructions).
// scripts/entry.cjs compiles the bundle with a code cache of its own, keyed by
// this build's id; the caches of earlier builds go.
const bundled = await fs.readFile(main);
const buildId = createHash('sha256').update(bundled).digest('hex').slice(0, 16);
await fs.rm(path.join(dir, 'dist/.code-cache'), { recursive: true, force: true });
const entry = await fs.readFile(path.join(dir, 'scripts/entry.cjs'), 'utf8');
if (!entry.includes("'BUILD_ID'")) throw new Error('scripts/entry.cjs lost its BUILD_ID placeholder');
await fs.writeFile(path.join(dir, 'dist/isula.cjs'), entry.replace("'BUILD_ID'", `'${buildId}'`), { mode: 0o755 });

// Opt-in (README, "Why it starts fast": no faster on the VM it was measured
// on): ISULA_CLI_SNAPSHOT=1 npm run build also writes the snapshot of this
// bundle for the Node running the build, which scripts/launcher.mjs's
// launcher then starts from.
if (process.env['ISULA_CLI_SNAPSHOT'] === '1') {
  const blob = path.join(dir, 'dist', snapshotBlobName());
  const failure = await buildSnapshot(blob, { version }).catch((e) => e.message);
  if (failure !== undefined) process.stderr.write(`isula CLI: start-up snapshot not built, the launcher will run the plain bundle: ${failure}\n`);
}
