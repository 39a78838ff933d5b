// The CLI's V8 start-up snapshot (README, "Why it starts fast"): the bundle,
// evaluated, saved as a blob that `node --snapshot-blob BLOB dist/isula.cjs
// ARGS` starts from instead of loading and running dist/isula-main.cjs.
//
//   node packages/cli/scripts/snapshot.mjs [OUT]   (default dist/<snapshotBlobName()>)
//
// builds it with the Node running this script, the only one that can load it
// (another exits 14 before any of our code runs: hence the blob's name, and
// the launcher's check, scripts/launcher.mjs). `ISULA_CLI_SNAPSHOT=1 npm run
// build` runs it after the bundle.
import { build } from 'esbuild';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { snapshotBlobName } from './launcher.mjs';
import { lazyChildProcess } from './plugins.mjs';

const dir = path.dirname(path.dirname(fileURLToPath(import.meta.url)));

/**
 * In the snapshot, `import('tar')` loads dist/isula-tar.cjs next to the entry
 * the launcher names (process.argv[1]), with a require made at run time: the
 * snapshot's own require knows only Node's built-in modules, and it has no
 * dynamic import() at all.
 */
const tarFromDist = {
  name: 'tar-from-dist',
  setup(b) {
    b.onResolve({ filter: /^tar$/ }, () => ({ path: 'tar', namespace: 'dist-tar' }));
    b.onLoad({ filter: /.*/, namespace: 'dist-tar' }, () => ({
      contents: "const m = require('node:module'); m.enableCompileCache?.();\n"
        + "module.exports = m.createRequire(require('node:fs').realpathSync(process.argv[1]))('./isula-tar.cjs');\n",
      loader: 'js',
    }));
  },
};

/** Bundles scripts/snapshot-entry.mjs (and the compiled CLI, dist/src) into one builder script. */
async function bundleEntry(outfile, version) {
  await build({
    entryPoints: [path.join(dir, 'scripts/snapshot-entry.mjs')],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node24',
    define: { ISULA_CLI_VERSION: JSON.stringify(version) },
    plugins: [lazyChildProcess, tarFromDist],
    minifyWhitespace: true,
    minifySyntax: true,
    logLevel: 'warning',
  });
}

/**
 * Builds the snapshot into `out` (written whole, then renamed: a torn blob
 * crashes Node). Without the built-in modules' code cache (`withoutCodeCache`):
 * Node reads the whole blob into memory on every start, and that cache
 * multiplies it (2.9 → 7.4 MB) for more page faults than it saves compiling.
 * Returns undefined, or why no blob was written.
 */
export async function buildSnapshot(out, { version = '0.0.0-dev' } = {}) {
  const tmpBlob = path.join(path.dirname(out), `.${path.basename(out)}.tmp`);
  const work = await fs.mkdtemp(path.join(path.dirname(out), '.snapshot-'));
  try {
    const entry = path.join(work, 'entry.cjs');
    await bundleEntry(entry, version);
    const config = path.join(work, 'config.json');
    await fs.writeFile(config, JSON.stringify({ builder: entry, withoutCodeCache: true }));
    const r = spawnSync(process.execPath, ['--snapshot-blob', tmpBlob, '--build-snapshot-config', config], {
      cwd: work, stdio: ['ignore', 'inherit', 'pipe'], encoding: 'utf8', timeout: 120_000,
    });
    // Node warns of a built-in module not known to survive a snapshot: a failure too.
    const trouble = r.error !== undefined ? r.error.message
      : r.status !== 0 ? `node --build-snapshot-config exited ${r.status ?? r.signal}: ${r.stderr}`
        : /warning/i.test(r.stderr ?? '') ? `node warned: ${r.stderr}` : undefined;
    if (trouble !== undefined) {
      await fs.rm(tmpBlob, { force: true });
      return trouble;
    }
    await fs.rename(tmpBlob, out);
    return undefined;
  } finally {
    await fs.rm(work, { recursive: true, force: true });
  }
}

if (process.argv[1] !== undefined && await fs.realpath(process.argv[1]).catch(() => '') === fileURLToPath(import.meta.url)) {
  const { version } = JSON.parse(await fs.readFile(path.join(dir, 'package.json'), 'utf8'));
  const out = path.resolve(process.argv[2] ?? path.join(dir, 'dist', snapshotBlobName()));
  const failure = await buildSnapshot(out, { version });
  if (failure !== undefined) {
    process.stderr.write(`snapshot.mjs: no snapshot written: ${failure}\n`);
    process.exitCode = 1;
  } else {
    process.stdout.write(`${out}\n`);
  }
}
