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
 * Runs `declare` once: when `cmd` is about to run (program's preSubcommand),
 * when its help is rendered (`isula help VERB` renders without dispatching),
 * or when declareEverything() asks.
 */
export function declareOnDemand(program: Command, cmd: Command, declare: () => void): void {
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
