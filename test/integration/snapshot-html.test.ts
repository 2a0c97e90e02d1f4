/**
 * The HTML snapshot in a real browser (headless Chromium through playwright-core): it loads
 * with no console error, page error, CSP violation or request beyond the file itself, shows
 * the summary, opens a result's evidence on click, runs no script smuggled in through data
 * (nor a script whose hash the CSP does not name), lets the matrix be searched, filtered and
 * sorted, and fits phone and wide screens: no horizontal overflow at 390 px, no clipped label,
 * screenshots at 390 px and 1440 px. `CHROMIUM_PATH` overrides the browser executable;
 * `SCREENSHOT_DIR` keeps the screenshots there instead of in a removed temp directory.
 */
import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CONTROLS } from '../../shared/compliance/catalogue.ts';
import { renderHtml } from '../../shared/compliance/render/html.ts';
import type { ClusterResult, ControlStatus, JurisdictionSnapshot } from '../../shared/compliance/schema.ts';
import { buildSnapshot, CONTROL_IDS, cluster, evidence, result } from '../unit/compliance-builders.ts';

const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';

/** What a page did that it should not: console errors, uncaught errors, CSP violations, failed or foreign requests, alerts. */
interface PageTrouble {
  consoleErrors: string[];
  pageErrors: string[];
  cspViolations: string[];
  failedRequests: string[];
  foreignRequests: string[];
  dialogs: string[];
}

const NO_TROUBLE: PageTrouble = {
  consoleErrors: [],
  pageErrors: [],
  cspViolations: [],
  failedRequests: [],
  foreignRequests: [],
  dialogs: [],
};

/**
 * Runs in the page before its own scripts, outside its CSP, and reports every CSP violation.
 * (Browser code is given as text: the project compiles without the DOM library.)
 */
const CSP_LISTENER = `document.addEventListener('securitypolicyviolation', (e) =>
  window.reportCspViolation(e.effectiveDirective + ' ' + e.blockedURI));`;

/** What {@link LAYOUT_PROBE} measures in the page. */
interface Layout {
  /** `document.documentElement.scrollWidth`: wider than the viewport means sideways scrolling. */
  pageWidth: number;
  /** The matrix's scroll box: its content width and its own width. */
  matrixWidth: number;
  matrixBox: number;
  /** Labels, buttons, inputs and headings whose text is wider than their box. */
  clipped: string[];
  /** SVG chart texts that run past the chart's viewBox (SVG clips them there). */
  outside: string[];
  /** The counts text of each by-control bar. */
  barTexts: string[];
  /** Each cluster is a card (phone width) rather than a table row. */
  cards: boolean;
  /** Matrix cells taller than one line of a card (a squeezed label breaks into many lines). */
  tallCells: string[];
}

const LAYOUT_PROBE = `(() => {
  const shown = (e) => {
    const r = e.getBoundingClientRect();
    return r.width > 0 && r.height > 0;
  };
  const clipped = [...document.querySelectorAll(
    '.badge, .cell-btn, .sort, label, select, input, button, .bar-label, .bar-text, .count, .cluster-name, h1, h2, h3, td.open',
  )]
    .filter((e) => shown(e) && e.scrollWidth > e.clientWidth)
    .map((e) => e.tagName + '.' + e.className + ' "' + e.textContent.trim().slice(0, 40) + '" ' + e.scrollWidth + '>' + e.clientWidth);
  const outside = [...document.querySelectorAll('svg.chart text')]
    .filter((t) => {
      const box = t.getBBox();
      return box.x < 0 || box.x + box.width > t.ownerSVGElement.viewBox.baseVal.width;
    })
    .map((t) => t.textContent);
  const matrix = document.querySelector('.scroll');
  const cards = getComputedStyle(document.querySelector('#matrix-table thead')).display === 'none';
  const tallCells = [...document.querySelectorAll('#matrix-table td.cell')]
    .filter((c) => c.getBoundingClientRect().height > 60)
    .map((c) => c.getAttribute('data-control') + ' ' + Math.round(c.getBoundingClientRect().height));
  return {
    cards,
    tallCells,
    pageWidth: document.documentElement.scrollWidth,
    matrixWidth: matrix.scrollWidth,
    matrixBox: matrix.clientWidth,
    clipped,
    outside,
    barTexts: [...document.querySelectorAll('.bar-text')].map((e) => e.textContent),
  };
})()`;

/** Sort order of a control column, worst first (what an auditor wants on top). */
const RANK: Record<ControlStatus, number> = { fail: 0, unknown: 1, pass: 2, 'not-applicable': 3 };

/**
 * A fleet the size of a real jurisdiction: the whole catalogue (14 controls) for 12 clusters on
 * four clouds, one with a long name. Some clusters fail, some are unknown, some not
 * applicable, some pass everything, so every filter keeps some clusters and drops others.
 */
function fleetSnapshot(): JurisdictionSnapshot {
  const statusOf = (i: number, j: number): ControlStatus => {
    if (i % 3 === 0 && (i + j) % 4 === 0) return 'fail';
    if (i % 4 === 1 && (i + j) % 3 === 0) return 'unknown';
    if (i % 5 === 2 && j % 2 === 0) return 'not-applicable';
    return 'pass';
  };
  const places = [
    ['aws', '111122223333', 'eu-central-1', 'DE'],
    ['gcp', 'analytics-prod', 'europe-west3', 'DE'],
    ['azure', '0b6f2c1e-sub', 'westeurope', 'NL'],
    ['kubeconfig', 'on-prem', 'eu-west-3', 'FR'],
  ] as const;
  const clusters = Array.from({ length: 12 }, (_, i) => {
    const [cloud, scope, region, country] = places[i % places.length]!;
    const name =
      i === 5 ? 'ml-training-prod-with-a-very-long-cluster-name-05' : `ml-prod-${String(i).padStart(4, '0')}`;
    return cluster({
      id: `${cloud}/${scope}/${region}/${name}`,
      name,
      cloud,
      scope,
      region,
      country,
      results: CONTROLS.map((c, j) => result(c.id, statusOf(i, j))),
    });
  });
  const controls = CONTROLS.map((c) => ({ ...c, references: c.references.filter((r) => r.law === 'gdpr') }));
  return buildSnapshot({ clusters, catalogue: { version: '2026.12.0', controls } });
}

function names(clusters: readonly ClusterResult[]): string[] {
  return clusters.map((c) => c.name);
}

describe('snapshot HTML in headless Chromium', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fleetward-snapshot-html-'));
  const shots = process.env.SCREENSHOT_DIR || dir;
  let browser: Browser;

  beforeAll(async () => {
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
  });

  afterAll(async () => {
    await browser?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /**
   * Writes the HTML (a snapshot's, or given as is) to a file and opens it in a fresh page at the
   * given width, recording any trouble, CSP violations included.
   */
  async function open(
    snapshot: JurisdictionSnapshot | string,
    name: string,
    width = 1280,
  ): Promise<{ page: Page; trouble: PageTrouble }> {
    const file = join(dir, `${name}.html`);
    writeFileSync(file, typeof snapshot === 'string' ? snapshot : renderHtml(snapshot));
    const url = pathToFileURL(file).href;
    const page = await browser.newPage({ viewport: { width, height: 900 } });
    // A broken page fails in seconds, not at the 30 s default of every wait.
    page.setDefaultTimeout(10_000);
    const trouble: PageTrouble = structuredClone(NO_TROUBLE);
    // Init scripts run outside the page's CSP: they see every violation the policy reports.
    await page.exposeFunction('reportCspViolation', (v: string) => trouble.cspViolations.push(v));
    await page.addInitScript({ content: CSP_LISTENER });
    page.on('console', (m) => {
      if (m.type() === 'error') trouble.consoleErrors.push(m.text());
    });
    page.on('pageerror', (e) => trouble.pageErrors.push(e.message));
    page.on('requestfailed', (r) =>
      trouble.failedRequests.push(`${r.url()} ${r.failure()?.errorText ?? ''}`),
    );
    page.on('request', (r) => {
      if (r.url() !== url) trouble.foreignRequests.push(r.url());
    });
    page.on('dialog', async (d) => {
      trouble.dialogs.push(d.message());
      await d.dismiss();
    });
    await page.goto(url, { waitUntil: 'load' });
    return { page, trouble };
  }

  /** Names of the clusters the matrix shows, top to bottom. */
  function shownClusters(page: Page): Promise<string[]> {
    return page.locator('#matrix-table tbody tr:visible .cluster-name').allInnerTexts();
  }

  it('loads with no error, shows the summary and opens evidence on click', async () => {
    // Prepare
    const snapshot = buildSnapshot();
    const { page, trouble } = await open(snapshot, 'snapshot');

    try {
      // Act
      const summary = page.locator('#summary');
      await summary.waitFor({ state: 'visible' });
      const summaryText = await summary.innerText();
      const cell = page.locator('#matrix button[data-c="1"][data-r="1"]');
      await cell.click();
      const dialog = page.locator('#evidence');
      await dialog.waitFor({ state: 'visible' });
      const record = dialog.getByText('backup-status/gcp/analytics-prod/europe-west3/analytics-de', {
        exact: true,
      });
      await record.waitFor({ state: 'visible' });
      const dialogText = await dialog.innerText();
      await page.locator('#ev-close').click();
      await dialog.waitFor({ state: 'hidden' });
      const shot = join(dir, 'snapshot.png');
      await page.screenshot({ path: shot, fullPage: true });

      // Assess
      expect(trouble).toEqual(NO_TROUBLE);
      const { counts } = snapshot.summary;
      expect(summaryText).toContain(`${snapshot.summary.clusters} cluster(s)`);
      for (const [label, n] of [
        ['pass', counts.pass],
        ['fail', counts.fail],
        ['n/a', counts['not-applicable']],
        ['unknown', counts.unknown],
      ] as const) {
        expect(summaryText).toMatch(new RegExp(`${label.replace('/', '\\/')}\\s+${n}\\b`));
      }
      expect(await cell.innerText()).toContain('fail');
      expect(dialogText).toContain('analytics-de — backup.recent');
      expect(dialogText).toContain('The last backup completed 3 days before the evaluation (limit 24 h).');
      expect(dialogText).toContain('Fix the Velero schedule and run a backup.');
      expect(dialogText).toContain('"phase": "PartiallyFailed"');
      expect(dialogText).toContain('2025-05-30T02:10:00Z');
      const png = statSync(shot);
      expect(png.size).toBeGreaterThan(10 * 1024);
    } finally {
      await page.close();
    }
  });

  it('runs no script and shows hostile data as text', async () => {
    // Prepare
    const payload = '</script><script>alert(1)</script><img src=x onerror=alert(2)>';
    const snapshot = buildSnapshot({
      clusters: [
        cluster({
          name: `evil ${payload}`,
          results: CONTROL_IDS.map((id, i) =>
            result(id, i === 0 ? 'fail' : 'pass', {
              evidence: [evidence({ recordId: `rec ${payload}`, values: { note: payload } })],
            }),
          ),
        }),
      ],
    });
    const { page, trouble } = await open(snapshot, 'hostile');

    try {
      // Act
      await page.locator('#matrix button[data-c="0"][data-r="0"]').click();
      const dialog = page.locator('#evidence');
      await dialog.waitFor({ state: 'visible' });
      const dialogText = await dialog.innerText();
      const images = await page.locator('img').count();

      // Assess
      expect(trouble).toEqual(NO_TROUBLE);
      expect(images).toBe(0);
      expect(dialogText).toContain(`rec ${payload}`);
      expect(dialogText).toContain(`evil ${payload}`);
    } finally {
      await page.close();
    }
  });
  it.each<[string, (c: ClusterResult) => boolean]>([
    ['not-applicable', (c) => c.results.some((r) => r.status === 'not-applicable')],
    ['unknown', (c) => c.results.some((r) => r.status === 'unknown')],
    ['fail', (c) => c.results.some((r) => r.status === 'fail')],
    ['fail unknown', (c) => c.results.some((r) => r.status === 'fail' || r.status === 'unknown')],
  ])(
    'filters the matrix by status "%s": only clusters with such a result, other cells dimmed',
    async (value, has) => {
      // Prepare
      const snapshot = fleetSnapshot();
      const { page, trouble } = await open(snapshot, `status-${value.replace(' ', '-')}`);

      try {
        // Act
        const all = await shownClusters(page);
        await page.getByLabel('Status', { exact: true }).selectOption(value);
        const shown = await shownClusters(page);
        const count = await page.locator('#f-count').innerText();
        const dimmed = await page.evaluate<[string, string][]>(
          "[...document.querySelectorAll('#matrix-table tbody tr:not([hidden]) td.cell:not(.match)')]" +
            ".map((c) => [c.getAttribute('data-status'), getComputedStyle(c).opacity])",
        );

        // Assess
        expect(trouble).toEqual(NO_TROUBLE);
        expect(all).toEqual(names(snapshot.clusters));
        const expected = names(snapshot.clusters.filter(has));
        expect(expected.length).toBeGreaterThan(0);
        expect(expected.length).toBeLessThan(snapshot.clusters.length);
        expect(shown).toEqual(expected);
        expect(count).toBe(`Showing ${expected.length} of ${snapshot.clusters.length} cluster(s)`);
        expect(dimmed.length).toBeGreaterThan(0);
        for (const [status, opacity] of dimmed) {
          expect(value.split(' ')).not.toContain(status);
          expect(Number(opacity)).toBeLessThan(1);
        }
      } finally {
        await page.close();
      }
    },
  );

  it('searches clusters by name, id or region, filters by cloud and control, and resets', async () => {
    // Prepare
    const snapshot = fleetSnapshot();
    const { page, trouble } = await open(snapshot, 'search');
    const search = page.getByLabel('Search clusters');
    const visibleHeaders = () =>
      page.locator('#matrix-table thead th.control-col:visible .sort-label').allInnerTexts();

    try {
      // Act
      await search.fill('ML-PROD-0003');
      const byName = await shownClusters(page);
      await search.fill('westeurope');
      const byRegion = await shownClusters(page);
      await search.fill('no such cluster');
      const none = await shownClusters(page);
      const emptyShown = await page.locator('#f-empty').isVisible();
      await search.fill('');
      await page.getByLabel('Cloud').selectOption('gcp');
      const gcp = await shownClusters(page);
      await page.getByLabel('Cloud').selectOption('');
      await page.getByLabel('Control', { exact: true }).selectOption('backup.rpo');
      const headers = await visibleHeaders();
      const cellsPerRow = await page
        .locator('#matrix-table tbody tr:first-child td.cell:visible')
        .evaluateAll((cells) => cells.map((c) => c.getAttribute('data-control')));
      await page.getByLabel('Status', { exact: true }).selectOption('fail');
      const failingRpo = await shownClusters(page);
      await page.getByRole('button', { name: 'Reset' }).click();
      const reset = await shownClusters(page);
      const headersAfterReset = await visibleHeaders();

      // Assess
      expect(trouble).toEqual(NO_TROUBLE);
      expect(byName).toEqual(['ml-prod-0003']);
      expect(byRegion).toEqual(names(snapshot.clusters.filter((c) => c.region === 'westeurope')));
      expect(byRegion.length).toBe(3);
      expect(none).toEqual([]);
      expect(emptyShown).toBe(true);
      expect(gcp).toEqual(names(snapshot.clusters.filter((c) => c.cloud === 'gcp')));
      expect(headers).toEqual(['backup.rpo']);
      expect(cellsPerRow).toEqual(['backup.rpo']);
      const rpo = (c: ClusterResult) => c.results.find((r) => r.control === 'backup.rpo')?.status;
      expect(failingRpo).toEqual(names(snapshot.clusters.filter((c) => rpo(c) === 'fail')));
      expect(failingRpo.length).toBeGreaterThan(0);
      expect(reset).toEqual(names(snapshot.clusters));
      expect(headersAfterReset).toHaveLength(CONTROLS.length);
    } finally {
      await page.close();
    }
  });

  it('sorts by a column from its header button, with the mouse and the keyboard, and says so in aria-sort', async () => {
    // Prepare
    const snapshot = fleetSnapshot();
    const { page, trouble } = await open(snapshot, 'sort');
    const header = (key: string) => page.locator(`#matrix-table thead th[data-sort="${key}"]`);
    const byName = [...snapshot.clusters].sort((a, b) => a.name.localeCompare(b.name));
    const status = (c: ClusterResult, control: string) =>
      c.results.find((r) => r.control === control)!.status;

    try {
      // Act
      await header('name').getByRole('button').click();
      const ascending = await shownClusters(page);
      const ariaAscending = await header('name').getAttribute('aria-sort');
      await header('name').getByRole('button').click();
      const descending = await shownClusters(page);
      const ariaDescending = await header('name').getAttribute('aria-sort');
      await header('control:backup.rpo').getByRole('button').focus();
      await page.keyboard.press('Enter');
      const byRpo = await shownClusters(page);
      const ariaRpo = await header('control:backup.rpo').getAttribute('aria-sort');
      const ariaNameAfter = await header('name').getAttribute('aria-sort');
      await page.getByLabel('Sort by').selectOption('open');
      const byOpen = await shownClusters(page);
      const ariaOpen = await header('open').getAttribute('aria-sort');

      // Assess
      expect(trouble).toEqual(NO_TROUBLE);
      expect(ascending).toEqual(names(byName));
      expect(ariaAscending).toBe('ascending');
      expect(descending).toEqual(names(byName).reverse());
      expect(ariaDescending).toBe('descending');
      const worstFirst = [...byName].sort(
        (a, b) => RANK[status(a, 'backup.rpo')] - RANK[status(b, 'backup.rpo')],
      );
      expect(byRpo).toEqual(names(worstFirst));
      expect(byRpo).not.toEqual(names(byName));
      expect(ariaRpo).toBe('ascending');
      expect(ariaNameAfter).toBeNull();
      const open = (c: ClusterResult) => [
        c.results.filter((r) => r.status === 'fail').length,
        c.results.filter((r) => r.status === 'unknown').length,
      ];
      const mostOpen = [...byName].sort((a, b) => {
        const [fa, ua] = open(a);
        const [fb, ub] = open(b);
        return fb! - fa! || ub! - ua!;
      });
      expect(byOpen).toEqual(names(mostOpen));
      expect(ariaOpen).toBe('descending');
    } finally {
      await page.close();
    }
  });

  it.each([
    [390, 'cards'],
    [1024, 'the matrix scrolls in its own box'],
    [1440, 'the whole matrix'],
  ])(
    'fits a %i px wide screen (%s): no horizontal page overflow, no clipped label, a full screenshot',
    async (width, shows) => {
      // Prepare
      const snapshot = fleetSnapshot();
      const { page, trouble } = await open(snapshot, `fleet-${width}`, width);

      try {
        // Act
        const filtersShown = await page.locator('#filters').isVisible();
        const layout = await page.evaluate<Layout>(LAYOUT_PROBE);
        mkdirSync(shots, { recursive: true });
        const shot = join(shots, `snapshot-${width}.png`);
        await page.screenshot({ path: shot, fullPage: true });

        // Assess
        expect(trouble).toEqual(NO_TROUBLE);
        expect(filtersShown).toBe(true);
        expect(layout.pageWidth).toBeLessThanOrEqual(width);
        expect(layout.clipped).toEqual([]);
        expect(layout.outside).toEqual([]);
        // The whole matrix is on screen (phone cards, or all 14 columns at 1440 px), or it scrolls in its own box.
        if (shows === 'the matrix scrolls in its own box')
          expect(layout.matrixWidth).toBeGreaterThan(layout.matrixBox);
        else expect(layout.matrixWidth).toBeLessThanOrEqual(layout.matrixBox);
        expect(layout.cards).toBe(width < 768);
        if (layout.cards) expect(layout.tallCells).toEqual([]);
        expect(layout.barTexts).toHaveLength(CONTROLS.length);
        for (const text of layout.barTexts) expect(text).toMatch(/^\d+ \w+(, \d+ [\w/]+)*$/);
        expect(statSync(shot).size).toBeGreaterThan(50 * 1024);
      } finally {
        await page.close();
      }
    },
  );

  it('runs its script only by the hash in the CSP: a changed script is refused and reported', async () => {
    // Prepare
    const html = renderHtml(buildSnapshot());
    const scriptSrc = /http-equiv="Content-Security-Policy" content="[^"]*script-src (.*?); img-src/.exec(
      html,
    )?.[1];
    const tampered = html.replace("'use strict';", "'use strict'; document.title = 'changed';");
    const { page, trouble } = await open(tampered, 'tampered');

    try {
      // Act
      const filtersShown = await page.locator('#filters').isVisible();
      const title = await page.title();

      // Assess
      expect(scriptSrc).toMatch(/^&#39;sha256-[A-Za-z0-9+/]+=*&#39;$/);
      expect(tampered).not.toBe(html);
      expect(trouble.cspViolations).toEqual(['script-src-elem inline']);
      expect(trouble.consoleErrors.join('\n')).toMatch(
        /inline script violates the following Content Security Policy directive 'script-src/,
      );
      expect(filtersShown).toBe(false);
      expect(title).not.toBe('changed');
    } finally {
      await page.close();
    }
  });
});
