/**
 * The small files conmon leaves for the driver: the exit file (`exits/<id>`,
 * the decimal wait status, `128 + signal` for a signal death) and pid files
 * (`conmon.pid`). They live in the daemon's state dir, but what is in them is
 * still input: a conmon killed mid-write, a full disk, or someone's hands can
 * leave garbage, an empty file, a huge file or not a file at all there.
 *
 * Reads are bounded (a few bytes, never the whole file) and non-blocking (a
 * FIFO put at the path must not hold a thread-pool thread for ever), and the
 * text must be exactly a decimal number.
 */
import fs from 'node:fs/promises';
import type { ExitStatus } from '@isula/core';

/** Exit code reported when a container's process is gone and its real code is unknown (conmon killed, or its file unreadable). */
export const LOST_EXIT_CODE = 255;
/** Longer than any decimal status or pid plus a newline: a file past this is not conmon's. */
const MAX_BYTES = 32;
/** A wait status conmon writes: an exit code 0-255, or 128 + a signal number (at most 64). */
const MAX_EXIT_CODE = 255;

export type ReadResult<T> =
  | { kind: 'missing' }
  | { kind: 'ok'; value: T; mtime: Date }
  /** There, but not what conmon writes: `reason` says what was wrong. */
  | { kind: 'corrupt'; reason: string; mtime: Date };

/** Reads at most MAX_BYTES + 1 bytes of a regular file, without blocking on a FIFO. */
async function readSmall(file: string): Promise<{ kind: 'missing' } | { kind: 'text'; text: string; mtime: Date } | { kind: 'corrupt'; reason: string; mtime: Date }> {
  let fh: fs.FileHandle;
  try {
    fh = await fs.open(file, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK | fs.constants.O_NOFOLLOW);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return { kind: 'missing' };
    // ELOOP (a symlink), EACCES, EISDIR on some kernels: something is there, and it is not conmon's file.
    return { kind: 'corrupt', reason: `cannot open it (${code ?? String(err)})`, mtime: new Date() };
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) return { kind: 'corrupt', reason: 'not a regular file', mtime: st.mtime };
    const buf = Buffer.alloc(MAX_BYTES + 1);
    const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
    if (bytesRead > MAX_BYTES) return { kind: 'corrupt', reason: `over ${MAX_BYTES} bytes (${st.size})`, mtime: st.mtime };
    return { kind: 'text', text: buf.toString('latin1', 0, bytesRead), mtime: st.mtime };
  } finally {
    await fh.close();
  }
}

/** A decimal number with an optional trailing newline, as conmon writes (`%d`); undefined otherwise. */
function parseDecimal(text: string): number | undefined {
  const m = /^(\d{1,10})\n?$/.exec(text);
  return m?.[1] === undefined ? undefined : Number(m[1]);
}

/** The exit code in an exit file's text, or a reason it is not one. */
export function parseExitCode(text: string): { exitCode: number } | { reason: string } {
  const n = parseDecimal(text);
  if (n === undefined) return { reason: text === '' ? 'empty' : `not a decimal exit code: ${JSON.stringify(text.slice(0, MAX_BYTES))}` };
  if (n > MAX_EXIT_CODE) return { reason: `exit code ${n} out of range 0-${MAX_EXIT_CODE}` };
  return { exitCode: n };
}

/** The pid in a pid file's text (conmon.pid), or undefined. */
export function parsePid(text: string): number | undefined {
  const n = parseDecimal(text);
  return n !== undefined && n > 0 && n <= 0x3fffff /* PID_MAX_LIMIT */ ? n : undefined;
}

/**
 * conmon's exit file. A file that is there but unreadable or not a status
 * counts as an exit with a lost code (the process is gone: conmon writes the
 * file only after reaping it); `corrupt` says why so the caller can log it.
 */
export async function readExitFile(file: string): Promise<ReadResult<ExitStatus>> {
  const r = await readSmall(file);
  if (r.kind !== 'text') return r;
  const parsed = parseExitCode(r.text);
  if ('reason' in parsed) return { kind: 'corrupt', reason: parsed.reason, mtime: r.mtime };
  return { kind: 'ok', value: { exitCode: parsed.exitCode, exitedAt: r.mtime }, mtime: r.mtime };
}

/** A pid file; undefined when missing or not a pid. */
export async function readPidFile(file: string): Promise<number | undefined> {
  const r = await readSmall(file);
  return r.kind === 'text' ? parsePid(r.text) : undefined;
}

/** The status a read gives: a corrupt file is an exit whose code was lost. */
export function exitStatusOf(r: ReadResult<ExitStatus>): ExitStatus | undefined {
  if (r.kind === 'missing') return undefined;
  if (r.kind === 'ok') return r.value;
  return { exitCode: LOST_EXIT_CODE, exitedAt: r.mtime };
}
