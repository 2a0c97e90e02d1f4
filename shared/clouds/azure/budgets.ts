/**
 * Azure Consumption budgets (`@azure/arm-consumption`, `ConsumptionManagementClient.budgets`)
 * behind the `BudgetProvider` port, at subscription scope (`subscriptions/<sub>`) or
 * resource-group scope (`subscriptions/<sub>/resourceGroups/<rg>`).
 *
 * Mapping: category Cost; `timeGrain` Monthly / Quarterly / Annually; a new budget starts on
 * the first day of the current month (UTC) and keeps that start on every update, so runs in
 * later months change nothing (the start is never compared); a tag filter is
 * `filter.tags {name, operator In, values}` (every other filter term is read too, and is drift:
 * see `budgetFilterOf`); thresholds are notifications keyed
 * `actual_<percent>` / `forecast_<percent>` (thresholdType Actual / Forecasted, operator
 * GreaterThan), each with the configured `contactEmails` and `contactGroups` (action groups).
 * Updates carry the listed `eTag` (a budget changed meanwhile answers 412 and is reported).
 *
 * Currency: a budget has no currency field; its `currentSpend.unit` is the subscription's
 * billing currency. When any budget listed in a subscription tells it and the config's
 * currency differs, create and update raise a `BudgetCurrencyError` and send nothing. When
 * no budget tells it yet, the budget is created as configured.
 *
 * Transport: the AKS adapter's connection (endpoint, extra CA with Node's roots, token
 * scope), its per-request policy (same-origin check, per-attempt timeout), our retries
 * (`withRetry` with its `classify`), the pipeline's own retry off.
 */
import { rootCertificates } from 'node:tls';
import { type Budget, ConsumptionManagementClient, type Notification } from '@azure/arm-consumption';
import {
  type ActualBudget,
  BudgetCurrencyError,
  type BudgetProvider,
  configName,
  type DesiredBudget,
  managedName,
} from '../../budgets/port.ts';
import type { AzureConfig, BudgetConfig } from '../../config/schema.ts';
import { createLimiter } from '../../runtime/concurrency.ts';
import { CloudApiError } from '../../runtime/errors.ts';
import { unreachable } from '../../runtime/network.ts';
import { withRetry } from '../../runtime/retry.ts';
import type { AdapterContext } from '../context.ts';
import {
  classify,
  connectionOf,
  createCredential,
  requestPolicy,
  SERVICE,
  type TokenCredential,
} from './arm.ts';

type AzureBudget = DesiredBudget<'azure'>;

const GRAIN = { monthly: 'Monthly', quarterly: 'Quarterly', annually: 'Annually' } as const;
const PERIOD: Record<string, BudgetConfig['period']> = {
  Monthly: 'monthly',
  Quarterly: 'quarterly',
  Annually: 'annually',
};

interface AzureNative {
  timePeriod: Budget['timePeriod'];
}

/** `subscriptions/<sub>` or `subscriptions/<sub>/resourceGroups/<rg>`. */
export function armScope(subscription: string, resourceGroup?: string): string {
  return resourceGroup
    ? `subscriptions/${subscription}/resourceGroups/${resourceGroup}`
    : `subscriptions/${subscription}`;
}

/** The first day of the month of `now`, UTC. */
export function monthStart(now: Date): Date {
  return new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1));
}

/** The ARM Budget for a configured budget (no eTag); `timePeriod` as given. */
export function toArmBudget(desired: AzureBudget, timePeriod: NonNullable<Budget['timePeriod']>): Budget {
  const notifications: NonNullable<Budget['notifications']> = {};
  for (const t of desired.thresholds) {
    notifications[`${t.spend}_${String(t.percent).replace('.', '_')}`] = {
      enabled: true,
      operator: 'GreaterThan',
      threshold: t.percent,
      thresholdType: t.spend === 'actual' ? 'Actual' : 'Forecasted',
      contactEmails: [...desired.notify.emails],
      contactGroups: [...desired.notify.actionGroups],
    };
  }
  const tag = desired.scope.tagFilter;
  return {
    category: 'Cost',
    amount: desired.amount,
    timeGrain: GRAIN[desired.period],
    timePeriod,
    ...(tag ? { filter: { tags: { name: tag.key, operator: 'In', values: [...tag.values] } } } : {}),
    notifications,
  };
}

type Comparison = NonNullable<NonNullable<Budget['filter']>['tags']>;

/**
 * The tag filter a budget's `filter` says in the config's terms (one `tags` term with operator
 * `In`, at the top or alone in `and`), and every other term as text: `dimensions:<name> <op>
 * <values>`, a second `tags:<name> ...`, a `not:...`. Those cannot be said in the config, so
 * the plan shows them as drift (an update writes the config's filter, which drops them).
 */
export function budgetFilterOf(filter: Budget['filter']): {
  tagFilter?: AzureBudget['scope']['tagFilter'];
  others: string[];
} {
  const others: string[] = [];
  let tagFilter: AzureBudget['scope']['tagFilter'];
  const text = (kind: string, c: Comparison) =>
    `${kind}:${c.name} ${c.operator} ${[...(c.values ?? [])].sort().join('|')}`;
  const term = (t: { dimensions?: Comparison; tags?: Comparison } | undefined, prefix = '') => {
    if (t?.dimensions) others.push(`${prefix}${text('dimensions', t.dimensions)}`);
    if (!t?.tags) return;
    if (!prefix && tagFilter === undefined && t.tags.operator === 'In')
      tagFilter = { key: t.tags.name, values: [...(t.tags.values ?? [])] };
    else others.push(`${prefix}${text('tags', t.tags)}`);
  };
  term(filter);
  for (const t of filter?.and ?? []) term(t);
  if (filter?.not) term(filter.not, 'not:');
  return { ...(tagFilter ? { tagFilter } : {}), others: others.sort() };
}

/** A listed budget in the config's shape, or `undefined` when Fleetward does not manage it. */
export function fromArmBudget(
  subscription: string,
  resourceGroup: string | undefined,
  b: Budget,
): ActualBudget | undefined {
  const name = configName(b.name);
  if (!name) return undefined;
  // A notification ARM answers must be an object with a numeric threshold; anything else
  // (Microsoft's own "Budgets - List" example has `"thresholdType": "Actual"` among them, which
  // the SDK turns into an object without a threshold) is left out and reported on the budget.
  const problems: string[] = [];
  const notes: Notification[] = [];
  for (const [key, n] of Object.entries(b.notifications ?? {})) {
    const entry = n as unknown;
    if (
      typeof entry === 'object' &&
      entry !== null &&
      typeof (entry as { threshold?: unknown }).threshold === 'number'
    )
      notes.push(n);
    else problems.push(`notification "${key}" is not a notification object (no threshold); left out`);
  }
  const key = (n: (typeof notes)[number]) =>
    JSON.stringify([[...(n.contactEmails ?? [])].sort(), [...(n.contactGroups ?? [])].sort()]);
  const uniform = notes.every((n) => key(n) === key(notes[0]!));
  const emails = [...new Set(notes.flatMap((n) => n.contactEmails ?? []))];
  if (!uniform) emails.push('(targets differ per threshold)');
  const { tagFilter, others } = budgetFilterOf(b.filter);
  return {
    cloud: 'azure',
    name,
    amount: b.amount ?? Number.NaN,
    currency: b.currentSpend?.unit ?? null,
    period: PERIOD[b.timeGrain ?? ''] ?? (String(b.timeGrain).toLowerCase() as BudgetConfig['period']),
    thresholds: notes.map((n) => ({
      percent: n.threshold,
      spend: n.thresholdType === 'Forecasted' ? 'forecast' : 'actual',
    })),
    scope: {
      subscription,
      ...(resourceGroup ? { resourceGroup } : {}),
      ...(tagFilter ? { tagFilter } : {}),
    },
    notify: { emails, actionGroups: [...new Set(notes.flatMap((n) => n.contactGroups ?? []))] },
    providerId:
      b.id ?? `/${armScope(subscription, resourceGroup)}/providers/Microsoft.Consumption/budgets/${b.name}`,
    ...(b.eTag ? { etag: b.eTag } : {}),
    native: { timePeriod: b.timePeriod } satisfies AzureNative,
    ...(others.length > 0 ? { filtersNotInConfig: others } : {}),
    ...(problems.length > 0 ? { problems } : {}),
  };
}

function statusOf(error: unknown): number | undefined {
  const s = (error as { statusCode?: unknown } | null)?.statusCode;
  return typeof s === 'number' ? s : undefined;
}

/**
 * Wraps an error once. A `RestError` of the pipeline to ARM at `endpoint` that says the endpoint
 * was not reached (refused, DNS, TLS, timeout) is `cannot reach arm at <endpoint>: <reason>`; a
 * credential's errors are about its token endpoint, not ARM.
 */
function toCloudApiError(operation: string, what: string, error: unknown, endpoint: string): CloudApiError {
  if (error instanceof CloudApiError) return error;
  const status = statusOf(error);
  if ((error as { name?: unknown } | null)?.name === 'RestError') {
    const down = unreachable(error, { cloud: 'azure', operation, service: SERVICE, endpoint, status });
    if (down) return down;
  }
  const code = (error as { code?: string } | null)?.code;
  const detail = error instanceof Error ? error.message.split('\n')[0] : String(error);
  return new CloudApiError(
    `azure ${operation} of ${what} failed: ${code ? `${code}: ` : ''}${detail}`,
    { cloud: 'azure', operation, status, retryable: classify(error).retry },
    { cause: error },
  );
}

export function createBudgetProvider(config: AzureConfig, ctx: AdapterContext): BudgetProvider {
  const connection = connectionOf(config);
  const limiter = createLimiter(config.concurrency);
  /** Billing currency per lower-cased subscription, learnt from `currentSpend.unit` of listed budgets. */
  const currencies = new Map<string, string>();
  let client: Promise<ConsumptionManagementClient> | undefined;

  function clientOf(): Promise<ConsumptionManagementClient> {
    client ??= createCredential(config.credential).then(
      (credential: TokenCredential) =>
        new ConsumptionManagementClient(
          credential,
          config.subscriptions[0]?.id ?? '00000000-0000-0000-0000-000000000000',
          {
            $host: connection.endpoint,
            endpoint: connection.endpoint,
            credentialScopes: [connection.scope],
            retryOptions: { maxRetries: 0 },
            additionalPolicies: [
              {
                policy: requestPolicy(connection, config.timeoutMs, undefined, 'budgets'),
                position: 'perCall',
              },
            ],
            ...(connection.ca ? { tlsOptions: { ca: [...rootCertificates, ...connection.ca] } } : {}),
            userAgentOptions: { userAgentPrefix: 'fleetward' },
          },
        ),
      (error: unknown) => {
        client = undefined;
        throw error;
      },
    );
    return client;
  }

  const retried = <T>(
    operation: string,
    what: string,
    fn: () => Promise<T>,
    signal?: AbortSignal,
  ): Promise<T> =>
    withRetry(() => limiter(fn), classify, {
      maxAttempts: config.maxAttempts,
      ...(signal ? { signal } : {}),
      onRetry: ({ attempt, delayMs }) =>
        ctx.logger.info('Call retried', { operation, what, attempt, delayMs }),
    }).catch((error: unknown) => {
      throw toCloudApiError(operation, what, error, connection.endpoint);
    });

  const asAzure = (desired: BudgetConfig): AzureBudget => {
    if (desired.cloud !== 'azure') throw new TypeError(`not an azure budget: ${desired.name}`);
    return desired;
  };

  function checkCurrency(desired: AzureBudget): void {
    const billing = currencies.get(desired.scope.subscription.toLowerCase());
    if (billing && billing !== desired.currency) {
      throw new BudgetCurrencyError(
        desired.name,
        desired.currency,
        billing,
        `Azure subscription ${desired.scope.subscription}`,
      );
    }
  }

  async function put(desired: AzureBudget, budget: Budget, signal?: AbortSignal): Promise<void> {
    const c = await clientOf();
    const scope = armScope(desired.scope.subscription, desired.scope.resourceGroup);
    await retried(
      'budgets.createOrUpdate',
      `budget ${desired.name}`,
      () =>
        c.budgets.createOrUpdate(
          scope,
          managedName(desired.name),
          budget,
          signal ? { abortSignal: signal } : {},
        ),
      signal,
    );
  }

  return {
    cloud: 'azure',
    async list(scopes, options = {}) {
      const c = await clientOf();
      const all = await Promise.all(
        [...new Set(scopes)].map(async (key) => {
          const [subscription, resourceGroup] = key.split('/') as [string, string | undefined];
          const scope = armScope(subscription, resourceGroup);
          const budgets = await retried(
            'budgets.list',
            scope,
            async () => {
              const out: Budget[] = [];
              for await (const b of c.budgets.list(
                scope,
                options.signal ? { abortSignal: options.signal } : {},
              ))
                out.push(b);
              return out;
            },
            options.signal,
          );
          const unit = budgets.find((b) => b.currentSpend?.unit)?.currentSpend?.unit;
          if (unit) currencies.set(subscription.toLowerCase(), unit);
          return budgets
            .map((b) => fromArmBudget(subscription, resourceGroup, b))
            .filter((b): b is ActualBudget => b !== undefined);
        }),
      );
      return all.flat();
    },
    async create(input, options = {}) {
      const desired = asAzure(input);
      checkCurrency(desired);
      await put(desired, toArmBudget(desired, { startDate: monthStart(new Date()) }), options.signal);
      ctx.logger.info('Budget created', {
        cloud: 'azure',
        subscription: desired.scope.subscription,
        budget: desired.name,
      });
    },
    async update(input, actual, options = {}) {
      const desired = asAzure(input);
      checkCurrency(desired);
      const timePeriod = (actual.native as AzureNative | undefined)?.timePeriod ?? {
        startDate: monthStart(new Date()),
      };
      await put(
        desired,
        { ...toArmBudget(desired, timePeriod), ...(actual.etag ? { eTag: actual.etag } : {}) },
        options.signal,
      );
      ctx.logger.info('Budget updated', {
        cloud: 'azure',
        subscription: desired.scope.subscription,
        budget: desired.name,
      });
    },
    async delete(actual, options = {}) {
      if (actual.cloud !== 'azure') throw new TypeError(`not an azure budget: ${actual.name}`);
      const c = await clientOf();
      const scope = armScope(actual.scope.subscription, actual.scope.resourceGroup);
      try {
        await retried(
          'budgets.delete',
          `budget ${actual.name}`,
          () =>
            c.budgets.delete(
              scope,
              managedName(actual.name),
              options.signal ? { abortSignal: options.signal } : {},
            ),
          options.signal,
        );
      } catch (error) {
        // 204: there was no such budget (the SDK, expecting only 200, raises it); 404 likewise gone.
        const status = statusOf((error as CloudApiError).cause) ?? (error as CloudApiError).status;
        if (status !== 204 && status !== 404) throw error;
      }
      ctx.logger.info('Budget deleted', {
        cloud: 'azure',
        subscription: actual.scope.subscription,
        budget: actual.name,
      });
    },
    async close() {
      client = undefined;
    },
  };
}

/**
 * Provider permissions of this module's calls (shared/clouds/permissions.ts).
 */
export const PERMISSIONS: readonly import('../permissions.ts').PermissionGrant[] = [
  {
    provider: 'azure',
    holder: 'member',
    capability: 'budgets',
    permission: 'Microsoft.Consumption/budgets/read',
    calls: ['arm:budgets.list', 'arm:budgets.get'],
    why: "list the subscription's and resource groups' budgets to plan changes",
  },
  {
    provider: 'azure',
    holder: 'member',
    capability: 'budgets',
    permission: 'Microsoft.Consumption/budgets/write',
    calls: ['arm:budgets.createOrUpdate'],
    why: 'create and update the budgets Fleetward manages',
  },
  {
    provider: 'azure',
    holder: 'member',
    capability: 'budgets',
    permission: 'Microsoft.Consumption/budgets/delete',
    calls: ['arm:budgets.delete'],
    why: 'delete budgets Fleetward manages and the policy no longer asks for',
  },
];
