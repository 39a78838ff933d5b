/**
 * Fuzzing the CRI gRPC surface of a real isulad (fast-check): for every RPC
 * of runtime.v1 and runtime.v1alpha2, requests generated from the request
 * type by reflection (every field of a random value, odd strings and numbers,
 * unknown enum values, nested messages) and raw bytes that are not a valid
 * message at all. Every call ends with a status: OK or a code that names the
 * problem (INVALID_ARGUMENT, NOT_FOUND, UNIMPLEMENTED ...), never UNKNOWN and
 * never a JavaScript error leaking out; the daemon lives.
 *
 * Left out of the random calls: RunPodSandbox and PullImage (a random pod
 * config could ask for host namespaces, a random image name would leave
 * loopback), and the streaming GetContainerEvents. Sandbox and container ids
 * are random, so nothing real is touched. FUZZ_RUNS sets the size.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import fc from 'fast-check';
import protobuf from 'protobufjs';
import pino from 'pino';
import { PROTO_DIR } from '@isula/cri';
import { removeBridgeIsolation } from '@isula/network-cni';
import { daemon } from '../lib/containers.js';
import { CNI_BIN } from '../lib/net-daemon.js';
import { claimSubnetSlot } from '../lib/subnets.js';

const run = promisify(execFile);
const RUNS = Number(process.env['FUZZ_RUNS'] ?? 150);
const params = { numRuns: RUNS, ...(process.env['FUZZ_SEED'] === undefined ? {} : { seed: Number(process.env['FUZZ_SEED']) }), interruptAfterTimeLimit: 240_000 };
const LEFT_OUT = new Set(['RunPodSandbox', 'PullImage', 'GetContainerEvents']);
const JS_ERROR = /TypeError|ReferenceError|RangeError|is not a function|Cannot read propert|is not iterable|undefined is not|Maximum call stack/;

const oddString = fc.oneof(fc.string({ maxLength: 12 }), fc.constantFrom('', '..', '../../etc', '/abs/path', 'x'.repeat(300), 'UPPER', 'a=b', '0', '-1', 'sha256:00', 'busybox', 'io.containerd.kata.v2', 'runc'));
const oddInt = fc.oneof(fc.integer(), fc.constantFrom(0, -1, 2 ** 31 - 1, -(2 ** 31)));
const oddLong = fc.oneof(fc.integer(), fc.constantFrom('0', '-1', '9223372036854775807', '-9223372036854775808'));

/** A random value of a protobuf field's type (depth-bounded). */
function valueFor(field: protobuf.Field, depth: number): fc.Arbitrary<unknown> {
  const one = (): fc.Arbitrary<unknown> => {
    const t = field.resolvedType;
    if (t instanceof protobuf.Enum) return fc.oneof(fc.constantFrom(...Object.values(t.values)), fc.integer({ min: -5, max: 100 }));
    if (t instanceof protobuf.Type) return depth >= 3 ? fc.constant({}) : messageFor(t, depth + 1);
    switch (field.type) {
      case 'string': return oddString;
      case 'bool': return fc.boolean();
      case 'bytes': return fc.uint8Array({ maxLength: 16 }).map((b) => Buffer.from(b));
      case 'int64': case 'uint64': case 'sint64': case 'fixed64': case 'sfixed64': return oddLong;
      case 'double': case 'float': return fc.double({ noNaN: false });
      case 'uint32': case 'fixed32': return fc.nat();
      default: return oddInt;
    }
  };
  if (field instanceof protobuf.MapField) return fc.dictionary(oddString, one(), { maxKeys: 3 });
  if (field.repeated) return fc.array(one(), { maxLength: 3 });
  return one();
}

function messageFor(type: protobuf.Type, depth = 0): fc.Arbitrary<Record<string, unknown>> {
  const fields = Object.fromEntries(type.fieldsArray.map((f) => [f.name, valueFor(f.resolve(), depth)]));
  return fc.record(fields, { requiredKeys: [] });
}

test('every CRI RPC answers random and garbage requests with a status that names the problem', { timeout: 900_000 }, async (t) => {
  const tag = randomBytes(3).toString('hex');
  const bridge = `iscf${tag}`;
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'isula-fuzz-cri-'));
  await fs.mkdir(path.join(dir, 'cni'));
  const socket = path.join(dir, 'cri.sock');
  const d = await daemon(t, {
    plugins: ['@isula/image-oci', '@isula/driver-runc', { package: '@isula/network-cni', options: { bridge, subnet: `10.242.${claimSubnetSlot()}.0/24` } }, { package: '@isula/cri', options: { socket } }],
    'cni-conf-dir': path.join(dir, 'cni'),
    'cni-bin-dir': [CNI_BIN],
  });
  t.after(async () => {
    await run('ip', ['link', 'del', bridge]).catch(() => undefined);
    await removeBridgeIsolation(bridge, pino({ level: 'silent' }));
    await fs.rm(dir, { recursive: true, force: true });
  });
  const channel = new grpc.Client(`unix:${socket}`, grpc.credentials.createInsecure());
  t.after(() => channel.close());
  const codes = new Map<string, number>();
  const internals = new Map<string, number>();

  for (const version of ['v1', 'v1alpha2']) {
    const root = new protobuf.Root().loadSync(path.join(PROTO_DIR, 'runtime', version, 'api.proto'), { keepCase: true });
    root.resolveAll();
    for (const serviceName of ['RuntimeService', 'ImageService']) {
      const service = root.lookupService(`runtime.${version}.${serviceName}`);
      for (const method of service.methodsArray) {
        if (LEFT_OUT.has(method.name) || method.requestStream || method.responseStream) continue;
        const req = method.resolvedRequestType!;
        const res = method.resolvedResponseType!;
        const rpc = `/runtime.${version}.${serviceName}/${method.name}`;
        const unary = (bytes: Buffer) => new Promise<{ code: number; details: string }>((resolve) => {
          channel.makeUnaryRequest(rpc, (b: Buffer) => b, (b: Buffer) => res.decode(b), bytes, new grpc.Metadata(), { deadline: Date.now() + 30_000 },
            (err: grpc.ServiceError | null) => resolve(err === null ? { code: 0, details: '' } : { code: err.code, details: err.details }));
        });
        const check = (r: { code: number; details: string }, what: string) => {
          const name = grpc.status[r.code] ?? String(r.code);
          codes.set(name, (codes.get(name) ?? 0) + 1);
          if (r.code === grpc.status.INTERNAL) internals.set(r.details.slice(0, 80), (internals.get(r.details.slice(0, 80)) ?? 0) + 1);
          assert.notEqual(r.code, grpc.status.UNKNOWN, `${rpc} ${what}: UNKNOWN (${r.details})`);
          assert.doesNotMatch(r.details, JS_ERROR, `${rpc} ${what}: a JavaScript error reached the client: ${r.details}`);
          if (r.code !== 0) assert.ok(r.details.length > 0, `${rpc} ${what}: ${name} without a message`);
          // INTERNAL only for what grpc-js cannot decode (as Go's gRPC answers an unmarshal error).
          if (r.code === grpc.status.INTERNAL) assert.match(r.details, /deserializ/i, `${rpc} ${what}: INTERNAL: ${r.details}`);
        };
        const runs = Math.max(3, Math.round(RUNS / 20));
        await fc.assert(fc.asyncProperty(messageFor(req), async (msg) => {
          const err = req.verify(msg);
          const bytes = Buffer.from(req.encode(err === null ? req.fromObject(msg) : req.fromObject({})).finish());
          check(await unary(bytes), `with ${JSON.stringify(msg).slice(0, 300)}`);
        }), { ...params, numRuns: runs });
        // Bytes that do not decode as the request type.
        await fc.assert(fc.asyncProperty(fc.uint8Array({ minLength: 1, maxLength: 64 }), async (raw) => {
          check(await unary(Buffer.from(raw)), `with raw bytes ${Buffer.from(raw).toString('hex')}`);
        }), { ...params, numRuns: Math.max(2, Math.round(runs / 3)) });
      }
    }
  }
  assert.equal(d.proc?.exitCode, null, 'isulad still runs');
  t.diagnostic(`CRI statuses: ${JSON.stringify(Object.fromEntries(codes))}; INTERNAL details: ${JSON.stringify(Object.fromEntries(internals))}`);
});
