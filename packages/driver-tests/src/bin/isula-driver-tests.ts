#!/usr/bin/env node
/**
 * isula-driver-tests: the conformance kit's command. See `--help` and the
 * package README.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import { loadCliFiles, parseCli, USAGE, UsageError, type CliOptions } from '../cli.js';
import { formatReport } from '../report.js';
import { runKit } from '../runner.js';

async function main(): Promise<number> {
  let opts: CliOptions | 'help';
  try {
    opts = parseCli(process.argv.slice(2));
    if (opts !== 'help') opts = await loadCliFiles(opts);
  } catch (err) {
    process.stderr.write(`isula-driver-tests: ${(err as Error).message}\n${err instanceof UsageError ? `\n${USAGE}\n` : ''}`);
    return 2;
  }
  if (opts === 'help') {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (process.getuid?.() !== 0) {
    process.stderr.write('isula-driver-tests: needs root: the specs run isulad and real containers\n');
    return 2;
  }
  // A report that cannot be written is found now, not after the whole run.
  if (opts.reportFile !== undefined) {
    try {
      await fs.appendFile(opts.reportFile, '');
    } catch (err) {
      process.stderr.write(`isula-driver-tests: --report ${opts.reportFile}: ${(err as Error).message}\n`);
      return 2;
    }
  }
  // ctrl-c reaches the spec process too (the terminal signals the whole process group), SIGTERM
  // only this one: either way runKit has the spec process tear its daemons down, then reports.
  const interrupt = new AbortController();
  const onSignal = (sig: NodeJS.Signals) => {
    if (interrupt.signal.aborted) return; // a second ctrl-c: the teardown is under way, and bounded
    // Piped (`| tee log`), ctrl-c ended the reader too: an EPIPE on stdout or stderr must not end
    // this process before the spec process is down and the report written.
    process.stdout.on('error', () => {});
    process.stderr.on('error', () => {});
    process.stderr.write(`isula-driver-tests: ${sig}: stopping the spec running now and its daemons\n`);
    interrupt.abort(sig);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const report = await runKit({
    ...opts,
    signal: interrupt.signal,
    onSpec: (s) => process.stderr.write(`${s.status.toUpperCase()} ${s.name}\n`),
  });
  // The file first: after an interrupt, stdout and stderr may lead nowhere.
  if (opts.reportFile !== undefined) await fs.writeFile(opts.reportFile, `${JSON.stringify(report, null, 2)}\n`);
  if (report.interrupted !== undefined) process.stderr.write(`STOP ${report.interrupted.spec ?? '(between specs)'} (${report.interrupted.signal})\n`);
  process.stdout.write(formatReport(report));
  // As a shell reports a command a signal ended: 128 + its number (130 for SIGINT, 143 for SIGTERM).
  if (report.interrupted !== undefined) return 128 + (os.constants.signals[report.interrupted.signal as NodeJS.Signals] ?? 0);
  return report.counts.fail > 0 ? 1 : 0;
}

process.exitCode = await main();
