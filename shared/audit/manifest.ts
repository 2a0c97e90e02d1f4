/**
 * Chunk manifests and the per-cluster chain head.
 *
 * Every chunk `<key>` has a manifest `<key>.manifest.json` (created conditionally, like the
 * chunk) recording its SHA-256, event counts, time span, the object version the store
 * returned and the previous chunk's SHA-256: the manifests chain a cluster's chunks.
 * The head of each chain lives in the state store (namespace `audit`, key
 * `head/<cluster-id>`) with the collection checkpoint; the dedup keys of the overlap window
 * live beside it in seen shards (`seen/<cluster-id>/<yyyymmddhhmm>/<part>`, see
 * {@link SeenShard}), so the head stays a few hundred bytes whatever the event rate.
 */
import { hash } from 'node:crypto';
import { FleetwardError } from '../runtime/errors.ts';

export const MANIFEST_SCHEMA = 'fleetward.audit.manifest/v1';
export const MANIFEST_CONTENT_TYPE = 'application/json';

export interface Manifest {
  schema: typeof MANIFEST_SCHEMA;
  clusterId: string;
  seq: number;
  /** The chunk's key. */
  key: string;
  /** The chunk object's version as the store returned it on create. */
  version: string;
  /** Hex SHA-256 of the chunk's (gzipped) bytes. */
  sha256: string;
  events: number;
  malformed: number;
  firstTimestamp: string;
  lastTimestamp: string;
  /** SHA-256 of chunk `seq - 1`; `null` for the first chunk. */
  previousSha256: string | null;
  createdAt: string;
  /** `false` when the chunk went to storage that is not write-once (a local directory). */
  compliantStorage: boolean;
}

/** Where collection resumes: events up to `lastTimestamp` are archived. */
export interface AuditCheckpoint {
  /** Latest timestamp of an archived event. */
  lastTimestamp: string;
  /**
   * Legacy (heads written before the seen shards): dedup keys of archived events within the
   * overlap window. Read once and moved into seen shards; never written any more.
   */
  seenIds?: string[] | undefined;
  /** Legacy: timestamps of `seenIds` (same order). */
  seenTimestamps?: string[] | undefined;
}

/**
 * One seen shard (`audit` / `seen/<cluster-id>/<yyyymmddhhmm>/<part>`): the {@link seenHash}es
 * of archived events whose timestamp falls in that UTC minute, grouped by the seq of the chunk
 * that holds them: `{ "<seq>": "<hash><hash>…" }` (each hash {@link SEEN_HASH_LENGTH} chars,
 * concatenated). A minute with more than {@link SEEN_SHARD_MAX_HASHES} hashes spills into
 * parts 1, 2, …, so every item stays under ~250 KB whatever the event rate.
 *
 * A group is only trusted when its seq is at most the head's seq: groups are written before
 * the chunk's pending record, so a group of a chunk that never became durable is ignored
 * (and removed) by the next run.
 */
export type SeenShard = Record<string, string>;

/**
 * The `v` entry of a seen shard written with the current dedup keys (`eventKey` in chunks.ts: (`k8s:<auditID>:<stage>`,
 * `k8s:<auditID>:<stage>`, `rec:<recordId>`). A shard without it was written by an older version, whose keys were the
 * bare `auditID` (or `sha256:<raw>`): its groups are read as legacy groups. Legacy groups are
 * kept under `L<seq>` until they leave the overlap window, and matched by the legacy key only.
 */
export const SEEN_SHARD_VERSION = '2';

/** Length of a {@link seenHash}. */
export const SEEN_HASH_LENGTH = 16;
/** Hashes per seen shard item (15 000 × 16 chars = 240 000 bytes). */
export const SEEN_SHARD_MAX_HASHES = 15_000;

/**
 * The short hash a seen shard keeps of a dedup key: the first 96 bits of its SHA-256, as 16
 * base64url characters. Two different keys collide with probability 2^-96; an event is
 * wrongly taken for an already archived one only if its hash equals one of the n hashes of
 * the overlap window, probability ≈ n·2^-96 per event: with n = 600 000 (1 000 events/s,
 * 10-minute overlap) and 10^12 events over the archive's life, ≈ 7.6·10^-12 in total.
 */
export function seenHash(key: string): string {
  return hash('sha256', key, 'base64url').slice(0, SEEN_HASH_LENGTH);
}

/** `seen/<cluster-id>/` — every seen shard of a cluster is under it. */
export function seenPrefix(clusterId: string): string {
  return `seen/${clusterId}/`;
}

/** `seen/<cluster-id>/<yyyymmddhhmm>/<part>`. */
export function seenShardKey(clusterId: string, minute: string, part: number): string {
  return `${seenPrefix(clusterId)}${minute}/${part}`;
}

/** The minute and part of a seen shard key; `undefined` for anything else. */
export function parseSeenShardKey(
  clusterId: string,
  key: string,
): { minute: string; part: number } | undefined {
  const prefix = seenPrefix(clusterId);
  if (!key.startsWith(prefix)) return undefined;
  const m = /^(\d{12})\/(\d+)$/.exec(key.slice(prefix.length));
  if (!m?.[1] || !m[2]) return undefined;
  return { minute: m[1], part: Number(m[2]) };
}

/** `yyyymmddhhmm` of the UTC minute of `ms`. */
export function seenMinute(ms: number): string {
  // Clamped to years 1970–9999, where the ISO form has a 4-digit year.
  const iso = new Date(Math.min(Math.max(ms, 0), 253_402_300_799_999)).toISOString();
  return `${iso.slice(0, 4)}${iso.slice(5, 7)}${iso.slice(8, 10)}${iso.slice(11, 13)}${iso.slice(14, 16)}`;
}

/** Start (ms) of a `yyyymmddhhmm` minute. */
export function seenMinuteStart(minute: string): number {
  return Date.UTC(
    Number(minute.slice(0, 4)),
    Number(minute.slice(4, 6)) - 1,
    Number(minute.slice(6, 8)),
    Number(minute.slice(8, 10)),
    Number(minute.slice(10, 12)),
  );
}

/** A chunk about to be written, recorded in the head before its first write (crash recovery). */
export interface PendingChunk {
  manifest: Omit<Manifest, 'version' | 'createdAt'>;
  /** The checkpoint once this chunk is durable. */
  checkpoint: AuditCheckpoint;
}

/** The head of a cluster's chain (`audit` / `head/<cluster-id>`). */
export interface ChainHead {
  /** Seq of the last durable chunk (0 before the first). */
  seq: number;
  sha256: string | null;
  key: string | null;
  version: string | null;
  checkpoint: AuditCheckpoint | null;
  /** Set while a chunk is being written; cleared (with the head advanced) once it and its manifest are durable. */
  pending?: PendingChunk | null;
}

/** `head/<cluster-id>`. */
export function headKey(clusterId: string): string {
  return `head/${clusterId}`;
}

/** `<chunk key>.manifest.json`. */
export function manifestKey(chunkKey: string): string {
  return `${chunkKey}.manifest.json`;
}

/** The manifest's bytes (pretty JSON, trailing newline). */
export function encodeManifest(manifest: Manifest): Uint8Array {
  return new TextEncoder().encode(`${JSON.stringify(manifest, null, 2)}\n`);
}

/** The manifest cannot be parsed or lacks a field. */
export class InvalidManifestError extends FleetwardError {
  constructor(message: string) {
    super(message);
    this.name = 'InvalidManifestError';
  }
}

/** Parses and checks a manifest's bytes. @throws InvalidManifestError */
export function parseManifest(bytes: Uint8Array): Manifest {
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch {
    throw new InvalidManifestError('manifest is not JSON');
  }
  const m = value as Record<string, unknown>;
  const str = (k: string) => typeof m[k] === 'string';
  const int = (k: string) => Number.isInteger(m[k]) && (m[k] as number) >= 0;
  const ok =
    typeof value === 'object' &&
    value !== null &&
    m.schema === MANIFEST_SCHEMA &&
    ['clusterId', 'key', 'version', 'sha256', 'firstTimestamp', 'lastTimestamp', 'createdAt'].every(str) &&
    ['seq', 'events', 'malformed'].every(int) &&
    (m.previousSha256 === null || str('previousSha256')) &&
    typeof m.compliantStorage === 'boolean';
  if (!ok) throw new InvalidManifestError('manifest lacks a field or has a wrong type');
  return value as Manifest;
}
