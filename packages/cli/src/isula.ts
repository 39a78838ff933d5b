/** Entry of the bundled `isula` binary: run and exit with the command's code. */
import { neededCommand, run } from './main.js';

/**
 * What this call runs, for the code cache of dist/isula.cjs (scripts/entry.cjs),
 * which asks at exit: the command and each flag given to it (`ps`, `ps --format`).
 * A key no earlier run had makes the entry write the cache again.
 */
export function codeCacheKeys(): string[] {
  const needed = neededCommand(process.argv);
  const verb = needed === 'all' ? '*' : needed.only === '' ? '-v' : needed.only;
  const flags = process.argv.slice(2).filter((a) => a.startsWith('-')).slice(0, 32).map((a) => `${verb} ${a.split('=', 1)[0]}`);
  return [verb, ...flags];
}

// A reader that went away (`isula ps | head -1`): end quietly with the status of a process
// killed by SIGPIPE, as docker's client is, instead of Node's unhandled-error stack trace.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code !== 'EPIPE') throw err;
  process.exit(128 + 13);
});

// No top-level await: the bundle is CommonJS (see scripts/bundle.mjs).
void run(process.argv).then((code) => { process.exitCode = code; });
