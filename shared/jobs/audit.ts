/**
 * The audit-archive jobs.
 *
 * `collect` copies each cluster's control-plane audit log into its jurisdiction's
 * write-once archive as a hash chain of gzipped NDJSON chunks (see `shared/audit/`).
 * Before anything is written, the archive must pass the residency guard on its location
 * and `assertImmutable` with the jurisdiction's retention; a failure is a finding and
 * nothing is written. An archive whose `location()` is `null` (a local directory) has no
 * region for the guard to check: it is refused (a finding) unless the run explicitly allows
 * local evidence (`allowLocalEvidence`, the CLI's `--local-evidence`; never a deployed run)
 * and the store declares `compliantStorage: false`; its manifests then say so.
 *
 * Per chunk the writes happen in this order: (0) the seen shards (state items
 * `seen/<cluster-id>/<yyyymmddhhmm>/<part>`) receive the short hashes of the chunk's dedup
 * keys, tagged with the chunk's seq, (1) the head in the state store records the chunk as
 * `pending` (key, SHA-256, the checkpoint it leads to), (2) the chunk object is created
 * (conditional create), (3) its manifest is created, (4) the head advances and the pending
 * record is cleared — one atomic item put, (5) seen shards wholly older than the new overlap
 * window are deleted. A run killed at any point is resumed by the next: a pending chunk found
 * in the archive with the recorded SHA-256 is adopted (manifest created if missing, head
 * advanced), one not found is forgotten; seen-shard groups tagged with a seq beyond the head
 * (a chunk that never became durable) are ignored and removed before anything else is
 * written. So the checkpoint only moves once the chunk, its manifest and its dedup keys are
 * durable, and nothing is written twice.
 *
 * The read window starts `overlapMs` (default 10 min) before the checkpoint's last
 * timestamp, to catch events the log service received late; events already archived are
 * dropped by their dedup key ({@link eventKey}: `k8s:<auditID>:<stage>` for an Event, else the
 * log service's identity of the record, `rec:<recordId>`), compared by its 96-bit hash
 * ({@link seenHash}); distinct events never share a key. Seen shards of older versions hold the
 * bare `auditID` (or `sha256:<raw>`): they are read as legacy groups, matched by that legacy key
 * until they leave the overlap window (so an upgrade re-archives nothing). The seen shards keep the hashes of archived events within
 * the overlap window, one minute per item (split further past 15 000 events a minute), so the
 * head stays a few hundred bytes and every item stays under ~250 KB whatever the event rate.
 * The checkpoint assumes the service returns events in timestamp order give or take the
 * overlap (the log services do): an event older than the overlap behind one already in an
 * earlier chunk of the same run could be missed after a crash.
 *
 * `verify` walks each cluster's chain from seq 1, recomputes every hash and names the first
 * chunk that is missing, altered, has another version, or does not link to its predecessor.
 */
import { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import {
  CHUNK_CONTENT_TYPE,
  chunkEvents,
  clusterPrefix,
  eventKey,
  legacyEventKey,
  lineEventKey,
  parseArchiveKey,
  readAhead,
  sha256Hex,
} from '../audit/chunks.ts';
import {
  type AuditCheckpoint,
  type ChainHead,
  encodeManifest,
  headKey,
  MANIFEST_CONTENT_TYPE,
  MANIFEST_SCHEMA,
  type Manifest,
  manifestKey,
  type PendingChunk,
  parseManifest,
  parseSeenShardKey,
  SEEN_HASH_LENGTH,
  SEEN_SHARD_MAX_HASHES,
  SEEN_SHARD_VERSION,
  type SeenShard,
  seenHash,
  seenMinute,
  seenMinuteStart,
  seenPrefix,
  seenShardKey,
} from '../audit/manifest.ts';
import { auditModeOf } from '../audit/mode.ts';
import { type ScopeReport, startScopeReport } from '../audit/quota.ts';
import type { FleetConfig } from '../config/schema.ts';
import type { Cluster, Finding } from '../model.ts';
import {
  type ArchiveStore,
  type AuditEvent,
  type AuditLogSource,
  type Clock,
  type Log,
  type StateStore,
  systemClock,
} from '../ports.ts';
import type { Residency } from '../residency/index.ts';
import { type ClusterWork, type Dispatcher, inProcess } from '../runtime/dispatch.ts';
import {
  type ErrorInfo,
  errorInfo,
  FleetwardError,
  ObjectExistsError,
  ResidencyError,
} from '../runtime/errors.ts';
import {
  AUDIT_NS,
  type AuditStatusRecord,
  auditStatusKey,
  auditVerifyKey,
  type ChainProblem,
  INVENTORY,
  type VerifyClusterResult,
  type VerifyStatus,
} from '../state/records.ts';
import {
  type ClusterScope,
  findingsOf,
  forEachCluster,
  inventory,
  recordFindings,
  runId,
  type Sig,
  settled,
  sig,
} from './fleet.ts';
import { counting, type OnProgress, reporting } from './progress.ts';

/** The job name findings are recorded under (`findings` / `audit/<cluster-id>`). */
export const AUDIT_JOB = 'audit';
export const DEFAULT_OVERLAP_MS = 10 * 60_000;
export const DEFAULT_LOOKBACK_MS = 24 * 60 * 60_000;

export interface AuditJobDeps {
  config: Pick<FleetConfig, 'jurisdictions'>;
  store: StateStore;
  residency: Residency;
  logger: Log;
  clock: Clock;
  /** The audit log source of a cluster's cloud; `undefined` when there is none (a finding). */
  sources: { for(cluster: Cluster): AuditLogSource | undefined };
  /** The archive of a cluster's jurisdiction (and cloud). May reject (a finding). */
  archives: { for(cluster: Cluster): Promise<ArchiveStore> };
  /**
   * Whether an archive without a location (a local directory, not compliant storage) may be
   * written. Default false: the residency guard cannot judge it. Only a CLI run with
   * `--local-evidence` sets it; a deployed run never does.
   */
  allowLocalEvidence?: boolean | undefined;
}

export interface CollectOptions extends ClusterScope {
  signal?: AbortSignal | undefined;
  /** How far before the checkpoint each run re-reads (default 10 minutes). */
  overlapMs?: number | undefined;
  /** How far back the first run of a cluster reads (default 1 day). */
  lookbackMs?: number | undefined;
  /** Chunk bounds (defaults 20 000 events, 16 MiB uncompressed). */
  maxEvents?: number | undefined;
  maxBytes?: number | undefined;
  /** Clusters collected at once (default 4). */
  concurrency?: number | undefined;
  /** Called as each cluster's collection ends (in-process runs). */
  onProgress?: OnProgress<CollectOutcome> | undefined;
}

export interface CollectStats {
  /** Chunks written by this run (adopted ones excluded). */
  chunks: number;
  events: number;
  malformed: number;
  /** Events dropped because they were already archived (overlap re-reads). */
  duplicates: number;
  /** Chunks of an interrupted run adopted into the chain. */
  recovered: number;
  /** Seq of the chain head after the run. */
  head: number;
  compliantStorage: boolean;
}

export type CollectOutcome =
  | ({ clusterId: string; status: 'archived' | 'up-to-date' } & CollectStats)
  | { clusterId: string; status: 'skipped'; findings: Finding[]; note?: string }
  | ({ clusterId: string; status: 'failed'; error: ErrorInfo } & CollectStats);

export interface CollectResult {
  runId: string;
  outcomes: CollectOutcome[];
  /**
   * Per provider quota scope: what the run read against what the quota allows, each cluster's
   * lag, and whether the scope falls behind (shared/audit/quota.ts). In-process runs only: a
   * run that enqueues its items reports none.
   */
  scopes: ScopeReport[];
}

/** The archive holds something other than what the chain head expects: nothing more is written. */
export class ChainConflictError extends FleetwardError {
  readonly key: string;
  constructor(message: string, key: string) {
    super(message);
    this.name = 'ChainConflictError';
    this.key = key;
  }
}

const EMPTY_HEAD: ChainHead = {
  seq: 0,
  sha256: null,
  key: null,
  version: null,
  checkpoint: null,
  pending: null,
};

/** Dedup keys with their timestamps (ms), trimmed to a window. */
class SeenSet {
  readonly #map = new Map<string, number>();
  #adds = 0;
  has(key: string): boolean {
    return this.#map.has(key);
  }
  get size(): number {
    return this.#map.size;
  }
  set(key: string, ms: number): void {
    this.#map.set(key, ms);
    this.#adds++;
  }
  /** Drops keys older than `floor` (every call when `force`, else every few thousand adds). */
  trim(floor: number, force = false): void {
    if (!force && this.#adds < 5_000) return;
    this.#adds = 0;
    for (const [key, ms] of this.#map) if (ms < floor) this.#map.delete(key);
  }
  entries(): [string, number][] {
    return [...this.#map];
  }
}

/** A group of a seen shard: the hashes of chunk `seq`, current keys or legacy ones (`L<seq>`). */
const groupKey = (seq: number, legacy: boolean): string => (legacy ? `L${seq}` : String(seq));
const groupSeq = (key: string): number => Number(key.startsWith('L') ? key.slice(1) : key);

/**
 * The seen shards of one cluster (see {@link SeenShard}), held in memory for a run: per UTC
 * minute, the hashes of archived events grouped by chunk seq (and by key version: groups read
 * from shards of older versions are legacy groups). Written back minute by minute.
 */
class SeenShards {
  readonly #store: StateStore;
  readonly #clusterId: string;
  /** minute → group ({@link groupKey}) → hashes. */
  readonly #minutes = new Map<string, Map<string, string[]>>();
  /** minute → parts it has in the store. */
  readonly #stored = new Map<string, number>();
  readonly #dirty = new Set<string>();
  /** The minute of the last `add` (events mostly come in time order). */
  #lastMinute = '';
  #lastMinuteStart = Number.NaN;

  private constructor(store: StateStore, clusterId: string) {
    this.#store = store;
    this.#clusterId = clusterId;
  }

  static async load(store: StateStore, clusterId: string): Promise<SeenShards> {
    const shards = new SeenShards(store, clusterId);
    for (const item of await store.list<SeenShard>(AUDIT_NS, { prefix: seenPrefix(clusterId) })) {
      const parsed = parseSeenShardKey(clusterId, item.key);
      if (!parsed) continue;
      shards.#stored.set(parsed.minute, Math.max(shards.#stored.get(parsed.minute) ?? 0, parsed.part + 1));
      const groups = shards.#group(parsed.minute);
      // A shard without the version mark holds the bare keys of older versions: legacy groups.
      const current = item.value?.v === SEEN_SHARD_VERSION;
      for (const [name, hashes] of Object.entries(item.value ?? {})) {
        if (typeof hashes !== 'string') continue;
        let key: string;
        if (/^\d+$/.test(name)) key = groupKey(Number(name), !current);
        else if (/^L\d+$/.test(name)) key = name;
        else continue;
        const list = groups.get(key) ?? [];
        for (let i = 0; i + SEEN_HASH_LENGTH <= hashes.length; i += SEEN_HASH_LENGTH) {
          list.push(hashes.slice(i, i + SEEN_HASH_LENGTH));
        }
        groups.set(key, list);
      }
      // Rewritten (with the version mark) at the next flush.
      if (!current) shards.#dirty.add(parsed.minute);
    }
    return shards;
  }

  #group(minute: string): Map<string, string[]> {
    let groups = this.#minutes.get(minute);
    if (!groups) {
      groups = new Map();
      this.#minutes.set(minute, groups);
    }
    return groups;
  }

  /** Records that chunk `seq` holds the event of dedup-key hash `hash` at `ms` (`legacy`: a legacy key). */
  add(seq: number, hash: string, ms: number, legacy = false): void {
    if (!(ms >= this.#lastMinuteStart && ms < this.#lastMinuteStart + 60_000)) {
      this.#lastMinute = seenMinute(ms);
      this.#lastMinuteStart = seenMinuteStart(this.#lastMinute);
    }
    const minute = this.#lastMinute;
    const groups = this.#group(minute);
    const key = groupKey(seq, legacy);
    const list = groups.get(key);
    if (list) list.push(hash);
    else groups.set(key, [hash]);
    this.#dirty.add(minute);
  }

  /** Forgets the groups of chunks beyond `seq` (never durable). */
  dropBeyond(seq: number): void {
    for (const [minute, groups] of this.#minutes) {
      for (const key of groups.keys()) {
        if (groupSeq(key) > seq) {
          groups.delete(key);
          this.#dirty.add(minute);
        }
      }
    }
  }

  /** Seqs that have legacy groups. */
  legacySeqs(): Set<number> {
    const seqs = new Set<number>();
    for (const groups of this.#minutes.values())
      for (const key of groups.keys()) if (key.startsWith('L')) seqs.add(groupSeq(key));
    return seqs;
  }

  /**
   * Replaces legacy hashes of chunk `seq` by current ones: `lines` are the chunk's lines with
   * their candidate legacy keys' hashes and their current key's hash (if the line tells it).
   * A legacy hash no line of the chunk explains is kept.
   */
  migrate(seq: number, lines: { legacy: string[]; current: string | undefined }[], ms: number): void {
    const legacy = new Map<string, string>(); // hash → minute
    for (const [minute, groups] of this.#minutes) {
      for (const h of groups.get(groupKey(seq, true)) ?? []) legacy.set(h, minute);
    }
    const moved = new Set<string>();
    for (const line of lines) {
      if (line.current === undefined) continue;
      const hit = line.legacy.find((h) => legacy.has(h));
      if (hit === undefined) continue;
      moved.add(hit);
      this.add(seq, line.current, ms);
    }
    if (moved.size === 0) return;
    for (const [minute, groups] of this.#minutes) {
      const list = groups.get(groupKey(seq, true));
      if (!list) continue;
      const kept = list.filter((h) => !moved.has(h));
      if (kept.length === list.length) continue;
      if (kept.length > 0) groups.set(groupKey(seq, true), kept);
      else groups.delete(groupKey(seq, true));
      this.#dirty.add(minute);
    }
  }

  /**
   * Every hash with the end of its minute (an upper bound of its event's time, so trimming by
   * it is safe) and whether it is a legacy key.
   */
  *entries(): Generator<[string, number, boolean]> {
    for (const [minute, groups] of this.#minutes) {
      const end = seenMinuteStart(minute) + 60_000 - 1;
      for (const [key, list] of groups) {
        const legacy = key.startsWith('L');
        for (const h of list) yield [h, end, legacy];
      }
    }
  }

  /** Writes the changed minutes (all their parts in one call), then deletes parts they no longer need. */
  async flush(): Promise<void> {
    if (this.#dirty.size === 0) return;
    const puts: { key: string; value: SeenShard }[] = [];
    const deletes: string[] = [];
    for (const minute of [...this.#dirty].sort()) {
      const parts: SeenShard[] = [];
      const fresh = (): SeenShard => ({ v: SEEN_SHARD_VERSION });
      let current: SeenShard = fresh();
      let count = 0;
      const groups = [...(this.#minutes.get(minute) ?? new Map<string, string[]>())].sort(
        (a, b) => groupSeq(a[0]) - groupSeq(b[0]) || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0),
      );
      for (const [key, list] of groups) {
        for (let i = 0; i < list.length; ) {
          if (count === SEEN_SHARD_MAX_HASHES) {
            parts.push(current);
            current = fresh();
            count = 0;
          }
          const take = list.slice(i, i + SEEN_SHARD_MAX_HASHES - count);
          current[key] = (current[key] ?? '') + take.join('');
          count += take.length;
          i += take.length;
        }
      }
      if (count > 0) parts.push(current);
      parts.forEach((value, part) => {
        puts.push({ key: seenShardKey(this.#clusterId, minute, part), value });
      });
      for (let part = parts.length; part < (this.#stored.get(minute) ?? 0); part++) {
        deletes.push(seenShardKey(this.#clusterId, minute, part));
      }
      if (parts.length === 0) this.#minutes.delete(minute);
      this.#stored.set(minute, parts.length);
    }
    if (puts.length > 0) await this.#store.putMany(AUDIT_NS, puts);
    if (deletes.length > 0) await this.#store.deleteMany(AUDIT_NS, deletes);
    this.#dirty.clear();
  }

  /**
   * Deletes the minutes that end at or before `floor` (every event in them is older than the
   * overlap window). Call only once a head whose window starts at `floor` is durable.
   */
  async trim(floor: number): Promise<void> {
    const deletes: string[] = [];
    for (const minute of new Set([...this.#minutes.keys(), ...this.#stored.keys()])) {
      if (seenMinuteStart(minute) + 60_000 > floor) continue;
      for (let part = 0; part < (this.#stored.get(minute) ?? 0); part++) {
        deletes.push(seenShardKey(this.#clusterId, minute, part));
      }
      this.#minutes.delete(minute);
      this.#stored.delete(minute);
      this.#dirty.delete(minute);
    }
    if (deletes.length > 0) await this.#store.deleteMany(AUDIT_NS, deletes);
  }
}

/** The checkpoint a head records: the seen keys live in seen shards. */
function toCheckpoint(lastTimestamp: string): AuditCheckpoint {
  return { lastTimestamp };
}

/** The version of an existing object whose latest bytes must hash to `sha256`. @throws ChainConflictError */
async function existingVersion(archive: ArchiveStore, key: string, sha256: string, s: Sig): Promise<string> {
  const entry = (await archive.list(key, s)).find((e) => e.key === key);
  const bytes = await archive.get(key, s);
  const version = entry?.versions[0];
  if (!bytes || version === undefined) throw new ChainConflictError(`object ${key} vanished`, key);
  if (sha256Hex(bytes) !== sha256) {
    throw new ChainConflictError(`object ${key} exists with other content than the chain expects`, key);
  }
  return version;
}

/** Creates a chunk's manifest, or accepts an existing identical one. @throws ChainConflictError */
async function ensureManifest(archive: ArchiveStore, manifest: Manifest, s: Sig): Promise<void> {
  const key = manifestKey(manifest.key);
  const body = encodeManifest(manifest);
  try {
    await archive.create(key, body, { sha256: sha256Hex(body), contentType: MANIFEST_CONTENT_TYPE }, s);
  } catch (error) {
    if (!(error instanceof ObjectExistsError)) throw error;
    const bytes = await archive.get(key, s);
    let found: Manifest | undefined;
    try {
      found = bytes ? parseManifest(bytes) : undefined;
    } catch {
      found = undefined;
    }
    const same =
      found !== undefined &&
      (['clusterId', 'seq', 'key', 'version', 'sha256', 'previousSha256'] as const).every(
        (k) => found[k] === manifest[k],
      );
    if (!same) throw new ChainConflictError(`manifest ${key} differs from the chunk it describes`, key);
  }
}

/**
 * Dedup keys of the lines of a chunk, best effort: the line's {@link lineEventKey}; else (a
 * line that does not carry its record's identity) the legacy key, the JSON `auditID` or
 * `sha256:<line>`, marked `legacy`.
 */
async function lineKeys(body: Uint8Array): Promise<{ key: string; legacy: boolean }[]> {
  const keys: { key: string; legacy: boolean }[] = [];
  for (const line of await gunzipLines(body)) {
    const current = lineEventKey(line);
    if (current !== undefined) {
      keys.push({ key: current, legacy: false });
      continue;
    }
    let id: unknown;
    try {
      id = (JSON.parse(line) as { auditID?: unknown } | null)?.auditID;
    } catch {
      id = undefined;
    }
    keys.push({ key: typeof id === 'string' ? id : `sha256:${sha256Hex(line)}`, legacy: true });
  }
  return keys;
}

/** The keys older versions may have recorded for an archived line (`auditID`, `insertId`, `AuditId`, `sha256:<line>`). */
function legacyLineKeys(line: string): string[] {
  const keys: string[] = [];
  try {
    const o = JSON.parse(line) as Record<string, unknown> | null;
    if (o && typeof o === 'object') {
      for (const k of ['auditID', 'insertId', 'AuditId'] as const) {
        if (typeof o[k] === 'string' && o[k] !== '') keys.push(o[k] as string);
      }
      if (typeof o.log_s === 'string') {
        const id = (JSON.parse(o.log_s) as { auditID?: unknown } | null)?.auditID;
        if (typeof id === 'string' && id !== '') keys.push(id);
      }
    }
  } catch {}
  keys.push(`sha256:${sha256Hex(line)}`);
  return keys;
}

/**
 * Moves the legacy seen keys (bare auditID, from older versions) of the chunks they name to
 * current keys, by reading those chunks back: an older version's key cannot tell two stages
 * of one request apart, the archived line can. Only once per chunk, on the first run after
 * an upgrade; what no line explains stays a legacy key until it leaves the window.
 */
async function migrateLegacySeen(
  archive: ArchiveStore,
  cluster: Cluster,
  shards: SeenShards,
  s: Sig,
): Promise<void> {
  const seqs = shards.legacySeqs();
  if (seqs.size === 0) return;
  const chunks = new Map<number, string>();
  for (const { key } of await archive.list(clusterPrefix(cluster.id), s)) {
    const parsed = parseArchiveKey(cluster.id, key);
    if (parsed?.kind === 'chunk' && seqs.has(parsed.seq)) chunks.set(parsed.seq, key);
  }
  for (const [seq, key] of chunks) {
    const body = await archive.get(key, s);
    if (!body) continue;
    const manifestBytes = await archive.get(manifestKey(key), s);
    let at = Number.NaN;
    try {
      at = ms(parseManifest(manifestBytes ?? new Uint8Array()).lastTimestamp);
    } catch {}
    if (Number.isNaN(at)) continue;
    const lines = (await gunzipLines(body)).map((line) => {
      const current = lineEventKey(line);
      return {
        legacy: legacyLineKeys(line).map(seenHash),
        current: current === undefined ? undefined : seenHash(current),
      };
    });
    shards.migrate(seq, lines, at);
  }
}

async function gunzipLines(body: Uint8Array): Promise<string[]> {
  const parts: Buffer[] = [];
  for await (const part of Readable.from([body]).pipe(createGunzip())) parts.push(part as Buffer);
  const text = Buffer.concat(parts).toString('utf8');
  if (text === '') return [];
  return text.endsWith('\n') ? text.slice(0, -1).split('\n') : text.split('\n');
}

/** Counts the lines of a gzipped NDJSON body, streaming; `undefined` when it is not gzip. */
async function countLines(body: Uint8Array): Promise<number | undefined> {
  try {
    let n = 0;
    for await (const part of Readable.from([body]).pipe(createGunzip())) {
      for (const byte of part as Buffer) if (byte === 0x0a) n++;
    }
    return n;
  } catch {
    return undefined;
  }
}

const ms = (ts: string | undefined | null): number => (ts ? Date.parse(ts) : Number.NaN);

async function putHead(deps: AuditJobDeps, clusterId: string, head: ChainHead): Promise<void> {
  await deps.store.putMany(AUDIT_NS, [{ key: headKey(clusterId), value: head }]);
}

/** Steps 1–3 of a chunk whose pending record is already durable; returns the advanced head. */
async function completeChunk(
  deps: AuditJobDeps,
  archive: ArchiveStore,
  pending: PendingChunk,
  body: Uint8Array | undefined,
  s: Sig,
): Promise<ChainHead> {
  const m = pending.manifest;
  let version: string;
  if (body === undefined) {
    version = await existingVersion(archive, m.key, m.sha256, s);
  } else {
    try {
      version = (await archive.create(m.key, body, { sha256: m.sha256, contentType: CHUNK_CONTENT_TYPE }, s))
        .version;
    } catch (error) {
      if (!(error instanceof ObjectExistsError)) throw error;
      version = await existingVersion(archive, m.key, m.sha256, s);
    }
  }
  await ensureManifest(archive, { ...m, version, createdAt: deps.clock.now().toISOString() }, s);
  const next: ChainHead = {
    seq: m.seq,
    sha256: m.sha256,
    key: m.key,
    version,
    checkpoint: pending.checkpoint,
    pending: null,
  };
  await putHead(deps, m.clusterId, next);
  return next;
}

/**
 * Resumes an interrupted run: adopts a pending chunk the archive holds, forgets one it does
 * not, and adopts chunks beyond the head that have a valid manifest linking to it (a head
 * lost from the state store). @throws ChainConflictError when the archive disagrees.
 */
async function recover(
  deps: AuditJobDeps,
  archive: ArchiveStore,
  cluster: Cluster,
  head: ChainHead,
  shards: SeenShards,
  s: Sig,
): Promise<{ head: ChainHead; recovered: number }> {
  let recovered = 0;
  if (head.pending) {
    const exists = (await archive.list(head.pending.manifest.key, s)).some(
      (e) => e.key === head.pending?.manifest.key,
    );
    if (exists) {
      head = await completeChunk(deps, archive, head.pending, undefined, s);
      recovered++;
    } else {
      head = { ...head, pending: null };
    }
  }
  const listing = await archive.list(clusterPrefix(cluster.id), s);
  const beyond = new Map<number, { chunk?: string; manifest?: string }>();
  for (const { key } of listing) {
    const parsed = parseArchiveKey(cluster.id, key);
    if (!parsed || parsed.seq <= head.seq) continue;
    const slot = beyond.get(parsed.seq) ?? {};
    slot[parsed.kind] = key;
    beyond.set(parsed.seq, slot);
  }
  while (beyond.size > 0) {
    const seq = head.seq + 1;
    const slot = beyond.get(seq);
    const key = slot?.chunk ?? slot?.manifest ?? [...beyond.values()][0]?.chunk ?? clusterPrefix(cluster.id);
    if (!slot?.chunk || !slot.manifest) {
      throw new ChainConflictError(
        `archive holds objects beyond the chain head (seq ${head.seq}) it cannot adopt`,
        key,
      );
    }
    const manifestBytes = await archive.get(slot.manifest, s);
    const body = await archive.get(slot.chunk, s);
    let manifest: Manifest;
    try {
      manifest = parseManifest(manifestBytes ?? new Uint8Array());
    } catch {
      throw new ChainConflictError(`manifest ${slot.manifest} cannot be read`, slot.manifest);
    }
    if (
      !body ||
      manifest.seq !== seq ||
      manifest.key !== slot.chunk ||
      manifest.clusterId !== cluster.id ||
      manifest.previousSha256 !== head.sha256 ||
      sha256Hex(body) !== manifest.sha256
    ) {
      throw new ChainConflictError(
        `chunk ${slot.chunk} beyond the chain head does not continue the chain`,
        slot.chunk,
      );
    }
    // Best effort: the seen shards learn the chunk's events from its lines (a group left by
    // the run that wrote the chunk, if any, is kept too).
    const last =
      head.checkpoint && ms(head.checkpoint.lastTimestamp) > ms(manifest.lastTimestamp)
        ? head.checkpoint.lastTimestamp
        : manifest.lastTimestamp;
    const lastMs = ms(manifest.lastTimestamp);
    const at = Number.isNaN(lastMs) ? deps.clock.now().getTime() : lastMs;
    for (const k of await lineKeys(body)) shards.add(seq, seenHash(k.key), at, k.legacy);
    await shards.flush();
    head = {
      seq,
      sha256: manifest.sha256,
      key: manifest.key,
      version: manifest.version,
      checkpoint: { ...head.checkpoint, lastTimestamp: last },
      pending: null,
    };
    await putHead(deps, cluster.id, head);
    beyond.delete(seq);
    recovered++;
  }
  return { head, recovered };
}

async function collectCluster(
  deps: AuditJobDeps,
  cluster: Cluster,
  options: CollectOptions,
): Promise<CollectOutcome> {
  const now = deps.clock.now();
  const s = sig(options.signal);
  const finding = findingsOf(cluster, now);
  const skip = async (f: Finding): Promise<CollectOutcome> => {
    await recordFindings(deps.store, AUDIT_JOB, cluster.id, [f]);
    // The outcome (skipped, with the finding) says it, and the finding is recorded: not a warning.
    deps.logger.info('Audit collection skipped', { cluster: cluster.id, finding: f.kind });
    return { clusterId: cluster.id, status: 'skipped', findings: [f] };
  };
  const guarded = <T>(fn: () => Promise<T>) => settled(fn, options.signal);

  // Export mode: the cloud delivers into the evidence store itself (`fleetward audit apply`).
  if (auditModeOf(deps.config, cluster) === 'export')
    return {
      clusterId: cluster.id,
      status: 'skipped',
      findings: [],
      note: 'export mode: the cloud delivers',
    };
  const source = deps.sources.for(cluster);
  if (!source)
    return skip(finding('audit-logging-off', 'high', `no audit log source for ${cluster.cloud} clusters`));
  const enabled = await guarded(() => source.enabled(cluster, s));
  if (!enabled.ok) {
    return skip(
      finding(
        'audit-source-unreachable',
        'high',
        `cannot read the audit log: ${errorInfo(enabled.error).message}`,
      ),
    );
  }
  if (!enabled.value.enabled) {
    const why = enabled.value.reason ? `: ${enabled.value.reason}` : '';
    return skip(finding('audit-logging-off', 'high', `control-plane audit logging is off${why}`));
  }
  const jurisdiction = deps.config.jurisdictions[cluster.jurisdiction];
  if (!jurisdiction) {
    return skip(
      finding(
        'unassigned',
        'high',
        'cluster is in no configured jurisdiction: its audit log is not archived',
      ),
    );
  }
  const archived = await guarded(() => deps.archives.for(cluster));
  if (!archived.ok) {
    return skip(
      finding('archive-unavailable', 'high', `no audit archive: ${errorInfo(archived.error).message}`),
    );
  }
  const archive = archived.value;
  const located = await guarded(() => archive.location(s));
  if (!located.ok) {
    return skip(
      finding(
        'archive-unavailable',
        'high',
        `cannot locate ${archive.id}: ${errorInfo(located.error).message}`,
      ),
    );
  }
  const declaredNonCompliant = (archive as { compliantStorage?: unknown }).compliantStorage === false;
  if (located.value === null) {
    if (!declaredNonCompliant) {
      return skip(
        finding(
          'archive-outside-jurisdiction',
          'critical',
          `the location of ${archive.id} is unknown; residency cannot be verified`,
        ),
      );
    }
    if (deps.allowLocalEvidence !== true) {
      return skip(
        finding(
          'archive-not-compliant',
          'critical',
          `${archive.id} is a local directory, not compliant storage, and its residency cannot be verified; local evidence is not allowed in this run`,
        ),
      );
    }
    // Only a CLI run with --local-evidence gets here; it warns once, and each outcome says it.
    deps.logger.info('Audit archive is local, not compliant storage', {
      cluster: cluster.id,
      archive: archive.id,
    });
  } else {
    try {
      deps.residency.assertResidency(
        { jurisdiction: cluster.jurisdiction, clusterId: cluster.id },
        { cloud: located.value.cloud, region: located.value.region, what: 'audit archive' },
      );
    } catch (error) {
      if (!(error instanceof ResidencyError)) throw error;
      return skip(finding('archive-outside-jurisdiction', 'critical', error.message));
    }
  }
  const immutable = await guarded(() => archive.assertImmutable(jurisdiction.audit.retentionDays, s));
  if (!immutable.ok) {
    return skip(
      finding(
        'archive-not-immutable',
        'critical',
        `${archive.id} is not write-once: ${errorInfo(immutable.error).message}`,
      ),
    );
  }
  const compliantStorage = located.value !== null && !declaredNonCompliant;
  const recordStatus = async (lastEventAt: string | null) => {
    const status: AuditStatusRecord = {
      clusterId: cluster.id,
      jurisdiction: cluster.jurisdiction,
      archive: archive.id,
      location: located.value,
      inJurisdiction: located.value !== null,
      compliantStorage,
      retentionDays: jurisdiction.audit.retentionDays,
      checkedAt: now.toISOString(),
      lastEventAt,
      headSeq: stats.head,
    };
    await deps.store.putMany(AUDIT_NS, [{ key: auditStatusKey(cluster.id), value: status }]);
  };

  const stats: CollectStats = {
    chunks: 0,
    events: 0,
    malformed: 0,
    duplicates: 0,
    recovered: 0,
    head: 0,
    compliantStorage,
  };
  const overlapMs = options.overlapMs ?? DEFAULT_OVERLAP_MS;
  try {
    const stored = (await deps.store.get<ChainHead>(AUDIT_NS, headKey(cluster.id))) ?? EMPTY_HEAD;
    const shards = await SeenShards.load(deps.store, cluster.id);
    const recovery = await recover(deps, archive, cluster, stored, shards, s);
    let head = recovery.head;
    stats.recovered = recovery.recovered;
    stats.head = head.seq;

    const nowMs = now.getTime();
    const checkpoint = head.checkpoint;
    let lastTimestamp = checkpoint?.lastTimestamp ?? null;
    let lastMs = ms(lastTimestamp);
    if (Number.isNaN(lastMs)) lastMs = Number.NEGATIVE_INFINITY;
    const orNow = (t: number) => (Number.isNaN(t) ? nowMs : t);
    // Before anything else is written: forget the groups of chunks that never became durable,
    // move a legacy head's seen keys into shards, drop minutes older than the window.
    shards.dropBeyond(head.seq);
    checkpoint?.seenIds?.forEach((id, i) => {
      shards.add(head.seq, seenHash(id), orNow(ms(checkpoint.seenTimestamps?.[i])), true);
    });
    if (Number.isFinite(lastMs)) await shards.trim(lastMs - overlapMs);
    await migrateLegacySeen(archive, cluster, shards, s);
    await shards.flush();
    if (checkpoint?.seenIds) {
      head = { ...head, checkpoint: toCheckpoint(checkpoint.lastTimestamp) };
      await putHead(deps, cluster.id, head);
    }
    // `seen`: hashes of the dedup keys of archived events and of those this run passed on.
    // `legacySeen`: hashes of the keys older versions recorded (bare auditID), only until they
    // leave the overlap window; an event matches them by its legacy key.
    const seen = new SeenSet();
    const legacySeen = new SeenSet();
    for (const [h, t, legacy] of shards.entries()) (legacy ? legacySeen : seen).set(h, t);
    const since =
      checkpoint && Number.isFinite(lastMs)
        ? lastMs - overlapMs
        : nowMs - (options.lookbackMs ?? DEFAULT_LOOKBACK_MS);
    if (since >= nowMs) {
      await recordFindings(deps.store, AUDIT_JOB, cluster.id, []);
      await recordStatus(lastTimestamp);
      return { clusterId: cluster.id, status: 'up-to-date', ...stats };
    }
    let readMax = lastMs;
    // Hashes and times (ms) of the events passed on to the chunker, in order (chunks keep
    // that order); entries before `passedFrom` belong to chunks already handled.
    let passed: string[] = [];
    let passedMs: number[] = [];
    let passedFrom = 0;
    // The times `fresh` parsed, by page passed on, for the chunker (one Date.parse per event).
    const times = new WeakMap<readonly AuditEvent[], number[]>();
    const fresh = async function* (pages: AsyncIterable<AuditEvent[]>): AsyncGenerator<AuditEvent[]> {
      for await (const page of pages) {
        const out: AuditEvent[] = [];
        const outMs: number[] = [];
        for (const event of page) {
          const key = seenHash(eventKey(event));
          if (seen.has(key) || (legacySeen.size > 0 && legacySeen.has(seenHash(legacyEventKey(event))))) {
            stats.duplicates++;
            continue;
          }
          const parsed = ms(event.timestamp);
          const t = orNow(parsed);
          if (t > readMax) readMax = t;
          seen.set(key, t);
          passed.push(key);
          passedMs.push(t);
          out.push(event);
          outMs.push(parsed);
        }
        times.set(out, outMs);
        seen.trim(readMax - overlapMs);
        legacySeen.trim(readMax - overlapMs);
        if (out.length > 0) yield out;
      }
    };
    // Aborted when the chunk loop stops early (a failed write), so the read ahead stops too.
    const reading = new AbortController();
    const readSignal = options.signal ? AbortSignal.any([options.signal, reading.signal]) : reading.signal;
    const pages = source.read(cluster, { since: new Date(since), until: now }, { signal: readSignal });
    const chunks = chunkEvents(fresh(pages), {
      clusterId: cluster.id,
      firstSeq: head.seq + 1,
      maxEvents: options.maxEvents,
      maxBytes: options.maxBytes,
      // The events' hashes and times are in `passed` / `passedMs`: no per-event ids needed.
      ids: false,
      times,
    });
    // One chunk ahead: the next chunk is read and compressed while this one is written.
    for await (const chunk of readAhead(chunks, () => reading.abort())) {
      options.signal?.throwIfAborted();
      // The chunk holds the next `chunk.events` events passed on, in order.
      const end = passedFrom + chunk.events;
      if (end > passed.length) throw new Error(`chunk ${chunk.seq} holds events never passed on`);
      for (let j = passedFrom; j < end; j++) {
        shards.add(chunk.seq, passed[j] as string, passedMs[j] as number);
      }
      passedFrom = end;
      // Drop the handled prefix now and then (not per chunk: no copy of the whole list each time).
      if (passedFrom >= 50_000 || passedFrom === passed.length) {
        passed = passed.slice(passedFrom);
        passedMs = passedMs.slice(passedFrom);
        passedFrom = 0;
      }
      const chunkLast = ms(chunk.lastTimestamp);
      if (lastTimestamp === null || chunkLast > lastMs) {
        lastTimestamp = chunk.lastTimestamp;
        lastMs = Number.isNaN(chunkLast) ? lastMs : chunkLast;
      }
      const pending: PendingChunk = {
        manifest: {
          schema: MANIFEST_SCHEMA,
          clusterId: cluster.id,
          seq: chunk.seq,
          key: chunk.key,
          sha256: chunk.sha256,
          events: chunk.events,
          malformed: chunk.malformed,
          firstTimestamp: chunk.firstTimestamp,
          lastTimestamp: chunk.lastTimestamp,
          previousSha256: head.sha256,
          compliantStorage,
        },
        checkpoint: toCheckpoint(lastTimestamp),
      };
      await shards.flush();
      await putHead(deps, cluster.id, { ...head, pending });
      head = await completeChunk(deps, archive, pending, chunk.body, s);
      if (Number.isFinite(lastMs)) await shards.trim(lastMs - overlapMs);
      stats.chunks++;
      stats.events += chunk.events;
      stats.malformed += chunk.malformed;
      stats.head = head.seq;
    }
    await recordFindings(deps.store, AUDIT_JOB, cluster.id, []);
    await recordStatus(lastTimestamp);
    deps.logger.info('Audit log archived', { cluster: cluster.id, ...stats });
    return { clusterId: cluster.id, status: stats.chunks > 0 ? 'archived' : 'up-to-date', ...stats };
  } catch (error) {
    if (options.signal?.aborted) throw error;
    if (error instanceof ChainConflictError) {
      await recordFindings(deps.store, AUDIT_JOB, cluster.id, [
        finding('audit-chain-conflict', 'critical', `${error.message}; run audit verify`),
      ]);
    }
    deps.logger.warn('Audit collection failed', { cluster: cluster.id, error: errorInfo(error) });
    return { clusterId: cluster.id, status: 'failed', error: errorInfo(error), ...stats };
  }
}

/**
 * Audit collection as the dispatcher runs it: one item per cluster in scope. `tuning` (overlap,
 * lookback, chunk bounds) applies to every item; a deployed worker uses the defaults.
 */
export function auditWork(
  tuning: Omit<CollectOptions, keyof ClusterScope | 'signal' | 'concurrency'> = {},
): ClusterWork<AuditJobDeps, ClusterScope, CollectOutcome> {
  return {
    job: 'collect-audit-logs',
    async plan(deps, scope) {
      const clusters = await inventory(deps.store, scope);
      const run = runId(deps.clock.now());
      return clusters.map((c) => ({ job: 'collect-audit-logs', clusterId: c.id, runId: run }));
    },
    async run(deps, item, signal) {
      const cluster = await deps.store.get<Cluster>(INVENTORY, item.clusterId);
      // A cluster gone from the inventory since the plan has nothing left to collect.
      if (!cluster) return { clusterId: item.clusterId, status: 'skipped', findings: [] };
      return collectCluster(deps, cluster, { ...tuning, ...(signal ? { signal } : {}) });
    },
    failure: (outcome) => (outcome.status === 'failed' ? outcome.error.message : undefined),
    metrics: (outcome) => ({ AuditEventsArchived: 'events' in outcome ? outcome.events : 0 }),
  };
}

/** Archives new audit events of every cluster in scope (one cluster's failure never stops the others). */
export async function collect(
  deps: AuditJobDeps,
  options: CollectOptions = {},
  dispatcher: Dispatcher = inProcess(options.concurrency ?? 4),
): Promise<CollectResult & { enqueued?: number }> {
  const { clusterId, jurisdiction, signal, concurrency: _, onProgress, ...tuning } = options;
  const work = auditWork(tuning);
  const items = await work.plan(deps, { clusterId, jurisdiction });
  const id = items[0]?.runId ?? runId(deps.clock.now());
  const planned = new Set(items.map((i) => i.clusterId));
  const clusters = (await inventory(deps.store, { clusterId, jurisdiction })).filter((c) =>
    planned.has(c.id),
  );
  const report = startScopeReport(deps, clusters, AUDIT_JOB);
  const done = await dispatcher.dispatch(reporting(work, items.length, onProgress), deps, items, signal);
  if (done.mode === 'queue') return { runId: id, outcomes: [], scopes: [], enqueued: done.enqueued };
  return { runId: id, outcomes: done.results, scopes: await report.finish() };
}

export interface VerifyResult {
  /** `false` when any chain is broken or unverified. */
  ok: boolean;
  clusters: VerifyClusterResult[];
  /** Clusters per outcome. */
  counts: Record<VerifyStatus, number>;
}

type VerifyDeps = Pick<AuditJobDeps, 'store' | 'archives'> & {
  config?: AuditJobDeps['config'] | undefined;
  clock?: Clock | undefined;
};

/** Why a cluster has no chain to verify, when collect never archives it; `undefined` when it does. */
function notArchivedReason(cluster: Cluster, config: VerifyDeps['config']): string | undefined {
  if (cluster.cloud === 'kubeconfig') return 'kubeconfig cluster: no audit log source';
  if (cluster.jurisdiction === 'unassigned' || (config && !config.jurisdictions[cluster.jurisdiction]))
    return 'cluster is in no configured jurisdiction';
  if (cluster.auditLogging === false) return 'control-plane audit logging is off';
  return undefined;
}

async function verifyCluster(deps: VerifyDeps, cluster: Cluster, s: Sig): Promise<VerifyClusterResult> {
  const result: VerifyClusterResult = {
    clusterId: cluster.id,
    status: 'intact',
    ok: true,
    chunks: 0,
    events: 0,
  };
  try {
    return await walkChain(deps, cluster, result, s);
  } catch (error) {
    if (s.signal?.aborted) throw error;
    // An unreachable or unreadable store says nothing about the chain: unverified, never broken.
    return { ...result, status: 'unverified', ok: false, error: errorInfo(error) };
  }
}

/** Walks the chain, counting good chunks in `result`; throws when a store cannot be read. */
async function walkChain(
  deps: VerifyDeps,
  cluster: Cluster,
  result: VerifyClusterResult,
  s: Sig,
): Promise<VerifyClusterResult> {
  const fail = (
    seq: number,
    key: string | null,
    problem: ChainProblem,
    detail: string,
  ): VerifyClusterResult => ({
    ...result,
    status: 'broken',
    ok: false,
    firstProblem: { seq, key, problem, detail },
  });
  const nothing = (reason: string): VerifyClusterResult => ({
    ...result,
    status: 'nothing-archived',
    reason,
  });
  const head = await deps.store.get<ChainHead>(AUDIT_NS, headKey(cluster.id));
  const started = head !== undefined && head !== null && (head.seq > 0 || Boolean(head.pending));
  if (!started) {
    const reason = notArchivedReason(cluster, deps.config);
    if (reason) return nothing(reason);
  }
  const archive = await deps.archives.for(cluster);
  const listing = await archive.list(clusterPrefix(cluster.id), s);
  const versions = new Map(listing.map((e) => [e.key, e.versions]));
  const chunksBySeq = new Map<number, string[]>();
  const manifestsBySeq = new Map<number, string[]>();
  let top = head?.seq ?? 0;
  for (const { key } of listing) {
    const parsed = parseArchiveKey(cluster.id, key);
    if (!parsed) continue;
    const index = parsed.kind === 'chunk' ? chunksBySeq : manifestsBySeq;
    index.set(parsed.seq, [...(index.get(parsed.seq) ?? []), key]);
    top = Math.max(top, parsed.seq);
  }
  if (!started && top === 0) return nothing('no chunk archived yet');
  let previous: string | null = null;
  for (let seq = 1; seq <= top; seq++) {
    const manifestKeys = manifestsBySeq.get(seq) ?? [];
    const chunkKeys = chunksBySeq.get(seq) ?? [];
    if (manifestKeys.length === 0 && chunkKeys.length === 0) {
      if (head && seq === head.seq && head.key)
        return fail(seq, head.key, 'missing', 'the chain head is missing');
      return fail(seq, null, 'gap', 'no chunk and no manifest for this seq');
    }
    const mKey = manifestKeys[0];
    if (mKey === undefined) return fail(seq, chunkKeys[0] ?? null, 'missing', 'manifest missing');
    if (manifestKeys.length > 1)
      return fail(seq, manifestKeys[1] ?? mKey, 'altered', 'two manifests for one seq');
    if ((versions.get(mKey) ?? []).length > 1)
      return fail(seq, mKey, 'extra-version', 'manifest has another version');
    // A failed read (the store) propagates: unverified. Bytes that do not parse: altered.
    const manifestBytes = await archive.get(mKey, s);
    if (!manifestBytes) return fail(seq, mKey, 'missing', 'manifest missing');
    let manifest: Manifest;
    try {
      manifest = parseManifest(manifestBytes);
    } catch {
      return fail(seq, mKey, 'altered', 'manifest unreadable');
    }
    if (manifest.seq !== seq || manifest.clusterId !== cluster.id || manifestKey(manifest.key) !== mKey) {
      return fail(seq, mKey, 'altered', 'manifest names another chunk');
    }
    const chunkVersions = versions.get(manifest.key);
    if (!chunkVersions) return fail(seq, manifest.key, 'missing', 'chunk missing');
    if (chunkKeys.length > 1)
      return fail(
        seq,
        chunkKeys.find((k) => k !== manifest.key) ?? manifest.key,
        'altered',
        'two chunks for one seq',
      );
    if (!chunkVersions.includes(manifest.version)) {
      return fail(seq, manifest.key, 'altered', 'the recorded version of the chunk is gone');
    }
    if (chunkVersions.length > 1)
      return fail(seq, manifest.key, 'extra-version', 'chunk has another version');
    const body = await archive.get(manifest.key, { version: manifest.version, ...s });
    if (!body) return fail(seq, manifest.key, 'missing', 'chunk missing');
    if (sha256Hex(body) !== manifest.sha256)
      return fail(seq, manifest.key, 'altered', 'SHA-256 differs from the manifest');
    if ((await countLines(body)) !== manifest.events) {
      return fail(seq, manifest.key, 'altered', 'event count differs from the manifest');
    }
    if (manifest.previousSha256 !== previous) {
      return fail(
        seq,
        manifest.key,
        'broken-link',
        'previousSha256 is not the previous chunk\u2019s SHA-256',
      );
    }
    if (head && seq === head.seq && head.sha256 !== manifest.sha256) {
      return fail(seq, manifest.key, 'altered', 'SHA-256 differs from the chain head');
    }
    previous = manifest.sha256;
    result.chunks++;
    result.events += manifest.events;
  }
  return result;
}

/**
 * Walks every chain in scope. `ok` is false when any chunk is missing, altered, re-versioned
 * or unlinked (`broken`), or when a chain could not be read (`unverified`).
 */
export async function verify(
  deps: VerifyDeps,
  scope: ClusterScope & {
    signal?: AbortSignal | undefined;
    /** Called as each cluster's chain is walked. */
    onProgress?: OnProgress<VerifyClusterResult> | undefined;
  } = {},
): Promise<VerifyResult> {
  const clusters = await inventory(deps.store, scope);
  const s = sig(scope.signal);
  const results = await forEachCluster(
    clusters,
    4,
    counting(clusters.length, scope.onProgress, (cluster: Cluster) => verifyCluster(deps, cluster, s)),
  );
  const verifiedAt = (deps.clock ?? systemClock).now().toISOString();
  await deps.store.putMany(
    AUDIT_NS,
    results.map((r) => ({ key: auditVerifyKey(r.clusterId), value: { ...r, verifiedAt } })),
  );
  const counts: Record<VerifyStatus, number> = {
    intact: 0,
    broken: 0,
    unverified: 0,
    'nothing-archived': 0,
  };
  for (const r of results) counts[r.status]++;
  return { ok: results.every((r) => r.ok), clusters: results, counts };
}
