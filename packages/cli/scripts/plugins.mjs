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
