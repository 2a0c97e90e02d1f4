/** The doctor's table, exit code and permission naming, on fake ports. */
import { describe, expect, it } from 'vitest';
import { allGrants } from '../../shared/clouds/grants.ts';
import { parseConfig } from '../../shared/config/load.ts';
import {
  type DoctorDeps,
  type DoctorReport,
  exitCode,
  failedCalls,
  isDenied,
  kubeCallOf,
  permissionFixes,
  renderDoctor,
  run,
} from '../../shared/jobs/doctor.ts';
import type { ArchiveStore, AuditLogSource, ClusterDiscovery } from '../../shared/ports.ts';
import { Residency } from '../../shared/residency/index.ts';
import { CloudApiError } from '../../shared/runtime/errors.ts';
import { silentLogger } from '../../shared/runtime/logger.ts';
import { auditCluster } from './audit-builders.ts';

const ACCOUNT = '111111111111';
const OTHER = '222222222222';
const AT = new Date('2026-12-01T10:00:00Z');

const config = parseConfig({
  version: 1,
  jurisdictions: { eu: { preset: 'eu-gdpr' } },
  clouds: {
    aws: {
      accounts: [
        { id: ACCOUNT, roleArn: `arn:aws:iam::${ACCOUNT}:role/fleetward`, regions: ['eu-central-1'] },
        { id: OTHER, roleArn: `arn:aws:iam::${OTHER}:role/fleetward`, regions: ['eu-central-1'] },
      ],
    },
  },
  slack: { webhooks: { ops: { from: 'env', name: 'SLACK_OPS_WEBHOOK' } }, routes: [{ webhook: 'ops' }] },
});

const denied = (operation: string, message: string) =>
  new CloudApiError(`aws ${operation} failed: AccessDeniedException: ${message}`, {
    cloud: 'aws',
    operation,
    status: 403,
    retryable: false,
  });

/** The audit tests' EKS cluster (in ACCOUNT), as discovery returns it: not yet placed. */
const { country: _country, jurisdiction: _jurisdiction, ...discovered } = auditCluster;

/** One healthy account with one cluster, one account whose role cannot be assumed. */
const discovery: ClusterDiscovery = {
  cloud: 'aws',
  async discover() {
    return {
      clusters: [discovered],
      completedScopes: [{ cloud: 'aws', scope: ACCOUNT, region: 'eu-central-1' }],
      failures: [
        {
          cloud: 'aws',
          scope: OTHER,
          region: 'eu-central-1',
          kind: 'scope',
          error: {
            name: 'CloudApiError',
            message: `aws AssumeRole failed: AccessDenied: User is not authorized to perform: sts:AssumeRole on resource: arn:aws:iam::${OTHER}:role/fleetward`,
            status: 403,
          },
        },
      ],
    };
  },
};

function deps(overrides: Partial<DoctorDeps> = {}): DoctorDeps {
  const source: AuditLogSource = {
    async enabled() {
      return { enabled: true };
    },
    // biome-ignore lint/correctness/useYield: refuses before the first page, as CloudWatch Logs does
    async *read() {
      throw denied('FilterLogEvents', 'not authorized to perform: logs:FilterLogEvents');
    },
  };
  const store = {
    id: 'aws:evidence-eu',
    location: async () => ({ cloud: 'aws' as const, region: 'eu-central-1' }),
    assertImmutable: async () => undefined,
  } as unknown as ArchiveStore;
  return {
    config,
    discoveries: [discovery],
    kube: {
      async connect() {
        throw denied('DescribeCluster', 'not authorized to perform: eks:DescribeCluster');
      },
    },
    buckets: { locate: async () => ({ cloud: 'aws', region: 'eu-central-1' }) },
    residency: new Residency(config.jurisdictions),
    audit: { for: () => source },
    evidence: { all: async () => [store] },
    readSecret: async (ref) => {
      throw new Error(`secret "${ref.name}" from ${ref.from} is empty or missing`);
    },
    grants: allGrants(),
    logger: silentLogger,
    clock: { now: () => AT },
    ...overrides,
  };
}

describe('doctor', () => {
  it('names the permission of each denied call, and where it is held', async () => {
    const report = await run(deps());

    const row = (target: string, check: string) =>
      report.checks.find((c) => c.target === target && c.check === check);
    expect(row(`aws ${OTHER}/eu-central-1`, 'credentials')).toMatchObject({
      status: 'fail',
      fix: [expect.stringMatching(/^grant sts:AssumeRole \(the function role\): /)],
    });
    expect(row(`aws ${OTHER}/eu-central-1`, 'clusters listable')?.status).toBe('skip');
    expect(row(`aws ${ACCOUNT}/eu-central-1`, 'clusters listable')?.status).toBe('ok');
    expect(row(`aws ${ACCOUNT}/eu-central-1`, 'audit logs readable')?.fix).toEqual([
      expect.stringMatching(/^grant logs:FilterLogEvents \(the member account reader role\): /),
    ]);
    expect(row(`cluster aws/${ACCOUNT}/eu-central-1/payments`, 'velero reachable')?.fix).toEqual([
      expect.stringMatching(/^grant eks:DescribeCluster \(the member account reader role\): /),
    ]);
    expect(row('evidence eu aws:evidence-eu', 'evidence write-once and in jurisdiction')?.status).toBe('ok');
    expect(row('slack webhook ops', 'slack route resolvable')).toMatchObject({
      status: 'fail',
      fix: ['set the environment variable SLACK_OPS_WEBHOOK'],
    });
    expect(report.ok).toBe(false);
    expect(exitCode(report)).toBe(1);
  });

  it('passes when every access holds, posture (audit logging off) listed but not failing', async () => {
    const off: AuditLogSource = {
      enabled: async () => ({ enabled: false, reason: 'eks control-plane audit logging is not enabled' }),
      read: () => {
        throw new Error('not read when off');
      },
    };
    const api = {
      read: async () => undefined, // no Velero CRDs: not installed
      list: async () => [],
    };
    const report = await run(
      deps({
        discoveries: [
          { cloud: 'aws', discover: async () => ({ ...(await discovery.discover()), failures: [] }) },
        ],
        audit: { for: () => off },
        kube: { connect: async () => api as never },
        readSecret: async () => 'a webhook url',
      }),
    );

    expect(report.checks.filter((c) => c.status === 'fail')).toEqual([]);
    expect(report.findings.map((f) => f.message)).toEqual([
      'audit logging is off: eks control-plane audit logging is not enabled',
      'velero-missing: Velero is not installed (its CRDs are missing)',
    ]);
    expect(exitCode(report)).toBe(0);
  });

  it('refuses an evidence bucket outside its jurisdiction, naming the setting', async () => {
    const store = {
      id: 'aws:evidence-us',
      location: async () => ({ cloud: 'aws' as const, region: 'us-east-1' }),
      assertImmutable: async () => undefined,
    } as unknown as ArchiveStore;

    const report = await run(deps({ evidence: { all: async () => [store] } }));

    expect(report.checks.find((c) => c.target === 'evidence eu aws:evidence-us')).toMatchObject({
      status: 'fail',
      detail: expect.stringMatching(/us-east-1.*outside jurisdiction "eu"/),
      fix: ['move jurisdictions.eu.evidence.aws to a bucket in the jurisdiction'],
    });
  });

  it('renders failures first, each fix under its row, and counts', () => {
    const report: DoctorReport = {
      ok: false,
      checks: [
        { target: 'gcp p', check: 'clusters listable', status: 'ok' },
        {
          target: 'aws 1/eu-west-1',
          check: 'audit logs readable',
          status: 'fail',
          detail: 'denied',
          fix: ['grant logs:FilterLogEvents (the member account reader role): read'],
        },
      ],
      findings: [{ target: 'cluster c', message: 'velero-missing: not installed' }],
    };

    const text = renderDoctor(report).split('\n');

    expect(text[0]).toMatch(/^STATUS\s+CHECK\s+TARGET\s+DETAIL$/);
    expect(text[1]).toMatch(/^FAIL\s+audit logs readable\s+aws 1\/eu-west-1\s+denied$/);
    expect(text[2]).toMatch(/^\s+fix: grant logs:FilterLogEvents/);
    expect(text[3]).toMatch(/^OK\s+clusters listable\s+gcp p$/);
    expect(text).toContain('2 checks, 1 failed, 1 findings.');
    expect(text.at(-1)).toBe('  cluster c: velero-missing: not installed');
    expect(exitCode(report)).toBe(1);
    expect(exitCode({ ...report, checks: [report.checks[0]!] })).toBe(0);
  });

  it('wraps long details and fixes within 120 columns, keeping the target whole', () => {
    const target = 'aws 111111111111/eu-central-1 cluster aws/111111111111/eu-central-1/analytics-prod-0003';
    const long =
      'AccessDenied: User arn:aws:sts::111111111111:assumed-role/fleetward-reader/doctor is not authorized to perform logs:FilterLogEvents on resource arn:aws:logs:eu-central-1:111111111111:log-group:/aws/eks/analytics-prod-0003/cluster';
    const report: DoctorReport = {
      ok: false,
      checks: [
        {
          target,
          check: 'audit logs readable',
          status: 'fail',
          detail: long,
          fix: [`grant logs:FilterLogEvents (the member account reader role): ${long}`],
        },
      ],
      findings: [{ target: 'cluster c', message: long }],
    };

    const lines = renderDoctor(report).split('\n');

    expect(lines.filter((l) => l.length > 120)).toEqual([]);
    expect(lines[1]).toContain(target);
    expect(lines.join(' ').replace(/\s+/g, ' ')).toContain(long.replace(/\s+/g, ' '));
  });

  it('maps failed operations to calls and calls to permissions', () => {
    expect(kubeCallOf('list velero.io/v1 BackupStorageLocation')).toBe(
      'list velero.io/backupstoragelocations',
    );
    expect(kubeCallOf('read apiextensions.k8s.io/v1 CustomResourceDefinition')).toBe(
      'get apiextensions.k8s.io/customresourcedefinitions',
    );
    expect(kubeCallOf('create v1 Namespace')).toBe('create namespaces');
    expect(
      failedCalls(['eks:ListClusters', 'eks:DescribeCluster'], { operation: 'ListClusters', message: '' }),
    ).toEqual(['eks:ListClusters']);
    expect(
      failedCalls(['arm:diagnosticSettings.list', 'loganalytics:query'], {
        message: 'logAnalytics.query: 403',
      }),
    ).toEqual(['arm:diagnosticSettings.list', 'loganalytics:query']);
    expect(
      failedCalls(['s3:GetBucketLocation', 's3:GetBucketVersioning'], {
        message: 'GetBucketVersioning failed',
      }),
    ).toEqual(['s3:GetBucketVersioning']);
    expect(permissionFixes(allGrants(), 'aws', ['s3:ListObjectVersions'])).toEqual([
      expect.stringMatching(/^s3:ListBucketVersions \(the function role\): /),
    ]);
    expect(isDenied({ status: 403, message: 'x' })).toBe(true);
    expect(isDenied({ message: 'connect ECONNREFUSED 127.0.0.1:1' })).toBe(false);
  });
});
