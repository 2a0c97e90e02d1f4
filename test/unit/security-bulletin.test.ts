/**
 * A GKE `SecurityBulletinEvent` (the cluster-notification sample of GoogleCloudPlatform's
 * Slack sample, bulletin GCP-2022-005) becomes a finding on every GKE cluster of the inventory
 * whose version is in the bulletin's affected minors and below the patched version of its
 * minor, recorded in the findings namespace (where compliance evidence reads findings) and
 * reported to Slack once per cluster and bulletin.
 */
import { readFileSync } from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isAffected } from '../../shared/compliance/bulletins.ts';
import { FleetConfig } from '../../shared/config/schema.ts';
import { normalisePushMessage, parsePushBody } from '../../shared/events/gcp.ts';
import type { ClusterEvent } from '../../shared/events/model.ts';
import { handleClusterEvent } from '../../shared/jobs/cluster-event.ts';
import { bulletinOf } from '../../shared/jobs/security-bulletin.ts';
import { SNAPSHOTS_NS } from '../../shared/jobs/snapshot.ts';
import type { Cluster, Finding } from '../../shared/model.ts';
import type { JobReport, Notifier } from '../../shared/notify/notifier.ts';
import type { ClusterDiscovery } from '../../shared/ports.ts';
import { Residency } from '../../shared/residency/index.ts';
import { silentLogger } from '../../shared/runtime/logger.ts';
import { type BulletinFinding, INVENTORY, NS } from '../../shared/state/records.ts';
import { SqliteStateStore } from '../../shared/state/sqlite.ts';

const read = (name: string) => JSON.parse(readFileSync(`test/fixtures/events/gcp/${name}`, 'utf8'));

/** The sample as GKE pushes it; `messageId` varies per cluster the bulletin is sent for. */
function bulletinEvent(messageId = '1722065266338564'): ClusterEvent {
  const body = read('notification-security-bulletin.json');
  body.message.messageId = messageId;
  return normalisePushMessage(parsePushBody(body));
}

function cluster(over: Partial<Cluster> & Pick<Cluster, 'name' | 'kubernetesVersion'>): Cluster {
  const cloud = over.cloud ?? 'gcp';
  const scope = over.scope ?? 'example-project';
  const region = over.region ?? 'europe-west3';
  return {
    id: `${cloud}/${scope}/${region}/${over.name}`,
    cloud,
    scope,
    region,
    endpoint: null,
    endpointAccess: 'private',
    secretsEncryptionKey: null,
    auditLogging: true,
    tags: {},
    status: 'running',
    providerStatus: 'RUNNING',
    createdAt: null,
    country: 'DE',
    jurisdiction: 'eu',
    ...over,
  } as Cluster;
}

describe('normalising a SecurityBulletinEvent', () => {
  it('keeps the facts of the bulletin', () => {
    const event = bulletinEvent();

    expect(event.type).toBe('security-bulletin');
    expect(event.providerType).toBe('google.container.v1beta1.SecurityBulletinEvent');
    expect(event.detail).toMatchObject({
      bulletinId: 'GCP-2022-005',
      severity: 'Medium',
      cveIds: ['CVE-2021-43527'],
      affectedSupportedMinors: ['1.18', '1.19', '1.20', '1.21', '1.22', '1.23'],
      patchedVersions: expect.arrayContaining(['1.22.6-gke.600']),
      suggestedUpgradeTarget: '1.22.6-gke.1000',
    });
  });
});

describe('isAffected', () => {
  const bulletin = () => bulletinOf(bulletinEvent());

  it.each([
    ['1.22.5-gke.1000', true],
    ['1.22.6-gke.599', true],
    ['1.22.6-gke.600', false],
    ['1.22.6-gke.1000', false],
    ['1.22.7-gke.100', false],
    ['1.23.3-gke.400', true],
    ['1.24.1-gke.100', false],
    ['1.17.17-gke.1', false],
  ])('GKE %s: %s', (version, affected) => {
    expect(isAffected(version, bulletin())).toBe(affected);
  });
});

describe('handling a SecurityBulletinEvent', () => {
  let store: SqliteStateStore;
  let reports: JobReport[];
  let describes: number;
  const clusters = [
    cluster({ name: 'old', kubernetesVersion: '1.22.5-gke.1000' }),
    cluster({ name: 'patched', kubernetesVersion: '1.22.6-gke.600' }),
    cluster({ name: 'newer-minor', kubernetesVersion: '1.24.1-gke.100' }),
    cluster({ name: 'eks-same-minor', cloud: 'aws', scope: '111122223333', kubernetesVersion: '1.22' }),
  ];

  beforeEach(async () => {
    store = new SqliteStateStore({ path: ':memory:' });
    await store.putMany(
      INVENTORY,
      clusters.map((c) => ({ key: c.id, value: c })),
    );
    reports = [];
    describes = 0;
  });
  afterEach(() => store.close());

  function deps() {
    const notifier: Notifier = {
      async notify(report) {
        reports.push(report);
        return { sent: report.findings.length > 0 ? 1 : 0, failed: 0 };
      },
      async close() {},
    };
    const gke: ClusterDiscovery = {
      cloud: 'gcp',
      async discover() {
        throw new Error('not used');
      },
      async describe() {
        describes++;
        return null;
      },
    };
    return {
      config: { jurisdictions: {} } as unknown as FleetConfig,
      discoveries: [gke],
      store,
      notifier,
      residency: new Residency({}),
      logger: silentLogger,
      clock: { now: () => new Date('2023-01-13T20:00:00Z') },
    };
  }

  it('records a finding on the affected GKE clusters only and tells Slack, without a cloud call', async () => {
    // Act
    const result = await handleClusterEvent(deps(), bulletinEvent());

    // Assess
    const old = await store.get<Finding[]>(NS.findings, `security-bulletin/${clusters[0]!.id}`);
    expect(old).toEqual([
      expect.objectContaining({
        clusterId: clusters[0]!.id,
        jurisdiction: 'eu',
        kind: 'security-bulletin',
        severity: 'medium',
        message: expect.stringMatching(/^GCP-2022-005: .*CVE-2021-43527.*1\.22\.6-gke\.1000/),
      }),
    ]);
    for (const c of clusters.slice(1)) {
      expect(await store.get(NS.findings, `security-bulletin/${c.id}`)).toBeUndefined();
    }
    expect(reports).toHaveLength(1);
    expect(reports[0]!.title).toContain('GCP-2022-005');
    expect(reports[0]!.findings.map((f) => f.clusterId)).toEqual([clusters[0]!.id]);
    expect(result.affected).toEqual([clusters[0]!.id]);
    expect(describes).toBe(0);
  });

  it('keeps the bulletin\u2019s facts on the finding, so the compliance control can re-check it later', async () => {
    // Act
    await handleClusterEvent(deps(), bulletinEvent());

    // Assess
    const [finding] = (await store.get<BulletinFinding[]>(
      NS.findings,
      `security-bulletin/${clusters[0]!.id}`,
    ))!;
    expect(finding?.bulletin).toEqual({
      bulletinId: 'GCP-2022-005',
      severity: 'medium',
      cveIds: ['CVE-2021-43527'],
      affectedSupportedMinors: ['1.18', '1.19', '1.20', '1.21', '1.22', '1.23'],
      patchedVersions: expect.arrayContaining(['1.22.6-gke.600']),
      suggestedUpgradeTarget: '1.22.6-gke.1000',
      bulletinUri: 'https://cloud.google.com/kubernetes-engine/docs/security-bulletins#gcp-2022-005',
      manualStepsRequired: false,
      version: '1.22.5-gke.1000',
    });
  });

  it('reports each cluster once per bulletin when GKE sends the bulletin for every cluster', async () => {
    // Act
    await handleClusterEvent(deps(), bulletinEvent('1000000000000001'));
    await handleClusterEvent(deps(), bulletinEvent('1000000000000002'));

    // Assess
    expect(reports.flatMap((r) => r.findings)).toHaveLength(1);
    expect(await store.get<Finding[]>(NS.findings, `security-bulletin/${clusters[0]!.id}`)).toHaveLength(1);
  });

  it('keeps the findings of other bulletins on the same cluster', async () => {
    // Prepare
    const earlier: Finding = {
      clusterId: clusters[0]!.id,
      jurisdiction: 'eu',
      kind: 'security-bulletin',
      severity: 'high',
      message: 'GCP-2021-001: an earlier bulletin',
      at: '2021-01-01T00:00:00Z',
    };
    await store.putMany(NS.findings, [{ key: `security-bulletin/${clusters[0]!.id}`, value: [earlier] }]);

    // Act
    await handleClusterEvent(deps(), bulletinEvent());

    // Assess
    const findings = await store.get<Finding[]>(NS.findings, `security-bulletin/${clusters[0]!.id}`);
    expect(findings?.map((f) => f.message.split(':')[0])).toEqual(['GCP-2021-001', 'GCP-2022-005']);
  });
});

describe('a bulletin finding once the cluster is upgraded past its patched version', () => {
  let store: SqliteStateStore;
  const config = FleetConfig.parse({
    version: 1,
    clouds: { gcp: { projects: [{ id: 'example-project' }] } },
    jurisdictions: { eu: { preset: 'eu-gdpr' } },
  });
  const before = cluster({ name: 'old', kubernetesVersion: '1.22.5-gke.1000' });
  let now: Cluster = before;

  beforeEach(async () => {
    store = new SqliteStateStore({ path: ':memory:' });
    await store.putMany(INVENTORY, [{ key: before.id, value: before }]);
    now = before;
  });
  afterEach(() => store.close());

  function deps() {
    const gke: ClusterDiscovery = {
      cloud: 'gcp',
      async discover() {
        throw new Error('not used');
      },
      async describe() {
        const { jurisdiction: _j, ...discovered } = now;
        return discovered;
      },
    };
    return {
      config,
      discoveries: [gke],
      store,
      notifier: { notify: async () => ({ sent: 1, failed: 0 }), close: async () => {} } satisfies Notifier,
      residency: new Residency(config.jurisdictions),
      logger: silentLogger,
      clock: { now: () => new Date('2023-02-01T00:00:00Z') },
    };
  }

  /** GKE's UpgradeEvent sample, aimed at the cluster. */
  function upgradeEvent(): ClusterEvent {
    const event = normalisePushMessage(parsePushBody(read('notification-upgrade.json')));
    return {
      ...event,
      cluster: { cloud: 'gcp', scope: before.scope, region: before.region, name: before.name },
    };
  }

  it('no longer counts: the event path re-evaluates the control as fixed, and the record is kept', async () => {
    // Prepare: the bulletin is recorded, the last snapshot saw the control fail
    await handleClusterEvent(deps(), bulletinEvent());
    await store.putMany(SNAPSHOTS_NS, [
      { key: `statuses/eu/${before.id}`, value: { 'lifecycle.security-bulletins': 'fail' } },
    ]);
    now = { ...before, kubernetesVersion: '1.22.6-gke.1000' };

    // Act
    const result = await handleClusterEvent(deps(), upgradeEvent());

    // Assess
    expect(result.outcome).toBe('changed');
    expect(result.changes).toContainEqual(
      expect.objectContaining({ control: 'lifecycle.security-bulletins', before: 'fail', after: 'pass' }),
    );
    expect(await store.get<Finding[]>(NS.findings, `security-bulletin/${before.id}`)).toHaveLength(1);
  });
});
