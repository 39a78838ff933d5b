import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatProgress, goDuration, messageError, ProgressRenderer, type JsonMessage } from '../src/progress.js';

const A = '5cc84ad355aa';
const B = '6ae821421a7d';

/** A pull as isulad streams it: every id'd message with a progressDetail, the header's too. */
const PULL: JsonMessage[] = [
  { status: 'Pulling from library/busybox', id: 'latest', progressDetail: {} },
  { status: 'Pulling fs layer', id: A, progressDetail: {} },
  { status: 'Pulling fs layer', id: B, progressDetail: {} },
  { status: 'Waiting', id: B, progressDetail: {} },
  { status: 'Downloading', id: A, progressDetail: { current: 100_000, total: 2_000_000 } },
  { status: 'Downloading', id: A, progressDetail: { current: 1_000_000, total: 2_000_000 } },
  { status: 'Verifying Checksum', id: A, progressDetail: {} },
  { status: 'Download complete', id: A, progressDetail: {} },
  { status: 'Extracting', id: A, progressDetail: { current: 2_000_000, total: 2_000_000 } },
  { status: 'Pull complete', id: A, progressDetail: {} },
  { status: 'Already exists', id: B, progressDetail: {} },
  { status: 'Digest: sha256:1111' },
  { status: 'Status: Downloaded newer image for busybox:latest' },
];

const renderAll = (r: ProgressRenderer, messages: readonly JsonMessage[]) => messages.map((m) => r.render(m)).join('');

/**
 * A tiny terminal: applies text, `\n`, `\r`, ESC[nA, ESC[nB and ESC[2K to a
 * grid of lines, so the tests can assert what the screen shows after the
 * redraws, not only the bytes. A line longer than `width` wraps, as a real
 * terminal's would (and the assertion on widths then fails).
 */
function screen(output: string, width = 1000): string[] {
  const lines: string[] = [''];
  let row = 0;
  let col = 0;
  const put = (ch: string) => {
    if (col >= width) { row += 1; col = 0; lines[row] ??= ''; }
    const line = (lines[row] ?? '').padEnd(col);
    lines[row] = line.slice(0, col) + ch + line.slice(col + 1);
    col += 1;
  };
  for (let i = 0; i < output.length; i += 1) {
    const ch = output[i] ?? '';
    if (ch === '\x1b') {
      const m = /^\x1b\[(\d+)([ABK])/.exec(output.slice(i));
      assert.ok(m !== null, `unknown escape at ${i}: ${JSON.stringify(output.slice(i, i + 8))}`);
      const n = Number(m[1]);
      if (m[2] === 'A') row = Math.max(0, row - n);
      if (m[2] === 'B') row += n;
      if (m[2] === 'K') lines[row] = '';
      lines[row] ??= '';
      i += m[0].length - 1;
    } else if (ch === '\n') {
      row += 1;
      col = 0;
      lines[row] ??= '';
    } else if (ch === '\r') {
      col = 0;
    } else {
      put(ch);
    }
  }
  return lines.map((l) => l.trimEnd());
}

test('off a terminal a layer line is printed when its status changes, not on every Downloading tick', () => {
  const r = new ProgressRenderer({ isTerminal: false });
  assert.equal(renderAll(r, PULL), [
    'latest: Pulling from library/busybox',
    `${A}: Pulling fs layer`,
    `${B}: Pulling fs layer`,
    `${B}: Waiting`,
    `${A}: Downloading`,
    `${A}: Verifying Checksum`,
    `${A}: Download complete`,
    `${A}: Extracting`,
    `${A}: Pull complete`,
    `${B}: Already exists`,
    'Digest: sha256:1111',
    'Status: Downloaded newer image for busybox:latest',
    '',
  ].join('\n'));
});

test('on a terminal each layer has one line, redrawn in place with cursor moves', () => {
  const r = new ProgressRenderer({ isTerminal: true, columns: () => 120 });
  const out = [
    r.render(PULL[0] ?? {}),
    r.render(PULL[1] ?? {}),
    r.render(PULL[2] ?? {}),
    r.render({ status: 'Downloading', id: A, progressDetail: { current: 1_000_000, total: 2_000_000 } }),
  ];
  // docker's sequence: a new id opens a line (\n), the cursor goes up to the id's line,
  // clears it, writes it ending in \r, and goes back down.
  assert.deepEqual(out, [
    'latest: Pulling from library/busybox\n',
    `\n\x1b[1A\x1b[2K\r${A}: Pulling fs layer\r\x1b[1B`,
    `\n\x1b[1A\x1b[2K\r${B}: Pulling fs layer\r\x1b[1B`,
    `\x1b[2A\x1b[2K\r${A}: Downloading [${'='.repeat(25)}>${' '.repeat(25)}]      1MB/2MB\r\x1b[2B`,
  ]);
});

test('the terminal shows the last status of each layer, then the plain lines below them', () => {
  const r = new ProgressRenderer({ isTerminal: true, columns: () => 120 });
  assert.deepEqual(screen(renderAll(r, PULL)), [
    'latest: Pulling from library/busybox',
    `${A}: Pull complete`,
    `${B}: Already exists`,
    'Digest: sha256:1111',
    'Status: Downloaded newer image for busybox:latest',
    '',
  ]);
});

test('mid-transfer the terminal shows a bar per layer; a line without an id starts a new group', () => {
  const r = new ProgressRenderer({ isTerminal: true, columns: () => 120 });
  const text = renderAll(r, [
    { status: 'The push refers to repository [127.0.0.1:5000/busybox]' },
    { status: 'Preparing', id: A, progressDetail: {} },
    { status: 'Preparing', id: B, progressDetail: {} },
    { status: 'Pushing', id: B, progressDetail: { current: 512, total: 2048 } },
    { status: 'Pushing', id: A, progressDetail: { current: 4_000_000, total: 4_000_000 } },
  ]);
  assert.deepEqual(screen(text), [
    'The push refers to repository [127.0.0.1:5000/busybox]',
    `${A}: Pushing [${'='.repeat(50)}>]      4MB/4MB`,
    `${B}: Pushing [${'='.repeat(12)}>${' '.repeat(38)}]     512B/2.048kB`,
    '',
  ]);
  const next = renderAll(r, [{ status: 'latest: digest: sha256:2222 size: 527' }, { status: 'Preparing', id: A, progressDetail: {} }]);
  assert.equal(next, `latest: digest: sha256:2222 size: 527\n\n\x1b[1A\x1b[2K\r${A}: Preparing\r\x1b[1B`);
});

test('the bar is fitted to the terminal: 50 cells above 110 columns, shorter below, none when too narrow; lines never wrap', () => {
  const d = { current: 1_000_000, total: 2_000_000 };
  assert.equal(formatProgress(d, 200), `[${'='.repeat(25)}>${' '.repeat(25)}]      1MB/2MB`);
  const at80 = formatProgress(d, 80, `${A}: Downloading`.length);
  assert.match(at80, /^\[=+> +\]      1MB\/2MB$/);
  assert.equal(`${A}: Downloading ${at80}`.length, 79, at80);
  assert.equal(formatProgress(d, 40, `${A}: Downloading`.length), '     1MB/2MB');
  for (const columns of [30, 50, 80, 111, 140]) {
    const r = new ProgressRenderer({ isTerminal: true, columns: () => columns });
    const shown = screen(renderAll(r, PULL.slice(1, 6)), columns);
    for (const line of shown) assert.ok(line.length < columns, `${columns} columns: ${JSON.stringify(line)}`);
    assert.equal(shown.length, 3, `${columns} columns: ${JSON.stringify(shown)}`); // two layers, the cursor's line
  }
});

test('progress figures: a size without total, a current beyond the total, units, and the time left', () => {
  assert.equal(formatProgress({}, 200), '');
  assert.equal(formatProgress({ current: 1500 }, 200), '   1.5kB');
  assert.equal(formatProgress({ current: 3, units: 'layers' }, 200), '3 layers');
  assert.equal(formatProgress({ current: 3000, total: 2000 }, 200), `[${'='.repeat(50)}>]      3kB`);
  assert.equal(formatProgress({ current: 1, total: 4, units: 'items' }, 200), `[${'='.repeat(12)}>${' '.repeat(38)}] 1/4 items`);
  const startSeconds = 1_700_000_000;
  const nowMs = (startSeconds + 30) * 1000; // a quarter in 30 s: 90 s left
  assert.equal(formatProgress({ current: 250, total: 1000, start: startSeconds }, 200, 0, nowMs), `[${'='.repeat(12)}>${' '.repeat(38)}]     250B/1kB 1m30s`);
  assert.deepEqual([goDuration(0), goDuration(45), goDuration(120), goDuration(3725)], ['0s', '45s', '2m0s', '1h2m5s']);
});

test('aux messages print nothing; an errorDetail message is a daemon error with its message', () => {
  const r = new ProgressRenderer({ isTerminal: false });
  assert.equal(r.render({ status: '', progressDetail: {}, aux: { Tag: 'latest', Digest: 'sha256:2222', Size: 527 } }), '');
  assert.equal(messageError({ status: 'Downloading' }), undefined);
  const e = messageError({ errorDetail: { message: 'unexpected EOF' }, error: 'unexpected EOF', code: 'IMAGE_PULL_FAILED' });
  assert.equal(e?.message, 'unexpected EOF');
  assert.equal(e?.code, 'IMAGE_PULL_FAILED');
  assert.equal(messageError({ error: 'denied' })?.message, 'denied');
});
