/**
 * {@link StateStore} on one DynamoDB table, for the deployed (serverless) jobs.
 *
 * Layout: partition key `pk` (S) = namespace, sort key `sk` (S) = key, `value` = the
 * item's JSON text, `updatedAt` = ISO instant, `expiresAt` (N, epoch ms) only on items that expire. The value is kept as a JSON string
 * rather than a native map so DynamoDB's type rules (no empty sets, number precision,
 * nesting depth) never change what comes back.
 */
import {
  ConditionalCheckFailedException,
  CreateTableCommand,
  DescribeTableCommand,
  DynamoDBClient,
  ResourceInUseException,
  ResourceNotFoundException,
  waitUntilTableExists,
} from '@aws-sdk/client-dynamodb';
import {
  BatchWriteCommand,
  type BatchWriteCommandInput,
  type BatchWriteCommandOutput,
  DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  type QueryCommandOutput,
} from '@aws-sdk/lib-dynamodb';
import { type Clock, type StateStore, type StoredItem, systemClock } from '../ports.ts';
import { CloudApiError, FleetwardError } from '../runtime/errors.ts';
import { type RetryOptions, withRetry } from '../runtime/retry.ts';
import {
  assertStateKey,
  assertStatePrefix,
  encodeStateItem,
  StateWriteIncompleteError,
  stateExpiry,
} from './index.ts';

/** The table's keys: `pk` the namespace, `sk` the key (the deployment's table is generated with the same). */
export const STATE_TABLE_KEYS = {
  AttributeDefinitions: [
    { AttributeName: 'pk', AttributeType: 'S' as const },
    { AttributeName: 'sk', AttributeType: 'S' as const },
  ],
  KeySchema: [
    { AttributeName: 'pk', KeyType: 'HASH' as const },
    { AttributeName: 'sk', KeyType: 'RANGE' as const },
  ],
};

/** BatchWriteItem accepts at most this many requests. */
export const BATCH_WRITE_LIMIT = 25;

/** Options of {@link DynamoStateStore} and {@link ensureTable}. */
export interface DynamoStateStoreOptions {
  table: string;
  region: string;
  /** Endpoint override (moto, DynamoDB Local, a VPC endpoint). */
  endpoint?: string | undefined;
  /** A ready client; when given, `region` and `endpoint` are ignored and `close()` leaves it open. */
  client?: DynamoDBClient | undefined;
  /** Source of `updatedAt` (default: the system clock). */
  clock?: Clock | undefined;
  /**
   * How long to keep resending unprocessed batch items (default 8 attempts, 50 ms base,
   * 5 s cap). Throttling errors of a whole request are retried by the SDK itself.
   */
  batchRetry?: Pick<RetryOptions, 'maxAttempts' | 'baseDelayMs' | 'maxDelayMs' | 'sleep'> | undefined;
}

type WriteRequest = NonNullable<BatchWriteCommandInput['RequestItems']>[string][number];

function createClient(options: DynamoStateStoreOptions): DynamoDBClient {
  return new DynamoDBClient({
    region: options.region,
    ...(options.endpoint === undefined ? {} : { endpoint: options.endpoint }),
    maxAttempts: 4,
    // Without timeouts a stalled connection waits for the Lambda timeout instead of being retried.
    requestHandler: { connectionTimeout: 3_000, requestTimeout: 10_000 },
  });
}

/** Wraps an SDK error once, where it enters, keeping our own errors as they are. */
function wrap(error: unknown, operation: string, table: string): Error {
  if (error instanceof FleetwardError) return error;
  const err = error as {
    name?: string;
    message?: string;
    $metadata?: { httpStatusCode?: number };
  };
  return new CloudApiError(
    `dynamodb ${operation} on table "${table}" failed: ${err.name ?? 'Error'}: ${err.message ?? String(error)}`,
    {
      cloud: 'aws',
      operation: `dynamodb:${operation}`,
      status: err.$metadata?.httpStatusCode,
      // The SDK has already retried what it considers transient.
      retryable: false,
    },
    { cause: error },
  );
}

function requestKey(request: WriteRequest): string {
  return String(request.PutRequest?.Item?.sk ?? request.DeleteRequest?.Key?.sk);
}

/**
 * A {@link StateStore} on a DynamoDB table (see the module comment for the layout).
 * Reads are strongly consistent, so a job sees its own checkpoint right after writing
 * it. `putMany`/`deleteMany` send BatchWriteItem requests of 25, one after another,
 * resending unprocessed items with backoff; each item is atomic, a call is not.
 * The table is created by serverless.yml (or {@link ensureTable} in tests), never here.
 */
export class DynamoStateStore implements StateStore {
  readonly table: string;
  private readonly client: DynamoDBClient;
  private readonly doc: DynamoDBDocumentClient;
  private readonly ownsClient: boolean;
  private readonly clock: Clock;
  private readonly batchRetry: NonNullable<DynamoStateStoreOptions['batchRetry']>;

  constructor(options: DynamoStateStoreOptions) {
    this.table = options.table;
    this.ownsClient = options.client === undefined;
    this.client = options.client ?? createClient(options);
    this.doc = DynamoDBDocumentClient.from(this.client);
    this.clock = options.clock ?? systemClock;
    this.batchRetry = { maxAttempts: 8, baseDelayMs: 50, maxDelayMs: 5_000, ...options.batchRetry };
  }

  /** Reads one item (strongly consistent), or `undefined` when absent. */
  async get<T>(namespace: string, key: string): Promise<T | undefined> {
    assertStateKey(namespace, key);
    let item: Record<string, unknown> | undefined;
    try {
      const out = await this.doc.send(
        new GetCommand({
          TableName: this.table,
          Key: { pk: namespace, sk: key },
          ConsistentRead: true,
          ProjectionExpression: '#v',
          ExpressionAttributeNames: { '#v': 'value' },
        }),
      );
      item = out.Item;
    } catch (error) {
      throw wrap(error, 'GetItem', this.table);
    }
    return item === undefined ? undefined : (JSON.parse(item.value as string) as T);
  }

  /**
   * Lists a namespace's items whose key starts with `prefix`, in UTF-8 byte (code point)
   * order of keys, following every page (a Query page stops at 1 MB).
   */
  async list<T>(namespace: string, options: { prefix?: string } = {}): Promise<StoredItem<T>[]> {
    assertStateKey(namespace);
    const prefix = options.prefix ?? '';
    assertStatePrefix(namespace, prefix);
    const items: StoredItem<T>[] = [];
    let startKey: QueryCommandOutput['LastEvaluatedKey'];
    do {
      let out: QueryCommandOutput;
      try {
        out = await this.doc.send(
          new QueryCommand({
            TableName: this.table,
            // begins_with refuses an empty operand, so "no prefix" is a plain partition query.
            KeyConditionExpression: prefix === '' ? 'pk = :pk' : 'pk = :pk AND begins_with(sk, :prefix)',
            ExpressionAttributeValues:
              prefix === '' ? { ':pk': namespace } : { ':pk': namespace, ':prefix': prefix },
            // `value` is a DynamoDB reserved word, hence the placeholder.
            ProjectionExpression: 'sk, #v',
            ExpressionAttributeNames: { '#v': 'value' },
            ConsistentRead: true,
            ExclusiveStartKey: startKey,
          }),
        );
      } catch (error) {
        throw wrap(error, 'Query', this.table);
      }
      for (const item of out.Items ?? []) {
        items.push({ key: item.sk as string, value: JSON.parse(item.value as string) as T });
      }
      startKey = out.LastEvaluatedKey;
    } while (startKey !== undefined);
    return items;
  }

  /**
   * Creates or replaces items; a later duplicate key wins. Every item is validated
   * (including the 400 KB limit) before anything is sent, so a bad item writes nothing.
   */
  async putMany(namespace: string, items: StoredItem[]): Promise<void> {
    assertStateKey(namespace);
    const updatedAt = this.clock.now().toISOString();
    // BatchWriteItem rejects a request naming one key twice; keep the last, as a sequence of puts would.
    const byKey = new Map<string, WriteRequest>();
    for (const item of items) {
      byKey.set(item.key, { PutRequest: { Item: this.itemOf(namespace, item, updatedAt) } });
    }
    await this.batchWrite(namespace, 'put', [...byKey.values()]);
  }

  /**
   * Creates an item with one conditional PutItem (`attribute_not_exists(pk)` or an expired
   * `expiresAt`); a failed condition resolves `false`, so of two racing creates exactly one wins.
   */
  async putIfAbsent(namespace: string, item: StoredItem): Promise<boolean> {
    const now = this.clock.now();
    try {
      await this.doc.send(
        new PutCommand({
          TableName: this.table,
          Item: this.itemOf(namespace, item, now.toISOString()),
          ConditionExpression: 'attribute_not_exists(pk) OR (attribute_exists(#exp) AND #exp <= :now)',
          ExpressionAttributeNames: { '#exp': 'expiresAt' },
          ExpressionAttributeValues: { ':now': now.getTime() },
        }),
      );
      return true;
    } catch (error) {
      if (error instanceof ConditionalCheckFailedException) return false;
      throw wrap(error, 'PutItem', this.table);
    }
  }

  /** Deletes items by key; absent keys are ignored. */
  async deleteMany(namespace: string, keys: string[]): Promise<void> {
    assertStateKey(namespace);
    for (const key of keys) assertStateKey(namespace, key);
    const unique = [...new Set(keys)];
    await this.batchWrite(
      namespace,
      'delete',
      unique.map((key) => ({ DeleteRequest: { Key: { pk: namespace, sk: key } } })),
    );
  }

  /** Releases the client's sockets when this store created it; calling it again does nothing. */
  async close(): Promise<void> {
    if (this.ownsClient) this.client.destroy();
  }

  /** The table item of a store item; validates it (key, JSON value, size, expiry) first. */
  private itemOf(namespace: string, item: StoredItem, updatedAt: string): Record<string, unknown> {
    const json = encodeStateItem(namespace, item.key, item.value);
    const expiresAt = stateExpiry(namespace, item);
    return {
      pk: namespace,
      sk: item.key,
      value: json,
      updatedAt,
      ...(expiresAt === null ? {} : { expiresAt }),
    };
  }

  private async batchWrite(
    namespace: string,
    operation: 'put' | 'delete',
    requests: WriteRequest[],
  ): Promise<void> {
    for (let start = 0; start < requests.length; start += BATCH_WRITE_LIMIT) {
      let pending = requests.slice(start, start + BATCH_WRITE_LIMIT);
      // Only unprocessed items are resent; a failed request (already retried by the SDK) is not.
      await withRetry(
        async (attempt) => {
          let out: BatchWriteCommandOutput;
          try {
            out = await this.doc.send(new BatchWriteCommand({ RequestItems: { [this.table]: pending } }));
          } catch (error) {
            throw wrap(error, 'BatchWriteItem', this.table);
          }
          pending = out.UnprocessedItems?.[this.table] ?? [];
          if (pending.length > 0) {
            throw new StateWriteIncompleteError({
              namespace,
              operation,
              // Later chunks are never sent once this one gives up, so they are left too.
              keys: [...pending, ...requests.slice(start + BATCH_WRITE_LIMIT)].map(requestKey),
              attempts: attempt,
            });
          }
        },
        (error) => ({ retry: error instanceof StateWriteIncompleteError }),
        this.batchRetry,
      );
    }
  }
}

/**
 * Creates the state table (on-demand capacity) unless it exists, and waits until it is
 * active. For the sandbox and tests only: deployed tables come from serverless.yml.
 * Returns whether it created the table.
 */
export async function ensureTable(options: DynamoStateStoreOptions): Promise<boolean> {
  const client = options.client ?? createClient(options);
  const TableName = options.table;
  try {
    let created = false;
    try {
      await client.send(new DescribeTableCommand({ TableName }));
    } catch (error) {
      if (!(error instanceof ResourceNotFoundException)) throw wrap(error, 'DescribeTable', TableName);
      try {
        await client.send(
          new CreateTableCommand({
            TableName,
            BillingMode: 'PAY_PER_REQUEST',
            ...STATE_TABLE_KEYS,
          }),
        );
        created = true;
      } catch (createError) {
        // Someone else created it between our describe and create: wait for theirs.
        if (!(createError instanceof ResourceInUseException))
          throw wrap(createError, 'CreateTable', TableName);
      }
    }
    try {
      await waitUntilTableExists({ client, maxWaitTime: 120, minDelay: 1 }, { TableName });
    } catch (error) {
      throw wrap(error, 'DescribeTable', TableName);
    }
    return created;
  } finally {
    if (options.client === undefined) client.destroy();
  }
}

/**
 * Provider permissions of this module's calls (shared/clouds/permissions.ts).
 */
export const PERMISSIONS: readonly import('../clouds/permissions.ts').PermissionGrant[] = [
  {
    provider: 'aws',
    holder: 'function',
    capability: 'state',
    permission: 'dynamodb:GetItem',
    calls: ['dynamodb:GetItem'],
    why: 'read state records (runs, leases, inventory, findings)',
  },
  {
    provider: 'aws',
    holder: 'function',
    capability: 'state',
    permission: 'dynamodb:PutItem',
    calls: ['dynamodb:PutItem'],
    why: 'write state records, conditionally for leases and idempotency',
  },
  {
    provider: 'aws',
    holder: 'function',
    capability: 'state',
    permission: 'dynamodb:Query',
    calls: ['dynamodb:Query'],
    why: 'read the records of one namespace and key prefix',
  },
  {
    provider: 'aws',
    holder: 'function',
    capability: 'state',
    permission: 'dynamodb:BatchWriteItem',
    calls: ['dynamodb:BatchWriteItem'],
    why: 'write and delete records in batches',
  },
];
