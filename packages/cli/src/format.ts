/** Human-readable output of the system commands, laid out like docker's. */

export interface ServerVersion {
  Version: string;
  ApiVersion: string;
  MinAPIVersion?: string;
  GitCommit?: string;
  Os: string;
  Arch: string;
  KernelVersion?: string;
  Components?: { Name: string; Version: string; Details?: Record<string, string> }[];
  IsulaFeatures?: EngineFeature[];
}

/** One engine feature as `/version` and `/info` report it. */
export interface EngineFeature {
  Name: string;
  Enabled: boolean;
  Detail?: string;
}

export interface ClientVersion {
  Version: string;
  ApiVersion: string;
  NodeVersion: string;
  Os: string;
  Arch: string;
}

const row = (label: string, value: unknown) => ` ${`${label}:`.padEnd(16)}${String(value ?? '')}`;

export function formatVersion(client: ClientVersion, server: ServerVersion | undefined): string {
  const lines = [
    'Client:',
    row('Version', client.Version),
    row('API version', client.ApiVersion),
    row('Node version', client.NodeVersion),
    row('OS/Arch', `${client.Os}/${client.Arch}`),
  ];
  if (server !== undefined) {
    const node = server.Components?.find((c) => c.Name === 'Engine')?.Details?.['NodeVersion'];
    lines.push(
      '',
      'Server:',
      row('Version', server.Version),
      row('API version', `${server.ApiVersion} (minimum version ${server.MinAPIVersion ?? '?'})`),
      row('Node version', node ?? ''),
      row('Git commit', server.GitCommit || '(unknown)'),
      row('OS/Arch', `${server.Os}/${server.Arch}`),
      row('Kernel version', server.KernelVersion ?? ''),
    );
    const on = (server.IsulaFeatures ?? []).filter((f) => f.Enabled).map((f) => f.Name);
    if (server.IsulaFeatures !== undefined) lines.push(row('Features', on.length > 0 ? on.join(', ') : '(none)'));
  }
  return lines.join('\n');
}

function bytes(n: unknown): string {
  if (typeof n !== 'number') return '';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i += 1; }
  return `${v.toFixed(i === 0 ? 0 : 2)}${units[i]}`;
}

export function formatInfo(info: Record<string, unknown>): string {
  const plugins = (info['IsulaPlugins'] as { Name: string; Version: string; ApiVersion: string }[] | undefined) ?? [];
  const frontEnds = (info['FrontEnds'] as { Name: string; Endpoints: string[] }[] | undefined) ?? [];
  const runtimes = Object.keys((info['Runtimes'] as Record<string, unknown> | undefined) ?? {});
  const features = (info['IsulaFeatures'] as EngineFeature[] | undefined) ?? [];
  const security = (info['SecurityOptions'] as string[] | undefined) ?? [];
  const lines = [
    `Containers: ${String(info['Containers'] ?? 0)}`,
    ` Running: ${String(info['ContainersRunning'] ?? 0)}`,
    ` Paused: ${String(info['ContainersPaused'] ?? 0)}`,
    ` Stopped: ${String(info['ContainersStopped'] ?? 0)}`,
    `Images: ${String(info['Images'] ?? 0)}`,
    `Server Version: ${String(info['ServerVersion'] ?? '')}`,
    `Storage Driver: ${String(info['Driver'] ?? '')}`,
    `Logging Driver: ${String(info['LoggingDriver'] ?? '')}`,
    `Cgroup Driver: ${String(info['CgroupDriver'] ?? '')}`,
    `Plugin API Version: ${String(info['PluginApiVersion'] ?? '')}`,
    'Plugins:',
    ...(plugins.length === 0 ? [' (none)'] : plugins.map((p) => ` ${p.Name} ${p.Version} (plugin API ${p.ApiVersion})`)),
    ...(frontEnds.length === 0 ? [] : ['Front Ends:', ...frontEnds.map((f) => ` ${f.Name}: ${f.Endpoints.join(', ')}`)]),
    ...(features.length === 0 ? [] : ['Features:', ...features.map((f) => ` ${f.Name}: ${f.Enabled ? 'on' : 'off'}${f.Detail !== undefined && f.Detail !== '' ? ` (${f.Detail})` : ''}`)]),
    ...(security.length === 0 ? [] : ['Security Options:', ...security.map((o) => ` ${o}`)]),
    `Runtimes: ${runtimes.join(' ')}`,
    `Default Runtime: ${String(info['DefaultRuntime'] ?? '')}`,
    `Kernel Version: ${String(info['KernelVersion'] ?? '')}`,
    `Operating System: ${String(info['OperatingSystem'] ?? '')}`,
    `OSType: ${String(info['OSType'] ?? '')}`,
    `Architecture: ${String(info['Architecture'] ?? '')}`,
    `CPUs: ${String(info['NCPU'] ?? '')}`,
    `Total Memory: ${bytes(info['MemTotal'])}`,
    `Name: ${String(info['Name'] ?? '')}`,
    `iSulad Root Dir: ${String(info['DockerRootDir'] ?? '')}`,
    `iSulad State Dir: ${String(info['IsuladStateDir'] ?? '')}`,
  ];
  return lines.join('\n');
}

export interface EventMessage {
  Type: string;
  Action: string;
  Actor: { ID: string; Attributes?: Record<string, string> };
  time?: number;
  timeNano?: number;
}

/**
 * Go's `time.Time.Format("2006-01-02T15:04:05.000000000Z07:00")` of a Unix
 * time given as whole seconds and a 9-digit nanosecond string, in the zone
 * `offsetMin` minutes east of UTC (`Z` for UTC); with `nanos` empty, Go's
 * `time.RFC3339` (no fraction).
 */
export function rfc3339NanoFixed(seconds: number, nanos: string, offsetMin: number): string {
  const local = new Date((seconds + offsetMin * 60) * 1000).toISOString().slice(0, 19);
  const abs = Math.abs(offsetMin);
  const zone = offsetMin === 0 ? 'Z' : `${offsetMin < 0 ? '-' : '+'}${String(Math.floor(abs / 60)).padStart(2, '0')}:${String(abs % 60).padStart(2, '0')}`;
  return `${local}${nanos === '' ? '' : `.${nanos}`}${zone}`;
}

/**
 * docker's `prettyPrintEvent`: `2026-11-23T09:17:40.975647758Z container start
 * ID (image=busybox, name=x)`, the time in the local zone (`Z` when that is
 * UTC), attributes sorted by key. `timeNano` is the exact decimal text of the
 * event's timeNano (past 2^53: the parsed number is off by up to 256 ns);
 * `offsetMin` overrides the local zone (minutes east of UTC).
 */
export function formatEvent(e: EventMessage, o: { timeNano?: string; offsetMin?: number } = {}): string {
  let stamp = '';
  let nanoText = o.timeNano;
  if (nanoText === undefined && e.timeNano !== undefined && e.timeNano !== 0) {
    // The engine spaces events by whole microseconds: rounding the double to one restores the exact value.
    const seconds = Math.floor(e.timeNano / 1e9);
    const micros = Math.min(999_999, Math.max(0, Math.round((e.timeNano - seconds * 1e9) / 1000)));
    nanoText = `${seconds}${String(micros * 1000).padStart(9, '0')}`;
  }
  if (nanoText !== undefined && /^[1-9]\d*$/.test(nanoText)) {
    const padded = nanoText.padStart(10, '0');
    const seconds = Number(padded.slice(0, -9));
    stamp = rfc3339NanoFixed(seconds, padded.slice(-9), o.offsetMin ?? -new Date(seconds * 1000).getTimezoneOffset());
  } else if (e.time !== undefined && e.time !== 0) {
    stamp = rfc3339NanoFixed(e.time, '000000000', o.offsetMin ?? -new Date(e.time * 1000).getTimezoneOffset());
  }
  const attrs = Object.entries(e.Actor?.Attributes ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([k, v]) => `${k}=${v}`);
  return `${stamp === '' ? '' : `${stamp} `}${e.Type} ${e.Action} ${e.Actor?.ID ?? ''}${attrs.length ? ` (${attrs.join(', ')})` : ''}`;
}

export function shortId(id: string): string {
  return id.replace(/^sha256:/, '').slice(0, 12);
}

/** Docker's decimal sizes: 4.26MB. */
export function humanSize(bytes: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let v = bytes;
  let i = 0;
  while (v >= 1000 && i < units.length - 1) { v /= 1000; i += 1; }
  return `${Number(v.toPrecision(3))}${units[i]}`;
}

/**
 * Docker's `units.HumanDuration` plus " ago" (the CREATED column): "About an
 * hour ago", "3 days ago", "2 years ago".
 */
export function createdSince(unixSeconds: number, nowMs = Date.now()): string {
  const ms = Math.max(0, nowMs - unixSeconds * 1000);
  const seconds = Math.floor(ms / 1000);
  const minutes = Math.floor(ms / 60_000);
  const hours = Math.floor(ms / 3_600_000 + 0.5);
  let d: string;
  if (seconds < 1) d = 'Less than a second';
  else if (seconds === 1) d = '1 second';
  else if (seconds < 60) d = `${seconds} seconds`;
  else if (minutes === 1) d = 'About a minute';
  else if (minutes < 60) d = `${minutes} minutes`;
  else if (hours === 1) d = 'About an hour';
  else if (hours < 48) d = `${hours} hours`;
  else if (hours < 24 * 7 * 2) d = `${Math.floor(hours / 24)} days`;
  else if (hours < 24 * 30 * 2) d = `${Math.floor(hours / 24 / 7)} weeks`;
  else if (hours < 24 * 365 * 2) d = `${Math.floor(hours / 24 / 30)} months`;
  else d = `${Math.floor(ms / 3_600_000 / 24 / 365)} years`;
  return `${d} ago`;
}

/** Docker's `units.HumanSizeWithPrecision`: decimal units, `precision` significant digits (4 for prune's total). */
export function humanSizePrecision(bytes: number, precision: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB', 'PB', 'EB', 'ZB', 'YB'];
  let v = bytes;
  let i = 0;
  while (v >= 1000 && i < units.length - 1) { v /= 1000; i += 1; }
  return `${Number(v.toPrecision(precision))}${units[i]}`;
}

/** Go's `time.Time.String()` of a unix time, in local time: `2023-11-14 22:13:20 +0000 UTC` (docker's CreatedAt). */
/** Made once per process: creating it loads ICU's time zone data (~18 ms). */
let zoneFormat: Intl.DateTimeFormat | undefined;

export function goTime(unixSeconds: number): string {
  const d = new Date(unixSeconds * 1000);
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  const offsetMin = -d.getTimezoneOffset();
  const sign = offsetMin < 0 ? '-' : '+';
  const off = `${sign}${p(Math.floor(Math.abs(offsetMin) / 60))}${p(Math.abs(offsetMin) % 60)}`;
  // Go prints the zone abbreviation; Intl gives "UTC", "CET", or "GMT+8" where there is none (Go: "+08").
  zoneFormat ??= new Intl.DateTimeFormat('en-US', { timeZoneName: 'short' });
  const zoneName = zoneFormat.formatToParts(d).find((x) => x.type === 'timeZoneName')?.value ?? '';
  const zone = /^[A-Z]{2,5}$/.test(zoneName) ? zoneName : off.slice(0, offsetMin % 60 === 0 ? 3 : 5);
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())} ${off} ${zone}`;
}

/** Go's `json.Marshal`: keys as given, `<`, `>` and `&` escaped as \u003c, \u003e, \u0026. */
export function goJson(value: unknown): string {
  return JSON.stringify(value).replace(/[<>&]/g, (c) => `\\u00${c.charCodeAt(0).toString(16)}`);
}

/**
 * Docker's table writer (`tabwriter.NewWriter(out, 10, 1, 3, ' ', 0)`): the
 * cells of each line are separated by tabs; every column but the last is
 * padded to its widest cell plus 3 spaces, and at least `minWidth` (10;
 * `top` uses 20).
 */
export function alignTabs(lines: readonly string[], minWidth = 10): string {
  const cells = lines.map((l) => l.split('\t'));
  const widths: number[] = [];
  for (const row of cells) {
    row.slice(0, -1).forEach((c, i) => { widths[i] = Math.max(widths[i] ?? 0, Math.max(minWidth, c.length + 3)); });
  }
  return cells.map((row) => row.map((c, i) => (i === row.length - 1 ? c : c.padEnd(widths[i] ?? 0))).join('')).join('\n');
}

/** A `--format` string compiled once, rendered per row. */
export interface RowTemplate {
  /** `table …`: output gets a header row and aligned columns. */
  isTable: boolean;
  /** `call` answers the methods (`{{.Label "k"}}`). */
  render(row: Readonly<Record<string, string>>, call?: (method: string, arg: string) => string): string;
  /** The template over the column headers (`{{.ID}}` → `IMAGE ID`), for the table's first row. */
  header(): string;
}

type Piece = { text: string } | { fn: string; field: string | null; args: string[]; isMethod?: boolean };

const TEMPLATE_FUNCS: Record<string, (value: string, args: string[]) => string> = {
  upper: (v) => v.toUpperCase(),
  lower: (v) => v.toLowerCase(),
  title: (v) => v.replace(/(^|[^\p{L}\p{N}_'])(\p{L})/gu, (_m, a: string, b: string) => a + b.toUpperCase()),
  truncate: (v, args) => {
    const n = Number(args[0]);
    if (!Number.isInteger(n) || n < 0) throw new Error(`template: truncate wants a length, not ${JSON.stringify(args[0] ?? '')}`);
    return [...v].slice(0, n).join('');
  },
};

/**
 * The subset of Go's text/template docker's `--format` is used with:
 * `{{.Field}}`, `{{json .}}`, `{{json .Field}}`, `{{upper|lower|title .Field}}`,
 * `{{truncate .Field N}}`, `{{- …}}`/`{{… -}}` trimming, a `table` prefix and
 * the `\t` and `\n` escapes. `fields` maps each field to its column header.
 * `methods` are fields called with one string argument, with their headers
 * (ps's `{{.Label "com.example.k"}}`); `render`'s `call` answers them.
 * A field or function it does not know throws, naming it and listing the fields.
 */
export function compileRowTemplate(format: string, fields: Readonly<Record<string, string>>, methods: Readonly<Record<string, string>> = {}): RowTemplate {
  let body = format;
  const isTable = body.startsWith('table');
  if (isTable) body = body.slice('table'.length);
  body = body.trim().replaceAll('\\t', '\t').replaceAll('\\n', '\n');
  const known = () => Object.keys(fields).map((f) => `.${f}`).join(', ');
  const pieces: Piece[] = [];
  let i = 0;
  while (i < body.length) {
    const open = body.indexOf('{{', i);
    if (open < 0) { pieces.push({ text: body.slice(i) }); break; }
    const close = body.indexOf('}}', open + 2);
    if (close < 0) throw new Error(`template: unclosed action in ${JSON.stringify(format)}`);
    let text = body.slice(i, open);
    let action = body.slice(open + 2, close);
    if (/^-\s/.test(action)) { text = text.trimEnd(); action = action.slice(1); }
    let next = close + 2;
    if (/\s-$/.test(action)) {
      action = action.slice(0, -1);
      while (next < body.length && /\s/.test(body[next] ?? '')) next += 1;
    }
    if (text !== '') pieces.push({ text });
    const words = action.trim().split(/\s+/).filter(Boolean);
    const [first = '', ...rest] = words;
    const fieldOf = (w: string): string | null => {
      if (w === '.') return null;
      const m = /^\.([A-Za-z_]\w*)$/.exec(w);
      if (m === null) throw new Error(`template: unsupported action {{${action.trim()}}} in ${JSON.stringify(format)}`);
      const name = m[1] ?? '';
      if (!Object.hasOwn(fields, name)) throw new Error(`template: can't evaluate field ${name}: the fields are ${known()}`);
      return name;
    };
    const methodArg = /^\.([A-Za-z_]\w*)\s+"((?:[^"\\]|\\.)*)"$/.exec(action.trim());
    if (methodArg !== null && Object.hasOwn(methods, methodArg[1] ?? '')) {
      pieces.push({ fn: '', field: methodArg[1] ?? '', args: [JSON.parse(`"${methodArg[2] ?? ''}"`) as string], isMethod: true });
    } else if (first.startsWith('.')) {
      if (rest.length > 0) throw new Error(`template: unsupported action {{${action.trim()}}} in ${JSON.stringify(format)}`);
      pieces.push({ fn: '', field: fieldOf(first), args: [] });
    } else if (first === 'json' || Object.hasOwn(TEMPLATE_FUNCS, first)) {
      const [arg, ...more] = rest;
      if (arg === undefined) throw new Error(`template: ${first} wants an argument, e.g. {{${first} .${Object.keys(fields)[0] ?? ''}}}`);
      const field = fieldOf(arg);
      if (field === null && first !== 'json') throw new Error(`template: ${first} wants a field, e.g. {{${first} .${Object.keys(fields)[0] ?? ''}}}`);
      pieces.push({ fn: first, field, args: more });
    } else if (first === '') {
      throw new Error(`template: empty action {{}} in ${JSON.stringify(format)}`);
    } else {
      throw new Error(`template: function "${first}" not defined (use json, ${Object.keys(TEMPLATE_FUNCS).join(', ')})`);
    }
    i = next;
  }

  const renderWith = (row: Readonly<Record<string, string>>, whole: () => string, call?: (method: string, arg: string) => string) => pieces.map((p) => {
    if ('text' in p) return p.text;
    if (p.field === null) return p.fn === 'json' ? whole() : '';
    if (p.isMethod) return call === undefined ? methods[p.field] ?? '' : call(p.field, p.args[0] ?? '');
    const value = row[p.field] ?? '';
    if (p.fn === 'json') return goJson(value);
    const f = TEMPLATE_FUNCS[p.fn];
    return f === undefined ? value : f(value, p.args);
  }).join('');

  return {
    isTable,
    render: (row, call) => renderWith(row, () => goJson(Object.fromEntries(Object.entries(row).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))), call ?? (() => '')),
    header: () => renderWith(fields, () => ''),
  };
}
