/**
 * Pins the bytes the audit pipeline writes for a fixed input, so that speed work on the
 * chunker and the dedup loop cannot change them unnoticed: the SHA-256 of every chunk, its
 * key, counts and timestamps, and (through `collect`) the digest of every archived object and
 * every seen shard. The input mixes what the hot path special-cases: multi-byte UTF-8, a raw
 * text with line breaks, a line larger than a write batch (1.2 MB), unparseable lines and timestamps,
 * an event already archived (a duplicate), events of one auditID in two stages.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { type Chunk, chunkEvents, sha256Hex } from '../../shared/audit/chunks.ts';
import { LocalArchiveStore } from '../../shared/audit/local-store.ts';
import { Jurisdiction } from '../../shared/config/schema.ts';
import { type AuditJobDeps, collect } from '../../shared/jobs/audit.ts';
import type { AuditEvent, AuditLogSource } from '../../shared/ports.ts';
import { Residency } from '../../shared/residency/index.ts';
import { silentLogger } from '../../shared/runtime/logger.ts';
import { AUDIT_NS, INVENTORY } from '../../shared/state/records.ts';
import { SqliteStateStore } from '../../shared/state/sqlite.ts';
import { auditCluster } from './audit-builders.ts';

const T0 = Date.parse('2026-11-21T10:00:00Z');
const VERBS = ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete'];
const NAMES = ['payments', 'zahlungsverkehr-ä', 'счета', '支払い', 'café-☕', 'plain'];

/** A deterministic PRNG (mulberry32): the input is the same on every machine. */
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

/** `count` events, about 0.5 KB each, 50 ms apart, with the special cases at fixed positions. */
function fixedEvents(count: number): AuditEvent[] {
  const random = prng(7);
  const events: AuditEvent[] = [];
  for (let i = 0; i < count; i++) {
    const timestamp = new Date(T0 + i * 50).toISOString();
    const auditID = `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`;
    const name = NAMES[Math.floor(random() * NAMES.length)] as string;
    const verb = VERBS[Math.floor(random() * VERBS.length)] as string;
    const pad = 'x'.repeat(Math.floor(random() * 600));
    const raw = JSON.stringify({ kind: 'Event', auditID, stage: 'ResponseComplete', verb, name, pad });
    events.push({ auditID, stage: 'ResponseComplete', recordId: `rec-${i}`, timestamp, raw });
    if (i % 997 === 5) {
      // The same request in its first stage: another key, another line.
      events.push({
        auditID,
        stage: 'RequestReceived',
        timestamp,
        raw: raw.replace('ResponseComplete', 'x'),
      });
    }
    if (i % 1_499 === 3) events.push({ auditID: null, timestamp, raw: `{"broken": ${i}` });
    if (i % 2_003 === 11) events.push({ auditID: null, timestamp: 'not a time', raw: `line\r\nbreak ${i}` });
    if (i === 2_500) {
      events.push({
        auditID: 'big',
        timestamp,
        raw: JSON.stringify({ auditID: 'big', pad: 'é'.repeat(600_000) }),
      });
    }
    // A re-read of an earlier event (same key): `collect` drops it as a duplicate.
    if (i % 1_000 === 999) events.push({ ...(events[events.length - 40] as AuditEvent) });
  }
  return events;
}

async function* pagesOf(events: readonly AuditEvent[], size: number): AsyncGenerator<AuditEvent[]> {
  for (let i = 0; i < events.length; i += size) yield events.slice(i, i + size);
}

const EVENTS = fixedEvents(12_000);

/** What a chunk is, minus its bytes (their SHA-256 stands for them). */
const summary = (c: Chunk) => ({
  key: c.key,
  sha256: c.sha256,
  events: c.events,
  malformed: c.malformed,
  bytes: c.bytes,
  firstTimestamp: c.firstTimestamp,
  lastTimestamp: c.lastTimestamp,
  ids: sha256Hex(c.ids.map((id) => `${id.key} ${id.timestamp}`).join('\n')),
});

describe('audit chunk bytes (pinned)', () => {
  it('writes the same chunks for the same input, however it is paged', async () => {
    const runs: ReturnType<typeof summary>[][] = [];
    for (const pageSize of [1, 1_000, 20_000]) {
      const chunks: ReturnType<typeof summary>[] = [];
      for await (const c of chunkEvents(pagesOf(EVENTS, pageSize), {
        clusterId: auditCluster.id,
        firstSeq: 1,
        maxEvents: 5_000,
        maxBytes: 2 * 1024 * 1024,
      })) {
        expect(sha256Hex(c.body)).toBe(c.sha256);
        chunks.push(summary(c));
      }
      runs.push(chunks);
    }
    expect(runs[1]).toEqual(runs[0]);
    expect(runs[2]).toEqual(runs[0]);
    expect(runs[0]).toMatchInlineSnapshot(`
      [
        {
          "bytes": 1096742,
          "events": 2510,
          "firstTimestamp": "2026-11-21T10:00:00.000Z",
          "ids": "7057817025166b6c0446170b2ee8559539712ec61725283c489db3b123ceae4d",
          "key": "audit/aws/111111111111/eu-central-1/payments/2026/11/21/00000001.ndjson.gz",
          "lastTimestamp": "2026-11-21T10:02:05.000Z",
          "malformed": 4,
          "sha256": "f673ac47595d83417b5c8df2e19a79120a1c2ce2176ad23484580f874dc37504",
        },
        {
          "bytes": 2096910,
          "events": 2079,
          "firstTimestamp": "2026-11-21T10:02:05.000Z",
          "ids": "05a7fd539d2a7c2cc5f77d0c69fba317a3c6a03f63f0f103adbc370d26b88951",
          "key": "audit/aws/111111111111/eu-central-1/payments/2026/11/21/00000002.ndjson.gz",
          "lastTimestamp": "2026-11-21T10:03:48.550Z",
          "malformed": 3,
          "sha256": "1ecf55cd4dc242959b1f8c3ec7fe97fe7c7bb1bdb207af63483bc2a3d322dfbe",
        },
        {
          "bytes": 2096801,
          "events": 4830,
          "firstTimestamp": "2026-11-21T10:03:48.600Z",
          "ids": "5970e0f008f1f93658dd870035b583236f50551d6c6869cdde8b81eba29acd73",
          "key": "audit/aws/111111111111/eu-central-1/payments/2026/11/21/00000003.ndjson.gz",
          "lastTimestamp": "2026-11-21T10:07:49.300Z",
          "malformed": 5,
          "sha256": "686a8c45bd761146eace5086c615c4ff2b26083fa4a69b62e9cde420ddf65f5e",
        },
        {
          "bytes": 1126840,
          "events": 2622,
          "firstTimestamp": "2026-11-21T10:07:49.350Z",
          "ids": "4852d4260fc229a93fbca42b3a47acbd8abe94094c91cf922396e7a0346171c8",
          "key": "audit/aws/111111111111/eu-central-1/payments/2026/11/21/00000004.ndjson.gz",
          "lastTimestamp": "2026-11-21T10:09:59.950Z",
          "malformed": 3,
          "sha256": "f07b366816c76d96f8cf13023504d819106397d7d24bb941f00775d82c0ccbdd",
        },
      ]
    `);
  });

  it('fails the pin when one byte of one event changes', async () => {
    const changed = EVENTS.map((e, i) => (i === 6_000 ? { ...e, raw: `${e.raw} ` } : e));
    const digests = async (events: AuditEvent[]) => {
      const out: string[] = [];
      for await (const c of chunkEvents(pagesOf(events, 1_000), { clusterId: auditCluster.id, firstSeq: 1 }))
        out.push(c.sha256);
      return out;
    };
    const [before, after] = [await digests(EVENTS), await digests(changed)];
    expect(after).toHaveLength(before.length);
    expect(after).not.toEqual(before);
  });
});

describe('audit collect output (pinned)', () => {
  let dir: string | undefined;
  afterEach(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
    dir = undefined;
  });

  it('archives the same objects and seen shards for the same input, over two runs', async () => {
    dir = await mkdtemp(join(tmpdir(), 'fleetward-audit-pin-'));
    const store = new SqliteStateStore({ path: ':memory:' });
    try {
      await store.putMany(INVENTORY, [{ key: auditCluster.id, value: auditCluster }]);
      const archive = new LocalArchiveStore(join(dir, 'archive'));
      // Run 1 serves the first two thirds, run 2 everything (its overlap re-reads the tail).
      let served = EVENTS.slice(0, 8_000);
      const source: AuditLogSource = {
        enabled: async () => ({ enabled: true }),
        read: () => pagesOf(served, 500),
      };
      const deps = (now: number): AuditJobDeps => ({
        config: { jurisdictions: { eu: Jurisdiction.parse({ preset: 'eu-gdpr' }) } },
        store,
        residency: new Residency({ eu: { preset: 'eu-gdpr' } }),
        logger: silentLogger,
        clock: { now: () => new Date(now) },
        sources: { for: () => source },
        archives: { for: async () => archive },
        allowLocalEvidence: true,
      });
      const tuning = { maxEvents: 3_000, maxBytes: 1024 * 1024 };
      const first = await collect(deps(T0 + 10 * 60_000), tuning);
      served = EVENTS;
      const second = await collect(deps(T0 + 20 * 60_000), tuning);
      const outcome = (r: typeof first) => {
        const { clusterId: _, ...o } = r.outcomes[0] as Record<string, unknown>;
        return o;
      };
      const objects: Record<string, string> = {};
      for (const entry of await archive.list('audit/')) {
        const bytes = await archive.get(entry.key);
        // Manifests carry their creation time and the object version: pin what the chain fixes.
        objects[entry.key] = entry.key.endsWith('.manifest.json')
          ? sha256Hex(
              JSON.stringify({
                ...JSON.parse(Buffer.from(bytes ?? []).toString()),
                createdAt: 0,
                version: 0,
              }),
            )
          : sha256Hex(bytes ?? new Uint8Array());
      }
      const seen: Record<string, string> = {};
      for (const item of await store.list<Record<string, string>>(AUDIT_NS, { prefix: 'seen/' }))
        seen[item.key] = sha256Hex(JSON.stringify(item.value));
      expect({ first: outcome(first), second: outcome(second), objects, seen }).toMatchInlineSnapshot(`
        {
          "first": {
            "chunks": 6,
            "compliantStorage": false,
            "duplicates": 7,
            "events": 7993,
            "head": 6,
            "malformed": 10,
            "recovered": 0,
            "status": "archived",
          },
          "objects": {
            "audit/aws/111111111111/eu-central-1/payments/2026/11/21/00000001.ndjson.gz": "a80c80844ce83394c15335a6227b65f5388cad97bf037c31fcb45cf2dfcb6c85",
            "audit/aws/111111111111/eu-central-1/payments/2026/11/21/00000001.ndjson.gz.manifest.json": "d51d8d51da6dd47c3c94f64f2e19507ac191f9cfd748f3f8d539ced86014bd53",
            "audit/aws/111111111111/eu-central-1/payments/2026/11/21/00000002.ndjson.gz": "582a951976a6b14deae68a2d4dbb634280f9da1396467787f67106edae4d7b13",
            "audit/aws/111111111111/eu-central-1/payments/2026/11/21/00000002.ndjson.gz.manifest.json": "36f678daca53ccd41c84f5b24978f381c698ca5784c615a0003353c2e881a2cf",
            "audit/aws/111111111111/eu-central-1/payments/2026/11/21/00000003.ndjson.gz": "fc767c859fa5bd064f97cc09c261fa00d87d0956b0762a6b1964590471ab70f3",
            "audit/aws/111111111111/eu-central-1/payments/2026/11/21/00000003.ndjson.gz.manifest.json": "5caeede8adc98cd39fcf131c4e292606081246a82ca48714f51dcaaeb10c4f8d",
            "audit/aws/111111111111/eu-central-1/payments/2026/11/21/00000004.ndjson.gz": "f83260881d45cfacca44de0c926601abb130121dccb881fb07963be504875db6",
            "audit/aws/111111111111/eu-central-1/payments/2026/11/21/00000004.ndjson.gz.manifest.json": "b19d319587c63624f8cb64ed1321a7382b9be5bd4b32c20a92f54fb8840dc663",
            "audit/aws/111111111111/eu-central-1/payments/2026/11/21/00000005.ndjson.gz": "e0bd9e178c75b1eb3ffec54f2b54f1ec7750f95e30ec5b92244b67283db177fa",
            "audit/aws/111111111111/eu-central-1/payments/2026/11/21/00000005.ndjson.gz.manifest.json": "a943ac063f2debd2a96c06ab799766dbed5214de711d35baa509a44e9e19578e",
            "audit/aws/111111111111/eu-central-1/payments/2026/11/21/00000006.ndjson.gz": "3c4e412e2e43c41bbf77b3d1067f9ed0fa3f11fcf1afd3abc4a2816871fa00e4",
            "audit/aws/111111111111/eu-central-1/payments/2026/11/21/00000006.ndjson.gz.manifest.json": "7637e4320eeb5a4ae4a02ea549549b35f10e317cbcf3486321fc82a3cccaf81c",
            "audit/aws/111111111111/eu-central-1/payments/2026/11/21/00000007.ndjson.gz": "d82f7301ea1779fdedc38c55434d4948e467cfb392592f3904a3833956f0ce1a",
            "audit/aws/111111111111/eu-central-1/payments/2026/11/21/00000007.ndjson.gz.manifest.json": "ab68edc7e4f65809bbdee7ebc04c758beb450ce1ecf9faa231ce71e8b71504a4",
            "audit/aws/111111111111/eu-central-1/payments/2026/11/21/00000008.ndjson.gz": "6fd8680ac6ce5e4d23b0ed14167f81ef550ff616130404c62b62d841f975d519",
            "audit/aws/111111111111/eu-central-1/payments/2026/11/21/00000008.ndjson.gz.manifest.json": "f2a39fd82e80c74357b173fdb0a2c1454a738c9a092459286a84f62182c56f95",
          },
          "second": {
            "chunks": 2,
            "compliantStorage": false,
            "duplicates": 8005,
            "events": 4036,
            "head": 8,
            "malformed": 5,
            "recovered": 0,
            "status": "archived",
          },
          "seen": {
            "seen/aws/111111111111/eu-central-1/payments/202611211000/0": "3d941cccc40e29c574655134af5db4048a100e9214923e110d470970744de9e1",
            "seen/aws/111111111111/eu-central-1/payments/202611211001/0": "4b3f664bbc8165e1ea04e09c1970effea42b4e1bea76f889ef08d1d956558f32",
            "seen/aws/111111111111/eu-central-1/payments/202611211002/0": "1c63921ec763ff964bd982fc15dfee63524f21e3e10ead317101452b981029ad",
            "seen/aws/111111111111/eu-central-1/payments/202611211003/0": "ac2338c3c1d33d5bc1da695219ee908d6f6fab34b35128fd87d473524830fe70",
            "seen/aws/111111111111/eu-central-1/payments/202611211004/0": "f3d384ce0eae1c1ed5f9c849798b0122a68f8f3f4d232fa7d531b542cad6ff53",
            "seen/aws/111111111111/eu-central-1/payments/202611211005/0": "4f6c797f7885c6e2aeb508b40dfe4ca4dfeee22ea54507c9230f5ec73d4ff6c2",
            "seen/aws/111111111111/eu-central-1/payments/202611211006/0": "ac4382e4140f21d6d8fec799cda55bd430825e4dbc18b83829f8153fed2ad578",
            "seen/aws/111111111111/eu-central-1/payments/202611211007/0": "c57df0a3e3a4a8eb3881fbe8190a4514756f8b89d23f7c9bb5b1ad21fd51db05",
            "seen/aws/111111111111/eu-central-1/payments/202611211008/0": "efb1c509cc3dcc858d94dcbb56702e9fae043adf8a102664fb911390fa320206",
            "seen/aws/111111111111/eu-central-1/payments/202611211009/0": "dacc5559aa785c705f3cbfae84fe455253e9f054f5eb4fecec87837a6e7e5a10",
            "seen/aws/111111111111/eu-central-1/payments/202611211010/0": "92a118e4a0187527bb3f08e9e4d6fbab1e79f3bd5f98859a5c9472eaf648d973",
            "seen/aws/111111111111/eu-central-1/payments/202611211020/0": "e260eb0832305e988d27358500b736cf6e657f4d7bad78c30c9dffabdfb85a41",
          },
        }
      `);
    } finally {
      await store.close();
    }
  });
});
