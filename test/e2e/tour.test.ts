/**
 * The README's "A short tour", run as it stands: every ```sh block after a
 * `<!-- tour -->` comment, in order, each by `bash -euo pipefail`, against a
 * private daemon, so the tour cannot rot.
 *
 * The tour is written for the daemon that ./scripts/quickstart.sh leaves on
 * the host. What only makes sense there is mapped, and nothing else:
 * - the paths `/run/isulad`, `/etc/isulad`, `/usr/local/lib/isula/plugins`
 *   and `/tmp/isula-tour` become folders of the test's own root;
 * - `isula` is the built CLI, aimed at the private socket by ISULAD_HOST;
 * - `isulad` is the built daemon with `--state`, `--graph` and `--config-file`
 *   of its own; the config file given is the tour's daemon.json (when it has
 *   written one) with the network-cni plugin on a bridge, subnet and conf
 *   dir of the test's, and `plugin-dirs` the test's plugins folder, so it
 *   never touches the host's `isula0`;
 * - the host port 8080 becomes a free one;
 * - quickstart.sh itself is replaced by what it leaves: the daemon started
 *   the tour's way (`setsid isulad ... &`) and busybox loaded.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import pino from 'pino';
import { FIRST_PARTY_PLUGINS } from '@isula/core';
import { removeBridgeIsolation } from '@isula/network-cni';
import { IMAGES_DIR, mountsUnder, testImages } from '../lib/containers.js';
import { ISULA, ISULAD, REPO, httpRequest, tempRoot, waitFor } from '../lib/harness.js';
import { CNI_BIN } from '../lib/net-daemon.js';
import { claimSubnetSlot } from '../lib/subnets.js';

const run = promisify(execFile);

/** The tour's blocks: the body of each ```sh fence that follows a `<!-- tour -->` line. */
function tourBlocks(readme: string): string[] {
  const blocks: string[] = [];
  for (const m of readme.matchAll(/^<!-- tour -->\n```sh\n([\s\S]*?)^```$/gm)) blocks.push(m[1] ?? '');
  return blocks;
}

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

interface Sandbox {
  root: string;
  state: string;
  env: NodeJS.ProcessEnv;
  /** The host paths of the tour and what they become here. */
  mapping: [from: RegExp, to: string][];
}

/** Merges the tour's daemon.json (if written) with the test's network, plugin folder; run by the `isulad` stand-in at each start. */
const MERGE_CONFIG = `import fs from 'node:fs';
const [src, dst, overrides] = process.argv.slice(2);
let config = {};
try { config = JSON.parse(fs.readFileSync(src, 'utf8')); } catch (e) { if (e.code !== 'ENOENT') throw e; }
const o = JSON.parse(overrides);
const plugins = (config.plugins ?? o.defaultPlugins).map((p) => {
  const name = typeof p === 'string' ? p : p.package;
  if (name !== '@isula/network-cni') return p;
  return { package: name, options: { ...(typeof p === 'string' ? {} : p.options), ...o.network } };
});
const effective = { ...config, plugins, 'plugin-dirs': [o.pluginDir], 'cni-conf-dir': o.cniConfDir, 'cni-bin-dir': o.cniBinDirs };
fs.writeFileSync(dst, JSON.stringify(effective, null, 2));
`;

async function sandbox(t: { after(fn: () => Promise<void>): void }): Promise<Sandbox> {
  const root = await tempRoot('isula-readme-');
  const tag = randomBytes(3).toString('hex');
  const bridge = `isut${tag}`;
  // 10.242.x: outside the ranges the other network tests take (lib/net-daemon.ts 10.233-10.240, network and cri 10.241).
  const subnet = `10.242.${claimSubnetSlot()}.0/24`;
  const cniConfDir = path.join(root, 'cni');
  const dirs = { state: path.join(root, 'state'), graph: path.join(root, 'graph'), etc: path.join(root, 'etc'), plugins: path.join(root, 'plugins'), tmp: path.join(root, 'tmp'), bin: path.join(root, 'bin') };
  for (const d of [...Object.values(dirs), cniConfDir]) await fs.mkdir(d, { recursive: true });
  const node = process.execPath;
  const overrides = { defaultPlugins: FIRST_PARTY_PLUGINS, network: { bridge, subnet }, pluginDir: dirs.plugins, cniConfDir, cniBinDirs: [CNI_BIN] };
  await fs.writeFile(path.join(dirs.bin, 'merge-config.mjs'), MERGE_CONFIG);
  await fs.writeFile(path.join(dirs.bin, 'isula'), `#!/bin/sh\nexec '${node}' '${ISULA}' "$@"\n`, { mode: 0o755 });
  await fs.writeFile(path.join(dirs.bin, 'isulad'), [
    '#!/bin/sh',
    `'${node}' '${path.join(dirs.bin, 'merge-config.mjs')}' '${path.join(dirs.etc, 'daemon.json')}' '${path.join(root, 'effective.json')}' '${JSON.stringify(overrides)}' || exit 1`,
    `exec '${node}' '${ISULAD}' --config-file '${path.join(root, 'effective.json')}' --state '${dirs.state}' --graph '${dirs.graph}' "$@"`,
    '',
  ].join('\n'), { mode: 0o755 });

  const port = await freePort();
  const env = { ...process.env, PATH: `${dirs.bin}:${process.env['PATH'] ?? '/usr/bin:/bin'}`, ISULAD_HOST: `unix://${path.join(dirs.state, 'isulad.sock')}` };
  t.after(async () => {
    await teardown(root, dirs.state, env);
    await run('ip', ['link', 'del', bridge]).catch(() => undefined);
    await removeBridgeIsolation(bridge, pino({ level: 'silent' }));
    await fs.rm(root, { recursive: true, force: true });
  });
  return {
    root,
    state: dirs.state,
    env,
    mapping: [
      [/\/run\/isulad/g, dirs.state],
      [/\/etc\/isulad/g, dirs.etc],
      [/\/usr\/local\/lib\/isula\/plugins/g, dirs.plugins],
      [/\/tmp\/isula-tour/g, path.join(dirs.tmp, 'isula-tour')],
      [/\b8080\b/g, String(port)],
      // The README's daemon (re)starts wait 10 s; a loaded CI host may need longer.
      [/\btimeout 10\b/g, 'timeout 60'],
    ],
  };
}

/** Removes the containers, stops whichever daemon runs on the state root (the tour restarts it), and unmounts what is left. */
async function teardown(root: string, state: string, env: NodeJS.ProcessEnv): Promise<void> {
  const isula = (args: string[]) => run(process.execPath, [ISULA, ...args], { env, timeout: 60_000 }).catch(() => ({ stdout: '' }));
  const ids = (await isula(['ps', '-aq', '--no-trunc'])).stdout.split('\n').filter(Boolean);
  if (ids.length > 0) await isula(['rm', '-f', ...ids]);
  const pid = Number((await fs.readFile(path.join(state, 'isulad.pid'), 'utf8').catch(() => '')).trim());
  if (pid > 0) {
    try { process.kill(pid, 'SIGTERM'); } catch { /* gone already */ }
    const gone = () => { try { process.kill(pid, 0); return false; } catch { return true; } };
    await waitFor(gone, { timeoutMs: 15_000, what: 'the tour daemon to stop' }).catch(() => { try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } });
  }
  for (const m of (await mountsUnder(root)).reverse()) await run('umount', ['-l', m]).catch(() => {});
}

/** Runs one block the way a reader pastes it: bash, stop at the first failing command. */
async function runBlock(block: string, sb: Sandbox): Promise<{ code: number; stdout: string; stderr: string }> {
  // One pass, so that a path already mapped is not mapped again.
  const script = block.replace(new RegExp(sb.mapping.map(([from]) => from.source).join('|'), 'g'), (found) => {
    const hit = sb.mapping.find(([from]) => new RegExp(`^(?:${from.source})$`).test(found));
    return hit === undefined ? found : hit[1];
  });
  return new Promise((resolve) => {
    execFile('bash', ['-euo', 'pipefail', '-c', script], { cwd: REPO, env: sb.env, timeout: 180_000, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1;
      resolve({ code, stdout, stderr });
    });
  });
}

async function prerequisites(): Promise<string | false> {
  const missing: string[] = [];
  if (process.getuid?.() !== 0) missing.push('root');
  for (const p of ['bridge', 'host-local', 'portmap', 'firewall', 'loopback']) {
    if (!(await fs.access(path.join(CNI_BIN, p)).then(() => true, () => false))) missing.push(`${CNI_BIN}/${p}`);
  }
  for (const bin of ['busybox', 'setsid', 'timeout']) {
    if (!(await run('sh', ['-c', `command -v ${bin}`]).then(() => true, () => false))) missing.push(bin);
  }
  if (missing.length === 0) return false;
  if (process.env['CI'] === 'true') throw new Error(`the tour needs: ${missing.join(', ')}`);
  return `needs ${missing.join(', ')}`;
}

const README = await fs.readFile(path.join(REPO, 'README.md'), 'utf8');

test('the README tour has its blocks', () => {
  const blocks = tourBlocks(README);
  assert.ok(blocks.length >= 8, `found ${blocks.length} tour blocks`);
  const all = blocks.join('\n');
  for (const topic of ['isula run ', 'isula logs ', 'isula exec ', '-p 8080:80', 'isula volume create', 'isula save ', 'isula load ', '/etc/isulad/daemon.json', 'plugin-hello', 'isula info', 'isulad.log', 'isula events', 'isula completion bash']) {
    assert.ok(all.includes(topic), `the tour shows ${topic}`);
  }
});

test('every command of the README tour works against a private daemon', { skip: await prerequisites(), timeout: 900_000 }, async (t) => {
  await testImages();
  const sb = await sandbox(t);
  // What quickstart.sh leaves: the daemon started the tour's way, busybox loaded.
  const started = await runBlock('setsid isulad </dev/null >>/run/isulad/isulad.stderr 2>&1 &', sb);
  assert.equal(started.code, 0, started.stderr);
  const socket = path.join(sb.state, 'isulad.sock');
  await waitFor(async () => (await httpRequest(socket, 'GET', '/_ping').catch(() => undefined))?.status === 200, { timeoutMs: 20_000, what: 'the tour daemon to answer' })
    .catch(async (e: unknown) => { throw new Error(`${(e as Error).message}: ${await fs.readFile(path.join(sb.state, 'isulad.stderr'), 'utf8').catch(() => '')}`); });
  const load = await runBlock(`isula load -i '${path.join(IMAGES_DIR, 'busybox.docker.tar')}'`, sb);
  assert.equal(load.code, 0, load.stderr);

  const outputs: string[] = [];
  for (const [i, block] of tourBlocks(README).entries()) {
    const r = await runBlock(block, sb);
    const first = block.split('\n')[0];
    assert.equal(r.code, 0, `tour block ${i + 1} (${first}) failed with ${r.code}:\n${r.stdout}\n${r.stderr}\n--- daemon stderr:\n${await fs.readFile(path.join(sb.state, 'isulad.stderr'), 'utf8').catch(() => '')}`);
    outputs.push(r.stdout + r.stderr);
  }

  // What the reader is told to expect.
  const all = outputs.join('\n');
  assert.match(all, /^hello from [0-9a-f]{12}$/m, 'the published port serves the page');
  assert.match(all, /^hello, tour$/m, 'exec changed the page');
  assert.match(all, /^oops on stderr$/m, 'logs give stderr back');
  assert.match(all, /^written by the first container$/m, 'the volume outlived its container');
  assert.match(all, /^from the host$/m, 'the bind mount shows the host folder');
  assert.match(all, /^ isula-plugin-hello 1\.2\.3 /m, 'isula info lists the third-party plugin after the restart');
  assert.match(all, /^exit code 127$/m, 'a missing command is 127');
  assert.match(all, /^complete -F _isula isula$/m, 'the completion script loads');
  assert.match(all, /plugin enable isula-plugin-hello \(/, 'events replays the daemon\'s start');
  assert.match(all, /container create [0-9a-f]{64} \(image=busybox/, 'events replays the failed run');
});
