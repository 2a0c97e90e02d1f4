/**
 * One jurisdiction snapshot as a single self-contained HTML page for auditors: inline CSS,
 * a little inline vanilla JS, inline SVG charts, and no URL of any kind (the CSP forbids
 * every fetch). Every interpolated string is escaped; the evidence the page shows on click
 * is embedded as a JSON data block that cannot close its `<script>` element.
 *
 * The control matrix can be searched by cluster, filtered by status, control and cloud, and
 * sorted by any column; from phone width (390 px) to wide screens: below 48rem each cluster
 * becomes a card, above it the table scrolls inside its own box with the cluster column fixed.
 * The script runs under a CSP that allows exactly its SHA-256 hash, nothing else.
 */
import { createHash } from 'node:crypto';
import type {
  ClusterResult,
  Control,
  ControlChange,
  ControlResult,
  ControlStatus,
  JurisdictionSnapshot,
  LawId,
  StatusCounts,
} from '../schema.ts';
import { CONTROL_STATUSES } from '../schema.ts';

const LAW_NAMES: Record<LawId, string> = {
  gdpr: 'GDPR — Regulation (EU) 2016/679',
  dpdp: 'DPDP — Digital Personal Data Protection Act, 2023 (India)',
  popia: 'POPIA — Protection of Personal Information Act, 2013 (South Africa)',
  'ke-dpa': 'Data Protection Act, 2019 (Kenya)',
};

const LAW_SHORT: Record<LawId, string> = { gdpr: 'GDPR', dpdp: 'DPDP', popia: 'POPIA', 'ke-dpa': 'KE DPA' };

/** Label and symbol of each status: the matrix never relies on colour alone. */
const STATUS_TEXT: Record<ControlStatus, { label: string; symbol: string; colour: string }> = {
  pass: { label: 'pass', symbol: '✓', colour: '#2e7d32' },
  fail: { label: 'fail', symbol: '✗', colour: '#c62828' },
  'not-applicable': { label: 'n/a', symbol: '–', colour: '#757575' },
  unknown: { label: 'unknown', symbol: '?', colour: '#b26a00' },
};

/** Order of statuses when a control column is sorted: the worst first. */
const STATUS_RANK: Record<ControlStatus, number> = { fail: 0, unknown: 1, pass: 2, 'not-applicable': 3 };

/**
 * Renders a jurisdiction snapshot as one self-contained HTML document: header, summary with
 * charts (`#summary`), changes since the last snapshot (`#changes`), the cluster x control
 * matrix (`#matrix`, a cell opens that result's reason, remedy and evidence), failing results,
 * and the control catalogue with references to the jurisdiction's laws only.
 * The same snapshot always gives the same bytes.
 */
export function renderHtml(snapshot: JurisdictionSnapshot): string {
  const controls = columnsOf(snapshot);
  const title = `Compliance snapshot — ${snapshot.jurisdiction.name}`;
  return [
    '<!doctype html>',
    '<html lang="en">',
    '<head>',
    '<meta charset="utf-8">',
    `<meta http-equiv="Content-Security-Policy" content="${esc(CSP)}">`,
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    '<meta name="referrer" content="no-referrer">',
    '<meta name="color-scheme" content="light">',
    `<title>${esc(title)}</title>`,
    `<style>${STYLE}</style>`,
    '</head>',
    '<body>',
    header(snapshot, title),
    '<main>',
    summary(snapshot, controls),
    changes(snapshot),
    matrix(snapshot, controls),
    findings(snapshot, controls),
    catalogue(snapshot),
    '</main>',
    evidenceDialog(),
    `<script type="application/json" id="snapshot-data">${dataBlock(snapshot, controls)}</script>`,
    `<script>${SCRIPT}</script>`,
    '</body>',
    '</html>',
    '',
  ].join('\n');
}

/** A matrix column: a catalogue control, or a result's control the catalogue does not list. */
interface Column {
  id: string;
  control: Control | undefined;
}

function columnsOf(snapshot: JurisdictionSnapshot): Column[] {
  const columns: Column[] = snapshot.catalogue.controls.map((control) => ({ id: control.id, control }));
  const known = new Set(columns.map((c) => c.id));
  const extra = new Set<string>();
  for (const cluster of snapshot.clusters) {
    for (const result of cluster.results) if (!known.has(result.control)) extra.add(result.control);
  }
  for (const id of [...extra].sort()) columns.push({ id, control: undefined });
  return columns;
}

function header(snapshot: JurisdictionSnapshot, title: string): string {
  const { jurisdiction } = snapshot;
  const laws = jurisdiction.laws.map((law) => `<li>${esc(LAW_NAMES[law])}</li>`).join('');
  const rows: [string, string][] = [
    ['Jurisdiction', `${esc(jurisdiction.name)} <span class="muted">(${esc(jurisdiction.id)})</span>`],
    ['Laws', laws ? `<ul class="plain">${laws}</ul>` : '<span class="muted">none</span>'],
    ['Countries', jurisdiction.countries.length ? esc(jurisdiction.countries.join(', ')) : '—'],
    ['Generated at', `<time>${esc(snapshot.generatedAt)}</time>`],
    ['Stage', esc(snapshot.stage)],
    ['Catalogue version', esc(snapshot.catalogue.version)],
    ['Schema version', esc(snapshot.schemaVersion)],
  ];
  return [
    '<header>',
    `<h1>${esc(title)}</h1>`,
    `<dl class="meta">${rows.map(([k, v]) => `<dt>${k}</dt><dd>${v}</dd>`).join('')}</dl>`,
    '</header>',
  ].join('\n');
}

function summary(snapshot: JurisdictionSnapshot, columns: Column[]): string {
  const { counts } = snapshot.summary;
  const total = CONTROL_STATUSES.reduce((n, s) => n + counts[s], 0);
  const rows = CONTROL_STATUSES.map(
    (s) =>
      `<tr><th scope="row">${statusBadge(s)}</th><td class="num" data-status="${s}">${counts[s]}</td><td class="num">${percent(counts[s], total)}</td></tr>`,
  ).join('');
  return [
    '<section id="summary" aria-labelledby="summary-h">',
    '<h2 id="summary-h">Summary</h2>',
    `<p>${snapshot.summary.clusters} cluster(s), ${columns.length} control(s), ${total} result(s).</p>`,
    '<div class="summary-grid">',
    `<table class="counts"><caption>Results by status</caption><thead><tr><th scope="col">Status</th><th scope="col">Results</th><th scope="col">Share</th></tr></thead><tbody>${rows}</tbody></table>`,
    countsChart(counts),
    '</div>',
    '<h3>By control</h3>',
    byControlChart(snapshot, columns),
    '</section>',
  ].join('\n');
}

/** Horizontal bars, one per status, with the count written next to each bar. */
function countsChart(counts: StatusCounts): string {
  const max = Math.max(1, ...CONTROL_STATUSES.map((s) => counts[s]));
  const rowHeight = 28;
  const labelWidth = 110;
  const barWidth = 240;
  const height = CONTROL_STATUSES.length * rowHeight + 8;
  const bars = CONTROL_STATUSES.map((s, i) => {
    const y = 4 + i * rowHeight;
    const w = round((counts[s] / max) * barWidth);
    const { label, symbol, colour } = STATUS_TEXT[s];
    return [
      `<text x="${labelWidth - 8}" y="${y + 17}" text-anchor="end">${esc(`${symbol} ${label}`)}</text>`,
      `<rect x="${labelWidth}" y="${y + 3}" width="${w}" height="${rowHeight - 8}" fill="${colour}"><title>${esc(label)}: ${counts[s]}</title></rect>`,
      `<text x="${labelWidth + w + 6}" y="${y + 17}">${counts[s]}</text>`,
    ].join('');
  }).join('');
  const width = labelWidth + barWidth + 50;
  return `<svg class="chart" role="img" aria-labelledby="counts-chart-t" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}"><title id="counts-chart-t">Results by status: ${CONTROL_STATUSES.map((s) => `${STATUS_TEXT[s].label} ${counts[s]}`).join(', ')}</title>${bars}</svg>`;
}

/**
 * One stacked bar per control (how many clusters pass, fail, are not applicable, unknown),
 * as a list: the label, the bar and the counts are HTML text that wraps, so nothing is cut
 * off at any width (an SVG scales its text down and clips what passes its edge).
 */
function byControlChart(snapshot: JurisdictionSnapshot, columns: Column[]): string {
  const items = columns
    .map((column) => {
      const counts = snapshot.summary.byControl[column.id] ?? countsFor(snapshot.clusters, column.id);
      const total = CONTROL_STATUSES.reduce((n, s) => n + counts[s], 0);
      let x = 0;
      const segments = CONTROL_STATUSES.map((s) => {
        if (counts[s] === 0) return '';
        const rect = `<rect x="${x}" y="0" width="${counts[s]}" height="1" fill="${STATUS_TEXT[s].colour}"><title>${esc(column.id)}: ${esc(STATUS_TEXT[s].label)} ${counts[s]}</title></rect>`;
        x += counts[s];
        return rect;
      }).join('');
      const text = CONTROL_STATUSES.filter((s) => counts[s] > 0)
        .map((s) => `${counts[s]} ${STATUS_TEXT[s].label}`)
        .join(', ');
      const label = column.control
        ? `<a href="#control-${esc(column.id)}"><code>${esc(column.id)}</code></a>`
        : `<code>${esc(column.id)}</code>`;
      const bar = `<svg class="bar" viewBox="0 0 ${Math.max(1, total)} 1" preserveAspectRatio="none" aria-hidden="true" focusable="false"><rect x="0" y="0" width="${Math.max(1, total)}" height="1" fill="#eeeeee"/>${segments}</svg>`;
      return `<li><span class="bar-label">${label}</span>${bar}<span class="bar-text">${esc(text || 'no results')}</span></li>`;
    })
    .join('');
  return `<ol class="bars" aria-label="Results per control, by status">${items}</ol>`;
}

function changes(snapshot: JurisdictionSnapshot): string {
  const diff = snapshot.changes;
  const parts = [
    '<section id="changes" aria-labelledby="changes-h">',
    '<h2 id="changes-h">Changed since last snapshot</h2>',
  ];
  if (!diff.previous) {
    parts.push(
      '<p class="first">First snapshot of this jurisdiction: nothing to compare with.</p>',
      '</section>',
    );
    return parts.join('\n');
  }
  const names = new Map(snapshot.clusters.map((c) => [c.id, c.name]));
  parts.push(
    `<p>Compared with the snapshot generated at <time>${esc(diff.previous.generatedAt)}</time> (SHA-256 <code class="hash">${esc(diff.previous.sha256)}</code>).</p>`,
    changeTable('Newly failing', 'newly-failing', diff.newlyFailing, names),
    changeTable('Newly fixed', 'newly-fixed', diff.newlyFixed, names),
    changeTable('Other changes', 'other-changes', diff.otherChanges, names),
    clusterList('Added clusters', 'added-clusters', diff.addedClusters, names),
    clusterList('Removed clusters', 'removed-clusters', diff.removedClusters, names),
    '</section>',
  );
  return parts.join('\n');
}

function changeTable(title: string, id: string, items: ControlChange[], names: Map<string, string>): string {
  const heading = `<h3 id="${id}">${esc(title)} (${items.length})</h3>`;
  if (items.length === 0) return `${heading}<p class="muted">None.</p>`;
  const rows = items
    .map(
      (c) =>
        `<tr><td data-label="Cluster">${clusterLabel(c.clusterId, names)}</td><td data-label="Control"><code>${esc(c.control)}</code></td><td data-label="Before">${maybeStatus(c.before)}</td><td data-label="After">${maybeStatus(c.after)}</td></tr>`,
    )
    .join('');
  return `${heading}<table class="changes stack" aria-labelledby="${id}"><thead><tr><th scope="col">Cluster</th><th scope="col">Control</th><th scope="col">Before</th><th scope="col">After</th></tr></thead><tbody>${rows}</tbody></table>`;
}

function clusterList(title: string, id: string, ids: string[], names: Map<string, string>): string {
  const heading = `<h3 id="${id}">${esc(title)} (${ids.length})</h3>`;
  if (ids.length === 0) return `${heading}<p class="muted">None.</p>`;
  return `${heading}<ul>${ids.map((c) => `<li>${clusterLabel(c, names)}</li>`).join('')}</ul>`;
}

function clusterLabel(id: string, names: Map<string, string>): string {
  const name = names.get(id);
  return name === undefined
    ? `<span class="id">${esc(id)}</span>`
    : `${esc(name)} <span class="id muted">${esc(id)}</span>`;
}

function maybeStatus(status: ControlStatus | null): string {
  return status === null ? '<span class="muted">absent</span>' : statusBadge(status);
}

/** A sort button for a matrix column header; the script moves `aria-sort` to the sorted header. */
function sortHeader(key: string, label: string, title: string, cls: string): string {
  return `<th scope="col" class="${cls}" data-sort="${esc(key)}"><button type="button" class="sort" title="${esc(title)}"><span class="sort-label">${esc(label)}</span><span class="arrow" aria-hidden="true"></span></button></th>`;
}

function matrix(snapshot: JurisdictionSnapshot, columns: Column[]): string {
  const head = [
    sortHeader('name', 'Cluster', 'Sort by cluster name', 'cluster-col'),
    sortHeader('open', 'Open', 'Sort by open results: fail, then unknown, most first', 'open-col'),
    ...columns.map((c) =>
      sortHeader(
        `control:${c.id}`,
        c.id,
        `${c.control ? c.control.title : 'Not in the catalogue'}. Sort: fail, unknown, pass, n/a`,
        'control-col',
      ),
    ),
  ].join('');
  const body = snapshot.clusters
    .map((cluster, ci) => {
      const cells = columns
        .map((column) => {
          const ri = cluster.results.findIndex((r) => r.control === column.id);
          const result = cluster.results[ri];
          const attrs = `data-control="${esc(column.id)}" data-label="${esc(column.id)}"`;
          if (!result)
            return `<td class="cell none" ${attrs} data-status="none"><span class="muted">not evaluated</span></td>`;
          const { label, symbol } = STATUS_TEXT[result.status];
          const aria = `${cluster.name}, ${column.id}: ${label}. Show reason and evidence`;
          return `<td class="cell st-${result.status}" ${attrs} data-status="${result.status}"><button type="button" class="cell-btn st-${result.status}" data-c="${ci}" data-r="${ri}" aria-haspopup="dialog" aria-label="${esc(aria)}"><span class="sym" aria-hidden="true">${symbol}</span> ${esc(label)}</button></td>`;
        })
        .join('');
      const { fail, unknown } = countsIn(cluster, columns);
      const search = [cluster.name, cluster.id, cluster.region, cluster.country ?? '']
        .join(' ')
        .toLowerCase();
      return `<tr data-i="${ci}" data-cloud="${esc(cluster.cloud)}" data-name="${esc(cluster.name)}" data-search="${esc(search)}" data-fail="${fail}" data-unknown="${unknown}"><th scope="row">${clusterHeading(cluster)}</th>${openCell(fail, unknown)}${cells}</tr>`;
    })
    .join('\n');
  return [
    '<section id="matrix" aria-labelledby="matrix-h">',
    '<h2 id="matrix-h">Control matrix</h2>',
    '<p class="no-print">Select a cell to see the reason, the remedy and the evidence behind it. Search, filter and sort with the controls below or the column headers; a printed copy always shows every cluster.</p>',
    `<p class="legend">${CONTROL_STATUSES.map(statusBadge).join(' ')} <span class="muted small">Open: fail and unknown results of a cluster.</span></p>`,
    snapshot.clusters.length === 0
      ? '<p class="muted">No cluster in this jurisdiction.</p>'
      : [
          filters(snapshot, columns),
          `<div class="scroll" tabindex="0" role="region" aria-labelledby="matrix-h"><table class="matrix" id="matrix-table"><thead><tr>${head}</tr></thead><tbody>\n${body}\n</tbody></table></div>`,
          '<p id="f-empty" class="empty no-print" hidden>No cluster matches these filters.</p>',
        ].join('\n'),
    '</section>',
  ].join('\n');
}

/**
 * The search, filter and sort controls of the matrix. Hidden until the script runs, so a
 * page whose script is blocked never shows controls that do nothing.
 */
function filters(snapshot: JurisdictionSnapshot, columns: Column[]): string {
  const option = (value: string, text: string) => `<option value="${esc(value)}">${esc(text)}</option>`;
  const statuses = [
    option('', 'any status'),
    option('fail unknown', 'fail or unknown'),
    ...CONTROL_STATUSES.map((s) => option(s, `${STATUS_TEXT[s].symbol} ${STATUS_TEXT[s].label}`)),
  ].join('');
  const controls = [option('', 'every control'), ...columns.map((c) => option(c.id, c.id))].join('');
  const clouds = [...new Set(snapshot.clusters.map((c) => c.cloud))].sort();
  const cloudOptions = [option('', 'every cloud'), ...clouds.map((c) => option(c, c))].join('');
  const sorts = [
    option('', 'inventory order'),
    option('name', 'cluster name'),
    option('open', 'open results, most first'),
    ...columns.map((c) => option(`control:${c.id}`, `${c.id} (fail first)`)),
  ].join('');
  const field = (id: string, label: string, control: string, cls = 'field') =>
    `<div class="${cls}"><label for="${id}">${label}</label>${control}</div>`;
  return [
    '<div class="filters no-print" id="filters" role="search" aria-label="Control matrix" hidden>',
    field(
      'f-cluster',
      'Search clusters',
      '<input type="search" id="f-cluster" placeholder="name, id, region or country" autocomplete="off" spellcheck="false">',
      'field search',
    ),
    field('f-status', 'Status', `<select id="f-status">${statuses}</select>`),
    field('f-cloud', 'Cloud', `<select id="f-cloud">${cloudOptions}</select>`),
    field('f-control', 'Control', `<select id="f-control">${controls}</select>`, 'field wide'),
    field('f-sort', 'Sort by', `<select id="f-sort">${sorts}</select>`, 'field wide'),
    '<div class="field actions"><button type="button" id="f-reset">Reset</button></div>',
    '</div>',
    `<p id="f-count" class="count no-print" role="status" aria-live="polite">${snapshot.clusters.length} cluster(s)</p>`,
  ].join('\n');
}

/** The open results (fail, unknown) of a cluster in the matrix's columns. */
function countsIn(cluster: ClusterResult, columns: Column[]): { fail: number; unknown: number } {
  const ids = new Set(columns.map((c) => c.id));
  const mine = cluster.results.filter((r) => ids.has(r.control));
  return {
    fail: mine.filter((r) => r.status === 'fail').length,
    unknown: mine.filter((r) => r.status === 'unknown').length,
  };
}

function openCell(fail: number, unknown: number): string {
  if (fail === 0 && unknown === 0)
    return '<td class="open" data-label="Open"><span class="muted">none</span></td>';
  const part = (n: number, s: ControlStatus) =>
    n > 0
      ? `<span class="st-${s}"><span aria-hidden="true">${STATUS_TEXT[s].symbol}</span> ${n}<span class="vh"> ${STATUS_TEXT[s].label}</span></span>`
      : '';
  return `<td class="open" data-label="Open"><span class="open-counts">${part(fail, 'fail')}${part(unknown, 'unknown')}</span></td>`;
}

function clusterHeading(cluster: ClusterResult): string {
  const where = [cluster.cloud, cluster.region, cluster.country ?? 'country unknown'].join(' · ');
  return `<span class="cluster-name">${esc(cluster.name)}</span> <span class="id muted">${esc(cluster.id)}</span> <span class="where muted small">${esc(where)}</span>`;
}

/** Failing and unknown results with reason and remedy: what a printed copy must still show. */
function findings(snapshot: JurisdictionSnapshot, columns: Column[]): string {
  const order = new Map(columns.map((c, i) => [c.id, i]));
  const rows: string[] = [];
  for (const cluster of snapshot.clusters) {
    const open = cluster.results
      .filter((r) => r.status === 'fail' || r.status === 'unknown')
      .sort((a, b) => (order.get(a.control) ?? 0) - (order.get(b.control) ?? 0));
    for (const result of open) {
      rows.push(
        `<tr><td data-label="Cluster">${esc(cluster.name)}<br><span class="id muted">${esc(cluster.id)}</span></td><td data-label="Control"><code>${esc(result.control)}</code></td><td data-label="Status">${statusBadge(result.status)}</td><td data-label="Reason">${esc(result.reason)}</td><td data-label="Remedy">${result.remedy ? esc(result.remedy) : '<span class="muted">—</span>'}</td></tr>`,
      );
    }
  }
  return [
    '<section id="findings" aria-labelledby="findings-h">',
    '<h2 id="findings-h">Failing and unknown results</h2>',
    rows.length === 0
      ? '<p class="muted">None: every result is pass or not applicable.</p>'
      : `<table class="findings stack"><thead><tr><th scope="col">Cluster</th><th scope="col">Control</th><th scope="col">Status</th><th scope="col">Reason</th><th scope="col">Remedy</th></tr></thead><tbody>${rows.join('')}</tbody></table>`,
    '</section>',
  ].join('\n');
}

function catalogue(snapshot: JurisdictionSnapshot): string {
  const laws = new Set(snapshot.jurisdiction.laws);
  const items = snapshot.catalogue.controls.map((control) => {
    const refs = control.references.filter((r) => laws.has(r.law));
    const refList = refs.length
      ? `<ul class="refs">${refs.map((r) => `<li><abbr title="${esc(LAW_NAMES[r.law])}">${esc(LAW_SHORT[r.law])}</abbr> ${esc(r.cite)} — ${esc(r.title)}</li>`).join('')}</ul>`
      : '<p class="muted">No provision of this jurisdiction’s laws cited.</p>';
    return [
      `<article class="control" id="control-${esc(control.id)}">`,
      `<h3><code>${esc(control.id)}</code> ${esc(control.title)} <span class="sev sev-${esc(control.severity)}">${esc(control.severity)}</span></h3>`,
      `<p>${esc(control.rationale)}</p>`,
      `<dl class="meta"><dt>Evidence</dt><dd>${esc(control.evidence.join(', '))}</dd><dt>Remedy</dt><dd>${esc(control.remedy)}</dd><dt>References</dt><dd>${refList}</dd></dl>`,
      '</article>',
    ].join('');
  });
  return [
    '<section id="controls" aria-labelledby="controls-h">',
    `<h2 id="controls-h">Controls catalogue <span class="muted small">version ${esc(snapshot.catalogue.version)}</span></h2>`,
    ...items,
    '</section>',
  ].join('\n');
}

function evidenceDialog(): string {
  return [
    '<dialog id="evidence" aria-labelledby="ev-title">',
    '<button type="button" id="ev-close" class="dialog-close">Close <span aria-hidden="true">✕</span></button>',
    '<h2 id="ev-title"></h2>',
    '<p id="ev-status"></p>',
    '<h3>Reason</h3><p id="ev-reason"></p>',
    '<div id="ev-remedy-box"><h3>Remedy</h3><p id="ev-remedy"></p></div>',
    '<h3>Evidence</h3><div id="ev-items"></div>',
    '</dialog>',
  ].join('\n');
}

/** The data the evidence dialog reads: cluster names and results, indexed like the matrix cells. */
function dataBlock(snapshot: JurisdictionSnapshot, columns: Column[]): string {
  const titles: Record<string, string> = {};
  for (const column of columns) titles[column.id] = column.control?.title ?? column.id;
  const data = {
    controls: titles,
    statuses: STATUS_TEXT,
    rank: STATUS_RANK,
    clusters: snapshot.clusters.map((c) => ({
      id: c.id,
      name: c.name,
      results: c.results.map((r: ControlResult) => ({
        control: r.control,
        status: r.status,
        reason: r.reason,
        remedy: r.remedy ?? null,
        evidence: r.evidence,
      })),
    })),
  };
  return safeJson(data);
}

/**
 * JSON that is inert inside a `<script>` element: no `<` (so no `</script>` or `<!--`),
 * no `>` or `&`, and no U+2028/U+2029 line separators.
 */
function safeJson(value: unknown): string {
  return JSON.stringify(value)
    .replace(/</g, '\\u003c')
    .replace(/>/g, '\\u003e')
    .replace(/&/g, '\\u0026')
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029');
}

function statusBadge(status: ControlStatus): string {
  const { label, symbol } = STATUS_TEXT[status];
  return `<span class="badge st-${status}"><span class="sym" aria-hidden="true">${symbol}</span> ${esc(label)}</span>`;
}

function countsFor(clusters: readonly ClusterResult[], control: string): StatusCounts {
  const counts: StatusCounts = { pass: 0, fail: 0, 'not-applicable': 0, unknown: 0 };
  for (const cluster of clusters) {
    const result = cluster.results.find((r) => r.control === control);
    if (result) counts[result.status] += 1;
  }
  return counts;
}

function percent(part: number, total: number): string {
  return total === 0 ? '—' : `${((part / total) * 100).toFixed(1)}%`;
}

function round(n: number): number {
  return Math.round(n * 10) / 10;
}

/** Escapes text for HTML element content and quoted attribute values. */
function esc(value: string): string {
  return value
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}

const STYLE = `
:root{--pass:#2e7d32;--fail:#c62828;--na:#757575;--unknown:#b26a00;--line:#d0d0d0;--muted:#5f6368;--focus:#1a73e8;--soft:#f6f7f9}
*{box-sizing:border-box}
[hidden]{display:none!important}
html{-webkit-text-size-adjust:100%;text-size-adjust:100%}
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;color:#1b1b1b;background:#fff;margin:0 auto;padding:1.5rem 2rem;max-width:1600px}
h1{font-size:1.6rem;margin:0 0 .75rem;overflow-wrap:anywhere}h2{font-size:1.25rem;border-bottom:2px solid #1b1b1b;padding-bottom:.2rem;margin-top:2rem}h3{font-size:1.05rem;margin:1.2rem 0 .4rem}
code,.id,.hash{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:.9em}
.hash,.id,dd{overflow-wrap:anywhere}
.hash{word-break:break-all}
.muted{color:var(--muted)}.small{font-size:.85em}
.vh{position:absolute;width:1px;height:1px;margin:-1px;overflow:hidden;clip-path:inset(50%);white-space:nowrap}
:focus-visible{outline:3px solid var(--focus);outline-offset:2px}
dl.meta{display:grid;grid-template-columns:max-content minmax(0,1fr);gap:.2rem 1rem;margin:0}
dl.meta dt{font-weight:600}dl.meta dd{margin:0;min-width:0}
ul.plain{list-style:none;margin:0;padding:0}
table{border-collapse:collapse;margin:.5rem 0}
th,td{border:1px solid var(--line);padding:.3rem .5rem;text-align:left;vertical-align:top}
thead th{background:#f3f3f3}
caption{text-align:left;font-weight:600;padding-bottom:.3rem}
td.num{text-align:right;font-variant-numeric:tabular-nums}
table.stack{width:100%}table.stack td{overflow-wrap:anywhere}
.summary-grid{display:flex;flex-wrap:wrap;gap:1rem 2rem;align-items:flex-start}
svg.chart{max-width:100%;height:auto;font:12px system-ui,sans-serif}
svg.chart text{fill:#1b1b1b}
ol.bars{list-style:none;margin:.5rem 0;padding:0}
ol.bars li{display:grid;grid-template-columns:17rem minmax(6rem,26rem) minmax(10rem,1fr);gap:.2rem 1rem;align-items:center;padding:.15rem 0}
.bar-label{min-width:0;overflow-wrap:anywhere}.bar-label a{color:inherit}
svg.bar{display:block;width:100%;height:1.1rem}
.bar-text{font-size:.9em;min-width:0}
.badge{display:inline-block;padding:0 .4rem;border-radius:3px;font-weight:600;white-space:nowrap;border:1px solid currentColor}
.st-pass{color:var(--pass)}.st-fail{color:var(--fail)}.st-not-applicable{color:var(--na)}.st-unknown{color:var(--unknown)}
.legend{display:flex;flex-wrap:wrap;gap:.4rem;align-items:center}
.filters{display:flex;flex-wrap:wrap;gap:.6rem 1rem;align-items:flex-end;margin:.75rem 0 .25rem;padding:.75rem;background:var(--soft);border:1px solid var(--line);border-radius:6px}
.field{display:flex;flex-direction:column;gap:.2rem;min-width:0}
.field.search{flex:1 1 15rem}
.field label{font-weight:600;font-size:.85em}
.filters input,.filters select,.filters button{font:inherit;min-height:2.5rem;padding:.35rem .6rem;border:1px solid #80868b;border-radius:4px;background:#fff;color:inherit;max-width:100%}
.filters button{cursor:pointer;font-weight:600}
.filters button:hover{background:#eef0f3}
.count{margin:.5rem 0;font-weight:600}
.empty{padding:1rem;border:1px dashed var(--line);border-radius:6px;text-align:center}
.scroll{overflow-x:auto;max-width:100%}
table.matrix{font-size:.9em;margin-top:.25rem}
table.matrix thead th{vertical-align:bottom;padding:.3rem .2rem}
.sort{font:inherit;font-weight:600;color:inherit;background:none;border:0;padding:.2rem;margin:0;cursor:pointer;display:inline-flex;align-items:center;gap:.3rem;text-align:left}
.sort:hover .sort-label{text-decoration:underline}
.arrow::after{content:"↕";color:#80868b;font-size:.85em}
th[aria-sort=ascending] .arrow::after{content:"▲";color:inherit}
th[aria-sort=descending] .arrow::after{content:"▼";color:inherit}
th[aria-sort] {background:#e3e8ef}
table.matrix th.control-col{text-align:center}
th.control-col .sort{flex-direction:column;gap:.35rem}
th.control-col .sort-label{writing-mode:vertical-rl;transform:rotate(180deg);white-space:nowrap}
table.matrix th[scope=row]{position:sticky;left:0;z-index:1;background:#fff;min-width:13rem;max-width:19rem;font-weight:400;box-shadow:1px 0 0 var(--line)}
table.matrix thead th.cluster-col{position:sticky;left:0;z-index:2}
.cluster-name{display:block;font-weight:700;overflow-wrap:anywhere}
th[scope=row] .id,th[scope=row] .where{display:block;font-size:.85em}
table.matrix td.open{text-align:center;vertical-align:middle;white-space:nowrap;font-weight:600}
.open-counts>span+span{margin-left:.5rem}
table.matrix td.cell{padding:0;text-align:center;vertical-align:middle;min-width:4.5rem}
td.cell.st-pass{background:#e8f5e9}td.cell.st-fail{background:#ffebee}td.cell.st-not-applicable{background:#f5f5f5}td.cell.st-unknown{background:#fff8e1}
td.cell.none{padding:.3rem;white-space:nowrap}
.cell-btn{font:inherit;font-weight:600;background:transparent;border:0;width:100%;min-height:2.75rem;padding:.3rem .25rem;cursor:pointer;white-space:nowrap;display:flex;flex-direction:column;align-items:center;justify-content:center;line-height:1.15;font-size:.9em}
.cell-btn .sym{font-size:1.2em}
.cell-btn:hover,.cell-btn:focus-visible{outline:3px solid var(--focus);outline-offset:-3px}
table.matrix.by-status td.cell:not(.match){opacity:.3}
.sym{font-weight:700}
.sev{font-size:.75em;text-transform:uppercase;border:1px solid var(--line);border-radius:3px;padding:0 .3rem;margin-left:.3rem;vertical-align:middle;white-space:nowrap}
.sev-critical,.sev-high{border-color:var(--fail);color:var(--fail)}
article.control{border-top:1px solid var(--line);padding:.3rem 0 .8rem}
ul.refs{margin:0;padding-left:1.1rem}
dialog{max-width:min(900px,95vw);width:100%;border:1px solid #888;border-radius:6px;padding:1rem 1.5rem}
dialog::backdrop{background:rgba(0,0,0,.35)}
#ev-title{overflow-wrap:anywhere}
.dialog-close{float:right;font:inherit;min-height:2.5rem;padding:.3rem .8rem;margin:0 0 .5rem .5rem;cursor:pointer}
.ev-item{border:1px solid var(--line);border-radius:4px;padding:.5rem .75rem;margin:.5rem 0}
.ev-item pre{background:#f6f8fa;padding:.5rem;overflow:auto;max-height:24rem;margin:.4rem 0 0;white-space:pre-wrap;word-break:break-word}
@media screen and (max-width:60rem){
  ol.bars li{grid-template-columns:minmax(0,1fr) minmax(6rem,14rem);padding:.3rem 0;border-bottom:1px solid #eee}
  .bar-label{grid-column:1/-1}
}
@media screen and (max-width:48rem){
  body{padding:1rem}
  h1{font-size:1.35rem}
  .filters{display:grid;grid-template-columns:minmax(0,1fr) minmax(0,1fr);padding:.6rem}
  .field.search,.field.wide{grid-column:1/-1}
  .filters select,.filters input{width:100%}
  .scroll{overflow:visible}
  table.matrix,table.matrix tbody{display:block;width:100%;margin:0}
  table.matrix thead{display:none}
  table.matrix tr{display:flex;flex-direction:column;border:1px solid var(--line);border-radius:6px;margin:0 0 .8rem;overflow:hidden}
  table.matrix th[scope=row]{position:static;min-width:0;max-width:none;border:0;background:var(--soft);padding:.5rem .75rem;box-shadow:none}
  table.matrix td{border:0;border-top:1px solid #e6e6e6}
  table.matrix td.cell,table.matrix td.open{display:flex;justify-content:space-between;align-items:center;gap:.75rem;padding:0 0 0 .75rem;text-align:left;white-space:normal;min-width:0}
  table.matrix td.open{padding:.45rem .75rem;font-weight:600}
  table.matrix td.cell.none{padding:.45rem .75rem}
  table.matrix td::before{content:attr(data-label);font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:.85em;font-weight:400;color:#1b1b1b;overflow-wrap:anywhere;min-width:0}
  table.matrix td.open::before{font-family:inherit;font-weight:600;font-size:1em}
  table.matrix .cell-btn{width:auto;min-width:7rem;flex:none;flex-direction:row;justify-content:flex-end;gap:.3rem;padding:.3rem .75rem;font-size:1em}
  table.matrix .cell-btn .sym{font-size:1em}
  table.matrix.by-status td.cell:not(.match){display:none}
  table.stack,table.stack tbody{display:block}
  table.stack thead{display:none}
  table.stack tr{display:block;border:1px solid var(--line);border-radius:6px;margin:0 0 .6rem;padding:.35rem .65rem}
  table.stack td{display:block;position:relative;border:0;padding:.2rem 0 .2rem 5.5rem;min-height:1.9rem;overflow-wrap:anywhere}
  table.stack td::before{content:attr(data-label);position:absolute;left:0;top:.2rem;width:5rem;font-weight:600;color:var(--muted)}
  dialog{padding:.75rem 1rem}
}
@media print{
  body{padding:0;font-size:11pt;max-width:none}
  *{-webkit-print-color-adjust:exact;print-color-adjust:exact}
  .no-print,dialog,.dialog-close,.arrow{display:none!important}
  table.matrix [hidden]{display:revert!important}
  table.matrix.by-status td.cell:not(.match){opacity:1}
  .scroll{overflow:visible}
  table.matrix th[scope=row]{position:static;box-shadow:none}
  section{break-inside:auto}tr,article.control{break-inside:avoid}
  h2,h3{break-after:avoid}
  .cell-btn,.sort{cursor:default;min-height:0}
  a{color:inherit;text-decoration:none}
}
`;

/**
 * Fills the evidence dialog from the JSON data block (text only: textContent, never HTML),
 * and searches, filters and sorts the matrix. No backslash in here: this is a template literal.
 */
const SCRIPT = `
(function () {
  'use strict';
  var data = JSON.parse(document.getElementById('snapshot-data').textContent);
  var dialog = document.getElementById('evidence');
  function el(tag, text, cls) {
    var node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (cls) node.className = cls;
    return node;
  }
  function field(list, name, value) {
    list.appendChild(el('dt', name));
    list.appendChild(el('dd', value === null || value === undefined ? '—' : value));
  }
  function show(clusterIndex, resultIndex) {
    var cluster = data.clusters[clusterIndex];
    var result = cluster && cluster.results[resultIndex];
    if (!result) return;
    var status = data.statuses[result.status];
    document.getElementById('ev-title').textContent = cluster.name + ' — ' + result.control;
    var line = document.getElementById('ev-status');
    line.textContent = '';
    line.appendChild(el('span', status.symbol + ' ' + status.label, 'badge st-' + result.status));
    line.appendChild(document.createTextNode(' ' + (data.controls[result.control] || result.control) + ' · ' + cluster.id));
    document.getElementById('ev-reason').textContent = result.reason;
    document.getElementById('ev-remedy').textContent = result.remedy || '';
    document.getElementById('ev-remedy-box').hidden = !result.remedy;
    var items = document.getElementById('ev-items');
    items.textContent = '';
    if (result.evidence.length === 0) items.appendChild(el('p', 'No evidence item.', 'muted'));
    result.evidence.forEach(function (item) {
      var box = el('div', null, 'ev-item');
      var list = el('dl', null, 'meta');
      field(list, 'Source', item.source);
      field(list, 'Record', item.recordId);
      field(list, 'Observed at', item.observedAt);
      box.appendChild(list);
      box.appendChild(el('pre', JSON.stringify(item.values, null, 2)));
      items.appendChild(box);
    });
    if (typeof dialog.showModal === 'function') {
      if (dialog.open) dialog.close();
      dialog.showModal();
    } else {
      dialog.setAttribute('open', '');
    }
  }
  document.getElementById('ev-close').addEventListener('click', function () {
    if (typeof dialog.close === 'function') dialog.close();
    else dialog.removeAttribute('open');
  });
  document.getElementById('matrix').addEventListener('click', function (event) {
    var button = event.target.closest('button[data-c]');
    if (button) show(Number(button.getAttribute('data-c')), Number(button.getAttribute('data-r')));
  });

  var table = document.getElementById('matrix-table');
  if (!table) return;
  var byId = function (id) { return document.getElementById(id); };
  var tbody = table.tBodies[0];
  var headers = Array.prototype.slice.call(table.tHead.rows[0].cells);
  var search = byId('f-cluster');
  var statusSelect = byId('f-status');
  var controlSelect = byId('f-control');
  var cloudSelect = byId('f-cloud');
  var sortSelect = byId('f-sort');
  var count = byId('f-count');
  var empty = byId('f-empty');
  var sort = { key: '', dir: 'ascending' };
  var items = Array.prototype.slice.call(tbody.rows).map(function (row) {
    var cells = {};
    Array.prototype.forEach.call(row.querySelectorAll('td[data-control]'), function (td) {
      cells[td.getAttribute('data-control')] = td;
    });
    return {
      row: row,
      index: Number(row.getAttribute('data-i')),
      name: row.getAttribute('data-name'),
      search: row.getAttribute('data-search'),
      cloud: row.getAttribute('data-cloud'),
      fail: Number(row.getAttribute('data-fail')),
      unknown: Number(row.getAttribute('data-unknown')),
      cells: cells
    };
  });
  function controlOf(key) {
    return key.indexOf('control:') === 0 ? key.slice(8) : null;
  }
  function rank(item, control) {
    var cell = item.cells[control];
    var status = cell ? cell.getAttribute('data-status') : 'none';
    return Object.prototype.hasOwnProperty.call(data.rank, status) ? data.rank[status] : 9;
  }
  function compare(a, b) {
    if (sort.key === '') return a.index - b.index;
    var control = controlOf(sort.key);
    var r = 0;
    if (sort.key === 'name') r = a.name.localeCompare(b.name);
    else if (sort.key === 'open') r = a.fail - b.fail || a.unknown - b.unknown;
    else if (control !== null) r = rank(a, control) - rank(b, control);
    if (sort.dir === 'descending') r = -r;
    return r || a.name.localeCompare(b.name) || a.index - b.index;
  }
  function firstDirection(key) {
    return key === 'open' ? 'descending' : 'ascending';
  }
  function applySort() {
    items.slice().sort(compare).forEach(function (item) {
      tbody.appendChild(item.row);
    });
    headers.forEach(function (th) {
      if (sort.key !== '' && th.getAttribute('data-sort') === sort.key) th.setAttribute('aria-sort', sort.dir);
      else th.removeAttribute('aria-sort');
    });
    sortSelect.value = sort.key;
  }
  function applyFilters() {
    var terms = search.value.toLowerCase().split(' ').filter(Boolean);
    var statuses = statusSelect.value ? statusSelect.value.split(' ') : [];
    var control = controlSelect.value;
    var cloud = cloudSelect.value;
    var shown = 0;
    headers.forEach(function (th) {
      var id = controlOf(th.getAttribute('data-sort'));
      if (id !== null) th.hidden = control !== '' && id !== control;
    });
    table.classList.toggle('by-status', statuses.length > 0);
    items.forEach(function (item) {
      var visible = (cloud === '' || item.cloud === cloud) && terms.every(function (term) {
        return item.search.indexOf(term) !== -1;
      });
      var matched = false;
      Object.keys(item.cells).forEach(function (id) {
        var td = item.cells[id];
        var inView = control === '' || id === control;
        var match = inView && statuses.indexOf(td.getAttribute('data-status')) !== -1;
        td.hidden = !inView;
        td.classList.toggle('match', match);
        if (match) matched = true;
      });
      if (statuses.length > 0 && !matched) visible = false;
      item.row.hidden = !visible;
      if (visible) shown += 1;
    });
    count.textContent = shown === items.length
      ? 'Showing all ' + items.length + ' cluster(s)'
      : 'Showing ' + shown + ' of ' + items.length + ' cluster(s)';
    empty.hidden = shown > 0;
  }
  headers.forEach(function (th) {
    th.querySelector('button').addEventListener('click', function () {
      var key = th.getAttribute('data-sort');
      var dir = firstDirection(key);
      if (sort.key === key) dir = sort.dir === 'ascending' ? 'descending' : 'ascending';
      sort = { key: key, dir: dir };
      applySort();
    });
  });
  sortSelect.addEventListener('change', function () {
    sort = { key: sortSelect.value, dir: firstDirection(sortSelect.value) };
    applySort();
  });
  search.addEventListener('input', applyFilters);
  [statusSelect, controlSelect, cloudSelect].forEach(function (select) {
    select.addEventListener('change', applyFilters);
  });
  byId('f-reset').addEventListener('click', function () {
    search.value = '';
    statusSelect.value = '';
    controlSelect.value = '';
    cloudSelect.value = '';
    sort = { key: '', dir: 'ascending' };
    applySort();
    applyFilters();
  });
  byId('filters').hidden = false;
  applyFilters();
})();
`;

/**
 * The page may run exactly {@link SCRIPT} (by its SHA-256 hash) and load nothing: no fetch,
 * no frame, no image but data URLs, no form submission, no `<base>`.
 */
const CSP = [
  "default-src 'none'",
  "style-src 'unsafe-inline'",
  `script-src 'sha256-${createHash('sha256').update(SCRIPT, 'utf8').digest('base64')}'`,
  'img-src data:',
  "base-uri 'none'",
  "form-action 'none'",
].join('; ');
