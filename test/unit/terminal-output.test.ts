/**
 * What a person sees on a terminal: log records as one readable line (JSON on request), every
 * table and list within 120 columns with each cluster's whole id on a line, and the
 * summary counts of the drill and backup views.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { renderCollect, renderVerify } from '../../bin/audit.ts';
import { loadConfig } from '../../shared/config/load.ts';
import type { FleetConfig } from '../../shared/config/schema.ts';
import { renderPlan } from '../../shared/jobs/budgets.ts';
import { place } from '../../shared/jobs/discover.ts';
import { renderDiscoverTable } from '../../shared/jobs/discover-report.ts';
import {
  backupCounts,
  type ClusterBackupView,
  type ClusterDrillView,
  drillCounts,
  renderBackupView,
  renderDrillView,
} from '../../shared/jobs/velero-report.ts';
import type { Cluster } from '../../shared/model.ts';
import { Residency } from '../../shared/residency/index.ts';
import { UsageError } from '../../shared/runtime/errors.ts';
import { formatText, parseLogFormat, stderrLogger } from '../../shared/runtime/logger.ts';
import { renderTable, TABLE_WIDTH, wrapHanging } from '../../shared/runtime/table.ts';
import { renderPlanText } from '../../shared/tags/render.ts';
import { CONDITION, type Finding } from '../../shared/velero/preflight.ts';
import { runFleetward } from '../sandbox/cli.ts';
import { defaultMix, generateFleet } from '../sandbox/fleet.ts';

/** Lines of `text` longer than the terminal. */
const tooLong = (text: string) => text.split('\n').filter((l) => l.length > TABLE_WIDTH);

describe('log records on a terminal', () => {
  it.each([
    [
      'warn',
      'Backup preflight failed',
      { cluster: 'aws/111111111111/eu-central-1/ml-prod-0005', findings: ['velero-missing'] },
      'warning: Backup preflight failed (cluster aws/111111111111/eu-central-1/ml-prod-0005, findings velero-missing)',
    ],
    [
      'warn',
      'Discovery scope failed',
      {
        failure: {
          cloud: 'aws',
          scope: '222222222222',
          region: 'eu-west-1',
          kind: 'scope',
          error: { name: 'CloudApiError', message: 'aws AssumeRole failed: AccessDenied', status: 403 },
        },
      },
      'warning: Discovery scope failed: aws AssumeRole failed: AccessDenied (cloud aws, scope 222222222222, region eu-west-1, kind scope)',
    ],
    [
      'info',
      'Kube call retried',
      { attempt: 2, cluster: 'gcp/p/europe-west3/c', delayMs: 400 },
      'info: Kube call retried (cluster gcp/p/europe-west3/c, attempt 2, delayMs 400)',
    ],
    [
      'error',
      'Handler failed',
      { error: { name: 'TypeError', message: 'boom', stack: 'TypeError: boom\n    at x' } },
      'error: Handler failed: boom',
    ],
    [
      'debug',
      'Inventory changed',
      { added: [], removed: ['a', 'b'] },
      'debug: Inventory changed (added none, removed a,b)',
    ],
  ] as const)('writes a %s record as one readable line: %s', (level, message, fields, line) => {
    expect(formatText(level, message, fields)).toBe(line);
  });

  it('writes text without timestamp or service, and JSON with both, at or above the level', () => {
    const written: string[] = [];
    const stream = { write: (s: string) => written.push(s) > 0 };

    stderrLogger('warn', { format: 'text', stream }).info('Quiet', { cluster: 'c' });
    stderrLogger('warn', { format: 'text', stream }).warn('Loud', { cluster: 'c' });
    stderrLogger('info', { format: 'json', stream }).info('Structured', { cluster: 'c' });

    expect(written).toHaveLength(2);
    expect(written[0]).toBe('warning: Loud (cluster c)\n');
    expect(JSON.parse(written[1]!)).toMatchObject({
      level: 'INFO',
      message: 'Structured',
      service: 'fleetward',
      cluster: 'c',
      timestamp: expect.any(String),
    });
  });

  it('takes --log-format, else $FLEETWARD_LOG_FORMAT, else text', () => {
    expect(parseLogFormat(undefined, undefined)).toBe('text');
    expect(parseLogFormat(undefined, 'json')).toBe('json');
    expect(parseLogFormat('text', 'json')).toBe('text');
  });

  it.each([
    ['yaml', undefined, /--log-format must be one of text, json, got "yaml"/],
    [undefined, 'xml', /got "xml" \(\$FLEETWARD_LOG_FORMAT\)/],
  ])('refuses the log format %s / %s, naming the choices', (value, env, message) => {
    expect(() => parseLogFormat(value, env)).toThrow(UsageError);
    expect(() => parseLogFormat(value, env)).toThrow(message);
  });
});

describe('the CLI log format', () => {
  let server: Server;
  const dir = mkdtempSync(join(tmpdir(), 'fleetward-logs-'));
  let config = '';
  let requests = 0;

  beforeAll(async () => {
    // Every AWS call answers 500: discovery logs one failed scope.
    server = createServer((_req, res) => {
      requests++;
      res.writeHead(500).end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    config = join(dir, 'fleet.yaml');
    writeFileSync(
      config,
      [
        'version: 1',
        'clouds:',
        '  aws:',
        `    endpoint: http://127.0.0.1:${(server.address() as AddressInfo).port}`,
        '    maxAttempts: 1',
        '    accounts:',
        '      - id: "111111111111"',
        '        roleArn: arn:aws:iam::111111111111:role/fleetward-reader',
        '        regions: [eu-central-1]',
        'jurisdictions:',
        '  eu: { preset: eu-gdpr }',
        'state:',
        '  type: sqlite',
        `  path: ${join(dir, 'state.db')}`,
      ].join('\n'),
    );
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  /** The CLI in its own process, asynchronously: the test's server must answer meanwhile. */
  function discover(args: string[], env: NodeJS.ProcessEnv = {}) {
    return runFleetward(['discover', '--config', config, ...args], {
      FLEETWARD_LOG_FORMAT: '',
      AWS_ACCESS_KEY_ID: 'testing',
      AWS_SECRET_ACCESS_KEY: 'testing',
      ...env,
    });
  }

  it('prints a warning as one readable line by default, and ends stdout with the summary line', async () => {
    const run = await discover([]);

    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(
      /^warning: Discovery scope failed: aws AssumeRole failed: .* \(cloud aws, scope 111111111111, kind scope\)$/m,
    );
    expect(run.stderr).not.toMatch(/"level"|timestamp/);
    expect(run.stdout.trimEnd().split('\n').at(-1)).toBe(
      'Summary: 1 scope failures (exit 1: completed with failures)',
    );
  });

  it.each([
    [['--log-format', 'json'], {}],
    [[], { FLEETWARD_LOG_FORMAT: 'json' }],
  ])('writes JSON lines with %j %j', async (args, env) => {
    const run = await discover(args, env);

    const records = run.stderr
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(records).toContainEqual(
      expect.objectContaining({ level: 'WARN', message: 'Discovery scope failed', service: 'fleetward' }),
    );
    expect(run.stderr).not.toMatch(/^warning:/m);
  });

  it('refuses an unknown --log-format with exit 2 before calling any cloud', async () => {
    requests = 0;
    const run = await discover(['--log-format', 'yaml']);

    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/--log-format must be one of text, json/);
    expect(requests).toBe(0);
  });
});

describe('tables and lists within 120 columns', () => {
  let config: FleetConfig;
  let fleet: Cluster[];

  beforeAll(async () => {
    config = await loadConfig('fleet.example.yaml');
    const residency = new Residency(config.jurisdictions);
    // The sandbox's fleet, with names and resource groups as long as real ones get.
    fleet = generateFleet({ mix: defaultMix(24) }).map((s) => {
      const name = `${s.name}-eu-payments-ledger`;
      const resourceGroup = s.resourceGroup && `${s.resourceGroup}-shared-platform`;
      const id =
        s.cloud === 'azure'
          ? `azure/${s.scope}/${resourceGroup}/${name}`
          : `${s.cloud}/${s.scope}/${s.region}/${name}`;
      return place(
        {
          id,
          cloud: s.cloud,
          scope: s.scope,
          region: s.region,
          name,
          kubernetesVersion: s.cloud === 'gcp' ? `${s.version}.6-gke.1020000` : s.version,
          endpoint: null,
          endpointAccess: s.privateEndpoint ? 'private' : 'public',
          secretsEncryptionKey: s.encrypted ? 'key' : null,
          auditLogging: s.cloud === 'azure' ? null : s.auditLogging,
          tags: s.tags,
          status: 'running',
          providerStatus: null,
          createdAt: '2026-01-02T03:04:05Z',
          ...(resourceGroup ? { resourceGroup } : {}),
        },
        residency,
      );
    });
  });

  const residencyMessage = (c: Cluster) =>
    `refusing to write backup storage location default of cluster ${c.id} to aws region us-east-1: US is outside jurisdiction "${c.jurisdiction}" and no exception allows it`;
  const finding = (c: Cluster, kind: Finding['kind'], message: string): Finding => ({
    clusterId: c.id,
    jurisdiction: c.jurisdiction,
    kind,
    severity: 'high',
    message,
    at: '2026-12-01T00:00:00Z',
  });

  /** Every id whole on some line (none cut or wrapped). */
  function expectWholeIds(text: string) {
    const lines = text.split('\n');
    for (const c of fleet)
      expect(lines.some((l) => l.split(/\s+/).some((w) => w.replace(/:$/, '') === c.id))).toBe(true);
  }

  it('has ids as long as real ones, and some longer than a column beside the others', () => {
    expect(Math.max(...fleet.map((c) => c.id.length))).toBeGreaterThan(100);
    expect(Math.max(...fleet.map((c) => c.id.length))).toBeLessThanOrEqual(TABLE_WIDTH - 2);
  });

  it('renders discover in 120 columns with every id whole, and --wide with the optional columns', () => {
    const result = {
      clusters: fleet,
      diff: { added: fleet.map((c) => c.id), removed: [], changed: [] },
      failures: [],
      stale: [],
      residencyFindings: [],
      startedAt: '',
      durationMs: 0,
    };

    const text = renderDiscoverTable(result, config);
    const wide = renderDiscoverTable(result, config, { wide: true });

    expect(tooLong(text)).toEqual([]);
    expectWholeIds(text);
    expect(text).toMatch(/^ {2}CLUSTER +REGION +VERSION +ENDPOINT +SECRETS +AUDIT +STATUS$/m);
    expect(text).toMatch(/^Legend: SECRETS customer = /m);
    expect(text).not.toContain('1020000');
    expect(wide).toMatch(/CLUSTER +REGION +COUNTRY +VERSION .* CREATED$/m);
    expect(wide).toContain('-gke.1020000');
  });

  it('renders backup status, its findings and drill status in 120 columns with every id whole', () => {
    const backups: ClusterBackupView[] = fleet.map((c, i) => ({
      clusterId: c.id,
      jurisdiction: c.jurisdiction,
      lastBackup: i % 3 ? { name: 'fleetward-202612070000', phase: 'Completed' } : null,
      lastCompleted: null,
      rpoSeconds: i % 3 ? 840 : null,
      rpoTargetSeconds: 86_400,
      rpoOk: i % 3 ? true : null,
      findings: i % 3 ? [] : [finding(c, 'bsl-outside-jurisdiction', residencyMessage(c))],
    })) as ClusterBackupView[];
    const drills: ClusterDrillView[] = fleet.map((c, i) => ({
      clusterId: c.id,
      jurisdiction: c.jurisdiction,
      drill: null,
      findings: i % 2 ? [] : [finding(c, 'drill-refused', `drill not started: ${CONDITION.veleroMissing}`)],
    }));

    for (const text of [renderBackupView(backups), renderDrillView(drills)]) {
      expect(tooLong(text)).toEqual([]);
      expectWholeIds(text);
    }
    expect(renderDrillView(drills)).toMatch(/could not run +- +- +Velero is not/);
    expect(renderBackupView(backups, { wide: true })).toMatch(/JURISDICTION +LAST BACKUP +RPO +TARGET/);
  });

  it('renders the tag plan, the budget plan and the audit lists in 120 columns, naming clusters by id', () => {
    const plans = fleet.map((c) => ({
      clusterId: c.id,
      cloud: c.cloud,
      region: c.region,
      name: c.name,
      taggable: c.cloud !== 'kubeconfig',
      changes: [{ key: 'jurisdiction', before: null, after: c.jurisdiction, source: 'derived' as const }],
      findings: [{ kind: 'missing-tag' as const, key: 'owner', message: residencyMessage(c) }],
    }));
    const budgets = {
      runId: 'r',
      at: '',
      changes: [],
      failures: [],
      summary: 'Plan: 0 to create, 0 to update, 0 to delete; 24 clusters without a budget.',
      findings: fleet.map((c) => ({
        clusterId: c.id,
        jurisdiction: c.jurisdiction,
        kind: 'budget-missing' as const,
        severity: 'medium' as const,
        message: `no budget covers ${c.cloud} scope ${c.scope}: add one to budgets in fleet.yaml`,
        at: '',
      })),
    };
    const collect = {
      runId: 'r',
      scopes: [],
      outcomes: fleet.map((c) => ({
        clusterId: c.id,
        status: 'failed' as const,
        error: { name: 'CloudApiError', message: residencyMessage(c) },
        chunks: 1,
        events: 40,
        malformed: 2,
        duplicates: 3,
        recovered: 0,
        head: 1,
        compliantStorage: true,
      })),
    };
    const verify = {
      ok: false,
      counts: { intact: 0, broken: 0, unverified: 24, 'nothing-archived': 0 },
      clusters: fleet.map((c) => ({
        clusterId: c.id,
        status: 'unverified' as const,
        ok: false,
        chunks: 0,
        events: 0,
        error: {
          name: 'EndpointUnreachableError',
          message: 'cannot reach S3 at http://127.0.0.1:1: connection refused',
        },
      })),
    };

    for (const text of [
      renderPlanText(plans),
      renderPlan(budgets),
      renderCollect(collect),
      renderVerify(verify),
    ]) {
      expect(tooLong(text)).toEqual([]);
      expectWholeIds(text);
    }
    expect(renderPlanText(plans)).toContain(`~ ${fleet[0]!.id}\n`);
  });
});

describe('table layout', () => {
  const columns = [
    { title: 'CLUSTER', value: (r: string[]) => r[0]!, key: true },
    { title: 'STATE', value: (r: string[]) => r[1]! },
    { title: 'NOTES', value: (r: string[]) => r[2]!, wrap: true },
  ];

  it('puts a key longer than its column on a line of its own and wraps notes under their column', () => {
    const long = `azure/${'0'.repeat(36)}/rg-a-rather-long-resource-group/a-cluster-name`;
    const text = renderTable(
      columns,
      [
        ['aws/1/eu-west-1/a', 'ok', 'short'],
        [long, 'fail', 'words '.repeat(30).trim()],
      ],
      { width: 60 },
    );
    const lines = text.split('\n');

    expect(lines.every((l) => l.length <= 60 || l.trim() === long)).toBe(true);
    expect(lines).toContain(`  ${long}`);
    expect(lines[1]).toMatch(/^ {2}aws\/1\/eu-west-1\/a +ok +short$/);
    const notesAt = lines[0]!.indexOf('NOTES');
    expect(lines.slice(3).every((l) => l.slice(0, notesAt).trim() === '' || l.includes('fail'))).toBe(true);
  });

  it('keeps a table that fits as it is, and lifts the limit when wide', () => {
    const rows = [['a'.repeat(80), 'ok', 'n '.repeat(40).trim()]];

    expect(renderTable(columns, rows, { wide: true }).split('\n')).toHaveLength(2);
    expect(renderTable(columns, [['a', 'ok', 'n']]).split('\n')[1]).toBe('  a        ok     n');
  });

  it('wraps a list entry under its id without cutting words', () => {
    const lines = wrapHanging('skipped  aws/1/eu-west-1/a: ', 'x'.repeat(60) + ' y'.repeat(60), 9, 80);
    const long = wrapHanging('  ', `see ${'z'.repeat(75)}`, 9, 80);

    expect(lines[0]).toBe('skipped  aws/1/eu-west-1/a:');
    expect(lines[1]).toBe(`         ${'x'.repeat(60)} y y y y y`);
    expect(lines.every((l) => l.length <= 80)).toBe(true);
    // A word too long for the indent starts further left, whole.
    expect(long).toEqual(['  see', `     ${'z'.repeat(75)}`]);
  });
});

describe('summary counts of the Velero views', () => {
  const view = (drill: Partial<NonNullable<ClusterDrillView['drill']>> | null, findings: Finding[] = []) =>
    ({ clusterId: 'c', jurisdiction: 'eu', drill, findings }) as ClusterDrillView;
  const refused = {
    kind: 'drill-refused',
    message: `drill not started: ${CONDITION.veleroMissing}`,
  } as Finding;

  it('counts each cluster once: could not run, running, fail, pass, no drill', () => {
    const counts = drillCounts([
      view(null, [refused]),
      view({ phase: 'done', result: 'pass' }, [refused]),
      view({ phase: 'restoring', result: null }),
      view({ phase: 'done', result: 'fail' }),
      view({ phase: 'done', result: 'pass' }),
      view(null),
    ]);

    expect(counts).toEqual({ pass: 1, fail: 1, running: 1, 'could not run': 2, 'no drill': 1 });
  });

  it('counts backups as ok, with findings, or pending', () => {
    const base = { clusterId: 'c', jurisdiction: 'eu', lastBackup: null, lastCompleted: null };
    const counts = backupCounts([
      { ...base, rpoSeconds: 1, rpoTargetSeconds: 2, rpoOk: true, findings: [] },
      { ...base, rpoSeconds: 3, rpoTargetSeconds: 2, rpoOk: false, findings: [refused] },
      { ...base, rpoSeconds: null, rpoTargetSeconds: 2, rpoOk: null, findings: [] },
    ]);

    expect(counts).toEqual({ ok: 1, 'with findings': 1, pending: 1 });
  });
});
