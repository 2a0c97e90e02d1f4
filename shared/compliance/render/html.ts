/**
 * One jurisdiction snapshot as a single self-contained HTML page for auditors: inline CSS,
 * a little inline vanilla JS, inline SVG charts, and no URL of any kind (the CSP forbids
 * every fetch). Every interpolated string is escaped; the evidence the page shows on click
 * is embedded as a JSON data block that cannot close its `<script>` element.
 */
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

const CSP =
  "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'";

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

/** One stacked bar per control: how many clusters pass, fail, are not applicable, unknown. */
function byControlChart(snapshot: JurisdictionSnapshot, columns: Column[]): string {
  const rowHeight = 26;
  const labelWidth = 260;
  const barWidth = 360;
  const height = Math.max(1, columns.length) * rowHeight + 8;
  const width = labelWidth + barWidth + 170;
  const rows = columns
    .map((column, i) => {
      const counts = snapshot.summary.byControl[column.id] ?? countsFor(snapshot.clusters, column.id);
      const total = CONTROL_STATUSES.reduce((n, s) => n + counts[s], 0);
      const y = 4 + i * rowHeight;
      let x = labelWidth;
      const segments = CONTROL_STATUSES.map((s) => {
        if (counts[s] === 0 || total === 0) return '';
        const w = round((counts[s] / total) * barWidth);
        const rect = `<rect x="${round(x)}" y="${y + 3}" width="${w}" height="${rowHeight - 8}" fill="${STATUS_TEXT[s].colour}"><title>${esc(column.id)}: ${esc(STATUS_TEXT[s].label)} ${counts[s]}</title></rect>`;
        x += w;
        return rect;
      }).join('');
      const text = CONTROL_STATUSES.filter((s) => counts[s] > 0)
        .map((s) => `${counts[s]} ${STATUS_TEXT[s].label}`)
        .join(', ');
      return [
        `<text x="${labelWidth - 8}" y="${y + 16}" text-anchor="end">${esc(column.id)}</text>`,
        `<rect x="${labelWidth}" y="${y + 3}" width="${barWidth}" height="${rowHeight - 8}" fill="#eeeeee"/>`,
        segments,
        `<text x="${labelWidth + barWidth + 8}" y="${y + 16}">${esc(text || 'no results')}</text>`,
      ].join('');
    })
    .join('');
  return `<svg class="chart wide" role="img" aria-labelledby="control-chart-t" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}"><title id="control-chart-t">Results per control, stacked by status</title>${rows}</svg>`;
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
        `<tr><td>${clusterLabel(c.clusterId, names)}</td><td><code>${esc(c.control)}</code></td><td>${maybeStatus(c.before)}</td><td>${maybeStatus(c.after)}</td></tr>`,
    )
    .join('');
  return `${heading}<table class="changes" aria-labelledby="${id}"><thead><tr><th scope="col">Cluster</th><th scope="col">Control</th><th scope="col">Before</th><th scope="col">After</th></tr></thead><tbody>${rows}</tbody></table>`;
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

function matrix(snapshot: JurisdictionSnapshot, columns: Column[]): string {
  const head = columns
    .map((c) => {
      const title = c.control ? c.control.title : 'not in the catalogue';
      return `<th scope="col"><a href="#control-${esc(c.id)}" title="${esc(title)}">${esc(c.id)}</a></th>`;
    })
    .join('');
  const body = snapshot.clusters
    .map((cluster, ci) => {
      const cells = columns
        .map((column) => {
          const ri = cluster.results.findIndex((r) => r.control === column.id);
          const result = cluster.results[ri];
          if (!result) return '<td class="cell none"><span class="muted">not evaluated</span></td>';
          const { label, symbol } = STATUS_TEXT[result.status];
          const aria = `${cluster.name}, ${column.id}: ${label}. Show reason and evidence`;
          return `<td class="cell st-${result.status}"><button type="button" class="cell-btn st-${result.status}" data-c="${ci}" data-r="${ri}" aria-haspopup="dialog" aria-label="${esc(aria)}"><span class="sym" aria-hidden="true">${symbol}</span> ${esc(label)}</button></td>`;
        })
        .join('');
      return `<tr><th scope="row">${clusterHeading(cluster)}</th>${cells}</tr>`;
    })
    .join('\n');
  return [
    '<section id="matrix" aria-labelledby="matrix-h">',
    '<h2 id="matrix-h">Control matrix</h2>',
    '<p class="no-print">Select a cell to see the reason, the remedy and the evidence behind it.</p>',
    `<p class="legend">${CONTROL_STATUSES.map(statusBadge).join(' ')}</p>`,
    snapshot.clusters.length === 0
      ? '<p class="muted">No cluster in this jurisdiction.</p>'
      : `<div class="scroll"><table class="matrix"><thead><tr><th scope="col">Cluster</th>${head}</tr></thead><tbody>\n${body}\n</tbody></table></div>`,
    '</section>',
  ].join('\n');
}

function clusterHeading(cluster: ClusterResult): string {
  const where = [cluster.cloud, cluster.region, cluster.country ?? 'country unknown'].join(' · ');
  return `<span class="cluster-name">${esc(cluster.name)}</span><br><span class="id muted">${esc(cluster.id)}</span><br><span class="muted small">${esc(where)}</span>`;
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
        `<tr><td>${esc(cluster.name)}<br><span class="id muted">${esc(cluster.id)}</span></td><td><code>${esc(result.control)}</code></td><td>${statusBadge(result.status)}</td><td>${esc(result.reason)}</td><td>${result.remedy ? esc(result.remedy) : '<span class="muted">—</span>'}</td></tr>`,
      );
    }
  }
  return [
    '<section id="findings" aria-labelledby="findings-h">',
    '<h2 id="findings-h">Failing and unknown results</h2>',
    rows.length === 0
      ? '<p class="muted">None: every result is pass or not applicable.</p>'
      : `<table class="findings"><thead><tr><th scope="col">Cluster</th><th scope="col">Control</th><th scope="col">Status</th><th scope="col">Reason</th><th scope="col">Remedy</th></tr></thead><tbody>${rows.join('')}</tbody></table>`,
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
:root{--pass:#2e7d32;--fail:#c62828;--na:#757575;--unknown:#b26a00;--line:#d0d0d0;--muted:#5f6368}
*{box-sizing:border-box}
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;color:#1b1b1b;background:#fff;margin:0;padding:1.5rem 2rem;max-width:1400px}
h1{font-size:1.6rem;margin:0 0 .75rem}h2{font-size:1.25rem;border-bottom:2px solid #1b1b1b;padding-bottom:.2rem;margin-top:2rem}h3{font-size:1.05rem;margin:1.2rem 0 .4rem}
code,.id,.hash{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:.9em}
.hash{word-break:break-all}
.muted{color:var(--muted)}.small{font-size:.85em}
dl.meta{display:grid;grid-template-columns:max-content 1fr;gap:.2rem 1rem;margin:0}
dl.meta dt{font-weight:600}dl.meta dd{margin:0}
ul.plain{list-style:none;margin:0;padding:0}
table{border-collapse:collapse;margin:.5rem 0}
th,td{border:1px solid var(--line);padding:.3rem .5rem;text-align:left;vertical-align:top}
thead th{background:#f3f3f3}
caption{text-align:left;font-weight:600;padding-bottom:.3rem}
td.num{text-align:right;font-variant-numeric:tabular-nums}
.summary-grid{display:flex;flex-wrap:wrap;gap:2rem;align-items:flex-start}
svg.chart{max-width:100%;height:auto;font:12px system-ui,sans-serif}
svg.chart text{fill:#1b1b1b}
.badge{display:inline-block;padding:0 .4rem;border-radius:3px;font-weight:600;white-space:nowrap;border:1px solid currentColor}
.st-pass{color:var(--pass)}.st-fail{color:var(--fail)}.st-not-applicable{color:var(--na)}.st-unknown{color:var(--unknown)}
.scroll{overflow-x:auto}
table.matrix th[scope=col] a{color:inherit;writing-mode:vertical-rl;transform:rotate(180deg);white-space:nowrap;text-decoration:none}
table.matrix td.cell{padding:0;text-align:center;vertical-align:middle}
td.cell.st-pass{background:#e8f5e9}td.cell.st-fail{background:#ffebee}td.cell.st-not-applicable{background:#f5f5f5}td.cell.st-unknown{background:#fff8e1}
td.cell.none{padding:.3rem}
.cell-btn{font:inherit;font-weight:600;background:transparent;border:0;width:100%;min-height:2.4rem;padding:.3rem .5rem;cursor:pointer}
.cell-btn:hover,.cell-btn:focus-visible{outline:3px solid #1a73e8;outline-offset:-3px}
.sym{font-weight:700}
.sev{font-size:.75em;text-transform:uppercase;border:1px solid var(--line);border-radius:3px;padding:0 .3rem;margin-left:.3rem;vertical-align:middle}
.sev-critical,.sev-high{border-color:var(--fail);color:var(--fail)}
article.control{border-top:1px solid var(--line);padding:.3rem 0 .8rem}
ul.refs{margin:0;padding-left:1.1rem}
dialog{max-width:min(900px,95vw);width:100%;border:1px solid #888;border-radius:6px;padding:1rem 1.5rem}
dialog::backdrop{background:rgba(0,0,0,.35)}
.dialog-close{float:right}
.ev-item{border:1px solid var(--line);border-radius:4px;padding:.5rem .75rem;margin:.5rem 0}
.ev-item pre{background:#f6f8fa;padding:.5rem;overflow:auto;max-height:24rem;margin:.4rem 0 0;white-space:pre-wrap;word-break:break-word}
@media print{
  body{padding:0;font-size:11pt;max-width:none}
  *{-webkit-print-color-adjust:exact;print-color-adjust:exact}
  .no-print,dialog,.dialog-close{display:none!important}
  .scroll{overflow:visible}
  section{break-inside:auto}tr,article.control{break-inside:avoid}
  h2,h3{break-after:avoid}
  .cell-btn{cursor:default;min-height:0}
  a{color:inherit;text-decoration:none}
}
`;

/** Fills the evidence dialog from the JSON data block; text only (textContent), never HTML. */
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
})();
`;
