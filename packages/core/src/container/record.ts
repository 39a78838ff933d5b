/**
 * A container as core persists it: `<graph>/containers/<id>/config.v2.json`,
 * one file written atomically, so a crash leaves the old or the new record.
 * Field names follow Docker's inspect output where one exists.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { writeFileAtomic } from '../atomic-file.js';
import type { ContainerConfig, HostConfig } from './docker-types.js';
import type { HealthState } from './health.js';
import type { ContainerNetwork } from './network.js';
import type { VolumeMount } from './volumes.js';
import type { IdMap } from '../drivers/image.js';
import type { OciHooks } from '../spec/oci-hooks.js';

export type ContainerStatus = 'created' | 'running' | 'paused' | 'restarting' | 'removing' | 'exited' | 'dead';

export const ZERO_TIME = '0001-01-01T00:00:00Z';

export interface ContainerState {
  Status: ContainerStatus;
  /** Health check state while a probe is configured (Docker's State.Health). */
  Health?: HealthState;
  Pid: number;
  ExitCode: number;
  Error: string;
  StartedAt: string;
  FinishedAt: string;
  OOMKilled: boolean;
}

export interface ContainerRecord {
  Id: string;
  Name: string;
  Created: string;
  Path: string;
  Args: string[];
  Config: ContainerConfig;
  HostConfig: HostConfig;
  /** The image id (`sha256:…`, or the directory for an external rootfs). */
  Image: string;
  /** The image driver's format ("oci", "external"). */
  ImageFormat: string;
  Runtime: string;
  State: ContainerState;
  RestartCount: number;
  /** Set by stop/kill, cleared by start: restart policies leave such a container alone. */
  HasBeenManuallyStopped: boolean;
  /** What the runtime driver returned from `create`, handed back on every call. */
  DriverData?: Record<string, unknown>;
  /** The rootfs path the image driver gave (mounted while the container runs). */
  Rootfs?: string;
  /** Runtime-side warnings from create, shown once. */
  Warnings?: string[];
  /** The current run's network namespace and attachments (set at start, removed at exit). */
  Network?: ContainerNetwork;
  /** Volumes mounted by this container (Docker's MountPoints of type volume), resolved at create. */
  Volumes?: VolumeMount[];
  /** The container's own OCI hooks (`--hook-spec`), read and checked at create. */
  OciHooks?: OciHooks;
  /** The user namespace's host range (daemon's `userns-remap` or `--user-remap`), fixed at create. */
  IdMap?: IdMap;
  /**
   * The networks the container joins at start once `network connect` or
   * `disconnect` changed them, in order (`bridge` is the default network);
   * absent: the one `HostConfig.NetworkMode` names.
   */
  JoinedNetworks?: string[];
  /** Docker's NetworkingConfig from create (per network: a static IPv4 address). */
  NetworkingConfig?: { EndpointsConfig?: Record<string, { IPAMConfig?: { IPv4Address?: string } | null } | null> };
}

export const RECORD_FILE = 'config.v2.json';
/** The container's log (conmon's k8s-file format; rotated files `.1`, `.2` … beside it). */
export const LOG_FILE = 'container.log';

export async function saveRecord(containerDir: string, record: ContainerRecord): Promise<void> {
  await writeFileAtomic(path.join(containerDir, RECORD_FILE), JSON.stringify(record), { mode: 0o600 });
}

/** undefined when the file is missing (a half-created container). */
export async function readRecord(containerDir: string): Promise<ContainerRecord | undefined> {
  let text: string;
  try {
    text = await fs.readFile(path.join(containerDir, RECORD_FILE), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  return JSON.parse(text) as ContainerRecord;
}

/** Docker's name rule: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`, shown with a leading '/'. */
export const NAME_PATTERN = /^\/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$/;

const ADJECTIVES = [
  'admiring', 'agitated', 'amazing', 'awesome', 'blissful', 'bold', 'brave', 'busy', 'calm', 'charming', 'clever', 'cool', 'compassionate',
  'confident', 'cranky', 'dazzling', 'determined', 'distracted', 'dreamy', 'eager', 'ecstatic', 'elastic', 'elated', 'elegant', 'epic',
  'fancy', 'festive', 'focused', 'friendly', 'frosty', 'funny', 'gallant', 'gentle', 'gifted', 'goofy', 'gracious', 'happy', 'hopeful',
  'hungry', 'infallible', 'inspiring', 'jolly', 'jovial', 'keen', 'kind', 'laughing', 'loving', 'lucid', 'magical', 'merry', 'modest',
  'musing', 'naughty', 'nervous', 'nice', 'nifty', 'nostalgic', 'objective', 'optimistic', 'peaceful', 'pensive', 'practical', 'proud',
  'quirky', 'quiet', 'relaxed', 'reverent', 'romantic', 'serene', 'sharp', 'silly', 'sleepy', 'stoic', 'strange', 'sweet', 'swift',
  'tender', 'thirsty', 'trusting', 'upbeat', 'vibrant', 'vigilant', 'vivid', 'wizardly', 'wonderful', 'xenodochial', 'youthful', 'zealous', 'zen',
];
const NOUNS = [
  'agnesi', 'archimedes', 'babbage', 'bardeen', 'bell', 'bohr', 'boole', 'borg', 'bose', 'brahmagupta', 'cannon', 'carson', 'cerf',
  'chandrasekhar', 'clarke', 'curie', 'darwin', 'dijkstra', 'dirac', 'einstein', 'euclid', 'euler', 'faraday', 'fermat', 'fermi',
  'feynman', 'franklin', 'galileo', 'gauss', 'goldberg', 'goodall', 'hamilton', 'hawking', 'heisenberg', 'hertz', 'hodgkin', 'hopper',
  'hypatia', 'jackson', 'johnson', 'kalam', 'kepler', 'khorana', 'knuth', 'kowalevski', 'lamarr', 'lamport', 'leakey', 'lovelace',
  'lumiere', 'mayer', 'mccarthy', 'meitner', 'mendel', 'mirzakhani', 'montalcini', 'morse', 'napier', 'newton', 'nobel', 'noether',
  'noyce', 'pascal', 'pasteur', 'payne', 'perlman', 'pike', 'planck', 'poincare', 'ramanujan', 'raman', 'ride', 'ritchie', 'roentgen',
  'rosalind', 'sammet', 'shannon', 'shockley', 'sinoussi', 'stallman', 'swanson', 'tesla', 'thompson', 'torvalds', 'turing', 'volta',
  'wescoff', 'wiles', 'williams', 'wilson', 'wing', 'wozniak', 'wright', 'yalow', 'yonath',
];

/** A docker-style generated name (`adjective_scientist`), with a number after the first tries. */
export function generateName(taken: (name: string) => boolean): string {
  for (let i = 0; i < 50; i++) {
    const a = ADJECTIVES[Math.floor(Math.random() * ADJECTIVES.length)] ?? 'calm';
    const n = NOUNS[Math.floor(Math.random() * NOUNS.length)] ?? 'turing';
    const name = i < 10 ? `${a}_${n}` : `${a}_${n}${i}`;
    if (!taken(name)) return name;
  }
  return `c_${Date.now().toString(36)}${Math.floor(Math.random() * 1e6).toString(36)}`;
}
