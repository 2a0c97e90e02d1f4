import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { afterAll, describe, expect, it } from 'vitest';
import { openStateStore } from '../../shared/state/index.ts';
import { prefixUpperBound, SqliteStateStore } from '../../shared/state/sqlite.ts';
import { describeStateStore } from './state-store.behaviour.ts';

const root = mkdtempSync(join(tmpdir(), 'fleetward-state-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describeStateStore('sqlite file', async () => {
  const path = join(root, 'behaviour', 'state.db');
  return { open: async () => new SqliteStateStore({ path }) };
});

describeStateStore('sqlite :memory:', async () => {
  // One in-memory database, shared by every "reopen" (each new connection would start empty).
  const store = new SqliteStateStore({ path: ':memory:' });
  return {
    open: async () => ({
      get: (n, k) => store.get(n, k),
      list: (n, o) => store.list(n, o),
      putMany: (n, i) => store.putMany(n, i),
      putIfAbsent: (n, i) => store.putIfAbsent(n, i),
      deleteMany: (n, k) => store.deleteMany(n, k),
      close: async () => {},
    }),
    teardown: () => store.close(),
  };
});

describe('SqliteStateStore', () => {
  it('creates the parent directory, the table and WAL journal, and stamps updated_at from the clock', async () => {
    const path = join(root, 'nested', 'deeper', 'state.db');
    const store = new SqliteStateStore({ path, clock: { now: () => new Date('2030-01-02T03:04:05.000Z') } });
    await store.putMany('ns', [{ key: 'k', value: { a: [1] } }]);
    await store.close();
    expect(existsSync(path)).toBe(true);

    const db = new DatabaseSync(path, { readOnly: true });
    try {
      expect(db.prepare('PRAGMA journal_mode').get()).toEqual({ journal_mode: 'wal' });
      expect(db.prepare('SELECT namespace, key, value, updated_at FROM items').all()).toEqual([
        { namespace: 'ns', key: 'k', value: '{"a":[1]}', updated_at: '2030-01-02T03:04:05.000Z' },
      ]);
    } finally {
      db.close();
    }
  });

  it('is opened by openStateStore for a sqlite config', async () => {
    const path = join(root, 'opened', 'state.db');
    const store = await openStateStore({ type: 'sqlite', path });
    expect(store).toBeInstanceOf(SqliteStateStore);
    await store.putMany('ns', [{ key: 'k', value: 1 }]);
    await store.close();
    const again = await openStateStore({ type: 'sqlite', path });
    expect(await again.get('ns', 'k')).toBe(1);
    await again.close();
  });

  it('sees writes of another connection to the same file', async () => {
    const path = join(root, 'shared', 'state.db');
    const writer = new SqliteStateStore({ path });
    const reader = new SqliteStateStore({ path });
    await writer.putMany('ns', [{ key: 'k', value: 'v1' }]);
    expect(await reader.get('ns', 'k')).toBe('v1');
    await writer.putMany('ns', [{ key: 'k', value: 'v2' }]);
    expect(await reader.list('ns')).toEqual([{ key: 'k', value: 'v2' }]);
    await writer.close();
    await reader.close();
  });

  it('rejects calls after close', async () => {
    const store = new SqliteStateStore({ path: ':memory:' });
    await store.close();
    await expect(store.get('ns', 'k')).rejects.toThrow();
  });
});

describe('prefixUpperBound', () => {
  it('increments the last code point', () => {
    expect(prefixUpperBound('a/')).toBe('a0');
    expect(prefixUpperBound('a\uffff')).toBe('a\u{10000}');
    expect(prefixUpperBound('a😀')).toBe('a😁');
  });

  it('skips the surrogate range', () => {
    expect(prefixUpperBound('a\ud7ff')).toBe('a\ue000');
  });

  it('drops trailing U+10FFFF, and has no bound when nothing is left', () => {
    expect(prefixUpperBound('a\u{10ffff}\u{10ffff}')).toBe('b');
    expect(prefixUpperBound('\u{10ffff}')).toBeUndefined();
  });
});
