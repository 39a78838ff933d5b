/**
 * The shell scripts lxc runs as hooks for a container (POSIX sh, host
 * binaries). Generated per container into its state directory. Pure.
 *
 * - start-host (host namespaces, the init created but not yet exec'd):
 *   records the init's host pid (`pid`), then runs the spec's prestart,
 *   createRuntime, createContainer and startContainer hooks.
 * - stop (host namespaces, after the init exited, before lxc removes the
 *   cgroup): writes the exit file `exit` = "<code> <oom kills>", atomically.
 *   The code comes from lxc's own log, the one place lxc 5.0.2 records it
 *   after `lxc-start -F` (PLATFORM.md §4): "Child <pid> ended on error (N)"
 *   or "ended on signal Name(N)" (→ 128+N); an exit 0 logs nothing.
 * - setup (lxc.hook.autodev: the container's mount namespace, before
 *   pivot_root, /dev populated): masked paths, read-only paths, device nodes.
 */
import type { OciHook } from './lxc-config.js';
import { shQuote } from './lxc-config.js';

const PATH_LINE = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin; export PATH';

/** Paths lxc splits hook commands on spaces: only plain paths are used. */
export function checkHookPath(p: string): string {
  if (!/^\/[A-Za-z0-9_.\-/+@]+$/.test(p)) throw new Error(`path ${JSON.stringify(p)} cannot be used in an lxc hook command (spaces or special characters)`);
  return p;
}

function ociHookLines(hooks: OciHook[], stateJson: string): string[] {
  const lines: string[] = [];
  for (const h of hooks) {
    // OCI: argv[0] is args[0]; POSIX sh cannot set it, the path is argv[0] here (README).
    const args = (h.args ?? []).slice(1).map(shQuote).join(' ');
    const env = (h.env ?? []).map(shQuote).join(' ');
    const timeout = h.timeout !== undefined && h.timeout > 0 ? `timeout -s KILL ${Math.ceil(h.timeout)} ` : '';
    lines.push(`printf '%s' "${stateJson}" | ${timeout}env -i ${env} ${shQuote(h.path)} ${args} >&2 || exit 1`);
  }
  return lines;
}

export function startHostScript(o: { dir: string; id: string; bundle: string; hooks: OciHook[] }): string {
  const json = (status: string) => `{\\"ociVersion\\":\\"1.0.2\\",\\"id\\":\\"${o.id}\\",\\"status\\":\\"${status}\\",\\"pid\\":$LXC_PID,\\"bundle\\":\\"${o.bundle.replace(/["\\$`]/g, '')}\\"}`;
  return [
    '#!/bin/sh',
    PATH_LINE,
    `D=${shQuote(o.dir)}`,
    'printf \'%s\\n\' "$LXC_PID" > "$D/pid.tmp" && mv -f "$D/pid.tmp" "$D/pid"',
    ...ociHookLines(o.hooks, json('created')),
    'exit 0',
    '',
  ].join('\n');
}

export function stopScript(o: { dir: string; oomFile: string }): string {
  return [
    '#!/bin/sh',
    PATH_LINE,
    `D=${shQuote(o.dir)}`,
    'pid="${LXC_PID:-$(cat "$D/pid" 2>/dev/null)}"',
    'code=0',
    'line=$(grep -a "Child <$pid> ended on" "$D/lxc.log" 2>/dev/null | tail -n 1)',
    'case "$line" in',
    '  *"ended on error ("*) code=${line##*ended on error (}; code=${code%%)*} ;;',
    '  *"ended on signal "*) sig=${line##*(}; sig=${sig%%)*}; code=$((128 + sig)) ;;',
    'esac',
    `oom=$(sed -n 's/^oom_kill //p' ${shQuote(o.oomFile)} 2>/dev/null)`,
    'printf \'%s %s\\n\' "$code" "${oom:-0}" > "$D/exit.tmp" && mv -f "$D/exit.tmp" "$D/exit"',
    'exit 0',
    '',
  ].join('\n');
}

export function setupScript(body: string): string {
  return `#!/bin/sh\n${PATH_LINE}\n${body}exit 0\n`;
}

/** Parses the exit file: "<code> <oom kills>". */
export function parseExitFile(text: string): { exitCode: number; oomKills: number } | undefined {
  const m = /^(-?\d+)(?:\s+(\d+))?\s*$/.exec(text.trim());
  if (m === null) return undefined;
  return { exitCode: Number(m[1]), oomKills: Number(m[2] ?? 0) };
}

/** lxc's log says the init could not be exec'd: "<strerror> - Failed to exec "<cmd>"". */
export function execFailure(log: string): { errno: 'ENOENT' | 'EACCES' | 'OTHER'; message: string } | undefined {
  const m = /ERROR\s+start - [^\n]* - ([^\n]*) - Failed to exec "([^\n]*)"/.exec(log);
  if (m === null) return undefined;
  const reason = m[1] ?? '';
  const errno = /No such file or directory/.test(reason) ? 'ENOENT' : /Permission denied|Exec format error/.test(reason) ? 'EACCES' : 'OTHER';
  return { errno, message: `${reason}: exec "${m[2] ?? ''}"` };
}

/** lxc's ERROR lines that say why (the generic "Failed to spawn/setup", sync ones go last), for a failure message. */
export function lastErrors(log: string, n = 3): string {
  const errors = log.split('\n').filter((l) => / ERROR /.test(l)).map((l) => l.replace(/^.* ERROR\s+/, ''));
  const generic = /sync_wait|Failed to spawn container|Failed to setup container|lxc_abort|__lxc_start/;
  return [...errors.filter((e) => !generic.test(e)), ...errors.filter((e) => generic.test(e))].slice(0, n).join('; ');
}
