/**
 * The deployment generator (shared/deploy/generate.ts) as pure functions: which functions a
 * role deploys, what each function's IAM role holds, and the rules it refuses to break.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { allGrants } from '../../shared/clouds/grants.ts';
import type { Capability, PermissionGrant } from '../../shared/clouds/permissions.ts';
import { configJsonSchema, loadConfig } from '../../shared/config/load.ts';
import type { FleetConfig } from '../../shared/config/schema.ts';
import { capabilitiesIn, FUNCTIONS, type FunctionSpec } from '../../shared/deploy/functions.ts';
import {
  appConfigSchema,
  assertDeploymentNames,
  checkParams,
  type DeployInput,
  deploymentId,
  functionName,
  functionStatements,
  namedSchedules,
  planDeployment,
  roleName,
  type SlsFunction,
  type Statement,
  scheduleSeconds,
  selectFunctions,
} from '../../shared/deploy/generate.ts';
import { walkSchema } from './json-schema-walk.ts';

const grant = (
  capability: Capability,
  holder: 'function' | 'member',
  permission: string,
): PermissionGrant => ({
  provider: 'aws',
  holder,
  capability,
  permission,
  calls: [],
  why: 'test',
});

/** A small grants table in the shape of shared/clouds/grants.ts. */
const GRANTS: PermissionGrant[] = [
  grant('state', 'function', 'dynamodb:GetItem'),
  grant('secrets', 'function', 'ssm:GetParameter'),
  grant('config', 'function', 'appconfig:GetLatestConfiguration'),
  grant('queue-send', 'function', 'sqs:SendMessage'),
  grant('evidence-write', 'function', 's3:PutObject'),
  grant('evidence-write', 'function', 's3:GetBucketObjectLockConfiguration'),
  grant('discovery', 'member', 'eks:ListClusters'),
  { ...grant('discovery', 'member', 'container.clusters.list'), provider: 'gcp' },
];

const actions = (statements: Statement[]) => statements.flatMap((s) => s.Action).sort();
const worker = (job: string, timeout = 300): SlsFunction => ({
  name: `fleetward-dev-${job}-worker`,
  timeout,
  events: [
    {
      sqs: {
        arn: { 'Fn::GetAtt': [`${job.replace(/(^|-)(\w)/g, (_, _d, c) => c.toUpperCase())}Queue`, 'Arn'] },
      },
    },
  ],
});

describe('deploy generator', () => {
  let config: FleetConfig;
  const statementsOf = (spec: FunctionSpec, fn: SlsFunction = {}, jurisdiction?: string) =>
    functionStatements(
      { config, jurisdiction, fnName: spec.name, fn, spec, appConfigArn: 'arn:profile' },
      GRANTS,
    );

  beforeAll(async () => {
    config = await loadConfig('fleet.example.yaml');
  });

  describe('role parameters', () => {
    it('takes home without a jurisdiction and regional with one the config defines', () => {
      expect(checkParams({ role: 'home', jurisdiction: '' }, config)).toEqual({ role: 'home' });
      expect(checkParams({ role: 'regional', jurisdiction: 'in' }, config)).toEqual({
        role: 'regional',
        jurisdiction: 'in',
      });
    });

    it('takes a regional region inside the jurisdiction, or allowed by a live exception; home takes any', () => {
      expect(checkParams({ role: 'regional', jurisdiction: 'in' }, config, 'ap-south-1')).toEqual({
        role: 'regional',
        jurisdiction: 'in',
      });
      // Kenya has no region: its exception allows South Africa until 2027-06-30.
      const before = () => new Date('2027-06-30T23:00:00Z');
      expect(
        checkParams({ role: 'regional', jurisdiction: 'ke' }, config, 'af-south-1', before).jurisdiction,
      ).toBe('ke');
      expect(checkParams({ role: 'home', jurisdiction: '' }, config, 'us-east-1')).toEqual({ role: 'home' });
    });

    it.each([
      [
        'in',
        'eu-central-1',
        undefined,
        /--region eu-central-1: a regional deployment of jurisdiction "in" runs inside it \(countries: IN\)/,
      ],
      [
        'eu',
        'us-east-1',
        undefined,
        /jurisdiction "eu" runs inside it \(countries: AT, .*DE, .*NO\).*US is outside/,
      ],
      [
        'ke',
        'af-south-1',
        () => new Date('2027-07-01T00:00:00Z'),
        /exception allowing it expired on 2027-06-30/,
      ],
      ['in', 'mars-north-1', undefined, /unknown aws region "mars-north-1"/],
    ])('refuses regional %s in %s', (jurisdiction, region, now, message) => {
      expect(() => checkParams({ role: 'regional', jurisdiction }, config, region, now)).toThrow(message);
    });

    it.each([
      [{ role: 'regional', jurisdiction: '' }, /needs --param jurisdiction=<id> \(one of: eu, in, za, ke\)/],
      [{ role: 'regional', jurisdiction: 'fr' }, /"fr" is not a jurisdiction of the config/],
      [{ role: 'home', jurisdiction: 'in' }, /home role serves every jurisdiction and takes none/],
      [{ role: 'edge', jurisdiction: '' }, /param role: expected home or regional/],
    ])('refuses %j', (params, message) => {
      expect(() => checkParams(params, config)).toThrow(message);
    });
  });

  describe('role filter', () => {
    const names = FUNCTIONS.map((f) => f.name);

    it('keeps the functions of the role and drops the others', () => {
      const home = selectFunctions(names, FUNCTIONS, 'home');
      const regional = selectFunctions(names, FUNCTIONS, 'regional');

      expect(home.keep).toContain('gcp-cluster-events');
      expect(home.keep).not.toContain('collect-audit-logs-worker');
      expect(regional.keep).toContain('collect-audit-logs-worker');
      expect(regional.drop).toContain('gcp-cluster-events');
      // discover-clusters and the snapshot run in both roles
      expect(home.keep.filter((n) => regional.keep.includes(n)).sort()).toEqual([
        'discover-clusters',
        'publish-compliance-snapshot',
      ]);
    });

    it('refuses a serverless.yml function the catalogue does not list, and a listed one that is missing', () => {
      expect(() => selectFunctions([...names, 'mystery'], FUNCTIONS, 'home')).toThrow(
        /functions mystery: not in/,
      );
      expect(() => selectFunctions(names.slice(1), FUNCTIONS, 'home')).toThrow(
        new RegExp(`FUNCTIONS ${names[0]}: no such function`),
      );
    });
  });

  describe('least privilege', () => {
    it('grants only the function-holder AWS actions of its capabilities, on their resources, and its log group', () => {
      const spec: FunctionSpec = { name: 'f', roles: ['home'], capabilities: ['state'] };

      const statements = statementsOf(spec, { name: 'fleetward-dev-f' });

      expect(actions(statements)).toEqual(['dynamodb:GetItem', 'logs:CreateLogStream', 'logs:PutLogEvents']);
      expect(statements[0]!.Resource).toEqual([{ 'Fn::GetAtt': ['StateTable', 'Arn'] }]);
      expect(JSON.stringify(statements[1]!.Resource)).toContain('log-group:/aws/lambda/fleetward-dev-f:*');
    });

    it('adds sts:AssumeRole on the config reader roles only with a member-account capability', () => {
      const member = statementsOf({ name: 'd', roles: ['home'], capabilities: ['state', 'discovery'] });
      const none = statementsOf({ name: 's', roles: ['home'], capabilities: ['state', 'secrets'] });

      expect(member.find((s) => s.Action.includes('sts:AssumeRole'))?.Resource).toEqual([
        'arn:aws:iam::111111111111:role/fleetward-reader',
        'arn:aws:iam::222222222222:role/fleetward-reader',
      ]);
      expect(actions(none)).not.toContain('sts:AssumeRole');
      // member grants themselves (eks:ListClusters, GCP permissions) never land in the function role
      expect(actions(member)).not.toContain('eks:ListClusters');
      expect(JSON.stringify(member)).not.toContain('container.clusters.list');
    });

    it("writes only the deployed jurisdiction's evidence bucket, under the evidence prefixes", () => {
      const spec: FunctionSpec = { name: 'w', roles: ['regional'], capabilities: ['evidence-write'] };

      const regional = JSON.stringify(statementsOf(spec, {}, 'in'));
      const home = JSON.stringify(statementsOf(spec));

      expect(regional).toContain('example-fleetward-evidence-in/audit/*');
      expect(regional).toContain('s3:::example-fleetward-evidence-in"');
      expect(regional).not.toMatch(/evidence-(eu|za|ke)/);
      expect(home).toMatch(/evidence-eu.*evidence-in.*evidence-ke.*evidence-za/);
    });

    it('sends only to the queues it names, receives only from the one it consumes', () => {
      const planner: FunctionSpec = {
        name: 'backup-clusters',
        roles: ['regional'],
        capabilities: ['queue-send'],
        sendsTo: ['backup-clusters'],
      };
      const consumer: FunctionSpec = {
        name: 'backup-clusters-worker',
        roles: ['regional'],
        capabilities: [],
      };

      const sent = statementsOf(planner).find((s) => s.Action.includes('sqs:SendMessage'));
      const received = statementsOf(consumer, worker('backup-clusters')).find((s) =>
        s.Action.includes('sqs:ReceiveMessage'),
      );

      expect(sent?.Resource).toEqual([{ 'Fn::GetAtt': ['BackupClustersQueue', 'Arn'] }]);
      expect(received?.Resource).toEqual([{ 'Fn::GetAtt': ['BackupClustersQueue', 'Arn'] }]);
      expect(() => statementsOf({ ...planner, sendsTo: [] })).toThrow(/queue-send capability and sendsTo/);
    });

    it('refuses an action it has no resource rule for', () => {
      const spec: FunctionSpec = { name: 'k', roles: ['home'], capabilities: ['identity'] };
      const statements = () =>
        functionStatements(
          { config, jurisdiction: undefined, fnName: 'k', fn: {}, spec, appConfigArn: 'arn:profile' },
          [grant('identity', 'function', 'lambda:InvokeFunction')],
        );

      expect(statements).toThrow(/k: no resource rule for lambda:InvokeFunction/);
    });
  });

  describe('internet-facing functions', () => {
    const endpoint = (capabilities: Capability[], more: Partial<FunctionSpec> = {}): FunctionSpec => ({
      name: 'hook',
      roles: ['home'],
      capabilities,
      internetFacing: true,
      stateNamespaces: ['cluster-events'],
      eventSecretOf: 'azure',
      ...more,
    });

    it.each([
      [['discovery'], /sts:AssumeRole/],
      [['evidence-write'], /s3:PutObject/],
    ] as [Capability[], RegExp][])('refuse a role with %j', (capabilities, forbidden) => {
      const spec = endpoint(capabilities);

      expect(() => statementsOf(spec)).toThrow(forbidden);
      expect(() => statementsOf(spec)).toThrow(/hook: internet-facing functions never hold/);
    });

    it('hold the state table under their own namespaces only, and their one secret', () => {
      const statements = statementsOf(endpoint(['state', 'secrets', 'config']));

      // The example config keeps the Event Grid secret in Secrets Manager: no SSM parameter at all.
      expect(actions(statements)).toEqual([
        'appconfig:GetLatestConfiguration',
        'dynamodb:GetItem',
        'logs:CreateLogStream',
        'logs:PutLogEvents',
      ]);
      const state = statements.find((s) => s.Action.includes('dynamodb:GetItem'));
      expect(state?.Condition).toEqual({
        'ForAllValues:StringEquals': { 'dynamodb:LeadingKeys': ['cluster-events'] },
      });
    });

    it('read exactly the secret the config names for their event source', () => {
      const withSecrets = [...GRANTS, grant('secrets', 'function', 'secretsmanager:GetSecretValue')];
      const spec = endpoint(['secrets']);
      const statements = functionStatements(
        { config, jurisdiction: undefined, fnName: spec.name, fn: {}, spec, appConfigArn: 'arn:profile' },
        withSecrets,
      );

      const read = statements.find((s) => s.Action.includes('secretsmanager:GetSecretValue'));
      expect(read?.Resource).toEqual([
        {
          'Fn::Sub':
            // biome-ignore lint/suspicious/noTemplateCurlyInString: a CloudFormation Fn::Sub string
            'arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:fleetward/eventgrid/secret-??????',
        },
      ]);
      // The Pub/Sub endpoint authenticates by OIDC: no secret at all.
      const gcp = endpoint(['secrets'], { eventSecretOf: 'gcp' });
      expect(
        actions(
          functionStatements(
            {
              config,
              jurisdiction: undefined,
              fnName: gcp.name,
              fn: {},
              spec: gcp,
              appConfigArn: 'arn:profile',
            },
            withSecrets,
          ),
        ),
      ).toEqual(['logs:CreateLogStream', 'logs:PutLogEvents']);
    });

    it('refuse an endpoint that does not name its state namespaces and its event secret', () => {
      const spec: FunctionSpec = {
        name: 'hook',
        roles: ['home'],
        capabilities: ['state'],
        internetFacing: true,
      };

      expect(() => statementsOf(spec)).toThrow(/hook: internet-facing functions name their state namespaces/);
    });

    it('hold no forbidden action in the catalogue', () => {
      for (const spec of FUNCTIONS.filter((f) => f.internetFacing)) {
        expect(() => statementsOf(spec)).not.toThrow();
      }
    });
  });

  describe('a whole deployment', () => {
    const input = (role: string, jurisdiction: string, catalogue = FUNCTIONS): DeployInput => ({
      service: 'fleetward',
      stage: 'dev',
      region: 'ap-south-1',
      params: { role, jurisdiction },
      config,
      rawConfig: { version: 1 },
      functions: Object.fromEntries(
        catalogue.map((f) => [
          f.name,
          f.name.endsWith('-worker')
            ? worker(f.name.replace(/-worker$/, ''))
            : { name: `fleetward-dev-${f.name}`, events: [{ schedule: { rate: ['rate(10 minutes)'] } }] },
        ]),
      ),
      catalogue,
      grants: GRANTS,
      endpointConcurrency: 7,
      queueAgeAlarmSeconds: 3600,
    });

    it('generates a role, alarms and the queues of the role only', () => {
      const plan = planDeployment(input('regional', 'in'));

      expect(Object.keys(plan.functions).sort()).toEqual(
        FUNCTIONS.filter((f) => f.roles.includes('regional'))
          .map((f) => f.name)
          .sort(),
      );
      expect(plan.resources.BackupClustersQueue?.Properties.VisibilityTimeout).toBe(1800);
      expect(plan.resources.ReconcileTagsQueue).toBeUndefined();
      expect(plan.resources.CollectAuditLogsWorkerRole?.Properties.RoleName).toBe(
        'fleetward-dev-in-collect-audit-logs-worker',
      );
      expect(plan.functions['collect-audit-logs-worker']?.name).toBe(
        'fleetward-dev-in-collect-audit-logs-worker',
      );
      expect(plan.stackName).toBe('fleetward-dev-in');
      expect(plan.resources.StateTable?.Properties.TableName).toBe('fleetward-dev-in-state');
      expect(plan.resources.AsyncFailuresQueue?.Properties.QueueName).toBe('fleetward-dev-in-async-failures');
      expect(plan.resources.BackupClustersQueue?.Properties.QueueName).toBe(
        'fleetward-dev-in-backup-clusters',
      );
      expect(plan.resources.BackupClustersDeadLetterQueue?.Properties.QueueName).toBe(
        'fleetward-dev-in-backup-clusters-dlq',
      );
      expect(plan.functions['restore-drill']?.events?.[0].schedule.name).toBe(
        'fleetward-dev-in-restore-drill',
      );
      expect(plan.resources.RestoreDrillHeartbeatAlarm?.Properties.Period).toBe(600);
      expect(plan.functions['backup-clusters']?.environment).toEqual({
        FLEETWARD_QUEUE_BACKUP_CLUSTERS: { Ref: 'BackupClustersQueue' },
      });
      expect(plan.environment.FLEETWARD_APPCONFIG_APPLICATION).toBe('fleetward-dev-regional-in');
      expect(plan.resources.FleetConfigVersion?.Properties.Content).toBe('{"version":1}');
    });

    it('gives home and a regional deployment in the same region no name in common', () => {
      const names = (plan: ReturnType<typeof planDeployment>) =>
        new Set([
          plan.stackName,
          ...Object.values(plan.functions).flatMap((f) => [
            f.name,
            ...(f.events ?? []).flatMap((e: { schedule?: { name: string } }) => e.schedule?.name ?? []),
          ]),
          ...Object.values(plan.resources).flatMap((r) =>
            Object.entries(r.Properties)
              .filter(([k, v]) => /Name$/.test(k) && typeof v === 'string' && k !== 'MetricName')
              .map(([, v]) => v as string),
          ),
        ]);
      const home = names(planDeployment({ ...input('home', ''), region: 'af-south-1' }));
      const za = names(planDeployment({ ...input('regional', 'za'), region: 'af-south-1' }));
      const ke = names(
        planDeployment({
          ...input('regional', 'ke'),
          region: 'af-south-1',
          now: () => new Date('2027-01-01T00:00:00Z'),
        }),
      );

      expect(home.size).toBeGreaterThan(10);
      for (const [a, b] of [
        [home, za],
        [za, ke],
        [home, ke],
      ] as const) {
        // AppConfig environment and profile names live inside their (distinct) application.
        expect([...a].filter((n) => b.has(n) && n !== 'dev' && n !== 'fleet')).toEqual([]);
      }
    });

    it('refuses a regional deployment outside its jurisdiction', () => {
      expect(() => planDeployment({ ...input('regional', 'in'), region: 'eu-central-1' })).toThrow(
        /--region eu-central-1: a regional deployment of jurisdiction "in" runs inside it \(countries: IN\)/,
      );
    });

    it('passes azureClientId to every function as FLEETWARD_AZURE_CLIENT_ID, and refuses one that is no GUID', () => {
      const id = '11111111-2222-3333-4444-555555555555';
      const given = planDeployment({
        ...input('regional', 'in'),
        params: { role: 'regional', jurisdiction: 'in', azureClientId: id },
      });

      expect(given.environment.FLEETWARD_AZURE_CLIENT_ID).toBe(id);
      expect(planDeployment(input('regional', 'in')).environment.FLEETWARD_AZURE_CLIENT_ID).toBe('');
      expect(() =>
        planDeployment({
          ...input('regional', 'in'),
          params: { role: 'regional', jurisdiction: 'in', azureClientId: 'my-app' },
        }),
      ).toThrow(
        /param azureClientId: expected the app registration's application \(client\) id, a GUID \(got "my-app"\)/,
      );
    });

    it('caps the internet-facing functions with reserved concurrency', () => {
      const plan = planDeployment(input('home', ''));

      expect(plan.functions['gcp-cluster-events']?.reservedConcurrency).toBe(7);
      expect(plan.functions['discover-clusters']?.reservedConcurrency).toBeUndefined();
    });

    it('refuses a queue nobody sends to, and a send to a queue not deployed', () => {
      const noSender = FUNCTIONS.map((f) =>
        f.name === 'reconcile-tags' ? { ...f, capabilities: ['state' as const], sendsTo: undefined } : f,
      );
      const elsewhere = FUNCTIONS.map((f) =>
        f.name === 'gcp-cluster-events'
          ? { ...f, capabilities: [...f.capabilities, 'queue-send' as const], sendsTo: ['backup-clusters'] }
          : f,
      );

      expect(() => planDeployment(input('home', '', noSender))).toThrow(
        /ReconcileTagsQueue: no deployed function/,
      );
      expect(() => planDeployment(input('home', '', elsewhere))).toThrow(
        /gcp-cluster-events: sends to the backup-clusters queue, but no backup-clusters-worker is deployed/,
      );
    });
  });

  it('names roles and functions fleetward-<stage>-<deployment>-<function>, hashed to 64 characters when longer', () => {
    const long = roleName('production-blue', 'za-popia-2027', 'publish-compliance-snapshot-worker');
    const other = roleName('production-blue', 'za-popia-2027', 'publish-compliance-snapshot-workers');

    expect(roleName('dev', 'home', 'discover-clusters')).toBe('fleetward-dev-home-discover-clusters');
    expect(roleName('dev', 'eu', 'discover-clusters')).toBe('fleetward-dev-eu-discover-clusters');
    expect(long).toHaveLength(64);
    expect(long).toMatch(/^fleetward-production-blue-za-popia-2027-publish-complia[a-z-]*-[0-9a-f]{8}$/);
    expect(other).not.toBe(long);
    expect(functionName('production-blue', 'za-popia-2027', 'publish-compliance-snapshot-worker')).toBe(long);
    expect(deploymentId('home')).toBe('home');
    expect(deploymentId('regional', 'za')).toBe('za');
    expect(() => deploymentId('regional', 'home')).toThrow(/"home" is taken/);
  });

  it('names each schedule rule after the deployed function', () => {
    const events = namedSchedules(
      {
        events: [
          { schedule: { rate: ['rate(1 hour)'] } },
          { sqs: { arn: 'q' } },
          { schedule: 'rate(1 day)' },
        ],
      },
      'fleetward-dev-za-backup-clusters',
    );

    expect(events?.map((e) => e.schedule?.name ?? 'sqs')).toEqual([
      'fleetward-dev-za-backup-clusters',
      'sqs',
      'fleetward-dev-za-backup-clusters-2',
    ]);
    expect(namedSchedules({ events: [{ sqs: { arn: 'q' } }] }, 'x')).toBeUndefined();
  });

  it('refuses a template name without the deployment prefix, and leaves scoped names alone', () => {
    const resources = {
      Q: { Type: 'AWS::SQS::Queue', Properties: { QueueName: 'fleetward-dev-home-x' } },
      E: { Type: 'AWS::AppConfig::Environment', Properties: { Name: 'dev' } },
      L: { Type: 'AWS::Logs::LogGroup', Properties: { LogGroupName: '/aws/lambda/fleetward-dev-home-f' } },
      R: { Type: 'AWS::Events::Rule', Properties: { Name: { Ref: 'X' } } },
    };

    expect(() => assertDeploymentNames(resources, 'fleetward-dev-home')).not.toThrow();
    expect(() =>
      assertDeploymentNames(
        {
          ...resources,
          T: { Type: 'AWS::DynamoDB::Table', Properties: { TableName: 'fleetward-dev-state' } },
        },
        'fleetward-dev-home',
      ),
    ).toThrow(
      /resources T.TableName "fleetward-dev-state": every name must carry the deployment's prefix fleetward-dev-home/,
    );
  });

  describe('web identity tokens (Azure federation)', () => {
    const identity: FunctionSpec = { name: 'i', roles: ['home'], capabilities: ['identity'] };
    const federating = (spec: FunctionSpec, cfg: FleetConfig) =>
      functionStatements(
        {
          config: cfg,
          jurisdiction: undefined,
          fnName: spec.name,
          fn: {},
          spec,
          appConfigArn: 'arn:profile',
        },
        allGrants(),
      );

    it("grant sts:GetWebIdentityToken only to functions with 'identity', for Entra's audience only", () => {
      const token = federating(identity, config).find((s) => s.Action.includes('sts:GetWebIdentityToken'));

      expect(token).toEqual({
        Effect: 'Allow',
        Action: ['sts:GetWebIdentityToken'],
        Resource: ['*'],
        Condition: {
          'ForAllValues:StringEquals': { 'sts:IdentityTokenAudience': ['api://AzureADTokenExchange'] },
        },
      });
      expect(actions(federating({ ...identity, capabilities: ['state'] }, config))).not.toContain(
        'sts:GetWebIdentityToken',
      );
    });

    it('grant none when Azure does not sign in with aws-federation (GCP federation needs no AWS permission)', () => {
      const { azure: _, ...clouds } = config.clouds;

      expect(actions(federating(identity, { ...config, clouds }))).not.toContain('sts:GetWebIdentityToken');
    });

    it('reach every function that signs in to Azure or GCP: each holds identity', () => {
      const federated = allGrants().filter(
        (g) => g.holder === 'member' && (g.provider === 'azure' || g.provider === 'gcp'),
      );
      const held = FUNCTIONS.flatMap((f) =>
        f.roles.map((role) => ({ f, role, caps: capabilitiesIn(f, role) })),
      );
      const needs = held.filter(({ caps }) => caps.some((c) => federated.some((g) => g.capability === c)));

      expect(needs.length).toBeGreaterThan(5);
      expect(
        needs.filter(({ caps }) => !caps.includes('identity')).map(({ f, role }) => `${role}/${f.name}`),
      ).toEqual([]);
    });

    it('give the home snapshot (fleet summary, publishes nothing) no evidence rights, the regional one its own', () => {
      const snapshot = FUNCTIONS.find((f) => f.name === 'publish-compliance-snapshot') as FunctionSpec;
      const ctx = (jurisdiction?: string) => ({
        config,
        jurisdiction,
        fnName: snapshot.name,
        fn: {},
        spec: snapshot,
        appConfigArn: 'arn:profile',
      });

      const home = actions(functionStatements(ctx(), allGrants()));
      const regional = actions(functionStatements(ctx('in'), allGrants()));

      expect(home.filter((a) => a.startsWith('s3:') || a.startsWith('sts:'))).toEqual([]);
      expect(regional).toContain('s3:PutObject');
    });
  });

  it('derives heartbeat intervals from rate and daily or hourly cron schedules', () => {
    expect(scheduleSeconds('rate(15 minutes)')).toBe(900);
    expect(scheduleSeconds('rate(1 day)')).toBe(86400);
    expect(scheduleSeconds('cron(30 5 * * ? *)')).toBe(86400);
    expect(() => scheduleSeconds('cron(0 5 ? * MON *)')).toThrow(/no heartbeat interval/);
  });

  it('gives AppConfig a draft-4 JSON Schema within its 32 KB validator limit', () => {
    const schema = appConfigSchema();

    expect(schema.$schema).toBe('http://json-schema.org/draft-04/schema#');
    expect(JSON.stringify(schema).length).toBeLessThan(32768);
  });

  it('leaves the field documentation out of the AppConfig validator, and keeps the fields', () => {
    const annotated = (schema: Record<string, unknown>) => {
      const paths: string[] = [];
      walkSchema(schema, ({ path, schema: node }) => {
        for (const keyword of ['title', 'description', 'examples']) {
          if (keyword in node) paths.push(`${path} ${keyword}`);
        }
      });
      return paths;
    };
    const validator = appConfigSchema();
    const fields = (schema: Record<string, unknown>) => {
      const paths: string[] = [];
      walkSchema(schema, ({ path, field }) => {
        if (field) paths.push(path);
      });
      return paths;
    };

    expect(annotated(configJsonSchema())).toContain('clouds.aws.accounts[].roleArn description');
    expect(annotated(validator)).toEqual([]);
    expect(fields(validator)).toEqual(fields(configJsonSchema()));
  });
});
