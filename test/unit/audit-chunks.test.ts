import { createHash } from 'node:crypto';
import { gunzipSync, gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { type Chunk, chunkEvents, chunkKey, eventKey, parseArchiveKey } from '../../shared/audit/chunks.ts';
import type { AuditEvent } from '../../shared/ports.ts';

const CLUSTER = 'aws/111111111111/eu-central-1/payments';

function event(i: number, extra: Partial<AuditEvent> = {}): AuditEvent {
  const timestamp = new Date(Date.parse('2026-11-21T10:00:00Z') + i * 1000).toISOString();
  const auditID = `id-${i}`;
  return {
    auditID,
    timestamp,
    raw: JSON.stringify({ auditID, verb: 'get', stageTimestamp: timestamp }),
    ...extra,
  };
}

async function* pages(events: AuditEvent[], size = 7): AsyncGenerator<AuditEvent[]> {
  for (let i = 0; i < events.length; i += size) yield events.slice(i, i + size);
}

async function all(
  events: AuditEvent[],
  options: { maxEvents?: number; maxBytes?: number } = {},
): Promise<Chunk[]> {
  const out: Chunk[] = [];
  for await (const c of chunkEvents(pages(events), { clusterId: CLUSTER, firstSeq: 1, ...options }))
    out.push(c);
  return out;
}

const lines = (c: Chunk) => gunzipSync(c.body).toString('utf8').split('\n').slice(0, -1);

describe('audit chunker', () => {
  it('bounds chunks by event count and keeps received order', async () => {
    const events = Array.from({ length: 25 }, (_, i) => event(i));
    const chunks = await all(events, { maxEvents: 10 });
    expect(chunks.map((c) => c.events)).toEqual([10, 10, 5]);
    expect(chunks.map((c) => c.seq)).toEqual([1, 2, 3]);
    expect(chunks.flatMap(lines)).toEqual(events.map((e) => e.raw));
    expect(chunks[0]?.firstTimestamp).toBe(events[0]?.timestamp);
    expect(chunks[0]?.lastTimestamp).toBe(events[9]?.timestamp);
    expect(chunks[2]?.ids.map((i) => i.key)).toEqual(['id-20', 'id-21', 'id-22', 'id-23', 'id-24']);
  });

  it('bounds chunks by uncompressed bytes (an oversized event gets a chunk of its own)', async () => {
    const events = Array.from({ length: 30 }, (_, i) => event(i));
    const maxBytes = 500;
    const chunks = await all(events, { maxBytes });
    expect(chunks.length).toBeGreaterThan(1);
    for (const c of chunks) {
      expect(c.bytes).toBeLessThanOrEqual(maxBytes);
      expect(gunzipSync(c.body).byteLength).toBe(c.bytes);
    }
    expect(chunks.flatMap(lines)).toEqual(events.map((e) => e.raw));

    const big = event(99, { raw: JSON.stringify({ auditID: 'id-99', pad: 'x'.repeat(2000) }) });
    const withBig = await all([event(1), big, event(2)], { maxBytes });
    expect(withBig.map((c) => c.events)).toEqual([1, 1, 1]);
  });

  it('round-trips through gzip and hashes exactly the stored bytes', async () => {
    const chunks = await all(
      Array.from({ length: 50 }, (_, i) => event(i)),
      { maxEvents: 20 },
    );
    for (const c of chunks) {
      expect(c.sha256).toBe(createHash('sha256').update(c.body).digest('hex'));
      expect(lines(c)).toHaveLength(c.events);
    }
  });

  it('batches lines into large gzip writes without changing a byte of the chunk', async () => {
    // ~3 000 lines of ~1 KB (several 64 KiB batches), multi-byte text and a line break.
    const events = Array.from({ length: 3_000 }, (_, i) =>
      event(
        i,
        i % 500 === 7
          ? { auditID: null, raw: `bad \u00e9\u{1f600}\nline ${i}` }
          : {
              raw: JSON.stringify({ auditID: `id-${i}`, pad: '\u00fc'.repeat(i % 700), n: i }),
            },
      ),
    );
    const chunks = await all(events, { maxEvents: 1_300 });
    expect(chunks.map((c) => c.events)).toEqual([1_300, 1_300, 400]);
    let offset = 0;
    for (const c of chunks) {
      const text = events
        .slice(offset, offset + c.events)
        .map((e) => `${/[\r\n]/.test(e.raw) ? JSON.stringify(e.raw) : e.raw}\n`)
        .join('');
      offset += c.events;
      // The same bytes as one gzip of the whole text (deflate does not depend on write sizes).
      expect(Buffer.from(c.body).equals(gzipSync(text))).toBe(true);
      expect(c.sha256).toBe(createHash('sha256').update(gzipSync(text)).digest('hex'));
      expect(c.bytes).toBe(Buffer.byteLength(text));
    }
  });

  it('keeps the bytes when gzip queues up (backpressure) and around lines larger than a batch', async () => {
    // ~6 MB per chunk (more than gzip's write queue), with 300 KB lines (more than one batch).
    const events = Array.from({ length: 4_000 }, (_, i) =>
      event(i, {
        raw:
          i % 997 === 3
            ? JSON.stringify({ auditID: `id-${i}`, big: 'y'.repeat(300_000 + i) })
            : JSON.stringify({ auditID: `id-${i}`, pad: `${i}`.repeat(300 + (i % 900)) }),
      }),
    );
    const chunks = await all(events, { maxEvents: 2_000, maxBytes: 64 * 1024 * 1024 });
    expect(chunks.map((c) => c.events)).toEqual([2_000, 2_000]);
    let offset = 0;
    for (const c of chunks) {
      const text = events
        .slice(offset, offset + c.events)
        .map((e) => `${e.raw}\n`)
        .join('');
      offset += c.events;
      expect(c.bytes).toBe(Buffer.byteLength(text));
      expect(Buffer.from(c.body).equals(gzipSync(text))).toBe(true);
      expect(c.sha256).toBe(createHash('sha256').update(c.body).digest('hex'));
    }
  });

  it('leaves `ids` empty when asked not to collect them, and nothing else changes', async () => {
    const events = Array.from({ length: 25 }, (_, i) => event(i));
    const withIds = await all(events, { maxEvents: 10 });
    const without: Chunk[] = [];
    for await (const c of chunkEvents(pages(events), {
      clusterId: CLUSTER,
      firstSeq: 1,
      maxEvents: 10,
      ids: false,
    }))
      without.push(c);
    expect(without.map((c) => c.ids)).toEqual([[], [], []]);
    expect(without.map((c) => ({ ...c, ids: [] }))).toEqual(withIds.map((c) => ({ ...c, ids: [] })));
  });

  it('keeps malformed lines verbatim and counts them', async () => {
    const bad1: AuditEvent = { auditID: null, timestamp: '2026-11-21T10:00:05Z', raw: '{"auditID": "trunc' };
    const bad2: AuditEvent = {
      auditID: null,
      timestamp: '2026-11-21T10:00:06Z',
      raw: 'not json at all \u00e9',
    };
    const multi: AuditEvent = { auditID: null, timestamp: '2026-11-21T10:00:07Z', raw: 'line one\nline two' };
    const [chunk] = await all([event(1), bad1, event(2), bad2, multi]);
    expect(chunk?.events).toBe(5);
    expect(chunk?.malformed).toBe(3);
    const stored = lines(chunk!);
    expect(stored[1]).toBe(bad1.raw);
    expect(stored[3]).toBe(bad2.raw);
    // A raw text with a line break stays one line, as a JSON string that gives it back.
    expect(JSON.parse(stored[4]!)).toBe(multi.raw);
    expect(chunk?.ids[1]?.key).toBe(eventKey(bad1));
    expect(eventKey(bad1)).toMatch(/^sha256:[0-9a-f]{64}$/);
  });

  it('names chunks by cluster, UTC day of the first event and zero-padded seq', async () => {
    const [chunk] = await all([event(0, { timestamp: '2026-11-21T23:59:59+01:00' })]);
    expect(chunk?.key).toBe(`audit/${CLUSTER}/2026/11/21/00000001.ndjson.gz`);
    expect(chunkKey(CLUSTER, '2026-11-22T00:30:00+02:00', 12)).toBe(
      `audit/${CLUSTER}/2026/11/21/00000012.ndjson.gz`,
    );
    expect(parseArchiveKey(CLUSTER, `audit/${CLUSTER}/2026/11/21/00000012.ndjson.gz.manifest.json`)).toEqual({
      seq: 12,
      kind: 'manifest',
    });
    expect(parseArchiveKey(CLUSTER, `audit/${CLUSTER}x/2026/11/21/00000012.ndjson.gz`)).toBeUndefined();
  });

  it('reads lazily: never more than one chunk ahead of the chunk last taken', async () => {
    let pulled = 0;
    async function* endless(): AsyncGenerator<AuditEvent[]> {
      for (let p = 0; ; p++) {
        pulled++;
        yield Array.from({ length: 10 }, (_, i) => event(p * 10 + i));
      }
    }
    const chunks = chunkEvents(endless(), { clusterId: CLUSTER, firstSeq: 1, maxEvents: 10 });
    for (let n = 1; n <= 50; n++) {
      const next = await chunks.next();
      expect(next.value?.events).toBe(10);
      // Chunk n+1 fills while chunk n's compression finishes; the page that starts chunk n+2
      // is where reading stops until chunk n+1 is taken.
      expect(pulled).toBeLessThanOrEqual(n + 2);
    }
    await chunks.return(undefined);
  });

  it('emits nothing for no events', async () => {
    expect(await all([])).toEqual([]);
  });
});
