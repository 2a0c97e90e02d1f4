/**
 * End of STANDARD support of each Kubernetes minor version on EKS, GKE and AKS, as the
 * providers' calendars publish them. Data, dated: `asOf` is the day the table was checked
 * against the sources; a version newer than the table is `unknown-version`, never guessed.
 *
 * Semantics: `standardSupportEnd` is the first day (UTC) without standard support. EKS
 * documents it so (extended-support billing starts at the beginning of that day); AKS gives
 * month-only dates for most versions, which its page defines as the last day of that month,
 * used here as is; GKE's "End of standard support" date is used as published.
 *
 * Sources, as read when the table was compiled:
 *  - EKS: the Amazon EKS Kubernetes release calendar (1.27\u20131.34; 1.35 from the same
 *    calendar as mirrored after its January 2026 release).
 *  - GKE: the GKE release schedule, "End of standard support" column (1.27\u20131.35).
 *  - AKS: the AKS Kubernetes release calendar ("End of life" of community support, not the
 *    LTS end), 1.27\u20131.37; 1.36 and 1.37 were still planned dates when read.
 * To update: add the new minor at the end of its cloud's list, correct dates the provider
 * moved, and set `asOf`; the unit test checks the dates parse and are ordered.
 */
import type { RegionCloud } from '../model.ts';

/** One minor version and the first day without standard support (`YYYY-MM-DD`, UTC). */
export interface SupportWindow {
  minor: string;
  standardSupportEnd: string;
}

/** A provider's calendar: where it comes from, when it was checked, and its versions (oldest first). */
export interface SupportCalendar {
  asOf: string;
  source: string;
  versions: readonly SupportWindow[];
}

/** The calendars, per cloud. */
export const K8S_SUPPORT: Readonly<Record<RegionCloud, SupportCalendar>> = Object.freeze({
  aws: {
    asOf: '2026-11-21',
    source:
      'https://docs.aws.amazon.com/eks/latest/userguide/kubernetes-versions.html#kubernetes-release-calendar',
    versions: [
      { minor: '1.27', standardSupportEnd: '2024-07-24' },
      { minor: '1.28', standardSupportEnd: '2024-11-26' },
      { minor: '1.29', standardSupportEnd: '2025-03-23' },
      { minor: '1.30', standardSupportEnd: '2025-07-23' },
      { minor: '1.31', standardSupportEnd: '2025-11-26' },
      { minor: '1.32', standardSupportEnd: '2026-03-23' },
      { minor: '1.33', standardSupportEnd: '2026-07-29' },
      { minor: '1.34', standardSupportEnd: '2026-12-02' },
      { minor: '1.35', standardSupportEnd: '2027-03-27' },
    ],
  },
  gcp: {
    asOf: '2026-11-21',
    source: 'https://cloud.google.com/kubernetes-engine/docs/release-schedule',
    versions: [
      { minor: '1.27', standardSupportEnd: '2024-10-01' },
      { minor: '1.28', standardSupportEnd: '2025-02-04' },
      { minor: '1.29', standardSupportEnd: '2025-04-12' },
      { minor: '1.30', standardSupportEnd: '2025-09-30' },
      { minor: '1.31', standardSupportEnd: '2026-01-16' },
      { minor: '1.32', standardSupportEnd: '2026-04-11' },
      { minor: '1.33', standardSupportEnd: '2026-08-03' },
      { minor: '1.34', standardSupportEnd: '2026-10-01' },
      { minor: '1.35', standardSupportEnd: '2027-04-11' },
    ],
  },
  azure: {
    asOf: '2026-11-21',
    source:
      'https://learn.microsoft.com/azure/aks/supported-kubernetes-versions#aks-kubernetes-release-calendar',
    versions: [
      { minor: '1.27', standardSupportEnd: '2024-07-31' },
      { minor: '1.28', standardSupportEnd: '2025-01-31' },
      { minor: '1.29', standardSupportEnd: '2025-03-31' },
      { minor: '1.30', standardSupportEnd: '2025-08-22' },
      { minor: '1.31', standardSupportEnd: '2025-11-01' },
      { minor: '1.32', standardSupportEnd: '2026-03-31' },
      { minor: '1.33', standardSupportEnd: '2026-07-31' },
      { minor: '1.34', standardSupportEnd: '2026-11-30' },
      { minor: '1.35', standardSupportEnd: '2027-03-31' },
      { minor: '1.36', standardSupportEnd: '2027-06-30' },
      { minor: '1.37', standardSupportEnd: '2027-10-31' },
    ],
  },
} satisfies Record<RegionCloud, SupportCalendar>);

/** Where a version stands on a cloud's calendar. */
export interface SupportStatus {
  status: 'supported' | 'ended' | 'unknown-version';
  /** The first day without standard support; `null` for a version not in the table. */
  standardSupportEnd: string | null;
  /** The minor version read from the version string (`1.31`), `null` when none could be read. */
  minor: string | null;
  /** The calendar page the date comes from. */
  source: string;
  /** When the calendar was checked. */
  asOf: string;
}

const MINOR = /^v?(\d+)\.(\d+)(?:[.+-]|$)/;

/**
 * The `major.minor` of a version as the clouds report it: `1.29`, `1.29.3`,
 * `v1.30.2-eks-1234`, `1.31.1-gke.1678000` all give their minor; anything else `null`.
 */
export function minorOf(version: string): string | null {
  const match = MINOR.exec(version.trim());
  if (!match) return null;
  return `${Number(match[1])}.${Number(match[2])}`;
}

/** Compares two `major.minor` strings numerically. */
export function compareMinor(a: string, b: string): number {
  const [am = 0, an = 0] = a.split('.').map(Number);
  const [bm = 0, bn = 0] = b.split('.').map(Number);
  return am - bm || an - bn;
}

/**
 * Whether `version` is in standard support on `cloud` at `now`: `ended` from its
 * `standardSupportEnd` day (UTC) on, `unknown-version` when the version cannot be read or
 * is not in the table (older than 1.27 or newer than the table's newest).
 */
export function supportStatus(cloud: RegionCloud, version: string, now: Date): SupportStatus {
  const calendar = K8S_SUPPORT[cloud];
  const minor = minorOf(version);
  const window = minor === null ? undefined : calendar.versions.find((v) => v.minor === minor);
  const base = { minor, source: calendar.source, asOf: calendar.asOf };
  if (window === undefined) return { ...base, status: 'unknown-version', standardSupportEnd: null };
  const today = now.toISOString().slice(0, 10);
  return {
    ...base,
    status: today >= window.standardSupportEnd ? 'ended' : 'supported',
    standardSupportEnd: window.standardSupportEnd,
  };
}

/** The oldest minor of a cloud still in standard support at `now`, or `null` when the table has none. */
export function oldestSupportedMinor(cloud: RegionCloud, now: Date): string | null {
  const today = now.toISOString().slice(0, 10);
  return K8S_SUPPORT[cloud].versions.find((v) => v.standardSupportEnd > today)?.minor ?? null;
}
