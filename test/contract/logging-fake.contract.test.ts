/**
 * The logging fake answers `entries.list` (Cloud Logging API v2) as the API does.
 *
 * `test/fixtures/gcp/logging-entries-list.json` holds, in the shape of the Cloud Logging API
 * reference (`entries.list` response, `LogEntry`, `google.cloud.audit.AuditLog`) and of the
 * GKE audit logging documentation:
 * - `response`: an `entries.list` answer with one GKE Data Access audit entry of a
 *   Kubernetes API call (`serviceName` `k8s.io`, resource type `k8s_cluster`, the log name
 *   with its URL-encoded `/`, the Kubernetes auditID as `insertId`) and a page token;
 * - `resourceExhausted`: the JSON error body of a 429 (quota exceeded);
 * - `invalidArgument`: the JSON error body of a filter the service cannot parse.
 * Values are placeholders: `example-project`, `example-cluster`, documentation IP range.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FaultInjector } from '../sandbox/faults.ts';
import { type LoggingFake, parseFilter, startLoggingFake } from '../sandbox/logging-fake.ts';

interface Fixture {
  response: { entries: Record<string, unknown>[]; nextPageToken: string };
  resourceExhausted: { error: Record<string, unknown> };
  invalidArgument: { error: Record<string, unknown> };
}

const fixture = JSON.parse(
  readFileSync(new URL('../fixtures/gcp/logging-entries-list.json', import.meta.url), 'utf8'),
) as Fixture;
const sample = fixture.response.entries[0]!;

/** The structure of a JSON value: keys and value types, recursively (arrays by their first element). */
function shape(value: unknown): unknown {
  if (Array.isArray(value)) return [value.length > 0 ? shape(value[0]) : 'empty'];
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value as Record<string, unknown>)
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([k, v]) => [k, shape(v)]),
    );
  }
  return value === null ? 'null' : typeof value;
}

const PROJECT = 'example-project';
const faults = new FaultInjector();
let fake: LoggingFake;

async function list(
  body: unknown,
): Promise<{ status: number; headers: Headers; json: Record<string, unknown> }> {
  const response = await fetch(`${fake.endpoint}/v2/entries:list`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return {
    status: response.status,
    headers: response.headers,
    json: (await response.json()) as Record<string, unknown>,
  };
}

beforeAll(async () => {
  fake = await startLoggingFake({ faults });
  fake.seed(PROJECT, 'europe-west3', 'example-cluster', 5, {
    start: '2025-01-15T09:00:00Z',
    spacingMs: 60_000,
  });
  fake.seed(PROJECT, 'europe-west3', 'other-cluster', 3, {
    start: '2025-01-15T09:00:30Z',
    spacingMs: 60_000,
  });
});

afterAll(async () => {
  await fake?.stop();
});

describe('logging fake: entries.list', () => {
  it('answers entries with the documented field names and nesting', async () => {
    const { status, json } = await list({
      resourceNames: [`projects/${PROJECT}`],
      filter: 'resource.type="k8s_cluster" AND resource.labels.cluster_name="example-cluster"',
      orderBy: 'timestamp asc',
      pageSize: 2,
    });

    expect(status).toBe(200);
    expect(Object.keys(json).sort()).toEqual(Object.keys(fixture.response).sort());
    const entries = json.entries as Record<string, unknown>[];
    expect(entries).toHaveLength(2);
    for (const entry of entries) expect(shape(entry)).toEqual(shape(sample));
    expect(typeof json.nextPageToken).toBe('string');
    expect(entries[0]).toMatchObject({
      resource: {
        type: 'k8s_cluster',
        labels: { project_id: PROJECT, location: 'europe-west3', cluster_name: 'example-cluster' },
      },
      protoPayload: {
        '@type': sample.protoPayload && (sample.protoPayload as { '@type': string })['@type'],
        serviceName: 'k8s.io',
      },
    });
    const logNames = fake.entries().map((e) => e.logName);
    expect(new Set(logNames)).toEqual(
      new Set([
        `projects/${PROJECT}/logs/cloudaudit.googleapis.com%2Factivity`,
        `projects/${PROJECT}/logs/cloudaudit.googleapis.com%2Fdata_access`,
      ]),
    );
    expect(fake.entries().map((e) => e.insertId)).toEqual(
      fake
        .entries()
        .map(() => expect.stringMatching(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/)),
    );
  });

  it('filters by cluster, log name and a half-open time window, in timestamp order across pages', async () => {
    const body = {
      resourceNames: [`projects/${PROJECT}`],
      filter:
        'resource.type="k8s_cluster" AND resource.labels.location="europe-west3" AND logName:"cloudaudit.googleapis.com" AND timestamp>="2025-01-15T09:01:00Z" AND timestamp<"2025-01-15T09:04:00.000Z"',
      orderBy: 'timestamp asc',
      pageSize: 2,
    };
    const seen: string[] = [];
    let token: unknown;
    let pages = 0;
    do {
      const { status, json } = await list(token ? { ...body, pageToken: token } : body);
      expect(status).toBe(200);
      seen.push(...((json.entries as { timestamp: string }[] | undefined) ?? []).map((e) => e.timestamp));
      token = json.nextPageToken;
      pages++;
    } while (token);

    // 09:01, 09:02, 09:03 of example-cluster and 09:01:30, 09:02:30 of other-cluster.
    expect(seen).toEqual([...seen].sort());
    expect(seen).toHaveLength(5);
    expect(seen[0]).toBe('2025-01-15T09:01:00.000Z');
    expect(pages).toBe(3);
  });

  it('answers no entries field when nothing matches', async () => {
    const { status, json } = await list({
      resourceNames: [`projects/${PROJECT}`],
      filter: 'resource.labels.cluster_name="nobody"',
    });
    expect(status).toBe(200);
    expect(json).toEqual({});
  });

  it('refuses what it does not support with a 400 INVALID_ARGUMENT body', async () => {
    for (const filter of [
      'resource.type="k8s_cluster" OR resource.type="gce_instance"',
      'jsonPayload.message="x"',
      'timestamp>="yesterday"',
      'resource.type=k8s_cluster',
      '(resource.type="k8s_cluster")',
    ]) {
      const { status, json } = await list({ resourceNames: [`projects/${PROJECT}`], filter });
      expect(status, filter).toBe(400);
      expect(shape(json)).toEqual(shape(fixture.invalidArgument));
      expect(json.error).toMatchObject({ code: 400, status: 'INVALID_ARGUMENT' });
    }
    expect((await list({ resourceNames: ['organizations/1'] })).status).toBe(400);
    expect((await list({ resourceNames: [`projects/${PROJECT}`], pageSize: 5000 })).status).toBe(400);
    expect((await list({ resourceNames: [`projects/${PROJECT}`], pageToken: 'bogus' })).status).toBe(400);
    expect(() => parseFilter('a="b" AND')).toThrow();
    expect(parseFilter('logName:"x\\"y"')).toEqual([{ field: 'logName', op: ':', value: 'x"y' }]);
  });

  it("throttles with Google's RESOURCE_EXHAUSTED body and Retry-After", async () => {
    faults.add({
      cloud: 'gcp',
      operation: 'entries.list',
      scope: PROJECT,
      fault: { kind: 'throttle', retryAfterSeconds: 1 },
      times: 1,
    });
    const throttled = await list({ resourceNames: [`projects/${PROJECT}`] });
    expect(throttled.status).toBe(429);
    expect(throttled.headers.get('retry-after')).toBe('1');
    expect(shape(throttled.json)).toEqual(shape(fixture.resourceExhausted));
    expect(throttled.json.error).toMatchObject({ code: 429, status: 'RESOURCE_EXHAUSTED' });
    expect((await list({ resourceNames: [`projects/${PROJECT}`] })).status).toBe(200);
    expect(fake.requests().some((r) => r.fault === 'throttle' && r.status === 429)).toBe(true);
  });
});
