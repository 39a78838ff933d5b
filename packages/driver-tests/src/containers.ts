/**
 * Helpers for the container suites: a daemon with the runtime plugin and the
 * offline busybox image, and checks for leftovers on the host.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { ISULA, newDaemon, tempRoot, TestDaemon, type RunResult } from './harness.js';
import { busyboxArchive } from './images.js';

/** Where busybox comes from: a function giving the path of its docker-archive. */
export interface ImageOptions {
  busybox?: () => Promise<string>;
}

/** Is crun usable on this host? crun 1.8 needs hugetlb bound to cgroup v1 on hybrid hosts (PLATFORM.md §2). */
export async function crunUsable(): Promise<{ ok: boolean; reason: string }> {
  const unified = await fs.readFile('/proc/self/mountinfo', 'utf8');
  const hybrid = / \/sys\/fs\/cgroup\/unified .* - cgroup2 /.test(unified);
  const hugetlbV1 = / \/sys\/fs\/cgroup\/hugetlb .* - cgroup cgroup .*hugetlb/.test(unified);
  if (hybrid && !hugetlbV1) return { ok: false, reason: 'hybrid cgroup host without hugetlb bound to v1 (scripts/setup.sh test binds it)' };
  return { ok: true, reason: '' };
}

/**
 * A daemon with image-oci and driver-runc (`extra.plugins` replaces the list),
 * `runtime` as the default, busybox loaded.
 */
export async function containerDaemon(t: Parameters<typeof newDaemon>[0], runtime: string, extra: Record<string, unknown> = {}, images: ImageOptions = {}): Promise<TestDaemon> {
  const busybox = await (images.busybox ?? busyboxArchive)();
  // Containers go before the daemon stops (after-hooks run in the order registered).
  const d = await newDaemon(t, { beforeStop: removeAll });
  await d.writeConfig({ plugins: ['@isula/image-oci', '@isula/driver-runc'], 'default-runtime': runtime, ...extra });
  await d.start();
  const load = await d.isula(['load', '-i', busybox]);
  assert.equal(load.code, 0, load.stderr);
  return d;
}

/** Force-removes every container of the daemon (teardown), so nothing outlives a test. */
export async function removeAll(d: TestDaemon): Promise<void> {
  await d.removeContainers();
}

export function ok(r: RunResult, what = 'command'): string {
  assert.equal(r.code, 0, `${what} failed (${r.code}): ${r.stderr}${r.stdout}`);
  return r.stdout;
}

/** Host processes whose command line mentions `needle` (e.g. conmon of a container id). */
export async function processesMatching(needle: string): Promise<number[]> {
  const out: number[] = [];
  for (const e of await fs.readdir('/proc')) {
    if (!/^\d+$/.test(e) || Number(e) === process.pid) continue;
    const cmd = await fs.readFile(`/proc/${e}/cmdline`, 'utf8').catch(() => '');
    if (cmd.includes(needle)) out.push(Number(e));
  }
  return out;
}

export async function mountsUnder(dir: string): Promise<string[]> {
  const info = await fs.readFile('/proc/self/mountinfo', 'utf8');
  return info.split('\n').map((l) => l.split(' ')[4] ?? '').filter((m) => m.startsWith(dir));
}

/** cgroup v1 directories (any controller) left for a container id. */
export async function cgroupDirs(id: string, parent = 'isulad'): Promise<string[]> {
  const out: string[] = [];
  for (const ctrl of await fs.readdir('/sys/fs/cgroup').catch(() => [] as string[])) {
    const p = path.join('/sys/fs/cgroup', ctrl, parent, id);
    if (await fs.stat(p).then(() => true, () => false)) out.push(p);
  }
  return out;
}

/** Asserts nothing of container `id` is left on the host: conmon, mounts, cgroups. */
export async function assertNoTrace(d: TestDaemon, id: string): Promise<void> {
  assert.deepEqual(await processesMatching(id), [], `no process of ${id.slice(0, 12)} is left`);
  assert.deepEqual(await mountsUnder(d.root), [], 'no mount is left under the daemon roots');
  assert.deepEqual(await cgroupDirs(id), [], `no cgroup of ${id.slice(0, 12)} is left`);
}

export async function inspect<T = Record<string, unknown>>(d: TestDaemon, name: string): Promise<T> {
  const r = await d.isula(['inspect', '--type', 'container', name]);
  const [info] = JSON.parse(ok(r, `inspect ${name}`)) as T[];
  assert.ok(info !== undefined);
  return info;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/**
 * A daemon (runc the default runtime unless `config` says otherwise) with
 * busybox loaded. One teardown does it all, in the order that works: remove
 * the containers while the daemon is still up, unmount what a test left
 * mounted, stop the daemon, delete the roots.
 */
export async function daemon(t: { after(fn: () => Promise<void>): void }, config: Record<string, unknown> = {}, opts: { loadBusybox?: boolean } & ImageOptions = {}): Promise<TestDaemon> {
  const busybox = opts.loadBusybox === false ? undefined : await (opts.busybox ?? busyboxArchive)();
  const d = new TestDaemon(await tempRoot());
  // reapLeftovers (in teardown) detaches what a test left mounted under the roots.
  t.after(() => d.teardown({ beforeStop: removeAll }));
  await d.writeConfig({ plugins: ['@isula/image-oci', '@isula/driver-runc'], 'default-runtime': 'runc', ...config });
  await d.start();
  if (busybox !== undefined) ok(await d.isula(['load', '-i', busybox]), 'load busybox');
  return d;
}

/** Runs `isula` with `input` on its stdin (harness.runNode has none). */
export function isulaWithStdin(d: TestDaemon, args: string[], input: string | Buffer, timeoutMs = 15_000): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [ISULA, '-H', d.host, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => { stdout += c.toString('utf8'); });
    child.stderr.on('data', (c: Buffer) => { stderr += c.toString('utf8'); });
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`isula ${args.join(' ')} did not end within ${timeoutMs} ms; stdout ${JSON.stringify(stdout)}, stderr ${JSON.stringify(stderr)}`)); }, timeoutMs);
    child.on('error', (e) => { clearTimeout(timer); reject(e); });
    child.on('close', (code) => { clearTimeout(timer); resolve({ code: code ?? 1, stdout, stderr }); });
    child.stdin.on('error', () => {}); // EPIPE if the CLI ends first; the result tells.
    child.stdin.end(input);
  });
}

