/**
 * Contract: the real `BudgetsClient` against moto behind the AWS proxy with the Budgets
 * overrides — UpdateBudget keeps notifications and subscribers, subscribers and budgets page
 * with MaxResults/NextToken, errors carry the real service's names, AssumeRole credentials
 * reach their own account's budgets, and DescribeBudget's wire answer has the field names,
 * nesting and JSON types of the API reference sample (placeholder values).
 */
import { Readable } from 'node:stream';
import {
  type Budget,
  BudgetsClient,
  CreateBudgetCommand,
  CreateNotificationCommand,
  CreateSubscriberCommand,
  DeleteNotificationCommand,
  DeleteSubscriberCommand,
  DescribeBudgetCommand,
  DescribeBudgetsCommand,
  DescribeNotificationsForBudgetCommand,
  DescribeSubscribersForNotificationCommand,
  type Notification,
  paginateDescribeBudgets,
  UpdateBudgetCommand,
} from '@aws-sdk/client-budgets';
import { AssumeRoleCommand, STSClient } from '@aws-sdk/client-sts';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fixture from '../fixtures/aws/budgets-describe-budget.json' with { type: 'json' };
import { installBudgetsOverrides } from '../sandbox/aws-budgets.ts';
import { type AwsProxy, startAwsProxy } from '../sandbox/aws-proxy.ts';
import { type MotoServer, startMoto } from '../sandbox/moto.ts';

/** Keeps a copy of every response body the SDK receives. */
class CapturingHandler extends NodeHttpHandler {
  readonly bodies: string[] = [];
  override async handle(
    ...args: Parameters<NodeHttpHandler['handle']>
  ): ReturnType<NodeHttpHandler['handle']> {
    const out = await super.handle(...args);
    const chunks: Buffer[] = [];
    for await (const chunk of out.response.body as AsyncIterable<Buffer>) chunks.push(Buffer.from(chunk));
    const body = Buffer.concat(chunks);
    this.bodies.push(body.toString('utf8'));
    out.response.body = Readable.from([body]);
    return out;
  }
}

/** Every path of a JSON value with its JSON type; array items share `x[]`, map keys are `*`. */
function shapeOf(value: unknown, path = '', into = new Map<string, string>()): Map<string, string> {
  if (Array.isArray(value)) {
    into.set(path, 'array');
    for (const item of value) shapeOf(item, `${path}[]`, into);
  } else if (value !== null && typeof value === 'object') {
    if (path) into.set(path, 'object');
    for (const [k, v] of Object.entries(value)) {
      // CostFilters is a map: its keys are data, not field names.
      const name = path.endsWith('.CostFilters') ? '*' : k;
      shapeOf(v, path ? `${path}.${name}` : name, into);
    }
  } else {
    into.set(path, value === null ? 'null' : typeof value);
  }
  return into;
}

const ACCOUNT = '111122223333';
const OTHER_ACCOUNT = '444455556666';
const BUDGET = 'fleet-payments';

const actual80: Notification = {
  NotificationType: 'ACTUAL',
  ComparisonOperator: 'GREATER_THAN',
  Threshold: 80,
  ThresholdType: 'PERCENTAGE',
};
const forecasted100: Notification = {
  NotificationType: 'FORECASTED',
  ComparisonOperator: 'GREATER_THAN',
  Threshold: 100,
  ThresholdType: 'PERCENTAGE',
};
const email = { SubscriptionType: 'EMAIL', Address: 'finops@example.com' } as const;
const sns = {
  SubscriptionType: 'SNS',
  Address: `arn:aws:sns:us-east-1:${ACCOUNT}:fleetward-budget-alerts`,
} as const;

const costBudget = (name: string, amount: string, tag: string): Budget => ({
  BudgetName: name,
  BudgetType: 'COST',
  TimeUnit: 'MONTHLY',
  BudgetLimit: { Amount: amount, Unit: 'USD' },
  CostFilters: { TagKeyValue: [tag] },
});

const credentials = { accessKeyId: 'testing', secretAccessKey: 'testing' };

describe('AWS Budgets through the proxy on moto', () => {
  let moto: MotoServer;
  let proxy: AwsProxy;
  let uninstall: () => void;
  let handler: CapturingHandler;
  let budgets: BudgetsClient;

  beforeAll(async () => {
    moto = await startMoto();
    proxy = await startAwsProxy({ upstream: moto.url });
    uninstall = installBudgetsOverrides(proxy, moto.url);
    handler = new CapturingHandler();
    budgets = new BudgetsClient({
      endpoint: proxy.url,
      region: 'us-east-1',
      credentials,
      maxAttempts: 1,
      requestHandler: handler,
    });
  });

  afterAll(async () => {
    budgets?.destroy();
    uninstall?.();
    await proxy?.stop();
    await moto?.stop();
  });

  async function subscribers(notification: Notification, budgetName = BUDGET) {
    const pages: { SubscriptionType?: string; Address?: string }[][] = [];
    let token: string | undefined;
    do {
      const out = await budgets.send(
        new DescribeSubscribersForNotificationCommand({
          AccountId: ACCOUNT,
          BudgetName: budgetName,
          Notification: notification,
          MaxResults: 1,
          ...(token ? { NextToken: token } : {}),
        }),
      );
      pages.push(out.Subscribers ?? []);
      token = out.NextToken;
    } while (token);
    return pages;
  }

  it('creates a COST budget with a tag filter, notifications and subscribers', async () => {
    await budgets.send(
      new CreateBudgetCommand({
        AccountId: ACCOUNT,
        Budget: costBudget(BUDGET, '1000', 'user:cost-center$payments'),
        NotificationsWithSubscribers: [{ Notification: actual80, Subscribers: [email, sns] }],
      }),
    );
    await budgets.send(
      new CreateNotificationCommand({
        AccountId: ACCOUNT,
        BudgetName: BUDGET,
        Notification: forecasted100,
        Subscribers: [email],
      }),
    );
    await budgets.send(
      new CreateSubscriberCommand({
        AccountId: ACCOUNT,
        BudgetName: BUDGET,
        Notification: forecasted100,
        Subscriber: sns,
      }),
    );
    await expect(
      budgets.send(
        new CreateSubscriberCommand({
          AccountId: ACCOUNT,
          BudgetName: BUDGET,
          Notification: forecasted100,
          Subscriber: sns,
        }),
      ),
    ).rejects.toMatchObject({ name: 'DuplicateRecordException' });

    const out = await budgets.send(new DescribeBudgetCommand({ AccountId: ACCOUNT, BudgetName: BUDGET }));
    expect(out.Budget).toMatchObject({
      BudgetName: BUDGET,
      BudgetType: 'COST',
      TimeUnit: 'MONTHLY',
      BudgetLimit: { Amount: '1000', Unit: 'USD' },
      CostFilters: { TagKeyValue: ['user:cost-center$payments'] },
    });
  });

  it('lists subscribers one page at a time (MaxResults 1)', async () => {
    expect(await subscribers(actual80)).toEqual([[email], [sns]]);
    expect(await subscribers(forecasted100)).toEqual([[email], [sns]]);
    const all = await budgets.send(
      new DescribeSubscribersForNotificationCommand({
        AccountId: ACCOUNT,
        BudgetName: BUDGET,
        Notification: actual80,
      }),
    );
    expect(all.Subscribers).toEqual([email, sns]);
    expect(all.NextToken).toBeUndefined();
  });

  it('UpdateBudget changes amount and filters and keeps period, spend, notifications and subscribers', async () => {
    const before = (await budgets.send(new DescribeBudgetCommand({ AccountId: ACCOUNT, BudgetName: BUDGET })))
      .Budget;
    const out = await budgets.send(
      new UpdateBudgetCommand({
        AccountId: ACCOUNT,
        NewBudget: costBudget(BUDGET, '1500', 'user:cost-center$checkout'),
      }),
    );
    expect(out.$metadata.httpStatusCode).toBe(200);

    const after = (await budgets.send(new DescribeBudgetCommand({ AccountId: ACCOUNT, BudgetName: BUDGET })))
      .Budget;
    expect(after?.BudgetLimit).toEqual({ Amount: '1500', Unit: 'USD' });
    expect(after?.CostFilters).toEqual({ TagKeyValue: ['user:cost-center$checkout'] });
    expect(after?.TimePeriod).toEqual(before?.TimePeriod);
    expect(after?.CalculatedSpend).toEqual(before?.CalculatedSpend);

    const notes = await budgets.send(
      new DescribeNotificationsForBudgetCommand({ AccountId: ACCOUNT, BudgetName: BUDGET }),
    );
    expect(notes.Notifications).toEqual([actual80, forecasted100]);
    expect(await subscribers(actual80)).toEqual([[email], [sns]]);
    expect(await subscribers(forecasted100)).toEqual([[email], [sns]]);
  });

  it('UpdateBudget of an unknown budget fails with NotFoundException and creates nothing', async () => {
    const error = await budgets
      .send(
        new UpdateBudgetCommand({
          AccountId: ACCOUNT,
          NewBudget: costBudget('no-such-budget', '1', 'user:x$y'),
        }),
      )
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Error);
    expect((error as Error).name).toBe('NotFoundException');
    expect((error as { $metadata: { httpStatusCode?: number } }).$metadata.httpStatusCode).toBe(400);
    await expect(
      budgets.send(new DescribeBudgetCommand({ AccountId: ACCOUNT, BudgetName: 'no-such-budget' })),
    ).rejects.toMatchObject({ name: 'NotFoundException' });
  });

  it('UpdateBudget without any limit is refused and leaves the budget as it was', async () => {
    const { BudgetLimit: _, ...noLimit } = costBudget(BUDGET, '1', 'user:x$y');
    await expect(
      budgets.send(new UpdateBudgetCommand({ AccountId: ACCOUNT, NewBudget: noLimit })),
    ).rejects.toMatchObject({ name: 'InvalidParameterException' });
    const out = await budgets.send(new DescribeBudgetCommand({ AccountId: ACCOUNT, BudgetName: BUDGET }));
    expect(out.Budget?.BudgetLimit?.Amount).toBe('1500');
  });

  it('DeleteSubscriber and DeleteNotification update what DescribeSubscribersForNotification answers', async () => {
    await budgets.send(
      new DeleteSubscriberCommand({
        AccountId: ACCOUNT,
        BudgetName: BUDGET,
        Notification: forecasted100,
        Subscriber: email,
      }),
    );
    expect(await subscribers(forecasted100)).toEqual([[sns]]);
    await expect(
      budgets.send(
        new DeleteSubscriberCommand({
          AccountId: ACCOUNT,
          BudgetName: BUDGET,
          Notification: forecasted100,
          Subscriber: email,
        }),
      ),
    ).rejects.toMatchObject({ name: 'NotFoundException' });

    await budgets.send(
      new DeleteNotificationCommand({ AccountId: ACCOUNT, BudgetName: BUDGET, Notification: forecasted100 }),
    );
    await expect(subscribers(forecasted100)).rejects.toMatchObject({ name: 'NotFoundException' });
    await expect(subscribers(actual80, 'no-such-budget')).rejects.toMatchObject({
      name: 'NotFoundException',
    });
    expect(await subscribers(actual80)).toEqual([[email], [sns]]);
  });

  it('DescribeBudgets honours MaxResults and NextToken', async () => {
    for (const name of ['fleet-a', 'fleet-b', 'fleet-c']) {
      await budgets.send(
        new CreateBudgetCommand({ AccountId: ACCOUNT, Budget: costBudget(name, '10', `user:team$${name}`) }),
      );
    }
    const first = await budgets.send(new DescribeBudgetsCommand({ AccountId: ACCOUNT, MaxResults: 1 }));
    expect(first.Budgets?.map((b) => b.BudgetName)).toEqual(['fleet-a']);
    expect(first.NextToken).toEqual(expect.any(String));

    const names: string[] = [];
    let pages = 0;
    for await (const page of paginateDescribeBudgets(
      { client: budgets, pageSize: 3 },
      { AccountId: ACCOUNT },
    )) {
      pages++;
      names.push(...(page.Budgets ?? []).map((b) => b.BudgetName ?? ''));
    }
    expect(pages).toBe(2);
    expect(names).toEqual(['fleet-a', 'fleet-b', 'fleet-c', BUDGET]);

    const all = await budgets.send(new DescribeBudgetsCommand({ AccountId: ACCOUNT }));
    expect(all.Budgets).toHaveLength(4);
    expect(all.NextToken).toBeUndefined();

    await expect(
      budgets.send(new DescribeBudgetsCommand({ AccountId: ACCOUNT, NextToken: 'not-a-token' })),
    ).rejects.toMatchObject({ name: 'InvalidNextTokenException' });
  });

  it('AssumeRole credentials reach their own account in moto, UpdateBudget included', async () => {
    const sts = new STSClient({ endpoint: proxy.url, region: 'us-east-1', credentials, maxAttempts: 1 });
    const assumed = await sts.send(
      new AssumeRoleCommand({
        RoleArn: `arn:aws:iam::${OTHER_ACCOUNT}:role/fleetward-budgets`,
        RoleSessionName: 'test',
      }),
    );
    sts.destroy();
    const c = assumed.Credentials;
    const other = new BudgetsClient({
      endpoint: proxy.url,
      region: 'us-east-1',
      maxAttempts: 1,
      credentials: {
        accessKeyId: c?.AccessKeyId ?? '',
        secretAccessKey: c?.SecretAccessKey ?? '',
        sessionToken: c?.SessionToken ?? '',
      },
    });
    try {
      await other.send(
        new CreateBudgetCommand({
          AccountId: OTHER_ACCOUNT,
          Budget: costBudget('other-account', '50', 'user:cost-center$payments'),
          NotificationsWithSubscribers: [{ Notification: actual80, Subscribers: [email] }],
        }),
      );
      await other.send(
        new UpdateBudgetCommand({
          AccountId: OTHER_ACCOUNT,
          NewBudget: costBudget('other-account', '75', 'user:cost-center$payments'),
        }),
      );
      const out = await other.send(
        new DescribeBudgetCommand({ AccountId: OTHER_ACCOUNT, BudgetName: 'other-account' }),
      );
      expect(out.Budget?.BudgetLimit?.Amount).toBe('75');
      const subs = await other.send(
        new DescribeSubscribersForNotificationCommand({
          AccountId: OTHER_ACCOUNT,
          BudgetName: 'other-account',
          Notification: actual80,
        }),
      );
      expect(subs.Subscribers).toEqual([email]);
      // The base `testing` key lands in moto's default account: it does not see that budget.
      await expect(
        budgets.send(new DescribeBudgetCommand({ AccountId: OTHER_ACCOUNT, BudgetName: 'other-account' })),
      ).rejects.toMatchObject({ name: 'NotFoundException' });
    } finally {
      other.destroy();
    }
  });

  it("DescribeBudget's wire answer has the documented field names, nesting and JSON types", async () => {
    handler.bodies.length = 0;
    await budgets.send(new DescribeBudgetCommand({ AccountId: ACCOUNT, BudgetName: BUDGET }));
    const wire = JSON.parse(handler.bodies.at(-1) ?? '{}') as unknown;
    const documented = shapeOf(fixture);
    const answered = shapeOf(wire);
    for (const [path, type] of documented) {
      expect({ path, type: answered.get(path) }).toEqual({ path, type });
    }
    // Nothing moto adds beyond the documented names.
    for (const path of answered.keys()) expect(documented.has(path), path).toBe(true);
  });
});
