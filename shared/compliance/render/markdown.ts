/**
 * One jurisdiction snapshot as GitHub-flavoured Markdown: for pull requests, wikis and
 * tickets. Every string that comes from data is escaped, so a cluster name or a reason
 * cannot break a table, open a link or inject HTML.
 */
import type { ControlChange, ControlStatus, JurisdictionSnapshot, LawId, StatusCounts } from '../schema.ts';
import { CONTROL_STATUSES } from '../schema.ts';

const LAW_NAMES: Record<LawId, string> = {
  gdpr: 'GDPR — Regulation (EU) 2016/679',
  dpdp: 'DPDP — Digital Personal Data Protection Act, 2023 (India)',
  popia: 'POPIA — Protection of Personal Information Act, 2013 (South Africa)',
  'ke-dpa': 'Data Protection Act, 2019 (Kenya)',
};

const STATUS_LABEL: Record<ControlStatus, string> = {
  pass: '✓ pass',
  fail: '✗ fail',
  'not-applicable': '– n/a',
  unknown: '? unknown',
};

/**
 * Renders a jurisdiction snapshot as Markdown: title and metadata, a summary table (overall
 * and per control), the changes since the previous snapshot, one section per cluster with a
 * control / status / reason / remedy table, and the controls catalogue with the references to
 * the jurisdiction's laws. Deterministic for the same input.
 */
export function renderMarkdown(snapshot: JurisdictionSnapshot): string {
  const { jurisdiction } = snapshot;
  const out: string[] = [];
  out.push(`# Compliance snapshot: ${md(jurisdiction.name)} (${md(jurisdiction.id)})`, '');
  out.push(
    `- Laws: ${jurisdiction.laws.length ? jurisdiction.laws.map((l) => md(LAW_NAMES[l])).join('; ') : 'none'}`,
    `- Countries: ${jurisdiction.countries.length ? md(jurisdiction.countries.join(', ')) : 'none'}`,
    `- Generated at: ${md(snapshot.generatedAt)}`,
    `- Stage: ${md(snapshot.stage)}`,
    `- Catalogue version: ${md(snapshot.catalogue.version)}`,
    `- Schema version: ${md(snapshot.schemaVersion)}`,
    '',
  );

  out.push('## Summary', '', `${snapshot.summary.clusters} cluster(s).`, '');
  out.push(
    table(
      ['Status', 'Results'],
      CONTROL_STATUSES.map((s) => [STATUS_LABEL[s], String(snapshot.summary.counts[s])]),
      ['left', 'right'],
    ),
    '',
  );
  const controlIds = controlsOf(snapshot);
  out.push(
    table(
      ['Control', ...CONTROL_STATUSES.map((s) => STATUS_LABEL[s])],
      controlIds.map((id) => {
        const counts: StatusCounts = snapshot.summary.byControl[id] ?? {
          pass: 0,
          fail: 0,
          'not-applicable': 0,
          unknown: 0,
        };
        return [md(id), ...CONTROL_STATUSES.map((s) => String(counts[s]))];
      }),
      ['left', 'right', 'right', 'right', 'right'],
    ),
    '',
  );

  out.push('## Changes since last snapshot', '');
  const diff = snapshot.changes;
  if (!diff.previous) {
    out.push('First snapshot of this jurisdiction: nothing to compare with.', '');
  } else {
    out.push(
      `Compared with the snapshot generated at ${md(diff.previous.generatedAt)} (SHA-256 ${md(diff.previous.sha256)}).`,
      '',
    );
    const sections: [string, ControlChange[]][] = [
      ['Newly failing', diff.newlyFailing],
      ['Newly fixed', diff.newlyFixed],
      ['Other changes', diff.otherChanges],
    ];
    for (const [title, items] of sections) {
      out.push(`### ${title} (${items.length})`, '');
      out.push(
        items.length === 0
          ? 'None.'
          : table(
              ['Cluster', 'Control', 'Before', 'After'],
              items.map((c) => [
                md(c.clusterId),
                md(c.control),
                statusOrAbsent(c.before),
                statusOrAbsent(c.after),
              ]),
            ),
        '',
      );
    }
    const lists: [string, string[]][] = [
      ['Added clusters', diff.addedClusters],
      ['Removed clusters', diff.removedClusters],
    ];
    for (const [title, ids] of lists) {
      out.push(`### ${title} (${ids.length})`, '');
      out.push(ids.length === 0 ? 'None.' : ids.map((id) => `- ${mdStart(id)}`).join('\n'), '');
    }
  }

  out.push('## Clusters', '');
  if (snapshot.clusters.length === 0) out.push('No cluster in this jurisdiction.', '');
  for (const cluster of snapshot.clusters) {
    out.push(`### ${mdStart(cluster.name)}`, '');
    out.push(
      `- Id: ${md(cluster.id)}`,
      `- Cloud: ${md(cluster.cloud)}, scope ${md(cluster.scope)}, region ${md(cluster.region)}, country ${md(cluster.country ?? 'unknown')}`,
      `- Kubernetes: ${md(cluster.kubernetesVersion ?? 'unknown')}`,
      `- Results: ${CONTROL_STATUSES.map((s) => `${STATUS_LABEL[s]} ${cluster.counts[s]}`).join(', ')}`,
      '',
    );
    out.push(
      cluster.results.length === 0
        ? 'No result.'
        : table(
            ['Control', 'Status', 'Reason', 'Remedy'],
            cluster.results.map((r) => [
              md(r.control),
              STATUS_LABEL[r.status],
              md(r.reason),
              r.remedy ? md(r.remedy) : '',
            ]),
          ),
      '',
    );
  }

  out.push(`## Controls (catalogue ${md(snapshot.catalogue.version)})`, '');
  const laws = new Set(jurisdiction.laws);
  for (const control of snapshot.catalogue.controls) {
    out.push(`### ${md(control.id)}: ${md(control.title)}`, '');
    out.push(
      `- Severity: ${md(control.severity)}`,
      `- Rationale: ${md(control.rationale)}`,
      `- Evidence: ${md(control.evidence.join(', '))}`,
      `- Remedy: ${md(control.remedy)}`,
    );
    const refs = control.references.filter((r) => laws.has(r.law));
    if (refs.length === 0) out.push('- References: none under this jurisdiction’s laws');
    else {
      out.push('- References:');
      for (const ref of refs) out.push(`  - ${md(LAW_NAMES[ref.law])}, ${md(ref.cite)}: ${md(ref.title)}`);
    }
    out.push('');
  }
  return `${out
    .join('\n')
    .replace(/\n{3,}/g, '\n\n')
    .trimEnd()}\n`;
}

/**
 * Escapes one data string for inline Markdown (table cells, text after a label): newlines
 * become spaces; backslash, `|` and the characters that start emphasis, code, links, images,
 * autolinks, HTML, entities, math or strike-through are backslash-escaped.
 */
function md(value: string): string {
  return value.replace(/\r\n|\r|\n|\u2028|\u2029/g, ' ').replace(/[\\`*_[\]<>|~!&#$]/g, '\\$&');
}

/**
 * Like {@link md}, for text that starts a heading or a list item: a leading block marker
 * (`-`, `+`, `=`, `1.`, `1)`) is escaped too, so `- x` or `1. x` cannot open a nested list.
 */
function mdStart(value: string): string {
  return md(value)
    .replace(/^(\s*)([-+=])/, '$1\\$2')
    .replace(/^(\s*\d+)([.)])/, '$1\\$2');
}

function controlsOf(snapshot: JurisdictionSnapshot): string[] {
  const ids = snapshot.catalogue.controls.map((c) => c.id);
  const known = new Set(ids);
  const extra = new Set<string>();
  for (const cluster of snapshot.clusters) {
    for (const r of cluster.results) if (!known.has(r.control)) extra.add(r.control);
  }
  return [...ids, ...[...extra].sort()];
}

function statusOrAbsent(status: ControlStatus | null): string {
  return status === null ? 'absent' : STATUS_LABEL[status];
}

/** A GFM pipe table; cells are already escaped. */
function table(head: string[], rows: string[][], align?: ('left' | 'right')[]): string {
  const rule = head.map((_, i) => (align?.[i] === 'right' ? '---:' : '---'));
  return [head, rule, ...rows].map((cells) => `| ${cells.join(' | ')} |`).join('\n');
}
