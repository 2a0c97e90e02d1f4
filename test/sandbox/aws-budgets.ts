/**
 * AWS Budgets on top of moto, through the AWS proxy: `installBudgetsOverrides()` fills in
 * what moto 5.2.1 lacks so the real `BudgetsClient` works end to end.
 *
 * - `UpdateBudget` (moto: not implemented): reads the budget and its notifications from moto,
 *   then DeleteBudget + CreateBudget(NewBudget) + CreateNotification per notification with
 *   the subscribers the proxy recorded, all as signed SDK calls to moto. `TimePeriod` (when the
 *   new budget omits it or its `Start`/`End`) and `CalculatedSpend` are kept as moto stored
 *   them. If moto refuses the new budget, the old one is restored. Unknown budget → 400
 *   `NotFoundException`.
 * - `CreateSubscriber` / `DeleteSubscriber` (moto: not implemented either, HTTP 500): answered
 *   here after checking in moto that the budget and the notification exist.
 * - `DescribeSubscribersForNotification` (moto: not implemented): answered from the subscribers
 *   the proxy recorded from `CreateBudget` (NotificationsWithSubscribers), `CreateNotification`,
 *   `CreateSubscriber`, `DeleteSubscriber`, `DeleteNotification` and `DeleteBudget`, paged by
 *   `MaxResults` (1-100, default 100) / `NextToken`.
 * - `DescribeBudgets`: moto ignores `MaxResults`; the proxy pages moto's answer (sorted by
 *   name, so pages stay stable when an update re-creates a budget) with `MaxResults` (1-1000,
 *   default 100) and an opaque `NextToken` (base64 of the offset).
 *
 * How moto 5.2.1 finds a budget: two keys. First the backend of the *caller's* account, chosen
 * per request by `MOTO_ACCOUNT_ID` (environment of the moto process), else the
 * `x-moto-account-id` header, else the access key id (keys moto issued itself — IAM keys and
 * STS AssumeRole credentials — map to their account; any other key, `testing` included, maps
 * to the default 123456789012). Inside that backend, budgets are keyed by the request's
 * `AccountId` parameter, which moto never checks against the caller. So the internal calls
 * here are signed with the access key id of the request being answered (moto verifies no
 * signatures, so the secret is `testing`), repeat its `x-moto-account-id` header, and pass
 * its `AccountId`: AssumeRole credentials of another account reach the same budgets. The
 * proxy's records use the same two keys (`x-moto-account-id`, else the account the proxy
 * learnt for the access key, else moto's default).
 *
 * moto quirk left as is: DeleteNotification only removes a notification whose stored JSON
 * equals the request's exactly (omitting `ThresholdType` when it was given at creation makes
 * it a silent no-op in moto), while the records here match by type, operator, threshold and
 * threshold type (default PERCENTAGE). UpdateNotification/UpdateSubscriber are not covered.
 */
import {
  type Budget,
  BudgetsClient,
  BudgetsServiceException,
  CreateBudgetCommand,
  CreateNotificationCommand,
  DeleteBudgetCommand,
  DescribeBudgetCommand,
  DescribeNotificationsForBudgetCommand,
  type Notification,
  type Subscriber,
} from '@aws-sdk/client-budgets';
import type { AwsProxy, ProxiedRequest, ProxyResponse } from './aws-proxy.ts';
import { assertLoopback } from './net.ts';

/** moto's account for keys it did not issue. */
const MOTO_DEFAULT_ACCOUNT = '123456789012';

type Json = Record<string, unknown>;

/** A subscriber as the wire carries it. */
interface WireSubscriber {
  SubscriptionType: string;
  Address: string;
}

interface RecordedNotification {
  notification: Json;
  subscribers: WireSubscriber[];
}

/** A Budgets JSON-protocol error, shaped like the real service's. */
export function budgetsError(code: string, message: string, status = 400): ProxyResponse {
  return {
    status,
    headers: {
      'content-type': 'application/x-amz-json-1.1',
      'x-amzn-requestid': crypto.randomUUID(),
    },
    body: JSON.stringify({ __type: code, Message: message }),
  };
}

function ok(body: unknown): ProxyResponse {
  return {
    status: 200,
    headers: { 'content-type': 'application/x-amz-json-1.1', 'x-amzn-requestid': crypto.randomUUID() },
    body: JSON.stringify(body),
  };
}

function header(req: ProxiedRequest, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

function parse(req: ProxiedRequest): Json {
  try {
    const v: unknown = JSON.parse(req.body.toString('utf8') || '{}');
    return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Json) : {};
  } catch {
    return {};
  }
}

const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
const obj = (v: unknown): Json | undefined =>
  v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Json) : undefined;

/** Identity of a notification (the real service treats an omitted ThresholdType as PERCENTAGE). */
function notificationKey(n: Json | Notification | undefined): string {
  const r = (n ?? {}) as Json;
  return [
    r.NotificationType,
    r.ComparisonOperator,
    Number(r.Threshold),
    r.ThresholdType ?? 'PERCENTAGE',
  ].join('|');
}

const subscriberKey = (s: WireSubscriber) => `${s.SubscriptionType}|${s.Address}`;

function wireSubscriber(v: unknown): WireSubscriber | undefined {
  const o = obj(v);
  const type = str(o?.SubscriptionType);
  const address = str(o?.Address);
  return type && address ? { SubscriptionType: type, Address: address } : undefined;
}

function wireSubscribers(v: unknown): WireSubscriber[] {
  const out: WireSubscriber[] = [];
  for (const item of Array.isArray(v) ? v : []) {
    const s = wireSubscriber(item);
    if (s && !out.some((o) => subscriberKey(o) === subscriberKey(s))) out.push(s);
  }
  return out;
}

/** A wire timestamp (epoch seconds, or an ISO string) as the SDK's input `Date`. */
function toDate(v: unknown): Date | undefined {
  if (typeof v === 'number') return new Date(v * 1000);
  if (typeof v === 'string') {
    const n = Number(v);
    const d = Number.isFinite(n) ? new Date(n * 1000) : new Date(v);
    return Number.isNaN(d.getTime()) ? undefined : d;
  }
  return undefined;
}

/** The request's `NewBudget` (wire JSON) as SDK input: timestamps become `Date`s. */
function budgetFromWire(raw: Json): Budget {
  const b: Json = { ...raw };
  const period = obj(raw.TimePeriod);
  if (period) {
    const tp: Json = {};
    const start = toDate(period.Start);
    const end = toDate(period.End);
    if (start) tp.Start = start;
    if (end) tp.End = end;
    b.TimePeriod = tp;
  }
  const auto = obj(raw.AutoAdjustData);
  if (auto) {
    const last = toDate(auto.LastAutoAdjustTime);
    const { LastAutoAdjustTime: _, ...rest } = auto;
    b.AutoAdjustData = last ? { ...rest, LastAutoAdjustTime: last } : rest;
  }
  const health = obj(raw.HealthStatus);
  if (health) {
    const { LastUpdatedTime: _, ...rest } = health;
    b.HealthStatus = rest;
  }
  delete b.LastUpdatedTime;
  return b as unknown as Budget;
}

function decodeToken(token: unknown): number | undefined {
  if (token === undefined || token === null || token === '') return 0;
  if (typeof token !== 'string') return undefined;
  const m = Buffer.from(token, 'base64')
    .toString('utf8')
    .match(/^offset:(\d+)$/);
  return m?.[1] === undefined ? undefined : Number(m[1]);
}

const encodeToken = (offset: number) => Buffer.from(`offset:${offset}`).toString('base64');

/** One page of `items`, or the error the real service gives for bad paging input. */
function page<T>(items: T[], input: Json, max: number): { items: T[]; nextToken?: string } | ProxyResponse {
  const size = input.MaxResults ?? 100;
  if (typeof size !== 'number' || !Number.isInteger(size) || size < 1 || size > max) {
    return budgetsError('InvalidParameterException', `MaxResults must be an integer from 1 to ${max}.`);
  }
  const offset = decodeToken(input.NextToken);
  if (offset === undefined || offset > items.length) {
    return budgetsError('InvalidNextTokenException', 'The pagination token is invalid.');
  }
  const slice = items.slice(offset, offset + size);
  const next = offset + size;
  return next < items.length ? { items: slice, nextToken: encodeToken(next) } : { items: slice };
}

const isResponse = (v: unknown): v is ProxyResponse =>
  v !== null && typeof v === 'object' && 'status' in v && typeof (v as ProxyResponse).status === 'number';

/** An SDK error from moto as the same wire error. */
function fromSdkError(error: unknown): ProxyResponse {
  if (error instanceof BudgetsServiceException) {
    return budgetsError(error.name, error.message, error.$metadata.httpStatusCode ?? 500);
  }
  return budgetsError('InternalErrorException', `proxy: moto call failed: ${(error as Error).message}`, 500);
}

/**
 * Registers the Budgets overrides on `proxy` (moto at `motoUrl`); returns a remover that
 * unregisters them and closes the internal clients. The recorded subscribers live as long as
 * the installation.
 */
export function installBudgetsOverrides(proxy: AwsProxy, motoUrl: string): () => void {
  assertLoopback(motoUrl);
  /** `budgetKey()` (moto account, AccountId, budget name) → recorded notifications. */
  const records = new Map<string, RecordedNotification[]>();
  const clients = new Map<string, BudgetsClient>();
  const locks = new Map<string, Promise<unknown>>();

  /** A client that reaches the same moto backend as `req`. */
  function clientFor(req: ProxiedRequest): BudgetsClient {
    const accessKeyId = req.info.accessKeyId ?? 'testing';
    const motoAccount = header(req, 'x-moto-account-id');
    const key = `${accessKeyId}\0${motoAccount ?? ''}`;
    let client = clients.get(key);
    if (!client) {
      client = new BudgetsClient({
        endpoint: motoUrl,
        region: 'us-east-1',
        credentials: { accessKeyId, secretAccessKey: 'testing' },
        maxAttempts: 1,
      });
      if (motoAccount) {
        client.middlewareStack.add(
          (next) => (args) => {
            const request = args.request as { headers?: Record<string, string> };
            if (request.headers) request.headers['x-moto-account-id'] = motoAccount;
            return next(args);
          },
          { step: 'build', name: 'fleetwardMotoAccount' },
        );
      }
      clients.set(key, client);
    }
    return client;
  }

  function budgetKey(req: ProxiedRequest, accountId: unknown, budgetName: unknown): string {
    const partition = header(req, 'x-moto-account-id') ?? req.info.scope ?? MOTO_DEFAULT_ACCOUNT;
    return `${partition}\0${String(accountId)}\0${String(budgetName)}`;
  }

  /** Runs `fn` after every earlier `serial` call for `key` has settled. */
  function serial<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = locks.get(key) ?? Promise.resolve();
    const run = prev.then(fn, fn);
    const tail = run.catch(() => undefined);
    locks.set(key, tail);
    void tail.then(() => {
      if (locks.get(key) === tail) locks.delete(key);
    });
    return run;
  }

  /** moto's notifications for the budget, or the NotFoundException the real service gives. */
  async function motoNotifications(
    req: ProxiedRequest,
    accountId: string,
    budgetName: string,
  ): Promise<Notification[] | ProxyResponse> {
    const client = clientFor(req);
    try {
      // DescribeNotificationsForBudget answers 500 for an unknown budget; ask DescribeBudget first.
      await client.send(new DescribeBudgetCommand({ AccountId: accountId, BudgetName: budgetName }));
      const out = await client.send(
        new DescribeNotificationsForBudgetCommand({ AccountId: accountId, BudgetName: budgetName }),
      );
      return out.Notifications ?? [];
    } catch (error) {
      return fromSdkError(error);
    }
  }

  /** The recorded notification named by the request, after checking moto has it. */
  async function findNotification(
    req: ProxiedRequest,
    input: Json,
  ): Promise<{ list: RecordedNotification[]; entry?: RecordedNotification; key: string } | ProxyResponse> {
    const accountId = str(input.AccountId) ?? '';
    const budgetName = str(input.BudgetName) ?? '';
    const notification = obj(input.Notification);
    if (!notification) return budgetsError('InvalidParameterException', 'Notification is required.');
    const inMoto = await motoNotifications(req, accountId, budgetName);
    if (isResponse(inMoto)) return inMoto;
    const nKey = notificationKey(notification);
    if (!inMoto.some((n) => notificationKey(n) === nKey)) {
      return budgetsError(
        'NotFoundException',
        `Unable to find notification for budget: ${budgetName} - the notification doesn't exist.`,
      );
    }
    const key = budgetKey(req, accountId, budgetName);
    const list = records.get(key) ?? [];
    records.set(key, list);
    const entry = list.find((r) => notificationKey(r.notification) === nKey);
    return entry ? { list, entry, key } : { list, key };
  }

  function record(key: string, notification: Json, subscribers: WireSubscriber[]): void {
    const list = records.get(key) ?? [];
    const nKey = notificationKey(notification);
    const entry = list.find((r) => notificationKey(r.notification) === nKey);
    if (entry) {
      for (const s of subscribers) {
        if (!entry.subscribers.some((o) => subscriberKey(o) === subscriberKey(s))) entry.subscribers.push(s);
      }
    } else {
      list.push({ notification, subscribers: [...subscribers] });
    }
    records.set(key, list);
  }

  async function updateBudget(req: ProxiedRequest): Promise<ProxyResponse> {
    const input = parse(req);
    const accountId = str(input.AccountId) ?? '';
    const raw = obj(input.NewBudget);
    const budgetName = str(raw?.BudgetName);
    if (!raw || !budgetName)
      return budgetsError('InvalidParameterException', 'NewBudget.BudgetName is required.');
    if (!('BudgetLimit' in raw) && !('PlannedBudgetLimits' in raw) && !('AutoAdjustData' in raw)) {
      // Checked before anything is deleted (moto would refuse the CreateBudget afterwards).
      return budgetsError(
        'InvalidParameterException',
        'Unable to create/update budget - please provide one of the followings: Budget Limit/ Planned Budget Limit/ Auto Adjust Data',
      );
    }
    const key = budgetKey(req, accountId, budgetName);
    return serial(key, async () => {
      const client = clientFor(req);
      let old: Budget | undefined;
      try {
        old = (await client.send(new DescribeBudgetCommand({ AccountId: accountId, BudgetName: budgetName })))
          .Budget;
      } catch (error) {
        if (error instanceof BudgetsServiceException && error.name === 'NotFoundException') {
          return budgetsError(
            'NotFoundException',
            `Unable to update budget: ${budgetName} - the budget doesn't exist.`,
          );
        }
        return fromSdkError(error);
      }
      if (!old)
        return budgetsError('InternalErrorException', 'moto answered DescribeBudget without a budget.', 500);
      let notifications: Notification[];
      try {
        notifications =
          (
            await client.send(
              new DescribeNotificationsForBudgetCommand({ AccountId: accountId, BudgetName: budgetName }),
            )
          ).Notifications ?? [];
      } catch (error) {
        return fromSdkError(error);
      }

      const next = budgetFromWire(raw);
      next.TimePeriod = {
        ...(old.TimePeriod?.Start ? { Start: old.TimePeriod.Start } : {}),
        ...(old.TimePeriod?.End ? { End: old.TimePeriod.End } : {}),
        ...next.TimePeriod,
      };
      if (old.CalculatedSpend) next.CalculatedSpend = old.CalculatedSpend;
      const { LastUpdatedTime: _, ...restorable } = old;

      const recorded = records.get(key) ?? [];
      const recreate = async () => {
        for (const notification of notifications) {
          const entry = recorded.find(
            (r) => notificationKey(r.notification) === notificationKey(notification),
          );
          await client.send(
            new CreateNotificationCommand({
              AccountId: accountId,
              BudgetName: budgetName,
              Notification: notification,
              Subscribers: (entry?.subscribers ?? []) as Subscriber[],
            }),
          );
        }
      };

      try {
        await client.send(new DeleteBudgetCommand({ AccountId: accountId, BudgetName: budgetName }));
      } catch (error) {
        return fromSdkError(error);
      }
      try {
        await client.send(new CreateBudgetCommand({ AccountId: accountId, Budget: next }));
      } catch (error) {
        // Put the old budget back so a refused update changes nothing.
        try {
          await client.send(new CreateBudgetCommand({ AccountId: accountId, Budget: restorable }));
          await recreate();
        } catch {
          // the original error below is the one worth reporting
        }
        return fromSdkError(error);
      }
      try {
        await recreate();
      } catch (error) {
        return fromSdkError(error);
      }
      return ok({});
    });
  }

  async function describeSubscribers(req: ProxiedRequest): Promise<ProxyResponse> {
    const input = parse(req);
    const found = await findNotification(req, input);
    if (isResponse(found)) return found;
    const paged = page(found.entry?.subscribers ?? [], input, 100);
    if (isResponse(paged)) return paged;
    return ok({ Subscribers: paged.items, ...(paged.nextToken ? { NextToken: paged.nextToken } : {}) });
  }

  async function createSubscriber(req: ProxiedRequest): Promise<ProxyResponse> {
    const input = parse(req);
    const subscriber = wireSubscriber(input.Subscriber);
    if (!subscriber) return budgetsError('InvalidParameterException', 'Subscriber is required.');
    const found = await findNotification(req, input);
    if (isResponse(found)) return found;
    if (found.entry?.subscribers.some((s) => subscriberKey(s) === subscriberKey(subscriber))) {
      return budgetsError(
        'DuplicateRecordException',
        `Error creating subscriber: ${subscriber.Address} - the subscriber already exists.`,
      );
    }
    record(found.key, obj(input.Notification) ?? {}, [subscriber]);
    return ok({});
  }

  async function deleteSubscriber(req: ProxiedRequest): Promise<ProxyResponse> {
    const input = parse(req);
    const subscriber = wireSubscriber(input.Subscriber);
    if (!subscriber) return budgetsError('InvalidParameterException', 'Subscriber is required.');
    const found = await findNotification(req, input);
    if (isResponse(found)) return found;
    const index =
      found.entry?.subscribers.findIndex((s) => subscriberKey(s) === subscriberKey(subscriber)) ?? -1;
    if (!found.entry || index < 0) {
      return budgetsError(
        'NotFoundException',
        `Unable to delete subscriber: ${subscriber.Address} - the subscriber doesn't exist.`,
      );
    }
    found.entry.subscribers.splice(index, 1);
    return ok({});
  }

  /** Forwards to moto and, on success, lets `onSuccess` update the records. */
  const recording =
    (onSuccess: (req: ProxiedRequest, input: Json) => void) =>
    async (req: ProxiedRequest, tools: { forward(): Promise<ProxyResponse> }): Promise<ProxyResponse> => {
      const answer = await tools.forward();
      if (answer.status === 200) onSuccess(req, parse(req));
      return answer;
    };

  async function describeBudgets(
    req: ProxiedRequest,
    tools: { forward(): Promise<ProxyResponse> },
  ): Promise<ProxyResponse> {
    const input = parse(req);
    const answer = await tools.forward();
    if (answer.status !== 200 || answer.body === undefined) return answer;
    const out = JSON.parse(Buffer.from(answer.body).toString('utf8')) as Json;
    const budgets = (Array.isArray(out.Budgets) ? (out.Budgets as Json[]) : []).toSorted((a, b) =>
      String(a.BudgetName).localeCompare(String(b.BudgetName)),
    );
    const paged = page(budgets, input, 1000);
    if (isResponse(paged)) return paged;
    return {
      ...answer,
      body: JSON.stringify({
        Budgets: paged.items,
        ...(paged.nextToken ? { NextToken: paged.nextToken } : {}),
      }),
    };
  }

  const removers = [
    proxy.override('UpdateBudget', updateBudget),
    proxy.override('DescribeSubscribersForNotification', describeSubscribers),
    proxy.override('CreateSubscriber', createSubscriber),
    proxy.override('DeleteSubscriber', deleteSubscriber),
    proxy.override('DescribeBudgets', describeBudgets),
    proxy.override(
      'CreateBudget',
      recording((req, input) => {
        const name = obj(input.Budget)?.BudgetName;
        const key = budgetKey(req, input.AccountId, name);
        records.delete(key);
        for (const item of Array.isArray(input.NotificationsWithSubscribers)
          ? input.NotificationsWithSubscribers
          : []) {
          const n = obj(obj(item)?.Notification);
          if (n) record(key, n, wireSubscribers(obj(item)?.Subscribers));
        }
      }),
    ),
    proxy.override('CreateNotification', async (req, tools) => {
      const input = parse(req);
      const key = budgetKey(req, input.AccountId, input.BudgetName);
      const nKey = notificationKey(obj(input.Notification));
      // moto would store a second copy; the real service refuses a duplicate.
      if (records.get(key)?.some((r) => notificationKey(r.notification) === nKey)) {
        return budgetsError(
          'DuplicateRecordException',
          `Error creating notification: ${String(input.BudgetName)} - the notification already exists.`,
        );
      }
      const answer = await tools.forward();
      if (answer.status === 200)
        record(key, obj(input.Notification) ?? {}, wireSubscribers(input.Subscribers));
      return answer;
    }),
    proxy.override(
      'DeleteNotification',
      recording((req, input) => {
        const key = budgetKey(req, input.AccountId, input.BudgetName);
        const nKey = notificationKey(obj(input.Notification));
        const list = records.get(key)?.filter((r) => notificationKey(r.notification) !== nKey);
        if (list) records.set(key, list);
      }),
    ),
    proxy.override(
      'DeleteBudget',
      recording((req, input) => {
        records.delete(budgetKey(req, input.AccountId, input.BudgetName));
      }),
    ),
  ];

  return () => {
    for (const remove of removers) remove();
    for (const client of clients.values()) client.destroy();
    clients.clear();
    records.clear();
  };
}
