/**
 * The pod sandbox image, made offline: a one-layer image whose only file is
 * the host's catatonit (Debian's package, statically linked) as `/pause`,
 * imported under the configured `pod-sandbox-image` name. catatonit's pause
 * mode (`-P`) is what the kubernetes pause binary does: PID 1 that reaps
 * zombies and exits on SIGTERM/SIGINT.
 *
 * Such an image has no Cmd (an import carries no config), so the sandbox
 * container is given `/pause -P` when the image has neither entrypoint nor
 * cmd; a real pause image (pulled from a mirror) runs its own entrypoint.
 */
import fs from 'node:fs/promises';
import { Readable } from 'node:stream';
import type { ImageDriver } from '@isula/core';

export const PAUSE_PATH = '/pause';
export const PAUSE_ARGS = ['-P'];

/** A ustar archive of the given entries (directories and regular files), in order. */
export function ustar(entries: { name: string; mode: number; data?: Buffer }[]): Buffer {
  const blocks: Buffer[] = [];
  for (const e of entries) {
    const data = e.data;
    const isDir = data === undefined;
    const h = Buffer.alloc(512);
    const name = isDir && !e.name.endsWith('/') ? `${e.name}/` : e.name;
    if (Buffer.byteLength(name) > 99) throw new Error(`tar entry name too long: ${name}`);
    h.write(name, 0, 'utf8');
    const octal = (n: number, len: number) => n.toString(8).padStart(len - 1, '0') + '\0';
    h.write(octal(e.mode, 8), 100);
    h.write(octal(0, 8), 108);
    h.write(octal(0, 8), 116);
    h.write(octal(data === undefined ? 0 : data.length, 12), 124);
    h.write(octal(0, 12), 136);
    h.write('        ', 148);
    h.write(isDir ? '5' : '0', 156);
    h.write('ustar\u000000', 257, 'binary');
    let sum = 0;
    for (const b of h) sum += b;
    h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148);
    blocks.push(h);
    if (data !== undefined && data.length > 0) {
      blocks.push(data);
      const pad = (512 - (data.length % 512)) % 512;
      if (pad > 0) blocks.push(Buffer.alloc(pad));
    }
  }
  blocks.push(Buffer.alloc(1024));
  return Buffer.concat(blocks);
}

/** Imports the catatonit pause image as `reference` through the image driver. */
export async function buildPauseImage(driver: ImageDriver, reference: string, catatonit: string, signal: AbortSignal): Promise<void> {
  if (driver.import === undefined) throw new Error(`the ${driver.format} image driver cannot import images`);
  const binary = await fs.readFile(catatonit);
  const tar = ustar([
    { name: 'dev', mode: 0o755 },
    { name: 'etc', mode: 0o755 },
    { name: 'proc', mode: 0o555 },
    { name: 'sys', mode: 0o555 },
    { name: 'pause', mode: 0o755, data: binary },
  ]);
  await driver.import(Readable.from([tar]), { signal, reference });
}
