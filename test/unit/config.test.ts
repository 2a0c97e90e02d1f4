import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { configJsonSchema, loadConfig, parseConfig, parseConfigText } from '../../shared/config/load.ts';
import { ConfigError } from '../../shared/runtime/errors.ts';
import { issuesOf } from './config-issues.ts';

const minimal = () => ({
  version: 1,
  clouds: {
    aws: {
      accounts: [
        {
          id: '111111111111',
          roleArn: 'arn:aws:iam::111111111111:role/fleetward-reader',
          regions: ['eu-central-1'],
        },
      ],
    },
  },
  jurisdictions: { eu: { preset: 'eu-gdpr' } } as Record<string, unknown>,
});

describe('config', () => {
  it('accepts the shipped example covering all four jurisdictions and all clouds', async () => {
    const config = await loadConfig('fleet.example.yaml');

    expect(Object.keys(config.jurisdictions).sort()).toEqual(['eu', 'in', 'ke', 'za']);
    expect(config.clouds.aws?.accounts).toHaveLength(2);
    expect(config.clouds.gcp?.projects.length).toBeGreaterThan(0);
    expect(config.clouds.azure?.subscriptions.length).toBeGreaterThan(0);
    expect(config.clouds.kubeconfig?.[0]?.contexts.length).toBeGreaterThan(0);
  });

  it('fills defaults', () => {
    const config = parseConfig(minimal());

    expect(config.stage).toBe('dev');
    expect(config.jurisdictions.eu?.audit.retentionDays).toBe(400);
    expect(config.clouds.aws?.concurrency).toBe(16);
    expect(config.state).toEqual({ type: 'sqlite', path: '.fleetward/state.db' });
  });

  it('names the path of every bad field in a file with two errors', async () => {
    const error = await loadConfig('test/fixtures/config/two-errors.yaml').catch((e: unknown) => e);

    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).issues).toEqual([
      { path: 'jurisdictions.eu.audit.retentionDays', message: 'expected a positive integer, found -5' },
      { path: 'jurisdictions.za.backups', message: 'unknown key; did you mean "backup"?' },
    ]);
  });

  it.each([
    ['a non-integer retention', { audit: { retentionDays: 1.5 } }, 'jurisdictions.eu.audit.retentionDays'],
    ['an unknown preset', { preset: 'us-ccpa' }, 'jurisdictions.eu.preset'],
    ['a lower-case country', { preset: undefined, countries: ['de'] }, 'jurisdictions.eu.countries.0'],
    [
      'an expiry that is not a date',
      { exceptions: [{ allowCountries: ['ZA'], reason: 'a long enough reason', expires: 'soon' }] },
      'jurisdictions.eu.exceptions.0.expires',
    ],
  ])('rejects %s', (_name, patch, path) => {
    const input = minimal();
    input.jurisdictions.eu = { preset: 'eu-gdpr', ...patch };

    expect(issuesOf(() => parseConfig(input)).map((i) => i.path)).toContain(path);
  });

  it('rejects a bad account id and a bad role ARN at their own paths', () => {
    const input = minimal();
    input.clouds.aws.accounts[0] = { id: '12', roleArn: 'role/x', regions: ['eu-central-1'] };

    expect(issuesOf(() => parseConfig(input)).map((i) => i.path)).toEqual([
      'clouds.aws.accounts.0.id',
      'clouds.aws.accounts.0.roleArn',
    ]);
  });

  it('rejects two jurisdictions that claim the same country through a preset', () => {
    const input = minimal();
    input.jurisdictions.de = { countries: ['DE'] };

    const issues = issuesOf(() => parseConfig(input));

    expect(issues).toHaveLength(1);
    expect(issues[0]?.message).toMatch(/DE/);
  });

  it('rejects an evidence bucket outside its jurisdiction', () => {
    const input = minimal();
    input.jurisdictions.eu = { preset: 'eu-gdpr', evidence: { aws: { bucket: 'b', region: 'us-east-1' } } };

    expect(issuesOf(() => parseConfig(input))).toEqual([
      { path: 'jurisdictions.eu.evidence.aws.region', message: expect.stringMatching(/us-east-1/) },
    ]);
  });

  it('accepts an evidence bucket outside the jurisdiction when an exception allows its country', () => {
    const input = minimal();
    input.jurisdictions.ke = {
      preset: 'ke-dpa',
      evidence: { aws: { bucket: 'b', region: 'af-south-1' } },
      exceptions: [{ allowCountries: ['ZA'], reason: 'no in-country region yet', expires: '2020-01-01' }],
    };

    expect(() => parseConfig(input)).not.toThrow();
  });

  it('rejects a kubeconfig context whose region cannot be placed', () => {
    const input = {
      ...minimal(),
      clouds: {
        kubeconfig: [
          { alias: 'lab', file: 'k.yaml', contexts: [{ name: 'a', cloud: 'aws', region: 'moon-1' }] },
        ],
      },
    };

    expect(issuesOf(() => parseConfig(input)).map((i) => i.path)).toEqual([
      'clouds.kubeconfig.0.contexts.0.region',
    ]);
  });

  it('reports YAML syntax errors at their file, line and column', () => {
    const issues = issuesOf(() => parseConfigText('version: 1\nclouds: [\n', 'x.yaml'));

    expect(issues[0]?.path).toBe('x.yaml:3:1');
    expect(issues[0]?.message).not.toMatch(/line \d+/);
  });

  it('reports a missing file', async () => {
    const error = (await loadConfig('does-not-exist.yaml').catch((e: unknown) => e)) as ConfigError;

    expect(error.issues[0]?.message).toMatch(/no such file/);
  });

  it('exports a JSON Schema that describes every top-level section', () => {
    const schema = configJsonSchema() as {
      properties: Record<string, unknown>;
      additionalProperties: unknown;
    };

    expect(Object.keys(schema.properties).sort()).toEqual([
      'budgets',
      'clouds',
      'events',
      'jurisdictions',
      'kubeAccess',
      'policies',
      'slack',
      'stage',
      'state',
      'velero',
      'version',
    ]);
    expect(schema.additionalProperties).toBe(false);
    expect(JSON.parse(JSON.stringify(schema))).toEqual(schema);
  });

  it('never allows a webhook URL in the config itself', () => {
    const input = { ...minimal(), slack: { webhooks: { main: { url: 'https://example.invalid/hook' } } } };

    expect(issuesOf(() => parseConfig(input)).map((i) => i.path)).toContain('slack.webhooks.main.url');
    expect(readFileSync('fleet.example.yaml', 'utf8')).not.toMatch(/https:\/\/hooks\./);
  });
});

describe('config events', () => {
  it('accepts both event endpoints and fills the Google JWKS URL', () => {
    const config = parseConfig({
      ...minimal(),
      events: {
        gcp: {
          audience: 'https://events.example.com/gcp',
          serviceAccountEmail: 'push@p.iam.gserviceaccount.com',
        },
        azure: { auth: { type: 'secret', secret: { from: 'ssm', name: '/fleetward/eventgrid-secret' } } },
      },
    });

    expect(config.events?.gcp?.jwksUrl).toBe('https://www.googleapis.com/oauth2/v3/certs');
    expect(config.events?.gcp?.maxTokenAgeSec).toBe(3600);
    expect(config.events?.azure?.auth.type).toBe('secret');
  });

  it.each([
    [
      { azure: { auth: { type: 'entra', tenantId: 'not-a-guid', audience: 'api://x' } } },
      'events.azure.auth.tenantId',
    ],
    [{ azure: { auth: { type: 'basic' } } }, 'events.azure.auth.type'],
    [
      { gcp: { audience: 'https://x.example', serviceAccountEmail: 'nope' } },
      'events.gcp.serviceAccountEmail',
    ],
    [
      { gcp: { audience: 'https://x.example', serviceAccountEmail: 'a@b.example', typo: 1 } },
      'events.gcp.typo',
    ],
    [
      { gcp: { audience: 'https://x.example', serviceAccountEmail: 'a@b.example', maxTokenAgeSec: 7200 } },
      'events.gcp.maxTokenAgeSec',
    ],
    [
      {
        azure: {
          auth: {
            type: 'entra',
            tenantId: '99999999-8888-7777-6666-555555555555',
            audience: 'api://x',
            clientAppId: 'event-grid',
          },
        },
      },
      'events.azure.auth.clientAppId',
    ],
  ])('names the bad field of events %j', (events, path) => {
    const issues = issuesOf(() => parseConfig({ ...minimal(), events }));

    expect(issues.map((i) => i.path)).toContain(path);
  });
});
