/**
 * The compliance snapshot job: evaluates every control of the catalogue for every cluster
 * from the evidence the other jobs recorded, groups the results by jurisdiction, compares
 * each jurisdiction with its previous snapshot, renders JSON, HTML, Markdown and CSV, and
 * publishes each jurisdiction's files into that jurisdiction's own write-once evidence
 * bucket (after the residency guard and the immutability check). A jurisdiction's
 * snapshot holds only its own clusters; the fleet summary holds counts only.
 *
 * Clusters in no jurisdiction (`unassigned`) get a snapshot of their own that fails the
 * region control; it is rendered but never published, since no evidence bucket is theirs.
 */
import { createHash } from 'node:crypto';
import { CATALOGUE_VERSION, CONTROLS } from '../compliance/catalogue.ts';
import { diffSnapshots, type PreviousSnapshot } from '../compliance/diff.ts';
import { countStatuses, evaluateCluster } from '../compliance/evaluate.ts';
import { loadEvidence } from '../compliance/evidence.ts';
import { FORMATS, render, type SnapshotFormat } from '../compliance/render/index.ts';
import {
  type ClusterResult,
  type ControlChange,
  type ControlResult,
  type ControlSeverity,
  type ControlStatus,
  type FleetSummary,
  type JurisdictionSnapshot,
  LAW_IDS,
  type LawId,
  SNAPSHOT_SCHEMA_VERSION,
  type StatusCounts,
} from '../compliance/schema.ts';
import type { FleetConfig } from '../config/schema.ts';
import { type Cluster, UNASSIGNED } from '../model.ts';
import type { JobReport } from '../notify/notifier.ts';
import type { ArchiveStore, Clock, Log, StateStore } from '../ports.ts';
import { PRESETS, type Residency } from '../residency/index.ts';
import {
  type ErrorInfo,
  errorInfo,
  ObjectExistsError,
  ResidencyError,
  UsageError,
} from '../runtime/errors.ts';
import { jobHeartbeats } from '../runtime/heartbeat.ts';
import { inventory, runId } from './fleet.ts';

/** State namespace: `latest/<jurisdiction>` and `statuses/<jurisdiction>/<cluster-id>`. */
export const SNAPSHOTS_NS = 'snapshots';

/** The law each preset jurisdiction is governed by. */
const PRESET_LAW: Record<string, LawId> = {
  'eu-gdpr': 'gdpr',
  'in-dpdp': 'dpdp',
  'za-popia': 'popia',
  'ke-dpa': 'ke-dpa',
};

export interface SnapshotDeps {
  config: FleetConfig;
  store: StateStore;
  residency: Residency;
  logger: Log;
  clock: Clock;
  /** The jurisdiction's write-once evidence stores; absent: nothing is published. */
  evidence?: { all(jurisdiction: string): Promise<ArchiveStore[]> } | undefined;
  /** Publishing into a local directory is allowed (the CLI's `--local-evidence`; never deployed). */
  allowLocalEvidence?: boolean | undefined;
}

export interface SnapshotOptions {
  /** Only this jurisdiction (a regional deployment publishes its own). */
  jurisdiction?: string | undefined;
  /** Write the files into the evidence buckets (default true when `evidence` is given). */
  publish?: boolean | undefined;
  signal?: AbortSignal | undefined;
  /** Called after each jurisdiction is recorded (and published): how many of how many, and which. */
  onProgress?: ((done: number, total: number, jurisdiction: string) => void) | undefined;
}

/** Where one jurisdiction's files went. */
export interface PublishedCopy {
  store: string;
  /** `false` for a local directory: not write-once, not compliant storage. */
  compliantStorage: boolean;
  prefix: string;
  objects: { key: string; version: string; sha256: string }[];
}

export interface JurisdictionOutput {
  jurisdiction: string;
  snapshot: JurisdictionSnapshot;
  /** Rendered files by format. */
  files: Record<SnapshotFormat, string>;
  /** SHA-256 (hex) of each file's UTF-8 bytes. */
  sha256: Record<SnapshotFormat, string>;
  published: PublishedCopy[];
  /** Set when publishing failed (residency, immutability, write): the snapshot is still recorded. */
  publishError?: ErrorInfo;
}

export interface SnapshotResult {
  runId: string;
  generatedAt: string;
  jurisdictions: JurisdictionOutput[];
  summary: FleetSummary;
}

/** What `latest/<jurisdiction>` holds: the identity of the newest snapshot. */
export interface LatestSnapshotRecord {
  generatedAt: string;
  sha256: string;
  files: Record<SnapshotFormat, string>;
  published: PublishedCopy[];
}

const CONTENT_TYPES: Record<SnapshotFormat, string> = {
  json: 'application/json',
  html: 'text/html; charset=utf-8',
  md: 'text/markdown; charset=utf-8',
  csv: 'text/csv; charset=utf-8',
};

function sha256(text: string | Uint8Array): string {
  return createHash('sha256').update(text).digest('hex');
}

function emptyCounts(): StatusCounts {
  return { pass: 0, fail: 0, 'not-applicable': 0, unknown: 0 };
}

function addCounts(into: StatusCounts, more: StatusCounts): StatusCounts {
  for (const k of Object.keys(into) as (keyof StatusCounts)[]) into[k] += more[k];
  return into;
}

/** The jurisdiction header of a snapshot: name, laws cited, countries. */
function jurisdictionInfo(config: FleetConfig, id: string): JurisdictionSnapshot['jurisdiction'] {
  if (id === UNASSIGNED) {
    return { id, name: 'Clusters in no configured jurisdiction', laws: [...LAW_IDS], countries: [] };
  }
  const j = config.jurisdictions[id];
  const preset = j?.preset ? PRESETS[j.preset] : undefined;
  const law = j?.preset ? PRESET_LAW[j.preset] : undefined;
  return {
    id,
    name: j?.name ?? preset?.name ?? id,
    laws: law ? [law] : [...LAW_IDS],
    countries: [...(j?.countries ?? preset?.countries ?? [])].sort(),
  };
}

async function previousSnapshot(store: StateStore, jurisdiction: string): Promise<PreviousSnapshot | null> {
  const latest = await store.get<LatestSnapshotRecord>(SNAPSHOTS_NS, `latest/${jurisdiction}`);
  if (!latest) return null;
  const prefix = `statuses/${jurisdiction}/`;
  const items = await store.list<Record<string, ControlStatus>>(SNAPSHOTS_NS, { prefix });
  return {
    generatedAt: latest.generatedAt,
    sha256: latest.sha256,
    clusters: new Map(items.map((i) => [i.key.slice(prefix.length), i.value])),
  };
}

/** Keeps what the next run diffs against: one small item per cluster (items stay far below DynamoDB's 400 KB). */
async function recordStatuses(
  store: StateStore,
  snapshot: JurisdictionSnapshot,
  previous: PreviousSnapshot | null,
): Promise<void> {
  const j = snapshot.jurisdiction.id;
  await store.putMany(
    SNAPSHOTS_NS,
    snapshot.clusters.map((c) => ({
      key: `statuses/${j}/${c.id}`,
      value: Object.fromEntries(c.results.map((r) => [r.control, r.status])),
    })),
  );
  const now = new Set(snapshot.clusters.map((c) => c.id));
  const gone = [...(previous?.clusters.keys() ?? [])].filter((id) => !now.has(id));
  if (gone.length > 0)
    await store.deleteMany(
      SNAPSHOTS_NS,
      gone.map((id) => `statuses/${j}/${id}`),
    );
}

function clusterResult(cluster: Cluster, results: ClusterResult['results']): ClusterResult {
  return {
    id: cluster.id,
    name: cluster.name,
    cloud: cluster.cloud,
    scope: cluster.scope,
    region: cluster.region,
    country: cluster.country,
    kubernetesVersion: cluster.kubernetesVersion,
    counts: countStatuses(results),
    results,
  };
}

/**
 * Writes the files into one write-once store under `snapshots/<jurisdiction>/<timestamp>/`,
 * after checking the store lies inside the jurisdiction and keeps objects write-once; the
 * manifest (hash of every file) goes last, so a manifest names only files that exist.
 */
async function publishTo(
  deps: SnapshotDeps,
  archive: ArchiveStore,
  output: Pick<JurisdictionOutput, 'jurisdiction' | 'files' | 'sha256' | 'snapshot'>,
  signal: AbortSignal | undefined,
): Promise<PublishedCopy> {
  const s = signal ? { signal } : {};
  const j = output.jurisdiction;
  const located = await archive.location(s);
  const declaredLocal = (archive as { compliantStorage?: unknown }).compliantStorage === false;
  const compliantStorage = located !== null && !declaredLocal;
  if (located) {
    deps.residency.assertResidency(
      { jurisdiction: j },
      { cloud: located.cloud, region: located.region, what: 'compliance snapshot' },
    );
  } else if (!declaredLocal || deps.allowLocalEvidence !== true) {
    // Without a location the residency guard has nothing to compare: only a store that says it
    // is a local directory, in a run that explicitly allows local evidence, may be written.
    throw new ResidencyError(
      declaredLocal
        ? `${archive.id} is a local directory, not compliant storage; residency cannot be verified and local evidence is not allowed in this run`
        : `the location of ${archive.id} is unknown; residency cannot be verified`,
      { jurisdiction: j, targetRegion: 'unknown' },
    );
  }
  const retentionDays = deps.config.jurisdictions[j]?.audit.retentionDays ?? 400;
  await archive.assertImmutable(retentionDays, s);
  const stamp = output.snapshot.generatedAt.replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
  const prefix = `snapshots/${j}/${stamp}/`;
  const objects: PublishedCopy['objects'] = [];
  const put = async (name: string, text: string, contentType: string) => {
    const body = new TextEncoder().encode(text);
    const digest = sha256(body);
    try {
      const made = await archive.create(`${prefix}${name}`, body, { sha256: digest, contentType }, s);
      objects.push({ key: made.key, version: made.version, sha256: digest });
    } catch (error) {
      // A retried invocation finds its own earlier write: same bytes are success, other bytes are not.
      if (!(error instanceof ObjectExistsError)) throw error;
      const existing = await archive.get(`${prefix}${name}`, s);
      if (!existing || sha256(existing) !== digest) throw error;
      objects.push({ key: `${prefix}${name}`, version: 'existing', sha256: digest });
    }
  };
  for (const format of FORMATS) {
    await put(`snapshot.${format}`, output.files[format], CONTENT_TYPES[format]);
  }
  const manifest = {
    kind: 'fleetward.snapshot-manifest',
    schemaVersion: SNAPSHOT_SCHEMA_VERSION,
    jurisdiction: j,
    generatedAt: output.snapshot.generatedAt,
    previousSha256: output.snapshot.changes.previous?.sha256 ?? null,
    files: Object.fromEntries(FORMATS.map((f) => [`snapshot.${f}`, output.sha256[f]])),
  };
  await put('manifest.json', `${JSON.stringify(manifest, null, 2)}\n`, CONTENT_TYPES.json);
  return { store: archive.id, compliantStorage, prefix, objects };
}

/** Evaluates, diffs, renders, records and (unless told not to) publishes snapshots. */
export async function publish(deps: SnapshotDeps, options: SnapshotOptions = {}): Promise<SnapshotResult> {
  const now = deps.clock.now();
  const generatedAt = now.toISOString();
  const id = runId(now);
  const only = options.jurisdiction;
  if (only !== undefined && only !== UNASSIGNED && !deps.config.jurisdictions[only]) {
    throw new UsageError(`unknown jurisdiction "${only}"`);
  }
  const clusters = await inventory(deps.store, only ? { jurisdiction: only } : {});
  const evidence = await loadEvidence(deps.store, clusters);
  const byJurisdiction = new Map<string, Cluster[]>();
  for (const j of Object.keys(deps.config.jurisdictions).sort()) {
    if (!only || only === j) byJurisdiction.set(j, []);
  }
  for (const c of [...clusters].sort((a, b) => a.id.localeCompare(b.id))) {
    const list = byJurisdiction.get(c.jurisdiction) ?? [];
    list.push(c);
    byJurisdiction.set(c.jurisdiction, list);
  }

  const outputs: JurisdictionOutput[] = [];
  for (const [j, members] of byJurisdiction) {
    options.signal?.throwIfAborted();
    const info = jurisdictionInfo(deps.config, j);
    const results = members.map((c) =>
      clusterResult(
        c,
        evaluateCluster(c, evidence.get(c.id)!, {
          config: deps.config,
          residency: deps.residency,
          now,
        }),
      ),
    );
    const byControl: Record<string, StatusCounts> = {};
    for (const control of CONTROLS) {
      byControl[control.id] = countStatuses(
        results.flatMap((c) => c.results.filter((r) => r.control === control.id)),
      );
    }
    const previous = await previousSnapshot(deps.store, j);
    const snapshot: JurisdictionSnapshot = {
      schemaVersion: SNAPSHOT_SCHEMA_VERSION,
      kind: 'fleetward.jurisdiction-snapshot',
      generatedAt,
      stage: deps.config.stage,
      jurisdiction: info,
      catalogue: {
        version: CATALOGUE_VERSION,
        controls: CONTROLS.map((c) => ({
          ...c,
          references: c.references.filter((r) => info.laws.includes(r.law)),
        })).filter((c) => c.references.length > 0),
      },
      summary: {
        clusters: results.length,
        counts: results.reduce((acc, c) => addCounts(acc, c.counts), emptyCounts()),
        byControl,
      },
      clusters: results,
      changes: diffSnapshots(previous, results),
    };
    const files = Object.fromEntries(FORMATS.map((f) => [f, render(snapshot, f)])) as Record<
      SnapshotFormat,
      string
    >;
    const hashes = Object.fromEntries(FORMATS.map((f) => [f, sha256(files[f])])) as Record<
      SnapshotFormat,
      string
    >;
    const output: JurisdictionOutput = { jurisdiction: j, snapshot, files, sha256: hashes, published: [] };

    const publishing = options.publish ?? deps.evidence !== undefined;
    if (publishing && deps.evidence && j !== UNASSIGNED) {
      try {
        for (const archive of await deps.evidence.all(j)) {
          output.published.push(await publishTo(deps, archive, output, options.signal));
        }
      } catch (error) {
        if (options.signal?.aborted) throw error;
        output.publishError = errorInfo(error);
        deps.logger.warn('Snapshot not published', { jurisdiction: j, error: output.publishError });
      }
    }
    await recordStatuses(deps.store, snapshot, previous);
    const latest: LatestSnapshotRecord = {
      generatedAt,
      sha256: hashes.json,
      files: hashes,
      published: output.published,
    };
    await deps.store.putMany(SNAPSHOTS_NS, [
      { key: `latest/${j}`, value: latest },
      { key: `history/${j}/${generatedAt}`, value: latest },
    ]);
    deps.logger.info('Snapshot recorded', {
      jurisdiction: j,
      clusters: results.length,
      sha256: hashes.json,
      published: output.published.map((p) => p.store),
    });
    outputs.push(output);
    options.onProgress?.(outputs.length, byJurisdiction.size, j);
  }

  const summary: FleetSummary = {
    schemaVersion: SNAPSHOT_SCHEMA_VERSION,
    kind: 'fleetward.fleet-summary',
    generatedAt,
    stage: deps.config.stage,
    catalogueVersion: CATALOGUE_VERSION,
    jurisdictions: outputs.map((o) => ({
      id: o.jurisdiction,
      clusters: o.snapshot.summary.clusters,
      counts: o.snapshot.summary.counts,
      newlyFailing: o.snapshot.changes.newlyFailing.length,
      newlyFixed: o.snapshot.changes.newlyFixed.length,
    })),
    totals: {
      clusters: outputs.reduce((n, o) => n + o.snapshot.summary.clusters, 0),
      counts: outputs.reduce((acc, o) => addCounts(acc, o.snapshot.summary.counts), emptyCounts()),
    },
    jobs: await jobHeartbeats(deps.store, now),
  };
  return { runId: id, generatedAt, jurisdictions: outputs, summary };
}

/** One cluster's controls evaluated now, and how they differ from the jurisdiction's last snapshot. */
export interface ClusterReevaluation {
  clusterId: string;
  jurisdiction: string;
  results: ControlResult[];
  /** Controls whose status differs from the last snapshot (all failing ones when the cluster was not in it). */
  changes: (ControlChange & { severity: ControlSeverity; jurisdiction: string })[];
}

/**
 * Re-evaluates one cluster (after a cloud event) against the evidence on record and compares
 * it with the last published snapshot of its jurisdiction. Records nothing: the next
 * snapshot still reports the change against the previous one.
 */
export async function reevaluateCluster(
  deps: Pick<SnapshotDeps, 'config' | 'store' | 'residency' | 'clock'>,
  clusterId: string,
): Promise<ClusterReevaluation> {
  const [cluster] = await inventory(deps.store, clusterId);
  const c = cluster!;
  const evidence = await loadEvidence(deps.store, [c]);
  const results = evaluateCluster(c, evidence.get(c.id)!, {
    config: deps.config,
    residency: deps.residency,
    now: deps.clock.now(),
  });
  const before = await deps.store.get<Record<string, ControlStatus>>(
    SNAPSHOTS_NS,
    `statuses/${c.jurisdiction}/${c.id}`,
  );
  const severity = new Map(CONTROLS.map((k) => [k.id, k.severity]));
  const changes: ClusterReevaluation['changes'] = [];
  for (const r of results) {
    const was = before ? (before[r.control] ?? null) : null;
    if (was === r.status || (!before && r.status !== 'fail')) continue;
    changes.push({
      clusterId: c.id,
      jurisdiction: c.jurisdiction,
      control: r.control,
      before: was,
      after: r.status,
      severity: severity.get(r.control) ?? 'medium',
    });
  }
  return { clusterId: c.id, jurisdiction: c.jurisdiction, results, changes };
}

/**
 * The Slack digest of a snapshot run: counts per jurisdiction and the controls that newly
 * fail or were fixed (each with its control's severity, so routes filter by it).
 */
export function snapshotReport(result: SnapshotResult): JobReport {
  const severity = Object.fromEntries(CONTROLS.map((c) => [c.id, c.severity]));
  const tag = (j: string) => (c: ControlChange) => ({ ...c, jurisdiction: j, severity: severity[c.control] });
  return {
    job: 'snapshot',
    runId: result.runId,
    title: 'Fleetward compliance snapshot',
    findings: [],
    counts: result.jurisdictions.map((o) => ({
      jurisdiction: o.jurisdiction,
      counts: o.snapshot.summary.counts,
    })),
    changes: {
      newlyFailing: result.jurisdictions.flatMap((o) =>
        o.snapshot.changes.newlyFailing.map(tag(o.jurisdiction)),
      ),
      newlyFixed: result.jurisdictions.flatMap((o) => o.snapshot.changes.newlyFixed.map(tag(o.jurisdiction))),
    },
    controlSeverity: severity,
  };
}
