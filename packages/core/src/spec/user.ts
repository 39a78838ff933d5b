/**
 * `Config.User` ("name|uid[:group|gid]") to the OCI process user, read from
 * the container's own /etc/passwd and /etc/group with runc's
 * `GetExecUser` rules, plus `HostConfig.GroupAdd`.
 */
import type { OciUser } from './oci-types.js';
import { readFileInRoot } from './rootfs-path.js';
import { invalidConfig } from './invalid.js';

const MAX_ID = 2 ** 31 - 1;

interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
}

interface GroupEntry {
  name: string;
  gid: number;
  members: string[];
}

function parseId(s: string | undefined): number | undefined {
  if (s === undefined || !/^[0-9]+$/.test(s)) return undefined;
  return Number(s);
}

function lines(text: string | undefined): string[][] {
  if (text === undefined) return [];
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'))
    .map((l) => l.split(':'));
}

export function parsePasswd(text: string | undefined): PasswdEntry[] {
  const entries: PasswdEntry[] = [];
  for (const f of lines(text)) {
    const uid = parseId(f[2]);
    const gid = parseId(f[3]) ?? 0;
    if (f[0] !== undefined && uid !== undefined) entries.push({ name: f[0], uid, gid });
  }
  return entries;
}

export function parseGroup(text: string | undefined): GroupEntry[] {
  const entries: GroupEntry[] = [];
  for (const f of lines(text)) {
    const gid = parseId(f[2]);
    const members = (f[3] ?? '').split(',').map((m) => m.trim()).filter((m) => m !== '');
    if (f[0] !== undefined && gid !== undefined) entries.push({ name: f[0], gid, members });
  }
  return entries;
}

function checkRange(id: number, spec: string): number {
  if (id > MAX_ID) throw invalidConfig(`invalid user "${spec}": uids and gids must be in range 0-${MAX_ID}`);
  return id;
}

/**
 * Resolves a user spec against passwd/group text. Names must exist; numbers
 * need not. With an explicit group the supplementary groups are not looked
 * up (runc); the primary gid always leads `additionalGids` (moby, since
 * CVE-2022-36109).
 */
export function resolveUser(spec: string, passwdText: string | undefined, groupText: string | undefined, groupAdd: readonly string[] = []): OciUser {
  const sep = spec.indexOf(':');
  const userArg = sep < 0 ? spec : spec.slice(0, sep);
  const groupArg = sep < 0 ? '' : spec.slice(sep + 1);
  const users = parsePasswd(passwdText);
  const groups = parseGroup(groupText);

  let uid = 0;
  let gid = 0;
  let matchedName: string | undefined;
  const numericUid = parseId(userArg);
  const user = userArg === '' ? users.find((u) => u.uid === 0) : numericUid !== undefined ? users.find((u) => u.uid === numericUid) : users.find((u) => u.name === userArg);
  if (user !== undefined) {
    matchedName = user.name;
    uid = user.uid;
    gid = user.gid;
  } else if (userArg !== '') {
    if (numericUid === undefined) throw invalidConfig(`unable to find user ${userArg}: no matching entries in passwd file`, { user: userArg });
    uid = checkRange(numericUid, spec);
  }

  let supplementary: number[] = [];
  if (groupArg !== '') {
    const numericGid = parseId(groupArg);
    const group = numericGid !== undefined ? groups.find((g) => g.gid === numericGid) : groups.find((g) => g.name === groupArg);
    if (group !== undefined) gid = group.gid;
    else if (numericGid !== undefined) gid = checkRange(numericGid, spec);
    else throw invalidConfig(`unable to find group ${groupArg}: no matching entries in group file`, { group: groupArg });
  } else if (matchedName !== undefined) {
    const name = matchedName;
    supplementary = groups.filter((g) => g.members.includes(name)).map((g) => g.gid);
  }

  const added = groupAdd.map((g) => {
    const numeric = parseId(g);
    if (numeric !== undefined) return checkRange(numeric, g);
    const group = groups.find((e) => e.name === g);
    if (group === undefined) throw invalidConfig(`unable to find group ${g}: no matching entries in group file`, { group: g });
    return group.gid;
  });

  return { uid, gid, additionalGids: [...new Set([gid, ...supplementary, ...added])] };
}

/** Resolves `spec` through the rootfs' /etc/passwd and /etc/group, never leaving the rootfs. */
export async function resolveUserInRootfs(rootfs: string, spec: string, groupAdd: readonly string[] = []): Promise<OciUser> {
  const [passwd, group] = await Promise.all([readFileInRoot(rootfs, '/etc/passwd'), readFileInRoot(rootfs, '/etc/group')]);
  return resolveUser(spec, passwd, group, groupAdd);
}
