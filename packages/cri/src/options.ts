/** The plugin's options (daemon.json `plugins: [{ "package": "@isula/cri", "options": {...} }]`). */
import { IsulaError, parseDuration } from '@isula/core';
import { parseAddress } from './streaming.js';

export interface CriOptions {
  /** The gRPC unix socket. */
  socket: string;
  /** Overrides daemon.json's `pod-sandbox-image`. */
  sandboxImage?: string;
  /** The catatonit binary the offline pause image is made of; '' never builds it (the image is pulled). */
  catatonit: string;
  /** Bound on each of ExecSync's stdout and stderr, in bytes. */
  execSyncMaxOutputBytes: number;
  /** host:port of the streaming server (Exec/Attach/PortForward URLs); port 0 for an ephemeral one. */
  streamAddress: string;
  /** A streaming connection with no traffic either way this long is closed; 0: never (the kubelet's and containerd's default is 4h). */
  streamIdleTimeoutMs: number;
  /** Serve the streaming URLs over TLS (https://); containerd's `enable_tls_streaming`. */
  streamTls: boolean;
  /** PEM certificate (chain) file of the streaming server; with `streamTlsKey`, else a self-signed one is made at start. */
  streamTlsCert?: string;
  /** PEM private key file of `streamTlsCert`. */
  streamTlsKey?: string;
}

export const DEFAULT_SOCKET = '/run/isulad/cri.sock';
/** The kubelet's default: loopback, an ephemeral port. */
export const DEFAULT_STREAM_ADDRESS = '127.0.0.1:0';
/** containerd's `stream_idle_timeout` and the kubelet's `streamingConnectionIdleTimeout`. */
export const DEFAULT_STREAM_IDLE_TIMEOUT = '4h';

function parseAddressOption(v: string): string {
  parseAddress(v);
  return v;
}

export function parseCriOptions(raw: unknown): CriOptions {
  const o = (raw ?? {}) as Record<string, unknown>;
  if (typeof o !== 'object' || Array.isArray(o)) throw bad('options must be an object');
  const known = new Set(['socket', 'sandboxImage', 'catatonit', 'execSyncMaxOutputBytes', 'streamAddress', 'streamIdleTimeout', 'streamTls', 'streamTlsCert', 'streamTlsKey']);
  for (const k of Object.keys(o)) if (!known.has(k)) throw bad(`unknown option "${k}" (known: ${[...known].join(', ')})`);
  const str = (k: string, def: string): string => {
    const v = o[k];
    if (v === undefined) return def;
    if (typeof v !== 'string') throw bad(`"${k}" must be a string`);
    return v;
  };
  const socket = str('socket', DEFAULT_SOCKET);
  if (!socket.startsWith('/')) throw bad(`"socket" must be an absolute path, got ${JSON.stringify(socket)}`);
  if (Buffer.byteLength(socket) > 107) throw bad(`"socket" is longer than 107 bytes (unix socket limit): ${socket}`);
  const max = o['execSyncMaxOutputBytes'] ?? 16 * 1024 * 1024;
  if (typeof max !== 'number' || !Number.isSafeInteger(max) || max < 1) throw bad('"execSyncMaxOutputBytes" must be a positive integer');
  const sandboxImage = o['sandboxImage'];
  if (sandboxImage !== undefined && (typeof sandboxImage !== 'string' || sandboxImage === '')) throw bad('"sandboxImage" must be a non-empty string');
  const idle = str('streamIdleTimeout', DEFAULT_STREAM_IDLE_TIMEOUT);
  let streamIdleTimeoutMs: number;
  try {
    streamIdleTimeoutMs = idle === '0' ? 0 : parseDuration(idle);
  } catch (err) {
    throw bad(`"streamIdleTimeout": ${(err as Error).message}, or "0" for none`);
  }
  const streamTls = o['streamTls'] ?? false;
  if (typeof streamTls !== 'boolean') throw bad('"streamTls" must be true or false');
  const file = (k: 'streamTlsCert' | 'streamTlsKey'): string | undefined => {
    const v = o[k];
    if (v === undefined) return undefined;
    if (typeof v !== 'string' || !v.startsWith('/')) throw bad(`"${k}" must be an absolute path, got ${JSON.stringify(v)}`);
    return v;
  };
  const streamTlsCert = file('streamTlsCert');
  const streamTlsKey = file('streamTlsKey');
  // As containerd's x509_key_pair_streaming: both files or neither (then a self-signed certificate).
  if ((streamTlsCert === undefined) !== (streamTlsKey === undefined)) {
    throw bad(`"streamTlsCert" and "streamTlsKey" go together: ${streamTlsCert === undefined ? '"streamTlsKey"' : '"streamTlsCert"'} is set, the other is not`);
  }
  // A key pair without streamTls would be silently unused, the URLs plain http.
  if (streamTlsCert !== undefined && !streamTls) throw bad('"streamTlsCert" and "streamTlsKey" need "streamTls": true');
  return {
    socket,
    ...(sandboxImage !== undefined && { sandboxImage }),
    catatonit: str('catatonit', '/usr/bin/catatonit'),
    execSyncMaxOutputBytes: max,
    streamAddress: parseAddressOption(str('streamAddress', DEFAULT_STREAM_ADDRESS)),
    streamIdleTimeoutMs,
    streamTls,
    ...(streamTlsCert !== undefined && { streamTlsCert }),
    ...(streamTlsKey !== undefined && { streamTlsKey }),
  };
}

function bad(message: string): IsulaError {
  return new IsulaError('PLUGIN_OPTIONS_INVALID', `@isula/cri: ${message}`);
}
