/**
 * What the lxc e2e tests share: the daemon.json part that loads the lxc
 * driver (driver-runc is not needed: every container of these daemons runs
 * on lxc), and the host check.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';

/** Merged into the suite's daemon.json: image-oci for busybox, driver-lxc for `lcr`. */
export const LXC_CONFIG: Record<string, unknown> = { plugins: ['@isula/image-oci', '@isula/driver-lxc'] };

/** Root, lxc-start and lxc-attach present and answering. */
export async function lxcUsable(): Promise<{ ok: boolean; reason: string }> {
  if (process.getuid?.() !== 0) return { ok: false, reason: 'needs root' };
  for (const b of ['/usr/bin/lxc-start', '/usr/bin/lxc-attach']) {
    if (!(await fs.access(b).then(() => true, () => false))) return { ok: false, reason: `${b} is missing (apt-get install lxc)` };
  }
  const version = await new Promise<string>((resolve) => execFile('/usr/bin/lxc-start', ['--version'], { timeout: 10_000 }, (err, out) => resolve(err ? '' : out.trim())));
  if (version === '') return { ok: false, reason: 'lxc-start --version fails' };
  return { ok: true, reason: '' };
}

/**
 * After a test that may have left its daemon dead (kill -9 tests): every lxc
 * container of that daemon is killed through its cgroup, its monitor then
 * leaves, and the cgroups lxc made go. Finds them by the monitors' command
 * lines (they name `<state>/lxc`), so it works after the roots are removed.
 */
export async function reapLxcLeftovers(stateDir: string): Promise<void> {
  const needle = `${stateDir}/lxc`;
  const monitors: { pid: number; id: string }[] = [];
  for (const e of await fs.readdir('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    const cmd = (await fs.readFile(`/proc/${e}/cmdline`, 'utf8').catch(() => '')).split('\0');
    const at = cmd.indexOf(needle);
    // lxc-start -q -F -n <id> -P <state>/lxc ... (renamed "[lxc monitor] <state>/lxc <id>" by lxc)
    const id = cmd[cmd.indexOf('-n') + 1] ?? '';
    if (at >= 0 && /^[a-f0-9]{64}$/.test(id)) monitors.push({ pid: Number(e), id });
    else if (cmd[0]?.startsWith('[lxc monitor]') && cmd[0].includes(needle)) monitors.push({ pid: Number(e), id: cmd[0].split(' ').pop() ?? '' });
  }
  for (const m of monitors) {
    const procs = await fs.readFile(`/sys/fs/cgroup/pids/isulad/${m.id}/cgroup.procs`, 'utf8').catch(() => '');
    for (const p of procs.split('\n').filter(Boolean)) { try { process.kill(Number(p), 'SIGKILL'); } catch { /* gone */ } }
  }
  for (const m of monitors) {
    for (let i = 0; i < 100 && (await fs.stat(`/proc/${m.pid}`).then(() => true, () => false)); i++) await new Promise((r) => setTimeout(r, 50));
    try { process.kill(m.pid, 'SIGKILL'); } catch { /* gone */ }
    for (const ctrl of await fs.readdir('/sys/fs/cgroup').catch(() => [] as string[])) {
      for (const dir of [`isulad/${m.id}`, `isulad/lxc.monitor.${m.id}`]) await fs.rmdir(`/sys/fs/cgroup/${ctrl}/${dir}`).catch(() => {});
    }
  }
}
