/**
 * AWS Budgets (`@aws-sdk/client-budgets`) behind the `BudgetProvider` port.
 *
 * Per account: STS AssumeRole into the account's configured `roleArn` (an account that is
 * not in `clouds.aws.accounts` is reached with the base credentials), then DescribeBudgets
 * (every page), and per Fleetward budget DescribeNotificationsForBudget and
 * DescribeSubscribersForNotification. Budgets are COST budgets; `period` is `TimeUnit`
 * (MONTHLY / QUARTERLY / ANNUALLY), a tag filter is `CostFilters.TagKeyValue`
 * `user:<key>$<value>` (any other filter is read too, and is drift: see `costFiltersOf`), thresholds are PERCENTAGE notifications (ACTUAL / FORECASTED,
 * GREATER_THAN) that all carry the same subscribers (EMAIL per address, SNS for the topic).
 *
 * Update: UpdateBudget when the amount, currency, period or tag filter differ; when the
 * thresholds or targets differ, every notification is deleted and the wanted ones created
 * (simpler than diffing subscribers, and AWS keeps no history on notifications).
 *
 * Currency: AWS has no API for an account's billing currency. The account's currency is
 * taken from `BudgetLimit.Unit` of any budget listed in it, else assumed to be USD; a budget
 * in another currency is refused before anything is sent.
 */
import {
  type Budget,
  BudgetsClient,
  CreateBudgetCommand,
  CreateNotificationCommand,
  DeleteBudgetCommand,
  DeleteNotificationCommand,
  type Notification,
  paginateDescribeBudgets,
  paginateDescribeNotificationsForBudget,
  paginateDescribeSubscribersForNotification,
  type Subscriber,
  UpdateBudgetCommand,
} from '@aws-sdk/client-budgets';
import {
  type ActualBudget,
  BudgetCurrencyError,
  type BudgetProvider,
  configName,
  type DesiredBudget,
  managedName,
} from '../../budgets/port.ts';
import type { AwsConfig, BudgetConfig } from '../../config/schema.ts';
import { createLimiter } from '../../runtime/concurrency.ts';
import type { AdapterContext } from '../context.ts';
import { baseCredentials, createRequestHandler, toCloudApiError } from './client.ts';
import { createRoleSessions } from './sessions.ts';

export const BUDGETS_ROLE_SESSION_NAME = 'fleetward-budgets';
/** The currency assumed for an account none of whose budgets tells its billing currency. */
export const DEFAULT_AWS_CURRENCY = 'USD';
/** Budgets is a global service answered in us-east-1. */
const BUDGETS_REGION = 'us-east-1';

const TIME_UNIT = { monthly: 'MONTHLY', quarterly: 'QUARTERLY', annually: 'ANNUALLY' } as const;
const PERIOD: Record<string, BudgetConfig['period']> = {
  MONTHLY: 'monthly',
  QUARTERLY: 'quarterly',
  ANNUALLY: 'annually',
};

type AwsBudget = DesiredBudget<'aws'>;

/** What an update or delete needs besides the normalised budget. */
interface AwsNative {
  account: string;
  notifications: Notification[];
}

/**
 * The tag filter a budget's `CostFilters` say in the config's terms, and every other filter as
 * `<dimension>=<values>`: other dimensions (`AZ`, `Service`, ...), `TagKeyValue` entries of a
 * second key or in another form. Those cannot be said in the config, so the plan shows them
 * as drift (an update writes the config's filter, which drops them).
 */
export function costFiltersOf(filters: Budget['CostFilters']): {
  tagFilter?: AwsBudget['scope']['tagFilter'];
  others: string[];
} {
  const others: string[] = [];
  let tagFilter: AwsBudget['scope']['tagFilter'];
  for (const [dimension, values] of Object.entries(filters ?? {})) {
    if (dimension !== 'TagKeyValue') {
      others.push(`${dimension}=${[...(values ?? [])].sort().join('|')}`);
      continue;
    }
    for (const entry of values ?? []) {
      const m = /^user:([^$]+)\$(.*)$/.exec(entry);
      if (m && (tagFilter === undefined || tagFilter.key === m[1])) {
        tagFilter ??= { key: m[1]!, values: [] };
        tagFilter.values.push(m[2]!);
      } else others.push(`TagKeyValue=${entry}`);
    }
  }
  return { ...(tagFilter ? { tagFilter } : {}), others: others.sort() };
}

function costFilters(desired: AwsBudget): Record<string, string[]> {
  const f = desired.scope.tagFilter;
  return f ? { TagKeyValue: f.values.map((v) => `user:${f.key}$${v}`) } : {};
}

function budgetOf(desired: AwsBudget): Budget {
  return {
    BudgetName: managedName(desired.name),
    BudgetType: 'COST',
    TimeUnit: TIME_UNIT[desired.period],
    BudgetLimit: { Amount: String(desired.amount), Unit: desired.currency },
    CostFilters: costFilters(desired),
  };
}

function notificationsOf(desired: AwsBudget): { Notification: Notification; Subscribers: Subscriber[] }[] {
  const subscribers: Subscriber[] = [
    ...desired.notify.emails.map((Address) => ({ SubscriptionType: 'EMAIL' as const, Address })),
    ...(desired.notify.snsTopicArn
      ? [{ SubscriptionType: 'SNS' as const, Address: desired.notify.snsTopicArn }]
      : []),
  ];
  return desired.thresholds.map((t) => ({
    Notification: {
      NotificationType: t.spend === 'actual' ? 'ACTUAL' : 'FORECASTED',
      ComparisonOperator: 'GREATER_THAN',
      Threshold: t.percent,
      ThresholdType: 'PERCENTAGE',
    },
    Subscribers: subscribers,
  }));
}

/**
 * A described budget in the config's shape, or `undefined` when Fleetward does not manage it:
 * `notifications` as DescribeNotificationsForBudget listed them, `subscribers[i]` those of
 * `notifications[i]`.
 */
export function fromAwsBudget(
  account: string,
  budget: Budget,
  notifications: Notification[],
  perNotification: Subscriber[][],
): ActualBudget | undefined {
  const name = configName(budget.BudgetName);
  if (!name) return undefined;
  const key = (s: Subscriber) => `${s.SubscriptionType}:${s.Address}`;
  const union = new Map<string, Subscriber>();
  for (const s of perNotification.flat()) union.set(key(s), s);
  const signature = (subs: Subscriber[]) => subs.map(key).sort().join(',');
  const uniform = perNotification.every((subs) => signature(subs) === signature(perNotification[0] ?? []));
  const emails = [...union.values()].filter((s) => s.SubscriptionType === 'EMAIL').map((s) => s.Address!);
  // Targets that differ per threshold cannot be said in the config: show them as drift.
  if (!uniform) emails.push('(targets differ per threshold)');
  const sns = [...union.values()].find((s) => s.SubscriptionType === 'SNS')?.Address;
  const { tagFilter, others } = costFiltersOf(budget.CostFilters);
  const actual: ActualBudget = {
    cloud: 'aws',
    name,
    amount: Number(budget.BudgetLimit?.Amount ?? Number.NaN),
    currency: budget.BudgetLimit?.Unit ?? null,
    period:
      PERIOD[budget.TimeUnit ?? ''] ?? (String(budget.TimeUnit).toLowerCase() as BudgetConfig['period']),
    thresholds: notifications.map((n) => ({
      percent: n.Threshold ?? 0,
      spend: n.NotificationType === 'FORECASTED' ? 'forecast' : 'actual',
    })),
    scope: { account, ...(tagFilter ? { tagFilter } : {}) },
    notify: { emails, ...(sns ? { snsTopicArn: sns } : {}) },
    providerId: `${account}/${budget.BudgetName}`,
    native: { account, notifications } satisfies AwsNative,
    ...(others.length > 0 ? { filtersNotInConfig: others } : {}),
  };
  return actual;
}

export function createBudgetProvider(config: AwsConfig, ctx: AdapterContext): BudgetProvider {
  const limiter = createLimiter(config.concurrency);
  const requestHandler = createRequestHandler(config);
  const common = {
    maxAttempts: config.maxAttempts,
    retryMode: 'standard',
    requestHandler,
    ...(config.endpoint ? { endpoint: config.endpoint } : {}),
  };
  const sessions = createRoleSessions(config, BUDGETS_ROLE_SESSION_NAME);
  /** Budgets clients per account, built once per provider (credentials refresh through AssumeRole again). */
  const clients = new Map<string, Promise<BudgetsClient>>();
  /** Billing currency per account, learnt from the budgets `list` saw. */
  const currencies = new Map<string, string>();

  const call = async <T>(operation: string, send: () => Promise<T>): Promise<T> =>
    limiter(async () => {
      try {
        return await send();
      } catch (error) {
        throw toCloudApiError(error, operation, { endpoint: config.endpoint });
      }
    });

  function clientOf(account: string): Promise<BudgetsClient> {
    let client = clients.get(account);
    if (!client) {
      const configured = config.accounts.find((a) => a.id === account);
      client = (async () => {
        if (!configured)
          return new BudgetsClient({ ...common, ...baseCredentials(config), region: BUDGETS_REGION });
        // A provider, so credentials renew before they expire.
        const credentials = () => sessions.credentials(configured);
        await credentials();
        return new BudgetsClient({ ...common, region: BUDGETS_REGION, credentials });
      })();
      client.catch(() => clients.delete(account));
      clients.set(account, client);
    }
    return client;
  }

  async function describe(
    client: BudgetsClient,
    account: string,
    budget: Budget,
    signal?: AbortSignal,
  ): Promise<ActualBudget | undefined> {
    const name = configName(budget.BudgetName);
    if (!name) return undefined;
    const notifications: Notification[] = [];
    await call('DescribeNotificationsForBudget', async () => {
      for await (const page of paginateDescribeNotificationsForBudget(
        { client },
        { AccountId: account, BudgetName: budget.BudgetName! },
      )) {
        signal?.throwIfAborted();
        notifications.push(...(page.Notifications ?? []));
      }
    });
    const perNotification: Subscriber[][] = [];
    for (const notification of notifications) {
      const subs: Subscriber[] = [];
      await call('DescribeSubscribersForNotification', async () => {
        for await (const page of paginateDescribeSubscribersForNotification(
          { client },
          { AccountId: account, BudgetName: budget.BudgetName!, Notification: notification },
        )) {
          subs.push(...(page.Subscribers ?? []));
        }
      });
      perNotification.push(subs);
    }
    return fromAwsBudget(account, budget, notifications, perNotification);
  }

  async function listAccount(account: string, signal?: AbortSignal): Promise<ActualBudget[]> {
    const client = await clientOf(account);
    const budgets: Budget[] = [];
    await call('DescribeBudgets', async () => {
      for await (const page of paginateDescribeBudgets({ client }, { AccountId: account })) {
        signal?.throwIfAborted();
        budgets.push(...(page.Budgets ?? []));
      }
    });
    const unit = budgets.find((b) => b.BudgetLimit?.Unit)?.BudgetLimit?.Unit;
    if (unit) currencies.set(account, unit);
    const described = await Promise.all(budgets.map((b) => describe(client, account, b, signal)));
    return described.filter((b): b is ActualBudget => b !== undefined);
  }

  function checkCurrency(desired: AwsBudget): void {
    const billing = currencies.get(desired.scope.account) ?? DEFAULT_AWS_CURRENCY;
    if (desired.currency !== billing) {
      throw new BudgetCurrencyError(
        desired.name,
        desired.currency,
        billing,
        `AWS account ${desired.scope.account}`,
      );
    }
  }

  const asAws = (desired: BudgetConfig): AwsBudget => {
    if (desired.cloud !== 'aws') throw new TypeError(`not an aws budget: ${desired.name}`);
    return desired;
  };

  return {
    cloud: 'aws',
    async list(scopes, options = {}) {
      const all = await Promise.all([...new Set(scopes)].map((a) => listAccount(a, options.signal)));
      return all.flat();
    },
    async create(input, options = {}) {
      const desired = asAws(input);
      checkCurrency(desired);
      const client = await clientOf(desired.scope.account);
      const sendOptions = options.signal ? { abortSignal: options.signal } : {};
      await call('CreateBudget', () =>
        client.send(
          new CreateBudgetCommand({
            AccountId: desired.scope.account,
            Budget: budgetOf(desired),
            NotificationsWithSubscribers: notificationsOf(desired),
          }),
          sendOptions,
        ),
      );
      ctx.logger.info('Budget created', {
        cloud: 'aws',
        account: desired.scope.account,
        budget: desired.name,
      });
    },
    async update(input, actual, options = {}) {
      const desired = asAws(input);
      if (actual.cloud !== 'aws') throw new TypeError(`not an aws budget: ${actual.name}`);
      checkCurrency(desired);
      const native = actual.native as AwsNative;
      const client = await clientOf(desired.scope.account);
      const sendOptions = options.signal ? { abortSignal: options.signal } : {};
      const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);
      const sortedValues = (f: AwsBudget['scope']['tagFilter']) =>
        f ? { key: f.key, values: [...f.values].sort() } : null;
      const budgetDrift =
        Number(actual.amount.toFixed(6)) !== Number(desired.amount.toFixed(6)) ||
        actual.currency !== desired.currency ||
        actual.period !== desired.period ||
        !same(sortedValues(actual.scope.tagFilter), sortedValues(desired.scope.tagFilter)) ||
        (actual.filtersNotInConfig?.length ?? 0) > 0;
      if (budgetDrift) {
        await call('UpdateBudget', () =>
          client.send(
            new UpdateBudgetCommand({ AccountId: desired.scope.account, NewBudget: budgetOf(desired) }),
            sendOptions,
          ),
        );
      }
      const wanted = notificationsOf(desired);
      const current = actual.thresholds.map((t) => `${t.spend}@${t.percent}`).sort();
      const next = desired.thresholds.map((t) => `${t.spend}@${t.percent}`).sort();
      const targets = (n: { emails: string[]; snsTopicArn?: string | undefined }) =>
        JSON.stringify([[...n.emails].sort(), n.snsTopicArn ?? null]);
      if (!same(current, next) || targets(actual.notify) !== targets(desired.notify)) {
        for (const notification of native.notifications) {
          await call('DeleteNotification', () =>
            client.send(
              new DeleteNotificationCommand({
                AccountId: desired.scope.account,
                BudgetName: managedName(desired.name),
                Notification: notification,
              }),
              sendOptions,
            ),
          );
        }
        for (const n of wanted) {
          await call('CreateNotification', () =>
            client.send(
              new CreateNotificationCommand({
                AccountId: desired.scope.account,
                BudgetName: managedName(desired.name),
                Notification: n.Notification,
                Subscribers: n.Subscribers,
              }),
              sendOptions,
            ),
          );
        }
      }
      ctx.logger.info('Budget updated', {
        cloud: 'aws',
        account: desired.scope.account,
        budget: desired.name,
      });
    },
    async delete(actual, options = {}) {
      if (actual.cloud !== 'aws') throw new TypeError(`not an aws budget: ${actual.name}`);
      const client = await clientOf(actual.scope.account);
      try {
        await call('DeleteBudget', () =>
          client.send(
            new DeleteBudgetCommand({
              AccountId: actual.scope.account,
              BudgetName: managedName(actual.name),
            }),
            options.signal ? { abortSignal: options.signal } : {},
          ),
        );
      } catch (error) {
        if ((error as { cause?: { name?: string } }).cause?.name !== 'NotFoundException') throw error;
      }
      ctx.logger.info('Budget deleted', { cloud: 'aws', account: actual.scope.account, budget: actual.name });
    },
    async close() {
      const settled = await Promise.allSettled(clients.values());
      for (const s of settled) if (s.status === 'fulfilled') s.value.destroy();
      clients.clear();
      sessions.close();
      requestHandler.destroy();
    },
  };
}

/** Provider permissions of this adapter's calls (shared/clouds/permissions.ts). */
export const PERMISSIONS: readonly import('../permissions.ts').PermissionGrant[] = [
  {
    provider: 'aws',
    holder: 'member',
    capability: 'budgets',
    permission: 'budgets:ViewBudget',
    calls: [
      'budgets:DescribeBudgets',
      'budgets:DescribeNotificationsForBudget',
      'budgets:DescribeSubscribersForNotification',
    ],
    why: "read the account's budgets, their notifications and subscribers to plan changes",
  },
  {
    provider: 'aws',
    holder: 'member',
    capability: 'budgets',
    permission: 'budgets:ModifyBudget',
    calls: [
      'budgets:CreateBudget',
      'budgets:UpdateBudget',
      'budgets:DeleteBudget',
      'budgets:CreateNotification',
      'budgets:DeleteNotification',
    ],
    why: 'create, update and delete the budgets Fleetward manages and their notifications',
  },
];
