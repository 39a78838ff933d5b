/**
 * The sandbox's twist on runc: a tighter seccomp filter. The daemon's
 * filter (from its Docker-format profile) allows these syscalls to any
 * container; the sandbox takes them out of every allow rule and denies them
 * with EPERM, so a workload sees "Operation not permitted", as under a
 * Docker profile that lacks them.
 */

/**
 * Syscalls a sandboxed workload does not get: tracing and reading other
 * processes' memory (ptrace, process_vm_*), changing its root (chroot), and
 * userfaultfd, a favourite of kernel exploits.
 */
export const SANDBOX_DENIED_SYSCALLS: readonly string[] = Object.freeze(['chroot', 'ptrace', 'process_vm_readv', 'process_vm_writev', 'userfaultfd']);

/** EPERM: what the workload reads in errno. */
const EPERM = 1;

interface SeccompRule {
  names: string[];
  action: string;
  errnoRet?: number;
  [key: string]: unknown;
}

interface Seccomp {
  defaultAction: string;
  syscalls?: SeccompRule[];
  [key: string]: unknown;
}

function isSeccomp(value: unknown): value is Seccomp {
  return typeof value === 'object' && value !== null && typeof (value as { defaultAction?: unknown }).defaultAction === 'string';
}

/**
 * The spec's `linux.seccomp` with the denied syscalls taken out of every
 * rule and one EPERM rule for them added. A spec without a filter
 * (`--privileged`, `--security-opt seccomp=unconfined`) is left as it is:
 * the user asked for none, as with runc.
 */
export function tightenSeccomp<S extends Record<string, unknown>>(spec: S, denied: readonly string[] = SANDBOX_DENIED_SYSCALLS): S {
  const linux = spec['linux'];
  if (typeof linux !== 'object' || linux === null) return spec;
  const seccomp = (linux as { seccomp?: unknown }).seccomp;
  if (!isSeccomp(seccomp)) return spec;
  const deny = new Set(denied);
  const kept = (seccomp.syscalls ?? [])
    .map((rule) => ({ ...rule, names: rule.names.filter((n) => !deny.has(n)) }))
    .filter((rule) => rule.names.length > 0);
  const tightened: Seccomp = { ...seccomp, syscalls: [...kept, { names: [...denied], action: 'SCMP_ACT_ERRNO', errnoRet: EPERM }] };
  return { ...spec, linux: { ...linux, seccomp: tightened } };
}
