/**
 * Docker's JSON-message progress display (moby `pkg/jsonmessage`), for pull,
 * push and the pull of run/create.
 *
 * On a terminal: one line per layer id, redrawn in place (`\x1b[nA` up to it,
 * `\x1b[2K` clear, the new text, `\x1b[nB` back down), with a progress bar
 * `[=====>     ]  12.3MB/45.6MB` fitted to the terminal's width; messages
 * without an id (`Digest: …`, `Status: …`) are plain lines and start a new
 * group of layer lines, as docker does.
 * Off a terminal: `ID: STATUS` lines, printed only when a layer's status
 * changes (one `Downloading`, not one per tick), and the plain lines.
 *
 * `ProgressRenderer` is pure (a message in, the text to write out), so both
 * displays are unit-tested; `followProgress` drives it from a daemon stream.
 */
import { DaemonError, type EngineClient } from './client.js';
import { humanSizePrecision } from './format.js';

/** Docker's `JSONProgress`. */
export interface ProgressDetail {
  current?: number;
  total?: number;
  /** Unix seconds the transfer started (for the time left). */
  start?: number;
  units?: string;
  hidecounts?: boolean;
}

/** Docker's `JSONMessage` as the daemon streams it (and isulad's `code` on an error). */
export interface JsonMessage {
  id?: string;
  status?: string;
  stream?: string;
  /** The daemon's own rendering of the bar; used when `progressDetail` has no figures. */
  progress?: string;
  progressDetail?: ProgressDetail;
  error?: string;
  errorDetail?: { code?: number; message?: string };
  code?: string;
  aux?: unknown;
}

export interface RendererOptions {
  isTerminal: boolean;
  /** The terminal's width now (it may change); docker's 200 when unknown. */
  columns?: () => number | undefined;
  nowMs?: () => number;
}

const ESC = '\x1b[';
const up = (n: number) => (n > 0 ? `${ESC}${n}A` : '');
const down = (n: number) => (n > 0 ? `${ESC}${n}B` : '');
const CLEAR_LINE = `${ESC}2K`;
/** docker's width when the output is no terminal it can ask. */
const DEFAULT_WIDTH = 200;
/** docker shows its 50-cell bar only on terminals wider than this; narrower ones get a shorter bar. */
const FULL_BAR_WIDTH = 110;
const FULL_BAR_CELLS = 50;
const MIN_BAR_CELLS = 10;

/** Docker's `units.HumanSize`: decimal units, 4 significant digits. */
const humanSize = (bytes: number) => humanSizePrecision(bytes, 4);

/** Go's `time.Duration.String()` of whole seconds: `0s`, `45s`, `2m0s`, `1h2m5s`. */
export function goDuration(seconds: number): string {
  const s = Math.max(0, Math.trunc(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  return `${h > 0 ? `${h}h` : ''}${h > 0 || m > 0 ? `${m}m` : ''}${s % 60}s`;
}

/**
 * docker's `JSONProgress.String()` for a line whose text before the bar is
 * `prefixLength` characters: the bar (50 cells on a terminal wider than 110
 * columns as docker's; shorter to fit a narrower one, none below 10 cells),
 * `current/total`, and the time left when the start is known.
 */
export function formatProgress(d: ProgressDetail, width: number, prefixLength = 0, nowMs = Date.now()): string {
  const current = d.current ?? 0;
  const total = d.total ?? 0;
  if (current <= 0 && total <= 0) return '';
  if (total <= 0) return d.units ? `${current} ${d.units}` : humanSize(current).padStart(8);
  const percent = Math.trunc((current / total) * 100);
  let numbers = '';
  if (!d.hidecounts) {
    if (d.units) numbers = current > total ? `${current} ${d.units}` : `${current}/${total} ${d.units}`;
    // A current beyond the total is wonky: docker shows the current alone.
    else numbers = current > total ? humanSize(current).padStart(8) : `${humanSize(current).padStart(8)}/${humanSize(total)}`;
  }
  let timeLeft = '';
  if (current > 0 && (d.start ?? 0) > 0 && percent < 100 && width > 50) {
    const elapsedMs = nowMs - (d.start ?? 0) * 1000;
    timeLeft = ` ${goDuration(((total - current) * elapsedMs) / current / 1000)}`;
  }
  let cells = FULL_BAR_CELLS;
  // The line must not wrap: a wrapped line breaks the cursor arithmetic of the redraw.
  // Room: the width less one column, the prefix and its space, and `[`, `>`, `] ` around the cells.
  if (width <= FULL_BAR_WIDTH) cells = Math.min(FULL_BAR_CELLS, width - 1 - prefixLength - 1 - 4 - numbers.length - timeLeft.length);
  let bar = '';
  if (cells >= MIN_BAR_CELLS) {
    const filled = Math.min(cells, Math.trunc((Math.min(percent, 100) * cells) / 100));
    bar = `[${'='.repeat(filled)}>${' '.repeat(cells - filled)}] `;
  }
  return `${bar}${numbers}${timeLeft}`;
}

/**
 * Whether a message is a layer's line (redrawn in place), or a plain one. docker
 * decides by `progressDetail`; isulad sends an (empty) one with every id, the
 * `latest: Pulling from library/busybox` header included, which docker's
 * daemon sends without, so the header is told by its words.
 */
const isLayerLine = (m: JsonMessage): m is JsonMessage & { id: string } =>
  typeof m.id === 'string' && m.id !== '' && !(m.status ?? '').startsWith('Pulling from ');

/** The error a message carries (`errorDetail`), as a daemon error: it ends the stream. */
export function messageError(m: JsonMessage): DaemonError | undefined {
  if (m.errorDetail === undefined && m.error === undefined) return undefined;
  const message = m.errorDetail?.message ?? m.error ?? 'unknown error';
  // docker's JSONError with code 401 is its "authentication is required".
  return new DaemonError(m.errorDetail?.code === 401 ? 401 : 500, message, m.code);
}

export class ProgressRenderer {
  readonly #opts: RendererOptions;
  /** Terminal: the line of each layer id in the current group. */
  readonly #lines = new Map<string, number>();
  /** Off a terminal: the status last printed for each layer id. */
  readonly #shown = new Map<string, string>();

  constructor(opts: RendererOptions) {
    this.#opts = opts;
  }

  /** The text to write for one message ('' for none). `aux` messages print nothing; errors are the caller's (`messageError`). */
  render(m: JsonMessage): string {
    if (m.aux !== undefined) return '';
    if (m.stream !== undefined) return m.stream;
    const status = m.status ?? '';
    if (!isLayerLine(m)) {
      // docker: a line that is not a layer's ends the group (pull -a's next tag starts afresh).
      this.#lines.clear();
      this.#shown.clear();
      if (status === '' && m.id === undefined) return '';
      return `${m.id ? `${m.id}: ` : ''}${status}\n`;
    }
    if (!this.#opts.isTerminal) {
      if (this.#shown.get(m.id) === status) return '';
      this.#shown.set(m.id, status);
      return `${m.id}: ${status}\n`;
    }
    let text = '';
    let line = this.#lines.get(m.id);
    if (line === undefined) {
      line = this.#lines.size;
      this.#lines.set(m.id, line);
      text += '\n';
    }
    const diff = this.#lines.size - line;
    const width = this.#opts.columns?.() || DEFAULT_WIDTH;
    const head = `${m.id}: ${status}`;
    const bar = m.progressDetail !== undefined && ((m.progressDetail.current ?? 0) > 0 || (m.progressDetail.total ?? 0) > 0)
      ? formatProgress(m.progressDetail, width, head.length, this.#opts.nowMs?.() ?? Date.now())
      : m.progress ?? '';
    const full = bar === '' ? head : `${head} ${bar}`;
    text += `${up(diff)}${CLEAR_LINE}\r${full.slice(0, Math.max(1, width - 1))}\r${down(diff)}`;
    return text;
  }
}

/** Where a display goes: process.stdout or process.stderr (their `isTTY` and `columns` are read as they are). */
export interface ProgressOutput {
  write(text: string): unknown;
  readonly isTTY?: boolean;
  readonly columns?: number;
}

export interface FollowOptions {
  query?: Record<string, string | undefined>;
  /** No output: the stream is still read to its end, and its error thrown. */
  out?: ProgressOutput | undefined;
  onAux?: (aux: unknown) => void;
}

/**
 * POSTs `path` and shows its stream of JSON messages on `out`. An answer
 * before the stream that is an error throws DaemonError (the client's); so
 * does an error message in the stream, after what came before it is shown.
 */
export async function followProgress(client: EngineClient, path: string, o: FollowOptions = {}): Promise<void> {
  const out = o.out;
  const renderer = out === undefined ? undefined : new ProgressRenderer({ isTerminal: out.isTTY === true, columns: () => out.columns });
  let pending: Buffer = Buffer.alloc(0);
  const handle = (line: string) => {
    if (line.trim() === '') return;
    let m: JsonMessage;
    try {
      m = JSON.parse(line) as JsonMessage;
    } catch {
      throw new Error(`malformed progress message from the daemon: ${line.slice(0, 200)}`);
    }
    if (typeof m !== 'object' || m === null) throw new Error(`malformed progress message from the daemon: ${line.slice(0, 200)}`);
    const e = messageError(m);
    if (e !== undefined) throw e;
    if (m.aux !== undefined) o.onAux?.(m.aux);
    const text = renderer?.render(m) ?? '';
    if (text !== '') out?.write(text);
  };
  await client.request(path, {
    method: 'POST',
    query: o.query ?? {},
    // Split on bytes, not text: a chunk may end inside a multi-byte character.
    onData: (chunk) => {
      pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
      let nl: number;
      while ((nl = pending.indexOf(0x0a)) >= 0) {
        const line = pending.subarray(0, nl).toString('utf8');
        pending = pending.subarray(nl + 1);
        handle(line);
      }
    },
  });
  handle(pending.toString('utf8')); // a last message without its newline
}
