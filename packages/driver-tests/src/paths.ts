/**
 * Where the programs under test are: `isulad` (from @isula/core) and `isula`
 * (from @isula/cli), resolved the way Node resolves the packages from here,
 * so the kit drives whatever isula the author installed beside it. The
 * environment overrides both, for a daemon installed elsewhere.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The directory of an installed package: its entry resolved, then up to the package.json naming it. */
export function packageDir(name: string): string {
  let entry: string;
  try {
    entry = fileURLToPath(import.meta.resolve(name));
  } catch (err) {
    throw new Error(`@isula/driver-tests needs the package ${name} installed beside it (npm install ${name})`, { cause: err });
  }
  for (let dir = path.dirname(entry); dir !== path.dirname(dir); dir = path.dirname(dir)) {
    const manifest = path.join(dir, 'package.json');
    if (!fs.existsSync(manifest)) continue;
    const pkg = JSON.parse(fs.readFileSync(manifest, 'utf8')) as { name?: unknown };
    if (pkg.name === name) return dir;
  }
  throw new Error(`no package.json naming ${name} above ${entry}`);
}

/** The file a package's `bin` entry names. */
function binOf(pkgName: string, bin: string): string {
  const dir = packageDir(pkgName);
  const pkg = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')) as { bin?: Record<string, string> };
  const rel = pkg.bin?.[bin];
  if (rel === undefined) throw new Error(`${pkgName} has no "${bin}" in its package.json bin`);
  return path.join(dir, rel);
}

let cached: { isulad: string; isula: string } | undefined;
/** Paths of the isulad and isula scripts; ISULA_KIT_ISULAD / ISULA_KIT_ISULA override. */
export function programs(): { isulad: string; isula: string } {
  cached ??= {
    isulad: process.env['ISULA_KIT_ISULAD'] ?? binOf('@isula/core', 'isulad'),
    isula: process.env['ISULA_KIT_ISULA'] ?? binOf('@isula/cli', 'isula'),
  };
  return cached;
}
