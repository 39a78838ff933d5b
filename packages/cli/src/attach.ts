/**
 * Attaching to a container's stdio: the hijacked `/containers/{id}/attach`
 * connection, docker's multiplexed stream (stdcopy) when there is no TTY, raw
 * bytes with one, and the local terminal's raw mode.
 */
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

export interface AttachOptions {
  stdin: boolean;
  stdout: boolean;
  stderr: boolean;
  /** The container has a TTY: the stream is raw bytes, not multiplexed. */
  tty: boolean;
  input?: NodeJS.ReadableStream;
  output?: NodeJS.WritableStream;
  errorOutput?: NodeJS.WritableStream;
}

export interface AttachSession {
  /** Settles when the daemon ends the stream (the container's output is over). */
  finished: Promise<void>;
  /** Stops copying and drops the connection (start failed). */
  close(): void;
}

/**
 * Attaches before the container starts (so no output is lost): resolves once
 * the daemon has upgraded the connection, then copies its output to
 * stdout/stderr and, with `stdin`, the input up the same connection;
 * the input's end half-closes the socket, which the daemon reads as stdin EOF.
 */
export async function attachContainer(client: EngineClient, id: string, o: AttachOptions): Promise<AttachSession> {
  const flag = (b: boolean) => (b ? '1' : undefined);
  const { socket, head } = await client.hijack(`/containers/${encodeURIComponent(id)}/attach`, {
    stream: '1', stdin: flag(o.stdin), stdout: flag(o.stdout), stderr: flag(o.stderr),
  });
  const output = o.output ?? process.stdout;
  const errorOutput = o.errorOutput ?? process.stderr;
  let daemonError = '';
  const demux = new StreamDemuxer((stream, data) => {
    if (stream === 3) daemonError += data.toString('utf8');
    else (stream === 2 ? errorOutput : output).write(data);
  });
  const input = o.stdin ? o.input ?? process.stdin : undefined;
  const onInput = (chunk: Buffer) => { socket.write(chunk); };
  const onInputEnd = () => { socket.end(); };
  const stopInput = () => {
    if (input === undefined) return;
    input.off('data', onInput);
    input.off('end', onInputEnd);
    input.pause();
    // A paused TTY or pipe still holds the event loop open: let the process exit.
    (input as { unref?: () => void }).unref?.();
  };

  const finished = new Promise<void>((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      try {
        if (o.tty) output.write(chunk);
        else demux.push(chunk);
      } catch (err) {
        socket.destroy();
        reject(err);
      }
    };
    const settle = () => {
      stopInput();
      if (daemonError !== '') reject(new Error(`Error from daemon in stream: ${daemonError}`));
      else resolve();
    };
    socket.on('data', onData);
    socket.on('error', (err) => { stopInput(); reject(err); });
    // The daemon's end of the stream is the end of the output: docker stops
    // copying stdin then too, so the whole connection goes.
    socket.on('end', () => { settle(); socket.destroy(); });
    socket.on('close', settle);
    if (head.length > 0) onData(head);
  });
  finished.catch(() => { /* observed by the caller */ });
  if (input !== undefined) {
    input.on('data', onInput);
    input.on('end', onInputEnd);
    input.resume();
  }
  socket.resume();
  return { finished, close: () => { stopInput(); socket.destroy(); } };
}

/**
 * Raw mode for the local terminal during a TTY session (keys go to the
 * container as typed); returns the function that restores it. This is also
 * the place for the window size: sending `POST /containers/{id}/resize?h=&w=`
 * after start and on SIGWINCH belongs next to it.
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
