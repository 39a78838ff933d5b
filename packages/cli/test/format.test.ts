import assert from 'node:assert/strict';
import { test } from 'node:test';
import { alignTabs, compileRowTemplate, createdSince, goJson, humanSizePrecision } from '../src/format.js';

const FIELDS = { Repository: 'REPOSITORY', Tag: 'TAG', ID: 'IMAGE ID' };
const ROW = { Repository: 'busybox', Tag: 'latest', ID: 'f3fcf12cb296' };

test('a plain template renders fields and literal text, with \\t and \\n escapes', () => {
  const t = compileRowTemplate('{{.Repository}}:{{ .Tag }}\\t{{.ID}}\\n', FIELDS);
  assert.equal(t.isTable, false);
  assert.equal(t.render(ROW), 'busybox:latest\tf3fcf12cb296\n');
});

test('a table template renders its header from the column names, literal text kept', () => {
  const t = compileRowTemplate('table {{.Repository}}\\t{{.ID}} ({{.Tag}})', FIELDS);
  assert.equal(t.isTable, true);
  assert.equal(t.header(), 'REPOSITORY\tIMAGE ID (TAG)');
  assert.equal(t.render(ROW), 'busybox\tf3fcf12cb296 (latest)');
});

test('json renders the whole row with sorted keys and Go escaping, or one field', () => {
  const t = compileRowTemplate('{{json .}}', FIELDS);
  assert.equal(t.render({ ...ROW, Tag: '<none>' }), '{"ID":"f3fcf12cb296","Repository":"busybox","Tag":"\\u003cnone\\u003e"}');
  assert.equal(compileRowTemplate('{{json .Tag}}', FIELDS).render(ROW), '"latest"');
});

test('functions upper, lower, title and truncate, and {{- -}} trimming', () => {
  assert.equal(compileRowTemplate('{{upper .Repository}} {{truncate .ID 4}}', FIELDS).render(ROW), 'BUSYBOX f3fc');
  assert.equal(compileRowTemplate('{{title .Repository}}', FIELDS).render(ROW), 'Busybox');
  assert.equal(compileRowTemplate('a   {{- .Tag -}}   b', FIELDS).render(ROW), 'alatestb');
});

test('an unknown field, an unknown function or an unclosed action is an error naming it', () => {
  assert.throws(() => compileRowTemplate('{{.Colour}}', FIELDS), /can't evaluate field Colour.*\.Repository/);
  assert.throws(() => compileRowTemplate('{{shout .Tag}}', FIELDS), /function "shout" not defined/);
  assert.throws(() => compileRowTemplate('{{.Tag', FIELDS), /unclosed action/);
  assert.throws(() => compileRowTemplate('{{if .Tag}}x{{end}}', FIELDS), /function "if" not defined/);
});

test('alignTabs pads every column but the last to its widest cell plus 3, at least 10, like docker', () => {
  assert.equal(alignTabs(['REPOSITORY\tTAG\tSIZE', 'busybox\tlatest\t2MB']), 'REPOSITORY   TAG       SIZE\nbusybox      latest    2MB');
});

test('createdSince follows docker units.HumanDuration', () => {
  const now = Date.UTC(2025, 0, 1);
  const ago = (s: number) => createdSince(now / 1000 - s, now);
  assert.equal(ago(0), 'Less than a second ago');
  assert.equal(ago(1), '1 second ago');
  assert.equal(ago(45), '45 seconds ago');
  assert.equal(ago(90), 'About a minute ago');
  assert.equal(ago(30 * 60), '30 minutes ago');
  assert.equal(ago(3600), 'About an hour ago');
  assert.equal(ago(5 * 3600), '5 hours ago');
  assert.equal(ago(3 * 86400), '3 days ago');
  assert.equal(ago(21 * 86400), '3 weeks ago');
  assert.equal(ago(90 * 86400), '3 months ago');
  assert.equal(ago(3 * 365 * 86400), '3 years ago');
});

test('humanSizePrecision and goJson match Go', () => {
  assert.equal(humanSizePrecision(2014123, 4), '2.014MB');
  assert.equal(humanSizePrecision(0, 4), '0B');
  assert.equal(humanSizePrecision(2000000, 3), '2MB');
  assert.equal(goJson({ a: '<&>' }), '{"a":"\\u003c\\u0026\\u003e"}');
});
