/** A mistake in how a command was called: reported as `isula: <message>`, exit 1. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}
