/**
 * E2E harness: a real isulad on temporary roots and socket, driven by the
 * real `isula` binary and by raw HTTP. The generic part is the conformance
 * kit's (@isula/driver-tests), so the repo's tests and the kit share one
 * harness; what knows the repo's layout is here.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export { ISULA, ISULAD, httpRequest, newDaemon, reapLeftovers, runNode, tempRoot, TestDaemon, waitFor } from '@isula/driver-tests';
export type { HttpResult, RunResult } from '@isula/driver-tests';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const FIXTURES = path.join(REPO, 'test/fixtures');

/** Copies a fixture plugin package into `<dir>/node_modules/<name>`, as `npm install --prefix dir` lays it out. */
export async function installPlugin(fixture: string, dir: string): Promise<string> {
  const pkg = JSON.parse(await fs.readFile(path.join(FIXTURES, fixture, 'package.json'), 'utf8')) as { name: string };
  const dest = path.join(dir, 'node_modules', pkg.name);
  await fs.mkdir(path.dirname(dest), { recursive: true });
  await fs.cp(path.join(FIXTURES, fixture), dest, { recursive: true });
  return pkg.name;
}
