import { describe, expect, it } from 'vitest';
import type { RegionCloud } from '../../shared/model.ts';
import { UNASSIGNED } from '../../shared/model.ts';
import {
  assertResidency,
  normaliseRegion,
  PRESETS,
  Residency,
  type ResidencyJurisdiction,
  regionCountry,
  regionsInCountry,
} from '../../shared/residency/index.ts';
import { ConfigError, ResidencyError } from '../../shared/runtime/errors.ts';

const PRESET_JURISDICTIONS: Record<string, ResidencyJurisdiction> = {
  eu: { preset: 'eu-gdpr', exceptions: [] },
  in: { preset: 'in-dpdp', exceptions: [] },
  za: { preset: 'za-popia', exceptions: [] },
  ke: { preset: 'ke-dpa', exceptions: [] },
};

/** A fixed clock at noon UTC of the given day. */
const at = (day: string) => () => new Date(`${day}T12:00:00Z`);

/** Runs `act` and returns the ResidencyError it throws (fails the test when it does not throw one). */
function residencyErrorOf(act: () => unknown): ResidencyError {
  try {
    act();
  } catch (error) {
    expect(error).toBeInstanceOf(ResidencyError);
    return error as ResidencyError;
  }
  throw new Error('expected a ResidencyError, nothing was thrown');
}

describe('PRESETS', () => {
  it('covers the EU-27 and the EEA (30 countries) for eu-gdpr', () => {
    // Prepare / Act
    const countries = PRESETS['eu-gdpr'].countries;

    // Assess
    expect(countries).toHaveLength(30);
    expect(new Set(countries).size).toBe(30);
    expect(countries).toEqual(expect.arrayContaining(['DE', 'FR', 'GR', 'IE', 'IS', 'LI', 'NO']));
    expect(countries).not.toContain('GB');
    expect(countries).not.toContain('CH');
  });

  it.each([
    ['in-dpdp', 'IN', 'Digital Personal Data Protection Act, 2023'],
    ['za-popia', 'ZA', 'Protection of Personal Information Act, 2013'],
    ['ke-dpa', 'KE', 'Data Protection Act, 2019'],
  ] as const)('names the law and country of %s', (preset, country, law) => {
    // Act
    const found = PRESETS[preset];

    // Assess
    expect(found.countries).toEqual([country]);
    expect(found.law).toBe(law);
  });
});

describe('normaliseRegion', () => {
  it.each<[RegionCloud, string, string]>([
    ['aws', 'eu-west-1', 'eu-west-1'],
    ['aws', 'eu-west-1a', 'eu-west-1'],
    ['aws', 'us-gov-west-1b', 'us-gov-west-1'],
    ['aws', 'eusc-de-east-1a', 'eusc-de-east-1'],
    ['aws', 'us-west-2-lax-1a', 'us-west-2-lax-1a'],
    ['aws', ' EU-CENTRAL-1 ', 'eu-central-1'],
    ['aws', 'us-east-1-bos-1a', 'us-east-1-bos-1a'],
    ['gcp', 'europe-west1', 'europe-west1'],
    ['gcp', 'europe-west1-b', 'europe-west1'],
    ['gcp', 'us-central1-c', 'us-central1'],
    ['azure', 'West Europe', 'westeurope'],
    ['azure', 'Australia Central 2', 'australiacentral2'],
    ['azure', 'germanywestcentral', 'germanywestcentral'],
  ])('normalises %s %j to %j', (cloud, region, expected) => {
    // Act
    const normalised = normaliseRegion(cloud, region);

    // Assess
    expect(normalised).toBe(expected);
  });
});

describe('regionCountry', () => {
  it.each<[RegionCloud, string, string | undefined]>([
    ['aws', 'eu-central-1', 'DE'],
    ['aws', 'eu-central-1b', 'DE'],
    ['aws', 'ap-east-2', 'TW'],
    ['aws', 'cn-northwest-1', 'CN'],
    ['aws', 'eusc-de-east-1', 'DE'],
    ['aws', 'us-east-1-bos-1a', undefined],
    ['aws', 'eu-nowhere-9', undefined],
    ['gcp', 'asia-east1-a', 'TW'],
    ['gcp', 'me-central2', 'SA'],
    ['gcp', 'eu', undefined],
    ['azure', 'West Europe', 'NL'],
    ['azure', 'jioindiawest', 'IN'],
    ['azure', 'constructor', undefined],
    ['azure', 'toString', undefined],
  ])('places %s %j in %j', (cloud, region, expected) => {
    // Act
    const country = regionCountry(cloud, region);

    // Assess
    expect(country).toBe(expected);
  });
});

describe('regionsInCountry', () => {
  it('lists the regions of every cloud in a country', () => {
    // Act
    const southAfrica = regionsInCountry('za');

    // Assess
    expect(southAfrica).toEqual([
      { cloud: 'aws', region: 'af-south-1' },
      { cloud: 'gcp', region: 'africa-south1' },
      { cloud: 'azure', region: 'southafricanorth' },
      { cloud: 'azure', region: 'southafricawest' },
    ]);
    expect(regionsInCountry('KE')).toEqual([]);
  });
});

describe('Residency', () => {
  describe('place', () => {
    it.each<[RegionCloud, string, string | null, string]>([
      ['aws', 'eu-west-1', 'IE', 'eu'],
      ['aws', 'eu-west-1a', 'IE', 'eu'],
      ['aws', 'ap-south-2', 'IN', 'in'],
      ['aws', 'af-south-1', 'ZA', 'za'],
      ['aws', 'us-east-1', 'US', UNASSIGNED],
      ['aws', 'eu-west-2', 'GB', UNASSIGNED],
      ['aws', 'eu-nowhere-9', null, UNASSIGNED],
      ['gcp', 'europe-west3-a', 'DE', 'eu'],
      ['gcp', 'asia-south2', 'IN', 'in'],
      ['gcp', 'africa-south1-b', 'ZA', 'za'],
      ['gcp', 'us-central1', 'US', UNASSIGNED],
      ['azure', 'West Europe', 'NL', 'eu'],
      ['azure', 'Central India', 'IN', 'in'],
      ['azure', 'southafricanorth', 'ZA', 'za'],
      ['azure', 'eastus', 'US', UNASSIGNED],
    ])('places %s %j in country %j, jurisdiction %j', (cloud, region, country, jurisdiction) => {
      // Prepare
      const residency = new Residency(PRESET_JURISDICTIONS);

      // Act
      const placement = residency.place(cloud, region);

      // Assess
      expect(placement).toEqual({ country, jurisdiction });
    });

    it('places a country in a user-defined jurisdiction', () => {
      // Prepare
      const residency = new Residency({ ch: { name: 'Switzerland', countries: ['CH'], exceptions: [] } });

      // Act
      const placement = residency.place('gcp', 'europe-west6-a');

      // Assess
      expect(placement).toEqual({ country: 'CH', jurisdiction: 'ch' });
      expect(residency.countries('ch')).toEqual(['CH']);
    });

    it('uses explicit countries instead of the preset list', () => {
      // Prepare
      const residency = new Residency({ de: { preset: 'eu-gdpr', countries: ['DE'], exceptions: [] } });

      // Act
      const frankfurt = residency.place('aws', 'eu-central-1');
      const dublin = residency.place('aws', 'eu-west-1');

      // Assess
      expect(frankfurt.jurisdiction).toBe('de');
      expect(dublin.jurisdiction).toBe(UNASSIGNED);
      expect(residency.countries('de')).toEqual(['DE']);
    });
  });

  describe('jurisdictionForCountry', () => {
    it.each([
      ['DE', 'eu'],
      ['de', 'eu'],
      ['KE', 'ke'],
      ['US', UNASSIGNED],
      [null, UNASSIGNED],
      [undefined, UNASSIGNED],
      ['', UNASSIGNED],
    ])('puts %j in %j', (country, expected) => {
      // Prepare
      const residency = new Residency(PRESET_JURISDICTIONS);

      // Act
      const jurisdiction = residency.jurisdictionForCountry(country);

      // Assess
      expect(jurisdiction).toBe(expected);
    });
  });

  describe('constructor', () => {
    it.each<[string, Record<string, ResidencyJurisdiction>, string]>([
      [
        'two jurisdictions claim a country',
        { eu: { preset: 'eu-gdpr' }, de: { countries: ['DE'] } },
        'jurisdictions.de.countries',
      ],
      ['a jurisdiction has neither preset nor countries', { x: {} }, 'jurisdictions.x.countries'],
      ['the reserved id is used', { [UNASSIGNED]: { countries: ['US'] } }, `jurisdictions.${UNASSIGNED}`],
    ])('refuses a config where %s', (_case, jurisdictions, path) => {
      // Act
      const act = () => new Residency(jurisdictions);

      // Assess
      expect(act).toThrow(ConfigError);
      expect(act).toThrow(expect.objectContaining({ issues: [expect.objectContaining({ path })] }));
    });
  });

  describe('liveExceptions / expiredExceptions', () => {
    it('keeps an exception live through the end of its expiry day (UTC)', () => {
      // Prepare
      const exception = { allowCountries: ['ZA'], reason: 'no in-country region yet', expires: '2026-03-31' };
      const config = { ke: { preset: 'ke-dpa', exceptions: [exception] } } as const;
      const lastMoment = new Residency(config, { now: () => new Date('2026-03-31T23:59:59.999Z') });
      const nextDay = new Residency(config, { now: () => new Date('2026-04-01T00:00:00.000Z') });

      // Act / Assess
      expect(lastMoment.liveExceptions('ke')).toEqual([exception]);
      expect(lastMoment.expiredExceptions('ke')).toEqual([]);
      expect(nextDay.liveExceptions('ke')).toEqual([]);
      expect(nextDay.expiredExceptions('ke')).toEqual([exception]);
    });
  });
});

describe('assertResidency', () => {
  const kenyaToSouthAfrica = {
    allowCountries: ['ZA'],
    reason: 'Kenya has no in-country public cloud region',
    expires: '2026-06-30',
  };
  const withException: Record<string, ResidencyJurisdiction> = {
    ...PRESET_JURISDICTIONS,
    ke: { preset: 'ke-dpa', exceptions: [kenyaToSouthAfrica] },
  };

  it.each<[string, RegionCloud, string, string]>([
    ['eu', 'aws', 'eu-central-1', 'DE'],
    ['eu', 'gcp', 'europe-west1-b', 'BE'],
    ['eu', 'azure', 'Sweden Central', 'SE'],
    ['in', 'azure', 'centralindia', 'IN'],
    ['za', 'gcp', 'africa-south1', 'ZA'],
  ])('accepts a %s bucket in %s %s', (jurisdiction, cloud, region, country) => {
    // Prepare
    const residency = new Residency(PRESET_JURISDICTIONS);

    // Act
    const decision = residency.assertResidency({ jurisdiction }, { cloud, region, what: 'evidence bucket' });

    // Assess
    expect(decision).toEqual({ country });
  });

  it('refuses a bucket outside the jurisdiction', () => {
    // Prepare
    const residency = new Residency(PRESET_JURISDICTIONS);

    // Act
    const error = residencyErrorOf(() =>
      residency.assertResidency(
        { jurisdiction: 'eu', clusterId: 'aws/123456789012/eu-west-1/prod' },
        { cloud: 'aws', region: 'us-east-1', what: 'evidence bucket' },
      ),
    );

    // Assess
    expect(error.jurisdiction).toBe('eu');
    expect(error.targetRegion).toBe('us-east-1');
    expect(error.targetCountry).toBe('US');
    expect(error.message).toMatch(
      /^refusing to write evidence bucket of cluster aws\/123456789012\/eu-west-1\/prod/,
    );
    expect(error.message).toContain('US is outside jurisdiction "eu"');
  });

  it('refuses an adequacy country (GB) that no exception allows', () => {
    // Prepare
    const residency = new Residency(PRESET_JURISDICTIONS);

    // Act
    const error = residencyErrorOf(() =>
      residency.assertResidency({ jurisdiction: 'eu' }, { cloud: 'azure', region: 'uksouth' }),
    );

    // Assess
    expect(error.targetCountry).toBe('GB');
  });

  it.each<[RegionCloud, string]>([
    ['aws', 'eu-nowhere-9'],
    ['aws', 'eu-central-1-ham-1a'],
    ['gcp', 'eu'],
    ['azure', 'westeurope2'],
    ['azure', '__proto__'],
  ])('refuses an unknown %s region %j', (cloud, region) => {
    // Prepare
    const residency = new Residency(PRESET_JURISDICTIONS);

    // Act
    const error = residencyErrorOf(() =>
      residency.assertResidency({ jurisdiction: 'eu' }, { cloud, region }),
    );

    // Assess
    expect(error.targetCountry).toBeUndefined();
    expect(error.message).toContain(`unknown ${cloud} region`);
  });

  it.each([UNASSIGNED, 'nowhere'])('refuses a source in jurisdiction %j', (jurisdiction) => {
    // Prepare
    const residency = new Residency(PRESET_JURISDICTIONS);

    // Act
    const error = residencyErrorOf(() =>
      residency.assertResidency({ jurisdiction }, { cloud: 'aws', region: 'eu-central-1' }),
    );

    // Assess
    expect(error.jurisdiction).toBe(jurisdiction);
    expect(error.message).toMatch(/^refusing to write cluster data to aws region eu-central-1: /);
  });

  it('accepts a country allowed by a live exception', () => {
    // Prepare
    const residency = new Residency(withException, { now: at('2026-06-30') });

    // Act
    const decision = residency.assertResidency(
      { jurisdiction: 'ke' },
      { cloud: 'aws', region: 'af-south-1' },
    );

    // Assess
    expect(decision).toEqual({ country: 'ZA', viaException: kenyaToSouthAfrica });
  });

  it('refuses a country whose exception has expired, saying so', () => {
    // Prepare
    const residency = new Residency(withException, { now: at('2026-07-01') });

    // Act
    const error = residencyErrorOf(() =>
      residency.assertResidency(
        { jurisdiction: 'ke' },
        { cloud: 'aws', region: 'af-south-1', what: 'backup' },
      ),
    );

    // Assess
    expect(error.targetCountry).toBe('ZA');
    expect(error.message).toContain('the exception allowing it expired on 2026-06-30');
  });

  it('refuses a country a live exception does not name', () => {
    // Prepare
    const residency = new Residency(withException, { now: at('2026-01-01') });

    // Act
    const error = residencyErrorOf(() =>
      residency.assertResidency({ jurisdiction: 'ke' }, { cloud: 'gcp', region: 'europe-west4' }),
    );

    // Assess
    expect(error.targetCountry).toBe('NL');
    expect(error.message).toContain('no exception allows it');
  });

  it('guards a user-defined jurisdiction through the free function', () => {
    // Prepare
    const residency = new Residency({
      dach: { name: 'DACH', countries: ['DE', 'AT', 'CH'], exceptions: [] },
    });

    // Act
    const zurich = assertResidency(
      residency,
      { jurisdiction: 'dach' },
      { cloud: 'aws', region: 'eu-central-2' },
    );
    const act = () =>
      assertResidency(residency, { jurisdiction: 'dach' }, { cloud: 'gcp', region: 'europe-west4' });

    // Assess
    expect(zurich).toEqual({ country: 'CH' });
    expect(act).toThrow(ResidencyError);
  });
});

describe('findings', () => {
  it('reports a jurisdiction without an in-country region (Kenya)', () => {
    // Prepare
    const residency = new Residency(PRESET_JURISDICTIONS, { now: at('2026-01-01') });

    // Act
    const findings = residency.findings();

    // Assess
    expect(findings).toEqual([
      {
        jurisdiction: 'ke',
        kind: 'no-in-country-region',
        message: expect.stringContaining('"ke" (KE) has no region'),
      },
    ]);
  });

  it('reports nothing for Kenya while a live exception allows a country with regions', () => {
    // Prepare
    const residency = new Residency(
      {
        ke: {
          preset: 'ke-dpa',
          exceptions: [{ allowCountries: ['ZA'], reason: 'interim hosting', expires: '2026-12-31' }],
        },
      },
      { now: at('2026-01-01') },
    );

    // Act
    const findings = residency.findings();

    // Assess
    expect(findings).toEqual([]);
  });

  it('reports both the missing region and the expired exception once it lapses', () => {
    // Prepare
    const residency = new Residency(
      {
        ke: {
          preset: 'ke-dpa',
          exceptions: [{ allowCountries: ['ZA'], reason: 'interim hosting', expires: '2025-12-31' }],
        },
      },
      { now: at('2026-01-01') },
    );

    // Act
    const kinds = residency.findings().map((f) => f.kind);

    // Assess
    expect(kinds).toEqual(['no-in-country-region', 'exception-expired']);
  });

  it('reports an expired exception of a jurisdiction that has regions', () => {
    // Prepare
    const residency = new Residency(
      {
        eu: {
          preset: 'eu-gdpr',
          exceptions: [{ allowCountries: ['GB'], reason: 'adequacy decision', expires: '2025-06-27' }],
        },
      },
      { now: at('2026-01-01') },
    );

    // Act
    const findings = residency.findings();

    // Assess
    expect(findings).toEqual([
      {
        jurisdiction: 'eu',
        kind: 'exception-expired',
        message: 'exception of jurisdiction "eu" allowing GB expired on 2025-06-27 (adequacy decision)',
      },
    ]);
  });
});
