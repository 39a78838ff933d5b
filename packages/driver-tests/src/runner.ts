/**
 * Runs the kit against one runtime: a preflight daemon that must load the
 * author's plugin, then the suites' file under node:test's run() (each spec
 * starts its own private isulad on temporary roots with the plugin listed in
 * daemon.json), collected into a KitReport.
 */
import { run } from 'node:test';
import fs from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { httpRequest, tempRoot, TestDaemon } from './harness.js';
import { countSpecs, type KitReport, type SpecResult } from './report.js';
import { parseSuites, SUITES } from './suites.js';

export interface KitRunOptions {
  runtime: string;
  /** Packages to load besides @isula/image-oci (the author's plugin, and what it builds on). */
  plugins: string[];
  /** daemon.json `plugin-dirs`: where the plugins are installed (default: the daemon's own). */
  pluginDirs?: string[];
  /** Suites to run (default all: lifecycle, streams, tty). */
  suites?: string[];
  /** Test name → reason it does not apply to this runtime. */
  skipTests?: Record<string, string>;
  /** A docker-archive of busybox:latest (default: ISULA_KIT_BUSYBOX or the repo's image cache). */
  busybox?: string;
  /** Bound on each spec (default 10 minutes). */
  timeoutMs?: number;
  /** Called with each spec as it ends (progress). */
  onSpec?: (spec: SpecResult) => void;
}

const ENTRY = fileURLToPath(new URL('./entry.js', import.meta.url));

/** The daemon.json part every spec's daemon gets. */
export function kitConfig(opts: Pick<KitRunOptions, 'plugins' | 'pluginDirs'>): Record<string, unknown> {
  return {
    plugins: ['@isula/image-oci', ...opts.plugins.filter((p) => p !== '@isula/image-oci')],
    ...(opts.pluginDirs !== undefined && opts.pluginDirs.length > 0 ? { 'plugin-dirs': opts.pluginDirs } : {}),
  };
}

/**
 * Starts isulad once with the plugins and checks each is listed by /info:
 * a plugin that does not load fails here, once, with the daemon's words,
 * instead of in every spec.
 */
export async function preflight(opts: KitRunOptions): Promise<SpecResult> {
  const t0 = Date.now();
  const name = `preflight: isulad loads ${opts.plugins.join(', ')}`;
  const d = new TestDaemon(await tempRoot('isula-kit-'));
  try {
    await d.writeConfig({ ...kitConfig(opts), 'default-runtime': opts.runtime });
    await d.start();
    const info = JSON.parse((await httpRequest(d.socket, 'GET', '/info')).body) as { IsulaPlugins?: { Name: string }[] };
    const loaded = new Set((info.IsulaPlugins ?? []).map((p) => p.Name));
    const missing = opts.plugins.filter((p) => !loaded.has(p));
    if (missing.length > 0) return { name, status: 'fail', reason: `isulad started but does not list ${missing.join(', ')} among its plugins (${[...loaded].join(', ')})`, durationMs: Date.now() - t0 };
    return { name, status: 'pass', durationMs: Date.now() - t0 };
  } catch (err) {
    // The daemon's stderr names a plugin that failed to load (PLUGIN_NOT_FOUND ...); the error may only say it timed out.
    await d.stop();
    return { name, status: 'fail', reason: firstLine(`${d.stderr}\n${(err as Error).message}`), durationMs: Date.now() - t0 };
  } finally {
    await d.stop();
    await fs.rm(d.root, { recursive: true, force: true });
  }
}

/** The line of an error text that names the problem: "SomeError: ...", a daemon's code, else the first. */
function firstLine(text: string): string {
  const lines = text.split('\n').map((l) => l.trim()).filter((l) => l !== '');
  const named = lines.find((l) => /^\w*Error\b[^:]*:/.test(l)) ?? lines.find((l) => /[A-Z]+_[A-Z_]+/.test(l));
  return (named ?? lines[0] ?? text).slice(0, 500);
}

/**
 * The environment for the spec processes. NODE_TEST_CONTEXT is dropped: set
 * when this runs under `node --test` (the repo's e2e test of the kit), it
 * would make the children report to that runner instead of to ours.
 */
export function childEnv(extra: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, ...extra };
  delete env['NODE_TEST_CONTEXT'];
  return env;
}

/** The message of a node:test failure: the assertion or error the test threw, not the runner's wrapper. */
function failureReason(error: unknown): string {
  const e = error as { message?: string; cause?: { message?: string } } | undefined;
  return firstLine(e?.cause?.message ?? e?.message ?? 'failed');
}

export async function runKit(opts: KitRunOptions): Promise<KitReport> {
  const startedAt = new Date();
  const suites = opts.suites ?? Object.keys(SUITES);
  parseSuites(suites.join(','));
  const specs: SpecResult[] = [];
  const add = (s: SpecResult) => { specs.push(s); opts.onSpec?.(s); };
  const pre = await preflight(opts);
  add(pre);
  if (pre.status === 'pass') await runSuites(opts, suites, add);
  return {
    schemaVersion: 1,
    runtime: opts.runtime,
    plugins: opts.plugins,
    suites,
    startedAt: startedAt.toISOString(),
    durationMs: Date.now() - startedAt.getTime(),
    specs,
    counts: countSpecs(specs),
  };
}

async function runSuites(opts: KitRunOptions, suites: string[], add: (s: SpecResult) => void): Promise<void> {
  const env = childEnv({
    ISULA_KIT_RUNTIME: opts.runtime,
    ISULA_KIT_CONFIG: JSON.stringify(kitConfig(opts)),
    ISULA_KIT_SUITES: suites.join(','),
    ISULA_KIT_SKIP_TESTS: JSON.stringify(opts.skipTests ?? {}),
    ...(opts.busybox !== undefined ? { ISULA_KIT_BUSYBOX: opts.busybox } : {}),
  });
  await collectSpecs(run({ files: [ENTRY], env, timeout: opts.timeoutMs ?? 600_000 }), add);
}

/**
 * node:test's event stream → one SpecResult per test (pass, fail, skip), in
 * the order defined. A suite is a row of its own only when skipped whole or
 * failed by itself (not through its tests); a test file that fails to load
 * is one failure carrying its stderr.
 */
export async function collectSpecs(stream: ReturnType<typeof run>, add: (s: SpecResult) => void): Promise<void> {
  const parents: string[] = [];
  let stderr = '';
  for await (const event of stream) {
    if (event.type === 'test:stderr') stderr += event.data.message;
    if (event.type === 'test:start') parents[event.data.nesting] = event.data.name;
    if (event.type !== 'test:pass' && event.type !== 'test:fail') continue;
    const { data } = event;
    const name = [...parents.slice(0, data.nesting), data.name].join(' > ');
    const durationMs = data.details.duration_ms;
    const skipped = data.skip !== undefined && data.skip !== false;
    const reason = typeof data.skip === 'string' ? data.skip : 'skipped';
    const isFile = data.nesting === 0 && data.name === data.file;
    if (data.details.type === 'suite' || isFile) {
      if (skipped) add({ name, status: 'skip', reason, durationMs });
      else if (event.type === 'test:fail' && (event.data.details.error as { failureType?: string }).failureType !== 'subtestsFailed') {
        add({ name: isFile ? `test file ${data.name}` : name, status: 'fail', reason: isFile ? firstLine(stderr) : failureReason(event.data.details.error), durationMs });
      }
      continue;
    }
    if (skipped) add({ name, status: 'skip', reason, durationMs });
    else if (event.type === 'test:fail') add({ name, status: 'fail', reason: failureReason(event.data.details.error), durationMs });
    else add({ name, status: 'pass', durationMs });
  }
}
