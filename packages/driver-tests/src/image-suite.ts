/**
 * A small kit for image drivers, through the engine as a user drives it: a
 * reference the driver claims resolves to it (and an unknown one is a clear
 * not-found error), the root filesystem it prepares runs a container and
 * survives a stop/start, the image's config reaches the container, `images`
 * and image inspect show the image where the driver lists images, and rm
 * releases everything: no mount under the daemon's roots, a second rm is
 * not-found, and once the daemon stops nothing named after the container is
 * left under its roots.
 *
 * Like the network suite it takes factories, not daemon.json keys: what a
 * reference is (an image loaded from an archive, a directory on the host)
 * and how it is made are the driver author's to say.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { describe, type TestContext } from 'node:test';
import { inspect, mountsUnder, ok } from './containers.js';
import type { TestDaemon } from './harness.js';
import { suiteTests } from './suite-options.js';

/** An image the driver claims, made for one daemon, and what a user should see of it. */
export interface KitImage {
  /** The create/run arguments naming it, before the command: `['busybox']`, `['--external-rootfs', dir, 'name']`. */
  args: string[];
  /** inspect's `GraphDriver.Name` for a container on it (`overlay2`, `external`): the driver that claimed it. */
  graphDriver: string;
  /** inspect's `Image` for a container on it (an image id, a directory), when the driver fixes one. */
  id?: string;
  /** Arguments naming an image the driver would claim but that is not there, and the error create gives. */
  missing: { args: string[]; error: RegExp };
  /**
   * What the container gets from the image: `env` entries it must see, the
   * working directory (default `/`), and the default command with a pattern
   * its output matches; without `cmd`, a run with no command is refused
   * with `noCommand` (default: core's "no command specified").
   */
  config: { env: string[]; workingDir?: string; cmd?: { args: string[]; output: RegExp }; noCommand?: RegExp };
  /** How `isula images` and `inspect --type image` show it (`{ repository, tag }`), or why the driver lists no images. */
  list: { repository: string; tag: string } | { skip: string };
  /** Directories outside the daemon roots where the driver's mounts would show (an external rootfs). */
  roots?: string[];
}

export interface ImageSuiteOptions {
  /** Skip the whole suite with this reason (a host that lacks the plugins). */
  skip?: string | false;
  /** A daemon with the image driver (and a runtime) loaded; its teardown registered on `t`. */
  daemon: (t: TestContext) => Promise<TestDaemon>;
  /**
   * Makes an image the driver claims available to `d` (load an archive,
   * prepare a directory); cleanup on `t`. Its rootfs needs `/etc/passwd` and
   * `sh`, `cat`, `ls`, `env`, `sleep`, `true` on the PATH (busybox has them).
   */
  image: (t: TestContext, d: TestDaemon) => Promise<KitImage>;
  /** Tests to skip by name (test name → reason). */
  skipTests?: Record<string, string>;
  /** Leave the check that each `skipTests` name is a test to the caller, who shares one list between suites (as `SuiteOptions.sharedSkips`). */
  sharedSkips?: boolean;
}

interface Inspected {
  Id: string;
  Image: string;
  GraphDriver: { Name: string };
  Config: { Cmd: string[] | null };
}

/** Mounts under the daemon's roots and the image's own directories: what a leaked rootfs mount shows as. */
async function driverMounts(d: TestDaemon, image: KitImage): Promise<string[]> {
  const all = await Promise.all([d.root, ...(image.roots ?? [])].map(async (dir) => (await mountsUnder(dir)).filter((m) => m === dir || m.startsWith(`${dir}/`))));
  return all.flat().sort();
}

/** The names of the image suite's tests, in order: what `skipTests` keys and the kit's report rows name. */
export const IMAGE_SPECS = {
  resolve: 'resolve: create with a reference the driver claims makes a container on it; an unknown reference is a clear not-found error and leaves nothing',
  mount: 'mount: a container runs in the root filesystem the driver prepared, and its files survive stop and start',
  config: "config: the image's env, working directory and default command reach the container",
  listInspect: 'list and inspect: isula images lists the image and image inspect gives its config',
  release: 'release: rm releases the mount, a second rm is not-found, and a stopped daemon leaves no mount or path of the container',
} as const;

/**
 * Paths under `dir` whose name contains `id` (a container's layer, state or
 * log dir). Bounded: the roots of a test daemon are small, but a runaway walk
 * must not hang the suite.
 */
async function pathsNaming(dir: string, id: string, budget = { entries: 20_000 }): Promise<string[]> {
  const found: string[] = [];
  const entries = await fs.readdir(dir, { withFileTypes: true }).catch(() => []);
  for (const e of entries) {
    if (--budget.entries < 0) throw new Error(`more than 20000 entries under the daemon roots; cannot check for leftovers of ${id.slice(0, 12)}`);
    const p = path.join(dir, e.name);
    if (e.name.includes(id)) found.push(p);
    else if (e.isDirectory()) found.push(...await pathsNaming(p, id, budget));
  }
  return found;
}

export function imageSuite(driver: string, opts: ImageSuiteOptions): void {
  describe(`image driver ${driver}`, { skip: opts.skip ?? false }, () => {
    const { test, checkSkips } = suiteTests(`imageSuite(${driver})`, opts);

    test(IMAGE_SPECS.resolve, async (t) => {
      const d = await opts.daemon(t);
      const image = await opts.image(t, d);
      ok(await d.isula(['create', '--name', 'r1', ...image.args, 'true']), `create ${image.args.join(' ')}`);
      const info = await inspect<Inspected>(d, 'r1');
      assert.equal(info.GraphDriver.Name, image.graphDriver, 'the container is on the driver that claimed the reference');
      if (image.id !== undefined) assert.equal(info.Image, image.id, 'inspect names the image the reference resolved to');
      const missing = await d.isula(['create', '--name', 'r2', ...image.missing.args, 'true']);
      assert.equal(missing.code, 125, `create ${image.missing.args.join(' ')} fails as a create error: ${missing.stderr}`);
      assert.match(missing.stderr, image.missing.error);
      assert.deepEqual(ok(await d.isula(['ps', '-aq', '--no-trunc'])).split('\n').filter(Boolean), [info.Id], 'the failed create left no container');
      ok(await d.isula(['rm', 'r1']));
    });

    test(IMAGE_SPECS.mount, async (t) => {
      const d = await opts.daemon(t);
      const image = await opts.image(t, d);
      assert.match(ok(await d.isula(['run', '--rm', ...image.args, 'cat', '/etc/passwd']), 'cat /etc/passwd'), /^root:[^:]*:0:0:/m, '/etc/passwd of the rootfs');
      ok(await d.isula(['run', '-d', '--name', 'm1', ...image.args, 'sleep', '300']));
      const top = ok(await d.isula(['exec', 'm1', 'ls', '/']), 'ls /').split('\n');
      for (const dir of ['bin', 'etc']) assert.ok(top.includes(dir), `/${dir} in the container's root (ls / gave ${JSON.stringify(top)})`);
      ok(await d.isula(['exec', 'm1', 'sh', '-c', 'echo kit-marker > /kit-marker']), 'write into the rootfs');
      ok(await d.isula(['stop', '-t', '0', 'm1']));
      ok(await d.isula(['start', 'm1']));
      assert.equal(ok(await d.isula(['exec', 'm1', 'cat', '/kit-marker']), 'read back'), 'kit-marker\n', 'mounting again gives the same root filesystem');
      ok(await d.isula(['rm', '-f', 'm1']));
    });

    test(IMAGE_SPECS.config, async (t) => {
      const d = await opts.daemon(t);
      const image = await opts.image(t, d);
      const env = ok(await d.isula(['run', '--rm', ...image.args, 'env']), 'env').split('\n');
      for (const e of image.config.env) assert.ok(env.includes(e), `${e} in the container's environment (env gave ${JSON.stringify(env)})`);
      assert.equal(ok(await d.isula(['run', '--rm', ...image.args, 'sh', '-c', 'pwd']), 'pwd').trim(), image.config.workingDir ?? '/', 'the working directory');
      if (image.config.cmd === undefined) {
        const none = await d.isula(['run', '--rm', ...image.args]);
        assert.equal(none.code, 125, `a run without a command, on an image without one, is refused: ${none.stdout}${none.stderr}`);
        assert.match(none.stderr, image.config.noCommand ?? /no command specified/i);
        return;
      }
      const out = ok(await d.isula(['run', '--name', 'c1', ...image.args]), 'run with the default command');
      assert.match(out, image.config.cmd.output, "the image's default command ran");
      assert.deepEqual((await inspect<Inspected>(d, 'c1')).Config.Cmd, image.config.cmd.args, "inspect shows the image's command");
      ok(await d.isula(['rm', 'c1']));
    });

    test(IMAGE_SPECS.listInspect, async (t) => {
      const d = await opts.daemon(t);
      const image = await opts.image(t, d);
      if ('skip' in image.list) {
        t.skip(image.list.skip);
        return;
      }
      const { repository, tag } = image.list;
      const rows = ok(await d.isula(['images', '--format', '{{.Repository}}:{{.Tag}} {{.ID}}'])).split('\n');
      assert.ok(rows.some((r) => r.startsWith(`${repository}:${tag} `)), `isula images lists ${repository}:${tag} (got ${JSON.stringify(rows)})`);
      const [img] = JSON.parse(ok(await d.isula(['inspect', '--type', 'image', `${repository}:${tag}`]))) as { Id: string; Config: { Env?: string[]; Cmd?: string[]; WorkingDir?: string } }[];
      assert.ok(img !== undefined, 'image inspect returns the image');
      if (image.id !== undefined) assert.equal(img.Id, image.id, 'the id containers record');
      for (const e of image.config.env) assert.ok(img.Config.Env?.includes(e), `${e} in the image's Config.Env`);
      if (image.config.cmd !== undefined) assert.deepEqual(img.Config.Cmd, image.config.cmd.args, 'Config.Cmd');
      assert.equal(img.Config.WorkingDir ?? '', image.config.workingDir ?? '', 'Config.WorkingDir');
    });

    test(IMAGE_SPECS.release, async (t) => {
      const d = await opts.daemon(t);
      const image = await opts.image(t, d);
      const before = await driverMounts(d, image);
      const id = ok(await d.isula(['run', '-d', '--name', 'x1', ...image.args, 'sleep', '300'])).trim();
      assert.notDeepEqual(await pathsNaming(d.root, id), [], 'a running container has paths named after it under the roots (else the leftover check below proves nothing)');
      ok(await d.isula(['rm', '-f', 'x1']));
      assert.deepEqual(await driverMounts(d, image), before, 'rm released the root filesystem mount');
      const again = await d.isula(['rm', 'x1']);
      assert.notEqual(again.code, 0, 'a second rm fails');
      assert.match(again.stderr, /No such container: x1/);
      // Created, never started: the layer prepareRootfs (or mountRootfs) made at create goes at rm too.
      const created = ok(await d.isula(['create', '--name', 'x2', ...image.args, 'true'])).trim();
      ok(await d.isula(['rm', 'x2']));
      await d.stop();
      assert.deepEqual(await driverMounts(d, image), [], 'no mount under the daemon roots after it stopped');
      for (const c of [id, created]) assert.deepEqual(await pathsNaming(d.root, c), [], `nothing under the daemon roots is named after ${c.slice(0, 12)}`);
    });

    checkSkips();
  });
}
