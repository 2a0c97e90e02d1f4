/**
 * One jurisdiction snapshot as CSV (RFC 4180: CRLF line ends, a header row, fields quoted
 * when they hold `,` `"` CR or LF), one row per cluster and control, for spreadsheets.
 * Values a spreadsheet would read as a formula are defused with a leading `'`.
 */
import type { ClusterResult, ControlResult, JurisdictionSnapshot } from '../schema.ts';

/** The columns, in order. */
export const CSV_COLUMNS = [
  'jurisdiction',
  'cluster_id',
  'cluster_name',
  'cloud',
  'region',
  'control',
  'title',
  'severity',
  'status',
  'reason',
  'remedy',
  'evidence_sources',
  'observed_at',
] as const;

/**
 * Renders a jurisdiction snapshot as CSV: the header row, then one row per cluster x control
 * (catalogue order; a control a cluster has no result for gets an empty status and the reason
 * `not evaluated`). `evidence_sources` lists the distinct sources separated by `;`;
 * `observed_at` is the latest evidence time. Every line ends in CRLF.
 */
export function renderCsv(snapshot: JurisdictionSnapshot): string {
  const controls: ColumnControl[] = snapshot.catalogue.controls.map((c) => ({
    id: c.id,
    title: c.title,
    severity: c.severity,
  }));
  const known = new Set(controls.map((c) => c.id));
  const extra = new Set<string>();
  for (const cluster of snapshot.clusters) {
    for (const r of cluster.results) if (!known.has(r.control)) extra.add(r.control);
  }
  for (const id of [...extra].sort()) controls.push({ id, title: '', severity: '' });

  const lines = [CSV_COLUMNS.map(csvField).join(',')];
  for (const cluster of snapshot.clusters) {
    for (const control of controls) {
      const result = cluster.results.find((r) => r.control === control.id);
      lines.push(row(snapshot.jurisdiction.id, cluster, control, result).map(csvField).join(','));
    }
  }
  return `${lines.join('\r\n')}\r\n`;
}

interface ColumnControl {
  id: string;
  title: string;
  severity: string;
}

function row(
  jurisdiction: string,
  cluster: ClusterResult,
  control: ColumnControl,
  result: ControlResult | undefined,
): string[] {
  const sources = result ? [...new Set(result.evidence.map((e) => e.source))].join(';') : '';
  return [
    jurisdiction,
    cluster.id,
    cluster.name,
    cluster.cloud,
    cluster.region,
    control.id,
    control.title,
    control.severity,
    result?.status ?? '',
    result?.reason ?? 'not evaluated',
    result?.remedy ?? '',
    sources,
    result ? latestObservation(result) : '',
  ];
}

/** The latest `observedAt` of a result's evidence (by instant; unparseable times lose to parseable ones). */
function latestObservation(result: ControlResult): string {
  let best: { raw: string; at: number } | undefined;
  for (const item of result.evidence) {
    if (item.observedAt === null) continue;
    const parsed = Date.parse(item.observedAt);
    const at = Number.isNaN(parsed) ? Number.NEGATIVE_INFINITY : parsed;
    if (!best || at > best.at || (at === best.at && item.observedAt > best.raw)) {
      best = { raw: item.observedAt, at };
    }
  }
  return best?.raw ?? '';
}

/**
 * One CSV field: a value a spreadsheet would evaluate (starting with `=` `+` `-` `@`, TAB or
 * CR) gets a leading `'`; a value holding `,` `"` CR or LF is quoted, with `"` doubled.
 */
function csvField(value: string): string {
  const safe = /^[=+\-@\t\r]/.test(value) ? `'${value}` : value;
  return /[",\r\n]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
}
