/**
 * What `isula network` and `isula volume` share: a subcommand with docker's
 * usage-error tail, and docker's `inspect.Inspect` over several objects.
 */
import type { Command } from 'commander';
import { DaemonError, type EngineClient } from './client.js';
import { ExitCode } from './exit-code.js';
import { compileTemplate } from './go-template.js';
import { declareOnDemand } from './lazy-declare.js';

export const out = (text: string): boolean => process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
export const err = (text: string): boolean => process.stderr.write(text.endsWith('\n') ? text : `${text}\n`);

/** A subcommand of `group` (`network`, `volume`) with docker's `See 'isula GROUP NAME --help'.` after a usage error. */
export function subcommand(group: Command, groupName: string, name: string): Command {
  return group
    .command(name)
    // The group itself takes any words (to name an unknown one); its subcommands take no extra ones, as docker's.
    .allowExcessArguments(false)
    .showHelpAfterError(`See 'isula ${groupName} ${name} --help'.`)
    .exitOverride((e) => { throw e.exitCode === 0 ? e : new ExitCode(e.exitCode); });
}

/**
 * docker's `inspect.Inspect`: each object in turn; the found ones printed as
 * an indented JSON array or through the template, then the errors, exit 1.
 * A template that does not parse is exit 64 before any request.
 */
export async function inspectEach(client: EngineClient, names: readonly string[], format: string | undefined, opts: {
  path: (name: string) => string;
  errorOf: (e: DaemonError, name: string) => string;
  /** A name answered as not found without asking (docker does so for an empty volume name). */
  notFoundWithoutAsking?: (name: string) => string | undefined;
}): Promise<void> {
  let render: ((value: unknown) => string) | undefined;
  if (format !== undefined) {
    try {
      render = compileTemplate(format);
    } catch (e) {
      err(`Template parsing error: ${(e as Error).message}`);
      throw new ExitCode(64);
    }
  }
  const found: unknown[] = [];
  const errors: string[] = [];
  for (const name of names) {
    const early = opts.notFoundWithoutAsking?.(name);
    if (early !== undefined) { errors.push(early); continue; }
    try {
      found.push(await client.json(opts.path(name)));
    } catch (e) {
      if (!(e instanceof DaemonError)) throw e;
      errors.push(opts.errorOf(e, name));
    }
  }
  if (render === undefined) out(JSON.stringify(found, null, 4));
  // docker's TemplateInspector: each result and a newline; a lone newline when none was found.
  else process.stdout.write(found.length === 0 ? '\n' : found.map((v) => `${render(v)}\n`).join(''));
  if (errors.length > 0) {
    err(errors.join('\n'));
    throw new ExitCode(1);
  }
}

/**
 * Declares a command group (`network`, `volume`) whose subcommands are
 * declared only when it runs or shows its help (`isula help GROUP`), so
 * other commands do not pay for declaring them. The group alone prints its
 * help on stderr and exits 0 (docker's `ShowHelp`).
 */
export function lazyGroup(program: Command, name: string, description: string, declare: (group: Command) => void): Command {
  const group = program
    .command(name)
    .description(description)
    .allowExcessArguments()
    .exitOverride((e) => { throw e.exitCode === 0 ? e : new ExitCode(e.exitCode); })
    .action((_opts: unknown, cmd: Command) => {
      const [word] = cmd.args;
      if (word !== undefined) cmd.error(`error: unknown command '${word}'`, { code: 'commander.unknownCommand' });
      cmd.outputHelp({ error: true });
    });
  declareOnDemand(program, group, () => { declare(group); });
  return group;
}
