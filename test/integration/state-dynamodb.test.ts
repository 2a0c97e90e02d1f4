/**
 * DynamoStateStore against moto (a real AWS emulator on loopback): the shared
 * StateStore behaviour suite plus what only DynamoDB has (batches, pages, unprocessed items).
 */
import { DynamoDBClient, GetItemCommand } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CloudApiError } from '../../shared/runtime/errors.ts';
import { DynamoStateStore, ensureTable } from '../../shared/state/dynamodb.ts';
import { openStateStore, StateWriteIncompleteError } from '../../shared/state/index.ts';
import { type MotoServer, startMoto } from '../sandbox/moto.ts';
import { describeStateStore } from '../unit/state-store.behaviour.ts';

const TABLE = 'fleetward-state-test';
const REGION = 'us-east-1';

let moto: MotoServer;
const clients: DynamoDBClient[] = [];

function motoClient(): DynamoDBClient {
  const client = new DynamoDBClient({
    endpoint: moto.url,
    region: REGION,
    credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
  });
  clients.push(client);
  return client;
}

/** Counts the HTTP requests of each DynamoDB operation a client sends (retries included). */
function countRequests(client: DynamoDBClient): Map<string, number> {
  const counts = new Map<string, number>();
  client.middlewareStack.add(
    (next) => async (args) => {
      const target = (args.request as { headers?: Record<string, string> }).headers?.['x-amz-target'] ?? '';
      const operation = target.split('.').pop() ?? '?';
      counts.set(operation, (counts.get(operation) ?? 0) + 1);
      return next(args);
    },
    { step: 'finalizeRequest', name: 'countRequests' },
  );
  return counts;
}

/**
 * Makes BatchWriteItem behave like throttled DynamoDB: only the first `accept` requests
 * of each call reach moto, the rest come back as UnprocessedItems, for `times` calls.
 * Sits before the document client's marshalling, so it sees and returns plain items.
 */
function throttleBatches(
  client: DynamoDBClient,
  options: { accept: number; times: number },
): { calls: number } {
  const state = { calls: 0 };
  client.middlewareStack.add(
    (next) => async (args) => {
      const input = args.input as { RequestItems?: Record<string, unknown[]> };
      if (!input.RequestItems || state.calls >= options.times) return next(args);
      state.calls++;
      const [table, requests] = Object.entries(input.RequestItems)[0]!;
      const accepted = requests.slice(0, options.accept);
      const rest = requests.slice(options.accept);
      const result =
        accepted.length > 0
          ? await next({ ...args, input: { ...input, RequestItems: { [table]: accepted } } })
          : { output: { $metadata: {} }, response: {} };
      return {
        ...result,
        output: { ...result.output, UnprocessedItems: rest.length > 0 ? { [table]: rest } : {} },
      };
    },
    { step: 'initialize', name: 'throttleBatches', priority: 'high' },
  );
  return state;
}

beforeAll(async () => {
  moto = await startMoto();
  expect(await ensureTable({ table: TABLE, region: REGION, client: motoClient() })).toBe(true);
});

afterAll(async () => {
  for (const client of clients) client.destroy();
  await moto?.stop();
});

describeStateStore('dynamodb (moto)', async () => ({
  open: async () => new DynamoStateStore({ table: TABLE, region: REGION, client: motoClient() }),
}));

describe('DynamoStateStore on moto', () => {
  it('ensureTable leaves an existing table alone', async () => {
    expect(await ensureTable({ table: TABLE, region: REGION, endpoint: moto.url })).toBe(false);
  });

  it('stores pk, sk, the value as JSON text and updatedAt from the clock', async () => {
    const client = motoClient();
    const store = new DynamoStateStore({
      table: TABLE,
      region: REGION,
      client,
      clock: { now: () => new Date('2030-01-02T03:04:05.000Z') },
    });
    await store.putMany('layout', [{ key: 'k', value: { list: [], text: '', n: 1 } }]);
    const raw = await client.send(
      new GetItemCommand({ TableName: TABLE, Key: { pk: { S: 'layout' }, sk: { S: 'k' } } }),
    );
    expect(raw.Item).toEqual({
      pk: { S: 'layout' },
      sk: { S: 'k' },
      value: { S: '{"list":[],"text":"","n":1}' },
      updatedAt: { S: '2030-01-02T03:04:05.000Z' },
    });
  });

  it('sends batches of at most 25 and follows Query pages past 1 MB', async () => {
    const client = motoClient();
    const counts = countRequests(client);
    const store = new DynamoStateStore({ table: TABLE, region: REGION, client });
    const filler = 'z'.repeat(30_000);
    await store.putMany(
      'paged',
      Array.from({ length: 60 }, (_, i) => ({ key: `k${String(i).padStart(2, '0')}`, value: filler })),
    );
    expect(counts.get('BatchWriteItem')).toBe(3);
    const listed = await store.list<string>('paged');
    expect(listed.map((item) => item.key)).toEqual(
      Array.from({ length: 60 }, (_, i) => `k${String(i).padStart(2, '0')}`),
    );
    // ~1.8 MB of items: DynamoDB (and moto) stop a Query page at 1 MB.
    expect(counts.get('Query')).toBeGreaterThanOrEqual(2);
    expect((await store.list('paged', { prefix: 'k5' })).length).toBe(10);
  });

  it('resends unprocessed items until all are written', async () => {
    const client = motoClient();
    const counts = countRequests(client);
    const throttle = throttleBatches(client, { accept: 10, times: 4 });
    const store = new DynamoStateStore({
      table: TABLE,
      region: REGION,
      client,
      batchRetry: { baseDelayMs: 1 },
    });
    const items = Array.from({ length: 30 }, (_, i) => ({ key: `u${String(i).padStart(2, '0')}`, value: i }));
    await store.putMany('unprocessed', items);
    // Chunk 1 (25): 10 + 10 + 5 over three calls; chunk 2 (5) on the fourth call, in one go.
    expect(throttle.calls).toBe(4);
    expect(counts.get('BatchWriteItem')).toBe(4);
    expect((await store.list('unprocessed')).map((item) => item.value)).toEqual(
      items.map((item) => item.value),
    );
  });

  it('gives up after the attempt cap, naming how many items were left', async () => {
    const client = motoClient();
    throttleBatches(client, { accept: 5, times: Number.POSITIVE_INFINITY });
    const store = new DynamoStateStore({
      table: TABLE,
      region: REGION,
      client,
      batchRetry: { maxAttempts: 3, baseDelayMs: 1 },
    });
    const items = Array.from({ length: 40 }, (_, i) => ({ key: `g${String(i).padStart(2, '0')}`, value: i }));
    const error = await store.putMany('give-up', items).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StateWriteIncompleteError);
    const incomplete = error as StateWriteIncompleteError;
    // 15 of the first chunk got through (5 per attempt); its other 10 and all 15 of the second chunk are left.
    expect(incomplete.keys).toHaveLength(25);
    expect(incomplete.message).toContain('25 state item(s)');
    expect(incomplete.message).toContain('after 3 attempts');
    expect(incomplete.operation).toBe('put');
    expect((await store.list('give-up')).map((item) => item.key)).toEqual(
      items.slice(0, 15).map((item) => item.key),
    );

    const refusing = motoClient();
    throttleBatches(refusing, { accept: 0, times: Number.POSITIVE_INFINITY });
    const blocked = new DynamoStateStore({
      table: TABLE,
      region: REGION,
      client: refusing,
      batchRetry: { maxAttempts: 2, baseDelayMs: 1 },
    });
    const deleteError = await blocked.deleteMany('give-up', ['g00', 'g01', 'g00']).catch((e: unknown) => e);
    expect(deleteError).toBeInstanceOf(StateWriteIncompleteError);
    expect((deleteError as StateWriteIncompleteError).keys).toEqual(['g00', 'g01']);
    expect((deleteError as StateWriteIncompleteError).operation).toBe('delete');
    expect(await store.get('give-up', 'g00')).toBe(0);
  });

  it('wraps SDK errors, such as a missing table, in CloudApiError', async () => {
    const store = new DynamoStateStore({ table: 'no-such-table', region: REGION, client: motoClient() });
    for (const call of [
      () => store.get('ns', 'k'),
      () => store.list('ns'),
      () => store.putMany('ns', [{ key: 'k', value: 1 }]),
      () => store.deleteMany('ns', ['k']),
    ]) {
      const error = await call().catch((e: unknown) => e);
      expect(error).toBeInstanceOf(CloudApiError);
      expect((error as CloudApiError).message).toContain('"no-such-table"');
      expect((error as CloudApiError).message).toContain('ResourceNotFoundException');
      expect((error as CloudApiError).status).toBe(400);
    }
  });

  it('is opened by openStateStore for a dynamodb config, with its own client', async () => {
    const store = await openStateStore({
      type: 'dynamodb',
      table: TABLE,
      region: REGION,
      endpoint: moto.url,
    });
    expect(store).toBeInstanceOf(DynamoStateStore);
    await store.putMany('opened', [{ key: 'k', value: 'v' }]);
    expect(await store.get('opened', 'k')).toBe('v');
    await store.close();
  });
});
