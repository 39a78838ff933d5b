/**
 * `isula commit -c`: Docker's change instructions applied to an image config.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { applyCommitChanges } from '../src/container/commit-changes.js';

test('CMD and ENTRYPOINT take exec form and shell form; ENV, LABEL, EXPOSE, VOLUME add; WORKDIR resolves; USER and STOPSIGNAL set', () => {
  const base = { Env: ['PATH=/bin', 'MODE=dev'], Cmd: ['sh'], Labels: { keep: '1' }, WorkingDir: '/srv' };
  const out = applyCommitChanges(base, [
    'CMD ["nginx", "-g", "daemon off;"]',
    'entrypoint /docker-entrypoint.sh --verbose',
    'ENV MODE=prod GREETING="hello world"',
    'ENV LEGACY some value with blanks',
    'LABEL a=b "c d"=e',
    'EXPOSE 80 53/UDP 8000-8002',
    'VOLUME ["/data", "/logs"]',
    'VOLUME /cache',
    'WORKDIR app',
    'USER 1000:1000',
    'STOPSIGNAL SIGQUIT',
  ]);
  assert.deepEqual(out.Cmd, ['nginx', '-g', 'daemon off;']);
  assert.deepEqual(out.Entrypoint, ['/bin/sh', '-c', '/docker-entrypoint.sh --verbose']);
  assert.deepEqual(out.Env, ['PATH=/bin', 'MODE=prod', 'GREETING=hello world', 'LEGACY=some value with blanks']);
  assert.deepEqual(out.Labels, { keep: '1', a: 'b', 'c d': 'e' });
  assert.deepEqual(out.ExposedPorts, { '80/tcp': {}, '53/udp': {}, '8000/tcp': {}, '8001/tcp': {}, '8002/tcp': {} }, 'a range is each of its ports, as nat.ParsePortSpecs');
  assert.deepEqual(out.Volumes, { '/data': {}, '/logs': {}, '/cache': {} });
  assert.equal(out.WorkingDir, '/srv/app');
  assert.equal(out.User, '1000:1000');
  assert.equal(out.StopSignal, 'SIGQUIT');
  assert.deepEqual(base.Env, ['PATH=/bin', 'MODE=dev'], 'the given config is left alone');
  assert.deepEqual(applyCommitChanges(base, ['CMD [not json']).Cmd, ['/bin/sh', '-c', '[not json'], 'a malformed array runs as a shell command, as docker');
});

test('an instruction commit does not take, or a malformed one, is refused by name', () => {
  const refused = (change: string, re: RegExp) => assert.throws(() => applyCommitChanges({}, [change]), (e: { code?: string; message?: string }) => e.code === 'API_BAD_REQUEST' && re.test(e.message ?? ''), change);
  refused('RUN apt-get update', /^RUN is not a valid change command \(commit takes CMD, ENTRYPOINT/);
  refused('FROM busybox', /FROM is not a valid change command/);
  refused('ENV', /ENV requires at least one argument/);
  refused('LABEL novalue', /LABEL names must be KEY=VALUE: "novalue"/);
  refused('EXPOSE http', /EXPOSE: invalid port "http"/);
  refused('EXPOSE 70000', /EXPOSE: invalid port "70000"/);
  refused('ENV A=${B', /missing '}'/);
  refused('ENV A="unterminated', /unterminated quote/);
  refused('CMD', /CMD requires at least one argument/);
  refused('STOPSIGNAL SIGNOPE', /STOPSIGNAL: invalid signal "SIGNOPE"/);
  assert.equal(applyCommitChanges({}, ['STOPSIGNAL 9']).StopSignal, '9');
  assert.deepEqual(applyCommitChanges({ Cmd: ['sh'] }, ['', '   ']), { Cmd: ['sh'] }, 'blank changes change nothing');
});

test('$VAR expands from the environment so far, not in single quotes nor in CMD; ENTRYPOINT drops the command unless CMD came first', () => {
  const base = { Env: ['PATH=/usr/bin:/bin', 'HOME=/root'], Cmd: ['sh'] };
  const out = applyCommitChanges(base, [
    'ENV PATH=/opt/bin:$PATH APP=${HOME}/app',
    "LABEL path=\"$PATH\" literal='$PATH' unset=${NOPE:-fallback} set=${HOME:+yes}",
    'WORKDIR $HOME/work',
    'ENV LEGACY at $HOME',
    'CMD echo $HOME',
  ]);
  assert.deepEqual(out.Env, ['PATH=/opt/bin:/usr/bin:/bin', 'HOME=/root', 'APP=/root/app', 'LEGACY=at /root']);
  assert.deepEqual(out.Labels, { path: '/opt/bin:/usr/bin:/bin', literal: '$PATH', unset: 'fallback', set: 'yes' });
  assert.equal(out.WorkingDir, '/root/work');
  assert.deepEqual(out.Cmd, ['/bin/sh', '-c', 'echo $HOME'], 'the shell expands CMD at run time');
  assert.equal(applyCommitChanges(base, ['ENTRYPOINT ["/app"]']).Cmd, undefined, "the container's sh does not become /app's argument");
  assert.deepEqual(applyCommitChanges(base, ['CMD ["--serve"]', 'ENTRYPOINT ["/app"]']).Cmd, ['--serve']);
});
