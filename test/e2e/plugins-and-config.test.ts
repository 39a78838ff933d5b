import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { test } from 'node:test';
import { installPlugin, newDaemon, waitFor } from '../lib/harness.js';

interface EventMessage { Type: string; Action: string; Actor: { ID: string; Attributes: Record<string, string> }; timeNano: number }

/** Sends one line to the hello plugin's own socket and returns its answer. */
function sayHello(socket: string, line: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect(socket);
    let data = '';
    s.on('data', (c: Buffer) => {
      data += c.toString('utf8');
      if (data.endsWith('\n')) { s.end(); resolve(data.trim()); }
    });
    s.on('error', reject);
    s.write(`${line}\n`);
  });
}

/** A daemon with the hello plugin installed into a temporary plugin dir, its socket in the test root. */
async function helloDaemon(t: Parameters<typeof newDaemon>[0]) {
  const d = await newDaemon(t);
  const pluginDir = path.join(d.root, 'plugins');
  const name = await installPlugin('plugin-hello', pluginDir);
  const helloSocket = path.join(d.root, 'hello.sock');
  await d.writeConfig({ 'plugin-dirs': [pluginDir], plugins: [{ package: name, options: { socket: helloSocket } }] });
  await d.start();
  return { d, helloSocket };
}

test('a third-party plugin installed in a plugin dir is loaded, listed by isula info, and serves its front end', async (t) => {
  const { d, helloSocket } = await helloDaemon(t);

  const info = await d.isula(['info']);
  assert.equal(info.code, 0, info.stderr);
  assert.match(info.stdout, /^Plugins:\n isula-plugin-hello 1\.2\.3 \(plugin API \^1\.0\.0\)$/m);
  assert.match(info.stdout, new RegExp(`^ hello: unix://${helloSocket}$`, 'm'));

  assert.equal(await sayHello(helloSocket, 'world'), 'hello world');

  // The plugin's load and its event are on the stream, in order.
  const events = await d.isula(['events', '--since', '0', '--until', String(Date.now() / 1000 + 0.001), '--format', 'json', '--filter', 'type=plugin']);
  assert.equal(events.code, 0, events.stderr);
  const list = events.stdout.trim().split('\n').map((l) => JSON.parse(l) as EventMessage);
  assert.deepEqual(list.map((e) => `${e.Action} ${e.Actor.ID}`), ['enable isula-plugin-hello', 'hello isula-plugin-hello']);
  assert.equal(list[0]?.Actor.Attributes['version'], '1.2.3');
  assert.equal(list[1]?.Actor.Attributes['from'], 'world');

  // SIGTERM stops the plugin's front end too.
  assert.deepEqual(await d.stop(), { code: 0, signal: null });
  await assert.rejects(sayHello(helloSocket, 'again'));
});

test('GET /events streams live events as they happen, filtered', async (t) => {
  const { d, helloSocket } = await helloDaemon(t);

  const received: EventMessage[] = [];
  const req = http.request({ socketPath: d.socket, path: `/v1.41/events?filters=${encodeURIComponent(JSON.stringify({ event: ['hello'] }))}` });
  const res = await new Promise<http.IncomingMessage>((resolve, reject) => { req.on('response', resolve); req.on('error', reject); req.end(); });
  t.after(() => { res.destroy(); });
  assert.equal(res.statusCode, 200);
  let buf = '';
  res.on('data', (c: Buffer) => {
    buf += c.toString('utf8');
    let nl;
    while ((nl = buf.indexOf('\n')) >= 0) { received.push(JSON.parse(buf.slice(0, nl)) as EventMessage); buf = buf.slice(nl + 1); }
  });

  await sayHello(helloSocket, 'one');
  // A live event the filter must keep out: the plugin answers "bye" with a `bye` event.
  assert.equal(await sayHello(helloSocket, 'bye'), 'hello bye');
  await sayHello(helloSocket, 'two');
  await waitFor(() => received.length >= 2, { what: 'two live events' });
  assert.deepEqual(received.map((e) => e.Actor.Attributes['from']), ['one', 'two']);
  assert.ok(received.every((e) => e.Action === 'hello'), 'filter kept out the enable and bye events');
  assert.ok((received[1]?.timeNano ?? 0) > (received[0]?.timeNano ?? 0));
});

async function expectRefusal(t: Parameters<typeof newDaemon>[0], config: Record<string, unknown> | string, fixtures: string[], pattern: RegExp) {
  const d = await newDaemon(t);
  const pluginDir = path.join(d.root, 'plugins');
  for (const f of fixtures) await installPlugin(f, pluginDir);
  await d.writeConfig(typeof config === 'string' ? config : { 'plugin-dirs': [pluginDir], ...config });
  d.spawn();
  const exit = await d.exited();
  assert.equal(exit.code, 1, `isulad should refuse to start; stderr: ${d.stderr}`);
  assert.match(d.stderr, pattern);
  await assert.rejects(fs.stat(d.socket), { code: 'ENOENT' }, 'no socket left behind');
  await assert.rejects(fs.stat(path.join(d.state, 'isulad.pid')), { code: 'ENOENT' }, 'no pid file left behind');
  return d;
}

test('a plugin with an incompatible apiVersion stops the start, naming the plugin', async (t) => {
  await expectRefusal(t, { plugins: ['isula-plugin-incompatible'] }, ['plugin-incompatible'],
    /plugin "isula-plugin-incompatible" 0\.9\.0 requires plugin API \^2\.0\.0, but this isulad provides 1\.\d+\.\d+ \(PLUGIN_API_MISMATCH\)/);
});

test('a missing plugin stops the start, naming the package', async (t) => {
  await expectRefusal(t, { plugins: ['isula-plugin-nowhere'] }, [], /plugin "isula-plugin-nowhere" is not installed.*\(PLUGIN_NOT_FOUND\)/);
});

test('a plugin whose apply throws stops the start, naming the plugin and its reason', async (t) => {
  await expectRefusal(t, { plugins: ['isula-plugin-throws'] }, ['plugin-throws'], /plugin "isula-plugin-throws" failed to start: the hello backend is on fire \(PLUGIN_APPLY_FAILED\)/);
});

test('plugin options are checked by the plugin: a bad option stops the start', async (t) => {
  await expectRefusal(t, { plugins: [{ package: 'isula-plugin-hello', options: { socket: 'relative.sock' } }] }, ['plugin-hello'], /isula-plugin-hello.*option "socket" must be an absolute path/);
});

test('a daemon.json syntax error names the file, line and column', async (t) => {
  const d = await expectRefusal(t, '{\n  "log-level": "info",\n  "graph": ,\n}\n', [], /daemon\.json:3:\d+: invalid JSON/);
  assert.match(d.stderr, new RegExp(d.configFile.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')));
});

test('a daemon.json value of the wrong type names the key', async (t) => {
  await expectRefusal(t, { 'log-level': 7 }, [], /invalid value for "log-level": expected one of trace, debug, info, warn, error, fatal, got number 7 \(CONFIG_INVALID\)/);
  await expectRefusal(t, { hosts: ['tcp://0.0.0.0:2375'] }, [], /invalid value for "hosts".*only unix:\/\/ABSOLUTE_PATH/);
});

test('an unknown daemon.json key is a warning in the log, not a failure', async (t) => {
  const d = await newDaemon(t);
  await d.writeConfig({ plugins: [], 'no-such-setting': true });
  await d.start();
  const log = await d.log();
  const warning = log.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { level: number; msg: string; key?: string })
    .find((l) => l.msg === 'unknown key in daemon.json ignored');
  assert.equal(warning?.key, 'no-such-setting');
  assert.equal(warning?.level, 40);
});

test('a missing --config-file is an error', async (t) => {
  const d = await newDaemon(t);
  d.spawn();
  assert.equal((await d.exited()).code, 1);
  assert.match(d.stderr, /config file .*daemon\.json not found \(CONFIG_NOT_FOUND\)/);
});
