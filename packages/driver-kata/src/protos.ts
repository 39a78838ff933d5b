/**
 * The package's own .proto files (../../proto, shipped with the package),
 * loaded once with protobufjs at first use. Field names keep their proto
 * spelling (snake_case): what is encoded and decoded here is plain objects
 * whose keys match the .proto text.
 *
 * Why run-time loading rather than generated code: no code generator step in
 * the build, the .proto files stay the single source (and are what the
 * conformance check reads), and loading all of them takes a few ms.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';
import { IsulaError } from '@isula/core';

/** The package's proto directory: dist/src/protos.js → ../../proto. */
export const PROTO_DIR = fileURLToPath(new URL('../../proto/', import.meta.url));

const FILES = [
  'google/rpc/status.proto',
  'ttrpc/request.proto',
  'containerd/task/v2/shim.proto',
  'containerd/events/task.proto',
  'containerd/services/events/v1/events.proto',
];

let root: protobuf.Root | undefined;

export function protoRoot(): protobuf.Root {
  if (root) return root;
  const r = new protobuf.Root();
  // google/protobuf/* come with protobufjs; everything else from our directory.
  r.resolvePath = (_origin, target) => (target.startsWith('google/protobuf/') ? target : path.join(PROTO_DIR, target));
  r.loadSync(FILES, { keepCase: true });
  r.resolveAll();
  root = r;
  return r;
}

const types = new Map<string, protobuf.Type>();

/** A message type by its full name, e.g. `containerd.task.v2.CreateTaskRequest`. */
export function messageType(name: string): protobuf.Type {
  let t = types.get(name);
  if (!t) {
    t = protoRoot().lookupType(name);
    types.set(name, t);
  }
  return t;
}

/** Encodes a plain object (unknown keys are ignored, missing ones default). */
export function encode(name: string, value: Record<string, unknown>): Uint8Array {
  const t = messageType(name);
  return t.encode(t.fromObject(value)).finish();
}

/**
 * Decodes to a plain object: 64-bit integers as numbers, enums as their names
 * (an unknown value stays a number), defaults filled in. The bytes come from a
 * peer: protobufjs' own RangeError or Error on bad input becomes RUNTIME_FAILED
 * naming the message type.
 */
export function decode<T = Record<string, unknown>>(name: string, bytes: Uint8Array): T {
  const t = messageType(name);
  try {
    return t.toObject(t.decode(bytes), { longs: Number, enums: String, bytes: Buffer, defaults: true, arrays: true, objects: true }) as T;
  } catch (err) {
    throw new IsulaError('RUNTIME_FAILED', `undecodable ${name} (${bytes.length} bytes): ${(err as Error).message}`, { cause: err, details: { type: name } });
  }
}

/** A google.protobuf.Timestamp object → Date (seconds may be a number after `longs: Number`). */
export function toDate(ts: unknown): Date {
  if (typeof ts !== 'object' || ts === null) return new Date(0);
  const o = ts as { seconds?: unknown; nanos?: unknown };
  const seconds = Number(o.seconds ?? 0);
  const nanos = Number(o.nanos ?? 0);
  return new Date(seconds * 1000 + Math.floor(nanos / 1e6));
}

/** Date → a google.protobuf.Timestamp object. */
export function fromDate(d: Date): { seconds: number; nanos: number } {
  const ms = d.getTime();
  const seconds = Math.floor(ms / 1000);
  return { seconds, nanos: (ms - seconds * 1000) * 1e6 };
}

/**
 * A Timestamp that was never set (Go's zero time, 0001-01-01, is
 * -62135596800 s), or one no Date can hold (a peer's garbage: a Date past
 * ±8.64e15 ms is Invalid Date, whose toISOString throws).
 */
export function isZeroTime(ts: unknown): boolean {
  if (typeof ts !== 'object' || ts === null) return true;
  const s = Number((ts as { seconds?: unknown }).seconds ?? 0);
  return !(s > 0) || Number.isNaN(toDate(ts).getTime());
}

/** A shim's exit time: its Timestamp, or now when it was never set or is not a time. */
export function exitTime(ts: unknown): Date {
  return isZeroTime(ts) ? new Date() : toDate(ts);
}
