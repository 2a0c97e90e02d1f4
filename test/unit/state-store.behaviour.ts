/**
 * The behaviour every {@link StateStore} must show, as one suite run against each
 * implementation (SQLite in test/unit, DynamoDB on moto in test/integration), so the
 * stores cannot drift apart. Not a test file itself: the runners import it.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StateStore, StoredItem } from '../../shared/ports.ts';
import {
  InvalidStateItemError,
  MAX_ITEM_BYTES,
  StateItemTooLargeError,
  utf8Bytes,
} from '../../shared/state/index.ts';

/** How the suite reaches one implementation. */
export interface StateStoreHarness {
  /** Opens a new store over the same data as every store this harness opened before. */
  open(): Promise<StateStore>;
  /** Frees what `open` cannot (emulator clients, temp dirs); stores are closed by the suite. */
  teardown?(): Promise<void>;
}

/** Orders keys the way both stores do: by UTF-8 bytes, which is code point order (not JS's UTF-16 order). */
export function byUtf8(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

const keysOf = (items: StoredItem[]) => items.map((item) => item.key);

/** Registers the shared suite under `describe(name)`; `setup` runs once, in `beforeAll`. */
export function describeStateStore(name: string, setup: () => Promise<StateStoreHarness>): void {
  describe(`StateStore behaviour: ${name}`, () => {
    let harness: StateStoreHarness;
    let store: StateStore;
    const opened: StateStore[] = [];
    // Each test writes to its own namespace, so tests never see each other's items.
    const ns = (label: string) => `${label}-${randomUUID()}`;
    const open = async () => {
      const s = await harness.open();
      opened.push(s);
      return s;
    };

    beforeAll(async () => {
      harness = await setup();
      store = await open();
    });

    afterAll(async () => {
      for (const s of opened) await s.close();
      await harness?.teardown?.();
    });

    it('returns undefined for an absent key and an empty list for an empty namespace', async () => {
      const n = ns('absent');
      expect(await store.get(n, 'nope')).toBeUndefined();
      expect(await store.list(n)).toEqual([]);
      expect(await store.list(n, { prefix: 'x' })).toEqual([]);
    });

    it('round-trips JSON values exactly', async () => {
      const n = ns('roundtrip');
      const values: Record<string, unknown> = {
        object: { a: 1, nested: { list: [1, 'two', null, { deep: true }], empty: {} }, '': 'empty key' },
        array: [],
        emptyString: '',
        zero: 0,
        negative: -1.5,
        precise: 0.1 + 0.2,
        huge: 1.7976931348623157e308,
        bigInt: 2 ** 53 + 1,
        falsy: false,
        nullValue: null,
        unicode: 'Zürich 東京 😀 \u0000 \u2028',
        set: ['a', 'a'],
      };
      await store.putMany(
        n,
        Object.entries(values).map(([key, value]) => ({ key, value })),
      );
      for (const [key, value] of Object.entries(values)) {
        expect(await store.get(n, key), key).toEqual(value);
      }
      // null is a stored value, not absence.
      expect(await store.get(n, 'nullValue')).toBeNull();
      expect(keysOf(await store.list(n))).toEqual(Object.keys(values).sort(byUtf8));
    });

    it('replaces an existing item, and a later duplicate in one call wins', async () => {
      const n = ns('overwrite');
      await store.putMany(n, [{ key: 'k', value: { v: 1 } }]);
      await store.putMany(n, [{ key: 'k', value: { v: 2 } }]);
      expect(await store.get(n, 'k')).toEqual({ v: 2 });
      await store.putMany(n, [
        { key: 'd', value: 'first' },
        { key: 'd', value: 'second' },
      ]);
      expect(await store.get(n, 'd')).toBe('second');
      expect(await store.list(n)).toEqual([
        { key: 'd', value: 'second' },
        { key: 'k', value: { v: 2 } },
      ]);
    });

    it('lists in UTF-8 byte order and filters by a literal, case-sensitive prefix', async () => {
      const n = ns('prefix');
      const keys = [
        'b',
        'a/2',
        'a/10',
        'a/1',
        'a',
        'ab',
        'A',
        'a%x',
        'a_x',
        'a\uffff',
        'a😀',
        'a😀/1',
        'a\u00e9',
        'cluster/aws/eu-central-1/prod',
        'cluster/aws/eu-central-1',
        'cluster/gcp/europe-west3/prod',
      ];
      await store.putMany(
        n,
        keys.map((key, i) => ({ key, value: i })),
      );
      const all = await store.list<number>(n);
      expect(keysOf(all)).toEqual([...keys].sort(byUtf8));
      // JS sorts 'a😀' (surrogates D83D..) before 'a\uffff'; UTF-8 order puts it after.
      expect(keysOf(all).indexOf('a😀')).toBeGreaterThan(keysOf(all).indexOf('a\uffff'));
      expect(all.find((item) => item.key === 'a/10')?.value).toBe(2);

      expect(keysOf(await store.list(n, { prefix: 'a/' }))).toEqual(['a/1', 'a/10', 'a/2']);
      expect(keysOf(await store.list(n, { prefix: 'a' }))).toEqual(
        keys.filter((k) => k.startsWith('a')).sort(byUtf8),
      );
      expect(keysOf(await store.list(n, { prefix: 'A' }))).toEqual(['A']);
      expect(keysOf(await store.list(n, { prefix: 'a%' }))).toEqual(['a%x']);
      expect(keysOf(await store.list(n, { prefix: 'a_' }))).toEqual(['a_x']);
      expect(keysOf(await store.list(n, { prefix: 'a😀' }))).toEqual(['a😀', 'a😀/1']);
      expect(keysOf(await store.list(n, { prefix: 'a\uffff' }))).toEqual(['a\uffff']);
      expect(keysOf(await store.list(n, { prefix: 'cluster/aws/' }))).toEqual([
        'cluster/aws/eu-central-1',
        'cluster/aws/eu-central-1/prod',
      ]);
      expect(keysOf(await store.list(n, { prefix: 'b' }))).toEqual(['b']);
      expect(await store.list(n, { prefix: 'zzz' })).toEqual([]);
      expect(await store.list(n, { prefix: '' })).toHaveLength(keys.length);
    });

    it('deletes the named keys, ignores absent ones and duplicates, and keeps the rest', async () => {
      const n = ns('delete');
      await store.putMany(
        n,
        ['a', 'b', 'c', 'd'].map((key) => ({ key, value: key })),
      );
      await store.deleteMany(n, ['b', 'd', 'missing', 'b']);
      expect(keysOf(await store.list(n))).toEqual(['a', 'c']);
      expect(await store.get(n, 'b')).toBeUndefined();
      await store.deleteMany(n, []);
      await store.putMany(n, []);
      expect(keysOf(await store.list(n))).toEqual(['a', 'c']);
    });

    it('keeps namespaces apart, including one that is a prefix of another', async () => {
      const base = ns('iso');
      const [n1, n2] = [base, `${base}x`];
      await store.putMany(n1, [
        { key: 'k', value: 'one' },
        { key: 'only1', value: 1 },
      ]);
      await store.putMany(n2, [{ key: 'k', value: 'two' }]);
      expect(await store.get(n1, 'k')).toBe('one');
      expect(await store.get(n2, 'k')).toBe('two');
      expect(await store.get(n2, 'only1')).toBeUndefined();
      expect(keysOf(await store.list(n2))).toEqual(['k']);
      await store.deleteMany(n2, ['k', 'only1']);
      expect(await store.get(n1, 'k')).toBe('one');
      expect(keysOf(await store.list(n1))).toEqual(['k', 'only1']);
    });

    it('persists across closing and reopening', async () => {
      const n = ns('persist');
      const first = await open();
      await first.putMany(n, [{ key: 'checkpoint', value: { step: 3 } }]);
      await first.close();
      await first.close(); // closing twice is harmless
      const second = await open();
      expect(await second.get(n, 'checkpoint')).toEqual({ step: 3 });
      expect(keysOf(await second.list(n))).toEqual(['checkpoint']);
    });

    it('writes, pages through and deletes many items (more than one batch, more than 1 MB)', async () => {
      const n = ns('bulk');
      // 60 items of ~30 KB: three BatchWriteItem chunks of 25 and about 1.8 MB, so a Query needs 2+ pages.
      const filler = 'x'.repeat(30_000);
      const items = Array.from({ length: 60 }, (_, i) => ({
        key: `item/${String(i).padStart(3, '0')}`,
        value: { i, filler },
      }));
      await store.putMany(n, items);
      const listed = await store.list<{ i: number; filler: string }>(n);
      expect(listed).toHaveLength(60);
      expect(listed.map((item) => item.value.i)).toEqual(items.map((_, i) => i));
      expect(listed.every((item) => item.value.filler.length === 30_000)).toBe(true);
      expect(await store.list(n, { prefix: 'item/05' })).toHaveLength(10);

      await store.deleteMany(
        n,
        items.filter((_, i) => i % 2 === 0).map((item) => item.key),
      );
      const left = await store.list<{ i: number }>(n);
      expect(left.map((item) => item.value.i)).toEqual(items.map((_, i) => i).filter((i) => i % 2 === 1));
      await store.deleteMany(n, keysOf(left));
      expect(await store.list(n)).toEqual([]);
    });

    it('writes a few hundred small items', async () => {
      const n = ns('many');
      const items = Array.from({ length: 260 }, (_, i) => ({ key: `k${i}`, value: i }));
      await store.putMany(n, items);
      expect(await store.list(n)).toHaveLength(260);
      await store.deleteMany(n, keysOf(items));
      expect(await store.list(n)).toEqual([]);
    });

    it('refuses keys no store can hold, writing nothing of the call', async () => {
      const n = ns('invalid');
      const bad: [string, string][] = [
        ['empty', ''],
        ['lone surrogate', '\ud800x'],
        ['over 1024 bytes', 'é'.repeat(513)],
      ];
      for (const [label, key] of bad) {
        await expect(
          store.putMany(n, [
            { key: 'ok', value: 1 },
            { key, value: 1 },
          ]),
          label,
        ).rejects.toBeInstanceOf(InvalidStateItemError);
        await expect(store.get(n, key), label).rejects.toBeInstanceOf(InvalidStateItemError);
        await expect(store.deleteMany(n, [key]), label).rejects.toBeInstanceOf(InvalidStateItemError);
      }
      await expect(store.get('', 'k')).rejects.toBeInstanceOf(InvalidStateItemError);
      await expect(store.list(n, { prefix: '\udc00' })).rejects.toBeInstanceOf(InvalidStateItemError);
      expect(await store.list(n)).toEqual([]);

      // The longest allowed key is accepted.
      const longest = 'k'.repeat(1024);
      await store.putMany(n, [{ key: longest, value: true }]);
      expect(await store.get(n, longest)).toBe(true);
    });

    it('refuses values JSON cannot represent', async () => {
      const n = ns('json');
      const circular: Record<string, unknown> = {};
      circular.self = circular;
      for (const value of [undefined, () => 1, Symbol('s'), circular, 10n]) {
        const error = await store.putMany(n, [{ key: 'v', value }]).catch((e: unknown) => e);
        expect(error).toBeInstanceOf(InvalidStateItemError);
        expect((error as InvalidStateItemError).key).toBe('v');
      }
      expect(await store.list(n)).toEqual([]);
    });

    describe('putIfAbsent', () => {
      it('creates an absent item once; later calls leave it as it is', async () => {
        const n = ns('ifabsent');
        expect(await store.putIfAbsent(n, { key: 'event/1', value: { status: 'first' } })).toBe(true);
        expect(await store.putIfAbsent(n, { key: 'event/1', value: { status: 'second' } })).toBe(false);
        expect(await store.get(n, 'event/1')).toEqual({ status: 'first' });
        expect(await store.list(n)).toEqual([{ key: 'event/1', value: { status: 'first' } }]);
      });

      it.each([
        ['an item without expiry', undefined, false],
        ['an item that expires later', 60_000, false],
        ['an expired item', -60_000, true],
      ])('over %s writes: %s', async (_label, expiresIn, replaced) => {
        // Prepare: the key is held, by putMany (it carries expiries too) or by putIfAbsent
        const n = ns('expiry');
        const expiresAt = expiresIn === undefined ? undefined : Date.now() + expiresIn;
        await store.putMany(n, [{ key: 'held', value: 'old', expiresAt }]);
        expect(await store.putIfAbsent(n, { key: 'lease', value: 'old', expiresAt })).toBe(true);

        // Act
        const wrote = [
          await store.putIfAbsent(n, { key: 'held', value: 'new' }),
          await store.putIfAbsent(n, { key: 'lease', value: 'new', expiresAt: Date.now() + 60_000 }),
        ];

        // Assess
        expect(wrote).toEqual([replaced, replaced]);
        expect(await store.get(n, 'held')).toBe(replaced ? 'new' : 'old');
        expect(await store.get(n, 'lease')).toBe(replaced ? 'new' : 'old');
      });

      it('lets exactly one of many racing creates win, across connections', async () => {
        // Prepare: two connections to the same data
        const n = ns('race');
        const other = await open();

        // Act: 12 creates of one key at once, alternating connections
        const results = await Promise.all(
          Array.from({ length: 12 }, (_, i) =>
            (i % 2 === 0 ? store : other).putIfAbsent(n, {
              key: 'once',
              value: i,
              expiresAt: Date.now() + 60_000,
            }),
          ),
        );

        // Assess
        expect(results.filter(Boolean)).toHaveLength(1);
        expect(await store.get(n, 'once')).toBe(results.indexOf(true));
      });

      it('refuses what putMany refuses, and an expiry that is not a number', async () => {
        const n = ns('ifabsent-invalid');
        await expect(store.putIfAbsent(n, { key: '', value: 1 })).rejects.toBeInstanceOf(
          InvalidStateItemError,
        );
        await expect(store.putIfAbsent(n, { key: 'v', value: () => 1 })).rejects.toBeInstanceOf(
          InvalidStateItemError,
        );
        await expect(
          store.putIfAbsent(n, { key: 'v', value: 1, expiresAt: Number.NaN }),
        ).rejects.toBeInstanceOf(InvalidStateItemError);
        await expect(
          store.putIfAbsent(n, { key: 'big', value: 'x'.repeat(MAX_ITEM_BYTES) }),
        ).rejects.toBeInstanceOf(StateItemTooLargeError);
        expect(await store.list(n)).toEqual([]);
      });
    });

    it('refuses an item over 400 KB naming its key, and accepts one of exactly the limit', async () => {
      const n = ns('size');
      const error = await store
        .putMany(n, [
          { key: 'small', value: 1 },
          { key: 'big/one', value: 'x'.repeat(MAX_ITEM_BYTES) },
        ])
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(StateItemTooLargeError);
      expect((error as StateItemTooLargeError).key).toBe('big/one');
      expect((error as Error).message).toContain('"big/one"');
      expect(await store.list(n)).toEqual([]);

      // Multi-byte text counts in UTF-8 bytes: 150k × 3 bytes is over the limit though only 150k characters.
      await expect(store.putMany(n, [{ key: 'wide', value: '€'.repeat(150_000) }])).rejects.toBeInstanceOf(
        StateItemTooLargeError,
      );

      // Size = attribute names + namespace + key + JSON value (with its quotes) + the ISO timestamp.
      const fixed = utf8Bytes(`pkskvalueupdatedAt${n}edge`) + '2000-01-01T00:00:00.000Z'.length + 2;
      const exact = 'y'.repeat(MAX_ITEM_BYTES - fixed);
      await store.putMany(n, [{ key: 'edge', value: exact }]);
      expect(await store.get(n, 'edge')).toBe(exact);
      await expect(store.putMany(n, [{ key: 'edge', value: `${exact}y` }])).rejects.toBeInstanceOf(
        StateItemTooLargeError,
      );
    });
  });
}
