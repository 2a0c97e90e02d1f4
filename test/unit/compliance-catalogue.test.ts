/** The control catalogue and the Kubernetes support calendar, as data: shape, citations, dates. */
import { describe, expect, it } from 'vitest';
import {
  CATALOGUE_VERSION,
  CONTROL_IDS,
  CONTROLS,
  EVIDENCE_SOURCES,
} from '../../shared/compliance/catalogue.ts';
import { EVALUATED_CONTROLS } from '../../shared/compliance/evaluate.ts';
import {
  compareMinor,
  K8S_SUPPORT,
  minorOf,
  oldestSupportedMinor,
  supportStatus,
} from '../../shared/compliance/k8s-support.ts';
import { Control, LAW_IDS } from '../../shared/compliance/schema.ts';

const ISO_DATE = /^\d{4}-\d{2}-\d{2}$/;

/** A `YYYY-MM-DD` that is a real calendar day (no 2026-02-30). */
function isCalendarDay(text: string): boolean {
  if (!ISO_DATE.test(text)) return false;
  const date = new Date(`${text}T00:00:00.000Z`);
  return !Number.isNaN(date.getTime()) && date.toISOString().slice(0, 10) === text;
}

describe('control catalogue', () => {
  it('has a calendar version', () => {
    expect(CATALOGUE_VERSION).toMatch(/^\d{4}\.(0[1-9]|1[0-2])\.\d+$/);
  });

  it.each(CONTROLS.map((c) => [c.id, c] as const))(
    '%s validates against the Control schema',
    (_id, control) => {
      // Act
      const parsed = Control.safeParse(control);

      // Assess
      expect(parsed.success, JSON.stringify(parsed.error?.issues)).toBe(true);
    },
  );

  it('has unique ids', () => {
    expect(new Set(CONTROL_IDS).size).toBe(CONTROL_IDS.length);
  });

  it.each(CONTROLS.map((c) => [c.id, c] as const))('%s cites each of the four laws', (_id, control) => {
    const laws = new Set(control.references.map((r) => r.law));
    expect([...laws].sort()).toEqual([...LAW_IDS].sort());
  });

  it.each(CONTROLS.map((c) => [c.id, c] as const))('%s cites no provision twice', (_id, control) => {
    const cites = control.references.map((r) => `${r.law} ${r.cite}`);
    expect(new Set(cites).size).toBe(cites.length);
  });

  it('numbers citations the way each law does', () => {
    const shapes: Record<string, RegExp> = {
      gdpr: /^Art\. \d+(\(\d+\))?(\([a-z]\))?$/,
      dpdp: /^s\. \d+(\(\d+\))?$/,
      popia: /^s\. \d+(\(\d+\))?$/,
      'ke-dpa': /^s\. \d+(\([a-z0-9]+\))?$/,
    };
    const bad = CONTROLS.flatMap((c) => c.references).filter((r) => !shapes[r.law]!.test(r.cite));
    expect(bad).toEqual([]);
  });

  it('cites the same provision with the same title everywhere', () => {
    const titles = new Map<string, Set<string>>();
    for (const r of CONTROLS.flatMap((c) => c.references)) {
      const key = `${r.law} ${r.cite}`;
      titles.set(key, (titles.get(key) ?? new Set()).add(r.title));
    }
    const conflicting = [...titles].filter(([, t]) => t.size > 1).map(([k]) => k);
    expect(conflicting).toEqual([]);
  });

  it('reads only known evidence sources', () => {
    const known = new Set<string>(Object.values(EVIDENCE_SOURCES));
    const unknown = CONTROLS.flatMap((c) =>
      c.evidence.filter((e) => !known.has(e)).map((e) => `${c.id}: ${e}`),
    );
    expect(unknown).toEqual([]);
  });

  it('has an evaluator for every control and none for a control it lacks', () => {
    expect([...EVALUATED_CONTROLS].sort()).toEqual([...CONTROL_IDS].sort());
  });

  it('covers the controls issue 6 asks for', () => {
    expect(CONTROL_IDS).toEqual(
      expect.arrayContaining([
        'residency.cluster-region',
        'residency.backup-storage',
        'residency.audit-archive',
        'security.secrets-encryption',
        'security.private-endpoint',
        'audit.logging-enabled',
        'audit.archive-current',
        'audit.chain-verified',
        'backup.rpo',
        'backup.restore-drill',
        'cost.required-tags',
        'cost.budget-coverage',
        'lifecycle.k8s-standard-support',
      ]),
    );
  });

  it('evaluates provider security bulletins (issue item 7) under the security-of-processing provisions', () => {
    // Act
    const control = CONTROLS.find((c) => c.id === 'lifecycle.security-bulletins');

    // Assess
    expect(control?.references.map((r) => `${r.law} ${r.cite}`)).toEqual(
      expect.arrayContaining(['gdpr Art. 32(1)(b)', 'dpdp s. 8(5)', 'popia s. 19(2)', 'ke-dpa s. 41']),
    );
    expect(control?.evidence).toEqual(expect.arrayContaining(['inventory', 'findings']));
  });
});

describe('kubernetes support calendar', () => {
  const clouds = Object.entries(K8S_SUPPORT);

  it.each(clouds)('%s: dates are real days and the source is an https page', (_cloud, calendar) => {
    expect(isCalendarDay(calendar.asOf)).toBe(true);
    expect(new URL(calendar.source).protocol).toBe('https:');
    const bad = calendar.versions.filter((v) => !isCalendarDay(v.standardSupportEnd));
    expect(bad).toEqual([]);
  });

  it.each(clouds)('%s: versions and end dates are both in ascending order', (_cloud, calendar) => {
    const minors = calendar.versions.map((v) => v.minor);
    const ends = calendar.versions.map((v) => v.standardSupportEnd);
    expect([...minors].sort(compareMinor)).toEqual(minors);
    expect(new Set(minors).size).toBe(minors.length);
    expect([...ends].sort()).toEqual(ends);
  });

  it.each(clouds)('%s: covers every minor from 1.27 on without gaps', (_cloud, calendar) => {
    const minors = calendar.versions.map((v) => Number(v.minor.split('.')[1]));
    expect(minors[0]).toBe(27);
    expect(minors).toEqual(minors.map((_, i) => 27 + i));
  });

  it.each([
    ['1.29', '1.29'],
    ['1.29.3', '1.29'],
    ['v1.30.2-eks-1234', '1.30'],
    ['1.31.1-gke.1678000', '1.31'],
    ['v1.33.5+k3s1', '1.33'],
    [' 1.34.0 ', '1.34'],
    ['latest', null],
    ['1', null],
    ['1.x', null],
  ])('reads minor of %j as %j', (version, minor) => {
    expect(minorOf(version)).toBe(minor);
  });

  it.each([
    ['aws', '1.34.2', '2026-12-01T23:59:59Z', 'supported', '2026-12-02'],
    ['aws', 'v1.34.2-eks-1', '2026-12-02T00:00:00Z', 'ended', '2026-12-02'],
    ['aws', '1.31', '2026-11-21T12:00:00Z', 'ended', '2025-11-26'],
    ['gcp', '1.34.1-gke.1678000', '2026-09-30T12:00:00Z', 'supported', '2026-10-01'],
    ['gcp', '1.34.1-gke.1678000', '2026-11-21T12:00:00Z', 'ended', '2026-10-01'],
    ['azure', '1.35.1', '2026-11-21T12:00:00Z', 'supported', '2027-03-31'],
    ['azure', '1.26.3', '2026-11-21T12:00:00Z', 'unknown-version', null],
    ['aws', '1.99.0', '2026-11-21T12:00:00Z', 'unknown-version', null],
    ['gcp', 'garbage', '2026-11-21T12:00:00Z', 'unknown-version', null],
  ] as const)('%s %s at %s is %s (end %s)', (cloud, version, at, status, end) => {
    // Act
    const result = supportStatus(cloud, version, new Date(at));

    // Assess
    expect(result.status).toBe(status);
    expect(result.standardSupportEnd).toBe(end);
    expect(result.source).toBe(K8S_SUPPORT[cloud].source);
  });

  it('names the oldest minor still in standard support', () => {
    expect(oldestSupportedMinor('aws', new Date('2026-11-21T00:00:00Z'))).toBe('1.34');
    expect(oldestSupportedMinor('aws', new Date('2030-01-01T00:00:00Z'))).toBeNull();
  });
});
