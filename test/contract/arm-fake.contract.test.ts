/**
 * The ARM fake answers what Azure Resource Manager answers: ManagedCluster resources in
 * the wire shape of the public ARM REST reference, `nextLink` paging, ARM error bodies,
 * read back through the real `ContainerServiceClient`.
 *
 * `test/fixtures/azure/aks-managed-cluster.json` is a ManagedCluster in the shape of the
 * response of the ARM REST reference example "Managed Clusters - Get" (api-version
 * 2025-05-01, `ManagedClustersGet.json`), with the fields of a private cluster with a
 * public FQDN (`ManagedClustersCreate_PrivateClusterPublicFQDN.json`), KMS etcd encryption
 * (`securityProfile.azureKeyVaultKms`), a managed AAD profile, a system-assigned identity,
 * `powerState`, `sku` and `systemData` added as the reference defines them. Values are
 * placeholders: the all-zero subscription and ids of the reference, `example.com`,
 * `examplekeyvault`. Like the reference, the id spells `resourcegroups` in lower case.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { rootCertificates } from 'node:tls';
import { ContainerServiceClient, type ManagedCluster } from '@azure/arm-containerservice';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { accessTokenCredential, normaliseManagedCluster } from '../../shared/clouds/azure/discovery.ts';
import {
  type ArmFake,
  type ArmManagedCluster,
  aksCluster,
  EXAMPLE_SUBSCRIPTION,
  startArmFake,
} from '../sandbox/arm-fake.ts';
import { RequestLog } from '../sandbox/faults.ts';

const FIXTURE = new URL('../fixtures/azure/aks-managed-cluster.json', import.meta.url);
const fixture = JSON.parse(readFileSync(FIXTURE, 'utf8')) as ArmManagedCluster;
const TOKEN_ENV = 'FLEETWARD_CONTRACT_ARM_TOKEN';
const credential = accessTokenCredential({ env: TOKEN_ENV }, { [TOKEN_ENV]: 'sandbox-token' });

let certDir: string;
let fake: ArmFake;
const log = new RequestLog();

function client(subscription = EXAMPLE_SUBSCRIPTION): ContainerServiceClient {
  return new ContainerServiceClient(credential, subscription, {
    endpoint: fake.endpoint,
    credentials: { scopes: [`${fake.endpoint}/.default`] },
    tlsOptions: { ca: [...rootCertificates, fake.ca] },
    retryOptions: { maxRetries: 0 },
  });
}

/** A raw GET on the fake (no client, no token unless given), for what the client hides. */
function rawGet(
  path: string,
  token?: string,
): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      `${fake.endpoint}${path}`,
      { ca: fake.ca, headers: token ? { authorization: `Bearer ${token}` } : {} },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          body += chunk;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

const LIST_PATH = `/subscriptions/${EXAMPLE_SUBSCRIPTION}/providers/Microsoft.ContainerService/managedClusters?api-version=2025-05-01`;

beforeAll(async () => {
  certDir = mkdtempSync(join(tmpdir(), 'fleetward-arm-contract-'));
  fake = await startArmFake({ log, certDir, pageSize: 2 });
  fake.setClusters(EXAMPLE_SUBSCRIPTION, [
    fixture,
    aksCluster({ name: 'built-public', location: 'northeurope', tags: { env: 'prod' } }),
    aksCluster({
      name: 'built-private',
      privateCluster: true,
      kmsKeyId: 'https://kv1.vault.azure.net/keys/k1/0123',
    }),
  ]);
});

afterAll(async () => {
  await fake?.stop();
  if (certDir) rmSync(certDir, { recursive: true, force: true });
});

describe('arm fake, read through the real ContainerServiceClient', () => {
  it('lists the documented sample with exactly its structure', async () => {
    let firstPage: unknown;
    const pages = client()
      .managedClusters.list({
        onResponse: (raw) => {
          firstPage ??= raw.parsedBody;
        },
      })
      .byPage();
    const page = await pages.next();
    expect(page.done).toBe(false);
    // On the wire: the very object of the sample, every name and nesting kept.
    const wire = firstPage as { value: unknown[]; nextLink?: string };
    expect(wire.value[0]).toEqual(fixture);
    // Through the client: the model (properties flattened, FQDN names camel-cased, times as Date).
    const got = page.value?.[0] as ManagedCluster;
    expect(got).toMatchObject({
      id: fixture.id,
      name: 'clustername1',
      location: 'westeurope',
      tags: { archv2: '', tier: 'production' },
      provisioningState: 'Succeeded',
      powerState: { code: 'Running' },
      currentKubernetesVersion: '1.31.7',
      fqdn: 'dnsprefix1-ee788a1f.hcp.westeurope.azmk8s.io',
      privateFqdn:
        'dnsprefix1-aae7e0f0.5cef6058-b6b5-414d-8cb1-4bd14eb0b15c.privatelink.westeurope.azmk8s.io',
      apiServerAccessProfile: { enablePrivateCluster: true, enablePrivateClusterPublicFqdn: true },
      securityProfile: {
        azureKeyVaultKms: {
          enabled: true,
          keyId: fixture.properties?.securityProfile?.azureKeyVaultKms?.keyId,
        },
      },
      aadProfile: { managed: true, enableAzureRbac: true },
      sku: { name: 'Base', tier: 'Standard' },
      identity: { type: 'SystemAssigned' },
    });
    expect(got.systemData?.createdAt).toEqual(new Date('2025-02-03T04:05:06.123Z'));
  });

  it('pages with an absolute nextLink on the fake carrying a $skipToken', async () => {
    const first = await rawGet(LIST_PATH, 'sandbox-token');
    expect(first.status).toBe(200);
    expect(first.headers['content-type']).toBe('application/json; charset=utf-8');
    const body = JSON.parse(first.body) as { value: ArmManagedCluster[]; nextLink: string };
    expect(body.value.map((c) => c.name)).toEqual(['clustername1', 'built-public']);
    const next = new URL(body.nextLink);
    expect(next.origin).toBe(fake.endpoint);
    expect(next.pathname).toBe(
      `/subscriptions/${EXAMPLE_SUBSCRIPTION}/providers/Microsoft.ContainerService/managedClusters`,
    );
    expect(next.searchParams.get('api-version')).toBe('2025-05-01');
    expect(next.searchParams.get('$skipToken')).toMatch(/^[\w-]+$/);

    const names: string[] = [];
    for await (const page of client().managedClusters.list().byPage())
      names.push(...page.map((c) => c.name ?? ''));
    expect(names).toEqual(['clustername1', 'built-public', 'built-private']);
  });

  it('answers the per-cluster GET with the same resource, resource group matched in any case', async () => {
    const got = await client().managedClusters.get('RG1', 'clustername1');
    expect(got.id).toBe(fixture.id);
    const raw = await rawGet(
      `/subscriptions/${EXAMPLE_SUBSCRIPTION}/resourceGroups/rg1/providers/Microsoft.ContainerService/managedClusters/clustername1?api-version=2025-05-01`,
      'sandbox-token',
    );
    expect(JSON.parse(raw.body)).toEqual(fixture);
    await expect(client().managedClusters.get('rg1', 'nope')).rejects.toMatchObject({
      statusCode: 404,
      code: 'ResourceNotFound',
    });
  });

  it('builds clusters with the documented names and nesting', () => {
    const built = aksCluster({
      subscriptionId: EXAMPLE_SUBSCRIPTION,
      resourceGroup: 'rg-x',
      name: 'aks-x',
      location: 'germanywestcentral',
      privateCluster: true,
      privateClusterPublicFqdn: true,
      kmsKeyId: 'https://kv1.vault.azure.net/keys/k1/0123',
      authorizedIPRanges: ['198.51.100.0/24'],
    });
    expect(built).toMatchObject({
      id: `/subscriptions/${EXAMPLE_SUBSCRIPTION}/resourceGroups/rg-x/providers/Microsoft.ContainerService/managedClusters/aks-x`,
      name: 'aks-x',
      type: 'Microsoft.ContainerService/ManagedClusters',
      location: 'germanywestcentral',
      properties: {
        provisioningState: 'Succeeded',
        powerState: { code: 'Running' },
        apiServerAccessProfile: {
          enablePrivateCluster: true,
          enablePrivateClusterPublicFQDN: true,
          authorizedIPRanges: ['198.51.100.0/24'],
        },
        securityProfile: {
          azureKeyVaultKms: { enabled: true, keyId: 'https://kv1.vault.azure.net/keys/k1/0123' },
        },
      },
    });
    expect(built.properties?.fqdn).toMatch(/^aks-x-dns-[0-9a-f]{8}\.hcp\.germanywestcentral\.azmk8s\.io$/);
    expect(built.properties?.privateFQDN).toMatch(/\.privatelink\.germanywestcentral\.azmk8s\.io$/);
    expect(built.systemData?.createdAt).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/);
    // Every top-level and `properties` name the builder uses is one the sample (the reference) uses too.
    const sampleKeys = new Set([...Object.keys(fixture), 'properties']);
    for (const key of Object.keys(built)) expect(sampleKeys, key).toContain(key);
    const plain = aksCluster();
    expect(plain.properties?.apiServerAccessProfile).toBeUndefined();
    expect(plain.properties?.azurePortalFQDN).toMatch(/\.portal\.hcp\.westeurope\.azmk8s\.io$/);
    expect(plain.properties?.securityProfile).toEqual({});
  });

  it('answers ARM error bodies: 401 without a bearer token, 404 for an unknown subscription, 400 without api-version', async () => {
    const anonymous = await rawGet(LIST_PATH);
    expect(anonymous.status).toBe(401);
    expect(JSON.parse(anonymous.body)).toEqual({
      error: { code: 'AuthenticationFailed', message: expect.stringContaining('Authorization') },
    });

    const unknown = '11111111-2222-4333-8444-555555555555';
    await expect(client(unknown).managedClusters.list().byPage().next()).rejects.toMatchObject({
      name: 'RestError',
      statusCode: 404,
      code: 'SubscriptionNotFound',
    });
    const raw = await rawGet(
      `/subscriptions/${unknown}/providers/Microsoft.ContainerService/managedClusters?api-version=2025-05-01`,
      'sandbox-token',
    );
    expect(JSON.parse(raw.body)).toEqual({
      error: { code: 'SubscriptionNotFound', message: `The subscription '${unknown}' could not be found.` },
    });

    const noVersion = await rawGet(
      `/subscriptions/${EXAMPLE_SUBSCRIPTION}/providers/Microsoft.ContainerService/managedClusters`,
      'sandbox-token',
    );
    expect(noVersion.status).toBe(400);
    expect(JSON.parse(noVersion.body)).toMatchObject({ error: { code: 'MissingApiVersionParameter' } });
  });

  it('serves diagnostic settings with the AKS audit categories', async () => {
    fake.setDiagnosticSettings(fixture.id, [
      {
        name: 'audit-to-law',
        logs: [
          { category: 'kube-audit', enabled: false },
          { category: 'kube-audit-admin', enabled: true },
        ],
      },
    ]);
    const raw = await rawGet(
      `${fixture.id}/providers/Microsoft.Insights/diagnosticSettings?api-version=2021-05-01-preview`,
      'sandbox-token',
    );
    expect(raw.status).toBe(200);
    expect(JSON.parse(raw.body)).toMatchObject({
      value: [
        {
          name: 'audit-to-law',
          type: 'Microsoft.Insights/diagnosticSettings',
          properties: {
            logs: [
              { category: 'kube-audit', enabled: false },
              { category: 'kube-audit-admin', enabled: true },
            ],
          },
        },
      ],
    });
    const other = aksCluster({ name: 'built-public', location: 'northeurope' });
    const none = await rawGet(
      `${other.id}/providers/Microsoft.Insights/diagnosticSettings?api-version=2021-05-01-preview`,
      'sandbox-token',
    );
    expect(JSON.parse(none.body)).toEqual({ value: [] });
  });

  it('logs each request with its operation, scope and status', () => {
    const anonymous = log.entries.find((e) => e.status === 401);
    expect(anonymous).toMatchObject({
      cloud: 'azure',
      operation: 'managedClusters.list',
      scope: EXAMPLE_SUBSCRIPTION,
    });
    expect(log.count('azure', 'managedClusters.get')).toBeGreaterThan(0);
    expect(log.count('azure', 'diagnosticSettings.list')).toBe(2);
    for (const e of log.entries) expect(e.durationMs).toBeGreaterThanOrEqual(0);
  });

  it('normalises the sample through the adapter', async () => {
    const page = await client().managedClusters.list().byPage().next();
    const got = normaliseManagedCluster(EXAMPLE_SUBSCRIPTION, page.value![0]!);
    expect(got).toEqual({
      id: `azure/${EXAMPLE_SUBSCRIPTION}/rg1/clustername1`,
      cloud: 'azure',
      scope: EXAMPLE_SUBSCRIPTION,
      region: 'westeurope',
      name: 'clustername1',
      kubernetesVersion: '1.31.7',
      endpoint: 'https://dnsprefix1-ee788a1f.hcp.westeurope.azmk8s.io',
      // A private cluster's public FQDN resolves to its private address: still private.
      endpointAccess: 'private',
      secretsEncryptionKey:
        'https://examplekeyvault.vault.azure.net/keys/examplekey/00000000000000000000000000000000',
      auditLogging: null,
      tags: { archv2: '', tier: 'production' },
      status: 'running',
      providerStatus: 'Succeeded/Running',
      createdAt: '2025-02-03T04:05:06.123Z',
      resourceGroup: 'rg1',
    });
  });
});
