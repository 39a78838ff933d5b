import assert from 'node:assert/strict';
import { test } from 'node:test';
import { StreamDemuxer, type StreamType } from '../src/attach.js';

function frame(stream: number, text: string): Buffer {
  const payload = Buffer.from(text);
  const header = Buffer.alloc(8);
  header[0] = stream;
  header.writeUInt32BE(payload.length, 4);
  return Buffer.concat([header, payload]);
}

function collect(): { demux: StreamDemuxer; got: () => string[] } {
  const parts: [StreamType, string][] = [];
  const demux = new StreamDemuxer((s, d) => parts.push([s, d.toString()]));
  // Merge consecutive pieces of one stream: how a frame was split must not matter.
  const got = () => parts.reduce<[StreamType, string][]>((acc, [s, d]) => {
    const last = acc[acc.length - 1];
    if (last !== undefined && last[0] === s) last[1] += d;
    else acc.push([s, d]);
    return acc;
  }, []).map(([s, d]) => `${s}:${d}`);
  return { demux, got };
}

test('the demuxer splits frames by stream', () => {
  const { demux, got } = collect();
  demux.push(Buffer.concat([frame(1, 'out\n'), frame(2, 'err\n'), frame(1, 'more')]));
  assert.deepEqual(got(), ['1:out\n', '2:err\n', '1:more']);
  assert.equal(demux.truncated, false);
});

test('frames split across chunks at every byte give the same output', () => {
  const stream = Buffer.concat([frame(1, 'hello'), frame(2, 'world'), frame(1, 'x'.repeat(300))]);
  for (let size = 1; size <= 20; size += 1) {
    const { demux, got } = collect();
    for (let i = 0; i < stream.length; i += size) demux.push(stream.subarray(i, i + size));
    assert.deepEqual(got(), ['1:hello', '2:world', `1:${'x'.repeat(300)}`], `chunk size ${size}`);
    assert.equal(demux.truncated, false);
  }
});

test('zero-length frames are skipped without ending the stream', () => {
  const { demux, got } = collect();
  demux.push(Buffer.concat([frame(1, ''), frame(2, ''), frame(1, 'a'), frame(1, '')]));
  demux.push(frame(2, 'b'));
  assert.deepEqual(got(), ['1:a', '2:b']);
  assert.equal(demux.truncated, false);
});

test('a truncated tail: a partial payload is passed on and reported, a partial header only reported', () => {
  const partialPayload = collect();
  partialPayload.demux.push(frame(1, 'complete').subarray(0, 8 + 4));
  assert.deepEqual(partialPayload.got(), ['1:comp']);
  assert.equal(partialPayload.demux.truncated, true);

  const partialHeader = collect();
  partialHeader.demux.push(Buffer.concat([frame(2, 'x'), frame(1, 'y').subarray(0, 5)]));
  assert.deepEqual(partialHeader.got(), ['2:x']);
  assert.equal(partialHeader.demux.truncated, true);
});

test('an unknown stream type is an error; type 3 is the daemon error stream', () => {
  const { demux, got } = collect();
  demux.push(frame(3, 'boom'));
  assert.deepEqual(got(), ['3:boom']);
  assert.throws(() => demux.push(frame(7, 'x')), /unrecognized stream type 7/);
});
