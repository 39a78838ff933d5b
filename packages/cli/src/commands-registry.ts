/**
 * Registry commands: pull, push, login, logout, and the pull that run and
 * create do (`pullImage`). Requests, output and words follow docker 20.10's
 * CLI (`cli/command/image/pull.go`, `push.go`, `registry/login.go`,
 * `logout.go`); the daemon keeps the credentials (iSulad's way), so no
 * `X-Registry-Auth` is sent and logout asks the daemon to forget them.
 */
import type { Command } from 'commander';
import { DaemonError, type EngineClient } from './client.js';
import { checkLoginFlags, passwordFlagWarning, passwordFromStdin, promptLine, promptsNeeded, readAllStdin, type LoginFlags } from './login.js';
import { followProgress, type ProgressOutput } from './progress.js';
import {
  DEFAULT_DOMAIN, familiarName, isNameOnly, parseNormalizedNamed, pullQuery, referenceString, registryHostname, tagNameOnly,
} from './reference.js';
import { UsageError } from './usage-error.js';

const out = (text: string) => process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
const err = (text: string) => process.stderr.write(text.endsWith('\n') ? text : `${text}\n`);

/**
 * docker's `pullImage` of create/run: `POST /images/create` for `image`,
 * its progress on `output` (none when undefined). Throws DaemonError (the
 * answer or an error in the stream) or UsageError (a name that does not parse).
 */
export async function pullImage(client: EngineClient, image: string, platform: string | undefined, output: ProgressOutput | undefined): Promise<void> {
  const ref = parseNormalizedNamed(image);
  await followProgress(client, '/images/create', { query: { ...pullQuery(ref), platform }, out: output });
}

/** The server login and logout name: docker.io by default, else the host of what was typed. */
function serverOf(arg: string | undefined): string {
  const host = arg === undefined ? '' : registryHostname(arg);
  return host === '' ? DEFAULT_DOMAIN : host;
}

/** isulad's answer when it keeps no credentials for the server (`REGISTRY_CREDENTIALS_NOT_FOUND`, 404). */
const isNotLoggedIn = (e: unknown) =>
  e instanceof DaemonError && e.status === 404 && (e.code === 'REGISTRY_CREDENTIALS_NOT_FOUND' || e.message.startsWith('Not logged in'));

export function registerRegistryCommands(program: Command, client: () => EngineClient): void {
  program
    .command('pull')
    .description('Pull an image from a registry')
    .argument('<name>', 'NAME[:TAG|@DIGEST]')
    .option('-q, --quiet', 'suppress verbose output (print only the reference pulled)')
    .option('--platform <os/arch[/variant]>', 'pull this platform of a multi-platform image')
    .action(async (name: string, opts: { quiet?: boolean; platform?: string }) => {
      let ref = parseNormalizedNamed(name);
      if (isNameOnly(ref)) {
        ref = tagNameOnly(ref);
        if (!opts.quiet) out(`Using default tag: ${ref.tag ?? 'latest'}`);
      }
      await followProgress(client(), '/images/create', {
        query: { ...pullQuery(ref), platform: opts.platform },
        out: opts.quiet ? undefined : process.stdout,
      });
      // docker 20.10 ends a pull with the full reference, -q or not.
      out(referenceString(ref));
    });

  program
    .command('push')
    .description('Push an image to a registry')
    .argument('<name>', 'NAME[:TAG]')
    .option('-q, --quiet', 'suppress verbose output (print only the reference pushed)')
    .action(async (name: string, opts: { quiet?: boolean }) => {
      let ref = parseNormalizedNamed(name);
      if (ref.digest !== undefined) throw new UsageError('cannot push a digest reference');
      if (isNameOnly(ref)) {
        ref = tagNameOnly(ref);
        if (!opts.quiet) out(`Using default tag: ${ref.tag ?? 'latest'}`);
      }
      await followProgress(client(), `/images/${encodeURIComponent(familiarName(ref))}/push`, {
        query: { tag: ref.tag },
        out: opts.quiet ? undefined : process.stdout,
      });
      if (opts.quiet) out(referenceString(ref));
    });

  program
    .command('login')
    .description('Log in to a registry (the daemon checks the credentials with it and keeps them)')
    .argument('[server]', `registry host[:port] (default ${DEFAULT_DOMAIN}); a scheme and path are dropped`)
    .option('-u, --username <username>', 'username')
    .option('-p, --password <password>', 'password (insecure: prefer --password-stdin)')
    .option('--password-stdin', 'take the password from stdin')
    .action(async (serverArg: string | undefined, opts: LoginFlags) => {
      const warning = passwordFlagWarning(opts);
      if (warning !== undefined) err(warning);
      checkLoginFlags(opts);
      let password = opts.password ?? '';
      if (opts.passwordStdin) password = passwordFromStdin(await readAllStdin());
      let username = (opts.username ?? '').trim();
      const need = promptsNeeded(username, password, process.stdin.isTTY === true);
      if (need.username) {
        username = (await promptLine('Username: ')).trim();
        if (username === '') throw new UsageError('Non-null Username Required');
      }
      if (need.password) {
        password = await promptLine('Password: ', true);
        if (password === '') throw new UsageError('Password Required');
      }
      const res = await client().request('/auth', {
        method: 'POST',
        body: { username, password, serveraddress: serverOf(serverArg) },
      });
      let status = '';
      try {
        const parsed = JSON.parse(res.body.toString('utf8')) as { Status?: unknown };
        if (typeof parsed.Status === 'string') status = parsed.Status;
      } catch { /* 204, or no JSON: the login still succeeded */ }
      out(status === '' ? 'Login Succeeded' : status);
    });

  program
    .command('logout')
    .description('Log out from a registry (the daemon forgets the credentials it keeps)')
    .argument('[server]', `registry host[:port] (default ${DEFAULT_DOMAIN})`)
    .action(async (serverArg: string | undefined) => {
      const server = serverOf(serverArg);
      try {
        await client().request('/auth/logout', { method: 'POST', body: { serveraddress: server } });
      } catch (e) {
        // docker: nothing stored is no error.
        if (isNotLoggedIn(e)) { out(`Not logged in to ${server}`); return; }
        throw e;
      }
      out(`Removing login credentials for ${server}`);
    });
}
