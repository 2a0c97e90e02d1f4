/**
 * A Powertools idempotency persistence layer on our own {@link StateStore}, so the event
 * path needs no table of its own: records live in the `idempotency` namespace of the state
 * store (SQLite locally, the state table on AWS).
 *
 * Correctness under concurrent redelivery rests on `StateStore.putIfAbsent`: the in-progress
 * record is created only if no unexpired record holds the key, atomically, so of two
 * deliveries of one event racing each other exactly one does the work. A record holds its
 * key until its expiry (and an in-progress record only until its in-progress expiry, when
 * Powertools knows the Lambda's remaining time), then the next delivery may take it over,
 * as with Powertools' own DynamoDB layer.
 */

import type { JSONValue } from '@aws-lambda-powertools/commons/types';
import {
  IdempotencyItemAlreadyExistsError,
  IdempotencyItemNotFoundError,
  IdempotencyRecordStatus,
} from '@aws-lambda-powertools/idempotency';
import { BasePersistenceLayer, IdempotencyRecord } from '@aws-lambda-powertools/idempotency/persistence';
import type { StateStore } from '../ports.ts';

/** The state namespace of idempotency records (key: Powertools' hashed idempotency key). */
export const IDEMPOTENCY_NS = 'idempotency';

/** One record as the state store keeps it (Powertools' fields; timestamps as Powertools sets them). */
interface StoredRecord {
  status: string;
  /** Epoch seconds. */
  expiryTimestamp?: number | undefined;
  /** Epoch milliseconds; only when the Lambda context was registered. */
  inProgressExpiryTimestamp?: number | undefined;
  responseData?: JSONValue | undefined;
  payloadHash?: string | undefined;
}

function toRecord(idempotencyKey: string, stored: StoredRecord): IdempotencyRecord {
  return new IdempotencyRecord({
    idempotencyKey,
    status: stored.status as (typeof IdempotencyRecordStatus)[keyof typeof IdempotencyRecordStatus],
    expiryTimestamp: stored.expiryTimestamp,
    inProgressExpiryTimestamp: stored.inProgressExpiryTimestamp,
    responseData: stored.responseData,
    payloadHash: stored.payloadHash,
  });
}

/**
 * Powertools' `BasePersistenceLayer` over a {@link StateStore}. Pass it as
 * `persistenceStore` to `makeIdempotent`; the store stays owned (and closed) by the caller.
 */
export class StateStorePersistenceLayer extends BasePersistenceLayer {
  readonly #store: StateStore;
  readonly #namespace: string;

  constructor(store: StateStore, options: { namespace?: string } = {}) {
    super();
    this.#store = store;
    this.#namespace = options.namespace ?? IDEMPOTENCY_NS;
  }

  protected async _getRecord(idempotencyKey: string): Promise<IdempotencyRecord> {
    const stored = await this.#store.get<StoredRecord>(this.#namespace, idempotencyKey);
    if (!stored) throw new IdempotencyItemNotFoundError();
    return toRecord(idempotencyKey, stored);
  }

  protected async _putRecord(record: IdempotencyRecord): Promise<void> {
    const wrote = await this.#store.putIfAbsent(this.#namespace, this.#itemOf(record));
    if (wrote) return;
    // Another delivery holds the key: hand Powertools its record (in progress or completed).
    const existing = await this.#store.get<StoredRecord>(this.#namespace, record.idempotencyKey);
    throw new IdempotencyItemAlreadyExistsError(
      `Failed to put record for already existing idempotency key: ${record.idempotencyKey}`,
      existing ? toRecord(record.idempotencyKey, existing) : undefined,
    );
  }

  protected async _updateRecord(record: IdempotencyRecord): Promise<void> {
    // Only the holder of the in-progress record gets here (after its work), so a plain put is safe.
    await this.#store.putMany(this.#namespace, [this.#itemOf(record)]);
  }

  protected async _deleteRecord(record: IdempotencyRecord): Promise<void> {
    await this.#store.deleteMany(this.#namespace, [record.idempotencyKey]);
  }

  /** The stored item; it holds its key until the record (or its in-progress lease) expires. */
  #itemOf(record: IdempotencyRecord) {
    const status = record.getStatus();
    const value: StoredRecord = {
      status,
      expiryTimestamp: record.expiryTimestamp,
      inProgressExpiryTimestamp: record.inProgressExpiryTimestamp,
      payloadHash: record.payloadHash,
      responseData: record.responseData,
    };
    const ends = [
      record.expiryTimestamp === undefined ? undefined : record.expiryTimestamp * 1000,
      status === IdempotencyRecordStatus.INPROGRESS ? record.inProgressExpiryTimestamp : undefined,
    ].filter((t): t is number => t !== undefined);
    return {
      key: record.idempotencyKey,
      // JSON drops undefined fields, so the stored value stays small.
      value: JSON.parse(JSON.stringify(value)) as StoredRecord,
      expiresAt: ends.length > 0 ? Math.min(...ends) : undefined,
    };
  }
}
