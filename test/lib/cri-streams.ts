/**
 * Clients of the CRI streaming server for the e2e tests: SPDY/3.1 (the
 * package's own framing module as the client side) and WebSocket (ws), for
 * exec/attach (v4/v5 channel protocols) and port-forward. An https:// URL
 * (streamTls) is dialled over TLS without checking the certificate, as the
 * kubelet's and crictl's streaming clients do.
 */
import http from 'node:http';
import https from 'node:https';
import type net from 'node:net';
import { WebSocket } from 'ws';
import { SpdySession, type SpdyStream } from '@isula/cri';

export interface StdioResult { stdout: string; stderr: string; status: { status: string; message?: string; reason?: string; details?: { causes?: { reason: string; message: string }[] } } }

/** Upgrades `url` to SPDY/3.1 offering `protocols`; resolves with the client session. */
export function spdyConnect(url: string, protocols: string[]): Promise<{ session: SpdySession; protocol: string }> {
  return new Promise((resolve, reject) => {
    const options = { method: 'POST', headers: { Connection: 'Upgrade', Upgrade: 'SPDY/3.1', 'X-Stream-Protocol-Version': protocols } };
    const req = url.startsWith('https:') ? https.request(url, { ...options, rejectUnauthorized: false }) : http.request(url, options);
    req.setTimeout(10_000, () => req.destroy(new Error('upgrade timed out')));
    req.on('upgrade', (res, socket: net.Socket, head: Buffer) => {
      const session = new SpdySession(socket, { role: 'client' });
      session.on('error', () => undefined);
      session.feed(head);
      resolve({ session, protocol: String(res.headers['x-stream-protocol-version'] ?? '') });
    });
    req.on('response', (res) => {
      let body = '';
      res.on('data', (c: Buffer) => { body += c.toString(); });
      res.on('end', () => reject(Object.assign(new Error(`upgrade refused: ${res.statusCode} ${body.trim()}`), { statusCode: res.statusCode })));
    });
    req.on('error', reject);
    req.end();
  });
}

function collect(s: SpdyStream | undefined): Promise<string> {
  if (s === undefined) return Promise.resolve('');
  return new Promise((resolve) => {
    let text = '';
    s.on('data', (c: Buffer) => { text += c.toString('utf8'); });
    s.on('end', () => resolve(text));
    s.on('close', () => resolve(text));
    s.on('error', () => resolve(text));
  });
}

/**
 * An exec/attach over SPDY as client-go's v4 executor does it: the error
 * stream first, then stdin/stdout/stderr/resize, each waiting for its reply.
 * `drive` gets the streams once open (write stdin, resize, read as it goes).
 */
export async function spdyStdio(url: string, opts: { stdin?: boolean; stdout?: boolean; stderr?: boolean; tty?: boolean; drive?: (s: { stdin?: SpdyStream; stdout?: SpdyStream; resize?: SpdyStream }) => Promise<void> }): Promise<StdioResult> {
  const { session, protocol } = await spdyConnect(url, ['v4.channel.k8s.io']);
  if (protocol !== 'v4.channel.k8s.io') throw new Error(`negotiated ${protocol}`);
  try {
    const error = await session.openStream({ streamtype: 'error' });
    const errorText = collect(error);
    const stdin = opts.stdin === true ? await session.openStream({ streamtype: 'stdin' }) : undefined;
    const stdout = opts.stdout !== false ? await session.openStream({ streamtype: 'stdout' }) : undefined;
    const stderr = opts.stderr === true && opts.tty !== true ? await session.openStream({ streamtype: 'stderr' }) : undefined;
    const resize = opts.tty === true ? await session.openStream({ streamtype: 'resize' }) : undefined;
    const outText = collect(stdout);
    const errText = collect(stderr);
    await opts.drive?.({ ...(stdin !== undefined && { stdin }), ...(stdout !== undefined && { stdout }), ...(resize !== undefined && { resize }) });
    const [out, err, status] = await Promise.all([outText, errText, errorText]);
    return { stdout: out, stderr: err, status: JSON.parse(status === '' ? '{}' : status) as StdioResult['status'] };
  } finally {
    session.destroy();
  }
}

/** An exec/attach over a WebSocket with channel-prefixed binary frames. */
export function wsStdio(url: string, protocol: string, opts: { stdin?: Buffer; closeStdin?: boolean; resize?: { Width: number; Height: number } } = {}): Promise<StdioResult & { protocol: string; first: number[]; textFrames: number }> {
  // *base64.channel.k8s.io: text frames, the channel as an ASCII digit, the data in base64.
  const base64 = protocol.endsWith('base64.channel.k8s.io');
  const frame = (ch: number, data: Buffer): Buffer | string => (base64 ? String.fromCharCode(48 + ch) + data.toString('base64') : Buffer.concat([Buffer.from([ch]), data]));
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url.replace(/^http/, 'ws'), [protocol], { rejectUnauthorized: false });
    let stdout = '';
    let stderr = '';
    let status = '';
    let textFrames = 0;
    const first: number[] = [];
    const timer = setTimeout(() => { ws.terminate(); reject(new Error('WebSocket exec timed out')); }, 20_000);
    ws.on('open', () => {
      if (opts.resize !== undefined) ws.send(frame(4, Buffer.from(JSON.stringify(opts.resize))));
      if (opts.stdin !== undefined) ws.send(frame(0, opts.stdin));
      // v5: [255, channel] closes the client's stdin.
      if (opts.closeStdin === true) ws.send(Buffer.from([255, 0]));
    });
    ws.on('message', (raw: Buffer, isBinary: boolean) => {
      if (!isBinary) textFrames += 1;
      const ch = base64 ? (raw[0] as number) - 48 : raw[0];
      const data = base64 ? Buffer.from(raw.subarray(1).toString('latin1'), 'base64') : raw.subarray(1);
      if (first.length < 1) first.push(ch as number, data.length + 1);
      const text = data.toString('utf8');
      if (ch === 1) stdout += text;
      else if (ch === 2) stderr += text;
      else if (ch === 3) status += text;
    });
    ws.on('close', () => {
      clearTimeout(timer);
      resolve({ stdout, stderr, status: JSON.parse(status === '' ? '{}' : status) as StdioResult['status'], protocol: ws.protocol, first, textFrames });
    });
    ws.on('error', (e) => { clearTimeout(timer); reject(e); });
  });
}

/** One HTTP GET over a SPDY port-forward stream pair; resolves with the raw response and the error stream's text. */
export async function spdyPortForwardGet(url: string, port: number, paths: string[]): Promise<{ responses: string[]; errors: string[] }> {
  const { session, protocol } = await spdyConnect(url, ['portforward.k8s.io']);
  if (protocol !== 'portforward.k8s.io') throw new Error(`negotiated ${protocol}`);
  try {
    const responses: string[] = [];
    const errors: string[] = [];
    // Sequential requests over one session, as kubectl's listener makes one pair per accepted connection.
    for (const [i, p] of paths.entries()) {
      const error = await session.openStream({ streamtype: 'error', port: String(port), requestid: String(i) });
      const errText = collect(error);
      const data = await session.openStream({ streamtype: 'data', port: String(port), requestid: String(i) });
      const body = collect(data);
      data.end(`GET ${p} HTTP/1.0\r\nHost: pod\r\n\r\n`);
      responses.push(await body);
      errors.push(await errText);
    }
    return { responses, errors };
  } finally {
    session.destroy();
  }
}

/** Port-forward over a WebSocket: channel 0 data, 1 error, each starting with the port (LE). */
export function wsPortForwardGet(url: string, port: number, p: string): Promise<{ response: string; prefixes: number[][]; errors: string }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${url.replace(/^http/, 'ws')}?port=${port}`, ['v4.channel.k8s.io'], { rejectUnauthorized: false });
    let response = '';
    let errors = '';
    const prefixes: number[][] = [];
    const seen = new Set<number>();
    const timer = setTimeout(() => { ws.terminate(); reject(new Error('WebSocket port-forward timed out')); }, 20_000);
    ws.on('open', () => ws.send(Buffer.concat([Buffer.from([0]), Buffer.from(`GET ${p} HTTP/1.0\r\nHost: pod\r\n\r\n`)])));
    ws.on('message', (raw: Buffer) => {
      const ch = raw[0] as number;
      if (!seen.has(ch)) { seen.add(ch); prefixes.push([ch, ...raw.subarray(1)]); return; }
      if (ch === 0) response += raw.subarray(1).toString('utf8');
      if (ch === 1) errors += raw.subarray(1).toString('utf8');
    });
    ws.on('close', () => { clearTimeout(timer); resolve({ response, prefixes, errors }); });
    ws.on('error', (e) => { clearTimeout(timer); reject(e); });
  });
}
