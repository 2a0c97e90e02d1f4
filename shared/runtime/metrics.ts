/**
 * What an operator watches, as CloudWatch embedded-metric-format lines (Powertools Metrics):
 * namespace `POWERTOOLS_METRICS_NAMESPACE` (serverless.yml sets `Fleetward`), one `job`
 * dimension per line. Counts only, never a cluster name or any cluster data.
 *
 * - `ItemsPlanned` (planners), `ItemsSucceeded` / `ItemsFailed` (workers);
 * - `RunSucceeded` (every successful scheduled run: the heartbeat alarms watch it);
 * - what each item did, summed per worker batch: `BackupsCreated`, `RpoBreaches`, `DrillsPassed`,
 *   `DrillsFailed`, `AuditEventsArchived`; `ClustersDiscovered` (discovery), `EventsIgnored` (event intake).
 */
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';

const metrics = new Metrics({
  namespace: process.env.POWERTOOLS_METRICS_NAMESPACE ?? 'Fleetward',
  serviceName: process.env.POWERTOOLS_SERVICE_NAME ?? 'fleetward',
});

export type JobMetric =
  | 'ItemsPlanned'
  | 'ItemsSucceeded'
  | 'ItemsFailed'
  | 'RunSucceeded'
  | 'ClustersDiscovered'
  | 'BackupsCreated'
  | 'RpoBreaches'
  | 'DrillsPassed'
  | 'DrillsFailed'
  | 'AuditEventsArchived'
  | 'EventsIgnored';

/** Emits one EMF line for `job` with the given counts (zero counts are emitted too: a flat line is news). */
export function recordJobMetrics(job: string, counts: Partial<Record<JobMetric, number>>): void {
  const entries = Object.entries(counts).filter(([, v]) => v !== undefined) as [JobMetric, number][];
  if (entries.length === 0) return;
  metrics.addDimension('job', job);
  for (const [name, value] of entries) metrics.addMetric(name, MetricUnit.Count, value);
  metrics.publishStoredMetrics();
}
