import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { PROTO_DIR, protoRoot } from '../src/protos.js';

const run = promisify(execFile);
const REPO = fileURLToPath(new URL('../../../../', import.meta.url));
// Beside the checkout (../shared), or the workplace's copy when the checkout is elsewhere (a clean clone in CI).
const SHARED = process.env['ISULA_SHARED'] ?? [path.resolve(REPO, '../shared'), '/work/shared'].find((d) => fs.existsSync(path.join(d, 'tools', 'proto-conformance.mjs'))) ?? path.resolve(REPO, '../shared');
const TOOL = path.join(SHARED, 'tools/proto-conformance.mjs');
const REF = path.join(SHARED, 'reference/shim-v2');
const missing = !fs.existsSync(TOOL) || !fs.existsSync(REF);
const skip = missing ? (process.env['CI'] === 'true' ? false : `needs ${TOOL} and ${REF}`) : false;

// Each reference file with the references its imports need (the tool resolves nothing by itself).
const CASES: { ref: string[]; rpcs?: [string, number] }[] = [
  { ref: ['runtime_v2_task_shim.proto', 'api_types_mount.proto', 'api_types_task_task.proto'], rpcs: ['containerd.task.v2.Task', 17] },
  { ref: ['api_events_task.proto', 'api_types_mount.proto'] },
  { ref: ['api_services_ttrpc_events_v1_events.proto'], rpcs: ['containerd.services.events.ttrpc.v1.Events', 1] },
  { ref: ['api_types_mount.proto'] },
  { ref: ['api_types_task_task.proto'] },
  // ttrpc's Request/Response import google/rpc/status.proto, which the reference set lacks: ours stands in.
  { ref: ['ttrpc_request.proto'] },
];

for (const c of CASES) {
  test(`our protos conform to ${c.ref[0]}: no wire mismatch, every field and rpc defined`, { skip }, async () => {
    assert.ok(!missing, `${TOOL} and ${REF} must exist under CI`);
    const refs = c.ref.flatMap((r) => ['--ref', path.join(REF, r)]);
    if (c.ref[0] === 'ttrpc_request.proto') refs.push('--ref', path.join(PROTO_DIR, 'google/rpc/status.proto'));
    const { stdout } = await run(process.execPath, [TOOL, ...refs, PROTO_DIR], { cwd: REPO, timeout: 30_000 }).catch((err: { stdout?: string; stderr?: string }) => {
      assert.fail(`proto-conformance failed: ${err.stdout ?? ''}${err.stderr ?? ''}`);
    });
    assert.match(stdout, /^conformant$/m, stdout);
    assert.doesNotMatch(stdout, /ERROR|missing:/, stdout);
    const fields = /fields: (\d+)\/(\d+)/.exec(stdout);
    assert.ok(fields && fields[1] === fields[2], `every reference field is defined: ${stdout}`);
    if (c.rpcs) assert.match(stdout, new RegExp(`service ${c.rpcs[0].replaceAll('.', '\\.')}: ${c.rpcs[1]}/${c.rpcs[1]} rpcs`), stdout);
  });
}

test('the protos load at run time and ship with the package', () => {
  const root = protoRoot();
  assert.ok(root.lookupService('containerd.task.v2.Task').methods['Create']);
  assert.ok(root.lookupService('containerd.services.events.ttrpc.v1.Events').methods['Forward']);
  const pkg = JSON.parse(fs.readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { files: string[] };
  assert.ok(pkg.files.includes('proto'), 'package.json "files" lists proto/');
});
