/**
 * `isula completion bash|zsh`: a completion script generated from the
 * command tree itself (every verb, subcommand, flag and alias as commander
 * declares them), and `isula __complete KIND...`, which the script runs to
 * complete the names only the daemon knows.
 *
 * The script holds the tree as data (one `case` arm per command), so a TAB
 * on a verb or a flag runs no node at all; only a container, image, network
 * or volume name asks the daemon, through `isula __complete`. zsh runs the
 * same function through its bashcompinit layer, so the two shells cannot
 * drift apart.
 */
import type { Argument, Command, Option } from 'commander';
import type { EngineClient } from './client.js';
import { commandPath } from './help-examples.js';
import { MANAGEMENT_VERBS } from './management.js';
import { UsageError } from './usage-error.js';

/** What a word completes to: nothing, files, fixed words, names the daemon knows, or the verbs (`isula help VERB`). */
export type WordKind = 'none' | 'files' | 'verbs' | 'cp' | `choice:${string}` | NameKind | `${NameKind}+${NameKind}`;
export const NAME_KINDS = ['containers', 'images', 'networks', 'volumes'] as const;
export type NameKind = typeof NAME_KINDS[number];

/** One command of the tree as the script sees it. */
export interface CompletionNode {
  path: string;
  /** Names and aliases of the visible subcommands (and `help` where commander adds it). */
  subcommands: string[];
  /** Every visible flag spelling, short and long, the help flags included. */
  flags: string[];
  /** The flags that take a value (required or optional), and what the value completes to. */
  valueFlags: [flag: string, kind: WordKind][];
  /** What each positional argument completes to; a variadic last one repeats. */
  args: WordKind[];
  variadic: boolean;
  /** Options after the first argument belong to the container's command (commander's passThroughOptions). */
  passThrough: boolean;
}

/**
 * An argument's kind from its name (`<container...>`, `<image>`,
 * `<network...>`, `<volume...>`). The few arguments whose name does not say
 * are listed by command path and argument name.
 */
const ARGUMENT_KINDS: Readonly<Record<string, WordKind>> = {
  'inspect name': 'containers+images',
  'pull name': 'images',
  'push name': 'images',
  'tag source': 'images',
  'import file': 'files',
  'cp source': 'cp',
  'cp destination': 'cp',
};

/** Options whose value names a daemon object (their placeholders are docker's `<mode>`, `<[SRC:]DST[:OPTS]>`). */
const OPTION_KINDS: Readonly<Record<string, WordKind>> = {
  '--network': 'networks',
  '--volume': 'volumes',
};

function argumentKind(path: string, a: Argument): WordKind {
  const name = a.name();
  if (a.argChoices !== undefined && a.argChoices.length > 0) return `choice:${a.argChoices.join(',')}`;
  const listed = ARGUMENT_KINDS[`${path} ${name}`];
  if (listed !== undefined) return listed;
  for (const kind of NAME_KINDS) if (name === kind.slice(0, -1)) return kind;
  return 'none';
}

function optionKind(o: Option): WordKind {
  if (o.argChoices !== undefined && o.argChoices.length > 0) return `choice:${o.argChoices.join(',')}`;
  const listed = o.long === undefined ? undefined : OPTION_KINDS[o.long];
  if (listed !== undefined) return listed;
  return /<(file|FILE)>/.test(o.flags) ? 'files' : 'none';
}

/** Commander keeps passThroughOptions in a field it does not type; `run`, `create`, `exec` and `top` set it. */
const isPassThrough = (cmd: Command): boolean => (cmd as unknown as { _passThroughOptions?: boolean })._passThroughOptions === true;

/** The tree under `program`, which must be fully declared (declareEverything). Hidden commands and options are left out. */
export function completionTree(program: Command): CompletionNode[] {
  const nodes: CompletionNode[] = [];
  const visit = (cmd: Command): void => {
    const help = cmd.createHelp();
    const path = commandPath(cmd);
    const subs = help.visibleCommands(cmd);
    const options = help.visibleOptions(cmd);
    nodes.push({
      path,
      subcommands: [...subs.flatMap((c) => [c.name(), ...c.aliases()]), ...Object.keys(MANAGEMENT_VERBS[path] ?? {})],
      flags: options.flatMap((o) => [o.short, o.long].filter((f): f is string => f !== undefined)),
      valueFlags: options.filter((o) => o.required || o.optional)
        .flatMap((o) => [o.short, o.long].filter((f): f is string => f !== undefined).map((f): [string, WordKind] => [f, optionKind(o)])),
      args: cmd.registeredArguments.map((a) => argumentKind(path, a)),
      variadic: cmd.registeredArguments.at(-1)?.variadic === true,
      passThrough: isPassThrough(cmd),
    });
    // commander's implicit `help` command: `isula help VERB`, `isula network help SUBCOMMAND`.
    if (subs.some((c) => !cmd.commands.includes(c) && c.name() === 'help')) {
      const names = subs.filter((c) => cmd.commands.includes(c)).map((c) => c.name());
      const args: WordKind[] = [path === '' ? 'verbs' : `choice:${names.join(',')}`];
      nodes.push({ path: path === '' ? 'help' : `${path} help`, subcommands: [], flags: [], valueFlags: [], args, variadic: false, passThrough: false });
    }
    for (const sub of cmd.commands) if (subs.includes(sub)) visit(sub);
  };
  visit(program);
  return nodes;
}

/** A word list as a single-quoted shell word (the words are flags and command names: no quote in them). */
const shellWords = (words: readonly string[]): string => `'${words.join(' ')}'`;

function caseArm(n: CompletionNode, aliases: ReadonlyMap<string, string[]>): string {
  const patterns = [n.path, ...(aliases.get(n.path) ?? [])].map((p) => `'${p}'`).join('|');
  const fields = [
    `subs=${shellWords(n.subcommands)}`,
    `flags=${shellWords(n.flags)}`,
    `vflags=${shellWords(n.valueFlags.map(([f, k]) => `${f}=${k}`))}`,
    `args=${shellWords(n.args.map((k, i) => (n.variadic && i === n.args.length - 1 ? `${k}...` : k)))}`,
    `pt=${n.passThrough ? 1 : "''"}`,
  ];
  return `    ${patterns}) ${fields.join(' ')} ;;`;
}

/** Every path a command can be reached by through aliases (`network list` for `network ls`), by its real path. */
function aliasPaths(program: Command): Map<string, string[]> {
  const byPath = new Map<string, string[]>();
  const visit = (cmd: Command, spelled: string[]): void => {
    for (const sub of cmd.commands) {
      const real = commandPath(sub);
      for (const name of [sub.name(), ...sub.aliases()]) {
        const path = [...spelled, name].join(' ');
        if (path !== real) byPath.set(real, [...(byPath.get(real) ?? []), path]);
        visit(sub, [...spelled, name]);
      }
    }
  };
  visit(program, []);
  // docker's management spellings (`container rm` is `rm`): one that adds no word of its own.
  for (const [group, table] of Object.entries(MANAGEMENT_VERBS)) {
    for (const [verb, words] of Object.entries(table)) {
      if (words.length === 1 && words[0] !== undefined) byPath.set(words[0], [...(byPath.get(words[0]) ?? []), `${group} ${verb}`]);
    }
  }
  return byPath;
}

/**
 * The bash function. It reads the line up to the cursor (COMP_LINE, not
 * COMP_WORDS: bash splits those at `:` and `=`, which would cut
 * `-H unix:///…` and `busybox:latest` in pieces), walks the words as
 * commander would (global options, verbs, each command's flags and which
 * take a value, its arguments), then completes the word under the cursor.
 * Written to run unchanged under zsh's bashcompinit as well.
 */
export function bashScript(program: Command): string {
  const aliases = aliasPaths(program);
  const arms = completionTree(program).map((n) => caseArm(n, aliases)).join('\n');
  return `# isula completion for bash (generated by \`isula completion bash\`; regenerate after upgrading isula).
# Load it from ~/.bashrc with:  source <(isula completion bash)

# Sets subs, flags, vflags (flag=kind), args (a kind per argument, "..." repeats) and pt for a command path.
__isula_spec() {
  subs='' flags='' vflags='' args='' pt=''
  case "$1" in
${arms}
    *) return 1 ;;
  esac
}

# Prints the kind of value flag $1 takes under the current spec; fails for a flag that takes none.
__isula_value_kind() {
  local f
  for f in $vflags; do
    if [[ \${f%%=*} == "$1" ]]; then printf '%s\\n' "\${f#*=}"; return 0; fi
  done
  return 1
}

# Fills COMPREPLY with the candidates of kind $1 for the word $2.
__isula_candidates() {
  local kind=$1 cur=$2 names
  case "$kind" in
    none) COMPREPLY=() ;;
    files) __isula_filenames; COMPREPLY=( $(compgen -f -- "$cur") ) ;;
    verbs) __isula_spec '' && COMPREPLY=( $(compgen -W "$subs" -- "$cur") ) ;;
    choice:*) names=\${kind#choice:}; COMPREPLY=( $(compgen -W "\${names//,/ }" -- "$cur") ) ;;
    cp)
      if [[ $cur == *:* ]]; then COMPREPLY=()
      else
        names=$(__isula_names containers | sed 's/$/:/')
        COMPREPLY=( $(compgen -W "$names" -- "$cur") $(compgen -f -- "$cur") )
        # A lone CONTAINER: goes on with its path, without the space bash would add.
        [[ \${#COMPREPLY[@]} == 1 && $COMPREPLY == *: ]] && type compopt >/dev/null 2>&1 && compopt -o nospace 2>/dev/null
      fi ;;
    *) names=$(__isula_names \${kind//+/ }); COMPREPLY=( $(compgen -W "$names" -- "$cur") ) ;;
  esac
}

# bash: mark directories with a slash, quote odd names (zsh's bashcompinit has no compopt).
__isula_filenames() {
  type compopt >/dev/null 2>&1 && compopt -o filenames 2>/dev/null
  return 0
}

# Names the daemon knows, through the CLI (nothing when the daemon cannot be reached).
__isula_names() {
  "$__isula_cmd" \${__isula_host:+-H "$__isula_host"} __complete "$@" 2>/dev/null
}

_isula() {
  if [[ -n \${ZSH_VERSION-} ]]; then
    setopt localoptions ksharrays shwordsplit noglob
  else
    local -; set -f
  fi
  local line=\${COMP_LINE:0:$COMP_POINT}
  local -a w
  w=( $line )
  [[ -z $line || $line == *[[:space:]] ]] && w+=( '' )
  local cword=$(( \${#w[@]} - 1 )) cur=\${w[\${#w[@]}-1]}
  local __isula_cmd=\${w[0]} __isula_host=\${ISULAD_HOST-}
  command -v "$__isula_cmd" >/dev/null 2>&1 || __isula_cmd=isula
  local subs flags vflags args pt node='' nargs=0 passed='' i=1 word kind='' want=''
  __isula_spec ''
  while (( i < cword )); do
    word=\${w[i]}
    if [[ -z $passed && $word == -?* ]]; then
      if [[ $word == -- ]]; then passed=1
      elif [[ $word != *=* ]] && kind=$(__isula_value_kind "$word"); then
        if (( i + 1 == cword )); then want=$kind; break; fi
        [[ -z $node && ( $word == -H || $word == --host ) ]] && __isula_host=\${w[i+1]}
        (( i++ ))
      elif [[ -z $node && $word == --host=* ]]; then __isula_host=\${word#--host=}
      fi
    elif [[ -n $subs ]] && (( nargs == 0 )) && [[ " $subs " == *" $word "* ]]; then
      node=\${node:+$node }$word
      __isula_spec "$node" || return 0
    else
      (( nargs++ ))
      [[ -n $pt ]] && passed=1
    fi
    (( i++ ))
  done
  COMPREPLY=()
  if [[ -n $want ]]; then
    __isula_candidates "$want" "$cur"
  elif [[ -z $passed && $cur == -* ]]; then
    COMPREPLY=( $(compgen -W "$flags" -- "$cur") )
  elif [[ -n $subs ]] && (( nargs == 0 )); then
    COMPREPLY=( $(compgen -W "$subs" -- "$cur") )
  else
    local -a kinds
    kinds=( $args )
    (( \${#kinds[@]} == 0 )) && return 0
    if (( nargs < \${#kinds[@]} )); then kind=\${kinds[nargs]}
    else kind=\${kinds[\${#kinds[@]}-1]}; [[ $kind == *... ]] || return 0
    fi
    __isula_candidates "\${kind%...}" "$cur"
  fi
  # bash replaces only what follows the last ':' of the word (COMP_WORDBREAKS): drop what is already typed.
  if [[ -z \${ZSH_VERSION-} && $cur == *:* && $COMP_WORDBREAKS == *:* ]]; then
    local typed=\${cur%"\${cur##*:}"} j
    for (( j = 0; j < \${#COMPREPLY[@]}; j++ )); do COMPREPLY[j]=\${COMPREPLY[j]#"$typed"}; done
  fi
  return 0
}

complete -F _isula isula
`;
}

/** zsh: the same function through bashcompinit, which gives zsh bash's `complete` and `compgen`. */
export function zshScript(program: Command): string {
  return `#compdef isula
# isula completion for zsh (generated by \`isula completion zsh\`; regenerate after upgrading isula).
# Load it from ~/.zshrc (after compinit) with:  source <(isula completion zsh)
autoload -U +X bashcompinit && bashcompinit

${bashScript(program).split('\n').filter((l) => !l.startsWith('# isula completion for bash') && !l.startsWith('# Load it from')).join('\n')}`;
}

export function completionScript(program: Command, shell: string): string {
  if (shell === 'bash') return bashScript(program);
  if (shell === 'zsh') return zshScript(program);
  throw new UsageError(`unsupported shell "${shell}": bash or zsh`);
}

interface NameLists { Names?: string[] | null; Id?: string; RepoTags?: string[] | null; Name?: string }

/** How long `__complete` waits for the daemon: a TAB must not hang on a stuck daemon. */
const NAMES_TIMEOUT_MS = 2000;

/**
 * The names of KIND for the completion script, one a line: containers (names
 * and short ids, all states), images (their tags), networks, volumes.
 * Nothing, and exit 0, when the daemon cannot answer: a TAB prints no error.
 */
export async function completeNames(client: EngineClient, kinds: readonly string[]): Promise<string[]> {
  const signal = AbortSignal.timeout(NAMES_TIMEOUT_MS);
  const names: string[] = [];
  for (const kind of kinds) {
    try {
      names.push(...await namesOf(client, kind, signal));
    } catch {
      // Unreachable, refused or slow: complete nothing rather than print an error mid-line.
    }
  }
  return [...new Set(names)];
}

async function namesOf(client: EngineClient, kind: string, signal: AbortSignal): Promise<string[]> {
  switch (kind) {
    case 'containers': {
      const list = await client.json<NameLists[]>('/containers/json', { query: { all: '1' }, signal });
      return list.flatMap((c) => [...(c.Names ?? []).map((n) => n.replace(/^\//, '')), ...(c.Id === undefined ? [] : [c.Id.slice(0, 12)])]);
    }
    case 'images': {
      const list = await client.json<NameLists[]>('/images/json', { signal });
      return list.flatMap((i) => (i.RepoTags ?? []).filter((t) => t !== '<none>:<none>'));
    }
    case 'networks':
      return (await client.json<NameLists[]>('/networks', { signal })).flatMap((n) => (n.Name === undefined ? [] : [n.Name]));
    case 'volumes': {
      const res = await client.json<{ Volumes?: NameLists[] | null }>('/volumes', { signal });
      return (res.Volumes ?? []).flatMap((v) => (v.Name === undefined ? [] : [v.Name]));
    }
    default:
      return [];
  }
}
