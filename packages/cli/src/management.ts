/**
 * docker's management commands: `isula container rm web` is `isula rm web`,
 * `isula image rm busybox` is `isula rmi busybox`, as in docker, where the
 * top-level verbs are the short spellings of these. The tree declares each
 * command once, at the top level; a management spelling is rewritten to it
 * before parsing (so help, flags, errors and exit codes are the top-level
 * command's), and `isula container --help` lists what it accepts. The ones
 * commander declares under the group itself (`container ls|list`, `image
 * ls|list|prune`) are not in these tables.
 */
import { UsageError } from './usage-error.js';

/** `isula GROUP VERB` → the top-level words it runs. */
export const MANAGEMENT_VERBS: Readonly<Record<string, Readonly<Record<string, readonly string[]>>>> = {
  container: {
    attach: ['attach'],
    commit: ['commit'],
    cp: ['cp'],
    create: ['create'],
    diff: ['diff'],
    exec: ['exec'],
    export: ['export'],
    inspect: ['inspect', '--type=container'],
    kill: ['kill'],
    logs: ['logs'],
    pause: ['pause'],
    port: ['port'],
    ps: ['ps'],
    rename: ['rename'],
    restart: ['restart'],
    rm: ['rm'],
    remove: ['rm'],
    run: ['run'],
    start: ['start'],
    stats: ['stats'],
    stop: ['stop'],
    top: ['top'],
    unpause: ['unpause'],
    update: ['update'],
    wait: ['wait'],
  },
  system: {
    events: ['events'],
    info: ['info'],
  },
  image: {
    history: ['history'],
    import: ['import'],
    inspect: ['inspect', '--type=image'],
    load: ['load'],
    pull: ['pull'],
    push: ['push'],
    rm: ['rmi'],
    remove: ['rmi'],
    rmi: ['rmi'],
    save: ['save'],
    tag: ['tag'],
  },
};

/** Index of the first word after the global options (`-H unix://…`), as commander reads them. */
export function firstWord(argv: readonly string[]): number {
  let i = 2;
  while (i < argv.length && (argv[i] ?? '').startsWith('-')) i += argv[i] === '-H' || argv[i] === '--host' ? 2 : 1;
  return i;
}

/**
 * `isula [-H …] GROUP VERB ARGS…` as the top-level command it names; any
 * other argv unchanged. `--type` is not an option of `container inspect` or
 * `image inspect` (they inspect one kind): given there, it is docker's
 * "unknown flag" error.
 */
export function managementAlias(argv: readonly string[]): string[] {
  const i = firstWord(argv);
  const table = MANAGEMENT_VERBS[argv[i] ?? ''];
  const words = table === undefined ? undefined : table[argv[i + 1] ?? ''];
  if (words === undefined) return [...argv];
  const rest = argv.slice(i + 2);
  if (words.length > 1 && rest.some((a) => a === '--type' || a.startsWith('--type='))) {
    throw new UsageError(`unknown flag: --type\nSee 'isula ${argv[i]} ${argv[i + 1]} --help'.`);
  }
  return [...argv.slice(0, i), ...words, ...rest];
}

/** The lines `isula container --help` and `isula image --help` add: what else the group runs. */
export function managementHelp(group: string): string {
  const table = MANAGEMENT_VERBS[group];
  if (table === undefined) return '';
  const rows = Object.entries(table).map(([verb, words]) => [`${verb}`, `isula ${words.join(' ')}`]);
  const width = Math.max(...rows.map(([v]) => (v ?? '').length));
  return `\nAlso, as docker's (the same command, flags and help):\n${rows.map(([v, w]) => `  ${(v ?? '').padEnd(width)}  = ${w}`).join("\n")}`;
}
