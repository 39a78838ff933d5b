/** Entry of the bundled `isula` binary: run and exit with the command's code. */
import { run } from './main.js';

// No top-level await: the bundle is CommonJS (see scripts/bundle.mjs).
void run(process.argv).then((code) => { process.exitCode = code; });
