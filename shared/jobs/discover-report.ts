/**
 * Human-readable rendering of a discovery result: one table per jurisdiction, then the diff and
 * failures. Every line fits 120 columns (long cluster ids get a line of their own); `--wide`
 * adds the full version, country and creation date.
 */
import type { FleetConfig } from '../config/schema.ts';
import { type Cluster, UNASSIGNED } from '../model.ts';
import { PRESETS } from '../residency/jurisdictions.ts';
import { type Column, renderTable, TABLE_WIDTH, wrapHanging } from '../runtime/table.ts';
import type { DiscoverResult } from './discover.ts';

/** `1.31.6-gke.1020000` -> `1.31`: the minor release is what support windows follow. */
const minor = (v: string | null) => (v ? (/^v?(\d+\.\d+)/.exec(v)?.[1] ?? v) : '-');
const secrets = (c: Cluster) =>
  c.secretsEncryptionKey ? 'customer' : c.cloud === 'kubeconfig' ? '?' : 'none';
const audit = (c: Cluster) => (c.auditLogging === null ? '?' : c.auditLogging ? 'on' : 'off');

const COLUMNS: Column<Cluster>[] = [
  { title: 'CLUSTER', value: (c) => c.id, key: true },
  { title: 'REGION', value: (c) => c.region },
  { title: 'COUNTRY', value: (c) => c.country ?? '-', wide: true },
  { title: 'VERSION', value: (c) => minor(c.kubernetesVersion), narrow: true },
  { title: 'VERSION', value: (c) => c.kubernetesVersion ?? '-', wide: true },
  { title: 'ENDPOINT', value: (c) => c.endpointAccess },
  { title: 'SECRETS', value: secrets },
  { title: 'AUDIT', value: audit },
  { title: 'STATUS', value: (c) => c.status },
  { title: 'CREATED', value: (c) => c.createdAt?.slice(0, 10) ?? '-', wide: true },
];

/** What the columns' words mean; printed under the tables when a `?` is among them. */
const LEGEND =
  "SECRETS customer = Kubernetes secrets encrypted with your own key (KMS, Cloud KMS, Key Vault), none = with the cloud's default key; ? = the cloud does not report it (kubeconfig contexts; AKS sends audit logs through diagnostic settings, which 'audit collect' checks).";

/** Diff lines printed before "and N more"; `--json` always has the whole diff. */
const MAX_DIFF_LINES = 30;

function title(id: string, config: FleetConfig): string {
  if (id === UNASSIGNED) return 'unassigned — region outside every configured jurisdiction';
  const j = config.jurisdictions[id];
  const label = j?.name ?? (j?.preset ? PRESETS[j.preset].name : undefined);
  return label ? `${id} — ${label}` : id;
}

export function renderDiscoverTable(
  result: DiscoverResult,
  config: FleetConfig,
  options: { wide?: boolean } = {},
): string {
  const wide = options.wide === true;
  const width = wide ? Number.POSITIVE_INFINITY : TABLE_WIDTH;
  const groups = new Map<string, Cluster[]>();
  for (const id of [...Object.keys(config.jurisdictions), UNASSIGNED]) groups.set(id, []);
  for (const c of result.clusters) groups.get(c.jurisdiction)?.push(c) ?? groups.set(c.jurisdiction, [c]);
  const out: string[] = [];
  for (const [id, clusters] of groups) {
    if (clusters.length === 0) continue;
    out.push(
      `${title(id, config)} (${clusters.length} cluster${clusters.length === 1 ? '' : 's'})`,
      renderTable(COLUMNS, clusters, { wide }),
      '',
    );
  }
  if (result.clusters.length === 0) out.push('No clusters found.', '');
  if (result.clusters.some((c) => secrets(c) === '?' || audit(c) === '?'))
    out.push(...wrapHanging('Legend: ', LEGEND, 8, width), '');
  const { added, removed, changed } = result.diff;
  out.push(
    `Inventory: ${result.clusters.length} clusters; diff +${added.length} added, -${removed.length} removed, ~${changed.length} changed`,
  );
  const entries = [
    ...added.map((id) => [`  + ${id}`]),
    ...removed.map((id) => [`  - ${id}`]),
    ...changed.map((c) => wrapHanging(`  ~ ${c.id}: `, c.fields.map((f) => f.field).join(', '), 6, width)),
  ];
  out.push(...entries.slice(0, MAX_DIFF_LINES).flat());
  if (entries.length > MAX_DIFF_LINES)
    out.push(`  ... and ${entries.length - MAX_DIFF_LINES} more (use --json for all)`);
  if (result.stale.length > 0) out.push(`Kept as last seen (scope failed): ${result.stale.length}`);
  if (result.residencyFindings.length > 0) {
    out.push(`Residency findings (${result.residencyFindings.length}):`);
    for (const f of result.residencyFindings) out.push(...wrapHanging(`  ${f.kind}: `, f.message, 4, width));
  }
  if (result.failures.length > 0) {
    out.push(`Failures (${result.failures.length}):`);
    for (const f of result.failures) {
      const where = [f.cloud, f.scope, f.region, f.cluster].filter(Boolean).join(' ');
      const head = `  ${f.kind === 'unparseable' ? 'unparseable' : 'failed'}: ${where}: `;
      out.push(...wrapHanging(head, f.error.message, 4, width));
    }
  }
  return out.join('\n');
}
