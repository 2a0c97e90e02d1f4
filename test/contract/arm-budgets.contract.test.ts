/**
 * Consumption budgets on the ARM fake through the real `ConsumptionManagementClient`
 * (`@azure/arm-consumption` 9, api-version 2021-10-01), at subscription scope
 * (`subscriptions/{sub}`) and resource-group scope (`subscriptions/{sub}/resourceGroups/{rg}`).
 *
 * `test/fixtures/azure/consumption-budget.json` is the ARM REST reference example
 * "Budgets - Create Or Update" (`CreateOrUpdateBudget.json`, api-version 2023-05-01): the request
 * `parameters` (scope, budget name, the Budget body with `eTag`, `filter.and` of `dimensions` and
 * `tags`, a notification with `contactGroups`, `thresholdType`, `locale`) and the 200 response,
 * with the all-zero placeholder subscription and the reference's example names.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { rootCertificates } from 'node:tls';
import { type Budget, ConsumptionManagementClient } from '@azure/arm-consumption';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { accessTokenCredential } from '../../shared/clouds/azure/discovery.ts';
import {
  type ArmBudget,
  type ArmFake,
  budgetId,
  budgetScope,
  EXAMPLE_SUBSCRIPTION,
  startArmFake,
  validateBudgetBody,
} from '../sandbox/arm-fake.ts';
import { RequestLog } from '../sandbox/faults.ts';

const FIXTURE = new URL('../fixtures/azure/consumption-budget.json', import.meta.url);
const fixture = JSON.parse(readFileSync(FIXTURE, 'utf8')) as {
  parameters: {
    scope: string;
    budgetName: string;
    'api-version': string;
    parameters: Record<string, unknown>;
  };
  responses: { '200': { body: ArmBudget } };
};
const TOKEN_ENV = 'FLEETWARD_CONTRACT_ARM_TOKEN';
const credential = accessTokenCredential({ env: TOKEN_ENV }, { [TOKEN_ENV]: 'sandbox-token' });
const EUR_SUBSCRIPTION = '11111111-1111-1111-1111-111111111111';
const SUB_SCOPE = `subscriptions/${EXAMPLE_SUBSCRIPTION}`;
const RG_SCOPE = `subscriptions/${EUR_SUBSCRIPTION}/resourceGroups/rg-fleet`;

let certDir: string;
let fake: ArmFake;
const log = new RequestLog();

function client(): ConsumptionManagementClient {
  return new ConsumptionManagementClient(credential, EXAMPLE_SUBSCRIPTION, {
    $host: fake.endpoint,
    endpoint: fake.endpoint,
    credentialScopes: [`${fake.endpoint}/.default`],
    tlsOptions: { ca: [...rootCertificates, fake.ca] },
    retryOptions: { maxRetries: 0 },
  });
}

function raw(method: string, path: string, body?: unknown): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      `${fake.endpoint}${path}`,
      {
        method,
        ca: fake.ca,
        headers: { authorization: 'Bearer sandbox-token', 'content-type': 'application/json' },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          text += chunk;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      },
    );
    req.on('error', reject);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

function monthly(amount: number, extra: Partial<Budget> = {}): Budget {
  return {
    category: 'Cost',
    amount,
    timeGrain: 'Monthly',
    timePeriod: { startDate: new Date('2025-01-01T00:00:00Z'), endDate: new Date('2026-12-31T00:00:00Z') },
    notifications: {
      Actual_GreaterThan_80_Percent: {
        enabled: true,
        operator: 'GreaterThan',
        threshold: 80,
        contactEmails: ['platform@example.com'],
        thresholdType: 'Actual',
      },
    },
    ...extra,
  };
}

/** Creates or updates and returns the budget together with the HTTP status of the answer. */
async function put(scope: string, name: string, budget: Budget): Promise<{ status: number; budget: Budget }> {
  let status = 0;
  const result = await client().budgets.createOrUpdate(scope, name, budget, {
    onResponse: (response) => {
      status = response.status;
    },
  });
  return { status, budget: result };
}

/** Field names and nesting of a JSON value, without its values. */
function shape(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(shape);
  if (typeof value === 'object' && value !== null)
    return Object.fromEntries(
      Object.entries(value)
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([k, v]) => [k, shape(v)]),
    );
  return typeof value;
}

beforeAll(async () => {
  certDir = mkdtempSync(join(tmpdir(), 'fleetward-arm-budgets-contract-'));
  fake = await startArmFake({ log, certDir, pageSize: 2 });
  fake.setBillingCurrency(EUR_SUBSCRIPTION, 'EUR');
});

afterAll(async () => {
  await fake?.stop();
  if (certDir) rmSync(certDir, { recursive: true, force: true });
});

describe('arm fake: budgets through the real ConsumptionManagementClient', () => {
  it('creates (201), gets, updates with the current eTag (200) at subscription scope', async () => {
    const created = await put(SUB_SCOPE, 'fleet-monthly', monthly(1000));

    expect(created.status).toBe(201);
    expect(created.budget).toMatchObject({
      id: budgetId(SUB_SCOPE, 'fleet-monthly'),
      name: 'fleet-monthly',
      type: 'Microsoft.Consumption/budgets',
      category: 'Cost',
      amount: 1000,
      timeGrain: 'Monthly',
      currentSpend: { amount: 0, unit: 'USD' },
      notifications: {
        Actual_GreaterThan_80_Percent: { threshold: 80, contactEmails: ['platform@example.com'] },
      },
    });
    expect(created.budget.timePeriod?.startDate).toEqual(new Date('2025-01-01T00:00:00Z'));
    expect(created.budget.forecastSpend).toBeUndefined();
    expect(created.budget.eTag).toMatch(/^".+"$/);

    const got = await client().budgets.get(SUB_SCOPE, 'fleet-monthly');
    expect(got).toEqual(created.budget);

    const updated = await put(SUB_SCOPE, 'fleet-monthly', monthly(1500, { eTag: got.eTag }));
    expect(updated.status).toBe(200);
    expect(updated.budget.amount).toBe(1500);
    expect(updated.budget.eTag).not.toBe(got.eTag);
    expect((await client().budgets.get(SUB_SCOPE, 'fleet-monthly')).amount).toBe(1500);
  });

  it('refuses a stale eTag with 412 PreconditionFailed as a RestError; no eTag is last-writer-wins', async () => {
    const current = await client().budgets.get(SUB_SCOPE, 'fleet-monthly');
    await put(SUB_SCOPE, 'fleet-monthly', monthly(1600, { eTag: current.eTag }));

    await expect(
      put(SUB_SCOPE, 'fleet-monthly', monthly(9999, { eTag: current.eTag })),
    ).rejects.toMatchObject({
      name: 'RestError',
      statusCode: 412,
      code: 'PreconditionFailed',
    });
    expect((await client().budgets.get(SUB_SCOPE, 'fleet-monthly')).amount).toBe(1600);

    const blind = await put(SUB_SCOPE, 'fleet-monthly', monthly(1700));
    expect(blind.status).toBe(200);
    expect(blind.budget.amount).toBe(1700);
  });

  it('refuses a start date that is not the first day of a month, and other bad bodies, with 400', async () => {
    const midMonth = monthly(10, {
      timePeriod: { startDate: new Date('2025-01-15T00:00:00Z'), endDate: new Date('2025-12-31T00:00:00Z') },
    });
    await expect(put(SUB_SCOPE, 'bad-start', midMonth)).rejects.toMatchObject({
      name: 'RestError',
      statusCode: 400,
      code: 'BadRequest',
      message: expect.stringMatching(/first day of a month/),
    });
    await expect(put(SUB_SCOPE, 'bad-amount', monthly(0))).rejects.toMatchObject({ statusCode: 400 });
    await expect(
      put(SUB_SCOPE, 'bad-grain', monthly(10, { timeGrain: 'Weekly' as 'Monthly' })),
    ).rejects.toMatchObject({ statusCode: 400 });
    const ends = monthly(10, {
      timePeriod: { startDate: new Date('2025-03-01T00:00:00Z'), endDate: new Date('2025-02-01T00:00:00Z') },
    });
    await expect(put(SUB_SCOPE, 'bad-end', ends)).rejects.toMatchObject({ statusCode: 400 });
    await expect(client().budgets.get(SUB_SCOPE, 'bad-start')).rejects.toMatchObject({ statusCode: 404 });
    expect(validateBudgetBody({ properties: { category: 'Cost' } })).toMatchObject({ status: 400 });
  });

  it('defaults the end date to ten years after the start, as ARM does', async () => {
    const { budget } = await put(
      SUB_SCOPE,
      'open-ended',
      monthly(10, { timePeriod: { startDate: new Date('2025-04-01T00:00:00Z') } }),
    );

    expect(budget.timePeriod?.endDate).toEqual(new Date('2035-04-01T00:00:00Z'));
  });

  it('keeps resource-group budgets apart, in the billing currency, with the scope spend', async () => {
    fake.setScopeSpend(RG_SCOPE, { current: 123.45, forecast: 456.7 });
    const { status, budget } = await put(
      RG_SCOPE,
      'rg-quarterly',
      monthly(2000, {
        timeGrain: 'Quarterly',
        filter: { tags: { name: 'cost-center', operator: 'In', values: ['cc-42'] } },
      }),
    );

    expect(status).toBe(201);
    expect(budget).toMatchObject({
      id: budgetId(RG_SCOPE, 'rg-quarterly'),
      timeGrain: 'Quarterly',
      filter: { tags: { name: 'cost-center', operator: 'In', values: ['cc-42'] } },
      currentSpend: { amount: 123.45, unit: 'EUR' },
      forecastSpend: { amount: 456.7, unit: 'EUR' },
    });
    await expect(client().budgets.get(SUB_SCOPE, 'rg-quarterly')).rejects.toMatchObject({
      statusCode: 404,
      code: 'NotFound',
    });
    const viaCanonical = await client().budgets.get(
      budgetScope(EUR_SUBSCRIPTION, 'rg-fleet')
        .slice(1)
        .toUpperCase()
        .replace('RESOURCEGROUPS', 'resourcegroups'),
      'rg-quarterly',
    );
    expect(viaCanonical.amount).toBe(2000);
  });

  it('lists the budgets of exactly one scope, following nextLink', async () => {
    for (const name of ['rg-b', 'rg-c']) await put(RG_SCOPE, name, monthly(50));

    const rg: string[] = [];
    for await (const b of client().budgets.list(RG_SCOPE)) rg.push(b.name ?? '');
    const sub: string[] = [];
    for await (const b of client().budgets.list(SUB_SCOPE)) sub.push(b.name ?? '');

    expect(rg).toEqual(['rg-quarterly', 'rg-b', 'rg-c']);
    expect(sub).toEqual(['fleet-monthly', 'open-ended']);
    const first = JSON.parse(
      (await raw('GET', `/${RG_SCOPE}/providers/Microsoft.Consumption/budgets?api-version=2021-10-01`)).body,
    ) as { value: unknown[]; nextLink?: string };
    expect(first.value).toHaveLength(2);
    expect(first.nextLink).toMatch(/(\$|%24)skipToken=/);
  });

  it('deletes with 200; a missing budget answers 204 (which the SDK, expecting only 200, raises)', async () => {
    let status = 0;
    await client().budgets.delete(RG_SCOPE, 'rg-c', {
      onResponse: (r) => {
        status = r.status;
      },
    });

    expect(status).toBe(200);
    await expect(client().budgets.get(RG_SCOPE, 'rg-c')).rejects.toMatchObject({ statusCode: 404 });
    const again = await raw(
      'DELETE',
      `/${RG_SCOPE}/providers/Microsoft.Consumption/budgets/rg-c?api-version=2021-10-01`,
    );
    expect(again.status).toBe(204);
    await expect(client().budgets.delete(RG_SCOPE, 'rg-c')).rejects.toMatchObject({ statusCode: 204 });
  });

  it('round-trips the reference example with its field names and nesting', async () => {
    const { scope, budgetName } = fixture.parameters;
    const res = await raw(
      'PUT',
      `/${scope}/providers/Microsoft.Consumption/budgets/${budgetName}?api-version=${fixture.parameters['api-version']}`,
      fixture.parameters.parameters,
    );

    expect(res.status).toBe(201);
    const body = JSON.parse(res.body) as ArmBudget;
    const reference = fixture.responses['200'].body;
    expect(shape(body)).toEqual(shape(reference));
    expect(body.properties).toEqual({ ...reference.properties, currentSpend: { amount: 0, unit: 'USD' } });
    expect(body.id).toBe(`/${reference.id}`);

    const viaSdk = await client().budgets.get(scope, budgetName);
    expect(viaSdk).toMatchObject({
      name: 'TestBudget',
      amount: 100.65,
      filter: {
        and: [
          { dimensions: { name: 'ResourceId', operator: 'In' } },
          { tags: { name: 'category', values: ['Dev', 'Prod'] } },
          { tags: { name: 'department', values: ['engineering', 'sales'] } },
        ],
      },
      notifications: {
        Actual_GreaterThan_80_Percent: {
          contactRoles: ['Contributor', 'Reader'],
          contactGroups: [expect.stringMatching(/actionGroups\/SampleActionGroup$/)],
          thresholdType: 'Actual',
          locale: 'en-us',
        },
      },
    });
    // Written back through the SDK (Dates and all) it stays the same budget.
    const { eTag: _e, id: _i, name: _n, type: _t, currentSpend: _c, ...writable } = viaSdk;
    const rewritten = await put(scope, budgetName, { ...writable, eTag: viaSdk.eTag });
    expect(rewritten.status).toBe(200);
    expect({ ...rewritten.budget, eTag: viaSdk.eTag }).toEqual(viaSdk);
  });

  it('logs budgets.createOrUpdate, get, delete and list with the subscription as scope', () => {
    for (const operation of ['budgets.createOrUpdate', 'budgets.get', 'budgets.delete', 'budgets.list'])
      expect(fake.requests({ operation }).length, operation).toBeGreaterThan(0);
    expect(fake.requests({ operation: 'budgets.createOrUpdate', scope: EUR_SUBSCRIPTION })[0]).toMatchObject({
      cloud: 'azure',
      status: 201,
    });
    expect(fake.requests({ operation: 'budgets.createOrUpdate' }).some((r) => r.status === 412)).toBe(true);
  });
});
