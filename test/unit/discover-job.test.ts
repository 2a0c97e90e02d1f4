import { describe, expect, it } from 'vitest';
import { RUNS, run } from '../../shared/jobs/discover.ts';
import type {
  CloudId,
  Cluster,
  DiscoveredCluster,
  DiscoveryFailure,
  DiscoveryOutcome,
} from '../../shared/model.ts';
import type { ClusterDiscovery, StateStore } from '../../shared/ports.ts';
import { Residency } from '../../shared/residency/index.ts';
import { silentLogger } from '../../shared/runtime/logger.ts';
import { INVENTORY } from '../../shared/state/records.ts';
import { SqliteStateStore } from '../../shared/state/sqlite.ts';

/** Builder for a discovered cluster with sensible defaults. */
function cluster(
  cloud: CloudId,
  scope: string,
  region: string,
  name: string,
  extra: Partial<DiscoveredCluster> = {},
): DiscoveredCluster {
  return {
    id: `${cloud}/${scope}/${region}/${name}`,
    cloud,
    scope,
    region,
    name,
    kubernetesVersion: '1.32',
    endpoint: `https://${name}.example.internal`,
    endpointAccess: 'private',
    secretsEncryptionKey: null,
    auditLogging: true,
    tags: { team: 'payments' },
    status: 'running',
    providerStatus: 'ACTIVE',
    createdAt: '2026-01-01T00:00:00.000Z',
    ...extra,
  };
}

/** An adapter whose next answer the test sets. */
class ScriptedDiscovery implements ClusterDiscovery {
  outcome: DiscoveryOutcome = { clusters: [], failures: [], completedScopes: [] };
  throws: Error | undefined;
  readonly cloud: CloudId;
  constructor(cloud: CloudId) {
    this.cloud = cloud;
  }
  async discover(): Promise<DiscoveryOutcome> {
    if (this.throws) throw this.throws;
    return structuredClone(this.outcome);
  }
}

const residency = new Residency({
  eu: { preset: 'eu-gdpr' },
  in: { preset: 'in-dpdp' },
  za: { preset: 'za-popia' },
});

function setup() {
  const aws = new ScriptedDiscovery('aws');
  const gcp = new ScriptedDiscovery('gcp');
  const store: StateStore = new SqliteStateStore({ path: ':memory:' });
  let t = Date.parse('2026-11-21T10:00:00Z');
  const deps = {
    discoveries: [aws, gcp],
    store,
    residency,
    logger: silentLogger,
    clock: {
      now: () => {
        t += 1000;
        return new Date(t);
      },
    },
  };
  return { aws, gcp, store, deps };
}

const failure = (cloud: CloudId, scope: string, region?: string): DiscoveryFailure => ({
  cloud,
  scope,
  ...(region ? { region } : {}),
  kind: 'scope',
  error: { name: 'CloudApiError', message: 'service unavailable', status: 503 },
});

describe('discover', () => {
  it('places every cluster in the jurisdiction of its region, or unassigned', async () => {
    const { aws, gcp, deps } = setup();
    aws.outcome.clusters = [
      cluster('aws', '111111111111', 'eu-central-1', 'a'),
      cluster('aws', '111111111111', 'ap-south-1', 'b'),
      cluster('aws', '111111111111', 'us-east-1', 'c'),
    ];
    gcp.outcome.clusters = [
      cluster('gcp', 'proj-za', 'africa-south1', 'd'),
      cluster('gcp', 'proj-eu', 'europe-west1-b', 'e'),
    ];

    const result = await run(deps);

    expect(result.clusters.map((c) => [c.name, c.country, c.jurisdiction])).toEqual([
      ['b', 'IN', 'in'],
      ['a', 'DE', 'eu'],
      ['c', 'US', 'unassigned'],
      ['e', 'BE', 'eu'],
      ['d', 'ZA', 'za'],
    ]);
    expect(result.diff.added).toHaveLength(5);
  });

  it("keeps only a regional deployment's own jurisdiction in its inventory", async () => {
    const { aws, gcp, deps, store } = setup();
    aws.outcome.clusters = [
      cluster('aws', '111111111111', 'eu-central-1', 'a'),
      cluster('aws', '111111111111', 'ap-south-1', 'b'),
    ];
    gcp.outcome.clusters = [cluster('gcp', 'proj-in', 'asia-south1', 'c')];

    const result = await run(deps, { jurisdiction: 'in' });

    expect(result.clusters.map((c) => [c.name, c.jurisdiction])).toEqual([
      ['b', 'in'],
      ['c', 'in'],
    ]);
    expect(result.diff.added).toHaveLength(2);
    expect((await store.list<Cluster>(INVENTORY)).map((i) => i.value.jurisdiction)).toEqual(['in', 'in']);
  });

  it('saves the inventory so a second identical run reports an empty diff', async () => {
    const { aws, deps, store } = setup();
    aws.outcome.clusters = [cluster('aws', '111111111111', 'eu-central-1', 'a')];

    await run(deps);
    const second = await run(deps);

    expect(second.diff).toEqual({ added: [], removed: [], changed: [] });
    expect(await store.list(INVENTORY)).toHaveLength(1);
    expect(await store.list(RUNS)).toHaveLength(2);
  });

  it('reports changed fields, tag by tag', async () => {
    const { aws, deps } = setup();
    aws.outcome.clusters = [cluster('aws', '111111111111', 'eu-central-1', 'a')];
    await run(deps);
    aws.outcome.clusters = [
      cluster('aws', '111111111111', 'eu-central-1', 'a', {
        kubernetesVersion: '1.33',
        tags: { team: 'payments', owner: 'x@example.com' },
      }),
    ];

    const { diff } = await run(deps);

    expect(diff.changed).toEqual([
      {
        id: 'aws/111111111111/eu-central-1/a',
        fields: [
          { field: 'kubernetesVersion', before: '1.32', after: '1.33' },
          { field: 'tags.owner', before: null, after: 'x@example.com' },
        ],
      },
    ]);
  });

  it('reports a cluster removed when its scope answered without it', async () => {
    const { aws, deps, store } = setup();
    aws.outcome.clusters = [
      cluster('aws', '111111111111', 'eu-central-1', 'a'),
      cluster('aws', '111111111111', 'eu-central-1', 'b'),
    ];
    await run(deps);
    aws.outcome.clusters = [cluster('aws', '111111111111', 'eu-central-1', 'a')];

    const { diff } = await run(deps);

    expect(diff.removed).toEqual(['aws/111111111111/eu-central-1/b']);
    expect((await store.list(INVENTORY)).map((i) => i.key)).toEqual(['aws/111111111111/eu-central-1/a']);
  });

  it('keeps clusters of a failed region as last seen instead of reporting them removed', async () => {
    const { aws, deps } = setup();
    aws.outcome.clusters = [
      cluster('aws', '111111111111', 'eu-central-1', 'a'),
      cluster('aws', '111111111111', 'eu-west-1', 'b'),
    ];
    await run(deps);
    aws.outcome = {
      clusters: [cluster('aws', '111111111111', 'eu-central-1', 'a')],
      failures: [failure('aws', '111111111111', 'eu-west-1')],
      completedScopes: [],
    };

    const result = await run(deps);

    expect(result.diff).toEqual({ added: [], removed: [], changed: [] });
    expect(result.stale).toEqual(['aws/111111111111/eu-west-1/b']);
    expect(result.clusters.map((c) => c.name)).toEqual(['a', 'b']);
    expect(result.failures).toHaveLength(1);
  });

  it('keeps the last record of a cluster whose payload could not be parsed', async () => {
    const { gcp, deps } = setup();
    gcp.outcome.clusters = [cluster('gcp', 'proj-eu', 'europe-west1', 'x')];
    await run(deps);
    gcp.outcome = {
      clusters: [],
      failures: [{ ...failure('gcp', 'proj-eu'), kind: 'unparseable', cluster: 'x' }],
      completedScopes: [],
    };

    const result = await run(deps);

    expect(result.stale).toEqual(['gcp/proj-eu/europe-west1/x']);
    expect(result.diff.removed).toEqual([]);
  });

  it('turns an adapter that throws into one failure for its cloud and still saves the others', async () => {
    const { aws, gcp, deps } = setup();
    aws.outcome.clusters = [cluster('aws', '111111111111', 'eu-central-1', 'a')];
    gcp.outcome.clusters = [cluster('gcp', 'proj-eu', 'europe-west1', 'g')];
    await run(deps);
    gcp.throws = new Error('boom');

    const result = await run(deps);

    expect(result.failures).toEqual([
      { cloud: 'gcp', scope: '*', kind: 'scope', error: { name: 'Error', message: 'boom' } },
    ]);
    expect(result.stale).toEqual(['gcp/proj-eu/europe-west1/g']);
    expect(result.diff.removed).toEqual([]);
  });

  it('reports a jurisdiction whose data has nowhere to go, and not once an exception allows a country', async () => {
    const { deps } = setup();
    const kenya = (exceptions: { allowCountries: string[]; reason: string; expires: string }[]) =>
      new Residency(
        { ke: { preset: 'ke-dpa', exceptions } },
        { now: () => new Date('2026-11-21T00:00:00Z') },
      );

    const without = await run({ ...deps, residency: kenya([]) });
    const withException = await run({
      ...deps,
      residency: kenya([
        { allowCountries: ['ZA'], reason: 'no in-country region yet', expires: '2027-06-30' },
      ]),
    });

    expect(without.residencyFindings.map((f) => [f.jurisdiction, f.kind])).toEqual([
      ['ke', 'no-in-country-region'],
    ]);
    expect(withException.residencyFindings).toEqual([]);
  });

  it('rejects when the signal is aborted and saves nothing', async () => {
    const { aws, deps, store } = setup();
    const controller = new AbortController();
    aws.throws = new Error('aborted');
    controller.abort();

    await expect(run(deps, { signal: controller.signal })).rejects.toThrow('aborted');
    expect(await store.list(INVENTORY)).toEqual([]);
  });
});
