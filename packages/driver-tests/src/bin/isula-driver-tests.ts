#!/usr/bin/env node
/**
 * isula-driver-tests: the conformance kit's command. See `--help` and the
 * package README.
 */
import fs from 'node:fs/promises';
import { parseCli, USAGE, UsageError, type CliOptions } from '../cli.js';
import { formatReport } from '../report.js';
import { runKit } from '../runner.js';

async function readSkips(file: string): Promise<Record<string, string>> {
  const value: unknown = JSON.parse(await fs.readFile(file, 'utf8'));
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new UsageError(`--skip-tests ${file}: must hold a JSON object of test name → reason`);
  for (const [name, reason] of Object.entries(value)) {
    if (typeof reason !== 'string' || reason === '') throw new UsageError(`--skip-tests ${file}: the reason for "${name}" must be a non-empty string`);
  }
  return value as Record<string, string>;
}

async function main(): Promise<number> {
  let opts: CliOptions | 'help';
  try {
    opts = parseCli(process.argv.slice(2));
    if (opts !== 'help' && opts.skipTestsFile !== undefined) opts.skipTests = await readSkips(opts.skipTestsFile);
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
  const report = await runKit({
    ...opts,
    onSpec: (s) => process.stderr.write(`${s.status.toUpperCase()} ${s.name}\n`),
  });
  process.stdout.write(formatReport(report));
  if (opts.reportFile !== undefined) await fs.writeFile(opts.reportFile, `${JSON.stringify(report, null, 2)}\n`);
  return report.counts.fail > 0 ? 1 : 0;
}

process.exitCode = await main();
