/**
 * EKS discovery under injected faults (moto behind the fault proxy): throttling with and
 * without Retry-After, 5xx, a hung request, a whole region down, a failing AssumeRole,
 * unusable DescribeCluster payloads. Small attempt counts and timeouts keep it fast.
 */
import { CreateClusterCommand, EKSClient } from '@aws-sdk/client-eks';
import { AssumeRoleCommand, STSClient } from '@aws-sdk/client-sts';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createDiscovery } from '../../shared/clouds/aws/discovery.ts';
import { AwsConfig } from '../../shared/config/schema.ts';
import type { DiscoveryOutcome } from '../../shared/model.ts';
import type { Log } from '../../shared/ports.ts';
import {
  type AwsProxy,
  type AwsRequestInfo,
  type OverrideHandler,
  startAwsProxy,
} from '../sandbox/aws-proxy.ts';
import type { FaultRule } from '../sandbox/faults.ts';
import { type MotoServer, startMoto } from '../sandbox/moto.ts';

const A = '111122223333';
const B = '444455556666';
const role = (account: string) => `arn:aws:iam::${account}:role/fleetward-discovery`;
const TIMEOUT_MS = 400;
const MAX_ATTEMPTS = 3;

const SEEDS = [
  { account: A, region: 'eu-west-1', names: ['api', 'batch', 'web'] },
  { account: A, region: 'eu-central-1', names: ['de-1', 'de-2'] },
  { account: A, region: 'us-east-2', names: ['solo'] },
  { account: B, region: 'eu-west-1', names: ['b-one'] },
];
const ALL_IDS = SEEDS.flatMap((s) => s.names.map((n) => `aws/${s.account}/${s.region}/${n}`)).sort();
const ALL_SCOPES = SEEDS.map((s) => `${s.account}/${s.region}`).sort();

const silent: Log = { debug() {}, info() {}, warn() {}, error() {} };

let moto: MotoServer;
let proxy: AwsProxy;

beforeAll(async () => {
  moto = await startMoto();
  proxy = await startAwsProxy({ upstream: moto.url });
  for (const account of [A, B]) {
    const sts = new STSClient({ region: 'us-east-1', endpoint: moto.url });
    const c = (await sts.send(new AssumeRoleCommand({ RoleArn: role(account), RoleSessionName: 'seed' })))
      .Credentials!;
    sts.destroy();
    const credentials = {
      accessKeyId: c.AccessKeyId!,
      secretAccessKey: c.SecretAccessKey!,
      sessionToken: c.SessionToken!,
    };
    for (const { region, names } of SEEDS.filter((s) => s.account === account)) {
      const eks = new EKSClient({ region, endpoint: moto.url, credentials });
      for (const name of names) {
        await eks.send(
          new CreateClusterCommand({
            name,
            roleArn: `arn:aws:iam::${account}:role/eks-cluster`,
            resourcesVpcConfig: { subnetIds: ['subnet-1'], endpointPublicAccess: true },
          }),
        );
      }
      eks.destroy();
    }
  }
});

afterAll(async () => {
  await proxy?.stop();
  await moto?.stop();
});

beforeEach(() => {
  proxy.faults.clear();
  proxy.log.clear();
});

interface Run {
  outcome: DiscoveryOutcome;
  elapsedMs: number;
  requests: AwsRequestInfo[];
}

interface Case {
  name: string;
  rules?: FaultRule[];
  override?: { operation: string; handler: OverrideHandler };
  check(run: Run): void;
}

const ids = (o: DiscoveryOutcome) => o.clusters.map((c) => c.id);
const scopes = (o: DiscoveryOutcome) => o.completedScopes.map((s) => `${s.scope}/${s.region}`).sort();
const calls = (run: Run, operation: string, scope?: string, region?: string) =>
  run.requests.filter(
    (r) => r.operation === operation && (!scope || r.scope === scope) && (!region || r.region === region),
  );

function expectComplete(run: Run): void {
  expect(run.outcome.failures).toEqual([]);
  expect(ids(run.outcome)).toEqual(ALL_IDS);
  expect(scopes(run.outcome)).toEqual(ALL_SCOPES);
}

const CASES: Case[] = [
  {
    name: '429 with Retry-After: waits at least the hint, then succeeds',
    rules: [
      {
        operation: 'ListClusters',
        scope: A,
        region: 'eu-west-1',
        fault: { kind: 'throttle', retryAfterSeconds: 1 },
        times: 1,
      },
    ],
    check(run) {
      expectComplete(run);
      const [throttled, retried] = calls(run, 'ListClusters', A, 'eu-west-1');
      expect(throttled).toMatchObject({ status: 429, fault: 'throttle' });
      expect(retried).toMatchObject({ status: 200 });
      expect(run.elapsedMs).toBeGreaterThanOrEqual(1000);
      // The SDK measures the hint from when it read the answer; allow timer granularity.
      expect(retried!.at! - throttled!.at!).toBeGreaterThanOrEqual(990);
    },
  },
  {
    name: '429 without Retry-After: retried with backoff',
    rules: [{ operation: 'DescribeCluster', scope: A, fault: { kind: 'throttle' }, times: 2 }],
    check(run) {
      expectComplete(run);
      expect(run.requests.filter((r) => r.fault === 'throttle')).toHaveLength(2);
      expect(calls(run, 'DescribeCluster')).toHaveLength(ALL_IDS.length + 2);
    },
  },
  ...[500, 502, 503].map(
    (status): Case => ({
      name: `${status} on DescribeCluster: retried`,
      rules: [
        { operation: 'DescribeCluster', region: 'eu-west-1', fault: { kind: 'error', status }, times: 1 },
      ],
      check(run) {
        expectComplete(run);
        expect(run.requests.filter((r) => r.status === status)).toHaveLength(1);
        expect(calls(run, 'DescribeCluster')).toHaveLength(ALL_IDS.length + 1);
      },
    }),
  ),
  {
    name: 'a hung ListClusters: the per-attempt timeout fires, the retry succeeds',
    rules: [
      { operation: 'ListClusters', scope: A, region: 'us-east-2', fault: { kind: 'timeout' }, times: 1 },
    ],
    check(run) {
      expectComplete(run);
      const [hung, retried] = calls(run, 'ListClusters', A, 'us-east-2');
      expect(hung).toMatchObject({ fault: 'timeout' });
      expect(hung!.status).toBeUndefined();
      // The proxy saw the client give up after the timeout (closing the socket), not before.
      expect(hung!.durationMs).toBeGreaterThanOrEqual(TIMEOUT_MS - 20);
      expect(retried).toMatchObject({ status: 200 });
      expect(run.elapsedMs).toBeGreaterThanOrEqual(TIMEOUT_MS);
    },
  },
  {
    name: 'a whole region down: partial result, one failure naming the region',
    rules: [{ scope: A, region: 'eu-central-1', fault: { kind: 'error', status: 503 } }],
    check(run) {
      expect(run.outcome.failures).toEqual([
        {
          cloud: 'aws',
          scope: A,
          region: 'eu-central-1',
          kind: 'scope',
          error: { name: 'CloudApiError', message: expect.stringContaining('ListClusters'), status: 503 },
        },
      ]);
      expect(ids(run.outcome)).toEqual(ALL_IDS.filter((id) => !id.includes('/eu-central-1/')));
      expect(scopes(run.outcome)).toEqual(ALL_SCOPES.filter((s) => s !== `${A}/eu-central-1`));
      expect(calls(run, 'ListClusters', A, 'eu-central-1')).toHaveLength(MAX_ATTEMPTS);
      expect(calls(run, 'DescribeCluster', A, 'eu-central-1')).toHaveLength(0);
    },
  },
  {
    name: 'AssumeRole fails for one account: that account is skipped, the other is complete',
    rules: [{ operation: 'AssumeRole', scope: B, fault: { kind: 'error', status: 403 } }],
    check(run) {
      expect(run.outcome.failures).toEqual([
        {
          cloud: 'aws',
          scope: B,
          kind: 'scope',
          error: { name: 'CloudApiError', message: expect.stringContaining('AssumeRole'), status: 403 },
        },
      ]);
      expect(run.outcome.failures[0]).not.toHaveProperty('region');
      expect(ids(run.outcome)).toEqual(ALL_IDS.filter((id) => id.startsWith(`aws/${A}/`)));
      expect(scopes(run.outcome)).toEqual(ALL_SCOPES.filter((s) => s.startsWith(A)));
      // Access denied is not retried, and nothing is asked of the account afterwards.
      expect(calls(run, 'AssumeRole', B)).toHaveLength(1);
      expect(run.requests.filter((r) => r.service === 'eks' && r.scope === B)).toHaveLength(0);
    },
  },
  {
    name: 'a truncated DescribeCluster answer: unparseable, the run continues',
    rules: [
      { operation: 'DescribeCluster', scope: A, region: 'us-east-2', fault: { kind: 'malformed' }, times: 1 },
    ],
    check(run) {
      expect(run.outcome.failures).toEqual([
        {
          cloud: 'aws',
          scope: A,
          region: 'us-east-2',
          kind: 'unparseable',
          cluster: 'solo',
          error: { name: 'UnparseableClusterError', message: expect.stringContaining('deserialised') },
        },
      ]);
      expect(ids(run.outcome)).toEqual(ALL_IDS.filter((id) => !id.endsWith('/solo')));
      expect(scopes(run.outcome)).toEqual(ALL_SCOPES.filter((s) => s !== `${A}/us-east-2`));
      expect(calls(run, 'DescribeCluster', A, 'us-east-2')).toHaveLength(1);
    },
  },
  {
    name: 'a DescribeCluster payload without arn and status: unparseable, the run continues',
    override: {
      operation: 'DescribeCluster',
      handler: (req, { forward }) =>
        req.info.resource === 'de-2'
          ? {
              status: 200,
              headers: { 'content-type': 'application/json' },
              body: '{"cluster":{"name":"de-2"}}',
            }
          : forward(),
    },
    check(run) {
      expect(run.outcome.failures).toEqual([
        {
          cloud: 'aws',
          scope: A,
          region: 'eu-central-1',
          kind: 'unparseable',
          cluster: 'de-2',
          error: { name: 'UnparseableClusterError', message: 'cluster payload lacks arn, status' },
        },
      ]);
      expect(ids(run.outcome)).toEqual(ALL_IDS.filter((id) => !id.endsWith('/de-2')));
      expect(scopes(run.outcome)).toEqual(ALL_SCOPES.filter((s) => s !== `${A}/eu-central-1`));
    },
  },
  {
    name: 'a DescribeCluster that keeps failing: a scope failure naming the cluster, region incomplete',
    rules: [
      {
        operation: 'DescribeCluster',
        scope: A,
        region: 'eu-west-1',
        fault: { kind: 'error', status: 404 },
        times: 1,
      },
    ],
    check(run) {
      expect(run.outcome.failures).toEqual([
        expect.objectContaining({
          cloud: 'aws',
          scope: A,
          region: 'eu-west-1',
          kind: 'scope',
          cluster: expect.any(String),
        }),
      ]);
      expect(run.outcome.failures[0]!.error.status).toBe(404);
      expect(run.outcome.clusters).toHaveLength(ALL_IDS.length - 1);
      expect(scopes(run.outcome)).toEqual(ALL_SCOPES.filter((s) => s !== `${A}/eu-west-1`));
    },
  },
];

describe('aws discovery under faults', () => {
  it.each(CASES)('$name', async ({ rules = [], override, check }) => {
    for (const rule of rules) proxy.faults.add(rule);
    const remove = override ? proxy.override(override.operation, override.handler) : () => {};
    try {
      const config = AwsConfig.parse({
        endpoint: proxy.url,
        concurrency: 4,
        timeoutMs: TIMEOUT_MS,
        maxAttempts: MAX_ATTEMPTS,
        accounts: [
          { id: A, roleArn: role(A), regions: ['eu-west-1', 'eu-central-1', 'us-east-2'] },
          { id: B, roleArn: role(B), regions: ['eu-west-1'] },
        ],
      });
      const started = Date.now();
      const outcome = await createDiscovery(config, { logger: silent }).discover();
      check({ outcome, elapsedMs: Date.now() - started, requests: [...proxy.requests()] });
    } finally {
      remove();
    }
  });

  it('stops cleanly while a request is held', async () => {
    const extra = await startAwsProxy({ upstream: moto.url });
    extra.faults.add({ fault: { kind: 'timeout' } });
    const pending = fetch(`${extra.url}/clusters`).then(
      (r) => r.status,
      () => 'closed',
    );
    await new Promise((r) => setTimeout(r, 50));
    expect(extra.stats.inFlight).toBe(1);
    await extra.stop();
    expect(await pending).toBe('closed');
    expect(extra.stats.inFlight).toBe(0);
  });
});
