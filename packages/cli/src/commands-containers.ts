/**
 * Container commands: create, run, start, stop, restart, kill, rm, ps,
 * inspect (containers and images), wait, pause, unpause, rename, update, port.
 * Output and exit codes follow docker's: names echoed one a line, per-container
 * errors on stderr and exit 1 at the end; run/create/start -a use 125/126/127.
 */
import { closeSync, openSync, rmSync, writeSync } from 'node:fs';
import { Option, type Command } from 'commander';
import { attachContainer, monitorTtySize, rawTerminal, type AttachSession } from './attach.js';
import { DaemonError, DaemonUnreachableError, type EngineClient } from './client.js';
import type { ContainerCreateBody, ContainerSummary, RestartPolicy, WaitResponse } from './docker-types.js';
import { ExitCode, StatusError } from './exit-code.js';
import { alignTabs, compileRowTemplate } from './format.js';
import { compileTemplate } from './go-template.js';
import { CONTAINER_FIELDS, CONTAINER_METHODS, DEFAULT_PS_TABLE, containerRow } from './ps-format.js';
import { pullImage } from './commands-registry.js';
import { familiarString, parseAnyReference, splitRepoTag, tagNameOnly, type NamedReference } from './reference.js';
import { addCreateFlags, buildCreateBody, buildResources, foldAliases, parsePullPolicy, parseRestartPolicy, type RunFlags } from './run-options.js';
import { declareOnDemand } from './lazy-declare.js';
import { UsageError } from './usage-error.js';
import { managementHelp } from './management.js';
import { confirmPrune } from './commands-volume.js';
import { formatPruneReport } from './volume-format.js';

const CONTAINER_PRUNE_WARNING = 'WARNING! This will remove all stopped containers.\nAre you sure you want to continue?';

const out = (text: string) => process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
const err = (text: string) => process.stderr.write(text.endsWith('\n') ? text : `${text}\n`);
const collect = (v: string, prev: string[] = []) => [...prev, v];
const cpath = (id: string, action = '') => `/containers/${encodeURIComponent(id)}${action}`;

/** How docker words an error of one container among several: the daemon's answer prefixed. */
export function describe(e: unknown): string {
  if (e instanceof DaemonError) return `Error response from daemon: ${e.message}`;
  return (e as Error)?.message ?? String(e);
}

/**
 * Runs `fn` for each container; prints the name on success (docker echoes what
 * was typed) and the error on stderr otherwise, then exits 1 if any failed.
 */
async function forEachContainer(names: readonly string[], fn: (name: string) => Promise<string | undefined | void>, tolerate?: (e: unknown) => boolean): Promise<void> {
  let failed = false;
  for (const name of names) {
    try {
      const line = await fn(name);
      out(line ?? name);
    } catch (e) {
      err(describe(e));
      if (tolerate?.(e) !== true) failed = true;
    }
  }
  if (failed) throw new ExitCode(1);
}

/** Docker's usage-error tail (`See 'isula stop --help'.`) and exit code 125 for commander's own errors in create/run. */
export function containerCommand(program: Command, name: string, statusOnUsageError = 1): Command {
  return program
    .command(name)
    .showHelpAfterError(`See 'isula ${name} --help'.`)
    .exitOverride((e) => { throw e.exitCode === 0 ? e : new ExitCode(statusOnUsageError === 1 ? e.exitCode : statusOnUsageError); });
}

/** Turns any failure of run/create/start -a/exec into docker's exit code and message. */
export function toStatusError(e: unknown, command: string): unknown {
  if (e instanceof ExitCode || e instanceof StatusError) return e;
  if (e instanceof UsageError) return new StatusError(e.message, 125, command);
  if (e instanceof DaemonError) {
    // 127/126 whenever the daemon says the command is missing or not executable: at start as
    // docker, and at create for an external rootfs, which is checked there.
    let code = 125;
    if (e.code === 'CONTAINER_CMD_NOT_FOUND') code = 127;
    if (e.code === 'CONTAINER_CMD_NOT_EXECUTABLE') code = 126;
    return new StatusError(`Error response from daemon: ${e.message}`, code, command);
  }
  if (e instanceof DaemonUnreachableError) return new StatusError(e.message, 125);
  return new StatusError((e as Error)?.message ?? String(e), 125);
}

/** `POST /containers/create`; with --cidfile, the id file is claimed first and removed if create fails (docker's cidFile). */
async function createContainer(client: EngineClient, flags: RunFlags, body: ContainerCreateBody): Promise<string> {
  let cidFd: number | undefined;
  if (flags.cidfile !== undefined) {
    try {
      cidFd = openSync(flags.cidfile, 'wx', 0o644);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EEXIST') throw new UsageError(`container ID file found, make sure the other container isn't running or delete ${flags.cidfile}`);
      throw new Error(`failed to create the container ID file: ${(e as Error).message}`);
    }
  }
  try {
    const res = await client.json<{ Id: string; Warnings?: string[] | null }>('/containers/create', {
      method: 'POST', query: { name: flags.name }, body,
    });
    for (const w of res.Warnings ?? []) err(`WARNING: ${w}`);
    if (cidFd !== undefined) writeSync(cidFd, res.Id);
    return res.Id;
  } catch (e) {
    if (cidFd !== undefined && flags.cidfile !== undefined) { closeSync(cidFd); cidFd = undefined; rmSync(flags.cidfile, { force: true }); }
    throw e;
  } finally {
    if (cidFd !== undefined) closeSync(cidFd);
  }
}

/** The daemon's answer to a create whose image is not there: 404 `No such image: busybox:latest`. */
const isNoSuchImage = (e: unknown) => e instanceof DaemonError && e.status === 404 && e.message.startsWith('No such image');

/**
 * docker 20.10's create with `--pull`: `always` pulls first; `missing` (the
 * default) pulls when create answers "No such image", then creates once
 * more; `never` reports the answer as it is. As in docker, stdout carries
 * only the id: "Unable to find image 'busybox:latest' locally" and the pull's
 * progress go to stderr, and -q keeps both back. An `--external-rootfs`
 * container's image argument is only a name: it is never pulled.
 */
async function createWithPull(client: EngineClient, flags: RunFlags, body: ContainerCreateBody): Promise<string> {
  const policy = parsePullPolicy(flags.pull);
  const image = body.Image ?? '';
  const pullable = flags.externalRootfs === undefined;
  // Not process.stderr until a pull needs it: creating the stream costs every create ~0.5 ms.
  const progress = (): NodeJS.WriteStream | undefined => (flags.quiet ? undefined : process.stderr);
  if (policy === 'always' && pullable) await pullImage(client, image, flags.platform, progress());
  try {
    return await createContainer(client, flags, body);
  } catch (e) {
    if (policy !== 'missing' || !pullable || !isNoSuchImage(e)) throw e;
    let ref: NamedReference | undefined;
    try {
      ref = parseAnyReference(image);
    } catch {
      throw e; // not a name docker would pull: the daemon's answer stands
    }
    if (ref === undefined) throw e; // a full image id
    if (!flags.quiet) err(`Unable to find image '${familiarString(tagNameOnly(ref))}' locally`);
    await pullImage(client, image, flags.platform, progress());
    return createContainer(client, flags, body);
  }
}

/**
 * `POST /containers/{id}/wait?condition=…`, issued before start. `armed`
 * settles when the daemon has sent its headers (docker's daemon flushes them
 * once the waiter is registered), so start cannot race past the wait; or,
 * from a daemon that sends its headers only with the result, after
 * WAIT_ARM_FALLBACK_MS, by when the request has long been read.
 */
export function waitForExit(client: EngineClient, id: string, condition: 'next-exit' | 'removed' | 'not-running'): { armed: Promise<void>; result: Promise<WaitResponse>; cancel(): void } {
  let onHeaders: () => void = () => {};
  const armed = new Promise<void>((resolve) => { onHeaders = resolve; });
  const abort = new AbortController();
  const result = client.json<WaitResponse>(cpath(id, '/wait'), { method: 'POST', query: { condition }, onHeaders, signal: abort.signal });
  result.then(onHeaders, onHeaders);
  const fallback = setTimeout(onHeaders, WAIT_ARM_FALLBACK_MS);
  void armed.then(() => clearTimeout(fallback));
  return { armed, result, cancel: () => abort.abort() };
}

const WAIT_ARM_FALLBACK_MS = 1000;

/** How long a failed `run --rm` waits for the daemon to remove the container before giving up on it. */
const REMOVAL_WAIT_MS = 3000;

interface AttachedRun {
  id: string;
  tty: boolean;
  stdin: boolean;
  stdout: boolean;
  stderr: boolean;
  autoRemove: boolean;
  /** `--detach-keys`; the daemon's default (ctrl-p,ctrl-q) when not given. */
  detachKeys?: string | undefined;
}

/**
 * docker's attached run/start -a: attach → wait (armed) → start → copy the
 * output until the daemon ends the stream → the container's exit code.
 * Detaching (the detach keys) returns 0 at once and leaves the container
 * running, as docker's run and start do. With a TTY on a terminal, the
 * container's TTY follows the window size.
 * Returns the exit code; throws StatusError for an engine error.
 */
async function runAttached(client: EngineClient, r: AttachedRun, command: string): Promise<number> {
  let session: AttachSession | undefined;
  if (r.stdin || r.stdout || r.stderr) {
    session = await attachContainer(client, r.id, { stdin: r.stdin, stdout: r.stdout, stderr: r.stderr, tty: r.tty, detachKeys: r.detachKeys });
  }
  const wait = waitForExit(client, r.id, r.autoRemove ? 'removed' : 'next-exit');
  wait.result.catch(() => { /* read below */ });
  await wait.armed;
  const restoreTerminal = r.tty && r.stdin ? rawTerminal() : () => {};
  // Without a TTY, signals to isula go to the container (docker's --sig-proxy).
  const forward = (signal: NodeJS.Signals) => { client.request(cpath(r.id, '/kill'), { method: 'POST', query: { signal } }).catch(() => {}); };
  const proxied: NodeJS.Signals[] = r.tty ? [] : ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2'];
  for (const s of proxied) process.on(s, forward);
  let stopResize = () => {};
  try {
    try {
      await client.request(cpath(r.id, '/start'), { method: 'POST' });
    } catch (e) {
      session?.close();
      // docker waits for an AutoRemove container to be removed before it reports; bounded here,
      // so a daemon that keeps the container cannot hang the client.
      if (r.autoRemove) {
        const timer = setTimeout(() => wait.cancel(), REMOVAL_WAIT_MS);
        await wait.result.catch(() => {});
        clearTimeout(timer);
      }
      wait.cancel();
      throw toStatusError(e, command);
    }
    if (session !== undefined && r.tty && process.stdout.isTTY) stopResize = monitorTtySize(client, cpath(r.id));
    if (session !== undefined) {
      try {
        if (await session.finished === 'detached') {
          // docker: the user left; the container goes on and its code is not waited for.
          wait.cancel();
          return 0;
        }
      } catch (e) {
        err(`isula: ${(e as Error).message}`);
      }
    }
    let status: WaitResponse;
    try {
      status = await wait.result;
    } catch (e) {
      throw new StatusError(`Error waiting for container: ${describe(e)}`, 125);
    }
    if (status.Error?.Message) throw new StatusError(`Error waiting for container: ${status.Error.Message}`, 125);
    return status.StatusCode;
  } finally {
    stopResize();
    for (const s of proxied) process.off(s, forward);
    restoreTerminal();
  }
}

async function runCommand(client: EngineClient, flags: RunFlags, image: string, command: string[]): Promise<number> {
  const body = buildCreateBody(flags, image, command);
  if (!flags.detach && body.AttachStdin && body.Tty && !process.stdin.isTTY) throw new UsageError('the input device is not a TTY');
  const id = await createWithPull(client, flags, body);
  const attached = body.AttachStdin === true || body.AttachStdout === true || body.AttachStderr === true;
  if (!attached) {
    // docker prints the id before it starts the container, then only start's errors.
    out(id);
    try {
      await client.request(cpath(id, '/start'), { method: 'POST' });
    } catch (e) {
      throw toStatusError(e, 'run');
    }
    if (flags.detach === true) return 0;
    const status = await waitForExit(client, id, 'not-running').result;
    return status.StatusCode;
  }
  return runAttached(client, {
    id,
    tty: body.Tty === true,
    stdin: body.AttachStdin === true,
    stdout: body.AttachStdout === true,
    stderr: body.AttachStderr === true,
    autoRemove: body.HostConfig.AutoRemove === true,
    detachKeys: flags.detachKeys,
  }, 'run');
}

type PortMap = Record<string, { HostIp?: string; HostPort?: string }[] | null> | null | undefined;

interface ContainerJson {
  Id: string;
  Name?: string;
  Config?: { Tty?: boolean; OpenStdin?: boolean; AttachStdout?: boolean; AttachStderr?: boolean };
  HostConfig?: { AutoRemove?: boolean };
  NetworkSettings?: { Ports?: PortMap };
}

const isNotFound = (e: unknown) => e instanceof DaemonError && e.status === 404;

/** What `inspect` looks for, in docker's order when no --type is given, and where. */
const INSPECT_KINDS = ['container', 'image', 'network', 'volume'];
const INSPECT_PATHS: Readonly<Record<string, (name: string) => string>> = {
  container: (n) => `/containers/${n}/json`,
  image: (n) => `/images/${n}/json`,
  network: (n) => `/networks/${n}`,
  volume: (n) => `/volumes/${n}`,
};

/** `inspect`: containers, then images, as docker tries each object type in turn. */
async function inspectObjects(client: EngineClient, names: readonly string[], opts: { format?: string; size?: boolean; type?: string }): Promise<void> {
  const render = opts.format === undefined ? undefined : compileTemplate(opts.format);
  const found: unknown[] = [];
  const missing: string[] = [];
  for (const name of names) {
    // docker's autodetection order; a daemon without network management (501) has no such network.
    const kinds = opts.type === undefined ? INSPECT_KINDS : [opts.type];
    let value: unknown;
    for (const kind of kinds) {
      try {
        const where = INSPECT_PATHS[kind] ?? INSPECT_PATHS['container'];
        value = await client.json(where?.(encodeURIComponent(name)) ?? '', { query: { size: kind === 'container' && opts.size ? '1' : undefined } });
        break;
      } catch (e) {
        if (!isNotFound(e) && !(opts.type === undefined && e instanceof DaemonError && e.status === 501)) throw e;
      }
    }
    if (value === undefined) missing.push(name);
    else found.push(value);
  }
  if (render === undefined) out(JSON.stringify(found, null, 4));
  else for (const v of found) out(render(v));
  if (missing.length > 0) {
    const what = opts.type === undefined ? 'object' : opts.type;
    for (const name of missing) err(`Error: No such ${what}: ${name}`);
    throw new ExitCode(1);
  }
}

interface PsOptions { all?: boolean; quiet?: boolean; last?: string; latest?: boolean; size?: boolean; trunc: boolean; filter?: string[]; format?: string }

/** `key=value` flags into the API's `filters` JSON (docker's `filters.ParseFlag`). */
export function filtersJson(flags: readonly string[], extra: Record<string, string[]> = {}): string | undefined {
  // No prototype: a filter named "constructor" or "__proto__" is a key like any other (the daemon
  // refuses it by name), not Object.prototype's (found by the fuzzer: 'push is not a function').
  const filters = Object.create(null) as Record<string, string[]>;
  for (const f of flags) {
    const eq = f.indexOf('=');
    if (eq <= 0) throw new UsageError(`bad format of filter ${JSON.stringify(f)} (expected name=value)`);
    (filters[f.slice(0, eq).trim().toLowerCase()] ??= []).push(f.slice(eq + 1).trim());
  }
  for (const [k, v] of Object.entries(extra)) (filters[k] ??= []).push(...v);
  return Object.keys(filters).length > 0 ? JSON.stringify(filters) : undefined;
}

/** docker's ps query: -l is -n 1; -n implies -a; --format using .Size asks for sizes. */
export function psQuery(o: PsOptions): Record<string, string | undefined> {
  let limit = o.last === undefined ? -1 : Number(o.last);
  if (!Number.isInteger(limit)) throw new UsageError(`invalid argument ${JSON.stringify(o.last)} for "-n, --last" flag: not an integer`);
  if (o.latest && limit === -1) limit = 1;
  const size = o.size === true || (o.format !== undefined && o.format.includes('.Size'));
  return {
    all: o.all || limit > 0 ? '1' : undefined,
    limit: limit > 0 ? String(limit) : undefined,
    size: size ? '1' : undefined,
    filters: filtersJson(o.filter ?? []),
  };
}

/** Renders `containers` as ps prints them. */
export function formatPs(containers: readonly ContainerSummary[], o: PsOptions, nowMs = Date.now()): string {
  let format = o.format ?? 'table';
  if (o.quiet && (o.format === undefined || o.format === 'table')) format = '{{.ID}}';
  else if (format === 'table') format = o.size ? `${DEFAULT_PS_TABLE}\t{{.Size}}` : DEFAULT_PS_TABLE;
  const template = compileRowTemplate(format, CONTAINER_FIELDS, CONTAINER_METHODS);
  const lines = containers.map((c) => template.render(containerRow(c, o.trunc, nowMs), (_m, key) => c.Labels?.[key] ?? ''));
  if (template.isTable) return alignTabs([template.header(), ...lines]);
  return lines.join('\n');
}

/**
 * `port` (docker 20.10's `runPort`): every binding in NetworkSettings.Ports
 * as `80/tcp -> 0.0.0.0:8080`, or the host addresses of PRIVATE_PORT[/PROTO]
 * (tcp by default) as `0.0.0.0:8080`. As 20.10, `HOST_IP:HOST_PORT` is joined
 * with a colon (`:::8080` for IPv6); sorted by port then protocol (20.10
 * prints Go's map order). A port with no bindings (null, or absent) is
 * docker's `Error: No public port '80/tcp' published for NAME`.
 */
export function formatPorts(ports: PortMap, name: string, filter?: string): string[] {
  const hostPort = (b: { HostIp?: string; HostPort?: string }) => `${b.HostIp ?? ''}:${b.HostPort ?? ''}`;
  const entries = Object.entries(ports ?? {}).sort(([a], [b]) => parseInt(a, 10) - parseInt(b, 10) || a.localeCompare(b));
  if (filter !== undefined) {
    let port = filter;
    let proto = 'tcp';
    const slash = filter.indexOf('/');
    if (slash >= 0 && slash < filter.length - 1) { port = filter.slice(0, slash); proto = filter.slice(slash + 1); }
    const key = `${natPort(port)}/${proto}`;
    const bindings = entries.find(([k]) => k === key)?.[1];
    if (bindings === undefined || bindings === null) throw new Error(`Error: No public port '${port}/${proto}' published for ${name}`);
    return bindings.map(hostPort);
  }
  return entries.flatMap(([k, bindings]) => (bindings ?? []).map((b) => `${k} -> ${hostPort(b)}`));
}

/** nat.NewPort's port part: `80` or `8000-8001` in canonical form (`080` → `80`); Go's ParseUint words for a bad one. */
function natPort(port: string): string {
  const parse = (p: string) => {
    if (!/^\d+$/.test(p) || Number(p) > 65535) throw new Error(`strconv.ParseUint: parsing ${JSON.stringify(p)}: ${/^\d+$/.test(p) ? 'value out of range' : 'invalid syntax'}`);
    return Number(p);
  };
  if (port === '') throw new Error('Empty string specified for ports.');
  const dash = port.indexOf('-');
  if (dash < 0) return String(parse(port));
  const start = parse(port.slice(0, dash));
  const end = parse(port.slice(dash + 1));
  if (end < start) throw new Error(`Invalid range specified for the Port: ${port}`);
  return start === end ? String(start) : `${start}-${end}`;
}

const RESOURCE_FLAGS: [string, string][] = [
  ['--blkio-weight <10-1000>', 'block IO (relative weight), 0 to disable'],
  ['--cpu-period <int>', 'limit CPU CFS period'],
  ['--cpu-quota <int>', 'limit CPU CFS quota'],
  ['--cpu-rt-period <int>', 'limit CPU real-time period in microseconds'],
  ['--cpu-rt-runtime <int>', 'limit CPU real-time runtime in microseconds'],
  ['-c, --cpu-shares <int>', 'CPU shares (relative weight)'],
  ['--cpus <number>', 'number of CPUs'],
  ['--cpuset-cpus <cpus>', 'CPUs in which to allow execution (0-3, 0,1)'],
  ['--cpuset-mems <mems>', 'MEMs in which to allow execution (0-3, 0,1)'],
  ['-m, --memory <bytes>', 'memory limit'],
  ['--memory-reservation <bytes>', 'memory soft limit'],
  ['--memory-swap <bytes>', 'swap limit equal to memory plus swap: -1 for unlimited swap'],
  ['--pids-limit <int>', 'tune container pids limit (-1 for unlimited)'],
  ['--restart <policy>', 'restart policy to apply when a container exits'],
];

/**
 * Declares create/run's ~75 flags only when that command runs or shows its
 * help: building them costs ~3 ms, which every other `isula` call would pay.
 */
function withCreateFlags(program: Command, cmd: Command): Command {
  declareOnDemand(program, cmd, () => { addCreateFlags(cmd); });
  return cmd;
}

export function registerContainerCommands(program: Command, client: () => EngineClient): void {
  program.enablePositionalOptions(); // `isula run IMAGE CMD --flag`: flags after the image belong to CMD

  withCreateFlags(program, containerCommand(program, 'create', 125))
    .description('Create a new container')
    .argument('<image>', 'image name or id')
    .argument('[command...]', 'command and arguments')
    .passThroughOptions()
    .action(async (image: string, command: string[], opts: RunFlags) => {
      try {
        const flags = foldAliases(opts);
        out(await createWithPull(client(), flags, buildCreateBody(flags, image, command)));
      } catch (e) {
        throw toStatusError(e, 'create');
      }
    });

  withCreateFlags(program, containerCommand(program, 'run', 125))
    .description('Run a command in a new container')
    .option('-d, --detach', 'run container in background and print container ID')
    .option('--detach-keys <keys>', 'override the key sequence for detaching a container (default ctrl-p,ctrl-q)')
    .argument('<image>', 'image name or id')
    .argument('[command...]', 'command and arguments')
    .passThroughOptions()
    .action(async (image: string, command: string[], opts: RunFlags) => {
      let code: number;
      try {
        code = await runCommand(client(), foldAliases(opts), image, command);
      } catch (e) {
        throw toStatusError(e, 'run');
      }
      if (code !== 0) throw new ExitCode(code);
    });

  containerCommand(program, 'start')
    .description('Start one or more stopped containers')
    .option('-a, --attach', "attach STDOUT/STDERR and forward signals; exit with the container's code")
    .option('-i, --interactive', "attach container's STDIN")
    .option('--detach-keys <keys>', 'override the key sequence for detaching a container (default ctrl-p,ctrl-q)')
    .argument('<container...>', 'container names or ids')
    .action(async (names: string[], opts: { attach?: boolean; interactive?: boolean; detachKeys?: string }) => {
      if (!opts.attach && !opts.interactive) {
        const failed: string[] = [];
        for (const name of names) {
          try {
            await client().request(cpath(name, '/start'), { method: 'POST' });
            out(name);
          } catch (e) {
            err(describe(e));
            failed.push(name);
          }
        }
        if (failed.length > 0) {
          err(`Error: failed to start containers: ${failed.join(', ')}`);
          throw new ExitCode(1);
        }
        return;
      }
      if (names.length > 1) throw new StatusError('you cannot start and attach multiple containers at once', 125);
      let code: number;
      try {
        const c = await client().json<ContainerJson>(cpath(names[0] ?? '', '/json'));
        code = await runAttached(client(), {
          id: c.Id,
          tty: c.Config?.Tty === true,
          // docker: -a and -i both attach stdout and stderr; stdin only with -i to a container that keeps it open.
          stdin: opts.interactive === true && c.Config?.OpenStdin === true,
          stdout: true,
          stderr: true,
          autoRemove: c.HostConfig?.AutoRemove === true,
          detachKeys: opts.detachKeys,
        }, 'start');
      } catch (e) {
        throw toStatusError(e, 'start');
      }
      if (code !== 0) throw new ExitCode(code);
    });

  containerCommand(program, 'stop')
    .description('Stop one or more running containers')
    .option('-t, --time <seconds>', 'seconds to wait for stop before killing it (default: the container\'s StopTimeout, 10)')
    .argument('<container...>', 'container names or ids')
    .action(async (names: string[], opts: { time?: string }) => {
      // A 304 (already stopped) is success, as for docker.
      await forEachContainer(names, async (name) => { await client().request(cpath(name, '/stop'), { method: 'POST', query: { t: opts.time } }); });
    });

  containerCommand(program, 'restart')
    .description('Restart one or more containers')
    .option('-t, --time <seconds>', 'seconds to wait for stop before killing the container')
    .argument('<container...>', 'container names or ids')
    .action(async (names: string[], opts: { time?: string }) => {
      await forEachContainer(names, async (name) => { await client().request(cpath(name, '/restart'), { method: 'POST', query: { t: opts.time } }); });
    });

  containerCommand(program, 'kill')
    .description('Kill one or more running containers')
    .option('-s, --signal <signal>', 'signal to send to the container (default: KILL)')
    .argument('<container...>', 'container names or ids')
    .action(async (names: string[], opts: { signal?: string }) => {
      await forEachContainer(names, async (name) => { await client().request(cpath(name, '/kill'), { method: 'POST', query: { signal: opts.signal } }); });
    });

  containerCommand(program, 'rm')
    .description('Remove one or more containers')
    .option('-f, --force', 'force the removal of a running container (uses SIGKILL)')
    .option('-v, --volumes', 'remove anonymous volumes associated with the container')
    .argument('<container...>', 'container names or ids')
    .action(async (names: string[], opts: { force?: boolean; volumes?: boolean }) => {
      await forEachContainer(
        names,
        async (name) => { await client().request(cpath(name), { method: 'DELETE', query: { force: opts.force ? '1' : undefined, v: opts.volumes ? '1' : undefined } }); },
        // docker: rm -f of a container that does not exist reports it and still succeeds.
        (e) => opts.force === true && isNotFound(e),
      );
    });

  for (const [verb, description] of [['pause', 'Pause all processes within one or more containers'], ['unpause', 'Unpause all processes within one or more containers']] as const) {
    containerCommand(program, verb)
      .description(description)
      .argument('<container...>', 'container names or ids')
      .action(async (names: string[]) => {
        await forEachContainer(names, async (name) => { await client().request(cpath(name, `/${verb}`), { method: 'POST' }); });
      });
  }

  containerCommand(program, 'wait')
    .description('Block until one or more containers stop, then print their exit codes')
    .argument('<container...>', 'container names or ids')
    .action(async (names: string[]) => {
      await forEachContainer(names, async (name) => {
        const res = await client().json<WaitResponse>(cpath(name, '/wait'), { method: 'POST', query: { condition: 'not-running' } });
        if (res.Error?.Message) throw new Error(res.Error.Message);
        return String(res.StatusCode);
      });
    });

  containerCommand(program, 'rename')
    .description('Rename a container')
    .argument('<container>', 'container name or id')
    .argument('<new-name>', 'the new name')
    .action(async (name: string, newName: string) => {
      if (name.trim() === '' || newName.trim() === '') throw new UsageError('Neither old nor new names may be empty');
      await client().request(cpath(name, '/rename'), { method: 'POST', query: { name: newName } });
    });

  const update = containerCommand(program, 'update')
    .description("Update configuration of one or more containers (resources, restart policy)")
    .argument('<container...>', 'container names or ids');
  for (const [flags, description] of RESOURCE_FLAGS) update.option(flags, description);
  update.action(async (names: string[], opts: RunFlags) => {
    const body: ReturnType<typeof buildResources> & { RestartPolicy?: RestartPolicy } = buildResources(opts);
    if (opts.restart !== undefined) {
      try {
        body.RestartPolicy = parseRestartPolicy(opts.restart);
      } catch (e) {
        throw new UsageError(`invalid argument ${JSON.stringify(opts.restart)} for "--restart" flag: ${(e as Error).message}`);
      }
    }
    if (Object.keys(body).length === 0) throw new UsageError('you must provide one or more flags when using this command');
    await forEachContainer(names, async (name) => {
      const res = await client().json<{ Warnings?: string[] | null }>(cpath(name, '/update'), { method: 'POST', body });
      for (const w of res.Warnings ?? []) err(w);
    });
  });

  containerCommand(program, 'commit')
    .description("Create a new image from a container's changes")
    .argument('<container>', 'container name or id')
    .argument('[repository]', 'REPOSITORY[:TAG] to name the image')
    .option('-a, --author <author>', 'author (e.g., "John Hannibal Smith <hannibal@a-team.com>")')
    .option('-c, --change <instruction>', 'apply a Dockerfile instruction to the image: CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, USER, WORKDIR, STOPSIGNAL, VOLUME; repeatable', collect)
    .option('-m, --message <message>', 'commit message')
    .option('-p, --pause', 'pause the container during commit (the default)')
    .option('--no-pause', 'do not pause it (docker: --pause=false, which isula takes too)')
    .action(async (name: string, reference: string | undefined, opts: { author?: string; change?: string[]; message?: string; pause?: boolean }) => {
      const pause = opts.pause !== false;
      const { repo, tag } = splitRepoTag(reference, 'refusing to create a tag with a digest reference');
      const res = await client().json<{ Id: string }>('/commit', {
        method: 'POST',
        body: {},
        query: { container: name, repo, tag, comment: opts.message, author: opts.author, pause: pause ? '1' : '0' },
        queryList: { changes: opts.change ?? [] },
      });
      out(res.Id);
    });

  containerCommand(program, 'diff')
    .description("Inspect changes to files or directories on a container's filesystem")
    .argument('<container>', 'container name or id')
    .action(async (name: string) => {
      const changes = await client().json<{ Path: string; Kind: number }[] | null>(cpath(name, '/changes'));
      // docker's `C`, `A`, `D` for modified, added, deleted.
      const lines = (changes ?? []).map((c) => `${['C', 'A', 'D'][c.Kind] ?? '?'} ${c.Path}`);
      if (lines.length > 0) out(lines.join('\n'));
    });

  containerCommand(program, 'port')
    .description('List port mappings or a specific mapping for the container')
    .argument('<container>', 'container name or id')
    .argument('[private-port]', 'PRIVATE_PORT[/PROTO]')
    .action(async (name: string, port: string | undefined) => {
      const c = await client().json<ContainerJson>(cpath(name, '/json'));
      let lines: string[];
      try {
        lines = formatPorts(c.NetworkSettings?.Ports, name, port);
      } catch (e) {
        err((e as Error).message);
        throw new ExitCode(1);
      }
      if (lines.length > 0) out(lines.join('\n'));
    });

  const ps = (cmd: Command) => cmd
    .description('List containers')
    .option('-a, --all', 'show all containers (default shows just running)')
    .option('-q, --quiet', 'only display container IDs')
    .option('-n, --last <n>', 'show n last created containers (includes all states)')
    .option('-l, --latest', 'show the latest created container (includes all states)')
    .option('-s, --size', 'display total file sizes')
    .option('--no-trunc', "don't truncate output")
    .option('-f, --filter <key=value>', 'filter: id, name, label, status, ancestor, exited, ...; repeatable', collect)
    .option('--format <template>', 'Go template over .ID .Image .Command .CreatedAt .RunningFor .Status .Ports .Names .Labels .Label "k" .Size .Mounts .State; "table ..." adds a header')
    .action(async (opts: PsOptions) => {
      const query = psQuery(opts);
      formatPs([], opts); // a bad --format fails before the request
      const containers = await client().json<ContainerSummary[]>('/containers/json', { query });
      const text = formatPs(containers, opts);
      if (text !== '') out(text);
    });
  ps(containerCommand(program, 'ps'));
  const container = program.command('container').description('Manage containers').addHelpText('after', managementHelp('container'));
  ps(container.command('ls').alias('list'));
  container
    .command('prune')
    .description('Remove all stopped containers')
    .option('--filter <key=value>', 'filter: until=TIMESTAMP|DURATION, label=KEY[=VALUE], label!=KEY[=VALUE]; repeatable', collect)
    .option('-f, --force', 'do not prompt for confirmation')
    .action(async (opts: { filter?: string[]; force?: boolean }) => {
      const filters = filtersJson(opts.filter ?? []);
      if (!opts.force && !await confirmPrune('container prune', CONTAINER_PRUNE_WARNING)) {
        out('Total reclaimed space: 0B');
        return;
      }
      const report = await client().json<{ ContainersDeleted?: string[] | null; SpaceReclaimed?: number }>('/containers/prune', { method: 'POST', query: { filters } });
      process.stdout.write(formatPruneReport('Containers', report.ContainersDeleted ?? [], report.SpaceReclaimed ?? 0));
    });

  containerCommand(program, 'inspect')
    .description('Return low-level information on containers, images, networks or volumes')
    .option('-f, --format <template>', 'format the output using a Go template ({{.State.Status}}, {{json .Config}}, {{index .Config.Labels "k"}})')
    .option('-s, --size', 'display total file sizes if the type is container')
    .addOption(new Option('--type <type>', 'only this type of object').choices(INSPECT_KINDS))
    .argument('<name...>', 'container, image, network or volume names or ids')
    .action(async (names: string[], opts: { format?: string; size?: boolean; type?: string }) => {
      await inspectObjects(client(), names, opts);
    });
}
