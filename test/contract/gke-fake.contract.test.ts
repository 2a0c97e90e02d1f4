/**
 * The GKE fake answers what the GKE API answers: a `projects.locations.clusters` resource
 * (the v1 `Cluster` message) with the documented field names and nesting, read back
 * through the real `ClusterManagerClient`.
 *
 * `test/fixtures/gcp/gke-cluster.json` is a sample in the shape of the public Cluster
 * resource reference (REST JSON field names, enums by name, int64 as strings), with
 * placeholder values (example-project, documentation IP ranges).
 */
import { readFileSync } from 'node:fs';
import { ClusterManagerClient } from '@google-cloud/container';
import { GoogleAuth } from 'google-gax';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { clientOptions, type GkeCluster, normaliseCluster } from '../../shared/clouds/gcp/discovery.ts';
import { GcpConfig } from '../../shared/config/schema.ts';
import { RequestLog } from '../sandbox/faults.ts';
import { type GkeFake, gkeCluster, startGkeFake } from '../sandbox/gke-fake.ts';

const FIXTURE = new URL('../fixtures/gcp/gke-cluster.json', import.meta.url);
const fixture = JSON.parse(readFileSync(FIXTURE, 'utf8')) as GkeCluster & Record<string, unknown>;
const PROJECT = 'example-project';

let fake: GkeFake;
let client: ClusterManagerClient;
const log = new RequestLog();
const authSpies = [
  vi.spyOn(GoogleAuth.prototype, 'getClient'),
  vi.spyOn(GoogleAuth.prototype, 'getAccessToken'),
  vi.spyOn(GoogleAuth.prototype, 'getRequestHeaders'),
];

beforeAll(async () => {
  fake = await startGkeFake({ log });
  fake.setClusters(PROJECT, [fixture, gkeCluster({ name: 'zonal', location: 'europe-west1-b' })]);
  const config = GcpConfig.parse({ endpoint: fake.endpoint, insecure: true, projects: [{ id: PROJECT }] });
  client = new ClusterManagerClient(clientOptions(config));
});

afterAll(async () => {
  await client?.close();
  await fake?.stop();
});

async function listAll(): Promise<GkeCluster[]> {
  const [response] = await client.listClusters(
    { parent: `projects/${PROJECT}/locations/-` },
    { retry: null },
  );
  return response.clusters ?? [];
}

describe('gke fake, read through the real ClusterManagerClient', () => {
  it('round-trips the documented Cluster sample field by field', async () => {
    const got = (await listAll()).find((c) => c.name === 'example-cluster');
    expect(got).toBeDefined();
    // Every field of the sample comes back under the same name, nesting and value:
    // a name the v1 proto does not define would be dropped and fail here.
    expect(got).toMatchObject(fixture);
    for (const key of Object.keys(fixture)) expect(got, key).toHaveProperty(key);
  });

  it('answers GetCluster with the same resource', async () => {
    const [got] = await client.getCluster({
      name: `projects/${PROJECT}/locations/europe-west1/clusters/example-cluster`,
    });
    expect(got).toMatchObject(fixture);
  });

  it('builds clusters with the documented nesting and types', async () => {
    const zonal = (await listAll()).find((c) => c.name === 'zonal')!;
    expect(zonal).toMatchObject({
      location: 'europe-west1-b',
      zone: 'europe-west1-b',
      locations: ['europe-west1-b'],
      status: 'RUNNING',
      selfLink: `https://container.googleapis.com/v1/projects/${PROJECT}/locations/europe-west1-b/clusters/zonal`,
      loggingService: 'logging.googleapis.com/kubernetes',
      databaseEncryption: { state: 'DECRYPTED', keyName: '' },
      privateClusterConfig: null,
      loggingConfig: { componentConfig: { enableComponents: ['SYSTEM_COMPONENTS', 'WORKLOADS'] } },
      controlPlaneEndpointsConfig: { ipEndpointsConfig: { enabled: true, enablePublicEndpoint: true } },
      masterAuthorizedNetworksConfig: { enabled: false, cidrBlocks: [] },
      resourceLabels: {},
    });
    expect(zonal.createTime).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/);
    expect(zonal.id).toMatch(/^[0-9a-f]{32,64}$/);
    expect(zonal.labelFingerprint).toMatch(/^[0-9a-f]{8}$/);
    expect(zonal.currentMasterVersion).toMatch(/^\d+\.\d+\.\d+-gke\.\d+$/);
  });

  it('filters by location and answers NOT_FOUND for an unknown project', async () => {
    const [zonal] = await client.listClusters({ parent: `projects/${PROJECT}/locations/europe-west1-b` });
    expect(zonal.clusters?.map((c) => c.name)).toEqual(['zonal']);
    await expect(
      client.listClusters({ parent: 'projects/no-such-project/locations/-' }, { retry: null }),
    ).rejects.toMatchObject({ code: 5 });
    expect(log.entries.filter((e) => e.scope === 'no-such-project')).toEqual([
      expect.objectContaining({ cloud: 'gcp', operation: 'ListClusters', status: 404 }),
    ]);
  });

  it('normalises the sample through the adapter', async () => {
    const expected = {
      id: 'gcp/example-project/europe-west1/example-cluster',
      cloud: 'gcp',
      scope: PROJECT,
      region: 'europe-west1',
      name: 'example-cluster',
      kubernetesVersion: '1.33.5-gke.1201000',
      endpoint: 'https://203.0.113.10',
      endpointAccess: 'public-and-private',
      secretsEncryptionKey:
        'projects/example-project/locations/europe-west1/keyRings/example-ring/cryptoKeys/example-key',
      auditLogging: true,
      tags: { env: 'prod', team: 'platform' },
      status: 'running',
      providerStatus: 'RUNNING',
      createdAt: '2025-03-14T09:26:53.000Z',
    };
    // The sample as written, and the sample as the client decodes it, give the same record.
    expect(normaliseCluster(PROJECT, fixture)).toEqual(expected);
    const got = (await listAll()).find((c) => c.name === 'example-cluster')!;
    expect(normaliseCluster(PROJECT, got)).toEqual(expected);
  });

  it('never asked the auth library for credentials or a token', () => {
    for (const spy of authSpies) expect(spy).not.toHaveBeenCalled();
  });
});
