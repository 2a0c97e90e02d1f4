/** The audit-digest function's generated IAM: KMS Sign on the jurisdiction's digest key only, digests in the evidence bucket. */
import { beforeAll, describe, expect, it } from 'vitest';
import { allGrants } from '../../shared/clouds/grants.ts';
import { loadConfig } from '../../shared/config/load.ts';
import type { FleetConfig } from '../../shared/config/schema.ts';
import { FUNCTIONS } from '../../shared/deploy/functions.ts';
import { functionStatements } from '../../shared/deploy/generate.ts';

describe('audit-digest IAM', () => {
  let base: FleetConfig;
  beforeAll(async () => {
    base = await loadConfig('fleet.example.yaml');
  });
  const spec = FUNCTIONS.find((f) => f.name === 'audit-digest')!;
  const withKey = (digestKey: string | undefined): FleetConfig => ({
    ...base,
    jurisdictions: {
      ...base.jurisdictions,
      eu: { ...base.jurisdictions.eu!, audit: { ...base.jurisdictions.eu!.audit, digestKey } },
    },
  });
  const statements = (config: FleetConfig, jurisdiction = 'eu') =>
    functionStatements(
      { config, jurisdiction, fnName: 'audit-digest', fn: {}, spec, appConfigArn: 'arn:profile' },
      allGrants(),
    );
  const kms = (config: FleetConfig) =>
    statements(config).filter((s) => s.Action.some((a) => a.startsWith('kms:')));

  it('is regional only, and signs with the key the config names, by key ARN', () => {
    const key = 'arn:aws:kms:eu-central-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab';

    expect(spec.roles).toEqual(['regional']);
    expect(kms(withKey(key))).toEqual([
      { Effect: 'Allow', Action: ['kms:GetPublicKey', 'kms:Sign'], Resource: [key] },
    ]);
  });

  it('holds a key named by alias to keys bearing that alias', () => {
    const alias = 'arn:aws:kms:eu-central-1:111122223333:alias/fleetward-audit-digests';

    expect(kms(withKey(alias))).toEqual([
      {
        Effect: 'Allow',
        Action: ['kms:GetPublicKey', 'kms:Sign'],
        Resource: [{ 'Fn::Sub': `arn:\${AWS::Partition}:kms:eu-central-1:111122223333:key/*` }],
        Condition: {
          'ForAnyValue:StringEquals': { 'kms:ResourceAliases': ['alias/fleetward-audit-digests'] },
        },
      },
    ]);
  });

  it('gets no KMS grant at all without a digest key (and no other function gets one)', () => {
    const key = 'arn:aws:kms:eu-central-1:111122223333:key/k';
    const others = FUNCTIONS.filter((f) => f.name !== 'audit-digest' && f.roles.includes('regional'));

    expect(kms(withKey(undefined))).toEqual([]);
    for (const other of others) {
      const s = functionStatements(
        {
          config: withKey(key),
          jurisdiction: 'eu',
          fnName: other.name,
          fn: {},
          spec: other,
          appConfigArn: 'arn:profile',
        },
        allGrants(),
      );
      expect(
        s.flatMap((x) => x.Action).filter((a) => a.startsWith('kms:')),
        other.name,
      ).toEqual([]);
    }
  });

  it('may write digests (and their public keys) in the evidence bucket', () => {
    const put = statements(withKey(undefined)).find((s) => s.Action.includes('s3:PutObject'));

    expect(JSON.stringify(put?.Resource)).toContain('/digests/*');
  });
});
