/**
 * The sandbox's RuntimeDriver: every call goes to the runc driver, which
 * the host hands out for the runtime name "runc" (isula's @isula/driver-runc,
 * loaded by the same daemon.json). The sandbox adds no monitor of its own,
 * so restore, exec, logs and the rest are runc's, unchanged.
 */
import type { RuntimeDriver } from '@isula/core';

export function sandboxDriver(runc: RuntimeDriver): RuntimeDriver {
  const driver: RuntimeDriver = {
    name: 'sandbox',
    create: (ref, opts) => runc.create(ref, opts),
    start: (ref, opts) => runc.start(ref, opts),
    kill: (ref, opts) => runc.kill(ref, opts),
    state: (ref, opts) => runc.state(ref, opts),
    wait: (ref, opts) => runc.wait(ref, opts),
    exec: (ref, opts) => runc.exec(ref, opts),
    attach: (ref, opts) => runc.attach(ref, opts),
    resize: (ref, opts) => runc.resize(ref, opts),
    pause: (ref, opts) => runc.pause(ref, opts),
    resume: (ref, opts) => runc.resume(ref, opts),
    update: (ref, opts) => runc.update(ref, opts),
    stats: (ref, opts) => runc.stats(ref, opts),
    pids: (ref, opts) => runc.pids(ref, opts),
    delete: (ref, opts) => runc.delete(ref, opts),
    restore: (ref, opts) => runc.restore(ref, opts),
  };
  // Optional members stay absent when runc's driver lacks them, so the host
  // sees the same capabilities (e.g. no reopenLog → the CRI says unimplemented).
  if (runc.probe !== undefined) driver.probe = (opts) => runc.probe!(opts); // checked just above
  if (runc.reopenLog !== undefined) driver.reopenLog = (ref, opts) => runc.reopenLog!(ref, opts); // checked just above
  return driver;
}
