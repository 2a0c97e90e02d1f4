/**
 * GCP Cloud Billing Budget API (v1) behind the `BudgetProvider` port, through
 * `@google-cloud/billing-budgets`' `BudgetServiceClient` at `clouds.gcp.billingBudgetsEndpoint`.
 *
 * Per billing account: ListBudgets (every page); Fleetward's budgets are those whose
 * `displayName` is `fleetward-<name>`. Mapping: `amount.specifiedAmount` (currency code,
 * units, nanos); `budgetFilter.projects` as `projects/<id>` (the real API stores project
 * NUMBERS and answers them so; the sandbox fake keeps ids — give numbers in the config to
 * compare cleanly against the real API), `budgetFilter.labels` as `map<string, ListValue>`,
 * `calendarPeriod` MONTH / QUARTER / YEAR; thresholds as `thresholdRules` CURRENT_SPEND /
 * FORECASTED_SPEND with `thresholdPercent` = percent / 100; targets as `notificationsRule`
 * (`pubsubTopic` with schema version 1.0, `monitoringNotificationChannels`). Updates send
 * every managed field under an update mask, with the etag that was listed (a budget changed
 * meanwhile answers ABORTED and is reported, not overwritten).
 *
 * Transport: the GKE adapter's client options (`clientOptions`), field by field, since the
 * budgets package bundles its own google-gax whose types differ nominally. Both gax copies
 * load the one top-level `@grpc/grpc-js`, so the insecure channel credentials made there are
 * the ones this client's gRPC understands. Reads and deletes are retried by us
 * (`withRetry`); gax's own retry is off; a create is never retried (it is not idempotent).
 *
 * Currency: the API refuses (INVALID_ARGUMENT) an amount in another currency than the
 * billing account's; that refusal becomes a `BudgetCurrencyError` naming the budget and
 * both currencies. When a budget listed in the billing account already tells its currency,
 * the check happens before anything is sent.
 */
import { BudgetServiceClient, type protos } from '@google-cloud/billing-budgets';
import {
  type ActualBudget,
  BudgetCurrencyError,
  type BudgetProvider,
  configName,
  type DesiredBudget,
  managedName,
} from '../../budgets/port.ts';
import type { BudgetConfig, GcpConfig } from '../../config/schema.ts';
import { createLimiter } from '../../runtime/concurrency.ts';
import { CloudApiError } from '../../runtime/errors.ts';
import { withRetry } from '../../runtime/retry.ts';
import type { AdapterContext } from '../context.ts';
import { googleAuthOptions } from './federation.ts';
import {
  callOptionsOf,
  classify,
  clientOptions,
  grpcCode,
  grpcUnreachable,
  HTTP_STATUS_OF_CODE,
} from './grpc.ts';

type IBudget = protos.google.cloud.billing.budgets.v1.IBudget;
type GcpBudget = DesiredBudget<'gcp'>;

const INVALID_ARGUMENT = 3;
const NOT_FOUND = 5;
const CALENDAR = { monthly: 'MONTH', quarterly: 'QUARTER', annually: 'YEAR' } as const;
const PERIOD_BY_NAME: Record<string, BudgetConfig['period']> = {
  MONTH: 'monthly',
  QUARTER: 'quarterly',
  YEAR: 'annually',
};
const PERIOD_BY_NUMBER: Record<number, BudgetConfig['period']> = {
  1: 'monthly',
  2: 'quarterly',
  3: 'annually',
};
const UPDATE_MASK = ['display_name', 'amount', 'budget_filter', 'threshold_rules', 'notifications_rule'];

/** The Billing Budgets endpoint without a configured `billingBudgetsEndpoint`. */
const DEFAULT_BUDGETS_ENDPOINT = 'billingbudgets.googleapis.com:443';

/**
 * Wraps a gax / grpc-js error once; a refused, untrusted or HTML-answering endpoint (`host:port`)
 * is `cannot reach billing budgets at <endpoint>: <reason>`.
 */
function toCloudApiError(operation: string, what: string, error: unknown, endpoint: string): CloudApiError {
  if (error instanceof CloudApiError) return error;
  const down = grpcUnreachable(error, { operation, service: 'billing budgets', endpoint });
  if (down) return down;
  const code = grpcCode(error);
  const detail = error instanceof Error ? error.message : String(error);
  return new CloudApiError(
    `gcp ${operation} of ${what} failed: ${detail}`,
    {
      cloud: 'gcp',
      operation,
      status: code === undefined ? undefined : HTTP_STATUS_OF_CODE[code],
      retryable: classify(error).retry,
    },
    { cause: error },
  );
}

function amountOf(amount: number, currency: string) {
  const units = Math.trunc(amount);
  const nanos = Math.round((amount - units) * 1e9);
  return { specifiedAmount: { currencyCode: currency, units: String(units), ...(nanos ? { nanos } : {}) } };
}

/** The API's Budget for a configured budget (no name or etag). */
export function toGcpBudget(desired: GcpBudget): IBudget {
  const labels = Object.fromEntries(
    Object.entries(desired.scope.labels).map(([k, values]) => [
      k,
      { values: values.map((stringValue) => ({ stringValue })) },
    ]),
  );
  return {
    displayName: managedName(desired.name),
    amount: amountOf(desired.amount, desired.currency),
    budgetFilter: {
      ...(desired.scope.projects.length > 0
        ? { projects: desired.scope.projects.map((p) => `projects/${p}`) }
        : {}),
      ...(Object.keys(labels).length > 0 ? { labels } : {}),
      calendarPeriod: CALENDAR[desired.period],
    },
    thresholdRules: desired.thresholds.map((t) => ({
      thresholdPercent: t.percent / 100,
      spendBasis: t.spend === 'actual' ? 'CURRENT_SPEND' : 'FORECASTED_SPEND',
    })),
    notificationsRule: {
      ...(desired.notify.pubsubTopic
        ? { pubsubTopic: desired.notify.pubsubTopic, schemaVersion: '1.0' }
        : {}),
      monitoringNotificationChannels: [...desired.notify.channels],
    },
  };
}

/** A listed Budget in the config's shape, or `undefined` when Fleetward does not manage it. */
export function fromGcpBudget(billingAccount: string, b: IBudget): ActualBudget | undefined {
  const name = configName(b.displayName);
  if (!name) return undefined;
  const specified = b.amount?.specifiedAmount;
  const amount = specified
    ? Number(String(specified.units ?? 0)) + Number(specified.nanos ?? 0) / 1e9
    : Number.NaN;
  const period = b.budgetFilter?.calendarPeriod;
  const labels: Record<string, string[]> = {};
  for (const [k, v] of Object.entries(b.budgetFilter?.labels ?? {})) {
    labels[k] = (v.values ?? []).map((x) => String(x.stringValue ?? x.numberValue ?? x.boolValue ?? ''));
  }
  const pubsubTopic = b.notificationsRule?.pubsubTopic || undefined;
  // Filter fields the config cannot say: drift (an update writes the whole budget_filter).
  const f = b.budgetFilter;
  const others = (
    [
      ['creditTypes', f?.creditTypes],
      ['resourceAncestors', f?.resourceAncestors],
      ['services', f?.services],
      ['subaccounts', f?.subaccounts],
    ] as const
  )
    .filter(([, values]) => (values?.length ?? 0) > 0)
    .map(([field, values]) => `${field}=${[...(values ?? [])].sort().join('|')}`);
  return {
    cloud: 'gcp',
    name,
    amount,
    currency: specified?.currencyCode || null,
    period:
      (typeof period === 'number' ? PERIOD_BY_NUMBER[period] : PERIOD_BY_NAME[String(period)]) ??
      // A custom period or none cannot be said in the config: shown as drift.
      (String(period ?? 'none').toLowerCase() as BudgetConfig['period']),
    thresholds: (b.thresholdRules ?? []).map((r) => ({
      percent: Number(((r.thresholdPercent ?? 0) * 100).toFixed(6)),
      spend: r.spendBasis === 'FORECASTED_SPEND' || r.spendBasis === 2 ? 'forecast' : 'actual',
    })),
    scope: {
      billingAccount,
      projects: (b.budgetFilter?.projects ?? []).map((p) => p.replace(/^projects\//, '')),
      labels,
    },
    notify: {
      ...(pubsubTopic ? { pubsubTopic } : {}),
      channels: [...(b.notificationsRule?.monitoringNotificationChannels ?? [])],
    },
    providerId: b.name ?? '',
    ...(b.etag ? { etag: b.etag } : {}),
    ...(others.length > 0 ? { filtersNotInConfig: others } : {}),
  };
}

/** The billing currency an INVALID_ARGUMENT names, when it is a currency refusal. */
function refusedCurrency(error: unknown): string | undefined {
  if (grpcCode(error) !== INVALID_ARGUMENT) return undefined;
  const text = `${(error as { details?: string }).details ?? ''} ${(error as Error).message ?? ''}`;
  const m = /currency[^"]*"([A-Z]{3})"[^"]*currency[^"]*"([A-Z]{3})"/i.exec(text);
  return m?.[2];
}

export function createBudgetProvider(config: GcpConfig, ctx: AdapterContext): BudgetProvider {
  const { apiEndpoint, port, sslCreds, universeDomain } = clientOptions({
    ...config,
    endpoint: config.billingBudgetsEndpoint,
  });
  const client = new BudgetServiceClient({
    ...(apiEndpoint ? { apiEndpoint } : {}),
    ...(port !== undefined ? { port: Number(port) } : {}),
    ...(sslCreds ? { sslCreds } : {}),
    ...(universeDomain ? { universeDomain } : {}),
    ...(config.insecure ? {} : googleAuthOptions(config)),
  });
  const limiter = createLimiter(config.concurrency);
  /** Billing currency per billing account, learnt from listed budgets. */
  const currencies = new Map<string, string>();
  const endpoint = config.billingBudgetsEndpoint?.trim() || DEFAULT_BUDGETS_ENDPOINT;
  // Per call (gax writes the attempt's deadline into it): no gax retries, the answer's content type kept.
  const callOptions = () => callOptionsOf(config.timeoutMs);

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
      throw toCloudApiError(operation, what, error, endpoint);
    });

  const asGcp = (desired: BudgetConfig): GcpBudget => {
    if (desired.cloud !== 'gcp') throw new TypeError(`not a gcp budget: ${desired.name}`);
    return desired;
  };

  function checkCurrency(desired: GcpBudget): void {
    const billing = currencies.get(desired.scope.billingAccount);
    if (billing && billing !== desired.currency) {
      throw new BudgetCurrencyError(
        desired.name,
        desired.currency,
        billing,
        `GCP billing account ${desired.scope.billingAccount}`,
      );
    }
  }

  function currencyError(desired: GcpBudget, error: unknown): unknown {
    const billing = refusedCurrency(error);
    if (!billing) return error;
    currencies.set(desired.scope.billingAccount, billing);
    return new BudgetCurrencyError(
      desired.name,
      desired.currency,
      billing,
      `GCP billing account ${desired.scope.billingAccount}`,
    );
  }

  return {
    cloud: 'gcp',
    async list(scopes, options = {}) {
      const all = await Promise.all(
        [...new Set(scopes)].map(async (account) => {
          const [budgets] = await retried(
            'ListBudgets',
            `billing account ${account}`,
            () =>
              client.listBudgets(
                { parent: `billingAccounts/${account}` },
                { ...callOptions(), autoPaginate: true },
              ),
            options.signal,
          );
          const currency = budgets.find((b) => b.amount?.specifiedAmount?.currencyCode)?.amount
            ?.specifiedAmount?.currencyCode;
          if (currency) currencies.set(account, currency);
          return budgets
            .map((b) => fromGcpBudget(account, b))
            .filter((b): b is ActualBudget => b !== undefined);
        }),
      );
      return all.flat();
    },
    async create(input) {
      const desired = asGcp(input);
      checkCurrency(desired);
      try {
        await limiter(() =>
          client.createBudget(
            { parent: `billingAccounts/${desired.scope.billingAccount}`, budget: toGcpBudget(desired) },
            callOptions(),
          ),
        );
      } catch (error) {
        const e = currencyError(desired, error);
        throw e instanceof BudgetCurrencyError
          ? e
          : toCloudApiError('CreateBudget', `budget ${desired.name}`, e, endpoint);
      }
      ctx.logger.info('Budget created', {
        cloud: 'gcp',
        billingAccount: desired.scope.billingAccount,
        budget: desired.name,
      });
    },
    async update(input, actual, options = {}) {
      const desired = asGcp(input);
      checkCurrency(desired);
      const budget: IBudget = {
        ...toGcpBudget(desired),
        name: actual.providerId,
        ...(actual.etag ? { etag: actual.etag } : {}),
      };
      try {
        await retried(
          'UpdateBudget',
          `budget ${desired.name}`,
          () => client.updateBudget({ budget, updateMask: { paths: UPDATE_MASK } }, callOptions()),
          options.signal,
        );
      } catch (error) {
        const e = currencyError(desired, (error as CloudApiError).cause ?? error);
        throw e instanceof BudgetCurrencyError ? e : error;
      }
      ctx.logger.info('Budget updated', {
        cloud: 'gcp',
        billingAccount: desired.scope.billingAccount,
        budget: desired.name,
      });
    },
    async delete(actual, options = {}) {
      try {
        await retried(
          'DeleteBudget',
          `budget ${actual.name}`,
          () => client.deleteBudget({ name: actual.providerId }, callOptions()),
          options.signal,
        );
      } catch (error) {
        if (grpcCode((error as CloudApiError).cause) !== NOT_FOUND) throw error;
      }
      ctx.logger.info('Budget deleted', { cloud: 'gcp', budget: actual.name });
    },
    async close() {
      await client.close();
    },
  };
}

/**
 * Provider permissions of this module's calls (shared/clouds/permissions.ts).
 */
export const PERMISSIONS: readonly import('../permissions.ts').PermissionGrant[] = [
  {
    provider: 'gcp',
    holder: 'member',
    capability: 'budgets',
    permission: 'billing.budgets.list',
    calls: ['billingbudgets:ListBudgets'],
    why: "list the billing account's budgets to plan changes",
  },
  {
    provider: 'gcp',
    holder: 'member',
    capability: 'budgets',
    permission: 'billing.budgets.get',
    calls: ['billingbudgets:GetBudget'],
    why: 'read one budget',
  },
  {
    provider: 'gcp',
    holder: 'member',
    capability: 'budgets',
    permission: 'billing.budgets.create',
    calls: ['billingbudgets:CreateBudget'],
    why: 'create the budgets Fleetward manages',
  },
  {
    provider: 'gcp',
    holder: 'member',
    capability: 'budgets',
    permission: 'billing.budgets.update',
    calls: ['billingbudgets:UpdateBudget'],
    why: 'update the budgets Fleetward manages',
  },
  {
    provider: 'gcp',
    holder: 'member',
    capability: 'budgets',
    permission: 'billing.budgets.delete',
    calls: ['billingbudgets:DeleteBudget'],
    why: 'delete budgets Fleetward manages and the policy no longer asks for',
  },
];
