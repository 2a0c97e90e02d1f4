import { describe, expect, it } from 'vitest';
import { TagPolicy } from '../../shared/config/schema.ts';
import type { Cluster } from '../../shared/model.ts';
import { changeSet, planTags } from '../../shared/tags/plan.ts';
import { planJson, renderPlanText } from '../../shared/tags/render.ts';
import { tagProblems } from '../../shared/tags/rules.ts';

function cluster(partial: Partial<Cluster> = {}): Cluster {
  return {
    id: 'aws/111111111111/eu-central-1/payments',
    cloud: 'aws',
    scope: '111111111111',
    region: 'eu-central-1',
    name: 'payments',
    kubernetesVersion: '1.31',
    endpoint: null,
    endpointAccess: 'public',
    secretsEncryptionKey: null,
    auditLogging: true,
    tags: {},
    status: 'running',
    providerStatus: 'ACTIVE',
    createdAt: null,
    country: 'DE',
    jurisdiction: 'eu',
    ...partial,
  };
}

const policy = TagPolicy.parse({
  required: {
    owner: { pattern: '[a-z0-9._-]+@example\\.com' },
    environment: { values: ['prod', 'staging', 'dev'] },
    'cost-center': { default: 'shared' },
  },
  derived: ['jurisdiction', 'region', 'cloud', 'managed-by', 'country'],
});

/** The same policy, letting Fleetward correct `region`. */
const overwriteRegion = TagPolicy.parse({
  ...policy,
  required: { ...policy.required, region: { overwrite: true } },
});

const complete = {
  owner: 'team@example.com',
  environment: 'prod',
  'cost-center': 'cc-1',
  jurisdiction: 'eu',
  region: 'eu-central-1',
  cloud: 'aws',
  'managed-by': 'fleetward',
  country: 'de',
};

function without(tags: Record<string, string>, ...keys: string[]): Record<string, string> {
  return Object.fromEntries(Object.entries(tags).filter(([k]) => !keys.includes(k)));
}

describe('tag plan', () => {
  it('plans the derived keys and the defaults of missing required keys', () => {
    const plan = planTags(cluster(), { owner: 'team@example.com', environment: 'prod' }, policy);

    expect(changeSet(plan)).toEqual({
      jurisdiction: 'eu',
      region: 'eu-central-1',
      cloud: 'aws',
      'managed-by': 'fleetward',
      country: 'de',
      'cost-center': 'shared',
    });
    expect(plan.changes.find((c) => c.key === 'cost-center')).toMatchObject({
      before: null,
      source: 'default',
    });
    expect(plan.changes.find((c) => c.key === 'jurisdiction')).toMatchObject({
      before: null,
      source: 'derived',
    });
    expect(plan.findings).toEqual([]);
    expect(plan.taggable).toBe(true);
  });

  it('reports a missing owner and never invents it', () => {
    const plan = planTags(cluster(), { environment: 'dev' }, policy);

    expect(plan.findings).toEqual([
      { kind: 'missing-tag', key: 'owner', message: 'owner: missing (required; not invented)' },
    ]);
    expect(plan.changes.map((c) => c.key)).not.toContain('owner');
  });

  it('reports invalid required values and never rewrites them', () => {
    const plan = planTags(cluster(), { ...complete, owner: 'Someone Else', environment: 'qa' }, policy);

    expect(plan.changes).toEqual([]);
    expect(plan.findings.map((f) => [f.kind, f.key])).toEqual([
      ['invalid-tag', 'owner'],
      ['invalid-tag', 'environment'],
    ]);
    expect(plan.findings[1]!.message).toContain('"qa" is not one of "prod", "staging", "dev"');
  });

  it('never overwrites a derived key that holds another value: it is a finding', () => {
    const plan = planTags(cluster(), { ...complete, 'managed-by': 'terraform', region: 'emea' }, policy);

    expect(plan.changes).toEqual([]);
    expect(plan.findings).toEqual([
      {
        kind: 'conflicting-tag',
        key: 'region',
        message: expect.stringContaining(
          'region: holds "emea", not the derived "eu-central-1"; not overwritten',
        ),
      },
      {
        kind: 'conflicting-tag',
        key: 'managed-by',
        message: expect.stringContaining('managed-by: holds "terraform", not the derived "fleetward"'),
      },
    ]);
    expect(plan.findings[0]!.message).toContain('policies.tags.required.region.overwrite');
  });

  it('overwrites a derived value only for keys the policy marks overwrite: true', () => {
    const plan = planTags(
      cluster(),
      { ...complete, 'managed-by': 'terraform', region: 'us-east-1' },
      overwriteRegion,
    );

    expect(plan.changes).toEqual([
      { key: 'region', before: 'us-east-1', after: 'eu-central-1', source: 'derived' },
    ]);
    expect(plan.findings.map((f) => [f.kind, f.key])).toEqual([['conflicting-tag', 'managed-by']]);
  });

  it('replaces a value the policy does not allow by the default only with overwrite: true', () => {
    const strict = (overwrite?: boolean) =>
      TagPolicy.parse({
        required: {
          environment: { values: ['prod', 'dev'], default: 'dev', ...(overwrite ? { overwrite } : {}) },
        },
        derived: [],
      });

    const kept = planTags(cluster(), { environment: 'qa' }, strict());
    expect(kept.changes).toEqual([]);
    expect(kept.findings.map((f) => [f.kind, f.key])).toEqual([['invalid-tag', 'environment']]);

    const replaced = planTags(cluster(), { environment: 'qa' }, strict(true));
    expect(replaced.changes).toEqual([{ key: 'environment', before: 'qa', after: 'dev', source: 'default' }]);
    expect(replaced.findings).toEqual([]);
    // A value the policy allows is the owner's choice, overwrite or not.
    expect(planTags(cluster(), { environment: 'prod' }, strict(true)).changes).toEqual([]);
  });

  it('refuses overwrite as anything but a boolean (strict policy)', () => {
    expect(() => TagPolicy.parse({ required: { region: { overwrite: 'yes' } } })).toThrow();
    expect(() => TagPolicy.parse({ required: { region: { overwrites: true } } })).toThrow();
  });

  it('is a no-op when every tag is in place', () => {
    const plan = planTags(cluster(), complete, policy);

    expect(plan.changes).toEqual([]);
    expect(plan.findings).toEqual([]);
  });

  it('uses label keys and label-safe values on GCP', () => {
    const gcpPolicy = TagPolicy.parse({
      required: { 'Cost Center': { default: 'Shared' } },
      derived: ['jurisdiction', 'cloud', 'country'],
    });
    const plan = planTags(
      cluster({ id: 'gcp/p/europe-west3/c', cloud: 'gcp', region: 'europe-west3', name: 'c' }),
      {},
      gcpPolicy,
    );

    expect(changeSet(plan)).toEqual({
      jurisdiction: 'eu',
      cloud: 'gcp',
      country: 'de',
      cost_center: 'shared',
    });
    for (const c of plan.changes) expect(tagProblems('gcp', c.key, c.after)).toEqual([]);
    // An existing label under the label form of the key counts as present.
    expect(
      planTags(cluster({ cloud: 'gcp' }), { cost_center: 'x' }, gcpPolicy).changes.map((c) => c.key),
    ).not.toContain('cost_center');
  });

  it('drops values a cloud would refuse into findings, never into changes', () => {
    const gcpPolicy = TagPolicy.parse({
      required: { team: { default: 'platform@example.com' } },
      derived: [],
    });
    const plan = planTags(cluster({ cloud: 'gcp' }), {}, gcpPolicy);

    expect(plan.changes).toEqual([]);
    expect(plan.findings).toMatchObject([{ kind: 'unsendable-tag', key: 'team' }]);
    expect(plan.findings[0]!.message).toContain('not sent');

    const awsPolicy = TagPolicy.parse({ required: { team: { default: 'a#b' } }, derived: [] });
    const aws = planTags(cluster(), {}, awsPolicy);
    expect(aws.changes).toEqual([]);
    expect(aws.findings[0]).toMatchObject({ kind: 'unsendable-tag', key: 'team' });
  });

  it('matches existing keys case-insensitively on Azure and keeps their spelling', () => {
    const azure = cluster({
      id: 'azure/s/rg/a',
      cloud: 'azure',
      region: 'germanywestcentral',
      resourceGroup: 'rg',
    });
    const current = {
      ...without(complete, 'jurisdiction', 'region'),
      cloud: 'azure',
      Jurisdiction: 'eu',
      Region: 'westeurope',
    };

    const plan = planTags(azure, current, overwriteRegion);

    // `Jurisdiction` counts as present; `Region` is corrected under its own spelling.
    expect(plan.changes).toEqual([
      { key: 'Region', before: 'westeurope', after: 'germanywestcentral', source: 'derived' },
    ]);
    // On AWS keys are case-sensitive: `Jurisdiction` does not count as `jurisdiction`.
    const aws = planTags(cluster(), { ...without(complete, 'jurisdiction'), Jurisdiction: 'eu' }, policy);
    expect(aws.changes.map((c) => c.key)).toEqual(['jurisdiction']);
  });

  it('cannot derive a jurisdiction for an unassigned cluster or a country for an unknown region', () => {
    const plan = planTags(cluster({ jurisdiction: 'unassigned', country: null }), complete, policy);

    expect(plan.findings.map((f) => [f.kind, f.key])).toEqual([
      ['underivable-tag', 'jurisdiction'],
      ['underivable-tag', 'country'],
    ]);
  });

  it('plans nothing for kubeconfig clusters', () => {
    const plan = planTags(cluster({ cloud: 'kubeconfig' }), {}, policy);

    expect(plan).toMatchObject({ taggable: false, changes: [], findings: [] });
  });

  it('renders like terraform plan and as JSON', () => {
    const plans = [
      planTags(cluster(), { owner: 'team@example.com', environment: 'prod', region: 'x' }, overwriteRegion),
      planTags(
        cluster({ id: 'aws/1/eu-west-1/b', name: 'b', region: 'eu-west-1', country: 'IE' }),
        { ...without(complete, 'owner'), region: 'eu-west-1', country: 'ie' },
        overwriteRegion,
      ),
    ];
    const text = renderPlanText(plans);

    // Each cluster is named by its id, the one --cluster takes.
    expect(text).toContain('~ aws/111111111111/eu-central-1/payments\n    + jurisdiction = "eu"');
    expect(text).toContain('    ~ region = "x" -> "eu-central-1"');
    expect(text).toContain('! aws/1/eu-west-1/b\n    ! owner: missing (required; not invented)');
    expect(text).not.toContain('aws/eu-west-1/b');
    expect(text.split('\n').at(-1)).toBe('Plan: 6 changes on 1 clusters, 1 findings.');
    expect(planJson(plans).summary).toMatchObject({ changes: 6, clusters: 1, findings: 1 });
  });
});
