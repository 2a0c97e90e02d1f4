/**
 * The audit chunker: turns pages of audit events into bounded, gzipped NDJSON chunks,
 * hashing the compressed bytes while they are produced, so a run holds at most one chunk
 * (≤ `maxBytes` uncompressed, gzipped) in memory whatever the volume.
 *
 * Key layout: `audit/<cluster-id>/<yyyy>/<mm>/<dd>/<seq>.ndjson.gz`. The cluster id keeps
 * its slashes (`audit/aws/111111111111/eu-central-1/payments/2026/11/21/00000001.ndjson.gz`):
 * cluster ids have a fixed number of segments per cloud, so `audit/<cluster-id>/` is a
 * prefix no other cluster's keys share, and the date and sequence are the last four
 * segments. The date is the UTC day of the chunk's first event; `<seq>` is 1-based and
 * zero-padded to 8 digits, and numbers the chunks of a cluster's chain in order.
 */
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { createGzip, type Gzip } from 'node:zlib';
import type { AuditEvent } from '../ports.ts';

/** Default bound on events per chunk. */
export const DEFAULT_MAX_EVENTS = 20_000;
/** Default bound on uncompressed bytes per chunk (16 MiB). */
export const DEFAULT_MAX_BYTES = 16 * 1024 * 1024;
/** Content type of a chunk object. */
export const CHUNK_CONTENT_TYPE = 'application/x-ndjson';

/** What deduplication knows of one archived event: its key and its timestamp. */
export interface EventId {
  /** {@link eventKey} of the event. */
  key: string;
  timestamp: string;
}

/** One sealed chunk, ready to be created in the archive. */
export interface Chunk {
  clusterId: string;
  /** Position in the cluster's chain (1-based). */
  seq: number;
  /** {@link chunkKey}. */
  key: string;
  /** gzip of the NDJSON lines. */
  body: Uint8Array;
  /** Hex SHA-256 of `body`, computed while compressing. */
  sha256: string;
  /** Lines (one per event). */
  events: number;
  /** Events whose `auditID` is `null` (unparseable lines, kept verbatim). */
  malformed: number;
  /** Uncompressed NDJSON size in bytes. */
  bytes: number;
  /** Earliest and latest event timestamp (unparseable timestamps are ignored unless no other exists). */
  firstTimestamp: string;
  lastTimestamp: string;
  /** Dedup keys and timestamps of the events, in chunk order. */
  ids: EventId[];
}

export interface ChunkOptions {
  clusterId: string;
  /** Sequence number of the first chunk emitted. */
  firstSeq: number;
  maxEvents?: number | undefined;
  maxBytes?: number | undefined;
}

/** Hex SHA-256 of bytes or a string (UTF-8). */
export function sha256Hex(data: Uint8Array | string): string {
  return createHash('sha256').update(data).digest('hex');
}

/**
 * The key that deduplicates an event: its `auditID`, or `sha256:<hex of raw>` for an event
 * whose line could not be parsed (`auditID` null), so a re-read unparseable line is kept once.
 */
export function eventKey(event: AuditEvent): string {
  return event.auditID ?? `sha256:${sha256Hex(event.raw)}`;
}

/** `audit/<cluster-id>/` — every object of a cluster's chain is under it. */
export function clusterPrefix(clusterId: string): string {
  return `audit/${clusterId}/`;
}

/**
 * `audit/<cluster-id>/<yyyy>/<mm>/<dd>/<seq>.ndjson.gz`; the date is the UTC day of
 * `timestamp` (`0000/00/00` when it does not parse).
 */
export function chunkKey(clusterId: string, timestamp: string, seq: number): string {
  const ms = Date.parse(timestamp);
  const day = Number.isNaN(ms) ? '0000/00/00' : new Date(ms).toISOString().slice(0, 10).replaceAll('-', '/');
  return `${clusterPrefix(clusterId)}${day}/${String(seq).padStart(8, '0')}.ndjson.gz`;
}

const KEY_TAIL = /^\d{4}\/\d{2}\/\d{2}\/(\d{8})\.ndjson\.gz(\.manifest\.json)?$/;

/** Parses a key under `clusterPrefix(clusterId)`: a chunk or a manifest and its seq; `undefined` for anything else. */
export function parseArchiveKey(
  clusterId: string,
  key: string,
): { seq: number; kind: 'chunk' | 'manifest' } | undefined {
  const prefix = clusterPrefix(clusterId);
  if (!key.startsWith(prefix)) return undefined;
  const m = KEY_TAIL.exec(key.slice(prefix.length));
  if (!m?.[1]) return undefined;
  return { seq: Number(m[1]), kind: m[2] ? 'manifest' : 'chunk' };
}

/**
 * The NDJSON line of an event: `raw` verbatim. A raw text containing a line break (which
 * would split it into several lines) is written as a JSON string literal instead, so it
 * stays one line and `JSON.parse` of the line gives it back exactly.
 */
export function eventLine(event: AuditEvent): string {
  return /[\r\n]/.test(event.raw) ? JSON.stringify(event.raw) : event.raw;
}

/** Lines are handed to gzip in batches of about this many UTF-16 code units (one zlib call each). */
const WRITE_BATCH = 64 * 1024;

/**
 * Builds one chunk: lines go through gzip, and the gzip output through SHA-256, as they come.
 * Lines are batched into ~64 KiB writes: deflate without flushes produces the same bytes
 * however its input is split, so the chunk (and its SHA-256) is the same as line by line.
 */
class ChunkBuilder {
  readonly #gzip: Gzip = createGzip();
  #batch: string[] = [];
  #batchLength = 0;
  readonly #hash = createHash('sha256');
  readonly #parts: Buffer[] = [];
  readonly #ended: Promise<void>;
  readonly ids: EventId[] = [];
  events = 0;
  malformed = 0;
  bytes = 0;
  #first: { ms: number; ts: string } | undefined;
  #last: { ms: number; ts: string } | undefined;
  #firstRaw = '';
  #lastRaw = '';
  firstEventTimestamp = '';

  constructor() {
    this.#gzip.on('data', (part: Buffer) => {
      this.#hash.update(part);
      this.#parts.push(part);
    });
    this.#ended = new Promise((resolve, reject) => {
      this.#gzip.once('end', resolve);
      this.#gzip.once('error', reject);
    });
    // A failure surfaces through `finish`; avoid an unhandled rejection if it never runs.
    this.#ended.catch(() => {});
  }

  async add(event: AuditEvent, line: string): Promise<void> {
    if (this.events === 0) {
      this.firstEventTimestamp = event.timestamp;
      this.#firstRaw = event.timestamp;
    }
    this.#lastRaw = event.timestamp;
    this.events++;
    if (event.auditID === null) this.malformed++;
    this.bytes += Buffer.byteLength(line) + 1;
    this.ids.push({ key: eventKey(event), timestamp: event.timestamp });
    const ms = Date.parse(event.timestamp);
    if (!Number.isNaN(ms)) {
      if (!this.#first || ms < this.#first.ms) this.#first = { ms, ts: event.timestamp };
      if (!this.#last || ms > this.#last.ms) this.#last = { ms, ts: event.timestamp };
    }
    this.#batch.push(line);
    this.#batchLength += line.length + 1;
    if (this.#batchLength >= WRITE_BATCH) await this.#flush();
  }

  async #flush(): Promise<void> {
    if (this.#batch.length === 0) return;
    const text = `${this.#batch.join('\n')}\n`;
    this.#batch = [];
    this.#batchLength = 0;
    if (!this.#gzip.write(text)) await once(this.#gzip, 'drain');
  }

  async finish(clusterId: string, seq: number): Promise<Chunk> {
    await this.#flush();
    this.#gzip.end();
    await this.#ended;
    const body = Buffer.concat(this.#parts);
    return {
      clusterId,
      seq,
      key: chunkKey(clusterId, this.firstEventTimestamp, seq),
      body: new Uint8Array(body.buffer, body.byteOffset, body.byteLength),
      sha256: this.#hash.digest('hex'),
      events: this.events,
      malformed: this.malformed,
      bytes: this.bytes,
      firstTimestamp: this.#first?.ts ?? this.#firstRaw,
      lastTimestamp: this.#last?.ts ?? this.#lastRaw,
      ids: this.ids,
    };
  }

  destroy(): void {
    this.#gzip.destroy();
  }
}

/**
 * Consumes pages of events and yields chunks of at most `maxEvents` events and `maxBytes`
 * uncompressed bytes (a single event larger than `maxBytes` gets a chunk of its own), lines
 * in received order. Lazy: the next page is read only after the consumer took the previous
 * chunk, so memory holds one chunk at a time.
 */
export async function* chunkEvents(
  pages: AsyncIterable<readonly AuditEvent[]>,
  options: ChunkOptions,
): AsyncGenerator<Chunk> {
  const maxEvents = options.maxEvents ?? DEFAULT_MAX_EVENTS;
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_BYTES;
  let seq = options.firstSeq;
  let current: ChunkBuilder | undefined;
  try {
    for await (const page of pages) {
      for (const event of page) {
        const line = eventLine(event);
        const size = Buffer.byteLength(line) + 1;
        if (current && (current.events >= maxEvents || current.bytes + size > maxBytes)) {
          const done = current;
          current = undefined;
          yield await done.finish(options.clusterId, seq++);
        }
        current ??= new ChunkBuilder();
        await current.add(event, line);
      }
    }
    if (current) {
      const done = current;
      current = undefined;
      yield await done.finish(options.clusterId, seq);
    }
  } finally {
    current?.destroy();
  }
}
