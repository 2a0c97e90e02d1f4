/**
 * `npx serverless package` (osls) builds offline, one bundle per function of the deployed role
 * (`--param role=home`, `--param role=regional --param jurisdiction=in --region ap-south-1`);
 * the stack and every named resource carry the deployment (`fleetward-dev-home`,
 * `fleetward-dev-in`); each function has its own least-privilege IAM role; the AppConfig resources carry the validated config; both
 * generated templates pass cfn-lint; packaging refuses an invalid config; and the bundle itself —
 * not the TypeScript sources — runs against the sandbox the way Lambda would load it.
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Context } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { FUNCTIONS } from '../../shared/deploy/functions.ts';
import { lambdaLogicalId, roleName } from '../../shared/deploy/generate.ts';
import { queueUrlVariable, WORK_JOBS } from '../../shared/runtime/dispatch.ts';
import { type Sandbox, startSandbox } from '../sandbox/index.ts';
import { HOME, type Packaged, packageService, REGIONAL_IN, tryPackage } from '../sandbox/package.ts';

// biome-ignore lint/suspicious/noExplicitAny: a CloudFormation template is read as untyped JSON
type Resource = { Type: string; Properties: Record<string, any>; DependsOn?: unknown };
type Template = { Resources: Record<string, Resource> };

const read = (p: Packaged): Template =>
  JSON.parse(readFileSync(join(p.dir, 'cloudformation-template-update-stack.json'), 'utf8'));
const ofType = (t: Template, type: string) => Object.entries(t.Resources).filter(([, r]) => r.Type === type);
const roleOf = (t: Template, fnLogicalId: string): Resource => {
  const id = t.Resources[fnLogicalId]!.Properties.Role['Fn::GetAtt'][0] as string;
  return t.Resources[id]!;
};
const actionsOf = (role: Resource): string[] =>
  [
    ...new Set(
      (role.Properties.Policies as { PolicyDocument: { Statement: { Action: string[] }[] } }[]).flatMap((p) =>
        p.PolicyDocument.Statement.flatMap((s) => s.Action),
      ),
    ),
  ].sort();
const namesOf = (role: 'home' | 'regional') =>
  FUNCTIONS.filter((f) => f.roles.includes(role))
    .map((f) => f.name)
    .sort();

describe('serverless package', () => {
  let home: Packaged;
  let regional: Packaged;
  let homeTemplate: Template;
  let regionalTemplate: Template;
  /** The template holding each work job's queue (reconcile-tags: home; the rest: regional). */
  let templateOf: (job: string) => Template;

  beforeAll(async () => {
    // One build per role and source state, shared with the stack and deploy tests (test/sandbox/package.ts).
    [home, regional] = await Promise.all([packageService(HOME), packageService(REGIONAL_IN)]);
    expect(home.status, home.output).toBe(0);
    expect(regional.status, regional.output).toBe(0);
    homeTemplate = read(home);
    regionalTemplate = read(regional);
    // A job's queue is deployed where its worker is.
    templateOf = (job) =>
      FUNCTIONS.find((f) => f.name === `${job}-worker`)!.roles.includes('home')
        ? homeTemplate
        : regionalTemplate;
    // Longer than the packaging's own limit, so a slow machine fails with its output.
  }, 840_000);

  it.each([
    ['home', () => home],
    ['regional', () => regional],
  ] as const)(
    'builds one bundle per %s function and deploys no function of the other role',
    (role, packaged) => {
      const zips = readdirSync(packaged().dir).filter((f) => f.endsWith('.zip'));
      const template = read(packaged());
      const functions = ofType(template, 'AWS::Lambda::Function').map(([id]) => id);

      expect(zips.map((z) => z.replace(/\.zip$/, '')).sort()).toEqual(namesOf(role));
      expect(functions.sort()).toEqual(namesOf(role).map(lambdaLogicalId).sort());
    },
  );

  it.each([
    ['home', 'home', () => homeTemplate],
    ['regional', 'in', () => regionalTemplate],
  ] as const)(
    'gives every %s function its own IAM role; function and role named fleetward-<stage>-%s-<function>',
    (role, deployment, template) => {
      const functions = ofType(template(), 'AWS::Lambda::Function');
      const roles = functions.map(([, r]) => r.Properties.Role['Fn::GetAtt'][0]);

      expect(new Set(roles).size).toBe(functions.length);
      expect(template().Resources.IamRoleLambdaExecution).toBeUndefined();
      for (const name of namesOf(role)) {
        const fn = template().Resources[lambdaLogicalId(name)]!;
        const iam = roleOf(template(), lambdaLogicalId(name));
        expect(iam.Type).toBe('AWS::IAM::Role');
        expect(iam.Properties.RoleName).toBe(roleName('dev', deployment, name));
        expect(fn.Properties.FunctionName).toBe(`fleetward-dev-${deployment}-${name}`);
        expect(iam.Properties.RoleName.length).toBeLessThanOrEqual(64);
        expect(actionsOf(iam).every((a) => !a.includes('*'))).toBe(true);
      }
    },
  );

  it.each([
    ['home', 'home', () => home],
    ['regional', 'in', () => regional],
  ] as const)(
    'names the %s stack and every named resource after its deployment (fleetward-dev-%s)',
    (_, deployment, packaged) => {
      const template = read(packaged());
      const state = JSON.parse(readFileSync(join(packaged().dir, 'serverless-state.json'), 'utf8'));
      const prefix = `fleetward-dev-${deployment}`;
      // Names that need not be unique, or live inside their parent (AppConfig environment, profile).
      const scoped = [
        'AWS::ApiGatewayV2::Api Name',
        'AWS::ApiGatewayV2::Stage StageName',
        'AWS::AppConfig::Application Name',
        'AWS::AppConfig::Environment Name',
        'AWS::AppConfig::ConfigurationProfile Name',
      ];
      const names = Object.values(template.Resources).flatMap((r) =>
        Object.entries(r.Properties ?? {})
          .filter(([k, v]) => /Name$/.test(k) && k !== 'MetricName' && typeof v === 'string')
          .filter(([k]) => !scoped.includes(`${r.Type} ${k}`))
          .map(([k, v]) => `${r.Type} ${k} ${v}`),
      );

      expect(state.service.provider.stackName).toBe(prefix);
      expect(names.length).toBeGreaterThan(20);
      expect(names.filter((n) => !n.includes(prefix))).toEqual([]);
      expect(names).toContain(`AWS::DynamoDB::Table TableName ${prefix}-state`);
      expect(names).toContain(`AWS::Events::Rule Name ${prefix}-discover-clusters`);
    },
  );

  it('lets only functions with the identity capability ask for web identity tokens, for Entra ID only', () => {
    const tokenOf = (template: Template, fn: string) =>
      roleOf(template, lambdaLogicalId(fn)).Properties.Policies[0].PolicyDocument.Statement.find(
        (s: { Action: string[] }) => s.Action.includes('sts:GetWebIdentityToken'),
      );

    expect(tokenOf(regionalTemplate, 'collect-audit-logs-worker')).toEqual({
      Effect: 'Allow',
      Action: ['sts:GetWebIdentityToken'],
      Resource: ['*'],
      Condition: {
        'ForAllValues:StringEquals': { 'sts:IdentityTokenAudience': ['api://AzureADTokenExchange'] },
      },
    });
    expect(tokenOf(homeTemplate, 'gcp-cluster-events')).toBeUndefined();
    expect(tokenOf(homeTemplate, 'azure-cluster-events')).toBeUndefined();
    expect(
      homeTemplate.Resources[lambdaLogicalId('discover-clusters')]!.Properties.Environment.Variables
        .FLEETWARD_AZURE_CLIENT_ID,
    ).toBe('');
  });

  it('gives no role of an HTTP function sts:AssumeRole or s3:PutObject, and caps the endpoints', () => {
    const integrations = ofType(homeTemplate, 'AWS::ApiGatewayV2::Integration').map(
      ([, r]) => r.Properties.IntegrationUri['Fn::GetAtt'][0] as string,
    );
    const endpoints = [...new Set(integrations)].sort();

    expect(endpoints).toEqual([
      'AzureDashclusterDasheventsLambdaFunction',
      'GcpDashclusterDasheventsLambdaFunction',
    ]);
    for (const id of endpoints) {
      const actions = actionsOf(roleOf(homeTemplate, id));
      expect(actions).not.toContain('sts:AssumeRole');
      expect(actions).not.toContain('s3:PutObject');
      expect(actions.filter((a) => /^(s3|sts):/.test(a))).toEqual([]);
      expect(homeTemplate.Resources[id]!.Properties.ReservedConcurrentExecutions).toBe(10);
    }
    expect(homeTemplate.Resources.HttpApiStage!.Properties.DefaultRouteSettings).toMatchObject({
      ThrottlingBurstLimit: 40,
      ThrottlingRateLimit: 20,
    });
  });

  it("lets a regional function write only its own jurisdiction's evidence bucket, and assume only the reader roles", () => {
    const role = roleOf(regionalTemplate, lambdaLogicalId('collect-audit-logs-worker'));
    const statements = role.Properties.Policies[0].PolicyDocument.Statement as {
      Action: string[];
      Resource: unknown[];
    }[];
    const put = statements.find((s) => s.Action.includes('s3:PutObject'))!;
    const assume = statements.find((s) => s.Action.includes('sts:AssumeRole'))!;

    expect(JSON.stringify(put.Resource)).toContain('example-fleetward-evidence-in/audit/*');
    expect(JSON.stringify(put.Resource)).not.toMatch(/evidence-(eu|za|ke)/);
    expect(assume.Resource).toEqual([
      'arn:aws:iam::111111111111:role/fleetward-reader',
      'arn:aws:iam::222222222222:role/fleetward-reader',
    ]);
    // publish-compliance-snapshot needs no member account: no AssumeRole at all
    expect(actionsOf(roleOf(regionalTemplate, lambdaLogicalId('publish-compliance-snapshot')))).not.toContain(
      'sts:AssumeRole',
    );
  });

  it('carries the validated config in AppConfig, as JSON checked by the draft-4 JSON Schema', () => {
    const resources = homeTemplate.Resources;
    const profile = resources.FleetConfigProfile!.Properties;
    const version = resources.FleetConfigVersion!.Properties;
    const env = resources[lambdaLogicalId('discover-clusters')]!.Properties.Environment.Variables;
    const role = roleOf(homeTemplate, lambdaLogicalId('discover-clusters'));
    const appconfig = role.Properties.Policies[0].PolicyDocument.Statement.find((s: { Action: string[] }) =>
      s.Action.includes('appconfig:GetLatestConfiguration'),
    );

    expect(profile).toMatchObject({ LocationUri: 'hosted', Type: 'AWS.Freeform' });
    expect(profile.Validators[0].Type).toBe('JSON_SCHEMA');
    expect(JSON.parse(profile.Validators[0].Content).$schema).toBe('http://json-schema.org/draft-04/schema#');
    expect(version.ContentType).toBe('application/json');
    expect(JSON.parse(version.Content)).toEqual(parse(readFileSync('fleet.example.yaml', 'utf8')));
    expect(resources.FleetConfigDeployment!.Properties.DeploymentStrategyId).toBe('AppConfig.AllAtOnce');
    expect(env).toMatchObject({
      FLEETWARD_APPCONFIG_APPLICATION: 'fleetward-dev-home',
      FLEETWARD_APPCONFIG_ENVIRONMENT: 'dev',
      FLEETWARD_APPCONFIG_PROFILE: 'fleet',
    });
    expect(appconfig.Action).toEqual([
      'appconfig:GetLatestConfiguration',
      'appconfig:StartConfigurationSession',
    ]);
    expect(JSON.stringify(appconfig.Resource)).toContain('FleetConfigProfile');
    expect(
      regionalTemplate.Resources[lambdaLogicalId('discover-clusters')]!.Properties.Environment.Variables
        .FLEETWARD_APPCONFIG_APPLICATION,
    ).toBe('fleetward-dev-regional-in');
  });

  it('refuses to package without a valid config, naming the bad field', async () => {
    mkdirSync('.fleetward', { recursive: true });
    const bad = join('.fleetward', `invalid-fleet-${process.pid}.yaml`);
    const config = parse(readFileSync('fleet.example.yaml', 'utf8'));
    config.jurisdictions.in.backup.rpoHours = 'daily';
    writeFileSync(bad, JSON.stringify(config));

    const [invalid, missing] = await Promise.all([
      tryPackage({ ...HOME, config: bad }),
      tryPackage({ ...HOME, config: join('.fleetward', 'no-such-fleet.yaml') }),
    ]);

    expect(invalid.status).not.toBe(0);
    expect(invalid.output).toContain('jurisdictions.in.backup.rpoHours');
    expect(missing.status).not.toBe(0);
    expect(missing.output).toContain('no such file');
  }, 240_000);

  it.each([
    [{ role: 'regional' as const }, 'needs --param jurisdiction'],
    [{ role: 'regional' as const, jurisdiction: 'fr' }, '"fr" is not a jurisdiction of the config'],
    [{ role: 'home' as const, jurisdiction: 'in' }, 'takes none'],
    [
      { role: 'regional' as const, jurisdiction: 'in', region: 'eu-central-1' },
      '--region eu-central-1: a regional deployment of jurisdiction "in" runs inside it (countries: IN)',
    ],
  ])(
    'refuses role parameters %j',
    async (params, message) => {
      const refused = await tryPackage(params);

      expect(refused.status).not.toBe(0);
      expect(refused.output).toContain(message);
    },
    120_000,
  );

  it("deploys a regional role without --region into its jurisdiction's evidence region", () => {
    const printed = (...args: string[]) =>
      spawnSync(join('node_modules', '.bin', 'serverless'), ['print', '--path', 'provider.region', ...args], {
        encoding: 'utf8',
        env: { ...process.env, FLEETWARD_CONFIG: 'fleet.example.yaml', SLS_TELEMETRY_DISABLED: '1' },
      }).stdout.trim();

    expect(printed('--param', 'role=regional', '--param', 'jurisdiction=in')).toBe('ap-south-1');
    expect(printed('--param', 'role=regional', '--param', 'jurisdiction=za')).toBe('af-south-1');
    expect(printed('--param', 'role=regional', '--param', 'jurisdiction=in', '--region', 'ap-south-2')).toBe(
      'ap-south-2',
    );
    expect(printed('--param', 'role=home')).toBe('eu-central-1');
  }, 120_000);

  it('declares the discovery schedule every 15 minutes', () => {
    const rules = ofType(homeTemplate, 'AWS::Events::Rule').map(([, r]) => r.Properties.ScheduleExpression);

    expect(rules).toContain('rate(15 minutes)');
  });

  it('routes EKS API calls from CloudTrail to on-cluster-event with an EventBridge rule', () => {
    const rules = ofType(homeTemplate, 'AWS::Events::Rule')
      .map(([, r]) => r)
      .filter((r) => r.Properties.EventPattern !== undefined);

    expect(rules.map((r) => r.Properties.EventPattern)).toEqual([
      {
        source: ['aws.eks'],
        'detail-type': ['AWS API Call via CloudTrail'],
        detail: {
          eventSource: ['eks.amazonaws.com'],
          eventName: [
            'CreateCluster',
            'DeleteCluster',
            'UpdateClusterConfig',
            'UpdateClusterVersion',
            'TagResource',
            'UntagResource',
            'AssociateEncryptionConfig',
          ],
        },
      },
    ]);
    expect(JSON.stringify(rules[0]!.Properties.Targets)).toContain('OnDashclusterDasheventLambdaFunction');
  });

  it('exposes the event endpoints as HTTP API routes (payload 2.0) on their functions', () => {
    const resources = homeTemplate.Resources;
    const routes = Object.values(resources)
      .filter((r) => r.Type === 'AWS::ApiGatewayV2::Route')
      .map((r) => {
        // Target: { "Fn::Join": ["/", ["integrations", { "Ref": "<integration>" }]] }
        const target = r.Properties.Target as { 'Fn::Join': [string, [string, { Ref: string }]] };
        const integration = resources[target['Fn::Join'][1][1].Ref];
        return {
          route: r.Properties.RouteKey,
          function: JSON.stringify(integration?.Properties.IntegrationUri),
          payload: integration?.Properties.PayloadFormatVersion,
        };
      })
      .sort((a, b) => String(a.route).localeCompare(String(b.route)));

    expect(routes.map((r) => r.route)).toEqual([
      'OPTIONS /events/azure',
      'POST /events/azure',
      'POST /events/gcp',
    ]);
    expect(routes.map((r) => r.payload)).toEqual(['2.0', '2.0', '2.0']);
    expect(routes[0]!.function).toContain('AzureDashclusterDasheventsLambdaFunction');
    expect(routes[1]!.function).toContain('AzureDashclusterDasheventsLambdaFunction');
    expect(routes[2]!.function).toContain('GcpDashclusterDasheventsLambdaFunction');
    expect(ofType(regionalTemplate, 'AWS::ApiGatewayV2::Route')).toEqual([]);
  });

  it.each(WORK_JOBS)(
    'fans %s out on its own queue: SSE, a dead-letter queue after 3 receives, a worker, alarms, a least-privilege role',
    (job) => {
      const template = templateOf(job);
      const other = template === homeTemplate ? regionalTemplate : homeTemplate;
      const resources = template.Resources;
      const logical = (name: string) => lambdaLogicalId(name).replace(/LambdaFunction$/, '');
      const queueName = `fleetward-dev-${template === homeTemplate ? 'home' : 'in'}-${job}`;
      const [queueId, queue] = Object.entries(resources).find(
        ([, r]) => r.Type === 'AWS::SQS::Queue' && r.Properties.QueueName?.endsWith?.(`-${job}`),
      )!;
      const dlq = resources[queue.Properties.RedrivePolicy.deadLetterTargetArn['Fn::GetAtt'][0]]!;
      const worker = resources[`${logical(`${job}-worker`)}LambdaFunction`]!;
      // The functions that hand it items: its planner, or the event endpoints of rediscover-clusters.
      const senders = FUNCTIONS.filter((f) => f.sendsTo?.includes(job)).map((f) => lambdaLogicalId(f.name));
      const mapping = Object.values(resources).find(
        (r) =>
          r.Type === 'AWS::Lambda::EventSourceMapping' &&
          JSON.stringify(r.Properties.EventSourceArn).includes(`"${queueId}"`),
      )!;
      const alarms = Object.values(resources)
        .filter((r) => r.Type === 'AWS::CloudWatch::Alarm')
        .filter(
          (r) =>
            JSON.stringify(r.Properties.Dimensions).includes(queueId.replace(/Queue$/, '')) ||
            JSON.stringify(r.Properties.Dimensions).includes(logical(`${job}-worker`)),
        )
        .map((r) => `${r.Properties.Namespace} ${r.Properties.MetricName}`)
        .sort();
      const sends = (id: string) =>
        JSON.stringify(
          roleOf(template, id).Properties.Policies[0].PolicyDocument.Statement.filter(
            (s: { Action: string[] }) => s.Action.includes('sqs:SendMessage'),
          ),
        );

      expect(queue.Properties).toMatchObject({ QueueName: queueName, SqsManagedSseEnabled: true });
      expect(queue.Properties.RedrivePolicy.maxReceiveCount).toBe(3);
      expect(dlq.Properties).toMatchObject({ QueueName: `${queueName}-dlq`, SqsManagedSseEnabled: true });
      expect(queue.Properties.VisibilityTimeout).toBeGreaterThanOrEqual(6 * worker.Properties.Timeout);
      expect(JSON.stringify(mapping.Properties.FunctionName)).toContain(
        `${logical(`${job}-worker`)}LambdaFunction`,
      );
      expect(mapping.Properties.FunctionResponseTypes).toEqual(['ReportBatchItemFailures']);
      expect(mapping.Properties.ScalingConfig.MaximumConcurrency).toBeGreaterThanOrEqual(2);
      expect(alarms).toEqual([
        'AWS/Lambda Errors',
        'AWS/Lambda Throttles',
        'AWS/SQS ApproximateAgeOfOldestMessage',
        'AWS/SQS ApproximateNumberOfMessagesVisible',
      ]);
      expect(worker.Properties.Environment.Variables.POWERTOOLS_METRICS_NAMESPACE).toBe('Fleetward');
      // Each sender sends to this queue and no other work queue (the failure queue of its
      // asynchronous invocations aside); the worker only receives from it.
      expect(senders.length).toBeGreaterThan(0);
      for (const sender of senders) {
        expect(resources[sender]!.Properties.Environment.Variables[queueUrlVariable(job)]).toEqual({
          Ref: queueId,
        });
        const queues = sends(sender).match(/"\w+Queue"/g) ?? [];
        expect(queues.filter((q) => q !== '"AsyncFailuresQueue"')).toEqual([`"${queueId}"`]);
      }
      expect(actionsOf(roleOf(template, `${logical(`${job}-worker`)}LambdaFunction`))).toEqual(
        expect.arrayContaining(['sqs:DeleteMessage', 'sqs:ReceiveMessage']),
      );
      expect(Object.keys(other.Resources)).not.toContain(queueId);
    },
  );

  it.each([
    ['home', () => homeTemplate],
    ['regional', () => regionalTemplate],
  ] as const)(
    'sends every failed asynchronous invocation of the %s role to the failure queue',
    (role, template) => {
      const resources = template().Resources;
      const configs = Object.values(resources).filter((r) => r.Type === 'AWS::Lambda::EventInvokeConfig');
      const scheduled = readdirSync('schedules')
        .map((f) => f.replace(/\.yml$/, ''))
        .filter((name) => namesOf(role).includes(name));
      const evented = role === 'home' ? ['on-cluster-event'] : [];

      expect(configs.map((c) => (c.Properties.FunctionName as { Ref: string }).Ref).sort()).toEqual(
        [...scheduled, ...evented].map(lambdaLogicalId).sort(),
      );
      for (const c of configs) {
        expect(c.Properties.DestinationConfig).toEqual({
          OnFailure: { Destination: { 'Fn::GetAtt': ['AsyncFailuresQueue', 'Arn'] } },
        });
      }
      expect(resources.AsyncFailuresQueue?.Properties).toMatchObject({ SqsManagedSseEnabled: true });
    },
  );

  it.each([
    ['home', () => homeTemplate],
    ['regional', () => regionalTemplate],
  ] as const)(
    'alarms on the errors of every %s function, and on the heartbeat of every scheduled one',
    (_, template) => {
      const resources = template().Resources;
      const alarms = Object.values(resources).filter((r) => r.Type === 'AWS::CloudWatch::Alarm');
      const watched = alarms
        .filter((r) => r.Properties.MetricName === 'Errors')
        .map((r) => (r.Properties.Dimensions as { Value: { Ref: string } }[])[0]!.Value.Ref)
        .sort();
      const functions = ofType(template(), 'AWS::Lambda::Function')
        .map(([id]) => id)
        .sort();
      const heartbeats = alarms
        .filter((r) => r.Properties.MetricName === 'RunSucceeded')
        .map((r) => lambdaLogicalId(r.Properties.Dimensions[0].Value))
        .sort();
      const scheduled = ofType(template(), 'AWS::Events::Rule')
        .filter(([, r]) => r.Properties.ScheduleExpression)
        .map(([, r]) => r.Properties.Targets[0].Arn['Fn::GetAtt'][0] as string)
        .sort();

      expect(watched).toEqual(functions);
      expect(heartbeats).toEqual(scheduled);
    },
  );

  it.each([
    ['home', () => home],
    ['regional', () => regional],
  ] as const)('passes cfn-lint on the %s template', (_, packaged) => {
    // Nothing is ignored: the local plugin drops the framework's redundant DependsOn (W3005).
    const lint = spawnSync(
      'cfn-lint',
      ['--', join(packaged().dir, 'cloudformation-template-update-stack.json')],
      {
        encoding: 'utf8',
      },
    );

    expect(lint.error, 'cfn-lint must be installed (python3 -m pip install cfn-lint)').toBeUndefined();
    expect(lint.status, lint.stdout + lint.stderr).toBe(0);
  });

  it('bundles every function so that it loads as Lambda loads it', async () => {
    const task = mkdtempSync(join(tmpdir(), 'fleetward-bundles-'));
    const bundles: Record<string, string> = {};
    for (const dir of [home.dir, regional.dir]) {
      for (const zip of readdirSync(dir).filter((f) => f.endsWith('.zip'))) {
        const name = zip.replace(/\.zip$/, '');
        if (bundles[name]) continue;
        expect(spawnSync('unzip', ['-q', '-o', resolve(dir, zip), '-d', join(task, name)]).status).toBe(0);
        bundles[name] = pathToFileURL(join(task, name, 'functions', name, 'handler.mjs')).href;
      }
    }
    // A plain Node process imports each bundle, as the Lambda runtime does (not through the
    // test runner's module pipeline, which would parse every bundle's source map).
    const load = spawnSync(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `const out = {}; for (const [n, u] of Object.entries(${JSON.stringify(bundles)})) out[n] = typeof (await import(u)).handler; console.log(JSON.stringify(out));`,
      ],
      { encoding: 'utf8', timeout: 120_000, env: { ...process.env, POWERTOOLS_LOG_LEVEL: 'SILENT' } },
    );
    expect(load.status, load.stderr).toBe(0);
    const types = JSON.parse(load.stdout.trim().split('\n').pop() ?? '{}') as Record<string, string>;
    expect(Object.keys(types).sort()).toEqual(FUNCTIONS.map((f) => f.name).sort());
    for (const [name, type] of Object.entries(types)) expect(type, name).toBe('function');
  }, 180_000);

  describe('the discover-clusters bundle', () => {
    let sandbox: Sandbox;
    const task = mkdtempSync(join(tmpdir(), 'fleetward-task-'));

    beforeAll(async () => {
      sandbox = await startSandbox({ clusters: 12, dir: join(task, 'sandbox') });
      const unzip = spawnSync('unzip', ['-q', '-o', resolve(home.dir, 'discover-clusters.zip'), '-d', task]);
      if (unzip.status !== 0) {
        // No unzip on the machine: extract with the bundled Python instead.
        mkdirSync(task, { recursive: true });
        spawnSync('python3', ['-m', 'zipfile', '-e', resolve(home.dir, 'discover-clusters.zip'), task]);
      }
      copyFileSync(sandbox.configPath, join(task, 'fleet.yaml'));
      process.env.FLEETWARD_CONFIG = join(task, 'fleet.yaml');
    });
    afterAll(async () => {
      delete process.env.FLEETWARD_CONFIG;
      await sandbox?.stop();
    });

    it('loads as Lambda loads it and discovers every cloud', async () => {
      const bundle = pathToFileURL(join(task, 'functions', 'discover-clusters', 'handler.mjs')).href;
      const { handler } = await import(/* @vite-ignore */ bundle);
      const context = {
        functionName: 'discover-clusters',
        awsRequestId: 'req-1',
        getRemainingTimeInMillis: () => 60_000,
      };

      const result = await handler({ trigger: 'schedule' }, context as unknown as Context);

      expect(result.failures).toEqual([]);
      expect(result.clusters).toBe(12);
      expect(sandbox.log.count('gcp', 'ListClusters')).toBeGreaterThan(0);
      expect(sandbox.log.count('azure')).toBeGreaterThan(0);
      expect(sandbox.log.count('aws', 'DescribeCluster')).toBeGreaterThan(0);
    });
  });
});
