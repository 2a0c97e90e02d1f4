/**
 * `npm run demo` as a user runs it (node test/sandbox/demo.ts in its own process): the tour's
 * sections in order, the report it names exists, config, state and next commands are printed,
 * and no emulator outlives it — at the end, with `--keep` on Ctrl-C, and on Ctrl-C mid-tour.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { alive } from '../sandbox/net.ts';

const ENV = { ...process.env, AWS_EC2_METADATA_DISABLED: 'true', METADATA_SERVER_DETECTION: 'none' };

/** The tour's sections, in order: number and the commands the heading names. */
const SECTIONS = [
  [1, 'fleetward discover'],
  [2, 'fleetward backup run, backup status'],
  [3, 'fleetward drill run'],
  [4, 'fleetward tags plan'],
  [5, 'fleetward audit collect, audit verify'],
  [6, 'fleetward snapshot'],
] as const;

interface Demo {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<number | null>;
}

/** Demos and their directories of the running test: stopped (Ctrl-C) and removed after it. */
const running: { demo: Demo; dir: string }[] = [];

afterEach(async () => {
  for (const { demo, dir } of running.splice(0)) {
    if (demo.child.exitCode === null && demo.child.signalCode === null) {
      demo.child.kill('SIGINT');
      await demo.exited;
    }
    rmSync(dir, { recursive: true, force: true });
  }
});

/**
 * Starts the demo in its own process: `npm run demo` exactly as the README says when `viaNpm`,
 * else its script directly (so a signal reaches the demo itself, not npm).
 */
function startDemo(prefix: string, args: string[] = [], viaNpm = false): Demo & { dir: string } {
  const dir = mkdtempSync(join(tmpdir(), `fleetward-${prefix}-`));
  args = [...args, '--dir', dir];
  const [command, argv] = viaNpm
    ? ['npm', ['run', '--silent', 'demo', '--', ...args]]
    : [process.execPath, ['test/sandbox/demo.ts', ...args]];
  const child = spawn(command, argv, {
    env: ENV,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d) => (stdout += d));
  child.stderr?.on('data', (d) => (stderr += d));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  const demo = { child, stdout: () => stdout, stderr: () => stderr, exited };
  running.push({ demo, dir });
  return { ...demo, dir };
}

/** Resolves once the demo's stdout matches `pattern`; rejects, with its output, if it exits first. */
async function waitForOutput(demo: Demo, pattern: RegExp): Promise<RegExpMatchArray> {
  for (;;) {
    const m = pattern.exec(demo.stdout());
    if (m) return m;
    const code = await Promise.race([demo.exited, new Promise((r) => setTimeout(() => r('wait'), 100))]);
    if (code !== 'wait')
      throw new Error(`demo exited (${code}) before ${pattern}:\n${demo.stdout()}\n${demo.stderr()}`);
  }
}

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** Every loopback port the generated config and kubeconfig point at (every local cloud). */
function emulatorPorts(dir: string): number[] {
  const text = ['fleet.yaml', 'kubeconfig.yaml']
    .map((f) => join(dir, f))
    .filter((f) => existsSync(f))
    .map((f) => readFileSync(f, 'utf8'))
    .join('\n');
  return [...new Set([...text.matchAll(/127\.0\.0\.1:(\d+)/g)].map((m) => Number(m[1])))];
}

async function expectEverythingStopped(stdout: string, dir: string): Promise<void> {
  const motoPid = Number(/moto pid (\d+)/.exec(stdout)?.[1]);
  expect(motoPid).toBeGreaterThan(0);
  expect(alive(motoPid), `moto (pid ${motoPid}) still running`).toBe(false);
  const ports = emulatorPorts(dir);
  expect(ports.length).toBeGreaterThan(3);
  const open = [];
  for (const port of ports) if (await portOpen(port)) open.push(port);
  expect(open, 'ports of local clouds still listening').toEqual([]);
}

/** Runs the CLI with the environment a printed `FLEETWARD_CONFIG=... npx fleetward ...` line sets. */
function runPrinted(config: string, args: string[]): Promise<{ code: number | null; stdout: string }> {
  return new Promise((resolveRun, reject) => {
    const child = spawn(process.execPath, ['bin/fleetward.ts', ...args], {
      env: { ...ENV, FLEETWARD_CONFIG: config },
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    let stdout = '';
    child.stdout?.on('data', (d) => (stdout += d));
    child.on('error', reject);
    child.on('close', (code) => resolveRun({ code, stdout }));
  });
}

/** The lines of the README's quick start that show how the demo ends (its last code block there). */
function readmeQuickStartEnd(): string[] {
  const readme = readFileSync('README.md', 'utf8');
  const quickStart = readme.slice(
    readme.indexOf('## Quick start'),
    readme.indexOf('\n## ', readme.indexOf('## Quick start') + 1),
  );
  const block = /It ends with where things are and what to try next:\n\n```\n([\s\S]*?)\n```/.exec(
    quickStart,
  )?.[1];
  if (!block)
    throw new Error(
      'README quick start: no block after "It ends with where things are and what to try next:"',
    );
  // The README shows the default folder: the FLEETWARD_CONFIG lines name it relative to the repository.
  return block
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => l.replace('FLEETWARD_CONFIG=.fleetward/demo/', 'FLEETWARD_CONFIG=<repo>/.fleetward/demo/'));
}

describe('npm run demo', () => {
  it('tours discover, backup, drill, tags, audit and snapshot, names the report, config, state and next commands, and stops every emulator', async () => {
    const demo = startDemo('demo', [], true);
    const { dir } = demo;
    const code = await demo.exited;
    const out = demo.stdout();

    expect(code, `${out}\n${demo.stderr()}`).toBe(0);
    const headings = [...out.matchAll(/^== (\d)\/6 .+ \((.+)\) ==$/gm)].map((m) => [Number(m[1]), m[2]]);
    expect(headings).toEqual(SECTIONS.map(([n, commands]) => [n, commands]));
    // Each section: the command as typed, what its exit code means, a legend.
    for (const section of out.split(/^== \d\/6 /m).slice(1)) {
      expect(section).toMatch(/^\$ npx fleetward .+ --config \S+fleet\.yaml$/m);
      expect(section).toMatch(/^-> exit [01]: /m);
      expect(section).toMatch(/^Legend:$/m);
    }
    // discover's own legend explains the '?' of its SECRETS and AUDIT columns.
    expect(out).toMatch(/^Legend: SECRETS [^\n]*(\n {8,}[^\n]*)*\? = the cloud does not report it/m);

    const report = /^Report {2}(\S+)/m.exec(out)?.[1] as string;
    expect(isAbsolute(report)).toBe(true);
    expect(report).toBe(join(dir, 'report', 'eu', 'snapshot.html'));
    expect(readFileSync(report, 'utf8')).toMatch(/<html/i);
    expect(out).toMatch(/next to it: .*in\/.*za\//);
    expect(/^Config {2}(\S+)/m.exec(out)?.[1]).toBe(join(dir, 'fleet.yaml'));
    const state = /^State {3}(\S+)/m.exec(out)?.[1] as string;
    expect(state).toBe(join(dir, 'state.db'));
    expect(existsSync(state)).toBe(true);
    const next = [...out.matchAll(/^ {2}FLEETWARD_CONFIG=(\S+) npx fleetward ([a-z ]+?)\s+#/gm)];
    expect(next.map((m) => m[2])).toEqual(['tags apply', 'budgets plan', 'doctor']);
    for (const m of next) expect(m[1]).toBe(join(dir, 'fleet.yaml'));
    expect(out).toMatch(/^Demo finished in [\d.]+ s .*:\n.*every emulator stopped\.$/m);
    // The README's quick start shows the end of this output, with the default folder for `dir`.
    const printed = out.split(dir).join('<repo>/.fleetward/demo');
    for (const line of readmeQuickStartEnd()) expect(printed.split('\n')).toContain(line);

    await expectEverythingStopped(out, dir);
  }, 240_000);

  it('with --keep, the printed commands work against the same clouds and state until Ctrl-C stops them', async () => {
    const demo = startDemo('demo-keep', ['--keep']);
    const { dir } = demo;
    await waitForOutput(demo, /Press Ctrl-C to stop the local clouds\./);
    const printed = /FLEETWARD_CONFIG=(\S+) npx fleetward budgets plan/.exec(demo.stdout());
    const config = resolve(printed?.[1] as string);

    // The backups the tour made are in the state the printed config names, and the clouds answer.
    const status = await runPrinted(config, ['backup', 'status', '--json']);
    const budgets = await runPrinted(config, ['budgets', 'plan']);

    const clusters = (JSON.parse(status.stdout) as { clusters: { lastBackup: { phase: string } | null }[] })
      .clusters;
    expect(clusters.filter((c) => c.lastBackup?.phase === 'Completed').length).toBeGreaterThan(3);
    expect([0, 1]).toContain(budgets.code);
    expect(budgets.stdout).not.toBe('');

    demo.child.kill('SIGINT');
    expect(await demo.exited).toBe(0);
    await expectEverythingStopped(demo.stdout(), dir);
  }, 240_000);

  it('stops every emulator and exits 130 on Ctrl-C in the middle of the tour', async () => {
    const demo = startDemo('demo-int');
    const { dir } = demo;
    await waitForOutput(demo, /^== 2\/6 /m);

    demo.child.kill('SIGINT');

    expect(await demo.exited).toBe(130);
    expect(demo.stdout()).not.toMatch(/^== Where things are ==$/m);
    await expectEverythingStopped(demo.stdout(), dir);
  }, 240_000);
});
