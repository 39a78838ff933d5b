/**
 * The CRI streaming server end to end: a real isulad with @isula/cri, runc,
 * conmon and CNI; Exec/Attach/PortForward through the gRPC API give URLs,
 * and clients speaking SPDY/3.1 (the package's own framing module) and
 * WebSocket (ws) run commands, read the exit status on the error channel,
 * resize a TTY, attach to a container and fetch a page from a pod's httpd.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import pino from 'pino';
import { LOADER_OPTIONS, PROTO_DIR } from '@isula/cri';
import { removeBridgeIsolation } from '@isula/network-cni';
import { daemon, processesMatching } from '../lib/containers.js';
import { spdyConnect, spdyPortForwardGet, spdyStdio, wsPortForwardGet, wsStdio } from '../lib/cri-streams.js';
import { waitFor } from '../lib/harness.js';
import { CNI_BIN, cniPrerequisites } from '../lib/net-daemon.js';

const run = promisify(execFile);

const skip = await cniPrerequisites('CRI streaming tests', ['/usr/bin/catatonit', '/usr/bin/conmon', '/usr/sbin/runc', '/usr/bin/nsenter']);

type Msg = Record<string, unknown>;
type Call = (req: Msg) => Promise<Msg>;

function runtimeClient(socket: string, version: 'v1' | 'v1alpha2'): { rt: Record<string, Call>; close(): void } {
  const def = protoLoader.loadSync(path.join(PROTO_DIR, 'runtime', version, 'api.proto'), LOADER_OPTIONS);
  const pkg = grpc.loadPackageDefinition(def) as unknown as { runtime: Record<string, Record<string, grpc.ServiceClientConstructor>> };
  const Ctor = pkg.runtime[version]?.['RuntimeService'] as grpc.ServiceClientConstructor;
  const client = new Ctor(`unix:${socket}`, grpc.credentials.createInsecure());
  const rt: Record<string, Call> = {};
  for (const m of Object.keys(Ctor.service)) {
    rt[m] = (req) => new Promise((resolve, reject) => {
      const fn = (client as unknown as Record<string, (r: Msg, md: grpc.Metadata, o: grpc.CallOptions, cb: (e: grpc.ServiceError | null, res: Msg) => void) => void>)[m];
      fn?.call(client, req, new grpc.Metadata(), { deadline: Date.now() + 60_000 }, (err, res) => (err ? reject(err) : resolve(res)));
    });
  }
  return { rt, close: () => client.close() };
}

const CGROUP_PARENT = `isula-cri-stream-test-${process.pid}`;

test('CRI streaming: exec, TTY resize, attach and port-forward over SPDY/3.1 and WebSocket', { skip, timeout: 120_000 }, async (t) => {
  const started = Date.now();
  let last = started;
  const lap = (what: string) => { const now = Date.now(); t.diagnostic(`${what}: ${now - last} ms`); last = now; };
  const tag = randomBytes(3).toString('hex');
  const bridge = `issr${tag}`;
  const subnet = `10.242.${process.pid % 250}.0/24`;
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'isula-cri-stream-'));
  const confDir = path.join(dir, 'cni');
  const socket = path.join(dir, 'cri.sock');
  await fs.mkdir(confDir);
  const d = await daemon(t, {
    plugins: [
      '@isula/image-oci', '@isula/driver-runc',
      { package: '@isula/network-cni', options: { bridge, subnet } },
      { package: '@isula/cri', options: { socket, streamAddress: '127.0.0.1:0' } },
    ],
    'cni-conf-dir': confDir,
    'cni-bin-dir': [CNI_BIN],
    'pod-sandbox-image': 'isula-test/pause:catatonit',
  });
  t.after(async () => {
    await run('ip', ['link', 'del', bridge]).catch(() => undefined);
    for (const ctrl of await fs.readdir('/sys/fs/cgroup').catch(() => [] as string[])) await fs.rmdir(path.join('/sys/fs/cgroup', ctrl, CGROUP_PARENT)).catch(() => undefined);
    await removeBridgeIsolation(bridge, pino({ level: 'silent' }));
    await fs.rm(dir, { recursive: true, force: true });
  });
  lap('daemon up');
  const { rt, close } = runtimeClient(socket, 'v1');
  const alpha = runtimeClient(socket, 'v1alpha2');
  t.after(async () => { close(); alpha.close(); });

  const podCfg = {
    metadata: { name: 'stream', uid: `uid-stream-${tag}`, namespace: 'default', attempt: 0 },
    hostname: 'stream-host',
    log_directory: path.join(dir, 'pods', 'stream'),
    linux: { cgroup_parent: `/${CGROUP_PARENT}`, security_context: { namespace_options: { network: 'POD', pid: 'CONTAINER', ipc: 'POD' } } },
  };
  const { pod_sandbox_id: podId } = await rt['RunPodSandbox']!({ config: podCfg }) as { pod_sandbox_id: string };
  t.after(async () => { await rt['RemovePodSandbox']!({ pod_sandbox_id: podId }).catch(() => undefined); });
  const create = async (name: string, extra: Msg): Promise<string> => {
    const { container_id: id } = await rt['CreateContainer']!({ pod_sandbox_id: podId, config: { metadata: { name, attempt: 0 }, image: { image: 'busybox' }, ...extra }, sandbox_config: podCfg }) as { container_id: string };
    await rt['StartContainer']!({ container_id: id });
    return id;
  };
  // The web server of the pod (port-forward's target) doubles as the exec target.
  const web = await create('web', { command: ['sh', '-c', 'mkdir -p /tmp/www && echo hello-from-pod > /tmp/www/index.html && exec httpd -f -p 8080 -h /tmp/www'] });

  lap('pod and web container');
  // ---- Exec over SPDY: stdout, stderr, the exit code on the error channel --------------
  const execUrl = async (req: Msg, client = rt): Promise<string> => {
    const { url } = await client['Exec']!({ container_id: web, ...req }) as { url: string };
    assert.match(url, /^http:\/\/127\.0\.0\.1:\d+\/exec\/[A-Za-z0-9_-]+$/);
    return url;
  };
  const failing = await spdyStdio(await execUrl({ cmd: ['sh', '-c', 'echo out; echo err >&2; exit 3'], stdout: true, stderr: true }), { stdout: true, stderr: true });
  assert.equal(failing.stdout, 'out\n');
  assert.equal(failing.stderr, 'err\n');
  assert.equal(failing.status.status, 'Failure');
  assert.equal(failing.status.reason, 'NonZeroExitCode');
  assert.deepEqual(failing.status.details?.causes, [{ reason: 'ExitCode', message: '3' }]);

  // stdin with half-close, through the v1alpha2 API; a large output crosses many frames intact.
  const catUrl = await execUrl({ cmd: ['sh', '-c', 'cat; head -c 300000 /dev/zero | tr "\\0" x'], stdin: true, stdout: true }, alpha.rt);
  const cat = await spdyStdio(catUrl, { stdin: true, drive: async ({ stdin }) => { stdin?.end('hello through stdin\n'); } });
  assert.equal(cat.status.status, 'Success');
  assert.equal(cat.stdout, `hello through stdin\n${'x'.repeat(300_000)}`);
  // The token was single-use: the same URL again is refused.
  await assert.rejects(spdyConnect(catUrl, ['v4.channel.k8s.io']), (e: Error & { statusCode?: number }) => e.statusCode === 404);
  // An unsupported protocol version is refused as the kubelet does (403).
  await assert.rejects(spdyConnect(await execUrl({ cmd: ['true'], stdout: true }), ['v1.channel.k8s.io']), (e: Error & { statusCode?: number }) => e.statusCode === 403);
  // A plain GET of a live URL says an upgrade is needed.
  const plain = await new Promise<number>((resolve, reject) => {
    void execUrl({ cmd: ['true'], stdout: true }).then((u) => http.get(u, (res) => { res.resume(); resolve(res.statusCode ?? 0); }).on('error', reject), reject);
  });
  assert.equal(plain, 400);
  // Bad requests never get a URL.
  await assert.rejects(rt['Exec']!({ container_id: web, cmd: ['sh'], tty: true, stderr: true, stdout: true }), (e: grpc.ServiceError) => e.code === grpc.status.INVALID_ARGUMENT);
  await assert.rejects(rt['Exec']!({ container_id: 'nope', cmd: ['sh'], stdout: true }), (e: grpc.ServiceError) => e.code === grpc.status.NOT_FOUND);

  lap('SPDY exec');
  // ---- TTY exec with a resize ------------------------------------------------------------
  const ttyUrl = await execUrl({ cmd: ['sh', '-c', 'sleep 0.5; stty size'], tty: true, stdout: true });
  const tty = await spdyStdio(ttyUrl, { tty: true, drive: async ({ resize }) => { resize?.write(JSON.stringify({ Width: 123, Height: 45 })); } });
  assert.equal(tty.status.status, 'Success');
  assert.equal(tty.stdout.trim(), '45 123');

  lap('TTY exec');
  // ---- Exec over WebSocket: v5 (stdin close signal) and v4 ---------------------------------
  const v5 = await wsStdio(await execUrl({ cmd: ['sh', '-c', 'cat; echo done >&2; exit 0'], stdin: true, stdout: true, stderr: true }), 'v5.channel.k8s.io', { stdin: Buffer.from('abc'), closeStdin: true });
  assert.equal(v5.protocol, 'v5.channel.k8s.io');
  assert.deepEqual(v5.first, [1, 1], 'an empty stdout frame first: the connection is established');
  assert.equal(v5.stdout, 'abc');
  assert.equal(v5.stderr, 'done\n');
  assert.equal(v5.status.status, 'Success');
  const v4 = await wsStdio(await execUrl({ cmd: ['sh', '-c', 'echo four; exit 7'], stdout: true, stderr: true }), 'v4.channel.k8s.io');
  assert.equal(v4.protocol, 'v4.channel.k8s.io');
  assert.equal(v4.stdout, 'four\n');
  assert.deepEqual(v4.status.details?.causes, [{ reason: 'ExitCode', message: '7' }]);
  const wsTty = await wsStdio(await execUrl({ cmd: ['sh', '-c', 'sleep 0.5; stty size'], tty: true, stdout: true }), 'v5.channel.k8s.io', { resize: { Width: 90, Height: 30 } });
  assert.equal(wsTty.stdout.trim(), '30 90');

  lap('WebSocket exec');
  // ---- Attach to a running container ---------------------------------------------------------
  const echo = await create('echo', { command: ['sh', '-c', 'while read line; do echo "got:$line"; done; echo bye'], stdin: true, stdin_once: true });
  const { url: attachUrl } = await rt['Attach']!({ container_id: echo, stdin: true, stdout: true, stderr: true }) as { url: string };
  assert.match(attachUrl, /\/attach\//);
  const attached = await spdyStdio(attachUrl, {
    stdin: true, stdout: true, stderr: true,
    drive: async ({ stdin, stdout }) => {
      stdin?.write('ping\n');
      // The reply comes before we close stdin: the container is live.
      await new Promise<void>((resolve) => {
        let seen = '';
        const timer = setTimeout(resolve, 10_000);
        stdout?.on('data', (c: Buffer) => { seen += c.toString(); if (seen.includes('got:ping')) { clearTimeout(timer); resolve(); } });
      });
      stdin?.end();
    },
  });
  assert.equal(attached.stdout, 'got:ping\nbye\n');
  assert.equal(attached.status.status, 'Success');
  await waitFor(async () => ((await rt['ContainerStatus']!({ container_id: echo })) as { status: { state: string } }).status.state === 'CONTAINER_EXITED' || undefined, { timeoutMs: 10_000, what: 'the attached container exits at its stdin EOF' });
  await assert.rejects(rt['Attach']!({ container_id: echo, stdout: true }), (e: grpc.ServiceError) => e.code === grpc.status.FAILED_PRECONDITION);

  lap('attach');
  // ---- Port-forward to the pod's httpd ----------------------------------------------------------
  const pfUrl = async (): Promise<string> => ((await rt['PortForward']!({ pod_sandbox_id: podId, port: [8080] })) as { url: string }).url;
  await waitFor(async () => (await spdyPortForwardGet(await pfUrl(), 8080, ['/index.html'])).responses[0]?.includes('hello-from-pod') || undefined, { timeoutMs: 10_000, intervalMs: 200, what: 'httpd answers through port-forward' });
  const pf = await spdyPortForwardGet(await pfUrl(), 8080, ['/index.html', '/index.html', '/missing']);
  assert.match(pf.responses[0] ?? '', /^HTTP\/1\.[01] 200 OK\r\n[\s\S]*\r\n\r\nhello-from-pod\n$/);
  assert.match(pf.responses[1] ?? '', /hello-from-pod/);
  assert.match(pf.responses[2] ?? '', /^HTTP\/1\.[01] 404/);
  assert.deepEqual(pf.errors, ['', '', '']);
  // Nothing listens on 9: the error stream says so.
  const refused = await spdyPortForwardGet(await pfUrl(), 9, ['/']);
  assert.match(refused.errors[0] ?? '', /error forwarding port 9 to pod [0-9a-f]+: .*(ECONNREFUSED|refused)/);
  // The same page over a WebSocket.
  const wsPf = await wsPortForwardGet(await pfUrl(), 8080, '/index.html');
  assert.deepEqual(wsPf.prefixes, [[0, 8080 & 0xff, 8080 >> 8], [1, 8080 & 0xff, 8080 >> 8]]);
  assert.match(wsPf.response, /200 OK[\s\S]*hello-from-pod/);
  assert.equal(wsPf.errors, '');
  // The relays are gone once the connections are.
  await waitFor(async () => (await processesMatching('dial tcp')).length === 0 || undefined, { timeoutMs: 5000, what: 'no port-forward relay left' });

  lap('port-forward');
  await rt['StopPodSandbox']!({ pod_sandbox_id: podId });
  await rt['RemovePodSandbox']!({ pod_sandbox_id: podId });
  assert.equal((await d.isula(['ps', '-aq'])).stdout.trim(), '');
  t.diagnostic(`took ${Date.now() - started} ms`);
});
