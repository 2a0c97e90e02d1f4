/**
 * Contract: the in-memory AWS responder (the discover benchmark's stand-in for moto, see
 * `test/sandbox/aws-memory.ts`) answers what moto answers. The same cluster set is seeded
 * into both through the SDK; discovery then runs against each behind its own recording
 * proxy, and the test compares the normalised outcome, the calls made and every raw answer
 * (AssumeRole, DescribeRegions, ListClusters pages, DescribeCluster, a missing cluster).
 * Only values both emulators draw at random or from the clock may differ.
 */
import {
  CreateClusterCommand,
  type CreateClusterCommandInput,
  DescribeClusterCommand,
  EKSClient,
} from '@aws-sdk/client-eks';
import { AssumeRoleCommand, STSClient } from '@aws-sdk/client-sts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDiscovery, LIST_PAGE_SIZE } from '../../shared/clouds/aws/discovery.ts';
import { AwsConfig } from '../../shared/config/schema.ts';
import type { DiscoveredCluster, DiscoveryOutcome } from '../../shared/model.ts';
import type { Log } from '../../shared/ports.ts';
import fixture from '../fixtures/aws/eks-describe-cluster.json' with { type: 'json' };
import { type AwsMemory, startAwsMemory } from '../sandbox/aws-memory.ts';
import { type AwsProxy, startAwsProxy } from '../sandbox/aws-proxy.ts';
import { type MotoServer, startMoto } from '../sandbox/moto.ts';
import { shapeOf } from './json-shape.ts';

const A = '111122223333';
const B = '444455556666';
const role = (account: string) => `arn:aws:iam::${account}:role/fleetward-discovery`;
const KEY_ARN = `arn:aws:kms:eu-central-1:${A}:key/1234abcd-12ab-34cd-56ef-1234567890ab`;
/** More than one ListClusters page. */
const BULK = LIST_PAGE_SIZE + 5;

type Seed = Omit<CreateClusterCommandInput, 'roleArn'>;

const SEEDS: { account: string; region: string; clusters: Seed[] }[] = [
  {
    account: A,
    region: 'eu-west-1',
    clusters: Array.from({ length: BULK }, (_, i) => ({
      name: `bulk-${String(i).padStart(3, '0')}`,
      version: '1.30',
      resourcesVpcConfig: {
        subnetIds: ['subnet-0a1'],
        endpointPublicAccess: true,
        endpointPrivateAccess: false,
      },
    })),
  },
  {
    account: A,
    region: 'eu-central-1',
    clusters: [
      {
        name: 'prod-eu',
        version: '1.31',
        resourcesVpcConfig: {
          subnetIds: ['subnet-0a1', 'subnet-0b2'],
          securityGroupIds: ['sg-0example3333cccc3'],
          endpointPublicAccess: true,
          endpointPrivateAccess: true,
          publicAccessCidrs: ['203.0.113.0/24'],
        },
        kubernetesNetworkConfig: { serviceIpv4Cidr: '10.100.0.0/16', ipFamily: 'ipv4' },
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
        logging: { clusterLogging: [{ types: ['audit'], enabled: false }] },
        tags: { team: 'data' },
      },
    ],
  },
  // Nothing but the required members: moto's defaults (version, logging, network) show.
  {
    account: A,
    region: 'us-east-1',
    clusters: [{ name: 'edge', resourcesVpcConfig: { subnetIds: ['subnet-9'] } }],
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

const silent: Log = { debug() {}, info() {}, warn() {}, error() {} };

function config(endpoint: string): AwsConfig {
  return AwsConfig.parse({
    endpoint,
    homeRegion: 'us-east-1',
    concurrency: 8,
    timeoutMs: 5_000,
    maxAttempts: 1,
    accounts: [
      {
        id: A,
        roleArn: role(A),
        externalId: 'fleetward-testing',
        regions: ['eu-west-1', 'eu-central-1', 'us-east-1'],
      },
      // Every region moto lists: DescribeRegions, then an empty ListClusters for most of them.
      { id: B, roleArn: role(B), regions: 'all' },
    ],
  });
}

async function seed(endpoint: string): Promise<void> {
  for (const account of [A, B]) {
    const sts = new STSClient({ region: 'us-east-1', endpoint });
    const out = await sts.send(new AssumeRoleCommand({ RoleArn: role(account), RoleSessionName: 'seed' }));
    sts.destroy();
    const c = out.Credentials!;
    const credentials = {
      accessKeyId: c.AccessKeyId!,
      secretAccessKey: c.SecretAccessKey!,
      sessionToken: c.SessionToken!,
    };
    for (const { region, clusters } of SEEDS.filter((s) => s.account === account)) {
      const eks = new EKSClient({ region, endpoint, credentials });
      for (let i = 0; i < clusters.length; i += 10) {
        await Promise.all(
          clusters
            .slice(i, i + 10)
            .map((cluster) =>
              eks.send(
                new CreateClusterCommand({ ...cluster, roleArn: `arn:aws:iam::${account}:role/eks-cluster` }),
              ),
            ),
        );
      }
      eks.destroy();
    }
  }
}

interface Answer {
  operation: string;
  /** `account/region <url>`: the same request on both sides. */
  key: string;
  status: number;
  contentType: string | undefined;
  errorType: string | undefined;
  body: string;
}

interface Side {
  proxy: AwsProxy;
  outcome: DiscoveryOutcome;
  answers: Answer[];
  /** Calls by `operation scope/region`, counted. */
  calls: Record<string, number>;
  missing: Answer;
}

const OPERATIONS = ['AssumeRole', 'DescribeRegions', 'ListClusters', 'DescribeCluster'];

/** Seeds `upstream`, then runs discovery through a recording proxy and keeps every raw answer. */
async function side(upstream: string): Promise<Side> {
  await seed(upstream);
  const proxy = await startAwsProxy({ upstream });
  const answers: Answer[] = [];
  for (const operation of OPERATIONS) {
    proxy.override(operation, async (req, { forward }) => {
      const out = await forward();
      const headers = out.headers ?? {};
      answers.push({
        operation,
        key: `${req.info.scope}/${req.info.region} ${req.url}`,
        status: out.status,
        contentType: headers['content-type'],
        errorType: headers['x-amzn-errortype'],
        body: Buffer.from(out.body ?? '').toString('utf8'),
      });
      return out;
    });
  }
  const outcome = await createDiscovery(config(proxy.url), { logger: silent }).discover();
  const calls: Record<string, number> = {};
  for (const r of proxy.requests()) {
    const k = `${r.operation} ${r.scope}/${r.region}`;
    calls[k] = (calls[k] ?? 0) + 1;
  }
  // A cluster that does not exist, asked with A's assumed credentials.
  const before = answers.length;
  const sts = new STSClient({ region: 'us-east-1', endpoint: proxy.url });
  const c = (await sts.send(new AssumeRoleCommand({ RoleArn: role(A), RoleSessionName: 'probe' })))
    .Credentials!;
  sts.destroy();
  const eks = new EKSClient({
    region: 'eu-central-1',
    endpoint: proxy.url,
    maxAttempts: 1,
    credentials: {
      accessKeyId: c.AccessKeyId!,
      secretAccessKey: c.SecretAccessKey!,
      sessionToken: c.SessionToken!,
    },
  });
  await eks.send(new DescribeClusterCommand({ name: 'nope' })).catch(() => {});
  eks.destroy();
  const missing = answers.slice(before).find((a) => a.operation === 'DescribeCluster')!;
  answers.length = before;
  return { proxy, outcome, answers, calls, missing };
}

/** Values each emulator draws at random or from the clock, blanked so the rest must be equal. */
function comparable(c: DiscoveredCluster) {
  return {
    ...c,
    endpoint: c.endpoint === null ? null : 'random',
    createdAt: c.createdAt === null ? null : 'clock',
  };
}
const ENDPOINT = /^https:\/\/[A-Za-z0-9]{20}\.[A-Za-z0-9]{3}\.[a-z0-9-]+\.eks\.amazonaws\.com\/$/;

/** A DescribeCluster answer with moto's random and clock values replaced by their kind. */
function describeComparable(body: string) {
  const { cluster } = JSON.parse(body) as { cluster: Record<string, unknown> };
  return {
    ...cluster,
    createdAt: typeof cluster.createdAt,
    endpoint: ENDPOINT.test(String(cluster.endpoint)),
    identity: String((cluster.identity as { oidc: { issuer: string } }).oidc.issuer).replace(
      /[A-Za-z0-9]{10}$/,
      'ID',
    ),
    certificateAuthority: String((cluster.certificateAuthority as { data: string }).data).length,
    clientRequestToken: typeof cluster.clientRequestToken,
  };
}

/** Element structure of an XML answer, the text of the given random elements blanked. */
const xmlComparable = (body: string, random: string[]) =>
  random.reduce((s, el) => s.replace(new RegExp(`<${el}>[^<]*</${el}>`, 'g'), `<${el}/>`), body);

let moto: MotoServer;
let memory: AwsMemory;
let fromMoto: Side;
let fromMemory: Side;

beforeAll(async () => {
  moto = await startMoto();
  memory = await startAwsMemory();
  [fromMoto, fromMemory] = await Promise.all([side(moto.url), side(memory.url)]);
});

afterAll(async () => {
  await fromMoto?.proxy.stop();
  await fromMemory?.proxy.stop();
  await memory?.stop();
  await moto?.stop();
});

describe('in-memory AWS responder contract (against moto)', () => {
  it('discovery finds the same normalised clusters, scopes and failures on both', () => {
    const total = SEEDS.reduce((n, s) => n + s.clusters.length, 0);
    expect(fromMoto.outcome.clusters).toHaveLength(total);
    expect(fromMemory.outcome.clusters.map(comparable)).toEqual(fromMoto.outcome.clusters.map(comparable));
    expect(fromMemory.outcome.completedScopes).toEqual(fromMoto.outcome.completedScopes);
    expect(fromMemory.outcome.failures).toEqual(fromMoto.outcome.failures);
    expect(fromMoto.outcome.failures).toEqual([]);
  });

  it('discovery makes the same calls, per operation, account and region', () => {
    expect(fromMemory.calls).toEqual(fromMoto.calls);
    expect(fromMoto.calls[`ListClusters ${A}/eu-west-1`]).toBe(2);
  });

  it('answers every ListClusters page with the same bytes: names, order and tokens', () => {
    const pages = (s: Side) =>
      Object.fromEntries(s.answers.filter((a) => a.operation === 'ListClusters').map((a) => [a.key, a.body]));
    expect(pages(fromMemory)).toEqual(pages(fromMoto));
  });

  it('answers DescribeCluster with the same members, types and values but for random ones', () => {
    const byKey = (s: Side) =>
      new Map(s.answers.filter((a) => a.operation === 'DescribeCluster').map((a) => [a.key, a]));
    const motoAnswers = byKey(fromMoto);
    const memoryAnswers = byKey(fromMemory);
    expect([...memoryAnswers.keys()].sort()).toEqual([...motoAnswers.keys()].sort());
    for (const [key, m] of motoAnswers) {
      const mine = memoryAnswers.get(key)!;
      expect([key, mine.status, mine.contentType]).toEqual([key, m.status, m.contentType]);
      expect([key, [...shapeOf(JSON.parse(mine.body))]]).toEqual([key, [...shapeOf(JSON.parse(m.body))]]);
      expect([key, describeComparable(mine.body)]).toEqual([key, describeComparable(m.body)]);
    }
  });

  it("uses only the documented sample's names, nesting and types in DescribeCluster", () => {
    const documented = shapeOf(fixture);
    const richest = fromMemory.answers.find((a) => a.key.endsWith('/clusters/prod-eu'))!;
    const undocumented = [...shapeOf(JSON.parse(richest.body))].filter(
      ([path, type]) => documented.get(path) !== type,
    );
    expect(undocumented).toEqual([]);
  });

  it('answers a missing cluster with the same 404 ResourceNotFoundException', () => {
    const { key: _m, ...motoMissing } = fromMoto.missing;
    const { key: _k, ...memoryMissing } = fromMemory.missing;
    expect(memoryMissing).toEqual(motoMissing);
    expect(memoryMissing).toMatchObject({ status: 404, errorType: 'ResourceNotFoundException' });
  });

  it('answers DescribeRegions with the same regions and opt-in states', () => {
    const regions = (s: Side) => s.answers.find((a) => a.operation === 'DescribeRegions')!.body;
    expect(regions(fromMemory)).toEqual(regions(fromMoto));
  });

  it('answers AssumeRole with the same XML, credentials scoped to the role account', () => {
    const assume = (s: Side) =>
      s.answers.find((a) => a.operation === 'AssumeRole' && a.key.startsWith(`${A}/`))!;
    const random = [
      'AccessKeyId',
      'SecretAccessKey',
      'SessionToken',
      'Expiration',
      'AssumedRoleId',
      'RequestId',
    ];
    expect(xmlComparable(assume(fromMemory).body, random)).toEqual(
      xmlComparable(assume(fromMoto).body, random),
    );
    expect(assume(fromMemory).body).toContain(
      `<Arn>arn:aws:sts::${A}:assumed-role/fleetward-discovery/fleetward-discovery</Arn>`,
    );
  });

  it('refuses, loudly, an operation it does not model', async () => {
    const res = await fetch(`${memory.url}/`, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-amz-json-1.1',
        'x-amz-target': 'AWSBudgetServiceGateway.UpdateBudget',
      },
      body: '{}',
    });
    expect(res.status).toBe(501);
    expect(await res.json()).toMatchObject({ __type: 'NotImplemented' });
  });
});
