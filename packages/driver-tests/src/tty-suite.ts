/**
 * Interactive sessions the way a person has them, written once and run per
 * runtime: `isula run -it` in a real terminal (tmux on its own server
 * socket), typing, reading the screen, resizing the window, detaching with
 * ctrl-p ctrl-q, re-attaching, and an exec with a TTY.
 */
import assert from 'node:assert/strict';
import { describe } from 'node:test';
import { suiteTests, type SuiteOptions } from './suite-options.js';
import { ISULA, onInterrupt, runDetached, waitFor } from './harness.js';
import { daemon, inspect, ok } from './containers.js';

interface Term {
  screen(): Promise<string>;
  type(...keys: string[]): Promise<void>;
  waitScreen(re: RegExp, what: string): Promise<string>;
}

/** A detached tmux session on a private server running `command`; the pane stays after it ends. */
async function terminal(t: { after(fn: () => Promise<void>): void }, runtime: string, name: string, command: string, size = { cols: 80, rows: 24 }): Promise<Term & { tmux(...args: string[]): Promise<string> }> {
  const server = `isula-e2e-${process.pid}-${name}-${runtime.replace(/[^A-Za-z0-9]/g, '')}`;
  // Detached (runDetached says why): killServer runs in an interrupt's teardown.
  const tmux = async (...args: string[]) => {
    const r = await runDetached('tmux', ['-L', server, '-f', '/dev/null', ...args], { timeoutMs: 10_000 });
    if (r.code !== 0) throw new Error(`tmux ${args[0] ?? ''} exited ${r.code}: ${r.stderr.trim()}`);
    return r.stdout;
  };
  const killServer = async () => { await tmux('kill-server').catch(() => {}); };
  // Its server is a daemon of its own: an interrupted run that skips t.after must still end it.
  const forget = onInterrupt(killServer);
  t.after(async () => { forget(); await killServer(); });
  await tmux('new-session', '-d', '-s', name, '-x', String(size.cols), '-y', String(size.rows), `${command}; echo "[exit $?]"; sleep 600`);
  const screen = () => tmux('capture-pane', '-p', '-t', name);
  return {
    tmux,
    screen,
    type: async (...keys) => { await tmux('send-keys', '-t', name, ...keys); },
    // A timeout shows the screen: what the container printed instead is the clue.
    waitScreen: async (re, what) => {
      let last = '';
      try {
        return await waitFor(async () => { last = await screen(); return re.test(last) ? last : undefined; }, { timeoutMs: 15_000, intervalMs: 50, what });
      } catch (err) {
        throw new Error(`${(err as Error).message}; the screen:\n${last.trimEnd()}`);
      }
    },
  };
}

/** `opts` as lifecycleSuite's (skip, config merged into daemon.json, skipTests by name → reason). */
export function ttySuite(runtime: string, opts: SuiteOptions = {}): void {
  describe(`terminals on ${runtime}`, { skip: opts.skip ?? false }, () => {
    const { test, checkSkips } = suiteTests(`ttySuite(${runtime})`, opts);
    test('run -it: type and read, resize, detach with ctrl-p ctrl-q, re-attach and exit with the shell\'s code', async (t) => {
      const d = await daemon(t, { 'default-runtime': runtime, ...opts.config }, opts);
      const isula = `${process.execPath} ${ISULA} -H ${d.host}`;
      const term = await terminal(t, runtime, 'run', `${isula} run -it --name tty busybox sh`);
      await term.waitScreen(/^\/ #\s*$/m, 'the shell prompt');
      await term.type('echo $((6*7))', 'Enter');
      await term.waitScreen(/^42\s*$/m, 'the answer on the screen');
      await term.type('stty size', 'Enter');
      await term.waitScreen(/^24 80\s*$/m, 'the terminal size inside the container');
      await term.tmux('resize-window', '-t', 'run', '-x', '100', '-y', '30');
      // The resize travels isula → isulad → conmon's control fifo, the keys
      // through the attach socket: unordered, so ask again until the size shows.
      await waitFor(async () => {
        await term.type('clear; stty size', 'Enter');
        await new Promise((r) => setTimeout(r, 200));
        return /^30 100\s*$/m.test(await term.screen());
      }, { timeoutMs: 15_000, intervalMs: 100, what: 'the new size after a resize' });

      // ctrl-p ctrl-q: the client leaves, the container keeps running.
      await term.type('C-p', 'C-q');
      await term.waitScreen(/\[exit 0\]/, 'isula to exit 0 on detach');
      assert.equal((await inspect<{ State: { Running: boolean } }>(d, 'tty')).State.Running, true, 'the container runs on after a detach');

      const again = await terminal(t, runtime, 'attach', `${isula} attach tty`);
      await new Promise((r) => setTimeout(r, 300));
      await again.type('echo back-$((1+1))', 'Enter');
      await again.waitScreen(/^back-2\s*$/m, 'output after re-attaching');
      // attach detaches too; as docker's client it says so and exits 1.
      await again.type('C-p', 'C-q');
      await again.waitScreen(/read escape sequence\s*\n\[exit 1\]/, 'attach to leave on the detach keys');
      const third = await terminal(t, runtime, 'third', `${isula} attach tty`);
      await new Promise((r) => setTimeout(r, 300));
      await third.type('exit 3', 'Enter');
      await third.waitScreen(/\[exit 3\]/, 'attach to exit with the container\'s code');
      const st = await inspect<{ State: { Running: boolean; ExitCode: number } }>(d, 'tty');
      assert.equal(st.State.Running, false);
      assert.equal(st.State.ExitCode, 3);

      // Attaching to a stopped container is a clear error.
      const stopped = await d.isula(['attach', 'tty']);
      assert.notEqual(stopped.code, 0);
      assert.match(stopped.stderr, /You cannot attach to a stopped container, start it first/);
    });

    test('exec -it: a shell in a running container with its own size, exit code on exit', async (t) => {
      const d = await daemon(t, { 'default-runtime': runtime, ...opts.config }, opts);
      ok(await d.isula(['run', '-d', '--name', 'host', 'busybox', 'sleep', '1d']));
      const isula = `${process.execPath} ${ISULA} -H ${d.host}`;
      const term = await terminal(t, runtime, 'exec', `${isula} exec -it host sh`, { cols: 90, rows: 20 });
      await term.waitScreen(/^\/ #\s*$/m, 'the exec shell prompt');
      await term.type('tty; stty size', 'Enter');
      await term.waitScreen(/^\/dev\/pts\/\d+\s*\n20 90\s*$/m, 'a pty of the window\'s size');
      await term.type('exit 4', 'Enter');
      await term.waitScreen(/\[exit 4\]/, 'isula exec to exit with the shell\'s code');
      assert.equal((await inspect<{ State: { Running: boolean } }>(d, 'host')).State.Running, true, 'the container is untouched');
    });

    checkSkips();
  });
}
