/**
 * The daemon's end of `containerd.services.events.ttrpc.v1.Events/Forward`:
 * every shim this driver starts gets `TTRPC_ADDRESS` pointing here and
 * publishes its task events (create, start, exit, oom, exec-added ...) as
 * envelopes `{timestamp, namespace, topic, event: Any}`. Without a listener a
 * shim pays a dial timeout per event, OOM events are lost, and a shut-down
 * shim lingers ~16 s (PLATFORM.md §5).
 *
 * Decoded events are handed to listeners; an event type we do not know is
 * acknowledged and dropped (a shim must never be stalled by us).
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { decode, encode, exitTime, protoRoot } from './protos.js';
import { TtrpcServer } from './ttrpc.js';

export const EVENTS_SERVICE = 'containerd.services.events.ttrpc.v1.Events';

export type TaskEvent =
  | { topic: '/tasks/exit'; namespace: string; containerId: string; execId: string; pid: number; exitStatus: number; exitedAt: Date }
  | { topic: '/tasks/oom'; namespace: string; containerId: string }
  | { topic: string; namespace: string; containerId: string; type: string; event: Record<string, unknown> };

export class EventsServer {
  readonly #server = new TtrpcServer();
  readonly #listeners = new Set<(e: TaskEvent) => void>();
  readonly #log: Logger;
  #listening: Promise<void> | undefined;
  readonly socketPath: string;

  constructor(socketPath: string, log: Logger) {
    this.socketPath = socketPath;
    this.#log = log;
    this.#server.register(EVENTS_SERVICE, 'Forward', async (call) => {
      this.#onForward(call.payload);
      return encode('google.protobuf.Empty', {});
    });
  }

  /** Starts listening once (later calls share the first). */
  listen(): Promise<void> {
    this.#listening ??= fs.mkdir(path.dirname(this.socketPath), { recursive: true, mode: 0o700 })
      .then(() => this.#server.listen(this.socketPath)).catch((err: unknown) => { this.#listening = undefined; throw err; });
    return this.#listening;
  }

  on(listener: (e: TaskEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  async close(): Promise<void> {
    this.#listeners.clear();
    if (this.#listening) await this.#listening.catch(() => {});
    this.#listening = undefined;
    await this.#server.close();
  }

  #onForward(payload: Buffer): void {
    let env: { envelope?: { namespace: string; topic: string; event?: { type_url: string; value: Buffer } } };
    try {
      env = decode('containerd.services.events.ttrpc.v1.ForwardRequest', payload);
    } catch (err) {
      this.#log.warn({ err }, 'undecodable event from a shim');
      return;
    }
    const e = env.envelope;
    if (!e?.event) {
      this.#log.debug({ topic: e?.topic }, 'shim event without a payload');
      return;
    }
    // type_url is "containerd.events.TaskExit" (sometimes with a "types.containerd.io/" style prefix).
    const type = e.event.type_url.slice(e.event.type_url.lastIndexOf('/') + 1);
    if (!type.startsWith('containerd.events.') || !protoRoot().lookup(type)) {
      this.#log.debug({ topic: e.topic, type }, 'shim event of an unknown type');
      return;
    }
    let ev: Record<string, unknown>;
    try {
      ev = decode(type, e.event.value);
    } catch (err) {
      this.#log.warn({ err, topic: e.topic, type }, 'undecodable shim event');
      return;
    }
    const containerId = String(ev['container_id'] ?? '');
    let out: TaskEvent;
    if (type === 'containerd.events.TaskExit') {
      out = {
        topic: '/tasks/exit', namespace: e.namespace, containerId, execId: String(ev['id'] ?? ''), pid: Number(ev['pid'] ?? 0),
        exitStatus: Number(ev['exit_status'] ?? 0), exitedAt: exitTime(ev['exited_at']),
      };
    } else if (type === 'containerd.events.TaskOOM') {
      out = { topic: '/tasks/oom', namespace: e.namespace, containerId };
    } else {
      out = { topic: e.topic, namespace: e.namespace, containerId, type, event: ev };
    }
    this.#log.debug({ topic: e.topic, container: containerId }, 'shim event');
    for (const l of this.#listeners) {
      try {
        l(out);
      } catch (err) {
        this.#log.warn({ err, topic: e.topic }, 'a shim event listener failed');
      }
    }
  }
}
