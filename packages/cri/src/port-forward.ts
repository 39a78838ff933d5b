/**
 * Dialing a TCP port inside a pod's network namespace. Node cannot setns(2),
 * so each connection is a short-lived relay: `nsenter --net=<netns>` runs the
 * daemon's own Node binary with a 20-line script that connects to
 * 127.0.0.1:<port> (then [::1]) and copies between its stdio and the socket.
 * The relay needs nothing in the pod (no socat or nc in the image) nor on the
 * host beyond util-linux's nsenter; it lives as long as the connection.
 */
import { spawn } from 'node:child_process';
import net from 'node:net';
import { Duplex } from 'node:stream';

// Exits once what it wrote is flushed: stdout is a socket here, whose writes are asynchronous,
// and an exit right at the pod's close cut the tail of a large reply.
const RELAY = `
const net = require('node:net');
const port = Number(process.argv[1]);
const leave = (stream, text, code) => stream.write(text, () => process.exit(code));
function dial(hosts) {
  const s = net.connect({ port, host: hosts[0] });
  s.once('error', (e) => {
    if (hosts.length > 1 && e.code === 'ECONNREFUSED') return dial(hosts.slice(1));
    leave(process.stderr, 'dial tcp ' + hosts[0] + ':' + port + ': ' + e.message, 1);
  });
  s.once('connect', () => {
    s.removeAllListeners('error');
    s.on('error', (e) => leave(process.stderr, e.message, 1));
    process.stdin.pipe(s);
    s.pipe(process.stdout);
    s.on('close', () => leave(process.stdout, '', 0));
  });
}
dial(['127.0.0.1', '::1']);
`;

/** How long `result` waits, after the relay ended, for its last bytes to be read. */
const DRAIN_WAIT_MS = 5_000;

export interface PodConnection {
  /** The bytes both ways: end() half-closes toward the pod. */
  stream: Duplex;
  /** Resolves with '' when the connection ended cleanly, or the error (the dial's, e.g. connection refused). */
  result: Promise<string>;
  /** Cuts the connection. */
  close(): void;
}

/** `netns` undefined: the host's network (hostNetwork pods). */
export function dialPod(netns: string | undefined, port: number): PodConnection {
  if (netns === undefined) {
    const s = net.connect({ port, host: '127.0.0.1' });
    const result = new Promise<string>((resolve) => {
      s.once('error', (e) => resolve(`dial tcp 127.0.0.1:${port}: ${e.message}`));
      s.once('close', () => resolve(''));
    });
    return { stream: s, result, close: () => s.destroy() };
  }
  const child = spawn('nsenter', [`--net=${netns}`, '--', process.execPath, '-e', RELAY, String(port)], { stdio: ['pipe', 'pipe', 'pipe'], env: { PATH: process.env['PATH'] ?? '/usr/sbin:/usr/bin:/sbin:/bin' } });
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => { if (stderr.length < 4096) stderr += c.toString('utf8'); });
  child.stdin.on('error', () => undefined);
  const exited = new Promise<string>((resolve) => {
    child.once('error', (e) => resolve(`cannot run nsenter: ${e.message}`));
    child.once('close', (code, sig) => resolve(code === 0 ? '' : (stderr.trim() || `port-forward relay exited with ${code ?? sig}`)));
  });
  const stream = Duplex.from({ readable: child.stdout, writable: child.stdin });
  stream.on('error', () => undefined);
  // The relay's end is not the end of its bytes: the Duplex hands on what it read from the
  // relay's stdout a little later. A caller that closes its side when `result` settles must
  // have had them all (under load the tail of a reply was cut), so `result` waits for the
  // readable side's end too; bounded, for a caller that never reads.
  const drained = new Promise<void>((resolve) => {
    if (stream.readableEnded) { resolve(); return; }
    for (const ev of ['end', 'close', 'error']) stream.once(ev, () => resolve());
  });
  const result = exited.then(async (outcome) => {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([drained, new Promise<void>((resolve) => { timer = setTimeout(resolve, DRAIN_WAIT_MS); timer.unref(); })]);
    clearTimeout(timer);
    return outcome;
  });
  return { stream, result, close: () => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL'); } };
}
