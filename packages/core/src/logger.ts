/**
 * The daemon's root logger (pino). Everything else logs through children of
 * it ({ plugin }, { req }, { container }). Credentials never reach a log line.
 */
import fs from 'node:fs';
import path from 'node:path';
import pino, { type Logger } from 'pino';
import type { DaemonConfig } from './config.js';

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
}

/**
 * `log-driver: file` writes `<state>/isulad.log`, and stderr too when it is a
 * terminal (a daemon run in the foreground); `log-driver: stdout` writes stdout only.
 */
export function createRootLogger(config: Pick<DaemonConfig, 'log-level' | 'log-driver' | 'state'>, options: { stderr?: boolean } = {}): RootLogger {
  const streams: pino.StreamEntry[] = [];
  let file: string | undefined;
  if (config['log-driver'] === 'stdout') {
    streams.push({ level: 'trace', stream: pino.destination({ fd: 1, sync: true }) });
  } else {
    file = path.join(config.state, 'isulad.log');
    fs.mkdirSync(config.state, { recursive: true, mode: 0o711 });
    streams.push({ level: 'trace', stream: pino.destination({ dest: file, sync: true, mode: 0o640 }) });
    if (options.stderr ?? process.stderr.isTTY) streams.push({ level: 'trace', stream: pino.destination({ fd: 2, sync: true }) });
  }
  const logger = pino(
    { level: config['log-level'], base: { pid: process.pid }, redact: { paths: REDACT_PATHS, censor: '[redacted]' } },
    pino.multistream(streams),
  );
  return { logger, file, flush: () => logger.flush() };
}
