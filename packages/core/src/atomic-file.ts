/**
 * Atomic metadata writes: temp file in the same directory, fsync, rename over
 * the target, fsync the directory. A crash leaves the old or the new file,
 * never a torn one. Leftover temp files are named `.NAME.tmp-*`.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { faultPoint } from './fault.js';

export async function writeFileAtomic(file: string, data: string | Uint8Array, options: { mode?: number } = {}): Promise<void> {
  const dir = path.dirname(file);
  const tmp = path.join(dir, `.${path.basename(file)}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
  const mode = options.mode ?? 0o600;
  const handle = await fs.open(tmp, 'wx', mode);
  try {
    // open()'s mode is filtered by the umask; the caller's mode is meant exactly.
    await handle.chmod(mode);
    await handle.writeFile(data);
    await handle.sync();
  } catch (err) {
    await handle.close().catch(() => {});
    await fs.rm(tmp, { force: true });
    throw err;
  }
  await handle.close();
  faultPoint('metadata:before-rename');
  try {
    await fs.rename(tmp, file);
  } catch (err) {
    await fs.rm(tmp, { force: true });
    throw err;
  }
  faultPoint('metadata:after-rename');
  await fsyncDir(dir);
}

export async function fsyncDir(dir: string): Promise<void> {
  const handle = await fs.open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
