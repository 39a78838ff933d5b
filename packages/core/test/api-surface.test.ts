/**
 * The compatibility policy: PLUGIN_API_VERSION must move when the type surface
 * a plugin author sees (the declarations reachable from @isula/core's public
 * entry) changes. The surface is compared with the snapshot in api-report/,
 * which records the version it belongs to; scripts/api-report.mjs builds both
 * and refreshes the snapshot (`--update`). The rule, also in docs/plugins.md:
 * additions are a minor bump, removals and changes a major one.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PLUGIN_API_VERSION } from '../src/plugin.js';

interface ReportEntry { key: string; text: string }
interface Report { version: string; entries: ReportEntry[] }
type Need = 'none' | 'minor' | 'major';
interface CheckResult { ok: boolean; message: string; required: Need; bump: 'none' | 'patch' | 'minor' | 'major' | 'down' }
interface ApiReportModule {
  buildReport(): Report;
  readSnapshot(): Report;
  renderReport(report: Report): string;
  parseReport(text: string): Report;
  checkReport(snapshot: Report, current: Report): CheckResult;
  UPDATE_COMMAND: string;
  SNAPSHOT_PATH: string;
}

// The script is plain ESM outside the compiled tree (it runs before and after
// builds): from dist/test/ it is ../../scripts/.
const api = (await import(new URL('../../scripts/api-report.mjs', import.meta.url).href)) as ApiReportModule;

test('the plugin API surface matches the snapshot recorded for PLUGIN_API_VERSION', () => {
  const current = api.buildReport();
  // The report reads the version from the emitted declarations: it must be the one the loader checks.
  assert.equal(current.version, PLUGIN_API_VERSION);
  const snapshot = api.readSnapshot();
  const result = api.checkReport(snapshot, current);
  assert.ok(result.ok, `\n${result.message}\n(snapshot: ${api.SNAPSHOT_PATH})`);
});

// A small surface for the rule checks below: one driver contract, one type core hands to plugins.
const BASE: Report = {
  version: '1.6.0',
  entries: [
    { key: 'export ContainerEvent', text: 'export interface ContainerEvent {\n    id: string;\n}' },
    { key: 'export RuntimeDriver', text: 'export interface RuntimeDriver {\n    readonly name: string;\n    start(ref: string): Promise<void>;\n}' },
  ],
};

function changed(version: string, key: string, text: string): Report {
  return { version, entries: BASE.entries.map((e) => (e.key === key ? { key, text } : e)) };
}

const OPTIONAL_METHOD = 'export interface RuntimeDriver {\n    readonly name: string;\n    start(ref: string): Promise<void>;\n    probe?(): Promise<void>;\n}';
const REQUIRED_METHOD = 'export interface RuntimeDriver {\n    readonly name: string;\n    start(ref: string): Promise<void>;\n    probe(): Promise<void>;\n}';
const CHANGED_METHOD = 'export interface RuntimeDriver {\n    readonly name: string;\n    start(ref: string, force: boolean): Promise<void>;\n}';

test('an optional driver member added without a version bump fails, asking for a minor bump', () => {
  const result = api.checkReport(BASE, changed('1.6.0', 'export RuntimeDriver', OPTIONAL_METHOD));
  assert.equal(result.ok, false);
  assert.equal(result.required, 'minor');
  assert.equal(result.bump, 'none');
  assert.match(result.message, /\+\s+probe\?\(\): Promise<void>;/);
});

test('after a sufficient bump the check still fails until the snapshot is refreshed, and says how', () => {
  const result = api.checkReport(BASE, changed('1.7.0', 'export RuntimeDriver', OPTIONAL_METHOD));
  assert.equal(result.ok, false);
  assert.equal(result.bump, 'minor');
  assert.ok(result.message.includes(api.UPDATE_COMMAND), result.message);
  // Refreshed: the new snapshot is exactly the new surface.
  const refreshed = api.parseReport(api.renderReport(changed('1.7.0', 'export RuntimeDriver', OPTIONAL_METHOD)));
  assert.equal(api.checkReport(refreshed, changed('1.7.0', 'export RuntimeDriver', OPTIONAL_METHOD)).ok, true);
});

test('a new export is a minor change', () => {
  const after: Report = { version: '1.6.0', entries: [...BASE.entries, { key: 'export MetricsSink', text: 'export interface MetricsSink {\n    name: string;\n}' }] };
  assert.equal(api.checkReport(BASE, after).required, 'minor');
});

test('a removed export, a changed signature and a new required driver method are major changes', () => {
  const removed: Report = { version: '1.7.0', entries: BASE.entries.filter((e) => e.key !== 'export ContainerEvent') };
  for (const [what, after] of [
    ['removed export', removed],
    ['changed method', changed('1.7.0', 'export RuntimeDriver', CHANGED_METHOD)],
    ['new required driver method', changed('1.7.0', 'export RuntimeDriver', REQUIRED_METHOD)],
  ] as const) {
    const result = api.checkReport(BASE, after);
    assert.equal(result.required, 'major', what);
    // 1.6.0 → 1.7.0 is too small a bump for it.
    assert.equal(result.ok, false, what);
    assert.equal(result.bump, 'minor', what);
  }
});

test('a required member added to a type core hands to plugins is only minor', () => {
  const after = changed('1.7.0', 'export ContainerEvent', 'export interface ContainerEvent {\n    id: string;\n    name: string;\n}');
  assert.equal(api.checkReport(BASE, after).required, 'minor');
});

test('a union that only gains members (a new notification hook name) is minor; one that loses a member is major', () => {
  const before: Report = { version: '1.6.0', entries: [{ key: 'export NotificationHook', text: "export type NotificationHook = 'containerCreated' | 'imagePulled';" }] };
  const widened: Report = { version: '1.7.0', entries: [{ key: 'export NotificationHook', text: "export type NotificationHook = 'containerCreated' | 'imagePulled' | 'configReloaded';" }] };
  const narrowed: Report = { version: '1.7.0', entries: [{ key: 'export NotificationHook', text: "export type NotificationHook = 'containerCreated';" }] };
  assert.equal(api.checkReport(before, widened).required, 'minor');
  assert.equal(api.checkReport(before, narrowed).required, 'major');
});

test('PLUGIN_API_VERSION going down fails even with the same surface', () => {
  const result = api.checkReport(BASE, { ...BASE, version: '1.5.9' });
  assert.equal(result.ok, false);
  assert.equal(result.bump, 'down');
});

test('a version bump with an unchanged surface asks for the snapshot to record the new version', () => {
  const result = api.checkReport(BASE, { ...BASE, version: '1.6.1' });
  assert.equal(result.ok, false);
  assert.equal(result.required, 'none');
  assert.ok(result.message.includes(api.UPDATE_COMMAND), result.message);
});
