import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runIsula } from './fake-daemon.js';

const ID = 'c0ffee'.padEnd(64, '0');
const DIGEST = `sha256:${'d'.repeat(64)}`;
const LAYER = '5cc84ad355aa';

const PULL_MESSAGES = [
  { status: 'Pulling from library/busybox', id: 'latest', progressDetail: {} },
  { status: 'Pulling fs layer', id: LAYER, progressDetail: {} },
  { status: 'Downloading', id: LAYER, progressDetail: { current: 1000, total: 2000 }, progress: '[====>  ] 1kB/2kB' },
  { status: 'Downloading', id: LAYER, progressDetail: { current: 2000, total: 2000 }, progress: '[======>] 2kB/2kB' },
  { status: 'Download complete', id: LAYER, progressDetail: {} },
  { status: 'Pull complete', id: LAYER, progressDetail: {} },
  { status: `Digest: ${DIGEST}` },
  { status: 'Status: Downloaded newer image for busybox:latest' },
];
const PULL_LINES = [
  'latest: Pulling from library/busybox',
  `${LAYER}: Pulling fs layer`,
  `${LAYER}: Downloading`,
  `${LAYER}: Download complete`,
  `${LAYER}: Pull complete`,
  `Digest: ${DIGEST}`,
  'Status: Downloaded newer image for busybox:latest',
];
const BROKEN_PULL = [
  { status: 'Pulling fs layer', id: LAYER, progressDetail: {} },
  { errorDetail: { message: 'failed to fetch layer: unexpected EOF' }, error: 'failed to fetch layer: unexpected EOF', code: 'IMAGE_PULL_FAILED' },
];

test('pull defaults the tag, shows each layer status once off a terminal, and ends with the full reference', async () => {
  const r = await runIsula({ pull: { messages: PULL_MESSAGES } }, ['pull', 'busybox']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, ['Using default tag: latest', ...PULL_LINES, 'docker.io/library/busybox:latest', ''].join('\n'));
  assert.equal(r.stderr, '');
  assert.deepEqual(r.log, ['POST /images/create?fromImage=busybox&tag=latest']);
});

test('pull -q prints only the reference; a digest goes as the tag and --platform as is', async () => {
  const r = await runIsula({ pull: { messages: PULL_MESSAGES } }, ['pull', '-q', '--platform', 'linux/arm64/v8', `127.0.0.1:5000/team/app@${DIGEST}`]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, `127.0.0.1:5000/team/app@${DIGEST}\n`);
  assert.deepEqual(r.log, [`POST /images/create?fromImage=127.0.0.1%3A5000%2Fteam%2Fapp&tag=${encodeURIComponent(DIGEST)}&platform=linux%2Farm64%2Fv8`]);
});

test('pull reports an error answered before the stream, and one in the stream after what came before it', async () => {
  const before = await runIsula({ pull: { error: { status: 404, code: 'IMAGE_NOT_FOUND', message: 'pull access denied for nope, repository does not exist' } } }, ['pull', 'nope:1']);
  assert.equal(before.code, 1);
  assert.equal(before.stdout, '');
  assert.equal(before.stderr, 'Error response from daemon: pull access denied for nope, repository does not exist\n');
  const during = await runIsula({ pull: { messages: BROKEN_PULL } }, ['pull', 'busybox:1.36']);
  assert.equal(during.code, 1);
  assert.equal(during.stdout, `${LAYER}: Pulling fs layer\n`);
  assert.equal(during.stderr, 'Error response from daemon: failed to fetch layer: unexpected EOF\n');
});

test('a bad reference is a usage error and sends nothing', async () => {
  const r = await runIsula({}, ['pull', 'BusyBox']);
  assert.equal(r.code, 1);
  assert.equal(r.stderr, 'isula: invalid reference format: repository name must be lowercase\n');
  assert.deepEqual(r.log, []);
  const digest = await runIsula({}, ['push', `busybox@${DIGEST}`]);
  assert.equal(digest.code, 1);
  assert.equal(digest.stderr, 'isula: cannot push a digest reference\n');
  assert.deepEqual(digest.log, []);
});

test('push streams the layers and the digest line, not the aux message; -q prints the reference', async () => {
  const messages = [
    { status: 'The push refers to repository [127.0.0.1:5000/busybox]' },
    { status: 'Preparing', id: LAYER, progressDetail: {} },
    { status: 'Pushing', id: LAYER, progressDetail: { current: 10, total: 20 } },
    { status: 'Pushing', id: LAYER, progressDetail: { current: 20, total: 20 } },
    { status: 'Pushed', id: LAYER, progressDetail: {} },
    { status: `latest: digest: ${DIGEST} size: 527` },
    { status: '', progressDetail: {}, aux: { Tag: 'latest', Digest: DIGEST, Size: 527 } },
  ];
  const r = await runIsula({ push: { messages } }, ['push', '127.0.0.1:5000/busybox']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, [
    'Using default tag: latest',
    'The push refers to repository [127.0.0.1:5000/busybox]',
    `${LAYER}: Preparing`,
    `${LAYER}: Pushing`,
    `${LAYER}: Pushed`,
    `latest: digest: ${DIGEST} size: 527`,
    '',
  ].join('\n'));
  assert.deepEqual(r.log, ['POST /images/127.0.0.1%3A5000%2Fbusybox/push?tag=latest']);
  const quiet = await runIsula({ push: { messages } }, ['push', '-q', '127.0.0.1:5000/busybox:v2']);
  assert.equal(quiet.stdout, '127.0.0.1:5000/busybox:v2\n');
  assert.deepEqual(quiet.log, ['POST /images/127.0.0.1%3A5000%2Fbusybox/push?tag=v2']);
});

test('login sends the credentials to the daemon: --password-stdin, or -p with docker\'s warning; the server is a host', async () => {
  const r = await runIsula({}, ['login', '-u', 'me', '--password-stdin', '127.0.0.1:5000'], { input: 's3cret\n' });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'Login Succeeded\n');
  assert.equal(r.stderr, '');
  assert.deepEqual(r.bodies.get('/auth'), { username: 'me', password: 's3cret', serveraddress: '127.0.0.1:5000' });
  const p = await runIsula({}, ['login', '-u', 'me', '-p', 'pw', 'https://reg.example.com/v2/']);
  assert.equal(p.code, 0, p.stderr);
  assert.equal(p.stderr, 'WARNING! Using --password via the CLI is insecure. Use --password-stdin.\n');
  assert.deepEqual(p.bodies.get('/auth'), { username: 'me', password: 'pw', serveraddress: 'reg.example.com' });
  const hub = await runIsula({}, ['login', '-u', 'me', '--password-stdin'], { input: 'pw' });
  assert.deepEqual(hub.bodies.get('/auth'), { username: 'me', password: 'pw', serveraddress: 'docker.io' });
});

test('login reports refused credentials with the registry\'s words and exits 1', async () => {
  const r = await runIsula({ loginError: { status: 401, code: 'REGISTRY_UNAUTHORIZED', message: 'unauthorized: incorrect username or password' } }, ['login', '-u', 'me', '--password-stdin', 'reg.example.com'], { input: 'bad\n' });
  assert.equal(r.code, 1);
  assert.equal(r.stdout, '');
  assert.equal(r.stderr, 'Error response from daemon: unauthorized: incorrect username or password\n');
});

test('login without a password off a terminal, or --password-stdin without -u, is a usage error that sends nothing', async () => {
  const noPassword = await runIsula({}, ['login', '-u', 'me', 'reg.example.com']);
  assert.equal(noPassword.code, 1);
  assert.match(noPassword.stderr, /^isula: Cannot perform an interactive login from a non TTY device/);
  assert.deepEqual(noPassword.log, []);
  const noUser = await runIsula({}, ['login', '--password-stdin'], { input: 'pw\n' });
  assert.equal(noUser.code, 1);
  assert.equal(noUser.stderr, 'isula: Must provide --username with --password-stdin\n');
  assert.deepEqual(noUser.log, []);
  const both = await runIsula({}, ['login', '-u', 'me', '-p', 'pw', '--password-stdin']);
  assert.equal(both.code, 1);
  assert.equal(both.stderr, 'WARNING! Using --password via the CLI is insecure. Use --password-stdin.\nisula: --password and --password-stdin are mutually exclusive\n');
});

test('logout removes kept credentials; with none kept it says so and still exits 0', async () => {
  const r = await runIsula({ loggedIn: ['127.0.0.1:5000'] }, ['logout', 'http://127.0.0.1:5000/']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'Removing login credentials for 127.0.0.1:5000\n');
  assert.deepEqual(r.bodies.get('/auth/logout'), { serveraddress: '127.0.0.1:5000' });
  const none = await runIsula({}, ['logout']);
  assert.equal(none.code, 0, none.stderr);
  assert.equal(none.stdout, 'Not logged in to docker.io\n');
  assert.deepEqual(none.bodies.get('/auth/logout'), { serveraddress: 'docker.io' });
});

test('create of a missing image says so on stderr, pulls with the progress on stderr, and creates again', async () => {
  const r = await runIsula({ images: [], pull: { messages: PULL_MESSAGES } }, ['create', '--name', 'web', 'busybox']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, `${ID}\n`);
  assert.equal(r.stderr, ["Unable to find image 'busybox:latest' locally", ...PULL_LINES, ''].join('\n'));
  assert.deepEqual(r.log, [
    'POST /containers/create?name=web',
    'POST /images/create?fromImage=busybox&tag=latest',
    'POST /containers/create?name=web',
  ]);
});

test('create -q pulls without a word; --pull never reports the missing image; --pull always pulls first', async () => {
  const quiet = await runIsula({ images: [], pull: { messages: PULL_MESSAGES } }, ['create', '-q', 'busybox:1.36']);
  assert.equal(quiet.code, 0, quiet.stderr);
  assert.deepEqual([quiet.stdout, quiet.stderr], [`${ID}\n`, '']);
  assert.deepEqual(quiet.log, ['POST /containers/create', 'POST /images/create?fromImage=busybox&tag=1.36', 'POST /containers/create']);

  const never = await runIsula({ images: [], pull: { messages: PULL_MESSAGES } }, ['create', '--pull', 'never', 'busybox']);
  assert.equal(never.code, 125);
  assert.equal(never.stderr, "isula: Error response from daemon: No such image: busybox.\nSee 'isula create --help'.\n");
  assert.deepEqual(never.log, ['POST /containers/create']);

  const always = await runIsula({ images: ['busybox'], pull: { messages: PULL_MESSAGES } }, ['create', '--pull', 'always', 'busybox']);
  assert.equal(always.code, 0, always.stderr);
  assert.deepEqual(always.log, ['POST /images/create?fromImage=busybox&tag=latest', 'POST /containers/create']);
});

test('run of a missing image pulls it, then attaches, starts and exits with the container\'s code', async () => {
  const r = await runIsula({ images: [], pull: { messages: PULL_MESSAGES }, exitCode: 3, output: [[1, 'hello\n']] }, ['run', 'busybox', 'echo', 'hello']);
  assert.equal(r.code, 3, r.stderr);
  assert.equal(r.stdout, 'hello\n');
  assert.match(r.stderr, /^Unable to find image 'busybox:latest' locally\n/);
  assert.deepEqual(r.log.slice(0, 3), ['POST /containers/create', 'POST /images/create?fromImage=busybox&tag=latest', 'POST /containers/create']);
  assert.equal(r.log.filter((l) => l.endsWith('/start')).length, 1);
});

test('run exits 125 when the pull fails, and creates nothing more; a bad --pull is a usage error', async () => {
  const r = await runIsula({ images: [], pull: { messages: BROKEN_PULL } }, ['run', '-d', 'busybox']);
  assert.equal(r.code, 125);
  assert.equal(r.stdout, '');
  assert.equal(r.stderr, [
    "Unable to find image 'busybox:latest' locally",
    `${LAYER}: Pulling fs layer`,
    "isula: Error response from daemon: failed to fetch layer: unexpected EOF.",
    "See 'isula run --help'.",
    '',
  ].join('\n'));
  assert.deepEqual(r.log, ['POST /containers/create', 'POST /images/create?fromImage=busybox&tag=latest']);

  const bad = await runIsula({}, ['run', '--pull', 'sometimes', 'busybox']);
  assert.equal(bad.code, 125);
  assert.equal(bad.stderr, `isula: invalid pull option: 'sometimes': must be one of "always", "missing" or "never".\nSee 'isula run --help'.\n`);
  assert.deepEqual(bad.log, []);
});

test('an image id or an --external-rootfs container is never pulled', async () => {
  const id = 'f'.repeat(64);
  const byId = await runIsula({ images: [], pull: { messages: PULL_MESSAGES } }, ['create', id]);
  assert.equal(byId.code, 125);
  assert.deepEqual(byId.log, ['POST /containers/create']);
  const external = await runIsula({ images: [], pull: { messages: PULL_MESSAGES } }, ['create', '--external-rootfs', '/srv/rootfs', 'mine']);
  assert.equal(external.code, 125);
  assert.deepEqual(external.log, ['POST /containers/create']);
});
