/** System routes of the engine API: /_ping, /version, /info, /events. */
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { IsulaError } from '../errors.js';
import { matchesFilter, parseEventFilters, parseEventTime, type EngineEvent, type EventBus } from '../events.js';
import { API_VERSION, MIN_API_VERSION, type ApiServer } from './server.js';

export interface SystemSource {
  version: string;
  gitCommit: string;
  events: EventBus;
  /** Docker `GET /info` fields owned by other parts of the daemon (counts, plugins, roots). */
  info(): Promise<Record<string, unknown>>;
  /** The engine's features, on or off (`isula version`, `isula info`). */
  features?(): EngineFeature[];
}

export interface EngineFeature {
  Name: string;
  Enabled: boolean;
  Detail: string;
}

export function registerSystemRoutes(api: ApiServer, source: SystemSource): void {
  const ping = async ({ res }: { res: import('node:http').ServerResponse }) => {
    res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8', 'Api-Version': API_VERSION, 'Cache-Control': 'no-cache, no-store, must-revalidate', Pragma: 'no-cache' });
    res.end('OK');
    return undefined;
  };
  api.route('GET', '/_ping', ping);
  api.route('HEAD', '/_ping', ping);

  api.route('GET', '/version', async () => ({
    Platform: { Name: 'isula' },
    Components: [{ Name: 'Engine', Version: source.version, Details: { ApiVersion: API_VERSION, MinAPIVersion: MIN_API_VERSION, NodeVersion: process.version } }],
    Version: source.version,
    ApiVersion: API_VERSION,
    MinAPIVersion: MIN_API_VERSION,
    GitCommit: source.gitCommit,
    GoVersion: `node ${process.version}`,
    Os: process.platform,
    Arch: goArch(process.arch),
    KernelVersion: os.release(),
    BuildTime: '',
    IsulaFeatures: source.features?.() ?? [],
  }));

  api.route('GET', '/info', async () => ({
    ID: os.hostname(),
    KernelVersion: os.release(),
    OperatingSystem: osRelease().prettyName,
    OSVersion: osRelease().versionId,
    OSType: process.platform,
    Architecture: os.machine(),
    NCPU: os.availableParallelism(),
    MemTotal: os.totalmem(),
    Name: os.hostname(),
    ServerVersion: source.version,
    ...(await source.info()),
  }));

  api.route('GET', '/events', async ({ query, res, signal }) => {
    const filter = parseEventFilters(query.get('filters') ?? undefined);
    const nowNano = Date.now() * 1e6;
    const sinceRaw = query.get('since');
    const untilRaw = query.get('until');
    const since = sinceRaw ? parseEventTime(sinceRaw, 'since') : undefined;
    const until = untilRaw ? parseEventTime(untilRaw, 'until') : undefined;
    if (since !== undefined && until !== undefined && until < since) {
      throw new IsulaError('API_BAD_REQUEST', 'until is before since');
    }
    const write = (e: EngineEvent) => res.write(`${JSON.stringify(e)}\n`);

    // Subscribe before answering (a client that saw the headers may act at once) and
    // before replaying, so nothing falls between history and live.
    const pending: EngineEvent[] = [];
    let replaying = true;
    let lastSent = -1;
    const unsubscribe = source.events.subscribe((e) => {
      if (!matchesFilter(e, filter)) return;
      if (replaying) pending.push(e);
      else if (until === undefined || e.timeNano <= until) { lastSent = e.timeNano; write(e); }
    });
    try {
      res.writeHead(200, { 'Content-Type': 'application/json', 'Api-Version': API_VERSION, Server: 'isulad' });
      res.flushHeaders();
      if (since !== undefined) {
        for (const e of source.events.history(since, until ?? nowNano, filter)) { lastSent = e.timeNano; write(e); }
      }
      replaying = false;
      for (const e of pending) if (e.timeNano > lastSent && (until === undefined || e.timeNano <= until)) write(e);
      if (until !== undefined && until <= nowNano) return undefined;
      // Live: until the client goes, the daemon stops, or `until` passes.
      await new Promise<void>((resolve) => {
        signal.addEventListener('abort', () => resolve(), { once: true });
        if (until !== undefined) setTimeout(resolve, Math.ceil((until - nowNano) / 1e6)).unref();
      });
      return undefined;
    } finally {
      unsubscribe();
      if (!res.writableEnded) res.end();
    }
  });
}

/** Docker reports Go's architecture names. */
function goArch(arch: string): string {
  return ({ x64: 'amd64', arm64: 'arm64', ia32: '386', arm: 'arm', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' } as Record<string, string>)[arch] ?? arch;
}

let release: { prettyName: string; versionId: string } | undefined;
/** `/etc/os-release`'s PRETTY_NAME and VERSION_ID (docker info's OperatingSystem and OSVersion), read once. */
function osRelease(): { prettyName: string; versionId: string } {
  if (release === undefined) {
    let text = '';
    try {
      text = readFileSync('/etc/os-release', 'utf8');
    } catch {
      // Neither is known: os.type() and an empty version.
    }
    release = {
      prettyName: /^PRETTY_NAME="?([^"\n]*)"?/m.exec(text)?.[1] ?? os.type(),
      versionId: /^VERSION_ID="?([^"\n]*)"?/m.exec(text)?.[1] ?? '',
    };
  }
  return release;
}
