import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { PassThrough } from 'node:stream';
import { test } from 'node:test';
import { ISULA, VOLUME_ID, runIsula, startFakeDaemon, type FakeBehaviour } from './fake-daemon.js';
import { PRUNE_WARNING, promptForConfirmation } from '../src/commands-volume.js';
import { buildVolumeCreateBody, dockerHumanSize, formatVolumeList, formatVolumePrune, type Volume } from '../src/volume-format.js';

// Shaped like isulad's (docker's) Volume.
const data: Volume = {
  Name: 'data', Driver: 'local', Mountpoint: '/var/lib/isulad/volumes/data/_data', CreatedAt: '2026-11-23T09:17:40.975Z',
  Scope: 'local', Labels: { team: 'web', env: 'prod' },
};
const data10: Volume = { ...data, Name: 'data10', Mountpoint: '/var/lib/isulad/volumes/data10/_data', Labels: { team: 'db' } };
const data2: Volume = { ...data, Name: 'data2', Mountpoint: '/var/lib/isulad/volumes/data2/_data', Labels: null };
const anon = 'f00d'.padEnd(64, '1');
const anonymous: Volume = { ...data, Name: anon, Mountpoint: `/var/lib/isulad/volumes/${anon}/_data`, Labels: {} };
const volumes = (): FakeBehaviour => ({ volumes: [data10, anonymous, data, data2], volumesInUse: ['data2'], volumeSizes: { data: 1200, data10: 34, [anon]: 0 } });

test('volume create sends docker\'s body and prints the volume\'s name', async () => {
  const r = await runIsula({ volumes: [] }, ['volume', 'create', '--label', 'a=b=c', '--label', 'team=web', '-o', 'size=1g', '--opt', 'bare', 'app']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'app\n');
  assert.deepEqual(r.log, ['POST /volumes/create']);
  assert.deepEqual(r.bodies.get('/volumes/create'), { Name: 'app', Driver: 'local', DriverOpts: { size: '1g', bare: '' }, Labels: { a: 'b=c', team: 'web' } });
  const anonymousOne = await runIsula({ volumes: [] }, ['volume', 'create', '-d', 'local']);
  assert.equal(anonymousOne.code, 0, anonymousOne.stderr);
  assert.deepEqual(anonymousOne.bodies.get('/volumes/create'), { Name: '', Driver: 'local', DriverOpts: {}, Labels: {} });
  assert.equal(anonymousOne.stdout, `${VOLUME_ID}\n`);
  const hidden = await runIsula({ volumes: [] }, ['volume', 'create', '--name', 'named']);
  assert.equal(hidden.stdout, 'named\n');
});

test('volume create: usage errors send nothing; the daemon\'s refusal is its words', async () => {
  const label = await runIsula({ volumes: [] }, ['volume', 'create', '--label', 'nokey', 'app']);
  assert.equal(label.code, 1);
  assert.equal(label.stderr, 'isula: invalid argument "nokey" for "--label" flag: bad attribute format: nokey\n');
  assert.deepEqual(label.log, []);
  const both = await runIsula({ volumes: [] }, ['volume', 'create', '--name', 'a', 'b']);
  assert.equal(both.code, 1);
  assert.match(both.stderr, /conflicting options: either specify --name or provide positional arg, not both/);
  const extra = await runIsula({ volumes: [] }, ['volume', 'create', 'a', 'b']);
  assert.equal(extra.code, 1);
  assert.match(extra.stderr, /too many arguments[\s\S]*See 'isula volume create --help'\./);
  assert.deepEqual(extra.log, []);
  const lsArg = await runIsula(volumes(), ['volume', 'ls', 'data']);
  assert.equal(lsArg.code, 1);
  assert.match(lsArg.stderr, /too many arguments/);
  const bad = await runIsula({ volumes: [] }, ['volume', 'create', '/x']);
  assert.equal(bad.code, 1);
  assert.equal(bad.stderr, 'Error response from daemon: create /x: "/x" includes invalid characters for a local volume name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed\n');
  assert.deepEqual(buildVolumeCreateBody(undefined, { opt: ['a=b', 'a=c'] }).DriverOpts, { a: 'c' });
});

test('volume ls: docker\'s table, sorted by name in natural order', async () => {
  const r = await runIsula(volumes(), ['volume', 'ls']);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(r.log, ['GET /volumes']);
  assert.equal(r.stdout, [
    'DRIVER    VOLUME NAME',
    'local     data',
    'local     data2',
    'local     data10',
    `local     ${anon}`,
    '',
  ].join('\n'));
  const empty = await runIsula({ volumes: [] }, ['volume', 'list']);
  assert.equal(empty.stdout, 'DRIVER    VOLUME NAME\n');
});

test('volume ls -q and filters as the API\'s filters JSON', async () => {
  const q = await runIsula(volumes(), ['volume', 'ls', '-q']);
  assert.equal(q.stdout, `data\ndata2\ndata10\n${anon}\n`);
  const dangling = await runIsula(volumes(), ['volume', 'ls', '-q', '-f', 'dangling=true', '--filter', 'name=data']);
  assert.deepEqual(dangling.log, [`GET /volumes?filters=${encodeURIComponent('{"dangling":["true"],"name":["data"]}')}`]);
  assert.equal(dangling.stdout, 'data\ndata10\n');
  const used = await runIsula(volumes(), ['volume', 'ls', '-q', '-f', 'dangling=false']);
  assert.equal(used.stdout, 'data2\n');
  const label = await runIsula(volumes(), ['volume', 'ls', '-q', '-f', 'label=team']);
  assert.equal(label.stdout, 'data\ndata10\n');
  const labelValue = await runIsula(volumes(), ['volume', 'ls', '-f', 'label=team=db', '--format', '{{.Name}}']);
  assert.equal(labelValue.stdout, 'data10\n');
  const none = await runIsula(volumes(), ['volume', 'ls', '-q', '-f', 'name=nothing']);
  assert.equal(none.code, 0);
  assert.equal(none.stdout, '');
  const bad = await runIsula(volumes(), ['volume', 'ls', '-f', 'dangling']);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /bad format of filter/);
  assert.deepEqual(bad.log, []);
});

test('volume ls --format: docker\'s fields, table, json, raw, and an unknown field before any request', async () => {
  assert.equal(formatVolumeList([data10, data], { format: '{{.Name}} {{.Driver}} {{.Scope}} {{.Labels}} {{.Label "team"}}' }), 'data local local env=prod,team=web web\ndata10 local local team=db db');
  assert.equal(formatVolumeList([data], { format: '{{.Mountpoint}} {{.CreatedAt}} {{.Links}} {{.Size}}' }), '/var/lib/isulad/volumes/data/_data 2026-11-23T09:17:40.975Z N/A N/A');
  assert.equal(formatVolumeList([{ ...data, UsageData: { Size: 1234, RefCount: 2 } }], { format: '{{.Links}} {{.Size}}' }), '2 1.234kB');
  assert.equal(formatVolumeList([data2], { format: '{{.Labels}}|{{.Label "team"}}' }), '|');
  assert.equal(formatVolumeList([data], { format: 'table {{.Name}}\\t{{.Mountpoint}}' }), 'VOLUME NAME   MOUNTPOINT\ndata          /var/lib/isulad/volumes/data/_data');
  assert.equal(formatVolumeList([data], { format: '{{json .}}' }),
    '{"CreatedAt":"2026-11-23T09:17:40.975Z","Driver":"local","Labels":"env=prod,team=web","Links":"N/A","Mountpoint":"/var/lib/isulad/volumes/data/_data","Name":"data","Scope":"local","Size":"N/A"}');
  assert.equal(formatVolumeList([data, data2], { format: 'raw' }), 'name: data\ndriver: local\n\nname: data2\ndriver: local\n');
  assert.equal(formatVolumeList([data], { format: 'raw', quiet: true }), 'name: data');
  // As docker: -q with a custom format keeps the format.
  assert.equal(formatVolumeList([data], { format: '{{.Driver}}', quiet: true }), 'local');
  const r = await runIsula(volumes(), ['volume', 'ls', '--format', '{{.Colour}}']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /can't evaluate field Colour/);
  assert.deepEqual(r.log, []);
});

test('volume inspect: a JSON array indented by 4, then docker\'s "No such volume", exit 1', async () => {
  const r = await runIsula(volumes(), ['volume', 'inspect', 'data', 'nope', 'data10']);
  assert.equal(r.code, 1);
  assert.deepEqual(r.log, ['GET /volumes/data', 'GET /volumes/nope', 'GET /volumes/data10']);
  assert.equal(r.stdout, `${JSON.stringify([data, data10], null, 4)}\n`);
  assert.match(r.stdout, /^\[\n {4}\{\n {8}"Name": "data",/);
  assert.equal(r.stderr, 'Error: No such volume: nope\n');
  const none = await runIsula(volumes(), ['volume', 'inspect', 'nope', 'gone']);
  assert.equal(none.stdout, '[]\n');
  assert.equal(none.stderr, 'Error: No such volume: nope\nError: No such volume: gone\n');
  assert.equal(none.code, 1);
  const missing = await runIsula(volumes(), ['volume', 'inspect']);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /missing required argument 'volume'[\s\S]*See 'isula volume inspect --help'\./);
});

test('volume inspect -f: the template per volume; a bad one is docker\'s exit 64', async () => {
  const r = await runIsula(volumes(), ['volume', 'inspect', '-f', '{{.Name}} {{.Mountpoint}} {{index .Labels "team"}}', 'data', 'data10']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'data /var/lib/isulad/volumes/data/_data web\ndata10 /var/lib/isulad/volumes/data10/_data db\n');
  const json = await runIsula(volumes(), ['volume', 'inspect', '--format', '{{json .Labels}}', 'data10']);
  assert.equal(json.stdout, '{"team":"db"}\n');
  const bad = await runIsula(volumes(), ['volume', 'inspect', '-f', '{{if .Name}}', 'data']);
  assert.equal(bad.code, 64);
  assert.match(bad.stderr, /^Template parsing error: /);
  assert.deepEqual(bad.log, []);
});

test('volume rm echoes each name removed, then reports the failures and exits 1', async () => {
  const r = await runIsula(volumes(), ['volume', 'rm', 'data', 'data2', 'nope', 'data10']);
  assert.equal(r.code, 1);
  assert.deepEqual(r.log, ['DELETE /volumes/data', 'DELETE /volumes/data2', 'DELETE /volumes/nope', 'DELETE /volumes/data10']);
  assert.equal(r.stdout, 'data\ndata10\n');
  assert.equal(r.stderr, [
    `Error response from daemon: remove data2: volume is in use - [${'c0ffee'.padEnd(64, '0')}]`,
    'Error: No such volume: nope',
    '',
  ].join('\n'));
  const forced = await runIsula(volumes(), ['volume', 'remove', '-f', 'data']);
  assert.equal(forced.code, 0, forced.stderr);
  assert.deepEqual(forced.log, ['DELETE /volumes/data?force=1']);
  assert.equal(forced.stdout, 'data\n');
});

test('volume prune -f: docker\'s report and units.HumanSize', async () => {
  const r = await runIsula(volumes(), ['volume', 'prune', '-f']);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(r.log, ['POST /volumes/prune']);
  assert.equal(r.stdout, `Deleted Volumes:\ndata10\n${anon}\ndata\n\nTotal reclaimed space: 1.234kB\n`);
  const labelled = await runIsula(volumes(), ['volume', 'prune', '--force', '--filter', 'label=team=web']);
  assert.deepEqual(labelled.log, [`POST /volumes/prune?filters=${encodeURIComponent('{"label":["team=web"]}')}`]);
  assert.equal(labelled.stdout, 'Deleted Volumes:\ndata\n\nTotal reclaimed space: 1.2kB\n');
  const nothing = await runIsula({ volumes: [data2], volumesInUse: ['data2'] }, ['volume', 'prune', '-f']);
  assert.equal(nothing.stdout, 'Total reclaimed space: 0B\n');
  assert.equal(formatVolumePrune({ VolumesDeleted: null, SpaceReclaimed: 99 }), 'Total reclaimed space: 0B\n');
  assert.deepEqual([0, 999, 1000, 1200, 999_950, 1_234_567, 5e12].map(dockerHumanSize), ['0B', '999B', '1kB', '1.2kB', '1000kB', '1.235MB', '5TB']);
});

test('volume prune without -f off a terminal is a usage error and asks nothing', async () => {
  const r = await runIsula(volumes(), ['volume', 'prune'], { input: 'y\n' });
  assert.equal(r.code, 1);
  assert.equal(r.stdout, '');
  assert.match(r.stderr, /use -f \(--force\)/);
  assert.deepEqual(r.log, []);
});

test('promptForConfirmation: docker\'s question on the output; only y or Y is a yes', async () => {
  const ask = async (answer: string | null) => {
    const input = new PassThrough();
    const output = new PassThrough();
    let written = '';
    output.on('data', (c: Buffer) => { written += c.toString(); });
    const p = promptForConfirmation(input, output, PRUNE_WARNING);
    if (answer === null) input.end();
    else input.write(answer);
    return { ok: await p, written };
  };
  const yes = await ask('y\n');
  assert.equal(yes.ok, true);
  assert.equal(yes.written, 'WARNING! This will remove all local volumes not used by at least one container.\nAre you sure you want to continue? [y/N] ');
  assert.equal((await ask(' Y \r\n')).ok, true);
  assert.equal((await ask('yes\n')).ok, false);
  assert.equal((await ask('\n')).ok, false);
  assert.equal((await ask(null)).ok, false);
});

/** Runs isula under script(1), so that its stdin is a terminal; `answer` is typed once the question is shown. */
async function runOnTty(behaviour: FakeBehaviour, args: string[], answer: string): Promise<{ output: string; log: string[] }> {
  const daemon = await startFakeDaemon(behaviour);
  try {
    const cmd = [process.execPath, ISULA, '-H', daemon.host, ...args].map((a) => `'${a.replaceAll("'", "'\\''")}'`).join(' ');
    const child = spawn('script', ['-qfec', cmd, '/dev/null'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let output = '';
    let typed = false;
    child.stdout.on('data', (c: Buffer) => {
      output += c.toString();
      if (!typed && output.includes('[y/N] ')) { typed = true; child.stdin.write(answer); }
    });
    await new Promise((resolve) => child.on('close', resolve));
    return { output: output.replace(/\r\n/g, '\n'), log: daemon.log };
  } finally {
    await daemon.close();
  }
}

test('volume prune on a terminal asks docker\'s question; no is docker\'s 0B, yes prunes', { skip: !existsSync('/usr/bin/script') && 'no script(1)' }, async () => {
  const no = await runOnTty(volumes(), ['volume', 'prune'], 'n\r');
  assert.match(no.output, /WARNING! This will remove all local volumes not used by at least one container\.\nAre you sure you want to continue\? \[y\/N\] n\nTotal reclaimed space: 0B\n$/);
  assert.deepEqual(no.log, []);
  const yes = await runOnTty(volumes(), ['volume', 'prune', '--filter', 'label=team=db'], 'y\r');
  assert.match(yes.output, /\[y\/N\] y\nDeleted Volumes:\ndata10\n\nTotal reclaimed space: 34B\n$/);
  assert.equal(yes.log.length, 1);
});

test('volume alone prints its help (stderr, exit 0 as docker); an unknown subcommand is an error', async () => {
  const r = await runIsula({}, ['volume']);
  assert.equal(r.code, 0);
  assert.equal(r.stdout, '');
  assert.match(r.stderr, /Usage: isula volume/);
  for (const sub of ['create', 'ls\\|list', 'inspect', 'rm\\|remove', 'prune']) assert.match(r.stderr, new RegExp(`\\n  ${sub} `));
  const help = await runIsula({}, ['help', 'volume']);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /ls\|list \[options\]/);
  const createHelp = await runIsula({}, ['volume', 'create', '--help']);
  assert.doesNotMatch(createHelp.stdout, /--name/);
  const unknown = await runIsula({}, ['volume', 'update']);
  assert.equal(unknown.code, 1);
  assert.match(unknown.stderr, /unknown command 'update'/);
});
