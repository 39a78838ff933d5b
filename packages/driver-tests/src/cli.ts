/**
 * The command line of isula-driver-tests, parsed apart from running it so
 * its errors can be tested: parseCli checks the arguments, loadCliFiles
 * reads and checks the files they name.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { MAX_TIMEOUT_MS } from './env.js';
import { parseKitImageJson } from './kit-image.js';
import type { KitRunOptions, PluginEntry } from './runner.js';
import { defaultSuites, isRuntimeSuite, parseSuites, SUITE_NAMES } from './suites.js';

export const USAGE = `usage: isula-driver-tests --plugin PKG [--plugin PKG ...] [--runtime NAME]
         [--image-format NAME --kit-image FILE] [--network-driver NAME] [options]

Runs isula's conformance suites against the drivers that the plugin packages
PKG register: the runtime suites (lifecycle, streams, tty) against the
runtime NAME, the image suite against an image format, the network suite
against a network driver. Each spec starts its own isulad on temporary
roots, with @isula/image-oci and the --plugin packages in daemon.json.

  --plugin PKG           a plugin package to load; repeat for several (required).
                         With options: a daemon.json plugins entry as JSON,
                         '{"package": "PKG", "options": {...}}'
  --plugin-dir DIR       daemon.json plugin-dirs: where PKG is installed
                         (DIR/node_modules/PKG or DIR/PKG); repeatable
  --config FILE          JSON object: other daemon.json keys every daemon gets
  --suite LIST           comma list of ${SUITE_NAMES.join(', ')}
                         (default: those the options below name)
  --runtime NAME         the runtime the plugin claims: the lifecycle, streams and
                         tty suites (which need it). The image and network suites'
                         containers run under it (default runc: then
                         @isula/driver-runc is loaded)
  --image-format NAME    the image format the plugin registers: the image suite
  --kit-image FILE       JSON: the image the image suite runs, and what a user
                         should see of it (see the README); with --image-format
  --network-driver NAME  the network driver the plugin registers: the network suite
  --bridge NAME          the bridge that driver puts the containers' host
                         interfaces on; the network suite watches it for leaks
  --skip-tests FILE      JSON object: test name -> why it does not apply
  --image FILE           docker-archive of busybox:latest (default: $ISULA_KIT_BUSYBOX,
                         else busybox.docker.tar in $ISULA_TEST_IMAGES or
                         /var/cache/isula/test-images, else one built from
                         /bin/busybox)
  --report FILE          also write the report as JSON
  --timeout SECONDS      bound on each spec (default 600)
  -h, --help             this text

Exit status: 0 when every spec passed or was skipped, 1 when one failed,
2 on a usage error, 130 (SIGINT, ctrl-c) or 143 (SIGTERM) when interrupted:
the spec then running is torn down and the partial report says so. Needs
root (the specs run real containers).`;

export interface CliOptions extends KitRunOptions {
  reportFile?: string;
  skipTestsFile?: string;
  configFile?: string;
  kitImageFile?: string;
}

export class UsageError extends Error {}

/** daemon.json keys the kit sets for each daemon: `--config` may not. */
const KIT_KEYS: Readonly<Record<string, string>> = {
  plugins: 'give the plugins with --plugin',
  'plugin-dirs': 'give them with --plugin-dir',
  'default-runtime': 'give it with --runtime',
  hosts: 'each daemon listens on a socket of its own',
  pidfile: 'each daemon has a pid file of its own',
  graph: 'each daemon has roots of its own',
  state: 'each daemon has roots of its own',
};

/** A --plugin value: a package name, or a daemon.json plugins entry as JSON. */
function parsePlugin(value: string): PluginEntry {
  if (!value.trimStart().startsWith('{')) {
    if (value === '') throw new UsageError('--plugin: empty package name');
    return value;
  }
  let entry: unknown;
  try {
    entry = JSON.parse(value);
  } catch (err) {
    throw new UsageError(`--plugin ${value}: not JSON: ${(err as Error).message}`);
  }
  const e = entry as Record<string, unknown>;
  const extra = Object.keys(e).filter((k) => k !== 'package' && k !== 'options');
  if (typeof e['package'] !== 'string' || e['package'] === '' || extra.length > 0) {
    throw new UsageError(`--plugin ${value}: want {"package": "PKG", "options": {...}}${extra.length > 0 ? `, not ${extra.map((k) => JSON.stringify(k)).join(', ')}` : ''}`);
  }
  const options = e['options'];
  if (options === undefined) return e['package'];
  if (typeof options !== 'object' || options === null || Array.isArray(options)) throw new UsageError(`--plugin ${value}: "options" must be a JSON object`);
  return { package: e['package'], options: options as Record<string, unknown> };
}

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
        config: { type: 'string' },
        suite: { type: 'string' },
        'image-format': { type: 'string' },
        'kit-image': { type: 'string' },
        'network-driver': { type: 'string' },
        bridge: { type: 'string' },
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
  for (const flag of ['runtime', 'image-format', 'kit-image', 'network-driver', 'bridge'] as const) {
    if (values[flag] === '') throw new UsageError(`--${flag}: empty value`);
  }
  const { runtime, bridge } = values;
  const imageFormat = values['image-format'];
  const kitImageFile = values['kit-image'];
  const networkDriver = values['network-driver'];
  let suites: string[];
  if (values.suite !== undefined) {
    try {
      suites = parseSuites(values.suite);
    } catch (err) {
      throw new UsageError(`--suite: ${(err as Error).message}`);
    }
  } else {
    suites = defaultSuites({ runtime: runtime !== undefined, image: imageFormat !== undefined || kitImageFile !== undefined, network: networkDriver !== undefined || bridge !== undefined });
    if (suites.length === 0) throw new UsageError('--runtime NAME is required (or --image-format NAME for the image suite, --network-driver NAME for the network suite)');
  }
  const runtimeSuite = suites.find(isRuntimeSuite);
  if (runtimeSuite !== undefined && runtime === undefined) throw new UsageError(`--runtime NAME is required by the ${runtimeSuite} suite`);
  if (suites.includes('image')) {
    if (imageFormat === undefined) throw new UsageError('the image suite needs --image-format NAME: the image format your plugin registers');
    if (kitImageFile === undefined) throw new UsageError('the image suite needs --kit-image FILE: the image it runs, as JSON');
  } else {
    for (const [flag, v] of [['--image-format', imageFormat], ['--kit-image', kitImageFile]] as const) {
      if (v !== undefined) throw new UsageError(`${flag} is for the image suite, which --suite ${values.suite ?? ''} does not name`);
    }
  }
  if (suites.includes('network')) {
    if (networkDriver === undefined) throw new UsageError('the network suite needs --network-driver NAME: the network driver your plugin registers');
    if (bridge !== undefined && !/^[^\s/:]{1,15}$/.test(bridge)) throw new UsageError(`--bridge ${JSON.stringify(bridge)}: not an interface name (at most 15 characters, no space, / or :)`);
  } else {
    for (const [flag, v] of [['--network-driver', networkDriver], ['--bridge', bridge]] as const) {
      if (v !== undefined) throw new UsageError(`${flag} is for the network suite, which --suite ${values.suite ?? ''} does not name`);
    }
  }
  const plugins = (values.plugin ?? []).map(parsePlugin);
  if (plugins.length === 0) throw new UsageError('--plugin PKG is required: the package that registers the driver under test');
  const pluginDirs = (values['plugin-dir'] ?? []).map((d) => path.resolve(d));
  let timeoutMs: number | undefined;
  if (values.timeout !== undefined) {
    const secs = Number(values.timeout);
    if (!Number.isFinite(secs) || secs <= 0) throw new UsageError(`--timeout must be a positive number of seconds, got ${JSON.stringify(values.timeout)}`);
    timeoutMs = Math.ceil(secs * 1000);
    if (timeoutMs > MAX_TIMEOUT_MS) throw new UsageError(`--timeout must be at most ${Math.floor(MAX_TIMEOUT_MS / 1000)} seconds, got ${values.timeout}`);
  }
  return {
    ...(runtime !== undefined ? { runtime } : {}),
    plugins,
    ...(pluginDirs.length > 0 ? { pluginDirs } : {}),
    ...(values.suite !== undefined ? { suites } : {}),
    ...(imageFormat !== undefined ? { imageFormat } : {}),
    ...(networkDriver !== undefined ? { networkDriver } : {}),
    ...(bridge !== undefined ? { bridge } : {}),
    ...(values.image !== undefined ? { busybox: path.resolve(values.image) } : {}),
    ...(timeoutMs !== undefined ? { timeoutMs } : {}),
    ...(values.report !== undefined ? { reportFile: path.resolve(values.report) } : {}),
    ...(values['skip-tests'] !== undefined ? { skipTestsFile: path.resolve(values['skip-tests']) } : {}),
    ...(values.config !== undefined ? { configFile: path.resolve(values.config) } : {}),
    ...(kitImageFile !== undefined ? { kitImageFile: path.resolve(kitImageFile) } : {}),
  };
}

async function readJson(flag: string, file: string): Promise<unknown> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (err) {
    throw new UsageError(`${flag} ${file}: cannot read it: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new UsageError(`${flag} ${file}: not JSON: ${(err as Error).message}`);
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Reads the files the options name (--skip-tests, --config, --kit-image)
 * into the options the run takes; throws UsageError naming the file and
 * what is wrong in it.
 */
export async function loadCliFiles(opts: CliOptions): Promise<CliOptions> {
  const out: CliOptions = { ...opts };
  if (opts.skipTestsFile !== undefined) {
    const value = await readJson('--skip-tests', opts.skipTestsFile);
    if (!isObject(value)) throw new UsageError(`--skip-tests ${opts.skipTestsFile}: must hold a JSON object of test name → reason`);
    for (const [name, reason] of Object.entries(value)) {
      if (typeof reason !== 'string' || reason === '') throw new UsageError(`--skip-tests ${opts.skipTestsFile}: the reason for "${name}" must be a non-empty string`);
    }
    out.skipTests = value as Record<string, string>;
  }
  if (opts.configFile !== undefined) {
    const value = await readJson('--config', opts.configFile);
    if (!isObject(value)) throw new UsageError(`--config ${opts.configFile}: must hold a JSON object of daemon.json keys`);
    const taken = Object.keys(value).filter((k) => Object.hasOwn(KIT_KEYS, k));
    if (taken.length > 0) throw new UsageError(`--config ${opts.configFile}: the kit sets ${taken.map((k) => `"${k}" (${KIT_KEYS[k]})`).join(', ')}`);
    out.config = value;
  }
  if (opts.kitImageFile !== undefined) {
    const value = await readJson('--kit-image', opts.kitImageFile);
    let image;
    try {
      image = parseKitImageJson(value, path.dirname(opts.kitImageFile));
    } catch (err) {
      throw new UsageError(`--kit-image ${opts.kitImageFile}: ${(err as Error).message}`);
    }
    if (image.load !== undefined && !(await fs.stat(image.load).then((s) => s.isFile(), () => false))) throw new UsageError(`--kit-image ${opts.kitImageFile}: load: ${image.load} is not a file`);
    out.kitImage = image;
  }
  return out;
}
