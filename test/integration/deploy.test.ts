/**
 * `serverless deploy` into the local cloud: osls deploys the packaged service into moto
 * (`AWS_ENDPOINT_URL`, fake credentials): the deployment bucket, the code upload, CloudFormation
 * ValidateTemplate and a change set. The stack completes; moto creates every resource but the
 * types it accepts without modelling them (listed in README "Deploying"), and the functions,
 * queues, event source mappings, schedules and table it creates carry the template's settings.
 */
import { spawn } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type MotoServer, startMoto } from '../sandbox/moto.ts';
import { packageService, REGIONAL_IN } from '../sandbox/package.ts';

/** The India deployment runs in India (a regional deployment's region is inside its jurisdiction). */
const REGION = 'ap-south-1';
/** `fleetward-<stage>-<deployment>`: the stack and the prefix of every name in it. */
const STACK = 'fleetward-dev-in';

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
/**
 * Types moto 5.2.1's CloudFormation has no model for at all, and a template that refers to them
 * (`Fn::GetAtt`) fails ValidateTemplate: the AppConfig resources that carry fleet.yaml (moto's
 * AppConfig does not even implement CreateEnvironment). The deployed copy goes without them,
 * each reference replaced by a placeholder; everything else is deployed as packaged.
 */
const UNSUPPORTED = [
  'AWS::AppConfig::Application',
  'AWS::AppConfig::ConfigurationProfile',
  'AWS::AppConfig::Deployment',
  'AWS::AppConfig::Environment',
  'AWS::AppConfig::HostedConfigurationVersion',
];

type Template = { Resources: Record<string, { Type: string }> };

/** The template without the {@link UNSUPPORTED} types, and its references to them replaced by placeholders. */
function withoutUnsupported(template: Template): Template {
  const gone = new Set(
    Object.entries(template.Resources)
      .filter(([, r]) => UNSUPPORTED.includes(r.Type))
      .map(([id]) => id),
  );
  const strip = (value: unknown): unknown => {
    if (Array.isArray(value)) return value.map(strip);
    if (value === null || typeof value !== 'object') return value;
    const entries = Object.entries(value as Record<string, unknown>);
    const [key, arg] = entries[0] ?? [];
    if (entries.length === 1 && key === 'Fn::GetAtt' && Array.isArray(arg) && gone.has(String(arg[0]))) {
      return `unsupported-${arg[0]}`;
    }
    if (entries.length === 1 && key === 'Ref' && gone.has(String(arg))) return `unsupported-${arg}`;
    return Object.fromEntries(entries.filter(([k]) => !gone.has(k)).map(([k, v]) => [k, strip(v)]));
  };
  return { ...template, Resources: strip(template.Resources) as Template['Resources'] };
}

/**
 * What moto 5.2.1's CloudFormation accepts and reports complete without creating anything, of
 * the types in the regional template. (The home template's `AWS::ApiGatewayV2::*` are not
 * modelled either: README "Deploying into the local cloud".)
 */
const NOT_MODELLED = ['AWS::CloudWatch::Alarm', 'AWS::Lambda::EventInvokeConfig', 'AWS::S3::BucketPolicy'];

describe('serverless deploy into moto', () => {
  let moto: MotoServer;
  let deploy: { status: number | null; output: string };
  let template: Template;

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
    const file = join(dir, 'cloudformation-template-update-stack.json');
    template = JSON.parse(readFileSync(file, 'utf8'));
    writeFileSync(file, JSON.stringify(withoutUnsupported(template)));
    // `deploy --package` restores the service, its compiled template included, from the state file.
    const stateFile = join(dir, 'serverless-state.json');
    const state = JSON.parse(readFileSync(stateFile, 'utf8'));
    state.service.provider.compiledCloudFormationTemplate = withoutUnsupported(
      state.service.provider.compiledCloudFormationTemplate,
    );
    writeFileSync(stateFile, JSON.stringify(state));
    // Not spawnSync: moto is a child of this process, and its log pipe must keep draining.
    const child = spawn(
      join('node_modules', '.bin', 'serverless'),
      [
        'deploy',
        '--package',
        dir,
        '--region',
        REGION,
        '--param',
        'role=regional',
        '--param',
        'jurisdiction=in',
      ],
      {
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
      },
    );
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const status = await new Promise<number | null>((done) => child.once('exit', (code) => done(code)));
    deploy = { status, output };
  }, 900_000);

  afterAll(async () => {
    await moto?.stop();
  });

  it('deploys the packaged service and the stack completes', async () => {
    expect(deploy.status, deploy.output).toBe(0);
    const [stack] = await cloudFormation(moto.url, 'DescribeStacks', { StackName: STACK });
    // The framework creates the stack (deployment bucket) and then updates it with the service.
    expect(stack?.StackStatus).toBe('UPDATE_COMPLETE');
  });

  it('creates every resource moto models, with the template types', async () => {
    const created = await cloudFormation(moto.url, 'ListStackResources', { StackName: STACK });
    const types = (ids: string[]) => [...new Set(ids.map((id) => template.Resources[id]!.Type))].sort();
    const createdIds = created.map((r) => r.LogicalResourceId ?? '').filter(Boolean);
    const missing = Object.keys(template.Resources).filter((id) => !createdIds.includes(id));

    // Only the AppConfig types were left out of the deployed copy; the rest moto models, or
    // accepts without creating.
    expect(types(missing.filter((id) => UNSUPPORTED.includes(template.Resources[id]!.Type)))).toEqual(
      UNSUPPORTED,
    );
    expect(types(missing.filter((id) => !UNSUPPORTED.includes(template.Resources[id]!.Type)))).toEqual(
      NOT_MODELLED,
    );
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
    type Fn = {
      Configuration?: {
        Runtime?: string;
        Role?: string;
        Environment?: { Variables?: Record<string, string> };
      };
    };
    const worker = JSON.parse(
      await motoCall(`${api}/functions/${STACK}-backup-clusters-worker`, 'lambda'),
    ) as Fn;
    const planner = JSON.parse(await motoCall(`${api}/functions/${STACK}-backup-clusters`, 'lambda')) as Fn;
    expect(
      mappings.map((m) => [m.FunctionArn!.split(':').pop(), m.ScalingConfig?.MaximumConcurrency]).sort(),
    ).toEqual([
      [`${STACK}-backup-clusters-worker`, 10],
      [`${STACK}-collect-audit-logs-worker`, 2],
      [`${STACK}-reconcile-backups-worker`, 10],
      [`${STACK}-restore-drill-worker`, 5],
    ]);
    for (const m of mappings) expect(m.FunctionResponseTypes).toEqual(['ReportBatchItemFailures']);
    expect(worker.Configuration?.Runtime).toBe('nodejs24.x');
    expect(worker.Configuration?.Environment?.Variables?.FLEETWARD_STATE_TABLE).toBe(`${STACK}-state`);
    // Each function runs as its own role; the planner (not the worker) knows its queue.
    expect(worker.Configuration?.Role).toMatch(/:role\/fleetward-dev-in-backup-clusters-worker$/);
    expect(worker.Configuration?.Environment?.Variables?.FLEETWARD_QUEUE_BACKUP_CLUSTERS).toBeUndefined();
    expect(planner.Configuration?.Environment?.Variables?.FLEETWARD_QUEUE_BACKUP_CLUSTERS).toMatch(
      /\/123456789012\/fleetward-dev-in-backup-clusters$/,
    );
  });
});
