/**
 * The crash-consistency campaign at CI size: 50 kills of a real isulad, at
 * named fault points and at uniformly random moments, each followed by a
 * restart and the invariants of test/fault/campaign.ts, with CNI networks on. By hand, at 1,000:
 * `node test/dist/fault/campaign.js --kills 1000`. FAULT_KILLS and FAULT_SEED
 * size and replay it here.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runCampaign } from '../fault/campaign.js';

test('kill -9 at 50 points: every restart is consistent and the operations retried succeed', { timeout: 900_000 }, async (t) => {
  const seed = process.env['FAULT_SEED'] === undefined ? undefined : Number(process.env['FAULT_SEED']);
  const lines: string[] = [];
  const r = await runCampaign({ kills: Number(process.env['FAULT_KILLS'] ?? 50), networks: true, ...(seed !== undefined && { seed }), log: (l) => lines.push(l) });
  t.diagnostic(`kills ${r.kills} (named ${JSON.stringify(r.byPoint)}, timed ${r.timed}, armed but not reached ${r.notReached}), operations ${r.operations}, peak veths ${r.peakVeths}, repairs logged ${r.repairs}, ${Math.round(r.durationMs / 1000)} s, ${lines.at(-1) ?? ''}`);
  assert.ok(r.kills >= Number(process.env['FAULT_KILLS'] ?? 50));
  assert.deepEqual(r.violations, [], lines.join('\n'));
});
