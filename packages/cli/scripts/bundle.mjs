// Bundles the isula CLI into one file (dist/isula-main.mjs) behind a tiny entry
// (dist/isula.mjs) that turns on Node's compile cache before loading it: one
// file to read and a cached compile are the CLI's start-up levers.
import { build } from 'esbuild';
import fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const dir = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const { version } = JSON.parse(await fs.readFile(path.join(dir, 'package.json'), 'utf8'));
await build({
  entryPoints: [path.join(dir, 'dist/src/isula.js')],
  outfile: path.join(dir, 'dist/isula-main.mjs'),
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node24',
  define: { ISULA_CLI_VERSION: JSON.stringify(version) },
  logLevel: 'warning',
});
await fs.writeFile(
  path.join(dir, 'dist/isula.mjs'),
  "#!/usr/bin/env node\nimport { enableCompileCache } from 'node:module';\nenableCompileCache?.();\nawait import('./isula-main.mjs');\n",
  { mode: 0o755 },
);
