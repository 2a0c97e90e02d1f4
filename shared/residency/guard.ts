/**
 * Residency: which jurisdiction a region belongs to, and the one guard every write of
 * cluster data (evidence, backups, drill restores) goes through before it happens.
 *
 * The guard refuses rather than assumes: an unknown region, an unassigned cluster or
 * an unknown jurisdiction is a refusal, and an exception only counts while it is live.
 */
import type { JurisdictionConfig, ResidencyException } from '../config/schema.ts';
import { type RegionCloud, UNASSIGNED } from '../model.ts';
import { ConfigError, type ConfigIssue, ResidencyError } from '../runtime/errors.ts';
import { PRESETS, type PresetId } from './jurisdictions.ts';
import { REGIONS } from './regions.ts';

const CLOUDS_WITH_REGIONS = Object.keys(REGIONS) as RegionCloud[];

/** Countries that host at least one region of some cloud. */
const COUNTRIES_WITH_REGIONS: ReadonlySet<string> = new Set(
  CLOUDS_WITH_REGIONS.flatMap((cloud) => Object.values(REGIONS[cloud]).map((info) => info.country)),
);

/**
 * `eu-west-1a` → `eu-west-1`, `us-gov-west-1b` → `us-gov-west-1`, `eusc-de-east-1a` → `eusc-de-east-1`
 * (Local Zones such as `us-east-1-bos-1a` are left alone).
 */
const AWS_ZONE = /^([a-z]{2,4}(?:-[a-z]{2,3})?-[a-z]+-\d+)[a-z]$/;
/** `europe-west1-b` → `europe-west1`. */
const GCP_ZONE = /^([a-z]+-[a-z]+\d+)-[a-z]$/;

/**
 * Normalises a region name to the form the region table uses: lower-case and trimmed;
 * an AWS availability zone (`eu-west-1a`) or a GCP zone (`europe-west1-b`) becomes its
 * region; an Azure display name (`West Europe`) becomes its programmatic name
 * (`westeurope`). AWS Local and Wavelength Zones are not mapped to their parent region:
 * they can stand in another country, so they stay unknown.
 */
export function normaliseRegion(cloud: RegionCloud, region: string): string {
  const name = region.trim().toLowerCase();
  switch (cloud) {
    case 'aws':
      return AWS_ZONE.exec(name)?.[1] ?? name;
    case 'gcp':
      return GCP_ZONE.exec(name)?.[1] ?? name;
    case 'azure':
      return name.replace(/\s+/g, '');
  }
}

/** The ISO 3166-1 alpha-2 country of a region or zone, or `undefined` when the table does not know it. */
export function regionCountry(cloud: RegionCloud, region: string): string | undefined {
  const table = REGIONS[cloud];
  const name = normaliseRegion(cloud, region);
  return Object.hasOwn(table, name) ? table[name]?.country : undefined;
}

/** Every region of every cloud in a country (upper-case ISO code), in table order. */
export function regionsInCountry(country: string): { cloud: RegionCloud; region: string }[] {
  const code = country.trim().toUpperCase();
  return CLOUDS_WITH_REGIONS.flatMap((cloud) =>
    Object.entries(REGIONS[cloud])
      .filter(([, info]) => info.country === code)
      .map(([region]) => ({ cloud, region })),
  );
}

/** What `Residency` needs of a jurisdiction; a validated `JurisdictionConfig` fits. */
export type ResidencyJurisdiction = Pick<JurisdictionConfig, 'preset' | 'name' | 'countries'> & {
  exceptions?: readonly ResidencyException[] | undefined;
};

/** Where a write of cluster data comes from: the cluster's jurisdiction (and id, for messages). */
export interface ResidencySource {
  jurisdiction: string;
  clusterId?: string;
}

/** Where a write of cluster data would go; `what` names it in messages (`evidence bucket`, `backup`). */
export interface ResidencyTarget {
  cloud: RegionCloud;
  region: string;
  what?: string;
}

/** A write the guard allowed: the target's country, and the live exception that allowed it when outside the jurisdiction. */
export interface ResidencyDecision {
  country: string;
  viaException?: ResidencyException;
}

/** Where a region belongs: its country (`null` when the table does not know the region) and jurisdiction (or `unassigned`). */
export interface Placement {
  country: string | null;
  jurisdiction: string;
}

/** A standing residency problem worth telling a human about. */
export interface ResidencyFinding {
  jurisdiction: string;
  kind: 'no-in-country-region' | 'exception-expired';
  message: string;
}

interface ResolvedJurisdiction {
  countries: readonly string[];
  exceptions: readonly ResidencyException[];
}

/** Today's date in UTC as `YYYY-MM-DD`, comparable with an exception's `expires`. */
function utcDay(date: Date): string {
  return date.toISOString().slice(0, 10);
}

/**
 * The configured jurisdictions, resolved to countries, and the residency guard.
 * Construct it once per run from the validated config; `now` is injectable for tests.
 */
export class Residency {
  readonly #jurisdictions: ReadonlyMap<string, ResolvedJurisdiction>;
  readonly #byCountry: ReadonlyMap<string, string>;
  readonly #now: () => Date;

  /**
   * @throws ConfigError when a jurisdiction uses the reserved id `unassigned`, has
   *   neither a preset nor countries, names an unknown preset, or claims a country
   *   another jurisdiction (explicitly or through its preset) already covers.
   */
  constructor(jurisdictions: Record<string, ResidencyJurisdiction>, options: { now?: () => Date } = {}) {
    this.#now = options.now ?? (() => new Date());
    const resolved = new Map<string, ResolvedJurisdiction>();
    const byCountry = new Map<string, string>();
    const issues: ConfigIssue[] = [];
    for (const [id, config] of Object.entries(jurisdictions)) {
      const path = `jurisdictions.${id}`;
      if (id === UNASSIGNED) {
        issues.push({ path, message: `"${UNASSIGNED}" is reserved` });
        continue;
      }
      const countries = this.#resolveCountries(config, path, issues);
      for (const country of countries) {
        const other = byCountry.get(country);
        if (other !== undefined && other !== id) {
          issues.push({
            path: `${path}.countries`,
            message: `country ${country} is already covered by jurisdiction "${other}"`,
          });
        } else {
          byCountry.set(country, id);
        }
      }
      resolved.set(id, {
        countries: Object.freeze([...new Set(countries)]),
        exceptions: config.exceptions ?? [],
      });
    }
    if (issues.length > 0) throw new ConfigError(issues);
    this.#jurisdictions = resolved;
    this.#byCountry = byCountry;
  }

  #resolveCountries(config: ResidencyJurisdiction, path: string, issues: ConfigIssue[]): string[] {
    if (config.countries !== undefined) return config.countries.map((c) => c.toUpperCase());
    if (config.preset === undefined) {
      issues.push({ path: `${path}.countries`, message: 'expected a preset or a list of countries' });
      return [];
    }
    if (!Object.hasOwn(PRESETS, config.preset)) {
      issues.push({ path: `${path}.preset`, message: `unknown preset "${config.preset}"` });
      return [];
    }
    return [...PRESETS[config.preset as PresetId].countries];
  }

  /** The ids of the configured jurisdictions. */
  get ids(): readonly string[] {
    return [...this.#jurisdictions.keys()];
  }

  /** The jurisdiction covering a country (ISO alpha-2, any case), or `unassigned`. */
  jurisdictionForCountry(country: string | null | undefined): string {
    if (!country) return UNASSIGNED;
    return this.#byCountry.get(country.trim().toUpperCase()) ?? UNASSIGNED;
  }

  /** Where a region or zone belongs; an unknown region has country `null` and is `unassigned`. */
  place(cloud: RegionCloud, region: string): Placement {
    const country = regionCountry(cloud, region) ?? null;
    return { country, jurisdiction: this.jurisdictionForCountry(country) };
  }

  /** The countries a jurisdiction covers (empty for an unknown id). */
  countries(jurisdiction: string): readonly string[] {
    return this.#jurisdictions.get(jurisdiction)?.countries ?? [];
  }

  /** Exceptions of a jurisdiction that still hold: an exception is live through the end of its `expires` day (UTC). */
  liveExceptions(jurisdiction: string): ResidencyException[] {
    const today = utcDay(this.#now());
    return this.#exceptions(jurisdiction).filter((e) => e.expires >= today);
  }

  /** Exceptions of a jurisdiction whose `expires` day (UTC) has passed. */
  expiredExceptions(jurisdiction: string): ResidencyException[] {
    const today = utcDay(this.#now());
    return this.#exceptions(jurisdiction).filter((e) => e.expires < today);
  }

  #exceptions(jurisdiction: string): readonly ResidencyException[] {
    return this.#jurisdictions.get(jurisdiction)?.exceptions ?? [];
  }

  /**
   * The single guard in front of every write of cluster data: allows the write when the
   * target region's country is in the source's jurisdiction, or a live exception of that
   * jurisdiction allows the country.
   *
   * @throws ResidencyError when the source is `unassigned` or an unknown jurisdiction, the
   *   target region is not in the region table, or its country is outside the jurisdiction
   *   and no live exception allows it (the message says when a matching exception expired).
   */
  assertResidency(source: ResidencySource, target: ResidencyTarget): ResidencyDecision {
    const region = normaliseRegion(target.cloud, target.region);
    const write = `refusing to write ${target.what ?? 'cluster data'}${
      source.clusterId ? ` of cluster ${source.clusterId}` : ''
    } to ${target.cloud} region ${region}`;
    const refuse = (reason: string, targetCountry?: string): never => {
      throw new ResidencyError(`${write}: ${reason}`, {
        jurisdiction: source.jurisdiction,
        targetRegion: region,
        targetCountry,
      });
    };

    if (source.jurisdiction === UNASSIGNED) {
      return refuse('the source is in no configured jurisdiction (unassigned)');
    }
    const jurisdiction = this.#jurisdictions.get(source.jurisdiction);
    if (jurisdiction === undefined) {
      return refuse(`unknown jurisdiction "${source.jurisdiction}"`);
    }
    const country = regionCountry(target.cloud, region);
    if (country === undefined) {
      return refuse(`unknown ${target.cloud} region "${target.region}"; residency cannot be verified`);
    }
    if (jurisdiction.countries.includes(country)) return { country };

    const allows = (e: ResidencyException) => e.allowCountries.includes(country);
    const live = this.liveExceptions(source.jurisdiction).find(allows);
    if (live !== undefined) return { country, viaException: live };

    const expired = this.expiredExceptions(source.jurisdiction)
      .filter(allows)
      .map((e) => e.expires)
      .sort()
      .at(-1);
    return refuse(
      expired === undefined
        ? `${country} is outside jurisdiction "${source.jurisdiction}" and no exception allows it`
        : `${country} is outside jurisdiction "${source.jurisdiction}" and the exception allowing it expired on ${expired}`,
      country,
    );
  }

  /**
   * Standing problems: a jurisdiction none of whose countries has a region on any cloud
   * (Kenya today) unless a live exception lets its data go to a country that has one;
   * and every expired exception.
   */
  findings(): ResidencyFinding[] {
    const findings: ResidencyFinding[] = [];
    const hasRegion = (country: string) => COUNTRIES_WITH_REGIONS.has(country);
    for (const [id, jurisdiction] of this.#jurisdictions) {
      const covered =
        jurisdiction.countries.some(hasRegion) ||
        this.liveExceptions(id).some((e) => e.allowCountries.some(hasRegion));
      if (!covered) {
        findings.push({
          jurisdiction: id,
          kind: 'no-in-country-region',
          message:
            `jurisdiction "${id}" (${jurisdiction.countries.join(', ')}) has no region on ${CLOUDS_WITH_REGIONS.join(', ')} ` +
            'and no live exception allows another country: its data has nowhere to be written',
        });
      }
      for (const e of this.expiredExceptions(id)) {
        findings.push({
          jurisdiction: id,
          kind: 'exception-expired',
          message: `exception of jurisdiction "${id}" allowing ${e.allowCountries.join(', ')} expired on ${e.expires} (${e.reason})`,
        });
      }
    }
    return findings;
  }
}

/** Free-function form of {@link Residency.assertResidency}. */
export function assertResidency(
  residency: Residency,
  source: ResidencySource,
  target: ResidencyTarget,
): ResidencyDecision {
  return residency.assertResidency(source, target);
}
