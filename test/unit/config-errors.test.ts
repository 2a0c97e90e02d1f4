/**
 * Config errors that teach: each names the path, says what was expected and what was found,
 * and suggests the near key, choice or region; a far-off mistake suggests nothing.
 */
import { describe, expect, it } from 'vitest';
import { loadConfig, parseConfig, parseConfigText } from '../../shared/config/load.ts';
import { ConfigError } from '../../shared/runtime/errors.ts';
import { issuesOf } from './config-issues.ts';

const account = (regions: unknown = ['eu-central-1']) => ({
  id: '111111111111',
  roleArn: 'arn:aws:iam::111111111111:role/fleetward-reader',
  regions,
});

const minimal = (): Record<string, unknown> & {
  clouds: Record<string, unknown>;
  jurisdictions: Record<string, unknown>;
} => ({
  version: 1,
  clouds: { aws: { accounts: [account()] } },
  jurisdictions: { eu: { preset: 'eu-gdpr' } },
});

describe('config errors: unknown keys', () => {
  it('suggests the near valid key of the same object, and does not also call that key missing', () => {
    const input = { ...minimal(), clouds: { aws: { acounts: [account()] } } };

    expect(issuesOf(() => parseConfig(input))).toEqual([
      { path: 'clouds.aws.acounts', message: 'unknown key; did you mean "accounts"?' },
    ]);
  });

  it.each([
    ['a jurisdiction', { eu: { preset: 'eu-gdpr', dril: {} } }, 'jurisdictions.eu.dril', 'drill'],
    [
      'a discriminated union option (the state type chosen)',
      { eu: { preset: 'eu-gdpr' } },
      'state.tabel',
      'table',
    ],
    ['the root', { eu: { preset: 'eu-gdpr' } }, 'polices', 'policies'],
  ])('suggests the key meant in %s', (_name, jurisdictions, path, meant) => {
    const input: Record<string, unknown> = { ...minimal(), jurisdictions };
    if (path.startsWith('state.')) input.state = { type: 'dynamodb', tabel: 't', region: 'eu-central-1' };
    if (path === 'polices') input.polices = {};

    expect(issuesOf(() => parseConfig(input))).toContainEqual({
      path,
      message: `unknown key; did you mean "${meant}"?`,
    });
  });

  it('suggests nothing for a far-off key, and lists the keys that object takes', () => {
    const input = { ...minimal(), jurisdictions: { eu: { preset: 'eu-gdpr', drill: { zzzzzz: 1 } } } };

    const [issue] = issuesOf(() => parseConfig(input));

    expect(issue?.path).toBe('jurisdictions.eu.drill.zzzzzz');
    expect(issue?.message).not.toMatch(/did you mean/);
    expect(issue?.message).toBe('unknown key (expected one of: intervalDays, rtoMinutes, drillCluster)');
  });

  it('accepts a config with every key spelled right', () => {
    expect(() => parseConfig(minimal())).not.toThrow();
  });
});

describe('config errors: wrong values', () => {
  it('says the expected type and the value found, not "required"', () => {
    const input = {
      ...minimal(),
      jurisdictions: { eu: { preset: 'eu-gdpr', drill: { rtoMinutes: 'sixty' } } },
    };

    expect(issuesOf(() => parseConfig(input))).toEqual([
      { path: 'jurisdictions.eu.drill.rtoMinutes', message: 'expected a positive integer, found "sixty"' },
    ]);
  });

  it.each([
    [{ retentionDays: 1.5 }, 'expected a positive integer, found 1.5'],
    [{ retentionDays: true }, 'expected a positive integer, found true'],
    [{ retentionDays: [1] }, 'expected a positive integer, found a list of 1'],
    [{ retentionDays: 0 }, 'expected a positive integer, found 0'],
  ])('reports audit %j as %s', (audit, message) => {
    const input = { ...minimal(), jurisdictions: { eu: { preset: 'eu-gdpr', audit } } };

    expect(issuesOf(() => parseConfig(input))).toEqual([
      { path: 'jurisdictions.eu.audit.retentionDays', message },
    ]);
  });

  it('calls a missing field required, with what it expects', () => {
    const input = { ...minimal(), clouds: { aws: { accounts: [{ ...account(), id: undefined }] } } };

    expect(issuesOf(() => parseConfig(input))).toEqual([
      { path: 'clouds.aws.accounts.0.id', message: 'required (expected a string)' },
    ]);
  });

  it.each([
    [
      'a preset',
      { jurisdictions: { eu: { preset: 'eu-gpdr' } } },
      'jurisdictions.eu.preset',
      'expected one of "eu-gdpr", "in-dpdp", "za-popia", "ke-dpa", found "eu-gpdr"; did you mean "eu-gdpr"?',
    ],
    [
      'a state type',
      { state: { type: 'sqlit' } },
      'state.type',
      'expected type "sqlite" or "dynamodb", found "sqlit"; did you mean "sqlite"?',
    ],
    [
      'an account region list',
      { clouds: { aws: { accounts: [account('al')] } } },
      'clouds.aws.accounts.0.regions',
      'expected "all" or a list of region names, found "al"',
    ],
  ])('suggests the choice meant for %s', (_name, patch, path, message) => {
    expect(issuesOf(() => parseConfig({ ...minimal(), ...patch }))).toEqual([{ path, message }]);
  });

  it('suggests no choice for a far-off value', () => {
    const input = { ...minimal(), jurisdictions: { eu: { preset: 'california' } } };

    const [issue] = issuesOf(() => parseConfig(input));

    expect(issue?.message).toMatch(/^expected one of .*, found "california"$/);
  });

  it('never echoes a string where a mapping belongs: it may be the secret a reference should name', () => {
    const input = {
      ...minimal(),
      slack: { webhooks: { main: 'https://hooks.example.invalid/services/T0/B0/x' } },
    };

    expect(issuesOf(() => parseConfig(input))).toEqual([
      { path: 'slack.webhooks.main', message: 'expected a mapping, found a string' },
    ]);
  });

  it('never echoes a URL past its host', () => {
    const input = {
      ...minimal(),
      jurisdictions: {
        eu: {
          preset: 'eu-gdpr',
          evidence: {
            aws: { bucket: 'b', region: 'eu-central-1', account: 'https://hooks.example.invalid/T0/x' },
          },
        },
      },
    };

    expect(issuesOf(() => parseConfig(input))).toEqual([
      {
        path: 'jurisdictions.eu.evidence.aws.account',
        message: 'expected a 12-digit AWS account id, found "https://hooks.example.invalid/…"',
      },
    ]);
  });

  it.each([
    [{ stage: 'Prod' }, 'stage', 'expected a value matching /^[a-z0-9-]+$/, found "Prod"'],
    [
      {
        budgets: [
          {
            cloud: 'aws',
            name: 'b',
            amount: 1,
            currency: 'EUR',
            thresholds: [],
            scope: { account: '111111111111' },
            notify: { emails: ['a@b.example'] },
          },
        ],
      },
      'budgets.0.thresholds',
      'expected at least 1 item(s), found an empty list',
    ],
    [
      {
        budgets: [
          {
            cloud: 'aws',
            name: 'b',
            amount: 1,
            currency: 'EUR',
            thresholds: [{ percent: 80, spend: 'actual' }],
            scope: { account: '111111111111' },
            notify: { emails: ['not-an-email'] },
          },
        ],
      },
      'budgets.0.notify.emails.0',
      'expected an email address, found "not-an-email"',
    ],
  ])("rewords zod's generic messages for %j", (patch, path, message) => {
    expect(issuesOf(() => parseConfig({ ...minimal(), ...patch }))).toEqual([{ path, message }]);
  });

  it('says an empty file is empty', () => {
    expect(issuesOf(() => parseConfigText('', 'fleet.yaml'))).toEqual([
      { path: '(root)', message: expect.stringMatching(/^empty config: .*fleet\.example\.yaml/) },
    ]);
  });
});

describe('config errors: YAML syntax', () => {
  it.each([
    ['version: 1\nclouds: [\n', 'fleet.yaml:3:1', /^flow sequence in block collection/],
    ['version: 1\nversion: 1\n', 'fleet.yaml:2:1', /^map keys must be unique$/],
    ['version: 1\nstage: "dev\n', 'fleet.yaml:3:1', /^missing closing "quote$/],
  ])('gives the position of %j once, as file:line:column', (text, path, reason) => {
    const issues = issuesOf(() => parseConfigText(text, 'fleet.yaml'));

    expect(issues).toHaveLength(1);
    expect(issues[0]?.path).toBe(path);
    expect(issues[0]?.message).toMatch(reason);
    expect(issues[0]?.message).not.toMatch(/line|column|\n/);
  });

  it('names the text (yaml) when it has no file', () => {
    expect(issuesOf(() => parseConfigText('a: 1\na: 2\n'))[0]?.path).toBe('(yaml):2:1');
  });
});

describe('config errors: regions', () => {
  const evidence = (e: Record<string, unknown>) => ({
    jurisdictions: { eu: { preset: 'eu-gdpr', evidence: e } },
  });

  it.each([
    [
      'an AWS account region',
      { clouds: { aws: { accounts: [account(['eu-centrall-1'])] } } },
      'clouds.aws.accounts.0.regions.0',
      'unknown AWS region "eu-centrall-1"; did you mean "eu-central-1"?',
    ],
    [
      'an availability zone given as an account region',
      { clouds: { aws: { accounts: [account(['eu-central-1a'])] } } },
      'clouds.aws.accounts.0.regions.0',
      'unknown AWS region "eu-central-1a"; did you mean "eu-central-1"?',
    ],
    [
      'the AWS home region',
      { clouds: { aws: { homeRegion: 'us-east-11', accounts: [account()] } } },
      'clouds.aws.homeRegion',
      'unknown AWS region "us-east-11"; did you mean "us-east-1"?',
    ],
    [
      'an AWS evidence bucket',
      evidence({ aws: { bucket: 'b', region: 'eu-wst-1' } }),
      'jurisdictions.eu.evidence.aws.region',
      'unknown AWS region "eu-wst-1"; did you mean "eu-west-1"?',
    ],
    [
      'a GCP evidence bucket',
      evidence({ gcp: { bucket: 'b', location: 'europe-west33' } }),
      'jurisdictions.eu.evidence.gcp.location',
      'unknown GCP region "europe-west33"; did you mean "europe-west3"?',
    ],
    [
      'an Azure evidence container',
      evidence({ azure: { storageAccount: 's', container: 'c', region: 'germanywestcentrall' } }),
      'jurisdictions.eu.evidence.azure.region',
      'unknown Azure region "germanywestcentrall"; did you mean "germanywestcentral"?',
    ],
    [
      'the DynamoDB state table',
      { state: { type: 'dynamodb', table: 't', region: 'eu-north-11' } },
      'state.region',
      'unknown AWS region "eu-north-11"; did you mean "eu-north-1"?',
    ],
    [
      'the STS region of Azure federation',
      {
        clouds: {
          aws: { accounts: [account()] },
          azure: {
            subscriptions: [{ id: '00000000-0000-0000-0000-000000000001' }],
            credential: {
              type: 'aws-federation',
              tenantId: '00000000-0000-0000-0000-000000000002',
              clientId: '00000000-0000-0000-0000-000000000003',
              stsRegion: 'eu-west-01',
            },
          },
        },
      },
      'clouds.azure.credential.stsRegion',
      'unknown AWS region "eu-west-01"; did you mean "eu-west-1"?',
    ],
    [
      'a kubeconfig context',
      {
        clouds: {
          kubeconfig: [
            { alias: 'lab', file: 'k.yaml', contexts: [{ name: 'a', cloud: 'gcp', region: 'europe-wst1' }] },
          ],
        },
      },
      'clouds.kubeconfig.0.contexts.0.region',
      'unknown GCP region "europe-wst1"; did you mean "europe-west1"? (for an on-premises cluster, give its country)',
    ],
  ])('checks %s against the region table and suggests the region meant', (_name, patch, path, message) => {
    expect(issuesOf(() => parseConfig({ ...minimal(), ...patch }))).toEqual([{ path, message }]);
  });

  it("names another cloud's region as such", () => {
    const input = { ...minimal(), clouds: { aws: { accounts: [account(['europe-west3'])] } } };

    expect(issuesOf(() => parseConfig(input))).toEqual([
      {
        path: 'clouds.aws.accounts.0.regions.0',
        message: 'unknown AWS region "europe-west3" (a GCP region)',
      },
    ]);
  });

  it('suggests nothing for a region unlike any', () => {
    const input = { ...minimal(), clouds: { aws: { accounts: [account(['moon-base-1'])] } } };

    expect(issuesOf(() => parseConfig(input))).toEqual([
      { path: 'clouds.aws.accounts.0.regions.0', message: 'unknown AWS region "moon-base-1"' },
    ]);
  });

  it('accepts real regions everywhere, a zone for a kubeconfig context and any region of an on-premises one', () => {
    const input = {
      ...minimal(),
      clouds: {
        aws: { homeRegion: 'eu-west-1', accounts: [account(['eu-central-1', 'eu-west-1'])] },
        kubeconfig: [
          {
            alias: 'lab',
            file: 'k.yaml',
            contexts: [
              { name: 'a', cloud: 'gcp', region: 'europe-west1-b' },
              { name: 'b', region: 'basement-rack-2', country: 'DE' },
            ],
          },
        ],
      },
      jurisdictions: {
        eu: {
          preset: 'eu-gdpr',
          evidence: {
            aws: { bucket: 'b', region: 'eu-central-1' },
            gcp: { bucket: 'b', location: 'europe-west3' },
            azure: { storageAccount: 's', container: 'c', region: 'germanywestcentral' },
          },
        },
      },
    };

    expect(() => parseConfig(input)).not.toThrow();
  });

  it('reports an unknown evidence region once, not again as a residency refusal', () => {
    const input = { ...minimal(), ...evidence({ aws: { bucket: 'b', region: 'eu-wst-1' } }) };

    expect(issuesOf(() => parseConfig(input))).toHaveLength(1);
  });
});

describe('config errors: the file', () => {
  it('keeps the cause of a missing file, for the CLI to explain', async () => {
    const error = (await loadConfig('no-such-dir/fleet.yaml').catch((e: unknown) => e)) as ConfigError;

    expect(error).toBeInstanceOf(ConfigError);
    expect(error.issues).toEqual([{ path: '(file)', message: 'no such file: no-such-dir/fleet.yaml' }]);
    expect((error.cause as NodeJS.ErrnoException).code).toBe('ENOENT');
  });

  it('says a directory is a directory', async () => {
    const error = (await loadConfig('test').catch((e: unknown) => e)) as ConfigError;

    expect(error.issues).toEqual([{ path: '(file)', message: 'cannot read test: it is a directory' }]);
  });
});
