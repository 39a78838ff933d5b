// The `isula` launcher and the name of the CLI's start-up snapshot blob.
//
//   node packages/cli/scripts/launcher.mjs NODE > /usr/local/bin/isula
//
// prints an `isula` launcher: a /bin/sh script that starts NODE from the
// start-up snapshot dist/isula-<node>.blob (scripts/snapshot.mjs; opt-in:
// `ISULA_CLI_SNAPSHOT=1 npm run build`) when that file is there, and from the
// plain bundle dist/isula.cjs otherwise. Run it with the
// Node it is for: the blob's name holds that Node's version, platform and
// arch, because Node refuses a blob another Node made (exit 14, before any of
// our code runs) and so cannot fall back by itself; the launcher's `[ -r ]` is
// a shell builtin, the whole check costs no measurable time.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const DIST = path.join(path.dirname(path.dirname(fileURLToPath(import.meta.url))), 'dist');

/** The blob file name for a Node (by default the one running this). */
export function snapshotBlobName(version = process.version, platform = process.platform, arch = process.arch) {
  return `isula-${version}-${platform}-${arch}.blob`;
}

const quote = (s) => `'${s.replaceAll("'", "'\\''")}'`;

/**
 * The launcher's text: `node` is the Node to exec, `dist` the CLI's dist
 * directory, `blobName` the blob that Node can load.
 */
export function launcherScript(node, dist = DIST, blobName = snapshotBlobName()) {
  const entry = quote(path.join(dist, 'isula.cjs'));
  return [
    '#!/bin/sh',
    `# isula launcher (scripts/setup.sh, packages/cli/scripts/launcher.mjs): Node.js ${process.version},`,
    '# from the CLI\'s start-up snapshot when `npm run build` made one for this Node, else the plain bundle.',
    `blob=${quote(path.join(dist, blobName))}`,
    `[ -r "$blob" ] && exec ${quote(node)} --snapshot-blob "$blob" ${entry} "$@"`,
    `exec ${quote(node)} ${entry} "$@"`,
    '',
  ].join('\n');
}

function main(argv) {
  const node = argv[0] ?? process.execPath;
  if (fs.realpathSync(node) !== fs.realpathSync(process.execPath)) {
    process.stderr.write(`launcher.mjs: run me with the Node the launcher is for (${node}), not ${process.execPath}: the snapshot blob is named after its version\n`);
    return 2;
  }
  process.stdout.write(launcherScript(node));
  return 0;
}

if (process.argv[1] !== undefined && fs.realpathSync(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.exitCode = main(process.argv.slice(2));
}
