/**
 * The Billing Budgets fake answers what the Cloud Billing Budget API (v1) answers, read
 * and written through the real `BudgetServiceClient` over plain-text gRPC on loopback.
 *
 * `test/fixtures/gcp/billing-budget.json` is a sample in the shape of the public Budget
 * resource reference (REST/proto3 JSON field names, enums by name, int64 as strings,
 * `budgetFilter.labels` as `map<string, ListValue>`), with placeholder values. It is
 * converted to and from the proto with google-gax's proto3 JSON serializer, so a field
 * name or nesting the v1 proto does not define fails the round trip.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { BudgetServiceClient } from '@google-cloud/billing-budgets';
import { GoogleAuth, grpc, protobuf, serializer } from 'google-gax';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { clientOptions } from '../../shared/clouds/gcp/discovery.ts';
import { GcpConfig } from '../../shared/config/schema.ts';
import {
  type BillingBudgetsFake,
  type Budget,
  startBillingBudgetsFake,
} from '../sandbox/billing-budgets-fake.ts';
import { RequestLog } from '../sandbox/faults.ts';

const FIXTURE = new URL('../fixtures/gcp/billing-budget.json', import.meta.url);
const fixture = JSON.parse(readFileSync(FIXTURE, 'utf8')) as Record<string, unknown>;
const USD_ACCOUNT = '000000-000000-000000';
const EUR_ACCOUNT = '000000-000000-0000EU';
const USD_PARENT = `billingAccounts/${USD_ACCOUNT}`;
const EUR_PARENT = `billingAccounts/${EUR_ACCOUNT}`;
const BUDGET_NAME = /^billingAccounts\/000000-000000-000000\/budgets\/[0-9a-f-]{36}$/;

/** The v1 `Budget` type from the client package's own protos.json. */
const BudgetType = protobuf.Root.fromJSON(
  createRequire(import.meta.url)('@google-cloud/billing-budgets/build/protos/protos.json'),
).lookupType('google.cloud.billing.budgets.v1.Budget');

/** Proto3 JSON (the REST representation) → the object the Node client sends. */
function fromJson(json: unknown): Budget {
  const message = serializer.fromProto3JSON(BudgetType, json as never);
  if (!message) throw new Error('not a Budget');
  return BudgetType.toObject(message, { longs: String, enums: String }) as Budget;
}

/** A budget the Node client returned → proto3 JSON. */
function toJson(budget: Budget): Record<string, unknown> {
  return serializer.toProto3JSON(BudgetType.fromObject(budget)) as Record<string, unknown>;
}

/** The fixture as a create request sends it: `name` and `etag` are output-only. */
function fixtureInput(): Record<string, unknown> {
  const { name: _name, etag: _etag, ...input } = fixture;
  return input;
}

function usd(units: number): Budget['amount'] {
  return { specifiedAmount: { currencyCode: 'USD', units: String(units) } };
}

let fake: BillingBudgetsFake;
let client: BudgetServiceClient;
const log = new RequestLog();
/**
 * The auth library the budgets client really uses: its own google-gax copy (and
 * google-auth-library), which may not be the top-level one.
 */
const requireFromBudgets = createRequire(
  createRequire(import.meta.url).resolve('@google-cloud/billing-budgets'),
);
const authClasses = [
  GoogleAuth,
  (requireFromBudgets('google-gax') as { GoogleAuth: typeof GoogleAuth }).GoogleAuth,
];
const authSpies = authClasses.flatMap((Auth) => [
  vi.spyOn(Auth.prototype, 'getClient'),
  vi.spyOn(Auth.prototype, 'getAccessToken'),
  vi.spyOn(Auth.prototype, 'getRequestHeaders'),
]);

beforeAll(async () => {
  fake = await startBillingBudgetsFake({
    log,
    billingAccounts: { [USD_ACCOUNT]: { currencyCode: 'USD' }, [EUR_PARENT]: { currencyCode: 'EUR' } },
  });
  const config = GcpConfig.parse({
    endpoint: fake.endpoint,
    insecure: true,
    projects: [{ id: 'example-project' }],
  });
  // The GKE adapter's insecure channel settings, handed over field by field (the budgets
  // package has its own google-gax copy, whose ClientOptions type differs nominally).
  const { apiEndpoint, port, sslCreds, universeDomain } = clientOptions(config);
  client = new BudgetServiceClient({ apiEndpoint, port: Number(port), sslCreds, universeDomain });
});

beforeEach(() => log.clear());

afterAll(async () => {
  await client?.close();
  await fake?.stop();
});

async function rejection(call: Promise<unknown>): Promise<{ code?: number; details?: string }> {
  try {
    await call;
  } catch (error) {
    return error as { code?: number; details?: string };
  }
  throw new Error('expected the call to fail');
}

async function create(budget: Budget, parent = USD_PARENT): Promise<Budget> {
  const [created] = await client.createBudget({ parent, budget }, { retry: null });
  return created;
}

describe('billing budgets fake, through the real BudgetServiceClient', () => {
  it('round-trips the documented Budget sample field by field', async () => {
    const created = await create(fromJson(fixtureInput()));
    expect(created.name).toMatch(BUDGET_NAME);
    expect(created.etag).toMatch(/^[0-9a-f]{16}$/);
    const json = toJson(created);
    const { name: _name, etag: _etag, ...expected } = fixture;
    // Every field of the sample comes back under the same name, nesting and value.
    expect(json).toMatchObject(expected);
    for (const key of Object.keys(fixture)) expect(json, key).toHaveProperty(key);
    expect(json.budgetFilter).toEqual(fixture.budgetFilter);
    expect(json.notificationsRule).toEqual(fixture.notificationsRule);

    const [got] = await client.getBudget({ name: created.name! }, { retry: null });
    expect(toJson(got)).toEqual(json);
    expect(fake.budgets(USD_ACCOUNT).map((b) => b.name)).toContain(created.name);
  });

  it('fills in the billing account currency when the amount leaves it out', async () => {
    const created = await create({
      displayName: 'no currency',
      amount: { specifiedAmount: { units: '50' } },
    });
    expect(created.amount?.specifiedAmount).toMatchObject({ currencyCode: 'USD', units: '50' });
    const lastPeriod = await create({ displayName: 'last period', amount: { lastPeriodAmount: {} } });
    expect(lastPeriod.amount?.lastPeriodAmount).toEqual({});
    expect(lastPeriod.amount?.specifiedAmount ?? null).toBeNull();
  });

  it('updates only the masked fields and changes the etag', async () => {
    const created = await create(fromJson(fixtureInput()));
    const [updated] = await client.updateBudget(
      {
        budget: {
          name: created.name!,
          displayName: 'renamed',
          thresholdRules: [{ thresholdPercent: 0.8, spendBasis: 'FORECASTED_SPEND' }],
          // Not in the mask: ignored.
          amount: usd(5),
          notificationsRule: {},
        },
        updateMask: { paths: ['display_name', 'threshold_rules'] },
      },
      { retry: null },
    );
    expect(updated.displayName).toBe('renamed');
    expect(updated.thresholdRules).toEqual([{ thresholdPercent: 0.8, spendBasis: 'FORECASTED_SPEND' }]);
    expect(updated.amount).toEqual(created.amount);
    expect(updated.notificationsRule).toEqual(created.notificationsRule);
    expect(updated.budgetFilter).toEqual(created.budgetFilter);
    expect(updated.name).toBe(created.name);
    expect(updated.etag).not.toBe(created.etag);

    // A nested path replaces just that field; the oneof partner is cleared.
    const [nested] = await client.updateBudget(
      {
        budget: {
          name: created.name!,
          budgetFilter: { customPeriod: { startDate: { year: 2026, month: 1, day: 1 } } },
        },
        updateMask: { paths: ['budget_filter.custom_period'] },
      },
      { retry: null },
    );
    expect(nested.budgetFilter?.customPeriod).toMatchObject({ startDate: { year: 2026, month: 1, day: 1 } });
    expect(toJson(nested).budgetFilter).not.toHaveProperty('calendarPeriod');
    expect(nested.budgetFilter?.projects).toEqual(created.budgetFilter?.projects);

    const [got] = await client.getBudget({ name: created.name! }, { retry: null });
    expect(got).toEqual(nested);
  });

  it('without a mask updates the fields that have non-default values', async () => {
    const created = await create(fromJson(fixtureInput()));
    const [updated] = await client.updateBudget(
      { budget: { name: created.name!, displayName: 'only the name', amount: usd(2000) } },
      { retry: null },
    );
    expect(updated.displayName).toBe('only the name');
    expect(updated.amount?.specifiedAmount).toMatchObject({ currencyCode: 'USD', units: '2000' });
    // Absent (default) fields keep their values.
    expect(updated.thresholdRules).toEqual(created.thresholdRules);
    expect(updated.budgetFilter).toEqual(created.budgetFilter);
    expect(updated.notificationsRule).toEqual(created.notificationsRule);
  });

  it('rejects an unknown or output-only mask path', async () => {
    const created = await create({ displayName: 'mask', amount: usd(1) });
    for (const path of ['name', 'no_such_field']) {
      const error = await rejection(
        client.updateBudget(
          { budget: { name: created.name!, displayName: 'x' }, updateMask: { paths: [path] } },
          { retry: null },
        ),
      );
      expect(error.code, path).toBe(grpc.status.INVALID_ARGUMENT);
    }
  });

  it('answers ABORTED for a stale etag and changes nothing', async () => {
    const created = await create({ displayName: 'etag', amount: usd(10) });
    const [first] = await client.updateBudget(
      {
        budget: { name: created.name!, displayName: 'first writer', etag: created.etag! },
        updateMask: { paths: ['display_name'] },
      },
      { retry: null },
    );
    const error = await rejection(
      client.updateBudget(
        {
          budget: { name: created.name!, displayName: 'second writer', etag: created.etag! },
          updateMask: { paths: ['display_name'] },
        },
        { retry: null },
      ),
    );
    expect(error.code).toBe(grpc.status.ABORTED);
    expect(error.details).toContain('etag');
    const [got] = await client.getBudget({ name: created.name! }, { retry: null });
    expect(got.displayName).toBe('first writer');
    expect(got.etag).toBe(first.etag);
    // An empty etag overwrites (documented).
    const [overwrite] = await client.updateBudget(
      { budget: { name: created.name!, displayName: 'overwrite' }, updateMask: { paths: ['display_name'] } },
      { retry: null },
    );
    expect(overwrite.displayName).toBe('overwrite');
  });

  it('answers INVALID_ARGUMENT for an amount in another currency than the billing account', async () => {
    const error = await rejection(
      client.createBudget({ parent: EUR_PARENT, budget: { amount: usd(100) } }, { retry: null }),
    );
    expect(error.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(error.details).toContain('"USD" does not match the billing account\'s currency "EUR"');
    expect(fake.budgets(EUR_ACCOUNT)).toEqual([]);

    const created = await create({ displayName: 'usd', amount: usd(100) });
    const updateError = await rejection(
      client.updateBudget(
        {
          budget: { name: created.name!, amount: { specifiedAmount: { currencyCode: 'EUR', units: '5' } } },
          updateMask: { paths: ['amount'] },
        },
        { retry: null },
      ),
    );
    expect(updateError.code).toBe(grpc.status.INVALID_ARGUMENT);
    const [got] = await client.getBudget({ name: created.name! }, { retry: null });
    expect(got.amount?.specifiedAmount).toMatchObject({ currencyCode: 'USD', units: '100' });
  });

  it('answers INVALID_ARGUMENT for a budget without an amount or with a bad schema version', async () => {
    expect(
      (
        await rejection(
          client.createBudget({ parent: USD_PARENT, budget: { displayName: 'x' } }, { retry: null }),
        )
      ).code,
    ).toBe(grpc.status.INVALID_ARGUMENT);
    const badSchema = await rejection(
      client.createBudget(
        {
          parent: USD_PARENT,
          budget: {
            amount: usd(1),
            notificationsRule: { pubsubTopic: 'projects/p/topics/t', schemaVersion: '2.0' },
          },
        },
        { retry: null },
      ),
    );
    expect(badSchema.code).toBe(grpc.status.INVALID_ARGUMENT);
  });

  it('answers NOT_FOUND for an unknown billing account or budget', async () => {
    const unknown = await rejection(
      client.createBudget(
        { parent: 'billingAccounts/999999-999999-999999', budget: { amount: usd(1) } },
        { retry: null },
      ),
    );
    expect(unknown.code).toBe(grpc.status.NOT_FOUND);
    const list = await rejection(
      client.listBudgets(
        { parent: 'billingAccounts/999999-999999-999999' },
        { retry: null, autoPaginate: false },
      ),
    );
    expect(list.code).toBe(grpc.status.NOT_FOUND);
    const missing = await rejection(
      client.getBudget(
        { name: `${USD_PARENT}/budgets/00000000-0000-4000-8000-000000000000` },
        { retry: null },
      ),
    );
    expect(missing.code).toBe(grpc.status.NOT_FOUND);
  });

  it('lists with page_size/page_token and filters by scope', async () => {
    const names: string[] = [];
    for (let i = 0; i < 5; i++) {
      const [b] = await client.createBudget(
        {
          parent: EUR_PARENT,
          budget: {
            displayName: `eur-${i}`,
            amount: { specifiedAmount: { currencyCode: 'EUR', units: String(100 * (i + 1)) } },
            budgetFilter: { projects: [i % 2 === 0 ? 'projects/111111111111' : 'projects/222222222222'] },
          },
        },
        { retry: null },
      );
      names.push(b.name!);
    }
    // Page by page, as the API pages.
    const pages: string[][] = [];
    let pageToken = '';
    do {
      const [, , response] = await client.listBudgets(
        { parent: EUR_PARENT, pageSize: 2, pageToken },
        { retry: null, autoPaginate: false },
      );
      pages.push((response?.budgets ?? []).map((b) => b.displayName!));
      pageToken = response?.nextPageToken ?? '';
    } while (pageToken);
    expect(pages).toEqual([['eur-0', 'eur-1'], ['eur-2', 'eur-3'], ['eur-4']]);

    // The client's own pagination follows the tokens.
    const all: string[] = [];
    for await (const b of client.listBudgetsAsync(
      { parent: EUR_PARENT, pageSize: 2 },
      { retry: null, autoPaginate: false },
    ))
      all.push(b.name!);
    expect(all).toEqual(names);

    const [scoped] = await client.listBudgets(
      { parent: EUR_PARENT, scope: 'projects/222222222222' },
      { retry: null },
    );
    expect(scoped.map((b) => b.displayName)).toEqual(['eur-1', 'eur-3']);

    const badToken = await rejection(
      client.listBudgets(
        { parent: EUR_PARENT, pageToken: 'not-a-token' },
        { retry: null, autoPaginate: false },
      ),
    );
    expect(badToken.code).toBe(grpc.status.INVALID_ARGUMENT);
  });

  it('deletes a budget', async () => {
    const created = await create({ displayName: 'to delete', amount: usd(1) });
    await client.deleteBudget({ name: created.name! }, { retry: null });
    expect(fake.budgets(USD_ACCOUNT).map((b) => b.name)).not.toContain(created.name);
    expect((await rejection(client.getBudget({ name: created.name! }, { retry: null }))).code).toBe(
      grpc.status.NOT_FOUND,
    );
    expect((await rejection(client.deleteBudget({ name: created.name! }, { retry: null }))).code).toBe(
      grpc.status.NOT_FOUND,
    );
  });

  it('records every request in the log with the billing account as scope', async () => {
    const created = await create({ displayName: 'logged', amount: usd(1) });
    await client.getBudget({ name: created.name! }, { retry: null });
    await client.updateBudget({ budget: { name: created.name!, displayName: 'logged 2' } }, { retry: null });
    await client.listBudgets({ parent: USD_PARENT }, { retry: null, autoPaginate: false });
    await client.deleteBudget({ name: created.name! }, { retry: null });
    expect(log.entries.map((e) => [e.operation, e.scope, e.status])).toEqual([
      ['CreateBudget', USD_ACCOUNT, 200],
      ['GetBudget', USD_ACCOUNT, 200],
      ['UpdateBudget', USD_ACCOUNT, 200],
      ['ListBudgets', USD_ACCOUNT, 200],
      ['DeleteBudget', USD_ACCOUNT, 200],
    ]);
    expect(log.entries.every((e) => e.cloud === 'gcp')).toBe(true);
  });

  it('never asked the auth library for credentials', () => {
    for (const spy of authSpies) expect(spy).not.toHaveBeenCalled();
  });
});
