/**
 * One or more examples for every command, shown after its help (`isula help
 * VERB`, `isula VERB --help`) and in docs/commands.md. Keyed by the command's
 * path (`network rm`); test/help.test.ts fails when a command has none or an
 * example does not start with its own command.
 */
import type { Command } from 'commander';

export const EXAMPLES: Readonly<Record<string, readonly string[]>> = {
  '': [
    'isula run --rm busybox echo hello',
    'isula -H unix:///run/isulad/isulad.sock ps -a   # another daemon socket (or ISULAD_HOST)',
    'isula help run',
  ],
  attach: ['isula attach web   # ctrl-p ctrl-q detaches, the container runs on'],
  completion: ['source <(isula completion bash)   # in ~/.bashrc', 'isula completion zsh > "${fpath[1]}/_isula"'],
  container: ['isula container ls -a'],
  'container ls': ['isula container ls -a --format "{{.Names}} {{.Status}}"'],
  'container prune': ['isula container prune -f', 'isula container prune -f --filter until=24h --filter label=stage=test'],
  cp: ['isula cp web:/etc/hostname ./hostname', 'isula cp ./site web:/www', 'isula cp web:/var/log - | tar -tv'],
  create: ["isula create --name job -e MODE=batch busybox sh -c 'echo $MODE'", 'isula create -it --name shell busybox sh'],
  events: ['isula events --since 1h --until 1m   # what happened from an hour ago to a minute ago', 'isula events -f type=container -f event=start --format "{{.Actor.Attributes.name}}"'],
  exec: ['isula exec web ls /', 'isula exec -it web sh', "isula exec -e GREETING=hi -w /tmp web sh -c 'echo $GREETING > greeting'"],
  export: ['isula export -o web.tar web'],
  image: ['isula image ls'],
  'image ls': ['isula image ls --format "{{.Repository}}:{{.Tag}} {{.Size}}"'],
  commit: ['isula commit web mysite:v2', "isula commit -m 'nginx conf' -c 'ENV MODE=prod' -c 'CMD [\"nginx\", \"-g\", \"daemon off;\"]' web mysite:v3"],
  diff: ['isula diff web'],
  history: ['isula history busybox', 'isula history --no-trunc --format "{{.Size}}\\t{{.CreatedBy}}" busybox'],
  'image prune': ['isula image prune -f', 'isula image prune -a -f --filter label=stage=build'],
  images: ['isula images', 'isula images -q busybox', 'isula images --filter dangling=true'],
  import: ['isula import rootfs.tar myfs:1.0', 'cat rootfs.tar | isula import - myfs:1.0'],
  info: ['isula info', 'isula info -f json'],
  inspect: ['isula inspect web', 'isula inspect -f "{{.State.Status}} {{.NetworkSettings.IPAddress}}" web', 'isula inspect --type image busybox'],
  kill: ['isula kill web', 'isula kill -s HUP web'],
  load: ['isula load -i busybox.tar', 'isula load -i app.oci.tar --tag app:1.0'],
  login: ['isula login -u alice 127.0.0.1:5000', 'echo "$PASSWORD" | isula login -u alice --password-stdin registry.example.com'],
  logout: ['isula logout 127.0.0.1:5000'],
  logs: ['isula logs web', 'isula logs -f --tail 10 web', 'isula logs --since 10m -t web'],
  network: ['isula network ls'],
  'network create': ['isula network create --subnet 10.89.0.0/24 backend'],
  'network inspect': ['isula network inspect -f "{{json .IPAM.Config}}" backend'],
  'network ls': ['isula network ls', 'isula network ls -q --filter driver=bridge'],
  'network rm': ['isula network rm backend'],
  'network connect': ['isula network connect backend web', 'isula network connect --ip 10.89.0.20 backend web'],
  'network disconnect': ['isula network disconnect backend web'],
  'network prune': ['isula network prune -f', 'isula network prune -f --filter label=team=web'],
  pause: ['isula pause web'],
  port: ['isula port web', 'isula port web 80/tcp'],
  ps: ['isula ps', 'isula ps -a --filter status=exited', 'isula ps -q --no-trunc'],
  pull: ['isula pull busybox', 'isula pull 127.0.0.1:5000/app:1.0'],
  push: ['isula tag busybox 127.0.0.1:5000/busybox && isula push 127.0.0.1:5000/busybox'],
  rename: ['isula rename web frontend'],
  restart: ['isula restart -t 2 web'],
  rm: ['isula rm web', 'isula rm -f $(isula ps -aq)'],
  rmi: ['isula rmi busybox:old', 'isula rmi -f 3a093384ac30'],
  run: [
    'isula run --rm busybox echo hello',
    'isula run -it --rm busybox sh   # ctrl-p ctrl-q detaches',
    'isula run -d --name web -p 8080:80 busybox httpd -f -p 80',
    'isula run --rm -v data:/data -m 64m --cpus 0.5 busybox du -sh /data',
  ],
  save: ['isula save -o busybox.tar busybox'],
  start: ['isula start web', 'isula start -ai shell'],
  stats: ['isula stats --no-stream', 'isula stats --no-stream --format "{{.Name}} {{.MemUsage}}" web'],
  stop: ['isula stop web', 'isula stop -t 1 web db'],
  tag: ['isula tag busybox busybox:stable'],
  top: ['isula top web', 'isula top web -eo pid,comm'],
  unpause: ['isula unpause web'],
  update: ['isula update -m 128m --memory-swap 256m web', 'isula update --restart on-failure:3 web'],
  version: ['isula version', 'isula version -f json'],
  volume: ['isula volume ls'],
  'volume create': ['isula volume create data', 'isula volume create --label team=web cache'],
  'volume inspect': ['isula volume inspect -f "{{.Mountpoint}}" data'],
  'volume ls': ['isula volume ls', 'isula volume ls -q --filter dangling=true'],
  'volume prune': ['isula volume prune -f'],
  system: ['isula system df'],
  'system df': ['isula system df', 'isula system df --format "{{.Type}}: {{.Size}}"'],
  'system prune': ['isula system prune -f', 'isula system prune -a -f --volumes --filter until=24h'],
  'volume rm': ['isula volume rm data'],
  wait: ['isula wait job'],
};

/** The command's words under the program: `''` for isula itself, `network rm`. */
export function commandPath(cmd: Command): string {
  const words: string[] = [];
  for (let c: Command | null = cmd; c?.parent != null; c = c.parent) words.unshift(c.name());
  return words.join(' ');
}

/** The `Examples:` block printed after a command's help, or '' when it has none. */
export function examplesHelp(cmd: Command): string {
  const examples = EXAMPLES[commandPath(cmd)];
  if (examples === undefined) return '';
  return `\nExamples:\n${examples.map((e) => `  $ ${e}`).join('\n')}`;
}
