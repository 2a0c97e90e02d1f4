/**
 * `serverless deploy` into the local cloud: osls deploys the packaged service into moto
 * (`AWS_ENDPOINT_URL`, fake credentials): the deployment bucket, the code upload, CloudFormation
 * ValidateTemplate and a change set. The stack completes; moto creates every resource but the
 * types it accepts without modelling them (listed in README "Deploying"), and the functions,
 * queues, event source mappings, schedules and table it creates carry the template's settings.
 */
import { spawn } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type MotoServer, startMoto } from '../sandbox/moto.ts';
import { packageService, REGIONAL_IN } from '../sandbox/package.ts';

const REGION = 'eu-central-1';

/**
 * One call to moto's API without an SDK client (the CloudFormation and Lambda clients are not
 * dependencies of the project): moto routes by the credential scope and checks no signature.
 */
async function motoCall(url: string, service: string, init: RequestInit = {}): Promise<string> {
  const res = await fetch(url, {
    ...init,
    headers: {
      ...(init.headers as Record<string, string>),
      authorization: `AWS4-HMAC-SHA256 Credential=testing/20260101/${REGION}/${service}/aws4_request, SignedHeaders=host, Signature=0`,
    },
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${service} ${res.status}: ${text.slice(0, 300)}`);
  return text;
}

/** A CloudFormation query-protocol call; the XML answer's `<member>` elements as field maps. */
async function cloudFormation(endpoint: string, action: string, params: Record<string, string>) {
  const xml = await motoCall(endpoint, 'cloudformation', {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ Action: action, Version: '2010-05-15', ...params }).toString(),
  });
  return [...xml.matchAll(/<member>([\s\S]*?)<\/member>/g)].map((m) =>
    Object.fromEntries([...m[1]!.matchAll(/<(\w+)>([^<]*)<\/\1>/g)].map((f) => [f[1]!, f[2]!])),
  );
}
/** What moto 5.2.1's CloudFormation accepts and reports complete without creating anything. */
const NOT_MODELLED = [
  'AWS::ApiGatewayV2::Api',
  'AWS::ApiGatewayV2::Integration',
  'AWS::ApiGatewayV2::Route',
  'AWS::ApiGatewayV2::Stage',
  'AWS::CloudWatch::Alarm',
  'AWS::Lambda::EventInvokeConfig',
  'AWS::S3::BucketPolicy',
];

describe('serverless deploy into moto', () => {
  let moto: MotoServer;
  let deploy: { status: number | null; output: string };
  let template: { Resources: Record<string, { Type: string }> };

  beforeAll(async () => {
    const [packaged, started] = await Promise.all([
      packageService(REGIONAL_IN),
      startMoto({ cwd: mkdtempSync(join(tmpdir(), 'fleetward-moto-')) }),
    ]);
    moto = started;
    expect(packaged.status, packaged.output).toBe(0);
    // Deploy a copy: the deploy step must not touch the shared package.
    const dir = mkdtempSync(join(tmpdir(), 'fleetward-deploy-'));
    cpSync(packaged.dir, dir, { recursive: true });
    template = JSON.parse(readFileSync(join(dir, 'cloudformation-template-update-stack.json'), 'utf8'));
    // Not spawnSync: moto is a child of this process, and its log pipe must keep draining.
    const child = spawn(join('node_modules', '.bin', 'serverless'), ['deploy', '--package', dir], {
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: 240_000,
      env: {
        ...process.env,
        SLS_TELEMETRY_DISABLED: '1',
        SLS_NOTIFICATIONS_MODE: 'off',
        AWS_EC2_METADATA_DISABLED: 'true',
        AWS_ENDPOINT_URL: moto.url,
        AWS_ACCESS_KEY_ID: 'testing',
        AWS_SECRET_ACCESS_KEY: 'testing',
        AWS_REGION: REGION,
        AWS_PROFILE: '',
      },
    });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const status = await new Promise<number | null>((done) => child.once('exit', (code) => done(code)));
    deploy = { status, output };
  }, 480_000);

  afterAll(async () => {
    await moto?.stop();
  });

  it('deploys the packaged service and the stack completes', async () => {
    expect(deploy.status, deploy.output).toBe(0);
    const [stack] = await cloudFormation(moto.url, 'DescribeStacks', { StackName: 'fleetward-dev' });
    // The framework creates the stack (deployment bucket) and then updates it with the service.
    expect(stack?.StackStatus).toBe('UPDATE_COMPLETE');
  });

  it('creates every resource moto models, with the template types', async () => {
    const created = await cloudFormation(moto.url, 'ListStackResources', { StackName: 'fleetward-dev' });
    const types = (ids: string[]) => [...new Set(ids.map((id) => template.Resources[id]!.Type))].sort();
    const createdIds = created.map((r) => r.LogicalResourceId ?? '').filter(Boolean);
    const missing = Object.keys(template.Resources).filter((id) => !createdIds.includes(id));

    expect(types(missing)).toEqual(NOT_MODELLED);
    for (const r of created.filter((x) => x.LogicalResourceId)) {
      expect(r.ResourceType, r.LogicalResourceId).toBe(template.Resources[r.LogicalResourceId!]!.Type);
      expect(r.ResourceStatus).toBe('CREATE_COMPLETE');
    }
    expect(types(createdIds)).toEqual([
      'AWS::DynamoDB::Table',
      'AWS::Events::Rule',
      'AWS::IAM::Role',
      'AWS::Lambda::EventSourceMapping',
      'AWS::Lambda::Function',
      'AWS::Lambda::Permission',
      'AWS::Lambda::Version',
      'AWS::Logs::LogGroup',
      'AWS::S3::Bucket',
      'AWS::SQS::Queue',
    ]);
  });

  it('gives the workers their SQS event sources with partial batch failures and maximumConcurrency', async () => {
    type Mapping = {
      FunctionArn: string;
      FunctionResponseTypes?: string[];
      ScalingConfig?: { MaximumConcurrency?: number };
    };
    const api = `${moto.url}/2015-03-31`;
    const mappings = (
      JSON.parse(await motoCall(`${api}/event-source-mappings/`, 'lambda')) as {
        EventSourceMappings: Mapping[];
      }
    ).EventSourceMappings;
    const worker = JSON.parse(
      await motoCall(`${api}/functions/fleetward-dev-backup-clusters-worker`, 'lambda'),
    ) as { Configuration?: { Runtime?: string; Environment?: { Variables?: Record<string, string> } } };
    expect(
      mappings.map((m) => [m.FunctionArn!.split(':').pop(), m.ScalingConfig?.MaximumConcurrency]).sort(),
    ).toEqual([
      ['fleetward-dev-backup-clusters-worker', 10],
      ['fleetward-dev-collect-audit-logs-worker', 2],
      ['fleetward-dev-reconcile-backups-worker', 10],
      ['fleetward-dev-restore-drill-worker', 5],
    ]);
    for (const m of mappings) expect(m.FunctionResponseTypes).toEqual(['ReportBatchItemFailures']);
    expect(worker.Configuration?.Runtime).toBe('nodejs24.x');
    expect(worker.Configuration?.Environment?.Variables?.FLEETWARD_STATE_TABLE).toBe('fleetward-dev-state');
    expect(worker.Configuration?.Environment?.Variables?.FLEETWARD_QUEUE_BACKUP_CLUSTERS).toMatch(
      /\/123456789012\/fleetward-dev-backup-clusters$/,
    );
  });
});
