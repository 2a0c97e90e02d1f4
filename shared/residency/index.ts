/** Residency: the region table, the jurisdiction presets and the guard in front of every write. */
export {
  assertResidency,
  normaliseRegion,
  type Placement,
  Residency,
  type ResidencyDecision,
  type ResidencyFinding,
  type ResidencyJurisdiction,
  type ResidencySource,
  type ResidencyTarget,
  regionCountry,
  regionsInCountry,
} from './guard.ts';
export { PRESETS, type Preset, type PresetId } from './jurisdictions.ts';
export { REGIONS, type RegionInfo } from './regions.ts';
