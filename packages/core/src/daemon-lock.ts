/**
 * One daemon per state root. The lock is an abstract unix socket whose name
 * derives from the state root: the kernel frees it the moment the holder dies
 * (even by SIGKILL), so there is no stale lock to clean up and no race
 * between two starting daemons. The pid file next to it is informational.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import net from 'node:net';
import { writeFileAtomic } from './atomic-file.js';
import { IsulaError } from './errors.js';

export interface DaemonLock {
  release(): Promise<void>;
}

export async function acquireDaemonLock(stateRoot: string, pidFile: string): Promise<DaemonLock> {
  const real = await fs.realpath(stateRoot);
  const name = `\0isulad-lock-${createHash('sha256').update(real).digest('hex').slice(0, 40)}`;
  const server = net.createServer((socket) => socket.destroy());
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(name, () => resolve());
    });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw err;
    const pid = await fs.readFile(pidFile, 'utf8').then((s) => s.trim(), () => 'unknown');
    throw new IsulaError('DAEMON_ALREADY_RUNNING', `another isulad (pid ${pid}) is already running with state root ${real}`, { cause: err, details: { pid, stateRoot: real } });
  }
  server.unref();
  await writeFileAtomic(pidFile, `${process.pid}\n`, { mode: 0o644 });
  return {
    async release() {
      // Remove the pid file only while it is still ours.
      const content = await fs.readFile(pidFile, 'utf8').catch(() => '');
      if (content.trim() === String(process.pid)) await fs.rm(pidFile, { force: true });
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
