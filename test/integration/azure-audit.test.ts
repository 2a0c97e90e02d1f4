/**
 * The AKS audit source against the ARM fake (diagnostic settings) and the Log Analytics fake,
 * and the blob archive store against Azurite behind the immutability proxy.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StorageSharedKeyCredential } from '@azure/storage-blob';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAuditSource, createBlobArchiveStore } from '../../shared/clouds/azure/audit.ts';
import { AzureConfig } from '../../shared/config/schema.ts';
import type { Cluster } from '../../shared/model.ts';
import type { AuditEvent, Log } from '../../shared/ports.ts';
import { NotImmutableError, ObjectExistsError } from '../../shared/runtime/errors.ts';
import { type ArmFake, aksCluster, managedClusterId, startArmFake } from '../sandbox/arm-fake.ts';
import { type Azurite, blobClient, startAzurite } from '../sandbox/azurite.ts';
import {
  type BlobImmutabilityProxy,
  startBlobImmutabilityProxy,
} from '../sandbox/blob-immutability-proxy.ts';
import { FaultInjector } from '../sandbox/faults.ts';
import { type LogAnalyticsFake, startLogAnalyticsFake } from '../sandbox/log-analytics-fake.ts';

const SUB = '0b1f6471-1bf0-4dda-aec3-111122223333';
const silent: Log = { debug() {}, info() {}, warn() {}, error() {} };
const retried: unknown[] = [];
const logger: Log = { ...silent, info: (message, ...extra) => retried.push({ message, ...extra[0] }) };

function cluster(name: string): Cluster {
  return {
    id: `azure/${SUB}/rg-aks/${name}`,
    cloud: 'azure',
    scope: SUB,
    region: 'westeurope',
    name,
    kubernetesVersion: '1.30.3',
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
    resourceGroup: 'rg-aks',
  };
}

let dir: string;
let arm: ArmFake;
let la: LogAnalyticsFake;
const faults = new FaultInjector();
let config: AzureConfig;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fleetward-azure-audit-'));
  process.env.FLEETWARD_TEST_AZURE_TOKEN = 'sandbox-token';
  arm = await startArmFake({ certDir: dir });
  la = await startLogAnalyticsFake({ certDir: dir, faults });
  arm.setClusters(
    SUB,
    ['on', 'off', 'none', 'busy'].map((name) =>
      aksCluster({ subscriptionId: SUB, resourceGroup: 'rg-aks', name }),
    ),
  );
  config = AzureConfig.parse({
    endpoint: arm.endpoint,
    logAnalyticsEndpoint: la.endpoint,
    caFile: arm.caFile,
    credential: { type: 'access-token', env: 'FLEETWARD_TEST_AZURE_TOKEN' },
    subscriptions: [{ id: SUB }],
    maxAttempts: 3,
    timeoutMs: 5000,
  });
});

afterAll(async () => {
  await la?.stop();
  await arm?.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function readAll(
  iterable: AsyncIterable<AuditEvent[]>,
): Promise<{ pages: number; events: AuditEvent[] }> {
  let pages = 0;
  const events: AuditEvent[] = [];
  for await (const page of iterable) {
    pages++;
    events.push(...page);
  }
  return { pages, events };
}

describe('azure audit source', () => {
  it('is enabled only when a diagnostic setting sends kube-audit(-admin) to a workspace', async () => {
    const source = createAuditSource(config, { logger: silent });
    arm.setDiagnosticSettings(managedClusterId(SUB, 'rg-aks', 'on'), [
      {
        logs: [
          { category: 'kube-apiserver', enabled: true },
          { category: 'kube-audit-admin', enabled: true },
        ],
      },
    ]);
    arm.setDiagnosticSettings(managedClusterId(SUB, 'rg-aks', 'off'), [
      {
        logs: [
          { category: 'kube-audit', enabled: false },
          { category: 'kube-apiserver', enabled: true },
        ],
      },
    ]);
    expect(await source.enabled(cluster('on'))).toEqual({ enabled: true });
    const off = await source.enabled(cluster('off'));
    expect(off.enabled).toBe(false);
    expect(off.reason).toMatch(/kube-audit/);
    expect((await source.enabled(cluster('none'))).enabled).toBe(false);
  });

  it('reads exactly the seeded rows of the window across pages, rows sharing a timestamp included, retrying a 429', async () => {
    const id = managedClusterId(SUB, 'rg-aks', 'busy');
    arm.setDiagnosticSettings(id, [{ logs: [{ category: 'kube-audit', enabled: true }] }]);
    const start = new Date('2025-03-01T00:00:00.000Z');
    const before = la.seed('law-fleet', id, 5, {
      start: new Date('2025-02-28T23:59:00.000Z'),
      spacingMs: 1000,
    });
    const seeded = [
      ...la.seed('law-fleet', id, 23, { start, spacingMs: 1000 }),
      // 12 rows on one timestamp, straddling page boundaries.
      ...la.seed('law-fleet', id, 12, { start: new Date('2025-03-01T00:00:30.000Z'), spacingMs: 0 }),
      ...la.seed('law-fleet', id, 9, { start: new Date('2025-03-01T00:01:00.000Z'), spacingMs: 500 }),
    ];
    const after = la.seed('law-fleet', id, 3, { start: new Date('2025-03-01T01:00:00.000Z'), spacingMs: 1 });
    la.seed('law-fleet', managedClusterId(SUB, 'rg-aks', 'other'), 4, { start, spacingMs: 1 });
    faults.add({
      cloud: 'azure',
      operation: 'logAnalytics.query',
      fault: { kind: 'throttle', retryAfterSeconds: 1 },
      times: 1,
    });
    retried.length = 0;

    const source = createAuditSource(config, { logger, pageRows: 5 });
    const { pages, events } = await readAll(
      source.read(cluster('busy'), { since: start, until: new Date('2025-03-01T01:00:00.000Z') }),
    );
    expect(retried).toHaveLength(1);
    expect(pages).toBeGreaterThan(8);
    expect(events).toHaveLength(seeded.length);
    expect(events.map((e) => e.timestamp)).toEqual(
      seeded.map((s) => new Date(s.timeGenerated).toISOString()),
    );
    expect(events.map((e) => e.auditID)).toEqual(seeded.map((s) => s.auditId || null));
    expect(new Set(events.map((e) => e.raw)).size).toBe(seeded.length);
    expect(events.filter((e) => e.auditID === null).length).toBeGreaterThan(0);
    const raw = JSON.parse(events[0]!.raw) as Record<string, unknown>;
    expect(raw.Category).toBe('kube-audit');
    expect(typeof raw.log_s).toBe('string');
    expect(before.length + after.length).toBe(8);
  });
});

describe('azure blob archive store behind the immutability proxy, immutability through ARM', () => {
  let azurite: Azurite;
  let proxy: BlobImmutabilityProxy;
  let blobConfig: AzureConfig;
  let credential: StorageSharedKeyCredential;

  beforeAll(async () => {
    azurite = await startAzurite();
    proxy = await startBlobImmutabilityProxy({ azurite });
    const direct = blobClient(azurite);
    await direct.createContainer('evidence-locked');
    await direct.createContainer('evidence-open');
    proxy.lockContainer('evidence-locked', 400);
    blobConfig = AzureConfig.parse({
      endpoint: arm.endpoint,
      caFile: arm.caFile,
      blobEndpoint: proxy.endpoint.replace(azurite.accountName, '{account}'),
      credential: { type: 'access-token', env: 'FLEETWARD_TEST_AZURE_TOKEN' },
      subscriptions: [{ id: SUB }],
      maxAttempts: 2,
    });
    credential = new StorageSharedKeyCredential(azurite.accountName, azurite.accountKey);
    arm.setStorageAccount(SUB, 'rg-evidence', 'devstoreaccount1', { location: 'westeurope' });
    const set = (container: string, spec: Parameters<ArmFake['setBlobContainer']>[4]) =>
      arm.setBlobContainer(SUB, 'rg-evidence', 'devstoreaccount1', container, spec);
    set('evidence-locked', { versionImmutability: true, policyDays: 400, locked: true });
    set('evidence-unlocked', { versionImmutability: true, policyDays: 400, locked: false });
    set('evidence-short', { versionImmutability: true, policyDays: 30, locked: true });
    set('evidence-unversioned', { versionImmutability: false, policyDays: 400, locked: true });
    set('evidence-nopolicy', { versionImmutability: true });
  });

  afterAll(async () => {
    await proxy?.stop();
    await azurite?.stop();
  });

  /** A store without ARM coordinates (blob data only). */
  const store = (container: string) =>
    createBlobArchiveStore(
      blobConfig,
      { storageAccount: 'devstoreaccount1', container, region: 'westeurope' },
      { logger: silent, credential },
    );
  /** A store that knows where its account lives in ARM. */
  const armStore = (container: string) =>
    createBlobArchiveStore(
      blobConfig,
      { storageAccount: 'devstoreaccount1', container, region: 'westeurope' },
      { logger: silent, credential, account: { subscriptionId: SUB, resourceGroup: 'rg-evidence' } },
    );
  const refusal = async (promise: Promise<unknown>): Promise<NotImmutableError> => {
    const error = await promise.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(NotImmutableError);
    return error as NotImmutableError;
  };

  it('passes assertImmutable for a container whose locked version-level policy ARM reports', async () => {
    const before = arm.requests({ operation: 'blobContainers.get' }).length;
    const locked = armStore('evidence-locked');
    expect(locked.id).toBe('azure:devstoreaccount1/evidence-locked');
    await expect(locked.assertImmutable(400)).resolves.toBeUndefined();
    await expect(locked.assertImmutable(1)).resolves.toBeUndefined();
    const seen = arm.requests({ operation: 'blobContainers.get' });
    expect(seen.length - before).toBe(2);
    expect(seen.at(-1)).toMatchObject({ scope: SUB, status: 200 });
  });

  it('refuses assertImmutable with the reason for every container that is not provably write-once', async () => {
    const store400 = armStore('evidence-locked');
    expect((await refusal(store400.assertImmutable(500))).message).toMatch(/400 day\(s\), less than the 500/);
    expect((await refusal(armStore('evidence-unlocked').assertImmutable(1))).message).toMatch(
      /unlocked, not locked/,
    );
    expect((await refusal(armStore('evidence-short').assertImmutable(400))).message).toMatch(
      /30 day\(s\), less than the 400/,
    );
    expect((await refusal(armStore('evidence-unversioned').assertImmutable(1))).message).toMatch(
      /version-level immutability is not enabled/,
    );
    expect((await refusal(armStore('evidence-nopolicy').assertImmutable(1))).message).toMatch(
      /no default immutability policy/,
    );
    const missing = await refusal(armStore('evidence-missing').assertImmutable(1));
    expect(missing.message).toMatch(/knows no container evidence-missing/);
    expect(missing.store).toBe('azure:devstoreaccount1/evidence-missing');
    expect(arm.requests({ operation: 'blobContainers.get' }).at(-1)).toMatchObject({ status: 404 });
    const wrongGroup = createBlobArchiveStore(
      blobConfig,
      { storageAccount: 'devstoreaccount1', container: 'evidence-locked', region: 'westeurope' },
      { logger: silent, credential, account: { subscriptionId: SUB, resourceGroup: 'rg-elsewhere' } },
    );
    expect((await refusal(wrongGroup.assertImmutable(1))).message).toMatch(/resource group rg-elsewhere/);
  });

  it('refuses assertImmutable without the resource group config, without asking ARM or the blob service', async () => {
    const armBefore = arm.requests({ operation: 'blobContainers.get' }).length;
    const proxyBefore = proxy.requests.length;
    const error = await refusal(store('evidence-locked').assertImmutable(1));
    expect(error.message).toMatch(/jurisdictions\.<id>\.evidence\.azure\.resourceGroup/);
    expect(arm.requests({ operation: 'blobContainers.get' })).toHaveLength(armBefore);
    expect(proxy.requests).toHaveLength(proxyBefore);
  });

  it('creates once, refuses a second create, keeps versions and reads them', async () => {
    const s = store('evidence-locked');
    const body = new TextEncoder().encode('{"chunk":1}\n');
    const created = await s.create('audit/c1/2025-03-01/part-0001.jsonl', body, {
      sha256: 'x'.repeat(64),
      contentType: 'application/x-ndjson',
    });
    expect(created.version).toMatch(/^\d{4}-\d\d-\d\dT.*Z$/);
    await expect(
      s.create('audit/c1/2025-03-01/part-0001.jsonl', body, {
        sha256: 'x'.repeat(64),
        contentType: 'application/x-ndjson',
      }),
    ).rejects.toBeInstanceOf(ObjectExistsError);
    await expect(
      s.create('audit/c1/2025-03-01/part-0002.jsonl', body, {
        sha256: 'y'.repeat(64),
        contentType: 'application/x-ndjson',
      }),
    ).resolves.toMatchObject({ key: 'audit/c1/2025-03-01/part-0002.jsonl' });

    const altered = await proxy.alterBlob(
      'evidence-locked',
      'audit/c1/2025-03-01/part-0001.jsonl',
      new TextEncoder().encode('tampered'),
    );
    const listed = await s.list('audit/c1/');
    expect(listed.map((l) => l.key)).toEqual([
      'audit/c1/2025-03-01/part-0001.jsonl',
      'audit/c1/2025-03-01/part-0002.jsonl',
    ]);
    expect(listed[0]!.versions).toEqual([altered, created.version]);
    expect(
      new TextDecoder().decode(
        await s.get('audit/c1/2025-03-01/part-0001.jsonl', { version: created.version }),
      ),
    ).toBe('{"chunk":1}\n');
    expect(new TextDecoder().decode(await s.get('audit/c1/2025-03-01/part-0001.jsonl'))).toBe('tampered');
    expect(await s.get('audit/c1/absent')).toBeUndefined();
    expect(proxy.requests.some((r) => r.status === 409)).toBe(true);
  });

  it('location needs the account resource group, then reads it through ARM', async () => {
    await expect(store('evidence-locked').location()).rejects.toThrow(/resource group/);
    expect(await armStore('evidence-locked').location()).toEqual({ cloud: 'azure', region: 'westeurope' });
  });
});
