#!/usr/bin/env node
'use strict';
// The `isula` entry (written to dist/isula.cjs by scripts/bundle.mjs, which
// puts the bundle's build id in place of BUILD_ID). It compiles the bundle,
// dist/isula-main.cjs, with a V8 code cache taken at the end of earlier runs,
// so the functions those runs compiled (commander's parser, the request path,
// the output formatting) come back compiled: Node's own compile cache holds
// only what a compile produces before the code runs. See the README, "Why it
// starts fast". The cache is a private file of this dist directory, keyed by
// build, the bundle's mtime, Node version and arch; one that cannot be read or written (another
// user's install, a read-only tree) only costs the speed-up.
const fs = require('node:fs');
const path = require('node:path');
const vm = require('node:vm');

const BUILD = 'BUILD_ID';
const bundle = path.join(__dirname, 'isula-main.cjs');
const cacheDir = path.join(__dirname, '.code-cache');
// The bundle's mtime too: V8 checks only a cache's source length, and a bundle
// edited in place (not rebuilt) must not run an older text's code.
const fd = fs.openSync(bundle, 'r');
const cacheFile = path.join(cacheDir, `isula-main-${BUILD}-${Math.trunc(fs.fstatSync(fd).mtimeMs)}-${process.version}-${process.arch}.bin`);
const source = fs.readFileSync(fd, 'utf8');
fs.closeSync(fd);

let cachedData;
try {
  cachedData = fs.readFileSync(cacheFile);
} catch {
  cachedData = undefined;
}
const script = new vm.Script(`(function (exports, require, module, __filename, __dirname) {${source}\n})`, {
  filename: bundle,
  cachedData,
});
const mod = { exports: {}, filename: bundle, id: bundle, loaded: false };

/**
 * Rewrites the cache when this run may have compiled what it lacks: no
 * cache, one V8 refused, or a command or flag (the bundle's
 * `codeCacheKeys`) no run has written it for yet.
 */
function keepCache() {
  const keys = typeof mod.exports.codeCacheKeys === 'function' ? mod.exports.codeCacheKeys() : undefined;
  if (!Array.isArray(keys)) return;
  const seenFile = `${cacheFile}.seen`;
  let seen = [];
  if (cachedData !== undefined && !script.cachedDataRejected) {
    try {
      seen = fs.readFileSync(seenFile, 'utf8').split('\n').filter((k) => k !== '');
    } catch {
      seen = [];
    }
    if (keys.every((k) => seen.includes(k))) return;
  }
  const tmp = `${cacheFile}.${process.pid}.tmp`;
  try {
    fs.mkdirSync(cacheDir, { recursive: true, mode: 0o755 });
    fs.writeFileSync(tmp, script.createCachedData());
    fs.renameSync(tmp, cacheFile);
    fs.writeFileSync(tmp, `${[...new Set([...seen, ...keys])].join('\n')}\n`);
    fs.renameSync(tmp, seenFile);
  } catch {
    try { fs.rmSync(tmp, { force: true }); } catch { /* nothing to clean */ }
  }
}
process.once('exit', keepCache);
script.runInThisContext()(mod.exports, require('node:module').createRequire(bundle), mod, bundle, __dirname);
