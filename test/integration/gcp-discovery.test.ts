/**
 * GKE discovery against the local GKE fake (gRPC on loopback, real ClusterManagerClient,
 * insecure channel: no credentials, no token, no Google endpoint).
 */
import { GoogleAuth } from 'google-gax';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import type { AdapterContext } from '../../shared/clouds/context.ts';
import { createDiscovery } from '../../shared/clouds/gcp/discovery.ts';
import { GcpConfig } from '../../shared/config/schema.ts';
import type { Fault } from '../sandbox/faults.ts';
import { FaultInjector, RequestLog } from '../sandbox/faults.ts';
import { type GkeFake, gkeCluster, startGkeFake } from '../sandbox/gke-fake.ts';

const EU = 'fleet-eu-prod';
const IN = 'fleet-in-prod';
const EMPTY = 'fleet-za-empty';
const UNKNOWN = 'fleet-gone-away';
const EU_KEY = 'projects/fleet-eu-prod/locations/europe-west1/keyRings/gke/cryptoKeys/secrets';

let fake: GkeFake;
const faults = new FaultInjector();
const log = new RequestLog();
const getClient = vi.spyOn(GoogleAuth.prototype, 'getClient');
const getRequestHeaders = vi.spyOn(GoogleAuth.prototype, 'getRequestHeaders');

function logger() {
  const lines: { level: string; message: string; extra: object[] }[] = [];
  const at =
    (level: string) =>
    (message: string, ...extra: object[]) =>
      lines.push({ level, message, extra });
  const ctx: AdapterContext = {
    logger: { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') },
  };
  return { ctx, lines };
}

function discovery(projects: string[], overrides: Record<string, unknown> = {}) {
  const config = GcpConfig.parse({
    endpoint: fake.endpoint,
    insecure: true,
    timeoutMs: 2_000,
    maxAttempts: 3,
    projects: projects.map((id) => ({ id })),
    ...overrides,
  });
  const { ctx, lines } = logger();
  return { adapter: createDiscovery(config, ctx), lines };
}

const calls = (project: string, operation = 'ListClusters') =>
  log.entries.filter((e) => e.scope === project && e.operation === operation);

beforeAll(async () => {
  fake = await startGkeFake({ faults, log });
  fake.setClusters(EU, [
    gkeCluster({
      name: 'payments',
      location: 'europe-west1',
      resourceLabels: { env: 'prod', team: 'payments' },
      databaseEncryption: { state: 'ENCRYPTED', keyName: EU_KEY, currentState: 'CURRENT_STATE_ENCRYPTED' },
    }),
    gkeCluster({
      name: 'batch',
      location: 'europe-west3-a',
      endpoint: '10.10.0.2',
      privateClusterConfig: {
        enablePrivateNodes: true,
        enablePrivateEndpoint: true,
        privateEndpoint: '10.10.0.2',
      },
      controlPlaneEndpointsConfig: {
        ipEndpointsConfig: { enabled: true, enablePublicEndpoint: false, privateEndpoint: '10.10.0.2' },
      },
    }),
  ]);
  fake.setClusters(IN, [
    gkeCluster({
      name: 'api',
      location: 'asia-south1',
      loggingService: 'none',
      loggingConfig: { componentConfig: { enableComponents: [] } },
      status: 'RECONCILING',
    }),
    gkeCluster({
      name: 'edge',
      location: 'asia-south1-b',
      status: 'DEGRADED',
      endpoint: '203.0.113.20',
      privateClusterConfig: {
        enablePrivateNodes: true,
        privateEndpoint: '10.20.0.2',
        publicEndpoint: '203.0.113.20',
      },
    }),
  ]);
  fake.setClusters(EMPTY, []);
});

afterAll(async () => {
  await fake?.stop();
});

beforeEach(() => {
  faults.clear();
  faults.latencyMs = 0;
  log.clear();
});

describe('gcp discovery', () => {
  it('lists every project with one ListClusters each and normalises the clusters', async () => {
    const { adapter } = discovery([EU, IN, EMPTY]);
    const outcome = await adapter.discover();

    expect(outcome.failures).toEqual([]);
    expect(outcome.completedScopes).toEqual([
      { cloud: 'gcp', scope: EU },
      { cloud: 'gcp', scope: IN },
      { cloud: 'gcp', scope: EMPTY },
    ]);
    const byId = Object.fromEntries(outcome.clusters.map((c) => [c.id, c]));
    expect(Object.keys(byId).sort()).toEqual([
      'gcp/fleet-eu-prod/europe-west1/payments',
      'gcp/fleet-eu-prod/europe-west3-a/batch',
      'gcp/fleet-in-prod/asia-south1-b/edge',
      'gcp/fleet-in-prod/asia-south1/api',
    ]);
    expect(byId['gcp/fleet-eu-prod/europe-west1/payments']).toMatchObject({
      cloud: 'gcp',
      scope: EU,
      region: 'europe-west1',
      name: 'payments',
      kubernetesVersion: '1.33.5-gke.1201000',
      endpointAccess: 'public',
      secretsEncryptionKey: EU_KEY,
      auditLogging: true,
      tags: { env: 'prod', team: 'payments' },
      status: 'running',
      providerStatus: 'RUNNING',
      createdAt: '2025-03-14T09:26:53.000Z',
    });
    expect(byId['gcp/fleet-eu-prod/europe-west1/payments']!.endpoint).toMatch(/^https:\/\/203\.0\.113\.\d+$/);
    expect(byId['gcp/fleet-eu-prod/europe-west3-a/batch']).toMatchObject({
      region: 'europe-west3-a',
      endpoint: 'https://10.10.0.2',
      endpointAccess: 'private',
      secretsEncryptionKey: null,
      tags: {},
    });
    // loggingService none turns off system and workload logs, not GKE's Admin Activity audit logs.
    expect(byId['gcp/fleet-in-prod/asia-south1/api']).toMatchObject({
      auditLogging: true,
      status: 'updating',
      providerStatus: 'RECONCILING',
    });
    expect(byId['gcp/fleet-in-prod/asia-south1-b/edge']).toMatchObject({
      region: 'asia-south1-b',
      endpoint: 'https://203.0.113.20',
      endpointAccess: 'public-and-private',
      status: 'degraded',
    });

    expect(log.countsByOperation()).toEqual({ 'gcp:ListClusters': 3 });
    for (const project of [EU, IN, EMPTY]) expect(calls(project)).toHaveLength(1);
    expect(log.count('gcp', 'GetCluster')).toBe(0);
    expect(log.entries.every((e) => e.region === undefined)).toBe(true); // parent .../locations/-
  });

  it('reports an unknown project as a scope failure and still lists the others', async () => {
    const { adapter } = discovery([EU, UNKNOWN, IN]);
    const outcome = await adapter.discover();
    expect(outcome.failures).toEqual([
      {
        cloud: 'gcp',
        scope: UNKNOWN,
        kind: 'scope',
        error: { name: 'CloudApiError', message: expect.stringContaining('NOT_FOUND'), status: 404 },
      },
    ]);
    expect(outcome.completedScopes.map((s) => s.scope)).toEqual([EU, IN]);
    expect(outcome.clusters).toHaveLength(4);
    expect(calls(UNKNOWN)).toHaveLength(1); // NOT_FOUND is not retried
  });

  const transient: [string, Fault, Record<string, unknown>][] = [
    ['RESOURCE_EXHAUSTED', { kind: 'throttle' }, {}],
    ['UNAVAILABLE (503)', { kind: 'error', status: 503 }, {}],
    ['INTERNAL (500)', { kind: 'error', status: 500 }, {}],
    ['a call that never answers', { kind: 'timeout' }, { timeoutMs: 300 }],
  ];

  it.each(transient)('retries %s once and then succeeds', async (_name, fault, overrides) => {
    faults.add({ cloud: 'gcp', operation: 'ListClusters', scope: EU, fault, times: 1 });
    const { adapter, lines } = discovery([EU, IN], overrides);
    const outcome = await adapter.discover();
    expect(outcome.failures).toEqual([]);
    expect(outcome.completedScopes.map((s) => s.scope)).toEqual([EU, IN]);
    expect(outcome.clusters).toHaveLength(4);
    expect(calls(EU).map((e) => e.fault ?? 'ok')).toEqual([fault.kind, 'ok']);
    expect(calls(IN)).toHaveLength(1);
    expect(lines.filter((l) => l.message === 'Call retried')).toHaveLength(1);
  });

  it('waits the RetryInfo delay a throttled answer asks for', async () => {
    faults.add({ cloud: 'gcp', scope: EU, fault: { kind: 'throttle', retryAfterSeconds: 1 }, times: 1 });
    const { adapter } = discovery([EU]);
    const outcome = await adapter.discover();
    expect(outcome.failures).toEqual([]);
    const [first, second] = calls(EU);
    expect(second!.at! - first!.at!).toBeGreaterThanOrEqual(950);
  });

  it('reports a project that keeps failing as one scope failure after maxAttempts', async () => {
    faults.add({ cloud: 'gcp', scope: IN, fault: { kind: 'error', status: 503 } });
    const { adapter } = discovery([EU, IN]);
    const outcome = await adapter.discover();
    expect(outcome.failures).toEqual([
      {
        cloud: 'gcp',
        scope: IN,
        kind: 'scope',
        error: { name: 'CloudApiError', message: expect.stringContaining('UNAVAILABLE'), status: 503 },
      },
    ]);
    expect(calls(IN)).toHaveLength(3);
    expect(outcome.completedScopes).toEqual([{ cloud: 'gcp', scope: EU }]);
    expect(outcome.clusters.map((c) => c.scope)).toEqual([EU, EU]);
  });

  it('reports a cluster without name and location as unparseable and returns the others', async () => {
    faults.add({ cloud: 'gcp', scope: EU, fault: { kind: 'malformed' }, times: 1 });
    const { adapter } = discovery([EU, IN]);
    const outcome = await adapter.discover();
    expect(outcome.failures).toEqual([
      {
        cloud: 'gcp',
        scope: EU,
        kind: 'unparseable',
        cluster: expect.stringMatching(/^[0-9a-f]{32}$/),
        error: {
          name: 'UnparseableClusterError',
          message: expect.stringContaining('has no name and location'),
        },
      },
    ]);
    expect(outcome.clusters).toHaveLength(4);
    // The answer was not complete: a cluster we could not read may be one seen before.
    expect(outcome.completedScopes).toEqual([{ cloud: 'gcp', scope: IN }]);
    expect(calls(EU)).toHaveLength(1);
  });

  it('reports missingZones per zone and keeps the project out of completedScopes', async () => {
    fake.setMissingZones(IN, ['asia-south1-c']);
    try {
      const { adapter } = discovery([EU, IN]);
      const outcome = await adapter.discover();
      expect(outcome.failures).toEqual([
        {
          cloud: 'gcp',
          scope: IN,
          region: 'asia-south1-c',
          kind: 'scope',
          error: { name: 'CloudApiError', message: expect.stringContaining('missingZones') },
        },
      ]);
      expect(outcome.clusters).toHaveLength(4);
      expect(outcome.completedScopes).toEqual([{ cloud: 'gcp', scope: EU }]);
    } finally {
      fake.setMissingZones(IN, []);
    }
  });

  it('keeps at most `concurrency` projects in flight', async () => {
    faults.latencyMs = 150;
    const projects = ['fleet-p-one', 'fleet-p-two', 'fleet-p-three', 'fleet-p-four'];
    for (const p of projects) fake.setClusters(p, [gkeCluster({ name: p })]);
    const { adapter } = discovery(projects, { concurrency: 2 });
    const outcome = await adapter.discover();
    expect(outcome.clusters).toHaveLength(4);
    const spans = log.entries.map((e) => [e.at!, e.at! + e.durationMs!] as const);
    const maxOverlap = Math.max(
      ...spans.map(([start]) => spans.filter(([s, end]) => s <= start && start < end).length),
    );
    expect(maxOverlap).toBe(2);
  });

  it('rejects when the signal is aborted', async () => {
    faults.add({ cloud: 'gcp', scope: EU, fault: { kind: 'timeout' } });
    const { adapter } = discovery([EU, IN], { timeoutMs: 10_000 });
    const controller = new AbortController();
    setTimeout(() => controller.abort(new Error('run cancelled')), 200);
    await expect(adapter.discover({ signal: controller.signal })).rejects.toThrow('run cancelled');
  });

  it('refuses insecure off loopback and a malformed endpoint', () => {
    const { ctx } = logger();
    const base = { insecure: true, projects: [{ id: EU }] };
    expect(() =>
      createDiscovery(GcpConfig.parse({ ...base, endpoint: 'container.googleapis.com:443' }), ctx),
    ).toThrow(
      expect.objectContaining({
        name: 'ConfigError',
        issues: [expect.objectContaining({ path: 'clouds.gcp.insecure' })],
      }),
    );
    expect(() => createDiscovery(GcpConfig.parse(base), ctx)).toThrow(
      expect.objectContaining({ name: 'ConfigError' }),
    );
    expect(() =>
      createDiscovery(GcpConfig.parse({ ...base, endpoint: 'http://127.0.0.1:8080' }), ctx),
    ).toThrow(expect.objectContaining({ name: 'ConfigError' }));
  });

  it('never asked the auth library for credentials or a token', () => {
    expect(getClient).not.toHaveBeenCalled();
    expect(getRequestHeaders).not.toHaveBeenCalled();
  });
});
