/**
 * Acceptance of cloud event triggers (issue 7) against the sandbox: each documented sample
 * (aimed at a sandbox cluster) goes through its real handler — EventBridge for AWS, an API
 * Gateway v2 request for the Pub/Sub push and Event Grid endpoints — and the cluster is
 * rediscovered and reported to Slack (the local sink) within 60 s; a redelivered event acts
 * once; refused requests make no cloud call, touch no state and send nothing; and Google's
 * Pub/Sub emulator pushes through the OIDC relay to the endpoint end to end.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { IdempotencyAlreadyInProgressError } from '@aws-lambda-powertools/idempotency';
import { DescribeClusterCommand, EKSClient, TagResourceCommand } from '@aws-sdk/client-eks';
import {
  CreateQueueCommand,
  DeleteMessageCommand,
  ReceiveMessageCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import { AssumeRoleCommand, STSClient } from '@aws-sdk/client-sts';
import { ContainerServiceClient } from '@azure/arm-containerservice';
import { ClusterManagerClient } from '@google-cloud/container';
import type { APIGatewayProxyEventV2, Context, SQSEvent } from 'aws-lambda';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { createAzureClusterEventsHandler } from '../../functions/azure-cluster-events/handler.ts';
import { createGcpClusterEventsHandler } from '../../functions/gcp-cluster-events/handler.ts';
import { createOnClusterEventHandler } from '../../functions/on-cluster-event/handler.ts';
import { createWorkQueue } from '../../shared/clouds/aws/queue.ts';
import {
  clientOptions as armClientOptions,
  connectionOf,
  createCredential,
  requestPolicy,
} from '../../shared/clouds/azure/discovery.ts';
import { clientOptions as gkeClientOptions } from '../../shared/clouds/gcp/discovery.ts';
import { parseConfig } from '../../shared/config/load.ts';
import type { FleetConfig } from '../../shared/config/schema.ts';
import { parseEksEvent } from '../../shared/events/aws.ts';
import type { EventWiring, OpenIntake } from '../../shared/events/intake.ts';
import { handleClusterEvent, inProcessSend, type OpenEventDeps } from '../../shared/jobs/cluster-event.ts';
import { run } from '../../shared/jobs/discover.ts';
import type { Cluster, RegionCloud } from '../../shared/model.ts';
import { discoverDeps, openEventDeps, stateConfig } from '../../shared/runtime/deps.ts';
import { silentLogger } from '../../shared/runtime/logger.ts';
import { IDEMPOTENCY_NS } from '../../shared/state/idempotency.ts';
import { openStateStore } from '../../shared/state/index.ts';
import { INVENTORY } from '../../shared/state/records.ts';
import { SqliteStateStore } from '../../shared/state/sqlite.ts';
import { type CrmFake, startCrmFake } from '../sandbox/crm-fake.ts';
import { type Sandbox, startSandbox } from '../sandbox/index.ts';
import { waitFor } from '../sandbox/net.ts';
import { googlePushClaims, type JwksServer, startJwksServer } from '../sandbox/oidc.ts';
import {
  pubsubEmulatorMissing,
  startPubSubEmulator,
  startPushAuthRelay,
} from '../sandbox/pubsub-emulator.ts';
import { type SlackSink, startSlackSink } from '../sandbox/slack-sink.ts';

const FIXTURES = join('test', 'fixtures', 'events');
const AUDIENCE = 'https://events.fleetward.test/events/gcp';
const SERVICE_ACCOUNT = 'gke-events-push@fw-prod-core.iam.gserviceaccount.com';
const SLACK_ENV = 'FLEETWARD_TEST_EVENTS_SLACK';
const SECRET_ENV = 'FLEETWARD_TEST_EVENTGRID_SECRET';
/** Not a credential: a per-run random value shared by the test and the handler through the environment. */
const EVENTGRID_SECRET = `sandbox-${randomUUID()}`;

/** The one cloud call a rediscovery makes, per cloud (as the sandbox logs it). */
const DESCRIBE: Record<RegionCloud, string> = {
  aws: 'DescribeCluster',
  gcp: 'GetCluster',
  azure: 'managedClusters.get',
};

const fixture = (path: string): unknown => JSON.parse(readFileSync(join(FIXTURES, path), 'utf8'));

/** Replaces the samples' placeholders (one pass, so a replacement is never replaced again). */
function retarget(sample: unknown, map: Record<string, string>): unknown {
  const keys = Object.keys(map).sort((a, b) => b.length - a.length);
  const pattern = new RegExp(keys.map((k) => k.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')).join('|'), 'g');
  return JSON.parse(JSON.stringify(sample).replace(pattern, (m) => map[m]!));
}

/** An API Gateway HTTP API (payload 2.0) request, as Lambda receives it. */
function apiGatewayEvent(
  method: string,
  path: string,
  body: string,
  options: { headers?: Record<string, string>; query?: Record<string, string> } = {},
): APIGatewayProxyEventV2 {
  const query = options.query ?? {};
  return {
    version: '2.0',
    routeKey: `${method} ${path}`,
    rawPath: path,
    rawQueryString: new URLSearchParams(query).toString(),
    headers: { 'content-type': 'application/json', ...options.headers },
    ...(Object.keys(query).length > 0 ? { queryStringParameters: query } : {}),
    requestContext: {
      accountId: '111111111111',
      apiId: 'sandbox',
      domainName: 'sandbox.execute-api.localhost',
      domainPrefix: 'sandbox',
      http: { method, path, protocol: 'HTTP/1.1', sourceIp: '127.0.0.1', userAgent: 'test' },
      requestId: randomUUID(),
      routeKey: `${method} ${path}`,
      stage: '$default',
      time: new Date().toISOString(),
      timeEpoch: Date.now(),
    },
    body,
    isBase64Encoded: false,
  };
}

const lambdaContext = (name: string) =>
  ({
    functionName: name,
    awsRequestId: randomUUID(),
    getRemainingTimeInMillis: () => 60_000,
  }) as unknown as Context;

type SampleKind = 'create' | 'delete' | 'update';

interface Sample {
  cloud: RegionCloud;
  file: string;
  kind: SampleKind;
}

const SAMPLES: Sample[] = [
  { cloud: 'aws', file: 'aws/eks-create-cluster.json', kind: 'create' },
  { cloud: 'aws', file: 'aws/eks-delete-cluster.json', kind: 'delete' },
  { cloud: 'aws', file: 'aws/eks-update-cluster-version.json', kind: 'update' },
  { cloud: 'aws', file: 'aws/eks-tag-resource.json', kind: 'update' },
  { cloud: 'gcp', file: 'gcp/audit-create-cluster.json', kind: 'create' },
  { cloud: 'gcp', file: 'gcp/audit-delete-cluster.json', kind: 'delete' },
  { cloud: 'gcp', file: 'gcp/audit-set-labels.json', kind: 'update' },
  { cloud: 'gcp', file: 'gcp/audit-update-cluster.json', kind: 'update' },
  { cloud: 'gcp', file: 'gcp/notification-upgrade-available.json', kind: 'update' },
  { cloud: 'gcp', file: 'gcp/notification-upgrade.json', kind: 'update' },
  { cloud: 'gcp', file: 'gcp/notification-end-of-support.json', kind: 'update' },
  { cloud: 'azure', file: 'azure/eventgrid-resource-write-aks.json', kind: 'update' },
  { cloud: 'azure', file: 'azure/eventgrid-resource-delete-aks.json', kind: 'delete' },
  { cloud: 'azure', file: 'azure/eventgrid-new-kubernetes-version.json', kind: 'update' },
  { cloud: 'azure', file: 'azure/cloudevent-new-kubernetes-version.json', kind: 'update' },
  { cloud: 'azure', file: 'azure/eventgrid-cluster-support-ending.json', kind: 'update' },
  { cloud: 'azure', file: 'azure/eventgrid-cluster-support-ended.json', kind: 'update' },
];

describe('cloud event triggers against the sandbox (acceptance)', () => {
  let sandbox: Sandbox;
  let sink: SlackSink;
  let jwks: JwksServer;
  let crm: CrmFake;
  /** The sandbox's GCP project numbers (project id -> number), as Cloud Resource Manager knows them. */
  const projectNumbers = new Map<string, string>();
  let config: FleetConfig;
  let configFile: string;
  let store: SqliteStateStore;
  let clusters: Cluster[];
  /** How many times a handler opened its intake (state store, queue). */
  let opens = 0;
  /** How many times the rediscover-clusters work opened the cloud side (discoveries, project directory). */
  let cloudOpens = 0;
  let onAws: ReturnType<typeof createOnClusterEventHandler>;
  let onGcp: ReturnType<typeof createGcpClusterEventsHandler>;
  let onAzure: ReturnType<typeof createAzureClusterEventsHandler>;
  /** Receipt -> Slack latency (ms) per cloud. */
  const latencies: Record<string, number[]> = { aws: [], gcp: [], azure: [], 'gcp (emulator)': [] };

  beforeAll(async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fleetward-events-'));
    [sandbox, sink, jwks, crm] = await Promise.all([
      startSandbox({ mix: { aws: 2, gcp: 2, azure: 2, kubeconfig: 0 }, velero: false, dir }),
      startSlackSink({ rateLimit: false }),
      startJwksServer(),
      startCrmFake(),
    ]);
    process.env[SLACK_ENV] = sink.url('events');
    process.env[SECRET_ENV] = EVENTGRID_SECRET;
    const raw = parse(readFileSync(sandbox.configPath, 'utf8')) as Record<string, unknown>;
    const rawGcp = (raw.clouds as { gcp: { projects: { id: string }[]; resourceManagerEndpoint?: string } })
      .gcp;
    rawGcp.projects.forEach((p, i) => {
      projectNumbers.set(p.id, String(880000000001 + i));
      crm.setProject(p.id, String(880000000001 + i));
    });
    rawGcp.resourceManagerEndpoint = crm.url;
    const rawConfig = {
      ...raw,
      slack: { webhooks: { events: { from: 'env', name: SLACK_ENV } }, routes: [{ webhook: 'events' }] },
      events: {
        gcp: { audience: AUDIENCE, serviceAccountEmail: SERVICE_ACCOUNT, jwksUrl: jwks.url },
        azure: { auth: { type: 'secret', secret: { from: 'env', name: SECRET_ENV } } },
      },
    };
    config = parseConfig(rawConfig);
    // The deployed worker reads its config as a deployment does (FLEETWARD_CONFIG).
    configFile = join(dirname(sandbox.configPath), 'fleet-events.yaml');
    writeFileSync(configFile, JSON.stringify(rawConfig));
    // As locally (dispatch in-process): the intake hands its items straight to the
    // rediscover-clusters work instead of the queue, which the deployed worker consumes.
    const openClouds: OpenEventDeps = async (...args) => {
      cloudOpens++;
      return openEventDeps(...args);
    };
    const intake: OpenIntake = async (cfg, logger) => {
      opens++;
      const send = inProcessSend(cfg, logger, openClouds);
      const state = await openStateStore(stateConfig(cfg));
      return {
        config: cfg,
        store: state,
        logger,
        send: async (items, signal) => {
          await send(items, signal);
        },
        close: () => state.close(),
      };
    };
    const wiring: EventWiring = { config: async () => config, intake };
    onAws = createOnClusterEventHandler(wiring);
    onGcp = createGcpClusterEventsHandler(wiring);
    onAzure = createAzureClusterEventsHandler(wiring);

    // The inventory as the scheduled discovery left it.
    const deps = await discoverDeps(config, silentLogger, ['aws', 'gcp', 'azure']);
    const result = await run(deps);
    await deps.store.close();
    expect(result.failures).toEqual([]);
    clusters = result.clusters;
    store = new SqliteStateStore({ path: (config.state as { path: string }).path });
  }, 120_000);

  afterAll(async () => {
    const row = (cloud: string, ms: number[]) =>
      `${cloud}: n=${ms.length} max=${ms.length ? Math.max(...ms) : '-'}ms median=${
        ms.length ? [...ms].sort((a, b) => a - b)[Math.floor(ms.length / 2)] : '-'
      }ms`;
    console.log(
      `receipt->slack latency | ${Object.entries(latencies)
        .map(([c, ms]) => row(c, ms))
        .join(' | ')}`,
    );
    delete process.env[SLACK_ENV];
    delete process.env[SECRET_ENV];
    delete process.env.FLEETWARD_CONFIG;
    await store?.close();
    await Promise.all([sink?.stop(), jwks?.close(), crm?.stop()]);
    await sandbox?.stop();
    if (sandbox) rmSync(sandbox.dir, { recursive: true, force: true });
  });

  beforeEach(() => {
    sandbox.log.clear();
    opens = 0;
    cloudOpens = 0;
  });

  // --- the clouds' own APIs, to change a cluster behind Fleetward's back ---

  async function eksAs(account: string, region: string): Promise<EKSClient> {
    const base = { endpoint: sandbox.moto.url, region };
    const sts = new STSClient({
      ...base,
      credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
    });
    const out = await sts.send(
      new AssumeRoleCommand({ RoleArn: `arn:aws:iam::${account}:role/test-admin`, RoleSessionName: 'test' }),
    );
    sts.destroy();
    const c = out.Credentials!;
    return new EKSClient({
      ...base,
      credentials: {
        accessKeyId: c.AccessKeyId!,
        secretAccessKey: c.SecretAccessKey!,
        sessionToken: c.SessionToken!,
      },
    });
  }

  async function setTag(cluster: Cluster, key: string, value: string): Promise<void> {
    if (cluster.cloud === 'aws') {
      const eks = await eksAs(cluster.scope, cluster.region);
      const { cluster: described } = await eks.send(new DescribeClusterCommand({ name: cluster.name }));
      await eks.send(new TagResourceCommand({ resourceArn: described!.arn!, tags: { [key]: value } }));
      eks.destroy();
    } else if (cluster.cloud === 'gcp') {
      const gke = new ClusterManagerClient(gkeClientOptions(config.clouds.gcp!));
      const name = `projects/${cluster.scope}/locations/${cluster.region}/clusters/${cluster.name}`;
      const [current] = await gke.getCluster({ name });
      await gke.setLabels({
        name,
        resourceLabels: { ...current.resourceLabels, [key]: value },
        labelFingerprint: current.labelFingerprint!,
      });
      await gke.close();
    } else {
      const azure = config.clouds.azure!;
      const connection = connectionOf(azure);
      const arm = new ContainerServiceClient(
        await createCredential(azure.credential),
        cluster.scope,
        armClientOptions(connection, requestPolicy(connection, 10_000, undefined)),
      );
      const current = await arm.managedClusters.get(cluster.resourceGroup!, cluster.name);
      await arm.managedClusters.beginUpdateTagsAndWait(cluster.resourceGroup!, cluster.name, {
        tags: { ...current.tags, [key]: value },
      });
    }
  }

  const pick = (cloud: RegionCloud, i: number) => clusters.filter((c) => c.cloud === cloud)[i]!;

  /** The sample aimed at `target` (its name, scope and location), with a fresh event id. */
  function aim(sample: Sample, target: Cluster, eventId: string): unknown {
    if (sample.cloud === 'aws') {
      const event = retarget(fixture(sample.file), {
        '111122223333': target.scope,
        'us-west-2': target.region,
        '"test"': `"${target.name}"`,
        'cluster%2Ftest': `cluster%2F${target.name}`,
        'cluster/test': `cluster/${target.name}`,
      }) as { id: string; detail: { eventID: string } };
      event.id = randomUUID();
      event.detail.eventID = eventId;
      return event;
    }
    if (sample.cloud === 'gcp') {
      const body = retarget(fixture(sample.file), {
        'example-project': target.scope,
        '0123456789': target.scope,
        '123456789': target.scope,
        'europe-west3': target.region,
        'us-central1-c': target.region,
        'us-central1': target.region,
        'example-cluster': target.name,
        'test-cluster': target.name,
      }) as Record<string, unknown>;
      if (!('message' in body)) {
        // An audit log entry, as a log sink publishes it: the LogEntry JSON is the message data.
        return {
          message: {
            data: Buffer.from(JSON.stringify(body)).toString('base64'),
            attributes: { 'logging.googleapis.com/timestamp': String(body.timestamp) },
            messageId: eventId,
            publishTime: new Date().toISOString(),
          },
          subscription: `projects/${target.scope}/subscriptions/fleetward-gke-audit`,
        };
      }
      (body.message as { messageId: string }).messageId = eventId;
      return body;
    }
    const body = retarget(fixture(sample.file), {
      '11111111-2222-3333-4444-555555555555': target.scope,
      'example-rg': target.resourceGroup!,
      'example-aks': target.name,
    });
    for (const event of Array.isArray(body) ? body : [body]) (event as { id: string }).id = eventId;
    return body;
  }

  /** Delivers a sample the way its cloud does, through the real handler; the HTTP status (AWS: 200). */
  async function deliver(cloud: RegionCloud, body: unknown): Promise<{ status: number; body: unknown }> {
    if (cloud === 'aws') {
      // EventBridge has no status: a handled event counts as 200, an ignored one as 202.
      const result = await onAws(body, lambdaContext('on-cluster-event'));
      return { status: result.status === 'accepted' ? 200 : 202, body: result };
    }
    if (cloud === 'gcp') {
      const token = await jwks.sign(googlePushClaims(AUDIENCE, SERVICE_ACCOUNT));
      const response = await onGcp(
        apiGatewayEvent('POST', '/events/gcp', JSON.stringify(body), {
          headers: { authorization: `Bearer ${token}` },
        }),
        lambdaContext('gcp-cluster-events'),
      );
      return { status: response.statusCode, body: JSON.parse(response.body || 'null') };
    }
    const response = await onAzure(
      apiGatewayEvent('POST', '/events/azure', JSON.stringify(body), {
        headers: { 'aeg-event-type': 'Notification' },
        query: { code: EVENTGRID_SECRET },
      }),
      lambdaContext('azure-cluster-events'),
    );
    return { status: response.statusCode, body: JSON.parse(response.body || 'null') };
  }

  const slackAbout = (text: string, since: number) =>
    sink.messages('events').filter((m) => m.at >= since && JSON.stringify(m.body).includes(text));

  async function waitForSlack(text: string, since: number, timeoutMs = 60_000) {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const found = slackAbout(text, since);
      if (found.length > 0) return found[0]!;
      await new Promise((r) => setTimeout(r, 20));
    }
    throw new Error(`no slack message about ${text} within ${timeoutMs} ms`);
  }

  it.each(SAMPLES)(
    '$file: the $kind event rediscovers the cluster and reaches Slack within 60 s',
    async (sample) => {
      // Prepare: the cloud changed behind Fleetward's back (a tag), or the cluster is new to
      // the inventory (create), or the inventory holds a cluster the cloud no longer has (delete).
      const real = pick(sample.cloud, 0);
      const marker = `e${randomUUID().slice(0, 8)}`;
      let target = real;
      if (sample.kind === 'delete') {
        target = { ...real, name: `${real.name}-gone`, id: real.id.replace(/[^/]+$/, `${real.name}-gone`) };
        await store.putMany(INVENTORY, [{ key: target.id, value: target }]);
      } else {
        await setTag(real, 'fleetward-event', marker);
        if (sample.kind === 'create') await store.deleteMany(INVENTORY, [real.id]);
      }
      sandbox.log.clear();
      const eventId = randomUUID();
      const body = aim(sample, target, eventId);

      // Act
      const receivedAt = Date.now();
      const response = await deliver(sample.cloud, body);
      const message = await waitForSlack(eventId, receivedAt);

      // Assess
      expect(response.status).toBe(200);
      expect(sandbox.log.count(sample.cloud, DESCRIBE[sample.cloud])).toBe(1);
      const record = await store.get<Cluster>(INVENTORY, target.id);
      if (sample.kind === 'delete') {
        expect(record).toBeUndefined();
      } else {
        expect(record?.tags['fleetward-event']).toBe(marker);
      }
      expect(JSON.stringify(message.body)).toContain(target.id);
      const latency = message.at - receivedAt;
      expect(latency).toBeLessThan(60_000);
      latencies[sample.cloud]!.push(latency);
    },
  );

  it.each(['aws', 'gcp', 'azure'] as const)(
    '%s: the same event delivered three times acts once (one cloud call, one Slack message)',
    async (cloud) => {
      // Prepare
      const real = pick(cloud, 1);
      const marker = `r${randomUUID().slice(0, 8)}`;
      await setTag(real, 'fleetward-event', marker);
      sandbox.log.clear();
      const eventId = randomUUID();
      const sample = SAMPLES.find((s) => s.cloud === cloud && s.kind === 'update')!;
      const body = aim(sample, real, eventId);
      const since = Date.now();

      // Act
      const responses = [];
      for (let i = 0; i < 3; i++) responses.push(await deliver(cloud, body));
      await waitForSlack(eventId, since);
      await new Promise((r) => setTimeout(r, 300));

      // Assess
      expect(responses.map((r) => r.status)).toEqual([200, 200, 200]);
      expect(sandbox.log.count(cloud, DESCRIBE[cloud])).toBe(1);
      expect(slackAbout(eventId, since)).toHaveLength(1);
      expect((await store.get<Cluster>(INVENTORY, real.id))?.tags['fleetward-event']).toBe(marker);
      if (cloud === 'gcp')
        expect(responses.map((r) => (r.body as { replayed: number }).replayed)).toEqual([0, 1, 1]);
    },
  );

  it('gcp: a GKE notification naming the project number, as GKE sends it, rediscovers the cluster of the configured project', async () => {
    // Prepare: the docs' UpgradeAvailableEvent with the real shape of `project_id` (the number)
    const real = pick('gcp', 0);
    const marker = `n${randomUUID().slice(0, 8)}`;
    await setTag(real, 'fleetward-event', marker);
    sandbox.log.clear();
    const eventId = randomUUID();
    const body = aim(SAMPLES[8]!, real, eventId) as { message: { attributes: Record<string, string> } };
    body.message.attributes.project_id = projectNumbers.get(real.scope)!;
    const since = Date.now();

    // Act
    const response = await deliver('gcp', body);

    // Assess
    expect(response.status).toBe(200);
    const message = await waitForSlack(eventId, since);
    expect(sandbox.log.count('gcp', 'GetCluster')).toBe(1);
    expect((await store.get<Cluster>(INVENTORY, real.id))?.tags['fleetward-event']).toBe(marker);
    expect(JSON.stringify(message.body)).toContain(real.id);
  });

  it('gcp: a GKE security bulletin becomes a finding on the affected clusters and a Slack message, without a cloud call', async () => {
    // Prepare: the sample bulletin, aimed at the minor version of a sandbox cluster
    const target = pick('gcp', 0);
    const minor = target.kubernetesVersion!.split('.').slice(0, 2).join('.');
    const body = aim(
      { cloud: 'gcp', file: 'gcp/notification-security-bulletin.json', kind: 'update' },
      target,
      randomUUID(),
    ) as { message: { attributes: Record<string, string> } };
    const payload = JSON.parse(body.message.attributes.payload!);
    const bulletinId = `GCP-TEST-${randomUUID().slice(0, 6)}`;
    body.message.attributes.payload = JSON.stringify({
      ...payload,
      bulletinId,
      affectedSupportedMinors: [minor],
      patchedVersions: [`${minor}.999-gke.1`],
      suggestedUpgradeTarget: `${minor}.999-gke.1`,
    });
    sandbox.log.clear();
    const since = Date.now();

    // Act
    const response = await deliver('gcp', body);

    // Assess
    expect(response.status).toBe(200);
    const message = await waitForSlack(bulletinId, since);
    const affected = clusters.filter(
      (c) => c.cloud === 'gcp' && c.kubernetesVersion?.startsWith(`${minor}.`),
    );
    for (const c of affected) {
      const findings = await store.get<{ message: string }[]>('findings', `security-bulletin/${c.id}`);
      expect(findings?.some((f) => f.message.startsWith(`${bulletinId}:`))).toBe(true);
      expect(JSON.stringify(message.body)).toContain(c.id);
    }
    expect(sandbox.log.entries).toEqual([]);
  });

  it('azure: a batch with a validation event answers it and still acts on the other event', async () => {
    // Prepare
    const real = pick('azure', 0);
    const marker = `v${randomUUID().slice(0, 8)}`;
    await setTag(real, 'fleetward-event', marker);
    sandbox.log.clear();
    const eventId = randomUUID();
    const sample = SAMPLES.find((x) => x.file === 'azure/eventgrid-resource-write-aks.json')!;
    const body = [
      ...(fixture('azure/eventgrid-subscription-validation.json') as unknown[]),
      ...(aim(sample, real, eventId) as unknown[]),
    ];
    const since = Date.now();

    // Act
    const response = await deliver('azure', body);
    await waitForSlack(eventId, since);

    // Assess
    expect(response.status).toBe(200);
    expect(response.body).toEqual({
      validationResponse: '512d38b6-c7b8-40c8-89fe-f46f9e9622b6',
      accepted: 1,
      ignored: 0,
    });
    expect((await store.get<Cluster>(INVENTORY, real.id))?.tags['fleetward-event']).toBe(marker);
  });

  it('lets one of three concurrent deliveries act; the others are told it is in progress', async () => {
    // Prepare
    const real = pick('aws', 1);
    const event = parseEksEvent(aim(SAMPLES[3]!, real, randomUUID()));
    const deps = await openEventDeps(config, silentLogger, ['aws']);
    sandbox.log.clear();

    // Act
    const settled = await Promise.allSettled(
      [1, 2, 3].map(() =>
        handleClusterEvent(deps, event, { lambdaContext: lambdaContext('on-cluster-event') }),
      ),
    );
    await deps.close();

    // Assess
    expect(settled.filter((s) => s.status === 'fulfilled')).toHaveLength(1);
    for (const s of settled.filter((x) => x.status === 'rejected')) {
      expect((s as PromiseRejectedResult).reason).toBeInstanceOf(IdempotencyAlreadyInProgressError);
    }
    expect(sandbox.log.count('aws', 'DescribeCluster')).toBe(1);
  });

  describe('refused requests: the right status, no cloud call, no state, no Slack', () => {
    const gcpBody = () => JSON.stringify(aim(SAMPLES[8]!, pick('gcp', 0), randomUUID()));
    const azureBody = () => JSON.stringify(aim(SAMPLES[11]!, pick('azure', 0), randomUUID()));
    const claims = () => googlePushClaims(AUDIENCE, SERVICE_ACCOUNT);
    const big = JSON.stringify({
      message: { data: 'A'.repeat(300 * 1024), messageId: '1', publishTime: new Date().toISOString() },
    });

    const cases: [string, 'gcp' | 'azure', () => Promise<APIGatewayProxyEventV2>, number][] = [
      ['gcp: forged JWT', 'gcp', async () => post('gcp', gcpBody(), await jwks.forge(claims())), 401],
      [
        'gcp: wrong audience',
        'gcp',
        async () =>
          post(
            'gcp',
            gcpBody(),
            await jwks.sign(googlePushClaims('https://elsewhere.example/push', SERVICE_ACCOUNT)),
          ),
        401,
      ],
      [
        'gcp: expired token',
        'gcp',
        async () =>
          post(
            'gcp',
            gcpBody(),
            await jwks.sign(claims(), { issuedAt: Math.floor(Date.now() / 1000) - 7200, ttlSec: 600 }),
          ),
        401,
      ],
      [
        'gcp: another service account',
        'gcp',
        async () =>
          post(
            'gcp',
            gcpBody(),
            await jwks.sign(googlePushClaims(AUDIENCE, 'intruder@example.iam.gserviceaccount.com')),
          ),
        401,
      ],
      ['gcp: no token', 'gcp', async () => post('gcp', gcpBody()), 401],
      [
        'gcp: malformed body',
        'gcp',
        async () => post('gcp', '{"message": {"data": 42}}', await jwks.sign(claims())),
        400,
      ],
      ['gcp: not JSON', 'gcp', async () => post('gcp', '{not json', await jwks.sign(claims())), 400],
      ['gcp: body over 256 KB', 'gcp', async () => post('gcp', big, await jwks.sign(claims())), 413],
      ['azure: missing Event Grid auth', 'azure', async () => post('azure', azureBody()), 401],
      [
        'azure: wrong secret',
        'azure',
        async () => post('azure', azureBody(), undefined, 'not-the-secret'),
        401,
      ],
      [
        'azure: malformed body',
        'azure',
        async () => post('azure', '[{"id": 1}]', undefined, EVENTGRID_SECRET),
        400,
      ],
      ['azure: body over 256 KB', 'azure', async () => post('azure', big, undefined, EVENTGRID_SECRET), 413],
      [
        'azure: GET',
        'azure',
        async () => apiGatewayEvent('GET', '/events/azure', '', { query: { code: EVENTGRID_SECRET } }),
        405,
      ],
    ];

    function post(cloud: 'gcp' | 'azure', body: string, token?: string, code?: string) {
      return apiGatewayEvent('POST', `/events/${cloud}`, body, {
        headers: token ? { authorization: `Bearer ${token}` } : {},
        ...(code ? { query: { code } } : {}),
      });
    }

    it.each(cases)('%s -> %i', async (_label, cloud, request, status) => {
      // Prepare
      const event = await request();
      const since = Date.now();
      const recordsBefore = (await store.list(IDEMPOTENCY_NS)).length;

      // Act
      const response =
        cloud === 'gcp'
          ? await onGcp(event, lambdaContext('gcp-cluster-events'))
          : await onAzure(event, lambdaContext('azure-cluster-events'));
      await new Promise((r) => setTimeout(r, 100));

      // Assess
      expect(response.statusCode).toBe(status);
      expect(sandbox.log.entries).toEqual([]);
      expect(opens).toBe(0);
      expect(cloudOpens).toBe(0);
      expect((await store.list(IDEMPOTENCY_NS)).length).toBe(recordsBefore);
      expect(sink.messages('events').filter((m) => m.at >= since)).toEqual([]);
    });

    it.each([
      ['azure', 'azure/eventgrid-resource-write-storage.json', 202],
      ['azure', 'azure/eventgrid-subscription-validation.json', 200],
    ] as const)('%s %s (nothing to act on) -> %i without a cloud call', async (cloud, file, status) => {
      // Prepare
      const body = aim({ cloud, file, kind: 'update' }, pick(cloud, 0), randomUUID());

      // Act
      const response = await deliver(cloud, body);

      // Assess
      expect(response.status).toBe(status);
      expect(sandbox.log.entries).toEqual([]);
      expect(opens).toBe(0);
    });

    it('aws: an EventBridge event that is not an EKS change is logged and ignored, not thrown', async () => {
      // Prepare: a failed call (errorCode) and a non-EKS source
      const failed = aim(SAMPLES[3]!, pick('aws', 0), randomUUID()) as { detail: Record<string, unknown> };
      failed.detail.errorCode = 'AccessDenied';
      const other = { ...(aim(SAMPLES[3]!, pick('aws', 0), randomUUID()) as object), source: 'aws.s3' };

      // Act
      const results = [
        await onAws(failed, lambdaContext('on-cluster-event')),
        await onAws(other, lambdaContext('on-cluster-event')),
        await onAws({ unexpected: true }, lambdaContext('on-cluster-event')),
      ];

      // Assess
      expect(results.map((r) => r.status)).toEqual(['ignored', 'ignored', 'ignored']);
      expect(sandbox.log.entries).toEqual([]);
      expect(opens).toBe(0);
    });

    it('an event about a scope Fleetward does not watch is acknowledged (202) without a cloud call', async () => {
      // Prepare
      const stranger = { ...pick('gcp', 0), scope: 'not-our-project' };
      const body = aim(SAMPLES[8]!, stranger, randomUUID());

      // Act
      const response = await deliver('gcp', body);

      // Assess
      expect(response.status).toBe(202);
      expect(sandbox.log.entries).toEqual([]);
      expect(cloudOpens).toBe(0);
    });
  });

  describe('deployed shape: endpoint -> SQS (moto) -> rediscover-clusters-worker', () => {
    it.each(['aws', 'gcp', 'azure'] as const)(
      '%s: the endpoint enqueues ids only, the worker rediscovers and reaches Slack within 60 s; a redelivery acts once',
      async (cloud) => {
        // Prepare: a real queue on moto; the endpoint with the queue as its intake's send
        const sqs = new SQSClient({
          endpoint: sandbox.moto.url,
          region: 'eu-central-1',
          credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
        });
        const queueUrl = (
          await sqs.send(new CreateQueueCommand({ QueueName: `fleetward-test-rediscover-${cloud}` }))
        ).QueueUrl!;
        const queue = createWorkQueue({
          env: { FLEETWARD_QUEUE_REDISCOVER_CLUSTERS: queueUrl },
          client: sqs,
        });
        const intake: OpenIntake = async (cfg, logger) => {
          opens++;
          const state = await openStateStore(stateConfig(cfg));
          return {
            config: cfg,
            store: state,
            logger,
            send: (items, signal) => queue.send('rediscover-clusters', items, signal ? { signal } : {}),
            close: () => state.close(),
          };
        };
        const wiring: EventWiring = { config: async () => config, intake };
        const endpoint =
          cloud === 'aws'
            ? createOnClusterEventHandler(wiring)
            : cloud === 'gcp'
              ? createGcpClusterEventsHandler(wiring)
              : createAzureClusterEventsHandler(wiring);
        process.env.FLEETWARD_CONFIG = configFile;
        const { handler: worker } = await import('../../functions/rediscover-clusters-worker/handler.ts');
        const real = pick(cloud, 1);
        const marker = `q${randomUUID().slice(0, 8)}`;
        await setTag(real, 'fleetward-event', marker);
        sandbox.log.clear();
        const eventId = randomUUID();
        const body = aim(SAMPLES.find((x) => x.cloud === cloud && x.kind === 'update')!, real, eventId);

        // Act: deliver twice; then do what the SQS event source does (receive, invoke, delete)
        const receivedAt = Date.now();
        const statuses: number[] = [];
        for (let i = 0; i < 2; i++) {
          if (cloud === 'aws') {
            const r = await endpoint(body as never, lambdaContext('on-cluster-event'));
            statuses.push((r as { status: string }).status === 'accepted' ? 200 : 202);
          } else {
            const token = await jwks.sign(googlePushClaims(AUDIENCE, SERVICE_ACCOUNT));
            const r = (await endpoint(
              apiGatewayEvent('POST', `/events/${cloud}`, JSON.stringify(body), {
                headers:
                  cloud === 'gcp'
                    ? { authorization: `Bearer ${token}` }
                    : { 'aeg-event-type': 'Notification' },
                ...(cloud === 'azure' ? { query: { code: EVENTGRID_SECRET } } : {}),
              }) as never,
              lambdaContext(`${cloud}-cluster-events`),
            )) as { statusCode: number };
            statuses.push(r.statusCode);
          }
        }
        const cloudCallsByEndpoint = sandbox.log.entries.length;
        const bodies: string[] = [];
        const failures: unknown[] = [];
        for (let round = 0; round < 5; round++) {
          const received = await sqs.send(
            new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1 }),
          );
          const messages = received.Messages ?? [];
          if (messages.length === 0) break;
          const event: SQSEvent = {
            Records: messages.map((m) => ({
              messageId: m.MessageId!,
              receiptHandle: m.ReceiptHandle!,
              body: m.Body!,
              attributes: {} as never,
              messageAttributes: {},
              md5OfBody: m.MD5OfBody!,
              eventSource: 'aws:sqs',
              eventSourceARN: `arn:aws:sqs:eu-central-1:123456789012:fleetward-test-rediscover-${cloud}`,
              awsRegion: 'eu-central-1',
            })),
          };
          const response = await worker(event, lambdaContext('rediscover-clusters-worker'));
          failures.push(...response.batchItemFailures);
          for (const m of messages) {
            bodies.push(m.Body!);
            await sqs.send(new DeleteMessageCommand({ QueueUrl: queueUrl, ReceiptHandle: m.ReceiptHandle! }));
          }
        }
        const message = await waitForSlack(eventId, receivedAt);
        sqs.destroy();

        // Assess
        expect(statuses).toEqual([200, 200]);
        expect(cloudCallsByEndpoint).toBe(0);
        expect(bodies).toHaveLength(1);
        expect(Object.keys(JSON.parse(bodies[0]!)).sort()).toEqual(['clusterId', 'job', 'runId']);
        expect(bodies[0]).not.toContain(eventId);
        expect(failures).toEqual([]);
        expect(sandbox.log.count(cloud, DESCRIBE[cloud])).toBe(1);
        expect((await store.get<Cluster>(INVENTORY, real.id))?.tags['fleetward-event']).toBe(marker);
        expect(JSON.stringify(message.body)).toContain(real.id);
        expect(message.at - receivedAt).toBeLessThan(60_000);
        latencies[`${cloud} (queue)`] = [...(latencies[`${cloud} (queue)`] ?? []), message.at - receivedAt];
      },
      90_000,
    );
  });

  describe('Pub/Sub emulator end to end', () => {
    it('pushes a GKE notification through the OIDC relay to the endpoint: rediscovered and in Slack', async (ctx) => {
      // Prepare: emulator -> relay (adds Google's OIDC token) -> loopback server -> gcp handler
      const missing = pubsubEmulatorMissing();
      if (missing) ctx.skip(`needs the Pub/Sub emulator: ${missing}`);
      const emulator = await startPubSubEmulator({ projectId: 'fw-prod-core' });
      const statuses: number[] = [];
      const server: Server = createServer((req, res) => {
        const chunks: Buffer[] = [];
        req.on('data', (c: Buffer) => chunks.push(c));
        req.on('end', async () => {
          const headers: Record<string, string> = {};
          for (const [k, v] of Object.entries(req.headers)) if (typeof v === 'string') headers[k] = v;
          const response = await onGcp(
            apiGatewayEvent(req.method ?? 'POST', '/events/gcp', Buffer.concat(chunks).toString('utf8'), {
              headers,
            }),
            lambdaContext('gcp-cluster-events'),
          ).catch(() => ({ statusCode: 500, headers: {}, body: '' }));
          statuses.push(response.statusCode);
          res.writeHead(response.statusCode, response.headers).end(response.body);
        });
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      const endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}/events/gcp`;
      const relay = await startPushAuthRelay({
        target: endpoint,
        audience: AUDIENCE,
        serviceAccountEmail: SERVICE_ACCOUNT,
        sign: (claims) => jwks.sign({ ...claims }),
      });
      try {
        await emulator.createTopic('gke-notifications');
        await emulator.createPushSubscription('fleetward-gke-events', 'gke-notifications', relay.url, {
          oidcToken: { serviceAccountEmail: SERVICE_ACCOUNT, audience: AUDIENCE },
        });
        const target = pick('gcp', 1);
        const marker = `p${randomUUID().slice(0, 8)}`;
        await setTag(target, 'fleetward-event', marker);
        sandbox.log.clear();
        const sample = aim(SAMPLES[8]!, target, 'unused') as {
          message: { attributes: Record<string, string>; data: string };
        };

        // Act
        const publishedAt = Date.now();
        const [messageId] = await emulator.publish('gke-notifications', [
          { data: Buffer.from(sample.message.data, 'base64'), attributes: sample.message.attributes },
        ]);
        const message = await waitForSlack(messageId!, publishedAt);
        // The handler posts to Slack before it answers the push: wait for its answer too.
        await waitFor(async () => statuses.length > 0, 20_000, 'the endpoint answering the push');

        // Assess
        expect(statuses[0]).toBe(200);
        expect(sandbox.log.count('gcp', 'GetCluster')).toBe(1);
        expect((await store.get<Cluster>(INVENTORY, target.id))?.tags['fleetward-event']).toBe(marker);
        expect(JSON.stringify(message.body)).toContain(target.id);
        latencies['gcp (emulator)']!.push(message.at - publishedAt);
        expect(message.at - publishedAt).toBeLessThan(60_000);
      } finally {
        await relay.close();
        await new Promise<void>((resolve) => server.close(() => resolve()));
        await emulator.stop();
      }
    }, 90_000);
  });
});
