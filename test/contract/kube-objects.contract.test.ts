/**
 * The fake API server's objects answer in the documented shapes: `meta/v1` Status for
 * every error, APIResourceList and APIGroupList discovery documents, `<Kind>List` lists,
 * object metadata as the API server sets it, and Velero objects whose field names and
 * nesting match Velero's API reference (fixtures under test/fixtures/velero, placeholder
 * values). Read raw where the client would hide the body, and through the client where it
 * parses it.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  KubeConfig,
  type KubernetesObject,
  KubernetesObjectApi,
  PatchStrategy,
} from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type KubeCluster, type KubeFleetFake, startKubeFleetFake } from '../sandbox/kube-fake.ts';

const certDir = mkdtempSync(join(tmpdir(), 'fleetward-kube-objects-'));
let fleet: KubeFleetFake;
let velero: KubeCluster;
let bare: KubeCluster;

const TIMESTAMP = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/;
const UID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const CR_VERBS = ['delete', 'deletecollection', 'get', 'list', 'patch', 'create', 'update', 'watch'];

type Json = Record<string, unknown>;

function fixture(name: string): Json {
  const doc = JSON.parse(
    readFileSync(new URL(`../fixtures/velero/${name}.json`, import.meta.url), 'utf8'),
  ) as Json;
  return doc.object as Json;
}

/** Maps are leaves: their keys are data, not schema. */
const MAP_FIELDS = new Set([
  'labels',
  'annotations',
  'config',
  'namespaceMapping',
  'matchLabels',
  'orderedResources',
  'uploaderConfig',
]);

/** Dotted paths of every field (arrays and maps are leaves). */
function keyPaths(value: unknown, prefix = ''): string[] {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return [prefix];
  const out: string[] = [];
  for (const [k, v] of Object.entries(value)) {
    const path = prefix ? `${prefix}.${k}` : k;
    if (MAP_FIELDS.has(k) || typeof v !== 'object' || v === null || Array.isArray(v)) out.push(path);
    else out.push(...keyPaths(v, path));
  }
  return out;
}

function schemaOf(obj: Json, part: 'spec' | 'status'): string[] {
  return keyPaths(obj[part], part);
}

function call(
  method: string,
  cluster: KubeCluster,
  path: string,
  body?: unknown,
  contentType = 'application/json',
  token = 'sandbox-token',
): Promise<{ status: number; body: Json }> {
  return new Promise((resolve, reject) => {
    const req = request(
      `${cluster.server}${path}`,
      {
        method,
        ca: fleet.ca,
        headers: {
          authorization: `Bearer ${token}`,
          ...(body === undefined ? {} : { 'content-type': contentType }),
        },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => {
          text += d;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as Json }));
      },
    );
    req.on('error', reject);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

const get = (cluster: KubeCluster, path: string) => call('GET', cluster, path);
const post = (cluster: KubeCluster, path: string, body: unknown) => call('POST', cluster, path, body);

async function until(read: () => Promise<Json>, done: (o: Json) => boolean): Promise<Json> {
  const deadline = Date.now() + 3_000;
  for (;;) {
    const value = await read();
    if (done(value)) return value;
    if (Date.now() > deadline) throw new Error(`not reached: ${JSON.stringify(value)}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const phaseOf = (o: Json) => (o.status as { phase?: string } | undefined)?.phase ?? '';

function objectApi(cluster: KubeCluster): KubernetesObjectApi {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [
      {
        name: 'c',
        server: cluster.server,
        caData: Buffer.from(fleet.ca).toString('base64'),
        skipTLSVerify: false,
      },
    ],
    users: [{ name: 'u', token: 'sandbox-token' }],
    contexts: [{ name: 'ctx', cluster: 'c', user: 'u' }],
    currentContext: 'ctx',
  });
  return KubernetesObjectApi.makeApiClient(kc);
}

beforeAll(async () => {
  fleet = await startKubeFleetFake({ certDir });
  velero = fleet.addCluster({
    key: 'contract-velero',
    namespaceTerminationMs: 60_000,
    velero: {
      locations: [
        { name: 'default', provider: 'gcp', bucket: 'example-bucket', prefix: 'example-prefix' },
        {
          name: 'broken',
          provider: 'azure',
          bucket: 'example-container',
          config: { storageAccount: 'examplestorage' },
          available: false,
        },
      ],
      backupDelayMs: 10,
      restoreDelayMs: 10,
    },
  });
  bare = fleet.addCluster({ key: 'contract-bare' });
  velero.seedWorkloads('example', { deployments: 2, statefulsets: 1 });
});

afterAll(async () => {
  await fleet?.stop();
  rmSync(certDir, { recursive: true, force: true });
});

describe('Status objects', () => {
  it('404 for a missing object names the resource, group and kind', async () => {
    const res = await get(velero, '/apis/velero.io/v1/namespaces/velero/backups/nope');
    expect(res.status).toBe(404);
    expect(res.body).toEqual({
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message: 'backups.velero.io "nope" not found',
      reason: 'NotFound',
      details: { name: 'nope', group: 'velero.io', kind: 'backups' },
      code: 404,
    });
  });

  it('404 for a create in a namespace that does not exist names the namespace', async () => {
    const res = await post(velero, '/api/v1/namespaces/ghost/configmaps', { metadata: { name: 'x' } });
    expect(res.status).toBe(404);
    expect(res.body).toEqual({
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message: 'namespaces "ghost" not found',
      reason: 'NotFound',
      details: { name: 'ghost', kind: 'namespaces' },
      code: 404,
    });
  });

  it('404 with empty details for a path nothing serves', async () => {
    for (const path of ['/apis/velero.io/v2', '/apis/example.com/v1/widgets', '/api/v1/pods-nope']) {
      const res = await get(velero, path);
      expect(res.status).toBe(404);
      expect(res.body).toEqual({
        kind: 'Status',
        apiVersion: 'v1',
        metadata: {},
        status: 'Failure',
        message: 'the server could not find the requested resource',
        reason: 'NotFound',
        details: {},
        code: 404,
      });
    }
  });

  it('409 AlreadyExists on a duplicate name', async () => {
    const body = {
      apiVersion: 'velero.io/v1',
      kind: 'Schedule',
      metadata: { name: 'daily' },
      spec: { schedule: '0 2 * * *' },
    };
    expect((await post(velero, '/apis/velero.io/v1/namespaces/velero/schedules', body)).status).toBe(201);
    const res = await post(velero, '/apis/velero.io/v1/namespaces/velero/schedules', body);
    expect(res.status).toBe(409);
    expect(res.body).toEqual({
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message: 'schedules.velero.io "daily" already exists',
      reason: 'AlreadyExists',
      details: { name: 'daily', group: 'velero.io', kind: 'schedules' },
      code: 409,
    });
  });

  it('401 Unauthorized for a wrong token', async () => {
    const res = await call('GET', velero, '/api/v1/namespaces', undefined, undefined, 'expired');
    expect(res.status).toBe(401);
    expect(res.body).toEqual({
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message: 'Unauthorized',
      reason: 'Unauthorized',
      code: 401,
    });
  });

  it('422 Invalid with causes for a missing name or a bad label', async () => {
    const missing = await post(velero, '/apis/velero.io/v1/namespaces/velero/backups', { spec: {} });
    expect(missing.status).toBe(422);
    expect(missing.body).toEqual({
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message:
        'Backup.velero.io "" is invalid: metadata.name: Required value: name or generateName is required',
      reason: 'Invalid',
      details: {
        name: '',
        group: 'velero.io',
        kind: 'Backup',
        causes: [
          {
            reason: 'FieldValueRequired',
            message: 'Required value: name or generateName is required',
            field: 'metadata.name',
          },
        ],
      },
      code: 422,
    });
    const label = await post(velero, '/api/v1/namespaces', {
      metadata: { name: 'labelled', labels: { run: 'not valid!' } },
    });
    expect(label.status).toBe(422);
    expect(label.body).toMatchObject({
      reason: 'Invalid',
      details: {
        name: 'labelled',
        kind: 'Namespace',
        causes: [{ reason: 'FieldValueInvalid', field: 'metadata.labels' }],
      },
    });
  });

  it('400 BadRequest when the body names another namespace than the path', async () => {
    const res = await post(velero, '/api/v1/namespaces/example/configmaps', {
      metadata: { name: 'x', namespace: 'default' },
    });
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({
      kind: 'Status',
      status: 'Failure',
      reason: 'BadRequest',
      message: 'the namespace of the provided object does not match the namespace sent on the request',
      code: 400,
    });
  });

  it('403 Forbidden for new content in a Terminating namespace', async () => {
    await post(velero, '/api/v1/namespaces', { metadata: { name: 'leaving' } });
    const deleted = await call('DELETE', velero, '/api/v1/namespaces/leaving');
    expect(deleted.status).toBe(200);
    expect(deleted.body).toMatchObject({
      kind: 'Namespace',
      metadata: { name: 'leaving', deletionTimestamp: expect.stringMatching(TIMESTAMP) },
      status: { phase: 'Terminating' },
    });
    const res = await post(velero, '/api/v1/namespaces/leaving/configmaps', { metadata: { name: 'x' } });
    expect(res.status).toBe(403);
    expect(res.body).toMatchObject({
      reason: 'Forbidden',
      message:
        'configmaps "x" is forbidden: unable to create new content in namespace leaving because it is being terminated',
      details: { name: 'x', kind: 'configmaps', causes: [{ reason: 'NamespaceTerminating' }] },
    });
  });

  it('Success Status when a built-in object is deleted', async () => {
    const created = await post(velero, '/api/v1/namespaces/example/configmaps', {
      metadata: { name: 'short-lived' },
    });
    const res = await call('DELETE', velero, '/api/v1/namespaces/example/configmaps/short-lived');
    expect(res.body).toEqual({
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Success',
      details: { name: 'short-lived', kind: 'configmaps', uid: (created.body.metadata as Json).uid },
    });
  });
});

describe('discovery documents', () => {
  it('APIResourceList for velero.io/v1', async () => {
    const res = await get(velero, '/apis/velero.io/v1');
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      kind: 'APIResourceList',
      apiVersion: 'v1',
      groupVersion: 'velero.io/v1',
    });
    const resources = res.body.resources as Json[];
    expect(resources.map((r) => r.name)).toEqual([
      'backuprepositories',
      'backups',
      'backupstoragelocations',
      'deletebackuprequests',
      'downloadrequests',
      'podvolumebackups',
      'podvolumerestores',
      'restores',
      'schedules',
      'serverstatusrequests',
      'volumesnapshotlocations',
    ]);
    const byName = (n: string) => resources.find((r) => r.name === n);
    expect(byName('backups')).toEqual({
      name: 'backups',
      singularName: 'backup',
      namespaced: true,
      kind: 'Backup',
      verbs: CR_VERBS,
      storageVersionHash: expect.stringMatching(/^[A-Za-z0-9+/]{11}=$/),
    });
    expect(byName('restores')).toMatchObject({ singularName: 'restore', namespaced: true, kind: 'Restore' });
    expect(byName('schedules')).toMatchObject({
      singularName: 'schedule',
      namespaced: true,
      kind: 'Schedule',
    });
    expect(byName('backupstoragelocations')).toMatchObject({
      singularName: 'backupstoragelocation',
      namespaced: true,
      kind: 'BackupStorageLocation',
      shortNames: ['bsl'],
    });
  });

  it('APIResourceLists of the built-in groups, with scope and status subresources', async () => {
    const core = (await get(velero, '/api/v1')).body;
    expect(core).toMatchObject({ kind: 'APIResourceList', groupVersion: 'v1' });
    const coreResources = core.resources as Json[];
    expect(coreResources.find((r) => r.name === 'namespaces')).toMatchObject({
      singularName: 'namespace',
      namespaced: false,
      kind: 'Namespace',
      shortNames: ['ns'],
    });
    expect(coreResources.find((r) => r.name === 'namespaces/status')).toEqual({
      name: 'namespaces/status',
      singularName: '',
      namespaced: false,
      kind: 'Namespace',
      verbs: ['get', 'patch', 'update'],
    });
    const apps = (await get(velero, '/apis/apps/v1')).body.resources as Json[];
    expect(apps.map((r) => r.name)).toEqual([
      'deployments',
      'deployments/status',
      'statefulsets',
      'statefulsets/status',
    ]);
    expect(apps[0]).toMatchObject({
      namespaced: true,
      kind: 'Deployment',
      shortNames: ['deploy'],
      categories: ['all'],
    });
    const ext = (await get(velero, '/apis/apiextensions.k8s.io/v1')).body.resources as Json[];
    expect(ext[0]).toMatchObject({
      name: 'customresourcedefinitions',
      namespaced: false,
      kind: 'CustomResourceDefinition',
      shortNames: ['crd', 'crds'],
    });
  });

  it('APIGroupList lists velero.io only where its CRDs are installed', async () => {
    const list = (await get(velero, '/apis')).body;
    expect(list.kind).toBe('APIGroupList');
    const v = (list.groups as Json[]).find((g) => g.name === 'velero.io');
    expect(v).toEqual({
      name: 'velero.io',
      versions: [{ groupVersion: 'velero.io/v1', version: 'v1' }],
      preferredVersion: { groupVersion: 'velero.io/v1', version: 'v1' },
    });
    expect((await get(velero, '/apis/velero.io')).body).toMatchObject({
      kind: 'APIGroup',
      apiVersion: 'v1',
      name: 'velero.io',
    });
    const bareGroups = ((await get(bare, '/apis')).body.groups as Json[]).map((g) => g.name);
    expect(bareGroups).toEqual(['apps', 'batch', 'apiextensions.k8s.io']);
    expect((await get(bare, '/apis/velero.io/v1')).status).toBe(404);
    expect((await get(bare, '/apis/velero.io')).status).toBe(404);
  });

  it('the Velero CRDs are established CustomResourceDefinitions', async () => {
    const crd = (
      await get(velero, '/apis/apiextensions.k8s.io/v1/customresourcedefinitions/backups.velero.io')
    ).body;
    expect(crd).toMatchObject({
      apiVersion: 'apiextensions.k8s.io/v1',
      kind: 'CustomResourceDefinition',
      metadata: { name: 'backups.velero.io' },
      spec: {
        group: 'velero.io',
        names: { kind: 'Backup', listKind: 'BackupList', plural: 'backups', singular: 'backup' },
        scope: 'Namespaced',
        versions: [{ name: 'v1', served: true, storage: true }],
      },
      status: { storedVersions: ['v1'] },
    });
    const conditions = (crd.status as { conditions: Json[] }).conditions;
    expect(conditions).toContainEqual(expect.objectContaining({ type: 'Established', status: 'True' }));
  });
});

describe('Velero objects match the API reference', () => {
  it('a BackupStorageLocation', async () => {
    const documented = fixture('backupstoragelocation');
    const bsl = (await get(velero, '/apis/velero.io/v1/namespaces/velero/backupstoragelocations/default'))
      .body;
    expect(bsl).toMatchObject({
      apiVersion: 'velero.io/v1',
      kind: 'BackupStorageLocation',
      metadata: { namespace: 'velero' },
    });
    expect(documented.spec).toBeDefined();
    for (const part of ['spec', 'status'] as const) {
      expect(schemaOf(documented, part)).toEqual(expect.arrayContaining(schemaOf(bsl, part)));
    }
    expect(bsl.spec).toEqual({
      provider: 'gcp',
      objectStorage: { bucket: 'example-bucket', prefix: 'example-prefix' },
      default: true,
    });
    expect(bsl.status).toEqual({ phase: 'Available', lastValidationTime: expect.stringMatching(TIMESTAMP) });
    const broken = (await get(velero, '/apis/velero.io/v1/namespaces/velero/backupstoragelocations/broken'))
      .body;
    expect(schemaOf(documented, 'status')).toEqual(expect.arrayContaining(schemaOf(broken, 'status')));
    expect(broken.status).toMatchObject({ phase: 'Unavailable', message: expect.stringContaining('broken') });
  });

  it('a Backup, as created and as completed', async () => {
    const documented = fixture('backup');
    const created = await post(velero, '/apis/velero.io/v1/namespaces/velero/backups', {
      apiVersion: 'velero.io/v1',
      kind: 'Backup',
      metadata: { name: 'contract-backup', labels: { 'app.kubernetes.io/managed-by': 'fleetward' } },
      spec: {
        includedNamespaces: ['example'],
        storageLocation: 'default',
        ttl: '168h0m0s',
        snapshotVolumes: false,
        defaultVolumesToFsBackup: false,
      },
    });
    expect(created.status).toBe(201);
    expect(created.body.metadata).toEqual({
      name: 'contract-backup',
      namespace: 'velero',
      uid: expect.stringMatching(UID),
      resourceVersion: expect.stringMatching(/^\d+$/),
      generation: 1,
      creationTimestamp: expect.stringMatching(TIMESTAMP),
      labels: { 'app.kubernetes.io/managed-by': 'fleetward' },
    });
    const done = await until(
      () => get(velero, '/apis/velero.io/v1/namespaces/velero/backups/contract-backup').then((r) => r.body),
      (o) => phaseOf(o) === 'Completed',
    );
    for (const part of ['spec', 'status'] as const) {
      expect(schemaOf(documented, part)).toEqual(expect.arrayContaining(schemaOf(done, part)));
    }
    expect(done.status).toEqual({
      version: 1,
      formatVersion: '1.1.0',
      phase: 'Completed',
      startTimestamp: expect.stringMatching(TIMESTAMP),
      completionTimestamp: expect.stringMatching(TIMESTAMP),
      expiration: expect.stringMatching(TIMESTAMP),
      progress: { totalItems: 4, itemsBackedUp: 4 },
    });
    expect((done.metadata as Json).labels).toEqual({
      'app.kubernetes.io/managed-by': 'fleetward',
      'velero.io/storage-location': 'default',
    });
  });

  it('a Backup that failed validation', async () => {
    const documented = fixture('backup');
    await post(velero, '/apis/velero.io/v1/namespaces/velero/backups', {
      metadata: { name: 'contract-invalid' },
      spec: { storageLocation: 'broken' },
    });
    const done = await until(
      () => get(velero, '/apis/velero.io/v1/namespaces/velero/backups/contract-invalid').then((r) => r.body),
      (o) => phaseOf(o) === 'FailedValidation',
    );
    expect(schemaOf(documented, 'status')).toEqual(expect.arrayContaining(schemaOf(done, 'status')));
    expect(done.status).toEqual({
      version: 1,
      formatVersion: '1.1.0',
      phase: 'FailedValidation',
      validationErrors: [
        "backup can't be created because BackupStorageLocation broken is in Unavailable status.",
      ],
    });
  });

  it('a Restore, as completed', async () => {
    const documented = fixture('restore');
    const created = await post(velero, '/apis/velero.io/v1/namespaces/velero/restores', {
      apiVersion: 'velero.io/v1',
      kind: 'Restore',
      metadata: { name: 'contract-restore' },
      spec: {
        backupName: 'contract-backup',
        includedNamespaces: ['example'],
        namespaceMapping: { example: 'fw-drill-contract-example' },
        includeClusterResources: false,
        restorePVs: false,
        existingResourcePolicy: 'none',
      },
    });
    expect(created.status).toBe(201);
    const done = await until(
      () => get(velero, '/apis/velero.io/v1/namespaces/velero/restores/contract-restore').then((r) => r.body),
      (o) => phaseOf(o) === 'Completed',
    );
    for (const part of ['spec', 'status'] as const) {
      expect(schemaOf(documented, part)).toEqual(expect.arrayContaining(schemaOf(done, part)));
    }
    expect(done.status).toEqual({
      phase: 'Completed',
      startTimestamp: expect.stringMatching(TIMESTAMP),
      completionTimestamp: expect.stringMatching(TIMESTAMP),
      progress: { totalItems: 4, itemsRestored: 4 },
    });
  });
});

describe('lists and metadata', () => {
  it('custom resource lists keep apiVersion and kind on items', async () => {
    const list = (await get(velero, '/apis/velero.io/v1/namespaces/velero/backupstoragelocations')).body;
    expect(list).toMatchObject({
      apiVersion: 'velero.io/v1',
      kind: 'BackupStorageLocationList',
      metadata: { resourceVersion: expect.stringMatching(/^\d+$/) },
    });
    expect((list.items as Json[]).map((i) => [i.apiVersion, i.kind])).toEqual([
      ['velero.io/v1', 'BackupStorageLocation'],
      ['velero.io/v1', 'BackupStorageLocation'],
    ]);
  });

  it('built-in lists leave apiVersion and kind out of items, like a real server', async () => {
    const list = (await get(velero, '/apis/apps/v1/namespaces/example/deployments')).body;
    expect(list).toMatchObject({
      apiVersion: 'apps/v1',
      kind: 'DeploymentList',
      metadata: { resourceVersion: expect.any(String) },
    });
    const items = list.items as Json[];
    expect(items).toHaveLength(2);
    expect(items[0]).not.toHaveProperty('kind');
    expect(items[0]).not.toHaveProperty('apiVersion');
    const namespaces = (await get(velero, '/api/v1/namespaces')).body;
    expect(namespaces).toMatchObject({ apiVersion: 'v1', kind: 'NamespaceList' });
    expect((namespaces.items as Json[]).map((n) => (n.metadata as Json).name)).toEqual(
      expect.arrayContaining([
        'default',
        'kube-system',
        'kube-public',
        'kube-node-lease',
        'velero',
        'example',
      ]),
    );
  });

  it('pages with limit and continue', async () => {
    const first = (await get(velero, '/api/v1/namespaces?limit=2')).body;
    const meta = first.metadata as { continue?: string; remainingItemCount?: number };
    expect(first.items).toHaveLength(2);
    expect(meta.continue).toEqual(expect.any(String));
    expect(meta.remainingItemCount).toBeGreaterThan(0);
    const next = (
      await get(velero, `/api/v1/namespaces?limit=2&continue=${encodeURIComponent(meta.continue ?? '')}`)
    ).body;
    const names = (l: Json) => (l.items as Json[]).map((n) => (n.metadata as Json).name);
    expect(names(next)).not.toContain(names(first)[0]);
  });

  it('generateName, dryRun=All and merge patches behave like the API server', async () => {
    const generated = await post(velero, '/api/v1/namespaces/example/configmaps', {
      metadata: { generateName: 'fleetward-run-' },
      data: { a: '1' },
    });
    expect((generated.body.metadata as Json).name).toMatch(/^fleetward-run-[a-z0-9]{5}$/);

    const dry = await post(velero, '/api/v1/namespaces/example/configmaps?dryRun=All', {
      metadata: { name: 'dry' },
    });
    expect(dry.status).toBe(201);
    expect((await get(velero, '/api/v1/namespaces/example/configmaps/dry')).status).toBe(404);

    const api = objectApi(velero);
    const before = await api.read<KubernetesObject & { spec?: { replicas?: number } }>({
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'api', namespace: 'example' },
    });
    const labelled = await api.patch<KubernetesObject>(
      {
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        metadata: { name: 'api', namespace: 'example', labels: { tier: 'gold' } },
      },
      undefined,
      undefined,
      undefined,
      undefined,
      PatchStrategy.MergePatch,
    );
    expect(labelled.metadata?.labels?.tier).toBe('gold');
    expect(labelled.metadata?.generation).toBe(before.metadata?.generation);
    expect(Number(labelled.metadata?.resourceVersion)).toBeGreaterThan(
      Number(before.metadata?.resourceVersion),
    );
    const scaled = await call(
      'PATCH',
      velero,
      '/apis/apps/v1/namespaces/example/deployments/api',
      { spec: { replicas: 5 } },
      'application/merge-patch+json',
    );
    expect((scaled.body.metadata as Json).generation).toBe((before.metadata?.generation ?? 0) + 1);
    const stale = await call('PUT', velero, '/apis/apps/v1/namespaces/example/deployments/api', {
      ...before,
      metadata: { ...before.metadata, creationTimestamp: undefined },
    });
    expect(stale.status).toBe(409);
    expect(stale.body).toMatchObject({ kind: 'Status', reason: 'Conflict', code: 409 });
  });
});
