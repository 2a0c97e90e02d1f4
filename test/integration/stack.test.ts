/**
 * The deployed stack, locally (`npm run stack`): the packaged functions run from their zips the
 * way AWS calls them, against the sandbox. One schedule tick of backup-clusters goes planner ->
 * SQS queue (moto) -> worker invocations from the event source mapping -> state (DynamoDB in
 * moto, the template's table) -> a Slack message (webhook URL from SSM in moto) in the sink; a
 * poison item ends in the dead-letter queue the template's RedrivePolicy names; the HTTP API
 * routes answer as API Gateway does. IAM is enforced: each function calls with its own key and
 * the stack refuses what the function's generated role does not allow, so every flow here also
 * proves its role is enough, and one test takes a permission away to see it refused.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateSecretCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { GetQueueAttributesCommand, SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { PutParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { FUNCTIONS } from '../../shared/deploy/functions.ts';
import type { Cluster, Finding } from '../../shared/model.ts';
import type { StateStore } from '../../shared/ports.ts';
import { regionCountry } from '../../shared/residency/index.ts';
import { WORK_JOBS } from '../../shared/runtime/dispatch.ts';
import { openStateStore } from '../../shared/state/index.ts';
import { type BackupRecord, INVENTORY, NS } from '../../shared/state/records.ts';
import { type Sandbox, startSandbox } from '../sandbox/index.ts';
import { freePort } from '../sandbox/net.ts';
import { EXAMPLE_CONFIG, HOME, packageService, REGIONAL_IN } from '../sandbox/package.ts';
import { type SlackSink, startSlackSink } from '../sandbox/slack-sink.ts';
import { type Stack, startStack } from '../sandbox/stack.ts';
import { seedClusterId } from '../sandbox/velero-fleet.ts';

/** The regional deployment's region (India, ap-south-1) and the home deployment's. */
const REGION = 'ap-south-1';
const HOME_REGION = 'eu-central-1';
const CLUSTERS = 12;
/** The functions reachable from the internet (HTTP API routes). */
const INTERNET_FACING = FUNCTIONS.filter((f) => f.internetFacing).map((f) => f.name);
/**
 * The AWS accounts the packaged roles may assume a reader role in: those of the config the
 * package was built with. An account added only in the deployed config (AppConfig) is refused
 * `sts:AssumeRole` until the roles are regenerated: the deployed config names only these.
 */
const PACKAGED_ACCOUNTS = (
  parse(readFileSync(EXAMPLE_CONFIG, 'utf8')) as { clouds: { aws: { accounts: { id: string }[] } } }
).clouds.aws.accounts.map((a) => String(a.id));

/** The Event Grid endpoint's one secret (Secrets Manager), as the packaged config names it. */
const EVENT_SECRET = (
  parse(readFileSync(EXAMPLE_CONFIG, 'utf8')) as { events: { azure: { auth: { secret: { name: string } } } } }
).events.azure.auth.secret.name;

describe('the deployed stack, locally', () => {
  let sandbox: Sandbox;
  let sink: SlackSink;
  let stack: Stack;
  /** The home role's functions (the HTTP API); `stack` is the regional role's (India). */
  let homeStack: Stack;
  let sqs: SQSClient;
  let store: StateStore;
  const dir = mkdtempSync(join(tmpdir(), 'fleetward-stack-'));

  beforeAll(async () => {
    const [packaged, home, started, slack] = await Promise.all([
      packageService(REGIONAL_IN),
      packageService(HOME),
      startSandbox({ clusters: CLUSTERS, dir: join(dir, 'sandbox') }),
      startSlackSink({ rateLimit: false }),
    ]);
    sandbox = started;
    sink = slack;
    expect(packaged.status, packaged.output).toBe(0);
    expect(home.status, home.output).toBe(0);
    // The deployment's secrets live where each deployment keeps them: SSM parameters (moto) of its region.
    for (const region of [REGION, HOME_REGION]) {
      const ssm = new SSMClient({ endpoint: sandbox.moto.url, region });
      await ssm.send(
        new PutParameterCommand({
          Name: '/fleetward/slack/ops',
          Type: 'SecureString',
          Value: sink.url('ops'),
        }),
      );
      ssm.destroy();
      // The Event Grid endpoint's one secret, where the packaged config (fleet.example.yaml) names it:
      // its generated role may read that secret and no other.
      const secrets = new SecretsManagerClient({ endpoint: sandbox.moto.url, region });
      await secrets.send(new CreateSecretCommand({ Name: EVENT_SECRET, SecretString: 'sandbox-secret' }));
      secrets.destroy();
    }
    const config = parse(readFileSync(sandbox.configPath, 'utf8'));
    config.slack = {
      webhooks: { ops: { from: 'ssm', name: '/fleetward/slack/ops' } },
      routes: [{ webhook: 'ops' }],
    };
    config.events = {
      azure: { auth: { type: 'secret', secret: { from: 'secretsmanager', name: EVENT_SECRET } } },
    };
    // As deployed: member accounts are reached with the function's own role (no credentials in
    // the config), through the stack's AWS endpoint, so its IAM check sees each sts:AssumeRole.
    const [regionalPort, homePort] = [await freePort(), await freePort()];
    const deploy = (name: string, port: number) => {
      const path = join(dir, `${name}.yaml`);
      const { credentials: _sandboxProfile, ...aws } = config.clouds.aws;
      aws.accounts = aws.accounts.filter((a: { id: string }) => PACKAGED_ACCOUNTS.includes(a.id));
      writeFileSync(
        path,
        stringify({
          ...config,
          clouds: { ...config.clouds, aws: { ...aws, endpoint: `http://127.0.0.1:${port}` } },
        }),
      );
      return path;
    };
    stack = await startStack({
      packageDir: packaged.dir,
      iam: 'enforce',
      awsEndpoint: sandbox.moto.url,
      awsPort: regionalPort,
      config: deploy('regional', regionalPort),
      schedules: false,
      // A failed item comes back after 1 s instead of the queue's 30 minutes.
      retryVisibilitySeconds: 1,
      env: { POWERTOOLS_LOG_LEVEL: 'ERROR', POWERTOOLS_METRICS_DISABLED: 'true' },
      // FLEETWARD_STACK_LOGS=1 prints the functions' log lines (errors only, as set above).
      onLog: (fn, line) => process.env.FLEETWARD_STACK_LOGS && console.error(`[${fn}] ${line}`),
    });
    homeStack = await startStack({
      packageDir: home.dir,
      iam: 'enforce',
      awsEndpoint: sandbox.moto.url,
      awsPort: homePort,
      config: deploy('home', homePort),
      schedules: false,
      // A failed item comes back after 1 s instead of the queue's 30 minutes.
      retryVisibilitySeconds: 1,
      env: { POWERTOOLS_LOG_LEVEL: 'ERROR', POWERTOOLS_METRICS_DISABLED: 'true' },
      // FLEETWARD_STACK_LOGS=1 prints the functions' log lines (errors only, as set above).
      onLog: (fn, line) => process.env.FLEETWARD_STACK_LOGS && console.error(`[${fn}] ${line}`),
    });
    sqs = new SQSClient({ endpoint: sandbox.moto.url, region: REGION });
    store = await openStateStore({
      type: 'dynamodb',
      table: stack.tables[0]!,
      region: REGION,
      endpoint: sandbox.moto.url,
    });
  }, 900_000);

  afterAll(async () => {
    await store?.close();
    sqs?.destroy();
    await stack?.stop();
    await homeStack?.stop();
    await sink?.stop();
    await sandbox?.stop();
  });

  /** Posts a cluster write as Event Grid delivers it (the documented sample, naming a sandbox cluster). */
  function postAksWrite(): Promise<Response> {
    const aks = sandbox.fleet.find((c) => c.cloud === 'azure')!;
    const sample = readFileSync('test/fixtures/events/azure/eventgrid-resource-write-aks.json', 'utf8')
      .replaceAll('11111111-2222-3333-4444-555555555555', aks.scope)
      .replaceAll('example-rg', aks.resourceGroup ?? 'rg-sandbox')
      .replaceAll('example-aks', aks.name)
      .replace('4db48cba-50a2-455a-93b4-de41a3b5b7f6', randomUUID());
    return fetch(`${homeStack.url}/events/azure?code=sandbox-secret`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'aeg-event-type': 'Notification' },
      body: sample,
    });
  }

  const queue = (suffix: string) => stack.queues.find((q) => q.name.endsWith(suffix))!;
  async function depth(url: string): Promise<number> {
    const out = await sqs.send(
      new GetQueueAttributesCommand({
        QueueUrl: url,
        AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
      }),
    );
    return (
      Number(out.Attributes?.ApproximateNumberOfMessages) +
      Number(out.Attributes?.ApproximateNumberOfMessagesNotVisible)
    );
  }

  it('creates the template queues, dead-letter queues and state table in moto', () => {
    expect(stack.queues.map((q) => q.name).sort()).toEqual(
      [
        'fleetward-dev-in-async-failures',
        ...WORK_JOBS.filter((job) => job !== 'reconcile-tags' && job !== 'rediscover-clusters').flatMap(
          (job) => [`fleetward-dev-in-${job}`, `fleetward-dev-in-${job}-dlq`],
        ),
      ].sort(),
    );
    expect(stack.tables).toEqual(['fleetward-dev-in-state']);
    // Home, in its own region and under its own names: nothing shared with the regional deployment.
    expect(homeStack.tables).toEqual(['fleetward-dev-home-state']);
    expect(homeStack.queues.map((q) => q.name).sort()).toEqual([
      'fleetward-dev-home-async-failures',
      'fleetward-dev-home-reconcile-tags',
      'fleetward-dev-home-reconcile-tags-dlq',
      'fleetward-dev-home-rediscover-clusters',
      'fleetward-dev-home-rediscover-clusters-dlq',
    ]);
    expect(stack.schedules.find((s) => s.function === 'backup-clusters')?.expression).toBe('rate(1 hour)');
  });

  it('runs one backup-clusters tick: planner -> queue -> workers -> state -> Slack', async () => {
    // Prepare: the inventory the planner reads, from one discovery tick
    // Discovery looks at the whole configured fleet; the India deployment keeps (and plans from)
    // only its own jurisdiction's clusters: its state store holds no other inventory.
    const configured = sandbox.fleet.filter((c) => c.cloud !== 'aws' || PACKAGED_ACCOUNTS.includes(c.scope));
    const seededInIndia = configured.filter(
      (c) => c.cloud !== 'kubeconfig' && regionCountry(c.cloud, c.region) === 'IN',
    ).length;
    const discovered = await stack.tick('discover-clusters');
    expect(discovered.error).toBeUndefined();
    expect((discovered.result as { clusters: number }).clusters).toBe(seededInIndia);
    expect(seededInIndia).toBeGreaterThan(0);
    expect(seededInIndia).toBeLessThan(configured.length);
    const inventory = (await store.list<Cluster>(INVENTORY)).map((i) => i.value);
    expect(inventory.every((c) => c.jurisdiction === 'in')).toBe(true);
    const india = inventory.map((c) => c.id);
    expect(india).toHaveLength(seededInIndia);
    // One India cluster's Kubernetes API refuses Fleetward, so the job has a finding to tell Slack.
    const names = sandbox.fleet.map((c) => c.name);
    const faulted = sandbox.fleet.find(
      (c) => india.includes(seedClusterId(c)) && names.indexOf(c.name) === names.lastIndexOf(c.name),
    );
    expect(faulted).toBeDefined();
    sandbox.faults.add({ cloud: 'kube', scope: faulted!.name, fault: { kind: 'deny' } });
    const before = sink.messages('ops').length;

    // Act
    let planned: Awaited<ReturnType<Stack['tick']>>;
    try {
      planned = await stack.tick('backup-clusters');
      await stack.idle(90_000);
    } finally {
      sandbox.faults.clear();
    }

    // Assess: the planner only enqueued; the workers did the backups and told Slack
    expect(planned.error).toBeUndefined();
    expect(planned.result).toMatchObject({ enqueued: india.length, created: 0 });
    const worked = stack.invocations.filter((i) => i.function === 'backup-clusters-worker');
    expect(worked.length).toBeGreaterThan(0);
    expect(worked.every((i) => i.ok && i.failed?.length === 0)).toBe(true);
    expect(worked.flatMap((i) => i.received ?? []).length).toBe(india.length);
    const records = (await store.list<BackupRecord>(NS.backups)).map((i) => i.value);
    expect(records.length).toBeGreaterThan(0);
    expect(new Set(records.map((r) => r.clusterId)).size).toBe(records.length);
    expect(records.filter((r) => !india.includes(r.clusterId))).toEqual([]);
    // Slack hears of the backup job's open findings of India: the refused cluster's among them.
    const open = (await store.list<Finding[]>(NS.findings, { prefix: 'backup/' }))
      .flatMap((i) => (Array.isArray(i.value) ? i.value : []))
      .filter((f) => f.jurisdiction === 'in');
    expect(open.map((f) => f.clusterId)).toContain(seedClusterId(faulted!));
    const after = sink.messages('ops').slice(before);
    expect(after.length).toBeGreaterThan(0);
    expect(JSON.stringify(after.map((m) => m.body))).toMatch(/backup/i);
    expect(await depth(queue('-backup-clusters').url)).toBe(0);
  }, 150_000);

  it('moves a poison item to the dead-letter queue after 3 receives', async () => {
    // Prepare: an item with a field no work item has
    const poison = {
      job: 'backup-clusters',
      clusterId: 'aws/111111111111/eu-west-1/x',
      runId: 'poison',
      cluster: { name: 'x' },
    };

    // Act
    const sent = await sqs.send(
      new SendMessageCommand({
        QueueUrl: queue('-backup-clusters').url,
        MessageBody: JSON.stringify(poison),
      }),
    );
    const dlq = queue('-backup-clusters-dlq').url;
    for (let i = 0; i < 120 && (await depth(dlq)) === 0; i++) await new Promise((r) => setTimeout(r, 500));

    // Assess: the worker reported it failed each time; moto's redrive moved it after the third
    const tries = stack.invocations.filter((i) => i.received?.includes(sent.MessageId!));
    expect(tries.length).toBe(3);
    expect(tries.every((i) => i.ok && i.failed?.includes(sent.MessageId!))).toBe(true);
    expect(await depth(dlq)).toBe(1);
    expect(await depth(queue('-backup-clusters').url)).toBe(0);
  }, 90_000);

  it('serves the HTTP API routes as payload 2.0 events and answers as API Gateway does', async () => {
    const handshake = await fetch(`${homeStack.url}/events/azure?code=sandbox-secret`, {
      method: 'OPTIONS',
      headers: { 'WebHook-Request-Origin': 'eventgrid.azure.net' },
    });
    const refused = await fetch(`${homeStack.url}/events/azure`, {
      method: 'OPTIONS',
      headers: { 'WebHook-Request-Origin': 'eventgrid.azure.net' },
    });
    const unknown = await fetch(`${homeStack.url}/events/aws`, { method: 'POST', body: '{}' });
    const delivered = await postAksWrite();
    await homeStack.idle(60_000);

    expect(handshake.status).toBe(200);
    expect(handshake.headers.get('webhook-allowed-origin')).toBe('eventgrid.azure.net');
    expect(refused.status).toBe(401);
    expect(unknown.status).toBe(404);
    expect(delivered.status).toBeLessThan(300);
    expect(homeStack.invocations.some((i) => i.function === 'rediscover-clusters-worker')).toBe(true);
  }, 90_000);

  it("calls nothing the functions' own generated roles do not allow", () => {
    // Assess: every own-account call of both deployments went through the IAM check, none refused
    const calls = [...stack.iam.calls, ...homeStack.iam.calls];
    const used = [...stack.iam.used(), ...homeStack.iam.used()];
    console.log(
      `IAM (function, action) pairs used by the flows:\n${used.map((u) => `  ${u.function} ${u.action}`).join('\n')}`,
    );
    expect([stack.iam.mode, homeStack.iam.mode]).toEqual(['enforce', 'enforce']);
    expect(calls.length).toBeGreaterThan(0);
    expect([...stack.iam.denied(), ...homeStack.iam.denied()]).toEqual([]);
    expect(stack.iam.unchecked + homeStack.iam.unchecked).toBe(0);
    // Member accounts were reached with sessions the functions' own roles assumed, through the check.
    expect(stack.iam.memberCalls).toBeGreaterThan(0);
    const pairs = used.map((u) => `${u.function} ${u.action}`);
    expect(pairs).toEqual(
      expect.arrayContaining([
        // The deployed config, read from AppConfig (the stack serves its data plane).
        'backup-clusters appconfig:GetLatestConfiguration',
        'azure-cluster-events appconfig:GetLatestConfiguration',
        'backup-clusters sqs:SendMessage',
        'discover-clusters sts:AssumeRole',
        'backup-clusters-worker dynamodb:BatchWriteItem',
        'backup-clusters-worker ssm:GetParameter',
        'azure-cluster-events secretsmanager:GetSecretValue',
        'azure-cluster-events sqs:SendMessage',
      ]),
    );
    const reads = calls.filter((c) => c.action === 'appconfig:GetLatestConfiguration');
    expect(
      reads.every((c) =>
        /^arn:aws:appconfig:[a-z0-9-]+:123456789012:application\/fleetward-dev-/.test(c.resources[0] ?? ''),
      ),
    ).toBe(true);
    // The internet-facing endpoints neither called nor may call AssumeRole or evidence writes.
    expect(INTERNET_FACING.length).toBeGreaterThan(0);
    const endpointActions = calls.filter((c) => INTERNET_FACING.includes(c.function)).map((c) => c.action);
    expect(endpointActions.length).toBeGreaterThan(0);
    for (const fn of INTERNET_FACING) {
      const granted = homeStack.iam.statements(fn).flatMap((s) => s.actions);
      expect(granted.length, fn).toBeGreaterThan(0);
      expect(
        granted.filter((a) => /^(sts:AssumeRole|s3:PutObject|\*|sts:\*|s3:\*)$/i.test(a)),
        fn,
      ).toEqual([]);
    }
    expect(endpointActions).not.toContain('sts:AssumeRole');
    expect(endpointActions).not.toContain('s3:PutObject');
  });

  it("refuses a call the function's role lacks, naming the action and the function", async () => {
    // Prepare: the planner's role without sqs:SendMessage (in the runner's policy map only)
    const depthBefore = await depth(queue('-backup-clusters').url);
    const restore = stack.iam.revoke('backup-clusters', 'sqs:SendMessage');
    let planned: Awaited<ReturnType<Stack['tick']>>;

    // Act
    try {
      planned = await stack.tick('backup-clusters');
    } finally {
      restore();
    }

    // Assess: refused as IAM refuses, nothing enqueued, and the refusal names action and function
    const refused = stack.iam.denied();
    expect(refused.length).toBeGreaterThan(0);
    expect(refused.every((c) => c.function === 'backup-clusters' && c.action === 'sqs:SendMessage')).toBe(
      true,
    );
    expect(refused[0]!.message).toMatch(
      /assumed-role\/fleetward-dev-in-backup-clusters\/fleetward-dev-in-backup-clusters is not authorized to perform: sqs:SendMessage on resource: arn:aws:sqs:ap-south-1:123456789012:fleetward-dev-in-backup-clusters /,
    );
    // The planner's invocation fails on the refused send (the product error names the call; the
    // AccessDenied answer it got is the one recorded above).
    expect(planned!.ok).toBe(false);
    expect(planned!.error?.errorMessage).toMatch(
      /sqs SendMessage(Batch)? failed for the backup-clusters queue/,
    );
    expect(await depth(queue('-backup-clusters').url)).toBe(depthBefore);
  }, 90_000);

  it('refuses the internet-facing endpoint a state write its role lacks, as API Gateway answers a failure', async () => {
    // Prepare: the Azure endpoint's role without dynamodb:PutItem (its idempotency record)
    const before = homeStack.iam.denied().length;
    const restore = homeStack.iam.revoke('azure-cluster-events', 'dynamodb:PutItem');
    let answer: Response;

    // Act
    try {
      answer = await postAksWrite();
    } finally {
      restore();
    }

    // Assess
    const refused = homeStack.iam.denied().slice(before);
    expect(answer!.status).toBeGreaterThanOrEqual(500);
    expect(refused.length).toBeGreaterThan(0);
    expect(
      refused.every((c) => c.function === 'azure-cluster-events' && c.action === 'dynamodb:PutItem'),
    ).toBe(true);
    expect(refused[0]!.message).toMatch(
      /assumed-role\/fleetward-dev-home-azure-cluster-events\/fleetward-dev-home-azure-cluster-events is not authorized to perform: dynamodb:PutItem on resource: arn:aws:dynamodb:eu-central-1:123456789012:table\/fleetward-dev-home-state /,
    );
  }, 60_000);

  it('refuses sts:AssumeRole into a member account once the role lacks it, naming the reader role', async () => {
    // Prepare: the home deployment's discovery (no session assumed yet) without sts:AssumeRole
    const before = homeStack.iam.denied().length;
    const restore = homeStack.iam.revoke('discover-clusters', 'sts:AssumeRole');
    let discovered: Awaited<ReturnType<Stack['tick']>>;

    // Act
    try {
      discovered = await homeStack.tick('discover-clusters');
    } finally {
      restore();
    }

    // Assess: one refusal per configured account, each naming the reader role; nothing in them discovered
    const refused = homeStack.iam.denied().slice(before);
    expect(discovered!.function).toBe('discover-clusters');
    expect(refused.every((c) => c.function === 'discover-clusters' && c.action === 'sts:AssumeRole')).toBe(
      true,
    );
    expect([...new Set(refused.flatMap((c) => c.resources))].sort()).toEqual(
      PACKAGED_ACCOUNTS.map((id) => `arn:aws:iam::${id}:role/fleetward-reader`).sort(),
    );
    expect(refused[0]!.message).toMatch(
      /assumed-role\/fleetward-dev-home-discover-clusters\/fleetward-dev-home-discover-clusters is not authorized to perform: sts:AssumeRole on resource: arn:aws:iam::\d{12}:role\/fleetward-reader /,
    );
  }, 90_000);
});
