/**
 * Chunk manifests and the per-cluster chain head.
 *
 * Every chunk `<key>` has a manifest `<key>.manifest.json` (created conditionally, like the
 * chunk) recording its SHA-256, event counts, time span, the object version the store
 * returned and the previous chunk's SHA-256: the manifests chain a cluster's chunks.
 * The head of each chain lives in the state store (namespace `audit`, key
 * `head/<cluster-id>`) with the collection checkpoint.
 */
import { FleetwardError } from '../runtime/errors.ts';

export const MANIFEST_SCHEMA = 'fleetward.audit.manifest/v1';
export const MANIFEST_CONTENT_TYPE = 'application/json';
/** State-store namespace of the chain heads. */
export const AUDIT_NS = 'audit';

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
   * Dedup keys (auditID, or `sha256:<raw>` for unparseable lines) of archived events whose
   * timestamp is within the overlap window before `lastTimestamp`: the overlap re-reads them.
   */
  seenIds: string[];
  /** Timestamps of `seenIds` (same order), so the list can be trimmed to the window. */
  seenTimestamps: string[];
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
