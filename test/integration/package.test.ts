/**
 * `npx serverless package` (osls) builds offline, one bundle per function; the generated
 * CloudFormation template passes cfn-lint; and the bundle itself — not the TypeScript
 * sources — runs against the sandbox the way Lambda would load it.
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Context } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { queueUrlVariable, WORK_JOBS } from '../../shared/runtime/dispatch.ts';
import { type Sandbox, startSandbox } from '../sandbox/index.ts';
import { type Packaged, packageService } from '../sandbox/package.ts';

describe('serverless package', () => {
  let out: string;
  let packaged: Packaged;

  beforeAll(async () => {
    // One build per source state, shared with the stack and deploy tests (test/sandbox/package.ts).
    packaged = await packageService({ timeoutMs: 400_000 });
    out = packaged.dir;
    // Longer than the packaging's own limit, so a slow machine fails with its output.
  }, 420_000);

  it('builds one bundle per function without credentials or network', () => {
    expect(packaged.status, packaged.output).toBe(0);
    const zips = readdirSync(out).filter((f) => f.endsWith('.zip'));
    const functions = readdirSync('functions', { withFileTypes: true }).filter((d) => d.isDirectory());
    expect(zips.sort()).toEqual(functions.map((d) => `${d.name}.zip`).sort());
  });

  it('declares the discovery schedule every 15 minutes', () => {
    const template = JSON.parse(readFileSync(join(out, 'cloudformation-template-update-stack.json'), 'utf8'));
    const rules = Object.values(
      template.Resources as Record<string, { Type: string; Properties: { ScheduleExpression?: string } }>,
    )
      .filter((r) => r.Type === 'AWS::Events::Rule')
      .map((r) => r.Properties.ScheduleExpression);

    expect(rules).toContain('rate(15 minutes)');
  });

  it('routes EKS API calls from CloudTrail to on-cluster-event with an EventBridge rule', () => {
    const template = JSON.parse(readFileSync(join(out, 'cloudformation-template-update-stack.json'), 'utf8'));
    const rules = Object.values(
      template.Resources as Record<
        string,
        { Type: string; Properties: { EventPattern?: unknown; Targets?: { Arn?: unknown }[] } }
      >,
    ).filter((r) => r.Type === 'AWS::Events::Rule' && r.Properties.EventPattern !== undefined);

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
    const template = JSON.parse(readFileSync(join(out, 'cloudformation-template-update-stack.json'), 'utf8'));
    const resources = template.Resources as Record<
      string,
      { Type: string; Properties: Record<string, unknown> }
    >;
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
  });

  it.each(WORK_JOBS)(
    'fans %s out on its own queue: SSE, a dead-letter queue after 3 receives, a worker, alarms',
    (job) => {
      const template = JSON.parse(
        readFileSync(join(out, 'cloudformation-template-update-stack.json'), 'utf8'),
      );
      // biome-ignore lint/suspicious/noExplicitAny: a CloudFormation template is read as untyped JSON
      type Resource = { Type: string; Properties: Record<string, any> };
      const resources = template.Resources as Record<string, Resource>;
      const logical = (name: string) => `${name[0]!.toUpperCase()}${name.slice(1).replace(/-/g, 'Dash')}`;
      const queueName = `fleetward-dev-${job}`;
      const [queueId, queue] = Object.entries(resources).find(
        ([, r]) => r.Type === 'AWS::SQS::Queue' && r.Properties.QueueName?.endsWith?.(`-${job}`),
      )!;
      const dlq = resources[queue.Properties.RedrivePolicy.deadLetterTargetArn['Fn::GetAtt'][0]]!;
      const worker = resources[`${logical(`${job}-worker`)}LambdaFunction`]!;
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
      expect(worker.Properties.Environment.Variables[queueUrlVariable(job)]).toEqual({ Ref: queueId });
    },
  );

  it('sends every failed asynchronous invocation (schedules, EventBridge) to the failure queue', () => {
    const template = JSON.parse(readFileSync(join(out, 'cloudformation-template-update-stack.json'), 'utf8'));
    const resources = template.Resources as Record<
      string,
      { Type: string; Properties: Record<string, unknown> }
    >;
    const configs = Object.values(resources).filter((r) => r.Type === 'AWS::Lambda::EventInvokeConfig');
    const scheduled = readdirSync('schedules').map((f) => f.replace(/\.yml$/, ''));
    const logical = (name: string) =>
      `${name[0]!.toUpperCase()}${name.slice(1).replace(/-/g, 'Dash')}LambdaFunction`;

    expect(configs.map((c) => (c.Properties.FunctionName as { Ref: string }).Ref).sort()).toEqual(
      [...scheduled, 'on-cluster-event'].map(logical).sort(),
    );
    for (const c of configs) {
      expect(c.Properties.DestinationConfig).toEqual({
        OnFailure: { Destination: { 'Fn::GetAtt': ['AsyncFailuresQueue', 'Arn'] } },
      });
    }
    expect(resources.AsyncFailuresQueue?.Properties).toMatchObject({ SqsManagedSseEnabled: true });
  });

  it('alarms on the errors of every function', () => {
    const template = JSON.parse(readFileSync(join(out, 'cloudformation-template-update-stack.json'), 'utf8'));
    const resources = template.Resources as Record<
      string,
      { Type: string; Properties: Record<string, unknown> }
    >;
    const watched = Object.values(resources)
      .filter((r) => r.Type === 'AWS::CloudWatch::Alarm' && r.Properties.MetricName === 'Errors')
      .map((r) => (r.Properties.Dimensions as { Value: { Ref: string } }[])[0]!.Value.Ref)
      .sort();
    const functions = Object.entries(resources)
      .filter(([, r]) => r.Type === 'AWS::Lambda::Function')
      .map(([id]) => id)
      .sort();

    expect(watched).toEqual(functions);
  });

  it('passes cfn-lint', () => {
    // Nothing is ignored: the local plugin drops the framework's redundant DependsOn (W3005).
    const lint = spawnSync('cfn-lint', ['--', join(out, 'cloudformation-template-update-stack.json')], {
      encoding: 'utf8',
    });

    expect(lint.error, 'cfn-lint must be installed (python3 -m pip install cfn-lint)').toBeUndefined();
    expect(lint.status, lint.stdout + lint.stderr).toBe(0);
  });

  it('bundles every function so that it loads as Lambda loads it', async () => {
    const task = mkdtempSync(join(tmpdir(), 'fleetward-bundles-'));
    const bundles: Record<string, string> = {};
    for (const zip of readdirSync(out).filter((f) => f.endsWith('.zip'))) {
      expect(spawnSync('unzip', ['-q', '-o', resolve(out, zip), '-d', task]).status).toBe(0);
      const name = zip.replace(/\.zip$/, '');
      bundles[name] = pathToFileURL(join(task, 'functions', name, 'handler.mjs')).href;
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
    expect(Object.keys(types).sort()).toEqual(Object.keys(bundles).sort());
    for (const [name, type] of Object.entries(types)) expect(type, name).toBe('function');
  }, 180_000);

  it('gives every function only the IAM actions it needs, none with a wildcard', () => {
    const template = JSON.parse(readFileSync(join(out, 'cloudformation-template-update-stack.json'), 'utf8'));
    const role = template.Resources.IamRoleLambdaExecution.Properties.Policies[0].PolicyDocument
      .Statement as {
      Action: string[];
    }[];
    // The framework adds one statement per async failure destination: compare the set of actions.
    const actions = [...new Set(role.flatMap((s) => s.Action))].sort();

    expect(actions.every((a) => !a.includes('*'))).toBe(true);
    expect(actions).toEqual(
      [
        'dynamodb:BatchWriteItem',
        'dynamodb:DeleteItem',
        'dynamodb:GetItem',
        'dynamodb:PutItem',
        'dynamodb:Query',
        'logs:CreateLogGroup',
        'logs:CreateLogStream',
        'logs:PutLogEvents',
        'logs:TagResource',
        's3:GetBucketLocation',
        's3:GetBucketObjectLockConfiguration',
        's3:GetBucketVersioning',
        's3:GetObject',
        's3:GetObjectVersion',
        's3:ListBucketVersions',
        's3:PutObject',
        'secretsmanager:GetSecretValue',
        'sqs:DeleteMessage',
        'sqs:GetQueueAttributes',
        'sqs:ReceiveMessage',
        'sqs:SendMessage',
        'ssm:GetParameter',
        'sts:AssumeRole',
      ].sort(),
    );
  });

  describe('the discover-clusters bundle', () => {
    let sandbox: Sandbox;
    const task = mkdtempSync(join(tmpdir(), 'fleetward-task-'));

    beforeAll(async () => {
      sandbox = await startSandbox({ clusters: 12, dir: join(task, 'sandbox') });
      const unzip = spawnSync('unzip', ['-q', '-o', resolve(out, 'discover-clusters.zip'), '-d', task]);
      if (unzip.status !== 0) {
        // No unzip on the machine: extract with the bundled Python instead.
        mkdirSync(task, { recursive: true });
        spawnSync('python3', ['-m', 'zipfile', '-e', resolve(out, 'discover-clusters.zip'), task]);
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
