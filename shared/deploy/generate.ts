/**
 * What `serverless package` deploys, generated from the function catalogue (functions.ts), the
 * provider permission grants (shared/clouds/grants.ts) and the validated fleet config:
 * - the functions of one deployment role (`home`, or `regional` for one jurisdiction);
 * - one least-privilege IAM role per function;
 * - each worker's queue, dead-letter queue and alarms, each function's error alarm and each
 *   scheduled function's heartbeat alarm;
 * - the AppConfig application, environment, profile (validated by the config's JSON Schema),
 *   hosted version and deployment that carry `fleet.yaml` to the functions;
 * - reserved concurrency on the internet-facing endpoints.
 *
 * Pure functions over plain data: the local plugin (fleetward-plugin.cjs) feeds them the
 * resolved serverless.yml and applies the result; the unit tests call them directly.
 * Only deploy-time tools and tests import this module, never a Lambda handler.
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import type { PermissionGrant } from '../clouds/permissions.ts';
import { AZURE_FEDERATION_AUDIENCE, FleetConfig } from '../config/schema.ts';
import { Residency } from '../residency/index.ts';
import { FleetwardError, ResidencyError } from '../runtime/errors.ts';
import { STATE_TABLE_KEYS } from '../state/dynamodb.ts';
import { capabilitiesIn, type DeploymentRole, type FunctionSpec } from './functions.ts';

/** A deployment cannot be generated as asked (bad role parameters, a catalogue mismatch, a rule broken). */
export class DeployConfigError extends FleetwardError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'DeployConfigError';
  }
}

// biome-ignore lint/suspicious/noExplicitAny: CloudFormation fragments are untyped JSON
type Json = any;
export type Resources = Record<string, { Type: string; Properties: Record<string, Json>; [k: string]: Json }>;

export interface Statement {
  Effect: 'Allow';
  Action: string[];
  Resource: Json[];
  Condition?: Record<string, Record<string, Json>>;
}

/** A function as the resolved serverless.yml declares it (the parts the generator reads). */
export interface SlsFunction {
  name?: string;
  timeout?: number;
  events?: Json[];
  environment?: Record<string, Json>;
  destinations?: { onFailure?: { type?: string; arn?: Json } };
  role?: string;
  reservedConcurrency?: number;
}

export interface DeployParams {
  role: string;
  /** The jurisdiction id of a regional deployment; empty for home. */
  jurisdiction: string;
  /**
   * The client id of the Entra ID app registration this deployment signs in to Azure as
   * (`--param azureClientId=<appId>`, printed by `fleetward onboard azure`); empty: the config's.
   */
  azureClientId?: string;
}

/** The AppConfig names the functions read their config by (`FLEETWARD_APPCONFIG_*`). */
export interface AppConfigNames {
  application: string;
  environment: string;
  profile: string;
}

export interface DeployInput {
  service: string;
  stage: string;
  region: string;
  params: DeployParams;
  /** The validated config (for jurisdictions, accounts, evidence buckets). */
  config: FleetConfig;
  /** The config file as written (parsed YAML), uploaded to AppConfig as JSON. */
  rawConfig: unknown;
  functions: Record<string, SlsFunction>;
  catalogue: readonly FunctionSpec[];
  grants: readonly PermissionGrant[];
  /** Reserved concurrency of each internet-facing function. */
  endpointConcurrency: number;
  /** A queue whose oldest item is older than this alarms. */
  queueAgeAlarmSeconds: number;
  /** The date residency exceptions are judged on (injected for tests). */
  now?: () => Date;
}

export interface DeployPlan {
  role: DeploymentRole;
  jurisdiction: string | undefined;
  /** `home`, or the jurisdiction id of a regional deployment: part of every name. */
  deployment: string;
  /** The CloudFormation stack name, `fleetward-<stage>-<deployment>` (provider.stackName). */
  stackName: string;
  /** Functions of the other role: removed from the service. */
  drop: string[];
  /** What to set on each deployed function. */
  functions: Record<
    string,
    {
      name: string;
      role: string;
      environment: Record<string, Json>;
      reservedConcurrency?: number;
      /** The function's events, each schedule's EventBridge rule named after the deployment. */
      events?: Json[];
    }
  >;
  /** Generated resources, added to the template. */
  resources: Resources;
  /** Variables every function gets. */
  environment: Record<string, string>;
  statements: Record<string, Statement[]>;
}

/** `backup-clusters` -> `BackupClusters`. */
export function pascal(name: string): string {
  return name
    .split('-')
    .map((w) => w.charAt(0).toUpperCase() + w.slice(1))
    .join('');
}

/** The framework's logical id of a function (`backup-clusters` -> `BackupDashclustersLambdaFunction`). */
export function lambdaLogicalId(name: string): string {
  const normalized = name.replace(/-/g, 'Dash').replace(/_/g, 'Underscore');
  return `${normalized.charAt(0).toUpperCase()}${normalized.slice(1)}LambdaFunction`;
}

/** EventBridge rule names are at most 64 characters. */
const RULE_NAME_MAX = 64;

/**
 * A function's events with every schedule's rule named `fleetward-<stage>-<deployment>-<function>`
 * (`-2`, `-3`... for a second schedule): rule names are unique per region, and `discover-clusters`
 * runs in home and in every regional deployment.
 */
export function namedSchedules(fn: SlsFunction, deployedName: string): Json[] | undefined {
  if (!fn.events?.some((e) => e?.schedule)) return undefined;
  let n = 0;
  return fn.events.map((event) => {
    if (!event?.schedule) return event;
    n += 1;
    const name = fitName(n === 1 ? deployedName : `${deployedName}-${n}`, RULE_NAME_MAX);
    const schedule = typeof event.schedule === 'string' ? { rate: [event.schedule] } : event.schedule;
    return { ...event, schedule: { ...schedule, name } };
  });
}

/** `backup-clusters` -> `FLEETWARD_QUEUE_BACKUP_CLUSTERS` (shared/runtime/dispatch.ts reads it). */
export function queueVariable(job: string): string {
  return `FLEETWARD_QUEUE_${job.toUpperCase().replace(/-/g, '_')}`;
}

/** IAM role names and Lambda function names are at most 64 characters. */
const NAME_MAX = 64;

/**
 * `<full>` when it fits in `max` characters; else cut, and the last 9 characters replaced by
 * `-` and 8 hex digits of the full name's SHA-256, so names stay unique and stable.
 */
export function fitName(full: string, max: number): string {
  if (full.length <= max) return full;
  const hash = createHash('sha256').update(full).digest('hex').slice(0, 8);
  return `${full.slice(0, max - 9)}-${hash}`;
}

/** The deployment id: `home`, or the jurisdiction id of a regional deployment. */
export function deploymentId(role: DeploymentRole, jurisdiction?: string): string {
  if (role === 'home') return 'home';
  if (!jurisdiction) throw new DeployConfigError('a regional deployment needs its jurisdiction');
  if (jurisdiction === 'home') {
    throw new DeployConfigError('jurisdiction id "home" is taken by the home deployment');
  }
  return jurisdiction;
}

/**
 * The prefix of every name a deployment gives: `fleetward-<stage>-<deployment>`; also its
 * CloudFormation stack name. Home and a regional deployment in one region, or two regional
 * deployments in one region (`za` and `ke` in af-south-1), never share a name.
 */
export function deploymentPrefix(stage: string, deployment: string): string {
  return `fleetward-${stage}-${deployment}`;
}

/**
 * The IAM role name of a function: `fleetward-<stage>-<deployment>-<function>` (member-account
 * reader roles, GCP bindings and Azure federated credentials trust these names), hash-truncated
 * to IAM's 64 characters ({@link fitName}).
 */
export function roleName(stage: string, deployment: string, fn: string): string {
  return fitName(`${deploymentPrefix(stage, deployment)}-${fn}`, NAME_MAX);
}

/** The Lambda function name: `fleetward-<stage>-<deployment>-<function>`, hash-truncated to Lambda's 64 characters. */
export function functionName(stage: string, deployment: string, fn: string): string {
  return fitName(`${deploymentPrefix(stage, deployment)}-${fn}`, NAME_MAX);
}

/**
 * Checks the role parameters against the config: `home` takes no jurisdiction and any region;
 * `regional` needs a jurisdiction the config defines and a region inside it (the residency
 * guard of shared/residency, live exceptions honoured), since its functions process that
 * jurisdiction's audit logs.
 */
export function checkParams(
  params: DeployParams,
  config: FleetConfig,
  region?: string,
  now?: () => Date,
): { role: DeploymentRole; jurisdiction?: string } {
  if (params.role === 'home') {
    if (params.jurisdiction) {
      throw new DeployConfigError(
        `param jurisdiction: the home role serves every jurisdiction and takes none (got "${params.jurisdiction}")`,
      );
    }
    return { role: 'home' };
  }
  if (params.role === 'regional') {
    const known = Object.keys(config.jurisdictions);
    if (!params.jurisdiction) {
      throw new DeployConfigError(
        `param jurisdiction: the regional role needs --param jurisdiction=<id> (one of: ${known.join(', ')})`,
      );
    }
    if (!known.includes(params.jurisdiction)) {
      throw new DeployConfigError(
        `param jurisdiction: "${params.jurisdiction}" is not a jurisdiction of the config (one of: ${known.join(', ')})`,
      );
    }
    if (params.jurisdiction === 'home') {
      throw new DeployConfigError(
        'param jurisdiction: "home" names the home deployment; rename the jurisdiction',
      );
    }
    if (region !== undefined) checkRegion(config, params.jurisdiction, region, now);
    return { role: 'regional', jurisdiction: params.jurisdiction };
  }
  throw new DeployConfigError(`param role: expected home or regional (got "${params.role}")`);
}

/** Refuses a regional deployment's region outside its jurisdiction, naming the countries it allows. */
function checkRegion(config: FleetConfig, jurisdiction: string, region: string, now?: () => Date): void {
  const residency = new Residency(config.jurisdictions, now ? { now } : {});
  try {
    residency.assertResidency({ jurisdiction }, { cloud: 'aws', region, what: 'regional deployment' });
  } catch (error) {
    if (!(error instanceof ResidencyError)) throw error;
    const allowed = [
      ...residency.countries(jurisdiction),
      ...residency.liveExceptions(jurisdiction).flatMap((e) => e.allowCountries),
    ];
    throw new DeployConfigError(
      `--region ${region}: a regional deployment of jurisdiction "${jurisdiction}" runs inside it ` +
        `(countries: ${[...new Set(allowed)].join(', ')}): ${error.message}`,
      { cause: error },
    );
  }
}

/**
 * The functions a role deploys. Every serverless.yml function needs a catalogue entry and
 * every entry a serverless.yml function, so nothing is deployed without a generated role.
 */
export function selectFunctions(
  names: readonly string[],
  catalogue: readonly FunctionSpec[],
  role: DeploymentRole,
): { keep: string[]; drop: string[] } {
  const listed = new Set(catalogue.map((f) => f.name));
  const unlisted = names.filter((n) => !listed.has(n));
  if (unlisted.length > 0) {
    throw new DeployConfigError(
      `functions ${unlisted.join(', ')}: not in shared/deploy/functions.ts (FUNCTIONS), so no role can be generated`,
    );
  }
  const missing = catalogue.filter((f) => !names.includes(f.name)).map((f) => f.name);
  if (missing.length > 0) {
    throw new DeployConfigError(`FUNCTIONS ${missing.join(', ')}: no such function in serverless.yml`);
  }
  const keep = names.filter((n) => catalogue.find((f) => f.name === n)!.roles.includes(role));
  return { keep, drop: names.filter((n) => !keep.includes(n)) };
}

/** `{ "Fn::GetAtt": ["X", "Arn"] }` or `!GetAtt X.Arn` -> `X`. */
function getAttTarget(value: Json): string | undefined {
  const att = value?.['Fn::GetAtt'];
  if (Array.isArray(att)) return String(att[0]);
  if (typeof att === 'string') return att.split('.')[0];
  return undefined;
}

/** The queue a worker consumes (its `sqs` event), as a logical id. */
export function consumedQueue(fn: SlsFunction): string | undefined {
  for (const event of fn.events ?? []) {
    if (event?.sqs) return getAttTarget(event.sqs.arn ?? event.sqs);
  }
  return undefined;
}

const sub = (text: string) => ({ 'Fn::Sub': text });

/** The evidence buckets (AWS) of the jurisdictions a deployment serves. */
export function evidenceBuckets(config: FleetConfig, jurisdiction: string | undefined): string[] {
  const ids = jurisdiction === undefined ? Object.keys(config.jurisdictions) : [jurisdiction];
  return [...new Set(ids.flatMap((id) => config.jurisdictions[id]?.evidence?.aws?.bucket ?? []))].sort();
}

/** The reader roles Fleetward assumes in member accounts: the config's `roleArn`s. */
export function readerRoles(config: FleetConfig): string[] {
  return [...new Set((config.clouds.aws?.accounts ?? []).map((a) => a.roleArn))].sort();
}

/** The KMS keys (key or alias ARNs) that sign the audit digests of the jurisdictions a deployment serves. */
export function digestKeys(config: FleetConfig, jurisdiction: string | undefined): string[] {
  const ids = jurisdiction === undefined ? Object.keys(config.jurisdictions) : [jurisdiction];
  return [...new Set(ids.flatMap((id) => config.jurisdictions[id]?.audit?.digestKey ?? []))].sort();
}

const KMS_ALIAS = /^arn:aws:kms:([a-z0-9-]+):(\d{12}):alias\/(.+)$/;

/** Object keys the functions write and read in an evidence bucket (shared/audit, shared/jobs/snapshot.ts). */
const EVIDENCE_PREFIXES = ['audit', 'snapshots', 'digests'];

interface PolicyContext {
  config: FleetConfig;
  jurisdiction: string | undefined;
  fnName: string;
  fn: SlsFunction;
  spec: FunctionSpec;
  appConfigArn: Json;
}

/**
 * The web identity token audiences the config federates with: Entra ID's (or the configured
 * one) when Azure signs in with `aws-federation`; none otherwise (GCP Workload Identity
 * Federation signs a GetCallerIdentity request and needs no AWS permission).
 */
export function webIdentityAudiences(config: FleetConfig): string[] {
  const credential = config.clouds.azure?.credential;
  if (credential?.type !== 'aws-federation') return [];
  return [credential.audience ?? AZURE_FEDERATION_AUDIENCE];
}

/**
 * The condition of an action, when it has one: a web identity token only for the federated
 * audiences; the state table only under the function's own namespaces when it is held to them.
 */
function conditionOf(action: string, ctx: PolicyContext): Statement['Condition'] {
  if (action === 'sts:GetWebIdentityToken') {
    // Audience is multi-valued: every audience asked for must be one Fleetward federates with.
    return { 'ForAllValues:StringEquals': { 'sts:IdentityTokenAudience': webIdentityAudiences(ctx.config) } };
  }
  if (action.startsWith('kms:')) {
    // A key named by alias: IAM authorises Sign on the key, so the grant is held to keys bearing that alias.
    const aliases = digestKeys(ctx.config, ctx.jurisdiction).flatMap((k) => {
      const m = KMS_ALIAS.exec(k);
      return m ? [`alias/${m[3]}`] : [];
    });
    if (aliases.length > 0) return { 'ForAnyValue:StringEquals': { 'kms:ResourceAliases': aliases } };
  }
  if (action.startsWith('dynamodb:') && ctx.spec.stateNamespaces) {
    // The partition key is the namespace (shared/state/dynamodb.ts): every key touched must be one of them.
    return { 'ForAllValues:StringEquals': { 'dynamodb:LeadingKeys': [...ctx.spec.stateNamespaces] } };
  }
  return undefined;
}

/**
 * The one secret an event endpoint reads (`events.<source>.auth.secret`), as the SSM parameter or
 * Secrets Manager secret it names; none when it authenticates without one (OIDC, Entra ID) or
 * reads it from the environment.
 */
export function eventSecret(
  config: FleetConfig,
  source: 'gcp' | 'azure',
): { from: 'ssm' | 'secretsmanager'; name: string } | undefined {
  if (source !== 'azure') return undefined;
  const auth = config.events?.azure?.auth;
  if (auth?.type !== 'secret' || auth.secret.from === 'env') return undefined;
  return { from: auth.secret.from, name: auth.secret.name };
}

/** The secret resources of a function: its one event secret, or Fleetward's own `fleetward/` names. */
function secretResources(service: 'ssm' | 'secretsmanager', ctx: PolicyContext): Json[] {
  const prefix = `arn:\${AWS::Partition}:${service}:\${AWS::Region}:\${AWS::AccountId}`;
  if (ctx.spec.eventSecretOf === undefined) {
    return [sub(service === 'ssm' ? `${prefix}:parameter/fleetward/*` : `${prefix}:secret:fleetward/*`)];
  }
  const secret = eventSecret(ctx.config, ctx.spec.eventSecretOf);
  if (secret?.from !== service) return [];
  // A parameter ARN holds the name without its leading slash; a secret ARN ends in a random suffix.
  return [
    sub(
      service === 'ssm'
        ? `${prefix}:parameter/${secret.name.replace(/^\//, '')}`
        : `${prefix}:secret:${secret.name}-??????`,
    ),
  ];
}

/** The resources of one AWS action held by a function, by the resource the action works on. */
function resourcesOf(action: string, ctx: PolicyContext): Json[] {
  const [service, operation = ''] = action.split(':');
  switch (service) {
    case 'dynamodb':
      return [{ 'Fn::GetAtt': ['StateTable', 'Arn'] }];
    case 'sqs':
      if (operation !== 'SendMessage') break;
      return (ctx.spec.sendsTo ?? []).map((job) => ({ 'Fn::GetAtt': [`${pascal(job)}Queue`, 'Arn'] }));
    case 'ssm':
    case 'secretsmanager':
      return secretResources(service, ctx);
    case 'appconfig':
      return [ctx.appConfigArn];
    case 's3': {
      const buckets = evidenceBuckets(ctx.config, ctx.jurisdiction);
      // Object actions (PutObject, GetObjectVersion) on the keys; bucket actions on the bucket.
      if (/Object/.test(operation) && !/Bucket/.test(operation)) {
        return buckets.flatMap((b) =>
          EVIDENCE_PREFIXES.map((p) => sub(`arn:\${AWS::Partition}:s3:::${b}/${p}/*`)),
        );
      }
      return buckets.map((b) => sub(`arn:\${AWS::Partition}:s3:::${b}`));
    }
    case 'kms':
      // The digest keys by ARN; an alias ARN stands for any key of its account and region bearing
      // that alias (the condition above), since IAM evaluates Sign against the key, not the alias.
      return digestKeys(ctx.config, ctx.jurisdiction).map((k) => {
        const m = KMS_ALIAS.exec(k);
        return m ? sub(`arn:\${AWS::Partition}:kms:${m[1]}:${m[2]}:key/*`) : k;
      });
    case 'sts':
      // GetWebIdentityToken takes no resource (IAM outbound identity federation).
      if (operation === 'GetWebIdentityToken') return ['*'];
      if (operation === 'AssumeRole') return readerRoles(ctx.config);
      break;
  }
  throw new DeployConfigError(
    `${ctx.fnName}: no resource rule for ${action} in shared/deploy/generate.ts; add one before granting it`,
  );
}

/** Actions an internet-facing function must never hold. */
const FORBIDDEN_ON_ENDPOINTS = [/^sts:AssumeRole/, /^s3:(Put|Delete|Restore)/];

/** Throws when an internet-facing function's statements hold a forbidden action. */
export function assertEndpointPolicy(spec: FunctionSpec, statements: readonly Statement[]): void {
  if (!spec.internetFacing) return;
  if (spec.stateNamespaces === undefined || spec.eventSecretOf === undefined) {
    throw new DeployConfigError(
      `${spec.name}: internet-facing functions name their state namespaces and their one event secret (stateNamespaces, eventSecretOf)`,
    );
  }
  const bad = statements
    .flatMap((s) => s.Action)
    .filter((a) => FORBIDDEN_ON_ENDPOINTS.some((re) => re.test(a)));
  if (bad.length > 0) {
    throw new DeployConfigError(
      `${spec.name}: internet-facing functions never hold ${[...new Set(bad)].join(', ')}`,
    );
  }
}

/**
 * One function's IAM statements: the `function`-holder AWS grants of its capabilities on their
 * real resources, `sts:AssumeRole` on the reader roles only when a capability needs a member
 * account, its own queue (workers), its failure destination and its own log group.
 */
export function functionStatements(ctx: PolicyContext, grants: readonly PermissionGrant[]): Statement[] {
  const { spec, fn } = ctx;
  const capabilities = capabilitiesIn(spec, ctx.jurisdiction === undefined ? 'home' : 'regional');
  const mine = grants.filter((g) => g.provider === 'aws' && capabilities.includes(g.capability));
  const actions = [...new Set(mine.filter((g) => g.holder === 'function').map((g) => g.permission))].filter(
    // Web identity tokens only when the config federates into Azure with them.
    (a) => a !== 'sts:GetWebIdentityToken' || webIdentityAudiences(ctx.config).length > 0,
  );
  if (mine.some((g) => g.holder === 'member') && !actions.includes('sts:AssumeRole')) {
    actions.push('sts:AssumeRole');
  }
  if (capabilities.includes('queue-send') !== (spec.sendsTo?.length ?? 0) > 0) {
    throw new DeployConfigError(
      `${spec.name}: the queue-send capability and sendsTo (the queues it sends to) go together`,
    );
  }
  // One statement per distinct resource list (and condition), actions sorted: a stable, readable policy.
  const byResource = new Map<string, Statement>();
  const add = (action: string, resources: Json[], condition?: Statement['Condition']) => {
    if (resources.length === 0) return;
    const key = JSON.stringify([resources, condition ?? null]);
    const statement =
      byResource.get(key) ??
      ({
        Effect: 'Allow' as const,
        Action: [],
        Resource: resources,
        ...(condition && { Condition: condition }),
      } satisfies Statement);
    if (!statement.Action.includes(action)) statement.Action.push(action);
    byResource.set(key, statement);
  };
  for (const action of actions.sort()) add(action, resourcesOf(action, ctx), conditionOf(action, ctx));
  const queue = consumedQueue(fn);
  if (queue) {
    for (const a of ['sqs:DeleteMessage', 'sqs:GetQueueAttributes', 'sqs:ReceiveMessage']) {
      add(a, [{ 'Fn::GetAtt': [queue, 'Arn'] }]);
    }
  }
  const destination = fn.destinations?.onFailure;
  if (destination?.arn !== undefined) {
    if (destination.type !== 'sqs') {
      throw new DeployConfigError(`${spec.name}: only sqs failure destinations get a generated grant`);
    }
    add('sqs:SendMessage', [destination.arn]);
  }
  const logGroup = `/aws/lambda/${fn.name ?? spec.name}`;
  for (const a of ['logs:CreateLogStream', 'logs:PutLogEvents']) {
    add(a, [sub(`arn:\${AWS::Partition}:logs:\${AWS::Region}:\${AWS::AccountId}:log-group:${logGroup}:*`)]);
  }
  const statements = [...byResource.values()];
  for (const s of statements) s.Action.sort();
  assertEndpointPolicy(spec, statements);
  return statements;
}

const alarm = (properties: Record<string, Json>) => ({
  Type: 'AWS::CloudWatch::Alarm',
  Properties: {
    Period: 300,
    EvaluationPeriods: 1,
    Threshold: 0,
    ComparisonOperator: 'GreaterThanThreshold',
    TreatMissingData: 'notBreaching',
    ...properties,
  },
});

const lambdaAlarm = (fn: string, metric: 'Errors' | 'Throttles', what: string) =>
  alarm({
    AlarmDescription: `The ${fn} function ${what}`,
    Namespace: 'AWS/Lambda',
    MetricName: metric,
    Dimensions: [{ Name: 'FunctionName', Value: { Ref: lambdaLogicalId(fn) } }],
    Statistic: 'Sum',
  });

/** SQS queue names are at most 80 characters (the dead-letter queue adds `-dlq`). */
const QUEUE_NAME_MAX = 80;

const UNIT_SECONDS: Record<string, number> = { minute: 60, hour: 3600, day: 86400 };

/** The interval of a schedule expression in seconds: `rate(...)`, or a daily or hourly `cron(...)`. */
export function scheduleSeconds(expression: string): number {
  const rate = /^rate\((\d+) (minute|hour|day)s?\)$/.exec(expression);
  if (rate) return Number(rate[1]) * UNIT_SECONDS[rate[2]!]!;
  const cron = /^cron\((\S+) (\S+) \* \* \? \*\)$/.exec(expression);
  if (cron && /^\d+$/.test(cron[1]!)) return /^\d+$/.test(cron[2]!) ? 86400 : cron[2] === '*' ? 3600 : 0;
  throw new DeployConfigError(
    `schedule "${expression}": no heartbeat interval for it (rate, daily or hourly cron expected)`,
  );
}

/** The per-function alarms, and each worker's queue, dead-letter queue and queue alarms. */
export function functionResources(
  name: string,
  fn: SlsFunction,
  naming: { prefix: string; queueAgeAlarmSeconds: number },
): Resources {
  const resources: Resources = {
    [`${pascal(name)}ErrorsAlarm`]: lambdaAlarm(name, 'Errors', 'failed'),
  };
  for (const event of fn.events ?? []) {
    const schedule = event?.schedule;
    if (!schedule) continue;
    const expression = [].concat(schedule.rate ?? schedule)[0] as unknown as string;
    const seconds = scheduleSeconds(expression);
    resources[`${pascal(name)}HeartbeatAlarm`] = {
      Type: 'AWS::CloudWatch::Alarm',
      Properties: {
        AlarmDescription: `${name} has not run successfully for twice its interval (${seconds} s)`,
        Namespace: 'Fleetward',
        MetricName: 'RunSucceeded',
        Dimensions: [
          { Name: 'service', Value: name },
          { Name: 'job', Value: name },
        ],
        Statistic: 'Sum',
        Period: seconds,
        EvaluationPeriods: 2,
        Threshold: 1,
        ComparisonOperator: 'LessThanThreshold',
        TreatMissingData: 'breaching',
      },
    };
  }
  const queue = consumedQueue(fn);
  if (queue) {
    const job = name.replace(/-worker$/, '');
    const expected = `${pascal(job)}Queue`;
    if (queue !== expected) {
      throw new DeployConfigError(`${name}: a worker consumes its job's queue ${expected} (got ${queue})`);
    }
    const base = fitName(`${naming.prefix}-${job}`, QUEUE_NAME_MAX - 4);
    const dlq = `${pascal(job)}DeadLetterQueue`;
    const queueAlarm = (
      id: string,
      metric: string,
      statistic: string,
      description: string,
      threshold: Json,
    ) =>
      alarm({
        AlarmDescription: description,
        Namespace: 'AWS/SQS',
        MetricName: metric,
        Dimensions: [{ Name: 'QueueName', Value: { 'Fn::GetAtt': [id, 'QueueName'] } }],
        Statistic: statistic,
        Threshold: threshold,
      });
    Object.assign(resources, {
      [dlq]: {
        Type: 'AWS::SQS::Queue',
        Properties: { QueueName: `${base}-dlq`, SqsManagedSseEnabled: true, MessageRetentionPeriod: 1209600 },
      },
      [expected]: {
        Type: 'AWS::SQS::Queue',
        Properties: {
          QueueName: base,
          SqsManagedSseEnabled: true,
          // At least 6x the worker's timeout, as AWS advises for Lambda event sources.
          VisibilityTimeout: 6 * (fn.timeout ?? 6),
          RedrivePolicy: { deadLetterTargetArn: { 'Fn::GetAtt': [dlq, 'Arn'] }, maxReceiveCount: 3 },
        },
      },
      [`${pascal(job)}DeadLetterAlarm`]: queueAlarm(
        dlq,
        'ApproximateNumberOfMessagesVisible',
        'Maximum',
        `Items of the ${job} queue failed 3 times and wait in its dead-letter queue`,
        0,
      ),
      [`${pascal(job)}QueueAgeAlarm`]: queueAlarm(
        expected,
        'ApproximateAgeOfOldestMessage',
        'Maximum',
        `The oldest item of the ${job} queue waits longer than ${naming.queueAgeAlarmSeconds} s`,
        naming.queueAgeAlarmSeconds,
      ),
      [`${pascal(name)}ThrottlesAlarm`]: lambdaAlarm(name, 'Throttles', 'was throttled'),
    });
  }
  return resources;
}

/** Keywords that only annotate a schema: a validator ignores them, and AppConfig counts their bytes. */
const ANNOTATIONS = ['title', 'description', 'examples'] as const;

/**
 * The JSON Schema AppConfig validates the config with: the schema `fleetward config schema`
 * exports (shared/config/load.ts), in draft 4, the only draft AppConfig's JSON_SCHEMA
 * validator reads, without its annotations (the field documentation would outgrow
 * AppConfig's 32 KB validator limit, and validates nothing).
 */
export function appConfigSchema(): Record<string, unknown> {
  return z.toJSONSchema(FleetConfig, {
    io: 'input',
    unrepresentable: 'any',
    target: 'draft-04',
    // Called once per schema node, so a field that happens to be named `description` stays.
    override: ({ jsonSchema }) => {
      for (const keyword of ANNOTATIONS) delete (jsonSchema as Record<string, unknown>)[keyword];
    },
  });
}

/** AppConfig's limit on a validator's content. */
const VALIDATOR_MAX = 32768;

/** The AppConfig resources carrying the config to the functions (hosted, deployed all at once). */
export function appConfigResources(names: AppConfigNames, rawConfig: unknown): Resources {
  const schema = JSON.stringify(appConfigSchema());
  if (schema.length > VALIDATOR_MAX) {
    throw new DeployConfigError(
      `the config JSON Schema is ${schema.length} characters; AppConfig validators take ${VALIDATOR_MAX}`,
    );
  }
  const app = { 'Fn::GetAtt': ['FleetConfigApplication', 'ApplicationId'] };
  return {
    FleetConfigApplication: {
      Type: 'AWS::AppConfig::Application',
      Properties: { Name: names.application, Description: 'Fleetward fleet.yaml' },
    },
    FleetConfigEnvironment: {
      Type: 'AWS::AppConfig::Environment',
      Properties: { ApplicationId: app, Name: names.environment },
    },
    FleetConfigProfile: {
      Type: 'AWS::AppConfig::ConfigurationProfile',
      Properties: {
        ApplicationId: app,
        Name: names.profile,
        LocationUri: 'hosted',
        Type: 'AWS.Freeform',
        Validators: [{ Type: 'JSON_SCHEMA', Content: schema }],
      },
    },
    FleetConfigVersion: {
      Type: 'AWS::AppConfig::HostedConfigurationVersion',
      // A new version per content; the old one stays (a rollback target), as AppConfig keeps versions.
      DeletionPolicy: 'Retain',
      UpdateReplacePolicy: 'Retain',
      Properties: {
        ApplicationId: app,
        ConfigurationProfileId: { 'Fn::GetAtt': ['FleetConfigProfile', 'ConfigurationProfileId'] },
        // The JSON_SCHEMA validator reads JSON: the validated fleet.yaml goes up as JSON.
        ContentType: 'application/json',
        Content: JSON.stringify(rawConfig),
      },
    },
    FleetConfigDeployment: {
      Type: 'AWS::AppConfig::Deployment',
      Properties: {
        ApplicationId: app,
        EnvironmentId: { 'Fn::GetAtt': ['FleetConfigEnvironment', 'EnvironmentId'] },
        ConfigurationProfileId: { 'Fn::GetAtt': ['FleetConfigProfile', 'ConfigurationProfileId'] },
        ConfigurationVersion: { Ref: 'FleetConfigVersion' },
        DeploymentStrategyId: 'AppConfig.AllAtOnce',
      },
    },
  };
}

/** The ARN of the one configuration profile the functions may read. */
function appConfigArn(): Json {
  return {
    'Fn::Sub': [
      `arn:\${AWS::Partition}:appconfig:\${AWS::Region}:\${AWS::AccountId}:application/\${App}/environment/\${Env}/configuration/\${Profile}`,
      {
        App: { 'Fn::GetAtt': ['FleetConfigApplication', 'ApplicationId'] },
        Env: { 'Fn::GetAtt': ['FleetConfigEnvironment', 'EnvironmentId'] },
        Profile: { 'Fn::GetAtt': ['FleetConfigProfile', 'ConfigurationProfileId'] },
      },
    ],
  };
}

/** The AppConfig names of a deployment: one application per stage and role (and jurisdiction). */
export function appConfigNames(stage: string, role: DeploymentRole, jurisdiction?: string): AppConfigNames {
  return {
    application: ['fleetward', stage, role, jurisdiction].filter(Boolean).join('-'),
    environment: stage,
    profile: 'fleet',
  };
}

/**
 * The resources every deployment has, named after it: the state table (kept when the stack
 * goes), the queue failed asynchronous invocations land in, and its alarm.
 */
export function sharedResources(prefix: string): Resources {
  return {
    StateTable: {
      Type: 'AWS::DynamoDB::Table',
      DeletionPolicy: 'Retain',
      UpdateReplacePolicy: 'Retain',
      Properties: {
        TableName: `${prefix}-state`,
        BillingMode: 'PAY_PER_REQUEST',
        ...STATE_TABLE_KEYS,
        PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
        SSESpecification: { SSEEnabled: true },
      },
    },
    AsyncFailuresQueue: {
      Type: 'AWS::SQS::Queue',
      Properties: {
        QueueName: fitName(`${prefix}-async-failures`, QUEUE_NAME_MAX),
        SqsManagedSseEnabled: true,
        MessageRetentionPeriod: 1209600,
      },
    },
    AsyncFailuresAlarm: alarm({
      AlarmDescription:
        'A scheduled or event-triggered invocation failed after its retries (see the async-failures queue)',
      Namespace: 'AWS/SQS',
      MetricName: 'ApproximateNumberOfMessagesVisible',
      Dimensions: [{ Name: 'QueueName', Value: { 'Fn::GetAtt': ['AsyncFailuresQueue', 'QueueName'] } }],
      Statistic: 'Maximum',
    }),
  };
}

/**
 * `*Name` properties that need not be unique in an account and region, or are scoped inside
 * their parent (AppConfig environments and profiles inside the application).
 */
const UNSCOPED_NAMES = new Set([
  'AWS::ApiGatewayV2::Api Name',
  'AWS::ApiGatewayV2::Stage StageName',
  'AWS::AppConfig::Application Name',
  'AWS::AppConfig::Environment Name',
  'AWS::AppConfig::ConfigurationProfile Name',
  'AWS::CloudWatch::Alarm MetricName',
]);

/**
 * Throws when a resource of the final template has a literal `*Name` property that does not
 * carry the deployment prefix (so two deployments in one region would collide on it).
 */
export function assertDeploymentNames(resources: Resources, prefix: string): void {
  const bad = Object.entries(resources).flatMap(([id, r]) =>
    Object.entries(r.Properties ?? {})
      .filter(([k, v]) => /Name$/.test(k) && typeof v === 'string' && !UNSCOPED_NAMES.has(`${r.Type} ${k}`))
      .filter(([, v]) => !(v as string).includes(prefix))
      .map(([k, v]) => `${id}.${k} "${v}"`),
  );
  if (bad.length > 0) {
    throw new DeployConfigError(
      `resources ${bad.join(', ')}: every name must carry the deployment's prefix ${prefix}, or deployments in one region collide`,
    );
  }
}

/** Entra ID application (client) ids are GUIDs. */
const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

const LAMBDA_TRUST = {
  Version: '2012-10-17',
  Statement: [
    { Effect: 'Allow', Principal: { Service: ['lambda.amazonaws.com'] }, Action: ['sts:AssumeRole'] },
  ],
};

/** Everything the plugin applies to one `serverless package`. */
export function planDeployment(input: DeployInput): DeployPlan {
  const { role, jurisdiction } = checkParams(input.params, input.config, input.region, input.now);
  const azureClientId = input.params.azureClientId ?? '';
  if (azureClientId !== '' && !GUID.test(azureClientId)) {
    throw new DeployConfigError(
      `param azureClientId: expected the app registration's application (client) id, a GUID (got "${azureClientId}")`,
    );
  }
  const { keep, drop } = selectFunctions(Object.keys(input.functions), input.catalogue, role);
  const deployment = deploymentId(role, jurisdiction);
  const prefix = deploymentPrefix(input.stage, deployment);
  const names = appConfigNames(input.stage, role, jurisdiction);
  const resources: Resources = { ...sharedResources(prefix), ...appConfigResources(names, input.rawConfig) };
  const plan: DeployPlan = {
    role,
    jurisdiction,
    deployment,
    stackName: prefix,
    drop,
    functions: {},
    resources,
    environment: {
      FLEETWARD_APPCONFIG_APPLICATION: names.application,
      FLEETWARD_APPCONFIG_ENVIRONMENT: names.environment,
      FLEETWARD_APPCONFIG_PROFILE: names.profile,
      // Overrides clouds.azure.credential.clientId of an aws-federation credential (one app
      // registration per deployment: each holds at most 20 federated credentials).
      FLEETWARD_AZURE_CLIENT_ID: azureClientId,
    },
    statements: {},
  };
  const deployedQueues = new Set<string>();
  for (const name of keep) {
    const fn = input.functions[name]!;
    Object.assign(
      resources,
      functionResources(name, fn, { prefix, queueAgeAlarmSeconds: input.queueAgeAlarmSeconds }),
    );
    const queue = consumedQueue(fn);
    if (queue) deployedQueues.add(queue);
  }
  for (const name of keep) {
    const deployedName = functionName(input.stage, deployment, name);
    const fn = { ...input.functions[name]!, name: deployedName };
    const spec = input.catalogue.find((f) => f.name === name)!;
    for (const job of spec.sendsTo ?? []) {
      if (!deployedQueues.has(`${pascal(job)}Queue`)) {
        throw new DeployConfigError(
          `${name}: sends to the ${job} queue, but no ${job}-worker is deployed in the ${role} role`,
        );
      }
    }
    const statements = functionStatements(
      { config: input.config, jurisdiction, fnName: name, fn, spec, appConfigArn: appConfigArn() },
      input.grants,
    );
    plan.statements[name] = statements;
    const roleId = `${pascal(name)}Role`;
    resources[roleId] = {
      Type: 'AWS::IAM::Role',
      Properties: {
        RoleName: roleName(input.stage, deployment, name),
        AssumeRolePolicyDocument: LAMBDA_TRUST,
        Policies: [{ PolicyName: name, PolicyDocument: { Version: '2012-10-17', Statement: statements } }],
      },
    };
    const events = namedSchedules(fn, deployedName);
    plan.functions[name] = {
      name: deployedName,
      ...(events && { events }),
      role: roleId,
      environment: Object.fromEntries(
        (spec.sendsTo ?? []).map((job) => [queueVariable(job), { Ref: `${pascal(job)}Queue` }]),
      ),
      ...(spec.internetFacing && { reservedConcurrency: input.endpointConcurrency }),
    };
  }
  const senders = new Set(
    keep
      .flatMap((n) => input.catalogue.find((f) => f.name === n)!.sendsTo ?? [])
      .map((j) => `${pascal(j)}Queue`),
  );
  const idle = [...deployedQueues].filter((q) => !senders.has(q));
  if (idle.length > 0) {
    throw new DeployConfigError(
      `queues ${idle.join(', ')}: no deployed function sends to them (FUNCTIONS sendsTo)`,
    );
  }
  return plan;
}
