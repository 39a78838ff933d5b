/**
 * Docker-format seccomp profiles (moby `profiles/seccomp`, containers-common
 * `/usr/share/containers/seccomp.json`) to OCI `linux.seccomp`, filtered as
 * moby does: by the host architecture (archMap, includes/excludes.arches),
 * the container's bounding capabilities (includes/excludes.caps) and the
 * kernel version (minKernel).
 */
import fs from 'node:fs';
import os from 'node:os';
import type { OciSeccomp, OciSeccompArg, OciSeccompSyscall } from './oci-types.js';
import { invalidConfig } from './invalid.js';
import { isRecord } from '../is-record.js';

/** One rule of a Docker profile, narrowed from JSON. */
export interface DockerSeccompRule {
  names: string[];
  action: string;
  errnoRet?: number;
  args: OciSeccompArg[];
  includes: SeccompFilter;
  excludes: SeccompFilter;
}

export interface SeccompFilter {
  arches: string[];
  caps: string[];
  minKernel?: string;
}

export interface DockerSeccompProfile {
  defaultAction: string;
  defaultErrnoRet?: number;
  /** Old form: a flat architecture list. */
  architectures: string[];
  archMap: Array<{ architecture: string; subArchitectures: string[] }>;
  flags: string[];
  syscalls: DockerSeccompRule[];
}

function strings(v: unknown, where: string): string[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v) || !v.every((s) => typeof s === 'string')) throw new Error(`${where} must be an array of strings`);
  return v;
}

function optionalUint(v: unknown, where: string): number | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) throw new Error(`${where} must be a non-negative integer`);
  return v;
}

function filter(v: unknown, where: string): SeccompFilter {
  if (v === undefined || v === null) return { arches: [], caps: [] };
  if (!isRecord(v)) throw new Error(`${where} must be an object`);
  const f: SeccompFilter = { arches: strings(v.arches, `${where}.arches`), caps: strings(v.caps, `${where}.caps`) };
  if (typeof v.minKernel === 'string' && v.minKernel !== '') f.minKernel = v.minKernel;
  return f;
}

/** Narrows a parsed Docker profile; throws a plain Error naming the bad field. */
export function parseSeccompProfile(json: unknown): DockerSeccompProfile {
  if (!isRecord(json)) throw new Error('profile must be a JSON object');
  if (typeof json.defaultAction !== 'string' || json.defaultAction === '') throw new Error('defaultAction must be a non-empty string');
  const archMap = (Array.isArray(json.archMap) ? json.archMap : []).map((a: unknown, i) => {
    if (!isRecord(a) || typeof a.architecture !== 'string') throw new Error(`archMap[${i}].architecture must be a string`);
    return { architecture: a.architecture, subArchitectures: strings(a.subArchitectures, `archMap[${i}].subArchitectures`) };
  });
  const architectures = strings(json.architectures, 'architectures');
  if (architectures.length > 0 && archMap.length > 0) throw new Error("'architectures' and 'archMap' were specified in the seccomp profile, use either 'architectures' or 'archMap'");
  const syscalls = (Array.isArray(json.syscalls) ? json.syscalls : []).map((s: unknown, i): DockerSeccompRule => {
    const where = `syscalls[${i}]`;
    if (!isRecord(s)) throw new Error(`${where} must be an object`);
    const names = strings(s.names, `${where}.names`);
    if (typeof s.name === 'string' && s.name !== '') {
      if (names.length > 0) throw new Error(`${where}: use either 'name' or 'names'`);
      names.push(s.name);
    }
    if (typeof s.action !== 'string' || s.action === '') throw new Error(`${where}.action must be a non-empty string`);
    const args = (Array.isArray(s.args) ? s.args : []).map((a: unknown, j): OciSeccompArg => {
      if (!isRecord(a) || typeof a.index !== 'number' || typeof a.value !== 'number' || typeof a.op !== 'string') throw new Error(`${where}.args[${j}] needs index, value and op`);
      const arg: OciSeccompArg = { index: a.index, value: a.value, op: a.op };
      if (typeof a.valueTwo === 'number' && a.valueTwo !== 0) arg.valueTwo = a.valueTwo;
      return arg;
    });
    const rule: DockerSeccompRule = { names, action: s.action, args, includes: filter(s.includes, `${where}.includes`), excludes: filter(s.excludes, `${where}.excludes`) };
    const errnoRet = optionalUint(s.errnoRet, `${where}.errnoRet`);
    if (errnoRet !== undefined) rule.errnoRet = errnoRet;
    return rule;
  });
  const profile: DockerSeccompProfile = { defaultAction: json.defaultAction, architectures, archMap, flags: strings(json.flags, 'flags'), syscalls };
  const defaultErrnoRet = optionalUint(json.defaultErrnoRet, 'defaultErrnoRet');
  if (defaultErrnoRet !== undefined) profile.defaultErrnoRet = defaultErrnoRet;
  return profile;
}

const profileCache = new Map<string, { mtimeMs: number; size: number; profile: DockerSeccompProfile }>();

/**
 * Reads and parses a profile file, cached in memory until the file's mtime
 * or size changes. Undefined when the file does not exist; a broken file is
 * CONTAINER_CONFIG_INVALID.
 */
export function loadSeccompProfile(file: string): DockerSeccompProfile | undefined {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(file);
  } catch {
    return undefined;
  }
  const cached = profileCache.get(file);
  if (cached !== undefined && cached.mtimeMs === stat.mtimeMs && cached.size === stat.size) return cached.profile;
  let profile: DockerSeccompProfile;
  try {
    profile = parseSeccompProfile(JSON.parse(fs.readFileSync(file, 'utf8')));
  } catch (err) {
    throw invalidConfig(`invalid seccomp profile ${file}: ${(err as Error).message}`, { file });
  }
  profileCache.set(file, { mtimeMs: stat.mtimeMs, size: stat.size, profile });
  return profile;
}

/** The host as a seccomp profile names it: Go's GOARCH and libseccomp's SCMP_ARCH_*. */
export interface SeccompHost {
  goArch: string;
  scmpArch: string;
  /** Kernel release, e.g. "6.18.0". */
  kernel: string;
}

const NODE_ARCHES: Readonly<Record<string, [goArch: string, scmpArch: string]>> = Object.freeze({
  x64: ['amd64', 'SCMP_ARCH_X86_64'],
  ia32: ['386', 'SCMP_ARCH_X86'],
  arm64: ['arm64', 'SCMP_ARCH_AARCH64'],
  arm: ['arm', 'SCMP_ARCH_ARM'],
  s390x: ['s390x', 'SCMP_ARCH_S390X'],
  ppc64: ['ppc64le', 'SCMP_ARCH_PPC64LE'],
  riscv64: ['riscv64', 'SCMP_ARCH_RISCV64'],
  loong64: ['loong64', 'SCMP_ARCH_LOONGARCH64'],
  mips64el: ['mips64le', 'SCMP_ARCH_MIPSEL64'],
});

export function currentSeccompHost(): SeccompHost {
  const [goArch, scmpArch] = NODE_ARCHES[process.arch] ?? [process.arch, ''];
  return { goArch, scmpArch, kernel: os.release() };
}

function kernelAtLeast(release: string, min: string): boolean {
  const parse = (v: string): number[] => v.split(/[.-]/).slice(0, 2).map((n) => Number.parseInt(n, 10) || 0);
  const [a0 = 0, a1 = 0] = parse(release);
  const [b0 = 0, b1 = 0] = parse(min);
  return a0 !== b0 ? a0 > b0 : a1 >= b1;
}

/**
 * The OCI seccomp section for a process with bounding capabilities `caps`.
 * A rule applies when none of its excludes match and all of its includes do.
 */
export function seccompFromProfile(profile: DockerSeccompProfile, caps: readonly string[], host: SeccompHost = currentSeccompHost()): OciSeccomp {
  const out: OciSeccomp = { defaultAction: profile.defaultAction };
  if (profile.defaultErrnoRet !== undefined) out.defaultErrnoRet = profile.defaultErrnoRet;
  if (profile.architectures.length > 0) {
    out.architectures = [...profile.architectures];
  } else {
    const entry = profile.archMap.find((a) => a.architecture === host.scmpArch);
    if (entry !== undefined) out.architectures = [entry.architecture, ...entry.subArchitectures];
  }
  if (profile.flags.length > 0) out.flags = [...profile.flags];
  const syscalls: OciSeccompSyscall[] = [];
  for (const rule of profile.syscalls) {
    const { includes, excludes } = rule;
    if (excludes.arches.includes(host.goArch)) continue;
    if (excludes.caps.some((c) => caps.includes(c))) continue;
    if (excludes.minKernel !== undefined && kernelAtLeast(host.kernel, excludes.minKernel)) continue;
    if (includes.arches.length > 0 && !includes.arches.includes(host.goArch)) continue;
    if (!includes.caps.every((c) => caps.includes(c))) continue;
    if (includes.minKernel !== undefined && !kernelAtLeast(host.kernel, includes.minKernel)) continue;
    if (rule.names.length === 0) continue;
    const call: OciSeccompSyscall = { names: [...rule.names], action: rule.action };
    if (rule.errnoRet !== undefined) call.errnoRet = rule.errnoRet;
    if (rule.args.length > 0) call.args = rule.args.map((a) => ({ ...a }));
    syscalls.push(call);
  }
  out.syscalls = syscalls;
  return out;
}
