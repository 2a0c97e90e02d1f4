/**
 * The Azure adapter against the HTTPS ARM fake: the real `ContainerServiceClient` over
 * TLS (the fake's CA through `caFile`), bearer tokens from the `access-token` credential,
 * paging by `nextLink`, and the faults ARM produces (throttling, 5xx, hangs, bad bodies).
 * Nothing here leaves 127.0.0.1: every config points at the fake, and the credential
 * never asks Microsoft Entra ID (or IMDS) for a token.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import type { z } from 'zod';
import { connectionOf, createDiscovery } from '../../shared/clouds/azure/discovery.ts';
import { AzureConfig } from '../../shared/config/schema.ts';
import type { DiscoveredCluster } from '../../shared/model.ts';
import type { Log } from '../../shared/ports.ts';
import { ConfigError } from '../../shared/runtime/errors.ts';
import { type AksClusterInput, type ArmFake, aksCluster, startArmFake } from '../sandbox/arm-fake.ts';
import { type Fault, FaultInjector, type RequestInfo, RequestLog } from '../sandbox/faults.ts';

const BIG = 'aaaaaaaa-0000-4000-8000-000000000001';
const MIXED = 'aaaaaaaa-0000-4000-8000-000000000002';
const SMALL = 'aaaaaaaa-0000-4000-8000-000000000003';
const UNKNOWN = 'aaaaaaaa-0000-4000-8000-0000000000ff';
const ODD = 'aaaaaaaa-0000-4000-8000-0000000000dd';
const TOKEN = 'sandbox-token';
const TOKEN_ENV = 'FLEETWARD_TEST_ARM_TOKEN';
const REGIONS = ['westeurope', 'germanywestcentral', 'centralindia', 'southafricanorth', 'eastus'];
const KEY = 'https://fw-kv-test.vault.azure.net/keys/etcd/0123456789abcdef0123456789abcdef';

/**
 * The shared injector matches by scope, not by page: this one can also hit the n-th
 * request of a scope (to break page 2 of a listing and keep page 1).
 */
class PageFaults extends FaultInjector {
  private seen = new Map<string, number>();
  private nth: { scope: string; n: number; fault: Fault }[] = [];

  onNth(scope: string, n: number, fault: Fault): this {
    this.nth.push({ scope, n, fault });
    return this;
  }

  override take(req: RequestInfo): Fault | undefined {
    const key = `${req.operation}:${req.scope}`;
    const count = (this.seen.get(key) ?? 0) + 1;
    this.seen.set(key, count);
    const hit = this.nth.find((r) => r.scope === req.scope && r.n === count);
    return hit?.fault ?? super.take(req);
  }

  override clear(): void {
    super.clear();
    this.seen.clear();
    this.nth = [];
  }
}

const faults = new PageFaults();
const log = new RequestLog();
let fake: ArmFake;
let dir: string;

interface LogLine {
  level: string;
  message: string;
  data: object[];
}
const logLines: LogLine[] = [];
const logger: Log = {
  debug: (message, ...data) => logLines.push({ level: 'debug', message, data }),
  info: (message, ...data) => logLines.push({ level: 'info', message, data }),
  warn: (message, ...data) => logLines.push({ level: 'warn', message, data }),
  error: (message, ...data) => logLines.push({ level: 'error', message, data }),
};

function bigFleet(): AksClusterInput[] {
  return Array.from({ length: 250 }, (_, i) =>
    aksCluster({
      subscriptionId: BIG,
      resourceGroup: `rg-team-${i % 7}`,
      name: `aks-${String(i).padStart(3, '0')}`,
      location: REGIONS[i % REGIONS.length],
      kubernetesVersion: ['1.31.7', '1.32.4', '1.33.1'][i % 3],
      tags: { env: i % 2 ? 'prod' : 'dev', team: `team-${i % 7}` },
    }),
  );
}

function mixedFleet(): AksClusterInput[] {
  return [
    aksCluster({
      subscriptionId: MIXED,
      resourceGroup: 'rg-payments',
      name: 'payments-prod',
      location: 'westeurope',
      kmsKeyId: KEY,
      tags: { env: 'prod', team: 'payments', 'cost-center': 'cc-042' },
      createdAt: '2024-11-02T08:15:30.1234567Z',
    }),
    aksCluster({
      subscriptionId: MIXED,
      resourceGroup: 'rg-ledger',
      name: 'ledger-private',
      location: 'centralindia',
      privateCluster: true,
    }),
    aksCluster({
      subscriptionId: MIXED,
      resourceGroup: 'rg-ledger',
      name: 'ledger-private-public-name',
      location: 'southafricanorth',
      privateCluster: true,
      privateClusterPublicFqdn: true,
      kmsKeyId: KEY,
    }),
    aksCluster({
      subscriptionId: MIXED,
      resourceGroup: 'rg-edge',
      name: 'edge-vnet',
      location: 'eastus',
      vnetIntegration: true,
      authorizedIPRanges: ['198.51.100.0/24'],
    }),
    aksCluster({ subscriptionId: MIXED, resourceGroup: 'rg-ml', name: 'ml-stopped', powerState: 'Stopped' }),
    aksCluster({
      subscriptionId: MIXED,
      resourceGroup: 'rg-ml',
      name: 'ml-new',
      provisioningState: 'Creating',
      kubernetesVersion: '1.33',
      currentKubernetesVersion: '1.33.1',
      createdAt: null,
    }),
    // ARM answers normalised location names; a display name still normalises.
    aksCluster({
      subscriptionId: MIXED,
      resourceGroup: 'rg-x',
      name: 'display-location',
      location: 'Germany West Central',
    }),
    // KMS configured but switched off: no key in use.
    aksCluster({
      subscriptionId: MIXED,
      resourceGroup: 'rg-x',
      name: 'kms-off',
      properties: { securityProfile: { azureKeyVaultKms: { enabled: false, keyId: KEY } } },
    }),
  ];
}

type ConfigInput = Partial<z.input<typeof AzureConfig>>;

function config(overrides: ConfigInput = {}): AzureConfig {
  return AzureConfig.parse({
    endpoint: fake.endpoint,
    caFile: fake.caFile,
    credential: { type: 'access-token', env: TOKEN_ENV },
    concurrency: 4,
    timeoutMs: 5_000,
    maxAttempts: 3,
    subscriptions: [BIG, MIXED, SMALL].map((id) => ({ id })),
    ...overrides,
  });
}

async function discover(overrides: ConfigInput = {}, signal?: AbortSignal) {
  return createDiscovery(config(overrides), { logger }).discover(signal ? { signal } : {});
}

const byName = (clusters: DiscoveredCluster[], name: string) => clusters.find((c) => c.name === name)!;
const listRequests = (scope?: string) =>
  fake.requests({ operation: 'managedClusters.list', ...(scope ? { scope } : {}) }).length;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fleetward-azure-'));
  fake = await startArmFake({ faults, log, certDir: join(dir, 'tls'), pageSize: 100, token: TOKEN });
  fake.setClusters(BIG, bigFleet());
  fake.setClusters(MIXED, mixedFleet());
  fake.setClusters(SMALL, [
    aksCluster({ subscriptionId: SMALL, name: 'small-a', location: 'northeurope' }),
    aksCluster({ subscriptionId: SMALL, name: 'small-b', location: 'swedencentral' }),
  ]);
  vi.stubEnv(TOKEN_ENV, TOKEN);
});

afterEach(() => {
  faults.clear();
  faults.latencyMs = 0;
  log.clear();
  logLines.length = 0;
});

afterAll(async () => {
  vi.unstubAllEnvs();
  await fake?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('azure discovery against the ARM fake', () => {
  it('lists every subscription, following nextLink, with no per-cluster calls', async () => {
    const outcome = await discover();

    expect(outcome.failures).toEqual([]);
    expect(outcome.completedScopes).toEqual([BIG, MIXED, SMALL].map((scope) => ({ cloud: 'azure', scope })));
    expect(outcome.clusters).toHaveLength(250 + 8 + 2);
    expect(new Set(outcome.clusters.map((c) => c.id)).size).toBe(outcome.clusters.length);
    // 250 clusters at 100 per page: three pages, by nextLink; one page for each small subscription.
    expect(listRequests(BIG)).toBe(3);
    expect(listRequests(MIXED)).toBe(1);
    expect(listRequests(SMALL)).toBe(1);
    expect(fake.requests().map((r) => r.operation)).toEqual(Array(5).fill('managedClusters.list'));
    expect(fake.requests().every((r) => r.status === 200)).toBe(true);

    const big = outcome.clusters.filter((c) => c.scope === BIG);
    expect(big).toHaveLength(250);
    expect(new Set(big.map((c) => c.region))).toEqual(new Set(REGIONS));
    expect(byName(big, 'aks-249')).toEqual({
      id: `azure/${BIG}/rg-team-4/aks-249`,
      cloud: 'azure',
      scope: BIG,
      region: 'eastus',
      name: 'aks-249',
      kubernetesVersion: '1.31.7',
      endpoint: expect.stringMatching(/^https:\/\/aks-249-dns-[0-9a-f]{8}\.hcp\.eastus\.azmk8s\.io$/),
      endpointAccess: 'public',
      secretsEncryptionKey: null,
      auditLogging: null,
      tags: { env: 'prod', team: 'team-4' },
      status: 'running',
      providerStatus: 'Succeeded/Running',
      createdAt: '2025-01-15T09:30:00.000Z',
      resourceGroup: 'rg-team-4',
    });
  });

  it('normalises private clusters, KMS, tags, power and provisioning states', async () => {
    const { clusters, failures } = await discover({ subscriptions: [{ id: MIXED }] });
    expect(failures).toEqual([]);

    expect(byName(clusters, 'payments-prod')).toMatchObject({
      region: 'westeurope',
      endpointAccess: 'public',
      secretsEncryptionKey: KEY,
      tags: { env: 'prod', team: 'payments', 'cost-center': 'cc-042' },
      createdAt: '2024-11-02T08:15:30.123Z',
      resourceGroup: 'rg-payments',
    });
    const privateOnly = byName(clusters, 'ledger-private');
    expect(privateOnly).toMatchObject({
      region: 'centralindia',
      endpointAccess: 'private',
      secretsEncryptionKey: null,
    });
    expect(privateOnly.endpoint).toMatch(/\.privatelink\.centralindia\.azmk8s\.io$/);
    const publicName = byName(clusters, 'ledger-private-public-name');
    expect(publicName).toMatchObject({ endpointAccess: 'private', secretsEncryptionKey: KEY });
    expect(publicName.endpoint).toMatch(/\.hcp\.southafricanorth\.azmk8s\.io$/);
    expect(byName(clusters, 'edge-vnet')).toMatchObject({
      region: 'eastus',
      endpointAccess: 'public-and-private',
    });
    expect(byName(clusters, 'ml-stopped')).toMatchObject({
      status: 'degraded',
      providerStatus: 'Succeeded/Stopped',
    });
    expect(byName(clusters, 'ml-new')).toMatchObject({
      status: 'provisioning',
      providerStatus: 'Creating/Running',
      kubernetesVersion: '1.33.1',
      createdAt: null,
    });
    expect(byName(clusters, 'display-location')).toMatchObject({
      id: `azure/${MIXED}/rg-x/display-location`,
      region: 'germanywestcentral',
    });
    expect(byName(clusters, 'kms-off').secretsEncryptionKey).toBeNull();
    for (const c of clusters) expect(c.auditLogging).toBeNull();
  });

  it('reports an unknown subscription and still lists the others', async () => {
    const outcome = await discover({ subscriptions: [BIG, UNKNOWN, SMALL].map((id) => ({ id })) });

    expect(outcome.failures).toEqual([
      {
        cloud: 'azure',
        scope: UNKNOWN,
        kind: 'scope',
        error: {
          name: 'CloudApiError',
          message: expect.stringContaining(
            `SubscriptionNotFound): The subscription '${UNKNOWN}' could not be found.`,
          ),
          status: 404,
        },
      },
    ]);
    expect(outcome.completedScopes.map((s) => s.scope)).toEqual([BIG, SMALL]);
    expect(outcome.clusters).toHaveLength(252);
    // Not retried: a 404 is an answer.
    expect(listRequests(UNKNOWN)).toBe(1);
  });

  it('reports a token ARM rejects (401) for every subscription, without retrying', async () => {
    vi.stubEnv('FLEETWARD_TEST_ARM_TOKEN_STALE', 'sandbox-token-expired');
    const outcome = await discover({
      credential: { type: 'access-token', env: 'FLEETWARD_TEST_ARM_TOKEN_STALE' },
    });

    expect(outcome.clusters).toEqual([]);
    expect(outcome.completedScopes).toEqual([]);
    expect(outcome.failures).toHaveLength(3);
    for (const failure of outcome.failures) {
      expect(failure).toMatchObject({ kind: 'scope', error: { status: 401 } });
      expect(failure.error.message).toContain('InvalidAuthenticationToken');
    }
    expect(fake.requests().map((r) => r.status)).toEqual([401, 401, 401]);
  });

  it('sends nothing without a bearer token and names the missing variable', async () => {
    const outcome = await discover({
      credential: { type: 'access-token', env: 'FLEETWARD_TEST_ARM_TOKEN_UNSET' },
    });

    expect(outcome.failures).toHaveLength(3);
    for (const failure of outcome.failures) {
      expect(failure.kind).toBe('scope');
      expect(failure.error.message).toContain(
        'environment variable FLEETWARD_TEST_ARM_TOKEN_UNSET is not set',
      );
    }
    expect(fake.requests()).toEqual([]);
  });

  it('reads the bearer token from a file', async () => {
    const file = join(dir, 'arm-token');
    writeFileSync(file, `${TOKEN}\n`, { mode: 0o600 });
    const outcome = await discover({
      credential: { type: 'access-token', file },
      subscriptions: [{ id: SMALL }],
    });

    expect(outcome.failures).toEqual([]);
    expect(outcome.clusters.map((c) => c.name)).toEqual(['small-a', 'small-b']);
  });

  it('verifies TLS: without the CA the fake is not trusted', async () => {
    const { caFile: _, ...rest } = config();
    const outcome = await createDiscovery({ ...rest }, { logger }).discover();

    expect(outcome.completedScopes).toEqual([]);
    expect(outcome.failures).toHaveLength(3);
    for (const failure of outcome.failures) expect(failure.error.message).toMatch(/certificate/i);
  });

  it('never sends the token to a nextLink outside the configured endpoint', async () => {
    // Configured as https://localhost:<port>; the fake's nextLink names https://127.0.0.1:<port>.
    const endpoint = fake.endpoint.replace('127.0.0.1', 'localhost');
    const outcome = await discover({ endpoint, subscriptions: [{ id: BIG }] });

    expect(outcome.failures).toEqual([
      expect.objectContaining({
        scope: BIG,
        kind: 'scope',
        error: expect.objectContaining({ name: 'CloudApiError' }),
      }),
    ]);
    expect(outcome.failures[0]!.error.message).toContain(
      'refusing to send an azure request to https://127.0.0.1',
    );
    expect(outcome.clusters).toHaveLength(100);
    expect(listRequests(BIG)).toBe(1);
  });

  it('reports an unparseable cluster and leaves its subscription incomplete', async () => {
    fake.setClusters(ODD, [
      aksCluster({ subscriptionId: ODD, name: 'fine' }),
      {
        id: aksCluster({ subscriptionId: ODD, name: 'no-location' }).id,
        name: 'no-location',
        properties: {},
      },
    ]);
    const outcome = await discover({ subscriptions: [{ id: ODD }] });

    expect(outcome.clusters.map((c) => c.name)).toEqual(['fine']);
    expect(outcome.failures).toEqual([
      {
        cloud: 'azure',
        scope: ODD,
        kind: 'unparseable',
        cluster: 'no-location',
        error: { name: 'UnparseableClusterError', message: expect.stringContaining('has no location') },
      },
    ]);
    expect(outcome.completedScopes).toEqual([]);
  });

  it('keeps at most `concurrency` requests in flight', async () => {
    faults.latencyMs = 40;
    const outcome = await discover({ concurrency: 1 });
    expect(outcome.failures).toEqual([]);

    const spans = fake.requests().map((r) => [r.at!, r.at! + r.durationMs!] as const);
    spans.sort((a, b) => a[0] - b[0]);
    for (let i = 1; i < spans.length; i++) expect(spans[i]![0]).toBeGreaterThanOrEqual(spans[i - 1]![1] - 5);
  });

  it('rejects only when the caller aborts', async () => {
    faults.add({ scope: SMALL, fault: { kind: 'timeout' } });
    const controller = new AbortController();
    setTimeout(() => controller.abort(new Error('run cancelled')), 200);
    await expect(discover({}, controller.signal)).rejects.toThrow('run cancelled');
    // The abort reaches the wire: the fake sees the held request closed.
    await vi.waitFor(() => expect(listRequests(SMALL)).toBe(1));
  });

  interface FaultCase {
    name: string;
    arrange(f: PageFaults): void;
    timeoutMs?: number;
    /** List requests the subscription takes. */
    requests: { scope: string; count: number };
    minElapsedMs?: number;
    /** Set when the subscription fails. */
    failure?: { scope: string; status?: number; message: RegExp; clustersKept: number };
  }

  const cases: FaultCase[] = [
    {
      name: '429 with Retry-After waits the hint, then succeeds',
      arrange: (f) => f.add({ scope: SMALL, fault: { kind: 'throttle', retryAfterSeconds: 1 }, times: 1 }),
      requests: { scope: SMALL, count: 2 },
      minElapsedMs: 1_000,
    },
    {
      name: '429 without Retry-After backs off, then succeeds',
      arrange: (f) => f.add({ scope: SMALL, fault: { kind: 'throttle' }, times: 1 }),
      requests: { scope: SMALL, count: 2 },
    },
    {
      name: '503 then success',
      arrange: (f) => f.add({ scope: SMALL, fault: { kind: 'error', status: 503 }, times: 1 }),
      requests: { scope: SMALL, count: 2 },
    },
    {
      name: 'a hung request times out, then succeeds',
      arrange: (f) => f.add({ scope: SMALL, fault: { kind: 'timeout' }, times: 1 }),
      timeoutMs: 400,
      requests: { scope: SMALL, count: 2 },
      minElapsedMs: 400,
    },
    {
      name: 'a persistent 500 fails the subscription after maxAttempts',
      arrange: (f) => f.add({ scope: BIG, fault: { kind: 'error', status: 500 } }),
      requests: { scope: BIG, count: 3 },
      failure: { scope: BIG, status: 500, message: /\(500 InternalServerError\)/, clustersKept: 0 },
    },
    {
      name: 'a malformed page 2 fails the subscription and keeps page 1',
      arrange: (f) => f.onNth(BIG, 2, { kind: 'malformed' }),
      requests: { scope: BIG, count: 2 },
      failure: { scope: BIG, message: /response body is not valid JSON/, clustersKept: 100 },
    },
  ];

  it.each(cases)('$name', async (c) => {
    c.arrange(faults);
    const started = performance.now();
    const outcome = await discover(c.timeoutMs ? { timeoutMs: c.timeoutMs } : {});
    const elapsed = performance.now() - started;

    if (c.minElapsedMs) expect(elapsed).toBeGreaterThanOrEqual(c.minElapsedMs);
    // A hung request is logged when the client gives up on it, which may trail the retry by a moment.
    await vi.waitFor(() => expect(listRequests(c.requests.scope)).toBe(c.requests.count));
    const scopes = [BIG, MIXED, SMALL];
    if (!c.failure) {
      expect(outcome.failures).toEqual([]);
      expect(outcome.completedScopes.map((s) => s.scope)).toEqual(scopes);
      expect(outcome.clusters).toHaveLength(260);
      expect(logLines.filter((l) => l.message === 'Call retried')).toHaveLength(1);
      return;
    }
    const { scope, status, message, clustersKept } = c.failure;
    expect(outcome.failures).toHaveLength(1);
    expect(outcome.failures[0]).toMatchObject({
      cloud: 'azure',
      scope,
      kind: 'scope',
      error: { name: 'CloudApiError', ...(status ? { status } : {}) },
    });
    expect(outcome.failures[0]!.error.message).toMatch(message);
    expect(outcome.completedScopes.map((s) => s.scope)).toEqual(scopes.filter((s) => s !== scope));
    expect(outcome.clusters.filter((cl) => cl.scope === scope)).toHaveLength(clustersKept);
    expect(outcome.clusters.filter((cl) => cl.scope !== scope)).toHaveLength(10);
  });
});

describe('azure connection settings', () => {
  const base = {
    credential: { type: 'access-token', env: TOKEN_ENV },
    subscriptions: [{ id: BIG }],
  } as const;

  it('derives the token scope from the endpoint', () => {
    expect(connectionOf(AzureConfig.parse(base)).scope).toBe('https://management.azure.com/.default');
    expect(
      connectionOf(AzureConfig.parse({ ...base, endpoint: 'https://management.chinacloudapi.cn/' })),
    ).toMatchObject({
      endpoint: 'https://management.chinacloudapi.cn',
      scope: 'https://management.chinacloudapi.cn/.default',
    });
  });

  it('refuses a non-https endpoint and an unreadable caFile at creation', () => {
    const ctx = { logger };
    expect(() =>
      createDiscovery(AzureConfig.parse({ ...base, endpoint: 'http://127.0.0.1:1' }), ctx),
    ).toThrow(ConfigError);
    expect(() =>
      createDiscovery(AzureConfig.parse({ ...base, caFile: join(dir, 'missing-ca.pem') }), ctx),
    ).toThrow(ConfigError);
  });
});
