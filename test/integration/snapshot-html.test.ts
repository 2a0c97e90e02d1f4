/**
 * The HTML snapshot in a real browser (headless Chromium through playwright-core): it loads
 * with no console error, page error or request beyond the file itself, shows the summary,
 * opens a result's evidence on click, runs no script smuggled in through data, and renders
 * to a non-trivial screenshot. `CHROMIUM_PATH` overrides the browser executable.
 */
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { renderHtml } from '../../shared/compliance/render/html.ts';
import type { JurisdictionSnapshot } from '../../shared/compliance/schema.ts';
import { buildSnapshot, CONTROL_IDS, cluster, evidence, result } from '../unit/compliance-builders.ts';

const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';

/** What a page did that it should not: console errors, uncaught errors, failed or foreign requests, alerts. */
interface PageTrouble {
  consoleErrors: string[];
  pageErrors: string[];
  failedRequests: string[];
  foreignRequests: string[];
  dialogs: string[];
}

describe('snapshot HTML in headless Chromium', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fleetward-snapshot-html-'));
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

  /** Writes the snapshot's HTML to a file and opens it in a fresh page, recording any trouble. */
  async function open(
    snapshot: JurisdictionSnapshot,
    name: string,
  ): Promise<{ page: Page; trouble: PageTrouble }> {
    const file = join(dir, `${name}.html`);
    writeFileSync(file, renderHtml(snapshot));
    const url = pathToFileURL(file).href;
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    // A broken page fails in seconds, not at the 30 s default of every wait.
    page.setDefaultTimeout(10_000);
    const trouble: PageTrouble = {
      consoleErrors: [],
      pageErrors: [],
      failedRequests: [],
      foreignRequests: [],
      dialogs: [],
    };
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
      expect(trouble).toEqual({
        consoleErrors: [],
        pageErrors: [],
        failedRequests: [],
        foreignRequests: [],
        dialogs: [],
      });
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
      expect(trouble).toEqual({
        consoleErrors: [],
        pageErrors: [],
        failedRequests: [],
        foreignRequests: [],
        dialogs: [],
      });
      expect(images).toBe(0);
      expect(dialogText).toContain(`rec ${payload}`);
      expect(dialogText).toContain(`evil ${payload}`);
    } finally {
      await page.close();
    }
  });
});
