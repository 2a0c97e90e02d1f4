/**
 * What a deployed function takes from its environment: the state table in the function's own
 * region (a regional deployment keeps its state in its jurisdiction), and the evidence bucket's
 * owner account in the config.
 */
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../shared/config/load.ts';
import { stateConfig } from '../../shared/runtime/deps.ts';
import { ConfigError, FleetwardError } from '../../shared/runtime/errors.ts';

const config = (evidenceAws: Record<string, unknown> = { bucket: 'evidence-in', region: 'ap-south-1' }) =>
  parseConfig({
    version: 1,
    clouds: {
      aws: {
        accounts: [
          { id: '111111111111', roleArn: 'arn:aws:iam::111111111111:role/r', regions: ['ap-south-1'] },
        ],
      },
    },
    jurisdictions: { in: { preset: 'in-dpdp', evidence: { aws: evidenceAws } } },
  });

describe('stateConfig', () => {
  it.each([
    ['ap-south-1', 'in'],
    ['eu-central-1', 'eu'],
    ['af-south-1', 'za'],
  ])('puts the state table in the function region %s (the %s regional deployment)', (region) => {
    const state = stateConfig(config(), {
      FLEETWARD_STATE_TABLE: 'fleetward-prod-state',
      AWS_REGION: region,
    });

    expect(state).toEqual({ type: 'dynamodb', table: 'fleetward-prod-state', region });
  });

  it('prefers AWS_REGION over AWS_DEFAULT_REGION, and uses the latter when alone', () => {
    const both = { FLEETWARD_STATE_TABLE: 't', AWS_REGION: 'ap-south-1', AWS_DEFAULT_REGION: 'us-east-1' };
    const only = { FLEETWARD_STATE_TABLE: 't', AWS_DEFAULT_REGION: 'eu-west-1' };

    expect(stateConfig(config(), both)).toMatchObject({ region: 'ap-south-1' });
    expect(stateConfig(config(), only)).toMatchObject({ region: 'eu-west-1' });
  });

  it('refuses a state table without a region instead of guessing one', () => {
    expect(() => stateConfig(config(), { FLEETWARD_STATE_TABLE: 't' })).toThrow(FleetwardError);
    expect(() => stateConfig(config(), { FLEETWARD_STATE_TABLE: 't' })).toThrow(/AWS_REGION is not/);
  });

  it('keeps the configured store when no table is deployed', () => {
    expect(stateConfig(config(), { AWS_REGION: 'ap-south-1' })).toEqual({
      type: 'sqlite',
      path: '.fleetward/state.db',
    });
  });
});

describe('evidence bucket owner account', () => {
  it('accepts a 12-digit owner account', () => {
    const parsed = config({ bucket: 'evidence-in', region: 'ap-south-1', account: '222233334444' });

    expect(parsed.jurisdictions.in?.evidence?.aws?.account).toBe('222233334444');
  });

  it('rejects an owner account that is not 12 digits, naming the field', () => {
    const error = (() => {
      try {
        config({ bucket: 'evidence-in', region: 'ap-south-1', account: '1234' });
      } catch (e) {
        return e;
      }
    })();

    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).issues).toEqual([
      {
        path: 'jurisdictions.in.evidence.aws.account',
        message: 'expected a 12-digit AWS account id, found "1234"',
      },
    ]);
  });
});
