import assert from 'node:assert/strict';
import { test } from 'node:test';
import { filtersJson, formatPorts, formatPs, psQuery } from '../src/commands-containers.js';
import type { ContainerSummary } from '../src/docker-types.js';
import { compileTemplate, goPrint } from '../src/go-template.js';
import { ellipsis } from '../src/ps-format.js';

const NOW = Date.UTC(2026, 10, 23, 12, 0, 0);
const ID = '4f66ad9a0b2e8c1d3e5f7a9b0c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9d';
const IMAGE_ID = 'sha256:f3fcf12cb2961b6d8c1e6ccd3e1bd5d5c0e3c5f2a3b4c5d6e7f8a9b0c1d2e3f4';

// Shaped like docker's GET /containers/json answer.
const containers: ContainerSummary[] = [
  {
    Id: ID,
    Names: ['/web'],
    Image: 'busybox:latest',
    ImageID: IMAGE_ID,
    Command: 'sh -c \'while true; do sleep 1; done\'',
    Created: NOW / 1000 - 3 * 3600,
    Ports: [{ PrivatePort: 443, Type: 'tcp' }, { IP: '0.0.0.0', PrivatePort: 80, PublicPort: 8080, Type: 'tcp' }],
    Labels: { tier: 'front', app: 'shop' },
    State: 'running',
    Status: 'Up 3 hours',
    SizeRw: 12, SizeRootFs: 4_260_000,
    HostConfig: { NetworkMode: 'default' },
    NetworkSettings: { Networks: { bridge: {} } },
    Mounts: [{ Type: 'bind', Source: '/srv/data/very/long/path', Destination: '/data' }],
  },
  {
    Id: 'aa'.repeat(32),
    Names: ['/db', '/web/db'],
    Image: 'f3fcf12cb296',
    ImageID: IMAGE_ID,
    Command: 'echo hi',
    Created: NOW / 1000 - 30,
    Ports: [],
    Labels: {},
    State: 'exited',
    Status: 'Exited (0) 20 seconds ago',
  },
];

test('ps default table: docker columns, truncated id, quoted and cut command, ports', () => {
  const lines = formatPs(containers, { trunc: true }, NOW).split('\n');
  assert.deepEqual(lines.map((l) => l.split(/ {3,}/)), [
    ['CONTAINER ID', 'IMAGE', 'COMMAND', 'CREATED', 'STATUS', 'PORTS', 'NAMES'],
    ['4f66ad9a0b2e', 'busybox:latest', '"sh -c \'while true; …"', '3 hours ago', 'Up 3 hours', '443/tcp, 0.0.0.0:8080->80/tcp', 'web'],
    ['aaaaaaaaaaaa', 'f3fcf12cb296', '"echo hi"', '30 seconds ago', 'Exited (0) 20 seconds ago', 'db'],
  ]);
});

test('ps -q, --no-trunc and -s', () => {
  assert.equal(formatPs(containers, { trunc: true, quiet: true }, NOW), `4f66ad9a0b2e\naaaaaaaaaaaa`);
  assert.equal(formatPs(containers, { trunc: false, quiet: true }, NOW), `${ID}\n${'aa'.repeat(32)}`);
  const sized = formatPs(containers.slice(0, 1), { trunc: true, size: true }, NOW).split('\n');
  assert.match(sized[0] ?? '', /NAMES +SIZE$/);
  assert.match(sized[1] ?? '', /web {5,}12B \(virtual 4.26MB\)$/);
  assert.equal(formatPs(containers.slice(1), { trunc: false, format: '{{.Names}}' }, NOW), 'db,web/db');
});

test('ps --format fields, .Label "k", json', () => {
  const f = (format: string) => formatPs(containers.slice(0, 1), { trunc: true, format }, NOW);
  assert.equal(f('{{.ID}} {{.State}} {{.Labels}}'), '4f66ad9a0b2e running app=shop,tier=front');
  assert.equal(f('{{.Label "tier"}}|{{.Label "none"}}'), 'front|');
  assert.equal(f('{{.Mounts}} {{.Networks}} {{.LocalVolumes}}'), '/srv/data/very… bridge 0');
  assert.equal(f('table {{.Names}}\\t{{.Label "app"}}'), 'NAMES     LABEL\nweb       shop');
  assert.match(f('{{json .}}'), /^\{"Command":.*"ID":"4f66ad9a0b2e".*"State":"running".*\}$/);
  assert.throws(() => f('{{.Colour}}'), /can't evaluate field Colour/);
});

test('ps query: -a, -n, -l, -s, --format .Size and filters as docker sends them', () => {
  assert.deepEqual(psQuery({ trunc: true }), { all: undefined, limit: undefined, size: undefined, filters: undefined });
  assert.deepEqual(psQuery({ trunc: true, all: true, size: true }), { all: '1', limit: undefined, size: '1', filters: undefined });
  assert.deepEqual(psQuery({ trunc: true, latest: true }), { all: '1', limit: '1', size: undefined, filters: undefined });
  assert.deepEqual(psQuery({ trunc: true, last: '3', format: '{{.Size}}' }), { all: '1', limit: '3', size: '1', filters: undefined });
  assert.equal(filtersJson(['status=exited', 'status=created', 'label=a=b', 'name=web']), '{"status":["exited","created"],"label":["a=b"],"name":["web"]}');
  assert.throws(() => filtersJson(['nope']), /bad format of filter/);
});

test('port lists the bindings, or the one asked for, and fails when it is not published', () => {
  const ports = { '80/tcp': [{ HostIp: '0.0.0.0', HostPort: '8080' }, { HostIp: '::', HostPort: '8080' }], '53/udp': [{ HostIp: '127.0.0.1', HostPort: '5353' }], '443/tcp': null };
  // docker 20.10 joins HOST_IP:HOST_PORT with a colon, IPv6 too (`:::8080`).
  assert.deepEqual(formatPorts(ports, 'web'), ['53/udp -> 127.0.0.1:5353', '80/tcp -> 0.0.0.0:8080', '80/tcp -> :::8080']);
  assert.deepEqual(formatPorts(ports, 'web', '80'), ['0.0.0.0:8080', ':::8080']);
  assert.deepEqual(formatPorts(ports, 'web', '080/tcp'), ['0.0.0.0:8080', ':::8080']);
  assert.deepEqual(formatPorts({ '80/tcp': [] }, 'web', '80'), []);
  assert.throws(() => formatPorts(ports, 'web', 'http'), /strconv.ParseUint: parsing "http": invalid syntax/);
  assert.throws(() => formatPorts(ports, 'web', '443/tcp'), /No public port '443\/tcp' published for web/);
  assert.deepEqual(formatPorts(null, 'web'), []);
});

// Shaped like docker's GET /containers/{id}/json.
const inspected = {
  Id: ID,
  Name: '/web',
  State: { Status: 'running', Running: true, Paused: false, Pid: 4242, ExitCode: 0 },
  Config: { Env: ['PATH=/bin', 'A=<b>&c'], Cmd: ['sh'], Entrypoint: null, Labels: { app: 'shop', 'com.example.tier': 'front' } },
  HostConfig: { Memory: 536870912, NanoCpus: 1500000000, Binds: null },
  Mounts: [{ Source: '/a', Destination: '/x' }, { Source: '/b', Destination: '/y' }],
};

test('inspect templates: fields, json, index, range, if, pipes, Go printing', () => {
  const t = (source: string) => compileTemplate(source)(inspected);
  assert.equal(t('{{.State.Status}} {{.State.Pid}} {{.State.Running}}'), 'running 4242 true');
  assert.equal(t('{{.HostConfig.Memory}}'), '536870912');
  assert.equal(t('{{json .Config.Labels}}'), '{"app":"shop","com.example.tier":"front"}');
  assert.equal(t('{{json .Config.Env}}'), '["PATH=/bin","A=<b>&c"]');
  assert.equal(t('{{index .Config.Labels "com.example.tier"}}|{{index .Config.Labels "none"}}'), 'front|');
  assert.equal(t('{{.Config.Cmd}} {{.Config.Entrypoint}} {{.Config.Labels}}'), '[sh] <nil> map[app:shop com.example.tier:front]');
  assert.equal(t('{{.Nope}} {{.State.Nope}}'), '<no value> <no value>');
  assert.equal(t('{{index .Nope "k"}}|{{index .HostConfig.Binds "k"}}'), '|');
  assert.equal(t('{{range .Mounts}}{{.Source}}:{{.Destination}} {{end}}'), '/a:/x /b:/y ');
  assert.equal(t('{{range $k, $v := .Config.Labels}}{{$k}}={{$v}};{{end}}'), 'app=shop;com.example.tier=front;');
  assert.equal(t('{{if .State.Running}}up{{else}}down{{end}} {{if .State.Paused}}p{{else}}np{{end}}'), 'up np');
  assert.equal(t('{{range .HostConfig.Binds}}x{{else}}none{{end}}'), 'none');
  assert.equal(t('{{.Name | upper}} {{join .Config.Cmd ","}} {{len .Mounts}}'), '/WEB sh 2');
  assert.equal(t('{{if eq .State.Status "running"}}yes{{end}}'), 'yes');
  assert.equal(t('{{- .Id -}}\n'), ID);
  assert.throws(() => compileTemplate('{{if .State.Running}}x'), /unexpected EOF/);
  assert.throws(() => compileTemplate('{{.State'), /unclosed action/);
  assert.throws(() => compileTemplate('{{shout .Name}}'), /function "shout" not defined/);
  assert.equal(goPrint([1, 'a', { b: true }]), '[1 a map[b:true]]');
});

test('ellipsis cuts to the length, the last character …', () => {
  assert.equal(ellipsis('abcdef', 6), 'abcdef');
  assert.equal(ellipsis('abcdefg', 6), 'abcde…');
});
