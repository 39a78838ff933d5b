/**
 * Clean-up the plugins 1.1.1 leave to their caller, done with iptables by
 * hand (every step tolerates "not there"):
 *
 * - containernetworking/plugins#810 (open in 1.1.1, fix proposed in PR
 *   #1078): bridge's DEL tears its ipMasq rules down only when it finds the
 *   interface in the netns. With the netns gone it frees the IP and leaves
 *   the POSTROUTING rule and the `CNI-<hash>` nat chain behind. The driver
 *   then does what bridge's TeardownIPMasq would have done, from the cached
 *   result's addresses.
 * - firewall's `ingressPolicy: same-bridge` adds two rules per bridge to the
 *   shared CNI-ISOLATION-STAGE-1/2 chains and never removes them (they are
 *   per bridge, not per container). When isula removes a network and its
 *   bridge, it removes that bridge's two rules.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import net from 'node:net';
import type { Logger } from 'pino';

const FALLBACK_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
const TIMEOUT_MS = 10_000;

/** plugins/pkg/utils.FormatChainName: "CNI-" + sha512(name + id) in hex, 28 characters in all. */
export function masqChainName(network: string, containerId: string): string {
  return `CNI-${createHash('sha512').update(network + containerId).digest('hex')}`.slice(0, 28);
}

/** plugins/pkg/utils.FormatComment: Go's %q of each; names and ids have nothing to escape. */
export function masqComment(network: string, containerId: string): string {
  return `name: ${JSON.stringify(network)} id: ${JSON.stringify(containerId)}`;
}

/** Removes the ipMasq rules bridge set for `ips` (addresses with or without prefix). */
export async function teardownIpMasq(network: string, containerId: string, ips: string[], log: Logger): Promise<void> {
  const chain = masqChainName(network, containerId);
  const comment = masqComment(network, containerId);
  for (const family of [4, 6] as const) {
    const mine = ips.filter((ip) => net.isIP(ip.split('/')[0] ?? '') === family);
    if (mine.length === 0) continue;
    const bin = family === 4 ? 'iptables' : 'ip6tables';
    // Usually bridge's own DEL has removed them (it does when it finds the interface): one look
    // instead of three deletions that find nothing. The POSTROUTING rule jumps to the chain, and
    // a chain cannot be deleted while a rule refers to it, so no chain means no rule either.
    if ((await chainState(bin, 'nat', chain, log)) === 'absent') continue;
    for (const ip of mine) {
      // Bridge matches `-s IP` today and `-s IP/prefix` in older releases ("for downward compatibility").
      for (const source of new Set([ip.split('/')[0] as string, ip])) {
        await iptables(bin, ['-t', 'nat', '-D', 'POSTROUTING', '-s', source, '-j', chain, '-m', 'comment', '--comment', comment], log);
      }
    }
    await iptables(bin, ['-t', 'nat', '-F', chain], log);
    await iptables(bin, ['-t', 'nat', '-X', chain], log);
  }
}

/** The comment firewall 1.1.1 puts on its isolation rules. */
const ISOLATION_COMMENT = 'CNI firewall plugin rules (ingressPolicy: same-bridge)';

/** Removes the `ingressPolicy: same-bridge` rules firewall added for `bridge`. */
export async function removeBridgeIsolation(bridge: string, log: Logger): Promise<void> {
  const comment = ['-m', 'comment', '--comment', ISOLATION_COMMENT];
  await iptables('iptables', ['-t', 'filter', '-D', 'CNI-ISOLATION-STAGE-1', '-i', bridge, '!', '-o', bridge, ...comment, '-j', 'CNI-ISOLATION-STAGE-2'], log);
  await iptables('iptables', ['-t', 'filter', '-D', 'CNI-ISOLATION-STAGE-2', '-o', bridge, ...comment, '-j', 'DROP'], log);
}

/**
 * Whether `chain` exists in `table`: 'unknown' when iptables failed (the caller then acts as if it
 * did). From the table's listing: iptables-nft 1.8.9 answers `-L CHAIN` for a missing chain with
 * "chain ... is incompatible", not the "No chain" of other versions, so a missing chain cannot be
 * told from another failure by `-L`'s answer.
 */
function chainState(bin: string, table: string, chain: string, log: Logger): Promise<'present' | 'absent' | 'unknown'> {
  const env = { ...process.env, PATH: process.env['PATH'] || FALLBACK_PATH };
  const argv = ['-w', '-t', table, '-S'];
  return new Promise((resolve) => {
    execFile(bin, argv, { env, timeout: TIMEOUT_MS, killSignal: 'SIGKILL', maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) {
        log.debug({ argv: [bin, ...argv], stderr: stderr.trim() }, 'iptables listing failed');
        return resolve('unknown');
      }
      resolve(stdout.split('\n').some((l) => l.trim() === `-N ${chain}`) ? 'present' : 'absent');
    });
  });
}

function iptables(bin: string, args: string[], log: Logger): Promise<void> {
  const env = { ...process.env, PATH: process.env['PATH'] || FALLBACK_PATH };
  return new Promise((resolve) => {
    execFile(bin, ['-w', ...args], { env, timeout: TIMEOUT_MS, killSignal: 'SIGKILL' }, (err, _stdout, stderr) => {
      // "Bad rule" / "No chain/target/match by that name": already gone, which is the point.
      if (err) log.debug({ argv: [bin, '-w', ...args], stderr: stderr.trim() }, 'iptables clean-up step found nothing');
      resolve();
    });
  });
}
