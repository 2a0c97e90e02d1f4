/** The budget plan, pure: desired against actual, coverage findings, and the rendering. */
import type { Budget as AwsBudget } from '@aws-sdk/client-budgets';
import type { Budget as ArmBudget } from '@azure/arm-consumption';
import { describe, expect, it } from 'vitest';
import {
  coverageFindings,
  covers,
  planBudgets,
  renderChanges,
  summarise,
} from '../../shared/budgets/plan.ts';
import { type ActualBudget, budgetAddress, configName } from '../../shared/budgets/port.ts';
import { fromAwsBudget } from '../../shared/clouds/aws/budgets.ts';
import { fromArmBudget } from '../../shared/clouds/azure/budgets.ts';
import { fromGcpBudget } from '../../shared/clouds/gcp/budgets.ts';
import { Budget, type BudgetConfig } from '../../shared/config/schema.ts';
import type { Cluster } from '../../shared/model.ts';
import awsDescribeTag from '../fixtures/aws/budgets-describe-budget.json' with { type: 'json' };
import awsDescribeAz from '../fixtures/aws/budgets-describe-budget-az-filter.json' with { type: 'json' };
import azureCreateExample from '../fixtures/azure/consumption-budget.json' with { type: 'json' };
import gcpBudget from '../fixtures/gcp/billing-budget.json' with { type: 'json' };

const SUB = '11111111-1111-1111-1111-111111111111';
/** The placeholder subscription of the ARM REST reference examples. */
const EXAMPLE_SUB = '00000000-0000-0000-0000-000000000000';
const thresholds = [
  { percent: 80, spend: 'actual' },
  { percent: 100, spend: 'forecast' },
];
const aws = Budget.parse({
  name: 'aws-main',
  cloud: 'aws',
  scope: { account: '111111111111', tagFilter: { key: 'environment', values: ['prod'] } },
  amount: 5000,
  currency: 'USD',
  thresholds,
  notify: { emails: ['finops@example.com'] },
});
const gcp = Budget.parse({
  name: 'gcp-all',
  cloud: 'gcp',
  scope: { billingAccount: '000000-000000-000000', projects: ['proj-b', 'proj-a'] },
  amount: 4000,
  currency: 'EUR',
  thresholds,
  notify: { pubsubTopic: 'projects/proj-a/topics/budgets' },
});
const azure = Budget.parse({
  name: 'azure-1',
  cloud: 'azure',
  scope: { subscription: SUB },
  amount: 2500,
  currency: 'EUR',
  thresholds,
  notify: { emails: ['finops@example.com'] },
});

/** The budget as a cloud would list it: same fields, lists reordered, provider ids added. */
function actualOf(b: BudgetConfig, change: Partial<ActualBudget> = {}): ActualBudget {
  const copy = structuredClone(b) as ActualBudget;
  copy.thresholds = [...copy.thresholds].reverse();
  if (copy.cloud === 'gcp') copy.scope.projects = [...copy.scope.projects].reverse();
  return { ...copy, providerId: `id-of-${b.name}`, ...change } as ActualBudget;
}

function cluster(
  cloud: Cluster['cloud'],
  scope: string,
  name: string,
  extra: Partial<Cluster> = {},
): Cluster {
  return {
    id: `${cloud}/${scope}/eu-west-1/${name}`,
    cloud,
    scope,
    region: 'eu-west-1',
    name,
    kubernetesVersion: null,
    endpoint: null,
    endpointAccess: 'unknown',
    secretsEncryptionKey: null,
    auditLogging: null,
    tags: {},
    status: 'running',
    providerStatus: null,
    createdAt: null,
    country: 'IE',
    jurisdiction: 'eu',
    ...extra,
  };
}

describe('planBudgets', () => {
  it('creates what is missing, in address order', () => {
    const changes = planBudgets([gcp, azure, aws], []);
    expect(changes.map((c) => [c.action, c.address])).toEqual([
      ['create', 'aws/111111111111/fleetward-aws-main'],
      ['create', `azure/${SUB}/fleetward-azure-1`],
      ['create', 'gcp/000000-000000-000000/fleetward-gcp-all'],
    ]);
  });

  it('is a no-op when the clouds match, whatever the order of lists', () => {
    expect(planBudgets([aws, gcp, azure], [actualOf(aws), actualOf(gcp), actualOf(azure)])).toEqual([]);
  });

  it('does not compare a currency the cloud does not report (Azure)', () => {
    expect(planBudgets([azure], [actualOf(azure, { currency: null })])).toEqual([]);
  });

  it('updates a drifted budget with its field diffs', () => {
    const changes = planBudgets([{ ...aws, amount: 4500 }], [actualOf(aws)]);
    expect(changes).toHaveLength(1);
    expect(changes[0]).toMatchObject({
      action: 'update',
      diffs: [{ field: 'amount', before: 5000, after: 4500 }],
    });
    const targets = planBudgets([Budget.parse({ ...gcp, notify: { channels: [] } })], [actualOf(gcp)]);
    expect(targets[0]).toMatchObject({
      action: 'update',
      diffs: [{ field: 'pubsubTopic', before: 'projects/proj-a/topics/budgets', after: null }],
    });
  });

  it('deletes a managed budget that left the config, and one whose scope moved', () => {
    const moved = Budget.parse({ ...azure, scope: { subscription: SUB, resourceGroup: 'rg-a' } });
    const changes = planBudgets([moved], [actualOf(aws), actualOf(azure)]);
    expect(changes.map((c) => [c.action, c.address])).toEqual([
      ['delete', 'aws/111111111111/fleetward-aws-main'],
      ['delete', `azure/${SUB}/fleetward-azure-1`],
      ['create', `azure/${SUB}/rg-a/fleetward-azure-1`],
    ]);
  });

  it('leaves unmanaged budgets alone: they are not fleetward- named', () => {
    expect(configName('team-budget')).toBeUndefined();
    expect(configName('fleetward-')).toBeUndefined();
    expect(configName('fleetward-aws-main')).toBe('aws-main');
    expect(budgetAddress(aws)).toBe('aws/111111111111/fleetward-aws-main');
  });

  it('renders terraform-like lines and a summary', () => {
    const changes = planBudgets([{ ...aws, amount: 4500 }, gcp], [actualOf(aws), actualOf(azure)]);
    expect(renderChanges(changes)).toEqual([
      '~ aws/111111111111/fleetward-aws-main',
      '    amount: 5000 -> 4500',
      `- azure/${SUB}/fleetward-azure-1  amount 2500 EUR monthly`,
      '+ gcp/000000-000000-000000/fleetward-gcp-all  amount 4000 EUR monthly',
    ]);
    expect(summarise(changes, [])).toBe(
      'Plan: 1 to create, 1 to update, 1 to delete; 0 clusters without a budget.',
    );
  });
});

describe('coverage', () => {
  const now = new Date('2026-01-01T00:00:00Z');

  it('finds AWS, GCP and Azure clusters no budget covers; kubeconfig clusters are not counted', () => {
    const clusters = [
      cluster('aws', '111111111111', 'a'),
      cluster('aws', '222222222222', 'b'),
      cluster('gcp', 'proj-a', 'c'),
      cluster('gcp', 'proj-z', 'd'),
      cluster('azure', SUB, 'e', { resourceGroup: 'rg-a' }),
      cluster('azure', '22222222-2222-2222-2222-222222222222', 'f'),
      cluster('kubeconfig', 'sandbox', 'g'),
    ];
    const findings = coverageFindings([aws, gcp, azure], clusters, now);
    expect(findings.map((f) => f.clusterId)).toEqual([
      'aws/222222222222/eu-west-1/b',
      'azure/22222222-2222-2222-2222-222222222222/eu-west-1/f',
      'gcp/proj-z/eu-west-1/d',
    ]);
    expect(findings[0]).toEqual({
      clusterId: 'aws/222222222222/eu-west-1/b',
      jurisdiction: 'eu',
      kind: 'budget-missing',
      severity: 'medium',
      message: expect.stringContaining('AWS account 222222222222'),
      at: now.toISOString(),
    });
  });

  it('a GCP budget without projects covers every project of its billing account', () => {
    const wide = Budget.parse({ ...gcp, scope: { billingAccount: '000000-000000-000000' } });
    expect(covers(wide, cluster('gcp', 'proj-z', 'd'))).toBe(true);
    expect(coverageFindings([wide], [cluster('gcp', 'anything', 'x')], now)).toEqual([]);
  });

  it('a resource-group budget covers only the clusters of that resource group', () => {
    const rg = Budget.parse({ ...azure, scope: { subscription: SUB, resourceGroup: 'RG-A' } });
    expect(covers(rg, cluster('azure', SUB, 'e', { resourceGroup: 'rg-a' }))).toBe(true);
    expect(covers(rg, cluster('azure', SUB, 'f', { resourceGroup: 'rg-b' }))).toBe(false);
  });
});

/** An ARM Budget resource (`properties` nested) as `@azure/arm-consumption` hands it over (flattened). */
function sdkBudget(
  resource: { properties: Record<string, unknown> } & Record<string, unknown>,
  name: string,
) {
  const { properties, ...envelope } = resource;
  return { ...envelope, ...properties, name } as ArmBudget;
}

describe('filters the config cannot express are drift', () => {
  it('AWS: a CostFilters dimension other than TagKeyValue (the CLI reference AZ example) is an update', () => {
    const actual = fromAwsBudget(
      '111122223333',
      { ...awsDescribeAz.Budget, BudgetName: 'fleetward-example' } as unknown as AwsBudget,
      [],
      [],
    )!;
    const desired = Budget.parse({
      ...aws,
      name: 'example',
      amount: 100,
      scope: { account: '111122223333' },
      thresholds: [{ percent: 80, spend: 'actual' }],
    });
    const changes = planBudgets(
      [desired],
      [{ ...actual, thresholds: desired.thresholds, notify: desired.notify } as ActualBudget],
    );

    expect(changes).toHaveLength(1);
    expect(changes[0]).toMatchObject({
      action: 'update',
      diffs: [{ field: 'otherFilters', before: ['AZ=us-east-1'], after: [] }],
    });
  });

  it('AWS: tag filters on a second key are drift, not folded into the first key', () => {
    const actual = fromAwsBudget(
      '111122223333',
      {
        ...awsDescribeTag.Budget,
        BudgetName: 'fleetward-example',
        CostFilters: { TagKeyValue: ['user:cost-center$example', 'user:team$payments'] },
      } as unknown as AwsBudget,
      [],
      [],
    )!;

    expect(actual.scope).toMatchObject({ tagFilter: { key: 'cost-center', values: ['example'] } });
    expect(actual.filtersNotInConfig).toEqual(['TagKeyValue=user:team$payments']);
  });

  it('Azure: filter.and with dimensions and a second tag term (the REST reference example) is an update', () => {
    const actual = fromArmBudget(
      EXAMPLE_SUB,
      undefined,
      sdkBudget(azureCreateExample.responses['200'].body, 'fleetward-example'),
    )!;
    const desired = Budget.parse({
      ...azure,
      name: 'example',
      amount: 100.65,
      currency: 'USD',
      scope: { subscription: EXAMPLE_SUB, tagFilter: { key: 'category', values: ['Dev', 'Prod'] } },
      thresholds: [{ percent: 80, spend: 'actual' }],
      notify: {
        emails: ['johndoe@contoso.com', 'janesmith@contoso.com'],
        actionGroups: [
          '/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/MYDEVTESTRG/providers/microsoft.insights/actionGroups/SampleActionGroup',
        ],
      },
    });
    const changes = planBudgets([desired], [actual]);

    expect(changes).toHaveLength(1);
    expect(changes[0]).toMatchObject({ action: 'update' });
    const diffs = (changes[0] as { diffs: { field: string; before: unknown; after: unknown }[] }).diffs;
    expect(diffs).toEqual([
      {
        field: 'otherFilters',
        before: [
          expect.stringMatching(/^dimensions:ResourceId In .*virtualMachines\/MSVM2/),
          'tags:department In engineering|sales',
        ],
        after: [],
      },
    ]);
  });

  it('Azure: a single tag term, top level or alone in filter.and, is the tag filter and no drift', () => {
    const body = azureCreateExample.responses['200'].body;
    for (const filter of [
      { tags: { name: 'category', operator: 'In', values: ['Dev', 'Prod'] } },
      { and: [{ tags: { name: 'category', operator: 'In', values: ['Dev', 'Prod'] } }] },
    ]) {
      const actual = fromArmBudget(
        EXAMPLE_SUB,
        undefined,
        sdkBudget({ ...body, properties: { ...body.properties, filter } }, 'fleetward-example'),
      )!;
      expect(actual.scope).toMatchObject({ tagFilter: { key: 'category', values: ['Dev', 'Prod'] } });
      expect(actual.filtersNotInConfig ?? []).toEqual([]);
    }
  });

  it('GCP: services, subaccounts, resource ancestors and credit types are drift', () => {
    const actual = fromGcpBudget('000000-000000-000000', {
      ...gcpBudget,
      displayName: 'fleetward-example',
      budgetFilter: { ...gcpBudget.budgetFilter, labels: {} },
    } as Parameters<typeof fromGcpBudget>[1])!;

    expect(actual.filtersNotInConfig).toEqual([
      'creditTypes=FREE_TIER|PROMOTION',
      'resourceAncestors=folders/123456789012',
      'services=services/6F81-5844-456A',
      'subaccounts=billingAccounts/000000-000000-000001',
    ]);
  });
});
