import assert from 'node:assert/strict';
import { test } from 'node:test';
import { checkLoginFlags, PASSWORD_FLAG_WARNING, passwordFlagWarning, passwordFromStdin, promptsNeeded } from '../src/login.js';
import {
  familiarName, familiarString, parseAnyReference, parseNormalizedNamed, pullQuery, referenceString, registryHostname, splitRepoTag, tagNameOnly,
} from '../src/reference.js';
import { parsePullPolicy } from '../src/run-options.js';
import { UsageError } from '../src/usage-error.js';

const DIGEST = `sha256:${'a'.repeat(64)}`;
const usage = (fn: () => unknown, message: RegExp) => assert.throws(fn, (e: unknown) => e instanceof UsageError && message.test(e.message));

test('-p warns as docker does; -p with --password-stdin, and --password-stdin without -u, are usage errors', () => {
  assert.equal(passwordFlagWarning({ password: 'pw' }), PASSWORD_FLAG_WARNING);
  assert.equal(passwordFlagWarning({ password: '' }), undefined);
  assert.equal(passwordFlagWarning({ passwordStdin: true, username: 'me' }), undefined);
  usage(() => checkLoginFlags({ username: 'me', password: 'pw', passwordStdin: true }), /mutually exclusive/);
  usage(() => checkLoginFlags({ passwordStdin: true }), /Must provide --username with --password-stdin/);
  usage(() => checkLoginFlags({ passwordStdin: true, username: '  ' }), /--username/);
  checkLoginFlags({ username: 'me', passwordStdin: true });
  checkLoginFlags({ username: 'me', password: 'pw' });
  checkLoginFlags({});
});

test('--password-stdin drops one trailing newline (and a CR before it), nothing else', () => {
  assert.equal(passwordFromStdin('secret\n'), 'secret');
  assert.equal(passwordFromStdin('secret\r\n'), 'secret');
  assert.equal(passwordFromStdin('secret'), 'secret');
  assert.equal(passwordFromStdin('secret\n\n'), 'secret\n');
  assert.equal(passwordFromStdin(' spaced '), ' spaced ');
});

test('prompts need a terminal: off one, a missing password or user name is a usage error', () => {
  assert.deepEqual(promptsNeeded('me', 'pw', false), { username: false, password: false });
  assert.deepEqual(promptsNeeded('', '', true), { username: true, password: true });
  assert.deepEqual(promptsNeeded('me', '', true), { username: false, password: true });
  usage(() => promptsNeeded('me', '', false), /non TTY device/);
  usage(() => promptsNeeded('', 'pw', false), /non TTY device.*-u/);
});

test('the login server is the host of what was typed, docker.io for the legacy index', () => {
  assert.equal(registryHostname('https://reg.example.com/v2/'), 'reg.example.com');
  assert.equal(registryHostname('http://127.0.0.1:5000'), '127.0.0.1:5000');
  assert.equal(registryHostname('127.0.0.1:5000/'), '127.0.0.1:5000');
  assert.equal(registryHostname('index.docker.io'), 'docker.io');
  assert.equal(registryHostname('docker.io'), 'docker.io');
});

test('references normalize as docker\'s: official images under library/, a registry told by . : or localhost', () => {
  const busybox = parseNormalizedNamed('busybox');
  assert.deepEqual(busybox, { domain: 'docker.io', path: 'library/busybox' });
  assert.equal(referenceString(tagNameOnly(busybox)), 'docker.io/library/busybox:latest');
  assert.equal(familiarString(tagNameOnly(busybox)), 'busybox:latest');
  assert.deepEqual(pullQuery(busybox), { fromImage: 'busybox', tag: 'latest' });
  assert.equal(familiarName(parseNormalizedNamed('docker.io/library/busybox:1.36')), 'busybox');
  assert.equal(familiarName(parseNormalizedNamed('index.docker.io/user/app')), 'user/app');
  const local = parseNormalizedNamed('127.0.0.1:5000/team/app:v1');
  assert.deepEqual(local, { domain: '127.0.0.1:5000', path: 'team/app', tag: 'v1' });
  assert.deepEqual(pullQuery(local), { fromImage: '127.0.0.1:5000/team/app', tag: 'v1' });
  assert.deepEqual(parseNormalizedNamed('localhost/app'), { domain: 'localhost', path: 'app' });
  assert.deepEqual(parseNormalizedNamed('user/app'), { domain: 'docker.io', path: 'user/app' });
});

test('a digest is sent as the tag, and wins over a tag, as docker\'s client sends it', () => {
  const r = parseNormalizedNamed(`busybox@${DIGEST}`);
  assert.deepEqual(pullQuery(r), { fromImage: 'busybox', tag: DIGEST });
  assert.equal(referenceString(tagNameOnly(r)), `docker.io/library/busybox@${DIGEST}`);
  assert.deepEqual(pullQuery(parseNormalizedNamed(`busybox:1.36@${DIGEST}`)), { fromImage: 'busybox', tag: DIGEST });
});

test('bad references are usage errors with docker\'s words; a full image id is no name', () => {
  usage(() => parseNormalizedNamed('BusyBox'), /repository name must be lowercase/);
  usage(() => parseNormalizedNamed('busybox:'), /^invalid reference format$/);
  usage(() => parseNormalizedNamed('a b'), /^invalid reference format$/);
  usage(() => parseNormalizedNamed('busybox@sha256:abcd'), /invalid reference format/);
  usage(() => parseNormalizedNamed('a'.repeat(64)), /cannot specify 64-byte hexadecimal strings/);
  usage(() => parseNormalizedNamed(`x/${'a'.repeat(260)}`), /not be more than 255 characters/);
  assert.equal(parseAnyReference('f'.repeat(64)), undefined);
  assert.equal(parseAnyReference('busybox')?.path, 'library/busybox');
});

test('--pull takes always, missing (the default) or never', () => {
  assert.equal(parsePullPolicy(undefined), 'missing');
  assert.equal(parsePullPolicy(''), 'missing');
  assert.equal(parsePullPolicy('always'), 'always');
  assert.equal(parsePullPolicy('never'), 'never');
  usage(() => parsePullPolicy('sometimes'), /^invalid pull option: 'sometimes': must be one of "always", "missing" or "never"$/);
});

test('commit and import read REPOSITORY[:TAG] as docker\'s client: a registry port is no tag, a digest is refused', () => {
  const refuse = 'refusing to create a tag with a digest reference';
  assert.deepEqual(splitRepoTag(undefined, refuse), {});
  assert.deepEqual(splitRepoTag('busybox', refuse), { repo: 'busybox' });
  assert.deepEqual(splitRepoTag('mine:1', refuse), { repo: 'mine', tag: '1' });
  assert.deepEqual(splitRepoTag('localhost:5000/team/app', refuse), { repo: 'localhost:5000/team/app' });
  assert.deepEqual(splitRepoTag('localhost:5000/team/app:v2', refuse), { repo: 'localhost:5000/team/app', tag: 'v2' });
  assert.deepEqual(splitRepoTag('docker.io/library/busybox:2', refuse), { repo: 'busybox', tag: '2' });
  usage(() => splitRepoTag(`mine@${DIGEST}`, refuse), /^refusing to create a tag with a digest reference$/);
  usage(() => splitRepoTag(`mine:1@${DIGEST}`, 'cannot import digest reference'), /^cannot import digest reference$/);
  usage(() => splitRepoTag('Mine', refuse), /^invalid reference format: repository name must be lowercase$/);
  usage(() => splitRepoTag('mine:', refuse), /^invalid reference format$/);
});
