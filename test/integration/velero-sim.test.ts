/**
 * The multi-cluster fake API server and its Velero simulator, driven the way Fleetward's
 * jobs drive a real cluster: through @kubernetes/client-node's KubernetesObjectApi, with
 * `server` URLs under `/clusters/<key>` of one HTTPS server.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import {
  ApiException,
  ApisApi,
  KubeConfig,
  type KubernetesObject,
  KubernetesObjectApi,
  VersionApi,
} from '@kubernetes/client-node';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { FaultInjector, RequestLog } from '../sandbox/faults.ts';
import {
  type KubeCluster,
  type KubeFleetFake,
  startKubeFake,
  startKubeFleetFake,
} from '../sandbox/kube-fake.ts';
import type { BackupFile, BackupLocationRef } from '../sandbox/velero-sim.ts';

interface VeleroStatus {
  phase?: string;
  startTimestamp?: string;
  completionTimestamp?: string;
  expiration?: string;
  progress?: { totalItems?: number; itemsBackedUp?: number; itemsRestored?: number };
  errors?: number;
  warnings?: number;
  validationErrors?: string[];
  failureReason?: string;
  version?: number;
  formatVersion?: string;
}

interface VeleroObject extends KubernetesObject {
  spec?: Record<string, unknown>;
  status?: VeleroStatus;
}

interface Workload extends KubernetesObject {
  spec?: { replicas?: number };
  status?: {
    replicas?: number;
    readyReplicas?: number;
    availableReplicas?: number;
    conditions?: { type: string; status: string }[];
  };
}

const STS_URL =
  'https://sts.eu-central-1.amazonaws.com/?Action=GetCallerIdentity&Version=2011-06-15&X-Amz-Credential=placeholder&X-Amz-Signature=placeholder';
/** What Fleetward mints for EKS: `k8s-aws-v1.` + base64url of a presigned STS URL. */
const EKS_TOKEN = `k8s-aws-v1.${Buffer.from(STS_URL).toString('base64url')}`;
const eksValidator = (token: string) =>
  token.startsWith('k8s-aws-v1.') &&
  Buffer.from(token.slice('k8s-aws-v1.'.length), 'base64url').toString('utf8').startsWith('https://sts.');

const certDir = mkdtempSync(join(tmpdir(), 'fleetward-velero-sim-'));
const log = new RequestLog();
const faults = new FaultInjector();
const writes: { cluster: string; location: BackupLocationRef; name: string; files: BackupFile[] }[] = [];
let failWrites = false;
let fleet: KubeFleetFake;
let prod: KubeCluster;
let drill: KubeCluster;
let bare: KubeCluster;

function kubeConfig(server: string, token: string): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'c', server, caData: Buffer.from(fleet.ca).toString('base64'), skipTLSVerify: false }],
    users: [{ name: 'u', token }],
    contexts: [{ name: 'ctx', cluster: 'c', user: 'u' }],
    currentContext: 'ctx',
  });
  return kc;
}

function objectApi(
  cluster: KubeCluster,
  token = cluster === prod ? EKS_TOKEN : 'sandbox-token',
): KubernetesObjectApi {
  return KubernetesObjectApi.makeApiClient(kubeConfig(cluster.server, token));
}

/** A raw HTTPS request (bodies the client drops, requests that must time out). */
function raw(
  method: string,
  url: string,
  options: { token?: string; body?: unknown; signal?: AbortSignal } = {},
): Promise<{ status: number; body: unknown }> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method,
        ca: fleet.ca,
        headers: {
          authorization: `Bearer ${options.token ?? 'sandbox-token'}`,
          ...(options.body ? { 'content-type': 'application/json' } : {}),
        },
        ...(options.signal ? { signal: options.signal } : {}),
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => {
          text += d;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) }));
      },
    );
    req.on('error', reject);
    req.end(options.body ? JSON.stringify(options.body) : undefined);
  });
}

async function until<T>(read: () => Promise<T>, done: (value: T) => boolean, timeoutMs = 3_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (done(value)) return value;
    if (Date.now() > deadline)
      throw new Error(`condition not met within ${timeoutMs} ms: ${JSON.stringify(value)}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const TERMINAL = ['Completed', 'PartiallyFailed', 'Failed', 'FailedValidation'];

function readVelero(
  api: KubernetesObjectApi,
  kind: 'Backup' | 'Restore',
  name: string,
): Promise<VeleroObject> {
  return api.read<VeleroObject>({
    apiVersion: 'velero.io/v1',
    kind,
    metadata: { name, namespace: 'velero' },
  });
}

async function settle(
  api: KubernetesObjectApi,
  kind: 'Backup' | 'Restore',
  name: string,
): Promise<VeleroObject> {
  return until(
    () => readVelero(api, kind, name),
    (o) => TERMINAL.includes(o.status?.phase ?? ''),
  );
}

function backup(name: string, spec: Record<string, unknown>): VeleroObject {
  return {
    apiVersion: 'velero.io/v1',
    kind: 'Backup',
    metadata: { name, namespace: 'velero', labels: { 'app.kubernetes.io/managed-by': 'fleetward' } },
    spec,
  };
}

function restore(name: string, spec: Record<string, unknown>): VeleroObject {
  return { apiVersion: 'velero.io/v1', kind: 'Restore', metadata: { name, namespace: 'velero' }, spec };
}

async function apiError(promise: Promise<unknown>): Promise<{ code: number; body: Record<string, unknown> }> {
  try {
    await promise;
  } catch (error) {
    if (!(error instanceof ApiException)) throw error;
    const body =
      typeof error.body === 'string' && error.body.startsWith('{')
        ? (JSON.parse(error.body) as Record<string, unknown>)
        : {};
    return { code: error.code, body };
  }
  throw new Error('expected the call to fail');
}

beforeAll(async () => {
  fleet = await startKubeFleetFake({
    faults,
    log,
    certDir,
    writeBackupObjects: async (location, name, files, context) => {
      if (failWrites) throw new Error('AccessDenied: Access Denied (placeholder)');
      writes.push({ cluster: context.cluster, location, name, files });
    },
  });
  prod = fleet.addCluster({
    key: 'eks-prod-eu',
    name: 'prod-eu',
    token: eksValidator,
    gitVersion: 'v1.33.2-eks-3025e55',
    velero: {
      locations: [
        {
          name: 'default',
          provider: 'aws',
          bucket: 'fw-backups-eu',
          prefix: 'clusters/prod-eu',
          config: { region: 'eu-central-1' },
        },
        {
          name: 'cold',
          provider: 'aws',
          bucket: 'fw-cold-eu',
          config: { region: 'eu-central-1' },
          available: false,
        },
      ],
      backupDelayMs: 30,
      restoreDelayMs: 30,
      readyDelayMs: 250,
    },
  });
  drill = fleet.addCluster({
    key: 'eks-drill-eu',
    name: 'drill-eu',
    velero: {
      locations: [
        { name: 'prod-eu-backups', provider: 'aws', bucket: 'fw-backups-eu', prefix: '/clusters/prod-eu/' },
      ],
      restoreDelayMs: 20,
      readyDelayMs: 40,
    },
  });
  bare = fleet.addCluster({ key: 'aks-bare', name: 'bare', gitVersion: 'v1.32.4' });
  prod.seedWorkloads('shop', { deployments: 3, statefulsets: 1, labels: { team: 'shop' } });
  prod.seedWorkloads('billing', { deployments: 1, statefulsets: 1, labels: { team: 'billing' } });
  prod.seedWorkloads('fw-drill-stale', { deployments: 1, labels: { 'fleetward.io/scratch': 'true' } });
});

afterAll(async () => {
  await fleet?.stop();
  rmSync(certDir, { recursive: true, force: true });
});

beforeEach(() => {
  faults.clear();
  failWrites = false;
  const v = prod.velero;
  if (v) {
    v.config.failBackups = null;
    v.config.failRestores = null;
  }
});

describe('one server, many clusters', () => {
  it('serves version and discovery under /clusters/<key> through the real client', async () => {
    expect(prod.server).toBe(`${fleet.url}/clusters/eks-prod-eu`);
    const info = await kubeConfig(prod.server, EKS_TOKEN).makeApiClient(VersionApi).getCode();
    expect(info).toMatchObject({ gitVersion: 'v1.33.2-eks-3025e55', major: '1', minor: '33+' });
    const bareInfo = await kubeConfig(bare.server, 'sandbox-token').makeApiClient(VersionApi).getCode();
    expect(bareInfo.gitVersion).toBe('v1.32.4');

    const groups = await kubeConfig(prod.server, EKS_TOKEN).makeApiClient(ApisApi).getAPIVersions();
    expect(groups.groups.map((g) => g.name)).toEqual(['apps', 'batch', 'apiextensions.k8s.io', 'velero.io']);
    const bareGroups = await kubeConfig(bare.server, 'sandbox-token').makeApiClient(ApisApi).getAPIVersions();
    expect(bareGroups.groups.map((g) => g.name)).not.toContain('velero.io');
  });

  it('lets KubernetesObjectApi discover plurals with the path prefix', async () => {
    log.clear();
    const api = objectApi(prod);
    const bsls = await api.list<VeleroObject>('velero.io/v1', 'BackupStorageLocation', 'velero');
    expect(bsls.items.map((b) => [b.metadata?.name, b.status?.phase])).toEqual([
      ['cold', 'Unavailable'],
      ['default', 'Available'],
    ]);
    const velero = await api.read<Workload>({
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'velero', namespace: 'velero' },
    });
    expect(velero.status?.availableReplicas).toBe(1);
    expect(log.entries.map((e) => [e.operation, e.scope, e.status])).toEqual([
      ['discover:velero.io/v1', 'prod-eu', 200],
      ['list:velero.io/v1/backupstoragelocations', 'prod-eu', 200],
      ['discover:apps/v1', 'prod-eu', 200],
      ['get:apps/v1/deployments', 'prod-eu', 200],
    ]);
  });

  it('answers 404 for the velero.io group on a cluster without Velero', async () => {
    const res = await raw('GET', `${bare.server}/apis/velero.io/v1`);
    expect(res.status).toBe(404);
    expect(res.body).toMatchObject({ kind: 'Status', reason: 'NotFound', code: 404 });
    const err = await apiError(objectApi(bare).list('velero.io/v1', 'Backup', 'velero'));
    expect(err.code).toBe(404);
    expect((await raw('GET', `${fleet.url}/clusters/no-such-cluster/version`)).status).toBe(404);
  });

  it('checks tokens per cluster, with a validator for minted EKS tokens', async () => {
    const wrong = await apiError(
      kubeConfig(prod.server, 'sandbox-token').makeApiClient(VersionApi).getCode(),
    );
    expect(wrong.code).toBe(401);
    const rejected = await raw('GET', `${prod.server}/version`, { token: 'sandbox-token' });
    expect(rejected.body).toMatchObject({ kind: 'Status', reason: 'Unauthorized', code: 401 });
    const forged = `k8s-aws-v1.${Buffer.from('https://evil.example/').toString('base64url')}`;
    expect((await raw('GET', `${prod.server}/version`, { token: forged })).status).toBe(401);
    expect((await raw('GET', `${prod.server}/version`, { token: EKS_TOKEN })).status).toBe(200);
  });

  it('hosts hundreds of clusters on one port', async () => {
    const before = fleet.clusters().length;
    for (let i = 0; i < 200; i++)
      fleet.addCluster({ key: `edge-${String(i).padStart(3, '0')}`, gitVersion: `v1.3${i % 4}.1` });
    expect(fleet.clusters()).toHaveLength(before + 200);
    const info = await kubeConfig(fleet.cluster('edge-199').server, 'sandbox-token')
      .makeApiClient(VersionApi)
      .getCode();
    expect(info.gitVersion).toBe('v1.33.1');
    for (let i = 0; i < 200; i++) fleet.removeCluster(`edge-${String(i).padStart(3, '0')}`);
    expect((await raw('GET', `${fleet.url}/clusters/edge-000/version`)).status).toBe(404);
  });
});

describe('generic objects', () => {
  it('filters lists with equality label selectors', async () => {
    const api = objectApi(prod);
    const list = (ns: string | undefined, selector: string) =>
      api
        .list<Workload>('apps/v1', 'Deployment', ns, undefined, undefined, undefined, undefined, selector)
        .then((l) => l.items.map((d) => `${d.metadata?.namespace}/${d.metadata?.name}`));
    expect(await list(undefined, 'team=shop')).toEqual(['shop/api', 'shop/web', 'shop/worker']);
    expect(await list('shop', 'app.kubernetes.io/name=api')).toEqual(['shop/api']);
    expect(await list('shop', 'app.kubernetes.io/name!=api,team=shop')).toEqual(['shop/web', 'shop/worker']);
    expect(await list(undefined, 'team in (billing),app.kubernetes.io/name=api')).toEqual(['billing/api']);
  });

  it('deletes a namespace with everything in it', async () => {
    prod.seedWorkloads('tmp', { deployments: 2, statefulsets: 1 });
    const api = objectApi(prod);
    expect((await api.list('apps/v1', 'Deployment', 'tmp')).items).toHaveLength(2);
    await api.delete({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'tmp' } });
    expect((await api.list('apps/v1', 'Deployment', 'tmp')).items).toEqual([]);
    expect((await api.list('apps/v1', 'StatefulSet', 'tmp')).items).toEqual([]);
    const gone = await apiError(api.read({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'tmp' } }));
    expect(gone.code).toBe(404);
    expect(prod.objects('apps/v1', 'Deployment', 'tmp')).toEqual([]);
  });
});

describe('Velero backups', () => {
  it('runs a Backup to Completed, counts items and writes the Velero layout', async () => {
    const api = objectApi(prod);
    // Velero knows no Fleetward label: the caller leaves scratch namespaces out by name.
    const created = await api.create(
      backup('nightly-1', { includedNamespaces: ['*'], excludedNamespaces: ['fw-drill-*'], ttl: '720h0m0s' }),
    );
    expect(created.metadata?.uid).toMatch(/^[0-9a-f-]{36}$/);
    const done = await settle(api, 'Backup', 'nightly-1');
    // default (1) + shop (namespace, 3 Deployments, 1 StatefulSet) + billing (namespace, 1 + 1); the excluded scratch and the system namespaces are left out
    expect(done.status).toMatchObject({
      phase: 'Completed',
      version: 1,
      formatVersion: '1.1.0',
      progress: { totalItems: 9, itemsBackedUp: 9 },
    });
    expect(done.status?.errors).toBeUndefined();
    const completed = Date.parse(done.status?.completionTimestamp ?? '');
    expect(Date.parse(done.status?.expiration ?? '') - completed).toBe(720 * 3600 * 1000);
    expect(Date.parse(done.status?.startTimestamp ?? '')).toBeLessThanOrEqual(completed);
    expect(done.spec).toMatchObject({ storageLocation: 'default', ttl: '720h0m0s' });
    expect(done.metadata?.labels?.['velero.io/storage-location']).toBe('default');

    const write = writes.find((w) => w.name === 'nightly-1');
    expect(write?.cluster).toBe('prod-eu');
    expect(write?.location).toEqual({
      name: 'default',
      provider: 'aws',
      bucket: 'fw-backups-eu',
      prefix: 'clusters/prod-eu',
      config: { region: 'eu-central-1' },
    });
    const keys = write?.files.map((f) => f.key) ?? [];
    expect(keys).toEqual(
      expect.arrayContaining([
        'clusters/prod-eu/backups/nightly-1/velero-backup.json',
        'clusters/prod-eu/backups/nightly-1/nightly-1.tar.gz',
        'clusters/prod-eu/backups/nightly-1/nightly-1-logs.gz',
        'clusters/prod-eu/backups/nightly-1/nightly-1-resource-list.json.gz',
      ]),
    );
    const file = (suffix: string) =>
      write?.files.find((f) => f.key.endsWith(suffix))?.body ?? Buffer.alloc(0);
    expect(JSON.parse(file('velero-backup.json').toString())).toMatchObject({
      kind: 'Backup',
      metadata: { name: 'nightly-1' },
      status: { phase: 'Completed' },
    });
    const tar = gunzipSync(file('nightly-1.tar.gz')).toString('latin1');
    expect(tar).toContain('resources/deployments.apps/namespaces/shop/api.json');
    expect(tar).toContain('resources/namespaces/cluster/billing.json');
    expect(tar).not.toContain('fw-drill-stale');
    const resources = JSON.parse(gunzipSync(file('resource-list.json.gz')).toString()) as Record<
      string,
      string[]
    >;
    expect(resources['apps/v1/Deployment']).toEqual(['billing/api', 'shop/api', 'shop/web', 'shop/worker']);
    expect(resources['v1/Namespace']).toEqual(['billing', 'default', 'shop']);
    expect(gunzipSync(file('nightly-1-logs.gz')).toString()).toContain('Backed up a total of 9 items');
  });

  it('honours included and excluded namespaces, refusing a namespace in both', async () => {
    const api = objectApi(prod);
    await api.create(
      backup('shop-only', {
        includedNamespaces: ['*'],
        excludedNamespaces: ['billing', 'default', 'fw-drill-*'],
      }),
    );
    const done = await settle(api, 'Backup', 'shop-only');
    expect(done.status).toMatchObject({ phase: 'Completed', progress: { totalItems: 5, itemsBackedUp: 5 } });
    await api.create(
      backup('contradiction', { includedNamespaces: ['shop', 'billing'], excludedNamespaces: ['billing'] }),
    );
    expect((await settle(api, 'Backup', 'contradiction')).status).toMatchObject({
      phase: 'FailedValidation',
      validationErrors: [
        'Invalid included/excluded namespace lists: excludes list cannot contain an item in the includes list: billing',
      ],
    });
  });

  it('answers a duplicate create with 409 AlreadyExists', async () => {
    const err = await apiError(objectApi(prod).create(backup('nightly-1', {})));
    expect(err.code).toBe(409);
    expect(err.body).toMatchObject({
      kind: 'Status',
      status: 'Failure',
      reason: 'AlreadyExists',
      message: 'backups.velero.io "nightly-1" already exists',
      details: { name: 'nightly-1', group: 'velero.io', kind: 'backups' },
    });
  });

  it('fails validation on an Unavailable or missing storage location', async () => {
    const api = objectApi(prod);
    await api.create(backup('to-cold', { storageLocation: 'cold' }));
    expect((await settle(api, 'Backup', 'to-cold')).status).toMatchObject({
      phase: 'FailedValidation',
      validationErrors: [
        "backup can't be created because BackupStorageLocation cold is in Unavailable status.",
      ],
    });
    await api.create(backup('to-nowhere', { storageLocation: 'nowhere' }));
    const nowhere = await settle(api, 'Backup', 'to-nowhere');
    expect(nowhere.status?.phase).toBe('FailedValidation');
    expect(nowhere.status?.validationErrors?.[0]).toContain("the default 'nowhere' wasn't found");

    prod.velero?.setLocationAvailable('default', false);
    try {
      const bsl = await api.read<VeleroObject & { status?: { message?: string } }>({
        apiVersion: 'velero.io/v1',
        kind: 'BackupStorageLocation',
        metadata: { name: 'default', namespace: 'velero' },
      });
      expect(bsl.status).toMatchObject({ phase: 'Unavailable' });
      await api.create(backup('while-bucket-down', {}));
      expect((await settle(api, 'Backup', 'while-bucket-down')).status?.phase).toBe('FailedValidation');
    } finally {
      prod.velero?.setLocationAvailable('default', true);
    }
  });

  it('simulates Failed and PartiallyFailed backups', async () => {
    const api = objectApi(prod);
    prod.velero!.config.failBackups = 'Failed';
    await api.create(backup('doomed', { includedNamespaces: ['shop'] }));
    const failed = await settle(api, 'Backup', 'doomed');
    expect(failed.status).toMatchObject({
      phase: 'Failed',
      failureReason: expect.stringContaining('simulated'),
    });
    expect(writes.find((w) => w.name === 'doomed')?.files.map((f) => f.key.split('/').pop())).toEqual([
      'velero-backup.json',
      'doomed-logs.gz',
    ]);
    expect(
      fleet.world.get({ provider: 'aws', bucket: 'fw-backups-eu', prefix: 'clusters/prod-eu' }, 'doomed'),
    ).toBeUndefined();

    prod.velero!.config.failBackups = 'PartiallyFailed';
    await api.create(backup('partial', { includedNamespaces: ['shop'] }));
    expect((await settle(api, 'Backup', 'partial')).status).toMatchObject({
      phase: 'PartiallyFailed',
      errors: 1,
      progress: { totalItems: 5, itemsBackedUp: 4 },
    });
  });

  it('fails a Backup whose files cannot be written', async () => {
    failWrites = true;
    const api = objectApi(prod);
    await api.create(backup('unwritable', { includedNamespaces: ['billing'] }));
    const done = await settle(api, 'Backup', 'unwritable');
    expect(done.status?.phase).toBe('Failed');
    expect(done.status?.failureReason).toBe(
      'error persisting backup: AccessDenied: Access Denied (placeholder)',
    );
  });

  it('leaves Backups unprocessed while the Velero Deployment is down', async () => {
    const api = objectApi(prod);
    prod.velero?.setDeploymentAvailable(false);
    try {
      const deployment = await api.read<Workload>({
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        metadata: { name: 'velero', namespace: 'velero' },
      });
      expect(deployment.status?.availableReplicas).toBeUndefined();
      expect(deployment.status?.conditions?.find((c) => c.type === 'Available')?.status).toBe('False');
      await api.create(backup('while-down', { includedNamespaces: ['billing'] }));
      await new Promise((r) => setTimeout(r, 80));
      expect((await readVelero(api, 'Backup', 'while-down')).status).toBeUndefined();
    } finally {
      prod.velero?.setDeploymentAvailable(true);
    }
    expect((await settle(api, 'Backup', 'while-down')).status?.phase).toBe('Completed');
  });
});

describe('Velero restores', () => {
  it('restores into fw-drill namespaces; workloads become ready after readyDelayMs', async () => {
    const api = objectApi(prod);
    await api.create(
      restore('drill-1', {
        backupName: 'nightly-1',
        includedNamespaces: ['shop'],
        namespaceMapping: { shop: 'fw-drill-1-shop' },
        includeClusterResources: false,
        restorePVs: false,
        existingResourcePolicy: 'none',
      }),
    );
    const done = await settle(api, 'Restore', 'drill-1');
    expect(done.status).toMatchObject({ phase: 'Completed', progress: { totalItems: 5, itemsRestored: 5 } });
    expect(done.status?.warnings).toBeUndefined();

    const deployments = await api.list<Workload>('apps/v1', 'Deployment', 'fw-drill-1-shop');
    expect(deployments.items.map((d) => d.metadata?.name)).toEqual(['api', 'web', 'worker']);
    const first = deployments.items[0]!;
    expect(first.metadata?.labels).toMatchObject({
      'velero.io/restore-name': 'drill-1',
      'velero.io/backup-name': 'nightly-1',
      team: 'shop',
    });
    // Not ready yet: readyReplicas is omitted (omitempty) until the pods are up.
    expect(first.status?.readyReplicas ?? 0).toBe(0);
    const ns = await api.read({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'fw-drill-1-shop' } });
    expect(ns.metadata?.labels?.['kubernetes.io/metadata.name']).toBe('fw-drill-1-shop');
    expect(prod.objects('apps/v1', 'StatefulSet', 'fw-drill-1-shop')).toHaveLength(1);

    const ready = await until(
      () => api.list<Workload>('apps/v1', 'Deployment', 'fw-drill-1-shop'),
      (l) => l.items.every((d) => (d.status?.readyReplicas ?? 0) === d.spec?.replicas),
    );
    for (const d of ready.items) {
      expect(d.status?.availableReplicas).toBe(2);
      expect(d.status?.conditions?.find((c) => c.type === 'Available')?.status).toBe('True');
    }
    const sts = await until(
      () => api.list<Workload>('apps/v1', 'StatefulSet', 'fw-drill-1-shop'),
      (l) => l.items.every((s) => s.status?.readyReplicas === 1),
    );
    expect(sts.items[0]?.status?.availableReplicas).toBe(1);
  });

  it('skips objects that already exist, with a warning each', async () => {
    const api = objectApi(prod);
    await api.create(
      restore('drill-1-again', {
        backupName: 'nightly-1',
        includedNamespaces: ['shop'],
        namespaceMapping: { shop: 'fw-drill-1-shop' },
        includeClusterResources: false,
      }),
    );
    expect((await settle(api, 'Restore', 'drill-1-again')).status).toMatchObject({
      phase: 'Completed',
      warnings: 4,
      progress: { totalItems: 5, itemsRestored: 5 },
    });
  });

  it('restores on a drill cluster that shares the bucket, syncing the Backup first', async () => {
    const api = objectApi(drill);
    expect(drill.objects('velero.io/v1', 'Backup', 'velero')).toEqual([]);
    await api.create(
      restore('remote-drill', {
        backupName: 'nightly-1',
        includedNamespaces: ['shop', 'billing'],
        namespaceMapping: { shop: 'fw-drill-r-shop', billing: 'fw-drill-r-billing' },
        includeClusterResources: false,
      }),
    );
    const done = await settle(api, 'Restore', 'remote-drill');
    expect(done.status).toMatchObject({ phase: 'Completed', progress: { totalItems: 8, itemsRestored: 8 } });
    const synced = await readVelero(api, 'Backup', 'nightly-1');
    expect(synced.status?.phase).toBe('Completed');
    expect(synced.spec?.storageLocation).toBe('prod-eu-backups');
    expect(synced.metadata?.labels?.['velero.io/storage-location']).toBe('prod-eu-backups');
    expect(drill.objects('apps/v1', 'Deployment', 'fw-drill-r-shop').map((d) => d.metadata.name)).toEqual([
      'api',
      'web',
      'worker',
    ]);
    expect(drill.objects('apps/v1', 'StatefulSet', 'fw-drill-r-billing')).toHaveLength(1);
    // Nothing leaked into the source cluster.
    expect(prod.objects('apps/v1', 'Deployment', 'fw-drill-r-shop')).toEqual([]);
  });

  it('fails validation for an unknown or unfinished backup', async () => {
    const api = objectApi(prod);
    await api.create(restore('from-missing', { backupName: 'missing' }));
    expect((await settle(api, 'Restore', 'from-missing')).status).toMatchObject({
      phase: 'FailedValidation',
      validationErrors: ['Error retrieving backup: backups.velero.io "missing" not found'],
    });
    await api.create(restore('from-invalid', { backupName: 'to-cold' }));
    const invalid = await settle(api, 'Restore', 'from-invalid');
    expect(invalid.status?.phase).toBe('FailedValidation');
    expect(invalid.status?.validationErrors?.[0]).toContain('FailedValidation');
  });

  it('simulates PartiallyFailed (half the objects) and Failed restores', async () => {
    const api = objectApi(prod);
    prod.velero!.config.failRestores = 'PartiallyFailed';
    await api.create(
      restore('drill-partial', {
        backupName: 'nightly-1',
        includedNamespaces: ['shop'],
        namespaceMapping: { shop: 'fw-drill-p-shop' },
        includeClusterResources: false,
      }),
    );
    expect((await settle(api, 'Restore', 'drill-partial')).status).toMatchObject({
      phase: 'PartiallyFailed',
      errors: 2,
      progress: { totalItems: 5, itemsRestored: 3 },
    });
    const restored =
      prod.objects('apps/v1', 'Deployment', 'fw-drill-p-shop').length +
      prod.objects('apps/v1', 'StatefulSet', 'fw-drill-p-shop').length;
    expect(restored).toBe(2);

    prod.velero!.config.failRestores = 'Failed';
    await api.create(
      restore('drill-failed', {
        backupName: 'nightly-1',
        includedNamespaces: ['shop'],
        namespaceMapping: { shop: 'fw-drill-f-shop' },
        includeClusterResources: false,
      }),
    );
    expect((await settle(api, 'Restore', 'drill-failed')).status).toMatchObject({
      phase: 'Failed',
      failureReason: expect.stringContaining('simulated'),
    });
    expect(prod.object('v1', 'Namespace', 'fw-drill-f-shop')).toBeUndefined();
  });
});

describe('Velero housekeeping', () => {
  it('installs Velero at run time; another prefix of the same bucket sees no backups', async () => {
    const api = objectApi(bare);
    expect((await raw('GET', `${bare.server}/apis/velero.io/v1`)).status).toBe(404);
    bare.installVelero({
      locations: [{ name: 'default', provider: 'aws', bucket: 'fw-backups-eu', prefix: 'clusters/other' }],
    });
    expect((await raw('GET', `${bare.server}/apis/velero.io/v1`)).status).toBe(200);
    await api.create(restore('wrong-prefix', { backupName: 'nightly-1' }));
    expect((await settle(api, 'Restore', 'wrong-prefix')).status).toMatchObject({
      phase: 'FailedValidation',
      validationErrors: ['Error retrieving backup: backups.velero.io "nightly-1" not found'],
    });
    expect(bare.velero?.syncBackups()).toEqual([]);
  });

  it('validates Schedules and creates their Backups', async () => {
    const api = objectApi(prod);
    const schedule = (name: string, cron: string): VeleroObject => ({
      apiVersion: 'velero.io/v1',
      kind: 'Schedule',
      metadata: { name, namespace: 'velero' },
      spec: { schedule: cron, template: { includedNamespaces: ['billing'], ttl: '24h0m0s' } },
    });
    await api.create(schedule('nightly', '0 2 * * *'));
    await api.create(schedule('broken', 'every night'));
    const read = (name: string) =>
      api.read<VeleroObject>({
        apiVersion: 'velero.io/v1',
        kind: 'Schedule',
        metadata: { name, namespace: 'velero' },
      });
    expect(
      (
        await until(
          () => read('nightly'),
          (o) => Boolean(o.status?.phase),
        )
      ).status?.phase,
    ).toBe('Enabled');
    expect(
      (
        await until(
          () => read('broken'),
          (o) => Boolean(o.status?.phase),
        )
      ).status,
    ).toMatchObject({
      phase: 'FailedValidation',
      validationErrors: ['invalid schedule: expected exactly 5 fields, found 2: [every night]'],
    });
    const created = prod.velero!.triggerSchedule('nightly');
    expect(created.metadata.name).toMatch(/^nightly-\d{14}$/);
    expect(created.metadata.labels?.['velero.io/schedule-name']).toBe('nightly');
    const done = await settle(api, 'Backup', created.metadata.name ?? '');
    expect(done.status).toMatchObject({ phase: 'Completed', progress: { totalItems: 3 } });
    expect(done.spec?.ttl).toBe('24h0m0s');
  });

  it('answers ServerStatusRequests and processes DeleteBackupRequests', async () => {
    const api = objectApi(prod);
    await api.create({
      apiVersion: 'velero.io/v1',
      kind: 'ServerStatusRequest',
      metadata: { name: 'status-1', namespace: 'velero' },
      spec: {},
    });
    const ssr = await until(
      () =>
        api.read<
          VeleroObject & { status?: { serverVersion?: string; plugins?: { name: string; kind: string }[] } }
        >({
          apiVersion: 'velero.io/v1',
          kind: 'ServerStatusRequest',
          metadata: { name: 'status-1', namespace: 'velero' },
        }),
      (o) => o.status?.phase === 'Processed',
    );
    expect(ssr.status?.serverVersion).toBe('v1.16.1');
    expect(ssr.status?.plugins).toContainEqual({ name: 'velero.io/aws', kind: 'ObjectStore' });

    const location = { provider: 'aws', bucket: 'fw-backups-eu', prefix: 'clusters/prod-eu' };
    expect(fleet.world.get(location, 'shop-only')).toBeDefined();
    await api.create({
      apiVersion: 'velero.io/v1',
      kind: 'DeleteBackupRequest',
      metadata: { name: 'delete-shop-only', namespace: 'velero' },
      spec: { backupName: 'shop-only' },
    });
    await until(
      () => api.list<VeleroObject>('velero.io/v1', 'Backup', 'velero'),
      (l) => !l.items.some((b) => b.metadata?.name === 'shop-only'),
    );
    expect(fleet.world.get(location, 'shop-only')).toBeUndefined();
  });

  it('runs Velero in a one-cluster server too', async () => {
    const single = await startKubeFake({
      name: 'solo',
      certDir,
      velero: { locations: [{ name: 'default', provider: 'gcp', bucket: 'fw-solo' }] },
    });
    try {
      single.cluster.seedWorkloads('app', { deployments: 1 });
      const kc = new KubeConfig();
      kc.loadFromOptions({
        clusters: [{ name: 'c', server: single.url, caData: Buffer.from(single.ca).toString('base64') }],
        users: [{ name: 'u', token: 'sandbox-token' }],
        contexts: [{ name: 'ctx', cluster: 'c', user: 'u' }],
        currentContext: 'ctx',
      });
      const api = KubernetesObjectApi.makeApiClient(kc);
      await api.create(backup('solo-1', { includedNamespaces: ['app'] }));
      expect((await settle(api, 'Backup', 'solo-1')).status).toMatchObject({
        phase: 'Completed',
        progress: { totalItems: 2, itemsBackedUp: 2 },
      });
      expect(single.world.get({ provider: 'gcp', bucket: 'fw-solo' }, 'solo-1')?.items).toHaveLength(2);
    } finally {
      await single.stop();
    }
  });
});

describe('faults', () => {
  it('injects a 503 into one operation of one cluster', async () => {
    faults.add({
      cloud: 'kube',
      operation: 'create:velero.io/v1/backups',
      scope: 'prod-eu',
      fault: { kind: 'error', status: 503 },
      times: 1,
    });
    log.clear();
    const api = objectApi(prod);
    const err = await apiError(api.create(backup('flaky', { includedNamespaces: ['billing'] })));
    expect(err.code).toBe(503);
    expect(err.body).toMatchObject({ kind: 'Status', reason: 'ServiceUnavailable', code: 503 });
    expect(log.entries).toContainEqual(
      expect.objectContaining({
        operation: 'create:velero.io/v1/backups',
        scope: 'prod-eu',
        status: 503,
        fault: 'error',
      }),
    );
    await api.create(backup('flaky', { includedNamespaces: ['billing'] }));
    expect((await settle(api, 'Backup', 'flaky')).status?.phase).toBe('Completed');
  });

  it('never answers a request hit by a timeout fault', async () => {
    faults.add({
      cloud: 'kube',
      operation: 'list:apps/v1/deployments',
      scope: 'prod-eu',
      fault: { kind: 'timeout' },
      times: 1,
    });
    log.clear();
    const call = raw('GET', `${prod.server}/apis/apps/v1/namespaces/shop/deployments`, {
      token: EKS_TOKEN,
      signal: AbortSignal.timeout(200),
    });
    await expect(call).rejects.toThrow();
    expect(log.entries).toEqual([
      expect.objectContaining({ operation: 'list:apps/v1/deployments', scope: 'prod-eu', fault: 'timeout' }),
    ]);
    const after = await raw('GET', `${prod.server}/apis/apps/v1/namespaces/shop/deployments`, {
      token: EKS_TOKEN,
    });
    expect(after.status).toBe(200);
  });
});
