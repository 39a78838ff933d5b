#!/usr/bin/env node
/**
 * isula-driver-tests: the conformance kit's command. See `--help` and the
 * package README.
 */
import fs from 'node:fs/promises';
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
  const report = await runKit({
    ...opts,
    onSpec: (s) => process.stderr.write(`${s.status.toUpperCase()} ${s.name}\n`),
  });
  process.stdout.write(formatReport(report));
  if (opts.reportFile !== undefined) await fs.writeFile(opts.reportFile, `${JSON.stringify(report, null, 2)}\n`);
  return report.counts.fail > 0 ? 1 : 0;
}

process.exitCode = await main();
