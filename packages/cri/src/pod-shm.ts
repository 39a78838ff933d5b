/**
 * A pod's /dev/shm: one tmpfs on the host, bound into the sandbox and every
 * container of the pod, so POSIX shared memory is shared as the IPC namespace
 * is (containerd and CRI-O do the same). A mount in the sandbox's own mount
 * namespace could not be bound into another container: the kernel refuses
 * bind mounts from another mount namespace.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import { IsulaError } from '@isula/core';

/** Docker's default /dev/shm size. */
export const POD_SHM_BYTES = 64 * 1024 * 1024;

function run(argv: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(argv[0] as string, argv.slice(1), { timeout: 10_000, killSignal: 'SIGKILL' }, (err, _out, stderr) => {
      if (err === null) resolve();
      else reject(new IsulaError('RUNTIME_FAILED', `${argv.join(' ')}: ${stderr.trim() || err.message}`, { cause: err, details: { argv } }));
    });
  });
}

export async function mountPodShm(dir: string, sizeBytes = POD_SHM_BYTES): Promise<void> {
  await fs.mkdir(dir, { recursive: true, mode: 0o711 });
  await run(['mount', '-t', 'tmpfs', '-o', `mode=1777,size=${sizeBytes},nosuid,nodev,noexec`, 'shm', dir]);
}

/** Idempotent: a directory that is not mounted (or is gone) is only removed. */
export async function unmountPodShm(dir: string): Promise<void> {
  const mounted = (await fs.readFile('/proc/self/mountinfo', 'utf8')).split('\n').some((l) => l.split(' ')[4] === dir);
  if (mounted) await run(['umount', dir]);
  await fs.rmdir(dir).catch((err: NodeJS.ErrnoException) => { if (err.code !== 'ENOENT') throw err; });
}
