/**
 * Real registries for the tests: Debian's `docker-registry` (distribution
 * 2.8.2, PLATFORM.md §7) on 127.0.0.1, each on a free port with its own temp
 * dir (config, filesystem storage, certificates, log), plain or TLS, open or
 * behind htpasswd or token auth; and skopeo to push the offline test images
 * into them and read digests back.
 *
 * Every server is stopped and its dir removed by the test's `t.after`; every
 * wait is bounded.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import { constants as fsConstants } from 'node:fs';
import fs from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { waitFor } from './harness.js';
import { IMAGES_DIR } from './containers.js';

export const REGISTRY_BIN = process.env['ISULA_REGISTRY_BIN'] ?? '/usr/bin/docker-registry';

/** What node:test's `t` (or the module-level `after`) offers for teardown. */
export interface Teardown {
  after(fn: () => Promise<void>): void;
}

export interface Credentials {
  username: string;
  password: string;
}

export interface TokenAuthOptions extends Credentials {
  /**
   * What a request without credentials gets: `pull` (default, like Docker
   * Hub's public repositories) a token granting pull only; `none` a token
   * granting nothing, so the registry answers 401 insufficient_scope.
   */
  anonymous?: 'pull' | 'none';
}

export interface RegistryOptions {
  /** Serve HTTPS with a server certificate (SAN IP:127.0.0.1) signed by a CA made for this registry. */
  tls?: boolean;
  /** Basic auth against a bcrypt htpasswd file holding this one user. */
  htpasswd?: Credentials;
  /** Bearer token auth against a test token server started with the registry. */
  token?: TokenAuthOptions;
}

/** One request the test token server answered. */
export interface TokenRequest {
  method: string;
  /** The `account` query parameter or the Basic/form user name. */
  account: string | undefined;
  scopes: string[];
  service: string | null;
  status: number;
  /** What the issued token grants, `type:name:actions` per entry. */
  granted: string[];
}

export interface TestTokenServer {
  /** The realm the registry's 401 names: `http://127.0.0.1:PORT/token`. */
  realm: string;
  service: string;
  issuer: string;
  /** Every request, in order (tests assert how often a client fetched a token). */
  requests: TokenRequest[];
  stop(): Promise<void>;
}

export interface TestRegistry {
  /** `127.0.0.1:PORT`, as it appears in an image reference. */
  host: string;
  /** `http://host` or `https://host`. */
  url: string;
  isTls: boolean;
  /** The CA that signed the server certificate (TLS only). */
  caFile?: string;
  /** A dir shaped like Docker's certs.d: `<certsDir>/<host>/ca.crt` (TLS only). */
  certsDir?: string;
  credentials?: Credentials;
  token?: TestTokenServer;
  /** The registry's temp dir (removed on stop). */
  dir: string;
  /** docker-registry's stdout and stderr. */
  logFile: string;
  stop(): Promise<void>;
}

const TOKEN_SERVICE = 'isula-test-registry';
const TOKEN_ISSUER = 'isula-test-token-server';
const TOKEN_TTL_S = 300;

function onPath(bin: string): Promise<boolean> {
  if (bin.includes('/')) return fs.access(bin, fsConstants.X_OK).then(() => true, () => false);
  const dirs = (process.env['PATH'] ?? '').split(':').filter(Boolean);
  return Promise.all(dirs.map((d) => fs.access(path.join(d, bin), fsConstants.X_OK).then(() => true, () => false))).then((r) => r.includes(true));
}

/** What this host lacks to run the registry tests (empty when all is there). */
export async function missingRegistryPrerequisites(): Promise<string[]> {
  const missing: string[] = [];
  if (process.getuid?.() !== 0) missing.push('root (scripts/make-test-images.sh)');
  for (const [bin, pkg] of [[REGISTRY_BIN, 'docker-registry'], ['skopeo', 'skopeo'], ['openssl', 'openssl'], ['htpasswd', 'apache2-utils'], ['umoci', 'umoci']] as const) {
    if (!(await onPath(bin))) missing.push(`${bin} (Debian package ${pkg})`);
  }
  return missing;
}

/**
 * `{ skip }` value for registry tests: false when the host has everything,
 * else the reason. Under CI=true a missing prerequisite throws instead, so
 * the file fails rather than passing with nothing run.
 */
export async function registrySkip(): Promise<string | false> {
  const missing = await missingRegistryPrerequisites();
  if (missing.length === 0) return false;
  const reason = `needs ${missing.join(', ')}; scripts/setup.sh test installs them`;
  if (process.env['CI'] === 'true') throw new Error(`registry tests cannot run under CI: ${reason}`);
  return reason;
}

interface ExecResult {
  stdout: Buffer;
  stderr: string;
}

/** An error from a helper command, with what a test needs to look at. */
export class CommandError extends Error {
  readonly argv: string[];
  readonly exitCode: number | null;
  readonly stderr: string;
  constructor(argv: string[], exitCode: number | null, stderr: string, options?: ErrorOptions) {
    super(`${argv.join(' ')} failed (${exitCode ?? 'killed'}): ${stderr.trim()}`, options);
    this.argv = argv;
    this.exitCode = exitCode;
    this.stderr = stderr;
  }
}

function run(cmd: string, args: string[], { timeoutMs = 30_000, env, cwd }: { timeoutMs?: number; env?: NodeJS.ProcessEnv; cwd?: string } = {}): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { encoding: 'buffer', timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 64 * 1024 * 1024, env: env ?? process.env, ...(cwd === undefined ? {} : { cwd }) }, (err, stdout, stderr) => {
      if (err === null) { resolve({ stdout, stderr: stderr.toString('utf8') }); return; }
      const code = typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : null;
      reject(new CommandError([cmd, ...args], code, stderr.toString('utf8') || err.message, { cause: err }));
    });
  });
}

/** A port nobody listens on right now (the registry binds it a moment later; startRegistry retries on a clash). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === 'object' && addr !== null ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}

export interface RawResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

/**
 * One HTTP(S) request with node:http (fetch cannot take a CA), the body read
 * whole (up to `maxBytes`, then the connection is dropped). No redirects are
 * followed. Bounded by `timeoutMs`.
 */
export function rawRequest(url: string, { method = 'GET', headers = {}, body, ca, timeoutMs = 10_000, maxBytes = 64 * 1024 * 1024 }: { method?: string; headers?: Record<string, string>; body?: string | Buffer; ca?: string | Buffer; timeoutMs?: number; maxBytes?: number } = {}): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const mod = u.protocol === 'https:' ? https : http;
    const req = mod.request(u, { method, headers, ...(ca === undefined ? {} : { ca }), agent: false }, (res) => {
      const chunks: Buffer[] = [];
      let n = 0;
      res.on('data', (c: Buffer) => {
        n += c.length;
        if (n > maxBytes) { req.destroy(new Error(`${method} ${url}: body larger than ${maxBytes} bytes`)); return; }
        chunks.push(c);
      });
      res.on('end', () => { clearTimeout(timer); resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }); });
      res.on('error', (e) => { clearTimeout(timer); reject(e); });
    });
    const timer = setTimeout(() => req.destroy(new Error(`${method} ${url}: no complete answer within ${timeoutMs} ms`)), timeoutMs);
    req.on('error', (e) => { clearTimeout(timer); reject(e); });
    req.end(body);
  });
}

export const sha256 = (b: Buffer | string): string => `sha256:${crypto.createHash('sha256').update(b).digest('hex')}`;

// --- certificates (openssl) ----------------------------------------------------

const EC_KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

/** A self-signed CA certificate and key: `<dir>/<name>.crt`, `<dir>/<name>.key`. */
async function selfSigned(dir: string, name: string, cn: string): Promise<{ cert: string; key: string }> {
  const cnf = path.join(dir, `${name}.cnf`);
  await fs.writeFile(cnf, [
    '[req]', 'distinguished_name = dn', 'prompt = no', 'x509_extensions = ext',
    '[dn]', `CN = ${cn}`,
    '[ext]', 'basicConstraints = critical,CA:TRUE', 'keyUsage = critical,digitalSignature,keyCertSign,cRLSign', 'subjectKeyIdentifier = hash', '',
  ].join('\n'));
  const cert = path.join(dir, `${name}.crt`);
  const key = path.join(dir, `${name}.key`);
  await run('openssl', ['req', '-x509', '-config', cnf, ...EC_KEY, '-keyout', key, '-out', cert, '-days', '2'], { timeoutMs: 15_000 });
  return { cert, key };
}

/** A CA and a server certificate for 127.0.0.1 (Go and Node check the IP SAN, not the CN). */
async function makeServerCerts(dir: string): Promise<{ caFile: string; certFile: string; keyFile: string }> {
  const ca = await selfSigned(dir, 'ca', 'isula test registry CA');
  const cnf = path.join(dir, 'server.cnf');
  await fs.writeFile(cnf, [
    '[req]', 'distinguished_name = dn', 'prompt = no',
    '[dn]', 'CN = 127.0.0.1',
    '[ext]', 'basicConstraints = CA:FALSE', 'keyUsage = critical,digitalSignature,keyEncipherment', 'extendedKeyUsage = serverAuth',
    'subjectAltName = IP:127.0.0.1', 'authorityKeyIdentifier = keyid', '',
  ].join('\n'));
  const csr = path.join(dir, 'server.csr');
  const keyFile = path.join(dir, 'server.key');
  const certFile = path.join(dir, 'server.crt');
  await run('openssl', ['req', '-new', '-config', cnf, ...EC_KEY, '-keyout', keyFile, '-out', csr], { timeoutMs: 15_000 });
  await run('openssl', ['x509', '-req', '-in', csr, '-CA', ca.cert, '-CAkey', ca.key, '-set_serial', `0x${crypto.randomBytes(8).toString('hex')}`,
    '-days', '2', '-extfile', cnf, '-extensions', 'ext', '-out', certFile], { timeoutMs: 15_000 });
  return { caFile: ca.cert, certFile, keyFile };
}

// --- test token server ----------------------------------------------------------

const b64url = (b: Buffer | string): string => Buffer.from(b).toString('base64url');

function jsonError(res: http.ServerResponse, status: number, code: string, message: string, headers: Record<string, string> = {}): void {
  const body = JSON.stringify({ errors: [{ code, message, detail: null }] });
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body), ...headers });
  res.end(body);
}

function readBody(req: http.IncomingMessage, maxBytes = 64 * 1024): Promise<string> {
  return new Promise((resolve, reject) => {
    let s = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => { s += c; if (s.length > maxBytes) req.destroy(new Error('body too large')); });
    req.on('end', () => resolve(s));
    req.on('error', reject);
  });
}

/** Splits `repository:name:pull,push` (the name may hold `:` only in a port, the actions are last). */
function parseScope(scope: string): { type: string; name: string; actions: string[] } | undefined {
  const first = scope.indexOf(':');
  const last = scope.lastIndexOf(':');
  if (first <= 0 || last === first) return undefined;
  return { type: scope.slice(0, first), name: scope.slice(first + 1, last), actions: scope.slice(last + 1).split(',').filter(Boolean) };
}

/**
 * The test token server: the Docker token protocol
 * (https://distribution.github.io/distribution/spec/auth/token/) over plain
 * http on 127.0.0.1, enough for docker, containerd, c/image and our client.
 *
 * - `GET /token?service=S&scope=repository:NAME:pull,push[&scope=...][&account=U]`
 *   with optional Basic auth, and `POST /token` with an OAuth2 form
 *   (`grant_type=password`, `username`, `password`, `service`, `scope`).
 * - Right credentials: a token granting every requested action. No
 *   credentials: pull only (or nothing, `anonymous: 'none'`). Wrong
 *   credentials: 401 with a JSON `{"errors":[{"code":"UNAUTHORIZED"}]}` body.
 *   A `service` other than the registry's: 400.
 * - The token: a JWT signed ES256 (P-256, IEEE P1363 signature) whose header
 *   carries `x5c` with a self-signed certificate; that certificate is the
 *   registry's `rootcertbundle`. Answer: `{token, access_token, expires_in,
 *   issued_at}`.
 */
export async function startTokenServer(t: Teardown, dir: string, opts: TokenAuthOptions): Promise<TestTokenServer & { certFile: string }> {
  const { cert: certFile, key: keyFile } = await selfSigned(dir, 'token', 'isula test token server');
  const key = crypto.createPrivateKey(await fs.readFile(keyFile));
  const x5c = new crypto.X509Certificate(await fs.readFile(certFile)).raw.toString('base64'); // standard base64 DER (RFC 7515 §4.1.6)
  const requests: TokenRequest[] = [];
  const anonymous = opts.anonymous ?? 'pull';

  function mint(account: string, access: { type: string; name: string; actions: string[] }[]): string {
    const now = Math.floor(Date.now() / 1000);
    const header = { typ: 'JWT', alg: 'ES256', x5c: [x5c] };
    const claims = { iss: TOKEN_ISSUER, sub: account, aud: TOKEN_SERVICE, exp: now + TOKEN_TTL_S, nbf: now - 10, iat: now, jti: crypto.randomUUID(), access };
    const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
    const sig = crypto.sign('sha256', Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' });
    return `${input}.${b64url(sig)}`;
  }

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const u = new URL(req.url ?? '/', 'http://token.invalid');
    const rec: TokenRequest = { method: req.method ?? '', account: undefined, scopes: [], service: null, status: 0, granted: [] };
    requests.push(rec);
    const reply = (status: number, send: () => void): void => { rec.status = status; send(); };
    if (u.pathname !== '/token') { reply(404, () => jsonError(res, 404, 'NOT_FOUND', `no ${u.pathname} here; the realm is /token`)); return; }

    let user: string | undefined;
    let pass: string | undefined;
    let params: URLSearchParams;
    if (req.method === 'GET') {
      params = u.searchParams;
      const m = /^Basic\s+(.+)$/i.exec(req.headers.authorization ?? '');
      if (m?.[1] !== undefined) {
        const decoded = Buffer.from(m[1], 'base64').toString('utf8');
        const colon = decoded.indexOf(':');
        user = colon < 0 ? decoded : decoded.slice(0, colon);
        pass = colon < 0 ? '' : decoded.slice(colon + 1);
      }
    } else if (req.method === 'POST') {
      params = new URLSearchParams(await readBody(req));
      if (params.get('grant_type') !== 'password') { reply(400, () => jsonError(res, 400, 'UNSUPPORTED', 'only grant_type=password is supported')); return; }
      user = params.get('username') ?? '';
      pass = params.get('password') ?? '';
    } else {
      reply(405, () => jsonError(res, 405, 'UNSUPPORTED', `${req.method} not allowed`));
      return;
    }
    rec.service = params.get('service');
    rec.account = user ?? params.get('account') ?? undefined;
    rec.scopes = params.getAll('scope').flatMap((s) => s.split(' ')).filter(Boolean);
    if (rec.service !== TOKEN_SERVICE) { reply(400, () => jsonError(res, 400, 'INVALID_REQUEST', `unknown service ${JSON.stringify(rec.service)}; this server issues tokens for ${TOKEN_SERVICE}`)); return; }
    const authenticated = user !== undefined;
    if (authenticated && (user !== opts.username || pass !== opts.password)) {
      reply(401, () => jsonError(res, 401, 'UNAUTHORIZED', 'incorrect username or password', { 'WWW-Authenticate': 'Basic realm="isula test token server"' }));
      return;
    }
    const access: { type: string; name: string; actions: string[] }[] = [];
    for (const s of rec.scopes) {
      const p = parseScope(s);
      if (p === undefined) continue;
      const actions = authenticated ? p.actions : anonymous === 'pull' && p.type === 'repository' ? p.actions.filter((a) => a === 'pull') : [];
      if (actions.length > 0) access.push({ type: p.type, name: p.name, actions });
    }
    rec.granted = access.map((a) => `${a.type}:${a.name}:${a.actions.join(',')}`);
    const token = mint(authenticated ? opts.username : '', access);
    const body = JSON.stringify({ token, access_token: token, expires_in: TOKEN_TTL_S, issued_at: new Date().toISOString() });
    reply(200, () => { res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) }); res.end(body); });
  }

  const server = http.createServer((req, res) => {
    handle(req, res).catch((err: unknown) => { if (!res.headersSent) jsonError(res, 500, 'UNKNOWN', String(err)); else res.destroy(); });
  });
  await new Promise<void>((resolve, reject) => { server.once('error', reject); server.listen(0, '127.0.0.1', resolve); });
  const addr = server.address() as net.AddressInfo; // listening on TCP: an AddressInfo
  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopped ??= new Promise<void>((resolve) => { server.close(() => resolve()); server.closeAllConnections(); });
    return stopped;
  };
  t.after(stop);
  return { realm: `http://127.0.0.1:${addr.port}/token`, service: TOKEN_SERVICE, issuer: TOKEN_ISSUER, requests, stop, certFile };
}

// --- docker-registry ------------------------------------------------------------

/**
 * Polls `GET url` (a registry's `/v2/`) every 20 ms until it answers 200 or
 * 401 (auth required is up, too): resolves true. Resolves false as soon as
 * `giveUp()` says so (the server process died); throws after `timeoutMs`
 * (default 10 s). Each probe is bounded to 1 s.
 */
export async function registryReady(url: string, { ca, timeoutMs = 10_000, giveUp = () => false }: { ca?: string | Buffer; timeoutMs?: number; giveUp?: () => boolean } = {}): Promise<boolean> {
  const outcome = await waitFor(async () => {
    if (giveUp()) return 'gave up';
    const r = await rawRequest(url, { ...(ca === undefined ? {} : { ca }), timeoutMs: 1000 }).catch(() => undefined);
    return r !== undefined && (r.status === 200 || r.status === 401) ? 'ready' : undefined;
  }, { timeoutMs, intervalMs: 20, what: `a registry to answer ${url}` });
  return outcome === 'ready';
}

async function processExit(proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  await new Promise<void>((resolve) => proc.once('exit', () => resolve()));
}

/**
 * Starts a real docker-registry on 127.0.0.1 and waits (≤ 10 s) until `/v2/`
 * answers. Options combine (`tls` with either auth); `htpasswd` and `token`
 * exclude each other. Stopped, with its temp dir removed, by `t.after`.
 */
export async function startRegistry(t: Teardown, opts: RegistryOptions = {}): Promise<TestRegistry> {
  if (opts.htpasswd !== undefined && opts.token !== undefined) throw new Error('startRegistry: htpasswd and token auth exclude each other');
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'isula-registry-'));
  let proc: ChildProcess | undefined;
  let token: (TestTokenServer & { certFile: string }) | undefined;
  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopped ??= (async () => {
      if (proc !== undefined && proc.exitCode === null && proc.signalCode === null) {
        proc.kill('SIGTERM');
        const killed = setTimeout(() => proc?.kill('SIGKILL'), 5000);
        await processExit(proc);
        clearTimeout(killed);
      }
      await token?.stop();
      await fs.rm(dir, { recursive: true, force: true });
    })();
    return stopped;
  };
  t.after(stop);

  const config: Record<string, unknown> = {
    version: 0.1,
    log: { level: 'info', formatter: 'text', accesslog: { disabled: false } },
    storage: {
      filesystem: { rootdirectory: path.join(dir, 'data') },
      delete: { enabled: true },
      maintenance: { uploadpurging: { enabled: false } },
    },
    http: { addr: '', secret: crypto.randomBytes(16).toString('hex'), headers: { 'X-Content-Type-Options': ['nosniff'] } },
  };
  const httpCfg = config['http'] as Record<string, unknown>;
  let caFile: string | undefined;
  let certsDir: string | undefined;
  if (opts.tls === true) {
    const certs = await makeServerCerts(dir);
    caFile = certs.caFile;
    httpCfg['tls'] = { certificate: certs.certFile, key: certs.keyFile };
  }
  if (opts.htpasswd !== undefined) {
    const { stdout } = await run('htpasswd', ['-Bbn', opts.htpasswd.username, opts.htpasswd.password], { timeoutMs: 15_000 });
    const file = path.join(dir, 'htpasswd');
    await fs.writeFile(file, stdout.toString('utf8').trim() + '\n');
    config['auth'] = { htpasswd: { realm: 'isula-test-registry', path: file } };
  }
  if (opts.token !== undefined) {
    token = await startTokenServer(t, dir, opts.token);
    config['auth'] = { token: { realm: token.realm, service: token.service, issuer: token.issuer, rootcertbundle: token.certFile, autoredirect: false } };
  }

  const logFile = path.join(dir, 'registry.log');
  const configFile = path.join(dir, 'config.yml');
  const ca = caFile === undefined ? undefined : await fs.readFile(caFile);
  let port = 0;
  // The port is free when picked but could be taken before the registry binds it: retry then.
  for (let attempt = 1; ; attempt++) {
    port = await freePort();
    httpCfg['addr'] = `127.0.0.1:${port}`;
    await fs.writeFile(configFile, JSON.stringify(config, null, 2)); // JSON is YAML: the registry reads it as is
    const log = await fs.open(logFile, 'a');
    const p = spawn(REGISTRY_BIN, ['serve', configFile], { stdio: ['ignore', log.fd, log.fd] });
    let spawnError: Error | undefined;
    p.once('error', (e) => { spawnError = e; }); // ENOENT, EACCES: no 'exit' follows; before any await, or it is unhandled
    proc = p;
    await log.close();
    const url = `${opts.tls === true ? 'https' : 'http'}://127.0.0.1:${port}/v2/`;
    const isUp = await registryReady(url, { ...(ca === undefined ? {} : { ca }), giveUp: () => spawnError !== undefined || p.exitCode !== null || p.signalCode !== null });
    if (isUp) break;
    const text = await fs.readFile(logFile, 'utf8').catch(() => '');
    if (attempt < 5 && text.includes('address already in use')) continue;
    throw new Error(`docker-registry exited at start (${spawnError?.message ?? p.exitCode ?? p.signalCode}); log ${logFile}:\n${text.slice(-2000)}`);
  }

  const host = `127.0.0.1:${port}`;
  if (caFile !== undefined) {
    certsDir = path.join(dir, 'certs.d');
    await fs.mkdir(path.join(certsDir, host), { recursive: true });
    await fs.copyFile(caFile, path.join(certsDir, host, 'ca.crt'));
  }
  const credentials = opts.htpasswd ?? (opts.token === undefined ? undefined : { username: opts.token.username, password: opts.token.password });
  return {
    host,
    url: `${opts.tls === true ? 'https' : 'http'}://${host}`,
    isTls: opts.tls === true,
    ...(caFile === undefined ? {} : { caFile }),
    ...(certsDir === undefined ? {} : { certsDir }),
    ...(credentials === undefined ? {} : { credentials }),
    ...(token === undefined ? {} : { token: { realm: token.realm, service: token.service, issuer: token.issuer, requests: token.requests, stop: token.stop } }),
    dir,
    logFile,
    stop,
  };
}

// --- skopeo ---------------------------------------------------------------------

/** How skopeo reaches one side (source or destination) of a copy, or the image it inspects. */
export interface SkopeoAccess {
  /** false: plain http (or https without verification); default true. */
  tlsVerify?: boolean;
  /** A dir with `ca.crt` (and client `*.cert`/`*.key`), e.g. `<certsDir>/<host>`. */
  certDir?: string;
  /** Absent: anonymous (`--*-no-creds`, so no host auth file is used). */
  creds?: Credentials;
}

export interface SkopeoCopyOptions {
  dest?: SkopeoAccess;
  src?: SkopeoAccess;
  timeoutMs?: number;
  extraArgs?: string[];
}

/** How skopeo reaches `reg`: plain http without TLS verification, TLS with its CA; the given credentials. */
export function skopeoAccess(reg: TestRegistry, creds?: Credentials): SkopeoAccess {
  return {
    tlsVerify: reg.isTls,
    ...(reg.certsDir === undefined ? {} : { certDir: path.join(reg.certsDir, reg.host) }),
    ...(creds === undefined ? {} : { creds }),
  };
}

function accessArgs(side: 'src-' | 'dest-' | '', a: SkopeoAccess | undefined): string[] {
  if (a === undefined) return [];
  const args = [`--${side}tls-verify=${a.tlsVerify === false ? 'false' : 'true'}`];
  if (a.certDir !== undefined) args.push(`--${side}cert-dir`, a.certDir);
  args.push(...(a.creds === undefined ? [`--${side}no-creds`] : [`--${side}creds`, `${a.creds.username}:${a.creds.password}`]));
  return args;
}

/** skopeo without the host's registries.conf mirrors, auth files or signature policy getting in the way. */
function skopeo(args: string[], timeoutMs: number): Promise<ExecResult> {
  const env = { ...process.env, REGISTRY_AUTH_FILE: path.join(os.tmpdir(), 'isula-test-no-auth.json') };
  return run('skopeo', ['--insecure-policy', ...args], { timeoutMs, env });
}

/**
 * `skopeo copy SRC DEST`, e.g. `oci:/var/cache/isula/test-images/oci:busybox`
 * or `docker-archive:/var/cache/isula/test-images/busybox.docker.tar` to
 * `docker://127.0.0.1:PORT/name:tag`. Resolves with the manifest digest skopeo
 * wrote at the destination; rejects with a CommandError (exitCode, stderr).
 */
export async function skopeoCopy(src: string, dest: string, opts: SkopeoCopyOptions = {}): Promise<{ digest: string }> {
  const digestFile = path.join(os.tmpdir(), `isula-skopeo-digest-${crypto.randomUUID()}`);
  try {
    await skopeo(['copy', '--quiet', '--retry-times', '0', '--digestfile', digestFile,
      ...accessArgs('src-', src.startsWith('docker://') ? opts.src ?? {} : undefined),
      ...accessArgs('dest-', dest.startsWith('docker://') ? opts.dest ?? {} : undefined),
      ...(opts.extraArgs ?? []), src, dest], opts.timeoutMs ?? 60_000);
    return { digest: (await fs.readFile(digestFile, 'utf8')).trim() };
  } finally {
    await fs.rm(digestFile, { force: true });
  }
}

/** The raw manifest bytes of `ref` (`docker://…`) as the registry serves them. */
export async function skopeoRawManifest(ref: string, opts: SkopeoAccess & { timeoutMs?: number } = {}): Promise<Buffer> {
  const { stdout } = await skopeo(['inspect', '--raw', '--retry-times', '0', ...accessArgs('', ref.startsWith('docker://') ? opts : undefined), ref], opts.timeoutMs ?? 30_000);
  return stdout;
}

/** The manifest digest of `ref`: sha256 of the raw manifest (for a list, the list's own digest). */
export async function skopeoInspect(ref: string, opts: SkopeoAccess & { timeoutMs?: number } = {}): Promise<string> {
  return sha256(await skopeoRawManifest(ref, opts));
}

export type TestImageName = 'busybox' | 'layered' | 'shared';

/**
 * Pushes one offline test image (scripts/make-test-images.sh must have run:
 * containers.ts `testImages()`) from the OCI layout, so the registry keeps
 * its OCI manifest and digest (images.json `manifestDigest`). `format:
 * 'docker'` pushes the docker-archive instead: skopeo then writes a Docker
 * v2 schema 2 manifest with another digest. Resolves with the pushed digest.
 */
export async function pushTestImage(reg: TestRegistry, { image = 'busybox', repo = image, tag = 'latest', format = 'oci', creds = reg.credentials }: { image?: TestImageName; repo?: string; tag?: string; format?: 'oci' | 'docker'; creds?: Credentials } = {}): Promise<{ ref: string; digest: string }> {
  const src = format === 'oci' ? `oci:${path.join(IMAGES_DIR, 'oci')}:${image}` : `docker-archive:${path.join(IMAGES_DIR, `${image}.docker.tar`)}`;
  const ref = `${reg.host}/${repo}:${tag}`;
  const { digest } = await skopeoCopy(src, `docker://${ref}`, { dest: skopeoAccess(reg, creds) });
  return { ref, digest };
}
