/**
 * Signal names and numbers as Docker's API and CLI take them: `TERM`,
 * `SIGTERM`, `sigterm` or `15`. One parser for core and the runtime drivers.
 */
import { constants } from 'node:os';
import { IsulaError } from './errors.js';

/** The signal's number (1–64); an unknown name or number is CONTAINER_CONFIG_INVALID. */
export function signalNumber(signal: string | number): number {
  if (typeof signal === 'number' || /^\d+$/.test(signal)) {
    const n = Number(signal);
    if (Number.isInteger(n) && n > 0 && n < 65) return n;
  } else {
    const upper = signal.toUpperCase();
    const n = constants.signals[(upper.startsWith('SIG') ? upper : `SIG${upper}`) as NodeJS.Signals];
    if (n !== undefined) return n;
    // Real-time signals as Docker names them: RTMIN is 34 (glibc keeps 32 and 33), RTMAX 64.
    const rt = /^(?:SIG)?RT(MIN|MAX)(?:([+-])(\d+))?$/.exec(upper);
    if (rt !== null) {
      const offset = rt[3] === undefined ? 0 : Number(rt[3]) * (rt[2] === '-' ? -1 : 1);
      const num = (rt[1] === 'MIN' ? 34 : 64) + offset;
      if (num >= 34 && num <= 64) return num;
    }
  }
  throw new IsulaError('CONTAINER_CONFIG_INVALID', `Invalid signal: ${signal}`);
}
