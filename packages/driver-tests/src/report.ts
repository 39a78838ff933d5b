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

export interface KitReport {
  schemaVersion: 1;
  runtime: string;
  plugins: string[];
  suites: string[];
  startedAt: string;
  durationMs: number;
  specs: SpecResult[];
  counts: { pass: number; fail: number; skip: number };
}

export function countSpecs(specs: readonly SpecResult[]): KitReport['counts'] {
  const counts = { pass: 0, fail: 0, skip: 0 };
  for (const s of specs) counts[s.status] += 1;
  return counts;
}

const LABEL: Record<SpecStatus, string> = { pass: 'PASS', fail: 'FAIL', skip: 'SKIP' };

/** The report as lines of text; the last is "conformance: N passed, N failed, N skipped". */
export function formatReport(report: KitReport): string {
  const lines = [`isula-driver-tests: runtime ${report.runtime}; plugins ${report.plugins.join(', ')}; suites ${report.suites.join(', ')}`];
  for (const s of report.specs) {
    const secs = (s.durationMs / 1000).toFixed(1);
    lines.push(`  ${LABEL[s.status]}  ${s.name}${s.status === 'skip' ? '' : ` (${secs} s)`}${s.reason !== undefined ? `\n        ${s.reason}` : ''}`);
  }
  const { pass, fail, skip } = report.counts;
  lines.push(`conformance: ${pass} passed, ${fail} failed, ${skip} skipped`);
  return `${lines.join('\n')}\n`;
}
