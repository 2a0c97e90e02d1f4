/**
 * The GKE fake's `SetLabels` (REST `clusters.setResourceLabels`, the Node client's `setLabels`) behaves like GKE's: an
 * optimistic write guarded by `labelFingerprint`, read back through the real
 * `ClusterManagerClient`. A stale fingerprint fails the way GKE fails it (gRPC
 * FAILED_PRECONDITION, REST `400 failedPrecondition`, "Labels could not be set due to
 * fingerprint mismatch; ...") and changes nothing.
 */
import { ClusterManagerClient } from '@google-cloud/container';
import { GoogleAuth, grpc } from 'google-gax';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { clientOptions, type GkeCluster } from '../../shared/clouds/gcp/discovery.ts';
import { GcpConfig } from '../../shared/config/schema.ts';
import { RequestLog } from '../sandbox/faults.ts';
import {
  type GkeFake,
  gkeCluster,
  labelFingerprint,
  type SetLabelsCall,
  startGkeFake,
} from '../sandbox/gke-fake.ts';

const PROJECT = 'example-project';
const LOCATION = 'europe-west1';
const NAME = `projects/${PROJECT}/locations/${LOCATION}/clusters/labelled`;
const INITIAL = { env: 'prod', team: 'platform' };

let fake: GkeFake;
let client: ClusterManagerClient;
const log = new RequestLog();
/** Set by a test to run inside the fake when a SetLabels request arrives. */
let onSetLabels: ((call: SetLabelsCall) => void) | undefined;
const authSpies = [
  vi.spyOn(GoogleAuth.prototype, 'getClient'),
  vi.spyOn(GoogleAuth.prototype, 'getAccessToken'),
  vi.spyOn(GoogleAuth.prototype, 'getRequestHeaders'),
];

beforeAll(async () => {
  fake = await startGkeFake({ log, onSetLabels: (call) => onSetLabels?.(call) });
  const config = GcpConfig.parse({ endpoint: fake.endpoint, insecure: true, projects: [{ id: PROJECT }] });
  client = new ClusterManagerClient(clientOptions(config));
});

beforeEach(() => {
  onSetLabels = undefined;
  log.clear();
  fake.setClusters(PROJECT, [
    gkeCluster({ name: 'labelled', location: LOCATION, resourceLabels: INITIAL }),
    gkeCluster({ name: 'other', location: 'europe-west1-b', resourceLabels: { env: 'dev' } }),
  ]);
});

afterAll(async () => {
  await client?.close();
  await fake?.stop();
});

async function getCluster(): Promise<GkeCluster> {
  const [cluster] = await client.getCluster({ name: NAME }, { retry: null });
  return cluster;
}

async function listCluster(): Promise<GkeCluster | undefined> {
  const [response] = await client.listClusters(
    { parent: `projects/${PROJECT}/locations/-` },
    { retry: null },
  );
  return response.clusters?.find((c) => c.name === 'labelled');
}

/** The rejection of a call, for asserting its gRPC status. */
async function rejection(
  call: Promise<unknown>,
): Promise<{ code?: number; details?: string; message?: string }> {
  try {
    await call;
  } catch (error) {
    return error as { code?: number; details?: string };
  }
  throw new Error('expected the call to fail');
}

describe('gke fake SetLabels, through the real ClusterManagerClient', () => {
  it('replaces the labels, changes the fingerprint, and GetCluster/ListClusters show both', async () => {
    const before = await getCluster();
    expect(before.resourceLabels).toEqual(INITIAL);
    expect(before.labelFingerprint).toBe(labelFingerprint(INITIAL));

    const labels = { env: 'prod', 'cost-center': 'cc-1234' };
    await client.setLabels(
      { name: NAME, resourceLabels: labels, labelFingerprint: before.labelFingerprint! },
      { retry: null },
    );

    const after = await getCluster();
    // Replaced, not merged: `team` is gone.
    expect(after.resourceLabels).toEqual(labels);
    expect(after.labelFingerprint).toMatch(/^[0-9a-f]{8}$/);
    expect(after.labelFingerprint).not.toBe(before.labelFingerprint);
    expect(after.labelFingerprint).toBe(labelFingerprint(labels));
    expect(after.etag).not.toBe(before.etag);
    const listed = await listCluster();
    expect(listed?.resourceLabels).toEqual(labels);
    expect(listed?.labelFingerprint).toBe(after.labelFingerprint);
    // The other cluster is untouched.
    const [other] = await client.getCluster(
      { name: `projects/${PROJECT}/locations/europe-west1-b/clusters/other` },
      { retry: null },
    );
    expect(other.resourceLabels).toEqual({ env: 'dev' });
  });

  it('computes the fingerprint from the sorted labels (order does not matter)', () => {
    expect(labelFingerprint({ a: '1', b: '2' })).toBe(labelFingerprint({ b: '2', a: '1' }));
    expect(labelFingerprint({ a: '1' })).not.toBe(labelFingerprint({ a: '2' }));
    expect(labelFingerprint({})).toBe(labelFingerprint(undefined));
  });

  it('returns a finished SET_LABELS Operation', async () => {
    const { labelFingerprint: fingerprint } = await getCluster();
    const [operation] = await client.setLabels(
      { name: NAME, resourceLabels: { env: 'staging' }, labelFingerprint: fingerprint! },
      { retry: null },
    );
    expect(operation).toMatchObject({
      operationType: 'SET_LABELS',
      status: 'DONE',
      zone: LOCATION,
      location: LOCATION,
      targetLink: `https://container.googleapis.com/v1/projects/${PROJECT}/locations/${LOCATION}/clusters/labelled`,
    });
    expect(operation.name).toMatch(/^operation-\d+$/);
    expect(operation.selfLink).toBe(
      `https://container.googleapis.com/v1/projects/${PROJECT}/locations/${LOCATION}/operations/${operation.name}`,
    );
    expect(Date.parse(operation.startTime!)).not.toBeNaN();
    expect(Date.parse(operation.endTime!)).toBeGreaterThanOrEqual(Date.parse(operation.startTime!));

    // Operation names are unique.
    const [second] = await client.setLabels(
      { name: NAME, resourceLabels: {}, labelFingerprint: labelFingerprint({ env: 'staging' }) },
      { retry: null },
    );
    expect(second.name).not.toBe(operation.name);
    expect((await getCluster()).resourceLabels).toEqual({});
  });

  it('accepts the deprecated projectId/zone/clusterId form', async () => {
    await client.setLabels(
      {
        projectId: PROJECT,
        zone: LOCATION,
        clusterId: 'labelled',
        resourceLabels: { env: 'qa' },
        labelFingerprint: labelFingerprint(INITIAL),
      },
      { retry: null },
    );
    expect((await getCluster()).resourceLabels).toEqual({ env: 'qa' });
  });

  it('rejects a stale fingerprint with FAILED_PRECONDITION and changes nothing', async () => {
    const before = await getCluster();
    const error = await rejection(
      client.setLabels(
        { name: NAME, resourceLabels: { env: 'dev' }, labelFingerprint: '00000000' },
        { retry: null },
      ),
    );
    expect(error.code).toBe(grpc.status.FAILED_PRECONDITION);
    expect(error.details).toBe(
      'Labels could not be set due to fingerprint mismatch; try again with the proper fingerprint: ' +
        `incorrect fingerprint supplied was "00000000", the expected one is "${before.labelFingerprint}".`,
    );
    const after = await getCluster();
    expect(after.resourceLabels).toEqual(INITIAL);
    expect(after.labelFingerprint).toBe(before.labelFingerprint);
    expect(after.etag).toBe(before.etag);
  });

  it('rejects a missing fingerprint the same way', async () => {
    const error = await rejection(
      client.setLabels({ name: NAME, resourceLabels: { env: 'dev' } }, { retry: null }),
    );
    expect(error.code).toBe(grpc.status.FAILED_PRECONDITION);
    expect(error.details).toContain('incorrect fingerprint supplied was ""');
    expect((await getCluster()).resourceLabels).toEqual(INITIAL);
  });

  it('loses to a concurrent update made behind its back (updateLabels)', async () => {
    const read = await getCluster();
    const concurrent = { env: 'prod', owner: 'someone-else' };
    const newFingerprint = fake.updateLabels(PROJECT, LOCATION, 'labelled', concurrent);
    expect(newFingerprint).toBe(labelFingerprint(concurrent));

    const error = await rejection(
      client.setLabels(
        {
          name: NAME,
          resourceLabels: { env: 'prod', mine: 'yes' },
          labelFingerprint: read.labelFingerprint!,
        },
        { retry: null },
      ),
    );
    expect(error.code).toBe(grpc.status.FAILED_PRECONDITION);
    expect(error.details).toContain(`the expected one is "${newFingerprint}"`);
    expect((await getCluster()).resourceLabels).toEqual(concurrent);

    // Re-read and retry: succeeds.
    const fresh = await getCluster();
    await client.setLabels(
      {
        name: NAME,
        resourceLabels: { ...fresh.resourceLabels, mine: 'yes' },
        labelFingerprint: fresh.labelFingerprint!,
      },
      { retry: null },
    );
    expect((await getCluster()).resourceLabels).toEqual({ ...concurrent, mine: 'yes' });
  });

  it('loses a race decided inside the request (onSetLabels hook)', async () => {
    const read = await getCluster();
    const seen: SetLabelsCall[] = [];
    onSetLabels = (call) => {
      seen.push(call);
      fake.updateLabels(call.project, call.location, call.cluster, { raced: 'true' });
    };
    const error = await rejection(
      client.setLabels(
        { name: NAME, resourceLabels: { env: 'dev' }, labelFingerprint: read.labelFingerprint! },
        { retry: null },
      ),
    );
    expect(error.code).toBe(grpc.status.FAILED_PRECONDITION);
    expect(seen).toEqual([
      {
        project: PROJECT,
        location: LOCATION,
        cluster: 'labelled',
        resourceLabels: { env: 'dev' },
        labelFingerprint: read.labelFingerprint,
      },
    ]);
    expect((await getCluster()).resourceLabels).toEqual({ raced: 'true' });
  });

  it('answers NOT_FOUND for an unknown cluster and updateLabels throws for one', async () => {
    const error = await rejection(
      client.setLabels(
        {
          name: `projects/${PROJECT}/locations/${LOCATION}/clusters/missing`,
          resourceLabels: {},
          labelFingerprint: 'x',
        },
        { retry: null },
      ),
    );
    expect(error.code).toBe(grpc.status.NOT_FOUND);
    expect(() => fake.updateLabels(PROJECT, LOCATION, 'missing', {})).toThrow(/Not found/);
  });

  it('records SetLabels requests in the log with project and location', async () => {
    const { labelFingerprint: fingerprint } = await getCluster();
    await client.setLabels(
      { name: NAME, resourceLabels: {}, labelFingerprint: fingerprint! },
      { retry: null },
    );
    await rejection(
      client.setLabels({ name: NAME, resourceLabels: {}, labelFingerprint: 'stale' }, { retry: null }),
    );
    const entries = log.entries.filter((e) => e.operation === 'SetLabels');
    expect(entries).toHaveLength(2);
    expect(entries[0]).toMatchObject({ cloud: 'gcp', scope: PROJECT, region: LOCATION, status: 200 });
    expect(entries[1]).toMatchObject({ cloud: 'gcp', scope: PROJECT, region: LOCATION, status: 400 });
    expect(log.count('gcp', 'SetLabels')).toBe(2);
  });

  it('never asked the auth library for credentials', () => {
    for (const spy of authSpies) expect(spy).not.toHaveBeenCalled();
  });
});
