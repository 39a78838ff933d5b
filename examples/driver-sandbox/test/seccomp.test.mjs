import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SANDBOX_DENIED_SYSCALLS, tightenSeccomp } from '../dist/index.js';

const spec = (seccomp) => ({ ociVersion: '1.0.2', process: { args: ['sh'] }, linux: { namespaces: [], ...(seccomp ? { seccomp } : {}) } });

test('the denied syscalls leave every allow rule and get one EPERM rule; the rest is kept', () => {
  const out = tightenSeccomp(spec({
    defaultAction: 'SCMP_ACT_ERRNO',
    defaultErrnoRet: 38,
    syscalls: [
      { names: ['read', 'chroot', 'write'], action: 'SCMP_ACT_ALLOW' },
      { names: ['ptrace'], action: 'SCMP_ACT_ALLOW' },
      { names: ['personality'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: 0, op: 'SCMP_CMP_EQ' }] },
    ],
  }));
  assert.deepEqual(out.linux.seccomp, {
    defaultAction: 'SCMP_ACT_ERRNO',
    defaultErrnoRet: 38,
    syscalls: [
      { names: ['read', 'write'], action: 'SCMP_ACT_ALLOW' },
      { names: ['personality'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: 0, op: 'SCMP_CMP_EQ' }] },
      { names: [...SANDBOX_DENIED_SYSCALLS], action: 'SCMP_ACT_ERRNO', errnoRet: 1 },
    ],
  });
  assert.deepEqual(out.process, { args: ['sh'] }, 'the rest of the spec is untouched');
});

test('a spec without a filter (privileged, unconfined) keeps none', () => {
  const s = spec(undefined);
  assert.equal(tightenSeccomp(s), s);
});
