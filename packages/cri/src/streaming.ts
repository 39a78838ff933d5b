/**
 * The CRI streaming server: Exec, Attach and PortForward answer with a URL
 * of this HTTP server carrying a single-use token (as the kubelet's
 * streaming library: random, expiring after a minute, at most 1000 in
 * flight). The client upgrades the request to SPDY/3.1
 * (`v4.channel.k8s.io`, `portforward.k8s.io`) or to a WebSocket
 * (`v5.channel.k8s.io`, `v4.channel.k8s.io`, `channel.k8s.io`; port-forward
 * over `v4.channel.k8s.io`), and the streams are wired to core's
 * ExecManager, ContainerManager (attach) or a dial into the pod's netns.
 */
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import type net from 'node:net';
import { PassThrough, type Readable } from 'node:stream';
import type { Logger } from 'pino';
import { WebSocketServer, type WebSocket } from 'ws';
import { IsulaError, toIsulaError, type AttachSink, type ContainerRecord, type Engine, type StdioStream } from '@isula/core';
import { sandboxMeta } from './labels.js';
import { dialPod, type PodConnection } from './port-forward.js';
import { SpdySession, type SpdyStream } from './spdy.js';
import { certificateNames, loadKeyPair, selfSignedKeyPair, type StreamTls, type TlsKeyPair } from './stream-tls.js';

export const TOKEN_TTL_MS = 60_000;
export const MAX_IN_FLIGHT = 1000;
/** How long a client has to open every stream it announced (the kubelet's streamCreationTimeout). */
const STREAM_CREATION_TIMEOUT_MS = 30_000;

export interface ExecRequest { container_id: string; cmd: string[]; tty: boolean; stdin: boolean; stdout: boolean; stderr: boolean }
export interface AttachRequest { container_id: string; tty: boolean; stdin: boolean; stdout: boolean; stderr: boolean }
export interface PortForwardRequest { pod_sandbox_id: string; port: number[] }

type Cached =
  | { kind: 'exec'; req: ExecRequest }
  | { kind: 'attach'; req: AttachRequest }
  | { kind: 'portforward'; req: PortForwardRequest };

const SPDY_EXEC_PROTOCOLS = ['v4.channel.k8s.io'];
const SPDY_PORTFORWARD_PROTOCOLS = ['portforward.k8s.io'];
const WS_EXEC_PROTOCOLS = ['v5.channel.k8s.io', 'v4.channel.k8s.io', 'v4.base64.channel.k8s.io', 'channel.k8s.io', 'base64.channel.k8s.io'];
const WS_PORTFORWARD_PROTOCOLS = ['v4.channel.k8s.io', 'v4.base64.channel.k8s.io'];

/**
 * The framing of a WebSocket subprotocol: binary frames whose first byte is
 * the channel, or (`*base64.channel.k8s.io`, for clients that can only send
 * text, such as browsers' older terminals) text frames whose first character
 * is the channel as an ASCII digit and whose rest is the data in base64.
 */
export function wsFraming(protocol: string): { encode(channel: number, data: Buffer): { frame: Buffer | string; binary: boolean }; decode(raw: Buffer, isBinary: boolean): { channel: number; data: Buffer } | undefined } {
  if (protocol.endsWith('base64.channel.k8s.io')) {
    return {
      encode: (channel, data) => ({ frame: String.fromCharCode(48 + channel) + data.toString('base64'), binary: false }),
      decode: (raw, isBinary) => {
        if (isBinary || raw.length === 0) return undefined;
        // The kubelet's: the channel is the first byte minus '0' (so '0'..'9', then ':' for 10 ...).
        const text = raw.toString('latin1');
        const channel = text.charCodeAt(0) - 48;
        if (channel < 0) return undefined;
        return { channel, data: Buffer.from(text.slice(1), 'base64') };
      },
    };
  }
  return {
    encode: (channel, data) => ({ frame: Buffer.concat([Buffer.from([channel]), data]), binary: true }),
    decode: (raw, isBinary) => (isBinary && raw.length > 0 ? { channel: raw[0] as number, data: raw.subarray(1) } : undefined),
  };
}

/** The kubelet's metav1.Status JSON on the error channel. */
export function statusJson(exitCode: number | null, error?: string): string {
  if (error !== undefined) return JSON.stringify({ metadata: {}, status: 'Failure', message: error });
  if (exitCode === 0) return JSON.stringify({ metadata: {}, status: 'Success' });
  const code = exitCode ?? -1;
  return JSON.stringify({
    metadata: {},
    status: 'Failure',
    message: `command terminated with non-zero exit code: error executing command, exit code ${code}`,
    reason: 'NonZeroExitCode',
    details: { causes: [{ reason: 'ExitCode', message: String(code) }] },
  });
}

/** What an exec or attach session talks through, whatever the transport. */
interface StdioChannels {
  stdin: Readable | undefined;
  stdout: ((b: Buffer) => void) | undefined;
  stderr: ((b: Buffer) => void) | undefined;
  onResize(listener: (rows: number, cols: number) => void): void;
  /** Writes the status, ends the output channels and closes the connection. */
  finish(status: string): void;
  /** Settles when the client went away. */
  gone: Promise<void>;
}

export interface StreamingServerOptions {
  /** host:port to bind; port 0 for an ephemeral one. */
  address: string;
  log: Logger;
  engine: () => Engine;
  /** How long a URL stays valid (TOKEN_TTL_MS). */
  tokenTtlMs?: number;
  /** A session with no traffic either way this long is closed (its exec killed, as when the client leaves); 0 or absent: never. */
  idleTimeoutMs?: number;
  /** Serve https (the URLs too): a key pair from files, or a self-signed one made at start. Absent: plain http. */
  tls?: StreamTls;
}

export class StreamingServer {
  readonly #opts: StreamingServerOptions;
  readonly #tokens = new Map<string, Cached & { expires: number }>();
  readonly #sessions = new Set<{ close(): void }>();
  #server: http.Server | https.Server | undefined;
  #base = '';
  readonly #wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, maxPayload: 16 * 1024 * 1024, handleProtocols: (protocols, req) => this.#wsProtocol(protocols, req) });

  constructor(opts: StreamingServerOptions) {
    this.#opts = opts;
  }

  /** The server's base URL (http://host:port, or https:// with TLS), once started. */
  get baseUrl(): string { return this.#base; }

  async start(): Promise<void> {
    const { host, port } = parseAddress(this.#opts.address);
    const tls = this.#opts.tls;
    // Files are checked before anything listens: a bad key pair is the start's error.
    let keyPair = tls !== undefined && 'certFile' in tls ? await loadKeyPair(tls.certFile, tls.keyFile) : undefined;
    const handler: http.RequestListener = (req, res) => {
      // Plain requests: the kubelet answers them only with an upgrade.
      res.writeHead(this.#peek(req.url ?? '') ? 400 : 404, { 'Content-Type': 'text/plain' });
      res.end(this.#peek(req.url ?? '') ? 'Upgrade request required\n' : 'not found\n');
    };
    const server = tls === undefined ? http.createServer(handler) : https.createServer(keyPair === undefined ? {} : secureContextOf(keyPair), handler);
    server.on('upgrade', (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => this.#upgrade(req, socket, head));
    server.on('clientError', (_err, socket) => socket.destroy());
    // A failed handshake (a plain-http client, a client that refuses the certificate) ends that connection only.
    server.on('tlsClientError', (err: Error) => this.#opts.log.debug({ err }, 'CRI streaming TLS handshake failed'));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => { server.off('error', reject); resolve(); });
    });
    const addr = server.address() as net.AddressInfo;
    const urlHost = addr.address === '0.0.0.0' || addr.address === '::' ? '127.0.0.1' : addr.address;
    if (tls !== undefined && keyPair === undefined) {
      // Made once the URL's host is known (a DNS name listens on what it resolves to).
      // No URL is handed out before start() returns, so no stream meets the server without it.
      try {
        keyPair = await selfSignedKeyPair(certificateNames(host, urlHost));
        (server as https.Server).setSecureContext(secureContextOf(keyPair));
        this.#opts.log.warn({ url: `https://${urlHost}:${addr.port}` }, 'CRI streaming over TLS with a self-signed certificate: crictl accepts it, a kubelet (1.20 on) does not (it verifies against the node\'s CAs); give streamTlsCert/streamTlsKey, or plain HTTP on loopback');
      } catch (err) {
        await new Promise<void>((resolve) => server.close(() => resolve()));
        throw err;
      }
    }
    this.#base = `${tls === undefined ? 'http' : 'https'}://${urlHost.includes(':') ? `[${urlHost}]` : urlHost}:${addr.port}`;
    this.#server = server;
    this.#opts.log.info({ url: this.#base, ...(keyPair !== undefined && certificateFields(keyPair, tls)) }, 'CRI streaming server listening');
  }

  async stop(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    for (const s of this.#sessions) s.close();
    this.#sessions.clear();
    this.#tokens.clear();
    this.#wss.close();
    if (server === undefined) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** Registers a request and returns its URL (GetExec/GetAttach/GetPortForward). */
  url(c: Cached): string {
    if (this.#server === undefined) throw new IsulaError('RUNTIME_UNAVAILABLE', 'the CRI streaming server is not running');
    const now = Date.now();
    for (const [t, v] of this.#tokens) if (v.expires <= now) this.#tokens.delete(t);
    if (this.#tokens.size >= MAX_IN_FLIGHT) throw new IsulaError('RUNTIME_UNAVAILABLE', `too many streaming requests in flight (${MAX_IN_FLIGHT}); try again later`);
    const token = randomBytes(16).toString('base64url');
    this.#tokens.set(token, { ...c, expires: now + (this.#opts.tokenTtlMs ?? TOKEN_TTL_MS) });
    return `${this.#base}/${c.kind}/${token}`;
  }

  #route(url: string): { kind: string; token: string } | undefined {
    const m = /^\/(exec|attach|portforward)\/([A-Za-z0-9_-]{1,64})(?:\?.*)?$/.exec(url);
    return m === null ? undefined : { kind: m[1] as string, token: m[2] as string };
  }

  #peek(url: string): boolean {
    const r = this.#route(url);
    const c = r === undefined ? undefined : this.#tokens.get(r.token);
    return c !== undefined && c.kind === r?.kind && c.expires > Date.now();
  }

  /** Single use: the token is gone once asked for, valid or not. */
  #consume(url: string): Cached | undefined {
    const r = this.#route(url);
    if (r === undefined) return undefined;
    const c = this.#tokens.get(r.token);
    this.#tokens.delete(r.token);
    if (c === undefined || c.kind !== r.kind || c.expires <= Date.now()) return undefined;
    return c;
  }

  #upgrade(req: http.IncomingMessage, socket: net.Socket, head: Buffer): void {
    socket.on('error', () => undefined);
    const refuse = (code: number, text: string) => {
      socket.end(`HTTP/1.1 ${code} ${http.STATUS_CODES[code] ?? ''}\r\nContent-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(text)}\r\nConnection: close\r\n\r\n${text}`);
    };
    const upgrade = (req.headers['upgrade'] ?? '').toLowerCase();
    const cached = this.#consume(req.url ?? '');
    if (cached === undefined) { refuse(404, 'unknown or expired streaming token\n'); return; }
    const log = this.#opts.log.child({ stream: cached.kind });
    if (upgrade === 'websocket') {
      this.#wss.handleUpgrade(req, socket, head, (ws) => {
        this.#closeWhenIdle(socket, log); // after ws's own set-up, which clears the socket's timeout
        const tracked = { close: () => ws.terminate() };
        this.#sessions.add(tracked);
        ws.once('close', () => this.#sessions.delete(tracked));
        this.#serveWebSocket(ws, cached, req, log).catch((err: unknown) => { log.warn({ err }, 'streaming session failed'); ws.terminate(); });
      });
      return;
    }
    if (upgrade !== 'spdy/3.1') { refuse(400, `unsupported upgrade ${JSON.stringify(upgrade)} (want SPDY/3.1 or websocket)\n`); return; }
    const offered = headerList(req.headers['x-stream-protocol-version']);
    const supported = cached.kind === 'portforward' ? SPDY_PORTFORWARD_PROTOCOLS : SPDY_EXEC_PROTOCOLS;
    const protocol = supported.find((p) => offered.includes(p));
    if (protocol === undefined) { refuse(403, `unable to upgrade: unable to negotiate protocol: client supports ${JSON.stringify(offered)}, server supports ${JSON.stringify(supported)}\n`); return; }
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: ${protocol}\r\n\r\n`);
    const session = new SpdySession(socket, { role: 'server' });
    this.#closeWhenIdle(socket, log);
    session.on('error', (err: Error) => log.debug({ err }, 'SPDY session error'));
    this.#sessions.add(session);
    session.once('close', () => this.#sessions.delete(session));
    session.feed(head);
    const run = cached.kind === 'portforward' ? this.#spdyPortForward(session, cached.req, log) : this.#spdyStdio(session, cached, log);
    run.catch((err: unknown) => { log.warn({ err }, 'streaming session failed'); session.destroy(); });
  }

  /**
   * The kubelet's streamingConnectionIdleTimeout: no byte either way for
   * that long ends the session, which then ends as when the client leaves.
   */
  #closeWhenIdle(socket: net.Socket, log: Logger): void {
    const idle = this.#opts.idleTimeoutMs ?? 0;
    if (idle <= 0) return;
    socket.setTimeout(idle, () => {
      log.info({ idleTimeoutMs: idle }, 'closing an idle streaming connection');
      socket.destroy();
    });
  }

  #wsProtocol(protocols: Set<string>, req: http.IncomingMessage): string | false {
    const kind = this.#route(req.url ?? '')?.kind;
    const supported = kind === 'portforward' ? WS_PORTFORWARD_PROTOCOLS : WS_EXEC_PROTOCOLS;
    // The kubelet's list decides; a client offering none gets the plain binary channels.
    return supported.find((p) => protocols.has(p)) ?? false;
  }

  // ---- SPDY --------------------------------------------------------------------

  async #spdyStdio(session: SpdySession, cached: Cached & { kind: 'exec' | 'attach' }, log: Logger): Promise<void> {
    const req = cached.req;
    const tty = req.tty;
    const expected = new Set(['error', ...(req.stdin ? ['stdin'] : []), ...(req.stdout ? ['stdout'] : []), ...(req.stderr && !tty ? ['stderr'] : []), ...(tty ? ['resize'] : [])]);
    const streams = new Map<string, SpdyStream>();
    const ready = new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), STREAM_CREATION_TIMEOUT_MS);
      session.once('close', () => { clearTimeout(timer); resolve(false); });
      session.on('stream', (s: SpdyStream) => {
        const type = s.header('streamtype');
        if (!expected.has(type) || streams.has(type)) { s.reset(); return; }
        void s.reply();
        s.on('error', () => undefined);
        streams.set(type, s);
        if (streams.size === expected.size) { clearTimeout(timer); resolve(true); }
      });
    });
    if (!(await ready)) {
      log.debug({ got: [...streams.keys()], want: [...expected] }, 'SPDY client did not open its streams');
      session.close();
      return;
    }
    const out = (name: string) => {
      const s = streams.get(name);
      return s === undefined ? undefined : (b: Buffer) => { if (!s.writableEnded && !s.destroyed) s.write(b); };
    };
    const gone = new Promise<void>((resolve) => session.once('close', () => resolve()));
    const io: StdioChannels = {
      stdin: streams.get('stdin'),
      stdout: out('stdout'),
      stderr: out('stderr'),
      onResize: (listener) => { const r = streams.get('resize'); if (r !== undefined) onTerminalSizes(r, listener); },
      finish: (status) => {
        // v4 clients read a Status JSON, success included, until the error stream's FIN;
        // GOAWAY goes once every FIN is out (or after 5 s if a stream cannot drain).
        const ends = ['stdout', 'stderr', 'error'].map((name) => endStream(streams.get(name), name === 'error' ? status : undefined));
        const timer = setTimeout(() => session.close(), 5000);
        void Promise.all(ends).then(() => { clearTimeout(timer); session.close(); });
      },
      gone,
    };
    await this.#runStdio(cached, io, log);
  }

  async #spdyPortForward(session: SpdySession, req: PortForwardRequest, log: Logger): Promise<void> {
    const netns = this.#netnsOf(req.pod_sandbox_id);
    const pairs = new Map<string, { data?: SpdyStream; error?: SpdyStream; timer: NodeJS.Timeout }>();
    const conns = new Set<PodConnection>();
    session.once('close', () => {
      for (const c of conns) c.close();
      for (const p of pairs.values()) clearTimeout(p.timer);
    });
    session.on('stream', (s: SpdyStream) => {
      const type = s.header('streamtype');
      if (type !== 'data' && type !== 'error') { s.reset(); return; }
      void s.reply();
      s.on('error', () => undefined);
      // Old clients send no requestid: the error stream is the data stream's id minus 2.
      const rid = s.header('requestid') !== '' ? s.header('requestid') : String(type === 'error' ? s.id : s.id - 2);
      let p = pairs.get(rid);
      if (p === undefined) {
        p = { timer: setTimeout(() => { pairs.delete(rid); p?.data?.reset(); p?.error?.reset(); }, STREAM_CREATION_TIMEOUT_MS) };
        pairs.set(rid, p);
      }
      if (p[type] !== undefined) { s.reset(); return; }
      p[type] = s;
      const { data, error } = p;
      if (data === undefined || error === undefined) return;
      clearTimeout(p.timer);
      pairs.delete(rid);
      const port = Number(data.header('port'));
      if (!Number.isInteger(port) || port < 1 || port > 65535) {
        error.end(`invalid port ${JSON.stringify(data.header('port'))}`);
        data.end();
        return;
      }
      const conn = dialPod(netns, port);
      conns.add(conn);
      data.pipe(conn.stream);
      conn.stream.pipe(data);
      void conn.result.then((err) => {
        conns.delete(conn);
        if (err !== '') {
          log.debug({ port, err }, 'port-forward connection failed');
          error.end(`error forwarding port ${port} to pod ${req.pod_sandbox_id}: ${err}`);
        } else {
          error.end();
        }
        if (!data.writableEnded) data.end();
      });
    });
    await new Promise<void>((resolve) => session.once('close', () => resolve()));
  }

  // ---- WebSocket ---------------------------------------------------------------

  async #serveWebSocket(ws: WebSocket, cached: Cached, req: http.IncomingMessage, log: Logger): Promise<void> {
    const gone = new Promise<void>((resolve) => ws.once('close', () => resolve()));
    ws.on('error', () => undefined);
    const framing = wsFraming(ws.protocol);
    const send = (channel: number, data: Buffer) => {
      if (ws.readyState !== ws.OPEN) return;
      const { frame, binary } = framing.encode(channel, data);
      ws.send(frame, { binary });
    };
    const onFrame = (handle: (channel: number, data: Buffer) => void) => {
      ws.on('message', (raw: Buffer | ArrayBuffer | Buffer[], isBinary: boolean) => {
        const buf = Buffer.isBuffer(raw) ? raw : Array.isArray(raw) ? Buffer.concat(raw) : Buffer.from(raw);
        const f = framing.decode(buf, isBinary);
        if (f !== undefined) handle(f.channel, f.data);
      });
    };
    if (cached.kind === 'portforward') {
      await this.#wsPortForward(ws, cached.req, req, send, onFrame, gone, log);
      return;
    }
    const v5 = ws.protocol === 'v5.channel.k8s.io';
    // v4 and v5 write a metav1.Status; channel.k8s.io (and no subprotocol) only a failure's message.
    const statusV4 = ws.protocol === 'v5.channel.k8s.io' || ws.protocol.startsWith('v4.');
    const stdin = cached.req.stdin ? new PassThrough() : undefined;
    const resizers: ((rows: number, cols: number) => void)[] = [];
    let resizeText = '';
    onFrame((ch, data) => {
      if (v5 && ch === 255) {
        // v5: the client closed one of its channels (stdin's EOF).
        if (data[0] === 0) stdin?.end();
        return;
      }
      if (ch === 0 && stdin !== undefined && !stdin.writableEnded) stdin.write(data);
      if (ch === 4) {
        resizeText += data.toString('utf8');
        resizeText = drainSizes(resizeText, (rows, cols) => { for (const r of resizers) r(rows, cols); });
      }
    });
    gone.then(() => stdin?.end(), () => undefined);
    const tty = cached.req.tty;
    const io: StdioChannels = {
      stdin,
      stdout: cached.req.stdout ? (b) => send(1, b) : undefined,
      stderr: cached.req.stderr && !tty ? (b) => send(2, b) : undefined,
      onResize: (l) => { resizers.push(l); },
      finish: (status) => {
        const parsed = JSON.parse(status) as { status: string; message?: string };
        if (statusV4) send(3, Buffer.from(status));
        else if (parsed.status !== 'Success') send(3, Buffer.from(parsed.message ?? ''));
        ws.close(1000);
      },
      gone,
    };
    // The kubelet's "connection established" signal: an empty frame on the lowest output channel.
    send(cached.req.stdout ? 1 : cached.req.stderr && !tty ? 2 : 3, Buffer.alloc(0));
    await this.#runStdio(cached, io, log);
  }

  async #wsPortForward(ws: WebSocket, req: PortForwardRequest, http_: http.IncomingMessage, send: (ch: number, b: Buffer) => void, onFrame: (handle: (ch: number, data: Buffer) => void) => void, gone: Promise<void>, log: Logger): Promise<void> {
    const query = new URL(http_.url ?? '/', 'http://x').searchParams;
    const ports = query.getAll('port').flatMap((v) => v.split(',')).filter((v) => v !== '').map(Number);
    if (ports.length === 0 || ports.some((p) => !Number.isInteger(p) || p < 1 || p > 65535)) {
      ws.close(1008, 'port-forward over WebSocket needs ?port=N query parameters (1-65535)');
      return;
    }
    const netns = this.#netnsOf(req.pod_sandbox_id);
    const conns: PodConnection[] = [];
    ports.forEach((port, i) => {
      const prefix = Buffer.alloc(2);
      prefix.writeUInt16LE(port);
      // The first frame on each channel names its port (little-endian), as the kubelet's.
      send(2 * i, prefix);
      send(2 * i + 1, prefix);
      const conn = dialPod(netns, port);
      conns[i] = conn;
      conn.stream.on('data', (c: Buffer) => send(2 * i, c));
      void conn.result.then((err) => {
        if (err !== '') {
          log.debug({ port, err }, 'port-forward connection failed');
          send(2 * i + 1, Buffer.from(`error forwarding port ${port} to pod ${req.pod_sandbox_id}: ${err}`));
        }
      });
    });
    onFrame((ch, data) => {
      const conn = ch % 2 === 0 ? conns[ch / 2] : undefined;
      if (conn !== undefined && !conn.stream.writableEnded) conn.stream.write(data);
    });
    await Promise.race([gone, Promise.all(conns.map((c) => c.result))]);
    for (const c of conns) c.close();
    if (ws.readyState === ws.OPEN) ws.close(1000);
  }

  // ---- exec and attach -------------------------------------------------------------

  async #runStdio(cached: Cached & { kind: 'exec' | 'attach' }, io: StdioChannels, log: Logger): Promise<void> {
    const engine = this.#opts.engine();
    let stream: StdioStream | undefined;
    const pumpStdin = (st: StdioStream) => {
      const input = io.stdin;
      if (input === undefined) return;
      void (async () => {
        for await (const chunk of input as AsyncIterable<Buffer>) {
          // conmon cuts a stdin message past 32 KiB (PLATFORM §3): 8 KiB pieces.
          for (let off = 0; off < chunk.length; off += 8192) await st.writeStdin(chunk.subarray(off, off + 8192));
        }
        await st.closeStdin();
      })().catch((err: unknown) => log.debug({ err }, 'stdin copy ended'));
    };
    const write = (s: 1 | 2, chunk: Buffer) => (s === 1 ? io.stdout : io.stderr)?.(chunk);
    if (cached.kind === 'exec') {
      const req = cached.req;
      let execId: string;
      let exitCode: number | null;
      try {
        execId = engine.execs.create(req.container_id, { Cmd: req.cmd, AttachStdin: req.stdin, AttachStdout: req.stdout, AttachStderr: req.stderr && !req.tty, Tty: req.tty }).Id;
        io.onResize((rows, cols) => {
          engine.execs.resize(execId, rows, cols, AbortSignal.timeout(10_000)).catch((err: unknown) => log.debug({ err }, 'exec resize failed'));
        });
        let outputClosed!: () => void;
        const closed = new Promise<void>((resolve) => { outputClosed = resolve; });
        const inst = await engine.execs.start(execId, {
          write,
          connected: (st) => { stream = st; st.onClose(outputClosed); pumpStdin(st); },
        });
        if (stream === undefined) outputClosed();
        await Promise.race([Promise.all([inst.done, closed]), io.gone]);
        exitCode = inst.exitCode;
        if (exitCode === null) {
          // The client left first: as containerd's, the process goes too (an abandoned `kubectl exec -it sh` would run for ever).
          if (inst.running && inst.pid > 0) {
            try { process.kill(inst.pid, 'SIGKILL'); } catch { /* gone already */ }
          }
          (stream as StdioStream | undefined)?.close();
          return;
        }
      } catch (err) {
        io.finish(statusJson(null, toIsulaError(err).message));
        return;
      }
      io.finish(statusJson(exitCode));
      return;
    }
    const req = cached.req;
    let ended!: () => void;
    const done = new Promise<void>((resolve) => { ended = resolve; });
    const sink: AttachSink = {
      stdin: req.stdin,
      stdout: req.stdout,
      stderr: req.stderr && !req.tty,
      write,
      end: () => ended(),
      connected: (st) => { stream = st; pumpStdin(st); },
    };
    const abort = new AbortController();
    void io.gone.then(() => abort.abort());
    try {
      io.onResize((rows, cols) => {
        void (async () => {
          const { runtime, ref } = await engine.containers.driverOf(req.container_id);
          await runtime.resize(ref, { signal: AbortSignal.timeout(10_000), rows, cols });
        })().catch((err: unknown) => log.debug({ err }, 'attach resize failed'));
      });
      await engine.containers.attach(req.container_id, sink, abort.signal);
      await Promise.race([done, io.gone]);
    } catch (err) {
      io.finish(statusJson(null, toIsulaError(err).message));
      return;
    } finally {
      (stream as StdioStream | undefined)?.close();
      engine.containers.detachPending(req.container_id, sink);
    }
    io.finish(statusJson(0));
  }

  /** The pod's network namespace file; undefined for a hostNetwork pod. */
  #netnsOf(sandboxId: string): string | undefined {
    const r: ContainerRecord = this.#opts.engine().containers.find(sandboxId).record;
    if (sandboxMeta(r).hostNetwork) return undefined;
    const key = r.Network?.SandboxKey;
    if (key !== undefined && key !== '') return key;
    if (r.State.Pid <= 0) throw new IsulaError('CONTAINER_STATE_CONFLICT', `pod sandbox ${r.Id} is not running`);
    return `/proc/${r.State.Pid}/ns/net`;
  }
}

function secureContextOf({ cert, key }: TlsKeyPair): { cert: string; key: string } {
  return { cert, key };
}

/** What the start-up log line says of the certificate. */
function certificateFields({ certificate }: TlsKeyPair, tls: StreamTls | undefined): Record<string, unknown> {
  return {
    tls: tls !== undefined && 'certFile' in tls ? 'files' : 'self-signed',
    subjectAltName: certificate.subjectAltName,
    validTo: certificate.validTo,
    fingerprint256: certificate.fingerprint256,
  };
}

/** Ends a stream (with a last chunk); resolves once its FIN went out or it was destroyed. */
function endStream(s: SpdyStream | undefined, last?: string): Promise<void> {
  if (s === undefined || s.destroyed || s.writableFinished) return Promise.resolve();
  return new Promise<void>((resolve) => {
    s.once('finish', () => resolve());
    s.once('close', () => resolve());
    if (last !== undefined) s.end(last);
    else s.end();
  });
}

/** `{"Width":80,"Height":24}` objects, one after another, on a resize stream. */
function onTerminalSizes(stream: Readable, listener: (rows: number, cols: number) => void): void {
  let text = '';
  stream.on('data', (c: Buffer) => {
    text += c.toString('utf8');
    if (text.length > 64 * 1024) text = ''; // garbage: drop it rather than grow
    text = drainSizes(text, listener);
  });
}

/** Parses the complete size objects at the front of `text`, returns the rest. */
function drainSizes(text: string, listener: (rows: number, cols: number) => void): string {
  let rest = text;
  for (let i = rest.indexOf('}'); i >= 0; i = rest.indexOf('}')) {
    const obj = rest.slice(0, i + 1).trim();
    rest = rest.slice(i + 1);
    try {
      const v = JSON.parse(obj) as { Width?: unknown; Height?: unknown };
      const cols = Number(v.Width);
      const rows = Number(v.Height);
      if (Number.isInteger(rows) && Number.isInteger(cols) && rows >= 0 && cols >= 0 && rows <= 65535 && cols <= 65535) listener(rows, cols);
    } catch { /* not JSON: skipped */ }
  }
  return rest;
}

function headerList(v: string | string[] | undefined): string[] {
  return (Array.isArray(v) ? v : v === undefined ? [] : [v]).flatMap((s) => s.split(',')).map((s) => s.trim()).filter((s) => s !== '');
}

export function parseAddress(address: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(address) ?? /^(?:\[([^\]]+)\]|([^:]+))()$/.exec(address);
  if (m === null) throw new IsulaError('PLUGIN_OPTIONS_INVALID', `@isula/cri: "streamAddress" ${JSON.stringify(address)} is not host:port`);
  const host = m[1] ?? m[2] ?? '';
  const port = m[3] === undefined || m[3] === '' ? 0 : Number(m[3]);
  if (host === '' || !Number.isInteger(port) || port < 0 || port > 65535) throw new IsulaError('PLUGIN_OPTIONS_INVALID', `@isula/cri: "streamAddress" ${JSON.stringify(address)} is not host:port`);
  return { host, port };
}
