/**
 * The CRI server end to end: a real isulad with @isula/cri, runc, conmon and
 * the CNI plugins, driven by a grpc-js client over the CRI socket with the
 * package's own protos, in both runtime.v1 and runtime.v1alpha2.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import { mountsUnder, processesMatching } from '../lib/containers.js';
import { freePort, pushTestImage, registrySkip, startRegistry } from '../lib/registry.js';
import { waitFor } from '../lib/harness.js';
import { CRI_TOOLS, criClient, criDaemon as startCriDaemon, type Msg } from '../lib/cri-daemon.js';
import { cniPrerequisites } from '../lib/net-daemon.js';
import { claimSubnetSlot } from '../lib/subnets.js';

const run = promisify(execFile);

const skip = await cniPrerequisites('CRI tests', CRI_TOOLS);

/** Per test process, so parallel runs never share (or remove) each other's. */
const CGROUP_PARENT = `isula-cri-test-${process.pid}`;
const criDaemon = (t: { after(fn: () => Promise<void>): void }, config: Record<string, unknown> = {}) =>
  startCriDaemon(t, { bridgePrefix: 'iscr', subnet: `10.241.${claimSubnetSlot()}.0/24`, cgroupParent: CGROUP_PARENT, config });

function podConfig(name: string, logDir: string, extra: Msg = {}): Msg {
  return {
    metadata: { name, uid: `uid-${name}-${randomBytes(4).toString('hex')}`, namespace: 'default', attempt: 0 },
    hostname: `${name}-host`,
    log_directory: path.join(logDir, name),
    dns_config: { servers: ['10.0.0.53'], searches: ['svc.cluster.local'], options: ['ndots:5'] },
    labels: { app: name, tier: 'test' },
    annotations: { 'example.com/note': 'hi' },
    linux: { cgroup_parent: `/${CGROUP_PARENT}`, security_context: { namespace_options: { network: 'POD', pid: 'CONTAINER', ipc: 'POD' } } },
    ...extra,
  };
}

async function nsOf(pid: number, kind: string): Promise<string> {
  return fs.readlink(`/proc/${pid}/ns/${kind}`);
}

test('CRI: version, status and images in v1 and v1alpha2 on one socket', { skip }, async (t) => {
  const { d, v1, v1alpha2 } = await criDaemon(t);
  const ver = await v1.runtime['Version']!({ version: 'v1' });
  assert.equal(ver['runtime_name'], 'isulad');
  assert.equal(ver['runtime_api_version'], 'v1');
  assert.equal((await v1alpha2.runtime['Version']!({}))['runtime_api_version'], 'v1alpha2');

  const st = await v1.runtime['Status']!({ verbose: true }) as { status: { conditions: { type: string; status: boolean }[] }; info: Record<string, string> };
  assert.deepEqual(st.status.conditions.map((c) => [c.type, c.status]), [['RuntimeReady', true], ['NetworkReady', true]]);
  assert.ok(st.info['config'] !== undefined);
  assert.equal((await v1.runtime['RuntimeConfig']!({}) as { linux: { cgroup_driver: string } }).linux.cgroup_driver, 'CGROUPFS');
  await v1.runtime['UpdateRuntimeConfig']!({ runtime_config: { network_config: { pod_cidr: '10.244.0.0/16' } } });

  const list = await v1.image['ListImages']!({}) as { images: { id: string; repo_tags: string[]; size: string }[] };
  const busybox = list.images.find((i) => i.repo_tags.some((tg) => tg.includes('busybox')));
  assert.ok(busybox, JSON.stringify(list));
  assert.ok(Number(busybox.size) > 0);
  const filtered = await v1.image['ListImages']!({ filter: { image: { image: 'busybox' } } }) as { images: { id: string }[] };
  assert.deepEqual(filtered.images.map((i) => i.id), [busybox.id]);
  const status = await v1alpha2.image['ImageStatus']!({ image: { image: 'busybox:latest' }, verbose: true }) as { image: { id: string; username: string } | null; info: Record<string, string> };
  assert.equal(status.image?.id, busybox.id);
  assert.ok(JSON.parse(status.info['info'] ?? '{}').imageSpec !== undefined);
  const missing = await v1.image['ImageStatus']!({ image: { image: 'no-such-image:latest' } });
  assert.equal(missing['image'], null);
  const fs1 = await v1.image['ImageFsInfo']!({}) as { image_filesystems: { used_bytes: { value: string } }[] };
  assert.ok(Number(fs1.image_filesystems[0]?.used_bytes.value) > 0);
  // Removing an image that is not there is not an error (idempotent).
  await v1.image['RemoveImage']!({ image: { image: 'no-such-image:latest' } });
  // A pull from a registry that is not there fails with a status, not a hang.
  await assert.rejects(v1.image['PullImage']!({ image: { image: '127.0.0.1:1/nothing:latest' }, auth: { username: 'u', password: 'p' } }, { deadlineMs: 30_000 }), (e: grpc.ServiceError) => e.code !== grpc.status.OK);
  // Bad input gets a clear status and leaves nothing behind.
  await assert.rejects(v1.runtime['RunPodSandbox']!({ config: podConfig('bad', path.join(os.tmpdir(), 'isula-cri-unused')), runtime_handler: 'no-such-handler' }), (e: grpc.ServiceError) => e.code === grpc.status.NOT_FOUND);
  await assert.rejects(v1.runtime['CreateContainer']!({ pod_sandbox_id: 'f'.repeat(64), config: { metadata: { name: 'c' }, image: { image: 'busybox' } } }), (e: grpc.ServiceError) => e.code === grpc.status.NOT_FOUND);
  await assert.rejects(v1.runtime['StartContainer']!({ container_id: 'nope' }), (e: grpc.ServiceError) => e.code === grpc.status.NOT_FOUND);
  await assert.rejects(v1.runtime['ExecSync']!({ container_id: 'nope', cmd: ['true'] }), (e: grpc.ServiceError) => e.code === grpc.status.NOT_FOUND);
  assert.deepEqual((await v1.runtime['ListPodSandbox']!({}))['items'], []);
  assert.equal((await d.isula(['ps', '-aq'])).stdout.trim(), '');
  // An exec into an unknown container gets no streaming URL.
  await assert.rejects(v1.runtime['Exec']!({ container_id: 'x', cmd: ['sh'] }), (e: grpc.ServiceError) => e.code === grpc.status.NOT_FOUND);
});

test('CRI: a pod life cycle — sandbox, container sharing its namespaces, exec sync, CRI log, stats, stop, remove', { skip }, async (t) => {
  const { d, v1, v1alpha2, logDir, subnet } = await criDaemon(t);
  const rt = v1.runtime;
  const hostPort = await freePort();
  const cfg = podConfig('web', logDir, { port_mappings: [{ protocol: 'TCP', container_port: 8080, host_port: hostPort, host_ip: '' }] });
  (cfg['linux'] as Msg)['sysctls'] = { 'net.ipv4.ip_unprivileged_port_start': '80' };
  const { pod_sandbox_id: podId } = await rt['RunPodSandbox']!({ config: cfg }, { deadlineMs: 90_000 }) as { pod_sandbox_id: string };
  assert.match(podId, /^[0-9a-f]{64}$/);
  t.after(async () => { await rt['RemovePodSandbox']!({ pod_sandbox_id: podId }).catch(() => undefined); });

  const ps = await rt['PodSandboxStatus']!({ pod_sandbox_id: podId, verbose: true }) as { status: { state: string; network: { ip: string }; labels: Record<string, string>; metadata: { name: string } }; info: Record<string, string> };
  assert.equal(ps.status.state, 'SANDBOX_READY');
  assert.equal(ps.status.metadata.name, 'web');
  assert.deepEqual(ps.status.labels, { app: 'web', tier: 'test' });
  const prefix = subnet.split('.').slice(0, 3).join('.');
  assert.ok(ps.status.network.ip.startsWith(`${prefix}.`), `pod IP ${ps.status.network.ip} in ${subnet}`);
  const sandboxPid = JSON.parse(ps.info['info'] ?? '{}').pid as number;
  assert.ok(sandboxPid > 0);
  // The pause process is the host's catatonit, in the pod's cgroup parent.
  assert.match(await fs.readFile(`/proc/${sandboxPid}/cmdline`, 'utf8'), /^\/pause\0-P\0$/);
  assert.ok((await fs.readFile(`/proc/${sandboxPid}/cgroup`, 'utf8')).includes(`memory:/${CGROUP_PARENT}/`));
  // PLATFORM §10: the sandbox's -998 was raised to the daemon's own oom_score_adj, so the pod started.
  assert.ok(Number((await fs.readFile(`/proc/${sandboxPid}/oom_score_adj`, 'utf8')).trim()) >= Number((await fs.readFile('/proc/self/oom_score_adj', 'utf8')).trim()) - 0);

  const sel = await rt['ListPodSandbox']!({ filter: { label_selector: { app: 'web' } } }) as { items: { id: string }[] };
  assert.deepEqual(sel.items.map((i) => i.id), [podId]);
  assert.equal((await rt['ListPodSandbox']!({ filter: { label_selector: { app: 'other' } } }) as { items: unknown[] }).items.length, 0);
  assert.deepEqual((await v1alpha2.runtime['ListPodSandbox']!({ filter: { id: podId.slice(0, 12) } }) as { items: { id: string }[] }).items.map((i) => i.id), [podId]);

  // The kubelet's evented PLEG: container events with the pod's and the container's status.
  const events: { container_id: string; container_event_type: string; pod_sandbox_status: { id: string } | null; containers_statuses: { state: string }[] }[] = [];
  const stream = v1.events();
  stream.on('data', (e: (typeof events)[number]) => events.push(e));
  stream.on('error', () => undefined);
  t.after(() => { stream.cancel(); return Promise.resolve(); });
  const dataDir = path.join(logDir, '..', 'data');
  await fs.mkdir(dataDir, { recursive: true });
  await fs.writeFile(path.join(dataDir, 'hello.txt'), 'from the host\n');
  const ccfg = {
    metadata: { name: 'app', attempt: 1 },
    image: { image: 'busybox' },
    command: ['sh', '-c'],
    args: ['echo hello; echo oops >&2; exec sleep 1000'],
    // KeyValue.value is bytes in the v1 reference.
    envs: [{ key: 'GREETING', value: Buffer.from('hi there') }],
    labels: { role: 'main' },
    log_path: 'app/1.log',
    mounts: [{ host_path: dataDir, container_path: '/data', readonly: true, propagation: 'PROPAGATION_HOST_TO_CONTAINER' }],
    devices: [{ host_path: '/dev/null', container_path: '/dev/cri-null', permissions: 'rwm' }],
    linux: { resources: { memory_limit_in_bytes: String(64 * 1024 * 1024), cpu_shares: '512' }, security_context: { readonly_rootfs: true, masked_paths: ['/proc/kcore', '/proc/version'], readonly_paths: ['/proc/sys'] } },
  };
  // A log path that leaves the pod's log directory is refused, and nothing is created.
  for (const bad of ['../../escaped.log', '/tmp/escaped.log']) {
    await assert.rejects(rt['CreateContainer']!({ pod_sandbox_id: podId, config: { ...ccfg, metadata: { name: 'escape', attempt: 0 }, log_path: bad }, sandbox_config: cfg }),
      (e: grpc.ServiceError) => e.code === grpc.status.INVALID_ARGUMENT && e.details.includes('leaves the pod\'s log directory'), bad);
  }
  assert.deepEqual((await rt['ListContainers']!({ filter: { pod_sandbox_id: podId } }) as { containers: unknown[] }).containers, [], 'nothing half-created');
  const { container_id: cid } = await rt['CreateContainer']!({ pod_sandbox_id: podId, config: ccfg, sandbox_config: cfg }) as { container_id: string };
  let cs = await rt['ContainerStatus']!({ container_id: cid }) as { status: Msg; info?: Record<string, string> };
  assert.equal(cs.status['state'], 'CONTAINER_CREATED');
  await rt['StartContainer']!({ container_id: cid });
  cs = await rt['ContainerStatus']!({ container_id: cid, verbose: true }) as { status: Msg; info?: Record<string, string> };
  assert.equal(cs.status['state'], 'CONTAINER_RUNNING');
  assert.equal(cs.status['log_path'], path.join(logDir, 'web', 'app/1.log'));
  assert.deepEqual((cs.status['metadata'] as Msg), { name: 'app', attempt: 1 });
  const cpid = JSON.parse(cs.info?.['info'] ?? '{}').pid as number;
  // One pod: the container is in the sandbox's network, IPC and UTS namespaces, and its own PID one.
  for (const kind of ['net', 'ipc', 'uts']) assert.equal(await nsOf(cpid, kind), await nsOf(sandboxPid, kind), kind);
  assert.notEqual(await nsOf(cpid, 'pid'), await nsOf(sandboxPid, 'pid'));

  const listed = await rt['ListContainers']!({ filter: { pod_sandbox_id: podId, label_selector: { role: 'main' }, state: { state: 'CONTAINER_RUNNING' } } }) as { containers: { id: string; image: { image: string } }[] };
  assert.deepEqual(listed.containers.map((c) => c.id), [cid]);
  assert.equal(listed.containers[0]?.image.image, 'busybox');

  // ExecSync: output, exit code, the pod's hostname and DNS, and the timeout.
  const ex = await rt['ExecSync']!({ container_id: cid, cmd: ['sh', '-c', 'echo "$GREETING"; hostname; cat /etc/resolv.conf; echo bad >&2; exit 3'], timeout: '10' }) as { stdout: Buffer; stderr: Buffer; exit_code: number };
  assert.equal(ex.exit_code, 3);
  const out = ex.stdout.toString();
  assert.match(out, /^hi there\nweb-host\n/);
  assert.match(out, /nameserver 10\.0\.0\.53/);
  assert.match(out, /search svc\.cluster\.local/);
  assert.match(out, /options ndots:5/);
  assert.equal(ex.stderr.toString(), 'bad\n');
  const ro = await rt['ExecSync']!({ container_id: cid, cmd: ['touch', '/probe'], timeout: '10' }) as { stderr: Buffer; exit_code: number };
  assert.notEqual(ro.exit_code, 0);
  assert.match(ro.stderr.toString(), /Read-only file system/);
  // The host directory, read-only and rslave, and the device.
  const mnt = await rt['ExecSync']!({ container_id: cid, cmd: ['sh', '-c', 'cat /data/hello.txt; touch /data/x 2>&1; test -c /dev/cri-null && echo chardev; grep " /data " /proc/self/mountinfo'], timeout: '10' }) as { stdout: Buffer };
  const mntOut = mnt.stdout.toString();
  assert.match(mntOut, /^from the host\n/);
  assert.match(mntOut, /Read-only file system/);
  assert.match(mntOut, /chardev/);
  // (rslave shows no master here: the host's mounts are private on these machines.)
  assert.match(mntOut, / \/data ro,/);
  // The pod's sysctl (set in the sandbox's network namespace) and the container's masked paths.
  const probe = await rt['ExecSync']!({ container_id: cid, cmd: ['sh', '-c', 'cat /proc/sys/net/ipv4/ip_unprivileged_port_start; wc -c < /proc/version'], timeout: '10' }) as { stdout: Buffer };
  assert.deepEqual(probe.stdout.toString().split('\n').map((l) => l.trim()), ['80', '0', '']);
  // Looked for in the container's own cgroup: other suites on this machine may run a `sleep 30` too.
  const sleeping = async () => {
    const pids = (await fs.readFile(`/sys/fs/cgroup/pids/${CGROUP_PARENT}/${cid}/cgroup.procs`, 'utf8')).split('\n').filter(Boolean);
    const cmds = await Promise.all(pids.map((p) => fs.readFile(`/proc/${p}/cmdline`, 'utf8').catch(() => '')));
    return cmds.filter((c) => c === 'sleep\u000030\u0000').length;
  };
  const began = Date.now();
  const timedOut = rt['ExecSync']!({ container_id: cid, cmd: ['sleep', '30'], timeout: '1' });
  timedOut.catch(() => undefined);
  await waitFor(async () => (await sleeping()) === 1, { timeoutMs: 5000, what: 'the exec to run' });
  await assert.rejects(timedOut, (e: grpc.ServiceError) => e.code === grpc.status.DEADLINE_EXCEEDED);
  assert.ok(Date.now() - began < 10_000);
  await waitFor(async () => (await sleeping()) === 0, { timeoutMs: 5000, what: 'the timed-out exec to be killed' });

  // The log at the kubelet's path, in the CRI format.
  const logFile = path.join(logDir, 'web', 'app/1.log');
  const log = await waitFor(async () => {
    const text = await fs.readFile(logFile, 'utf8').catch(() => '');
    return text.includes('stderr F oops') ? text : undefined;
  }, { timeoutMs: 5000, what: 'the CRI log' });
  assert.match(log, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+[+-]\d\d:\d\d stdout F hello$/m);
  assert.match(log, /stderr F oops$/m);

  // A seccomp profile of the node's (Localhost): everything but mkdir.
  const profile = path.join(dataDir, 'no-mkdir.json');
  await fs.writeFile(profile, JSON.stringify({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['mkdir', 'mkdirat'], action: 'SCMP_ACT_ERRNO' }] }));
  // A second container of the pod serves on the pod's address; the pod's port mapping reaches it
  // from the host, and it sees the pod's files (hostname) as the first one does.
  const { container_id: web } = await rt['CreateContainer']!({
    pod_sandbox_id: podId,
    config: {
      metadata: { name: 'httpd' }, image: { image: 'busybox' }, command: ['sh', '-c', 'exec httpd -f -p 8080 -h /etc'], log_path: 'httpd/0.log',
      linux: { security_context: { seccomp: { profile_type: 'Localhost', localhost_ref: profile } } },
    },
    sandbox_config: cfg,
  }) as { container_id: string };
  await rt['StartContainer']!({ container_id: web });
  const body = await waitFor(async () => (await fetch(`http://127.0.0.1:${hostPort}/hostname`, { signal: AbortSignal.timeout(2000) }).then((r) => r.text()).catch(() => undefined)), { timeoutMs: 10_000, what: 'httpd through the pod port mapping' });
  assert.equal(body, 'web-host\n');
  const fromApp = await rt['ExecSync']!({ container_id: cid, cmd: ['wget', '-q', '-O', '-', 'http://127.0.0.1:8080/hostname'], timeout: '10' }) as { stdout: Buffer };
  assert.equal(fromApp.stdout.toString(), 'web-host\n', 'containers of a pod share localhost');
  const noMkdir = await rt['ExecSync']!({ container_id: web, cmd: ['mkdir', '/tmp/d'], timeout: '10' }) as { stderr: Buffer; exit_code: number };
  assert.notEqual(noMkdir.exit_code, 0);
  assert.match(noMkdir.stderr.toString(), /Operation not permitted/);
  // One /dev/shm for the pod (a tmpfs on the host), as its IPC namespace is one.
  await rt['ExecSync']!({ container_id: cid, cmd: ['sh', '-c', 'echo shared-memory > /dev/shm/probe'], timeout: '10' });
  const shm = await rt['ExecSync']!({ container_id: web, cmd: ['cat', '/dev/shm/probe'], timeout: '10' }) as { stdout: Buffer };
  assert.equal(shm.stdout.toString(), 'shared-memory\n');
  assert.equal((await mountsUnder(path.join(d.state, 'cri', 'shm'))).length, 1);
  await rt['UpdateContainerResources']!({ container_id: web, linux: { memory_limit_in_bytes: String(96 * 1024 * 1024) } });
  const webStatus = await rt['ContainerStatus']!({ container_id: web }) as { status: { resources: { linux: { memory_limit_in_bytes: string } } } };
  assert.equal(webStatus.status.resources.linux.memory_limit_in_bytes, String(96 * 1024 * 1024));
  await rt['StopContainer']!({ container_id: web, timeout: '2' });
  await rt['RemoveContainer']!({ container_id: web });

  // ReopenContainerLog: the kubelet moved the log away; the monitor opens a new one at the path
  // (UNIMPLEMENTED while the runtime driver lacks the optional reopenLog of plugin API 1.6).
  await fs.rename(logFile, `${logFile}.rotated`);
  const reopened = await rt['ReopenContainerLog']!({ container_id: cid }).then(() => true, (e: grpc.ServiceError) => {
    assert.equal(e.code, grpc.status.UNIMPLEMENTED, e.message);
    return false;
  });
  if (reopened) await waitFor(() => fs.stat(logFile).then(() => true, () => false), { timeoutMs: 5000, what: 'the reopened log' });
  else await fs.rename(`${logFile}.rotated`, logFile);

  const stats = await rt['ContainerStats']!({ container_id: cid }) as { stats: { cpu: { usage_core_nano_seconds: { value: string } }; memory: { working_set_bytes: { value: string } } } };
  assert.ok(Number(stats.stats.memory.working_set_bytes.value) > 0);
  assert.ok(Number(stats.stats.cpu.usage_core_nano_seconds.value) >= 0);
  assert.equal((await rt['ListContainerStats']!({ filter: { pod_sandbox_id: podId } }) as { stats: unknown[] }).stats.length, 1);

  const podStats = await rt['PodSandboxStats']!({ pod_sandbox_id: podId }) as { stats: { linux: { memory: { usage_bytes: { value: string } }; containers: unknown[] } } };
  assert.ok(Number(podStats.stats.linux.memory.usage_bytes.value) > 0);
  assert.equal(podStats.stats.linux.containers.length, 1);
  assert.equal((await rt['ListPodSandboxStats']!({ filter: { label_selector: { app: 'web' } } }) as { stats: unknown[] }).stats.length, 1);

  // StopContainer with timeout 0: SIGKILL at once; the status says why it exited.
  await rt['StopContainer']!({ container_id: cid, timeout: '0' });
  cs = await rt['ContainerStatus']!({ container_id: cid }) as { status: Msg };
  assert.equal(cs.status['state'], 'CONTAINER_EXITED');
  assert.equal(cs.status['exit_code'], 137);
  assert.equal(cs.status['reason'], 'Error');
  assert.ok(BigInt(cs.status['finished_at'] as string) >= BigInt(cs.status['started_at'] as string));

  const mine = await waitFor(() => {
    const got = events.filter((e) => e.container_id === cid).map((e) => e.container_event_type);
    return got.includes('CONTAINER_STOPPED_EVENT') ? got : undefined;
  }, { timeoutMs: 5000, what: 'the container events' });
  assert.deepEqual(mine, ['CONTAINER_CREATED_EVENT', 'CONTAINER_STARTED_EVENT', 'CONTAINER_STOPPED_EVENT']);
  const started = events.find((e) => e.container_id === cid && e.container_event_type === 'CONTAINER_STARTED_EVENT');
  assert.equal(started?.pod_sandbox_status?.id, podId);
  assert.equal(started?.containers_statuses[0]?.state, 'CONTAINER_RUNNING');

  await rt['StopPodSandbox']!({ pod_sandbox_id: podId });
  assert.equal((await rt['PodSandboxStatus']!({ pod_sandbox_id: podId }) as { status: { state: string } }).status.state, 'SANDBOX_NOTREADY');
  await rt['RemovePodSandbox']!({ pod_sandbox_id: podId });
  await rt['RemovePodSandbox']!({ pod_sandbox_id: podId });
  await assert.rejects(rt['PodSandboxStatus']!({ pod_sandbox_id: podId }), (e: grpc.ServiceError) => e.code === grpc.status.NOT_FOUND);
  assert.equal((await rt['ListContainers']!({}) as { containers: unknown[] }).containers.length, 0);
  assert.equal((await d.isula(['ps', '-aq'])).stdout.trim(), '');
  assert.deepEqual(await processesMatching(podId), []);
  assert.deepEqual(await mountsUnder(path.join(d.state, 'cri')), []);
});

test('CRI (v1alpha2): a hostNetwork pod with a shared PID namespace and a locked-down container survives kill -9 of isulad', { skip }, async (t) => {
  const { d, v1alpha2: api, logDir, socket } = await criDaemon(t);
  const rt = api.runtime;
  const cfg = podConfig('hostnet', logDir, {
    dns_config: null,
    linux: { cgroup_parent: `/${CGROUP_PARENT}`, security_context: { namespace_options: { network: 'NODE', pid: 'POD', ipc: 'POD' } } },
  });
  const { pod_sandbox_id: podId } = await rt['RunPodSandbox']!({ config: cfg }, { deadlineMs: 90_000 }) as { pod_sandbox_id: string };
  const ps = await rt['PodSandboxStatus']!({ pod_sandbox_id: podId, verbose: true }) as { status: { state: string; linux: { namespaces: { options: Msg } } }; info: Record<string, string> };
  assert.equal(ps.status.state, 'SANDBOX_READY');
  const nsOpts = ps.status.linux.namespaces.options;
  assert.deepEqual([nsOpts['network'], nsOpts['pid'], nsOpts['ipc']], ['NODE', 'POD', 'POD']);
  const sandboxPid = JSON.parse(ps.info['info'] ?? '{}').pid as number;
  assert.equal(await nsOf(sandboxPid, 'net'), await fs.readlink('/proc/self/ns/net'));

  const ccfg = {
    metadata: { name: 'locked', attempt: 0 },
    image: { image: 'busybox' },
    command: ['sleep', '1000'],
    log_path: 'locked/0.log',
    linux: {
      security_context: {
        run_as_user: { value: '65534' },
        supplemental_groups: ['1234'],
        no_new_privs: true,
        // DAC_OVERRIDE: the image store mounts the rootfs' / as 0750 (an image-oci matter), which a
        // non-root user without it cannot traverse.
        capabilities: { drop_capabilities: ['ALL'], add_capabilities: ['NET_BIND_SERVICE', 'CAP_DAC_OVERRIDE'] },
        seccomp: { profile_type: 'RuntimeDefault' },
        namespace_options: { network: 'NODE', pid: 'POD', ipc: 'POD' },
      },
    },
  };
  const { container_id: cid } = await rt['CreateContainer']!({ pod_sandbox_id: podId, config: ccfg, sandbox_config: cfg }) as { container_id: string };
  await rt['StartContainer']!({ container_id: cid });
  // Each check is a direct exec (not through sh): a non-root process loses its capabilities at
  // execve, and the test image's / (0750) then stops a shell's child.
  const exec = async (...cmd: string[]) => {
    const r = await rt['ExecSync']!({ container_id: cid, cmd, timeout: '10' }) as { stdout: Buffer; stderr: Buffer; exit_code: number };
    return { out: r.stdout.toString(), err: r.stderr.toString(), code: r.exit_code };
  };
  assert.equal((await exec('id', '-u')).out, '65534\n');
  assert.match((await exec('id', '-G')).out, /\b1234\b/);
  // The rest is read on the host: this user cannot read /proc/self/* in the container.
  const cs0 = await rt['ContainerStatus']!({ container_id: cid, verbose: true }) as { info: Record<string, string> };
  const cpid = JSON.parse(cs0.info['info'] ?? '{}').pid as number;
  const status = await fs.readFile(`/proc/${cpid}/status`, 'utf8');
  assert.match(status, /NoNewPrivs:\s+1/);
  // CAP_DAC_OVERRIDE (bit 1) and CAP_NET_BIND_SERVICE (bit 10) alone in the bounding set.
  assert.match(status, /CapBnd:\s+0000000000000402/);
  assert.match(status, /Seccomp:\s+2/);
  assert.match(status, /Groups:.*\b1234\b/);
  // The pod's PID namespace: the container shares it, and the pause process is its PID 1.
  assert.equal(await nsOf(cpid, 'pid'), await nsOf(sandboxPid, 'pid'));
  assert.match(await fs.readFile(`/proc/${sandboxPid}/status`, 'utf8'), /NSpid:\s+\d+\s+1\n/);
  assert.equal((await exec('hostname')).out, `${os.hostname()}\n`);

  // kill -9 of the daemon: the pod and its container keep running, and come back after the restart.
  d.proc?.kill('SIGKILL');
  await d.exit;
  // As if the daemon had died between mounting a pod's /dev/shm and creating its sandbox.
  const stray = path.join(d.state, 'cri', 'shm', 'stray');
  await fs.mkdir(stray, { recursive: true });
  await run('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'shm', stray]);
  await d.start();
  const after = criClient(socket, 'v1alpha2');
  t.after(() => { after.close(); return Promise.resolve(); });
  await waitFor(async () => (await after.runtime['Version']!({}).catch(() => undefined)) !== undefined, { timeoutMs: 10_000, what: 'the CRI socket after the restart' });
  // The stray tmpfs is gone; the live pod's stays.
  assert.equal((await mountsUnder(path.join(d.state, 'cri', 'shm'))).length, 1);
  await assert.rejects(fs.stat(stray), { code: 'ENOENT' });
  const pods = await after.runtime['ListPodSandbox']!({ filter: { state: { state: 'SANDBOX_READY' } } }) as { items: { id: string }[] };
  assert.deepEqual(pods.items.map((p) => p.id), [podId]);
  const cs = await after.runtime['ContainerStatus']!({ container_id: cid }) as { status: { state: string; log_path: string } };
  assert.equal(cs.status.state, 'CONTAINER_RUNNING');
  assert.equal(cs.status.log_path, path.join(logDir, 'hostnet', 'locked/0.log'));
  const again = await after.runtime['ExecSync']!({ container_id: cid, cmd: ['id', '-u'], timeout: '10' }) as { stdout: Buffer };
  assert.equal(again.stdout.toString(), '65534\n');

  await after.runtime['StopPodSandbox']!({ pod_sandbox_id: podId });
  const stopped = await after.runtime['ContainerStatus']!({ container_id: cid }) as { status: { state: string } };
  assert.equal(stopped.status.state, 'CONTAINER_EXITED');
  await after.runtime['RemovePodSandbox']!({ pod_sandbox_id: podId });
  assert.equal((await d.isula(['ps', '-aq'])).stdout.trim(), '');
  assert.deepEqual(await mountsUnder(path.join(d.state, 'cri')), []);
});

test('CRI: PullImage from a per-host mirror under the original name, and with AuthConfig from a registry with basic auth; ImageStatus by id; RemoveImage', { skip: skip || (await registrySkip()) }, async (t) => {
  const creds = { username: 'kube', password: 'let-me-pull-9' };
  const reg = await startRegistry(t, { htpasswd: creds });
  await pushTestImage(reg, { image: 'shared', repo: 'private/shared', creds });
  // An offline node: registry.k8s.io names are served by a mirror on 127.0.0.1 and keep their names.
  const mirror = await startRegistry(t);
  await pushTestImage(mirror, { image: 'busybox', repo: 'e2e/busybox', tag: '1.35' });
  const { v1 } = await criDaemon(t, { 'registry-stall-timeout': '2s', 'registry-mirrors-by-host': { 'registry.k8s.io': [mirror.url] } });
  const mirrored = await v1.image['PullImage']!({ image: { image: 'registry.k8s.io/e2e/busybox:1.35' } }, { deadlineMs: 60_000 }) as { image_ref: string };
  const viaName = await v1.image['ImageStatus']!({ image: { image: 'registry.k8s.io/e2e/busybox:1.35' } }) as { image: { id: string; repo_tags: string[] } | null };
  assert.equal(viaName.image?.id, mirrored.image_ref);
  assert.ok(viaName.image?.repo_tags.includes('registry.k8s.io/e2e/busybox:1.35'), JSON.stringify(viaName.image));

  const name = `${reg.host}/private/shared:latest`;
  await assert.rejects(v1.image['PullImage']!({ image: { image: name } }), (e: grpc.ServiceError) => e.code === grpc.status.UNAUTHENTICATED);
  await assert.rejects(v1.image['PullImage']!({ image: { image: name }, auth: { username: 'kube', password: 'wrong' } }), (e: grpc.ServiceError) => e.code === grpc.status.UNAUTHENTICATED);
  // The kubelet sends the docker config's base64 "auth" as often as the split fields.
  const pulled = await v1.image['PullImage']!({ image: { image: name }, auth: { auth: Buffer.from(`${creds.username}:${creds.password}`).toString('base64'), server_address: reg.host } }, { deadlineMs: 60_000 }) as { image_ref: string };
  assert.match(pulled.image_ref, /^sha256:[0-9a-f]{64}$/);
  const byId = await v1.image['ImageStatus']!({ image: { image: pulled.image_ref } }) as { image: { id: string; repo_tags: string[]; repo_digests: string[] } | null };
  assert.equal(byId.image?.id, pulled.image_ref);
  assert.ok(byId.image?.repo_tags.includes(name), JSON.stringify(byId.image));
  assert.equal(byId.image?.repo_digests.length, 1);
  await v1.image['RemoveImage']!({ image: { image: name } });
  assert.equal((await v1.image['ImageStatus']!({ image: { image: pulled.image_ref } }))['image'], null);
});

test('CRI: pods started at once (the first ones racing to build the pause image) all run, each with its own address', { skip }, async (t) => {
  const { v1, logDir, d } = await criDaemon(t);
  const rt = v1.runtime;
  const n = 3;
  const ids = await Promise.all(Array.from({ length: n }, async (_, i) => {
    const cfg = podConfig(`par${i}`, logDir);
    const { pod_sandbox_id: podId } = await rt['RunPodSandbox']!({ config: cfg }, { deadlineMs: 120_000 }) as { pod_sandbox_id: string };
    const { container_id: cid } = await rt['CreateContainer']!({ pod_sandbox_id: podId, config: { metadata: { name: 'c' }, image: { image: 'busybox' }, command: ['sleep', '1000'], log_path: 'c/0.log' }, sandbox_config: cfg }) as { container_id: string };
    await rt['StartContainer']!({ container_id: cid });
    return podId;
  }));
  const ips = await Promise.all(ids.map(async (id) => ((await rt['PodSandboxStatus']!({ pod_sandbox_id: id })) as { status: { network: { ip: string } } }).status.network.ip));
  assert.equal(new Set(ips).size, n, ips.join(' '));
  const running = await rt['ListContainers']!({ filter: { state: { state: 'CONTAINER_RUNNING' } } }) as { containers: unknown[] };
  assert.equal(running.containers.length, n);
  // One pause image, however many pods raced to build it.
  // (an untagged second build would still be listed: busybox and one pause image are all there is).
  const images = await v1.image['ListImages']!({}) as { images: { repo_tags: string[] }[] };
  assert.equal(images.images.length, 2, JSON.stringify(images.images.map((i) => i.repo_tags)));
  assert.equal(images.images.filter((i) => i.repo_tags.some((tag) => tag.includes('isula-test/pause'))).length, 1);
  await Promise.all(ids.map((id) => rt['StopPodSandbox']!({ pod_sandbox_id: id }).then(() => rt['RemovePodSandbox']!({ pod_sandbox_id: id }))));
  assert.equal((await d.isula(['ps', '-aq'])).stdout.trim(), '');
  assert.deepEqual(await mountsUnder(path.join(d.state, 'cri')), []);
});
