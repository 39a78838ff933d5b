/**
 * Parts of the command tree declared on demand (create/run's flags, the
 * stream commands' options, the network and volume subcommands): see the
 * README, "Why it starts fast". Each lazy part registers how to declare it,
 * so that the few commands that need the whole tree (`completion`, `__docs`)
 * can declare everything without knowing which parts are lazy.
 */
import type { Command } from 'commander';

const pending = new WeakMap<Command, () => void>();

/**
 * What a command isula will not run is declared into: every method returns
 * the stand-in itself, so a registrar's chain (`.command().description()
 * .option()...action()`) declares nothing. Only for declareOnly().
 */
const undeclared: Command = new Proxy(function undeclaredCommand() {}, {
  get: (_target, key) => (key === 'then' ? undefined : () => undeclared),
  set: () => true,
}) as unknown as Command;

/**
 * Runs `declare` once: when `cmd` is about to run (program's preSubcommand),
 * when its help is rendered (`isula help VERB` renders without dispatching),
 * or when declareEverything() asks.
 */
export function declareOnDemand(program: Command, cmd: Command, declare: () => void): void {
  if (cmd === undeclared) return; // a command this call does not run (declareOnly)
  let declared = false;
  const ensure = (): void => {
    if (!declared) { declared = true; declare(); }
  };
  pending.set(cmd, ensure);
  program.hook('preSubcommand', (_program, sub) => { if (sub === cmd) ensure(); });
  const helpInformation = cmd.helpInformation.bind(cmd);
  cmd.helpInformation = (context) => { ensure(); return helpInformation(context); };
}

/** Declares every lazy part under `cmd`, subcommands declared on demand included. */
export function declareEverything(cmd: Command): void {
  pending.get(cmd)?.();
  for (const sub of cmd.commands) declareEverything(sub);
}

/**
 * Runs `register` with only the top-level command named `verb` really declared
 * into `program` (the others go to a stand-in that declares nothing): the
 * ~40 other commands' options, arguments and help texts cost more than the
 * rest of a call's JavaScript (README, "Why it starts fast"). Returns whether
 * `verb` was declared: when not (an unknown word, a typo to suggest a
 * command for), the caller must declare the whole tree instead.
 */
export function declareOnly(program: Command, verb: string, register: () => void): boolean {
  const command = program.command.bind(program);
  const only = (nameAndArgs: string, ...rest: unknown[]): Command =>
    nameAndArgs.split(' ', 1)[0] === verb ? (command as (...a: unknown[]) => Command)(nameAndArgs, ...rest) : undeclared;
  program.command = only as typeof program.command;
  try {
    register();
  } finally {
    delete (program as { command?: unknown }).command;
  }
  return program.commands.some((c) => c.name() === verb);
}
