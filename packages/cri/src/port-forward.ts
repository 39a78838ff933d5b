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

const RELAY = `
const net = require('node:net');
const port = Number(process.argv[1]);
function dial(hosts) {
  const s = net.connect({ port, host: hosts[0] });
  s.once('error', (e) => {
    if (hosts.length > 1 && e.code === 'ECONNREFUSED') return dial(hosts.slice(1));
    process.stderr.write('dial tcp ' + hosts[0] + ':' + port + ': ' + e.message);
    process.exit(1);
  });
  s.once('connect', () => {
    s.removeAllListeners('error');
    s.on('error', (e) => { process.stderr.write(e.message); process.exit(1); });
    process.stdin.pipe(s);
    s.pipe(process.stdout);
    s.on('close', () => process.exit(0));
  });
}
dial(['127.0.0.1', '::1']);
`;

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
  const result = new Promise<string>((resolve) => {
    child.once('error', (e) => resolve(`cannot run nsenter: ${e.message}`));
    child.once('close', (code, sig) => resolve(code === 0 ? '' : (stderr.trim() || `port-forward relay exited with ${code ?? sig}`)));
  });
  const stream = Duplex.from({ readable: child.stdout, writable: child.stdin });
  stream.on('error', () => undefined);
  return { stream, result, close: () => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL'); } };
}
