import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  addCreateFlags, buildCreateBody, buildHealthcheck, buildResources, foldAliases, parseCpus, parseDevice, parseKeyValueFile, parseMount, parsePortSpecs,
  parseRestartPolicy, parseUlimit, ramInBytes, type Deps, type RunFlags,
} from '../src/run-options.js';
import { UsageError } from '../src/usage-error.js';

const files: Record<string, string> = {
  '/f/env1': '# comment\n\nA=from-file\n  B=2\nHOME_ONLY\nUNSET_VAR\n',
  '/f/env2': 'A=second-file\nC=3\n',
  '/f/labels': 'team=infra\nbare\n',
  '/f/seccomp.json': '{ "defaultAction": "SCMP_ACT_ALLOW" }\n',
};
const deps: Deps = {
  env: { HOME_ONLY: '/root', FROM_CLIENT: 'yes' },
  readFile: (f) => {
    const text = files[f];
    if (text === undefined) throw new Error(`open ${f}: no such file or directory`);
    return text;
  },
  cwd: '/work',
};
const body = (flags: RunFlags, command: string[] = []) => buildCreateBody(flags, 'busybox', command, deps);

test('memory sizes follow docker RAMInBytes (binary units, fractions, bare bytes)', () => {
  assert.equal(ramInBytes('512m'), 512 * 1024 ** 2);
  assert.equal(ramInBytes('1g'), 1024 ** 3);
  assert.equal(ramInBytes('1.5g'), 1.5 * 1024 ** 3);
  assert.equal(ramInBytes('1024'), 1024);
  assert.equal(ramInBytes('64MiB'), 64 * 1024 ** 2);
  assert.equal(ramInBytes('10 KB'), 10240);
  for (const badSize of ['', 'x', '1x', '-1m', '1.2.3g']) assert.throws(() => ramInBytes(badSize), /invalid size/, badSize);
});

test('--cpus becomes NanoCpus; more than nine decimals is too precise', () => {
  assert.equal(parseCpus('1.5'), 1_500_000_000);
  assert.equal(parseCpus('2'), 2_000_000_000);
  assert.equal(parseCpus('0.000000001'), 1);
  assert.throws(() => parseCpus('0.0000000001'), /too precise/);
  assert.throws(() => parseCpus('one'), /rational number/);
});

test('resource flags map to HostConfig fields; absent flags stay absent', () => {
  assert.deepEqual(buildResources({ memory: '1g', memorySwap: '-1', memoryReservation: '256m', cpus: '0.5', cpuShares: '512', cpuQuota: '50000', cpuPeriod: '100000', cpusetCpus: '0-1', cpusetMems: '0', pidsLimit: '100', blkioWeight: '300' }), {
    Memory: 1024 ** 3, MemorySwap: -1, MemoryReservation: 256 * 1024 ** 2, NanoCpus: 500_000_000, CpuShares: 512,
    CpuQuota: 50000, CpuPeriod: 100000, CpusetCpus: '0-1', CpusetMems: '0', PidsLimit: 100, BlkioWeight: 300,
  });
  assert.deepEqual(buildResources({}), {});
  assert.throws(() => buildResources({ cpuShares: '1.5' }), (e: Error) => e instanceof UsageError && /"-c, --cpu-shares" flag/.test(e.message));
  assert.throws(() => buildResources({ memory: '12q' }), /invalid argument "12q" for "-m, --memory" flag: invalid size: '12q'/);
});

test('ulimits: soft[:hard], hard defaults to soft, names and order checked', () => {
  assert.deepEqual(parseUlimit('nofile=1024:2048'), { Name: 'nofile', Soft: 1024, Hard: 2048 });
  assert.deepEqual(parseUlimit('nproc=512'), { Name: 'nproc', Soft: 512, Hard: 512 });
  assert.deepEqual(parseUlimit('core=-1:-1'), { Name: 'core', Soft: -1, Hard: -1 });
  assert.throws(() => parseUlimit('nofile'), /invalid ulimit argument/);
  assert.throws(() => parseUlimit('files=1'), /invalid ulimit type: files/);
  assert.throws(() => parseUlimit('nofile=2048:1024'), /soft limit must be less than or equal to hard limit: 2048 > 1024/);
  assert.throws(() => parseUlimit('nofile=1:2:3'), /too many limit value arguments/);
  // The same name twice: the last one wins, as in docker's map.
  assert.deepEqual(body({ ulimit: ['nofile=1', 'nofile=2:3'] }).HostConfig.Ulimits, [{ Name: 'nofile', Soft: 2, Hard: 3 }]);
});

test('restart policies and their errors', () => {
  assert.deepEqual(parseRestartPolicy('no'), { Name: 'no' });
  assert.deepEqual(parseRestartPolicy('always'), { Name: 'always' });
  assert.deepEqual(parseRestartPolicy('unless-stopped'), { Name: 'unless-stopped' });
  assert.deepEqual(parseRestartPolicy('on-failure'), { Name: 'on-failure' });
  assert.deepEqual(parseRestartPolicy('on-failure:3'), { Name: 'on-failure', MaximumRetryCount: 3 });
  assert.throws(() => parseRestartPolicy('sometimes'), /unknown policy 'sometimes'/);
  assert.throws(() => parseRestartPolicy('always:3'), /cannot be used with restart policy 'always'/);
  assert.throws(() => parseRestartPolicy('on-failure:x'), /must be an integer/);
  assert.throws(() => parseRestartPolicy('on-failure:-1'), /cannot be negative/);
  assert.throws(() => parseRestartPolicy('on-failure:1:2'), /invalid restart policy format/);
  assert.deepEqual(body({}).HostConfig.RestartPolicy, { Name: 'no' });
  assert.throws(() => body({ restart: 'always', rm: true }), /Conflicting options: --restart and --rm/);
  assert.throws(() => body({ restart: 'bogus' }), /invalid argument "bogus" for "--restart" flag/);
});

test('-v binds go to Binds (./relative made absolute), anonymous volumes to Volumes', () => {
  const b = body({ volume: ['/data:/data', '/etc/hosts:/h:ro', './src:/src:rw,z', 'named:/n', '/anon'] });
  assert.deepEqual(b.HostConfig.Binds, ['/data:/data', '/etc/hosts:/h:ro', '/work/src:/src:rw,z', 'named:/n']);
  assert.deepEqual(b.Volumes, { '/anon': {} });
  assert.throws(() => body({ volume: ['/a:relative'] }), /invalid volume specification: '\/a:relative'/);
  assert.throws(() => body({ volume: ['/a:/b:rx'] }), /invalid mode: rx/);
  assert.throws(() => body({ volume: ['/a:/b:ro:x'] }), /invalid volume specification/);
});

test('--mount: bind and tmpfs specs, defaults and mixing errors', () => {
  assert.deepEqual(parseMount('type=bind,source=/src,target=/dst,readonly,bind-propagation=rshared'), {
    Type: 'bind', Source: '/src', Target: '/dst', ReadOnly: true, BindOptions: { Propagation: 'rshared' },
  });
  assert.deepEqual(parseMount('type=tmpfs,dst=/t,tmpfs-size=64m,tmpfs-mode=1770'), {
    Type: 'tmpfs', Target: '/t', TmpfsOptions: { SizeBytes: 64 * 1024 ** 2, Mode: 0o1770 },
  });
  assert.deepEqual(parseMount('src=vol,target=/v,ro=false'), { Type: 'volume', Source: 'vol', Target: '/v', ReadOnly: false });
  assert.throws(() => parseMount('type=bind,source=/a'), /target is required/);
  assert.throws(() => parseMount('type=bind,target=/a,tmpfs-size=1m'), /cannot mix 'tmpfs-\*' options with mount type 'bind'/);
  assert.throws(() => parseMount('type=bind,target=/a,colour=red'), /unexpected key 'colour'/);
  assert.throws(() => parseMount('type=bind,target'), /must be a key=value pair/);
  assert.throws(() => parseMount('type=nfs,target=/a'), /invalid mount type 'nfs'/);
  assert.deepEqual(body({ mount: ['type=bind,src=/a,dst=/b'] }).HostConfig.Mounts, [{ Type: 'bind', Source: '/a', Target: '/b' }]);
});

test('--tmpfs maps path to options', () => {
  assert.deepEqual(body({ tmpfs: ['/run', '/tmp:rw,size=64m,mode=1777'] }).HostConfig.Tmpfs, { '/run': '', '/tmp': 'rw,size=64m,mode=1777' });
  assert.throws(() => body({ tmpfs: ['run'] }), /"--tmpfs" flag/);
});

test('env: files in order, then -e; bare names take the client value or are dropped', () => {
  const b = body({ envFile: ['/f/env1', '/f/env2'], env: ['A=flag', 'FROM_CLIENT', 'NOT_SET_ANYWHERE', 'D='] });
  // A later entry wins in the runtime: -e A=flag overrides both files.
  assert.deepEqual(b.Env, ['A=from-file', 'B=2', 'HOME_ONLY=/root', 'A=second-file', 'C=3', 'A=flag', 'FROM_CLIENT=yes', 'NOT_SET_ANYWHERE', 'D=']);
  assert.throws(() => body({ envFile: ['/f/missing'] }), /invalid argument "\/f\/missing" for "--env-file" flag/);
  assert.throws(() => body({ env: ['=x'] }), /invalid environment variable/);
  assert.throws(() => parseKeyValueFile('BAD KEY=1\n', 'f'), /contains whitespaces/);
  assert.deepEqual(body({}).Env, undefined);
});

test('labels from -l and --label-file; a bare key has an empty value', () => {
  assert.deepEqual(body({ labelFile: ['/f/labels'], label: ['a=1', 'team=web', 'flag'] }).Labels, { team: 'web', bare: '', a: '1', flag: '' });
  assert.throws(() => body({ label: ['=x'] }), /empty name/);
});

test('entrypoint: a value replaces it, "" resets it to [""] as docker sends', () => {
  assert.deepEqual(body({ entrypoint: '/bin/sh -c' }).Entrypoint, ['/bin/sh -c']);
  assert.deepEqual(body({ entrypoint: '' }).Entrypoint, ['']);
  assert.equal(body({}).Entrypoint, undefined);
  assert.deepEqual(body({}, ['echo', 'hi']).Cmd, ['echo', 'hi']);
  assert.equal(body({}).Cmd, undefined);
});

test('devices: /dev/a, /dev/a:/dev/b, /dev/a:rw, /dev/a:/dev/b:rwm', () => {
  assert.deepEqual(parseDevice('/dev/fuse'), { PathOnHost: '/dev/fuse', PathInContainer: '/dev/fuse', CgroupPermissions: 'rwm' });
  assert.deepEqual(parseDevice('/dev/a:/dev/b'), { PathOnHost: '/dev/a', PathInContainer: '/dev/b', CgroupPermissions: 'rwm' });
  assert.deepEqual(parseDevice('/dev/a:r'), { PathOnHost: '/dev/a', PathInContainer: '/dev/a', CgroupPermissions: 'r' });
  assert.deepEqual(parseDevice('/dev/a:/dev/b:rw'), { PathOnHost: '/dev/a', PathInContainer: '/dev/b', CgroupPermissions: 'rw' });
  assert.throws(() => parseDevice('/dev/a:/dev/b:rwx'), /invalid device mode/);
  assert.throws(() => parseDevice('/dev/a:b:c:d'), /invalid device specification/);
  assert.throws(() => parseDevice('/dev/a:dev/b'), /not an absolute path/);
});

test('port specs: ExposedPorts and PortBindings like nat.ParsePortSpecs', () => {
  assert.deepEqual(parsePortSpecs(['80']), { exposed: ['80/tcp'], bindings: { '80/tcp': [{ HostIp: '', HostPort: '' }] } });
  assert.deepEqual(parsePortSpecs(['8080:80', '127.0.0.1:53:53/udp']).bindings, {
    '80/tcp': [{ HostIp: '', HostPort: '8080' }], '53/udp': [{ HostIp: '127.0.0.1', HostPort: '53' }],
  });
  assert.deepEqual(parsePortSpecs(['[::1]:8080:80']).bindings, { '80/tcp': [{ HostIp: '::1', HostPort: '8080' }] });
  assert.deepEqual(parsePortSpecs(['8000-8001:80-81']).bindings, {
    '80/tcp': [{ HostIp: '', HostPort: '8000' }], '81/tcp': [{ HostIp: '', HostPort: '8001' }],
  });
  assert.deepEqual(parsePortSpecs(['8000-8010:80']).bindings, { '80/tcp': [{ HostIp: '', HostPort: '8000-8010' }] });
  assert.deepEqual(parsePortSpecs(['127.0.0.1::80']).bindings, { '80/tcp': [{ HostIp: '127.0.0.1', HostPort: '' }] });
  assert.throws(() => parsePortSpecs(['8000-8002:80-81']), /invalid ranges/);
  assert.throws(() => parsePortSpecs(['80/icmp']), /invalid proto: icmp/);
  assert.throws(() => parsePortSpecs(['300.1.1.1:80:80']), /invalid IP address/);
  assert.throws(() => parsePortSpecs(['70000']), /invalid containerPort/);
  const b = body({ publish: ['8080:80'], expose: ['90-91/udp'] });
  assert.deepEqual(b.ExposedPorts, { '80/tcp': {}, '90/udp': {}, '91/udp': {} });
  assert.deepEqual(b.HostConfig.PortBindings, { '80/tcp': [{ HostIp: '', HostPort: '8080' }] });
});

test('the whole body: attach defaults, tty, stdin, host config flags, ExternalRootfs', () => {
  const b = body({
    name: 'web', interactive: true, tty: true, user: '1000:1000', workdir: '/srv', hostname: 'h', readOnly: true,
    privileged: true, capAdd: ['NET_ADMIN'], capDrop: ['ALL'], shmSize: '64m', init: true, runtime: 'runc',
    oomScoreAdj: '-500', oomKillDisable: true, securityOpt: ['no-new-privileges', 'seccomp=/f/seccomp.json'],
    sysctl: ['net.ipv4.ip_forward=1'], stopSignal: 'SIGINT', stopTimeout: '5', cgroupParent: '/isula',
    dns: ['8.8.8.8'], dnsOption: ['ndots:2'], dnsSearch: ['example.com'], addHost: ['db:10.0.0.2'],
    network: 'host', externalRootfs: '/rootfs', rm: true,
  }, ['sh']);
  assert.equal(b.Image, 'busybox');
  assert.deepEqual([b.AttachStdin, b.AttachStdout, b.AttachStderr, b.OpenStdin, b.StdinOnce, b.Tty], [true, true, true, true, true, true]);
  assert.deepEqual([b.User, b.WorkingDir, b.Hostname, b.StopSignal, b.StopTimeout], ['1000:1000', '/srv', 'h', 'SIGINT', 5]);
  const h = b.HostConfig;
  assert.deepEqual(h.SecurityOpt, ['no-new-privileges', 'seccomp={"defaultAction":"SCMP_ACT_ALLOW"}']);
  assert.equal(h.ReadonlyRootfs, true);
  assert.equal(h.Privileged, true);
  assert.equal(h.AutoRemove, true);
  assert.equal(h.ShmSize, 64 * 1024 ** 2);
  assert.equal(h.Init, true);
  assert.equal(h.OomScoreAdj, -500);
  assert.equal(h.OomKillDisable, true);
  assert.deepEqual(h.Sysctls, { 'net.ipv4.ip_forward': '1' });
  assert.deepEqual([h.Dns, h.DnsOptions, h.DnsSearch, h.ExtraHosts], [['8.8.8.8'], ['ndots:2'], ['example.com'], ['db:10.0.0.2']]);
  assert.equal(h.NetworkMode, 'host');
  assert.equal(h.ExternalRootfs, '/rootfs');
  assert.deepEqual([h.CapAdd, h.CapDrop, h.Runtime, h.CgroupParent], [['NET_ADMIN'], ['ALL'], 'runc', '/isula']);

  const plain = body({});
  assert.deepEqual([plain.AttachStdin, plain.AttachStdout, plain.AttachStderr, plain.OpenStdin, plain.Tty], [false, true, true, false, false]);
  assert.equal(plain.HostConfig.NetworkMode, 'default');
  assert.equal(plain.HostConfig.Init, undefined);
  assert.equal(plain.StopTimeout, undefined);
  const detached = body({ detach: true, interactive: true });
  assert.deepEqual([detached.AttachStdin, detached.AttachStdout, detached.AttachStderr, detached.OpenStdin, detached.StdinOnce], [false, false, false, true, false]);
  assert.deepEqual([body({ attach: ['STDERR'] }).AttachStdout, body({ attach: ['stderr'] }).AttachStderr], [false, true]);
  assert.throws(() => body({ attach: ['stdout'], detach: true }), /Conflicting options: -a and -d/);
  assert.throws(() => body({ attach: ['stdlog'] }), /valid streams are STDIN, STDOUT and STDERR/);
  assert.throws(() => body({ oomScoreAdj: '1001' }), /range for oom score adj is \[-1000, 1000\]/);
  assert.throws(() => body({ dns: ['8.8.8'] }), /IP address is not correctly formatted/);
  assert.throws(() => body({ addHost: ['db'] }), /bad format for add-host/);
  assert.throws(() => body({ securityOpt: ['seccomp=/f/nope.json'] }), /opening seccomp profile/);
});

test('health check flags build Config.Healthcheck as docker does (nanoseconds, only given fields)', () => {
  assert.equal(body({}).Healthcheck, undefined);
  assert.equal('Healthcheck' in body({}), false);
  assert.deepEqual(body({
    healthCmd: 'curl -f http://localhost/ || exit 1', healthInterval: '1m30s', healthTimeout: '500ms',
    healthStartPeriod: '10s', healthRetries: '3',
  }).Healthcheck, {
    Test: ['CMD-SHELL', 'curl -f http://localhost/ || exit 1'], Interval: 90e9, Timeout: 500e6, StartPeriod: 10e9, Retries: 3,
  });
  assert.deepEqual(body({ healthInterval: '30s' }).Healthcheck, { Interval: 30e9 });
  assert.deepEqual(body({ healthCmd: 'true', healthExitOnUnhealthy: true }).Healthcheck, { Test: ['CMD-SHELL', 'true'], ExitOnUnhealthy: true });
  assert.deepEqual(body({ noHealthcheck: true }).Healthcheck, { Test: ['NONE'] });
  // docker: zero values count as not given
  assert.equal(buildHealthcheck({ healthInterval: '0s', healthRetries: '0' }), undefined);
  assert.deepEqual(buildHealthcheck({ noHealthcheck: true, healthInterval: '0s' }), { Test: ['NONE'] });
});

test('health check flag errors use docker wording', () => {
  const err = (flags: RunFlags, re: RegExp) => assert.throws(() => body(flags), (e: unknown) => e instanceof UsageError && re.test((e as Error).message));
  err({ noHealthcheck: true, healthCmd: 'true' }, /^--no-healthcheck conflicts with --health-\* options$/);
  err({ noHealthcheck: true, healthRetries: '2' }, /^--no-healthcheck conflicts with --health-\* options$/);
  err({ noHealthcheck: true, healthExitOnUnhealthy: true }, /^--no-healthcheck conflicts with --health-\* options$/);
  err({ healthInterval: '-1s' }, /^--health-interval cannot be negative$/);
  err({ healthTimeout: '-5ms' }, /^--health-timeout cannot be negative$/);
  err({ healthStartPeriod: '-1m' }, /^--health-start-period cannot be negative$/);
  err({ healthRetries: '-1' }, /^--health-retries cannot be negative$/);
  err({ healthInterval: '30' }, /^invalid argument "30" for "--health-interval" flag: time: /);
  err({ healthRetries: 'x' }, /^invalid argument "x" for "--health-retries" flag: not an integer$/);
});

test('--no-healthcheck and --health-* parse through commander', async () => {
  const { Command } = await import('commander');
  const parse = (argv: string[]) => {
    const cmd = addCreateFlags(new Command('create').exitOverride()).argument('<image>');
    cmd.parse(argv, { from: 'user' });
    return foldAliases(cmd.opts());
  };
  assert.deepEqual(buildHealthcheck(parse(['--no-healthcheck', 'busybox'])), { Test: ['NONE'] });
  assert.equal(buildHealthcheck(parse(['busybox'])), undefined);
  assert.deepEqual(buildHealthcheck(parse(['--health-cmd', 'true', '--health-retries', '2', '--health-exit-on-unhealthy', 'busybox'])),
    { Test: ['CMD-SHELL', 'true'], Retries: 2, ExitOnUnhealthy: true });
});

test("iSulad's --hook-spec, --user-remap, --system-container, --ns-change-opt and the namespace flags reach HostConfig", async () => {
  const { Command } = await import('commander');
  const parse = (argv: string[]) => {
    const cmd = addCreateFlags(new Command('create').exitOverride()).argument('<image>');
    cmd.parse(argv, { from: 'user' });
    return foldAliases(cmd.opts());
  };
  const hc = body(parse(['--hook-spec', 'hooks/spec.json', '--user-remap', '100000:100000:65536', '--system-container', '--ns-change-opt', 'net,ipc', '--pid', 'host', '--ipc', 'shareable', '--uts', 'host', 'busybox'])).HostConfig;
  assert.equal(hc?.HookSpec, '/work/hooks/spec.json', "a relative hook spec is the client's, made absolute");
  assert.equal(hc?.UserRemap, '100000:100000:65536');
  assert.equal(hc?.SystemContainer, true);
  assert.equal(hc?.NsChangeOpt, 'net,ipc');
  assert.deepEqual([hc?.PidMode, hc?.IpcMode, hc?.UTSMode], ['host', 'shareable', 'host']);
  assert.equal(body(parse(['--hook-spec', '/abs/h.json', 'busybox'])).HostConfig?.HookSpec, '/abs/h.json');
  assert.equal(body(parse(['--userns', 'host', 'busybox'])).HostConfig?.UsernsMode, 'host');
  const plain = body(parse(['busybox'])).HostConfig ?? {};
  for (const key of ['HookSpec', 'UserRemap', 'UsernsMode', 'SystemContainer', 'NsChangeOpt', 'PidMode']) assert.ok(!(key in plain), `${key} absent unless given`);
});
