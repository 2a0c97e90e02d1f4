/**
 * The kube memory responder answers the calls of a backup pass as the full fake (one cluster
 * with the Velero simulator) does: the preflight reads and lists, a missing object, and the
 * Backup create that a redelivered item repeats (201, then 409 AlreadyExists and a read). Held
 * through the product's own client (`createKubeApi`) and the backup job's `run(item)`.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backupWork } from '../../shared/jobs/backup.ts';
import type { ClusterJobDeps } from '../../shared/jobs/fleet.ts';
import { createKubeApi } from '../../shared/kube/api.ts';
import type { KubeAccess, KubeApi, KubeObject } from '../../shared/ports.ts';
import { type BackupRecord, INVENTORY, NS } from '../../shared/state/records.ts';
import { SqliteStateStore } from '../../shared/state/sqlite.ts';
import { fanoutCluster, fanoutConfig, memoryKubeAccess, workerDeps } from '../bench/fanout-fleet.ts';
import { type KubeFake, startKubeFake } from '../sandbox/kube-fake.ts';
import {
  KUBE_MEMORY_LOCATION,
  KUBE_MEMORY_TOKEN,
  type KubeMemory,
  startKubeMemory,
} from '../sandbox/kube-memory.ts';

const cluster = fanoutCluster(7);
const config = fanoutConfig();

/** What may differ between two API servers: identities, versions, times. */
function normal(o: KubeObject | undefined): unknown {
  if (!o) return o;
  const { uid, resourceVersion, creationTimestamp, managedFields, generation, ...metadata } =
    o.metadata as Record<string, unknown>;
  const status = o.status as Record<string, unknown> | undefined;
  const { lastValidationTime, ...rest } = status ?? {};
  return { ...o, metadata, ...(status ? { status: rest } : {}) };
}

async function calls(api: KubeApi) {
  return {
    backupsCrd: normal(
      await api.read({
        apiVersion: 'apiextensions.k8s.io/v1',
        kind: 'CustomResourceDefinition',
        name: 'backups.velero.io',
      }),
    ),
    bslCrd: normal(
      await api.read({
        apiVersion: 'apiextensions.k8s.io/v1',
        kind: 'CustomResourceDefinition',
        name: 'backupstoragelocations.velero.io',
      }),
    ),
    missing: await api.read({
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      name: 'nothing',
      namespace: 'velero',
    }),
    deployment: normal(
      await api.read({ apiVersion: 'apps/v1', kind: 'Deployment', name: 'velero', namespace: 'velero' }),
    ),
    locations: (await api.list('velero.io/v1', 'BackupStorageLocation', { namespace: 'velero' })).map(normal),
    namespaces: (await api.list('v1', 'Namespace')).map((n) => n.metadata.name),
  };
}

describe('kube memory responder', () => {
  let fake: KubeFake;
  let memory: KubeMemory;
  const stores: SqliteStateStore[] = [];
  beforeAll(async () => {
    [fake, memory] = await Promise.all([
      startKubeFake({
        name: 'contract',
        token: KUBE_MEMORY_TOKEN,
        velero: { locations: [KUBE_MEMORY_LOCATION] },
      }),
      startKubeMemory(),
    ]);
  });
  afterAll(async () => {
    for (const s of stores) await s.close();
    await Promise.all([fake?.stop(), memory?.stop()]);
  });

  const fakeAccess = (): KubeAccess => ({
    async connect(c) {
      return createKubeApi({
        server: fake.url,
        ca: fake.ca,
        token: async () => KUBE_MEMORY_TOKEN,
        refresh: async () => KUBE_MEMORY_TOKEN,
        timeoutMs: 10_000,
        maxAttempts: 1,
        cluster: c.id,
      });
    },
  });

  async function deps(kube: KubeAccess): Promise<ClusterJobDeps> {
    const store = new SqliteStateStore({ path: ':memory:' });
    stores.push(store);
    await store.putMany(INVENTORY, [{ key: cluster.id, value: cluster }]);
    const base = workerDeps({ config, statePath: ':memory:', kube: { url: memory.url, ca: memory.ca } });
    await base.store.close();
    return { ...base, store, kube, clock: { now: () => new Date('2026-05-04T10:00:00Z') } };
  }

  it('answers the preflight reads and lists as the full fake does', async () => {
    // Prepare
    const real = await fakeAccess().connect(cluster);
    const mem = await memoryKubeAccess(memory, config).connect(cluster);

    // Act
    const [expected, actual] = [await calls(real), await calls(mem)];

    // Assess
    expect(expected.missing).toBeUndefined();
    expect(expected.locations).toHaveLength(1);
    expect(actual).toEqual(expected);
  });

  it('creates a Backup once: a repeated item finds it (409) on both, with the same outcome and record', async () => {
    // Prepare
    const [onFake, onMemory] = [await deps(fakeAccess()), await deps(memoryKubeAccess(memory, config))];
    const [item] = await backupWork.plan(onFake, {});

    // Act
    const first = [await backupWork.run(onFake, item!), await backupWork.run(onMemory, item!)];
    const again = [await backupWork.run(onFake, item!), await backupWork.run(onMemory, item!)];

    // Assess
    expect(first[0]).toMatchObject({ status: 'created' });
    expect(first[1]).toEqual(first[0]);
    expect(again[0]).toMatchObject({ status: 'exists' });
    expect(again[1]).toEqual(again[0]);
    const record = async (d: ClusterJobDeps) => {
      const r = (await d.store.list<BackupRecord>(NS.backups)).map((i) => i.value);
      return r.map(({ name, window, runId, storageLocation, bucket, namespaces, clusterId }) => ({
        name,
        window,
        runId,
        storageLocation,
        bucket,
        namespaces,
        clusterId,
      }));
    };
    expect(await record(onMemory)).toEqual(await record(onFake));
    expect(memory.backups(cluster.name)).toHaveLength(1);
  });
});
