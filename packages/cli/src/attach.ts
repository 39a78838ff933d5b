/**
 * Attaching to a process's stdio: the hijacked `/containers/{id}/attach` and
 * `/exec/{id}/start` connections, docker's multiplexed stream (stdcopy) when
 * there is no TTY, raw bytes with one, the detach keys, the local terminal's
 * raw mode and its window size.
 */
import type net from 'node:net';
import type { EngineClient } from './client.js';

/** stdcopy stream types: 0 stdin (written to stdout, as docker does), 1 stdout, 2 stderr, 3 an error from the daemon. */
export type StreamType = 0 | 1 | 2 | 3;

/**
 * Splits docker's multiplexed stream: frames of an 8-byte header (stream type,
 * three zero bytes, uint32 big-endian payload length) and the payload. Payload
 * bytes are handed on as they arrive, so a frame split across chunks costs no
 * copy and a large frame no wait.
 */
export class StreamDemuxer {
  #header = Buffer.alloc(0);
  #stream: StreamType = 1;
  #remaining = 0;

  constructor(private readonly onFrame: (stream: StreamType, data: Buffer) => void) {}

  push(chunk: Buffer): void {
    let at = 0;
    while (at < chunk.length) {
      if (this.#remaining === 0) {
        const need = 8 - this.#header.length;
        this.#header = Buffer.concat([this.#header, chunk.subarray(at, at + need)]);
        at += Math.min(need, chunk.length - at);
        if (this.#header.length < 8) return;
        const type = this.#header[0] ?? 0;
        if (type > 3) throw new Error(`unrecognized stream type ${type} in the attach stream`);
        this.#stream = type as StreamType;
        this.#remaining = this.#header.readUInt32BE(4);
        this.#header = Buffer.alloc(0);
        continue;
      }
      const take = Math.min(this.#remaining, chunk.length - at);
      this.#remaining -= take;
      this.onFrame(this.#stream, chunk.subarray(at, at + take));
      at += take;
    }
  }

  /** The stream stopped inside a header or a payload (docker's stdcopy drops such a tail silently). */
  get truncated(): boolean {
    return this.#header.length > 0 || this.#remaining > 0;
  }
}

/** The key sequence that leaves a session when none is given: ctrl-p, ctrl-q (docker's default). */
export const DEFAULT_DETACH_KEYS = 'ctrl-p,ctrl-q';

const CTRL_KEYS = '@abcdefghijklmnopqrstuvwxyz[\\]^_';

/**
 * docker's `term.ToBytes`: `ctrl-a`…`ctrl-z`, `ctrl-@`, `ctrl-[`, `ctrl-\`,
 * `ctrl-]`, `ctrl-^`, `ctrl-_`, `DEL`, or one character, comma-separated.
 */
export function parseDetachKeys(keys: string): Buffer {
  const codes: number[] = [];
  for (const key of keys.split(',')) {
    if (Buffer.byteLength(key) === 1) { codes.push(key.charCodeAt(0)); continue; }
    const ctrl = /^ctrl-(.)$/.exec(key)?.[1];
    const index = ctrl === undefined ? -1 : CTRL_KEYS.indexOf(ctrl);
    if (index >= 0) codes.push(index);
    else if (key === 'DEL') codes.push(127);
    else throw new Error(`unknown character: '${key}'`);
  }
  return Buffer.from(codes);
}

/**
 * Watches the bytes typed for the detach sequence, as moby's escape proxy
 * matches it (consecutive bytes; a broken prefix starts over). It only
 * watches: the bytes still go to the daemon, which holds the prefix back from
 * the process and ends the stream on the whole sequence.
 */
export class DetachKeyMatcher {
  #matched = 0;
  constructor(private readonly keys: Buffer) {}

  /** The index just past the sequence's last byte in `chunk`, or -1. */
  push(chunk: Buffer): number {
    if (this.keys.length === 0) return -1;
    for (let i = 0; i < chunk.length; i += 1) {
      const byte = chunk[i];
      if (byte === this.keys[this.#matched]) this.#matched += 1;
      else this.#matched = byte === this.keys[0] ? 1 : 0;
      if (this.#matched === this.keys.length) { this.#matched = 0; return i + 1; }
    }
    return -1;
  }
}

/** How long the daemon gets to end the stream after the detach keys before the client leaves on its own. */
const DETACH_GRACE_MS = 1000;

export interface SessionOptions {
  /** Copy this input up the connection (`-i`); its end half-closes the socket (stdin EOF). */
  stdin: boolean;
  /** The stream is raw bytes (a TTY), not docker's multiplexed frames. */
  tty: boolean;
  /** The detach sequence (`--detach-keys`); the default is ctrl-p,ctrl-q. */
  detachKeys?: string | undefined;
  input?: NodeJS.ReadableStream;
  output?: NodeJS.WritableStream;
  errorOutput?: NodeJS.WritableStream;
}

export interface AttachOptions extends SessionOptions {
  stdout: boolean;
  stderr: boolean;
}

/** `ended`: the daemon ended the stream (the process is done); `detached`: the user typed the detach keys. */
export type SessionEnd = 'ended' | 'detached';

export interface AttachSession {
  /** Settles when the daemon ends the stream, or the user detached. */
  finished: Promise<SessionEnd>;
  /** Stops copying and drops the connection (start failed). */
  close(): void;
}

/**
 * Copies a hijacked connection (attach, exec start): its output to
 * stdout/stderr, and with `stdin` the input up the same connection. The
 * daemon watches the input for the detach keys and ends the stream on them;
 * the client watches too, to tell a detach from the end of the process, and
 * leaves by itself if the daemon has not ended the stream DETACH_GRACE_MS later.
 */
export function streamSession(socket: net.Socket, head: Buffer, o: SessionOptions): AttachSession {
  const output = o.output ?? process.stdout;
  const errorOutput = o.errorOutput ?? process.stderr;
  let daemonError = '';
  let detached = false;
  let graceTimer: NodeJS.Timeout | undefined;
  const demux = new StreamDemuxer((stream, data) => {
    if (stream === 3) daemonError += data.toString('utf8');
    else (stream === 2 ? errorOutput : output).write(data);
  });
  const input = o.stdin ? o.input ?? process.stdin : undefined;
  // As moby, the keys mean something only with a TTY: piped (maybe binary) input is passed on whole.
  let matcher: DetachKeyMatcher | undefined;
  if (o.tty) {
    try {
      matcher = new DetachKeyMatcher(parseDetachKeys(o.detachKeys || DEFAULT_DETACH_KEYS));
    } catch {
      // docker's client falls back to the default sequence; the daemon rejects the bad one.
      matcher = new DetachKeyMatcher(parseDetachKeys(DEFAULT_DETACH_KEYS));
    }
  }
  let settle: (end: SessionEnd) => void = () => {};
  const onInput = (chunk: Buffer) => {
    if (detached) return;
    const end = matcher?.push(chunk) ?? -1;
    socket.write(end < 0 ? chunk : chunk.subarray(0, end));
    if (end < 0) return;
    detached = true;
    stopInput();
    graceTimer = setTimeout(() => { settle('detached'); socket.destroy(); }, DETACH_GRACE_MS);
  };
  const onInputEnd = () => { if (!detached) socket.end(); };
  const stopInput = () => {
    if (input === undefined) return;
    input.off('data', onInput);
    input.off('end', onInputEnd);
    input.pause();
    // A paused TTY or pipe still holds the event loop open: let the process exit.
    (input as { unref?: () => void }).unref?.();
  };

  const finished = new Promise<SessionEnd>((resolve, reject) => {
    let settled = false;
    settle = (end) => {
      if (settled) return;
      settled = true;
      clearTimeout(graceTimer);
      stopInput();
      if (daemonError !== '') reject(new Error(`Error from daemon in stream: ${daemonError}`));
      else resolve(end);
    };
    const onData = (chunk: Buffer) => {
      try {
        if (o.tty) output.write(chunk);
        else demux.push(chunk);
      } catch (err) {
        socket.destroy();
        settled = true;
        stopInput();
        reject(err);
      }
    };
    socket.on('data', onData);
    socket.on('error', (err) => {
      if (detached) { settle('detached'); return; }
      settled = true;
      stopInput();
      reject(err);
    });
    // The daemon's end of the stream is the end of the output: docker stops
    // copying stdin then too, so the whole connection goes.
    socket.on('end', () => { settle(detached ? 'detached' : 'ended'); socket.destroy(); });
    socket.on('close', () => settle(detached ? 'detached' : 'ended'));
    if (head.length > 0) onData(head);
  });
  finished.catch(() => { /* observed by the caller */ });
  if (input !== undefined) {
    input.on('data', onInput);
    input.on('end', onInputEnd);
    input.resume();
  }
  socket.resume();
  return { finished, close: () => { stopInput(); clearTimeout(graceTimer); socket.destroy(); } };
}

/**
 * Attaches before the container starts (so no output is lost): resolves once
 * the daemon has upgraded the connection (`detachKeys` passed on when given),
 * then copies as `streamSession` does.
 */
export async function attachContainer(client: EngineClient, id: string, o: AttachOptions): Promise<AttachSession> {
  const flag = (b: boolean) => (b ? '1' : undefined);
  const { socket, head } = await client.hijack(`/containers/${encodeURIComponent(id)}/attach`, {
    stream: '1', stdin: flag(o.stdin), stdout: flag(o.stdout), stderr: flag(o.stderr), detachKeys: o.detachKeys || undefined,
  });
  return streamSession(socket, head, o);
}

/**
 * Raw mode for the local terminal during a TTY session (keys go to the
 * container as typed); returns the function that restores it.
 */
export function rawTerminal(input: NodeJS.ReadStream = process.stdin): () => void {
  if (!input.isTTY || typeof input.setRawMode !== 'function') return () => {};
  input.setRawMode(true);
  let restored = false;
  const restore = () => {
    if (restored) return;
    restored = true;
    input.setRawMode(false);
  };
  process.once('exit', restore);
  return restore;
}

/** What the resize monitor reads the window size from: a TTY stdout, or a fake in tests. */
export interface TerminalSize {
  rows?: number;
  columns?: number;
  on(event: 'resize', listener: () => void): unknown;
  off(event: 'resize', listener: () => void): unknown;
}

export interface ResizeOptions {
  /** docker's attach first sends one row and column more, then the real size, so a re-attached shell redraws. */
  nudge?: boolean;
  /** Called when even the retries of the first resize failed. */
  onGiveUp?: () => void;
  retryDelayMs?: number;
}

/**
 * docker's `MonitorTtySize`: `POST {path}/resize?h=ROWS&w=COLS` now and on
 * every window change (SIGWINCH: the TTY stream's `resize` event). A failed
 * first resize is retried 5 times, 10 ms apart (the process may not have its
 * TTY yet), then reported; later failures are ignored. `path` is
 * `/containers/{id}` or `/exec/{id}`. Returns the function that stops it.
 */
export function monitorTtySize(client: EngineClient, path: string, terminal: TerminalSize = process.stdout, o: ResizeOptions = {}): () => void {
  const resize = async (extra = 0): Promise<void> => {
    const rows = terminal.rows ?? 0;
    const cols = terminal.columns ?? 0;
    if (rows === 0 && cols === 0) return;
    await client.request(`${path}/resize`, { method: 'POST', query: { h: String(rows + extra), w: String(cols + extra) } });
  };
  let stopped = false;
  const first = async () => {
    if (o.nudge) await resize(1).catch(() => {});
    for (let attempt = 0; attempt <= 5 && !stopped; attempt += 1) {
      try {
        await resize();
        return;
      } catch {
        if (attempt < 5) await new Promise((r) => setTimeout(r, o.retryDelayMs ?? 10).unref());
      }
    }
    if (!stopped) (o.onGiveUp ?? (() => process.stderr.write('failed to resize tty, using default size\n')))();
  };
  void first();
  const onResize = () => { void resize().catch(() => {}); };
  terminal.on('resize', onResize);
  return () => { stopped = true; terminal.off('resize', onResize); };
}
