/**
 * The command line of isula-driver-tests, parsed apart from running it so
 * its errors can be tested.
 */
import path from 'node:path';
import { parseArgs } from 'node:util';
import type { KitRunOptions } from './runner.js';
import { parseSuites, SUITES } from './suites.js';

export const USAGE = `usage: isula-driver-tests --runtime NAME --plugin PKG [--plugin PKG ...] [options]

Runs isula's runtime conformance suites against the runtime NAME, which the
plugin package PKG registers. Each spec starts its own isulad on temporary
roots, with @isula/image-oci and the --plugin packages in daemon.json.

  --runtime NAME       the runtime name the plugin claims (required)
  --plugin PKG         a plugin package to load; repeat for several (required)
  --plugin-dir DIR     daemon.json plugin-dirs: where PKG is installed
                       (DIR/node_modules/PKG or DIR/PKG); repeatable
  --suite LIST         comma list of ${Object.keys(SUITES).join(', ')} (default: all)
  --skip-tests FILE    JSON object: test name -> why it does not apply
  --image FILE         docker-archive of busybox:latest (default: $ISULA_KIT_BUSYBOX,
                       else busybox.docker.tar in $ISULA_TEST_IMAGES or
                       /var/cache/isula/test-images, else one built from
                       /bin/busybox)
  --report FILE        also write the report as JSON
  --timeout SECONDS    bound on each spec (default 600)
  -h, --help           this text

Exit status: 0 when every spec passed or was skipped, 1 when one failed,
2 on a usage error. Needs root (the specs run real containers).`;

export interface CliOptions extends KitRunOptions {
  reportFile?: string;
  skipTestsFile?: string;
}

export class UsageError extends Error {}

/** argv (without node and the script) → options; throws UsageError naming the problem. */
export function parseCli(argv: string[]): CliOptions | 'help' {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        runtime: { type: 'string' },
        plugin: { type: 'string', multiple: true },
        'plugin-dir': { type: 'string', multiple: true },
        suite: { type: 'string' },
        'skip-tests': { type: 'string' },
        image: { type: 'string' },
        report: { type: 'string' },
        timeout: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  if (values.help === true) return 'help';
  if (values.runtime === undefined || values.runtime === '') throw new UsageError('--runtime NAME is required');
  const plugins = values.plugin ?? [];
  if (plugins.length === 0) throw new UsageError('--plugin PKG is required: the package that registers the runtime');
  const pluginDirs = (values['plugin-dir'] ?? []).map((d) => path.resolve(d));
  let suites: string[] | undefined;
  if (values.suite !== undefined) {
    try {
      suites = parseSuites(values.suite);
    } catch (err) {
      throw new UsageError(`--suite: ${(err as Error).message}`);
    }
  }
  let timeoutMs: number | undefined;
  if (values.timeout !== undefined) {
    const secs = Number(values.timeout);
    if (!Number.isFinite(secs) || secs <= 0) throw new UsageError(`--timeout must be a positive number of seconds, got ${JSON.stringify(values.timeout)}`);
    timeoutMs = secs * 1000;
  }
  return {
    runtime: values.runtime,
    plugins,
    ...(pluginDirs.length > 0 ? { pluginDirs } : {}),
    ...(suites !== undefined ? { suites } : {}),
    ...(values.image !== undefined ? { busybox: path.resolve(values.image) } : {}),
    ...(timeoutMs !== undefined ? { timeoutMs } : {}),
    ...(values.report !== undefined ? { reportFile: path.resolve(values.report) } : {}),
    ...(values['skip-tests'] !== undefined ? { skipTestsFile: path.resolve(values['skip-tests']) } : {}),
  };
}
