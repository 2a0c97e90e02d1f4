/**
 * Opens the configured {@link StateStore} and holds the rules every store shares.
 *
 * The implementations are loaded with a dynamic `import()`: a bundle configured for
 * SQLite never evaluates the DynamoDB SDK at cold start, and the reverse. The shared
 * rules (key shapes, the item size limit, the errors) live here so both stores refuse
 * exactly the same items: code that works against local SQLite keeps working on DynamoDB.
 */
import type { FleetConfig } from '../config/schema.ts';
import type { Clock, StateStore } from '../ports.ts';
import { FleetwardError } from '../runtime/errors.ts';

/** The `state` section of `fleet.yaml`, defaults applied. */
export type StateConfig = FleetConfig['state'];

/**
 * The largest item a store accepts, in bytes, counted the way DynamoDB counts it:
 * UTF-8 lengths of attribute names and values (`pk`, `sk`, `value`, `updatedAt`).
 * DynamoDB's "400 KB" is 409,600 bytes, but moto refuses anything over 405,000, so
 * the limit is the round 400,000: every backend then fails with this clear error
 * rather than some with an opaque ValidationException.
 */
export const MAX_ITEM_BYTES = 400_000;
/** The longest namespace, in UTF-8 bytes (DynamoDB's partition key limit). */
export const MAX_NAMESPACE_BYTES = 2048;
/** The longest key, in UTF-8 bytes (DynamoDB's sort key limit). */
export const MAX_KEY_BYTES = 1024;

/** A namespace, key or value that no store can hold (empty, too long, not well-formed, not JSON). */
export class InvalidStateItemError extends FleetwardError {
  readonly namespace: string;
  readonly key: string | undefined;
  constructor(
    message: string,
    details: { namespace: string; key?: string | undefined },
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'InvalidStateItemError';
    this.namespace = details.namespace;
    this.key = details.key;
  }
}

/** An item is larger than {@link MAX_ITEM_BYTES}; nothing of the call was written. */
export class StateItemTooLargeError extends FleetwardError {
  readonly namespace: string;
  readonly key: string;
  readonly sizeBytes: number;
  readonly limitBytes: number;
  constructor(details: { namespace: string; key: string; sizeBytes: number; limitBytes: number }) {
    super(
      `state item "${details.key}" in namespace "${details.namespace}" is ${details.sizeBytes} bytes, ` +
        `over the ${details.limitBytes}-byte limit`,
    );
    this.name = 'StateItemTooLargeError';
    this.namespace = details.namespace;
    this.key = details.key;
    this.sizeBytes = details.sizeBytes;
    this.limitBytes = details.limitBytes;
  }
}

/** A batch write kept coming back with unprocessed items; `keys` lists the ones not written or deleted. */
export class StateWriteIncompleteError extends FleetwardError {
  readonly namespace: string;
  readonly operation: 'put' | 'delete';
  readonly keys: string[];
  constructor(details: { namespace: string; operation: 'put' | 'delete'; keys: string[]; attempts: number }) {
    super(
      `${details.keys.length} state item(s) in namespace "${details.namespace}" were left unprocessed ` +
        `(${details.operation}) after ${details.attempts} attempts`,
    );
    this.name = 'StateWriteIncompleteError';
    this.namespace = details.namespace;
    this.operation = details.operation;
    this.keys = details.keys;
  }
}

const utf8 = new TextEncoder();

/** UTF-8 length of a string, which is how both SQLite and DynamoDB measure it. */
export function utf8Bytes(text: string): number {
  return utf8.encode(text).byteLength;
}

/**
 * Throws unless `namespace` (and `key`, when given) can be stored by every store:
 * non-empty (DynamoDB key attributes cannot be empty), well-formed UTF-16 (a lone
 * surrogate would be replaced by U+FFFD on the way in, so two keys could collide),
 * and within DynamoDB's key length limits.
 */
export function assertStateKey(namespace: string, key?: string): void {
  const check = (what: 'namespace' | 'key', text: string, maxBytes: number) => {
    if (typeof text !== 'string' || text.length === 0) {
      throw new InvalidStateItemError(`state ${what} must be a non-empty string`, { namespace, key });
    }
    if (!text.isWellFormed()) {
      throw new InvalidStateItemError(`state ${what} contains a lone surrogate`, { namespace, key });
    }
    const bytes = utf8Bytes(text);
    if (bytes > maxBytes) {
      throw new InvalidStateItemError(`state ${what} is ${bytes} bytes, over the ${maxBytes}-byte limit`, {
        namespace,
        key,
      });
    }
  };
  check('namespace', namespace, MAX_NAMESPACE_BYTES);
  if (key !== undefined) check('key', key, MAX_KEY_BYTES);
}

/** Throws unless `prefix` is well-formed (an empty prefix lists everything). */
export function assertStatePrefix(namespace: string, prefix: string): void {
  if (typeof prefix !== 'string' || !prefix.isWellFormed()) {
    throw new InvalidStateItemError('state key prefix must be a well-formed string', { namespace });
  }
}

// The attribute names the DynamoDB store writes; the size of an item counts them too.
const ITEM_OVERHEAD_BYTES =
  utf8Bytes('pk' + 'sk' + 'value' + 'updatedAt') + '2000-01-01T00:00:00.000Z'.length;

/**
 * Validates one item and returns its value serialised as JSON, the form every store
 * keeps. Throws {@link InvalidStateItemError} for a bad key or a value JSON cannot
 * represent, and {@link StateItemTooLargeError} for an item over {@link MAX_ITEM_BYTES}.
 */
export function encodeStateItem(namespace: string, key: string, value: unknown): string {
  assertStateKey(namespace, key);
  let json: string | undefined;
  try {
    json = JSON.stringify(value);
  } catch (error) {
    throw new InvalidStateItemError(
      `state item "${key}" has a value that cannot be serialised as JSON`,
      { namespace, key },
      { cause: error },
    );
  }
  // JSON.stringify returns undefined (not a string) for undefined, functions and symbols.
  if (typeof json !== 'string') {
    throw new InvalidStateItemError(`state item "${key}" has no JSON value (got ${typeof value})`, {
      namespace,
      key,
    });
  }
  const sizeBytes = ITEM_OVERHEAD_BYTES + utf8Bytes(namespace) + utf8Bytes(key) + utf8Bytes(json);
  if (sizeBytes > MAX_ITEM_BYTES) {
    throw new StateItemTooLargeError({ namespace, key, sizeBytes, limitBytes: MAX_ITEM_BYTES });
  }
  return json;
}

/**
 * The expiry of an item as stores keep it: whole epoch milliseconds, or `null` (never).
 * Throws {@link InvalidStateItemError} for a value that is not a finite number.
 */
export function stateExpiry(
  namespace: string,
  item: { key: string; expiresAt?: number | undefined },
): number | null {
  if (item.expiresAt === undefined) return null;
  if (typeof item.expiresAt !== 'number' || !Number.isFinite(item.expiresAt)) {
    throw new InvalidStateItemError(`state item "${item.key}" has an expiry that is not a finite number`, {
      namespace,
      key: item.key,
    });
  }
  return Math.floor(item.expiresAt);
}

/**
 * Opens the state store `config` names. Only the chosen implementation (and its SDK)
 * is loaded. The caller owns the store and must `close()` it.
 */
export async function openStateStore(
  config: StateConfig,
  options: { clock?: Clock } = {},
): Promise<StateStore> {
  switch (config.type) {
    case 'sqlite': {
      const { SqliteStateStore } = await import('./sqlite.ts');
      return new SqliteStateStore({ path: config.path, ...options });
    }
    case 'dynamodb': {
      const { DynamoStateStore } = await import('./dynamodb.ts');
      return new DynamoStateStore({
        table: config.table,
        region: config.region,
        endpoint: config.endpoint,
        ...options,
      });
    }
  }
}
