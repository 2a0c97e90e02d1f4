/**
 * Every public region of AWS, Google Cloud and Azure with the country that hosts it
 * (ISO 3166-1 alpha-2). Residency decisions are only as good as this table: a region
 * missing here is refused by the guard, never assumed, so adding a region is a
 * deliberate edit (and `test/meta/region-table.test.ts` pins the counts).
 *
 * Only regions anyone can deploy to are listed: no AWS ISO partitions, no Azure
 * canary/staging regions (`eastus2euap`, `eastusstg`) or geography aliases (`europe`),
 * no Google multi-regions (`eu`, `us`) and no AWS Local/Wavelength Zones, whose city
 * can lie in another country than their parent region.
 */
import type { RegionCloud } from '../model.ts';

/** Where one region is: its country (ISO 3166-1 alpha-2, upper-case) and, where the cloud says, its city or area. */
export interface RegionInfo {
  country: string;
  city?: string;
}

/**
 * AWS commercial regions (opt-in ones included), GovCloud (US), China and the AWS
 * European Sovereign Cloud, keyed by region code.
 */
const AWS: Readonly<Record<string, RegionInfo>> = Object.freeze({
  'af-south-1': { country: 'ZA', city: 'Cape Town' },
  'ap-east-1': { country: 'HK', city: 'Hong Kong' },
  'ap-east-2': { country: 'TW', city: 'Taipei' },
  'ap-northeast-1': { country: 'JP', city: 'Tokyo' },
  'ap-northeast-2': { country: 'KR', city: 'Seoul' },
  'ap-northeast-3': { country: 'JP', city: 'Osaka' },
  'ap-south-1': { country: 'IN', city: 'Mumbai' },
  'ap-south-2': { country: 'IN', city: 'Hyderabad' },
  'ap-southeast-1': { country: 'SG', city: 'Singapore' },
  'ap-southeast-2': { country: 'AU', city: 'Sydney' },
  'ap-southeast-3': { country: 'ID', city: 'Jakarta' },
  'ap-southeast-4': { country: 'AU', city: 'Melbourne' },
  'ap-southeast-5': { country: 'MY', city: 'Kuala Lumpur' },
  'ap-southeast-6': { country: 'NZ', city: 'Auckland' },
  'ap-southeast-7': { country: 'TH', city: 'Bangkok' },
  'ca-central-1': { country: 'CA', city: 'Montréal' },
  'ca-west-1': { country: 'CA', city: 'Calgary' },
  'eu-central-1': { country: 'DE', city: 'Frankfurt' },
  'eu-central-2': { country: 'CH', city: 'Zurich' },
  'eu-north-1': { country: 'SE', city: 'Stockholm' },
  'eu-south-1': { country: 'IT', city: 'Milan' },
  'eu-south-2': { country: 'ES', city: 'Aragón' },
  'eu-west-1': { country: 'IE', city: 'Dublin' },
  'eu-west-2': { country: 'GB', city: 'London' },
  'eu-west-3': { country: 'FR', city: 'Paris' },
  'il-central-1': { country: 'IL', city: 'Tel Aviv' },
  'me-central-1': { country: 'AE' },
  'me-south-1': { country: 'BH' },
  'me-west-1': { country: 'SA' },
  'mx-central-1': { country: 'MX', city: 'Querétaro' },
  'sa-east-1': { country: 'BR', city: 'São Paulo' },
  'sa-west-1': { country: 'CL', city: 'Santiago' },
  'us-east-1': { country: 'US', city: 'N. Virginia' },
  'us-east-2': { country: 'US', city: 'Ohio' },
  'us-west-1': { country: 'US', city: 'N. California' },
  'us-west-2': { country: 'US', city: 'Oregon' },
  // AWS GovCloud (US)
  'us-gov-east-1': { country: 'US' },
  'us-gov-west-1': { country: 'US' },
  // AWS China (operated by local partners)
  'cn-north-1': { country: 'CN', city: 'Beijing' },
  'cn-northwest-1': { country: 'CN', city: 'Ningxia' },
  // AWS European Sovereign Cloud
  'eusc-de-east-1': { country: 'DE', city: 'Brandenburg' },
});

/** Google Cloud regions, keyed by region name (zones such as `europe-west1-b` normalise to these). */
const GCP: Readonly<Record<string, RegionInfo>> = Object.freeze({
  'africa-south1': { country: 'ZA', city: 'Johannesburg' },
  'asia-east1': { country: 'TW', city: 'Changhua County' },
  'asia-east2': { country: 'HK', city: 'Hong Kong' },
  'asia-northeast1': { country: 'JP', city: 'Tokyo' },
  'asia-northeast2': { country: 'JP', city: 'Osaka' },
  'asia-northeast3': { country: 'KR', city: 'Seoul' },
  'asia-south1': { country: 'IN', city: 'Mumbai' },
  'asia-south2': { country: 'IN', city: 'Delhi' },
  'asia-southeast1': { country: 'SG', city: 'Singapore' },
  'asia-southeast2': { country: 'ID', city: 'Jakarta' },
  'asia-southeast3': { country: 'TH', city: 'Bangkok' },
  'australia-southeast1': { country: 'AU', city: 'Sydney' },
  'australia-southeast2': { country: 'AU', city: 'Melbourne' },
  'europe-central2': { country: 'PL', city: 'Warsaw' },
  'europe-north1': { country: 'FI', city: 'Hamina' },
  'europe-north2': { country: 'SE', city: 'Stockholm' },
  'europe-southwest1': { country: 'ES', city: 'Madrid' },
  'europe-west1': { country: 'BE', city: 'St. Ghislain' },
  'europe-west2': { country: 'GB', city: 'London' },
  'europe-west3': { country: 'DE', city: 'Frankfurt' },
  'europe-west4': { country: 'NL', city: 'Eemshaven' },
  'europe-west6': { country: 'CH', city: 'Zurich' },
  'europe-west8': { country: 'IT', city: 'Milan' },
  'europe-west9': { country: 'FR', city: 'Paris' },
  'europe-west10': { country: 'DE', city: 'Berlin' },
  'europe-west12': { country: 'IT', city: 'Turin' },
  'me-central1': { country: 'QA', city: 'Doha' },
  'me-central2': { country: 'SA', city: 'Dammam' },
  'me-west1': { country: 'IL', city: 'Tel Aviv' },
  'northamerica-northeast1': { country: 'CA', city: 'Montréal' },
  'northamerica-northeast2': { country: 'CA', city: 'Toronto' },
  'northamerica-south1': { country: 'MX', city: 'Querétaro' },
  'southamerica-east1': { country: 'BR', city: 'São Paulo' },
  'southamerica-west1': { country: 'CL', city: 'Santiago' },
  'us-central1': { country: 'US', city: 'Iowa' },
  'us-east1': { country: 'US', city: 'South Carolina' },
  'us-east4': { country: 'US', city: 'N. Virginia' },
  'us-east5': { country: 'US', city: 'Columbus' },
  'us-south1': { country: 'US', city: 'Dallas' },
  'us-west1': { country: 'US', city: 'Oregon' },
  'us-west2': { country: 'US', city: 'Los Angeles' },
  'us-west3': { country: 'US', city: 'Salt Lake City' },
  'us-west4': { country: 'US', city: 'Las Vegas' },
});

/**
 * Azure public regions by programmatic name (lower-case, no spaces), including the
 * restricted-access paired regions that `az account list-locations` reports
 * (`germanynorth`, `norwaywest`, `swedensouth`, ...): clusters can live there.
 */
const AZURE: Readonly<Record<string, RegionInfo>> = Object.freeze({
  // Americas
  eastus: { country: 'US', city: 'Virginia' },
  eastus2: { country: 'US', city: 'Virginia' },
  westus: { country: 'US', city: 'California' },
  westus2: { country: 'US', city: 'Washington' },
  westus3: { country: 'US', city: 'Phoenix' },
  centralus: { country: 'US', city: 'Iowa' },
  northcentralus: { country: 'US', city: 'Illinois' },
  southcentralus: { country: 'US', city: 'Texas' },
  westcentralus: { country: 'US', city: 'Wyoming' },
  canadacentral: { country: 'CA', city: 'Toronto' },
  canadaeast: { country: 'CA', city: 'Quebec City' },
  brazilsouth: { country: 'BR', city: 'São Paulo State' },
  brazilsoutheast: { country: 'BR', city: 'Rio de Janeiro' },
  mexicocentral: { country: 'MX', city: 'Querétaro State' },
  chilecentral: { country: 'CL', city: 'Santiago' },
  // Europe
  northeurope: { country: 'IE', city: 'Dublin' },
  westeurope: { country: 'NL', city: 'Amsterdam' },
  uksouth: { country: 'GB', city: 'London' },
  ukwest: { country: 'GB', city: 'Cardiff' },
  francecentral: { country: 'FR', city: 'Paris' },
  francesouth: { country: 'FR', city: 'Marseille' },
  germanywestcentral: { country: 'DE', city: 'Frankfurt' },
  germanynorth: { country: 'DE', city: 'Berlin' },
  switzerlandnorth: { country: 'CH', city: 'Zurich' },
  switzerlandwest: { country: 'CH', city: 'Geneva' },
  norwayeast: { country: 'NO', city: 'Oslo' },
  norwaywest: { country: 'NO', city: 'Stavanger' },
  swedencentral: { country: 'SE', city: 'Gävle' },
  swedensouth: { country: 'SE', city: 'Staffanstorp' },
  polandcentral: { country: 'PL', city: 'Warsaw' },
  italynorth: { country: 'IT', city: 'Milan' },
  spaincentral: { country: 'ES', city: 'Madrid' },
  austriaeast: { country: 'AT', city: 'Vienna' },
  belgiumcentral: { country: 'BE', city: 'Brussels' },
  denmarkeast: { country: 'DK', city: 'Copenhagen' },
  // Middle East and Africa
  uaenorth: { country: 'AE', city: 'Dubai' },
  uaecentral: { country: 'AE', city: 'Abu Dhabi' },
  qatarcentral: { country: 'QA', city: 'Doha' },
  israelcentral: { country: 'IL' },
  southafricanorth: { country: 'ZA', city: 'Johannesburg' },
  southafricawest: { country: 'ZA', city: 'Cape Town' },
  // Asia Pacific
  eastasia: { country: 'HK', city: 'Hong Kong' },
  southeastasia: { country: 'SG', city: 'Singapore' },
  japaneast: { country: 'JP', city: 'Tokyo, Saitama' },
  japanwest: { country: 'JP', city: 'Osaka' },
  koreacentral: { country: 'KR', city: 'Seoul' },
  koreasouth: { country: 'KR', city: 'Busan' },
  centralindia: { country: 'IN', city: 'Pune' },
  southindia: { country: 'IN', city: 'Chennai' },
  westindia: { country: 'IN', city: 'Mumbai' },
  jioindiawest: { country: 'IN', city: 'Jamnagar' },
  jioindiacentral: { country: 'IN', city: 'Nagpur' },
  indonesiacentral: { country: 'ID', city: 'Jakarta' },
  malaysiawest: { country: 'MY', city: 'Kuala Lumpur' },
  australiaeast: { country: 'AU', city: 'New South Wales' },
  australiasoutheast: { country: 'AU', city: 'Victoria' },
  australiacentral: { country: 'AU', city: 'Canberra' },
  australiacentral2: { country: 'AU', city: 'Canberra' },
  newzealandnorth: { country: 'NZ', city: 'Auckland' },
});

/**
 * The region table: cloud → region name → where it is. Look names up through
 * {@link regionCountry} (in `guard.ts`), which normalises zones and Azure display names
 * and ignores inherited object keys.
 */
export const REGIONS: Record<RegionCloud, Readonly<Record<string, RegionInfo>>> = Object.freeze({
  aws: AWS,
  gcp: GCP,
  azure: AZURE,
});
