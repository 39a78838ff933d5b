#!/usr/bin/env node
/** isulad: the container engine daemon. */
import { enableCompileCache } from 'node:module';
enableCompileCache?.();

const { Command, Option } = await import('commander');
const { Daemon, ENGINE_VERSION } = await import('../daemon.js');
const { LOG_LEVELS } = await import('../config.js');
const { IsulaError } = await import('../errors.js');

const program = new Command('isulad')
  .description('isula container engine daemon')
  .version(ENGINE_VERSION, '-v, --version', 'print the version and exit')
  .option('--config-file <path>', 'daemon configuration file (default /etc/isulad/daemon.json)')
  .addOption(new Option('-l, --log-level <level>', 'log level').choices(LOG_LEVELS as string[]))
  .option('-H, --host <unix://PATH|fd://>', 'engine API socket to listen on (repeatable); fd:// takes the sockets systemd passes', (v: string, prev: string[] = []) => [...prev, v])
  .option('-g, --graph <dir>', 'root of persistent state (default /var/lib/isulad)')
  .option('-S, --state <dir>', 'root of volatile state: sockets, pid file, logs (default /run/isulad)')
  .option('--log-stderr', 'also write logs to stderr (default: when stderr is a terminal)')
  .showHelpAfterError()
  .allowExcessArguments(false);
program.parse();
const opts = program.opts<{ configFile?: string; logLevel?: 'info'; host?: string[]; graph?: string; state?: string; logStderr?: boolean }>();

let daemon: Awaited<ReturnType<typeof Daemon.start>>;
try {
  daemon = await Daemon.start({
    ...(opts.configFile !== undefined && { configFile: opts.configFile }),
    ...(opts.logLevel !== undefined && { logLevel: opts.logLevel }),
    ...(opts.host !== undefined && { hosts: opts.host }),
    ...(opts.graph !== undefined && { graph: opts.graph }),
    ...(opts.state !== undefined && { state: opts.state }),
    ...(opts.logStderr !== undefined && { logStderr: opts.logStderr }),
  });
} catch (err) {
  const message = err instanceof IsulaError ? `${err.message} (${err.code})` : String((err as Error)?.stack ?? err);
  process.stderr.write(`isulad: ${message}\n`);
  process.exit(1);
}

let signals = 0;
const onSignal = (sig: NodeJS.Signals) => {
  signals += 1;
  if (signals > 1) {
    process.stderr.write(`isulad: second ${sig}, exiting now\n`);
    process.exit(1);
  }
  daemon.log.info({ signal: sig }, 'signal received, shutting down');
  void daemon.stop().then(() => process.exit(0), (err: unknown) => {
    process.stderr.write(`isulad: shutdown failed: ${String(err)}\n`);
    process.exit(1);
  });
};
process.on('SIGTERM', onSignal);
process.on('SIGINT', onSignal);
process.on('SIGPIPE', () => {});
// SIGHUP reloads daemon.json (log level, registry mirrors, insecure registries) and reopens the log; see Daemon.reload.
process.on('SIGHUP', () => {
  daemon.log.info({ signal: 'SIGHUP' }, 'signal received, reloading the configuration');
  void daemon.reload();
});
process.on('unhandledRejection', (err) => daemon.log.error({ err }, 'unhandled rejection'));
