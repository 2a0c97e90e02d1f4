/**
 * The ARM fake's storage accounts and AKS user credentials, read through the real clients:
 * `StorageManagementClient.storageAccounts.getProperties` (`@azure/arm-storage`, the
 * autorest client the bucket locator uses) and
 * `ContainerServiceClient.managedClusters.listClusterUserCredentials`.
 *
 * The StorageAccount wire shape follows the ARM REST reference example
 * "StorageAccountGetProperties" (top-level `sku`, `kind`, `id`, `name`, `type`, `location`,
 * `tags`, and `properties` with `primaryEndpoints`, `primaryLocation`, `provisioningState`,
 * `encryption`, `networkAcls`, `secondaryLocation` for geo-redundant SKUs). The credential
 * answer follows "Get Managed Cluster" / `CredentialResults`: `kubeconfigs[]` of `name` and a
 * base64 `value`.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { rootCertificates } from 'node:tls';
import { ContainerServiceClient } from '@azure/arm-containerservice';
import { StorageManagementClient } from '@azure/arm-storage';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { accessTokenCredential } from '../../shared/clouds/azure/discovery.ts';
import {
  type ArmFake,
  aksCluster,
  EXAMPLE_SUBSCRIPTION,
  managedClusterId,
  startArmFake,
  storageAccount,
} from '../sandbox/arm-fake.ts';
import { RequestLog } from '../sandbox/faults.ts';

const TOKEN_ENV = 'FLEETWARD_CONTRACT_ARM_TOKEN';
const credential = accessTokenCredential({ env: TOKEN_ENV }, { [TOKEN_ENV]: 'sandbox-token' });
const KUBECONFIG = `apiVersion: v1
kind: Config
clusters:
- name: aks-1
  cluster:
    server: https://aks-1-dns-0000.hcp.westeurope.azmk8s.io:443
contexts:
- name: aks-1
  context: { cluster: aks-1, user: clusterUser_rg-fleet_aks-1 }
current-context: aks-1
users:
- name: clusterUser_rg-fleet_aks-1
  user:
    token: placeholder-token
`;

let certDir: string;
let fake: ArmFake;
const log = new RequestLog();

function storageClient(subscription = EXAMPLE_SUBSCRIPTION): StorageManagementClient {
  return new StorageManagementClient(credential, subscription, {
    $host: fake.endpoint,
    endpoint: fake.endpoint,
    credentialScopes: [`${fake.endpoint}/.default`],
    tlsOptions: { ca: [...rootCertificates, fake.ca] },
    retryOptions: { maxRetries: 0 },
  });
}

function containerClient(subscription = EXAMPLE_SUBSCRIPTION): ContainerServiceClient {
  return new ContainerServiceClient(credential, subscription, {
    endpoint: fake.endpoint,
    credentials: { scopes: [`${fake.endpoint}/.default`] },
    tlsOptions: { ca: [...rootCertificates, fake.ca] },
    retryOptions: { maxRetries: 0 },
  });
}

function raw(method: string, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      `${fake.endpoint}${path}`,
      { method, ca: fake.ca, headers: { authorization: 'Bearer sandbox-token' } },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          body += chunk;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

beforeAll(async () => {
  certDir = mkdtempSync(join(tmpdir(), 'fleetward-arm-storage-contract-'));
  fake = await startArmFake({ log, certDir });
  fake.setClusters(EXAMPLE_SUBSCRIPTION, [aksCluster({ resourceGroup: 'rg-fleet', name: 'aks-1' })]);
  fake.setStorageAccount(EXAMPLE_SUBSCRIPTION, 'res9407', 'sto8596', {
    location: 'westeurope',
    tags: { key1: 'value1' },
  });
  fake.setStorageAccount(EXAMPLE_SUBSCRIPTION, 'res9407', 'stogrs01', {
    location: 'brazilsouth',
    sku: 'Standard_RAGRS',
    secondaryLocation: 'southcentralus',
    blobEndpoint: 'http://127.0.0.1:10000/devstoreaccount1',
  });
  fake.setUserCredentials(managedClusterId(EXAMPLE_SUBSCRIPTION, 'rg-fleet', 'aks-1'), KUBECONFIG);
});

afterAll(async () => {
  await fake?.stop();
  if (certDir) rmSync(certDir, { recursive: true, force: true });
});

describe('arm fake: storage accounts through the real StorageManagementClient', () => {
  it('answers getProperties with a StorageAccount of the reference shape', async () => {
    let wire: Record<string, unknown> | undefined;
    const account = await storageClient().storageAccounts.getProperties('res9407', 'sto8596', {
      onResponse: (response) => {
        wire = JSON.parse(response.bodyAsText ?? 'null') as Record<string, unknown>;
      },
    });

    expect(Object.keys(wire ?? {}).sort()).toEqual(
      ['id', 'kind', 'location', 'name', 'properties', 'sku', 'tags', 'type'].sort(),
    );
    expect(wire).toEqual(
      storageAccount(EXAMPLE_SUBSCRIPTION, 'res9407', 'sto8596', {
        location: 'westeurope',
        tags: { key1: 'value1' },
      }),
    );
    // The client flattens `properties`.
    expect(account).toMatchObject({
      id: `/subscriptions/${EXAMPLE_SUBSCRIPTION}/resourceGroups/res9407/providers/Microsoft.Storage/storageAccounts/sto8596`,
      name: 'sto8596',
      type: 'Microsoft.Storage/storageAccounts',
      location: 'westeurope',
      kind: 'StorageV2',
      sku: { name: 'Standard_LRS', tier: 'Standard' },
      tags: { key1: 'value1' },
      provisioningState: 'Succeeded',
      primaryLocation: 'westeurope',
      statusOfPrimary: 'available',
      primaryEndpoints: { blob: 'https://sto8596.blob.core.windows.net/' },
      encryption: {
        keySource: 'Microsoft.Storage',
        services: { blob: { enabled: true, keyType: 'Account' } },
      },
      networkRuleSet: { defaultAction: 'Allow', bypass: 'AzureServices' },
      enableHttpsTrafficOnly: true,
      minimumTlsVersion: 'TLS1_2',
    });
    expect(account.creationTime).toEqual(new Date('2025-01-15T09:30:00Z'));
    expect(account.secondaryLocation).toBeUndefined();
  });

  it('reports the secondary region and the configured blob endpoint of a geo-redundant account', async () => {
    const account = await storageClient().storageAccounts.getProperties('RES9407', 'stogrs01');

    expect(account).toMatchObject({
      location: 'brazilsouth',
      sku: { name: 'Standard_RAGRS' },
      secondaryLocation: 'southcentralus',
      statusOfSecondary: 'available',
      primaryEndpoints: { blob: 'http://127.0.0.1:10000/devstoreaccount1/' },
    });
    expect(() =>
      storageAccount(EXAMPLE_SUBSCRIPTION, 'rg', 'stogrs02', { location: 'westeurope', sku: 'Standard_GRS' }),
    ).toThrow(/secondaryLocation/);
  });

  it('answers 404 ResourceNotFound for an unknown account and SubscriptionNotFound for an unknown subscription', async () => {
    await expect(
      storageClient().storageAccounts.getProperties('res9407', 'nosuchaccount'),
    ).rejects.toMatchObject({
      statusCode: 404,
      code: 'ResourceNotFound',
    });
    await expect(
      storageClient('11111111-1111-1111-1111-111111111111').storageAccounts.getProperties(
        'res9407',
        'sto8596',
      ),
    ).rejects.toMatchObject({ statusCode: 404, code: 'SubscriptionNotFound' });
  });

  it('logs storageAccounts.getProperties with the subscription as scope', () => {
    const calls = fake.requests({ operation: 'storageAccounts.getProperties' });

    expect(calls.length).toBeGreaterThanOrEqual(4);
    expect(calls[0]).toMatchObject({ cloud: 'azure', scope: EXAMPLE_SUBSCRIPTION, status: 200 });
  });
});

describe('arm fake: AKS user credentials through the real ContainerServiceClient', () => {
  it('answers listClusterUserCredential with the kubeconfig, base64 on the wire', async () => {
    const result = await containerClient().managedClusters.listClusterUserCredentials('rg-fleet', 'aks-1');

    expect(result.kubeconfigs).toHaveLength(1);
    expect(result.kubeconfigs?.[0]?.name).toBe('clusterUser');
    expect(Buffer.from(result.kubeconfigs![0]!.value!).toString('utf8')).toBe(KUBECONFIG);

    const wire = await raw(
      'POST',
      `/subscriptions/${EXAMPLE_SUBSCRIPTION}/resourceGroups/rg-fleet/providers/Microsoft.ContainerService/managedClusters/aks-1/listClusterUserCredential?api-version=2025-05-01`,
    );
    expect(wire.status).toBe(200);
    expect(JSON.parse(wire.body)).toEqual({
      kubeconfigs: [{ name: 'clusterUser', value: Buffer.from(KUBECONFIG).toString('base64') }],
    });
  });

  it('answers 404 without credentials and 405 to a GET', async () => {
    await expect(
      containerClient().managedClusters.listClusterUserCredentials('rg-fleet', 'aks-2'),
    ).rejects.toMatchObject({ statusCode: 404, code: 'ResourceNotFound' });
    const get = await raw(
      'GET',
      `/subscriptions/${EXAMPLE_SUBSCRIPTION}/resourceGroups/rg-fleet/providers/Microsoft.ContainerService/managedClusters/aks-1/listClusterUserCredential?api-version=2025-05-01`,
    );

    expect(get.status).toBe(405);
    expect(fake.requests({ operation: 'managedClusters.listClusterUserCredentials' })).toHaveLength(4);
  });
});
