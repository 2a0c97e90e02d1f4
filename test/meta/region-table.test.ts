/**
 * Guards the region table itself: its size is pinned so that adding or dropping a region
 * is a deliberate edit, its country codes are well-formed, and every region a fixture or
 * the sandbox mentions is in it (a fixture region missing from the table would make the
 * guard refuse, and the test around it prove nothing).
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { RegionCloud } from '../../shared/model.ts';
import { normaliseRegion, REGIONS, regionCountry } from '../../shared/residency/index.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const SCANNED_DIRS = ['test/fixtures', 'test/sandbox'];
const SCANNED_EXTENSIONS = /\.(?:ts|json|ya?ml)$/;

/** Region names per cloud, as they appear inside quoted strings (ARNs, URLs and zones included). */
const REGION_PATTERNS: Record<'aws' | 'gcp', RegExp> = {
  // `gov-` for GovCloud, a country code for the European Sovereign Cloud (`eusc-de-east-1`);
  // an availability zone (`us-east-2a`) counts as a mention of its region.
  aws: /\b(?:us|eu|ap|sa|ca|me|af|il|mx|cn|eusc)-(?:gov-|[a-z]{2}-)?[a-z]+-\d(?=[a-z]?\b)/g,
  gcp: /\b(?:africa|asia|australia|europe|me|northamerica|southamerica|us)-[a-z]+\d+\b/g,
};
/** A quoted string: single, double or back-quoted, on one line. */
const QUOTED = /(["'`])((?:\\.|(?!\1)[^\\\n])*)\1/g;
/** An ARM-style `"location": "..."` (or `location: '...'`) whose value looks like an Azure region name or display name. */
const AZURE_LOCATION = /["']?location["']?\s*:\s*["']([A-Za-z][A-Za-z0-9 ]*)["']/g;
/** Azure locations that are not regions. */
const AZURE_NON_REGIONAL = new Set(['global']);
/** A file holds Azure data when its path says so or it names an ARM resource type. */
const isAzureFile = (path: string, text: string) =>
  /azure/i.test(path) || /\bMicrosoft\.[A-Za-z]+\//.test(text);

interface Mention {
  cloud: RegionCloud;
  region: string;
  file: string;
}

/** Every region name mentioned in one file's text. */
function mentionsIn(file: string, text: string): Mention[] {
  const found: Mention[] = [];
  for (const [, , quoted = ''] of text.matchAll(QUOTED)) {
    for (const cloud of ['aws', 'gcp'] as const) {
      for (const [region] of quoted.matchAll(REGION_PATTERNS[cloud])) found.push({ cloud, region, file });
    }
  }
  if (isAzureFile(file, text)) {
    for (const [, location = ''] of text.matchAll(AZURE_LOCATION)) {
      const region = normaliseRegion('azure', location);
      if (!AZURE_NON_REGIONAL.has(region)) found.push({ cloud: 'azure', region, file });
    }
  }
  return found;
}

function filesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((name) => SCANNED_EXTENSIONS.test(name))
    .map((name) => join(dir, name));
}

describe('region table', () => {
  it.each<[RegionCloud, number]>([
    ['aws', 41],
    ['gcp', 43],
    ['azure', 59],
  ])('lists exactly the known %s regions (%i)', (cloud, count) => {
    // Act
    const regions = Object.keys(REGIONS[cloud]);

    // Assess
    expect(regions).toHaveLength(count);
  });

  it.each<RegionCloud>(['aws', 'gcp', 'azure'])(
    'gives every %s region an upper-case alpha-2 country',
    (cloud) => {
      // Act
      const bad = Object.entries(REGIONS[cloud]).filter(([, info]) => !/^[A-Z]{2}$/.test(info.country));

      // Assess
      expect(bad).toEqual([]);
    },
  );

  it.each<RegionCloud>(['aws', 'gcp', 'azure'])(
    'spells every %s region the way normaliseRegion does',
    (cloud) => {
      // Act
      const bad = Object.keys(REGIONS[cloud]).filter((region) => normaliseRegion(cloud, region) !== region);

      // Assess
      expect(bad).toEqual([]);
    },
  );

  it('matches every AWS and GCP region with the scan patterns', () => {
    // Act
    const unmatched = (['aws', 'gcp'] as const).flatMap((cloud) =>
      Object.keys(REGIONS[cloud]).filter(
        (region) => !new RegExp(`^${REGION_PATTERNS[cloud].source}$`).test(region),
      ),
    );

    // Assess
    expect(unmatched).toEqual([]);
  });
});

describe('fixture regions', () => {
  it('finds region names in quoted strings, zones, ARNs and Azure locations', () => {
    // Prepare
    const text = [
      `const arn = 'arn:aws:eks:eu-west-1:123456789012:cluster/prod'; const esc = 'eusc-de-east-1b';`,
      `"zone": "europe-west1-b", "az": "us-east-2a", "url": "/locations/us-central1/clusters"`,
      `{ "type": "Microsoft.ContainerService/managedClusters", "location": "West Europe" }`,
      `{ "location": "global" } // eu-west-3 outside quotes is not a mention`,
    ].join('\n');

    // Act
    const mentions = mentionsIn('sample.json', text).map((m) => `${m.cloud}:${m.region}`);

    // Assess
    expect(mentions.sort()).toEqual([
      'aws:eu-west-1',
      'aws:eusc-de-east-1',
      'aws:us-east-2',
      'azure:westeurope',
      'gcp:europe-west1',
      'gcp:us-central1',
    ]);
  });

  it('knows every region a fixture or the sandbox mentions', () => {
    // Prepare
    const files = SCANNED_DIRS.flatMap((dir) => filesUnder(join(ROOT, dir)));

    // Act
    const missing = files
      .flatMap((file) => mentionsIn(relative(ROOT, file), readFileSync(file, 'utf8')))
      .filter((m) => regionCountry(m.cloud, m.region) === undefined)
      .map((m) => `${m.file}: ${m.cloud} region "${m.region}" is not in shared/residency/regions.ts`);

    // Assess
    expect([...new Set(missing)]).toEqual([]);
  });
});
