/**
 * The conformance report: one row per spec (pass, fail or skip with its
 * reason), as text for a person and as JSON for a file.
 */

export type SpecStatus = 'pass' | 'fail' | 'skip';

export interface SpecResult {
  /** The suite's name and the test's, joined by " > ". */
  name: string;
  status: SpecStatus;
  /** Why it was skipped, or the first line of the failure. */
  reason?: string;
  durationMs: number;
}

/**
 * The report as JSON. `schemaVersion` 1: fields are only ever added (as
 * `imageFormat` and `networkDriver` were, with the image and network
 * suites, and `interrupted`), so a reader of an older report of version 1
 * reads this one.
 */
export interface KitReport {
  schemaVersion: 1;
  /** The runtime under test, or the one the image and network suites' containers ran under (runc unless named). */
  runtime: string;
  /** The plugins given, by package name (and @isula/driver-runc first when the kit loaded it for want of a runtime). */
  plugins: string[];
  /** The image format under test (the image suite). */
  imageFormat?: string;
  /** The network driver under test (the network suite). */
  networkDriver?: string;
  suites: string[];
  startedAt: string;
  durationMs: number;
  specs: SpecResult[];
  counts: { pass: number; fail: number; skip: number };
  /**
   * Set when the run was interrupted (ctrl-c, SIGTERM): the signal, and the
   * spec then running (none between specs), whose result is not in `specs`.
   * The specs after it did not run.
   */
  interrupted?: { signal: string; spec?: string };
}

export function countSpecs(specs: readonly SpecResult[]): KitReport['counts'] {
  const counts = { pass: 0, fail: 0, skip: 0 };
  for (const s of specs) counts[s.status] += 1;
  return counts;
}

const LABEL: Record<SpecStatus, string> = { pass: 'PASS', fail: 'FAIL', skip: 'SKIP' };

/**
 * The report as lines of text; the last is "conformance: N passed, N
 * failed, N skipped", with "; interrupted by SIGINT" after an interruption
 * (whose spec is a STOP row).
 */
export function formatReport(report: KitReport): string {
  const under = [
    `runtime ${report.runtime}`,
    ...(report.imageFormat !== undefined ? [`image format ${report.imageFormat}`] : []),
    ...(report.networkDriver !== undefined ? [`network driver ${report.networkDriver}`] : []),
  ];
  const lines = [`isula-driver-tests: ${under.join('; ')}; plugins ${report.plugins.join(', ')}; suites ${report.suites.join(', ')}`];
  for (const s of report.specs) {
    const secs = (s.durationMs / 1000).toFixed(1);
    lines.push(`  ${LABEL[s.status]}  ${s.name}${s.status === 'skip' ? '' : ` (${secs} s)`}${s.reason !== undefined ? `\n        ${s.reason}` : ''}`);
  }
  const stop = report.interrupted;
  if (stop !== undefined) lines.push(`  STOP  ${stop.spec ?? '(between specs)'}\n        interrupted by ${stop.signal}; the specs after it did not run`);
  const { pass, fail, skip } = report.counts;
  lines.push(`conformance: ${pass} passed, ${fail} failed, ${skip} skipped${stop !== undefined ? `; interrupted by ${stop.signal}` : ''}`);
  return `${lines.join('\n')}\n`;
}
