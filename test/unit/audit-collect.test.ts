import { readFileSync } from 'node:fs';
import { mkdtemp, readdir, rename, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import { renderVerify, verifyCounts } from '../../bin/audit.ts';
import { summaryLine } from '../../bin/output.ts';
import { clusterPrefix, eventKey, parseArchiveKey, sha256Hex } from '../../shared/audit/chunks.ts';
import { LocalArchiveStore } from '../../shared/audit/local-store.ts';
import {
  type ChainHead,
  headKey,
  parseManifest,
  SEEN_HASH_LENGTH,
  type SeenShard,
  seenHash,
  seenPrefix,
  seenShardKey,
} from '../../shared/audit/manifest.ts';
import { Jurisdiction } from '../../shared/config/schema.ts';
import { type AuditJobDeps, type CollectOptions, collect, verify } from '../../shared/jobs/audit.ts';
import type { Cluster, Finding } from '../../shared/model.ts';
import type {
  ArchivedObject,
  ArchiveStore,
  AuditEvent,
  AuditLogSource,
  StateStore,
  StoredItem,
} from '../../shared/ports.ts';
import { Residency } from '../../shared/residency/index.ts';
import { NotImmutableError } from '../../shared/runtime/errors.ts';
import { silentLogger } from '../../shared/runtime/logger.ts';
import { AUDIT_NS, INVENTORY } from '../../shared/state/records.ts';
import { SqliteStateStore } from '../../shared/state/sqlite.ts';
import { auditCluster } from './audit-builders.ts';

const T0 = Date.parse('2026-11-21T10:00:00Z');
const MIN = 60_000;
const at = (minutes: number) => new Date(T0 + minutes * MIN);

const cluster = auditCluster;

/** An event the source serves once the clock reaches `arrival` (late arrivals have arrival > timestamp). */
interface SourceEvent extends AuditEvent {
  arrival: number;
}

function ev(id: string, minutes: number, arrivalMinutes = minutes): SourceEvent {
  const timestamp = at(minutes).toISOString();
  return {
    auditID: id,
    timestamp,
    raw: JSON.stringify({ kind: 'Event', auditID: id, verb: 'get', stageTimestamp: timestamp }),
    arrival: T0 + arrivalMinutes * MIN,
  };
}

function malformed(tag: string, minutes: number): SourceEvent {
  return {
    auditID: null,
    timestamp: at(minutes).toISOString(),
    raw: `{"broken": ${tag}`,
    arrival: T0 + minutes * MIN,
  };
}

class MemorySource implements AuditLogSource {
  events: SourceEvent[] = [];
  on = true;
  pageSize = 3;
  readonly clock: { t: number };
  constructor(clock: { t: number }) {
    this.clock = clock;
  }
  async enabled() {
    return this.on ? { enabled: true } : { enabled: false, reason: 'api log type not enabled' };
  }
  async *read(_c: Cluster, window: { since: Date; until: Date }): AsyncIterable<AuditEvent[]> {
    const visible = this.events
      .filter((e) => e.arrival <= this.clock.t)
      .filter(
        (e) =>
          Date.parse(e.timestamp) >= window.since.getTime() &&
          Date.parse(e.timestamp) < window.until.getTime(),
      )
      .sort((a, b) => Date.parse(a.timestamp) - Date.parse(b.timestamp))
      .map(({ arrival: _arrival, ...event }) => event);
    for (let i = 0; i < visible.length; i += this.pageSize) yield visible.slice(i, i + this.pageSize);
  }
}

/** Test-only: rewrites an object's file in a LocalArchiveStore directory (simulated tampering). */
async function tamper(dir: string, key: string, bytes: Uint8Array): Promise<void> {
  await writeFile(join(dir, ...key.split('/')), bytes);
}

/** Delegates to a store; tests override single methods. */
class Wrapped implements ArchiveStore {
  readonly id: string;
  compliantStorage: boolean | undefined;
  readonly inner: ArchiveStore;
  constructor(inner: ArchiveStore) {
    this.inner = inner;
    this.id = inner.id;
    this.compliantStorage = (inner as { compliantStorage?: boolean }).compliantStorage;
  }
  location(o?: { signal?: AbortSignal }) {
    return this.inner.location(o);
  }
  assertImmutable(days: number, o?: { signal?: AbortSignal }) {
    return this.inner.assertImmutable(days, o);
  }
  create(
    key: string,
    body: Uint8Array,
    meta: { sha256: string; contentType: string },
  ): Promise<ArchivedObject> {
    return this.inner.create(key, body, meta);
  }
  get(key: string, o?: { version?: string }) {
    return this.inner.get(key, o);
  }
  list(prefix: string) {
    return this.inner.list(prefix);
  }
}

/** Seeded PRNG (mulberry32): trials are random but reproducible. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

class Crash extends Error {}

/** Counts durable steps (head and seen-shard puts and deletes, chunk and manifest creates) and crashes at one, before or after it happens. */
class Faults {
  step = 0;
  crashAt = -1;
  after = false;
  crashed: string | undefined;
  async around<T>(what: string, fn: () => Promise<T>): Promise<T> {
    const n = this.step++;
    if (n !== this.crashAt) return fn();
    this.crashed = `${what}${this.after ? ' (after)' : ''}`;
    if (this.after) await fn();
    throw new Crash(`injected crash at ${what}`);
  }
}

function faultyStore(inner: StateStore, faults: Faults): StateStore {
  return {
    get: (ns, key) => inner.get(ns, key),
    list: (ns, o) => inner.list(ns, o),
    putIfAbsent: (ns, item) => inner.putIfAbsent(ns, item),
    putMany: (ns: string, items: StoredItem[]) =>
      ns === AUDIT_NS
        ? faults.around(items[0]?.key.startsWith('seen/') ? 'seen put' : 'head put', () =>
            inner.putMany(ns, items),
          )
        : inner.putMany(ns, items),
    deleteMany: (ns, keys) =>
      ns === AUDIT_NS
        ? faults.around('seen delete', () => inner.deleteMany(ns, keys))
        : inner.deleteMany(ns, keys),
    close: () => inner.close(),
  };
}

class FaultyArchive extends Wrapped {
  readonly faults: Faults;
  constructor(inner: ArchiveStore, faults: Faults) {
    super(inner);
    this.faults = faults;
  }
  override create(key: string, body: Uint8Array, meta: { sha256: string; contentType: string }) {
    return this.faults.around(key.endsWith('.manifest.json') ? 'manifest create' : 'chunk create', () =>
      this.inner.create(key, body, meta),
    );
  }
}

const dirs: string[] = [];
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

/** Measures every item put, as the JSON of its value plus its key (UTF-8 bytes). */
function measuredStore(inner: StateStore, sizes: Map<string, number>): StateStore {
  return {
    get: (ns, key) => inner.get(ns, key),
    list: (ns, o) => inner.list(ns, o),
    putIfAbsent: (ns, item) => inner.putIfAbsent(ns, item),
    putMany: (ns: string, items: StoredItem[]) => {
      for (const { key, value } of items) {
        const bytes = Buffer.byteLength(JSON.stringify(value)) + Buffer.byteLength(key);
        sizes.set(`${ns}/${key}`, Math.max(sizes.get(`${ns}/${key}`) ?? 0, bytes));
      }
      return inner.putMany(ns, items);
    },
    deleteMany: (ns, keys) => inner.deleteMany(ns, keys),
    close: () => inner.close(),
  };
}

async function setup(
  options: {
    archive?: (local: LocalArchiveStore) => ArchiveStore;
    faults?: Faults;
    sizes?: Map<string, number>;
    allowLocalEvidence?: boolean;
  } = {},
) {
  const dir = await mkdtemp(join(tmpdir(), 'fleetward-audit-'));
  dirs.push(dir);
  const clock = { t: T0 };
  const raw = new SqliteStateStore({ path: ':memory:' });
  await raw.putMany(INVENTORY, [{ key: cluster.id, value: cluster }]);
  let store: StateStore = options.faults ? faultyStore(raw, options.faults) : raw;
  if (options.sizes) store = measuredStore(store, options.sizes);
  const local = new LocalArchiveStore(dir);
  let archive: ArchiveStore = options.archive ? options.archive(local) : local;
  if (options.faults) archive = new FaultyArchive(archive, options.faults);
  const source = new MemorySource(clock);
  const deps: AuditJobDeps = {
    config: { jurisdictions: { eu: Jurisdiction.parse({ preset: 'eu-gdpr' }) } },
    store,
    residency: new Residency({ eu: { preset: 'eu-gdpr' } }),
    logger: silentLogger,
    clock: { now: () => new Date(clock.t) },
    sources: { for: () => source },
    archives: { for: async () => archive },
    // These tests archive into a local directory: a local run that passed --local-evidence.
    allowLocalEvidence: options.allowLocalEvidence ?? true,
  };
  return { dir, clock, raw, store, local, archive, source, deps };
}

/** Dedup keys of every event in the archive, one entry per archived line. */
async function archivedKeys(local: LocalArchiveStore): Promise<string[]> {
  const keys: string[] = [];
  for (const { key } of await local.list(clusterPrefix(cluster.id))) {
    if (parseArchiveKey(cluster.id, key)?.kind !== 'chunk') continue;
    const text = gunzipSync((await local.get(key))!).toString('utf8');
    for (const line of text.split('\n').slice(0, -1)) {
      let id: unknown;
      try {
        id = JSON.parse(line).auditID;
      } catch {}
      keys.push(typeof id === 'string' ? id : `sha256:${sha256Hex(line)}`);
    }
  }
  return keys.sort();
}

const sourceKeys = (events: SourceEvent[], upTo: number) =>
  events
    .filter((e) => e.arrival <= upTo && Date.parse(e.timestamp) < upTo)
    .map(eventKey)
    .sort();

/** Every hash in the cluster's seen shards, sorted. */
async function seenHashes(store: StateStore): Promise<string[]> {
  const out: string[] = [];
  for (const { value } of await store.list<SeenShard>(AUDIT_NS, { prefix: seenPrefix(cluster.id) })) {
    for (const [group, hashes] of Object.entries(value)) {
      if (group === 'v') continue;
      for (let i = 0; i < hashes.length; i += SEEN_HASH_LENGTH)
        out.push(hashes.slice(i, i + SEEN_HASH_LENGTH));
    }
  }
  return out.sort();
}

const findings = (store: StateStore) => store.get<Finding[]>('findings', `audit/${cluster.id}`);
const OPTS: CollectOptions = { maxEvents: 4 };

describe('audit collect', () => {
  it('archives a chain, and a second run writes only the new events', async () => {
    const { deps, source, clock, local } = await setup();
    source.events = Array.from({ length: 10 }, (_, i) => ev(`a${i}`, i));
    clock.t = at(12).getTime();
    const first = await collect(deps, OPTS);
    expect(first.outcomes[0]).toMatchObject({
      status: 'archived',
      chunks: 3,
      events: 10,
      head: 3,
      compliantStorage: false,
    });

    source.events.push(ev('b1', 13), ev('b2', 14), malformed('x', 15));
    clock.t = at(20).getTime();
    const second = await collect(deps, OPTS);
    expect(second.outcomes[0]).toMatchObject({ status: 'archived', events: 3, malformed: 1, head: 4 });
    expect((second.outcomes[0] as { duplicates: number }).duplicates).toBeGreaterThan(0);
    expect(await archivedKeys(local)).toEqual(sourceKeys(source.events, clock.t));

    const manifest = parseManifest(
      (await local.get(`audit/${cluster.id}/2026/11/21/00000004.ndjson.gz.manifest.json`))!,
    );
    expect(manifest).toMatchObject({
      schema: 'fleetward.audit.manifest/v1',
      seq: 4,
      events: 3,
      malformed: 1,
      compliantStorage: false,
    });
    const third = await collect(deps, OPTS);
    expect(third.outcomes[0]).toMatchObject({ status: 'up-to-date', chunks: 0 });
    expect(await verify(deps)).toMatchObject({ ok: true, clusters: [{ ok: true, chunks: 4, events: 13 }] });
  });

  it('archives a late arrival inside the overlap exactly once, and keeps the seen list bounded', async () => {
    const { deps, source, clock, local, raw } = await setup();
    source.events = [ev('e1', 1), ev('e2', 20), ev('late', 25, 35), ev('e3', 29)];
    clock.t = at(30).getTime();
    await collect(deps, OPTS);
    expect(await archivedKeys(local)).toEqual(['e1', 'e2', 'e3']);
    const head = await raw.get<ChainHead>(AUDIT_NS, headKey(cluster.id));
    expect(head?.checkpoint).toEqual({ lastTimestamp: at(29).toISOString() });
    // e1 is older than the overlap: its minute's shard is gone.
    expect(await seenHashes(raw)).toEqual(['e2', 'e3'].map(seenHash).sort());
    expect((await raw.list(AUDIT_NS, { prefix: seenPrefix(cluster.id) })).map((i) => i.key)).toEqual([
      seenShardKey(cluster.id, '202611211020', 0),
      seenShardKey(cluster.id, '202611211029', 0),
    ]);

    clock.t = at(40).getTime();
    const second = await collect(deps, OPTS);
    expect(second.outcomes[0]).toMatchObject({ events: 1 });
    clock.t = at(45).getTime();
    await collect(deps, OPTS);
    expect(await archivedKeys(local)).toEqual(['e1', 'e2', 'e3', 'late']);
    expect((await verify(deps)).ok).toBe(true);
  });

  it('re-adopts the chain when the head is lost from the state store, without duplicates', async () => {
    const { deps, source, clock, local, raw } = await setup();
    source.events = Array.from({ length: 9 }, (_, i) => ev(`a${i}`, i));
    clock.t = at(10).getTime();
    await collect(deps, OPTS);
    await raw.deleteMany(AUDIT_NS, [headKey(cluster.id)]);
    source.events.push(ev('b1', 11));
    clock.t = at(15).getTime();
    const again = await collect(deps, OPTS);
    expect(again.outcomes[0]).toMatchObject({ recovered: 3, events: 1 });
    expect(await archivedKeys(local)).toEqual(sourceKeys(source.events, clock.t));
    expect((await verify(deps)).ok).toBe(true);
  });

  it('keeps every state item under 400 000 bytes at 250 events/s over a 10-minute overlap', async () => {
    const sizes = new Map<string, number>();
    const { deps, source, clock, raw, local } = await setup({ sizes });
    source.pageSize = 1_000;
    // 150 000 events spread over 10 minutes (250/s), collected in one run.
    source.events = Array.from({ length: 150_000 }, (_, i) => ev(`load-${i}`, 1 + i / 15_000));
    clock.t = at(12).getTime();
    const first = await collect(deps);
    expect(first.outcomes[0]).toMatchObject({ status: 'archived', events: 150_000, chunks: 8 });
    const items = [...sizes].filter(([key]) => key.startsWith(`${AUDIT_NS}/`));
    expect(items.length).toBeGreaterThan(10);
    for (const [key, bytes] of items) expect(bytes, key).toBeLessThan(400_000);
    expect(sizes.get(`${AUDIT_NS}/${headKey(cluster.id)}`)).toBeLessThan(2_000);
    expect((await seenHashes(raw)).length).toBe(150_000);

    // The next run re-reads the whole overlap and drops every event of it as a duplicate.
    source.events.push(ev('after', 11.5));
    clock.t = at(13).getTime();
    const second = await collect(deps);
    expect(second.outcomes[0]).toMatchObject({ status: 'archived', events: 1, duplicates: 150_000 });
    let lines = 0;
    for (const { key } of await local.list(clusterPrefix(cluster.id))) {
      if (parseArchiveKey(cluster.id, key)?.kind === 'chunk') {
        lines +=
          gunzipSync((await local.get(key))!)
            .toString('utf8')
            .split('\n').length - 1;
      }
    }
    expect(lines).toBe(150_001);
    for (const [key, bytes] of sizes) expect(bytes, key).toBeLessThan(400_000);
  }, 60_000);

  it('splits a minute of more than 15 000 events over several shard items', async () => {
    const sizes = new Map<string, number>();
    const { deps, source, clock, raw } = await setup({ sizes });
    source.pageSize = 1_000;
    // 40 000 events in one minute (667/s).
    source.events = Array.from({ length: 40_000 }, (_, i) => ev(`burst-${i}`, 1 + i / 40_001));
    clock.t = at(3).getTime();
    expect((await collect(deps)).outcomes[0]).toMatchObject({ status: 'archived', events: 40_000 });
    const keys = (await raw.list(AUDIT_NS, { prefix: seenPrefix(cluster.id) })).map((i) => i.key);
    expect(keys).toEqual([0, 1, 2].map((p) => seenShardKey(cluster.id, '202611211001', p)));
    expect((await seenHashes(raw)).length).toBe(40_000);
    for (const [key, bytes] of sizes) expect(bytes, key).toBeLessThan(400_000);
    source.events.push(ev('next', 2));
    clock.t = at(4).getTime();
    expect((await collect(deps)).outcomes[0]).toMatchObject({ events: 1, duplicates: 40_000 });
  });

  it('moves the seen keys of a legacy head into seen shards without duplicates', async () => {
    const { deps, source, clock, local, raw } = await setup();
    source.events = Array.from({ length: 9 }, (_, i) => ev(`a${i}`, i));
    clock.t = at(10).getTime();
    await collect(deps, OPTS);
    // Rewrite the state as the previous version left it: keys in the head, no shards.
    const head = (await raw.get<ChainHead>(AUDIT_NS, headKey(cluster.id)))!;
    const ids = source.events.map(eventKey);
    const legacy: ChainHead = {
      ...head,
      checkpoint: {
        lastTimestamp: head.checkpoint!.lastTimestamp,
        seenIds: ids,
        seenTimestamps: source.events.map((e) => e.timestamp),
      },
    };
    await raw.putMany(AUDIT_NS, [{ key: headKey(cluster.id), value: legacy }]);
    const shardKeys = (await raw.list(AUDIT_NS, { prefix: seenPrefix(cluster.id) })).map((i) => i.key);
    await raw.deleteMany(AUDIT_NS, shardKeys);
    source.events.push(ev('b1', 9.5));
    clock.t = at(15).getTime();
    const again = await collect(deps, OPTS);
    expect(again.outcomes[0]).toMatchObject({ status: 'archived', events: 1 });
    expect(await archivedKeys(local)).toEqual(sourceKeys(source.events, clock.t));
    const migrated = await raw.get<ChainHead>(AUDIT_NS, headKey(cluster.id));
    expect(migrated?.checkpoint).toEqual({ lastTimestamp: at(9.5).toISOString() });
    expect(await seenHashes(raw)).toEqual(
      ['a0', 'a1', 'a2', 'a3', 'a4', 'a5', 'a6', 'a7', 'a8', 'b1'].map(seenHash).sort(),
    );
  });

  it('ignores and removes the seen keys of a chunk that never became durable', async () => {
    const { deps, source, clock, local, raw, archive } = await setup({
      archive: (l) => new Wrapped(l),
    });
    source.events = [ev('a', 1), ev('b', 2)];
    clock.t = at(5).getTime();
    await collect(deps, OPTS);
    // A run writes the seen keys of chunk 2 (c, d) and dies before its chunk is created.
    source.events.push(ev('c', 3), ev('d', 4));
    clock.t = at(6).getTime();
    const create = archive.create.bind(archive);
    archive.create = async () => {
      throw new Crash('killed');
    };
    expect((await collect(deps, OPTS)).outcomes[0]?.status).toBe('failed');
    expect((await seenHashes(raw)).length).toBe(4);
    archive.create = create;
    const again = await collect(deps, OPTS);
    expect(again.outcomes[0]).toMatchObject({ status: 'archived', events: 2 });
    expect(await archivedKeys(local)).toEqual(['a', 'b', 'c', 'd']);
    expect(await seenHashes(raw)).toEqual(['a', 'b', 'c', 'd'].map(seenHash).sort());
  });

  it('leaves no gap and no duplicate when runs are killed at random points (60 trials)', async () => {
    const crashedAt = new Set<string>();
    for (let trial = 0; trial < 60; trial++) {
      const random = prng(trial + 1);
      const faults = new Faults();
      const { deps, source, clock, local } = await setup({ faults });
      const events: SourceEvent[] = [];
      for (let i = 0; i < 40; i++) {
        const minute = i * 0.75;
        // Some events arrive late (within the overlap), a few lines are unparseable.
        const late = random() < 0.15 ? minute + 1 + random() * 6 : minute;
        events.push(i % 13 === 5 ? malformed(`m${i}`, minute) : ev(`t${trial}-${i}`, minute, late));
      }
      source.events = events;
      for (const minutes of [12, 24, 36]) {
        clock.t = at(minutes).getTime();
        faults.step = 0;
        faults.crashAt = Math.floor(random() * 30);
        faults.after = random() < 0.5;
        faults.crashed = undefined;
        const crashed = await collect(deps, OPTS);
        if (faults.crashed) {
          crashedAt.add(faults.crashed);
          expect(crashed.outcomes[0]?.status).toBe('failed');
        }
        faults.crashAt = -1;
        const clean = await collect(deps, OPTS);
        expect(clean.outcomes[0]?.status).not.toBe('failed');
        expect(await archivedKeys(local), `trial ${trial} at ${minutes} min`).toEqual(
          sourceKeys(events, clock.t),
        );
      }
      clock.t = at(50).getTime();
      await collect(deps, OPTS);
      expect(await archivedKeys(local)).toEqual(sourceKeys(events, Number.POSITIVE_INFINITY));
      const verified = await verify(deps);
      expect(verified.ok, JSON.stringify(verified)).toBe(true);
    }
    // Every kind of step was hit, before and after it took effect.
    for (const what of ['seen put', 'head put', 'chunk create', 'manifest create', 'seen delete']) {
      expect(crashedAt).toContain(what);
      expect(crashedAt).toContain(`${what} (after)`);
    }
  });
});

describe('audit sink checks', () => {
  const nothingWritten = async (dir: string, raw: StateStore) => {
    expect((await readdir(dir)).filter((f) => f !== '.staging')).toEqual([]);
    expect(await raw.get(AUDIT_NS, headKey(cluster.id))).toBeUndefined();
  };

  it('audit logging off: a finding, nothing written', async () => {
    const { deps, source, clock, dir, raw } = await setup();
    source.events = [ev('a', 1)];
    source.on = false;
    clock.t = at(5).getTime();
    const result = await collect(deps);
    expect(result.outcomes[0]).toMatchObject({ status: 'skipped' });
    expect((await findings(raw))?.map((f) => f.kind)).toEqual(['audit-logging-off']);
    await nothingWritten(dir, raw);
  });

  it('an archive that is not immutable: a finding, nothing written', async () => {
    const { deps, source, clock, dir, raw } = await setup({
      archive: (local) =>
        Object.assign(new Wrapped(local), {
          assertImmutable: async () => {
            throw new NotImmutableError('no object lock default retention', local.id);
          },
        }),
    });
    source.events = [ev('a', 1)];
    clock.t = at(5).getTime();
    await collect(deps);
    const [f] = (await findings(raw)) ?? [];
    expect(f).toMatchObject({ kind: 'archive-not-immutable', severity: 'critical' });
    expect(f?.message).toContain('no object lock');
    await nothingWritten(dir, raw);
  });

  it('an archive outside the jurisdiction: a finding, nothing written', async () => {
    const { deps, source, clock, dir, raw } = await setup({
      archive: (local) =>
        Object.assign(new Wrapped(local), {
          location: async () => ({ cloud: 'aws' as const, region: 'us-east-1' }),
        }),
    });
    source.events = [ev('a', 1)];
    clock.t = at(5).getTime();
    await collect(deps);
    expect((await findings(raw))?.map((f) => f.kind)).toEqual(['archive-outside-jurisdiction']);
    await nothingWritten(dir, raw);
  });

  it('an archive of unknown location that does not declare itself local: a finding, nothing written', async () => {
    const { deps, source, clock, dir, raw } = await setup({
      archive: (local) => Object.assign(new Wrapped(local), { compliantStorage: undefined }),
    });
    source.events = [ev('a', 1)];
    clock.t = at(5).getTime();
    await collect(deps);
    expect((await findings(raw))?.map((f) => f.kind)).toEqual(['archive-outside-jurisdiction']);
    await nothingWritten(dir, raw);
  });

  it('a local directory without an explicit local-evidence allowance: a finding, nothing written', async () => {
    const { deps, source, clock, dir, raw } = await setup({ allowLocalEvidence: false });
    source.events = [ev('a', 1)];
    clock.t = at(5).getTime();
    const result = await collect(deps);
    expect(result.outcomes[0]).toMatchObject({ status: 'skipped' });
    const [f] = (await findings(raw)) ?? [];
    expect(f).toMatchObject({ kind: 'archive-not-compliant', severity: 'critical' });
    expect(f?.message).toContain('not compliant storage');
    await nothingWritten(dir, raw);
  });

  it('an in-jurisdiction compliant archive is used and manifests say compliantStorage: true', async () => {
    const { deps, source, clock, local, raw } = await setup({
      archive: (l) =>
        Object.assign(new Wrapped(l), {
          compliantStorage: undefined,
          location: async () => ({ cloud: 'aws' as const, region: 'eu-central-1' }),
        }),
    });
    source.events = [ev('a', 1)];
    clock.t = at(5).getTime();
    const result = await collect(deps);
    expect(result.outcomes[0]).toMatchObject({ status: 'archived', compliantStorage: true });
    const [manifestEntry] = (await local.list(clusterPrefix(cluster.id))).filter((e) =>
      e.key.endsWith('.json'),
    );
    expect(parseManifest((await local.get(manifestEntry!.key))!).compliantStorage).toBe(true);
    expect(await findings(raw)).toBeUndefined();
  });
});

describe('audit verify', () => {
  async function archivedChain(archive?: (local: LocalArchiveStore) => ArchiveStore) {
    const env = await setup(archive ? { archive } : {});
    env.source.events = Array.from({ length: 16 }, (_, i) => ev(`a${i}`, i));
    env.clock.t = at(20).getTime();
    await collect(env.deps, OPTS);
    const entries = await env.local.list(clusterPrefix(cluster.id));
    const chunk = (seq: number) =>
      entries.find((e) => parseArchiveKey(cluster.id, e.key)?.seq === seq && !e.key.endsWith('.json'))!.key;
    return { ...env, chunk };
  }

  const cases: {
    name: string;
    mutate: (env: Awaited<ReturnType<typeof archivedChain>>) => Promise<void>;
    expected: { seq: number; problem: string };
  }[] = [
    {
      name: 'altered chunk bytes',
      mutate: async ({ dir, chunk }) => tamper(dir, chunk(2), new TextEncoder().encode('tampered')),
      expected: { seq: 2, problem: 'altered' },
    },
    {
      name: 'deleted chunk',
      mutate: async ({ dir, chunk }) => unlink(join(dir, ...chunk(3).split('/'))),
      expected: { seq: 3, problem: 'missing' },
    },
    {
      name: 'reordered chunks (files swapped)',
      mutate: async ({ dir, chunk }) => {
        const [a, b] = [join(dir, ...chunk(2).split('/')), join(dir, ...chunk(3).split('/'))];
        await rename(a, `${a}.swap`);
        await rename(b, a);
        await rename(`${a}.swap`, b);
      },
      expected: { seq: 2, problem: 'altered' },
    },
    {
      name: 'deleted chunk and manifest in the middle',
      mutate: async ({ dir, chunk }) => {
        await unlink(join(dir, ...chunk(2).split('/')));
        await unlink(join(dir, ...`${chunk(2)}.manifest.json`.split('/')));
      },
      expected: { seq: 2, problem: 'gap' },
    },
    {
      name: 'deleted last chunk and manifest (the head names it)',
      mutate: async ({ dir, chunk }) => {
        await unlink(join(dir, ...chunk(4).split('/')));
        await unlink(join(dir, ...`${chunk(4)}.manifest.json`.split('/')));
      },
      expected: { seq: 4, problem: 'missing' },
    },
    {
      name: 'rewritten manifest with a broken link',
      mutate: async ({ dir, chunk, local }) => {
        const key = `${chunk(3)}.manifest.json`;
        const m = parseManifest((await local.get(key))!);
        await tamper(
          dir,
          key,
          new TextEncoder().encode(JSON.stringify({ ...m, previousSha256: 'f'.repeat(64) })),
        );
      },
      expected: { seq: 3, problem: 'broken-link' },
    },
  ];

  for (const c of cases) {
    it(`fails on ${c.name}, naming the first bad chunk`, async () => {
      const env = await archivedChain();
      expect((await verify(env.deps)).ok).toBe(true);
      await c.mutate(env);
      const result = await verify(env.deps);
      expect(result.ok).toBe(false);
      const problem = result.clusters[0]?.firstProblem;
      expect(problem).toMatchObject({ seq: c.expected.seq, problem: c.expected.problem });
      if (c.expected.problem !== 'gap') {
        expect(problem?.key).toBe(env.chunk(c.expected.seq));
      }
      expect(result.clusters[0]?.chunks).toBe(c.expected.seq - 1);
    });
  }

  it('fails on a second version of a chunk (a locked bucket accepts newer versions)', async () => {
    let extra: string | undefined;
    const env = await archivedChain((local) =>
      Object.assign(new Wrapped(local), {
        list: async (prefix: string) =>
          (await local.list(prefix)).map((e) =>
            e.key === extra ? { ...e, versions: ['newer', ...e.versions] } : e,
          ),
      }),
    );
    extra = env.chunk(3);
    const result = await verify(env.deps);
    expect(result.clusters[0]?.firstProblem).toMatchObject({
      seq: 3,
      key: env.chunk(3),
      problem: 'extra-version',
    });
  });
});

describe('audit verify outcomes', () => {
  it('reports an archive it cannot read as unverified with the error, never as broken', async () => {
    const { deps, source, clock } = await setup();
    source.events = Array.from({ length: 6 }, (_, i) => ev(`a${i}`, i));
    clock.t = at(10).getTime();
    await collect(deps, OPTS);
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:9'), { code: 'ECONNREFUSED' });
    const down = new Wrapped(new LocalArchiveStore(tmpdir()));
    down.list = async () => {
      throw refused;
    };

    const result = await verify({ ...deps, archives: { for: async () => down } });

    expect(result.ok).toBe(false);
    expect(result.counts).toEqual({ intact: 0, broken: 0, unverified: 1, 'nothing-archived': 0 });
    expect(result.clusters[0]).toMatchObject({ status: 'unverified', ok: false });
    expect(result.clusters[0]?.firstProblem).toBeUndefined();
    expect(result.clusters[0]?.error?.message).toContain('ECONNREFUSED');
    const text = renderVerify(result);
    expect(text).toMatch(/UNVERIFIED +aws\/111111111111\/eu-central-1\/payments: .*ECONNREFUSED/);
    expect(text).not.toMatch(/broken\.|BROKEN|intact +aws/);
    expect(summaryLine(verifyCounts(result), 1)).toBe(
      'Summary: 1 unverified (exit 1: completed with failures)',
    );
  });

  it('reports a store that fails mid-chain as unverified, counting the chunks checked before', async () => {
    const { deps, source, clock, local } = await setup();
    source.events = Array.from({ length: 12 }, (_, i) => ev(`a${i}`, i));
    clock.t = at(15).getTime();
    await collect(deps, OPTS);
    const flaky = new Wrapped(local);
    let gets = 0;
    flaky.get = async (key, o) => {
      // Chunk 1: manifest and body read; the store then fails (a 503, a reset connection).
      if (++gets > 2) throw new Error('503 slow down');
      return local.get(key, o);
    };

    const result = await verify({ ...deps, archives: { for: async () => flaky } });

    expect(result.clusters[0]).toMatchObject({ status: 'unverified', ok: false, chunks: 1 });
    expect(result.clusters[0]?.error?.message).toContain('503');
  });

  it('reports clusters with nothing archived as nothing archived, never intact, and counts each kind', async () => {
    const { deps, source, clock, raw } = await setup();
    const others: Cluster[] = [
      { ...cluster, id: 'aws/111111111111/eu-central-1/quiet', name: 'quiet', auditLogging: false },
      { ...cluster, id: 'aws/111111111111/us-east-1/nowhere', name: 'nowhere', jurisdiction: 'unassigned' },
      { ...cluster, id: 'kubeconfig/lab/lab', cloud: 'kubeconfig', name: 'lab', auditLogging: null },
      { ...cluster, id: 'aws/111111111111/eu-central-1/fresh', name: 'fresh' },
    ];
    await raw.putMany(
      INVENTORY,
      others.map((c) => ({ key: c.id, value: c })),
    );
    source.events = Array.from({ length: 6 }, (_, i) => ev(`a${i}`, i));
    clock.t = at(10).getTime();
    await collect(deps, { ...OPTS, clusterId: cluster.id });
    const touched: string[] = [];
    const archives = {
      for: async (c: Cluster) => {
        touched.push(c.id);
        return deps.archives.for(c);
      },
    };

    const result = await verify({ ...deps, archives });

    const byId = Object.fromEntries(result.clusters.map((c) => [c.clusterId, c]));
    expect(byId[cluster.id]).toMatchObject({ status: 'intact', chunks: 2, events: 6 });
    expect(byId['aws/111111111111/eu-central-1/quiet']).toMatchObject({
      status: 'nothing-archived',
      reason: 'control-plane audit logging is off',
    });
    expect(byId['aws/111111111111/us-east-1/nowhere']).toMatchObject({
      status: 'nothing-archived',
      reason: 'cluster is in no configured jurisdiction',
    });
    expect(byId['kubeconfig/lab/lab']).toMatchObject({
      status: 'nothing-archived',
      reason: 'kubeconfig cluster: no audit log source',
    });
    expect(byId['aws/111111111111/eu-central-1/fresh']).toMatchObject({
      status: 'nothing-archived',
      reason: 'no chunk archived yet',
    });
    // Clusters collect never archives are not looked up in any store.
    expect(touched.sort()).toEqual([cluster.id, 'aws/111111111111/eu-central-1/fresh'].sort());
    expect(result.counts).toEqual({ intact: 1, broken: 0, unverified: 0, 'nothing-archived': 4 });
    expect(result.ok).toBe(true);
    const text = renderVerify(result);
    expect(text).toMatch(/nothing +kubeconfig\/lab\/lab: nothing archived \(kubeconfig cluster/);
    expect(text).not.toMatch(/intact +aws\/111111111111\/eu-central-1\/quiet/);
    expect(summaryLine(verifyCounts(result), 0)).toBe('Summary: 1 intact, 4 nothing archived (exit 0: done)');
  });
});

describe('audit dedup keys', () => {
  /** Two real Event lines of one watch request: same auditID, stages ResponseStarted and ResponseComplete. */
  const stages = readFileSync(new URL('../fixtures/audit/k8s-audit-stages.ndjson', import.meta.url), 'utf8')
    .trim()
    .split('\n');
  /** An event as a source with record identities gives it (`recordId` like CloudWatch's eventId). */
  function record(raw: string, minutes: number, recordId: string, arrivalMinutes = minutes): SourceEvent {
    let auditID: string | null = null;
    let stage: string | null = null;
    try {
      ({ auditID, stage } = JSON.parse(raw));
    } catch {}
    return {
      auditID,
      stage,
      recordId,
      timestamp: at(minutes).toISOString(),
      raw,
      arrival: T0 + arrivalMinutes * MIN,
    };
  }
  /** Every archived line, sorted. */
  async function archivedLines(local: LocalArchiveStore): Promise<string[]> {
    const lines: string[] = [];
    for (const { key } of await local.list(clusterPrefix(cluster.id))) {
      if (parseArchiveKey(cluster.id, key)?.kind !== 'chunk') continue;
      lines.push(
        ...gunzipSync((await local.get(key))!)
          .toString('utf8')
          .split('\n')
          .slice(0, -1),
      );
    }
    return lines.sort();
  }

  it('archives every stage of one request (same auditID), and drops their re-reads', async () => {
    const { deps, source, clock, local } = await setup();
    const [started, complete] = stages as [string, string];
    source.events = [record(started, 1, 'e-1'), record(complete, 2, 'e-2')];
    clock.t = at(5).getTime();
    const first = await collect(deps, OPTS);
    clock.t = at(8).getTime();
    const second = await collect(deps, OPTS);

    expect(first.outcomes[0]).toMatchObject({ status: 'archived', events: 2, duplicates: 0 });
    expect(second.outcomes[0]).toMatchObject({ status: 'up-to-date', events: 0, duplicates: 2 });
    expect(await archivedLines(local)).toEqual([started, complete].sort());
  });

  it('archives identical unparseable lines that are distinct records, and drops their re-reads', async () => {
    const { deps, source, clock, local } = await setup();
    const line =
      '{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"5f4c2b0e-trunc';
    source.events = [record(line, 1, 'e-1'), record(line, 1, 'e-2'), record(line, 2, 'e-3', 6)];
    clock.t = at(5).getTime();
    const first = await collect(deps, OPTS);
    clock.t = at(9).getTime();
    const second = await collect(deps, OPTS);

    expect(first.outcomes[0]).toMatchObject({ status: 'archived', events: 2, malformed: 2 });
    expect(second.outcomes[0]).toMatchObject({ status: 'archived', events: 1, duplicates: 2 });
    expect(await archivedLines(local)).toEqual([line, line, line]);
  });

  it('reads the seen shards of the previous version (bare auditID keys) without re-archiving', async () => {
    const { deps, source, clock, local, raw } = await setup();
    const [started, complete] = stages as [string, string];
    source.events = [record(started, 1, 'e-1')];
    clock.t = at(3).getTime();
    await collect(deps, OPTS);
    // Rewrite the seen shards as the previous version wrote them: hashes of the bare auditID, no mark.
    const items = await raw.list<SeenShard>(AUDIT_NS, { prefix: seenPrefix(cluster.id) });
    const auditID = JSON.parse(started).auditID as string;
    await raw.putMany(
      AUDIT_NS,
      items.map(({ key }) => ({ key, value: { '1': seenHash(auditID) } })),
    );
    source.events.push(record(complete, 2, 'e-2'));
    clock.t = at(6).getTime();
    const again = await collect(deps, OPTS);

    // The re-read ResponseStarted matches the legacy key; ResponseComplete (new) is archived.
    expect(again.outcomes[0]).toMatchObject({ status: 'archived', events: 1, duplicates: 1 });
    expect(await archivedLines(local)).toEqual([started, complete].sort());
    expect((await verify(deps)).ok).toBe(true);
  });

  it('keeps every stage and distinct record when runs are killed at random points (40 trials)', async () => {
    const [started, complete] = stages as [string, string];
    for (let trial = 0; trial < 40; trial++) {
      const random = prng(1_000 + trial);
      const faults = new Faults();
      const { deps, source, clock, local } = await setup({ faults });
      const events: SourceEvent[] = [];
      for (let i = 0; i < 30; i++) {
        const minute = i * 0.75;
        const late = random() < 0.15 ? minute + 1 + random() * 6 : minute;
        const id = `${trial}-${i}`;
        const line =
          i % 7 === 3
            ? 'not json'
            : (i % 2 === 0 ? started : complete).replace(
                'dcd6f8b9-346f-4c09-8273-e45ec3e5129d',
                `req-${Math.floor(i / 2)}`,
              );
        events.push(record(line, minute, id, late));
      }
      source.events = events;
      for (const minutes of [10, 20, 30]) {
        clock.t = at(minutes).getTime();
        faults.step = 0;
        faults.crashAt = Math.floor(random() * 30);
        faults.after = random() < 0.5;
        await collect(deps, OPTS);
        faults.crashAt = -1;
        expect((await collect(deps, OPTS)).outcomes[0]?.status).not.toBe('failed');
        const expected = events
          .filter((e) => e.arrival <= clock.t && Date.parse(e.timestamp) < clock.t)
          .map((e) => e.raw)
          .sort();
        expect(await archivedLines(local), `trial ${trial} at ${minutes} min`).toEqual(expected);
      }
      expect((await verify(deps)).ok).toBe(true);
    }
  });
});
