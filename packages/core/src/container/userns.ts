/**
 * User namespaces: `userns-remap` in daemon.json (Docker's "default" and
 * "USER[:GROUP]", iSulad's "UID:GID:SIZE") and iSulad's per-container
 * `--user-remap UID:GID:SIZE`. A container's root is the first host id of
 * the range; every range must be one /etc/subuid and /etc/subgid grant, so
 * the host's own accounts are never handed to a container.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import type { IdMap } from '../drivers/image.js';
import { IsulaError } from '../errors.js';
import { parseGroup, parsePasswd } from '../spec/user.js';

export type { IdMap };

export type RemapSetting =
  | { kind: 'range'; map: IdMap }
  | { kind: 'user'; user: string; group: string }
  | { kind: 'default' };

/** The account `"userns-remap": "default"` uses (Docker's is `dockremap`); created when missing. */
export const DEFAULT_REMAP_USER = 'isulad-remap';
const DEFAULT_RANGE_SIZE = 65536;
const FIRST_SUB_ID = 100000;
const MAX_ID = 2 ** 32 - 2;

const NAME = /^[a-z_][a-z0-9_-]*\$?$/i;

/** Parses a remap setting's shape (no file is read). Throws an Error that names what is wrong. */
export function parseRemap(text: string): RemapSetting {
  if (text === 'default') return { kind: 'default' };
  const parts = text.split(':');
  if (parts.length === 3 && parts.every((p) => /^\d+$/.test(p))) {
    const [uid, gid, size] = parts.map(Number) as [number, number, number];
    if (uid === 0 || gid === 0) throw new Error(`"${text}": the host range cannot start at 0 (that is the host's root)`);
    if (size < 1 || uid + size - 1 > MAX_ID || gid + size - 1 > MAX_ID) throw new Error(`"${text}": the size must be at least 1 and the range within 32-bit ids`);
    return { kind: 'range', map: { uid, gid, size } };
  }
  if (parts.length <= 2 && parts.every((p) => NAME.test(p) || /^\d+$/.test(p))) {
    return { kind: 'user', user: parts[0] as string, group: parts[1] ?? (parts[0] as string) };
  }
  throw new Error(`"${text}": expected "default", USER[:GROUP] or UID:GID:SIZE`);
}

export interface SubIdRange {
  owner: string;
  start: number;
  count: number;
}

export interface IdFiles {
  subuid: string;
  subgid: string;
  passwd: string;
  group: string;
}

export const HOST_ID_FILES: IdFiles = { subuid: '/etc/subuid', subgid: '/etc/subgid', passwd: '/etc/passwd', group: '/etc/group' };

/** Lines `owner:start:count` of /etc/subuid or /etc/subgid; a missing file has none. */
export async function readSubIds(file: string): Promise<SubIdRange[]> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const out: SubIdRange[] = [];
  for (const line of text.split('\n')) {
    const m = /^([^:#\s][^:]*):(\d+):(\d+)\s*$/.exec(line);
    if (m !== null) out.push({ owner: m[1] as string, start: Number(m[2]), count: Number(m[3]) });
  }
  return out;
}

/**
 * A user (in /etc/passwd) or group (in /etc/group) by name or id. An id
 * that the file does not list stands for itself (/etc/subuid may name it).
 */
async function account(file: string, nameOrId: string, kind: 'user' | 'group'): Promise<{ name: string; id: number } | undefined> {
  const text = await fs.readFile(file, 'utf8').catch(() => undefined);
  const entries = kind === 'user' ? parsePasswd(text).map((e) => ({ name: e.name, id: e.uid })) : parseGroup(text).map((e) => ({ name: e.name, id: e.gid }));
  const numeric = /^\d+$/.test(nameOrId);
  const hit = entries.find((e) => (numeric ? e.id === Number(nameOrId) : e.name === nameOrId));
  if (hit !== undefined) return hit;
  return numeric ? { name: nameOrId, id: Number(nameOrId) } : undefined;
}

/**
 * Checks that [map.uid, map.uid+size) lies inside one /etc/subuid grant and
 * [map.gid, map.gid+size) inside one /etc/subgid grant; throws
 * CONTAINER_CONFIG_INVALID naming the file and the range otherwise.
 */
export async function checkGranted(map: IdMap, what: string, files: IdFiles = HOST_ID_FILES): Promise<void> {
  for (const [file, start] of [[files.subuid, map.uid], [files.subgid, map.gid]] as const) {
    const ranges = await readSubIds(file);
    const ok = ranges.some((r) => start >= r.start && start + map.size <= r.start + r.count);
    if (!ok) {
      throw new IsulaError('CONTAINER_CONFIG_INVALID', `${what}: the range ${start}-${start + map.size - 1} is not granted in ${file}` +
        (ranges.length === 0 ? ` (the file has no ranges)` : ` (it grants ${ranges.map((r) => `${r.owner}:${r.start}-${r.start + r.count - 1}`).join(', ')})`));
    }
  }
}

/** A user's first grant in a subordinate-id file (by name, or by uid as shadow-utils also accepts). */
async function grantOf(file: string, names: string[]): Promise<SubIdRange | undefined> {
  return (await readSubIds(file)).find((r) => names.includes(r.owner));
}

/** The next free start after every grant in both files (shadow-utils' own rule is similar). */
async function nextFreeStart(files: IdFiles): Promise<number> {
  const all = [...(await readSubIds(files.subuid)), ...(await readSubIds(files.subgid))];
  return all.reduce((max, r) => Math.max(max, r.start + r.count), FIRST_SUB_ID);
}

/**
 * Resolves daemon.json's `userns-remap` to a host range, as Docker does:
 * "default" creates the `isulad-remap` account and its grants when missing
 * (with useradd/usermod); USER[:GROUP] uses the user's first /etc/subuid
 * grant and the group's first /etc/subgid grant; UID:GID:SIZE must be
 * granted. Throws CONFIG_INVALID naming the file that lacks the grant.
 */
export async function resolveDaemonRemap(setting: string, files: IdFiles = HOST_ID_FILES): Promise<IdMap | undefined> {
  if (setting === '') return undefined;
  const parsed = parseRemap(setting);
  const invalid = (msg: string): IsulaError => new IsulaError('CONFIG_INVALID', `invalid value for "userns-remap": ${msg}`);
  if (parsed.kind === 'range') {
    try {
      await checkGranted(parsed.map, `"userns-remap": "${setting}"`, files);
    } catch (err) {
      throw invalid((err as Error).message.replace(/^"userns-remap": "[^"]*": /, ''));
    }
    return parsed.map;
  }
  const userName = parsed.kind === 'default' ? DEFAULT_REMAP_USER : parsed.user;
  const groupName = parsed.kind === 'default' ? DEFAULT_REMAP_USER : parsed.group;
  if (parsed.kind === 'default') await ensureDefaultRemapUser(files);
  const user = await account(files.passwd, userName, 'user');
  if (user === undefined) throw invalid(`no user "${userName}" in ${files.passwd}`);
  const group = await account(files.group, groupName, 'group');
  if (group === undefined) throw invalid(`no group "${groupName}" in ${files.group}`);
  const su = await grantOf(files.subuid, [user.name, String(user.id)]);
  if (su === undefined) throw invalid(`user "${user.name}" has no range in ${files.subuid}`);
  const sg = await grantOf(files.subgid, [group.name, String(group.id)]);
  if (sg === undefined) throw invalid(`group "${group.name}" has no range in ${files.subgid}`);
  return { uid: su.start, gid: sg.start, size: Math.min(su.count, sg.count) };
}

async function ensureDefaultRemapUser(files: IdFiles): Promise<void> {
  const { execa } = await import('execa');
  if ((await account(files.passwd, DEFAULT_REMAP_USER, 'user')) === undefined) {
    await execa('useradd', ['--system', '--user-group', '--no-create-home', '--shell', '/usr/sbin/nologin', DEFAULT_REMAP_USER], { timeout: 30_000 }).catch((err: unknown) => {
      throw new IsulaError('CONFIG_INVALID', `"userns-remap": "default" needs the account ${DEFAULT_REMAP_USER}, and useradd failed: ${(err as Error).message}`);
    });
  }
  const hasUid = (await grantOf(files.subuid, [DEFAULT_REMAP_USER])) !== undefined;
  const hasGid = (await grantOf(files.subgid, [DEFAULT_REMAP_USER])) !== undefined;
  if (hasUid && hasGid) return;
  const start = await nextFreeStart(files);
  const range = `${start}-${start + DEFAULT_RANGE_SIZE - 1}`;
  const args = [...(hasUid ? [] : ['--add-subuids', range]), ...(hasGid ? [] : ['--add-subgids', range]), DEFAULT_REMAP_USER];
  await execa('usermod', args, { timeout: 30_000 }).catch((err: unknown) => {
    throw new IsulaError('CONFIG_INVALID', `"userns-remap": "default": usermod ${args.join(' ')} failed: ${(err as Error).message}`);
  });
}

/**
 * A container's mapping: its own `--user-remap`, none with `--userns=host`,
 * else the daemon's, except for system containers, which (as iSulad's) only
 * get a user namespace they ask for.
 */
export async function containerIdMap(hc: { UserRemap?: string; UsernsMode?: string; SystemContainer?: boolean }, daemonMap: IdMap | undefined, files: IdFiles = HOST_ID_FILES): Promise<IdMap | undefined> {
  const own = hc.UserRemap ?? '';
  if (own !== '') {
    if (hc.UsernsMode === 'host') throw new IsulaError('CONTAINER_CONFIG_INVALID', 'conflicting options: --user-remap and --userns=host');
    let parsed: RemapSetting;
    try {
      parsed = parseRemap(own);
    } catch (err) {
      throw new IsulaError('CONTAINER_CONFIG_INVALID', `invalid --user-remap: ${(err as Error).message}`);
    }
    if (parsed.kind !== 'range') throw new IsulaError('CONTAINER_CONFIG_INVALID', `invalid --user-remap "${own}": expected UID:GID:SIZE`);
    await checkGranted(parsed.map, `--user-remap ${own}`, files);
    return parsed.map;
  }
  if (hc.UsernsMode === 'host' || hc.SystemContainer === true) return undefined;
  return daemonMap;
}


/**
 * Makes the container's cgroup directories (every cgroup hierarchy mounted
 * on the host) searchable by a remapped root before the runtime creates
 * them: runc bind-mounts them into the container from inside the user
 * namespace, and under the daemon's secure umask they would be 0750.
 */
export async function openCgroupPath(cgroupsPath: string): Promise<void> {
  const parts = cgroupsPath.split('/').filter((p) => p !== '' && p !== '.' && p !== '..');
  for (let dir of await cgroupMounts()) {
    for (const part of parts) {
      dir = `${dir}/${part}`;
      await fs.mkdir(dir).catch((err: NodeJS.ErrnoException) => { if (err.code !== 'EEXIST') throw err; });
      await fs.chmod(dir, 0o755);
    }
  }
}

/**
 * Removes the container's own cgroup directories that openCgroupPath made
 * (the runtime removes them on delete; this covers a start that failed
 * before the runtime ran, and hierarchies the runtime does not manage).
 * Idempotent; a directory still in use stays.
 */
export async function closeCgroupPath(cgroupsPath: string): Promise<void> {
  const rel = cgroupsPath.split('/').filter((p) => p !== '' && p !== '.' && p !== '..').join('/');
  if (rel === '') return;
  for (const mount of await cgroupMounts()) await fs.rmdir(`${mount}/${rel}`).catch(() => undefined);
}

/** Mount points of the host's own cgroup hierarchies (root "/" of each cgroup file system). */
async function cgroupMounts(): Promise<string[]> {
  const mountinfo = await fs.readFile('/proc/self/mountinfo', 'utf8');
  const out: string[] = [];
  for (const line of mountinfo.split('\n')) {
    const [pre, post] = line.split(' - ');
    const fields = pre?.split(' ') ?? [];
    const fstype = post?.split(' ')[0];
    if ((fstype === 'cgroup' || fstype === 'cgroup2') && fields[3] === '/' && fields[4] !== undefined) out.push(fields[4]);
  }
  return out;
}

/**
 * The remapped root reaches its rootfs through the directories above the
 * graph root (the engine opens those below itself): each must let others
 * search it, as Docker requires of its root. Throws naming the directory.
 */
export async function checkReachable(graph: string, map: IdMap): Promise<void> {
  for (let dir = path.dirname(path.resolve(graph)); ; dir = path.dirname(dir)) {
    const st = await fs.stat(dir);
    const owned = st.uid >= map.uid && st.uid < map.uid + map.size;
    if (!owned && (st.mode & 0o001) === 0) {
      throw new IsulaError('CONTAINER_CONFIG_INVALID', `${dir}, above the graph root ${graph}, does not let a remapped root (uid ${map.uid}) through: allow others to search it (chmod o+x ${dir}) or use --userns=host`);
    }
    if (dir === '/') return;
  }
}
