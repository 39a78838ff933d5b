#!/usr/bin/env node
// Memory soak of isulad (this checkout, image-oci + driver-runc, on temporary roots as in
// engines.mjs): N cycles (default 2000) of one container run and removed — create + start
// of `busybox sleep 1000`, then a forced remove — with isulad's RSS, PSS and USS
// (/proc/PID/smaps_rollup), its open descriptors and the conmon processes left under its
// roots sampled once idle, then after every 100 cycles. Verdict: PASS when the RSS after the
// last cycle is at most 10 % above the RSS after the first 100 cycles (a drop is no failure).
//
// The cycles go to the engine API over the unix socket with node:http by default (what
// `isula run -d` and `isula rm -f` send: POST /containers/create, POST /containers/ID/start,
// DELETE /containers/ID?force=1), so the soak takes minutes, not a CLI spawn per call;
// `--via cli` runs the isula CLI instead. Either way the daemon does the same work.
//
// isulad is a node process: its RSS rises and falls with V8's garbage collections (a
// saw-tooth of tens of MiB), so one RSS reading against another says little about a
// leak. `--heap` opens isulad's inspector (SIGUSR1, 127.0.0.1:9229) and, before each
// sample, forces a full collection and reads the V8 heap in use and process.memoryUsage():
// what is still reachable after 2000 cycles is what a leak would be (the RSS then is
// taken after the collection too; the inspector is closed at the end). It is the default;
// `--no-heap` samples the raw RSS saw-tooth instead.
//
//   bench/soak.sh [--cycles 2000] [--every 100] [--via api|cli] [--tolerance 10] [--no-heap]
import http from 'node:http';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { COMMON_OPTIONS, boundTeardowns, call, forEachEngine, makeEngines, memKiB, processes } from './engines.mjs';

const { values: opts } = parseArgs({
  allowNegative: true,
  options: {
    cycles: { type: 'string', default: '2000' },
    every: { type: 'string', default: '100' },
    via: { type: 'string', default: 'api' },
    tolerance: { type: 'string', default: '10' },
    settle: { type: 'string', default: '2000' },
    heap: { type: 'boolean', default: true },
    'inspect-port': { type: 'string', default: '9229' },
    ...COMMON_OPTIONS,
  },
});
const CYCLES = Number(opts.cycles);
const EVERY = Number(opts.every);
const TOLERANCE = Number(opts.tolerance);
const SETTLE_MS = Number(opts.settle);
if (!(EVERY > 0 && CYCLES >= EVERY && Number.isInteger(CYCLES / EVERY))) throw new Error('soak: --cycles must be a multiple of --every (≥ 1 sample)');
if (opts.via !== 'api' && opts.via !== 'cli') throw new Error('soak: --via api or cli');
const ARCHIVE = path.join(opts.images, 'busybox.docker.tar');
const REQUEST_TIMEOUT_MS = 60_000;

let stopping = false;
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => { console.error(`soak: ${sig}, cleaning up`); stopping = true; });
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** One engine API request over the unix socket; resolves {status, body} (JSON parsed when it is JSON). */
function request(sock, method, urlPath, body) {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : JSON.stringify(body);
    const req = http.request({
      socketPath: sock, method, path: `/v1.41${urlPath}`,
      headers: data === undefined ? {} : { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(data) },
      timeout: REQUEST_TIMEOUT_MS,
    }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c) => { text += c; });
      res.on('end', () => {
        let parsed = text;
        try { parsed = text === '' ? undefined : JSON.parse(text); } catch { /* not JSON */ }
        resolve({ status: res.statusCode, body: parsed });
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${urlPath}: no answer in ${REQUEST_TIMEOUT_MS} ms`)));
    req.on('error', reject);
    req.end(data);
  });
}

async function expect(sock, method, urlPath, status, body) {
  const res = await request(sock, method, urlPath, body);
  if (res.status !== status) throw new Error(`${method} ${urlPath} → ${res.status} (expected ${status}): ${JSON.stringify(res.body)}`);
  return res.body;
}

// The body `isula run -d busybox sleep 1000` posts (packages/cli run-options.ts), as captured from the CLI.
const CREATE_BODY = {
  Image: 'busybox', Tty: false, OpenStdin: false, AttachStdin: false, AttachStdout: false, AttachStderr: false, StdinOnce: false,
  HostConfig: { Binds: [], NetworkMode: 'default', PortBindings: {}, RestartPolicy: { Name: 'no' }, AutoRemove: false, Privileged: false, ReadonlyRootfs: false, PublishAllPorts: false },
  Cmd: ['sleep', '1000'],
};

/** A Chrome DevTools protocol session on `url` (node's global WebSocket); every call bounded by `timeoutMs`. */
async function devtools(url, timeoutMs = 60_000) {
  const ws = new WebSocket(url);
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`inspector ${url}: no connection in ${timeoutMs} ms`)), timeoutMs);
    ws.onopen = () => { clearTimeout(timer); resolve(); };
    ws.onerror = () => { clearTimeout(timer); reject(new Error(`inspector ${url}: connection failed`)); };
  });
  let next = 0;
  const pending = new Map();
  ws.onmessage = (ev) => {
    const msg = JSON.parse(String(ev.data));
    const p = pending.get(msg.id);
    if (p === undefined) return;
    pending.delete(msg.id);
    if (msg.error) p.reject(new Error(`${p.method}: ${msg.error.message}`)); else p.resolve(msg.result);
  };
  ws.onclose = () => { for (const p of pending.values()) p.reject(new Error(`${p.method}: inspector closed`)); pending.clear(); };
  return {
    send(method, params = {}) {
      const id = ++next;
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => { pending.delete(id); reject(new Error(`${method}: no answer in ${timeoutMs} ms`)); }, timeoutMs);
        pending.set(id, { method, resolve: (v) => { clearTimeout(timer); resolve(v); }, reject: (e) => { clearTimeout(timer); reject(e); } });
        ws.send(JSON.stringify({ id, method, params }));
      });
    },
    async evaluate(expression) {
      const r = await this.send('Runtime.evaluate', { expression, returnByValue: true });
      if (r.exceptionDetails) throw new Error(`${expression}: ${r.exceptionDetails.exception?.description ?? r.exceptionDetails.text}`);
      return r.result.value;
    },
    close() { ws.close(); },
  };
}

/** Opens the inspector of node process `pid` (SIGUSR1) and connects to it, checking it is that process. */
async function inspect(pid, port) {
  process.kill(pid, 'SIGUSR1');
  const deadline = Date.now() + 10_000;
  for (;;) {
    let targets;
    try {
      targets = await (await fetch(`http://127.0.0.1:${port}/json/list`, { signal: AbortSignal.timeout(2_000) })).json();
    } catch (e) {
      if (Date.now() > deadline) throw new Error(`isulad ${pid}: no inspector on 127.0.0.1:${port} after SIGUSR1 (${e.message})`);
      await sleep(200);
      continue;
    }
    for (const t of targets) {
      const session = await devtools(t.webSocketDebuggerUrl);
      if (await session.evaluate('process.pid') === pid) return session;
      session.close();
    }
    throw new Error(`the inspector on 127.0.0.1:${port} is not isulad ${pid}'s (another node process holds the port?)`);
  }
}

/** conmon processes whose arguments name a path under `root` (left behind if a remove leaked its monitor). */
const conmonsUnder = (root) => processes().filter((p) => path.basename(p.argv[0] ?? '') === 'conmon' && p.argv.some((a) => a.includes(root))).length;

const TMP = fs.mkdtempSync(path.join(os.tmpdir(), 'soak-'));
const ENGINES = boundTeardowns(makeEngines(TMP));
let result;
try {
  result = (await forEachEngine(ENGINES, ['isula'], ARCHIVE, async (engine) => {
    const [, cliArgs] = engine.cli([]);
    const sock = cliArgs[cliArgs.indexOf('-H') + 1].replace(/^unix:\/\//, '');
    const pid = engine.daemon.pid;
    const root = path.join(TMP, 'isula');
    const t0 = Date.now();
    const samples = [];
    let session;
    const sample = async (cycle) => {
      let heap = {};
      if (session !== undefined) {
        await session.send('HeapProfiler.collectGarbage');
        const u = JSON.parse(await session.evaluate('JSON.stringify(process.memoryUsage())'));
        const kib = (b) => Math.round(b / 1024);
        heap = { heapUsedKiB: kib(u.heapUsed), heapTotalKiB: kib(u.heapTotal), externalKiB: kib(u.external), arrayBuffersKiB: kib(u.arrayBuffers) };
      }
      const m = memKiB(pid);
      if (m === null) throw new Error(`isulad ${pid} is gone`);
      const s = { cycle, seconds: Math.round((Date.now() - t0) / 100) / 10, ...m, ...heap, fds: fs.readdirSync(`/proc/${pid}/fd`).length, conmons: conmonsUnder(root) };
      samples.push(s);
      const heapText = session === undefined ? '' : `, heap used after GC ${(s.heapUsedKiB / 1024).toFixed(1)} MiB, external ${(s.externalKiB / 1024).toFixed(1)} MiB`;
      console.error(`  cycle ${String(cycle).padStart(5)}: RSS ${(s.rssKiB / 1024).toFixed(1)} MiB, PSS ${(s.pssKiB / 1024).toFixed(1)} MiB, USS ${(s.ussKiB / 1024).toFixed(1)} MiB${heapText}, ${s.fds} fds, ${s.conmons} conmon, ${s.seconds} s`);
    };
    const cycle = opts.via === 'api'
      ? async () => {
        const { Id } = await expect(sock, 'POST', '/containers/create', 201, CREATE_BODY);
        try {
          await expect(sock, 'POST', `/containers/${Id}/start`, 204);
        } finally {
          await expect(sock, 'DELETE', `/containers/${Id}?force=1`, 204);
        }
      }
      : async () => {
        const { out } = await call(engine, ['run', '-d', ...engine.runArgs, 'busybox', 'sleep', '1000']);
        await call(engine, ['rm', '-f', out.trim().split('\n').pop().trim()]);
      };
    try {
      if (opts.heap) session = await inspect(pid, Number(opts['inspect-port']));
      await sleep(SETTLE_MS);
      await sample(0);
      for (let i = 1; i <= CYCLES; i++) {
        if (stopping) throw new Error(`interrupted at cycle ${i}`);
        await cycle();
        if (i % EVERY === 0) await sample(i);
      }
    } finally {
      if (session !== undefined) {
        // The inspector closes with this session (its answer may not come back).
        await Promise.race([session.evaluate("process.getBuiltinModule('node:inspector').close()").catch(() => {}), sleep(2_000)]);
        session.close();
      }
      // Whatever is left (a failed cycle's container): removed before the daemon stops.
      const left = await request(sock, 'GET', '/containers/json?all=1').catch((e) => { console.error(`soak: list: ${e.message}`); return { body: [] }; });
      for (const c of Array.isArray(left.body) ? left.body : []) {
        await expect(sock, 'DELETE', `/containers/${c.Id}?force=1`, 204).catch((e) => console.error(`soak: rm -f ${c.Id}: ${e.message}`));
      }
    }
    return { via: opts.via, heapAfterGc: opts.heap, cycles: CYCLES, every: EVERY, samples };
  })).isula;
} finally {
  fs.rmSync(TMP, { recursive: true, force: true });
}

const base = result.samples.find((s) => s.cycle === EVERY);
const last = result.samples.at(-1);
const growth = (last.rssKiB - base.rssKiB) / base.rssKiB * 100;
result.verdict = {
  pass: growth <= TOLERANCE, tolerancepct: TOLERANCE, baseCycle: base.cycle, baseRssKiB: base.rssKiB, finalCycle: last.cycle, finalRssKiB: last.rssKiB,
  rssGrowthPct: Math.round(growth * 10) / 10, leftConmons: last.conmons,
};
if (opts.heap) {
  result.verdict.baseHeapUsedKiB = base.heapUsedKiB;
  result.verdict.finalHeapUsedKiB = last.heapUsedKiB;
  result.verdict.heapUsedGrowthPct = Math.round((last.heapUsedKiB - base.heapUsedKiB) / base.heapUsedKiB * 1000) / 10;
}
const mib = (k) => (k / 1024).toFixed(1);
let md = `soak on ${os.hostname()} (${os.cpus().length} cores), ${new Date().toISOString()}: isulad (this checkout, runc), ${CYCLES} cycles of create + start \`busybox sleep 1000\` and a forced remove, `;
md += result.via === 'api' ? 'sent to the engine API over the unix socket by node:http (what `isula run -d` / `rm -f` send; no CLI spawned)' : 'each an isula CLI call (`run -d`, `rm -f`)';
md += `; ${(last.seconds - result.samples[0].seconds).toFixed(0)} s`;
md += opts.heap ? '. Each sample follows a forced full garbage collection (inspector HeapProfiler.collectGarbage).\n\n' : '. Samples are taken as they come: isulad\'s RSS follows V8\'s collections (see --heap).\n\n';
md += `**${result.verdict.pass ? 'PASS' : 'FAIL'}**: RSS after cycle ${last.cycle} ${mib(last.rssKiB)} MiB vs ${mib(base.rssKiB)} MiB after cycle ${base.cycle}: ${growth >= 0 ? '+' : ''}${growth.toFixed(1)} % (limit +${TOLERANCE} %)\n\n`;
if (opts.heap) md += `V8 heap in use after GC: ${mib(base.heapUsedKiB)} MiB after cycle ${base.cycle}, ${mib(last.heapUsedKiB)} MiB after cycle ${last.cycle} (${result.verdict.heapUsedGrowthPct >= 0 ? '+' : ''}${result.verdict.heapUsedGrowthPct} %)\n\n`;
const heapCols = opts.heap ? ['heap used MiB', 'heap total MiB', 'external MiB'] : [];
md += `| cycle | s | RSS MiB | PSS MiB | USS MiB | ${heapCols.map((c) => `${c} | `).join('')}fds | conmon |\n|${'---:|'.repeat(7 + heapCols.length)}\n`;
for (const s of result.samples) {
  const heap = opts.heap ? `${mib(s.heapUsedKiB)} | ${mib(s.heapTotalKiB)} | ${mib(s.externalKiB)} | ` : '';
  md += `| ${s.cycle} | ${s.seconds} | ${mib(s.rssKiB)} | ${mib(s.pssKiB)} | ${mib(s.ussKiB)} | ${heap}${s.fds} | ${s.conmons} |\n`;
}
fs.mkdirSync(opts.results, { recursive: true });
fs.writeFileSync(path.join(opts.results, 'soak.md'), md);
fs.writeFileSync(path.join(opts.results, 'soak.json'), JSON.stringify(result));
process.stdout.write(md);
if (!result.verdict.pass) process.exitCode = 1;
