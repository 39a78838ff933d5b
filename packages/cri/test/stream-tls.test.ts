/**
 * The streaming server over TLS: https URLs, the certificate it serves (a
 * self-signed one for the URL's host, or the configured files), SPDY and
 * WebSocket sessions through it, and bad key pairs refused at start.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import fs from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import tls from 'node:tls';
import { promisify } from 'node:util';
import pino from 'pino';
import { WebSocket } from 'ws';
import { isIsulaError, type Engine } from '@isula/core';
import { SpdySession, type SpdyStream } from '../src/spdy.js';
import { certificateNames } from '../src/stream-tls.js';
import { StreamingServer, type StreamingServerOptions } from '../src/streaming.js';

const run = promisify(execFile);
const silent = pino({ level: 'silent' });

/** An engine whose every exec prints to stdout and stderr and exits 3 (the transport is under test, not exec). */
const engine = {
  execs: {
    create: () => ({ Id: 'e1' }),
    start: async (_id: string, sink: { write(s: 1 | 2, b: Buffer): void }) => {
      sink.write(1, Buffer.from('out over tls\n'));
      sink.write(2, Buffer.from('err over tls\n'));
      return { done: Promise.resolve(), exitCode: 3, running: false, pid: 0 };
    },
    resize: async () => undefined,
  },
} as unknown as Engine;

async function started(t: { after(fn: () => Promise<void>): void }, opts: Partial<StreamingServerOptions>): Promise<StreamingServer> {
  const server = new StreamingServer({ address: '127.0.0.1:0', log: silent, engine: () => engine, ...opts });
  await server.start();
  t.after(() => server.stop());
  return server;
}

const execReq = { container_id: 'c', cmd: ['x'], tty: false, stdin: false, stdout: true, stderr: true };

/** The certificate the server presents, verified against itself as the only CA (so the name must match too). */
function servedCertificate(baseUrl: string): Promise<X509Certificate> {
  const { hostname, port } = new URL(baseUrl);
  const host = hostname.replace(/^\[|\]$/g, '');
  return new Promise((resolve, reject) => {
    // First without verification, to learn the certificate; then with it as the trust anchor.
    const probe = tls.connect({ host, port: Number(port), rejectUnauthorized: false }, () => {
      const pem = new X509Certificate(probe.getPeerCertificate().raw).toString();
      probe.destroy();
      const checked = tls.connect({ host, port: Number(port), ca: pem, ...(net.isIP(host) === 0 && { servername: host }) }, () => {
        checked.destroy();
        resolve(new X509Certificate(pem));
      });
      checked.on('error', reject);
    });
    probe.on('error', reject);
  });
}

/** An exec over SPDY/3.1 through https, as crictl's client: the certificate is not verified. */
async function spdyExec(url: string): Promise<{ stdout: string; stderr: string; status: string }> {
  const { socket, head } = await new Promise<{ socket: net.Socket; head: Buffer }>((resolve, reject) => {
    const req = https.request(url, { method: 'POST', rejectUnauthorized: false, headers: { Connection: 'Upgrade', Upgrade: 'SPDY/3.1', 'X-Stream-Protocol-Version': 'v4.channel.k8s.io' } });
    req.on('upgrade', (_res, s: net.Socket, h: Buffer) => resolve({ socket: s, head: h }));
    req.on('response', (res) => reject(new Error(`upgrade refused: ${res.statusCode}`)));
    req.on('error', reject);
    req.end();
  });
  const session = new SpdySession(socket, { role: 'client' });
  session.on('error', () => undefined);
  session.feed(head);
  const collect = (s: SpdyStream) => new Promise<string>((resolve) => {
    let text = '';
    s.on('data', (c: Buffer) => { text += c.toString(); });
    s.on('end', () => resolve(text));
    s.on('close', () => resolve(text));
    s.on('error', () => resolve(text)); // the session's end reaches streams we never half-closed
  });
  try {
    const error = collect(await session.openStream({ streamtype: 'error' }));
    const stdout = collect(await session.openStream({ streamtype: 'stdout' }));
    const stderr = collect(await session.openStream({ streamtype: 'stderr' }));
    const [out, err, status] = await Promise.all([stdout, stderr, error]);
    return { stdout: out, stderr: err, status };
  } finally {
    session.destroy();
  }
}

function upgradeStatus(url: string, headers: Record<string, string>): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = https.request(url, { method: 'POST', rejectUnauthorized: false, headers: { Connection: 'Upgrade', ...headers } });
    req.on('upgrade', (res, socket) => { socket.destroy(); resolve(res.statusCode ?? 0); });
    req.on('response', (res) => { res.resume(); resolve(res.statusCode ?? 0); });
    req.on('error', reject);
    req.end();
  });
}

test('streamTls without files: https URLs, a self-signed certificate for their host, exec over SPDY and WebSocket', async (t) => {
  const server = await started(t, { tls: { selfSigned: true } });
  assert.match(server.baseUrl, /^https:\/\/127\.0\.0\.1:\d+$/);
  const url = server.url({ kind: 'exec', req: execReq });
  assert.match(url, /^https:\/\/127\.0\.0\.1:\d+\/exec\/[A-Za-z0-9_-]{22}$/);

  const cert = await servedCertificate(server.baseUrl);
  assert.match(cert.subjectAltName ?? '', /IP Address:127\.0\.0\.1/);
  assert.equal(cert.ca, false);
  assert.ok(cert.subject === cert.issuer && cert.verify(cert.publicKey), 'self-signed');
  assert.ok(Date.parse(cert.validTo) > Date.now() + 300 * 86_400_000, `valid for a year (to ${cert.validTo})`);

  // SPDY through TLS: the output and the exit status on the error stream.
  const spdy = await spdyExec(url);
  assert.equal(spdy.stdout, 'out over tls\n');
  assert.equal(spdy.stderr, 'err over tls\n');
  assert.deepEqual((JSON.parse(spdy.status) as { details: { causes: unknown[] } }).details.causes, [{ reason: 'ExitCode', message: '3' }]);

  // WebSocket through TLS (wss://).
  const ws = new WebSocket(server.url({ kind: 'exec', req: execReq }).replace(/^http/, 'ws'), ['v4.channel.k8s.io'], { rejectUnauthorized: false });
  const channels: string[] = ['', '', '', ''];
  await new Promise<void>((resolve, reject) => {
    ws.on('message', (raw: Buffer) => { const ch = raw[0] as number; channels[ch] = (channels[ch] ?? '') + raw.subarray(1).toString(); });
    ws.on('close', () => resolve());
    ws.on('error', reject);
  });
  assert.deepEqual(channels.slice(1, 3), ['out over tls\n', 'err over tls\n']);
  assert.match(channels[3] ?? '', /"reason":"NonZeroExitCode"/);

  // The kubelet's refusals are the same over TLS.
  assert.equal(await upgradeStatus(server.url({ kind: 'exec', req: execReq }), { Upgrade: 'SPDY/3.1', 'X-Stream-Protocol-Version': 'v1.channel.k8s.io' }), 403);
  assert.equal(await upgradeStatus(`${server.baseUrl}/exec/nope`, { Upgrade: 'SPDY/3.1' }), 404);
  // A plain-http client gets no answer from a TLS port.
  const { port } = new URL(server.baseUrl);
  await assert.rejects(new Promise((resolve, reject) => http.get(`http://127.0.0.1:${port}/exec/x`, resolve).on('error', reject)));
});

test('self-signed certificates name the host clients dial: IPv6, DNS names, wildcard binds', async (t) => {
  if (Object.values(os.networkInterfaces()).flat().some((a) => a?.address === '::1')) {
    const v6 = await started(t, { address: '[::1]:0', tls: { selfSigned: true } });
    assert.match(v6.baseUrl, /^https:\/\/\[::1\]:\d+$/);
    // servedCertificate checks the name: the certificate holds the URL's address.
    await servedCertificate(v6.baseUrl);
  }
  // A DNS name: the URL has the address it listens on, the certificate both.
  const named = await started(t, { address: 'localhost:0', tls: { selfSigned: true } });
  assert.match((await servedCertificate(named.baseUrl)).subjectAltName ?? '', /DNS:localhost/);

  const wildcard = certificateNames('0.0.0.0', '127.0.0.1');
  for (const a of Object.values(os.networkInterfaces()).flat()) if (a !== undefined) assert.ok(wildcard.includes(a.address), `${a.address} in ${wildcard.join(',')}`);
  assert.deepEqual(certificateNames('10.1.2.3', '10.1.2.3'), ['10.1.2.3'], 'a specific address: only that one');
});

test('streamTlsCert/streamTlsKey: the configured certificate is served', async (t) => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'isula-cri-tls-'));
  t.after(() => fs.rm(dir, { recursive: true, force: true }));
  const certFile = path.join(dir, 'stream.crt');
  const keyFile = path.join(dir, 'stream.key');
  await run('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyFile, '-out', certFile, '-days', '2', '-subj', '/CN=stream test', '-addext', 'subjectAltName=IP:127.0.0.1']);
  const warned: string[] = [];
  const capture = pino({ level: 'warn' }, { write: (line: string) => { warned.push(line); } });
  const server = await started(t, { tls: { certFile, keyFile }, log: capture });
  assert.deepEqual(warned, [], 'a configured key pair is not warned about');
  const selfSigned = await started(t, { tls: { selfSigned: true }, log: capture });
  assert.match(selfSigned.baseUrl, /^https:/);
  assert.equal(warned.length, 1);
  assert.match(warned[0] ?? '', /self-signed certificate: crictl accepts it, a kubelet \(1\.20 on\) does not/);
  assert.match(server.baseUrl, /^https:/);
  const served = await servedCertificate(server.baseUrl);
  assert.equal(served.fingerprint256, new X509Certificate(await fs.readFile(certFile)).fingerprint256);
  assert.equal((await spdyExec(server.url({ kind: 'exec', req: execReq }))).stdout, 'out over tls\n');
});

test('a bad key pair stops the start, naming the option and the file; nothing listens', async (t) => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'isula-cri-tls-'));
  t.after(() => fs.rm(dir, { recursive: true, force: true }));
  const pair = async (name: string, extra: string[] = []) => {
    const certFile = path.join(dir, `${name}.crt`);
    const keyFile = path.join(dir, `${name}.key`);
    await run('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-keyout', keyFile, '-out', certFile, '-days', '2', '-subj', `/CN=${name}`, ...extra]);
    return { certFile, keyFile };
  };
  const a = await pair('a', ['-nodes']);
  const b = await pair('b', ['-nodes']);
  const locked = await pair('locked', ['-passout', 'pass:secret']);
  const garbage = path.join(dir, 'garbage.crt');
  await fs.writeFile(garbage, 'not a certificate\n');
  const cases: [string, { certFile: string; keyFile: string }, RegExp][] = [
    ['a missing certificate file', { certFile: path.join(dir, 'nope.crt'), keyFile: a.keyFile }, /"streamTlsCert" \S+nope\.crt cannot be read: no such file/],
    ['a missing key file', { certFile: a.certFile, keyFile: path.join(dir, 'nope.key') }, /"streamTlsKey" \S+nope\.key cannot be read: no such file/],
    ['an unreadable key (a directory)', { certFile: a.certFile, keyFile: dir }, /"streamTlsKey" \S+ cannot be read: is a directory/],
    ['a file that is no certificate', { certFile: garbage, keyFile: a.keyFile }, /"streamTlsCert" \S+garbage\.crt holds no PEM certificate/],
    ['a certificate as the key', { certFile: a.certFile, keyFile: a.certFile }, /"streamTlsKey" \S+a\.crt holds no unencrypted PEM private key/],
    ['an encrypted key', locked, /"streamTlsKey" \S+locked\.key holds no unencrypted PEM private key/],
    ['the key of another certificate', { certFile: a.certFile, keyFile: b.keyFile }, /"streamTlsKey" \S+b\.key is not the key of the certificate in "streamTlsCert" \S+a\.crt/],
  ];
  for (const [what, files, reason] of cases) {
    const server = new StreamingServer({ address: '127.0.0.1:0', log: silent, engine: () => engine, tls: files });
    await assert.rejects(server.start(), (e: unknown) => isIsulaError(e, 'PLUGIN_OPTIONS_INVALID') && reason.test(e.message), what);
    assert.equal(server.baseUrl, '', `${what}: not started`);
    assert.throws(() => server.url({ kind: 'exec', req: execReq }), (e: unknown) => isIsulaError(e, 'RUNTIME_UNAVAILABLE'));
  }
});

test('without openssl a self-signed certificate cannot be made: the start says so', async (t) => {
  const savedPath = process.env['PATH'];
  t.after(() => { process.env['PATH'] = savedPath; });
  process.env['PATH'] = '/nonexistent';
  const server = new StreamingServer({ address: '127.0.0.1:0', log: silent, engine: () => engine, tls: { selfSigned: true } });
  await assert.rejects(server.start(), (e: unknown) => isIsulaError(e, 'PLUGIN_OPTIONS_INVALID') && /openssl command is not installed/.test(e.message));
  process.env['PATH'] = savedPath;
  assert.equal(server.baseUrl, '');
  await server.stop();
});
