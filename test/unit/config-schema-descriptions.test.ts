import { Ajv2020 } from 'ajv/dist/2020.js';
import { describe, expect, it } from 'vitest';
import { configJsonSchema } from '../../shared/config/load.ts';
import { type Schema, type SchemaNode, undescribedFields, walkSchema } from './json-schema-walk.ts';

const nodes = (schema: Schema): SchemaNode[] => {
  const all: SchemaNode[] = [];
  walkSchema(schema, (node) => all.push(node));
  return all;
};
const at = (schema: Schema, path: string): Schema | undefined =>
  nodes(schema).find((n) => n.path === path)?.schema;

describe('config schema descriptions', () => {
  const schema = configJsonSchema();
  const fields = nodes(schema).filter((n) => n.field);

  it('describes every field of the exported fleet.yaml schema', () => {
    expect(undescribedFields(schema)).toEqual([]);
  });

  it('reaches fields inside arrays, records and union branches', () => {
    const paths = fields.map((f) => f.path);

    expect(paths).toEqual(
      expect.arrayContaining([
        '(root)',
        'clouds.aws.accounts[].roleArn',
        'clouds.azure.credential<aws-federation>.tokenLifetimeSec',
        'jurisdictions.*',
        'jurisdictions.*.backup.schedule',
        'jurisdictions.*.exceptions[].expires',
        'policies.tags.required.*.pattern',
        'slack.webhooks.*.name',
        'budgets[]<gcp>.scope.labels.*',
        'events.azure.auth<entra>.audience',
        'state<dynamodb>.region',
      ]),
    );
    expect(fields.length).toBeGreaterThan(200);
  });

  it('writes each description as a sentence, not a placeholder', () => {
    const poor = fields
      .map(({ path, schema: s }) => ({ path, description: String(s.description) }))
      .filter(({ description }) => description.length < 12 || !description.endsWith('.'));

    expect(poor).toEqual([]);
  });

  it.each([
    ['clouds.aws.concurrency', 16],
    ['clouds.aws.homeRegion', 'us-east-1'],
    ['jurisdictions.*.backup.schedule', 'rate(1 day)'],
    ['jurisdictions.*.backup.includedNamespaces', ['*']],
    ['clouds.azure.credential', { type: 'default' }],
    ['state', { type: 'sqlite', path: '.fleetward/state.db' }],
  ])('shows the default of %s', (path, value) => {
    expect(at(schema, path)?.default).toEqual(value);
  });

  it.each([
    ['clouds.aws.accounts[].regions', ['eu-central-1', 'eu-west-1']],
    ['jurisdictions.*.evidence.gcp.location', 'europe-west3'],
    ['jurisdictions.*.backup.schedule', 'rate(6 hours)'],
    ['jurisdictions.*.exceptions[].expires', '2027-06-30'],
    ['kubeAccess.overrides[].cluster', 'aws/111111111111/eu-central-1/payments'],
  ])('gives %s an example', (path, example) => {
    expect(at(schema, path)?.examples).toContainEqual(example);
  });

  it('gives only examples that the field itself accepts', () => {
    const ajv = new Ajv2020({ strict: false, validateFormats: false });
    const withExamples = nodes(schema).filter((n) => Array.isArray(n.schema.examples));
    const invalid = withExamples.flatMap(({ path, schema: s }) => {
      const validate = ajv.compile({ ...s, $schema: undefined });
      return (s.examples as unknown[])
        .filter((e) => !validate(e))
        .map((e) => `${path}: ${JSON.stringify(e)}`);
    });

    expect(withExamples.length).toBeGreaterThan(40);
    expect(invalid).toEqual([]);
  });
});

describe('undescribedFields', () => {
  const described = (extra: Schema = {}): Schema => ({ type: 'string', description: 'A field.', ...extra });

  it('passes a schema whose every field is described, a $ref to a described definition included', () => {
    const schema: Schema = {
      description: 'Root.',
      type: 'object',
      properties: {
        name: described(),
        site: { $ref: '#/$defs/Site' },
        sites: { description: 'Sites.', type: 'array', items: { $ref: '#/$defs/Site' } },
      },
      $defs: { Site: { description: 'A site.', type: 'object', properties: { code: described() } } },
    };

    expect(undescribedFields(schema)).toEqual([]);
  });

  it.each<[string, Schema, string[]]>([
    ['the root', { type: 'object' }, ['(root)']],
    ['a property', { description: 'Root.', properties: { a: described(), b: { type: 'string' } } }, ['b']],
    [
      'a property named like a keyword',
      { description: 'Root.', properties: { description: { type: 'string' }, default: described() } },
      ['description'],
    ],
    [
      'a property of array items',
      {
        description: 'Root.',
        properties: {
          list: { description: 'List.', type: 'array', items: { properties: { id: { type: 'string' } } } },
        },
      },
      ['list[].id'],
    ],
    [
      'a record value',
      {
        description: 'Root.',
        properties: { map: { description: 'Map.', additionalProperties: { type: 'number' } } },
      },
      ['map.*'],
    ],
    ['a pattern property', { description: 'Root.', patternProperties: { '^x-': { type: 'string' } } }, ['*']],
    [
      'a property of union branches',
      {
        description: 'Root.',
        properties: {
          auth: {
            description: 'Auth.',
            oneOf: [
              { properties: { type: described({ const: 'secret' }), secret: { type: 'string' } } },
              { properties: { type: { type: 'string', enum: ['token'] } } },
            ],
            anyOf: [{ properties: { x: { type: 'string' } } }],
            allOf: [{ properties: { y: { type: 'string' } } }],
          },
        },
      },
      ['auth<anyOf 0>.x', 'auth<secret>.secret', 'auth<token>.type', 'auth<allOf 0>.y'],
    ],
    [
      'a property of a definition, and a $ref to an undescribed definition',
      {
        description: 'Root.',
        properties: { site: { $ref: '#/definitions/Site' } },
        definitions: { Site: { type: 'object', properties: { code: { type: 'string' } } } },
      },
      ['site', '#/definitions/Site.code'],
    ],
    [
      'a blank description',
      { description: 'Root.', properties: { a: { type: 'string', description: '  ' } } },
      ['a'],
    ],
  ])('names %s without a description', (_what, schema, missing) => {
    expect(undescribedFields(schema)).toEqual(missing);
  });
});
