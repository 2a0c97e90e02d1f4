/**
 * EKS discovery against moto through the fault/recording proxy: normalisation of every
 * field, pagination, one DescribeCluster per cluster, `regions: all`, the shared limiter.
 */
import { DescribeRegionsCommand, EC2Client } from '@aws-sdk/client-ec2';
import { CreateClusterCommand, type CreateClusterCommandInput, EKSClient } from '@aws-sdk/client-eks';
import { AssumeRoleCommand, STSClient } from '@aws-sdk/client-sts';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createDiscovery, ROLE_SESSION_NAME } from '../../shared/clouds/aws/discovery.ts';
import { AwsConfig } from '../../shared/config/schema.ts';
import type { DiscoveredCluster, DiscoveryOutcome } from '../../shared/model.ts';
import type { Log } from '../../shared/ports.ts';
import { type AwsProxy, type AwsRequestInfo, startAwsProxy } from '../sandbox/aws-proxy.ts';
import { type MotoServer, startMoto } from '../sandbox/moto.ts';

const A = '111122223333';
const B = '444455556666';
const role = (account: string) => `arn:aws:iam::${account}:role/fleetward-discovery`;
const KEY_ARN = `arn:aws:kms:eu-central-1:${A}:key/1234abcd-12ab-34cd-56ef-1234567890ab`;
const BULK = 120;

type Seed = Omit<CreateClusterCommandInput, 'roleArn' | 'resourcesVpcConfig'> &
  Partial<Pick<CreateClusterCommandInput, 'resourcesVpcConfig'>>;

const bulk: Seed[] = Array.from({ length: BULK }, (_, i) => ({
  name: `bulk-${String(i).padStart(3, '0')}`,
  version: '1.30',
  resourcesVpcConfig: { subnetIds: ['subnet-0a1'], endpointPublicAccess: true, endpointPrivateAccess: false },
}));

const SEEDS: { account: string; region: string; clusters: Seed[] }[] = [
  { account: A, region: 'eu-west-1', clusters: bulk },
  {
    account: A,
    region: 'eu-central-1',
    clusters: [
      {
        name: 'prod-eu',
        version: '1.31',
        resourcesVpcConfig: {
          subnetIds: ['subnet-0a1', 'subnet-0b2'],
          endpointPublicAccess: true,
          endpointPrivateAccess: true,
        },
        encryptionConfig: [{ resources: ['secrets'], provider: { keyArn: KEY_ARN } }],
        logging: {
          clusterLogging: [
            { types: ['api', 'audit', 'authenticator'], enabled: true },
            { types: ['scheduler'], enabled: false },
          ],
        },
        tags: { team: 'platform', env: 'prod' },
      },
      {
        name: 'private-eu',
        version: '1.29',
        resourcesVpcConfig: {
          subnetIds: ['subnet-0c3'],
          endpointPublicAccess: false,
          endpointPrivateAccess: true,
        },
        // A key for something other than secrets is not the secrets key.
        encryptionConfig: [{ resources: ['configmaps'], provider: { keyArn: KEY_ARN } }],
        logging: {
          clusterLogging: [
            { types: ['api'], enabled: true },
            { types: ['audit'], enabled: false },
          ],
        },
        tags: { team: 'data' },
      },
    ],
  },
  // No endpoint access flags, logging or tags: moto stores none (AWS would default them).
  { account: A, region: 'us-east-1', clusters: [{ name: 'edge' }] },
  {
    account: B,
    region: 'eu-west-1',
    clusters: [
      {
        name: 'b-one',
        version: '1.30',
        resourcesVpcConfig: { subnetIds: ['subnet-1'], endpointPublicAccess: true },
      },
      {
        name: 'b-two',
        version: '1.30',
        resourcesVpcConfig: { subnetIds: ['subnet-2'], endpointPublicAccess: true },
      },
    ],
  },
  {
    account: B,
    region: 'ap-south-1',
    clusters: [
      {
        name: 'b-mumbai',
        version: '1.32',
        resourcesVpcConfig: {
          subnetIds: ['subnet-3'],
          endpointPublicAccess: true,
          endpointPrivateAccess: true,
        },
        logging: { clusterLogging: [{ types: ['audit'], enabled: true }] },
        tags: { residency: 'in' },
      },
    ],
  },
];
const TOTAL = SEEDS.reduce((n, s) => n + s.clusters.length, 0);

const silent: Log = { debug() {}, info() {}, warn() {}, error() {} };

function config(endpoint: string, overrides: Partial<AwsConfig> = {}): AwsConfig {
  return AwsConfig.parse({
    endpoint,
    homeRegion: 'us-east-1',
    concurrency: 8,
    timeoutMs: 5_000,
    maxAttempts: 3,
    accounts: [
      {
        id: A,
        alias: 'prod',
        roleArn: role(A),
        externalId: 'fleetward-testing',
        regions: ['eu-west-1', 'eu-central-1', 'us-east-1'],
      },
      { id: B, roleArn: role(B), regions: 'all' },
    ],
    ...overrides,
  });
}

async function assumed(endpoint: string, account: string) {
  const sts = new STSClient({ region: 'us-east-1', endpoint });
  const out = await sts.send(new AssumeRoleCommand({ RoleArn: role(account), RoleSessionName: 'seed' }));
  sts.destroy();
  const c = out.Credentials!;
  return { accessKeyId: c.AccessKeyId!, secretAccessKey: c.SecretAccessKey!, sessionToken: c.SessionToken! };
}

async function seed(endpoint: string): Promise<void> {
  for (const account of [A, B]) {
    const credentials = await assumed(endpoint, account);
    for (const { region, clusters } of SEEDS.filter((s) => s.account === account)) {
      const eks = new EKSClient({ region, endpoint, credentials });
      for (let i = 0; i < clusters.length; i += 10) {
        await Promise.all(
          clusters.slice(i, i + 10).map((c) =>
            eks.send(
              new CreateClusterCommand({
                resourcesVpcConfig: { subnetIds: ['subnet-0a1'] },
                ...c,
                roleArn: `arn:aws:iam::${account}:role/eks-cluster`,
              }),
            ),
          ),
        );
      }
      eks.destroy();
    }
  }
}

let moto: MotoServer;
let proxy: AwsProxy;
let seededFrom: number;
let seededTo: number;
/** One plain run shared by the read-only assertions. */
let baseline: {
  outcome: DiscoveryOutcome;
  requests: AwsRequestInfo[];
  assumeRoleBodies: string[];
  ms: number;
};

beforeAll(async () => {
  moto = await startMoto();
  proxy = await startAwsProxy({ upstream: moto.url });
  seededFrom = Date.now() - 1000;
  const t0 = Date.now();
  await seed(moto.url);
  const seedMs = Date.now() - t0;
  seededTo = Date.now() + 1000;

  const assumeRoleBodies: string[] = [];
  const remove = proxy.override('AssumeRole', (req, { forward }) => {
    assumeRoleBodies.push(req.body.toString());
    return forward();
  });
  const t1 = Date.now();
  const outcome = await createDiscovery(config(proxy.url), { logger: silent }).discover();
  const ms = Date.now() - t1;
  remove();
  baseline = { outcome, requests: [...proxy.requests()], assumeRoleBodies, ms };
  console.info(
    `seeded ${TOTAL} clusters in ${seedMs} ms (${Math.round((TOTAL / seedMs) * 1000)} CreateCluster/s); ` +
      `discovered them with ${baseline.requests.length} calls in ${ms} ms (${Math.round((baseline.requests.length / ms) * 1000)} req/s)`,
  );
});

afterAll(async () => {
  await proxy?.stop();
  await moto?.stop();
});

beforeEach(() => {
  proxy.faults.clear();
  proxy.faults.latencyMs = 0;
  proxy.log.clear();
  proxy.resetStats();
});

const byName = (outcome: DiscoveryOutcome, name: string) => outcome.clusters.find((c) => c.name === name);

describe('aws discovery', () => {
  it('finds every seeded cluster with no failures and every scope complete', async () => {
    const { outcome } = baseline;
    expect(outcome.failures).toEqual([]);
    expect(outcome.clusters).toHaveLength(TOTAL);
    const expectedIds = SEEDS.flatMap((s) =>
      s.clusters.map((c) => `aws/${s.account}/${s.region}/${c.name}`),
    ).sort();
    expect(outcome.clusters.map((c) => c.id)).toEqual(expectedIds);
    expect(outcome.completedScopes).toEqual(
      expect.arrayContaining([
        { cloud: 'aws', scope: A, region: 'eu-west-1' },
        { cloud: 'aws', scope: A, region: 'eu-central-1' },
        { cloud: 'aws', scope: A, region: 'us-east-1' },
        { cloud: 'aws', scope: B, region: 'eu-west-1' },
        { cloud: 'aws', scope: B, region: 'ap-south-1' },
      ]),
    );
  });

  it('normalises every field', () => {
    const { outcome } = baseline;
    const createdAt = expect.toSatisfy(
      (v: unknown) =>
        typeof v === 'string' &&
        /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/.test(v) &&
        Date.parse(v) >= seededFrom &&
        Date.parse(v) <= seededTo,
    );
    const endpointIn = (region: string) =>
      expect.stringMatching(new RegExp(`^https://[^/]+\\.${region}\\.eks\\.amazonaws\\.com/?$`));

    expect(byName(outcome, 'prod-eu')).toEqual({
      id: `aws/${A}/eu-central-1/prod-eu`,
      cloud: 'aws',
      scope: A,
      region: 'eu-central-1',
      name: 'prod-eu',
      kubernetesVersion: '1.31',
      endpoint: endpointIn('eu-central-1'),
      endpointAccess: 'public-and-private',
      secretsEncryptionKey: KEY_ARN,
      auditLogging: true,
      tags: { team: 'platform', env: 'prod' },
      status: 'running',
      providerStatus: 'ACTIVE',
      createdAt,
    } satisfies Record<Exclude<keyof DiscoveredCluster, 'country' | 'resourceGroup'>, unknown>);

    expect(byName(outcome, 'private-eu')).toMatchObject({
      kubernetesVersion: '1.29',
      endpointAccess: 'private',
      secretsEncryptionKey: null,
      auditLogging: false,
      tags: { team: 'data' },
    });
    expect(byName(outcome, 'edge')).toEqual({
      id: `aws/${A}/us-east-1/edge`,
      cloud: 'aws',
      scope: A,
      region: 'us-east-1',
      name: 'edge',
      kubernetesVersion: '1.19', // moto's default version
      endpoint: endpointIn('us-east-1'),
      endpointAccess: 'unknown',
      secretsEncryptionKey: null,
      auditLogging: false, // moto's default logging: every type disabled
      tags: {},
      status: 'running',
      providerStatus: 'ACTIVE',
      createdAt,
    });
    expect(byName(outcome, 'b-mumbai')).toMatchObject({
      id: `aws/${B}/ap-south-1/b-mumbai`,
      scope: B,
      region: 'ap-south-1',
      kubernetesVersion: '1.32',
      endpointAccess: 'public-and-private',
      auditLogging: true,
      tags: { residency: 'in' },
    });
    expect(byName(outcome, 'bulk-077')).toMatchObject({
      endpointAccess: 'public',
      kubernetesVersion: '1.30',
    });
    for (const c of outcome.clusters) expect(c).not.toHaveProperty('country');
  });

  it('pages ListClusters and describes each cluster exactly once', () => {
    const { requests } = baseline;
    const lists = requests.filter(
      (r) => r.operation === 'ListClusters' && r.scope === A && r.region === 'eu-west-1',
    );
    expect(lists).toHaveLength(Math.ceil(BULK / 100));
    const describes = requests.filter((r) => r.operation === 'DescribeCluster');
    expect(describes).toHaveLength(TOTAL);
    const keys = describes.map((r) => `${r.scope}/${r.region}/${r.resource}`);
    expect(new Set(keys).size).toBe(TOTAL);
    expect(new Set(keys)).toEqual(new Set(baseline.outcome.clusters.map((c) => c.id.replace(/^aws\//, ''))));
    expect(requests.every((r) => r.status === 200)).toBe(true);
  });

  it('assumes each role once, with the session name and the external id when configured', () => {
    const { requests, assumeRoleBodies } = baseline;
    const assumes = requests.filter((r) => r.operation === 'AssumeRole');
    expect(assumes.map((r) => r.scope).sort()).toEqual([A, B]);
    expect(assumes.every((r) => r.region === 'us-east-1')).toBe(true);
    const forms = assumeRoleBodies.map((b) => new URLSearchParams(b));
    const formA = forms.find((f) => f.get('RoleArn') === role(A));
    const formB = forms.find((f) => f.get('RoleArn') === role(B));
    expect(formA?.get('RoleSessionName')).toBe(ROLE_SESSION_NAME);
    expect(formA?.get('ExternalId')).toBe('fleetward-testing');
    expect(formB?.get('RoleSessionName')).toBe(ROLE_SESSION_NAME);
    expect(formB?.has('ExternalId')).toBe(false);
    // EKS calls are signed with the assumed credentials, so the proxy attributes them to the role's account.
    expect(requests.filter((r) => r.service === 'eks').every((r) => r.scope === A || r.scope === B)).toBe(
      true,
    );
  });

  it("lists the enabled regions for `regions: 'all'` and only those", async () => {
    const { requests, outcome } = baseline;
    const describeRegions = requests.filter((r) => r.operation === 'DescribeRegions');
    expect(describeRegions).toHaveLength(1);
    expect(describeRegions[0]).toMatchObject({ scope: B, region: 'us-east-1', service: 'ec2' });

    const ec2 = new EC2Client({
      region: 'us-east-1',
      endpoint: moto.url,
      credentials: await assumed(moto.url, B),
    });
    const all = (await ec2.send(new DescribeRegionsCommand({}))).Regions ?? [];
    ec2.destroy();
    const enabled = all.filter((r) => r.OptInStatus !== 'not-opted-in').map((r) => r.RegionName!);
    const notOptedIn = all.filter((r) => r.OptInStatus === 'not-opted-in').map((r) => r.RegionName!);
    expect(notOptedIn.length).toBeGreaterThan(0);

    const listedB = new Set(
      requests.filter((r) => r.operation === 'ListClusters' && r.scope === B).map((r) => r.region),
    );
    expect([...listedB].sort()).toEqual([...enabled].sort());
    for (const region of notOptedIn) expect(listedB.has(region)).toBe(false);
    const completedB = outcome.completedScopes.filter((s) => s.scope === B).map((s) => s.region);
    expect(completedB.sort()).toEqual([...enabled].sort());
    // An account with a region list never asks for regions.
    expect(requests.some((r) => r.operation === 'DescribeRegions' && r.scope === A)).toBe(false);
  });

  it('keeps every call of the run under one limit, fills it, and describes before listing is over', async () => {
    proxy.faults.latencyMs = 15;
    const concurrency = 5;
    const t0 = Date.now();
    const outcome = await createDiscovery(config(proxy.url, { concurrency }), { logger: silent }).discover();
    const ms = Date.now() - t0;
    expect(outcome.failures).toEqual([]);
    expect(outcome.clusters).toHaveLength(TOTAL);
    // Nested fan-out (accounts → regions → pages → clusters) never exceeds the limit and does reach it.
    expect(proxy.stats.maxInFlight).toBe(concurrency);

    const requests = proxy.requests();
    const lists = requests.filter(
      (r) => r.operation === 'ListClusters' && r.scope === A && r.region === 'eu-west-1',
    );
    const firstDescribe = requests.findIndex(
      (r) => r.operation === 'DescribeCluster' && r.region === 'eu-west-1',
    );
    const secondPage = requests.indexOf(lists[1]!);
    expect(firstDescribe).toBeGreaterThan(-1);
    expect(firstDescribe).toBeLessThan(secondPage);
    console.info(`concurrency ${concurrency}, 15 ms injected latency: ${requests.length} calls in ${ms} ms`);
  });

  it('rejects when the signal aborts and leaves nothing in flight', async () => {
    proxy.faults.latencyMs = 20;
    const controller = new AbortController();
    const run = createDiscovery(config(proxy.url), { logger: silent }).discover({
      signal: controller.signal,
    });
    setTimeout(() => controller.abort(new Error('stop')), 100);
    await expect(run).rejects.toThrow('stop');
    await new Promise((r) => setTimeout(r, 100));
    expect(proxy.stats.inFlight).toBe(0);
    expect(proxy.requests().filter((r) => r.operation === 'DescribeCluster').length).toBeLessThan(TOTAL);
  });
});
