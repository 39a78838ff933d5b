/**
 * The package's own .proto files agree on the wire with the upstream CRI
 * definitions (../shared/reference/cri), by the project's conformance tool:
 * no field errors and every RPC of both services present.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../..');
// Beside the checkout (../shared), or the workplace's copy when the checkout is elsewhere (a clean clone in CI).
const SHARED = process.env['ISULA_SHARED'] ?? [path.resolve(REPO, '../shared'), '/work/shared'].find((d) => fs.existsSync(path.join(d, 'tools', 'proto-conformance.mjs'))) ?? path.resolve(REPO, '../shared');
const TOOL = path.join(SHARED, 'tools/proto-conformance.mjs');
const present = fs.existsSync(TOOL);
// Under CI a missing reference is a failure, not a skip.
const skip = present || process.env['CI'] === 'true' ? false : `needs the reference protos and tool in ${SHARED}`;

for (const [version, ref] of [['v1', 'v1-api.proto'], ['v1alpha2', 'v1alpha2-api.proto']] as const) {
  test(`runtime.${version}: our api.proto is wire-conformant with the reference and has every RPC`, { skip }, async () => {
    const mine = path.join(REPO, 'packages/cri/proto/runtime', version, 'api.proto');
    const refPath = path.join(SHARED, 'reference/cri', ref);
    const { code, stdout, stderr } = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      execFile(process.execPath, [TOOL, '--ref', refPath, mine], { cwd: REPO, timeout: 30_000 }, (err, out, errOut) => {
        resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : 1, stdout: out, stderr: errOut });
      });
    });
    assert.equal(code, 0, `${stdout}${stderr}`);
    assert.doesNotMatch(stdout, /ERROR|missing:/);
    assert.match(stdout, /\nconformant$|^conformant$/m);
    for (const m of stdout.matchAll(/service (\S+): (\d+)\/(\d+) rpcs/g)) assert.equal(m[2], m[3], `${m[1]}: ${m[0]}`);
    assert.equal([...stdout.matchAll(/service \S+: /g)].length, 2, stdout);
    const fields = /fields: (\d+)\/(\d+)/.exec(stdout);
    assert.ok(fields !== null && fields[1] === fields[2], `every reference field defined: ${fields?.[0] ?? stdout}`);
  });
}
