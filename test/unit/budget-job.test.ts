/**
 * The budgets job's plan over budgets as the clouds answer them: one unreadable budget is a
 * finding on that budget, and the rest of the cloud's plan stands.
 */
import { readFileSync } from 'node:fs';
import type { Budget as ArmBudget } from '@azure/arm-consumption';
import { afterEach, describe, expect, it } from 'vitest';
import type {
  ActualBudget,
  BudgetCloud,
  BudgetProvider,
  BudgetProviders,
} from '../../shared/budgets/port.ts';
import { fromArmBudget } from '../../shared/clouds/azure/budgets.ts';
import { parseConfig } from '../../shared/config/load.ts';
import { plan, renderPlan } from '../../shared/jobs/budgets.ts';
import { silentLogger } from '../../shared/runtime/logger.ts';
import { SqliteStateStore } from '../../shared/state/sqlite.ts';

/** The placeholder subscription of the ARM REST reference examples. */
const SUB = '00000000-0000-0000-0000-000000000000';
const LIST = JSON.parse(
  readFileSync(new URL('../fixtures/azure/consumption-budgets-list.json', import.meta.url), 'utf8'),
) as { responses: { '200': { body: { value: ({ properties: object } & Record<string, unknown>)[] } } } };

/** A listed budget of the "Budgets - List" example as the SDK hands it over, renamed as Fleetward's. */
function listed(index: number, name: string): ArmBudget {
  const { properties, ...envelope } = structuredClone(LIST.responses['200'].body.value[index]!);
  return { ...envelope, ...properties, name } as ArmBudget;
}

/** Providers whose `list` maps what a cloud answered, through the adapter's own mapping. */
function providersOf(answers: Partial<Record<BudgetCloud, () => ActualBudget[]>>): BudgetProviders {
  return {
    async get(cloud) {
      return {
        cloud,
        async list() {
          return answers[cloud]?.() ?? [];
        },
      } as unknown as BudgetProvider;
    },
    async close() {},
  };
}

const budget = (name: string, amount: number) => ({
  name,
  cloud: 'azure',
  amount,
  currency: 'USD',
  scope: { subscription: SUB },
  thresholds: [{ percent: 80, spend: 'actual' }],
  notify: { emails: ['finops@example.com'] },
});

describe('budgets plan', () => {
  let store: SqliteStateStore | undefined;
  afterEach(() => store?.close());

  it('a notification that is not an object (Microsoft example) is a finding on its budget; the rest stands', async () => {
    store = new SqliteStateStore({ path: ':memory:' });
    const config = parseConfig({
      version: 1,
      jurisdictions: { eu: { preset: 'eu-gdpr' } },
      clouds: { azure: { subscriptions: [{ id: SUB }] } },
      budgets: [budget('malformed', 100.65), budget('healthy', 700), budget('new-one', 50)],
    });
    const at = new Date('2026-11-21T10:00:00Z');

    const result = await plan({
      config,
      store,
      providers: providersOf({
        azure: () =>
          [
            fromArmBudget(SUB, undefined, listed(0, 'fleetward-malformed')),
            fromArmBudget(SUB, undefined, listed(1, 'fleetward-healthy')),
          ].filter((b): b is ActualBudget => b !== undefined),
      }),
      logger: silentLogger,
      clock: { now: () => at },
    });

    expect(result.failures).toEqual([]);
    expect(result.changes.map((c) => [c.action, c.name])).toEqual([
      ['update', 'healthy'],
      ['update', 'malformed'],
      ['create', 'new-one'],
    ]);
    expect(result.budgetFindings).toEqual([
      {
        address: `azure/${SUB}/fleetward-malformed`,
        cloud: 'azure',
        kind: 'budget-unreadable',
        severity: 'medium',
        message: expect.stringMatching(/notification "thresholdType" is not a notification object/),
        at: at.toISOString(),
      },
    ]);
    expect(renderPlan(result)).toContain(`? azure/${SUB}/fleetward-malformed: notification "thresholdType"`);
  });
});
