/**
 * Single-cluster rediscovery against the sandbox (moto behind the recording proxy, the GKE
 * gRPC fake, the ARM fake), through the real adapters: a described cluster equals what the
 * full discovery saved, a change made through the cloud's own API is reported field by
 * field, a cluster the cloud does not know is removed from the inventory (or absent), and
 * an event for a scope we were not given never reaches a cloud.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  DeleteClusterCommand,
  DescribeClusterCommand,
  EKSClient,
  TagResourceCommand,
} from '@aws-sdk/client-eks';
import { AssumeRoleCommand, STSClient } from '@aws-sdk/client-sts';
import { ContainerServiceClient } from '@azure/arm-containerservice';
import { ClusterManagerClient } from '@google-cloud/container';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  clientOptions as armClientOptions,
  connectionOf,
  createCredential,
  requestPolicy,
} from '../../shared/clouds/azure/discovery.ts';
import { clientOptions as gkeClientOptions } from '../../shared/clouds/gcp/discovery.ts';
import { loadConfig } from '../../shared/config/load.ts';
import type { FleetConfig } from '../../shared/config/schema.ts';
import { type DiscoverDeps, run } from '../../shared/jobs/discover.ts';
import {
  type ClusterRef,
  clusterIdOf,
  InvalidClusterRefError,
  rediscoverCluster,
} from '../../shared/jobs/rediscover.ts';
import type { Cluster, RegionCloud } from '../../shared/model.ts';
import { discoverDeps } from '../../shared/runtime/deps.ts';
import { ConfigError } from '../../shared/runtime/errors.ts';
import { silentLogger } from '../../shared/runtime/logger.ts';
import { INVENTORY } from '../../shared/state/records.ts';
import { type Sandbox, startSandbox } from '../sandbox/index.ts';

const CLOUDS = ['aws', 'gcp', 'azure'] as const;

/** The one call a rediscovery makes to each cloud's cluster API. */
const DESCRIBE_OPERATION: Record<RegionCloud, string> = {
  aws: 'DescribeCluster',
  gcp: 'GetCluster',
  azure: 'managedClusters.get',
};

/** A cloud event's view of a cluster: Azure events carry no location. */
function refOf(cluster: Cluster): ClusterRef {
  const cloud = cluster.cloud as RegionCloud;
  if (cloud === 'azure') {
    return {
      cloud,
      scope: cluster.scope,
      region: '',
      name: cluster.name,
      resourceGroup: cluster.resourceGroup!,
    };
  }
  return { cloud, scope: cluster.scope, region: cluster.region, name: cluster.name };
}

describe('rediscoverCluster against the sandbox', () => {
  let sandbox: Sandbox;
  let config: FleetConfig;
  let deps: DiscoverDeps;
  /** What the full discovery saved, by cluster id. */
  let full: Map<string, Cluster>;

  const clustersOf = (cloud: RegionCloud) => [...full.values()].filter((c) => c.cloud === cloud);
  /** Requests the sandbox saw since the last clear, AssumeRole set aside (it is not a cluster call). */
  const clusterCalls = () => sandbox.log.entries.filter((e) => e.operation !== 'AssumeRole');
  const stored = (id: string) => deps.store.get<Cluster>(INVENTORY, id);

  beforeAll(async () => {
    sandbox = await startSandbox({
      mix: { aws: 3, gcp: 3, azure: 3, kubeconfig: 0 },
      velero: false,
      dir: mkdtempSync(join(tmpdir(), 'fleetward-rediscover-')),
    });
    config = await loadConfig(sandbox.configPath);
    deps = await discoverDeps(config, silentLogger, CLOUDS);
    const result = await run(deps);
    expect(result.failures).toEqual([]);
    full = new Map(result.clusters.map((c) => [c.id, c]));
  }, 120_000);
  afterAll(async () => {
    await deps?.store.close();
    await sandbox?.stop();
    if (sandbox) rmSync(sandbox.dir, { recursive: true, force: true });
  });
  beforeEach(() => {
    sandbox.faults.clear();
    sandbox.log.clear();
  });

  // --- the cloud's own APIs, to change the fleet behind Fleetward's back ---

  async function eksAs(account: string, region: string): Promise<EKSClient> {
    const base = { endpoint: sandbox.moto.url, region };
    const sts = new STSClient({
      ...base,
      credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
    });
    const out = await sts.send(
      new AssumeRoleCommand({ RoleArn: `arn:aws:iam::${account}:role/test-admin`, RoleSessionName: 'test' }),
    );
    sts.destroy();
    const c = out.Credentials!;
    return new EKSClient({
      ...base,
      credentials: {
        accessKeyId: c.AccessKeyId!,
        secretAccessKey: c.SecretAccessKey!,
        sessionToken: c.SessionToken!,
      },
    });
  }

  /** Adds tags to a cluster through its cloud's API (moto directly; the GKE and ARM fakes via their clients). */
  async function addTags(cluster: Cluster, tags: Record<string, string>): Promise<void> {
    if (cluster.cloud === 'aws') {
      const eks = await eksAs(cluster.scope, cluster.region);
      const { cluster: described } = await eks.send(new DescribeClusterCommand({ name: cluster.name }));
      await eks.send(new TagResourceCommand({ resourceArn: described!.arn!, tags }));
      eks.destroy();
    } else if (cluster.cloud === 'gcp') {
      const gke = new ClusterManagerClient(gkeClientOptions(config.clouds.gcp!));
      const name = `projects/${cluster.scope}/locations/${cluster.region}/clusters/${cluster.name}`;
      const [current] = await gke.getCluster({ name });
      await gke.setLabels({
        name,
        resourceLabels: { ...current.resourceLabels, ...tags },
        labelFingerprint: current.labelFingerprint!,
      });
      await gke.close();
    } else {
      const azure = config.clouds.azure!;
      const connection = connectionOf(azure);
      const arm = new ContainerServiceClient(
        await createCredential(azure.credential),
        cluster.scope,
        armClientOptions(connection, requestPolicy(connection, 10_000, undefined)),
      );
      await arm.managedClusters.beginUpdateTagsAndWait(cluster.resourceGroup!, cluster.name, {
        tags: { ...cluster.tags, ...tags },
      });
    }
  }

  it('computes the same cluster id as the list path for every cluster', () => {
    expect(full.size).toBe(9);
    for (const cluster of full.values()) expect(clusterIdOf(refOf(cluster))).toBe(cluster.id);
  });

  it.each(CLOUDS)(
    '%s: rediscovers every cluster exactly as the full discovery saved it, one call each',
    async (cloud) => {
      // Prepare
      const clusters = clustersOf(cloud);
      expect(clusters).toHaveLength(3);

      for (const cluster of clusters) {
        sandbox.log.clear();
        // Act
        const result = await rediscoverCluster(deps, refOf(cluster));
        // Assess
        expect(result).toEqual({
          clusterId: cluster.id,
          outcome: 'unchanged',
          cluster,
          diff: { added: [], removed: [], changed: [] },
        });
        expect(await stored(cluster.id)).toEqual(cluster);
        expect(clusterCalls().map((e) => `${e.cloud}:${e.operation}:${e.scope}`)).toEqual([
          `${cloud}:${DESCRIBE_OPERATION[cloud]}:${cluster.scope}`,
        ]);
      }
    },
  );

  it('aws: reuses the assumed-role session, so a repeated rediscovery is exactly one request', async () => {
    // Prepare
    const cluster = clustersOf('aws')[0]!;
    await rediscoverCluster(deps, refOf(cluster));
    sandbox.log.clear();

    // Act
    await rediscoverCluster(deps, refOf(cluster));

    // Assess
    expect(sandbox.log.entries.map((e) => e.operation)).toEqual(['DescribeCluster']);
  });

  it.each(CLOUDS)(
    '%s: reports a tag added through the cloud as a changed field and saves it',
    async (cloud) => {
      // Prepare
      const cluster = clustersOf(cloud)[1]!;
      await addTags(cluster, { 'cost-centre': 'cc-4711' });
      sandbox.log.clear();

      // Act
      const result = await rediscoverCluster(deps, refOf(cluster));

      // Assess
      expect(result.outcome).toBe('changed');
      expect(result.clusterId).toBe(cluster.id);
      expect(result.diff.added).toEqual([]);
      expect(result.diff.removed).toEqual([]);
      expect(result.diff.changed).toHaveLength(1);
      expect(result.diff.changed[0]!.id).toBe(cluster.id);
      expect(result.diff.changed[0]!.fields).toContainEqual({
        field: 'tags.cost-centre',
        before: null,
        after: 'cc-4711',
      });
      expect(result.diff.changed[0]!.fields.every((f) => f.field.startsWith('tags.'))).toBe(true);
      expect(result.cluster?.tags['cost-centre']).toBe('cc-4711');
      expect(await stored(cluster.id)).toEqual(result.cluster);
      expect(clusterCalls().map((e) => e.operation)).toEqual([DESCRIBE_OPERATION[cloud]]);

      // A second event for the same cluster finds nothing new.
      const again = await rediscoverCluster(deps, refOf(cluster));
      expect(again.outcome).toBe('unchanged');
      expect(again.diff).toEqual({ added: [], removed: [], changed: [] });
    },
  );

  it.each(CLOUDS)(
    '%s: removes a cluster the cloud does not know from the inventory, then reports it absent',
    async (cloud) => {
      // Prepare: a record of a cluster that no longer exists (same scope, unknown name).
      const template = clustersOf(cloud)[0]!;
      const ghost = refOf({ ...template, name: `${template.name}-gone` });
      const ghostId = clusterIdOf(ghost);
      await deps.store.putMany(INVENTORY, [
        { key: ghostId, value: { ...template, id: ghostId, name: ghost.name } },
      ]);

      // Act
      const removed = await rediscoverCluster(deps, ghost);
      const absent = await rediscoverCluster(deps, ghost);

      // Assess
      expect(removed).toEqual({
        clusterId: ghostId,
        outcome: 'removed',
        cluster: null,
        diff: { added: [], removed: [ghostId], changed: [] },
      });
      expect(await stored(ghostId)).toBeUndefined();
      expect(absent).toEqual({
        clusterId: ghostId,
        outcome: 'absent',
        cluster: null,
        diff: { added: [], removed: [], changed: [] },
      });
      expect(clusterCalls().map((e) => `${e.operation}:${e.status}`)).toEqual([
        `${DESCRIBE_OPERATION[cloud]}:404`,
        `${DESCRIBE_OPERATION[cloud]}:404`,
      ]);
      expect(await stored(template.id)).toEqual(template);
    },
  );

  it('aws: removes a cluster deleted through EKS from the inventory', async () => {
    // Prepare
    const cluster = clustersOf('aws')[2]!;
    const eks = await eksAs(cluster.scope, cluster.region);
    await eks.send(new DeleteClusterCommand({ name: cluster.name }));
    eks.destroy();

    // Act
    const removed = await rediscoverCluster(deps, refOf(cluster));

    // Assess
    expect(removed.outcome).toBe('removed');
    expect(removed.diff.removed).toEqual([cluster.id]);
    expect(await stored(cluster.id)).toBeUndefined();
    expect(full.has(cluster.id)).toBe(true);
  });

  it.each(CLOUDS)(
    '%s: a newly seen cluster is added with its jurisdiction placed as the full run does',
    async (cloud) => {
      // Prepare: the inventory lost the record (a first event before any full run).
      const cluster = clustersOf(cloud)[0]!;
      await deps.store.deleteMany(INVENTORY, [cluster.id]);

      // Act
      const result = await rediscoverCluster(deps, refOf(cluster));

      // Assess
      expect(result.outcome).toBe('added');
      expect(result.diff).toEqual({ added: [cluster.id], removed: [], changed: [] });
      expect(result.cluster?.jurisdiction).toBe(cluster.jurisdiction);
      expect(result.cluster?.country).toBe(cluster.country);
      expect(await stored(cluster.id)).toEqual(cluster);
    },
  );

  const unconfigured: [string, ClusterRef][] = [
    ['aws account', { cloud: 'aws', scope: '999999999999', region: 'eu-central-1', name: 'x' }],
    ['aws region', { cloud: 'aws', scope: '111111111111', region: 'sa-east-1', name: 'x' }],
    ['gcp project', { cloud: 'gcp', scope: 'fw-not-ours', region: 'europe-west1', name: 'x' }],
    [
      'azure subscription',
      {
        cloud: 'azure',
        scope: '00000000-0000-4000-8000-00000000ffff',
        region: '',
        name: 'x',
        resourceGroup: 'rg',
      },
    ],
  ];

  it.each(unconfigured)(
    'refuses an event for an unconfigured %s without any cloud call',
    async (_what, ref) => {
      // Act
      const act = rediscoverCluster(deps, ref);

      // Assess
      await expect(act).rejects.toBeInstanceOf(ConfigError);
      await expect(act).rejects.toMatchObject({
        issues: [{ message: expect.stringContaining('not configured') }],
      });
      expect(sandbox.log.entries).toEqual([]);
    },
  );

  it('refuses an azure event without a resource group, in the job and in the adapter, without any call', async () => {
    // Prepare
    const cluster = clustersOf('azure')[0]!;
    const adapter = deps.discoveries.find((d) => d.cloud === 'azure')!;
    const { resourceGroup: _rg, ...withoutGroup } = refOf(cluster);

    // Act + Assess
    await expect(rediscoverCluster(deps, withoutGroup)).rejects.toBeInstanceOf(InvalidClusterRefError);
    await expect(adapter.describe!({ scope: cluster.scope, region: '', name: cluster.name })).rejects.toThrow(
      /without its resource group/,
    );
    expect(sandbox.log.entries).toEqual([]);
  });

  it.each(CLOUDS)('%s: a failing call rejects and leaves the inventory record as it was', async (cloud) => {
    // Prepare
    const cluster = clustersOf(cloud)[1]!;
    const before = await stored(cluster.id);
    sandbox.faults.add({
      cloud,
      operation: DESCRIBE_OPERATION[cloud],
      fault: { kind: 'error', status: 403 },
    });

    // Act
    const act = rediscoverCluster(deps, refOf(cluster));

    // Assess
    await expect(act).rejects.toMatchObject({
      name: 'CloudApiError',
      cloud,
      operation: DESCRIBE_OPERATION[cloud],
      status: 403,
      retryable: false,
    });
    expect(await stored(cluster.id)).toEqual(before);
  });
});
