/**
 * {@link StateStore} on a local SQLite file, through Node's built-in `node:sqlite`
 * (no native add-on to build). Used for local runs, the CLI and the sandbox.
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import { type Clock, type StateStore, type StoredItem, systemClock } from '../ports.ts';
import { assertStateKey, assertStatePrefix, encodeStateItem, stateExpiry } from './index.ts';

/** Where the database lives when the configuration does not say. */
export const DEFAULT_SQLITE_PATH = '.fleetward/state.db';

/** Options of {@link SqliteStateStore}. */
export interface SqliteStateStoreOptions {
  /** Database file (default `.fleetward/state.db`); its directory is created. `:memory:` keeps nothing. */
  path?: string;
  /** Source of `updated_at` (default: the system clock). */
  clock?: Clock;
}

const SCHEMA = `
  CREATE TABLE IF NOT EXISTS items (
    namespace TEXT,
    key TEXT,
    value TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    expires_at INTEGER,
    PRIMARY KEY (namespace, key)
  )`;

/**
 * The smallest string greater than every string that starts with `prefix`, or
 * `undefined` when there is none (the prefix is all U+10FFFF).
 *
 * SQLite compares TEXT with memcmp over UTF-8, and UTF-8 byte order is code point
 * order, so incrementing the last code point gives an exact exclusive bound. The
 * common `prefix + '\uffff'` bound would miss keys where the prefix is followed by a
 * character above U+FFFF (an emoji encodes as F0.. and sorts after EF BF BF).
 */
export function prefixUpperBound(prefix: string): string | undefined {
  const chars = Array.from(prefix);
  while (chars.length > 0) {
    const last = chars.pop()!.codePointAt(0)!;
    if (last < 0x10ffff) {
      // Skip the surrogate range: those code points cannot appear in well-formed text.
      const next = last === 0xd7ff ? 0xe000 : last + 1;
      return chars.join('') + String.fromCodePoint(next);
    }
  }
  return undefined;
}

/**
 * A {@link StateStore} on one SQLite table, `items(namespace, key, value, updated_at, expires_at)`,
 * in WAL mode so readers (the CLI) never block the writer (a job). Values are stored
 * as JSON text; `putMany` and `deleteMany` each run in one transaction, so unlike
 * DynamoDB a whole call is atomic here. The same validation as every store applies
 * (see `encodeStateItem`), including the 400 KB item limit, so local runs fail where
 * DynamoDB would.
 */
export class SqliteStateStore implements StateStore {
  readonly path: string;
  private readonly db: DatabaseSync;
  private readonly clock: Clock;
  // Prepared once and reused: preparing is most of the cost of a small statement.
  private readonly getStmt: StatementSync;
  private readonly listAllStmt: StatementSync;
  private readonly listFromStmt: StatementSync;
  private readonly listRangeStmt: StatementSync;
  private readonly putStmt: StatementSync;
  private readonly putIfAbsentStmt: StatementSync;
  private readonly deleteStmt: StatementSync;

  constructor(options: SqliteStateStoreOptions = {}) {
    this.path = options.path ?? DEFAULT_SQLITE_PATH;
    this.clock = options.clock ?? systemClock;
    if (this.path !== ':memory:' && !this.path.startsWith('file:')) {
      mkdirSync(dirname(this.path), { recursive: true });
    }
    this.db = new DatabaseSync(this.path);
    try {
      this.db.exec('PRAGMA journal_mode = WAL');
      // WAL makes NORMAL durable against application crashes; only a power cut can lose the last commits.
      this.db.exec('PRAGMA synchronous = NORMAL');
      // Another process (the CLI beside a running job) may hold the write lock for a moment.
      this.db.exec('PRAGMA busy_timeout = 5000');
      this.db.exec(SCHEMA);
      // Files written before items could expire lack the column.
      const columns = this.db.prepare('PRAGMA table_info(items)').all();
      if (!columns.some((c) => c.name === 'expires_at'))
        this.db.exec('ALTER TABLE items ADD COLUMN expires_at INTEGER');
      this.getStmt = this.db.prepare('SELECT value FROM items WHERE namespace = ? AND key = ?');
      this.listAllStmt = this.db.prepare('SELECT key, value FROM items WHERE namespace = ? ORDER BY key');
      this.listFromStmt = this.db.prepare(
        'SELECT key, value FROM items WHERE namespace = ? AND key >= ? ORDER BY key',
      );
      this.listRangeStmt = this.db.prepare(
        'SELECT key, value FROM items WHERE namespace = ? AND key >= ? AND key < ? ORDER BY key',
      );
      this.putStmt = this.db.prepare(
        `INSERT INTO items (namespace, key, value, updated_at, expires_at) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (namespace, key) DO UPDATE SET
           value = excluded.value, updated_at = excluded.updated_at, expires_at = excluded.expires_at`,
      );
      // One statement, so the check and the write cannot interleave with another writer's.
      this.putIfAbsentStmt = this.db.prepare(
        `INSERT INTO items (namespace, key, value, updated_at, expires_at) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (namespace, key) DO UPDATE SET
           value = excluded.value, updated_at = excluded.updated_at, expires_at = excluded.expires_at
         WHERE items.expires_at IS NOT NULL AND items.expires_at <= ?`,
      );
      this.deleteStmt = this.db.prepare('DELETE FROM items WHERE namespace = ? AND key = ?');
    } catch (error) {
      this.db.close();
      throw error;
    }
  }

  /** Reads one item, or `undefined` when absent. */
  async get<T>(namespace: string, key: string): Promise<T | undefined> {
    assertStateKey(namespace, key);
    const row = this.getStmt.get(namespace, key);
    return row === undefined ? undefined : (JSON.parse(row.value as string) as T);
  }

  /** Lists a namespace's items whose key starts with `prefix`, in UTF-8 byte (code point) order of keys. */
  async list<T>(namespace: string, options: { prefix?: string } = {}): Promise<StoredItem<T>[]> {
    assertStateKey(namespace);
    const prefix = options.prefix ?? '';
    assertStatePrefix(namespace, prefix);
    let rows: Record<string, unknown>[];
    if (prefix === '') {
      rows = this.listAllStmt.all(namespace);
    } else {
      // A range on the primary key, not LIKE: LIKE is case-insensitive and treats % and _ as wildcards.
      const upper = prefixUpperBound(prefix);
      rows =
        upper === undefined
          ? this.listFromStmt.all(namespace, prefix)
          : this.listRangeStmt.all(namespace, prefix, upper);
    }
    return rows.map((row) => ({ key: row.key as string, value: JSON.parse(row.value as string) as T }));
  }

  /** Creates or replaces items in one transaction; a later duplicate key wins. Nothing is written if any item is invalid. */
  async putMany(namespace: string, items: StoredItem[]): Promise<void> {
    assertStateKey(namespace);
    // Validate and serialise everything before the transaction, so a bad item writes nothing.
    const rows = items.map(
      (item) =>
        [item.key, encodeStateItem(namespace, item.key, item.value), stateExpiry(namespace, item)] as const,
    );
    if (rows.length === 0) return;
    const updatedAt = this.clock.now().toISOString();
    this.transaction(() => {
      for (const [key, json, expiresAt] of rows) this.putStmt.run(namespace, key, json, updatedAt, expiresAt);
    });
  }

  /** Creates an item unless its key is held by an unexpired item (one INSERT ... ON CONFLICT statement); returns whether it wrote. */
  async putIfAbsent(namespace: string, item: StoredItem): Promise<boolean> {
    const json = encodeStateItem(namespace, item.key, item.value);
    const expiresAt = stateExpiry(namespace, item);
    const now = this.clock.now();
    const result = this.putIfAbsentStmt.run(
      namespace,
      item.key,
      json,
      now.toISOString(),
      expiresAt,
      now.getTime(),
    );
    return Number(result.changes) === 1;
  }

  /** Deletes items by key in one transaction; absent keys are ignored. */
  async deleteMany(namespace: string, keys: string[]): Promise<void> {
    assertStateKey(namespace);
    for (const key of keys) assertStateKey(namespace, key);
    if (keys.length === 0) return;
    this.transaction(() => {
      for (const key of keys) this.deleteStmt.run(namespace, key);
    });
  }

  /** Closes the database; calling it again does nothing. */
  async close(): Promise<void> {
    if (this.db.isOpen) this.db.close();
  }

  private transaction(work: () => void): void {
    // IMMEDIATE takes the write lock up front: a deferred transaction that later
    // upgrades can fail with SQLITE_BUSY without waiting for busy_timeout.
    this.db.exec('BEGIN IMMEDIATE');
    try {
      work();
      this.db.exec('COMMIT');
    } catch (error) {
      if (this.db.isTransaction) this.db.exec('ROLLBACK');
      throw error;
    }
  }
}
