import { describe, expect, it } from 'vitest';
import { compactSnapshot, diffSnapshots } from '../../shared/compliance/diff.ts';
import { CSV_COLUMNS, renderCsv } from '../../shared/compliance/render/csv.ts';
import { renderHtml } from '../../shared/compliance/render/html.ts';
import { FORMATS, parseFormats, render } from '../../shared/compliance/render/index.ts';
import { renderMarkdown } from '../../shared/compliance/render/markdown.ts';
import {
  type ClusterResult,
  type ControlChange,
  type ControlStatus,
  JurisdictionSnapshot,
  SnapshotDiff,
} from '../../shared/compliance/schema.ts';
import { UsageError } from '../../shared/runtime/errors.ts';
import {
  buildSnapshot,
  CONTROL_IDS,
  CONTROLS,
  cluster,
  defaultClusters,
  evidence,
  firstSnapshotChanges,
  result,
} from './compliance-builders.ts';

const HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>';

/** A cluster whose results have the given statuses (by control id). */
function clusterWith(id: string, statuses: Record<string, ControlStatus>): ClusterResult {
  return cluster({
    id,
    name: id,
    results: Object.entries(statuses).map(([control, status]) => result(control, status)),
  });
}

/** A previous snapshot holding the given clusters. */
/** The previous snapshot as the job keeps it: the document reduced by `compactSnapshot`. */
function previousWith(clusters: ClusterResult[]) {
  return compactSnapshot({
    snapshot: buildSnapshot({ clusters, generatedAt: '2025-06-01T06:00:00Z' }),
    sha256: 'ab'.repeat(32),
  });
}

/** A snapshot with one hostile cluster: its name, reason, remedy and evidence carry markup and formulas. */
function hostileSnapshot(): JurisdictionSnapshot {
  return buildSnapshot({
    jurisdiction: { id: 'eu', name: `EU ${HOSTILE}`, laws: ['gdpr'], countries: ['IE'] },
    clusters: [
      cluster({
        id: `aws/1/eu-west-1/${HOSTILE}`,
        name: `=HYPERLINK("evil") ${HOSTILE}`,
        results: CONTROL_IDS.map((id, i) =>
          i === 0
            ? result(id, 'fail', {
                reason: `</script><script>alert(2)</script> | pipe\nnewline *bold* [link](x)`,
                remedy: '@SUM(A1:A9)',
                evidence: [
                  evidence({
                    recordId: '</script><!--',
                    values: { note: '</script><script>alert(3)</script>', line: '\u2028' },
                  }),
                ],
              })
            : result(id, 'pass'),
        ),
      }),
    ],
    changes: firstSnapshotChanges(),
  });
}

/** Splits RFC 4180 CSV into records of fields (quoted fields may hold CR, LF, `,` and `""`). */
function parseCsv(text: string): string[][] {
  const records: string[][] = [];
  let field = '';
  let fields: string[] = [];
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (quoted) {
      if (ch === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (ch === '"') quoted = false;
      else field += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ',') {
      fields.push(field);
      field = '';
    } else if (ch === '\r' && text[i + 1] === '\n') {
      fields.push(field);
      records.push(fields);
      fields = [];
      field = '';
      i++;
    } else field += ch;
  }
  expect(field, 'text after the last CRLF').toBe('');
  return records;
}

describe('compliance builders', () => {
  it('builds a snapshot the schema accepts, with every status and derived counts', () => {
    // Act
    const snapshot = buildSnapshot();

    // Assess
    expect(JurisdictionSnapshot.parse(snapshot)).toEqual(snapshot);
    expect(snapshot.clusters).toHaveLength(3);
    expect(snapshot.catalogue.controls).toHaveLength(6);
    expect(snapshot.summary.counts).toEqual({ pass: 12, fail: 3, 'not-applicable': 1, unknown: 2 });
    expect(snapshot.summary.byControl['backup.recent']).toEqual({
      pass: 2,
      fail: 1,
      'not-applicable': 0,
      unknown: 0,
    });
  });
});

describe('diffSnapshots', () => {
  const A = 'aws/1/eu-west-1/a';
  const B = 'gcp/p/europe-west3/b';
  const change = (
    clusterId: string,
    control: string,
    before: ControlStatus | null,
    after: ControlStatus | null,
  ): ControlChange => ({ clusterId, control, before, after });

  it.each<{
    name: string;
    before: ClusterResult[];
    after: ClusterResult[];
    expected: Omit<SnapshotDiff, 'previous'>;
  }>([
    {
      name: 'pass -> fail is newly failing',
      before: [clusterWith(A, { 'backup.recent': 'pass' })],
      after: [clusterWith(A, { 'backup.recent': 'fail' })],
      expected: {
        newlyFailing: [change(A, 'backup.recent', 'pass', 'fail')],
        newlyFixed: [],
        otherChanges: [],
        addedClusters: [],
        removedClusters: [],
      },
    },
    {
      name: 'unknown -> fail and absent control -> fail are newly failing',
      before: [clusterWith(A, { 'backup.recent': 'unknown' })],
      after: [clusterWith(A, { 'backup.recent': 'fail', 'drill.restore-tested': 'fail' })],
      expected: {
        newlyFailing: [
          change(A, 'backup.recent', 'unknown', 'fail'),
          change(A, 'drill.restore-tested', null, 'fail'),
        ],
        newlyFixed: [],
        otherChanges: [],
        addedClusters: [],
        removedClusters: [],
      },
    },
    {
      name: 'fail -> pass and fail -> not-applicable are newly fixed',
      before: [clusterWith(A, { 'backup.recent': 'fail', 'drill.restore-tested': 'fail' })],
      after: [clusterWith(A, { 'backup.recent': 'pass', 'drill.restore-tested': 'not-applicable' })],
      expected: {
        newlyFailing: [],
        newlyFixed: [
          change(A, 'backup.recent', 'fail', 'pass'),
          change(A, 'drill.restore-tested', 'fail', 'not-applicable'),
        ],
        otherChanges: [],
        addedClusters: [],
        removedClusters: [],
      },
    },
    {
      name: 'fail -> unknown, pass -> unknown and a dropped control are other changes',
      before: [
        clusterWith(A, { 'backup.recent': 'fail', 'audit.logs-collected': 'pass', 'old.control': 'fail' }),
      ],
      after: [clusterWith(A, { 'backup.recent': 'unknown', 'audit.logs-collected': 'unknown' })],
      expected: {
        newlyFailing: [],
        newlyFixed: [],
        otherChanges: [
          change(A, 'audit.logs-collected', 'pass', 'unknown'),
          change(A, 'backup.recent', 'fail', 'unknown'),
          change(A, 'old.control', 'fail', null),
        ],
        addedClusters: [],
        removedClusters: [],
      },
    },
    {
      name: 'an added cluster lists its failing controls only; a removed one is not fixed',
      before: [clusterWith(A, { 'backup.recent': 'fail' })],
      after: [
        clusterWith(B, {
          'backup.recent': 'fail',
          'backup.residency': 'pass',
          'drill.restore-tested': 'unknown',
        }),
      ],
      expected: {
        newlyFailing: [change(B, 'backup.recent', null, 'fail')],
        newlyFixed: [],
        otherChanges: [],
        addedClusters: [B],
        removedClusters: [A],
      },
    },
    {
      name: 'unchanged statuses give an empty diff',
      before: [clusterWith(A, { 'backup.recent': 'fail', 'backup.residency': 'pass' })],
      after: [clusterWith(A, { 'backup.residency': 'pass', 'backup.recent': 'fail' })],
      expected: {
        newlyFailing: [],
        newlyFixed: [],
        otherChanges: [],
        addedClusters: [],
        removedClusters: [],
      },
    },
  ])('$name', ({ before, after, expected }) => {
    // Prepare
    const previous = previousWith(before);

    // Act
    const diff = diffSnapshots(previous, after);

    // Assess
    expect(diff).toEqual({
      previous: { generatedAt: '2025-06-01T06:00:00Z', sha256: 'ab'.repeat(32) },
      ...expected,
    });
    expect(SnapshotDiff.parse(diff)).toEqual(diff);
  });

  it('returns an empty diff with no previous snapshot', () => {
    // Act
    const diff = diffSnapshots(null, defaultClusters());

    // Assess
    expect(diff).toEqual(firstSnapshotChanges());
  });

  it('sorts by cluster id then control, whatever the input order', () => {
    // Prepare
    const before = [clusterWith(B, { 'z.c': 'pass', 'a.c': 'pass' }), clusterWith(A, { 'm.c': 'pass' })];
    const after = [clusterWith(A, { 'm.c': 'fail' }), clusterWith(B, { 'a.c': 'fail', 'z.c': 'fail' })];

    // Act
    const forward = diffSnapshots(previousWith(before), after);
    const reversed = diffSnapshots(previousWith([...before].reverse()), [...after].reverse());

    // Assess
    expect(forward.newlyFailing.map((c) => `${c.clusterId} ${c.control}`)).toEqual([
      `${A} m.c`,
      `${B} a.c`,
      `${B} z.c`,
    ]);
    expect(reversed).toEqual(forward);
  });

  it('keeps in the compact form what the diff needs: the header and every status', () => {
    // Prepare
    const previous = previousWith([
      clusterWith(A, { 'backup.recent': 'fail' }),
      clusterWith(B, { 'backup.recent': 'pass' }),
    ]);
    const now = [clusterWith(A, { 'backup.recent': 'pass' }), clusterWith('c', { 'backup.recent': 'fail' })];

    // Act
    const diff = diffSnapshots(previous, now);

    // Assess
    expect(diff.previous).toEqual({ generatedAt: '2025-06-01T06:00:00Z', sha256: 'ab'.repeat(32) });
    expect(diff.newlyFixed).toHaveLength(1);
    expect(diff.removedClusters).toEqual([B]);
  });
});

describe('renderHtml', () => {
  it('is one self-contained document: no URL, no external resource, a strict CSP', () => {
    // Prepare
    const snapshot = buildSnapshot();

    // Act
    const html = renderHtml(snapshot);

    // Assess
    expect(html.startsWith('<!doctype html>')).toBe(true);
    expect(html).not.toMatch(/https?:|\/\/[a-z]/i);
    expect(html).not.toMatch(/<link\b|<iframe\b|<object\b|<embed\b|\bsrc\s*=|url\(|@import/i);
    expect(html).toContain(`content="default-src &#39;none&#39;; style-src &#39;unsafe-inline&#39;`);
    for (const [, href] of html.matchAll(/href="([^"]*)"/g)) expect(href?.startsWith('#')).toBe(true);
  });

  it('has the summary, changes, matrix and catalogue sections with their content', () => {
    // Prepare
    const snapshot = buildSnapshot();

    // Act
    const html = renderHtml(snapshot);

    // Assess
    for (const id of ['summary', 'changes', 'matrix', 'controls', 'evidence'])
      expect(html).toContain(`id="${id}"`);
    expect(html).toContain('<svg class="chart"');
    expect(html).toContain('data-status="pass">12</td>');
    expect(html).toContain('data-status="fail">3</td>');
    expect(html).toContain('Newly failing (2)');
    expect(html).toContain('Removed clusters (1)');
    expect(html).toContain('aws/111122223333/eu-west-3/legacy-fr');
    expect(html.match(/<button type="button" class="cell-btn /g)).toHaveLength(18);
    expect(html).toContain('Art. 32(1)(d)');
    expect(html).toContain('2025.06.0');
  });

  it('cites only the laws of the jurisdiction', () => {
    // Prepare
    const snapshot = buildSnapshot();

    // Act
    const html = renderHtml(snapshot);

    // Assess
    expect(html).toContain('Art. 44');
    expect(html).not.toContain('s. 16(1)');
    expect(html).not.toContain('s. 72(1)');
    expect(html).not.toContain('POPIA');
  });

  it('says first snapshot when there is no previous one', () => {
    // Act
    const html = renderHtml(buildSnapshot({ changes: firstSnapshotChanges() }));

    // Assess
    expect(html).toMatch(/<section id="changes"[^>]*>[\s\S]*First snapshot[\s\S]*?<\/section>/);
    expect(html).not.toContain('Newly failing');
  });

  it('escapes hostile names and values in markup and in the embedded JSON', () => {
    // Prepare
    const snapshot = hostileSnapshot();

    // Act
    const html = renderHtml(snapshot);

    // Assess
    expect(html).not.toContain('<script>alert');
    expect(html).not.toContain('<img');
    expect(html).not.toContain('</script><');
    expect(html).not.toContain('<!--');
    expect(html).not.toContain('\u2028');
    expect(html.match(/<script\b/g)).toHaveLength(2);
    expect(html.match(/<\/script>/g)).toHaveLength(2);
    expect(html).toContain('&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;');
    const block = /<script type="application\/json" id="snapshot-data">([\s\S]*?)<\/script>/.exec(html)?.[1];
    const data = JSON.parse(block ?? 'null');
    expect(data.clusters[0].name).toBe(snapshot.clusters[0]?.name);
    expect(data.clusters[0].results[0].evidence[0].values.note).toBe('</script><script>alert(3)</script>');
  });

  it('renders the same bytes for the same snapshot', () => {
    // Act
    const first = renderHtml(buildSnapshot());
    const second = renderHtml(buildSnapshot());

    // Assess
    expect(second).toBe(first);
  });
});

describe('renderMarkdown', () => {
  it('has a title, a summary table, the changes and a table per cluster', () => {
    // Act
    const md = renderMarkdown(buildSnapshot());

    // Assess
    expect(md.startsWith('# Compliance snapshot: European Union (GDPR) (eu)\n')).toBe(true);
    expect(md).toContain('| ✓ pass | 12 |');
    expect(md).toContain('## Changes since last snapshot');
    expect(md).toContain('### Newly failing (2)');
    expect(md).toContain('### analytics-de\n');
    expect(md).toContain(
      '| backup.recent | ✗ fail | The last backup completed 3 days before the evaluation (limit 24 h). | Fix the Velero schedule and run a backup. |',
    );
    expect(md).not.toContain('POPIA');
    expect(md.endsWith('\n')).toBe(true);
  });

  it('escapes pipes, newlines and markdown-active characters in data', () => {
    // Prepare
    const snapshot = hostileSnapshot();

    // Act
    const md = renderMarkdown(snapshot);

    // Assess
    const row = md.split('\n').find((line) => line.startsWith('| residency.cluster-region | ✗'));
    expect(row).toBe(
      '| residency.cluster-region | ✗ fail | \\</script\\>\\<script\\>alert(2)\\</script\\> \\| pipe newline \\*bold\\* \\[link\\](x) | @SUM(A1:A9) |',
    );
    expect(row?.split(/(?<!\\)\|/)).toHaveLength(6);
    expect(md).not.toMatch(/(?<!\\)<script/);
    expect(md).toContain('### \\=HYPERLINK("evil") \\<script\\>');
  });

  it('escapes a leading list or heading marker where data starts a heading or list item', () => {
    // Prepare
    const snapshot = buildSnapshot({
      clusters: [cluster({ name: '- 1. # not a list' }), cluster({ id: '2. second', name: '2. second' })],
      changes: {
        ...firstSnapshotChanges(),
        previous: { generatedAt: 'x', sha256: 'y' },
        addedClusters: ['2. second'],
      },
    });

    // Act
    const md = renderMarkdown(snapshot);

    // Assess
    expect(md).toContain('\n### \\- 1. \\# not a list\n');
    expect(md).toContain('\n### 2\\. second\n');
    expect(md).toContain('\n- 2\\. second\n');
    expect(md).toContain('- Catalogue version: 2025.06.0\n');
  });
});

describe('renderCsv', () => {
  it('writes a header and one row per cluster x control, CRLF-terminated', () => {
    // Prepare
    const snapshot = buildSnapshot();

    // Act
    const csv = renderCsv(snapshot);
    const records = parseCsv(csv);

    // Assess
    expect(csv.endsWith('\r\n')).toBe(true);
    expect(csv.replace(/\r\n/g, '')).not.toMatch(/[\r\n]/);
    expect(records[0]).toEqual([...CSV_COLUMNS]);
    expect(records).toHaveLength(1 + snapshot.clusters.length * CONTROLS.length);
    const row = records.find(
      (r) => r[1] === 'gcp/analytics-prod/europe-west3/analytics-de' && r[5] === 'backup.recent',
    );
    expect(row).toEqual([
      'eu',
      'gcp/analytics-prod/europe-west3/analytics-de',
      'analytics-de',
      'gcp',
      'europe-west3',
      'backup.recent',
      'A backup completed in the last 24 hours',
      'high',
      'fail',
      'The last backup completed 3 days before the evaluation (limit 24 h).',
      'Fix the Velero schedule and run a backup.',
      'backup-status;inventory',
      '2025-06-02T05:31:00Z',
    ]);
  });

  it('quotes fields with commas, quotes and line breaks', () => {
    // Prepare
    const snapshot = hostileSnapshot();

    // Act
    const csv = renderCsv(snapshot);
    const records = parseCsv(csv);

    // Assess
    expect(csv).toContain('"</script><script>alert(2)</script> | pipe\nnewline *bold* [link](x)"');
    expect(records).toHaveLength(1 + CONTROLS.length);
    expect(records.every((r) => r.length === CSV_COLUMNS.length)).toBe(true);
    expect(records[1]?.[9]).toBe('</script><script>alert(2)</script> | pipe\nnewline *bold* [link](x)');
  });

  it.each([
    ['=1+1', "'=1+1"],
    ['+49 30 1234', "'+49 30 1234"],
    ['-2', "'-2"],
    ['@SUM(A1:A9)', "'@SUM(A1:A9)"],
    ['\tcmd', "'\tcmd"],
    ['\rcmd', "'\rcmd"],
    ['plain-name', 'plain-name'],
  ])('guards %j against formula injection', (name, expected) => {
    // Prepare
    const snapshot = buildSnapshot({ clusters: [cluster({ name })], changes: firstSnapshotChanges() });

    // Act
    const records = parseCsv(renderCsv(snapshot));

    // Assess
    expect(records.slice(1).map((r) => r[2])).toEqual(CONTROL_IDS.map(() => expected));
  });
});

describe('render', () => {
  it.each(FORMATS)('renders %s deterministically', (format) => {
    // Act
    const first = render(buildSnapshot(), format);

    // Assess
    expect(first.length).toBeGreaterThan(500);
    expect(render(buildSnapshot(), format)).toBe(first);
  });

  it('renders json as the document, indented, with a final newline', () => {
    // Prepare
    const snapshot = buildSnapshot();

    // Act
    const json = render(snapshot, 'json');

    // Assess
    expect(json).toBe(`${JSON.stringify(snapshot, null, 2)}\n`);
    expect(JurisdictionSnapshot.parse(JSON.parse(json))).toEqual(snapshot);
  });
});

describe('parseFormats', () => {
  it.each([
    ['json', ['json']],
    ['json,html,md,csv', ['json', 'html', 'md', 'csv']],
    [' csv , md ,csv', ['csv', 'md']],
  ])('parses %j', (list, expected) => {
    // Act / Assess
    expect(parseFormats(list)).toEqual(expected);
  });

  it.each([
    ['json,xml', 'xml'],
    ['pdf', 'pdf'],
    ['HTML', 'HTML'],
  ])('rejects %j naming %s', (list, bad) => {
    // Act / Assess
    expect(() => parseFormats(list)).toThrow(UsageError);
    expect(() => parseFormats(list)).toThrow(`unknown snapshot format "${bad}"`);
  });

  it.each(['', ' , '])('rejects an empty list %j', (list) => {
    // Act / Assess
    expect(() => parseFormats(list)).toThrow(/no snapshot format given/);
  });
});
