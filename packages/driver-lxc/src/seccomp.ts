/**
 * OCI seccomp (linux.seccomp) → lxc's seccomp policy "version 2" text, the
 * file `lxc.seccomp.profile` names. Pure.
 *
 * Format (lxc 5.0.2, src/lxc/seccomp.c):
 *   2
 *   allowlist <default action>      (or denylist)
 *   [all]
 *   <syscall> <action> [index,value,op] [index,value,op,mask] ...
 * Actions: allow, kill, trap, errno N, trace N, log. For SCMP_CMP_MASKED_EQ
 * lxc calls SCMP_CMP(index, op, <4th field>, <2nd field>), libseccomp's
 * (mask, datum): OCI's `value` is the mask and `valueTwo` the datum, so they
 * swap places.
 */

export interface OciSeccompArgLike { index: number; value: number; valueTwo?: number; op: string }
export interface OciSeccompRuleLike { names: string[]; action: string; errnoRet?: number; args?: OciSeccompArgLike[] }
export interface OciSeccompLike { defaultAction: string; defaultErrnoRet?: number; architectures?: string[]; syscalls?: OciSeccompRuleLike[] }

const EPERM = 1;

/** One OCI action as lxc spells it; undefined when lxc has no equivalent. */
export function lxcSeccompAction(action: string, errnoRet?: number): string | undefined {
  switch (action) {
    case 'SCMP_ACT_ALLOW': return 'allow';
    case 'SCMP_ACT_KILL':
    case 'SCMP_ACT_KILL_THREAD':
    case 'SCMP_ACT_KILL_PROCESS': return 'kill';
    case 'SCMP_ACT_TRAP': return 'trap';
    case 'SCMP_ACT_ERRNO': return `errno ${errnoRet ?? EPERM}`;
    // The tracer gets this value; Docker's profiles never use it with one.
    case 'SCMP_ACT_TRACE': return `trace ${errnoRet ?? EPERM}`;
    case 'SCMP_ACT_LOG': return 'log';
    default: return undefined;
  }
}

const OPS = new Set(['SCMP_CMP_NE', 'SCMP_CMP_LT', 'SCMP_CMP_LE', 'SCMP_CMP_EQ', 'SCMP_CMP_GE', 'SCMP_CMP_GT', 'SCMP_CMP_MASKED_EQ']);

function argText(a: OciSeccompArgLike): string {
  if (!OPS.has(a.op)) throw new Error(`seccomp operator ${JSON.stringify(a.op)} has no lxc equivalent`);
  if (!Number.isInteger(a.index) || a.index < 0 || a.index > 5) throw new Error(`seccomp argument index ${a.index} is out of range`);
  if (a.op === 'SCMP_CMP_MASKED_EQ') return `[${a.index},${a.valueTwo ?? 0},${a.op},${a.value}]`;
  return `[${a.index},${a.value},${a.op}]`;
}

/**
 * Throws (plain Error, the caller wraps it) on what lxc cannot express: an
 * unknown action or operator. Syscall names lxc's libseccomp does not know
 * are skipped by lxc itself with a warning in lxc.log, as runc does.
 */
export function seccompToLxc(s: OciSeccompLike): string {
  const dflt = lxcSeccompAction(s.defaultAction, s.defaultErrnoRet);
  if (dflt === undefined) throw new Error(`seccomp default action ${s.defaultAction} has no lxc equivalent`);
  // An allow-by-default profile is a deny list, everything else an allow list.
  const style = s.defaultAction === 'SCMP_ACT_ALLOW' ? 'denylist' : 'allowlist';
  const lines = ['2', `${style} ${dflt}`, '[all]'];
  for (const rule of s.syscalls ?? []) {
    const action = lxcSeccompAction(rule.action, rule.errnoRet);
    if (action === undefined) throw new Error(`seccomp action ${rule.action} has no lxc equivalent`);
    const args = (rule.args ?? []).map(argText).join(' ');
    for (const name of rule.names) {
      if (!/^[a-z0-9_]+$/.test(name)) throw new Error(`invalid syscall name ${JSON.stringify(name)}`);
      lines.push(args === '' ? `${name} ${action}` : `${name} ${action} ${args}`);
    }
  }
  return `${lines.join('\n')}\n`;
}
