/**
 * `isula login`'s credentials, as docker 20.10's `login.go` and
 * `ConfigureAuth` take them: `-p` (with docker's warning), `--password-stdin`
 * (needs `-u`; one trailing newline dropped), or prompts on a terminal, the
 * password without echo. The checks are pure and unit-tested; the prompts
 * read process.stdin.
 */
import { ExitCode } from './exit-code.js';
import { UsageError } from './usage-error.js';

export interface LoginFlags {
  username?: string;
  password?: string;
  passwordStdin?: boolean;
}

export const PASSWORD_FLAG_WARNING = 'WARNING! Using --password via the CLI is insecure. Use --password-stdin.';

/** docker's warning for `-p`, printed first (even when the flags then conflict). */
export function passwordFlagWarning(f: LoginFlags): string | undefined {
  return f.password !== undefined && f.password !== '' ? PASSWORD_FLAG_WARNING : undefined;
}

/**
 * docker's `verifyloginOptions`: UsageError for `-p` with `--password-stdin`,
 * or `--password-stdin` without `-u`.
 */
export function checkLoginFlags(f: LoginFlags): void {
  if (passwordFlagWarning(f) !== undefined && f.passwordStdin) throw new UsageError('--password and --password-stdin are mutually exclusive');
  if (f.passwordStdin && (f.username ?? '').trim() === '') throw new UsageError('Must provide --username with --password-stdin');
}

/** `--password-stdin`: all of stdin, less one trailing `\n` and then one `\r` (docker's TrimSuffix). */
export function passwordFromStdin(text: string): string {
  let p = text.endsWith('\n') ? text.slice(0, -1) : text;
  if (p.endsWith('\r')) p = p.slice(0, -1);
  return p;
}

/**
 * What is still to be asked, given what the flags and stdin gave. Prompts
 * need a terminal on stdin: without one, a missing password (or user name)
 * is a usage error, as docker's "Cannot perform an interactive login from a
 * non TTY device".
 */
export function promptsNeeded(username: string, password: string, stdinIsTTY: boolean): { username: boolean; password: boolean } {
  const need = { username: username.trim() === '', password: password === '' };
  if (!stdinIsTTY && need.password) throw new UsageError('Cannot perform an interactive login from a non TTY device: give the password with --password-stdin (or -p)');
  if (!stdinIsTTY && need.username) throw new UsageError('Cannot perform an interactive login from a non TTY device: give the user name with -u');
  return need;
}

/** Reads stdin to its end (`--password-stdin`). */
export async function readAllStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * Asks `question` on the terminal and reads one line from stdin. With
 * `mute`, nothing typed is echoed (raw mode; backspace, ctrl-u, ctrl-d and
 * ctrl-c handled here, as the terminal no longer does it) and a newline is
 * written after. The prompt goes to stdout, as docker's.
 */
export function promptLine(question: string, mute = false): Promise<string> {
  const stdin = process.stdin;
  process.stdout.write(question);
  return new Promise<string>((resolve, reject) => {
    let line = '';
    const wasRaw = stdin.isRaw === true;
    if (mute) stdin.setRawMode(true);
    const finish = (err?: unknown) => {
      stdin.off('data', onData);
      stdin.off('end', onEnd);
      if (mute) {
        stdin.setRawMode(wasRaw);
        process.stdout.write('\n');
      }
      stdin.pause();
      if (err === undefined) resolve(line);
      else reject(err);
    };
    const onEnd = () => finish();
    const onData = (chunk: Buffer) => {
      for (const ch of chunk.toString('utf8')) {
        if (ch === '\r' || ch === '\n') { finish(); return; }
        if (!mute) { line += ch; continue; }
        if (ch === '\x03') { finish(new ExitCode(130)); return; } // ctrl-c: raw mode sends no SIGINT
        if (ch === '\x04') { if (line === '') { finish(); return; } continue; } // ctrl-d
        if (ch === '\x7f' || ch === '\b') line = [...line].slice(0, -1).join('');
        else if (ch === '\x15') line = ''; // ctrl-u
        else if (ch >= ' ') line += ch;
      }
    };
    stdin.on('data', onData);
    stdin.once('end', onEnd);
    stdin.resume();
  });
}
