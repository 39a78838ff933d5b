/**
 * Docker's detach keys: a sequence the attach (or exec) client types to leave
 * the session without stopping the process, `ctrl-p,ctrl-q` by default. The
 * daemon watches the client's stdin for it, as moby's escape proxy does:
 * bytes that could start the sequence are held back and sent on only when
 * the sequence breaks.
 */
import { IsulaError } from '../errors.js';

export const DEFAULT_DETACH_KEYS = 'ctrl-p,ctrl-q';

/** `ctrl-a`…`ctrl-z`, `ctrl-@`, `ctrl-[`, `ctrl-\`, `ctrl-]`, `ctrl-^`, `ctrl-_`, `DEL`, or one character each, comma-separated. */
export function parseDetachKeys(keys: string): Buffer {
  const codes: number[] = [];
  for (const key of keys.split(',')) {
    if (key.length === 1) { codes.push(key.charCodeAt(0)); continue; }
    const m = /^ctrl-([a-z@[\\\]^_])$/.exec(key);
    if (m !== null) {
      const c = (m[1] as string).charCodeAt(0);
      codes.push(c >= 0x61 ? c - 0x60 : c - 0x40);
      continue;
    }
    if (key === 'DEL') { codes.push(127); continue; }
    throw new IsulaError('API_BAD_REQUEST', `Invalid detach keys (${keys}) provided`);
  }
  if (codes.length === 0 || codes.some((c) => c > 255)) throw new IsulaError('API_BAD_REQUEST', `Invalid detach keys (${keys}) provided`);
  return Buffer.from(codes);
}

/**
 * Filters a stdin byte stream: `push` returns what may go on to the process
 * and whether the detach sequence was completed (what follows it is dropped).
 */
export class DetachKeyFilter {
  readonly #keys: Buffer;
  #matched = 0;

  constructor(keys: Buffer) {
    this.#keys = keys;
  }

  push(chunk: Buffer): { forward: Buffer; detach: boolean } {
    const out: number[] = [];
    for (const byte of chunk) {
      if (byte === this.#keys[this.#matched]) {
        this.#matched += 1;
        if (this.#matched === this.#keys.length) return { forward: Buffer.from(out), detach: true };
        continue;
      }
      // The sequence broke: the held-back prefix goes on, then this byte is looked at afresh.
      for (let i = 0; i < this.#matched; i++) out.push(this.#keys[i] as number);
      this.#matched = 0;
      if (byte === this.#keys[0]) {
        this.#matched = 1;
        if (this.#keys.length === 1) return { forward: Buffer.from(out), detach: true };
      } else {
        out.push(byte);
      }
    }
    return { forward: Buffer.from(out), detach: false };
  }
}
