/**
 * Slack from the CLI against the sandbox, as a user tries it: `fleetward notify test` sends one
 * message per route to the sandbox's webhook sink and reports Slack's answer per route (200,
 * a 429 waited out and retried, 404 no_service); a mistyped `--route` exits 2 with a
 * suggestion; job commands send their digest only with `--notify`, and a failed notification
 * makes the exit code 1 without losing the command's output.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { notifyAfter, type RouteTest, routeNames } from '../../bin/notify.ts';
import { loadConfig } from '../../shared/config/load.ts';
import { silentLogger } from '../../shared/runtime/logger.ts';
import { openStateStore } from '../../shared/state/index.ts';
import { runFleetward, runFleetwardJson } from '../sandbox/cli.ts';
import { type Sandbox, startSandbox } from '../sandbox/index.ts';
import type { SlackSink } from '../sandbox/slack-sink.ts';

/** The CLI in its own process; each run starts Node, so allow for a loaded machine. */
const SLOW = 240_000;

describe('fleetward notify and --notify against the sandbox', () => {
  let sandbox: Sandbox;
  let sink: SlackSink;
  let config: string[];
  let env: Record<string, string>;
  const fleetward = (args: string[]) => runFleetward([...args, ...config]);
  const received = (webhook: string) => sink.messages(webhook).length;

  /** Waits until `webhook` may take a message again under the sink's 1-per-second limit. */
  async function quiet(webhook: string): Promise<void> {
    const last = sink.messages(webhook).at(-1)?.at ?? 0;
    const wait = last + 1100 - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  }

  /** Points the `platform` webhook's variable at a path the sink does not know (a deleted webhook). */
  function retirePlatformWebhook(): void {
    process.env.FLEETWARD_SANDBOX_SLACK_PLATFORM = `${new URL(sink.messagesUrl).origin}/services/test/sandbox/retired`;
  }

  beforeAll(async () => {
    sandbox = await startSandbox({
      clusters: 8,
      dir: mkdtempSync(join(tmpdir(), 'fleetward-notify-')),
      slack: true,
    });
    sink = sandbox.slack!.sink;
    env = sandbox.slack!.env;
    Object.assign(process.env, env);
    config = ['--config', sandbox.configPath, '--log-level', 'error'];
  });
  afterEach(() => {
    Object.assign(process.env, env);
  });
  afterAll(async () => {
    for (const name of Object.keys(env ?? {})) delete process.env[name];
    await sandbox?.stop();
    if (sandbox) rmSync(sandbox.dir, { recursive: true, force: true });
  });

  it(
    'notify test delivers one message per route and reports each route, its webhook and 200 ok',
    async () => {
      const before = { platform: received('platform'), eu: received('eu-dpo') };
      const heard: string[] = [];
      const unsubscribe = sink.onMessage((webhook) => heard.push(webhook));

      const run = await fleetward(['notify', 'test']);
      unsubscribe();

      expect(run.code, run.stderr).toBe(0);
      expect(run.stdout).toMatch(/^ROUTE\s+WEBHOOK\s+ANSWER\s+TIME$/m);
      expect(run.stdout).toMatch(/^all\/platform\s+platform\s+200 ok\s+\d+\.\d\d s$/m);
      expect(run.stdout).toMatch(/^eu\/eu-dpo\s+eu-dpo\s+200 ok\s+\d+\.\d\d s$/m);
      expect(run.stdout).toMatch(/^Summary: 2 delivered \(exit 0: done\)$/m);
      // The webhook URL is a secret: never printed.
      expect(run.stdout + run.stderr).not.toContain('/services/');
      expect(received('platform')).toBe(before.platform + 1);
      expect(received('eu-dpo')).toBe(before.eu + 1);
      expect(sink.messages('platform').at(-1)?.body.text).toMatch(
        /^Fleetward test message \[sandbox\]: route all\/platform/,
      );
      expect(sink.messages('eu-dpo').at(-1)?.body.text).toMatch(/route eu\/eu-dpo/);
      // What `npm run sandbox` shows a user: each message as it arrives, and all of them over HTTP.
      expect(heard.sort()).toEqual(['eu-dpo', 'platform']);
      const listed = (await (await fetch(sink.messagesUrl)).json()) as { webhook: string; text: string }[];
      expect(
        listed
          .filter((m) => m.text.startsWith('Fleetward test message'))
          .map((m) => m.webhook)
          .sort(),
      ).toEqual(['eu-dpo', 'platform']);
    },
    SLOW,
  );

  it(
    'notify test --route with a mistyped name exits 2, suggests the route and sends nothing',
    async () => {
      const before = sink.messages().length;

      const run = await fleetward(['notify', 'test', '--route', 'all/platfrom']);

      expect(run.code).toBe(2);
      expect(run.stderr).toMatch(/unknown route "all\/platfrom"; did you mean "all\/platform"\?/);
      expect(run.stderr).toMatch(/routes: all\/platform, eu\/eu-dpo/);
      expect(sink.messages()).toHaveLength(before);
    },
    SLOW,
  );

  it(
    'notify test --route waits out a 429, retries, and reports the retry',
    async () => {
      await quiet('eu-dpo');
      sink.failNext('eu-dpo', { status: 429, retryAfterSeconds: 1 });
      const before = received('eu-dpo');

      const { code, json } = await runFleetwardJson<{
        routes: RouteTest[];
        summary: { delivered: number; failed: number };
      }>(['notify', 'test', '--route', 'eu/eu-dpo', ...config]);

      expect(code).toBe(0);
      expect(json.summary).toEqual({ delivered: 1, failed: 0 });
      expect(json.routes).toHaveLength(1);
      const [route] = json.routes;
      expect(route).toMatchObject({ route: 'eu/eu-dpo', webhook: 'eu-dpo', delivered: true, status: 200 });
      expect(route?.attempts.map((a) => a.status)).toEqual([429, 200]);
      expect(route?.answer).toBe('200 ok after 1 retry (429)');
      expect(route?.ms).toBeGreaterThanOrEqual(900); // Retry-After: 1
      expect(received('eu-dpo')).toBe(before + 1);
    },
    SLOW,
  );

  it(
    'notify test reports 404 no_service for a webhook Slack no longer has, and exits 1',
    async () => {
      retirePlatformWebhook();
      const before = received('eu-dpo');

      const run = await fleetward(['notify', 'test']);

      expect(run.code).toBe(1);
      expect(run.stdout).toMatch(/^all\/platform\s+platform\s+404 no_service \(not retried\)/m);
      expect(run.stdout).toMatch(/^eu\/eu-dpo\s+eu-dpo\s+200 ok/m);
      expect(run.stdout).toMatch(/^Summary: 1 delivered, 1 failed \(exit 1: completed with failures\)$/m);
      expect(received('eu-dpo')).toBe(before + 1);
    },
    SLOW,
  );

  it(
    'backup run sends nothing to Slack; backup run --notify sends the digest the function would',
    async () => {
      const before = sink.messages().length;
      const plain = await fleetward(['backup', 'run']);
      expect(plain.stdout).toMatch(/^created /m);
      expect(plain.stderr).not.toMatch(/^Slack:/m);
      expect(sink.messages()).toHaveLength(before);

      await quiet('platform');
      await quiet('eu-dpo');
      const notified = await fleetward(['backup', 'run', '--notify']);

      expect(notified.code).toBe(plain.code); // the seeded gaps are findings either way
      expect(notified.stdout).toMatch(/^exists /m);
      expect(notified.stderr).toMatch(/^Slack: notified 2 route\(s\) \(all\/platform, eu\/eu-dpo\)$/m);
      const platform = sink.messages('platform').at(-1)?.body.text;
      expect(platform).toMatch(/^Fleetward backup \[sandbox\]: \d+ new findings? \(/);
      expect(sink.messages('eu-dpo').at(-1)?.body.text).toMatch(/^Fleetward backup · eu \[sandbox\]/);
    },
    SLOW,
  );

  it(
    'a failed --notify makes the exit code 1, keeps the output, and the next --notify sends it again',
    async () => {
      retirePlatformWebhook();
      const before = received('platform');

      const failed = await fleetward(['tags', 'plan', '--notify']);

      expect(failed.code).toBe(1); // tags plan exits 0 on findings alone
      expect(failed.stdout).toMatch(/owner: missing/);
      expect(failed.stderr).toMatch(
        /^Slack: route all\/platform \(webhook platform\) failed: slack webhook [0-9a-f]{8} answered 404 no_service/m,
      );
      expect(failed.stderr).not.toContain('/services/');
      expect(received('platform')).toBe(before);

      Object.assign(process.env, env);
      await quiet('platform');
      const again = await fleetward(['tags', 'plan', '--notify']);

      expect(again.code).toBe(0);
      expect(again.stderr).toMatch(/^Slack: notified 1 route\(s\) \(all\/platform\)$/m);
      expect(sink.messages('platform').at(-1)?.body.text).toMatch(
        /^Fleetward tags \[sandbox\]: \d+ new findings \(\d+ medium\)/,
      );
    },
    SLOW,
  );
});

describe('--notify and route names without Slack configured', () => {
  it.each([
    [[{ webhook: 'ops', minSeverity: 'info' as const }], ['all/ops']],
    [
      [
        { webhook: 'ops', jurisdiction: 'eu', minSeverity: 'high' as const },
        { webhook: 'ops', jurisdiction: 'eu', minSeverity: 'low' as const },
        { webhook: 'dpo', minSeverity: 'info' as const },
      ],
      ['eu/ops', 'eu/ops#2', 'all/dpo'],
    ],
  ])('names routes <jurisdiction>/<webhook>, numbering repeats: %j', (routes, names) => {
    expect(routeNames(routes)).toEqual(names);
  });

  it('--notify on a config without Slack routes says so and resolves false (the command then exits 1)', async () => {
    const config = await loadConfig('fleet.example.yaml');
    const { slack: _none, ...withoutSlack } = config;
    const store = await openStateStore({ type: 'sqlite', path: ':memory:' });
    const stderr = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    try {
      const withNotify = await notifyAfter(
        true,
        { config: withoutSlack, store, logger: silentLogger },
        { job: 'backup' },
      );
      const without = await notifyAfter(
        false,
        { config: withoutSlack, store, logger: silentLogger },
        { job: 'backup' },
      );

      expect(withNotify).toBe(false);
      expect(without).toBe(true);
      expect(stderr.mock.calls.map(([line]) => String(line))).toEqual([
        'Slack: not notified: the config has no slack routes (slack.webhooks and slack.routes)\n',
      ]);
    } finally {
      stderr.mockRestore();
      await store.close();
    }
  });
});
