// Builder script of the CLI's start-up snapshot (scripts/bundle.mjs bundles it
// into one file and runs `node --build-snapshot-config` on it). Evaluating the
// bundle here puts commander and every CLI module, already evaluated, into the
// snapshot; what a call depends on (argv, env, cwd, stdio, the clock, the time
// zone) is read by run() at run time, in the deserialized main function below.
// Nothing here may open a socket, an fd or a timer: they would not survive.
import v8 from 'node:v8';
import { run } from '../dist/src/main.js';

v8.startupSnapshot.setDeserializeMainFunction(() => {
  // The launcher passes dist/isula.cjs as the first argument, so process.argv
  // has the plain bundle's shape: [node, .../isula.cjs, ...user arguments].
  void run(process.argv).then((code) => { process.exitCode = code; });
});
