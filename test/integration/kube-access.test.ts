/**
 * Kubernetes API access per cloud, end to end on loopback: the fleet fake (many clusters on
 * one HTTPS server under `/clusters/<key>`), moto behind the recording proxy for EKS
 * (AssumeRole, DescribeCluster, tokens checked by an independent SigV4 verifier), the GKE
 * fake (GetCluster) with a token file, the ARM fake (listClusterUserCredential) for AKS,
 * and a kubeconfig file.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateClusterCommand, EKSClient } from '@aws-sdk/client-eks';
import { AssumeRoleCommand, STSClient } from '@aws-sdk/client-sts';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { FleetConfig } from '../../shared/config/schema.ts';
import { createKubeAccess } from '../../shared/kube/access.ts';
import type { Cluster } from '../../shared/model.ts';
import type { KubeAccess, KubeApi, KubeObject, Log } from '../../shared/ports.ts';
import { CloudApiError, ConfigError, errorInfo } from '../../shared/runtime/errors.ts';
import { type ArmFake, aksCluster, managedClusterId, startArmFake } from '../sandbox/arm-fake.ts';
import { type AwsProxy, startAwsProxy } from '../sandbox/aws-proxy.ts';
import { verifyEksToken } from '../sandbox/eks-token.ts';
import { type Fault, FaultInjector, RequestLog } from '../sandbox/faults.ts';
import { type GkeFake, gkeCluster, startGkeFake } from '../sandbox/gke-fake.ts';
import { type KubeFleetFake, startKubeFleetFake } from '../sandbox/kube-fake.ts';
import { writeKubeconfig } from '../sandbox/kubeconfig.ts';
import { type MotoServer, startMoto } from '../sandbox/moto.ts';

const ACCOUNT = '111122223333';
const ROLE = `arn:aws:iam::${ACCOUNT}:role/fleetward-kube`;
const REGION = 'eu-central-1';
const PROJECT = 'fleet-kube-test';
const SUBSCRIPTION = '11111111-2222-3333-4444-555555555555';
const RG = 'rg-fleet';
/** Placeholder bearer tokens (never real credentials). */
const ARM_TOKEN = 'arm-placeholder-token';
const AKS_USER_TOKEN = 'aks-user-placeholder-token';
const KC_TOKEN = 'kubeconfig-placeholder-token';
const TIMEOUT_MS = 600;

// --- the world ---

let dir: string;
let fleet: KubeFleetFake;
let moto: MotoServer;
let proxy: AwsProxy;
let gke: GkeFake;
let arm: ArmFake;
const faults = new FaultInjector();
const log = new RequestLog();
const gkeLog = new RequestLog();

/** The verifier's and the signer's clock (EKS tokens expire 60 s after signing). */
let skewMs = 0;
const clock = { now: () => new Date(Date.now() + skewMs) };
/** Secret access keys of the credentials AssumeRole handed out, so the verifier can check signatures. */
const secrets = new Map<string, string>();
/** Every bearer token a fake cluster was shown. */
const presented = new Set<string>();
let gkeToken = 'gke-placeholder-token-1';

/** Log entries the code under test wrote (the token check reads them all). */
const lines: { level: string; message: string; extra: unknown[] }[] = [];
const logger: Log = {
  debug: (message, ...extra) => lines.push({ level: 'debug', message, extra }),
  info: (message, ...extra) => lines.push({ level: 'info', message, extra }),
  warn: (message, ...extra) => lines.push({ level: 'warn', message, extra }),
  error: (message, ...extra) => lines.push({ level: 'error', message, extra }),
};

function cluster(
  cloud: Cluster['cloud'],
  scope: string,
  region: string,
  name: string,
  extra: Partial<Cluster> = {},
) {
  const id = cloud === 'azure' ? `azure/${scope}/${RG}/${name}` : `${cloud}/${scope}/${region}/${name}`;
  const c: Cluster = {
    id,
    cloud,
    scope,
    region,
    name,
    kubernetesVersion: '1.33',
    endpoint: null,
    endpointAccess: 'public',
    secretsEncryptionKey: null,
    auditLogging: null,
    tags: {},
    status: 'running',
    providerStatus: null,
    createdAt: null,
    country: null,
    jurisdiction: 'unassigned',
    ...(cloud === 'azure' ? { resourceGroup: RG } : {}),
    ...extra,
  };
  return c;
}

const EKS_DIRECT = cluster('aws', ACCOUNT, REGION, 'eks-direct');
const EKS_OVER = cluster('aws', ACCOUNT, REGION, 'eks-over');
const GKE_DIRECT = cluster('gcp', PROJECT, 'europe-west1', 'gke-direct');
/** In a project the GKE fake does not know: connecting works only without a GetCluster. */
const GKE_OVER = cluster('gcp', 'fleet-unknown-project', 'europe-west1', 'gke-over');
const AKS_USER = cluster('azure', SUBSCRIPTION, 'westeurope', 'aks-user');
const AKS_AAD = cluster('azure', SUBSCRIPTION, 'westeurope', 'aks-aad');
const KC = cluster('kubeconfig', 'sandbox', 'eu-west-1', 'kc-ctx');

/** The fleet fake key of each cluster. */
const KEY: Record<string, string> = {
  [EKS_DIRECT.id]: 'eks-direct',
  [EKS_OVER.id]: 'eks-over',
  [GKE_DIRECT.id]: 'gke-direct',
  [GKE_OVER.id]: 'gke-over',
  [AKS_USER.id]: 'aks-user',
  [AKS_AAD.id]: 'aks-aad',
  [KC.id]: 'kc',
};
const keyOf = (c: Cluster) => KEY[c.id]!;

function config(overrides: { azureAuth?: 'aad' | 'cluster-user-credentials'; concurrency?: number } = {}) {
  return FleetConfig.parse({
    version: 1,
    clouds: {
      aws: {
        endpoint: proxy.url,
        homeRegion: 'us-east-1',
        timeoutMs: 5_000,
        maxAttempts: 2,
        accounts: [{ id: ACCOUNT, roleArn: ROLE, regions: [REGION] }],
      },
      gcp: {
        endpoint: gke.endpoint,
        insecure: true,
        timeoutMs: 5_000,
        maxAttempts: 2,
        projects: [{ id: PROJECT }],
      },
      azure: {
        endpoint: arm.endpoint,
        caFile: arm.caFile,
        credential: { type: 'access-token', file: join(dir, 'arm-token') },
        timeoutMs: 5_000,
        maxAttempts: 2,
        subscriptions: [{ id: SUBSCRIPTION }],
      },
      kubeconfig: [
        {
          alias: 'sandbox',
          file: join(dir, 'kubeconfig'),
          contexts: [{ name: 'kc-ctx', region: 'eu-west-1' }],
        },
      ],
    },
    jurisdictions: {},
    kubeAccess: {
      concurrency: overrides.concurrency ?? 8,
      timeoutMs: TIMEOUT_MS,
      maxAttempts: 3,
      gcp: { auth: 'token-file', file: join(dir, 'gke-token') },
      azure: { auth: overrides.azureAuth ?? 'cluster-user-credentials' },
      overrides: [
        { cluster: EKS_OVER.id, endpoint: fleet.cluster('eks-over').server, caFile: fleet.caFile },
        { cluster: GKE_OVER.id, endpoint: fleet.cluster('gke-over').server, caFile: fleet.caFile },
      ],
    },
  });
}

function access(overrides: Parameters<typeof config>[0] = {}): KubeAccess {
  return createKubeAccess(config(overrides), { logger, clock }, { baseDelayMs: 20 });
}

/** A kubeconfig as AKS returns it: token user (local accounts), or exec user (Entra ID). */
function aksKubeconfig(server: string, ca: string, user: Record<string, unknown>): string {
  return stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [
      { name: 'aks', cluster: { server, 'certificate-authority-data': Buffer.from(ca).toString('base64') } },
    ],
    users: [{ name: 'clusterUser_rg-fleet_aks', user }],
    contexts: [{ name: 'aks', context: { cluster: 'aks', user: 'clusterUser_rg-fleet_aks' } }],
    'current-context': 'aks',
  });
}

/** Accepts `accept(token)` and remembers every token shown. */
const validator = (accept: (token: string) => boolean) => (token: string) => {
  presented.add(token);
  return accept(token);
};

const eksValidator = (clusterName: string) =>
  validator(
    (t) => verifyEksToken(t, { clusterName, now: clock.now(), secretAccessKey: (k) => secrets.get(k) }).ok,
  );

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fleetward-kube-access-'));
  writeFileSync(join(dir, 'arm-token'), `${ARM_TOKEN}\n`);
  writeFileSync(join(dir, 'gke-token'), `${gkeToken}\n`);
  [fleet, moto, gke, arm] = await Promise.all([
    startKubeFleetFake({ faults, log }),
    startMoto(),
    startGkeFake({ log: gkeLog }),
    startArmFake({ token: ARM_TOKEN, certDir: join(dir, 'arm-tls') }),
  ]);
  proxy = await startAwsProxy({ upstream: moto.url });

  fleet.addCluster({ key: 'eks-direct', token: eksValidator('eks-direct') });
  fleet.addCluster({ key: 'eks-over', token: eksValidator('eks-over') });
  fleet.addCluster({ key: 'gke-direct', token: validator((t) => t === gkeToken) });
  fleet.addCluster({ key: 'gke-over', token: validator((t) => t === gkeToken) });
  fleet.addCluster({ key: 'aks-user', token: validator((t) => t === AKS_USER_TOKEN) });
  fleet.addCluster({ key: 'aks-aad', token: validator((t) => t === ARM_TOKEN) });
  fleet.addCluster({ key: 'kc', token: validator((t) => t === KC_TOKEN) });

  // EKS: the cluster lives in moto; the proxy learns the secrets AssumeRole hands out and points
  // DescribeCluster at the fleet fake (moto's endpoint does not exist).
  proxy.override('AssumeRole', async (_req, { forward }) => {
    const answer = await forward();
    const body = answer.body?.toString() ?? '';
    const key = /<AccessKeyId>([^<]+)<\/AccessKeyId>/.exec(body)?.[1];
    const secret = /<SecretAccessKey>([^<]+)<\/SecretAccessKey>/.exec(body)?.[1];
    if (key && secret) secrets.set(key, secret);
    return answer;
  });
  proxy.override('DescribeCluster', async (req, { forward }) => {
    const answer = await forward();
    const name = req.info.resource;
    if (answer.status !== 200 || !name || !KEY[`aws/${ACCOUNT}/${REGION}/${name}`]) return answer;
    const doc = JSON.parse(answer.body!.toString()) as {
      cluster: { endpoint?: string; certificateAuthority?: { data?: string } };
    };
    doc.cluster.endpoint = fleet.cluster(name).server;
    doc.cluster.certificateAuthority = { data: Buffer.from(fleet.ca).toString('base64') };
    return { ...answer, body: JSON.stringify(doc) };
  });
  const sts = new STSClient({ region: 'us-east-1', endpoint: moto.url });
  const out = await sts.send(new AssumeRoleCommand({ RoleArn: ROLE, RoleSessionName: 'seed' }));
  sts.destroy();
  const c = out.Credentials!;
  const eks = new EKSClient({
    region: REGION,
    endpoint: moto.url,
    credentials: {
      accessKeyId: c.AccessKeyId!,
      secretAccessKey: c.SecretAccessKey!,
      sessionToken: c.SessionToken!,
    },
  });
  await eks.send(
    new CreateClusterCommand({
      name: 'eks-direct',
      roleArn: `arn:aws:iam::${ACCOUNT}:role/eks-cluster`,
      resourcesVpcConfig: { subnetIds: ['subnet-0a1'] },
    }),
  );
  eks.destroy();

  // GKE: GetCluster answers the fleet fake's address (with its path) and CA.
  const fleetHost = new URL(fleet.url).host;
  gke.setClusters(PROJECT, [
    gkeCluster({
      name: 'gke-direct',
      location: 'europe-west1',
      endpoint: `${fleetHost}/clusters/gke-direct`,
      masterAuth: { clusterCaCertificate: Buffer.from(fleet.ca).toString('base64') },
    }),
  ]);

  // AKS: ARM knows both clusters and answers their user kubeconfigs.
  arm.setClusters(SUBSCRIPTION, [
    aksCluster({ subscriptionId: SUBSCRIPTION, resourceGroup: RG, name: 'aks-user' }),
    aksCluster({ subscriptionId: SUBSCRIPTION, resourceGroup: RG, name: 'aks-aad' }),
  ]);
  arm.setUserCredentials(
    managedClusterId(SUBSCRIPTION, RG, 'aks-user'),
    aksKubeconfig(fleet.cluster('aks-user').server, fleet.ca, { token: AKS_USER_TOKEN }),
  );
  arm.setUserCredentials(
    managedClusterId(SUBSCRIPTION, RG, 'aks-aad'),
    aksKubeconfig(fleet.cluster('aks-aad').server, fleet.ca, {
      exec: {
        apiVersion: 'client.authentication.k8s.io/v1beta1',
        command: 'kubelogin',
        args: ['get-token', '--login', 'azurecli', '--server-id', '6dae42f8-4368-4678-94ff-3960e28e3630'],
      },
    }),
  );

  writeKubeconfig(join(dir, 'kubeconfig'), [
    { context: 'kc-ctx', cluster: 'kc', server: fleet.cluster('kc').server, ca: fleet.ca, token: KC_TOKEN },
  ]);
});

afterAll(async () => {
  await Promise.all([fleet?.stop(), proxy?.stop(), gke?.stop(), arm?.stop()]);
  await moto?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

beforeEach(() => {
  faults.clear();
  faults.latencyMs = 0;
});

const requests = (key: string, operation?: string) =>
  log.entries.filter((e) => e.scope === key && (operation === undefined || e.operation === operation));

type ConfigMap = KubeObject & { data?: Record<string, string> };
const configMap = (namespace: string, name: string, data: Record<string, string>): ConfigMap => ({
  apiVersion: 'v1',
  kind: 'ConfigMap',
  metadata: { name, namespace, labels: { app: 'fleetward' } },
  data,
});

// --- the tests ---

describe('kube access per cloud', () => {
  const clusters: [string, Cluster, 'aad' | 'cluster-user-credentials'][] = [
    ['EKS via DescribeCluster', EKS_DIRECT, 'cluster-user-credentials'],
    ['EKS via an override', EKS_OVER, 'cluster-user-credentials'],
    ['GKE via GetCluster', GKE_DIRECT, 'cluster-user-credentials'],
    ['GKE via an override', GKE_OVER, 'cluster-user-credentials'],
    ['AKS with cluster user credentials', AKS_USER, 'cluster-user-credentials'],
    ['AKS with an Entra ID token', AKS_AAD, 'aad'],
    ['a kubeconfig context', KC, 'cluster-user-credentials'],
  ];

  it.each(clusters)('%s: reads, lists, creates and deletes', async (_, target, azureAuth) => {
    const key = keyOf(target);
    const api = await access({ azureAuth }).connect(target);
    const ns = `suite-${key}`;

    const namespace = await api.create<KubeObject>({
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: { name: ns, labels: { suite: 'kube-access' } },
    });
    expect(namespace.created).toBe(true);
    expect(namespace.object.metadata).toMatchObject({ name: ns, uid: expect.any(String) });
    // Objects come back as the server sent them (timestamps are strings, not Dates).
    expect(typeof namespace.object.metadata.creationTimestamp).toBe('string');

    const first = await api.create(configMap(ns, 'settings', { mode: 'first' }));
    expect(first).toMatchObject({ created: true, object: { data: { mode: 'first' } } });
    // A second create of that name finds the first one (409 → the existing object).
    const again = await api.create(configMap(ns, 'settings', { mode: 'second' }));
    expect(again.created).toBe(false);
    expect(again.object.metadata.uid).toBe(first.object.metadata.uid);
    expect(again.object).toMatchObject({ data: { mode: 'first' } });

    const ref = { apiVersion: 'v1', kind: 'ConfigMap', name: 'settings', namespace: ns };
    expect(await api.read<ConfigMap>(ref)).toMatchObject({ data: { mode: 'first' } });
    expect(await api.list('v1', 'ConfigMap', { namespace: ns, labelSelector: 'app=fleetward' })).toHaveLength(
      1,
    );
    expect(
      await api.list('v1', 'ConfigMap', { namespace: ns, labelSelector: 'app!=fleetward' }),
    ).toHaveLength(0);
    expect(
      (await api.list('v1', 'Namespace', { labelSelector: 'suite=kube-access' })).map((n) => n.metadata.name),
    ).toContain(ns);

    // Absent objects, and kinds the cluster does not serve, read as undefined.
    expect(await api.read({ ...ref, name: 'missing' })).toBeUndefined();
    expect(
      await api.read({ apiVersion: 'velero.io/v1', kind: 'Backup', name: 'b', namespace: 'velero' }),
    ).toBeUndefined();
    expect(await api.read({ apiVersion: 'v1', kind: 'NoSuchKind', name: 'x' })).toBeUndefined();

    expect(await api.delete(ref)).toBe(true);
    expect(await api.delete(ref)).toBe(false);
    expect(fleet.cluster(key).object('v1', 'ConfigMap', 'settings', ns)).toBeUndefined();
    expect(await api.delete({ apiVersion: 'v1', kind: 'Namespace', name: ns })).toBe(true);
  });

  it('asks the cloud for endpoint and CA only without an override', () => {
    const describes = proxy.requests().filter((r) => r.operation === 'DescribeCluster');
    expect(describes.some((r) => r.resource === 'eks-direct')).toBe(true);
    expect(describes.some((r) => r.resource === 'eks-over')).toBe(false);
    expect(gkeLog.entries.filter((e) => e.operation === 'GetCluster').map((e) => e.scope)).not.toContain(
      'fleet-unknown-project',
    );
    expect(gkeLog.entries.some((e) => e.operation === 'GetCluster' && e.scope === PROJECT)).toBe(true);
    expect(
      arm.requests({ operation: 'managedClusters.listClusterUserCredentials' }).length,
    ).toBeGreaterThanOrEqual(2);
  });

  it('signs EKS tokens with the role of the cluster account, for that cluster', () => {
    const eksTokens = [...presented].filter((t) => t.startsWith('k8s-aws-v1.'));
    expect(eksTokens.length).toBeGreaterThan(0);
    for (const token of eksTokens) {
      const checks = ['eks-direct', 'eks-over'].map(
        (clusterName) =>
          verifyEksToken(token, {
            clusterName,
            now: new Date(Date.now() + skewMs),
            secretAccessKey: (k) => secrets.get(k),
          }).ok,
      );
      // Valid for exactly one of the two clusters.
      expect(checks.filter(Boolean)).toHaveLength(1);
    }
    expect(proxy.requests().some((r) => r.operation === 'AssumeRole' && r.scope === ACCOUNT)).toBe(true);
  });
});

describe('kube api behaviour', () => {
  let api: KubeApi;
  const ns = 'behaviour';
  const ref = { apiVersion: 'v1', kind: 'ConfigMap', name: 'probe', namespace: ns };

  beforeAll(async () => {
    api = await access().connect(KC);
    await api.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } });
    await api.create(configMap(ns, 'probe', { ok: 'yes' }));
  });

  const faultCases: [string, Fault, number][] = [
    ['503, then success', { kind: 'error', status: 503 }, 0],
    ['429 with Retry-After, then success', { kind: 'throttle', retryAfterSeconds: 1 }, 950],
    ['no answer (timeout), then success', { kind: 'timeout' }, TIMEOUT_MS - 50],
  ];
  it.each(faultCases)('%s', async (_, fault, minMs) => {
    const before = requests('kc', 'get:v1/configmaps').length;
    const retried = lines.filter((l) => l.message === 'Kube call retried').length;
    faults.add({ cloud: 'kube', scope: 'kc', operation: 'get:v1/configmaps', fault, times: 1 });
    const t0 = performance.now();
    expect(await api.read<ConfigMap>(ref)).toMatchObject({ data: { ok: 'yes' } });
    expect(performance.now() - t0).toBeGreaterThanOrEqual(minMs);
    expect(requests('kc', 'get:v1/configmaps').length - before).toBe(2);
    expect(lines.filter((l) => l.message === 'Kube call retried').length - retried).toBe(1);
  });

  it('gives up after maxAttempts with a retryable CloudApiError', async () => {
    const before = requests('kc', 'get:v1/configmaps').length;
    faults.add({
      cloud: 'kube',
      scope: 'kc',
      operation: 'get:v1/configmaps',
      fault: { kind: 'error', status: 503 },
    });
    const error = await api.read(ref).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CloudApiError);
    expect(error).toMatchObject({
      cloud: 'kube',
      operation: 'read v1 ConfigMap',
      status: 503,
      retryable: true,
    });
    expect((error as Error).message).toContain(KC.id);
    expect(requests('kc', 'get:v1/configmaps').length - before).toBe(3);
  });

  it('does not retry a 403', async () => {
    const before = requests('kc', 'get:v1/configmaps').length;
    faults.add({
      cloud: 'kube',
      scope: 'kc',
      operation: 'get:v1/configmaps',
      fault: { kind: 'error', status: 403 },
    });
    await expect(api.read(ref)).rejects.toMatchObject({
      name: 'CloudApiError',
      status: 403,
      retryable: false,
    });
    expect(requests('kc', 'get:v1/configmaps').length - before).toBe(1);
  });

  it('dry-runs a create without storing it', async () => {
    const { created, object } = await api.create(configMap(ns, 'dry', { a: 'b' }), { dryRun: true });
    expect(created).toBe(true);
    expect(object.metadata.name).toBe('dry');
    expect(fleet.cluster('kc').object('v1', 'ConfigMap', 'dry', ns)).toBeUndefined();
    expect(await api.read({ ...ref, name: 'dry' })).toBeUndefined();
  });

  it('never changes the object it is given', async () => {
    const object: ConfigMap = {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'untouched' },
      data: {},
    };
    const copy = structuredClone(object);
    const { object: made } = await api.create(object);
    expect(object).toEqual(copy);
    // A namespaced kind without a namespace lands in `default`, as kubectl does.
    expect(made.metadata.namespace).toBe('default');
    expect(
      await api.delete({ apiVersion: 'v1', kind: 'ConfigMap', name: 'untouched', namespace: 'default' }),
    ).toBe(true);
  });

  it('lists every page', async () => {
    const kc = fleet.cluster('kc');
    kc.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'bulk' } });
    for (let i = 0; i < 1_100; i++) {
      kc.apply({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: `cm-${i}`, namespace: 'bulk' } });
    }
    const before = requests('kc', 'list:v1/configmaps').length;
    const all = await api.list('v1', 'ConfigMap', { namespace: 'bulk' });
    expect(all).toHaveLength(1_100);
    expect(new Set(all.map((o) => o.metadata.name)).size).toBe(1_100);
    expect(requests('kc', 'list:v1/configmaps').length - before).toBe(3);
  });

  it('creates a custom resource definition, then its resources', async () => {
    await api.create({
      apiVersion: 'apiextensions.k8s.io/v1',
      kind: 'CustomResourceDefinition',
      metadata: { name: 'widgets.example.com' },
      spec: {
        group: 'example.com',
        scope: 'Namespaced',
        names: { plural: 'widgets', singular: 'widget', kind: 'Widget', listKind: 'WidgetList' },
        versions: [
          {
            name: 'v1',
            served: true,
            storage: true,
            schema: { openAPIV3Schema: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true } },
          },
        ],
      },
    });
    const widget = {
      apiVersion: 'example.com/v1',
      kind: 'Widget',
      metadata: { name: 'w1', namespace: ns },
      spec: { size: 3 },
    };
    expect((await api.create(widget)).created).toBe(true);
    expect(
      await api.read({ apiVersion: 'example.com/v1', kind: 'Widget', name: 'w1', namespace: ns }),
    ).toMatchObject({
      spec: { size: 3 },
    });
    expect(await api.list('example.com/v1', 'Widget', { namespace: ns })).toHaveLength(1);
    expect(
      await api.delete({ apiVersion: 'example.com/v1', kind: 'Widget', name: 'w1', namespace: ns }),
    ).toBe(true);
  });

  it('fails a list of a kind the cluster does not serve with a 404 CloudApiError', async () => {
    await expect(api.list('velero.io/v1', 'Backup', { namespace: 'velero' })).rejects.toMatchObject({
      name: 'CloudApiError',
      cloud: 'kube',
      operation: 'list velero.io/v1 Backup',
      status: 404,
    });
  });

  it('stops at once when the caller aborts', async () => {
    const controller = new AbortController();
    const aborted = await access().connect(KC, { signal: controller.signal });
    faults.add({ cloud: 'kube', scope: 'kc', fault: { kind: 'timeout' } });
    const t0 = performance.now();
    const call = aborted.read(ref);
    setTimeout(() => controller.abort(new Error('run cancelled')), 100);
    await expect(call).rejects.toThrow('run cancelled');
    expect(performance.now() - t0).toBeLessThan(TIMEOUT_MS);
  });

  it('keeps at most kubeAccess.concurrency calls in flight across clusters', async () => {
    const limited = access({ concurrency: 2 });
    const apis = await Promise.all([limited.connect(KC), limited.connect(AKS_USER)]);
    // Discovery first, so every call below is one request.
    await Promise.all(apis.map((a) => a.list('v1', 'Namespace')));
    faults.latencyMs = 150;
    const from = log.entries.length;
    const t0 = performance.now();
    await Promise.all(Array.from({ length: 6 }, (_, i) => apis[i % 2]!.list('v1', 'Namespace')));
    expect(performance.now() - t0).toBeGreaterThanOrEqual(3 * 150 - 20);
    const spans = log.entries.slice(from).map((e) => [e.at!, e.at! + e.durationMs!] as const);
    const most = Math.max(
      ...spans.map(([start]) => spans.filter(([s, end]) => s <= start && start < end - 5).length),
    );
    expect(most).toBe(2);
  });
});

describe('tokens', () => {
  it('refreshes an expired EKS token once and the call succeeds', async () => {
    const api = await access().connect(EKS_DIRECT);
    await api.list('v1', 'Namespace');
    const refused = requests('eks-direct').filter((e) => e.status === 401).length;
    const refreshed = lines.filter((l) => l.message === 'Kube token refreshed').length;
    // A minute later the token handed out before has expired (60 s after signing).
    skewMs += 61_000;
    expect((await api.list('v1', 'Namespace')).length).toBeGreaterThan(0);
    expect(requests('eks-direct').filter((e) => e.status === 401).length - refused).toBe(1);
    expect(lines.filter((l) => l.message === 'Kube token refreshed').length - refreshed).toBe(1);
  });

  it('picks up a rotated GKE token file', async () => {
    const api = await access().connect(GKE_OVER);
    await api.list('v1', 'Namespace');
    gkeToken = 'gke-placeholder-token-2';
    writeFileSync(join(dir, 'gke-token'), `${gkeToken}\n`);
    expect((await api.list('v1', 'Namespace')).length).toBeGreaterThan(0);
  });

  it('refreshes only once: a token refused again fails with a 401 CloudApiError', async () => {
    const api = await access().connect(AKS_USER);
    const before = requests('aks-user').length;
    const credentialCalls = arm.requests({ operation: 'managedClusters.listClusterUserCredentials' }).length;
    fleet.cluster('aks-user').setToken(validator(() => false));
    try {
      const error = await api
        .read({ apiVersion: 'v1', kind: 'Namespace', name: 'default' })
        .catch((e: unknown) => e);
      expect(error).toMatchObject({ name: 'CloudApiError', cloud: 'kube', status: 401, retryable: false });
      // The first request, and one more with the refreshed credentials.
      expect(requests('aks-user').length - before).toBe(2);
      expect(
        arm.requests({ operation: 'managedClusters.listClusterUserCredentials' }).length - credentialCalls,
      ).toBe(1);
    } finally {
      fleet.cluster('aks-user').setToken(validator((t) => t === AKS_USER_TOKEN));
    }
  });

  it('never puts a token in a log line or an error', async () => {
    // One more failure to inspect, with a token in play.
    fleet.cluster('kc').setToken(validator(() => false));
    const kc = await access().connect(KC);
    const error = (await kc.read({ apiVersion: 'v1', kind: 'Namespace', name: 'default' }).then(
      () => new Error('expected a refusal'),
      (e: unknown) => e,
    )) as Error;
    fleet.cluster('kc').setToken(validator((t) => t === KC_TOKEN));
    expect(error).toBeInstanceOf(CloudApiError);

    const tokens = [...presented, ARM_TOKEN, AKS_USER_TOKEN, KC_TOKEN, gkeToken];
    expect(tokens.length).toBeGreaterThan(6);
    const texts = [
      ...lines.map((l) => JSON.stringify(l)),
      error.message,
      String(error),
      JSON.stringify(errorInfo(error)),
      String((error as { cause?: unknown }).cause),
    ];
    expect(lines.length).toBeGreaterThan(0);
    for (const text of texts) for (const token of tokens) expect(text).not.toContain(token);
  });
});

describe('configuration errors', () => {
  it('names the cloud a cluster needs when it is not configured', async () => {
    const { aws: _aws, ...clouds } = config().clouds;
    const noAws = createKubeAccess({ ...config(), clouds }, { logger });
    await expect(noAws.connect(EKS_DIRECT)).rejects.toMatchObject({
      name: 'ConfigError',
      issues: [{ path: 'clouds.aws', message: expect.stringContaining(EKS_DIRECT.id) }],
    });
    await expect(access().connect({ ...EKS_DIRECT, scope: '999999999999' })).rejects.toBeInstanceOf(
      ConfigError,
    );
  });

  it('names an override whose CA file cannot be read', async () => {
    const base = config();
    const broken = createKubeAccess(
      {
        ...base,
        kubeAccess: {
          ...base.kubeAccess,
          overrides: [
            { cluster: KC.id, endpoint: fleet.cluster('kc').server, caFile: join(dir, 'no-such-ca.pem') },
          ],
        },
      },
      { logger },
    );
    await expect(broken.connect(KC)).rejects.toMatchObject({
      name: 'ConfigError',
      issues: [{ path: 'kubeAccess.overrides.0.caFile', message: expect.stringContaining('ENOENT') }],
    });
  });

  it('refuses to send a token over plain http', async () => {
    const base = config();
    const plain = createKubeAccess(
      {
        ...base,
        kubeAccess: { ...base.kubeAccess, overrides: [{ cluster: KC.id, endpoint: 'http://127.0.0.1:9' }] },
      },
      { logger },
    );
    await expect(plain.connect(KC)).rejects.toMatchObject({
      name: 'CloudApiError',
      cloud: 'kube',
      retryable: false,
    });
  });
});
