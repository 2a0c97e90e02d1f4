/**
 * The Log Analytics fake against the documented query response shape (a sample with
 * placeholder values in test/fixtures/azure/log-analytics-query.json) and through the real
 * `LogsQueryClient` of `@azure/monitor-query-logs`.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LogsQueryClient, LogsQueryResultStatus } from '@azure/monitor-query-logs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type LogAnalyticsFake,
  parseAuditQuery,
  startLogAnalyticsFake,
} from '../sandbox/log-analytics-fake.ts';

const fixture = JSON.parse(
  readFileSync(new URL('../fixtures/azure/log-analytics-query.json', import.meta.url), 'utf8'),
) as { tables: { name: string; columns: { name: string; type: string }[]; rows: unknown[][] }[] };

const CLUSTER =
  '/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/example-rg/providers/Microsoft.ContainerService/managedClusters/example-cluster';
const WORKSPACE = 'law-example';
const credential = {
  getToken: async () => ({ token: 'sandbox-token', expiresOnTimestamp: Date.now() + 3_600_000 }),
};

function query(table: string, extra = ''): string {
  return `${table} | where _ResourceId =~ "${CLUSTER}"${extra} | where TimeGenerated >= datetime(2025-01-01T00:00:00.000Z) and TimeGenerated < datetime(2025-01-02T00:00:00.000Z) | order by TimeGenerated asc | take 100`;
}

let dir: string;
let fake: LogAnalyticsFake;
let ca: string;

function post(
  path: string,
  body: unknown,
  token = 'sandbox-token',
): Promise<{ status: number; json: unknown }> {
  const url = new URL(`${fake.endpoint}${path}`);
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: 'POST',
        ca,
        headers: {
          'content-type': 'application/json',
          ...(token ? { authorization: `Bearer ${token}` } : {}),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, json: JSON.parse(Buffer.concat(chunks).toString()) }),
        );
      },
    );
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fleetward-la-contract-'));
  fake = await startLogAnalyticsFake({ certDir: dir });
  ca = readFileSync(fake.caFile, 'utf8');
  fake.seed(WORKSPACE, CLUSTER, 10, { start: new Date('2025-01-01T00:00:00.123Z'), spacingMs: 1000 });
});

afterAll(async () => {
  await fake?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('log analytics fake: documented query response', () => {
  it('answers AKSAudit rows in the shape of the documented sample', async () => {
    const { status, json } = await post(`/v1/workspaces/${WORKSPACE}/query`, {
      query: query('AKSAudit'),
      timespan: '2025-01-01T00:00:00.000Z/2025-01-02T00:00:00.000Z',
    });
    expect(status).toBe(200);
    const answer = json as typeof fixture;
    expect(Object.keys(answer)).toEqual(Object.keys(fixture));
    const [table] = answer.tables;
    const [sample] = fixture.tables;
    expect(table!.name).toBe(sample!.name);
    expect(table!.columns).toEqual(sample!.columns);
    expect(table!.rows).toHaveLength(10);
    for (const row of table!.rows) {
      expect(row).toHaveLength(sample!.rows[0]!.length);
      sample!.columns.forEach((c, i) => {
        const cell = row[i];
        const expected = sample!.rows[0]![i];
        expect(typeof cell).toBe(typeof expected);
        if (c.type === 'datetime') expect(cell).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{7}Z$/);
        if (c.type === 'dynamic') expect(() => JSON.parse(cell as string)).not.toThrow();
      });
    }
    // Malformed lines: the 8th event has no AuditId.
    expect(table!.rows[7]![3]).toBe('');
  });

  it('parses through LogsQueryClient (datetimes become Dates, dynamic columns objects)', async () => {
    const client = new LogsQueryClient(credential, {
      endpoint: `${fake.endpoint}/v1`,
      retryOptions: { maxRetries: 0 },
      tlsOptions: { ca },
    });
    const result = await client.queryWorkspace(
      WORKSPACE,
      query('AzureDiagnostics', ' | where Category == "kube-audit"'),
      {
        startTime: new Date('2025-01-01T00:00:00Z'),
        endTime: new Date('2025-01-02T00:00:00Z'),
      },
    );
    expect(result.status).toBe(LogsQueryResultStatus.Success);
    if (result.status !== LogsQueryResultStatus.Success) return;
    const table = result.tables[0]!;
    expect(table.rows).toHaveLength(10);
    const names = table.columnDescriptors.map((c) => c.name);
    expect(table.rows[0]![names.indexOf('TimeGenerated')]).toBeInstanceOf(Date);
    expect(table.rows[0]![names.indexOf('Category')]).toBe('kube-audit');
    const log = JSON.parse(table.rows[0]![names.indexOf('log_s')] as string) as { auditID: string };
    expect(log.auditID).toMatch(/^[0-9a-f-]{36}$/);

    const aks = await client.queryWorkspace(WORKSPACE, query('AKSAudit'), {
      startTime: new Date('2025-01-01T00:00:00Z'),
      endTime: new Date('2025-01-02T00:00:00Z'),
    });
    if (aks.status !== LogsQueryResultStatus.Success) throw new Error('expected success');
    const cols = aks.tables[0]!.columnDescriptors.map((c) => c.name);
    expect(aks.tables[0]!.rows[0]![cols.indexOf('User')]).toMatchObject({ username: expect.any(String) });
  });

  it('refuses other queries, unknown workspaces and missing tokens like the service', async () => {
    const bad = await post(`/v1/workspaces/${WORKSPACE}/query`, { query: 'AKSAudit | take 10' });
    expect(bad.status).toBe(400);
    expect(bad.json).toMatchObject({ error: { code: 'BadArgumentError' } });
    expect(parseAuditQuery(query('AzureDiagnostics'))).toEqual(expect.any(String));
    expect(parseAuditQuery(query('AKSAudit'))).toMatchObject({ table: 'AKSAudit', take: 100 });
    expect((await post('/v1/workspaces/nope/query', { query: query('AKSAudit') })).status).toBe(404);
    expect((await post(`/v1/workspaces/${WORKSPACE}/query`, { query: query('AKSAudit') }, '')).status).toBe(
      401,
    );
  });
});
