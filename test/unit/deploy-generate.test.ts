/**
 * The deployment generator (shared/deploy/generate.ts) as pure functions: which functions a
 * role deploys, what each function's IAM role holds, and the rules it refuses to break.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import type { Capability, PermissionGrant } from '../../shared/clouds/permissions.ts';
import { loadConfig } from '../../shared/config/load.ts';
import type { FleetConfig } from '../../shared/config/schema.ts';
import { FUNCTIONS, type FunctionSpec } from '../../shared/deploy/functions.ts';
import {
  appConfigSchema,
  checkParams,
  type DeployInput,
  functionStatements,
  planDeployment,
  roleName,
  type SlsFunction,
  type Statement,
  scheduleSeconds,
  selectFunctions,
} from '../../shared/deploy/generate.ts';

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
          [grant('identity', 'function', 'kms:Sign')],
        );

      expect(statements).toThrow(/k: no resource rule for kms:Sign/);
    });
  });

  describe('internet-facing functions', () => {
    it.each([
      [['discovery'], /sts:AssumeRole/],
      [['evidence-write'], /s3:PutObject/],
    ] as [Capability[], RegExp][])('refuse a role with %j', (capabilities, forbidden) => {
      const spec: FunctionSpec = { name: 'hook', roles: ['home'], capabilities, internetFacing: true };

      expect(() => statementsOf(spec)).toThrow(forbidden);
      expect(() => statementsOf(spec)).toThrow(/hook: internet-facing functions never hold/);
    });

    it('accept state, secrets and config', () => {
      const spec: FunctionSpec = {
        name: 'hook',
        roles: ['home'],
        capabilities: ['state', 'secrets', 'config'],
        internetFacing: true,
      };

      expect(actions(statementsOf(spec))).toEqual([
        'appconfig:GetLatestConfiguration',
        'dynamodb:GetItem',
        'logs:CreateLogStream',
        'logs:PutLogEvents',
        'ssm:GetParameter',
      ]);
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
        'fleetward-dev-ap-south-1-collect-audit-logs-worker',
      );
      expect(plan.resources.RestoreDrillHeartbeatAlarm?.Properties.Period).toBe(600);
      expect(plan.functions['backup-clusters']?.environment).toEqual({
        FLEETWARD_QUEUE_BACKUP_CLUSTERS: { Ref: 'BackupClustersQueue' },
      });
      expect(plan.environment.FLEETWARD_APPCONFIG_APPLICATION).toBe('fleetward-dev-regional-in');
      expect(plan.resources.FleetConfigVersion?.Properties.Content).toBe('{"version":1}');
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

  it('names roles fleetward-<stage>-<region>-<function>, hashed to 64 characters when longer', () => {
    const long = roleName('production-blue', 'ap-southeast-3', 'publish-compliance-snapshot-worker');
    const other = roleName('production-blue', 'ap-southeast-3', 'publish-compliance-snapshot-workers');

    expect(roleName('dev', 'eu-central-1', 'discover-clusters')).toBe(
      'fleetward-dev-eu-central-1-discover-clusters',
    );
    expect(long).toHaveLength(64);
    expect(long).toMatch(/^fleetward-production-blue-ap-southeast-3-publish-compl[a-z-]*-[0-9a-f]{8}$/);
    expect(other).not.toBe(long);
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
});
