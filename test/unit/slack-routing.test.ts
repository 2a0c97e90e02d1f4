import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { parseConfig } from '../../shared/config/load.ts';
import type { FleetConfig } from '../../shared/config/schema.ts';
import type { Cluster, Finding } from '../../shared/model.ts';
import {
  createNotifier,
  type JobReport,
  NOTIFY_NS,
  type NotifiedState,
  type Notifier,
  notifyAfterJob,
  notifyDiscovery,
  notifyJobFindings,
} from '../../shared/notify/notifier.ts';
import {
  clearWebhookCache,
  createWebhookResolver,
  WebhookResolveError,
} from '../../shared/notify/webhooks.ts';
import type { Log, StateStore } from '../../shared/ports.ts';
import { SqliteStateStore } from '../../shared/state/sqlite.ts';
import { FaultInjector } from '../sandbox/faults.ts';
import { type SlackSink, startSlackSink } from '../sandbox/slack-sink.ts';

const ENV = {
  eu: 'FLEETWARD_TEST_SLACK_EU',
  india: 'FLEETWARD_TEST_SLACK_INDIA',
  pager: 'FLEETWARD_TEST_SLACK_PAGER',
} as const;

function memoryLog() {
  const lines: string[] = [];
  const at =
    (level: string) =>
    (message: string, ...extra: Record<string, unknown>[]) =>
      lines.push(`${level} ${message} ${JSON.stringify(extra)}`);
  const logger: Log = { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
  return { logger, lines };
}

function config(routes: unknown[], extra: Record<string, unknown> = {}): FleetConfig {
  return parseConfig({
    version: 1,
    clouds: {
      aws: {
        accounts: [
          {
            id: '111111111111',
            roleArn: 'arn:aws:iam::111111111111:role/fleetward-reader',
            regions: ['eu-central-1'],
          },
        ],
      },
    },
    jurisdictions: { eu: { preset: 'eu-gdpr' }, in: { preset: 'in-dpdp' } },
    slack: {
      webhooks: {
        eu: { from: 'env', name: ENV.eu },
        india: { from: 'env', name: ENV.india },
        pager: { from: 'env', name: ENV.pager },
      },
      routes,
      ...extra,
    },
  });
}

const ROUTES = [
  { jurisdiction: 'eu', webhook: 'eu' },
  { jurisdiction: 'in', minSeverity: 'high', webhook: 'india' },
  { minSeverity: 'critical', webhook: 'pager' },
];

function finding(
  clusterId: string,
  jurisdiction: string,
  severity: Finding['severity'],
  kind = 'velero-missing',
): Finding {
  return {
    clusterId,
    jurisdiction,
    kind,
    severity,
    message: `${kind} on ${clusterId}`,
    at: '2025-01-01T00:00:00.000Z',
  };
}

let sink: SlackSink;
const faults = new FaultInjector();
const notifiers: Notifier[] = [];

beforeAll(async () => {
  sink = await startSlackSink({ rateLimit: false, faults });
});
afterAll(async () => {
  await sink.stop();
});

let prefix = 0;
beforeEach(() => {
  // Fresh webhook names per test: the sink keeps every message it accepted.
  prefix++;
  for (const [name, variable] of Object.entries(ENV)) process.env[variable] = sink.url(`${prefix}-${name}`);
  faults.clear();
});
afterEach(async () => {
  await Promise.all(notifiers.splice(0).map((n) => n.close()));
  for (const variable of Object.values(ENV)) delete process.env[variable];
});

const received = (name: keyof typeof ENV) =>
  sink.messages(`${prefix}-${name}`).map((m) => JSON.stringify(m.body));

async function notifier(cfg: FleetConfig, logger: Log = memoryLog().logger): Promise<Notifier> {
  const n = await createNotifier(cfg, { logger, delivery: { minIntervalMs: 0 } });
  notifiers.push(n);
  return n;
}

describe('notifier routing', () => {
  it.each([
    {
      name: 'by jurisdiction and severity',
      findings: [
        finding('eu-medium', 'eu', 'medium'),
        finding('eu-critical', 'eu', 'critical'),
        finding('in-low', 'in', 'low'),
        finding('in-high', 'in', 'high'),
      ],
      expected: { eu: ['eu-medium', 'eu-critical'], india: ['in-high'], pager: ['eu-critical'] },
    },
    {
      name: 'sending nothing to routes with nothing to say',
      findings: [finding('in-low', 'in', 'low'), finding('other', 'unassigned', 'high')],
      expected: { eu: [], india: [], pager: [] },
    },
    {
      name: 'sending unassigned clusters only to routes without a jurisdiction',
      findings: [finding('lost', 'unassigned', 'critical')],
      expected: { eu: [], india: [], pager: ['lost'] },
    },
  ])('routes findings $name', async ({ findings, expected }) => {
    // Prepare
    const n = await notifier(config(ROUTES));

    // Act
    const result = await n.notify({ job: 'backup', findings });

    // Assess
    const all = ['eu-medium', 'eu-critical', 'in-low', 'in-high', 'other', 'lost'];
    for (const [hook, ids] of Object.entries(expected) as [keyof typeof ENV, string[]][]) {
      const messages = received(hook);
      expect(messages).toHaveLength(ids.length > 0 ? 1 : 0);
      for (const id of all) {
        const shown = messages.some((m) => m.includes(`\`${id}\``));
        expect(shown, `${id} in ${hook}`).toBe(ids.includes(id));
      }
    }
    const sent = Object.values(expected).filter((ids) => ids.length > 0).length;
    expect(result.sent).toBe(sent);
    expect(result.failed).toBe(0);
    expect(result.routes?.map((r) => r.status)).toEqual(
      (['eu', 'india', 'pager'] as const).map((h) => (expected[h].length > 0 ? 'sent' : 'nothing')),
    );
  });

  it('routes control changes by their severity (own, from the catalogue, else info)', async () => {
    const n = await notifier(
      config([
        { jurisdiction: 'eu', minSeverity: 'high', webhook: 'eu' },
        { jurisdiction: 'in', webhook: 'india' },
      ]),
    );
    const report: JobReport = {
      job: 'snapshot',
      findings: [],
      controlSeverity: { 'backup.recent': 'critical', 'tags.owner': 'low' },
      changes: {
        newlyFailing: [
          {
            clusterId: 'c-eu-1',
            control: 'backup.recent',
            before: 'pass',
            after: 'fail',
            jurisdiction: 'eu',
          },
          { clusterId: 'c-eu-2', control: 'tags.owner', before: 'pass', after: 'fail', jurisdiction: 'eu' },
          { clusterId: 'c-eu-3', control: 'uncatalogued', before: 'pass', after: 'fail', jurisdiction: 'eu' },
          { clusterId: 'c-in-1', control: 'uncatalogued', before: null, after: 'fail', jurisdiction: 'in' },
        ],
        newlyFixed: [
          {
            clusterId: 'c-eu-4',
            control: 'x',
            before: 'fail',
            after: 'pass',
            jurisdiction: 'eu',
            severity: 'high',
          },
        ],
      },
      counts: [
        { jurisdiction: 'eu', counts: { pass: 5, fail: 2, 'not-applicable': 0, unknown: 0 } },
        { jurisdiction: 'in', counts: { pass: 7, fail: 1, 'not-applicable': 0, unknown: 0 } },
      ],
    };

    const result = await n.notify(report);

    expect(result.sent).toBe(2);
    const [eu] = received('eu');
    expect(eu).toContain('c-eu-1');
    expect(eu).toContain('c-eu-4');
    expect(eu).not.toContain('c-eu-2');
    expect(eu).not.toContain('c-eu-3');
    expect(eu).toContain('*eu*');
    expect(eu).not.toContain('*in*');
    const [india] = received('india');
    expect(india).toContain('c-in-1');
    expect(india).not.toContain('c-eu-');
  });

  it('sends one message per route, in route order, when routes share a webhook', async () => {
    const n = await notifier(
      config([
        { jurisdiction: 'eu', webhook: 'eu' },
        { jurisdiction: 'in', webhook: 'eu' },
        { minSeverity: 'critical', webhook: 'eu' },
      ]),
    );

    await n.notify({
      job: 'backup',
      findings: [finding('a', 'eu', 'low'), finding('b', 'in', 'low'), finding('c', 'in', 'critical')],
    });

    const messages = received('eu');
    expect(messages).toHaveLength(3);
    expect(messages[0]).toContain('`a`');
    expect(messages[0]).not.toContain('`b`');
    expect(messages[1]).toContain('`b`');
    expect(messages[1]).toContain('`c`');
    expect(messages[2]).toContain('`c`');
    expect(messages[2]).not.toContain('`b`');
  });

  it('counts a route whose webhook cannot be resolved as failed, naming the webhook, not the url', async () => {
    delete process.env[ENV.india];
    const log = memoryLog();
    const n = await notifier(config(ROUTES), log.logger);

    const result = await n.notify({ job: 'backup', findings: [finding('x', 'in', 'critical')] });

    expect(result.routes?.map((r) => r.status)).toEqual(['nothing', 'failed', 'sent']);
    expect(result.routes?.[1]?.error?.message).toContain('"india"');
    expect(log.lines.join('\n')).not.toContain(sink.url(`${prefix}-pager`));
  });

  it('is a no-op without slack config', async () => {
    const cfg = { ...config(ROUTES), slack: undefined };
    const n = await createNotifier(cfg, { logger: memoryLog().logger });

    expect(await n.notify({ job: 'backup', findings: [finding('x', 'eu', 'critical')] })).toEqual({
      sent: 0,
    });
    expect(sink.messages(`${prefix}-eu`)).toHaveLength(0);
  });
});

describe('notifyJobFindings', () => {
  let store: StateStore;
  beforeEach(() => {
    store = new SqliteStateStore({ path: ':memory:' });
  });
  afterEach(async () => {
    await store.close();
  });

  const clock = { now: () => new Date('2025-01-02T00:00:00.000Z') };
  async function deps(cfg = config([{ webhook: 'eu' }])) {
    const logger = memoryLog().logger;
    return { config: cfg, store, notifier: await notifier(cfg, logger), logger, clock };
  }
  const seed = (job: string, clusterId: string, findings: Finding[]) =>
    store.putMany('findings', [{ key: `${job}/${clusterId}`, value: findings }]);

  it('sends only new findings, nothing the second time, and counts resolved ones', async () => {
    // Prepare
    await seed('backup', 'c1', [finding('c1', 'eu', 'high')]);
    await seed('backup', 'c2', [finding('c2', 'eu', 'low')]);
    await seed('tags', 'c9', [finding('c9', 'eu', 'critical', 'missing-tag')]);
    const d = await deps();

    // Act: first run, second run, then one finding closes and one opens
    const first = await notifyJobFindings(d, 'backup', { runId: 'run-1' });
    const second = await notifyJobFindings(d, 'backup');
    await store.deleteMany('findings', ['backup/c2']);
    await seed('backup', 'c3', [finding('c3', 'eu', 'medium')]);
    const third = await notifyJobFindings(d, 'backup');

    // Assess
    expect([first.sent, second.sent, third.sent]).toEqual([1, 0, 1]);
    const messages = received('eu');
    expect(messages).toHaveLength(2);
    expect(messages[0]).toContain('`c1`');
    expect(messages[0]).toContain('`c2`');
    expect(messages[0]).toContain('run-1');
    expect(messages[0]).not.toContain('c9');
    expect(messages[1]).toContain('`c3`');
    expect(messages[1]).not.toContain('`c1`');
    expect(messages[1]).toContain('1 finding resolved');
    const state = await store.get<NotifiedState>(NOTIFY_NS, 'backup');
    expect(state?.findings.map((f) => f.clusterId).sort()).toEqual(['c1', 'c3']);
    expect(JSON.stringify(state)).not.toContain('velero-missing on');
  });

  it('treats a changed message as a new finding', async () => {
    await seed('backup', 'c1', [finding('c1', 'eu', 'high')]);
    const d = await deps();
    await notifyJobFindings(d, 'backup');

    await seed('backup', 'c1', [{ ...finding('c1', 'eu', 'high'), message: 'a different problem' }]);
    const result = await notifyJobFindings(d, 'backup');

    expect(result.sent).toBe(1);
    expect(received('eu')[1]).toContain('a different problem');
    expect(received('eu')[1]).toContain('1 finding resolved');
  });

  it('re-sends after a failed delivery, because nothing was recorded', async () => {
    // Prepare: the first POST to the webhook answers 404 (not retried)
    await seed('restore-drill', 'c1', [finding('c1', 'eu', 'critical', 'drill-failed')]);
    faults.add({ cloud: 'slack', scope: `${prefix}-eu`, fault: { kind: 'error', status: 404 }, times: 1 });
    const d = await deps();

    // Act
    const failed = await notifyJobFindings(d, 'restore-drill');
    const recordedAfterFailure = await store.get(NOTIFY_NS, 'restore-drill');
    const retried = await notifyJobFindings(d, 'restore-drill');
    const after = await notifyJobFindings(d, 'restore-drill');

    // Assess
    expect(failed).toMatchObject({ sent: 0, failed: 1 });
    expect(recordedAfterFailure).toBeUndefined();
    expect(retried).toMatchObject({ sent: 1, failed: 0 });
    expect(after.sent).toBe(0);
    const messages = received('eu');
    expect(messages).toHaveLength(1);
    expect(messages[0]).toContain('drill-failed');
  });

  it('keeps a separate notified set per jurisdiction', async () => {
    await seed('audit', 'c-eu', [finding('c-eu', 'eu', 'high', 'audit-disabled')]);
    await seed('audit', 'c-in', [finding('c-in', 'in', 'high', 'audit-disabled')]);
    const d = await deps();

    const eu = await notifyJobFindings(d, 'audit', { jurisdiction: 'eu' });
    const india = await notifyJobFindings(d, 'audit', { jurisdiction: 'in' });

    expect([eu.sent, india.sent]).toEqual([1, 1]);
    const messages = received('eu');
    expect(messages[0]).toContain('c-eu');
    expect(messages[0]).not.toContain('c-in');
    expect(messages[1]).toContain('c-in');
    expect((await store.get<NotifiedState>(NOTIFY_NS, 'audit/eu'))?.findings).toHaveLength(1);
    expect(await store.get(NOTIFY_NS, 'audit')).toBeUndefined();
  });

  it('tells inventory changes every run and a failing scope only when it starts failing', async () => {
    // Prepare
    const d = await deps();
    const cluster = {
      id: 'aws/111111111111/eu-central-1/new',
      cloud: 'aws',
      region: 'eu-central-1',
      jurisdiction: 'eu',
    };
    const failure = {
      cloud: 'gcp' as const,
      scope: 'proj-one',
      kind: 'scope' as const,
      error: { name: 'CloudApiError', message: 'permission denied, request id 1', status: 403 },
    };
    const news = {
      clusters: [cluster as unknown as Cluster],
      diff: { added: [cluster.id], removed: ['azure/sub/rg/gone'] },
      failures: [failure],
    };

    // Act
    const first = await notifyDiscovery(d, news);
    const second = await notifyDiscovery(d, {
      clusters: [],
      diff: { added: [], removed: [] },
      failures: [{ ...failure, error: { ...failure.error, message: 'permission denied, request id 2' } }],
    });
    const recovered = await notifyDiscovery(d, {
      clusters: [],
      diff: { added: [], removed: [] },
      failures: [],
    });

    // Assess
    expect([first.sent, second.sent, recovered.sent]).toEqual([1, 0, 1]);
    const messages = received('eu');
    expect(messages[0]).toContain('cluster-added');
    expect(messages[0]).toContain('new aws cluster in eu-central-1');
    expect(messages[0]).toContain('`azure/sub/rg/gone`');
    expect(messages[0]).toContain('`gcp/proj-one`');
    expect(messages[0]).toContain('scope failed: CloudApiError (403)');
    expect(messages[1]).toContain('1 finding resolved');
  });

  it('does nothing without slack config', async () => {
    await seed('backup', 'c1', [finding('c1', 'eu', 'high')]);
    const d = await deps();

    const result = await notifyJobFindings({ ...d, config: { ...d.config, slack: undefined } }, 'backup');

    expect(result).toEqual({ sent: 0 });
    expect(await store.get(NOTIFY_NS, 'backup')).toBeUndefined();
  });
});

describe('notifyAfterJob', () => {
  it('logs a failure instead of failing the job', async () => {
    // Prepare: a store that cannot be read
    const broken: StateStore = {
      get: () => Promise.reject(new Error('state unavailable')),
      list: () => Promise.reject(new Error('state unavailable')),
      putMany: () => Promise.reject(new Error('state unavailable')),
      putIfAbsent: () => Promise.reject(new Error('state unavailable')),
      deleteMany: () => Promise.reject(new Error('state unavailable')),
      close: async () => undefined,
    };
    const log = memoryLog();

    // Act
    const result = await notifyAfterJob(
      { config: config(ROUTES), store: broken, logger: log.logger },
      'backup',
    );

    // Assess
    expect(result).toBeUndefined();
    expect(
      log.lines.some(
        (l) => l.startsWith('error Slack notification failed') && l.includes('state unavailable'),
      ),
    ).toBe(true);
  });

  it('delivers the new findings of a job', async () => {
    const store = new SqliteStateStore({ path: ':memory:' });
    await store.putMany('findings', [
      { key: 'budgets/c1', value: [finding('c1', 'eu', 'medium', 'budget-missing')] },
    ]);

    const result = await notifyAfterJob(
      { config: config(ROUTES), store, logger: memoryLog().logger },
      'budgets',
      {},
      { delivery: { minIntervalMs: 0 } },
    );

    expect(result?.sent).toBe(1);
    expect(received('eu')[0]).toContain('budget-missing');
    await store.close();
  });
});

describe('webhook resolver', () => {
  beforeEach(() => clearWebhookCache());

  it.each([
    { url: 'https://hooks.example.test/services/x', ok: true },
    { url: 'http://127.0.0.1:8080/services/x', ok: true },
    { url: 'http://localhost:8080/services/x', ok: true },
    { url: 'http://[::1]:8080/services/x', ok: true },
    { url: 'http://hooks.example.test/services/x', ok: false },
    { url: 'ftp://127.0.0.1/x', ok: false },
    { url: 'not a url', ok: false },
  ])('accepts $url: $ok', async ({ url, ok }) => {
    const resolver = createWebhookResolver({ ops: { from: 'env', name: 'HOOK' } }, { env: { HOOK: url } });

    const outcome = resolver.resolve('ops').then(
      (u) => ({ url: u }),
      (e: unknown) => ({ error: e }),
    );

    const got = await outcome;
    if (ok) expect(got).toEqual({ url: new URL(url).href });
    else {
      expect('error' in got && got.error).toBeInstanceOf(WebhookResolveError);
      const message = (got as { error: Error }).error.message;
      expect(message).toContain('"ops"');
      expect(message).toContain('env');
      expect(message).not.toContain(url);
    }
  });

  it.each([
    { secret: 'https://hooks.example.test/services/plain', url: 'https://hooks.example.test/services/plain' },
    {
      secret: '{"url": "https://hooks.example.test/services/json"}',
      url: 'https://hooks.example.test/services/json',
    },
  ])('reads a secret holding $secret', async ({ secret, url }) => {
    const resolver = createWebhookResolver(
      { ops: { from: 'secretsmanager', name: 'fleetward/slack' } },
      { readers: { ssmParameter: async () => undefined, secretString: async () => secret } },
    );

    expect(await resolver.resolve('ops')).toBe(url);
  });

  it.each([
    { secret: '{"link": "https://hooks.example.test/services/x"}', error: 'no "url" string' },
    { secret: '{not json', error: 'not valid json' },
    { secret: undefined, error: 'empty or missing' },
  ])('rejects a secret holding $secret', async ({ secret, error }) => {
    const resolver = createWebhookResolver(
      { ops: { from: 'secretsmanager', name: 'fleetward/slack' } },
      { readers: { ssmParameter: async () => undefined, secretString: async () => secret } },
    );

    await expect(resolver.resolve('ops')).rejects.toThrow(error);
  });

  it('caches ssm values until the ttl ends and wraps read errors naming webhook and source', async () => {
    let now = 0;
    let reads = 0;
    const values = ['https://hooks.example.test/services/one', 'https://hooks.example.test/services/two'];
    const resolver = createWebhookResolver(
      {
        ops: { from: 'ssm', name: '/fleetward/slack/ops' },
        bad: { from: 'ssm', name: '/fleetward/missing' },
      },
      {
        clock: { now: () => new Date(now) },
        ttlMs: 1000,
        readers: {
          ssmParameter: async (name) => {
            if (name === '/fleetward/missing')
              throw Object.assign(new Error('nope'), { name: 'ParameterNotFound' });
            return values[reads++];
          },
          secretString: async () => undefined,
        },
      },
    );

    const first = await resolver.resolve('ops');
    now = 999;
    const cached = await resolver.resolve('ops');
    now = 1000;
    const refreshed = await resolver.resolve('ops');

    expect([first, cached, refreshed]).toEqual([values[0], values[0], values[1]]);
    await expect(resolver.resolve('bad')).rejects.toThrow(
      'cannot read slack webhook "bad" from ssm (ParameterNotFound)',
    );
  });
});
