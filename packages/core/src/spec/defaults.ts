/**
 * Docker's default container spec (moby `oci/defaults.go` and
 * `daemon/oci_linux.go`), written out as data: what `docker run` gives a
 * container that asks for nothing.
 */
import type { OciDeviceCgroup, OciMount } from './oci-types.js';

/** The 14 capabilities a Docker container has by default. */
export const DEFAULT_CAPABILITIES: readonly string[] = Object.freeze([
  'CAP_CHOWN',
  'CAP_DAC_OVERRIDE',
  'CAP_FSETID',
  'CAP_FOWNER',
  'CAP_MKNOD',
  'CAP_NET_RAW',
  'CAP_SETGID',
  'CAP_SETUID',
  'CAP_SETFCAP',
  'CAP_SETPCAP',
  'CAP_NET_BIND_SERVICE',
  'CAP_SYS_CHROOT',
  'CAP_KILL',
  'CAP_AUDIT_WRITE',
]);

/**
 * Every capability Linux defines, in number order (index = capability
 * number). The running kernel's `cap_last_cap` trims this list.
 */
export const KNOWN_CAPABILITIES: readonly string[] = Object.freeze([
  'CAP_CHOWN',
  'CAP_DAC_OVERRIDE',
  'CAP_DAC_READ_SEARCH',
  'CAP_FOWNER',
  'CAP_FSETID',
  'CAP_KILL',
  'CAP_SETGID',
  'CAP_SETUID',
  'CAP_SETPCAP',
  'CAP_LINUX_IMMUTABLE',
  'CAP_NET_BIND_SERVICE',
  'CAP_NET_BROADCAST',
  'CAP_NET_ADMIN',
  'CAP_NET_RAW',
  'CAP_IPC_LOCK',
  'CAP_IPC_OWNER',
  'CAP_SYS_MODULE',
  'CAP_SYS_RAWIO',
  'CAP_SYS_CHROOT',
  'CAP_SYS_PTRACE',
  'CAP_SYS_PACCT',
  'CAP_SYS_ADMIN',
  'CAP_SYS_BOOT',
  'CAP_SYS_NICE',
  'CAP_SYS_RESOURCE',
  'CAP_SYS_TIME',
  'CAP_SYS_TTY_CONFIG',
  'CAP_MKNOD',
  'CAP_LEASE',
  'CAP_AUDIT_WRITE',
  'CAP_AUDIT_CONTROL',
  'CAP_SETFCAP',
  'CAP_MAC_OVERRIDE',
  'CAP_MAC_ADMIN',
  'CAP_SYSLOG',
  'CAP_WAKE_ALARM',
  'CAP_BLOCK_SUSPEND',
  'CAP_AUDIT_READ',
  'CAP_PERFMON',
  'CAP_BPF',
  'CAP_CHECKPOINT_RESTORE',
]);

/** Docker's default ShmSize: 64 MiB. */
export const DEFAULT_SHM_SIZE_BYTES = 64 * 1024 * 1024;

/** Docker's PATH when neither the image nor the user sets one (moby `DefaultPathEnv`). */
export const DEFAULT_PATH_ENV = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** Docker's own init is mounted here; isula mounts catatonit at the same place. */
export const INIT_PATH_IN_CONTAINER = '/sbin/docker-init';
export const DEFAULT_INIT_BINARY = '/usr/bin/catatonit';

export const DEFAULT_SECCOMP_PROFILE = '/usr/share/containers/seccomp.json';

/** The file systems every container gets, before user mounts (moby `DefaultLinuxSpec`). */
export function defaultMounts(shmSizeBytes: number): OciMount[] {
  return [
    { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] },
    { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
    { destination: '/dev/pts', type: 'devpts', source: 'devpts', options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'] },
    { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] },
    { destination: '/sys/fs/cgroup', type: 'cgroup', source: 'cgroup', options: ['ro', 'nosuid', 'noexec', 'nodev'] },
    { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
    { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', `size=${shmSizeBytes}`] },
  ];
}

/** Paths hidden from an unprivileged container. */
export const DEFAULT_MASKED_PATHS: readonly string[] = Object.freeze([
  '/proc/asound',
  '/proc/acpi',
  '/proc/kcore',
  '/proc/keys',
  '/proc/latency_stats',
  '/proc/timer_list',
  '/proc/timer_stats',
  '/proc/sched_debug',
  '/proc/scsi',
  '/sys/firmware',
  '/sys/devices/virtual/powercap',
]);

/** Paths an unprivileged container sees read-only. */
export const DEFAULT_READONLY_PATHS: readonly string[] = Object.freeze([
  '/proc/bus',
  '/proc/fs',
  '/proc/irq',
  '/proc/sys',
  '/proc/sysrq-trigger',
]);

/**
 * The device cgroup of an unprivileged container: deny everything, then
 * allow what runc creates in /dev (null, zero, full, random, urandom, tty,
 * console, ptmx), mknod of any device, the pty slaves and tun. Docker relies
 * on runc appending most of these; writing them out keeps the spec honest
 * whatever the runtime.
 */
export function defaultDeviceRules(): OciDeviceCgroup[] {
  const allow = (type: 'c' | 'b', major: number | undefined, minor: number | undefined, access = 'rwm'): OciDeviceCgroup => {
    const rule: OciDeviceCgroup = { allow: true, type, access };
    if (major !== undefined) rule.major = major;
    if (minor !== undefined) rule.minor = minor;
    return rule;
  };
  return [
    { allow: false, access: 'rwm' },
    allow('c', undefined, undefined, 'm'),
    allow('b', undefined, undefined, 'm'),
    allow('c', 1, 3), // /dev/null
    allow('c', 1, 5), // /dev/zero
    allow('c', 1, 7), // /dev/full
    allow('c', 1, 8), // /dev/random
    allow('c', 1, 9), // /dev/urandom
    allow('c', 5, 0), // /dev/tty
    allow('c', 5, 1), // /dev/console
    allow('c', 5, 2), // /dev/ptmx
    allow('c', 136, undefined), // /dev/pts/*
    allow('c', 10, 200), // /dev/net/tun
  ];
}
