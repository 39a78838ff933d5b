/**
 * What the CRI keeps about a pod sandbox or a container lives in the core
 * container record's labels, under `io.isula.cri.*`: it is persisted with the
 * record (atomically, by core), so pods and their containers are found again
 * after a daemon restart with no store of our own.
 */
import type { ContainerRecord } from '@isula/core';

export const LABEL_KIND = 'io.isula.cri.kind';
export const LABEL_SANDBOX_ID = 'io.isula.cri.sandbox-id';
export const LABEL_META = 'io.isula.cri.meta';

export type CriKind = 'sandbox' | 'container';

/** The CRI view of a sandbox, saved at RunPodSandbox. */
export interface SandboxMeta {
  schemaVersion: 1;
  metadata: { name: string; uid: string; namespace: string; attempt: number };
  labels: Record<string, string>;
  annotations: Record<string, string>;
  runtimeHandler: string;
  hostNetwork: boolean;
  /** NamespaceOption.pid / ipc of the pod. */
  pid: string;
  ipc: string;
  logDirectory: string;
  hostname: string;
  cgroupParent: string;
  /** The pod's /dev/shm tmpfs on the host ('' with the host's IPC namespace). */
  shmPath?: string;
}

/** The CRI view of a container, saved at CreateContainer. */
export interface ContainerMeta {
  schemaVersion: 1;
  metadata: { name: string; attempt: number };
  labels: Record<string, string>;
  annotations: Record<string, string>;
  /** The image as the kubelet asked for it. */
  image: string;
  logPath: string;
  /** Effective PID namespace: POD, CONTAINER, NODE, TARGET. */
  pid: string;
  targetId: string;
  mounts: { container_path: string; host_path: string; readonly: boolean; selinux_relabel: boolean; propagation: string }[];
}

export function kindOf(record: ContainerRecord): CriKind | undefined {
  const k = record.Config.Labels?.[LABEL_KIND];
  return k === 'sandbox' || k === 'container' ? k : undefined;
}

export function sandboxMeta(record: ContainerRecord): SandboxMeta {
  return JSON.parse(record.Config.Labels?.[LABEL_META] ?? '{}') as SandboxMeta;
}

export function containerMeta(record: ContainerRecord): ContainerMeta {
  return JSON.parse(record.Config.Labels?.[LABEL_META] ?? '{}') as ContainerMeta;
}

/** The kubelet's label selector: every key must be present with that value. */
export function matchesSelector(labels: Record<string, string>, selector: Record<string, string> | undefined): boolean {
  for (const [k, v] of Object.entries(selector ?? {})) if (labels[k] !== v) return false;
  return true;
}
