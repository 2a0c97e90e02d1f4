import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../shared/config/load.ts';
import { ConfigError } from '../../shared/runtime/errors.ts';
import { gcpLabelKey, tagProblems } from '../../shared/tags/rules.ts';

describe('tag rules', () => {
  it.each([
    ['aws', 'cost-center', 'payments'],
    ['aws', 'Owner', 'team@example.com'],
    ['gcp', 'cost-center', 'payments'],
    ['gcp', 'owner', ''],
    ['azure', 'Cost Center', 'Payments & Co'],
  ] as const)('accepts %s %s=%s', (cloud, key, value) => {
    expect(tagProblems(cloud, key, value)).toEqual([]);
  });

  it.each([
    ['aws', 'aws:createdBy', 'x', /reserved/],
    ['aws', 'k'.repeat(129), 'x', /longer than 128/],
    ['aws', 'owner', 'v'.repeat(257), /longer than 256/],
    ['aws', 'owner', 'a#b', /contains "#"/],
    ['gcp', 'Owner', 'x', /contains "O"|lower-case/],
    ['gcp', 'owner', 'Team@Example.com', /contains "T"/],
    ['gcp', '1owner', 'x', /start with a lower-case letter/],
    ['gcp', 'owner', 'v'.repeat(64), /longer than 63/],
    ['gcp', 'goog-managed', 'x', /reserved/],
    ['azure', 'a/b', 'x', /contains "\/"/],
    ['azure', 'microsoft-owner', 'x', /reserved/],
    ['azure', 'owner', 'v'.repeat(257), /longer than 256/],
  ] as const)('rejects %s %s=%s', (cloud, key, value, why) => {
    expect(tagProblems(cloud, key, value).join('; ')).toMatch(why);
  });

  it('maps policy keys to the GCP label they become', () => {
    expect(gcpLabelKey('Cost.Center')).toBe('cost_center');
    expect(gcpLabelKey('x'.repeat(70))).toHaveLength(63);
  });
});

describe('tag policy config', () => {
  const config = (
    required: Record<string, unknown>,
    clouds: Record<string, unknown> = { gcp: { projects: [{ id: 'fw-prod-core' }] } },
  ) => ({
    version: 1,
    clouds,
    jurisdictions: { eu: { preset: 'eu-gdpr' } },
    policies: { tags: { required } },
  });
  const issues = (input: unknown) => {
    try {
      parseConfig(input);
      return [];
    } catch (error) {
      if (error instanceof ConfigError) return error.issues;
      throw error;
    }
  };

  it('accepts required keys with values, patterns and defaults', () => {
    const parsed = parseConfig(
      config({
        owner: { pattern: '[a-z.]+@example\\.com' },
        environment: { values: ['prod', 'dev'], default: 'dev' },
      }),
    );

    expect(parsed.policies.tags.derived).toEqual(['jurisdiction', 'region', 'cloud', 'managed-by']);
  });

  it('fails when two keys collapse to one GCP label, naming the key', () => {
    expect(issues(config({ 'cost.center': {}, cost_center: {} }))).toEqual([
      {
        path: 'policies.tags.required.cost_center',
        message: expect.stringMatching(/collide: both become GCP label "cost_center"/),
      },
    ]);
  });

  it('does not apply GCP rules to a fleet without GCP', () => {
    expect(issues(config({ 'cost.center': {}, cost_center: {} }, { kubeconfig: [] }))).not.toContainEqual(
      expect.objectContaining({ message: expect.stringMatching(/GCP label/) }),
    );
  });

  it.each([
    [
      'a default outside the allowed values',
      { environment: { values: ['prod'], default: 'dev' } },
      'policies.tags.required.environment.default',
    ],
    [
      'a default that misses the pattern',
      { owner: { pattern: '[a-z]+@example\\.com', default: 'nobody' } },
      'policies.tags.required.owner.default',
    ],
    ['an invalid pattern', { owner: { pattern: '([' } }, 'policies.tags.required.owner.pattern'],
    ['a key GCP cannot hold', { '9lives': {} }, 'policies.tags.required.9lives'],
  ])('rejects %s', (_case, required, path) => {
    expect(issues(config(required)).map((i) => i.path)).toContain(path);
  });
});
