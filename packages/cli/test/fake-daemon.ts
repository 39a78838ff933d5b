/**
 * A fake engine for the CLI's container verbs: the daemon's container side is
 * being written at the same time, and the end-to-end suite drives the real
 * one. This fake speaks just enough of Docker's API (create, the attach and
 * exec-start upgrades, wait with early headers, start, stop, inspect, exec,
 * logs, top, stats, archive, export, events, resize; pull, push, auth and
 * logout, create's "No such image" when `images` is given, the `/networks`
 * routes when `networks` is given, the `/volumes` ones when `volumes` is) to check the order and
 * shape of the CLI's requests and how it maps answers to exit codes. Like
 * the daemon, it ends a stream when the client types the detach keys.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs/promises';
import http from 'node:http';
import type net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

type ApiError = { status: number; code: string; message: string };

export interface FakeBehaviour {
  /** `{ status, code, message }` to answer create or start with. */
  createError?: ApiError;
  startError?: ApiError;
  exitCode?: number;
  /** Attach (and exec) output, as [stream, text] frames (raw text with a TTY). */
  output?: [1 | 2, string][];
  /**
   * What `GET /containers/{id}/json` says; the container is running without a
   * TTY by default. `Running: true` given here also means it is running
   * already: an attach gets its output at once (`isula attach`), not at start.
   */
  container?: { Tty?: boolean; OpenStdin?: boolean; Running?: boolean; Paused?: boolean; Restarting?: boolean; Ports?: Record<string, { HostIp: string; HostPort: string }[] | null> };
  /** `GET /containers/{id}/json` answers 404 for these names. */
  missing?: string[];
  /** exec: the code `GET /exec/{id}/json` reports, and errors for create and start. */
  execExitCode?: number;
  execCreateError?: ApiError;
  execStartError?: ApiError;
  /** `GET /containers/{id}/logs`: frames (raw with a TTY container). */
  logs?: [1 | 2, string][];
  top?: { Titles: string[]; Processes: string[][] };
  /** `GET /containers/{id}/stats`: the documents sent, one a line. */
  stats?: Record<string, unknown>[];
  /** `HEAD`/`GET /containers/{id}/archive`: the stat of each path, and the tar GET sends. */
  archive?: { stats: Record<string, { name: string; size: number; mode: number; mtime: string; linkTarget: string }>; tar?: Buffer };
  exportData?: Buffer;
  /** `GET /events`: the lines sent. */
  events?: string[];
  /** `GET /containers/json` (any other fields of docker's summary: `Ports`, `Status` …). */
  list?: ({ Id: string; Names: string[] } & Record<string, unknown>)[];
  /**
   * The local images, by name (`busybox` stands for `busybox:latest`): when
   * given, create of any other image answers 404 `No such image: NAME`, as
   * the daemon does; a pull that ends well adds `fromImage:tag`.
   */
  images?: string[];
  /** `POST /images/create?fromImage=` (pull): the JSON messages streamed, or an error answered before any. */
  pull?: { messages?: Record<string, unknown>[]; error?: ApiError };
  /** `POST /images/{name}/push`: as `pull`. */
  push?: { messages?: Record<string, unknown>[]; error?: ApiError };
  /** `POST /auth`: the error to answer (a 401 with the registry's words), else `Login Succeeded`. */
  loginError?: ApiError;
  /** `POST /auth/logout`: the servers with credentials kept; others answer 404 REGISTRY_CREDENTIALS_NOT_FOUND. */
  loggedIn?: string[];
  /**
   * The networks (docker's NetworkResource); when given, the fake serves
   * `GET /networks[?filters=]` (`name` substring, `id` prefix, `driver`, as
   * isulad), `GET /networks/{name|id|id prefix}`, `POST /networks/create`
   * (answers `{Id: NETWORK_ID}`), `POST /networks/{…}/connect|disconnect` (the container `web` only)
   * and `DELETE /networks/{…}`; an unknown one
   * is isulad's 404 `network X not found`.
   */
  networks?: { Name: string; Id: string; Driver?: string | undefined }[];
  /** `DELETE /networks/{name}` answers 409 NETWORK_IN_USE for these names. */
  networksInUse?: string[];
  /**
   * The volumes (docker's Volume); when given, the fake serves `GET
   * /volumes[?filters=]` (`name` substring, `driver`, `label` k or k=v,
   * `dangling` against `volumesInUse`, as isulad), `GET /volumes/{name}`,
   * `POST /volumes/create` (a new volume, or the existing one as docker;
   * no name: VOLUME_ID), `DELETE /volumes/{name}[?force=1]` and `POST
   * /volumes/prune[?filters=]` (the unused ones; `label` filters). An unknown
   * one is isulad's 404 `get X: no such volume`.
   */
  volumes?: { Name: string; Driver?: string; Labels?: Record<string, string> | null; Mountpoint?: string; Scope?: string; CreatedAt?: string }[];
  /** Used by a container: `DELETE` answers 409 VOLUME_IN_USE, prune keeps them, `dangling=false` lists them. */
  volumesInUse?: string[];
  /** `POST /volumes/prune`'s SpaceReclaimed, per volume removed (bytes). */
  volumeSizes?: Record<string, number>;
}

export interface FakeDaemon {
  host: string;
  /** One entry per request: `POST /containers/create?name=x`, … */
  log: string[];
  /** JSON bodies by route, and raw ones (archives) as Buffers. */
  bodies: Map<string, unknown>;
  close(): Promise<void>;
}

export function frame(stream: number, text: string | Buffer): Buffer {
  const payload = Buffer.from(text);
  const header = Buffer.alloc(8);
  header[0] = stream;
  header.writeUInt32BE(payload.length, 4);
  return Buffer.concat([header, payload]);
}

const ID = 'c0ffee'.padEnd(64, '0');
/** The id `POST /networks/create` answers with. */
export const NETWORK_ID = 'beef'.padEnd(64, '0');
/** The name `POST /volumes/create` gives a volume created without one. */
export const VOLUME_ID = 'da7a'.padEnd(64, '0');
const EXEC_ID = 'e0e0'.padEnd(64, '0');
const CTRL: Record<string, number> = { 'ctrl-a': 1, 'ctrl-p': 16, 'ctrl-q': 17 };
const keysOf = (spec: string | null | undefined) => Buffer.from((spec || 'ctrl-p,ctrl-q').split(',').map((k) => CTRL[k] ?? k.charCodeAt(0)));

/** A hijacked session: output first, then (with stdin) the input echoed back once it ends; the detach keys end it at once. */
interface Session {
  socket: net.Socket;
  stdin: Buffer[];
  /** Settles with 'end' (stdin EOF) or 'detach'; undefined without stdin. */
  input: Promise<'end' | 'detach'> | undefined;
  detached: boolean;
}

/** As the real daemon (and moby): the detach keys count only with a TTY (`keys` undefined without one). */
function openSession(socket: net.Socket, wantStdin: boolean, keys: Buffer | undefined): Session {
  const s: Session = { socket, stdin: [], input: undefined, detached: false };
  socket.write('HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.raw-stream\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n');
  socket.on('error', () => {});
  s.input = wantStdin ? new Promise((resolve) => {
    socket.on('data', (c: Buffer) => {
      s.stdin.push(c);
      if (keys !== undefined && Buffer.concat(s.stdin).includes(keys)) { s.detached = true; socket.end(); resolve('detach'); }
    });
    socket.on('end', () => resolve('end'));
  }) : undefined;
  return s;
}

/** Writes the output, waits for stdin, echoes it; returns false when the client detached. */
async function playSession(s: Session, tty: boolean, output: [1 | 2, string][]): Promise<boolean> {
  for (const [stream, text] of output) s.socket.write(tty ? Buffer.from(text) : frame(stream, text));
  if (s.input !== undefined) {
    if (await s.input === 'detach') return false;
    s.socket.write(tty ? Buffer.from(`stdin:${Buffer.concat(s.stdin).toString()}`) : frame(1, `stdin:${Buffer.concat(s.stdin).toString()}`));
  }
  s.socket.end();
  return true;
}

export async function startFakeDaemon(b: FakeBehaviour = {}): Promise<FakeDaemon> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'isula-cli-fake-'));
  const socketPath = path.join(dir, 'isulad.sock');
  const log: string[] = [];
  const bodies = new Map<string, unknown>();
  let tty = false;
  let attach: Session | undefined;
  let waiter: http.ServerResponse | undefined;
  let execConfig: { AttachStdin?: boolean; Tty?: boolean; DetachKeys?: string } = {};
  const sockets = new Set<net.Socket>();
  const c = { Tty: false, OpenStdin: false, Running: true, Paused: false, Restarting: false, ...b.container };
  const images = b.images === undefined ? undefined : [...b.images];

  const json = (res: http.ServerResponse, status: number, value: unknown) => {
    res.writeHead(status, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify(value));
  };
  const finishWait = () => { waiter?.end(JSON.stringify({ StatusCode: b.exitCode ?? 0 })); waiter = undefined; };

  const runContainer = async () => {
    if (attach !== undefined && !await playSession(attach, tty, b.output ?? [])) return; // detached: the container goes on
    finishWait();
  };

  const networks = b.networks === undefined ? [] : [...b.networks];
  const findNetwork = (ref: string) => networks.find((n) => n.Name === ref) ?? networks.find((n) => n.Id === ref || (ref.length >= 3 && n.Id.startsWith(ref)));
  const serveNetworks = (method: string, route: string, url: URL, res: http.ServerResponse) => {
    if (route === '/networks' && method === 'GET') {
      const f = JSON.parse(url.searchParams.get('filters') ?? '{}') as Record<string, string[]>;
      return json(res, 200, networks.filter((n) => (f['name'] ?? [n.Name]).some((v) => n.Name.includes(v))
        && (f['id'] ?? [n.Id]).some((v) => n.Id.startsWith(v)) && (f['driver'] ?? [n.Driver ?? '']).includes(n.Driver ?? '')));
    }
    if (route === '/networks/create' && method === 'POST') {
      const body = bodies.get(route) as { Name: string; Driver?: string };
      if (findNetwork(body.Name) !== undefined) return json(res, 409, { message: `network with name ${body.Name} already exists`, code: 'NETWORK_EXISTS' });
      const created = { Name: body.Name, Id: NETWORK_ID, Driver: body.Driver ?? 'bridge', Scope: 'local' };
      networks.push(created);
      return json(res, 201, { Id: NETWORK_ID, Warning: '' });
    }
    const endpoint = /^\/networks\/([^/]+)\/(connect|disconnect)$/.exec(route);
    const ref = decodeURIComponent(endpoint?.[1] ?? route.slice('/networks/'.length));
    const n = findNetwork(ref);
    if (n === undefined) return json(res, 404, { message: `network ${ref} not found`, code: 'NETWORK_NOT_FOUND' });
    if (endpoint !== null && method === 'POST') {
      // As isulad: the container must exist (only `web` does here).
      const container = (bodies.get(route) as { Container?: string } | undefined)?.Container;
      if (container !== 'web') return json(res, 404, { message: `No such container: ${container ?? ''}`, code: 'CONTAINER_NOT_FOUND' });
      return res.writeHead(200).end();
    }
    if (method === 'GET') return json(res, 200, n);
    if (method === 'DELETE') {
      if ((b.networksInUse ?? []).includes(n.Name)) {
        return json(res, 409, { message: `error while removing network: network ${n.Name} id ${n.Id} has active endpoints`, code: 'NETWORK_IN_USE' });
      }
      networks.splice(networks.indexOf(n), 1);
      return res.writeHead(204).end();
    }
    return json(res, 405, { message: `${method} not allowed`, code: 'API_BAD_REQUEST' });
  };

  const volumes = b.volumes === undefined ? [] : [...b.volumes];
  const inUse = (name: string) => (b.volumesInUse ?? []).includes(name);
  const volumeMatches = (v: (typeof volumes)[number], f: Record<string, string[]>) => {
    const labels = v.Labels ?? {};
    const labelOk = (want: string) => {
      const eq = want.indexOf('=');
      return eq < 0 ? Object.hasOwn(labels, want) : labels[want.slice(0, eq)] === want.slice(eq + 1);
    };
    return (f['name'] ?? [v.Name]).some((x) => v.Name.includes(x)) && (f['driver'] ?? [v.Driver ?? 'local']).includes(v.Driver ?? 'local')
      && (f['label'] ?? []).every(labelOk) && (f['dangling'] ?? []).every((d) => (['true', '1'].includes(d) ? !inUse(v.Name) : inUse(v.Name)));
  };
  const serveVolumes = (method: string, route: string, url: URL, res: http.ServerResponse) => {
    const f = JSON.parse(url.searchParams.get('filters') ?? '{}') as Record<string, string[]>;
    if (route === '/volumes' && method === 'GET') return json(res, 200, { Volumes: volumes.filter((v) => volumeMatches(v, f)), Warnings: [] });
    if (route === '/volumes/create' && method === 'POST') {
      const body = bodies.get(route) as { Name?: string; Driver?: string; Labels?: Record<string, string> };
      const name = body.Name || VOLUME_ID;
      if (!/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/.test(name)) {
        return json(res, 400, { message: `create ${name}: "${name}" includes invalid characters for a local volume name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed`, code: 'VOLUME_NAME_INVALID' });
      }
      let v = volumes.find((x) => x.Name === name);
      if (v === undefined) {
        v = { Name: name, Driver: body.Driver ?? 'local', Labels: body.Labels ?? {}, Mountpoint: `/var/lib/isulad/volumes/${name}/_data`, Scope: 'local' };
        volumes.push(v);
      }
      return json(res, 201, v);
    }
    if (route === '/volumes/prune' && method === 'POST') {
      const gone = volumes.filter((v) => !inUse(v.Name) && volumeMatches(v, { label: f['label'] ?? [] }));
      for (const v of gone) volumes.splice(volumes.indexOf(v), 1);
      return json(res, 200, { VolumesDeleted: gone.map((v) => v.Name), SpaceReclaimed: gone.reduce((n, v) => n + (b.volumeSizes?.[v.Name] ?? 0), 0) });
    }
    const ref = decodeURIComponent(route.slice('/volumes/'.length));
    const v = volumes.find((x) => x.Name === ref);
    if (v === undefined) return json(res, 404, { message: `get ${ref}: no such volume`, code: 'VOLUME_NOT_FOUND' });
    if (method === 'GET') return json(res, 200, v);
    if (method === 'DELETE') {
      if (inUse(v.Name)) return json(res, 409, { message: `remove ${v.Name}: volume is in use - [${ID}]`, code: 'VOLUME_IN_USE' });
      volumes.splice(volumes.indexOf(v), 1);
      return res.writeHead(204).end();
    }
    return json(res, 405, { message: `${method} not allowed`, code: 'API_BAD_REQUEST' });
  };

  const server = http.createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const url = new URL(req.url ?? '/', 'http://fake');
    const route = url.pathname.replace(/^\/v1\.41/, '');
    log.push(`${req.method} ${route}${url.search}`);
    if (chunks.length > 0) {
      const raw = Buffer.concat(chunks);
      bodies.set(route, /json/.test(req.headers['content-type'] ?? '') ? JSON.parse(raw.toString()) : raw);
    }
    const name = decodeURIComponent(route.split('/')[2] ?? '');
    if (b.networks !== undefined && (route === '/networks' || route.startsWith('/networks/'))) return serveNetworks(req.method ?? 'GET', route, url, res);
    if (b.volumes !== undefined && (route === '/volumes' || route.startsWith('/volumes/'))) return serveVolumes(req.method ?? 'GET', route, url, res);
    if (route === '/containers/create') {
      if (b.createError) return json(res, b.createError.status, b.createError);
      const image = (bodies.get(route) as { Image?: string }).Image ?? '';
      if (images !== undefined && !images.includes(image) && !images.includes(`${image}:latest`)) {
        return json(res, 404, { message: `No such image: ${image}`, code: 'IMAGE_NOT_FOUND' });
      }
      tty = (bodies.get(route) as { Tty?: boolean }).Tty === true;
      return json(res, 201, { Id: ID, Warnings: [] });
    }
    if (route === '/containers/json') return json(res, 200, b.list ?? []);
    if (route.startsWith('/containers/') && (b.missing ?? []).includes(name)) return json(res, 404, { message: `No such container: ${name}`, code: 'CONTAINER_NOT_FOUND' });
    if (route.endsWith('/wait')) {
      // Docker's daemon sends its headers once the waiter is registered.
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.flushHeaders();
      waiter = res;
      if (!c.Running && req.url?.includes('not-running')) finishWait();
      return undefined;
    }
    if (route.endsWith('/start') && route.startsWith('/containers/')) {
      if (b.startError) return json(res, b.startError.status, b.startError);
      res.writeHead(204).end();
      void runContainer();
      return undefined;
    }
    if (route.endsWith('/stop')) return res.writeHead(304).end();
    if (route.endsWith('/resize') && /^\/(containers|exec)\//.test(route)) return res.writeHead(200).end();
    if (route === `/containers/${name}/json`) {
      return json(res, 200, {
        Id: ID, Name: `/${name}`, Config: { Tty: c.Tty, OpenStdin: c.OpenStdin }, State: { Running: c.Running, Paused: c.Paused, Restarting: c.Restarting },
        ...(c.Ports !== undefined && { NetworkSettings: { Ports: c.Ports } }),
      });
    }
    if (route.endsWith('/exec') && req.method === 'POST') {
      if (b.execCreateError) return json(res, b.execCreateError.status, b.execCreateError);
      execConfig = bodies.get(route) as typeof execConfig;
      return json(res, 201, { Id: EXEC_ID });
    }
    if (route === `/exec/${EXEC_ID}/start`) return res.writeHead(200).end(); // detached start
    if (route === `/exec/${EXEC_ID}/json`) return json(res, 200, { ID: EXEC_ID, Running: false, ExitCode: b.execExitCode ?? 0 });
    if (route.endsWith('/logs')) {
      // As isulad (and Docker's API 1.42): the content type says the framing.
      res.writeHead(200, { 'Content-Type': c.Tty ? 'application/vnd.docker.raw-stream' : 'application/vnd.docker.multiplexed-stream' });
      for (const [stream, text] of b.logs ?? []) res.write(c.Tty ? Buffer.from(text) : frame(stream, text));
      return res.end();
    }
    if (route.endsWith('/top')) return json(res, 200, b.top ?? { Titles: [], Processes: [] });
    if (route.endsWith('/stats')) {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      for (const s of b.stats ?? []) res.write(`${JSON.stringify(s)}\n`);
      return res.end();
    }
    if (route.endsWith('/archive')) {
      const p = url.searchParams.get('path') ?? '';
      if (req.method === 'PUT') return res.writeHead(200).end();
      const st = b.archive?.stats[p];
      if (st === undefined) return json(res, 404, { message: `Could not find the file ${p} in container ${name}`, code: 'NOT_FOUND' });
      const header = Buffer.from(JSON.stringify(st)).toString('base64');
      res.writeHead(200, { 'Content-Type': 'application/x-tar', 'X-Docker-Container-Path-Stat': header, ...(req.method === 'HEAD' && { 'Content-Length': '42' }) });
      return res.end(req.method === 'HEAD' ? undefined : b.archive?.tar);
    }
    if (route.endsWith('/export')) {
      res.writeHead(200, { 'Content-Type': 'application/x-tar' });
      return res.end(b.exportData);
    }
    const transfer = route === '/images/create' ? b.pull : /^\/images\/[^/]+\/push$/.test(route) ? b.push : undefined;
    if (transfer !== undefined && req.method === 'POST') {
      if (transfer.error) return json(res, transfer.error.status, transfer.error);
      // As isulad and dockerd: 200 with the first message, an error as the stream's last one.
      res.writeHead(200, { 'Content-Type': 'application/json' });
      for (const m of transfer.messages ?? []) res.write(`${JSON.stringify(m)}\n`);
      const failed = (transfer.messages ?? []).some((m) => m['errorDetail'] !== undefined);
      if (route === '/images/create' && !failed) images?.push(`${url.searchParams.get('fromImage') ?? ''}:${url.searchParams.get('tag') ?? ''}`);
      return res.end();
    }
    if (route === '/auth' && req.method === 'POST') {
      if (b.loginError) return json(res, b.loginError.status, b.loginError);
      return json(res, 200, { Status: 'Login Succeeded', IdentityToken: '' });
    }
    if (route === '/auth/logout' && req.method === 'POST') {
      const server = (bodies.get(route) as { serveraddress?: string }).serveraddress ?? '';
      if (!(b.loggedIn ?? []).includes(server)) return json(res, 404, { message: `Not logged in to ${server}`, code: 'REGISTRY_CREDENTIALS_NOT_FOUND' });
      return json(res, 200, { Status: `Removing login credentials for ${server}` });
    }
    if (route === '/events') {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      for (const line of b.events ?? []) res.write(`${line}\n`);
      return res.end();
    }
    return json(res, 404, { message: `no route ${route}`, code: 'NOT_FOUND' });
  });
  server.on('connection', (s: net.Socket) => { sockets.add(s); s.on('close', () => sockets.delete(s)); });
  server.on('upgrade', (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => {
    const url = new URL(req.url ?? '/', 'http://fake');
    const route = url.pathname.replace(/^\/v1\.41/, '');
    log.push(`${req.method} ${route}${url.search} upgrade=${req.headers.upgrade ?? ''}`);
    if (route.startsWith('/exec/')) {
      // The start options come as a JSON body before the stream.
      const length = Number(req.headers['content-length'] ?? 0);
      let body = head;
      const begin = () => {
        socket.off('data', onData);
        bodies.set(route, JSON.parse(body.subarray(0, length).toString() || '{}'));
        const rest = body.subarray(length);
        if (b.execStartError) {
          const text = JSON.stringify(b.execStartError);
          socket.end(`HTTP/1.1 ${b.execStartError.status} Error\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(text)}\r\n\r\n${text}`);
          return;
        }
        const s = openSession(socket, execConfig.AttachStdin === true, execConfig.Tty === true ? keysOf(execConfig.DetachKeys) : undefined);
        if (rest.length > 0) socket.unshift(rest);
        void playSession(s, execConfig.Tty === true, b.output ?? []);
      };
      const onData = (chunk: Buffer) => { body = Buffer.concat([body, chunk]); if (body.length >= length) begin(); };
      if (body.length >= length) begin();
      else socket.on('data', onData);
      return;
    }
    attach = openSession(socket, url.searchParams.get('stdin') === '1', tty ? keysOf(url.searchParams.get('detachKeys')) : undefined);
    // Attaching to a running container (`isula attach`): its output comes now, and the exit with the stream's end.
    if (b.container?.Running === true) {
      const session = attach;
      void playSession(session, c.Tty, b.output ?? []).then((ended) => { if (ended) finishWait(); });
    }
  });
  server.listen(socketPath);
  await once(server, 'listening');
  return {
    host: `unix://${socketPath}`,
    log,
    bodies,
    close: async () => {
      attach?.socket.destroy();
      waiter?.destroy();
      for (const s of sockets) s.destroy();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
      await fs.rm(dir, { recursive: true, force: true });
    },
  };
}

export const ISULA = fileURLToPath(new URL('../src/isula.js', import.meta.url));

export interface IsulaRun {
  code: number | null;
  stdout: string;
  stdoutBytes: Buffer;
  stderr: string;
  log: string[];
  bodies: Map<string, unknown>;
}

/** Runs the CLI (the compiled, unbundled entry) against a fresh fake daemon; `input` goes to its stdin. */
export async function runIsula(behaviour: FakeBehaviour, args: string[], o: { input?: string | Buffer; keepStdinOpen?: boolean; cwd?: string } = {}): Promise<IsulaRun> {
  const daemon = await startFakeDaemon(behaviour);
  try {
    const child = spawn(process.execPath, [ISULA, '-H', daemon.host, ...args], { stdio: ['pipe', 'pipe', 'pipe'], cwd: o.cwd });
    const out: Buffer[] = [];
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => { out.push(c); });
    child.stderr.on('data', (c: Buffer) => { stderr += c.toString(); });
    child.stdin.on('error', () => {});
    if (o.input !== undefined) child.stdin.write(o.input);
    // Kept open (detach tests): the client must leave without stdin's end.
    if (!o.keepStdinOpen) child.stdin.end();
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    const stdoutBytes = Buffer.concat(out);
    return { code, stdout: stdoutBytes.toString(), stdoutBytes, stderr, log: daemon.log, bodies: daemon.bodies };
  } finally {
    await daemon.close();
  }
}
