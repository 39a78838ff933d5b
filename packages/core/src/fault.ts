/**
 * Fault injection for the crash-consistency campaign (test/fault/): named
 * points in the code where the daemon can be made to die with SIGKILL, the
 * way `kill -9` or a power cut would stop it. Off unless the daemon was
 * started with ISULAD_FAULT_INJECTION set (a test flag, never a daemon.json
 * key): `NAME:N` kills the daemon the N-th time it passes point NAME.
 * Unset, a point costs one comparison.
 *
 * Points (each names where in a write it lands):
 * - `metadata:before-rename`, `metadata:after-rename` (before the directory fsync)
 * - `container:after-runtime-create` (conmon spawned, the record not yet saved)
 * - `container:after-exit-record` (exit recorded, runtime and rootfs not yet cleaned)
 * - `image:after-blob-write`, `image:mid-extract` (image-oci), `network:mid-cni-add` (network-cni)
 */

const spec = process.env['ISULAD_FAULT_INJECTION'];
const armed = parse(spec);
let hits = 0;

function parse(s: string | undefined): { name: string; nth: number } | undefined {
  if (s === undefined || s === '') return undefined;
  const m = /^([a-z-]+:[a-z-]+)(?::(\d+))?$/.exec(s);
  if (m === null) throw new Error(`ISULAD_FAULT_INJECTION=${s}: expected POINT[:N], e.g. container:after-runtime-create:2`);
  return { name: m[1]!, nth: m[2] === undefined ? 1 : Math.max(1, Number(m[2])) };
}

/** Dies here with SIGKILL when this point is armed and its count is reached. */
export function faultPoint(name: string): void {
  if (armed === undefined || armed.name !== name) return;
  hits += 1;
  if (hits === armed.nth) process.kill(process.pid, 'SIGKILL');
}
