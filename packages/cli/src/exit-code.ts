/** Thrown by a command that already reported its failures on stderr: exit with `code`, print nothing more. */
export class ExitCode extends Error {
  constructor(readonly code: number) {
    super(`exit ${code}`);
  }
}
