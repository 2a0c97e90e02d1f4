/**
 * The compliance snapshot's shape, as zod schemas: the types the evaluator and renderers
 * share, and (through `z.toJSONSchema`) the JSON Schema published as
 * `shared/compliance/snapshot.schema.json`. Bump {@link SNAPSHOT_SCHEMA_VERSION} on any
 * change a consumer could notice; the meta test keeps the published file in step.
 */
import { z } from 'zod';

/** Version of the snapshot document format (not of the control catalogue). */
export const SNAPSHOT_SCHEMA_VERSION = '1.0.0';

/** The laws the catalogue cites. */
export const LAW_IDS = ['gdpr', 'dpdp', 'popia', 'ke-dpa'] as const;
export const LawId = z.enum(LAW_IDS);
export type LawId = z.infer<typeof LawId>;

export const CONTROL_STATUSES = ['pass', 'fail', 'not-applicable', 'unknown'] as const;
export const ControlStatus = z.enum(CONTROL_STATUSES);
export type ControlStatus = z.infer<typeof ControlStatus>;

export const ControlSeverity = z.enum(['low', 'medium', 'high', 'critical']);
export type ControlSeverity = z.infer<typeof ControlSeverity>;

/** One article or section of one law that a control supports. */
export const LawReference = z.strictObject({
  law: LawId,
  /** The citation as the law numbers it: `Art. 32(1)(b)`, `s. 8(5)`, `s. 19(1)`, `s. 41(1)`. */
  cite: z.string().min(1),
  /** Short title of the provision. */
  title: z.string().min(1),
});
export type LawReference = z.infer<typeof LawReference>;

/** A control of the catalogue, as data. */
export const Control = z.strictObject({
  /** Stable id, dotted: `residency.cluster-region`. */
  id: z.string().regex(/^[a-z0-9]+(?:[.-][a-z0-9]+)*$/),
  title: z.string().min(1),
  rationale: z.string().min(1),
  severity: ControlSeverity,
  references: z.array(LawReference).min(1),
  /** Evidence sources it reads (`inventory`, `backup-status`, `drills`, `audit-status`, ...). */
  evidence: z.array(z.string().min(1)).min(1),
  /** What to change when it fails (the evaluation may say it more precisely per cluster). */
  remedy: z.string().min(1),
});
export type Control = z.infer<typeof Control>;

/** One piece of evidence an evaluation used: where it came from, which record, when, and the values read. */
export const EvidenceItem = z.strictObject({
  source: z.string().min(1),
  /** Key of the record in its store (`backup-status/<cluster-id>`), when there is one. */
  recordId: z.string().nullable(),
  /** When the evidence was observed (ISO 8601), when known. */
  observedAt: z.string().nullable(),
  values: z.record(z.string(), z.unknown()),
});
export type EvidenceItem = z.infer<typeof EvidenceItem>;

/** The outcome of one control for one cluster. */
export const ControlResult = z.strictObject({
  control: z.string().min(1),
  status: ControlStatus,
  /** One sentence: why this status (for `unknown`: which evidence is missing). */
  reason: z.string().min(1),
  evidence: z.array(EvidenceItem),
  /** What to change; present exactly when `status` is `fail`. */
  remedy: z.string().min(1).optional(),
});
export type ControlResult = z.infer<typeof ControlResult>;

export const StatusCounts = z.strictObject({
  pass: z.int().nonnegative(),
  fail: z.int().nonnegative(),
  'not-applicable': z.int().nonnegative(),
  unknown: z.int().nonnegative(),
});
export type StatusCounts = z.infer<typeof StatusCounts>;

/** One cluster of the jurisdiction and its control results (in catalogue order). */
export const ClusterResult = z.strictObject({
  id: z.string().min(1),
  name: z.string().min(1),
  cloud: z.enum(['aws', 'gcp', 'azure', 'kubeconfig']),
  scope: z.string(),
  region: z.string(),
  country: z.string().nullable(),
  kubernetesVersion: z.string().nullable(),
  counts: StatusCounts,
  results: z.array(ControlResult),
});
export type ClusterResult = z.infer<typeof ClusterResult>;

/** A control whose status differs from the previous snapshot (`null`: the cluster was not in it). */
export const ControlChange = z.strictObject({
  clusterId: z.string(),
  control: z.string(),
  before: ControlStatus.nullable(),
  after: ControlStatus.nullable(),
});
export type ControlChange = z.infer<typeof ControlChange>;

/** What changed since the previous snapshot of the same jurisdiction. */
export const SnapshotDiff = z.strictObject({
  /** The previous snapshot compared against; `null` for the first one. */
  previous: z.strictObject({ generatedAt: z.string(), sha256: z.string() }).nullable(),
  /** Was not `fail` (or absent), now `fail`. */
  newlyFailing: z.array(ControlChange),
  /** Was `fail`, now `pass` or `not-applicable`. */
  newlyFixed: z.array(ControlChange),
  /** Every other status change (to or from `unknown`, ...). */
  otherChanges: z.array(ControlChange),
  addedClusters: z.array(z.string()),
  removedClusters: z.array(z.string()),
});
export type SnapshotDiff = z.infer<typeof SnapshotDiff>;

/** One jurisdiction's snapshot: everything an auditor of that jurisdiction reads, nothing of any other. */
export const JurisdictionSnapshot = z.strictObject({
  schemaVersion: z.literal(SNAPSHOT_SCHEMA_VERSION),
  kind: z.literal('fleetward.jurisdiction-snapshot'),
  generatedAt: z.string(),
  stage: z.string(),
  jurisdiction: z.strictObject({
    id: z.string(),
    name: z.string(),
    /** Laws cited (a preset's law; every catalogue law for a user-defined jurisdiction). */
    laws: z.array(LawId),
    countries: z.array(z.string()),
  }),
  catalogue: z.strictObject({ version: z.string(), controls: z.array(Control) }),
  summary: z.strictObject({
    clusters: z.int().nonnegative(),
    counts: StatusCounts,
    byControl: z.record(z.string(), StatusCounts),
  }),
  clusters: z.array(ClusterResult),
  changes: SnapshotDiff,
});
export type JurisdictionSnapshot = z.infer<typeof JurisdictionSnapshot>;

/** The fleet-wide summary: counts only, no cluster names, ids or regions. */
export const FleetSummary = z.strictObject({
  schemaVersion: z.literal(SNAPSHOT_SCHEMA_VERSION),
  kind: z.literal('fleetward.fleet-summary'),
  generatedAt: z.string(),
  stage: z.string(),
  catalogueVersion: z.string(),
  jurisdictions: z.array(
    z.strictObject({
      id: z.string(),
      clusters: z.int().nonnegative(),
      counts: StatusCounts,
      newlyFailing: z.int().nonnegative(),
      newlyFixed: z.int().nonnegative(),
    }),
  ),
  totals: z.strictObject({ clusters: z.int().nonnegative(), counts: StatusCounts }),
  /**
   * Each scheduled job's last successful run: `late` when none came within twice its interval
   * (a finding and an alarm). Absent in summaries from before heartbeats were recorded.
   */
  jobs: z
    .array(
      z.strictObject({
        job: z.string(),
        lastRunAt: z.string().nullable(),
        intervalMinutes: z.number().positive(),
        late: z.boolean(),
      }),
    )
    .optional(),
});
export type FleetSummary = z.infer<typeof FleetSummary>;

/** The published JSON Schema of both documents (`$defs`), as `snapshot.schema.json` holds it. */
export function snapshotJsonSchema(): Record<string, unknown> {
  const one = (schema: z.ZodType) => z.toJSONSchema(schema, { target: 'draft-2020-12', io: 'output' });
  const { $schema: _a, ...jurisdiction } = one(JurisdictionSnapshot) as Record<string, unknown>;
  const { $schema: _b, ...fleet } = one(FleetSummary) as Record<string, unknown>;
  return {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    $id: `urn:fleetward:snapshot:${SNAPSHOT_SCHEMA_VERSION}`,
    title: 'Fleetward compliance snapshot',
    oneOf: [{ $ref: '#/$defs/JurisdictionSnapshot' }, { $ref: '#/$defs/FleetSummary' }],
    $defs: { JurisdictionSnapshot: jurisdiction, FleetSummary: fleet },
  };
}
