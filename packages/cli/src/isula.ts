/** Entry of the bundled `isula` binary: run and exit with the command's code. */
import { run } from './main.js';

process.exitCode = await run(process.argv);
