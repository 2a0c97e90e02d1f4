/**
 * Pins the bytes the audit pipeline writes for a fixed input, so that speed work on the
 * chunker and the dedup loop cannot change them unnoticed: the SHA-256 of every chunk, its
 * key, counts and timestamps, and (through `collect`) the digest of every archived object and
 * every seen shard. The input mixes what the hot path special-cases: multi-byte UTF-8, a raw
 * text with line breaks, a line larger than a write batch, unparseable lines and timestamps,
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
        raw: JSON.stringify({ auditID: 'big', pad: 'é'.repeat(200_000) }),
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
          "bytes": 2096472,
          "events": 3908,
          "firstTimestamp": "2026-11-21T10:00:00.000Z",
          "ids": "c4c63b5f9258dd1596829c9b9e47ea2643fc3db7407ec5bad3a6c370fc03d535",
          "key": "audit/aws/111111111111/eu-central-1/payments/2026/11/21/00000001.ndjson.gz",
          "lastTimestamp": "2026-11-21T10:03:14.700Z",
          "malformed": 5,
          "sha256": "26641b9d2fc387f28caa363431d12cfdf27c285ea754f7ef1390a5ec3c694f7d",
        },
        {
          "bytes": 2097052,
          "events": 4840,
          "firstTimestamp": "2026-11-21T10:03:14.750Z",
          "ids": "2a8217b5dcb42aa7f9caf95de66d87ffd6d502252654cacbf4011531ae09ddcb",
          "key": "audit/aws/111111111111/eu-central-1/payments/2026/11/21/00000002.ndjson.gz",
          "lastTimestamp": "2026-11-21T10:07:15.900Z",
          "malformed": 6,
          "sha256": "73b33e8c800ead9ed04e0f61bdee695f9833b74639c0c083b440f9342dbe915b",
        },
        {
          "bytes": 1423769,
          "events": 3293,
          "firstTimestamp": "2026-11-21T10:07:15.950Z",
          "ids": "1a1e1fa375e5c232616a6e94beca53d742e77107d420b511f21e85ed62842f76",
          "key": "audit/aws/111111111111/eu-central-1/payments/2026/11/21/00000003.ndjson.gz",
          "lastTimestamp": "2026-11-21T10:09:59.950Z",
          "malformed": 4,
          "sha256": "f5b2f7b0ff8271bd5a175ebbd72a343e30d4acad9b4952a4cafaa9d70060b7a7",
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
            "chunks": 4,
            "compliantStorage": false,
            "duplicates": 7,
            "events": 7993,
            "head": 4,
            "malformed": 10,
            "recovered": 0,
            "status": "archived",
          },
          "objects": {
            "audit/aws/111111111111/eu-central-1/payments/2026/11/21/00000001.ndjson.gz": "a80c80844ce83394c15335a6227b65f5388cad97bf037c31fcb45cf2dfcb6c85",
            "audit/aws/111111111111/eu-central-1/payments/2026/11/21/00000001.ndjson.gz.manifest.json": "d51d8d51da6dd47c3c94f64f2e19507ac191f9cfd748f3f8d539ced86014bd53",
            "audit/aws/111111111111/eu-central-1/payments/2026/11/21/00000002.ndjson.gz": "2ca00ec7e442ed368fc2b0ff762566a25eb30afe67a63dc54188c72150c145e6",
            "audit/aws/111111111111/eu-central-1/payments/2026/11/21/00000002.ndjson.gz.manifest.json": "687f0bdfa3976024fa56ef3b95a335671b8dea076de4bc5cc1490802b0259de1",
            "audit/aws/111111111111/eu-central-1/payments/2026/11/21/00000003.ndjson.gz": "ef8955e8efcaefec18881a84e9fa5c9634d25e8993f631c7bdff1e218a7ec2d0",
            "audit/aws/111111111111/eu-central-1/payments/2026/11/21/00000003.ndjson.gz.manifest.json": "591a18ef4d0fc8e61a8cde6582f5ddf0d2c7ff68de53594d78452afbce730df4",
            "audit/aws/111111111111/eu-central-1/payments/2026/11/21/00000004.ndjson.gz": "06d8967ddd3f50277bb3e1f42ca4e278e507755640d14d627ba7faba731fee5c",
            "audit/aws/111111111111/eu-central-1/payments/2026/11/21/00000004.ndjson.gz.manifest.json": "1c32e94324d621c8e5805044c013c09cf45ce94de518eca97d17e12cc6b5d741",
            "audit/aws/111111111111/eu-central-1/payments/2026/11/21/00000005.ndjson.gz": "d82f7301ea1779fdedc38c55434d4948e467cfb392592f3904a3833956f0ce1a",
            "audit/aws/111111111111/eu-central-1/payments/2026/11/21/00000005.ndjson.gz.manifest.json": "58f33a9393b6994abdff2db13bba6e2954d23a6590cdb352c0204c7383da43ec",
            "audit/aws/111111111111/eu-central-1/payments/2026/11/21/00000006.ndjson.gz": "6fd8680ac6ce5e4d23b0ed14167f81ef550ff616130404c62b62d841f975d519",
            "audit/aws/111111111111/eu-central-1/payments/2026/11/21/00000006.ndjson.gz.manifest.json": "402d29e67a9d9f6cc2b2c1bd00c1b5960b2f4ee364249ea26796d535abb664aa",
          },
          "second": {
            "chunks": 2,
            "compliantStorage": false,
            "duplicates": 8005,
            "events": 4036,
            "head": 6,
            "malformed": 5,
            "recovered": 0,
            "status": "archived",
          },
          "seen": {
            "seen/aws/111111111111/eu-central-1/payments/202611211000/0": "3d941cccc40e29c574655134af5db4048a100e9214923e110d470970744de9e1",
            "seen/aws/111111111111/eu-central-1/payments/202611211001/0": "4b3f664bbc8165e1ea04e09c1970effea42b4e1bea76f889ef08d1d956558f32",
            "seen/aws/111111111111/eu-central-1/payments/202611211002/0": "c27ad93e0000841ffaae6e882ea06e285f09460848e06cb4254f2f718a45a00d",
            "seen/aws/111111111111/eu-central-1/payments/202611211003/0": "1aaedecab4ed42fb93d4f657cfbb7824d43fa700639e6f8db403067094e359e6",
            "seen/aws/111111111111/eu-central-1/payments/202611211004/0": "3fc78cfd75ae95646837e2400bdf66c34bf58c824b03e101127acbddd832cc30",
            "seen/aws/111111111111/eu-central-1/payments/202611211005/0": "dc88b56e0194985e9fda09adda7d09b01c16d4afff67a73462c7c33f90a96ebf",
            "seen/aws/111111111111/eu-central-1/payments/202611211006/0": "6db213b2e0594c0a674abe0eead586a52d719732fbe587d6771571cdddc5c10e",
            "seen/aws/111111111111/eu-central-1/payments/202611211007/0": "6be653ca0cc5da3d47ec673f9f708312982dbd998109d489b849be7e5bb9e502",
            "seen/aws/111111111111/eu-central-1/payments/202611211008/0": "c9c14d6e2e896521ddb12aef0fcf8718f154fa94679040481695a6f875f6b896",
            "seen/aws/111111111111/eu-central-1/payments/202611211009/0": "2bcff57dc0f25fb0ffe21ef836e58facaf66f7b9cb6572ea6131bbd458f2c4dd",
            "seen/aws/111111111111/eu-central-1/payments/202611211010/0": "2056f802c208cae1e9ff2c72a5d9775db348aed6595f1b369ba4722b6d263a65",
            "seen/aws/111111111111/eu-central-1/payments/202611211020/0": "65e407d6b1d6d175dd75117869fe37d9a1b6e876277a6bfae94fa5a8ef543116",
          },
        }
      `);
    } finally {
      await store.close();
    }
  });
});
