/**
 * `fleetward onboard` generators: each artefact against the shape of its documented sample
 * (test/fixtures/onboard/README.md), built from a few sample grants and, where coverage
 * matters, from the real permission table.
 */
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments, parse as parseYaml } from 'yaml';
import { allGrants } from '../../shared/clouds/grants.ts';
import type { PermissionGrant } from '../../shared/clouds/permissions.ts';
import { parseConfig } from '../../shared/config/load.ts';
import { FUNCTIONS, type FunctionSpec } from '../../shared/deploy/functions.ts';
import { roleName } from '../../shared/deploy/generate.ts';
import { isAzureDataAction } from '../../shared/deploy/onboard/azure.ts';
import {
  deployments,
  OnboardError,
  type OnboardInput,
  type OnboardOptions,
  onboardAws,
  onboardAzure,
  onboardEvidence,
  onboardGcp,
  onboardKubernetes,
} from '../../shared/deploy/onboard/index.ts';
import { parseKubePermission } from '../../shared/deploy/onboard/kubernetes.ts';

const grant = (g: Omit<PermissionGrant, 'calls' | 'why'>): PermissionGrant => ({
  ...g,
  calls: [g.permission],
  why: `sample ${g.permission}`,
});

/** A few grants of each provider and holder, as the adapters declare them. */
const SAMPLE_GRANTS: PermissionGrant[] = [
  grant({ provider: 'aws', holder: 'member', capability: 'discovery', permission: 'eks:ListClusters' }),
  grant({ provider: 'aws', holder: 'member', capability: 'discovery', permission: 'eks:DescribeCluster' }),
  grant({ provider: 'aws', holder: 'member', capability: 'tags', permission: 'eks:TagResource' }),
  grant({ provider: 'aws', holder: 'function', capability: 'state', permission: 'dynamodb:GetItem' }),
  grant({ provider: 'aws', holder: 'function', capability: 'evidence-write', permission: 's3:PutObject' }),
  grant({
    provider: 'gcp',
    holder: 'member',
    capability: 'discovery',
    permission: 'container.clusters.list',
  }),
  grant({
    provider: 'gcp',
    holder: 'member',
    capability: 'audit-read',
    permission: 'logging.logEntries.list',
  }),
  grant({
    provider: 'gcp',
    holder: 'member',
    capability: 'identity',
    permission: 'iam.serviceAccounts.getAccessToken',
  }),
  grant({
    provider: 'azure',
    holder: 'member',
    capability: 'discovery',
    permission: 'Microsoft.ContainerService/managedClusters/read',
  }),
  grant({
    provider: 'azure',
    holder: 'member',
    capability: 'evidence-write',
    permission: 'Microsoft.Storage/storageAccounts/blobServices/containers/blobs/write',
  }),
  grant({
    provider: 'kubernetes',
    holder: 'member',
    capability: 'velero',
    permission: 'velero.io/backups:create',
  }),
  grant({ provider: 'kubernetes', holder: 'member', capability: 'velero', permission: 'namespaces:delete' }),
  grant({
    provider: 'kubernetes',
    holder: 'member',
    capability: 'velero',
    permission: 'apps/deployments:list',
  }),
  grant({ provider: 'kubernetes', holder: 'member', capability: 'discovery', permission: '/version:get' }),
];

const SAMPLE_FUNCTIONS: FunctionSpec[] = [
  { name: 'discover-clusters', roles: ['home', 'regional'], capabilities: ['state', 'discovery'] },
  { name: 'reconcile-tags', roles: ['home'], capabilities: ['state', 'tags'] },
  { name: 'collect-audit-logs', roles: ['regional'], capabilities: ['audit-read', 'evidence-write'] },
  {
    name: 'gcp-cluster-events',
    roles: ['home'],
    capabilities: ['state', 'queue-send'],
    internetFacing: true,
  },
];

const SUBSCRIPTION = '00000000-0000-0000-0000-00000000a001';

/** A validated fleet.yaml with AWS, GCP and Azure, and jurisdictions eu (three evidence stores) and in. */
function fleet(overrides: Record<string, unknown> = {}) {
  return parseConfig({
    version: 1,
    stage: 'prod',
    clouds: {
      aws: {
        homeRegion: 'eu-west-1',
        accounts: [
          {
            id: '111111111111',
            roleArn: 'arn:aws:iam::111111111111:role/fleetward-reader',
            regions: ['eu-central-1'],
          },
          { id: '222222222222', roleArn: 'arn:aws:iam::222222222222:role/fleetward-reader', regions: 'all' },
        ],
      },
      gcp: { projects: [{ id: 'payments-prod-eu', number: '123456789012' }, { id: 'analytics-in' }] },
      azure: {
        credential: {
          type: 'aws-federation',
          tenantId: '00000000-0000-0000-0000-000000000000',
          clientId: '00000000-0000-0000-0000-000000000001',
        },
        subscriptions: [{ id: SUBSCRIPTION }, { id: '00000000-0000-0000-0000-00000000a002' }],
      },
    },
    jurisdictions: {
      eu: {
        preset: 'eu-gdpr',
        evidence: {
          aws: { bucket: 'acme-evidence-eu', region: 'eu-central-1' },
          gcp: { bucket: 'acme-evidence-eu', location: 'europe-west3' },
          azure: {
            storageAccount: 'acmeevidenceeu',
            container: 'evidence',
            region: 'germanywestcentral',
            resourceGroup: 'evidence-eu',
          },
        },
        audit: { retentionDays: 400 },
      },
      in: {
        preset: 'in-dpdp',
        evidence: { aws: { bucket: 'acme-evidence-in', region: 'ap-south-1' } },
        audit: { retentionDays: 365 },
      },
    },
    ...overrides,
  });
}

const ACCOUNT = '999999999999';
const ISSUER = 'https://abc123-def456-ghi789-jkl012.tokens.sts.global.api.aws';

function input(
  options: Partial<OnboardOptions> = {},
  config = fleet(),
  grants: readonly PermissionGrant[] = SAMPLE_GRANTS,
  functions: readonly FunctionSpec[] = SAMPLE_FUNCTIONS,
): OnboardInput {
  return {
    grants,
    functions,
    config,
    options: { stage: 'prod', fleetwardAccountId: ACCOUNT, issuer: ISSUER, ...options },
  };
}

function artefact(result: { artefacts: { file: string; content: string }[] }, file: string | RegExp) {
  const found = result.artefacts.find((a) =>
    typeof file === 'string' ? a.file === file : file.test(a.file),
  );
  if (!found) throw new Error(`no artefact ${file} in ${result.artefacts.map((a) => a.file).join(', ')}`);
  return found.content;
}

describe('onboard: function roles and deployments', () => {
  it('names a function role as the deployment does: fleetward-<stage>-<deployment>-<function>', () => {
    const [home, eu] = deployments(fleet(), { stage: 'prod' });
    const trusted = JSON.parse(artefact(onboardAws(input()), 'fleetward-reader.cfn.json')).Metadata.Fleetward
      .trustedRoles as { role: string; deployment: string }[];

    expect(trusted).toContainEqual(
      expect.objectContaining({ role: roleName('prod', home!.id, 'discover-clusters'), deployment: 'home' }),
    );
    expect(trusted).toContainEqual(
      expect.objectContaining({ role: roleName('prod', eu!.id, 'discover-clusters'), deployment: 'eu' }),
    );
  });

  it('deploys home in the home region and one regional deployment per jurisdiction, in its region', () => {
    expect(deployments(fleet(), { stage: 'prod', regionalRegions: { in: 'ap-south-2' } })).toEqual([
      { role: 'home', id: 'home', region: 'eu-west-1' },
      { role: 'regional', id: 'eu', jurisdiction: 'eu', region: 'eu-central-1' },
      { role: 'regional', id: 'in', jurisdiction: 'in', region: 'ap-south-2' },
    ]);
  });

  it('refuses a regional deployment outside its jurisdiction', () => {
    expect(() => deployments(fleet(), { stage: 'prod', regionalRegions: { in: 'eu-west-1' } })).toThrow(
      /refusing to write regional deployment to aws region eu-west-1: IE is outside jurisdiction "in"/,
    );
  });
});

describe('onboard aws', () => {
  it('makes a StackSet-ready reader role: parameters, exactly the member grants, trust in the functions that need it', () => {
    const template = JSON.parse(artefact(onboardAws(input()), 'fleetward-reader.cfn.json'));
    const role = template.Resources.ReaderRole.Properties;
    const trust = role.AssumeRolePolicyDocument.Statement[0];
    const [, withExternalId, without] = [null, ...trust.Condition['Fn::If'].slice(1)];
    const arns = withExternalId.ArnLike['aws:PrincipalArn'].map((a: { 'Fn::Sub': string }) => a['Fn::Sub']);

    expect(Object.keys(template.Parameters)).toEqual(['FleetwardAccountId', 'ExternalId', 'ReaderRoleName']);
    expect(template.Parameters.ExternalId.NoEcho).toBe(true);
    expect(template.Parameters.ReaderRoleName.Default).toBe('fleetward-reader');
    expect(role.RoleName).toEqual({ Ref: 'ReaderRoleName' });
    expect(
      role.Policies[0].PolicyDocument.Statement.flatMap((s: { Action: string[] }) => s.Action).sort(),
    ).toEqual(['eks:DescribeCluster', 'eks:ListClusters', 'eks:TagResource']);
    expect(trust.Principal.AWS).toEqual({
      // biome-ignore lint/suspicious/noTemplateCurlyInString: the shell and CloudFormation variables the artefacts hold
      'Fn::Sub': 'arn:${AWS::Partition}:iam::${FleetwardAccountId}:root',
    });
    expect(withExternalId.StringEquals).toEqual({ 'sts:ExternalId': { Ref: 'ExternalId' } });
    expect(without.ArnLike).toEqual(withExternalId.ArnLike);
    // discover-clusters in home and both regional deployments; reconcile-tags in home only.
    expect(arns.map((a: string) => a.split(':role/')[1])).toEqual([
      'fleetward-prod-eu-discover-clusters',
      'fleetward-prod-home-discover-clusters',
      'fleetward-prod-home-reconcile-tags',
      'fleetward-prod-in-discover-clusters',
    ]);
    expect(JSON.stringify(template)).not.toMatch(/\d{12}/);
  });

  it('trusts no internet-facing function and no function without member AWS grants, with the real table', () => {
    const template = JSON.parse(artefact(onboardAws(input({}, fleet(), allGrants(), FUNCTIONS)), /reader/));
    const trusted = template.Metadata.Fleetward.trustedRoles.map((r: { function: string }) => r.function);

    expect(trusted).not.toContain('gcp-cluster-events');
    expect(trusted).not.toContain('azure-cluster-events');
    expect(trusted).not.toContain('publish-compliance-snapshot');
    expect(trusted).toContain('collect-audit-logs-worker');
  });

  it('trusts exactly the roles of every deployment of the example config, where home and eu share a region, as do za and ke', async () => {
    const { loadConfig } = await import('../../shared/config/load.ts');
    const example = await loadConfig('fleet.example.yaml');
    const options = { stage: 'dev', now: () => new Date('2027-01-01T00:00:00Z') };
    const template = JSON.parse(
      artefact(onboardAws(input(options, example, allGrants(), FUNCTIONS)), /reader/),
    );
    const arns = template.Resources.ReaderRole.Properties.AssumeRolePolicyDocument.Statement[0].Condition[
      'Fn::If'
    ][1].ArnLike['aws:PrincipalArn'].map((a: { 'Fn::Sub': string }) => a['Fn::Sub'].split(':role/')[1]);
    const aws = new Set(
      allGrants()
        .filter((g) => g.provider === 'aws' && g.holder === 'member')
        .map((g) => g.capability),
    );
    const needing = FUNCTIONS.filter((f) => f.capabilities.some((c) => aws.has(c)));
    const expected = ['home', 'eu', 'in', 'za', 'ke'].flatMap((d) =>
      needing
        .filter((f) => f.roles.includes(d === 'home' ? 'home' : 'regional'))
        .map((f) => `fleetward-dev-${d}-${f.name}`),
    );

    expect(arns).toEqual([...expected].sort());
    expect(arns).toContain('fleetward-dev-home-discover-clusters');
    expect(arns).toContain('fleetward-dev-eu-discover-clusters');
    expect(arns).toContain('fleetward-dev-za-collect-audit-logs-worker');
    expect(arns).toContain('fleetward-dev-ke-collect-audit-logs-worker');
    expect(arns.filter((a: string) => /eu-central-1|af-south-1/.test(a))).toEqual([]);
  });

  it('refuses to make a reader role from a table without member AWS grants', () => {
    const functionOnly = SAMPLE_GRANTS.filter((g) => !(g.provider === 'aws' && g.holder === 'member'));

    expect(() => onboardAws(input({}, fleet(), functionOnly))).toThrow(OnboardError);
  });
});

describe('onboard gcp', () => {
  const result = onboardGcp(input());
  const role = parseYaml(artefact(result, 'fleetward_prod.role.yaml'));
  const sh = artefact(result, 'gcp-onboard.sh');

  it('writes the custom role gcloud reads: a valid id, permission names, no project-wide impersonation', () => {
    expect(Object.keys(role)).toEqual(['title', 'description', 'stage', 'includedPermissions']);
    expect('fleetward_prod').toMatch(/^[a-zA-Z0-9_.]{3,64}$/);
    expect(role.includedPermissions).toEqual(['container.clusters.list', 'logging.logEntries.list']);
    for (const p of role.includedPermissions) expect(p).toMatch(/^[a-z]+(\.[a-zA-Z]+)+$/);
  });

  it('puts every permission of the real table in a valid form', () => {
    const real = parseYaml(artefact(onboardGcp(input({}, fleet(), allGrants(), FUNCTIONS)), /role\.yaml$/));

    expect(real.includedPermissions.length).toBeGreaterThan(5);
    for (const p of real.includedPermissions) expect(p).toMatch(/^[a-z]+(\.[a-zA-Z]+)+$/);
    expect(real.includedPermissions).not.toContain('iam.serviceAccounts.getAccessToken');
  });

  it('creates the pool and an AWS provider restricted to the Fleetward account and stage', () => {
    expect(sh).toMatch(
      /gcloud iam workload-identity-pools create fleetward --project=payments-prod-eu --location=global/,
    );
    expect(sh).toMatch(/providers create-aws fleetward-aws .*--account-id=999999999999 /);
    expect(sh).toContain(`startsWith('\\''arn:aws:sts::999999999999:assumed-role/fleetward-prod-'\\'')`);
  });

  it('lets exactly the function roles that need GCP impersonate the service account', () => {
    const members = [...sh.matchAll(/--role=roles\/iam\.workloadIdentityUser --member="([^"]+)"/g)].map(
      (m) => m[1],
    );

    expect(members).toEqual(
      [
        'fleetward-prod-eu-collect-audit-logs',
        'fleetward-prod-eu-discover-clusters',
        'fleetward-prod-home-discover-clusters',
        'fleetward-prod-in-collect-audit-logs',
        'fleetward-prod-in-discover-clusters',
      ].map(
        (r) =>
          `principalSet://iam.googleapis.com/projects/123456789012/locations/global/workloadIdentityPools/fleetward/attribute.aws_role/arn:aws:sts::999999999999:assumed-role/${r}`,
      ),
    );
  });

  it('grants the custom role on every configured project', () => {
    for (const project of ['payments-prod-eu', 'analytics-in']) {
      expect(sh).toContain(
        `gcloud iam roles create fleetward_prod --project=${project} --file=fleetward_prod.role.yaml`,
      );
      expect(sh).toContain(
        `gcloud projects add-iam-policy-binding ${project} --member=serviceAccount:fleetward@payments-prod-eu.iam.gserviceaccount.com --role=projects/${project}/roles/fleetward_prod`,
      );
    }
  });

  it('looks the pool project number up when fleet.yaml does not give it', () => {
    const other = artefact(onboardGcp(input({ poolProject: 'analytics-in' })), 'gcp-onboard.sh');

    expect(other).toContain(
      "POOL_PROJECT_NUMBER=$(gcloud projects describe analytics-in --format='value(projectNumber)')",
    );
    // biome-ignore lint/suspicious/noTemplateCurlyInString: the shell and CloudFormation variables the artefacts hold
    expect(other).toContain('projects/${POOL_PROJECT_NUMBER}/locations/global');
  });

  it('notes that fleet.yaml lacks the workloadIdentity block, and prints no external_account without it', () => {
    expect(result.notes.join('\n')).toMatch(
      /no clouds\.gcp\.workloadIdentity: the script uses pool fleetward and provider fleetward-aws in payments-prod-eu; add the block \(projectNumber: 123456789012, poolId: fleetward, providerId: fleetward-aws/,
    );
    expect(result.artefacts.map((a) => a.file)).not.toContain('gcp-external-account.json');
  });

  describe('with clouds.gcp.workloadIdentity', () => {
    const WI = {
      projectNumber: '987654321098',
      poolId: 'fleetward-aws',
      providerId: 'aws-home',
      serviceAccount: 'fleetward@fleetward-ops.iam.gserviceaccount.com',
    };
    const withWi = (wi: Record<string, string>) => {
      const config = fleet();
      return {
        ...config,
        clouds: { ...config.clouds, gcp: { ...config.clouds.gcp!, workloadIdentity: wi } },
      } as typeof config;
    };
    const federated = onboardGcp(input({}, withWi(WI)));
    const script = artefact(federated, 'gcp-onboard.sh');

    it('creates the pool and provider fleet.yaml names, in the project of its service account', () => {
      expect(script).toContain(
        'gcloud iam workload-identity-pools create fleetward-aws --project=fleetward-ops --location=global',
      );
      expect(script).toMatch(
        /providers create-aws aws-home --project=fleetward-ops .*--workload-identity-pool=fleetward-aws /,
      );
      expect(script).toContain(
        `--member="principalSet://iam.googleapis.com/projects/987654321098/locations/global/workloadIdentityPools/fleetward-aws/attribute.aws_role/arn:aws:sts::${ACCOUNT}:assumed-role/fleetward-prod-home-discover-clusters"`,
      );
      expect(script).toContain(
        'gcloud iam service-accounts add-iam-policy-binding fleetward@fleetward-ops.iam.gserviceaccount.com',
      );
      expect(script).not.toContain('POOL_PROJECT_NUMBER');
      expect(federated.notes.join('\n')).not.toMatch(/no clouds\.gcp\.workloadIdentity/);
    });

    it('prints the external_account configuration Fleetward builds from it', () => {
      const external = JSON.parse(artefact(federated, 'gcp-external-account.json'));

      expect(external).toMatchObject({
        type: 'external_account',
        audience:
          '//iam.googleapis.com/projects/987654321098/locations/global/workloadIdentityPools/fleetward-aws/providers/aws-home',
        subject_token_type: 'urn:ietf:params:aws:token-type:aws4_request',
        token_url: 'https://sts.googleapis.com/v1/token',
        credential_source: { environment_id: 'aws1' },
        service_account_impersonation_url:
          'https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/fleetward@fleetward-ops.iam.gserviceaccount.com:generateAccessToken',
      });
      expect(JSON.stringify(external)).not.toMatch(/169\.254|secret|private_key/);
    });

    it('binds the custom role to the federated principals when no service account is named', () => {
      const { serviceAccount: _, ...direct } = WI;
      const sh = artefact(onboardGcp(input({}, withWi(direct))), 'gcp-onboard.sh');

      expect(sh).not.toContain('service-accounts');
      expect(sh).toContain(
        `gcloud projects add-iam-policy-binding analytics-in --member="principalSet://iam.googleapis.com/projects/987654321098/locations/global/workloadIdentityPools/fleetward-aws/attribute.aws_role/arn:aws:sts::${ACCOUNT}:assumed-role/fleetward-prod-in-collect-audit-logs" --role=projects/analytics-in/roles/fleetward_prod`,
      );
    });
  });

  it('refuses without the Fleetward account', () => {
    expect(() => onboardGcp(input({ fleetwardAccountId: undefined }))).toThrow(/--fleetward-account/);
    expect(() => onboardGcp(input({ fleetwardAccountId: '12345' }))).toThrow(/not a 12-digit/);
  });
});

describe('onboard azure', () => {
  const result = onboardAzure(input());
  const definition = JSON.parse(artefact(result, 'fleetward-role-definition.json'));
  const credentials = result.artefacts
    .filter((a) => a.file.startsWith('federated-credential-'))
    .map((a) => JSON.parse(a.content));

  it('writes the role definition in the shape of the documented az sample, assignable in every subscription', () => {
    expect(Object.keys(definition).sort()).toEqual(
      [
        'Actions',
        'AssignableScopes',
        'DataActions',
        'Description',
        'IsCustom',
        'Name',
        'NotActions',
        'NotDataActions',
      ].sort(),
    );
    expect(definition.IsCustom).toBe(true);
    expect(definition.Name).toBe('Fleetward (prod)');
    expect(definition.Actions).toEqual(['Microsoft.ContainerService/managedClusters/read']);
    expect(definition.DataActions).toEqual([
      'Microsoft.Storage/storageAccounts/blobServices/containers/blobs/write',
    ]);
    expect(definition.AssignableScopes).toEqual([
      `/subscriptions/${SUBSCRIPTION}`,
      '/subscriptions/00000000-0000-0000-0000-00000000a002',
    ]);
  });

  it('tells data actions from actions', () => {
    expect(isAzureDataAction('Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read')).toBe(
      true,
    );
    expect(isAzureDataAction('Microsoft.Storage/storageAccounts/blobServices/containers/read')).toBe(false);
    expect(
      isAzureDataAction('Microsoft.ContainerService/managedClusters/listClusterUserCredential/action'),
    ).toBe(false);
    expect(isAzureDataAction('Microsoft.ContainerService/managedClusters/apps/deployments/read')).toBe(true);
  });

  it('writes one federated credential per function role that needs Azure, as the documented sample', () => {
    expect(credentials.map((c) => c.subject).sort()).toEqual([
      `arn:aws:iam::${ACCOUNT}:role/fleetward-prod-eu-collect-audit-logs`,
      `arn:aws:iam::${ACCOUNT}:role/fleetward-prod-eu-discover-clusters`,
      `arn:aws:iam::${ACCOUNT}:role/fleetward-prod-home-discover-clusters`,
      `arn:aws:iam::${ACCOUNT}:role/fleetward-prod-in-collect-audit-logs`,
      `arn:aws:iam::${ACCOUNT}:role/fleetward-prod-in-discover-clusters`,
    ]);
    for (const c of credentials) {
      expect(Object.keys(c).sort()).toEqual(['audiences', 'description', 'issuer', 'name', 'subject']);
      expect(c.issuer).toBe(ISSUER);
      expect(c.audiences).toEqual(['api://AzureADTokenExchange']);
      expect(c.name).toMatch(/^[A-Za-z0-9][A-Za-z0-9_-]{2,119}$/);
    }
  });

  it('makes one app registration per deployment, holding only its own function roles, and says how to deploy with it', () => {
    const sh = artefact(result, 'azure-onboard.sh');
    const block = (id: string) =>
      sh.slice(sh.indexOf(`Deployment ${id} `), sh.indexOf('echo', sh.indexOf(`Deployment ${id} `)));

    expect(sh).toContain(
      'APP_ID_HOME=$(az ad app create --display-name fleetward-prod-home --sign-in-audience AzureADMyOrg --query appId --output tsv)',
    );
    expect(block('home')).toContain(
      'az ad app federated-credential create --id "$APP_ID_HOME" --parameters federated-credential-fleetward-prod-home-discover-clusters.json',
    );
    expect(block('home')).not.toMatch(/fleetward-prod-(eu|in)-/);
    expect(block('in').match(/federated-credential create --id "\$APP_ID_IN"/g)).toHaveLength(2);
    expect(block('in')).toContain('az ad sp create --id "$APP_ID_IN"');
    for (const sub of [SUBSCRIPTION, '00000000-0000-0000-0000-00000000a002']) {
      expect(block('eu')).toContain(
        `az role assignment create --assignee "$APP_ID_EU" --role 'Fleetward (prod)' --scope /subscriptions/${sub}`,
      );
    }
    expect(sh).toContain(
      'echo "deploy in with: serverless deploy --stage prod --param role=regional --param jurisdiction=in --region ap-south-1 --param azureClientId=$APP_ID_IN"',
    );
    expect(sh.match(/az ad app create/g)).toHaveLength(3);
    expect(result.notes.join('\n')).not.toMatch(/Warning/);
  });

  it('keeps every deployment of the example config under 20 credentials, with the real table', async () => {
    const { loadConfig } = await import('../../shared/config/load.ts');
    const example = await loadConfig('fleet.example.yaml');
    const real = onboardAzure(
      input({ stage: 'dev', now: () => new Date('2027-01-01T00:00:00Z') }, example, allGrants(), FUNCTIONS),
    );
    const sh = artefact(real, 'azure-onboard.sh');
    const perApp = [...sh.matchAll(/federated-credential create --id "\$(APP_ID_\w+)"/g)].reduce(
      (n, m) => n.set(m[1]!, (n.get(m[1]!) ?? 0) + 1),
      new Map<string, number>(),
    );

    expect([...perApp.keys()].sort()).toEqual([
      'APP_ID_EU',
      'APP_ID_HOME',
      'APP_ID_IN',
      'APP_ID_KE',
      'APP_ID_ZA',
    ]);
    expect(Math.max(...perApp.values())).toBeLessThanOrEqual(20);
    expect(real.notes.join('\n')).not.toMatch(/Warning/);
    // publish-compliance-snapshot writes Azure evidence: its role is a subject, and it holds identity.
    expect(sh).toContain('federated-credential-fleetward-dev-za-publish-compliance-snapshot.json');
  });

  it('warns when one deployment would exceed what one app registration holds', () => {
    const many = Array.from({ length: 21 }, (_, i) => ({
      name: `f${i}`,
      roles: ['home' as const],
      capabilities: ['discovery' as const],
    }));

    expect(onboardAzure(input({}, fleet(), SAMPLE_GRANTS, many)).notes.join('\n')).toMatch(
      /Warning: deployment home has 21 federated credentials, more than the 20 one app registration may hold/,
    );
  });

  it.each([
    [{ issuer: undefined }, /--issuer/],
    [{ issuer: 'http://insecure.example' }, /not an https URL/],
  ])('refuses without a usable issuer %j', (options, message) => {
    expect(() => onboardAzure(input(options))).toThrow(message);
  });

  it.each([
    [{ type: 'default' as const }],
    [
      {
        type: 'workload-identity' as const,
        tenantId: '00000000-0000-0000-0000-000000000000',
        clientId: '00000000-0000-0000-0000-000000000001',
      },
    ],
  ])('refuses a config whose Azure credential is not aws-federation (%j)', (credential) => {
    const config = fleet();
    const azure = config.clouds.azure!;
    const other = { ...config, clouds: { ...config.clouds, azure: { ...azure, credential } } };

    expect(() => onboardAzure(input({}, other))).toThrow(
      new RegExp(`clouds\\.azure\\.credential must be type aws-federation .*\\(got ${credential.type}\\)`),
    );
  });
});

describe('onboard kubernetes', () => {
  const result = onboardKubernetes(input({}, fleet(), allGrants(), FUNCTIONS));
  const docs = parseAllDocuments(artefact(result, 'fleetward-rbac.yaml')).map((d) => d.toJS());

  it('writes RBAC objects that parse, with the right kinds and API versions', () => {
    expect(docs.map((d) => `${d.apiVersion} ${d.kind}`)).toEqual([
      'rbac.authorization.k8s.io/v1 ClusterRole',
      'rbac.authorization.k8s.io/v1 ClusterRoleBinding',
      'rbac.authorization.k8s.io/v1 Role',
      'rbac.authorization.k8s.io/v1 RoleBinding',
    ]);
    expect(docs[2].metadata.namespace).toBe('velero');
    for (const binding of [docs[1], docs[3]]) {
      expect(binding.subjects).toContainEqual({
        kind: 'Group',
        apiGroup: 'rbac.authorization.k8s.io',
        name: 'fleetward',
      });
      expect(binding.subjects).toContainEqual({
        kind: 'User',
        apiGroup: 'rbac.authorization.k8s.io',
        name: 'fleetward@payments-prod-eu.iam.gserviceaccount.com',
      });
    }
  });

  it('covers every Kubernetes grant of the permission table with a rule', () => {
    const rules = docs.flatMap((d) => d.rules ?? []);
    const kube = allGrants().filter((g) => g.provider === 'kubernetes');

    expect(kube.length).toBeGreaterThan(5);
    for (const g of kube) {
      const p = parseKubePermission(g.permission);
      const covered = rules.some(
        (r: { apiGroups?: string[]; resources?: string[]; nonResourceURLs?: string[]; verbs: string[] }) =>
          p.nonResourceURL
            ? r.nonResourceURLs?.includes(p.nonResourceURL) && r.verbs.includes(p.verb)
            : r.apiGroups?.includes(p.group) && r.resources?.includes(p.resource) && r.verbs.includes(p.verb),
      );
      expect(covered, g.permission).toBe(true);
    }
  });

  it('parses group, resource, verb and non-resource URLs', () => {
    expect(parseKubePermission('velero.io/backups:create')).toEqual({
      group: 'velero.io',
      resource: 'backups',
      verb: 'create',
    });
    expect(parseKubePermission('namespaces:delete')).toEqual({
      group: '',
      resource: 'namespaces',
      verb: 'delete',
    });
    expect(parseKubePermission('apps/deployments:list')).toEqual({
      group: 'apps',
      resource: 'deployments',
      verb: 'list',
    });
    expect(parseKubePermission('pods/log:get')).toEqual({ group: '', resource: 'pods/log', verb: 'get' });
    expect(parseKubePermission('/version:get')).toMatchObject({ nonResourceURL: '/version', verb: 'get' });
    expect(() => parseKubePermission('backups')).toThrow(OnboardError);
  });

  it("puts each account's reader role into group fleetward in its EKS clusters", () => {
    const sh = artefact(result, 'eks-access-entries.sh');

    expect(sh).toContain(
      '--principal-arn arn:aws:iam::111111111111:role/fleetward-reader --kubernetes-groups fleetward --type STANDARD',
    );
    expect(sh).toContain('for region in eu-central-1; do');
    expect(sh).toContain(
      "aws ec2 describe-regions --region eu-west-1 --query 'Regions[].RegionName' --output text",
    );
    const template = JSON.parse(artefact(result, 'eks-access-entry.cfn.json'));
    expect(template.Resources.FleetwardAccessEntry.Properties.KubernetesGroups).toEqual(['fleetward']);
  });
});

describe('onboard evidence', () => {
  const result = onboardEvidence(input());

  it('makes the S3 bucket write-once for the retention of its jurisdiction, in its region, for its account only', () => {
    const template = JSON.parse(artefact(result, 'evidence-eu-aws.cfn.json'));
    const bucket = template.Resources.EvidenceBucket;
    const statements = template.Resources.EvidenceBucketPolicy.Properties.PolicyDocument.Statement;

    expect(bucket.DeletionPolicy).toBe('Retain');
    expect(bucket.Properties).toMatchObject({
      BucketName: 'acme-evidence-eu',
      ObjectLockEnabled: true,
      ObjectLockConfiguration: {
        ObjectLockEnabled: 'Enabled',
        Rule: { DefaultRetention: { Mode: 'COMPLIANCE', Days: 400 } },
      },
      VersioningConfiguration: { Status: 'Enabled' },
      PublicAccessBlockConfiguration: {
        BlockPublicAcls: true,
        BlockPublicPolicy: true,
        IgnorePublicAcls: true,
        RestrictPublicBuckets: true,
      },
      OwnershipControls: { Rules: [{ ObjectOwnership: 'BucketOwnerEnforced' }] },
    });
    expect(
      bucket.Properties.BucketEncryption.ServerSideEncryptionConfiguration[0].ServerSideEncryptionByDefault
        .SSEAlgorithm,
    ).toBe('aws:kms');
    expect(template.Rules.InJurisdictionRegion.Assertions[0].Assert).toEqual({
      'Fn::Equals': [{ Ref: 'AWS::Region' }, 'eu-central-1'],
    });
    expect(statements.map((s: { Sid: string; Effect: string }) => `${s.Effect} ${s.Sid}`)).toEqual([
      'Deny DenyInsecureTransport',
      'Deny DenyOtherAccounts',
      'Deny DenyDeletesAndRetentionChanges',
    ]);
    expect(statements[0].Condition).toEqual({ Bool: { 'aws:SecureTransport': 'false' } });
    expect(statements[1].Condition).toEqual({
      StringNotEquals: { 'aws:PrincipalAccount': { Ref: 'AWS::AccountId' } },
    });
    expect(statements[2].Action).toEqual(
      expect.arrayContaining([
        's3:DeleteObject',
        's3:DeleteObjectVersion',
        's3:PutObjectRetention',
        's3:BypassGovernanceRetention',
      ]),
    );
    expect(
      JSON.parse(artefact(result, 'evidence-in-aws.cfn.json')).Resources.EvidenceBucket.Properties
        .ObjectLockConfiguration.Rule.DefaultRetention.Days,
    ).toBe(365);
  });

  it('creates the GCS bucket in its location with the retention in seconds, then locks it', () => {
    const sh = artefact(result, 'evidence-eu-gcp.sh');
    const create = sh.indexOf('gcloud storage buckets create gs://acme-evidence-eu');

    expect(sh).toContain(
      '--location=europe-west3 --uniform-bucket-level-access --public-access-prevention --retention-period=34560000s',
    );
    expect(create).toBeGreaterThan(0);
    expect(
      sh.indexOf('gcloud storage buckets update gs://acme-evidence-eu --lock-retention-period'),
    ).toBeGreaterThan(create);
  });

  it('creates the Azure container with version-level immutability and locks its default policy', () => {
    const sh = artefact(result, 'evidence-eu-azure.sh');
    const order = [
      'az storage account create --name acmeevidenceeu --resource-group evidence-eu --location germanywestcentral',
      'az storage account blob-service-properties update --account-name acmeevidenceeu --resource-group evidence-eu --enable-versioning true',
      'az storage container-rm create --storage-account acmeevidenceeu --resource-group evidence-eu --name evidence --enable-vlw',
      'az storage container immutability-policy create --account-name acmeevidenceeu --resource-group evidence-eu --container-name evidence --period 400',
      'az storage container immutability-policy lock --account-name acmeevidenceeu --resource-group evidence-eu --container-name evidence --if-match "$etag"',
    ].map((line) => sh.indexOf(line));

    expect(order.every((i) => i > 0)).toBe(true);
    expect([...order].sort((a, b) => a - b)).toEqual(order);
  });

  it('refuses, printing nothing, a bucket that only an expired exception let outside its jurisdiction', () => {
    const config = fleet({
      jurisdictions: {
        ke: {
          preset: 'ke-dpa',
          exceptions: [
            {
              allowCountries: ['ZA'],
              reason: 'no in-country region; assessment on file',
              expires: '2027-06-30',
            },
          ],
          evidence: { aws: { bucket: 'acme-evidence-ke', region: 'af-south-1' } },
        },
      },
    });
    const live = onboardEvidence(input({ now: () => new Date('2027-06-30T12:00:00Z') }, config));

    expect(live.artefacts.map((a) => a.file)).toEqual(['evidence-ke-aws.cfn.json']);
    expect(() => onboardEvidence(input({ now: () => new Date('2027-07-01T00:00:00Z') }, config))).toThrow(
      /refusing to write evidence bucket to aws region af-south-1: ZA is outside jurisdiction "ke" and the exception allowing it expired on 2027-06-30/,
    );
  });

  it('refuses an unknown --jurisdiction', () => {
    expect(() => onboardEvidence({ ...input(), evidence: { jurisdiction: 'us' } })).toThrow(
      /unknown jurisdiction "us" \(configured: eu, in\)/,
    );
  });
});

describe('fleetward onboard (command line)', () => {
  const cli = (args: string[]) =>
    spawnSync(process.execPath, ['bin/fleetward.ts', 'onboard', ...args], {
      encoding: 'utf8',
      env: { ...process.env, FLEETWARD_CONFIG: '' },
      timeout: 30_000,
    });

  it('prints the reader-role template for the example config', () => {
    const out = cli(['aws', '--config', 'fleet.example.yaml', '--stage', 'prod']);

    expect(out.status, out.stderr).toBe(0);
    expect(JSON.parse(out.stdout).Resources.ReaderRole.Type).toBe('AWS::IAM::Role');
  });

  it('explains itself with --help', () => {
    const out = cli(['--help']);

    expect(out.status).toBe(0);
    expect(out.stdout).toMatch(
      /Targets:\n {2}aws .*\n {2}gcp .*\n {2}azure .*\n {2}kubernetes .*\n {2}evidence /,
    );
  });

  it('exits 2 on an unknown target, listing the valid ones', () => {
    const out = cli(['oracle', '--config', 'fleet.example.yaml']);

    expect(out.status).toBe(2);
    expect(out.stderr).toMatch(
      /unknown onboard target "oracle" \(expected one of: aws, gcp, azure, kubernetes, evidence\)/,
    );
  });

  it('exits 2 naming the missing flag', () => {
    const out = cli(['azure', '--config', 'fleet.example.yaml', '--fleetward-account', ACCOUNT]);

    expect(out.status).toBe(2);
    expect(out.stderr).toMatch(/fleetward onboard azure: the AWS issuer URL is unknown: pass --issuer/);
    expect(out.stdout).toBe('');
  });
});
