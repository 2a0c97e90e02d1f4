/**
 * Failure matrix of backups and drills, driven through the real jobs against the sandbox's
 * fake Kubernetes APIs and Velero simulator, with an injected clock for RPO/RTO arithmetic.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../shared/config/load.ts';
import type { FleetConfig } from '../../shared/config/schema.ts';
import { run as backup } from '../../shared/jobs/backup.ts';
import { run as discover } from '../../shared/jobs/discover.ts';
import { step as drillStep } from '../../shared/jobs/drill.ts';
import type { ClusterJobDeps } from '../../shared/jobs/fleet.ts';
import { run as reconcile } from '../../shared/jobs/reconcile-backups.ts';
import type { Cluster } from '../../shared/model.ts';
import { clusterJobDeps, discoverDeps } from '../../shared/runtime/deps.ts';
import { silentLogger } from '../../shared/runtime/logger.ts';
import { type BackupRecord, type DrillRecord, INVENTORY } from '../../shared/state/records.ts';
import { SqliteStateStore } from '../../shared/state/sqlite.ts';
import { CONDITION } from '../../shared/velero/preflight.ts';
import { type Sandbox, startSandbox } from '../sandbox/index.ts';
import type { KubeCluster } from '../sandbox/kube-fake.ts';

/** A clock the test moves by hand. */
function manualClock(start: string) {
  let t = Date.parse(start);
  return {
    now: () => new Date(t),
    set: (iso: string) => {
      t = Date.parse(iso);
    },
    advance: (ms: number) => {
      t += ms;
    },
  };
}

async function until<T>(
  probe: () => Promise<T | undefined> | T | undefined,
  what: string,
  timeoutMs = 10_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('backups and drills when things go wrong', () => {
  let sandbox: Sandbox;
  let config: FleetConfig;
  let inventory: Cluster[];
  const opened: ClusterJobDeps[] = [];

  beforeAll(async () => {
    sandbox = await startSandbox({
      mix: { aws: 3, gcp: 1, azure: 2, kubeconfig: 0 },
      dir: mkdtempSync(join(tmpdir(), 'fleetward-velero-rel-')),
      veleroDelays: { backupMs: 50, restoreMs: 50, readyMs: 50 },
    });
    config = await loadConfig(sandbox.configPath);
    config.kubeAccess.timeoutMs = 1_000;
    const deps = await discoverDeps(config, silentLogger);
    inventory = (await discover(deps)).clusters;
    await deps.store.close();
  });
  afterEach(async () => {
    sandbox.faults.clear();
    for (const d of opened.splice(0)) await d.store.close();
  });
  afterAll(async () => {
    await sandbox?.stop();
  });

  /** Fresh state (the saved inventory only) and the given clock, for one test. */
  async function deps(clock: { now: () => Date }): Promise<ClusterJobDeps> {
    const base = await clusterJobDeps(config, silentLogger);
    await base.store.close();
    const store = new SqliteStateStore({ path: ':memory:' });
    await store.putMany(
      INVENTORY,
      inventory.map((c) => ({ key: c.id, value: c })),
    );
    const d = { ...base, store, clock };
    opened.push(d);
    return d;
  }

  /** A healthy cluster of the sandbox with Velero, its inventory record and its fake API. */
  function healthy(cloud: 'aws' | 'azure'): { cluster: Cluster; kube: KubeCluster } {
    const cluster = inventory.find(
      (c) =>
        c.cloud === cloud &&
        c.jurisdiction !== 'unassigned' &&
        sandbox.veleroBuckets.get(c.id)?.location === c.region.replace(/-[a-z]$/, ''),
    )!;
    return { cluster, kube: sandbox.kube!.cluster(sandbox.kubeKeys.get(cluster.id)!) };
  }

  const backupsOn = (kube: KubeCluster) => kube.objects('velero.io/v1', 'Backup', 'velero');

  it('skips a cluster whose storage location is unavailable, with a finding', async () => {
    const { cluster, kube } = healthy('aws');
    kube.velero!.setLocationAvailable('default', false);
    try {
      const d = await deps(manualClock('2026-02-01T10:00:00Z'));
      const { outcomes } = await backup(d, { clusterId: cluster.id });

      expect(outcomes[0]).toMatchObject({ status: 'skipped', findings: [{ kind: 'bsl-unavailable' }] });
      expect(backupsOn(kube).some((b) => b.metadata.name === 'fleetward-202602010000')).toBe(false);
    } finally {
      kube.velero!.setLocationAvailable('default', true);
    }
  });

  it.each(['Failed', 'PartiallyFailed'] as const)(
    'records a %s backup and reports no good backup',
    async (phase) => {
      const { cluster, kube } = healthy('azure');
      kube.velero!.config.failBackups = phase;
      try {
        const clock = manualClock(phase === 'Failed' ? '2026-03-01T10:00:00Z' : '2026-03-02T10:00:00Z');
        const d = await deps(clock);
        await backup(d, { clusterId: cluster.id });
        const status = await until(async () => {
          const { statuses } = await reconcile(d, { clusterId: cluster.id });
          return statuses[0]?.lastBackup?.phase === phase ? statuses[0] : undefined;
        }, `a ${phase} backup`);

        expect(status.lastCompleted).toBeNull();
        expect(status.rpoSeconds).toBeNull();
        expect(status.findings.map((f) => f.kind).sort()).toEqual(['backup-failed', 'no-completed-backup']);
      } finally {
        kube.velero!.config.failBackups = null;
      }
    },
  );

  it.each([
    ['a 503', { kind: 'error', status: 503 } as const],
    ['a 429 without Retry-After', { kind: 'throttle' } as const],
    ['a timeout', { kind: 'timeout' } as const],
  ])('retries the Backup create after %s and creates it once', async (_case, fault) => {
    const { cluster, kube } = healthy('aws');
    const clock = manualClock(
      `2026-04-0${fault.kind === 'error' ? 1 : fault.kind === 'throttle' ? 2 : 3}T10:00:00Z`,
    );
    sandbox.faults.add({
      cloud: 'kube',
      operation: 'create:velero.io/v1/backups',
      scope: kube.name,
      fault,
      times: 1,
    });
    const d = await deps(clock);

    const { outcomes } = await backup(d, { clusterId: cluster.id });

    expect(outcomes[0]).toMatchObject({ status: 'created' });
    const name = (outcomes[0] as { backup: string }).backup;
    expect(backupsOn(kube).filter((b) => b.metadata.name === name)).toHaveLength(1);
  });

  it('validates on the server and creates nothing in a dry run', async () => {
    const { cluster, kube } = healthy('aws');
    const d = await deps(manualClock('2026-04-10T10:00:00Z'));

    const { outcomes } = await backup(d, { clusterId: cluster.id, dryRun: true });

    expect(outcomes[0]).toMatchObject({ status: 'planned', backup: 'fleetward-202604100000' });
    expect(backupsOn(kube).some((b) => b.metadata.name === 'fleetward-202604100000')).toBe(false);
    expect(await d.store.list('backups')).toEqual([]);
  });

  it('creates exactly one Backup when two invocations of one window race', async () => {
    const { cluster, kube } = healthy('aws');
    const clock = manualClock('2026-05-01T10:00:00Z');
    const [a, b] = await Promise.all([deps(clock), deps(clock)]);

    const [first, second] = await Promise.all([
      backup(a, { clusterId: cluster.id }),
      backup(b, { clusterId: cluster.id }),
    ]);

    const statuses = [first.outcomes[0]?.status, second.outcomes[0]?.status].sort();
    expect(statuses).toEqual(['created', 'exists']);
    expect(backupsOn(kube).filter((x) => x.metadata.name === 'fleetward-202605010000')).toHaveLength(1);
  });

  it('records a Backup an earlier invocation created with its whole status, completion included', async () => {
    const { cluster, kube } = healthy('aws');
    const clock = manualClock('2026-05-20T10:00:00Z');
    const first = await deps(clock);
    await backup(first, { clusterId: cluster.id });
    await until(
      () =>
        (
          kube.object('velero.io/v1', 'Backup', 'fleetward-202605200000', 'velero')?.status as {
            phase?: string;
          }
        )?.phase === 'Completed' || undefined,
      'the Backup to complete',
    );
    // Another invocation of the same window, with no record of it (e.g. the first crashed before saving).
    const second = await deps(clock);

    const { outcomes } = await backup(second, { clusterId: cluster.id });
    const { statuses } = await reconcile(second, { clusterId: cluster.id });

    expect(outcomes[0]).toMatchObject({ status: 'exists' });
    const record = await second.store.get<BackupRecord>('backups', `${cluster.id}/fleetward-202605200000`);
    expect(record).toMatchObject({
      phase: 'Completed',
      completedAt: expect.any(String),
      itemsBackedUp: expect.any(Number),
    });
    expect(statuses[0]?.findings.map((f) => f.kind)).not.toContain('backup-untimed');
  });

  it('computes RPO from the injected clock and alerts past the target', async () => {
    const { cluster } = healthy('aws');
    const clock = manualClock('2026-06-01T10:00:00Z');
    const d = await deps(clock);
    await backup(d, { clusterId: cluster.id });
    const done = await until(async () => {
      const { statuses } = await reconcile(d, { clusterId: cluster.id });
      return statuses[0]?.lastCompleted ?? undefined;
    }, 'a completed backup');

    clock.set(new Date(Date.parse(done.completedAt) + 25 * 3600_000).toISOString());
    const { statuses } = await reconcile(d, { clusterId: cluster.id });

    expect(statuses[0]?.rpoSeconds).toBe(25 * 3600);
    expect(statuses[0]?.rpoTargetSeconds).toBe(24 * 3600);
    expect(statuses[0]?.rpoOk).toBe(false);
    expect(statuses[0]?.findings.map((f) => f.kind)).toEqual(['rpo-exceeded']);
  });

  /** Backs the cluster up (completed) so a drill has something to restore. */
  async function withCompletedBackup(d: ClusterJobDeps, cluster: Cluster): Promise<void> {
    await backup(d, { clusterId: cluster.id });
    await until(async () => {
      const { statuses } = await reconcile(d, { clusterId: cluster.id });
      return statuses[0]?.lastCompleted ?? undefined;
    }, 'a completed backup');
  }

  async function drillUntilDone(
    d: ClusterJobDeps,
    cluster: Cluster,
    onStep?: () => void,
  ): Promise<DrillRecord> {
    return until(async () => {
      onStep?.();
      const [r] = await drillStep(d, { clusterId: cluster.id, start: 'never' });
      return r?.drill?.phase === 'done' ? r.drill : undefined;
    }, 'the drill to finish');
  }

  const scratchOn = (kube: KubeCluster) =>
    kube.objects('v1', 'Namespace').filter((n) => n.metadata.name?.startsWith('fw-drill-'));

  it('measures RTO from the cluster timestamps, however late the poll, and records the poll lag', async () => {
    const { cluster, kube } = healthy('aws');
    const clock = manualClock(new Date().toISOString());
    const d = await deps(clock);
    await withCompletedBackup(d, cluster);
    kube.velero!.config.readyDelayMs = 1_500;
    try {
      const [started] = await drillStep(d, { clusterId: cluster.id, start: 'force' });
      expect(started?.started).toBe(true);
      await new Promise((r) => setTimeout(r, 2_500)); // restore and readiness in the simulator
      clock.advance(10 * 60_000); // the deployed drill polls every 10 minutes
      const drill = await drillUntilDone(d, cluster);

      expect(drill.result).toBe('pass');
      expect(drill.rtoEvidence).toBe('cluster');
      expect(drill.rtoSeconds).toBeGreaterThanOrEqual(1);
      expect(drill.rtoSeconds).toBeLessThanOrEqual(4);
      expect(drill.rtoSeconds).toBe(
        (Date.parse(drill.verifiedAt!) - Date.parse(drill.restoreCreatedAt)) / 1000,
      );
      expect(drill.pollLagMs).toBeGreaterThanOrEqual(590_000);
      expect(scratchOn(kube)).toEqual([]);
    } finally {
      kube.velero!.config.readyDelayMs = 50;
    }
  });

  it('fails a drill whose restore fails, and still removes its scratch namespaces', async () => {
    const { cluster, kube } = healthy('azure');
    kube.velero!.config.failRestores = 'Failed';
    try {
      const d = await deps(manualClock('2026-08-01T10:00:00Z'));
      await withCompletedBackup(d, cluster);
      await drillStep(d, { clusterId: cluster.id, start: 'force' });
      const drill = await drillUntilDone(d, cluster);

      expect(drill.result).toBe('fail');
      expect(drill.reasons.join(' ')).toMatch(/restore ended Failed/);
      expect(drill.scratchLeft).toBe(0);
      expect(scratchOn(kube)).toEqual([]);
    } finally {
      kube.velero!.config.failRestores = null;
    }
  });

  it('cleans up a drill that fails half-way through verification', async () => {
    const { cluster, kube } = healthy('aws');
    const d = await deps(manualClock('2026-09-01T10:00:00Z'));
    await withCompletedBackup(d, cluster);
    await drillStep(d, { clusterId: cluster.id, start: 'force' });
    await new Promise((r) => setTimeout(r, 200));
    expect(scratchOn(kube).length).toBeGreaterThan(0);
    // Verification cannot list workloads any more (every attempt answers 500).
    sandbox.faults.add({
      cloud: 'kube',
      operation: 'list:apps/v1/deployments',
      scope: kube.name,
      fault: { kind: 'error', status: 500 },
    });

    const drill = await drillUntilDone(d, cluster);

    expect(drill.result).toBe('fail');
    expect(drill.reasons.join(' ')).toMatch(/step failed/);
    expect(scratchOn(kube)).toEqual([]);
  });

  it('sweeps scratch namespaces left over from a crashed drill once they are a day old', async () => {
    const { cluster, kube } = healthy('azure');
    const clock = manualClock(new Date().toISOString());
    const d = await deps(clock);
    await withCompletedBackup(d, cluster);
    // A drill whose record names its scratch namespace, and the namespace it created, left behind.
    const crashed = 'fleetward-drill-crashed';
    await d.store.putMany('drills', [
      {
        key: `${cluster.id}/${crashed}`,
        value: {
          id: crashed,
          sourceClusterId: cluster.id,
          targetClusterId: cluster.id,
          phase: 'done',
          scratchNamespaces: ['fw-drill-crashed-shop'],
          startedAt: new Date(clock.now().getTime() - 60_000).toISOString(),
        },
      },
    ]);
    kube.apply({
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: {
        name: 'fw-drill-crashed-shop',
        labels: {
          'app.kubernetes.io/managed-by': 'fleetward',
          'fleetward.io/scratch': 'true',
          'fleetward.io/drill': crashed,
        },
      },
    });

    await drillStep(d, { clusterId: cluster.id, start: 'force' });
    expect(kube.object('v1', 'Namespace', 'fw-drill-crashed-shop'), 'younger than a day: kept').toBeDefined();
    await drillUntilDone(d, cluster);
    clock.advance(25 * 3600_000);
    await drillStep(d, { clusterId: cluster.id, start: 'force' });
    await drillUntilDone(d, cluster);

    expect(kube.object('v1', 'Namespace', 'fw-drill-crashed-shop')).toBeUndefined();
    expect(scratchOn(kube)).toEqual([]);
  });

  it.each([
    ['a user namespace labelled fleetward.io/scratch=true', 'team-notes', { 'fleetward.io/scratch': 'true' }],
    [
      'a namespace with every Fleetward label but no drill record',
      'fw-drill-unrecorded-shop',
      {
        'app.kubernetes.io/managed-by': 'fleetward',
        'fleetward.io/scratch': 'true',
        'fleetward.io/drill': 'fleetward-drill-unrecorded',
      },
    ],
    [
      'a prefixed namespace not managed by Fleetward',
      'fw-drill-notours',
      { 'fleetward.io/scratch': 'true', 'fleetward.io/drill': 'fleetward-drill-crashed2' },
    ],
  ])('never sweeps %s, and backs it up', async (_case, name, labels) => {
    // Each case backs up in a window of its own (a day apart), so each creates its own Backup.
    const days = name.length;
    const { cluster, kube } = healthy('azure');
    const clock = manualClock(new Date().toISOString());
    const d = await deps(clock);
    await withCompletedBackup(d, cluster);
    await d.store.putMany('drills', [
      {
        key: `${cluster.id}/fleetward-drill-crashed2`,
        value: {
          id: 'fleetward-drill-crashed2',
          sourceClusterId: cluster.id,
          targetClusterId: cluster.id,
          phase: 'done',
          scratchNamespaces: ['fw-drill-notours'],
          startedAt: new Date(clock.now().getTime() - 60_000).toISOString(),
        },
      },
    ]);
    kube.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels } });
    try {
      clock.advance(days * 24 * 3600_000 + 3600_000);
      await drillStep(d, { clusterId: cluster.id, start: 'force' });
      await drillUntilDone(d, cluster);

      expect(kube.object('v1', 'Namespace', name), 'not a namespace a drill created').toBeDefined();
      const { outcomes } = await backup(d, { clusterId: cluster.id });
      const created = (outcomes[0] as { backup: string }).backup;
      const spec = kube.object('velero.io/v1', 'Backup', created, 'velero')?.spec as {
        includedNamespaces: string[];
      };
      expect(spec.includedNamespaces).toContain(name);
    } finally {
      kube.remove('v1', 'Namespace', name);
    }
  });

  it('cleans up only the scratch namespaces its drill recorded', async () => {
    const { cluster, kube } = healthy('aws');
    const d = await deps(manualClock(new Date().toISOString()));
    await withCompletedBackup(d, cluster);
    const [started] = await drillStep(d, { clusterId: cluster.id, start: 'force' });
    const id = started!.drill!.id;
    // A namespace someone labelled as this drill's, with the scratch prefix: not one the drill created.
    kube.apply({
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: {
        name: 'fw-drill-lookalike',
        labels: {
          'app.kubernetes.io/managed-by': 'fleetward',
          'fleetward.io/scratch': 'true',
          'fleetward.io/drill': id,
        },
      },
    });
    try {
      const drill = await drillUntilDone(d, cluster);

      expect(drill.scratchLeft).toBe(0);
      expect(kube.object('v1', 'Namespace', 'fw-drill-lookalike')).toBeDefined();
      for (const ns of drill.scratchNamespaces) expect(kube.object('v1', 'Namespace', ns)).toBeUndefined();
    } finally {
      kube.remove('v1', 'Namespace', 'fw-drill-lookalike');
    }
  });

  it('refuses a drill on a cluster without a completed backup, with a finding', async () => {
    const { cluster } = healthy('aws');
    const d = await deps(manualClock('2026-10-01T10:00:00Z'));
    // A fresh store knows no backup, and the sandbox cluster may hold Backups of other tests: use one with none.
    const bare = inventory.find(
      (c) => c.cloud !== 'kubeconfig' && !sandbox.veleroBuckets.has(c.id) && c.jurisdiction !== 'unassigned',
    );

    const [result] = await drillStep(d, { clusterId: (bare ?? cluster).id, start: 'force' });

    expect(result?.started).toBe(false);
    // Refused either way, in the words backup status uses for the same condition.
    expect(result?.findings.map((f) => f.kind)).toEqual(['drill-refused']);
    expect(result?.findings.map((f) => f.message)).toEqual([
      `drill not started: ${bare ? CONDITION.veleroMissing : CONDITION.noCompletedBackup}`,
    ]);
  });
});
