/**
 * The CRI streaming server end to end: a real isulad with @isula/cri, runc,
 * conmon and CNI; Exec/Attach/PortForward through the gRPC API give URLs,
 * and clients speaking SPDY/3.1 (the package's own framing module) and
 * WebSocket (ws) run commands, read the exit status on the error channel,
 * resize a TTY, attach to a container and fetch a page from a pod's httpd;
 * then the same over TLS (`streamTls`), and bad TLS config refused at start.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes, X509Certificate } from 'node:crypto';
import fs from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { test } from 'node:test';
import tls from 'node:tls';
import { promisify } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import { processesMatching } from '../lib/containers.js';
import { spdyConnect, spdyPortForwardGet, spdyStdio, wsPortForwardGet, wsStdio } from '../lib/cri-streams.js';
import { newDaemon, waitFor } from '../lib/harness.js';
import { CRI_TOOLS, criDaemon, type Call } from '../lib/cri-daemon.js';
import { cniPrerequisites } from '../lib/net-daemon.js';
import { claimSubnetSlot } from '../lib/subnets.js';

const skip = await cniPrerequisites('CRI streaming tests', [...CRI_TOOLS, '/usr/bin/nsenter']);
const run = promisify(execFile);

/** Port-forward relays (nsenter → node) of the daemon `pid`: another test file's relays are not ours. */
async function relaysOf(pid: number | undefined): Promise<number[]> {
  const out: number[] = [];
  for (const p of await processesMatching('dial tcp')) {
    const status = await fs.readFile(`/proc/${p}/status`, 'utf8').catch(() => '');
    if (new RegExp(`^PPid:\\s+${pid ?? -1}$`, 'm').test(status)) out.push(p);
  }
  return out;
}

type Msg = Record<string, unknown>;

const CGROUP_PARENT = `isula-cri-stream-test-${process.pid}`;

test('CRI streaming: exec, TTY resize, attach and port-forward over SPDY/3.1 and WebSocket', { skip, timeout: 120_000 }, async (t) => {
  const started = Date.now();
  let last = started;
  const lap = (what: string) => { const now = Date.now(); t.diagnostic(`${what}: ${now - last} ms`); last = now; };
  const tag = randomBytes(3).toString('hex');
  const { d, dir, v1, v1alpha2 } = await criDaemon(t, {
    bridgePrefix: 'issr', subnet: `10.242.${claimSubnetSlot()}.0/24`, cgroupParent: CGROUP_PARENT, cri: { streamAddress: '127.0.0.1:0' },
  });
  lap('daemon up');
  const rt = v1.runtime;
  const alpha = { rt: v1alpha2.runtime };

  const { podId, create } = await streamPod(t, rt, { name: 'stream', tag, dir, cgroupParent: CGROUP_PARENT, hostname: 'stream-host' });
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
  // ---- Exec over WebSocket: v5 (stdin close signal), v4, v4.base64 -------------------------
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
  // base64.channel.k8s.io (text-only clients): the same streams as text frames in base64.
  const b64 = await wsStdio(await execUrl({ cmd: ['sh', '-c', 'head -n1; echo err >&2; exit 5'], stdin: true, stdout: true, stderr: true }), 'v4.base64.channel.k8s.io', { stdin: Buffer.from('b64 in\n') });
  assert.equal(b64.protocol, 'v4.base64.channel.k8s.io');
  assert.ok(b64.textFrames > 0 && b64.first[0] === 1, `text frames ${b64.textFrames}, first ${b64.first.join(',')}`);
  assert.equal(b64.stdout, 'b64 in\n');
  assert.equal(b64.stderr, 'err\n');
  assert.deepEqual(b64.status.details?.causes, [{ reason: 'ExitCode', message: '5' }]);
  const wsTty = await wsStdio(await execUrl({ cmd: ['sh', '-c', 'sleep 0.5; stty size'], tty: true, stdout: true }), 'v5.channel.k8s.io', { resize: { Width: 90, Height: 30 } });
  assert.equal(wsTty.stdout.trim(), '30 90');

  lap('WebSocket exec');
  // ---- Attach to a running container ---------------------------------------------------------
  const echo = await attachEcho(create, rt['Attach']!, /^http:\/\/127\.0\.0\.1:\d+\/attach\//);
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
  await waitFor(async () => (await relaysOf(d.proc?.pid)).length === 0 || undefined, { timeoutMs: 15_000, what: 'no port-forward relay left' });

  lap('port-forward');
  await rt['StopPodSandbox']!({ pod_sandbox_id: podId });
  await rt['RemovePodSandbox']!({ pod_sandbox_id: podId });
  assert.equal((await d.isula(['ps', '-aq'])).stdout.trim(), '');
  t.diagnostic(`took ${Date.now() - started} ms`);
});

/**
 * A pod sandbox as the kubelet makes one (its own network namespace, one
 * pid namespace per container), removed when the test ends, and a `create`
 * that creates and starts a busybox container in it.
 */
async function streamPod(
  t: { after(fn: () => Promise<void>): void },
  rt: Record<string, Call>,
  o: { name: string; tag: string; dir: string; cgroupParent: string; hostname?: string },
): Promise<{ podId: string; create: (name: string, extra: Msg) => Promise<string> }> {
  const podCfg = {
    metadata: { name: o.name, uid: `uid-${o.name}-${o.tag}`, namespace: 'default', attempt: 0 },
    ...(o.hostname !== undefined && { hostname: o.hostname }),
    log_directory: path.join(o.dir, 'pods', o.name),
    linux: { cgroup_parent: `/${o.cgroupParent}`, security_context: { namespace_options: { network: 'POD', pid: 'CONTAINER', ipc: 'POD' } } },
  };
  const { pod_sandbox_id: podId } = await rt['RunPodSandbox']!({ config: podCfg }) as { pod_sandbox_id: string };
  t.after(async () => { await rt['RemovePodSandbox']!({ pod_sandbox_id: podId }).catch(() => undefined); });
  const create = async (name: string, extra: Msg): Promise<string> => {
    const { container_id: id } = await rt['CreateContainer']!({ pod_sandbox_id: podId, config: { metadata: { name, attempt: 0 }, image: { image: 'busybox' }, ...extra }, sandbox_config: podCfg }) as { container_id: string };
    await rt['StartContainer']!({ container_id: id });
    return id;
  };
  return { podId, create };
}

/**
 * Attach as the kubelet's client: to a new container that echoes its stdin
 * lines (`got:LINE`), over SPDY at the URL Attach hands out (which must match
 * `url`); writes `ping`, waits for the reply (the container is live), closes
 * stdin, and checks all it printed and the Success status. Its id.
 */
async function attachEcho(create: (name: string, extra: Msg) => Promise<string>, attach: (req: Msg) => Promise<unknown>, url: RegExp): Promise<string> {
  const echo = await create('echo', { command: ['sh', '-c', 'while read line; do echo "got:$line"; done; echo bye'], stdin: true, stdin_once: true });
  const { url: attachUrl } = await attach({ container_id: echo, stdin: true, stdout: true, stderr: true }) as { url: string };
  assert.match(attachUrl, url);
  const attached = await spdyStdio(attachUrl, {
    stdin: true, stdout: true, stderr: true,
    drive: async ({ stdin, stdout }) => {
      stdin?.write('ping\n');
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
  return echo;
}

/** The certificate a TLS server presents, checked against itself as the only CA (its names included). */
function verifiedCertificate(url: string): Promise<X509Certificate> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const probe = tls.connect({ host: hostname, port: Number(port), rejectUnauthorized: false }, () => {
      const pem = new X509Certificate(probe.getPeerCertificate().raw).toString();
      probe.destroy();
      const checked = tls.connect({ host: hostname, port: Number(port), ca: pem }, () => { checked.destroy(); resolve(new X509Certificate(pem)); });
      checked.on('error', reject);
    });
    probe.on('error', reject);
  });
}

test('CRI streaming over TLS (streamTls, self-signed): https URLs; exec over SPDY and WebSocket, attach, port-forward', { skip, timeout: 120_000 }, async (t) => {
  const tag = randomBytes(3).toString('hex');
  const cgroupParent = `${CGROUP_PARENT}-tls`;
  const { d, dir, v1 } = await criDaemon(t, {
    bridgePrefix: 'isst', subnet: `10.246.${claimSubnetSlot()}.0/24`, cgroupParent, cri: { streamAddress: '127.0.0.1:0', streamTls: true },
  });
  const rt = v1.runtime;
  const { podId, create } = await streamPod(t, rt, { name: 'stream-tls', tag, dir, cgroupParent });
  const web = await create('web', { command: ['sh', '-c', 'mkdir -p /tmp/www && echo hello-over-tls > /tmp/www/index.html && exec httpd -f -p 8080 -h /tmp/www'] });
  const execUrl = async (req: Msg): Promise<string> => {
    const { url } = await rt['Exec']!({ container_id: web, ...req }) as { url: string };
    assert.match(url, /^https:\/\/127\.0\.0\.1:\d+\/exec\/[A-Za-z0-9_-]+$/);
    return url;
  };

  // The certificate is made for the URL's host: a client that pins it can verify the name too.
  const first = await execUrl({ cmd: ['true'], stdout: true });
  const cert = await verifiedCertificate(first);
  assert.match(cert.subjectAltName ?? '', /IP Address:127\.0\.0\.1/);
  // A plain-http client gets nothing from the TLS port.
  await assert.rejects(new Promise((resolve, reject) => http.get(first.replace(/^https/, 'http'), resolve).on('error', reject)));

  // Exec over SPDY through TLS: stdout, stderr, the exit code; stdin with half-close.
  const failing = await spdyStdio(await execUrl({ cmd: ['sh', '-c', 'echo out; echo err >&2; exit 3'], stdout: true, stderr: true }), { stdout: true, stderr: true });
  assert.equal(failing.stdout, 'out\n');
  assert.equal(failing.stderr, 'err\n');
  assert.deepEqual(failing.status.details?.causes, [{ reason: 'ExitCode', message: '3' }]);
  const cat = await spdyStdio(await execUrl({ cmd: ['sh', '-c', 'cat; head -c 300000 /dev/zero | tr "\\0" x'], stdin: true, stdout: true }), { stdin: true, drive: async ({ stdin }) => { stdin?.end('through tls\n'); } });
  assert.equal(cat.status.status, 'Success');
  assert.equal(cat.stdout, `through tls\n${'x'.repeat(300_000)}`);

  // Exec over a WebSocket through TLS (wss://).
  const v5 = await wsStdio(await execUrl({ cmd: ['sh', '-c', 'cat; echo done >&2; exit 4'], stdin: true, stdout: true, stderr: true }), 'v5.channel.k8s.io', { stdin: Buffer.from('abc'), closeStdin: true });
  assert.equal(v5.protocol, 'v5.channel.k8s.io');
  assert.equal(v5.stdout, 'abc');
  assert.equal(v5.stderr, 'done\n');
  assert.deepEqual(v5.status.details?.causes, [{ reason: 'ExitCode', message: '4' }]);

  // Attach through TLS.
  await attachEcho(create, rt['Attach']!, /^https:\/\/127\.0\.0\.1:\d+\/attach\//);

  // Port-forward through TLS, over SPDY and over a WebSocket.
  const pfUrl = async (): Promise<string> => {
    const { url } = await rt['PortForward']!({ pod_sandbox_id: podId, port: [8080] }) as { url: string };
    assert.match(url, /^https:\/\/127\.0\.0\.1:\d+\/portforward\//);
    return url;
  };
  await waitFor(async () => (await spdyPortForwardGet(await pfUrl(), 8080, ['/index.html'])).responses[0]?.includes('hello-over-tls') || undefined, { timeoutMs: 10_000, intervalMs: 200, what: 'httpd answers through port-forward over TLS' });
  const pf = await spdyPortForwardGet(await pfUrl(), 8080, ['/index.html', '/missing']);
  assert.match(pf.responses[0] ?? '', /^HTTP\/1\.[01] 200 OK\r\n[\s\S]*\r\n\r\nhello-over-tls\n$/);
  assert.match(pf.responses[1] ?? '', /^HTTP\/1\.[01] 404/);
  const wsPf = await wsPortForwardGet(await pfUrl(), 8080, '/index.html');
  assert.match(wsPf.response, /200 OK[\s\S]*hello-over-tls/);
  await waitFor(async () => (await relaysOf(d.proc?.pid)).length === 0 || undefined, { timeoutMs: 15_000, what: 'no port-forward relay left' });

  await rt['StopPodSandbox']!({ pod_sandbox_id: podId });
  await rt['RemovePodSandbox']!({ pod_sandbox_id: podId });
});

test('bad streaming TLS config stops isulad at start, naming the option and the file', { skip }, async (t) => {
  const d = await newDaemon(t);
  const certs = path.join(d.root, 'certs');
  await fs.mkdir(certs);
  const pair = async (name: string) => {
    await run('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', path.join(certs, `${name}.key`),
      '-out', path.join(certs, `${name}.crt`), '-days', '2', '-subj', `/CN=${name}`], { timeout: 15_000 });
  };
  await pair('a');
  await pair('b');
  const refused = async (cri: Record<string, unknown>, reason: RegExp) => {
    await d.writeConfig({ plugins: [{ package: '@isula/cri', options: { socket: path.join(d.root, 'cri.sock'), streamAddress: '127.0.0.1:0', ...cri } }] });
    d.spawn();
    const exit = await d.exited(20_000);
    assert.equal(exit.code, 1, `isulad should refuse to start; stderr: ${d.stderr}`);
    assert.match(d.stderr, reason);
    assert.match(d.stderr, /PLUGIN_OPTIONS_INVALID/);
    await assert.rejects(fs.stat(d.socket), { code: 'ENOENT' }, 'the engine API never listened');
    d.stderr = '';
  };
  await refused({ streamTls: true, streamTlsCert: path.join(certs, 'a.crt'), streamTlsKey: path.join(certs, 'b.key') }, /"streamTlsKey" \S+b\.key is not the key of the certificate in "streamTlsCert" \S+a\.crt/);
  await refused({ streamTls: true, streamTlsCert: path.join(certs, 'missing.crt'), streamTlsKey: path.join(certs, 'a.key') }, /"streamTlsCert" \S+missing\.crt cannot be read: no such file/);
  await refused({ streamTls: true, streamTlsCert: path.join(certs, 'a.crt') }, /"streamTlsCert" and "streamTlsKey" go together/);
});
