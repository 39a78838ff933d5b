/**
 * `runc start` without runc. After `runc create`, the container's init waits
 * to open `<root>/<id>/exec.fifo` for writing; `runc start` opens it for
 * reading, reads the byte the init writes, and removes the FIFO (from then on
 * runc reports the container running). Doing the same here saves spawning
 * runc (a Go binary: ~10-20 ms here) on every start.
 *
 * The FIFO is opened read-write and non-blocking (Linux never blocks such an
 * open, and with a writer of our own there is no end of file before the
 * init's byte, whenever the init gets to open it) and read through a libuv
 * pipe handle, so no thread-pool thread ever blocks on it; the wait is
 * bounded. Only for runc, whose layout this is; any other runtime is started
 * through its CLI.
 */
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';

export const EXEC_FIFO = 'exec.fifo';

/**
 * Releases a created runc container's init. Returns false when there is no
 * FIFO (not runc's layout, or already started): the caller then asks the
 * runtime. Throws when the init never writes within `timeoutMs`.
 */
export async function startThroughFifo(runtimeRoot: string, id: string, timeoutMs: number, signal?: AbortSignal): Promise<boolean> {
  const fifo = path.join(runtimeRoot, id, EXEC_FIFO);
  let fd: number;
  try {
    const st = await fs.promises.lstat(fifo);
    if (!st.isFIFO()) return false;
    fd = fs.openSync(fifo, fs.constants.O_RDWR | fs.constants.O_NONBLOCK);
  } catch {
    return false;
  }
  const pipe = new net.Socket({ fd, readable: true, writable: false });
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => finish(new Error(`the container's init did not signal through ${fifo} within ${timeoutMs} ms`)), timeoutMs);
      const onAbort = () => finish(new Error('start canceled'));
      const finish = (err?: Error) => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        pipe.removeAllListeners('data').removeAllListeners('end').removeAllListeners('error');
        if (err !== undefined) reject(err);
        else resolve();
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      // The init writes one byte, then execs the container's process.
      pipe.on('data', () => finish());
      pipe.on('end', () => finish(new Error(`${fifo} closed without the init's signal`)));
      pipe.on('error', (err) => finish(err));
    });
  } finally {
    pipe.destroy();
  }
  // As runc start: without the FIFO the container is running, for runc too.
  await fs.promises.rm(fifo, { force: true });
  return true;
}
