/**
 * Built-in jurisdiction presets a `fleet.yaml` can name instead of listing countries.
 * A jurisdiction with its own `countries` replaces the preset's list.
 */
import type { PRESET_IDS } from '../config/schema.ts';

/** The id of a built-in preset (`eu-gdpr`, `in-dpdp`, `za-popia`, `ke-dpa`). */
export type PresetId = (typeof PRESET_IDS)[number];

/** A data-protection law and the countries (ISO 3166-1 alpha-2) whose data it keeps at home. */
export interface Preset {
  name: string;
  law: string;
  countries: readonly string[];
}

/** The 27 member states of the European Union (ISO codes: Greece is `GR`, not the EU's `EL`). */
const EU_27 = [
  'AT',
  'BE',
  'BG',
  'HR',
  'CY',
  'CZ',
  'DK',
  'EE',
  'FI',
  'FR',
  'DE',
  'GR',
  'HU',
  'IE',
  'IT',
  'LV',
  'LT',
  'LU',
  'MT',
  'NL',
  'PL',
  'PT',
  'RO',
  'SK',
  'SI',
  'ES',
  'SE',
] as const;

/** The EEA members outside the EU, where the GDPR applies through the EEA Agreement. */
const EEA_NON_EU = ['IS', 'LI', 'NO'] as const;

/**
 * The presets. `eu-gdpr` covers the EU and EEA (30 countries); countries with an
 * adequacy decision (such as `GB` or `CH`) are not in it: allow them with an exception.
 * Kenya (`ke-dpa`) has no in-country public cloud region, which `Residency.findings()` reports.
 */
export const PRESETS: Record<PresetId, Preset> = Object.freeze({
  'eu-gdpr': {
    name: 'European Union and European Economic Area',
    law: 'General Data Protection Regulation (EU) 2016/679',
    countries: Object.freeze([...EU_27, ...EEA_NON_EU]),
  },
  'in-dpdp': {
    name: 'India',
    law: 'Digital Personal Data Protection Act, 2023',
    countries: Object.freeze(['IN']),
  },
  'za-popia': {
    name: 'South Africa',
    law: 'Protection of Personal Information Act, 2013',
    countries: Object.freeze(['ZA']),
  },
  'ke-dpa': {
    name: 'Kenya',
    law: 'Data Protection Act, 2019',
    countries: Object.freeze(['KE']),
  },
});
