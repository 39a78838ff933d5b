/**
 * Subnet slots for the e2e tests: the third octet N of the 10.233–10.247
 * subnets the tests give their bridges and networks (`10.241.N.0/24` ...).
 * `node --test` runs two files at once, each in its own process, and two
 * bridges routing the same subnet send replies to the wrong one; a slot
 * spread by the pid collided now and then. A slot is claimed with a lock file
 * made exclusively (`wx`) under /run, holding the claimer's pid; a file whose
 * pid is gone is stale and taken over. The slots go back when the process
 * exits (or with releaseSubnetSlot). Synchronous, so that it fits where names
 * are made. Slots whose 10.233–10.247.N prefix a host interface already has
 * (a leftover bridge) are skipped.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const DIR = '/run/isula-e2e-subnets';
const SLOTS = 250;
const claimed = new Set<number>();
let exitHook = false;

function alive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Third octets a host interface has in 10.233–10.247. */
function usedOnHost(): Set<number> {
  const used = new Set<number>();
  for (const addrs of Object.values(os.networkInterfaces())) {
    for (const a of addrs ?? []) {
      const m = /^10\.(\d+)\.(\d+)\./.exec(a.family === 'IPv4' ? a.address : '');
      if (m && Number(m[1]) >= 233 && Number(m[1]) <= 247) used.add(Number(m[2]));
    }
  }
  return used;
}

function tryClaim(n: number): boolean {
  const file = path.join(DIR, String(n));
  try {
    fs.writeFileSync(file, String(process.pid), { flag: 'wx' });
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  const owner = Number(fs.readFileSync(file, 'utf8').trim());
  if (alive(owner)) return false;
  // Stale: its process is gone. Two takers race on the unlink; only one `wx` wins.
  fs.rmSync(file, { force: true });
  try {
    fs.writeFileSync(file, String(process.pid), { flag: 'wx' });
    return true;
  } catch {
    return false;
  }
}

/** A third octet no other test process (and no earlier call of this one) holds. */
export function claimSubnetSlot(): number {
  fs.mkdirSync(DIR, { recursive: true });
  if (!exitHook) {
    exitHook = true;
    process.on('exit', () => { for (const n of claimed) fs.rmSync(path.join(DIR, String(n)), { force: true }); });
  }
  const onHost = usedOnHost();
  const start = (process.pid * 7) % SLOTS; // where to look first: fewer files read when many run
  for (let i = 0; i < SLOTS; i++) {
    const n = (start + i) % SLOTS;
    if (claimed.has(n) || onHost.has(n)) continue;
    if (tryClaim(n)) {
      claimed.add(n);
      return n;
    }
  }
  throw new Error(`no free subnet slot under ${DIR}: ${SLOTS} held by running test processes`);
}

export function releaseSubnetSlot(n: number): void {
  if (!claimed.delete(n)) return;
  fs.rmSync(path.join(DIR, String(n)), { force: true });
}
