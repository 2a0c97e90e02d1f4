/** Human-readable rendering of a discovery result: one table per jurisdiction, then the diff and failures. */
import type { FleetConfig } from '../config/schema.ts';
import { type Cluster, UNASSIGNED } from '../model.ts';
import { PRESETS } from '../residency/jurisdictions.ts';
import type { DiscoverResult } from './discover.ts';

const COLUMNS: { title: string; value: (c: Cluster) => string }[] = [
  { title: 'CLOUD', value: (c) => c.cloud },
  { title: 'SCOPE', value: (c) => c.scope },
  { title: 'REGION', value: (c) => c.region },
  { title: 'NAME', value: (c) => c.name },
  { title: 'VERSION', value: (c) => c.kubernetesVersion ?? '-' },
  { title: 'ENDPOINT', value: (c) => c.endpointAccess },
  {
    title: 'SECRETS KEY',
    value: (c) => (c.secretsEncryptionKey ? 'customer' : c.cloud === 'kubeconfig' ? '?' : 'none'),
  },
  { title: 'AUDIT LOG', value: (c) => (c.auditLogging === null ? '?' : c.auditLogging ? 'on' : 'off') },
  { title: 'STATUS', value: (c) => c.status },
];

/** Diff lines printed before "and N more"; `--json` always has the whole diff. */
const MAX_DIFF_LINES = 30;

function table(rows: Cluster[]): string {
  const cells = [COLUMNS.map((c) => c.title), ...rows.map((r) => COLUMNS.map((c) => c.value(r)))];
  const widths = COLUMNS.map((_, i) => Math.max(...cells.map((row) => row[i]!.length)));
  return cells
    .map(
      (row) =>
        `  ${row
          .map((cell, i) => cell.padEnd(widths[i]!))
          .join('  ')
          .trimEnd()}`,
    )
    .join('\n');
}

function title(id: string, config: FleetConfig): string {
  if (id === UNASSIGNED) return 'unassigned — region outside every configured jurisdiction';
  const j = config.jurisdictions[id];
  const label = j?.name ?? (j?.preset ? PRESETS[j.preset].name : undefined);
  return label ? `${id} — ${label}` : id;
}

export function renderDiscoverTable(result: DiscoverResult, config: FleetConfig): string {
  const groups = new Map<string, Cluster[]>();
  for (const id of [...Object.keys(config.jurisdictions), UNASSIGNED]) groups.set(id, []);
  for (const c of result.clusters) groups.get(c.jurisdiction)?.push(c) ?? groups.set(c.jurisdiction, [c]);
  const out: string[] = [];
  for (const [id, clusters] of groups) {
    if (clusters.length === 0) continue;
    out.push(
      `${title(id, config)} (${clusters.length} cluster${clusters.length === 1 ? '' : 's'})`,
      table(clusters),
      '',
    );
  }
  if (result.clusters.length === 0) out.push('No clusters found.', '');
  const { added, removed, changed } = result.diff;
  out.push(
    `Inventory: ${result.clusters.length} clusters; diff +${added.length} added, -${removed.length} removed, ~${changed.length} changed`,
  );
  const lines = [
    ...added.map((id) => `  + ${id}`),
    ...removed.map((id) => `  - ${id}`),
    ...changed.map((c) => `  ~ ${c.id}: ${c.fields.map((f) => f.field).join(', ')}`),
  ];
  out.push(...lines.slice(0, MAX_DIFF_LINES));
  if (lines.length > MAX_DIFF_LINES)
    out.push(`  ... and ${lines.length - MAX_DIFF_LINES} more (use --json for all)`);
  if (result.stale.length > 0) out.push(`Kept as last seen (scope failed): ${result.stale.length}`);
  if (result.residencyFindings.length > 0) {
    out.push(`Residency findings (${result.residencyFindings.length}):`);
    for (const f of result.residencyFindings) out.push(`  ${f.kind}: ${f.message}`);
  }
  if (result.failures.length > 0) {
    out.push(`Failures (${result.failures.length}):`);
    for (const f of result.failures) {
      const where = [f.cloud, f.scope, f.region, f.cluster].filter(Boolean).join(' ');
      out.push(
        `  ${f.kind === 'unparseable' ? 'unparseable' : 'failed'}: ${where}: ${f.error.name}: ${f.error.message}`,
      );
    }
  }
  return out.join('\n');
}
