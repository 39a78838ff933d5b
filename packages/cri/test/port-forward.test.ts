/** Dialing into a network namespace: the nsenter relay (as root) and the direct path of hostNetwork pods. */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import net from 'node:net';
import { test } from 'node:test';
import { dialPod } from '../src/port-forward.js';

async function echoServer(t: { after(fn: () => void): void }): Promise<number> {
  const srv = net.createServer((s) => { s.on('data', (c: Buffer) => s.write(Buffer.from(c.toString().toUpperCase()))); s.on('end', () => s.end()); });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  t.after(() => srv.close());
  return (srv.address() as net.AddressInfo).port;
}

async function roundTrip(netns: string | undefined, port: number, text: string): Promise<{ reply: string; result: string }> {
  const c = dialPod(netns, port);
  let reply = '';
  c.stream.on('data', (b: Buffer) => { reply += b.toString(); });
  c.stream.end(text);
  const result = await c.result;
  return { reply, result };
}

async function closedPort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

test('port-forward: a hostNetwork pod is dialled directly; half-close and refusals', async (t) => {
  const port = await echoServer(t);
  assert.deepEqual(await roundTrip(undefined, port, 'hello'), { reply: 'HELLO', result: '' });
  const refused = await roundTrip(undefined, await closedPort(), 'x');
  assert.match(refused.result, /ECONNREFUSED/);
});

const asRoot = process.getuid?.() === 0 && await fs.access('/usr/bin/nsenter').then(() => true, () => false);

test('port-forward: the nsenter relay dials inside a namespace, passes half-close, reports refusals, and goes away', { skip: asRoot ? false : 'needs root and nsenter' }, async (t) => {
  const port = await echoServer(t);
  // Our own namespace through its file: the same path a pod's netns takes.
  assert.deepEqual(await roundTrip('/proc/self/ns/net', port, 'through the relay'), { reply: 'THROUGH THE RELAY', result: '' });
  const big = 'y'.repeat(1_000_000);
  assert.equal((await roundTrip('/proc/self/ns/net', port, big)).reply, big.toUpperCase());
  const refused = await roundTrip('/proc/self/ns/net', await closedPort(), 'x');
  assert.match(refused.result, /dial tcp (127\.0\.0\.1|::1):\d+: .*ECONNREFUSED/);
  // A missing namespace file: nsenter's own error.
  assert.notEqual((await roundTrip('/proc/self/ns/no-such', port, 'x')).result, '');
  // close() kills a relay at once.
  const c = dialPod('/proc/self/ns/net', port);
  c.close();
  await c.result;
});
