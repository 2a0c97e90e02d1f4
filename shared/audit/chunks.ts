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
import { setImmediate } from 'node:timers/promises';
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
  /** Dedup keys and timestamps of the events, in chunk order (empty when `ChunkOptions.ids` is false). */
  ids: EventId[];
}

export interface ChunkOptions {
  clusterId: string;
  /** Sequence number of the first chunk emitted. */
  firstSeq: number;
  maxEvents?: number | undefined;
  maxBytes?: number | undefined;
  /**
   * Whether chunks list their events' {@link EventId}s (default true). A caller that tracks
   * its events' keys itself passes `false`: `ids` is then empty, and a run does not keep an
   * object per event alive until its chunk is sealed.
   */
  ids?: boolean | undefined;
  /**
   * `Date.parse` of each event's timestamp, by page, from a caller that parsed them already
   * (the chunker needs them for a chunk's first and last timestamp); pages without an entry
   * are parsed here. Each value must be exactly `Date.parse(event.timestamp)`.
   */
  times?: WeakMap<readonly AuditEvent[], ArrayLike<number>> | undefined;
}

/** Hex SHA-256 of bytes or a string (UTF-8). */
export function sha256Hex(data: Uint8Array | string): string {
  return createHash('sha256').update(data).digest('hex');
}

/**
 * The key that deduplicates an event; two distinct events never share one:
 * - a parsed Event with a stage: `k8s:<auditID>:<stage>` (Kubernetes writes one event per
 *   stage under the same auditID, so auditID alone would merge them);
 * - else the log service's identity of the record: `rec:<recordId>` (so identical unparseable
 *   lines that are distinct records stay distinct);
 * - else, for a source that gives neither, the legacy key: the `auditID`, or
 *   `sha256:<hex of raw>` for an unparseable line.
 * A re-read of the same record yields the same key, so the overlap window drops it.
 */
export function eventKey(event: AuditEvent): string {
  if (event.auditID !== null && typeof event.stage === 'string' && event.stage !== '')
    return `k8s:${event.auditID}:${event.stage}`;
  if (typeof event.recordId === 'string' && event.recordId !== '') return `rec:${event.recordId}`;
  return legacyEventKey(event);
}

/** The key of the versions before {@link eventKey}: `auditID`, else `sha256:<raw>`. Kept to read their seen state. */
export function legacyEventKey(event: Pick<AuditEvent, 'auditID' | 'raw'>): string {
  return event.auditID ?? `sha256:${sha256Hex(event.raw)}`;
}

/**
 * Cloud Logging's identity of an entry: Logging treats entries with the same `logName`,
 * `timestamp` and `insertId` as duplicates (LogEntry reference, `insertId`).
 */
export function cloudLoggingRecordId(logName: string, timestamp: string, insertId: string): string {
  return JSON.stringify([logName, timestamp, insertId]);
}

/**
 * The {@link eventKey} of an archived line, as far as the line itself tells (used when a
 * chunk is adopted without its seen keys): an Event's `auditID`/`stage`, an AKSAudit row's
 * `AuditId`/`Stage`, an AzureDiagnostics row's `log_s`, a Cloud Logging entry's identity.
 * `undefined` when the line does not carry one (e.g. an unparseable CloudWatch message,
 * whose `eventId` is not in the line).
 */
export function lineEventKey(line: string): string | undefined {
  let o: unknown;
  try {
    o = JSON.parse(line);
  } catch {
    return undefined;
  }
  if (typeof o === 'string') return lineEventKey(o);
  if (typeof o !== 'object' || o === null || Array.isArray(o)) return undefined;
  const r = o as Record<string, unknown>;
  const str = (v: unknown): v is string => typeof v === 'string' && v !== '';
  if (str(r.auditID) && str(r.stage)) return `k8s:${r.auditID}:${r.stage}`;
  if (str(r.AuditId) && str(r.Stage)) return `k8s:${r.AuditId}:${r.Stage}`;
  if (str(r.log_s)) {
    const inner = lineEventKey(r.log_s);
    if (inner?.startsWith('k8s:')) return inner;
  }
  if (str(r._ItemId)) return `rec:${r._ItemId}`;
  if (str(r.insertId) && str(r.logName) && str(r.timestamp))
    return `rec:${cloudLoggingRecordId(r.logName, r.timestamp, r.insertId)}`;
  return undefined;
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

/**
 * Lines are handed to gzip in batches of this many bytes, one zlib threadpool call each (the
 * output of a batch fits {@link GZIP_CHUNK}). Large, because gzip starts its next queued write
 * only from a callback on the main thread: while the main thread parses a page of events, the
 * compressor works through one batch and then waits. With 256 KiB batches (~2 ms of deflate)
 * it waited most of each page; 512 KiB (~4.5 ms) roughly covers a page of 1,000 events. 1 MiB
 * was no faster within the noise of the bench box and cost 20-30 MB more peak RSS.
 */
export const WRITE_BATCH = 512 * 1024;
/** gzip's output buffer: large enough that a batch is compressed in one threadpool call. */
const GZIP_CHUNK = 128 * 1024;
/**
 * The gzip settings of every chunk: level 6 (zlib's default, what `gzip` uses too) and the
 * output buffer size. Changing the level changes every chunk's bytes.
 */
export const CHUNK_GZIP = { level: 6, chunkSize: GZIP_CHUNK } as const;
/**
 * Bytes gzip may hold queued before a write waits for it to drain: enough batches that the
 * compressor (on the libuv threadpool) always has input while the main thread parses.
 */
export const GZIP_QUEUE = 2 * 1024 * 1024;
/** Batch buffers gzip is done with, reused (so a run allocates a few, not one per batch). */
const freeBatches: Buffer[] = [];
const MAX_FREE_BATCHES = 5;
const takeBatch = (): Buffer => freeBatches.pop() ?? Buffer.allocUnsafeSlow(WRITE_BATCH);
/** The chunker lets the event loop run after about this many bytes of lines. */
const YIELD_EVERY = 32 * 1024;

/**
 * Builds one chunk: lines go through gzip, and the gzip output through SHA-256, as they come.
 * Lines are encoded straight into {@link WRITE_BATCH} buffers, each handed to gzip in one write; a write
 * does not wait for its compression, only for gzip's queue to drain once it holds
 * {@link GZIP_QUEUE} bytes, so compression overlaps with reading and parsing. Deflate without
 * flushes produces the same bytes however its input is split, so the chunk (and its
 * SHA-256) is the same as line by line.
 */
class ChunkBuilder {
  readonly #gzip: Gzip = createGzip(CHUNK_GZIP);
  /** Bytes written to gzip whose compression has not completed yet. */
  #queued = 0;
  #wake: (() => void) | undefined;
  #batch: Buffer = takeBatch();
  #batchLength = 0;
  readonly #hash = createHash('sha256');
  readonly #parts: Buffer[] = [];
  readonly #ended: Promise<void>;
  readonly ids: EventId[] = [];
  events = 0;
  malformed = 0;
  bytes = 0;
  #firstMs = Number.NaN;
  #firstTs = '';
  #lastMs = Number.NaN;
  #lastTs = '';
  #firstRaw = '';
  #lastRaw = '';
  firstEventTimestamp = '';

  readonly #collectIds: boolean;
  /** `finish` was called: the current batch went back to the pool. */
  #sealed = false;

  constructor(collectIds: boolean) {
    this.#collectIds = collectIds;
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

  /**
   * Adds an event whose line is `line` (`size` = its UTF-8 bytes + 1 for the newline) and
   * whose time is `ms` (`Date.parse` of its timestamp).
   * Returns `false` when gzip's queue is full: await {@link drained} before adding more.
   */
  add(event: AuditEvent, line: string, size: number, ms: number): boolean {
    const timestamp = event.timestamp;
    if (this.events === 0) {
      this.firstEventTimestamp = timestamp;
      this.#firstRaw = timestamp;
    }
    this.#lastRaw = timestamp;
    this.events++;
    if (event.auditID === null) this.malformed++;
    this.bytes += size;
    if (this.#collectIds) this.ids.push({ key: eventKey(event), timestamp });
    if (!Number.isNaN(ms)) {
      if (!(ms >= this.#firstMs)) {
        this.#firstMs = ms;
        this.#firstTs = timestamp;
      }
      if (!(ms <= this.#lastMs)) {
        this.#lastMs = ms;
        this.#lastTs = timestamp;
      }
    }
    if (size > WRITE_BATCH) {
      // Larger than a batch: flush what is batched, then write the line on its own.
      const ok = this.#flush();
      const big = Buffer.allocUnsafeSlow(size);
      big.write(line, 0, 'utf8');
      big[size - 1] = 0x0a;
      return this.#write(big, undefined) && ok;
    }
    let ok = true;
    if (this.#batchLength + size > WRITE_BATCH) ok = this.#flush();
    const at = this.#batchLength;
    this.#batch.write(line, at, 'utf8');
    this.#batch[at + size - 1] = 0x0a;
    this.#batchLength = at + size;
    return ok;
  }

  /** Hands the batched bytes to gzip (the buffer is gzip's until compressed: a new one follows). */
  #flush(): boolean {
    if (this.#batchLength === 0) return true;
    const batch = this.#batch;
    const data = this.#batchLength === WRITE_BATCH ? batch : batch.subarray(0, this.#batchLength);
    this.#batch = takeBatch();
    this.#batchLength = 0;
    return this.#write(data, batch);
  }

  /**
   * Writes to gzip; `false` once {@link GZIP_QUEUE} bytes are queued. `batch` (the buffer
   * under `data`) goes back to the pool once gzip has consumed it without error.
   */
  #write(data: Buffer, batch: Buffer | undefined): boolean {
    const n = data.byteLength;
    this.#queued += n;
    this.#gzip.write(data, (error) => {
      if (!error && batch && freeBatches.length < MAX_FREE_BATCHES) freeBatches.push(batch);
      this.#queued -= n;
      if (this.#wake && this.#queued <= GZIP_QUEUE / 2) {
        const wake = this.#wake;
        this.#wake = undefined;
        wake();
      }
    });
    return this.#queued < GZIP_QUEUE;
  }

  /** Resolves once gzip's queue is down to half of {@link GZIP_QUEUE} (rejects when gzip fails). */
  async drained(): Promise<void> {
    if (this.#queued < GZIP_QUEUE) return;
    const room = new Promise<void>((resolve) => {
      this.#wake = resolve;
    });
    await Promise.race([room, this.#ended]);
  }

  async finish(clusterId: string, seq: number): Promise<Chunk> {
    this.#flush();
    this.#sealed = true;
    if (freeBatches.length < MAX_FREE_BATCHES) freeBatches.push(this.#batch);
    this.#gzip.end();
    await this.#ended;
    const body = Buffer.concat(this.#parts);
    this.#parts.length = 0;
    return {
      clusterId,
      seq,
      key: chunkKey(clusterId, this.firstEventTimestamp, seq),
      body: new Uint8Array(body.buffer, body.byteOffset, body.byteLength),
      sha256: this.#hash.digest('hex'),
      events: this.events,
      malformed: this.malformed,
      bytes: this.bytes,
      firstTimestamp: Number.isNaN(this.#firstMs) ? this.#firstRaw : this.#firstTs,
      lastTimestamp: Number.isNaN(this.#lastMs) ? this.#lastRaw : this.#lastTs,
      ids: this.ids,
    };
  }

  destroy(): void {
    // The current batch was never handed to gzip: it can be reused (once: a sealed builder has
    // already given it back).
    if (!this.#sealed && freeBatches.length < MAX_FREE_BATCHES) freeBatches.push(this.#batch);
    this.#gzip.destroy();
  }
}

/** A chunk whose gzip stream has ended and whose last bytes are still being compressed. */
interface Sealing {
  builder: ChunkBuilder;
  chunk: Promise<Chunk>;
  settled: boolean;
}

function seal(builder: ChunkBuilder, clusterId: string, seq: number): Sealing {
  const sealing: Sealing = { builder, chunk: builder.finish(clusterId, seq), settled: false };
  const settle = () => {
    sealing.settled = true;
  };
  sealing.chunk.then(settle, settle);
  return sealing;
}

/**
 * Consumes pages of events and yields chunks of at most `maxEvents` events and `maxBytes`
 * uncompressed bytes (a single event larger than `maxBytes` gets a chunk of its own), lines
 * in received order. A full chunk is sealed without waiting for its compression to finish:
 * the next chunk fills while gzip compresses the last bytes on the threadpool, and the sealed
 * chunk is yielded at the next pause, at the latest before the next page is read (so the main
 * thread does not idle at a chunk boundary). Lazy otherwise: reading stops while the consumer
 * holds a chunk, and never runs more than one chunk ahead of the chunk last yielded, so memory
 * holds about two chunks whatever the volume.
 */
export async function* chunkEvents(
  pages: AsyncIterable<readonly AuditEvent[]>,
  options: ChunkOptions,
): AsyncGenerator<Chunk> {
  const maxEvents = options.maxEvents ?? DEFAULT_MAX_EVENTS;
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_BYTES;
  let seq = options.firstSeq;
  let current: ChunkBuilder | undefined;
  // The chunk before `current`: sealed, not yet yielded (at most one, to bound memory).
  let sealed: Sealing | undefined;
  const collectIds = options.ids ?? true;
  let sinceYield = 0;
  try {
    for await (const page of pages) {
      const times = options.times?.get(page);
      for (let k = 0; k < page.length; k++) {
        const event = page[k] as AuditEvent;
        const line = eventLine(event);
        const size = Buffer.byteLength(line) + 1;
        if (current && (current.events >= maxEvents || current.bytes + size > maxBytes)) {
          if (sealed) {
            const done = sealed;
            sealed = undefined;
            yield await done.chunk;
          }
          sealed = seal(current, options.clusterId, seq++);
          current = undefined;
        }
        current ??= new ChunkBuilder(collectIds);
        sinceYield += size;
        const ms = times ? (times[k] as number) : Date.parse(event.timestamp);
        if (!current.add(event, line, size, ms)) {
          sinceYield = 0;
          await current.drained();
        } else if (sinceYield >= YIELD_EVERY) {
          // gzip's threadpool calls complete on the event loop: let it run often, so the
          // next batch starts compressing as soon as the previous one is done.
          sinceYield = 0;
          await setImmediate();
        } else {
          continue;
        }
        if (sealed?.settled) {
          const done = sealed;
          sealed = undefined;
          yield await done.chunk;
        }
      }
      // Hand a sealed chunk on before waiting for the next page (which may be slow to come).
      if (sealed) {
        const done = sealed;
        sealed = undefined;
        yield await done.chunk;
      }
    }
    if (sealed) {
      const done = sealed;
      sealed = undefined;
      yield await done.chunk;
    }
    if (current) {
      const done = current;
      current = undefined;
      yield await done.finish(options.clusterId, seq);
    }
  } finally {
    current?.destroy();
    sealed?.builder.destroy();
  }
}

/**
 * Iterates `source` one item ahead: as soon as the consumer receives an item, the next one is
 * being produced, so producing (parsing, compressing) overlaps with what the consumer awaits
 * (archive writes). Errors of the step ahead surface when the consumer asks for that item.
 * When the consumer stops early, `stop` is called first (it should abort what the step in
 * flight waits for, such as a throttled read), then that step is awaited and `source` closed
 * before this returns, so nothing keeps running behind the consumer's back.
 */
export async function* readAhead<T>(source: AsyncIterable<T>, stop?: () => void): AsyncGenerator<T> {
  const iterator = source[Symbol.asyncIterator]();
  let next = iterator.next();
  // Awaited below or in `finally`; this only keeps a failure of an abandoned step from being unhandled.
  next.catch(() => {});
  let done = false;
  try {
    for (;;) {
      const step = await next;
      if (step.done) {
        done = true;
        return;
      }
      next = iterator.next();
      next.catch(() => {});
      yield step.value;
    }
  } finally {
    if (!done) {
      stop?.();
      const last = await next.catch(() => undefined);
      if (last && !last.done) await iterator.return?.();
    }
  }
}
