/**
 * The AKS exporter (export mode) against the ARM fake (clusters, diagnostic settings, the
 * evidence storage account and its containers) and Azurite behind the immutability proxy: the
 * diagnostic setting as desired state, Azure Monitor's delivery into the `insights-logs-`
 * container with no Fleetward code in the path, and the drift and refusals of the issue.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createAuditExporter } from '../../shared/clouds/azure/audit-export.ts';
import { FleetConfig } from '../../shared/config/schema.ts';
import type { Cluster } from '../../shared/model.ts';
import type { ArchiveStore, AuditExporter, ExportSpec, Log } from '../../shared/ports.ts';
import { Residency } from '../../shared/residency/guard.ts';
import { CloudApiError, NotImmutableError, ResidencyError } from '../../shared/runtime/errors.ts';
import {
  type ArmFake,
  aksCluster,
  type BlobContainerSpec,
  type DiagnosticSettingInput,
  managedClusterId,
  startArmFake,
} from '../sandbox/arm-fake.ts';
import { aksDiagnosticLine } from '../sandbox/audit-fleet.ts';
import { AZURITE_ACCOUNT_KEY, type Azurite, blobClient, startAzurite } from '../sandbox/azurite.ts';
import {
  type BlobImmutabilityProxy,
  startBlobImmutabilityProxy,
} from '../sandbox/blob-immutability-proxy.ts';

const SUB = '0b1f6471-1bf0-4dda-aec3-444455556666';
const RG = 'rg-aks';
const EVIDENCE_RG = 'rg-evidence';
const REGION = 'germanywestcentral';
const RETENTION_DAYS = 400;
const CATEGORY = 'kube-audit-admin';
const CONTAINER = `insights-logs-${CATEGORY}`;
const silent: Log = { debug() {}, info() {}, warn() {}, error() {} };
/** A locked version-level policy that lets Azure Monitor append: what export mode needs. */
const APPENDABLE: BlobContainerSpec = {
  versionImmutability: true,
  policyDays: RETENTION_DAYS,
  locked: true,
  allowProtectedAppendWrites: true,
};

function cluster(name: string): Cluster {
  return {
    id: `azure/${SUB}/${RG}/${name}`,
    cloud: 'azure',
    scope: SUB,
    region: 'westeurope',
    name,
    kubernetesVersion: '1.31.2',
    endpoint: null,
    endpointAccess: 'public',
    secretsEncryptionKey: null,
    auditLogging: null,
    tags: {},
    status: 'running',
    providerStatus: 'Succeeded',
    createdAt: null,
    country: 'NL',
    jurisdiction: 'eu',
    resourceGroup: RG,
  };
}

let dir: string;
let arm: ArmFake;
let azurite: Azurite;
let proxy: BlobImmutabilityProxy;
let config: FleetConfig;
let exporter: AuditExporter;
let account: string;

const armIdOf = (c: Cluster) => managedClusterId(SUB, RG, c.name);
const noStore = {} as ArchiveStore;

/**
 * Azure Monitor's part, as the sandbox plays it: for every setting of the cluster that enables
 * an audit category to a storage account, append `count` records to that hour's blob.
 */
async function deliver(c: Cluster, count: number, start: Date): Promise<string[]> {
  const id = armIdOf(c);
  const writer = blobClient({ ...azurite, blobEndpoint: proxy.endpoint });
  const written: string[] = [];
  for (const setting of arm.diagnosticSettings(id)) {
    if (!setting.storageAccountId) continue;
    for (const log of setting.logs.filter((l) => l.enabled && l.category.startsWith('kube-audit'))) {
      const p = (n: number) => String(n).padStart(2, '0');
      const blob = `resourceId=${id.toUpperCase()}/y=${start.getUTCFullYear()}/m=${p(start.getUTCMonth() + 1)}/d=${p(start.getUTCDate())}/h=${p(start.getUTCHours())}/m=00/PT1H.json`;
      const lines = Array.from({ length: count }, (_, i) =>
        aksDiagnosticLine(id, log.category, new Date(start.getTime() + i * 1000), i),
      );
      await writer.appendBlob(`insights-logs-${log.category}`, blob, Buffer.from(`${lines.join('\n')}\n`));
      written.push(blob);
    }
  }
  return written;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fleetward-azure-export-'));
  process.env.FLEETWARD_TEST_AZURE_TOKEN = 'sandbox-token';
  arm = await startArmFake({ certDir: dir });
  azurite = await startAzurite();
  proxy = await startBlobImmutabilityProxy({ azurite });
  account = azurite.accountName;
  const blobs = blobClient(azurite);
  for (const container of ['evidence', CONTAINER, 'insights-logs-kube-audit']) {
    await blobs.createContainer(container);
    proxy.lockContainer(container, RETENTION_DAYS, { appendWrites: container !== 'evidence' });
  }
  arm.setClusters(
    SUB,
    ['aks-eu-1', 'aks-eu-2', 'aks-busy'].map((name) =>
      aksCluster({ subscriptionId: SUB, resourceGroup: RG, name }),
    ),
  );
  arm.setStorageAccount(SUB, EVIDENCE_RG, account, { location: REGION });
  arm.setBlobContainer(SUB, EVIDENCE_RG, account, CONTAINER, APPENDABLE);
  const keyFile = join(dir, 'storage-key');
  writeFileSync(keyFile, AZURITE_ACCOUNT_KEY, { mode: 0o600 });
  config = FleetConfig.parse({
    version: 1,
    clouds: {
      azure: {
        endpoint: arm.endpoint,
        caFile: arm.caFile,
        credential: { type: 'access-token', env: 'FLEETWARD_TEST_AZURE_TOKEN' },
        subscriptions: [{ id: SUB }],
        blobEndpoint: proxy.endpoint.replace(/\/[^/]+$/, '/{account}'),
        storageKeyFile: keyFile,
        maxAttempts: 2,
        timeoutMs: 5000,
      },
    },
    jurisdictions: {
      eu: {
        preset: 'eu-gdpr',
        evidence: {
          azure: {
            storageAccount: account,
            container: 'evidence',
            region: REGION,
            resourceGroup: EVIDENCE_RG,
            subscriptionId: SUB,
          },
        },
        audit: { mode: 'export', retentionDays: RETENTION_DAYS },
      },
    },
  });
  exporter = createAuditExporter(config, { logger: silent });
}, 60_000);

afterAll(async () => {
  await proxy?.stop();
  await azurite?.stop();
  await arm?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('AKS export: the diagnostic setting as desired state', () => {
  const c = cluster('aks-eu-1');
  let spec: ExportSpec;
  beforeAll(() => {
    spec = exporter.desired(c, noStore);
  });

  it('wants one setting of its own, the audit category only, into the evidence account', () => {
    expect(spec).toEqual({
      name: 'fleetward-audit',
      destination: `/subscriptions/${SUB}/resourceGroups/${EVIDENCE_RG}/providers/Microsoft.Storage/storageAccounts/${account}`,
      filter: CATEGORY,
      settings: { container: CONTAINER },
    });
  });

  it('creates it, reads it back as desired, and a second apply leaves the same one setting', async () => {
    expect(await exporter.observe(c, spec)).toBeNull();

    await exporter.apply(c, spec);
    expect(await exporter.observe(c, spec)).toEqual({
      name: spec.name,
      enabled: true,
      destination: spec.destination,
      filter: spec.filter,
      settings: spec.settings,
      deliveryErrors: [],
    });
    const once = arm.diagnosticSettings(armIdOf(c));

    await exporter.apply(c, spec);
    expect(arm.diagnosticSettings(armIdOf(c))).toEqual(once);
    expect(once).toEqual([
      {
        name: 'fleetward-audit',
        logs: [{ category: CATEGORY, enabled: true }],
        storageAccountId: spec.destination,
        workspaceId: null,
      },
    ]);
  });

  it("lands Azure Monitor's hourly append blobs under the cluster's prefix, where the digests list them", async () => {
    const other = cluster('aks-eu-2');
    await exporter.apply(other, exporter.desired(other, noStore));
    const hour = new Date('2026-12-08T10:00:00Z');
    const blob = (await deliver(c, 3, new Date(hour.getTime() + 60_000)))[0]!;
    await deliver(other, 2, hour);
    // Later in the same hour Azure Monitor appends to the same blob.
    await deliver(c, 2, new Date(hour.getTime() + 30 * 60_000));

    const before = proxy.requests.length;
    const { store, prefix } = await exporter.exported(c, spec);
    expect(store.id).toBe(`azure:${account}/${CONTAINER}`);
    expect(prefix).toBe(`resourceId=${armIdOf(c).toUpperCase()}/`);
    const listed = await store.list(prefix);
    expect(listed.map((o) => o.key)).toEqual([blob]);
    expect(blob).toBe(`${prefix}y=2026/m=12/d=08/h=10/m=00/PT1H.json`);
    // Append Block makes no new version: one object, one version, created at its first append.
    expect(listed[0]!.versions).toHaveLength(1);
    expect(listed[0]!.created).toMatch(/^\d{4}-\d\d-\d\dT/);
    const lines = new TextDecoder()
      .decode(await store.get(blob))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { resourceId: string; category: string });
    expect(lines).toHaveLength(5);
    expect(new Set(lines.map((l) => `${l.resourceId} ${l.category}`))).toEqual(
      new Set([`${armIdOf(c).toUpperCase()} ${CATEGORY}`]),
    );
    // Fleetward only reads what Azure Monitor wrote: no write of its own in the data path.
    const ours = proxy.requests.slice(before);
    expect(ours.length).toBeGreaterThan(0);
    expect(ours.filter((r) => r.method !== 'GET' && r.method !== 'HEAD')).toEqual([]);
  });

  it('refuses to write a diagnostic setting whose name is not its own', async () => {
    await expect(exporter.apply(c, { ...spec, name: 'team-workspace' })).rejects.toThrow(
      /only fleetward-audit is fleetward's/,
    );
  });
});

describe('AKS export drift', () => {
  const c = cluster('aks-eu-1');
  let spec: ExportSpec;
  const id = () => armIdOf(c);
  const foreign: DiagnosticSettingInput = {
    name: 'team-workspace',
    logs: [
      { category: 'kube-apiserver', enabled: true },
      { category: 'kube-audit', enabled: true },
    ],
  };
  beforeEach(async () => {
    spec = exporter.desired(c, noStore);
    arm.setDiagnosticSettings(id(), [foreign]);
    await exporter.apply(c, spec);
  });

  it('reads a disabled category as not enabled, and apply mends it without touching the other setting', async () => {
    const ours = arm.diagnosticSettings(id()).find((s) => s.name === spec.name)!;
    arm.setDiagnosticSettings(id(), [foreign, { ...ours, logs: [{ category: CATEGORY, enabled: false }] }]);
    expect(await exporter.observe(c, spec)).toMatchObject({ enabled: false, filter: '' });

    await exporter.apply(c, spec);
    expect(await exporter.observe(c, spec)).toMatchObject({ enabled: true, filter: CATEGORY });
    expect(arm.diagnosticSettings(id())[0]).toEqual(foreign);
  });

  it('reports a destination moved to another account, and a widened filter', async () => {
    const elsewhere = `/subscriptions/${SUB}/resourceGroups/rg-other/providers/Microsoft.Storage/storageAccounts/elsewhere`;
    arm.setDiagnosticSettings(id(), [
      foreign,
      {
        name: spec.name,
        logs: [
          { category: CATEGORY, enabled: true },
          { category: 'kube-apiserver', enabled: true },
        ],
        storageAccountId: elsewhere,
      },
    ]);
    expect(await exporter.observe(c, spec)).toMatchObject({
      enabled: true,
      destination: elsewhere,
      filter: `kube-apiserver,${CATEGORY}`,
    });
  });

  it('reads the same account in another case as no change (ARM ids are case-insensitive)', async () => {
    arm.setDiagnosticSettings(id(), [
      foreign,
      {
        name: spec.name,
        logs: [{ category: CATEGORY, enabled: true }],
        storageAccountId: spec.destination.toLowerCase(),
      },
    ]);
    expect((await exporter.observe(c, spec))?.destination).toBe(spec.destination);
  });

  it('names the five settings when Azure refuses a sixth, and leaves them as they are', async () => {
    const busy = cluster('aks-busy');
    const others: DiagnosticSettingInput[] = Array.from({ length: 5 }, (_, i) => ({
      name: `team-${i + 1}`,
      logs: [{ category: 'kube-apiserver', enabled: true }],
    }));
    arm.setDiagnosticSettings(armIdOf(busy), others);
    const refused = await exporter.apply(busy, exporter.desired(busy, noStore)).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(CloudApiError);
    expect((refused as Error).message).toMatch(
      /has 5 diagnostic settings already \(team-1, team-2, team-3, team-4, team-5\).*remove one/,
    );
    expect(arm.diagnosticSettings(armIdOf(busy))).toEqual(others);

    arm.setDiagnosticSettings(armIdOf(busy), others.slice(0, 4));
    await exporter.apply(busy, exporter.desired(busy, noStore));
    expect(arm.diagnosticSettings(armIdOf(busy))).toHaveLength(5);
  });
});

describe('AKS export destination checks', () => {
  const c = cluster('aks-eu-1');
  const residency = () => new Residency(config.jurisdictions);
  let spec: ExportSpec;
  beforeAll(() => {
    spec = exporter.desired(c, noStore);
  });
  afterAll(() => {
    arm.setBlobContainer(SUB, EVIDENCE_RG, account, CONTAINER, APPENDABLE);
    arm.setStorageAccount(SUB, EVIDENCE_RG, account, { location: REGION });
  });

  it('accepts a locked, long enough policy that allows protected append writes, in the jurisdiction', async () => {
    arm.setBlobContainer(SUB, EVIDENCE_RG, account, CONTAINER, APPENDABLE);
    const location = await exporter.checkDestination(c, spec, RETENTION_DAYS);
    expect(location).toEqual({ cloud: 'azure', region: REGION });
    expect(() =>
      residency().assertResidency(
        { jurisdiction: 'eu', clusterId: c.id },
        { ...location, what: 'audit export destination' },
      ),
    ).not.toThrow();
  });

  it('accepts allowProtectedAppendWritesAll as well', async () => {
    // The fake has no switch for it: the flag is set on the resource it serves.
    const resource = arm.setBlobContainer(SUB, EVIDENCE_RG, account, CONTAINER, {
      ...APPENDABLE,
      allowProtectedAppendWrites: false,
    });
    const policy = (resource as { properties: { immutabilityPolicy?: Record<string, unknown> } }).properties
      .immutabilityPolicy;
    if (!policy) throw new Error('the fake served no policy');
    policy.allowProtectedAppendWritesAll = true;
    await expect(exporter.checkDestination(c, spec, RETENTION_DAYS)).resolves.toEqual({
      cloud: 'azure',
      region: REGION,
    });
  });

  it.each<[string, BlobContainerSpec, RegExp]>([
    ['no version-level immutability', { versionImmutability: false }, /version-level immutability/],
    ['no immutability policy', { versionImmutability: true }, /no default immutability policy/],
    ['an unlocked policy', { ...APPENDABLE, locked: false }, /unlocked, not locked/],
    ['a policy shorter than the retention', { ...APPENDABLE, policyDays: 30 }, /30 day\(s\)/],
    [
      'a locked policy without protected append writes',
      { ...APPENDABLE, allowProtectedAppendWrites: false },
      /does not allow protected append writes/,
    ],
  ])('refuses a container with %s', async (_what, container, reason) => {
    arm.setBlobContainer(SUB, EVIDENCE_RG, account, CONTAINER, container);
    const refused = await exporter.checkDestination(c, spec, RETENTION_DAYS).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(NotImmutableError);
    expect((refused as Error).message).toMatch(reason);
    expect((refused as Error).message).toContain(CONTAINER);
  });

  it('refuses a category whose container arm does not know', async () => {
    const adminOnly = { ...spec, filter: 'kube-audit', settings: { container: 'insights-logs-kube-audit' } };
    await expect(exporter.checkDestination(c, adminOnly, RETENTION_DAYS)).rejects.toThrow(
      /knows no container insights-logs-kube-audit/,
    );
  });

  it('gives the residency guard a storage account moved out of the jurisdiction, which it refuses', async () => {
    arm.setBlobContainer(SUB, EVIDENCE_RG, account, CONTAINER, APPENDABLE);
    arm.setStorageAccount(SUB, EVIDENCE_RG, account, { location: 'eastus' });
    const location = await exporter.checkDestination(c, spec, RETENTION_DAYS);
    expect(location).toEqual({ cloud: 'azure', region: 'eastus' });
    expect(() =>
      residency().assertResidency(
        { jurisdiction: 'eu', clusterId: c.id },
        { ...location, what: 'audit export destination' },
      ),
    ).toThrow(ResidencyError);
  });

  it('refuses a geo-redundant account whose copy lives in another region', async () => {
    arm.setStorageAccount(SUB, EVIDENCE_RG, account, {
      location: REGION,
      sku: 'Standard_GRS',
      secondaryLocation: 'germanynorth',
    });
    await expect(exporter.checkDestination(c, spec, RETENTION_DAYS)).rejects.toThrow(/geo-redundant/);
  });
});
