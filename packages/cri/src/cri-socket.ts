/**
 * The CRI unix socket, owned by the plugin rather than by grpc-js: each
 * connection is relayed into the gRPC server through a connection injector,
 * its client→server bytes through an AuthorityRewriter (h2-authority.ts).
 */
import net from 'node:net';
import { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { AuthorityRewriter } from './h2-authority.js';

export interface CriSocketOptions {
  path: string;
  log: Logger;
  /** grpc-js's `ConnectionInjector.injectConnection`. */
  inject: (connection: Duplex) => void;
}

export class CriSocket {
  readonly #opts: CriSocketOptions;
  readonly #server: net.Server;
  readonly #clients = new Set<net.Socket>();

  constructor(opts: CriSocketOptions) {
    this.#opts = opts;
    this.#server = net.createServer((client) => this.#accept(client));
  }

  listen(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(this.#opts.path, () => {
        this.#server.off('error', reject);
        resolve();
      });
    });
  }

  /** Stops accepting (Node unlinks the socket file); connections go with `destroyConnections`. */
  close(): Promise<void> {
    return new Promise((resolve) => this.#server.close(() => resolve()));
  }

  /** Cuts the connections still open (after the gRPC server had its chance to end them). */
  destroyConnections(): void {
    for (const client of this.#clients) client.destroy();
    this.#clients.clear();
  }

  get connections(): number {
    return this.#clients.size;
  }

  #accept(client: net.Socket): void {
    this.#clients.add(client);
    client.on('close', () => this.#clients.delete(client));
    this.#opts.inject(relay(client, this.#opts.log));
  }
}

/**
 * The server's side of one client connection: what the client sends comes
 * out rewritten where needed, what the server writes goes to the client as
 * is. Back-pressure both ways; either side closing closes the other.
 */
export function relay(client: net.Socket, log: Logger): Duplex {
  const rewriter = new AuthorityRewriter();
  let announced = false;
  const toServer = new Duplex({
    read() {
      client.resume();
    },
    write(chunk: Buffer, _encoding, callback) {
      if (client.destroyed) return callback();
      if (client.write(chunk)) return callback();
      client.once('drain', () => callback());
    },
    final(callback) {
      client.end();
      callback();
    },
    destroy(err, callback) {
      client.destroy();
      callback(err);
    },
  });
  client.on('data', (chunk: Buffer) => {
    let out: Buffer[];
    try {
      out = rewriter.push(chunk);
    } catch (err) {
      log.warn({ err }, 'CRI connection closed: malformed HTTP/2 from the client');
      toServer.destroy();
      return;
    }
    if (!announced && rewriter.rewrites > 0) {
      announced = true;
      log.debug('CRI client sent an invalid :authority (a socket path?): rewriting it to localhost');
    }
    let more = true;
    for (const buf of out) more = toServer.push(buf) && more;
    if (!more) client.pause();
  });
  client.on('end', () => toServer.push(null));
  // 'close' follows 'error': the error itself is the client's business.
  client.on('error', () => undefined);
  client.on('close', () => toServer.destroy());
  return toServer;
}
