/**
 * The files Docker bind-mounts over the image's /etc/hostname, /etc/hosts
 * and /etc/resolv.conf, written into the container's directory (libnetwork
 * `etchosts.Build` and `resolvconf`).
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { invalidConfig } from './invalid.js';

export interface ContainerFilesOptions {
  hostname: string;
  domainname?: string;
  /** `name:ip` entries (Docker's ExtraHosts); the IP may be IPv6. */
  extraHosts?: string[];
  dns?: string[];
  dnsSearch?: string[];
  dnsOptions?: string[];
  /** The host file filtered into the container's; default /etc/resolv.conf. */
  hostResolvConf?: string;
  /** The container's address, once networking assigns one; default 127.0.1.1. */
  ip?: string;
  /**
   * Rewrite the files in place (same inode) instead of replacing them: for
   * files already bind-mounted into a created container (a network attached
   * after the runtime made the namespace).
   */
  inPlace?: boolean;
}

/** Where the three files live in `containerDir`, and where they go in the container. */
export const CONTAINER_FILES: Readonly<Record<'hostname' | 'hosts' | 'resolv.conf', string>> = Object.freeze({
  hostname: '/etc/hostname',
  hosts: '/etc/hosts',
  'resolv.conf': '/etc/resolv.conf',
});

const DEFAULT_HOSTS = [
  ['127.0.0.1', 'localhost'],
  ['::1', 'localhost ip6-localhost ip6-loopback'],
  ['fe00::0', 'ip6-localnet'],
  ['ff00::0', 'ip6-mcastprefix'],
  ['ff02::1', 'ip6-allnodes'],
  ['ff02::2', 'ip6-allrouters'],
] as const;

/** Fallback resolvers when the host has only loopback ones (Docker's defaults). */
const DEFAULT_NAMESERVERS = ['8.8.8.8', '8.8.4.4'];

/** Splits an ExtraHosts entry "name:ip" (the IP may contain colons). */
export function parseExtraHost(entry: string): { name: string; ip: string } {
  const sep = entry.indexOf(':');
  const name = sep < 0 ? '' : entry.slice(0, sep);
  const ip = sep < 0 ? '' : entry.slice(sep + 1);
  if (name === '' || ip === '' || /\s/.test(entry)) throw invalidConfig(`invalid extra host "${entry}": expected name:ip`, { extraHost: entry });
  return { name, ip: ip.startsWith('[') && ip.endsWith(']') ? ip.slice(1, -1) : ip };
}

export function buildHosts(opts: Pick<ContainerFilesOptions, 'hostname' | 'domainname' | 'extraHosts' | 'ip'>): string {
  const lines: string[] = DEFAULT_HOSTS.map(([ip, names]) => `${ip}\t${names}`);
  for (const entry of opts.extraHosts ?? []) {
    const { name, ip } = parseExtraHost(entry);
    lines.push(`${ip}\t${name}`);
  }
  // The FQDN first, then the bare name (etchosts.Build).
  const fqdn = opts.domainname !== undefined && opts.domainname !== '' ? `${opts.hostname}.${opts.domainname}` : opts.hostname;
  const dot = fqdn.indexOf('.');
  lines.push(`${opts.ip ?? '127.0.1.1'}\t${dot > 0 ? `${fqdn} ${fqdn.slice(0, dot)}` : fqdn}`);
  return lines.join('\n') + '\n';
}

function isLoopbackNameserver(address: string): boolean {
  return address.startsWith('127.') || address === '::1' || address === '0:0:0:0:0:0:0:1';
}

/**
 * The host's resolv.conf as the container gets it: loopback nameservers
 * (unreachable from a new network namespace) and, as long as containers
 * have no IPv6, IPv6 nameservers removed; Google's if none remain.
 */
export function filterResolvConf(hostText: string): string {
  const kept: string[] = [];
  let nameservers = 0;
  for (const line of hostText.split('\n')) {
    const m = /^\s*nameserver\s+(\S+)/.exec(line);
    if (m !== null) {
      const address = m[1] as string; // group 1 always matches
      if (isLoopbackNameserver(address) || address.includes(':')) continue;
      nameservers++;
    }
    kept.push(line);
  }
  let text = kept.join('\n').replace(/\n*$/, '\n');
  if (text === '\n') text = '';
  if (nameservers === 0) text += DEFAULT_NAMESERVERS.map((ns) => `nameserver ${ns}\n`).join('');
  return text;
}

function hostValues(hostText: string, keyword: 'nameserver' | 'search' | 'options'): string[] {
  const values: string[] = [];
  for (const line of hostText.split('\n')) {
    const fields = line.trim().split(/\s+/);
    if (fields[0] !== keyword) continue;
    // Only the last search line counts (resolv.conf(5)); nameservers and options accumulate.
    if (keyword === 'search') values.length = 0;
    values.push(...fields.slice(1));
  }
  return values;
}

/**
 * resolv.conf from --dns/--dns-search/--dns-option, each falling back to the
 * host's values (Docker's `resolvconf.Build`). A search of "." means none.
 */
export function buildResolvConf(hostText: string, opts: Pick<ContainerFilesOptions, 'dns' | 'dnsSearch' | 'dnsOptions'>): string {
  const has = (v: string[] | undefined): v is string[] => v !== undefined && v.length > 0;
  if (!has(opts.dns) && !has(opts.dnsSearch) && !has(opts.dnsOptions)) return filterResolvConf(hostText);
  const nameservers = has(opts.dns) ? opts.dns : hostValues(hostText, 'nameserver').filter((ns) => !isLoopbackNameserver(ns) && !ns.includes(':'));
  const search = has(opts.dnsSearch) ? opts.dnsSearch : hostValues(hostText, 'search');
  const options = has(opts.dnsOptions) ? opts.dnsOptions : hostValues(hostText, 'options');
  let text = '';
  if (search.length > 0 && search.join(' ').trim() !== '.') text += `search ${search.join(' ')}\n`;
  for (const ns of nameservers.length > 0 ? nameservers : DEFAULT_NAMESERVERS) text += `nameserver ${ns}\n`;
  if (options.length > 0 && options.join(' ').trim() !== '') text += `options ${options.join(' ')}\n`;
  return text;
}

/**
 * Writes `hostname`, `hosts` and `resolv.conf` into `containerDir`, each
 * atomically with mode 0644 (the container's users must read them). Safe to
 * call again: the files are replaced whole.
 */
export async function writeContainerFiles(containerDir: string, opts: ContainerFilesOptions): Promise<void> {
  // One token per value: a newline would add lines to the container's files.
  const values: Array<[string, string]> = [['hostname', opts.hostname], ['domainname', opts.domainname ?? '-'], ['ip', opts.ip ?? '-']];
  for (const field of ['dns', 'dnsSearch', 'dnsOptions'] as const) for (const v of opts[field] ?? []) values.push([field, v]);
  for (const [field, value] of values) {
    if (value === '' || /\s/.test(value)) throw invalidConfig(`invalid ${field} "${value}": must be one non-empty word`, { field, value });
  }
  const hosts = buildHosts(opts);
  let hostText = '';
  try {
    hostText = await fs.readFile(opts.hostResolvConf ?? '/etc/resolv.conf', 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const resolv = buildResolvConf(hostText, opts);
  await fs.mkdir(containerDir, { recursive: true, mode: 0o700 });
  const write = opts.inPlace === true ? (file: string, data: string) => fs.writeFile(file, data) : replaceFile;
  // Made afresh at every start: replaced atomically (a reader never sees half a file) but not
  // fsynced, since a crash only costs a file the next start writes again.
  await Promise.all([
    write(path.join(containerDir, 'hostname'), `${opts.hostname}\n`),
    write(path.join(containerDir, 'hosts'), hosts),
    write(path.join(containerDir, 'resolv.conf'), resolv),
  ]);
}

async function replaceFile(file: string, data: string): Promise<void> {
  const tmp = `${path.join(path.dirname(file), '.' + path.basename(file))}.tmp-${process.pid}`;
  await fs.writeFile(tmp, data, { mode: 0o644 });
  await fs.chmod(tmp, 0o644); // exactly, whatever the daemon's umask
  await fs.rename(tmp, file);
}
