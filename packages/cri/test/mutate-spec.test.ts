/**
 * The mutateSpec tap that puts a pod container into its sandbox: namespaces
 * by NamespaceMode and the sandbox's hosts/hostname/resolv.conf, on a stub
 * engine (no root needed).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import pino from 'pino';
import { createHooks, defaultConfig, IsulaError, type ContainerRecord, type Engine, type OciSpec } from '@isula/core';
import { LABEL_KIND, LABEL_META, LABEL_SANDBOX_ID } from '../src/labels.js';
import { CriRuntime } from '../src/runtime-service.js';

function record(id: string, pid: number, labels: Record<string, string>, status = 'running'): ContainerRecord {
  return { Id: id, Name: id, Config: { Labels: labels }, HostConfig: {}, State: { Status: status, Pid: pid } } as unknown as ContainerRecord;
}

function runtimeWith(records: ContainerRecord[]): CriRuntime {
  const engine = {
    containers: {
      find: (id: string) => {
        const r = records.find((x) => x.Id === id);
        if (r === undefined) throw new IsulaError('CONTAINER_NOT_FOUND', `No such container: ${id}`);
        return { record: r };
      },
      records: () => records,
      containerDir: (id: string) => `/graph/containers/${id}`,
    },
  } as unknown as Engine;
  const rt = new CriRuntime({ log: pino({ level: 'silent' }), config: defaultConfig(), hooks: createHooks(), options: { sandboxImage: 'p', catatonit: '', execSyncMaxOutputBytes: 1 } });
  rt.attach(engine);
  return rt;
}

const baseSpec = (): OciSpec => ({
  ociVersion: '1.0.2',
  mounts: [{ destination: '/etc/hosts', source: '/graph/containers/c1/hosts' }, { destination: '/etc/resolv.conf', source: '/graph/containers/c1/resolv.conf' }, { destination: '/data', source: '/srv' }],
  linux: { namespaces: [{ type: 'mount' }, { type: 'network', path: '/proc/100/ns/net' }, { type: 'uts' }, { type: 'pid' }, { type: 'ipc' }] },
});

const containerLabels = (pid: string, targetId = '') => ({
  [LABEL_KIND]: 'container', [LABEL_SANDBOX_ID]: 'sb', [LABEL_META]: JSON.stringify({ pid, targetId }),
});

test('a pod container joins the sandbox IPC and UTS namespaces, PID per NamespaceMode, and shares its files', () => {
  const rt = runtimeWith([record('sb', 100, { [LABEL_KIND]: 'sandbox' }), record('target', 200, { [LABEL_KIND]: 'container' })]);
  const ns = (spec: OciSpec) => Object.fromEntries(((spec['linux'] as { namespaces: { type: string; path?: string }[] }).namespaces).map((n) => [n.type, n.path ?? '']));

  const pod = rt.mutateSpec(baseSpec(), containerLabels('POD'));
  assert.deepEqual(ns(pod), { mount: '', network: '/proc/100/ns/net', uts: '/proc/100/ns/uts', pid: '/proc/100/ns/pid', ipc: '/proc/100/ns/ipc' });
  const mounts = pod['mounts'] as { destination: string; source: string }[];
  assert.deepEqual(mounts.map((m) => m.source), ['/graph/containers/sb/hosts', '/graph/containers/sb/resolv.conf', '/srv']);

  assert.equal(ns(rt.mutateSpec(baseSpec(), containerLabels('CONTAINER')))['pid'], '');
  assert.equal(ns(rt.mutateSpec(baseSpec(), containerLabels('TARGET', 'target')))['pid'], '/proc/200/ns/pid');
  // Not a CRI container: untouched.
  const plain = baseSpec();
  assert.equal(rt.mutateSpec(plain, { app: 'x' }), plain);
});

test('a pod container cannot start while its sandbox is not running', () => {
  const rt = runtimeWith([record('sb', 0, { [LABEL_KIND]: 'sandbox' }, 'exited')]);
  assert.throws(() => rt.mutateSpec(baseSpec(), containerLabels('POD')), (e: unknown) => e instanceof IsulaError && e.code === 'CONTAINER_STATE_CONFLICT');
});
