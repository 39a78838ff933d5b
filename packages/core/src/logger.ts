/**
 * The daemon's root logger (pino). Everything else logs through children of
 * it ({ plugin }, { req }, { container }). Credentials never reach a log line.
 */
import fs from 'node:fs';
import path from 'node:path';
import pino, { type Logger } from 'pino';
import { daemonLogSettings, type DaemonConfig } from './config.js';
import { DaemonLogFile } from './daemon-log.js';

export const REDACT_PATHS = [
  'password',
  '*.password',
  'auth',
  '*.auth',
  'identitytoken',
  '*.identitytoken',
  'headers.authorization',
  '*.headers.authorization',
  'headers["x-registry-auth"]',
  '*.headers["x-registry-auth"]',
];

export interface RootLogger {
  logger: Logger;
  /** Path of the log file, when logging to a file. */
  file: string | undefined;
  flush(): void;
  /**
   * Applies a reloaded configuration: the level (children follow: pino makes
   * them with the root as prototype) and the log file's bounds; reopens the
   * file (after logrotate moved it). Throws when the file cannot be reopened.
   */
  reload(config: Pick<DaemonConfig, 'log-level' | 'log-opts'>): void;
  close(): void;
}

/**
 * `log-driver: file` writes `<state>/isulad.log` (or `log-opts.log-path`),
 * rotated by size (daemon-log.ts), and stderr too when it is a terminal (a
 * daemon run in the foreground); `log-driver: stdout` writes stdout only.
 */
export function createRootLogger(config: Pick<DaemonConfig, 'log-level' | 'log-driver' | 'log-opts' | 'state'>, options: { stderr?: boolean } = {}): RootLogger {
  const streams: pino.StreamEntry[] = [];
  let logFile: DaemonLogFile | undefined;
  if (config['log-driver'] === 'stdout') {
    streams.push({ level: 'trace', stream: pino.destination({ fd: 1, sync: true }) });
  } else {
    const settings = daemonLogSettings(config['log-opts']);
    const dir = settings.dir ?? config.state;
    fs.mkdirSync(dir, { recursive: true, mode: 0o711 });
    logFile = new DaemonLogFile({ file: path.join(dir, 'isulad.log'), maxSizeBytes: settings.maxSizeBytes, maxFiles: settings.maxFiles, mode: settings.mode });
    streams.push({ level: 'trace', stream: logFile });
    if (options.stderr ?? process.stderr.isTTY) streams.push({ level: 'trace', stream: pino.destination({ fd: 2, sync: true }) });
  }
  const logger = pino(
    { level: config['log-level'], base: { pid: process.pid }, redact: { paths: REDACT_PATHS, censor: '[redacted]' } },
    pino.multistream(streams),
  );
  return {
    logger,
    file: logFile?.file,
    flush: () => logger.flush(),
    reload(next) {
      logger.level = next['log-level'];
      if (logFile !== undefined) logFile.reopen(daemonLogSettings(next['log-opts']));
    },
    close: () => logFile?.close(),
  };
}
