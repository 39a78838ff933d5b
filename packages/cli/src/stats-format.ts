/**
 * `isula stats`: docker's figures from the engine's stats JSON
 * (`cli/command/container/stats_helpers.go`) and its table
 * (`formatter_stats.go`), with go-units' sizes.
 */
import { alignTabs, compileRowTemplate } from './format.js';

/** The part of docker's `types.StatsJSON` the table reads. */
export interface StatsJson {
  read?: string;
  preread?: string;
  name?: string;
  id?: string;
  pids_stats?: { current?: number };
  cpu_stats?: CpuStats;
  precpu_stats?: CpuStats;
  memory_stats?: { usage?: number; limit?: number; stats?: Record<string, number> };
  blkio_stats?: { io_service_bytes_recursive?: { major?: number; minor?: number; op?: string; value?: number }[] | null };
  networks?: Record<string, { rx_bytes?: number; tx_bytes?: number }>;
}

interface CpuStats {
  cpu_usage?: { total_usage?: number; percpu_usage?: number[] | null };
  system_cpu_usage?: number;
  online_cpus?: number;
}

/** docker's `StatsEntry`. */
export interface StatsEntry {
  /** What the user named (or the short id when listing all). */
  container: string;
  name: string;
  id: string;
  cpuPercentage: number;
  memory: number;
  memoryLimit: number;
  memoryPercentage: number;
  networkRx: number;
  networkTx: number;
  blockRead: number;
  blockWrite: number;
  pidsCurrent: number;
  /** No valid figures (the stream failed or went quiet): the table shows `--`. */
  isInvalid: boolean;
}

export function emptyEntry(container: string): StatsEntry {
  return { container, name: '', id: '', cpuPercentage: 0, memory: 0, memoryLimit: 0, memoryPercentage: 0, networkRx: 0, networkTx: 0, blockRead: 0, blockWrite: 0, pidsCurrent: 0, isInvalid: false };
}

/** docker's `calculateCPUPercentUnix`: the container's share of the host's CPU time between the two samples, times the CPUs. */
export function cpuPercentUnix(v: StatsJson): number {
  const cpuDelta = (v.cpu_stats?.cpu_usage?.total_usage ?? 0) - (v.precpu_stats?.cpu_usage?.total_usage ?? 0);
  const systemDelta = (v.cpu_stats?.system_cpu_usage ?? 0) - (v.precpu_stats?.system_cpu_usage ?? 0);
  let onlineCpus = v.cpu_stats?.online_cpus ?? 0;
  if (onlineCpus === 0) onlineCpus = v.cpu_stats?.cpu_usage?.percpu_usage?.length ?? 0;
  return systemDelta > 0 && cpuDelta > 0 ? (cpuDelta / systemDelta) * onlineCpus * 100 : 0;
}

/** docker's `calculateBlockIO`: the recursive service bytes, summed by the op's first letter (r/w). */
export function blockIo(v: StatsJson): { read: number; write: number } {
  let read = 0;
  let write = 0;
  for (const e of v.blkio_stats?.io_service_bytes_recursive ?? []) {
    const op = (e.op ?? '')[0];
    if (op === 'r' || op === 'R') read += e.value ?? 0;
    else if (op === 'w' || op === 'W') write += e.value ?? 0;
  }
  return { read, write };
}

/** docker's `calculateNetwork`: every interface's bytes summed. */
export function networkIo(v: StatsJson): { rx: number; tx: number } {
  let rx = 0;
  let tx = 0;
  for (const n of Object.values(v.networks ?? {})) { rx += n.rx_bytes ?? 0; tx += n.tx_bytes ?? 0; }
  return { rx, tx };
}

/**
 * docker's `calculateMemUsageUnixNoCache`: usage less the inactive page cache
 * (`total_inactive_file` on cgroup v1, `inactive_file` on v2) when smaller.
 */
export function memUsageNoCache(mem: StatsJson['memory_stats']): number {
  const usage = mem?.usage ?? 0;
  const stats = mem?.stats ?? {};
  const v1 = stats['total_inactive_file'];
  if (v1 !== undefined && v1 < usage) return usage - v1;
  const v2 = stats['inactive_file'] ?? 0;
  return v2 < usage ? usage - v2 : usage;
}

export function memPercent(limit: number, used: number): number {
  return limit !== 0 ? (used / limit) * 100 : 0;
}

/** One stats JSON object → docker's entry for `container`. */
export function statsEntry(container: string, v: StatsJson): StatsEntry {
  const memory = memUsageNoCache(v.memory_stats);
  const memoryLimit = v.memory_stats?.limit ?? 0;
  const blk = blockIo(v);
  const net = networkIo(v);
  return {
    container,
    name: v.name ?? '',
    id: v.id ?? '',
    cpuPercentage: cpuPercentUnix(v),
    memory,
    memoryLimit,
    memoryPercentage: memPercent(memoryLimit, memory),
    networkRx: net.rx,
    networkTx: net.tx,
    blockRead: blk.read,
    blockWrite: blk.write,
    pidsCurrent: v.pids_stats?.current ?? 0,
    isInvalid: false,
  };
}

/**
 * Go's `strconv.FormatFloat(x, 'g', precision, 64)` (fmt's `%.<p>g`): at most
 * `precision` significant digits, trailing zeros dropped, exponent form when
 * the exponent is < -4 or >= the precision (`1e+03`).
 */
export function goFormatG(x: number, precision: number): string {
  if (x === 0) return '0';
  if (!Number.isFinite(x)) return x > 0 ? '+Inf' : Number.isNaN(x) ? 'NaN' : '-Inf';
  const sign = x < 0 ? '-' : '';
  const [mantissa = '', expText = '0'] = Math.abs(x).toExponential(Math.max(precision, 1) - 1).split('e');
  const digits = mantissa.replace('.', '').replace(/0+$/, '') || '0';
  const exp = Number(expText);
  const dp = exp + 1; // digits before the decimal point
  let eprec = precision;
  if (eprec > digits.length && digits.length >= dp) eprec = digits.length;
  if (exp < -4 || exp >= eprec) {
    const m = digits.length > 1 ? `${digits[0]}.${digits.slice(1)}` : digits;
    return `${sign}${m}e${exp < 0 ? '-' : '+'}${String(Math.abs(exp)).padStart(2, '0')}`;
  }
  if (dp <= 0) return `${sign}0.${'0'.repeat(-dp)}${digits}`;
  if (dp >= digits.length) return `${sign}${digits}${'0'.repeat(dp - digits.length)}`;
  return `${sign}${digits.slice(0, dp)}.${digits.slice(dp)}`;
}

const DECIMAL_UNITS = ['B', 'kB', 'MB', 'GB', 'TB', 'PB', 'EB', 'ZB', 'YB'];
const BINARY_UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB', 'EiB', 'ZiB', 'YiB'];

function customSize(size: number, precision: number, base: number, units: readonly string[]): string {
  let v = size;
  let i = 0;
  while (v >= base && i < units.length - 1) { v /= base; i += 1; }
  return `${goFormatG(v, precision)}${units[i] ?? ''}`;
}

/** go-units `BytesSize`: binary units, `%.4g` (`1.5MiB`, `7.77GiB`). */
export function bytesSize(size: number): string {
  return customSize(size, 4, 1024, BINARY_UNITS);
}

/** go-units `HumanSizeWithPrecision`: decimal units, `%.<p>g` (`1.23kB`, `1e+03kB`). */
export function humanSizeWithPrecision(size: number, precision: number): string {
  return customSize(size, precision, 1000, DECIMAL_UNITS);
}

/** The fields `stats --format` knows, with their column headers (docker's statsContext). */
export const STATS_FIELDS: Readonly<Record<string, string>> = {
  BlockIO: 'BLOCK I/O',
  CPUPerc: 'CPU %',
  Container: 'CONTAINER',
  ID: 'CONTAINER ID',
  MemPerc: 'MEM %',
  MemUsage: 'MEM USAGE / LIMIT',
  Name: 'NAME',
  NetIO: 'NET I/O',
  PIDs: 'PIDS',
};

export const DEFAULT_STATS_TABLE = 'table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}';

/** One row as docker's statsContext renders it (Linux daemon). */
export function statsRow(s: StatsEntry, trunc: boolean): Record<string, string> {
  const invalid = s.isInvalid;
  return {
    BlockIO: invalid ? '--' : `${humanSizeWithPrecision(s.blockRead, 3)} / ${humanSizeWithPrecision(s.blockWrite, 3)}`,
    CPUPerc: invalid ? '--' : `${s.cpuPercentage.toFixed(2)}%`,
    Container: s.container,
    ID: trunc ? s.id.replace(/^sha256:/, '').slice(0, 12) : s.id,
    MemPerc: invalid ? '--' : `${s.memoryPercentage.toFixed(2)}%`,
    MemUsage: invalid ? '-- / --' : `${bytesSize(s.memory)} / ${bytesSize(s.memoryLimit)}`,
    Name: s.name.length > 1 ? s.name.slice(1) : '--',
    NetIO: invalid ? '--' : `${humanSizeWithPrecision(s.networkRx, 3)} / ${humanSizeWithPrecision(s.networkTx, 3)}`,
    PIDs: invalid ? '--' : String(s.pidsCurrent),
  };
}

/** The stats table (or `--format` lines) for `entries`; throws on a bad format. */
export function formatStats(entries: readonly StatsEntry[], format: string | undefined, trunc: boolean): string {
  const source = format === undefined || format === '' || format === 'table' ? DEFAULT_STATS_TABLE : format;
  const template = compileRowTemplate(source, STATS_FIELDS);
  const lines = entries.map((e) => template.render(statsRow(e, trunc)));
  if (template.isTable) return alignTabs([template.header(), ...lines]);
  return lines.join('\n');
}
