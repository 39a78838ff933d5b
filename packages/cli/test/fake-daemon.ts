/**
 * A fake engine for the CLI's container verbs: the daemon's container side is
 * being written at the same time, and the end-to-end suite drives the real
 * one. This fake speaks just enough of Docker's API (create, the attach
 * upgrade, wait with early headers, start, stop) to check the order and shape
 * of the CLI's requests and how it maps answers to exit codes.
 */
import { once } from 'node:events';
import fs from 'node:fs/promises';
import http from 'node:http';
import type net from 'node:net';
import os from 'node:os';
import path from 'node:path';

export interface FakeBehaviour {
  /** `{ status, code, message }` to answer create or start with. */
  createError?: { status: number; code: string; message: string };
  startError?: { status: number; code: string; message: string };
  exitCode?: number;
  /** Attach output, as [stream, text] frames (raw text with a TTY). */
  output?: [1 | 2, string][];
}

export interface FakeDaemon {
  host: string;
  /** One entry per request: `POST /containers/create?name=x`, … */
  log: string[];
  bodies: Map<string, unknown>;
  close(): Promise<void>;
}

function frame(stream: number, text: string | Buffer): Buffer {
  const payload = Buffer.from(text);
  const header = Buffer.alloc(8);
  header[0] = stream;
  header.writeUInt32BE(payload.length, 4);
  return Buffer.concat([header, payload]);
}

export async function startFakeDaemon(b: FakeBehaviour = {}): Promise<FakeDaemon> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'isula-cli-fake-'));
  const socketPath = path.join(dir, 'isulad.sock');
  const log: string[] = [];
  const bodies = new Map<string, unknown>();
  let tty = false;
  let attach: { socket: net.Socket; stdin: Buffer[]; stdinEnded: Promise<unknown> | undefined } | undefined;
  let waiter: http.ServerResponse | undefined;

  const json = (res: http.ServerResponse, status: number, value: unknown) => {
    res.writeHead(status, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify(value));
  };

  const runContainer = async () => {
    if (attach !== undefined) {
      for (const [stream, text] of b.output ?? []) attach.socket.write(tty ? Buffer.from(text) : frame(stream, text));
      if (attach.stdinEnded !== undefined) {
        await attach.stdinEnded;
        attach.socket.write(frame(1, `stdin:${Buffer.concat(attach.stdin).toString()}`));
      }
      attach.socket.end();
    }
    if (waiter !== undefined) waiter.end(JSON.stringify({ StatusCode: b.exitCode ?? 0 }));
  };

  const server = http.createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const url = new URL(req.url ?? '/', 'http://fake');
    const route = url.pathname.replace(/^\/v1\.41/, '');
    log.push(`${req.method} ${route}${url.search}`);
    if (chunks.length > 0) bodies.set(route, JSON.parse(Buffer.concat(chunks).toString()));
    if (route === '/containers/create') {
      if (b.createError) return json(res, b.createError.status, b.createError);
      tty = (bodies.get(route) as { Tty?: boolean }).Tty === true;
      return json(res, 201, { Id: 'c0ffee'.padEnd(64, '0'), Warnings: [] });
    }
    if (route.endsWith('/wait')) {
      // Docker's daemon sends its headers once the waiter is registered.
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.flushHeaders();
      waiter = res;
      return undefined;
    }
    if (route.endsWith('/start')) {
      if (b.startError) return json(res, b.startError.status, b.startError);
      res.writeHead(204).end();
      void runContainer();
      return undefined;
    }
    if (route.endsWith('/stop')) return res.writeHead(304).end();
    return json(res, 404, { message: `no route ${route}`, code: 'NOT_FOUND' });
  });
  server.on('upgrade', (req: http.IncomingMessage, socket: net.Socket) => {
    const url = new URL(req.url ?? '/', 'http://fake');
    log.push(`${req.method} ${url.pathname.replace(/^\/v1\.41/, '')}${url.search} upgrade=${req.headers.upgrade ?? ''}`);
    socket.write('HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.raw-stream\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n');
    const stdin: Buffer[] = [];
    socket.on('data', (c: Buffer) => stdin.push(c));
    attach = { socket, stdin, stdinEnded: url.searchParams.get('stdin') === '1' ? once(socket, 'end') : undefined };
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
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
      await fs.rm(dir, { recursive: true, force: true });
    },
  };
}
