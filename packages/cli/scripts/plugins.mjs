// esbuild plugins shared by the CLI bundle (bundle.mjs) and its start-up
// snapshot (snapshot.mjs).

/**
 * Resolves `node:child_process` to a proxy that requires the real module on
 * first use: commander imports it for external subcommands, which isula has
 * none of.
 */
export const lazyChildProcess = {
  name: 'lazy-child-process',
  setup(b) {
    b.onResolve({ filter: /^(node:)?child_process$/ }, (args) =>
      args.namespace === 'lazy' ? undefined : { path: 'child_process', namespace: 'lazy' });
    b.onLoad({ filter: /.*/, namespace: 'lazy' }, () => ({
      contents: "let real; const get = () => (real ??= require('node:child_process'));\nmodule.exports = new Proxy({}, { get: (_, k) => get()[k] });\n",
      loader: 'js',
    }));
  },
};

/**
 * esbuild's `__toESM` (how a bundled ES module sees a CommonJS one: `import fs
 * from 'node:fs'`, `import * as path from 'node:path'`, in our code and in
 * commander's) copies every property of the module into a new object, a
 * getter each: ~12 such imports at start-up (fs, path, net, process) cost
 * ~2 ms of every `isula` call. This replaces it, in the bundle `code`, with a
 * proxy that reads through to the module and answers `default` with it: the
 * same values, nothing copied. Throws when esbuild's helper is not there
 * exactly once (an esbuild that emits it otherwise must be looked at).
 */
export function cheapInterop(code) {
  const helper = 'var __toESM=(mod,isNodeMode,target)=>';
  const at = code.indexOf(helper);
  if (at < 0 || code.indexOf(helper, at + 1) >= 0) throw new Error(`cheapInterop: esbuild's "${helper}" is not in the bundle exactly once`);
  const proxy = 'var __toESM=(mod,isNodeMode)=>mod!=null&&(isNodeMode||!mod.__esModule)'
    + '?new Proxy(mod,{get:(t,k)=>k==="default"?t:Reflect.get(t,k)}):__toESMCopy(mod,isNodeMode);';
  return `${code.slice(0, at)}${proxy}var __toESMCopy=(mod,isNodeMode,target)=>${code.slice(at + helper.length)}`;
}
