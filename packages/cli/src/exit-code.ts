/** Thrown by a command that already reported its failures on stderr: exit with `code`, print nothing more. */
export class ExitCode extends Error {
  constructor(readonly code: number) {
    super(`exit ${code}`);
  }
}

/**
 * A failure of `run`, `create` or `start -a`, which exit with docker's codes
 * (125 engine or usage error, 126 cannot invoke, 127 not found). Printed like
 * docker: `isula: MESSAGE.` and, with `helpFor`, `See 'isula run --help'.`
 */
export class StatusError extends Error {
  override readonly name = 'StatusError';
  constructor(message: string, readonly code: number, readonly helpFor?: string) {
    super(message);
  }
}
